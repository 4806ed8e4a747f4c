#!/usr/bin/env python
"""The real multi-camera benchmark: Base / SBase / DFF (ResNet-18 family) on real pedestrian crops, on CPU.

    python bench/real_multicam.py                          # every row x seeds 0 1 2 (~1.5 h on 2 cores)
    python bench/real_multicam.py --rows base dff_default --seeds 0 --epochs 1 --iters 5   # a smoke run

The data is ``real_multicam.tar.gz`` (default ``$REID_DFF_SHARED/data/``, else ``<repo>/../shared/data/``;
``--archive`` names another): real crops of four public sets as sources (3DPeS, TownCentre, SARC3D,
PKU-Reid) and CAVIAR4REID as the unseen target (query camera 1, gallery camera 2 plus 22 one-camera
distractor identities). Research use only: it is unpacked to a scratch folder (``--scratch``, default
``OUT/data``), never into the repository. Unpacking refuses any member that is not a plain file or
folder under ``real_multicam/`` (absolute paths, ``..``, links) and records the archive's SHA-256, so a
complete earlier unpacking of the same archive is reused.

Each cell is one training run of ``configs/bench/real_multicam.yaml`` with the row's overrides, ``SEED``
and ``DATASETS.ROOT <scratch>`` into ``OUT/<row>/seed<SEED>``, run in this process by the library's sweep
(cached by config hash; ``--rerun`` retrains). ``TEST.MASK_STATS True`` makes each run write the mask
diagnostics of its DFF masks (``mask_stats.json``, over source images); their summary (mean over the
Fourier units) stands beside mAP / R1.

Below the table stands chance on the target: mAP / R1 of random rankings of the gallery (the mean of
``CHANCE_DRAWS``), the floor the rows are read against.

Selection: the table reports the **last epoch's** weights (``TEST.SELECTION last``, the default), evaluated
once on the target (the schedule's ``TEST.EVAL_PERIOD 0`` saves the intermediate evaluations); nothing is
picked on CAVIAR4REID. Writes ``OUT/table.md`` and ``OUT/table.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from reid_dff.cli.common import add_overrides, parse_flags_first  # noqa: E402
from reid_dff.data.build import build_test_sets  # noqa: E402
from reid_dff.errors import ReidDffError  # noqa: E402
from reid_dff.evaluation.baselines import random_ranking_baseline  # noqa: E402
from reid_dff.experiments import Run, run_sweep  # noqa: E402
from reid_dff.experiments.rows import (  # noqa: E402
    Row,
    deduplicate,
    format_rows_table,
    summarize_rows,
)
from reid_dff.experiments.rows import build_runs as build_config_runs  # noqa: E402
from reid_dff.utils import atomic_write_json, atomic_write_text, sha256_file  # noqa: E402

CONFIG = "configs/bench/real_multicam.yaml"  # relative to REPO
ARCHIVE_NAME = "real_multicam.tar.gz"
TOP = "real_multicam"  # the archive's one top-level folder; DATASETS.ROOT holds it
# The folders the protocol (configs/protocols/real_multicam.yaml) reads, relative to TOP.
EXPECTED_FOLDERS = (
    "3dpes/bounding_box_train",
    "towncentre/bounding_box_train",
    "sarc3d/bounding_box_train",
    "pku/bounding_box_train",
    "caviar4reid/query",
    "caviar4reid/bounding_box_test",
)
# What the table header says of the protocol's target (README.md beside the archive).
TARGET_NOTES = {
    "image_folder:real_multicam/caviar4reid": "unseen; query camera 1, gallery camera 2 with 22 one-camera "
    "distractor identities"
}
MARKER = ".unpacked.json"  # in TOP: the archive's SHA-256 and file count, written last
CHANCE_DRAWS = 100  # random rankings averaged for the chance line


# The rows, in table order. "dff_literal" pins the paper's literal reading key by key; "dff_default" is
# the package's default config (CONFIG with nothing overridden; today MODEL.DFF.MASK_INIT kaiming). When
# the two resolve to the same config, the second reuses the first's runs; a change of default needs no
# edit here.
ROWS = (
    Row("base", "Base (ResNet-18)", ("MODEL.BACKBONE", "resnet18")),
    Row("sbase", "SBase (FFC-ResNet-18)", ("MODEL.BACKBONE", "ffc_resnet18")),
    Row(
        "dff_literal",
        "DFF, the paper's literal reading (DFF-ResNet-18)",
        (
            "MODEL.BACKBONE",
            "dff_resnet18",
            "MODEL.DFF.FILTER",
            "ins_spatial",
            "MODEL.DFF.MASK_INPUT",
            "re_im",
            "MODEL.DFF.MASK_LAYOUT",
            "rfft",
            "MODEL.DFF.MASK_INIT",
            "zeros",
        ),
    ),  # fmt: skip
    Row("dff_default", "DFF, the default config (DFF-ResNet-18)", ()),
)
ROWS_BY_KEY = {row.key: row for row in ROWS}


class BenchmarkDataError(ReidDffError):
    """The benchmark's archive is absent, unsafe or incomplete."""


# -- the data ------------------------------------------------------------------------------------------
def default_archive() -> str:
    """``$REID_DFF_SHARED/data/real_multicam.tar.gz``, else ``<repo>/../shared/data/real_multicam.tar.gz``."""
    shared = os.environ.get("REID_DFF_SHARED") or os.path.join(os.path.dirname(REPO), "shared")
    return os.path.join(shared, "data", ARCHIVE_NAME)


def check_members(archive: str, members: Sequence[tarfile.TarInfo]) -> None:
    """Refuse a member that could write outside ``TOP``: an absolute name, ``..``, anything but a plain
    file or folder (links, devices), or a name outside ``TOP/``."""
    for member in members:
        parts = PurePosixPath(member.name.replace("\\", "/")).parts
        unsafe = (
            member.name.startswith(("/", "\\"))
            or ".." in parts
            or not parts
            or parts[0] != TOP
            or not (member.isfile() or member.isdir())
        )
        if unsafe:
            kind = "file" if member.isfile() else "folder" if member.isdir() else "link or special file"
            raise BenchmarkDataError(
                f"{archive}: refusing member {member.name!r} ({kind}); every member must be a plain "
                f"file or folder under {TOP}/"
            )


def count_files(folder: str) -> int:
    """Regular files under ``folder``, the marker excepted."""
    return sum(len([f for f in files if f != MARKER]) for _, _, files in os.walk(folder))


def unpacked_root(archive: str, scratch: str) -> str | None:
    """``scratch`` when it holds a complete unpacking of ``archive`` (its marker's SHA-256 and file
    count match), else None."""
    marker = os.path.join(scratch, TOP, MARKER)
    try:
        with open(marker, encoding="utf-8") as f:
            recorded = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(recorded, dict) or recorded.get("sha256") != sha256_file(archive):
        return None
    if recorded.get("files") != count_files(os.path.join(scratch, TOP)):
        return None
    return scratch


def unpack(archive: str, scratch: str) -> str:
    """Unpack ``archive`` into ``scratch/real_multicam`` (reused when complete); returns ``scratch``, the
    ``DATASETS.ROOT`` of the runs."""
    if not os.path.isfile(archive):
        raise BenchmarkDataError(
            f"benchmark data not found: {archive} (real_multicam.tar.gz; set REID_DFF_SHARED to the "
            "folder holding data/ or name the file)"
        )
    if unpacked_root(archive, scratch):
        return scratch
    os.makedirs(scratch, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".unpacking-", dir=scratch)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            check_members(archive, members)
            tar.extractall(staging, members=members, filter="data")
        tree = os.path.join(staging, TOP)
        missing = [f for f in EXPECTED_FOLDERS if not os.path.isdir(os.path.join(tree, f))]
        if missing:
            raise BenchmarkDataError(f"{archive} lacks {', '.join(f'{TOP}/{m}' for m in missing)}")
        digest = {"archive": os.path.abspath(archive), "sha256": sha256_file(archive)}
        atomic_write_json(os.path.join(tree, MARKER), {**digest, "files": count_files(tree)})
        final = os.path.join(scratch, TOP)
        if os.path.isdir(final):
            shutil.rmtree(final)  # an incomplete or older unpacking: the scratch folder is ours
        os.replace(tree, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return scratch


def chance(cfg: Any, target: str) -> dict[str, float]:
    """Chance on ``target``'s query/gallery split: mAP / R1 of random rankings (mean of CHANCE_DRAWS)."""
    (split,) = build_test_sets(cfg, target)
    return random_ranking_baseline(
        [s.pid for s in split.query],
        [s.pid for s in split.gallery],
        [s.camid for s in split.query],
        [s.camid for s in split.gallery],
        draws=CHANCE_DRAWS,
    )


# -- the runs ------------------------------------------------------------------------------------------
def build_runs(rows: Sequence[Row], seeds: Sequence[int], opts: Sequence[str]) -> list[Run]:
    """One run of CONFIG per row and seed, into ``<row key>/seed<seed>``; ``opts`` (data root, smoke-run
    settings, extra overrides) go before the row's own overrides, so a row's choice is never overridden."""
    return build_config_runs(CONFIG, rows, seeds, opts)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--archive", default=None, help="real_multicam.tar.gz (default: see above)")
    parser.add_argument("--scratch", default=None, help="where to unpack it (default OUT/data)")
    parser.add_argument("--out", default="output/real_multicam", help="folder of the runs and the table")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", nargs="+", default=[r.key for r in ROWS], choices=list(ROWS_BY_KEY))
    parser.add_argument("--epochs", type=int, default=None, help="SOLVER.MAX_EPOCHS (smoke runs)")
    parser.add_argument("--iters", type=int, default=None, help="SOLVER.ITERS_PER_EPOCH (smoke runs)")
    parser.add_argument("--rerun", action="store_true", help="train every run again, even a cached one")
    add_overrides(parser)  # extra KEY VALUE overrides for every run, after the flags
    args = parse_flags_first(parser, argv)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    os.chdir(REPO)  # relative paths (OUT, the scratch folder, configs) are relative to the repository
    archive = args.archive or default_archive()
    scratch = args.scratch or os.path.join(args.out, "data")
    try:
        data_root = unpack(archive, scratch)
    except BenchmarkDataError as e:
        sys.exit(f"real_multicam: error: {e}")
    opts = ["DATASETS.ROOT", data_root]
    if args.epochs is not None:
        opts += ["SOLVER.MAX_EPOCHS", str(args.epochs)]
    if args.iters is not None:
        opts += ["SOLVER.ITERS_PER_EPOCH", str(args.iters)]
    opts += list(args.opts)
    rows = [ROWS_BY_KEY[key] for key in args.rows]

    runs, aliases = deduplicate(build_runs(rows, args.seeds, opts), args.out)
    results = run_sweep(
        runs, args.out, args.rerun, announce=lambda run, cfg: print("+", run.command(args.out), flush=True)
    )
    cfg = runs[0].resolve(args.out)
    (target,) = cfg.DATASETS.TARGETS

    table_rows = summarize_rows(rows, results, aliases, target)
    floor = chance(cfg, target)
    size = cfg.INPUT.SIZE_TRAIN
    lines = [
        f"Target {target.split('/')[-1]} ({TARGET_NOTES.get(target, 'unseen')}), "
        f"sources {', '.join(s.split('/')[-1] for s in cfg.DATASETS.SOURCES)}; "
        f"{size[0]}x{size[1]}, {cfg.SOLVER.MAX_EPOCHS} epochs x {cfg.SOLVER.ITERS_PER_EPOCH} iterations. "
        "Model: the last epoch's weights, evaluated once on the target (nothing is selected on it). "
        f"mAP / R1 in percent, mean ± std over seeds {', '.join(map(str, args.seeds))}; mask diagnostics "
        "(mask_stats.json over source images, mean over Fourier units) beside them.",
        "",
        *format_rows_table(table_rows),
        "",
        f"Chance (random rankings, mean of {floor['draws']}): mAP {100 * floor['mAP']:.1f}, "
        f"R1 {100 * floor['rank1']:.1f}.",
    ]
    table = "\n".join(lines)
    commands = "\n".join(r.run.command(args.out) for r in results)
    atomic_write_text(os.path.join(args.out, "table.md"), f"{table}\n\nCommands:\n\n{commands}\n")
    summary = {
        "target": target,
        "selection": "last epoch; the target is evaluated once, after training",
        "archive_sha256": sha256_file(archive),
        "rows": table_rows,
        "chance": floor,
    }
    atomic_write_json(os.path.join(args.out, "table.json"), summary)
    print(table)
    return summary


if __name__ == "__main__":
    try:
        main()
    except ReidDffError as e:  # a bad override, a run that cannot go into the table: one line
        sys.exit(f"real_multicam: error: {e}")
