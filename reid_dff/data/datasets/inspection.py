"""Inspect a data root: which datasets are there, their statistics against the published ones, problems."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

from .base import DATASET_REGISTRY, DatasetLayoutError, DatasetOptionError, ReIDDataset, build_dataset

__all__ = ["DatasetInspection", "format_inspection", "inspect_root"]


class DatasetInspection(NamedTuple):
    """One dataset spec under a root: ``status`` is "ok", "differs" (statistics), "error" or "absent"."""

    spec: str
    status: str
    dataset: ReIDDataset | None
    problems: list[str]


def _default_specs(root: str) -> list[str]:
    specs = [
        name for name in DATASET_REGISTRY.names() if name not in ("synthetic", "image_folder", "class_folder")
    ]
    synthetic_dir = os.path.join(root, "synthetic")
    if os.path.isdir(synthetic_dir):
        domains = sorted(
            int(m.group(1)) for d in os.listdir(synthetic_dir) if (m := re.fullmatch(r"domain(\d+)", d))
        )
        specs += [f"synthetic:{k}" for k in domains] or ["synthetic:0"]
    return specs


def inspect_root(
    root: str, specs: Sequence[str] | None = None, options: dict[str, dict[str, Any]] | None = None
) -> list[DatasetInspection]:
    """Try to parse each dataset spec (default: every known dataset) under ``root``.

    ``options[name]`` passes options to one dataset (e.g. ``{"cuhk03": {"cache_dir": ...}}``). A dataset whose
    top folder is missing is "absent" unless it was named explicitly in ``specs``.
    """
    root = os.path.abspath(os.path.expanduser(root))
    explicit = specs is not None
    results = []
    for spec in list(specs) if specs is not None else _default_specs(root):
        name = spec.partition(":")[0]
        try:
            cls = DATASET_REGISTRY.get(name)
        except KeyError as e:  # the registry's message lists the known names
            results.append(DatasetInspection(spec, "error", None, [str(e)]))
            continue
        present = any(os.path.isdir(os.path.join(root, f)) for f in cls.root_folders)
        if not present and not explicit:
            results.append(DatasetInspection(spec, "absent", None, []))
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the differences are reported in the table instead
                dataset = build_dataset(spec, root, **(options or {}).get(name, {}))
        except (DatasetLayoutError, DatasetOptionError, OSError, ValueError) as e:
            results.append(DatasetInspection(spec, "error", None, [str(e)]))
            continue
        problems = dataset.check_published(warn=False)
        results.append(DatasetInspection(spec, "differs" if problems else "ok", dataset, problems))
    return results


def format_inspection(results: Sequence[DatasetInspection]) -> str:
    """The statistics table of every parsed dataset, then the problems, then the absent datasets."""
    blocks = []
    for result in results:
        if result.dataset is not None:
            label = f"[{result.status}] " + ("" if result.spec == result.dataset.name else f"{result.spec}: ")
            lines = [label + result.dataset.format_statistics()]
            lines += [f"  ! {p}" for p in result.problems]
            blocks.append("\n".join(lines))
        elif result.status == "error":
            blocks.append(f"[error] {result.spec}:\n  " + "\n  ".join(result.problems[0].splitlines()))
    absent = [r.spec for r in results if r.status == "absent"]
    if absent:
        blocks.append("absent (no top folder under the root): " + ", ".join(absent))
    return "\n\n".join(blocks)
