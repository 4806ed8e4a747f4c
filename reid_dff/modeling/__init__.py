"""Models: backbones (ResNet, FFC-ResNet, DFF-ResNet), ReID and classification heads, weights, complexity."""

from .backbones import BACKBONE_REGISTRY, build_backbone
from .classification import ClassificationModel  # registers MODEL.TASK "classification"
from .meta_arch import META_ARCH_REGISTRY, ReIDModel, build_model
from .pretrain_sources import ArchitectureMismatchError, load_pretrained
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
    "ArchitectureMismatchError",
    "BACKBONE_REGISTRY",
    "ClassificationModel",
    "META_ARCH_REGISTRY",
    "LoadReport",
    "ReIDModel",
    "WeightsError",
    "WeightsMismatchError",
    "build_backbone",
    "build_model",
    "load_imagenet_pretrained",
    "load_model_weights",
    "load_pretrained",
]
