#!/usr/bin/env python
"""Build a FAISS gallery index from a features file written by tools/extract_features.py.

    python tools/build_index.py --features gallery.npz --index output/index [--type flat|ivf|hnsw]
        [--nlist 1024 --nprobe 16] [--M 32 --ef-construction 40 --ef-search 64] [--metric cosine]

The index directory holds index.faiss, items.npz and meta.json (see docs/search.md), each written
atomically. The metric defaults to the one the features' model is evaluated with (TEST.METRIC).
"""

import sys

# The code is reid_dff/cli/build_index.py, installed as the `reid-dff-build-index` command.
from reid_dff.cli.build_index import main

if __name__ == "__main__":
    sys.exit(main())
