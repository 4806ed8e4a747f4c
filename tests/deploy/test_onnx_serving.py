"""Serving an exported model: FeatureExtractor on the .onnx file gives the checkpoint's embeddings, the
search tools work from it with its provenance recorded, and mixing models stays an error."""

import json
import os
import shutil
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from script_loader import load_tool
from tiny_reid import write_market_images

from reid_dff.config import ConfigError
from reid_dff.data import build_test_sets
from reid_dff.evaluation import Features, evaluate
from reid_dff.inference import GalleryIndex, IndexCompatibilityError, load_features, search_features
from reid_dff.inference.extractor import FeatureExtractor
from reid_dff.inference.onnx_model import DeployExtraMissingError, OnnxModelError
from reid_dff.utils import sha256_file


def relative_difference(actual, expected):
    return np.abs(actual - expected).max() / np.abs(expected).max()


# ---------------------------------------------------------------------------- cheap checks
def test_a_missing_onnxruntime_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not read: the import fails first")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(DeployExtraMissingError, match="'onnxruntime'.*'deploy' extra"):
        FeatureExtractor(model)
    write_market_images(tmp_path / "images", ["0001_c1s1_000001_01.jpg"])
    args = [
        "--weights",
        str(model),
        "--images",
        str(tmp_path / "images"),
        "--output",
        str(tmp_path / "f.npz"),
    ]
    with pytest.raises(SystemExit) as exit_info:
        load_tool("extract_features").main(args)
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("extract_features.py: error: ")
    assert lines[0].endswith('pip install -e ".[deploy]"')


def test_an_onnx_file_not_written_by_reid_dff_is_refused(tmp_path):
    images = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["B", 3, 8, 4])
    out = helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["B", 3, 8, 4])
    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["embeddings"])], "g", [images], [out]
    )
    path = tmp_path / "foreign.onnx"
    # IR version 10 (opset 20's): the newest onnx writes versions onnxruntime may not read yet.
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10), path)
    with pytest.raises(OnnxModelError, match="carries no reid-dff metadata"):
        FeatureExtractor(path)
    with pytest.raises(OnnxModelError, match="not found"):
        FeatureExtractor(tmp_path / "missing.onnx")


def fake_features(count, checkpoint_sha256, onnx_sha256="", seed=0):
    rng = np.random.default_rng(seed)
    return Features(
        feats=rng.normal(size=(count, 8)).astype(np.float32),
        paths=[f"{i:04d}_c{1 + i % 2}s1_000001_01.jpg" for i in range(count)],
        pids=np.arange(count) // 2,
        camids=np.arange(count) % 2,
        model_name="dff_resnet18",
        checkpoint_sha256=checkpoint_sha256,
        extra={"onnx_sha256": onnx_sha256, "onnx_path": "/m.onnx"} if onnx_sha256 else {},
    )


def test_an_index_records_its_onnx_model_and_refuses_another(tmp_path):
    index = GalleryIndex.from_features(fake_features(10, "c" * 64, onnx_sha256="a" * 64))
    index.save(tmp_path / "index")
    meta = json.loads((tmp_path / "index" / "meta.json").read_text())["model"]
    assert (meta["checkpoint_sha256"], meta["onnx_sha256"], meta["onnx_path"]) == (
        "c" * 64,
        "a" * 64,
        "/m.onnx",
    )
    loaded = GalleryIndex.load(tmp_path / "index")
    assert (loaded.meta.onnx_sha256, loaded.meta.onnx_path) == ("a" * 64, "/m.onnx")
    # The same export, and the checkpoint it reproduces, search it.
    assert search_features(loaded, fake_features(4, "c" * 64, onnx_sha256="a" * 64, seed=1), topk=3)
    assert search_features(loaded, fake_features(4, "c" * 64, seed=1), topk=3)
    # Another export (another input size, say) or another checkpoint do not.
    with pytest.raises(IndexCompatibilityError, match="ONNX model SHA-256: index aaaaaaaaaaaa"):
        search_features(loaded, fake_features(4, "c" * 64, onnx_sha256="b" * 64, seed=1), topk=3)
    with pytest.raises(IndexCompatibilityError, match="checkpoint SHA-256"):
        search_features(loaded, fake_features(4, "d" * 64, seed=1), topk=3)
    with pytest.raises(IndexCompatibilityError, match="ONNX model SHA-256"):
        GalleryIndex.load(tmp_path / "index", onnx_sha256="b" * 64)


def test_an_index_without_onnx_fields_still_loads(tmp_path):
    GalleryIndex.from_features(fake_features(6, "c" * 64)).save(tmp_path / "index")
    meta_path = tmp_path / "index" / "meta.json"
    raw = json.loads(meta_path.read_text())
    del raw["model"]["onnx_sha256"], raw["model"]["onnx_path"]  # as written before ONNX export existed
    meta_path.write_text(json.dumps(raw))
    assert GalleryIndex.load(tmp_path / "index").meta.onnx_sha256 == ""


# ---------------------------------------------------------------------------- with an exported model
@pytest.mark.e2e
@pytest.mark.parametrize("flip", [False, True])
def test_feature_extractor_on_the_onnx_file_equals_it_on_the_checkpoint(
    dff_checkpoint, dff_export, tmp_path, flip
):
    _, checkpoint = dff_checkpoint
    opts = ["TEST.FLIP_FEATS", str(flip)]
    torch_side = FeatureExtractor(checkpoint, device="cpu", opts=opts)
    onnx_side = FeatureExtractor(dff_export.path, opts=opts)
    paths = write_market_images(tmp_path, [f"000{i}_c1s1_000000_0{i}.jpg" for i in range(5)], size=(90, 37))
    expected, got = torch_side(paths), onnx_side(paths)
    assert got.shape == expected.shape == (5, 512)
    assert relative_difference(got, expected) <= 1e-4
    assert onnx_side.flip is flip and onnx_side.dim == torch_side.dim == 512
    assert (onnx_side.model_name, onnx_side.metric) == (torch_side.model_name, torch_side.metric)
    assert onnx_side.checkpoint_sha256 == torch_side.checkpoint_sha256 == sha256_file(checkpoint)
    assert onnx_side.onnx_sha256 == sha256_file(dff_export.path) and torch_side.onnx_sha256 == ""
    assert onnx_side.provenance == {"onnx_path": dff_export.path, "onnx_sha256": dff_export.onnx_sha256}


@pytest.mark.e2e
def test_an_onnx_model_keeps_its_input_and_config(dff_checkpoint, dff_export):
    with pytest.raises(ConfigError, match=r"INPUT.SIZE_TEST \[32, 16\] \(exported: \[64, 32\]\)"):
        FeatureExtractor(dff_export.path, opts=["INPUT.SIZE_TEST", "[32, 16]"])
    with pytest.raises(ConfigError, match="give the .onnx file alone"):
        FeatureExtractor(dff_checkpoint[0], weights=dff_export.path)
    # Loader settings are free.
    assert FeatureExtractor(dff_export.path, opts=["TEST.IMS_PER_BATCH", "3"]).batch_size == 3


@pytest.mark.e2e
def test_an_index_built_from_onnx_features_searches(dff_checkpoint, dff_export, tmp_path, capsys):
    cfg, checkpoint = dff_checkpoint
    split = build_test_sets(cfg, "synthetic:0")[0]
    gallery_file, index_dir = tmp_path / "gallery.npz", tmp_path / "index"
    extract = ["--weights", dff_export.path, "--dataset", "synthetic:0", "--no-progress"]
    load_tool("extract_features").main([*extract, "--output", str(gallery_file)])
    gallery = load_features(gallery_file)
    assert gallery.checkpoint_sha256 == sha256_file(checkpoint)
    assert gallery.extra == {"onnx_path": dff_export.path, "onnx_sha256": dff_export.onnx_sha256}
    load_tool("build_index").main(["--features", str(gallery_file), "--index", str(index_dir)])
    assert json.loads((index_dir / "meta.json").read_text())["model"]["onnx_sha256"] == dff_export.onnx_sha256
    # No --weights: the index names its ONNX model, which extracts the query images.
    query_dir = os.path.dirname(split.query[0].path)
    results = tmp_path / "results.json"
    search = ["--index", str(index_dir), "--topk", "5", "--exclude-same-camera"]
    load_tool("search").main([*search, "--query", query_dir, "--output", str(results)])
    report = json.loads(results.read_text())
    query = FeatureExtractor(dff_export.path).feature_set(split.query, query_dir)
    expected = evaluate(query.feats, gallery.feats, query.pids, gallery.pids, query.camids, gallery.camids)
    assert report["cmc"]["1"] == pytest.approx(expected["cmc"][0], abs=1e-12)
    assert report["num_valid_queries"] == expected["num_valid_queries"] and len(report["queries"]) == len(
        split.query
    )
    # The checkpoint's features rank the same way (the export reproduces it within 1e-4).
    torch_query = FeatureExtractor(checkpoint, device="cpu").feature_set(split.query, query_dir)
    assert relative_difference(query.feats, torch_query.feats) <= 1e-4
    checkpoint_query = tmp_path / "query.npz"
    load_tool("extract_features").main(
        ["--weights", checkpoint, "--images", query_dir, "--output", str(checkpoint_query), "--no-progress"]
    )
    load_tool("search").main([*search, "--query-features", str(checkpoint_query), "--output", str(results)])
    assert json.loads(results.read_text())["cmc"]["1"] == pytest.approx(report["cmc"]["1"], abs=1e-12)
    # Another model's queries are refused in one line.
    from tiny_reid import save_tiny_checkpoint

    other = save_tiny_checkpoint(tmp_path / "other.pth", cfg, seed=3)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        load_tool("search").main([*search, "--query", query_dir, "--weights", other])
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "checkpoint SHA-256" in lines[0]
    # An index whose ONNX file is gone is searched with the checkpoint it was exported from.
    moved = tmp_path / "moved.onnx"
    shutil.copyfile(dff_export.path, moved)
    moved_gallery, moved_index = tmp_path / "moved.npz", tmp_path / "moved_index"
    load_tool("extract_features").main(
        ["--weights", str(moved), "--dataset", "synthetic:0", "--no-progress", "--output", str(moved_gallery)]
    )
    load_tool("build_index").main(["--features", str(moved_gallery), "--index", str(moved_index)])
    moved.unlink()
    moved_search = ["--index", str(moved_index), "--topk", "5", "--exclude-same-camera", "--query", query_dir]
    load_tool("search").main([*moved_search, "--output", str(results)])
    assert json.loads(results.read_text())["cmc"]["1"] == pytest.approx(report["cmc"]["1"], abs=1e-12)
