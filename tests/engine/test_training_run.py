"""The real pieces together (synthetic data, resnet18, evaluation): a short run, interrupted and resumed."""

import json

import pytest
from interrupted import Interrupted, StopAfterFirstEpoch
from synthetic_run import tiny_run_cfg

from reid_dff.data.synthetic import ensure_synthetic_data
from reid_dff.engine import Trainer
from reid_dff.modeling.checkpoint import load_checkpoint

pytestmark = pytest.mark.e2e  # short training runs on synthetic data


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_data")
    ensure_synthetic_data(tiny_run_cfg(root, root / "unused"))
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


def test_model_weights_start_a_new_run_from_a_checkpoint(data_root, tmp_path):
    import torch

    from reid_dff.modeling.checkpoint import CheckpointError

    first = run_cfg(data_root, tmp_path / "first", 0)
    first.SOLVER.MAX_EPOCHS = 1
    Trainer(first.freeze()).train()
    trained = load_checkpoint(tmp_path / "first" / "last.pth")["model"]

    # same identities: every tensor, the classifier included, starts from the checkpoint
    same = run_cfg(data_root, tmp_path / "same", 0)
    same.MODEL.WEIGHTS = str(tmp_path / "first" / "last.pth")
    state = Trainer(same.freeze()).model.state_dict()
    assert state.keys() == trained.keys()
    assert all(torch.equal(state[k], trained[k]) for k in trained)

    # other identities (two sources): all but the ID classifier, which starts fresh
    other = run_cfg(data_root, tmp_path / "other", 0)
    other.DATASETS.SOURCES = ["synthetic:0", "synthetic:1"]
    other.MODEL.WEIGHTS = str(tmp_path / "first" / "last.pth")
    state = Trainer(other.freeze()).model.state_dict()
    assert state["classifier.weight"].shape[0] != trained["classifier.weight"].shape[0]
    assert all(torch.equal(state[k], trained[k]) for k in trained if not k.startswith("classifier."))

    missing = run_cfg(data_root, tmp_path / "missing", 0)
    missing.MODEL.WEIGHTS = str(tmp_path / "nowhere.pth")
    with pytest.raises(CheckpointError, match="nowhere.pth"):
        Trainer(missing.freeze())


def test_source_val_selection_holds_identities_out_and_reports_the_selected_epoch(data_root, tmp_path):
    from reid_dff.data import build_source_val_sets, build_train_set

    cfg = run_cfg(data_root, tmp_path / "val", 0)
    cfg.TEST.SELECTION = "source_val"
    cfg.TEST.EVAL_PERIOD = 1
    cfg.DATASETS.SOURCE_VAL.NUM_IDS = 2
    trainer = Trainer(cfg)
    (split,) = build_source_val_sets(cfg)
    held = {s.path for s in split.query + split.gallery}
    assert split.query and held and not held & {s.path for s in trainer.train_set.samples}
    assert trainer.num_classes == build_train_set(run_cfg(data_root, tmp_path / "x", 0)).num_classes - 2
    report = trainer.train()
    results = json.load(open(tmp_path / "val" / "results.json"))
    selection = results["selection"]
    best = load_checkpoint(tmp_path / "val" / "best.pth")
    assert selection["rule"] == "source_val" and selection["epoch"] == best["epoch"]
    assert selection["source_val_mAP"] == best["best_metric"] == trainer.best_metric
    assert set(selection["targets"]) == {"synthetic:1"}
    if selection["epoch"] == 2:  # the last epoch was selected: its targets are the report's
        assert selection["mean"] == report["mean"]
    assert results["source_val"]["sources"]["synthetic:0"]["num_query"] == len(split.query)


def test_default_selection_is_the_last_epoch(data_root, tmp_path):
    cfg = run_cfg(data_root, tmp_path / "last", 0)
    cfg.TEST.EVAL_PERIOD = 1
    report = Trainer(cfg).train()
    selection = json.load(open(tmp_path / "last" / "results.json"))["selection"]
    assert (selection["rule"], selection["epoch"], selection["source_val_mAP"]) == ("last", 2, None)
    assert selection["mean"] == report["mean"]
    assert load_checkpoint(tmp_path / "last" / "best.pth")["epoch"] == 2
