"""The many-class shape x texture set of stage 1: deterministic bytes, the class_folder layout, reuse and
refusal by manifest, balanced class order, and colour that says nothing about the class."""

import hashlib
import itertools
import os

import numpy as np
import pytest

from reid_dff.config import get_cfg
from reid_dff.data.datasets import build_dataset
from reid_dff.data.io import read_image
from reid_dff.data.synthetic import SyntheticDataError, ensure_synthetic_data
from reid_dff.data.synthetic.classes import (
    CLASSES_DIRNAME,
    SHAPES,
    TEXTURES,
    class_names,
    ensure_synthetic_classes,
    generate_synthetic_classes,
    read_classes_manifest,
    render_class_image,
)
from reid_dff.data.synthetic.tree import ForeignTreeError, SyntheticParameterError, SyntheticTreeExistsError

TINY = {"num_classes": 4, "train_per_class": 3, "val_per_class": 2, "size": 16}


def tree_hashes(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def test_same_arguments_give_byte_identical_trees_and_another_seed_does_not(tmp_path):
    generate_synthetic_classes(tmp_path / "a", seed=3, **TINY)
    generate_synthetic_classes(tmp_path / "b", seed=3, **TINY)
    a = tree_hashes(tmp_path / "a")
    assert a == tree_hashes(tmp_path / "b")
    images = sorted(k for k in a if k.endswith(".png"))
    assert len(images) == 4 * (3 + 2)
    assert os.path.join(CLASSES_DIRNAME, "val", "003_triangle_vstripes_coarse", "00002.png") in images
    generate_synthetic_classes(tmp_path / "c", seed=4, **TINY)
    c = tree_hashes(tmp_path / "c")
    assert set(c) == set(a) and all(c[k] != a[k] for k in images)  # every image is redrawn
    assert not [n for n in os.listdir(tmp_path / "a") if n.startswith(".")]  # no staging folder left


def test_the_class_folder_dataset_reads_the_tree(tmp_path):
    generate_synthetic_classes(tmp_path, seed=0, **TINY)
    dataset = build_dataset(f"class_folder:{CLASSES_DIRNAME}", str(tmp_path))
    assert dataset.classes == class_names(4)
    assert len(dataset.train) == 12 and len(dataset.val) == 8
    for sample in dataset.train + dataset.val:
        assert os.path.basename(os.path.dirname(sample.path)) == dataset.classes[sample.pid]
        assert sample.path.endswith(".png")
    image = read_image(dataset.val[0].path)
    assert image.shape == (16, 16, 3) and image.dtype == np.uint8
    # The PNG holds exactly the rendered pixels (lossless).
    np.testing.assert_array_equal(image, render_class_image(0, "val", 0, 0, 16))


def test_ensure_reuses_a_matching_tree_and_refuses_any_other(tmp_path):
    path = ensure_synthetic_classes(tmp_path, seed=1, **TINY)
    before = {k: os.stat(os.path.join(tmp_path, k)).st_mtime_ns for k in tree_hashes(tmp_path)}
    assert ensure_synthetic_classes(tmp_path, seed=1, **TINY) == path
    assert {k: os.stat(os.path.join(tmp_path, k)).st_mtime_ns for k in before} == before  # not rewritten
    with pytest.raises(SyntheticDataError, match=r"num_classes: on disk 4, asked 5"):
        ensure_synthetic_classes(tmp_path, seed=1, **{**TINY, "num_classes": 5})
    with pytest.raises(SyntheticTreeExistsError):
        generate_synthetic_classes(tmp_path, seed=1, **TINY)
    manifest = generate_synthetic_classes(tmp_path, seed=2, **TINY, overwrite=True)
    assert read_classes_manifest(tmp_path) == manifest and manifest["seed"] == 2
    assert ensure_synthetic_classes(tmp_path, seed=2, **TINY) == path

    foreign = tmp_path / "foreign" / CLASSES_DIRNAME
    foreign.mkdir(parents=True)
    with pytest.raises(SyntheticDataError, match="no manifest.json"):
        ensure_synthetic_classes(tmp_path / "foreign", **TINY)


def test_a_config_with_the_set_enabled_generates_it(tmp_path):
    cfg = get_cfg()
    cfg.DATASETS.ROOT = str(tmp_path)
    cfg.DATASETS.SOURCES = [f"class_folder:{CLASSES_DIRNAME}"]
    cfg.DATASETS.TARGETS = []
    assert ensure_synthetic_data(cfg) == []  # off by default
    cfg.DATASETS.SYNTHETIC_CLASSES.update(
        {"ENABLED": True, "NUM_CLASSES": 4, "TRAIN_PER_CLASS": 3, "VAL_PER_CLASS": 2, "SIZE": 16}
    )
    assert ensure_synthetic_data(cfg) == [os.path.join(str(tmp_path), CLASSES_DIRNAME)]
    assert read_classes_manifest(tmp_path)["num_files"] == 20


def test_the_classes_are_every_shape_texture_pair_balanced_in_each_ten():
    names = class_names()
    pairs = [tuple(n.split("_", 1)[1].split("_", 1)) for n in names]
    assert sorted(pairs) == sorted(itertools.product(SHAPES, TEXTURES))  # a bijection onto the 100 pairs
    assert names == sorted(names)  # folder order is class order
    for start in range(0, 100, 10):
        window = pairs[start : start + 10]
        assert {s for s, _ in window} == set(SHAPES) and {t for _, t in window} == set(TEXTURES)
    for bad in (1, 101):
        with pytest.raises(SyntheticParameterError):
            class_names(bad)


def test_colour_alone_does_not_tell_the_class():
    # Nearest class mean of the mean RGB of each image (leave one out), over 10 classes: near chance (0.1).
    classes, per_class = 10, 24
    colours = np.array(
        [[render_class_image(0, "train", k, i, 16).reshape(-1, 3).mean(0) for i in range(per_class)] for k in range(classes)]
    )  # fmt: skip
    correct = 0
    for k in range(classes):
        for i in range(per_class):
            means = colours.sum(1)
            means[k] -= colours[k, i]
            counts = np.full(classes, per_class)
            counts[k] -= 1
            centroids = means / counts[:, None]
            correct += int(np.argmin(np.linalg.norm(centroids - colours[k, i], axis=1)) == k)
    assert correct / (classes * per_class) < 0.3


def test_a_tree_finished_by_another_process_meanwhile_is_checked_and_reused(tmp_path, monkeypatch):
    from reid_dff.data.synthetic import classes

    real = classes._encode_png
    racer = {"seed": 0, "done": False}

    def other_process_wins(rgb):  # the first image of this call: another process writes the whole tree
        if not racer["done"]:
            racer["done"] = True
            generate_synthetic_classes(tmp_path / racer["root"], seed=racer["seed"], **TINY)
        return real(rgb)

    monkeypatch.setattr(classes, "_encode_png", other_process_wins)
    racer["root"] = "same"
    path = ensure_synthetic_classes(tmp_path / "same", seed=0, **TINY)
    assert racer["done"] and read_classes_manifest(tmp_path / "same")["seed"] == 0
    assert os.listdir(tmp_path / "same") == [CLASSES_DIRNAME] and path.endswith(CLASSES_DIRNAME)

    racer.update({"root": "other", "seed": 1, "done": False})  # the other process used another seed
    with pytest.raises(SyntheticDataError, match="seed: on disk 1, asked 0"):
        ensure_synthetic_classes(tmp_path / "other", seed=0, **TINY)
    assert os.listdir(tmp_path / "other") == [CLASSES_DIRNAME]


def test_make_synthetic_classes_generates_reuses_and_refuses_other_parameters(tmp_path, capsys):
    from reid_dff.cli.make_synthetic import main

    argv = ["--root", str(tmp_path), "--classes", "--num-classes", "4", "--train-per-class", "3"]
    argv += ["--val-per-class", "2", "--size", "16"]
    main(argv)
    first = capsys.readouterr().out
    manifest = read_classes_manifest(tmp_path)
    assert (
        f"4 classes x (3 train + 2 val) images of 16x16, 20 files, total sha256 {manifest['total_sha256']}"
        in first
    )
    assert not os.path.exists(tmp_path / "synthetic")  # the ReID domains are not generated
    main(argv)
    assert "already holds these parameters; reused it" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main([*argv, "--seed", "5"])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert (
        info.value.code == 1
        and "seed: on disk 0, asked 5" in line
        and line.endswith("--overwrite regenerates the tree")
    )
    main([*argv, "--seed", "5", "--overwrite"])
    assert read_classes_manifest(tmp_path)["seed"] == 5


@pytest.mark.parametrize("manifest", [None, '{"format": "something-else"}', "[1, 2]"])
def test_overwrite_never_replaces_a_folder_the_generator_did_not_write(tmp_path, capsys, manifest):
    from reid_dff.cli.make_synthetic import main

    user = tmp_path / CLASSES_DIRNAME
    (user / "train").mkdir(parents=True)
    (user / "train" / "mine.png").write_bytes(b"user data")
    if manifest is not None:
        (user / "manifest.json").write_text(manifest)
    with pytest.raises(ForeignTreeError, match="is not a .*synthetic classification tree"):
        generate_synthetic_classes(tmp_path, num_classes=2, train_per_class=1, val_per_class=1, size=16,
                                   overwrite=True)  # fmt: skip
    argv = ["--root", str(tmp_path), "--classes", "--num-classes", "2", "--train-per-class", "1"]
    for extra in ([], ["--overwrite"]):
        with pytest.raises(SystemExit) as info:
            main([*argv, "--val-per-class", "1", "--size", "16", *extra])
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert info.value.code == 1 and "synthetic classification tree" in line
        assert line.endswith("move that folder away or pass another --root")
    assert (user / "train" / "mine.png").read_bytes() == b"user data"  # nothing was replaced or deleted
    assert sorted(p.name for p in tmp_path.iterdir()) == [CLASSES_DIRNAME]  # no staging folder left
