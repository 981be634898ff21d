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
from typing import IO, Any, ClassVar, Literal, get_args

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection
from typing_extensions import Self

from classic_cnns import _guard, finetune
from classic_cnns._guard import StepGuard, check_labels_structure
from classic_cnns.losses import ClassificationLoss, LossName
from classic_cnns.metrics import classification_metrics
from classic_cnns.recipes import OptimizerName, Recipe, SchedulerName
from classic_cnns.registry import _FAMILIES, create_model, list_models, model_info
from classic_cnns.weights import (
    DATA_CHECKPOINT_KEY,
    fit_checkpoint_state,
    load_model,
    load_pretrained,
    load_weights_file,
)

__all__ = ["OPTIMIZERS", "SCHEDULERS", "ImageClassifier"]

OPTIMIZERS: tuple[str, ...] = get_args(OptimizerName)
SCHEDULERS: tuple[str, ...] = get_args(SchedulerName)

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
    # torch.jit.script compiles forward and the network; the training machinery (losses,
    # metrics, checks) and the properties that read the trainer stay out of the script.
    __jit_unused_properties__: list[str] = [  # noqa: RUF012 (LightningModule declares it so)
        *L.LightningModule.__jit_unused_properties__,
        "_hp",
        "recipe",
        "input_size",
        "min_input_size",
        "backbone_frozen",
        "num_features",
    ]
    __jit_ignored_attributes__: ClassVar[list[str]] = [
        "criterion",
        "eval_criterion",
        "train_metrics",
        "val_metrics",
        "test_metrics",
        "losses",
    ]

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
        optimizer: OptimizerName | None = None,
        lr: float | None = None,
        weight_decay: float | None = None,
        momentum: float | None = None,
        scheduler: SchedulerName | None = None,
        label_smoothing: float | None = None,
        loss: LossName = "cross_entropy",
        temperature: float = 4.0,
        alpha: float = 0.9,
        teacher: str | None = None,
        teacher_weights: str | None = None,
        aux_loss_weight: float = 0.3,
        net_kwargs: dict[str, Any] | None = None,
        channels_last: bool = False,
        compile: bool | dict[str, Any] = False,
        nonfinite: Literal["raise", "skip", "ignore"] = "raise",
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
        # Training arguments not given come from the model's recipe.
        recipe = self.info.recipe
        optimizer = recipe.optimizer if optimizer is None else optimizer
        lr = recipe.lr if lr is None else lr
        weight_decay = recipe.weight_decay if weight_decay is None else weight_decay
        momentum = recipe.momentum if momentum is None else momentum
        scheduler = recipe.scheduler if scheduler is None else scheduler
        label_smoothing = recipe.label_smoothing if label_smoothing is None else label_smoothing
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
        _require(
            (loss == "kl_div") == (teacher is not None),
            "loss='kl_div' (knowledge distillation) needs a teacher, and a teacher needs "
            f"loss='kl_div'; got loss={loss!r} and teacher={teacher!r}",
        )
        _require(
            isinstance(compile, bool | dict),
            f"compile must be a bool or a dict of torch.compile arguments; got {compile!r}",
        )
        # The loss of training; evaluation reports plain cross-entropy when distilling, so
        # that validation needs no teacher.
        self.criterion = ClassificationLoss(
            loss, label_smoothing=label_smoothing, temperature=temperature, alpha=alpha
        )
        self.eval_criterion = (
            ClassificationLoss(label_smoothing=label_smoothing)
            if loss == "kl_div"
            else self.criterion
        )
        self.save_hyperparameters()
        resolved = {
            "optimizer": optimizer,
            "lr": lr,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "scheduler": scheduler,
            "label_smoothing": label_smoothing,
        }
        self.hparams.update(resolved)  # checkpoints record what was used
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.channels_last = channels_last  # a plain attribute: forward reads it when scripted
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
        # The distillation teacher: loaded at fit start, kept outside the module tree so that
        # it is never trained, never saved in checkpoints and never counted as ours.
        self._teacher: list[nn.Module] = []
        if not _RESTORING.get():
            if pretrained:
                load_pretrained(self.net, arch)
            elif checkpoint_path:
                self.data_config = load_weights_file(self.net, checkpoint_path, arch=arch)

    def _set_metrics(self, num_classes: int) -> None:
        # torchmetrics objects, updated every step and logged once at the end of the epoch
        # (which is also when torchmetrics syncs them across processes). Training keeps
        # top-1 accuracy only: F1 and top-5 of a moving model cost time and say little.
        # The labels are checked by the step's guard, so torchmetrics need not check them.
        metrics = classification_metrics(num_classes, validate_args=False)
        self.train_metrics = MetricCollection({"acc": metrics["acc"].clone()}, prefix="train_")
        self.val_metrics = metrics.clone(prefix="val_")
        self.test_metrics = metrics.clone(prefix="test_")
        # The mean loss per image of each stage, exact under DDP too. nan_strategy="disable":
        # the default's NaN check reads the device at every update.
        stages = ("train", "val", "test")
        self.losses = nn.ModuleDict(
            {f"{s}_loss": MeanMetric(nan_strategy="disable") for s in stages}
        )
        self._guards = {s: StepGuard(num_classes) for s in stages}

    @property
    def recipe(self) -> Recipe:
        """The architecture's training recipe (``model_info(arch).recipe``).

        The training arguments not given to the task come from it; the datamodules take
        their batch size and small-image size from it.

        Example:
            >>> from classic_cnns import LeNet5
            >>> LeNet5().recipe.batch_size
            128
        """
        return self.info.recipe

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

    @torch.jit.unused
    def check_input(self, x: Tensor) -> None:
        """Raise a clear error if ``x`` is not a float ``(N, C, H, W)`` batch this model accepts.

        Under ``torch.fx`` tracing (a symbolic ``Proxy`` has no values to check) and in a
        ``torch.jit.script``ed model the checks are left out.

        Example:
            >>> import torch
            >>> from classic_cnns import LeNet5
            >>> LeNet5().check_input(torch.zeros(1, 1, 28, 28))
            Traceback (most recent call last):
            ...
            ValueError: lenet5 needs images of at least 32x32 (H x W); got 28x28 ...
        """
        if isinstance(x, torch.fx.Proxy):
            return
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
        if not torch.jit.is_scripting():
            self.check_input(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    # -- speed and distillation, set up once per run -------------------------------------
    def setup(self, stage: str) -> None:
        """Prepare a ``fit``: memory format, ``torch.compile`` and the distillation teacher.

        ``channels_last`` moves the network's weights to that memory format (each batch
        follows in :meth:`forward`); ``compile`` compiles the network in place
        (``nn.Module.compile``, so the state dict keeps its keys). Both apply to every
        stage; the teacher is loaded for ``fit`` only.
        """
        hp = self._hp
        if hp.channels_last:
            self.net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if hp.compile and not getattr(self.net, "_compiled_call_impl", None):
            self.net.compile(**(hp.compile if isinstance(hp.compile, dict) else {}))
        if stage == "fit" and hp.teacher is not None and not self._teacher:
            self._teacher = [self._load_teacher(hp.teacher, hp.teacher_weights)]

    def _load_teacher(self, teacher: str, weights: str | None) -> nn.Module:
        # A registered name with a weights file, or a file that says which model it holds.
        if teacher in list_models():
            if weights is None:
                raise ValueError(
                    f"teacher={teacher!r} is a model name; give its trained weights as "
                    "teacher_weights (a .ckpt or .safetensors file): an untrained teacher "
                    "teaches nothing"
                )
            model = create_model(
                teacher,
                num_classes=self.num_classes,
                in_channels=self.in_channels,
                checkpoint_path=weights,
            )
        else:
            if not Path(teacher).is_file():
                raise FileNotFoundError(
                    f"teacher={teacher!r} is neither a registered model name nor a file; "
                    "expected a .ckpt or .safetensors file, or a name with teacher_weights"
                )
            model = load_model(teacher)
        if model.num_classes != self.num_classes or model.in_channels != self.in_channels:
            raise ValueError(
                f"the teacher {model.info.name} takes {model.in_channels} channel(s) and has "
                f"{model.num_classes} classes; the student takes {self.in_channels} and has "
                f"{self.num_classes}"
            )
        net = model.net.eval().requires_grad_(False)
        if self._hp.channels_last:
            net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        return net

    def _teacher_logits(self, x: Tensor) -> Tensor:
        teacher = self._teacher[0]
        teacher.eval()  # whatever train() did to the student, the teacher stays in eval
        with torch.no_grad():
            out = teacher(x)
        return out[0] if isinstance(out, tuple) else out

    # -- fine-tuning ---------------------------------------------------------------------
    @property
    def num_features(self) -> int:
        """Width of the pooled features the final classifier sees (the network's pre-logits)."""
        return int(self.net.num_features)  # type: ignore[arg-type]

    def forward_features(self, x: Tensor) -> Tensor:
        """The network's unpooled feature maps ``(N, C, H, W)``, as timm's ``forward_features``.

        The input is checked as in :meth:`forward`. ``self.net.forward_head(maps,
        pre_logits=True)`` turns the maps into the pooled ``(N, num_features)`` features the
        final classifier sees, for embeddings or linear probes; ``self.net.forward_head(maps)``
        gives the logits.

        Example:
            >>> import torch
            >>> from classic_cnns import ResNet
            >>> model = ResNet("resnet20").eval()
            >>> maps = model.forward_features(torch.zeros(2, 3, 32, 32))
            >>> maps.shape, model.net.forward_head(maps, pre_logits=True).shape
            (torch.Size([2, 64, 8, 8]), torch.Size([2, 64]))
        """
        self.check_input(x)
        features: Tensor = self.net.forward_features(x)  # type: ignore[operator]
        return features

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head with a freshly initialised one for ``num_classes`` classes.

        Updates ``num_classes`` (in the hyperparameters too, so checkpoints reload with the
        new head) and the metrics. Call it before ``Trainer.fit``, which builds the optimizer.
        A classifier needs at least 2 classes; for a headless network, call
        ``model.net.reset_classifier(0)`` on the plain network.

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

    def _step(self, batch: Any, metrics: MetricCollection, stage: str) -> Tensor | None:
        if not isinstance(batch, list | tuple) or len(batch) != 2:
            size = f" of length {len(batch)}" if isinstance(batch, list | tuple) else ""
            raise ValueError(
                f"{stage} batches must be (images, labels) pairs; "
                f"got a {type(batch).__name__}{size}"
            )
        x, y = batch
        if not isinstance(x, Tensor):
            self.check_input(x)  # raises, naming what was expected; forward checks the rest
        if x.shape[0] == 0:
            raise ValueError("expected a batch of at least one image; got an empty batch")
        check_labels_structure(y, x.shape[0])
        policy = self._hp.nonfinite
        # Reading a value from the device waits for it. On the CPU that is free, and "skip"
        # must know at once; otherwise the checks are read on logging steps and epoch ends.
        eager = policy == "skip" or not _guard.queued(x.device)
        guard, where = self._guards[stage], (self.global_step, self.current_epoch)
        y = guard.labels(y, where, eager)
        # Images are checked before the forward pass, which would otherwise carry NaN into
        # batch norm's running statistics even when the batch is then skipped.
        if policy != "ignore" and not guard.images(x, where, eager):
            self._nonfinite(stage, "images", where, x=x)
            return None
        out = self(x)
        logits, aux = (out[0], out[1:]) if isinstance(out, tuple) else (out, ())
        if stage == "train" and self._teacher:
            loss = self.criterion(logits, y, self._teacher_logits(x))
        else:
            loss = self.eval_criterion(logits, y)
        for aux_logits in aux:  # GoogLeNet's auxiliary heads learn from the labels
            loss = loss + self._hp.aux_loss_weight * self.eval_criterion(aux_logits, y)
        if policy != "ignore" and not guard.loss(loss, where, eager):
            self._nonfinite(stage, "loss", where, loss=loss)
            return None
        metrics.update(logits.detach(), y)
        # The mean loss over images: the batch's loss counted once per image. (MeanMetric's
        # weights would need its NaN check, which reads the device every step.)
        self._mean_loss(stage).update(loss.detach().expand(x.shape[0]))
        # The step's loss for loss curves and the progress bar, logged only on the steps whose
        # values reach the loggers (every log_every_n_steps): a self.log call costs about
        # 2 ms on a CPU, a tenth of a LeNet-5 step at batch 128. The progress bar reads it
        # from the device, so the deferred checks are read there too.
        every = getattr(self._trainer, "log_every_n_steps", 0)  # 0: not under a Trainer
        if stage == "train" and every and (self.global_step + 1) % every == 0:
            self.log("train_loss_step", loss.detach(), prog_bar=True, batch_size=x.shape[0])
            self._raise_pending(stage)
        return loss

    def _raise_pending(self, stage: str) -> None:
        # Raise (or, for images and losses under nonfinite="skip", warn about) the first
        # problem the deferred checks of this stage recorded.
        problem = self._guards[stage].pending()
        if problem is None:
            return
        where = (problem.step, problem.epoch)
        if problem.kind == "labels":
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}); got values from {problem.low} "
                f"to {problem.high} (the {stage} batch at global step {problem.step}, epoch "
                f"{problem.epoch})"
            )
        self._nonfinite(stage, problem.kind, where, deferred=True)

    def _nonfinite(
        self,
        stage: str,
        kind: str,
        where: tuple[int, int],
        x: Tensor | None = None,
        loss: Tensor | None = None,
        deferred: bool = False,
    ) -> None:
        # Raises or warns (policy "raise" or "skip") about non-finite images or, for kind
        # "loss", a non-finite loss of finite images.
        at = f"at global step {where[0]} (epoch {where[1]})"
        if kind == "images":
            values = "NaN or infinite image values"
            if x is not None:
                bad = int((~torch.isfinite(x)).sum())
                values = f"{bad} NaN or infinite value(s) among its {x.numel()} image values"
            message = (
                f"{self.info.name}: the {stage} batch {at} has {values}; expected finite images"
            )
            hint = "Check the data and its transform"
        else:
            value = "NaN or infinite" if loss is None else float(loss.detach())
            message = (
                f"{self.info.name}: the {stage} loss {at} is {value}; expected a "
                "finite number. The images were finite, so the weights or logits overflowed"
            )
            hint = (
                f"In training this usually means the learning rate (lr={self._hp.lr}) is too high"
            )
        if deferred:  # found on a later read of the device
            message += " (checked without waiting for the device, so found later)"
        if self._hp.nonfinite == "raise":
            raise ValueError(f"{message}. {hint}, or pass nonfinite='skip' to skip such batches")
        rank_zero_warn(f"{message}; skipping the batch (nonfinite='skip')")

    def _mean_loss(self, stage: str) -> MeanMetric:
        return self.losses[f"{stage}_loss"]  # type: ignore[return-value]

    def _log_epoch(self, metrics: MetricCollection, stage: str) -> None:
        self._raise_pending(stage)
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
        """Record the datamodule's preprocessing (mean, std, size, resize mode, class names).

        Also moves the distillation teacher to the student's device.
        """
        for teacher in self._teacher:
            teacher.to(self.device)
        datamodule = getattr(self.trainer, "datamodule", None)
        config: dict[str, Any] = {}
        for key in ("mean", "std", "class_names"):
            value = getattr(datamodule, key, None)
            if value is not None:
                config[key] = [v if isinstance(v, str) else float(v) for v in value]
        size = getattr(datamodule, "_target", None)
        if size is not None:
            config["image_size"] = [int(v) for v in size]
        if getattr(datamodule, "resize_mode", None) in ("pad", "resize"):
            config["resize"] = datamodule.resize_mode  # type: ignore[union-attr]
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
