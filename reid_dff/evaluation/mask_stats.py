"""Mask diagnostics: how much a model's masks vary over frequencies, instances and domains.

Forward hooks on the mask generators (``FrequencyMask``, ``PixelMask``, ``TaskChannelMask``,
``TaskSpatialMask``, ``FrequencyChannelAttention``; one per Fourier unit for the spectrum filters)
capture every mask of a pass over images. Each mask of one instance is flattened to its ``P`` positions
(frequency positions ``H x (W//2+1)``, channels for channel masks, pixels for ``PixelMask``); a mask
shared by all inputs (Task.(C), Task.(S)) counts once per instance. With ``m[n, p]`` the mask of
instance ``n`` (of ``N``) at position ``p``, ``mbar[p]`` its mean over instances and ``mu_d[p]`` the
mean over the instances of domain ``d``, the statistics of one mask module are:

- ``mean``: the mean of ``m`` over instances and positions;
- ``frequency_spread``: the population std over positions of ``mbar`` (spread across frequencies);
- ``instance_spread``: for each position, the population std over instances of ``m[:, p]``, then the
  mean over positions (0 for a mask that does not depend on the input);
- ``domain_difference``: for each position, ``max_d mu_d[p] - min_d mu_d[p]`` (the largest pairwise
  absolute difference of per-domain mean masks), then the mean over positions; ``None`` with fewer
  than two domains;
- ``dc``: ``mbar`` at the DC position ``(0, 0)`` of the ``rfft2`` layout, for frequency-position masks
  (``FrequencyMask``, ``TaskSpatialMask``); ``None`` for the others;
- ``near_half``: the fraction of entries ``m[n, p]`` in ``[0.45, 0.55]``.

The statistics are streamed: running sums per position (float64), never all masks at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from ..modeling.backbones.filters import MASK_GENERATORS, FrequencyMask, TaskSpatialMask
from ..utils import atomic_write_json

__all__ = [
    "MaskStatistics",
    "mask_modules",
    "mask_statistics",
    "log_mask_stats",
    "write_mask_stats",
    "mask_stats_for_run",
    "MASK_STATS_FILE",
]

MASK_STATS_FILE = "mask_stats.json"
STATISTICS = ("mean", "frequency_spread", "instance_spread", "domain_difference", "dc", "near_half")
_FREQUENCY_POSITION_MASKS = (FrequencyMask, TaskSpatialMask)


def mask_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Qualified name -> mask generator, for every mask generator of ``model`` (empty: no masks)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, MASK_GENERATORS)}


class MaskStatistics:
    """Running statistics of one mask module's masks; ``update((N, ...) masks, (N,) domains)``."""

    def __init__(self, has_dc: bool = False):
        self.has_dc = has_dc
        self.count = 0
        self.shape: tuple[int, ...] | None = None
        self.sum: torch.Tensor | None = None
        self.sum_sq: torch.Tensor | None = None
        self.near_half = 0
        self.domain_sums: dict[int, torch.Tensor] = {}
        self.domain_counts: dict[int, int] = {}

    def update(self, masks: torch.Tensor, domains: torch.Tensor | None = None) -> None:
        """Add ``masks`` ``(N, *shape)`` of ``N`` instances; ``domains`` ``(N,)`` ints (default: all 0)."""
        masks = masks.detach().to("cpu", torch.float64)
        shape = tuple(masks.shape[1:])
        if self.shape is None:
            self.shape = shape
            self.sum = torch.zeros(shape, dtype=torch.float64).flatten()
            self.sum_sq = torch.zeros_like(self.sum)
        elif shape != self.shape:
            raise ValueError(f"mask shape changed from {self.shape} to {shape}; feed images of one size")
        flat = masks.reshape(masks.shape[0], -1)
        domains = torch.zeros(len(flat), dtype=torch.long) if domains is None else domains.to("cpu").long()
        if len(domains) != len(flat):
            raise ValueError(f"{len(flat)} masks but {len(domains)} domain labels")
        assert self.sum is not None and self.sum_sq is not None
        self.count += len(flat)
        self.sum += flat.sum(dim=0)
        self.sum_sq += flat.square().sum(dim=0)
        self.near_half += int(((flat >= 0.45) & (flat <= 0.55)).sum())
        for domain in domains.unique().tolist():
            rows = flat[domains == domain]
            if domain not in self.domain_sums:
                self.domain_sums[domain] = torch.zeros_like(self.sum)
                self.domain_counts[domain] = 0
            self.domain_sums[domain] += rows.sum(dim=0)
            self.domain_counts[domain] += len(rows)

    def result(self) -> dict[str, Any]:
        """The statistics of the module docstring, as plain floats (``None`` where undefined)."""
        if self.count == 0 or self.sum is None or self.sum_sq is None:
            raise ValueError("no masks were recorded; the model saw no images")
        mean = self.sum / self.count
        variance = (self.sum_sq / self.count - mean.square()).clamp_min(0.0)
        domain_difference = None
        if len(self.domain_sums) > 1:
            means = torch.stack(
                [self.domain_sums[d] / self.domain_counts[d] for d in sorted(self.domain_sums)]
            )
            domain_difference = float((means.max(dim=0).values - means.min(dim=0).values).mean())
        return {
            "mean": float(mean.mean()),
            "frequency_spread": float(mean.std(unbiased=False)),
            "instance_spread": float(variance.sqrt().mean()),
            "domain_difference": domain_difference,
            "dc": float(mean[0]) if self.has_dc else None,
            "near_half": self.near_half / (self.count * mean.numel()),
            "instances": self.count,
            "shape": list(self.shape or ()),
        }


def _images_and_domains(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(batch, Mapping):
        return batch["images"], batch.get("domains")
    if isinstance(batch, (tuple, list)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


def mask_statistics(
    model: nn.Module,
    batches: Iterable[Any],
    device: torch.device | str | None = None,
    max_images: int | None = None,
) -> dict[str, Any]:
    """Mask statistics of ``model`` over ``batches``; ``{}`` units when the model has no mask modules.

    ``batches`` yields loader dicts (``images`` ``(B, 3, H, W)``, optional ``domains`` ``(B,)``), ``(images,
    domains)`` pairs or image tensors. Runs in eval mode without gradients and restores the mode. Returns
    ``{"images": N, "domains": [...], "units": {name: stats}, "summary": {stat: mean over units}}``.
    """
    modules = mask_modules(model)
    stats = {
        name: MaskStatistics(has_dc=isinstance(m, _FREQUENCY_POSITION_MASKS)) for name, m in modules.items()
    }
    if device is None:
        device = next(model.parameters()).device
    current: dict[str, Any] = {}

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            images, domains = current["batch"]
            batch_size = inputs[0].shape[0]
            if output.shape[0] != batch_size:  # a mask shared by all inputs counts once per instance
                output = output.expand(batch_size, *output.shape[1:])
            stats[name].update(output, domains)

        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in modules.items()]
    was_training = model.training
    model.eval()
    seen, domains_seen = 0, set()
    try:
        with torch.no_grad():
            for batch in batches:
                images, domains = _images_and_domains(batch)
                if max_images is not None:
                    images = images[: max_images - seen]
                    domains = None if domains is None else domains[: len(images)]
                if len(images) == 0:
                    break
                if domains is not None:
                    domains_seen.update(domains.tolist())
                current["batch"] = (images, domains)
                if modules:
                    model(images.to(device))
                seen += len(images)
                if max_images is not None and seen >= max_images:
                    break
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    units = {name: s.result() for name, s in stats.items()} if seen else {}
    summary = {}
    for key in STATISTICS:
        values = [u[key] for u in units.values() if u[key] is not None]
        summary[key] = sum(values) / len(values) if values else None
    return {"images": seen, "domains": sorted(domains_seen), "units": units, "summary": summary}


def log_mask_stats(stats: Mapping[str, Any], writer: Any, step: int, prefix: str = "mask") -> None:
    """TensorBoard scalars ``<prefix>/<stat>`` (mean over units) and ``<prefix>/<unit>/<stat>``."""
    for key, value in stats["summary"].items():
        if value is not None:
            writer.add_scalar(f"{prefix}/{key}", value, step)
    for name, unit in stats["units"].items():
        for key in STATISTICS:
            if unit[key] is not None:
                writer.add_scalar(f"{prefix}/{name}/{key}", unit[key], step)


def write_mask_stats(
    model: nn.Module,
    loader: Iterable[Any],
    output_dir: str | os.PathLike,
    writer: Any = None,
    step: int = 0,
    max_images: int | None = None,
    device: torch.device | str | None = None,
) -> dict[str, Any] | None:
    """Mask statistics over ``loader`` into ``output_dir/mask_stats.json`` (and ``writer``); ``None``
    without writing anything when the model has no mask modules."""
    if not mask_modules(model):
        return None
    stats = mask_statistics(model, loader, device=device, max_images=max_images)
    stats["step"] = step
    atomic_write_json(os.path.join(output_dir, MASK_STATS_FILE), stats)
    if writer is not None:
        log_mask_stats(stats, writer, step)
    return stats


def evenly_spaced(samples: list[Any], limit: int) -> list[Any]:
    """At most ``limit`` of ``samples``, evenly spaced (so a list ordered by domain keeps every domain)."""
    if limit <= 0 or len(samples) <= limit:
        return list(samples)
    return [samples[i * len(samples) // limit] for i in range(limit)]


def mask_stats_for_run(
    cfg: Any, model: nn.Module, samples: list[Any], device: Any, writer: Any = None, step: int = 0
) -> dict[str, Any] | None:
    """The trainer's call at each evaluation: ``write_mask_stats`` over at most
    ``TEST.MASK_STATS_MAX_IMAGES`` evenly spaced ``samples`` with the test transforms."""
    if not mask_modules(model):
        return None
    from ..data import build_test_loader

    chosen = evenly_spaced(list(samples), int(cfg.TEST.MASK_STATS_MAX_IMAGES))
    return write_mask_stats(
        model, build_test_loader(cfg, chosen), cfg.OUTPUT_DIR, writer, step, device=device
    )
