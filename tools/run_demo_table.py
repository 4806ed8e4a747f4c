#!/usr/bin/env python
"""The synthetic-demo comparison of docs/results.md: Base vs SBase vs DFF over seeds, untrained and histogram.

    python tools/run_demo_table.py                      # 3 variants x 3 seeds, sequentially (~1.5 CPU-hours)
    python tools/run_demo_table.py --seeds 0 --variants dff

Each cell is one ``tools/train_net.py --config-file configs/synthetic_demo.yaml MODEL.BACKBONE ... SEED ...``
run in its own process (the exact command is printed and written beside the table); an existing
``results.json`` made with the same resolved config is reused unless ``--rerun``. The untrained row
evaluates the same networks with ``SOLVER.MAX_EPOCHS 0``. Writes ``OUT/table.md`` and ``OUT/table.json``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from reid_dff.config import setup_cfg
from reid_dff.data.synthetic import ensure_synthetic_data
from reid_dff.evaluation.baselines import histogram_baseline_report
from reid_dff.utils import atomic_write_json, atomic_write_text

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "configs/synthetic_demo.yaml"
# Row label -> MODEL.BACKBONE (the DFF row keeps the config's MODEL.DFF.FILTER, ins_spatial).
VARIANTS = {"base": ("Base (ResNet-18)", "resnet18"), "sbase": ("SBase (FFC-ResNet-18)", "ffc_resnet18"),
            "dff": ("DFF (DFF-ResNet-18)", "dff_resnet18")}  # fmt: skip


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", default="output/demo_table", help="folder of the runs and the table")
    parser.add_argument("--rerun", action="store_true", help="train again even if results.json exists")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="extra KEY VALUE overrides for every run")
    return parser.parse_args(argv)


def run_once(out_dir, overrides, rerun):
    """Run train_net.py with ``overrides`` unless its results exist; returns (command, report, seconds)."""
    command = [
        sys.executable,
        "tools/train_net.py",
        "--config-file",
        CONFIG,
        *overrides,
        "OUTPUT_DIR",
        out_dir,
    ]
    results = os.path.join(REPO, out_dir, "results.json")
    expected = setup_cfg(os.path.join(REPO, CONFIG), [*overrides, "OUTPUT_DIR", out_dir]).to_dict()
    seconds = None
    if rerun or not os.path.isfile(results) or _recorded_config(results) != expected:
        print("+", " ".join(command[1:]), flush=True)
        start = time.perf_counter()
        subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
    with open(results) as f:
        return " ".join(["python", *command[1:]]), json.load(f), seconds


def _recorded_config(results_path):
    """The config a finished run recorded in its results.json (a stale run with another config is redone)."""
    with open(results_path) as f:
        return json.load(f).get("config")


def mean_std(values):
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main(argv=None):
    args = parse_args(argv)
    cfg = setup_cfg(os.path.join(REPO, CONFIG), args.opts, freeze=False)
    target = cfg.DATASETS.TARGETS[0]
    # The runs start in the repository, so a relative data root is relative to it.
    cfg.DATASETS.ROOT = os.path.join(REPO, cfg.DATASETS.ROOT)
    (synthetic_dir,) = ensure_synthetic_data(cfg)
    domain = target.split(":")[1]
    histogram = next(r for r in histogram_baseline_report(synthetic_dir) if r["domain"] == f"domain{domain}")

    rows, commands = [], []
    for key in args.variants:
        label, backbone = VARIANTS[key]
        for trained in (False, True):
            maps, r1s, times = [], [], []
            for seed in args.seeds:
                name = f"{key}/{'trained' if trained else 'untrained'}/seed{seed}"
                overrides = [*args.opts, "MODEL.BACKBONE", backbone, "SEED", str(seed)]
                if not trained:
                    overrides += ["SOLVER.MAX_EPOCHS", "0"]
                command, report, seconds = run_once(os.path.join(args.out, name), overrides, args.rerun)
                maps.append(report["mean"]["mAP"])
                r1s.append(report["mean"]["R1"])
                if seconds is not None:
                    times.append(seconds)
                commands.append(command)
            rows.append({"variant": label, "trained": trained, "seeds": args.seeds, "mAP": maps, "R1": r1s,
                         "wall_seconds": times})  # fmt: skip

    lines = [
        f"Target {target} (unseen domain), sources {', '.join(cfg.DATASETS.SOURCES)}; mean ± std over seeds "
        f"{', '.join(map(str, args.seeds))}; percent.",
        "",
        "| model | training | mAP | R1 | wall time per run |",
        "|---|---|---:|---:|---:|",
    ]

    def cell(values):  # a spread only when there is one (several seeds)
        mean, std = mean_std(values)
        return f"{100 * mean:.1f} ± {100 * std:.1f}" if len(values) > 1 else f"{100 * mean:.1f}"

    for row in rows:
        wall = f"{statistics.fmean(row['wall_seconds']) / 60:.1f} min" if row["wall_seconds"] else "(reused)"
        lines.append(
            f"| {row['variant']} | {'trained' if row['trained'] else 'untrained'} | {cell(row['mAP'])} "
            f"| {cell(row['R1'])} | {wall} |"
        )
    lines.append(
        f"| colour histogram (HSV, 3 body thirds) | none | {100 * histogram['mAP']:.1f} | "
        f"{100 * histogram['rank1']:.1f} | |"
    )
    table = "\n".join(lines)
    atomic_write_text(
        os.path.join(REPO, args.out, "table.md"), table + "\n\nCommands:\n\n" + "\n".join(commands) + "\n"
    )
    atomic_write_json(os.path.join(REPO, args.out, "table.json"), {"rows": rows, "histogram": histogram})
    print(table)


if __name__ == "__main__":
    main()
