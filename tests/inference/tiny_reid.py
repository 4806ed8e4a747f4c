"""Tiny models, checkpoints and images shared by the inference and visualization tests."""

import os

import cv2
import numpy as np
import torch

from reid_dff.config import get_cfg
from reid_dff.modeling import build_model


def tiny_cfg(data_root: str = "datasets", backbone: str = "dff_resnet18"):
    """A small, CPU-only, single-process config at 64x32 (a tiny synthetic domain when generated)."""
    cfg = get_cfg()
    cfg.MODEL.BACKBONE = backbone
    cfg.MODEL.DEVICE = "cpu"
    cfg.INPUT.SIZE_TRAIN = [64, 32]
    cfg.INPUT.SIZE_TEST = [64, 32]
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.TEST.IMS_PER_BATCH = 16
    cfg.DATASETS.ROOT = data_root
    cfg.DATASETS.SOURCES = ["synthetic:0"]
    cfg.DATASETS.TARGETS = ["synthetic:0"]
    synthetic = cfg.DATASETS.SYNTHETIC
    synthetic.NUM_DOMAINS, synthetic.IDS_TRAIN, synthetic.IDS_TEST = 1, 2, 12
    synthetic.HEIGHT, synthetic.WIDTH, synthetic.CAMERAS, synthetic.IMAGES_PER_CAMERA = 64, 32, 3, 2
    return cfg


def save_tiny_checkpoint(path, cfg, seed: int = 0, num_classes: int = 7) -> str:
    """A randomly initialised model of ``cfg`` saved as a reid-dff checkpoint (``model`` + ``cfg`` keys)."""
    torch.manual_seed(seed)
    model = build_model(cfg, num_classes)
    # Random BN statistics, so that eval-mode embeddings differ between images (fresh BN is the identity).
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    torch.save({"model": model.state_dict(), "cfg": cfg.dump(), "num_classes": num_classes}, path)
    return os.fspath(path)


def write_market_images(folder, names, seed=0, size=(80, 40)):
    """JPEG files with Market-style names and random pixels; returns their paths."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for name in names:
        path = os.path.join(folder, name)
        cv2.imwrite(path, rng.integers(0, 256, (*size, 3), dtype=np.uint8))
        paths.append(path)
    return paths
