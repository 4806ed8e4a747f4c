"""What the inference and visualization tools share: bad input ends with one clear line, not a traceback."""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from collections.abc import Iterator

from ..config import ConfigError
from ..data.datasets.base import DatasetLayoutError, DatasetOptionError
from ..data.io import BadImageError
from ..data.samplers import SamplerError
from ..data.synthetic import SyntheticDataError, SyntheticParameterError
from ..modeling.checkpoint import CheckpointError
from ..modeling.pretrained import WeightsError
from ..utils.env import DeviceError
from ..utils.registry import RegistryKeyError
from .features_file import FeaturesFileError
from .images import ImageListError
from .index import IndexCompatibilityError, IndexFormatError, IndexParameterError, UnsafeIndexPathError


# Errors that mean "the user's config, checkpoint, images, features or index is wrong", never a bug.
class ToolUsageError(ValueError):
    """A tool was given arguments that cannot work together (the message says what to pass instead)."""


USER_ERRORS = (
    BadImageError,
    CheckpointError,
    ConfigError,
    DatasetLayoutError,
    DatasetOptionError,
    DeviceError,
    FeaturesFileError,
    FileNotFoundError,
    ImageListError,
    IndexCompatibilityError,
    IndexFormatError,
    IndexParameterError,
    RegistryKeyError,
    SamplerError,
    SyntheticDataError,
    SyntheticParameterError,
    ToolUsageError,
    UnsafeIndexPathError,
    WeightsError,
)


@contextlib.contextmanager
def exit_on_user_error(tool: str, extra: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Turn a :data:`USER_ERRORS` (or ``extra``) exception into ``<tool>: error: <message>`` and exit 1."""
    try:
        yield
    except (*USER_ERRORS, *extra) as e:
        print(f"{tool}: error: {e}", file=sys.stderr)
        sys.exit(1)


def positive_int(text: str) -> int:
    """argparse ``type`` for counts that must be at least 1 (``--topk``, ``--max-images`` ...)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class ConfigFileOnce(argparse.Action):
    """``--config-file`` given twice is an error: argparse would silently keep only the last file."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest, None) is not None:
            parser.error(
                f"{option_string} was given twice ({getattr(namespace, self.dest)}, {values}); only one config "
                "file is read. Combine them in one YAML file that names the other in _BASE_"
            )
        setattr(namespace, self.dest, values)


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every flag of ``parser`` and of its subcommands."""
    flags: set[str] = set()
    for action in parser._actions:
        flags.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags |= _option_strings(sub)
    return flags


@contextlib.contextmanager
def _nothing_required(parser: argparse.ArgumentParser) -> Iterator[None]:
    """Temporarily make every argument and exclusive group of ``parser`` (and its subcommands) optional."""
    saved = []

    def relax(p: argparse.ArgumentParser) -> None:
        for item in [*p._actions, *p._mutually_exclusive_groups]:
            saved.append((item, item.required))
            item.required = False
            if isinstance(item, argparse._SubParsersAction):
                for sub in item.choices.values():
                    relax(sub)

    relax(parser)
    try:
        yield
    finally:
        for item, required in saved:
            item.required = required


def parse_args_with_overrides(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser.parse_args`` for tools whose trailing ``opts`` (``argparse.REMAINDER``) are KEY VALUE overrides,
    accepting the tool's flags after the overrides too (``--config-file C MODEL.WEIGHTS m.pth --output f``).

    REMAINDER swallows everything after the first override, flags included. The flags found there are moved
    in front of the overrides (with the arguments that follow them), keeping every override in its order,
    and the result is parsed as usual.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    flags = _option_strings(parser)

    def is_flag(item: str) -> bool:  # a flag, "--flag=value", or an abbreviation argparse would accept
        name = item.split("=", 1)[0]
        return name in flags or (name.startswith("--") and any(f.startswith(name) for f in flags))

    head, overrides, failed = argv, [], False
    with _nothing_required(parser):
        while True:
            try:  # quietly: help and usage errors are printed by the real parse below, with the real usage
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    namespace = parser.parse_args(head)
            except SystemExit:
                failed = True
                break
            opts = list(getattr(namespace, "opts", None) or [])  # a subcommand may have none
            rest = head[: len(head) - len(opts)]
            cut = next((i for i, item in enumerate(opts) if is_flag(item)), None)
            if cut is None:
                head, overrides = rest, overrides + opts
                break
            head, overrides = rest + opts[cut:], overrides + opts[:cut]
    if failed:
        # Help, or a mistake in the flags themselves (a flag without its value, an invalid choice): parsing
        # them without the overrides reports it, and an override is never taken as a flag's value.
        return parser.parse_args(head)
    return parser.parse_args(head + overrides)
