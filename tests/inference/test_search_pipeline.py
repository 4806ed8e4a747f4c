"""The acceptance path: extract an unseen domain's gallery, index it, search its queries, and get the
evaluator's Rank-1 (and CMC) -- through the library and through the command-line tools."""

import json
import os

import numpy as np
import pytest
from script_loader import load_tool

from reid_dff.data import build_test_sets
from reid_dff.evaluation import evaluate
from reid_dff.inference import (
    FeaturesFileError,
    GalleryIndex,
    IndexCompatibilityError,
    collect_images,
    load_features,
    parse_identity,
    save_features,
    search_features,
)
from reid_dff.inference.extractor import FeatureExtractor


@pytest.fixture(scope="module")
def unseen_domain(tiny_checkpoint):
    """(extractor, query Features, gallery Features, split) of the tiny synthetic target domain."""
    cfg, checkpoint = tiny_checkpoint
    split = build_test_sets(cfg, "synthetic:0")[0]
    extractor = FeatureExtractor(checkpoint, device="cpu")
    root = os.path.dirname(os.path.dirname(split.query[0].path))
    return (
        extractor,
        extractor.feature_set(split.query, root),
        extractor.feature_set(split.gallery, root),
        split,
    )


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_flat_index_rank1_equals_the_evaluator(unseen_domain, metric):
    _, query, gallery, _ = unseen_domain
    query.metric = gallery.metric = metric
    try:
        index = GalleryIndex.from_features(gallery)
        report = search_features(index, query, topk=10, exclude_same_camera=True)
    finally:
        query.metric = gallery.metric = "cosine"
    expected = evaluate(
        query.feats,
        gallery.feats,
        query.pids,
        gallery.pids,
        query.camids,
        gallery.camids,
        metric=metric,
        max_rank=10,
    )
    assert report["cmc"]["1"] == pytest.approx(expected["cmc"][0], abs=1e-12)
    np.testing.assert_allclose([report["cmc"][str(r)] for r in range(1, 11)], expected["cmc"], atol=1e-12)
    assert report["num_valid_queries"] == expected["num_valid_queries"]
    # The random model is not perfect, so the check means something: some queries miss at rank 1.
    assert 0 < expected["cmc"][0] < 1
    for entry in report["queries"]:
        ranked = entry["results"]
        assert [r["rank"] for r in ranked] == list(range(1, len(ranked) + 1))
        assert all(not (r["pid"] == entry["pid"] and r["camid"] == entry["camid"]) for r in ranked)
        assert all(a["distance"] <= b["distance"] for a, b in zip(ranked, ranked[1:]))


@pytest.mark.e2e
def test_the_tools_reproduce_the_evaluators_rank1(unseen_domain, tiny_checkpoint, tmp_path, capsys):
    cfg, checkpoint = tiny_checkpoint
    _, query, gallery, split = unseen_domain
    load_tool("extract_features").main(
        [
            "--weights",
            checkpoint,
            "--dataset",
            "synthetic:0",
            "--split",
            "gallery",
            "--output",
            str(tmp_path / "gallery.npz"),
            "--no-progress",
            "DATASETS.ROOT",  # the overrides after every flag, as docs/search.md writes the command
            cfg.DATASETS.ROOT,
        ]
    )
    saved = load_features(tmp_path / "gallery.npz")
    np.testing.assert_allclose(saved.feats, gallery.feats, rtol=1e-4, atol=1e-4)
    assert [os.path.join(saved.root, p) for p in saved.paths] == [s.path for s in split.gallery]
    np.testing.assert_array_equal(saved.pids, gallery.pids)
    load_tool("build_index").main(
        ["--features", str(tmp_path / "gallery.npz"), "--index", str(tmp_path / "index")]
    )
    query_dir = os.path.dirname(split.query[0].path)
    load_tool("search").main(
        [
            "--index",
            str(tmp_path / "index"),
            "--query",
            query_dir,
            "--topk",
            "5",
            "--exclude-same-camera",
            "--output",
            str(tmp_path / "results.json"),
            "--html",
            str(tmp_path / "results.html"),
            "DATASETS.ROOT",
            cfg.DATASETS.ROOT,
        ]
    )
    report = json.loads((tmp_path / "results.json").read_text())
    expected = evaluate(query.feats, gallery.feats, query.pids, gallery.pids, query.camids, gallery.camids)
    assert report["cmc"]["1"] == pytest.approx(expected["cmc"][0], abs=1e-12)
    # The same Rank-1 as tools/eval.py on the same checkpoint and target (same metric, TEST.METRIC).
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(cfg.dump())
    status = load_tool("eval").main(
        ["--config-file", str(config_file), "MODEL.WEIGHTS", checkpoint, "OUTPUT_DIR", str(tmp_path / "eval")]
    )
    assert status == 0  # main returns an exit status; the report is the results.json it wrote
    evaluated = json.loads((tmp_path / "eval" / "results.json").read_text())
    eval_split = evaluated["targets"]["synthetic:0"]["splits"][0]
    assert report["cmc"]["1"] == pytest.approx(eval_split["R1"], abs=1e-12)
    assert report["cmc"]["5"] == pytest.approx(eval_split["R5"], abs=1e-12)
    assert report["num_valid_queries"] == eval_split["num_valid_queries"]
    assert len(report["queries"]) == len(split.query) and report["topk"] == 5
    first = report["queries"][0]
    assert {"query", "pid", "camid", "results"} <= set(first)
    assert {"rank", "path", "distance", "pid", "camid", "match"} <= set(first["results"][0])
    page = (tmp_path / "results.html").read_text()
    # One embedded thumbnail per query and per result.
    assert page.count("data:image/jpeg;base64,") == len(split.query) * 6
    assert "R1" in capsys.readouterr().err


def test_search_refuses_another_model(unseen_domain, tmp_path):
    _, query, gallery, _ = unseen_domain
    index = GalleryIndex.from_features(gallery)
    other = load_features_like(query, tmp_path, checkpoint_sha256="0" * 64)
    with pytest.raises(IndexCompatibilityError, match="checkpoint SHA-256"):
        search_features(index, other, topk=3)
    other = load_features_like(query, tmp_path, model_name="resnet50")
    with pytest.raises(IndexCompatibilityError, match="model"):
        search_features(index, other, topk=3)


def test_an_index_built_with_another_metric_is_searched_with_its_own(unseen_domain, tmp_path, capsys):
    # Features files hold raw embeddings: the index's metric decides, whatever the queries' TEST.METRIC.
    _, query, gallery, _ = unseen_domain
    save_features(tmp_path / "gallery.npz", gallery)
    save_features(tmp_path / "query.npz", query)
    load_tool("build_index").main(
        [
            "--features",
            str(tmp_path / "gallery.npz"),
            "--index",
            str(tmp_path / "idx"),
            "--metric",
            "euclidean",
        ]
    )
    index = GalleryIndex.load(tmp_path / "idx")
    assert query.metric == "cosine" and index.meta.metric == "euclidean"
    report = search_features(index, load_features(tmp_path / "query.npz"), topk=3)
    first = report["queries"][0]["results"]
    expected = ((query.feats[0] - gallery.feats) ** 2).sum(axis=1)
    assert [r["distance"] for r in first] == pytest.approx(np.sort(expected)[:3], rel=1e-4)
    load_tool("search").main(
        ["--index", str(tmp_path / "idx"), "--query-features", str(tmp_path / "query.npz"), "--topk", "3"]
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed["queries"][0]["results"][0]["distance"] == pytest.approx(first[0]["distance"])


def load_features_like(features, tmp_path, **changes):
    """A saved-and-reloaded copy of ``features`` with some fields changed."""
    path = tmp_path / "changed.npz"
    save_features(path, features)
    copy = load_features(path)
    for key, value in changes.items():
        setattr(copy, key, value)
    return copy


def test_search_tool_refuses_a_checkpoint_that_is_not_the_indexed_one(
    unseen_domain, tiny_checkpoint, tmp_path, capsys
):
    from tiny_reid import save_tiny_checkpoint

    cfg, _ = tiny_checkpoint
    _, _, gallery, split = unseen_domain
    GalleryIndex.from_features(gallery).save(tmp_path / "index")
    retrained = save_tiny_checkpoint(tmp_path / "other.pth", cfg, seed=1)
    with pytest.raises(SystemExit) as info:
        load_tool("search").main(
            ["--index", str(tmp_path / "index"), "--query", split.query[0].path, "--weights", retrained]
        )
    assert info.value.code == 1
    assert "search.py: error: queries do not match the index: checkpoint SHA-256" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        load_tool("search").main(["--index", str(tmp_path / "missing"), "--query", split.query[0].path])
    assert "index directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        load_tool("build_index").main(
            ["--features", str(tmp_path / "none.npz"), "--index", str(tmp_path / "i")]
        )
    assert "build_index.py: error: features file" in capsys.readouterr().err


def test_exclusion_needs_query_identities(unseen_domain, tmp_path):
    _, query, gallery, _ = unseen_domain
    index = GalleryIndex.from_features(gallery)
    anonymous = load_features_like(query, tmp_path)
    anonymous.pids = np.full(len(anonymous.paths), -1)
    with pytest.raises(ValueError, match="pid and camid"):
        search_features(index, anonymous, topk=3, exclude_same_camera=True)
    report = search_features(index, anonymous, topk=3)
    assert all(r["match"] is None for q in report["queries"] for r in q["results"])


def test_features_file_round_trip_and_errors(unseen_domain, tmp_path):
    _, query, _, _ = unseen_domain
    save_features(tmp_path / "q.npz", query)
    back = load_features(tmp_path / "q.npz")
    np.testing.assert_array_equal(back.feats, query.feats)
    assert back.paths == query.paths and back.root == query.root
    assert back.checkpoint_sha256 == query.checkpoint_sha256 and back.metric == query.metric
    with pytest.raises(FeaturesFileError, match="does not exist"):
        load_features(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(FeaturesFileError, match="cannot read"):
        load_features(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", feats=np.zeros((2, 3)))
    with pytest.raises(FeaturesFileError, match="lacks arrays"):
        load_features(tmp_path / "other.npz")
    np.savez(
        tmp_path / "pickled.npz",
        feats=np.zeros((1, 3)),
        paths=np.array([{"a": 1}], dtype=object),
        pids=np.zeros(1),
        camids=np.zeros(1),
        meta=np.array("{}"),
    )
    with pytest.raises(FeaturesFileError):
        load_features(tmp_path / "pickled.npz")


def test_collect_images_folder_list_and_single_file(tmp_path):
    from tiny_reid import write_market_images

    write_market_images(tmp_path / "imgs" / "a", ["0001_c1s1_000001_00.jpg", "0002_c2s1_000001_00.jpg"])
    write_market_images(tmp_path / "imgs" / "b", ["person.png"])
    (tmp_path / "imgs" / "notes.md").write_text("not an image")
    images = collect_images(tmp_path / "imgs")
    assert images.paths == ["a/0001_c1s1_000001_00.jpg", "a/0002_c2s1_000001_00.jpg", "b/person.png"]
    assert parse_identity(images.paths[1]) == (2, 1) and parse_identity("b/person.png") is None
    listing = tmp_path / "list.txt"
    listing.write_text("# queries\nimgs/a/0002_c2s1_000001_00.jpg\n\nimgs/b/person.png\n")
    listed = collect_images(listing)
    assert listed.absolute() == [
        str(tmp_path / "imgs" / "a" / "0002_c2s1_000001_00.jpg"),
        str(tmp_path / "imgs" / "b" / "person.png"),
    ]
    single = collect_images(tmp_path / "imgs" / "b" / "person.png")
    assert single.paths == ["person.png"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        collect_images(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        collect_images(tmp_path / "empty")
    listing.write_text("imgs/missing.jpg\n")
    with pytest.raises(FileNotFoundError, match="list.txt:1"):
        collect_images(listing)
    with pytest.raises(ValueError, match="neither an image"):
        collect_images(tmp_path / "imgs" / "notes.md")


@pytest.mark.parametrize(
    "options, expected",
    [
        (
            ["--type", "hnsw", "--M", "8", "--ef-search", "16"],
            {"M": 8, "ef_construction": 40, "ef_search": 16},
        ),
        (["--type", "ivf", "--nlist", "2", "--nprobe", "2"], {"nlist": 2, "nprobe": 2, "train_per_list": 64}),
    ],
)
def test_build_index_tool_passes_index_parameters(unseen_domain, tmp_path, options, expected):
    _, query, gallery, _ = unseen_domain
    save_features(tmp_path / "gallery.npz", gallery)
    load_tool("build_index").main(
        ["--features", str(tmp_path / "gallery.npz"), "--index", str(tmp_path / "i"), *options]
    )
    index = GalleryIndex.load(tmp_path / "i", dim=gallery.feats.shape[1], normalized=True)
    assert index.meta.index_type == options[1] and index.meta.params == expected
    assert len(index) == len(gallery.paths) and list(index.paths) == gallery.paths
    # With every list probed / a wide beam on 31 items, the approximate index finds the exact top-5.
    exact = GalleryIndex.from_features(gallery).search(query.feats, 5).indices
    index.set_search_params(**({"nprobe": 2} if options[1] == "ivf" else {"ef_search": 64}))
    np.testing.assert_array_equal(index.search(query.feats, 5).indices, exact)


@pytest.mark.parametrize(
    "options, message",
    [
        (
            ["--type", "ivfpq", "--nlist", "2", "--pq-m", "7"],
            "ivfpq needs pq_m to divide the feature dimension",
        ),
        (["--type", "ivf", "--nlist", "1000"], "ivf needs 1 <= nlist <= number of gallery vectors"),
    ],
)
def test_index_parameter_mistakes_are_one_line(unseen_domain, tmp_path, capsys, options, message):
    _, _, gallery, _ = unseen_domain
    save_features(tmp_path / "gallery.npz", gallery)
    with pytest.raises(SystemExit) as info:
        load_tool("build_index").main(
            ["--features", str(tmp_path / "gallery.npz"), "--index", str(tmp_path / "i"), *options]
        )
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("build_index.py: error: ") and message in err and "Traceback" not in err, err
    assert not (tmp_path / "i").exists()


def test_a_search_parameter_of_another_index_type_is_one_line(unseen_domain, tmp_path, capsys):
    _, query, gallery, _ = unseen_domain
    save_features(tmp_path / "gallery.npz", gallery)
    save_features(tmp_path / "query.npz", query)
    load_tool("build_index").main(
        ["--features", str(tmp_path / "gallery.npz"), "--index", str(tmp_path / "i"), "--type", "hnsw"]
    )
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        load_tool("search").main(
            ["--index", str(tmp_path / "i"), "--query-features", str(tmp_path / "query.npz"), "--nprobe", "4"]
        )
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("search.py: error: ") and "hnsw index has no search parameter ['nprobe']" in err, (
        err
    )


def test_build_index_tool_builds_a_product_quantized_index(unseen_domain, tmp_path, capfd, caplog):
    _, query, gallery, _ = unseen_domain
    save_features(tmp_path / "gallery.npz", gallery)
    options = ["--type", "ivfpq", "--nlist", "2", "--nprobe", "2", "--pq-m", "4", "--pq-nbits", "4"]
    load_tool("build_index").main(
        ["--features", str(tmp_path / "gallery.npz"), "--index", str(tmp_path / "i"), *options]
    )
    # a gallery this small: one warning of ours, not FAISS's one per sub-quantizer (FAISS's single line
    # about the coarse quantizer's 2 lists stays)
    assert capfd.readouterr().err.count("WARNING clustering") <= 1
    assert [r.getMessage() for r in caplog.records].count(
        f"ivfpq: {len(gallery.paths)} gallery vectors train 16 centroids per sub-quantizer, where FAISS "
        "recommends at least 624; the codes will be coarse (a flat or ivf index is exact on a gallery this small)"
    ) == 1
    index = GalleryIndex.load(tmp_path / "i", dim=gallery.feats.shape[1], normalized=True)
    assert index.meta.index_type == "ivfpq"
    assert index.meta.params == {"nlist": 2, "nprobe": 2, "train_per_list": 64, "pq_m": 4, "pq_nbits": 4}
    result = index.search(query.feats, 5)
    assert result.indices.shape == (len(query.paths), 5) and (result.indices >= 0).all()


def test_streamed_features_file_equals_the_in_memory_one(unseen_domain, tmp_path):
    extractor, _, _, split = unseen_domain
    root = os.path.dirname(os.path.dirname(split.query[0].path))
    gallery = extractor.feature_set(split.gallery, root)  # now: same threads as the streamed run
    rows, dim = extractor.save_feature_set(split.gallery, root, tmp_path / "g.npz")
    assert (rows, dim) == gallery.feats.shape
    streamed = load_features(tmp_path / "g.npz", mmap=True)
    np.testing.assert_array_equal(streamed.feats, gallery.feats)  # the same batches, the same floats
    assert streamed.paths == gallery.paths and streamed.root == gallery.root
    assert (streamed.pids == gallery.pids).all() and (streamed.camids == gallery.camids).all()
    assert streamed.checkpoint_sha256 == gallery.checkpoint_sha256 and streamed.metric == gallery.metric
    assert sorted(os.listdir(tmp_path)) == ["g.npz"]  # the temporary rows file is gone
    # a failure part-way leaves neither an output nor a temporary file behind
    broken = tmp_path / "broken"
    broken.mkdir()
    bad = broken / "0001_c1s1_000001_00.jpg"
    bad.write_bytes(b"not a jpeg")
    from reid_dff.data import Sample

    with pytest.raises(OSError):
        extractor.save_feature_set([*split.gallery[:3], Sample(str(bad), 1, 0)], root, broken / "out.npz")
    assert sorted(os.listdir(broken)) == ["0001_c1s1_000001_00.jpg"]


def test_features_file_writer_holds_one_batch_not_the_gallery(tmp_path, monkeypatch):
    import tracemalloc

    import reid_dff.inference.features_file as features_file
    from reid_dff.evaluation import Features
    from reid_dff.inference.features_file import FeaturesFileWriter

    monkeypatch.setattr(features_file, "_STREAM_CHUNK_BYTES", 256 << 10)  # 4 MB at this scale

    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((500, 256)).astype(np.float32) for _ in range(8)]  # 4 MB in all
    header = Features(np.zeros((0, 0), np.float32), [], root=str(tmp_path), model_name="m", metric="cosine")
    tracemalloc.start()
    with FeaturesFileWriter(tmp_path / "big.npz", 4000, header) as writer:
        for b, feats in enumerate(batches):
            del feats  # only the writer's own allocations count below
            writer.add(batches[b], [f"{b}_{i}.jpg" for i in range(500)], np.full(500, b), np.zeros(500))
        assert writer.close() == (4000, 256)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4000 * 256 * 4 / 4  # a chunk and the paths/ids, never the 4 MB of features
    loaded = load_features(tmp_path / "big.npz")
    np.testing.assert_array_equal(loaded.feats, np.concatenate(batches))
    assert loaded.paths[501] == "1_1.jpg" and loaded.pids[501] == 1 and loaded.model_name == "m"
