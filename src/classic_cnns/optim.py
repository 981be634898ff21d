"""Optimizers and learning-rate schedules, as the task's hyperparameters name them.

:func:`param_groups` splits a network's parameters into the groups the task trains:
backbone then head (each at its own learning rate), and within each, weights (with weight
decay) then biases and normalisation scales (without). :func:`make_optimizer` and
:func:`make_scheduler` build what ``configure_optimizers`` returns; the schedules step
once per optimizer step.

Example:
    >>> from torch import nn
    >>> from classic_cnns.optim import make_optimizer, param_groups
    >>> net = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    >>> groups = param_groups(net, head=set(net[1].parameters()), lr=0.1, weight_decay=1e-4)
    >>> [(len(g["params"]), g["weight_decay"]) for g in groups]
    [(1, 0.0001), (1, 0.0), (1, 0.0001), (1, 0.0)]
    >>> type(make_optimizer("sgd", groups, lr=0.1, momentum=0.9)).__name__
    'SGD'
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from typing import Any, get_args

import torch
from lightning.pytorch.callbacks import GradientAccumulationScheduler
from torch import nn

from classic_cnns._checks import is_int, is_number
from classic_cnns._warn import warn
from classic_cnns.recipes import OptimizerName, SchedulerName

__all__ = [
    "CLI_OPTIMIZER_KEYS",
    "OPTIMIZERS",
    "SCHEDULERS",
    "check_resumed_optimizers",
    "check_resumed_schedule",
    "check_settings",
    "make_optimizer",
    "make_scheduler",
    "param_groups",
    "record_cli_optimizer",
    "record_tuned_hparams",
    "restore_cli_optimizer",
    "run_steps",
    "schedule_length",
]

OPTIMIZERS: tuple[str, ...] = get_args(OptimizerName)
"""The :data:`~classic_cnns.recipes.OptimizerName` choices that :func:`make_optimizer` takes.

Example:
    >>> from classic_cnns.optim import OPTIMIZERS
    >>> OPTIMIZERS
    ('sgd', 'adam', 'adamw', 'rmsprop')
"""

CLI_OPTIMIZER_KEYS: tuple[str, str] = ("cli_optimizer", "cli_lr_scheduler")
"""The hyperparameters :func:`record_cli_optimizer` records; no model argument takes them.

Example:
    >>> from classic_cnns.optim import CLI_OPTIMIZER_KEYS
    >>> CLI_OPTIMIZER_KEYS
    ('cli_optimizer', 'cli_lr_scheduler')
"""

SCHEDULERS: tuple[str, ...] = get_args(SchedulerName)
"""The :data:`~classic_cnns.recipes.SchedulerName` choices that :func:`make_scheduler` takes.

Example:
    >>> from classic_cnns.optim import SCHEDULERS
    >>> SCHEDULERS
    ('cosine', 'onecycle', 'step', 'none')
"""


def check_settings(
    *,
    optimizer: Any,
    scheduler: Any,
    lr: Any,
    weight_decay: Any,
    momentum: Any,
    backbone_lr: Any = None,
) -> None:
    """Raise a ``ValueError`` naming the first setting out of its range, and what it got.

    Example:
        >>> check_settings(optimizer="sgd", scheduler="step", lr=-1, weight_decay=0,
        ...                momentum=0.9)
        Traceback (most recent call last):
        ...
        ValueError: lr must be a positive finite number; got -1
    """
    for name, value, choices in (("optimizer", optimizer, OPTIMIZERS),
                                 ("scheduler", scheduler, SCHEDULERS)):  # fmt: skip
        if value not in choices:
            raise ValueError(f"{name} must be one of {choices}; got {value!r}")
    for name, value, ok, expected in (
        ("lr", lr, is_number(lr) and lr > 0, "a positive finite number"),
        ("weight_decay", weight_decay, is_number(weight_decay) and weight_decay >= 0,
         "a finite number >= 0"),
        ("momentum", momentum, is_number(momentum) and 0 <= momentum < 1, "in [0, 1)"),
    ):  # fmt: skip
        if not ok:
            raise ValueError(f"{name} must be {expected}; got {value!r}")
    if backbone_lr is not None and not (is_number(backbone_lr) and backbone_lr > 0):
        raise ValueError(
            f"backbone_lr must be a positive finite number or None; got {backbone_lr!r} "
            "(to keep the backbone fixed, use freeze_backbone())"
        )


def param_groups(
    module: nn.Module,
    head: Collection[nn.Parameter],
    *,
    lr: float,
    weight_decay: float,
    backbone_lr: float | None = None,
) -> list[dict[str, Any]]:
    """Parameter groups: backbone (at ``backbone_lr``) then head (at ``lr``), decay split.

    Each part is split into weights (``ndim > 1``, with ``weight_decay``) and biases and
    normalisation scales (without). Frozen parameters stay in: they get no gradient, so the
    optimizer skips them, and unfreezing later needs no new group. Empty groups are left out.
    Each group is named (``backbone``, ``backbone_no_decay``, ``head``, ``head_no_decay``),
    the names Lightning's ``LearningRateMonitor`` logs them under (``lr-SGD/head``).

    Example:
        >>> from torch import nn
        >>> net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
        >>> groups = param_groups(net, head=list(net[1].parameters()), lr=0.1, weight_decay=0.0,
        ...                       backbone_lr=0.01)  # fmt: skip
        >>> [(g["name"], g["lr"]) for g in groups]  # doctest: +NORMALIZE_WHITESPACE
        [('backbone', 0.01), ('backbone_no_decay', 0.01), ('head', 0.1),
         ('head_no_decay', 0.1)]
    """
    head_ids = {id(p) for p in head}
    parts = [
        ("backbone", [p for p in module.parameters() if id(p) not in head_ids], backbone_lr or lr),
        ("head", [p for p in module.parameters() if id(p) in head_ids], lr),
    ]
    groups = [
        {
            "params": [p for p in params if (p.ndim > 1) == decay],
            "lr": part_lr,
            "weight_decay": weight_decay if decay else 0.0,
            "name": name if decay else f"{name}_no_decay",
        }
        for name, params, part_lr in parts
        for decay in (True, False)
    ]
    return [g for g in groups if g["params"]]


def make_optimizer(
    name: OptimizerName, groups: list[dict[str, Any]], *, lr: float, momentum: float
) -> torch.optim.Optimizer:
    """The optimizer ``name`` says: ``"sgd"`` (Nesterov when ``momentum > 0``), ``"adam"``,
    ``"adamw"`` or ``"rmsprop"``.

    Example:
        >>> from torch import nn
        >>> groups = [{"params": list(nn.Linear(2, 2).parameters())}]
        >>> make_optimizer("adamw", groups, lr=1e-3, momentum=0.9).defaults["lr"]
        0.001
    """
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, momentum=momentum)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}; got {name!r}")


def make_scheduler(
    name: SchedulerName, optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The per-step schedule over ``total_steps``, or ``None`` for ``"none"``.

    ``"cosine"`` decays to 0; ``"onecycle"`` warms up from 1/25 of each group's learning
    rate to the rate itself, then anneals to 1/250000 of it, and cycles the momentum (Adam's
    beta1) from 0.95 down to 0.85 and back, as Smith's policy and PyTorch's ``OneCycleLR``
    do (an optimizer without momentum keeps none); ``"step"`` multiplies by 0.1 at 50% and
    75% of the run (the ResNet-CIFAR recipe).

    One-cycle's warm-up ends at step ``0.3 * total_steps - 1``, as in ``OneCycleLR``: where
    that is not whole, no step trains at exactly the rate (4 steps peak at 0.81 of it, 11
    steps at 0.98). One or two steps leave no room for a warm-up: the first step trains at
    the rate and a second at the final rate (momentum 0.85 throughout).

    Example:
        >>> from torch import nn
        >>> opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
        >>> make_scheduler("step", opt, 100).milestones
        Counter({50: 1, 75: 1})
    """
    if name == "none":
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if name == "onecycle":
        return _one_cycle(optimizer, total_steps)
    if name == "step":  # at least one step before each decay, even in a run of 1 or 2 steps
        milestones = [max(1, total_steps // 2), max(2, total_steps * 3 // 4)]
        step = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)
        step.total_steps = total_steps  # type: ignore[attr-defined]  # saved in its state
        return step
    raise ValueError(f"scheduler must be one of {SCHEDULERS}; got {name!r}")


def _one_cycle(
    optimizer: torch.optim.Optimizer, total_steps: int
) -> torch.optim.lr_scheduler.OneCycleLR:
    if not is_int(total_steps, 1):
        raise ValueError(f"total_steps must be a positive integer; got {total_steps!r}")
    max_lr = [g["lr"] for g in optimizer.param_groups]
    # Cycling plain SGD's momentum 0 would give it momentum 0.85 to 0.95.
    cycle = all("betas" in g or g.get("momentum", 0) > 0 for g in optimizer.param_groups)
    if total_steps > 2:  # torch's own schedule, which the committed figures were trained with
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lr, total_steps=total_steps, cycle_momentum=cycle
        )
    # Torch's warm-up would end before step 0 (at -0.7 or -0.4): one step trained at the final
    # rate, max_lr / 250000, and two at 0.81 of the rate. Here the run starts at the peak (div
    # factor 1, the peak's momentum); pct_start 0.75 ends the warm-up at step 0.5 or -0.25,
    # neither a 0/0 in OneCycleLR; one step has no final rate.
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=0.75,
        div_factor=1.0, final_div_factor=2.5e5 if total_steps == 2 else 1.0,
        cycle_momentum=cycle, max_momentum=0.85,
    )  # fmt: skip


def schedule_length(scheduler: Any) -> int | None:
    """The number of steps a schedule of :func:`make_scheduler` was made for, if it says.

    Example:
        >>> from torch import nn
        >>> opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
        >>> schedule_length(make_scheduler("cosine", opt, 40))
        40
        >>> schedule_length(make_scheduler("onecycle", opt, 30).state_dict())  # a saved one's
        30
    """
    saved = scheduler if isinstance(scheduler, dict) else None  # a checkpoint's state_dict
    for attr in ("total_steps", "T_max"):  # OneCycleLR and "step", CosineAnnealingLR
        value = getattr(scheduler, attr, None) if saved is None else saved.get(attr)
        if value is not None:
            return int(value)
    return None


def run_steps(trainer: Any, scheduler: str) -> int | None:
    """The optimizer steps of ``trainer``'s run that a ``scheduler`` schedule spans
    (``Trainer.estimated_stepping_batches``, epoch by epoch under a
    ``GradientAccumulationScheduler``); ``None`` where none is made: ``'none'``, or a run that
    trains nothing (``max_steps=0``, ``limit_train_batches=0``).

    Refuses an ``accumulate_grad_batches`` below 1, which Lightning takes unchecked (0 divides
    by zero; -2 trains on), a run of no finite length, naming what would end it, and a
    schedule without a ``trainer`` (``None``: a hand call of ``configure_optimizers``, which
    gets no schedule with ``scheduler="none"``).

    Example:
        >>> import lightning as L
        >>> run_steps(L.Trainer(max_steps=0, logger=False), "onecycle") is None
        True
        >>> run_steps(L.Trainer(accumulate_grad_batches=0, logger=False), "none")
        Traceback (most recent call last):
        ...
        ValueError: accumulate_grad_batches must be an int >= 1 (batches per optimizer step); got 0
    """
    if trainer is None:  # configure_optimizers() called by hand, outside a run
        if scheduler == "none":
            return None
        raise RuntimeError(
            f"the {scheduler!r} LR schedule is made for a run's optimizer steps, which only a "
            "Trainer knows: configure_optimizers() outside a fit cannot make it; let "
            "Trainer.fit call it, or pass scheduler='none' and make your own schedule"
        )
    if not is_int(accumulate := trainer.accumulate_grad_batches, 1):
        raise ValueError(
            "accumulate_grad_batches must be an int >= 1 (batches per optimizer step); "
            f"got {accumulate!r}"
        )
    if scheduler == "none" or 0 in (trainer.limit_train_batches, trainer.max_steps):
        return None
    total = _accumulated(trainer, trainer.estimated_stepping_batches)
    if not math.isfinite(total) or total < 1:
        endless = trainer.max_epochs == -1 and trainer.max_steps == -1
        fix = (
            "set trainer max_epochs or max_steps"
            if endless  # else the training loader has no len(): Lightning's -1
            else "the training loader has no length (an IterableDataset?): set trainer "
            "max_steps or an int limit_train_batches"
        )
        raise ValueError(
            f"scheduler={scheduler!r} needs a finite run length; {fix}, or pass scheduler='none'"
        )
    return int(total)


def _accumulated(trainer: Any, total: float) -> float:
    # Lightning's estimate takes one accumulation for every epoch; a GradientAccumulationScheduler
    # changes it by epoch (a schedule planned for the estimate ended at 14% of its peak).
    callbacks = getattr(trainer, "callbacks", [])
    gas = next((c for c in callbacks if isinstance(c, GradientAccumulationScheduler)), None)
    batches, epochs = trainer.num_training_batches, trainer.max_epochs
    if (
        gas is None
        or not math.isfinite(total)
        or not math.isfinite(batches)
        or epochs in (None, -1)
    ):
        return total
    steps = sum(math.ceil(batches / gas.get_accumulate_grad_batches(e)) for e in range(epochs))
    return steps if trainer.max_steps == -1 else min(steps, trainer.max_steps)


# What a resume that cannot take this run's settings can do instead.
_NEW_RUN = (
    "create_model(name, checkpoint_path=<file>) (the CLI: --weights <file>) instead of ckpt_path"
)


def check_resumed_schedule(name: str, planned: int | None, restored: Sequence[Any]) -> None:
    """Refuse to resume LR schedules made for another run length than this run's.

    A schedule's state comes back from a checkpoint with its own length: resumed with more
    epochs, one-cycle would stop with "Tried to step N times" at the old end and cosine
    would climb back up. The same run length (an interrupted run) passes. The message names
    every setting the length follows (``Trainer.estimated_stepping_batches``): max_epochs,
    max_steps, the batch size, the number of processes, limit_train_batches and
    accumulate_grad_batches.

    Args:
        name: The schedule's name, for the message.
        planned: This run's length in steps (:func:`schedule_length`), if known.
        restored: The schedulers as the checkpoint restored them, or their saved states.

    Example:
        >>> from torch import nn
        >>> opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
        >>> check_resumed_schedule("cosine", 50, [make_scheduler("cosine", opt, 40)])
        Traceback (most recent call last):
        ...
        ValueError: the checkpoint's 'cosine' LR schedule was made for 40 steps; this run has 50...
    """
    for scheduler in restored:
        length = schedule_length(scheduler)
        if planned is not None and length is not None and length != planned:
            raise ValueError(
                f"the checkpoint's {name!r} LR schedule was made for {length} steps; this run "
                f"has {planned}. The steps of a run are its epochs (trainer max_epochs) times "
                "the optimizer steps per epoch, capped at trainer max_steps; the steps per "
                "epoch follow the batch size (--data.batch_size), the number of processes "
                "(--trainer.devices x --trainer.num_nodes), trainer limit_train_batches and "
                "accumulate_grad_batches: one of these differs from the checkpoint's run. "
                "Resume with the checkpoint's settings, or start a new run from its weights: "
                f"{_NEW_RUN}"
            )


_OTHER_OPTIMIZER = (
    "Resume with the checkpoint's optimizer (the CLI: the interrupted run's --optimizer "
    "flags, or -c its config.yaml)"
)


# Settings of a parameter group that say how torch runs the step, not what it computes.
_IMPLEMENTATION = frozenset({"params", "param_names", "foreach", "fused", "capturable",
                             "differentiable"})  # fmt: skip


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):  # betas: saved as given
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):  # a tensor lr
        a, b = torch.as_tensor(a).cpu().double(), torch.as_tensor(b).cpu().double()
        return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-9, atol=0))
    if is_number(a) and is_number(b):
        return math.isclose(a, b, rel_tol=1e-9)
    return bool(a == b)


def _settings_kept(opt: Any, state: Any, schedulers: Sequence[Any]) -> list[str]:
    # What this run asked for and the restore replaces: torch's load_state_dict takes every
    # group setting from the checkpoint. A schedule moves lr (its initial_lr is compared) and,
    # cycling them, momentum and betas (its max_momentum and base_momentum are compared).
    moved = {"lr"} if schedulers else set()
    if any(getattr(s, "cycle_momentum", False) for s in schedulers):
        moved |= {"momentum", "betas"}
    kept = []
    for i, (ours, saved) in enumerate(zip(opt.param_groups, state["param_groups"], strict=True)):
        for key in sorted(ours.keys() & saved.keys() - _IMPLEMENTATION - moved):
            if not _same(ours[key], saved[key]):
                kept.append(f"group {i} {key} {saved[key]!r} (this run's: {ours[key]!r})")
    return kept


def check_resumed_optimizers(
    optimizers: Sequence[Any], states: Sequence[Any], schedulers: Sequence[Any] = ()
) -> None:
    """Refuse a checkpoint's optimizer states that this run's optimizers cannot take.

    Before Lightning restores them: each state is loaded into a copy of its optimizer whose
    parameters are on the meta device (no memory, no change to the real one), so that an
    SGD state resumed under Adam is refused by name, where torch raised ``KeyError: 'step'``
    (torch's own ``ValueError`` for other parameter groups passes unchanged).
    After the restore, a state whose groups lack a setting of this run's optimizer class
    (Adam's under SGD: no ``momentum``) is refused too (pass the restored optimizers and no
    ``states``).

    A state that loads but was made with other settings (``lr``, ``weight_decay``,
    ``momentum``, ...: the CLI's ``--optimizer.*`` flags changed on a resume) is warned of:
    torch restores a group's settings with its state, so the checkpoint's are the ones that
    train. Settings a schedule moves are compared where the schedule keeps them
    (``initial_lr``, one-cycle's ``max_momentum``).

    Args:
        optimizers: This run's optimizers, as made before the restore (or restored).
        states: The checkpoint's ``optimizer_states``; empty after the restore.
        schedulers: This run's LR schedulers (``trainer.lr_scheduler_configs``' ``scheduler``).

    Example:
        >>> from torch import nn
        >>> params = list(nn.Linear(2, 2).parameters())
        >>> sgd = torch.optim.SGD(params, lr=0.1, momentum=0.9)
        >>> for p in params: p.grad = torch.ones_like(p)
        >>> sgd.step()
        >>> check_resumed_optimizers([torch.optim.Adam(params)], [sgd.state_dict()])
        Traceback (most recent call last):
        ...
        ValueError: the checkpoint's optimizer state does not load into this run's Adam (...
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     check_resumed_optimizers([torch.optim.SGD(params, lr=0.01)], [sgd.state_dict()])
        >>> message = str(caught[0].message)
        >>> message[message.index("group 0") : message.index(". Torch")]
        "group 0 lr 0.1 (this run's: 0.01), group 0 momentum 0.9 (this run's: 0)"
    """
    pairs = zip(optimizers, states, strict=False) if states else ((o, None) for o in optimizers)
    for opt, state in pairs:  # (as many states as optimizers: Lightning's own check)
        restored = opt
        if state is not None:
            restored = copy.copy(opt)
            restored.state = defaultdict(dict)
            restored.param_groups = [
                {**g, "params": [torch.empty_like(p, device="meta") for p in g["params"]]}
                for g in opt.param_groups
            ]
            try:
                restored.load_state_dict(state)
            except (KeyError, TypeError, RuntimeError) as err:  # (torch's ValueError: as is)
                raise ValueError(
                    f"the checkpoint's optimizer state does not load into this run's "
                    f"{type(opt).__name__} ({type(err).__name__}: {err}). {_OTHER_OPTIMIZER}"
                ) from err
        if lacks := sorted({k for g in restored.param_groups for k in opt.defaults if k not in g}):
            raise ValueError(
                f"the checkpoint's optimizer is not this run's {type(opt).__name__}: its "
                f"parameter groups lack {lacks}. {_OTHER_OPTIMIZER}"
            )
        if state is not None and (kept := _settings_kept(opt, state, schedulers)):
            warn(
                "the resumed optimizer trains with the checkpoint's settings, not this run's: "
                f"{', '.join(kept)}. Torch restores an optimizer's settings with its state. To "
                "train with other settings, start a new run from the checkpoint's weights: "
                f"{_NEW_RUN}"
            )


def record_tuned_hparams(model: Any) -> dict[str, Any]:
    """Put the hyperparameters a tuner changed into those Lightning logs; returns them.

    ``LearningRateFinder`` sets the ``lr`` it found in ``hparams``, in the callbacks'
    ``on_fit_start``; Lightning logs ``hparams_initial`` after the module's (and again at
    each ``test``), which still held the ``lr`` given: ``hparams.yaml`` and TensorBoard named
    it, while the checkpoint recorded the one found and trained with. The finder sets its
    ``lr`` in every parameter group of LightningCLI's ``--optimizer`` too, so that a
    ``cli_optimizer`` (:func:`record_cli_optimizer`) records it as well.

    Example:
        >>> from classic_cnns import LeNet5
        >>> model = LeNet5(lr=0.1)
        >>> model.hparams.lr = 0.02  # as LearningRateFinder sets it
        >>> record_tuned_hparams(model), model.hparams_initial.lr
        ({'lr': 0.02}, 0.02)
    """
    initial = model._hparams_initial
    tuned = {k: v for k, v in model.hparams.items() if k in initial and not _same(initial[k], v)}
    initial.update(tuned)
    for hparams in (initial, model.hparams) if "lr" in tuned else ():
        if isinstance(given := hparams.get(CLI_OPTIMIZER_KEYS[0]), dict):
            given.setdefault("init_args", {})["lr"] = tuned["lr"]
    return tuned


def record_cli_optimizer(
    model: Any, optimizer: Any = None, lr_scheduler: Any = None
) -> dict[str, Any]:
    """Record the optimizer and LR schedule that replace the model's own in its hyperparameters.

    LightningCLI's ``--optimizer`` and ``--lr_scheduler`` replace ``configure_optimizers``
    and leave ``hparams`` alone, so ``hparams.yaml``, TensorBoard and the checkpoint named
    only the model's ``optimizer`` and ``lr``, which did not train. The configurations given
    (``class_path`` and ``init_args``, as ``config.yaml`` has them) are recorded as
    ``cli_optimizer`` and ``cli_lr_scheduler`` (:data:`CLI_OPTIMIZER_KEYS`), each where
    given; the model's own settings stay, as a model rebuilt from the checkpoint
    (``load_model``) trains with them. Returns what was recorded.

    Example:
        >>> from classic_cnns import LeNet5
        >>> model = LeNet5()
        >>> adam = {"class_path": "torch.optim.Adam", "init_args": {"betas": (0.9, 0.99)}}
        >>> record_cli_optimizer(model, adam)
        {'cli_optimizer': {'class_path': 'torch.optim.Adam', 'init_args': {'betas': [0.9, 0.99]}}}
        >>> model.hparams_initial.cli_optimizer["class_path"], model.hparams.optimizer
        ('torch.optim.Adam', 'sgd')
    """

    def plain(value: Any) -> Any:  # as config.yaml has it: YAML, JSON and weights_only load it
        value = value.as_dict() if hasattr(value, "as_dict") else value  # a Namespace
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if value is None or isinstance(value, str | int | float | bool):
            return value
        name = getattr(value, "__qualname__", None)  # a function or class: its import path
        return f"{value.__module__}.{name}" if name and hasattr(value, "__module__") else str(value)

    given = zip(CLI_OPTIMIZER_KEYS, (optimizer, lr_scheduler), strict=True)
    recorded = {key: plain(value) for key, value in given if value is not None}
    _record(model, recorded)
    return recorded


def _record(model: Any, values: Mapping[str, Any]) -> None:
    """Set hyperparameters in ``hparams`` and in ``hparams_initial``, which loggers record."""
    model.hparams.update(copy.deepcopy(values))
    model._hparams_initial.update(copy.deepcopy(values))


def restore_cli_optimizer(model: Any, saved: Any, *, resumed: bool = False) -> None:
    """Take a checkpoint's ``cli_optimizer`` and ``cli_lr_scheduler`` into a model restored from it.

    They say how its weights trained: a model restored to evaluate or export (``test
    --ckpt_path``, ``load_from_checkpoint``, ``load_model``) records them. A resumed ``fit``
    (``resumed``) keeps those this command gives, and only those, but with the checkpoint's
    values: torch restores an optimizer's and a schedule's settings with their states, so
    the checkpoint's train (:func:`check_resumed_optimizers` warns of the optimizer's;
    the schedule's are warned of here, and another schedule class is refused).

    Args:
        model: The restored model.
        saved: The checkpoint's ``hyper_parameters``.
        resumed: Whether the checkpoint resumes this model's ``fit``.

    Example:
        >>> from classic_cnns import LeNet5
        >>> model = LeNet5()
        >>> restore_cli_optimizer(model, {"cli_optimizer": {"class_path": "torch.optim.Adam"}})
        >>> model.hparams.cli_optimizer
        {'class_path': 'torch.optim.Adam'}
    """
    saved = saved if isinstance(saved, Mapping) else {}
    for key in CLI_OPTIMIZER_KEYS:
        if key not in saved or (resumed and key not in model.hparams):
            continue  # (resumed without: the restored optimizer's check refuses or warns)
        was, now = saved[key], model.hparams.get(key)
        if resumed and key == "cli_lr_scheduler" and was != now:
            paths = [d.get("class_path") if isinstance(d, dict) else d for d in (was, now)]
            if paths[0] != paths[1]:
                raise ValueError(
                    f"the checkpoint's LR schedule is {paths[0]}; this run's --lr_scheduler is "
                    f"{paths[1]}. Resume with the interrupted run's --lr_scheduler flags (or -c "
                    "its config.yaml)"
                )
            old, new = was.get("init_args") or {}, now.get("init_args") or {}
            kept = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
            kept = [f"{k} {old.get(k)!r} (this run's: {new.get(k)!r})" for k in kept]
            warn(
                "the resumed LR schedule runs with the checkpoint's settings, not this run's: "
                f"{', '.join(kept)}. Torch restores a schedule's settings with its state. To "
                "train with other settings, start a new run from the checkpoint's weights: "
                f"{_NEW_RUN}"
            )
        _record(model, {key: was})
