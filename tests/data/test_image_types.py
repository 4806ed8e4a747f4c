"""Market-style folders of every image type OpenCV decodes; a folder of unreadable types is named."""

import os

import cv2
import numpy as np
import pytest

from reid_dff.data import build_test_loader, build_train_set
from reid_dff.data.datasets import DatasetLayoutError, build_dataset
from reid_dff.data.datasets.base import parse_market_dir

SUFFIXES = (".bmp", ".tif", ".tiff", ".webp", ".png", ".jpg")


def write_images(folder, names, seed=0):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        assert cv2.imwrite(os.path.join(folder, name), rng.integers(0, 256, (16, 8, 3), dtype=np.uint8))


def market_tree(root, suffix=".bmp"):
    """``root/bmp`` with 2 identities x 2 cameras in train, query and gallery, all ``suffix`` files."""
    names = [f"{pid:04d}_c{cam}s1_00000{i}_00{suffix}" for pid in (1, 2) for cam in (1, 2) for i in (1, 2)]
    write_images(root / "bmp" / "bounding_box_train", names)
    write_images(root / "bmp" / "query", [n for n in names if "_c1" in n and n.endswith(f"1_00{suffix}")], 1)
    write_images(root / "bmp" / "bounding_box_test", [n for n in names if "_c2" in n], 2)
    return names


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_parse_market_dir_reads_every_opencv_type(tmp_path, suffix):
    names = [f"0001_c1s1_00000{i}_00{suffix}" for i in range(3)] + ["-1_c2s1_000001_00" + suffix]
    write_images(tmp_path, names)
    samples = parse_market_dir(str(tmp_path))
    assert sorted(os.path.basename(s.path) for s in samples) == sorted(names[:3])
    assert {(s.pid, s.camid) for s in samples} == {(1, 0)}


def test_a_bmp_image_folder_trains_and_evaluates(tmp_path):
    from reid_dff.config import get_cfg

    market_tree(tmp_path)
    ds = build_dataset("image_folder:bmp", str(tmp_path))
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (8, 2, 4)
    cfg = get_cfg()
    cfg.DATASETS.ROOT = str(tmp_path)
    cfg.DATASETS.SOURCES = ["image_folder:bmp"]
    cfg.INPUT.SIZE_TEST = [16, 8]
    cfg.DATALOADER.NUM_WORKERS = 0
    train = build_train_set(cfg)
    assert len(train.samples) == 8 and train.num_classes == 2
    batch = next(iter(build_test_loader(cfg, ds.query + ds.gallery)))
    assert batch["images"].shape == (6, 3, 16, 8)


@pytest.mark.e2e  # a training run
def test_a_bmp_image_folder_runs_through_the_trainer(tmp_path):
    from reid_dff.config import get_cfg
    from reid_dff.engine import Trainer

    market_tree(tmp_path / "data")
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.BACKBONE = "resnet18"
    cfg.OUTPUT_DIR = str(tmp_path / "run")
    cfg.DATASETS.ROOT = str(tmp_path / "data")
    cfg.DATASETS.SOURCES = ["image_folder:bmp"]
    cfg.DATASETS.TARGETS = ["image_folder:bmp"]
    cfg.INPUT.SIZE_TRAIN = cfg.INPUT.SIZE_TEST = [32, 16]
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.DATALOADER.NUM_INSTANCES = 2
    cfg.TEST.EVAL_PERIOD = 0
    cfg.SOLVER.update({"IMS_PER_BATCH": 4, "ITERS_PER_EPOCH": 1, "MAX_EPOCHS": 1, "WARMUP_EPOCHS": 0})
    trainer = Trainer(cfg)
    try:
        report = trainer.train()
    finally:
        trainer.close()
    assert 0.0 <= report["mean"]["mAP"] <= 1.0 and os.path.exists(tmp_path / "run" / "results.json")


def test_a_folder_of_unreadable_types_names_its_files(tmp_path):
    folder = tmp_path / "gif" / "bounding_box_train"
    names = [f"0001_c1s1_{i:06d}_00.gif" for i in range(12)] + ["notes.xyz"]
    os.makedirs(folder)
    for name in names:
        (folder / name).write_bytes(b"GIF89a")
    (folder / ".DS_Store").write_bytes(b"")
    with pytest.raises(DatasetLayoutError, match=r"found 13 files but none of a readable image type") as info:
        parse_market_dir(str(folder))
    message = str(info.value)
    assert str(folder) in message and "0001_c1s1_000000_00.gif, 0001_c1s1_000001_00.gif" in message
    assert ".DS_Store" not in message and message.endswith(", ...")  # 10 named, the rest counted
    with pytest.raises(DatasetLayoutError, match="none of a readable image type"):
        build_dataset("image_folder:gif", str(tmp_path))


def test_identity_folders_of_unreadable_types_name_their_files(tmp_path):
    folder = tmp_path / "mine" / "train" / "alice"
    os.makedirs(folder)
    (folder / "a.gif").write_bytes(b"GIF89a")
    with pytest.raises(DatasetLayoutError, match=r"alice: found 1 files but none of a readable .*: a\.gif$"):
        build_dataset("image_folder:mine", str(tmp_path))


def test_an_empty_folder_is_not_an_unreadable_one(tmp_path):
    assert parse_market_dir(str(tmp_path)) == []
