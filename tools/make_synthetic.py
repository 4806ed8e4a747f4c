#!/usr/bin/env python
"""Generate the synthetic multi-domain ReID data (Market-1501 layout) and optionally report the
colour-histogram baseline per domain.

    python tools/make_synthetic.py --root datasets --seed 0
    python tools/make_synthetic.py --root /tmp/s --seed 0 --domains 4 --ids-train 100 --ids-test 50 --report

Writes ``<root>/synthetic/domain{k}/{bounding_box_train,query,bounding_box_test}`` and
``<root>/synthetic/manifest.json``. An existing tree with the same parameters is reused (checked, not
rewritten); ``--overwrite`` regenerates it. Defaults come from ``DATASETS.SYNTHETIC`` in the config defaults.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The code is reid_dff/cli/make_synthetic.py, installed as the `reid-dff-make-synthetic` command.
from reid_dff.cli.make_synthetic import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
