#!/usr/bin/env python
"""CPU inference throughput (images/s) of onnxruntime vs PyTorch on the same exported embedding models.

    OMP_NUM_THREADS=2 python bench/onnx_throughput.py [--models resnet50 dff_resnet50] [--batch 16]
        [--input 256 128] [--iters 5] [--warmup 2] [--threads N] [--clock wall|process]

Each model is the eval-mode ReID model (backbone, pooling, BNNeck: the embedding ``tools/export_model.py``
exports), randomly initialized with random BatchNorm statistics. It is exported with the same code as the
tool (dynamo exporter, opset 20, dynamic batch), checked against PyTorch on a batch of another size, and
then both backends embed the same random ``--batch`` in turn, ``--iters`` timed rounds after ``--warmup``
untimed ones; each figure is the median. PyTorch runs under ``torch.inference_mode``, onnxruntime with its
CPU provider and all graph optimizations. Both use the same thread count: ``--threads``, else PyTorch's
default, which ``OMP_NUM_THREADS`` sets -- set it to the cores the run may use. The ratio is onnxruntime's
images/s over PyTorch's; ``export s`` is the export and parity check, paid once per model.
"""

import argparse
import os
import sys
import time

import numpy as np
import torch

from reid_dff.config import get_cfg
from reid_dff.inference.onnx_export import DEFAULT_OPSET, check_parity, onnx_bytes
from reid_dff.inference.onnx_model import import_deploy_module
from reid_dff.modeling import build_model

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backbone_throughput import timed_round_robin  # noqa: E402  (bench/backbone_throughput.py)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=["resnet50", "dff_resnet50"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--input", nargs=2, type=int, default=[256, 128], metavar=("H", "W"))
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=0, help="threads of both backends (0: PyTorch's default)"
    )
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    parser.add_argument(
        "--clock",
        choices=["wall", "process"],
        default="wall",
        help="wall: elapsed time (a quiet machine); process: this process's CPU time (a shared machine)",
    )
    return parser.parse_args(argv)


def embedding_model(name, input_size):
    """The eval-mode ReID embedding model of backbone ``name``, random weights and BatchNorm statistics."""
    cfg = get_cfg()
    cfg.MODEL.BACKBONE = name
    cfg.INPUT.SIZE_TRAIN = list(input_size)
    cfg.INPUT.SIZE_TEST = list(input_size)
    torch.manual_seed(0)
    model = build_model(cfg, num_classes=0, imagenet_init=False)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def measure(name, args, threads):
    """(PyTorch images/s, onnxruntime images/s, parity relative error, export seconds) of one model."""
    ort = import_deploy_module("onnxruntime", "the ONNX throughput bench")
    model = embedding_model(name, args.input)
    start = time.perf_counter()
    data = onnx_bytes(model, torch.randn(2, 3, *args.input), opset=args.opset)
    error = check_parity(data, model, (3, *args.input), batch=3)
    export_seconds = time.perf_counter() - start
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    images = torch.randn(args.batch, 3, *args.input, generator=torch.Generator().manual_seed(0))
    array = np.ascontiguousarray(images.numpy())

    def torch_forward():
        with torch.inference_mode():
            model(images)

    def ort_forward():
        session.run(None, {"images": array})

    clock = time.perf_counter if args.clock == "wall" else time.process_time
    torch_s, ort_s = timed_round_robin([torch_forward, ort_forward], args.iters, args.warmup, clock)
    return args.batch / torch_s, args.batch / ort_s, error, export_seconds


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    height, width = args.input
    print(
        f"batch {args.batch}, {height}x{width}, {threads} thread(s), median of {args.iters} after {args.warmup} "
        f"warm-up, {args.clock} clock; torch {torch.__version__}, "
        f"onnxruntime {import_deploy_module('onnxruntime', 'the ONNX throughput bench').__version__}"
    )
    print("| model | PyTorch img/s | onnxruntime img/s | ratio | parity (rel.) | export s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.models:
        torch_ips, ort_ips, error, export_seconds = measure(name, args, threads)
        print(
            f"| {name} | {torch_ips:.1f} | {ort_ips:.1f} | {ort_ips / torch_ips:.2f} | {error:.1e} "
            f"| {export_seconds:.0f} |"
        )


if __name__ == "__main__":
    main()
