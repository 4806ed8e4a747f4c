"""The two-stage helpers: a pinned stage-1 checkpoint's path follows its content, the load check refuses a
file that does not initialize the backbone as is, and the table and schedule lines say what was run."""

import hashlib
import os

import pytest
import torch

from reid_dff.config import get_cfg
from reid_dff.errors import ReidDffError
from reid_dff.experiments import (
    TwoStageError,
    check_stage1_load,
    describe_schedule,
    format_two_stage_table,
    pin_checkpoint,
)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_a_pinned_checkpoint_is_named_by_its_content_and_survives_a_rerun(tmp_path):
    source = tmp_path / "run" / "last.pth"
    source.parent.mkdir()
    source.write_bytes(b"first stage-1 checkpoint")
    folder = tmp_path / "pinned"
    first, digest = pin_checkpoint(str(source), str(folder), "dff")
    assert digest == sha256(source) and os.path.basename(first) == f"dff-{digest[:16]}.pth"
    assert sha256(first) == digest
    assert pin_checkpoint(str(source), str(folder), "dff") == (first, digest)  # same content, same path

    other, other_digest = pin_checkpoint(str(source), str(folder), "base")  # another model keeps its own
    # Stage 1 reruns: the sweep deletes its folder and writes a new last.pth.
    source.unlink()
    source.write_bytes(b"second stage-1 checkpoint")
    second, second_digest = pin_checkpoint(str(source), str(folder), "dff")
    assert second != first and second_digest == sha256(source) != digest
    assert sha256(second) == second_digest
    assert sorted(os.listdir(folder)) == sorted([os.path.basename(second), os.path.basename(other)])
    assert sha256(other) == other_digest == digest  # the base pin still holds the first content


def reid_cfg(backbone, path):
    cfg = get_cfg()
    cfg.MODEL.BACKBONE = backbone
    cfg.INPUT.SIZE_TRAIN = [64, 32]
    cfg.MODEL.PRETRAIN_PATH = str(path)
    return cfg


def test_the_load_check_refuses_a_sliced_torchvision_file(tmp_path):
    import torchvision

    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(TwoStageError) as info:
        check_stage1_load(reid_cfg("ffc_resnet18", path))
    message = str(info.value)
    assert isinstance(info.value, ReidDffError) and "\n" not in message
    assert "torchvision file, not a reid-dff checkpoint" in message and "sliced" in message
    # The same file into a plain ResNet-18 is still not a stage-1 checkpoint.
    with pytest.raises(TwoStageError, match="torchvision file"):
        check_stage1_load(reid_cfg("resnet18", path))


def test_the_schedule_line_and_the_table():
    cfg = get_cfg()
    cfg.SOLVER.update({"MAX_EPOCHS": 24, "ITERS_PER_EPOCH": 40, "IMS_PER_BATCH": 48, "BASE_LR": 0.001})
    cfg.SOLVER.update({"SCHEDULER": "cosine", "WARMUP_EPOCHS": 1})
    cfg.INPUT.SIZE_TRAIN = [64, 32]
    assert describe_schedule(cfg.to_dict()) == (
        "24 epochs x 40 iterations of 48 images at 64x32, Adam lr 0.001 (cosine, 1 warm-up epochs)"
    )
    rows = [
        {"label": "DFF", "init": "from scratch", "stage1_top1": None, "mAP": [0.4, 0.5], "R1": [0.6, 0.8]},
        {"label": "DFF", "init": "from stage 1", "stage1_top1": 0.4567, "mAP": [0.55], "R1": [0.7]},
    ]
    lines = format_two_stage_table(rows).splitlines()
    assert lines[2] == "| DFF | from scratch | - | 45.0 ± 7.1 | 70.0 ± 14.1 | 40.0 / 50.0 | 60.0 / 80.0 |"
    assert lines[3] == "| DFF | from stage 1 | 45.7 | 55.0 | 70.0 | 55.0 | 70.0 |"
