import hashlib
import importlib.util
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from torch import nn

import reid_dff.data
from reid_dff.config import get_cfg
from reid_dff.data import Sample
from reid_dff.data import TestSplit as Split  # not "Test*": pytest would try to collect it
from reid_dff.evaluation import (
    REPORT_SCHEMA,
    attach_run_info,
    evaluate,
    evaluate_targets,
    format_markdown,
    write_results,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIM = 12


class FakeData:
    """Targets whose images *are* their features: the loader packs a path's feature into a (3, 1, 4) image."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.feature_of = {}
        self.splits = {"tgt_a": [], "tgt_b": []}
        self.loader_builds = {}
        # tgt_a: 3 splits drawn from one pool of 8 ids x 2 cameras (shared images across splits).
        pool = []
        for pid in range(8):
            centre = rng.standard_normal(DIM)
            for cam in (0, 1):
                path = f"/fake/a/{pid}_{cam}.png"
                self.feature_of[path] = (centre + 0.8 * rng.standard_normal(DIM)).astype(np.float32)
                pool.append(Sample(path, pid, cam))
        for split_id in range(3):
            ids = rng.choice(8, 5, replace=False)
            query = [s for s in pool if s.pid in ids and s.camid == 0]
            gallery = [s for s in pool if s.pid in ids and s.camid == 1]
            self.splits["tgt_a"].append(Split("tgt_a", split_id, query, gallery, "/fake/a.json", "ab" * 32))
        # tgt_b: one Market-like split.
        query, gallery = [], []
        for pid in range(6):
            centre = rng.standard_normal(DIM)
            for cam, bucket in ((0, query), (1, gallery), (2, gallery)):
                path = f"/fake/b/{pid}_{cam}.png"
                self.feature_of[path] = (centre + 0.8 * rng.standard_normal(DIM)).astype(np.float32)
                bucket.append(Sample(path, pid, cam))
        self.splits["tgt_b"].append(Split("tgt_b", None, query, gallery, None, None))

    def build_test_sets(self, cfg, name):
        return self.splits[name]

    def build_test_loader(self, cfg, samples):
        key = samples[0].path.split("/")[2]
        self.loader_builds[key] = self.loader_builds.get(key, 0) + 1
        return [
            {
                "images": torch.from_numpy(
                    np.stack([self.feature_of[s.path] for s in samples[i : i + 5]])
                ).reshape(-1, 3, 1, 4),
                "pids": torch.tensor([s.pid for s in samples[i : i + 5]]),
                "camids": torch.tensor([s.camid for s in samples[i : i + 5]]),
                "paths": [s.path for s in samples[i : i + 5]],
            }
            for i in range(0, len(samples), 5)
        ]


@pytest.fixture
def fake_data(monkeypatch):
    data = FakeData()
    monkeypatch.setattr(reid_dff.data, "build_test_sets", data.build_test_sets)
    monkeypatch.setattr(reid_dff.data, "build_test_loader", data.build_test_loader)
    return data


def direct_metrics(data, split, metric):
    feats = lambda samples: np.stack([data.feature_of[s.path] for s in samples])  # noqa: E731
    r = evaluate(
        feats(split.query),
        feats(split.gallery),
        [s.pid for s in split.query],
        [s.pid for s in split.gallery],
        [s.camid for s in split.query],
        [s.camid for s in split.gallery],
        metric=metric,
    )
    cmc = r["cmc"]
    return {
        "R1": cmc[0],
        "R5": cmc[min(5, len(cmc)) - 1],
        "R10": cmc[min(10, len(cmc)) - 1],
        "mAP": r["mAP"],
        "mINP": r["mINP"],
    }


def test_report_aggregates_splits_and_targets(fake_data):
    cfg = get_cfg()
    cfg.TEST.METRIC = "euclidean"
    report = evaluate_targets(cfg, nn.Flatten(), "cpu", targets=["tgt_a", "tgt_b"])
    assert fake_data.loader_builds == {"a": 1, "b": 1}  # each target's images are embedded once
    assert report["schema"] == REPORT_SCHEMA and report["metric"] == "euclidean"
    assert report["rerank"] == {"enabled": False, "k1": 20, "k2": 6, "lambda": 0.3}
    target_means = []
    for name in ("tgt_a", "tgt_b"):
        target = report["targets"][name]
        expected = [direct_metrics(fake_data, s, "euclidean") for s in fake_data.splits[name]]
        assert target["num_splits"] == len(expected)
        for got, want, split in zip(target["splits"], expected, fake_data.splits[name]):
            for m, v in want.items():
                assert got[m] == pytest.approx(v, abs=1e-12)
            assert (got["split_id"], got["split_file"], got["split_sha256"]) == (
                split.split_id,
                split.split_file,
                split.split_sha256,
            )
            assert got["num_query"] == len(split.query) and got["num_gallery"] == len(split.gallery)
            assert len(got["cmc"]) == min(cfg.TEST.MAX_RANK, len(split.gallery))
        for m in ("R1", "R5", "R10", "mAP", "mINP"):
            assert target["mean"][m] == pytest.approx(np.mean([e[m] for e in expected]), abs=1e-12)
            assert target["std"][m] == pytest.approx(np.std([e[m] for e in expected]), abs=1e-12)
        target_means.append(target["mean"])
    for m in ("R1", "mAP", "mINP"):
        assert report["mean"][m] == pytest.approx((target_means[0][m] + target_means[1][m]) / 2, abs=1e-12)
    assert 0 < report["targets"]["tgt_a"]["std"]["mAP"]  # the splits differ
    json.dumps(report)  # JSON-ready as it is


def test_markdown_table_and_results_file(fake_data, tmp_path):
    cfg = get_cfg()
    report = evaluate_targets(cfg, nn.Flatten(), "cpu", targets=["tgt_a", "tgt_b"])
    checkpoint = tmp_path / "model.pth"
    checkpoint.write_bytes(b"weights")
    attach_run_info(report, cfg, str(checkpoint))
    assert report["checkpoint"]["sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert report["config"]["TEST"]["METRIC"] == "cosine"
    text = format_markdown(report)
    lines = text.splitlines()
    assert lines[2] == "| target | splits | R1 | R5 | R10 | mAP | mINP |"
    a = report["targets"]["tgt_a"]
    assert f"| tgt_a | 3 | {100 * a['mean']['R1']:.1f} ± {100 * a['std']['R1']:.1f} |" in text
    assert lines[-1].startswith("| **mean** | | ") and f"{100 * report['mean']['mAP']:.1f}" in lines[-1]
    assert report["checkpoint"]["sha256"][:12] in lines[0]
    path = write_results(report, str(tmp_path / "out"))
    assert path == str(tmp_path / "out" / "results.json")
    with open(path) as f:
        assert json.load(f) == json.loads(json.dumps(report))
    assert not [n for n in os.listdir(tmp_path / "out") if n.endswith(".tmp")]  # no temporary left behind


def test_images_skipped_by_the_loader_are_left_out_and_counted(fake_data, monkeypatch):
    build = fake_data.build_test_loader

    def loader_dropping_one(cfg, samples):
        batches = build(cfg, samples)
        first = batches[0]
        keep = slice(1, None)  # the first image was "unreadable"
        batches[0] = {k: first[k][keep] for k in ("images", "pids", "camids", "paths")}
        return batches

    monkeypatch.setattr(reid_dff.data, "build_test_loader", loader_dropping_one)
    report = evaluate_targets(get_cfg(), nn.Flatten(), "cpu", targets=["tgt_b"])
    assert report["targets"]["tgt_b"]["splits"][0]["num_missing_images"] == 1
    assert report["targets"]["tgt_b"]["splits"][0]["num_query"] == 5


def test_no_targets_is_a_config_error():
    cfg = get_cfg()
    cfg.DATASETS.TARGETS = []
    with pytest.raises(ValueError, match="DATASETS.TARGETS"):
        evaluate_targets(cfg, nn.Flatten(), "cpu")


# ------------------------------------------------------------------------------- tools/eval.py end to end
def write_market(root):
    """A tiny Market-1501 tree: 5 ids, 1 query (camera 1) and 2 gallery images (cameras 2, 3) each."""
    base = os.path.join(root, "market1501", "Market-1501-v15.09.15")
    rng = np.random.default_rng(0)
    names = {
        "bounding_box_train": [f"{pid:04d}_c1s1_000001_01.jpg" for pid in (10, 11)],
        "query": [f"{pid:04d}_c1s1_000002_01.jpg" for pid in range(1, 6)],
        "bounding_box_test": [f"{pid:04d}_c{c}s1_000003_01.jpg" for pid in range(1, 6) for c in (2, 3)]
        + ["0000_c2s1_000004_01.jpg", "-1_c3s1_000005_01.jpg"],  # a distractor and a junk image
    }
    for folder, files in names.items():
        os.makedirs(os.path.join(base, folder))
        for name in files:
            assert cv2.imwrite(
                os.path.join(base, folder, name), rng.integers(0, 255, (64, 32, 3), dtype=np.uint8)
            )


@pytest.mark.e2e
def test_eval_tool_end_to_end_on_a_tiny_market(tmp_path):
    from reid_dff.modeling import build_model

    write_market(tmp_path / "data")
    config = tmp_path / "eval.yaml"
    config.write_text(
        "MODEL:\n  BACKBONE: resnet18\n  DEVICE: cpu\n"
        "INPUT:\n  SIZE_TEST: [64, 32]\n"
        f"DATASETS:\n  ROOT: {tmp_path / 'data'}\n  TARGETS: [market1501]\n"
        "DATALOADER:\n  NUM_WORKERS: 0\n"
        "TEST:\n  IMS_PER_BATCH: 8\n"
    )
    cfg = get_cfg()
    cfg.MODEL.BACKBONE = "resnet18"
    torch.manual_seed(0)
    model = build_model(cfg, num_classes=7)  # a training checkpoint: its classifier is ignored
    checkpoint = tmp_path / "model.pth"
    torch.save({"model": model.state_dict()}, checkpoint)

    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "tools/eval.py", "--config-file", str(config), "MODEL.WEIGHTS", str(checkpoint),
         "OUTPUT_DIR", str(out), "MODEL.PRETRAIN_PATH", str(tmp_path / "not-here.pth")],  # not read under weights
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "| market1501 | 1 |" in proc.stdout
    with open(out / "results.json") as f:
        report = json.load(f)
    assert report["checkpoint"]["sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert report["config"]["MODEL"]["WEIGHTS"] == str(checkpoint)
    assert (out / "config.yaml").is_file()
    split = report["targets"]["market1501"]["splits"][0]
    assert (split["num_query"], split["num_gallery"], split["num_valid_queries"]) == (5, 11, 5)
    assert 0 < split["mAP"] <= 1 and split["R10"] == 1.0  # 11 gallery images: all matches within rank 10


def load_eval_tool():
    spec = importlib.util.spec_from_file_location("eval_tool", os.path.join(REPO, "tools", "eval.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ([], "nothing to evaluate: pass the checkpoint as MODEL.WEIGHTS"),
        (["MODEL.WEIGHTS", "/nonexistent/nope.pth"], "/nonexistent/nope.pth"),
    ],
)
def test_eval_tool_reports_a_missing_checkpoint_in_one_line(tmp_path, capsys, opts, message):
    config = tmp_path / "eval.yaml"
    config.write_text("MODEL:\n  BACKBONE: resnet18\n")
    with pytest.raises(SystemExit) as exit_info:
        load_eval_tool().main(["--config-file", str(config), *opts, "OUTPUT_DIR", str(tmp_path / "out")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("eval.py: error:") and message in err
