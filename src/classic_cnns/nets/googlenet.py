"""GoogLeNet / Inception v1 (Szegedy et al., 2014), in torchvision's layout.

Paper: "Going Deeper with Convolutions", https://arxiv.org/abs/1409.4842.

Nine Inception modules (parallel 1x1, 3x3, "5x5" and pooled branches, concatenated)
on a convolutional stem, global average pooling, dropout and one linear classifier.
Two auxiliary classifiers on inception4a and inception4d add gradient signal to the
middle of the network during training; the task weights their losses by 0.3 as the
paper does, and at inference they are not evaluated.

Layer and parameter names are torchvision's, so its state dicts load with
``strict=True``. This means torchvision's departures from the paper too:

* batch normalisation (eps 0.001) after every convolution and no local response norm;
* the "5x5" branch uses a 3x3 convolution (https://github.com/pytorch/vision/issues/906);
* max pooling rounds up (``ceil_mode=True``), the auxiliary heads pool adaptively to
  4x4 rather than with a 5x5 stride-3 window, and the main dropout is 0.2, not 0.4;
* ``maxpool4``, after inception4e, is 2x2 with stride 2 (the paper's Table 1: 3x3 stride 2;
  both give 7x7 at 224 px).

torchvision's ``transform_input`` (re-normalising ImageNet-normalised inputs to the
[-1, 1] range its ported weights expect) is left out: it has no parameters, and the
classic_cnns datamodules normalise inputs themselves.

Parameter count (1000 classes): 6,624,904 without the auxiliary heads, which is what
``model_info("googlenet").num_params`` reports; the auxiliary heads add 3,188,968 (aux1,
after 512 channels) and 3,191,016 (aux2, after 528), 6,379,984 together.

Example:
    >>> import torch
    >>> from classic_cnns.nets.googlenet import googlenet
    >>> net = googlenet(num_classes=10, small_input=True)
    >>> out = net.train()(torch.zeros(2, 3, 32, 32))  # torchvision's GoogLeNetOutputs
    >>> out.logits.shape, out.aux_logits2.shape, out.aux_logits1.shape
    (torch.Size([2, 10]), torch.Size([2, 10]), torch.Size([2, 10]))
    >>> net.eval()(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from classic_cnns._checks import check_flag
from classic_cnns.nets._layers import (
    check_in_channels,
    check_num_classes,
    linear_head,
    same_placement,
)
from classic_cnns.registry import register_model

__all__ = [
    "BasicConv2d",
    "GoogLeNetNet",
    "GoogLeNetOutputs",
    "Inception",
    "InceptionAux",
    "googlenet",
]

_PAPER = "Going Deeper with Convolutions"
_URL = "https://arxiv.org/abs/1409.4842"


class GoogLeNetOutputs(NamedTuple):
    """What :class:`GoogLeNetNet` returns in training with its auxiliary heads.

    torchvision's ``GoogLeNetOutputs``: the same name, fields and order, so code written for
    ``torchvision.models.googlenet`` reads ``out.logits`` and ``out.aux_logits1`` here too.
    A tuple: ``logits, aux2, aux1 = out`` and ``out[0]`` work as well.

    Attributes:
        logits: The main classifier's logits ``(N, num_classes)``.
        aux_logits2: The second auxiliary head's (on inception4d) ``(N, num_classes)``.
        aux_logits1: The first auxiliary head's (on inception4a) ``(N, num_classes)``.

    Example:
        >>> import torch
        >>> out = GoogLeNetOutputs(torch.zeros(2, 10), torch.ones(2, 10), torch.ones(2, 10))
        >>> out._fields
        ('logits', 'aux_logits2', 'aux_logits1')
        >>> logits, aux2, aux1 = out
        >>> logits is out.logits is out[0]
        True
    """

    logits: Tensor
    aux_logits2: Tensor
    aux_logits1: Tensor


class BasicConv2d(nn.Module):
    """Convolution (no bias), batch norm (eps 0.001) and ReLU.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        **kwargs: Further ``nn.Conv2d`` arguments (``kernel_size``, ``stride``, ``padding``).

    Example:
        >>> import torch
        >>> BasicConv2d(3, 8, kernel_size=3, padding=1)(torch.zeros(1, 3, 5, 5)).shape
        torch.Size([1, 8, 5, 5])
    """

    def __init__(self, in_channels: int, out_channels: int, **kwargs: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        # eps 0.001 as in the TensorFlow model torchvision's weights were ported from.
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        """ReLU of the normalised convolution: ``(N, out_channels, H', W')``.

        Example:
            >>> import torch
            >>> BasicConv2d(3, 8, kernel_size=3, stride=2)(torch.zeros(1, 3, 9, 9)).shape
            torch.Size([1, 8, 4, 4])
        """
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    """An Inception module: four parallel branches concatenated along channels.

    Args:
        in_channels: Input channels.
        ch1x1: Output channels of the 1x1 branch.
        ch3x3red: 1x1 reduction before the 3x3 branch.
        ch3x3: Output channels of the 3x3 branch.
        ch5x5red: 1x1 reduction before the "5x5" branch.
        ch5x5: Output channels of the "5x5" branch (a 3x3 convolution, as in torchvision).
        pool_proj: Output channels of the 1x1 projection after 3x3 max pooling.

    Example:
        >>> import torch
        >>> block = Inception(192, 64, 96, 128, 16, 32, 32)
        >>> block(torch.zeros(1, 192, 7, 7)).shape
        torch.Size([1, 256, 7, 7])
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
    ) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, kernel_size=1),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, kernel_size=1),
            # torchvision's known 3x3-for-5x5 slip, kept so that its weights load.
            BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, kernel_size=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        """The four branches joined: ``(N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)``.

        Example:
            >>> import torch
            >>> Inception(8, 4, 4, 8, 2, 4, 4)(torch.zeros(1, 8, 5, 5)).shape
            torch.Size([1, 20, 5, 5])
        """
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """An auxiliary classifier: 4x4 average pool, 1x1 conv to 128, two linear layers.

    Args:
        in_channels: Input channels.
        num_classes: Output classes.
        dropout: Dropout between the linear layers (0.7, as in the paper).

    Example:
        >>> import torch
        >>> InceptionAux(512, 10)(torch.zeros(2, 512, 14, 14)).shape
        torch.Size([2, 10])
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.conv = BasicConv2d(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.fc2 = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, num_classes)`` of maps ``(N, in_channels, H, W)`` of any size.

        Example:
            >>> import torch
            >>> InceptionAux(16, 10).eval()(torch.zeros(2, 16, 7, 7)).shape
            torch.Size([2, 10])
        """
        # Adaptive pooling makes the head independent of the input size (it even upsamples
        # maps smaller than 4x4), so it never sets the network's minimum input size.
        x = self.conv(F.adaptive_avg_pool2d(x, (4, 4))).flatten(1)
        return self.fc2(self.dropout(F.relu(self.fc1(x), inplace=True)))


def _trunc_normal_init(layer: nn.Linear | nn.Conv2d) -> None:
    # torchvision's init: truncated normal weights, std 0.01; biases keep PyTorch's default.
    nn.init.trunc_normal_(layer.weight, mean=0.0, std=0.01, a=-2, b=2)


class GoogLeNetNet(nn.Module):
    """GoogLeNet: stem, nine Inception modules, global average pooling, dropout, ``fc``.

    In training mode with ``aux_logits=True``, ``forward`` returns a
    :class:`GoogLeNetOutputs` ``(logits, aux_logits2, aux_logits1)``, as torchvision does;
    otherwise the logits.
    :meth:`forward_features` returns inception5b's maps ``(N, 1024, H', W')``;
    :meth:`forward_head` averages them and applies dropout and ``fc``.

    Args:
        num_classes: Output classes.
        in_channels: Input channels (only ``conv1`` changes).
        aux_logits: Build the two auxiliary classifiers ``aux1`` and ``aux2``.
        small_input: A stem for 28-32 pixel images: ``conv1`` becomes 3x3 stride 1 and
            ``maxpool1`` the identity, so the stem shrinks 2x instead of 8x and a 32x32
            image reaches the Inception modules at 16x16, 8x8 and 4x4 (ImageNet's 224x224:
            28x28, 14x14 and 7x7). Lowers ``min_input_size`` to 4x4.
        dropout: Dropout before ``fc``.

    Example:
        >>> import torch
        >>> net = GoogLeNetNet(num_classes=10, small_input=True).eval()
        >>> net(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
        >>> net.forward_features(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 1024, 4, 4])
    """

    #: The convolution that sees the input, and the head: ``fc`` (timm's ``classifier``)
    #: and the auxiliary classifiers, which torchvision's weights leave untrained.
    #: ``classic_cnns.finetune`` and ``classic_cnns.weights`` read them.
    first_conv: ClassVar[str] = "conv1.conv"
    head_names: ClassVar[tuple[str, ...]] = ("fc", "aux1", "aux2")

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        *,
        aux_logits: bool = True,
        small_input: bool = False,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        check_in_channels(in_channels)
        for flag, value in (("aux_logits", aux_logits), ("small_input", small_input)):
            check_flag(flag, value)
        # No classes, no auxiliary heads: what reset_classifier(0) leaves.
        self.aux_logits = aux_logits and check_num_classes(num_classes) > 0
        if small_input:
            self.conv1 = BasicConv2d(in_channels, 64, kernel_size=3, stride=1, padding=1)
            self.maxpool1: nn.Module = nn.Identity()
            # maxpool3 needs 2 pixels, so maxpool2 needs 4 (see the registration below).
            self.min_input_size = (4, 4)
        else:
            self.conv1 = BasicConv2d(in_channels, 64, kernel_size=7, stride=2, padding=3)
            self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)

        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)

        self.aux1: InceptionAux | None = None
        self.aux2: InceptionAux | None = None
        if self.aux_logits:
            self.aux1, self.aux2 = InceptionAux(512, num_classes), InceptionAux(528, num_classes)

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.num_features = 1024
        self.num_classes = num_classes
        self.fc = linear_head(self.num_features, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                _trunc_normal_init(m)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _features(self, x: Tensor, with_aux: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:
        x = self.maxpool2(self.conv3(self.conv2(self.maxpool1(self.conv1(x)))))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if with_aux and self.aux1 is not None else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if with_aux and self.aux2 is not None else None
        x = self.maxpool4(self.inception4e(x))
        return self.inception5b(self.inception5a(x)), aux2, aux1

    @torch.jit.export  # forward goes through _features, so TorchScript would skip it
    def forward_features(self, x: Tensor) -> Tensor:
        """inception5b's feature maps, unpooled: ``(N, 1024, H', W')``; no auxiliary heads.

        Example:
            >>> import torch
            >>> net = googlenet(num_classes=10, small_input=True)
            >>> net.forward_features(torch.zeros(1, 3, 32, 32)).shape
            torch.Size([1, 1024, 4, 4])
        """
        return self._features(x, with_aux=False)[0]

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Average the maps, then dropout and ``fc`` (``pre_logits``: no ``fc``, ``(N, 1024)``).

        Example:
            >>> import torch
            >>> net = googlenet(num_classes=10, small_input=True).eval()
            >>> maps = net.forward_features(torch.zeros(1, 3, 32, 32))
            >>> net.forward_head(maps).shape, net.forward_head(maps, pre_logits=True).shape
            (torch.Size([1, 10]), torch.Size([1, 1024]))
        """
        x = self.dropout(self.avgpool(x).flatten(1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: Tensor) -> Tensor | GoogLeNetOutputs:
        """Logits ``(N, num_classes)``; in training with auxiliary heads, a named tuple of three.

        In training mode with ``aux_logits=True``, a :class:`GoogLeNetOutputs`
        ``(logits, aux_logits2, aux_logits1)`` (torchvision's type, fields and order), each
        ``(N, num_classes)``, for the task to weight the auxiliary losses; in eval mode, or
        without the auxiliary heads, the logits alone (torchvision's ``eager_outputs``).
        After ``reset_classifier(0)``, the features ``(N, 1024)``.

        Example:
            >>> import torch
            >>> net = GoogLeNetNet(num_classes=10, small_input=True).train()
            >>> out = net(torch.zeros(2, 3, 32, 32))
            >>> out.logits.shape, out.aux_logits2.shape, out.aux_logits1.shape
            (torch.Size([2, 10]), torch.Size([2, 10]), torch.Size([2, 10]))
            >>> logits, aux2, aux1 = out  # a tuple still
            >>> net.eval()(torch.zeros(2, 3, 32, 32)).shape
            torch.Size([2, 10])
        """
        with_aux = self.training and self.aux_logits
        features, aux2, aux1 = self._features(x, with_aux)
        logits = self.forward_head(features)
        if aux1 is not None and aux2 is not None:
            return GoogLeNetOutputs(logits, aux2, aux1)
        return logits

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``fc`` (and the auxiliary heads' ``fc2``) with fresh layers for ``num_classes``.

        The auxiliary outputs are reset too, so that their losses match the new labels.
        With 0 classes ``fc`` becomes an identity and the auxiliary heads, which would have
        nothing to predict, are removed (as torchvision does for ``aux_logits=False``), so
        that ``forward`` returns the pooled features ``(N, 1024)`` in training too.

        Example:
            >>> net = googlenet()
            >>> net.reset_classifier(10)
            >>> net.fc.out_features, net.aux1.fc2.out_features
            (10, 10)
            >>> net.reset_classifier(0)
            >>> net.fc, net.aux1
            (Identity(), None)
        """
        with same_placement(self):
            self.fc = linear_head(self.num_features, num_classes, _trunc_normal_init)
            for aux in (self.aux1, self.aux2):
                if aux is not None and num_classes:
                    aux.fc2 = nn.Linear(aux.fc2.in_features, num_classes)
                    _trunc_normal_init(aux.fc2)
        self.num_classes = num_classes
        if num_classes == 0:
            self.aux_logits = False
            self.aux1 = self.aux2 = None


@register_model(  # type: ignore[arg-type]
    family="googlenet",
    paper=_PAPER,
    year=2014,
    url=_URL,
    input_size=(3, 224, 224),
    # An unpadded 3x3 stride-2 max pool needs 2 pixels even with ceil_mode, so maxpool3 needs
    # 2, maxpool2 4, maxpool1 8 and conv1 (7x7/2) 15; the rest, aux heads included, take 1.
    min_input_size=(15, 15),
    num_params=6_624_904,
    num_classes=1000,
)
def googlenet(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> GoogLeNetNet:
    """GoogLeNet (Inception v1): 6.6M parameters, plus 6.4M in the auxiliary heads.

    Keyword arguments are :class:`GoogLeNetNet`'s options, its keyword-only arguments.

    ``num_params`` counts the network used at inference, without the auxiliary heads
    (as torchvision does); the default build, with ``aux_logits=True``, has 13,004,888.

    Example:
        >>> import torch
        >>> net = googlenet(num_classes=10, small_input=True).train()
        >>> [t.shape[1] for t in net(torch.zeros(2, 3, 32, 32))]
        [10, 10, 10]
    """
    return GoogLeNetNet(num_classes, in_channels, **kwargs)
