r"""Pictures of what a model learned, as PNG files.

    # (a) each DFF layer's frequency mask beside the centred log-magnitude spectrum it filters, per image
    python tools/visualize.py masks --weights dff.pth --images DIR_OR_LIST --output-dir docs/images
    # (b) activation overlays (channel mean of a layer's output), Base and DFF side by side
    python tools/visualize.py activations --base-weights base.pth --weights dff.pth --images DIR \
        --output docs/images/activations.png [--layer backbone]
    # (c) ranked lists (query + top-k, green = right, red = wrong) from tools/search.py's JSON
    python tools/visualize.py ranked --results output/results.json --output output/ranked.png
    # (d) mask diagnostics (mean, spreads, domain difference, DC per mask module) on datasets, as JSON
    python tools/visualize.py mask-stats --weights dff.pth --dataset market1501 --dataset dukemtmc \
        [--split all|train|test] [--max-images 512] --output output/mask_stats.json

Models come from a checkpoint (its stored config) or --config-file (+ KEY VALUE overrides).
"""

import argparse
import json
import os
import sys

from reid_dff.cli.common import (
    ConfigFileOnce,
    Remedies,
    ToolUsageError,
    add_overrides,
    exit_on_user_error,
    parse_flags_first,
    positive_int,
)
from reid_dff.data import read_image
from reid_dff.inference import collect_images
from reid_dff.visualization import save_png
from reid_dff.visualization.figures import (
    FigureInputError,
    activation_comparison,
    mask_figures,
    ranked_lists_figure,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments of ``reid-dff-visualize`` / ``tools/visualize.py``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    masks = commands.add_parser("masks", help="DFF frequency masks beside the spectra, one PNG per image")
    masks.add_argument("--weights", required=True, help="DFF checkpoint")
    masks.add_argument("--config-file", action=ConfigFileOnce, help="config (default: the checkpoint's)")
    masks.add_argument("--images", required=True, help="an image, a folder or a .txt list")
    masks.add_argument("--max-images", type=positive_int, default=4)
    masks.add_argument("--output-dir", required=True)
    masks.add_argument("--prefix", default="masks")

    activations = commands.add_parser("activations", help="activation overlays of Base and DFF")
    activations.add_argument("--base-weights", required=True, help="Base (plain ResNet) checkpoint")
    activations.add_argument(
        "--base-config-file", help="config of the Base model (default: the checkpoint's)"
    )
    activations.add_argument("--weights", required=True, help="DFF checkpoint")
    activations.add_argument(
        "--config-file", action=ConfigFileOnce, help="config of the DFF model (default: the checkpoint's)"
    )
    activations.add_argument("--images", required=True, help="an image, a folder or a .txt list")
    activations.add_argument("--max-images", type=positive_int, default=4)
    activations.add_argument("--layer", default="backbone", help="module whose output is shown")
    activations.add_argument("--output", required=True, help="PNG file")

    ranked = commands.add_parser("ranked", help="ranked lists from tools/search.py's JSON results")
    ranked.add_argument("--results", required=True, help="JSON written by tools/search.py")
    ranked.add_argument("--max-queries", type=positive_int, default=8)
    ranked.add_argument("--output", required=True, help="PNG file")

    # issue 16: mask diagnostics of a checkpoint (reid_dff.evaluation.mask_stats)
    stats = commands.add_parser("mask-stats", help="mask diagnostics of a checkpoint on datasets, as JSON")
    stats.add_argument("--weights", required=True, help="checkpoint of a model with masks (DFF, ablations)")
    stats.add_argument("--config-file", action=ConfigFileOnce, help="config (default: the checkpoint's)")
    stats.add_argument(
        "--dataset", action="append", required=True, help="dataset spec; repeat: one domain each"
    )
    stats.add_argument("--data-root", help="datasets folder (default: DATASETS.ROOT)")
    stats.add_argument("--split", choices=("all", "train", "test"), default="all", help="test: query+gallery")
    stats.add_argument("--max-images", type=positive_int, default=512, help="evenly spaced over all images")
    stats.add_argument("--output", dest="stats_output", required=True, help="JSON file")
    stats.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    stats.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")

    for sub in (masks, activations):
        sub.add_argument("--device", help="cpu, cuda, cuda:N or auto")
        add_overrides(sub)
    args = parse_flags_first(parser, argv)
    output = getattr(args, "output", None)
    if output is not None and not output.lower().endswith(".png"):
        parser.error(f"--output {output}: figures are written as PNG; give a file name ending in .png")
    return args


def load_extractor(config_file, weights, device, opts):
    """The FeatureExtractor of a config file (+ weights) or of a checkpoint alone."""
    from reid_dff.inference.extractor import FeatureExtractor  # torch and the model only when needed

    if config_file:
        return FeatureExtractor(config_file, device=device, opts=opts, weights=weights)
    return FeatureExtractor(weights, device=device, opts=opts)


def read_images(spec, limit):
    """(paths, uint8 RGB (H, W, 3) images) of the first ``limit`` images of ``spec``."""
    paths = collect_images(spec).absolute()[:limit]
    return paths, [read_image(p) for p in paths]


def figure_names(paths: list[str]) -> list[str]:
    """One distinct name per image: the file stem, or its path below the images' common folder when two
    images share a stem (``a/x.jpg``, ``b/x.jpg`` -> ``a_x``, ``b_x``), so no figure overwrites another."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    common = os.path.commonpath([os.path.dirname(p) for p in paths])
    return [os.path.splitext(os.path.relpath(p, common))[0].replace(os.sep, "_") for p in paths]


# The remedy each command adds to a FigureInputError (its message says what is wrong with the input).
REMEDIES: dict[str, Remedies] = {
    "masks": {FigureInputError: "--weights must be a DFF checkpoint (dff_resnet* with a frequency filter)"},
    "activations": {FigureInputError: "--layer names the module whose (B, C, h, w) output is shown"},
    "ranked": {FigureInputError: "--results takes the JSON that tools/search.py writes with --output"},
}


def main(argv: list[str] | None = None) -> None:
    """Draw masks, activations or ranked lists as PNG files; exits 1 on a user error."""
    args = parse_args(argv)
    with exit_on_user_error("visualize.py", REMEDIES.get(args.command)):
        run(args)


def run(args: argparse.Namespace) -> None:
    """Draw the figures of ``args.command`` and print the written PNG paths."""
    written = []
    if args.command == "masks":
        paths, images = read_images(args.images, args.max_images)  # bad input fails before a model loads
        extractor = load_extractor(args.config_file, args.weights, args.device, args.opts)
        batch = extractor.preprocess(images).to(extractor.device)
        for name, figure in zip(figure_names(paths), mask_figures(extractor.model, images, batch)):
            written.append(save_png(os.path.join(args.output_dir, f"{args.prefix}_{name}.png"), figure))
    elif args.command == "activations":
        _, images = read_images(args.images, args.max_images)
        base = load_extractor(args.base_config_file, args.base_weights, args.device, args.opts)
        if base.model_name.startswith("dff_"):  # the DFF model on both sides compares nothing
            raise ToolUsageError(
                f"--base-weights {args.base_weights} is a {base.model_name} model; the Base side of the "
                "comparison is a plain ResNet (MODEL.BACKBONE resnet18/34/50/101): train one with "
                "MODEL.BACKBONE resnet18 (README, 'Gallery search and pictures') and pass its last.pth"
            )
        dff = load_extractor(args.config_file, args.weights, args.device, args.opts)
        models = [
            (f"Base ({base.model_name})", base.model, base.preprocess(images).to(base.device)),
            (f"DFF ({dff.model_name})", dff.model, dff.preprocess(images).to(dff.device)),
        ]
        written.append(save_png(args.output, activation_comparison(models, images, layer=args.layer)))
    elif args.command == "mask-stats":
        written.append(write_mask_stats_file(args))
    else:
        try:
            with open(args.results, encoding="utf-8") as f:
                report = json.load(f)
        except json.JSONDecodeError as e:
            raise FigureInputError(f"{args.results} is not valid JSON ({e})") from None
        except FileNotFoundError:
            raise FigureInputError(f"{args.results} does not exist") from None
        written.append(save_png(args.output, ranked_lists_figure(report, max_queries=args.max_queries)))
    for path in written:
        print(path, file=sys.stderr)


def write_mask_stats_file(args: argparse.Namespace) -> str:
    """``mask-stats``: statistics of the checkpoint's masks over ``--dataset`` images, written as JSON."""
    from reid_dff.config import ConfigError
    from reid_dff.data import build_dataset, build_test_loader, parse_dataset_spec
    from reid_dff.data.build import dataset_options
    from reid_dff.evaluation.mask_stats import evenly_spaced, mask_modules, mask_statistics
    from reid_dff.utils import atomic_write_json

    extractor = load_extractor(args.config_file, args.weights, args.device, args.opts)
    cfg = extractor.cfg
    if not mask_modules(extractor.model):
        raise ConfigError(
            f"{args.weights} ({cfg.MODEL.BACKBONE}, filter {cfg.MODEL.DFF.FILTER}) has no masks"
        )
    samples = []
    for domain, spec in enumerate(args.dataset):
        name, _ = parse_dataset_spec(spec)
        dataset = build_dataset(spec, args.data_root or cfg.DATASETS.ROOT, **dataset_options(cfg, name))
        parts = {"train": [dataset.train], "test": [dataset.query, dataset.gallery]}
        chosen = [*parts["train"], *parts["test"]] if args.split == "all" else parts[args.split]
        seen = set()
        for sample in (s for part in chosen for s in part):
            if sample.path not in seen:
                seen.add(sample.path)
                samples.append(sample._replace(domain=domain))
    if not samples:
        raise ConfigError(f"no {args.split} images in {', '.join(args.dataset)}")
    loader = build_test_loader(cfg, evenly_spaced(samples, args.max_images))
    stats = mask_statistics(extractor.model, loader, device=extractor.device)
    stats.update(weights=os.path.abspath(args.weights), datasets=list(args.dataset), split=args.split)
    atomic_write_json(args.stats_output, stats)
    return args.stats_output


if __name__ == "__main__":
    main()
