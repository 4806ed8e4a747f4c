"""Train and test image transforms (torchvision.transforms.v2 on uint8 tensors), normalization included.

Input: ``(H, W, 3)`` uint8 RGB arrays from ``read_image``. Output: ``(3, H, W)`` float32 normalized with
``INPUT.PIXEL_MEAN / PIXEL_STD`` -- normalization lives in the data pipeline, not hidden in the model.
Geometric and colour steps run on uint8 (torchvision's fast path); conversion to float comes last.
``INPUT.STYLE imagenet`` gives the ImageNet recipe (``imagenet_train_transforms`` / ``imagenet_eval_transforms``):
RandomResizedCrop + flip for training, resize 256 / centre crop 224 for evaluation. Inputs may also be
``(3, H, W)`` uint8 tensors (``torchvision.io.decode_jpeg``'s output).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchvision.transforms import v2

from ..config.config import ConfigError

__all__ = [
    "STYLES",
    "build_transforms",
    "eval_resize",
    "imagenet_eval_transforms",
    "imagenet_train_transforms",
]

STYLES = ("resize", "imagenet")
# The evaluation crop is this fraction of the resized shorter side (224 of 256), as in torchvision's recipe.
EVAL_CROP_FRACTION = 0.875


class ContiguousArray:
    """First step: numpy views with negative strides (``bgr[:, :, ::-1]``), which ``ToImage`` refuses,
    become contiguous arrays; anything else passes through."""

    def __call__(self, image: Any) -> Any:
        return np.ascontiguousarray(image) if isinstance(image, np.ndarray) else image

    def __repr__(self) -> str:
        return "ContiguousArray()"


def _to_float(mean: Any, std: Any) -> list[Any]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))]


def imagenet_train_transforms(
    size: Any, mean: Any, std: Any, flip_prob: float = 0.5, scale: tuple[float, float] = (0.08, 1.0)
) -> v2.Compose:
    """ImageNet training: RandomResizedCrop to ``size`` (ratio 3/4-4/3), horizontal flip, float, normalize."""
    steps: list[Any] = [
        ContiguousArray(),
        v2.ToImage(),
        v2.RandomResizedCrop(list(size), scale=scale, antialias=True),
    ]
    if flip_prob > 0:
        steps.append(v2.RandomHorizontalFlip(p=flip_prob))
    return v2.Compose(steps + _to_float(mean, std))


def eval_shorter_side(size: Any, crop_fraction: float = EVAL_CROP_FRACTION) -> int:
    """The shorter side ImageNet evaluation resizes to before its centre crop ``size`` (256 for 224)."""
    return int(round(min(size) / crop_fraction))


def eval_resize(cfg: Any) -> tuple[str, int]:
    """How the test pipeline brings an image to ``INPUT.SIZE_TEST``, for consumers outside reid-dff:
    ``("stretch", 0)`` (resize to the size, aspect ratio not kept) or ``("shorter_side_center_crop", S)``
    (shorter side to ``S``, aspect ratio kept, then the centre ``SIZE_TEST`` crop)."""
    if cfg.INPUT.STYLE == "imagenet":
        return "shorter_side_center_crop", eval_shorter_side(cfg.INPUT.SIZE_TEST)
    return "stretch", 0


def imagenet_eval_transforms(
    size: Any, mean: Any, std: Any, crop_fraction: float = EVAL_CROP_FRACTION
) -> v2.Compose:
    """ImageNet evaluation: shorter side to ``min(size) / crop_fraction`` (256 for 224), centre crop ``size``."""
    resize = eval_shorter_side(size, crop_fraction)
    steps = [ContiguousArray(), v2.ToImage(), v2.Resize(resize, antialias=True), v2.CenterCrop(list(size))]
    return v2.Compose(steps + _to_float(mean, std))


def build_transforms(cfg: Any, is_train: bool) -> v2.Compose:
    """The train (augmenting) or test pipeline from ``cfg.INPUT``; maps an RGB uint8 array to ``(3, H, W)``."""
    size = list(cfg.INPUT.SIZE_TRAIN if is_train else cfg.INPUT.SIZE_TEST)
    style = cfg.INPUT.STYLE
    if style not in STYLES:
        raise ConfigError(f"INPUT.STYLE must be one of {', '.join(STYLES)}, got {style!r}")
    if style == "imagenet":
        if cfg.INPUT.PADDING > 0:
            raise ConfigError(
                f"INPUT.PADDING is {cfg.INPUT.PADDING} but INPUT.STYLE imagenet crops with RandomResizedCrop; "
                "set INPUT.PADDING 0"
            )
        if not is_train:
            return imagenet_eval_transforms(size, cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD)
        steps: list[Any] = [ContiguousArray(), v2.ToImage(), v2.RandomResizedCrop(size, antialias=True)]
    else:
        steps = [ContiguousArray(), v2.ToImage(), v2.Resize(size, antialias=True)]
    if is_train:
        if cfg.INPUT.FLIP_PROB > 0:
            steps.append(v2.RandomHorizontalFlip(p=cfg.INPUT.FLIP_PROB))
        if cfg.INPUT.PADDING > 0:
            steps += [v2.Pad(cfg.INPUT.PADDING), v2.RandomCrop(size)]
        jitter = cfg.INPUT.COLOR_JITTER
        if jitter.ENABLED:
            steps.append(
                v2.RandomApply(
                    [v2.ColorJitter(jitter.BRIGHTNESS, jitter.CONTRAST, jitter.SATURATION, jitter.HUE)],
                    p=jitter.PROB,
                )
            )
    steps += [
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(cfg.INPUT.PIXEL_MEAN), std=list(cfg.INPUT.PIXEL_STD)),
    ]
    if is_train and cfg.INPUT.RANDOM_ERASING.ENABLED:
        # After normalization, erasing with 0 paints the mean colour (as torchreid / fast-reid do).
        steps.append(v2.RandomErasing(p=cfg.INPUT.RANDOM_ERASING.PROB, value=0))
    return v2.Compose(steps)
