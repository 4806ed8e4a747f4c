"""PRID2011 single shot (Hirzer et al., SCIA 2011): 200 persons seen by both cameras plus distractors."""

from __future__ import annotations

import os
import re
from typing import Any

from .base import DATASET_REGISTRY, DatasetLayoutError, Sample, SplitStatistics
from .protocol_splits import ProtocolSplitDataset

__all__ = ["PRID"]

PERSON_NAME = re.compile(r"^person_(\d{4})\.png$")
NUM_SHARED_IDS = 200


@DATASET_REGISTRY.register("prid")
class PRID(ProtocolSplitDataset):
    """PRID2011 single shot: cam_a 385 persons, cam_b 749; persons 1..200 appear in both.

    Per split: 100 train ids (both cameras), query = cam_a of the 100 test ids, gallery = cam_b of the
    test ids + every cam_b person > 200 as a distractor (649 images). pid = person number. Combining all
    images for training (``DATASETS.COMBINE_ALL``) leaves the distractors out, as torchreid does.
    """

    name = "prid"
    junk_pids = frozenset(range(NUM_SHARED_IDS + 1, 750))
    root_folders = ("prid2011",)
    published = {
        "train": SplitStatistics(100, 200, 2),
        "query": SplitStatistics(100, 100, 1),
        "gallery": SplitStatistics(649, 649, 1),
    }
    expected_tree = """
<root>/prid2011/prid_2011/single_shot/
    cam_a/person_0001.png ... person_0385.png
    cam_b/person_0001.png ... person_0749.png
"""

    def _persons(self, directory: str) -> dict[int, str]:
        persons = {}
        for path in self._require_images(directory, (".png",)):
            match = PERSON_NAME.match(os.path.basename(path))
            if match:
                persons[int(match.group(1))] = path
        return persons

    def _load_split(self, split: dict[str, Any]) -> None:
        base = os.path.join(self.root, "prid2011", "prid_2011", "single_shot")
        cam_a = self._persons(os.path.join(base, "cam_a"))
        cam_b = self._persons(os.path.join(base, "cam_b"))
        for pid in split["train_ids"] + split["test_ids"]:
            for cam, persons in (("cam_a", cam_a), ("cam_b", cam_b)):
                if pid not in persons:
                    raise DatasetLayoutError(
                        f"prid: {os.path.join(base, cam, f'person_{pid:04d}.png')} is missing (split "
                        f"{self.split_id} of {self.split_file} uses person {pid})"
                    )
        for pid in split["train_ids"]:
            self.train += [Sample(cam_a[pid], pid, 0), Sample(cam_b[pid], pid, 1)]
        self.query = [Sample(cam_a[pid], pid, 0) for pid in split["test_ids"]]
        distractors = sorted(pid for pid in cam_b if pid > NUM_SHARED_IDS)
        self.gallery = [Sample(cam_b[pid], pid, 1) for pid in split["test_ids"] + distractors]
