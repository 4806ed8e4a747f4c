"""The DFF mask's open choices (MODEL.DFF.MASK_INPUT / MASK_LAYOUT / MASK_INIT / MASK_WEIGHT_DECAY)."""

import math

import pytest
import torch

from reid_dff.config import ConfigError
from reid_dff.engine.optim import build_optimizer
from reid_dff.modeling import build_backbone
from reid_dff.modeling.backbones import FrequencyMask, PixelMask
from reid_dff.modeling.backbones.filters import NORMAL_INIT_STD


def random_mask(kernel=3, **kw):
    mask = FrequencyMask(kernel, **kw)
    with torch.no_grad():
        mask.conv.weight.normal_(std=0.5)
        mask.conv.bias.fill_(0.1)
    return mask


def reference_mask(pooled, weight, bias, wrap_rows):
    """Brute-force k x k correlation of ``pooled`` (B, 2, H, W) + sigmoid, rows wrapped or zero-padded."""
    b, _, h, w = pooled.shape
    k = weight.shape[-1]
    p = k // 2
    out = torch.zeros(b, 1, h, w, dtype=torch.float64)
    for y in range(h):
        for x in range(w):
            total = torch.full((b,), float(bias), dtype=torch.float64)
            for i in range(k):
                for j in range(k):
                    row, col = y + i - p, x + j - p
                    if wrap_rows:
                        row %= h
                    if not (0 <= row < h and 0 <= col < w):
                        continue
                    total += (weight[0, :, i, j].double() * pooled[:, :, row, col].double()).sum(dim=1)
            out[:, 0, y, x] = torch.sigmoid(total)
    return out


def re_im_pooled(z):
    return torch.stack([z.mean(dim=1), z.max(dim=1).values], dim=1)


@pytest.mark.parametrize("layout", ["rfft", "centered"])
@pytest.mark.parametrize("size", [(8, 3), (4, 2), (2, 2), (6, 4)])
def test_layout_shapes_and_brute_force(layout, size):
    mask = random_mask(kernel=5, layout=layout)
    z = torch.randn(2, 6, *size)
    out = mask(z)
    assert out.shape == (2, 1, *size)
    # "centered" = fftshift along H + circular padding along H: a correlation that wraps rows in the
    # un-shifted layout; "rfft" = zero padding on both axes.
    expected = reference_mask(
        re_im_pooled(z), mask.conv.weight.detach(), mask.conv.bias.detach(), wrap_rows=layout == "centered"
    )
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-6)


def test_centered_equals_shifting_by_hand():
    # Shift the input by hand (torch.fft.fftshift), run a circular-H / zero-W conv there, shift back.
    mask = random_mask(kernel=3, layout="centered")
    with torch.no_grad():  # a symmetric kernel, as the mask's conv would see a centred spectrum
        w = mask.conv.weight
        mask.conv.weight.copy_((w + w.flip(-1).flip(-2)) / 2)
    z = torch.randn(3, 4, 7, 4)
    pooled = torch.fft.fftshift(re_im_pooled(z), dim=-2)
    padded = torch.cat([pooled[..., -1:, :], pooled, pooled[..., :1, :]], dim=-2)
    padded = torch.nn.functional.pad(padded, (1, 1))
    by_hand = torch.sigmoid(torch.nn.functional.conv2d(padded, mask.conv.weight, mask.conv.bias))
    torch.testing.assert_close(mask(z), torch.fft.ifftshift(by_hand, dim=-2))
    assert not torch.allclose(mask(z), random_mask_like(mask, "rfft")(z))


def random_mask_like(mask, layout):
    other = FrequencyMask(mask.conv.kernel_size[0], layout=layout)
    other.load_state_dict(mask.state_dict())
    return other


def test_log_magnitude_input_by_hand():
    mask = random_mask(kernel=3, mask_input="log_magnitude")
    z = torch.randn(2, 6, 5, 3)
    real, imag = z[:, :3], z[:, 3:]
    log_mag = torch.log1p(torch.sqrt(real**2 + imag**2))
    pooled = torch.stack([log_mag.mean(dim=1), log_mag.max(dim=1).values], dim=1)
    expected = torch.sigmoid(torch.nn.functional.conv2d(pooled, mask.conv.weight, mask.conv.bias, padding=1))
    torch.testing.assert_close(mask(z), expected)


def test_log_magnitude_has_a_finite_gradient_at_a_zero_spectrum():
    mask = random_mask(kernel=3, mask_input="log_magnitude")
    z = torch.zeros(1, 4, 4, 3, requires_grad=True)
    mask(z).sum().backward()
    assert torch.isfinite(z.grad).all()


def test_init_values():
    torch.manual_seed(0)
    assert torch.all(FrequencyMask(7).conv.weight == 0)
    normal = FrequencyMask(7, init="normal").conv.weight
    assert abs(float(normal.detach().std()) - NORMAL_INIT_STD) < 0.3 * NORMAL_INIT_STD
    kaiming = PixelMask(7, init="kaiming").conv.weight  # fan-in 2*7*7, gain 1
    assert abs(float(kaiming.detach().std()) - 1 / math.sqrt(98)) < 0.3 / math.sqrt(98)
    for init in ("zeros", "normal", "kaiming"):
        assert torch.all(FrequencyMask(7, init=init).conv.bias == 0)


def test_the_builder_threads_the_choices(make_cfg):
    cfg = make_cfg("dff_resnet18", "ins_spatial")
    cfg.MODEL.DFF.MASK_INPUT = "log_magnitude"
    cfg.MODEL.DFF.MASK_LAYOUT = "centered"
    cfg.MODEL.DFF.MASK_INIT = "normal"
    masks = [m for m in build_backbone(cfg).modules() if isinstance(m, FrequencyMask)]
    assert masks and all(m.mask_input == "log_magnitude" and m.layout == "centered" for m in masks)
    # ResNet's generic conv init runs first; the mask's own start must survive it.
    assert all(0 < float(m.conv.weight.std()) < 3 * NORMAL_INIT_STD for m in masks)
    out = build_backbone(cfg)(torch.randn(2, 3, 64, 32))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("key", ["MASK_INPUT", "MASK_LAYOUT", "MASK_INIT"])
def test_bad_choice_names_the_key(make_cfg, key):
    cfg = make_cfg("dff_resnet18", "ins_spatial")
    cfg.MODEL.DFF[key] = "bogus"
    with pytest.raises(ConfigError, match=f"MODEL.DFF.{key} is 'bogus'; expected one of"):
        build_backbone(cfg)


def test_mask_weight_decay_group(make_cfg):
    cfg = make_cfg("dff_resnet18", "ins_spatial")
    cfg.SOLVER.WEIGHT_DECAY = 5e-4
    cfg.SOLVER.NO_DECAY_NORM_BIAS = True
    model = build_backbone(cfg)
    generator_weights = {id(m.conv.weight) for m in model.modules() if isinstance(m, FrequencyMask)}
    # Default (negative): the generator weights decay with SOLVER.WEIGHT_DECAY.
    groups = build_optimizer(cfg, model).param_groups
    assert [g["weight_decay"] for g in groups] == [5e-4, 0.0]
    assert generator_weights <= {id(p) for p in groups[0]["params"]}
    cfg.MODEL.DFF.MASK_WEIGHT_DECAY = 0.0
    groups = build_optimizer(cfg, model).param_groups
    assert [g["weight_decay"] for g in groups] == [5e-4, 0.0, 0.0]
    assert {id(p) for p in groups[2]["params"]} == generator_weights
    assert not generator_weights & {id(p) for p in groups[0]["params"]}
    assert sum(len(g["params"]) for g in groups) == sum(1 for p in model.parameters() if p.requires_grad)
