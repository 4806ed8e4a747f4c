"""bench/classification_loader.py times every decoder in one run on tiny generated JPEGs and exits 0."""

import argparse
import importlib.util
import re
from pathlib import Path

import cv2
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "classification_loader.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("classification_loader", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_row_per_decoder_with_ratios_to_the_fastest(capsys):
    bench = load_bench()
    assert bench.main(["--images", "3", "--size", "40x30", "--repeats", "1", "--train-speed", "100000"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^(\w+)\s+\|\s+([\d.]+) \|\s+([\d.]+) \|\s+([\d.]+)$", out, re.MULTILINE)
    assert sorted(r[0] for r in rows) == ["opencv", "pil", "torchvision"]
    speeds = [float(r[2]) for r in rows]
    assert speeds == sorted(speeds, reverse=True) and all(s > 0 for s in speeds)  # fastest first
    for _, _, full, ratio in rows:
        assert float(ratio) == pytest.approx(float(full) / speeds[0], abs=0.006)
    workers = int(re.search(r"-> (\d+)$", out, re.MULTILINE).group(1))
    assert workers == -(-100000 // speeds[0]) or workers == -(-100000 // float(f"{speeds[0]:.1f}"))


def test_generated_jpegs_have_the_asked_size(tmp_path):
    bench = load_bench()
    (path,) = bench.write_jpegs(str(tmp_path), 1, 50, 20)
    assert cv2.imread(path).shape == (20, 50, 3)
    assert bench.parse_size("500x375") == (500, 375)
    with pytest.raises(argparse.ArgumentTypeError, match="WIDTHxHEIGHT"):
        bench.parse_size("500")
