"""CPU threads: how many intra-op threads the main process uses beside its data-loader workers.

Default torch uses one intra-op thread per core in the main process, and every loader worker adds its own
decoding threads; on a small or busy machine the threads then outnumber the cores and the run slows down
many times over (spinning OpenMP threads wait on each other). The plan here: loader workers run one thread
each (:func:`limit_worker_threads`, their ``worker_init_fn``; OpenCV at the main process's number), and the main process takes the cores left
over, ``max(1, cores_per_rank - num_workers)``, where the usable cores (CPU affinity) are shared equally
by the ranks of a DDP run on this machine. An explicit choice wins: ``MODEL.NUM_THREADS`` > 0, else a
positive ``OMP_NUM_THREADS`` in the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ReidDffError


class ThreadSettingError(ReidDffError):
    """``MODEL.NUM_THREADS`` is negative or not an integer."""


@dataclass(frozen=True)
class ThreadPlan:
    """The chosen numbers: ``intra_op`` threads in the main process, ``workers`` loader workers at one
    thread each, on ``cores`` usable cores shared by ``local_ranks`` processes; ``source`` says why."""

    intra_op: int
    workers: int
    cores: int
    local_ranks: int
    source: str

    def describe(self) -> str:
        """The log line of the choice."""
        ranks = f", {self.local_ranks} ranks on this machine" if self.local_ranks > 1 else ""
        return (
            f"using {self.intra_op} intra-op threads, {self.workers} loader workers at 1 thread each on "
            f"{self.cores} cores{ranks} ({self.source})"
        )


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity; ``os.cpu_count()`` where that is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _env_threads(env: Mapping[str, str]) -> int | None:
    value = env.get("OMP_NUM_THREADS", "").strip()
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number > 0 else None


def choose_threads(
    cores: int,
    num_workers: int,
    configured: int = 0,
    env: Mapping[str, str] | None = None,
    local_ranks: int = 1,
) -> ThreadPlan:
    """The thread plan for ``cores`` usable cores, ``num_workers`` loader workers per rank and
    ``local_ranks`` ranks on this machine (a pure function of its arguments).

    ``configured`` (``MODEL.NUM_THREADS``) > 0 is taken as is; 0 means: a positive ``OMP_NUM_THREADS`` in
    ``env`` if there is one, else ``max(1, cores // local_ranks - num_workers)``.
    """
    if isinstance(configured, bool) or not isinstance(configured, int) or configured < 0:
        raise ThreadSettingError(
            f"MODEL.NUM_THREADS must be 0 (automatic) or a positive number of threads, got {configured!r}"
        )
    cores, num_workers, local_ranks = max(1, int(cores)), max(0, int(num_workers)), max(1, int(local_ranks))
    plan = dict(workers=num_workers, cores=cores, local_ranks=local_ranks)
    if configured > 0:
        return ThreadPlan(intra_op=configured, source="MODEL.NUM_THREADS", **plan)
    from_env = _env_threads(os.environ if env is None else env)
    if from_env is not None:
        return ThreadPlan(intra_op=from_env, source="OMP_NUM_THREADS", **plan)
    per_rank = max(1, cores // local_ranks)
    return ThreadPlan(intra_op=max(1, per_rank - num_workers), source="automatic", **plan)


def configure_threads(cfg, local_ranks: int | None = None) -> ThreadPlan:
    """Choose the plan for ``cfg`` (``MODEL.NUM_THREADS``, ``DATALOADER.NUM_WORKERS``) on this machine and
    set the main process's intra-op threads to it. ``local_ranks``: default ``LOCAL_WORLD_SIZE`` (torchrun)."""
    import torch

    if local_ranks is None:
        local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    plan = choose_threads(
        usable_cores(), cfg.DATALOADER.NUM_WORKERS, cfg.MODEL.NUM_THREADS, local_ranks=local_ranks
    )
    torch.set_num_threads(plan.intra_op)
    try:
        import cv2
    except ImportError:  # only the OpenCV decoder needs it
        return plan
    # Here, not in the workers: setNumThreads in a forked worker can hang on the parent's thread pool.
    # Forked workers inherit this number.
    cv2.setNumThreads(plan.intra_op)
    return plan


def limit_worker_threads() -> None:
    """One torch thread in this (loader worker) process; call it from ``worker_init_fn``. (OpenCV's
    threads follow :func:`configure_threads` of the parent, which forked workers inherit.)"""
    import torch

    torch.set_num_threads(1)
