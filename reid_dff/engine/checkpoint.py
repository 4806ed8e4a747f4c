"""Training checkpoints: what resuming needs (keys, config changes it allows) and RNG state capture.

Reading and writing checkpoint files is ``reid_dff.modeling.checkpoint`` (``load_checkpoint``,
``save_checkpoint``, ``CheckpointError``), shared with evaluation and inference.

A training checkpoint is a plain dict of tensors, numbers, strings and lists:
``model``, ``optimizer``, ``scheduler``, ``sampler``, ``rng``, ``epoch`` (epochs completed),
``iteration`` (iterations completed), ``num_classes``, ``cfg`` (YAML text), ``git_revision``,
``best_metric`` (and ``scaler``, ``sampler_per_rank``, ``run_id``). Nothing in it needs pickle, so a checkpoint
from someone else cannot run code here.

Resuming continues the run the checkpoint records, so the config may differ from the checkpoint's ``cfg``
only in keys that do not change what is trained or how (``RESUME_MAY_CHANGE``):
:func:`resume_config_changes` lists the others.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ..modeling.checkpoint import CheckpointError

__all__ = [
    "TRAINING_CHECKPOINT_KEYS",
    "capture_rng_state",
    "RESUME_MAY_CHANGE",
    "check_training_checkpoint",
    "resume_config_changes",
    "restore_rng_state",
    "unwrap_model",
]

TRAINING_CHECKPOINT_KEYS = (
    "model",
    "optimizer",
    "scheduler",
    "sampler",
    "rng",
    "epoch",
    "iteration",
    "num_classes",
    "cfg",
    "git_revision",
    "best_metric",
)


# Config keys a --resume may change: where the run writes and reads, how often it reports, evaluates and
# saves, how long it trains (SOLVER.MAX_EPOCHS; the schedule is recomputed for the new length), what a bad
# image means and how images are checked (a run that met one must be able to go on without it), and
# settings that change neither the training nor the evaluation. Everything else -- model, losses, input
# pipeline, sources, sampler, optimizer, schedule, the selection rule (TEST.SELECTION, DATASETS.SOURCE_VAL),
# and the targets, metric and test transform -- must equal the checkpoint's, or the resumed run would
# silently be another one.
RESUME_MAY_CHANGE = (
    "OUTPUT_DIR",
    "MODEL.DEVICE",
    "MODEL.NUM_THREADS",
    "MODEL.PRETRAIN_PATH",
    "MODEL.WEIGHTS",
    "DATASETS.ROOT",
    "DATASETS.CUHK03.CACHE_DIR",
    "DATASETS.CUHK03.TORCHREID_IMAGES",
    "DATALOADER.NUM_WORKERS",
    "DATALOADER.ON_BAD_IMAGE",
    "DATALOADER.CHECK_IMAGES",
    "SOLVER.MAX_EPOCHS",
    "SOLVER.CHECKPOINT_PERIOD",
    "SOLVER.LOG_PERIOD",
    "SOLVER.AMP",
    "TEST.IMS_PER_BATCH",
    "TEST.EVAL_PERIOD",
    "TEST.MAX_RANK",
    "TEST.MAX_MEMORY_MB",
    "TEST.MASK_STATS",
    "TEST.MASK_STATS_MAX_IMAGES",
)


def _leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, Mapping):
        return {prefix[:-1]: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_leaves(value, f"{prefix}{key}."))
    return out


def resume_config_changes(saved_cfg: str, cfg) -> list[tuple[str, Any, Any]]:
    """``(key, checkpoint value, current value)`` for every key a resume must not change.

    ``saved_cfg`` is the checkpoint's ``cfg`` (YAML text). Keys only one side knows (a checkpoint from an
    older release) are not compared.
    """
    from ..config.config import parse_yaml

    saved = _leaves(parse_yaml(saved_cfg) or {})
    current = _leaves(cfg.to_dict())
    changes = []
    for key, value in current.items():
        if key not in saved or key in RESUME_MAY_CHANGE:
            continue
        old = saved[key]
        if old != value:
            changes.append((key, old, value))
    return changes


def check_training_checkpoint(state: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Raise if ``state`` lacks a key that resuming needs."""
    missing = [k for k in TRAINING_CHECKPOINT_KEYS if k not in state]
    if missing:
        raise CheckpointError(
            f"{os.fspath(path)} is not a resumable training checkpoint: it lacks {', '.join(missing)} "
            "(a weights-only file can be evaluated with MODEL.WEIGHTS, not resumed)"
        )


def capture_rng_state() -> dict:
    """torch (CPU and CUDA), numpy and python RNG states as tensors, ints, floats and lists."""
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)  # a tuple, not a dict
    assert isinstance(keys, np.ndarray)
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["internal"]), python_state["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel/DataParallel, else ``model``."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel) else model
