"""LeNet-5 against the layer table of the source notes (000_ad7f55e3cfd12a08.txt)."""

import pytest
import torch
from torch import nn

from classic_cnns import LeNet5, create_model
from classic_cnns.nets import LeNet5Net

# (layer, type, output shape (C, H, W) or features, kernel, stride, activation, parameters)
SEED_TABLE = [
    ("c1", nn.Conv2d, (6, 28, 28), 5, 1, nn.Tanh, 156),
    ("s2", nn.AvgPool2d, (6, 14, 14), 2, 2, nn.Tanh, 0),
    ("c3", nn.Conv2d, (16, 10, 10), 5, 1, nn.Tanh, 2_416),
    ("s4", nn.AvgPool2d, (16, 5, 5), 2, 2, nn.Tanh, 0),
    ("c5", nn.Conv2d, (120, 1, 1), 5, 1, nn.Tanh, 48_120),
    ("f6", nn.Linear, (84,), None, None, nn.Tanh, 10_164),
    ("fc", nn.Linear, (10,), None, None, None, 850),
]


def test_lenet5_layers_follow_the_seed_table() -> None:
    net = LeNet5Net(num_classes=10, in_channels=1)
    outputs = {}
    for name, *_ in SEED_TABLE:
        getattr(net, name).register_forward_hook(
            lambda m, i, o, name=name: outputs.__setitem__(name, o.shape[1:])
        )
    net(torch.zeros(1, 1, 32, 32))
    for name, kind, shape, kernel, stride, act, params in SEED_TABLE:
        layer = getattr(net, name)
        first = layer[0] if isinstance(layer, nn.Sequential) else layer
        assert isinstance(first, kind), name
        assert tuple(outputs[name]) == shape, name
        if kernel is not None:
            assert first.kernel_size in (kernel, (kernel, kernel)), name
            assert first.stride in (stride, (stride, stride)), name
        if act is not None:
            assert isinstance(layer[-1], act), name
        assert sum(p.numel() for p in layer.parameters()) == params, name
    assert sum(p.numel() for p in net.parameters()) == 61_706


def test_modern_variant_uses_relu_and_max_pooling_with_the_same_shapes() -> None:
    net = create_model("lenet5_modern").net
    kinds = {type(m) for m in net.modules()}
    assert nn.ReLU in kinds and nn.MaxPool2d in kinds
    assert nn.Tanh not in kinds and nn.AvgPool2d not in kinds
    assert sum(p.numel() for p in net.parameters()) == 61_706
    assert net.forward_features(torch.zeros(2, 1, 32, 32)).shape == (2, 120, 1, 1)  # C5


def test_batch_norm_variant_normalises_every_conv_and_f6() -> None:
    net = create_model("lenet5_bn").net
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d)]
    assert [m.num_features for m in norms] == [6, 16, 120, 84]


@pytest.mark.parametrize("in_channels,num_classes", [(1, 10), (3, 100), (4, 2)])
def test_any_channels_and_classes(in_channels: int, num_classes: int) -> None:
    model = LeNet5(num_classes=num_classes, in_channels=in_channels)
    out = model(torch.randn(2, in_channels, 32, 32))
    assert out.shape == (2, num_classes)
    # Only C1 depends on the channels, only the output layer on the classes.
    assert model.net.c1[0].weight.shape == (6, in_channels, 5, 5)
    assert model.net.fc.weight.shape == (num_classes, 84)


def test_larger_inputs_are_pooled_to_the_c5_features() -> None:
    model = LeNet5()
    assert model(torch.randn(1, 1, 64, 48)).shape == (1, 10)


def test_too_small_image_is_refused_before_any_layer_runs() -> None:
    with pytest.raises(
        ValueError, match=r"lenet5 needs images of at least 32x32 \(H x W\); got 28x28"
    ):
        LeNet5()(torch.zeros(2, 1, 28, 28))


def test_wrong_channel_count_is_named() -> None:
    with pytest.raises(ValueError, match=r"built for 1 input channel\(s\); got a batch with 3"):
        LeNet5()(torch.zeros(2, 3, 32, 32))


def test_wrong_rank_and_dtype_are_named() -> None:
    with pytest.raises(ValueError, match=r"shape \(N, 1, H, W\); got shape \(1, 32, 32\)"):
        LeNet5()(torch.zeros(1, 32, 32))
    with pytest.raises(TypeError, match=r"got dtype torch\.uint8"):
        LeNet5()(torch.zeros(1, 1, 32, 32, dtype=torch.uint8))
