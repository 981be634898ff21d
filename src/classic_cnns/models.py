"""The LightningModule class of each architecture family, and the one family map.

Each class is a thin subclass of :class:`~classic_cnns.task.ImageClassifier`: it names
its family, picks the default architecture and declares the family's own network
arguments, typed, so that LightningCLI lists and checks them (``--model.small_input``) and
checkpoints record them. ``None`` leaves the network's own default; the arguments reach
the network builder unchanged. :data:`FAMILIES` maps a registered model's family to its
class (:func:`family_class`): ``create_model``, ``load_model`` and the command line's
``--model resnet20`` read it.
"""

from __future__ import annotations

import inspect
from typing import Any

from classic_cnns.task import ImageClassifier

__all__ = [
    "FAMILIES",
    "VGG",
    "AlexNet",
    "DenseNet",
    "GoogLeNet",
    "LeNet5",
    "NiN",
    "ResNet",
    "family_class",
]


class LeNet5(ImageClassifier):
    """LeNet-5 (LeCun et al., 1998) as a LightningModule.

    Args:
        arch: ``"lenet5"`` (tanh, average pooling, the paper's table), ``"lenet5_modern"``
            (ReLU, max pooling) or ``"lenet5_bn"`` (with batch normalisation).
        num_classes: Number of classes.
        in_channels: Input channels.
        **kwargs: Training arguments of :class:`~classic_cnns.task.ImageClassifier`.

    Example:
        >>> import torch
        >>> from classic_cnns import LeNet5
        >>> model = LeNet5(num_classes=10, in_channels=1)
        >>> model(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
    """

    family = "lenet"

    def __init__(
        self, arch: str = "lenet5", num_classes: int = 10, in_channels: int = 1, **kwargs: Any
    ) -> None:
        super().__init__(arch=arch, num_classes=num_classes, in_channels=in_channels, **kwargs)


class AlexNet(ImageClassifier):
    """AlexNet (Krizhevsky, Sutskever and Hinton, 2012) in torchvision's layout.

    Args:
        arch: ``"alexnet"``.
        num_classes: Number of classes.
        in_channels: Input channels.
        small_input: Replace the 11x11/4 stem with one for 28-32 pixel images.
        dropout: Dropout before the fully connected layers (default 0.5).
        **kwargs: Training arguments of :class:`~classic_cnns.task.ImageClassifier`.

    Example:
        >>> import torch
        >>> from classic_cnns import AlexNet
        >>> model = AlexNet(num_classes=10, in_channels=1, small_input=True)
        >>> model(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
    """

    family = "alexnet"

    def __init__(
        self,
        arch: str = "alexnet",
        num_classes: int | None = None,
        in_channels: int | None = None,
        small_input: bool | None = None,
        dropout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(arch=arch, num_classes=num_classes, in_channels=in_channels, **kwargs)


class VGG(ImageClassifier):
    """VGG (Simonyan and Zisserman, 2014): ``vgg11``-``vgg19`` and their ``_bn`` forms.

    Args:
        arch: ``"vgg11"``, ``"vgg13"``, ``"vgg16"``, ``"vgg19"`` or one of them + ``"_bn"``.
        num_classes: Number of classes.
        in_channels: Input channels.
        small_input: Use a classifier sized for 32-pixel images (CIFAR-style).
        dropout: Dropout in the classifier (default 0.5).
        **kwargs: Training arguments of :class:`~classic_cnns.task.ImageClassifier`.

    Example:
        >>> import torch
        >>> from classic_cnns import VGG
        >>> model = VGG("vgg11", num_classes=10, in_channels=3, small_input=True)
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    family = "vgg"

    def __init__(
        self,
        arch: str = "vgg16",
        num_classes: int | None = None,
        in_channels: int | None = None,
        small_input: bool | None = None,
        dropout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(arch=arch, num_classes=num_classes, in_channels=in_channels, **kwargs)


class NiN(ImageClassifier):
    """Network in Network (Lin, Chen and Yan, 2013): mlpconv blocks and global average pooling.

    Args:
        arch: ``"nin"``.
        num_classes: Number of classes.
        in_channels: Input channels.
        dropout: Dropout between mlpconv blocks (default 0.5).
        final_relu: ReLU on the class maps, as in the authors' Caffe model (default
            ``False``: with it the class maps die early in training; see
            :mod:`classic_cnns.nets.nin`).
        **kwargs: Training arguments of :class:`~classic_cnns.task.ImageClassifier`.

    Example:
        >>> import torch
        >>> from classic_cnns import NiN
        >>> model = NiN(num_classes=10, in_channels=1)
        >>> model(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
    """

    family = "nin"

    def __init__(
        self,
        arch: str = "nin",
        num_classes: int | None = None,
        in_channels: int | None = None,
        dropout: float | None = None,
        final_relu: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(arch=arch, num_classes=num_classes, in_channels=in_channels, **kwargs)


class GoogLeNet(ImageClassifier):
    """GoogLeNet / Inception v1 (Szegedy et al., 2014) in torchvision's layout.

    In training, the auxiliary classifiers' losses are added with weight
    ``aux_loss_weight`` (0.3, as in the paper).

    Args:
        arch: ``"googlenet"``.
        num_classes: Number of classes.
        in_channels: Input channels.
        aux_logits: Build the two auxiliary classifiers (default ``True``).
        small_input: Replace the stride-4 stem with one for 28-32 pixel images.
        dropout: Dropout before the classifier (default 0.2).
        **kwargs: Training arguments of :class:`~classic_cnns.task.ImageClassifier`.

    Example:
        >>> import torch
        >>> from classic_cnns import GoogLeNet
        >>> model = GoogLeNet(num_classes=10, in_channels=3, aux_logits=False, small_input=True)
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    family = "googlenet"

    def __init__(
        self,
        arch: str = "googlenet",
        num_classes: int | None = None,
        in_channels: int | None = None,
        aux_logits: bool | None = None,
        small_input: bool | None = None,
        dropout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(arch=arch, num_classes=num_classes, in_channels=in_channels, **kwargs)


class ResNet(ImageClassifier):
    """ResNet (He, Zhang, Ren and Sun, 2015): ImageNet depths 18-152 and CIFAR depths 20-110.

    Args:
        arch: ``"resnet18"``, ``"resnet34"``, ``"resnet50"``, ``"resnet101"``, ``"resnet152"``
            or a CIFAR network ``"resnet20"``, ``"resnet32"``, ``"resnet44"``, ``"resnet56"``,
            ``"resnet110"``.
        num_classes: Number of classes.
        in_channels: Input channels.
        zero_init_residual: Start each residual branch's last batch norm at zero.
        small_input: ImageNet depths only: a 3x3 stride-1 stem without max pooling.
        **kwargs: Training arguments of :class:`~classic_cnns.task.ImageClassifier`.

    Example:
        >>> import torch
        >>> from classic_cnns import ResNet
        >>> model = ResNet("resnet20", num_classes=10, in_channels=1)
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    family = "resnet"

    def __init__(
        self,
        arch: str = "resnet18",
        num_classes: int | None = None,
        in_channels: int | None = None,
        zero_init_residual: bool | None = None,
        small_input: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(arch=arch, num_classes=num_classes, in_channels=in_channels, **kwargs)


class DenseNet(ImageClassifier):
    """DenseNet (Huang, Liu, van der Maaten and Weinberger, 2016).

    Args:
        arch: ``"densenet121"``, ``"densenet161"``, ``"densenet169"``, ``"densenet201"`` or the
            CIFAR ``"densenet_bc_100"`` (k=12).
        num_classes: Number of classes.
        in_channels: Input channels.
        small_input: ImageNet depths only: a 3x3 stride-1 stem without max pooling.
        memory_efficient: Recompute each dense layer's bottleneck in the backward pass
            instead of storing it: much less activation memory, same results (default
            ``False``; see :mod:`classic_cnns.nets.densenet`).
        **kwargs: Training arguments of :class:`~classic_cnns.task.ImageClassifier`.

    Example:
        >>> import torch
        >>> from classic_cnns import DenseNet
        >>> model = DenseNet("densenet_bc_100", num_classes=10, in_channels=3)
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    family = "densenet"

    def __init__(
        self,
        arch: str = "densenet121",
        num_classes: int | None = None,
        in_channels: int | None = None,
        small_input: bool | None = None,
        memory_efficient: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(arch=arch, num_classes=num_classes, in_channels=in_channels, **kwargs)


def _show_training_arguments(cls: type[ImageClassifier]) -> None:
    # help(ResNet) and inspect.signature(ResNet) list the training arguments that **kwargs
    # passes to ImageClassifier (lr, optimizer, loss, ...), keyword-only, after the family's
    # own. On the class, not on __init__: Lightning's save_hyperparameters reads __init__'s
    # own signature against the frame's local variables.
    init = cls.__init__
    own = [
        p
        for p in inspect.signature(init).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    names = {p.name for p in own}
    training = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in inspect.signature(ImageClassifier.__init__).parameters.values()
        if p.name not in names and p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]
    own = [p for p in own if p.name != "self"]
    cls.__signature__ = inspect.Signature([*own, *training])  # type: ignore[attr-defined]


FAMILIES: dict[str, type[ImageClassifier]] = {
    cls.family: cls  # type: ignore[misc]
    for cls in (LeNet5, AlexNet, VGG, NiN, GoogLeNet, ResNet, DenseNet)
}
"""Family name (``ModelInfo.family``) to its LightningModule class."""
for _cls in FAMILIES.values():
    _show_training_arguments(_cls)


def family_class(family: str) -> type[ImageClassifier]:
    """The LightningModule class of a family; the generic ``ImageClassifier`` for others.

    Example:
        >>> from classic_cnns import model_info
        >>> from classic_cnns.models import family_class
        >>> family_class(model_info("resnet20").family).__name__
        'ResNet'
        >>> family_class("my_family").__name__
        'ImageClassifier'
    """
    return FAMILIES.get(family, ImageClassifier)
