"""A procedural many-class classification set for stage 1 at CPU scale: shape x texture, random colours.

The stand-in for ImageNet in the two-stage demo (docs/results.md, "The two stages at CPU scale"): a set
unlike the synthetic ReID domains (no persons, no cameras), with enough classes that a backbone learns
generic shape and texture filters before it fine-tunes on ReID. Layout, the ``class_folder`` dataset's
(``class_folder:synthetic_classes``)::

    <root>/synthetic_classes/train/<NNN>_<shape>_<texture>/NNNNN.png
    <root>/synthetic_classes/val/<NNN>_<shape>_<texture>/NNNNN.png
    <root>/synthetic_classes/manifest.json

A class is one of :data:`SHAPES` filled with one of :data:`TEXTURES` (10 x 10 = 100 classes). Everything
else is random per image and says nothing about the class: the two colours of the texture and the
background's, the shape's size, rotation and position, the texture's phase and period (within 10%), and a
drawing style (:data:`STYLES`: flat, outlined, blurred, noisy). Textures are drawn in the image frame and
every texture and shape is mirror-symmetric, so the horizontal flip of training keeps the class.

Every image depends only on ``(seed, split, class, index)`` (PNG, lossless): the same arguments give
byte-identical files. The tree is written into a staging folder and renamed into place, so a present tree
with a manifest is complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable

import cv2
import numpy as np

from ...utils.io import atomic_write_json, staging_dir
from .tree import ForeignTreeError, SyntheticDataError, SyntheticParameterError, SyntheticTreeExistsError

__all__ = [
    "CLASSES_DIRNAME",
    "CLASSES_MANIFEST_FORMAT",
    "CLASSES_RENDER_VERSION",
    "SHAPES",
    "STYLES",
    "TEXTURES",
    "class_names",
    "ensure_synthetic_classes",
    "generate_synthetic_classes",
    "read_classes_manifest",
    "render_class_image",
]

CLASSES_DIRNAME = "synthetic_classes"
CLASSES_MANIFEST_FORMAT = "reid-dff-synthetic-classes"
MANIFEST = "manifest.json"
# Bumped whenever the rendered pixels change, so a tree made by an older renderer is not taken for the current one.
CLASSES_RENDER_VERSION = 1
SHAPES = ("disc", "annulus", "square", "triangle", "star", "cross", "crescent", "bar", "semicircle", "arrow")
TEXTURES = (
    "hstripes_fine",
    "hstripes_coarse",
    "vstripes_fine",
    "vstripes_coarse",
    "checks_fine",
    "checks_coarse",
    "hatch",
    "dots",
    "rings",
    "solid",
)
STYLES = ("flat", "outlined", "blurred", "noisy")
SPLITS = ("train", "val")
MAX_CLASSES = len(SHAPES) * len(TEXTURES)


def class_names(num_classes: int = MAX_CLASSES) -> list[str]:
    """Folder names of the first ``num_classes`` classes, ``NNN_<shape>_<texture>`` (sorted = class order).

    Class ``k`` is shape ``k % 10`` with texture ``(k // 10 + k) % 10``: a bijection onto the 100 pairs in
    which each block of ten classes (``10j .. 10j + 9``) holds every shape and every texture once, so a
    set of 10, 20, ... classes is balanced.
    """
    if not 2 <= num_classes <= MAX_CLASSES:
        raise SyntheticParameterError(f"number of classes must be in [2, {MAX_CLASSES}], got {num_classes}")
    return [
        f"{k:03d}_{SHAPES[k % len(SHAPES)]}_{TEXTURES[(k // len(SHAPES) + k) % len(TEXTURES)]}"
        for k in range(num_classes)
    ]


def _shape_polygon(name: str) -> np.ndarray | None:
    """Outline of a polygonal shape in unit coordinates (about [-1, 1]); None for the round ones."""
    if name == "square":
        return np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * 0.78
    if name == "triangle":
        return np.array([[0, -1], [0.95, 0.72], [-0.95, 0.72]], np.float64)
    if name == "star":
        angles = np.arange(10) * np.pi / 5 - np.pi / 2
        radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([radii * np.cos(angles), radii * np.sin(angles)], 1)
    if name == "cross":
        a, b = 0.33, 1.0
        return np.array(
            [[-a, -b], [a, -b], [a, -a], [b, -a], [b, a], [a, a], [a, b], [-a, b], [-a, a], [-b, a], [-b, -a], [-a, -a]],
            np.float64,
        )  # fmt: skip
    if name == "bar":
        return np.array([[-1, -0.36], [1, -0.36], [1, 0.36], [-1, 0.36]], np.float64)
    if name == "arrow":
        return np.array(
            [[-1, -0.28], [0.1, -0.28], [0.1, -0.75], [1, 0], [0.1, 0.75], [0.1, 0.28], [-1, 0.28]]
        )
    if name == "semicircle":
        angles = np.linspace(0, np.pi, 17)
        return np.stack([np.cos(angles), np.sin(angles) - 0.4], 1)
    return None


def _shape_mask(name: str, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A (size, size) uint8 mask {0..255} of one placed, scaled and rotated ``name``, and its centre (x, y)."""
    mask = np.zeros((size, size), np.uint8)
    scale = size * rng.uniform(0.3, 0.4)
    centre = size / 2 + rng.uniform(-0.1, 0.1, 2) * size
    theta = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    polygon = _shape_polygon(name)
    if polygon is not None:
        points = (polygon @ rot.T) * scale + centre
        cv2.fillPoly(mask, [np.round(points * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
        return mask, centre
    c = tuple(int(v) for v in np.round(centre * 16))
    cv2.circle(mask, c, int(round(scale * 16)), 255, -1, cv2.LINE_AA, shift=4)
    if name == "annulus":
        cv2.circle(mask, c, int(round(scale * 0.5 * 16)), 0, -1, cv2.LINE_AA, shift=4)
    elif name == "crescent":
        offset = (rot @ np.array([0.5, 0.0])) * scale
        inner = tuple(int(v) for v in np.round((centre + offset) * 16))
        cv2.circle(mask, inner, int(round(scale * 0.85 * 16)), 0, -1, cv2.LINE_AA, shift=4)
    return mask, centre


def _texture(name: str, size: int, centre: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A (size, size) float32 pattern in [0, 1] (1: the texture's first colour), in the image frame."""
    scale = size / 32.0
    jitter = rng.uniform(0.9, 1.1)
    phase = rng.uniform(0, 2 * np.pi, 2)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5

    def wave(coord: np.ndarray, period: float, p: float) -> np.ndarray:
        return np.sin(2 * np.pi * coord / (period * scale * jitter) + p)

    def square_wave(values: np.ndarray) -> np.ndarray:
        return np.clip(values * 3.0 + 0.5, 0.0, 1.0)  # a soft threshold at 0: crisp but anti-aliased

    if name.startswith(("hstripes", "vstripes", "checks")):
        period = 4.0 if name.endswith("fine") else 8.0
        if name.startswith("hstripes"):
            values = wave(yy, period, phase[0])
        elif name.startswith("vstripes"):
            values = wave(xx, period, phase[0])
        else:
            values = wave(xx, period, phase[0]) * wave(yy, period, phase[1])
        return square_wave(values)
    if name == "hatch":  # both diagonals: mirror-symmetric
        a, b = wave(xx + yy, 6.0, phase[0]), wave(xx - yy, 6.0, phase[1])
        return np.maximum(square_wave(a - 0.6), square_wave(b - 0.6))
    if name == "dots":
        period = 6.0 * scale * jitter
        dx = (xx + phase[0] * period / (2 * np.pi)) % period - period / 2
        dy = (yy + phase[1] * period / (2 * np.pi)) % period - period / 2
        return np.clip(1.6 * scale - np.hypot(dx, dy) + 0.5, 0.0, 1.0)
    if name == "rings":
        radius = np.hypot(xx - centre[0], yy - centre[1])
        return square_wave(wave(radius, 5.0, phase[0]))
    return np.ones((size, size))  # solid


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Texture colours a, b and background colour: random, a and b apart (the texture shows), the
    background apart from both (the shape shows)."""
    a = rng.uniform(0, 255, 3)
    b = rng.uniform(0, 255, 3)
    while np.linalg.norm(a - b) < 110:
        b = rng.uniform(0, 255, 3)
    background = rng.uniform(0, 255, 3)
    while min(np.linalg.norm(background - a), np.linalg.norm(background - b)) < 70:
        background = rng.uniform(0, 255, 3)
    return a, b, background


def _flat(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return image


def _outlined(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    edges = cv2.morphologyEx(mask, cv2.MORPH_GRADIENT, np.ones((2, 2), np.uint8)).astype(np.float32) / 255
    ink = rng.choice([0.0, 255.0]) * np.ones(3)
    return image * (1 - edges[..., None]) + ink * edges[..., None]


def _blurred(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 0.8) * image.shape[0] / 32)


def _noisy(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return image + rng.normal(0, rng.uniform(8, 16), image.shape).astype(np.float32)


STYLE_RENDERERS: dict[str, Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]] = {
    "flat": _flat,
    "outlined": _outlined,
    "blurred": _blurred,
    "noisy": _noisy,
}


def render_class_image(seed: int, split: str, class_index: int, index: int, size: int = 32) -> np.ndarray:
    """One (size, size, 3) uint8 RGB image of class ``class_index`` (see :func:`class_names`), fixed by
    its arguments; ``split`` ("train" or "val") only separates the random streams of the two splits."""
    if split not in SPLITS:
        raise SyntheticParameterError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0 <= class_index < MAX_CLASSES:
        raise SyntheticParameterError(f"class index must be in [0, {MAX_CLASSES}), got {class_index}")
    shape = SHAPES[class_index % len(SHAPES)]
    texture = TEXTURES[(class_index // len(SHAPES) + class_index) % len(TEXTURES)]
    rng = np.random.default_rng([seed, SPLITS.index(split), class_index, index])
    mask, centre = _shape_mask(shape, size, rng)
    pattern = _texture(texture, size, centre, rng)[..., None]
    a, b, background = _colours(rng)
    fill = a * pattern + b * (1 - pattern)
    alpha = (mask.astype(np.float64) / 255)[..., None]
    image = (background * (1 - alpha) + fill * alpha).astype(np.float32)
    style = STYLES[int(rng.integers(len(STYLES)))]
    image = STYLE_RENDERERS[style](image, mask, rng)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _check_parameters(num_classes: int, train_per_class: int, val_per_class: int, size: int) -> None:
    class_names(num_classes)  # its range check
    if train_per_class < 1 or val_per_class < 1:
        raise SyntheticParameterError(
            f"images per class must be >= 1, got train {train_per_class}, val {val_per_class}"
        )
    if not 16 <= size <= 256:
        raise SyntheticParameterError(f"image size must be in [16, 256], got {size}")


def _encode_png(rgb: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buffer.tobytes()


def generate_synthetic_classes(
    root: str | os.PathLike,
    seed: int = 0,
    num_classes: int = MAX_CLASSES,
    train_per_class: int = 60,
    val_per_class: int = 10,
    size: int = 32,
    overwrite: bool = False,
) -> dict:
    """Write ``<root>/synthetic_classes`` (built in a staging folder, then renamed into place); returns the
    manifest. An existing folder is an error unless ``overwrite``."""
    _check_parameters(num_classes, train_per_class, val_per_class, size)
    root = os.fspath(root)
    target = os.path.join(root, CLASSES_DIRNAME)
    if os.path.lexists(target):
        if not overwrite:
            raise SyntheticTreeExistsError(f"{target} already exists; delete it or choose another root")
        _check_ours(target)  # overwrite replaces only a tree this generator wrote
    names = class_names(num_classes)
    counts = {"train": train_per_class, "val": val_per_class}
    os.makedirs(root, exist_ok=True)
    staging = staging_dir(root, prefix=f".{CLASSES_DIRNAME}.")
    digest = hashlib.sha256()
    try:
        for split in SPLITS:
            for k, name in enumerate(names):
                folder = os.path.join(staging, split, name)
                os.makedirs(folder)
                for i in range(counts[split]):
                    data = _encode_png(render_class_image(seed, split, k, i, size))
                    file_name = f"{i + 1:05d}.png"
                    digest.update(f"{split}/{name}/{file_name}\0".encode())
                    digest.update(hashlib.sha256(data).digest())
                    with open(os.path.join(folder, file_name), "wb") as f:
                        f.write(data)
        manifest = {
            "format": CLASSES_MANIFEST_FORMAT,
            "render_version": CLASSES_RENDER_VERSION,
            **_parameters(seed, num_classes, train_per_class, val_per_class, size),
            "classes": names,
            "num_files": num_classes * (train_per_class + val_per_class),
            "total_sha256": digest.hexdigest(),
        }
        atomic_write_json(os.path.join(staging, MANIFEST), manifest)
        if overwrite and os.path.lexists(target):
            old = staging_dir(root, prefix=f".{CLASSES_DIRNAME}.old.")
            os.replace(target, os.path.join(old, "tree"))
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.replace(staging, target)
            except OSError:
                if not os.path.isdir(target):
                    raise
                # Another process finished the same folder first (two runs generating side by side).
                raise SyntheticTreeExistsError(f"{target} appeared while it was being generated") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _parameters(seed: int, num_classes: int, train_per_class: int, val_per_class: int, size: int) -> dict:
    return {
        "seed": seed,
        "num_classes": num_classes,
        "train_per_class": train_per_class,
        "val_per_class": val_per_class,
        "size": size,
    }


def read_classes_manifest(root: str | os.PathLike) -> dict | None:
    """The manifest of ``<root>/synthetic_classes``, or None if there is none."""
    path = os.path.join(os.fspath(root), CLASSES_DIRNAME, MANIFEST)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        manifest = json.load(f)
    if not isinstance(manifest, dict):
        raise ForeignTreeError(f"{path} is not a manifest of a synthetic classification tree (not an object)")
    return manifest


def _check_ours(target: str) -> None:
    """Refuse ``target`` unless it is a folder with this generator's manifest (never delete a user's folder)."""
    manifest = read_classes_manifest(os.path.dirname(target)) if os.path.isdir(target) else None
    if manifest is None or manifest.get("format") != CLASSES_MANIFEST_FORMAT:
        raise ForeignTreeError(
            f"{target} exists but is not a generated synthetic classification tree (no {MANIFEST} of "
            f"format {CLASSES_MANIFEST_FORMAT!r}); it is not replaced: move it away or choose another root"
        )


def ensure_synthetic_classes(
    root: str | os.PathLike,
    seed: int = 0,
    num_classes: int = MAX_CLASSES,
    train_per_class: int = 60,
    val_per_class: int = 10,
    size: int = 32,
) -> str:
    """Path of ``<root>/synthetic_classes``: generated when absent, reused when its manifest records these
    parameters and the current renderer; a tree made otherwise is an error, never overwritten."""
    target = os.path.join(os.fspath(root), CLASSES_DIRNAME)
    wanted = {
        "format": CLASSES_MANIFEST_FORMAT,
        "render_version": CLASSES_RENDER_VERSION,
        **_parameters(seed, num_classes, train_per_class, val_per_class, size),
    }
    try:
        manifest = read_classes_manifest(root)
    except ForeignTreeError:
        raise
    except ValueError as e:  # not JSON: a file this generator (atomic writes) never leaves
        raise ForeignTreeError(f"{target}: its {MANIFEST} is not readable JSON ({e})") from None
    if manifest is not None and manifest.get("format") != CLASSES_MANIFEST_FORMAT:
        _check_ours(target)  # raises ForeignTreeError naming the format
    if manifest is None:
        if os.path.lexists(target):
            raise ForeignTreeError(
                f"{target} exists but is not a generated synthetic classification tree (no {MANIFEST}); "
                "point DATASETS.ROOT elsewhere or remove the folder"
            )
        try:
            generate_synthetic_classes(root, seed, num_classes, train_per_class, val_per_class, size)
            return target
        except SyntheticTreeExistsError:
            manifest = read_classes_manifest(root) or {}  # another process wrote it: check what it wrote
    differing = {k: (manifest.get(k), v) for k, v in wanted.items() if manifest.get(k) != v}
    if differing:
        detail = ", ".join(f"{k}: on disk {have!r}, asked {want!r}" for k, (have, want) in differing.items())
        raise SyntheticDataError(
            f"synthetic classification set at {target} was generated otherwise ({detail}); "
            "delete that folder to regenerate it, or change the config to match"
        )
    return target
