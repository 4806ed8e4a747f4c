r"""Extract ReID embeddings of a folder / list of images, or of a dataset split, into a features file.

    python tools/extract_features.py --config-file CFG --images DIR_OR_LIST --output feats.npz \
        MODEL.WEIGHTS model.pth
    python tools/extract_features.py --weights model.pth --dataset synthetic:3 --split gallery \
        --output gallery.npz
    python tools/extract_features.py --weights model.onnx --images DIR --output feats.npz

The file (see docs/search.md) holds float32 features, paths relative to the image root, and pid/camid
where the names (Market-style ``0002_c3s1_...``) or the dataset carry them, -1 elsewhere. The images go
through the evaluation's test transforms (and TEST.FLIP_FEATS); MODEL.DEVICE or --device picks CPU/GPU.
"""

import argparse
import os
import sys

from reid_dff.cli.common import (
    DEPLOY_REMEDY,
    ConfigFileOnce,
    ToolUsageError,
    add_overrides,
    exit_on_user_error,
    parse_flags_first,
)
from reid_dff.data import build_test_sets
from reid_dff.inference import collect_images
from reid_dff.inference.extractor import FeatureExtractor, image_samples
from reid_dff.inference.onnx_model import DeployExtraMissingError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments of ``reid-dff-extract-features`` / ``tools/extract_features.py``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config-file",
        action=ConfigFileOnce,
        help="YAML config (default: the one stored in the --weights checkpoint)",
    )
    parser.add_argument(
        "--weights", help="checkpoint (sets MODEL.WEIGHTS), or a .onnx from tools/export_model.py alone"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", help="an image, a folder of images (recursive) or a .txt list of paths")
    source.add_argument("--dataset", help="a dataset spec of DATASETS.ROOT, e.g. market1501 or synthetic:3")
    parser.add_argument("--split", choices=["query", "gallery"], default="gallery", help="with --dataset")
    parser.add_argument("--split-id", type=int, help="with --dataset: protocol split id (small targets)")
    parser.add_argument("--output", required=True, help="features file to write (.npz)")
    parser.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: MODEL.DEVICE)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_overrides(parser)
    return parse_flags_first(parser, argv)


def build_extractor(config_file, weights, opts, device):
    """The extractor of a config file (+ weights) or of a checkpoint alone."""
    if config_file:
        return FeatureExtractor(config_file, device=device, opts=opts, weights=weights)
    if not weights:
        raise ToolUsageError(
            "give --config-file (with MODEL.WEIGHTS or --weights), or --weights CHECKPOINT_OR_ONNX"
        )
    return FeatureExtractor(weights, device=device, opts=opts)


def main(argv: list[str] | None = None) -> None:
    """Extract the features of images or a dataset split into a features file; exits 1 on a user error."""
    args = parse_args(argv)
    with exit_on_user_error("extract_features.py", {DeployExtraMissingError: DEPLOY_REMEDY}):
        run(args)


def run(args: argparse.Namespace) -> None:
    """Extract the features of ``args.images`` or of a dataset split and save them to ``args.output``."""
    extractor = build_extractor(args.config_file, args.weights, args.opts, args.device)
    progress = not args.no_progress
    if args.images:
        images = collect_images(args.images)
        samples, root = image_samples(images), images.root
    else:
        splits = build_test_sets(extractor.cfg, args.dataset)
        if args.split_id is not None:
            available = sorted({s.split_id for s in splits} - {None})
            splits = [s for s in splits if s.split_id == args.split_id]
            if not splits:
                raise ToolUsageError(
                    f"{args.dataset} has no split id {args.split_id}"
                    + (
                        f" among DATASETS.SPLIT_IDS {available}"
                        if available
                        else ": it has a single test split; drop --split-id"
                    )
                )
        samples = getattr(splits[0], args.split)
        root = os.path.commonpath([os.path.dirname(s.path) for s in samples])
    # Written batch by batch: a gallery of any size needs one batch of features in memory.
    rows, dim = extractor.save_feature_set(samples, root, args.output, progress=progress)
    print(f"{rows} x {dim}-d features of {os.path.abspath(root)} -> {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
