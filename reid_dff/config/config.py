"""A small, strict configuration tree on top of PyYAML (yacs-like API, clearer errors)."""

from __future__ import annotations

import copy
import difflib
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from ..errors import ReidDffError

BASE_KEY = "_BASE_"


class _ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that reads ``1e-3`` as a float (YAML 1.2; 1.1 wants ``1.0e-3``) and refuses a key
    repeated in one mapping, which plain YAML resolves by silently dropping the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice in one mapping (first {seen[key].start_mark.line + 1}, "
                    f"again {key_node.start_mark.line + 1}); merge the two into one",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


_FLOAT_TAG = "tag:yaml.org,2002:float"
_ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _FLOAT_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ConfigLoader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml(text_or_stream: Any) -> Any:
    """YAML for configs: safe (plain data only), ``1e-3`` is a float, repeated keys are an error."""
    return yaml.load(text_or_stream, Loader=_ConfigLoader)  # noqa: S506 -- a SafeLoader subclass


class ConfigError(ReidDffError):
    """A configuration file, key or value is invalid."""


class ConfigKeyError(ConfigError, KeyError):
    """An unknown configuration key; the message suggests the closest valid keys."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else ""


class ConfigTypeError(ConfigError, TypeError):
    """A configuration value whose type does not match the default's."""


class CfgNode(dict):
    """A nested dict with attribute access, strict merging and freezing."""

    _FROZEN = "__frozen__"

    def __init__(self, init: Mapping[str, Any] | None = None):
        super().__init__()
        object.__setattr__(self, CfgNode._FROZEN, False)
        for key, value in (init or {}).items():
            self[key] = (
                CfgNode(value) if isinstance(value, Mapping) and not isinstance(value, CfgNode) else value
            )

    # -- attribute access -------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if self.is_frozen():
            raise AttributeError(f"config is frozen; cannot set {name!r} (call cfg.defrost() first)")
        if isinstance(value, Mapping) and not isinstance(value, CfgNode):
            value = CfgNode(value)
        self[name] = value

    def __setitem__(self, key: str, value: Any) -> None:
        if self.is_frozen():
            raise AttributeError(f"config is frozen; cannot set {key!r} (call cfg.defrost() first)")
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._check_mutable()
        super().__delitem__(key)

    # dict's own mutators bypass __setitem__: give them the same frozen check.
    def update(self, *args: Any, **kwargs: Any) -> None:
        self._check_mutable()
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def pop(self, *args: Any) -> Any:
        self._check_mutable()
        return super().pop(*args)

    def popitem(self) -> tuple[str, Any]:
        self._check_mutable()
        return super().popitem()

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._check_mutable()
        return super().setdefault(key, default)

    def clear(self) -> None:
        self._check_mutable()
        super().clear()

    def __deepcopy__(self, memo: dict) -> CfgNode:
        return CfgNode({k: copy.deepcopy(v, memo) for k, v in self.items()})

    def __reduce__(self):  # picklable for DataLoader workers and multiprocessing spawn; stays frozen
        return (_rebuild_cfg, (self.to_dict(), self.is_frozen()))

    # -- freezing ---------------------------------------------------------
    def freeze(self) -> CfgNode:
        """Make this node and all children immutable; returns self."""
        self._set_frozen(True)
        return self

    def defrost(self) -> CfgNode:
        """Make this node and all children mutable again; returns self."""
        self._set_frozen(False)
        return self

    def is_frozen(self) -> bool:
        return object.__getattribute__(self, CfgNode._FROZEN)

    def _set_frozen(self, frozen: bool) -> None:
        object.__setattr__(self, CfgNode._FROZEN, frozen)
        for value in self.values():
            if isinstance(value, CfgNode):
                value._set_frozen(frozen)

    # -- conversion -------------------------------------------------------
    def clone(self) -> CfgNode:
        """A deep, mutable copy."""
        return copy.deepcopy(self)

    def to_dict(self) -> dict:
        """Plain nested dicts/lists, for YAML and JSON."""
        out = {}
        for key, value in self.items():
            if isinstance(value, CfgNode):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[key] = value
        return out

    def dump(self) -> str:
        """The resolved configuration as YAML text."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    def leaf_keys(self, prefix: str = "") -> list[str]:
        """All full dotted keys of leaves, e.g. ``MODEL.BACKBONE``."""
        keys = []
        for key, value in self.items():
            full = f"{prefix}{key}"
            keys.extend(value.leaf_keys(full + ".") if isinstance(value, CfgNode) else [full])
        return keys

    # -- merging ----------------------------------------------------------
    def merge_from_file(self, path: str | os.PathLike) -> CfgNode:
        """Merge a YAML file, following ``_BASE_`` (relative to the including file, nested)."""
        self._check_mutable()
        merged = load_yaml_with_base(path)
        self._merge_mapping(merged, source=str(path))
        return self

    def merge_from_other_cfg(self, other: Mapping[str, Any]) -> CfgNode:
        """Merge a mapping of the same shape (strict keys, checked types)."""
        self._check_mutable()
        self._merge_mapping(other, source="<mapping>")
        return self

    def merge_from_list(self, opts: Iterable[str]) -> CfgNode:
        """Merge command-line overrides ``["KEY.SUB", "VALUE", ...]``."""
        self._check_mutable()
        opts = list(opts)
        if len(opts) % 2:
            raise ConfigError(f"overrides must be KEY VALUE pairs; got an odd number of items: {opts}")
        for full_key, raw in zip(opts[0::2], opts[1::2]):
            node, leaf = self._resolve(full_key, source="command line")
            old = node[leaf]
            if isinstance(old, CfgNode):
                raise ConfigTypeError(
                    f"{full_key} is a group of keys, not a value; set one of: "
                    f"{', '.join(old.leaf_keys(full_key + '.'))}"
                )
            value = raw if isinstance(old, str) else _parse_literal(raw)
            node[leaf] = _check_type(full_key, old, value, source="command line")
        return self

    def _check_mutable(self) -> None:
        if self.is_frozen():
            raise AttributeError("config is frozen; call cfg.defrost() before merging")

    def _resolve(self, full_key: str, source: str) -> tuple[CfgNode, str]:
        node: CfgNode = self
        parts = full_key.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, CfgNode) or part not in node:
                raise ConfigKeyError(_unknown_key_message(self, full_key, source))
            if depth < len(parts) - 1:
                node = node[part]
        return node, parts[-1]

    def _merge_mapping(self, other: Mapping[str, Any], source: str, prefix: str = "") -> None:
        for key, value in other.items():
            full_key = f"{prefix}{key}"
            if key not in self:
                raise ConfigKeyError(_unknown_key_message(self._root_for(prefix), full_key, source))
            old = self[key]
            if isinstance(old, CfgNode):
                if not isinstance(value, Mapping):
                    raise ConfigTypeError(
                        f"{full_key} in {source} is a group of keys; expected a mapping, got "
                        f"{type(value).__name__} {value!r}"
                    )
                old._merge_mapping(value, source, prefix=full_key + ".")
            else:
                self[key] = _check_type(full_key, old, value, source)

    def _root_for(self, prefix: str) -> CfgNode:
        # The error message needs full dotted keys: rebuild a tiny root around this node.
        root: CfgNode = self
        for part in reversed([p for p in prefix.split(".") if p]):
            root = CfgNode({part: root})
        return root


def _rebuild_cfg(values: dict, frozen: bool) -> CfgNode:
    cfg = CfgNode(values)
    return cfg.freeze() if frozen else cfg


def _unknown_key_message(root: CfgNode, full_key: str, source: str) -> str:
    valid = root.leaf_keys()
    groups = sorted({k.rsplit(".", 1)[0] for k in valid if "." in k})
    candidates = valid + groups
    close = difflib.get_close_matches(full_key, candidates, n=3, cutoff=0.6)
    if close:  # only the matches about as close as the best one: a typo has one obvious fix
        score = {k: difflib.SequenceMatcher(None, full_key, k).ratio() for k in close}
        close = [k for k in close if score[k] >= score[close[0]] - 0.05]
    else:
        # Fall back to the last component: "MODEL.DFF.RATO" -> "...RATIO".
        last = full_key.rsplit(".", 1)[-1]
        close = [
            k for k in candidates if difflib.get_close_matches(last, [k.rsplit(".", 1)[-1]], cutoff=0.75)
        ][:3]
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return f"unknown config key {full_key} (in {source}){hint}"


def _check_type(full_key: str, old: Any, value: Any, source: str) -> Any:
    if old is None:
        return value
    old_t, new_t = type(old), type(value)
    if old_t is new_t and old_t not in (list, tuple):
        return value
    if old_t is float and new_t is int:  # ``BASE_LR: 1`` means 1.0; bool is not an int here
        return float(value)
    if old_t in (list, tuple) and new_t in (list, tuple):
        return _check_elements(full_key, old, list(value), source)
    raise ConfigTypeError(
        f"{full_key} in {source} expects {old_t.__name__} (default {old!r}), got {new_t.__name__} {value!r}"
        + ("; an empty YAML value is null: write the value, or remove the key" if value is None else "")
    )


def _check_elements(full_key: str, old: list | tuple, value: list, source: str) -> list:
    """Items of a list whose default's items all have one type must have that type (int -> float ok)."""
    item_types = {type(item) for item in old}
    if len(item_types) != 1:
        return value  # empty or mixed defaults say nothing about the items
    (item_t,) = item_types
    checked = []
    for position, item in enumerate(value):
        if type(item) is item_t:
            checked.append(item)
        elif item_t is float and type(item) is int:
            checked.append(float(item))
        else:
            raise ConfigTypeError(
                f"{full_key} in {source} expects a list of {item_t.__name__} (default {list(old)!r}), "
                f"got {type(item).__name__} {item!r} at position {position}"
            )
    return checked


def _parse_literal(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return parse_yaml(raw)
    except yaml.YAMLError:
        return raw


def load_yaml_with_base(path: str | os.PathLike, _seen: tuple[str, ...] = ()) -> dict:
    """Read a YAML config and everything it inherits through ``_BASE_``, as one merged dict.

    ``_BASE_`` is one file or a list of files, each relative to the including file; they are merged in
    order (a later one wins), then the including file's own keys on top. An empty file is an error.
    """
    path = os.path.abspath(os.fspath(path))
    if path in _seen:
        chain = " -> ".join([*_seen, path])
        raise ConfigError(f"_BASE_ cycle in config files: {chain}")
    if not os.path.isfile(path):
        included_by = f" (named in _BASE_ of {_seen[-1]})" if _seen else ""
        raise ConfigError(f"config file not found: {path}{included_by}")
    with open(path, encoding="utf-8") as f:
        try:
            data = parse_yaml(f)
        except yaml.YAMLError as e:
            raise ConfigError(f"cannot parse YAML config {path}: {e}") from e
    if data is None:  # an empty file would silently mean every default (or nothing of a base)
        included_by = f" (named in _BASE_ of {_seen[-1]})" if _seen else ""
        raise ConfigError(
            f"config file {path} is empty (no key, only comments or blank lines){included_by}; a config "
            "sets _BASE_ or at least one key"
        )
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top, got {type(data).__name__}")
    bases = data.pop(BASE_KEY, None)
    if bases is None:
        return data
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(base, str) and base for base in bases):
        raise ConfigError(f"_BASE_ in {path} must be a file name or a list of file names, got {bases!r}")
    merged: dict = {}
    for base in bases:
        base_path = os.path.expanduser(base)
        if not os.path.isabs(base_path):
            base_path = os.path.join(os.path.dirname(path), base_path)
        _deep_update(merged, load_yaml_with_base(base_path, (*_seen, path)))
    _deep_update(merged, data)
    return merged


def _deep_update(dst: dict, src: Mapping) -> None:
    for key, value in src.items():
        if isinstance(value, Mapping) and isinstance(dst.get(key), dict):
            _deep_update(dst[key], value)
        else:
            dst[key] = copy.deepcopy(dict(value) if isinstance(value, Mapping) else value)
