"""A bad or lost training image in a real run (synthetic data, resnet18): found before training, and a
run that met one resumes without it instead of being trapped."""

import glob
import os
import shutil

import pytest
from synthetic_run import tiny_run_cfg

from reid_dff.data.build import build_train_set
from reid_dff.data.image_check import BadImagesError
from reid_dff.data.synthetic import ensure_synthetic_data
from reid_dff.engine import Trainer
from reid_dff.modeling.checkpoint import load_checkpoint

pytestmark = pytest.mark.e2e  # short training runs on synthetic data


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "data"
    ensure_synthetic_data(tiny_run_cfg(root, root / "unused"))
    return root


def training_images(data_root, tmp_path):
    return sorted(s.path for s in build_train_set(tiny_run_cfg(data_root, tmp_path / "unused")).samples)


def truncate(path):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


def test_a_truncated_image_stops_the_run_before_training_or_is_skipped(data_root, tmp_path):
    images = training_images(data_root, tmp_path)
    bad = images[5]
    truncate(bad)
    cfg = tiny_run_cfg(data_root, tmp_path / "run", MAX_EPOCHS=1)
    with pytest.raises(BadImagesError) as info:
        Trainer(cfg)
    assert str(info.value) == (
        f"1 of {len(images)} training images cannot be read: {bad} (truncated JPEG (no end-of-image marker))"
    )
    assert not os.path.exists(tmp_path / "run" / "last.pth")  # refused before training

    cfg.DATALOADER.ON_BAD_IMAGE = "skip"
    trainer = Trainer(cfg)
    assert len(trainer.train_set.samples) == len(images) - 1
    assert bad not in {s.path for s in trainer.train_set.samples}
    trainer.train()
    log = open(tmp_path / "run" / "log.txt").read()
    assert f"DATALOADER.ON_BAD_IMAGE skip: 1 of {len(images)} training images cannot be read: {bad}" in log


def market_copy_cfg(data_root, output_dir, **solver):
    """The tiny run with its source copied into a Market-1501 layout: a tree a user may delete files from
    (the synthetic tree refuses missing files against its manifest)."""
    market = os.path.join(data_root, "market1501")
    if not os.path.isdir(market):
        domain = os.path.join(data_root, "synthetic", "domain0")
        for folder in ("bounding_box_train", "query", "bounding_box_test"):
            shutil.copytree(os.path.join(domain, folder), os.path.join(market, folder))
    cfg = tiny_run_cfg(data_root, output_dir, **solver)
    cfg.DATASETS.SOURCES = ["market1501"]
    return cfg


def test_a_run_that_meets_a_bad_image_then_loses_a_file_resumes_and_trains(data_root, tmp_path):
    run = tmp_path / "run"
    Trainer(market_copy_cfg(data_root, run, MAX_EPOCHS=1)).train()
    images = sorted(s.path for s in build_train_set(market_copy_cfg(data_root, run)).samples)

    # the trap of issue 18: a file goes bad after the run started; the resume may switch to skip
    bad = images[3]
    truncate(bad)
    with pytest.raises(BadImagesError, match=f"1 of {len(images)} training images cannot be read: {bad}"):
        Trainer(market_copy_cfg(data_root, run, MAX_EPOCHS=2), resume=True)
    skip = market_copy_cfg(data_root, run, MAX_EPOCHS=2)
    skip.DATALOADER.ON_BAD_IMAGE = "skip"
    resumed = Trainer(skip, resume=True)
    assert (resumed.epoch, resumed.train_loader.batch_sampler.step) == (1, 3)
    resumed.train()
    assert load_checkpoint(run / "last.pth")["epoch"] == 2

    # ... and deleting files (the other remedy the error names) resumes too, with "error" again
    os.remove(bad)
    deleted = images[7]
    os.remove(deleted)
    again = Trainer(market_copy_cfg(data_root, run, MAX_EPOCHS=3), resume=True)
    assert (again.epoch, again.train_loader.batch_sampler.step) == (2, 6)
    assert len(again.train_set.samples) == len(images) - 2
    again.train()
    state = load_checkpoint(run / "last.pth")
    assert (state["epoch"], state["iteration"]) == (3, 9)
    assert len(state["train_images"]) == len(images) - 2
    log = open(run / "log.txt").read()
    # the resume names the file the checkpoint's run had and this one lacks (relative to DATASETS.ROOT)
    assert (
        f"1 training image(s) of the checkpoint's run are no longer in the training set (deleted, or left out as unreadable): {os.path.relpath(deleted, data_root)};"
        in log
    )
    assert "the training data changed since the sampler state was taken" in log
    assert glob.glob(str(run / ".*.tmp")) == []
