"""Distributed launch: ``torchrun --nproc_per_node=N tools/train_net.py ...`` runs one process per rank.

torchrun sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; without
them (``python tools/train_net.py``) everything runs in one process and these helpers are no-ops.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from ..utils import resolve_device

T = TypeVar("T")

_ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def get_rank() -> int:
    """This process's global rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """Number of processes in the run (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """True on rank 0: the process that logs, evaluates and writes checkpoints."""
    return get_rank() == 0


def synchronize() -> None:
    """Barrier across ranks; a no-op in a single process."""
    if get_world_size() > 1:
        dist.barrier()


def any_rank_true(flag: bool, device: torch.device) -> bool:
    """True if ``flag`` is true on at least one rank (so all ranks can stop together)."""
    if get_world_size() == 1:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)


def local_device(cfg) -> torch.device:
    """``MODEL.DEVICE`` resolved; under torchrun on CUDA, the GPU numbered ``LOCAL_RANK``."""
    device = resolve_device(cfg.MODEL.DEVICE)
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def init_distributed(cfg, timeout_minutes: float = 30.0) -> bool:
    """Join the torchrun process group; True if this call created it (False: single process or already in one)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1 or (dist.is_available() and dist.is_initialized()):
        return False
    missing = [k for k in _ENV_KEYS if k not in os.environ]
    if missing:
        raise RuntimeError(
            f"WORLD_SIZE={world_size} but {', '.join(missing)} is not set; a distributed run needs the "
            "environment torchrun sets for each process"
        )
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed support")
    device = local_device(cfg)
    # NCCL only drives CUDA tensors; gloo is the CPU backend.
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, init_method="env://", timeout=timedelta(minutes=timeout_minutes))
    return True


def launch(main_fn: Callable[..., T], cfg, *args: Any) -> T:
    """Run ``main_fn(cfg, *args)`` in this process, inside the torchrun process group if there is one."""
    started_here = init_distributed(cfg)
    try:
        return main_fn(cfg, *args)
    finally:
        if started_here and dist.is_initialized():
            dist.destroy_process_group()
