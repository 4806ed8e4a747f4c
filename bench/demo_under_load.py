#!/usr/bin/env python
"""The README demo's training, quiet and then beside a CPU-heavy process, in one run: both times and their ratio.

A busy machine must not slow the demo down out of proportion (the target: under load within 2x the quiet
time). Each training is a ``Trainer`` run of the demo config (what ``tools/train_net.py`` runs, in this
process) with the default thread choice (``MODEL.NUM_THREADS`` 0; an ``OMP_NUM_THREADS`` of this shell is
dropped unless ``--keep-omp``); the times include its set-up and final evaluation. The load is one busy process per usable core (single-threaded numpy matrix products),
started after the quiet run, stopped when the loaded run ends, and bounded in time (``--load-limit``).
The synthetic data are generated before the first timing.

Usage (from the repo root)::

    python bench/demo_under_load.py                          # 6 epochs x 40 iterations of the demo
    python bench/demo_under_load.py --epochs 1 --iters 20    # a short check
    python bench/demo_under_load.py --epochs 24              # the whole demo (without its evaluations)
    python bench/demo_under_load.py -- DATALOADER.NUM_WORKERS 0   # config overrides after --
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

TARGET_RATIO = 2.0
_SINGLE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _busy(stop, deadline: float) -> None:
    """Matrix products on one thread until ``stop`` is set or ``deadline`` (time.time()) passes."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((200, 200))
    while not stop.is_set() and time.time() < deadline:
        a = np.tanh(a @ a)


@contextlib.contextmanager
def cpu_load(processes: int, limit_s: float) -> Iterator[list]:
    """``processes`` busy processes, each stopped on exit or after ``limit_s`` seconds."""
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    saved = {key: os.environ.get(key) for key in _SINGLE_THREAD}
    os.environ.update({key: "1" for key in _SINGLE_THREAD})  # read by the children's numpy at import
    try:
        workers = [
            ctx.Process(target=_busy, args=(stop, time.time() + limit_s), daemon=True)
            for _ in range(processes)
        ]
        for worker in workers:
            worker.start()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        yield workers
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.terminate()
                worker.join()


def train_cfg(config: str, output_dir: str, epochs: int, iters: int, overrides: Sequence[str]):
    """The demo's config for ``epochs`` x ``iters`` iterations into ``output_dir``, evaluating only at the end."""
    from reid_dff.config import setup_cfg

    schedule = [
        "SOLVER.MAX_EPOCHS",
        str(epochs),
        "SOLVER.ITERS_PER_EPOCH",
        str(iters),
        "TEST.EVAL_PERIOD",
        "0",
    ]
    return setup_cfg(config, [*schedule, *overrides, "OUTPUT_DIR", output_dir])


def timed_training(cfg) -> tuple[float, str]:
    """Seconds a training of ``cfg`` took (set-up, training, final evaluation) and its thread-choice line."""
    from reid_dff.engine import Trainer

    start = time.perf_counter()
    trainer = Trainer(cfg)
    try:
        trainer.train()
    finally:
        trainer.close()
    seconds = time.perf_counter() - start
    text = open(os.path.join(cfg.OUTPUT_DIR, "log.txt")).read()
    found = re.search(r"using \d+ intra-op threads[^\n]*", text)
    return seconds, found.group(0) if found else "(no thread line in the log)"


def prepare_data(cfg) -> None:
    """Generate the synthetic data the config names (not part of the timings)."""
    from reid_dff.data.synthetic import ensure_synthetic_data

    ensure_synthetic_data(cfg)


def main(argv: Sequence[str] | None = None) -> int:
    from reid_dff.utils.threads import usable_cores

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", default="configs/synthetic_demo.yaml")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of each training (demo: 24)")
    parser.add_argument("--iters", type=int, default=40, help="iterations per epoch (demo: 40)")
    parser.add_argument("--load", type=int, default=0, help="busy processes (default: one per usable core)")
    parser.add_argument(
        "--load-limit", type=float, default=0, help="seconds the load may run (default: 5x quiet + 60)"
    )
    parser.add_argument("--keep-omp", action="store_true", help="let this shell's OMP_NUM_THREADS choose")
    parser.add_argument("--output", default="", help="folder for the runs (default: a temporary one)")
    parser.add_argument("overrides", nargs="*", help="config overrides KEY VALUE ... (after --)")
    args = parser.parse_args(argv)
    cores = usable_cores()
    load = args.load or cores
    config = os.path.abspath(args.config_file)
    if not args.keep_omp:
        os.environ.pop("OMP_NUM_THREADS", None)  # measure the automatic choice (reid_dff.utils.threads)

    with contextlib.ExitStack() as stack:
        root = args.output or stack.enter_context(tempfile.TemporaryDirectory(prefix="demo_under_load_"))
        os.makedirs(root, exist_ok=True)
        runs = {name: os.path.join(root, f"{name}_{os.getpid()}") for name in ("quiet", "loaded")}

        def run(name: str) -> tuple[float, str]:
            return timed_training(train_cfg(config, runs[name], args.epochs, args.iters, args.overrides))

        prepare_data(train_cfg(config, runs["quiet"], args.epochs, args.iters, args.overrides))

        quiet, threads = run("quiet")
        limit = args.load_limit or 5 * quiet + 60
        with cpu_load(load, limit):
            time.sleep(0.5)  # the busy processes running before the training starts
            loaded, loaded_threads = run("loaded")

    ratio = loaded / quiet
    print(
        f"{os.path.relpath(config, REPO)}: {args.epochs} epochs x {args.iters} iterations, {cores} usable cores"
    )
    print(f"quiet       {quiet:8.1f} s   {threads}")
    print(f"under load  {loaded:8.1f} s   {loaded_threads}; {load} busy processes (limit {limit:.0f} s)")
    verdict = "within" if ratio <= TARGET_RATIO else "over"
    print(f"ratio       {ratio:8.2f}     ({verdict} the {TARGET_RATIO:g}x target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
