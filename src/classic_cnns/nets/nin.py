"""Network In Network (Lin, Chen and Yan, 2013): the paper's CIFAR-10 network.

"Network In Network", ICLR 2014, arXiv 1312.4400. A *mlpconv* block is a kxk
convolution followed by two 1x1 convolutions ("cascaded cross channel parametric
pooling"), each with a ReLU: a small multilayer perceptron slid over the image. Three
blocks, with max pooling and dropout between them, end in one feature map per class,
and global average pooling turns the maps into logits: there is no fully connected
layer. The widths are those of the authors' released Caffe model for CIFAR-10:

=====  ==========  ============  ======================  =======================
Block  Kernel      Widths        Output size (32 input)  Then
=====  ==========  ============  ======================  =======================
1      5x5, pad 2  192-160-96    32x32                   3x3/2 max pool, dropout
2      5x5, pad 2  192-192-192   16x16                   3x3/2 max pool, dropout
3      3x3, pad 1  192-192-C     8x8                     global average pool
=====  ==========  ============  ======================  =======================

That is 966,986 parameters for 3 channels and 10 classes (C = 10). The pools round up
(Caffe's rule, ``ceil_mode=True``) so that each halves the map exactly, to ``H // 2``:
32 -> 16 -> 8. Departures from the Caffe model:

* No ReLU on the class maps by default (``final_relu=False``). The Caffe model has one,
  so its logits are non-negative, and a class map that goes negative everywhere gets no
  gradient again: its logit is stuck at 0. Cross-entropy pushes every map down on the
  nine tenths of the images that are not its class, so the maps die early in training.
  Measured on 12x12 sklearn digits (batch 32, 3 epochs, seeds 0-2): with the ReLU, AdamW
  (lr 3e-3, one-cycle) left all 10 class maps dead and the loss at log(10) on every seed,
  and SGD (lr 0.05) left 7 of 10 dead at 13-17% accuracy (on MNIST-10k it reached
  36.95% in 3 epochs); without it, AdamW reached 79-89% and no map died, and on
  MNIST-10k (AdamW, lr 3e-3, one-cycle, 3 epochs) 97.80%. ``final_relu=True``
  restores the Caffe layer (same parameters). Without the ReLU the averaging commutes
  with the last 1x1 convolution, but the network is still the paper's: the class maps
  are computed, then averaged, with no fully connected layer.
* Initialisation: He (fan-in) normal for the hidden convolutions and N(0, 0.01) for the
  class maps, zero biases, instead of the Caffe Gaussian (std 0.05 everywhere, which
  shrinks the activations layer by layer and with the ReLU learned nothing in 3 epochs
  on the toy task above). The small class-map weights keep the first logits near 0
  (loss ~log(10)).
* Its second pool averages where the paper's text (and this network) takes the maximum.

The smallest input is 4x4: the rounded-up pools give 4 -> 2 -> 1, and a 3x3 input
leaves a 1x1 map that the second pool cannot take.

Example:
    >>> import torch
    >>> from classic_cnns.nets.nin import nin
    >>> net = nin(num_classes=10)
    >>> sum(p.numel() for p in net.parameters())
    966986
    >>> net.eval()(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from torch import Tensor, nn

from classic_cnns._checks import check_flag
from classic_cnns.nets._layers import check_in_channels, check_num_classes, same_placement
from classic_cnns.registry import register_model

__all__ = ["NiNNet", "mlpconv", "nin"]

_PAPER = "Network In Network"
_URL = "https://arxiv.org/abs/1312.4400"


def mlpconv(in_channels: int, widths: Sequence[int], kernel_size: int) -> nn.Sequential:
    """A mlpconv block: a ``kernel_size`` convolution, then 1x1 ones, each with a ReLU.

    The padding keeps the spatial size, so only the pools between blocks shrink it.

    Example:
        >>> import torch
        >>> block = mlpconv(3, (192, 160, 96), kernel_size=5)
        >>> block(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 96, 32, 32])
    """
    layers: list[nn.Module] = []
    for i, width in enumerate(widths):
        k = kernel_size if i == 0 else 1
        layers += [nn.Conv2d(in_channels, width, k, padding=k // 2), nn.ReLU(inplace=True)]
        in_channels = width
    return nn.Sequential(*layers)


def _init_conv(conv: nn.Conv2d, *, classifier: bool = False) -> nn.Conv2d:
    # He (fan-in) for the hidden convolutions, N(0, 0.01) for the class maps; see the
    # module docstring for what was measured.
    if classifier:
        nn.init.normal_(conv.weight, 0, 0.01)
    else:
        nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


class NiNNet(nn.Module):
    """The NiN network for CIFAR-10: three mlpconv blocks and global average pooling.

    ``features`` holds the first two blocks and the third block's kxk and first 1x1
    layers; ``classifier`` is that block's last 1x1 convolution (one map per class),
    followed by a ReLU only with ``final_relu=True``. :meth:`forward_features` returns
    the feature maps ``(N, 192, H // 4, W // 4)`` and :meth:`forward_head` turns them into
    class maps and averages those. The pre-logits features are the averaged feature maps,
    ``(N, 192)``: without the final ReLU the averaging commutes with the 1x1 convolution,
    so these are exactly what a linear classifier on pooled features would see, and
    ``reset_classifier(0)`` (an identity in place of the class maps) returns them too.

    Args:
        num_classes: Output classes (maps of the last 1x1 convolution).
        in_channels: Input channels; only the first convolution depends on it.
        dropout: Dropout probability after each of the two max pools.
        final_relu: Put the Caffe model's ReLU on the class maps (non-negative logits).
            Off by default: with it the class maps tend to die early in training (see
            the module docstring). The parameters are the same either way.

    Example:
        >>> import torch
        >>> net = NiNNet(num_classes=10, in_channels=3)
        >>> net(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
        >>> net.forward_features(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 192, 8, 8])
    """

    #: The convolution that sees the input, and the final classifier (timm's ``first_conv``
    #: and ``classifier``); ``classic_cnns.finetune`` and ``classic_cnns.weights`` read them.
    first_conv: ClassVar[str] = "features.0.0"
    head_names: ClassVar[tuple[str, ...]] = ("classifier.0",)

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        *,
        dropout: float = 0.5,
        final_relu: bool = False,
    ) -> None:
        super().__init__()
        check_in_channels(in_channels)
        check_flag("final_relu", final_relu)
        self.features = nn.Sequential(
            mlpconv(in_channels, (192, 160, 96), kernel_size=5),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            nn.Dropout(p=dropout),
            mlpconv(96, (192, 192, 192), kernel_size=5),
            nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            nn.Dropout(p=dropout),
            mlpconv(192, (192, 192), kernel_size=3),
        )
        self.num_features = 192
        for m in self.features.modules():
            if isinstance(m, nn.Conv2d):
                _init_conv(m)
        head = [self._class_maps(num_classes)]
        if final_relu:
            head.append(nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(*head)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.num_classes = num_classes

    def _class_maps(self, num_classes: int) -> nn.Module:
        if check_num_classes(num_classes) == 0:
            return nn.Identity()
        conv = nn.Conv2d(self.num_features, num_classes, kernel_size=1)
        return _init_conv(conv, classifier=True)

    def forward_features(self, x: Tensor) -> Tensor:
        """Feature maps before the class maps, ``(N, 192, H // 4, W // 4)``.

        Example:
            >>> import torch
            >>> net = nin()
            >>> net.forward_features(torch.zeros(1, 3, 32, 32)).shape
            torch.Size([1, 192, 8, 8])
        """
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Class maps from feature maps, averaged over space into logits ``(N, num_classes)``.

        With ``pre_logits=True``, the feature maps averaged over space, ``(N, 192)``.

        Example:
            >>> import torch
            >>> net = nin().eval()
            >>> maps = net.forward_features(torch.zeros(1, 3, 32, 32))
            >>> net.forward_head(maps).shape, net.forward_head(maps, pre_logits=True).shape
            (torch.Size([1, 10]), torch.Size([1, 192]))
        """
        # flatten(-3): an unbatched (C, H, W) image, which nn.Conv2d takes, gives one row of
        # num_classes, not num_classes rows (flatten(1) would make the classes the batch).
        if pre_logits:
            return self.global_pool(x).flatten(-3)
        return self.global_pool(self.classifier(x)).flatten(-3)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, num_classes)`` of images ``(N, in_channels, H, W)``, H and W >= 4.

        The class maps averaged over the image: the same as
        ``forward_head(forward_features(x))``. After ``reset_classifier(0)``, the averaged
        features ``(N, 192)``.

        Example:
            >>> import torch
            >>> NiNNet(num_classes=10).eval()(torch.zeros(2, 3, 32, 32)).shape
            torch.Size([2, 10])
        """
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last 1x1 convolution with a fresh one for ``num_classes`` classes.

        With 0 it becomes an identity, so the network returns the averaged feature maps,
        ``(N, 192)``.

        Example:
            >>> net = NiNNet(num_classes=10)
            >>> net.reset_classifier(100)
            >>> net.classifier[0].out_channels, net.num_classes
            (100, 100)
        """
        with same_placement(self):
            self.classifier[0] = self._class_maps(num_classes)
        self.num_classes = num_classes


@register_model(
    family="nin",
    paper=_PAPER,
    year=2013,
    url=_URL,
    input_size=(3, 32, 32),
    min_input_size=(4, 4),
    num_params=966_986,
    num_classes=10,
)
def nin(*, num_classes: int = 10, in_channels: int = 3, **kwargs: Any) -> NiNNet:
    """NiN for CIFAR-10 as in the authors' Caffe model: 966,986 parameters, no linear layer.

    Keyword arguments are :class:`NiNNet`'s options, its keyword-only arguments.

    Example:
        >>> import torch
        >>> net = nin(num_classes=10, in_channels=1)
        >>> net(torch.zeros(1, 1, 28, 28)).shape
        torch.Size([1, 10])
    """
    return NiNNet(num_classes, in_channels, **kwargs)
