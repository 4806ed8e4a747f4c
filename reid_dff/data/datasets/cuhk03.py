"""CUHK03 (Li et al., CVPR 2014): images extracted once from ``cuhk-03.mat`` into a cache folder, or read
from the ``images_<boxes>/`` folder torchreid already extracted into the data root."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from typing import Any

import cv2
import numpy as np

from ...utils.io import atomic_write_bytes, atomic_write_json
from .base import (
    DATASET_REGISTRY,
    DatasetLayoutError,
    DatasetOptionError,
    ReIDDataset,
    Sample,
    SplitStatistics,
)

__all__ = ["CUHK03", "default_cuhk03_cache_dir", "extract_cuhk03_images"]

BOXES = ("detected", "labeled")
MANIFEST_NAME = "manifest.json"
NUM_CLASSIC_SPLITS = 20
# torchreid writes these four files after extracting both box types: their presence is its own signal
# that images_detected/ and images_labeled/ are complete.
TORCHREID_SPLIT_FILES = (
    "splits_classic_detected.json",
    "splits_classic_labeled.json",
    "splits_new_detected.json",
    "splits_new_labeled.json",
)
IMAGE_NAME = re.compile(r"^(\d)_(\d{3})_([12])_(\d{2})\.png$")


def default_cuhk03_cache_dir() -> str:
    """``~/.cache/reid_dff/cuhk03`` (``$XDG_CACHE_HOME`` respected)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "reid_dff", "cuhk03")


def _image_name(campair: int, pid: int, imgid: int) -> str:
    # The community naming (torchreid): camera pair, person within the pair, view, image index, 1-based.
    # The first five cells of a person are view 1, the last five view 2.
    view = 1 if imgid < 5 else 2
    return f"{campair + 1}_{pid + 1:03d}_{view}_{imgid + 1:02d}.png"


def torchreid_image_dir(dataset_dir: str, boxes: str) -> str | None:
    """``<dataset_dir>/images_<boxes>`` when torchreid has finished extracting into it, else ``None``."""
    image_dir = os.path.join(dataset_dir, f"images_{boxes}")
    complete = all(os.path.isfile(os.path.join(dataset_dir, name)) for name in TORCHREID_SPLIT_FILES)
    return image_dir if complete and os.path.isdir(image_dir) else None


def persons_from_folder(image_dir: str) -> list[tuple[int, int, list[str]]]:
    """``(campair, pid, image names)`` per person (1-based), from extracted ``c_ppp_v_ii.png`` names.

    The same list ``extract_cuhk03_images`` returns, in the same order (camera pair, person, image).
    """
    by_person: dict[tuple[int, int], list[tuple[int, str]]] = defaultdict(list)
    for name in os.listdir(image_dir):
        match = IMAGE_NAME.match(name)
        if match is None:
            if name.lower().endswith(".png"):
                raise DatasetLayoutError(
                    f"{os.path.join(image_dir, name)} does not follow CUHK03's extracted naming "
                    "<campair>_<pid:03d>_<view>_<image:02d>.png; is this folder torchreid's extraction?"
                )
            continue
        campair, pid, _, imgid = (int(g) for g in match.groups())
        by_person[(campair, pid)].append((imgid, name))
    if not by_person:
        raise DatasetLayoutError(f"{image_dir} holds no extracted CUHK03 images")
    return [(c, p, [name for _, name in sorted(images)]) for (c, p), images in sorted(by_person.items())]


def _source_fingerprint(mat_path: str) -> dict[str, Any]:
    st = os.stat(mat_path)
    return {"source": os.path.abspath(mat_path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def extract_cuhk03_images(mat_path: str, boxes: str, out_dir: str) -> list[tuple[int, int, list[str]]]:
    """Write the ``boxes`` images of ``cuhk-03.mat`` as PNGs into ``out_dir`` (atomically, manifest last).

    Returns ``(campair, pid, image names)`` per person (1-based campair/pid). Reuses a complete earlier
    extraction of the same file (same path, size and mtime).
    """
    import json

    import h5py  # the MATLAB v7.3 file is HDF5

    manifest_path = os.path.join(out_dir, MANIFEST_NAME)
    fingerprint = {**_source_fingerprint(mat_path), "boxes": boxes}
    if os.path.isfile(manifest_path):
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
        if all(manifest.get(k) == v for k, v in fingerprint.items()):
            persons = [(int(c), int(p), list(names)) for c, p, names in manifest["persons"]]
            # A cache whose images were deleted since is extracted again, not trusted.
            if all(os.path.isfile(os.path.join(out_dir, n)) for _, _, names in persons for n in names):
                return persons
    persons = []
    with h5py.File(mat_path, "r") as mat:
        if boxes not in mat:
            raise DatasetLayoutError(
                f"{mat_path} has no '{boxes}' cell array (keys: {sorted(mat.keys())}); is this the "
                "official cuhk-03.mat?"
            )
        for campair, pair_ref in enumerate(np.asarray(mat[boxes]).reshape(-1)):
            # MATLAB stores column-major: transpose to (persons, 10 cells) and images to (H, W, 3).
            cells = np.asarray(mat[pair_ref]).T
            for pid in range(cells.shape[0]):
                names = []
                for imgid, image_ref in enumerate(cells[pid]):
                    image = np.asarray(mat[image_ref]).T
                    if image.size == 0 or image.ndim != 3:
                        continue  # some persons have images in only one view
                    name = _image_name(campair, pid, imgid)
                    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(image[:, :, ::-1]))
                    if not ok:
                        raise DatasetLayoutError(f"cannot encode image {name} extracted from {mat_path}")
                    atomic_write_bytes(os.path.join(out_dir, name), encoded.tobytes())
                    names.append(name)
                if not names:
                    raise DatasetLayoutError(
                        f"{mat_path}: camera pair {campair + 1} person {pid + 1} has no '{boxes}' images"
                    )
                persons.append((campair + 1, pid + 1, names))
    atomic_write_json(manifest_path, {**fingerprint, "persons": [[c, p, n] for c, p, n in persons]})
    return persons


@DATASET_REGISTRY.register("cuhk03")
class CUHK03(ReIDDataset):
    """CUHK03, new protocol (Zhong et al., CVPR 2017) by default: 767 train / 700 test ids, detected boxes.

    ``boxes`` "detected" | "labeled"; ``classic_split=True`` uses the 20 classic splits of ``testsets``
    (``split_id`` 0-19, query = gallery = the 100 test ids; evaluated like every target, same-view gallery
    images removed per query, as torchreid does by default, not with its optional single-gallery-shot CMC).
    Images are extracted from ``cuhk-03.mat`` once into ``cache_dir/<boxes>/`` (the data root is never
    written), unless torchreid has already extracted them into ``<root>/cuhk03/images_<boxes>/`` and
    ``torchreid_images`` is true: then they are read from there (``self.image_source`` says which) and
    the new protocol does not need ``cuhk-03.mat`` at all. Train pids are the global ``labels`` (new) or
    ``campair * 1000 + pid`` (classic); camid is the view (0/1).
    """

    name = "cuhk03"
    root_folders = ("cuhk03",)
    expected_tree = """
<root>/cuhk03/
    cuhk03_release/cuhk-03.mat                   (HDF5 / MATLAB v7.3: 'detected', 'labeled', 'testsets')
    cuhk03_new_protocol_config_detected.mat      (new protocol; 'train_idx', 'query_idx', 'gallery_idx',
    cuhk03_new_protocol_config_labeled.mat        'labels', 'filelist')
    images_detected/  images_labeled/  splits_*.json   (optional: torchreid's extraction, reused)
"""

    def __init__(
        self,
        root: str,
        boxes: str = "detected",
        classic_split: bool = False,
        split_id: int = 0,
        cache_dir: str | None = None,
        torchreid_images: bool = True,
        **kwargs: Any,
    ):
        if boxes not in BOXES:
            raise DatasetOptionError(
                f"cuhk03 boxes must be one of {BOXES} (DATASETS.CUHK03.BOXES), got {boxes!r}"
            )
        if classic_split and not 0 <= split_id < NUM_CLASSIC_SPLITS:
            raise DatasetOptionError(
                f"cuhk03 classic split_id must be in 0..{NUM_CLASSIC_SPLITS - 1} "
                f"(DATASETS.CUHK03.CLASSIC_SPLIT_ID), got {split_id}"
            )
        if not classic_split and split_id != 0:
            raise DatasetOptionError(
                "cuhk03 new protocol has a single split; split_id applies to classic_split only"
            )
        self.boxes = boxes
        self.classic_split = classic_split
        self.cache_dir = os.path.abspath(os.path.expanduser(cache_dir or default_cuhk03_cache_dir()))
        self.torchreid_images = torchreid_images
        self.image_source = ""  # "torchreid" or "cache", set when loading
        self._classic_split_id = split_id
        super().__init__(root, **kwargs)
        if classic_split:
            self.split_id = split_id

    @classmethod
    def options_from_cfg(cls, cfg: Any) -> dict[str, Any]:
        options = {
            "boxes": cfg.DATASETS.CUHK03.BOXES,
            "classic_split": cfg.DATASETS.CUHK03.CLASSIC_SPLIT,
            "cache_dir": cfg.DATASETS.CUHK03.CACHE_DIR or None,
            "torchreid_images": cfg.DATASETS.CUHK03.TORCHREID_IMAGES,
        }
        if cfg.DATASETS.CUHK03.CLASSIC_SPLIT:
            options["split_id"] = cfg.DATASETS.CUHK03.CLASSIC_SPLIT_ID
        elif cfg.DATASETS.CUHK03.CLASSIC_SPLIT_ID != 0:
            raise DatasetOptionError(
                "DATASETS.CUHK03.CLASSIC_SPLIT_ID applies to the classic protocol only: set "
                "DATASETS.CUHK03.CLASSIC_SPLIT True, or leave the split id at 0"
            )
        return options

    @property
    def published(self) -> dict[str, SplitStatistics]:  # type: ignore[override]
        if self.classic_split:
            return {"query": SplitStatistics(100, None, 2), "gallery": SplitStatistics(100, None, 2)}
        images = {"detected": (7365, 1400, 5332), "labeled": (7368, 1400, 5328)}[self.boxes]
        return {
            "train": SplitStatistics(767, images[0], 2),
            "query": SplitStatistics(700, images[1], 2),
            "gallery": SplitStatistics(700, images[2], 2),
        }

    def _load(self) -> None:
        dataset_dir = self._require_dir(os.path.join(self.root, "cuhk03"))
        mat_path = os.path.join(dataset_dir, "cuhk03_release", "cuhk-03.mat")
        config_path = os.path.join(dataset_dir, f"cuhk03_new_protocol_config_{self.boxes}.mat")
        if not self.classic_split:
            self._require_file(config_path)
        image_dir = torchreid_image_dir(dataset_dir, self.boxes) if self.torchreid_images else None
        if image_dir is not None:
            self.image_source = "torchreid"
            persons = persons_from_folder(image_dir)
        else:
            self.image_source = "cache"
            self._require_file(mat_path)
            if os.path.commonpath([self.cache_dir, self.root]) == self.root:
                raise DatasetOptionError(
                    f"cuhk03 cache_dir {self.cache_dir} is inside the data root {self.root}; the data root "
                    "is never written: choose a folder outside it (DATASETS.CUHK03.CACHE_DIR)"
                )
            image_dir = os.path.join(self.cache_dir, self.boxes)
            persons = extract_cuhk03_images(mat_path, self.boxes, image_dir)
        if self.classic_split:
            self._load_classic(self._require_file(mat_path), persons, image_dir)
        else:
            self._load_new(config_path, persons, image_dir)

    def _load_classic(self, mat_path: str, persons: list, image_dir: str) -> None:
        import h5py

        with h5py.File(mat_path, "r") as mat:
            refs = np.asarray(mat["testsets"]).reshape(-1)
            if len(refs) != NUM_CLASSIC_SPLITS:
                raise DatasetLayoutError(f"{mat_path}: 'testsets' holds {len(refs)} splits, expected 20")
            test_pairs = np.asarray(mat[refs[self._classic_split_id]]).T
        test = {(int(c), int(p)) for c, p in test_pairs.reshape(-1, 2)}
        self.query = []
        for campair, pid, names in persons:
            for name in names:
                sample = Sample(
                    os.path.join(image_dir, name), campair * 1000 + pid, int(name.split("_")[2]) - 1
                )
                (self.query if (campair, pid) in test else self.train).append(sample)
        self.gallery = list(self.query)

    def _load_new(self, config_path: str, persons: list, image_dir: str) -> None:
        from scipy.io import loadmat

        config = loadmat(config_path)
        missing = [
            k for k in ("train_idx", "query_idx", "gallery_idx", "labels", "filelist") if k not in config
        ]
        if missing:
            raise DatasetLayoutError(
                f"{config_path} lacks {missing}; is it the official new-protocol config?"
            )
        labels = config["labels"].reshape(-1)
        filelist = [str(np.asarray(f).reshape(-1)[0]) for f in config["filelist"].reshape(-1)]
        extracted = {name for _, _, names in persons for name in names}

        def take(key: str) -> list[Sample]:
            samples = []
            for idx in config[key].reshape(-1).astype(np.int64) - 1:  # MATLAB indices are 1-based
                name = filelist[idx]
                if name not in extracted:
                    raise DatasetLayoutError(
                        f"{config_path} lists {name}, which the {self.boxes} images in {image_dir} do not "
                        "have: the config file does not belong to this cuhk-03.mat"
                        + (
                            " (or torchreid's extraction is incomplete: set DATASETS.CUHK03.TORCHREID_IMAGES "
                            "False to extract from the .mat instead)"
                            if self.image_source == "torchreid"
                            else ""
                        )
                    )
                samples.append(
                    Sample(os.path.join(image_dir, name), int(labels[idx]), int(name.split("_")[2]) - 1)
                )
            return samples

        self.train, self.query, self.gallery = take("train_idx"), take("query_idx"), take("gallery_idx")
