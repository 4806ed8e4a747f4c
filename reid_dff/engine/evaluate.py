"""Evaluating a checkpoint: ``MODEL.WEIGHTS`` on the configured targets, for every task.

``evaluate_checkpoint(cfg)`` is what both evaluation entry points run (training's evaluate-only mode and
the evaluation tool); the task of ``MODEL.TASK`` builds the model, evaluates it and formats the report.
"""

from __future__ import annotations

import os

import torch

from ..config import save_cfg
from ..modeling.checkpoint import CheckpointError, load_checkpoint
from ..tasks import build_task
from ..utils import setup_logger
from ..utils.threads import configure_threads
from .launch import local_device
from .trainer import LAST_CHECKPOINT, detach_log_file

__all__ = ["eval_only_cfg", "evaluate_checkpoint"]


def eval_only_cfg(cfg):
    """The config a checkpoint's evaluation writes with: ``OUTPUT_DIR`` unless that folder holds a training
    run (a ``last.pth``), whose ``results.json`` / ``config.yaml`` it would replace; then
    ``OUTPUT_DIR/eval_<weights file stem>``."""
    if not os.path.exists(os.path.join(cfg.OUTPUT_DIR, LAST_CHECKPOINT)):
        return cfg
    stem = os.path.splitext(os.path.basename(cfg.MODEL.WEIGHTS))[0] or "weights"
    cfg = cfg.clone()
    cfg.OUTPUT_DIR = os.path.join(cfg.OUTPUT_DIR, f"eval_{stem}")
    return cfg.freeze()


def evaluate_checkpoint(cfg) -> dict:
    """Load ``MODEL.WEIGHTS`` into the task's model, evaluate it, write ``OUTPUT_DIR/results.json`` and
    ``config.yaml``, log the table; returns the report."""
    if not cfg.MODEL.WEIGHTS:
        raise CheckpointError("evaluation needs MODEL.WEIGHTS, the checkpoint to evaluate; it is empty")
    task = build_task(cfg)
    task.check_config()  # before any file is read or written
    logger = setup_logger(cfg.OUTPUT_DIR)
    logger.info(configure_threads(cfg).describe())  # the trainer's rule (reid_dff.utils.threads)
    try:
        state = load_checkpoint(cfg.MODEL.WEIGHTS)
        task.prepare_data()
        model = task.load_weights_for_evaluation(state, source=f"{cfg.MODEL.WEIGHTS} (MODEL.WEIGHTS)")
        device = local_device(cfg)
        model.to(device).eval()
        os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
        save_cfg(cfg, cfg.OUTPUT_DIR)
        with torch.no_grad():
            report = task.evaluate(model, device)
        from ..evaluation import attach_run_info, write_results

        task.finish_report(report, state.get("epoch"), None)
        attach_run_info(report, cfg, cfg.MODEL.WEIGHTS)
        path = write_results(report, cfg.OUTPUT_DIR)
        logger.info(
            "evaluation of %s (written to %s):\n%s", cfg.MODEL.WEIGHTS, path, task.format_report(report)
        )
        return report
    finally:
        detach_log_file(logger, cfg.OUTPUT_DIR)
