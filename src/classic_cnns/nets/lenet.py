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

That is 61,706 parameters for 1 channel and 10 classes. Where it departs from
the paper (the table is silent on the first three): S2/S4 have no trainable
coefficients, C3 connects to all S2 maps, the activation is plain tanh rather
than the paper's scaled 1.7159 tanh(2a/3), the output is a linear layer
(softmax lives in the loss) rather than the paper's RBF units, and weights and
biases keep PyTorch's default initialisation, uniform in ±1/sqrt(F_i) (F_i a
unit's fan-in: inputs times kernel area), not the paper's uniform in
±2.4/F_i (its Appendix C). torchvision has no LeNet to follow instead.

Example:
    >>> import torch
    >>> from classic_cnns.nets.lenet import lenet5
    >>> net = lenet5(num_classes=10)
    >>> sum(p.numel() for p in net.parameters())
    61706
    >>> net(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from classic_cnns._checks import check_flag
from classic_cnns.nets._layers import check_in_channels, linear_head, same_placement
from classic_cnns.registry import register_model

__all__ = ["LeNet5Net", "lenet5", "lenet5_bn", "lenet5_modern"]

_PAPER = "Gradient-Based Learning Applied to Document Recognition"
_URL = "http://yann.lecun.com/exdb/publis/pdf/lecun-98.pdf"


class LeNet5Net(nn.Module):
    """The LeNet-5 network: conv-pool-conv-pool-conv features, then two linear layers.

    :meth:`forward_features` returns C5's maps (1x1 at 32x32); :meth:`forward_head`
    averages them, applies F6 and, unless ``pre_logits``, the output layer ``fc``. So
    ``num_features`` is F6's width, 84: what ``fc`` sees.

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
        >>> net.forward_features(torch.zeros(1, 1, 32, 32)).shape
        torch.Size([1, 120, 1, 1])
    """

    #: The convolution that sees the input, and the final classifier (timm's ``first_conv``
    #: and ``classifier``); ``classic_cnns.finetune`` and ``classic_cnns.weights`` read them.
    first_conv: ClassVar[str] = "c1.0"
    head_names: ClassVar[tuple[str, ...]] = ("fc",)

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        modern: bool = False,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        check_in_channels(in_channels)
        for flag, value in (("modern", modern), ("batch_norm", batch_norm)):
            check_flag(flag, value)
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
        self.num_features = 84
        self.fc = linear_head(self.num_features, num_classes)
        self.num_classes = num_classes

    def forward_features(self, x: Tensor) -> Tensor:
        """C5's feature maps, unpooled: ``(N, 120, H', W')``, 1x1 for a 32x32 input.

        Example:
            >>> import torch
            >>> net = lenet5()
            >>> net.forward_features(torch.zeros(1, 1, 32, 32)).shape
            torch.Size([1, 120, 1, 1])
        """
        return self.c5(self.s4(self.c3(self.s2(self.c1(x)))))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Average the maps, apply F6, then ``fc`` (skipped with ``pre_logits``: ``(N, 84)``).

        Example:
            >>> import torch
            >>> net = lenet5().eval()
            >>> maps = net.forward_features(torch.zeros(1, 1, 32, 32))
            >>> net.forward_head(maps).shape, net.forward_head(maps, pre_logits=True).shape
            (torch.Size([1, 10]), torch.Size([1, 84]))
        """
        x = self.f6(self.pool(x).flatten(1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, num_classes)`` of images ``(N, in_channels, H, W)``, H and W >= 32.

        The same as ``forward_head(forward_features(x))``; after ``reset_classifier(0)``,
        F6's features ``(N, 84)``.

        Example:
            >>> import torch
            >>> LeNet5Net(num_classes=10)(torch.zeros(2, 1, 32, 32)).shape
            torch.Size([2, 10])
        """
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``fc`` with a fresh layer for ``num_classes`` classes (0: identity).

        Example:
            >>> import torch
            >>> net = LeNet5Net(num_classes=10)
            >>> net.reset_classifier(0)
            >>> net(torch.zeros(2, 1, 32, 32)).shape
            torch.Size([2, 84])
        """
        with same_placement(self):
            self.fc = linear_head(self.num_features, num_classes)
        self.num_classes = num_classes


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
    """LeNet-5 as in the notes' layer table: tanh and average pooling, 61,706 parameters.

    Example:
        >>> import torch
        >>> lenet5()(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
    """
    return LeNet5Net(num_classes, in_channels)


@register_model(**_LENET)
def lenet5_modern(*, num_classes: int = 10, in_channels: int = 1) -> LeNet5Net:
    """LeNet-5 with ReLU and max pooling, the PyTorch tutorial's network; same parameters.

    Example:
        >>> sum(p.numel() for p in lenet5_modern().parameters())
        61706
    """
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
    """LeNet-5 with batch normalisation after each convolution and F6 (Ioffe and Szegedy, 2015).

    Example:
        >>> sum(p.numel() for p in lenet5_bn(in_channels=3).parameters())
        62458
    """
    return LeNet5Net(num_classes, in_channels, batch_norm=True)
