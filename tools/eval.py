#!/usr/bin/env python
"""Evaluate a checkpoint on the configured targets; prints a Markdown table, writes OUTPUT_DIR/results.json.

python tools/eval.py --config-file configs/ms_cs_c3_to_ma.yaml MODEL.WEIGHTS output/protocol2/ms_cs_c3_to_ma/dff_r50/best.pth
python tools/eval.py --config-file CFG MODEL.WEIGHTS ckpt.pth DATASETS.TARGETS "[viper, prid, grid, ilids]"
python tools/eval.py --config-file CFG MODEL.WEIGHTS ckpt.pth TEST.RERANK.ENABLED True TEST.METRIC euclidean

Each target's images are embedded once and reused over its splits (DATASETS.SPLIT_IDS for the small
targets). results.json holds every split's metrics, the split files' SHA-256, the resolved config and the
checkpoint's SHA-256 (schema: docs/evaluation.md); OUTPUT_DIR/config.yaml is the resolved config.
"""

import sys

# The code is reid_dff/cli/evaluate.py, installed as the `reid-dff-eval` command.
from reid_dff.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
