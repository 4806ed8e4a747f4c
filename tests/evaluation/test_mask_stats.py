"""Mask diagnostics: hand-made masks against numbers worked out by hand and numpy, hooks on a real model."""

import json

import numpy as np
import pytest
import torch

from reid_dff.config import get_cfg
from reid_dff.evaluation.mask_stats import (
    MASK_STATS_FILE,
    MaskStatistics,
    evenly_spaced,
    log_mask_stats,
    mask_statistics,
    write_mask_stats,
)
from reid_dff.modeling import build_backbone
from reid_dff.modeling.backbones import FourierUnit, FrequencyMask

# Three instances, two positions; instances 0 and 1 come from domain 0, instance 2 from domain 1.
MASKS = np.array([[0.2, 0.6], [0.4, 0.6], [0.9, 0.3]])
DOMAINS = np.array([0, 0, 1])


def stats_of(masks, domains=None, has_dc=False, batches=1):
    acc = MaskStatistics(has_dc=has_dc)
    masks = torch.as_tensor(masks)
    domains = None if domains is None else torch.as_tensor(domains)
    for rows in np.array_split(np.arange(len(masks)), batches):
        acc.update(masks[rows], None if domains is None else domains[rows])
    return acc.result()


def test_constant_mask_has_zero_instance_spread():
    mask = torch.tensor([[0.1, 0.5], [0.7, 0.3]])  # varies over positions, not over instances
    result = stats_of(mask.expand(5, 2, 2), has_dc=True)
    assert result["instance_spread"] == pytest.approx(0.0, abs=1e-12)
    assert result["mean"] == pytest.approx(0.4)
    assert result["frequency_spread"] == pytest.approx(np.std([0.1, 0.5, 0.7, 0.3]))
    assert result["dc"] == pytest.approx(0.1)
    assert result["domain_difference"] is None  # one domain
    assert result["near_half"] == pytest.approx(0.25)  # 0.5 only
    assert result["instances"] == 5 and result["shape"] == [2, 2]


@pytest.mark.parametrize("batches", [1, 2, 3])
def test_instance_and_domain_spread_by_hand(batches):
    result = stats_of(MASKS, DOMAINS, batches=batches)
    # position 0: 0.2 0.4 0.9, mean 0.5, variance (0.09 + 0.01 + 0.16) / 3; position 1: 0.6 0.6 0.3,
    # mean 0.5, variance (0.01 + 0.01 + 0.04) / 3
    by_hand = (np.sqrt(0.26 / 3) + np.sqrt(0.06 / 3)) / 2
    assert result["instance_spread"] == pytest.approx(by_hand)
    assert result["instance_spread"] == pytest.approx(MASKS.std(axis=0).mean())
    assert result["mean"] == pytest.approx(0.5)
    assert result["frequency_spread"] == pytest.approx(0.0)  # both positions average 0.5
    # domain means: [0.3, 0.6] and [0.9, 0.3] -> |differences| 0.6 and 0.3
    assert result["domain_difference"] == pytest.approx(0.45)
    assert result["dc"] is None


def test_domain_difference_is_the_largest_pairwise_gap():
    masks = np.array([[0.1], [0.5], [0.8], [0.2]])
    result = stats_of(masks, [0, 1, 2, 0])
    # domain means 0.15, 0.5, 0.8: the largest pairwise gap is 0.8 - 0.15
    assert result["domain_difference"] == pytest.approx(0.65)


def test_changing_shape_is_refused():
    acc = MaskStatistics()
    acc.update(torch.zeros(2, 1, 4, 3))
    with pytest.raises(ValueError, match=r"mask shape changed from \(1, 4, 3\) to \(1, 2, 2\)"):
        acc.update(torch.zeros(2, 1, 2, 2))


def tiny_dff(init="zeros"):
    cfg = get_cfg()
    cfg.MODEL.BACKBONE = "dff_resnet18"
    cfg.MODEL.DFF.FILTER = "ins_spatial"
    cfg.MODEL.DFF.MASK_INIT = init
    cfg.INPUT.SIZE_TRAIN = [64, 32]
    return build_backbone(cfg)


def test_hooks_on_a_real_model_give_one_entry_per_fourier_unit():
    torch.manual_seed(0)
    model = tiny_dff()
    units = [n for n, m in model.named_modules() if isinstance(m, FourierUnit)]
    images = torch.randn(6, 3, 64, 32)
    stats = mask_statistics(
        model, [(images[:4], torch.tensor([0, 0, 1, 1])), (images[4:], torch.tensor([2, 2]))]
    )
    assert sorted(stats["units"]) == sorted(f"{u}.spectrum_filter.mask" for u in units) and len(units) > 0
    assert stats["images"] == 6 and stats["domains"] == [0, 1, 2]
    for unit in stats["units"].values():
        assert unit["instances"] == 6 and unit["shape"][0] == 1
        # zero init: every mask is 0.5, the same for every instance and domain
        assert unit["mean"] == pytest.approx(0.5) and unit["instance_spread"] == pytest.approx(0.0, abs=1e-7)
        assert unit["domain_difference"] == pytest.approx(0.0, abs=1e-7) and unit["near_half"] == 1.0
    assert model.training and not any(m._forward_hooks for m in model.modules())

    moved = tiny_dff("normal")
    with torch.no_grad():
        for m in moved.modules():
            if isinstance(m, FrequencyMask):
                m.conv.weight.normal_(std=0.3)
    stats = mask_statistics(moved, [images], max_images=5)
    assert stats["images"] == 5 and stats["summary"]["instance_spread"] > 1e-3
    assert stats["summary"]["domain_difference"] is None


class RecordingWriter:
    def __init__(self):
        self.scalars = {}

    def add_scalar(self, tag, value, step):
        self.scalars[tag] = (value, step)


def test_write_mask_stats_writes_json_and_scalars(tmp_path):
    model = tiny_dff()
    batches = [{"images": torch.randn(3, 3, 64, 32), "domains": torch.tensor([0, 1, 1])}]
    writer = RecordingWriter()
    stats = write_mask_stats(model, batches, tmp_path, writer, step=7)
    on_disk = json.loads((tmp_path / MASK_STATS_FILE).read_text())
    assert on_disk["step"] == 7 and on_disk["units"].keys() == stats["units"].keys()
    assert writer.scalars["mask/instance_spread"] == (pytest.approx(0.0, abs=1e-7), 7)
    name = next(iter(stats["units"]))
    assert writer.scalars[f"mask/{name}/mean"] == (pytest.approx(0.5), 7)
    assert "mask/dc" in writer.scalars


def test_no_mask_modules_writes_nothing(tmp_path):
    cfg = get_cfg()
    cfg.MODEL.BACKBONE = "resnet18"
    model = build_backbone(cfg)
    assert write_mask_stats(model, [torch.randn(1, 3, 64, 32)], tmp_path, RecordingWriter()) is None
    assert not (tmp_path / MASK_STATS_FILE).exists()


def test_log_mask_stats_skips_undefined_values():
    writer = RecordingWriter()
    stats = {"summary": {"mean": 0.5, "dc": None}, "units": {"u": {k: None for k in ("mean", "dc")}}}
    stats["units"]["u"].update(
        frequency_spread=0.1, instance_spread=0.2, domain_difference=None, near_half=1.0
    )
    log_mask_stats(stats, writer, 3)
    assert set(writer.scalars) == {
        "mask/mean",
        "mask/u/frequency_spread",
        "mask/u/instance_spread",
        "mask/u/near_half",
    }


def test_evenly_spaced_keeps_every_domain():
    samples = [("a", i) for i in range(10)] + [("b", i) for i in range(10)]
    chosen = evenly_spaced(samples, 4)
    assert len(chosen) == 4 and {s[0] for s in chosen} == {"a", "b"}
    assert evenly_spaced(samples, 100) == samples
