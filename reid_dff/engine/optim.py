"""Optimizers and learning-rate schedules from ``cfg.SOLVER``.

Schedules are configured in epochs and applied per iteration: call ``scheduler.step()`` after every
``optimizer.step()``. The learning rate of iteration ``i`` (0-based) is
``base_lr(cfg) * warmup(i) * decay(i)``, where ``base_lr`` applies the linear scaling rule of
``SOLVER.REFERENCE_BATCH``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from ..config import ConfigError
from ..utils.registry import Registry

# SOLVER.OPTIMIZER -> factory(cfg, param_groups). Weight decay is set per group, not here.
OPTIMIZER_REGISTRY = Registry("optimizer")
# SOLVER.SCHEDULER -> factory(cfg, iters_per_epoch, max_iters, warmup_iters) -> decay(iteration).
SCHEDULE_REGISTRY = Registry("lr schedule")

# Parameters of these modules are "norm" parameters for SOLVER.NO_DECAY_NORM_BIAS.
_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def split_decay_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Trainable parameters split into (decayed, exempt): exempt = biases and norm-layer weights."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:  # frozen (BNNeck bias) or shared
                continue
            seen.add(id(param))
            (no_decay if isinstance(module, _NORM_TYPES) or name == "bias" else decay).append(param)
    return decay, no_decay


def mask_generator_parameters(model: nn.Module) -> set[int]:
    """``id``s of the parameters of the model's mask generators (``MODEL.DFF.MASK_WEIGHT_DECAY``)."""
    from ..modeling.backbones.filters import MASK_GENERATORS

    return {id(p) for m in model.modules() if isinstance(m, MASK_GENERATORS) for p in m.parameters()}


def base_lr(cfg) -> float:
    """The learning rate the schedule scales: ``BASE_LR``, times ``IMS_PER_BATCH / REFERENCE_BATCH`` when
    ``SOLVER.REFERENCE_BATCH`` > 0 (the linear scaling rule; ``IMS_PER_BATCH`` is the batch over all ranks)."""
    reference = int(cfg.SOLVER.REFERENCE_BATCH)
    if reference < 0:
        raise ConfigError(f"SOLVER.REFERENCE_BATCH must be >= 0 (0: no scaling), got {reference}")
    lr = float(cfg.SOLVER.BASE_LR)
    return lr * int(cfg.SOLVER.IMS_PER_BATCH) / reference if reference else lr


@OPTIMIZER_REGISTRY.register("Adam")
def _adam(cfg, groups):
    return torch.optim.Adam(groups, lr=base_lr(cfg))


@OPTIMIZER_REGISTRY.register("SGD")
def _sgd(cfg, groups):
    return torch.optim.SGD(
        groups, lr=base_lr(cfg), momentum=cfg.SOLVER.MOMENTUM, nesterov=cfg.SOLVER.NESTEROV
    )


def build_optimizer(cfg, model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer named by ``SOLVER.OPTIMIZER`` over the model's trainable parameters."""
    name = cfg.SOLVER.OPTIMIZER
    if name not in OPTIMIZER_REGISTRY:
        raise ConfigError(
            f"SOLVER.OPTIMIZER must be one of {', '.join(OPTIMIZER_REGISTRY.names())}, got {name!r}"
        )
    decay, no_decay = split_decay_parameters(model)
    if not cfg.SOLVER.NO_DECAY_NORM_BIAS:
        decay, no_decay = decay + no_decay, []
    if not decay and not no_decay:
        raise ValueError(f"{type(model).__name__} has no trainable parameters to optimize")
    mask_decay = float(cfg.MODEL.DFF.MASK_WEIGHT_DECAY)
    mask = []
    if mask_decay >= 0:  # negative: the mask generators decay like every other weight
        generator_params = mask_generator_parameters(model)
        mask = [p for p in decay if id(p) in generator_params]
        decay = [p for p in decay if id(p) not in generator_params]
    groups = [
        {"params": decay, "weight_decay": cfg.SOLVER.WEIGHT_DECAY},
        {"params": no_decay, "weight_decay": 0.0},
        {"params": mask, "weight_decay": mask_decay},
    ]
    groups = [g for g in groups if g["params"]]
    return OPTIMIZER_REGISTRY.get(name)(cfg, groups)


@SCHEDULE_REGISTRY.register("multistep")
def _multistep_decay(cfg, iters_per_epoch: int, max_iters: int, warmup_iters: int) -> Callable[[int], float]:
    steps = list(cfg.SOLVER.STEPS)
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise ConfigError(f"SOLVER.STEPS must be strictly increasing epochs, got {steps}")
    milestones = [int(round(step * iters_per_epoch)) for step in steps]
    gamma = cfg.SOLVER.GAMMA
    return lambda it: gamma ** bisect.bisect_right(milestones, it)


@SCHEDULE_REGISTRY.register("cosine")
def _cosine_decay(cfg, iters_per_epoch: int, max_iters: int, warmup_iters: int) -> Callable[[int], float]:
    floor = cfg.SOLVER.MIN_LR_FACTOR
    span = max(1, max_iters - warmup_iters)

    def decay(it: int) -> float:
        # Flat during warm-up, then half a cosine from 1 to the floor over the remaining iterations.
        progress = min(1.0, max(0, it - warmup_iters) / span)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return decay


class WarmupScheduleLR(LRScheduler):
    """``lr(i) = base_lr * warmup(i) * decay(i)`` per iteration ``i``; linear warm-up from ``warmup_factor``.

    The decay function is rebuilt from the config on construction, so ``state_dict()`` holds only
    plain numbers (loadable with ``torch.load(weights_only=True)``).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        decay: Callable[[int], float],
        warmup_iters: int,
        warmup_factor: float,
        last_epoch: int = -1,
    ):
        self.decay = decay
        self.warmup_iters = warmup_iters
        self.warmup_factor = warmup_factor
        super().__init__(optimizer, last_epoch)

    def factor(self, it: int) -> float:
        """The multiplier of the base learning rate at iteration ``it``."""
        warmup = 1.0
        if it < self.warmup_iters:
            warmup = self.warmup_factor + (1.0 - self.warmup_factor) * it / self.warmup_iters
        return warmup * self.decay(it)

    def get_lr(self) -> list[float | torch.Tensor]:
        factor = self.factor(self.last_epoch)  # LRScheduler counts calls to step() in ``last_epoch``
        return [base_lr * factor for base_lr in self.base_lrs]

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "decay")}


def build_scheduler(cfg, optimizer: torch.optim.Optimizer, iters_per_epoch: int) -> WarmupScheduleLR:
    """The per-iteration schedule of ``SOLVER.SCHEDULER`` with linear warm-up (epochs -> iterations)."""
    name = cfg.SOLVER.SCHEDULER
    if name not in SCHEDULE_REGISTRY:
        raise ConfigError(
            f"SOLVER.SCHEDULER must be one of {', '.join(SCHEDULE_REGISTRY.names())}, got {name!r}"
        )
    if iters_per_epoch < 1:
        raise ValueError(f"iters_per_epoch must be >= 1, got {iters_per_epoch}")
    if not 0.0 < cfg.SOLVER.WARMUP_FACTOR <= 1.0:
        raise ConfigError(f"SOLVER.WARMUP_FACTOR must be in (0, 1], got {cfg.SOLVER.WARMUP_FACTOR}")
    if cfg.SOLVER.WARMUP_EPOCHS < 0:
        raise ConfigError(f"SOLVER.WARMUP_EPOCHS must be >= 0, got {cfg.SOLVER.WARMUP_EPOCHS}")
    max_iters = cfg.SOLVER.MAX_EPOCHS * iters_per_epoch
    warmup_iters = int(round(cfg.SOLVER.WARMUP_EPOCHS * iters_per_epoch))
    decay = SCHEDULE_REGISTRY.get(name)(cfg, iters_per_epoch, max_iters, warmup_iters)
    return WarmupScheduleLR(optimizer, decay, warmup_iters, cfg.SOLVER.WARMUP_FACTOR)
