"""Run environment: devices, seeds, logging, git revision."""

from __future__ import annotations

import logging
import os
import random
import subprocess
import sys

import numpy as np
import torch

from ..errors import ReidDffError


class DeviceError(ReidDffError, RuntimeError):
    """``MODEL.DEVICE`` (or ``--device``) names no device, or one this machine does not have."""


def resolve_device(name: str, setting: str = "MODEL.DEVICE") -> torch.device:
    """``"auto"`` -> cuda when available else cpu; ``"cuda"`` without a GPU is an error.

    ``setting`` names where ``name`` came from in messages (``MODEL.DEVICE``, ``--device``).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"{setting} {name!r} is not a device; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            f"{setting} is {name!r} but CUDA is not available on this machine; set {setting} cpu (or auto)"
        )
    return device


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def git_revision(path: str | None = None) -> str:
    """The git commit of the code (``unknown`` outside a checkout)."""
    path = path or os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# The attribute setup_logger tags its handlers with ("console" or the log file's path), so a second call adds
# none twice.
_HANDLER_KEY = "_reid_dff_key"


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at each record, not the stream current when it was made: a tool
    run twice in one process (tests, notebooks) under a redirected stdout that was since closed still logs."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass


def setup_logger(output_dir: str | None = None, name: str = "reid_dff", rank: int = 0) -> logging.Logger:
    """Console logging on rank 0 and ``OUTPUT_DIR/log.txt``; idempotent."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    fmt = logging.Formatter("[%(asctime)s %(name)s %(levelname)s] %(message)s", datefmt="%m/%d %H:%M:%S")
    have = {getattr(h, _HANDLER_KEY, None) for h in logger.handlers}
    if rank == 0 and "console" not in have:
        console = _StdoutHandler()
        console.setFormatter(fmt)
        setattr(console, _HANDLER_KEY, "console")
        logger.addHandler(console)
    if output_dir and rank == 0:
        log_path = os.path.abspath(os.path.join(output_dir, "log.txt"))
        if log_path not in have:
            os.makedirs(output_dir, exist_ok=True)
            log_file = logging.FileHandler(log_path)
            log_file.setFormatter(fmt)
            setattr(log_file, _HANDLER_KEY, log_path)
            logger.addHandler(log_file)
    return logger
