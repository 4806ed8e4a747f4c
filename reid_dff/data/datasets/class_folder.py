"""Folder-per-class classification data: ``<split>/<class>/<image>``, scanned with ``os.scandir`` only.

The representation is Office-Home's: ``Sample(path, pid=class index, camid=0, domain=0)`` with the class
index the position of the class folder name in the sorted list of ``train/``'s class folders
(torchvision ``ImageFolder``'s convention). ``scan_class_tree`` is shared with ImageNet: one ``scandir``
per folder and no ``stat`` per file (``DirEntry.is_file`` answers from the directory entry), so the 1.28M
training images of ImageNet list in seconds; nothing is cached.
"""

from __future__ import annotations

import os
from typing import Any

from .base import (
    DATASET_REGISTRY,
    IMAGE_EXTENSIONS,
    DatasetLayoutError,
    DatasetOptionError,
    ReIDDataset,
    Sample,
    SplitStatistics,
    split_statistics,
)

__all__ = ["ClassFolder", "class_folders", "scan_class_tree"]


def class_folders(directory: str) -> list[str]:
    """Sorted names of the sub-folders of ``directory`` (hidden ones skipped)."""
    with os.scandir(directory) as entries:
        return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())


def _class_images(directory: str, extensions: tuple[str, ...]) -> list[str]:
    with os.scandir(directory) as entries:
        names = [
            e.name
            for e in entries
            if not e.name.startswith(".") and e.name.lower().endswith(extensions) and e.is_file()
        ]
    names.sort()
    prefix = os.path.join(directory, "")  # one join per folder, not per file (1.28M for ImageNet)
    return [prefix + n for n in names]


def scan_class_tree(
    directory: str,
    classes: list[str],
    extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
    missing: str = "error",
) -> tuple[list[Sample], list[str]]:
    """Samples of ``directory/<class>/<image>`` for each name of ``classes`` (label = position in it).

    Returns the samples and the class folders found under ``directory`` that ``classes`` does not name (the
    caller decides whether that is an error). A class of ``classes`` without a folder raises a
    ``DatasetLayoutError`` when ``missing`` is "error" and is skipped when it is "skip"; a class folder
    without images raises. ``directory`` must be absolute for the paths to be.
    """
    extensions = tuple(e.lower() for e in extensions)
    present = set(class_folders(directory))
    unknown = sorted(present - set(classes))
    samples: list[Sample] = []
    for label, name in enumerate(classes):
        if name not in present:
            if missing == "skip":
                continue
            raise DatasetLayoutError(f"class folder {os.path.join(directory, name)} not found")
        folder = os.path.join(directory, name)
        paths = _class_images(folder, extensions)
        if not paths:
            raise DatasetLayoutError(f"class folder {folder} holds no images ({' '.join(extensions)})")
        samples += [Sample(p, label, 0, 0) for p in paths]
    return samples, unknown


class ClassTreeDataset(ReIDDataset):
    """A classification set read from class folders (``ClassFolder``, ``ImageNet``): ``classes`` is the
    sorted class folder names of ``train/``, and every layout problem shows ``expected_tree``."""

    classes: list[str]

    def _scan(self, directory: str, missing: str) -> list[Sample]:
        try:
            samples, unknown = scan_class_tree(directory, self.classes, missing=missing)
        except DatasetLayoutError as e:
            raise self._layout_error(str(e)) from None
        if unknown:
            raise self._layout_error(
                f"{directory} holds class folders that train/ lacks: {', '.join(unknown[:5])}"
                + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            )
        return samples

    def _layout_error(self, what: str) -> DatasetLayoutError:
        return DatasetLayoutError(f"{self.name}: {what}.\nExpected layout:\n{self.expected_tree.strip()}")


@DATASET_REGISTRY.register("class_folder")
class ClassFolder(ClassTreeDataset):
    """Any folder-per-class set under ``<root>/<folder>/``: ``train/<class>/<image>`` and optionally
    ``val/<class>/<image>`` (spec ``class_folder:<folder>``).

    ``classes`` are the sorted class folder names of ``train/``; ``val/`` may hold a subset of them (a
    class folder in ``val/`` that ``train/`` lacks is an error, since it has no label). Samples are
    ``Sample(path, pid=class index, camid=0, domain=0)``; ``test`` is the same list as ``val``. No
    published statistics.
    """

    name = "class_folder"
    positional_option = "folder"
    train_only = True  # no query/gallery
    expected_tree = """
<root>/<folder>/
    train/<class>/<image>.jpg ...     one folder per class; class index = position in the sorted names
    val/<class>/<image>.jpg ...       (optional) the same class names, or a subset of them
"""

    def __init__(self, root: str, folder: str = "", **kwargs: Any):
        if not isinstance(folder, str) or os.path.isabs(folder) or ".." in folder.split(os.sep):
            raise DatasetOptionError(
                f"class_folder folder must be a path relative to the data root, got {folder!r}"
            )
        self.folder = folder
        self.classes: list[str] = []
        self.val: list[Sample] = []
        self.test: list[Sample] = []
        self.data_dir = ""
        super().__init__(root, **kwargs)

    @property
    def num_classes(self) -> int:
        """Number of classes (class folders of ``train/``)."""
        return len(self.classes)

    def _load(self) -> None:
        self.data_dir = self._require_dir(os.path.join(self.root, self.folder))
        train_dir = self._require_dir(os.path.join(self.data_dir, "train"))
        self.classes = class_folders(train_dir)
        if not self.classes:
            raise self._missing(f"class folders in {train_dir} (the folder has none)")
        self.train = self._scan(train_dir, "error")
        val_dir = os.path.join(self.data_dir, "val")
        if os.path.isdir(val_dir):
            self.val = self._scan(val_dir, "skip")
        self.test = self.val


    def statistics(self) -> dict[str, SplitStatistics]:
        """Split name -> (classes, images, cameras) for ``train`` and ``val``."""
        return {"train": split_statistics(self.train), "val": split_statistics(self.val)}
