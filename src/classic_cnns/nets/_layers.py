"""Layers shared by the network files: torchvision's bias-free convolutions, the final classifier.

ResNet and DenseNet use bias-free convolutions because a batch norm follows (ResNet) or
precedes the next one (DenseNet) and its shift makes a bias redundant. The helpers are
torchvision's ``conv3x3``/``conv1x1`` so state dicts stay interchangeable.

Every network builds its final classifier with :func:`linear_head`, which is also what
``reset_classifier(num_classes)`` calls: ``num_classes=0`` gives ``nn.Identity``, so the
network returns the pooled features the classifier would have seen (timm's rule). Inside
:func:`same_placement` the new head joins the old one's device and dtype.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Literal, get_args

from torch import Tensor, nn

from classic_cnns._checks import is_int

__all__ = [
    "ClassifierNet",
    "WeightInit",
    "check_counts",
    "check_in_channels",
    "check_num_classes",
    "conv1x1",
]
__all__ += ["conv3x3"]
__all__ += ["init_weights"]
__all__ += ["linear_head", "same_placement", "small_stem_only"]

WeightInit = Literal["default", "xavier"]


class ClassifierNet(nn.Module):
    """For type checkers: ``model.net`` as every built-in network has it, with timm's
    ``num_features``, ``forward_features``, ``forward_head`` and ``reset_classifier``.

    The networks do not derive from it (a network of one's own need not have these);
    ``ImageClassifier.net`` is declared as one so that ``model.net.reset_classifier(0)``
    type-checks.

    Example:
        >>> import torch
        >>> from classic_cnns import create_model
        >>> net = create_model("lenet5").net
        >>> net.forward_head(net.forward_features(torch.zeros(1, 1, 32, 32))).shape
        torch.Size([1, 10])
    """

    num_features: int

    def forward_features(self, x: Tensor) -> Tensor:
        """The unpooled feature maps ``(N, C, H, W)`` (see the networks' own).

        Example:
            >>> import torch
            >>> from classic_cnns import create_model
            >>> create_model("resnet20").net.forward_features(torch.zeros(1, 3, 32, 32)).shape
            torch.Size([1, 64, 8, 8])
        """
        raise NotImplementedError

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Pool and classify the maps (``pre_logits``: the features the classifier sees).

        Example:
            >>> import torch
            >>> from classic_cnns import create_model
            >>> create_model("resnet20").net.forward_head(torch.zeros(1, 64, 8, 8)).shape
            torch.Size([1, 10])
        """
        raise NotImplementedError

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh classifier for ``num_classes`` classes (0: none, the pooled features out).

        Example:
            >>> from classic_cnns import create_model
            >>> net = create_model("resnet20").net
            >>> net.reset_classifier(5); net.fc.out_features
            5
        """
        raise NotImplementedError


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """A bias-free 3x3 convolution with padding 1: keeps the size at stride 1, halves it at 2.

    Example:
        >>> import torch
        >>> conv3x3(3, 16, stride=2)(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 16, 16, 16])
    """
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """A bias-free 1x1 convolution: mixes channels (and subsamples at stride 2).

    Example:
        >>> import torch
        >>> conv1x1(64, 256)(torch.zeros(1, 64, 8, 8)).shape
        torch.Size([1, 256, 8, 8])
    """
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


def check_num_classes(num_classes: object) -> int:
    """Return ``num_classes`` if it is an int >= 0 (0: no classifier); raise otherwise.

    Raises:
        ValueError: for a negative number, a bool or anything but an int.

    Example:
        >>> check_num_classes(0)
        0
    """
    if not is_int(num_classes, 0):
        raise ValueError(
            f"num_classes must be an int >= 0 (0 removes the classifier); got {num_classes!r}"
        )
    return num_classes


def check_counts(**counts: object) -> None:
    """Refuse a width or depth argument that is not an int >= 1 (a list: each of its items).

    ``nn.Conv2d(16, 0)`` builds, and fails only in ``forward``; a stage of 0 or -1 blocks
    silently built one.

    Raises:
        ValueError: naming the argument and what it got.

    Example:
        >>> check_counts(growth_rate=12, block_config=[16, 16, 16])
        >>> check_counts(layers=[2, 2, 2, 0])
        Traceback (most recent call last):
        ...
        ValueError: layers must be ints >= 1; got [2, 2, 2, 0]
    """
    for name, value in counts.items():
        if isinstance(value, list | tuple):
            if not value or not all(is_int(v, 1) for v in value):
                raise ValueError(f"{name} must be ints >= 1; got {value!r}")
        elif not is_int(value, 1):
            raise ValueError(f"{name} must be an int >= 1; got {value!r}")


def check_in_channels(in_channels: object) -> int:
    """Return ``in_channels`` if it is an int >= 1; raise otherwise.

    Every network checks it first: ``nn.Conv2d(0, 64)`` builds without complaint, and a
    string only fails deep inside torch.

    Raises:
        ValueError: for a number below 1, a bool or anything but an int.

    Example:
        >>> check_in_channels(3)
        3
        >>> check_in_channels("3")
        Traceback (most recent call last):
        ...
        ValueError: in_channels must be an int >= 1; got '3'
    """
    if not is_int(in_channels, 1):
        raise ValueError(f"in_channels must be an int >= 1; got {in_channels!r}")
    return in_channels


def linear_head(
    in_features: int, num_classes: int, init: Callable[[nn.Linear], object] | None = None
) -> nn.Module:
    """A fresh final classifier: ``nn.Linear(in_features, num_classes)``, or identity for 0.

    Args:
        in_features: Width of the pooled features the classifier sees.
        num_classes: Output classes; 0 gives ``nn.Identity`` (a headless network).
        init: Initialisation applied to the new linear layer (PyTorch's default if ``None``).

    Raises:
        ValueError: if ``num_classes`` is not an int >= 0.

    Example:
        >>> linear_head(512, 10)
        Linear(in_features=512, out_features=10, bias=True)
        >>> linear_head(512, 0)
        Identity()
    """
    if check_num_classes(num_classes) == 0:
        return nn.Identity()
    layer = nn.Linear(in_features, num_classes)
    if init is not None:
        init(layer)
    return layer


@contextlib.contextmanager
def same_placement(net: nn.Module) -> Iterator[None]:
    """Put the layers made inside on the device and dtype of the ones they replace.

    ``reset_classifier`` builds its new head as PyTorch makes layers, in float32 on the CPU;
    in a network moved with ``.to("cuda")`` or ``.bfloat16()`` the first forward then failed.
    The parameters and buffers new after the block join the first replaced parameter (the
    old head's), or the network's first one if none was replaced; integer buffers keep their
    dtype, as with ``Module.to``, and a new tensor two modules share stays shared.

    Example:
        >>> import torch
        >>> net = nn.Sequential(nn.Linear(4, 4)).double()
        >>> with same_placement(net):
        ...     net[0] = nn.Linear(4, 2)
        >>> net[0].weight.dtype
        torch.float64
    """
    before = {id(p): p for p in net.parameters()}
    kept = {id(b) for b in net.buffers()}
    yield
    now = {id(p) for p in net.parameters()}
    old = [p for i, p in before.items() if i not in now] or list(before.values())
    if not old:
        return
    device, dtype = old[0].device, old[0].dtype
    moved: dict[int, Tensor] = {}

    def move(t: Tensor) -> Tensor:
        if id(t) not in moved:
            to = t.detach().to(device, dtype if t.is_floating_point() else None)
            moved[id(t)] = nn.Parameter(to, t.requires_grad) if isinstance(t, nn.Parameter) else to
        return moved[id(t)]

    def placed(t: Tensor) -> bool:  # as by an inner same_placement (a nested reset)
        return t.device == device and (t.dtype == dtype or not t.is_floating_point())

    for module in net.modules():
        for table, old_ids in ((module._parameters, before), (module._buffers, kept)):
            for key, t in table.items():
                if t is not None and id(t) not in old_ids and not placed(t):
                    table[key] = move(t)  # type: ignore[assignment]


def small_stem_only(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """A CIFAR network's options without ``small_input``, which may only be ``True``.

    The CIFAR networks (``resnet20``, ``densenet_bc_100``, ...) share their family's options,
    ``small_input`` among them; their stem is always the paper's small one.

    Raises:
        ValueError: for ``small_input`` other than ``True``.

    Example:
        >>> small_stem_only("resnet20", {"small_input": True, "zero_init_residual": True})
        {'zero_init_residual': True}
        >>> small_stem_only("resnet20", {"small_input": False})
        Traceback (most recent call last):
        ...
        ValueError: resnet20 is a CIFAR network, whose stem is always the small one; ...
    """
    options = dict(options)
    small_input = options.pop("small_input", True)
    if small_input is not True:
        raise ValueError(
            f"{name} is a CIFAR network, whose stem is always the small one; small_input "
            f"can only be True, got {small_input!r}"
        )
    return options


def init_weights(net: nn.Module, scheme: WeightInit) -> nn.Module:
    """Initialise a network's convolution and linear weights by ``scheme``, in place.

    ``"default"`` keeps the network's own initialisation, as its module docstring says:
    torchvision's scheme for the families torchvision has (AlexNet's being PyTorch's
    default), NiN's He and Gaussian draws, and for LeNet-5, which torchvision lacks,
    PyTorch's default, uniform in ±1/sqrt(fan_in), not its paper's ±2.4/fan_in.
    ``"xavier"`` draws the weight of every ``nn.Conv2d`` and ``nn.Linear`` from Glorot and
    Bengio's uniform distribution and leaves biases and norm layers as they are, as *Dive
    into Deep Learning* does to each network it trains on Fashion-MNIST (its ``train_ch6``
    applies ``nn.init.xavier_uniform_``).

    Raises:
        ValueError: for another ``scheme``.

    Example:
        >>> layer = init_weights(nn.Sequential(nn.Linear(300, 100)), "xavier")[0]
        >>> bound = (6 / (300 + 100)) ** 0.5
        >>> bool(layer.weight.abs().max() <= bound), bool(layer.weight.abs().max() > bound / 2)
        (True, True)
    """
    if scheme not in get_args(WeightInit):
        raise ValueError(f"weight_init must be one of {get_args(WeightInit)}; got {scheme!r}")
    if scheme == "xavier":
        for module in net.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.xavier_uniform_(module.weight)
    return net
