"""The imagenet task (stage-1 pre-training) end to end on a tiny fake ImageNet tree: the recipe config
trains through the CLI and reports val top-1/top-5, two gloo ranks train in lockstep on disjoint shards,
and a run resumed at an epoch boundary ends with the uninterrupted run's weights."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from interrupted import Interrupted, StopAfterFirstEpoch
from PIL import Image

from reid_dff.cli.train_net import main
from reid_dff.config import setup_cfg
from reid_dff.engine import Trainer, launch
from reid_dff.modeling.checkpoint import load_checkpoint

pytestmark = pytest.mark.e2e  # trainings

CONFIG = "configs/imagenet/dff_resnet18.yaml"
WNIDS = ["n01440764", "n01443537", "n01484850"]


def make_fake_imagenet(root, train_per_class: int = 4, val_per_class: int = 2) -> str:
    """``root/imagenet/{train,val}/<wnid>/*.JPEG`` (the class-folder val layout), random 40x40 images."""
    rng = np.random.default_rng(0)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for wnid in WNIDS:
            folder = os.path.join(root, "imagenet", split, wnid)
            os.makedirs(folder, exist_ok=True)
            for k in range(count):
                pixels = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(os.path.join(folder, f"{wnid}_{split}_{k}.JPEG"))
    return str(root)


def overrides(data_root, output_dir, epochs: int = 1, iters: int = 2, batch: int = 4) -> list[str]:
    return [
        "DATASETS.ROOT", str(data_root),
        "OUTPUT_DIR", str(output_dir),
        "MODEL.DEVICE", "cpu",
        "INPUT.SIZE_TRAIN", "[32, 32]",
        "INPUT.SIZE_TEST", "[32, 32]",
        "SOLVER.MAX_EPOCHS", str(epochs),
        "SOLVER.ITERS_PER_EPOCH", str(iters),
        "SOLVER.IMS_PER_BATCH", str(batch),
        "SOLVER.WARMUP_EPOCHS", "0",
        "TEST.IMS_PER_BATCH", "4",
        "DATALOADER.NUM_WORKERS", "0",
    ]  # fmt: skip


def test_the_recipe_config_trains_and_reports_top1_and_top5(tmp_path, capsys):
    data = make_fake_imagenet(tmp_path / "data")
    out = tmp_path / "run"
    assert main(["--config-file", CONFIG, *overrides(data, out)]) == 0
    report = json.load(open(out / "results.json"))
    assert report["task"] == "imagenet" and report["num_classes"] == len(WNIDS)
    assert report["num_images"] == 2 * len(WNIDS)
    # With 3 classes every label is among the 5 highest logits; top-1 counts whole images.
    assert report["top5"] == 1.0 and report["num_correct_top5"] == report["num_images"]
    assert report["top1"] == report["num_correct"] / report["num_images"]
    assert report["selected"]["epoch"] == 1 and report["selected"]["top1"] == report["top1"]
    assert os.path.isfile(out / "best.pth")
    state = load_checkpoint(out / "last.pth")
    assert state["num_classes"] == len(WNIDS)
    # The model is backbone -> pooling -> linear: no BNNeck, a 3-way classifier.
    assert state["model"]["classifier.weight"].shape[0] == len(WNIDS)
    assert not any(k.startswith("neck.") for k in state["model"])


def test_channels_last_changes_only_the_memory_format(tmp_path):
    """MODEL.CHANNELS_LAST: the convolutions' weights are channels_last, and the first step (same weights,
    same batch) has the contiguous run's loss up to float rounding."""
    data = make_fake_imagenet(tmp_path / "data")
    trainers = []
    for flag in ("False", "True"):
        cfg = setup_cfg(CONFIG, [*overrides(data, tmp_path / flag, iters=1), "MODEL.CHANNELS_LAST", flag])
        trainer = Trainer(cfg)
        trainer.train()
        trainers.append(trainer)
    conv = trainers[1].model.backbone.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert trainers[0].model.backbone.conv1.weight.is_contiguous()
    first = [t.loss_history[0]["loss"] for t in trainers]
    assert first[1] == pytest.approx(first[0], rel=1e-4)


def test_resume_at_an_epoch_boundary_matches_an_uninterrupted_run(tmp_path):
    data = make_fake_imagenet(tmp_path / "data")
    whole = Trainer(setup_cfg(CONFIG, overrides(data, tmp_path / "whole", epochs=2)))
    whole.train()
    with pytest.raises(Interrupted):  # a 2-epoch run stopped after its first epoch's checkpoint
        StopAfterFirstEpoch(setup_cfg(CONFIG, overrides(data, tmp_path / "parts", epochs=2))).train()
    resumed = Trainer(setup_cfg(CONFIG, overrides(data, tmp_path / "parts", epochs=2)), resume=True)
    assert resumed.epoch == 1
    resumed.train()
    assert resumed.loss_history == whole.loss_history[2:]  # identical floats
    full, parts = whole.model.state_dict(), resumed.model.state_dict()
    assert full.keys() == parts.keys()
    for key in full:
        assert torch.equal(full[key], parts[key]), key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_on_rank(cfg, out_dir):
    trainer = Trainer(cfg)
    assert isinstance(trainer.model, torch.nn.parallel.DistributedDataParallel)
    trainer.train()
    torch.save(trainer.model.module.state_dict(), os.path.join(out_dir, f"weights_rank{trainer.rank}.pt"))


def worker(rank, world_size, port, cfg, out_dir):
    os.environ.update(
        {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world_size),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    torch.set_num_threads(1)
    launch(train_on_rank, cfg, out_dir)


def test_two_gloo_processes_train_the_imagenet_task_in_lockstep(tmp_path):
    data = make_fake_imagenet(tmp_path / "data")
    cfg = setup_cfg(CONFIG, overrides(data, tmp_path / "run", epochs=1, iters=2, batch=4))
    mp.spawn(worker, args=(2, free_port(), cfg, str(tmp_path)), nprocs=2, join=True)
    weights = [torch.load(tmp_path / f"weights_rank{r}.pt", weights_only=True) for r in (0, 1)]
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key
    report = json.load(open(tmp_path / "run" / "results.json"))
    assert report["task"] == "imagenet" and "top5" in report
    state = load_checkpoint(tmp_path / "run" / "last.pth")
    assert [s["rank"] for s in state["sampler_per_rank"]] == [0, 1]
    assert all(s["step"] == 2 for s in state["sampler_per_rank"])
