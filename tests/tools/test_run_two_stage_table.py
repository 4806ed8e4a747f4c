"""tools/run_two_stage_table.py end to end on tiny settings: stage 1, the demo from scratch and from the
stage-1 checkpoint, the table against the runs' results.json, the load of the stage-1 backbone, and the
cache: nothing retrains on a second call, and a changed stage 1 retrains exactly the fine-tunes."""

import hashlib
import importlib.util
import json
import os

import pytest

pytestmark = pytest.mark.e2e  # the tool trains end to end

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_tool():
    path = os.path.join(REPO, "tools", "run_two_stage_table.py")
    spec = importlib.util.spec_from_file_location("run_two_stage_table", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_argv(tmp_path, *stage1):
    """One model, one seed; stage 1 on 4 classes of 16x16 images, the demo on 2 tiny domains; 2 iterations."""
    return [
        "--models", "base", "--seeds", "0", "--out", str(tmp_path / "table"),
        *(f"--stage1-set={s}" for s in (
            "DATASETS.SYNTHETIC_CLASSES.NUM_CLASSES=4", "DATASETS.SYNTHETIC_CLASSES.TRAIN_PER_CLASS=4",
            "DATASETS.SYNTHETIC_CLASSES.VAL_PER_CLASS=2", "DATASETS.SYNTHETIC_CLASSES.SIZE=16",
            "INPUT.SIZE_TRAIN=[16, 16]", "INPUT.SIZE_TEST=[16, 16]", "INPUT.PADDING=2", *stage1)),
        *(f"--demo-set={s}" for s in (
            "DATASETS.SOURCES=['synthetic:0']", "DATASETS.TARGETS=['synthetic:1']",
            "DATASETS.SYNTHETIC.NUM_DOMAINS=2", "DATASETS.SYNTHETIC.IDS_TRAIN=8", "DATASETS.SYNTHETIC.IDS_TEST=4",
            "DATASETS.SYNTHETIC.HEIGHT=64", "DATASETS.SYNTHETIC.WIDTH=32", "DATASETS.SYNTHETIC.CAMERAS=2",
            "DATASETS.SYNTHETIC.IMAGES_PER_CAMERA=2")),
        "MODEL.DEVICE", "cpu", "DATASETS.ROOT", str(tmp_path / "data"), "DATALOADER.NUM_WORKERS", "0",
        "SOLVER.IMS_PER_BATCH", "8", "SOLVER.MAX_EPOCHS", "1", "SOLVER.ITERS_PER_EPOCH", "2",
        "SOLVER.WARMUP_EPOCHS", "0", "TEST.EVAL_PERIOD", "1",
    ]  # fmt: skip


def trained(stdout):
    """The OUTPUT_DIR of every run the call trained (the tool prints each command before training it)."""
    return [line.rsplit(" OUTPUT_DIR ", 1)[1] for line in stdout.splitlines() if line.startswith("+ python")]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_two_stages_train_fill_the_table_and_retrain_the_fine_tune_when_stage1_changes(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(REPO)
    out = tmp_path / "table"
    load_tool().main(["--stage1-only", *tiny_argv(tmp_path)])  # stage 1 alone, its accuracy printed
    printed = capsys.readouterr().out
    runs = {name: str(out / name) for name in ("base/stage1", "base/scratch/seed0", "base/from_stage1/seed0")}
    assert trained(printed) == [runs["base/stage1"]] and not (out / "table.json").exists()
    top1 = json.load(open(out / "base" / "stage1" / "results.json"))["top1"]
    assert f"stage 1 Base (ResNet-18): val top-1 {100 * top1:.1f}%" in printed and "chance 25.0%" in printed

    load_tool().main(tiny_argv(tmp_path))  # stage 1 reused, the demo runs trained
    first = capsys.readouterr().out
    assert trained(first) == [runs["base/scratch/seed0"], runs["base/from_stage1/seed0"]]

    stage1 = json.load(open(out / "base" / "stage1" / "results.json"))
    assert stage1["config"]["MODEL"]["TASK"] == "imagenet" and stage1["num_classes"] == 4
    assert stage1["config"]["DATASETS"]["SOURCES"] == ["class_folder:synthetic_classes"]
    scratch = json.load(open(out / "base" / "scratch" / "seed0" / "results.json"))
    tuned = json.load(open(out / "base" / "from_stage1" / "seed0" / "results.json"))
    digest = sha256(out / "base" / "stage1" / "last.pth")
    pinned = out / "stage1_checkpoints" / f"base-{digest[:16]}.pth"
    assert tuned["config"]["MODEL"]["PRETRAIN_PATH"] == str(pinned) and sha256(pinned) == digest
    assert scratch["config"]["MODEL"]["PRETRAIN_PATH"] == ""
    for report in (scratch, tuned):
        assert report["config"]["MODEL"]["BACKBONE"] == "resnet18"
        assert report["config"]["TEST"]["SELECTION"] == "last"
    # The fine-tune's own log: every backbone key of the stage-1 file loaded as is.
    log = (out / "base" / "from_stage1" / "seed0" / "log.txt").read_text()
    assert (
        "reid-dff file of resnet18: 120 tensors loaded, 0 sliced from ResNet convs, 0 newly initialized"
        in log
    )
    assert "classifier dropped" in log

    table = json.load(open(out / "table.json"))
    rows = {row["init"]: row for row in table["rows"]}
    assert list(rows) == ["from scratch", "from stage 1"]
    assert rows["from scratch"]["mAP"] == [scratch["targets"]["synthetic:1"]["mean"]["mAP"]]
    assert rows["from stage 1"]["R1"] == [tuned["targets"]["synthetic:1"]["mean"]["R1"]]
    assert (
        rows["from stage 1"]["stage1_top1"] == stage1["top1"] and rows["from scratch"]["stage1_top1"] is None
    )
    assert table["stage1"]["base"]["sha256"] == digest
    assert "0 sliced from ResNet convs, 0 newly initialized" in table["stage1"]["base"]["load_report"]
    tuned_map = 100 * tuned["targets"]["synthetic:1"]["mean"]["mAP"]
    assert f"| Base (ResNet-18) | from stage 1 | {100 * stage1['top1']:.1f} | {tuned_map:.1f} |" in first
    assert "1 epochs x 2 iterations of 8 images at 16x16" in first  # the stage-1 schedule actually used
    markdown = (out / "table.md").read_text()
    assert markdown.count("python tools/train_net.py") == 3 and f"MODEL.PRETRAIN_PATH {pinned}" in markdown

    load_tool().main(tiny_argv(tmp_path))  # everything cached
    assert trained(capsys.readouterr().out) == []

    # Stage 1 changes: it trains again, and so does the fine-tune made from it; the scratch run is reused.
    load_tool().main(tiny_argv(tmp_path, "SOLVER.BASE_LR=0.001"))
    third = capsys.readouterr().out
    assert trained(third) == [runs["base/stage1"], runs["base/from_stage1/seed0"]]
    new_digest = sha256(out / "base" / "stage1" / "last.pth")
    assert new_digest != digest
    retuned = json.load(open(out / "base" / "from_stage1" / "seed0" / "results.json"))
    assert retuned["config"]["MODEL"]["PRETRAIN_PATH"].endswith(f"base-{new_digest[:16]}.pth")
    assert os.listdir(out / "stage1_checkpoints") == [f"base-{new_digest[:16]}.pth"]


def test_the_overrides_of_one_stage_are_checked_keys(capsys):
    from reid_dff.cli import two_stage_table as tool

    with pytest.raises(SystemExit):
        tool.parse_args(["--stage1-set", "SOLVER.NO_SUCH_KEY=1"])
    assert "'SOLVER.NO_SUCH_KEY' is not a config key" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.parse_args(["--demo-set", "SOLVER.MAX_EPOCHS"])
    assert "expected KEY=VALUE" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.parse_args(["SEED", "1", "--rerun"])
    assert "--rerun follows the KEY VALUE overrides; flags go before them" in capsys.readouterr().err
    args = tool.parse_args(["--stage1-set", "SOLVER.MAX_EPOCHS=3", "--demo-set", "INPUT.SIZE_TRAIN=[32, 16]"])
    assert (args.stage1_set, args.demo_set) == (
        [("SOLVER.MAX_EPOCHS", "3")],
        [("INPUT.SIZE_TRAIN", "[32, 16]")],
    )


def test_a_demo_backbone_other_than_stage_1s_stops_before_fine_tuning(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    argv = tiny_argv(tmp_path)
    argv[1] = "dff"  # --models dff
    at = argv.index("MODEL.DEVICE")
    argv[at:at] = ["--demo-set=MODEL.DFF.FILTER=task_channel"]  # the fine-tune's mask differs from stage 1's
    with pytest.raises(SystemExit) as info:
        load_tool().main(argv)
    captured = capsys.readouterr()
    assert info.value.code == 1 and trained(captured.out) == [str(tmp_path / "table" / "dff" / "stage1")]
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("run_two_stage_table.py: error: ") and "filter task_channel" in line
    assert line.endswith("not with --stage1-set or --demo-set")
    assert not (tmp_path / "table" / "dff" / "from_stage1").exists()
