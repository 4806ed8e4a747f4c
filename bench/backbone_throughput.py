#!/usr/bin/env python
"""CPU training-step and inference throughput (images/s) of resnet50, ffc_resnet50 and dff_resnet50.

    python bench/backbone_throughput.py [--batch 16] [--input 256 128] [--iters 5] [--warmup 2]
                                        [--threads N] [--clock wall|process] [--channels-last]
                                        [--breakdown] [--floor] [--profile NAME]

A training step is the full ReID model (backbone, pooling, BNNeck, classifier) forward, cross-entropy,
backward and an SGD step; inference is the eval-mode forward under ``torch.inference_mode``. Each figure
is the median over ``--iters`` timed iterations after ``--warmup`` untimed ones, the models timed in
turn within each iteration; the ratio is to the first model (resnet50). The issue's target: dff_resnet50 >= 0.8x resnet50 for both. Every model runs
with the same settings (threads, batch, input, memory format, head, loss, optimizer); ``--channels-last``
converts every model and the input to ``torch.channels_last``.

``--breakdown`` adds two rows per FFC model that locate the cost of its structure: ``ffc_resnet50-fu`` is the
FFC network with every Fourier unit replaced by the identity (FFT, spectral conv-BN-ReLU and inverse FFT
gone; the spectral transform's 1x1 convs kept), and ``ffc_resnet50-st`` has every spectral transform
replaced by zeros of its output shape (only the l->l, l->g, g->l convolutions, adds and per-branch layout
left). They are not models anyone trains: they show what each part of the global branch costs.

``--floor`` profiles ``--iters`` training steps and inference calls of every model and splits their time into
convolutions (oneDNN kernels with their layout reorders, forward and backward), FFTs, and the rest
(BatchNorm, activations, adds, copies, pooling, loss, optimizer). Its ``ceiling`` column is the ratio
to the first model if the rest cost nothing in every model; its ``budget`` column is how much time the
rest may take for the ratio to reach 0.8 against the first model as measured.
"""

import argparse
import statistics
import time

import torch
from torch import nn

from reid_dff.config import get_cfg
from reid_dff.modeling import build_model
from reid_dff.modeling.backbones import SpectralTransform


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
    parser.add_argument(
        "--channels-last",
        action="store_true",
        help="run every model and the input in torch.channels_last (default: NCHW, PyTorch's default)",
    )
    parser.add_argument("--profile", default="", help="also print a torch.profiler table for this model")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time NAME-fu and NAME-st for each ffc_* model: the FFC network without its Fourier "
        "units / without its spectral transforms (see above)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also split each step into convolution, FFT and other time with torch.profiler (see above)",
    )
    return parser.parse_args(argv)


def timed_round_robin(fns, iters, warmup, clock):
    """Median seconds per call of each function, timing one call of each in turn for every iteration.

    Interleaving the models spreads any change in the machine's load evenly over them, which keeps
    the ratios meaningful on a shared machine where sequential runs drift.
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    for _ in range(iters):
        for fn, fn_times in zip(fns, times):
            start = clock()
            fn()
            fn_times.append(clock() - start)
    return [statistics.median(fn_times) for fn_times in times]


class _ZeroSpectralTransform(nn.Module):
    """Stands in for a spectral transform: zeros of its output shape, no computation."""

    def __init__(self, transform: SpectralTransform):
        super().__init__()
        self.out_channels = transform.conv2.out_channels
        self.stride = 1 if isinstance(transform.downsample, nn.Identity) else 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = [(s + self.stride - 1) // self.stride for s in x.shape[-2:]]
        return x.new_zeros(x.shape[0], self.out_channels, *size)


def strip_global_branch(model: nn.Module, part: str) -> None:
    """Remove the Fourier units (``part == "fu"``) or the whole spectral transforms (``"st"``) in place."""
    for module in list(model.modules()):
        if hasattr(module, "g2g") and isinstance(module.g2g, SpectralTransform):
            if part == "fu":
                module.g2g.fu = nn.Identity()
            else:
                module.g2g = _ZeroSpectralTransform(module.g2g)


def build_steps(name, args):
    """(train_step, infer) closures of the ReID model with backbone ``name``, its input and optimizer."""
    cfg = get_cfg()
    backbone, _, stripped = name.partition("-")
    cfg.MODEL.BACKBONE = backbone
    cfg.INPUT.SIZE_TRAIN = list(args.input)
    torch.manual_seed(0)
    model = build_model(cfg, args.num_classes)
    if stripped:
        strip_global_branch(model, stripped)
    images = torch.randn(args.batch, 3, *args.input)
    labels = torch.randint(0, args.num_classes, (args.batch,))
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def train_step():
        model.train()
        out = model(images)
        loss = torch.nn.functional.cross_entropy(out["logits"], labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def infer():
        model.eval()
        with torch.inference_mode():
            model(images)

    return train_step, infer


def print_profile(train_step):
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def is_conv_op(key: str) -> bool:
    """Every backend's convolution op, forward and backward (mkldnn, slow, nnpack, autograd nodes)."""
    key = key.lower()
    return "convolution" in key or "conv2d" in key


def is_fft_op(key: str) -> bool:
    return "fft" in key.lower()


def conv_fft_seconds(fn, calls=1):
    """Self CPU seconds per call of the convolution ops and of the FFT ops, profiling ``calls`` calls of ``fn``."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            fn()
    events = prof.key_averages()
    conv = sum(e.self_cpu_time_total for e in events if is_conv_op(e.key)) / 1e6 / calls
    fft = sum(e.self_cpu_time_total for e in events if is_fft_op(e.key)) / 1e6 / calls
    return conv, fft


def print_floor(names, steps, train_s, infer_s, calls, target=0.8):
    """The convolution / FFT / rest split of every model's step, with the ceiling and budget columns.

    The split is the mean over ``calls`` profiled calls; the step time is the timed median.
    """
    print("| model | mode | step ms | conv ms | FFT ms | rest ms | ceiling | budget for rest ms |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for mode, index, seconds in (("train", 0, train_s), ("inference", 1, infer_s)):
        splits = [conv_fft_seconds(fns[index], calls) for fns in steps]
        base_step, base_floor = seconds[0], sum(splits[0])
        for name, step, (conv, fft) in zip(names, seconds, splits):
            floor = conv + fft
            budget = base_step / target - floor
            print(
                f"| {name} | {mode} | {step * 1e3:.0f} | {conv * 1e3:.1f} | {fft * 1e3:.1f} "
                f"| {(step - floor) * 1e3:.0f} | {base_floor / floor:.2f} | {budget * 1e3:.0f} |"
            )


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
        f"input {args.input[0]}x{args.input[1]}, {'channels_last' if args.channels_last else 'NCHW'}, "
        f"{args.clock} clock, median of {args.iters} iterations after {args.warmup} warm-up"
    )
    if args.breakdown:
        ffc = [name for name in args.models if name.startswith("ffc_")]
        args.models = [*args.models, *(f"{name}-{part}" for name in ffc for part in ("fu", "st"))]
    steps = [build_steps(name, args) for name in args.models]
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    train_s = timed_round_robin([train for train, _ in steps], args.iters, args.warmup, clock)
    infer_s = timed_round_robin([infer for _, infer in steps], args.iters, args.warmup, clock)
    if args.profile in args.models:
        print_profile(steps[args.models.index(args.profile)][0])
    rows = [(name, args.batch / t, args.batch / i) for name, t, i in zip(args.models, train_s, infer_s)]
    base_train, base_infer = rows[0][1], rows[0][2]
    print("| model | train img/s | ratio | inference img/s | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, train, infer in rows:
        print(f"| {name} | {train:.1f} | {train / base_train:.2f} | {infer:.1f} | {infer / base_infer:.2f} |")
    if args.floor:
        print()
        print_floor(args.models, steps, train_s, infer_s, args.iters)


if __name__ == "__main__":
    main()
