"""A training run's folder (``OUTPUT_DIR``): which files make it a run's, and cleaning up after kills.

A new run never silently replaces another: :func:`check_new_run_folder` refuses an ``OUTPUT_DIR`` that
holds a run's checkpoints (``RUN_FILES``) unless the caller asks to replace it (then
:func:`remove_earlier_run` deletes that run's checkpoints and results). A process killed while saving
leaves the atomic writer's temp file (``.last.pth.<8 characters>.tmp``); :func:`remove_stale_temp_files`
deletes those of the run's files, and nothing else.
"""

from __future__ import annotations

import os

from ..errors import ReidDffError
from ..utils.io import remove_atomic_temp_files

__all__ = [
    "ATOMIC_RUN_FILES",
    "BEST_CHECKPOINT",
    "LAST_CHECKPOINT",
    "RUN_FILES",
    "RunExistsError",
    "existing_run_files",
    "remove_earlier_run",
    "remove_stale_temp_files",
    "run_exists_message",
]

LAST_CHECKPOINT = "last.pth"
BEST_CHECKPOINT = "best.pth"
RESULTS_FILE = "results.json"
# The files that make OUTPUT_DIR a run's folder.
RUN_FILES = (LAST_CHECKPOINT, BEST_CHECKPOINT)
# Files a run writes atomically (reid_dff.utils.atomic_open): their temp files are a kill's leftovers.
ATOMIC_RUN_FILES = (LAST_CHECKPOINT, BEST_CHECKPOINT, RESULTS_FILE, "config.yaml")


class RunExistsError(ReidDffError, FileExistsError):
    """A new run was started in an ``OUTPUT_DIR`` that already holds a run's checkpoints."""


def existing_run_files(output_dir: str) -> list[str]:
    """The names of ``RUN_FILES`` that ``output_dir`` holds."""
    return [name for name in RUN_FILES if os.path.exists(os.path.join(output_dir, name))]


def run_exists_message(output_dir: str, existing: list[str]) -> str:
    """The one-line refusal of a new run in ``output_dir``."""
    held = f" ({', '.join(existing)})" if existing else ""
    return f"{output_dir} already holds a training run{held}; a new run there would overwrite it"


def remove_earlier_run(output_dir: str) -> list[str]:
    """Delete an earlier run's checkpoints and ``results.json`` from ``output_dir``; the removed names."""
    removed = []
    for name in (*RUN_FILES, RESULTS_FILE):
        path = os.path.join(output_dir, name)
        if os.path.isfile(path):
            os.unlink(path)
            removed.append(name)
    return removed


def remove_stale_temp_files(output_dir: str) -> list[str]:
    """Delete temp files of interrupted atomic writes of ``ATOMIC_RUN_FILES``; the removed paths."""
    return remove_atomic_temp_files(output_dir, ATOMIC_RUN_FILES)
