#!/usr/bin/env python
"""CPU training-step and inference throughput (images/s) of resnet50, ffc_resnet50 and dff_resnet50.

    python bench/backbone_throughput.py [--batch 16] [--input 256 128] [--iters 5] [--warmup 2]

A training step is the full ReID model (backbone, pooling, BNNeck, classifier) forward, cross-entropy,
backward and an SGD step; inference is the eval-mode forward under ``torch.inference_mode``. Each figure
is the median over ``--iters`` timed iterations after ``--warmup`` untimed ones; the ratio is to the
first model (resnet50). The issue's target: dff_resnet50 >= 0.8x resnet50 for both.
"""

import argparse
import statistics
import time

import torch

from reid_dff.config import get_cfg
from reid_dff.modeling import build_model


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["resnet50", "ffc_resnet50", "dff_resnet50"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--input", nargs=2, type=int, default=[256, 128], metavar=("H", "W"))
    parser.add_argument("--num-classes", type=int, default=751, help="classifier width (Market-1501: 751)")
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave default)")
    parser.add_argument(
        "--clock",
        choices=["wall", "process"],
        default="wall",
        help="wall: elapsed time (use on a quiet machine); process: CPU time of this process, less "
        "distorted by other jobs on a shared machine (pair it with --threads 1)",
    )
    parser.add_argument("--profile", default="", help="also print a torch.profiler table for this model")
    return parser.parse_args(argv)


def timed(fn, iters, warmup, clock):
    """Median seconds per call of ``fn`` over ``iters`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def measure(name, args):
    cfg = get_cfg()
    cfg.MODEL.BACKBONE = name
    cfg.INPUT.SIZE_TRAIN = list(args.input)
    torch.manual_seed(0)
    model = build_model(cfg, args.num_classes)
    images = torch.randn(args.batch, 3, *args.input)
    labels = torch.randint(0, args.num_classes, (args.batch,))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def train_step():
        out = model(images)
        loss = torch.nn.functional.cross_entropy(out["logits"], labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def infer():
        with torch.inference_mode():
            model(images)

    clock = time.perf_counter if args.clock == "wall" else time.process_time
    model.train()
    train_s = timed(train_step, args.iters, args.warmup, clock)
    model.eval()
    infer_s = timed(infer, args.iters, args.warmup, clock)
    if name == args.profile:
        from torch.profiler import ProfilerActivity, profile

        model.train()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            train_step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    return args.batch / train_s, args.batch / infer_s


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
        f"input {args.input[0]}x{args.input[1]}, {args.clock} clock, median of {args.iters} iterations after "
        f"{args.warmup} warm-up"
    )
    rows = [(name, *measure(name, args)) for name in args.models]
    base_train, base_infer = rows[0][1], rows[0][2]
    print("| model | train img/s | ratio | inference img/s | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, train, infer in rows:
        print(f"| {name} | {train:.1f} | {train / base_train:.2f} | {infer:.1f} | {infer / base_infer:.2f} |")


if __name__ == "__main__":
    main()
