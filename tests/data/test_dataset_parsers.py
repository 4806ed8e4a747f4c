"""Our parsers against torchreid 0.2.5's on fake trees in the official layouts.

Equality is of (path, pid, camid) multisets per split, up to pid relabeling (``canonical``). Where we
deliberately differ from torchreid the test says so.
"""

from __future__ import annotations

import json
import os
import warnings

import pytest
from fake_trees import (
    canonical,
    install_fake_imageio,
    make_cuhk02,
    make_cuhk03,
    make_cuhksysu_metabin,
    make_cuhksysu_torchreid,
    make_duke,
    make_grid,
    make_ilids,
    make_market1501,
    make_msmt17,
    make_prid,
    make_viper,
    tree_snapshot,
)

from reid_dff.data.datasets import (
    DatasetLayoutError,
    DatasetOptionError,
    DatasetStatisticsWarning,
    build_dataset,
    parse_dataset_spec,
)
from reid_dff.data.datasets.protocol_splits import format_split_document

tr = pytest.importorskip("torchreid.reid.data.datasets.image")


def ours(name, root, **options):
    """Build quietly (the tiny trees never match the published statistics) and check the root is untouched."""
    before = tree_snapshot(str(root))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetStatisticsWarning)
        dataset = build_dataset(name, str(root), **options)
    assert tree_snapshot(str(root)) == before, f"{name}: the parser wrote into the data root"
    return dataset


def theirs(cls, root, **kwargs):
    return cls(root=str(root), verbose=False, **kwargs)


def assert_same(a, b):
    """Same train multiset, and same query/gallery multisets with one joint relabeling."""
    assert canonical(a.train) == canonical(b.train)
    assert canonical(a.query, a.gallery) == canonical(b.query, b.gallery)


# ------------------------------------------------------------------------------------------- big datasets
@pytest.mark.parametrize("flat", [False, True])
def test_market1501_matches_torchreid(tmp_path, flat):
    make_market1501(str(tmp_path), flat=flat)
    mine = ours("market1501", tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchreid warns about the flat layout
        ref = theirs(tr.Market1501, tmp_path)
    assert_same(mine, ref)
    # junk (-1) dropped everywhere, distractors (0) kept in the gallery only
    assert {s.pid for s in mine.gallery} == {0, 1, 3}
    assert all(os.path.isabs(s.path) for s in mine.train + mine.query + mine.gallery)


def test_dukemtmcreid_matches_torchreid(tmp_path):
    make_duke(str(tmp_path))
    assert_same(ours("dukemtmcreid", tmp_path), theirs(tr.DukeMTMCreID, tmp_path))


@pytest.mark.parametrize("version", ["MSMT17_V1", "MSMT17_V2"])
def test_msmt17_matches_torchreid_and_val_joins_only_combined(tmp_path, version):
    make_msmt17(str(tmp_path), version)
    mine = ours("msmt17", tmp_path)
    assert mine.version == version
    assert_same(mine, theirs(tr.MSMT17, tmp_path))
    combined_ref = theirs(tr.MSMT17, tmp_path, combineall=True)
    material = mine.train_samples(combine_all=True)
    # torchreid's combineall: train + val, then query/gallery ids relabeled after the train ids
    assert canonical([(s.path, (scope, s.pid), s.camid) for s, scope in material]) == canonical(
        combined_ref.train
    )
    assert len(mine.train_samples(combine_all=False)) == len(mine.train) == 4


def test_cuhk02_matches_torchreid(tmp_path):
    make_cuhk02(str(tmp_path))
    mine = ours("cuhk02", tmp_path)
    assert_same(mine, theirs(tr.CUHK02, tmp_path))
    assert len({s.pid for s in mine.train}) == 8  # ids restart per pair; ours never collide


def test_cuhksysu_torchreid_convention_matches(tmp_path):
    make_cuhksysu_torchreid(str(tmp_path))
    mine = ours("cuhksysu", tmp_path)
    assert mine.convention == "torchreid"
    assert canonical(mine.train) == canonical(theirs(tr.CUHKSYSU, tmp_path).train)
    assert mine.query == mine.gallery == []  # torchreid puts a dummy copy of train[0] there; we do not


def test_cuhksysu_metabin_convention_detected(tmp_path):
    # Deliberate difference from torchreid (which does not read this layout): MetaBIN's crops, camid = scene.
    make_cuhksysu_metabin(str(tmp_path))
    mine = ours("cuhksysu", tmp_path)
    assert mine.convention == "metabin"
    assert sorted((s.pid, s.camid) for s in mine.train) == [(1, 1), (1, 4), (2, 4), (3, 9)]


@pytest.mark.parametrize("boxes", ["detected", "labeled"])
def test_cuhk03_new_protocol_matches_torchreid(tmp_path, monkeypatch, boxes):
    root, cache = tmp_path / "data", tmp_path / "cache"
    make_cuhk03(str(root))
    mine = ours("cuhk03", root, boxes=boxes, cache_dir=str(cache))
    install_fake_imageio(monkeypatch)
    ref = theirs(tr.CUHK03, root, cuhk03_labeled=boxes == "labeled")

    # torchreid extracts into the data root, we into the cache: compare by file name, and the pixels
    def by_name(samples):
        return [(os.path.basename(s[0]), s[1], s[2]) for s in samples]

    assert canonical(by_name(mine.train)) == canonical(by_name(ref.train))
    assert canonical(by_name(mine.query), by_name(mine.gallery)) == canonical(
        by_name(ref.query), by_name(ref.gallery)
    )
    import cv2

    for sample in mine.train[:3]:
        assert sample.path.startswith(str(cache / boxes))
        theirs_path = os.path.join(str(root), "cuhk03", f"images_{boxes}", os.path.basename(sample.path))
        assert (cv2.imread(sample.path) == cv2.imread(theirs_path)).all()


def test_cuhk03_classic_split_matches_torchreid(tmp_path, monkeypatch):
    root, cache = tmp_path / "data", tmp_path / "cache"
    make_cuhk03(str(root))
    install_fake_imageio(monkeypatch)
    for split_id in (0, 4):
        mine = ours("cuhk03", root, classic_split=True, split_id=split_id, cache_dir=str(cache))
        ref = theirs(tr.CUHK03, root, cuhk03_classic_split=True, split_id=split_id)

        def by_name(samples):
            return [(os.path.basename(s[0]), s[1], s[2]) for s in samples]

        assert canonical(by_name(mine.train)) == canonical(by_name(ref.train))
        assert canonical(by_name(mine.query), by_name(mine.gallery)) == canonical(
            by_name(ref.query), by_name(ref.gallery)
        )
        assert mine.split_id == split_id


def test_cuhk03_classic_split_id_comes_from_the_config(tmp_path):
    from reid_dff.config import get_cfg
    from reid_dff.data.build import dataset_options

    root, cache = tmp_path / "data", tmp_path / "cache"
    make_cuhk03(str(root))
    cfg = get_cfg()
    cfg.DATASETS.CUHK03.update({"CLASSIC_SPLIT": True, "CLASSIC_SPLIT_ID": 4, "CACHE_DIR": str(cache)})
    from_cfg = ours("cuhk03", root, **dataset_options(cfg, "cuhk03"))
    direct = ours("cuhk03", root, classic_split=True, split_id=4, cache_dir=str(cache))
    assert from_cfg.split_id == 4 and from_cfg.query == direct.query and from_cfg.train == direct.train
    cfg.DATASETS.CUHK03.CLASSIC_SPLIT = False
    with pytest.raises(DatasetOptionError, match="CLASSIC_SPLIT_ID applies to the classic protocol only"):
        dataset_options(cfg, "cuhk03")
    cfg.DATASETS.CUHK03.update({"CLASSIC_SPLIT": True, "CLASSIC_SPLIT_ID": 20})
    with pytest.raises(DatasetOptionError, match=r"0..19 \(DATASETS.CUHK03.CLASSIC_SPLIT_ID\)"):
        build_dataset("cuhk03", str(root), **dataset_options(cfg, "cuhk03"))


def test_cuhk03_reuses_cache_and_never_writes_root(tmp_path):
    root, cache = tmp_path / "data", tmp_path / "cache"
    make_cuhk03(str(root))
    first = ours("cuhk03", root, cache_dir=str(cache))
    manifest = cache / "detected" / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    second = ours("cuhk03", root, cache_dir=str(cache))
    assert manifest.stat().st_mtime_ns == stamp  # second load reads the manifest, extracts nothing
    assert first.train == second.train
    os.unlink(first.train[0].path)  # a cache missing an image is extracted again
    third = ours("cuhk03", root, cache_dir=str(cache))
    assert os.path.isfile(first.train[0].path) and third.train == first.train
    assert json.loads(manifest.read_text())["boxes"] == "detected"
    with pytest.raises(DatasetOptionError, match="inside the data root"):
        build_dataset("cuhk03", str(root), cache_dir=str(root / "cache"))


def _torchreid_extract(root, monkeypatch):
    """Run torchreid's own CUHK03 preparation on the fake tree: images_<boxes>/ and splits_*.json."""
    install_fake_imageio(monkeypatch)
    theirs(tr.CUHK03, root)


@pytest.mark.parametrize("classic", [False, True])
@pytest.mark.parametrize("boxes", ["detected", "labeled"])
def test_cuhk03_reads_torchreid_extraction(tmp_path, monkeypatch, boxes, classic):
    root, cache = tmp_path / "data", tmp_path / "cache"
    make_cuhk03(str(root))
    extracted = ours("cuhk03", root, boxes=boxes, classic_split=classic, cache_dir=str(cache / "a"))
    assert extracted.image_source == "cache"
    _torchreid_extract(root, monkeypatch)
    reused = ours("cuhk03", root, boxes=boxes, classic_split=classic, cache_dir=str(cache / "b"))
    assert reused.image_source == "torchreid"
    assert not (cache / "b").exists()  # nothing extracted, nothing cached
    image_dir = os.path.join(str(root), "cuhk03", f"images_{boxes}")
    for split in ("train", "query", "gallery"):
        a, b = getattr(extracted, split), getattr(reused, split)
        assert all(os.path.dirname(s.path) == image_dir for s in b)
        # the same samples in the same order, only the folder differs
        assert [(os.path.basename(s.path), s.pid, s.camid) for s in a] == [
            (os.path.basename(s.path), s.pid, s.camid) for s in b
        ]
    ref = theirs(tr.CUHK03, root, cuhk03_labeled=boxes == "labeled", cuhk03_classic_split=classic)
    assert_same(reused, ref)  # identical paths now: torchreid reads the same files


def test_cuhk03_torchreid_extraction_options(tmp_path, monkeypatch):
    root, cache = tmp_path / "data", tmp_path / "cache"
    make_cuhk03(str(root))
    _torchreid_extract(root, monkeypatch)
    # opting out extracts from the .mat as before
    assert ours("cuhk03", root, cache_dir=str(cache), torchreid_images=False).image_source == "cache"
    # the new protocol needs only the config file and the images; the classic splits need the .mat
    mat = root / "cuhk03" / "cuhk03_release" / "cuhk-03.mat"
    mat.rename(tmp_path / "cuhk-03.mat")
    assert ours("cuhk03", root, cache_dir=str(cache / "x")).image_source == "torchreid"
    with pytest.raises(DatasetLayoutError, match="cuhk-03.mat"):
        build_dataset("cuhk03", str(root), classic_split=True, cache_dir=str(cache / "x"))
    (tmp_path / "cuhk-03.mat").rename(mat)
    # an unfinished torchreid run (no split files yet) is not trusted: extract instead
    (root / "cuhk03" / "splits_new_labeled.json").unlink()
    assert ours("cuhk03", root, cache_dir=str(cache / "y")).image_source == "cache"


def test_cuhk03_torchreid_folder_with_foreign_png_is_an_error(tmp_path, monkeypatch):
    root = tmp_path / "data"
    make_cuhk03(str(root))
    _torchreid_extract(root, monkeypatch)
    (root / "cuhk03" / "images_detected" / "person.png").write_bytes(b"")
    with pytest.raises(DatasetLayoutError, match="person.png"):
        build_dataset("cuhk03", str(root), cache_dir=str(tmp_path / "cache"))


# ------------------------------------------------------------------------------------------ small targets
def test_grid_matches_torchreid_on_its_mat_splits(tmp_path):
    make_grid(str(tmp_path))
    for split_id in (0, 3, 9):
        mine = ours("grid", tmp_path, split_id=split_id)
        ref = theirs(tr.GRID, tmp_path, split_id=split_id)
        assert_same(mine, ref)
        assert mine.split_file.endswith("features_and_partitions.mat") and len(mine.split_sha256) == 64
        assert len(mine.query) == 125 and {s.pid for s in mine.gallery} >= {0}


def test_viper_matches_torchreid_when_fed_its_split(tmp_path):
    # The splits themselves differ deliberately (torchreid draws without a seed; ours are fixed): feed
    # torchreid's split into ours through a split file and compare what each builds from it.
    make_viper(str(tmp_path))
    ref = theirs(tr.VIPeR, tmp_path, split_id=0)  # also writes viper/splits.json (torchreid's behaviour)
    cam_a = sorted(os.listdir(tmp_path / "viper" / "VIPeR" / "cam_a"))
    splits = json.loads((tmp_path / "viper" / "splits.json").read_text())
    converted = []
    for i, split in enumerate(splits[0::2]):  # even splits are the cam_a -> cam_b direction
        train_ids = sorted({cam_a.index(os.path.basename(p)) for p, _, c in split["train"] if c == 0})
        test_ids = sorted(cam_a.index(os.path.basename(p)) for p, _, _ in split["query"])
        converted.append({"split_id": i, "train_ids": train_ids, "test_ids": test_ids})
    split_file = tmp_path / "viper_from_torchreid.json"
    split_file.write_text(format_split_document({"dataset": "viper", "splits": converted}))
    mine = ours("viper", tmp_path, split_id=0, split_file=str(split_file))
    assert_same(mine, ref)


def test_viper_packaged_split_shapes(tmp_path):
    make_viper(str(tmp_path))
    mine = ours("viper", tmp_path, split_id=2)
    assert [len(mine.train), len(mine.query), len(mine.gallery)] == [632, 316, 316]
    assert {s.camid for s in mine.query} == {0} and {s.camid for s in mine.gallery} == {1}
    assert {s.pid for s in mine.query} == {s.pid for s in mine.gallery}
    assert not {s.pid for s in mine.query} & {s.pid for s in mine.train}
    assert mine.split_file.endswith(os.path.join("splits", "viper.json"))


def test_prid_matches_torchreid_when_fed_its_split(tmp_path):
    make_prid(str(tmp_path))
    ref = theirs(tr.PRID, tmp_path, split_id=1)
    splits = json.loads((tmp_path / "prid2011" / "splits_single_shot.json").read_text())
    doc = {
        "dataset": "prid",
        "splits": [
            {"split_id": i, "train_ids": s["train"], "test_ids": s["test"]} for i, s in enumerate(splits)
        ],
    }
    split_file = tmp_path / "prid_from_torchreid.json"
    split_file.write_text(format_split_document(doc))
    mine = ours("prid", tmp_path, split_id=1, split_file=str(split_file))
    assert_same(mine, ref)
    assert [len(mine.query), len(mine.gallery)] == [100, 649]
    # combine all: the test ids join training, the 549 one-image distractors (201..749) do not
    combined_ref = theirs(tr.PRID, tmp_path, split_id=1, combineall=True)
    material = mine.train_samples(combine_all=True)
    assert canonical([(s.path, (scope, s.pid), s.camid) for s, scope in material]) == canonical(
        combined_ref.train
    )
    assert len(material) == 400


def test_ilids_matches_torchreid_when_fed_its_split(tmp_path):
    make_ilids(str(tmp_path))
    ref = theirs(tr.iLIDS, tmp_path, split_id=0)
    split = json.loads((tmp_path / "ilids" / "splits.json").read_text())[0]
    doc = {
        "dataset": "ilids",
        "splits": [
            {
                "split_id": 0,
                "train_ids": sorted({int(n[:4]) for n in split["train"]}),
                "test_ids": [int(n[:4]) for n in split["query"]],
                "query_images": split["query"],
                "gallery_images": split["gallery"],
            }
        ],
    }
    split_file = tmp_path / "ilids_from_torchreid.json"
    split_file.write_text(format_split_document(doc))
    mine = ours("ilids", tmp_path, split_id=0, split_file=str(split_file))
    assert_same(mine, ref)
    # a listed image of a train id would leak training identities into the test
    doc["splits"][0]["gallery_images"][0] = next(n for n in split["train"])
    split_file.write_text(format_split_document(doc))
    with pytest.raises(DatasetLayoutError, match="not among that split's test_ids"):
        build_dataset("ilids", str(tmp_path), split_id=0, split_file=str(split_file))


def test_ilids_packaged_split_picks_two_different_images_per_test_id(tmp_path):
    make_ilids(str(tmp_path))
    a = ours("ilids", tmp_path, split_id=5)
    b = ours("ilids", tmp_path, split_id=5)
    assert a.query == b.query and a.gallery == b.gallery  # deterministic
    assert len(a.query) == len(a.gallery) == 60 and len({s.pid for s in a.train}) == 59
    for q, g in zip(a.query, a.gallery):
        assert q.pid == g.pid and q.path != g.path and q.camid != g.camid
    assert len(a.train) == 59 * 4


# ------------------------------------------------------------------------------------------ custom data
def test_image_folder_identity_folders_and_market_names(tmp_path):
    from fake_trees import make_market_style, write_image

    for split in ("train", "query", "gallery"):
        for ident in ("alice", "bob", "7"):
            write_image(str(tmp_path / "mine" / split / ident / f"{ident}_{split}.jpg"))
    write_image(str(tmp_path / "mine" / "gallery" / "bob" / "x_c3_1.png"))
    ds = ours("image_folder:mine", tmp_path)
    pid = {
        name: next(s.pid for s in ds.train if os.path.basename(s.path).startswith(name))
        for name in ("alice", "bob", "7")
    }
    assert pid == {"7": 7, "alice": 8, "bob": 9}  # digits keep their value, names follow in sorted order
    assert {s.camid for s in ds.query} == {0}
    assert sorted(s.camid for s in ds.gallery) == [1, 1, 1, 2]  # "_c3" token -> camid 2

    make_market_style(str(tmp_path / "market_like"), {2: [1]}, {3: [1]}, {3: [2]})
    ds = ours("image_folder", tmp_path, folder="market_like")
    assert [(s.pid, s.camid) for s in ds.gallery] == [(3, 1)]


# ------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("name", "options", "shown"),
    [
        ("market1501", {}, "bounding_box_train/"),
        ("msmt17", {}, "list_train.txt"),
        ("cuhk03", {"cache_dir": "/tmp/unused-cuhk03-cache"}, "cuhk-03.mat"),
        ("cuhksysu", {}, "cropped_images/"),
        ("viper", {}, "cam_a/"),
        ("prid", {}, "single_shot/"),
        ("grid", {}, "features_and_partitions.mat"),
        ("ilids", {}, "Persons/"),
        ("cuhk02", {}, "Dataset/"),
        ("dukemtmcreid", {}, "DukeMTMC-reID/"),
        ("synthetic:1", {}, "domain{k}/"),
    ],
)
def test_missing_dataset_shows_expected_tree(tmp_path, name, options, shown):
    with pytest.raises(DatasetLayoutError) as info:
        build_dataset(name, str(tmp_path), **options)
    message = str(info.value)
    assert str(tmp_path) in message and "Expected layout" in message and shown in message


def test_missing_split_folder_is_named(tmp_path):
    data_dir = make_market1501(str(tmp_path))
    os.rename(os.path.join(data_dir, "query"), os.path.join(data_dir, "queries"))
    with pytest.raises(DatasetLayoutError, match=r"query not found|folder .*query"):
        build_dataset("market1501", str(tmp_path))


def test_bad_names_and_lists_are_errors(tmp_path):
    data_dir = make_market1501(str(tmp_path))
    open(os.path.join(data_dir, "query", "holiday.jpg"), "wb").close()
    with pytest.raises(DatasetLayoutError, match="holiday.jpg.*Market-1501 style"):
        build_dataset("market1501", str(tmp_path))
    make_msmt17(str(tmp_path))
    with open(tmp_path / "msmt17" / "MSMT17_V1" / "list_query.txt", "a") as f:
        f.write("garbage\n")
    with pytest.raises(DatasetLayoutError, match=r"list_query.txt line 3"):
        build_dataset("msmt17", str(tmp_path))


def test_statistics_mismatch_warns_with_the_difference(tmp_path):
    make_market1501(str(tmp_path))
    with pytest.warns(DatasetStatisticsWarning, match=r"market1501 train: 3 ids, published 751"):
        ds = build_dataset("market1501", str(tmp_path))
    assert ds.statistics()["gallery"] == (3, 5, 5)  # ids {0, 1, 3}: the two junk images are dropped
    assert "751" in ds.format_statistics()


def test_specs_and_options():
    assert parse_dataset_spec("synthetic:3") == ("synthetic", {"domain": 3})
    assert parse_dataset_spec("market1501") == ("market1501", {})
    assert parse_dataset_spec("image_folder:my_data") == ("image_folder", {"folder": "my_data"})
    with pytest.raises(DatasetOptionError, match="takes no positional option"):
        parse_dataset_spec("market1501:2")
    with pytest.raises(DatasetOptionError, match="unknown dataset 'markt1501'.*market1501"):
        parse_dataset_spec("markt1501")
    with pytest.raises(DatasetOptionError, match="boxes must be one of"):
        build_dataset("cuhk03", "/nonexistent", boxes="both")
    with pytest.raises(DatasetOptionError, match="split_id must be in 0..9"):
        build_dataset("grid", "/nonexistent", split_id=10)
    with pytest.raises(DatasetOptionError, match="unexpected keyword"):
        build_dataset("market1501", "/nonexistent", split_id=1)
