#!/usr/bin/env python
"""Evaluation speed and memory at Market-1501 and MSMT17 scale: ours vs the matmul floor vs torchreid.

Synthetic L2-normalised 2048-d features shaped like the real test sets (identity centre + camera shift +
noise, so every query has several true matches across cameras and the metrics are far from trivial).
Each row runs in a fresh process so that peak RSS figures do not mix:

- ``ours``: ``reid_dff.evaluation.evaluate`` (blocked BLAS distances + counting, exact);
- ``floor (numpy)`` / ``floor (torch)``: the bare float32 ``Q @ G.T`` product; the faster is the floor;
- ``torchreid (python)``: torchreid 0.2.5's ``compute_distance_matrix`` + ``evaluate_rank(use_cython=False)``,
  whose mAP/CMC must equal ours (checked; a mismatch exits with status 1).

Usage (from the repo root)::

    python bench/eval_speed.py --scale both --skip-torchreid-msmt
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import sys
import time

import numpy as np

SCALES = {
    "market": {"num_query": 3368, "num_gallery": 15913, "num_ids": 751, "num_cams": 6},
    "msmt17": {"num_query": 11659, "num_gallery": 82161, "num_ids": 3060, "num_cams": 15},
}
DIM = 2048
# Noise and camera shift (relative to a unit identity centre) chosen so Market-scale mAP is ~0.4 and the
# last true match of a query often sits hundreds of places down the list, as with real DG models.
NOISE = 3.5
CAMERA_SHIFT = 0.5
_GENERATE_CHUNK_ROWS = 4096  # keeps the generator's temporaries small next to the features


def _features(pids, camids, centres, camera_shift, rng) -> np.ndarray:
    """Unit rows ``normalize(centre[pid] + shift[camid] + noise)``, built chunk by chunk."""
    out = np.empty((pids.shape[0], centres.shape[1]), dtype=np.float32)
    scale = np.float32(NOISE / np.sqrt(centres.shape[1]))
    for start in range(0, pids.shape[0], _GENERATE_CHUNK_ROWS):
        stop = min(start + _GENERATE_CHUNK_ROWS, pids.shape[0])
        x = rng.standard_normal((stop - start, centres.shape[1]), dtype=np.float32)
        x *= scale
        x += centres[pids[start:stop]]
        x += camera_shift[camids[start:stop]]
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[start:stop] = x
    return out


def synthetic_problem(num_query: int, num_gallery: int, num_ids: int, num_cams: int, seed: int = 0) -> dict:
    """Query/gallery features ``(Q, 2048)``/``(G, 2048)`` float32 (unit rows) with pids and camids."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_ids, DIM), dtype=np.float32) / np.float32(np.sqrt(DIM))
    shifts = rng.standard_normal((num_cams, DIM), dtype=np.float32) * np.float32(CAMERA_SHIFT / np.sqrt(DIM))
    q_pids = rng.permutation(np.arange(num_query) % num_ids)
    g_pids = rng.permutation(np.arange(num_gallery) % num_ids)
    q_camids = rng.integers(0, num_cams, num_query)
    g_camids = rng.integers(0, num_cams, num_gallery)
    return {
        "qf": _features(q_pids, q_camids, centres, shifts, rng),
        "gf": _features(g_pids, g_camids, centres, shifts, rng),
        "q_pids": q_pids,
        "g_pids": g_pids,
        "q_camids": q_camids,
        "g_camids": g_camids,
    }


def run_ours(p: dict, metric: str, max_memory_mb: float) -> dict:
    from reid_dff.evaluation import evaluate

    r = evaluate(
        p["qf"], p["gf"], p["q_pids"], p["g_pids"], p["q_camids"], p["g_camids"], metric, 50,
        max_memory_mb=max_memory_mb,
    )  # fmt: skip
    return {"mAP": r["mAP"], "mINP": r["mINP"], "cmc": r["cmc"], "num_valid": r["num_valid_queries"]}


def run_ours_reranked(p: dict, metric: str, max_memory_mb: float) -> dict:
    from reid_dff.evaluation import evaluate

    r = evaluate(
        p["qf"], p["gf"], p["q_pids"], p["g_pids"], p["q_camids"], p["g_camids"], metric, 50, rerank=True,
        max_memory_mb=max_memory_mb,
    )  # fmt: skip
    return {"mAP": r["mAP"], "mINP": r["mINP"], "cmc": r["cmc"], "num_valid": r["num_valid_queries"]}


def run_floor_numpy(p: dict, metric: str, max_memory_mb: float) -> dict:
    p["qf"] @ p["gf"].T
    return {}


def run_floor_torch(p: dict, metric: str, max_memory_mb: float) -> dict:
    import torch

    torch.mm(torch.from_numpy(p["qf"]), torch.from_numpy(p["gf"]).t())
    return {}


def run_torchreid(p: dict, metric: str, max_memory_mb: float) -> dict:
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Cython evaluation is unavailable": we time the python path
        from torchreid.reid.metrics import compute_distance_matrix, evaluate_rank

    distmat = compute_distance_matrix(torch.from_numpy(p["qf"]), torch.from_numpy(p["gf"]), metric).numpy()
    cmc, mAP = evaluate_rank(
        distmat, p["q_pids"], p["g_pids"], p["q_camids"], p["g_camids"], max_rank=50, use_cython=False
    )
    return {"mAP": float(mAP), "cmc": np.asarray(cmc, dtype=np.float64)}


ROWS = {
    "ours": run_ours,
    "floor (numpy)": run_floor_numpy,
    "floor (torch)": run_floor_torch,
    "torchreid (python)": run_torchreid,
    "ours, k-reciprocal re-ranked": run_ours_reranked,
}


def _row_process(row: str, scale: str, metric: str, max_memory_mb: float, queue) -> None:
    import psutil

    import reid_dff.evaluation  # noqa: F401  (libraries loaded before the baseline, like torch for the floor)

    problem = synthetic_problem(**SCALES[scale])
    baseline = psutil.Process().memory_info().rss
    start = time.perf_counter()
    out = ROWS[row](problem, metric, max_memory_mb)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    features = problem["qf"].nbytes + problem["gf"].nbytes
    queue.put({"row": row, "wall": wall, "peak": peak, "baseline": baseline, "features": features, **out})


def measure(row: str, scale: str, metric: str, max_memory_mb: float) -> dict:
    """Run one row in a fresh (spawned) process; its wall time, peak RSS and metrics."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_row_process, args=(row, scale, metric, max_memory_mb, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if proc.exitcode:
        raise RuntimeError(f"row {row!r} at {scale} scale failed with exit code {proc.exitcode}")
    return result


def check_identical(ours: dict, reference: dict) -> str | None:
    """None when mAP agrees within 1e-6 and the CMC hit counts are identical, else a description."""
    n = ours["num_valid"]
    if abs(ours["mAP"] - reference["mAP"]) > 1e-6:
        return f"mAP differs: ours {ours['mAP']:.9f} vs torchreid {reference['mAP']:.9f}"
    if not np.array_equal(np.rint(ours["cmc"] * n), np.rint(reference["cmc"] * n)):
        return f"CMC differs at ranks {np.flatnonzero(np.rint(ours['cmc'] * n) != np.rint(reference['cmc'] * n)) + 1}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=["market", "msmt17", "both"], default="both")
    parser.add_argument("--metric", choices=["cosine", "euclidean"], default="cosine")
    parser.add_argument("--max-memory-mb", type=float, default=512, help="TEST.MAX_MEMORY_MB for ours")
    parser.add_argument(
        "--skip-torchreid-msmt", action="store_true", help="skip torchreid at MSMT17 scale (~20 min, ~24 GB)"
    )
    parser.add_argument("--skip-torchreid", action="store_true", help="skip torchreid at every scale")
    parser.add_argument(
        "--rerank",
        action="store_true",
        help="also time ours with k-reciprocal re-ranking (Market scale only)",
    )
    args = parser.parse_args()

    import torch

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
          f"{torch.get_num_threads()}, numpy {np.__version__}, torch {torch.__version__}")  # fmt: skip
    print(f"# python {' '.join(sys.argv)}")
    failed = False
    scales = ["market", "msmt17"] if args.scale == "both" else [args.scale]
    for scale in scales:
        shape = SCALES[scale]
        rows = ["ours", "floor (numpy)", "floor (torch)"]
        if not (args.skip_torchreid or (scale == "msmt17" and args.skip_torchreid_msmt)):
            rows.append("torchreid (python)")
        if args.rerank and scale == "market":
            rows.append("ours, k-reciprocal re-ranked")
        results = {row: measure(row, scale, args.metric, args.max_memory_mb) for row in rows}
        floor = min(results["floor (numpy)"]["wall"], results["floor (torch)"]["wall"])
        ours = results["ours"]
        print(
            f"\n## {scale}: {shape['num_query']} x {shape['num_gallery']} x {DIM}, {shape['num_ids']} ids, "
            f"{shape['num_cams']} cameras, metric {args.metric}; features {ours['features'] / 2**30:.2f} GiB; "
            f"ours mAP {ours['mAP']:.4f}, mINP {ours['mINP']:.4f}, R1 {ours['cmc'][0]:.4f}\n"
        )
        print("| row | wall (s) | x floor | peak RSS (GiB) | peak above features+libs (GiB) |")
        print("|---|---:|---:|---:|---:|")
        for row, r in results.items():
            print(
                f"| {row} | {r['wall']:.2f} | {r['wall'] / floor:.2f} | {r['peak'] / 2**30:.2f} | "
                f"{(r['peak'] - r['baseline']) / 2**30:.2f} |"
            )
        if "torchreid (python)" in results:
            problem = check_identical(ours, results["torchreid (python)"])
            print(f"\nmetrics vs torchreid: {'identical' if problem is None else 'MISMATCH: ' + problem}")
            failed |= problem is not None
        print(f"ours / floor = {ours['wall'] / floor:.2f} (target <= 2)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
