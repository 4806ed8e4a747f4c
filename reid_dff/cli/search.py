r"""Search query images (or query features) in a gallery index; JSON results and an HTML page.

    python tools/search.py --index output/index --query DIR_OR_IMAGE --topk 10 --exclude-same-camera \
        --output output/results.json --html output/results.html
    python tools/search.py --index output/index --query-features output/query.npz --exclude-same-camera

--exclude-same-camera drops the gallery images of the query's identity seen by the query's camera (the ReID
protocol; without it the top hits are same-camera near-duplicates) and reports the CMC.

The model is the checkpoint (or exported .onnx) recorded in the index unless --config-file / --weights name
another; it must be the one the index was built with (checked by SHA-256, dimension and normalization). The JSON (stdout
or --output) lists per query its ranked gallery paths and distances. The HTML page embeds small JPEG
thumbnails as base64 (--thumbnails relative links to the images instead).
"""

import argparse
import json
import os
import sys

from reid_dff.cli.common import (
    DEPLOY_REMEDY,
    ConfigFileOnce,
    Remedies,
    ToolUsageError,
    add_overrides,
    exit_on_user_error,
    parse_flags_first,
    positive_int,
)
from reid_dff.inference import (
    FeaturesFileError,
    GalleryIndex,
    IndexFormatError,
    NoValidQueryError,
    collect_images,
    load_features,
    search_features,
)
from reid_dff.inference.onnx_model import DeployExtraMissingError
from reid_dff.utils import atomic_write_json
from reid_dff.visualization import write_search_html


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments of ``reid-dff-search`` / ``tools/search.py``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", required=True, help="index directory from tools/build_index.py")
    queries = parser.add_mutually_exclusive_group(required=True)
    queries.add_argument("--query", help="an image, a folder of images or a .txt list of paths")
    queries.add_argument("--query-features", help="query features from tools/extract_features.py")
    parser.add_argument("--topk", type=positive_int, default=10, help="results per query (default 10)")
    parser.add_argument("--output", help="JSON results file (default: stdout)")
    parser.add_argument("--html", help="also write an HTML page of thumbnails")
    parser.add_argument("--thumbnails", choices=["embed", "relative"], default="embed")
    parser.add_argument(
        "--exclude-same-camera",
        action="store_true",
        help="ReID protocol: drop gallery items of the query's identity and camera; report CMC",
    )
    parser.add_argument("--gallery-root", help="where the gallery images are now (default: as indexed)")
    parser.add_argument("--nprobe", type=int, help="ivf, ivfpq: lists visited per query")
    parser.add_argument("--ef-search", type=int, help="hnsw: search beam")
    parser.add_argument(
        "--config-file", action=ConfigFileOnce, help="config of the model (default: the index's checkpoint)"
    )
    parser.add_argument(
        "--weights", help="checkpoint or exported .onnx of the model (default: the index's model)"
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    add_overrides(parser)
    return parse_flags_first(parser, argv)


def query_features(args, index):
    """The query features: read from --query-features or extracted with the index's (or the given) model."""
    if args.query_features:
        return load_features(args.query_features)
    from reid_dff.inference.extractor import FeatureExtractor  # torch and the model only when needed

    if args.config_file:
        extractor = FeatureExtractor(
            args.config_file, device=args.device, opts=args.opts, weights=args.weights
        )
    else:
        # An index built from an exported model's features is searched with that ONNX file, else with the
        # checkpoint it was exported from (the two give the same features within 1e-4 and may mix).
        recorded = [path for path in (index.meta.onnx_path, index.meta.checkpoint_path) if path]
        candidates = [args.weights] if args.weights else recorded
        model_file = next((path for path in candidates if os.path.isfile(path)), None)
        if model_file is None:
            named = " or ".join(repr(path) for path in candidates) or "no model file"
            where = "--weights names" if args.weights else "the index records"
            raise ToolUsageError(
                f"{where} {named}, which is not here; pass --weights (a checkpoint or an exported .onnx; "
                "with --config-file if the checkpoint holds no config)"
            )
        extractor = FeatureExtractor(model_file, device=args.device, opts=args.opts)
    # The extractor returns raw embeddings and the index applies its own metric (see search_features).
    index.check_compatible(
        dim=extractor.dim,
        model_name=extractor.model_name,
        checkpoint_sha256=extractor.checkpoint_sha256,
        onnx_sha256=extractor.onnx_sha256 or None,
    )
    return extractor.extract_images(collect_images(args.query))


# The tool-level remedy added to the library's message (which says what is wrong with the file).
REMEDIES: Remedies = {
    IndexFormatError: "--index takes a folder written by tools/build_index.py",
    FeaturesFileError: "--query-features takes a file written by tools/extract_features.py",
    DeployExtraMissingError: DEPLOY_REMEDY,
}


def main(argv: list[str] | None = None) -> None:
    """Search queries in a gallery index, print/write JSON (and HTML); exits 1 on a user error."""
    args = parse_args(argv)
    with exit_on_user_error("search.py", REMEDIES):
        run(args)


def run(args: argparse.Namespace) -> None:
    """Search the queries in ``args.index``; write the JSON (stdout or ``--output``) and the HTML page."""
    index = GalleryIndex.load(args.index, root=args.gallery_root)
    search_params = {
        k: v for k, v in (("nprobe", args.nprobe), ("ef_search", args.ef_search)) if v is not None
    }
    if search_params:
        index.set_search_params(**search_params)
    report = search_features(index, query_features(args, index), args.topk, args.exclude_same_camera)
    if args.output:
        atomic_write_json(args.output, report)
    else:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    if args.html:
        write_search_html(args.html, report, thumbnails=args.thumbnails)
    if report.get("no_valid_query"):  # the ranked lists are written; only the CMC could not be measured
        where = ", ".join(p for p in (args.output or "stdout", args.html) if p)
        raise NoValidQueryError(f"{report['no_valid_query']} (the ranked lists were written to {where})")
    if "cmc" in report:
        cmc = report["cmc"]
        ranks = ", ".join(f"R{r} {100 * cmc[str(r)]:.1f}%" for r in (1, 5, 10) if str(r) in cmc)
        print(f"{report['num_valid_queries']} valid queries: {ranks}", file=sys.stderr)


if __name__ == "__main__":
    main()
