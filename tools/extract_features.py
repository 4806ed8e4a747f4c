#!/usr/bin/env python
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

import sys

# The code is reid_dff/cli/extract_features.py, installed as the `reid-dff-extract-features` command.
from reid_dff.cli.extract_features import main

if __name__ == "__main__":
    sys.exit(main())
