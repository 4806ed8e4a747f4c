"""bench/mask_study.py: every row pins the mask's choices and departs from the literal reading only where
its key says, the selection rule (instance-adaptive rows only, then mAP; never on the real target), and one
tiny study on generated synthetic data."""

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from reid_dff.config import get_cfg, setup_cfg
from reid_dff.experiments import config_hash

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "mask_study.py"
CHOICES = ("FILTER", "MASK_INPUT", "MASK_LAYOUT", "MASK_KERNEL", "MASK_INIT", "MASK_WEIGHT_DECAY")


def load_study():
    spec = importlib.util.spec_from_file_location("mask_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def resolved_choices(study, row):
    cfg = setup_cfg(str(REPO / study.CONFIGS["synthetic"]), list(row.overrides))
    return {key: cfg.MODEL.DFF[key] for key in CHOICES}, cfg.MODEL.BACKBONE


def test_each_row_departs_from_the_literal_reading_in_the_choices_its_key_names():
    study = load_study()
    literal, backbone = resolved_choices(study, study.ROWS_BY_KEY["literal"])
    assert backbone == "dff_resnet18"
    assert literal == {
        "FILTER": "ins_spatial", "MASK_INPUT": "re_im", "MASK_LAYOUT": "rfft", "MASK_KERNEL": 7,
        "MASK_INIT": "zeros", "MASK_WEIGHT_DECAY": -1.0,
    }  # fmt: skip
    expected = {
        "init_kaiming": {"MASK_INIT": "kaiming"},
        "init_normal": {"MASK_INIT": "normal"},
        "input_log_magnitude": {"MASK_INPUT": "log_magnitude"},
        "layout_centered": {"MASK_LAYOUT": "centered"},
        "kernel_3": {"MASK_KERNEL": 3},
        "no_weight_decay": {"MASK_WEIGHT_DECAY": 0.0},
        "kaiming_log_magnitude": {"MASK_INIT": "kaiming", "MASK_INPUT": "log_magnitude"},
        "kaiming_no_weight_decay": {"MASK_INIT": "kaiming", "MASK_WEIGHT_DECAY": 0.0},
    }
    assert [r.key for r in study.STUDY_ROWS] == ["literal", *expected, "default"]
    for key, departures in expected.items():
        choices, _ = resolved_choices(study, study.ROWS_BY_KEY[key])
        assert choices == {**literal, **departures}, key
    # The default row overrides nothing: it is the package default, whatever that is.
    assert study.ROWS_BY_KEY["default"].overrides == ()
    default, _ = resolved_choices(study, study.ROWS_BY_KEY["default"])
    assert default == {key: get_cfg().MODEL.DFF[key] for key in CHOICES}
    with pytest.raises(KeyError):
        study.choice_row("x", "x", MASK_NOPE="1")


def entry(row, maps, spreads):
    return {"row": row, "mAP": maps, "mask": {"instance_spread": spreads}}


def test_the_rule_takes_the_best_map_among_instance_adaptive_rows():
    study = load_study()
    assert study.ADAPTIVE_SPREAD == 0.02
    entries = [
        entry("flat_but_best", [0.70, 0.72], [0.003, 0.004]),  # highest mAP, not instance-adaptive
        entry("adaptive_low", [0.50, 0.52], [0.05, 0.04]),
        entry("adaptive_high", [0.60, 0.64], [0.019, 0.023]),  # mean spread 0.021: adaptive
        entry("default", [0.99], [0.5]),  # the package default's twin row: never a candidate
        entry("no_masks", [0.90], [None]),  # Base: no mask diagnostics, never chosen
    ]
    chosen = study.select(entries)
    assert chosen["row"] == "adaptive_high"
    assert chosen["mAP"] == pytest.approx(0.62) and chosen["instance_spread"] == pytest.approx(0.021)
    assert chosen["best_row"] == "flat_but_best" and chosen["best_mAP"] == pytest.approx(0.71)
    assert chosen["best_instance_spread"] == pytest.approx(0.0035)
    text = study.verdict(chosen)
    assert "**adaptive_high** (mAP 62.0, instance spread 0.0210)" in text
    assert "flat_but_best (mAP 71.0, instance spread 0.0035" in text and "9.0 mAP ahead" in text
    # The adaptive row is also the best: no margin to report.
    chosen = study.select(entries[1:])
    assert chosen["row"] == chosen["best_row"] == "adaptive_high"
    assert "ahead" not in study.verdict(chosen)
    # Nothing instance-adaptive: nothing selected, but the best row is still named.
    chosen = study.select(entries[:1])
    assert chosen["row"] is None and chosen["mAP"] is None and chosen["best_row"] == "flat_but_best"
    assert "none is selected" in study.verdict(chosen)
    assert study.select(entries[3:]) is None and "no row has masks" in study.verdict(None)


def tiny_demo(tmp_path):
    """Overrides that shrink configs/synthetic_demo.yaml to 2 tiny domains and 2 iterations on CPU."""
    return [
        "MODEL.DEVICE", "cpu", "DATASETS.ROOT", str(tmp_path / "data"),
        "DATASETS.SOURCES", "['synthetic:0']", "DATASETS.TARGETS", "['synthetic:1']",
        "DATASETS.SYNTHETIC.NUM_DOMAINS", "2", "DATASETS.SYNTHETIC.IDS_TRAIN", "8",
        "DATASETS.SYNTHETIC.IDS_TEST", "4", "DATASETS.SYNTHETIC.HEIGHT", "64", "DATASETS.SYNTHETIC.WIDTH", "32",
        "DATASETS.SYNTHETIC.CAMERAS", "2", "DATASETS.SYNTHETIC.IMAGES_PER_CAMERA", "2",
        "DATALOADER.NUM_WORKERS", "0", "SOLVER.IMS_PER_BATCH", "8", "SOLVER.WARMUP_EPOCHS", "0",
        "TEST.MASK_STATS_MAX_IMAGES", "16",
    ]  # fmt: skip


@pytest.mark.e2e
def test_a_tiny_study_tables_every_row_and_reuses_the_defaults_twin(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    study = load_study()
    out = tmp_path / "study"
    argv = ["--rows", "literal", "init_kaiming", "default", "--seeds", "0", "--out", str(out),
            "--epochs", "1", "--iters", "2", *tiny_demo(tmp_path)]  # fmt: skip
    summary = study.main(argv)
    printed = capsys.readouterr().out
    rows = {row["row"]: row for row in summary["rows"]}
    # The default row reuses the runs of the row whose config it equals (if any); others train.
    twins = [
        key for key in ("literal", "init_kaiming")
        if config_hash(setup_cfg(str(REPO / study.CONFIGS["synthetic"]),
                                 [*study.STUDY_OPTS, *tiny_demo(tmp_path), "SOLVER.MAX_EPOCHS", "1",
                                  "SOLVER.ITERS_PER_EPOCH", "2", *study.ROWS_BY_KEY[key].overrides,
                                  "SEED", "0"]))
        == config_hash(setup_cfg(str(REPO / study.CONFIGS["synthetic"]),
                                 [*study.STUDY_OPTS, *tiny_demo(tmp_path), "SOLVER.MAX_EPOCHS", "1",
                                  "SOLVER.ITERS_PER_EPOCH", "2", "SEED", "0"]))
    ]  # fmt: skip
    assert rows["default"]["same_runs_as"] == (twins[0] if twins else None)
    trained = [line for line in printed.splitlines() if line.startswith("+ python tools/train_net.py")]
    assert len(trained) == (2 if twins else 3)
    for key in ("literal", "init_kaiming"):
        report = json.load(open(out / key / "seed0" / "results.json"))
        assert report["checkpoint"]["path"].endswith(os.path.join(key, "seed0", "last.pth"))
        assert rows[key]["mAP"] == [report["targets"]["synthetic:1"]["mean"]["mAP"]]
        stats = json.load(open(out / key / "seed0" / "mask_stats.json"))["summary"]
        assert rows[key]["mask"]["instance_spread"] == [stats["instance_spread"]]
    # A zero-initialized mask after 2 steps is nearly flat; a kaiming one is not: diagnostics are read per run.
    assert rows["literal"]["mask"]["instance_spread"][0] < rows["init_kaiming"]["mask"]["instance_spread"][0]
    assert summary["selected"] == study.select(summary["rows"])
    assert "Selection (synthetic only)" in printed and "1 epochs x 2 iterations" in printed
    assert json.load(open(out / "table.json")) == json.loads(json.dumps(summary))


@pytest.mark.parametrize("script", ["mask_study.py", "real_multicam.py"])
def test_a_bad_override_is_one_line_not_a_traceback(tmp_path, script):
    import subprocess

    archive = ["--archive", str(tmp_path / "absent.tar.gz")] if script == "real_multicam.py" else []
    argv = [sys.executable, str(REPO / "bench" / script), "--seeds", "0", "--out", str(tmp_path / "out"),
            *archive, "MODEL.NO_SUCH_KEY", "1"]  # fmt: skip
    if script == "real_multicam.py":
        argv = argv[: argv.index("MODEL.NO_SUCH_KEY")]  # no archive: its error comes first, in one line too
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr[-2000:]
    name = script.removesuffix(".py")
    assert lines[0].startswith(f"{name}: error: ")
    assert ("NO_SUCH_KEY" in lines[0]) if name == "mask_study" else ("benchmark data not found" in lines[0])
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written
