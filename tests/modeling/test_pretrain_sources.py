"""MODEL.PRETRAIN_PATH beyond torchvision: stage-1 reid-dff checkpoints and official FFC checkpoints."""

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reid_dff.errors import ReidDffError
from reid_dff.modeling import build_model
from reid_dff.modeling.backbones import FourierUnit
from reid_dff.modeling.backbones.filters import FilterSettings
from reid_dff.modeling.checkpoint import save_checkpoint
from reid_dff.modeling.pretrain_sources import ArchitectureMismatchError, detect_format, load_pretrained

ROOT = Path(__file__).resolve().parents[2]
# The fixture stays out of the repository: ../shared beside the checkout (REID_DFF_SHARED overrides it, e.g.
# for a git worktree elsewhere). The test of the official outputs skips when it is absent.
SHARED = Path(os.environ.get("REID_DFF_SHARED") or ROOT.parent / "shared")
FIXTURES = SHARED / "fixtures" / "ffc_official"
OFFICIAL_PTH = FIXTURES / "ffc_resnet18_r05_nolfu_seed0.pth"
OFFICIAL_IO = FIXTURES / "ffc_resnet18_r05_nolfu_seed0_io.npz"
needs_fixture = pytest.mark.skipif(
    not OFFICIAL_PTH.is_file(), reason="../shared/fixtures/ffc_official absent"
)
FILTER_KEY = re.compile(r"\.(spectrum_filter|input_filter|local_filter)\.")


def classification_cfg(make_cfg, backbone, size=(32, 32), **dff):
    cfg = make_cfg(backbone, size=size, TASK="classification", LAST_STRIDE=2)
    cfg.MODEL.HEAD.NECK = "none"
    cfg.MODEL.HEAD.POOLING = "avg"
    cfg.MODEL.DFF.update(dff)
    return cfg


def perturb(model: nn.Module) -> nn.Module:
    """Move every float tensor off its initialization, so that a loaded value cannot be a fresh one."""
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if value.is_floating_point():
                value.add_(0.05 * torch.randn_like(value))
                if key.endswith("running_var"):
                    value.abs_()
    return model


def write_stage1(path, cfg, num_classes=5):
    """A stage-1 checkpoint as the trainer writes it (the project's atomic writer, model + cfg text)."""
    model = perturb(build_model(cfg, num_classes))
    save_checkpoint(
        path,
        {
            "model": model.state_dict(),
            "cfg": cfg.dump(),
            "num_classes": num_classes,
            "epoch": 1,
            "iteration": 4,
        },
    )
    return model


# ----------------------------------------------------------------------------------------- stage 1 -> 2
def test_stage1_checkpoint_loads_every_backbone_key_as_is(make_cfg, tmp_path):
    path = tmp_path / "stage1.pth"
    stage1 = write_stage1(path, classification_cfg(make_cfg, "dff_resnet18"))
    reid_cfg = make_cfg("dff_resnet18", size=(64, 32))
    target = build_model(reid_cfg, 7)
    report = load_pretrained(target, path)
    backbone_keys = set(target.backbone.state_dict())
    assert report.source_format == "reid-dff" and report.source_arch.startswith("dff_resnet18")
    assert report.sliced == [] and report.new == [] and report.rescaled == []
    assert set(report.loaded) == backbone_keys
    assert sorted(report.dropped) == ["classifier.bias", "classifier.weight"]
    assert "classifier dropped" in report.summary()
    expected = stage1.backbone.state_dict()
    for key, value in target.backbone.state_dict().items():
        assert torch.equal(value, expected[key]), key
    # the ReID head is new: an identity classifier of its own size
    assert target.classifier.weight.shape[0] == 7

    reid_cfg.MODEL.PRETRAIN_PATH = str(path)
    built = build_model(reid_cfg, 7)  # MODEL.PRETRAIN_PATH goes through the same loader
    assert torch.equal(
        built.backbone.layer3[1].conv2.g2g.fu.conv.weight, stage1.backbone.layer3[1].conv2.g2g.fu.conv.weight
    )


@pytest.mark.parametrize(
    "source, target",
    [
        (("resnet18", {}), "dff_resnet18"),
        (("dff_resnet50", {}), "dff_resnet18"),
        (("dff_resnet18", {"RATIO": 0.25}), "dff_resnet18"),
        (("dff_resnet18", {"FILTER": "task_channel"}), "dff_resnet18"),
    ],
)
def test_stage1_checkpoint_of_another_architecture_is_a_one_line_error(make_cfg, tmp_path, source, target):
    name, dff = source
    path = tmp_path / "other.pth"
    write_stage1(path, classification_cfg(make_cfg, name, **dff))
    model = build_model(make_cfg(target, size=(64, 32)), 3)
    with pytest.raises(ArchitectureMismatchError) as info:
        load_pretrained(model, path)
    message = str(info.value)
    assert isinstance(info.value, ReidDffError) and "\n" not in message
    assert (
        f"holds {name}" in message and "backbone is dff_resnet18 (ratio 0.5, filter ins_spatial)" in message
    )


def test_torchvision_files_still_go_through_slicing(make_cfg, tmp_path):
    import torchvision

    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    report = load_pretrained(build_model(make_cfg("dff_resnet18"), 3), path)
    assert report.source_format == "torchvision" and report.source_arch == "resnet18"
    assert report.sliced and "layer2.1.conv1.g2g.conv1.0.weight" in report.new


def test_stage1_without_cfg_still_checks_every_key(make_cfg, tmp_path):
    path = tmp_path / "bare.pth"
    source = perturb(build_model(classification_cfg(make_cfg, "dff_resnet18", MASK_KERNEL=3), 4))
    torch.save({"model": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    with pytest.raises(ArchitectureMismatchError, match=r"mask\.conv\.weight is \(1, 2, 3, 3\) in the file"):
        load_pretrained(build_model(make_cfg("dff_resnet18"), 3), path)


# ----------------------------------------------------------------------- FFC weights into DFF: masks
@pytest.mark.parametrize(
    "filter_name", ["ins_spatial", "ins_channel", "task_channel", "task_spatial", "ori_global", "ori_local"]
)
def test_ffc_stage1_into_dff_starts_equal_to_the_ffc(make_cfg, tmp_path, filter_name):
    path = tmp_path / "ffc.pth"
    ffc = write_stage1(path, classification_cfg(make_cfg, "ffc_resnet18", size=(64, 32))).eval()
    # MASK_INIT zeros: the literal reading's uniform 0.5 start, the one a loader can cancel exactly.
    dff_cfg = classification_cfg(
        make_cfg, "dff_resnet18", size=(64, 32), FILTER=filter_name, MASK_INIT="zeros"
    )
    dff = build_model(dff_cfg, 5)
    before = {k: v.clone() for k, v in dff.backbone.state_dict().items() if FILTER_KEY.search(k)}
    report = load_pretrained(dff, path)
    assert before and set(report.new) == set(before) and report.rescaled and not report.notes
    after = dff.backbone.state_dict()
    for key, value in before.items():  # the mask generators keep their (neutral) initialization
        assert torch.equal(after[key], value), key
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        expected = ffc.backbone(x)
        torch.testing.assert_close(
            dff.backbone.eval()(x), expected, rtol=1e-5, atol=1e-5 * expected.abs().max()
        )
        # Without the compensation the 0.5 mask is not undone by the eval-mode BatchNorms.
        for key in report.rescaled:
            dict(dff.backbone.named_parameters())[key].mul_(0.5)
        assert not torch.allclose(dff.backbone(x), expected, atol=1e-3 * expected.abs().max())


@pytest.mark.parametrize("init", [{}, {"MASK_INIT": "normal"}])  # the default (kaiming), normal
def test_a_mask_that_is_not_constant_is_reported(make_cfg, tmp_path, init):
    path = tmp_path / "ffc.pth"
    write_stage1(path, classification_cfg(make_cfg, "ffc_resnet18"))
    dff = build_model(classification_cfg(make_cfg, "dff_resnet18", **init), 5)
    report = load_pretrained(dff, path)
    assert report.rescaled == [] and "does not start equal to the FFC" in report.summary()


# ------------------------------------------------------------------------------------ official FFC
def official_fourier_unit(x, weight, bn):
    """The official FourierUnit.forward (pkumivision/FFC, with the README's torch.fft shim), written out:
    real/imaginary parts interleaved per channel."""
    b, c, h, w = x.shape
    ffted = torch.view_as_real(torch.fft.rfft2(x, norm="ortho"))  # (B, C, H, W', 2)
    ffted = ffted.permute(0, 1, 4, 2, 3).contiguous().view(b, -1, h, w // 2 + 1)
    ffted = F.relu(bn(F.conv2d(ffted, weight)))
    ffted = ffted.view(b, -1, 2, h, w // 2 + 1).permute(0, 1, 3, 4, 2).contiguous()
    return torch.fft.irfft2(torch.view_as_complex(ffted), s=(h, w), norm="ortho")


@pytest.mark.parametrize("size", [(8, 8), (7, 5)])
def test_fourier_unit_permutation_reproduces_the_official_interleaving(size):
    from reid_dff.modeling.ffc_official import convert_official_ffc

    c = 6
    weight = torch.randn(2 * c, 2 * c, 1, 1)
    bn = nn.BatchNorm2d(2 * c).eval()
    with torch.no_grad():
        for t in (bn.weight, bn.bias, bn.running_mean):
            t.copy_(torch.randn(2 * c))
        bn.running_var.uniform_(0.5, 1.5)
    official = {"layer1.0.conv1.ffc.convg2g.fu.conv_layer.weight": weight}
    official.update({f"layer1.0.conv1.ffc.convg2g.fu.bn.{k}": v for k, v in bn.state_dict().items()})
    converted, unmapped = convert_official_ffc(official, {})
    assert not unmapped
    ours = FourierUnit(c, size, FilterSettings(name="none")).eval()
    ours.load_state_dict({k.removeprefix("layer1.0.conv1.g2g.fu."): v for k, v in converted.items()})
    x = torch.randn(2, c, *size)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), official_fourier_unit(x, weight, bn), rtol=1e-5, atol=1e-5)


def fixture_model(make_cfg, backbone, task="classification", **dff):
    if task == "classification":
        cfg = classification_cfg(make_cfg, backbone, size=(224, 224), **dff)
    else:
        cfg = make_cfg(backbone, size=(224, 224), LAST_STRIDE=2)
        cfg.MODEL.DFF.update(dff)
    return build_model(cfg, 1000 if task == "classification" else 10)


@needs_fixture
@pytest.mark.parametrize("backbone", ["ffc_resnet18", "dff_resnet18"])
def test_official_ffc_checkpoint_reproduces_the_official_outputs(make_cfg, backbone):
    model = fixture_model(make_cfg, backbone, MASK_INIT="zeros")  # DFF starts as the FFC: a 0.5 mask
    report = load_pretrained(model, OFFICIAL_PTH)
    assert report.source_format == "official-ffc" and report.source_arch == "ffc_resnet18 (ratio 0.5)"
    assert detect_format(torch.load(OFFICIAL_PTH, weights_only=True)) == "official-ffc"
    assert report.unused == [] and report.dropped == [] and report.sliced == []
    assert {"classifier.weight", "classifier.bias"} <= set(report.loaded)
    assert set(report.new) == {k for k in model.backbone.state_dict() if FILTER_KEY.search(k)}
    assert (backbone == "dff_resnet18") == bool(report.rescaled) == bool(report.new)
    io = np.load(OFFICIAL_IO)
    model.eval()
    with torch.no_grad():
        for suffix in ("", "_ns"):  # 224x224, and 240x112 (odd FFT sizes in layer3)
            pooled = model.pooling(model.backbone(torch.from_numpy(io[f"input{suffix}"])))
            logits = model.classifier(pooled)
            for ours, name in ((logits, "logits"), (pooled, "pooled")):
                ref = torch.from_numpy(io[f"{name}{suffix}"])
                # the README: 1e-4 relative to max|ref| suggested, 1e-5 attainable (thread counts: 4e-7)
                assert (ours - ref).abs().max() <= 1e-5 * ref.abs().max(), (name, suffix)


@needs_fixture
def test_official_ffc_checkpoint_into_reid_drops_fc(make_cfg):
    model = fixture_model(make_cfg, "dff_resnet18", task="reid", MASK_INIT="zeros")
    report = load_pretrained(model, OFFICIAL_PTH)
    assert sorted(report.dropped) == ["fc.bias", "fc.weight"] and "classifier dropped" in report.summary()
    assert not any(k.startswith("classifier.") for k in report.loaded)
    io = np.load(OFFICIAL_IO)
    with torch.no_grad():
        pooled = model.eval().pooling(model.backbone(torch.from_numpy(io["input"])))
    ref = torch.from_numpy(io["pooled"])
    assert (pooled - ref).abs().max() <= 1e-5 * ref.abs().max()


@needs_fixture
@pytest.mark.parametrize(
    "backbone, dff, expected",
    [
        ("resnet18", {}, r"backbone is resnet18: use ffc_resnet18 or dff_resnet18"),
        ("dff_resnet34", {}, r"backbone is dff_resnet34 \(ratio 0.5"),
        ("ffc_resnet18", {"RATIO": 0.25}, r"backbone is ffc_resnet18 \(ratio 0.25\)"),
    ],
)
def test_official_ffc_checkpoint_of_another_architecture(make_cfg, backbone, dff, expected):
    model = build_model(classification_cfg(make_cfg, backbone, **dff), 1000)
    with pytest.raises(
        ArchitectureMismatchError, match=r"official FFC checkpoint of ffc_resnet18 \(ratio 0.5\)"
    ) as info:
        load_pretrained(model, OFFICIAL_PTH)
    assert re.search(expected, str(info.value)) and "\n" not in str(info.value)


@needs_fixture
def test_official_local_fourier_units_are_refused(make_cfg, tmp_path):
    state = torch.load(OFFICIAL_PTH, weights_only=True)
    weight = state["state_dict"]["module.layer2.1.conv1.ffc.convg2g.fu.conv_layer.weight"]
    state["state_dict"]["module.layer2.1.conv1.ffc.convg2g.lfu.conv_layer.weight"] = weight.clone()
    path = tmp_path / "lfu.pth"
    torch.save(state, path)
    with pytest.raises(ArchitectureMismatchError, match="Local Fourier Units"):
        load_pretrained(build_model(classification_cfg(make_cfg, "ffc_resnet18"), 1000), path)
