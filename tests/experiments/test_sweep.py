"""reid_dff.experiments.sweep: the config hash, the cache (reused only when fresh), logging per run, and
aggregation over seeds, with a stand-in trainer that writes a results.json the way a training run does."""

import json
import logging
import math
import os
import shlex

import pytest

from reid_dff.config import get_cfg, setup_cfg
from reid_dff.experiments import (
    RESULT_IRRELEVANT_KEYS,
    Run,
    RunResult,
    SweepError,
    collect,
    config_hash,
    format_mean_std,
    format_seed_table,
    mean_std,
    run_sweep,
    sweep,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(REPO, "configs", "synthetic_demo.yaml")


def test_the_hash_is_stable_and_ignores_only_where_and_how_verbosely_a_run_works():
    cfg = setup_cfg(DEMO)
    reference = config_hash(cfg)
    assert len(reference) == 64 and int(reference, 16) >= 0
    assert config_hash(setup_cfg(DEMO)) == reference  # a second resolution of the same file
    assert config_hash(json.loads(json.dumps(cfg.to_dict()))) == reference  # as results.json records it
    for key, value in [("OUTPUT_DIR", "elsewhere"), ("TEST.IMS_PER_BATCH", "7"), ("SOLVER.LOG_PERIOD", "1"),
                       ("TEST.MAX_MEMORY_MB", "64"), ("SOLVER.CHECKPOINT_PERIOD", "5")]:  # fmt: skip
        assert config_hash(setup_cfg(DEMO, [key, value])) == reference, key
    changed = set()
    for key, value in [("SEED", "1"), ("SOLVER.BASE_LR", "0.002"), ("MODEL.BACKBONE", "resnet18"),
                       ("TEST.EVAL_PERIOD", "4"), ("DATASETS.ROOT", "other"), ("DATALOADER.NUM_WORKERS", "0"),
                       ("INPUT.COLOR_JITTER.ENABLED", "False"), ("SOLVER.MAX_EPOCHS", "0")]:  # fmt: skip
        other = config_hash(setup_cfg(DEMO, [key, value]))
        assert other != reference, key
        changed.add(other)
    assert len(changed) == 8  # each change gives its own hash


def test_every_ignored_key_is_a_config_key():
    # A misspelt entry would be silently hashed (never ignored); the defaults name every real key.
    assert set(RESULT_IRRELEVANT_KEYS) <= set(get_cfg().leaf_keys())


def fake_trainer(calls):
    """A stand-in training run: records the call and writes results.json (report + config) into OUTPUT_DIR."""

    def train(cfg):
        calls.append(cfg.OUTPUT_DIR)
        logger = logging.getLogger("reid_dff")
        handler = logging.FileHandler(os.path.join(cfg.OUTPUT_DIR, "log.txt"))  # as setup_logger attaches
        logger.addHandler(handler)
        logger.warning("training %s", cfg.OUTPUT_DIR)  # at the default level
        report = {
            "targets": {"synthetic:1": {"mean": {"mAP": 0.1 * (cfg.SEED + 1)}}},
            "config": cfg.to_dict(),
        }
        with open(os.path.join(cfg.OUTPUT_DIR, "results.json"), "w") as f:
            json.dump(report, f)
        return report

    return train


def prepare(cfg):  # the folder a trainer creates before training
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)


def runs_of(seeds, overrides=()):
    return [Run(f"dff/seed{s}", DEMO, overrides, s, row="dff") for s in seeds]


def sweep_once(root, runs, calls, **kwargs):
    train = fake_trainer(calls)
    return run_sweep(runs, str(root), train=lambda cfg: (prepare(cfg), train(cfg))[1], **kwargs)


def test_a_cached_run_is_reused_without_training(tmp_path):
    calls = []
    first = sweep_once(tmp_path, runs_of([0, 1]), calls)
    assert len(calls) == 2 and [r.reused for r in first] == [False, False]
    assert all(r.seconds is not None and r.seconds >= 0 for r in first)
    recorded = json.load(open(tmp_path / "dff" / "seed0" / "results.json"))
    assert recorded["config_hash"] == config_hash(setup_cfg(DEMO, ["SEED", "0"]))

    calls.clear()
    again = sweep_once(tmp_path, runs_of([0, 1], ["TEST.IMS_PER_BATCH", "7"]), calls)  # an ignored key
    assert (
        calls == [] and [r.reused for r in again] == [True, True] and [r.seconds for r in again] == [None] * 2
    )
    assert [r.report["targets"] for r in again] == [r.report["targets"] for r in first]
    assert [r.output_dir for r in again] == [str(tmp_path / "dff" / f"seed{s}") for s in (0, 1)]

    calls.clear()
    sweep_once(tmp_path, runs_of([0]), calls, rerun=True)
    assert calls == [str(tmp_path / "dff" / "seed0")]


def stale_by(kind, run_dir):
    """Make the finished run in ``run_dir`` stale in one way; returns the overrides of the next sweep."""
    path = run_dir / "results.json"
    report = json.loads(path.read_text())
    if kind == "other config":
        return ["SOLVER.BASE_LR", "0.002"]
    if kind == "no hash":  # written by a plain training run, never by the sweep
        del report["config_hash"]
    elif kind == "other hash":
        report["config_hash"] = "0" * 64
    elif kind == "hash kept, config replaced":  # another run wrote over it and kept the field
        report["config"]["SOLVER"]["BASE_LR"] = 0.5
    elif kind == "no results":  # an interrupted retraining: checkpoints, no results.json
        path.unlink()
        (run_dir / "last.pth").write_bytes(b"partial")
        return []
    elif kind == "cut short":
        path.write_text(path.read_text()[:20])
        return []
    path.write_text(json.dumps(report))
    return []


@pytest.mark.parametrize(
    "kind", ["other config", "no hash", "other hash", "hash kept, config replaced", "no results", "cut short"]
)
def test_a_stale_run_is_trained_again_into_an_emptied_folder(tmp_path, kind):
    calls = []
    sweep_once(tmp_path, runs_of([0, 1]), calls)
    run_dir = tmp_path / "dff" / "seed0"
    (run_dir / "leftover.txt").write_text("from the stale run")
    overrides = stale_by(kind, run_dir)
    calls.clear()
    results = sweep_once(tmp_path, runs_of([0, 1], overrides), calls)
    retrained = [str(run_dir)] + ([str(tmp_path / "dff" / "seed1")] if overrides else [])
    assert calls == retrained
    assert not results[0].reused and not (run_dir / "leftover.txt").exists()  # never mixed with the old run
    assert not (run_dir / "last.pth").exists()
    expected = config_hash(setup_cfg(DEMO, [*overrides, "SEED", "0"]))
    assert results[0].config_hash == expected == json.load(open(run_dir / "results.json"))["config_hash"]


def test_each_run_logs_into_its_own_log_and_the_callers_handlers_come_back(tmp_path):
    logger = logging.getLogger("reid_dff")
    before = list(logger.handlers)

    def failing(cfg):
        prepare(cfg)
        logger.addHandler(logging.FileHandler(os.path.join(cfg.OUTPUT_DIR, "log.txt")))
        logger.warning("started %s", cfg.SEED)
        if cfg.SEED == 1:
            raise FloatingPointError("non-finite loss")

    calls = []
    sweep_once(tmp_path, runs_of([0]), calls)
    with pytest.raises(FloatingPointError):
        run_sweep(runs_of([1, 2]), str(tmp_path), train=failing)  # the failure stops the sweep
    assert logger.handlers == before
    sweep_once(tmp_path, runs_of([2]), calls)
    assert "started 1" in (tmp_path / "dff" / "seed1" / "log.txt").read_text()
    assert (
        not (tmp_path / "dff" / "seed2" / "log.txt").read_text().count("started")
    )  # seed 1's log stayed there
    assert "seed0" not in (tmp_path / "dff" / "seed2" / "log.txt").read_text()
    assert "training" in (tmp_path / "dff" / "seed0" / "log.txt").read_text()


def test_a_run_that_writes_no_results_is_an_error(tmp_path):
    with pytest.raises(SweepError, match=r"run 'dff/seed0' finished without a readable .*results\.json"):
        run_sweep(runs_of([0]), str(tmp_path), train=prepare)


@pytest.mark.parametrize("name", ["", "/abs", "a/../b", "a//b", "./a", ".."])
def test_a_run_name_stays_inside_the_root(name):
    with pytest.raises(SweepError, match="must be a relative folder path"):
        Run(name, DEMO)


def test_run_names_are_unique(tmp_path):
    with pytest.raises(SweepError, match="repeated: a"):
        run_sweep([Run("a", DEMO, (), 0), Run("a", DEMO, (), 1)], str(tmp_path), train=prepare)


def test_a_run_resolves_its_seed_and_folder():
    run = Run("x/seed3", DEMO, ("MODEL.BACKBONE", "resnet18"), 3)
    assert run.row == "x/seed3"  # the default row: one row per run
    assert run.options("out") == [
        "MODEL.BACKBONE",
        "resnet18",
        "SEED",
        "3",
        "OUTPUT_DIR",
        os.path.join("out", "x", "seed3"),
    ]
    cfg = run.resolve("out")
    assert (cfg.SEED, cfg.MODEL.BACKBONE, cfg.OUTPUT_DIR) == (
        3,
        "resnet18",
        os.path.join("out", "x", "seed3"),
    )
    assert Run("y", DEMO).resolve("out").SEED == setup_cfg(DEMO).SEED  # seed None keeps the config's
    # The printed command trains the same run: its arguments parse back to the config file and overrides.
    argv = shlex.split(Run("a b/seed1", "configs/my demo.yaml", ("TEST.METRIC", "cosine"), 1).command("o"))
    assert argv == ["python", "tools/train_net.py", "--config-file", "configs/my demo.yaml", "TEST.METRIC",
                    "cosine", "SEED", "1", "OUTPUT_DIR", os.path.join("o", "a b", "seed1")]  # fmt: skip


def result(row, seed, values):
    """A finished run's result with ``{target: value}`` as its report."""
    report = {"targets": {t: {"top1": v} for t, v in values.items()}}
    return RunResult(Run(f"{row}/{seed}", DEMO, (), seed, row=row), "", "", report, True, None)


def test_mean_and_sample_std_over_seeds_by_hand():
    assert mean_std([0.5]) == (0.5, 0.0)
    mean, std = mean_std([0.30, 0.36, 0.42])
    assert math.isclose(mean, 0.36) and math.isclose(std, 0.06)  # sqrt((0.06^2 + 0 + 0.06^2) / 2)
    assert format_mean_std([0.30, 0.36, 0.42]) == "36.0 ± 6.0"
    assert format_mean_std([0.412]) == "41.2"
    with pytest.raises(ValueError):
        mean_std([])


def test_collect_and_the_seed_table_by_hand():
    results = [
        result("dff", 0, {"officehome:Art": 0.30}),
        result("dff", 1, {"officehome:Art": 0.36}),
        result("dff", 0, {"officehome:Product": 0.50}),
        result("dff", 1, {"officehome:Product": 0.70}),
        result("base", 0, {"officehome:Art": 0.40}),
    ]
    table = collect(results, lambda report, t: report["targets"][t]["top1"])
    assert table == {
        "dff": {"officehome:Art": {0: 0.30, 1: 0.36}, "officehome:Product": {0: 0.50, 1: 0.70}},
        "base": {"officehome:Art": {0: 0.40}},
    }
    text = format_seed_table(table, {"dff": "DFF", "base": "Base"})
    # Art: mean 0.33, std sqrt(2 * 0.03^2) = 0.0424; Product: 0.60, std 0.1414; per-seed averages 0.40 and
    # 0.53: mean 0.465, std sqrt(2 * 0.065^2) = 0.0919. Base has no Product run: no average.
    assert text.splitlines() == [
        "| model | Art | Product | average |",
        "|---|---:|---:|---:|",
        "| DFF | 33.0 ± 4.2 | 60.0 ± 14.1 | 46.5 ± 9.2 |",
        "| Base | 40.0 | - | - |",
    ]
    with pytest.raises(SweepError, match="two runs of seed 0"):
        collect([*results, result("dff", 0, {"officehome:Art": 0.1})], lambda report, t: 0.0)


def test_the_default_trainer_is_the_one_engine_call(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(sweep, "train_in_process", lambda cfg: (seen.append(cfg.SEED), prepare(cfg),
                                                                 fake_trainer([])(cfg)))  # fmt: skip
    run_sweep(runs_of([4]), str(tmp_path))
    assert seen == [4]


def test_a_link_in_place_of_a_stale_run_is_replaced_not_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("not the sweep's")
    (tmp_path / "root" / "dff").mkdir(parents=True)
    (tmp_path / "root" / "dff" / "seed0").symlink_to(elsewhere)
    calls = []
    sweep_once(tmp_path / "root", runs_of([0]), calls)
    assert len(calls) == 1 and (elsewhere / "keep.txt").read_text() == "not the sweep's"
    assert not (tmp_path / "root" / "dff" / "seed0").is_symlink()


@pytest.mark.e2e  # two trainings, one in a train_net.py process
def test_a_run_in_the_sweep_equals_the_same_config_trained_by_train_net(tmp_path):
    # In-process runs must not leak state into each other: the second run of the sweep (after another
    # run, an evaluation of an untrained network, in this process) reports what a fresh train_net.py process reports for its config.
    import subprocess
    import sys

    tiny = [
        "MODEL.DEVICE", "cpu", "MODEL.BACKBONE", "resnet18", "DATASETS.ROOT", str(tmp_path / "data"),
        "DATASETS.SOURCES", "['synthetic:0']", "DATASETS.TARGETS", "['synthetic:1']",
        "DATASETS.SYNTHETIC.NUM_DOMAINS", "2", "DATASETS.SYNTHETIC.IDS_TRAIN", "8",
        "DATASETS.SYNTHETIC.IDS_TEST", "4", "DATASETS.SYNTHETIC.HEIGHT", "64", "DATASETS.SYNTHETIC.WIDTH", "32",
        "DATASETS.SYNTHETIC.CAMERAS", "2", "DATASETS.SYNTHETIC.IMAGES_PER_CAMERA", "2",
        "DATALOADER.NUM_WORKERS", "0", "SOLVER.IMS_PER_BATCH", "8", "SOLVER.ITERS_PER_EPOCH", "2",
        "SOLVER.MAX_EPOCHS", "1", "SOLVER.WARMUP_EPOCHS", "0", "TEST.EVAL_PERIOD", "1",
    ]  # fmt: skip
    runs = [Run("first", DEMO, (*tiny, "SOLVER.MAX_EPOCHS", "0"), 0), Run("second", DEMO, tuple(tiny), 1)]
    results = run_sweep(runs, str(tmp_path / "sweep"))
    assert [r.reused for r in results] == [False, False]
    command = [sys.executable, os.path.join(REPO, "tools", "train_net.py"), "--config-file", DEMO, *tiny]
    done = subprocess.run(
        [*command, "SEED", "1", "OUTPUT_DIR", str(tmp_path / "alone")],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    alone = json.load(open(tmp_path / "alone" / "results.json"))
    assert results[1].report["targets"] == alone["targets"] and results[1].report["mean"] == alone["mean"]
