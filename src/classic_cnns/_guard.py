"""Checks of each training, validation and test step that never make the host wait.

A check such as ``bool(torch.isfinite(loss))`` copies a value from the device to the host.
On a GPU that waits until every queued kernel has run, so the host stops queueing work and
the GPU idles between steps. On the CPU nothing is queued, and reading a value costs
nothing.

:class:`StepGuard` therefore works in two ways:

- **eager**, on the CPU or whenever a step must decide at once (``nonfinite="skip"``): each
  check is read immediately and raises, or reports the batch to skip, at the step itself;
- **deferred**, on an accelerator: the checks run on the device and only update a small
  device-side record of the first problem seen. The host reads that record at the points
  the task chooses (its logging steps and the end of each epoch, where Lightning waits for
  the device anyway) and raises then, naming the step where the problem occurred.

Labels outside ``[0, num_classes)`` would make the loss kernel fail on the device with an
unreadable message; in deferred mode they are clamped for that step's loss and metrics
and reported at the next read, like a non-finite value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn

from classic_cnns._warn import warn

__all__ = [
    "At",
    "NonFinitePolicy",
    "Problem",
    "StepGuard",
    "check_classes",
    "check_images",
    "check_label_values",
    "check_labels_structure",
    "keep_norm_statistics",
    "queued",
    "refuse_skip_across_processes",
    "report",
]

# What a step does with a batch whose images or loss are not finite.
NonFinitePolicy = Literal["raise", "skip", "ignore"]

# Kinds of check. A deferred check keeps its kind, step and epoch on the host and its values
# on the device, judged when read: the least and greatest label or pixel, the loss, or 1 for
# good soft labels and 0 for bad.
ProblemKind = Literal["labels", "images", "loss", "soft labels"]
_LABELS: ProblemKind = "labels"
_IMAGES: ProblemKind = "images"
_LOSS: ProblemKind = "loss"
_SOFT: ProblemKind = "soft labels"
_SOFT_RANGE = "soft labels must be class probabilities, in [0, 1] and summing to 1 per image"
# How far a row of soft labels may sum from 1: bf16 rounds each of a row's values by up to
# 2**-9 of itself, so a row of probabilities sums to 1 within 2**-9.
_SOFT_SUM_TOLERANCE = 1e-2


class At(NamedTuple):
    """Where a check ran: the stage, the batch's index in its epoch, the epoch, the global step.

    Example:
        >>> str(At("train", 5, 0, 1))
        'the train batch 5 of epoch 0 (global step 1)'
        >>> str(At("val", 6, 0, 8))
        'the val batch 6 (after 8 training steps, epoch 0)'
    """

    stage: str
    batch: int
    epoch: int
    step: int

    def __str__(self) -> str:
        if self.stage == "train":  # with gradient accumulation, batches share a step
            return f"the train batch {self.batch} of epoch {self.epoch} (global step {self.step})"
        after = f"after {self.step} training steps, epoch {self.epoch}"
        return f"the {self.stage} batch {self.batch} ({after})"


class Problem(NamedTuple):
    """The first problem a deferred :class:`StepGuard` recorded."""

    kind: ProblemKind
    at: At
    low: int  # the labels' range, for kind "labels"
    high: int


def queued(device: torch.device) -> bool:
    """Whether work on ``device`` runs behind the host, so that a read waits for the device.

    True for CUDA, MPS and XLA devices; false for the CPU, where reading a value is free.

    Example:
        >>> import torch
        >>> queued(torch.device("cpu"))
        False
    """
    return device.type != "cpu"


def check_images(
    x: Any, *, name: str, in_channels: int, min_size: tuple[int, int], weight: Tensor | None
) -> None:
    """Raise a clear error unless ``x`` is a float ``(N, in_channels, H, W)`` batch for the net.

    ``weight`` is one of the network's parameters: the batch must share its dtype (outside
    autocast) and its device. No value of ``x`` is read.

    Example:
        >>> import torch
        >>> check_images(torch.zeros(1, 3, 8, 8), name="net", in_channels=1, min_size=(8, 8),
        ...              weight=None)
        Traceback (most recent call last):
        ...
        ValueError: net was built for 1 input channel(s); got a batch with 3 ...
    """
    expected = f"a float tensor of shape (N, {in_channels}, H, W)"
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} expects {expected}; got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} expects {expected}; got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} expects {expected}; got dtype {x.dtype}. Convert images with "
            "x.float() / 255 and normalise, as the classic_cnns datamodules do"
        )
    casts = torch.is_autocast_enabled(x.device.type) and x.dtype != torch.float64  # never float64
    if weight is not None and x.dtype != weight.dtype and not casts:
        raise TypeError(
            f"{name} has {weight.dtype} weights; got a batch of dtype {x.dtype}. Convert "
            f"the batch (x.to({weight.dtype})) or the model (model.to({x.dtype}))"
        )
    if x.shape[1] != in_channels:
        hint = (  # numpy and PIL lay images out (N, H, W, C)
            "It looks channels-last (N, H, W, C): x.permute(0, 3, 1, 2) makes it (N, C, H, W)"
            if x.shape[3] == in_channels
            else f"Give it {in_channels} channel(s), or build the model with "
            f"in_channels={x.shape[1]}"
        )
        raise ValueError(
            f"{name} was built for {in_channels} input channel(s); got a batch with "
            f"{x.shape[1]} (shape {tuple(x.shape)}). {hint}"
        )
    min_h, min_w = min_size
    if x.shape[2] < min_h or x.shape[3] < min_w:
        raise ValueError(
            f"{name} needs images of at least {min_h}x{min_w} (H x W); got "
            f"{x.shape[2]}x{x.shape[3]} (shape {tuple(x.shape)}). Pad or resize the input, "
            "e.g. with the datamodule's image_size argument"
        )
    if weight is not None and x.device != weight.device:
        raise ValueError(
            f"{name} is on {weight.device}; got a batch on {x.device}. Move the batch "
            f"(x.to({str(weight.device)!r})) or the model"
        )


def check_classes(name: str, num_classes: int, found: Any, where: str) -> None:
    """Refuse a class count ``where`` gives (the datamodule's, the logits' width) that is not
    ``num_classes``, which the model's head, metrics and label checks were built for.

    Example:
        >>> check_classes("LeNet5", 10, 3, "the datamodule ImageFolder")
        Traceback (most recent call last):
        ...
        ValueError: LeNet5 has num_classes=10; the datamodule ImageFolder has 3 classes. ...
    """
    if isinstance(found, int) and found != num_classes:
        if found < 2:  # not the num_classes=1 that the model would refuse
            raise ValueError(
                f"{name} has num_classes={num_classes}; {where} has {found} class(es), and a "
                "classifier needs at least 2: expected a datamodule with 2 or more classes"
            )
        raise ValueError(
            f"{name} has num_classes={num_classes}; {where} has {found} classes. Build the "
            f"model with num_classes={found}, or call its reset_classifier({found}) (the "
            "plain network's replaces the head only, not the metrics and checks)"
        )


def report(
    kind: Literal["images", "loss"],
    *,
    policy: NonFinitePolicy,
    name: str,
    where: At,
    lr: float,
    deferred: bool = False,
    x: Tensor | None = None,
    loss: Tensor | None = None,
) -> None:
    """Raise, or warn under ``policy="skip"``, about non-finite images or a non-finite loss.

    ``deferred``: the problem was found on a later read of the device (see
    :meth:`StepGuard.report_pending`); ``x`` and ``loss`` (read here, when the step reads the
    device anyway) make the message of an eager check precise.

    Example:
        >>> import torch
        >>> where = At("train", 3, 0, 3)
        >>> report("images", policy="raise", name="lenet5", where=where, lr=0.1,
        ...        x=torch.tensor([1.0, float("nan")]))
        Traceback (most recent call last):
        ...
        ValueError: lenet5: the train batch 3 of epoch 0 (global step 3) has 1 NaN or infinite ...
    """
    if kind == "images":
        values = "NaN or infinite image values"
        if x is not None:
            bad = int((~torch.isfinite(x)).sum())
            values = f"{bad} NaN or infinite value(s) among its {x.numel()} image values"
        message = f"{name}: {where} has {values}; expected finite images"
        hint = "Check the data and its transform"
    else:
        value = "NaN or infinite" if loss is None else float(loss.detach())
        message = (
            f"{name}: the loss of {where} is {value}; expected a finite number. The images "
            "were finite, so the weights or logits overflowed"
        )
        hint = f"In training this usually means the learning rate (lr={lr}) is too high"
    if deferred:  # found on a later read of the device
        message += " (checked without waiting for the device, so found later)"
    if policy == "raise":
        raise ValueError(f"{message}. {hint}, or pass nonfinite='skip' to skip such batches")
    warn(f"{message}; skipping the batch (nonfinite='skip')")


def check_labels_structure(y: Any, batch_size: int, num_classes: int | None = None) -> None:
    """Raise unless ``y`` is a 1-D integer tensor with one label per image (no device read).

    With ``num_classes``, soft labels are taken too: float class probabilities of shape
    ``(batch_size, num_classes)``, as torchvision's ``MixUp`` and ``CutMix`` make them.

    Example:
        >>> import torch
        >>> check_labels_structure(torch.tensor([0.5, 1.0]), 2)
        Traceback (most recent call last):
        ...
        ValueError: labels must be an integer tensor of shape (2,); got dtype torch.float32 ...
    """
    expected = f"labels must be an integer tensor of shape ({batch_size},)"
    if num_classes is not None:
        expected += f" or soft labels (float) of shape ({batch_size}, {num_classes})"
        if isinstance(y, Tensor) and y.is_floating_point() and y.ndim == 2:
            if y.shape != (batch_size, num_classes):
                raise ValueError(f"{expected}; got soft labels of shape {tuple(y.shape)}")
            return
    if not isinstance(y, Tensor):
        raise TypeError(f"{expected}; got {type(y).__name__}")
    if (
        y.ndim != 1
        or y.shape[0] != batch_size
        or y.is_floating_point()
        or y.is_complex()
        or y.dtype == torch.bool
    ):
        soft = y.is_floating_point() and y.ndim == 2
        hint = " (soft labels are for training batches)" if soft else ""
        raise ValueError(f"{expected}; got dtype {y.dtype} and shape {tuple(y.shape)}{hint}")


def check_label_values(y: Tensor, num_classes: int) -> None:
    """Raise unless the labels are class indices in ``[0, num_classes)`` or, as floats, class
    probabilities in ``[0, 1]`` (one device read).

    Example:
        >>> import torch
        >>> check_label_values(torch.tensor([[0.7, 0.3], [0.0, 1.5]]), 2)
        Traceback (most recent call last):
        ...
        ValueError: soft labels must be class probabilities, in [0, 1] and summing to 1 per ...
    """
    if y.numel() == 0:
        return
    if y.is_floating_point():  # (N, C) soft labels
        low, high, least, most = _soft_bounds(y).tolist()
        if not (0 <= low <= high <= 1):  # NaN fails this too
            raise ValueError(f"{_SOFT_RANGE}; got values from {low} to {high}")
        if not (abs(least - 1) <= _SOFT_SUM_TOLERANCE and abs(most - 1) <= _SOFT_SUM_TOLERANCE):
            raise ValueError(f"{_SOFT_RANGE}; got rows summing to {least:.4g} to {most:.4g}")
        return
    low, high = torch.stack(list(torch.aminmax(y.detach()))).tolist()
    if low < 0 or high >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}); got values from {low} to {high}")


def _soft_bounds(y: Tensor) -> Tensor:
    # [least value, greatest value, least row sum, greatest row sum] of soft labels (N, C),
    # in float32 (NaN stays NaN): what both the eager and the deferred check compare.
    y = y.detach().float()
    return torch.stack([*torch.aminmax(y), *torch.aminmax(y.sum(dim=1))])


def keep_norm_statistics(module: nn.Module, active: bool = True) -> Callable[[], None]:
    """Copy the batch norm buffers of ``module``; the function returned puts them back.

    A training forward pass updates the running statistics before the loss is known, so a
    batch skipped for its non-finite loss (``nonfinite="skip"``) must put them back. With
    ``active=False`` nothing is copied and the function does nothing.

    Example:
        >>> import torch
        >>> norm = torch.nn.BatchNorm1d(2)
        >>> put_back = keep_norm_statistics(norm)
        >>> _ = norm(torch.full((4, 2), float("inf")))
        >>> put_back()
        >>> norm.running_mean.tolist(), int(norm.num_batches_tracked)
        ([0.0, 0.0], 0)
    """
    kept = [
        (buffer, buffer.clone())
        for m in (module.modules() if active else ())
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        for buffer in m.buffers(recurse=False)
    ]

    def put_back() -> None:
        with torch.no_grad():
            for buffer, copy in kept:
                buffer.copy_(copy)

    return put_back


def refuse_skip_across_processes(policy: NonFinitePolicy, world_size: int) -> None:
    """Refuse ``nonfinite="skip"`` in a run of several processes.

    A process that skips a batch leaves the others waiting: in training for its gradients
    (Lightning refuses a skipped ``training_step`` under DDP), in evaluation for the
    metrics' sync when it skipped all of its batches.

    Example:
        >>> refuse_skip_across_processes("skip", 2)
        Traceback (most recent call last):
        ...
        ValueError: nonfinite='skip' works in one process only; got 2 processes, where ...
    """
    if policy == "skip" and world_size > 1:
        raise ValueError(
            f"nonfinite='skip' works in one process only; got {world_size} processes, where "
            "a process that skips a batch leaves the others waiting for it. Use "
            "nonfinite='raise' (the default), or 'ignore'"
        )


def _finite(x: Tensor) -> Tensor:
    # One pass over x: NaN propagates through min and max, and an infinity is the min or the
    # max itself. (A sum is faster, but overflows to inf for large finite values.)
    low, high = torch.aminmax(x.detach())
    return torch.isfinite(low) & torch.isfinite(high)


class StepGuard:
    """Label, image and loss checks that read the device only when told to.

    Args:
        num_classes: Labels must lie in ``[0, num_classes)``.

    Example:
        >>> import torch
        >>> guard = StepGuard(num_classes=10)
        >>> guard.labels(torch.tensor([3, 12]), At("train", 5, 0, 5), eager=False).tolist()
        [3, 9]
        >>> guard.pending()
        Problem(kind='labels', at=At(stage='train', batch=5, epoch=0, step=5), low=3, high=12)
        >>> guard.pending() is None  # read and cleared
        True
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self._values: Tensor | None = None  # (capacity, 2), a row per deferred check
        self._rows: list[tuple[ProblemKind, At]] = []  # each row's kind and place
        self._seen = self._skipped = self._epoch = 0  # this epoch's batches, read eagerly

    # -- the checks of one step ----------------------------------------------------------
    def labels(self, y: Tensor, where: At, eager: bool) -> Tensor:
        """The labels as int64, checked to lie in ``[0, num_classes)``; soft labels (float
        ``(N, C)``) as they are, checked to lie in ``[0, 1]``.

        Eager: raise ``ValueError`` at once. Deferred: record the problem and return the
        labels clamped into range, so the step can finish on the device.
        """
        y = y if y.is_floating_point() else y.long()
        self._seen, self._epoch = self._seen + 1, where.epoch
        if eager:
            try:
                check_label_values(y, self.num_classes)
            except ValueError as err:
                raise ValueError(f"{err} ({where})") from None
            return y
        if y.is_floating_point():
            low, high, least, most = _soft_bounds(y)
            tol = _SOFT_SUM_TOLERANCE
            good = (low >= 0) & (high <= 1) & ((least - 1).abs() <= tol) & ((most - 1).abs() <= tol)
            self._note(_SOFT, where, good)  # NaN is bad too
            return y.nan_to_num(0.0).clamp(0, 1)
        self._note(_LABELS, where, *torch.aminmax(y.detach()))  # judged when read
        return y.clamp(0, self.num_classes - 1)

    def images(self, x: Tensor, where: At, eager: bool) -> bool:
        """Whether ``x`` is all finite; deferred, record a problem and return ``True``."""
        if not x.is_floating_point():  # integers are finite; forward names a wrong dtype
            return True
        if eager:
            self._skipped += not (ok := bool(_finite(x)))
            return ok
        self._note(_IMAGES, where, *torch.aminmax(x.detach()))  # NaN is the least and greatest
        return True

    def loss(self, loss: Tensor, where: At, eager: bool) -> bool:
        """Whether ``loss`` is finite; deferred, record a problem and return ``True``."""
        if eager:
            self._skipped += not (ok := bool(torch.isfinite(loss.detach())))
            return ok
        self._note(_LOSS, where, loss.detach())
        return True

    # -- the record ----------------------------------------------------------------------
    def _note(self, kind: ProblemKind, where: At, *values: Tensor) -> None:
        # A row per check: its values copied on the device (one small kernel each, where
        # building and comparing a whole record took ten), its kind and place kept here.
        # float64 holds every int64 label up to 2**53 exactly (MPS has only float32).
        n, device = len(self._rows), values[0].device
        if self._values is None or self._values.device != device:
            dtype = torch.float32 if device.type == "mps" else torch.float64
            self._values, self._rows, n = torch.zeros(64, 2, dtype=dtype, device=device), [], 0
        elif n == len(self._values):  # full: twice the rows, copied on the device
            self._values = torch.cat([self._values, torch.zeros_like(self._values)])
        for slot, value in zip(self._values[n], values, strict=False):
            slot.copy_(value)
        self._rows.append((kind, where))

    def report_pending(
        self, stage: str, epoch_end: bool = False, *, policy: NonFinitePolicy, name: str, lr: float
    ) -> None:
        """Raise (or warn, see :func:`report`) about the first problem recorded, if any.

        Labels out of range always raise. At ``epoch_end``, warn if every batch of the epoch
        was left out as non-finite (``nonfinite="skip"``): none of its metrics is logged.
        """
        if epoch_end:  # the epoch's counts, read and cleared
            seen, skipped, self._seen, self._skipped = self._seen, self._skipped, 0, 0
            if seen and skipped >= seen:
                warn(
                    f"{name}: all {seen} {stage} batches of epoch {self._epoch} were skipped as "
                    f"non-finite (nonfinite='skip'; the warnings above say why), so no "
                    f"{stage}_loss or other {stage}_* metric is logged for the epoch: a "
                    "ModelCheckpoint or EarlyStopping monitoring one will find it missing"
                )
        problem = self.pending()
        if problem is None:
            return
        if problem.kind == "soft labels":
            raise ValueError(
                f"{_SOFT_RANGE}; {problem.at} had a value outside, a row summing to another "
                "total, or NaN"
            )
        if problem.kind == "labels":
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}); got values from {problem.low} "
                f"to {problem.high} ({problem.at})"
            )
        report(problem.kind, policy=policy, name=name, where=problem.at, lr=lr, deferred=True)

    def pending(self) -> Problem | None:
        """Read the record (one device read) and clear it: the first problem seen, or ``None``."""
        if not self._rows or self._values is None:
            return None
        rows, self._rows = self._rows, []
        values = self._values[: len(rows)].tolist()  # the one device read
        for (kind, at), (a, b) in zip(rows, values, strict=True):
            bad = {
                _LABELS: a < 0 or b >= self.num_classes,
                _IMAGES: not (math.isfinite(a) and math.isfinite(b)),
                _LOSS: not math.isfinite(a),
                _SOFT: a == 0,
            }[kind]
            if bad:
                low, high = (int(a), int(b)) if kind == _LABELS else (0, 0)
                return Problem(kind, at, low, high)
        return None
