#!/usr/bin/env python
"""The two stages at CPU scale (docs/results.md): stage 1 on the generated 100-class set, then the synthetic
ReID demo fine-tuned from it and from scratch, for Base / SBase / DFF.

    python tools/run_two_stage_table.py                        # 3 models, stage 1 once, demo x 3 seeds x 2
    python tools/run_two_stage_table.py --models dff --seeds 0 --demo-set SOLVER.MAX_EPOCHS=8

Writes OUT/table.md and OUT/table.json (OUT: --out, default output/two_stage); the options and the caching
are described in reid_dff/cli/two_stage_table.py (--help).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A repository-maintenance driver of tools/train_net.py, like run_demo_table.py: not installed as a command.
from reid_dff.cli.two_stage_table import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
