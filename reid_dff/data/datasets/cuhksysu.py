"""CUHK-SYSU person crops (Xiao et al., CVPR 2017), train only; two crop conventions detected."""

from __future__ import annotations

import os
import re
from typing import ClassVar

from .base import DATASET_REGISTRY, DatasetLayoutError, ReIDDataset, Sample, SplitStatistics

__all__ = ["CUHKSYSU"]

# torchreid: "p11422_s16929_1.jpg" -> pid 11422, no camera (0).
TORCHREID_NAME = re.compile(r"^p(\d+)_s(\d+)_(\d+)\.jpe?g$", re.IGNORECASE)
# MetaBIN: "p00001_n01_s00001_hard0.png" -> pid 1, camid = scene 1 (a scene is the closest thing to a
# camera in this person-search data).
METABIN_NAME = re.compile(r"^p(\d+)_n(\d+)_s(\d+)", re.IGNORECASE)


@DATASET_REGISTRY.register("cuhksysu")
class CUHKSYSU(ReIDDataset):
    """CUHK-SYSU crops: 11,934 ids / 34,574 images, training only (query and gallery are empty).

    Two layouts: torchreid's ``cuhksysu/cropped_images/p11422_s16929_1.jpg`` (camid 0) and MetaBIN's
    ``CUHK-SYSU/cropped_image/p00001_n01_s00001_hard0.png`` (camid = scene id). The convention is
    detected from the folder and the file names (``self.convention``).
    """

    name = "cuhksysu"
    root_folders = ("cuhksysu", "CUHK-SYSU")
    train_only = True
    candidate_dirs: ClassVar[tuple[str, ...]] = (
        "cuhksysu/cropped_images",
        "CUHK-SYSU/cropped_image",
        "CUHK-SYSU/cropped_images",
        "cuhksysu/cropped_image",
    )
    expected_tree = """
<root>/cuhksysu/cropped_images/p11422_s16929_1.jpg ...          (torchreid convention)
  or
<root>/CUHK-SYSU/cropped_image/p00001_n01_s00001_hard0.png ...  (MetaBIN convention)
"""

    @property
    def published(self) -> dict[str, SplitStatistics]:  # type: ignore[override]
        cameras = 1 if self.convention == "torchreid" else None
        return {"train": SplitStatistics(11934, 34574, cameras)}

    def _load(self) -> None:
        data_dir = self._first_existing_dir([os.path.join(self.root, d) for d in self.candidate_dirs])
        paths = self._require_images(data_dir, (".jpg", ".jpeg", ".png"))
        first = os.path.basename(paths[0])
        if METABIN_NAME.match(first):
            self.convention, pattern = "metabin", METABIN_NAME
        elif TORCHREID_NAME.match(first):
            self.convention, pattern = "torchreid", TORCHREID_NAME
        else:
            raise DatasetLayoutError(
                f"cuhksysu: cannot tell the crop convention from {paths[0]}: expected names like "
                "p11422_s16929_1.jpg (torchreid) or p00001_n01_s00001_hard0.png (MetaBIN)"
            )
        train = []
        for path in paths:
            match = pattern.match(os.path.basename(path))
            if match is None:
                raise DatasetLayoutError(
                    f"cuhksysu: {path} does not follow the {self.convention} naming of {paths[0]}"
                )
            pid = int(match.group(1))
            camid = int(match.group(3)) if self.convention == "metabin" else 0
            train.append(Sample(path, pid, camid))
        self.train = train
