"""From the config to closed-set classification data (``MODEL.TASK classification``, e.g. Office-Home DG).

``DATASETS.SOURCES`` and ``DATASETS.TARGETS`` name domains of a classification dataset
(``officehome:Art`` ...). The sources' ``train`` splits are the training set, their ``val`` splits select
the model, and every image of each target is held out for the final accuracy. Labels are class indices
shared by all domains (not relabeled per source, unlike ReID identities).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, cast

from ...data.build import TrainSet, dataset_options
from ...data.datasets.base import DatasetOptionError, ReIDDataset, Sample, build_dataset, parse_dataset_spec

__all__ = ["ClassificationData", "build_classification_data"]


class ClassificationData(NamedTuple):
    """``train``: the sources' train splits (``pid`` = class, ``domain`` = source index); ``val[spec]``:
    each source's held-out split; ``targets[spec]``: every image of each target; ``classes``: names by label."""

    train: TrainSet
    val: dict[str, list[Sample]]
    targets: dict[str, list[Sample]]
    classes: list[str]


class ClassDomains(ReIDDataset):
    """What a classification dataset adds to ``ReIDDataset`` (``OfficeHome`` has it): a class list shared
    by its domains (``pid`` = index into it), a held-out ``val`` split beside ``train``, and ``test``: every
    image of the domain, for a held-out target."""

    classes: list[str]
    val: list[Sample]
    test: list[Sample]


def _load_domains(cfg: Any, specs: Sequence[str], key: str) -> dict[str, ClassDomains]:
    if not specs:
        raise DatasetOptionError(f"{key} is empty; name at least one domain, e.g. ['officehome:Art']")
    duplicates = sorted({s for s in specs if list(specs).count(s) > 1})
    if duplicates:
        raise DatasetOptionError(f"{key} lists {duplicates} more than once")
    datasets: dict[str, ClassDomains] = {}
    for spec in specs:
        name, _ = parse_dataset_spec(spec)
        dataset = build_dataset(spec, cfg.DATASETS.ROOT, **dataset_options(cfg, name))
        if not isinstance(getattr(dataset, "classes", None), list):
            raise DatasetOptionError(
                f"{key} entry {spec!r} is not a classification dataset (no class list); expected a "
                "domain such as 'officehome:Art'"
            )
        datasets[spec] = cast(ClassDomains, dataset)  # its class list was just checked
    return datasets


def _domain_keys(spec: str, dataset: ReIDDataset) -> set[tuple[str, str]]:
    """The canonical domains a spec covers (``officehome`` is all four; ``officehome:ar`` is Art)."""
    domains = getattr(dataset, "domains", None) or [spec]
    return {(type(dataset).__name__, str(domain)) for domain in domains}


def _check_disjoint_domains(sources: dict[str, ClassDomains], targets: dict[str, ClassDomains]) -> None:
    """No domain trained twice, and none both trained on and held out, however the specs spell them."""
    owner: dict[tuple[str, str], str] = {}
    for spec, dataset in sources.items():
        for key in _domain_keys(spec, dataset):
            if key in owner:
                raise DatasetOptionError(
                    f"DATASETS.SOURCES {owner[key]!r} and {spec!r} both include domain {key[1]!r}; name each "
                    "source domain once"
                )
            owner[key] = spec
    for spec, dataset in targets.items():
        shared = sorted(k[1] for k in _domain_keys(spec, dataset) if k in owner)
        if shared:
            sources_of = sorted({owner[(type(dataset).__name__, d)] for d in shared})
            raise DatasetOptionError(
                f"target {spec!r} shares domain(s) {shared} with DATASETS.SOURCES {sources_of}; a target "
                "must be held out of the sources"
            )


def build_classification_data(cfg: Any) -> ClassificationData:
    """Sources' train/val splits and the targets' images of ``cfg``, with one class list checked across all."""
    if cfg.DATASETS.COMBINE_ALL:
        raise DatasetOptionError(
            "DATASETS.COMBINE_ALL is True, but it is a ReID protocol option; classification expects False"
        )
    sources = _load_domains(cfg, list(cfg.DATASETS.SOURCES), "DATASETS.SOURCES")
    targets = _load_domains(cfg, list(cfg.DATASETS.TARGETS), "DATASETS.TARGETS")
    _check_disjoint_domains(sources, targets)
    first_spec, first = next(iter(sources.items()))
    for spec, dataset in {**sources, **targets}.items():
        if dataset.classes != first.classes:
            raise DatasetOptionError(
                f"{spec!r} has {len(dataset.classes)} classes but {first_spec!r} has {len(first.classes)} "
                "(or they are named differently); all sources and targets must share one class list"
            )
    samples = []
    for source_index, (spec, dataset) in enumerate(sources.items()):
        if not dataset.train:
            raise DatasetOptionError(f"source {spec} has no training images under {dataset.root}")
        samples += [Sample(s.path, s.pid, s.camid, source_index) for s in dataset.train]
    classes = list(first.classes)
    train = TrainSet(samples, len(classes), len(sources), list(sources), classes)
    return ClassificationData(
        train=train,
        val={spec: list(d.val) for spec, d in sources.items()},
        targets={spec: list(d.test) for spec, d in targets.items()},
        classes=classes,
    )
