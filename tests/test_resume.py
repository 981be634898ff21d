"""Exact resume and reproducibility on the CPU.

A run stopped after N steps and resumed from its checkpoint ends with the same weights,
optimizer state, learning rate and training, validation and test metrics as the
uninterrupted run, bit for bit: the checkpoint holds the loops, the optimizer and the LR
schedule (Lightning), the train loader's seed and position
(:class:`~classic_cnns.data.sampling.ResumableDataLoader`) and, with
:class:`~classic_cnns.resume.ExactResume`, the random state that dropout draws from and
what the training metrics of an epoch interrupted mid-way had summed. Two runs with the same
seed and ``deterministic=True`` are bit-identical.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import (
    EMAWeightAveraging,
    ModelCheckpoint,
    StochasticWeightAveraging,
)
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import TensorDataset

from classic_cnns import Digits, FashionMNIST, UnfreezeBackbone, create_model, load_model
from classic_cnns.checkpoint import AtomicCheckpointIO, ExactResume
from classic_cnns.cli import main
from classic_cnns.data.sampling import EpochShuffleSampler, ResumableDataLoader
from classic_cnns.files import CheckpointError

EPOCHS = 2
STEPS_PER_EPOCH = 11  # 1,294 Digits training images in batches of 128


pytestmark = pytest.mark.usefixtures("one_thread")


class _Crash(L.Callback):
    """Kill the run when it is about to take step ``at`` (after that step's checkpoint)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step == self.at:
            raise KeyError(f"simulated crash before step {self.at}")


RECIPES: dict[str, dict[str, Any]] = {
    # Batch norm buffers, AdamW moments and the one-cycle schedule, at 32x32.
    "lenet5_bn": {
        "model": {"optimizer": "adamw", "scheduler": "onecycle", "lr": 0.01},
        "image_size": 32,
    },
    # Fine-tuning: the backbone (batch norm too) frozen for the first epoch, then trained.
    "lenet5_bn+unfreeze": {
        "arch": "lenet5_bn",
        "model": {"optimizer": "adamw", "scheduler": "onecycle", "lr": 0.01},
        "image_size": 32,
        "callbacks": lambda: [UnfreezeBackbone(after_epochs=1)],
    },
    # Dropout (0.5 between the mlpconv blocks, given: the test is of the dropout RNG, whatever
    # the default), SGD momentum and cosine decay, at 8x8.
    # (4 of the 11 batches per epoch, to keep it quick: limit_train_batches resumes too.)
    "nin": {
        "model": {"optimizer": "sgd", "scheduler": "cosine", "lr": 0.05, "dropout": 0.5},
        "image_size": 8,
        "limit_train_batches": 4,
    },
}


def _run(
    arch: str,
    root: Path,
    *,
    seed: int = 0,
    crash_at: int | None = None,
    ckpt_path: Path | None = None,
    every: int | None = None,
    num_workers: int = 0,
    epochs: int = EPOCHS,
) -> tuple[L.Trainer, Any]:
    recipe = RECIPES[arch]
    L.seed_everything(seed, verbose=False)
    model = create_model(recipe.get("arch", arch), num_classes=10, in_channels=1, **recipe["model"])
    dm = Digits(batch_size=128, image_size=recipe["image_size"], num_workers=num_workers)
    callbacks: list[L.Callback] = [ExactResume(), *recipe.get("callbacks", list)()]
    if every is not None:
        callbacks.append(ModelCheckpoint(dirpath=root, every_n_train_steps=every, save_top_k=-1))
    if crash_at is not None:
        callbacks.append(_Crash(crash_at))
    trainer = L.Trainer(
        max_epochs=epochs,
        deterministic=True,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        enable_checkpointing=every is not None,
        default_root_dir=root,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        limit_train_batches=recipe.get("limit_train_batches"),
    )
    if crash_at is not None:
        with pytest.raises(KeyError, match="simulated crash"):
            trainer.fit(model, datamodule=dm)
        return trainer, {}
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    record = _final(trainer)  # before test() replaces the callback metrics
    record["test"] = trainer.test(model, datamodule=dm, verbose=False)[0]
    return trainer, record


def _steps(arch: str) -> int:
    return EPOCHS * RECIPES[arch].get("limit_train_batches", STEPS_PER_EPOCH)


def _final(trainer: L.Trainer) -> dict[str, Any]:
    model = trainer.lightning_module
    optimizer = trainer.optimizers[0].state_dict()
    return {
        "weights": {k: v.clone() for k, v in model.state_dict().items()},
        "optimizer": [dict(s) for s in optimizer["state"].values()],
        "lr": [g["lr"] for g in trainer.optimizers[0].param_groups],
        "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
        "step": trainer.global_step,
    }


def _assert_identical(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["step"] == b["step"]
    for key, value in a["weights"].items():
        assert torch.equal(value, b["weights"][key]), f"weights differ at {key}"
    for sa, sb in zip(a["optimizer"], b["optimizer"], strict=True):
        for key in sa:
            assert torch.equal(torch.as_tensor(sa[key]), torch.as_tensor(sb[key])), key
    assert a["lr"] == b["lr"]
    # The last epoch's train_loss and train_acc too, where the run was stopped in that epoch:
    # they covered only the batches after the resume (torchmetrics states are not in
    # Lightning checkpoints; ExactResume keeps them).
    assert a["metrics"] == b["metrics"]
    assert {"val_loss", "val_acc", "train_loss", "train_acc"} <= set(a["metrics"])
    assert a["test"] == b["test"] and "test_acc" in a["test"]


_REFERENCE: dict[str, dict[str, Any]] = {}


def _reference(arch: str, root: Path) -> dict[str, Any]:
    if arch not in _REFERENCE:
        _REFERENCE[arch] = _run(arch, root / f"reference-{arch}")[1]
    return _REFERENCE[arch]


@pytest.mark.slow
@pytest.mark.parametrize(
    "arch,stop",
    [
        ("lenet5_bn", 5),  # in the middle of the first epoch
        ("lenet5_bn", STEPS_PER_EPOCH),  # at the epoch boundary
        ("lenet5_bn", STEPS_PER_EPOCH + 4),  # in the middle of the last epoch
        # Lightning skips on_train_epoch_start for an epoch resumed mid-way: unfrozen anyway.
        ("lenet5_bn+unfreeze", STEPS_PER_EPOCH + 4),
        ("nin", 6),  # dropout: the RNG state comes back too
        ("nin", 4),  # ... also at its epoch boundary, where the next loader is made afresh
    ],
)
def test_resuming_after_n_steps_gives_the_uninterrupted_run_exactly(
    arch: str, stop: int, tmp_path_factory: pytest.TempPathFactory, recwarn: Any
) -> None:
    root = tmp_path_factory.mktemp("resume")
    reference = _reference(arch, tmp_path_factory.getbasetemp())
    _run(arch, root, crash_at=stop, every=stop)
    (ckpt,) = root.glob(f"*step={stop}.ckpt")
    # Another seed on purpose: nothing of the resumed run may depend on it.
    _, resumed = _run(arch, root / "resumed", seed=1234, ckpt_path=ckpt)
    # The same settings, one-cycle's moved lr and momentum included: nothing to warn of, nor
    # anything the resume could not continue (at the epoch's end of a limited epoch too).
    assert not [w for w in recwarn if "the checkpoint's settings" in str(w.message)]
    assert not [w for w in recwarn if "ExactResume" in str(w.message)]
    _assert_identical(resumed, reference)
    assert reference["step"] == _steps(arch)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arch", "stop"), [("lenet5_bn", 5), ("lenet5_bn", STEPS_PER_EPOCH), ("nin", 6)]
)
def test_resuming_with_loader_workers_gives_the_uninterrupted_run_exactly(
    arch: str, stop: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Worker processes drew indices as soon as Lightning made the loader's iterator, before
    # the resumed run's position was loaded: the epoch went on in another order. (The
    # reference runs without workers, which change nothing: see the test above.)
    root = tmp_path_factory.mktemp("resume-workers")
    reference = _reference(arch, tmp_path_factory.getbasetemp())
    _run(arch, root, crash_at=stop, every=stop, num_workers=2)
    (ckpt,) = root.glob(f"*step={stop}.ckpt")
    _, resumed = _run(arch, root / "resumed", seed=1234, ckpt_path=ckpt, num_workers=2)
    _assert_identical(resumed, reference)


def _epoch_rows(
    root: Path,
    stop: int | None = None,
    ckpt: Path | None = None,
    val_check_interval: int | None = None,
) -> dict[tuple[str, str, bool], list[str]]:
    # metrics.csv's rows of epoch-level figures (train_*, val_*) by (epoch, step): lenet5_bn
    # with MixUp, last.ckpt written after every validation, 3 epochs of 11 steps.
    L.seed_everything(0, verbose=False)
    model = create_model("lenet5_bn", num_classes=10, in_channels=1, optimizer="adamw", lr=0.01)
    dm = Digits(batch_size=128, image_size=32, mixup_alpha=0.2)
    callbacks = [ModelCheckpoint(dirpath=root, save_last=True), *([_Crash(stop)] if stop else [])]
    trainer = L.Trainer(max_epochs=3, deterministic=True, accelerator="cpu",
                        logger=CSVLogger(root), enable_progress_bar=False, callbacks=callbacks,
                        num_sanity_val_steps=0, enable_model_summary=False,
                        val_check_interval=val_check_interval)  # fmt: skip
    if stop:
        with pytest.raises(KeyError, match="simulated crash"):
            trainer.fit(model, datamodule=dm)
        return {}
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt)
    (path,) = root.glob("lightning_logs/version_*/metrics.csv")
    keys = ("train_loss", "train_acc", "val_loss", "val_acc", "val_f1", "val_acc_top5")
    rows = csv.DictReader(path.read_text().splitlines())
    return {  # a row of training figures and one of validation figures per step
        (r["epoch"], r["step"], bool(r["val_loss"])): [r[k] for k in keys]
        for r in rows
        if any(map(r.get, keys))
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    "stop,val_check_interval",
    [(6, 4), (12, 4), (13, None)],  # last.ckpt of step 4 (mid-epoch), of step 11 (its end)
)
def test_the_epoch_a_run_stopped_in_logs_the_uninterrupted_runs_training_metrics(
    stop: int, val_check_interval: int | None, tmp_path: Path
) -> None:
    # The README's Ctrl-C and --ckpt_path last, with --trainer.val_check_interval: the epoch
    # resumed mid-way logged train_loss and train_acc of the batches after the resume only.
    # At an epoch's end, nothing of the finished epoch may count again in the next, and the
    # validation just done (whose states a checkpoint holds) not in the next validation.
    _epoch_rows(tmp_path / "stopped", stop, val_check_interval=val_check_interval)
    ckpt = tmp_path / "stopped" / "last.ckpt"
    resumed = _epoch_rows(tmp_path / "resumed", ckpt=ckpt, val_check_interval=val_check_interval)
    reference = _epoch_rows(tmp_path / "reference", val_check_interval=val_check_interval)
    epochs = {epoch for epoch, *_ in reference}
    assert epochs == {"0", "1", "2"} and {"1", "2"} <= {epoch for epoch, *_ in resumed}
    assert {key: reference[key] for key in resumed} == resumed
    assert sum(validation for *_, validation in resumed) >= 2  # validations compared too


@pytest.mark.slow
def test_two_seeded_deterministic_runs_are_bit_identical(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    reference = _reference("lenet5_bn", tmp_path_factory.getbasetemp())
    _, again = _run("lenet5_bn", tmp_path_factory.mktemp("again"))
    _assert_identical(again, reference)
    other, _ = _run("lenet5_bn", tmp_path_factory.mktemp("other-seed"), seed=1)
    fc = reference["weights"]["net.fc.weight"]
    assert not torch.equal(other.lightning_module.net.fc.weight, fc)


@pytest.mark.slow
def test_loader_workers_change_nothing(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Starting a loader's pass draws its workers' base seed. The validation loader's draw came
    # from the global RNG, every epoch without workers but once with persistent ones, so
    # dropout drew other masks from the third epoch on.
    runs = [
        _run("nin", tmp_path_factory.mktemp(f"workers{n}"), num_workers=n, epochs=3) for n in (0, 2)
    ]
    _assert_identical(runs[1][1], runs[0][1])


def test_the_training_order_depends_only_on_the_seed_and_the_epoch() -> None:
    dm = Digits(batch_size=128)
    dm.setup("fit")

    def labels(seed: int, epoch: int) -> torch.Tensor:
        torch.manual_seed(seed)
        loader = dm.train_dataloader()
        assert isinstance(loader, ResumableDataLoader)
        torch.rand(100)  # consuming the global RNG changes nothing
        loader.sampler.set_epoch(epoch)
        return torch.cat([y for _, y in loader])

    assert torch.equal(labels(0, 3), labels(0, 3))
    assert not torch.equal(labels(0, 3), labels(0, 4))
    assert not torch.equal(labels(0, 3), labels(1, 3))
    assert sorted(labels(0, 0).tolist()) == sorted(dm._splits["train"][1].tolist())


def test_a_plain_loop_without_set_epoch_gets_a_new_order_every_pass() -> None:
    sampler = EpochShuffleSampler(50, seed=0)
    passes = [list(sampler) for _ in range(3)]
    assert len({tuple(p) for p in passes}) == 3
    # Pass k is epoch k's order: the one set_epoch(k) would give, as the docstring says.
    assert passes == [sampler.order(epoch).tolist() for epoch in range(3)]
    assert all(sorted(p) == list(range(50)) for p in passes)


def _cli_metrics(root: Path) -> list[dict[str, str]]:
    (path,) = root.glob("lightning_logs/version_*/metrics.csv")
    return list(csv.DictReader(path.read_text().splitlines()))


@pytest.mark.slow
def test_the_cli_records_the_seed_and_repeats_a_run_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = [
        "fit",
        "--model",
        "lenet5_bn",
        "--trainer.max_steps=4",
        "--trainer.deterministic=true",
        "--trainer.limit_val_batches=1",
        "--trainer.limit_test_batches=1",
        "--trainer.enable_progress_bar=false",
        "--trainer.log_every_n_steps=1",
        "--trainer.accelerator=cpu",
    ]
    runs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        assert main(args) == 0
        runs.append(_cli_metrics(tmp_path / name))
        (config,) = (tmp_path / name).glob("lightning_logs/version_*/config.yaml")
        assert "seed_everything: 0\n" in config.read_text()
    assert runs[0] == runs[1] and len(runs[0]) >= 4
    (tmp_path / "c").mkdir()
    monkeypatch.chdir(tmp_path / "c")
    assert main([*args, "--seed_everything=7"]) == 0
    (config,) = (tmp_path / "c").glob("lightning_logs/version_*/config.yaml")
    assert "seed_everything: 7\n" in config.read_text()
    assert _cli_metrics(tmp_path / "c") != runs[0]


# -- a resume must train on the data the interrupted run trained on ---------------------


def _fit(
    root: Path,
    dm: Any,
    *,
    epochs: int = 1,
    ckpt_path: Path | None = None,
    model: Any = None,
    callbacks: tuple[L.Callback, ...] = (),
    limit_train_batches: int | None = 4,
    **trainer_kwargs: Any,
) -> L.Trainer:
    """A tiny LeNet-5 run on Digits: 4 batches an epoch, one validation batch."""
    L.seed_everything(0, verbose=False)
    if model is None:
        model = create_model("lenet5", num_classes=10, in_channels=1, scheduler="none")
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_train_batches=limit_train_batches,
        limit_val_batches=1,
        default_root_dir=root,
        callbacks=list(callbacks),
        **trainer_kwargs,
    )
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return trainer


class _StopAt(L.Callback):
    """Stop the run (``should_stop``, as ``max_time`` does) before optimizer step ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step == self.at:
            trainer.should_stop = True


@pytest.mark.parametrize(
    "setting,stop,expected",
    [
        # max_time stops mid-epoch; Lightning counts the epoch as done and its last.ckpt says
        # so: the resume goes on from the next epoch, or, with max_epochs reached, trained
        # nothing more, without a word. (should_stop before step 6: 3 of epoch 1's batches.)
        ({"epochs": 3}, _StopAt(6), r"after 3 of epoch 1's 4 batches, when the run was "
         r"stopped early .* starts at epoch 2 and the rest of epoch 1 is not trained"),
        ({"epochs": 2}, _StopAt(6), r"this resumed run trained nothing: the checkpoint's "
         r"run had trained 2 epoch\(s\) \(7 steps\), and max_epochs=2, max_steps=-1 leave"),
        # last.ckpt of the validation at batch 3, halfway through an accumulation of 2 (the
        # crash before the 5th batch, at step 2).
        ({"limit_train_batches": 8, "accumulate_grad_batches": 2, "val_check_interval": 3},
         _Crash(2), r"after batch 3 of epoch 0, 1 into an accumulation of 2 .* holds no "
         r"gradients"),
        ({"limit_train_batches": 8, "accumulate_grad_batches": 2, "val_check_interval": 2},
         _Crash(2), None),  # at batch 4, a multiple of 2: exact
    ],
)  # fmt: skip
def test_a_resume_that_cannot_go_on_exactly_says_why(
    setting: dict[str, Any], stop: L.Callback, expected: str | None, tmp_path: Path
) -> None:
    def fit(root: Path, ckpt: Path | None = None, callbacks: tuple[L.Callback, ...] = ()) -> None:
        checkpoints = ModelCheckpoint(dirpath=root, save_last=True)
        _fit(root, Digits(batch_size=32), ckpt_path=ckpt, callbacks=(checkpoints, *callbacks),
             **setting)  # fmt: skip

    if isinstance(stop, _Crash):
        with pytest.raises(KeyError, match="simulated crash"):
            fit(tmp_path / "stopped", callbacks=(stop,))
    else:
        fit(tmp_path / "stopped", callbacks=(stop,))
    with warnings.catch_warnings(record=True) as found:
        warnings.simplefilter("always")
        fit(tmp_path / "resumed", tmp_path / "stopped" / "last.ckpt")
    said = [str(w.message) for w in found if "ExactResume" in str(w.message)]
    if expected is None:
        assert said == []
    else:
        assert len(said) == 1 and re.search(expected, said[0]), said


def test_a_finished_run_with_a_fixed_schedule_is_told_to_train_on_from_its_weights(
    tmp_path: Path,
) -> None:
    # The advice was "raise max_epochs", which the one-cycle schedule's length check refuses.
    def model(**kwargs: Any) -> Any:
        return create_model("lenet5", num_classes=10, in_channels=1, **kwargs)  # one-cycle

    def fit(root: str, ckpt: Path | None = None, **kwargs: Any) -> L.Trainer:
        saved = ModelCheckpoint(dirpath=tmp_path / root, save_last=True)
        dm = Digits(batch_size=32)
        return _fit(tmp_path / root, dm, ckpt_path=ckpt, callbacks=(saved,), **kwargs)

    last = tmp_path / "done" / "last.ckpt"
    fit("done", model=model())
    with pytest.warns(UserWarning, match=r"trained nothing.* made for 4 steps, so a resume "
                      r"with more epochs is refused.* --weights <checkpoint>") as said:  # fmt: skip
        fit("again", last, model=model())
    assert not [w for w in said if "Raise max_epochs" in str(w.message)]
    with pytest.raises(ValueError, match=r"'onecycle' LR schedule was made for 4 steps; this"):
        fit("longer", last, epochs=2, model=model())
    trainer = fit("new", epochs=2, model=model(checkpoint_path=last))  # the advice, followed
    assert trainer.global_step == 8

    # A schedule of the user's own (--optimizer with --lr_scheduler, or their own module's)
    # is not the task's: nothing here refuses a longer resume, and the advice says so.
    def own(**kwargs: Any) -> Any:
        net = model(scheduler="none", **kwargs)
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=1)
        net.configure_optimizers = lambda: {"optimizer": opt, "lr_scheduler": cosine}
        return net

    last = tmp_path / "own" / "last.ckpt"
    fit("own", model=own())
    with pytest.warns(UserWarning, match=r"trained nothing.* Raise max_epochs to train on"):
        fit("own_again", last, model=own())
    assert fit("own_longer", last, epochs=2, model=own()).global_step == 8


def test_an_interrupted_epoch_does_not_continue_with_another_batch_size() -> None:
    ds = TensorDataset(torch.arange(40))
    old = ResumableDataLoader(ds, batch_size=4, sampler=EpochShuffleSampler(40, 0))
    it = iter(old)
    seen = torch.cat([next(it)[0] for _ in range(2)])  # 8 images trained on
    state = old.state_dict()
    assert state == {
        "seed": 0,
        "epoch": 0,
        "batches": 2,
        "batch_size": 4,
        "num_replicas": 1,
        "drop_last": 0,
    }

    def resumed(batch_size: int, state: dict[str, int], epoch: int) -> ResumableDataLoader:
        loader = ResumableDataLoader(ds, batch_size=batch_size, sampler=EpochShuffleSampler(40))
        loader.load_state_dict(state)
        loader.sampler.set_epoch(epoch)
        return loader

    # Continuing epoch 0 in batches of 8 would leave 8 images out of it: refused, every try.
    loader = resumed(8, state, 0)
    for _ in range(2):
        with pytest.raises(ValueError, match="epoch 0 with batch_size=8") as err:
            list(loader)
    assert "2 batch(es) of batch_size=4" in str(err.value)
    assert "--data.batch_size 4" in str(err.value)
    # The same batch size goes on with the 32 images not seen yet.
    rest = torch.cat([b[0] for b in resumed(4, state, 0)])
    assert sorted([*seen.tolist(), *rest.tolist()]) == list(range(40))
    # The next epoch starts afresh at any batch size, and so does one after a full epoch.
    assert sorted(torch.cat([b[0] for b in resumed(8, state, 1)]).tolist()) == list(range(40))
    done = {**state, "batches": 10}
    assert len(list(resumed(8, done, 1))) == 5
    # A state saved before batch_size was recorded resumes as it did (at this loader's size).
    older = {k: v for k, v in state.items() if k not in ("batch_size", "num_replicas", "drop_last")}
    assert len(torch.cat([b[0] for b in resumed(8, older, 0)])) == 40 - 2 * 8


def test_an_epoch_saved_at_its_end_is_not_refused_at_another_batch_size() -> None:
    # The whole of epoch 0 (8 images, 4 batches of 2) was trained on: nothing to continue.
    ds = TensorDataset(torch.arange(8))
    old = ResumableDataLoader(ds, batch_size=2, sampler=EpochShuffleSampler(8, 0))
    assert len(list(old)) == 4
    state = old.state_dict()
    assert state == {
        "seed": 0,
        "epoch": 0,
        "batches": 4,
        "batch_size": 2,
        "num_replicas": 1,
        "drop_last": 0,
    }
    loader = ResumableDataLoader(ds, batch_size=4, sampler=EpochShuffleSampler(8, 99))
    loader.load_state_dict(state)
    sampler = loader.sampler
    assert isinstance(sampler, EpochShuffleSampler)
    # The sampler starts on the next epoch (a pass before set_epoch: worker processes, a
    # plain loop) and serves the whole of it, in the saved seed's order.
    assert (sampler.seed, sampler.epoch) == (0, 1)
    batches = [b[0] for b in loader]
    assert [len(b) for b in batches] == [4, 4]
    assert torch.cat(batches).tolist() == EpochShuffleSampler(8, 0).order(1).tolist()


def test_an_epoch_that_dropped_its_last_batch_is_not_refused_at_another_batch_size() -> None:
    # 10 images in batches of 4, the last 2 dropped: 2 batches were the whole epoch. It was
    # counted as 8 of 10 images served, an interrupted epoch that batches of 5 cannot go on.
    ds = TensorDataset(torch.arange(10))
    old = ResumableDataLoader(ds, batch_size=4, drop_last=True, sampler=EpochShuffleSampler(10))
    assert len(list(old)) == 2
    state = old.state_dict()
    assert (state["batches"], state["drop_last"]) == (2, 1)
    loader = ResumableDataLoader(ds, batch_size=5, sampler=EpochShuffleSampler(10))
    loader.load_state_dict(state)
    assert loader.sampler.epoch == 1  # type: ignore[attr-defined]
    assert sorted(torch.cat([b[0] for b in loader]).tolist()) == list(range(10))
    # One batch of the two served is an epoch interrupted still: refused at another size.
    loader.load_state_dict({**state, "batches": 1})
    with pytest.raises(ValueError, match="cannot continue epoch 0 with batch_size=5"):
        list(loader)


@pytest.mark.parametrize("n", [-3, 1.5])
def test_a_sampler_of_a_negative_or_fractional_size_is_refused(n: Any) -> None:
    with pytest.raises(ValueError, match=rf"n must be a non-negative int; got {n}$"):
        EpochShuffleSampler(n, seed=0)


def test_an_empty_dataset_gives_every_process_an_empty_shard() -> None:
    for rank in (0, 1):
        shard = EpochShuffleSampler(0, seed=0, num_replicas=2, rank=rank)
        assert len(shard) == 0 and list(shard) == [], rank


def _shard_loader(n: int, world: int, rank: int, *, batch_size: int = 4) -> ResumableDataLoader:
    # Process `rank` of `world` (DDP), as the datamodules build its training loader.
    sampler = EpochShuffleSampler(n, seed=0, num_replicas=world, rank=rank)
    return ResumableDataLoader(
        TensorDataset(torch.arange(n)), batch_size=batch_size, sampler=sampler
    )


def _resumed_shard(
    n: int, world: int, rank: int, state: dict[str, int], epoch: int, **kwargs: Any
) -> ResumableDataLoader:
    loader = _shard_loader(n, world, rank, **kwargs)
    loader.load_state_dict(state)
    loader.sampler.set_epoch(epoch)  # as Lightning does before the pass
    return loader


def _images(loader: ResumableDataLoader) -> list[int]:
    return [i for batch in loader for i in batch[0].tolist()]


def test_an_interrupted_epoch_does_not_continue_with_another_number_of_processes() -> None:
    # Two processes, two batches of 4 each: 16 of the 48 images trained on in epoch 0.
    shards = [_shard_loader(48, 2, rank) for rank in (0, 1)]
    its = [iter(shard) for shard in shards]
    seen = [i for it in its for _ in range(2) for i in next(it)[0].tolist()]
    state = shards[0].state_dict()
    assert state["batches"] == 2 and state["num_replicas"] == 2
    # One process would skip its own 2 batches (8 images), not the 16: refused, every try.
    single = _resumed_shard(48, 1, 0, state, 0)
    for _ in range(2):
        with pytest.raises(ValueError, match=r"epoch 0 with 1 process\(es\) \(num_re") as err:
            list(single)
    message = str(err.value)
    assert "2 batch(es) of batch_size=4 on each of 2 process(es) into it" in message
    assert "another number of processes would leave images out" in message
    assert "the saved number of processes (2: on the command line --trainer.devices 2" in message
    assert "or from a checkpoint saved at the end of an epoch" in message
    # Under DDP every process refuses alike: none is left waiting for the others.
    for rank in range(3):
        with pytest.raises(ValueError, match=r"epoch 0 with 3 process\(es\)"):
            list(_resumed_shard(48, 3, rank, state, 0))
    # Another batch size too: one message with both, and both ways out.
    with pytest.raises(ValueError, match=r"with batch_size=8 and 1 process\(es\)") as err:
        list(_resumed_shard(48, 1, 0, state, 0, batch_size=8))
    assert "another batch size or number of processes" in str(err.value)
    assert "--data.batch_size 4) and the saved number of processes (2" in str(err.value)
    # The same number of processes goes on with the 32 images not seen yet.
    rest = [i for rank in (0, 1) for i in _images(_resumed_shard(48, 2, rank, state, 0))]
    assert sorted(seen + rest) == list(range(48))
    # The next epoch starts afresh with any number of processes.
    assert sorted(_images(_resumed_shard(48, 1, 0, state, 1))) == list(range(48))
    # So does one after a whole epoch (6 batches on each of 2 processes).
    done = {**state, "batches": 6}
    assert sorted(_images(_resumed_shard(48, 1, 0, done, 1))) == list(range(48))
    # A state saved before num_replicas was recorded resumes as it did (at this count).
    older = {k: v for k, v in state.items() if k != "num_replicas"}
    assert len(_images(_resumed_shard(48, 1, 0, older, 0))) == 48 - 2 * 4


def test_a_fit_resumed_mid_epoch_with_another_batch_size_is_refused(tmp_path: Path) -> None:
    every = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=2, save_top_k=-1)
    with pytest.raises(KeyError, match="simulated crash"):
        _fit(tmp_path, Digits(batch_size=32), callbacks=(every, _Crash(2)))
    (mid,) = (tmp_path / "ckpt").glob("*step=2.ckpt")
    with pytest.raises(ValueError, match="cannot continue epoch 0 with batch_size=64") as err:
        _fit(tmp_path / "other", Digits(batch_size=64), ckpt_path=mid)
    assert "--data.batch_size 32" in str(err.value)
    assert _fit(tmp_path / "same", Digits(batch_size=32), ckpt_path=mid).global_step == 4
    # Saved at the end of the epoch (after 4 of its 41 batches: limit_train_batches), the
    # next epoch may take another batch size.
    _fit(tmp_path / "full", Digits(batch_size=32))
    (end,) = (tmp_path / "full" / "checkpoints").glob("*.ckpt")
    trainer = _fit(tmp_path / "next", Digits(batch_size=64), epochs=2, ckpt_path=end)
    assert trainer.global_step == 8 and trainer.current_epoch == 2


@pytest.mark.slow
def test_a_ddp_fit_resumed_mid_epoch_with_another_number_of_processes_is_refused_on_every_rank(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One process saves 4 batches into epoch 0; two DDP processes would each skip 4 of
    # their own batches, 8 in all: both must refuse (a rank that went on would hang).
    common = [
        "--model=LeNet5",
        "--data=Digits",
        "--model.scheduler=none",
        "--data.batch_size=64",
        "--trainer.max_epochs=1",
        "--trainer.limit_val_batches=1",
        "--trainer.limit_test_batches=1",
        "--trainer.enable_progress_bar=false",
        "--trainer.accelerator=cpu",
    ]
    monkeypatch.chdir(tmp_path)
    saving = [
        "--trainer.devices=1",
        "--trainer.limit_train_batches=6",
        "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
        "--trainer.callbacks.every_n_train_steps=4",
        "--trainer.callbacks.save_top_k=-1",
        "--trainer.callbacks.dirpath=ckpt",
    ]
    assert main(["fit", *common, *saving]) == 0
    (mid,) = (tmp_path / "ckpt").glob("*step=4.ckpt")
    resume = ["--trainer.strategy=ddp", "--trainer.devices=2", f"--ckpt_path={mid}", "--debug"]
    command = [sys.executable, "-m", "classic_cnns", "fit", *common, *resume]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes on two cores
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    output = result.stderr + result.stdout
    assert result.returncode != 0, output[-3000:]
    refusal = "ValueError: ResumableDataLoader: cannot continue epoch 0 with 2 process(es)"
    for rank in (0, 1):  # --debug: each process's traceback, its lines marked with its rank
        assert f"[rank{rank}]: {refusal}" in output, output[-3000:]
    assert not list(tmp_path.glob("lightning_logs/version_1/checkpoints/*.ckpt"))


def test_a_schedule_resumed_with_another_length_names_every_setting_it_follows(
    tmp_path: Path,
) -> None:
    # Only the batch size changes: one epoch of Digits is 6 steps in batches of 256, 3 in
    # batches of 512. The message must not blame max_epochs or max_steps alone.
    def onecycle() -> Any:
        return create_model("lenet5", num_classes=10, in_channels=1, scheduler="onecycle")

    every = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=2, save_top_k=-1)
    with pytest.raises(KeyError, match="simulated crash"):
        _fit(
            tmp_path,
            Digits(batch_size=256),
            model=onecycle(),
            callbacks=(every, _Crash(2)),
            limit_train_batches=None,
        )
    (mid,) = (tmp_path / "ckpt").glob("*step=2.ckpt")
    with pytest.raises(ValueError, match=r"made for 6 steps; this run has 3\. ") as err:
        _fit(
            tmp_path / "b",
            Digits(batch_size=512),
            model=onecycle(),
            ckpt_path=mid,
            limit_train_batches=None,
        )
    message = str(err.value)
    assert "max_epochs or max_steps changed?" not in message
    for setting in (
        "trainer max_epochs",
        "trainer max_steps",
        "the batch size (--data.batch_size)",
        "the number of processes (--trainer.devices x --trainer.num_nodes)",
        "limit_train_batches",
        "accumulate_grad_batches",
        "Resume with the checkpoint's settings",
        "--weights <file>",
    ):
        assert setting in message, setting


@pytest.fixture(scope="module")
def split_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkpoint of one epoch on ``Digits(batch_size=32, seed=0)``."""
    root = tmp_path_factory.mktemp("split")
    _fit(root, Digits(batch_size=32, seed=0))
    (path,) = (root / "checkpoints").glob("*.ckpt")
    return path


class _OtherDigits(Digits):
    """Another datamodule class: other data, whose split nothing compares with Digits'."""


@pytest.mark.parametrize(
    "kwargs,flags",
    [
        ({"seed": 1}, "seed=0; on the command line --data.seed 0"),
        ({"val_size": 0.2}, "val_size=0.1; on the command line --data.val_size 0.1"),
        (
            {"seed": 3, "test_size": 0.3},
            "seed=0, test_size=0.2; on the command line --data.seed 0 --data.test_size 0.2",
        ),
    ],
)
def test_a_fit_resumed_with_another_split_is_refused(
    split_checkpoint: Path, tmp_path: Path, kwargs: dict[str, Any], flags: str
) -> None:
    # Digits' seed draws its test and validation images: another one would train on them.
    with pytest.raises(CheckpointError, match="split with") as err:
        _fit(tmp_path, Digits(batch_size=32, **kwargs), epochs=2, ckpt_path=split_checkpoint)
    message = str(err.value)
    assert message.startswith(f"{split_checkpoint}: the run was trained on Digits")
    assert f"Resume with the same split ({flags})" in message
    assert all(f"{k}={v!r}" in message for k, v in kwargs.items())


def test_a_fit_resumed_with_another_mnist_protocol_is_refused(
    fashion_raw: Path, tmp_path: Path
) -> None:
    # protocol="10k" trains on the test file's first 8,000 images, which "standard" tests on.
    root = fashion_raw.parent.parent
    _fit(tmp_path / "a", FashionMNIST(root, False, batch_size=32, protocol="10k"))
    (path,) = (tmp_path / "a" / "checkpoints").glob("*.ckpt")
    with pytest.raises(CheckpointError, match=r"protocol='10k'; on the command line") as err:
        _fit(tmp_path / "b", FashionMNIST(root, False, batch_size=32), epochs=2, ckpt_path=path)
    assert "this datamodule has protocol='standard'" in str(err.value)


def test_what_may_use_a_checkpoint_with_another_split_is_not_refused(
    split_checkpoint: Path, tmp_path: Path
) -> None:
    # The same split resumes; a new run from the weights, evaluating and other data may differ.
    resumed = _fit(tmp_path / "a", Digits(batch_size=32), epochs=2, ckpt_path=split_checkpoint)
    assert resumed.global_step == 8
    model = create_model("lenet5", checkpoint_path=split_checkpoint)
    assert _fit(tmp_path / "b", Digits(batch_size=32, seed=1), model=model).global_step == 4
    # Testing on another split: warned of, since its test images may be ones it trained on.
    with pytest.warns(UserWarning, match=r"split with seed=0; this datamodule has seed=1, so th"):
        (tested,) = resumed.test(
            resumed.lightning_module, Digits(seed=1), ckpt_path=split_checkpoint
        )
    assert "test_acc" in tested
    other = _fit(tmp_path / "c", _OtherDigits(seed=1), epochs=2, ckpt_path=split_checkpoint)
    assert other.global_step == 8
    # A checkpoint from before the split was recorded is not checked.
    older = torch.load(split_checkpoint, weights_only=True)
    assert older["callbacks"]["ExactResume"]["split"] == {
        "class": "Digits",
        "seed": 0,
        "val_size": 0.1,
        "test_size": 0.2,
    }
    del older["callbacks"]["ExactResume"]["split"]
    torch.save(older, tmp_path / "older.ckpt")
    old = _fit(tmp_path / "d", Digits(seed=1), epochs=2, ckpt_path=tmp_path / "older.ckpt")
    assert old.global_step == 8


def test_a_checkpoint_restored_on_data_prepared_otherwise_is_warned_of_once(
    split_checkpoint: Path, tmp_path: Path
) -> None:
    # ckpt_path restores the model, not the data: Digits padded to 32 px, which the model saw
    # resized, ran without a word. Each restore (fit: every epoch validates) warns once.
    def warned(run: Any) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run()
        return [str(w.message) for w in caught if "prepares them with" in str(w.message)]

    padded = Digits(batch_size=32, resize="pad")
    resumed = _fit(tmp_path / "a", Digits(batch_size=32), epochs=2, ckpt_path=split_checkpoint)
    model = resumed.lightning_module
    assert not warned(lambda: resumed.test(model, Digits(), ckpt_path=split_checkpoint))
    resumed_on_padded: list[L.Trainer] = []
    (fit,) = warned(lambda: resumed_on_padded.append(
        _fit(tmp_path / "b", padded, epochs=3, ckpt_path=split_checkpoint)))  # fmt: skip
    # What it trained on from then on is what its new checkpoints record: padded images.
    resumed_on_padded[0].save_checkpoint(tmp_path / "b.ckpt")
    for path, resize in ((split_checkpoint, "resize"), (tmp_path / "b.ckpt", "pad")):
        assert torch.load(path, weights_only=True)["classic_cnns_data"]["resize"] == resize
    assert fit.startswith(f"{split_checkpoint}: the model was trained on images prepared with ")
    assert "resize='resize'; the datamodule Digits prepares them with resize='pad'" in fit
    (test,) = warned(lambda: resumed.test(model, padded, ckpt_path=split_checkpoint))
    assert test == fit
    # A checkpoint that records no data configuration: nothing to compare.
    older = torch.load(split_checkpoint, weights_only=True)
    del older["classic_cnns_data"]
    torch.save(older, tmp_path / "older.ckpt")
    assert not warned(lambda: resumed.test(model, padded, ckpt_path=tmp_path / "older.ckpt"))
    # Not a ckpt_path restore: the model's own record (load_model's, or its fit's), once for
    # each validate, test or predict on data prepared otherwise; silent on the same data.
    loaded = load_model(split_checkpoint)
    assert loaded.data_config["resize"] == "resize"
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    assert not warned(lambda: trainer.test(loaded, Digits(), verbose=False))
    for run in (trainer.test, trainer.validate, trainer.predict):
        (own,) = warned(lambda run=run: run(loaded, padded))
        assert own.startswith("lenet5: the model was trained on images prepared with ")
        assert "resize='resize'; the datamodule Digits prepares them with resize='pad'" in own
        assert own.endswith("model.data_config records (on the command line, the training "
                            "run's --data flags, or -c its config.yaml)")  # fmt: skip
    assert warned(lambda: resumed.test(model, padded)) == [own]
    # ImageNet weights' normalisation (what hub.load_weights records): no run's data to give
    # again, so a baseline validate before fine-tuning is silent, as the fit after it is.
    loaded.data_config = {"mean": [0.449], "std": [0.226], "crop_pct": 0.875}
    assert not warned(lambda: trainer.validate(loaded, Digits(), verbose=False))


def test_an_image_folder_records_only_the_split_settings_it_uses(tmp_path: Path) -> None:
    from PIL import Image

    from classic_cnns.data.folder import ImageFolder

    def folder(*dirs: str) -> Path:
        root = tmp_path / "_".join(dirs or ("classes",))
        for d in dirs or ("",):
            for cls in ("a", "b"):
                (root / d / cls).mkdir(parents=True)
                Image.new("L", (8, 8)).save(root / d / cls / "x.png")
        return root

    assert ImageFolder(folder(), seed=2)._split_settings() == {
        "seed": 2,
        "val_size": 0.1,
        "test_size": 0.1,
    }
    # train/ and test/ folders: test_size splits nothing; a val/ folder: nor seed, val_size.
    assert ImageFolder(folder("train", "test"))._split_settings() == {"seed": 0, "val_size": 0.1}
    assert ImageFolder(folder("train", "val"), seed=5)._split_settings() == {}


def test_images_added_to_a_folder_after_its_run_are_said_to_draw_the_splits_anew(
    tmp_path: Path,
) -> None:
    # The one-folder layout draws its splits from the files, in order: two more photos drew
    # another test split, 11 of whose 13 images the run had trained on, without a word; a
    # photo renamed moves others between the splits.
    from PIL import Image

    from classic_cnns.data.folder import ImageFolder

    generator = torch.Generator().manual_seed(0)
    for i in range(40):
        (tmp_path / "photos" / "ab"[i % 2]).mkdir(parents=True, exist_ok=True)
        pixels = torch.randint(0, 256, (8, 8), generator=generator, dtype=torch.uint8)
        Image.fromarray(pixels.numpy()).save(tmp_path / "photos" / "ab"[i % 2] / f"{i}.png")

    def data() -> ImageFolder:
        return ImageFolder(tmp_path / "photos", channels=1, image_size=32, batch_size=8)

    model = create_model("lenet5", num_classes=2, in_channels=1, scheduler="none")
    saved = ModelCheckpoint(dirpath=tmp_path / "run", save_last=True)
    trainer = _fit(tmp_path / "run", data(), model=model, callbacks=(saved,))
    last = tmp_path / "run" / "last.ckpt"
    # The names, from the folder, in the order drawn from: class a's sorted, then b's.
    names = "\n".join(sorted(f"{'ab'[i % 2]}/{i}.png" for i in range(40)))
    digest = hashlib.sha256(names.encode()).hexdigest()[:12]
    split = torch.load(last, weights_only=False)["callbacks"]["ExactResume"]["split"]
    assert (split["files"], split["file_names"]) == (40, digest)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", "The dirpath has changed")
        trainer.test(model, data(), ckpt_path=last, verbose=False)  # the same files: silent
    # A file renamed: as many files, drawn in another order.
    (tmp_path / "photos" / "b" / "1.png").rename(tmp_path / "photos" / "b" / "99.png")
    with pytest.warns(UserWarning, match=rf"split with file_names='{digest}'; this datamodule "
                      r"has file_names='[0-9a-f]{12}', so the images evaluated may include "
                      r"images the run trained on.*removed or renamed draws anew \(a rename "
                      r"that keeps the files' order keeps the split, but cannot be told from "
                      r"one that moves images\)\)$"):  # fmt: skip
        trainer.test(model, data(), ckpt_path=last, verbose=False)
    (tmp_path / "photos" / "b" / "99.png").rename(tmp_path / "photos" / "b" / "1.png")
    for i in (40, 41):
        Image.new("L", (8, 8)).save(tmp_path / "photos" / "a" / f"{i}.png")
    with pytest.warns(UserWarning, match=rf"split with files=40, file_names='{digest}'; this "
                      r"datamodule has files=42, file_names='[0-9a-f]{12}', so the images "
                      r"evaluated may include images the run trained on.*an image added, "
                      r"removed or renamed draws anew"):  # fmt: skip
        trainer.test(model, data(), ckpt_path=last, verbose=False)
    with pytest.raises(CheckpointError, match=r"split with files=40, .*; this datamodule has "
                       r"files=42, .*, which would make images"):  # fmt: skip
        _fit(tmp_path / "again", data(), epochs=2, ckpt_path=last, model=model)


class _FirstBatches(L.Callback):
    """The labels of each training batch of a run."""

    def __init__(self) -> None:
        self.labels: list[list[int]] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, i: int) -> None:
        self.labels.append(batch[1].tolist())


def test_a_checkpoint_evaluated_on_a_trainer_does_not_resume_its_next_fit(tmp_path: Path) -> None:
    # validate/test/predict(ckpt_path=) restore the callbacks' states too; ExactResume kept
    # the mid-epoch position and RNG state for the next fit on that trainer, a new run,
    # which then skipped the batches before it.
    every = ModelCheckpoint(tmp_path / "mid", every_n_train_steps=2, save_top_k=-1)
    _fit(tmp_path / "a", Digits(batch_size=32), callbacks=(every,))
    mid = next(p for p in (tmp_path / "mid").glob("*.ckpt") if "step=2" in p.name)
    plain = _FirstBatches()
    _fit(tmp_path / "b", Digits(batch_size=32), callbacks=(plain,))
    after = _FirstBatches()
    trainer = _fit(tmp_path / "c", Digits(batch_size=32), callbacks=(after,), epochs=0)
    model = create_model("lenet5", num_classes=10, in_channels=1, scheduler="none")
    trainer.validate(model, Digits(batch_size=32), ckpt_path=mid, verbose=False)
    L.seed_everything(0, verbose=False)
    trainer.fit_loop.max_epochs = 1
    trainer.fit(create_model("lenet5", num_classes=10, in_channels=1, scheduler="none"),
                datamodule=Digits(batch_size=32))  # fmt: skip
    assert len(plain.labels) == 4 and after.labels == plain.labels


@pytest.mark.parametrize(
    "changed",
    [
        {"lr": 0.5, "weight_decay": 0.1},
        {"scheduler": "cosine"},
        {"optimizer": "adamw"},
        {"momentum": 0.5},  # the restored optimizer would run the checkpoint's momentum
        {"backbone_lr": 0.001},  # ... and its backbone group's lr
    ],
)
def test_a_fit_resumed_with_other_optimizer_settings_is_refused(
    split_checkpoint: Path, tmp_path: Path, changed: dict[str, Any]
) -> None:
    # The checkpoint's optimizer and schedule states come back over the ones the model made:
    # other settings ran the old ones (yet were recorded), or failed inside torch with a
    # KeyError ('max_lr', 'step'). The CLI refused them already; fit(ckpt_path=) now too.
    settings = {"num_classes": 10, "in_channels": 1, "scheduler": "none", **changed}
    model = create_model("lenet5", **settings)
    saved = torch.load(split_checkpoint, weights_only=True)["hyper_parameters"]
    was = ", ".join(f"{k}={saved[k]!r}" for k in changed)
    now = ", ".join(f"{k}={v!r}" for k, v in changed.items())
    with pytest.raises(
        CheckpointError, match=re.escape(f"trained with {was}; this model has {now}")
    ):
        _fit(tmp_path, Digits(batch_size=32), epochs=2, ckpt_path=split_checkpoint, model=model)


def test_a_second_fit_on_the_same_trainer_has_no_restored_metrics_of_the_first() -> None:
    # The callback stays for a later fit (configure_callbacks adds none then): the epoch whose
    # metric states the first fit's resume put back made TrainingPlots keep a later resume's
    # partial training metrics, from a checkpoint without those states.
    resume = ExactResume()
    trainer = L.Trainer(logger=False, callbacks=[resume])
    resume.continued_epoch = 0  # as the first fit's resume left it
    resume.setup(trainer, create_model("lenet5"), "validate")
    assert resume.continued_epoch == 0  # evaluation puts nothing back, and changes nothing
    resume.setup(trainer, create_model("lenet5"), "fit")
    assert resume.continued_epoch is None


def _same_weights(checkpoint: Path, model: L.LightningModule) -> bool:
    saved = torch.load(checkpoint, weights_only=True)["state_dict"]
    return all(torch.equal(saved[k], v) for k, v in model.state_dict().items())


@pytest.mark.slow
@pytest.mark.parametrize("ema", [False, True])
def test_last_ckpt_holds_the_weights_training_ends_with_and_resumes_exactly(
    tmp_path: Path, ema: bool
) -> None:
    # Validation every 2nd of 3 epochs: Lightning's last.ckpt was epoch 1's (step 8 of 12),
    # older than the weights fit tests and --ckpt_path last resumed or exported. With EMA it
    # is saved before the average moves into the model: it keeps the live weights to resume.
    def fit(root: str, epochs: int, ckpt_path: Path | None = None) -> L.Trainer:
        last = ModelCheckpoint(dirpath=tmp_path / root, save_last=True)
        averaging = [EMAWeightAveraging(decay=0.9)] if ema else []
        return _fit(tmp_path / root, Digits(batch_size=32), epochs=epochs, ckpt_path=ckpt_path,
                    callbacks=(*averaging, last), check_val_every_n_epoch=2,
                    deterministic=True)  # fmt: skip

    short = fit("short", 3)
    saved = torch.load(tmp_path / "short" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == short.global_step == 12
    assert _same_weights(tmp_path / "short" / "last.ckpt", short.lightning_module)
    # That checkpoint resumes exactly: a run of 5 epochs resumed from it is the one run whole.
    resumed, whole = fit("resumed", 5, tmp_path / "short" / "last.ckpt"), fit("whole", 5)
    assert resumed.global_step == whole.global_step == 20
    for key, value in whole.lightning_module.state_dict().items():
        assert torch.equal(resumed.lightning_module.state_dict()[key], value), key
    assert {k: float(v) for k, v in resumed.callback_metrics.items()} == {
        k: float(v) for k, v in whole.callback_metrics.items()
    }


@pytest.mark.slow
@pytest.mark.parametrize("first", [False, True])
def test_last_ckpt_holds_the_stochastic_weight_average_fit_ends_with(
    tmp_path: Path, first: bool
) -> None:
    # The average is moved into the model after the last validation had saved last.ckpt
    # (and, with ExactResume listed before the SWA callback, after its on_train_end).
    swa = StochasticWeightAveraging(swa_lrs=0.01, swa_epoch_start=1)
    last = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    callbacks = (ExactResume(), swa, last) if first else (last, swa)
    trainer = _fit(tmp_path, Digits(batch_size=32), epochs=3, callbacks=callbacks)
    assert _same_weights(tmp_path / "last.ckpt", trainer.lightning_module)


def test_a_checkpoint_leaves_out_the_function_older_torch_puts_in_swalr_s_state(
    tmp_path: Path,
) -> None:
    # Older torch (2.6; not 2.14) saved SWALR.anneal_func (pytorch#163105): weights_only=True
    # refused every StochasticWeightAveraging checkpoint (test, export, resume). As 2.6 saves it:
    swalr = {"anneal_func": torch.optim.swa_utils.SWALR._cosine_anneal, "last_epoch": 7}
    checkpoint = {
        "lr_schedulers": [dict(swalr)],
        "callbacks": {"StochasticWeightAveraging": {"scheduler_state": dict(swalr)}},
    }
    create_model("lenet5").on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "swa.ckpt")
    loaded = torch.load(tmp_path / "swa.ckpt", weights_only=True)
    assert loaded["lr_schedulers"] == [{"last_epoch": 7}]
    assert loaded["callbacks"]["StochasticWeightAveraging"]["scheduler_state"] == {"last_epoch": 7}
