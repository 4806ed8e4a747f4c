"""Models: backbones (ResNet, FFC-ResNet, DFF-ResNet), the ReID head, weight loading, complexity counts."""

from .backbones import BACKBONE_REGISTRY, build_backbone
from .meta_arch import META_ARCH_REGISTRY, ReIDModel, build_model
from .pretrained import (
    LoadReport,
    WeightsError,
    WeightsMismatchError,
    load_imagenet_pretrained,
    load_model_weights,
)

# ``losses`` is deliberately not imported here: the engine imports ``reid_dff.modeling.losses`` directly,
# so building a model for inference never pulls in training code.

__all__ = [
    "BACKBONE_REGISTRY",
    "META_ARCH_REGISTRY",
    "LoadReport",
    "ReIDModel",
    "WeightsError",
    "WeightsMismatchError",
    "build_backbone",
    "build_model",
    "load_imagenet_pretrained",
    "load_model_weights",
]
