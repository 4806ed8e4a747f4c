"""Reference baselines that need no training: a colour-histogram descriptor, evaluated per synthetic domain,
and chance (a random ranking) on any query/gallery split.

The synthetic ReID domains are built so that identities share outfit colours; the histogram measures how
far colour alone gets on them (well below 20% mAP on the default set, see docs/synthetic.md). Chance is
the floor a trained model's mAP / R1 should be read against on a small, hard target.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from ..data.synthetic import GALLERY_DIR, QUERY_DIR, read_manifest, read_split
from ..errors import ReidDffError
from .metrics import evaluate

__all__ = [
    "HIST_BINS",
    "MissingImageError",
    "UndecodableImageError",
    "color_histogram_features",
    "histogram_baseline_report",
    "random_ranking_baseline",
]

HIST_BINS = (8, 4, 4)  # joint H x S x V bins per body third


class MissingImageError(ReidDffError, FileNotFoundError):
    """An image to describe does not exist."""


class UndecodableImageError(ReidDffError):
    """An image file that OpenCV cannot decode."""


def color_histogram_features(paths: Sequence[str | os.PathLike]) -> np.ndarray:
    """(N, 3 * 128) float32 colour-histogram baseline features, L2-normalized (cosine = dot).

    The central half of the image width (where the body is in a pedestrian box) is cut into top, middle and
    bottom thirds; each gives a joint 8 x 4 x 4 HSV histogram normalized to sum 1. The square root
    (Hellinger) keeps large uniform regions from dominating the cosine.
    """
    hb, sb, vb = HIST_BINS
    dim = hb * sb * vb
    features = np.zeros((len(paths), 3 * dim), np.float32)
    for i, path in enumerate(paths):
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise MissingImageError(f"image not found: {path}")
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise UndecodableImageError(f"cannot decode image {path}: expected a readable JPEG/PNG file")
        w = img.shape[1]
        body = img[:, w // 4 : w - w // 4]
        hsv = cv2.cvtColor(body, cv2.COLOR_BGR2HSV).astype(np.int32)  # H in 0..179, S and V in 0..255
        bins = (
            (hsv[..., 0] * hb // 180) * (sb * vb) + (hsv[..., 1] * sb // 256) * vb + hsv[..., 2] * vb // 256
        )
        for t, rows in enumerate(np.array_split(bins, 3, axis=0)):
            hist = np.bincount(rows.ravel(), minlength=dim).astype(np.float32)
            features[i, t * dim : (t + 1) * dim] = np.sqrt(hist / max(rows.size, 1))
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def histogram_baseline_report(
    synthetic_dir: str | os.PathLike, evaluate_fn: Callable[..., Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Per domain: mAP and rank-1 of the colour-histogram baseline (cosine) on its query/gallery split.

    ``evaluate_fn(qf, gf, q_pids, g_pids, q_camids, g_camids, metric="cosine")`` defaults to
    :func:`reid_dff.evaluation.evaluate`; it returns a dict with ``"mAP"`` and ``"cmc"``.
    """
    if evaluate_fn is None:
        evaluate_fn = evaluate
    synthetic_dir = os.fspath(synthetic_dir)
    manifest = read_manifest(synthetic_dir)
    rows = []
    for domain in manifest["domains"]:
        base = os.path.join(synthetic_dir, domain["name"])
        q_paths, q_pids, q_camids = read_split(os.path.join(base, QUERY_DIR))
        g_paths, g_pids, g_camids = read_split(os.path.join(base, GALLERY_DIR))
        qf, gf = color_histogram_features(q_paths), color_histogram_features(g_paths)
        result = evaluate_fn(qf, gf, q_pids, g_pids, q_camids, g_camids, metric="cosine")
        rows.append(
            {
                "domain": domain["name"],
                "num_query": len(q_paths),
                "num_gallery": len(g_paths),
                "mAP": float(result["mAP"]),
                "rank1": float(np.asarray(result["cmc"])[0]),
            }
        )
    return rows


def random_ranking_baseline(
    query_pids: Sequence[int],
    gallery_pids: Sequence[int],
    query_camids: Sequence[int],
    gallery_camids: Sequence[int],
    draws: int = 100,
    seed: int = 0,
) -> dict[str, float]:
    """Chance: mAP and rank-1 of random rankings of the gallery, the mean over ``draws`` rankings.

    Each draw gives every image an independent Gaussian feature, so each query ranks the gallery in a
    uniformly random order (ties have probability zero), evaluated by :func:`reid_dff.evaluation.evaluate`
    with its usual junk rule (same identity and camera). ``{"mAP", "rank1", "mAP_std", "draws"}``,
    fractions in [0, 1]; ``mAP_std`` is the std over draws.
    """
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    rng = np.random.default_rng(seed)
    maps, rank1 = [], []
    for _ in range(draws):
        qf = rng.standard_normal((len(query_pids), 8)).astype(np.float32)
        gf = rng.standard_normal((len(gallery_pids), 8)).astype(np.float32)
        result = evaluate(qf, gf, query_pids, gallery_pids, query_camids, gallery_camids, metric="euclidean")
        maps.append(float(result["mAP"]))
        rank1.append(float(np.asarray(result["cmc"])[0]))
    return {
        "mAP": float(np.mean(maps)),
        "rank1": float(np.mean(rank1)),
        "mAP_std": float(np.std(maps)),
        "draws": draws,
    }
