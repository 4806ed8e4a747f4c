"""The classification task (``MODEL.TASK classification``, Office-Home DG): closed-set top-1 accuracy.

It trains on the sources' train splits with the configured losses (``cross_entropy`` on the logits),
evaluates top-1 accuracy on the sources' val splits and on every image of the held-out targets, and keeps
``best.pth`` by the *source* val accuracy -- the target is never looked at to choose a model. The report
keeps the selected epoch's accuracies (``selected``), and so do the checkpoints, so that a resumed run
reports the same selection.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ...modeling.checkpoint import CheckpointError
from ..base import TASK_REGISTRY, Task
from .data import build_classification_data
from .evaluation import evaluate_classification_targets, format_classification_markdown

__all__ = ["ClassificationTask", "selection_metric"]

logger = logging.getLogger("reid_dff")  # the run's logger (reid_dff.utils.setup_logger)


def selection_metric(report: Mapping[str, Any]) -> float | None:
    """The scalar that picks ``best.pth``: the mean source val top-1 (None when there is no val split)."""
    val = report.get("source_val_mean")
    return None if val is None else float(val["top1"])


def _counts(sizes: dict[str, int]) -> str:
    return ", ".join(f"{spec} {n}" for spec, n in sizes.items()) or "-"


@TASK_REGISTRY.register("classification")
class ClassificationTask(Task):
    """Sources' train splits -> model -> cross-entropy; accuracy on the sources' val splits and the targets."""

    name = "classification"
    class_noun = "classes"

    def __init__(self, cfg: Any):
        super().__init__(cfg)
        self._data: Any = None

    @property
    def data(self) -> Any:
        """The ``ClassificationData`` of the config (sources' train/val splits, targets, class list)."""
        if self._data is None:
            self._data = build_classification_data(self.cfg)
        return self._data

    def build_train_set(self) -> Any:
        """The sources' train splits (``pid`` = class index); val and target images are kept for evaluation."""
        data = self.data
        logger.info(
            "classification data: %d classes; train %s; val %s; targets %s",
            len(data.classes),
            _counts(
                {
                    spec: sum(s.domain == i for s in data.train.samples)
                    for i, spec in enumerate(data.train.names)
                }
            ),
            _counts({spec: len(v) for spec, v in data.val.items()}),
            _counts({spec: len(v) for spec, v in data.targets.items()}),
        )
        return data.train

    def evaluation_samples(self) -> list:
        """The sources' val splits and the targets' images."""
        data = self.data
        return [s for samples in (*data.val.values(), *data.targets.values()) for s in samples]

    def load_weights_for_evaluation(self, state: Mapping[str, Any], source: str) -> nn.Module:
        """The checkpoint's classifier must cover the configured data's class list."""
        num_classes = int(state.get("num_classes", 0))
        if num_classes != len(self.data.classes):
            raise CheckpointError(
                f"{source} holds a {num_classes}-class classifier but the configured data has "
                f"{len(self.data.classes)} classes; evaluate with the checkpoint's dataset (a classification "
                "checkpoint records num_classes)"
            )
        return super().load_weights_for_evaluation(state, source)

    def evaluate(self, model: nn.Module, device: torch.device) -> dict:
        """Top-1 on the sources' val splits and on every target image."""
        return evaluate_classification_targets(self.cfg, model, device, data=self.data)

    def selection_metric(self, report: Mapping[str, Any]) -> float | None:
        """The mean source val top-1; None without a val split (``VAL_FRACTION`` 0): then no ``best.pth``,
        since nothing may look at the targets to pick a model."""
        return selection_metric(report)

    def selection_record(self, report: Mapping[str, Any], epoch: int) -> dict:
        """The selected epoch's accuracies (JSON- and weights_only-safe)."""
        return {
            "epoch": epoch,
            "source_val_top1": selection_metric(report),
            "targets": {name: {"top1": t["top1"]} for name, t in report["targets"].items()},
            "mean": {"top1": report["mean"]["top1"]},
        }

    def describe_evaluation(self, report: Mapping[str, Any], epoch: int, best_metric: float) -> str:
        metric = selection_metric(report)
        return "epoch {}: source val top1 {}, target top1 {:.4f} ({})".format(
            epoch,
            "n/a" if metric is None else f"{metric:.4f}",
            report["mean"]["top1"],
            ", ".join(f"{name} {t['top1']:.4f}" for name, t in report["targets"].items()),
        )

    def eval_scalars(self, report: Mapping[str, Any]) -> dict[str, float]:
        metric = selection_metric(report)
        scalars = {} if metric is None else {"eval/source_val_top1": metric}
        scalars["eval/target_top1"] = report["mean"]["top1"]
        return scalars

    def checkpoint_extras(self, selected: dict | None) -> dict[str, Any]:
        return {"task": self.name, "selected": selected}

    def finish_report(self, report: dict, epoch: int | None, selected: dict | None) -> None:
        """The epoch evaluated and the selected epoch's accuracies (None for a checkpoint's evaluation)."""
        report["epoch"] = epoch
        report["selected"] = selected

    def format_report(self, report: Mapping[str, Any]) -> str:
        return format_classification_markdown(report)
