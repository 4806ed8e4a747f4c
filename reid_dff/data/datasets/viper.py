"""VIPeR (Gray et al., PETS 2007): 632 identities, one image in each of two cameras."""

from __future__ import annotations

import os
from typing import Any

from .base import DATASET_REGISTRY, DatasetLayoutError, Sample, SplitStatistics
from .protocol_splits import ProtocolSplitDataset

__all__ = ["VIPeR"]

NUM_PAIRS = 632


@DATASET_REGISTRY.register("viper")
class VIPeR(ProtocolSplitDataset):
    """VIPeR: 632 pairs (sorted ``cam_a`` / ``cam_b`` order); per split 316 train and 316 test pairs.

    Query = cam_a images of the test pairs (camid 0), gallery = their cam_b images (camid 1): the
    direction the DG papers report. pid = pair index.
    """

    name = "viper"
    root_folders = ("viper",)
    published = {
        "train": SplitStatistics(316, 632, 2),
        "query": SplitStatistics(316, 316, 1),
        "gallery": SplitStatistics(316, 316, 1),
    }
    expected_tree = """
<root>/viper/VIPeR/
    cam_a/000_45.bmp ... (632 images)
    cam_b/000_45.bmp ... (632 images, paired with cam_a by sorted order)
"""

    def _load_split(self, split: dict[str, Any]) -> None:
        base = os.path.join(self.root, "viper", "VIPeR")
        cam_a = self._require_images(os.path.join(base, "cam_a"), (".bmp",))
        cam_b = self._require_images(os.path.join(base, "cam_b"), (".bmp",))
        if len(cam_a) != len(cam_b):
            raise DatasetLayoutError(
                f"viper: cam_a has {len(cam_a)} images and cam_b {len(cam_b)}; pairs are formed by sorted "
                "order, so both need the same number (632 in the official data)"
            )
        needed = max(split["train_ids"] + split["test_ids"]) + 1
        if len(cam_a) < needed:
            raise DatasetLayoutError(
                f"viper: the split file {self.split_file} uses pair index {needed - 1} but {base} has only "
                f"{len(cam_a)} pairs (the official data has {NUM_PAIRS})"
            )
        for pid in split["train_ids"]:
            self.train += [Sample(cam_a[pid], pid, 0), Sample(cam_b[pid], pid, 1)]
        self.query = [Sample(cam_a[pid], pid, 0) for pid in split["test_ids"]]
        self.gallery = [Sample(cam_b[pid], pid, 1) for pid in split["test_ids"]]
