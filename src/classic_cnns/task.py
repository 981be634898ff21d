"""The one training task every architecture shares.

``ImageClassifier`` is the *system*; the network it trains is a plain ``nn.Module``
held as ``self.net`` and usable without Lightning. Family classes (``LeNet5``,
``ResNet``, ...) are thin subclasses that pick the default architecture and declare
the family's own network arguments.

For fine-tuning, the task starts from torchvision's ImageNet weights (``pretrained``) or
a weights file (``checkpoint_path``), swaps the head (``reset_classifier``), freezes the
backbone (``freeze_backbone``; see :class:`~classic_cnns.finetune.UnfreezeBackbone`) and
trains backbone and head at different learning rates (``backbone_lr``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any, ClassVar

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection
from typing_extensions import Self

from classic_cnns import finetune
from classic_cnns.metrics import classification_metrics
from classic_cnns.registry import _FAMILIES, list_models, model_info
from classic_cnns.weights import (
    DATA_CHECKPOINT_KEY,
    fit_checkpoint_state,
    load_pretrained,
    load_weights_file,
)

__all__ = ["OPTIMIZERS", "SCHEDULERS", "ImageClassifier"]

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULERS = ("cosine", "onecycle", "step", "none")

# True while a model is rebuilt from a checkpoint: its weights come from the checkpoint, so
# __init__ must not download ImageNet weights or read checkpoint_path again (both may be
# recorded in the saved hyperparameters, and the file may be long gone).
_RESTORING: ContextVar[bool] = ContextVar("classic_cnns_restoring", default=False)


@contextmanager
def _restoring() -> Iterator[None]:
    token = _RESTORING.set(True)
    try:
        yield
    finally:
        _RESTORING.reset(token)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _schedule_length(sched: Any) -> int | None:
    # The number of steps an LR schedule of configure_optimizers was made for.
    for attr in ("total_steps", "T_max"):  # OneCycleLR, CosineAnnealingLR
        if hasattr(sched, attr):
            return int(getattr(sched, attr))
    milestones = getattr(sched, "milestones", None)  # MultiStepLR: at 50% and 75%
    return 2 * min(milestones) if milestones else None


class ImageClassifier(L.LightningModule):
    """Image classification with any registered architecture.

    Args:
        arch: Registered model name (see ``classic_cnns.list_models()``).
        num_classes: Number of classes; ``None`` takes the architecture's default.
        in_channels: Input channels; ``None`` takes the architecture's default.
        optimizer: One of ``"sgd"`` (with ``momentum``), ``"adam"``, ``"adamw"``, ``"rmsprop"``.
        lr: Peak learning rate.
        weight_decay: L2 penalty, applied to weights only (not to biases or norm layers).
        momentum: Momentum for ``sgd`` and ``rmsprop``.
        scheduler: ``"cosine"`` (per-step cosine decay to 0), ``"onecycle"`` (warm-up then
            cosine annealing, per step), ``"step"`` (×0.1 at 50% and 75% of the epochs,
            the ResNet-CIFAR recipe) or ``"none"``.
        label_smoothing: Cross-entropy label smoothing in ``[0, 1)``.
        aux_loss_weight: Weight of auxiliary classifier losses (GoogLeNet), added in training.
        net_kwargs: Extra keyword arguments for the network builder.
        pretrained: Start from torchvision's ImageNet weights (``model_info(arch).weights``),
            downloaded once through torch.hub with its hash check. With other ``num_classes``
            the head stays freshly initialised; with other ``in_channels`` the first
            convolution is adapted (:func:`~classic_cnns.weights.adapt_input_conv`).
        checkpoint_path: Start from the network weights in a ``.safetensors`` file (as
            ``classic-cnns export`` writes), a Lightning ``.ckpt`` or a state dict, adapted
            the same way. ``create_model`` also takes the file's hyperparameters as defaults.
        backbone_lr: Peak learning rate of the backbone (all but the head, see
            :mod:`classic_cnns.finetune`); ``None`` trains it at ``lr``. Fine-tuning usually
            gives a pretrained backbone a tenth of the new head's rate or less.
        nonfinite: What a training, validation or test step does with a batch whose images
            or loss hold NaN or infinite values: ``"raise"`` (stop with an error naming the
            step), ``"skip"`` (warn and leave the batch out) or ``"ignore"`` (no check).

    Example:
        >>> import torch
        >>> from classic_cnns import ImageClassifier
        >>> model = ImageClassifier("lenet5", num_classes=10, optimizer="sgd", lr=0.05)
        >>> model(torch.randn(4, 1, 32, 32)).shape
        torch.Size([4, 10])
    """

    family: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        family = cls.__dict__.get("family")
        if family is not None:
            _FAMILIES[family] = cls

    def __init__(
        self,
        arch: str = "lenet5",
        num_classes: int | None = None,
        in_channels: int | None = None,
        optimizer: str = "adamw",
        lr: float = 3e-3,
        weight_decay: float = 5e-4,
        momentum: float = 0.9,
        scheduler: str = "onecycle",
        label_smoothing: float = 0.0,
        aux_loss_weight: float = 0.3,
        net_kwargs: dict[str, Any] | None = None,
        nonfinite: str = "raise",
        pretrained: bool = False,
        checkpoint_path: str | None = None,
        backbone_lr: float | None = None,
    ) -> None:
        super().__init__()
        self.info = model_info(arch)
        family = type(self).family
        if family is not None and self.info.family != family:
            members = [n for n in list_models() if model_info(n).family == family]
            raise ValueError(
                f"{type(self).__name__} builds {family!r} models {members}; got arch={arch!r}, "
                f"which is a {self.info.family!r} model: use create_model({arch!r}) instead"
            )
        num_classes = self.info.num_classes if num_classes is None else num_classes
        in_channels = self.info.input_size[0] if in_channels is None else in_channels
        for name, value in (("num_classes", num_classes), ("in_channels", in_channels)):
            _require(
                isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                f"{name} must be a positive int; got {value!r}",
            )
        _require(num_classes >= 2, f"num_classes must be at least 2; got {num_classes}")
        _require(
            optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}; got {optimizer!r}"
        )
        _require(
            scheduler in SCHEDULERS, f"scheduler must be one of {SCHEDULERS}; got {scheduler!r}"
        )

        def number(value: Any) -> bool:  # a finite real number (not a bool or a string)
            try:
                return not isinstance(value, bool | str) and math.isfinite(value)
            except TypeError:
                return False

        _require(number(lr) and lr > 0, f"lr must be a positive number; got {lr!r}")
        _require(
            number(weight_decay) and weight_decay >= 0,
            f"weight_decay must be >= 0; got {weight_decay!r}",
        )
        _require(number(momentum) and momentum >= 0, f"momentum must be >= 0; got {momentum!r}")
        _require(
            number(label_smoothing) and 0 <= label_smoothing < 1,
            f"label_smoothing must be in [0, 1); got {label_smoothing!r}",
        )
        _require(
            number(aux_loss_weight) and aux_loss_weight >= 0,
            f"aux_loss_weight must be a number >= 0; got {aux_loss_weight!r}",
        )
        nonfinite_choices = ("raise", "skip", "ignore")
        _require(
            nonfinite in nonfinite_choices,
            f"nonfinite must be one of {nonfinite_choices}; got {nonfinite!r}",
        )
        _require(
            backbone_lr is None or (number(backbone_lr) and backbone_lr > 0),
            f"backbone_lr must be a positive number or None; got {backbone_lr!r} "
            "(to keep the backbone fixed, use freeze_backbone())",
        )
        _require(
            not (pretrained and checkpoint_path),
            "pass pretrained=True or checkpoint_path, not both: the checkpoint's weights "
            f"would replace the ImageNet ones (got checkpoint_path={checkpoint_path!r})",
        )
        _require(
            not pretrained or self.info.weights is not None,
            f"{arch} has no pretrained weights; pretrained=True works for "
            f"{[n for n in list_models() if model_info(n).weights is not None]}",
        )
        self.save_hyperparameters()
        self.num_classes = num_classes
        self.in_channels = in_channels
        # Arguments a family subclass declares beyond ours are network arguments.
        base_args = inspect.signature(ImageClassifier.__init__).parameters
        # ``None`` leaves the builder's own default in place; LightningCLI adds "_" keys.
        extra = {
            k: v
            for k, v in self.hparams.items()
            if k not in base_args and v is not None and not k.startswith("_")
        }
        self.net: nn.Module = self.info.build_net(
            num_classes=num_classes, in_channels=in_channels, **extra, **(net_kwargs or {})
        )
        self._set_metrics(num_classes)
        # Batch norm layers that freeze_backbone() keeps in eval mode, even across train().
        self._frozen_norms: list[nn.Module] = []
        self._backbone_frozen = False
        # How the training data was prepared (mean, std, image_size, class_names): recorded
        # at fit start and kept in checkpoints, so that predict and export can redo it.
        self.data_config: dict[str, Any] = {}
        if not _RESTORING.get():
            if pretrained:
                load_pretrained(self.net, arch)
            elif checkpoint_path:
                self.data_config = load_weights_file(self.net, checkpoint_path, arch=arch)

    def _set_metrics(self, num_classes: int) -> None:
        # torchmetrics objects, updated every step and logged once at the end of the epoch
        # (which is also when torchmetrics syncs them across processes). Training keeps
        # top-1 accuracy only: F1 and top-5 of a moving model cost time and say little.
        metrics = classification_metrics(num_classes, validate_args=False)  # _check_batch does
        self.train_metrics = MetricCollection({"acc": metrics["acc"].clone()}, prefix="train_")
        self.val_metrics = metrics.clone(prefix="val_")
        self.test_metrics = metrics.clone(prefix="test_")
        # The mean loss per stage, weighted by batch size, so it is exact under DDP too.
        # (MeanMetric's nan_strategy="disable" would drop the weights: keep the default.)
        self.losses = nn.ModuleDict({f"{s}_loss": MeanMetric() for s in ("train", "val", "test")})

    @property
    def input_size(self) -> tuple[int, int, int]:
        """Default input ``(C, H, W)`` for this model (its channels, the architecture's size)."""
        return (self.in_channels, *self.info.input_size[1:])  # type: ignore[return-value]

    @property
    def min_input_size(self) -> tuple[int, int]:
        """Smallest ``(H, W)`` the network accepts (a small-input stem may lower it)."""
        return getattr(self.net, "min_input_size", self.info.min_input_size)  # type: ignore[no-any-return]

    @property
    def _hp(self) -> Any:
        # The saved hyperparameters, read as attributes (typed loosely for mypy).
        return self.hparams

    def check_input(self, x: Tensor) -> None:
        """Raise a clear error if ``x`` is not a float ``(N, C, H, W)`` batch this model accepts.

        Example:
            >>> import torch
            >>> from classic_cnns import LeNet5
            >>> LeNet5().check_input(torch.zeros(1, 1, 28, 28))
            Traceback (most recent call last):
            ...
            ValueError: lenet5 needs images of at least 32x32 (H x W); got 28x28 ...
        """
        name = self.info.name
        expected = f"a float tensor of shape (N, {self.in_channels}, H, W)"
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} expects {expected}; got {type(x).__name__}")
        if x.ndim != 4:
            raise ValueError(f"{name} expects {expected}; got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(
                f"{name} expects {expected}; got dtype {x.dtype}. Convert images with "
                "x.float() / 255 and normalise, as the classic_cnns datamodules do"
            )
        weight = next(self.net.parameters(), None)
        if (
            weight is not None
            and x.dtype != weight.dtype
            and not torch.is_autocast_enabled(x.device.type)
        ):
            raise TypeError(
                f"{name} has {weight.dtype} weights; got a batch of dtype {x.dtype}. Convert "
                f"the batch (x.to({weight.dtype})) or the model (model.to({x.dtype}))"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"{name} was built for {self.in_channels} input channel(s); got a batch with "
                f"{x.shape[1]} (shape {tuple(x.shape)}). Pass in_channels={x.shape[1]} when "
                "creating the model"
            )
        min_h, min_w = self.min_input_size
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

    def forward(self, x: Tensor) -> Any:
        """Logits ``(N, num_classes)``; in training, nets with auxiliary heads return a tuple."""
        self.check_input(x)
        return self.net(x)

    # -- fine-tuning ---------------------------------------------------------------------
    @property
    def num_features(self) -> int:
        """Width of the pooled features that :meth:`forward_features` returns."""
        return int(self.net.num_features)  # type: ignore[arg-type]

    def forward_features(self, x: Tensor) -> Tensor:
        """Pooled features ``(N, num_features)``, the head's input: for embeddings or probes.

        Feature maps (NiN, whose head works on maps) are averaged over space.

        Example:
            >>> import torch
            >>> from classic_cnns import ResNet
            >>> ResNet("resnet20").eval().forward_features(torch.zeros(2, 3, 32, 32)).shape
            torch.Size([2, 64])
        """
        self.check_input(x)
        features: Tensor = self.net.forward_features(x)  # type: ignore[operator]
        return features.mean(dim=(2, 3)) if features.ndim == 4 else features

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head with a freshly initialised one for ``num_classes`` classes.

        Updates ``num_classes`` (in the hyperparameters too, so checkpoints reload with the
        new head) and the metrics. Call it before ``Trainer.fit``, which builds the optimizer.

        Example:
            >>> from classic_cnns import LeNet5
            >>> model = LeNet5(num_classes=10)
            >>> model.reset_classifier(5)
            >>> model.net.fc.out_features, model.num_classes, model.hparams.num_classes
            (5, 5, 5)
        """
        finetune.reset_head(self.net, num_classes)
        self.num_classes = num_classes
        self.hparams["num_classes"] = num_classes
        self._set_metrics(num_classes)
        self.to(next(self.net.parameters()).device)  # the new metrics join the model's device

    def freeze_backbone(self, train_bn: bool = False) -> None:
        """Train only the head (see :func:`classic_cnns.finetune.freeze_backbone`).

        Args:
            train_bn: Keep training the backbone's batch norm layers; by default they are
                frozen too and kept in eval mode, so the backbone is a fixed function.

        Example:
            >>> from classic_cnns import LeNet5
            >>> model = LeNet5()
            >>> model.freeze_backbone()
            >>> [n for n, p in model.named_parameters() if p.requires_grad]
            ['net.fc.weight', 'net.fc.bias']
        """
        self._frozen_norms = list(finetune.freeze_backbone(self.net, train_bn=train_bn))
        self._backbone_frozen = True

    def unfreeze_backbone(self) -> None:
        """Train the whole network again.

        Example:
            >>> from classic_cnns import LeNet5
            >>> model = LeNet5()
            >>> model.freeze_backbone(); model.unfreeze_backbone()
            >>> model.backbone_frozen
            False
        """
        self._frozen_norms = []
        self._backbone_frozen = False
        finetune.unfreeze_backbone(self.net)

    @property
    def backbone_frozen(self) -> bool:
        """Whether :meth:`freeze_backbone` is in effect (until :meth:`unfreeze_backbone`)."""
        return self._backbone_frozen

    def train(self, mode: bool = True) -> Self:
        """Set training mode; the batch norm layers of a frozen backbone stay in eval mode."""
        super().train(mode)
        for m in getattr(self, "_frozen_norms", ()):  # train() runs in nn.Module.__init__ too
            m.eval()
        return self

    def _check_batch(self, x: Tensor, y: Tensor, scan: bool) -> bool:
        # Validates the labels; returns whether the images are all finite (True unless
        # ``scan``). Both come back in one device sync.
        batch_size = x.shape[0]
        if batch_size == 0:
            raise ValueError("expected a batch of at least one image; got an empty batch")
        if not isinstance(y, Tensor):
            raise TypeError(
                f"labels must be an integer tensor of shape ({batch_size},); got {type(y).__name__}"
            )
        if (
            y.ndim != 1
            or y.shape[0] != batch_size
            or y.is_floating_point()
            or y.is_complex()
            or y.dtype == torch.bool
        ):
            raise ValueError(
                f"labels must be an integer tensor of shape ({batch_size},); "
                f"got dtype {y.dtype} and shape {tuple(y.shape)}"
            )
        checks = list(torch.aminmax(y))
        if scan:  # a NaN or inf makes the sum non-finite; one pass, ten times isfinite's speed
            checks.append(x.sum(dtype=torch.float32).isfinite().to(y.device))
        low, high, *finite = torch.stack([c.long() for c in checks]).tolist()
        if low < 0 or high >= self.num_classes:
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}); got values from {low} to {high}"
            )
        # A sum can also overflow with finite values: only then is every value looked at.
        return all(finite) or bool(torch.isfinite(x).all())

    def _step(self, batch: Any, metrics: MetricCollection, stage: str) -> Tensor | None:
        if not isinstance(batch, list | tuple) or len(batch) != 2:
            size = f" of length {len(batch)}" if isinstance(batch, list | tuple) else ""
            raise ValueError(
                f"{stage} batches must be (images, labels) pairs; "
                f"got a {type(batch).__name__}{size}"
            )
        x, y = batch
        self.check_input(x)
        check = self.hparams.get("nonfinite", "raise") != "ignore"
        # Images are checked before the forward pass, which would otherwise carry NaN into
        # batch norm's running statistics even when the batch is then skipped.
        if not self._check_batch(x, y, scan=check):
            self._nonfinite(x, None, stage)
            return None
        y = y.long()  # cross_entropy wants int64; uint8 or int32 labels are fine as given
        out = self(x)
        logits, aux = (out[0], out[1:]) if isinstance(out, tuple) else (out, ())
        smoothing = self._hp.label_smoothing
        loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
        for aux_logits in aux:
            loss = loss + self._hp.aux_loss_weight * F.cross_entropy(
                aux_logits, y, label_smoothing=smoothing
            )
        if check and not bool(torch.isfinite(loss)):
            self._nonfinite(x, loss, stage)
            return None
        metrics.update(logits.detach(), y)
        self._mean_loss(stage).update(loss.detach(), weight=x.shape[0])
        # The step's loss for loss curves and the progress bar, logged only on the steps whose
        # values reach the loggers (every log_every_n_steps): a self.log call costs about
        # 2 ms on a CPU, a tenth of a LeNet-5 step at batch 128.
        every = getattr(self._trainer, "log_every_n_steps", 0)  # 0: not under a Trainer
        if stage == "train" and every and (self.global_step + 1) % every == 0:
            self.log("train_loss_step", loss.detach(), prog_bar=True, batch_size=x.shape[0])
        return loss

    def _nonfinite(self, x: Tensor, loss: Tensor | None, stage: str) -> None:
        # Raises or warns (policy "raise" or "skip") about non-finite images, or if ``loss``
        # is given, a non-finite loss of finite images.
        where = f"at global step {self.global_step} (epoch {self.current_epoch})"
        if loss is None:
            bad = int((~torch.isfinite(x)).sum())
            message = (
                f"{self.info.name}: the {stage} batch {where} has {bad} NaN or infinite "
                f"value(s) among its {x.numel()} image values; expected finite images"
            )
            hint = "Check the data and its transform"
        else:
            message = (
                f"{self.info.name}: the {stage} loss {where} is {float(loss)}; expected a "
                "finite number. The images were finite, so the weights or logits overflowed"
            )
            hint = (
                f"In training this usually means the learning rate (lr={self._hp.lr}) is too high"
            )
        if self.hparams.get("nonfinite", "raise") == "raise":
            raise ValueError(f"{message}. {hint}, or pass nonfinite='skip' to skip such batches")
        from lightning.pytorch.utilities import rank_zero_warn

        rank_zero_warn(f"{message}; skipping the batch (nonfinite='skip')")

    def _mean_loss(self, stage: str) -> MeanMetric:
        return self.losses[f"{stage}_loss"]  # type: ignore[return-value]

    def _log_epoch(self, metrics: MetricCollection, stage: str) -> None:
        # Logging the metric objects lets Lightning compute (and sync) them once and reset.
        self.log(f"{stage}_loss", self._mean_loss(stage), prog_bar=True)
        self.log_dict(metrics, prog_bar=stage != "train")

    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        """Cross-entropy (plus weighted auxiliary losses) on one ``(images, labels)`` batch."""
        return self._step(batch, self.train_metrics, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """Loss and metrics on one validation batch."""
        self._step(batch, self.val_metrics, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        """Loss and metrics on one test batch."""
        self._step(batch, self.test_metrics, "test")

    def on_train_epoch_end(self) -> None:
        """Log the epoch's ``train_loss`` (mean over images) and ``train_acc``."""
        self._log_epoch(self.train_metrics, "train")

    def on_validation_epoch_end(self) -> None:
        """Log ``val_loss``, ``val_acc``, ``val_f1`` and ``val_acc_top5`` (5+ classes)."""
        self._log_epoch(self.val_metrics, "val")

    def on_test_epoch_end(self) -> None:
        """Log ``test_loss``, ``test_acc``, ``test_f1`` and ``test_acc_top5`` (5+ classes)."""
        self._log_epoch(self.test_metrics, "test")

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """Class probabilities ``(N, num_classes)`` of a batch: images or ``(images, labels)``."""
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return self(x).softmax(dim=-1)

    def configure_optimizers(self) -> Any:
        """The optimizer and per-step LR schedule named by the hyperparameters.

        Parameter groups: backbone (at ``backbone_lr``) then head (at ``lr``), each split
        into weights, with weight decay, and biases and norm scales, without. Frozen
        parameters stay in: they get no gradient, so the optimizer skips them, and
        unfreezing later needs no new group.
        """
        hp: Any = self.hparams
        head_ids = {id(p) for p in finetune.head_parameters(self.net)}
        parts = [
            ([p for p in self.parameters() if id(p) not in head_ids], hp.get("backbone_lr")),
            ([p for p in self.parameters() if id(p) in head_ids], hp.lr),
        ]
        # No weight decay on biases and normalisation scales (1-D parameters).
        groups = [
            {
                "params": [p for p in params if (p.ndim > 1) == decay],
                "lr": lr or hp.lr,
                "weight_decay": hp.weight_decay if decay else 0.0,
            }
            for params, lr in parts
            for decay in (True, False)
        ]
        groups = [g for g in groups if g["params"]]
        opt: torch.optim.Optimizer
        if hp.optimizer == "sgd":
            opt = torch.optim.SGD(groups, lr=hp.lr, momentum=hp.momentum, nesterov=hp.momentum > 0)
        elif hp.optimizer == "adam":
            opt = torch.optim.Adam(groups, lr=hp.lr)
        elif hp.optimizer == "adamw":
            opt = torch.optim.AdamW(groups, lr=hp.lr)
        else:
            opt = torch.optim.RMSprop(groups, lr=hp.lr, momentum=hp.momentum)
        if hp.scheduler == "none":
            return opt
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total) or total < 1:
            raise ValueError(
                f"scheduler={hp.scheduler!r} needs a finite run length; set trainer max_epochs "
                f"or max_steps (got {total} steps)"
            )
        total = int(total)
        sched: torch.optim.lr_scheduler.LRScheduler
        if hp.scheduler == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
        elif hp.scheduler == "onecycle":
            max_lr = [g["lr"] for g in opt.param_groups]
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=total)
        else:
            sched = torch.optim.lr_scheduler.MultiStepLR(
                opt, milestones=[total // 2, total * 3 // 4], gamma=0.1
            )
        self._schedule_length = _schedule_length(sched)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_train_start(self) -> None:
        """Refuse to resume a checkpoint whose LR schedule was made for another run length.

        The schedule's state comes back from the checkpoint with its own length: resumed
        with more epochs, one-cycle would stop with "Tried to step N times" at the old end
        and cosine would climb back up. Same run length (an interrupted run) passes.
        """
        planned = getattr(self, "_schedule_length", None)
        for config in self.trainer.lr_scheduler_configs:
            restored = _schedule_length(config.scheduler)
            if planned is not None and restored is not None and restored != planned:
                raise ValueError(
                    f"the checkpoint's {self._hp.scheduler!r} LR schedule was made for "
                    f"{restored} steps; this run has {planned} (trainer max_epochs or max_steps "
                    "changed?). Resume with the run length of the checkpoint, or start a new "
                    "run from its weights: checkpoint_path=<file> (the CLI: "
                    "--model.checkpoint_path) instead of ckpt_path"
                )

    # -- checkpoints -----------------------------------------------------------------------
    def configure_callbacks(self) -> list[L.Callback]:
        """:class:`~classic_cnns.checkpoint.ExactResume`: resuming from a checkpoint is exact.

        None when the trainer has one already (its own, or this model's from an earlier
        ``fit`` on the same trainer), so that ``test`` after ``fit`` replaces nothing.
        """
        from classic_cnns.checkpoint import ExactResume

        callbacks = getattr(self._trainer, "callbacks", [])
        if any(isinstance(c, ExactResume) for c in callbacks):
            return []
        return [ExactResume()]

    def on_fit_start(self) -> None:
        """Record the datamodule's preprocessing (mean, std, size, resize mode, class names)."""
        datamodule = getattr(self.trainer, "datamodule", None)
        config: dict[str, Any] = {}
        for key in ("mean", "std", "class_names"):
            value = getattr(datamodule, key, None)
            if value is not None:
                config[key] = [v if isinstance(v, str) else float(v) for v in value]
        size = getattr(datamodule, "_target", None)
        if size is not None:
            config["image_size"] = [int(v) for v in size]
        if getattr(datamodule, "resize", None) in ("pad", "resize"):
            config["resize"] = datamodule.resize  # type: ignore[union-attr]
        if config:
            self.data_config = config

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the data configuration beside the weights (plain lists, for ``weights_only``)."""
        if self.data_config:
            checkpoint[DATA_CHECKPOINT_KEY] = self.data_config

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Fit the checkpoint's weights to this model before Lightning loads them.

        See :func:`classic_cnns.weights.fit_checkpoint_state`: ``_orig_mod.`` keys of a
        ``torch.compile``d network, other input channels and other ``num_classes``.
        """
        trainer = self._trainer
        if trainer is not None and trainer.ckpt_path:
            # Trainer.fit/validate/test(ckpt_path=...): the checkpoint must be this very model.
            from classic_cnns.checkpoint import verify_checkpoint

            verify_checkpoint(self, checkpoint, str(trainer.ckpt_path))
        self.data_config = dict(checkpoint.get(DATA_CHECKPOINT_KEY) or self.data_config)
        names = self.data_config.get("class_names")
        if names is not None and len(names) != self.num_classes:  # a new head: names unknown
            del self.data_config["class_names"]
        fit_checkpoint_state(self, checkpoint)

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls,
        checkpoint_path: str | Path | IO[bytes],
        map_location: Any = None,
        hparams_file: str | Path | None = None,
        strict: bool | None = None,
        weights_only: bool | None = True,
        **kwargs: Any,
    ) -> Self:
        """Restore a model from a Lightning checkpoint, with ``weights_only=True`` by default.

        Keyword arguments override the saved hyperparameters, and shapes may change with
        them: ``num_classes=5`` loads the backbone and gives a fresh 5-class head,
        ``in_channels=1`` adapts the first convolution; a warning names every key not
        loaded. Checkpoints of a ``torch.compile``d network (``_orig_mod.`` keys) load too.
        Nothing is downloaded: saved ``pretrained``/``checkpoint_path`` are not acted on.

        Example:
            >>> from classic_cnns import LeNet5
            >>> model = LeNet5.load_from_checkpoint("digits.ckpt", num_classes=5)  # doctest: +SKIP
        """
        if isinstance(checkpoint_path, str | Path):
            from classic_cnns.checkpoint import CheckpointError, load_checkpoint

            saved = load_checkpoint(checkpoint_path)  # names a missing or damaged file
            arch = kwargs.get("arch", (saved.get("hyper_parameters") or {}).get("arch"))
            family = cls.family
            if family is not None and isinstance(arch, str) and model_info(arch).family != family:
                raise CheckpointError(
                    f"{checkpoint_path}: the checkpoint holds a {arch!r} model, which "
                    f"{cls.__name__} does not build; load it with ImageClassifier."
                    "load_from_checkpoint or classic_cnns.weights.load_model"
                )
        with _restoring():
            return super().load_from_checkpoint(  # type: ignore[no-any-return]
                checkpoint_path, map_location, hparams_file, strict, weights_only, **kwargs
            )
