#!/usr/bin/env python
"""Train a ReID model from a config, or evaluate a checkpoint; writes OUTPUT_DIR/results.json.

python tools/train_net.py --config-file configs/synthetic_demo.yaml
python tools/train_net.py --config-file configs/ms_cs_c3_to_ma.yaml OUTPUT_DIR output/ma SOLVER.BASE_LR 0.0007
python tools/train_net.py --config-file CFG --resume                   # continue OUTPUT_DIR/last.pth
python tools/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS output/ma/best.pth
torchrun --nproc_per_node=4 tools/train_net.py --config-file CFG      # DDP (NCCL on GPUs, gloo on CPU)
"""

import sys

# The tool's code is reid_dff/cli/train_net.py, also installed as the `reid-dff-train` command.
from reid_dff.cli.train_net import main, parse_args, run

__all__ = ["main", "parse_args", "run"]  # tests load this script and call parse_args / run

if __name__ == "__main__":
    sys.exit(main())
