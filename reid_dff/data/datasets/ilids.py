"""QMUL i-LIDS (Zheng et al., BMVC 2009): 476 images of 119 persons from an airport."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from typing import Any

from .base import DATASET_REGISTRY, DatasetLayoutError, Sample, SplitStatistics
from .protocol_splits import ProtocolSplitDataset, resolve_ilids_choice

__all__ = ["ILIDS"]

# "0001001.jpg": person 0001, image 001. Like torchreid, the image number stands in for the camera
# (the data has no camera labels), so a query and a gallery image of one person never share a camid.
ILIDS_NAME = re.compile(r"^(\d{4})(\d{3})\.jpg$", re.IGNORECASE)


@DATASET_REGISTRY.register("ilids")
class ILIDS(ProtocolSplitDataset):
    """i-LIDS: per split 59 train ids (all images) and 60 test ids with one query and one gallery image.

    The two test images of each id are picked by the split file's ``image_choice`` among the id's
    images sorted by name (see ``protocol_splits``), or listed explicitly by ``query_images`` /
    ``gallery_images`` (names in ``Persons/``) in a custom split file.
    """

    name = "ilids"
    root_folders = ("ilids",)
    published = {
        "train": SplitStatistics(59, None, None),
        "query": SplitStatistics(60, 60, None),
        "gallery": SplitStatistics(60, 60, None),
    }
    expected_tree = """
<root>/ilids/i-LIDS_Pedestrian/Persons/
    0001001.jpg 0001002.jpg ... (476 images, 119 persons; first 4 digits = person)
"""

    def _load_split(self, split: dict[str, Any]) -> None:
        persons_dir = os.path.join(self.root, "ilids", "i-LIDS_Pedestrian", "Persons")
        by_pid: dict[int, list[str]] = defaultdict(list)
        for path in self._require_images(persons_dir, (".jpg",)):
            match = ILIDS_NAME.match(os.path.basename(path))
            if match is None:
                raise DatasetLayoutError(f"ilids: {path} is not named like 0001001.jpg (person, image)")
            by_pid[int(match.group(1))].append(path)

        def sample(path: str) -> Sample:
            name = os.path.basename(path)
            return Sample(path, int(name[:4]), int(name[4:7]) - 1)

        for pid in split["train_ids"] + split["test_ids"]:
            if not by_pid.get(pid):
                raise DatasetLayoutError(
                    f"ilids: no images of person {pid:04d} in {persons_dir} (split {self.split_id} of "
                    f"{self.split_file} uses it)"
                )
        self.train = [sample(p) for pid in split["train_ids"] for p in by_pid[pid]]
        if "query_images" in split:
            self.query = [sample(os.path.join(persons_dir, n)) for n in split["query_images"]]
            self.gallery = [sample(os.path.join(persons_dir, n)) for n in split["gallery_images"]]
            test_ids = set(split["test_ids"])
            for s in self.query + self.gallery:
                if not os.path.isfile(s.path):
                    raise DatasetLayoutError(f"ilids: {s.path} listed by {self.split_file} does not exist")
                if s.pid not in test_ids:
                    raise DatasetLayoutError(
                        f"ilids: {os.path.basename(s.path)} listed by {self.split_file} (split {self.split_id}) "
                        f"shows person {s.pid:04d}, which is not among that split's test_ids"
                    )
            return
        for pid, choice in zip(split["test_ids"], split["image_choice"]):
            paths = by_pid[pid]
            if len(paths) < 2:
                raise DatasetLayoutError(
                    f"ilids: person {pid:04d} has {len(paths)} image in {persons_dir}; a test id needs two"
                )
            q, g = resolve_ilids_choice(len(paths), choice)
            self.query.append(sample(paths[q]))
            self.gallery.append(sample(paths[g]))
