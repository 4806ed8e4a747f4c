"""Features: ``(N, D)`` float32 embeddings of images with their identities, and how they are extracted (a
model in eval mode over a test loader). The one features type of reid-dff: evaluation ranks it, inference
writes it to a features file and indexes it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["Features", "extract_features", "iter_feature_batches"]

_BATCH_KEYS = ("images", "pids", "camids", "paths")


def _no_ids() -> np.ndarray:
    return np.empty(0, np.int64)


@dataclass
class Features:
    """Embeddings ``feats`` ``(N, D)`` float32 of images ``paths`` with ``pids``/``camids`` ``(N,)`` int64.

    Ids are -1 where unknown (omitted: all unknown). Features written to a file also carry where they come
    from: the ``root`` that ``paths`` are relative to (empty: the paths are as given), the model name,
    checkpoint path and SHA-256, and the ``metric`` the model is evaluated with.
    """

    feats: np.ndarray
    paths: list[str]
    pids: np.ndarray = field(default_factory=_no_ids)
    camids: np.ndarray = field(default_factory=_no_ids)
    root: str = ""
    model_name: str = ""
    checkpoint_sha256: str = ""
    checkpoint_path: str = ""
    metric: str = "cosine"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        feats = np.ascontiguousarray(self.feats, dtype=np.float32)  # no copy of a float32 memory map
        n = len(self.paths)
        if feats.ndim != 2 or len(feats) != n:
            raise ValueError(f"feats must be (N, D) with N = {n} paths; got shape {feats.shape}")
        self.feats = feats
        for name in ("pids", "camids"):
            values = getattr(self, name)
            unknown = values is None or (n and np.size(values) == 0)
            values = np.full(n, -1, np.int64) if unknown else np.asarray(values, np.int64)
            if values.shape != (n,):
                raise ValueError(f"{name} must have one entry per path ({n}), got shape {values.shape}")
            setattr(self, name, values)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def has_identities(self) -> bool:
        """Whether every item carries a pid and a camid."""
        return bool(len(self.paths)) and bool((self.pids >= 0).all() and (self.camids >= 0).all())

    def rows_of(self, paths: Sequence[str]) -> np.ndarray:
        """``(len(paths),)`` row index of each path; ``KeyError`` naming the first path without a feature."""
        row_of = {path: row for row, path in enumerate(self.paths)}
        try:
            return np.fromiter((row_of[p] for p in paths), dtype=np.int64, count=len(paths))
        except KeyError as e:
            raise KeyError(f"no feature was extracted for image {e.args[0]}") from None


def _labels(batch: Mapping[str, Any], key: str) -> np.ndarray:
    value = batch[key]
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.int64).reshape(-1)


def _embed(model: nn.Module, images: torch.Tensor, flip: bool) -> torch.Tensor:
    feats = model(images)
    if not isinstance(feats, torch.Tensor) or feats.ndim != 2 or feats.shape[0] != images.shape[0]:
        shape = tuple(feats.shape) if isinstance(feats, torch.Tensor) else type(feats).__name__
        raise ValueError(
            f"the model returned {shape} for a batch of {images.shape[0]} images in eval mode; feature "
            "extraction needs a (B, D) embedding tensor (build the model with num_classes=0 or use eval mode)"
        )
    if flip:
        # Mean of the image's and its mirror's embedding: people are left-right symmetric, cameras are not.
        feats = (feats + model(torch.flip(images, dims=[3]))) / 2
    return feats


def iter_feature_batches(
    model: nn.Module,
    loader: Iterable[Mapping[str, Any]],
    device: torch.device | str,
    flip: bool = False,
    amp: bool = True,
) -> Iterator[Features]:
    """:func:`extract_features` one loader batch at a time: each item is that batch's :class:`Features`.

    For consumers that write features out as they come (``FeatureExtractor.save_feature_set``) instead of
    holding all of them. The model's mode is restored when the iteration ends or is abandoned.
    """
    device = torch.device(device)
    use_amp = amp and device.type == "cuda"
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for batch in loader:
                if "images" not in batch and batch.get("num_skipped"):
                    continue  # every image of the batch was unreadable and skipped (counted by the loader)
                missing = [key for key in _BATCH_KEYS if key not in batch]
                if missing:
                    raise KeyError(
                        f"test batches must be dicts with keys {list(_BATCH_KEYS)}; this one lacks {missing} "
                        "(build the loader with reid_dff.data.build_test_loader)"
                    )
                images = batch["images"].to(device, non_blocking=True)
                autocast = torch.autocast("cuda") if use_amp else contextlib.nullcontext()
                with autocast:
                    out = _embed(model, images, flip)
                yield Features(
                    feats=out.float().cpu().numpy(),
                    pids=_labels(batch, "pids"),
                    camids=_labels(batch, "camids"),
                    paths=[str(p) for p in batch["paths"]],
                )
    finally:
        model.train(was_training)


def extract_features(
    model: nn.Module,
    loader: Iterable[Mapping[str, Any]],
    device: torch.device | str,
    flip: bool = False,
    amp: bool = True,
) -> Features:
    """Run ``model`` (eval mode, no grad) over ``loader``'s ``{"images", "pids", "camids", "paths"}`` batches.

    ``flip`` averages each embedding with that of the horizontally flipped image; ``amp`` enables autocast
    on CUDA only. Returns float32 ``(N, D)`` features in loader order; the model's mode is restored.
    """
    batches = list(iter_feature_batches(model, loader, device, flip=flip, amp=amp))
    if not batches:
        raise ValueError("the test loader yielded no images; check the target's query/gallery folders")
    return Features(
        feats=np.concatenate([b.feats for b in batches]).astype(np.float32, copy=False),
        pids=np.concatenate([b.pids for b in batches]),
        camids=np.concatenate([b.camids for b in batches]),
        paths=[p for b in batches for p in b.paths],
    )
