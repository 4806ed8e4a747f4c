"""Small shared helpers: atomic I/O, hashing, devices, seeds, logging, CPU threads.

Exports load lazily (PEP 562): the I/O helpers are used by light worker processes (the synthetic generator)
that should not pay for importing torch, which ``env`` needs.
"""

from importlib import import_module

_EXPORTS = {
    "atomic_open": "io",
    "atomic_write_bytes": "io",
    "atomic_write_json": "io",
    "atomic_write_text": "io",
    "sha256_file": "io",
    "staging_dir": "io",
    "DeviceError": "env",
    "git_revision": "env",
    "resolve_device": "env",
    "seed_everything": "env",
    "setup_logger": "env",
    "ThreadPlan": "threads",
    "choose_threads": "threads",
    "configure_threads": "threads",
    "limit_worker_threads": "threads",
    "usable_cores": "threads",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
