"""A run sets and logs its intra-op threads (reid_dff.utils.threads) before training."""

import pytest
import torch
from synthetic_run import tiny_run_cfg

from reid_dff.data.synthetic import ensure_synthetic_data
from reid_dff.engine import Trainer
from reid_dff.utils.threads import ThreadSettingError


@pytest.fixture()
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_trainer_sets_and_logs_the_configured_threads(tmp_path, restore_threads):
    cfg = tiny_run_cfg(tmp_path / "data", tmp_path / "run")
    ensure_synthetic_data(cfg)
    cfg.MODEL.NUM_THREADS = 1 if torch.get_num_threads() != 1 else 2
    trainer = Trainer(cfg)
    try:
        assert torch.get_num_threads() == cfg.MODEL.NUM_THREADS
    finally:
        trainer.close()
    log = (tmp_path / "run" / "log.txt").read_text()
    assert (
        f"using {cfg.MODEL.NUM_THREADS} intra-op threads, 0 loader workers at 1 thread each on " in log
        and "(MODEL.NUM_THREADS)" in log
    )


def test_negative_threads_are_refused(tmp_path, restore_threads):
    cfg = tiny_run_cfg(tmp_path / "data", tmp_path / "run")
    cfg.MODEL.NUM_THREADS = -2
    with pytest.raises(ThreadSettingError, match="MODEL.NUM_THREADS must be 0 .* got -2"):
        Trainer(cfg)
