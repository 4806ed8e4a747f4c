"""Check a run's images before training, so a bad file stops (or is dropped from) a run at its start,
not when the sampler first draws it epochs in.

``DATALOADER.CHECK_IMAGES``: ``header`` (default) opens every file with PIL and verifies what that reads
without decoding pixels (format, size; PNG chunk checksums), and a JPEG must end in its end-of-image
marker, which is what a truncated download lacks; ``full`` decodes every image as training does
(:func:`reid_dff.data.io.read_image`); ``none`` checks nothing. ``DATALOADER.ON_BAD_IMAGE`` decides what a
bad file means: ``error`` stops with one line listing them, ``skip`` drops them with a warning naming them.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from typing import Any

from ..errors import ReidDffError
from .datasets.base import Sample
from .io import BadImageError, read_image

__all__ = [
    "BadImagesError",
    "CHECK_IMAGES_CHOICES",
    "bad_images_message",
    "check_image_header",
    "drop_bad_samples",
    "find_bad_images",
    "image_list",
    "removed_images_message",
]

logger = logging.getLogger("reid_dff.data")

CHECK_IMAGES_CHOICES = ("header", "full", "none")
LISTED = 5  # bad files a message names; the count says how many more
_JPEG_START, _JPEG_END = b"\xff\xd8", b"\xff\xd9"
_JPEG_TAIL = 1 << 16  # bytes at the end of a JPEG searched for its end-of-image marker


class BadImagesError(ReidDffError):
    """Images of the run that cannot be read or decoded (found before training); ``.bad`` lists
    ``(path, reason)``."""

    def __init__(self, message: str, bad: Sequence[tuple[str, str]] = ()):
        super().__init__(message)
        self.bad = list(bad)


def check_image_header(path: str) -> None:
    """Raise ``BadImageError`` unless ``path`` opens as an image whose header and size are sound."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as f:
            head = f.read(2)
            if not head:
                raise BadImageError(path, "empty image file")
            if head == _JPEG_START:
                # libjpeg decodes a truncated JPEG to a half-grey picture; read_image refuses it.
                size = f.seek(0, os.SEEK_END)
                f.seek(max(2, size - _JPEG_TAIL))
                if _JPEG_END not in f.read():
                    raise BadImageError(path, "truncated JPEG (no end-of-image marker)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's DecompressionBombWarning on huge images
            with Image.open(path) as image:
                width, height = image.size
                image.verify()
    except BadImageError:
        raise
    except OSError as e:  # FileNotFoundError, PermissionError, PIL's UnidentifiedImageError ...
        reason = "not an image PIL can identify" if isinstance(e, UnidentifiedImageError) else None
        raise BadImageError(path, reason or f"cannot read image file ({e.strerror or e})") from e
    except (ValueError, SyntaxError, EOFError) as e:  # PIL reports broken headers and chunks like this
        raise BadImageError(path, f"corrupt image header ({e})") from e
    if width < 1 or height < 1:
        raise BadImageError(path, f"image has size {width}x{height}")


def find_bad_images(paths: Sequence[str], mode: str, desc: str = "checking images") -> list[tuple[str, str]]:
    """``(path, reason)`` of every unreadable image of ``paths`` (each path once), with a progress bar on
    a terminal. ``mode``: one of ``CHECK_IMAGES_CHOICES``."""
    if mode not in CHECK_IMAGES_CHOICES:
        raise ValueError(f"DATALOADER.CHECK_IMAGES must be one of {CHECK_IMAGES_CHOICES}, got {mode!r}")
    if mode == "none":
        return []
    from tqdm import tqdm

    from ..utils.progress import BarWithLogs

    check = check_image_header if mode == "header" else read_image
    bad = []
    bar = tqdm(list(dict.fromkeys(paths)), desc=f"{desc} ({mode})", unit="img", disable=None)
    for path in BarWithLogs(bar):  # log lines above the bar, not inside it
        try:
            check(path)
        except BadImageError as e:
            bad.append((path, e.reason or BadImageError.message))
    return bad


def bad_images_message(bad: Sequence[tuple[str, str]], total: int, what: str) -> str:
    """One line: how many of ``total`` ``what`` are bad, the first ``LISTED`` with their reasons."""
    listed = "; ".join(f"{path} ({reason})" for path, reason in bad[:LISTED])
    more = f"; and {len(bad) - LISTED} more" if len(bad) > LISTED else ""
    return f"{len(bad)} of {total} {what} cannot be read: {listed}{more}"


def drop_bad_samples(train_set: Any, bad: Sequence[tuple[str, str]]) -> Any:
    """``train_set`` (a ``TrainSet``) without the samples whose path is in ``bad``; labels stay."""
    gone = {path for path, _ in bad}
    samples: list[Sample] = [s for s in train_set.samples if s.path not in gone]
    return train_set._replace(samples=samples)


def check_settings(cfg: Any) -> tuple[str, str]:
    """``(DATALOADER.CHECK_IMAGES, DATALOADER.ON_BAD_IMAGE)``, refused when not one of their choices."""
    from .build import ON_BAD_IMAGE_CHOICES
    from .datasets.base import DatasetOptionError

    mode, policy = cfg.DATALOADER.CHECK_IMAGES, cfg.DATALOADER.ON_BAD_IMAGE
    if mode not in CHECK_IMAGES_CHOICES:
        raise DatasetOptionError(
            f"DATALOADER.CHECK_IMAGES must be one of {CHECK_IMAGES_CHOICES}, got {mode!r}"
        )
    if policy not in ON_BAD_IMAGE_CHOICES:
        raise DatasetOptionError(
            f"DATALOADER.ON_BAD_IMAGE must be one of {ON_BAD_IMAGE_CHOICES}, got {policy!r}"
        )
    return mode, policy


def find_run_bad_images(
    cfg: Any, train_set: Any, evaluation_samples: Any
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], int]:
    """``(bad training images, bad evaluation images, number of evaluation images)`` of a run.

    ``evaluation_samples()`` lists the images the run evaluates on. Training sets that are not image
    files (``Sample``) are not checked."""
    mode, _ = check_settings(cfg)
    samples = train_set.samples
    if mode == "none" or not all(isinstance(s, Sample) for s in samples):
        return [], [], 0
    bad_train = find_bad_images([s.path for s in samples], mode, "checking training images")
    test_paths = list(dict.fromkeys(s.path for s in evaluation_samples()))
    bad_test = find_bad_images(test_paths, mode, "checking evaluation images")
    return bad_train, bad_test, len(test_paths)


def apply_bad_images(
    cfg: Any,
    train_set: Any,
    bad_train: Sequence[tuple[str, str]],
    bad_test: Sequence[tuple[str, str]],
    num_test: int,
) -> Any:
    """With ``DATALOADER.ON_BAD_IMAGE error``, raise ``BadImagesError`` listing the bad files; with
    ``skip``, warn naming them and return ``train_set`` without its bad images (evaluation loaders skip
    bad ones as they meet them)."""
    _, policy = check_settings(cfg)
    if not (bad_train or bad_test):
        return train_set
    num_train = len({s.path for s in train_set.samples})
    parts = []
    if bad_train:
        parts.append(bad_images_message(bad_train, num_train, "training images"))
    if bad_test:
        parts.append(bad_images_message(bad_test, num_test, "evaluation images"))
    if policy == "error":
        raise BadImagesError("; ".join(parts), [*bad_train, *bad_test])
    logger.warning("DATALOADER.ON_BAD_IMAGE skip: %s; they are left out", "; ".join(parts))
    return drop_bad_samples(train_set, bad_train)


def image_list(train_set: Any, root: str) -> list[str]:
    """The training images' paths, relative to ``root`` (``DATASETS.ROOT``, which a resume may move) when
    under it; [] for a training set that is not image files. A checkpoint keeps it to name lost files."""
    samples = train_set.samples
    if not all(isinstance(s, Sample) for s in samples):
        return []
    root = os.path.abspath(root)
    paths = [os.path.abspath(s.path) for s in samples]
    return [os.path.relpath(p, root) if p.startswith(root + os.sep) else p for p in paths]


def removed_images_message(recorded: Sequence[str], current: Sequence[str]) -> str | None:
    """One line naming the images of ``recorded`` missing from ``current`` (None: none are)."""
    now = set(current)
    removed = [path for path in dict.fromkeys(recorded) if path not in now]
    if not removed:
        return None
    listed = ", ".join(removed[:LISTED])
    more = f" and {len(removed) - LISTED} more" if len(removed) > LISTED else ""
    return (
        f"{len(removed)} training image(s) of the checkpoint's run are no longer in the training set "
        f"(deleted, or left out as unreadable): {listed}{more}; the run continues without them"
    )
