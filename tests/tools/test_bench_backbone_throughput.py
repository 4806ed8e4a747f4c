"""bench/backbone_throughput.py runs end to end on tiny inputs, and its --breakdown rows strip what they say."""

import importlib.util
from pathlib import Path

import pytest
import torch

from reid_dff.config import get_cfg
from reid_dff.modeling import build_model
from reid_dff.modeling.backbones import FourierUnit, SpectralTransform

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "backbone_throughput.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("backbone_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.e2e
def test_bench_prints_a_row_per_model_with_breakdown(capsys):
    bench = load_bench()
    bench.main(
        [
            "--models",
            "resnet18",
            "ffc_resnet18",
            "--batch",
            "2",
            "--input",
            "64",
            "32",
            "--iters",
            "1",
            "--warmup",
            "0",
            "--num-classes",
            "5",
            "--breakdown",
        ]
    )
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    names = [row.split("|")[1].strip() for row in rows[1:]]
    assert names == ["resnet18", "ffc_resnet18", "ffc_resnet18-fu", "ffc_resnet18-st"]
    assert rows[1].split("|")[3].strip() == "1.00"


@pytest.mark.e2e
def test_floor_splits_each_step_into_convolutions_ffts_and_the_rest(capsys):
    bench = load_bench()
    args = ["--models", "resnet18", "dff_resnet18", "--batch", "2", "--input", "64", "32"]
    bench.main([*args, "--iters", "1", "--warmup", "1", "--num-classes", "5", "--floor"])
    lines = capsys.readouterr().out.splitlines()
    start = lines.index(next(line for line in lines if "| mode |" in line))
    header = [cell.strip() for cell in lines[start].split("|")[1:-1]]
    table = lines[start : start + 6]
    floor = [dict(zip(header, (cell.strip() for cell in line.split("|")[1:-1]))) for line in table]
    assert [(row["model"], row["mode"]) for row in floor[2:]] == [
        ("resnet18", "train"),
        ("dff_resnet18", "train"),
        ("resnet18", "inference"),
        ("dff_resnet18", "inference"),
    ]
    for row in floor[2:]:
        assert float(row["conv ms"]) > 0
        # resnet18 has no FFT; dff_resnet18's few small ones may round to 0.0 ms at this size
        assert row["model"].startswith("dff_") or row["FFT ms"] == "0.0"
    assert [row["ceiling"] for row in floor[2:] if row["model"] == "resnet18"] == ["1.00", "1.00"]


def test_conv_fft_seconds_counts_only_convolution_and_fft_kernels():
    bench = load_bench()
    image = torch.randn(1, 3, 32, 32)
    conv = torch.nn.Conv2d(3, 8, 3)
    assert bench.conv_fft_seconds(lambda: torch.relu(image))[0] == 0
    conv_s, fft_s = bench.conv_fft_seconds(lambda: conv(image))
    assert conv_s > 0 and fft_s == 0
    conv_s, fft_s = bench.conv_fft_seconds(lambda: torch.fft.irfft2(torch.fft.rfft2(image), s=(32, 32)))
    assert conv_s == 0 and fft_s > 0


def test_strip_global_branch_removes_fourier_units_or_spectral_transforms():
    bench = load_bench()
    cfg = get_cfg()
    cfg.MODEL.BACKBONE = "ffc_resnet18"
    cfg.INPUT.SIZE_TRAIN = [64, 32]
    images = torch.randn(2, 3, 64, 32)
    for part in ("fu", "st"):
        model = build_model(cfg, 5).eval()
        bench.strip_global_branch(model, part)
        assert not any(isinstance(m, FourierUnit) for m in model.modules())
        assert any(isinstance(m, SpectralTransform) for m in model.modules()) == (part == "fu")
        with torch.no_grad():
            assert model(images).shape == (2, 512)
