#!/usr/bin/env python
"""Input speed of ImageNet training: decoded + augmented images/s of ONE loader worker, per JPEG decoder.

ImageNet training is input-bound on a modern GPU: each DataLoader worker is one process that decodes a
JPEG and applies the training augmentation (``imagenet_train_transforms``: RandomResizedCrop 224, flip,
float, normalize). This bench generates ``--images`` JPEGs of ``--size`` (ImageNet's typical 500x375,
written by OpenCV at quality 90) in a temporary folder and times, in this one process with one thread,
every decoder available:

- ``opencv``: ``reid_dff.data.io.read_image`` (``cv2.imdecode``; the toolkit's reader);
- ``pil``: ``PIL.Image.open(...).convert("RGB")``;
- ``torchvision``: ``reid_dff.data.io.read_image_tensor`` (``torchvision.io.decode_image``, libjpeg-turbo,
  CHW tensor out), the reader of ``DATALOADER.DECODER torchvision``.

It prints decode-only and decode + augment images/s and each decoder's ratio to the fastest. A GPU that
trains at T images/s needs ``ceil(T / per-worker images/s)`` workers (``--train-speed T`` prints it).

Usage (from the repo root)::

    python bench/classification_loader.py --images 200 --size 500x375
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
CROP = 224
JPEG_QUALITY = 90


def parse_size(text: str) -> tuple[int, int]:
    """``"500x375"`` -> ``(500, 375)`` (width, height)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, e.g. 500x375, got {text!r}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return width, height


def write_jpegs(folder: str, count: int, width: int, height: int, seed: int = 0) -> list[str]:
    """``count`` photo-like JPEGs (smooth colour fields + grain, so they compress like photographs)."""
    import cv2

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        coarse = rng.integers(0, 256, (max(height // 32, 2), max(width // 32, 2), 3), dtype=np.uint8)
        image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
        image += rng.integers(-12, 13, image.shape, dtype=np.int16)
        path = os.path.join(folder, f"{i:06d}.JPEG")
        ok = cv2.imwrite(
            path, np.clip(image, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        )
        if not ok:
            raise OSError(f"could not write {path}")
        paths.append(path)
    return paths


def decoders() -> dict[str, Callable[[str], object] | str]:
    """Decoder name -> path -> RGB image (HWC uint8 array, PIL image or CHW uint8 tensor), or why not available."""
    found: dict[str, Callable[[str], object] | str] = {}
    try:
        import cv2

        from reid_dff.data.io import read_image

        cv2.setNumThreads(1)
        found["opencv"] = read_image
    except ImportError as e:
        found["opencv"] = f"unavailable ({e})"
    try:
        from PIL import Image

        def read_pil(path: str):
            with Image.open(path) as image:
                return image.convert("RGB")  # decoded; the transforms take the PIL image as is

        found["pil"] = read_pil
    except ImportError as e:
        found["pil"] = f"unavailable ({e})"
    try:
        import torchvision.io  # noqa: F401

        from reid_dff.data.io import read_image_tensor

        found["torchvision"] = read_image_tensor
    except ImportError as e:
        found["torchvision"] = f"unavailable ({e})"
    return found


def images_per_second(paths: list[str], step: Callable[[str], object], repeats: int) -> float:
    """Best of ``repeats`` timed passes over ``paths`` (after one untimed warm-up pass over a few)."""
    for path in paths[: min(len(paths), 10)]:
        step(path)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for path in paths:
            step(path)
        best = min(best, time.perf_counter() - start)
    return len(paths) / best


def shape_of(image) -> tuple[int, int]:
    """(height, width) of an HWC array, a CHW tensor or a PIL image."""
    if isinstance(image, np.ndarray):
        return tuple(image.shape[:2])
    return tuple(image.shape[-2:]) if hasattr(image, "shape") else image.size[::-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=200, help="generated JPEGs (default 200)")
    parser.add_argument("--size", type=parse_size, default=(500, 375), help="WIDTHxHEIGHT (default 500x375)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the best counts (default 3)")
    parser.add_argument("--train-speed", type=float, default=0.0, help="GPU training images/s: print workers")
    args = parser.parse_args(argv)
    if args.images < 1 or args.repeats < 1:
        parser.error("--images and --repeats must be >= 1")

    import torch

    from reid_dff.data.transforms import imagenet_train_transforms

    torch.set_num_threads(1)  # one DataLoader worker = one process with one thread
    # torchvision 0.29 deprecates its decoders (TorchCodec replaces them); they still decode.
    warnings.filterwarnings("ignore", "The image decoding", DeprecationWarning)
    augment = imagenet_train_transforms([CROP, CROP], MEAN, STD)
    width, height = args.size
    available = decoders()
    rows = []
    with tempfile.TemporaryDirectory(prefix="reid_dff_loader_bench_") as folder:
        paths = write_jpegs(folder, args.images, width, height)
        for name, decode in available.items():
            if isinstance(decode, str):
                rows.append((name, None, None, decode))
                continue
            if shape_of(decode(paths[0])) != (height, width):
                print(
                    f"{name}: decoded {shape_of(decode(paths[0]))}, expected {(height, width)}",
                    file=sys.stderr,
                )
                return 1
            torch.manual_seed(0)
            decode_only = images_per_second(paths, decode, args.repeats)
            full = images_per_second(paths, lambda p, d=decode: augment(d(p)), args.repeats)
            rows.append((name, decode_only, full, ""))
    measured = [r for r in rows if r[2] is not None]
    fastest = max((r[2] for r in measured), default=None)
    print(
        f"{args.images} JPEGs {width}x{height} (quality {JPEG_QUALITY}), one process, one thread; "
        f"augment = RandomResizedCrop {CROP} + flip + float + normalize; best of {args.repeats}"
    )
    print(f"{'decoder':<12} | {'decode img/s':>12} | {'decode+augment img/s':>20} | {'ratio to fastest':>16}")
    for name, decode_only, full, note in sorted(rows, key=lambda r: -(r[2] or 0)):
        if full is None:
            print(f"{name:<12} | {note}")
        else:
            print(f"{name:<12} | {decode_only:>12.1f} | {full:>20.1f} | {full / fastest:>16.2f}")
    if measured and args.train_speed > 0:
        best = max(measured, key=lambda r: r[2])
        print(
            f"workers for {args.train_speed:g} training img/s = {args.train_speed:g} / {best[2]:.1f} "
            f"({best[0]}) -> {math.ceil(args.train_speed / best[2])}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
