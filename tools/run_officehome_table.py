#!/usr/bin/env python
"""The Office-Home leave-one-domain-out table: each held-out domain x each model, then the average.

    python tools/run_officehome_table.py --synthetic                 # CPU demo (docs/results.md)
    python tools/run_officehome_table.py --synthetic --seeds 0 1 2   # the same, mean ± std over 3 seeds
    python tools/run_officehome_table.py --models dff_r18 r18        # real data (GPU; needs ImageNet weights)

Each cell is one training run of ``configs/officehome/<prefix>_<task>.yaml`` with ``MODEL.BACKBONE ...``
into ``OUT/<model>/<task>`` (with ``--seeds``: ``OUT/<model>/<task>/seed<SEED>``), run in this process by
the library's sweep (reid_dff.experiments.sweep); the equivalent ``tools/train_net.py`` commands are
written beside the table. A run whose ``results.json`` records the hash of the same resolved config is
reused; any other run folder under OUT is replaced by a new training (``--rerun``: all of them). Cells are
top-1 at the epoch selected on the sources' val split: with one seed the last epoch's follows in
parentheses, with several seeds a cell is mean ± std over them (the average column: over the per-seed
averages). Relative paths (OUT, configs, the data root) are relative to the repository. Writes
``OUT/table.md`` (with the commands) and ``OUT/table.json``.
"""

import argparse
import os

from reid_dff.cli.common import add_overrides, parse_flags_first
from reid_dff.experiments import Run, collect, format_seed_table, run_sweep
from reid_dff.tasks.classification import format_leave_one_domain_out_table
from reid_dff.utils import atomic_write_json, atomic_write_text

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASKS = ("art", "clipart", "product", "real_world")
# Relative to REPO; the one place this tool names config files.
CONFIG = "configs/officehome/{prefix}_{task}.yaml"
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
        "--seeds", type=int, nargs="+", default=None, help="SEED of each run (default: the config's)"
    )
    parser.add_argument(
        "--out", default=None, help="folder of the runs and the table (default output/<prefix>)"
    )
    parser.add_argument("--rerun", action="store_true", help="train every run again, even a cached one")
    add_overrides(parser)  # extra KEY VALUE overrides for every run, after the flags
    args = parse_flags_first(parser, argv)
    return args


def build_runs(prefix, models, tasks, seeds, opts):
    """The sweep: every model x every held-out task (x every seed)."""
    runs = []
    for model in models:
        for task in tasks:
            overrides = (*opts, "MODEL.BACKBONE", MODELS[model][1])
            config = CONFIG.format(prefix=prefix, task=task)
            if seeds is None:
                runs.append(Run(f"{model}/{task}", config, overrides, row=model))
            else:
                runs += [Run(f"{model}/{task}/seed{s}", config, overrides, s, row=model) for s in seeds]
    return runs


def main(argv=None):
    args = parse_args(argv)
    os.chdir(REPO)  # relative paths mean what they meant when each run was a train_net.py in the repository
    prefix = "synthetic_officehome" if args.synthetic else "officehome"
    out = args.out or os.path.join("output", prefix)

    runs = build_runs(prefix, args.models, args.tasks, args.seeds, args.opts)
    results = run_sweep(
        runs, out, args.rerun, announce=lambda run, cfg: print("+", run.command(out), flush=True)
    )
    labels = {model: MODELS[model][0] for model in args.models}
    if args.seeds is None or len(args.seeds) == 1:
        reports = {labels[r.run.row]: {} for r in results}
        for r in results:
            reports[labels[r.run.row]][r.run.name.split("/")[1]] = r.report
        table = format_leave_one_domain_out_table(reports)
    else:
        reports = {labels[r.run.row]: {} for r in results}
        for r in results:
            _, task, seed = r.run.name.split("/")
            reports[labels[r.run.row]].setdefault(task, {})[seed] = r.report
        selected = collect(
            results, lambda report, t: (report.get("selected") or report)["targets"][t]["top1"]
        )
        table = format_seed_table(selected, labels)
    commands = "\n".join(r.run.command(out) for r in results)
    atomic_write_text(os.path.join(out, "table.md"), f"{table}\n\nCommands:\n\n{commands}\n")
    atomic_write_json(os.path.join(out, "table.json"), reports)
    print(table)


if __name__ == "__main__":
    main()
