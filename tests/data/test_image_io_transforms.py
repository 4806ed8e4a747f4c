"""Image decoding (cv2) and the v2 transform pipelines."""

from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest
import torch

from reid_dff.config import get_cfg
from reid_dff.data.io import BadImageError, read_image
from reid_dff.data.transforms import build_transforms


@pytest.mark.parametrize("ext", [".png", ".bmp", ".jpg"])
def test_read_image_is_rgb_uint8(tmp_path, ext):
    bgr = np.zeros((8, 4, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV's BGR
    path = str(tmp_path / f"blue{ext}")
    cv2.imwrite(path, bgr)
    rgb = read_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (8, 4, 3)
    assert abs(int(rgb[..., 2].mean()) - 200) <= 3 and rgb[..., 0].max() <= 3


def test_read_image_handles_non_ascii_paths_and_grayscale(tmp_path):
    path = str(tmp_path / "personne_é_ü.png")
    cv2.imwrite(path, np.full((6, 3), 77, np.uint8))
    image = read_image(path)
    assert image.shape == (6, 3, 3) and (image == 77).all()


def test_bad_images_raise_naming_the_file(tmp_path):
    missing = str(tmp_path / "missing.jpg")
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not an image at all")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), np.random.default_rng(0).integers(0, 255, (32, 16, 3), dtype=np.uint8))
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    for path, reason in (
        (missing, "cannot read"),
        (str(garbage), "cannot decode"),
        (str(empty), "empty"),
        (str(truncated), "truncated JPEG"),
    ):
        with pytest.raises(BadImageError, match=reason) as info:
            read_image(path)
        assert info.value.path == path and path in str(info.value) and "ON_BAD_IMAGE skip" in str(info.value)
    # survives pickling (DataLoader workers) with its fields
    error = pickle.loads(pickle.dumps(BadImageError(missing, "cannot read")))
    assert error.path == missing and missing in str(error)


class _ReadsOneFile(torch.utils.data.Dataset):
    def __init__(self, path):
        self.path = path

    def __len__(self):
        return 2

    def __getitem__(self, index):
        return read_image(self.path)


def test_bad_image_in_a_loader_worker_keeps_its_one_line_message_and_path(tmp_path):
    # torch re-raises a worker's exception built from the worker's traceback text; the tools print
    # str(error) as one line, so it must be the original message, not the traceback.
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(b"\xff\xd8 not the rest of a JPEG")
    loader = torch.utils.data.DataLoader(_ReadsOneFile(str(truncated)), num_workers=1)
    with pytest.raises(BadImageError) as info:
        list(loader)
    assert str(info.value).startswith(f"truncated JPEG (no end-of-image marker): {truncated}")
    assert "Traceback" not in str(info.value) and "\n" not in str(info.value)
    assert info.value.path == str(truncated)


def test_test_transform_resizes_and_normalizes_exactly():
    cfg = get_cfg()
    cfg.INPUT.SIZE_TEST = [16, 8]
    image = np.random.default_rng(0).integers(0, 255, (16, 8, 3), dtype=np.uint8)
    out = build_transforms(cfg, is_train=False)(image)
    assert out.shape == (3, 16, 8) and out.dtype == torch.float32
    mean = torch.tensor(cfg.INPUT.PIXEL_MEAN).view(3, 1, 1)
    std = torch.tensor(cfg.INPUT.PIXEL_STD).view(3, 1, 1)
    expected = (
        torch.from_numpy(image).permute(2, 0, 1).float() / 255 - mean
    ) / std  # same size: no resampling
    torch.testing.assert_close(out.as_subclass(torch.Tensor), expected)
    # a channel-reversed view (OpenCV's BGR turned RGB without a copy) has a negative stride
    bgr = np.ascontiguousarray(image[:, :, ::-1])
    for is_train in (False, True):
        view = build_transforms(cfg, is_train=is_train)(bgr[:, :, ::-1])
        assert view.shape == (3, *(cfg.INPUT.SIZE_TRAIN if is_train else cfg.INPUT.SIZE_TEST))
    torch.testing.assert_close(build_transforms(cfg, is_train=False)(bgr[:, :, ::-1]), out)


def test_train_transform_options():
    cfg = get_cfg()
    cfg.INPUT.SIZE_TRAIN = [32, 16]
    cfg.INPUT.PADDING = 4
    image = np.random.default_rng(1).integers(0, 255, (40, 20, 3), dtype=np.uint8)
    names = [type(t).__name__ for t in build_transforms(cfg, True).transforms]
    assert names == [
        "ContiguousArray",
        "ToImage",
        "Resize",
        "RandomHorizontalFlip",
        "Pad",
        "RandomCrop",
        "ToDtype",
        "Normalize",
    ]
    cfg.INPUT.RANDOM_ERASING.ENABLED = True
    cfg.INPUT.COLOR_JITTER.ENABLED = True
    names = [type(t).__name__ for t in build_transforms(cfg, True).transforms]
    assert "RandomErasing" in names and "RandomApply" in names
    torch.manual_seed(0)
    out = build_transforms(cfg, True)(image)
    assert out.shape == (3, 32, 16)
    # the flip with p=1 mirrors exactly
    cfg = get_cfg()
    cfg.INPUT.SIZE_TRAIN = [40, 20]
    cfg.INPUT.PADDING = 0
    cfg.INPUT.FLIP_PROB = 1.0
    flipped = build_transforms(cfg, True)(image)
    cfg.INPUT.SIZE_TEST = [40, 20]
    plain = build_transforms(cfg, False)(image)
    torch.testing.assert_close(flipped.as_subclass(torch.Tensor), plain.as_subclass(torch.Tensor).flip(-1))
