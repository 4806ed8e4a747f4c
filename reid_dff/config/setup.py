"""Building a run's configuration from a file plus overrides, and saving it beside the run's output."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..utils.io import atomic_write_text
from .config import CfgNode
from .defaults import _C

RESOLVED_CONFIG_NAME = "config.yaml"


def setup_cfg(config_file: str | None = None, opts: Sequence[str] = (), freeze: bool = True) -> CfgNode:
    """Defaults, then ``config_file`` (with ``_BASE_``), then ``KEY VALUE`` overrides; frozen."""
    cfg = _C.clone()
    if config_file:
        cfg.merge_from_file(config_file)
    cfg.merge_from_list(opts)
    if freeze:
        cfg.freeze()
    return cfg


def save_cfg(cfg: CfgNode, output_dir: str | None = None) -> str:
    """Write the resolved config as ``OUTPUT_DIR/config.yaml`` (atomically); returns the path."""
    path = os.path.join(output_dir or cfg.OUTPUT_DIR, RESOLVED_CONFIG_NAME)
    atomic_write_text(path, cfg.dump())
    return path
