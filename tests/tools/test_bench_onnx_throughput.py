"""bench/onnx_throughput.py runs end to end on a tiny input and prints one consistent row per model."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "onnx_throughput.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("onnx_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.e2e
def test_bench_prints_both_backends_and_their_ratio(capsys):
    load_bench().main(
        ["--models", "resnet18", "--batch", "2", "--input", "32", "16", "--iters", "1", "--warmup", "0"]
    )
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| model | PyTorch img/s | onnxruntime img/s | ratio |")
    cells = [cell.strip() for cell in rows[1].split("|")[1:-1]]
    assert cells[0] == "resnet18" and len(rows) == 2
    torch_ips, ort_ips, ratio, parity = float(cells[1]), float(cells[2]), float(cells[3]), float(cells[4])
    assert torch_ips > 0 and ort_ips > 0
    assert ratio == pytest.approx(ort_ips / torch_ips, abs=0.01 + 0.01 * ratio)
    assert parity <= 1e-4
