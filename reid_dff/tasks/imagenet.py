"""Large-scale classification pre-training (``MODEL.TASK imagenet``): stage 1 of the paper.

One source dataset with its own val split -- ``imagenet`` (ILSVRC 2012) or ``class_folder:<folder>`` --
trains the model (backbone with a stride-2 last stage -> global pooling -> linear, the
``ClassificationModel`` of Office-Home) and is evaluated with top-1 and top-5 on that val split. There is
no held-out target (``DATASETS.TARGETS []``): this is the standard ImageNet protocol, not domain
generalization, so ``best.pth`` is picked by the val top-1. The task is the classification task with
another data source, evaluation and report; the training loop, DDP, sharded sampling, exact resume and
AMP are the trainer's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..config import ConfigError
from ..data.build import TrainSet, dataset_options
from ..data.datasets.base import DatasetOptionError, Sample, build_dataset, parse_dataset_spec
from ..utils import git_revision
from .base import TASK_REGISTRY
from .classification.data import ClassificationData
from .classification.evaluation import CLASSIFICATION_SCHEMA, accuracy_of
from .classification.task import ClassificationTask, logger

__all__ = ["ImageNetTask", "build_pretraining_data", "format_imagenet_markdown"]

TOPK = (1, 5)


def build_pretraining_data(cfg: Any) -> ClassificationData:
    """The one source of ``DATASETS.SOURCES``: its train split for training, its val split for evaluation."""
    sources = list(cfg.DATASETS.SOURCES)
    if len(sources) != 1:
        raise DatasetOptionError(
            f"DATASETS.SOURCES is {sources}; the imagenet task trains on one dataset with its own val split, "
            "e.g. ['imagenet'] or ['class_folder:<folder>']"
        )
    spec = sources[0]
    name, _ = parse_dataset_spec(spec)
    dataset = build_dataset(spec, cfg.DATASETS.ROOT, **dataset_options(cfg, name))
    classes = getattr(dataset, "classes", None)
    if not isinstance(classes, list) or not hasattr(dataset, "val"):
        raise DatasetOptionError(
            f"DATASETS.SOURCES entry {spec!r} is not a classification dataset with a val split (no class list); "
            "expected 'imagenet' or 'class_folder:<folder>'"
        )
    if not dataset.train:
        raise DatasetOptionError(f"source {spec} has no training images under {dataset.root}")
    samples = [Sample(s.path, s.pid, s.camid, 0) for s in dataset.train]
    train = TrainSet(samples, len(classes), 1, [spec], list(classes))
    return ClassificationData(train=train, val={spec: list(dataset.val)}, targets={}, classes=list(classes))


def _percent(value: float) -> str:
    return f"{100.0 * value:.2f}"


def format_imagenet_markdown(report: Mapping[str, Any]) -> str:
    """The report as a Markdown table: val top-1 / top-5 (%) of the last evaluation, and of the selected
    epoch (the best val top-1) when the report has a ``selected`` entry."""
    rows = [("last" if report.get("epoch") is None else f"last (epoch {report['epoch']})", report)]
    selected = report.get("selected")
    if selected:
        rows.append((f"selected (epoch {selected['epoch']})", selected))
    checkpoint = report.get("checkpoint") or {}
    header = f"source: {', '.join(report['sources'])}; {report['num_classes']} classes; val images {report['num_images']}"
    if checkpoint.get("sha256"):
        header += f"; checkpoint sha256 {checkpoint['sha256'][:12]}"
    lines = [header, "", "| evaluation | top1 | top5 |", "|---|---:|---:|"]
    lines += [f"| {name} | {_percent(r['top1'])} | {_percent(r['top5'])} |" for name, r in rows]
    return "\n".join(lines)


@TASK_REGISTRY.register("imagenet")
class ImageNetTask(ClassificationTask):
    """One dataset's train split -> classification model -> cross-entropy; top-1/top-5 on its val split."""

    name = "imagenet"

    @property
    def data(self) -> Any:
        """The ``ClassificationData`` of the source (train split, val split, no targets, class list)."""
        if self._data is None:
            self._data = build_pretraining_data(self.cfg)
        return self._data

    def check_config(self) -> None:
        if list(self.cfg.DATASETS.TARGETS):
            raise ConfigError(
                f"DATASETS.TARGETS is {list(self.cfg.DATASETS.TARGETS)}; the imagenet task evaluates on its "
                "source's val split and takes no targets (set DATASETS.TARGETS [])"
            )
        if self.cfg.DATASETS.COMBINE_ALL:
            raise ConfigError(
                "DATASETS.COMBINE_ALL is True, but it is a ReID protocol option; the imagenet task expects False"
            )

    def evaluate(self, model: nn.Module, device: torch.device) -> dict:
        """Top-1 and top-5 on the source's val split."""
        data = self.data
        ((spec, samples),) = data.val.items()
        if not samples:
            raise DatasetOptionError(f"source {spec} has no val images; the imagenet task evaluates on them")
        logger.info("evaluating %s val: %d images", spec, len(samples))
        result = accuracy_of(self.cfg, model, device, samples, topk=TOPK)
        return {
            "schema": CLASSIFICATION_SCHEMA,
            "task": self.name,
            "sources": list(data.train.names),
            "num_classes": len(data.classes),
            **result,
            "git_revision": git_revision(),
            "config": None,
            "checkpoint": None,
        }

    def selection_metric(self, report: Mapping[str, Any]) -> float | None:
        """The val top-1 (the standard ImageNet protocol: there is no held-out domain to protect)."""
        return float(report["top1"])

    def selection_record(self, report: Mapping[str, Any], epoch: int) -> dict:
        return {"epoch": epoch, "top1": float(report["top1"]), "top5": float(report["top5"])}

    def describe_evaluation(self, report: Mapping[str, Any], epoch: int, best_metric: float) -> str:
        return "epoch {}: val top1 {:.4f}, top5 {:.4f} (best top1 {:.4f})".format(
            epoch, report["top1"], report["top5"], max(best_metric, report["top1"])
        )

    def eval_scalars(self, report: Mapping[str, Any]) -> dict[str, float]:
        return {"eval/val_top1": float(report["top1"]), "eval/val_top5": float(report["top5"])}

    def format_report(self, report: Mapping[str, Any]) -> str:
        return format_imagenet_markdown(report)
