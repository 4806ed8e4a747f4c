"""MAC/parameter counting against hand-computed values and the published ResNet-50 figures."""

import json
import math
import os
import subprocess
import sys

import pytest
from torch import nn

from reid_dff.modeling.backbones import FFCConv2d, FilterSettings
from reid_dff.modeling.complexity import count_complexity, real_fft_flops

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_conv_and_linear_macs_by_hand():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))
    result = count_complexity(model, (8, 8))
    assert result.macs == 8 * 4 * 4 * 3 * 9 + 128 * 5
    assert result.params == sum(p.numel() for p in model.parameters()) and result.fft_flops == 0


def test_ffc_macs_by_hand_and_fft_estimate():
    ffc = FFCConv2d(8, 8, 3, 1, 0.5, 0.5, (6, 6), FilterSettings("none"))
    result = count_complexity(ffc, (6, 6), in_channels=8)
    hw = 36
    local_paths = 3 * (4 * 4 * 9) * hw  # l2l, l2g, g2l: 4 -> 4 channels, 3x3
    spectral = 4 * 2 * hw + (4 * 4) * 6 * 4 + 2 * 4 * hw  # conv1 4->2, FU conv 4->4 on 6x4, conv2 2->4
    assert result.macs == local_paths + spectral
    assert math.isclose(result.fft_flops, 2 * real_fft_flops(2, 6, 6))
    assert math.isclose(real_fft_flops(1, 4, 4), 2.5 * 16 * 4)


def test_resnet50_matches_the_published_figures():
    from reid_dff.config import get_cfg
    from reid_dff.modeling import build_model

    cfg = get_cfg()
    cfg.MODEL.BACKBONE = "resnet50"
    cfg.MODEL.LAST_STRIDE = 2
    result = count_complexity(build_model(cfg, 1000), (224, 224))
    assert abs(result.gmacs - 4.09) < 0.01
    assert abs(result.params - 25.56e6) < 0.01e6  # BNNeck + bias-free classifier: +2*2048 - 1000 vs fc


@pytest.mark.e2e
def test_tool_reports_dff_resnet50_near_the_paper():
    out = subprocess.run(
        [
            sys.executable,
            "tools/complexity.py",
            "--model",
            "dff_resnet50",
            "--input",
            "224",
            "224",
            "--num-classes",
            "1000",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    record = json.loads(out.stdout)
    assert record["model"] == "dff_resnet50" and record["filter"] == "ins_spatial"
    assert abs(record["params"] - 27.7e6) / 27.7e6 < 0.01
    assert abs(record["gmacs"] - 4.5) / 4.5 < 0.05
    assert record["fft_gflops"] > 0 and record["reference"]["params_m"] == 27.7


def test_tool_table_prints_the_exact_count_rounded_once(capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "complexity_tool", os.path.join(ROOT, "tools", "complexity.py")
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main(["--model", "dff_resnet50", "--input", "224", "224", "--num-classes", "1000"])
    out = capsys.readouterr().out
    # 27,724,568 parameters: 27.72 M (rounding 27.725 again would print 27.73)
    assert "ours: dff_resnet50                 27.72      4.45" in out, out
    for bad, message in (
        (["--filter", "ins_spatail"], "invalid choice: 'ins_spatail'"),
        (["--input", "0", "0"], "both sides must be at least 32 pixels"),
    ):
        try:
            tool.main(["--model", "dff_resnet50", *bad])
        except SystemExit as e:
            assert e.code == 2
        else:
            raise AssertionError(f"{bad} was accepted")
        assert message in capsys.readouterr().err
