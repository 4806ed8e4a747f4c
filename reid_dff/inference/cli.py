"""What the inference and visualization tools share: bad input ends with one clear line, not a traceback."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator

from ..config import ConfigError
from ..data.datasets.base import DatasetLayoutError, DatasetOptionError
from ..data.io import BadImageError
from ..data.samplers import SamplerError
from ..data.synthetic import SyntheticDataError, SyntheticParameterError
from ..engine.checkpoint import CheckpointError
from ..modeling.pretrained import WeightsError
from .features_file import FeaturesFileError
from .images import ImageListError
from .index import IndexCompatibilityError, IndexFormatError, UnsafeIndexPathError

# Errors that mean "the user's config, checkpoint, images, features or index is wrong", never a bug.
USER_ERRORS = (
    BadImageError,
    CheckpointError,
    ConfigError,
    DatasetLayoutError,
    DatasetOptionError,
    FeaturesFileError,
    FileNotFoundError,
    ImageListError,
    IndexCompatibilityError,
    IndexFormatError,
    SamplerError,
    SyntheticDataError,
    SyntheticParameterError,
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
