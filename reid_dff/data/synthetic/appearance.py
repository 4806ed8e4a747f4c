"""The stable appearance of a synthetic identity: palette, outfit schemes, body shape and torso textures.

An identity is drawn from a small set of *outfit schemes* shared by many identities (so colour histograms
confuse them), a two-colour torso texture (horizontal, vertical or diagonal stripes, checks, an open-jacket
panel) with an identity-specific spatial frequency, sleeves, hair style and colour, skin tone, shoes, a bag
(none, shoulder bag on one side, backpack) and body proportions. Everything is a function of
``(seed, domain, pid)`` through the random streams below.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# Independent random streams: the first entropy word after the seed says what a generator is for.
STREAM_IDENTITY, STREAM_IMAGE, STREAM_CAMERA, STREAM_VISITS, STREAM_SCHEMES = 1, 2, 3, 4, 5

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
    rng = np.random.default_rng([seed, STREAM_SCHEMES])
    schemes: list[tuple[int, int, int]] = []
    while len(schemes) < NUM_OUTFIT_SCHEMES:
        a, b = rng.choice(len(_PALETTE_NAMES), size=2, replace=False)
        legs = int(rng.integers(len(_PALETTE_NAMES)))
        scheme = (int(a), int(b), legs)
        if scheme not in schemes and (b, a, legs) not in schemes:
            schemes.append(scheme)
    return tuple(schemes)


def outfit_scheme_names(seed: int) -> list[list[str]]:
    """The outfit schemes of ``seed`` as palette colour names (recorded in the manifest)."""
    return [[_PALETTE_NAMES[i] for i in scheme] for scheme in _outfit_schemes(seed)]


@functools.lru_cache(maxsize=4096)  # an identity's images are rendered together; drawing it once is enough
def sample_appearance(seed: int, domain: int, pid: int) -> Appearance:
    """The stable appearance of identity ``pid`` of ``domain`` (a function of its arguments only)."""
    rng = np.random.default_rng([seed, STREAM_IDENTITY, domain, pid])
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
