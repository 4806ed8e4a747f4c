"""Parameters and GMACs (conv + linear multiply-adds; FFT flops shown separately) of a backbone + head.

    python tools/complexity.py --model dff_resnet50 --input 224 224 --num-classes 1000 [--json]

Defaults reproduce the papers' setting (224x224, ImageNet head, last stride 2); ``--last-stride 1`` and
``--input 256 128`` give the ReID setting. The model is the ReID model of ``MODEL.TASK reid`` (BNNeck +
bias-free classifier), whose head differs from torchvision's ``fc`` by +2 * C - N parameters.
"""

import argparse
import json

from reid_dff.config import get_cfg
from reid_dff.modeling import BACKBONE_REGISTRY, build_model
from reid_dff.modeling.backbones import filter_names
from reid_dff.modeling.complexity import REFERENCE_COMPLEXITY, count_complexity


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments of ``reid-dff-complexity`` / ``tools/complexity.py``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, choices=BACKBONE_REGISTRY.names(), help="backbone name")
    parser.add_argument("--input", nargs=2, type=int, default=[224, 224], metavar=("H", "W"))
    parser.add_argument("--num-classes", type=int, default=1000, help="classifier width (0: no classifier)")
    parser.add_argument("--last-stride", type=int, default=2, choices=[1, 2])
    parser.add_argument(
        "--filter",
        default=None,
        choices=filter_names(),
        help="MODEL.DFF.FILTER for dff_* models (default: config)",
    )
    parser.add_argument("--ratio", type=float, default=None, help="MODEL.DFF.RATIO (default: config)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    if min(args.input) < 32:
        parser.error(
            f"--input {args.input[0]} {args.input[1]}: both sides must be at least 32 pixels (the network's stride)"
        )
    return args


def main(argv: list[str] | None = None) -> None:
    """Print the parameters and GMACs of a model, as a table or (``--json``) one JSON object."""
    args = parse_args(argv)
    cfg = get_cfg()
    cfg.MODEL.BACKBONE = args.model
    cfg.MODEL.LAST_STRIDE = args.last_stride
    cfg.INPUT.SIZE_TRAIN = list(args.input)
    if args.filter is not None:
        cfg.MODEL.DFF.FILTER = args.filter
    if args.ratio is not None:
        cfg.MODEL.DFF.RATIO = args.ratio
    model = build_model(cfg, args.num_classes)
    result = count_complexity(model, tuple(args.input))
    reference = REFERENCE_COMPLEXITY.get(args.model)
    record = {
        "model": args.model,
        "filter": getattr(model.backbone, "filter_name", "none"),
        "input": list(args.input),
        "num_classes": args.num_classes,
        "last_stride": args.last_stride,
        "params": result.params,
        "params_m": round(result.params / 1e6, 3),
        "gmacs": round(result.gmacs, 4),
        "fft_gflops": round(result.fft_flops / 1e9, 4),
        "reference": None if reference is None else vars(reference),
    }
    if args.json:
        print(json.dumps(record))
        return
    print(f"{'':<28}{'params (M)':>12}{'GMACs':>10}{'FFT GFLOPs':>12}")
    print(
        # from the exact counts: rounding the rounded JSON figures again could move the last digit
        f"{'ours: ' + args.model:<28}{result.params / 1e6:>12.2f}{result.gmacs:>10.2f}{result.fft_flops / 1e9:>12.3f}"
    )
    if reference is not None:
        print(
            f"{'reference':<28}{reference.params_m:>12.2f}{reference.gflops:>10.2f}{'':>12}  ({reference.source})"
        )
        print("(reference figures: 224x224 input, 1000 classes, last stride 2)")
    print(
        f"input {args.input[0]}x{args.input[1]}, {args.num_classes} classes, last stride {args.last_stride}, filter {record['filter']}"
    )


if __name__ == "__main__":
    main()
