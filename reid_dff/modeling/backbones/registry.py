"""The backbone registry: a backbone is one ``@BACKBONE_REGISTRY.register("name")`` builder ``(cfg) -> nn.Module``."""

from __future__ import annotations

from torch import nn

from ...config import CfgNode
from ...utils.registry import Registry

BACKBONE_REGISTRY = Registry("backbone (MODEL.BACKBONE)")


def build_backbone(cfg: CfgNode) -> nn.Module:
    """The backbone named by ``cfg.MODEL.BACKBONE``: ``(B, 3, H, W) -> (B, C, h, w)`` with ``.out_channels``."""
    return BACKBONE_REGISTRY.get(cfg.MODEL.BACKBONE)(cfg)
