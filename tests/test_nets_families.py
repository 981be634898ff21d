"""What one family of networks does that the others do not.

AlexNet's and VGG's small-input stem and head, VGG's and GoogLeNet's initialisation, NiN's
Caffe network, GoogLeNet's auxiliary classifiers, ResNet's zero-initialised residuals and
parameter-free CIFAR shortcuts, DenseNet's compression, dropout and memory-efficient layers.
The checks every network passes are in ``tests/test_nets.py`` and ``tests/test_contract.py``;
LeNet-5's in ``tests/test_lenet.py``.
"""

from __future__ import annotations

import itertools
import math
import re
import warnings
from typing import Any

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

import classic_cnns
from classic_cnns import Digits, create_model, model_info
from classic_cnns.nets.alexnet import AlexNetNet
from classic_cnns.nets.densenet import DenseNetNet
from classic_cnns.nets.googlenet import GoogLeNetNet
from classic_cnns.nets.lenet import LeNet5Net
from classic_cnns.nets.nin import NiNNet
from classic_cnns.nets.resnet import BasicBlock, Bottleneck, PadShortcut, ResNetNet
from classic_cnns.nets.vgg import CONFIGS, VGGNet, make_layers
from conftest import param_count, train_loss

pytestmark = pytest.mark.usefixtures("one_thread")


def _torchvision_googlenet() -> nn.Module:
    tv = torchvision.models.googlenet(
        weights=None, num_classes=10, aux_logits=True, init_weights=True, transform_input=False
    )
    g = torch.Generator().manual_seed(0)
    for m in tv.modules():  # random batch-norm statistics, so that a mix-up would show
        if isinstance(m, nn.BatchNorm2d):
            for t in (m.weight, m.bias, m.running_mean):
                t.data.copy_(torch.randn(t.shape, generator=g) * 0.1 + (t is m.weight))
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return tv


# -- AlexNet, VGG, NiN ----------------------------------------------------------------------


def test_alexnet_small_input_keeps_torchvision_layout_but_the_stem() -> None:
    tv = torchvision.models.alexnet(weights=None, num_classes=10)
    with torch.device("meta"):
        net = classic_cnns.nets.alexnet.alexnet(num_classes=10, small_input=True)
    net = net.to_empty(device="cpu")
    state = {k: v for k, v in tv.state_dict().items() if not k.startswith("features.0.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert sorted(missing) == ["features.0.bias", "features.0.weight"] and not unexpected
    assert net.features[0].kernel_size == (3, 3) and net.features[0].stride == (1, 1)
    assert net.min_input_size == (15, 15)
    assert param_count(net) == param_count(tv) - 64 * 3 * (11 * 11 - 3 * 3)
    with torch.no_grad():
        for size in (28, 32):
            assert net.eval()(torch.randn(1, 3, size, size)).shape == (1, 10)


@pytest.mark.parametrize("name", ["vgg11", "vgg16_bn"])
def test_vgg_small_input_head(name: str) -> None:
    net = model_info(name).build_net(num_classes=10, small_input=True).eval()
    assert not hasattr(net, "min_input_size")  # the features, hence the minimum, are unchanged
    assert net.num_features == 512
    widths = [(m.in_features, m.out_features) for m in net.classifier if isinstance(m, nn.Linear)]
    assert widths == [(512, 512), (512, 512), (512, 10)]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        maps = net.forward_features(x)
        assert maps.shape == (2, 512, 1, 1)
        assert net.forward_head(maps, pre_logits=True).shape == (2, 512)
        assert net(torch.randn(1, 3, 48, 40)).shape == (1, 10)  # global pooling: any size


def _assert_drawn_from_normal(weight: Tensor, std: float, what: str = "") -> None:
    """Assert that ``weight``'s n values look like n draws of N(0, std**2).

    The bounds are five standard errors from the sample size: the sample mean's is
    std / sqrt(n), the sample standard deviation's std / sqrt(2 (n - 1)).
    """
    n = weight.numel()
    mean, sample_std = weight.mean().item(), weight.std().item()
    assert abs(mean) < 5 * std / n**0.5, (what, mean)
    assert abs(sample_std - std) < 5 * std / (2 * (n - 1)) ** 0.5, (what, sample_std, std)


def test_vgg_initialisation_matches_torchvision() -> None:
    # torchvision's VGG: He normal (fan-out) convolutions, N(0, 0.01) linear weights, zero
    # biases; reset_classifier's fresh head is drawn the same way.
    torch.manual_seed(0)
    net = classic_cnns.nets.vgg.vgg11(num_classes=10, small_input=True)
    conv = net.features[3]  # 64 -> 128 channels
    _assert_drawn_from_normal(conv.weight, (2 / (128 * 9)) ** 0.5, "features.3")
    assert not conv.bias.any()
    for linear in (m for m in net.classifier if isinstance(m, nn.Linear)):
        _assert_drawn_from_normal(linear.weight, 0.01)
        assert not linear.bias.any()
    net.reset_classifier(5)
    head = net.classifier[6]
    assert (head.in_features, head.out_features) == (512, 5)
    _assert_drawn_from_normal(head.weight, 0.01, "reset head")  # PyTorch's default: 0.0255
    assert not head.bias.any()


def test_vgg_width_mult_quarter_is_the_books_narrow_vgg11() -> None:
    # d2l's VGG-11 on Fashion-MNIST: conv_arch widths divided by ratio = 4, the 4096-wide
    # classifier kept. Its parameters, by hand: 3x3 convolutions 1-16-32-64-64-128-128-128-128
    # (weights and biases), then 6272 (128 x 7 x 7) -> 4096 -> 4096 -> 10.
    widths = [1, 16, 32, 64, 64, 128, 128, 128, 128]
    convs = sum(9 * a * b + b for a, b in itertools.pairwise(widths))
    linears = 6272 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 10 + 10
    model = create_model("vgg11", num_classes=10, in_channels=1, width_mult=0.25)
    net = model.net
    assert [m.out_channels for m in net.features if isinstance(m, nn.Conv2d)] == widths[1:]
    assert sum(p.numel() for p in net.parameters()) == convs + linears == 43_093_322
    assert model.hparams.width_mult == 0.25
    with torch.no_grad():
        assert net.eval()(torch.zeros(2, 1, 224, 224)).shape == (2, 10)
    for bad in (0, -1.0, 0.01):
        with pytest.raises(ValueError, match=r"width_mult must be a finite number > 0 that"):
            create_model("vgg11", width_mult=bad)
    for bad in (True, "half", math.nan, math.inf):  # what its annotation, float, refuses
        with pytest.raises(ValueError, match=rf"width_mult must be a finite number; got {bad!r}"):
            create_model("vgg11", width_mult=bad)
        with pytest.raises(ValueError, match=r"width_mult must be a finite number > 0 that"):
            VGGNet(CONFIGS[11], width_mult=bad)


def test_nin_is_the_papers_cifar_network() -> None:
    net = classic_cnns.nets.nin.nin()
    assert not any(isinstance(m, nn.Linear) for m in net.modules())
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [m.kernel_size[0] for m in convs] == [5, 1, 1, 5, 1, 1, 3, 1, 1]
    assert [m.out_channels for m in convs] == [192, 160, 96, 192, 192, 192, 192, 192, 10]
    # A ReLU after every convolution but the class maps (see nin's module docstring).
    assert sum(isinstance(m, nn.ReLU) for m in net.modules()) == 8
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == 2
    # Small class-map weights keep the first logits near zero; He (fan-in) elsewhere.
    _assert_drawn_from_normal(net.classifier[0].weight, 0.01, "classifier.0")
    _assert_drawn_from_normal(convs[3].weight, (2 / (96 * 25)) ** 0.5, "convs[3]")
    net.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        maps = net.forward_features(x)
        assert maps.shape == (2, 192, 8, 8)  # the pools halve 32 -> 16 -> 8, as in Caffe
        logits = net(x)
        # The class maps are averaged into the logits: no weights after them.
        assert torch.allclose(logits, net.classifier(maps).mean(dim=(2, 3)))
        # An unbatched image, which nn.Conv2d takes, gives its one row of logits (flatten(1)
        # gave 10 rows of one: the classes as the batch).
        assert net(x[0]).shape == (10,) and torch.allclose(net(x[0]), logits[0], atol=1e-6)
        assert net.forward_head(maps[0], pre_logits=True).shape == (192,)


def test_nin_final_relu_is_the_caffe_layer() -> None:
    torch.manual_seed(0)
    caffe = classic_cnns.nets.nin.nin(final_relu=True)
    torch.manual_seed(0)
    default = classic_cnns.nets.nin.nin()
    assert param_count(caffe) == param_count(default) == 966_986
    assert caffe.state_dict().keys() == default.state_dict().keys()
    assert isinstance(caffe.classifier[-1], nn.ReLU)
    assert sum(isinstance(m, nn.ReLU) for m in caffe.modules()) == 9
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        class_maps = default.eval().classifier(default.forward_features(x))  # same weights
        logits = caffe.eval()(x)
    assert torch.allclose(logits, class_maps.relu().mean(dim=(2, 3)))
    assert (logits >= 0).all()


def test_nin_class_maps_do_not_die_on_a_small_task() -> None:
    # With the Caffe ReLU on the class maps (and the former He fan-out init), 60 AdamW
    # steps on 8x8 digits left 8-10 of the 10 logits constant (0 for every image) and the
    # loss near log(10) = 2.30. The default reaches 1.14-1.85 on seeds 0-2, no class dead
    # (60 steps are chaotic: a 0.05% change of the normalisation moved seed 0 from 1.27 to
    # 1.85, and torch 2.6 gives 1.31-1.69), so the median of three seeds is tested.
    dm = Digits(image_size=8, val_size=0)
    dm.setup("fit")
    images, labels, _, _ = dm.load_splits()
    x, y = dm.transform(images[:256]), labels[:256]
    losses = []
    for seed in range(3):
        torch.manual_seed(seed)
        net = classic_cnns.nets.nin.nin(num_classes=10, in_channels=1)
        opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
        generator = torch.Generator().manual_seed(seed)
        for _ in range(60):
            idx = torch.randint(0, len(y), (32,), generator=generator)
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            logits = net.eval()(x)
        assert (logits.std(dim=0) > 1e-4).all(), f"seed {seed}: a class logit is constant"
        losses.append(nn.functional.cross_entropy(logits, y).item())
    assert max(losses) < 2.1 and sorted(losses)[1] < 1.8, losses


@pytest.mark.parametrize(
    ("name", "kwargs", "dropouts"),
    [
        ("alexnet", {"small_input": True, "dropout": 0.2}, ("classifier.0", "classifier.3")),
        ("vgg11", {"small_input": True, "dropout": 0.2}, ("classifier.2", "classifier.5")),
        ("nin", {"dropout": 0.2}, ("features.2", "features.5")),
    ],
)
def test_family_arguments_reach_the_network(
    name: str, kwargs: dict[str, float], dropouts: tuple[str, ...]
) -> None:
    net = create_model(name, num_classes=10, **kwargs).net
    modules = dict(net.named_modules())
    assert [modules[d].p for d in dropouts] == [0.2, 0.2]
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == len(dropouts)


@pytest.mark.parametrize(
    ("build", "dropouts"),
    [
        (AlexNetNet, ("classifier.0", "classifier.3")),
        (lambda: VGGNet(CONFIGS[11], small_input=True), ("classifier.2", "classifier.5")),
        (NiNNet, ("features.2", "features.5")),
    ],
    ids=["alexnet", "vgg", "nin"],
)
def test_dropout_is_the_papers_half_by_default(build: Any, dropouts: tuple[str, ...]) -> None:
    # The papers' dropout, their documented default: AlexNet and VGG drop half the units of
    # the first two fully connected layers, NiN half of each of its two pools' outputs.
    modules = dict(build().named_modules())
    assert [n for n, m in modules.items() if isinstance(m, nn.Dropout)] == list(dropouts)
    assert [modules[d].p for d in dropouts] == [0.5, 0.5]


# -- GoogLeNet ------------------------------------------------------------------------------


def test_googlenet_aux_heads_param_count_matches_torchvision() -> None:
    with torch.device("meta"):
        ours = create_model("googlenet").net
        tv = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
    assert param_count(ours) == param_count(tv) == 13_004_888
    # The module docstring's figures for each head.
    assert (param_count(ours.aux1), param_count(ours.aux2)) == (3_188_968, 3_191_016)


def test_googlenet_initialisation_matches_torchvision() -> None:
    # torchvision's GoogLeNet (init_weights=True): every Conv2d and Linear weight by
    # nn.init.trunc_normal_(w, mean=0.0, std=0.01, a=-2, b=2). trunc_normal_'s a and b are
    # the cutoff values themselves, not multiples of std: +-2 is 200 standard deviations
    # away, so the draws are N(0, 0.01**2) in effect, with no truncation at +-0.02. Batch
    # norm weights 1 and biases 0; linear biases keep PyTorch's default, uniform in
    # +-1/sqrt(fan_in).
    torch.manual_seed(0)
    net = classic_cnns.nets.googlenet.googlenet(num_classes=10)
    layers = {n: m for n, m in net.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)}
    # Convolutions: 3 in the stem, 6 in each of 9 Inception modules, 1 per aux head; and
    # 5 linear layers: fc and each aux head's fc1 and fc2.
    assert len(layers) == 3 + 9 * 6 + 2 + 5
    for name, layer in layers.items():
        _assert_drawn_from_normal(layer.weight, 0.01, name)
        if isinstance(layer, nn.Linear):
            assert layer.bias.any() and layer.bias.abs().max() <= layer.in_features**-0.5
    # Untruncated at two standard deviations: 2 * (1 - Phi(2)) = 4.55% of the draws lie
    # beyond, here among the 2,097,152 weights of aux1.fc1.
    beyond = (net.aux1.fc1.weight.abs() > 0.02).float().mean().item()
    assert beyond == pytest.approx(0.0455, abs=0.001)
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 3 + 9 * 6 + 2  # one after every convolution
    assert all(bool((m.weight == 1).all()) and not m.bias.any() for m in norms)
    # A fresh head for 5 classes: fc and both auxiliary fc2, drawn the same way.
    net.reset_classifier(5)
    for name in ("fc", "aux1.fc2", "aux2.fc2"):
        head = net.get_submodule(name)
        assert (head.in_features, head.out_features) == (1024, 5), name
        _assert_drawn_from_normal(head.weight, 0.01, name)  # PyTorch's default: 0.018
        assert head.bias.any() and head.bias.abs().max() <= 1024**-0.5


def test_googlenet_with_aux_matches_torchvision_in_training() -> None:
    tv = _torchvision_googlenet().train()
    net = model_info("googlenet").build_net(num_classes=10, in_channels=3)
    net.load_state_dict(tv.state_dict(), strict=True)
    net.train()
    x = torch.randn(2, 3, 33, 33)
    with torch.no_grad():
        torch.manual_seed(1)
        expected = tv(x)
        torch.manual_seed(1)  # the same dropout masks, drawn in the same order
        out = net(x)
    # torchvision's named tuple: its name, fields and order, so that its users' code runs.
    assert type(out).__name__ == type(expected).__name__ == "GoogLeNetOutputs"
    assert out._fields == expected._fields == ("logits", "aux_logits2", "aux_logits1")
    for field in expected._fields:
        assert torch.allclose(getattr(out, field), getattr(expected, field), atol=1e-5, rtol=0)
    logits, aux2, aux1 = out  # still a tuple, as the task and torchvision's users unpack it
    assert logits is out.logits and aux2 is out.aux_logits2 and aux1 is out.aux_logits1


def test_scripted_googlenet_returns_torchvisions_named_tuple_in_training(
    small_googlenet: classic_cnns.ImageClassifier,
) -> None:
    net = small_googlenet.net
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice
        scripted = torch.jit.script(net)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.manual_seed(0)
        expected = net.train()(x)
        torch.manual_seed(0)
        out = scripted.train()(x)
        assert torch.equal(scripted.eval()(x), net.eval()(x))
    assert out._fields == ("logits", "aux_logits2", "aux_logits1")
    for field in out._fields:
        torch.testing.assert_close(getattr(out, field), getattr(expected, field))


@pytest.fixture(scope="module")
def small_googlenet() -> classic_cnns.ImageClassifier:
    return create_model("googlenet", num_classes=10, in_channels=1, small_input=True)


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
    assert torch.allclose(loss.detach(), train_loss(out, y), atol=1e-5)
    assert loss > main


# -- ResNet, DenseNet ----------------------------------------------------------------------


def test_zero_init_residual() -> None:
    basic = model_info("resnet20").build_net(zero_init_residual=True)
    assert all(not b.bn2.weight.any() for b in basic.layer1)
    bottleneck = ResNetNet(Bottleneck, [1, 1], widths=(8, 16), zero_init_residual=True)
    blocks = [bottleneck.layer1[0], bottleneck.layer2[0]]
    assert all(not b.bn3.weight.any() for b in blocks)
    assert all(bool((b.bn2.weight == 1).all()) for b in blocks)


def test_cifar_resnet_option_a_shortcuts_are_parameter_free() -> None:
    net = model_info("resnet20").build_net()
    shortcuts = [m for m in net.modules() if isinstance(m, PadShortcut)]
    assert len(shortcuts) == 2 and all(param_count(s) == 0 for s in shortcuts)
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
    info = model_info(name)
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


def _densenet_bc_param_count(
    k: int,
    blocks: tuple[int, ...],
    c0: int,
    theta: float,
    classes: int,
    imagenet_stem: bool,
) -> int:
    """DenseNet-BC's parameters by the paper's recipe, counted by hand (3 input channels).

    Stem: 7x7 conv and BN (ImageNet) or a lone 3x3 conv (CIFAR). A dense layer on c
    channels: BN(c), 1x1 conv c -> 4k, BN(4k), 3x3 conv 4k -> k, all bias-free. A
    transition on c channels: BN(c), 1x1 conv c -> floor(theta * c). Then BN and a linear
    classifier with biases.
    """
    n = 3 * c0 * 49 + 2 * c0 if imagenet_stem else 3 * c0 * 9
    c = c0
    for i, layers in enumerate(blocks):
        for _ in range(layers):
            n += 2 * c + c * 4 * k + 2 * 4 * k + 4 * k * k * 9
            c += k
        if i < len(blocks) - 1:
            n += 2 * c + c * math.floor(theta * c)
            c = math.floor(theta * c)
    return n + 2 * c + c * classes + classes


def test_densenet_compression_sets_each_transitions_width() -> None:
    # The hand count reproduces torchvision's DenseNet-121 (compression 0.5, its only one).
    with torch.device("meta"):
        tv = torchvision.models.densenet121(weights=None)
    assert param_count(tv) == 7_978_856
    assert _densenet_bc_param_count(32, (6, 12, 24, 16), 64, 0.5, 1000, True) == 7_978_856
    # k=12, 4 layers per block, 24 stem channels: block 1 ends with 24 + 4 * 12 = 72
    # channels; each transition keeps floor(theta * C_in), the next block adds 48 more.
    expected = {
        1.0: ([(72, 72), (120, 120)], 168),
        0.5: ([(72, 36), (84, 42)], 90),
        0.7: ([(72, 50), (98, 68)], 116),  # floor(50.4), floor(68.6)
    }
    for theta, (transitions, num_features) in expected.items():
        net = DenseNetNet(12, (4, 4, 4), 24, num_classes=10, compression=theta, stem="cifar")
        convs = [net.features.transition1.conv, net.features.transition2.conv]
        assert [(c.in_channels, c.out_channels) for c in convs] == transitions, theta
        assert net.num_features == net.classifier.in_features == num_features, theta
        count = _densenet_bc_param_count(12, (4, 4, 4), 24, theta, 10, False)
        assert param_count(net) == count, theta
        with torch.no_grad():
            assert net.eval().forward_features(torch.zeros(1, 3, 8, 8)).shape[1] == num_features


def test_densenet_drop_rate_drops_each_dense_layers_new_maps_in_training() -> None:
    # DenseNetNet's drop_rate, as torchvision's: dropout with p=drop_rate on each dense
    # layer's k new maps, in training only.
    torch.manual_seed(0)
    dropping = DenseNetNet(4, (2, 2), 8, num_classes=3, drop_rate=0.5, stem="cifar")
    plain = DenseNetNet(4, (2, 2), 8, num_classes=3, stem="cifar")
    plain.load_state_dict(dropping.state_dict())
    x = torch.randn(8, 3, 16, 16)

    def two_passes(net: nn.Module) -> tuple[Tensor, Tensor]:
        outs = []
        for seed in (1, 2):
            torch.manual_seed(seed)
            outs.append(net(x))
        return outs[0], outs[1]

    with torch.no_grad():
        # In eval mode first, before training passes change the running statistics.
        assert torch.equal(*two_passes(dropping.eval()))
        assert torch.equal(dropping(x), plain.eval()(x))
        first, second = two_passes(dropping.train())
        assert not torch.allclose(first, second)
        assert torch.equal(*two_passes(plain.train()))  # batch norm's batch statistics alone
        # The difference is dropout's: in training, denselayer1's 4 new maps are its
        # bottleneck's output with about half the values zeroed and the rest doubled.
        dropping.train()
        stem = dropping.features.conv0(x)
        new = dropping.features.denseblock1(stem)[:, 8:12]
        layer = dropping.features.denseblock1.denselayer1
        whole = layer.conv2(layer.relu2(layer.norm2(layer.conv1(layer.relu1(layer.norm1(stem))))))
    assert whole.all()  # so every zero below is a dropped value
    kept = new != 0
    n = new.numel()  # 8 images x 4 maps x 16 x 16
    assert kept.float().mean().item() == pytest.approx(0.5, abs=5 * 0.5 / n**0.5)
    torch.testing.assert_close(new[kept], 2 * whole[kept])


def test_memory_efficient_densenet_compiles_and_trains_as_the_plain_one() -> None:
    # torch.compile could not trace the checkpoint's context_fn (which keeps the batch norm
    # statistics from a second update): "checkpoint not implemented for ... context_fn".
    # Compiled, the layers leave recomputation to the compiler.
    torch.manual_seed(0)
    plain = model_info("densenet_bc_100").build_net(num_classes=3)
    efficient = model_info("densenet_bc_100").build_net(num_classes=3, memory_efficient=True)
    efficient.load_state_dict(plain.state_dict())
    x = torch.randn(4, 3, 32, 32)
    outs = [net(x) for net in (plain, torch.compile(efficient, backend="aot_eager"))]
    for out in outs:
        out.square().sum().backward()
    torch.testing.assert_close(outs[1], outs[0])
    for (name, theirs), ours in zip(plain.named_parameters(), efficient.parameters(), strict=True):
        torch.testing.assert_close(ours.grad, theirs.grad, msg=name)
    for (key, theirs), ours in zip(
        plain.state_dict().items(), efficient.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(ours, theirs, msg=key)  # the statistics updated once


def test_memory_efficient_densenet_refuses_torchscript_only_when_it_would_checkpoint() -> None:
    net = model_info("densenet_bc_100").build_net(memory_efficient=True)
    scripted = torch.jit.script(net.eval())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), net(x))
    with pytest.raises(torch.jit.Error, match="memory_efficient=True does not work in TorchScript"):
        scripted(x.requires_grad_())


@pytest.mark.parametrize(
    "build",
    [
        lambda c: LeNet5Net(in_channels=c),
        lambda c: AlexNetNet(in_channels=c),
        lambda c: VGGNet(CONFIGS[11], in_channels=c),
        lambda c: NiNNet(in_channels=c),
        lambda c: GoogLeNetNet(in_channels=c),
        lambda c: ResNetNet(BasicBlock, [3, 3, 3], in_channels=c, widths=(16, 32, 64)),
        lambda c: model_info("resnet20").builder(in_channels=c),
        lambda c: DenseNetNet(12, (2, 2), 24, in_channels=c, stem="cifar"),
    ],
    ids=["lenet", "alexnet", "vgg", "nin", "googlenet", "resnet", "resnet20", "densenet"],
)
def test_every_network_refuses_in_channels_that_are_not_a_positive_int(build: Any) -> None:
    # Conv2d(0, 64) builds without complaint; "3" failed in torch's own formatting.
    for bad in (0, -1, "3", 2.0, True):
        with pytest.raises(ValueError, match=rf"in_channels must be an int >= 1; got {bad!r}"):
            build(bad)


@pytest.mark.parametrize(
    ("build", "match"),
    [  # each built, then failed in forward (or silently built one block for 0 or -1)
        (lambda: DenseNetNet(12, (2, 2), 16, stem="cifar", compression=2.0), r"compression must"),
        (lambda: DenseNetNet(12, (2, 2), 16, compression=0), r"be in \(0, 1\] .*; got 0"),
        (lambda: DenseNetNet(0, (2, 2), 16), r"growth_rate must be an int >= 1; got 0"),
        (lambda: DenseNetNet(12, (2, 0), 16), r"block_config must be ints >= 1; got \[2, 0\]"),
        (lambda: DenseNetNet(12, (2, 2), 16, bn_size=0), r"bn_size must be an int >= 1"),
        (lambda: ResNetNet(BasicBlock, [2, 2, 2, 0]), r"layers must be ints >= 1"),
        (lambda: ResNetNet(BasicBlock, [2, 2, 2, -1]), r"got \[2, 2, 2, -1\]"),
        (lambda: ResNetNet("basic", [2, 2, 2, 2]), r"block must be BasicBlock or Bottleneck"),
        (lambda: ResNetNet(BasicBlock, [2, 2, 2, 2], small_input="x"), r"small_input must be"),
    ],
)
def test_the_network_classes_refuse_widths_and_depths_that_cannot_work(
    build: Any, match: str
) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        build()


@pytest.mark.parametrize("config", [[64, "X"], [], ["M"], [64, 0, "M"], [64.0, "M"], "64M"])
def test_vgg_refuses_a_configuration_that_is_not_widths_and_pools(config: Any) -> None:
    match = r"config must be a sequence of convolution widths \(ints >= 1, at least one\)"
    with pytest.raises(ValueError, match=rf"{match}.*got {re.escape(repr(config))}"):
        VGGNet(config)
    with pytest.raises(ValueError, match=match):
        make_layers(config)
