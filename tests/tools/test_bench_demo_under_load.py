"""bench/demo_under_load.py: a tiny quiet and loaded training in one run, both times and their ratio."""

import re
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
TINY = [  # tests/synthetic_run.py's tiny domains
    "DATASETS.SOURCES", "['synthetic:0']", "DATASETS.TARGETS", "['synthetic:1']",
    "DATASETS.SYNTHETIC.NUM_DOMAINS", "2", "DATASETS.SYNTHETIC.IDS_TRAIN", "8",
    "DATASETS.SYNTHETIC.IDS_TEST", "4", "DATASETS.SYNTHETIC.HEIGHT", "64", "DATASETS.SYNTHETIC.WIDTH", "32",
    "DATASETS.SYNTHETIC.CAMERAS", "2", "DATASETS.SYNTHETIC.IMAGES_PER_CAMERA", "2",
    "MODEL.BACKBONE", "resnet18", "MODEL.DEVICE", "cpu", "SOLVER.IMS_PER_BATCH", "8",
    "DATALOADER.NUM_WORKERS", "1",
]  # fmt: skip


@pytest.fixture()
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # importable by name: the spawned load processes import it
    import demo_under_load

    return demo_under_load


@pytest.mark.e2e
def test_quiet_and_loaded_times_and_their_ratio(bench, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")  # dropped: the trainings choose their threads themselves
    overrides = ["DATASETS.ROOT", str(tmp_path / "data"), *TINY]
    argv = [
        "--epochs",
        "1",
        "--iters",
        "2",
        "--load",
        "1",
        "--output",
        str(tmp_path / "runs"),
        "--",
        *overrides,
    ]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    quiet = float(re.search(r"^quiet\s+([\d.]+) s", out, re.M).group(1))
    loaded = float(re.search(r"^under load\s+([\d.]+) s", out, re.M).group(1))
    ratio = float(re.search(r"^ratio\s+([\d.]+)", out, re.M).group(1))
    assert quiet > 0 and loaded > 0
    assert ratio == pytest.approx(loaded / quiet, abs=0.01 + 0.06 * ratio)  # times are printed rounded
    assert "using " in out and "(automatic)" in out  # the trainings chose their threads themselves
    assert "1 busy processes" in out
    runs = sorted(p.parent.name.split("_")[0] for p in (tmp_path / "runs").glob("*/results.json"))
    assert runs == ["loaded", "quiet"]
    assert bench.mp.active_children() == []  # the load was stopped


def test_load_processes_run_and_stop(bench):
    with bench.cpu_load(1, limit_s=30) as workers:
        time.sleep(0.5)
        assert [w.is_alive() for w in workers] == [True]
    assert [w.is_alive() for w in workers] == [False]
    with bench.cpu_load(1, limit_s=0.2) as workers:  # bounded in time on its own
        workers[0].join(timeout=20)
        assert not workers[0].is_alive()


def test_training_config_has_the_asked_schedule(bench, tmp_path):
    cfg = bench.train_cfg(
        "configs/synthetic_demo.yaml", str(tmp_path / "o"), 2, 5, ["DATALOADER.NUM_WORKERS", "1"]
    )
    assert (cfg.SOLVER.MAX_EPOCHS, cfg.SOLVER.ITERS_PER_EPOCH, cfg.TEST.EVAL_PERIOD) == (2, 5, 0)
    assert cfg.OUTPUT_DIR == str(tmp_path / "o") and cfg.DATALOADER.NUM_WORKERS == 1
    assert cfg.MODEL.BACKBONE == "dff_resnet18"  # the demo's model
