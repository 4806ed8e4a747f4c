"""Training: optimizers and schedules, checkpoints, the training loop and distributed launch."""

from .checkpoint import (
    CheckpointError,
    capture_rng_state,
    load_checkpoint,
    load_model_weights,
    restore_rng_state,
    save_checkpoint,
)
from .classification import ClassificationTrainer, evaluate_classification_checkpoint
from .launch import get_rank, get_world_size, is_main_process, launch, synchronize
from .optim import build_optimizer, build_scheduler
from .trainer import NonFiniteLossError, Trainer, eval_only_cfg, evaluate_checkpoint

# MODEL.TASK -> (trainer class, the --eval-only function); tools/train_net.py dispatches through it.
TASK_RUNNERS = {
    "reid": (Trainer, evaluate_checkpoint),
    "classification": (ClassificationTrainer, evaluate_classification_checkpoint),
}

__all__ = [
    "TASK_RUNNERS",
    "CheckpointError",
    "ClassificationTrainer",
    "NonFiniteLossError",
    "Trainer",
    "build_optimizer",
    "build_scheduler",
    "capture_rng_state",
    "eval_only_cfg",
    "evaluate_checkpoint",
    "evaluate_classification_checkpoint",
    "get_rank",
    "get_world_size",
    "is_main_process",
    "launch",
    "load_checkpoint",
    "load_model_weights",
    "restore_rng_state",
    "save_checkpoint",
    "synchronize",
]
