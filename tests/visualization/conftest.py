import os
import sys

import pytest

# The tiny-model helpers live with the inference tests (visualization builds on inference).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "inference"))
from tiny_reid import save_tiny_checkpoint, tiny_cfg  # noqa: E402


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """(DFF-R18 checkpoint, plain ResNet-18 checkpoint) at 64x32, randomly initialised."""
    root = tmp_path_factory.mktemp("visualization")
    dff = save_tiny_checkpoint(root / "dff.pth", tiny_cfg(backbone="dff_resnet18"))
    base = save_tiny_checkpoint(root / "base.pth", tiny_cfg(backbone="resnet18"), seed=1)
    return dff, base
