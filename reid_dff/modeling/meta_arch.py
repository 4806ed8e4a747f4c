"""Whole models: backbone -> global pooling -> neck -> classifier, chosen by ``MODEL.TASK``.

``build_model(cfg, num_classes)`` dispatches through ``META_ARCH_REGISTRY`` (``"reid"`` here; other tasks
register their own builder ``(cfg, num_classes) -> nn.Module``). Pixel normalization is the data
pipeline's job: models take normalized images.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..config import CfgNode, ConfigError
from ..utils.registry import Registry
from .backbones import build_backbone
from .pretrain_sources import load_pretrained

logger = logging.getLogger(__name__)

META_ARCH_REGISTRY = Registry("model task (MODEL.TASK)")
POOLING_REGISTRY = Registry("pooling (MODEL.HEAD.POOLING)")
NECK_REGISTRY = Registry("neck (MODEL.HEAD.NECK)")


@POOLING_REGISTRY.register("avg")
class GlobalAvgPool(nn.Module):
    """Global average pooling: ``(B, C, H, W) -> (B, C)``."""

    def __init__(self, cfg: CfgNode):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


@POOLING_REGISTRY.register("gem")
class GeneralizedMeanPool(nn.Module):
    """GeM pooling ``(mean(x^p))^(1/p)`` with a fixed ``p = MODEL.HEAD.GEM_P``: ``(B, C, H, W) -> (B, C)``."""

    def __init__(self, cfg: CfgNode, eps: float = 1e-6):
        super().__init__()
        self.p = float(cfg.MODEL.HEAD.GEM_P)
        if self.p <= 0:
            raise ConfigError(f"MODEL.HEAD.GEM_P must be > 0, got {self.p}")
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The clamp keeps x^p defined (x >= 0 after ReLU, but 0^p has an infinite gradient for p < 1).
        return x.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3)).pow(1.0 / self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


@NECK_REGISTRY.register("bnneck")
def bnneck(dim: int) -> nn.Module:
    """BatchNorm1d whose bias is fixed at zero (BoT's BNNeck): the embedding is only scaled per channel."""
    bn = nn.BatchNorm1d(dim)
    nn.init.ones_(bn.weight)
    nn.init.zeros_(bn.bias)
    bn.bias.requires_grad_(False)
    return bn


@NECK_REGISTRY.register("none")
def no_neck(dim: int) -> nn.Module:
    """No neck: the embedding is the pooled feature."""
    return nn.Identity()


class ReIDModel(nn.Module):
    """Backbone -> pooling -> neck -> bias-free classifier.

    ``train()`` mode: ``{"logits": (B, N) or None, "features": (B, D) pre-neck}``;
    ``eval()`` mode: the ``(B, D)`` post-neck embedding. ``num_classes == 0`` builds no classifier.
    """

    def __init__(self, backbone: nn.Module, pooling: nn.Module, neck: nn.Module, num_classes: int):
        super().__init__()
        if num_classes < 0:
            raise ConfigError(f"num_classes must be >= 0 (0: no classifier), got {num_classes}")
        self.backbone = backbone
        self.pooling = pooling
        self.neck = neck
        feat_dim = getattr(backbone, "out_channels", None)
        if not isinstance(feat_dim, int):
            raise TypeError(f"{type(backbone).__name__} lacks an int out_channels (got {feat_dim!r})")
        self.feat_dim = feat_dim
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.feat_dim, num_classes, bias=False) if num_classes else None
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor | None] | torch.Tensor:
        features = self.pooling(self.backbone(images))
        embedding = self.neck(features)
        if not self.training:
            return embedding
        logits = self.classifier(embedding) if self.classifier is not None else None
        return {"logits": logits, "features": features}


@META_ARCH_REGISTRY.register("reid")
def build_reid_model(cfg: CfgNode, num_classes: int) -> ReIDModel:
    """The ReID model of ``cfg`` with an ``num_classes``-way identity classifier (0: none)."""
    backbone = build_backbone(cfg)
    pooling = POOLING_REGISTRY.get(cfg.MODEL.HEAD.POOLING)(cfg)
    neck = NECK_REGISTRY.get(cfg.MODEL.HEAD.NECK)(backbone.out_channels)
    return ReIDModel(backbone, pooling, neck, num_classes)


def build_model(cfg: CfgNode, num_classes: int, imagenet_init: bool = True) -> nn.Module:
    """The model of ``cfg.MODEL.TASK``; loads ``cfg.MODEL.PRETRAIN_PATH`` into its backbone when set.

    ``imagenet_init=False`` skips that file: for callers that load a reid-dff checkpoint over every backbone
    weight (evaluation, resume, fine-tuning), where the ImageNet file is not needed and may not exist.
    """
    model = META_ARCH_REGISTRY.get(cfg.MODEL.TASK)(cfg, num_classes)
    if cfg.MODEL.PRETRAIN_PATH and imagenet_init:
        report = load_pretrained(model, cfg.MODEL.PRETRAIN_PATH)
        logger.info("initialization from %s: %s", cfg.MODEL.PRETRAIN_PATH, report.summary())
    return model
