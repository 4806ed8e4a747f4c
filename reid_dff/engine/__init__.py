"""Training: optimizers and schedules, training checkpoints, the training loop, checkpoint evaluation, DDP.

What differs between tasks comes from ``reid_dff.tasks`` (``build_task(cfg)``, ``TASK_REGISTRY``).
"""

from ..modeling.checkpoint import CheckpointError, load_checkpoint, load_model_weights, save_checkpoint
from .checkpoint import capture_rng_state, restore_rng_state
from .evaluate import eval_only_cfg, evaluate_checkpoint
from .launch import get_rank, get_world_size, is_main_process, launch, synchronize
from .optim import build_optimizer, build_scheduler
from .run_folder import RunExistsError
from .trainer import NonFiniteLossError, Trainer

# The checkpoint file functions live in reid_dff.modeling.checkpoint (shared with inference); they are
# re-exported here, where training code looks for them.
__all__ = [
    "CheckpointError",
    "NonFiniteLossError",
    "RunExistsError",
    "Trainer",
    "build_optimizer",
    "build_scheduler",
    "capture_rng_state",
    "eval_only_cfg",
    "evaluate_checkpoint",
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
