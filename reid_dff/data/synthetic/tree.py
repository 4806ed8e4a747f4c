"""The synthetic ReID tree on disk: planning which files to render, writing them atomically with a manifest,
and checking an existing tree against its manifest and the wanted parameters.

Layout written by :func:`generate_synthetic`::

    <root>/synthetic/manifest.json
    <root>/synthetic/domain{k}/{bounding_box_train,query,bounding_box_test}/PPPP_c{cam}s{seq}_{frame:06d}_{idx:02d}.jpg

Determinism: every file depends only on its parameters (see :mod:`.render`), never on iteration order or
worker count: the same arguments give byte-identical files (with the same OpenCV build).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import cv2
import numpy as np

from ...errors import ReidDffError
from ...utils.io import staging_dir
from .appearance import PALETTE_RGB, STREAM_VISITS, outfit_scheme_names
from .render import DOMAIN_RECIPES, camera_setup, encode_jpeg, render_image

# Bumped whenever the rendered pixels change, so a tree made by an older renderer is not taken for a current one.
RENDERER_VERSION = 1
MANIFEST_FORMAT = "reid-dff-synthetic"
SYNTHETIC_DIRNAME = "synthetic"
MANIFEST_NAME = "manifest.json"
TRAIN_DIR, QUERY_DIR, GALLERY_DIR = "bounding_box_train", "query", "bounding_box_test"
SPLIT_DIRS = (TRAIN_DIR, QUERY_DIR, GALLERY_DIR)
# The Market-1501 name; torchreid parses it with ([-\d]+)_c(\d).
MARKET_NAME_RE = re.compile(r"^(-?\d+)_c(\d)s(\d+)_(\d{6})_(\d{2})\.jpg$")
# Market-1501 names hold one camera digit and torchreid accepts cameras 1..6; pids have 4 digits.
MAX_CAMERAS = 6
MAX_PID = 9999


class SyntheticDataError(ReidDffError, RuntimeError):
    """An existing synthetic tree is incomplete, foreign or made with other parameters."""


class SyntheticParameterError(ReidDffError):
    """A generator parameter out of range (``DATASETS.SYNTHETIC.*`` or the generator's arguments)."""


class ForeignTreeError(SyntheticDataError):
    """The target folder exists and is not a tree a synthetic generator wrote: it is never replaced."""


class SyntheticTreeExistsError(SyntheticDataError, FileExistsError):
    """The synthetic folder to write already exists and replacing it was not asked for."""


# -------------------------------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class ImageSpec:
    """One file to render: where it goes and the arguments of :func:`render_image`."""

    relpath: str  # relative to the synthetic folder
    domain: int
    pid: int
    camera: int
    image_index: int


@dataclass(frozen=True)
class SyntheticParams:
    """Everything that determines the generated files (recorded in the manifest)."""

    seed: int = 0
    num_domains: int = 4
    ids_train: int = 100
    ids_test: int = 50
    height: int = 128
    width: int = 64
    cameras: int = 4
    images_per_camera: int = 5

    def validate(self) -> None:
        """Raise ``SyntheticParameterError`` (a ``ValueError``) naming the first parameter out of range."""
        checks = (
            ("seed", self.seed >= 0, ">= 0"),
            ("num_domains", 1 <= self.num_domains <= len(DOMAIN_RECIPES), f"in 1..{len(DOMAIN_RECIPES)}"),
            ("ids_train", self.ids_train >= 1, ">= 1"),
            ("ids_test", self.ids_test >= 1, ">= 1"),
            (
                "ids_train + ids_test",
                self.ids_train + self.ids_test <= MAX_PID,
                f"<= {MAX_PID} (4-digit pids)",
            ),
            ("height", self.height >= 32, ">= 32"),
            ("width", self.width >= 16, ">= 16"),
            ("cameras", 2 <= self.cameras <= MAX_CAMERAS, f"in 2..{MAX_CAMERAS} (one digit, Market-1501)"),
            ("images_per_camera", self.images_per_camera >= 2, ">= 2 (a query needs a gallery match)"),
        )
        for field, ok, expected in checks:
            if not ok:
                raise SyntheticParameterError(
                    f"synthetic parameter {field} must be {expected}; got {dataclasses.asdict(self)}"
                )
        for param in dataclasses.fields(self):
            value = getattr(self, param.name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise SyntheticParameterError(
                    f"synthetic parameter {param.name} must be an int; got {value!r}"
                )


def plan_domain(params: SyntheticParams, domain: int) -> list[ImageSpec]:
    """All files of one domain. Train pids are 1..ids_train, test pids follow; each identity visits a random
    subset of >= 2 cameras; a test identity gives one query per visited camera, the rest is gallery."""
    specs: list[ImageSpec] = []
    num_pids = params.ids_train + params.ids_test
    for pid in range(1, num_pids + 1):
        rng = np.random.default_rng([params.seed, STREAM_VISITS, domain, pid])
        num_visits = int(rng.integers(2, params.cameras + 1))
        visited = sorted(int(c) + 1 for c in rng.choice(params.cameras, size=num_visits, replace=False))
        is_test = pid > params.ids_train
        for camera in visited:
            sequence = int(rng.integers(1, 7))
            query_k = int(rng.integers(params.images_per_camera))
            for k in range(params.images_per_camera):
                frame = 1 + 40 * k + int(rng.integers(40))  # increasing in k: names are unique
                split = (QUERY_DIR if k == query_k else GALLERY_DIR) if is_test else TRAIN_DIR
                name = f"{pid:04d}_c{camera}s{sequence}_{frame:06d}_01.jpg"
                specs.append(
                    ImageSpec(
                        relpath=f"domain{domain}/{split}/{name}",
                        domain=domain,
                        pid=pid,
                        camera=camera,
                        image_index=(camera - 1) * params.images_per_camera + k,
                    )
                )
    return specs


def _render_and_write(
    out_dir: str, params: SyntheticParams, specs: Sequence[ImageSpec]
) -> list[tuple[str, str]]:
    """Render, encode and write ``specs`` under ``out_dir``; returns (relpath, sha256) pairs."""
    results = []
    with _single_threaded_cv2():
        for spec in specs:
            img = render_image(
                params.seed, spec.domain, spec.pid, spec.camera, spec.image_index, params.height, params.width
            )
            data = encode_jpeg(img, DOMAIN_RECIPES[spec.domain].jpeg_quality)
            with open(os.path.join(out_dir, spec.relpath), "wb") as f:
                f.write(data)
            results.append((spec.relpath, hashlib.sha256(data).hexdigest()))
    return results


@contextlib.contextmanager
def _single_threaded_cv2() -> Iterator[None]:
    # OpenCV's thread pool only adds overhead on 128x64 images and competes with the caller's workers.
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def _chunks(items: Sequence[ImageSpec], size: int) -> list[Sequence[ImageSpec]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def total_hash(files: Mapping[str, str]) -> str:
    """SHA-256 over the sorted ``relpath sha256`` lines: one value naming the whole tree."""
    digest = hashlib.sha256()
    for relpath in sorted(files):
        digest.update(f"{relpath} {files[relpath]}\n".encode())
    return digest.hexdigest()


def _manifest(params: SyntheticParams, files: dict[str, str]) -> dict[str, Any]:
    domains = []
    for k in range(params.num_domains):
        counts = {split: 0 for split in SPLIT_DIRS}
        for relpath in files:
            d, split, _ = relpath.split("/")
            if d == f"domain{k}":
                counts[split] += 1
        cameras = []
        for c in range(1, params.cameras + 1):
            cam = camera_setup(params.seed, k, c, params.height, params.width)
            cameras.append(
                {
                    "camera": c,
                    "brightness": round(cam.brightness, 4),
                    "tint_rgb": [round(t, 4) for t in cam.tint_rgb],
                }
            )
        domains.append(
            {
                "name": f"domain{k}",
                "recipe": dataclasses.asdict(DOMAIN_RECIPES[k]),
                "cameras": cameras,
                "train_pids": [1, params.ids_train],
                "test_pids": [params.ids_train + 1, params.ids_train + params.ids_test],
                "counts": counts,
            }
        )
    return {
        "format": MANIFEST_FORMAT,
        "renderer_version": RENDERER_VERSION,
        "opencv_version": cv2.__version__,
        "params": dataclasses.asdict(params),
        "palette_rgb": PALETTE_RGB,
        "outfit_schemes": outfit_scheme_names(params.seed),
        "domains": domains,
        "num_files": len(files),
        "total_sha256": total_hash(files),
        "files": dict(sorted(files.items())),
    }


# ------------------------------------------------------------------------------------------------ public API
def generate_synthetic(
    root: str | os.PathLike,
    seed: int = 0,
    num_domains: int = 4,
    ids_train: int = 100,
    ids_test: int = 50,
    height: int = 128,
    width: int = 64,
    cameras: int = 4,
    images_per_camera: int = 5,
    workers: int = 1,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write ``<root>/synthetic`` (all domains and ``manifest.json``) and return the manifest.

    The tree is built in a temporary sibling folder and renamed into place when complete. An existing
    ``<root>/synthetic`` is an error unless ``overwrite`` is set, and even then only a tree with our
    manifest is replaced (never a user's folder).
    """
    params = SyntheticParams(
        seed, num_domains, ids_train, ids_test, height, width, cameras, images_per_camera
    )
    params.validate()
    if not isinstance(workers, int) or workers < 1:
        raise SyntheticParameterError(f"workers must be an int >= 1; got {workers!r}")
    root = os.fspath(root)
    target = os.path.join(root, SYNTHETIC_DIRNAME)
    if os.path.lexists(target):
        if not overwrite:
            raise SyntheticTreeExistsError(
                f"{target} already exists; delete it, pass overwrite=True, or use ensure_synthetic() to "
                "reuse it when its parameters match"
            )
        read_manifest(target)  # refuses to replace a folder that is not a synthetic tree of ours

    os.makedirs(root, exist_ok=True)
    tmp = staging_dir(root, prefix=f".{SYNTHETIC_DIRNAME}.tmp-")
    try:
        specs = [spec for k in range(num_domains) for spec in plan_domain(params, k)]
        for k in range(num_domains):
            for split in SPLIT_DIRS:
                os.makedirs(os.path.join(tmp, f"domain{k}", split))
        files: dict[str, str] = {}
        if workers == 1:
            files.update(_render_and_write(tmp, params, specs))
        else:
            chunks = _chunks(specs, max(16, math.ceil(len(specs) / (workers * 8))))
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
                for pairs in pool.map(_render_and_write, [tmp] * len(chunks), [params] * len(chunks), chunks):
                    files.update(pairs)
        # Imported here: reid_dff.utils pulls in torch, which spawned render workers do not need (seconds each).
        from ...utils.io import atomic_write_json

        # The JSON round trip makes the returned manifest equal to the file (lists, not tuples).
        manifest = json.loads(json.dumps(_manifest(params, files)))
        atomic_write_json(os.path.join(tmp, MANIFEST_NAME), manifest)
        _move_into_place(tmp, target, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _move_into_place(tmp: str, target: str, overwrite: bool) -> None:
    """Rename the finished ``tmp`` tree to ``target`` (replacing an old tree of ours if ``overwrite``)."""
    if overwrite and os.path.lexists(target):
        trash = tempfile.mkdtemp(prefix=f".{SYNTHETIC_DIRNAME}.old-", dir=os.path.dirname(target))
        os.rename(target, os.path.join(trash, "old"))
        os.rename(tmp, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        # rename() refuses a non-empty destination: if another process finished first we keep its tree.
        os.rename(tmp, target)


def read_manifest(synthetic_dir: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a generated tree; ``SyntheticDataError`` if it is absent, unreadable or foreign."""
    synthetic_dir = os.fspath(synthetic_dir)
    path = os.path.join(synthetic_dir, MANIFEST_NAME)
    if not os.path.isfile(path):
        raise SyntheticDataError(
            f"{synthetic_dir} exists but has no {MANIFEST_NAME}: it is not a complete reid-dff synthetic tree "
            f"(maybe an interrupted copy or your own data). Delete it, or set DATASETS.ROOT to another folder."
        )
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise SyntheticDataError(
            f"{path} is not valid JSON ({e}); delete {synthetic_dir} to regenerate it"
        ) from e
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise SyntheticDataError(
            f"{path} is not a reid-dff synthetic manifest (expected format {MANIFEST_FORMAT!r}); "
            f"delete {synthetic_dir} or set DATASETS.ROOT to another folder"
        )
    return manifest


def verify_synthetic(synthetic_dir: str | os.PathLike, hashes: bool = True) -> None:
    """Check every file listed in the manifest exists (with its SHA-256 unless ``hashes`` is False) and
    nothing else is there."""
    synthetic_dir = os.fspath(synthetic_dir)
    manifest = read_manifest(synthetic_dir)
    listed: dict[str, str] = manifest["files"]
    on_disk = set()
    for dirpath, _, names in os.walk(synthetic_dir):
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), synthetic_dir).replace(os.sep, "/")
            if rel != MANIFEST_NAME:
                on_disk.add(rel)
    missing, extra = sorted(set(listed) - on_disk), sorted(on_disk - set(listed))
    if missing or extra:
        raise SyntheticDataError(
            f"{synthetic_dir} does not match its manifest: missing {missing[:3]} ({len(missing)}), "
            f"unexpected {extra[:3]} ({len(extra)}); delete the folder to regenerate it"
        )
    for rel, expected in listed.items() if hashes else ():
        with open(os.path.join(synthetic_dir, rel), "rb") as f:
            actual = hashlib.sha256(f.read()).hexdigest()
        if actual != expected:
            raise SyntheticDataError(
                f"{os.path.join(synthetic_dir, rel)} has SHA-256 {actual}, the manifest says {expected}; "
                "delete the folder to regenerate it"
            )


# Config key (under DATASETS.SYNTHETIC) of each generation parameter.
_CONFIG_KEYS = {
    "seed": "SEED",
    "num_domains": "NUM_DOMAINS",
    "ids_train": "IDS_TRAIN",
    "ids_test": "IDS_TEST",
    "height": "HEIGHT",
    "width": "WIDTH",
    "cameras": "CAMERAS",
    "images_per_camera": "IMAGES_PER_CAMERA",
}


def _params_from(cfg_or_params: Any) -> tuple[str, SyntheticParams]:
    if hasattr(cfg_or_params, "DATASETS"):
        section = cfg_or_params.DATASETS.SYNTHETIC
        values = {field: section[key] for field, key in _CONFIG_KEYS.items()}
        return os.fspath(cfg_or_params.DATASETS.ROOT), SyntheticParams(**values)
    if isinstance(cfg_or_params, Mapping):
        values = dict(cfg_or_params)
        if "root" not in values:
            raise SyntheticParameterError("ensure_synthetic(mapping) needs a 'root' key (the data root)")
        root = os.fspath(values.pop("root"))
        unknown = set(values) - set(_CONFIG_KEYS)
        if unknown:
            raise SyntheticParameterError(
                f"unknown synthetic parameters {sorted(unknown)}; expected some of {sorted(_CONFIG_KEYS)}"
            )
        return root, SyntheticParams(**values)
    raise TypeError(
        f"ensure_synthetic expects a config (with DATASETS) or a mapping; got {type(cfg_or_params)}"
    )


def ensure_synthetic(cfg_or_params: Any, workers: int = 1) -> str:
    """Path of ``<DATASETS.ROOT>/synthetic``: generated if absent, else checked against the config.

    ``cfg_or_params`` is a config (``DATASETS.ROOT`` and ``DATASETS.SYNTHETIC.*``) or a mapping with
    ``root`` and any :class:`SyntheticParams` fields. An existing tree made with other parameters or
    another renderer version, or missing files its manifest lists, is an error: it is never overwritten
    silently.
    """
    root, params = _params_from(cfg_or_params)
    params.validate()
    target = os.path.join(root, SYNTHETIC_DIRNAME)
    if not os.path.lexists(target):
        try:
            generate_synthetic(root, **dataclasses.asdict(params), workers=workers)
        except OSError:
            # Another process (e.g. another DDP rank) may have renamed its complete tree into place first.
            if not os.path.isdir(target):
                raise
    _check_manifest_matches(target, params)
    verify_synthetic(target, hashes=False)  # a tree with deleted or stray files would train on less
    return target


def _check_manifest_matches(target: str, params: SyntheticParams) -> None:
    manifest = read_manifest(target)
    existing = manifest.get("params", {})
    wanted = dataclasses.asdict(params)
    diffs = [
        f"DATASETS.SYNTHETIC.{_CONFIG_KEYS[k]}: config {wanted[k]!r}, existing data {existing.get(k)!r}"
        for k in wanted
        if existing.get(k) != wanted[k]
    ]
    if manifest.get("renderer_version") != RENDERER_VERSION:
        diffs.append(
            f"renderer version: code {RENDERER_VERSION}, existing data {manifest.get('renderer_version')!r}"
        )
    if diffs:
        raise SyntheticDataError(
            f"{target} was generated with other parameters ({'; '.join(diffs)}). Delete {target} to "
            "regenerate it, or change the config to match (or point DATASETS.ROOT elsewhere)."
        )


def read_split(split_dir: str | os.PathLike) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Image paths, pids ``(N,)`` and 0-based camids ``(N,)`` of one split folder, in name order."""
    split_dir = os.fspath(split_dir)
    paths, pids, camids = [], [], []
    for name in sorted(os.listdir(split_dir)):
        match = MARKET_NAME_RE.match(name)
        if match is None:
            raise SyntheticDataError(
                f"{os.path.join(split_dir, name)} is not a Market-1501 name PPPP_cCsS_FFFFFF_NN.jpg"
            )
        paths.append(os.path.join(split_dir, name))
        pids.append(int(match.group(1)))
        camids.append(int(match.group(2)) - 1)
    return paths, np.asarray(pids, np.int64), np.asarray(camids, np.int64)
