"""SOLVER.REFERENCE_BATCH (linear LR scaling), SOLVER.AMP_DTYPE, top-5 accuracy and float32 FFTs under
CPU bf16 autocast."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reid_dff.config import ConfigError, get_cfg
from reid_dff.engine.amp import resolve_amp_dtype
from reid_dff.engine.optim import base_lr, build_optimizer, build_scheduler
from reid_dff.tasks.classification.evaluation import evaluate_classification


@pytest.mark.parametrize(
    ("reference", "batch", "expected"), [(0, 1024, 0.1), (256, 1024, 0.4), (256, 64, 0.025)]
)
def test_reference_batch_scales_the_learning_rate_linearly(reference, batch, expected):
    cfg = get_cfg()
    cfg.SOLVER.update(
        {"OPTIMIZER": "SGD", "BASE_LR": 0.1, "IMS_PER_BATCH": batch, "REFERENCE_BATCH": reference}
    )
    cfg.SOLVER.update({"WARMUP_EPOCHS": 0, "SCHEDULER": "multistep", "STEPS": [100]})
    assert base_lr(cfg) == pytest.approx(expected)
    optimizer = build_optimizer(cfg, nn.Linear(2, 2))
    build_scheduler(cfg, optimizer, iters_per_epoch=10)
    assert all(g["lr"] == pytest.approx(expected) for g in optimizer.param_groups)


def test_a_negative_reference_batch_is_a_config_error():
    cfg = get_cfg()
    cfg.SOLVER.REFERENCE_BATCH = -1
    with pytest.raises(ConfigError, match="REFERENCE_BATCH"):
        base_lr(cfg)


def test_amp_dtype_is_none_off_cuda_and_checked():
    cfg = get_cfg()
    for choice in ("auto", "bf16", "fp16"):
        cfg.SOLVER.AMP_DTYPE = choice
        assert resolve_amp_dtype(cfg, torch.device("cpu")) is None
    cfg.SOLVER.AMP = False
    cfg.SOLVER.AMP_DTYPE = "bf16"
    assert resolve_amp_dtype(cfg, torch.device("cuda")) is None
    cfg.SOLVER.AMP = True
    assert resolve_amp_dtype(cfg, torch.device("cuda")) is torch.bfloat16
    cfg.SOLVER.AMP_DTYPE = "fp16"
    assert resolve_amp_dtype(cfg, torch.device("cuda")) is torch.float16
    cfg.SOLVER.AMP_DTYPE = "half"
    with pytest.raises(ConfigError, match="AMP_DTYPE"):
        resolve_amp_dtype(cfg, torch.device("cpu"))


class FixedLogits(nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, images):
        return self.logits[images[:, 0, 0, 0].long()]


def test_top5_counts_the_label_among_the_five_highest_logits():
    torch.manual_seed(0)
    logits = torch.randn(20, 8)
    labels = torch.randint(0, 8, (20,))
    # Independent reference: the rank of the label's logit (0 = highest) is below k.
    rank = (logits > logits[torch.arange(20), labels][:, None]).sum(dim=1)
    images = torch.arange(20.0)[:, None, None, None].expand(20, 3, 2, 2)
    loader = [{"images": images[:12], "pids": labels[:12]}, {"images": images[12:], "pids": labels[12:]}]
    result = evaluate_classification(FixedLogits(logits), loader, "cpu", topk=(1, 5))
    assert result["num_correct"] == int((rank == 0).sum())
    assert result["num_correct_top5"] == int((rank < 5).sum())
    assert result["top5"] == pytest.approx(float((rank < 5).float().mean()))


def test_the_fourier_unit_transforms_in_float32_under_cpu_bf16_autocast(monkeypatch):
    from reid_dff.modeling.backbones import ffc
    from reid_dff.modeling.backbones.filters import FilterSettings

    seen = []
    rfft2 = torch.fft.rfft2

    def spy(x, *args, **kwargs):
        seen.append((x.dtype, torch.is_autocast_enabled("cpu")))
        return rfft2(x, *args, **kwargs)

    monkeypatch.setattr(torch.fft, "rfft2", spy)
    unit = ffc.FourierUnit(4, (8, 8), FilterSettings()).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = unit(torch.randn(2, 4, 8, 8))
    assert seen == [(torch.float32, False)]
    assert torch.isfinite(out.float()).all()
