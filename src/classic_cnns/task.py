"""The one training task every architecture shares.

``ImageClassifier`` is the *system*; the network it trains is a plain ``nn.Module``
held as ``self.net`` and usable without Lightning. Family classes (``LeNet5``,
``ResNet``, ...; :mod:`classic_cnns.models`) are thin subclasses that pick the default
architecture and list the family's network options; the task hands the options it is
given to the network's builder.

The task builds its network and never reads a file in ``__init__``: starting weights
(torchvision's ImageNet weights, a weights file) come from the builder,
:func:`classic_cnns.hub.create_model`, and :meth:`ImageClassifier.load_from_checkpoint`
reads a checkpoint once. For fine-tuning, the task swaps the head (``reset_classifier``),
freezes the backbone (``freeze_backbone``, from :class:`~classic_cnns.finetune.FreezableBackbone`;
see :class:`~classic_cnns.finetune.UnfreezeBackbone`) and trains backbone and head at
different learning rates (``backbone_lr``).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any, ClassVar

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection

from classic_cnns import _guard, finetune
from classic_cnns._arguments import check_arguments, warn_of_the_recipe_lr, warn_of_unused_momentum
from classic_cnns._checks import as_plain
from classic_cnns._data_classes import check_data_classes, check_one_loader, datamodule_config
from classic_cnns._distributed import destroy_at_exit
from classic_cnns._guard import NonFinitePolicy, StepGuard, check_images, report
from classic_cnns.checkpoint import CheckpointHooks, head_class_names
from classic_cnns.losses import ClassificationLoss, LossName, load_teacher
from classic_cnns.metrics import MeanLoss, classification_metrics
from classic_cnns.nets._layers import ClassifierNet, WeightInit, init_weights
from classic_cnns.optim import (
    OPTIMIZERS,
    SCHEDULERS,
    check_resumed_optimizers,
    check_resumed_schedule,
    make_optimizer,
    make_scheduler,
    param_groups,
    record_tuned_hparams,
    run_steps,
)
from classic_cnns.recipes import OptimizerName, Recipe, SchedulerName
from classic_cnns.registry import model_info

__all__ = ["OPTIMIZERS", "SCHEDULERS", "ImageClassifier"]
_SMALL_SIZE = 32  # px: the images a small_input stem is made for (CIFAR, MNIST padded)


class ImageClassifier(finetune.FreezableBackbone, CheckpointHooks):
    """Image classification with any registered architecture.

    Args:
        arch: Registered model name (see ``classic_cnns.list_models()``).
        num_classes: Number of classes; ``None`` takes the architecture's default.
        in_channels: Input channels; ``None`` takes the architecture's default.
        optimizer: One of ``"sgd"`` (with ``momentum``), ``"adam"``, ``"adamw"``, ``"rmsprop"``;
            ``None`` takes the model's recipe (as do the next five arguments).
        lr: Peak learning rate.
        weight_decay: Decoupled weight decay for ``adamw`` (each step shrinks the weights by
            ``lr * weight_decay``), an L2 penalty for the others; weights only.
        momentum: Momentum for ``sgd`` and ``rmsprop`` (``"onecycle"`` cycles it instead).
        scheduler: ``"cosine"`` (per-step cosine decay to 0), ``"onecycle"`` (warm-up then
            cosine annealing, per step, with the momentum or Adam's beta1 cycled from 0.95 to
            0.85 and back unless it is 0), ``"step"`` (×0.1 at 50% and 75% of the epochs,
            the ResNet-CIFAR recipe) or ``"none"``.
        label_smoothing: Training's label smoothing in ``[0, 1)``; evaluation's loss has none.
        loss: ``"cross_entropy"``, ``"mse"``, ``"bce"`` or ``"kl_div"`` (knowledge
            distillation from ``teacher``; see :mod:`classic_cnns.losses`).
        temperature: Distillation temperature.
        alpha: Weight of the teacher's soft targets against the labels, in distillation.
        teacher: The distillation teacher: a ``.ckpt``/``.safetensors`` file, or a registered
            name with ``teacher_weights``; loaded at fit start, frozen, never saved.
        teacher_weights: The weights file of a teacher given by name.
        aux_loss_weight: Weight of auxiliary classifier losses (GoogLeNet), added in training.
        channels_last: Train in the channels-last memory format.
        compile: ``torch.compile`` the network in place (a dict: its arguments).
        weight_init: ``"default"``: the network's own initialisation; ``"xavier"``: Xavier
            uniform convolution and linear weights, as *Dive into Deep Learning* trains them.
            Weights loaded afterwards (pretrained, a file, a checkpoint) replace them.
        nonfinite: What a training, validation or test step does with a batch whose images
            or loss hold NaN or infinite values: ``"raise"`` (stop with an error naming the
            step), ``"skip"`` (warn and leave the batch out; it still counts as a step of
            ``global_step``, the LR schedule and ``max_steps``) or ``"ignore"`` (no check).
        backbone_lr: Peak learning rate of the backbone (all but the head, see
            :mod:`classic_cnns.finetune`); ``None`` trains it at ``lr``. Fine-tuning usually
            gives a pretrained backbone a tenth of the new head's rate or less.
        **options: The network's own arguments (``model_info(arch).options``, such as
            ResNet's ``small_input``), handed to its builder; ``None`` leaves the network's
            default.

    Example:
        >>> import torch
        >>> from classic_cnns import ImageClassifier
        >>> model = ImageClassifier("lenet5", num_classes=10, optimizer="sgd", lr=0.05)
        >>> model(torch.randn(4, 1, 32, 32)).shape
        torch.Size([4, 10])
    """

    # A family class's family and default architecture (set by each in classic_cnns.models).
    family: ClassVar[str | None] = None
    default_arch: ClassVar[str]
    # torch.jit.script compiles forward and the network; the training machinery (losses,
    # metrics, checks) and the properties that read the trainer stay out of the script.
    __jit_unused_properties__: list[str] = [  # noqa: RUF012 (LightningModule declares it so)
        *L.LightningModule.__jit_unused_properties__,
        "_hp",
        "recipe",
        "input_size",
        "min_input_size",
        "train_loss_terms",
        "backbone_frozen",
        "num_features",
    ]
    __jit_ignored_attributes__: ClassVar[list[str]] = [
        "criterion", "hard_criterion", "eval_criterion", "train_metrics", "val_metrics",
        "test_metrics", "losses",
    ]  # fmt: skip

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
        channels_last: bool = False,
        compile: bool | dict[str, Any] = False,
        weight_init: WeightInit = "default",
        nonfinite: NonFinitePolicy = "raise",
        backbone_lr: float | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        self.info = info = model_info(arch)
        # Arguments not given come from the architecture (sizes) and its recipe (training).
        # (A numpy int, as labels.max() + 1 gives, is taken as the int it is: as build_net does.)
        num_classes = as_plain(info.num_classes if num_classes is None else num_classes)
        in_channels = as_plain(info.input_size[0] if in_channels is None else in_channels)
        recipe = info.recipe
        warn_of_the_recipe_lr(info, optimizer, lr)
        optimizer = recipe.optimizer if optimizer is None else optimizer
        lr = recipe.lr if lr is None else lr
        weight_decay = recipe.weight_decay if weight_decay is None else weight_decay
        momentum = recipe.momentum if momentum is None else momentum
        scheduler = recipe.scheduler if scheduler is None else scheduler
        label_smoothing = recipe.label_smoothing if label_smoothing is None else label_smoothing
        check_arguments(type(self), info, locals())
        warn_of_unused_momentum(info, optimizer, momentum, scheduler)
        self.save_hyperparameters()
        # Checkpoints and loggers (which read hparams_initial, as save_hyperparameters sets it)
        # record the training values used; LightningCLI records what it was given.
        resolved = dict(
            num_classes=num_classes, in_channels=in_channels, optimizer=optimizer, lr=lr,
            weight_decay=weight_decay, momentum=momentum, scheduler=scheduler,
            label_smoothing=label_smoothing,
        )  # fmt: skip
        # As plain numbers (a numpy number's .item()), which weights_only loads.
        self.hparams.update({k: as_plain(v) for k, v in {**self.hparams, **resolved}.items()})
        self._hparams_initial = copy.deepcopy(self._hparams)
        self.num_classes, self.in_channels = num_classes, in_channels
        self.channels_last = channels_last  # a plain attribute: forward reads it when scripted
        self.net: ClassifierNet = info.build_net(  # type: ignore[assignment]
            num_classes=num_classes,
            in_channels=in_channels,
            **{k: v for k, v in options.items() if v is not None},
        )
        init_weights(self.net, weight_init)
        # Training's loss; the labels' loss of the auxiliary heads (and of the network when
        # not distilling); evaluation's: unsmoothed and without a teacher, as timm validates.
        self.criterion = ClassificationLoss(
            loss, label_smoothing=label_smoothing, temperature=temperature, alpha=alpha
        )
        self.hard_criterion = self.criterion
        if loss == "kl_div":
            self.hard_criterion = ClassificationLoss(label_smoothing=label_smoothing)
        self.eval_criterion = ClassificationLoss("cross_entropy" if loss == "kl_div" else loss)
        self._set_metrics(num_classes)
        # How the training data was prepared (mean, std, image_size, resize, class_names), kept
        # in checkpoints for predict and export; a pretrained model's: its weights' statistics.
        self.data_config: dict[str, Any] = {}
        # The distillation teacher: loaded at fit start, kept outside the module tree so that
        # it is never trained, never saved in checkpoints and never counted as ours.
        self._teacher: list[nn.Module] = []

    def _set_metrics(self, num_classes: int) -> None:
        # torchmetrics objects, updated every step, logged (and synced) once an epoch. Training
        # keeps top-1 accuracy only (F1, top-5 of a moving model say little); guards check labels.
        metrics = classification_metrics(num_classes, validate_args=False)
        self.train_metrics = MetricCollection({"acc": metrics["acc"].clone()}, prefix="train_")
        self.val_metrics = metrics.clone(prefix="val_")
        self.test_metrics = metrics.clone(prefix="test_")
        # The mean loss per image of each stage, exact under DDP and in 16-bit precisions too.
        stages = ("train", "val", "test")
        self.losses = nn.ModuleDict({f"{s}_loss": MeanLoss() for s in stages})
        self._guards = {s: StepGuard(num_classes) for s in stages}

    @property
    def recipe(self) -> Recipe:
        """The architecture's training recipe (``model_info(arch).recipe``): the task's
        training defaults, the datamodules' batch size and small-image size (32 px for a
        network built with ``small_input=True``).

        Example:
            >>> from classic_cnns import ResNet
            >>> ResNet("resnet18", small_input=True).recipe.small_image_size  # resnet18's: 96
            32
        """
        recipe = self.info.recipe
        small = self._hp.get("small_input")
        return replace(recipe, small_image_size=_SMALL_SIZE) if small else recipe

    @property
    def input_size(self) -> tuple[int, int, int]:
        """Default input ``(C, H, W)`` for this model: its channels and the architecture's size,
        or, for a network built with ``small_input=True``, the recipe's small size (32 px).

        Example:
            >>> from classic_cnns import ResNet
            >>> ResNet("resnet18").input_size, ResNet("resnet18", small_input=True).input_size
            ((3, 224, 224), (3, 32, 32))
        """
        if self._hp.get("small_input"):  # a stem for CIFAR-sized images
            return (self.in_channels, _SMALL_SIZE, _SMALL_SIZE)
        return (self.in_channels, *self.info.input_size[1:])  # type: ignore[return-value]

    @property
    def min_input_size(self) -> tuple[int, int]:
        """Smallest ``(H, W)`` the network accepts (a small-input stem may lower it)."""
        return getattr(self.net, "min_input_size", self.info.min_input_size)  # type: ignore[no-any-return]

    @property
    def train_loss_terms(self) -> str:
        """How ``train_loss`` differs from the evaluation loss (``val_loss``), or ``""``.

        Example:
            >>> from classic_cnns import LeNet5
            >>> LeNet5(label_smoothing=0.1).train_loss_terms
            'labels smoothed by 0.1'
        """
        aux = getattr(self.net, "aux_logits", False)  # GoogLeNet's heads, in training
        heads = f"+ {self._hp.aux_loss_weight:g} x each auxiliary head's" if aux else ""
        return ", ".join(t for t in (self.criterion.terms, heads) if t)

    @property
    def schedule_steps(self) -> int | None:
        """The steps the LR schedule was made for, or ``None`` (no schedule, or none made yet).

        Example:
            >>> from classic_cnns import LeNet5
            >>> print(LeNet5().schedule_steps)  # a fit's configure_optimizers makes it
            None
        """
        return getattr(self, "_made_for", (None, None))[1]

    @property
    def _hp(self) -> Any:
        # The hyperparameters as attributes: the one way the task reads them (typed loosely).
        return self.hparams

    @torch.jit.unused
    def check_input(self, x: Tensor) -> None:
        """Raise a clear error if ``x`` is not a float ``(N, C, H, W)`` batch this model accepts.

        Under ``torch.fx`` tracing (a symbolic ``Proxy`` has no values to check) and in a
        ``torch.jit.script``ed model the checks are left out (see
        :func:`classic_cnns._guard.check_images`).

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
        weight = None  # the first parameter (torch 2.6's export cannot trace next(it, None))
        for weight in self.net.parameters():  # noqa: B007
            break
        check_images(
            x, name=self.info.name, in_channels=self.in_channels,
            min_size=self.min_input_size, weight=weight,
        )  # fmt: skip

    def forward(self, x: Tensor) -> Any:
        """Logits ``(N, num_classes)``; in training, nets with auxiliary heads return a tuple.

        Example:
            >>> from classic_cnns import LeNet5
            >>> LeNet5()(torch.zeros(2, 1, 32, 32)).shape
            torch.Size([2, 10])
        """
        if not torch.jit.is_scripting():
            self.check_input(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)

    # -- speed and distillation, set up once per run -------------------------------------
    def setup(self, stage: str) -> None:
        """Prepare a run: memory format, ``torch.compile``, the data and the teacher.

        ``channels_last`` and ``compile`` (``nn.Module.compile``: the state dict keeps its
        keys) apply to every stage. For ``fit``, the datamodule's class count must be the
        head's (``validate``/``test`` check it and the class names at their start, once a
        ``ckpt_path`` has been restored), its ``data_config`` is recorded, an image of its
        size becomes ``example_input_array`` and the teacher is loaded. Every stage makes
        the metric states anew: a ``validate`` or ``test`` before leaves inference tensors,
        which training cannot update, and a run stopped by an error leaves its sums. Under a
        distributed strategy, the process group is destroyed at exit
        (``_distributed.destroy_at_exit``).
        """
        destroy_at_exit()
        hp, self._restored_data = self._hp, None  # a ckpt_path restore (after setup) sets it
        _guard.refuse_skip_across_processes(hp.nonfinite, getattr(self._trainer, "world_size", 1))
        if hp.channels_last:
            self.net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if hp.compile and not getattr(self.net, "_compiled_call_impl", None):
            self.net.compile(**(hp.compile if isinstance(hp.compile, dict) else {}))
        dm = getattr(self._trainer, "datamodule", None)
        for metric in (m for m in self.modules() if isinstance(m, Metric)):
            metric.reset()  # as plain tensors, and empty after a run an error stopped
        if stage == "fit":  # a head trained on other classes: named (see the function)
            recorded = head_class_names(self.data_config, self.num_classes)
            check_data_classes(self.info.name, self.num_classes, recorded, dm, stage)
            self.data_config.pop("class_names", None)  # other data's, unless config has them
        if stage == "fit" and (config := datamodule_config(dm, say=True)):
            self.data_config = config
            # One image for Lightning's model summary to count FLOPs (compiled: once more).
            if not hp.compile:
                self.example_input_array = torch.zeros(1, self.in_channels, *config["image_size"])
        if stage == "fit" and hp.teacher is not None and not self._teacher:
            teacher = load_teacher(
                hp.teacher, hp.teacher_weights, self.num_classes, self.in_channels, dm
            )
            self._teacher = (
                [teacher.to(memory_format=torch.channels_last)] if hp.channels_last else [teacher]
            )

    def _teacher_logits(self, x: Tensor) -> Tensor:
        teacher = self._teacher[0].eval()  # in eval, whatever train() did to the student
        with torch.no_grad():
            out = teacher(x)
        return out[0] if isinstance(out, tuple) else out

    # -- fine-tuning ---------------------------------------------------------------------
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
        features: Tensor = self.net.forward_features(x)
        return features

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head with a freshly initialised one for ``num_classes`` classes.

        Updates ``num_classes`` (in the hyperparameters too, so checkpoints reload with the
        new head and loggers record it) and the metrics. Call it before ``Trainer.fit``,
        which builds the optimizer. A classifier needs at least 2 classes; for a headless
        network, call ``model.net.reset_classifier(0)`` on the plain network.

        Example:
            >>> from classic_cnns import LeNet5
            >>> model = LeNet5(num_classes=10)
            >>> model.reset_classifier(5)
            >>> model.net.fc.out_features, model.num_classes, model.hparams.num_classes
            (5, 5, 5)
            >>> model.hparams_initial.num_classes  # as loggers record it
            5
        """
        finetune.reset_head(self.net, num_classes)
        self.data_config.pop("class_names", None)  # the old head's
        self.num_classes = num_classes
        self.hparams["num_classes"] = self._hparams_initial["num_classes"] = num_classes  # loggers'
        self._set_metrics(num_classes)
        self.to(next(self.net.parameters()).device)  # the new metrics join the model's device

    def _step(self, batch: Any, batch_idx: int, stage: str) -> tuple[Tensor, Tensor] | None:
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
        # Training takes soft labels (N, C) too, MixUp's; the metrics count their top class.
        _guard.check_labels_structure(y, x.shape[0], self.num_classes if stage == "train" else None)
        policy = self._hp.nonfinite
        # Reading a value from the device waits for it: free on the CPU, and "skip" must know at
        # once; else the checks are read on logging steps and epoch ends (tests patch queued).
        eager = policy == "skip" or not _guard.queued(x.device)
        guard, metrics = self._guards[stage], getattr(self, f"{stage}_metrics")
        where = _guard.At(stage, batch_idx, self.current_epoch, self.global_step)
        y = guard.labels(y, where, eager)
        # Images are checked before the forward pass, which would carry NaN into batch norm's
        # running statistics; after a non-finite loss, skip puts the statistics back.
        if policy != "ignore" and not guard.images(x, where, eager):
            self._nonfinite(stage, "images", where, x=x)
            return None
        put_back = _guard.keep_norm_statistics(self.net, policy == "skip" and stage == "train")
        try:
            out = self(x)
        except ValueError as err:  # torch's words: a batch norm's map of 1x1 x one image
            if stage != "train" or len(x) != 1 or "more than 1 value per channel" not in str(err):
                raise
            raise ValueError(
                f"{self.info.name} cannot train on a batch of one image ({where}): batch norm "
                f"needs more than one value per channel ({err}); leave the lone last image out "
                "with DataLoader(..., drop_last=True), as the package's datamodules do"
            ) from err
        logits, aux = (out[0], out[1:]) if isinstance(out, tuple) else (out, ())
        _guard.check_classes(self.info.name, self.num_classes, logits.shape[-1], "its network")
        hard = self.hard_criterion if stage == "train" else self.eval_criterion
        if stage == "train" and self._teacher:
            loss = self.criterion(logits, y, self._teacher_logits(x))
        else:
            loss = hard(logits, y)
        for aux_logits in aux:  # GoogLeNet's auxiliary heads learn from the labels
            loss = loss + self._hp.aux_loss_weight * hard(aux_logits, y)
        if policy != "ignore" and not guard.loss(loss, where, eager):
            self._nonfinite(stage, "loss", where, loss=loss)
            put_back()
            return None
        if not getattr(self._trainer, "barebones", False):  # which logs no metrics
            metrics.update(logits.detach(), y.argmax(dim=1) if y.is_floating_point() else y)
            # The mean over images: the loss once per image (weights need a NaN check's sync).
            self._mean_loss(stage).update(loss.detach().expand(x.shape[0]))
        # The step's loss, logged only on steps whose values reach the loggers (self.log
        # cost 0.3-0.6 ms of a 4-5 ms LeNet-5 CPU step), or every step when monitored (see
        # on_train_start), with the deferred checks' read. A host copy: Lightning reads the
        # bar's values at every batch's end, a wait at each later step for one on the GPU.
        every = getattr(self, "_loss_every", 0) if self._trainer else 0  # 0: no Trainer
        if stage == "train" and every and (self.global_step + 1) % every == 0:
            self.log("train_loss_step", loss.detach().cpu(), prog_bar=True, batch_size=len(x))
            self._raise_pending(stage)
        return loss, logits.detach()

    def _raise_pending(self, stage: str, epoch_end: bool = False) -> None:
        # Raise (or, under nonfinite="skip", warn) about the first problem recorded deferred.
        hp, guard = self._hp, self._guards[stage]
        guard.report_pending(stage, epoch_end, policy=hp.nonfinite, name=self.info.name, lr=hp.lr)

    def _nonfinite(self, stage: str, kind: Any, where: _guard.At, **found: Any) -> None:
        hp, name = self._hp, self.info.name
        report(kind, policy=hp.nonfinite, name=name, where=where, lr=hp.lr, **found)
        # Skipped: a logging step would log the last train_loss_step again (Lightning's cache).
        results: Any = getattr(self._trainer, "_results", None) if stage == "train" else None
        cached = results.get("training_step.train_loss_step") if results is not None else None
        if cached is not None:
            cached.reset()

    def _mean_loss(self, stage: str) -> MeanLoss:
        return self.losses[f"{stage}_loss"]  # type: ignore[return-value]

    def _log_epoch(self, metrics: MetricCollection, stage: str) -> None:
        self._raise_pending(stage, epoch_end=True)  # and warn if every batch was skipped
        # Logging the metric objects lets Lightning compute (and sync) them once and reset; the
        # bar's last update of an epoch comes first, so it would show the epoch before's train.
        if (loss := self._mean_loss(stage)).update_called:  # else an overriding step logs
            self.log(f"{stage}_loss", loss, prog_bar=stage != "train")
            self.log_dict(metrics, prog_bar=stage != "train")

    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        """The loss (with the auxiliary heads') of one batch; labels may be soft, as MixUp's."""
        return None if (out := self._step(batch, batch_idx, "train")) is None else out[0]

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Loss and metrics on one validation batch."""
        self._step(batch, batch_idx, "val")

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor | None:
        """Loss and metrics on one test batch; the logits (``None`` for a skipped batch)."""
        return None if (out := self._step(batch, batch_idx, "test")) is None else out[1]

    def on_train_epoch_end(self) -> None:
        """Log the epoch's ``train_loss`` (mean over images) and ``train_acc``."""
        self._log_epoch(self.train_metrics, "train")

    def on_validation_epoch_end(self) -> None:
        """Log ``val_loss``, ``val_acc``, ``val_f1`` and ``val_acc_top5`` (5+ classes)."""
        self._log_epoch(self.val_metrics, "val")

    def on_validation_start(self) -> None:
        """Refuse data whose labels do not index the model's outputs (see ``on_test_start``)."""
        self._check_data_classes()

    def on_test_start(self) -> None:
        """Refuse data of other classes than the head's, or other names than it records."""
        self._check_data_classes()

    def _check_data_classes(self) -> None:
        # At the loop's start, after a ckpt_path restore (which follows setup); one loader.
        trainer, recorded = self.trainer, head_class_names(self.data_config, self.num_classes)
        loaders = trainer.test_dataloaders if trainer.testing else trainer.val_dataloaders
        check_one_loader(loaders, trainer.state.fn)
        dm = getattr(trainer, "datamodule", None)
        check_data_classes(self.info.name, self.num_classes, recorded, dm, trainer.state.fn)
        self._check_restored_data()  # data prepared as the model learned from: else a warning

    def on_test_epoch_end(self) -> None:
        """Log ``test_loss``, ``test_acc``, ``test_f1`` and ``test_acc_top5`` (5+ classes)."""
        self._log_epoch(self.test_metrics, "test")

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """Class probabilities ``(N, num_classes)`` of a batch: images or ``(images, labels)``."""
        x = batch[0] if isinstance(batch, list | tuple) else batch
        logits = self(x)  # bf16 under CPU autocast: float32 probabilities, as on CUDA
        return logits.softmax(dim=-1, dtype=torch.promote_types(logits.dtype, torch.float32))

    def configure_optimizers(self) -> Any:
        """The optimizer and per-step LR schedule named by the hyperparameters.

        Parameter groups: backbone (at ``backbone_lr``) then head (at ``lr``), each split
        into weights, with weight decay, and biases and norm scales, without
        (:func:`classic_cnns.optim.param_groups`). Frozen parameters stay in: they get no
        gradient, so the optimizer skips them, and unfreezing later needs no new group.
        """
        hp = self._hp
        head = list(finetune.head_parameters(self.net))
        groups = param_groups(
            self, head=head, lr=hp.lr, weight_decay=hp.weight_decay, backbone_lr=hp.backbone_lr
        )
        opt = make_optimizer(hp.optimizer, groups, lr=hp.lr, momentum=hp.momentum)
        # What they are made for: lr and the run's steps (None: no schedule). on_fit_start
        # remakes them for another; on_train_start refuses a resumed schedule of another length.
        self._made_for: tuple[float, int | None] = (hp.lr, None)
        if (total := run_steps(self._trainer, hp.scheduler)) is None:  # by hand: no schedule
            return opt
        sched = make_scheduler(hp.scheduler, opt, total)
        self._made_for = (hp.lr, total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_train_start(self) -> None:
        """Refuse to resume an LR schedule made for another run length (see ``optim``) or an
        optimizer state of another class; record the data configuration trained on (a resumed
        run's, not its checkpoint's). ``train_loss_step`` is logged every
        ``log_every_n_steps`` steps, or every step if a callback or scheduler monitors it."""
        configs = self.trainer.lr_scheduler_configs
        trainer: Any = self.trainer  # its callbacks and log_every_n_steps: set by connectors
        watched = [getattr(c, "monitor", None) for c in [*trainer.callbacks, *configs]]
        self._loss_every = 1 if "train_loss_step" in watched else trainer.log_every_n_steps
        scheduler, planned = self._hp.scheduler, self.schedule_steps
        check_resumed_schedule(scheduler, planned, [c.scheduler for c in configs])
        check_resumed_optimizers(self.trainer.optimizers, [])  # of another class: refused
        self._saved_states: tuple[list, list] = ([], [])  # for on_fit_start, unless restored later
        self._check_restored_data()  # data prepared as a restored checkpoint's: else a warning
        if config := datamodule_config(getattr(self.trainer, "datamodule", None)):
            self.data_config = config  # what it trains on now (a restore put the file's)

    def on_fit_start(self) -> None:
        """Move the distillation teacher to the student's device; remake the optimizer and LR
        schedule if a tuner callback (``BatchSizeFinder``, ``LearningRateFinder``: their
        ``on_fit_start`` runs first) changed the run's length or ``lr`` after they were made."""
        for teacher in self._teacher:
            teacher.to(self.device)
        trainer, made = self.trainer, getattr(self, "_made_for", None)
        if made and made != (self._hp.lr, made[1] and run_steps(trainer, self._hp.scheduler)):
            trainer.strategy.setup_optimizers(trainer)  # configure_optimizers, for this run
        schedulers = [c.scheduler for c in trainer.lr_scheduler_configs]
        saved, schedules = getattr(self, "_saved_states", ([], []))  # the schedule first: its
        check_resumed_schedule(self._hp.scheduler, self.schedule_steps, schedules)  # keys differ
        check_resumed_optimizers(trainer.optimizers, saved, schedulers)
        record_tuned_hparams(self)  # LearningRateFinder's lr, for Lightning to log next
