"""The versioned protocol splits of the small targets (VIPeR, PRID, iLIDS) shipped as JSON in the package.

torchreid draws these splits without a seed and caches them in the user's data folder, so numbers are
not comparable across users. Ours are drawn once from a fixed seed by ``generate_splits`` and committed
under ``reid_dff/data/splits/``; every evaluation report cites the file's SHA-256. They only hold ids,
never file paths, so they are valid for any copy of the official data:

- VIPeR: ids are pair indices 0..631 into the sorted ``cam_a`` and ``cam_b`` file lists (pairs by order).
- PRID2011 single shot: ids are person numbers 1..200 (``person_XXXX.png``).
- iLIDS: ids are person numbers 1..119 (``XXXXYYY.jpg``); for each test id ``image_choice`` holds two
  integers ``(a, b)`` that pick its query and gallery image among the id's images sorted by name:
  query = ``a mod n``, gallery = ``b mod (n - 1)``, shifted by one when ``>=`` the query index, so they
  differ. This keeps the choice fixed without shipping the (data-dependent) file names.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ...utils.io import atomic_write_text, sha256_file
from .base import DatasetOptionError, ReIDDataset

__all__ = [
    "ProtocolSplitDataset",
    "SPLIT_SPECS",
    "SplitFileError",
    "generate_splits",
    "load_split_file",
    "packaged_split_file",
    "resolve_ilids_choice",
    "split_sha256",
    "write_packaged_splits",
]

SPLITS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "splits")
FORMAT_VERSION = 1
DEFAULT_SEED = 2023
NUM_SPLITS = 10

# dataset -> (all ids, number of train ids, what an id means)
SPLIT_SPECS: dict[str, tuple[list[int], int, str]] = {
    "viper": (
        list(range(632)),
        316,
        "pair index into the sorted cam_a/*.bmp and cam_b/*.bmp lists; test: query = cam_a, gallery = cam_b",
    ),
    "prid": (
        list(range(1, 201)),
        100,
        "person number (person_XXXX.png); test: query = cam_a of the test ids, gallery = cam_b of the "
        "test ids + cam_b persons 201..749 as distractors",
    ),
    "ilids": (
        list(range(1, 120)),
        59,
        "person number (first 4 digits of the name); test: one query and one gallery image per test id, "
        "picked by image_choice (a, b) among the id's images sorted by name: query a mod n, gallery "
        "b mod (n-1) shifted past the query index",
    ),
}


class SplitFileError(DatasetOptionError):
    """A protocol split file that is missing, malformed or for another dataset."""


def generate_splits(name: str, seed: int = DEFAULT_SEED, num_splits: int = NUM_SPLITS) -> dict[str, Any]:
    """The split document for ``name`` drawn from ``seed`` (numpy's legacy RandomState: a frozen stream)."""
    if name not in SPLIT_SPECS:
        raise DatasetOptionError(f"no generated splits for {name!r}; known: {', '.join(SPLIT_SPECS)}")
    ids, num_train, meaning = SPLIT_SPECS[name]
    rng = np.random.RandomState(seed)
    splits = []
    for split_id in range(num_splits):
        order = rng.permutation(len(ids))
        split: dict[str, Any] = {
            "split_id": split_id,
            "train_ids": sorted(ids[i] for i in order[:num_train]),
            "test_ids": sorted(ids[i] for i in order[num_train:]),
        }
        if name == "ilids":
            choice = rng.randint(0, 2**31 - 1, size=(len(split["test_ids"]), 2))
            split["image_choice"] = [[int(a), int(b)] for a, b in choice]
        splits.append(split)
    return {
        "dataset": name,
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "generator": "reid_dff.data.datasets.protocol_splits.generate_splits (numpy.random.RandomState)",
        "id_meaning": meaning,
        "splits": splits,
    }


def packaged_split_file(name: str) -> str:
    """Path of the committed split file of ``name`` (``reid_dff/data/splits/<name>.json``)."""
    return os.path.join(SPLITS_DIR, f"{name}.json")


def split_sha256(path: str) -> str:
    """SHA-256 of a split file (what reports cite)."""
    return sha256_file(path)


def format_split_document(doc: dict[str, Any]) -> str:
    """JSON text with one split per block and each id list on one line (readable diffs, stable bytes)."""
    header = {k: v for k, v in doc.items() if k != "splits"}
    lines = ["{"] + [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in header.items()] + ['  "splits": [']
    blocks = []
    for split in doc["splits"]:
        fields = [f"      {json.dumps(k)}: {json.dumps(v)}" for k, v in split.items()]
        blocks.append("    {\n" + ",\n".join(fields) + "\n    }")
    lines.append(",\n".join(blocks))
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def write_packaged_splits(seed: int = DEFAULT_SEED, directory: str = SPLITS_DIR) -> dict[str, str]:
    """(Re)generate every packaged split file atomically; returns name -> SHA-256."""
    hashes = {}
    for name in SPLIT_SPECS:
        path = os.path.join(directory, f"{name}.json")
        atomic_write_text(path, format_split_document(generate_splits(name, seed)))
        os.chmod(path, 0o644)  # package data: world-readable like the rest of the install
        hashes[name] = split_sha256(path)
    return hashes


def load_split_file(path: str, name: str) -> list[dict[str, Any]]:
    """Read and validate a split file for dataset ``name``; returns its list of splits."""
    if not os.path.isfile(path):
        raise SplitFileError(f"{name}: split file {path} not found")
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise SplitFileError(f"{name}: cannot read split file {path} as JSON: {e}") from e
    if not isinstance(doc, dict) or doc.get("dataset") != name or not isinstance(doc.get("splits"), list):
        raise SplitFileError(
            f'{path} is not a {name} split file: expected a JSON object with "dataset": "{name}" and a '
            '"splits" list (see docs/protocols.md)'
        )
    for i, split in enumerate(doc["splits"]):
        train, test = (
            (split.get("train_ids"), split.get("test_ids")) if isinstance(split, dict) else (None, None)
        )
        if not (
            isinstance(train, list)
            and isinstance(test, list)
            and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in train + test)
        ):
            raise SplitFileError(
                f'{path}: splits[{i}] needs lists of non-negative integers "train_ids" and "test_ids"'
            )
        if set(train) & set(test):
            raise SplitFileError(f"{path}: splits[{i}] has ids in both train_ids and test_ids")
        choice = split.get("image_choice")
        if choice is not None and (len(choice) != len(test) or any(len(c) != 2 for c in choice)):
            raise SplitFileError(f"{path}: splits[{i}].image_choice needs one [a, b] pair per test id")
        _check_image_lists(split, f"{path}: splits[{i}]")
    return doc["splits"]


def _check_image_lists(split: dict[str, Any], where: str) -> None:
    """Explicit ``query_images`` / ``gallery_images``: both or neither, plain file names (no folders)."""
    lists = [split.get("query_images"), split.get("gallery_images")]
    if lists == [None, None]:
        return
    if None in lists:
        raise SplitFileError(f'{where} has only one of "query_images" and "gallery_images"; give both')
    for key, names in zip(("query_images", "gallery_images"), lists):
        if not isinstance(names, list) or not all(
            isinstance(n, str) and n not in ("", ".", "..") and os.path.basename(n) == n for n in names
        ):
            raise SplitFileError(
                f"{where}.{key} must be a list of file names inside the dataset's image folder "
                "(no folders, no '..')"
            )


def select_split(path: str, name: str, split_id: int) -> dict[str, Any]:
    """Split ``split_id`` of the file, with a clear error when out of range."""
    splits = load_split_file(path, name)
    if not isinstance(split_id, int) or not 0 <= split_id < len(splits):
        raise DatasetOptionError(
            f"{name} split_id must be in 0..{len(splits) - 1} (DATASETS.SPLIT_IDS), got {split_id!r}"
        )
    return splits[split_id]


def resolve_ilids_choice(num_images: int, choice: tuple[int, int]) -> tuple[int, int]:
    """Indices of the query and gallery image among ``num_images`` sorted images of one id."""
    query = choice[0] % num_images
    gallery = choice[1] % (num_images - 1)
    if gallery >= query:
        gallery += 1
    return query, gallery


class ProtocolSplitDataset(ReIDDataset):
    """A small target evaluated over numbered splits: ``split_id`` 0-9 of a versioned split file.

    ``split_file`` replaces the packaged file with another in the same format (e.g. a paper's split);
    ``self.split_file`` / ``self.split_sha256`` name the file that defined the split.
    """

    has_protocol_splits = True

    def __init__(self, root: str, split_id: int = 0, split_file: str | None = None, **kwargs: Any):
        if isinstance(split_id, bool) or not isinstance(split_id, int):
            raise DatasetOptionError(f"{self.name} split_id must be an int in 0..9, got {split_id!r}")
        self._requested_split = split_id
        self._requested_split_file = split_file
        super().__init__(root, **kwargs)

    def _load(self) -> None:
        path = os.path.abspath(self._requested_split_file or packaged_split_file(self.name))
        split = select_split(path, self.name, self._requested_split)
        self.split_id = self._requested_split
        self.split_file = path
        self.split_sha256 = split_sha256(path)
        self._load_split(split)

    def _load_split(self, split: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
