"""Experiment sweeps: many training runs of one comparison, run in this process, cached by config hash.

A sweep is a list of :class:`Run` (a name, a config file, ``KEY VALUE`` overrides, a seed) and a root
folder; run ``name`` trains into ``root/name``. :func:`run_sweep` runs them one after the other in this
process and returns one :class:`RunResult` per run:

- **cached**: a run whose folder holds a ``results.json`` recording ``config_hash`` equal to the hash of
  the run's resolved config (and whose recorded config hashes to it) is reused without training;
- **stale**: anything else -- no ``results.json`` (never run, or interrupted), no recorded hash (written
  by a plain training run), another hash (the config or its defaults changed) -- is trained again.

The sweep owns its root: training a stale run first deletes that run's folder (checkpoints, logs,
TensorBoard events, an old ``results.json``), so files of two configs are never mixed in one folder and
an interrupted retraining leaves no ``results.json`` to be mistaken for a finished run. Pointing a sweep at
a root is the explicit choice to let it replace the runs' folders under it; nothing outside
``root/<run name>`` is touched.

The hash covers every key of the resolved config except :data:`RESULT_IRRELEVANT_KEYS` (where the run
writes, evaluation batch size and memory bound, logging and checkpoint periods, a cache folder). It does
not cover the code: after a change that alters results, rerun the sweep with ``rerun=True``.

Seeds are aggregated with :func:`collect` (``{row: {target: {seed: value}}}``), :func:`mean_std` and the
table helpers :func:`format_mean_std` and :func:`format_seed_table`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shlex
import shutil
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import CfgNode, setup_cfg
from ..errors import ReidDffError
from ..utils import atomic_write_json

__all__ = [
    "HASH_SCHEMA",
    "RESULTS_FILE",
    "RESULT_IRRELEVANT_KEYS",
    "Run",
    "RunResult",
    "SweepError",
    "cached_report",
    "collect",
    "config_hash",
    "format_mean_std",
    "format_seed_table",
    "mean_std",
    "run_sweep",
    "train_in_process",
]

RESULTS_FILE = "results.json"  # what every training run writes into its OUTPUT_DIR
# Bumped when the hashed form changes (e.g. another key becomes irrelevant): older caches then retrain.
HASH_SCHEMA = "reid_dff.experiments.sweep/1"
# Keys that change where or how verbosely a run works, never its numbers. Everything else is hashed;
# when unsure a key is hashed (a needless retraining costs time, a wrong reuse costs a wrong table).
# Not here on purpose: TEST.EVAL_PERIOD (an evaluation draws from the global RNG and, for classification
# and TEST.SELECTION source_val, decides the selected epoch), DATALOADER.NUM_WORKERS, MODEL.DEVICE, SOLVER.AMP, every path to data or weights.
RESULT_IRRELEVANT_KEYS = (
    "OUTPUT_DIR",
    "TEST.IMS_PER_BATCH",  # evaluation is per image (BatchNorm in eval mode)
    "TEST.MAX_MEMORY_MB",  # the evaluator is exact at any block size
    "SOLVER.LOG_PERIOD",
    "SOLVER.CHECKPOINT_PERIOD",  # saving reads the RNG state, never draws from it
    "DATASETS.CUHK03.CACHE_DIR",  # where extracted images are cached, not which
)
# The logger every training run writes through (reid_dff.utils.setup_logger's default name).
RUN_LOGGER = "reid_dff"


class SweepError(ReidDffError):
    """A sweep's runs are malformed (a name that leaves the root, a repeated name) or a run left no results."""


def config_hash(cfg: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a resolved config without :data:`RESULT_IRRELEVANT_KEYS`."""
    values = cfg.to_dict() if isinstance(cfg, CfgNode) else json.loads(json.dumps(cfg))
    for key in RESULT_IRRELEVANT_KEYS:
        *parents, leaf = key.split(".")
        node = values
        for part in parents:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    canonical = json.dumps([HASH_SCHEMA, values], sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Run:
    """One training run of a sweep: ``config_file`` + ``overrides`` (+ ``SEED seed``), into ``root/name``.

    ``row`` groups the seeds of one table row (default: ``name``); ``seed`` None keeps the config's SEED.
    """

    name: str
    config_file: str
    overrides: tuple[str, ...] = ()
    seed: int | None = None
    row: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "overrides", tuple(str(o) for o in self.overrides))
        if not self.row:
            object.__setattr__(self, "row", self.name)
        parts = self.name.replace("\\", "/").split("/")
        if not self.name or os.path.isabs(self.name) or any(p in ("", ".", "..") for p in parts):
            raise SweepError(
                f"run name {self.name!r} must be a relative folder path without '.', '..' or empty parts"
            )

    def output_dir(self, root: str) -> str:
        """The run's folder: ``root/name``."""
        return os.path.join(root, *self.name.split("/"))

    def options(self, root: str) -> list[str]:
        """The ``KEY VALUE`` overrides of this run, ``SEED`` and ``OUTPUT_DIR`` included."""
        seed = [] if self.seed is None else ["SEED", str(self.seed)]
        return [*self.overrides, *seed, "OUTPUT_DIR", self.output_dir(root)]

    def resolve(self, root: str) -> CfgNode:
        """The run's resolved (frozen) config."""
        return setup_cfg(self.config_file, self.options(root))

    def command(self, root: str) -> str:
        """The ``tools/train_net.py`` command line that trains this run (as the tables print it)."""
        return shlex.join(
            ["python", "tools/train_net.py", "--config-file", self.config_file, *self.options(root)]
        )


@dataclass
class RunResult:
    """A finished run: its report (``results.json``), whether it came from the cache, its training time."""

    run: Run
    output_dir: str
    config_hash: str
    report: dict[str, Any] = field(repr=False)
    reused: bool
    seconds: float | None  # wall time of the training; None when reused


def cached_report(output_dir: str, expected_hash: str) -> dict[str, Any] | None:
    """``output_dir/results.json`` when it records ``expected_hash`` and a config with that hash, else None."""
    path = os.path.join(output_dir, RESULTS_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
    except (OSError, ValueError):
        return None  # absent, unreadable or cut short: not a finished run
    if not isinstance(report, dict) or report.get("config_hash") != expected_hash:
        return None
    recorded = report.get("config")
    if not isinstance(recorded, dict) or config_hash(recorded) != expected_hash:
        return None  # edited by hand, or replaced by another run that kept the hash field
    return report


def train_in_process(cfg: CfgNode) -> dict[str, Any] | None:
    """Train one resolved config in this process; returns the final evaluation report (the sweep reads
    ``results.json`` instead, which is what a cached run has).

    The sweep's one call into the training engine: the trainer, with the task of ``cfg.MODEL.TASK``,
    writes ``OUTPUT_DIR/results.json`` (the report, with the resolved config) as a command-line run does.
    """
    from ..engine import Trainer

    return Trainer(cfg).train()


@contextlib.contextmanager
def fresh_run_logging(quiet: bool) -> Iterator[None]:
    """Run with no handlers on the training logger and drop whatever the run attached (its console and
    ``log.txt`` handlers, even when it failed before closing them), so no run writes into another's log.
    ``quiet`` sends the run's console output to /dev/null; its ``log.txt`` keeps everything."""
    logger = logging.getLogger(RUN_LOGGER)
    saved = list(logger.handlers)
    for handler in saved:
        logger.removeHandler(handler)
    try:
        with contextlib.ExitStack() as stack:
            if quiet:
                devnull = stack.enter_context(open(os.devnull, "w", encoding="utf-8"))
                stack.enter_context(contextlib.redirect_stdout(devnull))
            yield
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        for handler in saved:
            logger.addHandler(handler)


def run_sweep(
    runs: Sequence[Run],
    root: str,
    rerun: bool = False,
    quiet: bool = True,
    train: Callable[[CfgNode], Any] | None = None,
    announce: Callable[[Run, CfgNode], None] | None = None,
) -> list[RunResult]:
    """Run ``runs`` in order into ``root/<name>``, reusing cached runs (all retrained with ``rerun``).

    ``train`` trains one resolved config and writes its ``results.json`` (default :func:`train_in_process`);
    ``announce(run, cfg)`` is called before each training. A failing run stops the sweep; the runs
    finished before it stay cached.
    """
    names = [run.name for run in runs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise SweepError(f"run names must be unique in a sweep; repeated: {', '.join(repeated)}")
    results = []
    for run in runs:
        cfg = run.resolve(root)
        expected = config_hash(cfg)
        output_dir = run.output_dir(root)
        report = None if rerun else cached_report(output_dir, expected)
        seconds = None
        if report is None:
            if announce is not None:
                announce(run, cfg)
            _remove(output_dir)  # the stale run's files; see the module docstring
            start = time.perf_counter()
            with fresh_run_logging(quiet):
                (train or train_in_process)(cfg)
            seconds = time.perf_counter() - start
            report = _record_hash(output_dir, expected, run)
        results.append(RunResult(run, output_dir, expected, report, reused=seconds is None, seconds=seconds))
    return results


def _remove(path: str) -> None:
    """Delete a stale run's folder (a link or a file in its place: only that entry, never its target)."""
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def _record_hash(output_dir: str, expected: str, run: Run) -> dict[str, Any]:
    """Add ``config_hash`` to the ``results.json`` the run just wrote (atomically); returns the report."""
    path = os.path.join(output_dir, RESULTS_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        raise SweepError(f"run {run.name!r} finished without a readable {path}: {e}") from None
    recorded = report.get("config") if isinstance(report, dict) else None
    if not isinstance(recorded, dict) or config_hash(recorded) != expected:
        raise SweepError(f"{path} does not record the config run {run.name!r} was trained with")
    report["config_hash"] = expected
    atomic_write_json(path, report)
    return report


# -- aggregation over seeds ------------------------------------------------------------------------------
def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    if not values:
        raise ValueError("mean_std needs at least one value")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def collect(
    results: Sequence[RunResult], value: Callable[[Mapping[str, Any], str], float]
) -> dict[str, dict[str, dict[int | None, float]]]:
    """``{row: {target: {seed: value(report, target)}}}`` over every target of every run's report, in
    run order (rows, targets and seeds keep the order they first appear in)."""
    table: dict[str, dict[str, dict[int | None, float]]] = {}
    for result in results:
        for target in result.report["targets"]:
            seeds = table.setdefault(result.run.row, {}).setdefault(target, {})
            if result.run.seed in seeds:
                raise SweepError(
                    f"row {result.run.row!r} has two runs of seed {result.run.seed} for {target}"
                )
            seeds[result.run.seed] = float(value(result.report, target))
    return table


def format_mean_std(values: Sequence[float], scale: float = 100.0) -> str:
    """``"41.2 ± 2.1"`` (scaled, one decimal) over several values; ``"41.2"`` for one (no spread to show)."""
    mean, std = mean_std(values)
    return f"{scale * mean:.1f} ± {scale * std:.1f}" if len(values) > 1 else f"{scale * mean:.1f}"


def format_seed_table(
    table: Mapping[str, Mapping[str, Mapping[int | None, float]]],
    labels: Mapping[str, str] | None = None,
    first_column: str = "model",
) -> str:
    """A Markdown table of :func:`collect`'s output: one row per row, one column per target (its part after
    ``:``), cells mean ± std over seeds in percent, and the average over targets (mean ± std of the
    per-seed averages, over the seeds every target has; ``-`` when a row misses a target)."""
    targets: list[str] = []
    for per_target in table.values():
        targets += [t for t in per_target if t not in targets]
    lines = [
        f"| {first_column} | " + " | ".join(t.split(":", 1)[-1] for t in targets) + " | average |",
        "|---|" + "---:|" * (len(targets) + 1),
    ]
    for row, per_target in table.items():
        cells = [format_mean_std(list(per_target[t].values())) if t in per_target else "-" for t in targets]
        seeds = [
            s for s in next(iter(per_target.values())) if all(s in per_target.get(t, {}) for t in targets)
        ]
        averages = [statistics.fmean(per_target[t][s] for t in targets) for s in seeds]
        average = format_mean_std(averages) if averages else "-"
        lines.append(f"| {(labels or {}).get(row, row)} | " + " | ".join(cells) + f" | {average} |")
    return "\n".join(lines)
