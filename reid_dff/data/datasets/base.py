"""What every dataset shares: ``Sample``, the registry, layout errors and the published-statistics check."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, NamedTuple

from ...errors import ReidDffError
from ...utils.registry import Registry

__all__ = [
    "DATASET_REGISTRY",
    "DatasetLayoutError",
    "DatasetOptionError",
    "DatasetStatisticsWarning",
    "ReIDDataset",
    "Sample",
    "SplitStatistics",
    "TEST_SCOPE",
    "TRAIN_SCOPE",
    "build_dataset",
    "list_images",
    "parse_dataset_spec",
    "parse_market_dir",
    "split_statistics",
]

DATASET_REGISTRY = Registry("dataset")

# Identities of the train split and of the query/gallery splits live in different id spaces (MSMT17's
# test pids restart at 0); combining all images keeps them apart with this scope tag.
TRAIN_SCOPE = "train"
TEST_SCOPE = "test"

# Every image type OpenCV's imread decodes (3DPeS and SARC3D are BMP files, some sets ship TIFF or WebP).
IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".png", ".bmp", ".jpe", ".dib", ".tif", ".tiff", ".webp", ".jp2",
    ".ppm", ".pgm", ".pbm", ".pnm",
)  # fmt: skip
# Unreadable files named in the error of a folder without images (the rest are counted).
SHOWN_UNREADABLE = 10


class Sample(NamedTuple):
    """One image: absolute ``path``, identity ``pid``, camera ``camid`` (0-based), source ``domain``."""

    path: str
    pid: int
    camid: int
    domain: int = 0


class SplitStatistics(NamedTuple):
    """Counts of one split: distinct identities, images, distinct cameras.

    A parse fills all three; a dataset's ``published`` numbers use ``None`` for a count not checked.
    """

    ids: int | None
    images: int | None
    cameras: int | None


class DatasetLayoutError(ReidDffError, FileNotFoundError):
    """A dataset folder or file is missing or not in the official layout; the message shows the tree."""


class DatasetOptionError(ReidDffError):
    """An invalid dataset name, spec or option (``split_id`` out of range, unknown ``boxes`` ...)."""


class DatasetStatisticsWarning(UserWarning):
    """Parsed statistics differ from the published numbers (incomplete copy, different version ...)."""


def split_statistics(samples: Sequence[Sample]) -> SplitStatistics:
    """Identities, images and cameras of a list of samples."""
    return SplitStatistics(
        ids=len({s.pid for s in samples}), images=len(samples), cameras=len({s.camid for s in samples})
    )


def list_images(directory: str, extensions: Iterable[str] = IMAGE_EXTENSIONS) -> list[str]:
    """Sorted absolute paths of the image files directly inside ``directory``."""
    extensions = tuple(e.lower() for e in extensions)
    with os.scandir(directory) as entries:
        paths = [e.path for e in entries if e.is_file() and e.name.lower().endswith(extensions)]
    return sorted(os.path.abspath(p) for p in paths)


def check_unreadable_files(directory: str) -> None:
    """Raise a ``DatasetLayoutError`` naming the files of ``directory`` when it holds files but none of a
    readable image type (``IMAGE_EXTENSIONS``); an empty folder or one with images passes."""
    with os.scandir(directory) as entries:
        files = sorted(e.name for e in entries if e.is_file() and not e.name.startswith("."))
    if not files or any(name.lower().endswith(IMAGE_EXTENSIONS) for name in files):
        return
    shown = ", ".join(files[:SHOWN_UNREADABLE]) + (", ..." if len(files) > SHOWN_UNREADABLE else "")
    raise DatasetLayoutError(
        f"{directory}: found {len(files)} files but none of a readable image type "
        f"({' '.join(IMAGE_EXTENSIONS)}): {shown}"
    )


# Market-1501 / DukeMTMC-reID names: "0002_c1s1_000451_03.jpg", junk "-1_c1s1_...". Searched on the file
# name only (torchreid searches the whole path, which breaks when a parent folder looks like "12_c3").
MARKET_NAME = re.compile(r"^([-\d]+)_c(\d+)")


def parse_market_dir(
    directory: str, max_camid: int | None = None, drop_pids: Iterable[int] = (-1,)
) -> list[Sample]:
    """Market-style folder -> samples with raw pids (``drop_pids`` removed) and 0-based cameras."""
    drop = set(drop_pids)
    samples = []
    paths = list_images(directory)
    if not paths:
        check_unreadable_files(directory)
    for path in paths:
        name = os.path.basename(path)
        match = MARKET_NAME.match(name)
        if match is None:
            raise DatasetLayoutError(
                f"image name {name!r} in {directory} is not Market-1501 style: expected "
                "'PPPP_cC...' (identity, '_c', camera), e.g. 0002_c1s1_000451_03.jpg"
            )
        pid, camera = int(match.group(1)), int(match.group(2))
        if pid in drop:
            continue
        if camera < 1 or (max_camid is not None and camera > max_camid):
            raise DatasetLayoutError(
                f"camera {camera} in {path} is outside the dataset's cameras 1..{max_camid or 'N'}"
            )
        samples.append(Sample(path, pid, camera - 1))
    return samples


class ReIDDataset:
    """Base of all datasets: ``train``, ``query``, ``gallery`` lists of ``Sample`` plus checks.

    Subclasses set ``name``, ``expected_tree`` (shown when something is missing), ``published``
    (split -> ``SplitStatistics`` with ``None`` for numbers not checked), ``junk_pids`` (dropped when all
    images are combined for training) and implement ``_load()``. Query/gallery pids are raw dataset ids so
    evaluation matches them; train pids are unique ints within the train scope (not relabeled:
    ``build_train_set`` relabels across sources).
    """

    name: ClassVar[str] = ""
    expected_tree: ClassVar[str] = ""
    # Not a ClassVar: a dataset may also set it per instance (officehome) or compute it (a property).
    published: dict[str, SplitStatistics] = {}
    junk_pids: ClassVar[frozenset[int]] = frozenset()
    train_only: ClassVar[bool] = False
    # Name of the one option a "name:arg" spec sets (e.g. synthetic's "domain"); None: no positional arg.
    positional_option: ClassVar[str | None] = None
    # Small targets evaluated over numbered protocol splits (viper, prid, grid, ilids).
    has_protocol_splits: ClassVar[bool] = False
    # Top-level folders under the data root that mean "this dataset is here" (inspection).
    root_folders: ClassVar[tuple[str, ...]] = ()

    def __init__(self, root: str, warn_statistics: bool = True):
        self.root = os.path.abspath(os.path.expanduser(os.fspath(root)))
        self.train: list[Sample] = []
        self.query: list[Sample] = []
        self.gallery: list[Sample] = []
        # Samples that are training material beyond ``train`` when all images are combined (MSMT17 val).
        self.extra_train: list[Sample] = []
        self.split_id: int | None = None
        self.split_file: str | None = None
        self.split_sha256: str | None = None
        self._load()
        self.problems = self.check_published(warn=warn_statistics)

    def _load(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def options_from_cfg(cls, cfg: Any) -> dict[str, Any]:
        """Options this dataset reads from the config (e.g. CUHK03's boxes); none by default."""
        return {}

    # -- layout helpers ---------------------------------------------------
    def _missing(self, what: str) -> DatasetLayoutError:
        return DatasetLayoutError(
            f"{self.name}: {what} not found under data root {self.root}.\nExpected layout "
            f"(see datasets/README.md):\n{self.expected_tree.strip()}"
        )

    def _require_dir(self, path: str) -> str:
        if not os.path.isdir(path):
            raise self._missing(f"folder {path}")
        return path

    def _require_file(self, path: str) -> str:
        if not os.path.isfile(path):
            raise self._missing(f"file {path}")
        return path

    def _first_existing_dir(self, candidates: Sequence[str]) -> str:
        for candidate in candidates:
            if os.path.isdir(candidate):
                return candidate
        raise self._missing(
            f"the folder {candidates[0]}"
            if len(candidates) == 1
            else f"a folder (tried {', '.join(candidates)})"
        )

    def _require_images(self, directory: str, extensions: Iterable[str] = IMAGE_EXTENSIONS) -> list[str]:
        paths = list_images(self._require_dir(directory), extensions)
        if not paths:
            raise self._missing(f"images ({', '.join(extensions)}) in {directory} (the folder is empty)")
        return paths

    # -- statistics -------------------------------------------------------
    def statistics(self) -> dict[str, SplitStatistics]:
        """Split name -> (ids, images, cameras) of this parse."""
        return {
            "train": split_statistics(self.train),
            "query": split_statistics(self.query),
            "gallery": split_statistics(self.gallery),
        }

    def check_published(self, warn: bool = True) -> list[str]:
        """Differences from the published statistics, one message each; warns when ``warn``."""
        problems = []
        stats = self.statistics()
        for split, expected in self.published.items():
            got = stats[split]
            for field in SplitStatistics._fields:
                want = getattr(expected, field)
                if want is not None and getattr(got, field) != want:
                    problems.append(f"{self.name} {split}: {getattr(got, field)} {field}, published {want}")
        if problems and warn:
            warnings.warn(
                f"{self.name} under {self.root} differs from the published statistics: "
                + "; ".join(problems),
                DatasetStatisticsWarning,
                stacklevel=3,
            )
        return problems

    def format_statistics(self) -> str:
        """A text table of ids / images / cameras per split, with the published numbers beside them."""
        stats = self.statistics()
        lines = [
            f"{self.name} ({self.root})" + (f", split {self.split_id}" if self.split_id is not None else ""),
            f"  {'split':<8} | {'ids':>13} | {'images':>15} | {'cameras':>11}",
        ]
        for split, got in stats.items():
            want = self.published.get(split, SplitStatistics(None, None, None))
            cells = [
                f"{g}" + (f" ({w})" if w is not None and w != g else "" if w is not None else " (-)")
                for g, w in zip(got, want)
            ]
            lines.append(f"  {split:<8} | {cells[0]:>13} | {cells[1]:>15} | {cells[2]:>11}")
        lines.append("  (published number in parentheses where it differs; '-' = no published number)")
        return "\n".join(lines)

    # -- training material ------------------------------------------------
    def train_samples(self, combine_all: bool = False) -> list[tuple[Sample, str]]:
        """Training material as (sample, pid scope): the train split, or all images minus junk ids."""
        material = [(s, TRAIN_SCOPE) for s in self.train]
        if not combine_all or self.train_only:
            return material
        material += [(s, TRAIN_SCOPE) for s in self.extra_train]
        seen = set()
        for sample in self.query + self.gallery:
            # CUHK03's classic split lists the same test images as query and gallery: count them once.
            if sample.pid in self.junk_pids or sample.path in seen:
                continue
            seen.add(sample.path)
            material.append((sample, TEST_SCOPE))
        return material

    def __repr__(self) -> str:
        return self.format_statistics()


def parse_dataset_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"synthetic:3"`` -> ``("synthetic", {"domain": 3})``; ``"market1501"`` -> ``("market1501", {})``."""
    if not isinstance(spec, str) or not spec.strip():
        raise DatasetOptionError(f"a dataset spec must be a non-empty string, got {spec!r}")
    name, sep, arg = spec.strip().partition(":")
    cls = _dataset_class(name)
    if not sep:
        return name, {}
    if cls.positional_option is None:
        raise DatasetOptionError(
            f"dataset spec {spec!r}: {name} takes no positional option (the 'name:arg' form); write "
            f"just {name!r} and set its options in the config"
        )
    if not arg:
        raise DatasetOptionError(f"dataset spec {spec!r}: empty {cls.positional_option} after ':'")
    value: Any = arg
    if arg.lstrip("-").isdigit():
        value = int(arg)
    return name, {cls.positional_option: value}


def _dataset_class(name: str) -> type[ReIDDataset]:
    if name not in DATASET_REGISTRY:
        raise DatasetOptionError(
            f"unknown dataset {name!r}; known datasets: {', '.join(DATASET_REGISTRY.names())}"
        )
    return DATASET_REGISTRY.get(name)


def build_dataset(name: str, root: str, **options: Any) -> ReIDDataset:
    """Parse dataset ``name`` (a registry name or ``name:arg`` spec) under data root ``root``."""
    base_name, positional = parse_dataset_spec(name)
    overlap = set(positional) & set(options)
    if overlap:
        raise DatasetOptionError(f"dataset spec {name!r} and keyword options both set {sorted(overlap)}")
    cls = _dataset_class(base_name)
    try:
        return cls(root, **positional, **options)
    except TypeError as e:
        if "unexpected keyword argument" in str(e):
            raise DatasetOptionError(f"dataset {base_name}: {e}") from e
        raise
