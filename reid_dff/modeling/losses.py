"""ReID training losses: label-smoothed cross-entropy, batch-hard triplet, and their weighted sum.

``build_losses(cfg)`` turns ``MODEL.LOSSES`` into one module that maps the model's training output
``{"logits": (B, N), "features": (B, D)}`` and the labels ``(B,)`` to a dict of weighted loss terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ConfigError
from ..utils.registry import Registry

# Name in MODEL.LOSSES.NAMES -> factory(cfg) -> LossTerm. A new loss is one function and one decorator.
LOSS_REGISTRY = Registry("loss")


class CrossEntropyLabelSmooth(nn.Module):
    """Cross-entropy against ``(1 - epsilon) * one_hot + epsilon / N`` targets (Szegedy et al. 2016)."""

    def __init__(self, epsilon: float = 0.1):
        super().__init__()
        if not 0.0 <= epsilon < 1.0:
            raise ConfigError(f"MODEL.LOSSES.CE.EPSILON must be in [0, 1), got {epsilon}")
        self.epsilon = epsilon

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Mean loss over the batch; ``logits`` (B, N) raw scores, ``targets`` (B,) class indices."""
        _check_labels(logits.shape[0], targets, "logits")
        num_classes = logits.shape[1]
        if targets.numel() and (targets.min() < 0 or targets.max() >= num_classes):
            raise ValueError(
                f"class labels must lie in [0, {num_classes - 1}] for logits of shape {tuple(logits.shape)}, "
                f"got labels in [{int(targets.min())}, {int(targets.max())}]"
            )
        # float32 log-softmax: under autocast a half-precision log-sum-exp loses the small smoothed terms.
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()
        log_probs = F.log_softmax(logits, dim=1)
        nll = -log_probs.gather(1, targets.unsqueeze(1)).squeeze(1)
        uniform = -log_probs.mean(dim=1)
        return ((1.0 - self.epsilon) * nll + self.epsilon * uniform).mean()


DISTANCE_METRICS = ("euclidean", "cosine")


def pairwise_distance(features: Tensor, metric: str) -> Tensor:
    """``(B, D) -> (B, B)`` Euclidean distances or cosine distances ``1 - cos``."""
    if features.dtype in (torch.float16, torch.bfloat16):  # autocast output: ||a||^2 - 2ab cancels badly
        features = features.float()
    if metric == "euclidean":
        squared = features.pow(2).sum(dim=1, keepdim=True)
        dist2 = squared + squared.t() - 2.0 * features @ features.t()
        # The clamp keeps sqrt differentiable at 0 (an anchor's distance to itself).
        return dist2.clamp(min=1e-12).sqrt()
    if metric == "cosine":
        normed = F.normalize(features, dim=1)
        return 1.0 - normed @ normed.t()
    raise ConfigError(f"MODEL.LOSSES.TRIPLET.METRIC must be 'euclidean' or 'cosine', got {metric!r}")


class TripletLoss(nn.Module):
    """Batch-hard triplet loss (Hermans et al. 2017): hardest positive and negative per anchor.

    ``margin > 0``: ``mean(max(0, d_ap - d_an + margin))``; ``margin == 0``: the soft margin
    ``mean(log(1 + exp(d_ap - d_an)))``. Anchors without any negative in the batch are left out;
    a batch with none returns a zero that still carries a graph.
    """

    def __init__(self, margin: float = 0.3, metric: str = "euclidean"):
        super().__init__()
        if margin < 0:
            raise ConfigError(f"MODEL.LOSSES.TRIPLET.MARGIN must be >= 0 (0 = soft margin), got {margin}")
        if metric not in DISTANCE_METRICS:  # fail at build time, not mid-training
            raise ConfigError(
                f"MODEL.LOSSES.TRIPLET.METRIC must be one of {', '.join(DISTANCE_METRICS)}, got {metric!r}"
            )
        self.margin = margin
        self.metric = metric

    def forward(self, features: Tensor, targets: Tensor) -> Tensor:
        """Mean loss over anchors; ``features`` (B, D), ``targets`` (B,) identity labels."""
        _check_labels(features.shape[0], targets, "features")
        dist = pairwise_distance(features, self.metric)
        same = targets.unsqueeze(0) == targets.unsqueeze(1)
        # Masked max/min: a positive never wins the negative search and vice versa.
        dist_ap = dist.masked_fill(~same, float("-inf")).max(dim=1).values
        dist_an = dist.masked_fill(same, float("inf")).min(dim=1).values
        valid = torch.isfinite(dist_an)
        if not bool(valid.any()):
            return dist.sum() * 0.0
        dist_ap, dist_an = dist_ap[valid], dist_an[valid]
        if self.margin > 0:
            return F.relu(dist_ap - dist_an + self.margin).mean()
        return F.softplus(dist_ap - dist_an).mean()


def _check_labels(batch: int, targets: Tensor, what: str) -> None:
    if targets.dim() != 1 or targets.shape[0] != batch:
        raise ValueError(f"labels must have shape ({batch},) to match the {what}, got {tuple(targets.shape)}")


@dataclass(frozen=True)
class LossTerm:
    """One weighted term: which model output it reads and the module that scores it."""

    output_key: str
    module: nn.Module
    weight: float


@LOSS_REGISTRY.register("cross_entropy")
def _cross_entropy(cfg) -> LossTerm:
    ce = cfg.MODEL.LOSSES.CE
    return LossTerm("logits", CrossEntropyLabelSmooth(ce.EPSILON), ce.WEIGHT)


@LOSS_REGISTRY.register("triplet")
def _triplet(cfg) -> LossTerm:
    tri = cfg.MODEL.LOSSES.TRIPLET
    return LossTerm("features", TripletLoss(tri.MARGIN, tri.METRIC), tri.WEIGHT)


class ReIDLosses(nn.Module):
    """The configured loss terms; ``forward`` returns ``{"loss_<name>": weighted term}``."""

    def __init__(self, terms: dict[str, LossTerm]):
        super().__init__()
        if not terms:
            raise ConfigError(
                "MODEL.LOSSES.NAMES is empty; name at least one of " + ", ".join(LOSS_REGISTRY.names())
            )
        self.terms = terms
        self.modules_by_name = nn.ModuleDict({name: term.module for name, term in terms.items()})

    def forward(self, outputs: dict[str, Tensor], targets: Tensor) -> dict[str, Tensor]:
        """Weighted loss terms for one batch; their sum is the training loss."""
        losses = {}
        for name, term in self.terms.items():
            if term.output_key not in outputs:
                raise ValueError(
                    f"loss {name!r} needs the model output {term.output_key!r}, but the model returned "
                    f"{sorted(outputs)} (is the model in train mode?)"
                )
            if outputs[term.output_key] is None:
                raise ConfigError(
                    f"loss {name!r} needs the model output {term.output_key!r}, which is None (a model built "
                    f"with num_classes=0 has no ID classifier); drop {name} from MODEL.LOSSES.NAMES"
                )
            losses[f"loss_{name}"] = term.weight * term.module(outputs[term.output_key], targets)
        return losses


def build_losses(cfg) -> ReIDLosses:
    """The weighted sum of the losses named in ``MODEL.LOSSES.NAMES``."""
    terms = {}
    for name in cfg.MODEL.LOSSES.NAMES:
        if name not in LOSS_REGISTRY:
            raise ConfigError(
                f"unknown loss {name!r} in MODEL.LOSSES.NAMES; known: {', '.join(LOSS_REGISTRY.names())}"
            )
        terms[name] = LOSS_REGISTRY.get(name)(cfg)
    return ReIDLosses(terms)
