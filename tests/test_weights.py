"""Pretrained weights: torchvision's facts, key mapping, head and first-layer adaptation.

Nothing is downloaded: the loader is replaced by one that returns the state dict of a
torchvision network built here with random weights.
"""

from __future__ import annotations

import hashlib
import re
import types
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
import torchvision.models as tvm

import classic_cnns.files as files_module
import classic_cnns.weights as weights_module
from classic_cnns import LeNet5, ResNet, create_model, list_models, load_model, model_info
from classic_cnns.data.mnist import read_idx
from classic_cnns.files import CheckpointError, read_weights_file
from classic_cnns.predict import predict_folder
from classic_cnns.registry import torchvision_weights
from classic_cnns.weights import adapt_input_conv, load_weights_file, reconcile_state_dict
from conftest import write_png

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tv_resnet18() -> torch.nn.Module:
    torch.manual_seed(0)
    return tvm.resnet18().eval()


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch, tv_resnet18: torch.nn.Module) -> list[str]:
    """Serve torchvision's randomly initialised ResNet-18 instead of downloading."""
    urls: list[str] = []

    def serve(url: str, progress: bool) -> dict[str, torch.Tensor]:
        urls.append(url)
        return {k: v.clone() for k, v in tv_resnet18.state_dict().items()}

    monkeypatch.setattr(weights_module, "_download_state_dict", serve)
    return urls


def test_weights_facts_come_from_torchvision_for_exactly_its_architectures() -> None:
    shipped = set(tvm.list_models(module=tvm))
    for name in list_models():
        info = model_info(name)
        if name not in shipped:
            assert info.weights is None, name
            continue
        tv = tvm.get_model_weights(name).DEFAULT
        w = info.weights
        assert w is not None, name
        assert (w.url, w.num_classes) == (tv.url, 1000)
        assert w.top1 == tv.meta["_metrics"]["ImageNet-1K"]["acc@1"]
        assert tv.url.split("-")[-1].startswith(w.sha256_prefix) and len(w.sha256_prefix) >= 8
        # Our network is torchvision's: the same parameter count as its weights.
        assert w.num_params == info.num_params, name
        preset = tv.transforms()  # the evaluation transform
        assert (w.crop_size, w.resize_size) == (preset.crop_size[0], preset.resize_size[0])
        assert w.interpolation == preset.interpolation.value
    assert {n for n in list_models() if model_info(n).weights} >= {
        "alexnet", "vgg11", "vgg19_bn", "googlenet", "resnet18", "resnet152", "densenet201"
    }  # fmt: skip
    # GoogLeNet's weights expect (x - 0.5) / 0.5 (torchvision's transform_input).
    googlenet = model_info("googlenet").weights
    assert googlenet is not None
    assert googlenet.mean == (0.5, 0.5, 0.5) and googlenet.std == (0.5, 0.5, 0.5)
    # Checked against torchvision's own step: it maps its preset's normalisation of x to
    # what the weights were trained on; ours must give that from x directly.
    preset = tvm.get_model_weights("googlenet").DEFAULT.transforms()
    x = torch.rand(2, 3, 4, 4)
    m, s = (torch.tensor(v).view(1, 3, 1, 1) for v in (preset.mean, preset.std))
    tv_input = tvm.GoogLeNet._transform_input(
        types.SimpleNamespace(transform_input=True),  # type: ignore[arg-type]
        (x - m) / s,
    )
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (googlenet.mean, googlenet.std))
    torch.testing.assert_close((x - mean) / std, tv_input)
    assert model_info("resnet18").weights.mean == (0.485, 0.456, 0.406)  # type: ignore[union-attr]
    # Grey inputs: ImageNet's mean and std averaged over RGB.
    assert model_info("resnet18").weights.normalization(1) == ((0.449,), (0.226,))  # type: ignore[union-attr]


def test_the_download_is_torch_hub_with_hash_check_and_weights_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, dict]] = []

    def fake(url: str, **kwargs: object) -> dict:
        calls.append((url, kwargs))
        return model_info("resnet20").build_net().state_dict()  # any state dict will do

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake)
    state = weights_module._download_state_dict(torchvision_weights("resnet18").url, False)
    assert state
    ((url, kwargs),) = calls
    assert url == "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    assert kwargs["check_hash"] is True and kwargs["weights_only"] is True


def test_pretrained_loads_torchvision_weights_exactly(fake_hub: list[str], tv_resnet18) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every key maps: nothing to warn about
        model = create_model("resnet18", pretrained=True).eval()
    assert fake_hub == [model_info("resnet18").weights.url]  # type: ignore[union-attr]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), tv_resnet18(x))


def test_pretrained_models_predict_with_the_weights_evaluation_transform(
    fake_hub: list[str], tv_resnet18, tmp_path: Path, mnist_raw: Path
) -> None:
    # torchvision evaluates its ImageNet weights on Resize(256) + CenterCrop(224) images;
    # predict_folder must give the network the same input, not a plain 224 px resize.
    digits = read_idx(mnist_raw / "t10k-images-idx3-ubyte.gz")[:12]
    photo = torch.cat([torch.cat(list(digits[:6]), 1), torch.cat(list(digits[6:]), 1)])
    colour = torch.stack([photo, photo.flip(0), 255 - photo])  # 3 x 56 x 168
    write_png(colour, str(tmp_path / "photo.png"))
    model = create_model("resnet18", pretrained=True)
    assert model.data_config["crop_pct"] == 224 / 256
    (row,) = predict_folder(model, tmp_path)
    weights = tvm.ResNet18_Weights.IMAGENET1K_V1
    with torch.no_grad():
        probs = tv_resnet18(weights.transforms()(colour)[None]).softmax(dim=1)[0]
    assert row["class_index"] == int(probs.argmax())
    # torchvision's preset resizes with transforms v1 (through floats), ours with v2's uint8
    # kernel: at most one uint8 step apart. A plain 224 px resize was 5e-3 off.
    assert row["probability"] == pytest.approx(float(probs.max()), abs=2e-4)


def test_pretrained_with_strict_true_refuses_a_fresh_head(fake_hub: list[str], tv_resnet18) -> None:
    # create_model dropped strict for pretrained weights: a new head loaded with no word.
    with pytest.raises(ValueError, match=r"2 key\(s\) .*do not fit ResNetNet:\n  fc\.weight"):
        create_model("resnet18", pretrained=True, num_classes=5, strict=True)
    create_model("resnet18", pretrained=True, strict=True)  # all of them fit


@pytest.mark.parametrize("in_channels", [1, 4])
def test_new_head_and_adapted_first_layer_keep_the_grey_response(
    fake_hub: list[str], tv_resnet18, in_channels: int
) -> None:
    with pytest.warns(UserWarning, match=r"2 key\(s\) not loaded") as record:
        model = create_model("resnet18", pretrained=True, num_classes=10, in_channels=in_channels)
    message = str(record[0].message)
    assert "fc.weight (shape (1000, 512) in the source, (10, 512) here" in message
    assert "fc.bias" in message and "conv1" not in message
    net = model.net
    assert net.fc.out_features == 10 and net.conv1.in_channels == in_channels
    # The head is fresh, the rest is torchvision's.
    assert not torch.equal(net.fc.weight, tv_resnet18.fc.weight[:10])
    torch.testing.assert_close(net.layer4[1].conv2.weight, tv_resnet18.layer4[1].conv2.weight)
    grey = torch.rand(2, 1, 40, 40)
    with torch.no_grad():
        rgb_response = tv_resnet18.conv1(grey.expand(-1, 3, -1, -1))
        response = net.conv1(grey.expand(-1, in_channels, -1, -1))
    torch.testing.assert_close(response, rgb_response, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(("source_channels", "in_channels"), [(1, 3), (3, 1)])
def test_a_3x3_first_conv_is_adapted_both_ways(source_channels: int, in_channels: int) -> None:
    # ResNet-20's stem is a 3x3 convolution: its kernel size equals the RGB channel count,
    # so only the channel dimension (not a spatial one) may decide the adaptation.
    info = model_info("resnet20")
    source = info.build_net(num_classes=10, in_channels=source_channels)
    target = info.build_net(num_classes=10, in_channels=in_channels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every tensor loads: the first conv adapted, not fresh
        assert weights_module.load_into(target, source.state_dict(), source="a ResNet-20") == {}
    w = source.conv1.weight.detach()
    # The documented rule: one channel repeated to three, each copy a third (1 -> 3); three
    # summed into one (3 -> 1).
    expected = w.expand(-1, 3, -1, -1) / 3 if in_channels == 3 else w.sum(1, keepdim=True)
    assert target.conv1.weight.shape == (16, in_channels, 3, 3)
    torch.testing.assert_close(target.conv1.weight.detach(), expected)
    torch.testing.assert_close(target.layer3[2].conv2.weight, source.layer3[2].conv2.weight)
    grey = torch.rand(2, 1, 12, 12)
    with torch.no_grad():
        before = source.conv1(grey.expand(-1, source_channels, -1, -1))
        after = target.conv1(grey.expand(-1, in_channels, -1, -1))
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("in_channels", [1, 2, 3, 4, 5, 6, 7])
def test_adapt_input_conv_keeps_the_sum_over_channels(in_channels: int) -> None:
    w = torch.randn(16, 3, 7, 7)
    adapted = adapt_input_conv(w, in_channels)
    assert adapted.shape == (16, in_channels, 7, 7)
    torch.testing.assert_close(adapted.sum(1), w.sum(1))
    if in_channels == 6:  # a multiple of 3: timm's repeat and 3/in_channels rescaling
        torch.testing.assert_close(adapted, w.repeat(1, 2, 1, 1) * 0.5)
    if in_channels == 1:
        torch.testing.assert_close(adapted, w.sum(1, keepdim=True))


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_adapt_input_conv_computes_in_float32_or_wider_and_keeps_the_dtype(
    dtype: torch.dtype,
) -> None:
    w = torch.randn(16, 3, 7, 7, generator=torch.Generator().manual_seed(0)).to(dtype)
    # The rule in float32 for half and bfloat16, in float64 for float64, rounded once.
    wide = w.to(torch.promote_types(dtype, torch.float32))
    r, g, b = wide[:, 0:1], wide[:, 1:2], wide[:, 2:3]
    expected = {
        1: wide.sum(1, keepdim=True),
        2: torch.cat([r + b, g], 1),
        4: torch.cat([r / 2, g, b, r / 2], 1),
    }
    for in_channels, rule in expected.items():
        adapted = adapt_input_conv(w, in_channels)
        assert adapted.dtype == dtype
        assert torch.equal(adapted, rule.to(dtype)), in_channels
    if dtype == torch.float64:  # not through float32, which gave 0.05000000074505806
        tenth = torch.tensor([[[[0.1]]]], dtype=dtype)
        assert adapt_input_conv(tenth, 2).flatten().tolist() == [0.05, 0.05]


@pytest.mark.parametrize("compiled", [False, True], ids=["plain", "compiled"])
def test_old_densenet_keys_are_renamed(tmp_path: Path, compiled: bool) -> None:
    # As a file given to checkpoint_path / --weights (the offline advice for pretrained=True),
    # also into a torch.compile wrapper, whose own keys all carry _orig_mod.
    from classic_cnns.nets.densenet import DenseNetNet

    source = DenseNetNet(8, (2, 2), 16, num_classes=10)  # torchvision's layout, small
    pattern = re.compile(r"(denselayer\d+\.(?:norm|conv))([12])\.(weight|bias|running_\w+)$")
    # torchvision's files name DenseLayer.norm1 "norm.1" (and have no batch counters).
    old = {pattern.sub(r"\1.\2.\3", k): v for k, v in source.state_dict().items()
           if not (k.endswith("num_batches_tracked") and "denselayer" in k)}  # fmt: skip
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    torch.save(old, tmp_path / "densenet-old.pth")
    target = DenseNetNet(8, (2, 2), 16, num_classes=10)
    into = torch.compile(target) if compiled else target  # compiling keeps target's tensors
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        weights_module.load_weights_file(into, tmp_path / "densenet-old.pth", strict=True)
    for key, value in source.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(target.state_dict()[key], value), key


def test_pretrained_is_refused_where_there_are_no_weights() -> None:
    with pytest.raises(ValueError, match=r"lenet5 has no pretrained weights; .*'resnet18'"):
        create_model("lenet5", pretrained=True)
    with pytest.raises(ValueError, match=r"pretrained=True or checkpoint_path, not both"):
        create_model("resnet18", pretrained=True, checkpoint_path="x.safetensors")


def test_a_pretrained_models_checkpoint_restores_without_downloading(
    fake_hub: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    with pytest.warns(UserWarning):
        model = create_model("resnet18", pretrained=True, num_classes=3, small_input=True)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "m.ckpt")

    def no_download(url: str, progress: bool) -> None:
        raise AssertionError("restoring a checkpoint must not download")

    monkeypatch.setattr(weights_module, "_download_state_dict", no_download)
    restored = ResNet.load_from_checkpoint(tmp_path / "m.ckpt")
    # It keeps the normalisation the ImageNet weights expect, and its network arguments.
    assert restored.data_config["mean"] == list(model_info("resnet18").weights.mean)
    assert restored.hparams.small_input is True
    for a, b in zip(restored.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_reconcile_matches_compiled_keys_both_ways() -> None:
    own = {"_orig_mod.fc.weight": torch.zeros(2, 2)}
    merged, skipped = reconcile_state_dict(own, {"fc.weight": torch.ones(2, 2)})
    assert skipped == {} and merged["_orig_mod.fc.weight"].sum() == 4


def test_adapt_input_conv_keeps_the_grey_response_where_timm_does_not() -> None:
    w = torch.randn(8, 3, 5, 5)
    r, g, b = w[:, 0:1], w[:, 1:2], w[:, 2:3]
    # 4 channels: [R/2, G, B, R/2]; timm's [R, G, B, R] * 3/4 changes the grey response.
    torch.testing.assert_close(adapt_input_conv(w, 4), torch.cat([r / 2, g, b, r / 2], 1))
    timm = torch.cat([r, g, b, r], 1) * 3 / 4
    assert not torch.allclose(timm.sum(1), w.sum(1))
    # 2 channels: [R + B, G] (timm: [R, G] * 3/2).
    torch.testing.assert_close(adapt_input_conv(w, 2), torch.cat([r + b, g], 1))
    assert adapt_input_conv(w.half(), 4).dtype == torch.float16
    with pytest.raises(ValueError, match=r"in_channels must be a positive int; got 0"):
        adapt_input_conv(w, 0)
    with pytest.raises(ValueError, match=r"expected convolution weights .*got shape \(8, 3\)"):
        adapt_input_conv(w[:, :, 0, 0], 1)


# -- weight files: one reader ------------------------------------------------------------


def _lenet_checkpoint(path, **kwargs) -> LeNet5:
    model = LeNet5(**kwargs)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    return model


def test_weight_files_are_read_once_through_load_checkpoint(tmp_path, monkeypatch) -> None:
    path = tmp_path / "m.ckpt"
    model = _lenet_checkpoint(path)
    calls: list[str] = []
    real = torch.load

    def spy(p, *args, **kwargs):
        assert kwargs["weights_only"] is True  # never unpickles code
        calls.append(str(p))
        return real(p, *args, **kwargs)

    # Every torch.load, ours and Lightning's: files.load_checkpoint must be the only one.
    monkeypatch.setattr(files_module.torch, "load", spy)
    file = read_weights_file(path)
    assert calls == [str(path)] and file.arch == "lenet5"
    assert all(torch.equal(v, model.net.state_dict()[k]) for k, v in file.state_dict.items())
    # Each way of loading reads the file once, through the same checked reader.
    for load in (
        lambda p: create_model("lenet5", checkpoint_path=p),
        load_model,
        LeNet5.load_from_checkpoint,
    ):
        calls.clear()
        loaded = load(str(path))
        assert calls == [str(path)]
        assert torch.equal(loaded.net.fc.weight, model.net.fc.weight)
    # So a damaged file is named, with what is wrong, on every path that reads weights.
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(path.read_bytes()[:2000])
    for load in (
        read_weights_file,
        load_model,
        lambda p: create_model("lenet5", checkpoint_path=p),
    ):
        with pytest.raises(
            CheckpointError, match=rf"^{re.escape(str(cut))}: the file is truncated"
        ):
            load(str(cut))
    with pytest.raises(FileNotFoundError, match=r"nope.ckpt: no such weights file"):
        read_weights_file(tmp_path / "nope.ckpt")


def test_plain_state_dicts_and_renamed_safetensors_files_load(tmp_path) -> None:
    pytest.importorskip("safetensors")
    from classic_cnns.export import save_safetensors

    model = LeNet5(num_classes=10)
    # A LightningModule's own state_dict(): the "net." prefix is recognised.
    torch.save(model.state_dict(), tmp_path / "module.pt")
    net = model_info("lenet5").build_net()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_weights_file(net, tmp_path / "module.pt") == {}
    assert torch.equal(net.c1[0].weight, model.net.c1[0].weight)
    # A training script's checkpoint: the network's state dict under "state_dict", and more.
    torch.save({"state_dict": model.net.state_dict(), "epoch": 3}, tmp_path / "script.pt")
    loaded = create_model("lenet5", checkpoint_path=f"file://{tmp_path / 'script.pt'}")
    assert torch.equal(loaded.net.c1[0].weight, model.net.c1[0].weight)
    # A safetensors file is recognised by its contents, whatever its name.
    model.data_config = {"mean": [0.5], "std": [0.25], "class_names": list("abcdefghij")}
    save_safetensors(model, tmp_path / "weights.bin")
    file = read_weights_file(tmp_path / "weights.bin")
    assert file.arch == "lenet5" and set(file.state_dict) == set(model.net.state_dict())
    rebuilt = load_model(tmp_path / "weights.bin", arch="lenet5")  # arch may be repeated
    assert rebuilt.data_config["class_names"][0] == "a"
    # With another head, the recorded class names no longer apply and are dropped.
    with pytest.warns(UserWarning, match="not loaded"):
        five = load_model(tmp_path / "weights.bin", num_classes=5)
    assert five.num_classes == 5 and "class_names" not in five.data_config
    assert five.data_config["mean"] == [0.5]
    # A damaged safetensors file is named.
    (tmp_path / "cut.safetensors").write_bytes((tmp_path / "weights.bin").read_bytes()[:-100])
    with pytest.raises(
        CheckpointError, match=r"cut.safetensors: the safetensors file is truncated"
    ):
        read_weights_file(tmp_path / "cut.safetensors")


def test_a_file_of_another_network_is_refused_not_half_loaded(tmp_path) -> None:
    torch.save(model_info("resnet20").build_net().state_dict(), tmp_path / "resnet.pt")
    with pytest.raises(
        ValueError, match=r"none of the \d+ tensors of .*resnet.pt fits the backbone of LeNet5Net"
    ):
        create_model("lenet5", checkpoint_path=str(tmp_path / "resnet.pt"))
    other = {"state_dict": {"encoder.w": torch.ones(1)}, "pytorch-lightning_version": "2.6.0"}
    torch.save(other, tmp_path / "other.ckpt")
    with pytest.raises(
        CheckpointError, match=r"other.ckpt: the checkpoint's state_dict has no 'net"
    ):
        read_weights_file(tmp_path / "other.ckpt")
    torch.save({"a": [1, 2]}, tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match=r"list.pt: expected a Lightning checkpoint .*list"):
        read_weights_file(tmp_path / "list.pt")
    with pytest.raises(ValueError, match=r"does not record which model it holds") as info:
        load_model(tmp_path / "resnet.pt")
    assert "create_model(NAME, checkpoint_path=" in str(info.value)  # no other model's name


def test_only_the_head_may_differ_unless_strict_is_false(tmp_path) -> None:
    # A backbone tensor missing or unexpected is refused, as a strict load_state_dict would;
    # a head of another shape is not (num_classes=5 gets a fresh head, with a warning).
    _lenet_checkpoint(tmp_path / "m.ckpt")
    checkpoint = torch.load(tmp_path / "m.ckpt", weights_only=False)
    del checkpoint["state_dict"]["net.c3.0.weight"]
    checkpoint["state_dict"]["net.extra"] = torch.zeros(3)
    torch.save(checkpoint, tmp_path / "broken.ckpt")
    expected = r"2 key\(s\) of the checkpoint do not fit LeNet5 outside its head:"
    expected += r"\n  net.extra \(not in this network\)\n  net.c3.0.weight \(not in the source\);"
    with pytest.raises(ValueError, match=expected + r"(.|\n)*pass strict=False") as info:
        LeNet5.load_from_checkpoint(tmp_path / "broken.ckpt")
    # What a command-line user can do too: --weights has no strict option, --pretrained is lenient.
    assert "the command line's --weights has no such option, but --pretrained" in str(info.value)
    with pytest.raises(ValueError, match=r"2 key\(s\) of .*broken.ckpt do not fit LeNet5Net"):
        load_model(tmp_path / "broken.ckpt")
    with pytest.raises(ValueError, match=r"16 key\(s\) of the checkpoint do not fit"):
        LeNet5.load_from_checkpoint(tmp_path / "m.ckpt", arch="lenet5_bn")  # no batch norm
    with pytest.warns(UserWarning, match=r"2 key\(s\) not loaded"):
        lenient = LeNet5.load_from_checkpoint(tmp_path / "broken.ckpt", strict=False)
    source = checkpoint["state_dict"]
    assert torch.equal(lenient.net.c1[0].weight, source["net.c1.0.weight"])
    assert lenient.strict_loading  # the switch was for this load only
    with pytest.warns(UserWarning, match=r"2 key\(s\) not loaded") as record:
        five = LeNet5.load_from_checkpoint(tmp_path / "m.ckpt", num_classes=5)
    assert "net.fc.weight" in str(record[0].message) and five.num_classes == 5
    # strict=True: every tensor must fit, the head's too (as Lightning's strict load).
    with pytest.raises(ValueError, match=r"2 key\(s\) of the checkpoint do not fit LeNet5:"):
        LeNet5.load_from_checkpoint(tmp_path / "m.ckpt", num_classes=5, strict=True)
    # A plain state dict of a smaller ResNet is refused, its head of other classes is not.
    torch.save(tvm.resnet18().state_dict(), tmp_path / "r18.pth")
    with pytest.raises(ValueError, match=r"80 key\(s\) of .*r18.pth do not fit ResNetNet .*\n"
                       r"(  .*\n){10}  and 70 more; it holds another network"):  # fmt: skip
        create_model("resnet34", checkpoint_path=tmp_path / "r18.pth")
    with pytest.warns(UserWarning, match=r"80 key\(s\) not loaded"):
        partial = create_model("resnet34", checkpoint_path=tmp_path / "r18.pth", strict=False)
    assert partial.info.name == "resnet34"
    with pytest.raises(ValueError, match=r"80 key\(s\) of .*r18.pth do not fit ResNetNet"):
        load_model(tmp_path / "r18.pth", arch="resnet34")
    with pytest.warns(UserWarning, match=r"2 key\(s\) not loaded .* into ResNetNet"):
        create_model("resnet18", checkpoint_path=tmp_path / "r18.pth", num_classes=10)


def test_googlenets_auxiliary_heads_may_be_on_one_side_only(tmp_path) -> None:
    with_aux = model_info("googlenet").build_net(num_classes=10)
    without = model_info("googlenet").build_net(num_classes=10, aux_logits=False)
    for source, target in ((with_aux, without), (without, with_aux)):
        with pytest.warns(UserWarning, match="not loaded") as record:
            weights_module.load_into(target, source.state_dict(), source="a GoogLeNet")
        keys = re.findall(r"\n  (\S+)", str(record[0].message))
        assert len(keys) == 18 and all(k.startswith("aux") for k in keys)
        assert torch.equal(target.fc.weight, source.fc.weight)


def test_pretrained_googlenet_says_its_auxiliary_heads_are_not_trained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As torchvision warns: its GoogLeNet file holds auxiliary heads that were never trained.
    torch.manual_seed(0)
    file = tvm.googlenet(weights=None, aux_logits=True, init_weights=True).state_dict()
    monkeypatch.setattr(weights_module, "_download_state_dict", lambda url, progress: file)
    with pytest.warns(UserWarning, match=r"googlenet's pretrained aux1, aux2 are not trained"):
        model = create_model("googlenet", pretrained=True)
    assert torch.equal(model.net.aux1.fc2.weight, file["aux1.fc2.weight"])  # loaded as they are
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = create_model("googlenet", pretrained=True, aux_logits=False)
    assert model.net.aux1 is None  # the heads' keys are named not loaded, not untrained
    assert not [w for w in caught if "not trained" in str(w.message)]
    assert [w for w in caught if "18 key(s) not loaded" in str(w.message)]


def test_a_misspelled_argument_is_refused_not_dropped(tmp_path) -> None:
    _lenet_checkpoint(tmp_path / "m.ckpt")
    with pytest.raises(TypeError, match=r"got unknown argument\(s\) \['num_clases'\]; it takes"):
        LeNet5.load_from_checkpoint(tmp_path / "m.ckpt", num_clases=5)


def test_offline_the_pretrained_error_says_where_the_file_goes(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    import urllib.error

    def offline(url: str, **kwargs: object) -> dict:
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    url = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(OSError) as caught:
        create_model("resnet18", pretrained=True)
    message = str(caught.value)
    assert message.startswith(f"cannot download the pretrained weights {url} ([Errno -2] Name")
    assert f"put that file at {cached}" in message and "checkpoint_path=FILE" in message


def test_a_damaged_cached_pretrained_file_is_named_before_torch_hub_loads_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    # torch.hub checks the hash only when it downloads; a file in its cache is loaded as it is.
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.save(model_info("resnet18").build_net().state_dict(), cached)
    cached.write_bytes(cached.read_bytes()[:5000])  # cut off while being copied
    with pytest.raises(CheckpointError) as caught:
        create_model("resnet18", pretrained=True)
    message = str(caught.value)
    assert message.startswith(f"{cached}: sha256 ")
    assert "does not match the f37072fd... in its name: the cached copy of https://" in message
    assert message.endswith("Delete it, and it is downloaded again")
    # A cached file whose sha256 begins with the prefix in its name is handed to torch.hub.
    data = cached.read_bytes()
    good = cached.with_name(f"resnet18-{hashlib.sha256(data).hexdigest()[:8]}.pth")
    good.write_bytes(data)
    weights_module._check_cached(str(good), "https://example.org/resnet18.pth")


def test_a_compiled_network_loads_a_checkpoint_and_a_fallback_head_is_found(tmp_path) -> None:
    # A network compiled in place of .net (torch.compile's wrapper has no truth value).
    _lenet_checkpoint(tmp_path / "m.ckpt")
    model = LeNet5()
    model.net = torch.compile(model.net)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(model)
    checkpoint = torch.load(tmp_path / "m.ckpt", weights_only=True)
    saved = checkpoint["state_dict"]["net.fc.weight"]
    model.on_load_checkpoint(checkpoint)  # the keys become the compiled network's
    model.load_state_dict(checkpoint["state_dict"])
    assert torch.equal(model.net._orig_mod.fc.weight, saved)

    # A network of one's own without head_names, compiled: its last layer is the head.
    class Own(torch.nn.Module):
        def __init__(self, n: int) -> None:
            super().__init__()
            self.body, self.out = torch.nn.Conv2d(1, 4, 3), torch.nn.Linear(4, n)

    with pytest.warns(UserWarning, match=r"2 key\(s\) not loaded"):
        weights_module.load_into(torch.compile(Own(5)), Own(10).state_dict(), source="own")


@pytest.mark.parametrize("weights_only", [True, False])
def test_a_gpu_checkpoint_loads_where_there_is_no_gpu(
    tmp_path, monkeypatch: pytest.MonkeyPatch, weights_only: bool
) -> None:
    # Saved with its tensors tagged cuda:0, as on a GPU; loaded here, each on the CPU when
    # this machine has no GPU (Lightning's default map_location), however it is read.
    import torch.serialization as serialization

    with monkeypatch.context() as patch:
        patch.setattr(serialization, "location_tag", lambda storage: "cuda:0")
        model = _lenet_checkpoint(tmp_path / "gpu.ckpt")
    restored = LeNet5.load_from_checkpoint(tmp_path / "gpu.ckpt", weights_only=weights_only)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert {p.device.type for p in restored.parameters()} == {expected}
    assert torch.equal(restored.net.fc.weight.cpu(), model.net.fc.weight)


def test_loading_into_what_is_not_a_network_is_refused_before_reading(tmp_path) -> None:
    # The file does not exist: the argument is refused first, naming the function.
    with pytest.raises(TypeError, match=r"^load_weights_file expected a network \(an nn.Module"):
        load_weights_file(LeNet5().net.state_dict(), tmp_path / "nope.pt")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^load_into expected a network .*; got int$"):
        weights_module.load_into(5, {}, source="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^load_pretrained expected a network .*; got str$"):
        weights_module.load_pretrained("lenet5", "lenet5")  # type: ignore[arg-type]


def test_a_folder_given_as_weights_file_is_called_a_folder(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=rf"^{re.escape(str(tmp_path))}: is a folder; "):
        load_weights_file(LeNet5().net, tmp_path)
    with pytest.raises(FileNotFoundError, match=r": no such weights file"):  # missing: as before
        load_weights_file(LeNet5().net, tmp_path / "nope.pt")


class _WithProjection(LeNet5):  # a project's subclass with a module of its own
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.proj = torch.nn.Linear(84, 16)


def test_a_subclass_s_own_modules_are_refused_not_dropped_without_a_word(tmp_path: Path) -> None:
    # load_model and create_model(checkpoint_path=...) rebuild the registered class: even with
    # strict=True they left the subclass's proj.* out without a word.
    model = _WithProjection(num_classes=10)
    x, y = torch.rand(8, 1, 32, 32), torch.arange(8)
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(model, torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), 8))
    trainer.save_checkpoint(path := tmp_path / "proj.ckpt")
    assert read_weights_file(path).outside == ("proj.weight", "proj.bias")
    refusal = (
        r"proj.ckpt: 2 key\(s\) do not fit LeNet5Net:\n"
        r"  proj.weight \(outside the network 'net' of the checkpoint's module\)\n  proj.bias .*\n"
        r"The checkpoint's LightningModule had modules of its own \(a subclass's\?\): load it "
        r"with that class's load_from_checkpoint, or its network alone with strict=False \(in "
        r"Python: load_model\(path, strict=False\); the command line has no such option\)$"
    )
    loaders = [
        lambda **kw: load_model(path, **kw),
        lambda **kw: create_model("lenet5", checkpoint_path=path, **kw),
    ]
    for load in loaders:
        for strict in (None, True):
            with pytest.raises(CheckpointError, match=refusal):
                load(strict=strict)
        with pytest.warns(UserWarning, match=r"2 key\(s\) not loaded from .*proj.ckpt into Le"):
            loaded = load(strict=False)
        assert torch.equal(loaded.net.fc.weight, model.net.fc.weight)
    own = _WithProjection.load_from_checkpoint(path)  # its own class loads all of it
    assert torch.equal(own.proj.weight, model.proj.weight)
