r"""Export a trained reid-dff model to ONNX for onnxruntime, TensorRT or a tracker that takes ReID models.

    python tools/export_model.py --weights output/x/model_final.pth --output model.onnx [--input 256 128]
        [--opset 20] [KEY VALUE ...]

The graph maps ``images`` (B, 3, H, W) float32 -- RGB, resized to H x W, (x / 255 - mean) / std -- to
``embeddings`` (B, D), the post-BNNeck feature the evaluator ranks, with a dynamic batch axis. The file's
metadata records the input size, pixel mean/std, metric, embedding size, backbone, DFF filter, the
checkpoint's SHA-256 and its config (see docs/deploy.md). Right after export onnxruntime runs the graph on
a random batch of another size; the file is written (atomically) only if its embeddings match PyTorch's
within --tolerance (relative). Needs the deploy extra: pip install -e ".[deploy]".
"""

import argparse
import sys

from reid_dff.cli.common import (
    DEPLOY_REMEDY,
    add_overrides,
    exit_on_user_error,
    parse_flags_first,
    positive_int,
)
from reid_dff.inference.onnx_export import (
    DEFAULT_OPSET,
    DEFAULT_TOLERANCE,
    OnnxExportError,
    OnnxParityError,
    export_checkpoint,
)
from reid_dff.inference.onnx_model import DeployExtraMissingError

REMEDIES = {
    DeployExtraMissingError: DEPLOY_REMEDY,
    OnnxParityError: "nothing was written; report the model (backbone, filter, --input) with this line",
    OnnxExportError: "docs/deploy.md lists what exports (every backbone and filter, --opset 18 or newer)",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments of ``reid-dff-export-model`` / ``tools/export_model.py``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", required=True, help="reid-dff checkpoint (.pth with its config)")
    parser.add_argument("--output", required=True, help="ONNX file to write (.onnx)")
    parser.add_argument(
        "--input",
        nargs=2,
        type=positive_int,
        metavar=("H", "W"),
        help="input height and width (default: the checkpoint's INPUT.SIZE_TEST)",
    )
    parser.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help=f"largest relative difference to PyTorch accepted (default {DEFAULT_TOLERANCE:g})",
    )
    add_overrides(parser)
    args = parse_flags_first(parser, argv)
    if not args.output.lower().endswith(".onnx"):
        parser.error(
            f"--output {args.output}: the file name must end in .onnx (how reid-dff tools recognize it)"
        )
    return args


def main(argv: list[str] | None = None) -> None:
    """Export the checkpoint's embedding model to ONNX, parity-checked; exits 1 on a user error."""
    args = parse_args(argv)
    with exit_on_user_error("export_model.py", REMEDIES):
        run(args)


def run(args: argparse.Namespace):
    """Export ``args.weights`` to ``args.output``; prints the one-line summary and returns the report."""
    report = export_checkpoint(
        args.weights,
        args.output,
        input_size=args.input,
        opset=args.opset,
        opts=args.opts,
        tolerance=args.tolerance,
    )
    print(report.summary(), file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
