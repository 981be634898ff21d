"""The task under Lightning's own tuning and monitoring callbacks.

``BatchSizeFinder`` and ``LearningRateFinder`` run at the start of ``fit``, after
``configure_optimizers`` made the optimizer and LR schedule for the batch size and ``lr`` of
then; ``LearningRateMonitor`` logs each parameter group under its name; ``ModelCheckpoint``
and ``EarlyStopping`` can monitor the step's loss, ``train_loss_step``.
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import pytest
from lightning.pytorch.callbacks import (
    BatchSizeFinder,
    EarlyStopping,
    LearningRateFinder,
    LearningRateMonitor,
    ModelCheckpoint,
)
from lightning.pytorch.core.saving import load_hparams_from_yaml
from lightning.pytorch.loggers import CSVLogger

from classic_cnns import Digits, LeNet5

pytestmark = pytest.mark.usefixtures("one_thread")


def _trainer(tmp_path: Path, *callbacks: L.Callback, **kwargs: object) -> L.Trainer:
    saves = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    kwargs = {"max_epochs": 1, **kwargs}
    return L.Trainer(
        accelerator="cpu", logger=CSVLogger(tmp_path), enable_checkpointing=saves,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        limit_val_batches=0, callbacks=list(callbacks), **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.parametrize("scheduler", ["cosine", "onecycle"])
def test_a_batch_size_finder_callback_gets_a_schedule_for_the_run_it_chose(
    scheduler: str, tmp_path: Path
) -> None:
    # The schedule was made for batch 32 (41 steps); the finder chose 8 (162 steps): cosine
    # went back up after 41 steps, and one-cycle raised "Tried to step 42 times".
    L.seed_everything(0, verbose=False)
    model, dm = LeNet5(optimizer="sgd", lr=0.1, scheduler=scheduler), Digits(batch_size=32)
    finder = BatchSizeFinder(mode="power", init_val=8, max_trials=1, steps_per_trial=1)
    trainer = _trainer(tmp_path, finder)
    trainer.fit(model, dm)
    assert dm.batch_size == 8 and trainer.global_step == len(dm.train_dataloader()) > 41
    sched = trainer.lr_scheduler_configs[0].scheduler
    planned = sched.T_max if scheduler == "cosine" else sched.total_steps  # type: ignore[attr-defined]
    assert planned == trainer.global_step == model.schedule_steps
    lrs = [g["lr"] for g in trainer.optimizers[0].param_groups]
    assert max(lrs) < 1e-3  # the end of the schedule, not a second cycle


@pytest.mark.parametrize("scheduler", ["onecycle", "none"])
def test_a_learning_rate_finder_callback_s_rate_is_the_one_trained_with(
    scheduler: str, tmp_path: Path
) -> None:
    # One-cycle kept the max_lr it was made with (0.1) while the checkpoint recorded the
    # suggestion; every group took the suggestion, the backbone's lower rate lost.
    L.seed_everything(0, verbose=False)
    model = LeNet5(optimizer="sgd", lr=0.1, backbone_lr=0.01, scheduler=scheduler)
    finder = LearningRateFinder(num_training_steps=20, early_stop_threshold=None)
    trainer = _trainer(tmp_path, finder, limit_train_batches=30)
    with warnings.catch_warnings():  # the finder's own restore is no resume to warn of
        warnings.filterwarnings("error", ".*the checkpoint's settings")
        trainer.fit(model, Digits(batch_size=16))
    suggested = model.hparams.lr
    assert suggested != 0.1 and finder.optimal_lr.suggestion() == suggested
    groups = trainer.optimizers[0].param_groups
    rates = [g["max_lr" if scheduler == "onecycle" else "lr"] for g in groups]
    names = [g["name"] for g in groups]
    assert dict(zip(names, rates, strict=True)) == pytest.approx(
        {"backbone": 0.01, "backbone_no_decay": 0.01, "head": suggested, "head_no_decay": suggested}
    )
    # The logger's hyperparameters, logged before the finder ran, had lr 0.1: logged again
    # with the suggestion, which a test on the trainer (logging them once more) keeps.
    trainer.test(model, Digits(batch_size=16), verbose=False)
    logged = load_hparams_from_yaml(Path(trainer.log_dir) / "hparams.yaml")
    assert logged["lr"] == model.hparams_initial.lr == suggested


def test_the_learning_rate_monitor_names_each_parameter_group(tmp_path: Path) -> None:
    model = LeNet5(optimizer="sgd", lr=0.1, backbone_lr=0.01, scheduler="none")
    trainer = _trainer(tmp_path, LearningRateMonitor(), limit_train_batches=2, log_every_n_steps=1)
    trainer.fit(model, Digits(batch_size=16))
    with open(Path(trainer.log_dir) / "metrics.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("lr-SGD/head")]
    assert rows and not [k for k in rows[0] if "pg" in k]  # not lr-SGD/pg1 ... pg4
    expected = {"backbone": 0.01, "backbone_no_decay": 0.01, "head": 0.1, "head_no_decay": 0.1}
    assert {n: float(rows[-1][f"lr-SGD/{n}"]) for n in expected} == expected


class _StepLosses(L.Callback):
    """Each training step's loss, and ``train_loss_step`` as the callbacks saw it then."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.seen: list[float | None] = []

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self.losses.append(float(args[1]["loss"]))  # outputs
        seen = trainer.callback_metrics.get("train_loss_step")
        self.seen.append(None if seen is None else float(seen))


def _logged_steps(trainer: L.Trainer) -> list[int]:
    with open(Path(trainer.log_dir) / "metrics.csv", newline="", encoding="utf-8") as f:
        return [int(r["step"]) for r in csv.DictReader(f) if r.get("train_loss_step")]


def test_the_step_loss_is_logged_on_logging_steps_unless_a_callback_monitors_it(
    tmp_path: Path,
) -> None:
    # Unmonitored: logged on the logging steps only (a self.log call costs about 2 ms).
    steps = _StepLosses()
    trainer = _trainer(tmp_path / "a", steps, limit_train_batches=8, log_every_n_steps=4)
    trainer.fit(LeNet5(), Digits(batch_size=16))
    assert _logged_steps(trainer) == [3, 7]
    assert steps.seen[3] == steps.losses[3] and steps.seen[5] == steps.losses[3]  # stale
    # Monitored by a checkpoint every 2 steps: every step's own loss, and the best saved.
    L.seed_everything(0, verbose=False)
    steps = _StepLosses()
    best = ModelCheckpoint(tmp_path / "ckpt", monitor="train_loss_step", every_n_train_steps=2)
    trainer = _trainer(tmp_path / "b", steps, best, limit_train_batches=8, log_every_n_steps=4)
    trainer.fit(LeNet5(), Digits(batch_size=16))
    assert steps.seen == steps.losses
    assert best.best_model_path and best.best_model_score is not None
    assert math.isclose(float(best.best_model_score), min(steps.losses[1::2]), rel_tol=1e-6)
    # Early stopping on it at the epoch's end: it exists although no logging step came.
    stop = EarlyStopping("train_loss_step", check_on_train_epoch_end=True, patience=0)
    trainer = _trainer(tmp_path / "c", stop, limit_train_batches=3, max_epochs=3)
    trainer.fit(LeNet5(), Digits(batch_size=16))
    assert stop.best_score.isfinite()


def test_the_progress_bar_shows_each_epoch_its_own_figures(tmp_path: Path) -> None:
    # The task logs the epoch's training metrics in on_train_epoch_end, which Lightning runs
    # after the bar's last update of the epoch: the bar ended epoch 2 with epoch 1's
    # train_loss. It shows the step's loss instead, and the epoch's validation figures.
    from lightning.pytorch.callbacks import TQDMProgressBar

    class Shown(TQDMProgressBar):
        def __init__(self) -> None:
            super().__init__()
            self.shown: list[dict[str, Any]] = []

        def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            super().on_train_epoch_end(trainer, pl_module)
            self.shown.append(dict(self.get_metrics(trainer, pl_module)))

    L.seed_everything(0, verbose=False)
    bar = Shown()
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=3, logger=CSVLogger(tmp_path), callbacks=[bar],
        enable_checkpointing=False, enable_model_summary=False, log_every_n_steps=1,
    )  # fmt: skip
    trainer.fit(LeNet5(), Digits(batch_size=128))
    assert trainer.log_dir is not None
    with (Path(trainer.log_dir) / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    for epoch, shown in enumerate(bar.shown):
        assert {"train_loss_step", "val_loss", "val_acc"} <= set(shown)
        assert not {"train_loss", "train_acc"} & set(shown)
        (val,) = [r for r in rows if r["epoch"] == str(epoch) and r["val_loss"]]
        assert shown["val_loss"] == pytest.approx(float(val["val_loss"]), rel=1e-6)
        last_step = [r for r in rows if r["epoch"] == str(epoch) and r["train_loss_step"]][-1]
        assert shown["train_loss_step"] == pytest.approx(float(last_step["train_loss_step"]))
