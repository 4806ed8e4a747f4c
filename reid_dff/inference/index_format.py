"""The on-disk form of a gallery index and its provenance checks.

An index is a directory of three files, each written atomically:

* ``index.faiss`` -- the FAISS index (``faiss.write_index`` into a temporary file, then renamed);
* ``items.npz``   -- ``paths`` (relative to the gallery root), ``pids`` and ``camids`` (-1 when unknown),
  plain arrays loaded with ``allow_pickle=False``;
* ``meta.json``   -- format version, dimension, metric, normalization, index type and parameters, model
  name, checkpoint SHA-256 (and the ONNX file's when the features came from an export), gallery root, and
  the size and SHA-256 of the two other files.

``meta.json`` is written last and pins the other two by hash, so a directory left half-written by a crash
(or files copied from two different indexes) is refused on load instead of silently mixing galleries.
Gallery paths are relative and are resolved only inside the gallery root.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import faiss
import numpy as np

from ..errors import ReidDffError
from ..utils import atomic_open, atomic_write_json, sha256_file
from .index_types import INDEX_TYPES, METRICS

__all__ = [
    "INDEX_FILE",
    "INDEX_FORMAT",
    "INDEX_VERSION",
    "ITEMS_FILE",
    "META_FILE",
    "IndexFormatError",
    "IndexMetadata",
    "UnsafeIndexPathError",
    "check_relative_path",
    "read_index_files",
    "resolve_inside_root",
    "write_index_files",
]

INDEX_FORMAT = "reid-dff-gallery-index"
INDEX_VERSION = 1
INDEX_FILE = "index.faiss"
ITEMS_FILE = "items.npz"
META_FILE = "meta.json"
# The string fields of meta.json's "model" object (the ONNX ones are absent from indexes built before them).
MODEL_KEYS = ("name", "checkpoint_sha256", "checkpoint_path", "onnx_sha256", "onnx_path")


class IndexFormatError(ReidDffError):
    """An index directory is missing files, is corrupt, or its files do not belong together."""


class UnsafeIndexPathError(ReidDffError):
    """A gallery path stored in an index escapes the gallery root or is absolute."""


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
    # Set when the features came from an exported ONNX model (the file and its SHA-256).
    onnx_sha256: str = ""
    onnx_path: str = ""

    @property
    def normalized(self) -> bool:
        """Whether vectors are L2-normalized before they are added and searched (cosine metric)."""
        return self.metric == "cosine"


def check_relative_path(path: str) -> str:
    """``path`` normalized; :class:`UnsafeIndexPathError` if it is absolute or leaves its root."""
    norm = os.path.normpath(path)
    if os.path.isabs(path) or norm == ".." or norm.startswith(".." + os.sep):
        raise UnsafeIndexPathError(
            f"gallery path {path!r} must be relative to the gallery root and stay inside it"
        )
    return norm


def write_index_files(
    directory: str | os.PathLike,
    index: faiss.Index,
    meta: IndexMetadata,
    paths: np.ndarray,
    pids: np.ndarray,
    camids: np.ndarray,
) -> None:
    """Write ``index.faiss``, ``items.npz`` and then ``meta.json`` into ``directory``, each atomically."""
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    index_path = os.path.join(directory, INDEX_FILE)
    items_path = os.path.join(directory, ITEMS_FILE)
    with atomic_open(index_path, "wb") as f:
        writer = faiss.PyCallbackIOWriter(f.write)  # type: ignore[attr-defined]  # not in the stubs
        faiss.write_index(index, writer)
        del writer  # flushes FAISS's buffer into f before atomic_open renames it
    with atomic_open(items_path, "wb") as f:
        np.savez(f, paths=paths, pids=pids, camids=camids)
    description = {
        "format": INDEX_FORMAT,
        "version": INDEX_VERSION,
        "num_items": int(index.ntotal),
        "dim": meta.dim,
        "metric": meta.metric,
        "normalized": meta.normalized,
        "index_type": meta.index_type,
        "params": meta.params,
        "model": {
            "name": meta.model_name,
            "checkpoint_sha256": meta.checkpoint_sha256,
            "checkpoint_path": meta.checkpoint_path,
            "onnx_sha256": meta.onnx_sha256,
            "onnx_path": meta.onnx_path,
        },
        "root": meta.root,
        "files": {
            name: {"bytes": os.path.getsize(path), "sha256": sha256_file(path)}
            for name, path in ((INDEX_FILE, index_path), (ITEMS_FILE, items_path))
        },
    }
    atomic_write_json(os.path.join(directory, META_FILE), description)


def read_index_files(
    directory: str | os.PathLike, verify_hashes: bool = True
) -> tuple[faiss.Index, IndexMetadata, np.ndarray, np.ndarray, np.ndarray]:
    """``(index, meta, paths, pids, camids)`` of an index directory, each file checked against ``meta.json``.

    ``verify_hashes=False`` checks the file sizes only (a large index is not re-hashed).
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise IndexFormatError(f"index directory {directory} does not exist")
    meta_path = os.path.join(directory, META_FILE)
    if not os.path.isfile(meta_path):
        raise IndexFormatError(
            f"{meta_path} is missing: {directory} is not a reid-dff index (or its build was interrupted); "
            "rebuild the index"
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
            raise IndexFormatError(f"{path} is missing; rebuild the index")
        if os.path.getsize(path) != expected["bytes"] or (
            verify_hashes and sha256_file(path) != expected["sha256"]
        ):
            raise IndexFormatError(
                f"{path} does not match {meta_path} (size or SHA-256 differ): the files come from "
                "different builds or were modified; rebuild the index"
            )
    try:
        with open(os.path.join(directory, INDEX_FILE), "rb") as f:
            reader = faiss.PyCallbackIOReader(f.read)  # type: ignore[attr-defined]  # not in the stubs
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
    return index, meta, paths, pids.astype(np.int64), camids.astype(np.int64)


def _parse_meta(raw: Any, meta_path: str) -> IndexMetadata:
    if not isinstance(raw, dict) or raw.get("format") != INDEX_FORMAT:
        raise IndexFormatError(f"{meta_path} is not a reid-dff index description (format {INDEX_FORMAT!r})")
    if raw.get("version") != INDEX_VERSION:
        raise IndexFormatError(
            f"{meta_path} has index format version {raw.get('version')}; this reid-dff reads version "
            f"{INDEX_VERSION}: rebuild the index"
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
        and all(isinstance(model.get(k, ""), str) for k in MODEL_KEYS)
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
        onnx_sha256=raw["model"].get("onnx_sha256", ""),
        onnx_path=raw["model"].get("onnx_path", ""),
    )
    if meta.normalized != bool(raw["normalized"]):
        raise IndexFormatError(f"{meta_path}: 'normalized' contradicts metric {meta.metric!r}")
    return meta


def resolve_inside_root(
    root: str, rel_path: str, what: str = "gallery", source: str = "the index", moved: str | None = None
) -> str:
    """``root/rel_path`` made absolute, refusing paths that leave ``root`` or do not exist.

    ``what`` ("gallery", "query") and ``source`` ("the index", "the search report") only word the errors;
    ``moved`` is the remedy for images that are no longer where ``source`` says (default: give ``what``'s
    root or rebuild ``source``, which suits an index; a search report names the roots it was searched with).
    """
    if moved is None:
        moved = f"pass the right {what} root or rebuild {source}"
    if not root:
        raise UnsafeIndexPathError(
            f"{what} path {rel_path!r} has no {what} root: {source} was made without one; "
            + (f"pass the {what} root to use its images" if source == "the index" else moved)
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
            f"{what} image {full} (listed in {source} as {rel_path!r}) does not exist; {moved}"
        )
    return full
