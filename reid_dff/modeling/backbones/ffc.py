"""Fast Fourier Convolution (Chi et al., NeurIPS 2020) with DFF's frequency filtering (Lin et al., CVPR 2023).

Layout: a two-branch feature map is ONE tensor ``(B, C_l + C_g, H, W)`` whose first ``C_l`` channels are
the local branch and the last ``C_g`` the global branch. BatchNorm and ReLU are per channel, so one
``BatchNorm2d``/``ReLU`` over the whole tensor *is* the per-branch BN/activation of FFC, residual additions
are per branch, and the block code and the BN parameter names stay those of torchvision's ResNet (which
is what lets ImageNet weights load by name; see ``pretrained.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...config import ConfigError
from .filters import FilterSettings, build_filter


def stacked_rfft2(x: torch.Tensor) -> torch.Tensor:
    """Real 2D FFT (``norm="ortho"``, float32) with real and imaginary parts stacked as channels.

    ``(B, C, H, W) -> (B, 2C, H, W//2+1)``: channels ``[0, C)`` are real parts, ``[C, 2C)`` imaginary.
    """
    # cuFFT in half precision only handles power-of-2 sizes, and float16 spectra lose precision: always
    # run the transform in float32, whatever autocast says.
    with torch.autocast(device_type=x.device.type, enabled=False):
        spectrum = torch.fft.rfft2(x.float(), norm="ortho")
        # view_as_real gives (B, C, H, W', 2); moving the re/im axis next to the channels and merging is
        # a single copy, the same cost as cat([real, imag]) but without two strided reads.
        stacked = torch.view_as_real(spectrum).permute(0, 4, 1, 2, 3)
        return stacked.reshape(x.shape[0], 2 * x.shape[1], *spectrum.shape[-2:])


def stacked_irfft2(z: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Inverse of ``stacked_rfft2``: ``(B, 2C, H, W//2+1) -> (B, C, H, W)`` float32, ``W`` from ``size``.

    The explicit output size matters for odd widths, which ``W//2+1`` alone cannot distinguish.
    """
    with torch.autocast(device_type=z.device.type, enabled=False):
        z = z.float()
        b, c2, h, w_half = z.shape
        pairs = z.reshape(b, 2, c2 // 2, h, w_half).permute(0, 2, 3, 4, 1).contiguous()
        return torch.fft.irfft2(torch.view_as_complex(pairs), s=size, norm="ortho")


class FourierUnit(nn.Module):
    """FFT -> (DFF filter) -> 1x1 conv-BN-ReLU in frequency space -> inverse FFT: ``(B, C, H, W) -> same``.

    ``input_filter`` (pixel domain, before the FFT) and ``spectrum_filter`` (frequency domain) come from
    ``MODEL.DFF.FILTER``; at most one of them exists and for SBase neither.
    """

    def __init__(self, channels: int, size: tuple[int, int], settings: FilterSettings):
        super().__init__()
        self.input_filter = build_filter(settings, "global_input", channels, size)
        self.spectrum_filter = build_filter(settings, "spectrum", channels, size)
        self.conv = nn.Conv2d(2 * channels, 2 * channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(2 * channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_filter is not None:
            x = self.input_filter(x)
        spectrum = stacked_rfft2(x)
        if self.spectrum_filter is not None:
            spectrum = self.spectrum_filter(spectrum)
        spectrum = self.relu(self.bn(self.conv(spectrum)))
        return stacked_irfft2(spectrum, (x.shape[-2], x.shape[-1])).to(x.dtype)


class SpectralTransform(nn.Module):
    """The global path ``f_g``: (AvgPool 2) -> 1x1 conv-BN-ReLU to C/2 -> Fourier unit -> 1x1 conv on
    ``x + fourier(x)``. No local Fourier unit (DFF does not use it). ``(B, C_in, H, W) -> (B, C_out, h, w)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        size: tuple[int, int],
        settings: FilterSettings,
    ):
        super().__init__()
        if stride not in (1, 2):
            raise ConfigError(f"the FFC spectral transform supports stride 1 or 2, got {stride}")
        # ceil_mode keeps odd sizes in step with the stride-2 3x3 conv of the local path (ceil(H/2)).
        self.downsample = nn.AvgPool2d(2, stride=2, ceil_mode=True) if stride == 2 else nn.Identity()
        hidden = out_channels // 2
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True)
        )
        fu_size = size if stride == 1 else ((size[0] + 1) // 2, (size[1] + 1) // 2)
        self.fu = FourierUnit(hidden, fu_size, settings)
        self.conv2 = nn.Conv2d(hidden, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.downsample(x))
        return self.conv2(x + self.fu(x))


class _AddIntoChannels(torch.autograd.Function):
    """``out[:, start:start + n] += part`` for each ``(start, part)``, in place, with a view-only backward.

    Autograd's own in-place add into a channel slice (``CopySlices``) clones the whole gradient of
    ``out`` and copies the slice back in backward, twice per FFC conv; here the gradient of ``out``
    passes through unchanged and each part's gradient is a channel view of it.
    """

    @staticmethod
    def forward(ctx, out: torch.Tensor, *starts_and_parts) -> torch.Tensor:
        blocks = list(zip(starts_and_parts[0::2], starts_and_parts[1::2]))
        ctx.blocks = [(start, part.shape[1]) for start, part in blocks]
        for start, part in blocks:
            out.narrow(1, start, part.shape[1]).add_(part)
        ctx.mark_dirty(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grads: list[torch.Tensor | None] = [grad]
        for start, channels in ctx.blocks:
            grads.extend([None, grad.narrow(1, start, channels)])
        return tuple(grads)


def add_into_channels(out: torch.Tensor, *blocks: tuple[int, torch.Tensor | None]) -> torch.Tensor:
    """Add each ``(start, part)`` block ``(B, n, h, w)`` into channels ``[start, start + n)`` of ``out``
    ``(B, C, h, w)`` in place and return ``out``; ``None`` parts are skipped."""
    flat = [item for start, part in blocks if part is not None for item in (start, part)]
    return _AddIntoChannels.apply(out, *flat) if flat else out


def split_channels(channels: int, ratio: float) -> tuple[int, int]:
    """``(local, global)`` channel counts for a global ratio, as FFC computes them."""
    global_channels = int(channels * ratio)
    return channels - global_channels, global_channels


class FFCConv2d(nn.Module):
    """The four-path FFC convolution on a ``[local | global]`` tensor.

    ``y_l = f_l(x_l) + f_g2l(x_g)`` and ``y_g = f_l2g(x_l) + f_g(x_g)``; ``l2l``, ``l2g``, ``g2l`` are
    ordinary convolutions with this layer's kernel and stride, ``g2g`` the spectral transform; a path with
    zero input or output channels is ``None``. ``(B, C_in, H, W) -> (B, C_out, h, w)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        ratio_in: float,
        ratio_out: float,
        size: tuple[int, int],
        settings: FilterSettings,
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_local, self.in_global = split_channels(in_channels, ratio_in)
        self.out_local, self.out_global = split_channels(out_channels, ratio_out)
        padding = kernel_size // 2

        def conv(cin: int, cout: int) -> nn.Conv2d | None:
            return nn.Conv2d(cin, cout, kernel_size, stride, padding, bias=False) if cin and cout else None

        self.l2l = conv(self.in_local, self.out_local)
        self.l2g = conv(self.in_local, self.out_global)
        self.g2l = conv(self.in_global, self.out_local)
        self.g2g = (
            SpectralTransform(self.in_global, self.out_global, stride, size, settings)
            if self.in_global and self.out_global
            else None
        )
        # Ori-F in f_l sits in the convolutions that also have a spectral path, one per Fourier unit.
        out_size = (
            (size[0] + 2 * padding - kernel_size) // stride + 1,
            (size[1] + 2 * padding - kernel_size) // stride + 1,
        )
        self.local_filter = (
            build_filter(settings, "local_output", self.out_local, out_size)
            if self.l2l is not None and self.g2g is not None
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # split (not two slices): its backward is one concatenation of the branch gradients, where each
        # slice's backward would allocate and zero-fill a full-size gradient and then add the two.
        if self.in_local and self.in_global:
            x_local, x_global = x.split([self.in_local, self.in_global], dim=1)
        else:
            x_local = x_global = x
        if self.g2l is not None and self.g2g is not None:
            # Both global paths read x_global: copy the channel slice once instead of once per conv.
            x_global = x_global.contiguous()
        if self.l2l is not None and self.l2g is not None and self.local_filter is None:
            # l2l and l2g read the same input with the same kernel: one conv with their weights stacked
            # writes [local | global] in place, which saves a conv call, a concatenation and two adds.
            weight = torch.cat([self.l2l.weight, self.l2g.weight], dim=0)
            out = F.conv2d(x_local, weight, None, self.l2l.stride, self.l2l.padding)
            from_local = self.g2l(x_global) if self.g2l is not None else None
            from_global = self.g2g(x_global) if self.g2g is not None else None
            return add_into_channels(out, (0, from_local), (self.out_local, from_global))
        outputs: list[torch.Tensor] = []
        if self.out_local:
            y_local = self.l2l(x_local) if self.l2l is not None else None
            if self.local_filter is not None:
                y_local = self.local_filter(y_local)
            if self.g2l is not None:
                y_local = self.g2l(x_global) if y_local is None else y_local + self.g2l(x_global)
            assert y_local is not None  # out_local > 0: l2l or g2l exists (in_channels > 0)
            outputs.append(y_local)
        if self.out_global:
            y_global = self.l2g(x_local) if self.l2g is not None else None
            if self.g2g is not None:
                y_global = self.g2g(x_global) if y_global is None else y_global + self.g2g(x_global)
            assert y_global is not None  # out_global > 0: l2g or g2g exists (in_channels > 0)
            outputs.append(y_global)
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)

    def extra_repr(self) -> str:
        return (
            f"in=({self.in_local} local, {self.in_global} global), "
            f"out=({self.out_local} local, {self.out_global} global)"
        )
