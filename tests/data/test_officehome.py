"""The ``officehome`` parser and the classification data builder on fake Office-Home trees."""

from __future__ import annotations

import os
import warnings

import pytest
from fake_trees import write_image

from reid_dff.config import get_cfg
from reid_dff.data.datasets import (
    DatasetLayoutError,
    DatasetOptionError,
    DatasetStatisticsWarning,
    build_dataset,
    parse_dataset_spec,
)
from reid_dff.data.datasets.officehome import DOMAINS, canonical_domain, split_train_val
from reid_dff.data.synthetic import ensure_synthetic_data
from reid_dff.tasks.classification.data import build_classification_data

CLASSES = ["Bottle", "Alarm_Clock", "Chair"]  # written unsorted: labels must follow sorted names


def make_officehome(
    root, per_class=10, real_world_folder="Real World", top="OfficeHomeDataset", classes=CLASSES
):
    """A fake tree: ``per_class`` images per class per domain; returns {(domain, class): [relative paths]}."""
    written = {}
    for d, domain in enumerate(DOMAINS):
        folder = real_world_folder if domain == "Real_World" else domain
        for c, name in enumerate(classes):
            paths = []
            for i in range(per_class):
                rel = os.path.join(top, folder, name, f"{i:05d}.jpg")
                write_image(os.path.join(root, rel), seed=d * 1000 + c * 100 + i)
                paths.append(rel)
            written[(domain, name)] = paths
    return written


def quiet_build(spec, root, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetStatisticsWarning)
        return build_dataset(spec, root, **options)


@pytest.mark.parametrize("real_world_folder", ["Real World", "Real_World"])
def test_parses_both_real_world_spellings(tmp_path, real_world_folder):
    written = make_officehome(tmp_path, per_class=10, real_world_folder=real_world_folder)
    for spec in ["officehome:Real_World", "officehome:Real World", "officehome:rw"]:
        ds = quiet_build(spec, tmp_path)
        assert ds.domain == "Real_World" and ds.classes == sorted(CLASSES)
        # Every image once in test, train/val partition it, labels follow the sorted class names.
        expected = {
            os.path.abspath(os.path.join(tmp_path, rel)): sorted(CLASSES).index(name)
            for (domain, name), rels in written.items()
            if domain == "Real_World"
            for rel in rels
        }
        assert {s.path: s.pid for s in ds.test} == expected
        assert sorted(s.path for s in ds.train + ds.val) == sorted(expected)
        assert {(s.camid, s.domain) for s in ds.test} == {(0, 3)}
        assert len(ds.val) == 3 and len(ds.train) == 27  # 10 % of 10 images of each of 3 classes


def test_all_domains_and_official_zip_folder(tmp_path):
    make_officehome(tmp_path, per_class=3, top="OfficeHomeDataset_10072016")
    ds = quiet_build("officehome", tmp_path)
    assert ds.domains == list(DOMAINS)
    assert len(ds.test) == 4 * 3 * 3
    assert {s.domain for s in ds.test} == {0, 1, 2, 3}
    # Not a generated tree: the official counts are checked and differ here.
    assert any("published 15588" in p or "published 65" in p for p in ds.problems)


def test_split_is_fixed_stratified_and_independent_of_other_domains(tmp_path):
    make_officehome(tmp_path, per_class=20)
    a = quiet_build("officehome:Art", tmp_path, val_fraction=0.1, split_seed=0)
    b = quiet_build("officehome:Art", tmp_path, val_fraction=0.1, split_seed=0)
    both = quiet_build("officehome", tmp_path, val_fraction=0.1, split_seed=0)
    other = quiet_build("officehome:Art", tmp_path, val_fraction=0.1, split_seed=1)
    assert a.val == b.val and a.train == b.train
    assert [s for s in both.val if s.domain == 0] == a.val
    assert set(other.val) != set(a.val)
    per_class = {c: sum(s.pid == c for s in a.val) for c in range(3)}
    assert per_class == {0: 2, 1: 2, 2: 2}


def test_split_train_val_rounding_and_minimum():
    paths = [f"p{i}" for i in range(5)]
    train, val = split_train_val(paths, 0.1, (0, 0, 0))
    assert len(val) == 1 and sorted(train + val) == paths  # 0.5 rounds up
    train, val = split_train_val(["only"], 0.5, (0, 0, 0))
    assert train == ["only"] and val == []  # a class keeps at least one training image
    assert split_train_val(paths, 0.0, (0, 0, 0)) == (paths, [])


def test_domain_names():
    assert canonical_domain("real world") == "Real_World"
    assert canonical_domain("Cl") == "Clipart"
    with pytest.raises(DatasetOptionError, match="unknown Office-Home domain 'Sketch'.*Art, Clipart"):
        canonical_domain("Sketch")
    assert parse_dataset_spec("officehome:Art") == ("officehome", {"domain": "Art"})


def test_missing_root_shows_expected_tree(tmp_path):
    with pytest.raises(DatasetLayoutError, match=r"(?s)OfficeHomeDataset.*Art/<Class>/<image>\.jpg"):
        build_dataset("officehome:Art", tmp_path)


def test_missing_domain_names_the_folder(tmp_path):
    make_officehome(tmp_path, per_class=1)
    os.rename(tmp_path / "OfficeHomeDataset" / "Clipart", tmp_path / "OfficeHomeDataset" / "clip")
    with pytest.raises(
        DatasetLayoutError, match=r"Clipart domain folder \(tried .*OfficeHomeDataset/Clipart\)"
    ):
        build_dataset("officehome:Art", tmp_path)


def test_class_lists_must_agree_across_domains(tmp_path):
    make_officehome(tmp_path, per_class=1)
    (tmp_path / "OfficeHomeDataset" / "Product" / "Zebra").mkdir()
    with pytest.raises(DatasetLayoutError, match=r"Product differ .*extra \['Zebra'\]"):
        build_dataset("officehome:Art", tmp_path)


def test_empty_class_folder_is_named(tmp_path):
    make_officehome(tmp_path, per_class=1)
    for f in (tmp_path / "OfficeHomeDataset" / "Art" / "Chair").iterdir():
        f.unlink()
    with pytest.raises(DatasetLayoutError, match=r"Art/Chair \(the folder is empty\)"):
        build_dataset("officehome:Art", tmp_path)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"val_fraction": 1.0}, "VAL_FRACTION"),
        ({"split_seed": -1}, "SPLIT_SEED"),
        ({"domain": "Sketch"}, "Sketch"),
    ],
)
def test_bad_options(tmp_path, options, message):
    make_officehome(tmp_path, per_class=1)
    with pytest.raises(DatasetOptionError, match=message):
        build_dataset("officehome", tmp_path, **options)


def classification_cfg(root, sources, targets):
    cfg = get_cfg()
    cfg.DATASETS.ROOT = os.fspath(root)
    cfg.DATASETS.SOURCES = sources
    cfg.DATASETS.TARGETS = targets
    cfg.DATASETS.OFFICEHOME.VAL_FRACTION = 0.2
    return cfg


def test_classification_data_keeps_class_labels_across_sources(tmp_path):
    make_officehome(tmp_path, per_class=5)
    cfg = classification_cfg(
        tmp_path, ["officehome:Clipart", "officehome:Product", "officehome:Real_World"], ["officehome:Art"]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetStatisticsWarning)
        data = build_classification_data(cfg)
    assert data.classes == sorted(CLASSES) and data.train.num_classes == 3 and data.train.num_domains == 3
    assert len(data.train.samples) == 3 * 3 * 4 and all(len(v) == 3 for v in data.val.values())
    assert {s.domain for s in data.train.samples} == {0, 1, 2}  # source index, as for ReID training sets
    # A label names the same class folder in every source (no per-source relabeling).
    for s in data.train.samples:
        assert os.path.basename(os.path.dirname(s.path)) == data.classes[s.pid]
    assert len(data.targets["officehome:Art"]) == 15
    assert not {s.path for s in data.train.samples} & {s.path for s in data.targets["officehome:Art"]}


@pytest.mark.parametrize(
    "sources, targets, message",
    [
        (
            ["officehome:Art"],
            ["officehome:art"],
            r"'officehome:art' shares domain\(s\) \['Art'\] with DATASETS.SOURCES \['officehome:Art'\]",
        ),
        # the whole dataset as a source or as a target covers every domain
        (
            ["officehome"],
            ["officehome:Art"],
            r"shares domain\(s\) \['Art'\] with DATASETS.SOURCES \['officehome'\]",
        ),
        (
            ["officehome:Art", "officehome:Clipart"],
            ["officehome"],
            r"\['Art', 'Clipart'\] with DATASETS.SOURCES \['officehome:Art', 'officehome:Clipart'\]",
        ),
        (["officehome:Art", "officehome:Art"], ["officehome:Clipart"], "more than once"),
        (["officehome:Art", "officehome:ar"], ["officehome:Clipart"], "both include domain 'Art'"),
        ([], ["officehome:Art"], "DATASETS.SOURCES is empty"),
        (["officehome:Art"], ["image_folder:mine"], "not a classification dataset"),
    ],
)
def test_classification_data_errors(tmp_path, sources, targets, message):
    make_officehome(tmp_path, per_class=2)
    write_image(str(tmp_path / "mine" / "train" / "0001" / "a.jpg"))
    cfg = classification_cfg(tmp_path, sources, targets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetStatisticsWarning)
        with pytest.raises(DatasetOptionError, match=message):
            build_classification_data(cfg)


def test_combine_all_is_refused(tmp_path):
    cfg = classification_cfg(tmp_path, ["officehome:Art"], ["officehome:Clipart"])
    cfg.DATASETS.COMBINE_ALL = True
    with pytest.raises(DatasetOptionError, match="COMBINE_ALL"):
        build_classification_data(cfg)


def test_synthetic_tree_is_generated_and_not_checked_against_published(tmp_path):
    cfg = classification_cfg(tmp_path, ["officehome:Art"], ["officehome:Clipart"])
    assert ensure_synthetic_data(cfg) == [] and not os.listdir(tmp_path)
    cfg.DATASETS.OFFICEHOME.SYNTHETIC.update({"ENABLED": True, "IMAGES_PER_CLASS": 2, "SIZE": 16})
    (path,) = ensure_synthetic_data(cfg)
    assert path == os.path.join(tmp_path, "OfficeHomeDataset")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetStatisticsWarning)
        ds = build_dataset("officehome:Art", tmp_path)
    assert len(ds.classes) == 8 and ds.problems == []
