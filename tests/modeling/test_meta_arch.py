"""The ReID model: pooling, BNNeck, classifier, train/eval outputs, task registry."""

import pytest
import torch
import torch.nn.functional as F

from reid_dff.config import ConfigError
from reid_dff.modeling import META_ARCH_REGISTRY, build_model
from reid_dff.utils.registry import RegistryKeyError


def test_train_and_eval_outputs_follow_the_contract(make_cfg):
    model = build_model(make_cfg("resnet18"), num_classes=7)
    x = torch.randn(4, 3, 64, 32)
    out = model.train()(x)
    fmap = model.backbone(x)
    assert set(out) == {"logits", "features"}
    assert out["logits"].shape == (4, 7) and out["features"].shape == (4, 512)
    torch.testing.assert_close(out["features"], fmap.mean(dim=(2, 3)))  # pre-BN pooled feature
    model.eval()
    with torch.no_grad():
        embedding = model(x)
        bn = model.neck
        expected = F.batch_norm(
            model.backbone(x).mean(dim=(2, 3)), bn.running_mean, bn.running_var, bn.weight, bn.bias
        )
    assert embedding.shape == (4, 512)
    torch.testing.assert_close(embedding, expected)
    assert model.backbone is not None and model.feat_dim == 512


def test_bnneck_bias_is_frozen_at_zero_and_classifier_is_bias_free(make_cfg):
    model = build_model(make_cfg("resnet18"), num_classes=5).train()
    assert model.classifier.bias is None
    assert not model.neck.bias.requires_grad and torch.all(model.neck.bias == 0)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    out = model(torch.randn(4, 3, 64, 32))
    F.cross_entropy(out["logits"], torch.tensor([0, 1, 2, 3])).backward()
    opt.step()
    assert torch.all(model.neck.bias == 0) and model.neck.weight.grad is not None


def test_no_classifier_when_num_classes_is_zero(make_cfg):
    model = build_model(make_cfg("resnet18"), num_classes=0).train()
    assert model.classifier is None
    assert model(torch.randn(2, 3, 64, 32))["logits"] is None
    with pytest.raises(ConfigError, match="num_classes must be >= 0"):
        build_model(make_cfg("resnet18"), num_classes=-1)


def test_gem_pooling_matches_its_formula_and_p1_is_average(make_cfg):
    cfg = make_cfg("resnet18")
    cfg.MODEL.HEAD.POOLING = "gem"
    model = build_model(cfg, 0)
    x = torch.rand(2, 3, 4, 5)
    torch.testing.assert_close(model.pooling(x), x.clamp(min=1e-6).pow(3).mean(dim=(2, 3)).pow(1 / 3))
    cfg.MODEL.HEAD.GEM_P = 1.0
    torch.testing.assert_close(build_model(cfg, 0).pooling(x), x.mean(dim=(2, 3)), atol=1e-6, rtol=1e-6)
    cfg.MODEL.HEAD.GEM_P = 0.0
    with pytest.raises(ConfigError, match="GEM_P"):
        build_model(cfg, 0)


def test_neck_none_returns_the_pooled_feature(make_cfg):
    cfg = make_cfg("resnet18")
    cfg.MODEL.HEAD.NECK = "none"
    model = build_model(cfg, 3).eval()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.backbone(x).mean(dim=(2, 3)))


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("TASK", "detection", "MODEL.TASK.*'detection'.*reid"),
        ("HEAD.POOLING", "max", "MODEL.HEAD.POOLING.*avg, gem"),
    ],
)
def test_unknown_names_list_the_known_ones(make_cfg, key, value, message):
    cfg = make_cfg("resnet18")
    node, leaf = (cfg.MODEL.HEAD, "POOLING") if key.startswith("HEAD") else (cfg.MODEL, key)
    node[leaf] = value
    with pytest.raises(RegistryKeyError, match=message):
        build_model(cfg, 2)


def test_tasks_are_a_registry():
    assert "reid" in META_ARCH_REGISTRY
