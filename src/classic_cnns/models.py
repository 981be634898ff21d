"""The LightningModule class of each architecture family, and the one family map.

Each class is a thin subclass of :class:`~classic_cnns.task.ImageClassifier` that names its
family and its default architecture. Its ``__init__`` is written at import, as
``dataclasses`` writes one: the task's arguments, then the options of the family's networks
(``model_info(arch).options``, each declared once, as a keyword-only argument of its network
class), keyword-only and ``None`` by default (the network's own default). A real signature,
so that LightningCLI lists and checks every flag (``--model.small_input``) and checkpoints
record every argument. :data:`FAMILIES` maps a registered model's family to its class
(:func:`family_class`): ``create_model``, ``load_model`` and the command line's
``--model resnet20`` read it.
"""

from __future__ import annotations

import inspect
import linecache
import typing
from collections.abc import Callable
from typing import Any

import docstring_parser

from classic_cnns import nets as _nets  # noqa: F401  (registers the networks it reads)
from classic_cnns.registry import ModelInfo, list_models, model_info
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
        arch: ``"lenet5"`` (tanh, average pooling, the notes' layer table), ``"lenet5_modern"``
            (ReLU, max pooling) or ``"lenet5_bn"`` (with batch normalisation).

    Example:
        >>> import torch
        >>> from classic_cnns import LeNet5
        >>> model = LeNet5(num_classes=10, in_channels=1)
        >>> model(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
    """

    family = "lenet"
    default_arch = "lenet5"


class AlexNet(ImageClassifier):
    """AlexNet (Krizhevsky, Sutskever and Hinton, 2012) in torchvision's layout.

    The network options, keyword-only, are the keyword-only arguments of
    :class:`~classic_cnns.nets.alexnet.AlexNetNet` (``model_info(arch).options``).

    Args:
        arch: ``"alexnet"``.

    Example:
        >>> import torch
        >>> from classic_cnns import AlexNet
        >>> model = AlexNet(num_classes=10, in_channels=1, small_input=True)
        >>> model(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
    """

    family = "alexnet"
    default_arch = "alexnet"


class VGG(ImageClassifier):
    """VGG (Simonyan and Zisserman, 2014): ``vgg11``-``vgg19`` and their ``_bn`` forms.

    The network options, keyword-only, are the keyword-only arguments of
    :class:`~classic_cnns.nets.vgg.VGGNet` (``model_info(arch).options``).

    Args:
        arch: ``"vgg11"``, ``"vgg13"``, ``"vgg16"``, ``"vgg19"`` or one of them + ``"_bn"``.

    Example:
        >>> import torch
        >>> from classic_cnns import VGG
        >>> model = VGG("vgg11", num_classes=10, in_channels=3, small_input=True)
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    family = "vgg"
    default_arch = "vgg16"


class NiN(ImageClassifier):
    """Network in Network (Lin, Chen and Yan, 2013): mlpconv blocks and global average pooling.

    The network options, keyword-only, are the keyword-only arguments of
    :class:`~classic_cnns.nets.nin.NiNNet` (``model_info(arch).options``).

    Args:
        arch: ``"nin"``.

    Example:
        >>> import torch
        >>> from classic_cnns import NiN
        >>> model = NiN(num_classes=10, in_channels=1)
        >>> model(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
    """

    family = "nin"
    default_arch = "nin"


class GoogLeNet(ImageClassifier):
    """GoogLeNet / Inception v1 (Szegedy et al., 2014) in torchvision's layout.

    In training, the auxiliary classifiers' losses are added with weight
    ``aux_loss_weight`` (0.3, as in the paper).

    The network options, keyword-only, are the keyword-only arguments of
    :class:`~classic_cnns.nets.googlenet.GoogLeNetNet` (``model_info(arch).options``).

    Args:
        arch: ``"googlenet"``.

    Example:
        >>> import torch
        >>> from classic_cnns import GoogLeNet
        >>> model = GoogLeNet(num_classes=10, in_channels=3, aux_logits=False, small_input=True)
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    family = "googlenet"
    default_arch = "googlenet"


class ResNet(ImageClassifier):
    """ResNet (He, Zhang, Ren and Sun, 2015): ImageNet depths 18-152 and CIFAR depths 20-110.

    The network options, keyword-only, are the keyword-only arguments of
    :class:`~classic_cnns.nets.resnet.ResNetNet` (``model_info(arch).options``).

    Args:
        arch: ``"resnet18"``, ``"resnet34"``, ``"resnet50"``, ``"resnet101"``, ``"resnet152"``
            or a CIFAR network ``"resnet20"``, ``"resnet32"``, ``"resnet44"``, ``"resnet56"``,
            ``"resnet110"``.

    Example:
        >>> import torch
        >>> from classic_cnns import ResNet
        >>> model = ResNet("resnet20", num_classes=10, in_channels=1)
        >>> model(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 10])
    """

    family = "resnet"
    default_arch = "resnet18"


class DenseNet(ImageClassifier):
    """DenseNet (Huang, Liu, van der Maaten and Weinberger, 2016).

    The network options, keyword-only, are the keyword-only arguments of
    :class:`~classic_cnns.nets.densenet.DenseNetNet` (``model_info(arch).options``).

    Args:
        arch: ``"densenet121"``, ``"densenet161"``, ``"densenet169"``, ``"densenet201"`` or the
            CIFAR ``"densenet_bc_100"`` (k=12).

    Example:
        >>> import torch
        >>> from classic_cnns import DenseNet
        >>> model = DenseNet("densenet_bc_100", num_classes=10, in_channels=3)
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    family = "densenet"
    default_arch = "densenet121"


def _family_init(cls: type[ImageClassifier]) -> Callable[..., None]:
    # The family's __init__, written out as dataclasses writes one: the task's arguments
    # (arch defaulting to the family's), then its networks' options, keyword-only, None
    # by default (the network's own default). A real signature, so that LightningCLI lists
    # and checks every argument and Lightning's save_hyperparameters records them; its
    # super().__init__ hands them all to ImageClassifier.
    task = [
        p
        for p in inspect.signature(ImageClassifier.__init__).parameters.values()
        if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"
    ]
    # register_model refuses options named like a task argument: none shadows one.
    options = _family_options(cls.family)  # type: ignore[arg-type]
    names = [p.name for p in task]
    keyword_only = f", *, {', '.join(options)}" if options else ""
    source = (
        "def __create_fn__(__class__):\n"
        f"    def __init__(self, {', '.join(names)}{keyword_only}):\n"
        f"        super().__init__({', '.join(f'{n}={n}' for n in [*names, *options])})\n"
        "    return __init__\n"
    )
    # Kept in linecache, as attrs does, so that inspect.getsource (which torch.jit.script
    # calls on __init__) finds it.
    filename = f"<generated {cls.__module__}.{cls.__qualname__}.__init__>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {}
    exec(compile(source, filename, "exec"), {}, namespace)  # identifiers only
    init = namespace["__create_fn__"](cls)
    hints = typing.get_type_hints(ImageClassifier.__init__)
    init.__defaults__ = (cls.default_arch, *(p.default for p in task[1:]))
    init.__kwdefaults__ = dict.fromkeys(options) or None
    init.__annotations__ = {
        **{n: hints[n] for n in names},
        **{n: p.annotation | None for n, p in options.items()},
        "return": None,
    }
    init.__module__, init.__qualname__ = cls.__module__, f"{cls.__qualname__}.__init__"
    init.__doc__ = _options_doc(cls.family, options)  # type: ignore[arg-type]
    return init  # type: ignore[no-any-return]


def _family_options(family: str) -> dict[str, inspect.Parameter]:
    # The options of the family's registered networks, in the order they first appear.
    options: dict[str, inspect.Parameter] = {}
    for info in _members(family):
        for option, parameter in info.options.items():
            options.setdefault(option, parameter)
    return options


def _options_doc(family: str, options: dict[str, inspect.Parameter]) -> str:
    # "Args:" of the network options, from the network classes' docstrings.
    described: dict[str, str] = {}
    for info in _members(family):
        for param in docstring_parser.parse(getattr(info.network, "__doc__", None) or "").params:
            described.setdefault(param.arg_name, param.description or "")
    lines = ["Build the model: the task's arguments, then the network options."]
    lines += ["", "Args:"] if options else []
    for option in options:
        text = described.get(option, "").replace("\n", "\n        ")
        lines.append(f"    {option}: {text} ``None``: the network's default.")
    return "\n".join(lines)


def _members(family: str) -> list[ModelInfo]:
    return [info for info in map(model_info, list_models()) if info.family == family]


FAMILIES: dict[str, type[ImageClassifier]] = {
    cls.family: cls  # type: ignore[misc]
    for cls in (LeNet5, AlexNet, VGG, NiN, GoogLeNet, ResNet, DenseNet)
}
"""Family name (``ModelInfo.family``) to its LightningModule class.

Example:
    >>> from classic_cnns import model_info
    >>> from classic_cnns.models import FAMILIES
    >>> sorted(FAMILIES)
    ['alexnet', 'densenet', 'googlenet', 'lenet', 'nin', 'resnet', 'vgg']
    >>> FAMILIES[model_info("resnet20").family].__name__
    'ResNet'
"""
for _cls in FAMILIES.values():
    _cls.__init__ = _family_init(_cls)  # type: ignore[method-assign]


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
