"""Office-Home (Venkateswara et al., CVPR 2017): 65 object classes in four domains, for closed-set DG.

Unlike the ReID datasets, a sample's ``pid`` is a *class* index, shared by all domains; there is no
query/gallery. Each domain is split per class into ``train`` and ``val`` (model selection on the
sources) from a fixed seed; ``test`` is every image of the domain (the held-out target is evaluated on
all of it, as in the DG literature).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .base import (
    DATASET_REGISTRY,
    DatasetLayoutError,
    DatasetOptionError,
    ReIDDataset,
    Sample,
    SplitStatistics,
    split_statistics,
)

__all__ = ["DOMAINS", "OfficeHome", "canonical_domain"]

# Office-Home's domains in their conventional order; ``Sample.domain`` is the index in this tuple.
DOMAINS = ("Art", "Clipart", "Product", "Real_World")
# The paper's abbreviations (tables write Ar, Cl, Pr, Rw).
ABBREVIATIONS = {"ar": "Art", "cl": "Clipart", "pr": "Product", "rw": "Real_World"}
# Folder names a domain may have on disk: the official zip writes "Real World" (with a space).
DOMAIN_FOLDERS = {"Art": ("Art",), "Clipart": ("Clipart",), "Product": ("Product",), "Real_World": ("Real_World", "Real World")}  # fmt: skip
# The official zip unpacks to OfficeHomeDataset_10072016/; the docs and the synthetic set use OfficeHomeDataset/.
ROOT_FOLDERS = ("OfficeHomeDataset", "OfficeHomeDataset_10072016")
# Images per domain in the official release (15,588 in all, 65 classes in each domain).
PUBLISHED_IMAGES = {"Art": 2427, "Clipart": 4365, "Product": 4439, "Real_World": 4357}
NUM_CLASSES = 65


def canonical_domain(name: str) -> str:
    """``"Real World"``, ``"real_world"``, ``"Rw"`` ... -> ``"Real_World"``; ``DatasetOptionError`` otherwise."""
    if isinstance(name, str):
        key = name.strip().replace(" ", "_").lower()
        for domain in DOMAINS:
            if key == domain.lower():
                return domain
        if key in ABBREVIATIONS:
            return ABBREVIATIONS[key]
    raise DatasetOptionError(
        f"unknown Office-Home domain {name!r}; expected one of {', '.join(DOMAINS)} or "
        f"{', '.join(a.capitalize() for a in ABBREVIATIONS)}"
    )


def split_train_val(
    paths: list[str], val_fraction: float, seed: tuple[int, ...]
) -> tuple[list[str], list[str]]:
    """Sorted ``paths`` of one class -> (train, val): ``round(n * val_fraction)`` drawn with ``seed``, >= 1 train."""
    # Half-up rounding (Python's round() is half-to-even); every class keeps at least one training image.
    num_val = min(int(np.floor(len(paths) * val_fraction + 0.5)), len(paths) - 1)
    order = np.random.Generator(np.random.PCG64(list(seed))).permutation(len(paths))
    held_out = set(order[:num_val].tolist())
    train = [p for i, p in enumerate(paths) if i not in held_out]
    val = [p for i, p in enumerate(paths) if i in held_out]
    return train, val


@DATASET_REGISTRY.register("officehome")
class OfficeHome(ReIDDataset):
    """One domain of Office-Home (spec ``officehome:<Domain>``), or all four (``officehome``).

    ``classes`` are the class folder names sorted by name (the same list in every domain, checked);
    ``Sample(path, pid=class index, camid=0, domain=index in DOMAINS)``. ``train``/``val`` split each class
    of each domain ``1 - val_fraction`` / ``val_fraction`` with a generator seeded by
    ``(split_seed, domain index, class index)``, so the split of one domain does not depend on which other
    domains are read. ``test`` is every image. Statistics (``ids`` = classes) are checked against the
    published image counts, except for a generated synthetic tree (it has a ``manifest.json``).
    """

    name = "officehome"
    positional_option = "domain"
    train_only = True  # no query/gallery: a ReID target list cannot name it
    root_folders = ROOT_FOLDERS
    expected_tree = """
<root>/OfficeHomeDataset/            (or OfficeHomeDataset_10072016/, as the official zip unpacks)
    Art/<Class>/<image>.jpg ...      e.g. Art/Alarm_Clock/00001.jpg
    Clipart/<Class>/...
    Product/<Class>/...
    Real_World/<Class>/...           (or "Real World/", the official name)
the same class folders (65 in the official release) in all four domains
"""

    def __init__(
        self,
        root: str,
        domain: str | None = None,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        **kwargs: Any,
    ):
        if (
            isinstance(val_fraction, bool)
            or not isinstance(val_fraction, (int, float))
            or not 0 <= val_fraction < 1
        ):
            raise DatasetOptionError(
                f"officehome val_fraction (DATASETS.OFFICEHOME.VAL_FRACTION) must be in [0, 1), got {val_fraction!r}"
            )
        if isinstance(split_seed, bool) or not isinstance(split_seed, int) or split_seed < 0:
            raise DatasetOptionError(
                f"officehome split_seed (DATASETS.OFFICEHOME.SPLIT_SEED) must be an int >= 0, got {split_seed!r}"
            )
        self.domains = list(DOMAINS) if domain is None else [canonical_domain(domain)]
        self.domain = None if domain is None else self.domains[0]
        self.val_fraction = float(val_fraction)
        self.split_seed = split_seed
        self.classes: list[str] = []
        self.val: list[Sample] = []
        self.test: list[Sample] = []
        self.data_dir = ""
        super().__init__(root, **kwargs)

    @classmethod
    def options_from_cfg(cls, cfg: Any) -> dict[str, Any]:
        """The split options of ``DATASETS.OFFICEHOME``."""
        return {
            "val_fraction": cfg.DATASETS.OFFICEHOME.VAL_FRACTION,
            "split_seed": cfg.DATASETS.OFFICEHOME.SPLIT_SEED,
        }

    @property
    def num_classes(self) -> int:
        """Number of classes (65 for the official release)."""
        return len(self.classes)

    def _load(self) -> None:
        self.data_dir = self._first_existing_dir([os.path.join(self.root, f) for f in ROOT_FOLDERS])
        # Classes come from all four domains even when one is read, so a label means the same class in
        # every domain; a domain with a different class list would silently shift labels, so it is an error.
        class_lists = {d: self._class_folders(self._domain_dir(d)) for d in DOMAINS}
        reference = class_lists[DOMAINS[0]]
        for domain, names in class_lists.items():
            if names != reference:
                missing, extra = sorted(set(reference) - set(names)), sorted(set(names) - set(reference))
                raise DatasetLayoutError(
                    f"officehome: the class folders of {self._domain_dir(domain)} differ from those of "
                    f"{self._domain_dir(DOMAINS[0])} (missing {missing[:5]}, extra {extra[:5]}); every domain "
                    f"must hold the same class folders.\nExpected layout:\n{self.expected_tree.strip()}"
                )
        self.classes = reference
        for domain in self.domains:
            domain_index = DOMAINS.index(domain)
            directory = self._domain_dir(domain)
            for class_index, class_name in enumerate(self.classes):
                paths = self._require_images(os.path.join(directory, class_name))
                train, val = split_train_val(
                    paths, self.val_fraction, (self.split_seed, domain_index, class_index)
                )
                self.train += [Sample(p, class_index, 0, domain_index) for p in train]
                self.val += [Sample(p, class_index, 0, domain_index) for p in val]
                self.test += [Sample(p, class_index, 0, domain_index) for p in paths]
        if self._is_synthetic():
            self.published = {}  # a generated tree has its own size; the official counts do not apply
        else:
            images = sum(PUBLISHED_IMAGES[d] for d in self.domains)
            self.published = {"test": SplitStatistics(NUM_CLASSES, images, None)}

    def _domain_dir(self, domain: str) -> str:
        candidates = [os.path.join(self.data_dir, f) for f in DOMAIN_FOLDERS[domain]]
        for candidate in candidates:
            if os.path.isdir(candidate):
                return candidate
        raise self._missing(f"the {domain} domain folder (tried {', '.join(candidates)})")

    def _class_folders(self, directory: str) -> list[str]:
        with os.scandir(directory) as entries:
            names = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
        if not names:
            raise self._missing(f"class folders in {directory} (the domain folder has none)")
        return names

    def _is_synthetic(self) -> bool:
        manifest = os.path.join(self.data_dir, "manifest.json")
        if not os.path.isfile(manifest):
            return False
        try:
            with open(manifest, encoding="utf-8") as f:
                return json.load(f).get("kind") == "synthetic_officehome"
        except (OSError, ValueError, AttributeError):
            return False

    def statistics(self) -> dict[str, SplitStatistics]:
        """Split name -> (classes, images, cameras) for ``train``, ``val`` and ``test`` (all images)."""
        return {
            "train": split_statistics(self.train),
            "val": split_statistics(self.val),
            "test": split_statistics(self.test),
        }
