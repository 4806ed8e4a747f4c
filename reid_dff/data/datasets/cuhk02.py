"""CUHK02 (Li and Wang, CVPR 2013): five camera-view pairs; protocol 1 trains on all of them."""

from __future__ import annotations

import os

from .base import DATASET_REGISTRY, ReIDDataset, Sample, SplitStatistics

__all__ = ["CUHK02"]

CAMERA_PAIRS = ("P1", "P2", "P3", "P4", "P5")
TEST_PAIR = "P5"


@DATASET_REGISTRY.register("cuhk02")
class CUHK02(ReIDDataset):
    """CUHK02: 1,816 ids / 7,264 images in pairs P1-P5 (torchreid's split: P1-P4 train, P5 test).

    pid = ``pair_index * 100000 + int(name prefix)`` so ids of different pairs never collide (names
    restart per pair); camid = ``2 * pair_index + view`` (10 cameras). Query = P5 cam1, gallery = P5 cam2.
    """

    name = "cuhk02"
    root_folders = ("cuhk02",)
    published = {
        "train": SplitStatistics(1577, 6308, 8),
        "query": SplitStatistics(239, 478, 1),
        "gallery": SplitStatistics(239, 478, 1),
    }
    expected_tree = """
<root>/cuhk02/Dataset/
    P1/cam1/0001_1.png ...   P1/cam2/0001_3.png ...
    P2/ ... P5/   (each with cam1/ and cam2/)
"""

    def _load(self) -> None:
        dataset_dir = self._require_dir(os.path.join(self.root, "cuhk02", "Dataset"))
        for pair_index, pair in enumerate(CAMERA_PAIRS):
            for view, cam in enumerate(("cam1", "cam2")):
                camid = 2 * pair_index + view
                for path in self._require_images(os.path.join(dataset_dir, pair, cam), (".png",)):
                    pid = pair_index * 100000 + int(os.path.basename(path).split("_")[0])
                    sample = Sample(path, pid, camid)
                    if pair != TEST_PAIR:
                        self.train.append(sample)
                    else:
                        (self.query if view == 0 else self.gallery).append(sample)
