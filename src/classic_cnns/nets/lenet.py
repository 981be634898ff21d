"""LeNet-5 (LeCun, Bottou, Bengio and Haffner, 1998) and its modern form.

The classic network follows the layer table of the source notes row by row:

=====  ===============  ========  =====  ======  ======  ==========
Layer  Type             Features  Size   Kernel  Stride  Activation
=====  ===============  ========  =====  ======  ======  ==========
input  image            1         32x32  -       -       -
C1     convolution      6         28x28  5x5     1       tanh
S2     average pooling  6         14x14  2x2     2       tanh
C3     convolution      16        10x10  5x5     1       tanh
S4     average pooling  16        5x5    2x2     2       tanh
C5     convolution      120       1x1    5x5     1       tanh
F6     fully connected  -         84     -       -       tanh
out    fully connected  -         10     -       -       softmax
=====  ===============  ========  =====  ======  ======  ==========

That is 61,706 parameters for 1 channel and 10 classes. Two simplifications of
the paper, as in the table: S2/S4 have no trainable coefficients, C3 connects to
all S2 maps, and the output is a linear layer (softmax lives in the loss) rather
than the paper's RBF units.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from classic_cnns.registry import register_model

__all__ = ["LeNet5Net", "lenet5", "lenet5_bn", "lenet5_modern"]

_PAPER = "Gradient-Based Learning Applied to Document Recognition"
_URL = "http://yann.lecun.com/exdb/publis/pdf/lecun-98.pdf"


class LeNet5Net(nn.Module):
    """The LeNet-5 network: conv-pool-conv-pool-conv features, then two linear layers.

    Args:
        num_classes: Output classes.
        in_channels: Input channels.
        modern: ``False`` for the paper's tanh with average pooling; ``True`` for ReLU
            with max pooling (the PyTorch tutorial's network), same shapes and parameters.
        batch_norm: Add batch normalisation after each convolution and hidden linear layer.

    Example:
        >>> import torch
        >>> net = LeNet5Net(num_classes=10, in_channels=1)
        >>> net(torch.zeros(1, 1, 32, 32)).shape
        torch.Size([1, 10])
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        *,
        modern: bool = False,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        act: type[nn.Module] = nn.ReLU if modern else nn.Tanh
        pool: type[nn.Module] = nn.MaxPool2d if modern else nn.AvgPool2d

        def conv(cin: int, cout: int) -> nn.Sequential:
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel_size=5)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            return nn.Sequential(*layers, act())

        def subsample() -> nn.Sequential:
            # The table squashes after pooling too; max pooling of ReLUs needs no second one.
            return nn.Sequential(pool(kernel_size=2, stride=2), *(() if modern else (act(),)))

        self.c1 = conv(in_channels, 6)
        self.s2 = subsample()
        self.c3 = conv(6, 16)
        self.s4 = subsample()
        self.c5 = conv(16, 120)
        # At 32x32 C5 is already 1x1 and this is the identity; larger inputs are averaged.
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.f6 = nn.Sequential(
            nn.Linear(120, 84), *((nn.BatchNorm1d(84),) if batch_norm else ()), act()
        )
        self.fc = nn.Linear(84, num_classes)
        self.num_classes = num_classes
        self.num_features = 120

    def forward_features(self, x: Tensor) -> Tensor:
        """The pooled C5 features, ``(N, 120)``."""
        x = self.s4(self.c3(self.s2(self.c1(x))))
        return self.pool(self.c5(x)).flatten(1)

    def forward_head(self, x: Tensor) -> Tensor:
        """F6 and the output layer on pooled features."""
        return self.fc(self.f6(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


_LENET: dict[str, Any] = dict(
    family="lenet",
    paper=_PAPER,
    year=1998,
    url=_URL,
    input_size=(1, 32, 32),
    min_input_size=(32, 32),
    num_params=61_706,
)


@register_model(**_LENET)
def lenet5(*, num_classes: int = 10, in_channels: int = 1) -> LeNet5Net:
    """LeNet-5 as in the paper's table: tanh and average pooling, 61,706 parameters."""
    return LeNet5Net(num_classes, in_channels)


@register_model(**_LENET)
def lenet5_modern(*, num_classes: int = 10, in_channels: int = 1) -> LeNet5Net:
    """LeNet-5 with ReLU and max pooling, the PyTorch tutorial's network; same parameters."""
    return LeNet5Net(num_classes, in_channels, modern=True)


@register_model(
    **{
        **_LENET,
        "paper": "Batch Normalization: Accelerating Deep Network Training by Reducing "
        "Internal Covariate Shift",
        "year": 2015,
        "url": "https://arxiv.org/abs/1502.03167",
        "num_params": 62_158,
    }
)
def lenet5_bn(*, num_classes: int = 10, in_channels: int = 1) -> LeNet5Net:
    """LeNet-5 with batch normalisation after each convolution and F6 (Ioffe and Szegedy, 2015)."""
    return LeNet5Net(num_classes, in_channels, batch_norm=True)
