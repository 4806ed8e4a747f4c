"""Exact ReID retrieval metrics (CMC, mAP, mINP) in memory bounded by a setting, at any gallery size.

The ranking of one query never needs a sort of the whole gallery: AP, INP and CMC only need the rank of each
*relevant* gallery item among the *valid* ones, i.e. the number of valid items closer to the query. Per
query block we compute the distances with one BLAS product, and per query we count the items below each
relevant item's distance (``np.searchsorted`` against the sorted few items closer than the farthest
relevant one, or against the sorted row when that is most of the gallery).

Conventions (those of torchreid's ``eval_market1501`` and fast-reid):

- gallery items with the query's identity *and* camera are removed for that query (junk); everything else,
  including distractors (pid 0), stays;
- a query without any remaining true match is skipped and counted in ``num_skipped_queries``;
- ties in distance are broken by gallery index: of two equally distant items the one that comes first in
  the gallery ranks first (a stable sort);
- ``cmc`` has ``min(max_rank, num_gallery)`` entries (torchreid lowers ``max_rank`` the same way).

See docs/evaluation.md for the definitions and the memory model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from ..errors import ReidDffError
from .distance import FeatureInput, as_feature_matrix, build_distance, query_block_rows
from .rerank import KReciprocalReranker

__all__ = ["NoValidQueryError", "evaluate", "relevant_ranks"]

logger = logging.getLogger(__name__)

LabelInput = np.ndarray | torch.Tensor | Sequence[int]

# Counting against the few items closer than the farthest relevant one beats sorting the whole row only
# while they are a small part of it: gathering a dense, random-looking mask is slower than sorting.
_CANDIDATE_FRACTION = 0.25
# Blocks of at least this many query rows keep the BLAS product efficient; aim for this many blocks.
_MIN_BLOCK_ROWS = 256
_MIN_BLOCKS = 8


class NoValidQueryError(ReidDffError):
    """No query keeps a true match in the gallery after the same-identity-same-camera removal."""


def as_label_vector(labels: LabelInput, name: str, length: int) -> np.ndarray:
    """``(N,)`` int64 numpy copy of integer labels (numpy, torch or list) of the expected length."""
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    array = np.asarray(labels)
    if array.ndim != 1 or array.shape[0] != length:
        raise ValueError(
            f"{name} must be a 1-D array of {length} labels (one per row), got shape {array.shape}"
        )
    if array.dtype.kind == "f" and np.array_equal(array, np.round(array)):
        array = array.astype(np.int64)
    if array.dtype.kind not in "iub":
        raise TypeError(f"{name} must hold integer identity/camera labels, got dtype {array.dtype}")
    return array.astype(np.int64)


def relevant_ranks(keys: np.ndarray, relevant: np.ndarray, junk: np.ndarray) -> np.ndarray:
    """1-based ranks, ascending, of the ``relevant`` gallery items among the valid ones for one query.

    ``keys`` ``(G,)``: a distance (or the distance minus a constant) to every gallery item; ``relevant`` and
    ``junk`` ``(n,)``: gallery indices of the true matches and of the removed items. An item's rank is one
    plus the number of valid items that are closer, or equally close and earlier in the gallery.
    """
    rel_keys = keys[relevant]
    order = np.lexsort((relevant, rel_keys))  # by key, then by gallery index: the tie rule
    relevant, rel_keys = relevant[order], rel_keys[order]
    farthest = rel_keys[-1]
    num_closer = np.count_nonzero(keys <= farthest)
    if num_closer <= _CANDIDATE_FRACTION * keys.shape[0]:
        closer = np.sort(keys[keys <= farthest])
    else:
        closer = np.sort(keys)
    junk_keys = np.sort(keys[junk])
    # Items strictly closer than / at most as far as each relevant item, split into relevant, junk, others.
    below_all = np.searchsorted(closer, rel_keys, "left")
    upto_all = np.searchsorted(closer, rel_keys, "right")
    below_junk = np.searchsorted(junk_keys, rel_keys, "left")
    upto_junk = np.searchsorted(junk_keys, rel_keys, "right")
    below_rel = np.searchsorted(rel_keys, rel_keys, "left")
    upto_rel = np.searchsorted(rel_keys, rel_keys, "right")
    others_below = below_all - below_junk - below_rel
    others_tied = (upto_all - upto_junk - upto_rel) - others_below
    ranks = np.arange(1, relevant.shape[0] + 1) + others_below
    for k in np.flatnonzero(others_tied):
        # Rare exact tie with a non-relevant valid item: those earlier in the gallery rank first.
        tied = np.flatnonzero(keys == rel_keys[k])
        tied = tied[tied < relevant[k]]
        tied = tied[~(np.isin(tied, relevant) | np.isin(tied, junk))]
        ranks[k] += tied.shape[0]
    return ranks


def _matches_per_query(
    q_pids: np.ndarray, q_camids: np.ndarray, g_pids: np.ndarray, g_camids: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per query, the ascending gallery indices of its true matches and of its junk (same pid and camera)."""
    by_pid = np.argsort(g_pids, kind="stable")  # stable: indices of one pid stay ascending
    sorted_pids = g_pids[by_pid]
    lo = np.searchsorted(sorted_pids, q_pids, "left")
    hi = np.searchsorted(sorted_pids, q_pids, "right")
    relevant, junk = [], []
    for i in range(q_pids.shape[0]):
        same_pid = by_pid[lo[i] : hi[i]]
        same_cam = g_camids[same_pid] == q_camids[i]
        relevant.append(same_pid[~same_cam])
        junk.append(same_pid[same_cam])
    return relevant, junk


def _distance_blocks(
    keys_of: Callable[[slice | np.ndarray, np.ndarray], np.ndarray],
    rows: np.ndarray,
    rows_per_block: int,
    num_gallery: int,
) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, keys (B, G))`` per block of ``rows``; the next block is computed in a thread meanwhile.

    The ranking of a block is single-threaded Python + numpy while BLAS products use every core: overlapping
    them hides most of the ranking time. Two ``(rows_per_block, G)`` float32 buffers are used in turn.
    """
    buffers = [
        np.empty((min(rows_per_block, rows.shape[0]), num_gallery), dtype=np.float32) for _ in range(2)
    ]
    starts = list(range(0, rows.shape[0], rows_per_block))

    def compute(index: int) -> np.ndarray:
        indices = rows[starts[index] : starts[index] + rows_per_block]
        block: slice | np.ndarray = indices
        if indices[-1] - indices[0] == indices.shape[0] - 1:  # ascending and contiguous: a view, not a gather
            block = slice(int(indices[0]), int(indices[-1]) + 1)
        return keys_of(block, buffers[index % 2][: len(indices)])

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(compute, 0)
        for index, start in enumerate(starts):
            keys = pending.result()
            if index + 1 < len(starts):
                pending = pool.submit(compute, index + 1)
            yield start, keys


def evaluate(
    query_features: FeatureInput,
    gallery_features: FeatureInput,
    query_pids: LabelInput,
    gallery_pids: LabelInput,
    query_camids: LabelInput,
    gallery_camids: LabelInput,
    metric: str = "cosine",
    max_rank: int = 50,
    rerank: bool = False,
    *,
    rerank_k1: int = 20,
    rerank_k2: int = 6,
    rerank_lambda: float = 0.3,
    max_memory_mb: float = 512,
) -> dict[str, Any]:
    """CMC, mAP and mINP of ``(Q, D)`` queries against a ``(G, D)`` gallery, exact and in bounded memory.

    Returns ``{"mAP", "mINP"}`` (floats in [0, 1]), ``"cmc"`` (float64 ``(min(max_rank, G),)``),
    ``"num_valid_queries"`` and ``"num_skipped_queries"``. ``metric`` is ``"cosine"`` (on L2-normalised
    features) or ``"euclidean"``; ``rerank`` applies k-reciprocal re-ranking (k1, k2, lambda) first.
    ``max_memory_mb`` bounds the working memory besides the features (see docs/evaluation.md).
    """
    qf = as_feature_matrix(query_features, "query_features")
    gf = as_feature_matrix(gallery_features, "gallery_features")
    num_query, num_gallery = qf.shape[0], gf.shape[0]
    q_pids = as_label_vector(query_pids, "query_pids", num_query)
    g_pids = as_label_vector(gallery_pids, "gallery_pids", num_gallery)
    q_camids = as_label_vector(query_camids, "query_camids", num_query)
    g_camids = as_label_vector(gallery_camids, "gallery_camids", num_gallery)
    if int(max_rank) < 1:
        raise ValueError(f"max_rank (TEST.MAX_RANK) must be at least 1, got {max_rank}")
    max_rank = min(int(max_rank), num_gallery)

    relevant, junk = _matches_per_query(q_pids, q_camids, g_pids, g_camids)
    valid = np.array([i for i in range(num_query) if relevant[i].shape[0] > 0], dtype=np.int64)
    num_skipped = num_query - valid.shape[0]
    if valid.shape[0] == 0:
        raise NoValidQueryError(
            f"none of the {num_query} queries has a true match in the gallery (same pid, different camera); "
            "check that query and gallery come from the same test split and that camids are per camera"
        )
    if num_skipped:
        logger.warning(
            "%d of %d queries have no true match in the gallery and are skipped", num_skipped, num_query
        )

    if rerank:
        # Half of the budget for the distance block, half for the re-ranking's own working memory.
        reranker = KReciprocalReranker(
            qf, gf, rerank_k1, rerank_k2, rerank_lambda, metric=metric, max_memory_mb=max_memory_mb / 2
        )
        block_budget_mb = max_memory_mb / 2

        def keys_of(rows: slice | np.ndarray, out: np.ndarray) -> np.ndarray:
            return reranker.distances(rows, out=out)
    else:
        distance = build_distance(metric, qf, gf)
        block_budget_mb = max_memory_mb

        def keys_of(rows: slice | np.ndarray, out: np.ndarray) -> np.ndarray:
            return distance.ranking_keys(rows, out=out)

    # Two blocks in flight: the next one's distances are computed while this one is ranked. Several
    # blocks even when one would fit, so that little of the product and the ranking runs alone.
    rows_per_block = query_block_rows(4 * num_gallery, block_budget_mb / 2, valid.shape[0])
    rows_per_block = min(rows_per_block, max(_MIN_BLOCK_ROWS, -(-valid.shape[0] // _MIN_BLOCKS)))
    average_precision = np.empty(valid.shape[0], dtype=np.float64)
    inverse_negative_penalty = np.empty(valid.shape[0], dtype=np.float64)
    first_match_rank = np.empty(valid.shape[0], dtype=np.int64)
    for start, keys in _distance_blocks(keys_of, valid, rows_per_block, num_gallery):
        for offset, query in enumerate(valid[start : start + keys.shape[0]]):
            ranks = relevant_ranks(keys[offset], relevant[query], junk[query])
            n = ranks.shape[0]
            average_precision[start + offset] = np.mean(np.arange(1, n + 1) / ranks)
            inverse_negative_penalty[start + offset] = n / ranks[-1]
            first_match_rank[start + offset] = ranks[0]

    # CMC at rank r: share of valid queries whose first true match ranks r or better.
    hits = np.bincount(np.minimum(first_match_rank, max_rank + 1) - 1, minlength=max_rank + 1)[:max_rank]
    cmc = np.cumsum(hits) / valid.shape[0]
    return {
        "mAP": float(np.mean(average_precision)),
        "mINP": float(np.mean(inverse_negative_penalty)),
        "cmc": cmc,
        "num_valid_queries": int(valid.shape[0]),
        "num_skipped_queries": int(num_skipped),
    }
