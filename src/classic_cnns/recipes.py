"""How each model trains from scratch: optimizer, schedule, batch size, epochs, image size.

One training setting does not suit every classic network. AdamW at 3e-3 with a one-cycle
schedule trains the networks with batch normalisation (ResNet, DenseNet, GoogLeNet, the
``_bn`` VGGs) well, but AlexNet and the plain VGGs, deep stacks of ReLU layers without
normalisation, stay at chance with it: every prediction becomes one class within the first
epoch. They take AdamW at a thirtieth of that rate (1e-4), which starts learning within a
few dozen steps where SGD at 0.01, their papers' setting, had not yet moved (figures in the
source). LeNet-5 trains with SGD and Nesterov momentum at 0.1, which the MNIST-10k figures
in the README were measured with.

A :class:`Recipe` is what ``ImageClassifier`` and the datamodules fall back on when an
argument is not given: the task's optimizer, ``lr``, ``weight_decay``, ``momentum``,
``scheduler`` and ``label_smoothing``; the datamodules' ``batch_size`` and, for datasets of
at most 32 pixels (MNIST, Fashion-MNIST, CIFAR, Digits), the image size; and the command
line's ``--trainer.max_epochs``. Like timm's ``pretrained_cfg``, it is data next to the
model, and ``model_info(name).recipe`` shows it.

The small-data image sizes follow *Dive into Deep Learning*, which trains these networks
on Fashion-MNIST resized to 224 pixels (AlexNet, VGG) or 96 pixels (GoogLeNet, the ImageNet
ResNets and DenseNets); LeNet-5, NiN (ours is the paper's CIFAR network) and the CIFAR
networks take 32 pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, get_args

from classic_cnns._checks import is_int, is_number

__all__ = ["OptimizerName", "Recipe", "SchedulerName", "default_recipe"]

OptimizerName = Literal["sgd", "adam", "adamw", "rmsprop"]
"""The optimizers a :class:`Recipe` (and the task's ``optimizer``) can name.

``"sgd"`` is SGD with Nesterov momentum (plain SGD with ``momentum=0``); the others are
``torch.optim``'s Adam, AdamW and RMSprop.

Example:
    >>> from classic_cnns.recipes import OptimizerName, Recipe
    >>> name: OptimizerName = "sgd"
    >>> Recipe(optimizer=name, lr=0.1).describe()
    'sgd 0.1 onecycle, wd 0.0005, batch 128, 10 epochs'
"""

SchedulerName = Literal["cosine", "onecycle", "step", "none"]
"""The learning-rate schedules a :class:`Recipe` (and the task's ``scheduler``) can name.

``"cosine"`` decays to 0, ``"onecycle"`` warms up then anneals, ``"step"`` divides by 10 at
50% and 75% of the run, and ``"none"`` keeps the rate constant; each steps once per
optimizer step.

Example:
    >>> from classic_cnns.recipes import Recipe, SchedulerName
    >>> name: SchedulerName = "step"
    >>> Recipe(scheduler=name).scheduler
    'step'
"""


@dataclass(frozen=True)
class Recipe:
    """A model's default training setting (see the module docstring for who reads what).

    Attributes:
        optimizer: ``"sgd"`` (with Nesterov momentum), ``"adam"``, ``"adamw"`` or ``"rmsprop"``.
        lr: Peak learning rate.
        weight_decay: Decoupled weight decay with ``"adamw"``, an L2 penalty with the others;
            on weights only (not on biases or norm layers).
        momentum: Momentum of SGD and RMSprop (``"onecycle"`` cycles it from 0.95 to 0.85).
        scheduler: ``"onecycle"``, ``"cosine"``, ``"step"`` or ``"none"``.
        label_smoothing: Cross-entropy label smoothing.
        batch_size: Images per batch.
        epochs: Training epochs (``--trainer.max_epochs`` on the command line).
        small_image_size: Image size for datasets of at most 32 pixels (Digits' 8 too);
            ``None``: the model's own input size.

    Raises:
        ValueError: for a field out of its range (as the task's arguments are checked): an
            optimizer or scheduler not named above, ``lr`` not a positive finite number,
            ``weight_decay`` not >= 0, ``momentum`` or ``label_smoothing`` not in [0, 1),
            ``batch_size`` or ``epochs`` not an int >= 1, ``small_image_size`` neither
            ``None`` nor an int >= 1. The message names the field and what it got.

    Example:
        >>> from classic_cnns import model_info
        >>> recipe = model_info("alexnet").recipe
        >>> recipe.optimizer, recipe.lr, recipe.small_image_size
        ('adamw', 0.0001, 224)
        >>> Recipe(batch_size=0)
        Traceback (most recent call last):
        ...
        ValueError: Recipe.batch_size must be an int >= 1; got 0
    """

    optimizer: OptimizerName = "adamw"
    lr: float = 3e-3
    weight_decay: float = 5e-4
    momentum: float = 0.9
    scheduler: SchedulerName = "onecycle"
    label_smoothing: float = 0.0
    batch_size: int = 128
    epochs: int = 10
    small_image_size: int | None = None

    def __post_init__(self) -> None:
        # Refuse a bad field here, where the recipe is written: used, it would fail far away
        # (a batch size of 0 in the data loader, an image size of 0 as a missing one).
        for name, names in (("optimizer", OptimizerName), ("scheduler", SchedulerName)):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in get_args(names):
                raise ValueError(f"Recipe.{name} must be one of {get_args(names)}; got {value!r}")
        lr, decay, size = self.lr, self.weight_decay, self.small_image_size
        moment, smooth = self.momentum, self.label_smoothing
        for name, value, ok, expected in (
            ("lr", lr, is_number(lr) and lr > 0, "a positive finite number"),
            ("weight_decay", decay, is_number(decay) and decay >= 0, "a finite number >= 0"),
            ("momentum", moment, is_number(moment) and 0 <= moment < 1, "in [0, 1)"),
            ("label_smoothing", smooth, is_number(smooth) and 0 <= smooth < 1, "in [0, 1)"),
            ("batch_size", self.batch_size, is_int(self.batch_size, 1), "an int >= 1"),
            ("epochs", self.epochs, is_int(self.epochs, 1), "an int >= 1"),
            ("small_image_size", size, size is None or is_int(size, 1), "None or an int >= 1"),
        ):
            if not ok:
                raise ValueError(f"Recipe.{name} must be {expected}; got {value!r}")

    def describe(self) -> str:
        """A short line for tables: optimizer, lr, schedule, batch, epochs, small-data size.

        Example:
            >>> Recipe().describe()
            'adamw 0.003 onecycle, wd 0.0005, batch 128, 10 epochs'
        """
        parts = [
            f"{self.optimizer} {self.lr:g} {self.scheduler}",
            f"wd {self.weight_decay:g}",
            f"batch {self.batch_size}",
            f"{self.epochs} epochs",
        ]
        if self.label_smoothing:
            parts.insert(2, f"smoothing {self.label_smoothing:g}")
        if self.small_image_size is not None:
            parts.append(f"{self.small_image_size} px for small images")
        return ", ".join(parts)


# AdamW at 1e-4 for the deep ReLU stacks without normalisation. Measured on 2,000 real
# Fashion-MNIST images at 32 px (small_input), 2 epochs of batch 128, one thread: AlexNet
# reached 53.0% test accuracy with AdamW 1e-4, 49.4% with 1e-3, 10.4% with SGD 0.01 (momentum
# 0.9, the papers' and torchvision's setting, which needs many more steps to start) and 10.3%
# with SGD 0.03; VGG-11 25.4% with AdamW 1e-4, 20.9% with 1e-3, 9.0% with SGD 0.01.
_PLAIN_DEEP = Recipe(optimizer="adamw", lr=1e-4, weight_decay=5e-4, batch_size=128)

_FAMILIES: dict[str, Recipe] = {
    "lenet": Recipe(optimizer="sgd", lr=0.1, batch_size=128, epochs=12, small_image_size=32),
    "alexnet": replace(_PLAIN_DEEP, small_image_size=224),
    "vgg": replace(_PLAIN_DEEP, small_image_size=224),
    # Our NiN is the paper's CIFAR network (no stride-4 stem): at 224 px it would cost 49
    # times its 32 px work for nothing the small images hold.
    "nin": Recipe(small_image_size=32),
    "googlenet": Recipe(small_image_size=96),
    "resnet": Recipe(small_image_size=96),
    "densenet": Recipe(small_image_size=96),
}

_MODELS: dict[str, Recipe] = {
    # With batch normalisation the VGGs train like the other BN networks.
    **{f"vgg{d}_bn": Recipe(small_image_size=224) for d in (11, 13, 16, 19)},
    # The CIFAR ResNets: the paper's SGD at 0.1, x0.1 at 50% and 75% of the run (Nesterov,
    # and ResNet-110 without the paper's warm-up at 0.01: see the README's recipe table).
    **{
        f"resnet{d}": Recipe(
            optimizer="sgd", lr=0.1, weight_decay=1e-4, scheduler="step", small_image_size=32
        )
        for d in (20, 32, 44, 56, 110)
    },
    "densenet_bc_100": Recipe(
        optimizer="sgd",
        lr=0.1,
        weight_decay=1e-4,
        scheduler="step",
        batch_size=64,
        small_image_size=32,
    ),
}


def default_recipe(name: str, family: str) -> Recipe:
    """The built-in recipe of a model: its own, else its family's, else the generic one.

    Example:
        >>> default_recipe("resnet20", "resnet").scheduler
        'step'
        >>> default_recipe("my_net", "my_family") == Recipe()
        True
    """
    return _MODELS.get(name) or _FAMILIES.get(family) or Recipe()
