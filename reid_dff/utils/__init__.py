"""Small shared helpers: atomic I/O, hashing, devices, seeds, logging."""

from .env import git_revision, resolve_device, seed_everything, setup_logger
from .io import atomic_open, atomic_write_bytes, atomic_write_json, atomic_write_text, sha256_file

__all__ = [
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "git_revision",
    "resolve_device",
    "seed_everything",
    "setup_logger",
    "sha256_file",
]
