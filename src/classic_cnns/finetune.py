"""Fine-tuning helpers: which layers are the head, freezing the backbone, unfreezing on schedule.

The *head* of a network is its final classifier layer(s), what
``reset_classifier(num_classes)`` replaces, as the network class declares them in its
``head_names`` (timm's ``classifier``): ``fc`` (LeNet-5, ResNet), ``classifier.6``
(AlexNet, VGG), ``classifier`` (DenseNet), ``classifier.0`` (NiN's class-map convolution)
and for GoogLeNet ``fc`` plus the auxiliary classifiers ``aux1`` and ``aux2``, which
torchvision's weights leave untrained. Everything else is the *backbone*.

The functions work on plain networks (any ``nn.Module``; anything else is a ``TypeError``);
:class:`FreezableBackbone` gives a LightningModule
(:class:`~classic_cnns.task.ImageClassifier`) its ``freeze_backbone()`` and
``unfreeze_backbone()``, and :class:`UnfreezeBackbone` is the Lightning callback that
unfreezes after a few epochs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from lightning.pytorch.callbacks import BackboneFinetuning, BaseFinetuning
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.optim import Optimizer
from typing_extensions import Self

from classic_cnns._checks import check_flag, is_int, is_number, require_module
from classic_cnns._warn import warn
from classic_cnns.nets._layers import same_placement

if TYPE_CHECKING:
    import lightning.pytorch as pl

__all__ = [
    "FreezableBackbone",
    "UnfreezeBackbone",
    "backbone_parameters",
    "freeze_backbone",
    "head_names",
    "head_parameters",
    "reset_head",
    "unfreeze_backbone",
]


def head_names(net: nn.Module) -> tuple[str, ...]:
    """Dotted names of the network's head modules (those present: GoogLeNet may lack aux heads).

    The names are the network's ``head_names`` attribute (a tuple of module names), which
    every built-in network declares and a network of your own can declare too; without it
    the last module that holds parameters is taken as the head.

    Example:
        >>> from classic_cnns import model_info
        >>> head_names(model_info("vgg11").build_net())
        ('classifier.6',)
        >>> head_names(model_info("googlenet").build_net(aux_logits=False))
        ('fc',)
    """
    require_module(net, "head_names")
    modules = dict(net.named_modules())
    # torch.compile's wrapper forwards attributes to the network, whose modules it holds
    # under "_orig_mod.".
    inner = getattr(net, "_orig_mod", net)
    declared = getattr(inner, "head_names", None)
    if declared is not None and inner is not net:
        declared = tuple(f"_orig_mod.{n}" for n in declared)
    if declared is None:
        with_params = [n for n, m in modules.items() if any(True for _ in m.parameters(False))]
        if not with_params:
            raise ValueError(f"{type(net).__name__} has no parameters, so it has no head")
        declared = (with_params[-1],)
    return tuple(n for n in declared if modules.get(n) is not None)


def _head_ids(net: nn.Module) -> set[int]:
    modules = dict(net.named_modules())
    return {id(p) for name in head_names(net) for p in modules[name].parameters()}


def head_parameters(net: nn.Module) -> Iterator[nn.Parameter]:
    """The parameters of the head (see :func:`head_names`).

    Example:
        >>> from classic_cnns import model_info
        >>> [p.shape for p in head_parameters(model_info("lenet5").build_net())]
        [torch.Size([10, 84]), torch.Size([10])]
    """
    require_module(net, "head_parameters")
    ids = _head_ids(net)
    return (p for p in net.parameters() if id(p) in ids)


def backbone_parameters(net: nn.Module) -> Iterator[nn.Parameter]:
    """Every parameter that is not in the head.

    Example:
        >>> from classic_cnns import model_info
        >>> net = model_info("lenet5").build_net()
        >>> sum(p.numel() for p in backbone_parameters(net))
        60856
    """
    require_module(net, "backbone_parameters")
    ids = _head_ids(net)
    return (p for p in net.parameters() if id(p) not in ids)


def _backbone_norms(net: nn.Module) -> list[_BatchNorm]:
    heads = dict(net.named_modules())
    inside_head = {id(m) for n in head_names(net) for m in heads[n].modules()}
    return [m for m in net.modules() if isinstance(m, _BatchNorm) and id(m) not in inside_head]


def freeze_backbone(net: nn.Module, *, train_bn: bool = False) -> list[_BatchNorm]:
    """Stop training the backbone: ``requires_grad=False`` on its parameters.

    With ``train_bn=False`` its batch norm layers are also put in eval mode, so they
    normalise with their running statistics and stop updating them, as in evaluation (timm
    freezes batch norm the same way), and stop tracking them (``track_running_stats=False``,
    as Lightning's ``BaseFinetuning.freeze`` does), so that a re-estimation such as
    ``torch.optim.swa_utils.update_bn`` leaves them as they are; the backbone's dropout
    layers (AlexNet, VGG, NiN, GoogLeNet) keep dropping in training. ``net.train()`` undoes
    the eval mode (they then normalise with each batch's statistics, still untracked);
    :class:`~classic_cnns.task.ImageClassifier` re-applies it after every ``train()`` call
    (a plain loop's per-epoch ``model.train()``; Lightning itself restores each module's
    own mode after validation). With ``train_bn=True`` the batch norm layers keep training,
    scales and statistics, as in Lightning's ``BackboneFinetuning``.

    Returns:
        The batch norm layers put in eval mode (empty with ``train_bn=True``).

    Example:
        >>> from classic_cnns import model_info
        >>> net = model_info("resnet20").build_net()
        >>> _ = freeze_backbone(net)
        >>> [n for n, p in net.named_parameters() if p.requires_grad]
        ['fc.weight', 'fc.bias']
    """
    require_module(net, "freeze_backbone")
    check_flag("train_bn", train_bn)
    for p in backbone_parameters(net):
        p.requires_grad_(False)
    norms = _backbone_norms(net)
    if train_bn:  # also after a freeze without: the layers train and track again
        for p in (p for m in norms for p in m.parameters()):
            p.requires_grad_(True)
        _track_again(norms, net.training)
        return []
    for m in norms:
        m.eval()
        m.track_running_stats = False  # reset_running_stats() (update_bn) passes them by
    return norms


def unfreeze_backbone(net: nn.Module) -> None:
    """Train every parameter again (``requires_grad=True``); the next ``train()`` resets batch norm.

    The backbone's batch norm layers track their running statistics again.

    Example:
        >>> from classic_cnns import model_info
        >>> net = model_info("resnet20").build_net()
        >>> _ = freeze_backbone(net); unfreeze_backbone(net)
        >>> all(p.requires_grad for p in net.parameters())
        True
    """
    require_module(net, "unfreeze_backbone")
    for p in net.parameters():
        p.requires_grad_(True)
    _track_again(_backbone_norms(net), net.training)


def _track_again(norms: list[_BatchNorm], training: bool) -> None:
    # Batch norm layers in the network's mode, tracking their statistics as built (a layer
    # built without running statistics stays without).
    for m in norms:
        m.train(training)
        m.track_running_stats = m.running_mean is not None


def reset_head(net: nn.Module, num_classes: int) -> None:
    """Give the network a freshly initialised head for ``num_classes`` classes.

    Uses the network's ``reset_classifier`` when it has one; otherwise replaces each
    ``nn.Linear`` (or 1x1 ``nn.Conv2d``) head module with a new one of ``num_classes``
    outputs. The new layers are created on the old ones' device and dtype.

    Raises:
        ValueError: if ``num_classes`` is not an int of at least 2.
        TypeError: if ``net`` is not an ``nn.Module``, or a head module is neither and the
            network has no ``reset_classifier``.

    Example:
        >>> from classic_cnns import model_info
        >>> net = model_info("lenet5").build_net(num_classes=10)
        >>> reset_head(net, 5)
        >>> net.fc.out_features
        5
    """
    require_module(net, "reset_head")
    if not is_int(num_classes, 2):
        raise ValueError(f"num_classes must be an int of at least 2; got {num_classes!r}")
    reset = getattr(net, "reset_classifier", None)
    with same_placement(net):  # (a network of one's own may make its head on the CPU)
        if callable(reset):
            reset(num_classes)
            return
        for name in head_names(net):
            parent_name, _, child = name.rpartition(".")
            parent = net.get_submodule(parent_name)
            layer = parent.get_submodule(child)
            fresh: nn.Module
            if isinstance(layer, nn.Linear):
                fresh = nn.Linear(layer.in_features, num_classes, bias=layer.bias is not None)
            elif isinstance(layer, nn.Conv2d) and layer.kernel_size == (1, 1):
                fresh = nn.Conv2d(layer.in_channels, num_classes, 1, bias=layer.bias is not None)
            else:
                raise TypeError(
                    f"cannot replace head module {name!r} of {type(net).__name__}: expected an "
                    f"nn.Linear or a 1x1 nn.Conv2d, got {type(layer).__name__}; give the network "
                    "a reset_classifier(num_classes) method"
                )
            setattr(parent, child, fresh)
    if hasattr(net, "num_classes"):
        setattr(net, "num_classes", num_classes)  # noqa: B010 (a plain attribute, not a Module)


class FreezableBackbone(nn.Module):
    """``freeze_backbone()``, ``unfreeze_backbone()`` and ``num_features`` of a module's ``net``.

    :class:`~classic_cnns.task.ImageClassifier` has them from here, and
    :class:`UnfreezeBackbone` calls them. The batch norm layers of a frozen backbone stay in
    eval mode across ``train()``; Lightning warns "Found N module(s) in eval mode at the start
    of training" for them, as expected.

    Example:
        >>> from torch import nn
        >>> class Model(FreezableBackbone):
        ...     def __init__(self) -> None:
        ...         super().__init__()
        ...         self.net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
        >>> model = Model()
        >>> model.freeze_backbone()
        >>> model.train().net[1].training, model.backbone_frozen
        (False, True)
    """

    net: nn.Module
    # Batch norm layers that freeze_backbone() keeps in eval mode, even across train().
    _frozen_norms: list[_BatchNorm] | tuple[()] = ()
    _backbone_frozen: bool = False

    def freeze_backbone(self, train_bn: bool = False) -> None:
        """Train only the head (see :func:`freeze_backbone`).

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
        self._frozen_norms = list(freeze_backbone(self.net, train_bn=train_bn))
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
        unfreeze_backbone(self.net)

    def unfreeze(self) -> Self:
        """Train every parameter, as Lightning's ``LightningModule.unfreeze``, and unfreeze
        the backbone: its batch norm layers would otherwise stay in eval mode (see
        :meth:`train`). Returns the module, in training mode.

        Example:
            >>> from classic_cnns import ResNet
            >>> model = ResNet("resnet20")
            >>> model.freeze_backbone(); _ = model.unfreeze()
            >>> model.backbone_frozen, model.net.bn1.training
            (False, True)
        """
        self.unfreeze_backbone()
        for p in self.parameters():
            p.requires_grad = True
        return self.train()

    def configure_callbacks(self) -> list[pl.Callback]:
        """Refuse Lightning's ``BackboneFinetuning``: use :class:`UnfreezeBackbone` instead.

        That callback needs a ``backbone`` module and an optimizer built without it; here
        the optimizer holds the whole network, in named groups under one LR schedule. A
        subclass with its own ``backbone`` may use it. The other bases' callbacks follow.

        Example:
            >>> import lightning as L
            >>> from lightning.pytorch.callbacks import BackboneFinetuning
            >>> from classic_cnns import LeNet5
            >>> model = LeNet5()
            >>> model.trainer = L.Trainer(callbacks=[BackboneFinetuning()], logger=False)
            >>> model.configure_callbacks()
            Traceback (most recent call last):
            TypeError: Lightning's BackboneFinetuning needs a `backbone` module ...
        """
        callbacks = getattr(getattr(self, "_trainer", None), "callbacks", [])
        if any(isinstance(c, BackboneFinetuning) for c in callbacks) and not hasattr(
            self, "backbone"
        ):
            raise TypeError(
                "Lightning's BackboneFinetuning needs a `backbone` module and an optimizer "
                f"built without it; {type(self).__name__} has no `backbone`, and its optimizer "
                "holds the whole network (parameter groups backbone and head, under one LR "
                "schedule). Use classic_cnns.UnfreezeBackbone(after_epochs=N) instead, with "
                "the model's backbone_lr for the backbone's rate"
            )
        parent = getattr(super(), "configure_callbacks", None)  # the task's other bases'
        made = parent() if callable(parent) else []
        return list(made) if isinstance(made, Sequence) else [made]

    @property
    def num_features(self) -> int:
        """Width of the pooled features the final classifier sees (the network's pre-logits)."""
        return int(self.net.num_features)  # type: ignore[arg-type]

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

    def on_train_epoch_start(self) -> None:
        """Warn if a callback reset the frozen backbone's batch norm statistics.

        Lightning's ``StochasticWeightAveraging`` does, for its last epoch, to re-estimate
        them in training mode; frozen, they stay at mean 0 and variance 1.

        Example:
            >>> import warnings
            >>> from classic_cnns import LeNet5
            >>> model = LeNet5("lenet5_bn")
            >>> model.freeze_backbone()
            >>> with warnings.catch_warnings(record=True) as caught:
            ...     model.on_train_epoch_start()  # nothing was reset: no warning
            >>> caught
            []
        """
        reset = [m for m in self._frozen_norms if m.momentum is None and not m.num_batches_tracked]
        if reset:
            warn(
                f"a callback (StochasticWeightAveraging) reset the running statistics of "
                f"{len(reset)} batch norm layer(s) of the frozen backbone, which are not "
                "re-estimated while frozen: they now normalise with mean 0 and variance 1. "
                "Unfreeze the backbone before SWA's last epoch (UnfreezeBackbone, or "
                "unfreeze_backbone()), or freeze it with train_bn=True"
            )


class UnfreezeBackbone(BaseFinetuning):
    """Train the head alone for ``after_epochs`` epochs, then the whole network.

    At setup the model's backbone is frozen (``freeze_backbone``); at the start of epoch
    ``after_epochs`` it is unfrozen. ``ImageClassifier`` keeps frozen parameters in its
    optimizer (they have no gradient, so the optimizer skips them), so unfreezing needs no
    new parameter group and the LR schedule covers the backbone from the start, at
    ``backbone_lr``; parameters that a custom ``configure_optimizers`` left out are added
    as a new group, at the LR of the first group scaled by ``lr_scale`` (and the keys a
    schedule keeps in the first group, such as ``OneCycleLR``'s ``max_lr``, its LRs scaled;
    a schedule's per-group lists, such as ``LambdaLR``'s, get an entry for it too).

    Args:
        after_epochs: Epochs of head-only training (0 trains everything from the start).
        train_bn: Keep training the backbone's batch norm layers while it is frozen.
        lr_scale: LR of a parameter group added for parameters missing from the optimizer,
            relative to the first group's current LR (Lightning's default is 1/10).

    Example:
        >>> import lightning as L
        >>> from classic_cnns.finetune import UnfreezeBackbone
        >>> trainer = L.Trainer(max_epochs=4, callbacks=[UnfreezeBackbone(after_epochs=2)])
    """

    def __init__(
        self, after_epochs: int = 1, train_bn: bool = False, lr_scale: float = 0.1
    ) -> None:
        super().__init__()
        if not is_int(after_epochs, 0):
            raise ValueError(f"after_epochs must be an int >= 0; got {after_epochs!r}")
        check_flag("train_bn", train_bn)
        if not (is_number(lr_scale) and lr_scale > 0):
            raise ValueError(f"lr_scale must be a number > 0; got {lr_scale!r}")
        self.after_epochs = after_epochs
        self.train_bn = train_bn
        self.lr_scale = lr_scale

    @staticmethod
    def _check(pl_module: pl.LightningModule) -> None:
        if not callable(getattr(pl_module, "freeze_backbone", None)):
            raise TypeError(
                "UnfreezeBackbone needs a LightningModule with freeze_backbone() and "
                f"unfreeze_backbone() (an ImageClassifier); got {type(pl_module).__name__}"
            )

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Freeze the backbone before fitting; validating, testing or predicting leave it be.

        Lightning's ``BaseFinetuning`` freezes at every ``setup``, so a ``trainer.test(...)``
        after ``trainer.fit(...)`` would freeze the trained backbone again.
        """
        if stage == "fit":
            super().setup(trainer, pl_module, stage)

    def freeze_before_training(self, pl_module: pl.LightningModule) -> None:
        """Freeze the backbone unless training starts unfrozen (``after_epochs=0``)."""
        self._check(pl_module)
        if self.after_epochs > 0:
            pl_module.freeze_backbone(train_bn=self.train_bn)  # type: ignore[operator]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Unfreeze at once when a resumed run starts in or after epoch ``after_epochs``.

        Lightning does not call ``on_train_epoch_start`` for an epoch resumed mid-way, and
        ``setup`` has frozen the backbone again.
        """
        self.on_train_epoch_start(trainer, pl_module)

    def finetune_function(
        self, pl_module: pl.LightningModule, epoch: int, optimizer: Optimizer
    ) -> None:
        """Unfreeze at the start of epoch ``after_epochs`` or, resumed, of the run after it."""
        if epoch < self.after_epochs or not getattr(pl_module, "backbone_frozen", False):
            return
        pl_module.unfreeze_backbone()  # type: ignore[operator]
        # Identity, not value, decides whether the optimizer holds a parameter.
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        missing = [p for p in pl_module.parameters() if p.requires_grad and id(p) not in held]
        if missing:  # with the first group's schedule keys (OneCycleLR's max_lr...), LRs scaled
            first, own = optimizer.param_groups[0], {"params", "name", *optimizer.defaults}
            keys = [k for k in first if k == "lr" or k not in own]
            group = {k: first[k] * self.lr_scale if k.endswith("lr") else first[k] for k in keys}
            optimizer.add_param_group({**group, "params": missing})
        self._cover_schedules(pl_module.trainer)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Put back the groups a resumed run had added (Lightning's), and give the schedules'
        lists an entry for each before their states load (a callable object's state, as
        ``LambdaLR`` saves it, would find none)."""
        super().on_fit_start(trainer, pl_module)
        self._cover_schedules(trainer)

    def _cover_schedules(self, trainer: pl.Trainer) -> None:
        for config in trainer.lr_scheduler_configs:
            optimizer = getattr(config.scheduler, "optimizer", None)
            if optimizer is not None:
                _cover_groups(config.scheduler, len(optimizer.param_groups), self.lr_scale)


_LR_LISTS = ("base_lrs", "_last_lr", "max_lrs", "min_lrs")  # an added group's: scaled
_OTHER_LISTS = ("lr_lambdas", "base_momentums", "max_momentums")  # the first group's


def _cover_groups(scheduler: Any, groups: int, lr_scale: float) -> None:
    """Give a schedule's per-group lists an entry for each group added since it was built.

    torch's schedules keep them from their construction (``LambdaLR``'s ``lr_lambdas``,
    ``CyclicLR``'s ``max_lrs``, every ``base_lrs``), so a group added later raised
    "zip() argument 2 is shorter than argument 1" at the next step (Lightning's
    ``BackboneFinetuning`` still does). An added group follows the first group's schedule,
    its LRs scaled by ``lr_scale`` as the group's own were.
    """
    for inner in getattr(scheduler, "_schedulers", ()):  # SequentialLR, ChainedScheduler
        _cover_groups(inner, groups, lr_scale)
    for name in (*_LR_LISTS, *_OTHER_LISTS):
        values = getattr(scheduler, name, None)
        if isinstance(values, list) and 0 < len(values) < groups:
            first = values[0] * lr_scale if name in _LR_LISTS else values[0]
            values.extend([first] * (groups - len(values)))
