#!/usr/bin/env python
"""Print the statistics table and the problems of every dataset found under a data root.

    python tools/inspect_datasets.py --root datasets [--datasets market1501 viper] [--cuhk03-cache DIR]

Exit status 1 when a dataset that is present (or named) cannot be parsed.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from reid_dff.data.datasets.inspection import format_inspection, inspect_root  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="data root holding one folder per dataset")
    parser.add_argument("--datasets", nargs="+", help="dataset specs to inspect (default: all found)")
    parser.add_argument(
        "--cuhk03-cache", help="where CUHK03 images are extracted (default ~/.cache/reid_dff)"
    )
    args = parser.parse_args(argv)
    options = {"cuhk03": {"cache_dir": args.cuhk03_cache}} if args.cuhk03_cache else {}
    results = inspect_root(args.root, args.datasets, options)
    print(format_inspection(results))
    return 1 if any(r.status == "error" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
