"""Classification on the shared engine: a short CPU run on the synthetic Office-Home set, selection, resume."""

import json
import os

import pytest
import torch
from interrupted import Interrupted, StopAfterFirstEpoch

from reid_dff.config import get_cfg
from reid_dff.engine import Trainer, evaluate_checkpoint
from reid_dff.modeling.checkpoint import CheckpointError, load_checkpoint

pytestmark = pytest.mark.e2e  # short training runs on synthetic Office-Home

SOURCES = ["officehome:Art", "officehome:Clipart", "officehome:Real_World"]
TARGET = "officehome:Product"


def synthetic_cfg(data_root, output_dir, images_per_class=16, **solver):
    """DFF-ResNet-18 at 32x32 on three synthetic styles, the fourth held out (generated when absent)."""
    cfg = get_cfg()
    cfg.MODEL.update(
        {"TASK": "classification", "BACKBONE": "dff_resnet18", "LAST_STRIDE": 2, "DEVICE": "cpu"}
    )
    cfg.MODEL.HEAD.NECK = "none"
    cfg.MODEL.LOSSES.NAMES = ["cross_entropy"]
    cfg.MODEL.LOSSES.CE.EPSILON = 0.0
    cfg.INPUT.update({"SIZE_TRAIN": [32, 32], "SIZE_TEST": [32, 32], "PADDING": 2})
    cfg.DATASETS.ROOT = os.fspath(data_root)
    cfg.DATASETS.SOURCES = SOURCES
    cfg.DATASETS.TARGETS = [TARGET]
    cfg.DATASETS.OFFICEHOME.SYNTHETIC.update(
        {"ENABLED": True, "IMAGES_PER_CLASS": images_per_class, "SIZE": 32}
    )
    cfg.DATALOADER.update({"SAMPLER": "random", "NUM_WORKERS": 0})
    cfg.SOLVER.update(
        {
            "OPTIMIZER": "Adam",
            "BASE_LR": 0.003,
            "IMS_PER_BATCH": 32,
            "MAX_EPOCHS": 16,
            "ITERS_PER_EPOCH": 0,
            "SCHEDULER": "cosine",
            "WARMUP_EPOCHS": 1,
            "WARMUP_FACTOR": 0.1,
            "LOG_PERIOD": 100,
            **solver,
        }
    )
    cfg.TEST.update({"EVAL_PERIOD": 8, "IMS_PER_BATCH": 128})
    cfg.OUTPUT_DIR = os.fspath(output_dir)
    return cfg


def test_short_run_beats_chance_on_the_unseen_domain(tmp_path):
    cfg = synthetic_cfg(tmp_path / "data", tmp_path / "run")
    trainer = Trainer(cfg)
    assert trainer.num_classes == 8 and trainer.task.data.train.num_domains == 3
    report = trainer.train()
    chance = 1 / 8
    target = report["targets"][TARGET]
    assert target["num_images"] == 8 * 16  # every image of the held-out style
    assert target["top1"] >= 2 * chance, report
    assert report["source_val_mean"]["top1"] >= 2 * chance, report
    # results.json: the per-target table, the mean, and the epoch chosen on the sources' val split.
    with open(tmp_path / "run" / "results.json", encoding="utf-8") as f:
        written = json.load(f)
    assert written["task"] == "classification" and written["mean"]["top1"] == target["top1"]
    assert set(written["source_val"]) == set(SOURCES)
    assert written["selected"]["epoch"] in (8, 16) and written["checkpoint"]["sha256"]
    best = load_checkpoint(tmp_path / "run" / "best.pth")
    assert best["epoch"] == written["selected"]["epoch"] and best["selected"] == written["selected"]

    # --eval-only on best.pth reproduces the selected epoch's target accuracy.
    cfg.defrost()
    cfg.MODEL.WEIGHTS = str(tmp_path / "run" / "best.pth")
    cfg.OUTPUT_DIR = str(tmp_path / "eval")
    again = evaluate_checkpoint(cfg)
    assert again["targets"][TARGET]["top1"] == pytest.approx(written["selected"]["targets"][TARGET]["top1"])


def test_resume_keeps_the_selection_and_matches_an_uninterrupted_run(tmp_path):
    def cfg(output):
        c = synthetic_cfg(
            tmp_path / "data", tmp_path / output, images_per_class=6, MAX_EPOCHS=2, ITERS_PER_EPOCH=2
        )
        c.SOLVER.update({"IMS_PER_BATCH": 8, "WARMUP_EPOCHS": 0})
        c.TEST.EVAL_PERIOD = 1
        return c

    full = Trainer(cfg("whole"))
    full_report = full.train()
    with pytest.raises(Interrupted):
        StopAfterFirstEpoch(cfg("parts")).train()
    assert load_checkpoint(tmp_path / "parts" / "last.pth")["selected"]["epoch"] == 1
    resumed = Trainer(cfg("parts"), resume=True)
    resumed_report = resumed.train()
    assert resumed.loss_history == full.loss_history[2:]  # identical floats
    assert resumed_report["targets"] == full_report["targets"]
    assert resumed_report["selected"] == full_report["selected"]


def test_eval_only_refuses_a_checkpoint_of_another_class_count(tmp_path):
    cfg = synthetic_cfg(tmp_path / "data", tmp_path / "run", images_per_class=2)
    torch.save({"model": {"w": torch.zeros(1)}, "num_classes": 65}, tmp_path / "other.pth")
    cfg.MODEL.WEIGHTS = str(tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="65-class classifier but the configured data has 8 classes"):
        evaluate_checkpoint(cfg)
    cfg.MODEL.WEIGHTS = ""
    with pytest.raises(CheckpointError, match="needs MODEL.WEIGHTS"):
        evaluate_checkpoint(cfg)


def test_resume_takes_the_selection_of_a_best_checkpoint_newer_than_last(tmp_path):
    # CHECKPOINT_PERIOD 2, EVAL_PERIOD 1, source val accuracy rising every epoch: epoch 3 writes best.pth
    # but not last.pth (epoch 2) and the run stops. The resumed run must report epoch 3 as selected, the
    # epoch best.pth holds, not last.pth's older record.
    class RisingVal(Trainer):
        def evaluate(self):
            report = super().evaluate()
            report["source_val_mean"] = {"top1": self.epoch / 10}
            return report

    class StopAfterBestOfEpochThree(RisingVal):
        def save(self, name):
            path = super().save(name)
            if name == "best.pth" and self.epoch == 3:
                raise Interrupted
            return path

    def cfg():
        c = synthetic_cfg(
            tmp_path / "data",
            tmp_path / "run",
            images_per_class=6,
            MAX_EPOCHS=4,
            ITERS_PER_EPOCH=1,
            CHECKPOINT_PERIOD=2,
        )
        c.SOLVER.update({"IMS_PER_BATCH": 8, "WARMUP_EPOCHS": 0})
        c.TEST.EVAL_PERIOD = 1
        return c

    with pytest.raises(Interrupted):
        StopAfterBestOfEpochThree(cfg()).train()
    assert load_checkpoint(tmp_path / "run" / "last.pth")["selected"]["epoch"] == 2
    resumed = RisingVal(cfg(), resume=True)
    assert resumed.selected["epoch"] == 3 and resumed.best_metric == pytest.approx(0.3)
    report = resumed.train()
    assert report["selected"]["epoch"] == 4  # epoch 4 is better still (0.4)
    assert load_checkpoint(tmp_path / "run" / "best.pth")["epoch"] == 4
