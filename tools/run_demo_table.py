#!/usr/bin/env python
"""The synthetic-demo comparison of docs/results.md: Base vs SBase vs DFF over seeds, untrained and histogram.

    python tools/run_demo_table.py                      # 3 variants x 3 seeds, sequentially (~1.5 CPU-hours)
    python tools/run_demo_table.py --seeds 0 --variants dff

Each cell is one training run of ``configs/synthetic_demo.yaml`` with ``MODEL.BACKBONE ... SEED ...`` into
``OUT/<variant>/<trained|untrained>/seed<SEED>``, run in this process by the library's sweep
(reid_dff.experiments.sweep); the equivalent ``tools/train_net.py`` commands are written beside the table.
A run whose ``results.json`` records the hash of the same resolved config is reused; any other run folder
under OUT is replaced by a new training (``--rerun``: all of them). The untrained row evaluates the same
networks with ``SOLVER.MAX_EPOCHS 0``. Relative paths (OUT, configs, the data root) are relative to the
repository. Writes ``OUT/table.md`` and ``OUT/table.json``.
"""

import argparse
import os
import statistics

from reid_dff.cli.common import add_overrides, parse_flags_first
from reid_dff.config import setup_cfg
from reid_dff.data.synthetic import ensure_synthetic_data
from reid_dff.evaluation.baselines import histogram_baseline_report
from reid_dff.experiments import Run, collect, format_mean_std, run_sweep
from reid_dff.utils import atomic_write_json, atomic_write_text

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "configs/synthetic_demo.yaml"  # relative to REPO; the one config path of this tool
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
    parser.add_argument("--rerun", action="store_true", help="train every run again, even a cached one")
    add_overrides(parser)  # extra KEY VALUE overrides for every run, after the flags
    args = parse_flags_first(parser, argv)
    return args


def build_runs(variants, seeds, opts):
    """The sweep: per variant, untrained then trained, each over ``seeds``."""
    runs = []
    for key in variants:
        for training in ("untrained", "trained"):
            overrides = [*opts, "MODEL.BACKBONE", VARIANTS[key][1]]
            if training == "untrained":
                overrides += ["SOLVER.MAX_EPOCHS", "0"]
            runs += [
                Run(f"{key}/{training}/seed{seed}", CONFIG, tuple(overrides), seed, row=f"{key}/{training}")
                for seed in seeds
            ]
    return runs


def main(argv=None):
    args = parse_args(argv)
    os.chdir(REPO)  # relative paths mean what they meant when each run was a train_net.py in the repository
    cfg = setup_cfg(CONFIG, args.opts)
    target = cfg.DATASETS.TARGETS[0]
    (synthetic_dir,) = ensure_synthetic_data(cfg)
    domain = target.split(":")[1]
    histogram = next(r for r in histogram_baseline_report(synthetic_dir) if r["domain"] == f"domain{domain}")

    runs = build_runs(args.variants, args.seeds, args.opts)
    results = run_sweep(
        runs, args.out, args.rerun, announce=lambda run, cfg: print("+", run.command(args.out), flush=True)
    )
    maps = collect(results, lambda report, t: report["targets"][t]["mean"]["mAP"])
    r1s = collect(results, lambda report, t: report["targets"][t]["mean"]["R1"])

    rows = []
    for key in args.variants:
        for training in ("untrained", "trained"):
            row = f"{key}/{training}"
            times = [r.seconds for r in results if r.run.row == row and r.seconds is not None]
            rows.append({"variant": VARIANTS[key][0], "trained": training == "trained", "seeds": args.seeds,
                         "mAP": list(maps[row][target].values()), "R1": list(r1s[row][target].values()),
                         "wall_seconds": times})  # fmt: skip

    lines = [
        f"Target {target} (unseen domain), sources {', '.join(cfg.DATASETS.SOURCES)}; mean ± std over seeds "
        f"{', '.join(map(str, args.seeds))}; percent.",
        "",
        "| model | training | mAP | R1 | wall time per run |",
        "|---|---|---:|---:|---:|",
    ]
    for row in rows:
        wall = f"{statistics.fmean(row['wall_seconds']) / 60:.1f} min" if row["wall_seconds"] else "(reused)"
        lines.append(
            f"| {row['variant']} | {'trained' if row['trained'] else 'untrained'} | "
            f"{format_mean_std(row['mAP'])} | {format_mean_std(row['R1'])} | {wall} |"
        )
    lines.append(
        f"| colour histogram (HSV, 3 body thirds) | none | {100 * histogram['mAP']:.1f} | "
        f"{100 * histogram['rank1']:.1f} | |"
    )
    table = "\n".join(lines)
    commands = "\n".join(r.run.command(args.out) for r in results)
    atomic_write_text(os.path.join(args.out, "table.md"), f"{table}\n\nCommands:\n\n{commands}\n")
    atomic_write_json(os.path.join(args.out, "table.json"), {"rows": rows, "histogram": histogram})
    print(table)


if __name__ == "__main__":
    main()
