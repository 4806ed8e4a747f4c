"""A small procedural dataset shaped like Office-Home: object classes drawn in four visual styles.

Layout (the real Office-Home's): ``<root>/OfficeHomeDataset/{Art,Clipart,Product,Real_World}/<Class>/NNNNN.jpg``.
The class is the object's *shape*; colour, size, rotation and position are random per image, so colour alone
says nothing about the class. The four domains differ the way Office-Home's do, in image statistics that move
frequency content:

- ``Art``: paper-texture canvas, muted paint colours, rough brush-like edges, soft blur.
- ``Clipart``: white background, flat saturated fill, thick dark outline, sharp.
- ``Product``: light studio gradient, object shaded by a linear light gradient, soft drop shadow.
- ``Real_World``: cluttered background of random rectangles, uneven lighting, sensor noise, mild blur.

Every image depends only on ``(seed, domain, class, index)``: the same arguments give byte-identical files.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable

import cv2
import numpy as np

from ...utils.io import atomic_write_json, staging_dir
from .tree import SyntheticDataError, SyntheticTreeExistsError

DOMAINS = ("Art", "Clipart", "Product", "Real_World")
CLASSES = ("Arrow", "Crescent", "Cross", "Disc", "Ring", "Square", "Star", "Triangle")
ROOT_FOLDER = "OfficeHomeDataset"
MANIFEST = "manifest.json"
# Bumped whenever the renderer changes, so an old tree is not taken for the current one.
RENDER_VERSION = 1


def _unit_polygon(name: str) -> np.ndarray | None:
    """Outline of a filled class shape in unit coordinates (about [-1, 1]); None for the disc/ring/crescent."""
    if name == "Square":
        return np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * 0.8
    if name == "Triangle":
        return np.array([[0, -1], [0.95, 0.75], [-0.95, 0.75]], np.float64)
    if name == "Star":
        angles = np.arange(10) * np.pi / 5 - np.pi / 2
        radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
        return np.stack([radii * np.cos(angles), radii * np.sin(angles)], 1)
    if name == "Cross":
        a, b = 0.3, 1.0
        return np.array(
            [
                [-a, -b],
                [a, -b],
                [a, -a],
                [b, -a],
                [b, a],
                [a, a],
                [a, b],
                [-a, b],
                [-a, a],
                [-b, a],
                [-b, -a],
                [-a, -a],
            ],
            np.float64,
        )
    if name == "Arrow":
        return np.array([[-1, -0.25], [0.2, -0.25], [0.2, -0.7], [1, 0], [0.2, 0.7], [0.2, 0.25], [-1, 0.25]])
    return None


def _shape_mask(name: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A (size, size) uint8 mask {0, 255} of one randomly placed, scaled and rotated object of class ``name``."""
    mask = np.zeros((size, size), np.uint8)
    scale = size * rng.uniform(0.24, 0.36)
    centre = size / 2 + rng.uniform(-0.12, 0.12, 2) * size
    theta = rng.uniform(0, 2 * np.pi)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    poly = _unit_polygon(name)
    if poly is not None:
        pts = (poly @ rot.T) * scale + centre
        cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    else:
        c = tuple(int(v) for v in np.round(centre))
        r = int(round(scale))
        cv2.circle(mask, c, r, 255, -1, cv2.LINE_AA)
        if name == "Ring":
            cv2.circle(mask, c, int(r * 0.55), 0, -1, cv2.LINE_AA)
        elif name == "Crescent":
            offset = (rot @ np.array([0.55, 0.0])) * scale
            cv2.circle(mask, (int(c[0] + offset[0]), int(c[1] + offset[1])), int(r * 0.9), 0, -1, cv2.LINE_AA)
    return mask


def _blend(background: np.ndarray, colour_layer: np.ndarray, mask: np.ndarray) -> np.ndarray:
    alpha = (mask.astype(np.float32) / 255.0)[..., None]
    return background * (1 - alpha) + colour_layer * alpha


def _render_art(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = mask.shape[0]
    paper = rng.uniform(200, 240) + rng.normal(0, 6, (size, size, 1)) * np.array([1.0, 0.97, 0.9])
    paper = cv2.GaussianBlur(paper.astype(np.float32), (0, 0), 1.2)
    # Rough edges: dilate/erode the mask with noise, like a brush that overshoots.
    noise = cv2.GaussianBlur(rng.normal(0, 1, mask.shape).astype(np.float32), (0, 0), 1.5)
    rough = np.clip(mask.astype(np.float32) + noise * 160, 0, 255).astype(np.uint8)
    paint = rng.uniform(60, 190, 3) * rng.uniform(0.85, 1.15, (size, size, 3))
    image = _blend(paper, paint, rough)
    return cv2.GaussianBlur(image.astype(np.float32), (0, 0), 0.9)


def _render_clipart(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = mask.shape[0]
    background = np.full((size, size, 3), 255.0, np.float32)
    fill = np.zeros(3)
    fill[rng.integers(3)] = 255
    fill[rng.integers(3)] = rng.choice([0, 255])
    image = _blend(background, np.broadcast_to(fill, (size, size, 3)), mask)
    edges = cv2.morphologyEx(mask, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    return _blend(image, np.zeros_like(image), edges)


def _render_product(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = mask.shape[0]
    ys = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    background = 250 - 25 * ys + np.zeros((size, size, 3), np.float32)
    shadow = cv2.GaussianBlur(np.roll(mask, (2, 2), (0, 1)), (0, 0), 2.0)
    background = _blend(background, background * 0.6, shadow)
    direction = rng.normal(size=2)
    direction /= np.linalg.norm(direction) + 1e-9
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    light = (1.0 + 0.8 * (xx * direction[0] + yy * direction[1]))[..., None]
    colour = rng.uniform(40, 200, 3) * light
    return _blend(background, colour, mask)


def _render_real_world(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = mask.shape[0]
    background = np.full((size, size, 3), rng.uniform(60, 160, 3), np.float32)
    for _ in range(int(rng.integers(6, 12))):
        x0, y0 = rng.integers(0, size, 2)
        w, h = rng.integers(size // 8, size // 2, 2)
        cv2.rectangle(
            background, (int(x0), int(y0)), (int(x0 + w), int(y0 + h)), rng.uniform(30, 220, 3).tolist(), -1
        )
    colour = rng.uniform(30, 230, 3) * rng.uniform(0.9, 1.1, (size, size, 3))
    image = _blend(background, colour, mask)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    image *= (0.7 + 0.6 * (xx * rng.uniform(-0.5, 0.5) + yy * rng.uniform(-0.5, 0.5) + 0.5))[..., None]
    image += rng.normal(0, 10, image.shape)
    return cv2.GaussianBlur(image.astype(np.float32), (0, 0), 0.7)


RENDERERS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "Art": _render_art,
    "Clipart": _render_clipart,
    "Product": _render_product,
    "Real_World": _render_real_world,
}


def render_object_image(seed: int, domain: str, class_name: str, index: int, size: int = 64) -> np.ndarray:
    """One (size, size, 3) uint8 RGB image of ``class_name`` in ``domain``'s style, fixed by its arguments."""
    if domain not in RENDERERS:
        raise KeyError(f"unknown Office-Home domain {domain!r}; expected one of {DOMAINS}")
    if class_name not in CLASSES:
        raise KeyError(f"unknown synthetic Office-Home class {class_name!r}; expected one of {CLASSES}")
    rng = np.random.default_rng([seed, DOMAINS.index(domain), CLASSES.index(class_name), index])
    mask = _shape_mask(class_name, size, rng)
    return np.clip(RENDERERS[domain](mask, rng), 0, 255).astype(np.uint8)


def generate_synthetic_officehome(
    root: str | os.PathLike,
    seed: int = 0,
    images_per_class: int = 30,
    size: int = 64,
    classes: tuple[str, ...] = CLASSES,
) -> dict:
    """Write ``<root>/OfficeHomeDataset`` (built in a temporary folder, then renamed into place); returns the manifest."""
    root = os.fspath(root)
    target = os.path.join(root, ROOT_FOLDER)
    if os.path.exists(target):
        raise SyntheticTreeExistsError(f"{target} already exists; delete it or choose another root")
    manifest = {
        "kind": "synthetic_officehome",
        "render_version": RENDER_VERSION,
        "seed": seed,
        "images_per_class": images_per_class,
        "size": size,
        "domains": list(DOMAINS),
        "classes": list(classes),
    }
    os.makedirs(root, exist_ok=True)
    staging = staging_dir(root, prefix=f".{ROOT_FOLDER}.")
    try:
        for domain in DOMAINS:
            for class_name in classes:
                folder = os.path.join(staging, domain, class_name)
                os.makedirs(folder)
                for i in range(images_per_class):
                    rgb = render_object_image(seed, domain, class_name, i, size)
                    ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
                    if not ok:
                        raise RuntimeError(f"JPEG encoding failed for {domain}/{class_name}/{i}")
                    with open(os.path.join(folder, f"{i + 1:05d}.jpg"), "wb") as f:
                        f.write(buf.tobytes())
        atomic_write_json(os.path.join(staging, MANIFEST), manifest)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def read_manifest(root: str | os.PathLike) -> dict | None:
    """The manifest of a generated tree under ``root``, or None if there is none."""
    path = os.path.join(os.fspath(root), ROOT_FOLDER, MANIFEST)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def ensure_synthetic_officehome(
    root: str | os.PathLike, seed: int = 0, images_per_class: int = 30, size: int = 64
) -> str:
    """Path of ``<root>/OfficeHomeDataset``: generated when absent, checked against the arguments when present."""
    target = os.path.join(os.fspath(root), ROOT_FOLDER)
    wanted = {
        "seed": seed,
        "images_per_class": images_per_class,
        "size": size,
        "render_version": RENDER_VERSION,
    }
    manifest = read_manifest(root)
    if manifest is None:
        if os.path.exists(target):
            raise SyntheticDataError(
                f"{target} exists but is not a generated synthetic Office-Home tree (no {MANIFEST}); "
                "point DATASETS.ROOT elsewhere or remove the folder"
            )
        generate_synthetic_officehome(root, seed=seed, images_per_class=images_per_class, size=size)
        return target
    differing = {k: (manifest.get(k), v) for k, v in wanted.items() if manifest.get(k) != v}
    if differing:
        detail = ", ".join(f"{k}: on disk {have!r}, asked {want!r}" for k, (have, want) in differing.items())
        raise SyntheticDataError(
            f"synthetic Office-Home at {target} was generated with other parameters ({detail}); "
            "delete that folder to regenerate it, or change the config to match"
        )
    return target
