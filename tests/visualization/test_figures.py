import json
import os

import cv2
import numpy as np
import pytest
import torch
from script_loader import load_tool
from tiny_reid import write_market_images

from reid_dff.inference import GalleryIndex, UnsafeIndexPathError, search_report
from reid_dff.inference.extractor import FeatureExtractor
from reid_dff.modeling.backbones.filters import FrequencyMask
from reid_dff.visualization import write_search_html
from reid_dff.visualization.drawing import GREEN, RED
from reid_dff.visualization.figures import (
    capture_activation,
    capture_frequency_masks,
    frequency_mask_figure,
    ranked_lists_figure,
)


def read_png(path):
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"{path} is not a readable PNG"
    return image[:, :, ::-1]


@pytest.fixture(scope="module")
def dff(tiny_models):
    return FeatureExtractor(tiny_models[0], device="cpu")


def random_batch(extractor, count=2, seed=0):
    images = list(np.random.default_rng(seed).integers(0, 256, (count, 80, 40, 3), dtype=np.uint8))
    return images, extractor.preprocess(images)


def test_captured_masks_and_spectra_match_independent_hooks(dff):
    _, batch = random_batch(dff)
    # Independent record: each spectrum filter's input z and output z * mask, and each Fourier unit's input x.
    filters, units = {}, {}
    handles = []
    for name, module in dff.model.named_modules():
        if isinstance(module, FrequencyMask):
            filter_name, unit_name = name.rsplit(".", 1)[0], name.rsplit(".", 2)[0]
            modules = dict(dff.model.named_modules())
            handles.append(
                modules[filter_name].register_forward_hook(
                    lambda m, i, o, n=filter_name: filters.__setitem__(n, (i[0].clone(), o.clone()))
                )
            )
            handles.append(
                modules[unit_name].register_forward_hook(
                    lambda m, i, o, n=unit_name: units.__setitem__(n, i[0].clone())
                )
            )
    captures = capture_frequency_masks(dff.model, batch)
    dff.model.eval()
    with torch.no_grad():
        dff.model(batch)
    for handle in handles:
        handle.remove()
    assert len(captures) == len(filters) > 0
    for capture in captures:
        filter_name = capture.name.rsplit(".", 1)[0]
        z, filtered = filters[filter_name]
        assert capture.masks.shape == (2, *z.shape[-2:])
        assert ((capture.masks >= 0) & (capture.masks <= 1)).all()  # a sigmoid (saturates in float32)
        # The filter multiplies its input by the mask: z * mask == output.
        np.testing.assert_allclose(z.numpy() * capture.masks[:, None], filtered.numpy(), rtol=1e-4, atol=1e-5)
        # The spectrum is log(1 + |rfft2(x)|) of the Fourier unit's input, averaged over channels.
        x = units[filter_name.rsplit(".", 1)[0]]
        expected = torch.log1p(torch.fft.rfft2(x, norm="ortho").abs()).mean(1).numpy()
        np.testing.assert_allclose(capture.spectra, expected, rtol=1e-4, atol=1e-5)


def test_mask_figure_is_drawn_and_errors_are_specific(dff, tiny_models):
    images, batch = random_batch(dff)
    captures = capture_frequency_masks(dff.model, batch)
    figure = frequency_mask_figure(images[1], captures, sample=1)
    assert figure.dtype == np.uint8 and figure.ndim == 3 and figure.std() > 0
    base = FeatureExtractor(tiny_models[1], device="cpu")
    with pytest.raises(ValueError, match="no FrequencyMask"):
        capture_frequency_masks(base.model, batch)
    with pytest.raises(ValueError, match="no submodule 'backbone.layer9'"):
        capture_activation(dff.model, batch, "backbone.layer9")
    with pytest.raises(ValueError, match="expected a \\(B, C, h, w\\) feature map"):
        capture_activation(dff.model, batch, "pooling")  # (B, C) after pooling


def test_visualize_tool_reports_a_model_without_masks_in_one_line(tiny_models, tmp_path, capsys):
    write_market_images(tmp_path / "imgs", ["0001_c1s1_000001_00.jpg"])
    with pytest.raises(SystemExit) as info:
        load_tool("visualize").main(
            [
                "masks",
                "--weights",
                tiny_models[1],
                "--images",
                str(tmp_path / "imgs"),
                "--output-dir",
                str(tmp_path),
            ]
        )
    assert info.value.code == 1
    assert "visualize.py: error: ReIDModel has no FrequencyMask module" in capsys.readouterr().err


def test_mask_figures_of_images_with_the_same_name_do_not_overwrite_each_other(tiny_models, tmp_path):
    write_market_images(tmp_path / "imgs" / "a", ["0001_c1s1_000001_00.jpg"])
    write_market_images(tmp_path / "imgs" / "b", ["0001_c1s1_000001_00.jpg"], seed=3)
    load_tool("visualize").main(
        ["masks", "--weights", tiny_models[0], "--images", str(tmp_path / "imgs"), "--output-dir",
         str(tmp_path / "out"), "--device", "cpu"]
    )  # fmt: skip
    assert sorted(os.listdir(tmp_path / "out")) == [
        "masks_a_0001_c1s1_000001_00.png",
        "masks_b_0001_c1s1_000001_00.png",
    ]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["ranked", "--results", "{results}", "--output", "{tmp}/r.jpg"], "ending in .png"),
        (["ranked", "--results", "{results}", "--output", "{tmp}/r.png", "--max-queries", "0"], "at least 1"),
        (["ranked", "--results", "{bad_json}", "--output", "{tmp}/r.png"], "is not valid JSON"),
        (
            ["ranked", "--results", "{list_json}", "--output", "{tmp}/r.png"],
            "expected a search report: a JSON object with a 'queries' list, 'query_root' and 'gallery_root'"
            "; --results takes the JSON that tools/search.py writes with --output",  # the tool's remedy
        ),
        (
            ["ranked", "--results", "{tmp}/missing.json", "--output", "{tmp}/r.png"],
            "missing.json does not exist; --results takes the JSON that tools/search.py writes with --output",
        ),
        (["ranked", "--results", "{no_queries}", "--output", "{tmp}/r.png"], "holds no queries"),
        (
            ["ranked", "--results", "{no_results}", "--output", "{tmp}/r.png"],
            "query 0 of the search report lacks",
        ),
        (
            ["masks", "--weights", "{tmp}/w.pth", "--images", "{script}", "--output-dir", "{tmp}"],
            "neither an image",
        ),
    ],
)
def test_visualize_tool_user_errors_are_one_line(tmp_path, capsys, argv, message):
    files = {
        "results": '{"queries": []}',
        "bad_json": "{oops",
        "list_json": "[]",
        "no_queries": '{"queries": [], "query_root": "", "gallery_root": ""}',
        "no_results": '{"queries": [{"query": "q.jpg"}], "query_root": "", "gallery_root": ""}',
        "script": "print('hi')",
    }
    names = {"results": "r.json", "bad_json": "bad.json", "list_json": "list.json", "no_queries": "nq.json",
             "no_results": "nr.json", "script": "mk.py"}  # fmt: skip
    for key, text in files.items():
        (tmp_path / names[key]).write_text(text)
    values = {key: str(tmp_path / name) for key, name in names.items()}
    argv = [a.format(tmp=tmp_path, **values) for a in argv]
    with pytest.raises(SystemExit) as info:
        load_tool("visualize").main(argv)
    assert info.value.code in (1, 2)  # 2: argparse usage errors
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    if info.value.code == 1:  # a user error is one line
        assert err.startswith("visualize.py: error: ") and err.count("\n") == 1, err


def test_activation_is_the_channel_mean_of_the_layer_output(dff):
    _, batch = random_batch(dff)
    maps = capture_activation(dff.model, batch, "backbone")
    with torch.no_grad():
        expected = dff.model.backbone(batch).mean(1).numpy()
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)
    assert maps.shape == (2, 4, 2)  # 64x32 input, stride 16 with last stride 1


@pytest.mark.e2e
def test_visualize_masks_and_activations_write_pngs(tiny_models, tmp_path):
    dff_checkpoint, base_checkpoint = tiny_models
    write_market_images(tmp_path / "imgs", ["0001_c1s1_000001_00.jpg", "0002_c2s1_000001_00.jpg"])
    tool = load_tool("visualize")
    tool.main(
        [
            "masks",
            "--weights",
            dff_checkpoint,
            "--images",
            str(tmp_path / "imgs"),
            "--output-dir",
            str(tmp_path / "out"),
            "--device",
            "cpu",
        ]
    )
    written = sorted(os.listdir(tmp_path / "out"))
    assert written == ["masks_0001_c1s1_000001_00.png", "masks_0002_c2s1_000001_00.png"]
    # Expected size: the figure of the same images drawn in-process.
    extractor = FeatureExtractor(dff_checkpoint, device="cpu")
    images = [cv2.imread(str(tmp_path / "imgs" / n))[:, :, ::-1].copy() for n in ("0001_c1s1_000001_00.jpg",)]
    expected = frequency_mask_figure(
        images[0], capture_frequency_masks(extractor.model, extractor.preprocess(images))
    )
    png = read_png(tmp_path / "out" / written[0])
    assert png.shape == expected.shape and png.std() > 0
    tool.main(
        [
            "activations",
            "--base-weights",
            base_checkpoint,
            "--weights",
            dff_checkpoint,
            "--images",
            str(tmp_path / "imgs"),
            "--output",
            str(tmp_path / "act.png"),
            "--device",
            "cpu",
        ]
    )
    png = read_png(tmp_path / "act.png")
    # 2 rows of (label 14 + 256) and 3 columns of 128, 4-pixel gaps around everything.
    assert png.shape == (4 + 2 * (14 + 256 + 4), 4 + 3 * (128 + 4), 3) and png.std() > 0


def gallery_report(tmp_path, topk=5):
    """A search report over real image files: 6 gallery images of 3 identities, 3 queries."""
    names = [f"{pid:04d}_c{cam}s1_000001_00.jpg" for pid in (1, 2, 3) for cam in (1, 2)]
    gallery_paths = write_market_images(tmp_path / "gallery", names, seed=1)
    query_paths = write_market_images(tmp_path / "query", [f"{p:04d}_c3s1_000009_00.jpg" for p in (1, 2, 3)])
    rng = np.random.default_rng(0)
    g_pids = np.repeat([1, 2, 3], 2)
    index = GalleryIndex.build(
        rng.standard_normal((6, 8)).astype(np.float32),
        [os.path.basename(p) for p in gallery_paths],
        root=str(tmp_path / "gallery"),
        pids=g_pids,
        camids=np.tile([0, 1], 3),
    )
    result = index.search(rng.standard_normal((3, 8)).astype(np.float32), topk)
    return search_report(
        index,
        result,
        [os.path.basename(p) for p in query_paths],
        str(tmp_path / "query"),
        query_pids=[1, 2, 3],
        query_camids=[2, 2, 2],
    )


def test_ranked_lists_png_has_the_expected_layout_and_borders(tmp_path):
    report = gallery_report(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps(report))
    load_tool("visualize").main(
        ["ranked", "--results", str(tmp_path / "results.json"), "--output", str(tmp_path / "ranked.png")]
    )
    png = read_png(tmp_path / "ranked.png")
    # Rows: query cell (64 + 2*4 wide) + spacer (8) + 5 result cells, 2-pixel gaps; 4-pixel outer gaps.
    row_width = 2 + 72 + 2 + 8 + 2 + 5 * (72 + 2)
    row_height = 2 + 14 + 128 + 8 + 2
    assert png.shape == (4 + 15 + 4 + 3 * (row_height + 4), 4 + row_width + 4, 3)
    assert png.std() > 0
    # Each result's frame is green when its identity is the query's, red otherwise.
    for q, entry in enumerate(report["queries"]):
        y = 4 + 15 + 4 + q * (row_height + 4) + 2 + 14 + 1
        for rank, item in enumerate(entry["results"]):
            x = 4 + 2 + 72 + 2 + 8 + 2 + rank * 74 + 1
            assert tuple(png[y, x]) == (GREEN if item["match"] else RED)


def test_ranked_lists_and_html_refuse_paths_outside_their_root(tmp_path):
    report = gallery_report(tmp_path)
    report["queries"][0]["results"][0]["path"] = "../query/0001_c3s1_000009_00.jpg"
    with pytest.raises(UnsafeIndexPathError, match="gallery path .* the search report is corrupt"):
        ranked_lists_figure(report)
    with pytest.raises(UnsafeIndexPathError):
        write_search_html(tmp_path / "page.html", report)
    report = gallery_report(tmp_path)
    report["queries"][0]["query"] = "../gallery/0001_c1s1_000001_00.jpg"
    with pytest.raises(UnsafeIndexPathError, match="query path .* outside the query root"):
        ranked_lists_figure(report)
    with pytest.raises(UnsafeIndexPathError, match="query path"):
        write_search_html(tmp_path / "page.html", report)


def test_html_page_embeds_or_links_thumbnails(tmp_path):
    report = gallery_report(tmp_path, topk=4)
    write_search_html(tmp_path / "embed.html", report)
    page = (tmp_path / "embed.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 3 * 5  # each query and its 4 results
    matches = [item["match"] for entry in report["queries"] for item in entry["results"]]
    assert page.count("border-color: #00aa00") == sum(matches)
    assert page.count("border-color: #dc0000") == len(matches) - sum(matches)
    write_search_html(tmp_path / "pages" / "linked.html", report, thumbnails="relative")
    linked = (tmp_path / "pages" / "linked.html").read_text()
    assert "base64" not in linked and 'src="../gallery/0001_c1s1_000001_00.jpg"' in linked
    with pytest.raises(ValueError, match="thumbnails must be one of"):
        write_search_html(tmp_path / "x.html", report, thumbnails="inline")


def test_ranked_lists_of_moved_images_say_to_search_again_in_one_line(tmp_path, capsys):
    report = gallery_report(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps(report))
    os.rename(tmp_path / "gallery", tmp_path / "gallery_moved")  # the images moved after the search
    with pytest.raises(SystemExit) as info:
        load_tool("visualize").main(
            ["ranked", "--results", str(tmp_path / "results.json"), "--output", str(tmp_path / "r.png")]
        )
    err = capsys.readouterr().err
    assert (
        info.value.code == 1
        and err.startswith("visualize.py: error: gallery image ")
        and err.count("\n") == 1
    )
    assert "does not exist; the images moved since the search: search again with the gallery root" in err
    assert "rebuild" not in err and "pass the right" not in err  # ranked has no root option to pass
    with pytest.raises(FileNotFoundError, match="search again with the gallery root"):
        write_search_html(tmp_path / "page.html", report)


def test_activations_refuse_a_dff_checkpoint_as_the_base_in_one_line(tiny_models, tmp_path, capsys):
    dff_checkpoint, _ = tiny_models
    write_market_images(tmp_path / "imgs", ["0001_c1s1_000001_00.jpg"])
    with pytest.raises(SystemExit) as info:
        load_tool("visualize").main(
            ["activations", "--base-weights", dff_checkpoint, "--weights", dff_checkpoint, "--images",
             str(tmp_path / "imgs"), "--output", str(tmp_path / "act.png"), "--device", "cpu"]
        )  # fmt: skip
    err = capsys.readouterr().err
    assert info.value.code == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"visualize.py: error: --base-weights {dff_checkpoint} is a dff_resnet18 model;"), (
        err
    )
    assert "MODEL.BACKBONE resnet18" in err and not (tmp_path / "act.png").exists()
