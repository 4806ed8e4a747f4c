import pytest
import torch


@pytest.fixture(autouse=True)
def single_torch_thread():
    """Tiny tensors gain nothing from intra-op threads, and on a shared CPU their spin-waits cost 10-30x."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
