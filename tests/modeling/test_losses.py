import math

import pytest
import torch

from reid_dff.config import ConfigError, get_cfg
from reid_dff.modeling.losses import (
    CrossEntropyLabelSmooth,
    TripletLoss,
    build_losses,
    pairwise_distance,
)


def brute_force_smoothed_ce(logits, targets, epsilon):
    total = 0.0
    for row, label in zip(logits.tolist(), targets.tolist()):
        log_z = math.log(sum(math.exp(v) for v in row))
        n = len(row)
        for k, v in enumerate(row):
            q = (1 - epsilon) * (k == label) + epsilon / n
            total -= q * (v - log_z)
    return total / len(targets)


def brute_force_distance(a, b, metric):
    if metric == "euclidean":
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))
    dot = sum(x * y for x, y in zip(a, b))
    return 1 - dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def brute_force_batch_hard(features, targets, margin, metric):
    feats, labels = features.tolist(), targets.tolist()
    terms = []
    for i, anchor in enumerate(feats):
        pos = [brute_force_distance(anchor, f, metric) for f, lab in zip(feats, labels) if lab == labels[i]]
        neg = [brute_force_distance(anchor, f, metric) for f, lab in zip(feats, labels) if lab != labels[i]]
        if not neg:
            continue
        gap = max(pos) - min(neg)
        terms.append(max(0.0, gap + margin) if margin > 0 else math.log1p(math.exp(gap)))
    return sum(terms) / len(terms)


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.3])
def test_smoothed_cross_entropy_matches_brute_force(epsilon):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 5, generator=g, dtype=torch.float64) * 3
    targets = torch.tensor([0, 4, 2, 2, 1, 3])
    got = CrossEntropyLabelSmooth(epsilon)(logits, targets).item()
    assert got == pytest.approx(brute_force_smoothed_ce(logits, targets, epsilon), rel=1e-6)


def test_smoothed_cross_entropy_matches_torchreid_and_torch():
    from torchreid.reid.losses import CrossEntropyLoss

    logits = torch.randn(8, 7, generator=torch.Generator().manual_seed(1))
    targets = torch.randint(0, 7, (8,), generator=torch.Generator().manual_seed(2))
    ours = CrossEntropyLabelSmooth(0.1)(logits, targets)
    oracle = CrossEntropyLoss(7, eps=0.1, use_gpu=False)(logits, targets)
    torch.testing.assert_close(ours, oracle)
    torch.testing.assert_close(ours, torch.nn.functional.cross_entropy(logits, targets, label_smoothing=0.1))


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("margin", [0.3, 0.0])
def test_batch_hard_triplet_matches_brute_force(metric, margin):
    g = torch.Generator().manual_seed(3)
    features = torch.randn(12, 5, generator=g, dtype=torch.float64)
    targets = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3])
    got = TripletLoss(margin, metric)(features, targets).item()
    assert got == pytest.approx(brute_force_batch_hard(features, targets, margin, metric), rel=1e-5)


def test_triplet_matches_torchreid_oracle():
    from torchreid.reid.losses import TripletLoss as OracleTriplet

    g = torch.Generator().manual_seed(4)
    features = torch.randn(16, 8, generator=g)
    targets = torch.arange(4).repeat_interleave(4)
    torch.testing.assert_close(TripletLoss(0.3)(features, targets), OracleTriplet(0.3)(features, targets))


def test_triplet_is_zero_when_classes_are_separated_by_more_than_the_margin():
    features = torch.tensor([[0.0, 0.0], [0.0, 0.1], [5.0, 0.0], [5.0, 0.1]])
    targets = torch.tensor([0, 0, 1, 1])
    assert TripletLoss(0.3)(features, targets).item() == 0.0
    # d_ap = 0.1, d_an = 5.0 -> hinge with margin 5 is 0.1 for every anchor.
    assert TripletLoss(5.0)(features, targets).item() == pytest.approx(0.1, abs=1e-5)


def test_triplet_without_negatives_is_a_differentiable_zero():
    features = torch.randn(4, 3, requires_grad=True)
    loss = TripletLoss(0.3)(features, torch.zeros(4, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and features.grad is not None
    assert torch.count_nonzero(features.grad) == 0


def test_triplet_gradient_is_finite_for_duplicate_features():
    # Identical rows give a zero distance whose sqrt derivative would be infinite without the clamp.
    features = torch.ones(4, 3, requires_grad=True)
    TripletLoss(0.3)(features, torch.tensor([0, 0, 1, 1])).backward()
    assert torch.isfinite(features.grad).all()


def test_pairwise_distance_matches_cdist_and_cosine_identity():
    x = torch.randn(7, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(pairwise_distance(x, "euclidean"), torch.cdist(x, x), atol=2e-6, rtol=0)
    cos = torch.nn.functional.cosine_similarity(x.unsqueeze(1), x.unsqueeze(0), dim=2)
    torch.testing.assert_close(pairwise_distance(x, "cosine"), 1 - cos, atol=1e-6, rtol=0)


def test_build_losses_weights_and_names():
    cfg = get_cfg()
    cfg.MODEL.LOSSES.CE.WEIGHT = 0.5
    cfg.MODEL.LOSSES.TRIPLET.WEIGHT = 2.0
    losses = build_losses(cfg)
    g = torch.Generator().manual_seed(6)
    outputs = {"logits": torch.randn(8, 4, generator=g), "features": torch.randn(8, 6, generator=g)}
    targets = torch.arange(4).repeat_interleave(2)
    terms = losses(outputs, targets)
    assert set(terms) == {"loss_cross_entropy", "loss_triplet"}
    ce = CrossEntropyLabelSmooth(0.1)(outputs["logits"], targets)
    tri = TripletLoss(0.3, "euclidean")(outputs["features"], targets)
    torch.testing.assert_close(terms["loss_cross_entropy"], 0.5 * ce)
    torch.testing.assert_close(terms["loss_triplet"], 2.0 * tri)


def test_build_losses_cross_entropy_only_for_classification():
    cfg = get_cfg()
    cfg.MODEL.LOSSES.NAMES = ["cross_entropy"]
    terms = build_losses(cfg)({"logits": torch.randn(3, 4)}, torch.tensor([0, 1, 2]))
    assert list(terms) == ["loss_cross_entropy"]


@pytest.mark.parametrize(
    "key, value, error, match",
    [
        (
            "NAMES",
            ["cross_entropy", "arcface"],
            ConfigError,
            r"unknown loss 'arcface'.*cross_entropy, triplet",
        ),
        ("NAMES", [], ValueError, "MODEL.LOSSES.NAMES is empty"),
        ("TRIPLET.METRIC", "manhattan", ValueError, "TRIPLET.METRIC must be one of euclidean, cosine"),
        ("TRIPLET.MARGIN", -0.1, ValueError, "TRIPLET.MARGIN must be >= 0"),
        ("CE.EPSILON", 1.0, ValueError, r"CE.EPSILON must be in \[0, 1\)"),
    ],
)
def test_bad_loss_config_is_rejected_with_the_key(key, value, error, match):
    cfg = get_cfg()
    node = cfg.MODEL.LOSSES
    *groups, leaf = key.split(".")
    for group in groups:
        node = node[group]
    node[leaf] = value
    with pytest.raises(error, match=match):
        build_losses(cfg)


def test_bad_loss_inputs_are_rejected():
    losses = build_losses(get_cfg())
    with pytest.raises(ValueError, match="needs the model output 'features'.*train mode"):
        losses({"logits": torch.randn(2, 3)}, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="model built with num_classes=0 has no ID classifier"):
        losses({"logits": None, "features": torch.randn(2, 3)}, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        CrossEntropyLabelSmooth()(torch.randn(2, 3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 2\]"):
        CrossEntropyLabelSmooth()(torch.randn(2, 3), torch.tensor([0, 3]))
