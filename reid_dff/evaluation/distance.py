"""Query-gallery distances computed one query block at a time (never a full Q x G matrix).

Every metric is written as ``distance(q, g) = q' . g + bias_g + offset_q`` with a prepared query ``q'``:

- ``cosine``: ``q' = -normalize(q)``, ``g = normalize(g)``, no bias, offset 1 -> ``1 - cos(q, g)``;
- ``euclidean``: ``q' = -2 q``, ``bias_g = |g|^2``, offset ``|q|^2`` -> ``|q - g|^2``, the squared distance
  torchreid's ``compute_distance_matrix(..., "euclidean")`` returns (same ordering as the true distance).

Ranking only needs the *key* ``q' . g + bias_g``: in exact arithmetic the per-query offset does not change
the order, and dropping it saves a pass over each block. (In float32, adding the offset can round two
nearly equal keys to the same distance; ranking on the keys keeps such a pair in the order of their
unrounded values.) Scaling a query by -1 or -2 is exact in floating point, so the key of ``cosine`` is bit
for bit ``-(normalize(q) . normalize(g))``.

Equal gallery rows get bit-identical keys: a BLAS product may round the same dot product differently
depending on where a column falls in the block, which would break the "ties in gallery order" rule (and
make results depend on the block size), so each duplicate column is overwritten with its first twin's.
Rows are compared as the metric sees them (for ``cosine`` after normalisation, so ``x`` and ``2 x`` are
twins) and by value (``-0.0`` equals ``0.0``). Distinct rows whose distances are equal only in exact
arithmetic (say, integer features) are float32 products like any other: their order follows the rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..errors import ReidDffError

__all__ = [
    "FeatureMatrixError",
    "DISTANCES",
    "PairwiseDistance",
    "as_feature_matrix",
    "build_distance",
    "cosine_distance",
    "euclidean_distance",
    "l2_normalize",
    "query_block_rows",
]

FeatureInput = np.ndarray | torch.Tensor | Sequence

# torch.nn.functional.normalize's default: a zero vector stays zero instead of becoming NaN.
NORM_EPS = 1e-12
# Rows normalised per step, so normalising a large gallery needs no full-size temporary.
_NORMALIZE_CHUNK_ROWS = 8192
_MIB = 1 << 20


class FeatureMatrixError(ReidDffError):
    """Features that cannot be ranked: not ``(N, D)``, no row, or NaN/infinite values."""


def as_feature_matrix(features: FeatureInput, name: str) -> np.ndarray:
    """``(N, D)`` float32 C-contiguous numpy view/copy of numpy, torch or nested-list features; finite."""
    if isinstance(features, torch.Tensor):
        features = features.detach().to("cpu", torch.float32).numpy()
    array = np.ascontiguousarray(np.asarray(features), dtype=np.float32)
    if array.ndim != 2:
        raise FeatureMatrixError(
            f"{name} must be a 2-D (N, D) feature matrix, got shape {tuple(array.shape)}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise FeatureMatrixError(
            f"{name} is empty (shape {tuple(array.shape)}); expected at least one (1, D) row"
        )
    if not np.isfinite(array).all():
        bad = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
        raise FeatureMatrixError(
            f"{name} holds NaN or infinite values (first in row {bad}); features must be finite"
        )
    return array


def query_block_rows(bytes_per_row: int, max_memory_mb: float, num_rows: int) -> int:
    """Query rows per block so that ``rows * bytes_per_row`` stays within ``max_memory_mb`` (at least 1)."""
    if max_memory_mb <= 0:
        raise ValueError(f"max_memory_mb (TEST.MAX_MEMORY_MB) must be positive, got {max_memory_mb}")
    return int(max(1, min(num_rows, (max_memory_mb * _MIB) // max(1, bytes_per_row))))


def l2_normalize(features: np.ndarray) -> np.ndarray:
    """A new float32 ``(N, D)`` array of unit rows (``torch.nn.functional.normalize`` semantics)."""
    out = np.empty_like(features, dtype=np.float32)
    for start in range(0, features.shape[0], _NORMALIZE_CHUNK_ROWS):
        chunk = features[start : start + _NORMALIZE_CHUNK_ROWS]
        norms = np.sqrt(np.einsum("ij,ij->i", chunk, chunk, dtype=np.float32))
        np.divide(
            chunk, np.maximum(norms, np.float32(NORM_EPS))[:, None], out=out[start : start + len(chunk)]
        )
    return out


class PairwiseDistance:
    """Distances ``q' . g + bias_g + offset_q`` between prepared queries ``(Q, D)`` and a gallery ``(G, D)``."""

    def __init__(
        self,
        name: str,
        prepared_queries: np.ndarray,
        gallery: np.ndarray,
        gallery_bias: np.ndarray | None,
        query_offsets: np.ndarray,
    ):
        self.name = name
        self.queries = prepared_queries
        self.gallery = gallery
        self.gallery_bias = gallery_bias
        self.query_offsets = query_offsets
        # Equal prepared rows have equal keys in exact arithmetic (the bias is a function of the row).
        self._first_twin = _first_twins(gallery)
        self._twins_of_columns: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    @property
    def num_queries(self) -> int:
        return self.queries.shape[0]

    @property
    def num_gallery(self) -> int:
        return self.gallery.shape[0]

    def ranking_keys(
        self, rows: slice | np.ndarray, columns: slice = slice(None), out: np.ndarray | None = None
    ) -> np.ndarray:
        """``(B, G')`` float32 keys of query ``rows`` against gallery ``columns``: distance minus a per-row constant."""
        gallery = self.gallery[columns]
        keys = np.matmul(self.queries[rows], gallery.T, out=out)
        if self.gallery_bias is not None:
            keys += self.gallery_bias[columns]
        if self._first_twin is not None:
            twins, firsts = self._twins_within(columns)
            if len(twins):
                keys[:, twins] = keys[:, firsts]
        return keys

    def _twins_within(self, columns: slice) -> tuple[np.ndarray, np.ndarray]:
        """Local indices of the duplicate columns of a gallery slice and of their first twin in it."""
        start, stop, step = columns.indices(self.num_gallery)
        if step != 1:
            raise ValueError("gallery columns must be a contiguous slice")
        cached = self._twins_of_columns.get((start, stop))
        if cached is None:
            assert self._first_twin is not None  # only called when the gallery has twins
            groups = self._first_twin[start:stop]
            _, first_in_slice, inverse = np.unique(groups, return_index=True, return_inverse=True)
            firsts = first_in_slice[inverse]
            twins = np.flatnonzero(firsts != np.arange(stop - start))
            cached = self._twins_of_columns[(start, stop)] = (twins, firsts[twins])
        return cached

    def distances(
        self, rows: slice | np.ndarray, columns: slice = slice(None), out: np.ndarray | None = None
    ) -> np.ndarray:
        """``(B, G')`` float32 distances of query ``rows`` against gallery ``columns``."""
        keys = self.ranking_keys(rows, columns, out=out)
        keys += self.query_offsets[rows][:, None]
        return keys

    def pair_distances(self, rows: np.ndarray, columns: np.ndarray, max_memory_mb: float = 64) -> np.ndarray:
        """``(P,)`` float32 distances of the pairs ``(rows[p], columns[p])``, gathering a bounded chunk at a time."""
        out = np.empty(rows.shape[0], dtype=np.float32)
        step = max(
            1, int(max_memory_mb * (1 << 20)) // (8 * self.queries.shape[1])
        )  # two gathered rows per pair
        for start in range(0, rows.shape[0], step):
            r, c = rows[start : start + step], columns[start : start + step]
            out[start : start + step] = np.einsum(
                "ij,ij->i", self.queries[r], self.gallery[c], dtype=np.float32
            )
        if self.gallery_bias is not None:
            out += self.gallery_bias[columns]
        out += self.query_offsets[rows]
        return out


def _canonical_rows(matrix: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` with every ``-0.0`` turned into ``0.0``, so equal values have equal bytes."""
    return matrix[start:stop] + np.float32(0)


def _first_twins(matrix: np.ndarray) -> np.ndarray | None:
    """For each row the index of the first row equal to it (by value), or ``None`` if all rows differ."""
    hashes = np.empty(len(matrix), dtype=np.int64)
    for start in range(0, len(matrix), _NORMALIZE_CHUNK_ROWS):
        chunk = _canonical_rows(matrix, start, start + _NORMALIZE_CHUNK_ROWS)
        hashes[start : start + len(chunk)] = [hash(row.tobytes()) for row in chunk]
    _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    candidates = np.flatnonzero(counts[inverse] > 1)
    if not len(candidates):
        return None
    first = np.arange(len(matrix))
    seen: dict[bytes, int] = {}
    for row in candidates:  # ascending, so the first occurrence wins; equal hashes are compared exactly
        first[row] = seen.setdefault(_canonical_rows(matrix, int(row), int(row) + 1).tobytes(), int(row))
    return first if (first != np.arange(len(matrix))).any() else None


def cosine_distance(query_features: np.ndarray, gallery_features: np.ndarray) -> PairwiseDistance:
    """``1 - cos`` on L2-normalised features (torchreid's ``cosine_distance``)."""
    queries = l2_normalize(query_features)
    np.negative(queries, out=queries)
    gallery = l2_normalize(gallery_features)
    raw_first = _first_twins(gallery_features)
    if raw_first is not None:  # equal inputs get equal unit rows, however their norms were summed
        twins = np.flatnonzero(raw_first != np.arange(len(raw_first)))
        gallery[twins] = gallery[raw_first[twins]]
    offsets = np.ones(queries.shape[0], dtype=np.float32)
    return PairwiseDistance("cosine", queries, gallery, None, offsets)


def euclidean_distance(query_features: np.ndarray, gallery_features: np.ndarray) -> PairwiseDistance:
    """Squared Euclidean distance ``|q|^2 + |g|^2 - 2 q.g`` (torchreid's ``euclidean_squared_distance``)."""
    queries = np.multiply(query_features, np.float32(-2.0), dtype=np.float32)
    gallery = gallery_features
    gallery_sq = np.einsum("ij,ij->i", gallery, gallery, dtype=np.float32)
    query_sq = np.einsum("ij,ij->i", query_features, query_features, dtype=np.float32)
    return PairwiseDistance("euclidean", queries, gallery, gallery_sq, query_sq)


DISTANCES: dict[str, Callable[[np.ndarray, np.ndarray], PairwiseDistance]] = {
    "cosine": cosine_distance,
    "euclidean": euclidean_distance,
}


def _ready(features: FeatureInput, name: str) -> np.ndarray:
    if (
        isinstance(features, np.ndarray)
        and features.dtype == np.float32
        and features.ndim == 2
        and features.flags.c_contiguous
    ):
        return features
    return as_feature_matrix(features, name)


def build_distance(
    metric: str, query_features: FeatureInput, gallery_features: FeatureInput
) -> PairwiseDistance:
    """The :class:`PairwiseDistance` of ``metric`` (a key of ``DISTANCES``) between two feature matrices.

    Float32 C-contiguous numpy matrices are used as they are; anything else goes through
    :func:`as_feature_matrix` (float64, torch tensors, lists).
    """
    try:
        factory = DISTANCES[metric]
    except KeyError:
        from ..config import ConfigError  # a ValueError whose message names the config key

        raise ConfigError(
            f"unknown retrieval metric {metric!r} (TEST.METRIC); expected one of {sorted(DISTANCES)}"
        ) from None
    query_features = _ready(query_features, "query features")
    gallery_features = _ready(gallery_features, "gallery features")
    if query_features.shape[1] != gallery_features.shape[1]:
        raise ValueError(
            f"query features have dimension {query_features.shape[1]} but gallery features have "
            f"{gallery_features.shape[1]}; both must come from the same model"
        )
    return factory(query_features, gallery_features)
