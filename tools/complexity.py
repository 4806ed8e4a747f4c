#!/usr/bin/env python
"""Parameters and GMACs (conv + linear multiply-adds; FFT flops shown separately) of a backbone + head.

    python tools/complexity.py --model dff_resnet50 --input 224 224 --num-classes 1000 [--json]

Defaults reproduce the papers' setting (224x224, ImageNet head, last stride 2); ``--last-stride 1`` and
``--input 256 128`` give the ReID setting. The model is the ReID model of ``MODEL.TASK reid`` (BNNeck +
bias-free classifier), whose head differs from torchvision's ``fc`` by +2 * C - N parameters.
"""

import sys

# The code is reid_dff/cli/complexity.py, installed as the `reid-dff-complexity` command.
from reid_dff.cli.complexity import main

if __name__ == "__main__":
    sys.exit(main())
