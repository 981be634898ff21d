"""The one training task every architecture shares.

``ImageClassifier`` is the *system*; the network it trains is a plain ``nn.Module``
held as ``self.net`` and usable without Lightning. Family classes (``LeNet5``,
``ResNet``, ...) are thin subclasses that pick the default architecture and declare
the family's own network arguments.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, ClassVar

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from classic_cnns.metrics import classification_metrics
from classic_cnns.registry import _FAMILIES, list_models, model_info

__all__ = ["ImageClassifier", "OPTIMIZERS", "SCHEDULERS"]

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULERS = ("cosine", "onecycle", "step", "none")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


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
        _require(optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}; got {optimizer!r}")
        _require(scheduler in SCHEDULERS, f"scheduler must be one of {SCHEDULERS}; got {scheduler!r}")
        _require(math.isfinite(lr) and lr > 0, f"lr must be a positive number; got {lr!r}")
        _require(weight_decay >= 0, f"weight_decay must be >= 0; got {weight_decay!r}")
        _require(momentum >= 0, f"momentum must be >= 0; got {momentum!r}")
        _require(0 <= label_smoothing < 1, f"label_smoothing must be in [0, 1); got {label_smoothing!r}")
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
        metrics = classification_metrics(num_classes)
        self.train_metrics = metrics.clone(prefix="train_")
        self.val_metrics = metrics.clone(prefix="val_")
        self.test_metrics = metrics.clone(prefix="test_")

    @property
    def input_size(self) -> tuple[int, int, int]:
        """Default input ``(C, H, W)`` for this model (its channels, the architecture's size)."""
        return (self.in_channels, *self.info.input_size[1:])  # type: ignore[return-value]

    @property
    def min_input_size(self) -> tuple[int, int]:
        """Smallest ``(H, W)`` the network accepts (a small-input stem may lower it)."""
        return getattr(self.net, "min_input_size", self.info.min_input_size)  # type: ignore[no-any-return]

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

    def forward(self, x: Tensor) -> Any:
        """Logits ``(N, num_classes)``; in training, networks with auxiliary heads return a tuple."""
        self.check_input(x)
        return self.net(x)

    def _check_labels(self, y: Tensor, batch_size: int) -> None:
        if y.ndim != 1 or y.shape[0] != batch_size or y.is_floating_point():
            raise ValueError(
                f"labels must be an integer tensor of shape ({batch_size},); "
                f"got dtype {y.dtype} and shape {tuple(y.shape)}"
            )
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= self.num_classes:
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}); got values from {low} to {high}"
            )

    def _step(self, batch: Any, metrics: nn.Module, stage: str) -> Tensor:
        x, y = batch
        self._check_labels(y, x.shape[0])
        out = self(x)
        logits, aux = (out[0], out[1:]) if isinstance(out, tuple) else (out, ())
        smoothing = self.hparams.label_smoothing
        loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
        for aux_logits in aux:
            loss = loss + self.hparams.aux_loss_weight * F.cross_entropy(
                aux_logits, y, label_smoothing=smoothing
            )
        metrics.update(logits.detach(), y)
        self.log(f"{stage}_loss", loss, prog_bar=True, batch_size=x.shape[0])
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=stage != "train")
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """Cross-entropy (plus weighted auxiliary losses) on one ``(images, labels)`` batch."""
        return self._step(batch, self.train_metrics, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """Loss and metrics on one validation batch."""
        self._step(batch, self.val_metrics, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        """Loss and metrics on one test batch."""
        self._step(batch, self.test_metrics, "test")

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """Class probabilities ``(N, num_classes)`` for a batch of images or ``(images, labels)``."""
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return self(x).softmax(dim=-1)

    def configure_optimizers(self) -> Any:
        """The optimizer and per-step LR schedule named by the hyperparameters."""
        hp = self.hparams
        # No weight decay on biases and normalisation scales (1-D parameters).
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.ndim > 1], "weight_decay": hp.weight_decay},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
        ]
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
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=hp.lr, total_steps=total)
        else:
            sched = torch.optim.lr_scheduler.MultiStepLR(
                opt, milestones=[total // 2, total * 3 // 4], gamma=0.1
            )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
