#!/usr/bin/env python
"""Recall@10, size and speed of the IVF, IVF-PQ and HNSW gallery indexes against exact (flat) search.

The gallery is synthetic and ReID-like: ``--num`` L2-normalized vectors drawn around ``--num / 20``
identity centres (about 20 images per identity, same-identity cosine similarity ~0.7), searched with the
cosine metric, as ``tools/build_index.py`` does with real embeddings. Recall@10 of a query is the fraction
of its exact top-10 (a flat index) that the approximate index returns; "same-identity@10" is the share of
the returned top-10 that show the query's identity (what a ReID user sees; ~20 siblings per identity are
almost equally near, so an approximate index can miss exact neighbours yet return the right person).
Speed is reported for FAISS alone and for ``GalleryIndex.search`` (FAISS plus tie ordering and bookkeeping);
"index MiB" is the size of the serialized FAISS index (what ``index.faiss`` holds and search keeps in RAM).

    python bench/index_search.py                      # 1M x 128-d, 1,000 queries (~2.5 minutes on 2 quiet cores)
    python bench/index_search.py --num 100000 --quick # a smoke run
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import faiss
import numpy as np
import psutil

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from reid_dff.inference import GalleryIndex  # noqa: E402


def synthetic_embeddings(
    num: int, dim: int, num_queries: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gallery ``(num, dim)``, its identities, queries ``(num_queries, dim)`` and theirs."""
    rng = np.random.default_rng(seed)
    num_ids = max(num // 20, 1)
    centres = rng.standard_normal((num_ids, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    # Noise of total norm ~0.65 gives a same-identity cosine similarity of ~0.7 after normalization.
    sigma = np.float32(0.65 / np.sqrt(dim))
    gallery = np.empty((num, dim), np.float32)
    gallery_ids = rng.integers(0, num_ids, num)
    for start in range(0, num, 100_000):  # in chunks: a single 1M x 128 float64 temporary would be 1 GB
        stop = min(start + 100_000, num)
        gallery[start:stop] = centres[gallery_ids[start:stop]]
        gallery[start:stop] += sigma * rng.standard_normal((stop - start, dim), dtype=np.float32)
    query_ids = rng.integers(0, num_ids, num_queries)
    queries = centres[query_ids] + sigma * rng.standard_normal((num_queries, dim), dtype=np.float32)
    return gallery, gallery_ids, queries, query_ids


def timed(fn, repeats: int = 1):
    """(result, best wall time over ``repeats`` runs): the minimum is the least disturbed by other load."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def recall_at(approx: np.ndarray, exact: np.ndarray) -> float:
    k = exact.shape[1]
    return float(np.mean([len(set(a) & set(e)) / k for a, e in zip(approx, exact)]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--num", type=int, default=1_000_000, help="gallery vectors")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--topk", type=int, default=10)
    parser.add_argument("--nlist", type=int, default=0, help="IVF lists (0: the library default 4*sqrt(N))")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[16, 64, 128, 256])
    parser.add_argument("--hnsw-m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=40)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--threads", type=int, default=0, help="FAISS threads (0: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed searches per setting (best is kept)")
    parser.add_argument("--quick", action="store_true", help="one setting per index type")
    args = parser.parse_args()
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    if args.quick:
        args.nprobe, args.ef_search = args.nprobe[:1], args.ef_search[:1]

    process = psutil.Process()
    print(
        f"gallery {args.num:,} x {args.dim}-d, {args.queries:,} queries, top-{args.topk}, cosine; "
        f"FAISS {faiss.__version__}, {faiss.omp_get_max_threads()} threads"
    )
    (gallery, gallery_ids, queries, query_ids), t_data = timed(
        lambda: synthetic_embeddings(args.num, args.dim, args.queries, args.seed)
    )
    paths = np.char.add(np.arange(args.num).astype(np.str_), ".jpg")
    print(f"data generated in {t_data:.1f}s; RSS {process.memory_info().rss / 2**30:.2f} GiB\n")

    rows = []

    def measure(name: str, index: GalleryIndex, build_s: float, exact_ids: np.ndarray | None):
        normalized = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        _, t_faiss = timed(lambda: index.index.search(normalized, args.topk), args.repeats)
        result, t_wrapped = timed(lambda: index.search(queries, args.topk), args.repeats)
        recall = 1.0 if exact_ids is None else recall_at(result.indices, exact_ids)
        # What ReID cares about: the share of returned items that show the query's identity.
        # Over the items returned: FAISS pads with -1 when a probe finds fewer than top-k.
        returned = result.indices >= 0
        hits = (gallery_ids[np.where(returned, result.indices, 0)] == query_ids[:, None]) & returned
        same_identity = float(hits.sum() / max(1, returned.sum()))
        ms_faiss, ms_wrapped = 1e3 * t_faiss / args.queries, 1e3 * t_wrapped / args.queries
        size_mib = faiss.serialize_index(index.index).nbytes / 2**20  # what index.faiss holds
        rows.append((name, build_s, size_mib, recall, same_identity, ms_faiss, ms_wrapped))
        print(
            f"  {name}: recall@{args.topk} {recall:.4f}, same identity {same_identity:.4f}, {ms_wrapped:.3f} ms/query"
        )
        return result

    flat, t_build = timed(lambda: GalleryIndex.build(gallery, paths, index_type="flat"))
    exact = measure("flat (exact)", flat, t_build, None).indices
    del flat

    ivf_params = {"nprobe": args.nprobe[0]} | ({"nlist": args.nlist} if args.nlist else {})
    ivf, t_build = timed(lambda: GalleryIndex.build(gallery, paths, index_type="ivf", params=ivf_params))
    print(f"ivf built in {t_build:.1f}s with {ivf.meta.params}")
    for nprobe in args.nprobe:
        ivf.set_search_params(nprobe=nprobe)
        measure(f"ivf nlist={ivf.meta.params['nlist']} nprobe={nprobe}", ivf, t_build, exact)
    del ivf

    ivfpq_params = {"nprobe": args.nprobe[0]} | ({"nlist": args.nlist} if args.nlist else {})
    ivfpq, t_build = timed(
        lambda: GalleryIndex.build(gallery, paths, index_type="ivfpq", params=ivfpq_params)
    )
    print(f"ivfpq built in {t_build:.1f}s with {ivfpq.meta.params}")
    for nprobe in args.nprobe:
        ivfpq.set_search_params(nprobe=nprobe)
        name = f"ivfpq nlist={ivfpq.meta.params['nlist']} m={ivfpq.meta.params['pq_m']} nprobe={nprobe}"
        measure(name, ivfpq, t_build, exact)
    del ivfpq

    hnsw_params = {"M": args.hnsw_m, "ef_construction": args.ef_construction, "ef_search": args.ef_search[0]}
    hnsw, t_build = timed(lambda: GalleryIndex.build(gallery, paths, index_type="hnsw", params=hnsw_params))
    print(f"hnsw built in {t_build:.1f}s with {hnsw.meta.params}")
    for ef in args.ef_search:
        hnsw.set_search_params(ef_search=ef)
        measure(f"hnsw M={args.hnsw_m} efC={args.ef_construction} efSearch={ef}", hnsw, t_build, exact)
    # ru_maxrss is the process's peak (KiB on Linux); memory_info().rss would be the current size.
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB\n")

    exact_ms = rows[0][6]
    print(
        f"| index | build s | index MiB | recall@{args.topk} | same-identity@{args.topk} | FAISS ms/query | "
        "search ms/query | speed-up vs exact |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, build_s, size_mib, recall, same_identity, faiss_ms, wrapped_ms in rows:
        print(
            f"| {name} | {build_s:.1f} | {size_mib:.0f} | {recall:.4f} | {same_identity:.4f} | {faiss_ms:.3f} | "
            f"{wrapped_ms:.3f} | {exact_ms / wrapped_ms:.1f}x |"
        )


if __name__ == "__main__":
    main()
