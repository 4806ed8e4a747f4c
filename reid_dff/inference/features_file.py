"""The ``feats.npz`` file that ``tools/extract_features.py`` writes and ``tools/build_index.py`` reads.

Arrays only, loaded with ``allow_pickle=False``: ``feats`` (N, D) float32, ``paths`` (N,) relative to
``root``, ``pids`` / ``camids`` (N,) int64 (-1 when the file name carries none), and ``meta``, a JSON
string with the gallery root, model name, checkpoint path and SHA-256, and the evaluation metric.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from dataclasses import dataclass, field

import numpy as np

from ..utils import atomic_open

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
    # Straight into the temporary file (numpy writes the arrays in chunks), not through a bytes buffer
    # that would hold a second copy of the features.
    with atomic_open(path, "wb") as f:
        np.savez(
            f,
            feats=features.feats,
            paths=np.array(features.paths, dtype=np.str_),
            pids=features.pids,
            camids=features.camids,
            meta=np.array(json.dumps(meta)),
        )


def _memmap_member(path: str, member: str) -> np.ndarray | None:
    """A read-only memory map of the stored (uncompressed) ``.npy`` member of a ``.npz``, else ``None``.

    ``np.savez`` stores members uncompressed, so the array's bytes sit contiguously in the file after the
    zip local header and the ``.npy`` header; only plain numeric dtypes are mapped (never objects).
    """
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise ValueError(f"bad zip local header for {member}")
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        f.seek(info.header_offset + 30 + name_length + extra_length)
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(f)
        offset = f.tell()
    if dtype.hasobject or fortran_order:
        return None
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


def load_features(path: str | os.PathLike, mmap: bool = False) -> FeatureSet:
    """Read a features file written by :func:`save_features` (no pickled objects are accepted).

    ``mmap=True`` maps ``feats`` read-only from the file instead of reading it into memory (what
    ``tools/build_index.py`` does, so that a large gallery is read in batches).
    """
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
            feats = _memmap_member(path, "feats.npy") if mmap else None
            if feats is None:
                feats = data["feats"]
            paths = [str(p) for p in data["paths"]]
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
