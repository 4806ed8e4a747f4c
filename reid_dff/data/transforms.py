"""Train and test image transforms (torchvision.transforms.v2 on uint8 tensors), normalization included.

Input: ``(H, W, 3)`` uint8 RGB arrays from ``read_image``. Output: ``(3, H, W)`` float32 normalized with
``INPUT.PIXEL_MEAN / PIXEL_STD`` -- normalization lives in the data pipeline, not hidden in the model.
Geometric and colour steps run on uint8 (torchvision's fast path); conversion to float comes last.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchvision.transforms import v2

__all__ = ["build_transforms"]


class ContiguousArray:
    """First step: numpy views with negative strides (``bgr[:, :, ::-1]``), which ``ToImage`` refuses,
    become contiguous arrays; anything else passes through."""

    def __call__(self, image: Any) -> Any:
        return np.ascontiguousarray(image) if isinstance(image, np.ndarray) else image

    def __repr__(self) -> str:
        return "ContiguousArray()"


def build_transforms(cfg: Any, is_train: bool) -> v2.Compose:
    """The train (augmenting) or test pipeline from ``cfg.INPUT``; maps an RGB uint8 array to ``(3, H, W)``."""
    size = list(cfg.INPUT.SIZE_TRAIN if is_train else cfg.INPUT.SIZE_TEST)
    steps: list[Any] = [ContiguousArray(), v2.ToImage(), v2.Resize(size, antialias=True)]
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
