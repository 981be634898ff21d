"""VGG (Simonyan and Zisserman, 2014): configurations A, B, D and E, with and without BN.

"Very Deep Convolutional Networks for Large-Scale Image Recognition", arXiv 1409.1556.
Every convolution is 3x3 with padding 1 and a ReLU; every "M" is a 2x2 stride-2 max
pool. The paper's configurations, by weight layers:

=====  =====  ==================================================================
Name   Paper  Convolution channels ("M" = max pooling)
=====  =====  ==================================================================
VGG11  A      64 M 128 M 256 256 M 512 512 M 512 512 M
VGG13  B      64 64 M 128 128 M 256 256 M 512 512 M 512 512 M
VGG16  D      64 64 M 128 128 M 256 256 256 M 512 512 512 M 512 512 512 M
VGG19  E      64 64 M 128 128 M 256 256 256 256 M 512 512 512 512 M 512 512 512 512 M
=====  =====  ==================================================================

followed by an adaptive 7x7 average pool and three fully connected layers
(25088 -> 4096 -> 4096 -> classes, ReLU and dropout after the first two). The
layout is torchvision's, attribute names and ``nn.Sequential`` indices included, so
its state dicts load with ``strict=True`` and the parameter counts are its own
(VGG-16: 138,357,544). The ``_bn`` forms put batch normalisation between each
convolution and its ReLU, as torchvision does; the paper predates batch norm.

Five pools halve the map five times, so the smallest input is 32x32 (a 1x1 map
before the classifier); at 31 the last pool has nothing left. ``small_input=True``
keeps the convolutions, which already suit 32x32 images, and swaps the 100-million
parameter head for the CIFAR one of the common VGG-CIFAR ports (e.g. Fu's
pytorch-vgg-cifar10): a global average pool and 512 -> 512 -> 512 -> classes, with
the same indices in ``classifier``. The minimum stays 32x32.

Example:
    >>> import torch
    >>> from classic_cnns.nets.vgg import CONFIGS, vgg11
    >>> CONFIGS[11]
    [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M']
    >>> vgg11(num_classes=10, small_input=True).eval()(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from torch import Tensor, nn

from classic_cnns._checks import check_flag, is_int, is_number
from classic_cnns.nets._layers import check_in_channels, linear_head, same_placement
from classic_cnns.registry import register_model

__all__ = [
    "CONFIGS",
    "VGGNet",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
]

_PAPER = "Very Deep Convolutional Networks for Large-Scale Image Recognition"
_URL = "https://arxiv.org/abs/1409.1556"

# fmt: off
CONFIGS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
         512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
# fmt: on
"""Convolution widths by depth (weight layers); ``"M"`` is a 2x2 stride-2 max pool.

Example:
    >>> from classic_cnns.nets.vgg import CONFIGS
    >>> sorted(CONFIGS), CONFIGS[11].count("M")
    ([11, 13, 16, 19], 5)
"""


def make_layers(
    config: Sequence[int | str], in_channels: int = 3, *, batch_norm: bool = False
) -> nn.Sequential:
    """The convolutional part of a VGG network, in torchvision's flat layout.

    Example:
        >>> make_layers([8, "M"], in_channels=1)
        Sequential(
          (0): Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
          (1): ReLU(inplace=True)
          (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
        )
    """
    _check_config(config)
    layers: list[nn.Module] = []
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        width = int(v)
        layers.append(nn.Conv2d(in_channels, width, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.ReLU(inplace=True))
        in_channels = width
    return nn.Sequential(*layers)


def _check_config(config: object) -> None:
    # Widths are positive ints and "M" a max pool; at least one convolution.
    widths = [v for v in config if v != "M"] if isinstance(config, Sequence) else []
    if not widths or not all(is_int(v, 1) for v in widths):
        raise ValueError(
            "config must be a sequence of convolution widths (ints >= 1, at least one) and "
            f"'M' for max pooling, e.g. [64, 'M', 128, 'M']; got {config!r}"
        )


def _init_linear(layer: nn.Linear) -> nn.Linear:
    nn.init.normal_(layer.weight, 0, 0.01)
    nn.init.constant_(layer.bias, 0)
    return layer


class VGGNet(nn.Module):
    """A VGG network: a stack of 3x3 convolutions and max pools, then three linear layers.

    :meth:`forward_features` returns the last max pool's maps; :meth:`forward_head` pools
    them and runs ``classifier``, whose first six layers (timm's "pre-logits", there a
    ``ConvMlp``) end in the features that the final layer ``classifier.6`` sees:
    ``num_features``, 4096 (512 with ``small_input``).

    Args:
        config: Convolution widths with ``"M"`` for max pooling (see :data:`CONFIGS`).
        num_classes: Output classes.
        in_channels: Input channels; only the first convolution depends on it.
        batch_norm: Batch normalisation between each convolution and its ReLU.
        small_input: Global average pooling and a 512-wide classifier for 32x32 images
            instead of the 7x7 pool and 4096-wide ImageNet classifier.
        dropout: Dropout probability after the first two linear layers.
        width_mult: Multiplies the width of every convolution (the classifier keeps its
            own); 0.25 gives *Dive into Deep Learning*'s narrow VGG (``ratio = 4``), with a
            sixteenth of the convolutions' work.

    Example:
        >>> import torch
        >>> net = VGGNet(CONFIGS[11], num_classes=10, in_channels=1, small_input=True)
        >>> net(torch.zeros(1, 1, 32, 32)).shape
        torch.Size([1, 10])
        >>> net.forward_features(torch.zeros(1, 1, 64, 64)).shape
        torch.Size([1, 512, 2, 2])
    """

    #: The convolution that sees the input, and the final classifier (timm's ``first_conv``
    #: and ``classifier``); ``classic_cnns.finetune`` and ``classic_cnns.weights`` read them.
    first_conv: ClassVar[str] = "features.0"
    head_names: ClassVar[tuple[str, ...]] = ("classifier.6",)

    def __init__(
        self,
        config: Sequence[int | str],
        num_classes: int = 1000,
        in_channels: int = 3,
        batch_norm: bool = False,
        *,
        small_input: bool = False,
        dropout: float = 0.5,
        width_mult: float = 1.0,
    ) -> None:
        super().__init__()
        check_in_channels(in_channels)
        _check_config(config)
        for flag, value in (("batch_norm", batch_norm), ("small_input", small_input)):
            check_flag(flag, value)
        narrowest = min(int(v) for v in config if v != "M")
        if not (is_number(width_mult) and int(narrowest * width_mult) >= 1):
            raise ValueError(
                "width_mult must be a finite number > 0 that leaves every convolution at least one "
                f"channel ({narrowest} * width_mult >= 1); got {width_mult!r}"
            )
        config = [v if v == "M" else int(int(v) * width_mult) for v in config]
        self.features = make_layers(config, in_channels, batch_norm=batch_norm)
        channels = [int(v) for v in config if v != "M"][-1]
        # At 32x32 the features are 1x1 already; a 7x7 pool would only copy them 49 times.
        pool = 1 if small_input else 7
        hidden = 512 if small_input else 4096
        self.avgpool = nn.AdaptiveAvgPool2d((pool, pool))
        self.num_features = hidden
        self.classifier = nn.Sequential(
            nn.Linear(channels * pool * pool, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            linear_head(hidden, num_classes),
        )
        self.num_classes = num_classes
        # torchvision's initialisation: He for the ReLU convolutions, small Gaussians for
        # the linear layers, which keep the 25088-wide first layer's outputs near unit scale.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                _init_linear(m)

    def forward_features(self, x: Tensor) -> Tensor:
        """The convolutional feature maps, unpooled: ``(N, 512 * width_mult, H // 32, W // 32)``.

        Example:
            >>> import torch
            >>> net = vgg11(num_classes=10, small_input=True)
            >>> net.forward_features(torch.zeros(1, 3, 32, 32)).shape
            torch.Size([1, 512, 1, 1])
        """
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Pool, then the classifier; ``pre_logits`` stops before its last layer.

        With ``pre_logits=True`` the result is ``(N, num_features)``, the features (after
        ReLU and dropout) that the final layer ``classifier.6`` sees.

        Example:
            >>> import torch
            >>> net = vgg11(num_classes=10, small_input=True).eval()
            >>> maps = net.forward_features(torch.zeros(1, 3, 32, 32))
            >>> net.forward_head(maps).shape, net.forward_head(maps, pre_logits=True).shape
            (torch.Size([1, 10]), torch.Size([1, 512]))
        """
        x = self.avgpool(x).flatten(1)
        last = len(self.classifier) - 1
        for i, layer in enumerate(self.classifier):  # a loop TorchScript can unroll
            if i < last or not pre_logits:
                x = layer(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, num_classes)`` of images ``(N, in_channels, H, W)``, H and W >= 32.

        The same as ``forward_head(forward_features(x))``; after ``reset_classifier(0)``,
        the features ``(N, num_features)`` (4096, or 512 with ``small_input``).

        Example:
            >>> import torch
            >>> net = VGGNet(CONFIGS[11], num_classes=10, small_input=True).eval()
            >>> net(torch.zeros(2, 3, 32, 32)).shape
            torch.Size([2, 10])
        """
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last linear layer with a fresh one for ``num_classes`` classes (0: identity).

        Example:
            >>> net = VGGNet(CONFIGS[11], num_classes=1000, small_input=True)
            >>> net.reset_classifier(10)
            >>> net.classifier[6].out_features, net.num_classes
            (10, 10)
        """
        with same_placement(self):
            self.classifier[6] = linear_head(self.num_features, num_classes, _init_linear)
        self.num_classes = num_classes


def _vgg(
    depth: int, batch_norm: bool, num_classes: int, in_channels: int, options: dict[str, Any]
) -> VGGNet:
    return VGGNet(CONFIGS[depth], num_classes, in_channels, batch_norm, **options)


_VGG = dict(
    family="vgg",
    paper=_PAPER,
    year=2014,
    url=_URL,
    input_size=(3, 224, 224),
    min_input_size=(32, 32),
    num_classes=1000,
)
# Batch norm is the only change in the _bn forms, so they cite its paper, as lenet5_bn does.
_VGG_BN = {
    **_VGG,
    "paper": "Batch Normalization: Accelerating Deep Network Training by Reducing "
    "Internal Covariate Shift",
    "year": 2015,
    "url": "https://arxiv.org/abs/1502.03167",
}


# Every builder takes num_classes, in_channels and, as keywords, VGGNet's options: its
# keyword-only arguments.


@register_model(**_VGG, num_params=132_863_336)  # type: ignore[arg-type]
def vgg11(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> VGGNet:
    """VGG-11, configuration A: 8 convolutions, 132,863,336 parameters.

    Example:
        >>> import torch
        >>> vgg11(num_classes=10, small_input=True)(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 10])
    """
    return _vgg(11, False, num_classes, in_channels, kwargs)


@register_model(**_VGG_BN, num_params=132_868_840)  # type: ignore[arg-type]
def vgg11_bn(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> VGGNet:
    """VGG-11 with batch normalisation: 132,868,840 parameters.

    Example:
        >>> import torch
        >>> vgg11_bn(num_classes=10, small_input=True)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    return _vgg(11, True, num_classes, in_channels, kwargs)


@register_model(**_VGG, num_params=133_047_848)  # type: ignore[arg-type]
def vgg13(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> VGGNet:
    """VGG-13, configuration B: 10 convolutions, 133,047,848 parameters.

    Example:
        >>> import torch
        >>> vgg13(num_classes=10, small_input=True)(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 10])
    """
    return _vgg(13, False, num_classes, in_channels, kwargs)


@register_model(**_VGG_BN, num_params=133_053_736)  # type: ignore[arg-type]
def vgg13_bn(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> VGGNet:
    """VGG-13 with batch normalisation: 133,053,736 parameters.

    Example:
        >>> import torch
        >>> vgg13_bn(num_classes=10, small_input=True)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    return _vgg(13, True, num_classes, in_channels, kwargs)


@register_model(**_VGG, num_params=138_357_544)  # type: ignore[arg-type]
def vgg16(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> VGGNet:
    """VGG-16, configuration D: 13 convolutions, 138,357,544 parameters.

    Example:
        >>> import torch
        >>> vgg16(num_classes=10, small_input=True)(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 10])
    """
    return _vgg(16, False, num_classes, in_channels, kwargs)


@register_model(**_VGG_BN, num_params=138_365_992)  # type: ignore[arg-type]
def vgg16_bn(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> VGGNet:
    """VGG-16 with batch normalisation: 138,365,992 parameters.

    Example:
        >>> import torch
        >>> vgg16_bn(num_classes=10, small_input=True)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    return _vgg(16, True, num_classes, in_channels, kwargs)


@register_model(**_VGG, num_params=143_667_240)  # type: ignore[arg-type]
def vgg19(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> VGGNet:
    """VGG-19, configuration E: 16 convolutions, 143,667,240 parameters.

    Example:
        >>> import torch
        >>> vgg19(num_classes=10, small_input=True)(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 10])
    """
    return _vgg(19, False, num_classes, in_channels, kwargs)


@register_model(**_VGG_BN, num_params=143_678_248)  # type: ignore[arg-type]
def vgg19_bn(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> VGGNet:
    """VGG-19 with batch normalisation: 143,678,248 parameters.

    Example:
        >>> import torch
        >>> vgg19_bn(num_classes=10, small_input=True)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    return _vgg(19, True, num_classes, in_channels, kwargs)
