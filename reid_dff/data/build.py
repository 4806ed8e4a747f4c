"""From the config to data: the multi-source training set, the protocol test sets and their loaders.

Batches are dicts ``{"images": (B, 3, H, W) float normalized, "pids": (B,) long, "camids": (B,) long,
"domains": (B,) long, "paths": list[str]}``. With ``DATALOADER.ON_BAD_IMAGE skip`` an unreadable image is
dropped from its batch (so a batch can be smaller than ``B``; an all-bad batch is not yielded) and
counted: ``loader.num_skipped`` in the main process, and a warning names each file. With ``error`` (the
default) the first bad image stops the run with a ``BadImageError`` naming it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..utils.threads import limit_worker_threads
from .datasets.base import (
    DATASET_REGISTRY,
    TRAIN_SCOPE,
    DatasetOptionError,
    Sample,
    build_dataset,
    parse_dataset_spec,
)
from .io import DECODERS, IMAGE_READERS, BadImageError, read_image
from .samplers import SAMPLER_REGISTRY, _StepBatchSampler
from .source_val import carve_source_val, query_gallery
from .transforms import build_transforms

__all__ = [
    "ON_BAD_IMAGE_CHOICES",
    "ReIDDataLoader",
    "ReIDImageDataset",
    "TestSplit",
    "TrainSet",
    "all_samples",
    "build_test_loader",
    "build_source_val_sets",
    "build_test_sets",
    "build_train_loader",
    "build_train_set",
    "collate_batch",
    "dataset_options",
]

logger = logging.getLogger("reid_dff.data")

ON_BAD_IMAGE_CHOICES = ("error", "skip")


class TrainSet(NamedTuple):
    """The combined training data: samples with contiguous ``pid`` labels and ``domain`` = source index.

    ``names[d]`` is the spec of source ``d``; ``pid_names[label]`` says where a label came from
    (``"<spec>/<scope>/<raw pid>"``); ``camid`` is offset per source so cameras of different sources differ.
    """

    samples: list[Sample]
    num_classes: int
    num_domains: int
    names: list[str]
    pid_names: list[str]


class TestSplit(NamedTuple):
    """One evaluation split of a target; ``split_file``/``split_sha256`` are None for the big targets."""

    name: str
    split_id: int | None
    query: list[Sample]
    gallery: list[Sample]
    split_file: str | None
    split_sha256: str | None


def dataset_options(cfg: Any, name: str) -> dict[str, Any]:
    """Options a dataset reads from the config (e.g. CUHK03's ``boxes``), by registry name."""
    return DATASET_REGISTRY.get(name).options_from_cfg(cfg)


def _check_specs(specs: Sequence[str], key: str) -> list[tuple[str, dict[str, Any]]]:
    if not specs:
        raise DatasetOptionError(f"{key} is empty; name at least one dataset (see configs/protocols/)")
    parsed = [parse_dataset_spec(spec) for spec in specs]
    duplicates = sorted({s for s in specs if list(specs).count(s) > 1})
    if duplicates:
        raise DatasetOptionError(f"{key} lists {duplicates} more than once")
    return parsed


def _ensure_synthetic_if_needed(cfg: Any, parsed: Sequence[tuple[str, dict[str, Any]]]) -> None:
    if any(name == "synthetic" for name, _ in parsed):
        from .synthetic import ensure_synthetic_data  # lazy: only synthetic runs need the generator

        ensure_synthetic_data(cfg, [name for name, _ in parsed])


def _source_material(cfg: Any) -> Iterator[tuple[int, str, list[tuple[Sample, str]], list[Sample]]]:
    """Per source: ``(domain, spec, training material, held-out source-val samples)``."""
    specs = list(cfg.DATASETS.SOURCES)
    parsed = _check_specs(specs, "DATASETS.SOURCES")
    _ensure_synthetic_if_needed(cfg, parsed)
    for domain, (spec, (name, _)) in enumerate(zip(specs, parsed)):
        dataset = build_dataset(spec, cfg.DATASETS.ROOT, **dataset_options(cfg, name))
        material = dataset.train_samples(combine_all=cfg.DATASETS.COMBINE_ALL)
        if not material:
            raise DatasetOptionError(f"source {spec} has no training images under {dataset.root}")
        kept, held = carve_source_val(cfg, spec, domain, material)
        yield domain, spec, kept, held


def build_source_val_sets(cfg: Any) -> list[TestSplit]:
    """One query/gallery split per source of its held-out identities (``TEST.SELECTION source_val``)."""
    splits = []
    for _, spec, _, held in _source_material(cfg):
        query, gallery = query_gallery(held)
        splits.append(TestSplit(spec, None, query, gallery, None, None))
    return splits


def build_train_set(cfg: Any) -> TrainSet:
    """Combine ``DATASETS.SOURCES`` (train split, or all images with ``DATASETS.COMBINE_ALL``) into one set,
    less the identities held out for model selection (``TEST.SELECTION source_val``)."""
    specs = list(cfg.DATASETS.SOURCES)
    samples: list[Sample] = []
    pid_names: list[str] = []
    camera_offset = 0
    for domain, spec, material, _ in _source_material(cfg):
        # Labels follow sorted (scope, raw pid) within a source: deterministic, no collisions across
        # sources or between a source's train and test id spaces.
        keys = sorted({(scope, s.pid) for s, scope in material}, key=lambda k: (k[0] != TRAIN_SCOPE, k[1]))
        label_of = {key: len(pid_names) + i for i, key in enumerate(keys)}
        pid_names += [f"{spec}/{scope}/{pid}" for scope, pid in keys]
        max_camid = 0
        for sample, scope in material:
            samples.append(
                Sample(sample.path, label_of[(scope, sample.pid)], camera_offset + sample.camid, domain)
            )
            max_camid = max(max_camid, sample.camid)
        camera_offset += max_camid + 1
    return TrainSet(samples, len(pid_names), len(specs), specs, pid_names)


def build_test_sets(cfg: Any, name: str) -> list[TestSplit]:
    """The evaluation splits of target ``name``: one for big targets, one per ``DATASETS.SPLIT_IDS`` else."""
    base_name, _ = parse_dataset_spec(name)
    _ensure_synthetic_if_needed(cfg, [(base_name, {})])
    options = dataset_options(cfg, base_name)
    cls = DATASET_REGISTRY.get(base_name)
    if cls.train_only:
        raise DatasetOptionError(
            f"{name} is training-only (no query/gallery); remove it from DATASETS.TARGETS"
        )
    split_ids: list[int | None] = list(cfg.DATASETS.SPLIT_IDS) if cls.has_protocol_splits else [None]
    if not split_ids:
        raise DatasetOptionError(f"DATASETS.SPLIT_IDS is empty; {name} needs at least one split id (0-9)")
    test_sets = []
    for split_id in split_ids:
        extra = {} if split_id is None else {"split_id": split_id}
        dataset = build_dataset(name, cfg.DATASETS.ROOT, **options, **extra)
        test_sets.append(
            TestSplit(
                name,
                dataset.split_id,
                dataset.query,
                dataset.gallery,
                dataset.split_file,
                dataset.split_sha256,
            )
        )
    return test_sets


def all_samples(test_sets: Sequence[TestSplit]) -> list[Sample]:
    """Every distinct image (by path, first occurrence order) of the query and gallery of ``test_sets``.

    Extract features once for these, then index them by ``Sample.path`` for each split: the splits of a
    small target share most images.
    """
    seen: dict[str, Sample] = {}
    for test_set in test_sets:
        for sample in test_set.query + test_set.gallery:
            seen.setdefault(sample.path, sample)
    return list(seen.values())


class ReIDImageDataset(Dataset):
    """Decodes and transforms ``samples[i]``; with ``on_bad_image="skip"`` a bad image yields ``None``.

    The key is an index, or ``(index, seed)``: then the transform runs with torch's, NumPy's and Python's
    global random generators seeded by ``seed`` (and restored afterwards), so the image's augmentation
    depends on that seed alone -- not on which worker process decodes it or what that worker did before.
    """

    def __init__(
        self, samples: Sequence[Sample], transform: Any, on_bad_image: str = "error", reader: Any = read_image
    ):
        if on_bad_image not in ON_BAD_IMAGE_CHOICES:
            raise ValueError(
                f"DATALOADER.ON_BAD_IMAGE must be one of {ON_BAD_IMAGE_CHOICES}, got {on_bad_image!r}"
            )
        self.samples = list(samples)
        self.transform = transform
        self.on_bad_image = on_bad_image
        self.reader = reader  # path -> RGB uint8 image (IMAGE_READERS[DATALOADER.DECODER])

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any] | None:
        index, seed = key if isinstance(key, tuple) else (key, None)
        sample = self.samples[index]
        try:
            image = self.reader(sample.path)
        except BadImageError as e:
            if self.on_bad_image == "error":
                raise
            logger.warning("skipping %s", e)
            return None
        return {
            "image": self._transform(image, seed).as_subclass(torch.Tensor),
            "pid": sample.pid,
            "camid": sample.camid,
            "domain": sample.domain,
            "path": sample.path,
        }

    def _transform(self, image: Any, seed: int | None) -> torch.Tensor:
        if seed is None:
            return self.transform(image)
        python_state, numpy_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed % 2**32)
            try:
                return self.transform(image)
            finally:
                random.setstate(python_state)
                np.random.set_state(numpy_state)


def collate_batch(items: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Stack decoded items into the batch dict; ``None`` (skipped bad images) are dropped and counted."""
    kept = [item for item in items if item is not None]
    batch: dict[str, Any] = {"num_skipped": len(items) - len(kept)}
    if kept:
        batch.update(
            images=torch.stack([item["image"] for item in kept]),
            pids=torch.tensor([item["pid"] for item in kept], dtype=torch.long),
            camids=torch.tensor([item["camid"] for item in kept], dtype=torch.long),
            domains=torch.tensor([item["domain"] for item in kept], dtype=torch.long),
            paths=[item["path"] for item in kept],
        )
    return batch


class ReIDDataLoader(DataLoader):
    """A DataLoader yielding the batch dicts; keeps two counts in the main process.

    ``num_skipped``: bad images dropped so far (``ON_BAD_IMAGE skip``). ``batches_consumed``: batches handed
    to the caller; for a training loader, ``state_dict()`` is the sampler's state right after the last
    handed-out batch -- exact even while workers prefetch ahead.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.num_skipped = 0
        self.batches_consumed = 0
        self._sampler_steps_consumed: int | None = None

    def _step_sampler(self) -> _StepBatchSampler | None:
        """The resumable batch sampler of a training loader; None for a test loader."""
        return self.batch_sampler if isinstance(self.batch_sampler, _StepBatchSampler) else None

    # DataLoader's __iter__ returns torch's iterator object; this one is a generator of batch dicts.
    def __iter__(self) -> Iterator[dict[str, Any]]:  # type: ignore[override]
        sampler = self._step_sampler()
        if sampler is not None:
            # A new pass starts at the sampler's current step (also after load_state_dict or a replay).
            self._sampler_steps_consumed = sampler.step
        for batch in super().__iter__():
            if self._sampler_steps_consumed is not None:
                self._sampler_steps_consumed += 1  # counts all-bad batches too: they used a sampler step
            self.num_skipped += batch.pop("num_skipped")
            if "images" not in batch:
                continue  # every image of this batch was bad and skipped
            self.batches_consumed += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """The training sampler's state after the last batch handed out (for checkpoints)."""
        sampler = self._step_sampler()
        if sampler is None:
            raise TypeError("state_dict() is for training loaders (infinite samplers); test loaders restart")
        step = sampler.step if self._sampler_steps_consumed is None else self._sampler_steps_consumed
        return sampler.state_dict(step=step)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly after the batch at which ``state`` was taken; call before iterating."""
        sampler = self._step_sampler()
        if sampler is None:
            raise TypeError(
                "load_state_dict() is for training loaders (infinite samplers); test loaders restart"
            )
        sampler.load_state_dict(state)
        self._sampler_steps_consumed = None


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; derive numpy/random from it so augmentations
    # that use them are reproducible too.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    limit_worker_threads()  # workers at one thread each: no oversubscribed cores (reid_dff.utils.threads)


def _check_on_bad_image(cfg: Any) -> str:
    value = cfg.DATALOADER.ON_BAD_IMAGE
    if value not in ON_BAD_IMAGE_CHOICES:
        raise DatasetOptionError(
            f"DATALOADER.ON_BAD_IMAGE must be one of {ON_BAD_IMAGE_CHOICES}, got {value!r}"
        )
    return value


def _reader(cfg: Any) -> Any:
    value = cfg.DATALOADER.DECODER
    if value not in DECODERS:
        raise DatasetOptionError(f"DATALOADER.DECODER must be one of {DECODERS}, got {value!r}")
    return IMAGE_READERS[value]


def build_train_loader(
    cfg: Any, train_set: TrainSet, rank: int = 0, world_size: int = 1, seed: int | None = None
) -> ReIDDataLoader:
    """Infinite training loader: sampler ``DATALOADER.SAMPLER``, ``SOLVER.IMS_PER_BATCH // world_size`` per rank."""
    seed = cfg.SEED if seed is None else seed
    if cfg.SOLVER.IMS_PER_BATCH % world_size:
        raise DatasetOptionError(
            f"SOLVER.IMS_PER_BATCH ({cfg.SOLVER.IMS_PER_BATCH}) must be divisible by the {world_size} ranks"
        )
    batch_size = cfg.SOLVER.IMS_PER_BATCH // world_size
    if cfg.DATALOADER.SAMPLER not in SAMPLER_REGISTRY:
        raise DatasetOptionError(
            f"DATALOADER.SAMPLER {cfg.DATALOADER.SAMPLER!r} is unknown; choose one of {SAMPLER_REGISTRY.names()}"
        )
    sampler = SAMPLER_REGISTRY.get(cfg.DATALOADER.SAMPLER)(
        train_set.samples, batch_size, cfg.DATALOADER.NUM_INSTANCES, seed, rank, world_size
    )
    # Each image's augmentation is seeded from (seed, rank, step, position): the same batches *and*
    # augmentations with any number of workers, and after a resume.
    sampler.with_augmentation_seeds = True
    dataset = ReIDImageDataset(
        train_set.samples, build_transforms(cfg, is_train=True), _check_on_bad_image(cfg), _reader(cfg)
    )
    generator = torch.Generator()
    # The workers' base seeds (augmentations themselves are seeded per image, see above).
    generator.manual_seed(int(seed) * 1000003 + rank)
    workers = cfg.DATALOADER.NUM_WORKERS
    return ReIDDataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        collate_fn=collate_batch,
        pin_memory=torch.cuda.is_available(),
        worker_init_fn=_seed_worker,
        generator=generator,
        persistent_workers=workers > 0,
    )


def build_test_loader(cfg: Any, samples: Sequence[Sample]) -> ReIDDataLoader:
    """Loader over ``samples`` in their order with the test transforms (``TEST.IMS_PER_BATCH``)."""
    dataset = ReIDImageDataset(
        samples, build_transforms(cfg, is_train=False), _check_on_bad_image(cfg), _reader(cfg)
    )
    return ReIDDataLoader(
        dataset,
        batch_size=cfg.TEST.IMS_PER_BATCH,
        shuffle=False,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        collate_fn=collate_batch,
        pin_memory=torch.cuda.is_available(),
        worker_init_fn=_seed_worker,
    )
