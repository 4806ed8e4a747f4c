"""DATALOADER.DECODER: torchvision.io's reader gives the images OpenCV's does, and fails the same way."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from reid_dff.config import get_cfg
from reid_dff.data.build import build_test_loader
from reid_dff.data.datasets import DatasetOptionError, Sample
from reid_dff.data.io import IMAGE_READERS, BadImageError, read_image, read_image_tensor

# torchvision 0.29 deprecates its decoders in favour of TorchCodec; they still work and are the fastest.
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")


def photo(height=48, width=64, seed=0):
    coarse = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize("ext", [".png", ".bmp"])
def test_lossless_files_decode_identically(tmp_path, ext):
    path = str(tmp_path / f"a{ext}")
    bgr = photo()
    assert cv2.imwrite(path, bgr)
    tensor = read_image_tensor(path)
    assert tensor.dtype == torch.uint8 and tensor.shape == (3, 48, 64) and tensor.is_contiguous()
    assert np.array_equal(tensor.permute(1, 2, 0).numpy(), bgr[:, :, ::-1])  # RGB, exactly
    assert np.array_equal(tensor.permute(1, 2, 0).numpy(), read_image(path))


def test_jpeg_and_grayscale_jpeg_decode_to_the_same_rgb_within_a_level_or_two(tmp_path):
    path = str(tmp_path / "a.JPEG")
    assert cv2.imwrite(path, photo(), [cv2.IMWRITE_JPEG_QUALITY, 90])
    ours = read_image_tensor(path).permute(1, 2, 0).numpy().astype(int)
    reference = read_image(path).astype(int)
    assert ours.shape == reference.shape and np.abs(ours - reference).max() <= 3
    gray = str(tmp_path / "g.jpg")
    assert cv2.imwrite(gray, photo()[:, :, 0])
    image = read_image_tensor(gray)
    assert image.shape == (3, 48, 64) and torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])


def test_bad_images_raise_the_same_error(tmp_path):
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), photo())
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a JPEG body \xff\xd9")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image")
    for path, reason in (
        (str(tmp_path / "missing.jpg"), "cannot read"),
        (str(empty), "empty"),
        (str(truncated), "truncated JPEG"),
        (str(broken), "cannot decode"),
        (str(garbage), "cannot decode"),
    ):
        with pytest.raises(BadImageError, match=reason) as info:
            read_image_tensor(path)
        assert info.value.path == path


def test_the_loader_reads_with_the_configured_decoder(tmp_path):
    samples = []
    for i in range(3):
        path = str(tmp_path / f"{i}.png")
        cv2.imwrite(path, photo(seed=i))
        samples.append(Sample(path, i, 0))
    batches = {}
    for decoder in ("opencv", "torchvision"):
        cfg = get_cfg()
        cfg.DATALOADER.NUM_WORKERS = 0
        cfg.DATALOADER.DECODER = decoder
        loader = build_test_loader(cfg, samples)
        assert loader.dataset.reader is IMAGE_READERS[decoder]
        batches[decoder] = next(iter(loader))["images"]
    torch.testing.assert_close(batches["opencv"], batches["torchvision"], rtol=0, atol=0)
    cfg.DATALOADER.DECODER = "pil"
    with pytest.raises(DatasetOptionError, match="DATALOADER.DECODER must be one of"):
        build_test_loader(cfg, samples)
