"""Closed-set classification training (``MODEL.TASK classification``, Office-Home DG) on the shared engine.

``ClassificationTrainer`` is the ReID ``Trainer`` with other data, evaluation and model selection: it
trains on the sources' train splits with the configured losses (``cross_entropy`` on the logits), evaluates
top-1 accuracy on the sources' val splits and on the held-out targets, and keeps ``best.pth`` by the
*source* val accuracy -- the target is never looked at to choose a model. Checkpoints, exact resume,
logging, AMP and DDP are the base class's.
"""

from __future__ import annotations

import logging
import os

import torch

from ..config import save_cfg
from ..utils import setup_logger
from .checkpoint import CheckpointError, load_checkpoint, load_model_weights, unwrap_model
from .launch import local_device, synchronize
from .trainer import BEST_CHECKPOINT, LAST_CHECKPOINT, Trainer, detach_log_file

__all__ = ["ClassificationTrainer", "evaluate_classification_checkpoint", "selection_metric"]


def selection_metric(report: dict) -> float | None:
    """The scalar that picks ``best.pth``: the mean source val top-1 (None when there is no val split)."""
    val = report.get("source_val_mean")
    return None if val is None else float(val["top1"])


def _summary(report: dict, epoch: int) -> dict:
    """The part of an evaluation report kept for the selected epoch (JSON- and weights_only-safe)."""
    return {
        "epoch": epoch,
        "source_val_top1": selection_metric(report),
        "targets": {name: {"top1": t["top1"]} for name, t in report["targets"].items()},
        "mean": {"top1": report["mean"]["top1"]},
    }


class ClassificationTrainer(Trainer):
    """One classification run: sources' train splits -> model -> cross-entropy; accuracy on val and targets."""

    selected: dict | None = None  # the evaluation at the best source val accuracy so far

    def build_train_set(self):
        """The sources' train splits (``pid`` = class index); val and target images are kept for evaluation."""
        from ..data.classification import build_classification_data

        self.data = build_classification_data(self.cfg)
        self.logger.info(
            "classification data: %d classes; train %s; val %s; targets %s",
            len(self.data.classes),
            _counts(
                {
                    spec: sum(s.domain == i for s in self.data.train.samples)
                    for i, spec in enumerate(self.data.train.names)
                }
            ),
            _counts({spec: len(v) for spec, v in self.data.val.items()}),
            _counts({spec: len(v) for spec, v in self.data.targets.items()}),
        )
        return self.data.train

    class_noun = "classes"

    def check_config(self) -> None:
        """Classification is scored by top-1 accuracy: the retrieval settings (``TEST.METRIC`` ...) do not apply."""

    def evaluate(self) -> dict:
        """Top-1 on the sources' val splits and on every target image; runs on rank 0 only."""
        from ..evaluation.classification import evaluate_classification_targets

        return evaluate_classification_targets(
            self.cfg, unwrap_model(self.model), self.device, data=self.data
        )

    def evaluate_and_track(self) -> dict | None:
        """Evaluate on rank 0, log, and write ``best.pth`` when the *source val* accuracy improves."""
        report = None
        if self.is_main:
            self.model.eval()
            try:
                with torch.no_grad():
                    report = self.evaluate()
            finally:
                self.model.train()
            metric = selection_metric(report)
            self.logger.info(
                "epoch %d: source val top1 %s, target top1 %.4f (%s)",
                self.epoch,
                "n/a" if metric is None else f"{metric:.4f}",
                report["mean"]["top1"],
                ", ".join(f"{name} {t['top1']:.4f}" for name, t in report["targets"].items()),
            )
            writer = self.tensorboard()
            if writer is not None:
                if metric is not None:
                    writer.add_scalar("eval/source_val_top1", metric, self.iteration)
                writer.add_scalar("eval/target_top1", report["mean"]["top1"], self.iteration)
            # No val split (VAL_FRACTION 0): nothing may look at the targets to pick a model, so no best.pth.
            if metric is not None and metric > self.best_metric:
                self.best_metric = metric
                self.selected = _summary(report, self.epoch)
                self.save(BEST_CHECKPOINT)
        synchronize()
        return report

    def checkpoint_state(self) -> dict:
        """The base state plus the selected epoch's accuracies (so a resumed run reports the same selection)."""
        return {**super().checkpoint_state(), "task": "classification", "selected": self.selected}

    def resume_from(self, path: str) -> None:
        """The base resume, plus the selected epoch's accuracies."""
        self.selected = load_checkpoint(path).get("selected")
        super().resume_from(path)  # may adopt a newer best.pth's selection (adopt_best_record)

    def adopt_best_record(self, best_state: dict) -> None:
        super().adopt_best_record(best_state)
        self.selected = best_state.get("selected")

    def write_report(self, report: dict) -> None:
        """Print the per-target table and write ``OUTPUT_DIR/results.json`` (last and selected epoch)."""
        from ..evaluation import attach_run_info, write_results
        from ..evaluation.classification import format_classification_markdown

        report["epoch"] = self.epoch
        report["selected"] = self.selected
        attach_run_info(report, self.cfg, os.path.join(self.output_dir, LAST_CHECKPOINT))
        path = write_results(report, self.output_dir)
        self.logger.info(
            "final evaluation (written to %s):\n%s", path, format_classification_markdown(report)
        )


def _counts(sizes: dict[str, int]) -> str:
    return ", ".join(f"{spec} {n}" for spec, n in sizes.items()) or "-"


def evaluate_classification_checkpoint(cfg) -> dict:
    """``--eval-only`` for classification: load ``MODEL.WEIGHTS``, report val and target top-1, write results.json."""
    if not cfg.MODEL.WEIGHTS:
        raise CheckpointError("--eval-only needs MODEL.WEIGHTS: pass MODEL.WEIGHTS path/to/best.pth")
    logger = setup_logger(cfg.OUTPUT_DIR)
    try:
        return _evaluate_classification_checkpoint(cfg, logger)
    finally:
        detach_log_file(logger, cfg.OUTPUT_DIR)


def _evaluate_classification_checkpoint(cfg, logger: logging.Logger) -> dict:
    from ..data.classification import build_classification_data
    from ..data.synthetic import ensure_synthetic_data
    from ..evaluation import attach_run_info, write_results
    from ..evaluation.classification import evaluate_classification_targets, format_classification_markdown
    from ..modeling import build_model

    state = load_checkpoint(cfg.MODEL.WEIGHTS)
    ensure_synthetic_data(cfg)
    data = build_classification_data(cfg)
    num_classes = int(state.get("num_classes", 0))
    if num_classes != len(data.classes):
        raise CheckpointError(
            f"{cfg.MODEL.WEIGHTS} holds a {num_classes}-class classifier but the configured data has "
            f"{len(data.classes)} classes; evaluate with the checkpoint's dataset (a classification checkpoint "
            "written by tools/train_net.py records num_classes)"
        )
    device = local_device(cfg)
    model = build_model(cfg, num_classes, imagenet_init=False)
    load_model_weights(model, state, source=f"{cfg.MODEL.WEIGHTS} (MODEL.WEIGHTS)")
    model.to(device).eval()
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    save_cfg(cfg, cfg.OUTPUT_DIR)
    with torch.no_grad():
        report = evaluate_classification_targets(cfg, model, device, data=data)
    report["epoch"] = state.get("epoch")
    report["selected"] = None
    attach_run_info(report, cfg, cfg.MODEL.WEIGHTS)
    path = write_results(report, cfg.OUTPUT_DIR)
    logger.info(
        "evaluation of %s (written to %s):\n%s",
        cfg.MODEL.WEIGHTS,
        path,
        format_classification_markdown(report),
    )
    return report
