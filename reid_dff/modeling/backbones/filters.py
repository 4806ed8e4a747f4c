"""The DFF filter and the ablation variants of the paper, as small modules plugged into the FFC blocks.

Every variant is a filter module registered in ``FILTER_REGISTRY`` under its ``MODEL.DFF.FILTER`` value.
A filter class says where it acts through ``site``:

- ``"spectrum"``: inside the Fourier unit, on the stacked frequency representation
  ``(B, 2C, H, W//2+1)`` (real parts in channels ``[0, C)``, imaginary parts in ``[C, 2C)``), between
  ``rfft2`` and the post-filtering 1x1 conv-BN-ReLU;
- ``"global_input"``: inside the Fourier unit, on its pixel-domain input ``(B, C, H, W)`` before the FFT;
- ``"local_output"``: on the output of the local->local convolution ``f_l`` of an FFC convolution.

A filter's forward returns the filtered tensor. The mask itself is the output of a dedicated submodule
(``FrequencyMask``, ``PixelMask``, ``TaskChannelMask``, ``TaskSpatialMask``, ``FrequencyChannelAttention``)
so that ``register_forward_hook`` on those classes captures the masks; no module stores a mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ...config import ConfigError
from ...utils.registry import Registry

FILTER_REGISTRY = Registry("frequency filter (MODEL.DFF.FILTER)")

SITES = ("spectrum", "global_input", "local_output")

# The open choices of the DFF mask (issue 16), each a MODEL.DFF key; the first value is the default.
MASK_INPUTS = ("re_im", "log_magnitude")
MASK_LAYOUTS = ("rfft", "centered")
MASK_INITS = ("zeros", "normal", "kaiming")
# Standard deviation of the generator's conv weights under MASK_INIT "normal".
NORMAL_INIT_STD = 1e-2
# Added under the square root of |F| so that an all-zero spectrum has a finite (zero) gradient.
MAGNITUDE_EPS = 1e-12


@dataclass(frozen=True)
class FilterSettings:
    """What a filter needs from the config: its name and the hyper-parameters of the variants.

    ``mask_input``, ``mask_layout`` and ``mask_init`` are the DFF mask's open choices (``MODEL.DFF.MASK_*``);
    see ``FrequencyMask``.
    """

    name: str = "ins_spatial"
    mask_kernel: int = 7
    se_reduction: int = 16
    mask_input: str = "re_im"
    mask_layout: str = "rfft"
    mask_init: str = "kaiming"

    def __post_init__(self) -> None:
        for key, value, allowed in (
            ("MASK_INPUT", self.mask_input, MASK_INPUTS),
            ("MASK_LAYOUT", self.mask_layout, MASK_LAYOUTS),
            ("MASK_INIT", self.mask_init, MASK_INITS),
        ):
            if value not in allowed:
                raise ConfigError(f"MODEL.DFF.{key} is {value!r}; expected one of: {', '.join(allowed)}")


def spectrum_size(size: tuple[int, int]) -> tuple[int, int]:
    """Size ``(H, W//2+1)`` of ``rfft2`` of an ``(H, W)`` map."""
    return size[0], size[1] // 2 + 1


# ----------------------------------------------------------------------------------------- mask generators
class SpatialAttentionMask(nn.Module):
    """Mean and max over channels -> one k x k conv -> sigmoid: ``(B, C, H, W) -> (B, 1, H, W)``.

    ``init`` (``MODEL.DFF.MASK_INIT``): ``"zeros"`` (the mask starts at 0.5 everywhere), ``"normal"``
    (weights N(0, ``NORMAL_INIT_STD``^2)) or ``"kaiming"`` (``kaiming_normal_``, fan-in, gain 1); the bias
    starts at zero in every case.
    """

    def __init__(self, kernel_size: int = 7, init: str = "zeros"):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ConfigError(f"MODEL.DFF.MASK_KERNEL must be a positive odd integer, got {kernel_size}")
        if init not in MASK_INITS:
            raise ConfigError(f"MODEL.DFF.MASK_INIT is {init!r}; expected one of: {', '.join(MASK_INITS)}")
        self.init = init
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The start of ``self.init``; zero bias.

        The package default (``MODEL.DFF.MASK_INIT``) is ``"kaiming"``: from zero weights the generator
        hardly moves and the masks stay near 0.5 for every image; from a random start they differ by
        image and stay so (docs/results.md). A random start on raw re/im values can saturate the sigmoid
        where the spectrum is large (the DC term grows with sqrt(H*W)).
        """
        assert self.conv.bias is not None  # built with a bias
        if self.init == "zeros":
            nn.init.zeros_(self.conv.weight)
        elif self.init == "normal":
            nn.init.normal_(self.conv.weight, std=NORMAL_INIT_STD)
        else:
            nn.init.kaiming_normal_(self.conv.weight, mode="fan_in", nonlinearity="linear")
        nn.init.zeros_(self.conv.bias)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> (B, 2, H, W)``: mean and max over channels."""
        # max with indices, not amax: its backward is one scatter, where amax's compares every element
        # with the maximum and divides among ties (three more passes over the input).
        return torch.cat([x.mean(dim=1, keepdim=True), x.max(dim=1, keepdim=True).values], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(self.pool(x)))


class FrequencyMask(SpatialAttentionMask):
    """The DFF mask: ``(B, 2C, H, W//2+1)`` frequency representation -> ``(B, 1, H, W//2+1)`` in (0, 1).

    One value per frequency position, shared by all channels and by the real and imaginary parts. A
    distinct class from ``PixelMask`` so that hooks can tell frequency masks from pixel-domain ones.

    Our interpretation of two choices the paper leaves open (``MODEL.DFF.MASK_INPUT`` / ``MASK_LAYOUT``):

    - input ``"re_im"``: mean and max over the 2C stacked real/imaginary channels (the literal reading);
      ``"log_magnitude"``: ``log1p(|F|)`` per channel ``(B, C, H, W//2+1)``, then mean and max over C;
    - layout ``"rfft"``: the conv runs on the ``rfft2`` layout with zero padding (DC in the top-left
      corner, +1 and -1 vertical frequencies at opposite edges); ``"centered"``: the pooled map is
      ``fftshift``-ed along the full-frequency axis H, padded circularly along H and with zeros along
      W//2+1, convolved, and the mask is shifted back, so the mask keeps the ``rfft2`` layout. Circular
      padding makes the result the same as a conv that wraps around H in the un-shifted layout.
    """

    def __init__(
        self, kernel_size: int = 7, init: str = "zeros", mask_input: str = "re_im", layout: str = "rfft"
    ):
        super().__init__(kernel_size, init)
        if mask_input not in MASK_INPUTS:
            raise ConfigError(
                f"MODEL.DFF.MASK_INPUT is {mask_input!r}; expected one of: {', '.join(MASK_INPUTS)}"
            )
        if layout not in MASK_LAYOUTS:
            raise ConfigError(
                f"MODEL.DFF.MASK_LAYOUT is {layout!r}; expected one of: {', '.join(MASK_LAYOUTS)}"
            )
        self.mask_input = mask_input
        self.layout = layout
        if layout == "centered":
            self.conv.padding = (0, 0)  # padded by hand in forward: circular along H, zeros along W

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        if self.mask_input == "log_magnitude":
            real, imag = x.chunk(2, dim=1)
            x = torch.log1p(torch.sqrt(real.square() + imag.square() + MAGNITUDE_EPS))
        return super().pool(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(x)
        if self.layout == "rfft":
            return torch.sigmoid(self.conv(pooled))
        height = pooled.shape[-2]
        pad = self.conv.kernel_size[0] // 2
        shift = height // 2
        centred = torch.roll(pooled, shift, dims=-2)  # fftshift along H
        # Circular padding by index, valid also when the kernel is taller than the spectrum (pad > H).
        rows = torch.arange(-pad, height + pad, device=pooled.device) % height
        padded = F.pad(centred.index_select(-2, rows), (pad, pad, 0, 0))
        mask = torch.sigmoid(self.conv(padded))
        return torch.roll(mask, -shift, dims=-2)  # ifftshift: back to the rfft2 layout


class PixelMask(SpatialAttentionMask):
    """Spatial attention in the original (pixel) domain: ``(B, C, H, W) -> (B, 1, H, W)`` in (0, 1)."""


class TaskChannelMask(nn.Module):
    """A learned mask per channel, shared by all inputs: ``-> (1, 2C, 1, 1)`` in (0, 1)."""

    def __init__(self, channels: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def reset_parameters(self) -> None:
        """Zero logits: the mask starts at 0.5."""
        nn.init.zeros_(self.logits)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits).to(z.dtype)


class TaskSpatialMask(nn.Module):
    """A learned mask per frequency position, shared by all inputs: ``-> (1, 1, H, W//2+1)`` in (0, 1).

    The parameter has the spectrum size of the configured input (``INPUT.SIZE_TRAIN``); for another
    feature size it is resized bilinearly (our interpretation of the paper's Task.(S)).
    """

    def __init__(self, size: tuple[int, int]):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(1, 1, *size))

    def reset_parameters(self) -> None:
        """Zero logits: the mask starts at 0.5."""
        nn.init.zeros_(self.logits)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.logits
        if tuple(logits.shape[-2:]) != tuple(z.shape[-2:]):
            logits = F.interpolate(logits, size=z.shape[-2:], mode="bilinear", align_corners=False)
        return torch.sigmoid(logits).to(z.dtype)


class FrequencyChannelAttention(nn.Module):
    """SE-style channel attention: ``(B, 2C, H, W//2+1) -> (B, 2C, 1, 1)`` in (0, 1)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        if reduction < 1:
            raise ConfigError(f"MODEL.DFF.SE_REDUCTION must be >= 1, got {reduction}")
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Default init for ``fc1``; zero ``fc2``, so the attention starts at 0.5 for every channel."""
        self.fc1.reset_parameters()
        assert self.fc2.bias is not None  # built with a bias
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        squeezed = z.mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.fc2(F.relu(self.fc1(squeezed))))


# ----------------------------------------------------------------------------------------- filters
class MaskFilter(nn.Module):
    """Multiplies its input by the output of its ``mask`` submodule (broadcast)."""

    site: ClassVar[str]

    def __init__(self, mask: nn.Module):
        super().__init__()
        self.mask = mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask(x)


@FILTER_REGISTRY.register("ins_spatial")
class InstanceSpatialFilter(MaskFilter):
    """Ins.(S), the DFF filter: an instance-adaptive mask over frequency positions."""

    site = "spectrum"

    def __init__(self, channels: int, size: tuple[int, int], settings: FilterSettings):
        super().__init__(
            FrequencyMask(settings.mask_kernel, settings.mask_init, settings.mask_input, settings.mask_layout)
        )


@FILTER_REGISTRY.register("ins_channel")
class InstanceChannelFilter(MaskFilter):
    """Ins.(C): instance-adaptive (SE) channel attention on the frequency representation."""

    site = "spectrum"

    def __init__(self, channels: int, size: tuple[int, int], settings: FilterSettings):
        super().__init__(FrequencyChannelAttention(2 * channels, settings.se_reduction))


@FILTER_REGISTRY.register("task_channel")
class TaskChannelFilter(MaskFilter):
    """Task.(C): a learned per-channel frequency mask, the same for every input."""

    site = "spectrum"

    def __init__(self, channels: int, size: tuple[int, int], settings: FilterSettings):
        super().__init__(TaskChannelMask(2 * channels))


@FILTER_REGISTRY.register("task_spatial")
class TaskSpatialFilter(MaskFilter):
    """Task.(S): a learned per-frequency-position mask, the same for every input."""

    site = "spectrum"

    def __init__(self, channels: int, size: tuple[int, int], settings: FilterSettings):
        super().__init__(TaskSpatialMask(spectrum_size(size)))


@FILTER_REGISTRY.register("ori_global")
class GlobalPixelFilter(MaskFilter):
    """Ori-F in f_g: spatial attention in the original domain on the global branch, before the FFT."""

    site = "global_input"

    def __init__(self, channels: int, size: tuple[int, int], settings: FilterSettings):
        super().__init__(PixelMask(settings.mask_kernel, settings.mask_init))


@FILTER_REGISTRY.register("ori_local")
class LocalPixelFilter(MaskFilter):
    """Ori-F in f_l: spatial attention in the original domain on the output of the local conv f_l."""

    site = "local_output"

    def __init__(self, channels: int, size: tuple[int, int], settings: FilterSettings):
        super().__init__(PixelMask(settings.mask_kernel, settings.mask_init))


def filter_names() -> list[str]:
    """Every valid ``MODEL.DFF.FILTER`` value (``none`` = SBase)."""
    return ["none", *FILTER_REGISTRY.names()]


def check_filter_name(name: str) -> None:
    """Raise a ``ConfigError`` naming ``MODEL.DFF.FILTER`` when ``name`` is not a known variant."""
    if name != "none" and name not in FILTER_REGISTRY:
        raise ConfigError(f"MODEL.DFF.FILTER is {name!r}; expected one of: {', '.join(filter_names())}")


def build_filter(
    settings: FilterSettings, site: str, channels: int, size: tuple[int, int]
) -> nn.Module | None:
    """The filter of ``settings.name`` if it acts at ``site`` (``None`` otherwise, or for ``none``).

    ``channels`` and ``size`` describe the pixel-domain map at that site: ``(C, (H, W))``.
    """
    check_filter_name(settings.name)
    if settings.name == "none":
        return None
    cls = FILTER_REGISTRY.get(settings.name)
    return cls(channels, size, settings) if cls.site == site else None


# Submodules whose output is a mask (hook these to capture masks); each has ``reset_parameters``.
MASK_GENERATORS = (SpatialAttentionMask, TaskChannelMask, TaskSpatialMask, FrequencyChannelAttention)
