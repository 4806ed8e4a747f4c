"""Turning index search results into JSON-ready reports and ReID accuracy (CMC) numbers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..evaluation.features import Features
from ..evaluation.metrics import NoValidQueryError
from .index import GalleryIndex, IndexCompatibilityError, SearchResult


def search_report(
    index: GalleryIndex,
    result: SearchResult,
    query_paths: Sequence[str],
    query_root: str = "",
    query_pids: Sequence[int] | np.ndarray | None = None,
    query_camids: Sequence[int] | np.ndarray | None = None,
    camera_filtering: bool = False,
) -> dict:
    """A JSON-ready dict: per query its path and ranked gallery paths, distances, ids and match flags.

    ``match`` is true/false when both the query's and the gallery item's pids are known, else null.
    Gallery paths are relative to ``gallery_root``, query paths to ``query_root``.
    """
    if len(query_paths) != len(result):
        raise ValueError(f"{len(query_paths)} query paths but {len(result)} search results")
    q_pids = np.full(len(result), -1) if query_pids is None else np.asarray(query_pids)
    q_camids = np.full(len(result), -1) if query_camids is None else np.asarray(query_camids)
    queries = []
    for qi, path in enumerate(query_paths):
        ranked = []
        for rank, (gi, dist) in enumerate(zip(result.indices[qi], result.distances[qi]), start=1):
            if gi < 0:
                break
            g_pid = int(index.pids[gi])
            ranked.append(
                {
                    "rank": rank,
                    "path": str(index.paths[gi]),
                    "distance": float(dist),
                    "pid": g_pid,
                    "camid": int(index.camids[gi]),
                    "match": None if g_pid < 0 or q_pids[qi] < 0 else bool(g_pid == q_pids[qi]),
                }
            )
        queries.append(
            {"query": str(path), "pid": int(q_pids[qi]), "camid": int(q_camids[qi]), "results": ranked}
        )
    return {
        "index": {
            "type": index.meta.index_type,
            "params": index.meta.params,
            "metric": index.meta.metric,
            "num_items": len(index),
            "model": index.meta.model_name,
            "checkpoint_sha256": index.meta.checkpoint_sha256,
        },
        "gallery_root": index.meta.root,
        "query_root": query_root,
        "topk": int(result.indices.shape[1]),
        "camera_filtering": camera_filtering,
        "queries": queries,
    }


def cmc_from_search(
    result: SearchResult,
    gallery_pids: np.ndarray,
    gallery_camids: np.ndarray,
    query_pids: np.ndarray,
    query_camids: np.ndarray,
) -> tuple[np.ndarray, int]:
    """CMC at ranks 1..k from camera-filtered search results, and the number of valid queries.

    A query is valid when the gallery holds its identity from another camera (the evaluator skips the
    others), so the numbers equal the exact evaluator's CMC up to rank k when the index is exact.
    """
    gallery_pids = np.asarray(gallery_pids)
    gallery_camids = np.asarray(gallery_camids)
    query_pids = np.asarray(query_pids)
    query_camids = np.asarray(query_camids)
    topk = result.indices.shape[1]
    pid_counts = Counter(gallery_pids.tolist())
    pair_counts = Counter(zip(gallery_pids.tolist(), gallery_camids.tolist()))
    hits = np.zeros(topk)
    num_valid = 0
    for qi in range(len(result)):
        pid, camid = int(query_pids[qi]), int(query_camids[qi])
        if pid_counts[pid] - pair_counts[(pid, camid)] == 0:
            continue
        num_valid += 1
        ranked = result.indices[qi]
        found = np.flatnonzero((ranked >= 0) & (gallery_pids[np.maximum(ranked, 0)] == query_pids[qi]))
        if len(found):
            hits[found[0] :] += 1
    if num_valid == 0:
        raise NoValidQueryError(
            f"none of the {len(result)} queries has a match in the gallery from another camera "
            "(same-identity-same-camera items excluded), so CMC is undefined"
        )
    return hits / num_valid, num_valid


def search_features(
    index: GalleryIndex,
    queries: Features,
    topk: int = 10,
    exclude_same_camera: bool = False,
) -> dict:
    """Search ``queries`` in ``index``; the report of :func:`search_report`, plus ``cmc`` when measurable.

    ``exclude_same_camera`` applies the ReID protocol (drop gallery items of the query's identity seen by
    the query's camera); it needs pids/camids on both sides. With it, the report also holds
    ``cmc`` (ranks 1..k, ``{"1": ..., "5": ...}``) and ``num_valid_queries``; when no query is valid the
    ranked lists are kept, with ``cmc`` None, ``num_valid_queries`` 0 and ``no_valid_query`` the reason.
    """
    # No normalization check: features files hold raw embeddings, which the index normalizes (or not) by
    # its own metric, so an index built with another --metric than the queries' TEST.METRIC is searched
    # with the index's metric.
    index.check_compatible(
        dim=queries.feats.shape[1],
        model_name=queries.model_name or None,
        checkpoint_sha256=queries.checkpoint_sha256 or None,
        onnx_sha256=str(queries.extra.get("onnx_sha256", "")) or None,
    )
    if exclude_same_camera and not queries.has_identities:
        raise IndexCompatibilityError(
            "excluding same-identity-same-camera results needs each query's pid and camid; these query "
            "file names carry none (expected Market-style names such as 0002_c3s1_000451_01.jpg)"
        )
    filter_ids = (queries.pids, queries.camids) if exclude_same_camera else (None, None)
    result = index.search(queries.feats, topk, query_pids=filter_ids[0], query_camids=filter_ids[1])
    report = search_report(
        index,
        result,
        queries.paths,
        query_root=queries.root,
        query_pids=queries.pids,
        query_camids=queries.camids,
        camera_filtering=exclude_same_camera,
    )
    if exclude_same_camera:
        try:
            cmc, num_valid = cmc_from_search(result, index.pids, index.camids, queries.pids, queries.camids)
        except NoValidQueryError as e:  # the ranked lists stand; only the CMC is undefined
            report.update(cmc=None, num_valid_queries=0, no_valid_query=str(e))
            return report
        report["cmc"] = {str(rank): float(cmc[rank - 1]) for rank in range(1, len(cmc) + 1)}
        report["num_valid_queries"] = num_valid
    return report
