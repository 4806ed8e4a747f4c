"""A task is a strategy: what differs between ReID and classification runs, behind one interface.

The trainer (``reid_dff.engine.Trainer``) and ``reid_dff.engine.evaluate_checkpoint`` are written once;
they ask the task of ``MODEL.TASK`` for the data, the model, the evaluation report, the scalar that picks
``best.pth``, and how the report is logged and written. A new task (e.g. large-scale classification
pre-training) is one more ``Task`` subclass registered here::

    @TASK_REGISTRY.register("my_task")
    class MyTask(Task): ...
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..config import ConfigError
from ..utils.registry import Registry

__all__ = ["TASK_REGISTRY", "Task", "build_task"]

TASK_REGISTRY = Registry("task (MODEL.TASK)")


class Task(ABC):
    """The task-specific half of a run; ``cfg`` is the run's config. Methods not overridden are shared.

    Data: :meth:`prepare_data` (rank 0), :meth:`build_train_set`, :meth:`build_train_loader`.
    Model: :meth:`build_model`, :meth:`load_weights_for_evaluation`.
    Evaluation: :meth:`evaluate` -> report; :meth:`selection_metric`, :meth:`selection_score` (pick ``best.pth``),
    :meth:`selection_record` (what the report keeps of the selected epoch), :meth:`describe_evaluation`,
    :meth:`eval_scalars`. Report: :meth:`finish_report`, :meth:`format_report`. Checkpoints:
    :meth:`checkpoint_extras`. The trainer owns everything else: the loop, losses, optimizer, checkpoints,
    exact resume, ``best.pth`` tracking, DDP and logging.
    """

    name = ""  # the MODEL.TASK value, set by the registering subclass
    class_noun = "classes"  # what the classifier's outputs are, in the log

    def __init__(self, cfg: Any):
        self.cfg = cfg

    # -- data --------------------------------------------------------------
    def check_config(self) -> None:
        """Raise ``ConfigError`` for settings that would otherwise fail only at the first evaluation."""
        return None  # by default, nothing

    def prepare_data(self) -> None:
        """Generate synthetic data the config names when it is absent (rank 0 only; the caller syncs)."""
        from ..data.synthetic import ensure_synthetic_data

        ensure_synthetic_data(self.cfg)

    @abstractmethod
    def build_train_set(self) -> Any:
        """The training set (``.samples``, ``.num_classes``)."""

    def build_train_loader(self, train_set: Any, rank: int, world_size: int) -> Any:
        """This rank's training loader over an infinite, resumable sampler."""
        from ..data import build_train_loader

        return build_train_loader(self.cfg, train_set, rank=rank, world_size=world_size)

    def evaluation_samples(self) -> list:
        """Every image the evaluation reads (``Sample`` list), checked with the training images before a
        run starts (``DATALOADER.CHECK_IMAGES``); default: none."""
        return []

    # -- model -------------------------------------------------------------
    def build_model(self, num_classes: int, imagenet_init: bool) -> nn.Module:
        """The model of ``cfg.MODEL`` with ``num_classes`` outputs (``MODEL.PRETRAIN_PATH`` if ``imagenet_init``)."""
        from ..modeling import build_model

        return build_model(self.cfg, num_classes, imagenet_init=imagenet_init)

    def load_weights_for_evaluation(self, state: Mapping[str, Any], source: str) -> nn.Module:
        """The model of a checkpoint ``state`` (read from ``source``), built and loaded for evaluation.

        A state without ``num_classes`` (a bare state dict) loads without its classifier."""
        from ..modeling.checkpoint import load_model_weights

        num_classes = int(state.get("num_classes", 0))
        model = self.build_model(num_classes, imagenet_init=False)
        load_model_weights(model, state, ignore_classifier=num_classes == 0, source=source, cfg=self.cfg)
        return model

    # -- evaluation --------------------------------------------------------
    @abstractmethod
    def evaluate(self, model: nn.Module, device: torch.device) -> dict:
        """The evaluation report of ``model`` (in eval mode, under ``no_grad``) on the configured data."""

    @abstractmethod
    def selection_metric(self, report: Mapping[str, Any]) -> float | None:
        """The scalar that picks ``best.pth`` (higher is better); None: this report may not pick one."""

    def selection_score(self, report: Mapping[str, Any], epoch: int) -> float | None:
        """What the trainer compares to pick ``best.pth`` at ``epoch`` (default: :meth:`selection_metric`;
        a task that selects the last epoch returns the epoch)."""
        return self.selection_metric(report)

    def selection_record(self, report: Mapping[str, Any], epoch: int) -> dict | None:
        """What the final report keeps of the selected epoch's evaluation (None: nothing)."""
        return None

    @abstractmethod
    def describe_evaluation(self, report: Mapping[str, Any], epoch: int, best_metric: float) -> str:
        """The log line of one evaluation during training."""

    def eval_scalars(self, report: Mapping[str, Any]) -> dict[str, float]:
        """TensorBoard scalars of one evaluation, by tag."""
        return {}

    # -- checkpoints and report -------------------------------------------
    def checkpoint_extras(self, selected: dict | None) -> dict[str, Any]:
        """Task-specific entries of a training checkpoint (``selected``: the selection record so far)."""
        return {}

    def finish_report(self, report: dict, epoch: int | None, selected: dict | None) -> None:
        """Add the task's run entries to a final report before it is written (in place)."""
        return None  # by default, nothing

    @abstractmethod
    def format_report(self, report: Mapping[str, Any]) -> str:
        """The report as the Markdown table a run prints."""


def build_task(cfg: Any) -> Task:
    """The task object of ``cfg.MODEL.TASK``."""
    if cfg.MODEL.TASK not in TASK_REGISTRY:
        raise ConfigError(f"MODEL.TASK must be one of {', '.join(TASK_REGISTRY)}, got {cfg.MODEL.TASK!r}")
    return TASK_REGISTRY.get(cfg.MODEL.TASK)(cfg)
