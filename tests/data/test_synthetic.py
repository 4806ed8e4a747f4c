"""The synthetic multi-domain ReID generator: determinism, layout, torchreid compatibility, atomicity,
ensure/verify and per-domain frequency content (the colour-histogram baseline: tests/evaluation/test_baselines.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import stat
import subprocess
import sys
import warnings

import cv2
import numpy as np
import pytest

import reid_dff.data.synthetic as synthetic
import reid_dff.data.synthetic.tree as tree
from reid_dff.config import get_cfg
from reid_dff.data.synthetic import (
    MANIFEST_NAME,
    SyntheticDataError,
    ensure_synthetic,
    ensure_synthetic_data,
    generate_synthetic,
    read_manifest,
    render_image,
    verify_synthetic,
)
from reid_dff.utils import sha256_file

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = dict(
    seed=3, num_domains=2, ids_train=6, ids_test=4, height=64, width=32, cameras=3, images_per_camera=3
)
TORCHREID_PATTERN = re.compile(r"([-\d]+)_c(\d)")  # torchreid's Market-1501 regex
FULL_NAME = re.compile(r"^(\d{4})_c([1-6])s(\d+)_(\d{6})_(\d{2})\.jpg$")


def tree_hashes(synthetic_dir) -> dict[str, str]:
    """relpath -> SHA-256 of every file under ``synthetic_dir`` (computed here, not read from the manifest)."""
    out = {}
    for dirpath, _, names in os.walk(synthetic_dir):
        for name in names:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, synthetic_dir)] = sha256_file(path)
    return out


def split_records(folder):
    """(pid, camera) per file of a split folder, parsed with the Market regex."""
    records = []
    for name in sorted(os.listdir(folder)):
        match = FULL_NAME.match(name)
        assert match, f"not a Market-1501 name: {name}"
        records.append((int(match.group(1)), int(match.group(2))))
    return records


@pytest.fixture(scope="module")
def tiny_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    manifest = generate_synthetic(root, **TINY)
    return root / "synthetic", manifest


# ------------------------------------------------------------------------------------------- determinism
def test_same_arguments_give_byte_identical_files_for_any_worker_count(tmp_path, tiny_tree):
    synthetic_dir, manifest = tiny_tree
    generate_synthetic(tmp_path / "again", **TINY, workers=2)
    first, second = tree_hashes(synthetic_dir), tree_hashes(tmp_path / "again" / "synthetic")
    assert len(first) == manifest["num_files"] + 1  # + manifest.json
    assert first == second  # manifest.json included: it is deterministic too

    generate_synthetic(tmp_path / "other_seed", **{**TINY, "seed": 4})
    other = tree_hashes(tmp_path / "other_seed" / "synthetic")
    shared = set(first) & set(other) - {MANIFEST_NAME}
    assert all(first[p] != other[p] for p in shared)


def test_pixels_depend_only_on_seed_domain_pid_and_index():
    a = render_image(0, 1, 7, 2, 5, 64, 32)
    render_image(0, 1, 8, 2, 5, 64, 32)  # other work in between changes nothing
    assert np.array_equal(a, render_image(0, 1, 7, 2, 5, 64, 32))
    assert a.shape == (64, 32, 3) and a.dtype == np.uint8
    assert not np.array_equal(a, render_image(0, 1, 7, 2, 6, 64, 32))  # another image of the identity
    assert not np.array_equal(a, render_image(1, 1, 7, 2, 5, 64, 32))  # another seed


# ------------------------------------------------------------------------------------------------ layout
def test_market1501_layout_names_and_split_contract(tiny_tree):
    synthetic_dir, manifest = tiny_tree
    assert sorted(os.listdir(synthetic_dir)) == ["domain0", "domain1", MANIFEST_NAME]
    for k in range(TINY["num_domains"]):
        base = synthetic_dir / f"domain{k}"
        assert sorted(os.listdir(base)) == ["bounding_box_test", "bounding_box_train", "query"]
        for split in os.listdir(base):
            for name in os.listdir(base / split):
                pid, cam = map(int, TORCHREID_PATTERN.search(name).groups())
                assert FULL_NAME.match(name) and int(name[:4]) == pid and 1 <= cam <= TINY["cameras"]
        train = split_records(base / "bounding_box_train")
        query = split_records(base / "query")
        gallery = split_records(base / "bounding_box_test")
        train_pids = {p for p, _ in train}
        test_pids = {p for p, _ in query} | {p for p, _ in gallery}
        assert train_pids == set(range(1, TINY["ids_train"] + 1))
        assert test_pids == set(range(TINY["ids_train"] + 1, TINY["ids_train"] + TINY["ids_test"] + 1))
        # Market: one query per (identity, camera); every query has a gallery match from another camera.
        assert len(query) == len(set(query))
        assert set(query) == set(gallery)
        for pid, cam in query:
            assert any(p == pid and c != cam for p, c in gallery)
        # Every identity visits >= 2 cameras with images_per_camera images each.
        for pid in train_pids | test_pids:
            per_cam = {}
            for p, c in train + query + gallery:
                if p == pid:
                    per_cam[c] = per_cam.get(c, 0) + 1
            assert len(per_cam) >= 2 and set(per_cam.values()) == {TINY["images_per_camera"]}
        counts = manifest["domains"][k]["counts"]
        assert (counts["bounding_box_train"], counts["query"], counts["bounding_box_test"]) == (
            len(train),
            len(query),
            len(gallery),
        )


def test_manifest_records_parameters_recipes_and_file_hashes(tiny_tree):
    synthetic_dir, manifest = tiny_tree
    assert read_manifest(synthetic_dir) == manifest
    assert manifest["params"] == TINY
    assert [d["recipe"]["description"] for d in manifest["domains"]] == [
        synthetic.DOMAIN_RECIPES[k].description for k in range(TINY["num_domains"])
    ]
    on_disk = tree_hashes(synthetic_dir)
    del on_disk[MANIFEST_NAME]
    assert manifest["files"] == {p.replace(os.sep, "/"): h for p, h in on_disk.items()}
    verify_synthetic(synthetic_dir)


def test_verify_detects_a_changed_missing_or_extra_file(tmp_path):
    generate_synthetic(tmp_path, **{**TINY, "num_domains": 1})
    target = tmp_path / "synthetic"
    victim = sorted((target / "domain0" / "query").iterdir())[0]
    victim.write_bytes(victim.read_bytes() + b"\0")
    with pytest.raises(SyntheticDataError, match=re.escape(victim.name)):
        verify_synthetic(target)
    victim.unlink()
    with pytest.raises(SyntheticDataError, match="missing"):
        verify_synthetic(target)


def test_torchreid_market1501_reads_each_domain(tmp_path, tiny_tree):
    from torchreid.reid.data.datasets.image.market1501 import Market1501

    synthetic_dir, manifest = tiny_tree
    for k in range(TINY["num_domains"]):
        root = tmp_path / f"root{k}"
        root.mkdir()
        os.symlink(synthetic_dir / f"domain{k}", root / "market1501")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchreid warns about the flat (non-v15.09.15) layout
            dataset = Market1501(root=str(root), verbose=False)
        counts = manifest["domains"][k]["counts"]
        assert len(dataset.train) == counts["bounding_box_train"]
        assert len(dataset.query) == counts["query"]
        assert len(dataset.gallery) == counts["bounding_box_test"]
        assert dataset.num_train_pids == TINY["ids_train"]
        assert {camid for _, _, camid, _ in dataset.gallery} <= set(range(TINY["cameras"]))
        assert {pid for _, pid, _, _ in dataset.query} == {pid for _, pid, _, _ in dataset.gallery}


# ------------------------------------------------------------------------------------ atomicity, ensure
def test_failed_generation_leaves_nothing_and_refuses_existing_trees(tmp_path, monkeypatch):
    calls = {"n": 0}
    real_encode = synthetic.encode_jpeg

    def failing_encode(img, quality):
        calls["n"] += 1
        if calls["n"] == 25:
            raise OSError("disk full (simulated)")
        return real_encode(img, quality)

    monkeypatch.setattr(tree, "encode_jpeg", failing_encode)
    with pytest.raises(OSError, match="simulated"):
        generate_synthetic(tmp_path, **TINY)
    assert os.listdir(tmp_path) == []  # no half tree, no temporary folder left behind
    monkeypatch.setattr(tree, "encode_jpeg", real_encode)

    generate_synthetic(tmp_path, **TINY)
    with pytest.raises(FileExistsError, match="overwrite"):
        generate_synthetic(tmp_path, **TINY)
    before = tree_hashes(tmp_path / "synthetic")
    generate_synthetic(tmp_path, **TINY, overwrite=True)
    assert tree_hashes(tmp_path / "synthetic") == before
    assert os.listdir(tmp_path) == ["synthetic"]

    foreign = tmp_path / "user" / "synthetic"
    foreign.mkdir(parents=True)
    (foreign / "my_photo.jpg").write_bytes(b"precious")
    with pytest.raises(SyntheticDataError, match="no manifest.json"):
        generate_synthetic(tmp_path / "user", **TINY, overwrite=True)
    assert (foreign / "my_photo.jpg").read_bytes() == b"precious"


def tiny_cfg(root):
    cfg = get_cfg()
    cfg.DATASETS.ROOT = str(root)
    s = cfg.DATASETS.SYNTHETIC
    s.SEED, s.NUM_DOMAINS, s.IDS_TRAIN, s.IDS_TEST = TINY["seed"], 1, TINY["ids_train"], TINY["ids_test"]
    s.HEIGHT, s.WIDTH, s.CAMERAS, s.IMAGES_PER_CAMERA = 64, 32, TINY["cameras"], TINY["images_per_camera"]
    return cfg


def test_ensure_synthetic_generates_once_then_verifies_and_refuses_a_mismatch(tmp_path):
    cfg = tiny_cfg(tmp_path)
    # A crashed earlier run left a temporary sibling: it must not be taken for a complete tree.
    leftover = tmp_path / ".synthetic.tmp-crashed" / "domain0" / "query"
    leftover.mkdir(parents=True)
    (leftover / "0007_c1s1_000001_01.jpg").write_bytes(b"half")

    path = ensure_synthetic(cfg)
    assert path == os.path.join(str(tmp_path), "synthetic")
    manifest_mtime = os.stat(os.path.join(path, MANIFEST_NAME)).st_mtime_ns
    hashes = tree_hashes(path)
    assert read_manifest(path)["params"]["num_domains"] == 1

    assert ensure_synthetic(cfg) == path  # second call: reused, not regenerated
    assert os.stat(os.path.join(path, MANIFEST_NAME)).st_mtime_ns == manifest_mtime
    assert tree_hashes(path) == hashes

    cfg.DATASETS.SYNTHETIC.SEED = TINY["seed"] + 1
    cfg.DATASETS.SYNTHETIC.WIDTH = 48
    with pytest.raises(SyntheticDataError) as err:
        ensure_synthetic(cfg)
    message = str(err.value)
    assert "DATASETS.SYNTHETIC.SEED: config 4, existing data 3" in message
    assert "DATASETS.SYNTHETIC.WIDTH: config 48, existing data 32" in message
    assert "Delete " + path in message
    assert tree_hashes(path) == hashes  # never overwritten

    # a tree that lost files since it was generated would silently train on fewer images
    cfg.DATASETS.SYNTHETIC.SEED, cfg.DATASETS.SYNTHETIC.WIDTH = TINY["seed"], TINY["width"]
    victim = sorted(h for h in hashes if h.endswith(".jpg"))[0]
    os.unlink(os.path.join(path, victim))
    with pytest.raises(SyntheticDataError, match=r"does not match its manifest: missing .*\(1\)"):
        ensure_synthetic(cfg)


def test_ensure_synthetic_rejects_incomplete_foreign_or_stale_trees(tmp_path):
    cfg = tiny_cfg(tmp_path)
    target = tmp_path / "synthetic"
    (target / "domain0").mkdir(parents=True)
    with pytest.raises(SyntheticDataError, match="no manifest.json"):
        ensure_synthetic(cfg)
    (target / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(SyntheticDataError, match="not valid JSON"):
        ensure_synthetic(cfg)
    (target / MANIFEST_NAME).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(SyntheticDataError, match="not a reid-dff synthetic manifest"):
        ensure_synthetic(cfg)
    params = {k: v for k, v in TINY.items()}
    params["num_domains"] = 1
    stale = {"format": synthetic.MANIFEST_FORMAT, "renderer_version": 0, "params": params}
    (target / MANIFEST_NAME).write_text(json.dumps(stale))
    with pytest.raises(SyntheticDataError, match="renderer version: code 1, existing data 0"):
        ensure_synthetic(cfg)


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"cameras": 7}, "cameras"),
        ({"cameras": 1}, "cameras"),
        ({"images_per_camera": 1}, "images_per_camera"),
        ({"num_domains": 0}, "num_domains"),
        ({"num_domains": len(synthetic.DOMAIN_RECIPES) + 1}, "num_domains"),
        ({"ids_train": 9000, "ids_test": 1000}, "ids_train \\+ ids_test"),
        ({"height": 16}, "height"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_parameters_name_the_parameter(tmp_path, bad, field):
    with pytest.raises(ValueError, match=field):
        generate_synthetic(tmp_path, **{**TINY, **bad})
    assert not (tmp_path / "synthetic").exists()


def test_ensure_synthetic_data_generates_what_the_specs_name_and_nothing_else(tmp_path):
    cfg = tiny_cfg(tmp_path)
    cfg.DATASETS.SOURCES, cfg.DATASETS.TARGETS = ["market1501"], ["dukemtmcreid"]
    assert ensure_synthetic_data(cfg) == [] and os.listdir(tmp_path) == []
    cfg.DATASETS.TARGETS = [" synthetic:0"]
    (path,) = ensure_synthetic_data(cfg)
    assert path == os.path.join(tmp_path, "synthetic") and read_manifest(path)["params"]["num_domains"] == 1
    assert ensure_synthetic_data(cfg, ["market1501"]) == []  # explicit specs replace SOURCES + TARGETS
    assert ensure_synthetic_data(cfg, ["synthetic"]) == [path]


def test_ensure_synthetic_mapping_form_rejects_unknown_keys(tmp_path):
    with pytest.raises(ValueError, match="unknown synthetic parameters \\['colour'\\]"):
        ensure_synthetic({"root": str(tmp_path), "colour": 3})
    with pytest.raises(ValueError, match="'root'"):
        ensure_synthetic({"seed": 0})


# ------------------------------------------------------------------------------------ frequency content
def high_frequency_share(domain: int) -> float:
    """Mean share of luminance spectral energy (DC removed) beyond half the Nyquist frequency."""
    shares = []
    fy = np.abs(np.fft.fftfreq(128))[:, None]
    fx = np.abs(np.fft.rfftfreq(64))[None, :]
    high = np.maximum(fy, fx) > 0.25
    for pid in range(1, 11):
        for index in range(4):
            img = render_image(0, domain, pid, 1 + index % 2, index, 128, 64)
            jpeg = cv2.imdecode(
                np.frombuffer(
                    synthetic.encode_jpeg(img, synthetic.DOMAIN_RECIPES[domain].jpeg_quality), np.uint8
                ),
                cv2.IMREAD_GRAYSCALE,
            ).astype(np.float64)
            power = np.abs(np.fft.rfft2(jpeg - jpeg.mean())) ** 2
            shares.append(power[high].sum() / power.sum())
    return float(np.mean(shares))


def test_domains_differ_in_frequency_content_as_documented():
    share = {k: high_frequency_share(k) for k in range(4)}
    assert share[1] < 0.5 * share[0]  # domain1: Gaussian blur (low-pass)
    assert share[3] < 0.5 * share[0]  # domain3: down/up-sampling
    assert share[2] > 2.0 * share[0]  # domain2: sensor noise (high frequencies)


# ------------------------------------------------------------------------------------------------- tool
@pytest.mark.e2e
def test_make_synthetic_tool_runs_from_repo_root_and_reuses_a_matching_tree(tmp_path, capsys):
    args = [
        sys.executable,
        "tools/make_synthetic.py",
        "--root",
        str(tmp_path),
        "--seed",
        "1",
        "--domains",
        "1",
    ]
    args += ["--ids-train", "3", "--ids-test", "3", "--height", "64", "--width", "32", "--report"]
    first = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    manifest = read_manifest(tmp_path / "synthetic")
    assert manifest["total_sha256"] in first.stdout
    assert re.search(r"\| domain0 +\| +\d+ \| +\d+ \| +\d+\.\d% \| +\d+\.\d% \|", first.stdout)

    spec = importlib.util.spec_from_file_location(
        "make_synthetic", os.path.join(REPO, "tools", "make_synthetic.py")
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main(
        ["--root", str(tmp_path), "--seed", "1", "--domains", "1", "--ids-train", "3", "--ids-test", "3"]
        + ["--height", "64", "--width", "32"]
    )
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        tool.main(
            ["--root", str(tmp_path), "--seed", "2", "--domains", "1", "--ids-train", "3", "--ids-test", "3"]
            + ["--height", "64", "--width", "32"]
        )
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("make_synthetic.py: error: ") and "Traceback" not in err, err
    assert "DATASETS.SYNTHETIC.SEED: config 2, existing data 1" in err
    assert err.rstrip().endswith("; --overwrite regenerates the tree"), err  # the tool's remedy


def test_generated_tree_has_the_permissions_of_an_ordinary_folder(tmp_path):
    # mkdtemp makes its folder owner-only (0700); renamed into place, others could not read the data.
    old = os.umask(0o022)
    try:
        generate_synthetic(tmp_path, **TINY)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "synthetic").st_mode) == 0o755
