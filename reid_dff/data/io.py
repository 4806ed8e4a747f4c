"""Image decoding with OpenCV: one function, one specific error for unreadable or corrupt files."""

from __future__ import annotations

import os

import cv2
import numpy as np

__all__ = ["BadImageError", "read_image"]

_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"


class BadImageError(OSError):
    """An image file that is missing, unreadable or cannot be decoded; ``.path`` names it."""

    # torch's DataLoader re-raises a worker's exception as ``exc_type(message=traceback_text)`` when the
    # class has a truthy ``message`` attribute; the traceback text already names the file.
    message = "unreadable or corrupt image"

    def __init__(self, path: str | None = None, reason: str | None = None, *, message: str | None = None):
        self.path = path
        self.reason = reason
        if message is not None:
            super().__init__(message)
            return
        super().__init__(
            f"{reason or BadImageError.message}: {path} (replace or delete the file, or set "
            "DATALOADER.ON_BAD_IMAGE skip to drop such images and count them)"
        )

    def __reduce__(self):  # picklable across worker processes with its fields
        return (_rebuild_bad_image_error, (self.path, self.reason, str(self)))


def _rebuild_bad_image_error(path: str | None, reason: str | None, text: str) -> BadImageError:
    error = BadImageError(message=text)
    error.path, error.reason = path, reason
    return error


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to ``(H, W, 3)`` uint8 RGB; raises ``BadImageError`` naming the file."""
    path = os.fspath(path)
    try:
        # np.fromfile + imdecode instead of cv2.imread: works for any path (non-ASCII on Windows) and
        # distinguishes "cannot open" from "cannot decode".
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise BadImageError(path, f"cannot read image file ({e.strerror or e})") from e
    if data.size == 0:
        raise BadImageError(path, "empty image file")
    raw = data.tobytes()
    # libjpeg decodes a truncated JPEG into a half-grey picture with only a warning on stderr; a JPEG
    # without its end-of-image marker is truncated, so call it corrupt instead of training on it.
    if raw.startswith(_JPEG_START) and raw.rfind(_JPEG_END) < 2:
        raise BadImageError(path, "truncated JPEG (no end-of-image marker)")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None or image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise BadImageError(path, "cannot decode image")
    return np.ascontiguousarray(image[:, :, ::-1])  # OpenCV decodes to BGR
