"""The Fourier unit, spectral transform and FFC convolution against torch.fft and plain convolutions."""

import pytest
import torch
import torch.nn.functional as F

from reid_dff.config import ConfigError
from reid_dff.modeling.backbones import FFCConv2d, FilterSettings, FourierUnit, stacked_irfft2, stacked_rfft2
from reid_dff.modeling.backbones.ffc import add_into_channels

NONE = FilterSettings(name="none")


@pytest.mark.parametrize("width", [8, 7])
def test_stacked_fft_matches_torch_fft_and_round_trips(width):
    x = torch.randn(2, 3, 6, width)
    z = stacked_rfft2(x)
    reference = torch.fft.rfft2(x, norm="ortho")
    assert z.shape == (2, 6, 6, width // 2 + 1)
    torch.testing.assert_close(z[:, :3], reference.real)
    torch.testing.assert_close(z[:, 3:], reference.imag)
    torch.testing.assert_close(stacked_irfft2(z, (6, width)), x, atol=1e-5, rtol=1e-5)
    # and the plain torch.fft identity the Fourier unit relies on (odd widths need s=)
    torch.testing.assert_close(
        torch.fft.irfft2(reference, s=(6, width), norm="ortho"), x, atol=1e-5, rtol=1e-5
    )


def test_fft_runs_in_float32_under_autocast():
    x = torch.randn(1, 2, 4, 6, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = stacked_rfft2(x)
        y = stacked_irfft2(z, (4, 6))
    assert z.dtype == torch.float32 and y.dtype == torch.float32


def test_fourier_unit_equals_a_direct_torch_fft_computation():
    fu = FourierUnit(4, (6, 5), NONE).eval()
    with torch.no_grad():
        fu.bn.running_mean.uniform_(-0.1, 0.1)
        fu.bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 4, 6, 5)
    spec = torch.fft.rfft2(x, norm="ortho")
    z = torch.cat([spec.real, spec.imag], dim=1)
    z = F.relu(
        F.batch_norm(
            F.conv2d(z, fu.conv.weight), fu.bn.running_mean, fu.bn.running_var, fu.bn.weight, fu.bn.bias
        )
    )
    expected = torch.fft.irfft2(torch.complex(z[:, :4], z[:, 4:]), s=(6, 5), norm="ortho")
    with torch.no_grad():
        torch.testing.assert_close(fu(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kernel,stride", [(1, 1), (3, 1), (3, 2)])
def test_ffc_paths_are_blocks_of_one_convolution(kernel, stride):
    """With the spectral path's output removed, FFC == a conv whose global->global block is zero."""
    ffc = FFCConv2d(8, 12, kernel, stride, 0.5, 0.5, (8, 6), NONE)
    ffc.g2g.register_forward_hook(lambda module, inputs, output: torch.zeros_like(output))
    weight = torch.zeros(12, 8, kernel, kernel)
    weight[:6, :4] = ffc.l2l.weight
    weight[6:, :4] = ffc.l2g.weight
    weight[:6, 4:] = ffc.g2l.weight
    x = torch.randn(2, 8, 8, 6)
    with torch.no_grad():
        torch.testing.assert_close(
            ffc(x), F.conv2d(x, weight, None, stride, kernel // 2), atol=1e-5, rtol=1e-5
        )


def test_ffc_global_output_is_l2g_plus_spectral_transform():
    ffc = FFCConv2d(8, 8, 3, 2, 0.5, 0.5, (8, 6), NONE).eval()
    x = torch.randn(2, 8, 8, 6)
    with torch.no_grad():
        y = ffc(x)
        torch.testing.assert_close(y[:, 4:], ffc.l2g(x[:, :4]) + ffc.g2g(x[:, 4:]), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(y[:, :4], ffc.l2l(x[:, :4]) + ffc.g2l(x[:, 4:]), atol=1e-5, rtol=1e-5)


def test_ffc_absent_paths_and_odd_sizes():
    to_global = FFCConv2d(6, 8, 1, 1, 0.0, 0.5, (5, 3), NONE)  # layer1 first block: 0 -> a
    assert (
        to_global.g2l is None
        and to_global.g2g is None
        and to_global(torch.randn(1, 6, 5, 3)).shape == (1, 8, 5, 3)
    )
    to_local = FFCConv2d(8, 6, 3, 2, 0.5, 0.0, (5, 3), NONE)  # layer4 first block: a -> 0
    assert (
        to_local.l2g is None
        and to_local.g2g is None
        and to_local(torch.randn(1, 8, 5, 3)).shape == (1, 6, 3, 2)
    )
    odd = FFCConv2d(8, 8, 3, 2, 0.5, 0.5, (5, 7), NONE)  # spectral avg-pool must follow the conv's ceil(H/2)
    assert odd(torch.randn(1, 8, 5, 7)).shape == (1, 8, 3, 4)


def test_spectral_transform_rejects_other_strides():
    with pytest.raises(ConfigError, match="stride 1 or 2"):
        FFCConv2d(8, 8, 3, 3, 0.5, 0.5, (8, 8), NONE)


def test_add_into_channels_matches_out_of_place_adds_in_value_and_gradient():
    out = torch.randn(2, 7, 3, 4, dtype=torch.float64, requires_grad=True)
    first = torch.randn(2, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    last = torch.randn(2, 2, 3, 4, dtype=torch.float64, requires_grad=True)

    def fused(out, first, last):
        return add_into_channels(out.clone(), (0, first), (5, last), (1, None))

    def reference(out, first, last):
        zeros = out.new_zeros(2, 2, 3, 4)
        return out + torch.cat([first, zeros, last], dim=1)

    torch.testing.assert_close(fused(out, first, last), reference(out, first, last))
    assert torch.autograd.gradcheck(fused, (out, first, last))
    weight = torch.randn(2, 7, 3, 4, dtype=torch.float64)
    fused_grads = torch.autograd.grad((fused(out, first, last) * weight).sum(), (out, first, last))
    reference_grads = torch.autograd.grad((reference(out, first, last) * weight).sum(), (out, first, last))
    for got, expected in zip(fused_grads, reference_grads):
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("kernel,stride", [(1, 1), (3, 2)])
def test_ffc_gradients_match_the_per_path_formulation(kernel, stride):
    """The fused forward (split input, stacked l2l/l2g, in-place adds) has the gradients of the four paths."""
    ffc = FFCConv2d(8, 12, kernel, stride, 0.5, 0.5, (8, 6), NONE)
    x = torch.randn(2, 8, 8, 6, requires_grad=True)
    weight = torch.randn(2, 12, *ffc(x).shape[-2:])
    params = [x, *ffc.parameters()]

    def per_path(x):
        x_local, x_global = x[:, :4], x[:, 4:]
        return torch.cat([ffc.l2l(x_local) + ffc.g2l(x_global), ffc.l2g(x_local) + ffc.g2g(x_global)], dim=1)

    # BatchNorm in training mode updates running statistics: compare from the same starting state.
    state = {k: v.clone() for k, v in ffc.state_dict().items()}
    got = torch.autograd.grad((ffc(x) * weight).sum(), params)
    ffc.load_state_dict(state)
    expected = torch.autograd.grad((per_path(x) * weight).sum(), params)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, atol=1e-4, rtol=1e-4)
