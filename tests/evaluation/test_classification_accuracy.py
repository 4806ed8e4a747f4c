"""Classification accuracy against torchreid's ``accuracy`` and hand-computed values; the report table."""

import pytest
import torch
from torch import nn

from reid_dff.tasks.classification.evaluation import (
    evaluate_classification,
    format_classification_markdown,
    format_leave_one_domain_out_table,
)

metrics = pytest.importorskip("torchreid.reid.metrics")


class LookupClassifier(nn.Module):
    """Returns a fixed logit row per image; the image's first pixel carries its row index."""

    def __init__(self, logits):
        super().__init__()
        self.register_buffer("table", logits)
        self.bn = nn.BatchNorm1d(1)  # a mode-dependent layer, to check the caller's mode is restored

    def forward(self, images):
        logits = self.table[images[:, 0, 0, 0].long()]
        return logits if not self.training else {"logits": logits}


def loader_of(labels, batch_size):
    batches = []
    for start in range(0, len(labels), batch_size):
        rows = torch.arange(start, min(start + batch_size, len(labels)))
        images = torch.zeros(len(rows), 3, 4, 4)
        images[:, 0, 0, 0] = rows.float()
        batches.append({"images": images, "pids": labels[rows], "paths": [f"{i}.jpg" for i in rows.tolist()]})
    return batches


@pytest.mark.parametrize("num_images, num_classes, batch_size", [(37, 5, 8), (64, 65, 64), (3, 2, 1)])
def test_top1_matches_torchreid(num_images, num_classes, batch_size):
    gen = torch.Generator().manual_seed(num_images)
    logits = torch.randn(num_images, num_classes, generator=gen)
    labels = torch.randint(0, num_classes, (num_images,), generator=gen)
    labels[: num_images // 2] = logits[: num_images // 2].argmax(1)  # make about half of them right
    model = LookupClassifier(logits).train()
    result = evaluate_classification(model, loader_of(labels, batch_size), "cpu")
    assert model.training
    (oracle,) = metrics.accuracy(logits, labels, topk=(1,))
    assert result["num_images"] == num_images
    assert result["top1"] == pytest.approx(float(oracle) / 100.0)
    assert result["num_correct"] == int((logits.argmax(1) == labels).sum())


def test_hand_computed_and_skipped_batches():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, -1.0]])
    labels = torch.tensor([0, 0, 0])
    batches = loader_of(labels, 2)
    batches.insert(1, {"num_skipped": 2})  # an all-bad batch as the loader would never yield, tolerated
    result = evaluate_classification(LookupClassifier(logits), batches, "cpu")
    assert result == {"top1": 2 / 3, "num_correct": 2, "num_images": 3}


def test_errors_name_the_problem():
    logits = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"do not fit the model's 3 classes"):
        evaluate_classification(LookupClassifier(logits), loader_of(torch.tensor([0, 1, 2, 3]), 4), "cpu")
    with pytest.raises(ValueError, match="no images"):
        evaluate_classification(LookupClassifier(logits), [], "cpu")

    class Embedder(nn.Module):
        def forward(self, images):
            return images.flatten(1)[:, :, None]

    with pytest.raises(ValueError, match=r"returned \(2, 48, 1\).*MODEL.TASK classification"):
        evaluate_classification(Embedder(), loader_of(torch.tensor([0, 1]), 2), "cpu")


def test_markdown_table_has_each_target_and_the_mean():
    report = {
        "sources": ["officehome:Clipart", "officehome:Product"],
        "source_val_mean": {"top1": 0.9},
        "targets": {
            "officehome:Art": {"top1": 0.5, "num_images": 10},
            "officehome:Real_World": {"top1": 0.25, "num_images": 20},
        },
        "mean": {"top1": 0.375},
        "selected": {
            "epoch": 3,
            "targets": {"officehome:Art": {"top1": 0.6}, "officehome:Real_World": {"top1": 0.2}},
            "mean": {"top1": 0.4},
        },
        "checkpoint": {"sha256": "ab" * 32},
    }
    text = format_classification_markdown(report)
    assert "source val top1: 90.0" in text and "sha256 abababababab" in text
    assert "| target | images | top1 (last) | top1 (selected: epoch 3) |" in text
    assert "| officehome:Art | 10 | 50.0 | 60.0 |" in text
    assert "| officehome:Real_World | 20 | 25.0 | 20.0 |" in text
    assert text.splitlines()[-1] == "| **mean** |  | 37.5 | 40.0 |"


def test_leave_one_domain_out_table_averages_the_selected_epochs():
    def report(target, last, selected):
        return {"targets": {target: {"top1": last}}, "selected": {"targets": {target: {"top1": selected}}}}

    runs = {
        "DFF": {"art": report("officehome:Art", 0.5, 0.6), "clipart": report("officehome:Clipart", 0.3, 0.2)},
        "Base": {"art": report("officehome:Art", 0.4, 0.4)},
    }
    lines = format_leave_one_domain_out_table(runs).splitlines()
    assert lines[0] == "| model | Art | Clipart | average |"
    assert lines[2] == "| DFF | 60.0 (50.0) | 20.0 (30.0) | 40.0 (40.0) |"
    assert lines[3] == "| Base | 40.0 (40.0) | - | - |"  # an incomplete row has no average
