"""AlexNet (Krizhevsky, Sutskever and Hinton, 2012) in torchvision's layout.

"ImageNet Classification with Deep Convolutional Neural Networks", NeurIPS 2012.
Like torchvision, this is the single-GPU form of Krizhevsky's follow-up "One weird
trick for parallelizing convolutional neural networks" (arXiv 1404.5997): five
convolutions of 64-192-384-256-256 channels instead of the paper's 96-256-384-384-256
split over two GPUs, no local response normalisation, and an adaptive 6x6 average
pool in front of the classifier so that other input sizes work too. The fourth
convolution's 256 channels are those of Krizhevsky's single-GPU cuda-convnet2
configuration; the follow-up's footnote gives 384 (pytorch/vision#463, #704).

============  ================  ========  =====  ======  ======
Module        Layer             Features  Size   Kernel  Stride
============  ================  ========  =====  ======  ======
-             input             3         224    -       -
features.0    convolution       64        55     11x11   4
features.2    max pooling       64        27     3x3     2
features.3    convolution       192       27     5x5     1
features.5    max pooling       192       13     3x3     2
features.6    convolution       384       13     3x3     1
features.8    convolution       256       13     3x3     1
features.10   convolution       256       13     3x3     1
features.12   max pooling       256       6      3x3     2
avgpool       adaptive average  256       6      -       -
classifier.1  fully connected   4096      -      -       -
classifier.4  fully connected   4096      -      -       -
classifier.6  fully connected   classes   -      -       -
============  ================  ========  =====  ======  ======

A ReLU follows every convolution and the first two linear layers, and dropout comes
before those two (``classifier.0`` and ``classifier.3``), as in torchvision; the paper puts
dropout on those layers' outputs. That is 61,100,840
parameters for 3 channels and 1000 classes, exactly torchvision's, and torchvision's
state dicts load with ``strict=True``. The smallest input is 63x63:
the stride-4 stem and three 3x3/2 pools leave a 1x1 map there and nothing at 62.

``small_input=True`` swaps the 11x11/4 stem for a 3x3/1 convolution (same index,
same 64 channels) and keeps everything else, so every torchvision weight but
``features.0`` still fits. At 32x32 the three pools give 15, 7 and 3 pixels (13, 6,
2 at 28x28), so no pool has to go; the smallest input becomes 15x15. The 3x3 map is
replicated to 6x6 by the adaptive pool, which keeps the classifier, and its
parameter count, unchanged.

Example:
    >>> import torch
    >>> from classic_cnns.nets.alexnet import alexnet
    >>> net = alexnet(num_classes=10, small_input=True).eval()
    >>> net(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    >>> net.min_input_size
    (15, 15)
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from classic_cnns._checks import check_flag
from classic_cnns.nets._layers import check_in_channels, linear_head, same_placement
from classic_cnns.registry import register_model

__all__ = ["AlexNetNet", "alexnet"]

_PAPER = "ImageNet Classification with Deep Convolutional Neural Networks"
_URL = "https://papers.nips.cc/paper/2012/hash/c399862d3b9d6b76c8436e924a68c45b-Abstract.html"


class AlexNetNet(nn.Module):
    """The AlexNet network: five convolutions, three max pools, three linear layers.

    Attribute names and ``nn.Sequential`` indices are torchvision's, so
    ``net.load_state_dict(torchvision.models.alexnet().state_dict())`` works.
    :meth:`forward_features` returns the last max pool's maps; :meth:`forward_head` pools
    them to 6x6 and runs ``classifier``, whose first six layers (timm's "pre-logits")
    end in the 4096 features that the final layer ``classifier.6`` sees: ``num_features``.

    Args:
        num_classes: Output classes.
        in_channels: Input channels; only the first convolution depends on it.
        small_input: Use a 3x3 stride-1 first convolution for 28-32 pixel images;
            the smallest accepted input drops from 63x63 to 15x15.
        dropout: Dropout probability before the first two linear layers.

    Example:
        >>> import torch
        >>> net = AlexNetNet(num_classes=10, in_channels=1, small_input=True)
        >>> net(torch.zeros(1, 1, 32, 32)).shape
        torch.Size([1, 10])
        >>> net.min_input_size
        (15, 15)
        >>> net.forward_features(torch.zeros(1, 1, 32, 32)).shape
        torch.Size([1, 256, 3, 3])
    """

    #: The convolution that sees the input, and the final classifier (timm's ``first_conv``
    #: and ``classifier``); ``classic_cnns.finetune`` and ``classic_cnns.weights`` read them.
    first_conv: ClassVar[str] = "features.0"
    head_names: ClassVar[tuple[str, ...]] = ("classifier.6",)

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        *,
        small_input: bool = False,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        check_in_channels(in_channels)
        check_flag("small_input", small_input)
        stem = (
            nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1)
            if small_input
            else nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2)
        )
        self.features = nn.Sequential(
            stem,
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.num_features = 4096
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, self.num_features),
            nn.ReLU(inplace=True),
            linear_head(self.num_features, num_classes),
        )
        self.num_classes = num_classes
        if small_input:
            # Without the stride-4 stem only the three 3x3/2 pools shrink the map:
            # 15 -> 7 -> 3 -> 1, and 14 would leave nothing after the last one.
            self.min_input_size = (15, 15)
        # Weights keep PyTorch's default initialisation, as torchvision's AlexNet does.

    def forward_features(self, x: Tensor) -> Tensor:
        """The convolutional feature maps, unpooled: ``(N, 256, H', W')``.

        Example:
            >>> import torch
            >>> net = alexnet(num_classes=10, small_input=True)
            >>> net.forward_features(torch.zeros(1, 3, 32, 32)).shape
            torch.Size([1, 256, 3, 3])
        """
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Pool to 6x6, then the classifier; ``pre_logits`` stops before its last layer.

        With ``pre_logits=True`` the result is ``(N, num_features)``, the 4096 features
        (after dropout and ReLU) that the final layer ``classifier.6`` sees.

        Example:
            >>> import torch
            >>> net = alexnet(num_classes=10, small_input=True).eval()
            >>> maps = net.forward_features(torch.zeros(1, 3, 32, 32))
            >>> net.forward_head(maps).shape, net.forward_head(maps, pre_logits=True).shape
            (torch.Size([1, 10]), torch.Size([1, 4096]))
        """
        x = self.avgpool(x).flatten(1)
        last = len(self.classifier) - 1
        for i, layer in enumerate(self.classifier):  # a loop TorchScript can unroll
            if i < last or not pre_logits:
                x = layer(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, num_classes)`` of images ``(N, in_channels, H, W)``.

        H and W must be at least ``min_input_size`` (63, or 15 with ``small_input``). The
        same as ``forward_head(forward_features(x))``; after ``reset_classifier(0)``, the
        features ``(N, 4096)``.

        Example:
            >>> import torch
            >>> net = AlexNetNet(num_classes=10, small_input=True).eval()
            >>> net(torch.zeros(2, 3, 32, 32)).shape
            torch.Size([2, 10])
        """
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last linear layer with a fresh one for ``num_classes`` classes (0: identity).

        Example:
            >>> net = AlexNetNet(num_classes=1000)
            >>> net.reset_classifier(10)
            >>> net.classifier[6].out_features, net.num_classes
            (10, 10)
        """
        with same_placement(self):
            self.classifier[6] = linear_head(self.num_features, num_classes)
        self.num_classes = num_classes


@register_model(
    family="alexnet",
    paper=_PAPER,
    year=2012,
    url=_URL,
    input_size=(3, 224, 224),
    min_input_size=(63, 63),
    num_params=61_100_840,
    num_classes=1000,
)
def alexnet(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> AlexNetNet:
    """AlexNet as torchvision builds it: 61,100,840 parameters, inputs of 63x63 or more.

    Keyword arguments are :class:`AlexNetNet`'s options, its keyword-only arguments.

    Example:
        >>> import torch
        >>> net = alexnet(num_classes=10)
        >>> net(torch.zeros(1, 3, 63, 63)).shape
        torch.Size([1, 10])
    """
    return AlexNetNet(num_classes, in_channels, **kwargs)
