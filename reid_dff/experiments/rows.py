"""Comparison tables of ReID runs: named rows (config overrides) x seeds, mAP / R1 on one target and the
mask diagnostics of each run, mean ± std over seeds.

A :class:`Row` is a key (its run folders ``<key>/seed<s>``), a label and the ``KEY VALUE`` overrides that
make it differ from the comparison's config. :func:`build_runs` turns rows x seeds into sweep runs,
:func:`deduplicate` lets a row whose every run resolves to an earlier row's config reuse those runs (e.g.
"the package default" while it equals another row), and :func:`summarize_rows` / :func:`format_rows_table`
read the finished runs into the table. Every cell is the run's final evaluation of its **last epoch's**
weights (checked), never an epoch picked on the target.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ReidDffError
from .sweep import Run, RunResult, config_hash, format_mean_std, mean_std

__all__ = [
    "MASK_SUMMARY",
    "Row",
    "RowTableError",
    "build_runs",
    "deduplicate",
    "format_rows_table",
    "format_spread",
    "last_epoch_metrics",
    "read_mask_summary",
    "summarize_rows",
]

# The mask diagnostics shown beside accuracy (keys of mask_stats.json's summary).
MASK_SUMMARY = ("mean", "instance_spread", "frequency_spread", "domain_difference")


class RowTableError(ReidDffError):
    """A run's report cannot go into a comparison table (it evaluates another checkpoint)."""


@dataclass(frozen=True)
class Row:
    """One table row: a key (its run folder), a label and the overrides on top of the comparison's config."""

    key: str
    label: str
    overrides: tuple[str, ...] = ()


def build_runs(config: str, rows: Sequence[Row], seeds: Sequence[int], opts: Sequence[str]) -> list[Run]:
    """One run of ``config`` per row and seed, into ``<row key>/seed<seed>``; ``opts`` (data root, schedule
    settings, extra overrides) go before the row's own overrides, so a row's choice is never overridden."""
    return [
        Run(f"{row.key}/seed{seed}", config, (*opts, *row.overrides), seed, row=row.key)
        for row in rows
        for seed in seeds
    ]


def deduplicate(runs: Sequence[Run], root: str) -> tuple[list[Run], dict[str, str]]:
    """Drop the rows whose every run resolves to the config of an earlier row's run of the same seed
    (e.g. the default DFF while it equals another row): ``(runs to train, {row: row it reuses})``."""
    hashes: dict[str, dict[int | None, str]] = {}
    for run in runs:  # the hash leaves out OUTPUT_DIR, the only key a run's folder changes
        hashes.setdefault(run.row, {})[run.seed] = config_hash(run.resolve(root))
    aliases: dict[str, str] = {}
    for row, per_seed in hashes.items():
        for earlier, earlier_seeds in hashes.items():
            if earlier == row:
                break
            if earlier not in aliases and earlier_seeds == per_seed:
                aliases[row] = earlier
                break
    return [run for run in runs if run.row not in aliases], aliases


def last_epoch_metrics(report: Mapping[str, Any], target: str) -> dict[str, float]:
    """mAP and R1 of ``target`` in a run's results.json: the final evaluation, of the last epoch's weights
    (``last.pth``; checked, so a report of another checkpoint is never tabled)."""
    checkpoint = (report.get("checkpoint") or {}).get("path", "")
    if os.path.basename(checkpoint) != "last.pth":
        raise RowTableError(f"a run's results.json evaluates {checkpoint!r}, not the last epoch's last.pth")
    values = report["targets"][target]["mean"]
    return {"mAP": float(values["mAP"]), "R1": float(values["R1"])}


def read_mask_summary(output_dir: str) -> dict[str, float | None] | None:
    """The summary of ``output_dir/mask_stats.json`` (None: the model has no masks)."""
    path = os.path.join(output_dir, "mask_stats.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        summary = json.load(f)["summary"]
    return {key: summary.get(key) for key in MASK_SUMMARY}


def format_spread(values: Sequence[float | None]) -> str:
    """Mask statistics over seeds: ``0.0123 ± 0.0004`` (4 decimals; masks live in [0, 1]); ``-`` if none."""
    present = [v for v in values if v is not None]
    if not present:
        return "-"
    mean, std = mean_std(present)
    return f"{mean:.4f} ± {std:.4f}" if len(present) > 1 else f"{mean:.4f}"


def summarize_rows(
    rows: Sequence[Row], results: Sequence[RunResult], aliases: Mapping[str, str], target: str
) -> list[dict[str, Any]]:
    """One JSON-able entry per row: its seeds, mAP / R1 per seed, mask summaries per seed, run folders and
    the wall time of the runs trained now (``same_runs_as``: the row whose runs it reuses)."""
    entries = []
    for row in rows:
        row_results = [r for r in results if r.run.row == aliases.get(row.key, row.key)]
        metrics = [last_epoch_metrics(r.report, target) for r in row_results]
        masks = [read_mask_summary(r.output_dir) for r in row_results]
        entries.append({
            "row": row.key, "label": row.label, "overrides": list(row.overrides),
            "same_runs_as": aliases.get(row.key), "seeds": [r.run.seed for r in row_results],
            "mAP": [m["mAP"] for m in metrics], "R1": [m["R1"] for m in metrics],
            "mask": {k: [None if m is None else m[k] for m in masks] for k in MASK_SUMMARY},
            "run_dirs": [r.output_dir for r in row_results],
            "wall_seconds": [r.seconds for r in row_results if r.seconds is not None],
        })  # fmt: skip
    return entries


def format_rows_table(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """The markdown table of :func:`summarize_rows` entries (header and one line per row)."""
    lines = [
        "| model | mAP | R1 | mask mean | instance spread | frequency spread | domain difference "
        "| wall time per run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in entries:
        if entry["same_runs_as"]:
            wall = f"(runs of {entry['same_runs_as']}: same config)"
        elif entry["wall_seconds"]:
            wall = f"{statistics.fmean(entry['wall_seconds']) / 60:.1f} min"
        else:
            wall = "(reused)"
        masks = " | ".join(format_spread(entry["mask"][k]) for k in MASK_SUMMARY)
        lines.append(
            f"| {entry['label']} | {format_mean_std(entry['mAP'])} | {format_mean_std(entry['R1'])} | "
            f"{masks} | {wall} |"
        )
    return lines
