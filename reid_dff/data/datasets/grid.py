"""GRID (Loy et al., CVPR 2009): underground station, 10 fixed splits from features_and_partitions.mat."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ...utils.io import sha256_file
from .base import (
    DATASET_REGISTRY,
    DatasetLayoutError,
    DatasetOptionError,
    ReIDDataset,
    Sample,
    SplitStatistics,
)

__all__ = ["GRID"]

NUM_SPLITS = 10


@DATASET_REGISTRY.register("grid")
class GRID(ReIDDataset):
    """GRID: probe 250 images, gallery 1,025 (250 matches + 775 distractors with id 0000).

    Split ``split_id`` (0-9) comes from ``trainIdxAll`` of the dataset's own .mat (125 train ids, as
    torchreid reads it: third field of each split's struct). Query = probe images of the other 125 ids,
    gallery = their gallery images + all distractors (900). Name fields: id, camera (1-based).
    """

    name = "grid"
    root_folders = ("grid",)
    has_protocol_splits = True
    junk_pids = frozenset({0})
    published = {
        "train": SplitStatistics(125, 250, None),
        "query": SplitStatistics(125, 125, None),
        "gallery": SplitStatistics(126, 900, None),
    }
    expected_tree = """
<root>/grid/underground_reid/
    probe/0001_1_25004_107_32_106_221.jpeg ...
    gallery/0000_1_25010_112_39_88_212.jpeg ...
    features_and_partitions.mat   ('trainIdxAll': 1x10 cell of split structs)
"""

    def __init__(self, root: str, split_id: int = 0, **kwargs: Any):
        if isinstance(split_id, bool) or not isinstance(split_id, int) or not 0 <= split_id < NUM_SPLITS:
            raise DatasetOptionError(
                f"grid split_id must be in 0..{NUM_SPLITS - 1} (DATASETS.SPLIT_IDS), got {split_id!r}"
            )
        self._requested_split = split_id
        super().__init__(root, **kwargs)

    def _load(self) -> None:
        from scipy.io import loadmat

        base = os.path.join(self.root, "grid", "underground_reid")
        probe = self._require_images(os.path.join(base, "probe"), (".jpeg",))
        gallery = self._require_images(os.path.join(base, "gallery"), (".jpeg",))
        mat_path = self._require_file(os.path.join(base, "features_and_partitions.mat"))
        try:
            splits = loadmat(mat_path)["trainIdxAll"].reshape(-1)
            train_ids = {int(i) for i in np.asarray(splits[self._requested_split][0][0][2]).reshape(-1)}
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise DatasetLayoutError(
                f"grid: cannot read split {self._requested_split} from {mat_path} ({e!r}); expected "
                "'trainIdxAll', a 1x10 cell of structs whose third field lists the 125 train ids"
            ) from e
        self.split_id = self._requested_split
        self.split_file = mat_path
        self.split_sha256 = sha256_file(mat_path)

        def sample(path: str) -> Sample:
            fields = os.path.basename(path).split("_")
            return Sample(path, int(fields[0]), int(fields[1]) - 1)

        for paths, test_list in ((probe, self.query), (gallery, self.gallery)):
            for path in paths:
                s = sample(path)
                (self.train if s.pid in train_ids else test_list).append(s)
