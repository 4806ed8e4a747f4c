"""Protocol evaluation: one model on a list of targets, each over its splits, as a report and results.json.

Each target's images are embedded once (the union of its splits' query and gallery images) and every split
indexes those features. The report is a plain JSON-ready dict; its schema is documented in
docs/evaluation.md and versioned by ``REPORT_SCHEMA``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..utils import atomic_write_json, git_revision, sha256_file
from .features import Features, extract_features
from .metrics import evaluate

__all__ = [
    "RANKS",
    "REPORT_SCHEMA",
    "RESULTS_FILE",
    "SUMMARY_METRICS",
    "attach_run_info",
    "evaluate_split",
    "evaluate_targets",
    "format_markdown",
    "summarize_splits",
    "write_results",
]

logger = logging.getLogger(__name__)

REPORT_SCHEMA = "reid_dff.evaluation.report/1"
RESULTS_FILE = "results.json"
RANKS = (1, 5, 10)
SUMMARY_METRICS = ("R1", "R5", "R10", "mAP", "mINP")


def _take_rows(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``array[rows]``, as a view when ``rows`` is a contiguous ascending range (no copy of a big gallery)."""
    if rows.shape[0] and rows[-1] - rows[0] == rows.shape[0] - 1 and np.all(np.diff(rows) == 1):
        return array[rows[0] : rows[-1] + 1]
    return array[rows]


def _present(features: Features, samples: Sequence[Any]) -> tuple[list[Any], int]:
    """The samples that have a feature (unreadable images may be skipped by the loader), and how many lack one."""
    have = set(features.paths)
    kept = [s for s in samples if s.path in have]
    return kept, len(samples) - len(kept)


def evaluate_split(cfg: Any, features: Features, split: Any) -> dict[str, Any]:
    """Metrics of one ``TestSplit`` (``query``/``gallery`` samples) from a target's extracted ``features``."""
    query, missing_query = _present(features, split.query)
    gallery, missing_gallery = _present(features, split.gallery)
    if missing_query or missing_gallery:
        logger.warning(
            "%s split %s: %d query and %d gallery images have no feature (skipped as unreadable) and are "
            "left out",
            split.name,
            split.split_id,
            missing_query,
            missing_gallery,
        )
    if not query or not gallery:
        raise ValueError(
            f"{split.name} split {split.split_id} has {len(query)} query and {len(gallery)} gallery images with "
            "features; both must be non-empty"
        )
    max_rank = max(int(cfg.TEST.MAX_RANK), max(RANKS))  # R10 is always reported
    result = evaluate(
        _take_rows(features.feats, features.rows_of([s.path for s in query])),
        _take_rows(features.feats, features.rows_of([s.path for s in gallery])),
        [s.pid for s in query],
        [s.pid for s in gallery],
        [s.camid for s in query],
        [s.camid for s in gallery],
        metric=cfg.TEST.METRIC,
        max_rank=max_rank,
        rerank=cfg.TEST.RERANK.ENABLED,
        rerank_k1=cfg.TEST.RERANK.K1,
        rerank_k2=cfg.TEST.RERANK.K2,
        rerank_lambda=cfg.TEST.RERANK.LAMBDA,
        max_memory_mb=cfg.TEST.MAX_MEMORY_MB,
    )
    cmc = result["cmc"]
    # A gallery shorter than k ranks every valid query's match within it: R_k is the last CMC value.
    ranks = {f"R{k}": float(cmc[min(k, cmc.shape[0]) - 1]) for k in RANKS}
    return {
        "split_id": split.split_id,
        "split_file": split.split_file,
        "split_sha256": split.split_sha256,
        "num_query": len(query),
        "num_gallery": len(gallery),
        "num_valid_queries": result["num_valid_queries"],
        "num_skipped_queries": result["num_skipped_queries"],
        "num_missing_images": missing_query + missing_gallery,
        **ranks,
        "mAP": result["mAP"],
        "mINP": result["mINP"],
        "cmc": [float(v) for v in cmc[: int(cfg.TEST.MAX_RANK)]],
    }


def summarize_splits(split_results: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """``{"mean": {...}, "std": {...}}`` of R1/R5/R10/mAP/mINP over splits (population std, ddof=0)."""
    values = {m: np.array([r[m] for r in split_results], dtype=np.float64) for m in SUMMARY_METRICS}
    return {
        "mean": {m: float(v.mean()) for m, v in values.items()},
        "std": {m: float(v.std()) for m, v in values.items()},
    }


def _new_report(cfg: Any) -> dict[str, Any]:
    return {
        "schema": REPORT_SCHEMA,
        "metric": cfg.TEST.METRIC,
        "max_rank": int(cfg.TEST.MAX_RANK),
        "flip_feats": bool(cfg.TEST.FLIP_FEATS),
        "rerank": {
            "enabled": bool(cfg.TEST.RERANK.ENABLED),
            "k1": int(cfg.TEST.RERANK.K1),
            "k2": int(cfg.TEST.RERANK.K2),
            "lambda": float(cfg.TEST.RERANK.LAMBDA),
        },
        "targets": {},
        "mean": {},
        "git_revision": git_revision(),
        "config": None,
        "checkpoint": None,
    }


def check_evaluation_config(cfg: Any, targets: Sequence[str] | None = None) -> None:
    """Raise ``ConfigError`` for evaluation settings that would only fail after features were extracted
    (or after a whole training run): ``TEST.METRIC``, ``TEST.MAX_RANK``, and ``DATASETS.TARGETS`` unless
    ``targets`` are given."""
    from ..config import ConfigError
    from .distance import DISTANCES

    if cfg.TEST.METRIC not in DISTANCES:
        raise ConfigError(
            f"TEST.METRIC must be one of {', '.join(sorted(DISTANCES))}, got {cfg.TEST.METRIC!r}"
        )
    if cfg.TEST.MAX_RANK < 1:
        raise ConfigError(f"TEST.MAX_RANK must be at least 1, got {cfg.TEST.MAX_RANK}")
    if not (cfg.DATASETS.TARGETS if targets is None else targets):
        raise ConfigError("no evaluation targets: set DATASETS.TARGETS (e.g. [market1501] or [viper, prid])")


def evaluate_targets(
    cfg: Any, model: nn.Module, device: torch.device | str, targets: Sequence[str] | None = None
) -> dict[str, Any]:
    """Evaluate ``model`` on ``targets`` (default ``DATASETS.TARGETS``), each over its splits; the report dict.

    ``config`` and ``checkpoint`` are left ``None`` for the caller (see :func:`attach_run_info`).
    """
    # Imported here so that metric users (benchmarks, the inference API) do not load the image pipeline.
    from ..data import all_samples, build_test_loader, build_test_sets

    check_evaluation_config(cfg, targets)
    names = list(cfg.DATASETS.TARGETS if targets is None else targets)
    report = _new_report(cfg)
    for name in names:
        splits = build_test_sets(cfg, name)
        samples = all_samples(splits)
        logger.info("evaluating %s: %d split(s), %d distinct images", name, len(splits), len(samples))
        loader = build_test_loader(cfg, samples)
        features = extract_features(model, loader, device, flip=cfg.TEST.FLIP_FEATS, amp=cfg.SOLVER.AMP)
        split_results = [evaluate_split(cfg, features, split) for split in splits]
        report["targets"][name] = {
            "num_splits": len(split_results),
            "num_images": len(samples),
            **summarize_splits(split_results),
            "splits": split_results,
        }
    report["mean"] = {
        m: float(np.mean([t["mean"][m] for t in report["targets"].values()])) for m in SUMMARY_METRICS
    }
    return report


def attach_run_info(
    report: dict[str, Any], cfg: Any, checkpoint_path: str | os.PathLike | None
) -> dict[str, Any]:
    """Record the resolved config and the checkpoint's path and SHA-256 in ``report`` (in place); returns it."""
    report["config"] = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    if checkpoint_path:
        report["checkpoint"] = {
            "path": os.path.abspath(os.fspath(checkpoint_path)),
            "sha256": sha256_file(checkpoint_path),
        }
    return report


def _percent(value: float) -> str:
    return f"{100.0 * value:.1f}"


def format_markdown(report: Mapping[str, Any]) -> str:
    """The report as a Markdown table: per target mean ± std over splits (percent), then the overall mean."""
    rerank = report["rerank"]
    rerank_text = f"k-reciprocal (k1={rerank['k1']}, k2={rerank['k2']}, lambda={rerank['lambda']})"
    checkpoint = report.get("checkpoint") or {}
    lines = [
        f"metric: {report['metric']}; re-ranking: {rerank_text if rerank['enabled'] else 'off'}; "
        f"flip: {'on' if report['flip_feats'] else 'off'}"
        + (f"; checkpoint sha256 {checkpoint['sha256'][:12]}" if checkpoint.get("sha256") else ""),
        "",
        "| target | splits | " + " | ".join(SUMMARY_METRICS) + " |",
        "|---|---:|" + "---:|" * len(SUMMARY_METRICS),
    ]
    for name, target in report["targets"].items():
        cells = []
        for m in SUMMARY_METRICS:
            cell = _percent(target["mean"][m])
            if target["num_splits"] > 1:
                cell += f" ± {_percent(target['std'][m])}"
            cells.append(cell)
        lines.append(f"| {name} | {target['num_splits']} | " + " | ".join(cells) + " |")
    if len(report["targets"]) > 1:
        lines.append(
            "| **mean** | | " + " | ".join(_percent(report["mean"][m]) for m in SUMMARY_METRICS) + " |"
        )
    return "\n".join(lines)


def write_results(report: Mapping[str, Any], output_dir: str | os.PathLike) -> str:
    """Write ``report`` as ``output_dir/results.json`` atomically; returns the path."""
    path = os.path.join(os.fspath(output_dir), RESULTS_FILE)
    atomic_write_json(path, report)
    return path
