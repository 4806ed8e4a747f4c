"""Custom data: a folder with train/query/gallery, one sub-folder per identity or Market-style names."""

from __future__ import annotations

import os
import re
from typing import Any

from .base import (
    DATASET_REGISTRY,
    MARKET_NAME,
    DatasetLayoutError,
    DatasetOptionError,
    ReIDDataset,
    Sample,
    check_unreadable_files,
    list_images,
    parse_market_dir,
)

__all__ = ["ImageFolder"]

CAMERA_TOKEN = re.compile(r"_c(\d+)")
SPLIT_FOLDERS = {
    "train": ("train", "bounding_box_train"),
    "query": ("query",),
    "gallery": ("gallery", "bounding_box_test"),
}


@DATASET_REGISTRY.register("image_folder")
class ImageFolder(ReIDDataset):
    """Your own data under ``<root>/<folder>/`` with ``train/`` (or ``bounding_box_train/``), ``query/``,
    ``gallery/`` (or ``bounding_box_test/``); query and gallery may be absent for training-only data.

    Each split folder is either **identity folders** (``train/<identity>/<image>``; the identity is the
    folder name, an int if it is all digits, else numbered in sorted order; camid from a ``_c<k>`` token in
    the file name, else query images get camid 0 and gallery/train images camid 1, i.e. query and
    gallery are assumed to come from different cameras) or **Market-style names** in the folder itself
    (``0002_c1s1_000451_03.jpg``). Spec form ``image_folder:<folder>``.
    """

    name = "image_folder"
    positional_option = "folder"
    junk_pids = frozenset({-1})
    expected_tree = """
<root>/<folder>/
    train/<identity>/<image>.jpg ...      (identity folders)
    query/<identity>/<image>.jpg ...
    gallery/<identity>/<image>.jpg ...
  or
    train/0002_c1s1_000451_03.jpg ...     (Market-style names, also bounding_box_train/ bounding_box_test/)
"""

    def __init__(self, root: str, folder: str = "", **kwargs: Any):
        if not isinstance(folder, str) or os.path.isabs(folder) or ".." in folder.split(os.sep):
            raise DatasetOptionError(
                f"image_folder folder must be a path relative to the data root, got {folder!r}"
            )
        self.folder = folder
        super().__init__(root, **kwargs)

    def _load(self) -> None:
        base = self._require_dir(os.path.join(self.root, self.folder))
        self.data_dir = base
        found = {}
        for split, folders in SPLIT_FOLDERS.items():
            found[split] = next(
                (os.path.join(base, n) for n in folders if os.path.isdir(os.path.join(base, n))), None
            )
        if found["train"] is None and found["query"] is None:
            raise self._missing(f"a train/ or query/ folder in {base}")
        if (found["query"] is None) != (found["gallery"] is None):
            raise self._missing(f"both query/ and gallery/ in {base} (only one of them exists)")
        # One identity numbering for all splits: folder names that are not ints are numbered in sorted order.
        names = sorted({e.name for d in found.values() if d for e in os.scandir(d) if e.is_dir()})
        non_int = [n for n in names if not n.isdigit()]
        self._name_to_pid = {n: int(n) for n in names if n.isdigit()}
        offset = max(self._name_to_pid.values(), default=-1) + 1
        self._name_to_pid.update({n: offset + i for i, n in enumerate(non_int)})
        for split, directory in found.items():
            if directory is not None:
                setattr(self, split, self._parse_split(directory, default_camid=0 if split == "query" else 1))

    def _parse_split(self, directory: str, default_camid: int) -> list[Sample]:
        identity_dirs = sorted(e.path for e in os.scandir(directory) if e.is_dir())
        loose = list_images(directory)
        if identity_dirs and loose:
            raise DatasetLayoutError(
                f"image_folder: {directory} mixes identity folders and loose images; use one form per split"
            )
        if not identity_dirs:
            if loose and not all(MARKET_NAME.match(os.path.basename(p)) for p in loose):
                bad = next(p for p in loose if not MARKET_NAME.match(os.path.basename(p)))
                raise DatasetLayoutError(
                    f"image_folder: {bad} is neither in an identity folder nor Market-style "
                    "(PPPP_cC..., e.g. 0002_c1s1_000451_03.jpg)"
                )
            return parse_market_dir(directory, drop_pids=())
        samples = []
        for identity_dir in identity_dirs:
            pid = self._name_to_pid[os.path.basename(identity_dir)]
            paths = list_images(identity_dir)
            if not paths:
                check_unreadable_files(identity_dir)
            for path in paths:
                match = CAMERA_TOKEN.search(os.path.basename(path))
                camid = int(match.group(1)) - 1 if match else default_camid
                samples.append(Sample(path, pid, camid))
        return samples
