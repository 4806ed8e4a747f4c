"""The training loop: data -> model -> losses -> optimizer, with evaluation, checkpoints and resume.

``Trainer(cfg).train()`` runs a whole configured experiment and returns the final evaluation report. What
differs between tasks (data, model, evaluation, the metric that picks ``best.pth``, the report) comes from
the task object of ``MODEL.TASK`` (``reid_dff.tasks``); the ``build_*``/``evaluate`` methods delegate to it
and are the seams a test with a stand-in model/data overrides.

Resume is exact on CPU with a fixed seed: checkpoints are taken at epoch boundaries, and each epoch
starts a fresh loader iterator from the sampler state and RNG state stored at that boundary.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ..config import ConfigError, save_cfg
from ..data.image_check import image_list, removed_images_message
from ..errors import ReidDffError
from ..modeling.checkpoint import CheckpointError, load_checkpoint, load_model_weights, save_checkpoint
from ..modeling.losses import build_losses
from ..modeling.pretrained import read_state_dict
from ..tasks import Task, build_task
from ..utils import git_revision, seed_everything, setup_logger
from ..utils.progress import SmoothedEta, logs_above_bars
from ..utils.threads import configure_threads
from .amp import resolve_amp_dtype
from .checkpoint import (
    RESUME_MAY_CHANGE,
    capture_rng_state,
    check_training_checkpoint,
    restore_rng_state,
    resume_config_changes,
    unwrap_model,
)
from .launch import any_rank_true, get_rank, get_world_size, local_device, synchronize
from .optim import build_optimizer, build_scheduler
from .run_folder import (
    BEST_CHECKPOINT,
    LAST_CHECKPOINT,
    RunExistsError,
    existing_run_files,
    remove_earlier_run,
    remove_stale_temp_files,
    run_exists_message,
)


class NonFiniteLossError(ReidDffError, FloatingPointError):
    """The training loss became NaN or infinite; the run stopped without overwriting a checkpoint."""


def check_resumable_loader(loader) -> None:
    """Raise unless the training loader can save and restore its position (``state_dict``)."""
    if not (hasattr(loader, "state_dict") and hasattr(loader, "load_state_dict")):
        raise TypeError(
            f"the training loader ({type(loader).__name__}) has no state_dict()/load_state_dict(); exact "
            "resume needs the position after the last consumed batch (reid_dff.data.build_train_loader)"
        )


def detach_log_file(logger: logging.Logger, output_dir: str) -> None:
    """Remove and close the ``output_dir/log.txt`` handler that ``setup_logger`` attached."""
    log_path = os.path.abspath(os.path.join(output_dir, "log.txt"))
    for handler in list(logger.handlers):
        if getattr(handler, "_reid_dff_key", None) == log_path:  # the key setup_logger gives it
            logger.removeHandler(handler)
            handler.close()


class Trainer:
    """One configured training run on this process's rank (see :func:`reid_dff.engine.launch`).

    ``task``: the strategy of ``cfg.MODEL.TASK`` (default: built from the config). A new run (not
    ``resume``) in an ``OUTPUT_DIR`` that holds a run's checkpoints raises ``RunExistsError`` before
    writing anything, unless ``overwrite``: then that run's checkpoints and results are removed once this
    run is set up.
    """

    def __init__(self, cfg, resume: bool = False, task: Task | None = None, overwrite: bool = False):
        self.cfg = cfg
        self.task = task if task is not None else build_task(cfg)
        self.rank, self.world_size = get_rank(), get_world_size()
        self.is_main = self.rank == 0
        self.device = local_device(cfg)
        self.output_dir = cfg.OUTPUT_DIR
        self.resume = resume
        self.overwrite = overwrite and not resume
        existing = existing_run_files(self.output_dir) if self.is_main and not resume else []
        if any_rank_true(bool(existing) and not overwrite, self.device):  # before anything is written
            raise RunExistsError(run_exists_message(self.output_dir, existing))
        if self.is_main:
            os.makedirs(self.output_dir, exist_ok=True)
        self.logger = setup_logger(self.output_dir, rank=self.rank)
        self.logger.info(configure_threads(cfg).describe())  # before any torch work of this run
        if self.is_main:
            removed = remove_stale_temp_files(self.output_dir)
            if removed:
                self.logger.info("removed temp files an interrupted save left: %s", ", ".join(removed))
        self.check_config()  # what would otherwise fail only at the first evaluation
        # Every rank draws different augmentations; DDP broadcasts rank 0's initial weights.
        seed_everything(cfg.SEED + self.rank)

        self.prepare_data()
        self.train_set = self.check_images(self.build_train_set())
        self.num_classes = int(self.train_set.num_classes)
        self.train_loader = self.build_train_loader(self.train_set)
        check_resumable_loader(self.train_loader)

        model = self.build_model(self.num_classes)
        if cfg.MODEL.WEIGHTS and not resume:
            self.init_from_weights(model, cfg.MODEL.WEIGHTS)
        model = model.to(self.device)
        self.channels_last = bool(cfg.MODEL.CHANNELS_LAST)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if cfg.SOLVER.SYNC_BN and self.world_size > 1:
            if self.device.type != "cuda":
                raise ConfigError(
                    "SOLVER.SYNC_BN is True but this DDP run is on CPU; torch's SyncBatchNorm works on GPUs "
                    "only. Set SOLVER.SYNC_BN False for CPU runs"
                )
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model
        if self.world_size > 1:
            self.model = nn.parallel.DistributedDataParallel(
                model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                # Without the ID loss the BNNeck and classifier get no gradient, which DDP must be told.
                find_unused_parameters="cross_entropy" not in cfg.MODEL.LOSSES.NAMES,
            )
        self.criterion = build_losses(cfg)
        self.optimizer = build_optimizer(cfg, model)
        self.iters_per_epoch = self.compute_iters_per_epoch()
        self.scheduler = build_scheduler(cfg, self.optimizer, self.iters_per_epoch)
        self.amp_dtype = resolve_amp_dtype(cfg, self.device)  # None: no autocast
        self.use_amp = self.amp_dtype is not None
        # Only fp16 needs loss scaling; bf16 has float32's range.
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

        self.max_epochs = int(cfg.SOLVER.MAX_EPOCHS)
        self.selected: dict | None = None  # the task's record of the evaluation that picked best.pth
        self.epoch = 0  # epochs completed
        self.iteration = 0  # iterations completed
        self.best_metric = -math.inf
        # Names this run in its checkpoints, so a resume adopts only its own best.pth (not one left in
        # OUTPUT_DIR by an earlier run); --resume takes it over from last.pth.
        self.run_id: str | None = uuid.uuid4().hex
        self.loss_history: list[dict[str, float]] = []  # one entry per iteration run by this process
        self._tensorboard = None
        self._eta = SmoothedEta()
        if resume:
            self.resume_from(os.path.join(self.output_dir, LAST_CHECKPOINT))
        elif self.is_main and self.overwrite:
            removed = remove_earlier_run(self.output_dir)
            if removed:
                self.logger.warning(
                    "replaced the earlier run in %s: removed its %s", self.output_dir, removed
                )
        if self.is_main:  # only once the run is set up: a refused --resume keeps the run's config.yaml
            save_cfg(cfg, self.output_dir)
        self._loader_states = self.gather_loader_states()

    # -- seams (the task's, unless a subclass overrides them) ---------------
    def check_config(self) -> None:
        """Refuse settings that would otherwise fail only at the first evaluation."""
        self.task.check_config()

    def prepare_data(self) -> None:
        """Generate the synthetic data the config names when it is absent (rank 0 first)."""
        if self.is_main:
            self.task.prepare_data()
        synchronize()

    def build_train_set(self):
        """The training set (``.samples``, ``.num_classes``)."""
        return self.task.build_train_set()

    def check_images(self, train_set):
        """Check the run's image files up front (``DATALOADER.CHECK_IMAGES``, on rank 0): raise
        ``BadImagesError`` naming the bad ones, or (``ON_BAD_IMAGE skip``) return ``train_set`` without them."""
        from ..data.image_check import apply_bad_images, check_settings, find_run_bad_images

        check_settings(self.cfg)  # on every rank, before rank 0 checks the files
        found = [
            find_run_bad_images(self.cfg, train_set, self.task.evaluation_samples) if self.is_main else None
        ]
        if self.world_size > 1 and torch.distributed.is_initialized():
            torch.distributed.broadcast_object_list(found, src=0)  # every rank drops the same files
        assert found[0] is not None
        return apply_bad_images(self.cfg, train_set, *found[0])

    def build_train_loader(self, train_set):
        """This rank's training loader over an infinite, resumable sampler."""
        return self.task.build_train_loader(train_set, rank=self.rank, world_size=self.world_size)

    def build_model(self, num_classes: int) -> nn.Module:
        """The task's model with ``num_classes`` outputs; ImageNet-initialized unless a checkpoint
        (resume or ``MODEL.WEIGHTS``) replaces its backbone weights."""
        return self.task.build_model(num_classes, imagenet_init=not (self.resume or self.cfg.MODEL.WEIGHTS))

    def evaluate(self) -> dict:
        """Evaluate the current weights (the task's report); runs on rank 0 only."""
        return self.task.evaluate(unwrap_model(self.model), self.device)

    @property
    def class_noun(self) -> str:
        """What the classifier's outputs are, in the log."""
        return self.task.class_noun

    def compute_iters_per_epoch(self) -> int:
        """``SOLVER.ITERS_PER_EPOCH``, or one pass over the training images at the global batch size."""
        if self.cfg.SOLVER.ITERS_PER_EPOCH > 0:
            return int(self.cfg.SOLVER.ITERS_PER_EPOCH)
        return max(1, len(self.train_set.samples) // self.cfg.SOLVER.IMS_PER_BATCH)

    # -- checkpoints -------------------------------------------------------
    def checkpoint_state(self) -> dict:
        """Everything needed to continue this run exactly, as weights-only-loadable objects."""
        return {
            "model": unwrap_model(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            # Rank 0's position, plus every rank's (each DDP rank's sampler state names its rank).
            "sampler": self._loader_states[0],
            "sampler_per_rank": self._loader_states,
            "rng": capture_rng_state(),
            "epoch": self.epoch,
            "iteration": self.iteration,
            "num_classes": self.num_classes,
            "cfg": self.cfg.dump(),
            "git_revision": git_revision(),
            "best_metric": self.best_metric,
            "run_id": self.run_id,
            "train_images": image_list(self.train_set, self.cfg.DATASETS.ROOT),  # names lost files on resume
            **self.task.checkpoint_extras(self.selected),
        }

    def init_from_weights(self, model: nn.Module, path: str) -> None:
        """Fine-tuning: start from a reid-dff checkpoint's weights (``MODEL.WEIGHTS``; not with --resume,
        which restores ``last.pth``). Every key and shape must match, except the ID classifier when the
        checkpoint was trained on another number of identities: then it starts fresh."""
        weights = read_state_dict(load_checkpoint(path), what="reid-dff checkpoint (MODEL.WEIGHTS)")
        classifier = weights.get("classifier.weight")
        other_ids = classifier is None or classifier.shape[0] != self.num_classes
        report = load_model_weights(
            model,
            weights,
            ignore_classifier=other_ids,
            source=f"{path} (MODEL.WEIGHTS)",
            cfg=self.cfg,
            checkpoint=path,
        )
        self.logger.info(
            "initialized from MODEL.WEIGHTS %s: %d tensors loaded%s",
            path,
            len(report.loaded),
            f", classifier new ({len(report.new)} tensors: other identities)" if report.new else "",
        )

    def resume_from(self, path: str) -> None:
        """Restore model, optimizer, schedule, sampler, RNG and counters from a training checkpoint."""
        if not os.path.isfile(path):
            raise CheckpointError(f"cannot resume: {path} does not exist (no training run in OUTPUT_DIR)")
        state = load_checkpoint(path)
        check_training_checkpoint(state, path)
        changes = resume_config_changes(state["cfg"], self.cfg)
        if changes:
            listed = "; ".join(
                f"{key}: {old!r} in the checkpoint, {new!r} now" for key, old, new in changes[:5]
            )
            raise CheckpointError(
                f"{path} was written with another config ({len(changes)} key(s) differ: {listed}"
                f"{'; ...' if len(changes) > 5 else ''}). Resuming continues that run: use the config it was "
                f"started with ({os.path.join(self.output_dir, 'config.yaml')}, unless a later run in this folder "
                "replaced it; the checkpoint keeps a copy under 'cfg'), changing only "
                f"{', '.join(RESUME_MAY_CHANGE)}; or train a new run in another OUTPUT_DIR (MODEL.WEIGHTS {path} "
                "starts it from these weights)"
            )
        if state["num_classes"] != self.num_classes:
            raise CheckpointError(
                f"{path} was trained with {state['num_classes']} identities but the configured sources have "
                f"{self.num_classes}; resume with the same DATASETS.SOURCES"
            )
        load_model_weights(unwrap_model(self.model), state, source=f"{path} (resume)")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if "scaler" in state and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        per_rank = state.get("sampler_per_rank") or [state["sampler"]]
        if len(per_rank) != self.world_size:
            raise CheckpointError(
                f"{path} was written by a run with {len(per_rank)} processes but this run has "
                f"{self.world_size}; resume with the same number of processes"
            )
        current = image_list(self.train_set, self.cfg.DATASETS.ROOT)
        removed = removed_images_message(state.get("train_images", []), current)
        if removed:
            self.logger.warning("%s", removed)
        self.train_loader.load_state_dict(per_rank[self.rank])  # continues over changed data, warning
        self.epoch, self.iteration = int(state["epoch"]), int(state["iteration"])
        self.best_metric = float(state["best_metric"])
        # Checkpoints written before run ids have none: the run keeps none, so its own best.pth (also
        # without one) stays its record on every later resume.
        self.run_id = state.get("run_id")
        self.selected = state.get("selected")
        # With CHECKPOINT_PERIOD > EVAL_PERIOD, best.pth can be newer (and better) than last.pth: a
        # repeated epoch must beat that, not last.pth's stale record, to replace it. A best.pth of another
        # run (an earlier run in the same OUTPUT_DIR) is not this run's record and will be replaced.
        best_path = os.path.join(self.output_dir, BEST_CHECKPOINT)
        if os.path.isfile(best_path):
            best_state = load_checkpoint(best_path)
            same_run = best_state.get("run_id") == state.get("run_id")
            if same_run and float(best_state.get("best_metric", -math.inf)) > self.best_metric:
                self.adopt_best_record(best_state)
            elif not same_run:
                self.logger.warning(
                    "%s is from another run than %s; this run will replace it with its own best",
                    best_path,
                    path,
                )
        restore_rng_state(state["rng"])
        if self.rank:
            # The file holds rank 0's RNG; other ranks need their own (deterministic) augmentation streams.
            seed_everything(self.cfg.SEED + self.rank + 7919 * self.epoch)
        self.logger.info("resumed from %s at epoch %d (iteration %d)", path, self.epoch, self.iteration)

    def sync_buffers(self) -> None:
        """Give every rank rank 0's buffers (BN running statistics), the ones evaluated and saved.

        DDP broadcasts buffers at the start of each forward, so after the last step each rank holds
        statistics of its own last batch.
        """
        if self.world_size == 1:
            return
        import torch.distributed as dist

        for buffer in unwrap_model(self.model).buffers():
            dist.broadcast(buffer, src=0)

    def gather_loader_states(self) -> list[dict]:
        """Every rank's training-loader position, in rank order (a collective call under DDP)."""
        state = self.train_loader.state_dict()
        if self.world_size == 1:
            return [state]
        import torch.distributed as dist

        states: list[Any] = [None] * self.world_size
        dist.all_gather_object(states, state)
        return states

    def save(self, name: str) -> str:
        """Write ``OUTPUT_DIR/name`` atomically (rank 0 only); returns its path."""
        path = os.path.join(self.output_dir, name)
        if self.is_main:
            save_checkpoint(path, self.checkpoint_state())
        return path

    # -- the loop ----------------------------------------------------------
    def train(self) -> dict | None:
        """Train ``SOLVER.MAX_EPOCHS`` epochs, evaluate, write checkpoints and ``results.json``.

        Returns the final evaluation report on rank 0 (None on other ranks).
        """
        try:
            return self._train()
        finally:
            self.close()

    def _train(self) -> dict | None:
        cfg = self.cfg
        self.logger.info(
            "training %s for %d epochs x %d iterations on %s (world size %d, AMP %s), %d %s",
            cfg.MODEL.BACKBONE,
            self.max_epochs,
            self.iters_per_epoch,
            self.device,
            self.world_size,
            str(self.amp_dtype).replace("torch.", "") if self.use_amp else "off",
            self.num_classes,
            self.class_noun,
        )
        report, evaluated_final = None, False
        while self.epoch < self.max_epochs:
            self.train_one_epoch()
            self.epoch += 1
            skipped = getattr(self.train_loader, "num_skipped", 0)  # DATALOADER.ON_BAD_IMAGE skip
            if skipped:
                self.logger.warning(
                    "%d unreadable training images skipped so far (see the log above)", skipped
                )
            self.sync_buffers()
            self._loader_states = self.gather_loader_states()
            final = self.epoch == self.max_epochs
            period = cfg.TEST.EVAL_PERIOD
            if final or (period > 0 and self.epoch % period == 0):
                report, evaluated_final = self.evaluate_and_track(), final
            if final or self.epoch % max(1, cfg.SOLVER.CHECKPOINT_PERIOD) == 0:
                self.save(LAST_CHECKPOINT)
            synchronize()
        if not evaluated_final:  # a finished run resumed, or MAX_EPOCHS 0 (the untrained network)
            report = self.evaluate_and_track()
            # results.json names the weights it evaluated: a resumed finished run's last.pth holds them
            # already; a new run (MAX_EPOCHS 0) replaces whatever an earlier run left there.
            if not (self.resume and os.path.exists(os.path.join(self.output_dir, LAST_CHECKPOINT))):
                self.save(LAST_CHECKPOINT)
            synchronize()
        if self.is_main and report is not None:
            self.write_report(report)
        return report if self.is_main else None

    def adopt_best_record(self, best_state: dict) -> None:
        """On resume, take the selection record from a ``best.pth`` newer than ``last.pth``."""
        self.best_metric = float(best_state["best_metric"])
        self.selected = best_state.get("selected")

    def evaluate_and_track(self) -> dict | None:
        """Evaluate on rank 0, log, and write ``best.pth`` when the task's selection metric improves."""
        report = None
        if self.is_main:
            self.model.eval()
            try:
                with torch.no_grad():
                    report = self.evaluate()
            finally:
                self.model.train()
            metric = self.task.selection_score(report, self.epoch)
            self.logger.info("%s", self.task.describe_evaluation(report, self.epoch, self.best_metric))
            writer = self.tensorboard()
            if writer is not None:
                for tag, value in self.task.eval_scalars(report).items():
                    writer.add_scalar(tag, value, self.iteration)
            if self.cfg.TEST.MASK_STATS:  # mask diagnostics (no-op for models without masks)
                from ..evaluation.mask_stats import mask_stats_for_run

                model, samples = unwrap_model(self.model), self.train_set.samples
                mask_stats_for_run(self.cfg, model, samples, self.device, writer, self.iteration)
            # None: this evaluation may not pick a model (e.g. classification without a val split).
            if metric is not None and metric > self.best_metric:
                self.best_metric = metric
                self.selected = self.task.selection_record(report, self.epoch)
                self.save(BEST_CHECKPOINT)
        synchronize()
        return report

    def write_report(self, report: dict) -> None:
        """Print the final table and write ``OUTPUT_DIR/results.json``."""
        from ..evaluation import attach_run_info, write_results

        self.task.finish_report(report, self.epoch, self.selected)
        attach_run_info(report, self.cfg, os.path.join(self.output_dir, LAST_CHECKPOINT))
        path = write_results(report, self.output_dir)
        self.logger.info("final evaluation (written to %s):\n%s", path, self.task.format_report(report))

    def _epoch_batches(self) -> Iterator[dict]:
        """Exactly ``iters_per_epoch`` batches from a fresh pass of the training loader."""
        # Workers read ahead of what the last epoch consumed; rewinding the loader to its consumed position
        # makes an uninterrupted run draw the same batches as one resumed from this boundary.
        self.train_loader.load_state_dict(self.train_loader.state_dict())
        loader_iter = iter(self.train_loader)
        try:
            for _ in range(self.iters_per_epoch):
                yield next(loader_iter)
        finally:
            close = getattr(loader_iter, "close", None)
            if close is not None:
                close()

    def train_one_epoch(self) -> None:
        """Run ``iters_per_epoch`` optimization steps."""
        with logs_above_bars():  # log lines above the progress bar, not inside it
            self._run_epoch()

    def _run_epoch(self) -> None:
        from tqdm import tqdm

        cfg = self.cfg
        self.model.train()
        progress = tqdm(
            self._epoch_batches(),
            total=self.iters_per_epoch,
            desc=f"epoch {self.epoch + 1}/{self.max_epochs}",
            # None hides the bar on non-terminals (log files, CI); the log lines carry the same numbers.
            disable=True if not self.is_main else None,
            dynamic_ncols=True,
        )
        window_start, window_images, window_iters = time.perf_counter(), 0, 0
        for step, batch in enumerate(progress):
            images = batch["images"].to(self.device, non_blocking=True)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            targets = batch["pids"].to(self.device, non_blocking=True)
            with torch.autocast("cuda", dtype=self.amp_dtype) if self.use_amp else contextlib.nullcontext():
                outputs = self.model(images)
                losses = self.criterion(outputs, targets)
            loss = sum(losses.values())
            self.check_finite(loss, losses)

            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if cfg.SOLVER.CLIP_GRAD_NORM > 0:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), cfg.SOLVER.CLIP_GRAD_NORM)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            lr = self.optimizer.param_groups[0]["lr"]
            self.scheduler.step()
            self.iteration += 1

            values = {k: float(v.detach()) for k, v in losses.items()}
            values["loss"] = float(loss.detach())
            self.loss_history.append(values)
            window_images += images.shape[0] * self.world_size
            window_iters += 1
            if not self.is_main:
                continue
            elapsed = time.perf_counter() - window_start
            speed = window_images / max(elapsed, 1e-9)
            progress.set_postfix(
                {**{k: f"{v:.3f}" for k, v in values.items()}, "lr": f"{lr:.2e}", "img/s": f"{speed:.1f}"}
            )
            if (step + 1) % max(1, cfg.SOLVER.LOG_PERIOD) == 0 or step + 1 == self.iters_per_epoch:
                self._eta.update(elapsed, window_iters)
                self.log_iteration(values, lr, speed)
                window_start, window_images, window_iters = time.perf_counter(), 0, 0

    def log_iteration(self, values: dict[str, float], lr: float, speed: float) -> None:
        """One log line and TensorBoard scalars for the current iteration."""
        # Smoothed seconds per training iteration (SmoothedEta) times the iterations left.
        eta = self._eta.eta(self.max_epochs * self.iters_per_epoch - self.iteration)
        terms = "  ".join(f"{k} {v:.4f}" for k, v in values.items())
        self.logger.info(
            "epoch %d/%d iter %d  %s  lr %.2e  %.1f img/s  eta %s",
            self.epoch + 1,
            self.max_epochs,
            self.iteration,
            terms,
            lr,
            speed,
            time.strftime("%H:%M:%S", time.gmtime(eta)),
        )
        writer = self.tensorboard()
        if writer is not None:
            for key, value in values.items():
                writer.add_scalar(f"train/{key}", value, self.iteration)
            writer.add_scalar("train/lr", lr, self.iteration)
            writer.add_scalar("train/images_per_second", speed, self.iteration)

    def check_finite(self, loss: torch.Tensor, losses: dict[str, torch.Tensor]) -> None:
        """Stop every rank together when the loss is NaN/inf; checkpoints on disk stay untouched."""
        bad = not bool(torch.isfinite(loss.detach()))
        if any_rank_true(bad, self.device):
            terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in losses.items())
            raise NonFiniteLossError(
                f"non-finite loss at iteration {self.iteration + 1} (epoch {self.epoch + 1}) on rank "
                f"{self.rank}: {terms}. The last good checkpoint "
                f"{os.path.join(self.output_dir, LAST_CHECKPOINT)} was not overwritten; lower SOLVER.BASE_LR, "
                "set SOLVER.CLIP_GRAD_NORM, or check the input data, then resume the run"
            )

    def tensorboard(self):
        """The rank-0 SummaryWriter under ``OUTPUT_DIR/tensorboard``, created on first use."""
        if not self.is_main:
            return None
        if self._tensorboard is None:
            # Imported here so that a missing tensorboard only matters to runs that log to it.
            from torch.utils.tensorboard import SummaryWriter

            self._tensorboard = SummaryWriter(os.path.join(self.output_dir, "tensorboard"))
        return self._tensorboard

    def close(self) -> None:
        """Close the TensorBoard writer and this run's ``log.txt`` handler (later runs log elsewhere)."""
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None
        detach_log_file(self.logger, self.output_dir)
