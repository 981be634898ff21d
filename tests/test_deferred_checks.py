"""The step's checks on an accelerator: on the device, read only on logging steps and epoch ends.

On a GPU, reading a value back waits for every queued kernel. The task therefore reads its
label, image and loss checks only where Lightning reads the device anyway. Here the CPU
plays an accelerator (``_guard.queued`` says its work is queued), so the deferred path runs
for real; ``tests/test_gpu.py`` counts the actual device syncs on a GPU.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from classic_cnns import LeNet5, _guard

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _deferred(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_guard, "queued", lambda device: True)


def _trainer(**kw: Any) -> L.Trainer:
    return L.Trainer(
        **{
            "max_epochs": 1,
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
            "log_every_n_steps": 50,
            **kw,
        }
    )


def _batches(n_batches: int = 6, bad: dict[int, tuple[str, float]] | None = None) -> DataLoader:
    # 8-image batches; bad={batch: ("image" | "label", value)} spoils one value of a batch.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8 * n_batches, 1, 32, 32, generator=g)
    y = torch.randint(0, 10, (8 * n_batches,), generator=g)
    for batch, (what, value) in (bad or {}).items():
        if what == "image":
            x[batch * 8 + 3, 0, 5, 7] = value
        else:
            y[batch * 8 + 1] = int(value)
    return DataLoader(TensorDataset(x, y), batch_size=8)


class _Host(torch.Tensor):
    """A tensor copied to the host (by ``.cpu()``): reading it back waits for nothing."""

    def __deepcopy__(self, memo: dict[int, Any]) -> torch.Tensor:  # checkpoints copy metrics
        return self.clone()


class _Reads(L.Callback):
    """Counts the tensor-to-Python reads (each a device sync on a GPU) of each training batch:
    from its start to the next one's, so Lightning's own work after the step (its logger
    connector, the progress bar) counts too; the last batch's run to the epoch's end. Here
    the CPU plays the device, so ``.cpu()`` counts as a read, and gives a tensor marked as
    on the host (``_Host``, which torch's operations pass on): reading that one is free."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.per_step: list[int] = []
        self._inside = False
        for name in ("item", "tolist", "__bool__", "__float__", "__int__", "cpu", "numpy"):
            original = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._counting(original, name == "cpu"))

    def on_train_batch_start(self, *args: Any) -> None:
        self.per_step.append(0)
        self._inside = True

    def on_train_epoch_end(self, *args: Any) -> None:
        self._inside = False

    def _counting(self, original: Any, to_host: bool) -> Any:
        def read(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if self._inside and not isinstance(tensor, _Host):
                self.per_step[-1] += 1
            out = original(tensor, *args, **kwargs)
            return out.as_subclass(_Host) if to_host else out

        return read


def test_the_training_step_reads_the_device_only_on_logging_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Steps 3 and 6 log the loss and read the pending checks; step 6 ends the epoch. The
    # steps after a logging step read nothing either (progress bar shown): Lightning turns its
    # values into numbers at every batch's end, so the task logs one already on the host.
    reads = _Reads(monkeypatch)
    trainer = _trainer(
        log_every_n_steps=3, max_epochs=2, callbacks=[reads], enable_progress_bar=True
    )
    trainer.fit(LeNet5(scheduler="none"), train_dataloaders=_batches(6))
    assert [n > 0 for n in reads.per_step] == [False, False, True, False, False, True] * 2


def test_eager_checks_read_every_step_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_guard, "queued", lambda device: False)
    reads = _Reads(monkeypatch)
    _trainer(callbacks=[reads]).fit(LeNet5(scheduler="none"), train_dataloaders=_batches(3))
    assert all(n > 0 for n in reads.per_step) and len(reads.per_step) == 3


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_non_finite_batch_is_reported_with_its_step_at_the_next_read(value: float) -> None:
    # Spoilt at step 1, read at the end of step 3 (log_every_n_steps=3).
    with pytest.raises(
        ValueError,
        match=r"^lenet5: the train batch 1 of epoch 0 \(global step 1\) has NaN or infinite "
        r"image values; expected finite images \(checked without waiting for the device, so "
        r"found later\)\. Check the data and its transform, or pass nonfinite='skip'",
    ):
        _trainer(log_every_n_steps=3).fit(
            LeNet5(scheduler="none"), train_dataloaders=_batches(6, {1: ("image", value)})
        )


def test_the_first_problem_of_an_epoch_is_reported_at_its_end() -> None:
    # No logging step in a 6-step epoch with log_every_n_steps=50: read at the epoch end.
    trainer = _trainer()
    with pytest.raises(ValueError, match=r"the train batch 2 of epoch 0 \(global step 2\)"):
        trainer.fit(
            LeNet5(scheduler="none"),
            train_dataloaders=_batches(6, {2: ("image", math.nan), 4: ("image", math.inf)}),
        )
    assert trainer.global_step == 6  # the epoch ran to its end before the read


@pytest.mark.parametrize(
    ("label", "low", "high"),
    # Batch 4's other labels run from 0 to 9; num_classes (10) and -1 are the nearest bad ones.
    [(12, 0, 12), (10, 0, 10), (-1, -1, 9)],
)
def test_labels_out_of_range_are_clamped_then_reported(label: int, low: int, high: int) -> None:
    with pytest.raises(
        ValueError,
        match=rf"^labels must lie in \[0, 10\); got values from {low} to {high} \(the train "
        r"batch 4 of epoch 0 \(global step 4\)\)$",
    ):
        _trainer().fit(
            LeNet5(scheduler="none"), train_dataloaders=_batches(6, {4: ("label", label)})
        )


@pytest.mark.parametrize("stage", ["validate", "test"])
def test_evaluation_problems_are_reported_at_the_epoch_end(stage: str) -> None:
    loader = _batches(3, {1: ("label", -1)})
    where = r"the (val|test) batch 1 \(after 0 training steps, epoch 0\)"
    with pytest.raises(ValueError, match=rf"got values from -1 to 9 \({where}\)$"):
        getattr(_trainer(), stage)(LeNet5(), loader, verbose=False)


def test_a_diverging_loss_is_reported_with_the_learning_rate() -> None:
    model = LeNet5(arch="lenet5_modern", scheduler="none")
    with torch.no_grad():
        model.net.fc.bias[0] = math.inf
    with pytest.raises(
        ValueError,
        match=r"the loss of the train batch 0 of epoch 0 \(global step 0\) is NaN or infinite; "
        r"expected a finite number.*found later.*learning rate \(lr=0\.1\)",
    ):
        _trainer().fit(model, train_dataloaders=_batches(2))


def test_skip_decides_at_each_step_and_leaves_the_batch_out(tmp_path: Path) -> None:
    # "skip" must know before the update, so it reads the device at once even here.
    model = LeNet5(scheduler="none", nonfinite="skip")
    trainer = _trainer(logger=CSVLogger(tmp_path), log_every_n_steps=1)
    with pytest.warns(UserWarning, match=r"batch 1 of epoch 0 \(global step 1\) has 1 NaN or"):
        trainer.fit(model, train_dataloaders=_batches(3, {1: ("image", math.nan)}))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # The skipped step logs no loss: Lightning's cache logged the step before's again.
    with open(tmp_path / "lightning_logs" / "version_0" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["train_loss_step"]]
    assert [r["step"] for r in rows] == ["0", "2"]


def test_an_epoch_whose_every_batch_was_skipped_says_its_metrics_are_missing() -> None:
    # All skipped: no val_loss, and a ModelCheckpoint(monitor="val_loss") then blamed the user's
    # logging ("Did you call log('val_loss', value)?"). Now a warning names the cause.
    model = LeNet5(scheduler="none", nonfinite="skip")
    every = _batches(2, {0: ("image", math.nan), 1: ("image", math.inf)})
    with pytest.warns(UserWarning) as caught:
        _trainer().validate(model, dataloaders=every, verbose=False)
    said = [str(w.message) for w in caught if "all 2 val batches" in str(w.message)]
    assert said == [
        "lenet5: all 2 val batches of epoch 0 were skipped as non-finite (nonfinite='skip'; the "
        "warnings above say why), so no val_loss or other val_* metric is logged for the "
        "epoch: a ModelCheckpoint or EarlyStopping monitoring one will find it missing"
    ]
    trainer = _trainer(max_epochs=2)
    with pytest.warns(UserWarning) as caught:  # training too, once per epoch
        trainer.fit(model, train_dataloaders=every)
    said = [
        str(w.message).split(" were")[0] for w in caught if "batches of epoch" in str(w.message)
    ]
    assert said == [f"lenet5: all 2 train batches of epoch {e}" for e in (0, 1)]
    assert "train_loss" not in trainer.callback_metrics
    # One batch of two skipped: the other is logged, and nothing more is said.
    with pytest.warns(UserWarning) as caught:
        metrics = _trainer().validate(model, dataloaders=_batches(2, {1: ("image", math.nan)}))
    assert not [w for w in caught if "batches of epoch" in str(w.message)]
    assert math.isfinite(metrics[0]["val_loss"])


def test_soft_labels_out_of_range_are_clamped_then_reported() -> None:
    # MixUp's soft labels (N, C) with one value spoilt at step 3: the step runs on clamped
    # probabilities without reading the device, and the epoch's end reports the step.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 1, 32, 32, generator=g)
    q = torch.softmax(torch.randn(48, 10, generator=g), dim=1)
    q[3 * 8 + 2, 4] = math.nan
    guard = _guard.StepGuard(num_classes=10)
    at = _guard.At("train", 3, 0, 3)
    clamped = guard.labels(q[24:32], at, eager=False)
    assert torch.isfinite(clamped).all() and guard.pending() == ("soft labels", at, 0, 0)
    with pytest.raises(
        ValueError,
        match=r"^soft labels must be class probabilities, in \[0, 1\] and summing to 1 per "
        r"image; the train batch 3 of epoch 0 \(global step 3\) had a value outside, a row summing "
        r"to another total, or NaN$",
    ):
        _trainer().fit(
            LeNet5(scheduler="none"),
            train_dataloaders=DataLoader(TensorDataset(x, q), batch_size=8),
        )


@pytest.mark.parametrize("total", [0.0, 3.0])
def test_soft_labels_that_do_not_sum_to_one_are_refused(total: float) -> None:
    # Values in [0, 1] but rows summing to 0 (nothing to learn) or 3 (a tripled loss).
    y = torch.full((8, 10), total / 10)
    guard = _guard.StepGuard(num_classes=10)
    at = _guard.At("train", 2, 0, 2)
    guard.labels(y, at, eager=False)
    assert guard.pending() == ("soft labels", at, 0, 0)
    with pytest.raises(
        ValueError, match=rf"summing to 1 per image; got rows summing to {total:g} to {total:g}$"
    ):
        _guard.check_label_values(y, 10)
    # Rounded probabilities pass: bf16 MixUp labels (a mix of two one-hot rows).
    mixed = 0.37 * F.one_hot(torch.arange(8) % 10, 10) + 0.63 * F.one_hot(torch.arange(8) + 1, 10)
    _guard.check_label_values(mixed.to(torch.bfloat16), 10)


def test_the_record_keeps_every_step_until_read_and_reports_the_first_problem() -> None:
    # 200 steps between reads (a long evaluation epoch) outgrow the record's first rows twice;
    # the first problem is reported, with a label too large for float32 read back exactly.
    guard = _guard.StepGuard(num_classes=10)
    x, y, loss = torch.zeros(2, 1, 4, 4), torch.tensor([0, 9]), torch.tensor(0.5)
    at = [_guard.At("val", batch, 1, 40) for batch in range(200)]
    for i in range(200):
        guard.labels(torch.tensor([3, 2**40 + 1]) if i == 170 else y, at[i], eager=False)
        guard.images(torch.full_like(x, -math.inf) if i == 190 else x, at[i], eager=False)
        guard.loss(torch.tensor(math.nan) if i in (150, 160) else loss, at[i], eager=False)
    assert guard.pending() == ("loss", at[150], 0, 0)
    assert guard.pending() is None  # read and cleared
    for i in range(100):
        guard.labels(torch.tensor([3, 2**40 + 1]) if i == 99 else y, at[i], eager=False)
        guard.images(torch.full_like(x, math.nan) if i == 98 else x, at[i], eager=False)
    assert guard.pending() == ("images", at[98], 0, 0)
    guard.labels(torch.tensor([3, 2**40 + 1]), at[7], eager=False)
    assert guard.pending() == ("labels", at[7], 3, 2**40 + 1)


def test_the_cli_fit_reads_the_device_only_on_logging_steps_and_epoch_ends(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # `classic-cnns fit` with its defaults: a logger, the progress bar, checkpoints, the plots.
    from classic_cnns import cli

    reads = _Reads(monkeypatch)
    defaults = cli.with_default_callbacks
    monkeypatch.setattr(cli, "with_default_callbacks", lambda *a: [*defaults(*a), reads])
    argv = ["fit", "--model", "lenet5", "--data", "Digits", "--data.val_size", "0.2"]
    argv += ["--trainer.max_epochs", "2", "--trainer.log_every_n_steps", "4"]
    assert cli.main([*argv, "--trainer.default_root_dir", str(tmp_path)]) == 0
    # 9 steps an epoch; every 4th step logs (global steps 3, 7, 11, 15), steps 8 and 17 end
    # the epochs (and validate).
    read = [step for step, n in enumerate(reads.per_step) if n > 0]
    assert read == [3, 7, 8, 11, 15, 17] and len(reads.per_step) == 18
