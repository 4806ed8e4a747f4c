"""Image decoding: OpenCV (``read_image``, the default) or torchvision.io (``read_image_tensor``), one error.

``DATALOADER.DECODER`` picks the loaders' reader from ``IMAGE_READERS``. ``bench/classification_loader.py``
measured torchvision.io's libjpeg-turbo decoder the fastest per worker on ImageNet-sized JPEGs, so the
ImageNet recipe uses it; ReID keeps OpenCV (the decoders may differ by a level in a few pixels).
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import torch

from ..errors import ReidDffError

__all__ = ["DECODERS", "IMAGE_READERS", "BadImageError", "read_image", "read_image_tensor"]

_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"
_PNG_START = b"\x89PNG\r\n\x1a\n"


_BAD_IMAGE_ADVICE = (
    " (replace or delete the file, or set DATALOADER.ON_BAD_IMAGE skip to drop such images and count them)"
)


class BadImageError(ReidDffError, OSError):
    """An image file that is missing, unreadable or cannot be decoded; ``.path`` names it."""

    # torch's DataLoader re-raises a worker's exception as ``exc_type(message=traceback_text)`` when the
    # class has a truthy ``message`` attribute; the traceback text already names the file.
    message = "unreadable or corrupt image"

    def __init__(self, path: str | None = None, reason: str | None = None, *, message: str | None = None):
        self.path = path
        self.reason = reason
        if message is not None:
            super().__init__(self._from_worker_traceback(message))
            return
        super().__init__(f"{reason or BadImageError.message}: {path}{_BAD_IMAGE_ADVICE}")

    def _from_worker_traceback(self, message: str) -> str:
        """torch wraps a worker's error as "Caught BadImageError in DataLoader worker ... Original
        Traceback ...": keep the original one-line message (and its path), not the traceback."""
        if not (message.startswith(f"Caught {type(self).__name__}") and "Traceback" in message):
            return message
        lines = [line for line in message.strip().splitlines() if line.strip()]
        original = lines[-1].split(f"{type(self).__name__}: ", 1)[-1]
        if original.endswith(_BAD_IMAGE_ADVICE) and ": " in original:
            self.reason, self.path = original[: -len(_BAD_IMAGE_ADVICE)].split(": ", 1)
        return original

    def __reduce__(self):  # picklable across worker processes with its fields
        return (_rebuild_bad_image_error, (self.path, self.reason, str(self)))


def _rebuild_bad_image_error(path: str | None, reason: str | None, text: str) -> BadImageError:
    error = BadImageError(message=text)
    error.path, error.reason = path, reason
    return error


def _read_bytes(path: str) -> np.ndarray:
    """The file's bytes as a writable uint8 array; ``BadImageError`` if unreadable, empty or a truncated JPEG."""
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
    return data


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to ``(H, W, 3)`` uint8 RGB; raises ``BadImageError`` naming the file."""
    path = os.fspath(path)
    data = _read_bytes(path)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None or image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise BadImageError(path, "cannot decode image")
    return np.ascontiguousarray(image[:, :, ::-1])  # OpenCV decodes to BGR


def read_image_tensor(path: str | os.PathLike) -> torch.Tensor:
    """Decode an image file to a ``(3, H, W)`` uint8 RGB tensor with torchvision.io (JPEG, PNG); other types
    go through ``read_image``. Raises ``BadImageError`` naming the file, as ``read_image`` does."""
    from torchvision.io import ImageReadMode, decode_image

    path = os.fspath(path)
    data = _read_bytes(path)
    if not (data[:2].tobytes() == _JPEG_START or data[:8].tobytes() == _PNG_START):
        return torch.from_numpy(read_image(path)).permute(2, 0, 1).contiguous()
    try:
        image = decode_image(torch.from_numpy(data), mode=ImageReadMode.RGB)
    except RuntimeError as e:
        raise BadImageError(path, f"cannot decode image ({str(e).splitlines()[0]})") from None
    if image.ndim != 3 or image.shape[0] != 3 or image.shape[1] == 0 or image.shape[2] == 0:
        raise BadImageError(path, "cannot decode image")
    return image.contiguous()  # a no-op for JPEG; torchvision's PNG decoder returns a strided view


# DATALOADER.DECODER -> reader; both give RGB uint8 images the transforms accept.
IMAGE_READERS = {"opencv": read_image, "torchvision": read_image_tensor}
DECODERS = tuple(IMAGE_READERS)
