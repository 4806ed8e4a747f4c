"""The ReID task: multi-source identity training, retrieval mAP/CMC on held-out target domains.

The targets are unseen domains: they are evaluated for the log and the report, never to pick a model.
``TEST.SELECTION`` picks ``best.pth``: ``last`` (the last epoch) or ``source_val`` (the best mean mAP on
identities held out of each source, ``DATASETS.SOURCE_VAL``). ``results.json`` says which, under
``selection``, with the targets' metrics at the selected epoch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import ConfigError
from .base import TASK_REGISTRY, Task

__all__ = ["ReIDTask", "source_val_map", "target_map"]


def target_map(report: Mapping[str, Any]) -> float:
    """The mean target mAP of an evaluation report (logged and reported; it never picks ``best.pth``)."""
    try:
        return float(report["mean"]["mAP"])
    except (KeyError, TypeError):
        raise ValueError(
            f"evaluation report has no mean mAP (report['mean']['mAP']); keys: {sorted(report)}"
        ) from None


def source_val_map(report: Mapping[str, Any]) -> float | None:
    """The mean mAP over the sources' held-out identities, None when the report has no source-val part."""
    val = report.get("source_val")
    return None if val is None else float(val["mAP"])


def evaluate_source_val(cfg: Any, model: nn.Module, device: torch.device) -> dict:
    """``{"sources": {spec: split result}, "mAP": mean over sources}`` on the held-out source identities."""
    from ..data import build_source_val_sets, build_test_loader
    from ..evaluation import evaluate_split, extract_features

    sources = {}
    for split in build_source_val_sets(cfg):
        loader = build_test_loader(cfg, split.query + split.gallery)
        features = extract_features(model, loader, device, flip=cfg.TEST.FLIP_FEATS, amp=cfg.SOLVER.AMP)
        sources[split.name] = evaluate_split(cfg, features, split)
    return {"sources": sources, "mAP": float(np.mean([s["mAP"] for s in sources.values()]))}


@TASK_REGISTRY.register("reid")
class ReIDTask(Task):
    """Train an identity classifier + metric losses on ``DATASETS.SOURCES``; ``best.pth`` by ``TEST.SELECTION``."""

    name = "reid"
    class_noun = "identities"

    @property
    def rule(self) -> str:
        return str(self.cfg.TEST.SELECTION)

    def check_config(self) -> None:
        """Refuse evaluation settings before training starts (``TEST.METRIC``, ``DATASETS.TARGETS`` ...)."""
        from ..data.source_val import SELECTION_RULES
        from ..evaluation import check_evaluation_config

        check_evaluation_config(self.cfg)
        if self.rule not in SELECTION_RULES:
            raise ConfigError(
                f"TEST.SELECTION must be one of {', '.join(SELECTION_RULES)}, got {self.rule!r}"
            )

    def build_train_set(self) -> Any:
        """The multi-source training set (identities relabeled across sources; source-val ids left out)."""
        from ..data import build_train_set

        return build_train_set(self.cfg)

    def evaluation_samples(self) -> list:
        """The query and gallery images of every target split (and of the source-val splits)."""
        from ..data import all_samples, build_source_val_sets, build_test_sets

        splits = [split for name in self.cfg.DATASETS.TARGETS for split in build_test_sets(self.cfg, name)]
        if self.rule == "source_val":
            splits += build_source_val_sets(self.cfg)
        return all_samples(splits)

    def evaluate(self, model: nn.Module, device: torch.device) -> dict:
        """Retrieval metrics on every target of ``DATASETS.TARGETS`` over its splits; with
        ``TEST.SELECTION source_val`` also on the held-out source identities (``report["source_val"]``)."""
        from ..evaluation import evaluate_targets

        report = evaluate_targets(self.cfg, model, device)
        if self.rule == "source_val":
            report["source_val"] = evaluate_source_val(self.cfg, model, device)
        return report

    def selection_metric(self, report: Mapping[str, Any]) -> float | None:
        """The mean source-val mAP (None without one); never a target's metric."""
        return source_val_map(report)

    def selection_score(self, report: Mapping[str, Any], epoch: int) -> float | None:
        """``last``: the epoch (each evaluation replaces the one before); ``source_val``: its mAP."""
        if self.rule == "last":
            return float(epoch)
        return self.selection_metric(report)

    def selection_record(self, report: Mapping[str, Any], epoch: int) -> dict:
        """The rule, the selected epoch and its source-val mAP, with the targets' metrics at that epoch
        (recorded for the report; they picked nothing)."""
        return {
            "rule": self.rule,
            "epoch": epoch,
            "source_val_mAP": source_val_map(report),
            "targets": {name: dict(t["mean"]) for name, t in report["targets"].items()},
            "mean": dict(report["mean"]),
        }

    def describe_evaluation(self, report: Mapping[str, Any], epoch: int, best_metric: float) -> str:
        line = f"epoch {epoch}: target mAP {target_map(report):.4f}"
        val = source_val_map(report)
        if val is None:
            return line + " (selection: last epoch)"
        best = "none yet" if best_metric == -math.inf else f"{best_metric:.4f}"
        return line + f", source-val mAP {val:.4f} (best so far {best})"

    def eval_scalars(self, report: Mapping[str, Any]) -> dict[str, float]:
        scalars = {"eval/target_mAP": target_map(report)}
        val = source_val_map(report)
        if val is not None:
            scalars["eval/source_val_mAP"] = val
        return scalars

    def checkpoint_extras(self, selected: dict | None) -> dict[str, Any]:
        return {"selected": selected}

    def finish_report(self, report: dict, epoch: int | None, selected: dict | None) -> None:
        """A training run's report names the selection rule and epoch and the targets at that epoch
        (``selection``); the top-level metrics are the last epoch's (``last.pth``)."""
        if epoch is not None and selected is not None:
            report["selection"] = dict(selected)

    def format_report(self, report: Mapping[str, Any]) -> str:
        from ..evaluation import format_markdown

        text = format_markdown(report)
        selection = report.get("selection")
        if selection:
            val = selection.get("source_val_mAP")
            text += (
                f"\n\nselection: {selection['rule']}, epoch {selection['epoch']} (best.pth)"
                + ("" if val is None else f", source-val mAP {100 * val:.1f}")
                + f"; target mean mAP at that epoch {100 * selection['mean']['mAP']:.1f}"
            )
        return text
