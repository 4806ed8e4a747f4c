"""The kinds of FAISS gallery index (``flat``, ``ivf``, ``ivfpq``, ``hnsw``): how each is made, which build and
search parameters it takes and their defaults for a gallery size."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faiss

from ..errors import ReidDffError

__all__ = ["INDEX_TYPES", "METRICS", "IndexParameterError", "IndexType", "apply_search_params"]

logger = logging.getLogger(__name__)

# Distances reported to users follow the evaluator's conventions: cosine distance = 1 - cos(q, g) on
# L2-normalized features; euclidean = squared L2 distance (what torchreid and FAISS both compute).
METRICS = ("cosine", "euclidean")


class IndexParameterError(ReidDffError):
    """An index type, metric or build/search parameter that does not exist or does not fit the gallery."""


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


# The FAISS type stubs know the base faiss.Index only: SWIG attributes of the subclasses are reached via Any.
def _owning_ivf(index: Any, quantizer: Any, params: dict) -> faiss.Index:
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
    index: Any = faiss.IndexHNSWFlat(dim, int(params["M"]), _faiss_metric(metric))
    index.hnsw.efConstruction = int(params["ef_construction"])
    return index


def _set_nprobe(index: faiss.Index, params: dict) -> None:
    faiss.extract_index_ivf(index).nprobe = int(params["nprobe"])


def _set_ef_search(index: faiss.Index, params: dict) -> None:
    hnsw: Any = faiss.downcast_index(index)
    hnsw.hnsw.efSearch = int(params["ef_search"])


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


def apply_search_params(index: faiss.Index, index_type: str, params: dict) -> None:
    """Set the search-time parameters of ``params`` (e.g. ``nprobe``) on ``index`` of kind ``index_type``."""
    INDEX_TYPES[index_type].apply_search_params(index, params)
