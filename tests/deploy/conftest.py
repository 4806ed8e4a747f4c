import os
import sys

import pytest

# The tiny-model helpers live with the inference tests (deployment builds on inference).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "inference"))
from tiny_reid import save_tiny_checkpoint, tiny_cfg  # noqa: E402


@pytest.fixture(scope="session")
def deploy_root(tmp_path_factory):
    """A folder for the session's checkpoints, exports and the tiny synthetic domain."""
    return tmp_path_factory.mktemp("deploy")


@pytest.fixture(scope="session")
def dff_checkpoint(deploy_root):
    """(cfg, path) of a tiny random DFF-R18 checkpoint at 64x32 (data root: a fresh synthetic domain)."""
    cfg = tiny_cfg(str(deploy_root / "data"), backbone="dff_resnet18")
    return cfg, save_tiny_checkpoint(deploy_root / "dff.pth", cfg)


@pytest.fixture(scope="session")
def resnet_checkpoint(deploy_root):
    """(cfg, path) of a tiny random ResNet-18 checkpoint at 64x32."""
    cfg = tiny_cfg(str(deploy_root / "data"), backbone="resnet18")
    return cfg, save_tiny_checkpoint(deploy_root / "resnet.pth", cfg, seed=1)


@pytest.fixture(scope="session")
def dff_export(deploy_root, dff_checkpoint):
    """The :class:`ExportReport` of the DFF-R18 checkpoint exported to ONNX (the slow step, done once)."""
    from reid_dff.inference.onnx_export import export_checkpoint

    return export_checkpoint(dff_checkpoint[1], deploy_root / "dff.onnx")
