import pytest
import torch
from tiny_reid import save_tiny_checkpoint, tiny_cfg


@pytest.fixture(autouse=True)
def single_torch_thread():
    """Tiny tensors gain nothing from intra-op threads, and on a shared CPU their spin-waits cost 10-30x."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """(cfg, checkpoint path) of a tiny random DFF-R18 whose data root is a fresh tiny synthetic domain."""
    root = tmp_path_factory.mktemp("inference")
    cfg = tiny_cfg(str(root / "data"))
    return cfg, save_tiny_checkpoint(root / "model.pth", cfg)
