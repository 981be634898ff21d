"""GoogLeNet, ResNet, DenseNet: shapes, gradients, input sizes, parameter counts, torchvision."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

import classic_cnns
import classic_cnns.nets.densenet  # registers
import classic_cnns.nets.googlenet  # registers
import classic_cnns.nets.resnet  # registers
from classic_cnns.nets.googlenet import GoogLeNetNet
from classic_cnns.nets.resnet import Bottleneck, PadShortcut, ResNetNet

RESNETS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
DENSENETS = ["densenet121", "densenet161", "densenet169", "densenet201"]
IMAGENET = ["googlenet", *RESNETS, *DENSENETS]
CIFAR = ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "densenet_bc_100"]
# The papers' tables, in millions, to the digits they print.
PAPER_PARAMS = {
    "resnet20": "0.27",
    "resnet32": "0.46",
    "resnet44": "0.66",
    "resnet56": "0.85",
    "resnet110": "1.7",
    "densenet_bc_100": "0.8",
}
TV_WEIGHTS = {
    "googlenet": "GoogLeNet_Weights",
    **{n: f"ResNet{n[6:]}_Weights" for n in RESNETS},
    **{n: f"DenseNet{n[8:]}_Weights" for n in DENSENETS},
}


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def loss_of(out: Tensor | tuple[Tensor, ...], y: Tensor) -> Tensor:
    """Cross-entropy, plus auxiliary losses weighted 0.3 as the task adds them."""
    if isinstance(out, tuple):
        return F.cross_entropy(out[0], y) + 0.3 * sum(F.cross_entropy(a, y) for a in out[1:])
    return F.cross_entropy(out, y)


def test_registered_names() -> None:
    families = {"googlenet", "resnet", "densenet"}
    names = [n for n in classic_cnns.list_models() if classic_cnns.model_info(n).family in families]
    assert sorted(names) == sorted(IMAGENET + CIFAR)


def _check_one_pixel_less_fails(model: classic_cnns.ImageClassifier, channels: int) -> None:
    h, w = model.min_input_size
    for smaller in ((h - 1, w), (h, w - 1)):
        with pytest.raises(RuntimeError), torch.no_grad():
            model.net(torch.zeros(2, channels, *smaller))
        with pytest.raises(ValueError, match=f"at least {h}x{w}"):
            model(torch.zeros(2, channels, *smaller))


@pytest.mark.parametrize("name", IMAGENET + CIFAR)
def test_forward_backward_at_smallest_input(name: str) -> None:
    # The ImageNet depths take 28-32 pixel images through their small_input stem.
    kwargs = {"small_input": True} if name in IMAGENET else {}
    model = classic_cnns.create_model(name, num_classes=10, in_channels=1, **kwargs).train()
    # Batch statistics of two samples on 1x1 maps have ~0 variance, and their gradients
    # overflow over 150 layers; that is batch norm's limit, not the network's, so use
    # running statistics here (the network stays in training mode: aux heads, dropout).
    for m in model.net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    x = torch.randn(2, 1, *model.min_input_size)
    y = torch.tensor([0, 9])

    out = model(x)
    logits = out[0] if isinstance(out, tuple) else out
    assert logits.shape == (2, 10)
    if name == "googlenet":
        assert isinstance(out, tuple) and [o.shape for o in out] == [(2, 10)] * 3
    loss_of(out, y).backward()
    for pname, p in model.net.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
    _check_one_pixel_less_fails(model, 1)


@pytest.mark.parametrize("name", IMAGENET)
def test_registered_min_input_size_is_exact(name: str) -> None:
    # The default build, in training mode so that GoogLeNet's aux heads run too.
    model = classic_cnns.create_model(name, num_classes=10, in_channels=1).train()
    assert model.min_input_size == classic_cnns.model_info(name).min_input_size
    with torch.no_grad():
        out = model(torch.randn(2, 1, *model.min_input_size))
    assert isinstance(out, tuple) == (name == "googlenet")
    _check_one_pixel_less_fails(model, 1)


@pytest.mark.parametrize("name", IMAGENET + CIFAR)
def test_num_params(name: str) -> None:
    info = classic_cnns.model_info(name)
    kwargs = {"aux_logits": False} if name == "googlenet" else {}
    with torch.device("meta"):  # counting needs shapes only; skips 100M random draws
        net = classic_cnns.create_model(
            name, num_classes=info.num_classes, in_channels=3, **kwargs
        ).net
    count = n_params(net)
    assert count == info.num_params
    if name in TV_WEIGHTS:
        assert info.num_classes == 1000
        weights = getattr(torchvision.models, TV_WEIGHTS[name]).IMAGENET1K_V1
        assert count == weights.meta["num_params"]
    else:
        assert info.num_classes == 10
        paper = PAPER_PARAMS[name]
        digits = sum(c.isdigit() for c in paper.lstrip("0."))
        assert f"{count / 1e6:.{digits}g}" == paper


def test_googlenet_aux_heads_param_count_matches_torchvision() -> None:
    with torch.device("meta"):
        ours = classic_cnns.create_model("googlenet").net
        tv = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
    assert n_params(ours) == n_params(tv) == 13_004_888


def _torchvision(name: str, **kwargs: object) -> nn.Module:
    if name == "googlenet":
        kwargs = {"aux_logits": False, "init_weights": True, "transform_input": False, **kwargs}
    tv = getattr(torchvision.models, name)(weights=None, num_classes=10, **kwargs)
    # Random batch-norm statistics and affine terms, so that eval mode exercises them (and eps).
    g = torch.Generator().manual_seed(0)
    for m in tv.modules():
        if isinstance(m, nn.BatchNorm2d):
            for t in (m.weight, m.bias, m.running_mean):
                t.data.copy_(torch.randn(t.shape, generator=g) * 0.1 + (t is m.weight))
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return tv


@pytest.mark.parametrize("name", IMAGENET)
def test_torchvision_state_dict_and_logits(name: str) -> None:
    tv = _torchvision(name).eval()
    kwargs = {"aux_logits": False} if name == "googlenet" else {}
    with torch.device("meta"):  # every tensor is replaced by torchvision's below
        net = classic_cnns.model_info(name).build_net(num_classes=10, in_channels=3, **kwargs)
    net.load_state_dict(tv.state_dict(), strict=True, assign=True)
    net.eval()
    # Odd sizes check the rounding of every strided and ceil-mode layer.
    x = torch.randn(2, 3, 33, 33)
    with torch.no_grad():
        expected = tv(x)
        assert torch.allclose(net(x), expected, atol=1e-5, rtol=0)


def test_googlenet_with_aux_matches_torchvision_in_training() -> None:
    tv = _torchvision("googlenet", aux_logits=True).train()
    net = classic_cnns.model_info("googlenet").build_net(num_classes=10, in_channels=3)
    net.load_state_dict(tv.state_dict(), strict=True)
    net.train()
    x = torch.randn(2, 3, 33, 33)
    with torch.no_grad():
        torch.manual_seed(1)
        expected = tv(x)
        torch.manual_seed(1)  # the same dropout masks, drawn in the same order
        out = net(x)
    assert type(out) is tuple and len(out) == 3
    for ours, theirs in zip(out, expected, strict=True):
        assert torch.allclose(ours, theirs, atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def small_googlenet() -> classic_cnns.ImageClassifier:
    return classic_cnns.create_model("googlenet", num_classes=10, in_channels=1, small_input=True)


def test_googlenet_returns_tuple_only_when_training_with_aux(
    small_googlenet: classic_cnns.ImageClassifier,
) -> None:
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert isinstance(small_googlenet.train()(x), tuple)
        assert small_googlenet.eval()(x).shape == (2, 10)
    no_aux = GoogLeNetNet(num_classes=10, in_channels=1, aux_logits=False, small_input=True)
    assert no_aux.aux1 is None and no_aux.aux2 is None
    with torch.no_grad():
        assert no_aux.train()(x).shape == (2, 10)


def test_googlenet_training_step_adds_aux_losses(
    small_googlenet: classic_cnns.ImageClassifier,
) -> None:
    model = small_googlenet.train()
    x, y = torch.randn(4, 1, 32, 32), torch.tensor([0, 3, 5, 9])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log outside a Trainer warns and does nothing
        torch.manual_seed(0)
        loss = model.training_step((x, y), 0)
    loss.backward()
    assert all(p.grad is not None for p in model.net.aux1.parameters())
    with torch.no_grad():
        torch.manual_seed(0)
        out = model.net(x)
        main = F.cross_entropy(out[0], y)
    assert torch.allclose(loss.detach(), loss_of(out, y), atol=1e-5)
    assert loss > main


@pytest.mark.parametrize("name", ["googlenet", "resnet18", "resnet20", "densenet_bc_100"])
def test_in_channels_changes_only_the_first_conv(name: str) -> None:
    info = classic_cnns.model_info(name)
    with torch.device("meta"):
        shapes = [
            {k: v.shape for k, v in info.build_net(in_channels=c).state_dict().items()}
            for c in (1, 3)
        ]
    differing = [k for k in shapes[0] if shapes[0][k] != shapes[1][k]]
    assert differing == [
        {"googlenet": "conv1.conv.weight", "densenet_bc_100": "features.conv0.weight"}.get(
            name, "conv1.weight"
        )
    ]


def test_zero_init_residual() -> None:
    basic = classic_cnns.model_info("resnet20").build_net(zero_init_residual=True)
    assert all(not b.bn2.weight.any() for b in basic.layer1)
    bottleneck = ResNetNet(Bottleneck, [1, 1], widths=(8, 16), zero_init_residual=True)
    blocks = [bottleneck.layer1[0], bottleneck.layer2[0]]
    assert all(not b.bn3.weight.any() for b in blocks)
    assert all(bool((b.bn2.weight == 1).all()) for b in blocks)


def test_cifar_resnet_option_a_shortcuts_are_parameter_free() -> None:
    net = classic_cnns.model_info("resnet20").build_net()
    shortcuts = [m for m in net.modules() if isinstance(m, PadShortcut)]
    assert len(shortcuts) == 2 and all(n_params(s) == 0 for s in shortcuts)
    x = torch.randn(1, 16, 5, 5)
    out = PadShortcut(16, 32, stride=2)(x)
    assert torch.equal(out[:, :16], x[:, :, ::2, ::2]) and not out[:, 16:].any()
    assert [len(s) for s in (net.layer1, net.layer2, net.layer3)] == [3, 3, 3]


def _saved_bytes(net: nn.Module, x: Tensor) -> int:
    """Bytes of the distinct activation storages that autograd saves for the backward pass.

    A checkpoint's inputs (a dense layer's list of earlier maps, each a block's new channels
    once) are kept alive without being saved this way, so they are not counted.
    """
    weights = {p.untyped_storage().data_ptr() for p in net.parameters()}
    storages: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        if t.untyped_storage().data_ptr() not in weights:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = net(x)  # alive until the end: no saved storage is freed and its address reused
    del out
    return sum(storages.values())


@pytest.mark.parametrize("name", ["densenet121", "densenet_bc_100"])
def test_memory_efficient_densenet_gives_the_same_results(name: str) -> None:
    # torchvision's test_memory_efficient_densenet (eval mode, outputs within 1e-5 and a
    # gradient for every parameter), plus training mode: the same gradients, and the same
    # batch norm statistics after the step (the checkpoint's recomputation must not
    # update them a second time).
    kwargs = {"small_input": True} if name == "densenet121" else {}
    info = classic_cnns.model_info(name)
    torch.manual_seed(0)
    plain = info.build_net(num_classes=10, **kwargs)
    efficient = info.build_net(num_classes=10, memory_efficient=True, **kwargs)
    efficient.load_state_dict(plain.state_dict())
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 3, 5, 9])
    for training in (False, True):
        results = []
        for net in (plain, efficient):
            net.train(training).zero_grad()
            out = net(x)
            F.cross_entropy(out, y).backward()
            grads = {n: p.grad for n, p in net.named_parameters()}
            assert all(g is not None for g in grads.values())
            results.append((out.detach(), grads))
        (out_plain, grads_plain), (out_efficient, grads_efficient) = results
        torch.testing.assert_close(out_efficient, out_plain, rtol=0, atol=1e-5)
        for pname, grad in grads_plain.items():
            torch.testing.assert_close(grads_efficient[pname], grad, msg=pname)
    buffers = efficient.state_dict()
    for key, theirs in plain.state_dict().items():
        assert torch.equal(buffers[key], theirs), key
    # No checkpointing without gradients, so inference is the plain path.
    with torch.no_grad():
        assert torch.equal(efficient.eval()(x), plain.eval()(x))
    # The concatenations and the bottlenecks' batch norm outputs are not kept for backward.
    plain.train(), efficient.train()
    assert _saved_bytes(efficient, x) < 0.6 * _saved_bytes(plain, x)


def test_memory_efficient_densenet_refuses_torchscript_only_when_it_would_checkpoint() -> None:
    net = classic_cnns.model_info("densenet_bc_100").build_net(memory_efficient=True)
    scripted = torch.jit.script(net.eval())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), net(x))
    with pytest.raises(torch.jit.Error, match="memory_efficient=True does not work in TorchScript"):
        scripted(x.requires_grad_())
