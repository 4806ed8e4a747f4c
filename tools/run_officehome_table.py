#!/usr/bin/env python
"""The Office-Home leave-one-domain-out table: each held-out domain x each model, then the average.

    python tools/run_officehome_table.py --synthetic                 # CPU demo (docs/results.md)
    python tools/run_officehome_table.py --models dff_r18 r18        # real data (GPU; needs ImageNet weights)

Each cell is one ``tools/train_net.py --config-file configs/officehome/<prefix>_<task>.yaml MODEL.BACKBONE ...
OUTPUT_DIR OUT/<model>/<task>`` run in its own process; an existing ``results.json`` is reused unless
``--rerun``. Cells are top-1 at the epoch selected on the sources' val split (the last epoch's in
parentheses). Writes ``OUT/table.md`` (with the commands) and ``OUT/table.json``.
"""

import argparse
import json
import os
import subprocess
import sys

from reid_dff.tasks.classification import format_leave_one_domain_out_table
from reid_dff.utils import atomic_write_json, atomic_write_text

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASKS = ("art", "clipart", "product", "real_world")
# Model key -> (row label, MODEL.BACKBONE).
MODELS = {"dff_r18": ("DFF (DFF-ResNet-18)", "dff_resnet18"), "r18": ("Base (ResNet-18)", "resnet18")}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--synthetic", action="store_true", help="the synthetic_officehome_* CPU demo configs"
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument(
        "--out", default=None, help="folder of the runs and the table (default output/<prefix>)"
    )
    parser.add_argument("--rerun", action="store_true", help="train again even if results.json exists")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="extra KEY VALUE overrides for every run")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    prefix = "synthetic_officehome" if args.synthetic else "officehome"
    out = args.out or os.path.join("output", prefix)
    runs, commands = {}, []
    for model in args.models:
        label, backbone = MODELS[model]
        runs[label] = {}
        for task in args.tasks:
            run_dir = os.path.join(out, model, task)
            command = [sys.executable, "tools/train_net.py", "--config-file", f"configs/officehome/{prefix}_{task}.yaml",
                       *args.opts, "MODEL.BACKBONE", backbone, "OUTPUT_DIR", run_dir]  # fmt: skip
            commands.append(" ".join(["python", *command[1:]]))
            results = os.path.join(REPO, run_dir, "results.json")
            if args.rerun or not os.path.isfile(results):
                print("+", commands[-1], flush=True)
                subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
            with open(results, encoding="utf-8") as f:
                runs[label][task] = json.load(f)
    table = format_leave_one_domain_out_table(runs)
    atomic_write_text(
        os.path.join(REPO, out, "table.md"), table + "\n\nCommands:\n\n" + "\n".join(commands) + "\n"
    )
    atomic_write_json(os.path.join(REPO, out, "table.json"), runs)
    print(table)


if __name__ == "__main__":
    main()
