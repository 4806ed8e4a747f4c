"""Building a run's configuration from a file plus overrides, and saving it beside the run's output."""

from __future__ import annotations

import os
from collections.abc import Sequence

import yaml

from ..utils.io import atomic_write_text
from .config import CfgNode, ConfigError, parse_yaml
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


def cfg_from_text(text: str, source: str) -> CfgNode:
    """The (mutable) config whose ``dump()`` a file stored (a checkpoint's ``"cfg"``, an ONNX file's
    ``config`` metadata): the defaults, then its values. :class:`ConfigError` naming ``source`` when the
    text is not a YAML mapping; unknown keys are refused as in any config file."""
    try:
        values = parse_yaml(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{source} is not valid YAML: {e}") from e
    if not isinstance(values, dict):
        raise ConfigError(f"{source} must be a YAML mapping, got {type(values).__name__}")
    cfg = _C.clone()
    cfg.merge_from_other_cfg(values)
    return cfg
