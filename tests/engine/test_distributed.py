"""Two CPU processes with gloo: DDP trains, the loss falls, and both ranks end with identical weights."""

import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from synthetic_run import tiny_run_cfg

from reid_dff.data.synthetic import ensure_synthetic_data
from reid_dff.engine import Trainer, launch
from reid_dff.modeling.checkpoint import load_checkpoint

pytestmark = pytest.mark.e2e  # DDP trainings in two processes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_on_rank(cfg, out_dir):
    trainer = Trainer(cfg)
    assert isinstance(trainer.model, torch.nn.parallel.DistributedDataParallel)
    report = trainer.train()
    rank = trainer.rank
    torch.save(trainer.model.module.state_dict(), os.path.join(out_dir, f"weights_rank{rank}.pt"))
    with open(os.path.join(out_dir, f"losses_rank{rank}.json"), "w") as f:
        json.dump([h["loss"] for h in trainer.loss_history], f)
    return report


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


def test_two_gloo_processes_train_in_lockstep(tmp_path):
    data_root = tmp_path / "data"
    # 16 images = 2 ranks x 2 identities x 4 images: each rank's batch has negatives for the triplet loss.
    cfg = tiny_run_cfg(
        data_root,
        tmp_path / "run",
        IMS_PER_BATCH=16,
        MAX_EPOCHS=2,
        ITERS_PER_EPOCH=4,
        BASE_LR=0.003,
    )
    ensure_synthetic_data(cfg)
    cfg.freeze()
    mp.spawn(worker, args=(2, free_port(), cfg, str(tmp_path)), nprocs=2, join=True)

    weights = [torch.load(tmp_path / f"weights_rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key
    for rank in (0, 1):
        losses = json.load(open(tmp_path / f"losses_rank{rank}.json"))
        assert len(losses) == 8
        assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses
    # Rank 0 alone evaluated and wrote the checkpoint, which holds both ranks' sampler positions.
    assert json.load(open(tmp_path / "run" / "results.json"))["targets"]["synthetic:1"]["mean"]["mAP"] > 0
    state = load_checkpoint(tmp_path / "run" / "last.pth")
    assert [s["rank"] for s in state["sampler_per_rank"]] == [0, 1]
    assert all(s["step"] == 8 for s in state["sampler_per_rank"])


def test_ddp_trains_with_the_triplet_loss_alone(tmp_path):
    # Without cross-entropy the BNNeck and classifier get no gradient; DDP must not wait for them.
    cfg = tiny_run_cfg(tmp_path / "data", tmp_path / "run", IMS_PER_BATCH=16, MAX_EPOCHS=1, ITERS_PER_EPOCH=3)
    cfg.MODEL.LOSSES.NAMES = ["triplet"]
    ensure_synthetic_data(cfg)
    cfg.freeze()
    mp.spawn(worker, args=(2, free_port(), cfg, str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        assert len(json.load(open(tmp_path / f"losses_rank{rank}.json"))) == 3
