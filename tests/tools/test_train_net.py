"""tools/train_net.py end to end on tiny synthetic data and its error messages (configs/: tests/config/)."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from reid_dff.config import ConfigError, get_cfg, setup_cfg
from reid_dff.data.synthetic import ensure_synthetic_data
from reid_dff.modeling.checkpoint import load_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(REPO, "tools", "train_net.py")


def load_tool():
    spec = importlib.util.spec_from_file_location("train_net", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_config_file(tmp_path):
    """A YAML of a 1-epoch CPU run on 2 tiny synthetic domains (source 0, target 1)."""
    cfg = get_cfg()
    overrides = {
        "MODEL": {"DEVICE": "cpu", "BACKBONE": "resnet18"},
        "INPUT": {"SIZE_TRAIN": [64, 32], "SIZE_TEST": [64, 32], "PADDING": 4},
        "DATASETS": {
            "ROOT": str(tmp_path / "data"),
            "SOURCES": ["synthetic:0"],
            "TARGETS": ["synthetic:1"],
            "SYNTHETIC": {"NUM_DOMAINS": 2, "IDS_TRAIN": 8, "IDS_TEST": 4, "HEIGHT": 64, "WIDTH": 32,
                          "CAMERAS": 2, "IMAGES_PER_CAMERA": 2},
        },
        "DATALOADER": {"NUM_WORKERS": 0},
        "SOLVER": {"IMS_PER_BATCH": 8, "ITERS_PER_EPOCH": 2, "MAX_EPOCHS": 1, "WARMUP_EPOCHS": 0, "LOG_PERIOD": 1},
        "TEST": {"IMS_PER_BATCH": 32, "EVAL_PERIOD": 1},
        "OUTPUT_DIR": str(tmp_path / "run"),
    }  # fmt: skip
    cfg.merge_from_other_cfg(overrides)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(overrides))
    return path, cfg


def run_tool(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, TOOL, *args], cwd=REPO, capture_output=True, text=True, timeout=300, env=env
    )


@pytest.mark.e2e
def test_train_resume_and_eval_only_from_the_command_line(tmp_path):
    config, cfg = tiny_config_file(tmp_path)
    ensure_synthetic_data(cfg)  # generated here once; the tool would do the same when it is absent
    run_dir = tmp_path / "run"

    first = run_tool("--config-file", str(config))
    assert first.returncode == 0, first.stderr
    assert "| synthetic:1 | 1 |" in first.stdout  # the final table is printed
    results = json.load(open(run_dir / "results.json"))
    assert set(results["targets"]) == {"synthetic:1"} and 0 < results["mean"]["mAP"] <= 1
    for name in ("last.pth", "best.pth", "config.yaml", "log.txt"):
        assert (run_dir / name).is_file(), name

    # The ImageNet file a config names is not read when a checkpoint replaces the weights (resume,
    # evaluation): it may have moved, or the run may be evaluated on another machine.
    gone = ("MODEL.PRETRAIN_PATH", str(tmp_path / "moved" / "resnet18.pth"))
    resumed = run_tool("--config-file", str(config), "--resume", "SOLVER.MAX_EPOCHS", "2", *gone)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout and "at epoch 1 (iteration 2)" in resumed.stdout
    assert load_checkpoint(run_dir / "last.pth")["iteration"] == 4

    eval_dir = tmp_path / "eval"
    only = run_tool(
        "--config-file", str(config), "--eval-only", "MODEL.WEIGHTS", str(run_dir / "last.pth"), "OUTPUT_DIR", str(eval_dir),
        *gone,
    )  # fmt: skip
    assert only.returncode == 0, only.stderr
    evaluated = json.load(open(eval_dir / "results.json"))
    assert evaluated["checkpoint"]["path"] == str(run_dir / "last.pth")
    assert evaluated["mean"] == json.load(open(run_dir / "results.json"))["mean"]

    # into the training run's own folder: its results.json and config.yaml stay, the evaluation goes
    # to a subfolder named after the weights
    before = {name: (run_dir / name).read_bytes() for name in ("results.json", "config.yaml")}
    again = run_tool("--config-file", str(config), "--eval-only", "MODEL.WEIGHTS", str(run_dir / "best.pth"))
    assert again.returncode == 0, again.stderr
    assert {name: (run_dir / name).read_bytes() for name in before} == before
    assert json.load(open(run_dir / "eval_best" / "results.json"))["checkpoint"]["path"] == str(
        run_dir / "best.pth"
    )
    # tools/eval.py into the run's folder (the config's OUTPUT_DIR) keeps the run's files the same way
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    evaluated = subprocess.run(
        [sys.executable, os.path.join(REPO, "tools", "eval.py"), "--config-file", str(config), "MODEL.WEIGHTS", str(run_dir / "last.pth")],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    assert {name: (run_dir / name).read_bytes() for name in before} == before
    assert (run_dir / "eval_last" / "results.json").is_file() and (
        run_dir / "eval_last" / "config.yaml"
    ).is_file()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--resume"], r"cannot resume: .*last\.pth does not exist"),
        (["--eval-only"], "needs MODEL.WEIGHTS"),
        (["--eval-only", "MODEL.WEIGHTS", "/nowhere/best.pth"], r"checkpoint not found: /nowhere/best\.pth"),
        (["SOLVER.BASE_LRR", "0.1"], r"unknown config key SOLVER\.BASE_LRR .*did you mean SOLVER\.BASE_LR"),
        (
            ["SOLVER.IMS_PER_BATCH", "6"],
            r"per-rank batch size 6 must be a positive multiple of K=num_instances",
        ),
    ],
)
def test_user_errors_exit_with_one_clear_line(tmp_path, capsys, extra, message):
    config, _ = tiny_config_file(tmp_path)
    with pytest.raises(SystemExit) as info:
        load_tool().main(["--config-file", str(config), *extra])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("train_net.py: error: ")
    assert re.search(message, err), err


def test_fine_tuning_from_a_checkpoint_of_another_model_is_one_clear_line(tmp_path, capsys):
    import torch

    config, _ = tiny_config_file(tmp_path)
    weights = tmp_path / "other.pth"
    torch.save({"model": {"backbone.conv1.weight": torch.zeros(1, 1, 1, 1)}}, weights)
    with pytest.raises(SystemExit) as info:
        load_tool().main(["--config-file", str(config), "MODEL.WEIGHTS", str(weights)])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("train_net.py: error: ") and "does not match the model" in err, err
    assert f"{weights} (MODEL.WEIGHTS) does not match" in err, err  # names the file, not "<state dict>"


def test_a_foreign_synthetic_folder_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "root" / "synthetic").mkdir(parents=True)
    with pytest.raises(SystemExit) as info:
        load_tool().main(
            [
                "--config-file",
                os.path.join(REPO, "configs", "synthetic_demo.yaml"),
                "DATASETS.ROOT",
                str(tmp_path / "root"),
                "OUTPUT_DIR",
                str(tmp_path / "out"),
            ]
        )
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("train_net.py: error: ") and "no manifest.json" in err and "Traceback" not in err


def test_the_task_picks_the_strategy_of_the_one_trainer_and_eval_only(monkeypatch):
    import reid_dff.cli.train_net as cli
    from reid_dff.tasks import ClassificationTask, ReIDTask, build_task

    assert type(build_task(get_cfg())) is ReIDTask
    calls = []

    class Recorder:
        def __init__(self, cfg, resume, task, overwrite):
            calls.append(("train", cfg.MODEL.TASK, resume, type(task), overwrite))

        def train(self):
            return "trained"

    monkeypatch.setattr(cli, "Trainer", Recorder)
    monkeypatch.setattr(cli, "evaluate_checkpoint", lambda cfg: calls.append(("eval", cfg.MODEL.TASK)))
    tool = load_tool()
    cfg = setup_cfg(None, ["MODEL.TASK", "classification", "MODEL.WEIGHTS", "w.pth"])
    assert tool.run(cfg, tool.parse_args(["--config-file", "x.yaml", "--resume"])) == "trained"
    tool.run(cfg, tool.parse_args(["--config-file", "x.yaml", "--eval-only"]))
    assert tool.run(cfg, tool.parse_args(["--config-file", "x.yaml", "--overwrite"])) == "trained"
    assert calls == [
        ("train", "classification", True, ClassificationTask, False),
        ("eval", "classification"),
        ("train", "classification", False, ClassificationTask, True),
    ]
    with pytest.raises(
        ConfigError, match="MODEL.TASK must be one of classification, imagenet, reid, got 'detection'"
    ):
        tool.run(setup_cfg(None, ["MODEL.TASK", "detection"]), tool.parse_args(["--config-file", "x.yaml"]))


def test_resume_and_eval_only_exclude_each_other(tmp_path):
    with pytest.raises(SystemExit):
        load_tool().parse_args(["--config-file", "x.yaml", "--resume", "--eval-only"])


def test_flags_come_before_the_overrides():
    args = load_tool().parse_args(["--config-file", "x.yaml", "--resume", "OUTPUT_DIR", "out", "SEED", "-1"])
    assert args.resume and args.config_file == "x.yaml" and args.opts == ["OUTPUT_DIR", "out", "SEED", "-1"]
    args = load_tool().parse_args(["--res", "--config-file", "x.yaml"])  # abbreviations, as argparse takes
    assert args.resume and args.opts == []


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--config-file", "x.yaml", "OUTPUT_DIR", "out", "--resume", "SEED", "3"], "--resume"),
        (["--config-file", "x.yaml", "SOLVER.MAX_EPOCHS", "1", "--config-file"], "--config-file"),
        (["SEED", "3", "--config-file", "x.yaml"], "--config-file"),  # not reported as a missing flag
        (["--config-file", "x.yaml", "SEDE", "3", "--res"], "--res"),  # after a misspelled key too
        (["--config-file", "x.yaml", "SEED", "3", "-h"], "-h"),
    ],
)
def test_a_flag_after_the_overrides_is_one_error_line_naming_it(capsys, argv, flag):
    with pytest.raises(SystemExit) as info:
        load_tool().parse_args(argv)
    assert info.value.code == 2  # an argparse usage error
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("usage: ") and "Traceback" not in "\n".join(err)
    assert err[-1].endswith(
        f"error: {flag} follows the KEY VALUE overrides; flags go before them: [flags] KEY VALUE ..."
    )
    assert sum("error:" in line for line in err) == 1


def test_a_second_config_file_is_refused_not_silently_dropped(capsys):
    with pytest.raises(SystemExit):
        load_tool().parse_args(["--config-file", "a.yaml", "--config-file", "b.yaml"])
    assert "--config-file was given twice (a.yaml, b.yaml)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["TEST.METRIC", "cosin"], "TEST.METRIC must be one of cosine, euclidean, got 'cosin'"),
        (["MODEL.DEVICE", "cudaa"], "MODEL.DEVICE 'cudaa' is not a device"),
        (["MODEL.BACKBONE", "resnet5"], "unknown backbone (MODEL.BACKBONE) 'resnet5'; known names:"),
    ],
)
def test_config_mistakes_are_one_line_before_training(tmp_path, capsys, extra, message):
    config, cfg = tiny_config_file(tmp_path)
    ensure_synthetic_data(cfg)
    with pytest.raises(SystemExit) as info:
        load_tool().main(["--config-file", str(config), *extra])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("train_net.py: error: ") and message in err, err
    assert not (tmp_path / "run" / "last.pth").exists()


def test_a_new_run_into_a_run_folder_is_one_line_naming_the_remedies_and_writes_nothing(tmp_path, capsys):
    config, cfg = tiny_config_file(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    files = {name: f"{name} of the earlier run".encode() for name in ("last.pth", "best.pth", "results.json", "config.yaml")}  # fmt: skip
    for name, data in files.items():
        (run_dir / name).write_bytes(data)
    with pytest.raises(SystemExit) as info:
        load_tool().main(["--config-file", str(config)])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err == (
        f"train_net.py: error: {run_dir} already holds a training run (last.pth, best.pth); a new run there "
        "would overwrite it; pass --resume to continue it, choose a fresh OUTPUT_DIR, or pass --overwrite to "
        "replace it\n"
    )
    assert {name: (run_dir / name).read_bytes() for name in files} == files
    assert sorted(os.listdir(run_dir)) == sorted(files)  # no log.txt either
    assert not (tmp_path / "data").exists()  # refused before the synthetic data was generated


@pytest.mark.parametrize("other", ["--resume", "--eval-only"])
def test_overwrite_excludes_resume_and_eval_only(tmp_path, capsys, other):
    with pytest.raises(SystemExit):
        load_tool().parse_args(["--config-file", "x.yaml", "--overwrite", other])
    assert (
        "--overwrite starts a new training run; it excludes --resume and --eval-only"
        in capsys.readouterr().err
    )


def test_a_truncated_training_image_is_one_line_before_training_naming_it_and_the_remedy(tmp_path, capsys):
    config, cfg = tiny_config_file(tmp_path)
    ensure_synthetic_data(cfg)
    train_dir = tmp_path / "data" / "synthetic" / "domain0" / "bounding_box_train"
    bad = sorted(train_dir.iterdir())[0]
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(SystemExit) as info:
        load_tool().main(["--config-file", str(config)])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert re.fullmatch(
        rf"train_net\.py: error: 1 of \d+ training images cannot be read: {re.escape(str(bad))} \(truncated "
        r"JPEG \(no end-of-image marker\)\); replace or delete them, or pass DATALOADER\.ON_BAD_IMAGE skip to "
        r"leave them out \(with --resume too\)\n",
        err,
    ), err
    assert not (tmp_path / "run" / "last.pth").exists()
