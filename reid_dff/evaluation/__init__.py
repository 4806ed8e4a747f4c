"""Evaluation: feature extraction, exact retrieval metrics, re-ranking and protocol reports."""

from .distance import DISTANCES, PairwiseDistance, build_distance
from .features import Features, extract_features
from .metrics import NoValidQueryError, evaluate, relevant_ranks
from .protocol import (
    REPORT_SCHEMA,
    RESULTS_FILE,
    attach_run_info,
    check_evaluation_config,
    evaluate_split,
    evaluate_targets,
    format_markdown,
    summarize_splits,
    write_results,
)
from .rerank import KReciprocalReranker, k_reciprocal_rerank

__all__ = [
    "DISTANCES",
    "Features",
    "KReciprocalReranker",
    "NoValidQueryError",
    "PairwiseDistance",
    "REPORT_SCHEMA",
    "RESULTS_FILE",
    "attach_run_info",
    "build_distance",
    "evaluate",
    "evaluate_split",
    "check_evaluation_config",
    "evaluate_targets",
    "extract_features",
    "format_markdown",
    "k_reciprocal_rerank",
    "relevant_ranks",
    "summarize_splits",
    "write_results",
]
