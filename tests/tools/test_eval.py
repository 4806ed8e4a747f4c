"""tools/eval.py (reid_dff.cli.evaluate) on a checkpoint of each task: it reproduces the training run's report."""

import hashlib
import json
import os

import pytest
import yaml

from reid_dff.cli.evaluate import main
from reid_dff.config import setup_cfg
from reid_dff.engine import Trainer

pytestmark = pytest.mark.e2e  # trains a ReID and an Office-Home run, then evaluates them


def reid_overrides(tmp_path):
    """A 1-epoch CPU ReID run on 2 tiny synthetic domains (source 0, target 1)."""
    return {
        "MODEL": {"DEVICE": "cpu", "BACKBONE": "resnet18"},
        "INPUT": {"SIZE_TRAIN": [64, 32], "SIZE_TEST": [64, 32], "PADDING": 4},
        "DATASETS": {
            "ROOT": str(tmp_path / "reid_data"),
            "SOURCES": ["synthetic:0"],
            "TARGETS": ["synthetic:1"],
            "SYNTHETIC": {"NUM_DOMAINS": 2, "IDS_TRAIN": 8, "IDS_TEST": 4, "HEIGHT": 64, "WIDTH": 32,
                          "CAMERAS": 2, "IMAGES_PER_CAMERA": 2},
        },
        "DATALOADER": {"NUM_WORKERS": 0},
        "SOLVER": {"IMS_PER_BATCH": 8, "ITERS_PER_EPOCH": 2, "MAX_EPOCHS": 1, "WARMUP_EPOCHS": 0},
        "TEST": {"IMS_PER_BATCH": 32},
        "OUTPUT_DIR": str(tmp_path / "reid_run"),
    }  # fmt: skip


def officehome_overrides(tmp_path):
    """A 1-iteration CPU Office-Home run on the synthetic set: Clipart -> Art, 4 images per class at 32x32."""
    return {
        "MODEL": {"TASK": "classification", "DEVICE": "cpu", "BACKBONE": "resnet18", "LAST_STRIDE": 2,
                  "HEAD": {"NECK": "none"}, "LOSSES": {"NAMES": ["cross_entropy"]}},
        "INPUT": {"SIZE_TRAIN": [32, 32], "SIZE_TEST": [32, 32], "PADDING": 2},
        "DATASETS": {
            "ROOT": str(tmp_path / "officehome_data"),
            "SOURCES": ["officehome:Clipart"],
            "TARGETS": ["officehome:Art"],
            "OFFICEHOME": {"SYNTHETIC": {"ENABLED": True, "IMAGES_PER_CLASS": 4, "SIZE": 32}},
        },
        "DATALOADER": {"SAMPLER": "random", "NUM_WORKERS": 0},
        "SOLVER": {"IMS_PER_BATCH": 8, "ITERS_PER_EPOCH": 1, "MAX_EPOCHS": 1, "WARMUP_EPOCHS": 0},
        "TEST": {"IMS_PER_BATCH": 64},
        "OUTPUT_DIR": str(tmp_path / "officehome_run"),
    }  # fmt: skip


def train_and_evaluate(tmp_path, name, overrides):
    """Train the run of ``overrides``, then evaluate its last.pth with the tool; both reports."""
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(overrides))
    Trainer(setup_cfg(str(config), [])).train()
    run_dir = overrides["OUTPUT_DIR"]
    weights = os.path.join(run_dir, "last.pth")
    out = tmp_path / f"{name}_eval"
    assert main(["--config-file", str(config), "MODEL.WEIGHTS", weights, "OUTPUT_DIR", str(out)]) == 0
    with open(os.path.join(run_dir, "results.json"), encoding="utf-8") as f:
        trained = json.load(f)
    with open(out / "results.json", encoding="utf-8") as f:
        evaluated = json.load(f)
    with open(weights, "rb") as f:
        assert evaluated["checkpoint"]["sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert evaluated["config"]["MODEL"]["WEIGHTS"] == weights and (out / "config.yaml").is_file()
    return trained, evaluated


def test_eval_tool_evaluates_a_reid_and_an_officehome_checkpoint(tmp_path):
    trained, evaluated = train_and_evaluate(tmp_path, "reid", reid_overrides(tmp_path))
    assert evaluated["mean"] == trained["mean"] and 0 < evaluated["mean"]["mAP"] <= 1
    assert evaluated["targets"]["synthetic:1"]["splits"] == trained["targets"]["synthetic:1"]["splits"]
    assert "| synthetic:1 | 1 |" in (tmp_path / "reid_eval" / "log.txt").read_text()  # the retrieval table

    trained, evaluated = train_and_evaluate(tmp_path, "officehome", officehome_overrides(tmp_path))
    assert evaluated["task"] == "classification" and evaluated["num_classes"] == 8
    # The run's final evaluation was of the weights last.pth holds: the same accuracies, image for image.
    assert (
        evaluated["targets"] == trained["targets"]
        and evaluated["targets"]["officehome:Art"]["num_images"] == 32
    )
    assert evaluated["source_val"] == trained["source_val"]
    assert evaluated["epoch"] == 1 and evaluated["selected"] is None  # no selection: one checkpoint evaluated
    assert (
        "| officehome:Art | 32 |" in (tmp_path / "officehome_eval" / "log.txt").read_text()
    )  # the accuracy table
