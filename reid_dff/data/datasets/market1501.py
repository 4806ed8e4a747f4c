"""Market-1501 and the Market-style folder datasets built on it (DukeMTMC-reID, synthetic domains)."""

from __future__ import annotations

import os
from typing import ClassVar

from .base import DATASET_REGISTRY, ReIDDataset, SplitStatistics, parse_market_dir

__all__ = ["DukeMTMCreID", "Market1501", "MarketStyleDataset"]


class MarketStyleDataset(ReIDDataset):
    """A folder with ``bounding_box_train``, ``query``, ``bounding_box_test`` of Market-style names."""

    # Folders under the data root tried in order; the first that exists is the dataset folder.
    candidate_dirs: ClassVar[tuple[str, ...]] = ()
    max_camid: ClassVar[int | None] = None
    # Dropped at parse time everywhere (Market's -1 = junk detections, as torchreid does).
    dropped_pids: ClassVar[tuple[int, ...]] = (-1,)

    def data_dir_candidates(self) -> list[str]:
        return [os.path.join(self.root, d) for d in self.candidate_dirs]

    def _load(self) -> None:
        data_dir = self._first_existing_dir(self.data_dir_candidates())
        self.data_dir = data_dir
        parse = {}
        for split, folder in (
            ("train", "bounding_box_train"),
            ("query", "query"),
            ("gallery", "bounding_box_test"),
        ):
            parse[split] = parse_market_dir(
                self._require_dir(os.path.join(data_dir, folder)), self.max_camid, self.dropped_pids
            )
        self.train, self.query, self.gallery = parse["train"], parse["query"], parse["gallery"]


@DATASET_REGISTRY.register("market1501")
class Market1501(MarketStyleDataset):
    """Market-1501 (Zheng et al., ICCV 2015): 751 train ids / 12,936 images; query 3,368; gallery 15,913.

    pid -1 (junk detections) is dropped; pid 0 (distractors) stays in the gallery and is dropped when all
    images are combined for training. Six cameras.
    """

    name = "market1501"
    root_folders = ("market1501",)
    candidate_dirs = ("market1501/Market-1501-v15.09.15", "market1501")
    max_camid = 6
    junk_pids = frozenset({0, -1})
    published = {
        "train": SplitStatistics(751, 12936, 6),
        "query": SplitStatistics(750, 3368, 6),
        "gallery": SplitStatistics(751, 15913, 6),
    }
    expected_tree = """
<root>/market1501/Market-1501-v15.09.15/   (or the flat <root>/market1501/)
    bounding_box_train/0002_c1s1_000451_03.jpg ...
    query/0001_c1s1_001051_00.jpg ...
    bounding_box_test/0000_c1s1_000151_01.jpg ...
"""


@DATASET_REGISTRY.register("dukemtmcreid")
class DukeMTMCreID(MarketStyleDataset):
    """DukeMTMC-reID (Ristani et al. 2016, Zheng et al. 2017): 702 train ids / 16,522 images; 8 cameras."""

    name = "dukemtmcreid"
    root_folders = ("dukemtmc-reid",)
    candidate_dirs = ("dukemtmc-reid/DukeMTMC-reID",)
    max_camid = 8
    dropped_pids = ()
    published = {
        "train": SplitStatistics(702, 16522, 8),
        "query": SplitStatistics(702, 2228, 8),
        "gallery": SplitStatistics(1110, 17661, 8),
    }
    expected_tree = """
<root>/dukemtmc-reid/DukeMTMC-reID/
    bounding_box_train/0001_c2_f0046182.jpg ...
    query/0005_c2_f0046985.jpg ...
    bounding_box_test/0002_c1_f0044158.jpg ...
"""
