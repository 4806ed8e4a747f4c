"""MSMT17 (Wei et al., CVPR 2018), V1 or V2 detected from the folder names."""

from __future__ import annotations

import os

from .base import DATASET_REGISTRY, DatasetLayoutError, ReIDDataset, Sample, SplitStatistics

__all__ = ["MSMT17"]

# Version folder -> (train image folder, test image folder); V2 has blurred faces and other folder names.
VERSIONS = {
    "MSMT17_V1": ("train", "test"),
    "MSMT17_V2": ("mask_train_v2", "mask_test_v2"),
}


@DATASET_REGISTRY.register("msmt17")
class MSMT17(ReIDDataset):
    """MSMT17: 1,041 train ids / 30,248 images (+2,373 val), query 11,659, gallery 82,161; 15 cameras.

    Read from the official list files (``<relpath> <pid>``; camid = third ``_`` field of the name - 1).
    Like torchreid, the val list joins the training set only when all images are combined (protocol 3);
    the train split alone is ``list_train.txt``. Query/gallery pids restart at 0 (their own id space).
    """

    name = "msmt17"
    root_folders = ("msmt17",)
    published = {
        "train": SplitStatistics(1041, 30248, 15),
        "query": SplitStatistics(3060, 11659, 15),
        "gallery": SplitStatistics(3060, 82161, 15),
    }
    expected_tree = """
<root>/msmt17/MSMT17_V1/        (or MSMT17_V2/ with mask_train_v2/ and mask_test_v2/)
    train/0000/0000_000_01_0303morning_0015_0.jpg ...
    test/0000/0000_000_01_0303morning_0036_0.jpg ...
    list_train.txt   list_val.txt   list_query.txt   list_gallery.txt   ("<relpath> <pid>" per line)
"""

    def _load(self) -> None:
        dataset_dir = self._require_dir(os.path.join(self.root, "msmt17"))
        found = [v for v in VERSIONS if os.path.isdir(os.path.join(dataset_dir, v))]
        if not found:
            raise self._missing(f"a version folder ({' or '.join(VERSIONS)}) in {dataset_dir}")
        version = found[0]
        train_name, test_name = VERSIONS[version]
        self.version = version
        version_dir = os.path.join(dataset_dir, version)
        train_dir = self._require_dir(os.path.join(version_dir, train_name))
        test_dir = self._require_dir(os.path.join(version_dir, test_name))
        self.train = self._read_list(train_dir, os.path.join(version_dir, "list_train.txt"))
        self.extra_train = self._read_list(train_dir, os.path.join(version_dir, "list_val.txt"))
        self.query = self._read_list(test_dir, os.path.join(version_dir, "list_query.txt"))
        self.gallery = self._read_list(test_dir, os.path.join(version_dir, "list_gallery.txt"))

    def _read_list(self, image_dir: str, list_path: str) -> list[Sample]:
        self._require_file(list_path)
        samples = []
        with open(list_path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                parts = line.split()
                try:
                    relpath, pid = parts[0], int(parts[1])
                    camid = int(os.path.basename(relpath).split("_")[2]) - 1
                except (IndexError, ValueError):
                    raise DatasetLayoutError(
                        f"{list_path} line {line_no}: {line.strip()!r} is not '<relpath> <pid>' with a name "
                        "like 0000_000_01_0303morning_0015_0.jpg"
                    ) from None
                samples.append(Sample(os.path.join(image_dir, relpath), pid, camid))
        return samples
