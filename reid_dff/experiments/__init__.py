"""Experiments over many training runs: sweeps with results cached by the hash of each run's config."""

from .sweep import (
    RESULT_IRRELEVANT_KEYS,
    Run,
    RunResult,
    SweepError,
    cached_report,
    collect,
    config_hash,
    format_mean_std,
    format_seed_table,
    mean_std,
    run_sweep,
    train_in_process,
)

__all__ = [
    "RESULT_IRRELEVANT_KEYS",
    "Run",
    "RunResult",
    "SweepError",
    "cached_report",
    "collect",
    "config_hash",
    "format_mean_std",
    "format_seed_table",
    "mean_std",
    "run_sweep",
    "train_in_process",
]
