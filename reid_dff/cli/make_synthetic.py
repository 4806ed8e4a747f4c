"""Generate the synthetic multi-domain ReID data (Market-1501 layout) and optionally report the
colour-histogram baseline per domain; with ``--classes``, the many-class classification set of stage 1.

    python tools/make_synthetic.py --root datasets --seed 0
    python tools/make_synthetic.py --root /tmp/s --seed 0 --domains 4 --ids-train 100 --ids-test 50 --report
    python tools/make_synthetic.py --root datasets --classes --num-classes 100 --train-per-class 60

Writes ``<root>/synthetic/domain{k}/{bounding_box_train,query,bounding_box_test}`` and
``<root>/synthetic/manifest.json``; with ``--classes``, ``<root>/synthetic_classes/{train,val}/<class>/``
and its ``manifest.json``. An existing tree with the same parameters is reused (checked, not rewritten);
``--overwrite`` regenerates it. Defaults come from ``DATASETS.SYNTHETIC`` (``DATASETS.SYNTHETIC_CLASSES``)
in the config defaults.
"""

from __future__ import annotations

import argparse
import os

from reid_dff.cli.common import exit_on_user_error, positive_int
from reid_dff.config import get_cfg
from reid_dff.data.synthetic import (
    CLASSES_DIRNAME,
    SYNTHETIC_DIRNAME,
    SyntheticDataError,
    ensure_synthetic_data,
    generate_synthetic,
    generate_synthetic_classes,
    read_classes_manifest,
    read_manifest,
)
from reid_dff.data.synthetic.tree import ForeignTreeError
from reid_dff.evaluation.baselines import histogram_baseline_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments; defaults are the config's ``DATASETS.SYNTHETIC``."""
    d = get_cfg().DATASETS.SYNTHETIC
    c = get_cfg().DATASETS.SYNTHETIC_CLASSES
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="data root; the tree goes to ROOT/synthetic")
    p.add_argument(
        "--classes",
        action="store_true",
        help="the many-class classification set of stage 1 (ROOT/synthetic_classes) instead of the ReID domains",
    )
    p.add_argument("--num-classes", type=int, default=c.NUM_CLASSES, help="with --classes: 2-100")
    p.add_argument("--train-per-class", type=positive_int, default=c.TRAIN_PER_CLASS, help="with --classes")
    p.add_argument("--val-per-class", type=positive_int, default=c.VAL_PER_CLASS, help="with --classes")
    p.add_argument("--size", type=int, default=c.SIZE, help="with --classes: image side in pixels")
    p.add_argument("--seed", type=int, default=d.SEED)
    p.add_argument("--domains", type=int, default=d.NUM_DOMAINS)
    p.add_argument("--ids-train", type=int, default=d.IDS_TRAIN)
    p.add_argument("--ids-test", type=int, default=d.IDS_TEST)
    p.add_argument("--height", type=int, default=d.HEIGHT)
    p.add_argument("--width", type=int, default=d.WIDTH)
    p.add_argument("--cameras", type=int, default=d.CAMERAS)
    p.add_argument("--images-per-camera", type=int, default=d.IMAGES_PER_CAMERA)
    p.add_argument(
        "--workers", type=positive_int, default=1, help="processes; the output does not depend on it"
    )
    p.add_argument("--overwrite", action="store_true", help="regenerate an existing ROOT/synthetic tree")
    p.add_argument("--report", action="store_true", help="print the colour-histogram baseline per domain")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Generate (or check and reuse) the synthetic tree and print its table; exits with a message on error."""
    args = parse_args(argv)
    if args.classes:
        make_classes(args)
        return
    params = {
        "seed": args.seed,
        "num_domains": args.domains,
        "ids_train": args.ids_train,
        "ids_test": args.ids_test,
        "height": args.height,
        "width": args.width,
        "cameras": args.cameras,
        "images_per_camera": args.images_per_camera,
    }
    cfg = get_cfg()
    cfg.DATASETS.ROOT = args.root
    cfg.DATASETS.SYNTHETIC.update({name.upper(): value for name, value in params.items()})
    target = os.path.join(args.root, SYNTHETIC_DIRNAME)
    with exit_on_user_error("make_synthetic.py", {SyntheticDataError: "--overwrite regenerates the tree"}):
        existed = os.path.isdir(target)
        if args.overwrite:  # an explicit rebuild, which ensure_synthetic_data below then finds current
            generate_synthetic(args.root, **params, workers=args.workers, overwrite=True)
        ensure_synthetic_data(cfg, ["synthetic"], workers=args.workers)
        if existed and not args.overwrite:
            print(f"{target} already holds these parameters; reused it (--overwrite regenerates)")
    manifest = read_manifest(target)
    print(f"{target}: {manifest['num_files']} images, total sha256 {manifest['total_sha256']}")
    print(f"| {'domain':<8} | {'train':>6} | {'query':>6} | {'gallery':>7} | recipe")
    for domain in manifest["domains"]:
        c = domain["counts"]
        print(
            f"| {domain['name']:<8} | {c['bounding_box_train']:>6} | {c['query']:>6} | "
            f"{c['bounding_box_test']:>7} | {domain['recipe']['description']}"
        )
    if args.report:
        print("\ncolour-histogram baseline (HSV of three body thirds, cosine) on each query/gallery split:")
        print(f"| {'domain':<8} | {'query':>6} | {'gallery':>7} | {'mAP':>6} | {'R1':>6} |")
        for row in histogram_baseline_report(target):
            print(
                f"| {row['domain']:<8} | {row['num_query']:>6} | {row['num_gallery']:>7} | "
                f"{100 * row['mAP']:>5.1f}% | {100 * row['rank1']:>5.1f}% |"
            )


def make_classes(args: argparse.Namespace) -> None:
    """Generate (or check and reuse) ``ROOT/synthetic_classes`` and print its size."""
    params = {
        "seed": args.seed,
        "num_classes": args.num_classes,
        "train_per_class": args.train_per_class,
        "val_per_class": args.val_per_class,
        "size": args.size,
    }
    cfg = get_cfg()
    cfg.DATASETS.ROOT = args.root
    cfg.DATASETS.SYNTHETIC_CLASSES.update({name.upper(): value for name, value in params.items()})
    cfg.DATASETS.SYNTHETIC_CLASSES.ENABLED = True
    target = os.path.join(args.root, CLASSES_DIRNAME)
    remedies: dict[type[BaseException], str] = {
        SyntheticDataError: "--overwrite regenerates the tree",
        ForeignTreeError: "move that folder away or pass another --root",  # never --overwrite a user's folder
    }
    with exit_on_user_error("make_synthetic.py", remedies):
        existed = os.path.isdir(target)
        if args.overwrite:
            generate_synthetic_classes(args.root, **params, overwrite=True)
        ensure_synthetic_data(cfg, [])
        if existed and not args.overwrite:
            print(f"{target} already holds these parameters; reused it (--overwrite regenerates)")
    manifest = read_classes_manifest(args.root) or {}  # just written or checked
    print(
        f"{target}: {manifest['num_classes']} classes x ({manifest['train_per_class']} train + "
        f"{manifest['val_per_class']} val) images of {manifest['size']}x{manifest['size']}, "
        f"{manifest['num_files']} files, total sha256 {manifest['total_sha256']}"
    )


if __name__ == "__main__":
    main()
