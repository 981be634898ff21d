"""Every registered network: the zoo's facts, gradients at its smallest input, exact minimum
sizes, parameter counts (torchvision's and the papers'), the first convolution alone following
``in_channels``, and torchvision's weights giving torchvision's logits.

Each check runs over ``list_models()`` (the timm/torchvision API is ``tests/test_contract.py``'s;
what one family alone does is ``tests/test_nets_families.py``'s and ``tests/test_lenet.py``'s).
The 100-million-parameter ImageNet heads dominate the cost, so parameter counts and state-dict
shapes are taken on the meta device, torchvision's tensors are handed over with
``assign=True``, and the VGGs' minimum size (which their features alone decide) is checked
with their light 32x32 head.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torchvision.models as tvm
from torch import Tensor, nn

from classic_cnns import create_model, list_models, model_info
from classic_cnns.weights import first_conv_name
from conftest import param_count, train_loss

NAMES = list_models()
TORCHVISION = sorted(set(NAMES) & set(tvm.list_models(module=tvm)))
# ImageNet networks with a stem (or, for VGG, a head) for 28-32 pixel images.
SMALL = [
    n for n in NAMES if "small_input" in model_info(n).options and model_info(n).input_size[1] > 32
]
VGGS = [n for n in NAMES if model_info(n).family == "vgg"]
# The papers' tables, in millions, to the digits they print.
PAPER_PARAMS = {
    "resnet20": "0.27",
    "resnet32": "0.46",
    "resnet44": "0.66",
    "resnet56": "0.85",
    "resnet110": "1.7",
    "densenet_bc_100": "0.8",
}
# (name, network arguments) trained a step at the smallest input: every default build but
# the VGGs' 100-million-parameter ImageNet heads (vgg11 stands for them), and every small stem.
TRAINED = [
    *[(n, {}) for n in NAMES if n not in VGGS or n == "vgg11"],
    *[(n, {"small_input": True}) for n in SMALL],
]

pytestmark = pytest.mark.usefixtures("one_thread")


def _one_pixel_less_fails(model: Any, channels: int) -> None:
    # The network fails below its minimum, and the task names the minimum before it runs.
    h, w = model.min_input_size
    for smaller in ((h - 1, w), (h, w - 1)):
        with pytest.raises(RuntimeError), torch.no_grad():
            model.net(torch.zeros(2, channels, *smaller))
        with pytest.raises(ValueError, match=f"at least {h}x{w}"):
            model(torch.zeros(2, channels, *smaller))


def test_the_zoo_and_its_facts() -> None:
    families: dict[str, list[str]] = {}
    for name in NAMES:
        families.setdefault(model_info(name).family, []).append(name)
    assert families == {
        "alexnet": ["alexnet"],
        "densenet": ["densenet121", "densenet161", "densenet169", "densenet201", "densenet_bc_100"],
        "googlenet": ["googlenet"],
        "lenet": ["lenet5", "lenet5_bn", "lenet5_modern"],
        "nin": ["nin"],
        "resnet": [f"resnet{d}" for d in (18, 20, 32, 34, 44, 50, 56, 101, 110, 152)],
        "vgg": [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")],
    }
    assert model_info("alexnet").min_input_size == (63, 63)
    assert all(model_info(n).min_input_size == (32, 32) for n in VGGS)
    assert model_info("nin").min_input_size == (4, 4)
    assert model_info("nin").input_size == (3, 32, 32)
    for name in TORCHVISION:
        assert model_info(name).input_size == (3, 224, 224) and model_info(name).num_classes == 1000
    for name in PAPER_PARAMS:
        assert model_info(name).input_size == (3, 32, 32) and model_info(name).num_classes == 10


@pytest.mark.parametrize(("name", "kwargs"), TRAINED)
def test_gradients_reach_every_parameter_at_the_smallest_input(
    name: str, kwargs: dict[str, bool]
) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_channels=1, **kwargs).train()
    if not kwargs:
        assert model.min_input_size == model_info(name).min_input_size
    elif name == "alexnet":
        assert model.min_input_size == (15, 15)  # the small stem
    # Batch statistics of two samples on 1x1 maps have ~0 variance, and their gradients
    # overflow over 150 layers; that is batch norm's limit, not the network's, so use
    # running statistics here (the network stays in training mode: aux heads, dropout).
    for m in model.net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    x = torch.randn(2, 1, *model.min_input_size)
    out = model(x)
    logits = out[0] if isinstance(out, tuple) else out
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    if name == "googlenet":
        assert isinstance(out, tuple) and [o.shape for o in out] == [(2, 10)] * 3
    train_loss(out, torch.tensor([0, 9])).backward()
    for pname, p in model.net.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert p.grad.shape == p.shape and torch.isfinite(p.grad).all(), pname
    _one_pixel_less_fails(model, 1)


@pytest.mark.parametrize("name", NAMES)
def test_the_registered_minimum_size_is_exact(name: str) -> None:
    kwargs = {"small_input": True} if name in VGGS else {}  # the features decide VGG's
    model = create_model(name, num_classes=10, in_channels=1, **kwargs).train()
    assert model.min_input_size == model_info(name).min_input_size
    with torch.no_grad():  # in training mode, so that GoogLeNet's aux heads run too
        out = model(torch.randn(2, 1, *model.min_input_size))
    assert isinstance(out, tuple) == (name == "googlenet")
    _one_pixel_less_fails(model, 1)


@pytest.mark.parametrize("name", [*TORCHVISION, *PAPER_PARAMS, "nin"])
def test_parameter_counts_are_torchvisions_and_the_papers(name: str) -> None:
    info = model_info(name)
    kwargs = {"aux_logits": False} if name == "googlenet" else {}  # training-only heads
    with torch.device("meta"):  # counting needs shapes only; skips 100M random draws
        count = param_count(info.build_net(num_classes=info.num_classes, in_channels=3, **kwargs))
    assert count == info.num_params
    if name in TORCHVISION:
        assert count == tvm.get_model_weights(name).DEFAULT.meta["num_params"]
    elif name in PAPER_PARAMS:
        paper = PAPER_PARAMS[name]
        digits = sum(c.isdigit() for c in paper.lstrip("0."))
        assert f"{count / 1e6:.{digits}g}" == paper
    else:
        assert count == 966_986  # NiN's CIFAR-10 network, as the authors' Caffe model


@pytest.mark.parametrize(
    ("name", "kwargs"), [*[(n, {}) for n in NAMES], *[(n, {"small_input": True}) for n in SMALL]]
)
def test_in_channels_changes_only_the_first_convolution(name: str, kwargs: dict[str, bool]) -> None:
    info = model_info(name)
    with torch.device("meta"):
        nets = [info.build_net(in_channels=c, **kwargs) for c in (1, 3)]
    shapes = [{k: v.shape for k, v in net.state_dict().items()} for net in nets]
    assert shapes[0].keys() == shapes[1].keys()
    differ = [k for k in shapes[0] if shapes[0][k] != shapes[1][k]]
    assert differ == [f"{first_conv_name(nets[0])}.weight"]


def _torchvision(name: str) -> nn.Module:
    kwargs: dict[str, Any] = {}
    if name == "googlenet":
        kwargs = {"aux_logits": False, "init_weights": True, "transform_input": False}
    tv = getattr(tvm, name)(weights=None, num_classes=10, **kwargs)
    # Random batch-norm statistics and affine terms, so that eval mode exercises them (and eps).
    g = torch.Generator().manual_seed(0)
    for m in tv.modules():
        if isinstance(m, nn.BatchNorm2d):
            for t in (m.weight, m.bias, m.running_mean):
                t.data.copy_(torch.randn(t.shape, generator=g) * 0.1 + (t is m.weight))
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return tv.eval()


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_weights_load_strictly_and_give_its_logits_and_pre_logits(name: str) -> None:
    torch.manual_seed(0)
    tv = _torchvision(name)
    kwargs = {"aux_logits": False} if name == "googlenet" else {}
    # Built on the meta device and given torchvision's tensors (assign=True), our network
    # costs neither initialisation nor a copy of a 100-million-parameter head.
    with torch.device("meta"):
        net = model_info(name).build_net(num_classes=10, in_channels=3, **kwargs)
    net.load_state_dict(tv.state_dict(), strict=True, assign=True)
    net.eval()
    # An odd size checks the rounding of every strided and ceil-mode layer.
    size = max(33, *model_info(name).min_input_size)
    x = torch.randn(2, 3, size, size)
    last = [m for m in tv.modules() if isinstance(m, nn.Linear)][-1]  # the final classifier
    seen: list[Tensor] = []
    hook = last.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    with torch.no_grad():
        theirs, ours = tv(x), net(x)
        pre = net.forward_head(net.forward_features(x), pre_logits=True)
    hook.remove()
    assert theirs.abs().max() > 1e-3
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    # The features the final classifier sees (e.g. VGG's 4096) are torchvision's too.
    assert pre.shape == (2, net.num_features) == seen[0].shape
    torch.testing.assert_close(pre, seen[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", TORCHVISION)
def test_every_layer_has_torchvisions_settings_train_mode_ones_included(name: str) -> None:
    # The logits test runs in eval mode: a batch norm's momentum, or a dropout's rate, could
    # differ there unseen. Each layer with weights or buffers is compared by name (the same
    # names, as the strict load proves), and the dropouts in order.
    # GoogLeNet with its auxiliary heads, which no logits test sees.
    kwargs: dict[str, Any] = {"aux_logits": True} if name == "googlenet" else {}
    with torch.device("meta"):
        init = {"init_weights": True} if name == "googlenet" else {}
        tv = getattr(tvm, name)(weights=None, num_classes=10, **kwargs, **init)
        net = model_info(name).build_net(num_classes=10, in_channels=3, **kwargs)
    ours = dict(net.named_modules())

    def settings(m: nn.Module) -> tuple[Any, ...]:
        return type(m), m.extra_repr(), getattr(m, "momentum", None)

    layers = [
        (n, m) for n, m in tv.named_modules() if next(m.children(), None) is None and m.state_dict()
    ]
    assert len(layers) > 5
    for n, m in layers:
        assert n in ours and settings(ours[n]) == settings(m), n

    def dropouts(module: nn.Module) -> list[tuple[type, float]]:
        drops = (nn.Dropout, nn.Dropout2d)
        return [(type(m), m.p) for m in module.modules() if isinstance(m, drops)]

    assert dropouts(net) == dropouts(tv)
