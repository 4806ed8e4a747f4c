"""A FAISS gallery index that knows what it holds: paths, identities, cameras, metric and model.

:class:`GalleryIndex` builds an index from features (:mod:`.index_types` makes each kind of FAISS index),
saves and loads it with its provenance (:mod:`.index_format`), checks that queries match it, and searches it
exactly as the evaluator ranks: ties in gallery order, same-identity-same-camera items removed on request.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

from ..errors import ReidDffError
from ..evaluation.distance import FeatureMatrixError, as_feature_matrix, l2_normalize
from ..evaluation.features import Features
from .index_format import (
    IndexMetadata,
    check_relative_path,
    read_index_files,
    resolve_inside_root,
    write_index_files,
)
from .index_types import INDEX_TYPES, METRICS, IndexParameterError, apply_search_params

__all__ = ["GalleryIndex", "IndexCompatibilityError", "SearchResult"]


class IndexCompatibilityError(ReidDffError):
    """Queries or a model do not match the index (dimension, normalization, model or checkpoint)."""


@dataclass
class SearchResult:
    """Top-k neighbours per query: ``indices`` (Q, k) into the gallery (-1 = none) and ``distances`` (Q, k)."""

    indices: np.ndarray
    distances: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)


# ---------------------------------------------------------------------------- helpers
def _feature_rows(features: Any) -> np.ndarray:
    """The ``(N, D)`` gallery matrix as a numpy array (a memory map stays one), shape checked only."""
    if isinstance(features, np.ndarray):  # includes np.memmap: no copy
        array = features
    else:
        array = as_feature_matrix(features, "gallery features")  # torch tensors, lists
    if array.ndim != 2:
        raise FeatureMatrixError(
            f"gallery features must be a 2-D (N, D) feature matrix, got shape {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise FeatureMatrixError(
            f"gallery features is empty (shape {tuple(array.shape)}); expected at least one (1, D) row"
        )
    return array


def _finite_rows(rows: np.ndarray, first_row: int) -> np.ndarray:
    """``rows`` as float32 C-contiguous, refusing NaN/inf (reported by gallery row number)."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    finite = np.isfinite(rows).all(axis=1)
    if not finite.all():
        bad = first_row + int(np.flatnonzero(~finite)[0])
        raise FeatureMatrixError(
            f"gallery features holds NaN or infinite values (first in row {bad}); features must be finite"
        )
    return rows


def _optional_ids(values: Sequence[int] | np.ndarray | None, count: int, name: str) -> np.ndarray:
    if values is None:
        return np.full(count, -1, dtype=np.int64)
    arr = np.asarray(values, dtype=np.int64).reshape(-1)
    if len(arr) != count:
        raise ValueError(f"{name} has {len(arr)} entries but there are {count} gallery features")
    return arr


# ---------------------------------------------------------------------------- the index
class GalleryIndex:
    """A FAISS index over gallery embeddings with their paths, pids and camids."""

    def __init__(
        self,
        index: faiss.Index,
        meta: IndexMetadata,
        paths: np.ndarray,
        pids: np.ndarray,
        camids: np.ndarray,
    ):
        self.index = index
        self.meta = meta
        self.paths = paths
        self.pids = pids
        self.camids = camids

    # -- construction ------------------------------------------------------
    @classmethod
    def build(
        cls,
        feats: np.ndarray,
        paths: Sequence[str],
        root: str = "",
        pids: Sequence[int] | np.ndarray | None = None,
        camids: Sequence[int] | np.ndarray | None = None,
        metric: str = "cosine",
        index_type: str = "flat",
        params: dict | None = None,
        model_name: str = "",
        checkpoint_sha256: str = "",
        checkpoint_path: str = "",
        add_batch_size: int = 65536,
        onnx_sha256: str = "",
        onnx_path: str = "",
    ) -> GalleryIndex:
        """Index ``(N, D)`` gallery features; ``paths`` are relative to ``root``; ids default to -1.

        ``feats`` may be a memory map (``load_features(..., mmap=True)``): rows are read, checked, normalized
        and added ``add_batch_size`` at a time, and training reads at most the rows it uses, so building
        needs memory for the index itself plus one batch, not for copies of the whole gallery.
        """
        feats = _feature_rows(feats)
        num, dim = feats.shape
        if metric not in METRICS:
            raise IndexParameterError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
        if index_type not in INDEX_TYPES:
            raise IndexParameterError(
                f"unknown index type {index_type!r}; expected one of {', '.join(INDEX_TYPES)}"
            )
        if len(paths) != num:
            raise ValueError(f"{len(paths)} paths for {num} gallery features; they must match one to one")
        rel_paths = np.array([check_relative_path(str(p)) for p in paths], dtype=np.str_)
        params = dict(params or {})
        unknown = set(params) - set(INDEX_TYPES[index_type].params)
        if unknown:
            raise IndexParameterError(
                f"unknown {index_type} parameters {sorted(unknown)}; "
                f"expected some of {list(INDEX_TYPES[index_type].params) or 'none'}"
            )
        index = INDEX_TYPES[index_type].make(dim, metric, params, num)
        meta = IndexMetadata(
            dim=dim,
            metric=metric,
            index_type=index_type,
            params=params,
            model_name=model_name,
            checkpoint_sha256=checkpoint_sha256,
            checkpoint_path=checkpoint_path,
            root=os.path.abspath(root) if root else "",
            onnx_sha256=onnx_sha256,
            onnx_path=onnx_path,
        )

        def prepared(rows: np.ndarray, first_row: int) -> np.ndarray:
            rows = _finite_rows(rows, first_row)
            return l2_normalize(rows) if meta.normalized else rows

        if not index.is_trained:
            limit = INDEX_TYPES[index_type].train_rows(params)
            if num <= limit:
                sample = prepared(feats, 0)
            else:
                chosen = np.sort(np.random.default_rng(0).choice(num, size=limit, replace=False))
                sample = prepared(feats[chosen], 0)
            index.train(sample)
            del sample
        for start in range(0, num, add_batch_size):
            index.add(prepared(feats[start : start + add_batch_size], start))
        apply_search_params(index, index_type, params)
        return cls(
            index,
            meta,
            rel_paths,
            _optional_ids(pids, num, "pids"),
            _optional_ids(camids, num, "camids"),
        )

    @classmethod
    def from_features(
        cls,
        features: Features,
        index_type: str = "flat",
        params: dict | None = None,
        metric: str | None = None,
        root: str | None = None,
    ) -> GalleryIndex:
        """Index a :class:`Features` (paths, ids, model and checkpoint hash travel with it)."""
        return cls.build(
            features.feats,
            features.paths,
            root=features.root if root is None else root,
            pids=features.pids,
            camids=features.camids,
            metric=metric or features.metric,
            index_type=index_type,
            params=params,
            model_name=features.model_name,
            checkpoint_sha256=features.checkpoint_sha256,
            checkpoint_path=features.checkpoint_path,
            onnx_sha256=str(features.extra.get("onnx_sha256", "")),
            onnx_path=str(features.extra.get("onnx_path", "")),
        )

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        """Feature dimension D."""
        return self.meta.dim

    # -- persistence -------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> None:
        """Write ``index.faiss``, ``items.npz`` and then ``meta.json`` into ``directory``, each atomically."""
        write_index_files(directory, self.index, self.meta, self.paths, self.pids, self.camids)

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike,
        root: str | None = None,
        verify_hashes: bool = True,
        *,
        dim: int | None = None,
        normalized: bool | None = None,
        model_name: str | None = None,
        checkpoint_sha256: str | None = None,
        onnx_sha256: str | None = None,
    ) -> GalleryIndex:
        """Read an index directory written by :meth:`save`; ``root`` overrides the stored gallery root.

        The keyword arguments, when given, are checked with :meth:`check_compatible` before returning.
        """
        index, meta, paths, pids, camids = read_index_files(directory, verify_hashes)
        if root is not None:
            meta.root = os.path.abspath(root)
        apply_search_params(index, meta.index_type, meta.params)
        loaded = cls(index, meta, paths, pids, camids)
        loaded.check_compatible(dim, normalized, model_name, checkpoint_sha256, onnx_sha256)
        return loaded

    # -- compatibility -----------------------------------------------------
    def check_compatible(
        self,
        dim: int | None = None,
        normalized: bool | None = None,
        model_name: str | None = None,
        checkpoint_sha256: str | None = None,
        onnx_sha256: str | None = None,
    ) -> None:
        """Raise :class:`IndexCompatibilityError` listing every property that differs from the index.

        Features of a checkpoint and of its ONNX export share the checkpoint's SHA-256 (the export is checked
        to reproduce it), so they mix; two different ONNX files (another input size, say) do not.
        """
        problems = []
        if dim is not None and dim != self.meta.dim:
            problems.append(f"feature dimension: index {self.meta.dim}, queries {dim}")
        if normalized is not None and normalized != self.meta.normalized:
            problems.append(
                f"normalization: index built for metric {self.meta.metric!r} "
                f"({'L2-normalized' if self.meta.normalized else 'raw'} features), queries expect "
                f"{'L2-normalized' if normalized else 'raw'} features (TEST.METRIC)"
            )
        if model_name and self.meta.model_name and model_name != self.meta.model_name:
            problems.append(f"model: index {self.meta.model_name!r}, queries {model_name!r}")
        if (
            checkpoint_sha256
            and self.meta.checkpoint_sha256
            and checkpoint_sha256 != self.meta.checkpoint_sha256
        ):
            problems.append(
                f"checkpoint SHA-256: index {self.meta.checkpoint_sha256[:12]}..., "
                f"queries {checkpoint_sha256[:12]}..."
            )
        if onnx_sha256 and self.meta.onnx_sha256 and onnx_sha256 != self.meta.onnx_sha256:
            problems.append(
                f"ONNX model SHA-256: index {self.meta.onnx_sha256[:12]}..., queries {onnx_sha256[:12]}..."
            )
        if problems:
            raise IndexCompatibilityError(
                "queries do not match the index: "
                + "; ".join(problems)
                + ". Search with the model and metric the index was built with, or rebuild the index"
            )

    # -- search ------------------------------------------------------------
    def set_search_params(self, **params: Any) -> None:
        """Change search-time parameters (``nprobe`` for ivf / ivfpq, ``ef_search`` for hnsw)."""
        allowed = INDEX_TYPES[self.meta.index_type].search_params
        unknown = set(params) - set(allowed)
        if unknown:
            raise IndexParameterError(
                f"{self.meta.index_type} index has no search parameter {sorted(unknown)}; "
                f"allowed: {list(allowed) or 'none'}"
            )
        self.meta.params.update({k: int(v) for k, v in params.items()})
        apply_search_params(self.index, self.meta.index_type, self.meta.params)

    def search(
        self,
        queries: np.ndarray,
        topk: int,
        query_pids: Sequence[int] | np.ndarray | None = None,
        query_camids: Sequence[int] | np.ndarray | None = None,
        batch_size: int = 4096,
    ) -> SearchResult:
        """Top-k gallery items per ``(Q, D)`` query, nearest first, ties in gallery order.

        With ``query_pids`` and ``query_camids`` the gallery items of the same identity seen by the same
        camera are removed first (the ReID evaluation protocol); other same-camera items stay.
        """
        queries = as_feature_matrix(queries, "query features")
        if queries.shape[1] != self.meta.dim:
            raise IndexCompatibilityError(
                f"query features have dimension {queries.shape[1]} but the index holds dimension "
                f"{self.meta.dim}; extract the queries with the model the index was built with"
            )
        if topk < 1:
            raise ValueError(f"topk must be >= 1, got {topk}")
        filtering = query_pids is not None or query_camids is not None
        if filtering:
            if query_pids is None or query_camids is None:
                raise ValueError("camera filtering needs both query_pids and query_camids")
            q_pids = _optional_ids(query_pids, len(queries), "query_pids")
            q_camids = _optional_ids(query_camids, len(queries), "query_camids")
            if (self.pids < 0).all():
                raise IndexCompatibilityError(
                    "same-identity-same-camera filtering needs gallery pids, but this index was built "
                    "without them (all -1); rebuild it from features that carry pids/camids"
                )
        if self.meta.normalized:
            queries = l2_normalize(queries)
        out_i = np.full((len(queries), topk), -1, dtype=np.int64)
        out_d = np.full((len(queries), topk), np.inf, dtype=np.float32)
        pair_counts = _pair_counts(self.pids, self.camids) if filtering else {}
        for start in range(0, len(queries), batch_size):
            stop = min(start + batch_size, len(queries))
            if filtering:
                ids = (q_pids[start:stop], q_camids[start:stop])
                # A query of unknown identity (-1) excludes nothing: unknowns never match each other.
                excluded = np.array(
                    [pair_counts.get((int(p), int(c)), 0) if p >= 0 else 0 for p, c in zip(*ids)]
                )
            else:
                ids, excluded = None, np.zeros(stop - start, dtype=np.int64)
            self._search_block(queries[start:stop], excluded, ids, out_i[start:stop], out_d[start:stop])
        return SearchResult(indices=out_i, distances=out_d)

    def _search_block(
        self,
        block: np.ndarray,
        excluded: np.ndarray,
        ids: tuple[np.ndarray, np.ndarray] | None,
        out_i: np.ndarray,
        out_d: np.ndarray,
    ) -> None:
        """Fill ``out_i``/``out_d`` (Q, k) for ``block`` (Q, D); k grows until every cut is certain."""
        topk = out_i.shape[1]
        # One more than needed, so that a tie at the cut is visible.
        fetch = int(min(len(self), topk + excluded.max() + 1))
        pending = np.arange(len(block))
        while len(pending):
            dist, idx = self.index.search(block[pending], fetch)
            dist = self._to_distance(dist)
            missing = idx < 0
            dist[missing] = np.inf
            # Stable order: by distance, then by gallery index (the evaluator's tie rule); holes last.
            order = np.lexsort((np.where(missing, len(self), idx), dist), axis=1)
            dist, idx = np.take_along_axis(dist, order, 1), np.take_along_axis(idx, order, 1)
            missing = idx < 0
            farthest_fetched = dist[:, -1].copy()
            drop = missing
            if ids is not None:
                q_pids, q_camids = ids[0][pending, None], ids[1][pending, None]
                safe = np.maximum(idx, 0)
                drop = drop | ((self.pids[safe] == q_pids) & (self.camids[safe] == q_camids) & (q_pids >= 0))
            # Move the kept items to the front, keeping their order.
            keep_first = np.argsort(drop, axis=1, kind="stable")
            dist, idx = np.take_along_axis(dist, keep_first, 1), np.take_along_axis(idx, keep_first, 1)
            num_kept = (~drop).sum(axis=1)
            # Items beyond the fetch are at least as far as the farthest fetched one: if that ties the k-th
            # kept item (or too few were kept), an equally near item with a smaller index may be missing.
            can_grow = ~missing.any(axis=1) & (fetch < len(self))
            kth = dist[:, min(topk, fetch) - 1]
            retry = can_grow & ((num_kept < topk) | (kth >= farthest_fetched))
            done = ~retry
            width = min(topk, fetch)
            rows = pending[done]
            cols = np.arange(width)[None, :] < num_kept[done, None]
            out_i[rows, :width] = np.where(cols, idx[done, :width], -1)
            out_d[rows, :width] = np.where(cols, dist[done, :width], np.inf)
            pending = pending[retry]
            fetch = int(min(len(self), fetch * 2))

    def _to_distance(self, raw: np.ndarray) -> np.ndarray:
        # FAISS returns inner products for the cosine index: turn them into cosine distances.
        return (1.0 - raw).astype(np.float32) if self.meta.metric == "cosine" else raw.astype(np.float32)

    # -- paths -------------------------------------------------------------
    def gallery_path(self, i: int) -> str:
        """Absolute path of gallery item ``i``, checked to exist and to lie inside the gallery root."""
        return resolve_inside_root(self.meta.root, str(self.paths[i]))


def _pair_counts(pids: np.ndarray, camids: np.ndarray) -> dict[tuple[int, int], int]:
    pairs, counts = np.unique(np.stack([pids, camids], axis=1), axis=0, return_counts=True)
    return {(int(p), int(c)): int(n) for (p, c), n in zip(pairs, counts)}
