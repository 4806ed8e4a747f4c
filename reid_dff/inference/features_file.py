"""The ``feats.npz`` file that ``tools/extract_features.py`` writes and ``tools/build_index.py`` reads.

Arrays only, loaded with ``allow_pickle=False``: ``feats`` (N, D) float32, ``paths`` (N,) relative to
``root``, ``pids`` / ``camids`` (N,) int64 (-1 when the file name carries none), and ``meta``, a JSON
string with the gallery root, model name, checkpoint path and SHA-256, and the evaluation metric.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zipfile

import numpy as np

from ..errors import ReidDffError
from ..evaluation.features import Features
from ..utils import atomic_open

FEATURES_FORMAT = "reid-dff-features"
FEATURES_VERSION = 1


class FeaturesFileError(ReidDffError):
    """A features file is missing, corrupt, or not in the reid-dff layout."""


def _meta(features: Features) -> dict:
    return {
        "format": FEATURES_FORMAT,
        "version": FEATURES_VERSION,
        "root": features.root,
        "model_name": features.model_name,
        "checkpoint_sha256": features.checkpoint_sha256,
        "checkpoint_path": features.checkpoint_path,
        "metric": features.metric,
        "extra": features.extra,
    }


# Rows copied per write when a member is streamed from a memory map (bounded memory, any gallery size).
_STREAM_CHUNK_BYTES = 4 << 20


def _write_member(archive: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    """One ``.npy`` member, stored uncompressed as ``np.savez`` does (so ``load_features`` can map it);
    written in row chunks, so a memory-mapped array is never read whole."""
    array = np.asanyarray(array)
    if array.dtype.hasobject:
        raise ValueError(f"refusing to write {name} with dtype object (it would need pickle to load)")
    with archive.open(f"{name}.npy", mode="w", force_zip64=True) as member:
        np.lib.format.write_array_header_2_0(member, np.lib.format.header_data_from_array_1_0(array))
        if array.ndim == 0 or array.size == 0:
            member.write(np.ascontiguousarray(array).tobytes())
            return
        rows = max(1, _STREAM_CHUNK_BYTES // max(1, array[0].nbytes))
        for start in range(0, len(array), rows):
            member.write(np.ascontiguousarray(array[start : start + rows]).tobytes())


def _write_features_npz(f, features: Features) -> None:
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        _write_member(archive, "feats", features.feats)
        _write_member(archive, "paths", np.array(features.paths, dtype=np.str_))
        _write_member(archive, "pids", features.pids)
        _write_member(archive, "camids", features.camids)
        _write_member(archive, "meta", np.array(json.dumps(_meta(features))))


def save_features(path: str | os.PathLike, features: Features) -> None:
    """Write a :class:`Features` as ``.npz`` atomically (straight into the temporary file, in chunks)."""
    with atomic_open(path, "wb") as f:
        _write_features_npz(f, features)


class FeaturesFileWriter:
    """Write a features file batch by batch, holding at most a batch of features in memory.

    Rows go to a temporary memory-mapped ``.npy`` beside ``path`` (``capacity`` rows at most: batches may
    drop unreadable images); :meth:`close` packs the ``.npz`` atomically and removes the temporary file.
    ``header`` carries everything but the rows: root, model name, checkpoint, metric. Use as a context
    manager: on an exception nothing is written and the temporary file is removed.
    """

    def __init__(self, path: str | os.PathLike, capacity: int, header: Features):
        self.path = os.fspath(path)
        self.capacity = int(capacity)
        self.header = header
        self.count = 0
        self._paths: list[str] = []
        self._pids: list[np.ndarray] = []
        self._camids: list[np.ndarray] = []
        self._rows: np.memmap | None = None
        self._rows_file = ""

    def add(self, feats: np.ndarray, paths: list[str], pids: np.ndarray, camids: np.ndarray) -> None:
        """Append ``(B, D)`` features with their relative paths and ids."""
        feats = np.asarray(feats, dtype=np.float32)
        if feats.ndim != 2 or len(feats) != len(paths):
            raise ValueError(f"expected (B, D) features for {len(paths)} paths, got shape {feats.shape}")
        if self._rows is None:
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
            fd, self._rows_file = tempfile.mkstemp(
                prefix=f".{os.path.basename(self.path)}.", suffix=".rows.npy", dir=directory
            )
            os.close(fd)
            self._rows = np.lib.format.open_memmap(
                self._rows_file, mode="w+", dtype=np.float32, shape=(self.capacity, feats.shape[1])
            )
        if self.count + len(feats) > self.capacity:
            raise ValueError(f"more than the announced {self.capacity} rows")
        self._rows[self.count : self.count + len(feats)] = feats
        self.count += len(feats)
        self._paths.extend(paths)
        self._pids.append(np.asarray(pids, np.int64).reshape(-1))
        self._camids.append(np.asarray(camids, np.int64).reshape(-1))

    def close(self) -> tuple[int, int]:
        """Write the file; returns ``(rows, dim)``."""
        if self._rows is None or not self.count:
            raise ValueError("no features were added; nothing to write")
        self._rows.flush()
        features = Features(
            feats=self._rows[: self.count],
            paths=self._paths,
            root=self.header.root,
            pids=np.concatenate(self._pids),
            camids=np.concatenate(self._camids),
            model_name=self.header.model_name,
            checkpoint_sha256=self.header.checkpoint_sha256,
            checkpoint_path=self.header.checkpoint_path,
            metric=self.header.metric,
            extra=self.header.extra,
        )
        save_features(self.path, features)
        shape = (self.count, self._rows.shape[1])
        self._discard()
        return shape

    def _discard(self) -> None:
        self._rows = None
        if self._rows_file and os.path.exists(self._rows_file):
            os.unlink(self._rows_file)
        self._rows_file = ""

    def __enter__(self) -> FeaturesFileWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self._discard()


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


def load_features(path: str | os.PathLike, mmap: bool = False) -> Features:
    """Read a features file written by :func:`save_features` (no pickled objects are accepted).

    ``mmap=True`` maps ``feats`` read-only from the file instead of reading it into memory (what
    ``tools/build_index.py`` does, so that a large gallery is read in batches).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FeaturesFileError(f"features file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"feats", "paths", "pids", "camids", "meta"} - set(data.files)
            if missing:
                raise FeaturesFileError(
                    f"{path} lacks arrays {sorted(missing)}; expected a reid-dff features file"
                )
            meta = json.loads(str(data["meta"]))
            feats = _memmap_member(path, "feats.npy") if mmap else None
            if feats is None:
                feats = data["feats"]
            paths = [str(p) for p in data["paths"]]
            pids, camids = data["pids"], data["camids"]
    except FeaturesFileError:
        raise
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:  # pickled arrays, bad JSON, 0 bytes
        raise FeaturesFileError(f"cannot read features file {path} (expected a reid-dff .npz): {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != FEATURES_FORMAT:
        raise FeaturesFileError(f"{path} is not a reid-dff features file (format {FEATURES_FORMAT!r})")
    if meta.get("version") != FEATURES_VERSION:
        raise FeaturesFileError(
            f"{path} has features format version {meta.get('version')}; expected {FEATURES_VERSION}: "
            "re-extract the features"
        )
    try:
        features = Features(
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
    _check_rows(path, features)
    return features


# Rows checked per step for NaN/inf, so that a memory-mapped gallery is scanned without a full-size copy.
_SCAN_ROWS = 65536


def _check_rows(path: str, features: Features) -> None:
    """Refuse a features file that nothing can be searched with: no row, no dimension, NaN or inf."""
    feats = features.feats
    if feats.shape[0] == 0 or feats.shape[1] == 0:
        raise FeaturesFileError(
            f"features file {path} holds no features (shape {tuple(feats.shape)}); expected at least one "
            "(1, D) row: extract them from a non-empty set of images"
        )
    for start in range(0, feats.shape[0], _SCAN_ROWS):
        finite = np.isfinite(feats[start : start + _SCAN_ROWS])
        if finite.all():
            continue
        offset = int(np.flatnonzero(~finite.all(axis=1))[0])
        row = start + offset
        value = feats[row][~finite[offset]][0]
        kind = "NaN" if np.isnan(value) else f"{float(value)}"
        raise FeaturesFileError(
            f"features file {path}: row {row} ({features.paths[row]}) has {kind} in column "
            f"{int(np.flatnonzero(~finite[offset])[0])}; features must be finite (extract them again, "
            "from a model whose training did not diverge)"
        )
