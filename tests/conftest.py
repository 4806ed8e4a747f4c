import pytest
import torch


def pytest_collection_modifyitems(config, items):
    """Leave out `slow` tests unless the -m expression names them (`-m slow`); any other -m keeps them out."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.fixture(autouse=True)
def single_torch_thread():
    """Tiny tensors gain nothing from intra-op threads, and on a shared CPU their spin-waits cost 10-30x."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
