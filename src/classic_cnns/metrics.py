"""The metrics every task logs, built from torchmetrics."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric, Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from torchmetrics.functional.classification.stat_scores import _multiclass_stat_scores_format

from classic_cnns._checks import as_plain, check_flag, is_int

__all__ = ["MeanLoss", "classification_metrics", "metric_states", "set_metric_states"]


class _MacroF1(MulticlassF1Score):
    # torchmetrics counts the confusion matrix with torch.bincount, which on CUDA reads the
    # labels' largest and smallest values back to the host: a device sync at every update.
    # Counting into a tensor of fixed size (C * C) gives the same counts on the device alone.
    def update(self, preds: Tensor, target: Tensor) -> None:
        plain = self.top_k == 1 and self.ignore_index is None and self.average != "micro"
        if self.validate_args or not plain or self.multidim_average != "global":
            super().update(preds, target)  # checking the values reads the device anyway
            return
        preds, target = _multiclass_stat_scores_format(preds, target, self.top_k)
        c = int(self.num_classes or 0)  # always set: classification_metrics passes it
        pairs = (target.long() * c + preds.long()).flatten()
        counts = torch.zeros(c * c, dtype=torch.long, device=pairs.device)
        confusion = counts.scatter_add_(0, pairs, torch.ones_like(pairs)).view(c, c)
        tp = confusion.diag()
        fp, fn = confusion.sum(0) - tp, confusion.sum(1) - tp
        self._update_state(tp, fp, pairs.numel() - (tp + fp + fn), fn)


def classification_metrics(num_classes: int, validate_args: bool = True) -> MetricCollection:
    """Top-1 accuracy, top-5 accuracy (with at least 5 classes) and macro F1.

    Clone the collection once per stage (``clone(prefix="val_")``) and never share
    one instance between stages: each keeps its own running state.

    The collection has no compute groups. torchmetrics would otherwise merge metrics whose
    states happen to be equal after the first update: after a perfectly classified first
    batch, macro F1 and top-5 accuracy have equal states, and F1 would then report the
    top-5 group's statistics for the rest of the epoch.

    With ``validate_args=False`` an update never waits on the device (no host sync on CUDA).

    Args:
        num_classes: Number of classes (at least 2).
        validate_args: Let torchmetrics check every update's predictions and labels;
            ``False`` skips that per-step cost where the caller checks them already.

    Example:
        >>> import torch
        >>> metrics = classification_metrics(10).clone(prefix="val_")
        >>> sorted(metrics.keys())
        ['val_acc', 'val_acc_top5', 'val_f1']
        >>> logits = torch.eye(10)
        >>> float(metrics(logits, torch.arange(10))["val_acc"])
        1.0
    """
    num_classes = as_plain(num_classes)  # a numpy int, as labels.max() + 1 gives
    if not is_int(num_classes, 2):
        raise ValueError(f"num_classes must be an int of at least 2; got {num_classes!r}")
    check_flag("validate_args", validate_args)
    metrics: dict[str, Metric | MetricCollection] = {
        "acc": MulticlassAccuracy(
            num_classes, top_k=1, average="micro", validate_args=validate_args
        ),
        "f1": _MacroF1(num_classes, average="macro", validate_args=validate_args),
    }
    if num_classes >= 5:
        metrics["acc_top5"] = MulticlassAccuracy(
            num_classes, top_k=5, average="micro", validate_args=validate_args
        )
    return MetricCollection(metrics, compute_groups=False)


class MeanLoss(MeanMetric):
    """The mean loss per image of a stage, summed in float32 whatever the model's dtype.

    Lightning's ``"bf16-true"`` and ``"16-true"`` precisions cast the whole module, metric
    states included: a bfloat16 image count stops growing at 256 and a float16 sum
    overflows at 65,504, so the logged loss came out wrong or ``inf``. This one puts its
    states back to float32 after any cast (the values it is given are cast to them). No
    NaN check (``nan_strategy="disable"``): that check reads the device at every update.

    Example:
        >>> import torch
        >>> loss = MeanLoss().to(torch.bfloat16)
        >>> for _ in range(300):
        ...     loss.update(torch.ones(2, dtype=torch.bfloat16))
        >>> float(loss.weight), loss.compute().dtype
        (600.0, torch.float32)
    """

    def __init__(self) -> None:
        super().__init__(nan_strategy="disable")

    def _apply(self, fn: Any, exclude_state: Any = "") -> Any:
        this = super()._apply(fn, exclude_state)
        if self._dtype in (torch.float16, torch.bfloat16):  # cast with the module: undo it
            for key, default in self._defaults.items():  # MeanMetric's: two tensors
                assert isinstance(default, Tensor)
                self._defaults[key] = default.float()
                setattr(self, key, getattr(self, key).float())
            self._dtype = torch.float32
        return this


def metric_states(
    module: nn.Module, stage: str = "train", sync: bool = False
) -> dict[str, dict[str, Any]]:
    """Copies of the states of the torchmetrics ``Metric`` objects of one ``stage`` in
    ``module`` (those with a part of their module name that starts with it, as the task's
    ``train_metrics.acc`` and ``losses.train_loss``), by name, with their update counts:
    what the stage's metrics have summed so far, which Lightning checkpoints leave out
    (torchmetrics states are not persistent). :func:`set_metric_states` puts them back, as
    :class:`~classic_cnns.resume.ExactResume` does for an epoch resumed mid-way (only
    the training ones: a validation is never resumed, and its states at a checkpoint are
    those of the validation just done, which the next one must not add to). ``sync``: in a
    distributed run, the states reduced over the processes as ``compute`` reduces them (a
    collective: every process must call it).

    Example:
        >>> import torch
        >>> from classic_cnns import LeNet5
        >>> model = LeNet5(num_classes=10)
        >>> model.train_metrics.update(torch.eye(10)[:4], torch.tensor([0, 1, 2, 9]))
        >>> saved = metric_states(model)
        >>> sorted(saved), saved["train_metrics.acc"]["count"]
        (['losses.train_loss', 'train_metrics.acc'], 1)
    """

    def copy(value: Any) -> Any:
        return [copy(v) for v in value] if isinstance(value, list) else value.detach().clone()

    found = (
        (name, m)
        for name, m in module.named_modules()
        if isinstance(m, Metric) and any(part.startswith(stage) for part in name.split("."))
    )
    saved = {}
    for name, m in found:
        with m.sync_context(m.dist_sync_fn, should_sync=sync):  # as compute syncs
            states = {k: copy(v) for k, v in m.metric_state.items()}
        saved[name] = {"count": m._update_count, "states": states}
    return saved


def set_metric_states(module: nn.Module, saved: dict[str, dict[str, Any]]) -> None:
    """Put :func:`metric_states`' copies back into the metrics of ``module`` of the same names
    and states (on their devices); other metrics, and names ``module`` lacks, are left as
    they are.

    Example:
        >>> import torch
        >>> from classic_cnns import LeNet5
        >>> a, b = LeNet5(num_classes=10), LeNet5(num_classes=10)
        >>> a.train_metrics.update(torch.eye(10)[:4], torch.tensor([0, 1, 2, 9]))
        >>> b.train_metrics.update(torch.eye(10)[:1], torch.tensor([5]))
        >>> float(b.train_metrics.compute()["train_acc"])  # b's own, computed (and kept)
        0.0
        >>> set_metric_states(b, metric_states(a))
        >>> float(b.train_metrics.compute()["train_acc"])  # a's, computed anew
        0.75
    """

    def moved(value: Any, device: torch.device) -> Any:
        return [moved(v, device) for v in value] if isinstance(value, list) else value.to(device)

    modules = dict(module.named_modules())
    for name, entry in saved.items():
        metric, states = modules.get(name), entry["states"]
        if not isinstance(metric, Metric) or set(states) != set(metric.metric_state):
            continue
        for key, value in states.items():
            setattr(metric, key, moved(value, metric.device))
        metric._update_count, metric._computed = entry["count"], None
