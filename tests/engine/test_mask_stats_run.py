"""A real tiny DFF run with TEST.MASK_STATS: the trainer writes mask_stats.json at its evaluation."""

import json

import pytest
from synthetic_run import tiny_run_cfg

from reid_dff.engine import Trainer
from reid_dff.modeling.backbones import FourierUnit

pytestmark = pytest.mark.e2e  # a training run


def test_training_writes_mask_stats_at_evaluation(tmp_path):
    cfg = tiny_run_cfg(tmp_path / "data", tmp_path / "run", MAX_EPOCHS=1, ITERS_PER_EPOCH=1)
    cfg.MODEL.BACKBONE = "dff_resnet18"
    cfg.DATASETS.SOURCES = ["synthetic:0", "synthetic:1"]
    cfg.TEST.MASK_STATS = True
    cfg.TEST.MASK_STATS_MAX_IMAGES = 6
    trainer = Trainer(cfg)
    try:
        trainer.train()
        units = sum(isinstance(m, FourierUnit) for m in trainer.model.modules())
    finally:
        trainer.close()
    stats = json.loads((tmp_path / "run" / "mask_stats.json").read_text())
    assert stats["step"] == 1 and stats["images"] == 6 and stats["domains"] == [0, 1]
    assert len(stats["units"]) == units > 0
    assert stats["summary"]["domain_difference"] is not None
