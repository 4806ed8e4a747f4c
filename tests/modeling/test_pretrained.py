"""ImageNet initialization (exact for ResNet, sliced for FFC/DFF) and reid-dff checkpoint loading."""

import os
import pickle

import pytest
import torch
import torch.nn.functional as F
import torchvision

from reid_dff.modeling import (
    WeightsError,
    WeightsMismatchError,
    build_backbone,
    build_model,
    load_imagenet_pretrained,
    load_model_weights,
)
from reid_dff.modeling.backbones import FFCConv2d


@pytest.fixture(scope="module")
def tv_resnet18_file(tmp_path_factory):
    torch.manual_seed(1)
    reference = torchvision.models.resnet18().eval()
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    return reference, path


def test_plain_resnet_loads_every_key_and_matches_torchvision(make_cfg, tv_resnet18_file):
    reference, path = tv_resnet18_file
    backbone = build_backbone(make_cfg("resnet18", LAST_STRIDE=2)).eval()
    report = load_imagenet_pretrained(backbone, path)
    assert report.sliced == [] and report.new == [] and sorted(report.unused) == ["fc.bias", "fc.weight"]
    assert len(report.loaded) == len(backbone.state_dict())
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        expected = reference.fc(torch.flatten(reference.avgpool(backbone(x)), 1))
        torch.testing.assert_close(expected, reference(x))


@pytest.mark.parametrize("name", ["resnet18", "dff_resnet18"])
def test_files_without_batchnorm_step_counters_load_like_torchvision(
    make_cfg, tv_resnet18_file, name, tmp_path
):
    # torchvision's first ImageNet files (saved before PyTorch 0.4.1) have no num_batches_tracked
    reference, _ = tv_resnet18_file
    legacy = {k: v for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "resnet18-legacy.pth"
    torch.save(legacy, path)
    torchvision.models.resnet18().load_state_dict(
        torch.load(path, weights_only=True)
    )  # the reference loads it
    backbone = build_backbone(make_cfg(name, LAST_STRIDE=2))
    report = load_imagenet_pretrained(backbone, path)
    counters = [k for k in backbone.state_dict() if k.endswith("num_batches_tracked")]
    assert counters and set(counters) <= set(report.new)
    assert not set(counters) & set(report.loaded)
    state = backbone.state_dict()
    torch.testing.assert_close(state["layer1.0.bn1.running_var"], legacy["layer1.0.bn1.running_var"])
    assert all(int(state[k]) == 0 for k in counters)


def test_ffc_takes_slices_of_each_resnet_conv(make_cfg, tv_resnet18_file):
    reference, path = tv_resnet18_file
    source = reference.state_dict()
    backbone = build_backbone(make_cfg("dff_resnet18", "ins_spatial"))
    report = load_imagenet_pretrained(backbone, path)
    state = backbone.state_dict()
    ffc = backbone.layer2[1].conv1  # an a -> a 3x3 FFC: 128 = 64 local + 64 global
    assert isinstance(ffc, FFCConv2d)
    w = source["layer2.1.conv1.weight"]
    torch.testing.assert_close(state["layer2.1.conv1.l2l.weight"], w[:64, :64])
    torch.testing.assert_close(state["layer2.1.conv1.l2g.weight"], w[64:, :64])
    torch.testing.assert_close(state["layer2.1.conv1.g2l.weight"], w[:64, 64:])
    torch.testing.assert_close(state["layer2.1.bn1.running_var"], source["layer2.1.bn1.running_var"])
    assert "layer2.1.conv1.l2l.weight" in report.sliced
    assert "layer2.1.conv1.g2g.conv1.0.weight" in report.new
    assert "layer2.1.conv1.g2g.fu.spectrum_filter.mask.conv.weight" in report.new
    assert "layer4.1.conv1.weight" in report.loaded  # plain blocks after layer4's a -> 0 block
    assert (
        "layer1.0.downsample.0.l2l.weight" in report.new
    )  # R18 layer1: identity in ResNet, projection in FFC
    assert "layer1.0.downsample.1.weight" in report.new
    assert sorted(report.unused) == ["fc.bias", "fc.weight"]


def test_ffc_resnet50_loads_from_resnet50_weights(make_cfg, tmp_path):
    path = tmp_path / "r50.pth"
    torch.save(torchvision.models.resnet50().state_dict(), path)
    report = load_imagenet_pretrained(build_backbone(make_cfg("ffc_resnet50")), path)
    assert "layer1.0.downsample.0.l2g.weight" in report.sliced and report.loaded and report.new
    assert sorted(report.unused) == ["fc.bias", "fc.weight"]


def test_build_model_applies_pretrain_path(make_cfg, tv_resnet18_file):
    reference, path = tv_resnet18_file
    cfg = make_cfg("resnet18", PRETRAIN_PATH=str(path))
    model = build_model(cfg, 3)
    torch.testing.assert_close(model.backbone.conv1.weight, reference.conv1.weight)


def test_wrapped_state_dicts_are_accepted(make_cfg, tv_resnet18_file, tmp_path):
    reference, _ = tv_resnet18_file
    for wrapper in ("state_dict", "model"):
        path = tmp_path / f"{wrapper}.pth"
        torch.save({wrapper: reference.state_dict(), "epoch": 90}, path)
        assert load_imagenet_pretrained(build_backbone(make_cfg("resnet18")), path).loaded


def test_missing_file(make_cfg, tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match=f"{missing}.*nothing is downloaded"):
        load_imagenet_pretrained(build_backbone(make_cfg("resnet18")), missing)


def test_not_a_state_dict(make_cfg, tmp_path):
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(WeightsError, match=f"{path} is not a state dict"):
        load_imagenet_pretrained(build_backbone(make_cfg("resnet18")), path)
    text = tmp_path / "text.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(WeightsError, match=f"cannot read .*{text}"):
        load_imagenet_pretrained(build_backbone(make_cfg("resnet18")), text)


class _Payload:
    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_file_that_would_run_code_is_refused(make_cfg, tmp_path):
    payload = _Payload()
    payload.marker = str(tmp_path / "pwned")
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"conv1.weight": payload}, f, protocol=2)
    with pytest.raises(WeightsError, match="weights_only"):
        load_imagenet_pretrained(build_backbone(make_cfg("resnet18")), path)
    assert not os.path.exists(payload.marker)


def test_weights_of_another_depth_are_a_mismatch(make_cfg, tv_resnet18_file):
    _, path = tv_resnet18_file
    for backbone in ("resnet50", "dff_resnet50", "resnet34"):
        with pytest.raises(WeightsMismatchError, match=rf"{path}.*looks like resnet18"):
            load_imagenet_pretrained(build_backbone(make_cfg(backbone)), path)


def _reid_output(model, x):
    with torch.no_grad():
        return model.eval()(x)


def test_checkpoint_round_trip(make_cfg, tmp_path):
    source = build_model(make_cfg("dff_resnet18", "ins_spatial"), 4)
    with torch.no_grad():
        for p in source.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = tmp_path / "ckpt.pth"
    torch.save({"model": source.state_dict(), "epoch": 3, "optimizer": {"lr": torch.tensor(0.1)}}, path)
    target = build_model(make_cfg("dff_resnet18", "ins_spatial"), 4)
    report = load_model_weights(target, path)
    assert len(report.loaded) == len(target.state_dict()) and not report.new
    x = torch.randn(2, 3, 64, 32)
    torch.testing.assert_close(_reid_output(target, x), _reid_output(source, x))
    # a DataParallel-style bare state dict
    wrapped = {f"module.{k}": v for k, v in source.state_dict().items()}
    load_model_weights(build_model(make_cfg("dff_resnet18", "ins_spatial"), 4), wrapped)


def test_checkpoint_of_another_variant_names_the_config(make_cfg, tmp_path):
    path = tmp_path / "ffc.pth"
    torch.save({"model": build_model(make_cfg("ffc_resnet18"), 4).state_dict()}, path)
    with pytest.raises(
        WeightsMismatchError, match=r"missing in the checkpoint: .*spectrum_filter.*MODEL.DFF.FILTER"
    ):
        load_model_weights(build_model(make_cfg("dff_resnet18", "ins_spatial"), 4), path)
    with pytest.raises(WeightsMismatchError, match=r"MODEL.BACKBONE .*or MODEL.DFF.RATIO"):
        load_model_weights(build_model(make_cfg("resnet18"), 4), path)


def test_classifier_size_mismatch_and_ignore_classifier(make_cfg, tmp_path):
    source = build_model(make_cfg("resnet18"), 10)
    path = tmp_path / "r18.pth"
    torch.save({"model": source.state_dict()}, path)
    with pytest.raises(
        WeightsMismatchError, match=r"classifier.weight \(10, 512\) vs \(3, 512\).*ignore_classifier=True"
    ):
        load_model_weights(build_model(make_cfg("resnet18"), 3), path)
    target = build_model(make_cfg("resnet18"), 0)
    report = load_model_weights(target, path, ignore_classifier=True)
    assert report.unused == ["classifier.weight"]
    x = torch.randn(2, 3, 64, 32)
    torch.testing.assert_close(_reid_output(target, x), _reid_output(source, x))
    assert F.normalize(_reid_output(target, x), dim=1).shape == (2, 512)


def test_checkpoint_missing_file(make_cfg, tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        load_model_weights(build_model(make_cfg("resnet18"), 0), tmp_path / "none.pth")
