"""Backbones: torchvision equivalence, SBase/DFF equivalences, every filter variant, config errors."""

import pytest
import torch
import torchvision

from reid_dff.config import ConfigError
from reid_dff.modeling import BACKBONE_REGISTRY, build_backbone
from reid_dff.modeling.backbones import (
    FILTER_REGISTRY,
    FrequencyChannelAttention,
    FrequencyMask,
    PixelMask,
    TaskChannelMask,
    TaskSpatialMask,
    filter_names,
)
from reid_dff.utils.registry import RegistryKeyError
from reid_dff.visualization.figures import capture_frequency_masks

MASK_CLASSES = (FrequencyMask, PixelMask, TaskChannelMask, TaskSpatialMask, FrequencyChannelAttention)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_registry_holds_every_depth_and_kind():
    for kind in ("resnet", "ffc_resnet", "dff_resnet"):
        for depth in (18, 34, 50, 101):
            assert f"{kind}{depth}" in BACKBONE_REGISTRY
    assert set(filter_names()) == {"none", *FILTER_REGISTRY.names()} and len(filter_names()) == 7


def test_unknown_backbone_lists_names(make_cfg):
    with pytest.raises(RegistryKeyError, match=r"MODEL.BACKBONE.*'resnet5'.*dff_resnet50"):
        build_backbone(make_cfg("resnet5"))


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("FILTER", "fre", "MODEL.DFF.FILTER is 'fre'; expected one of: none, ins_channel"),
        ("RATIO", 0.0, "MODEL.DFF.RATIO must be in"),
        ("RATIO", 1.0, "MODEL.DFF.RATIO must be in"),
        ("RATIO", 0.01, r"MODEL.DFF.RATIO 0.01 leaves 0 global .*at least 0.03125"),
        ("RATIO", 0.02, r"MODEL.DFF.RATIO 0.02 leaves 1 global .*at least 0.03125"),
        ("MASK_KERNEL", 4, "MODEL.DFF.MASK_KERNEL must be a positive odd"),
    ],
)
def test_bad_dff_config_names_the_key(make_cfg, key, value, message):
    cfg = make_cfg("dff_resnet18", "ins_spatial")
    cfg.MODEL.DFF[key] = value
    with pytest.raises(ConfigError, match=message):
        build_backbone(cfg)


def test_smallest_workable_ratio_builds_and_runs(make_cfg):
    import torch

    cfg = make_cfg("dff_resnet18", "ins_spatial")
    cfg.MODEL.DFF.RATIO = 2 / 64
    build_backbone(cfg)(torch.randn(2, 3, 64, 32)).sum().backward()


def test_bad_last_stride(make_cfg):
    with pytest.raises(ConfigError, match="MODEL.LAST_STRIDE must be 1 or 2"):
        build_backbone(make_cfg("resnet18", LAST_STRIDE=3))


@pytest.mark.parametrize("depth", [18, 50])
def test_plain_resnet_matches_torchvision_keys_and_outputs(make_cfg, depth):
    ours = build_backbone(make_cfg(f"resnet{depth}", LAST_STRIDE=2)).eval()
    reference = getattr(torchvision.models, f"resnet{depth}")().eval()
    state = {k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    assert list(ours.state_dict()) == list(state)
    ours.load_state_dict(state, strict=True)
    trunk = torch.nn.Sequential(*list(reference.children())[:-2])
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), trunk(x))


def test_last_stride_one_doubles_the_output_map(make_cfg):
    x = torch.randn(1, 3, 64, 32)
    with torch.no_grad():
        assert build_backbone(make_cfg("resnet18", LAST_STRIDE=2))(x).shape == (1, 512, 2, 1)
        assert build_backbone(make_cfg("dff_resnet18", LAST_STRIDE=1))(x).shape == (1, 512, 4, 2)


def test_ffc_backbone_ignores_the_filter_key(make_cfg):
    a = build_backbone(make_cfg("ffc_resnet18", "ins_spatial"))
    b = build_backbone(make_cfg("ffc_resnet18", "none"))
    assert list(a.state_dict()) == list(b.state_dict())
    assert not any(isinstance(m, MASK_CLASSES) for m in a.modules())


def test_dff_without_filter_is_sbase(make_cfg):
    sbase = build_backbone(make_cfg("ffc_resnet18")).eval()
    dff_none = build_backbone(make_cfg("dff_resnet18", "none")).eval()
    dff_none.load_state_dict(sbase.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(dff_none(x), sbase(x))


@pytest.mark.parametrize("train_mode", [False, True])
def test_dff_with_mask_forced_to_ones_equals_ffc(make_cfg, train_mode):
    sbase = build_backbone(make_cfg("ffc_resnet18")).train(train_mode)
    dff = build_backbone(make_cfg("dff_resnet18", "ins_spatial")).train(train_mode)
    missing, unexpected = dff.load_state_dict(sbase.state_dict(), strict=False)
    assert not unexpected and missing and all(".spectrum_filter.mask." in k for k in missing)
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        reference = sbase(x)
        masked = dff(x)
        assert not torch.allclose(masked, reference, atol=1e-4)  # the mask does act
        hooks = [
            m.register_forward_hook(lambda module, inputs, output: torch.ones_like(output))
            for m in dff.modules()
            if isinstance(m, FrequencyMask)
        ]
        assert hooks
        torch.testing.assert_close(dff(x), reference)


def test_frequency_mask_hook_captures_one_mask_per_fourier_unit(make_cfg):
    dff = build_backbone(make_cfg("dff_resnet18", "ins_spatial")).eval()
    masks = []
    for m in dff.modules():
        if isinstance(m, FrequencyMask):
            m.register_forward_hook(lambda module, inputs, output: masks.append((inputs[0].shape, output)))
    with torch.no_grad():
        dff(torch.randn(2, 3, 64, 32))
    n_units = sum(type(m).__name__ == "FourierUnit" for m in dff.modules())
    assert len(masks) == n_units > 0
    for (b, _, h, w_half), mask in masks:
        assert mask.shape == (b, 1, h, w_half) and (mask >= 0).all() and (mask <= 1).all()
    # The default start (MASK_INIT kaiming): the masks differ by image (std over the two images at a
    # fixed frequency, averaged over frequencies and units: the mask diagnostics' instance spread).
    spread = torch.stack([mask.std(dim=0).mean() for _, mask in masks]).mean()
    assert spread > 0.02


def test_zero_initialized_mask_starts_as_uniform_half(make_cfg):
    cfg = make_cfg("dff_resnet18", "ins_spatial")
    cfg.MODEL.DFF.MASK_INIT = "zeros"
    captures = capture_frequency_masks(build_backbone(cfg), torch.randn(2, 3, 64, 32))
    assert captures and all((c.masks == 0.5).all() for c in captures)


def test_instance_spatial_mask_adds_under_0_2m_params(make_cfg):
    sbase = build_backbone(make_cfg("ffc_resnet50", size=(256, 128)))
    dff = build_backbone(make_cfg("dff_resnet50", "ins_spatial", size=(256, 128)))
    extra = n_params(dff) - n_params(sbase)
    assert 0 < extra < 200_000


def test_task_spatial_mask_is_resized_for_other_inputs(make_cfg):
    dff = build_backbone(make_cfg("dff_resnet18", "task_spatial", size=(64, 32))).eval()
    first = next(m for m in dff.modules() if isinstance(m, TaskSpatialMask))
    assert first.logits.shape[-2:] == (16, 8 // 2 + 1)  # layer1 map 16x8 at a 64x32 input
    with torch.no_grad():
        first.logits.normal_()
        assert dff(torch.randn(1, 3, 96, 48)).shape == (1, 512, 6, 3)


@pytest.mark.parametrize("filter_name", filter_names())
@pytest.mark.parametrize("size", [(64, 32), (256, 128)])
def test_every_variant_trains_with_finite_gradients(make_cfg, filter_name, size):
    net = build_backbone(make_cfg("dff_resnet18", filter_name, size=size)).train()
    out = net(torch.randn(2, 3, *size))
    assert out.shape == (2, 512, size[0] // 16, size[1] // 16)
    out.square().mean().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    mask_params = [p for m in net.modules() if isinstance(m, MASK_CLASSES) for p in m.parameters()]
    if filter_name == "none":
        assert not mask_params
    else:
        assert mask_params and any(p.grad.abs().sum() > 0 for p in mask_params)


@pytest.mark.slow  # ~10 s of CPU; bench/backbone_throughput.py runs dff_resnet50 training steps at 256x128
def test_dff_resnet50_trains_at_reid_size(make_cfg):
    net = build_backbone(make_cfg("dff_resnet50", "ins_spatial", size=(256, 128))).train()
    out = net(torch.randn(2, 3, 256, 128))
    assert out.shape == (2, 2048, 16, 8)
    out.mean().backward()
    mask = next(m for m in net.modules() if isinstance(m, FrequencyMask))
    assert torch.isfinite(mask.conv.weight.grad).all() and mask.conv.weight.grad.abs().sum() > 0


def test_forward_under_cpu_autocast(make_cfg):
    net = build_backbone(make_cfg("dff_resnet18", "ins_spatial")).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(torch.randn(1, 3, 64, 32))
    assert torch.isfinite(out.float()).all()
