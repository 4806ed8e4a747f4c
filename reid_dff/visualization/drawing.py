"""Drawing on plain arrays: borders, heat-map overlays, centred spectra, grids, labels, PNG output.

Every function takes and returns ``uint8`` RGB images ``(H, W, 3)`` (or float maps ``(h, w)``), so each one
is testable without a model. OpenCV works in BGR; the conversion happens only in :func:`save_png`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import cv2
import numpy as np

from ..utils import atomic_write_bytes

GREEN = (0, 170, 0)
RED = (220, 0, 0)
GREY = (150, 150, 150)
BLUE = (30, 90, 230)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)


def as_rgb_uint8(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Check that ``image`` is ``(H, W, 3)`` uint8 RGB (a ``(H, W)`` grey image is expanded)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{name} must be a (H, W, 3) uint8 RGB array, got shape {image.shape} {image.dtype}")
    return np.ascontiguousarray(image)


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a ``(H, W, 3)`` image to ``size = (height, width)``."""
    image = as_rgb_uint8(image)
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    shrinking = height * width < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def add_border(image: np.ndarray, color: tuple[int, int, int], width: int = 4) -> np.ndarray:
    """Surround an image with a ``width``-pixel frame of ``color``; ``(H, W, 3) -> (H+2w, W+2w, 3)``."""
    image = as_rgb_uint8(image)
    return cv2.copyMakeBorder(image, width, width, width, width, cv2.BORDER_CONSTANT, value=tuple(color))


def put_label(image: np.ndarray, text: str, height: int = 14, scale: float = 0.35) -> np.ndarray:
    """Add a white strip with ``text`` above an image; ``(H, W, 3) -> (H + height, W, 3)``."""
    image = as_rgb_uint8(image)
    strip = np.full((height, image.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(strip, text, (2, height - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, BLACK, 1, cv2.LINE_AA)
    return np.concatenate([strip, image], axis=0)


def normalize_map(values: np.ndarray, vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """Scale a float map ``(h, w)`` to [0, 1] between ``vmin`` and ``vmax`` (default: its min and max)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"a map to draw must be 2-D (h, w), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("a map to draw holds NaN or infinite values")
    lo = values.min() if vmin is None else vmin
    hi = values.max() if vmax is None else vmax
    if hi <= lo:  # a constant map has no contrast to show: draw it at the bottom of the scale
        return np.zeros_like(values)
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0)


def colorize(
    values: np.ndarray,
    vmin: float | None = None,
    vmax: float | None = None,
    colormap: int = cv2.COLORMAP_JET,
) -> np.ndarray:
    """A float map ``(h, w)`` as a colour image ``(h, w, 3)`` uint8 RGB."""
    scaled = np.round(normalize_map(values, vmin, vmax) * 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(scaled, colormap), cv2.COLOR_BGR2RGB)


def overlay_heatmap(image: np.ndarray, activation: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a colour-mapped activation map ``(h, w)``, upsampled bilinearly, over ``image`` ``(H, W, 3)``."""
    image = as_rgb_uint8(image)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    activation = np.asarray(activation, dtype=np.float32)
    if activation.ndim != 2:
        raise ValueError(f"activation must be 2-D (h, w), got shape {activation.shape}")
    height, width = image.shape[:2]
    upsampled = cv2.resize(activation, (width, height), interpolation=cv2.INTER_LINEAR)
    heat = colorize(upsampled)
    return cv2.addWeighted(image, 1.0 - alpha, heat, alpha, 0.0)


def centre_rfft_map(values: np.ndarray) -> np.ndarray:
    """Shift a half-spectrum map ``(..., H, W//2+1)`` so the zero frequency sits at row ``H//2``.

    ``rfft2`` keeps only the non-negative horizontal frequencies (column 0 = zero frequency, the last
    column = the highest), so only the vertical axis has negative frequencies to move: the shift is along
    H alone and the zero frequency ends up at the middle of the left edge.
    """
    return np.fft.fftshift(np.asarray(values), axes=-2)


def log_magnitude(spectrum_real_imag: np.ndarray) -> np.ndarray:
    """Channel-mean ``log(1 + |F|)`` of a frequency map stacked as ``(2C, H, Wf)`` real then imaginary parts."""
    spectrum_real_imag = np.asarray(spectrum_real_imag, dtype=np.float64)
    if spectrum_real_imag.ndim != 3 or spectrum_real_imag.shape[0] % 2:
        raise ValueError(
            f"expected real and imaginary parts stacked as (2C, H, Wf), got shape {spectrum_real_imag.shape}"
        )
    half = spectrum_real_imag.shape[0] // 2
    magnitude = np.hypot(spectrum_real_imag[:half], spectrum_real_imag[half:])
    return np.log1p(magnitude).mean(axis=0)


def tile(
    rows: Sequence[Sequence[np.ndarray]],
    gap: int = 4,
    background: tuple[int, int, int] = WHITE,
) -> np.ndarray:
    """Lay images out in rows (top-aligned, ``gap`` pixels apart); rows may differ in length and sizes."""
    if not rows or not all(rows):
        raise ValueError("tile needs at least one image in every row")
    rows = [[as_rgb_uint8(img) for img in row] for row in rows]
    row_heights = [max(img.shape[0] for img in row) for row in rows]
    row_widths = [sum(img.shape[1] for img in row) + gap * (len(row) - 1) for row in rows]
    height = sum(row_heights) + gap * (len(rows) + 1)
    width = max(row_widths) + 2 * gap
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = background
    y = gap
    for row, row_height in zip(rows, row_heights):
        x = gap
        for img in row:
            canvas[y : y + img.shape[0], x : x + img.shape[1]] = img
            x += img.shape[1] + gap
        y += row_height + gap
    return canvas


def ranked_list_image(
    query: np.ndarray,
    gallery: Sequence[np.ndarray],
    matches: Sequence[bool | None],
    size: tuple[int, int] = (128, 64),
    border: int = 4,
    distances: Sequence[float] | None = None,
) -> np.ndarray:
    """One row: the query (blue frame), a gap, then its ranked gallery images framed green (right), red
    (wrong) or grey (unknown identity); each resized to ``size = (height, width)`` and labelled."""
    if len(gallery) != len(matches):
        raise ValueError(f"{len(gallery)} gallery images but {len(matches)} match flags")
    if distances is not None and len(distances) != len(gallery):
        raise ValueError(f"{len(gallery)} gallery images but {len(distances)} distances")
    cells = [put_label(add_border(resize(query, size), BLUE, border), "query")]
    spacer = np.full((size[0] + 2 * border + 14, 2 * border, 3), 255, dtype=np.uint8)
    cells.append(spacer)
    for rank, (image, match) in enumerate(zip(gallery, matches), start=1):
        color = GREY if match is None else (GREEN if match else RED)
        text = f"{rank}" if distances is None else f"{rank}: {distances[rank - 1]:.3g}"
        cells.append(put_label(add_border(resize(image, size), color, border), text))
    return tile([cells], gap=2)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a ``(H, W, 3)`` uint8 RGB image."""
    ok, buffer = cv2.imencode(".png", cv2.cvtColor(as_rgb_uint8(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("OpenCV could not encode the image as PNG")
    return buffer.tobytes()


def save_png(path: str | os.PathLike, image: np.ndarray) -> str:
    """Write a ``(H, W, 3)`` uint8 RGB image as PNG, atomically; returns the path."""
    path = os.fspath(path)
    if not path.lower().endswith(".png"):
        raise ValueError(f"{path}: pictures are written as PNG; give a file name ending in .png")
    atomic_write_bytes(path, encode_png(image))
    return path
