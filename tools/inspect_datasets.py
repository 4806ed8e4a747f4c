#!/usr/bin/env python
"""Print the statistics table and the problems of every dataset found under a data root.

    python tools/inspect_datasets.py --root datasets [--datasets market1501 viper] [--cuhk03-cache DIR]

Exit status 1 when a dataset that is present (or named) cannot be parsed.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The code is reid_dff/cli/inspect_datasets.py, installed as the `reid-dff-inspect-datasets` command.
from reid_dff.cli.inspect_datasets import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
