"""What every command-line tool shares: flags-first parsing, and one line (with a remedy) per user error.

Argument order is detectron2's: ``tool [flags] KEY VALUE ...``. The trailing config overrides are an
``argparse.REMAINDER``, so a flag written after them would silently become an override; instead it is
refused with one line naming the flag.

A user error is any :class:`~reid_dff.errors.ReidDffError` (or a missing file): the tool prints
``<tool>: error: <message>[; <remedy>]`` and exits 1. The library's message states the fact; the
remedy, when the tool has one for that error type, says what to run or pass (a tool or a flag, which
library messages never name).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import re
import sys
from collections.abc import Iterator, Mapping, Sequence

from ..config import get_cfg
from ..errors import ReidDffError

__all__ = [
    "DEPLOY_REMEDY",
    "USER_ERRORS",
    "ConfigFileOnce",
    "Remedies",
    "ToolUsageError",
    "add_overrides",
    "config_keys",
    "exit_on_user_error",
    "parse_flags_first",
    "positive_int",
    "user_error_line",
]


class ToolUsageError(ReidDffError):
    """A tool was given arguments that cannot work together (the message says what to pass instead)."""


# What a tool reports as one line instead of a traceback: the family, and files the user named that are
# missing (``open()`` of a path from the command line).
USER_ERRORS: tuple[type[Exception], ...] = (ReidDffError, FileNotFoundError)

# The remedy of a missing optional package of the ONNX path (DeployExtraMissingError).
DEPLOY_REMEDY = 'install the deploy extra: pip install -e ".[deploy]"'

# Exception type -> the tool-level remedy appended to its message ("rebuild it with tools/build_index.py").
Remedies = Mapping[type[BaseException], str]


def remedy_for(error: BaseException, remedies: Remedies | None) -> str | None:
    """The remedy of the most specific class of ``error`` that ``remedies`` names, else ``None``."""
    for cls in type(error).__mro__:
        if remedies and cls in remedies:
            return remedies[cls]
    return None


def user_error_line(tool: str, error: BaseException, remedies: Remedies | None = None) -> str:
    """``<tool>: error: <message>`` followed by ``; <remedy>`` when ``remedies`` has one for ``error``."""
    line = f"{tool}: error: {error}"
    remedy = remedy_for(error, remedies)
    return f"{line.rstrip('.')}; {remedy}" if remedy else line


@contextlib.contextmanager
def exit_on_user_error(tool: str, remedies: Remedies | None = None) -> Iterator[None]:
    """Turn a :data:`USER_ERRORS` exception into :func:`user_error_line` on stderr and exit status 1."""
    try:
        yield
    except USER_ERRORS as e:
        print(user_error_line(tool, e, remedies), file=sys.stderr)
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


def add_overrides(parser: argparse.ArgumentParser) -> None:
    """The trailing ``KEY VALUE ...`` config overrides (``args.opts``), which come after every flag."""
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, metavar="KEY VALUE", help="config overrides, after the flags"
    )


_SHORT_FLAG = re.compile(r"-[A-Za-z]")  # "-h"; not a negative number ("-1", "-1e-3") nor "-inf"


def _is_flag(item: str) -> bool:
    return (item.startswith("--") and len(item) > 2) or bool(_SHORT_FLAG.fullmatch(item))


@functools.lru_cache(maxsize=1)
def config_keys() -> frozenset[str]:
    """Every full key an override can set (``SEED``, ``MODEL.WEIGHTS``, ``TEST.RERANK.ENABLED`` ...)."""

    def leaves(node: Mapping, prefix: str) -> Iterator[str]:
        for key, value in node.items():
            if isinstance(value, Mapping):
                yield from leaves(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}"

    return frozenset(leaves(get_cfg(), ""))


def overrides_start(argv: Sequence[str]) -> int:
    """Where the KEY VALUE overrides start: the first config key that is not a flag's value (``--key SEED``
    gives the flag its value, or its own error); ``len(argv)`` when there is none."""
    keys = config_keys()
    return next(
        (i for i, item in enumerate(argv) if item in keys and not (i and _is_flag(argv[i - 1]))), len(argv)
    )


def flag_after_overrides(argv: Sequence[str]) -> str | None:
    """The first flag in ``argv`` that follows the start of the KEY VALUE overrides."""
    return next((item for item in argv[overrides_start(argv) :] if _is_flag(item)), None)


def parse_flags_first(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None = None
) -> argparse.Namespace:
    """``parser.parse_args(argv)`` for ``tool [flags] KEY VALUE ...``; a flag after the overrides is an error.

    Checked before parsing (a required flag written after the overrides would otherwise be reported as
    missing) and on the parsed overrides (whose first key may be misspelled).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    flag = flag_after_overrides(argv)
    if flag is None:
        # A list flag before the overrides (``--seeds 0 1 2 SEED 1``) must not swallow them: the flags are
        # parsed alone and the overrides handed over as they are.
        start = overrides_start(argv)
        args = parser.parse_args(argv[:start])
        if hasattr(args, "opts"):
            args.opts = list(args.opts or []) + argv[start:]
        elif start < len(argv):
            args = parser.parse_args(argv)  # a parser without overrides reports them as it always has
        flag = next((item for item in getattr(args, "opts", None) or [] if _is_flag(item)), None)
        if flag is None:
            return args
    parser.error(f"{flag} follows the KEY VALUE overrides; flags go before them: [flags] KEY VALUE ...")
