#!/usr/bin/env python
"""Stage-1 training speed: images/s of ResNet-50 and DFF-ResNet-50 ImageNet training steps, and their ratio.

Each model is built from its recipe config (``configs/imagenet/<model>.yaml``: backbone with a stride-2
last stage -> pooling -> 1000-way linear, SGD, label-smoothed cross-entropy) and trained for ``--warmup``
untimed then ``--iters`` timed steps on generated random tensors (no loader: this measures the GPU side;
``bench/classification_loader.py`` measures the input side). On CUDA the steps run under AMP with the
run's dtype (``SOLVER.AMP_DTYPE auto``: bf16 where supported) and, unless ``--no-channels-last``, in
channels_last -- what ``MODEL.CHANNELS_LAST True`` does in the trainer. The spectral transforms run in
float32 whatever the AMP dtype.

Usage (from the repo root)::

    python bench/gpu_stage1.py --batch 128 --iters 300 --size 224
    python bench/gpu_stage1.py --tiny          # CPU smoke test: 2 steps at 32x32
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from reid_dff.config import setup_cfg  # noqa: E402
from reid_dff.engine.amp import resolve_amp_dtype  # noqa: E402
from reid_dff.engine.optim import build_optimizer  # noqa: E402
from reid_dff.modeling import build_model  # noqa: E402
from reid_dff.modeling.losses import build_losses  # noqa: E402

MODELS = ["resnet50", "dff_resnet50"]


def bench_model(name: str, args: argparse.Namespace, device: torch.device) -> dict:
    """Images/s of ``--iters`` timed training steps of ``configs/imagenet/<name>.yaml``."""
    cfg = setup_cfg(
        f"configs/imagenet/{name}.yaml",
        [
            "MODEL.DEVICE",
            str(device),
            "MODEL.CHANNELS_LAST",
            str(args.channels_last),
            "SOLVER.IMS_PER_BATCH",
            str(args.batch),
        ],
    )
    torch.manual_seed(0)
    model = build_model(cfg, args.classes, imagenet_init=False).to(device).train()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    criterion = build_losses(cfg)
    optimizer = build_optimizer(cfg, model)
    amp_dtype = resolve_amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    images = torch.randn(args.batch, 3, args.size, args.size, device=device)
    if args.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, args.classes, (args.batch,), device=device)

    def step() -> torch.Tensor:
        with torch.autocast("cuda", dtype=amp_dtype) if amp_dtype else contextlib.nullcontext():
            loss = sum(criterion(model(images), labels).values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.detach()

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(args.iters):
        last = step()
    sync()
    seconds = time.perf_counter() - start
    loss = float(last)
    if loss != loss or abs(loss) == float("inf"):
        raise RuntimeError(f"{name}: the loss became {loss} during the benchmark")
    return {
        "model": name,
        "images_per_s": args.batch * args.iters / seconds,
        "seconds": seconds,
        "amp": str(amp_dtype).replace("torch.", "") if amp_dtype else "off",
        "channels_last": bool(args.channels_last),
        "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
    }


def format_table(rows: list[dict], args: argparse.Namespace, device: torch.device) -> str:
    base = rows[0]["images_per_s"]
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    lines = [
        f"stage-1 training steps on {where}: batch {args.batch}, {args.size}x{args.size}, "
        f"{args.iters} timed steps after {args.warmup}, {args.classes} classes",
        "",
        "| model | AMP | channels_last | images/s | ratio to resnet50 |",
        "|---|---|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['amp']} | {r['channels_last']} | {r['images_per_s']:.1f} | "
            f"{r['images_per_s'] / base:.3f} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128, help="images per step (default 128)")
    parser.add_argument("--size", type=int, default=224, help="square input side (default 224)")
    parser.add_argument("--iters", type=int, default=300, help="timed steps per model (default 300)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed steps first (default 30)")
    parser.add_argument("--classes", type=int, default=1000, help="classifier outputs (default 1000)")
    parser.add_argument("--device", default="auto", help="cuda, cpu or auto (default)")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    parser.add_argument(
        "--models", nargs="+", default=MODELS, help=f"configs/imagenet names (default {MODELS})"
    )
    parser.add_argument("--json", default="", help="also write the rows to this JSON file")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke test: batch 2, 32x32, 2 steps")
    args = parser.parse_args(argv)
    if args.tiny:
        args.batch, args.size, args.iters, args.warmup, args.classes, args.device = 2, 32, 2, 1, 10, "cpu"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    rows = [bench_model(name, args, device) for name in args.models]
    print(format_table(rows, args, device), flush=True)
    if args.json:
        with open(args.json + ".tmp", "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)
        os.replace(args.json + ".tmp", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
