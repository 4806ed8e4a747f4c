"""ONNX export: the graph onnxruntime runs reproduces PyTorch (every DFF filter, ResNet-18 and DFF-R18 at a
batch size other than the export's), the file carries its metadata, and a mismatch leaves no file."""

import hashlib
import json
import os
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch
from script_loader import load_tool
from torch import nn

from reid_dff.config import get_cfg
from reid_dff.data.transforms import build_transforms, eval_resize
from reid_dff.inference import onnx_export
from reid_dff.inference.onnx_export import (
    OnnxExportError,
    OnnxParityError,
    check_parity,
    export_checkpoint,
    onnx_bytes,
    relative_error,
)
from reid_dff.inference.onnx_model import DeployExtraMissingError, OnnxModelError, OnnxModelInfo
from reid_dff.modeling import BACKBONE_REGISTRY, build_model
from reid_dff.modeling.backbones.ffc import FFCConv2d
from reid_dff.modeling.backbones.filters import FilterSettings, filter_names


def torch_reference(cfg, checkpoint, images):
    """Embeddings of the checkpoint's model rebuilt by hand (load_state_dict), eval mode."""
    model = build_model(cfg, 7, imagenet_init=False)
    model.load_state_dict(torch.load(checkpoint, weights_only=True)["model"])
    with torch.no_grad():
        return model.eval()(images).numpy()


def run_onnxruntime(path, images):
    """onnxruntime on the file directly (not through reid-dff): the first output."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images.numpy()})[0], session


# ---------------------------------------------------------------------------- cheap checks
def test_relative_error_is_the_largest_difference_over_the_largest_reference():
    expected = np.array([[1.0, -4.0], [2.0, 0.5]])
    actual = expected + np.array([[0.0, 0.002], [-0.001, 0.0]])
    assert relative_error(actual, expected) == pytest.approx(0.002 / 4.0)
    assert relative_error(expected, expected) == 0.0
    assert relative_error(expected[:1], expected) == float("inf")


def test_metadata_round_trips_and_foreign_files_are_refused():
    info = OnnxModelInfo(
        input_size=(256, 128),
        pixel_mean=[0.485, 0.456, 0.406],
        pixel_std=[0.229, 0.224, 0.225],
        metric="cosine",
        embedding_dim=2048,
        backbone="dff_resnet50",
        dff_filter="ins_spatial",
        flip_feats=False,
        checkpoint_sha256="ab" * 32,
        checkpoint_path="/x/model.pth",
        opset=20,
        config=get_cfg().dump(),
    )
    props = info.to_metadata()
    assert all(isinstance(v, str) for v in props.values())
    assert (props["input_height"], props["input_width"], props["input_layout"]) == ("256", "128", "NCHW")
    assert json.loads(props["pixel_std"]) == [0.229, 0.224, 0.225]
    assert OnnxModelInfo.from_metadata(props, "m.onnx") == info
    with pytest.raises(OnnxModelError, match="carries no reid-dff metadata"):
        OnnxModelInfo.from_metadata({"producer": "someone"}, "other.onnx")
    with pytest.raises(OnnxModelError, match="version 99"):
        OnnxModelInfo.from_metadata({**props, "format_version": "99"}, "m.onnx")
    with pytest.raises(OnnxModelError, match="unreadable"):
        OnnxModelInfo.from_metadata({**props, "input_height": "tall"}, "m.onnx")
    assert OnnxModelInfo.from_metadata(props, "m.onnx").build_config("m.onnx") == get_cfg()
    broken = OnnxModelInfo.from_metadata({**props, "config": "- not a mapping"}, "m.onnx")
    with pytest.raises(OnnxModelError, match=r"'config' metadata of m\.onnx must be a YAML mapping"):
        broken.build_config("m.onnx")
    # A file written before the resize keys existed reads as the ReID pipeline's stretch.
    older = {k: v for k, v in props.items() if k not in ("input_resize", "input_shorter_side")}
    assert OnnxModelInfo.from_metadata(older, "m.onnx").input_resize == "stretch"


def _bilinear(image, size):
    """An ``(H, W, 3)`` uint8 image resized to ``size`` (antialiased bilinear), ``(3, h, w)`` in [0, 1]."""
    batch = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    return torch.nn.functional.interpolate(batch, size=size, mode="bilinear", antialias=True)[0] / 255.0


def test_the_metadata_says_how_the_test_pipeline_resizes():
    """Checked against the transform itself: a 300x200 image through the test pipeline of each style."""
    image = np.random.default_rng(0).integers(0, 256, (300, 200, 3), dtype=np.uint8)
    reid = get_cfg()
    reid.merge_from_list(["INPUT.SIZE_TEST", "[64, 32]"])
    assert eval_resize(reid) == ("stretch", 0)
    mean, std = (torch.tensor(v)[:, None, None] for v in (reid.INPUT.PIXEL_MEAN, reid.INPUT.PIXEL_STD))
    expected = (_bilinear(image, (64, 32)) - mean) / std
    assert torch.allclose(build_transforms(reid, is_train=False)(image), expected, atol=0.02)

    imagenet = get_cfg()
    imagenet.merge_from_list(
        ["INPUT.STYLE", "imagenet", "INPUT.PADDING", "0", "INPUT.SIZE_TEST", "[224, 224]"]
    )
    assert eval_resize(imagenet) == ("shorter_side_center_crop", 256)
    # Shorter side 200 -> 256 keeps the aspect ratio (300 -> 384); the centre 224x224 crop follows.
    top, left = (384 - 224) // 2, (256 - 224) // 2
    expected = (_bilinear(image, (384, 256))[:, top : top + 224, left : left + 224] - mean) / std
    assert torch.allclose(build_transforms(imagenet, is_train=False)(image), expected, atol=0.02)


def test_an_opset_the_exporter_cannot_write_is_refused(tmp_path, monkeypatch):
    with pytest.raises(OnnxExportError, match="opset 17 is older"):
        onnx_bytes(nn.Linear(4, 2), torch.zeros(2, 4), opset=17)
    # export_checkpoint refuses it before reading the checkpoint (here: a file that is not one).
    fake = tmp_path / "not_read.pth"
    fake.write_bytes(b"never opened")
    monkeypatch.setattr("reid_dff.inference.extractor.FeatureExtractor", None)  # building one would fail
    with pytest.raises(OnnxExportError, match="opset 17 is older"):
        export_checkpoint(fake, tmp_path / "m.onnx", opset=17)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("package", ["onnxscript", "onnx"])
def test_a_missing_deploy_package_is_one_line_naming_the_extra(
    package, dff_checkpoint, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, package, None)  # what `import package` does when it is not installed
    with pytest.raises(DeployExtraMissingError):
        export_checkpoint(dff_checkpoint[1], tmp_path / "m.onnx")
    with pytest.raises(SystemExit) as exit_info:
        load_tool("export_model").main(["--weights", dff_checkpoint[1], "--output", str(tmp_path / "m.onnx")])
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("export_model.py: error: ") and repr(package) in lines[0]
    assert lines[0].endswith('pip install -e ".[deploy]"')
    assert not (tmp_path / "m.onnx").exists()


def test_an_onnx_file_is_not_exported_again(tmp_path):
    with pytest.raises(OnnxExportError, match="is an ONNX file already"):
        export_checkpoint(tmp_path / "model.onnx", tmp_path / "again.onnx")


def test_the_output_must_be_named_onnx(dff_checkpoint, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_tool("export_model").main(["--weights", dff_checkpoint[1], "--output", "model.pth"])
    assert exit_info.value.code == 2
    assert "must end in .onnx" in capsys.readouterr().err


# ---------------------------------------------------------------------------- exports (each one is seconds)
def filter_unit(name, **mask_options):
    """An FFC conv (stride 2: the spectral path's pooling too) with filter ``name`` and random weights."""
    settings = FilterSettings(name=name, mask_kernel=3, se_reduction=4, **mask_options)
    unit = FFCConv2d(16, 16, 3, 2, 0.5, 0.5, (16, 8), settings)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # random masks and BN statistics, not the 0.5 mask / identity BN of the start
        for name, tensor in [*unit.named_parameters(), *unit.named_buffers()]:
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            elif tensor.dtype.is_floating_point:
                tensor.copy_(0.5 * torch.randn(tensor.shape, generator=generator))
    return unit.eval()


FILTER_CASES = [(name, {}) for name in filter_names()] + [
    ("ins_spatial", {"mask_input": "log_magnitude", "mask_layout": "centered"}),
]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("name", "mask_options"),
    FILTER_CASES,
    ids=[name + "".join(f"-{v}" for v in o.values()) for name, o in FILTER_CASES],
)
def test_every_dff_filter_exports_and_onnxruntime_reproduces_it(name, mask_options, tmp_path):
    unit = filter_unit(name, **mask_options)
    data = onnx_bytes(unit, torch.randn(2, 16, 16, 8))
    assert check_parity(data, unit, (16, 16, 8), batch=3) <= 1e-4
    (tmp_path / "unit.onnx").write_bytes(data)
    images = torch.randn(5, 16, 16, 8, generator=torch.Generator().manual_seed(5))
    got, _ = run_onnxruntime(tmp_path / "unit.onnx", images)
    with torch.no_grad():
        expected = unit(images).numpy()
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    if (
        name != "none"
    ):  # the filter changes the output 10x more than the parity tolerance: a graph without it fails
        plain = filter_unit("none")
        plain.load_state_dict(unit.state_dict(), strict=False)
        with torch.no_grad():
            assert np.abs(plain(images).numpy() - expected).max() > 1e-3 * np.abs(expected).max()


@pytest.mark.e2e
def test_export_tool_resnet18_matches_pytorch_at_another_batch_size(resnet_checkpoint, tmp_path, capsys):
    cfg, checkpoint = resnet_checkpoint
    output = tmp_path / "resnet18.onnx"
    load_tool("export_model").main(["--weights", checkpoint, "--output", str(output), "--input", "32", "16"])
    assert "resnet18 (none) at 32x16 -> 512-d" in capsys.readouterr().err
    images = torch.randn(5, 3, 32, 16, generator=torch.Generator().manual_seed(7))
    got, session = run_onnxruntime(output, images)
    expected = torch_reference(cfg, checkpoint, images)
    assert got.shape == (5, 512)
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    single, _ = run_onnxruntime(output, images[:1])  # the batch axis is dynamic down to 1
    np.testing.assert_allclose(single, got[:1], rtol=1e-4, atol=1e-5)
    meta = session.get_modelmeta().custom_metadata_map
    assert (meta["input_height"], meta["input_width"], meta["embedding_dim"]) == ("32", "16", "512")
    assert (meta["input_resize"], meta["input_shorter_side"]) == ("stretch", "0")
    assert meta["backbone"] == "resnet18" and meta["metric"] == cfg.TEST.METRIC
    assert json.loads(meta["pixel_mean"]) == list(cfg.INPUT.PIXEL_MEAN)
    assert meta["checkpoint_sha256"] == hashlib.sha256(open(checkpoint, "rb").read()).hexdigest()


@pytest.mark.e2e
def test_dff_resnet18_export_matches_pytorch_at_another_batch_size(dff_checkpoint, dff_export):
    cfg, checkpoint = dff_checkpoint
    assert dff_export.check_batch != onnx_export.EXPORT_BATCH and dff_export.relative_error <= 1e-4
    images = torch.randn(5, 3, 64, 32, generator=torch.Generator().manual_seed(3))
    got, session = run_onnxruntime(dff_export.path, images)
    expected = torch_reference(cfg, checkpoint, images)
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    meta = session.get_modelmeta().custom_metadata_map
    assert (meta["backbone"], meta["dff_filter"]) == ("dff_resnet18", "ins_spatial")
    assert dff_export.onnx_sha256 == hashlib.sha256(open(dff_export.path, "rb").read()).hexdigest()


@pytest.mark.e2e
def test_a_graph_that_does_not_reproduce_the_checkpoint_leaves_no_file(
    dff_checkpoint, dff_export, tmp_path, monkeypatch, capsys
):
    from tiny_reid import save_tiny_checkpoint

    # Another checkpoint of the same architecture, given the first one's graph: onnxruntime disagrees.
    other = save_tiny_checkpoint(tmp_path / "other.pth", dff_checkpoint[0], seed=5)
    graph = open(dff_export.path, "rb").read()
    monkeypatch.setattr(onnx_export, "onnx_bytes", lambda *args, **kwargs: graph)
    with pytest.raises(OnnxParityError, match="differ from PyTorch's"):
        export_checkpoint(other, tmp_path / "new.onnx")
    assert not (tmp_path / "new.onnx").exists()
    existing = tmp_path / "existing.onnx"
    existing.write_bytes(b"an earlier export")
    with pytest.raises(SystemExit):
        load_tool("export_model").main(["--weights", other, "--output", str(existing)])
    assert existing.read_bytes() == b"an earlier export"
    assert sorted(os.listdir(tmp_path)) == ["existing.onnx", "other.pth"]  # no temporary file left
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("backbone", BACKBONE_REGISTRY.names())
def test_every_backbone_exports(backbone, tmp_path):
    from tiny_reid import save_tiny_checkpoint, tiny_cfg

    cfg = tiny_cfg(str(tmp_path / "data"), backbone=backbone)
    checkpoint = save_tiny_checkpoint(tmp_path / "model.pth", cfg)
    report = export_checkpoint(checkpoint, tmp_path / "model.onnx", input_size=(32, 16))
    assert report.relative_error <= 1e-4 and report.info.backbone == backbone
