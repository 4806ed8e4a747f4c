"""The closed-set classification model (``MODEL.TASK classification``, e.g. Office-Home DG).

Backbone -> global pooling (``MODEL.HEAD.POOLING``) -> ``Linear`` with bias. Any registered backbone
works (DFF-ResNet-18 in configs/officehome/). There is no neck: the ReID BNNeck exists for retrieval
embeddings, which this task does not produce.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import CfgNode, ConfigError
from .backbones import build_backbone
from .meta_arch import META_ARCH_REGISTRY, POOLING_REGISTRY

__all__ = ["ClassificationModel", "build_classification_model"]


class ClassificationModel(nn.Module):
    """Backbone -> pooling -> linear classifier.

    ``train()`` mode: ``{"logits": (B, N), "features": (B, D)}`` (pooled features, as the ReID model
    returns them, so the same losses apply); ``eval()`` mode: the ``(B, N)`` logits.
    """

    def __init__(self, backbone: nn.Module, pooling: nn.Module, num_classes: int):
        super().__init__()
        if num_classes < 1:
            raise ConfigError(
                f"a classification model needs num_classes >= 1, got {num_classes} (it comes from the "
                "training data's class list, or MODEL.HEAD.NUM_CLASSES); retrieval embeddings (features, "
                "search, visualization) come from ReID models (MODEL.TASK reid)"
            )
        self.backbone = backbone
        self.pooling = pooling
        feat_dim = getattr(backbone, "out_channels", None)
        if not isinstance(feat_dim, int):
            raise TypeError(f"{type(backbone).__name__} lacks an int out_channels (got {feat_dim!r})")
        self.feat_dim = feat_dim
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.feat_dim, num_classes, bias=True)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor] | torch.Tensor:
        """``(B, 3, H, W)`` normalized images -> logits ``(B, N)`` (eval) or the training dict."""
        features = self.pooling(self.backbone(images))
        logits = self.classifier(features)
        if not self.training:
            return logits
        return {"logits": logits, "features": features}


@META_ARCH_REGISTRY.register("imagenet")  # stage-1 pre-training: the same model
@META_ARCH_REGISTRY.register("classification")
def build_classification_model(cfg: CfgNode, num_classes: int) -> ClassificationModel:
    """The classification model of ``cfg`` with ``num_classes`` outputs (``MODEL.HEAD.NUM_CLASSES`` if > 0)."""
    if cfg.MODEL.HEAD.NECK != "none":
        raise ConfigError(
            f"MODEL.HEAD.NECK is {cfg.MODEL.HEAD.NECK!r}; the classification head has no neck (expected MODEL.HEAD.NECK none)"
        )
    configured = int(cfg.MODEL.HEAD.NUM_CLASSES)
    if configured > 0 and num_classes > 0 and configured != num_classes:
        raise ConfigError(
            f"MODEL.HEAD.NUM_CLASSES is {configured} but the training data has {num_classes} classes; set it "
            "to 0 (taken from the data) or to the data's class count"
        )
    backbone = build_backbone(cfg)
    pooling = POOLING_REGISTRY.get(cfg.MODEL.HEAD.POOLING)(cfg)
    return ClassificationModel(backbone, pooling, num_classes or configured)
