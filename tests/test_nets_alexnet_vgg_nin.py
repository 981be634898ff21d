"""AlexNet, VGG and NiN: shapes, gradients, parameter counts, minimum sizes, torchvision parity.

The 100-million-parameter ImageNet heads dominate the cost, so parameter counts are
taken on the meta device (no memory, no initialisation) and the torchvision
comparisons run at the smallest input, with 10 classes on both sides.
"""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import classic_cnns
import classic_cnns.nets.alexnet  # registers
import classic_cnns.nets.nin  # registers
import classic_cnns.nets.vgg  # registers
from classic_cnns import create_model, list_models, model_info

VGGS = [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")]
TORCHVISION = ["alexnet", *VGGS]
# (name, small_input): the configurations whose smallest input or stem differs. The VGG
# minimum depends on the features alone, so it is checked with the light 32x32 head.
CONFIGS = [
    ("alexnet", False),
    ("alexnet", True),
    *[(name, True) for name in VGGS],
    ("nin", None),
]


def _kwargs(small_input: bool | None) -> dict[str, bool]:
    return {} if small_input is None else {"small_input": small_input}


def _min_size(name: str, small_input: bool | None) -> tuple[int, int]:
    return {("alexnet", True): (15, 15)}.get((name, small_input), model_info(name).min_input_size)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_registered_names_and_facts() -> None:
    families = {n: model_info(n).family for n in list_models()}
    assert [n for n, f in families.items() if f == "alexnet"] == ["alexnet"]
    assert sorted(n for n, f in families.items() if f == "vgg") == sorted(VGGS)
    assert [n for n, f in families.items() if f == "nin"] == ["nin"]
    assert model_info("alexnet").min_input_size == (63, 63)
    assert all(model_info(n).min_input_size == (32, 32) for n in VGGS)
    assert model_info("nin").min_input_size == (4, 4)
    assert model_info("nin").input_size == (3, 32, 32)
    assert all(model_info(n).input_size == (3, 224, 224) for n in TORCHVISION)
    assert all(model_info(n).num_classes == 1000 for n in TORCHVISION)


@pytest.mark.parametrize(("name", "small_input"), [*CONFIGS, ("vgg11", False)])
def test_forward_backward_at_min_size(name: str, small_input: bool | None) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_channels=1, **_kwargs(small_input))
    assert model.min_input_size == _min_size(name, small_input)
    x = torch.randn(2, 1, *model.min_input_size)
    out = model(x)
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()
    nn.functional.cross_entropy(out, torch.tensor([1, 7])).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert p.grad.shape == p.shape and torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize(("name", "small_input"), CONFIGS)
def test_min_input_size_is_tight(name: str, small_input: bool | None) -> None:
    net = model_info(name).build_net(num_classes=10, in_channels=1, **_kwargs(small_input)).eval()
    h, w = _min_size(name, small_input)
    with torch.no_grad():
        assert net(torch.zeros(1, 1, h, w)).shape == (1, 10)
        for size in ((h - 1, w), (h, w - 1)):
            with pytest.raises(RuntimeError):
                net(torch.zeros(1, 1, *size))


@pytest.mark.parametrize(("name", "small_input"), CONFIGS)
def test_too_small_input_raises_value_error(name: str, small_input: bool | None) -> None:
    model = create_model(name, num_classes=10, in_channels=3, **_kwargs(small_input))
    h, w = _min_size(name, small_input)
    with pytest.raises(ValueError, match=f"at least {h}x{w}"):
        model(torch.zeros(1, 3, h - 1, w))


@pytest.mark.parametrize("name", [*TORCHVISION, "nin"])
def test_num_params_matches_declaration_and_torchvision(name: str) -> None:
    info = model_info(name)
    # The meta device counts 143 million parameters without allocating or initialising them.
    with torch.device("meta"):
        model = create_model(name, num_classes=info.num_classes, in_channels=info.input_size[0])
    assert _count(model.net) == info.num_params
    if name in TORCHVISION:
        tv_weights = torchvision.models.get_model_weights(name).DEFAULT
        assert info.num_params == tv_weights.meta["num_params"]
    else:
        assert info.num_params == 966_986


@pytest.mark.parametrize(("name", "small_input"), CONFIGS)
def test_in_channels_changes_only_the_first_conv(name: str, small_input: bool | None) -> None:
    with torch.device("meta"):
        rgb = model_info(name).build_net(in_channels=3, **_kwargs(small_input))
        gray = model_info(name).build_net(in_channels=1, **_kwargs(small_input))
    shapes_rgb = {k: v.shape for k, v in rgb.state_dict().items()}
    shapes_gray = {k: v.shape for k, v in gray.state_dict().items()}
    assert shapes_rgb.keys() == shapes_gray.keys()
    differ = sorted(k for k in shapes_rgb if shapes_rgb[k] != shapes_gray[k])
    assert differ == ["features.0.0.weight" if name == "nin" else "features.0.weight"]


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_state_dict_loads_and_gives_same_logits(name: str) -> None:
    torch.manual_seed(0)
    tv = getattr(torchvision.models, name)(weights=None, num_classes=10).eval()
    for m in tv.modules():  # non-trivial batch norm statistics, so a mix-up would show
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    # Built on the meta device and given torchvision's tensors (assign=True), our network
    # costs neither initialisation nor a copy of the 100-million-parameter head.
    with torch.device("meta"):
        net = model_info(name).build_net(num_classes=10)
    net.load_state_dict(tv.state_dict(), strict=True, assign=True)
    net.eval()
    x = torch.randn(1, 3, *model_info(name).min_input_size)
    with torch.no_grad():
        ours, theirs = net(x), tv(x)
        # The pre-logits: the ImageNet head's 4096 features before torchvision's last layer.
        pre = net.forward_head(net.forward_features(x), pre_logits=True)
        their_pre = tv.classifier[:-1](tv.avgpool(tv.features(x)).flatten(1))
    assert theirs.abs().max() > 1e-3
    assert (ours - theirs).abs().max() <= 1e-5
    assert pre.shape == (1, net.num_features) == (1, 4096)
    assert their_pre.abs().max() > 1e-3 and (pre - their_pre).abs().max() <= 1e-5


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
    assert _count(net) == _count(tv) - 64 * 3 * (11 * 11 - 3 * 3)
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


def test_vgg_initialisation_matches_torchvision() -> None:
    torch.manual_seed(0)
    net = classic_cnns.nets.vgg.vgg11(num_classes=10, small_input=True)
    conv = net.features[3]  # 64 -> 128 channels
    assert conv.weight.std().item() == pytest.approx((2 / (128 * 9)) ** 0.5, rel=0.05)
    assert not conv.bias.any()
    for linear in (m for m in net.classifier if isinstance(m, nn.Linear)):
        assert linear.weight.std().item() == pytest.approx(0.01, rel=0.1)
        assert not linear.bias.any()


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
    assert net.classifier[0].weight.std().item() == pytest.approx(0.01, rel=0.2)
    assert convs[3].weight.std().item() == pytest.approx((2 / (96 * 25)) ** 0.5, rel=0.05)
    net.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        maps = net.forward_features(x)
        assert maps.shape == (2, 192, 8, 8)  # the pools halve 32 -> 16 -> 8, as in Caffe
        logits = net(x)
        # The class maps are averaged into the logits: no weights after them.
        assert torch.allclose(logits, net.classifier(maps).mean(dim=(2, 3)))


def test_nin_final_relu_is_the_caffe_layer() -> None:
    torch.manual_seed(0)
    caffe = classic_cnns.nets.nin.nin(final_relu=True)
    torch.manual_seed(0)
    default = classic_cnns.nets.nin.nin()
    assert _count(caffe) == _count(default) == 966_986
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
    # loss near log(10) = 2.30; the default reached 0.93-1.45 on seeds 0-3, no class dead.
    from classic_cnns import Digits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dm = Digits(image_size=8, val_size=0)
        dm.setup("fit")
        images, labels, _, _ = dm.load_splits()
        x, y = dm.transform(images[:256]), labels[:256]
        torch.manual_seed(0)
        net = classic_cnns.nets.nin.nin(num_classes=10, in_channels=1)
        opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
        generator = torch.Generator().manual_seed(0)
        for _ in range(60):
            idx = torch.randint(0, len(y), (32,), generator=generator)
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            logits = net.eval()(x)
    finally:
        torch.set_num_threads(threads)
    assert (logits.std(dim=0) > 1e-4).all(), "some class logit is the same for every image"
    assert nn.functional.cross_entropy(logits, y).item() < 1.7


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
