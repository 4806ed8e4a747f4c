"""Experiments over many training runs: sweeps with results cached by the hash of each run's config, and
the two-stage comparison (stage-1 classification, then ReID fine-tuned from it) built on them."""

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
from .two_stage import (
    TwoStageError,
    check_stage1_load,
    describe_schedule,
    format_two_stage_table,
    pin_checkpoint,
)

__all__ = [
    "RESULT_IRRELEVANT_KEYS",
    "Run",
    "RunResult",
    "SweepError",
    "TwoStageError",
    "cached_report",
    "check_stage1_load",
    "collect",
    "config_hash",
    "describe_schedule",
    "format_mean_std",
    "format_seed_table",
    "format_two_stage_table",
    "mean_std",
    "pin_checkpoint",
    "run_sweep",
    "train_in_process",
]
