"""The classification meta-arch: head arithmetic, modes, registry dispatch, config errors, ImageNet init."""

import pytest
import torch
import torch.nn.functional as F
import torchvision

from reid_dff.config import ConfigError
from reid_dff.modeling import build_model
from reid_dff.modeling.classification import ClassificationModel
from reid_dff.modeling.losses import build_losses


def classification_cfg(make_cfg, backbone="dff_resnet18", **model):
    cfg = make_cfg(backbone, size=(32, 32), TASK="classification", LAST_STRIDE=2, **model)
    cfg.MODEL.HEAD.NECK = "none"
    return cfg


@pytest.mark.parametrize("backbone", ["resnet18", "dff_resnet18"])
def test_head_is_pooling_then_linear_with_bias(make_cfg, backbone):
    model = build_model(classification_cfg(make_cfg, backbone), num_classes=5)
    assert isinstance(model, ClassificationModel) and model.classifier.bias is not None
    images = torch.randn(3, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        feature_map = model.backbone(images)
        expected = feature_map.mean(dim=(2, 3)) @ model.classifier.weight.t() + model.classifier.bias
        logits = model(images)
    assert logits.shape == (3, 5)
    torch.testing.assert_close(logits, expected)

    model.train()
    out = model(images)
    assert set(out) == {"logits", "features"}
    assert out["logits"].shape == (3, 5) and out["features"].shape == (3, model.backbone.out_channels)
    torch.testing.assert_close(out["logits"], model.classifier(out["features"]))


def test_cross_entropy_from_the_shared_losses_matches_torch(make_cfg):
    cfg = classification_cfg(make_cfg, "resnet18")
    cfg.MODEL.LOSSES.NAMES = ["cross_entropy"]
    cfg.MODEL.LOSSES.CE.EPSILON = 0.0
    model = build_model(cfg, num_classes=4).train()
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 3, 1, 1])
    out = model(images)
    losses = build_losses(cfg)(out, labels)
    torch.testing.assert_close(losses["loss_cross_entropy"], F.cross_entropy(out["logits"], labels))
    losses["loss_cross_entropy"].backward()
    assert model.classifier.bias.grad is not None and model.backbone.conv1.weight.grad is not None


@pytest.mark.parametrize(
    "change, num_classes, message",
    [
        ({"NECK": "bnneck"}, 5, "MODEL.HEAD.NECK none"),
        ({"NUM_CLASSES": 7}, 5, "NUM_CLASSES is 7 but the training data has 5"),
        ({}, 0, "num_classes >= 1"),
    ],
)
def test_config_errors(make_cfg, change, num_classes, message):
    cfg = classification_cfg(make_cfg, "resnet18")
    cfg.MODEL.HEAD.update(change)
    with pytest.raises(ConfigError, match=message):
        build_model(cfg, num_classes)


def test_num_classes_from_config_when_the_caller_has_none(make_cfg):
    cfg = classification_cfg(make_cfg, "resnet18")
    cfg.MODEL.HEAD.NUM_CLASSES = 6
    assert build_model(cfg, 0).classifier.out_features == 6


def test_imagenet_weights_load_into_the_backbone(make_cfg, tmp_path):
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    cfg = classification_cfg(make_cfg, "resnet18")
    cfg.MODEL.PRETRAIN_PATH = str(path)
    model = build_model(cfg, num_classes=3)
    torch.testing.assert_close(model.backbone.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)
    # The Office-Home head is new: not taken from ImageNet's 1000-way fc.
    assert model.classifier.weight.shape == (3, 512)
