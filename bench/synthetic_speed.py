#!/usr/bin/env python
"""Synthetic ReID generator speed: images per second on one core, against the 500 images/s target.

Rows:

- ``render``: :func:`reid_dff.data.synthetic.render_image` alone (pixels, no encoding);
- ``render + jpeg``: plus ``cv2.imencode``;
- ``generate_synthetic``: the whole thing (planning, rendering, encoding, hashing, writing files and the
  manifest, atomic rename), ``workers=1``; the figure the target applies to;
- ``(file writes only)``: creating as many ~3 KB files with dummy bytes, the filesystem's floor (slow on
  some VMs and network disks, where it dominates ``generate_synthetic``).

Usage (from the repo root)::

    python bench/synthetic_speed.py                   # 128x64, 2 domains x (40 + 20) ids
    python bench/synthetic_speed.py --height 256 --width 128
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import cv2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from reid_dff.data.synthetic import (  # noqa: E402
    DOMAIN_RECIPES,
    SyntheticParams,
    encode_jpeg,
    generate_synthetic,
    plan_domain,
    render_image,
)

TARGET_IMAGES_PER_S = 500.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--domains", type=int, default=2)
    parser.add_argument("--ids-train", type=int, default=40)
    parser.add_argument("--ids-test", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="best of N (the machine may be shared)")
    args = parser.parse_args()

    cv2.setNumThreads(1)
    params = SyntheticParams(
        num_domains=args.domains,
        ids_train=args.ids_train,
        ids_test=args.ids_test,
        height=args.height,
        width=args.width,
    )
    try:
        params.validate()  # before any timing: generate_synthetic would refuse these parameters at the end
    except ValueError as e:
        parser.error(str(e))
    specs = [s for k in range(params.num_domains) for s in plan_domain(params, k)]
    args_of = [
        (params.seed, s.domain, s.pid, s.camera, s.image_index, params.height, params.width) for s in specs
    ]

    def time_render() -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        for a in args_of:
            render_image(*a)
        return time.perf_counter() - start, time.process_time() - cpu

    def time_render_encode() -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        for a in args_of:
            encode_jpeg(render_image(*a), DOMAIN_RECIPES[a[1]].jpeg_quality)
        return time.perf_counter() - start, time.process_time() - cpu

    def time_generate() -> tuple[float, float]:
        root = tempfile.mkdtemp(prefix="synthetic_speed_")
        try:
            start, cpu = time.perf_counter(), time.process_time()
            generate_synthetic(
                root,
                num_domains=args.domains,
                ids_train=args.ids_train,
                ids_test=args.ids_test,
                height=args.height,
                width=args.width,
                workers=1,
            )
            return time.perf_counter() - start, time.process_time() - cpu
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def time_file_writes() -> tuple[float, float]:
        # The filesystem's own cost of creating this many ~3 KB files: the floor under generate_synthetic.
        root = tempfile.mkdtemp(prefix="synthetic_speed_files_")
        payload = b"\xff" * 3000
        try:
            start, cpu = time.perf_counter(), time.process_time()
            for i in range(n):
                with open(os.path.join(root, f"{i:06d}.jpg"), "wb") as f:
                    f.write(payload)
            return time.perf_counter() - start, time.process_time() - cpu
        finally:
            shutil.rmtree(root, ignore_errors=True)

    n = len(specs)
    time_render()  # warm the per-camera caches and the allocator
    print(
        f"{n} images of {args.height}x{args.width}, {args.domains} domains, one core, best of {args.repeats}"
    )
    # Wall time suffers when other jobs share the CPU; images per CPU-second is the one-core figure.
    print(f"| {'stage':<20} | {'images/s wall':>13} | {'images/s CPU':>12} | {'ratio to 500/s (CPU)':>20} |")
    print(f"|{'-' * 22}|{'-' * 15}|{'-' * 14}|{'-' * 22}|")
    stages = (
        ("render", time_render),
        ("render + jpeg", time_render_encode),
        ("generate_synthetic", time_generate),
        ("(file writes only)", time_file_writes),
    )
    for name, fn in stages:
        times = [fn() for _ in range(args.repeats)]
        wall, cpu = min(t[0] for t in times), min(t[1] for t in times)
        print(
            f"| {name:<20} | {n / wall:>13.0f} | {n / cpu:>12.0f} | {n / cpu / TARGET_IMAGES_PER_S:>20.2f} |"
        )


if __name__ == "__main__":
    main()
