"""Build a FAISS gallery index from a features file written by tools/extract_features.py.

    python tools/build_index.py --features gallery.npz --index output/index [--type flat|ivf|ivfpq|hnsw]
        [--nlist 1024 --nprobe 16] [--pq-m 256 --pq-nbits 8] [--M 32 --ef-construction 40 --ef-search 64]
        [--metric cosine]

The index directory holds index.faiss, items.npz and meta.json (see docs/search.md), each written
atomically. The metric defaults to the one the features' model is evaluated with (TEST.METRIC).
"""

import argparse
import sys

from reid_dff.cli.common import exit_on_user_error
from reid_dff.inference import INDEX_TYPES, FeaturesFileError, GalleryIndex, load_features

# Options that are index parameters, under their parameter names (argparse dests).
PARAM_OPTIONS = ("nlist", "nprobe", "train_per_list", "pq_m", "pq_nbits", "M", "ef_construction", "ef_search")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line arguments of ``reid-dff-build-index`` / ``tools/build_index.py``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--features", required=True, help="features .npz from tools/extract_features.py")
    parser.add_argument("--index", required=True, help="output index directory")
    parser.add_argument(
        "--type", default="flat", choices=sorted(INDEX_TYPES), help="index type (default flat)"
    )
    parser.add_argument(
        "--metric", choices=["cosine", "euclidean"], help="default: the features' TEST.METRIC"
    )
    parser.add_argument(
        "--gallery-root", help="folder the gallery paths are relative to (default: as extracted)"
    )
    parser.add_argument("--nlist", type=int, help="ivf, ivfpq: number of inverted lists (default 4*sqrt(N))")
    parser.add_argument("--nprobe", type=int, help="ivf, ivfpq: lists visited per query (default 16)")
    parser.add_argument("--train-per-list", type=int, help="ivf, ivfpq: k-means sample per list (default 64)")
    parser.add_argument(
        "--pq-m",
        type=int,
        help="ivfpq: sub-quantizers, bytes per image at 8 bits (default dim/8; divides dim)",
    )
    parser.add_argument("--pq-nbits", type=int, help="ivfpq: bits per sub-quantizer code (default 8)")
    parser.add_argument("--M", type=int, help="hnsw: neighbours per node (default 32)")
    parser.add_argument("--ef-construction", type=int, help="hnsw: build-time beam (default 40)")
    parser.add_argument("--ef-search", type=int, help="hnsw: search-time beam (default 64)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Build and save a gallery index from a features file; exits 1 on a user error."""
    args = parse_args(argv)
    with exit_on_user_error(
        "build_index.py", {FeaturesFileError: "--features takes a file written by tools/extract_features.py"}
    ):
        run(args)


def run(args: argparse.Namespace) -> None:
    """Build the index of ``args.features`` and save it to ``args.index``."""
    features = load_features(args.features, mmap=True)  # rows are read in batches while adding
    params = {name: getattr(args, name) for name in PARAM_OPTIONS if getattr(args, name) is not None}
    index = GalleryIndex.from_features(
        features, index_type=args.type, params=params, metric=args.metric, root=args.gallery_root
    )
    index.save(args.index)
    meta = index.meta
    print(
        f"{meta.index_type} index of {len(index)} x {meta.dim}-d features ({meta.metric}, params {meta.params}) "
        f"-> {args.index}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
