"""Tiny fake dataset trees in the official layouts (8x4 images written with cv2), for parser tests.

Each ``make_*`` writes under ``root`` exactly the folders and names the real dataset uses, with a handful
of identities, and returns facts the tests check against.
"""

from __future__ import annotations

import os
import sys
import types
from collections import Counter
from collections.abc import Iterable, Sequence

import cv2
import h5py
import numpy as np
import scipy.io as sio


def write_image(path: str, seed: int = 0, height: int = 8, width: int = 4) -> str:
    """A tiny random image; the extension picks the codec."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    assert cv2.imwrite(path, pixels), path
    return path


def tree_snapshot(root: str) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime_ns) of every file and folder under ``root``."""
    snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.stat(path)
            snapshot[os.path.relpath(path, root)] = (st.st_size if name in filenames else 0, st.st_mtime_ns)
    return snapshot


def canonical(*splits: Iterable[Sequence]) -> list[Counter]:
    """Multisets of (path, identity, camid) per split, identities relabeled jointly across ``splits``.

    An identity is replaced by the smallest path among its images in all given splits, so two parsers
    agree up to pid relabeling iff their canonical forms are equal.
    """
    splits = [[(str(s[0]), s[1], int(s[2])) for s in split] for split in splits]
    first_path: dict = {}
    for split in splits:
        for path, pid, _ in split:
            first_path[pid] = min(first_path.get(pid, path), path)
    return [Counter((path, first_path[pid], camid) for path, pid, camid in split) for split in splits]


# -------------------------------------------------------------------------------------------- Market-style
def market_name(pid: int, cam: int, index: int) -> str:
    return f"{pid:04d}_c{cam}s1_{index:06d}_01.jpg" if pid >= 0 else f"-1_c{cam}s1_{index:06d}_01.jpg"


def make_market_style(data_dir: str, train: dict, query: dict, gallery: dict) -> None:
    """``{pid: [cam, ...]}`` per split -> ``bounding_box_train``, ``query``, ``bounding_box_test``."""
    index = 0
    for folder, spec in (("bounding_box_train", train), ("query", query), ("bounding_box_test", gallery)):
        os.makedirs(os.path.join(data_dir, folder), exist_ok=True)
        for pid, cams in spec.items():
            for cam in cams:
                index += 1
                write_image(os.path.join(data_dir, folder, market_name(pid, cam, index)), index)


MARKET_TRAIN = {2: [1, 2, 2], 7: [3, 6], 10: [1, 4]}
MARKET_QUERY = {1: [1, 2], 3: [5]}
MARKET_GALLERY = {1: [3, 6], 3: [1], 0: [2, 4], -1: [1, 5]}


def make_market1501(root: str, flat: bool = False) -> str:
    data_dir = (
        os.path.join(root, "market1501")
        if flat
        else os.path.join(root, "market1501", "Market-1501-v15.09.15")
    )
    make_market_style(data_dir, MARKET_TRAIN, MARKET_QUERY, MARKET_GALLERY)
    return data_dir


def make_duke(root: str) -> str:
    data_dir = os.path.join(root, "dukemtmc-reid", "DukeMTMC-reID")
    make_market_style(data_dir, {5: [1, 8], 9: [2]}, {11: [3]}, {11: [7, 8], 12: [1]})
    return data_dir


# -------------------------------------------------------------------------------------------------- CUHK03
CUHK03_PERSONS = (3, 2, 2, 1, 2)  # persons per camera pair


def make_cuhk03(root: str) -> dict:
    """``cuhk03_release/cuhk-03.mat`` (HDF5 with object references, MATLAB's column-major shapes) and the
    two new-protocol config files (scipy ``savemat``), as in the official release."""
    base = os.path.join(root, "cuhk03")
    os.makedirs(os.path.join(base, "cuhk03_release"), exist_ok=True)
    rng = np.random.default_rng(0)
    names: dict[str, list[tuple[str, int]]] = {"detected": [], "labeled": []}
    with h5py.File(os.path.join(base, "cuhk03_release", "cuhk-03.mat"), "w") as mat:
        refs = mat.create_group("#refs#")
        counter = [0]

        def store(array: np.ndarray) -> h5py.Reference:
            counter[0] += 1
            return refs.create_dataset(f"r{counter[0]}", data=array).ref

        for boxes in ("detected", "labeled"):
            pairs = mat.create_dataset(boxes, shape=(1, len(CUHK03_PERSONS)), dtype=h5py.ref_dtype)
            for campair, num in enumerate(CUHK03_PERSONS):
                cells = np.empty((10, num), dtype=object)  # stored transposed: (cells, persons)
                for pid in range(num):
                    for imgid in range(10):
                        # persons miss some cells (and one misses a whole view), as in the real file
                        empty = imgid in (3, 4, 8, 9) or (campair == 1 and pid == 0 and imgid >= 5)
                        if boxes == "labeled" and imgid == 2:
                            empty = True
                        if empty:
                            cells[imgid, pid] = store(np.zeros(2, dtype=np.uint64))
                        else:
                            image = rng.integers(0, 255, (8, 4, 3), dtype=np.uint8)
                            cells[imgid, pid] = store(image.T)  # MATLAB (H, W, 3) appears as (3, W, H)
                            view = 1 if imgid < 5 else 2
                            name = f"{campair + 1}_{pid + 1:03d}_{view}_{imgid + 1:02d}.png"
                            names[boxes].append((name, campair * 10 + pid))
                cell_ds = refs.create_dataset(
                    f"pair_{boxes}_{campair}", shape=cells.shape, dtype=h5py.ref_dtype
                )
                for index in np.ndindex(cells.shape):
                    cell_ds[index] = cells[index]
                pairs[0, campair] = cell_ds.ref
        testsets = mat.create_dataset("testsets", shape=(1, 20), dtype=h5py.ref_dtype)
        for split in range(20):
            chosen = [(1, 1 + split % 3), (5, 1 + split % 2)]  # [campair, pid], 1-based
            testsets[0, split] = store(np.asarray(chosen, dtype=np.float64).T)
    # New protocol (integer arrays, as in the official files): persons of camera pairs 1-2 train, the others test; query = one image per view.
    for boxes in ("detected", "labeled"):
        files = names[boxes]
        labels = np.asarray([label + 1 for _, label in files], dtype=np.int32)
        train_idx, query_idx, gallery_idx, seen_views = [], [], [], set()
        for i, (name, label) in enumerate(files):
            campair, view = int(name[0]), int(name.split("_")[2])
            if campair <= 2:
                train_idx.append(i + 1)
            elif (label, view) not in seen_views:
                seen_views.add((label, view))
                query_idx.append(i + 1)
            else:
                gallery_idx.append(i + 1)
        filelist = np.empty((len(files), 1), dtype=object)
        for i, (name, _) in enumerate(files):
            filelist[i, 0] = name
        sio.savemat(
            os.path.join(base, f"cuhk03_new_protocol_config_{boxes}.mat"),
            {
                "train_idx": np.asarray(train_idx, dtype=np.int32).reshape(-1, 1),
                "query_idx": np.asarray(query_idx, dtype=np.int32).reshape(-1, 1),
                "gallery_idx": np.asarray(gallery_idx, dtype=np.int32).reshape(-1, 1),
                "labels": labels.reshape(-1, 1),
                "filelist": filelist,
            },
        )
    return names


def install_fake_imageio(monkeypatch) -> None:
    """torchreid's CUHK03 extraction imports imageio (not installed): provide ``imwrite`` with cv2."""
    module = types.ModuleType("imageio")
    module.imwrite = lambda path, image: cv2.imwrite(path, np.ascontiguousarray(image[:, :, ::-1]))
    monkeypatch.setitem(sys.modules, "imageio", module)


# -------------------------------------------------------------------------------------------------- MSMT17
def make_msmt17(root: str, version: str = "MSMT17_V1") -> None:
    """Folders and list files (images are not read by either parser)."""
    train_dir, test_dir = {"MSMT17_V1": ("train", "test"), "MSMT17_V2": ("mask_train_v2", "mask_test_v2")}[
        version
    ]
    base = os.path.join(root, "msmt17", version)
    os.makedirs(os.path.join(base, train_dir), exist_ok=True)
    os.makedirs(os.path.join(base, test_dir), exist_ok=True)

    def lines(entries):
        return "".join(
            f"{pid:04d}/{pid:04d}_{i:03d}_{cam:02d}_0303morning_{i:04d}_0.jpg {pid}\n"
            for pid, cam, i in entries
        )

    files = {
        "list_train.txt": [(0, 1, 0), (0, 3, 1), (1, 15, 2), (2, 7, 3)],
        "list_val.txt": [(1, 2, 4), (3, 5, 5)],
        "list_query.txt": [(0, 4, 6), (1, 9, 7)],
        "list_gallery.txt": [(0, 2, 8), (0, 11, 9), (1, 12, 10), (2, 13, 11)],
    }
    for name, entries in files.items():
        with open(os.path.join(base, name), "w") as f:
            f.write(lines(entries))


# ----------------------------------------------------------------------------------------------- CUHK-SYSU
def make_cuhksysu_torchreid(root: str) -> None:
    for i, (pid, scene) in enumerate([(11422, 16929), (11422, 17), (5, 3), (7, 3)]):
        write_image(os.path.join(root, "cuhksysu", "cropped_images", f"p{pid}_s{scene}_{i + 1}.jpg"), i)


def make_cuhksysu_metabin(root: str) -> None:
    for i, (pid, n, scene) in enumerate([(1, 1, 1), (1, 2, 4), (2, 1, 4), (3, 1, 9)]):
        name = f"p{pid:05d}_n{n:02d}_s{scene:05d}_hard{i % 2}.png"
        write_image(os.path.join(root, "CUHK-SYSU", "cropped_image", name), i)


# -------------------------------------------------------------------------------------------------- CUHK02
def make_cuhk02(root: str) -> None:
    for p in range(1, 6):
        for cam in (1, 2):
            for pid in (1, 2):
                write_image(
                    os.path.join(root, "cuhk02", "Dataset", f"P{p}", f"cam{cam}", f"{pid:04d}_{cam}.png")
                )


# ---------------------------------------------------------------------------------------- small targets
def make_viper(root: str, num_pairs: int = 632) -> None:
    for cam in ("cam_a", "cam_b"):
        for i in range(num_pairs):
            angle = (i * 45) % 180
            write_image(os.path.join(root, "viper", "VIPeR", cam, f"{i:03d}_{angle}.bmp"), i)


def make_prid(root: str) -> None:
    for cam, count in (("cam_a", 385), ("cam_b", 749)):
        for pid in range(1, count + 1):
            write_image(
                os.path.join(root, "prid2011", "prid_2011", "single_shot", cam, f"person_{pid:04d}.png"), pid
            )


def make_grid(root: str, num_distractors: int = 12) -> list[list[int]]:
    """250 probe ids, their gallery matches + distractors (id 0000), and ``features_and_partitions.mat``."""
    base = os.path.join(root, "grid", "underground_reid")
    for pid in range(1, 251):
        write_image(os.path.join(base, "probe", f"{pid:04d}_{1 + pid % 8}_25004_107_32_106_221.jpeg"), pid)
        write_image(
            os.path.join(base, "gallery", f"{pid:04d}_{1 + (pid + 3) % 8}_25004_107_32_106_221.jpeg"), pid
        )
    for i in range(num_distractors):
        write_image(
            os.path.join(base, "gallery", f"0000_{1 + i % 8}_{25010 + i}_112_39_88_212.jpeg"), 1000 + i
        )
    rng = np.random.default_rng(7)
    train_ids = [sorted(rng.choice(np.arange(1, 251), 125, replace=False).tolist()) for _ in range(10)]
    fields = [("idxProbe", "O"), ("idxGallery", "O"), ("idxTrain", "O")]
    cells = np.empty((1, 10), dtype=object)
    for i, ids in enumerate(train_ids):
        struct = np.zeros((1, 1), dtype=fields)
        test = sorted(set(range(1, 251)) - set(ids))
        struct[0, 0]["idxProbe"] = np.asarray(test, dtype=np.float64).reshape(1, -1)
        struct[0, 0]["idxGallery"] = np.asarray(test, dtype=np.float64).reshape(1, -1)
        struct[0, 0]["idxTrain"] = np.asarray(ids, dtype=np.float64).reshape(1, -1)
        cells[0, i] = struct
    sio.savemat(os.path.join(base, "features_and_partitions.mat"), {"trainIdxAll": cells})
    return train_ids


def make_ilids(root: str) -> None:
    """119 persons x 4 images = 476 (torchreid checks both numbers)."""
    for pid in range(1, 120):
        for image in range(1, 5):
            write_image(
                os.path.join(root, "ilids", "i-LIDS_Pedestrian", "Persons", f"{pid:04d}{image:03d}.jpg"), pid
            )
