#!/usr/bin/env python
r"""Pictures of what a model learned, as PNG files.

    # (a) each DFF layer's frequency mask beside the centred log-magnitude spectrum it filters, per image
    python tools/visualize.py masks --weights dff.pth --images DIR_OR_LIST --output-dir docs/images
    # (b) activation overlays (channel mean of a layer's output), Base and DFF side by side
    python tools/visualize.py activations --base-weights base.pth --weights dff.pth --images DIR \
        --output docs/images/activations.png [--layer backbone]
    # (c) ranked lists (query + top-k, green = right, red = wrong) from tools/search.py's JSON
    python tools/visualize.py ranked --results results.json --output docs/images/ranked.png

Models come from a checkpoint (its stored config) or --config-file (+ KEY VALUE overrides).
"""

import sys

# The code is reid_dff/cli/visualize.py, installed as the `reid-dff-visualize` command.
from reid_dff.cli.visualize import main

if __name__ == "__main__":
    sys.exit(main())
