"""Print the statistics table and the problems of every dataset found under a data root.

    python tools/inspect_datasets.py --root datasets [--datasets market1501 viper] [--cuhk03-cache DIR]

Exit status 1 when a dataset that is present (or named) cannot be parsed.
"""

import argparse
import os
import sys

from reid_dff.data.datasets.inspection import format_inspection, inspect_root


def main(argv: list[str] | None = None) -> int:
    """Print the inspection table; 1 when a present (or named) dataset cannot be parsed, else 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="data root holding one folder per dataset")
    parser.add_argument("--datasets", nargs="+", help="dataset specs to inspect (default: all found)")
    parser.add_argument(
        "--cuhk03-cache", help="where CUHK03 images are extracted (default ~/.cache/reid_dff)"
    )
    args = parser.parse_args(argv)
    if not os.path.isdir(os.path.expanduser(args.root)):
        print(f"inspect_datasets.py: error: --root {args.root} is not a directory; pass the data root that holds "
              "one folder per dataset (datasets/README.md)", file=sys.stderr)  # fmt: skip
        return 1
    options = {"cuhk03": {"cache_dir": args.cuhk03_cache}} if args.cuhk03_cache else {}
    results = inspect_root(args.root, args.datasets, options)
    print(format_inspection(results))
    return 1 if any(r.status == "error" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
