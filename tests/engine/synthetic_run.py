"""A tiny real run for engine tests: small synthetic domains, resnet18 at 64x32, a few iterations."""

import os

from reid_dff.config import get_cfg

# Small enough to generate in ~1 s and train a few iterations in seconds on one core.
TINY_SYNTHETIC = {
    "SEED": 0,
    "NUM_DOMAINS": 2,
    "IDS_TRAIN": 8,
    "IDS_TEST": 4,
    "HEIGHT": 64,
    "WIDTH": 32,
    "CAMERAS": 2,
    "IMAGES_PER_CAMERA": 2,
}


def tiny_run_cfg(data_root, output_dir, **solver):
    """Config of a short CPU run: source synthetic:0, target synthetic:1 (unfrozen, for tests to adjust)."""
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.BACKBONE = "resnet18"
    cfg.OUTPUT_DIR = os.fspath(output_dir)
    cfg.DATASETS.ROOT = os.fspath(data_root)
    cfg.DATASETS.SOURCES = ["synthetic:0"]
    cfg.DATASETS.TARGETS = ["synthetic:1"]
    cfg.DATASETS.SYNTHETIC.update(TINY_SYNTHETIC)
    cfg.INPUT.SIZE_TRAIN = [64, 32]
    cfg.INPUT.SIZE_TEST = [64, 32]
    cfg.INPUT.PADDING = 4
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.TEST.IMS_PER_BATCH = 32
    cfg.TEST.EVAL_PERIOD = 0
    cfg.SOLVER.update(
        {
            "IMS_PER_BATCH": 8,
            "ITERS_PER_EPOCH": 3,
            "MAX_EPOCHS": 2,
            "BASE_LR": 0.001,
            "WARMUP_EPOCHS": 0,
            "SCHEDULER": "multistep",
            "STEPS": [100],
            "LOG_PERIOD": 3,
            **solver,
        }
    )
    return cfg
