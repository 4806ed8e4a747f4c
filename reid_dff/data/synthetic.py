"""Procedurally rendered multi-domain person ReID data in the Market-1501 layout.

The embedded default dataset: a newcomer runs the whole pipeline without downloading anything, and tests
train on it. Layout written by :func:`generate_synthetic`::

    <root>/synthetic/manifest.json
    <root>/synthetic/domain{k}/{bounding_box_train,query,bounding_box_test}/PPPP_c{cam}s{seq}_{frame:06d}_{idx:02d}.jpg

- **Identity** = a stable appearance: torso / legs colours drawn from a small set of *outfit schemes* shared by
  many identities (so colour histograms confuse them), a two-colour torso texture (horizontal, vertical or
  diagonal stripes, checks, an open-jacket panel) with an identity-specific spatial frequency, sleeves,
  hair style and colour, skin tone, shoes, a bag (none, shoulder bag on one side, backpack) and body
  proportions.
- **Per image**: front or back view, pose (stride, arm swing), scale, crop offset, flip, partial occlusion,
  the light (brightness and colour temperature).
- **Cameras** of a domain differ mildly: background scene colours, brightness and tint.
- **Domains** differ in image statistics that move frequency content (:data:`DOMAIN_RECIPES`): colour cast
  and gamma, blur (low-pass), down/up sampling, sensor noise (high frequencies), JPEG quality and the
  background texture.

Determinism: every pixel depends only on ``(seed, domain, pid, image index)`` through
``np.random.default_rng([seed, stream, domain, pid, index])``, never on iteration order or worker count, and
``cv2.imencode`` is deterministic for equal pixels: the same arguments give byte-identical files (with the
same OpenCV build).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import cv2
import numpy as np

from ..utils.io import staging_dir

# Bumped whenever the rendered pixels change, so a tree made by an older renderer is not taken for a current one.
RENDERER_VERSION = 1
MANIFEST_FORMAT = "reid-dff-synthetic"
SYNTHETIC_DIRNAME = "synthetic"
MANIFEST_NAME = "manifest.json"
TRAIN_DIR, QUERY_DIR, GALLERY_DIR = "bounding_box_train", "query", "bounding_box_test"
SPLIT_DIRS = (TRAIN_DIR, QUERY_DIR, GALLERY_DIR)
# The Market-1501 name; torchreid parses it with ([-\d]+)_c(\d).
MARKET_NAME_RE = re.compile(r"^(-?\d+)_c(\d)s(\d+)_(\d{6})_(\d{2})\.jpg$")
# Market-1501 names hold one camera digit and torchreid accepts cameras 1..6; pids have 4 digits.
MAX_CAMERAS = 6
MAX_PID = 9999
# Geometry and blur radii are designed at this image height and scaled to the requested one.
REFERENCE_HEIGHT = 128

# Independent random streams: the first entropy word after the seed says what a generator is for.
_STREAM_IDENTITY, _STREAM_IMAGE, _STREAM_CAMERA, _STREAM_VISITS, _STREAM_SCHEMES = 1, 2, 3, 4, 5


class SyntheticDataError(RuntimeError):
    """An existing synthetic tree is incomplete, foreign or made with other parameters."""


class SyntheticParameterError(ValueError):
    """A generator parameter out of range (``DATASETS.SYNTHETIC.*`` or a ``make_synthetic.py`` option)."""


# ----------------------------------------------------------------------------------------------- appearance
# The shared palette (RGB). Identity lies in combinations, textures and shape, not in rare colours.
PALETTE_RGB: dict[str, tuple[int, int, int]] = {
    "black": (28, 28, 30),
    "white": (232, 232, 228),
    "grey": (128, 128, 128),
    "red": (190, 35, 35),
    "blue": (35, 65, 180),
    "green": (40, 135, 65),
    "yellow": (225, 195, 50),
    "brown": (115, 75, 45),
}
_PALETTE_NAMES = tuple(PALETTE_RGB)
# Small areas (hair, shoes, bags) use a few neutral colours so they add little histogram evidence.
HAIR_RGB = ((25, 20, 18), (80, 55, 35))
SKIN_RGB = ((225, 190, 160), (190, 145, 110), (150, 105, 75))
ACCESSORY_NAMES = ("black", "grey")
# How many (torso A, torso B, legs) colour triples exist for the whole dataset; ~8 identities of a
# 50-identity test set share each, which keeps the colour-histogram baseline well below 20% mAP.
NUM_OUTFIT_SCHEMES = 3
TEXTURE_KINDS = ("horizontal", "vertical", "diagonal", "checks", "panel")
BAG_KINDS = ("none", "shoulder", "backpack")
HAIR_STYLES = ("short", "long", "cap")


def _bgr(rgb: Sequence[int]) -> tuple[int, int, int]:
    return (int(rgb[2]), int(rgb[1]), int(rgb[0]))


@dataclass(frozen=True)
class Appearance:
    """What stays the same across all images of one identity (colours are BGR)."""

    torso_a: tuple[int, int, int]
    torso_b: tuple[int, int, int]
    legs: tuple[int, int, int]
    shoes: tuple[int, int, int]
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    hair_style: str
    cap: tuple[int, int, int]
    long_sleeves: bool
    texture: str
    texture_cycles: float  # texture periods over the torso height: the identity's spatial frequency
    texture_angle: float  # diagonal stripes: +-45 degrees
    panel_fraction: float  # open-jacket panel: its width over the torso width
    bag: str
    bag_color: tuple[int, int, int]
    bag_side: int  # -1 left, +1 right (of the unflipped image)
    body_fraction: float  # person height over image height
    head_fraction: float  # of the person height
    torso_fraction: float
    shoulder_fraction: float
    hip_ratio: float  # hip width over shoulder width
    leg_fraction: float  # leg width over the person height


@functools.lru_cache(maxsize=8)
def _outfit_schemes(seed: int) -> tuple[tuple[int, int, int], ...]:
    """``NUM_OUTFIT_SCHEMES`` distinct (torso A, torso B, legs) palette-index triples, shared by all domains."""
    rng = np.random.default_rng([seed, _STREAM_SCHEMES])
    schemes: list[tuple[int, int, int]] = []
    while len(schemes) < NUM_OUTFIT_SCHEMES:
        a, b = rng.choice(len(_PALETTE_NAMES), size=2, replace=False)
        legs = int(rng.integers(len(_PALETTE_NAMES)))
        scheme = (int(a), int(b), legs)
        if scheme not in schemes and (b, a, legs) not in schemes:
            schemes.append(scheme)
    return tuple(schemes)


@functools.lru_cache(maxsize=4096)  # an identity's images are rendered together; drawing it once is enough
def sample_appearance(seed: int, domain: int, pid: int) -> Appearance:
    """The stable appearance of identity ``pid`` of ``domain`` (a function of its arguments only)."""
    rng = np.random.default_rng([seed, _STREAM_IDENTITY, domain, pid])
    # Schemes cycle with the pid, so every range of identities shares them evenly: no small, easy groups.
    a, b, legs = _outfit_schemes(seed)[pid % NUM_OUTFIT_SCHEMES]
    if rng.random() < 0.5:  # which torso colour is the ground and which the pattern: identity, not histogram
        a, b = b, a
    palette = [_bgr(PALETTE_RGB[name]) for name in _PALETTE_NAMES]
    accessories = [_bgr(PALETTE_RGB[name]) for name in ACCESSORY_NAMES]
    return Appearance(
        torso_a=palette[a],
        torso_b=palette[b],
        legs=palette[legs],
        shoes=accessories[int(rng.integers(len(accessories)))],
        skin=_bgr(SKIN_RGB[int(rng.integers(len(SKIN_RGB)))]),
        hair=_bgr(HAIR_RGB[int(rng.integers(len(HAIR_RGB)))]),
        hair_style=HAIR_STYLES[int(rng.integers(len(HAIR_STYLES)))],
        cap=accessories[int(rng.integers(len(accessories)))],
        long_sleeves=bool(rng.random() < 0.5),
        texture=TEXTURE_KINDS[int(rng.integers(len(TEXTURE_KINDS)))],
        texture_cycles=float(rng.uniform(2.0, 6.5)),
        texture_angle=float(rng.choice([-45.0, 45.0])),
        panel_fraction=float(rng.uniform(0.45, 0.55)),
        bag=BAG_KINDS[int(rng.integers(len(BAG_KINDS)))],
        bag_color=accessories[int(rng.integers(len(accessories)))],
        bag_side=int(rng.choice([-1, 1])),
        body_fraction=float(rng.uniform(0.84, 0.93)),
        head_fraction=float(rng.uniform(0.12, 0.15)),
        torso_fraction=float(rng.uniform(0.29, 0.36)),
        shoulder_fraction=float(rng.uniform(0.24, 0.31)),
        hip_ratio=float(rng.uniform(0.72, 0.95)),
        leg_fraction=float(rng.uniform(0.065, 0.09)),
    )


# ------------------------------------------------------------------------------------------------ textures
# Each texture maps torso coordinates (u across, v down; pixels from the torso's top centre) to the weight
# of colour B in [0, 1]. A sine clipped at amplitude period/(2*pi) gives square waves with ~1 px soft edges.
def _square_wave(coord: np.ndarray, period: float, phase: float) -> np.ndarray:
    amplitude = max(period / (2 * math.pi), 0.5)
    return np.clip(0.5 + amplitude * np.sin(2 * math.pi * coord / period + phase), 0.0, 1.0)


def _texture_horizontal(u, v, period, phase, app: Appearance, torso_w: float) -> np.ndarray:
    return _square_wave(v, period, phase)


def _texture_vertical(u, v, period, phase, app: Appearance, torso_w: float) -> np.ndarray:
    return _square_wave(u, period, phase)


def _texture_diagonal(u, v, period, phase, app: Appearance, torso_w: float) -> np.ndarray:
    theta = math.radians(app.texture_angle)
    return _square_wave(u * math.cos(theta) + v * math.sin(theta), period, phase)


def _texture_checks(u, v, period, phase, app: Appearance, torso_w: float) -> np.ndarray:
    su, sv = _square_wave(u, period, phase), _square_wave(v, period, phase)
    return su * (1 - sv) + (1 - su) * sv


def _texture_panel(u, v, period, phase, app: Appearance, torso_w: float) -> np.ndarray:
    half = 0.5 * app.panel_fraction * torso_w
    return np.clip(half - np.abs(u) + 0.5, 0.0, 1.0)


TEXTURES: dict[str, Callable[..., np.ndarray]] = {
    "horizontal": _texture_horizontal,
    "vertical": _texture_vertical,
    "diagonal": _texture_diagonal,
    "checks": _texture_checks,
    "panel": _texture_panel,
}


# --------------------------------------------------------------------------------------------- backgrounds
# A background style renders one camera's scene ((h, w, 3) float32, 0..255) larger than the image; each
# image crops it at a random offset. Styles differ in frequency content: smooth walls versus bricks/speckle.
def _background_plain(
    rng: np.random.Generator, shape: tuple[int, int], scale: float, wall: np.ndarray, floor: np.ndarray
) -> np.ndarray:
    hh, ww = shape
    horizon = int(hh * rng.uniform(0.58, 0.75))
    image = np.empty((hh, ww, 3), np.float32)
    image[:horizon] = wall
    ramp = np.linspace(0.9, 1.1, hh - horizon, dtype=np.float32)[:, None, None]
    image[horizon:] = floor * ramp
    # Low-frequency illumination blotches: a 3x5 random grid upsampled smoothly.
    blotches = cv2.resize(
        rng.uniform(-18, 18, size=(5, 3)).astype(np.float32), (ww, hh), interpolation=cv2.INTER_CUBIC
    )
    return image + blotches[:, :, None]


def _background_bricks(
    rng: np.random.Generator, shape: tuple[int, int], scale: float, wall: np.ndarray, floor: np.ndarray
) -> np.ndarray:
    image = _background_plain(rng, shape, scale, wall, floor)
    hh, ww = shape
    row = max(3.0, 6.0 * scale)
    brick = 2.3 * row
    y, x = np.mgrid[0:hh, 0:ww].astype(np.float32)
    course = np.floor(y / row)
    x_shifted = x + (course % 2) * brick / 2
    mortar = (np.mod(y, row) < max(1.0, scale)) | (np.mod(x_shifted, brick) < max(1.0, scale))
    shade = rng.uniform(-12, 12, size=(int(course.max()) + 1, int(ww / brick) + 2))
    brick_shade = shade[course.astype(int), np.floor(x_shifted / brick).astype(int)]
    image += brick_shade[:, :, None]
    image[mortar] *= 0.6
    return image


def _background_speckle(
    rng: np.random.Generator, shape: tuple[int, int], scale: float, wall: np.ndarray, floor: np.ndarray
) -> np.ndarray:
    image = _background_plain(rng, shape, scale, wall, floor)
    grain = rng.normal(0, 26, size=shape).astype(np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), 0.6 * scale)
    colour_grain = rng.normal(0, 8, size=(*shape, 3)).astype(np.float32)
    return image + grain[:, :, None] + colour_grain


BACKGROUNDS: dict[str, Callable[..., np.ndarray]] = {
    "plain": _background_plain,
    "bricks": _background_bricks,
    "speckle": _background_speckle,
}


# ------------------------------------------------------------------------------------------------- domains
@dataclass(frozen=True)
class DomainRecipe:
    """How one domain's camera pipeline moves colour and frequency content (applied in this order)."""

    description: str
    background: str  # key of BACKGROUNDS
    blur_sigma: float  # Gaussian optics blur (low-pass), pixels at REFERENCE_HEIGHT; 0 = sharp
    resample_factor: float  # down-sample by this factor (area) then up again (bilinear); 1 = none
    color_gain: tuple[float, float, float]  # RGB multipliers: the colour cast / exposure
    gamma: float  # output = input ** gamma on [0, 1]; > 1 darkens mid-tones, < 1 washes them out
    noise_std: float  # additive Gaussian sensor noise (0..255 scale), per pixel and channel
    jpeg_quality: int


DOMAIN_RECIPES: tuple[DomainRecipe, ...] = (
    DomainRecipe(
        "clean and sharp: neutral colour, no blur or noise, high JPEG quality, plain walls",
        background="plain",
        blur_sigma=0.0,
        resample_factor=1.0,
        color_gain=(1.0, 1.0, 1.0),
        gamma=1.0,
        noise_std=0.0,
        jpeg_quality=95,
    ),
    DomainRecipe(
        "blurred (low-pass) with a warm cast and slightly lifted mid-tones, plain walls",
        background="plain",
        blur_sigma=1.6,
        resample_factor=1.0,
        color_gain=(1.12, 1.0, 0.78),
        gamma=0.85,
        noise_std=1.0,
        jpeg_quality=90,
    ),
    DomainRecipe(
        "noisy sensor (high frequencies) and heavy JPEG compression, slight cool cast, brick walls",
        background="bricks",
        blur_sigma=0.0,
        resample_factor=1.0,
        color_gain=(0.95, 1.0, 1.06),
        gamma=1.1,
        noise_std=14.0,
        jpeg_quality=30,
    ),
    DomainRecipe(
        "low resolution (down/up-sampled), strong gamma (dark, contrasty), speckled textured background",
        background="speckle",
        blur_sigma=0.0,
        resample_factor=0.4,
        color_gain=(1.05, 1.05, 1.05),
        gamma=1.8,
        noise_std=3.0,
        jpeg_quality=85,
    ),
    DomainRecipe(
        "cool cast, mild blur, moderate noise and compression, brick walls",
        background="bricks",
        blur_sigma=0.8,
        resample_factor=1.0,
        color_gain=(0.85, 0.97, 1.15),
        gamma=0.8,
        noise_std=5.0,
        jpeg_quality=70,
    ),
    DomainRecipe(
        "night: under-exposed, bluish, down-sampled and noisy, speckled background",
        background="speckle",
        blur_sigma=0.6,
        resample_factor=0.6,
        color_gain=(0.6, 0.63, 0.72),
        gamma=1.3,
        noise_std=9.0,
        jpeg_quality=60,
    ),
)


@dataclass(frozen=True)
class CameraSetup:
    """One camera of a domain: its scene (larger than an image) and its mild colour differences."""

    background: np.ndarray  # (H + 2 * margin, W + 2 * margin, 3) uint8 BGR
    margin: int
    brightness: float
    tint_rgb: tuple[float, float, float]


@functools.lru_cache(maxsize=64)
def camera_setup(seed: int, domain: int, camera: int, height: int, width: int) -> CameraSetup:
    """Camera ``camera`` (1-based) of ``domain``: a function of its arguments only."""
    # The domain's site: muted wall and floor colours (grey plus a tint, like pavements and walls; the
    # person carries the saturated colours). Camera 0 of the stream is the site, cameras 1.. vary it mildly.
    site = np.random.default_rng([seed, _STREAM_CAMERA, domain, 0])
    wall = site.uniform(80, 190) + site.uniform(-22, 22, size=3)
    floor = wall * site.uniform(0.55, 0.9) + site.uniform(-15, 15, size=3)
    rng = np.random.default_rng([seed, _STREAM_CAMERA, domain, camera])
    wall = np.clip(wall * rng.uniform(0.9, 1.1) + rng.uniform(-8, 8, size=3), 0, 255)
    floor = np.clip(floor * rng.uniform(0.9, 1.1) + rng.uniform(-8, 8, size=3), 0, 255)
    scale = height / REFERENCE_HEIGHT
    margin = max(2, round(0.08 * height))
    shape = (height + 2 * margin, width + 2 * margin)
    background = BACKGROUNDS[DOMAIN_RECIPES[domain].background](rng, shape, scale, wall, floor)
    background = np.clip(np.rint(background), 0, 255).astype(np.uint8)
    return CameraSetup(
        background=background,
        margin=margin,
        brightness=float(rng.uniform(0.88, 1.12)),
        tint_rgb=tuple(float(t) for t in rng.uniform(0.94, 1.06, size=3)),
    )


# ---------------------------------------------------------------------------------------------- rendering
_SHIFT = 4  # cv2 fixed-point sub-pixel bits: coordinates are multiplied by 16
_ONE = 1 << _SHIFT


def _pt(x: float, y: float) -> tuple[int, int]:
    return (round(x * _ONE), round(y * _ONE))


def _line(img: np.ndarray, p: tuple[float, float], q: tuple[float, float], color, thickness: float) -> None:
    cv2.line(img, _pt(*p), _pt(*q), color, max(1, round(thickness)), cv2.LINE_AA, _SHIFT)


def _ellipse(img, center, axes, color, start: float = 0.0, end: float = 360.0) -> None:
    cv2.ellipse(img, _pt(*center), _pt(*axes), 0.0, start, end, color, -1, cv2.LINE_AA, _SHIFT)


def _textured_torso(img: np.ndarray, quad: np.ndarray, app: Appearance, period: float, phase: float) -> None:
    """Composite the identity's two-colour texture inside the torso quadrilateral ``quad`` (4, 2)."""
    h, w = img.shape[:2]
    x0, y0 = np.maximum(np.floor(quad.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(quad.max(0)).astype(int) + 2, (w, h))
    if x1 <= x0 or y1 <= y0:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    local = np.rint((quad - (x0, y0)) * _ONE).astype(np.int32)
    cv2.fillConvexPoly(mask, local, 255, cv2.LINE_AA, _SHIFT)
    alpha = (mask.astype(np.float32) / 255.0)[:, :, None]
    top_centre = quad[:2].mean(0)
    v, u = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    u -= top_centre[0]
    v -= top_centre[1]
    torso_w = float(quad[1, 0] - quad[0, 0])
    weight_b = TEXTURES[app.texture](u, v, period, phase, app, torso_w)[:, :, None]
    cloth = np.float32(app.torso_a) * (1 - weight_b) + np.float32(app.torso_b) * weight_b
    region = img[y0:y1, x0:x1].astype(np.float32)
    img[y0:y1, x0:x1] = np.rint(region * (1 - alpha) + cloth * alpha).astype(np.uint8)


def _draw_person(img: np.ndarray, app: Appearance, rng: np.random.Generator) -> None:
    """Draw one pose of the identity onto ``img`` (H, W, 3) uint8 BGR, in place."""
    h, w = img.shape[:2]
    body = app.body_fraction * h * rng.uniform(0.92, 1.05)  # scale jitter
    cx = w / 2 + rng.uniform(-0.06, 0.06) * w  # crop offset
    top = (h - body) / 2 + rng.uniform(-0.04, 0.04) * h
    back_view = bool(rng.random() < 0.5)

    head_h = app.head_fraction * body
    head_w = 0.78 * head_h
    head_c = (cx, top + head_h / 2)
    torso_top = top + head_h * 1.05
    torso_h = app.torso_fraction * body
    hip_y = torso_top + torso_h
    foot_y = top + body
    shoulder_w = app.shoulder_fraction * body
    hip_w = app.hip_ratio * shoulder_w
    leg_w = app.leg_fraction * body
    arm_w = 0.75 * leg_w

    # Legs (walking stride) and shoes.
    stride = rng.uniform(0.0, 0.11) * body
    for side in (-1, 1):
        hip = (cx + side * (hip_w / 2 - leg_w / 2), hip_y - leg_w / 2)
        ankle = (cx + side * (stride / 2 + leg_w * 0.35), foot_y - 0.035 * body)
        _line(img, hip, ankle, app.legs, leg_w)
        _ellipse(
            img,
            (ankle[0] + side * 0.2 * leg_w, foot_y - 0.022 * body),
            (0.65 * leg_w, 0.028 * body),
            app.shoes,
        )

    # Long hair falls behind the shoulders: drawn before the torso.
    if app.hair_style == "long":
        hair_quad = np.array(
            [
                (cx - head_w * 0.55, head_c[1]),
                (cx + head_w * 0.55, head_c[1]),
                (cx + head_w * 0.6, torso_top + 0.35 * torso_h),
                (cx - head_w * 0.6, torso_top + 0.35 * torso_h),
            ]
        )
        cv2.fillConvexPoly(img, np.rint(hair_quad * _ONE).astype(np.int32), app.hair, cv2.LINE_AA, _SHIFT)

    # Arms (swing), long or short sleeves, hands.
    arm_len = 0.36 * body
    for side in (-1, 1):
        shoulder = (cx + side * (shoulder_w / 2 - arm_w * 0.2), torso_top + arm_w * 0.5)
        swing = rng.uniform(-0.05, 0.05) * body
        hand = (shoulder[0] + side * 0.035 * body + swing * 0.3, shoulder[1] + arm_len - abs(swing) * 0.2)
        if app.long_sleeves:
            _line(img, shoulder, hand, app.torso_a, arm_w)
        else:
            elbow = (shoulder[0] + 0.4 * (hand[0] - shoulder[0]), shoulder[1] + 0.4 * (hand[1] - shoulder[1]))
            _line(img, elbow, hand, app.skin, arm_w * 0.85)
            _line(img, shoulder, elbow, app.torso_a, arm_w)
        _ellipse(img, hand, (arm_w * 0.55, arm_w * 0.6), app.skin)

    # Torso: a trapezoid filled with the identity's texture at its spatial frequency.
    quad = np.array(
        [
            (cx - shoulder_w / 2, torso_top),
            (cx + shoulder_w / 2, torso_top),
            (cx + hip_w / 2, hip_y),
            (cx - hip_w / 2, hip_y),
        ],
        np.float64,
    )
    period = torso_h / app.texture_cycles
    _textured_torso(img, quad, app, period, rng.uniform(-0.4, 0.4))

    # Bag.
    strap = max(1.0, 0.018 * body)
    side = app.bag_side
    if app.bag == "shoulder":
        bag_top = hip_y - 0.06 * body
        _line(
            img,
            (cx - side * shoulder_w * 0.35, torso_top),
            (cx + side * hip_w * 0.5, bag_top),
            app.bag_color,
            strap,
        )
        bag_x = cx + side * (hip_w / 2 + 0.02 * body)
        bag = np.array(
            [
                (bag_x - 0.06 * body, bag_top),
                (bag_x + 0.06 * body, bag_top),
                (bag_x + 0.065 * body, bag_top + 0.1 * body),
                (bag_x - 0.065 * body, bag_top + 0.1 * body),
            ]
        )
        cv2.fillConvexPoly(img, np.rint(bag * _ONE).astype(np.int32), app.bag_color, cv2.LINE_AA, _SHIFT)
    elif app.bag == "backpack":
        if back_view:
            pack = np.array(
                [
                    (cx - shoulder_w * 0.38, torso_top + 0.1 * torso_h),
                    (cx + shoulder_w * 0.38, torso_top + 0.1 * torso_h),
                    (cx + shoulder_w * 0.36, torso_top + 0.75 * torso_h),
                    (cx - shoulder_w * 0.36, torso_top + 0.75 * torso_h),
                ]
            )
            cv2.fillConvexPoly(img, np.rint(pack * _ONE).astype(np.int32), app.bag_color, cv2.LINE_AA, _SHIFT)
        else:
            for s in (-1, 1):
                x = cx + s * shoulder_w * 0.28
                _line(
                    img,
                    (x, torso_top),
                    (x + s * 0.01 * body, torso_top + 0.65 * torso_h),
                    app.bag_color,
                    strap,
                )

    # Head, hair or cap; from the back the hair hides the face.
    _ellipse(
        img, head_c, (head_w / 2, head_h / 2), app.hair if back_view and app.hair_style != "cap" else app.skin
    )
    if app.hair_style == "cap":
        _ellipse(
            img, (head_c[0], head_c[1] - 0.05 * head_h), (head_w * 0.53, head_h * 0.45), app.cap, 180, 360
        )
        brim_dir = -1 if back_view else 1
        _line(
            img,
            (head_c[0] - head_w * 0.45, head_c[1] - 0.05 * head_h),
            (head_c[0] + brim_dir * head_w * 0.75, head_c[1] - 0.05 * head_h),
            app.cap,
            max(1.0, 0.12 * head_h),
        )
    elif not back_view:
        _ellipse(
            img, (head_c[0], head_c[1] - 0.08 * head_h), (head_w * 0.54, head_h * 0.46), app.hair, 180, 360
        )


def _occlude(img: np.ndarray, rng: np.random.Generator) -> None:
    """A partial occluder: a box rising from the bottom (car, bench) or a post at one side."""
    h, w = img.shape[:2]
    color = tuple(int(c) for c in rng.integers(30, 226, size=3))
    if rng.random() < 0.5:
        y = round(h * (1 - rng.uniform(0.15, 0.35)))
        img[y:] = color
    else:
        width = max(1, round(w * rng.uniform(0.15, 0.3)))
        if rng.random() < 0.5:
            img[:, :width] = color
        else:
            img[:, w - width :] = color


def _color_lut(recipe: DomainRecipe, camera: CameraSetup, light_rgb: np.ndarray) -> np.ndarray:
    """Per-channel (256, 1, 3) uint8 lookup table: exposure x cast x tint x light, then gamma (BGR order)."""
    gains_rgb = np.array(recipe.color_gain) * np.array(camera.tint_rgb) * camera.brightness * light_rgb
    levels = np.arange(256, dtype=np.float64)[:, None] / 255.0
    out = np.clip(levels * gains_rgb[::-1][None, :], 0.0, 1.0) ** recipe.gamma
    return np.rint(out * 255.0).astype(np.uint8).reshape(256, 1, 3)


def render_image(
    seed: int, domain: int, pid: int, camera: int, image_index: int, height: int, width: int
) -> np.ndarray:
    """One synthetic image (H, W, 3) uint8 BGR before JPEG encoding; depends only on its arguments."""
    recipe = DOMAIN_RECIPES[domain]
    cam = camera_setup(seed, domain, camera, height, width)
    app = sample_appearance(seed, domain, pid)
    rng = np.random.default_rng([seed, _STREAM_IMAGE, domain, pid, image_index])

    dy, dx = rng.integers(0, 2 * cam.margin + 1, size=2)
    img = cam.background[dy : dy + height, dx : dx + width].copy()
    _draw_person(img, app, rng)
    if rng.random() < 0.3:
        _occlude(img, rng)
    if rng.random() < 0.5:
        img = img[:, ::-1].copy()

    scale = height / REFERENCE_HEIGHT
    if recipe.blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), recipe.blur_sigma * scale)
    if recipe.resample_factor < 1:
        small = (
            max(1, round(width * recipe.resample_factor)),
            max(1, round(height * recipe.resample_factor)),
        )
        img = cv2.resize(
            cv2.resize(img, small, interpolation=cv2.INTER_AREA),
            (width, height),
            interpolation=cv2.INTER_LINEAR,
        )
    # The light on this image: brightness and colour temperature vary between shots of one camera.
    light_rgb = rng.uniform(0.85, 1.15) * rng.uniform(0.96, 1.04, size=3)
    img = cv2.LUT(img, _color_lut(recipe, cam, light_rgb))
    if recipe.noise_std > 0:
        noise = rng.standard_normal(img.shape, dtype=np.float32) * np.float32(recipe.noise_std)
        img = np.clip(np.rint(img + noise), 0, 255).astype(np.uint8)
    return img


def encode_jpeg(img: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of a (H, W, 3) uint8 BGR image (deterministic for equal pixels)."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f"cv2.imencode failed for an image of shape {img.shape}")
    return buf.tobytes()


# -------------------------------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class ImageSpec:
    """One file to render: where it goes and the arguments of :func:`render_image`."""

    relpath: str  # relative to the synthetic folder
    domain: int
    pid: int
    camera: int
    image_index: int


@dataclass(frozen=True)
class SyntheticParams:
    """Everything that determines the generated files (recorded in the manifest)."""

    seed: int = 0
    num_domains: int = 4
    ids_train: int = 100
    ids_test: int = 50
    height: int = 128
    width: int = 64
    cameras: int = 4
    images_per_camera: int = 5

    def validate(self) -> None:
        """Raise ``SyntheticParameterError`` (a ``ValueError``) naming the first parameter out of range."""
        checks = (
            ("seed", self.seed >= 0, ">= 0"),
            ("num_domains", 1 <= self.num_domains <= len(DOMAIN_RECIPES), f"in 1..{len(DOMAIN_RECIPES)}"),
            ("ids_train", self.ids_train >= 1, ">= 1"),
            ("ids_test", self.ids_test >= 1, ">= 1"),
            (
                "ids_train + ids_test",
                self.ids_train + self.ids_test <= MAX_PID,
                f"<= {MAX_PID} (4-digit pids)",
            ),
            ("height", self.height >= 32, ">= 32"),
            ("width", self.width >= 16, ">= 16"),
            ("cameras", 2 <= self.cameras <= MAX_CAMERAS, f"in 2..{MAX_CAMERAS} (one digit, Market-1501)"),
            ("images_per_camera", self.images_per_camera >= 2, ">= 2 (a query needs a gallery match)"),
        )
        for field, ok, expected in checks:
            if not ok:
                raise SyntheticParameterError(
                    f"synthetic parameter {field} must be {expected}; got {dataclasses.asdict(self)}"
                )
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise SyntheticParameterError(
                    f"synthetic parameter {field.name} must be an int; got {value!r}"
                )


def plan_domain(params: SyntheticParams, domain: int) -> list[ImageSpec]:
    """All files of one domain. Train pids are 1..ids_train, test pids follow; each identity visits a random
    subset of >= 2 cameras; a test identity gives one query per visited camera, the rest is gallery."""
    specs: list[ImageSpec] = []
    num_pids = params.ids_train + params.ids_test
    for pid in range(1, num_pids + 1):
        rng = np.random.default_rng([params.seed, _STREAM_VISITS, domain, pid])
        num_visits = int(rng.integers(2, params.cameras + 1))
        visited = sorted(int(c) + 1 for c in rng.choice(params.cameras, size=num_visits, replace=False))
        is_test = pid > params.ids_train
        for camera in visited:
            sequence = int(rng.integers(1, 7))
            query_k = int(rng.integers(params.images_per_camera))
            for k in range(params.images_per_camera):
                frame = 1 + 40 * k + int(rng.integers(40))  # increasing in k: names are unique
                split = (QUERY_DIR if k == query_k else GALLERY_DIR) if is_test else TRAIN_DIR
                name = f"{pid:04d}_c{camera}s{sequence}_{frame:06d}_01.jpg"
                specs.append(
                    ImageSpec(
                        relpath=f"domain{domain}/{split}/{name}",
                        domain=domain,
                        pid=pid,
                        camera=camera,
                        image_index=(camera - 1) * params.images_per_camera + k,
                    )
                )
    return specs


def _render_and_write(
    out_dir: str, params: SyntheticParams, specs: Sequence[ImageSpec]
) -> list[tuple[str, str]]:
    """Render, encode and write ``specs`` under ``out_dir``; returns (relpath, sha256) pairs."""
    results = []
    with _single_threaded_cv2():
        for spec in specs:
            img = render_image(
                params.seed, spec.domain, spec.pid, spec.camera, spec.image_index, params.height, params.width
            )
            data = encode_jpeg(img, DOMAIN_RECIPES[spec.domain].jpeg_quality)
            with open(os.path.join(out_dir, spec.relpath), "wb") as f:
                f.write(data)
            results.append((spec.relpath, hashlib.sha256(data).hexdigest()))
    return results


@contextlib.contextmanager
def _single_threaded_cv2() -> Iterator[None]:
    # OpenCV's thread pool only adds overhead on 128x64 images and competes with the caller's workers.
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def _chunks(items: Sequence[ImageSpec], size: int) -> list[Sequence[ImageSpec]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def total_hash(files: Mapping[str, str]) -> str:
    """SHA-256 over the sorted ``relpath sha256`` lines: one value naming the whole tree."""
    digest = hashlib.sha256()
    for relpath in sorted(files):
        digest.update(f"{relpath} {files[relpath]}\n".encode())
    return digest.hexdigest()


def _manifest(params: SyntheticParams, files: dict[str, str]) -> dict[str, Any]:
    domains = []
    for k in range(params.num_domains):
        counts = {split: 0 for split in SPLIT_DIRS}
        for relpath in files:
            d, split, _ = relpath.split("/")
            if d == f"domain{k}":
                counts[split] += 1
        cameras = []
        for c in range(1, params.cameras + 1):
            cam = camera_setup(params.seed, k, c, params.height, params.width)
            cameras.append(
                {
                    "camera": c,
                    "brightness": round(cam.brightness, 4),
                    "tint_rgb": [round(t, 4) for t in cam.tint_rgb],
                }
            )
        domains.append(
            {
                "name": f"domain{k}",
                "recipe": dataclasses.asdict(DOMAIN_RECIPES[k]),
                "cameras": cameras,
                "train_pids": [1, params.ids_train],
                "test_pids": [params.ids_train + 1, params.ids_train + params.ids_test],
                "counts": counts,
            }
        )
    return {
        "format": MANIFEST_FORMAT,
        "renderer_version": RENDERER_VERSION,
        "opencv_version": cv2.__version__,
        "params": dataclasses.asdict(params),
        "palette_rgb": PALETTE_RGB,
        "outfit_schemes": [[_PALETTE_NAMES[i] for i in s] for s in _outfit_schemes(params.seed)],
        "domains": domains,
        "num_files": len(files),
        "total_sha256": total_hash(files),
        "files": dict(sorted(files.items())),
    }


# ------------------------------------------------------------------------------------------------ public API
def generate_synthetic(
    root: str | os.PathLike,
    seed: int = 0,
    num_domains: int = 4,
    ids_train: int = 100,
    ids_test: int = 50,
    height: int = 128,
    width: int = 64,
    cameras: int = 4,
    images_per_camera: int = 5,
    workers: int = 1,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write ``<root>/synthetic`` (all domains and ``manifest.json``) and return the manifest.

    The tree is built in a temporary sibling folder and renamed into place when complete. An existing
    ``<root>/synthetic`` is an error unless ``overwrite`` is set, and even then only a tree with our
    manifest is replaced (never a user's folder).
    """
    params = SyntheticParams(
        seed, num_domains, ids_train, ids_test, height, width, cameras, images_per_camera
    )
    params.validate()
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1; got {workers!r}")
    root = os.fspath(root)
    target = os.path.join(root, SYNTHETIC_DIRNAME)
    if os.path.lexists(target):
        if not overwrite:
            raise FileExistsError(
                f"{target} already exists; delete it, pass overwrite=True (--overwrite), or use "
                "ensure_synthetic() to reuse it when its parameters match"
            )
        read_manifest(target)  # refuses to replace a folder that is not a synthetic tree of ours

    os.makedirs(root, exist_ok=True)
    tmp = staging_dir(root, prefix=f".{SYNTHETIC_DIRNAME}.tmp-")
    try:
        specs = [spec for k in range(num_domains) for spec in plan_domain(params, k)]
        for k in range(num_domains):
            for split in SPLIT_DIRS:
                os.makedirs(os.path.join(tmp, f"domain{k}", split))
        files: dict[str, str] = {}
        if workers == 1:
            files.update(_render_and_write(tmp, params, specs))
        else:
            chunks = _chunks(specs, max(16, math.ceil(len(specs) / (workers * 8))))
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                for pairs in pool.map(_render_and_write, [tmp] * len(chunks), [params] * len(chunks), chunks):
                    files.update(pairs)
        # Imported here: reid_dff.utils pulls in torch, which spawned render workers do not need (seconds each).
        from ..utils.io import atomic_write_json

        # The JSON round trip makes the returned manifest equal to the file (lists, not tuples).
        manifest = json.loads(json.dumps(_manifest(params, files)))
        atomic_write_json(os.path.join(tmp, MANIFEST_NAME), manifest)
        _move_into_place(tmp, target, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _move_into_place(tmp: str, target: str, overwrite: bool) -> None:
    """Rename the finished ``tmp`` tree to ``target`` (replacing an old tree of ours if ``overwrite``)."""
    if overwrite and os.path.lexists(target):
        trash = tempfile.mkdtemp(prefix=f".{SYNTHETIC_DIRNAME}.old-", dir=os.path.dirname(target))
        os.rename(target, os.path.join(trash, "old"))
        os.rename(tmp, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        # rename() refuses a non-empty destination: if another process finished first we keep its tree.
        os.rename(tmp, target)


def read_manifest(synthetic_dir: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a generated tree; ``SyntheticDataError`` if it is absent, unreadable or foreign."""
    synthetic_dir = os.fspath(synthetic_dir)
    path = os.path.join(synthetic_dir, MANIFEST_NAME)
    if not os.path.isfile(path):
        raise SyntheticDataError(
            f"{synthetic_dir} exists but has no {MANIFEST_NAME}: it is not a complete reid-dff synthetic tree "
            f"(maybe an interrupted copy or your own data). Delete it, or set DATASETS.ROOT to another folder."
        )
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise SyntheticDataError(
            f"{path} is not valid JSON ({e}); delete {synthetic_dir} to regenerate it"
        ) from e
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise SyntheticDataError(
            f"{path} is not a reid-dff synthetic manifest (expected format {MANIFEST_FORMAT!r}); "
            f"delete {synthetic_dir} or set DATASETS.ROOT to another folder"
        )
    return manifest


def verify_synthetic(synthetic_dir: str | os.PathLike, hashes: bool = True) -> None:
    """Check every file listed in the manifest exists (with its SHA-256 unless ``hashes`` is False) and
    nothing else is there."""
    synthetic_dir = os.fspath(synthetic_dir)
    manifest = read_manifest(synthetic_dir)
    listed: dict[str, str] = manifest["files"]
    on_disk = set()
    for dirpath, _, names in os.walk(synthetic_dir):
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), synthetic_dir).replace(os.sep, "/")
            if rel != MANIFEST_NAME:
                on_disk.add(rel)
    missing, extra = sorted(set(listed) - on_disk), sorted(on_disk - set(listed))
    if missing or extra:
        raise SyntheticDataError(
            f"{synthetic_dir} does not match its manifest: missing {missing[:3]} ({len(missing)}), "
            f"unexpected {extra[:3]} ({len(extra)}); delete the folder to regenerate it"
        )
    for rel, expected in listed.items() if hashes else ():
        with open(os.path.join(synthetic_dir, rel), "rb") as f:
            actual = hashlib.sha256(f.read()).hexdigest()
        if actual != expected:
            raise SyntheticDataError(
                f"{os.path.join(synthetic_dir, rel)} has SHA-256 {actual}, the manifest says {expected}; "
                "delete the folder to regenerate it"
            )


# Config key (under DATASETS.SYNTHETIC) of each generation parameter.
_CONFIG_KEYS = {
    "seed": "SEED",
    "num_domains": "NUM_DOMAINS",
    "ids_train": "IDS_TRAIN",
    "ids_test": "IDS_TEST",
    "height": "HEIGHT",
    "width": "WIDTH",
    "cameras": "CAMERAS",
    "images_per_camera": "IMAGES_PER_CAMERA",
}


def _params_from(cfg_or_params: Any) -> tuple[str, SyntheticParams]:
    if hasattr(cfg_or_params, "DATASETS"):
        section = cfg_or_params.DATASETS.SYNTHETIC
        values = {field: section[key] for field, key in _CONFIG_KEYS.items()}
        return os.fspath(cfg_or_params.DATASETS.ROOT), SyntheticParams(**values)
    if isinstance(cfg_or_params, Mapping):
        values = dict(cfg_or_params)
        if "root" not in values:
            raise ValueError("ensure_synthetic(mapping) needs a 'root' key (the data root)")
        root = os.fspath(values.pop("root"))
        unknown = set(values) - set(_CONFIG_KEYS)
        if unknown:
            raise ValueError(
                f"unknown synthetic parameters {sorted(unknown)}; expected some of {sorted(_CONFIG_KEYS)}"
            )
        return root, SyntheticParams(**values)
    raise TypeError(
        f"ensure_synthetic expects a config (with DATASETS) or a mapping; got {type(cfg_or_params)}"
    )


def ensure_synthetic(cfg_or_params: Any, workers: int = 1) -> str:
    """Path of ``<DATASETS.ROOT>/synthetic``: generated if absent, else checked against the config.

    ``cfg_or_params`` is a config (``DATASETS.ROOT`` and ``DATASETS.SYNTHETIC.*``) or a mapping with
    ``root`` and any :class:`SyntheticParams` fields. An existing tree made with other parameters or
    another renderer version, or missing files its manifest lists, is an error: it is never overwritten
    silently.
    """
    root, params = _params_from(cfg_or_params)
    params.validate()
    target = os.path.join(root, SYNTHETIC_DIRNAME)
    if not os.path.lexists(target):
        try:
            generate_synthetic(root, **dataclasses.asdict(params), workers=workers)
        except OSError:
            # Another process (e.g. another DDP rank) may have renamed its complete tree into place first.
            if not os.path.isdir(target):
                raise
    _check_manifest_matches(target, params)
    verify_synthetic(target, hashes=False)  # a tree with deleted or stray files would train on less
    return target


def _check_manifest_matches(target: str, params: SyntheticParams) -> None:
    manifest = read_manifest(target)
    existing = manifest.get("params", {})
    wanted = dataclasses.asdict(params)
    diffs = [
        f"DATASETS.SYNTHETIC.{_CONFIG_KEYS[k]}: config {wanted[k]!r}, existing data {existing.get(k)!r}"
        for k in wanted
        if existing.get(k) != wanted[k]
    ]
    if manifest.get("renderer_version") != RENDERER_VERSION:
        diffs.append(
            f"renderer version: code {RENDERER_VERSION}, existing data {manifest.get('renderer_version')!r}"
        )
    if diffs:
        raise SyntheticDataError(
            f"{target} was generated with other parameters ({'; '.join(diffs)}). Delete {target} to "
            "regenerate it, or change the config to match (or point DATASETS.ROOT elsewhere)."
        )


# ------------------------------------------------------------------------------------- colour-histogram baseline
HIST_BINS = (8, 4, 4)  # joint H x S x V bins per body third


def color_histogram_features(paths: Sequence[str | os.PathLike]) -> np.ndarray:
    """(N, 3 * 128) float32 colour-histogram baseline features, L2-normalized (cosine = dot).

    The central half of the image width (where the body is in a pedestrian box) is cut into top, middle and
    bottom thirds; each gives a joint 8 x 4 x 4 HSV histogram normalized to sum 1. The square root
    (Hellinger) keeps large uniform regions from dominating the cosine.
    """
    hb, sb, vb = HIST_BINS
    dim = hb * sb * vb
    features = np.zeros((len(paths), 3 * dim), np.float32)
    for i, path in enumerate(paths):
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"image not found: {path}")
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"cannot decode image {path}: expected a readable JPEG/PNG file")
        w = img.shape[1]
        body = img[:, w // 4 : w - w // 4]
        hsv = cv2.cvtColor(body, cv2.COLOR_BGR2HSV).astype(np.int32)  # H in 0..179, S and V in 0..255
        bins = (
            (hsv[..., 0] * hb // 180) * (sb * vb) + (hsv[..., 1] * sb // 256) * vb + hsv[..., 2] * vb // 256
        )
        for t, rows in enumerate(np.array_split(bins, 3, axis=0)):
            hist = np.bincount(rows.ravel(), minlength=dim).astype(np.float32)
            features[i, t * dim : (t + 1) * dim] = np.sqrt(hist / max(rows.size, 1))
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def _split_records(split_dir: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    paths, pids, camids = [], [], []
    for name in sorted(os.listdir(split_dir)):
        match = MARKET_NAME_RE.match(name)
        if match is None:
            raise SyntheticDataError(
                f"{os.path.join(split_dir, name)} is not a Market-1501 name PPPP_cCsS_FFFFFF_NN.jpg"
            )
        paths.append(os.path.join(split_dir, name))
        pids.append(int(match.group(1)))
        camids.append(int(match.group(2)) - 1)
    return paths, np.asarray(pids, np.int64), np.asarray(camids, np.int64)


def histogram_baseline_report(
    synthetic_dir: str | os.PathLike, evaluate_fn: Callable[..., Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Per domain: mAP and rank-1 of the colour-histogram baseline (cosine) on its query/gallery split.

    ``evaluate_fn(qf, gf, q_pids, g_pids, q_camids, g_camids, metric="cosine")`` defaults to
    ``reid_dff.evaluation.evaluate``; it returns a dict with ``"mAP"`` and ``"cmc"``.
    """
    if evaluate_fn is None:
        from ..evaluation import evaluate as evaluate_fn  # lazy: evaluation sits downstream of data
    synthetic_dir = os.fspath(synthetic_dir)
    manifest = read_manifest(synthetic_dir)
    rows = []
    for domain in manifest["domains"]:
        base = os.path.join(synthetic_dir, domain["name"])
        q_paths, q_pids, q_camids = _split_records(os.path.join(base, QUERY_DIR))
        g_paths, g_pids, g_camids = _split_records(os.path.join(base, GALLERY_DIR))
        qf, gf = color_histogram_features(q_paths), color_histogram_features(g_paths)
        result = evaluate_fn(qf, gf, q_pids, g_pids, q_camids, g_camids, metric="cosine")
        rows.append(
            {
                "domain": domain["name"],
                "num_query": len(q_paths),
                "num_gallery": len(g_paths),
                "mAP": float(result["mAP"]),
                "rank1": float(np.asarray(result["cmc"])[0]),
            }
        )
    return rows
