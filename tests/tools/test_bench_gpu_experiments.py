"""bench/gpu_experiments.sh --tiny: the parallel jobs train every (table, row, seed) once, stage 1 before
the demo runs that need it, and the final table commands find every run cached and print the tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e  # a shell script that trains a few tiny runs side by side

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_tiny_run_trains_each_job_once_and_prints_the_tables(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1",
           "PARTS": "1 4", "JOBS": "2", "WORKERS": "0", "REAL_ARCHIVE": str(tmp_path / "absent.tar.gz")}  # fmt: skip
    done = subprocess.run(
        ["bash", "bench/gpu_experiments.sh", "--tiny"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "FAILED" not in out and "real benchmark skipped" in out
    jobs = sorted(line.split(" (")[0] for line in out.splitlines() if line.startswith("done"))
    assert jobs == sorted([
        "done   part 1 literal seed 0", "done   part 1 init_kaiming seed 0",
        "done   part 4 base seed stage1", "done   part 4 dff seed stage1",
        "done   part 4 base seed 0", "done   part 4 dff seed 0",
    ])  # fmt: skip
    # The final table commands train nothing: every run is the cached run of a job.
    assert "+ python tools/train_net.py" not in out
    study = json.load(open(tmp_path / "mask_study_synthetic" / "table.json"))
    assert [r["row"] for r in study["rows"]] == ["literal", "init_kaiming", "default"]
    assert all(len(r["mAP"]) == 1 for r in study["rows"])
    assert "Mask study, synthetic benchmark" in out and "| init kaiming |" in out
    two_stage = (tmp_path / "two_stage" / "table.md").read_text()
    assert (
        "| Base (ResNet-18) | from stage 1 |" in two_stage and "| DFF (DFF-ResNet-18) | from scratch |" in out
    )
