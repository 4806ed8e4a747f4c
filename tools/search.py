#!/usr/bin/env python
"""Search query images (or query features) in a gallery index; JSON results and an HTML page.

    python tools/search.py --index output/index --query DIR_OR_IMAGE --topk 10 --html results.html
    python tools/search.py --index output/index --query-features query.npz --exclude-same-camera

The model is the checkpoint (or exported .onnx) recorded in the index unless --config-file / --weights name
another; it must be the one the index was built with (checked by SHA-256, dimension and normalization). The JSON (stdout
or --output) lists per query its ranked gallery paths and distances. The HTML page embeds small JPEG
thumbnails as base64 (--thumbnails relative links to the images instead).
"""

import sys

# The code is reid_dff/cli/search.py, installed as the `reid-dff-search` command.
from reid_dff.cli.search import main

if __name__ == "__main__":
    sys.exit(main())
