"""The two stages at CPU scale: stage-1 classification, then the synthetic ReID demo fine-tuned from it.

What the two-stage table (docs/results.md, "The two stages at CPU scale") needs beyond :mod:`.sweep`:

- :func:`pin_checkpoint`: a stage-2 run names its initialization by ``MODEL.PRETRAIN_PATH``, a path whose
  file a rerun of stage 1 replaces. The sweep hashes the path, not the file, so a fine-tune made from an
  older stage-1 checkpoint would be reused. Pinning gives each stage-1 checkpoint a path of its own that
  carries its SHA-256 (``<folder>/<name>-<sha16>.pth``, a hard link or a copy); stage 2 names that path, so
  another stage-1 checkpoint is another config hash and the fine-tunes train again.
- :func:`check_stage1_load`: the fine-tune's model must take every backbone key of the stage-1 file as
  is (no key sliced from a torchvision ResNet, none left at its initialization), or the comparison is not
  the one the table claims.
- :func:`describe_schedule`, :func:`format_two_stage_table`: the table with the schedule actually used.
"""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from ..config import CfgNode
from ..errors import ReidDffError
from ..utils import atomic_open, sha256_file
from .sweep import format_mean_std

__all__ = [
    "PINNED_DIGITS",
    "TwoStageError",
    "check_stage1_load",
    "describe_schedule",
    "format_two_stage_table",
    "pin_checkpoint",
]

# Hex digits of the SHA-256 in a pinned checkpoint's name (64 bits: no two stage-1 runs collide).
PINNED_DIGITS = 16


class TwoStageError(ReidDffError):
    """A stage-1 checkpoint does not initialize the stage-2 model as the two-stage comparison requires."""


def pin_checkpoint(path: str, folder: str, name: str) -> tuple[str, str]:
    """``(pinned path, sha256)`` of ``path`` pinned as ``folder/<name>-<sha16>.pth``.

    The pinned file is a hard link to ``path`` where the file system allows it, else an atomic copy; an
    existing pinned file of the same digest is kept. Other pinned files of ``name`` (older checkpoints)
    are removed: only runs made from them name them, and those runs are stale.
    """
    digest = sha256_file(path)
    os.makedirs(folder, exist_ok=True)
    pinned = os.path.join(folder, f"{name}-{digest[:PINNED_DIGITS]}.pth")
    if not (os.path.isfile(pinned) and sha256_file(pinned) == digest):
        _link_or_copy(path, pinned)
    for old in glob.glob(os.path.join(glob.escape(folder), f"{glob.escape(name)}-*.pth")):
        if os.path.basename(old) != os.path.basename(pinned):
            os.unlink(old)
    return pinned, digest


def _link_or_copy(source: str, target: str) -> None:
    temporary = f"{target}.tmp{os.getpid()}"
    if os.path.lexists(temporary):
        os.unlink(temporary)
    try:
        os.link(source, temporary)
    except OSError:  # another file system, or one without hard links
        with open(source, "rb") as src, atomic_open(temporary, "wb") as dst:
            shutil.copyfileobj(src, dst)
    os.replace(temporary, target)


def check_stage1_load(cfg: CfgNode) -> Any:
    """The ``LoadReport`` of ``cfg.MODEL.PRETRAIN_PATH`` loaded into the model of ``cfg``; a
    :class:`TwoStageError` unless the file is a reid-dff checkpoint whose backbone keys all load as is."""
    from ..modeling import build_model, load_pretrained

    model = build_model(cfg, 0, imagenet_init=False)
    report = load_pretrained(model, cfg.MODEL.PRETRAIN_PATH)
    problems = []
    if report.source_format != "reid-dff":
        problems.append(
            f"it is a {report.source_format or 'bare state dict'} file, not a reid-dff checkpoint"
        )
    if report.sliced:
        problems.append(f"{len(report.sliced)} keys sliced ({', '.join(report.sliced[:3])})")
    if report.new:
        problems.append(f"{len(report.new)} keys left at their initialization ({', '.join(report.new[:3])})")
    if problems:
        raise TwoStageError(
            f"{cfg.MODEL.PRETRAIN_PATH} does not initialize {cfg.MODEL.BACKBONE} as stage 1: "
            + "; ".join(problems)
        )
    return report


def describe_schedule(config: Mapping[str, Any]) -> str:
    """One line of a resolved config's schedule: epochs x iterations x batch, input size, optimizer."""
    solver, size = config["SOLVER"], config["INPUT"]["SIZE_TRAIN"]
    iters = solver["ITERS_PER_EPOCH"] or "all"
    return (
        f"{solver['MAX_EPOCHS']} epochs x {iters} iterations of {solver['IMS_PER_BATCH']} images at "
        f"{size[0]}x{size[1]}, {solver['OPTIMIZER']} lr {solver['BASE_LR']:g} ({solver['SCHEDULER']}, "
        f"{solver['WARMUP_EPOCHS']} warm-up epochs)"
    )


def _per_seed(values: Sequence[float]) -> str:
    return " / ".join(f"{100 * v:.1f}" for v in values)


def format_two_stage_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The Markdown table of the rows (``label``, ``init``, ``stage1_top1`` or None, ``mAP`` and ``R1``
    per seed): mean ± std over seeds in percent, and the per-seed values."""
    lines = [
        "| model | initialization | stage-1 val top-1 | target mAP | target R1 | mAP per seed | R1 per seed |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        top1 = "-" if row["stage1_top1"] is None else f"{100 * row['stage1_top1']:.1f}"
        lines.append(
            f"| {row['label']} | {row['init']} | {top1} | {format_mean_std(row['mAP'])} | "
            f"{format_mean_std(row['R1'])} | {_per_seed(row['mAP'])} | {_per_seed(row['R1'])} |"
        )
    return "\n".join(lines)
