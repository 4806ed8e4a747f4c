"""bench/real_multicam.py: safe unpacking (reuse, refusal of unsafe members), the data-driven rows, and
the table, on a small fake archive of the same layout; one tiny run on the real archive when ../shared
holds it."""

import importlib.util
import io
import json
import os
import statistics
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from reid_dff.config import get_cfg, setup_cfg
from reid_dff.experiments import config_hash

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "real_multicam.py"
# The data stays out of the repository: ../shared beside the checkout (REID_DFF_SHARED overrides it, e.g.
# in a git worktree), as in tests/modeling/test_pretrain_sources.py.
SHARED = Path(os.environ.get("REID_DFF_SHARED") or REPO.parent / "shared")
REAL_ARCHIVE = SHARED / "data" / "real_multicam.tar.gz"

# Folder -> (identities, cameras, extension): BMP for the two sources that ship BMP files.
FAKE_SOURCES = {
    "3dpes": (4, 2, "bmp"),
    "towncentre": (4, 1, "jpg"),
    "sarc3d": (4, 4, "bmp"),
    "pku": (4, 2, "png"),
}


def load_bench():
    spec = importlib.util.spec_from_file_location("real_multicam", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def write_image(path, pid, camera):
    """A 32x16 crop whose colour depends on the identity (and a little on the camera)."""
    rng = np.random.default_rng(pid * 10 + camera)
    image = np.full((32, 16, 3), (pid * 40 % 256, 255 - pid * 30 % 256, camera * 50), np.uint8)
    image = np.clip(image + rng.integers(-20, 20, image.shape), 0, 255).astype(np.uint8)
    assert cv2.imwrite(str(path), image)


def make_fake_archive(tmp_path):
    """A tarball laid out as real_multicam.tar.gz: 4 Market-style sources, a caviar4reid target."""
    tree = tmp_path / "tree" / "real_multicam"
    for name, (ids, cameras, ext) in FAKE_SOURCES.items():
        folder = tree / name / "bounding_box_train"
        folder.mkdir(parents=True)
        for pid in range(1, ids + 1):
            for camera in range(1, cameras + 1):
                for i in range(4 // cameras + 1):
                    write_image(folder / f"{pid:04d}_c{camera}s1_{i:06d}_00.{ext}", pid, camera)
    target = tree / "caviar4reid"
    for split, camera, pids in (("query", 1, range(1, 5)), ("bounding_box_test", 2, range(1, 6))):
        (target / split).mkdir(parents=True)
        for pid in pids:  # pid 5: a one-camera distractor in the gallery
            for i in range(2):
                write_image(target / split / f"{pid:04d}_c{camera}s1_{i:06d}_00.jpg", pid, camera)
    (target / "bounding_box_train").mkdir()
    archive = tmp_path / "real_multicam.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname="real_multicam")
    return archive


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


def test_unpacking_reuses_a_complete_tree_and_redoes_an_incomplete_one(tmp_path, monkeypatch):
    bench = load_bench()
    archive = make_fake_archive(tmp_path)
    scratch = tmp_path / "scratch"
    assert bench.unpack(str(archive), str(scratch)) == str(scratch)
    with tarfile.open(archive) as tar:
        expected = sorted(m.name.removeprefix("real_multicam/") for m in tar.getmembers() if m.isfile())
    tree = scratch / "real_multicam"
    assert [f for f in files_under(tree) if f != bench.MARKER] == expected
    assert os.listdir(scratch) == ["real_multicam"]  # no staging folder left behind

    # Complete: reused without opening the archive again.
    def refuse(*args, **kwargs):
        raise AssertionError("the archive was unpacked again")

    monkeypatch.setattr(bench.tarfile, "open", refuse)
    bench.unpack(str(archive), str(scratch))
    monkeypatch.undo()

    # Incomplete (a file lost): unpacked again, the lost file comes back.
    lost = tree / "sarc3d" / "bounding_box_train" / "0001_c1s1_000000_00.bmp"
    lost.unlink()
    bench.unpack(str(archive), str(scratch))
    assert lost.is_file() and [f for f in files_under(tree) if f != bench.MARKER] == expected


def add_member(tar, name, data=b"x", kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, linkname, len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


@pytest.mark.parametrize(
    "name, kind, linkname",
    [
        ("real_multicam/../escaped.txt", tarfile.REGTYPE, ""),
        ("real_multicam/pku/../../escaped.txt", tarfile.REGTYPE, ""),
        ("/tmp/escaped.txt", tarfile.REGTYPE, ""),
        ("elsewhere/escaped.txt", tarfile.REGTYPE, ""),
        ("real_multicam/link", tarfile.SYMTYPE, "../../escaped.txt"),
    ],
)
def test_an_unsafe_member_is_refused_before_anything_is_written(tmp_path, name, kind, linkname):
    bench = load_bench()
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        add_member(tar, "real_multicam/pku/bounding_box_train/0001_c1s1_000000_00.png")
        add_member(tar, name, kind=kind, linkname=linkname)
    scratch = tmp_path / "a" / "scratch"
    with pytest.raises(bench.BenchmarkDataError, match="refusing member") as error:
        bench.unpack(str(archive), str(scratch))
    assert repr(name) in str(error.value)
    assert files_under(tmp_path) == ["evil.tar.gz"]  # nothing extracted, inside or outside the scratch


def test_an_absent_archive_is_one_clear_error(tmp_path, capsys):
    bench = load_bench()
    missing = tmp_path / "nowhere" / "real_multicam.tar.gz"
    with pytest.raises(bench.BenchmarkDataError, match="benchmark data not found: .*nowhere"):
        bench.unpack(str(missing), str(tmp_path / "scratch"))
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--archive", str(missing), "--out", str(tmp_path / "out")])
    assert str(exit_info.value).startswith("real_multicam: error: benchmark data not found")


def test_the_default_archive_follows_reid_dff_shared(monkeypatch, tmp_path):
    bench = load_bench()
    monkeypatch.setenv("REID_DFF_SHARED", str(tmp_path))
    assert bench.default_archive() == str(tmp_path / "data" / "real_multicam.tar.gz")
    monkeypatch.delenv("REID_DFF_SHARED")
    assert bench.default_archive() == str(REPO.parent / "shared" / "data" / "real_multicam.tar.gz")


def test_the_rows_are_base_sbase_literal_dff_and_the_default(tmp_path):
    bench = load_bench()
    runs = bench.build_runs(bench.ROWS, [0, 1], ["DATASETS.ROOT", str(tmp_path)])
    cfgs = {(r.row, r.seed): r.resolve(str(tmp_path / "out")) for r in runs}
    assert {k: c.MODEL.BACKBONE for k, c in cfgs.items() if k[1] == 0} == {
        ("base", 0): "resnet18", ("sbase", 0): "ffc_resnet18",
        ("dff_literal", 0): "dff_resnet18", ("dff_default", 0): "dff_resnet18",
    }  # fmt: skip
    literal = cfgs["dff_literal", 0].MODEL.DFF
    assert (literal.FILTER, literal.MASK_INPUT, literal.MASK_LAYOUT, literal.MASK_INIT) == (
        "ins_spatial", "re_im", "rfft", "zeros"
    )  # fmt: skip
    # The default row is the package default: the config with nothing but the data root and seed.
    default = setup_cfg(str(REPO / bench.CONFIG), ["DATASETS.ROOT", str(tmp_path), "SEED", "1"])
    assert config_hash(cfgs["dff_default", 1]) == config_hash(default)
    assert cfgs["dff_default", 1].MODEL.DFF == get_cfg().MODEL.DFF
    for cfg in cfgs.values():
        assert cfg.TEST.MASK_STATS and cfg.TEST.EVAL_PERIOD == 0 and list(cfg.INPUT.SIZE_TRAIN) == [128, 64]
        assert cfg.DATASETS.TARGETS == ["image_folder:real_multicam/caviar4reid"]

    # A row that resolves to an earlier row's config reuses its runs; one that differs trains.
    kept, aliases = bench.deduplicate(runs, str(tmp_path / "out"))
    literal_is_default = config_hash(cfgs["dff_literal", 0]) == config_hash(cfgs["dff_default", 0])
    assert aliases == ({"dff_default": "dff_literal"} if literal_is_default else {})
    changed = bench.Row("dff_default", "changed", ("MODEL.DFF.MASK_INIT", "normal"))
    runs2 = bench.build_runs([bench.ROWS_BY_KEY["dff_literal"], changed], [0], [])
    assert bench.deduplicate(runs2, str(tmp_path / "out"))[1] == {}
    assert [r.row for r in kept] == [r.row for r in runs if r.row not in aliases]


def tiny(tmp_path):
    """Overrides that make a run of the benchmark's config take seconds on a CPU."""
    return [
        "MODEL.DEVICE", "cpu", "DATALOADER.NUM_WORKERS", "0", "SOLVER.IMS_PER_BATCH", "16",
        "SOLVER.WARMUP_EPOCHS", "0", "INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.SIZE_TEST", "[64, 32]",
        "INPUT.PADDING", "0", "TEST.MASK_STATS_MAX_IMAGES", "32",
    ]  # fmt: skip


@pytest.mark.e2e
def test_the_table_holds_each_runs_last_epoch_metrics_and_mask_summary(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)  # the bench works from the repository; the working directory comes back after
    bench = load_bench()
    archive, out = make_fake_archive(tmp_path), tmp_path / "out"
    argv = ["--rows", "base", "dff_literal", "dff_default", "--seeds", "0", "1", "--archive", str(archive),
            "--out", str(out), "--epochs", "1", "--iters", "1", *tiny(tmp_path)]  # fmt: skip
    summary = bench.main(argv)
    printed = capsys.readouterr().out
    assert (out / "data" / "real_multicam" / bench.MARKER).is_file()  # default scratch: OUT/data
    trained = [line for line in printed.splitlines() if line.startswith("+ python tools/train_net.py")]
    # base and dff_literal x 2 seeds; dff_default trains only when it is not the literal reading's twin
    # (today it is not: MODEL.DFF.MASK_INIT kaiming).
    rows = {row["row"]: row for row in summary["rows"]}
    twin = bench.deduplicate(bench.build_runs(bench.ROWS[2:], [0], tiny(tmp_path)), str(out))[1]
    assert len(trained) == (4 if twin else 6)
    if twin:
        assert rows["dff_default"]["same_runs_as"] == "dff_literal"
        assert rows["dff_default"]["mAP"] == rows["dff_literal"]["mAP"]
    else:
        assert rows["dff_default"]["same_runs_as"] is None and len(rows["dff_default"]["mAP"]) == 2
    for key, backbone in (("base", "resnet18"), ("dff_literal", "dff_resnet18")):
        reports = [json.load(open(out / key / f"seed{s}" / "results.json")) for s in (0, 1)]
        assert [r["config"]["MODEL"]["BACKBONE"] for r in reports] == [backbone] * 2
        assert all(r["checkpoint"]["path"].endswith(os.path.join(key, f"seed{s}", "last.pth"))
                   for s, r in zip((0, 1), reports))  # fmt: skip
        target = "image_folder:real_multicam/caviar4reid"
        maps = [r["targets"][target]["mean"]["mAP"] for r in reports]
        r1s = [r["targets"][target]["mean"]["R1"] for r in reports]
        assert rows[key]["mAP"] == maps and rows[key]["R1"] == r1s
        cells = [f"{100 * statistics.mean(v):.1f} ± {100 * statistics.stdev(v):.1f}" for v in (maps, r1s)]
        assert f"| {rows[key]['label']} | {cells[0]} | {cells[1]} | " in printed
    # Mask diagnostics: none for Base; the DFF runs' own mask_stats.json summaries, 4 decimals.
    assert f"| {rows['base']['label']} | " in printed and "| - | - | - | - |" in printed
    stats = [json.load(open(out / "dff_literal" / f"seed{s}" / "mask_stats.json"))["summary"] for s in (0, 1)]
    spread = [s["instance_spread"] for s in stats]
    assert rows["dff_literal"]["mask"]["instance_spread"] == spread
    assert f"{statistics.mean(spread):.4f} ± {statistics.stdev(spread):.4f}" in printed
    # Chance on the target's split, below the table.
    assert 0.0 < summary["chance"]["mAP"] < 1.0 and summary["chance"]["draws"] == bench.CHANCE_DRAWS
    assert f"mAP {100 * summary['chance']['mAP']:.1f}, R1 {100 * summary['chance']['rank1']:.1f}" in printed
    assert "last epoch" in printed and "Commands:" in (out / "table.md").read_text()
    assert json.load(open(out / "table.json")) == json.loads(json.dumps(summary))

    # Again: the unpacked data and every run are reused.
    bench.main(argv)
    again = capsys.readouterr().out
    assert "+ python" not in again and again.count("(reused)") == (2 if twin else 3)


@pytest.mark.e2e
@pytest.mark.skipif(not REAL_ARCHIVE.is_file(), reason="../shared/data/real_multicam.tar.gz absent")
def test_one_tiny_run_on_the_real_archive(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    bench = load_bench()
    argv = ["--rows", "dff_default", "--seeds", "0", "--archive", str(REAL_ARCHIVE), "--out",
            str(tmp_path / "out"), "--epochs", "1", "--iters", "2", *tiny(tmp_path),
            "TEST.MASK_STATS_MAX_IMAGES", "128"]  # fmt: skip
    summary = bench.main(argv)
    (row,) = summary["rows"]
    assert len(row["mAP"]) == 1 and 0.0 < row["mAP"][0] <= 1.0
    assert row["mask"]["instance_spread"][0] is not None
    # The BMP sources (3DPeS, SARC3D) are read: every source is in the mask diagnostics' domains.
    stats = json.load(open(tmp_path / "out" / "dff_default" / "seed0" / "mask_stats.json"))
    assert stats["domains"] == [0, 1, 2, 3]
    assert "caviar4reid" in capsys.readouterr().out
