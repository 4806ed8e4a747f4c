import pytest
from tiny_reid import save_tiny_checkpoint, tiny_cfg


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """(cfg, checkpoint path) of a tiny random DFF-R18 whose data root is a fresh tiny synthetic domain."""
    root = tmp_path_factory.mktemp("inference")
    cfg = tiny_cfg(str(root / "data"))
    return cfg, save_tiny_checkpoint(root / "model.pth", cfg)
