"""Network options: each declared once, in its network class, and reaching every layer above.

A network class's keyword-only arguments are its options (``small_input``, ``dropout``, ...).
The builders pass them on as ``**kwargs`` and declare none; ``model_info(name).options``
reads them; the family classes' ``__init__`` is written from them; checkpoints record them;
and the generic ``ImageClassifier`` takes them too.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import pytest
import torch

from classic_cnns import (
    DenseNet,
    ImageClassifier,
    LeNet5,
    ResNet,
    create_model,
    list_models,
    load_model,
    model_info,
    register_model,
)
from classic_cnns.hub import load_weights
from classic_cnns.models import FAMILIES, family_class
from classic_cnns.nets.densenet import DenseNetNet
from classic_cnns.nets.vgg import CONFIGS
from classic_cnns.registry import _REGISTRY
from classic_cnns.weights import load_into
from conftest import TOY_ENTRY

NAMES = list_models()
CIFAR = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "densenet_bc_100")


@pytest.mark.parametrize("name", NAMES)
def test_network_classes_declare_the_options_cifar_builders_pin_their_stem(name: str) -> None:
    info = model_info(name)
    builder = inspect.signature(info.builder).parameters
    # Except that a CIFAR network's builder pins its stem: small_input=True, all it accepts.
    pinned = {"small_input"} if name in CIFAR else set()
    assert set(builder) - {"kwargs"} == {"num_classes", "in_channels", *pinned}, name
    network = inspect.signature(info.network).parameters  # type: ignore[arg-type]
    for option, parameter in info.options.items():
        assert network[option].kind is inspect.Parameter.KEYWORD_ONLY, (name, option)
        expected = builder[option].default if option in pinned else network[option].default
        assert parameter.default == expected, (name, option)
    if pinned:
        assert info.options["small_input"].default is True


@pytest.mark.parametrize("cls", list(FAMILIES.values()), ids=lambda c: c.__name__)
def test_a_family_class_takes_the_task_arguments_and_its_networks_options(cls: type) -> None:
    members = [model_info(n) for n in NAMES if model_info(n).family == cls.family]
    options = {o: p for info in members for o, p in info.options.items()}
    params = inspect.signature(cls).parameters
    task = inspect.signature(ImageClassifier).parameters
    expected = [n for n, p in task.items() if p.kind is not p.VAR_KEYWORD] + list(options)
    assert list(params) == expected
    assert params["arch"].default == cls.default_arch
    assert model_info(cls.default_arch).family == cls.family
    for option, parameter in options.items():
        assert params[option].kind is inspect.Parameter.KEYWORD_ONLY
        assert params[option].default is None  # None: the network's own default
        assert params[option].annotation == parameter.annotation | None
        assert option in (cls.__init__.__doc__ or "")  # described, for --help
    doc = cls.__init__.__doc__ or ""
    assert ("Args:" in doc) == bool(options)  # no empty section (LeNet5 has no options)
    # Written from the network classes, not by hand in classic_cnns/models.py.
    assert inspect.getsourcefile(cls.__init__).startswith("<generated")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "option", "value", "check"),
    [
        ("resnet18", "small_input", True, lambda m: isinstance(m.net.maxpool, torch.nn.Identity)),
        ("resnet20", "zero_init_residual", True, lambda m: not m.net.layer1[0].bn2.weight.any()),
        ("alexnet", "dropout", 0.25, lambda m: m.net.classifier[0].p == 0.25),
        ("nin", "final_relu", True, lambda m: len(m.net.classifier) == 2),
        ("googlenet", "aux_logits", False, lambda m: m.net.aux1 is None),
        (
            "densenet121",
            "memory_efficient",
            True,
            lambda m: m.net.features.denseblock1.denselayer1.memory_efficient,
        ),
    ],
)
def test_an_option_reaches_the_network_through_every_route(
    name: str, option: str, value: Any, check: Any, tmp_path: Path
) -> None:
    family = family_class(model_info(name).family)
    built = [
        family(name, **{option: value}),
        ImageClassifier(name, **{option: value}),
        create_model(name, **{option: value}),
    ]
    for model in built:
        assert check(model), type(model).__name__
        assert model.hparams[option] == value
    # The checkpoint records the option; both the family class and the generic task, and
    # load_model, rebuild the network with it from the file alone.
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_checkpointing=False)
    trainer.strategy.connect(built[0])
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    for loaded in (
        family.load_from_checkpoint(tmp_path / "m.ckpt"),
        ImageClassifier.load_from_checkpoint(tmp_path / "m.ckpt"),
        load_model(tmp_path / "m.ckpt"),
    ):
        assert check(loaded), type(loaded).__name__
        assert loaded.hparams[option] == value


def test_build_net_refuses_in_channels_that_are_not_a_positive_int() -> None:
    for bad in (0, -1, 2.5, True, "3"):  # 0 built a Conv2d(0, 64) without complaint
        with pytest.raises(ValueError, match=rf"in_channels must be an int >= 1; got {bad!r}"):
            model_info("resnet18").build_net(in_channels=bad)


def test_an_unknown_option_is_refused_with_the_ones_there_are() -> None:
    # A TypeError, as a class refuses an unknown keyword, naming the task's arguments too: a
    # misspelled momentum was "lenet5 takes no network argument ...; its arguments are
    # ['num_classes', 'in_channels']", a ValueError.
    with pytest.raises(TypeError, match=r"got an unexpected argument 'small_input': it takes "):
        ImageClassifier("lenet5", small_input=True)
    with pytest.raises(TypeError, match=r"task's arguments \(lr, momentum, .*options \(none\)"):
        ImageClassifier("lenet5", momentun=0.9)
    with pytest.raises(TypeError, match=r"resnet18's network options \(zero_init_residual, sm"):
        ImageClassifier("resnet18", small_inputs=True)
    with pytest.raises(ValueError, match=r"lenet5 takes no network argument 'small_input'.*"):
        model_info("lenet5").build_net(small_input=True)  # the network's builder
    with pytest.raises(TypeError, match="unexpected keyword argument 'small_input'"):
        FAMILIES["lenet"](small_input=True)


def test_a_cifar_network_keeps_its_small_stem() -> None:
    assert isinstance(ResNet("resnet20", small_input=True).net.maxpool, torch.nn.Identity)
    for cls, name in ((ResNet, "resnet20"), (DenseNet, "densenet_bc_100")):
        with pytest.raises(ValueError, match=f"{name} is a CIFAR network.*got False"):
            cls(name, small_input=False)
    with pytest.raises(ValueError, match="the CIFAR stem is small already"):
        DenseNetNet(12, (2, 2), 24, stem="cifar", small_input=True)


def test_densenet_small_input_changes_only_the_stem_convolution() -> None:
    small = model_info("densenet121").build_net(small_input=True).features
    default = model_info("densenet121").build_net().features
    assert (small.conv0.kernel_size, small.conv0.stride) == ((3, 3), (1, 1))
    assert "pool0" not in dict(small.named_children())
    assert [n for n, _ in small.named_children()] == [
        n for n, _ in default.named_children() if n != "pool0"
    ]


def test_a_subclass_of_a_family_class_records_its_own_arguments_too() -> None:
    class Wide(ResNet):
        def __init__(self, note: str = "mine", **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.note = note

    model = Wide(note="kept", arch="resnet20", zero_init_residual=True)
    assert model.hparams.note == "kept"
    assert model.hparams.zero_init_residual is True
    assert model.hparams.arch == "resnet20"


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        (
            "resnet20",
            {"zero_init_residual": "no"},
            "zero_init_residual must be True or False; got 'no'",
        ),
        (
            "googlenet",
            {"small_input": True, "aux_logits": "false"},
            "aux_logits must be True or False",
        ),
        ("nin", {"final_relu": 1}, "final_relu must be True or False; got 1"),
        ("nin", {"dropout": 1.5}, r"dropout must be a probability in \[0, 1\]; got 1.5"),
        ("nin", {"dropout": "x"}, r"dropout must be a probability in \[0, 1\]; got 'x'"),
        ("vgg11", {"width_mult": "2"}, "width_mult must be a finite number; got '2'"),
    ],
)
def test_an_option_must_be_what_its_annotation_says(
    name: str, options: dict[str, Any], match: str
) -> None:
    for build in (model_info(name).build_net, lambda **kw: create_model(name, **kw)):
        with pytest.raises(ValueError, match=match):
            build(**options)


@pytest.mark.parametrize(
    ("module", "builder", "flag"),
    [
        ("vgg", "vgg11", "small_input"),
        ("vgg", "VGGNet", "batch_norm"),
        ("alexnet", "alexnet", "small_input"),
        ("googlenet", "googlenet", "aux_logits"),
        ("googlenet", "googlenet", "small_input"),
        ("nin", "nin", "final_relu"),
        ("lenet", "LeNet5Net", "modern"),
        ("lenet", "LeNet5Net", "batch_norm"),
    ],
)
def test_a_network_built_directly_checks_its_flags_too(
    module: str, builder: str, flag: str
) -> None:
    # Only the registry checked these: vgg11(small_input="false") built the small head.
    build = getattr(importlib.import_module(f"classic_cnns.nets.{module}"), builder)
    args = (CONFIGS[11],) if builder == "VGGNet" else ()
    with pytest.raises(ValueError, match=rf"^{flag} must be True or False; got 'false'"):
        build(*args, **{flag: "false"})


def test_a_network_built_directly_takes_numpy_widths_and_refuses_empty_transitions() -> None:
    from classic_cnns.nets.vgg import vgg11

    # np.float32(0.25) was "not a finite number > 0"; build_net took it.
    widths = [m.out_channels for m in vgg11(width_mult=np.float32(0.25)).modules()
              if isinstance(m, torch.nn.Conv2d)]  # fmt: skip
    assert widths == [16, 32, 64, 64, 128, 128, 128, 128]
    # A transition of int(0.01 * 48) = 0 channels built, and failed in forward.
    with pytest.raises(ValueError, match=r"compression=0\.01 leaves transition1 int\(0\.01 \* "
                       r"48\) = 0 channels; expected at least 1"):  # fmt: skip
        DenseNetNet(12, (2, 2, 2), 24, num_classes=10, stem="cifar", compression=0.01)


def test_an_int_option_of_a_users_builder_is_checked_and_numpy_numbers_taken_as_plain() -> None:
    @register_model(**{**TOY_ENTRY, "family": "toy_int_option"}, name="toy_int_option")
    def toy(*, num_classes: int = 10, in_channels: int = 1, hidden: int = 5) -> torch.nn.Module:
        return torch.nn.Linear(hidden, num_classes)

    try:
        with pytest.raises(ValueError, match=r"hidden must be an int; got 2\.5"):
            create_model("toy_int_option", hidden=2.5)
        net = model_info("toy_int_option").build_net(hidden=np.int64(3))
        assert net.in_features == 3 and type(net.in_features) is int
    finally:
        _REGISTRY.pop("toy_int_option")


def test_a_literal_and_an_optional_option_of_a_users_builder_are_checked() -> None:
    @register_model(**{**TOY_ENTRY, "family": "toy_typed_options"}, name="toy_typed_options")
    def toy(
        *,
        num_classes: int = 10,
        in_channels: int = 1,
        act: Literal["relu", "tanh"] = "relu",
        width: int | None = None,
    ) -> torch.nn.Module:
        return torch.nn.Linear(width or 3, num_classes)

    try:
        assert create_model("toy_typed_options", act="tanh").hparams.act == "tanh"
        with pytest.raises(ValueError, match=r"act must be one of \('relu', 'tanh'\); got 'gelu'"):
            create_model("toy_typed_options", act="gelu")
        assert create_model("toy_typed_options", width=None).hparams.width is None
        assert create_model("toy_typed_options", width=4).net.in_features == 4
        with pytest.raises(ValueError, match=r"width must be an int; got 'wide'"):
            create_model("toy_typed_options", width="wide")
    finally:
        _REGISTRY.pop("toy_typed_options")


@pytest.mark.parametrize("dropout", [0.0, 1.0])
def test_a_dropout_at_either_end_of_0_to_1_is_taken_and_recorded(dropout: float) -> None:
    model = create_model("alexnet", dropout=dropout)
    assert model.hparams.dropout == dropout
    assert model.net.classifier[0].p == dropout


def test_pretrained_and_strict_must_be_true_or_false(tmp_path: Path) -> None:
    model = create_model("lenet5")
    torch.save(model.net.state_dict(), tmp_path / "w.pt")
    with pytest.raises(ValueError, match="pretrained must be True or False; got 'no'"):
        create_model("resnet18", pretrained="no")
    with pytest.raises(ValueError, match="pretrained must be True or False; got 'no'"):
        load_weights(model, pretrained="no")  # type: ignore[arg-type]
    strict = r"strict must be True, False or None \(the default\); got 'no'"
    with pytest.raises(ValueError, match=strict):
        create_model("lenet5", checkpoint_path=tmp_path / "w.pt", strict="no")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=strict):
        load_weights(model, checkpoint_path=tmp_path / "w.pt", strict="no")  # type: ignore[arg-type]
    # Also where a user loads a checkpoint or a state dict: "false" (a string) acted as True.
    trainer = L.Trainer(logger=False, enable_checkpointing=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    with pytest.raises(ValueError, match=strict.replace("'no'", "'false'")):
        LeNet5.load_from_checkpoint(tmp_path / "m.ckpt", num_classes=5, strict="false")
    with pytest.raises(ValueError, match=strict):
        load_into(model.net, model.net.state_dict(), source="w.pt", strict="no")  # type: ignore[arg-type]


@pytest.mark.parametrize(("path", "error"), [("", ValueError), (None, TypeError), (5, TypeError)])
def test_a_checkpoint_path_that_is_no_path_is_named(path: object, error: type) -> None:
    # "" (ModelCheckpoint.best_model_path before a save) read as the current folder, and
    # None as a corrupted file.
    expected = "is empty; expected a file's path" if path == "" else "must be a file's path"
    with pytest.raises(error, match=rf"checkpoint_path {expected}"):
        LeNet5.load_from_checkpoint(path)  # type: ignore[arg-type]
    with pytest.raises(error, match=rf"^path {expected}"):
        load_model(path)  # type: ignore[arg-type]


def test_numpy_and_tensor_numbers_are_recorded_plain_so_the_checkpoint_loads(
    tmp_path: Path,
) -> None:
    model = create_model(
        "nin",
        optimizer="sgd",
        lr=np.float64(0.05),
        weight_decay=np.float32(0.5),
        momentum=torch.tensor(0.8),
        temperature=np.float64(3.0),
        dropout=np.float64(0.25),
        final_relu=np.bool_(True),
        num_classes=np.array([3, 7]).max() + 1,  # an np.int64, as a count of labels gives
        in_channels=torch.tensor(2),
    )
    plain = {"lr": 0.05, "weight_decay": 0.5, "momentum": 0.800000011920929, "temperature": 3.0}
    plain |= {"dropout": 0.25, "final_relu": True, "num_classes": 8, "in_channels": 2}
    assert (model.num_classes, model.in_channels) == (8, 2)
    for hparams in (model.hparams, model.hparams_initial):
        assert {k: (hparams[k], type(hparams[k])) for k in plain} == {
            k: (v, type(v)) for k, v in plain.items()
        }
    assert model.net.features[2].p == 0.25 and len(model.net.classifier) == 2
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_checkpointing=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "np.ckpt")
    loaded = load_model(tmp_path / "np.ckpt")  # weights_only: numpy's scalars would be refused
    assert {k: loaded.hparams[k] for k in plain} == plain


def test_the_hyperparameters_record_the_sizes_used(tmp_path: Path) -> None:
    model = create_model("resnet20")  # the architecture's sizes: 10 classes, 3 channels
    assert (model.num_classes, model.in_channels) == (10, 3)
    for hparams in (model.hparams, model.hparams_initial):
        assert (hparams["num_classes"], hparams["in_channels"]) == (10, 3)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_checkpointing=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    for loaded in (
        load_model(tmp_path / "m.ckpt"),
        ResNet.load_from_checkpoint(tmp_path / "m.ckpt"),
    ):
        assert (loaded.hparams["num_classes"], loaded.hparams["in_channels"]) == (10, 3)
        assert torch.equal(loaded.net.fc.weight, model.net.fc.weight)
    with pytest.warns(UserWarning, match="kept fresh"):  # other classes: a fresh head
        assert load_model(tmp_path / "m.ckpt", num_classes=4).net.fc.out_features == 4


def test_a_file_s_lr_is_kept_with_its_own_optimizer_only(tmp_path: Path) -> None:
    # create_model's docstring: the file's hyperparameters are the defaults of the arguments
    # not given, "its lr not for another optimizer"; then lr is the recipe's, as for a model
    # built without a file (LeNet-5's: SGD at 0.1, the README's recipe table), with its warning.
    from classic_cnns.export import save_safetensors

    path = tmp_path / "sgd.safetensors"
    save_safetensors(create_model("lenet5", optimizer="sgd", lr=0.5), path)
    for same in ({}, {"optimizer": "sgd"}):
        model = create_model("lenet5", checkpoint_path=path, **same)
        assert (model.hparams["optimizer"], model.hparams["lr"]) == ("sgd", 0.5), same
    with pytest.warns(UserWarning, match=r"lr 0\.1 is lenet5's recipe's for 'sgd'; 'adamw'"):
        model = create_model("lenet5", checkpoint_path=path, optimizer="adamw")
    assert (model.hparams["optimizer"], model.hparams["lr"]) == ("adamw", 0.1)
    assert model_info("lenet5").recipe.lr == 0.1
    # An lr given wins over both.
    model = create_model("lenet5", checkpoint_path=path, optimizer="adamw", lr=1e-3)
    assert (model.hparams["optimizer"], model.hparams["lr"]) == ("adamw", 1e-3)


def test_none_given_with_a_file_takes_the_file_s_value_not_the_recipe_s(tmp_path: Path) -> None:
    # A wrapper passing num_classes=None threw the trained 3-class head away (10 classes and
    # a warning), and lr=None gave the recipe's 0.1 to the file's Adam.
    from classic_cnns.export import save_safetensors

    path = tmp_path / "adam3.safetensors"
    trained = create_model("lenet5", num_classes=3, optimizer="adam", lr=0.02, backbone_lr=1e-3)
    save_safetensors(trained, path)
    builds = {
        "create_model": lambda **kw: create_model("lenet5", checkpoint_path=path, **kw),
        "load_model": lambda **kw: load_model(path, **kw),
    }
    for name, build in builds.items():
        model = build(num_classes=None, optimizer=None, lr=None)
        hparams = model.hparams
        assert (hparams["num_classes"], hparams["optimizer"], hparams["lr"]) == (3, "adam", 0.02)
        for key, tensor in trained.net.state_dict().items():
            assert torch.equal(model.net.state_dict()[key], tensor), (name, key)
        # backbone_lr=None is a choice (the backbone at lr), not the default: it stays None.
        assert build(backbone_lr=None).hparams["backbone_lr"] is None, name
