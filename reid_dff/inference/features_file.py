"""The ``feats.npz`` file that ``tools/extract_features.py`` writes and ``tools/build_index.py`` reads.

Arrays only, loaded with ``allow_pickle=False``: ``feats`` (N, D) float32, ``paths`` (N,) relative to
``root``, ``pids`` / ``camids`` (N,) int64 (-1 when the file name carries none), and ``meta``, a JSON
string with the gallery root, model name, checkpoint path and SHA-256, and the evaluation metric.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from ..utils import atomic_write_bytes

FEATURES_FORMAT = "reid-dff-features"
FEATURES_VERSION = 1


class FeaturesFileError(ValueError):
    """A features file is missing, corrupt, or not in the reid-dff layout."""


@dataclass
class FeatureSet:
    """Embeddings ``feats`` (N, D) of images ``paths`` (relative to ``root``) with optional ids."""

    feats: np.ndarray
    paths: list[str]
    root: str = ""
    pids: np.ndarray | None = None
    camids: np.ndarray | None = None
    model_name: str = ""
    checkpoint_sha256: str = ""
    checkpoint_path: str = ""
    metric: str = "cosine"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.feats = np.ascontiguousarray(self.feats, dtype=np.float32)
        n = len(self.paths)
        if self.feats.ndim != 2 or len(self.feats) != n:
            raise ValueError(f"feats must be (N, D) with N = {n} paths; got shape {self.feats.shape}")
        for name in ("pids", "camids"):
            values = getattr(self, name)
            values = np.full(n, -1, np.int64) if values is None else np.asarray(values, np.int64)
            if values.shape != (n,):
                raise ValueError(f"{name} must have one entry per path ({n}), got shape {values.shape}")
            setattr(self, name, values)

    @property
    def has_identities(self) -> bool:
        """Whether every item carries a pid and a camid."""
        return bool(len(self.paths)) and bool((self.pids >= 0).all() and (self.camids >= 0).all())


def save_features(path: str | os.PathLike, features: FeatureSet) -> None:
    """Write a :class:`FeatureSet` as ``.npz`` atomically."""
    meta = {
        "format": FEATURES_FORMAT,
        "version": FEATURES_VERSION,
        "root": features.root,
        "model_name": features.model_name,
        "checkpoint_sha256": features.checkpoint_sha256,
        "checkpoint_path": features.checkpoint_path,
        "metric": features.metric,
        "extra": features.extra,
    }
    buffer = io.BytesIO()
    np.savez(
        buffer,
        feats=features.feats,
        paths=np.array(features.paths, dtype=np.str_),
        pids=features.pids,
        camids=features.camids,
        meta=np.array(json.dumps(meta)),
    )
    atomic_write_bytes(path, buffer.getvalue())


def load_features(path: str | os.PathLike) -> FeatureSet:
    """Read a features file written by :func:`save_features` (no pickled objects are accepted)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FeaturesFileError(
            f"features file {path} does not exist; write it with tools/extract_features.py"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"feats", "paths", "pids", "camids", "meta"} - set(data.files)
            if missing:
                raise FeaturesFileError(
                    f"{path} lacks arrays {sorted(missing)}; expected a file from tools/extract_features.py"
                )
            meta = json.loads(str(data["meta"]))
            feats, paths = data["feats"], [str(p) for p in data["paths"]]
            pids, camids = data["pids"], data["camids"]
    except FeaturesFileError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as e:  # ValueError includes pickled arrays, bad JSON
        raise FeaturesFileError(f"cannot read features file {path} (expected a reid-dff .npz): {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != FEATURES_FORMAT:
        raise FeaturesFileError(f"{path} is not a reid-dff features file (format {FEATURES_FORMAT!r})")
    if meta.get("version") != FEATURES_VERSION:
        raise FeaturesFileError(
            f"{path} has features format version {meta.get('version')}; expected {FEATURES_VERSION}: "
            "re-extract it with tools/extract_features.py"
        )
    try:
        return FeatureSet(
            feats=feats,
            paths=paths,
            root=meta.get("root", ""),
            pids=pids,
            camids=camids,
            model_name=meta.get("model_name", ""),
            checkpoint_sha256=meta.get("checkpoint_sha256", ""),
            checkpoint_path=meta.get("checkpoint_path", ""),
            metric=meta.get("metric", "cosine"),
            extra=meta.get("extra", {}),
        )
    except ValueError as e:
        raise FeaturesFileError(f"{path}: inconsistent arrays: {e}") from e
