"""ResNet (He, Zhang, Ren and Sun, 2015): residual learning, for ImageNet and for CIFAR.

Paper: "Deep Residual Learning for Image Recognition", https://arxiv.org/abs/1512.03385.

The ImageNet networks (``resnet18`` to ``resnet152``) follow torchvision's layout
(``conv1``, ``bn1``, ``relu``, ``maxpool``, ``layer1``-``layer4``, ``avgpool``, ``fc``),
initialisation and parameter names, so torchvision state dicts load with ``strict=True``.
Like torchvision, the bottleneck puts its stride on the 3x3 convolution ("ResNet v1.5"),
where the paper strides the first 1x1; shapes and parameter counts are the same.

The CIFAR networks (``resnet20`` to ``resnet110``) are the paper's section 4.2: a 3x3
16-channel stem, three stages of ``n`` basic blocks with 16, 32 and 64 channels
(depth ``6n + 2``) and option A shortcuts, which subsample and zero-pad the identity and
so add no parameters (0.27M parameters for ResNet-20 up to 1.7M for ResNet-110).

Example:
    >>> import torch
    >>> from classic_cnns.nets.resnet import resnet20
    >>> net = resnet20(num_classes=10)
    >>> sum(p.numel() for p in net.parameters())
    269722
    >>> net.eval()(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from classic_cnns._checks import check_flag
from classic_cnns.nets._layers import (
    check_counts,
    check_in_channels,
    conv1x1,
    conv3x3,
    linear_head,
    same_placement,
    small_stem_only,
)
from classic_cnns.registry import register_model

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "PadShortcut",
    "ResNetNet",
    "resnet18",
    "resnet20",
    "resnet32",
    "resnet34",
    "resnet44",
    "resnet50",
    "resnet56",
    "resnet101",
    "resnet110",
    "resnet152",
]

_PAPER = "Deep Residual Learning for Image Recognition"
_URL = "https://arxiv.org/abs/1512.03385"


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a shortcut: the block of ResNet-18/34 and the CIFAR networks.

    Args:
        in_channels: Input channels.
        planes: Channels of both convolutions (the output has ``planes * expansion``).
        stride: Stride of the first convolution.
        downsample: Shortcut that matches the input to the output shape; ``None`` for identity.

    Example:
        >>> import torch
        >>> BasicBlock(64, 64)(torch.zeros(1, 64, 8, 8)).shape
        torch.Size([1, 64, 8, 8])
    """

    expansion: int = 1

    def __init__(
        self, in_channels: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        """ReLU of the residual branch plus the shortcut: ``(N, planes, H', W')``.

        H' and W' are ``ceil(H / stride)`` and ``ceil(W / stride)``; a block that changes the
        shape needs a ``downsample`` that matches it.

        Example:
            >>> import torch
            >>> block = BasicBlock(16, 32, stride=2, downsample=PadShortcut(16, 32, stride=2))
            >>> block(torch.zeros(1, 16, 8, 8)).shape
            torch.Size([1, 32, 4, 4])
        """
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) and a shortcut: the block of ResNet-50/101/152.

    The stride sits on the 3x3 convolution as in torchvision (v1.5), not on the first 1x1.

    Args:
        in_channels: Input channels.
        planes: Channels of the inner convolutions (the output has ``planes * expansion``).
        stride: Stride of the 3x3 convolution.
        downsample: Shortcut that matches the input to the output shape; ``None`` for identity.

    Example:
        >>> import torch
        >>> Bottleneck(256, 64)(torch.zeros(1, 256, 8, 8)).shape
        torch.Size([1, 256, 8, 8])
    """

    expansion: int = 4

    def __init__(
        self, in_channels: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = conv1x1(in_channels, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        """ReLU of the residual branch plus the shortcut: ``(N, 4 * planes, H', W')``.

        H' and W' are ``ceil(H / stride)`` and ``ceil(W / stride)``; a block that changes the
        shape needs a ``downsample`` that matches it.

        Example:
            >>> import torch
            >>> Bottleneck(32, 8)(torch.zeros(1, 32, 4, 4)).shape
            torch.Size([1, 32, 4, 4])
        """
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class PadShortcut(nn.Module):
    """The paper's option A shortcut: subsample the identity and append zero channels.

    Args:
        in_channels: Input channels.
        out_channels: Output channels (``>= in_channels``); the extra ones are zeros.
        stride: Spatial subsampling factor.

    Example:
        >>> import torch
        >>> PadShortcut(16, 32, stride=2)(torch.ones(1, 16, 32, 32)).shape
        torch.Size([1, 32, 16, 16])
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"option A can only add channels; got {in_channels}->{out_channels}")
        self.extra = out_channels - in_channels
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        """Every ``stride``-th pixel, zero channels appended: ``(N, out_channels, H', W')``.

        Example:
            >>> import torch
            >>> out = PadShortcut(2, 3, stride=2)(torch.ones(1, 2, 3, 3))
            >>> out.shape, out[0, :, 0, 0].tolist()
            (torch.Size([1, 3, 2, 2]), [1.0, 1.0, 0.0])
        """
        # Taking every stride-th pixel gives ceil(H / stride) rows, as the 3x3 stride-s,
        # padding-1 convolution of the residual branch does, so the sum always lines up.
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))

    def extra_repr(self) -> str:
        """What ``print(net)`` shows of it: the stride and the zero channels appended.

        Example:
            >>> PadShortcut(16, 32, stride=2)
            PadShortcut(stride=2, zero_channels=16)
        """
        return f"stride={self.stride}, zero_channels={self.extra}"


class ResNetNet(nn.Module):
    """A residual network: stem, stages of residual blocks, global average pooling, ``fc``.

    The stages are ``layer1``, ``layer2``, ... as in torchvision. :meth:`forward_features`
    returns the last stage's maps; :meth:`forward_head` averages them and applies ``fc``.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: Blocks per stage, e.g. ``[2, 2, 2, 2]`` (ResNet-18) or ``[3, 3, 3]`` (ResNet-20).
        num_classes: Output classes.
        in_channels: Input channels (only the first convolution changes).
        widths: Inner channels (``planes``) per stage; the first stage keeps the stem's size and
            each later one halves it.
        shortcut: ``"B"`` (1x1 convolution and batch norm where the shape changes, as
            torchvision and the paper's ImageNet runs) or ``"A"`` (parameter-free zero padding,
            the paper's CIFAR runs).
        zero_init_residual: Start the last batch norm of every residual branch at zero, so that
            each block begins as the identity (Goyal et al., 2017).
        small_input: A 3x3 stride-1 stem without max pooling, for 28-32 pixel images; the
            ImageNet stem (7x7 stride 2 and a 3x3 stride-2 max pool) shrinks them 4x at once.
            The CIFAR networks always have it.

    Example:
        >>> import torch
        >>> net = ResNetNet(BasicBlock, [2, 2, 2, 2], num_classes=10, small_input=True)
        >>> net(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
        >>> net.forward_features(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 512, 4, 4])
    """

    #: The convolution that sees the input, and the final classifier (timm's ``first_conv``
    #: and ``classifier``); ``classic_cnns.finetune`` and ``classic_cnns.weights`` read them.
    first_conv: ClassVar[str] = "conv1"
    head_names: ClassVar[tuple[str, ...]] = ("fc",)

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: Sequence[int],
        num_classes: int = 1000,
        in_channels: int = 3,
        widths: Sequence[int] = (64, 128, 256, 512),
        shortcut: str = "B",
        *,
        zero_init_residual: bool = False,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        check_in_channels(in_channels)
        if not (isinstance(block, type) and issubclass(block, BasicBlock | Bottleneck)):
            raise TypeError(f"block must be BasicBlock or Bottleneck (a class); got {block!r}")
        check_counts(layers=list(layers), widths=list(widths))
        for flag, value in (
            ("small_input", small_input),
            ("zero_init_residual", zero_init_residual),
        ):
            check_flag(flag, value)
        if len(layers) != len(widths):
            raise ValueError(f"need one width per stage; got layers={layers}, widths={widths}")
        if shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be 'A' or 'B'; got {shortcut!r}")
        self.block = block
        self.shortcut = shortcut
        self.inplanes = widths[0]
        if small_input:
            self.conv1: nn.Conv2d = conv3x3(in_channels, self.inplanes)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, self.inplanes, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        for i, (planes, blocks) in enumerate(zip(widths, layers, strict=True)):
            self.add_module(f"layer{i + 1}", self._make_layer(planes, blocks, 1 if i == 0 else 2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.num_features = widths[-1] * block.expansion
        self.num_classes = num_classes
        self.fc = linear_head(self.num_features, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock):
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        out_channels = planes * self.block.expansion
        downsample: nn.Module | None = None
        if stride != 1 or self.inplanes != out_channels:
            if self.shortcut == "A":
                downsample = PadShortcut(self.inplanes, out_channels, stride)
            else:
                downsample = nn.Sequential(
                    conv1x1(self.inplanes, out_channels, stride), nn.BatchNorm2d(out_channels)
                )
        layers = [self.block(self.inplanes, planes, stride, downsample)]
        self.inplanes = out_channels
        layers += [self.block(out_channels, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x: Tensor) -> Tensor:
        """The last stage's feature maps, unpooled: ``(N, num_features, H', W')``.

        Example:
            >>> import torch
            >>> net = resnet20()
            >>> net.forward_features(torch.zeros(1, 3, 32, 32)).shape
            torch.Size([1, 64, 8, 8])
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        # The stages, in order; unlike getattr(self, f"layer{i}"), TorchScript unrolls this.
        for name, stage in self.named_children():
            if name.startswith("layer"):
                x = stage(x)
        return x

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Average the maps, then ``fc`` (``pre_logits``: no ``fc``, ``(N, num_features)``).

        Example:
            >>> import torch
            >>> net = resnet20().eval()
            >>> maps = net.forward_features(torch.zeros(1, 3, 32, 32))
            >>> net.forward_head(maps).shape, net.forward_head(maps, pre_logits=True).shape
            (torch.Size([1, 10]), torch.Size([1, 64]))
        """
        x = self.avgpool(x).flatten(1)
        return x if pre_logits else self.fc(x)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, num_classes)`` of images ``(N, in_channels, H, W)``.

        The same as ``forward_head(forward_features(x))``; after ``reset_classifier(0)``,
        the pooled features ``(N, num_features)`` (64 for the CIFAR networks).

        Example:
            >>> import torch
            >>> resnet20(num_classes=10)(torch.zeros(2, 3, 32, 32)).shape
            torch.Size([2, 10])
        """
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``fc`` with a fresh layer for ``num_classes`` classes (0: identity).

        Example:
            >>> net = resnet20()
            >>> net.reset_classifier(100)
            >>> net.fc.out_features
            100
        """
        with same_placement(self):
            self.fc = linear_head(self.num_features, num_classes)
        self.num_classes = num_classes


_IMAGENET = dict(
    family="resnet",
    paper=_PAPER,
    year=2015,
    url=_URL,
    input_size=(3, 224, 224),
    # Every stride-2 layer pads so that 1 pixel stays 1 pixel; there is no smaller size.
    min_input_size=(1, 1),
    num_classes=1000,
)
_CIFAR = {**_IMAGENET, "input_size": (3, 32, 32), "num_classes": 10}


# Block type and blocks per stage of the paper's table 1.
_IMAGENET_CONFIGS: dict[str, tuple[type[BasicBlock | Bottleneck], list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
    "resnet152": (Bottleneck, [3, 8, 36, 3]),
}


def _imagenet(name: str, num_classes: int, in_channels: int, options: dict[str, Any]) -> ResNetNet:
    block, layers = _IMAGENET_CONFIGS[name]
    return ResNetNet(block, layers, num_classes, in_channels, **options)


def _cifar(depth: int, num_classes: int, in_channels: int, options: dict[str, Any]) -> ResNetNet:
    n = (depth - 2) // 6
    options = small_stem_only(f"resnet{depth}", options)
    return ResNetNet(
        BasicBlock,
        [n, n, n],
        num_classes,
        in_channels,
        (16, 32, 64),
        "A",
        small_input=True,
        **options,
    )


# Every builder takes num_classes, in_channels and, as keywords, ResNetNet's options: its
# keyword-only arguments.


@register_model(**_IMAGENET, num_params=11_689_512)  # type: ignore[arg-type]
def resnet18(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ResNetNet:
    """ResNet-18: basic blocks ``[2, 2, 2, 2]``, 11.7M parameters.

    Example:
        >>> import torch
        >>> net = resnet18(num_classes=10, small_input=True)
        >>> net(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 10])
    """
    return _imagenet("resnet18", num_classes, in_channels, kwargs)


@register_model(**_IMAGENET, num_params=21_797_672)  # type: ignore[arg-type]
def resnet34(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ResNetNet:
    """ResNet-34: basic blocks ``[3, 4, 6, 3]``, 21.8M parameters.

    Example:
        >>> resnet34().layer3[5].conv2.out_channels
        256
    """
    return _imagenet("resnet34", num_classes, in_channels, kwargs)


@register_model(**_IMAGENET, num_params=25_557_032)  # type: ignore[arg-type]
def resnet50(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ResNetNet:
    """ResNet-50: bottleneck blocks ``[3, 4, 6, 3]``, 25.6M parameters.

    Example:
        >>> resnet50().num_features
        2048
    """
    return _imagenet("resnet50", num_classes, in_channels, kwargs)


@register_model(**_IMAGENET, num_params=44_549_160)  # type: ignore[arg-type]
def resnet101(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ResNetNet:
    """ResNet-101: bottleneck blocks ``[3, 4, 23, 3]``, 44.5M parameters.

    Example:
        >>> len(resnet101().layer3)
        23
    """
    return _imagenet("resnet101", num_classes, in_channels, kwargs)


@register_model(**_IMAGENET, num_params=60_192_808)  # type: ignore[arg-type]
def resnet152(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ResNetNet:
    """ResNet-152: bottleneck blocks ``[3, 8, 36, 3]``, 60.2M parameters.

    Example:
        >>> len(resnet152().layer3)
        36
    """
    return _imagenet("resnet152", num_classes, in_channels, kwargs)


@register_model(**_CIFAR, num_params=269_722)  # type: ignore[arg-type]
def resnet20(
    *, num_classes: int = 10, in_channels: int = 3, small_input: bool = True, **kwargs: Any
) -> ResNetNet:
    """CIFAR ResNet-20 (n=3), 0.27M parameters.

    Example:
        >>> import torch
        >>> resnet20()(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    return _cifar(20, num_classes, in_channels, kwargs | {"small_input": small_input})


@register_model(**_CIFAR, num_params=464_154)  # type: ignore[arg-type]
def resnet32(
    *, num_classes: int = 10, in_channels: int = 3, small_input: bool = True, **kwargs: Any
) -> ResNetNet:
    """CIFAR ResNet-32 (n=5), 0.46M parameters.

    Example:
        >>> len(resnet32().layer1)
        5
    """
    return _cifar(32, num_classes, in_channels, kwargs | {"small_input": small_input})


@register_model(**_CIFAR, num_params=658_586)  # type: ignore[arg-type]
def resnet44(
    *, num_classes: int = 10, in_channels: int = 3, small_input: bool = True, **kwargs: Any
) -> ResNetNet:
    """CIFAR ResNet-44 (n=7), 0.66M parameters.

    Example:
        >>> len(resnet44().layer1)
        7
    """
    return _cifar(44, num_classes, in_channels, kwargs | {"small_input": small_input})


@register_model(**_CIFAR, num_params=853_018)  # type: ignore[arg-type]
def resnet56(
    *, num_classes: int = 10, in_channels: int = 3, small_input: bool = True, **kwargs: Any
) -> ResNetNet:
    """CIFAR ResNet-56 (n=9), 0.85M parameters.

    Example:
        >>> len(resnet56().layer1)
        9
    """
    return _cifar(56, num_classes, in_channels, kwargs | {"small_input": small_input})


@register_model(**_CIFAR, num_params=1_727_962)  # type: ignore[arg-type]
def resnet110(
    *, num_classes: int = 10, in_channels: int = 3, small_input: bool = True, **kwargs: Any
) -> ResNetNet:
    """CIFAR ResNet-110 (n=18), 1.7M parameters.

    Example:
        >>> len(resnet110().layer1)
        18
    """
    return _cifar(110, num_classes, in_channels, kwargs | {"small_input": small_input})
