"""Lightning overhead: the package's LightningModule under ``Trainer.fit`` vs a hand-written loop.

Both train the same network from the same initial weights on the same in-memory batches
(the package's datamodule, its batch transform included), with the same optimizer,
parameter groups and one-cycle schedule, in the same order. Three loops alternate, fit
after fit:

* ``handwritten``: a plain PyTorch loop (transfer, batch transform, forward, loss,
  ``zero_grad``, backward, step, scheduler step);
* ``lightning``: the package's LightningModule as users get it (label check, torchmetrics
  updates, logging), under a Trainer without logger, checkpoints or progress bar;
* ``lightning_bare``: the same Trainer with a ``training_step`` that only computes the
  loss, which separates the Trainer's own cost from the task's per-step work.

Epoch times come from ``perf_counter`` at the start and end of each epoch (a callback for
the Trainer); the first epoch of each fit is warm-up. Overhead is
``(median epoch - handwritten median epoch) / handwritten median epoch``, all from this run.
The same is computed from the median interval between step ends, which a busy machine
disturbs far less than whole epochs.

Example:
    >>> from classic_cnns.bench import BenchConfig
    >>> from classic_cnns.bench.overhead import plan
    >>> [t.label for t in plan(BenchConfig.quick(backends=["cpu"]))]
    ['overhead lenet5 mnist10k cpu']
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from classic_cnns.bench._common import (
    BenchConfig,
    Results,
    Task,
    backend_tasks,
    backend_unavailable,
    seeded,
    spread,
    synchronize,
)
from classic_cnns.bench._data import DataUnavailable, make_datamodule, resolve_data_dir
from classic_cnns.data.base import InMemoryDataModule
from classic_cnns.registry import create_model, family_class, model_info
from classic_cnns.task import ImageClassifier

__all__ = ["LOOPS", "TRAINER_FLAGS", "plan", "run"]

LOOPS = ("handwritten", "lightning", "lightning_bare")
# The Trainer of the comparison: everything that writes files or the terminal is off.
TRAINER_FLAGS: dict[str, Any] = dict(
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    num_sanity_val_steps=0,
)
# One recipe for all three loops; the numbers matter little, only that they are equal.
_HPARAMS: dict[str, Any] = dict(
    optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4, scheduler="onecycle"
)


@dataclass
class EpochTiming:
    """Wall time of one training epoch and the intervals between its step ends.

    An interval covers everything between two optimizer steps: fetching and transferring
    the batch, the batch transform, forward, backward, step and any hooks. Their median is
    far less disturbed by other processes than the epoch time (a pause lands in one
    interval, not in the median).
    """

    seconds: float
    steps: list[float]


class _Clock:
    """Stamps an epoch's start and end and every step end (device-synchronised at the ends)."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.epochs: list[EpochTiming] = []
        self._start = 0.0
        self._last: float | None = None
        self._steps: list[float] = []

    def epoch_start(self) -> None:
        synchronize(self.backend)
        self._start = time.perf_counter()
        self._last, self._steps = None, []

    def step_end(self) -> None:
        now = time.perf_counter()
        # The first step of an epoch also pays for creating the data iterator: not counted.
        if self._last is not None:
            self._steps.append(now - self._last)
        self._last = now

    def epoch_end(self) -> None:
        synchronize(self.backend)
        self.epochs.append(EpochTiming(time.perf_counter() - self._start, self._steps))


class _ClockCallback(L.Callback):
    def __init__(self, clock: _Clock) -> None:
        self.clock = clock

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.clock.epoch_start()

    def on_train_batch_end(self, *args: Any, **kwargs: Any) -> None:
        self.clock.step_end()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.clock.epoch_end()


def _bare_class(cls: type[ImageClassifier]) -> type[ImageClassifier]:
    """``cls`` with a training step that only computes the loss (no checks, metrics, logs)."""

    class Bare(cls):  # type: ignore[misc, valid-type]
        def training_step(self, batch: Any, batch_idx: int) -> Tensor:
            x, y = batch
            return F.cross_entropy(self.net(x), y)

        def on_train_epoch_end(self) -> None:  # no metrics were updated: none to log
            pass

    return Bare


def _optimizer(
    net: nn.Module, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    # The task's recipe, written out: no weight decay on 1-D parameters, Nesterov SGD.
    params = [p for p in net.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": _HPARAMS["weight_decay"]},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    opt = torch.optim.SGD(groups, lr=_HPARAMS["lr"], momentum=_HPARAMS["momentum"], nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=_HPARAMS["lr"], total_steps=total_steps)
    return opt, sched


def handwritten_fit(
    net: nn.Module, dm: InMemoryDataModule, epochs: int, backend: str, limit: int | None = None
) -> list[EpochTiming]:
    """Train ``net`` with a plain PyTorch loop; return the timing of each epoch.

    Example:
        >>> from classic_cnns import Digits, model_info
        >>> from classic_cnns.bench.overhead import handwritten_fit
        >>> dm = Digits(batch_size=256, image_size=32, val_size=0)
        >>> dm.setup("fit")
        >>> len(handwritten_fit(model_info("lenet5").build_net(), dm, 2, "cpu", limit=2))
        2
    """
    net.to(backend).train()
    steps = len(dm.train_dataloader()) if limit is None else min(limit, len(dm.train_dataloader()))
    opt, sched = _optimizer(net, epochs * steps)
    clock = _Clock(backend)
    for epoch in range(epochs):
        loader = dm.train_dataloader()
        sampler: Any = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):  # as the Trainer does: a new order every epoch
            sampler.set_epoch(epoch)
        clock.epoch_start()
        for i, (images, labels) in enumerate(loader):
            if i == steps:
                break
            x, y = dm.on_after_batch_transfer((images.to(backend), labels.to(backend)), 0)
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            clock.step_end()
        clock.epoch_end()
    return clock.epochs


def _lightning_fit(
    model: ImageClassifier, dm: InMemoryDataModule, epochs: int, backend: str, limit: int | None
) -> list[EpochTiming]:
    clock = _Clock(backend)
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator=backend,
        devices=1,
        limit_train_batches=limit if limit is not None else 1.0,
        callbacks=[_ClockCallback(clock)],
        **TRAINER_FLAGS,
    )
    trainer.fit(model, datamodule=dm)
    return clock.epochs


def run(cfg: BenchConfig, results: Results, backend: str) -> None:
    """Run the three loops ``overhead_repeats`` times each, interleaved; add one row per loop.

    Example:
        >>> from classic_cnns.bench import BenchConfig, Results
        >>> from classic_cnns.bench.overhead import run
        >>> cfg = BenchConfig(overhead_dataset="digits", overhead_epochs=2, overhead_repeats=1,
        ...                   limit_train_batches=2)
        >>> results = Results(cfg)
        >>> run(cfg, results, "cpu")
        >>> [r["loop"] for r in results.rows["overhead"]]
        ['handwritten', 'lightning', 'lightning_bare']
    """
    name, dataset = cfg.overhead_model, cfg.overhead_dataset
    base: dict[str, Any] = dict(model=name, dataset=dataset)
    reason = backend_unavailable(backend)
    if reason is None and cfg.overhead_epochs < 2:
        reason = "overhead_epochs must be >= 2 (the first epoch of each fit is warm-up)"
    dm = None
    if reason is None:
        try:
            dm = make_datamodule(
                dataset,
                resolve_data_dir(cfg.data_dir),
                batch_size=128,
                seed=cfg.seed,
                image_size=model_info(name).input_size[1:],
            )
        except DataUnavailable as err:
            reason = str(err)
    if reason is not None or dm is None:
        results.note(f"overhead {name}/{dataset} on {backend}: skipped, {reason}")
        for loop in LOOPS:
            results.add("overhead", backend, status="skipped", note=reason, loop=loop, **base)
        return
    with seeded(cfg.seed):
        template = create_model(name, num_classes=dm.num_classes, in_channels=dm.in_channels)
    state = copy.deepcopy(template.state_dict())
    epochs, limit = cfg.overhead_epochs, cfg.limit_train_batches
    timings: dict[str, list[EpochTiming]] = {loop: [] for loop in LOOPS}
    for _ in range(cfg.overhead_repeats):
        for loop in LOOPS:
            cls = family_class(model_info(name).family)
            if loop == "lightning_bare":
                cls = _bare_class(cls)
            model = cls(
                arch=name, num_classes=dm.num_classes, in_channels=dm.in_channels, **_HPARAMS
            )
            model.load_state_dict(state)
            with seeded(cfg.seed):  # the same shuffling order in every loop
                if loop == "handwritten":
                    times = handwritten_fit(model.net, dm, epochs, backend, limit)
                else:
                    times = _lightning_fit(model, dm, epochs, backend, limit)
            timings[loop] += times[1:]  # the first epoch is warm-up
    n_images = len(dm.train_dataloader().dataset)  # type: ignore[arg-type]
    if limit is not None:
        n_images = min(n_images, limit * dm.batch_size)

    def pct(value: float | None, base: float | None) -> float | None:
        return None if not base or value is None else (value - base) / base * 100

    epoch_stats = {loop: spread("epoch_s", [t.seconds for t in timings[loop]]) for loop in LOOPS}
    step_stats = {
        loop: spread("step", [1e3 * s for t in timings[loop] for s in t.steps]) for loop in LOOPS
    }
    hand = epoch_stats["handwritten"]["epoch_s_median"]
    hand_step = step_stats["handwritten"]["step_median"]
    flags = ", ".join(f"{k}={v}" for k, v in TRAINER_FLAGS.items())
    for loop in LOOPS:
        stats = epoch_stats[loop]
        median = stats["epoch_s_median"]
        step = step_stats[loop]
        results.add(
            "overhead",
            backend,
            loop=loop,
            **base,
            batch_size=dm.batch_size,
            images_per_epoch=n_images,
            epochs_per_fit=epochs,
            measured_epochs=len(timings[loop]),
            repeats=cfg.overhead_repeats,
            **stats,
            ips=n_images / median if median else None,
            overhead_pct=pct(median, hand),
            step_ms_median=step["step_median"],
            step_ms_min=step["step_min"],
            overhead_step_pct=pct(step["step_median"], hand_step),
            trainer_flags=None if loop == "handwritten" else flags,
        )


def plan(cfg: BenchConfig) -> list[Task]:
    """One overhead task per selected backend."""
    return backend_tasks(cfg, "overhead", cfg.overhead_model, cfg.overhead_dataset, run)
