"""The thread plan (a pure function of cores, workers, environment and config) and one-thread workers."""

import cv2
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from reid_dff.config import get_cfg
from reid_dff.data.build import _seed_worker
from reid_dff.errors import ReidDffError
from reid_dff.utils.threads import ThreadSettingError, choose_threads, configure_threads


@pytest.mark.parametrize(
    "cores, workers, configured, env, ranks, expected, source",
    [
        (2, 0, 0, {}, 1, 2, "automatic"),  # no workers: every core
        (2, 1, 0, {}, 1, 1, "automatic"),
        (2, 4, 0, {}, 1, 1, "automatic"),  # more workers than cores: still one thread
        (16, 4, 0, {}, 1, 12, "automatic"),
        (16, 4, 0, {}, 2, 4, "automatic"),  # DDP: 8 cores per local rank, minus 4 workers
        (16, 2, 0, {}, 4, 2, "automatic"),
        (3, 0, 0, {}, 4, 1, "automatic"),  # more ranks than cores
        (16, 4, 0, {"OMP_NUM_THREADS": "3"}, 1, 3, "OMP_NUM_THREADS"),  # the user's choice wins
        (16, 4, 0, {"OMP_NUM_THREADS": "0"}, 1, 12, "automatic"),  # not a usable setting: ignored
        (16, 4, 0, {"OMP_NUM_THREADS": "x"}, 1, 12, "automatic"),
        (16, 4, 5, {"OMP_NUM_THREADS": "3"}, 1, 5, "MODEL.NUM_THREADS"),  # the config wins over both
    ],
)
def test_choose_threads(cores, workers, configured, env, ranks, expected, source):
    plan = choose_threads(cores, workers, configured, env=env, local_ranks=ranks)
    assert (plan.intra_op, plan.workers, plan.cores, plan.local_ranks, plan.source) == (
        expected,
        workers,
        cores,
        ranks,
        source,
    )
    assert plan.describe().startswith(
        f"using {expected} intra-op threads, {workers} loader workers at 1 thread each on {cores} cores"
    )


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True])
def test_bad_num_threads_is_one_clear_error(bad):
    with pytest.raises(ThreadSettingError, match=r"^MODEL.NUM_THREADS must be 0 .* got") as info:
        choose_threads(4, 1, bad, env={})
    assert isinstance(info.value, ReidDffError) and "\n" not in str(info.value)


def test_configure_threads_sets_the_main_process(monkeypatch):
    before, cv2_before = torch.get_num_threads(), cv2.getNumThreads()
    cfg = get_cfg()
    cfg.MODEL.NUM_THREADS = 1 if before != 1 else 2
    try:
        plan = configure_threads(cfg, local_ranks=1)
        assert torch.get_num_threads() == cv2.getNumThreads() == plan.intra_op == cfg.MODEL.NUM_THREADS
    finally:
        torch.set_num_threads(before)
        cv2.setNumThreads(cv2_before)


class _ThreadsInWorker(Dataset):
    def __len__(self):
        return 1

    def __getitem__(self, index):
        return torch.tensor([torch.get_num_threads()])


def test_loader_workers_run_one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # else the test could not tell
    try:
        loader = DataLoader(_ThreadsInWorker(), batch_size=1, num_workers=1, worker_init_fn=_seed_worker)
        (batch,) = list(loader)
    finally:
        torch.set_num_threads(before)
    assert batch.tolist() == [[1]]
