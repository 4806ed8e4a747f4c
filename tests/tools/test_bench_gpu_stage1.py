"""bench/gpu_stage1.sh --tiny: both models train a few steps on CPU, the table and JSON report their
images/s and ratio, and the loader bench runs with the measured training speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e  # runs a shell script that trains two ResNet-50s

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_tiny_gpu_stage1_script_reports_both_models_and_the_loader(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        ["bash", "bench/gpu_stage1.sh", "--tiny"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.load(open(tmp_path / "gpu_stage1.json"))
    assert [r["model"] for r in rows] == ["resnet50", "dff_resnet50"]
    assert all(r["images_per_s"] > 0 and r["amp"] == "off" and r["channels_last"] for r in rows)
    ratio = rows[1]["images_per_s"] / rows[0]["images_per_s"]
    table = [line for line in done.stdout.splitlines() if line.startswith("| dff_resnet50 |")]
    assert table and table[0].rstrip(" |").endswith(f"{ratio:.3f}")
    slower = min(r["images_per_s"] for r in rows)
    assert f"workers for {slower:g} training img/s" in done.stdout
    assert all(f"{d} " in done.stdout for d in ("opencv", "pil"))
