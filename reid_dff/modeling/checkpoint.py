"""Checkpoint files: atomic writes and safe loads (``torch.load(weights_only=True)``).

A reid-dff checkpoint is a plain dict of tensors, numbers, strings and lists (``model`` holds the state
dict; a training checkpoint adds the optimizer, schedule, sampler and RNG state, see
``reid_dff.engine.checkpoint``). Nothing in it needs pickle, so a checkpoint from someone else cannot run
code here. Training, evaluation and inference all read checkpoints through this module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from ..errors import ReidDffError
from ..utils import atomic_open
from .pretrained import load_model_weights, torch_load_problem

# ``load_model_weights`` (strict key/shape check, DDP prefix, optional classifier skip) lives with the
# ImageNet loader in reid_dff.modeling.pretrained; it is re-exported here because checkpoints are where
# users look for it.
__all__ = ["CheckpointError", "load_checkpoint", "load_model_weights", "save_checkpoint"]


class CheckpointError(ReidDffError, RuntimeError):
    """A checkpoint is missing, unreadable, unsafe, or does not match the model/run it is loaded into."""


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> None:
    """``torch.save`` ``state`` to a temporary file beside ``path``, then rename it over ``path``."""
    with atomic_open(path, "wb") as f:
        torch.save(dict(state), f)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``; errors name the file and the expected form."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path} (expected a .pth file written by reid-dff)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 -- any failure to read a user's file is reported, not raised as-is
        raise CheckpointError(
            f"cannot load checkpoint {path} with torch.load(weights_only=True): {torch_load_problem(path, e)}. "
            "Expected a .pth file written by reid-dff (tensors, numbers, strings and lists only)"
        ) from e
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}; expected a dict")
    return state
