"""tools/run_demo_table.py and tools/run_officehome_table.py end to end on tiny settings: the runs train in
this process, a second call reuses them, a stale run is trained again, and the tables match the runs'
results.json files."""

import json
import statistics

import pytest
from script_loader import REPO, load_tool

from reid_dff.tasks.classification import format_leave_one_domain_out_table

pytestmark = pytest.mark.e2e  # both table tools train end to end


def tiny_demo(tmp_path):
    """Overrides that shrink configs/synthetic_demo.yaml to 2 tiny domains and 2 iterations on CPU."""
    return [
        "MODEL.DEVICE", "cpu", "DATASETS.ROOT", str(tmp_path / "data"),
        "DATASETS.SOURCES", "['synthetic:0']", "DATASETS.TARGETS", "['synthetic:1']",
        "DATASETS.SYNTHETIC.NUM_DOMAINS", "2", "DATASETS.SYNTHETIC.IDS_TRAIN", "8",
        "DATASETS.SYNTHETIC.IDS_TEST", "4", "DATASETS.SYNTHETIC.HEIGHT", "64", "DATASETS.SYNTHETIC.WIDTH", "32",
        "DATASETS.SYNTHETIC.CAMERAS", "2", "DATASETS.SYNTHETIC.IMAGES_PER_CAMERA", "2",
        "DATALOADER.NUM_WORKERS", "0", "SOLVER.IMS_PER_BATCH", "8", "SOLVER.ITERS_PER_EPOCH", "2",
        "SOLVER.MAX_EPOCHS", "1", "SOLVER.WARMUP_EPOCHS", "0", "TEST.EVAL_PERIOD", "1",
    ]  # fmt: skip


def trained_runs(stdout):
    return [line for line in stdout.splitlines() if line.startswith("+ python tools/train_net.py")]


def test_the_demo_table_trains_reuses_and_retrains_a_stale_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)  # the tool works from the repository; the working directory comes back after
    out = tmp_path / "table"
    argv = ["--variants", "base", "--seeds", "0", "1", "--out", str(out), *tiny_demo(tmp_path)]
    load_tool("run_demo_table").main(argv)
    first = capsys.readouterr().out
    assert len(trained_runs(first)) == 4  # untrained and trained, 2 seeds each

    reports = {
        (training, seed): json.load(open(out / "base" / training / f"seed{seed}" / "results.json"))
        for training in ("untrained", "trained")
        for seed in (0, 1)
    }
    assert all(r["config"]["MODEL"]["BACKBONE"] == "resnet18" for r in reports.values())
    assert [reports["untrained", s]["config"]["SOLVER"]["MAX_EPOCHS"] for s in (0, 1)] == [0, 0]
    assert [reports["trained", s]["config"]["SEED"] for s in (0, 1)] == [0, 1]
    for training in ("untrained", "trained"):
        maps = [reports[training, s]["mean"]["mAP"] for s in (0, 1)]
        r1s = [reports[training, s]["mean"]["R1"] for s in (0, 1)]
        cells = [f"{100 * statistics.mean(v):.1f} ± {100 * statistics.stdev(v):.1f}" for v in (maps, r1s)]
        assert f"| Base (ResNet-18) | {training} | {cells[0]} | {cells[1]} | " in first
    table = json.load(open(out / "table.json"))
    assert table["rows"][1]["mAP"] == [reports["trained", s]["mean"]["mAP"] for s in (0, 1)]
    assert "colour histogram" in first and "Commands:" in (out / "table.md").read_text()

    # Again, with a key that does not change results: everything is reused, the table is the same.
    load_tool("run_demo_table").main([*argv, "TEST.IMS_PER_BATCH", "7"])
    second = capsys.readouterr().out
    assert trained_runs(second) == [] and second.count("(reused)") == 2
    assert second.split("| wall time")[1].count("± ") == first.split("| wall time")[1].count("± ")

    # A results.json without the sweep's hash (a plain training run wrote it) is stale: that run trains again.
    path = out / "base" / "trained" / "seed1" / "results.json"
    report = json.load(open(path))
    del report["config_hash"]
    path.write_text(json.dumps(report))
    load_tool("run_demo_table").main(argv)
    third = capsys.readouterr().out
    assert len(trained_runs(third)) == 1 and "seed1" in trained_runs(third)[0]
    assert "config_hash" in json.load(open(path))


def tiny_officehome(tmp_path):
    """Overrides that shrink the synthetic Office-Home configs to a few 16x16 images and 2 iterations."""
    return [
        "MODEL.DEVICE", "cpu", "DATASETS.ROOT", str(tmp_path / "data"),
        "DATASETS.OFFICEHOME.SYNTHETIC.IMAGES_PER_CLASS", "6", "DATASETS.OFFICEHOME.SYNTHETIC.SIZE", "32",
        "INPUT.SIZE_TRAIN", "[16, 16]", "INPUT.SIZE_TEST", "[16, 16]",
        "SOLVER.MAX_EPOCHS", "1", "SOLVER.ITERS_PER_EPOCH", "2", "SOLVER.WARMUP_EPOCHS", "0",
    ]  # fmt: skip


def test_the_officehome_table_over_one_seed_and_over_seeds(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    tool = load_tool("run_officehome_table")
    out = tmp_path / "table"
    common = [
        "--synthetic",
        "--models",
        "r18",
        "--tasks",
        "art",
        "--out",
        str(out),
        *tiny_officehome(tmp_path),
    ]
    tool.main(common)
    printed = capsys.readouterr().out
    assert len(trained_runs(printed)) == 1
    report = json.load(open(out / "r18" / "art" / "results.json"))
    assert report["config"]["MODEL"]["BACKBONE"] == "resnet18"
    assert report["config"]["DATASETS"]["TARGETS"] == ["officehome:Art"]
    expected = format_leave_one_domain_out_table({"Base (ResNet-18)": {"art": report}})
    assert printed.strip().endswith(expected)
    assert json.load(open(out / "table.json")) == {"Base (ResNet-18)": {"art": report}}

    tool.main(["--seeds", "0", "1", *common])
    printed = capsys.readouterr().out
    assert len(trained_runs(printed)) == 2
    top1 = [json.load(open(out / "r18" / "art" / f"seed{s}" / "results.json")) for s in (0, 1)]
    top1 = [(r.get("selected") or r)["targets"]["officehome:Art"]["top1"] for r in top1]
    cell = f"{100 * statistics.mean(top1):.1f} ± {100 * statistics.stdev(top1):.1f}"
    assert f"| Base (ResNet-18) | {cell} | {cell} |" in printed  # one target: the average is its cell

    tool.main(["--seeds", "0", "1", *common])
    assert trained_runs(capsys.readouterr().out) == []


def test_a_flag_after_the_overrides_is_refused_not_read_as_a_key(capsys):
    for name in ("run_demo_table", "run_officehome_table"):
        with pytest.raises(SystemExit):
            load_tool(name).parse_args(["SEED", "1", "--rerun"])
        assert "--rerun follows the KEY VALUE overrides; flags go before them" in capsys.readouterr().err
