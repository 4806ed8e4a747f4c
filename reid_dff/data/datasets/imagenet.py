"""ImageNet-1k (ILSVRC 2012 classification): the stage-1 pre-training set of the paper's backbones.

Published statistics: 1,000 classes (WordNet ids such as ``n01440764``), 1,281,167 training images
(732 to 1,300 per class), 50,000 validation images (50 per class). The test labels are not public, so the
validation set is the evaluation set (also exposed as ``test``). Class index = position of the wnid in the
sorted class folders of ``train/`` (torchvision ``ImageFolder``'s convention, so the indices match
torchvision's ImageNet checkpoints). Samples are Office-Home's classification samples:
``Sample(path, pid=class index, camid=0, domain=0)``.
"""

from __future__ import annotations

import csv
import os
from typing import Any

from .base import (
    DATASET_REGISTRY,
    IMAGE_EXTENSIONS,
    DatasetLayoutError,
    ReIDDataset,
    Sample,
    SplitStatistics,
    split_statistics,
)
from .class_folder import ClassTreeDataset, class_folders

__all__ = ["ImageNet", "read_val_solution"]

NUM_CLASSES = 1000
PUBLISHED_TRAIN_IMAGES = 1_281_167
PUBLISHED_VAL_IMAGES = 50_000
# The Kaggle "ImageNet Object Localization Challenge" archive unpacks under ILSVRC/Data/CLS-LOC/.
DATA_FOLDERS = ("imagenet", os.path.join("imagenet", "ILSVRC", "Data", "CLS-LOC"))
VAL_SOLUTION = "LOC_val_solution.csv"
VAL_SOLUTION_HEADER = ["ImageId", "PredictionString"]


def read_val_solution(path: str) -> dict[str, str]:
    """Kaggle's ``LOC_val_solution.csv`` -> {image id: wnid}, the wnid being the first token of
    ``PredictionString`` (``"n01751748 2 29 500 375 ..."``: a class and its boxes)."""
    labels: dict[str, str] = {}
    with open(path, encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header is None or [h.strip().lstrip("\ufeff") for h in header[:2]] != VAL_SOLUTION_HEADER:
            raise DatasetLayoutError(
                f"{path}: the header is {header!r}, expected {','.join(VAL_SOLUTION_HEADER)} (Kaggle's file)"
            )
        for line, row in enumerate(rows, start=2):
            if not row:
                continue
            image_id = row[0].strip()
            tokens = row[1].split() if len(row) > 1 else []
            if not image_id or not tokens:
                raise DatasetLayoutError(f"{path} line {line}: no wnid for image {image_id!r} in {row!r}")
            if labels.setdefault(image_id, tokens[0]) != tokens[0]:
                raise DatasetLayoutError(
                    f"{path} line {line}: image {image_id!r} is labelled {tokens[0]!r} here and "
                    f"{labels[image_id]!r} on an earlier line"
                )
    return labels


@DATASET_REGISTRY.register("imagenet")
class ImageNet(ClassTreeDataset):
    """ImageNet-1k under ``<root>/imagenet/`` (or the Kaggle archive's ``ILSVRC/Data/CLS-LOC/`` inside it).

    ``train/<wnid>/*.JPEG``; validation either as class folders ``val/<wnid>/*.JPEG`` (the layout of
    torchvision's ``valprep.sh``) or as Kaggle's flat ``val/*.JPEG`` labelled by ``LOC_val_solution.csv``
    (searched in ``<root>/imagenet/``, beside ``train/`` and in ``val/``). Both validation layouts give the
    same samples in the same order (by class, then file name). ``classes`` are the sorted wnids.
    """

    name = "imagenet"
    train_only = True  # no query/gallery: a ReID target list cannot name it
    root_folders = ("imagenet",)
    published = {
        "train": SplitStatistics(NUM_CLASSES, PUBLISHED_TRAIN_IMAGES, None),
        "val": SplitStatistics(NUM_CLASSES, PUBLISHED_VAL_IMAGES, None),
    }
    expected_tree = """
<root>/imagenet/                      (or <root>/imagenet/ILSVRC/Data/CLS-LOC/, as Kaggle's archive unpacks)
    train/n01440764/n01440764_10026.JPEG ...    1,000 wnid folders, 1,281,167 images
    val/n01440764/ILSVRC2012_val_00000293.JPEG  class folders (torchvision's valprep.sh layout), 50,000 images
  or
    val/ILSVRC2012_val_00000001.JPEG ...        flat, labelled by LOC_val_solution.csv (columns
    LOC_val_solution.csv                        ImageId,PredictionString; in <root>/imagenet/ or beside val/)
"""

    def __init__(self, root: str, **kwargs: Any):
        self.classes: list[str] = []
        self.val: list[Sample] = []
        self.test: list[Sample] = []
        self.data_dir = ""
        self.val_layout = ""  # "folders" or "csv"
        super().__init__(root, **kwargs)

    @property
    def num_classes(self) -> int:
        """Number of classes (1,000 for the full set)."""
        return len(self.classes)

    def _load(self) -> None:
        candidates = [os.path.join(self.root, f) for f in DATA_FOLDERS]
        data_dir = next((c for c in candidates if os.path.isdir(os.path.join(c, "train"))), None)
        if data_dir is None:
            raise self._missing(
                f"a train/ folder (tried {', '.join(os.path.join(c, 'train') for c in candidates)})"
            )
        self.data_dir = data_dir
        train_dir = os.path.join(data_dir, "train")
        val_dir = self._require_dir(os.path.join(data_dir, "val"))
        self.classes = class_folders(train_dir)
        if not self.classes:
            raise self._missing(f"wnid folders in {train_dir} (the folder has none)")
        self.train = self._scan(train_dir, "error")
        if class_folders(val_dir):
            self.val_layout = "folders"
            self.val = self._scan(val_dir, "skip")
        else:
            self.val_layout = "csv"
            self.val = self._flat_val(val_dir)
        self.test = self.val

    def _solution_file(self, val_dir: str) -> str:
        candidates = list(
            dict.fromkeys(
                os.path.join(d, VAL_SOLUTION)
                for d in (os.path.join(self.root, "imagenet"), self.data_dir, val_dir)
            )
        )
        found = next((c for c in candidates if os.path.isfile(c)), None)
        if found is None:
            raise self._missing(
                f"{VAL_SOLUTION} for the flat {val_dir} (it has no class folders; tried {', '.join(candidates)})"
            )
        return found

    def _flat_val(self, val_dir: str) -> list[Sample]:
        extensions = tuple(e.lower() for e in IMAGE_EXTENSIONS)
        with os.scandir(val_dir) as entries:
            names = [
                e.name
                for e in entries
                if not e.name.startswith(".") and e.name.lower().endswith(extensions) and e.is_file()
            ]
        if not names:
            raise self._missing(f"images in {val_dir} (neither class folders nor images)")
        solution = self._solution_file(val_dir)
        labels = read_val_solution(solution)
        index = {wnid: i for i, wnid in enumerate(self.classes)}
        keyed = []
        for name in names:
            image_id = os.path.splitext(name)[0]
            wnid = labels.get(image_id)
            if wnid is None:
                raise self._layout_error(f"{solution} has no row for the image {os.path.join(val_dir, name)}")
            label = index.get(wnid)
            if label is None:
                raise self._layout_error(
                    f"{solution} labels {image_id} with {wnid!r}, which is not a class folder of "
                    f"{os.path.join(self.data_dir, 'train')}"
                )
            keyed.append((label, name))
        keyed.sort()
        prefix = os.path.join(val_dir, "")
        return [Sample(prefix + name, label, 0, 0) for label, name in keyed]

    def statistics(self) -> dict[str, SplitStatistics]:
        """Split name -> (classes, images, cameras) for ``train`` and ``val``."""
        return {"train": split_statistics(self.train), "val": split_statistics(self.val)}
