"""bench/backbone_throughput.py runs end to end on tiny inputs, and its --breakdown rows strip what they say."""

import importlib.util
from pathlib import Path

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
