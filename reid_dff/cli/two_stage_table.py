"""The two stages at CPU scale (docs/results.md): stage 1 on the generated 100-class set, then the synthetic
ReID demo fine-tuned from it, against the same demo from scratch, for Base / SBase / DFF.

    python tools/run_two_stage_table.py                        # 3 models, stage 1 once, demo x 3 seeds x 2
    python tools/run_two_stage_table.py --models dff --seeds 0 --demo-set SOLVER.MAX_EPOCHS=8

Per model: ``configs/stage1_synthetic/<backbone>.yaml`` trains once (``SEED 0``) into ``OUT/<model>/stage1``;
its ``last.pth`` is pinned as ``OUT/stage1_checkpoints/<model>-<sha16>.pth`` (the name carries the file's
SHA-256, so a rerun of stage 1 changes the fine-tunes' config hash and they train again); then
``configs/synthetic_demo.yaml`` with ``MODEL.BACKBONE <backbone> TEST.SELECTION last`` trains per seed into
``OUT/<model>/scratch/seed<S>`` and, with ``MODEL.PRETRAIN_PATH`` the pinned file, into
``OUT/<model>/from_stage1/seed<S>``. Before the fine-tunes, the pinned file is loaded into the demo's model
once: every backbone key must load as is (none sliced, none left new), or the tool stops. The stage-1
accuracies are printed as soon as stage 1 is done; ``--stage1-only`` stops there (a cheap check of stage 1
before the demo runs, which a later call reuses).

Every run goes through the library's sweep (reid_dff.experiments.sweep): a run whose ``results.json``
records the hash of the same resolved config is reused, any other run folder under OUT is replaced by a
new training (``--rerun``: all of them). Overrides: ``--stage1-set KEY=VALUE`` (repeatable) for the
stage-1 runs, ``--demo-set KEY=VALUE`` for the demo runs (both initializations), trailing ``KEY VALUE``
pairs for every run (e.g. ``MODEL.DEVICE cpu DATALOADER.NUM_WORKERS 0``). Cells are the target's mAP and
R1 of the last epoch (nothing is selected on the target), mean ± std over the seeds. Relative paths are
relative to the repository. Writes ``OUT/table.md`` (with the schedules and every command) and
``OUT/table.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Sequence

from ..experiments import (
    Run,
    RunResult,
    TwoStageError,
    check_stage1_load,
    collect,
    describe_schedule,
    format_two_stage_table,
    pin_checkpoint,
    run_sweep,
)
from ..modeling import ArchitectureMismatchError
from ..utils import atomic_write_json, atomic_write_text
from .common import ToolUsageError, add_overrides, config_keys, exit_on_user_error, parse_flags_first

TOOL = "run_two_stage_table.py"
# Relative to the repository: the one place this tool names config files.
STAGE1_CONFIG = "configs/stage1_synthetic/{backbone}.yaml"
DEMO_CONFIG = "configs/synthetic_demo.yaml"
# Model key -> (row label, MODEL.BACKBONE); the DFF row keeps the demo config's MODEL.DFF.FILTER.
MODELS = {"base": ("Base (ResNet-18)", "resnet18"), "sbase": ("SBase (FFC-ResNet-18)", "ffc_resnet18"),
          "dff": ("DFF (DFF-ResNet-18)", "dff_resnet18")}  # fmt: skip
# Initialization -> (row label, run folder).
INITS = {"scratch": ("from scratch", "scratch"), "stage1": ("from stage 1", "from_stage1")}
STAGE1_SEED = 0
PINNED_FOLDER = "stage1_checkpoints"


def repository() -> str:
    """The checkout this package runs from (the configs' root); a usage error for an installed package."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if not os.path.isfile(os.path.join(repo, DEMO_CONFIG)):
        raise ToolUsageError(f"{DEMO_CONFIG} not found under {repo}; run the tool from a reid-dff checkout")
    return repo


def key_value(text: str) -> tuple[str, str]:
    """argparse ``type`` of ``--stage1-set`` / ``--demo-set``: ``KEY=VALUE`` with KEY a config key."""
    key, sep, value = text.partition("=")
    if not sep or not value:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    if key not in config_keys():
        raise argparse.ArgumentTypeError(f"{key!r} is not a config key")
    return key, value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Flags, then the ``KEY VALUE`` overrides of every run."""
    parser = argparse.ArgumentParser(
        prog=TOOL, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the demo runs")
    parser.add_argument("--out", default="output/two_stage", help="folder of the runs and the table")
    parser.add_argument("--rerun", action="store_true", help="train every run again, even a cached one")
    parser.add_argument(
        "--stage1-only", action="store_true",
        help="run (or reuse) stage 1 only and print its val accuracy: a check before the demo runs",
    )  # fmt: skip
    parser.add_argument(
        "--stage1-set", type=key_value, action="append", default=[], metavar="KEY=VALUE",
        help="override for the stage-1 runs only (repeatable), e.g. SOLVER.MAX_EPOCHS=4",
    )  # fmt: skip
    parser.add_argument(
        "--demo-set", type=key_value, action="append", default=[], metavar="KEY=VALUE",
        help="override for the demo runs only, from scratch and fine-tuned (repeatable)",
    )  # fmt: skip
    add_overrides(parser)  # extra KEY VALUE overrides for every run, after the flags
    args = parse_flags_first(parser, argv)
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds repeats a seed: {args.seeds}")
    return args


def flatten(pairs: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """``[(KEY, VALUE), ...]`` as ``(KEY, VALUE, ...)`` overrides."""
    return tuple(item for pair in pairs for item in pair)


def stage1_runs(models: Sequence[str], opts: Sequence[str]) -> list[Run]:
    """One stage-1 run per model (seed 0)."""
    return [
        Run(f"{key}/stage1", STAGE1_CONFIG.format(backbone=MODELS[key][1]), tuple(opts), STAGE1_SEED)
        for key in models
    ]


def demo_runs(key: str, init: str, seeds: Sequence[int], opts: Sequence[str], pinned: str = "") -> list[Run]:
    """The demo runs of one model and initialization, one per seed (``pinned``: the stage-1 file)."""
    overrides = [*opts, "MODEL.BACKBONE", MODELS[key][1], "TEST.SELECTION", "last"]
    if init == "stage1":
        overrides += ["MODEL.PRETRAIN_PATH", pinned]
    folder = INITS[init][1]
    return [
        Run(f"{key}/{folder}/seed{s}", DEMO_CONFIG, tuple(overrides), s, row=f"{key}/{init}") for s in seeds
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """Run (or reuse) both stages for every model and write the table."""
    args = parse_args(argv)
    same_backbone = (
        "stage 1 and the demo must build the same backbone: pass MODEL.* settings as trailing KEY VALUE "
        "pairs (every run), not with --stage1-set or --demo-set"
    )
    with exit_on_user_error(TOOL, {TwoStageError: same_backbone, ArchitectureMismatchError: same_backbone}):
        os.chdir(repository())  # relative paths mean what they mean for tools/train_net.py in the checkout
        run_table(args)


def run_table(args: argparse.Namespace) -> None:
    """Both stages of every model of ``args`` through the sweep, then ``OUT/table.md`` and ``table.json``."""
    out = args.out

    def announce(run: Run, cfg: object) -> None:
        print("+", run.command(out), flush=True)

    every = tuple(args.opts)
    stage1 = run_sweep(
        stage1_runs(args.models, (*every, *flatten(args.stage1_set))), out, args.rerun, announce=announce
    )
    for key, result in zip(args.models, stage1):
        report = result.report
        print(
            f"stage 1 {MODELS[key][0]}: val top-1 {100 * report['top1']:.1f}%, top-5 {100 * report['top5']:.1f}% "
            f"(last epoch; chance {100 / report['num_classes']:.1f}%)",
            flush=True,
        )
    if args.stage1_only:
        return
    demo_opts = (*every, *flatten(args.demo_set))
    pinned: dict[str, dict] = {}
    demo: list[RunResult] = []
    for key, result in zip(args.models, stage1):
        path, digest = pin_checkpoint(
            os.path.join(result.output_dir, "last.pth"), os.path.join(out, PINNED_FOLDER), key
        )
        finetunes = demo_runs(key, "stage1", args.seeds, demo_opts, path)
        load = check_stage1_load(finetunes[0].resolve(out))
        pinned[key] = {
            "top1": result.report["top1"],
            "top5": result.report["top5"],
            "checkpoint": path,
            "sha256": digest,
            "load_report": load.summary(),
        }
        demo += run_sweep(
            demo_runs(key, "scratch", args.seeds, demo_opts) + finetunes, out, args.rerun, announce=announce
        )

    target = demo[0].report["config"]["DATASETS"]["TARGETS"][0]
    sources = demo[0].report["config"]["DATASETS"]["SOURCES"]
    maps = collect(demo, lambda report, t: report["targets"][t]["mean"]["mAP"])
    r1s = collect(demo, lambda report, t: report["targets"][t]["mean"]["R1"])
    rows = []
    for key in args.models:
        for init in INITS:
            row = f"{key}/{init}"
            times = [r.seconds for r in demo if r.run.row == row and r.seconds is not None]
            rows.append({
                "model": key, "label": MODELS[key][0], "init": INITS[init][0], "seeds": list(args.seeds),
                "stage1_top1": pinned[key]["top1"] if init == "stage1" else None,
                "mAP": list(maps[row][target].values()), "R1": list(r1s[row][target].values()),
                "wall_seconds": times,
            })  # fmt: skip
    schedules = {
        "stage1": describe_schedule(stage1[0].report["config"]),
        "demo": describe_schedule(demo[0].report["config"]),
    }
    stage1_time = [r.seconds for r in stage1 if r.seconds is not None]
    demo_time = [r.seconds for r in demo if r.seconds is not None]
    lines = [
        f"Stage 1 (seed {STAGE1_SEED}, val top-1 of its last epoch; its last.pth initializes the fine-tune): "
        f"{schedules['stage1']}.",
        f"Demo (from scratch and fine-tuned alike): {schedules['demo']}; target {target} (unseen domain), "
        f"sources {', '.join(sources)}; mAP / R1 of the last epoch (TEST.SELECTION last), mean ± std over "
        f"seeds {', '.join(map(str, args.seeds))}; percent.",
        "Wall time per run (this call; reused runs excluded): "
        + (f"stage 1 {statistics.fmean(stage1_time) / 60:.1f} min, " if stage1_time else "stage 1 reused, ")
        + (f"demo {statistics.fmean(demo_time) / 60:.1f} min." if demo_time else "demo reused."),
        "",
        format_two_stage_table(rows),
    ]
    table = "\n".join(lines)
    commands = [r.run.command(out) for r in (*stage1, *demo)]
    loads = "\n".join(f"- {MODELS[key][0]}: {pinned[key]['load_report']}" for key in args.models)
    atomic_write_text(
        os.path.join(out, "table.md"),
        f"{table}\n\nStage-1 checkpoints loaded into the demo's model:\n\n{loads}\n\nCommands:\n\n"
        + "\n".join(commands)
        + "\n",
    )
    atomic_write_json(
        os.path.join(out, "table.json"),
        {
            "target": target,
            "sources": sources,
            "schedules": schedules,
            "stage1": pinned,
            "rows": rows,
            "commands": commands,
        },  # fmt: skip
    )
    print(table)


if __name__ == "__main__":
    main()
