"""Rendering one synthetic pedestrian image: the camera's scene, the person, occluders and the domain's
camera pipeline.

- **Per image**: front or back view, pose (stride, arm swing), scale, crop offset, flip, partial occlusion,
  the light (brightness and colour temperature).
- **Cameras** of a domain differ mildly: background scene colours, brightness and tint.
- **Domains** differ in image statistics that move frequency content (:data:`DOMAIN_RECIPES`): colour cast
  and gamma, blur (low-pass), down/up sampling, sensor noise (high frequencies), JPEG quality and the
  background texture.

Every pixel depends only on ``(seed, domain, pid, image index)`` through
``np.random.default_rng([seed, stream, domain, pid, index])``, and ``cv2.imencode`` is deterministic for
equal pixels.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from .appearance import STREAM_CAMERA, STREAM_IMAGE, TEXTURES, Appearance, sample_appearance

# Geometry and blur radii are designed at this image height and scaled to the requested one.
REFERENCE_HEIGHT = 128


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
    grain = cv2.GaussianBlur(rng.normal(0, 26, size=shape).astype(np.float32), (0, 0), 0.6 * scale)
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
    site = np.random.default_rng([seed, STREAM_CAMERA, domain, 0])
    wall = site.uniform(80, 190) + site.uniform(-22, 22, size=3)
    floor = wall * site.uniform(0.55, 0.9) + site.uniform(-15, 15, size=3)
    rng = np.random.default_rng([seed, STREAM_CAMERA, domain, camera])
    wall = np.clip(wall * rng.uniform(0.9, 1.1) + rng.uniform(-8, 8, size=3), 0, 255)
    floor = np.clip(floor * rng.uniform(0.9, 1.1) + rng.uniform(-8, 8, size=3), 0, 255)
    scale = height / REFERENCE_HEIGHT
    margin = max(2, round(0.08 * height))
    shape = (height + 2 * margin, width + 2 * margin)
    background = BACKGROUNDS[DOMAIN_RECIPES[domain].background](rng, shape, scale, wall, floor)
    background = np.clip(np.rint(background), 0, 255).astype(np.uint8)
    brightness = float(rng.uniform(0.88, 1.12))
    tint_r, tint_g, tint_b = (float(t) for t in rng.uniform(0.94, 1.06, size=3))
    return CameraSetup(
        background=background, margin=margin, brightness=brightness, tint_rgb=(tint_r, tint_g, tint_b)
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
    cloth = (
        np.asarray(app.torso_a, np.float32) * (1 - weight_b) + np.asarray(app.torso_b, np.float32) * weight_b
    )
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
    rng = np.random.default_rng([seed, STREAM_IMAGE, domain, pid, image_index])

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
