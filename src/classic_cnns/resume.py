"""Resuming a run exactly: what a Lightning checkpoint leaves out, saved and put back.

A Lightning checkpoint holds the weights, the optimizer, the LR schedule and the loop
counters. :class:`ExactResume` (a callback every task adds for itself) saves the rest: the
training loader's position, torch's random number generator states, the training metrics'
sums so far and the data's split settings, and says when a resume cannot go on exactly.

Example:
    >>> import lightning as L
    >>> from classic_cnns.resume import ExactResume
    >>> trainer = L.Trainer(callbacks=[ExactResume()], logger=False, enable_progress_bar=False)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, StochasticWeightAveraging, WeightAveraging
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.combined_loader import CombinedLoader

from classic_cnns._data_classes import check_split, split_settings
from classic_cnns._warn import warn
from classic_cnns.data.sampling import ResumableDataLoader, _why_inexact
from classic_cnns.metrics import metric_states, set_metric_states

__all__ = ["ExactResume"]


def _rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: Mapping[str, Any]) -> None:
    if "torch" in states:
        torch.set_rng_state(states["torch"].cpu())
    cuda = states.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


def _train_loaders(trainer: L.Trainer) -> list[ResumableDataLoader]:
    loaders = trainer.train_dataloader  # None before they are made: flattened to [None]
    combined = loaders if isinstance(loaders, CombinedLoader) else CombinedLoader(loaders)
    return [dl for dl in combined.flattened if isinstance(dl, ResumableDataLoader)]


def _placed(me: L.Callback, callbacks: list[L.Callback]) -> list[L.Callback]:
    # The callbacks with `me` after the last SWA, whose on_train_end moves its average into
    # the model, which is then the run's, and before the first WeightAveraging (EMA), whose
    # moves it too, but whose checkpoints keep the live weights to resume from beside it.
    others = [c for c in callbacks if c is not me]
    swa = [i + 1 for i, c in enumerate(others) if isinstance(c, StochasticWeightAveraging)]
    ema = [i for i, c in enumerate(others) if isinstance(c, WeightAveraging)]
    at, low, high = callbacks.index(me), max(swa, default=0), min(ema, default=len(others))
    at = min(max(at, low), high) if low <= high else at
    return [*others[:at], me, *others[at:]]


class ExactResume(L.Callback):
    """Save what a Lightning checkpoint leaves out, so that a resumed run continues exactly.

    A checkpoint holds the weights, the optimizer, the LR schedule and the loop counters.
    This callback adds, under its own key:

    * the position of the datamodules' training loader
      (:class:`~classic_cnns.data.sampling.ResumableDataLoader`: seed, epoch, batches
      served, batch size, number of processes), which it hands back before the first batch
      of the resumed run, so an epoch interrupted mid-way goes on with the batches it had not
      seen, in the same order (with another batch size or number of processes it is
      refused, on every process: a ``ValueError`` out of ``fit``);
    * torch's random number generator states (CPU, and CUDA when in use), so dropout
      draws the same masks as in the uninterrupted run;
    * the states of the training metrics (:func:`~classic_cnns.metrics.metric_states`; under
      DDP summed over the processes), put back (on rank 0) when the resumed run goes on in
      the epoch they were saved in: its ``train_loss`` and ``train_acc`` average all of it;
    * the datamodule's split settings (its class, ``seed``, ``val_size``, ``test_size``): a
      ``fit`` resumed with a datamodule of that class that splits otherwise is refused
      (:class:`~classic_cnns.files.CheckpointError`), since images the run validated or
      tested on would become training images, and ``validate``/``test``/``predict`` with
      one is warned of (its figures would count training images). Loading the weights into
      a new run, other data and older checkpoints are not checked.

    At the end of training it brings every ``ModelCheckpoint(save_last=True)``'s
    ``last.ckpt`` up to the weights the run ends with, where it was older
    (:meth:`on_train_end`), so that ``--ckpt_path last`` resumes, tests and exports them.

    With ``seed_everything`` and ``deterministic=True`` the resumed run's weights and
    metrics are then bit-identical to the uninterrupted run's on the CPU, loader worker
    processes or not (``tests/test_resume.py``). Where a resume cannot go on exactly it warns: the
    checkpoint of an epoch stopped early (``max_time``, ``max_steps``), which Lightning
    counts as done, or one saved inside a gradient accumulation (``val_check_interval``
    not a multiple of ``accumulate_grad_batches``), whose gradients it does not hold; and
    when nothing is left to train (``max_epochs`` reached).

    Example:
        >>> import lightning as L
        >>> from classic_cnns.resume import ExactResume
        >>> trainer = L.Trainer(callbacks=[ExactResume()], logger=False)
    """

    _trainer: L.Trainer | None = None  # set in setup
    _pending: dict[str, Any] | None = None  # a checkpoint's state, until training starts
    continued_epoch: int | None = None
    """The epoch whose training metrics' states the resume put back (its ``train_loss`` and
    ``train_acc`` average the whole epoch; ``TrainingPlots`` plots them), else ``None``."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Remember the trainer, whose loaders :meth:`state_dict` reads; a new ``fit`` has
        put no metric states back yet (:attr:`continued_epoch`). Come after any
        ``StochasticWeightAveraging`` and before any ``WeightAveraging`` (EMA) in the
        trainer's callbacks, for :meth:`on_train_end`."""
        self._trainer = trainer
        if stage == "fit":  # this callback stays for a second fit on the same trainer
            self.continued_epoch = None
            run: Any = trainer  # (a new list: the hooks called now go on over the old one)
            run.callbacks = _placed(self, run.callbacks)

    def state_dict(self) -> dict[str, Any]:
        """The RNG states, the loaders' positions, the metrics' states and the data's split."""
        trainer = self._trainer
        loaders = _train_loaders(trainer) if trainer is not None else []
        state = {"rng": _rng_states(), "loaders": [dl.state_dict() for dl in loaders]}
        if trainer is not None:  # under DDP the sum over the processes (each must save)
            states = metric_states(trainer.lightning_module, sync=trainer.world_size > 1)
            state["metrics"] = {"epoch": trainer.current_epoch, "states": states}
        split = split_settings(getattr(trainer, "datamodule", None))
        return {**state, "split": split} if split else state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep the saved state until training starts (the loaders do not exist yet); a
        ``fit`` that resumes with other split settings is refused here, before it starts."""
        trainer, self._pending = self._trainer, None
        fitting = trainer is None or trainer.state.fn == TrainerFn.FITTING
        if trainer is not None:  # (validating, testing, predicting: a warning)
            datamodule = getattr(trainer, "datamodule", None)
            check_split(state_dict.get("split"), datamodule, trainer.ckpt_path, fitting)
        if fitting:  # validate/test/predict(ckpt_path=...) restore it too: a later fit is new
            self._pending = state_dict

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Say so when the resumed run trained nothing (its training never started: the
        checkpoint's run had reached ``max_epochs`` or ``max_steps``); Lightning ends such a
        fit with no word but its usual "max_epochs reached"."""
        if self._pending is None or trainer.limit_train_batches == 0:  # it trained, or not meant to
            return
        self._pending = None
        # The task's schedule (one-cycle, cosine, step: --model.scheduler) refuses a resume of
        # another length (optim.check_resumed_schedule); a user's own module's is its own.
        made = getattr(pl_module, "schedule_steps", None)
        advice = (
            f"Its LR schedule was made for {made} steps, so a resume with more epochs is "
            "refused: to train on, start a new run from its weights, its schedule anew (the "
            "command line: --weights <checkpoint> --trainer.max_epochs N; in Python: "
            "create_model(name, checkpoint_path=<checkpoint>))"
            if made
            else "Raise max_epochs to train on (on the command line --trainer.max_epochs N)"
        )
        warn(
            f"ExactResume: this resumed run trained nothing: the checkpoint's run had trained "
            f"{trainer.current_epoch} epoch(s) ({trainer.global_step} steps), and "
            f"max_epochs={trainer.max_epochs}, max_steps={trainer.max_steps} leave none to "
            f"add (a run stopped early, by max_time say, counts its last epoch as done). {advice}"
        )

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Save ``last.ckpt`` again where it does not hold the weights training ends with.

        Lightning's ``ModelCheckpoint`` saves after validation, so with
        ``check_val_every_n_epoch=2`` and 3 epochs, or steps after the last
        ``val_check_interval``, its ``last.ckpt`` was the last validation's; with
        ``StochasticWeightAveraging`` it held the weights before the average was moved into
        the model (just before this: :meth:`setup` puts this callback after it). A checkpoint
        of the last step resumes exactly, as any other, with ``EMAWeightAveraging`` too (this
        runs before it moves the average into the model: the checkpoint holds the average and
        the live weights to resume from). ``save_last="link"`` (a link to the newest top-k
        file) is left alone, as is ``fast_dev_run``, which saves nothing.
        """
        run: Any = trainer  # its fast_dev_run and callbacks: set by connectors
        if run.fast_dev_run:
            return
        averaged = any(isinstance(c, StochasticWeightAveraging) for c in run.callbacks)
        for c in trainer.checkpoint_callbacks:  # the same on every process: each saves
            if not isinstance(c, ModelCheckpoint) or c.save_last is not True:
                continue
            if averaged or c._last_global_step_saved != trainer.global_step:
                c._save_last_checkpoint(trainer, c._monitor_candidates(trainer))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Put the saved RNG states, loader positions and metric states back: the first batch's."""
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        loaders, saved = _train_loaders(trainer), state.get("loaders", [])
        if len(saved) == len(loaders):
            for loader, loader_state in zip(loaders, saved, strict=True):
                loader.load_state_dict(loader_state)
                if why := _why_inexact(loader_state, trainer):
                    warn(f"ExactResume: {why}")
        elif saved:
            warn(
                f"ExactResume: the checkpoint holds the position of {len(saved)} training "
                f"loader(s), the run has {len(loaders)} resumable one(s); the data order "
                "restarts instead of continuing"
            )
        _set_rng_states(state.get("rng", {}))
        metrics = state.get("metrics", {})  # the epoch goes on: what it had summed so far
        if metrics.get("epoch") == trainer.current_epoch and trainer.global_rank == 0:
            set_metric_states(pl_module, metrics["states"])  # the others' sums: rank 0's
            self.continued_epoch = trainer.current_epoch
