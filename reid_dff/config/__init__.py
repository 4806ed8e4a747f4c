"""Configuration: defaults in one place, YAML files with ``_BASE_`` inheritance, strict keys."""

from .config import (
    CfgNode,
    ConfigError,
    ConfigKeyError,
    ConfigTypeError,
    load_yaml_with_base,
)
from .defaults import _C
from .setup import RESOLVED_CONFIG_NAME, cfg_from_text, save_cfg, setup_cfg


def get_cfg() -> CfgNode:
    """A mutable copy of all defaults."""
    return _C.clone()


__all__ = [
    "CfgNode",
    "cfg_from_text",
    "ConfigError",
    "ConfigKeyError",
    "ConfigTypeError",
    "get_cfg",
    "load_yaml_with_base",
    "RESOLVED_CONFIG_NAME",
    "save_cfg",
    "setup_cfg",
]
