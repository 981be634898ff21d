"""Lightning overhead: the package's LightningModule under ``Trainer.fit`` vs a hand-written loop.

A setting (``--overhead``, several allowed) names a model and a dataset and optionally the
input size, batch, precision and memory format: ``"model/dataset[:key=value...]"`` with
keys ``size`` (H = W, bilinear resize), ``batch``, ``precision`` and ``format``, e.g.
``resnet18/fashion_mnist:size=96:batch=256:precision=bf16-mixed:format=channels_last``.

All loops train the same network from the same initial weights on the same in-memory
batches (the package's datamodule, its batch transform included), with the same optimizer,
parameter groups and one-cycle schedule, precision (autocast, plus a gradient scaler for
fp16) and memory format, in the same order. Four loops alternate, fit after fit:

* ``network``: the network's own training speed: the hand-written step on one batch
  already on the device and transformed, as many steps as an epoch has (no data loading);
* ``handwritten``: a plain PyTorch loop (transfer, batch transform, forward, loss,
  ``zero_grad``, backward, step, scheduler step);
* ``lightning``: the package's LightningModule as users get it (label check, torchmetrics
  updates, logging), under a Trainer without logger, checkpoints or progress bar: what
  ``fit`` does per step;
* ``lightning_bare``: the same Trainer with a ``training_step`` that only computes the
  loss, which separates the Trainer's own cost from the task's per-step work.

Epoch times come from ``perf_counter`` at the start and end of each epoch (a callback for
the Trainer), device-synchronised; the first epoch of each fit is warm-up. Overhead is
``(median epoch - handwritten median epoch) / handwritten median epoch``; ``vs_network``
is a loop's images/s over the ``network`` loop's, all from this run. The overhead is
also computed from the median interval between step ends, which a busy machine disturbs
far less than whole epochs.

Example:
    >>> from classic_cnns.bench import BenchConfig
    >>> from classic_cnns.bench.overhead import Setting, plan
    >>> [t.label for t in plan(BenchConfig.quick(backends=["cpu"]))]
    ['overhead lenet5/mnist10k cpu']
    >>> Setting.parse("resnet18/fashion_mnist:size=96:batch=256").batch_size
    256
"""

from __future__ import annotations

import copy
import itertools
import time
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from classic_cnns.bench._common import (
    MEMORY_FORMATS,
    PRECISIONS,
    TRAINER_PRECISION,
    BenchConfig,
    Results,
    Task,
    autocast,
    backend_tasks,
    backend_unavailable,
    precision_unsupported,
    ratio,
    seeded,
    spread,
    synchronize,
    to_memory_format,
)
from classic_cnns.bench._data import (
    DATASETS,
    DataUnavailable,
    image_size,
    make_datamodule,
    resolve_data_dir,
)
from classic_cnns.data.base import InMemoryDataModule
from classic_cnns.hub import create_model
from classic_cnns.models import family_class
from classic_cnns.registry import model_info
from classic_cnns.task import ImageClassifier

__all__ = ["LOOPS", "TRAINER_FLAGS", "Setting", "handwritten_fit", "plan", "run"]

LOOPS = ("network", "handwritten", "lightning", "lightning_bare")
# The Trainer of the comparison: everything that writes files or the terminal is off.
TRAINER_FLAGS: dict[str, Any] = dict(
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    num_sanity_val_steps=0,
)
# One recipe for all loops; the numbers matter little, only that they are equal.
_HPARAMS: dict[str, Any] = dict(
    optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4, scheduler="onecycle"
)
_KEYS = {
    "size": "image_size",
    "batch": "batch_size",
    "precision": "precision",
    "format": "memory_format",
}


@dataclass(frozen=True)
class Setting:
    """One configuration of the overhead comparison.

    Attributes:
        model: Registered model name.
        dataset: A dataset of :data:`classic_cnns.bench._data.DATASETS`.
        image_size: Input H = W (bilinear resize); ``None``: the model's own (padded).
        batch_size: Images per batch.
        precision: One of :data:`~classic_cnns.bench.PRECISIONS`.
        memory_format: ``"contiguous"`` or ``"channels_last"``.

    Example:
        >>> from classic_cnns.bench.overhead import Setting
        >>> s = Setting.parse("lenet5/mnist10k:precision=bf16-mixed")
        >>> s.model, s.image_size, s.batch_size, s.precision
        ('lenet5', None, 128, 'bf16-mixed')
    """

    model: str
    dataset: str
    image_size: int | None = None
    batch_size: int = 128
    precision: str = "fp32"
    memory_format: str = "contiguous"

    @classmethod
    def parse(cls, text: str) -> Setting:
        """Read ``"model/dataset[:key=value...]"``; raise ``ValueError`` naming what is wrong."""
        head, *pairs = text.split(":")
        model, _, dataset = head.partition("/")
        if dataset not in DATASETS:
            raise ValueError(
                f"overhead setting {text!r}: expected 'model/dataset[:key=value...]' with a "
                f"dataset of {sorted(DATASETS)}"
            )
        values: dict[str, Any] = {}
        for pair in pairs:
            key, _, value = pair.partition("=")
            if key not in _KEYS or not value:
                raise ValueError(
                    f"overhead setting {text!r}: {pair!r} is not key=value with a key of "
                    f"{sorted(_KEYS)}"
                )
            values[_KEYS[key]] = value
        for key in ("image_size", "batch_size"):
            if key in values:
                if not values[key].isdigit() or int(values[key]) < 1:
                    raise ValueError(f"overhead setting {text!r}: {key} must be a positive int")
                values[key] = int(values[key])
        for key, allowed in (("precision", PRECISIONS), ("memory_format", MEMORY_FORMATS)):
            if values.get(key, allowed[0]) not in allowed:
                raise ValueError(f"overhead setting {text!r}: {key} must be one of {allowed}")
        return cls(model_info(model).name, dataset, **values)


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
    net: nn.Module,
    dm: InMemoryDataModule,
    epochs: int,
    backend: str,
    limit: int | None = None,
    precision: str = "fp32",
    network_only: bool = False,
) -> list[EpochTiming]:
    """Train ``net`` with a plain PyTorch loop; return the timing of each epoch.

    With ``network_only`` every step reuses the first batch, transferred and transformed
    once: the network's own training speed, without data loading.

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
    scaler = torch.amp.GradScaler(backend) if precision == "fp16-mixed" else None
    clock = _Clock(backend)

    def to_device(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        return dm.on_after_batch_transfer((batch[0].to(backend), batch[1].to(backend)), 0)

    first = to_device(next(iter(dm.train_dataloader()))) if network_only else None
    for epoch in range(epochs):
        loader = dm.train_dataloader()
        sampler: Any = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):  # as the Trainer does: a new order every epoch
            sampler.set_epoch(epoch)
        clock.epoch_start()
        batches = itertools.repeat(first, steps) if first else itertools.islice(loader, steps)
        for batch in batches:
            x, y = batch if first else to_device(batch)
            with autocast(backend, precision):
                loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                opt.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            sched.step()
            clock.step_end()
        clock.epoch_end()
    return clock.epochs


def _lightning_fit(
    model: ImageClassifier,
    dm: InMemoryDataModule,
    epochs: int,
    backend: str,
    limit: int | None,
    precision: str,
) -> list[EpochTiming]:
    clock = _Clock(backend)
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator=backend,
        devices=1,
        precision=TRAINER_PRECISION[precision],  # type: ignore[arg-type]
        limit_train_batches=limit if limit is not None else 1.0,
        callbacks=[_ClockCallback(clock)],
        **TRAINER_FLAGS,
    )
    trainer.fit(model, datamodule=dm)
    return clock.epochs


def _skip(results: Results, backend: str, base: dict[str, Any], reason: str) -> None:
    results.note(f"overhead {base['setting']} on {backend}: skipped, {reason}")
    for loop in LOOPS:
        results.add("overhead", backend, status="skipped", note=reason, loop=loop, **base)


def run(cfg: BenchConfig, results: Results, backend: str, setting: str) -> None:
    """Run the loops ``overhead_repeats`` times each, interleaved; add one row per loop.

    Example:
        >>> from classic_cnns.bench import BenchConfig, Results
        >>> from classic_cnns.bench.overhead import run
        >>> cfg = BenchConfig(overhead_epochs=2, overhead_repeats=1, limit_train_batches=2)
        >>> results = Results(cfg)
        >>> run(cfg, results, "cpu", "lenet5/digits")
        >>> [r["loop"] for r in results.rows["overhead"]]
        ['network', 'handwritten', 'lightning', 'lightning_bare']
    """
    s = Setting.parse(setting)
    size = image_size(s.model, s.image_size, cfg.max_image_size)
    base: dict[str, Any] = dict(
        setting=setting,
        model=s.model,
        dataset=s.dataset,
        input_size=f"{size[0]}x{size[1]}",  # channels added once the data is read
        precision=s.precision,
        memory_format=s.memory_format,
        batch_size=s.batch_size,
    )
    reason = backend_unavailable(backend) or precision_unsupported(backend, s.precision)
    if reason is None and cfg.overhead_epochs < 2:
        reason = "overhead_epochs must be >= 2 (the first epoch of each fit is warm-up)"
    if reason is not None:
        return _skip(results, backend, base, reason)
    resize = "pad" if s.image_size is None else "resize"
    try:
        dm = make_datamodule(
            s.dataset,
            resolve_data_dir(cfg.data_dir),
            batch_size=s.batch_size,
            seed=cfg.seed,
            image_size=size,
            resize=resize,
        )
    except DataUnavailable as err:
        return _skip(results, backend, base, str(err))
    base["input_size"] = f"{dm.in_channels}x{base['input_size']}"
    with seeded(cfg.seed):
        template = create_model(s.model, num_classes=dm.num_classes, in_channels=dm.in_channels)
    state = copy.deepcopy(template.state_dict())
    epochs, limit = cfg.overhead_epochs, cfg.limit_train_batches
    fmt = to_memory_format(s.memory_format)
    timings: dict[str, list[EpochTiming]] = {loop: [] for loop in LOOPS}
    for _ in range(cfg.overhead_repeats):
        for loop in LOOPS:
            cls = family_class(model_info(s.model).family)
            if loop == "lightning_bare":
                cls = _bare_class(cls)
            model = cls(
                arch=s.model, num_classes=dm.num_classes, in_channels=dm.in_channels, **_HPARAMS
            )
            model.load_state_dict(state)
            model.net.to(memory_format=fmt)
            with seeded(cfg.seed):  # the same shuffling order in every loop
                if loop in ("network", "handwritten"):
                    times = handwritten_fit(
                        model.net, dm, epochs, backend, limit, s.precision, loop == "network"
                    )
                else:
                    times = _lightning_fit(model, dm, epochs, backend, limit, s.precision)
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
    ips = {loop: ratio(n_images, epoch_stats[loop]["epoch_s_median"]) for loop in LOOPS}
    hand = epoch_stats["handwritten"]["epoch_s_median"]
    hand_step = step_stats["handwritten"]["step_median"]
    flags = ", ".join(f"{k}={v}" for k, v in TRAINER_FLAGS.items())
    for loop in LOOPS:
        stats, step = epoch_stats[loop], step_stats[loop]
        results.add(
            "overhead",
            backend,
            loop=loop,
            **base,
            images_per_epoch=n_images,
            epochs_per_fit=epochs,
            measured_epochs=len(timings[loop]),
            repeats=cfg.overhead_repeats,
            **stats,
            ips=ips[loop],
            overhead_pct=None if loop == "network" else pct(stats["epoch_s_median"], hand),
            step_ms_median=step["step_median"],
            step_ms_min=step["step_min"],
            overhead_step_pct=None if loop == "network" else pct(step["step_median"], hand_step),
            vs_network=ratio(ips[loop], ips["network"]),
            trainer_flags=flags if loop.startswith("lightning") else None,
        )


def plan(cfg: BenchConfig) -> list[Task]:
    """One overhead task per setting and selected backend (settings checked here)."""
    tasks = []
    for setting in cfg.overhead:
        s = Setting.parse(setting)

        def task(cfg: BenchConfig, results: Results, backend: str, setting: str = setting) -> None:
            run(cfg, results, backend, setting)

        tasks += backend_tasks(
            cfg, "overhead", setting, task, setting=setting, model=s.model, dataset=s.dataset
        )
    return tasks
