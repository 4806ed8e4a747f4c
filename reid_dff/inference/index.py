"""A FAISS gallery index that knows what it holds: paths, identities, cameras, metric and model.

On disk an index is a directory of three files, each written atomically:

* ``index.faiss`` -- the FAISS index (``faiss.write_index`` into a temporary file, then renamed);
* ``items.npz``   -- ``paths`` (relative to the gallery root), ``pids`` and ``camids`` (-1 when unknown),
  plain arrays loaded with ``allow_pickle=False``;
* ``meta.json``   -- format version, dimension, metric, normalization, index type and parameters, model
  name, checkpoint SHA-256, gallery root, and the size and SHA-256 of the two other files.

``meta.json`` is written last and pins the other two by hash, so a directory left half-written by a crash
(or files copied from two different indexes) is refused on load instead of silently mixing galleries.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faiss
import numpy as np

from ..evaluation.distance import as_feature_matrix, l2_normalize
from ..utils import atomic_open, atomic_write_json, sha256_file
from .features_file import FeatureSet

logger = logging.getLogger(__name__)

INDEX_FORMAT = "reid-dff-gallery-index"
INDEX_VERSION = 1
INDEX_FILE = "index.faiss"
ITEMS_FILE = "items.npz"
META_FILE = "meta.json"

# Distances reported to users follow the evaluator's conventions: cosine distance = 1 - cos(q, g) on
# L2-normalized features; euclidean = squared L2 distance (what torchreid and FAISS both compute).
METRICS = ("cosine", "euclidean")


class IndexFormatError(ValueError):
    """An index directory is missing files, is corrupt, or its files do not belong together."""


class IndexCompatibilityError(ValueError):
    """Queries or a model do not match the index (dimension, normalization, model or checkpoint)."""


class UnsafeIndexPathError(ValueError):
    """A gallery path stored in an index escapes the gallery root or is absolute."""


class IndexParameterError(ValueError):
    """An index type, metric or build/search parameter that does not exist or does not fit the gallery."""


@dataclass
class SearchResult:
    """Top-k neighbours per query: ``indices`` (Q, k) into the gallery (-1 = none) and ``distances`` (Q, k)."""

    indices: np.ndarray
    distances: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)


# ---------------------------------------------------------------------------- index types (registry)
def _default_nlist(num_vectors: int) -> int:
    # The FAISS guideline is ~4*sqrt(N) lists with at least 39 training points per centroid.
    return max(1, min(int(4 * math.sqrt(max(num_vectors, 1))), num_vectors // 39))


def _faiss_metric(metric: str) -> int:
    return faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2


def _make_flat(dim: int, metric: str, params: dict, num_vectors: int) -> faiss.Index:
    return faiss.IndexFlatIP(dim) if metric == "cosine" else faiss.IndexFlatL2(dim)


def _ivf_defaults(params: dict, num_vectors: int, name: str) -> None:
    params.setdefault("nlist", _default_nlist(num_vectors))
    params.setdefault("nprobe", 16)
    # k-means runs on at most this many sampled vectors per list (FAISS's own default is 256, which on a
    # 1M gallery means clustering all of it; FAISS warns below 39).
    params.setdefault("train_per_list", 64)
    if params["nlist"] < 1 or params["nlist"] > max(num_vectors, 1):
        raise IndexParameterError(
            f"{name} needs 1 <= nlist <= number of gallery vectors ({num_vectors}); got nlist={params['nlist']}"
        )


def _owning_ivf(index: faiss.Index, quantizer: faiss.Index, params: dict) -> faiss.Index:
    index.own_fields = True  # the IVF index owns (and frees) its quantizer
    quantizer.this.disown()
    index.cp.max_points_per_centroid = int(params["train_per_list"])
    return index


def _make_ivf(dim: int, metric: str, params: dict, num_vectors: int) -> faiss.Index:
    _ivf_defaults(params, num_vectors, "ivf")
    quantizer = _make_flat(dim, metric, {}, num_vectors)
    index = faiss.IndexIVFFlat(quantizer, dim, int(params["nlist"]), _faiss_metric(metric))
    return _owning_ivf(index, quantizer, params)


def _default_pq_m(dim: int) -> int:
    # One sub-quantizer per 8 dimensions (a 2048-d embedding -> 256 bytes per image, 32x smaller than
    # float32), or the largest divisor of dim below that.
    return next(m for m in range(max(1, dim // 8), 0, -1) if dim % m == 0)


def _make_ivfpq(dim: int, metric: str, params: dict, num_vectors: int) -> faiss.Index:
    _ivf_defaults(params, num_vectors, "ivfpq")
    params.setdefault("pq_m", _default_pq_m(dim))
    params.setdefault("pq_nbits", 8)
    m, nbits = int(params["pq_m"]), int(params["pq_nbits"])
    if m < 1 or dim % m:
        raise IndexParameterError(f"ivfpq needs pq_m to divide the feature dimension {dim}; got pq_m={m}")
    if not 1 <= nbits <= 16:
        raise IndexParameterError(f"ivfpq needs 1 <= pq_nbits <= 16; got pq_nbits={nbits}")
    if num_vectors < 2**nbits:
        raise IndexParameterError(
            f"ivfpq with pq_nbits={nbits} trains {2**nbits} centroids per sub-quantizer and needs at least "
            f"that many gallery vectors ({num_vectors} given): lower pq_nbits or use a flat/ivf index"
        )
    quantizer = _make_flat(dim, metric, {}, num_vectors)
    index = faiss.IndexIVFPQ(quantizer, dim, int(params["nlist"]), m, nbits, _faiss_metric(metric))
    recommended = index.pq.cp.min_points_per_centroid * 2**nbits
    if num_vectors < recommended:
        logger.warning(
            "ivfpq: %d gallery vectors train %d centroids per sub-quantizer, where FAISS recommends at least "
            "%d; the codes will be coarse (a flat or ivf index is exact on a gallery this small)",
            num_vectors,
            2**nbits,
            recommended,
        )
    index.pq.cp.min_points_per_centroid = 1  # warned once here, not once per sub-quantizer by FAISS
    return _owning_ivf(index, quantizer, params)


def _make_hnsw(dim: int, metric: str, params: dict, num_vectors: int) -> faiss.Index:
    params.setdefault("M", 32)
    params.setdefault("ef_construction", 40)
    params.setdefault("ef_search", 64)
    index = faiss.IndexHNSWFlat(dim, int(params["M"]), _faiss_metric(metric))
    index.hnsw.efConstruction = int(params["ef_construction"])
    return index


def _set_nprobe(index: faiss.Index, params: dict) -> None:
    faiss.extract_index_ivf(index).nprobe = int(params["nprobe"])


def _set_ef_search(index: faiss.Index, params: dict) -> None:
    faiss.downcast_index(index).hnsw.efSearch = int(params["ef_search"])


@dataclass(frozen=True)
class IndexType:
    """How to make one kind of FAISS index and which parameters it takes."""

    # factory(dim, metric, params, num_vectors) -> untrained index; fills ``params`` with defaults in place.
    make: Callable[[int, str, dict, int], faiss.Index]
    params: tuple[str, ...] = ()
    # The subset that only affects search and may be changed on a loaded index, and how to set it.
    search_params: tuple[str, ...] = ()
    apply_search_params: Callable[[faiss.Index, dict], None] = lambda index, params: None
    # The most rows training uses (FAISS subsamples beyond it anyway), from the filled-in parameters;
    # larger galleries are trained on a fixed-seed sample of that many rows, read without the rest.
    train_rows: Callable[[dict], int] = lambda params: 0


def _ivf_train_rows(params: dict) -> int:
    return int(params["nlist"]) * int(params["train_per_list"])


def _ivfpq_train_rows(params: dict) -> int:
    # The product quantizer's k-means samples at most 256 points per centroid (FAISS's default).
    return max(_ivf_train_rows(params), 256 * 2 ** int(params["pq_nbits"]))


_IVF_PARAMS = ("nlist", "nprobe", "train_per_list")
INDEX_TYPES: dict[str, IndexType] = {
    "flat": IndexType(_make_flat),
    "ivf": IndexType(_make_ivf, _IVF_PARAMS, ("nprobe",), _set_nprobe, _ivf_train_rows),
    # Product-quantized inverted lists: pq_m bytes per image (pq_nbits 8) instead of 4 x dim; distances
    # are approximate (computed on the codes), so rankings can differ from exact search at any nprobe.
    "ivfpq": IndexType(
        _make_ivfpq, (*_IVF_PARAMS, "pq_m", "pq_nbits"), ("nprobe",), _set_nprobe, _ivfpq_train_rows
    ),
    "hnsw": IndexType(_make_hnsw, ("M", "ef_construction", "ef_search"), ("ef_search",), _set_ef_search),
}


def _apply_search_params(index: faiss.Index, index_type: str, params: dict) -> None:
    INDEX_TYPES[index_type].apply_search_params(index, params)


# ---------------------------------------------------------------------------- helpers
def _feature_rows(features: Any) -> np.ndarray:
    """The ``(N, D)`` gallery matrix as a numpy array (a memory map stays one), shape checked only."""
    if isinstance(features, np.ndarray):  # includes np.memmap: no copy
        array = features
    else:
        array = as_feature_matrix(features, "gallery features")  # torch tensors, lists
    if array.ndim != 2:
        raise ValueError(f"gallery features must be a 2-D (N, D) feature matrix, got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"gallery features is empty (shape {tuple(array.shape)}); expected at least one (1, D) row"
        )
    return array


def _finite_rows(rows: np.ndarray, first_row: int) -> np.ndarray:
    """``rows`` as float32 C-contiguous, refusing NaN/inf (reported by gallery row number)."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    finite = np.isfinite(rows).all(axis=1)
    if not finite.all():
        bad = first_row + int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"gallery features holds NaN or infinite values (first in row {bad}); features must be finite"
        )
    return rows


def _check_relative_path(path: str) -> str:
    norm = os.path.normpath(path)
    if os.path.isabs(path) or norm == ".." or norm.startswith(".." + os.sep):
        raise UnsafeIndexPathError(
            f"gallery path {path!r} must be relative to the gallery root and stay inside it"
        )
    return norm


def _optional_ids(values: Sequence[int] | np.ndarray | None, count: int, name: str) -> np.ndarray:
    if values is None:
        return np.full(count, -1, dtype=np.int64)
    arr = np.asarray(values, dtype=np.int64).reshape(-1)
    if len(arr) != count:
        raise ValueError(f"{name} has {len(arr)} entries but there are {count} gallery features")
    return arr


# ---------------------------------------------------------------------------- the index
@dataclass
class IndexMetadata:
    """Everything about an index except its vectors (stored in ``meta.json``)."""

    dim: int
    metric: str
    index_type: str
    params: dict = field(default_factory=dict)
    model_name: str = ""
    checkpoint_sha256: str = ""
    checkpoint_path: str = ""
    root: str = ""

    @property
    def normalized(self) -> bool:
        """Whether vectors are L2-normalized before they are added and searched (cosine metric)."""
        return self.metric == "cosine"


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
        rel_paths = np.array([_check_relative_path(str(p)) for p in paths], dtype=np.str_)
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
        _apply_search_params(index, index_type, params)
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
        features: FeatureSet,
        index_type: str = "flat",
        params: dict | None = None,
        metric: str | None = None,
        root: str | None = None,
    ) -> GalleryIndex:
        """Index a :class:`FeatureSet` (paths, ids, model and checkpoint hash travel with it)."""
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
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        index_path = os.path.join(directory, INDEX_FILE)
        items_path = os.path.join(directory, ITEMS_FILE)
        with atomic_open(index_path, "wb") as f:
            writer = faiss.PyCallbackIOWriter(f.write)
            faiss.write_index(self.index, writer)
            del writer  # flushes FAISS's buffer into f before atomic_open renames it
        with atomic_open(items_path, "wb") as f:
            np.savez(f, paths=self.paths, pids=self.pids, camids=self.camids)
        meta = {
            "format": INDEX_FORMAT,
            "version": INDEX_VERSION,
            "num_items": len(self),
            "dim": self.meta.dim,
            "metric": self.meta.metric,
            "normalized": self.meta.normalized,
            "index_type": self.meta.index_type,
            "params": self.meta.params,
            "model": {
                "name": self.meta.model_name,
                "checkpoint_sha256": self.meta.checkpoint_sha256,
                "checkpoint_path": self.meta.checkpoint_path,
            },
            "root": self.meta.root,
            "files": {
                name: {"bytes": os.path.getsize(path), "sha256": sha256_file(path)}
                for name, path in ((INDEX_FILE, index_path), (ITEMS_FILE, items_path))
            },
        }
        atomic_write_json(os.path.join(directory, META_FILE), meta)

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
    ) -> GalleryIndex:
        """Read an index directory written by :meth:`save`; ``root`` overrides the stored gallery root.

        The keyword arguments, when given, are checked with :meth:`check_compatible` before returning.
        """
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise IndexFormatError(
                f"index directory {directory} does not exist; build one with tools/build_index.py"
            )
        meta_path = os.path.join(directory, META_FILE)
        if not os.path.isfile(meta_path):
            raise IndexFormatError(
                f"{meta_path} is missing: {directory} is not a reid-dff index (or its build was interrupted); "
                "rebuild it with tools/build_index.py"
            )
        try:
            with open(meta_path, encoding="utf-8") as f:
                raw = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise IndexFormatError(f"cannot read {meta_path}: {e}") from e
        meta = _parse_meta(raw, meta_path)
        for name, expected in raw["files"].items():
            path = os.path.join(directory, name)
            if not os.path.isfile(path):
                raise IndexFormatError(f"{path} is missing; rebuild the index with tools/build_index.py")
            if os.path.getsize(path) != expected["bytes"] or (
                verify_hashes and sha256_file(path) != expected["sha256"]
            ):
                raise IndexFormatError(
                    f"{path} does not match {meta_path} (size or SHA-256 differ): the files come from "
                    "different builds or were modified; rebuild the index with tools/build_index.py"
                )
        try:
            with open(os.path.join(directory, INDEX_FILE), "rb") as f:
                reader = faiss.PyCallbackIOReader(f.read)
                index = faiss.read_index(reader)
                del reader
        except RuntimeError as e:
            raise IndexFormatError(f"FAISS cannot read {os.path.join(directory, INDEX_FILE)}: {e}") from e
        try:
            with np.load(os.path.join(directory, ITEMS_FILE), allow_pickle=False) as items:
                paths, pids, camids = items["paths"], items["pids"], items["camids"]
        except (OSError, ValueError, KeyError) as e:
            raise IndexFormatError(
                f"cannot read {os.path.join(directory, ITEMS_FILE)} (expected arrays paths, pids, camids "
                f"without pickled objects): {e}"
            ) from e
        num = raw["num_items"]
        if index.d != meta.dim or index.ntotal != num or not (len(paths) == len(pids) == len(camids) == num):
            raise IndexFormatError(
                f"{directory}: inconsistent index (meta says {num} items of dim {meta.dim}; FAISS holds "
                f"{index.ntotal} of dim {index.d}; items.npz holds {len(paths)} paths); rebuild it"
            )
        if root is not None:
            meta.root = os.path.abspath(root)
        _apply_search_params(index, meta.index_type, meta.params)
        loaded = cls(index, meta, paths, pids.astype(np.int64), camids.astype(np.int64))
        loaded.check_compatible(dim, normalized, model_name, checkpoint_sha256)
        return loaded

    # -- compatibility -----------------------------------------------------
    def check_compatible(
        self,
        dim: int | None = None,
        normalized: bool | None = None,
        model_name: str | None = None,
        checkpoint_sha256: str | None = None,
    ) -> None:
        """Raise :class:`IndexCompatibilityError` listing every property that differs from the index."""
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
        _apply_search_params(self.index, self.meta.index_type, self.meta.params)

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


def _parse_meta(raw: Any, meta_path: str) -> IndexMetadata:
    if not isinstance(raw, dict) or raw.get("format") != INDEX_FORMAT:
        raise IndexFormatError(f"{meta_path} is not a reid-dff index description (format {INDEX_FORMAT!r})")
    if raw.get("version") != INDEX_VERSION:
        raise IndexFormatError(
            f"{meta_path} has index format version {raw.get('version')}; this reid-dff reads version "
            f"{INDEX_VERSION}: rebuild the index with tools/build_index.py"
        )
    required = ("num_items", "dim", "metric", "normalized", "index_type", "params", "model", "root", "files")
    missing = [k for k in required if k not in raw]
    if missing:
        raise IndexFormatError(f"{meta_path} lacks keys {missing}; rebuild the index")
    if raw["metric"] not in METRICS or raw["index_type"] not in INDEX_TYPES:
        raise IndexFormatError(
            f"{meta_path}: unknown metric {raw['metric']!r} or index type {raw['index_type']!r}"
        )
    files = raw["files"]
    if not (
        isinstance(files, dict)
        and set(files) == {INDEX_FILE, ITEMS_FILE}
        and all(
            isinstance(entry, dict)
            and type(entry.get("bytes")) is int
            and isinstance(entry.get("sha256"), str)
            for entry in files.values()
        )
    ):
        raise IndexFormatError(
            f"{meta_path}: 'files' must give the bytes and sha256 of {INDEX_FILE} and {ITEMS_FILE}"
        )
    params, model = raw["params"], raw["model"]
    if not (
        isinstance(params, dict)
        and set(params) <= set(INDEX_TYPES[raw["index_type"]].params)
        and all(type(v) is int for v in params.values())
    ):
        raise IndexFormatError(
            f"{meta_path}: 'params' must map {raw['index_type']} parameters "
            f"({', '.join(INDEX_TYPES[raw['index_type']].params) or 'none'}) to integers, got {params!r}"
        )
    if not (
        isinstance(model, dict)
        and all(isinstance(model.get(k, ""), str) for k in ("name", "checkpoint_sha256", "checkpoint_path"))
        and isinstance(raw["root"], str)
        and type(raw["dim"]) is int
        and type(raw["num_items"]) is int
    ):
        raise IndexFormatError(
            f"{meta_path}: 'model' must be an object of strings, 'root' a string, 'dim' and 'num_items' integers"
        )
    meta = IndexMetadata(
        dim=int(raw["dim"]),
        metric=raw["metric"],
        index_type=raw["index_type"],
        params=dict(raw["params"]),
        model_name=raw["model"].get("name", ""),
        checkpoint_sha256=raw["model"].get("checkpoint_sha256", ""),
        checkpoint_path=raw["model"].get("checkpoint_path", ""),
        root=raw["root"],
    )
    if meta.normalized != bool(raw["normalized"]):
        raise IndexFormatError(f"{meta_path}: 'normalized' contradicts metric {meta.metric!r}")
    return meta


def resolve_inside_root(root: str, rel_path: str, what: str = "gallery", source: str = "the index") -> str:
    """``root/rel_path`` made absolute, refusing paths that leave ``root`` or do not exist.

    ``what`` ("gallery", "query") and ``source`` ("the index", "the search report") only word the errors.
    """
    if not root:
        raise UnsafeIndexPathError(
            f"{what} path {rel_path!r} has no {what} root: {source} was made without one; "
            f"pass the {what} root (e.g. --gallery-root) to use its images"
        )
    root_real = os.path.realpath(root)
    full = os.path.realpath(os.path.join(root_real, rel_path))
    if os.path.isabs(rel_path) or os.path.commonpath([root_real, full]) != root_real:
        raise UnsafeIndexPathError(
            f"{what} path {rel_path!r} resolves to {full}, outside the {what} root {root_real}; "
            f"{source} is corrupt or was tampered with"
        )
    if not os.path.isfile(full):
        raise FileNotFoundError(
            f"{what} image {full} (listed in {source} as {rel_path!r}) does not exist; pass the right "
            f"{what} root or rebuild {source}"
        )
    return full
