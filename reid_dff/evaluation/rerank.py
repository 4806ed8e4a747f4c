"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) on FAISS neighbours and sparse matrices.

The established implementation (torchreid's ``re_ranking``) builds several dense ``(Q+G) x (Q+G)`` matrices
(about 6 GB at Market-1501 scale, far more at MSMT17). The same quantities are sparse: each item's
k-reciprocal encoding ``V`` has a few dozen non-zeros, and the Jaccard distance between two items only
involves the features both encodings share. So we keep:

- the ``k1 + 1`` nearest neighbours of every item (FAISS exact search, ``(N, k1 + 1)``);
- each item's largest squared distance to any item (torchreid normalises distances by it), from a blocked
  pass;
- ``V`` after query expansion, as a sparse ``(N, N)`` matrix,

and compute re-ranked query-gallery distances one query block at a time. The result equals torchreid's
``re_ranking(q_g, q_q, g_g, k1, k2, lambda)`` fed with ``compute_distance_matrix`` of the same metric
(cosine: ``1 - cos``; euclidean: the *squared* distance, which it squares again).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .distance import FeatureInput, as_feature_matrix, build_distance, query_block_rows

__all__ = ["KReciprocalReranker", "k_reciprocal_rerank"]

# Exact FAISS index (class name) whose neighbour order is the metric's distance order. FAISS is imported
# when re-ranking runs, so that training and plain evaluation work where it is not installed.
_KNN_INDEX = {"cosine": "IndexFlatIP", "euclidean": "IndexFlatL2"}
# Rows per step of the vectorised k-reciprocal tests (a (rows, k1+1, k1/2+1, k1+1) boolean temporary).
_RECIPROCAL_CHUNK_ROWS = 2048
# Bytes of temporaries per (query, shared feature, gallery item) triple in the Jaccard step.
_BYTES_PER_PAIR = 48


def _reciprocal_mask(neighbours: np.ndarray, k: int) -> np.ndarray:
    """``(N, k+1)`` bool: is the item's j-th neighbour one whose ``k + 1`` nearest include the item back."""
    forward = neighbours[:, : k + 1]
    mask = np.empty(forward.shape, dtype=bool)
    for start in range(0, forward.shape[0], _RECIPROCAL_CHUNK_ROWS):
        stop = min(start + _RECIPROCAL_CHUNK_ROWS, forward.shape[0])
        backward = neighbours[forward[start:stop], : k + 1]  # (rows, k+1, k+1)
        mask[start:stop] = (backward == np.arange(start, stop)[:, None, None]).any(axis=2)
    return mask


def _expanded_reciprocal_pairs(neighbours: np.ndarray, k1: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique ``(item, member)`` pairs of each item's expanded k-reciprocal set, sorted by item then member.

    The set ``R(i)`` of an item's k1-reciprocal neighbours grows by ``R_half(c)`` (the round(k1/2)-reciprocal
    set of a member ``c``) whenever more than two thirds of ``R_half(c)`` is already in ``R(i)``.
    """
    num_items = neighbours.shape[0]
    half = int(np.around(k1 / 2.0))  # np.around, as the reference: round half to even
    forward, reciprocal = neighbours[:, : k1 + 1], _reciprocal_mask(neighbours, k1)
    forward_half, reciprocal_half = neighbours[:, : half + 1], _reciprocal_mask(neighbours, half)
    half_size = reciprocal_half.sum(axis=1)
    items, members = [], []
    for start in range(0, num_items, _RECIPROCAL_CHUNK_ROWS):
        stop = min(start + _RECIPROCAL_CHUNK_ROWS, num_items)
        fwd, rec = forward[start:stop], reciprocal[start:stop]  # (rows, K)
        cand_half, cand_half_rec = forward_half[fwd], reciprocal_half[fwd]  # (rows, K, Kh)
        in_set = ((cand_half[..., None] == fwd[:, None, None, :]) & rec[:, None, None, :]).any(axis=3)
        shared = (in_set & cand_half_rec).sum(axis=2)  # |R_half(c) & R(i)|, (rows, K)
        accept = rec & (shared > 2.0 / 3 * half_size[fwd])
        row_ids = np.arange(start, stop)
        items.append(np.broadcast_to(row_ids[:, None], fwd.shape)[rec])
        members.append(fwd[rec])
        grow = accept[..., None] & cand_half_rec
        items.append(np.broadcast_to(row_ids[:, None, None], cand_half.shape)[grow])
        members.append(cand_half[grow])
    keys = np.unique(np.concatenate(items) * num_items + np.concatenate(members))
    return keys // num_items, keys % num_items


class KReciprocalReranker:
    """k-reciprocal re-ranked distances of ``(Q, D)`` queries to a ``(G, D)`` gallery, per query block."""

    def __init__(
        self,
        query_features: FeatureInput,
        gallery_features: FeatureInput,
        k1: int = 20,
        k2: int = 6,
        lambda_value: float = 0.3,
        metric: str = "cosine",
        max_memory_mb: float = 512,
    ):
        if int(k1) != k1 or k1 < 1 or int(k2) != k2 or k2 < 1:
            raise ValueError(
                f"re-ranking needs integers k1 >= 1 and k2 >= 1 (TEST.RERANK.K1/K2), got {k1}, {k2}"
            )
        if not 0.0 <= lambda_value <= 1.0:
            raise ValueError(f"re-ranking lambda (TEST.RERANK.LAMBDA) must lie in [0, 1], got {lambda_value}")
        qf = as_feature_matrix(query_features, "query_features")
        gf = as_feature_matrix(gallery_features, "gallery_features")
        build_distance(metric, qf[:1], gf[:1])  # validates the metric name and the feature dimensions
        self.k1, self.k2, self.lambda_value = int(k1), int(k2), float(lambda_value)
        self.max_memory_mb = max_memory_mb
        self.num_query, self.num_gallery = qf.shape[0], gf.shape[0]
        features = np.concatenate([qf, gf])
        self._distance = build_distance(metric, features, features)  # all items against all items
        num_items = features.shape[0]

        neighbours = self._nearest_neighbours(metric, min(num_items, max(self.k1 + 1, self.k2)))
        self._row_max_sq = self._largest_squared_distances()
        items, members = _expanded_reciprocal_pairs(neighbours, self.k1)
        weights = np.exp(-self._normalised_distances(items, members))
        weights /= np.bincount(items, weights=weights, minlength=num_items).astype(np.float32)[items]
        encoding = sp.csr_matrix((weights, (items, members)), shape=(num_items, num_items), dtype=np.float32)
        if self.k2 != 1:
            # Query expansion: each encoding becomes the mean of its k2 nearest neighbours' encodings.
            expand = neighbours[:, : self.k2]
            averaging = sp.csr_matrix(
                (
                    np.ones(expand.size, dtype=np.float32),
                    expand.ravel(),
                    np.arange(0, expand.size + 1, expand.shape[1]),
                ),
                shape=(num_items, num_items),
            )
            encoding = (averaging @ encoding) / np.float32(expand.shape[1])
            encoding = sp.csr_matrix(encoding, dtype=np.float32)
        self._query_encoding = encoding[: self.num_query].tocsr()
        self._gallery_encoding = encoding[self.num_query :].tocsc()  # (G, N): gallery items per feature
        column_sizes = np.diff(self._gallery_encoding.indptr)
        pattern = self._query_encoding.copy()
        pattern.data = np.ones_like(pattern.data)
        self._pairs_per_query = np.asarray(pattern @ column_sizes.astype(np.float32)).astype(np.int64)

    def _nearest_neighbours(self, metric: str, k: int) -> np.ndarray:
        """``(N, k)`` indices of each item's k nearest items (itself first), by FAISS exact search."""
        items = self._distance.gallery
        import faiss

        index = getattr(faiss, _KNN_INDEX[metric])(items.shape[1])
        index.add(items)
        _, neighbours = index.search(items, k)
        return neighbours.astype(np.int64)

    def _largest_squared_distances(self) -> np.ndarray:
        """``(N,)`` each item's largest squared distance to any item, the reference's normaliser."""
        num_items = self._distance.num_queries
        rows_per_block = query_block_rows(4 * num_items, self.max_memory_mb, num_items)
        block = np.empty((rows_per_block, num_items), dtype=np.float32)
        out = np.empty(num_items, dtype=np.float32)
        for start in range(0, num_items, rows_per_block):
            rows = slice(start, min(start + rows_per_block, num_items))
            dist = self._distance.distances(rows, out=block[: rows.stop - start])
            out[rows] = np.square(dist, out=dist).max(axis=1)
        return out

    def _normalised_distances(self, items: np.ndarray, members: np.ndarray) -> np.ndarray:
        """``(P,)`` float32 squared distances of item pairs over the first item's largest one."""
        dist = self._distance.pair_distances(items, members, self.max_memory_mb)
        return np.square(dist) / self._row_max_sq[items]

    def _shared_weight_sums(self, rows: np.ndarray) -> np.ndarray:
        """``(B, G)`` float64 ``sum_k min(V[q, k], V[g, k])`` for query ``rows`` and every gallery item."""
        query_part = self._query_encoding[rows]
        gallery_part = self._gallery_encoding
        features, query_weights = query_part.indices, query_part.data
        runs = np.diff(gallery_part.indptr)[features]  # gallery items sharing each query feature
        starts = gallery_part.indptr[features]
        total = int(runs.sum())
        positions = np.repeat(starts - (np.cumsum(runs) - runs), runs) + np.arange(total)
        query_of_pair = np.repeat(np.repeat(np.arange(len(rows)), np.diff(query_part.indptr)), runs)
        shared = np.minimum(np.repeat(query_weights, runs), gallery_part.data[positions])
        flat = query_of_pair * self.num_gallery + gallery_part.indices[positions]
        sums = np.bincount(flat, weights=shared, minlength=len(rows) * self.num_gallery)
        return sums.reshape(len(rows), self.num_gallery)

    def distances(self, rows: slice | np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``(B, G)`` float32 re-ranked distances of query ``rows`` (indices into the queries)."""
        rows = (
            np.arange(self.num_query)[rows] if isinstance(rows, slice) else np.asarray(rows, dtype=np.int64)
        )
        if out is None:
            out = np.empty((rows.shape[0], self.num_gallery), dtype=np.float32)
        # Per query: float64 sums + float32 original distances over the gallery, and the sparse triples.
        row_bytes = 12 * self.num_gallery + _BYTES_PER_PAIR * self._pairs_per_query[rows]
        budget = self.max_memory_mb * (1 << 20)
        start = 0
        while start < rows.shape[0]:
            stop = start + max(1, int(np.searchsorted(np.cumsum(row_bytes[start:]), budget, "right")))
            chunk = rows[start:stop]
            sums = self._shared_weight_sums(chunk)
            jaccard = (1.0 - sums / (2.0 - sums)).astype(np.float32)
            original = self._distance.distances(
                chunk, columns=slice(self.num_query, None), out=out[start:stop]
            )
            np.square(original, out=original)
            original /= self._row_max_sq[chunk][:, None]
            original *= np.float32(self.lambda_value)
            original += jaccard * np.float32(1.0 - self.lambda_value)
            start = stop
        return out


def k_reciprocal_rerank(
    query_features: FeatureInput,
    gallery_features: FeatureInput,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    metric: str = "cosine",
    max_memory_mb: float = 512,
) -> np.ndarray:
    """The dense ``(Q, G)`` float32 re-ranked distance matrix (``evaluate(rerank=True)`` streams it instead)."""
    reranker = KReciprocalReranker(
        query_features, gallery_features, k1, k2, lambda_value, metric, max_memory_mb
    )
    return reranker.distances(slice(None))
