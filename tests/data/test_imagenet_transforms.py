"""INPUT.STYLE imagenet: the same crops and flips as torchvision's classic (v1) ImageNet recipe."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import transforms as T

from reid_dff.config import get_cfg
from reid_dff.config.config import ConfigError
from reid_dff.data.transforms import build_transforms, imagenet_eval_transforms, imagenet_train_transforms

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
# v2's uint8 resize and v1's may round a pixel to neighbouring levels: one level after normalization.
ONE_LEVEL = 1.001 / 255 / min(STD)


def image(height=150, width=200, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def reference_train():  # torchvision's classic recipe, on a uint8 tensor
    return T.Compose(
        [
            T.RandomResizedCrop(64, antialias=True),
            T.RandomHorizontalFlip(),
            T.ConvertImageDtype(torch.float32),
            T.Normalize(MEAN, STD),
        ]
    )


def imagenet_cfg(size=64):
    cfg = get_cfg()
    cfg.INPUT.STYLE = "imagenet"
    cfg.INPUT.PADDING = 0
    cfg.INPUT.SIZE_TRAIN = [size, size]
    cfg.INPUT.SIZE_TEST = [size, size]
    return cfg


@pytest.mark.parametrize("seed", range(6))
def test_train_crop_and_flip_match_torchvision_on_the_same_seed(seed):
    array = image(seed=seed)
    tensor = torch.from_numpy(array).permute(2, 0, 1).contiguous()
    torch.manual_seed(seed)
    expected = reference_train()(tensor)
    for pipeline in (imagenet_train_transforms([64, 64], MEAN, STD), build_transforms(imagenet_cfg(), True)):
        torch.manual_seed(seed)
        got = pipeline(array)
        assert got.shape == (3, 64, 64) and got.dtype == torch.float32
        torch.testing.assert_close(got, expected, atol=ONE_LEVEL, rtol=0)


def test_eval_is_resize_256_centre_crop_224_as_torchvision():
    array = image(300, 400, seed=3)
    tensor = torch.from_numpy(array).permute(2, 0, 1).contiguous()
    reference = T.Compose(
        [
            T.Resize(256, antialias=True),
            T.CenterCrop(224),
            T.ConvertImageDtype(torch.float32),
            T.Normalize(MEAN, STD),
        ]
    )
    expected = reference(tensor)
    for pipeline in (
        imagenet_eval_transforms([224, 224], MEAN, STD),
        build_transforms(imagenet_cfg(224), False),
    ):
        torch.testing.assert_close(pipeline(array), expected, atol=ONE_LEVEL, rtol=0)
        torch.testing.assert_close(pipeline(tensor), expected, atol=ONE_LEVEL, rtol=0)  # decode_jpeg's output


def test_imagenet_style_refuses_padding_and_unknown_styles():
    cfg = imagenet_cfg()
    cfg.INPUT.PADDING = 10
    with pytest.raises(ConfigError, match="INPUT.PADDING is 10 but INPUT.STYLE imagenet"):
        build_transforms(cfg, True)
    cfg = get_cfg()
    cfg.INPUT.STYLE = "fancy"
    with pytest.raises(ConfigError, match="INPUT.STYLE must be one of resize, imagenet, got 'fancy'"):
        build_transforms(cfg, False)
