"""DenseNet (Huang, Liu, van der Maaten and Weinberger, 2016): densely connected networks.

Paper: "Densely Connected Convolutional Networks", https://arxiv.org/abs/1608.06993.

Inside a dense block every layer receives the concatenation of all earlier feature maps
and adds ``growth_rate`` (k) new ones. All networks here are DenseNet-BC: each layer is
BN-ReLU-1x1 conv (to 4k channels, the bottleneck "B") then BN-ReLU-3x3 conv (to k), and
each transition between blocks halves the channels ("C", compression 0.5) with a 1x1
convolution before 2x2 average pooling.

The ImageNet networks (``densenet121`` to ``densenet201``) follow torchvision's layout
(``features`` with ``conv0``, ``norm0``, ``relu0``, ``pool0``, ``denseblock1``,
``transition1``, ..., ``norm5``, then ``classifier``), initialisation and parameter
names, so torchvision state dicts load with ``strict=True``. ``densenet_bc_100`` is the
paper's CIFAR network (L=100, k=12): a 3x3 convolution to 2k channels with no norm or
pooling, and three dense blocks of 16 layers, 0.77M parameters (0.8M in the paper).

``memory_efficient=True`` (torchvision's option, after Pleiss et al., "Memory-Efficient
Implementation of DenseNets", https://arxiv.org/abs/1707.06990) keeps a block's feature
maps as a list and recomputes each layer's concatenation, batch norm, ReLU and 1x1
convolution in the backward pass (``torch.utils.checkpoint``) instead of storing them:
the stored activations grow linearly with the block's depth instead of quadratically,
for about one more forward pass of those layers. The outputs, the gradients and the batch
norm's running statistics are the same as without it. That last point differs from
torchvision on purpose: its recomputation updates the first batch norm's running mean and
variance a second time in each training step (``num_batches_tracked`` counts 2 per step), so
its statistics drift from those of its plain path; here the recomputation leaves them alone.
Measured peak memory of one CPU training step (``python benchmarks/dev.py memory``, one
thread, each in a fresh process): DenseNet-121, batch 8 at 224x224, 1118 MiB without and
679 MiB with it (torchvision's, measured earlier by a similar script: 1098 and 680);
DenseNet-BC-100, batch 64 at 32x32, 2288 and 1119 MiB. As torchvision's, such a network
neither traces with ``torch.fx`` (``create_feature_extractor``) nor differentiates under
``torch.func.grad`` (``vjp``, ``jacrev``); the same weights load into one built without it.

Example:
    >>> import torch
    >>> from classic_cnns.nets.densenet import DenseNetNet
    >>> net = DenseNetNet(12, (2, 2, 2), 24, num_classes=10, stem="cifar")  # a small BC net
    >>> net.eval()(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    >>> net.forward_features(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 48, 8, 8])
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from classic_cnns._checks import check_flag, is_number
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
    "DenseBlock",
    "DenseLayer",
    "DenseNetNet",
    "Transition",
    "densenet121",
    "densenet161",
    "densenet169",
    "densenet201",
    "densenet_bc_100",
]

_PAPER = "Densely Connected Convolutional Networks"
_URL = "https://arxiv.org/abs/1608.06993"
_STEMS = ("imagenet", "cifar")


@contextmanager
def _running_stats_frozen(norm: nn.BatchNorm2d) -> Iterator[None]:
    # Checkpointing runs the layer's forward again in the backward pass; in training mode
    # that would update the batch norm's running statistics a second time. With momentum 0
    # the update is 1 * running + 0 * batch, the same values; the batch count is put back.
    momentum, count = norm.momentum, norm.num_batches_tracked
    before = None if count is None else count.clone()
    norm.momentum = 0.0
    try:
        yield
    finally:
        norm.momentum = momentum
        if count is not None and before is not None:
            count.copy_(before)


class DenseLayer(nn.Module):
    """A bottleneck layer that appends ``growth_rate`` new channels to its input.

    Args:
        in_channels: Input channels (the block's input plus all earlier layers' outputs).
        growth_rate: New channels (k).
        bn_size: Bottleneck width as a multiple of k (4 in the paper).
        drop_rate: Dropout on the new channels.
        memory_efficient: Recompute the bottleneck (concatenation, BN, ReLU, 1x1 conv) in the
            backward pass instead of storing it, when gradients are needed (under
            ``torch.compile``, the compiler chooses what to recompute).

    Example:
        >>> import torch
        >>> DenseLayer(64, growth_rate=32)(torch.zeros(1, 64, 8, 8)).shape
        torch.Size([1, 96, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        growth_rate: int,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
    ) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = conv1x1(in_channels, bn_size * growth_rate)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(bn_size * growth_rate, growth_rate)
        self.drop_rate = drop_rate
        self.memory_efficient = memory_efficient

    def _bottleneck(self, features: list[Tensor]) -> Tensor:
        return self.conv1(self.relu1(self.norm1(torch.cat(features, 1))))

    @torch.jit.unused
    def _checkpointed_bottleneck(self, features: list[Tensor]) -> Tensor:
        def bottleneck(*inputs: Tensor) -> Tensor:
            return self._bottleneck(list(inputs))

        out: Tensor = checkpoint(
            bottleneck,
            *features,
            use_reentrant=False,
            context_fn=lambda: (nullcontext(), _running_stats_frozen(self.norm1)),
        )
        return out

    def new_features(self, features: list[Tensor]) -> Tensor:
        """The ``growth_rate`` new maps computed from all earlier ones (a list, not joined).

        Example:
            >>> import torch
            >>> layer = DenseLayer(64, growth_rate=32)
            >>> layer.new_features([torch.zeros(1, 24, 8, 8), torch.zeros(1, 40, 8, 8)]).shape
            torch.Size([1, 32, 8, 8])
        """
        # torch.compile cannot trace the checkpoint's context_fn; its own partitioner
        # chooses what to recompute in the backward pass instead.
        compiling = torch.compiler.is_compiling()
        if self.memory_efficient and not compiling and any(t.requires_grad for t in features):
            if torch.jit.is_scripting():
                raise RuntimeError("memory_efficient=True does not work in TorchScript")
            new = self._checkpointed_bottleneck(features)
        else:
            new = self._bottleneck(features)
        new = self.conv2(self.relu2(self.norm2(new)))
        if self.drop_rate > 0:
            new = F.dropout(new, p=self.drop_rate, training=self.training)
        return new

    def forward(self, x: Tensor) -> Tensor:
        """The input with ``growth_rate`` new maps appended: ``(N, C + growth_rate, H, W)``.

        Example:
            >>> import torch
            >>> DenseLayer(8, growth_rate=4)(torch.zeros(1, 8, 5, 5)).shape
            torch.Size([1, 12, 5, 5])
        """
        return torch.cat([x, self.new_features([x])], 1)


class DenseBlock(nn.ModuleDict):
    """Dense layers ``denselayer1``, ``denselayer2``, ...; each sees all earlier outputs.

    The maps are kept as a list and joined once at the end (and inside each layer's
    bottleneck), so that with ``memory_efficient`` no concatenation is stored.

    Args:
        num_layers: Dense layers in the block.
        in_channels: Channels of the block's input.
        growth_rate: Channels each layer adds (k).
        bn_size: Bottleneck width as a multiple of k.
        drop_rate: Dropout after each dense layer.
        memory_efficient: Checkpoint each layer's bottleneck (see :class:`DenseLayer`).

    Example:
        >>> import torch
        >>> DenseBlock(3, 16, growth_rate=12)(torch.zeros(1, 16, 8, 8)).shape
        torch.Size([1, 52, 8, 8])
    """

    def __init__(
        self,
        num_layers: int,
        in_channels: int,
        growth_rate: int,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        memory_efficient: bool = False,
    ) -> None:
        super().__init__()
        for j in range(num_layers):
            layer = DenseLayer(
                in_channels + j * growth_rate, growth_rate, bn_size, drop_rate, memory_efficient
            )
            self.add_module(f"denselayer{j + 1}", layer)

    def forward(self, x: Tensor) -> Tensor:
        """The input and every layer's new maps: ``(N, C + num_layers * growth_rate, H, W)``.

        Example:
            >>> import torch
            >>> DenseBlock(2, 8, growth_rate=4)(torch.zeros(1, 8, 5, 5)).shape
            torch.Size([1, 16, 5, 5])
        """
        features = [x]
        for layer in self.values():
            features.append(layer.new_features(features))  # type: ignore[operator]
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """BN-ReLU-1x1 conv to ``out_channels``, then 2x2 average pooling (halves H and W).

    Args:
        in_channels: Input channels.
        out_channels: Output channels (``floor(compression * in_channels)``).

    Example:
        >>> import torch
        >>> Transition(256, 128)(torch.zeros(1, 256, 8, 8)).shape
        torch.Size([1, 128, 4, 4])
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = conv1x1(in_channels, out_channels)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNetNet(nn.Module):
    """A DenseNet-BC: stem, dense blocks joined by transitions, BN-ReLU, pooling, classifier.

    :meth:`forward_features` returns the final BN-ReLU maps; :meth:`forward_head` averages
    them and applies ``classifier``.

    Args:
        growth_rate: Channels each layer adds (k).
        block_config: Layers per dense block, e.g. ``(6, 12, 24, 16)`` for DenseNet-121.
        num_init_features: Channels of the stem convolution.
        num_classes: Output classes.
        in_channels: Input channels (only the stem convolution changes).
        bn_size: Bottleneck width as a multiple of k.
        compression: Channel reduction of each transition (theta).
        drop_rate: Dropout after each dense layer.
        stem: ``"imagenet"`` (7x7 stride-2 conv, BN, ReLU, 3x3 stride-2 max pool) or
            ``"cifar"`` (the paper's CIFAR stem, a lone 3x3 convolution).
        small_input: The ImageNet stem for 28-32 pixel images: a 3x3 stride-1 ``conv0``,
            BN and ReLU without pooling, so only ``conv0`` differs from torchvision's. The
            CIFAR stem is small already.
        memory_efficient: Recompute each dense layer's bottleneck in the backward pass
            instead of storing it: much less activation memory in training, same results
            (not in TorchScript).

    Example:
        >>> import torch
        >>> net = DenseNetNet(12, (4, 4, 4), 24, num_classes=10, stem="cifar")
        >>> net(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
        >>> net.forward_features(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 90, 8, 8])
    """

    #: The convolution that sees the input, and the final classifier (timm's ``first_conv``
    #: and ``classifier``); ``classic_cnns.finetune`` and ``classic_cnns.weights`` read them.
    first_conv: ClassVar[str] = "features.conv0"
    head_names: ClassVar[tuple[str, ...]] = ("classifier",)

    def __init__(
        self,
        growth_rate: int,
        block_config: Sequence[int],
        num_init_features: int,
        num_classes: int = 1000,
        in_channels: int = 3,
        bn_size: int = 4,
        compression: float = 0.5,
        drop_rate: float = 0.0,
        stem: str = "imagenet",
        *,
        small_input: bool = False,
        memory_efficient: bool = False,
    ) -> None:
        super().__init__()
        check_in_channels(in_channels)
        check_counts(growth_rate=growth_rate, block_config=list(block_config),
                     num_init_features=num_init_features, bn_size=bn_size)  # fmt: skip
        if not (is_number(compression) and 0 < compression <= 1):
            raise ValueError(
                f"compression must be in (0, 1] (the paper's theta); got {compression!r}"
            )
        for flag, value in (("small_input", small_input), ("memory_efficient", memory_efficient)):
            check_flag(flag, value)
        if stem not in _STEMS:
            raise ValueError(f"stem must be one of {_STEMS}; got {stem!r}")
        if small_input and stem == "cifar":
            raise ValueError(
                "small_input=True changes the ImageNet stem; the CIFAR stem is small already"
            )
        imagenet_stem = stem == "imagenet" and not small_input  # 7x7/2 and a max pool
        layers: list[tuple[str, nn.Module]]
        if imagenet_stem:
            conv0 = nn.Conv2d(in_channels, num_init_features, 7, stride=2, padding=3, bias=False)
            layers = [("conv0", conv0)]
        else:
            layers = [("conv0", conv3x3(in_channels, num_init_features))]
        if stem != "cifar":
            layers += [("norm0", nn.BatchNorm2d(num_init_features)), ("relu0", nn.ReLU(True))]
        if imagenet_stem:
            layers.append(("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)))
        else:
            # Each transition's 2x2 pool needs 2 pixels; the stride-1 stem needs no more.
            self.min_input_size = (2 ** (len(block_config) - 1),) * 2
        self.features = nn.Sequential(OrderedDict(layers))

        channels = num_init_features
        for i, num_layers in enumerate(block_config):
            block = DenseBlock(
                num_layers, channels, growth_rate, bn_size, drop_rate, memory_efficient
            )
            self.features.add_module(f"denseblock{i + 1}", block)
            channels += num_layers * growth_rate
            if i != len(block_config) - 1:
                if (out := int(compression * channels)) < 1:
                    raise ValueError(
                        f"compression={compression!r} leaves transition{i + 1} "
                        f"int({compression!r} * {channels}) = {out} channels; expected at least 1"
                    )
                self.features.add_module(f"transition{i + 1}", Transition(channels, out))
                channels = out
        self.features.add_module(f"norm{len(block_config) + 1}", nn.BatchNorm2d(channels))

        self.num_features = channels
        self.num_classes = num_classes
        self.classifier = linear_head(channels, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.bias, 0)

    def forward_features(self, x: Tensor) -> Tensor:
        """The final BN-ReLU feature maps, unpooled: ``(N, num_features, H', W')``.

        Example:
            >>> import torch
            >>> net = densenet_bc_100()
            >>> net.forward_features(torch.zeros(1, 3, 32, 32)).shape
            torch.Size([1, 342, 8, 8])
        """
        return F.relu(self.features(x), inplace=True)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Average the maps, then ``classifier`` (``pre_logits``: ``(N, num_features)``).

        Example:
            >>> import torch
            >>> net = densenet_bc_100().eval()
            >>> maps = net.forward_features(torch.zeros(1, 3, 32, 32))
            >>> net.forward_head(maps).shape, net.forward_head(maps, pre_logits=True).shape
            (torch.Size([1, 10]), torch.Size([1, 342]))
        """
        x = F.adaptive_avg_pool2d(x, (1, 1)).flatten(1)
        return x if pre_logits else self.classifier(x)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, num_classes)`` of images ``(N, in_channels, H, W)``.

        The same as ``forward_head(forward_features(x))``; after ``reset_classifier(0)``,
        the pooled features ``(N, num_features)``.

        Example:
            >>> import torch
            >>> net = DenseNetNet(12, (2, 2, 2), 24, num_classes=10, stem="cifar")
            >>> net(torch.zeros(2, 3, 32, 32)).shape
            torch.Size([2, 10])
        """
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``classifier`` with a fresh layer for ``num_classes`` classes (0: identity).

        Example:
            >>> net = densenet_bc_100()
            >>> net.reset_classifier(100)
            >>> net.classifier.out_features
            100
        """
        with same_placement(self):
            self.classifier = linear_head(self.num_features, num_classes, _zero_bias)
        self.num_classes = num_classes


def _zero_bias(layer: nn.Linear) -> None:
    nn.init.constant_(layer.bias, 0)


# (growth rate k, layers per block, stem channels) of the paper's table 1 and torchvision.
_IMAGENET_CONFIGS: dict[str, tuple[int, tuple[int, ...], int]] = {
    "densenet121": (32, (6, 12, 24, 16), 64),
    "densenet161": (48, (6, 12, 36, 24), 96),
    "densenet169": (32, (6, 12, 32, 32), 64),
    "densenet201": (32, (6, 12, 48, 32), 64),
}

_IMAGENET = dict(
    family="densenet",
    paper=_PAPER,
    year=2016,
    url=_URL,
    input_size=(3, 224, 224),
    # Three 2x2 transitions need 8 pixels after the stem; its 7x7/2 conv and 3x3/2 max pool
    # give 8 from 29.
    min_input_size=(29, 29),
    num_classes=1000,
)


def _imagenet(
    name: str, num_classes: int, in_channels: int, options: dict[str, Any]
) -> DenseNetNet:
    growth_rate, block_config, num_init_features = _IMAGENET_CONFIGS[name]
    return DenseNetNet(
        growth_rate, block_config, num_init_features, num_classes, in_channels, **options
    )


# Every builder takes num_classes, in_channels and, as keywords, DenseNetNet's options: its
# keyword-only arguments.


@register_model(**_IMAGENET, num_params=7_978_856)  # type: ignore[arg-type]
def densenet121(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> DenseNetNet:
    """DenseNet-121 (k=32, blocks 6-12-24-16), 8.0M parameters.

    ``memory_efficient=True`` trains with much less activation memory (see the module
    docstring), as torchvision's option of the same name; every builder takes it.

    Example:
        >>> import torch
        >>> net = densenet121(num_classes=10, small_input=True).eval()
        >>> net(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 10])
    """
    return _imagenet("densenet121", num_classes, in_channels, kwargs)


@register_model(**_IMAGENET, num_params=28_681_000)  # type: ignore[arg-type]
def densenet161(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> DenseNetNet:
    """DenseNet-161 (k=48, blocks 6-12-36-24, 96 stem channels), 28.7M parameters.

    Example:
        >>> densenet161().num_features
        2208
    """
    return _imagenet("densenet161", num_classes, in_channels, kwargs)


@register_model(**_IMAGENET, num_params=14_149_480)  # type: ignore[arg-type]
def densenet169(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> DenseNetNet:
    """DenseNet-169 (k=32, blocks 6-12-32-32), 14.1M parameters.

    Example:
        >>> densenet169().num_features
        1664
    """
    return _imagenet("densenet169", num_classes, in_channels, kwargs)


@register_model(**_IMAGENET, num_params=20_013_928)  # type: ignore[arg-type]
def densenet201(*, num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> DenseNetNet:
    """DenseNet-201 (k=32, blocks 6-12-48-32), 20.0M parameters.

    Example:
        >>> densenet201().num_features
        1920
    """
    return _imagenet("densenet201", num_classes, in_channels, kwargs)


# Two transitions need 4 pixels after the stride-1 stem.
_CIFAR = {**_IMAGENET, "input_size": (3, 32, 32), "min_input_size": (4, 4), "num_classes": 10}


@register_model(**_CIFAR, num_params=769_162)  # type: ignore[arg-type]
def densenet_bc_100(
    *, num_classes: int = 10, in_channels: int = 3, small_input: bool = True, **kwargs: Any
) -> DenseNetNet:
    """The paper's CIFAR DenseNet-BC (L=100, k=12): three blocks of 16 layers, 0.77M parameters.

    Depth 100 counts the stem, 3 x 16 x 2 convolutions in the blocks, the two transitions
    and the classifier.

    Example:
        >>> import torch
        >>> densenet_bc_100()(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    options = small_stem_only("densenet_bc_100", kwargs | {"small_input": small_input})
    return DenseNetNet(12, (16, 16, 16), 24, num_classes, in_channels, stem="cifar", **options)
