"""The training loop with a stand-in model and data built here, so it is tested apart from the real ones."""

import glob
import json
import os

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from reid_dff.config import ConfigError, get_cfg
from reid_dff.engine import NonFiniteLossError, RunExistsError, Trainer
from reid_dff.modeling.checkpoint import CheckpointError, load_checkpoint
from reid_dff.tasks import ClassificationTask, ReIDTask, Task, build_task
from reid_dff.utils import atomic_write_json

NUM_IDS, PER_ID = 6, 4


class StandInSet(Dataset):
    """Per-identity prototype images plus fresh noise drawn from torch's RNG (an "augmentation")."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.prototypes = torch.randn(NUM_IDS, 3, 8, 4, generator=g)
        self.samples = [(i, pid) for pid in range(NUM_IDS) for i in range(PER_ID)]
        self.num_classes = NUM_IDS

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        pid = self.samples[index][1]
        return self.prototypes[pid] + 0.5 * torch.randn(3, 8, 4), pid


class StandInBatchSampler:
    """Infinite P x K batches; batch n is a pure function of (seed, n)."""

    def __init__(self, seed=0, p=2, k=4):
        self.seed, self.p, self.k, self.position = seed, p, k, 0

    def __iter__(self):
        while True:
            rng = np.random.default_rng([self.seed, self.position])
            pids = rng.choice(NUM_IDS, self.p, replace=False)
            self.position += 1
            yield [int(pid) * PER_ID + int(i) for pid in pids for i in rng.permutation(PER_ID)[: self.k]]


class StandInLoader:
    """The training-loader protocol: iterate from the consumed position; state = that position."""

    def __init__(self, dataset, num_workers):
        self.sampler = StandInBatchSampler()
        self.loader = DataLoader(
            dataset, batch_sampler=self.sampler, collate_fn=collate, num_workers=num_workers
        )
        self.consumed = 0

    def __iter__(self):
        self.sampler.position = self.consumed  # workers may have read ahead of what was consumed
        for batch in self.loader:
            self.consumed += 1
            yield batch

    def state_dict(self):
        return {"seed": self.sampler.seed, "consumed": self.consumed}

    def load_state_dict(self, state):
        self.consumed = state["consumed"]


def collate(items):
    return {"images": torch.stack([x for x, _ in items]), "pids": torch.tensor([p for _, p in items])}


class StandInModel(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
        )
        self.neck = nn.BatchNorm1d(8)
        self.classifier = nn.Linear(8, num_classes, bias=False)

    def forward(self, x):
        features = self.body(x).flatten(1)
        if not self.training:
            return self.neck(features)
        return {"logits": self.classifier(self.neck(features)), "features": features}


class StandInTrainer(Trainer):
    eval_maps: list = []  # the source-val mAP of each evaluation (TEST.SELECTION source_val picks on it)
    target_maps: list = []  # the target mAP of each evaluation: logged and reported, never selecting
    num_workers = 0

    def build_train_set(self):
        return StandInSet()

    def build_train_loader(self, train_set):
        return StandInLoader(train_set, self.num_workers)

    def build_model(self, num_classes):
        return StandInModel(num_classes)

    def evaluate(self):
        value = self.eval_maps.pop(0) if self.eval_maps else 0.5
        target = self.target_maps.pop(0) if self.target_maps else value
        return {
            "mean": {"mAP": target},
            "targets": {"standin": {"mean": {"mAP": target}}},
            "source_val": {"mAP": value},
            "epoch": self.epoch,
        }

    def write_report(self, report):
        atomic_write_json(os.path.join(self.output_dir, "results.json"), report)


class Interrupted(Exception):
    pass


def make_cfg(tmp_path, name="run", **solver):
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.OUTPUT_DIR = str(tmp_path / name)
    cfg.DATASETS.SOURCES = ["standin"]
    cfg.DATASETS.TARGETS = ["standin"]
    cfg.TEST.EVAL_PERIOD = 0
    cfg.TEST.SELECTION = "source_val"
    cfg.SOLVER.update(
        {
            "IMS_PER_BATCH": 8,
            "ITERS_PER_EPOCH": 3,
            "MAX_EPOCHS": 4,
            "WARMUP_EPOCHS": 1,
            "STEPS": [3],
            "LOG_PERIOD": 2,
            "BASE_LR": 0.01,
            **solver,
        }
    )
    return cfg


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resumed_run_repeats_the_uninterrupted_losses_exactly(tmp_path, monkeypatch, num_workers):
    monkeypatch.setattr(StandInTrainer, "num_workers", num_workers)
    full = StandInTrainer(make_cfg(tmp_path, "full"))
    full.train()
    assert len(full.loss_history) == 12

    class StopAfterTwoEpochs(StandInTrainer):
        def save(self, name):
            path = super().save(name)
            if self.epoch == 2:
                raise Interrupted
            return path

    with pytest.raises(Interrupted):
        StopAfterTwoEpochs(make_cfg(tmp_path, "split")).train()
    resumed = StandInTrainer(make_cfg(tmp_path, "split"), resume=True)
    assert (resumed.epoch, resumed.iteration) == (2, 6)
    resumed.train()
    assert resumed.loss_history == full.loss_history[6:]  # bit-identical floats
    a = load_checkpoint(tmp_path / "full" / "last.pth")
    b = load_checkpoint(tmp_path / "split" / "last.pth")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert a["sampler"] == b["sampler"] == {"seed": 0, "consumed": 12}


def test_checkpoint_holds_the_whole_run_state(tmp_path):
    cfg = make_cfg(tmp_path, MAX_EPOCHS=2)
    StandInTrainer(cfg).train()
    state = load_checkpoint(tmp_path / "run" / "last.pth")  # weights_only=True inside
    assert {
        "model",
        "optimizer",
        "scheduler",
        "sampler",
        "rng",
        "epoch",
        "iteration",
        "cfg",
        "git_revision",
        "best_metric",
    } <= set(state)
    assert (state["epoch"], state["iteration"], state["num_classes"]) == (2, 6, NUM_IDS)
    assert "MAX_EPOCHS: 2" in state["cfg"] and isinstance(state["git_revision"], str)
    assert state["scheduler"]["last_epoch"] == 6
    assert os.path.isfile(tmp_path / "run" / "config.yaml")
    assert json.load(open(tmp_path / "run" / "results.json"))["mean"]["mAP"] == 0.5


def test_best_checkpoint_follows_the_best_source_val_map(tmp_path, monkeypatch):
    monkeypatch.setattr(StandInTrainer, "eval_maps", [0.1, 0.3, 0.2])
    cfg = make_cfg(tmp_path, MAX_EPOCHS=3)
    cfg.TEST.EVAL_PERIOD = 1
    StandInTrainer(cfg).train()
    best = load_checkpoint(tmp_path / "run" / "best.pth")
    last = load_checkpoint(tmp_path / "run" / "last.pth")
    assert (best["epoch"], best["best_metric"]) == (2, 0.3)
    assert (last["epoch"], last["best_metric"]) == (3, 0.3)
    assert best["selected"]["epoch"] == 2 and best["selected"]["source_val_mAP"] == 0.3


@pytest.mark.parametrize("target_maps", [[0.1, 0.2, 0.9], [0.9, 0.1, 0.2], [0.2, 0.9, 0.1]])
def test_the_target_never_picks_best_checkpoint(tmp_path, monkeypatch, target_maps):
    # Same source-val curve, target curves that peak at every epoch: the selected epoch stays the source-val
    # best (1), and the report gives the target at that epoch, not the best target.
    monkeypatch.setattr(StandInTrainer, "eval_maps", [0.6, 0.4, 0.5])
    monkeypatch.setattr(StandInTrainer, "target_maps", list(target_maps))
    cfg = make_cfg(tmp_path, MAX_EPOCHS=3)
    cfg.TEST.EVAL_PERIOD = 1
    trainer = StandInTrainer(cfg)
    trainer.train()
    assert load_checkpoint(tmp_path / "run" / "best.pth")["epoch"] == 1
    assert trainer.selected["epoch"] == 1
    assert trainer.selected["mean"]["mAP"] == target_maps[0]
    assert trainer.selected["targets"]["standin"]["mAP"] == target_maps[0]


def test_selection_last_takes_the_last_epoch_whatever_the_target(tmp_path, monkeypatch):
    monkeypatch.setattr(StandInTrainer, "eval_maps", [0.9, 0.1, 0.2])
    monkeypatch.setattr(StandInTrainer, "target_maps", [0.9, 0.1, 0.2])
    cfg = make_cfg(tmp_path, MAX_EPOCHS=3)
    cfg.TEST.EVAL_PERIOD = 1
    cfg.TEST.SELECTION = "last"
    trainer = StandInTrainer(cfg)
    trainer.train()
    best = load_checkpoint(tmp_path / "run" / "best.pth")
    last = load_checkpoint(tmp_path / "run" / "last.pth")
    assert best["epoch"] == 3
    assert torch.equal(best["model"]["classifier.weight"], last["model"]["classifier.weight"])
    assert trainer.selected == {
        "rule": "last",
        "epoch": 3,
        "source_val_mAP": 0.2,
        "targets": {"standin": {"mAP": 0.2}},
        "mean": {"mAP": 0.2},
    }


def test_reid_selection_reads_only_the_source_val_part_of_a_report():
    cfg = get_cfg()
    cfg.TEST.SELECTION = "source_val"
    task = build_task(cfg)
    targets_only = {"mean": {"mAP": 0.7}, "targets": {"t": {"mean": {"mAP": 0.7}}}}
    assert task.selection_metric(targets_only) is None
    assert task.selection_score(targets_only, 3) is None
    assert task.selection_score({**targets_only, "source_val": {"mAP": 0.2}}, 3) == 0.2
    cfg.TEST.SELECTION = "last"
    assert build_task(cfg).selection_score(targets_only, 3) == 3.0
    cfg.TEST.SELECTION = "target"
    with pytest.raises(ConfigError, match="TEST.SELECTION must be one of last, source_val"):
        build_task(cfg).check_config()


def test_resume_keeps_a_best_checkpoint_newer_than_last(tmp_path, monkeypatch):
    # CHECKPOINT_PERIOD 2, EVAL_PERIOD 1: epoch 3 writes best.pth (0.5) but not last.pth (epoch 2), and
    # the run stops there. Epoch 3 runs again after --resume; its evaluation (0.4 here: on a GPU it need not
    # repeat) beats last.pth's record (0.3) but not best.pth's, which must stay.
    class StopAfterBestOfEpochThree(StandInTrainer):
        def save(self, name):
            path = super().save(name)
            if name == "best.pth" and self.epoch == 3:
                raise Interrupted
            return path

    cfg = make_cfg(tmp_path, MAX_EPOCHS=4, CHECKPOINT_PERIOD=2)
    cfg.TEST.EVAL_PERIOD = 1
    monkeypatch.setattr(StandInTrainer, "eval_maps", [0.3, 0.2, 0.5])
    with pytest.raises(Interrupted):
        StopAfterBestOfEpochThree(cfg).train()
    assert load_checkpoint(tmp_path / "run" / "last.pth")["best_metric"] == 0.3
    monkeypatch.setattr(StandInTrainer, "eval_maps", [0.4, 0.45])
    resumed = StandInTrainer(cfg, resume=True)
    assert resumed.best_metric == 0.5
    resumed.train()
    best = load_checkpoint(tmp_path / "run" / "best.pth")
    assert (best["epoch"], best["best_metric"]) == (3, 0.5)


def test_an_untrained_new_run_replaces_the_last_checkpoint_an_earlier_run_left(tmp_path):
    StandInTrainer(make_cfg(tmp_path, MAX_EPOCHS=1)).train()
    assert load_checkpoint(tmp_path / "run" / "last.pth")["epoch"] == 1
    untrained = StandInTrainer(make_cfg(tmp_path, MAX_EPOCHS=0), overwrite=True)
    untrained.train()
    last = load_checkpoint(tmp_path / "run" / "last.pth")
    assert (last["epoch"], last["run_id"]) == (0, untrained.run_id)  # the weights results.json describes
    before = (tmp_path / "run" / "last.pth").read_bytes()
    StandInTrainer(make_cfg(tmp_path, MAX_EPOCHS=0), resume=True).train()  # a finished run: only evaluates
    assert (tmp_path / "run" / "last.pth").read_bytes() == before


def test_resume_does_not_adopt_a_best_checkpoint_left_by_an_earlier_run(tmp_path, monkeypatch):
    # Run A's best.pth (0.9) lies in run B's OUTPUT_DIR (copied there; a new run into A's folder is refused).
    # B stops before its first evaluation and is resumed: A's record is not B's, so B's own evaluation (0.4)
    # must become best.pth.
    import shutil

    cfg_a = make_cfg(tmp_path, "a", MAX_EPOCHS=1)
    cfg_a.TEST.EVAL_PERIOD = 1
    monkeypatch.setattr(StandInTrainer, "eval_maps", [0.9])
    StandInTrainer(cfg_a).train()

    class StopAtFirstCheckpoint(StandInTrainer):
        def save(self, name):
            super().save(name)
            raise Interrupted

    cfg_b = make_cfg(tmp_path, MAX_EPOCHS=2)
    cfg_b.TEST.EVAL_PERIOD = 2
    with pytest.raises(Interrupted):
        StopAtFirstCheckpoint(cfg_b).train()
    shutil.copy(tmp_path / "a" / "best.pth", tmp_path / "run" / "best.pth")
    monkeypatch.setattr(StandInTrainer, "eval_maps", [0.4])
    resumed = StandInTrainer(cfg_b, resume=True)
    assert resumed.best_metric == -float("inf")
    resumed.train()
    best = load_checkpoint(tmp_path / "run" / "best.pth")
    assert (best["epoch"], best["best_metric"], best["run_id"]) == (2, 0.4, resumed.run_id)
    assert load_checkpoint(tmp_path / "run" / "last.pth")["run_id"] == resumed.run_id


def test_a_run_from_before_run_ids_keeps_its_best_checkpoint_over_several_resumes(tmp_path, monkeypatch):
    import logging

    from reid_dff.modeling.checkpoint import save_checkpoint

    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger("reid_dff").addHandler(handler)  # the run's logger does not propagate to caplog

    cfg = make_cfg(tmp_path, MAX_EPOCHS=1)
    cfg.TEST.EVAL_PERIOD = 1
    monkeypatch.setattr(StandInTrainer, "eval_maps", [0.9])
    StandInTrainer(cfg).train()
    for name in ("last.pth", "best.pth"):  # as written before checkpoints had a run_id
        state = load_checkpoint(tmp_path / "run" / name)
        del state["run_id"]
        save_checkpoint(tmp_path / "run" / name, state)
    for epochs in (2, 3):
        cfg = make_cfg(tmp_path, MAX_EPOCHS=epochs)
        cfg.TEST.EVAL_PERIOD = 1
        monkeypatch.setattr(StandInTrainer, "eval_maps", [0.3])
        resumed = StandInTrainer(cfg, resume=True)
        assert resumed.best_metric == 0.9  # its own record, on the first resume and on the second
        assert not [m for m in messages if "from another run" in m]
        resumed.train()
    logging.getLogger("reid_dff").removeHandler(handler)
    assert load_checkpoint(tmp_path / "run" / "best.pth")["best_metric"] == 0.9


@pytest.mark.parametrize(
    "change",
    [{"BASE_LR": 0.5}, {"WEIGHT_DECAY": 0.0}, {"OPTIMIZER": "SGD"}, {"NO_DECAY_NORM_BIAS": True}],
    ids=lambda change: next(iter(change)),
)
def test_resume_refuses_a_changed_config_and_keeps_the_runs_config_yaml(tmp_path, change):
    StandInTrainer(make_cfg(tmp_path, MAX_EPOCHS=1)).train()
    config_yaml = (tmp_path / "run" / "config.yaml").read_bytes()
    key = next(iter(change))
    with pytest.raises(CheckpointError, match=rf"another config .*SOLVER\.{key}: .* in the checkpoint"):
        StandInTrainer(make_cfg(tmp_path, MAX_EPOCHS=2, **change), resume=True)
    assert (tmp_path / "run" / "config.yaml").read_bytes() == config_yaml


def test_resume_refuses_other_targets_or_metric_which_would_change_what_best_pth_means(tmp_path):
    StandInTrainer(make_cfg(tmp_path, MAX_EPOCHS=1)).train()
    for key, value in (("DATASETS.TARGETS", ["other"]), ("TEST.METRIC", "euclidean")):
        cfg = make_cfg(tmp_path, MAX_EPOCHS=2)
        section, name = key.split(".")
        cfg[section][name] = value
        with pytest.raises(CheckpointError, match=rf"{key}: .* in the checkpoint"):
            StandInTrainer(cfg, resume=True)


def test_resume_may_change_how_long_where_and_how_often(tmp_path):
    StandInTrainer(make_cfg(tmp_path, MAX_EPOCHS=1)).train()
    cfg = make_cfg(tmp_path, MAX_EPOCHS=2, CHECKPOINT_PERIOD=2, LOG_PERIOD=1)
    cfg.TEST.EVAL_PERIOD = 1
    cfg.DATALOADER.NUM_WORKERS = 1
    cfg.MODEL.PRETRAIN_PATH = str(tmp_path / "nowhere.pth")
    resumed = StandInTrainer(cfg, resume=True)
    resumed.train()
    assert resumed.epoch == 2
    assert "CHECKPOINT_PERIOD: 2" in (tmp_path / "run" / "config.yaml").read_text()


def test_non_finite_loss_stops_with_iteration_and_terms_and_keeps_last_checkpoint(tmp_path):
    class PoisonAtIteration5(StandInTrainer):
        def build_model(self, num_classes):
            model = super().build_model(num_classes)
            trainer = self

            def poison(module, args, output):
                if trainer.iteration == 4 and module.training:
                    output["features"] = output["features"] * float("nan")
                return output

            model.register_forward_hook(poison)
            return model

    trainer = PoisonAtIteration5(make_cfg(tmp_path))
    with pytest.raises(NonFiniteLossError) as info:
        trainer.train()
    message = str(info.value)
    assert "iteration 5 (epoch 2)" in message and "loss_triplet=nan" in message and "last.pth" in message
    state = load_checkpoint(tmp_path / "run" / "last.pth")
    assert (state["epoch"], state["iteration"]) == (1, 3)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_gradient_clipping_bounds_the_update(tmp_path):
    cfg = make_cfg(
        tmp_path, OPTIMIZER="SGD", MOMENTUM=0.0, WEIGHT_DECAY=0.0, BASE_LR=1.0, WARMUP_EPOCHS=0,
        CLIP_GRAD_NORM=1e-3, MAX_EPOCHS=1, ITERS_PER_EPOCH=1,
    )  # fmt: skip
    trainer = StandInTrainer(cfg)
    before = [p.detach().clone() for p in trainer.model.parameters() if p.requires_grad]
    trainer.train_one_epoch()
    after = [p.detach() for p in trainer.model.parameters() if p.requires_grad]
    step = torch.cat([(a - b).flatten() for a, b in zip(after, before)]).norm()
    assert 0 < step <= 1e-3 * (1 + 1e-4)


def test_logs_tensorboard_and_cpu_runs_without_amp(tmp_path):
    trainer = StandInTrainer(make_cfg(tmp_path, MAX_EPOCHS=1, AMP=True))
    assert trainer.use_amp is False  # AMP is CUDA-only
    trainer.train()
    log = open(tmp_path / "run" / "log.txt").read()
    assert "loss_cross_entropy" in log and "loss_triplet" in log and "img/s" in log and "eta" in log
    assert glob.glob(str(tmp_path / "run" / "tensorboard" / "events.out.tfevents.*"))


def test_loss_falls_on_the_stand_in_data(tmp_path):
    trainer = StandInTrainer(make_cfg(tmp_path, MAX_EPOCHS=20, BASE_LR=0.03, STEPS=[100]))
    trainer.train()
    losses = [h["loss"] for h in trainer.loss_history]
    assert np.mean(losses[-12:]) < 0.75 * np.mean(losses[:6])


def test_resume_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"cannot resume: .*run.last\.pth does not exist"):
        StandInTrainer(make_cfg(tmp_path), resume=True)
    StandInTrainer(make_cfg(tmp_path, MAX_EPOCHS=1)).train()

    class MoreIdentities(StandInTrainer):
        def build_train_set(self):
            train_set = super().build_train_set()
            train_set.num_classes = NUM_IDS + 1
            return train_set

    with pytest.raises(CheckpointError, match=rf"trained with {NUM_IDS} identities but .* {NUM_IDS + 1}"):
        MoreIdentities(make_cfg(tmp_path), resume=True)


def test_resuming_a_finished_run_only_evaluates(tmp_path):
    StandInTrainer(make_cfg(tmp_path, MAX_EPOCHS=1)).train()
    again = StandInTrainer(make_cfg(tmp_path, MAX_EPOCHS=1), resume=True)
    report = again.train()
    assert again.loss_history == [] and report["mean"]["mAP"] == 0.5


def test_sync_bn_on_cpu_ddp_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setattr("reid_dff.engine.trainer.get_world_size", lambda: 2)
    with pytest.raises(ConfigError, match="SOLVER.SYNC_BN is True but this DDP run is on CPU"):
        StandInTrainer(make_cfg(tmp_path, SYNC_BN=True))


def test_a_second_run_in_the_same_process_does_not_write_into_the_first_runs_log(tmp_path):
    StandInTrainer(make_cfg(tmp_path, "first", MAX_EPOCHS=1)).train()
    StandInTrainer(make_cfg(tmp_path, "second", MAX_EPOCHS=1)).train()
    first = open(tmp_path / "first" / "log.txt").read()
    assert first.count("INFO] training ") == 1


class ScoreTask(Task):
    """A third task written only as a strategy: stand-in data and model, a scripted score per evaluation."""

    def __init__(self, cfg, scores):
        super().__init__(cfg)
        self.scores = list(scores)

    def build_train_set(self):
        return StandInSet()

    def build_train_loader(self, train_set, rank, world_size):
        return StandInLoader(train_set, 0)

    def build_model(self, num_classes, imagenet_init):
        return StandInModel(num_classes)

    def evaluate(self, model, device):
        return {"score": self.scores.pop(0)}

    def selection_metric(self, report):
        return report["score"]

    def selection_record(self, report, epoch):
        return {"epoch": epoch, "score": report["score"]}

    def describe_evaluation(self, report, epoch, best_metric):
        return f"epoch {epoch}: score {report['score']}"

    def checkpoint_extras(self, selected):
        return {"selected": selected}

    def finish_report(self, report, epoch, selected):
        report["selected"] = selected

    def format_report(self, report):
        return f"| score | {report['score']} |"


def test_a_task_strategy_drives_data_model_selection_and_report_of_the_one_trainer(tmp_path):
    cfg = make_cfg(tmp_path, MAX_EPOCHS=3)
    cfg.TEST.EVAL_PERIOD = 1
    trainer = Trainer(cfg, task=ScoreTask(cfg, [0.2, 0.7, 0.4]))
    assert trainer.num_classes == NUM_IDS and trainer.class_noun == "classes"
    report = trainer.train()
    assert (report["score"], report["selected"]) == (0.4, {"epoch": 2, "score": 0.7})  # last, selected
    assert report["checkpoint"]["path"] == str(tmp_path / "run" / "last.pth")
    assert json.load(open(tmp_path / "run" / "results.json"))["selected"] == {"epoch": 2, "score": 0.7}
    best = load_checkpoint(tmp_path / "run" / "best.pth")
    assert (best["epoch"], best["best_metric"], best["selected"]) == (2, 0.7, {"epoch": 2, "score": 0.7})
    assert "epoch 2: score 0.7" in (tmp_path / "run" / "log.txt").read_text()


def test_model_task_names_a_registered_task():
    assert isinstance(build_task(make_cfg_plain("reid")), ReIDTask)
    assert isinstance(build_task(make_cfg_plain("classification")), ClassificationTask)
    with pytest.raises(
        ConfigError, match="MODEL.TASK must be one of classification, imagenet, reid, got 'detection'"
    ):
        build_task(make_cfg_plain("detection"))


def make_cfg_plain(task):
    cfg = get_cfg()
    cfg.MODEL.TASK = task
    return cfg


RUN_FILES = ("last.pth", "best.pth", "results.json", "config.yaml", "log.txt")


@pytest.mark.parametrize("max_epochs", [2, 0])
def test_a_new_run_into_a_folder_holding_a_run_is_refused_before_writing_anything(tmp_path, max_epochs):
    first = make_cfg(tmp_path, MAX_EPOCHS=1)
    first.TEST.EVAL_PERIOD = 1
    StandInTrainer(first).train()
    run = tmp_path / "run"
    before = {name: (run / name).read_bytes() for name in RUN_FILES}
    listing = sorted(os.listdir(run))
    with pytest.raises(RunExistsError) as info:
        StandInTrainer(make_cfg(tmp_path, MAX_EPOCHS=max_epochs))
    message = str(info.value)
    assert (
        message
        == f"{run} already holds a training run (last.pth, best.pth); a new run there would overwrite it"
    )
    assert "\n" not in message and "--" not in message  # the fact; the tool adds the remedy
    assert {name: (run / name).read_bytes() for name in RUN_FILES} == before  # log.txt too: nothing written
    assert sorted(os.listdir(run)) == listing


def test_a_best_checkpoint_alone_marks_a_run_too(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "best.pth").write_bytes(b"an earlier run's best")
    with pytest.raises(RunExistsError, match=r"\(best\.pth\)"):
        StandInTrainer(make_cfg(tmp_path, MAX_EPOCHS=1))
    assert (tmp_path / "run" / "best.pth").read_bytes() == b"an earlier run's best"


def test_overwrite_replaces_the_earlier_run_and_resume_continues_it(tmp_path):
    first = make_cfg(tmp_path, MAX_EPOCHS=1)
    first.TEST.EVAL_PERIOD = 1
    old = StandInTrainer(first)
    old.train()
    # --resume is no new run: it is not refused
    resumed = StandInTrainer(make_cfg(tmp_path, MAX_EPOCHS=2), resume=True)
    assert resumed.run_id == old.run_id and resumed.epoch == 1
    resumed.close()
    # a deliberate overwrite removes the old run's checkpoints and results once the new run is set up
    new = StandInTrainer(make_cfg(tmp_path, MAX_EPOCHS=1), overwrite=True)
    for name in ("last.pth", "best.pth", "results.json"):
        assert not (tmp_path / "run" / name).exists(), name
    new.train()
    assert load_checkpoint(tmp_path / "run" / "last.pth")["run_id"] == new.run_id
    assert load_checkpoint(tmp_path / "run" / "best.pth")["run_id"] == new.run_id


def test_temp_files_of_a_save_killed_midway_are_removed_at_start(tmp_path):
    import tempfile

    StandInTrainer(make_cfg(tmp_path, MAX_EPOCHS=1)).train()
    run = tmp_path / "run"
    # what atomic_open leaves when the process is killed before its rename (the writer's own naming)
    stale = [
        tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=run)[1]
        for name in ("last.pth", "best.pth", "results.json", "config.yaml")
    ]
    kept = [run / ".last.pth.notours.tmp", run / "last.pth.abcdefgh.tmp", run / ".other.pth.abcdefgh.tmp",
            run / ".last.pth.abcdefgh.tmp.bak"]  # fmt: skip
    for path in kept:
        path.write_bytes(b"not a temp file of this run's saves")
    resumed = StandInTrainer(make_cfg(tmp_path, MAX_EPOCHS=2), resume=True)
    assert not any(os.path.exists(path) for path in stale)
    assert all(path.is_file() for path in kept)
    assert "removed temp files an interrupted save left" in (run / "log.txt").read_text()
    resumed.train()
    assert load_checkpoint(run / "last.pth")["epoch"] == 2
