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


@dataclass(frozen=True)
class FilterSettings:
    """What a filter needs from the config: its name and the hyper-parameters of the variants."""

    name: str = "ins_spatial"
    mask_kernel: int = 7
    se_reduction: int = 16


def spectrum_size(size: tuple[int, int]) -> tuple[int, int]:
    """Size ``(H, W//2+1)`` of ``rfft2`` of an ``(H, W)`` map."""
    return size[0], size[1] // 2 + 1


# ----------------------------------------------------------------------------------------- mask generators
class SpatialAttentionMask(nn.Module):
    """Mean and max over channels -> one k x k conv -> sigmoid: ``(B, C, H, W) -> (B, 1, H, W)``."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ConfigError(f"MODEL.DFF.MASK_KERNEL must be a positive odd integer, got {kernel_size}")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero weights and bias: the mask starts at 0.5 everywhere.

        Spectrum magnitudes span orders of magnitude (the DC term grows with sqrt(H*W)), so a randomly
        initialized conv would saturate the sigmoid at 0 or 1 and starve the generator of gradient.
        """
        assert self.conv.bias is not None  # built with a bias
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # max with indices, not amax: its backward is one scatter, where amax's compares every element
        # with the maximum and divides among ties (three more passes over the input).
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.max(dim=1, keepdim=True).values], dim=1)
        return torch.sigmoid(self.conv(pooled))


class FrequencyMask(SpatialAttentionMask):
    """The DFF mask: ``(B, 2C, H, W//2+1)`` frequency representation -> ``(B, 1, H, W//2+1)`` in (0, 1).

    One value per frequency position, shared by all channels and by the real and imaginary parts. A
    distinct class from ``PixelMask`` so that hooks can tell frequency masks from pixel-domain ones.
    """


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
        super().__init__(FrequencyMask(settings.mask_kernel))


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
        super().__init__(PixelMask(settings.mask_kernel))


@FILTER_REGISTRY.register("ori_local")
class LocalPixelFilter(MaskFilter):
    """Ori-F in f_l: spatial attention in the original domain on the output of the local conv f_l."""

    site = "local_output"

    def __init__(self, channels: int, size: tuple[int, int], settings: FilterSettings):
        super().__init__(PixelMask(settings.mask_kernel))


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
