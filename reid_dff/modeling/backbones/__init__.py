"""Backbones: plain ResNet (Base), FFC-ResNet (SBase) and DFF-ResNet with every filter variant."""

from . import resnet  # noqa: F401  (registers resnet*/ffc_resnet*/dff_resnet*)
from .ffc import FFCConv2d, FourierUnit, SpectralTransform, stacked_irfft2, stacked_rfft2
from .filters import (
    FILTER_REGISTRY,
    FilterSettings,
    FrequencyChannelAttention,
    FrequencyMask,
    PixelMask,
    TaskChannelMask,
    TaskSpatialMask,
    filter_names,
)
from .registry import BACKBONE_REGISTRY, build_backbone
from .resnet import ResNet

__all__ = [
    "BACKBONE_REGISTRY",
    "FFCConv2d",
    "FILTER_REGISTRY",
    "FilterSettings",
    "FourierUnit",
    "FrequencyChannelAttention",
    "FrequencyMask",
    "PixelMask",
    "ResNet",
    "SpectralTransform",
    "TaskChannelMask",
    "TaskSpatialMask",
    "build_backbone",
    "filter_names",
    "stacked_irfft2",
    "stacked_rfft2",
]
