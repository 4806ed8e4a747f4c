"""Shared test problems and independent references for the evaluation tests."""

from __future__ import annotations

import warnings

import numpy as np
import torch

with warnings.catch_warnings():
    warnings.simplefilter(
        "ignore"
    )  # torchreid warns that its Cython ranker is absent: we use the python path
    from torchreid.reid.metrics import compute_distance_matrix, evaluate_rank
    from torchreid.reid.utils.rerank import re_ranking


def torchreid_distances(qf: np.ndarray, gf: np.ndarray, metric: str) -> np.ndarray:
    """torchreid's ``(Q, G)`` distance matrix (cosine: 1 - cos; euclidean: squared)."""
    return compute_distance_matrix(torch.from_numpy(qf), torch.from_numpy(gf), metric).numpy()


def torchreid_evaluate(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """torchreid 0.2.5 ``evaluate_rank`` python path -> (cmc float32, mAP)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank, use_cython=False)


def torchreid_rerank(qf, gf, metric, k1=20, k2=6, lambda_value=0.3) -> np.ndarray:
    """torchreid's dense ``re_ranking`` on its own distance matrices of ``metric``."""
    return re_ranking(
        torchreid_distances(qf, gf, metric),
        torchreid_distances(qf, qf, metric),
        torchreid_distances(gf, gf, metric),
        k1=k1,
        k2=k2,
        lambda_value=lambda_value,
    )


def random_problem(seed, num_query=30, num_gallery=200, dim=16, num_ids=30, num_cams=3, noise=1.0):
    """Identity centres + noise; some gallery ids are distractors (pid 0) and some queries lack a match."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_ids + 5, dim))
    q_pids = rng.integers(1, num_ids + 1, num_query)
    q_pids[:3] = num_ids + 1 + np.arange(3)  # ids the gallery lacks: these queries must be skipped
    g_pids = rng.integers(0, num_ids + 1, num_gallery)  # 0: distractors
    q_camids = rng.integers(0, num_cams, num_query)
    g_camids = rng.integers(0, num_cams, num_gallery)
    qf = (centres[q_pids] + noise * rng.standard_normal((num_query, dim))).astype(np.float32)
    gf = (centres[g_pids] + noise * rng.standard_normal((num_gallery, dim))).astype(np.float32)
    return qf, gf, q_pids, g_pids, q_camids, g_camids


def min_relative_gap(distmat: np.ndarray) -> float:
    """Smallest gap between two distances of one row, relative to the row's spread (near-tie detector)."""
    ordered = np.sort(distmat.astype(np.float64), axis=1)
    spread = ordered[:, -1:] - ordered[:, :1]
    return float((np.diff(ordered, axis=1) / spread).min())


def brute_force_metrics(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    """Loop reference: stable sort (ties by gallery index), drop same pid+camera, AP / INP / CMC per query."""
    aps, inps, cmc_hits, skipped = [], [], np.zeros(max_rank), 0
    for i in range(distmat.shape[0]):
        order = np.argsort(distmat[i], kind="stable")
        kept = [j for j in order if not (g_pids[j] == q_pids[i] and g_camids[j] == q_camids[i])]
        matches = [g_pids[j] == q_pids[i] for j in kept]
        if not any(matches):
            skipped += 1
            continue
        hits, precisions, last = 0, [], 0
        for position, is_match in enumerate(matches, start=1):
            if is_match:
                hits += 1
                precisions.append(hits / position)
                last = position
        aps.append(sum(precisions) / hits)
        inps.append(hits / last)
        first = matches.index(True) + 1
        for r in range(max_rank):
            cmc_hits[r] += first <= r + 1
    valid = len(aps)
    return {
        "mAP": float(np.mean(aps)),
        "mINP": float(np.mean(inps)),
        "cmc": cmc_hits / valid,
        "num_valid_queries": valid,
        "num_skipped_queries": skipped,
    }


def min_match_gap(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray) -> float:
    """Smallest distance gap between a query's true match and any item of another identity.

    Only such near-ties can make two evaluators disagree (swapping two non-matches changes nothing).
    """
    gaps = [
        np.abs(distmat[i][g_pids == q_pids[i]][:, None] - distmat[i][g_pids != q_pids[i]][None]).min()
        for i in range(distmat.shape[0])
        if (g_pids == q_pids[i]).any()
    ]
    return float(min(gaps))
