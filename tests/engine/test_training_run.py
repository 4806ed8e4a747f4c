"""The real pieces together (synthetic data, resnet18, evaluation): a short run, interrupted and resumed."""

import json

import pytest
from synthetic_run import tiny_run_cfg

from reid_dff.data.synthetic import ensure_synthetic
from reid_dff.engine import Trainer, load_checkpoint


class Interrupted(Exception):
    pass


class StopAfterFirstEpoch(Trainer):
    def save(self, name):
        path = super().save(name)
        if name == "last.pth" and self.epoch == 1:
            raise Interrupted
        return path


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_data")
    ensure_synthetic(tiny_run_cfg(root, root / "unused"))
    return root


def run_cfg(data_root, output_dir, workers):
    cfg = tiny_run_cfg(data_root, output_dir)
    cfg.DATALOADER.NUM_WORKERS = workers
    return cfg


# With loader workers too: each image's augmentation is seeded from the sampler step, so a resumed run
# sees the same pixels as the uninterrupted one, not just the same identities.
@pytest.mark.parametrize("workers", [0, 2])
def test_interrupted_and_resumed_run_matches_the_uninterrupted_one(data_root, tmp_path, workers):
    full = Trainer(run_cfg(data_root, tmp_path / "full", workers))
    full_report = full.train()
    assert len(full.loss_history) == 6

    with pytest.raises(Interrupted):
        StopAfterFirstEpoch(run_cfg(data_root, tmp_path / "split", workers)).train()
    assert load_checkpoint(tmp_path / "split" / "last.pth")["iteration"] == 3
    resumed = Trainer(run_cfg(data_root, tmp_path / "split", workers), resume=True)
    resumed_report = resumed.train()

    assert resumed.loss_history == full.loss_history[3:]  # identical floats, not just close
    assert resumed_report["mean"] == full_report["mean"]
    results = json.load(open(tmp_path / "split" / "results.json"))
    assert results["schema"].startswith("reid_dff.evaluation.report/")
    assert (
        results["checkpoint"]["path"].endswith("last.pth") and results["config"]["SOLVER"]["MAX_EPOCHS"] == 2
    )
    assert (tmp_path / "split" / "best.pth").is_file()
