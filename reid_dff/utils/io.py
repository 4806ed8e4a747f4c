"""Atomic file writes and hashing: a crash mid-write never leaves a half file in place of a good one."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

_TEMP_SUFFIX = ".tmp"
# tempfile.mkstemp inserts 8 characters of this alphabet between prefix and suffix.
_TEMP_RANDOM = re.compile(r"[a-z0-9_]{8}")


def _temp_prefix(path: str) -> str:
    return f".{os.path.basename(path)}."


def is_atomic_temp_name(filename: str, target: str) -> bool:
    """Whether ``filename`` is a temp file that :func:`atomic_open` creates while writing ``target``."""
    prefix = _temp_prefix(target)
    if not (filename.startswith(prefix) and filename.endswith(_TEMP_SUFFIX)):
        return False
    return bool(_TEMP_RANDOM.fullmatch(filename[len(prefix) : -len(_TEMP_SUFFIX)]))


def remove_atomic_temp_files(directory: str | os.PathLike, targets: Iterable[str]) -> list[str]:
    """Delete the temp files that interrupted atomic writes of ``directory/<target>`` left (a process
    killed mid-write); only names of exactly that pattern are touched. Returns the removed paths."""
    directory = os.fspath(directory)
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    targets = list(targets)
    removed = []
    for name in names:
        path = os.path.join(directory, name)
        if any(is_atomic_temp_name(name, t) for t in targets) and os.path.isfile(path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync and rename it over ``path``."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', got {mode!r}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=_TEMP_SUFFIX, dir=directory)
    try:
        # mkstemp creates the file owner-only (0600); give the result the permissions open() would.
        os.chmod(tmp, 0o666 & ~_current_umask())
        with os.fdopen(fd, mode, encoding="utf-8" if mode == "w" else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _current_umask() -> int:
    # Linux reports it without changing it; os.umask can only be read by setting it, which for a moment
    # would give files created by other threads (loggers, TensorBoard) the wrong mode.
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)  # elsewhere: the only portable way
    os.umask(mask)
    return mask


def staging_dir(parent: str | os.PathLike, prefix: str) -> str:
    """A new empty folder in ``parent`` to fill and then rename into place, with the permissions
    ``os.makedirs`` would give it (``mkdtemp`` makes it owner-only, 0700, which the rename would keep)."""
    path = tempfile.mkdtemp(prefix=prefix, dir=os.fspath(parent))
    os.chmod(path, 0o777 & ~_current_umask())
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes to ``path`` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write text (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()
