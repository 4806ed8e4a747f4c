"""The ReID task: multi-source identity training, retrieval mAP/CMC on held-out target domains."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from .base import TASK_REGISTRY, Task

__all__ = ["ReIDTask", "target_map"]


def target_map(report: Mapping[str, Any]) -> float:
    """The scalar that picks ``best.pth``: the mean target mAP of an evaluation report."""
    try:
        return float(report["mean"]["mAP"])
    except (KeyError, TypeError):
        raise ValueError(
            f"evaluation report has no mean mAP (report['mean']['mAP']) to rank checkpoints by; keys: {sorted(report)}"
        ) from None


@TASK_REGISTRY.register("reid")
class ReIDTask(Task):
    """Train an identity classifier + metric losses on ``DATASETS.SOURCES``; ``best.pth`` by target mAP."""

    name = "reid"
    class_noun = "identities"

    def check_config(self) -> None:
        """Refuse evaluation settings before training starts (``TEST.METRIC``, ``DATASETS.TARGETS`` ...)."""
        from ..evaluation import check_evaluation_config

        check_evaluation_config(self.cfg)

    def build_train_set(self) -> Any:
        """The multi-source training set (identities relabeled across sources)."""
        from ..data import build_train_set

        return build_train_set(self.cfg)

    def evaluation_samples(self) -> list:
        """The query and gallery images of every target split."""
        from ..data import all_samples, build_test_sets

        return all_samples(
            [split for name in self.cfg.DATASETS.TARGETS for split in build_test_sets(self.cfg, name)]
        )

    def evaluate(self, model: nn.Module, device: torch.device) -> dict:
        """Retrieval metrics on every target of ``DATASETS.TARGETS`` over its splits."""
        from ..evaluation import evaluate_targets

        return evaluate_targets(self.cfg, model, device)

    def selection_metric(self, report: Mapping[str, Any]) -> float:
        """The mean target mAP."""
        return target_map(report)

    def describe_evaluation(self, report: Mapping[str, Any], epoch: int, best_metric: float) -> str:
        best = "none yet" if best_metric == -math.inf else f"{best_metric:.4f}"
        return f"epoch {epoch}: target mAP {target_map(report):.4f} (best so far {best})"

    def eval_scalars(self, report: Mapping[str, Any]) -> dict[str, float]:
        return {"eval/target_mAP": target_map(report)}

    def format_report(self, report: Mapping[str, Any]) -> str:
        from ..evaluation import format_markdown

        return format_markdown(report)
