import pytest
import torch

from reid_dff.config import get_cfg


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


@pytest.fixture
def make_cfg():
    """Factory of configs for small, fast models: ``make_cfg("dff_resnet18", "ins_spatial", (64, 32))``."""

    def factory(backbone="dff_resnet18", filter_name=None, size=(64, 32), **model):
        cfg = get_cfg()
        cfg.MODEL.BACKBONE = backbone
        cfg.INPUT.SIZE_TRAIN = list(size)
        if filter_name is not None:
            cfg.MODEL.DFF.FILTER = filter_name
        for key, value in model.items():
            cfg.MODEL[key] = value
        return cfg

    return factory
