import dataclasses
import inspect

import pytest
import torch

import classic_cnns
from classic_cnns import ModelInfo, create_model, list_models, model_info, register_model
from classic_cnns.recipes import Recipe
from classic_cnns.registry import _REGISTRY, _TASK_ARGUMENTS
from conftest import TOY_ENTRY


def test_list_models_sorted_and_wildcards() -> None:
    names = list_models()
    assert sorted(names) == sorted(_REGISTRY)
    # Natural order, as timm's: the numbers compare as numbers.
    assert list_models("resnet*") == [
        f"resnet{d}" for d in (18, 20, 32, 34, 44, 50, 56, 101, 110, 152)
    ]
    assert names.index("densenet121") < names.index("densenet_bc_100") < names.index("googlenet")
    assert {"lenet5", "lenet5_modern", "lenet5_bn"} <= set(names)
    assert list_models("lenet*") == [n for n in names if n.startswith("lenet")]
    assert list_models("LENET5") == ["lenet5"]
    assert list_models("no_such_*") == []
    with pytest.raises(TypeError, match=r"must be a str such as 'resnet\*', or None; got 5"):
        list_models(5)  # type: ignore[arg-type]


def test_model_info_is_frozen_with_the_facts() -> None:
    info = model_info("lenet5")
    assert isinstance(info, ModelInfo)
    assert (info.paper, info.year) == (
        "Gradient-Based Learning Applied to Document Recognition",
        1998,
    )
    assert info.input_size == (1, 32, 32)
    assert info.min_input_size == (32, 32)
    assert info.num_params == 61_706
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.year = 2000  # type: ignore[misc]


@pytest.mark.parametrize("name", list_models())
def test_declared_parameter_count_is_the_built_one(name: str) -> None:
    info = model_info(name)
    # Built with every option at the default that options reports (CIFAR nets: small_input).
    net = info.build_net(**{k: p.default for k, p in info.options.items()})
    # Training-only auxiliary heads (GoogLeNet's aux1/aux2) are not part of the count.
    inference = sum(p.numel() for n, p in net.named_parameters() if not n.startswith("aux"))
    assert inference == info.num_params


def test_unknown_name_suggests_close_names() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'lenet'.*Did you mean 'lenet5'"):
        create_model("lenet")
    with pytest.raises(ValueError, match="unknown model 'zzzz'") as err:
        model_info("zzzz")
    assert "Did you mean" not in str(err.value)
    with pytest.raises(TypeError, match=r"expected a registered model's name \(a str\); got None"):
        model_info(None)  # type: ignore[arg-type]


def test_create_model_returns_the_family_lightning_module() -> None:
    model = create_model("lenet5_modern", num_classes=7, in_channels=3)
    assert isinstance(model, classic_cnns.LeNet5)
    assert model.hparams.arch == "lenet5_modern"
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)


def test_register_model_adds_a_user_network_and_refuses_duplicates() -> None:
    @register_model(**{**TOY_ENTRY, "num_params": 650}, name="Toy_Linear_Test")
    def toy(*, num_classes: int = 10, in_channels: int = 1) -> torch.nn.Module:
        return torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(in_channels * 64, num_classes)
        )

    try:
        model = create_model("Toy_Linear_Test")
        assert type(model) is classic_cnns.ImageClassifier  # no family class: the generic task
        assert model(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
        # Wildcards ignore case on both sides, for a user's name with capitals too.
        assert list_models("Toy_Linear_Test") == list_models("toy_linear*") == ["Toy_Linear_Test"]
        with pytest.raises(ValueError, match="registered already"):
            register_model(**{**TOY_ENTRY, "num_params": 650}, name="Toy_Linear_Test")(toy)
    finally:
        _REGISTRY.pop("Toy_Linear_Test")


def test_a_file_of_a_model_not_registered_here_says_to_import_it(tmp_path) -> None:
    # In a new process that has not run the user's register_model: "unknown model 'toy'"
    # named neither the file nor the way out. The file as Lightning saves one.
    torch.save({"state_dict": {}, "hyper_parameters": {"arch": "toy_saved"}}, tmp_path / "m")
    path = str(tmp_path / "m")
    expected = rf"{path} holds a 'toy_saved' model, which is not registered here: import the"
    with pytest.raises(ValueError, match=expected):
        classic_cnns.load_model(path)
    with pytest.raises(ValueError, match=expected):
        classic_cnns.ImageClassifier.load_from_checkpoint(path)


def test_create_model_builds_the_arch_it_is_named() -> None:
    with pytest.raises(TypeError, match=r"named, 'lenet5'; got arch='lenet5_bn' too"):
        create_model("lenet5", arch="lenet5_bn")


def test_family_class_refuses_another_familys_arch() -> None:
    @register_model(**TOY_ENTRY, name="toy_other_family")
    def toy(*, num_classes: int = 10, in_channels: int = 1) -> torch.nn.Module:
        return torch.nn.Identity()

    try:
        with pytest.raises(
            ValueError, match=r"LeNet5 builds 'lenet' models.*got arch='toy_other_family'"
        ):
            classic_cnns.LeNet5(arch="toy_other_family")
    finally:
        _REGISTRY.pop("toy_other_family")


def _toy(*, num_classes: int = 10, in_channels: int = 1) -> torch.nn.Module:
    return torch.nn.Flatten()


def _with_lr(*, num_classes: int = 10, in_channels: int = 1, lr: float = 0.1) -> torch.nn.Module:
    return torch.nn.Flatten()


@pytest.mark.parametrize(
    ("kwargs", "builder", "error", "match"),
    [
        ({"name": 5}, _toy, ValueError, r"name must be a non-empty str .*got 5"),
        ({"name": ""}, _toy, ValueError, r"name must be a non-empty str .*got ''"),
        ({"name": "LENET5"}, _toy, ValueError, r"'lenet5' is registered already .*ignoring case"),
        ({"name": "toy_nc"}, 5, TypeError, "decorates a function that builds the network; got 5"),
        (
            {"name": "toy_sizes"},
            lambda hidden=3: torch.nn.Flatten(),
            TypeError,
            r"must take the keyword arguments num_classes and in_channels; it takes \['hidden'\]",
        ),
        (
            {"name": "toy_abc", "input_size": "abc"},
            _toy,
            ValueError,
            r"input_size must be \(C, H, W\)",
        ),
        (
            {"name": "toy_0", "input_size": (1, 0, 8)},
            _toy,
            ValueError,
            r"3 ints >= 1; got \(1, 0, 8\)",
        ),
        (
            {"name": "toy_min", "min_input_size": (8,)},
            _toy,
            ValueError,
            r"min_input_size must be \(H, W\)",
        ),
        (  # the network's forward refused its own default input, naming the data's size
            {"name": "toy_big", "input_size": (1, 8, 8), "min_input_size": (8, 100)},
            _toy,
            ValueError,
            r"min_input_size \(8, 100\) exceeds input_size's \(H, W\) \(8, 8\): the network",
        ),
        (
            {"name": "toy_lr"},
            _with_lr,
            ValueError,
            r"options \['lr'\] are named like arguments of the task",
        ),
        (
            {"name": "toy_recipe", "recipe": {"batch_size": 64}},
            _toy,
            TypeError,
            r"recipe must be a classic_cnns.recipes.Recipe or None; got \{'batch_size': 64\}",
        ),
        # The listing's facts: each failed later (model_table, create_model(pretrained=True)).
        ({"name": "toy_w", "weights": "imagenet"}, _toy, TypeError, r"weights must be a Weigh"),
        ({"name": "toy_p", "num_params": "many"}, _toy, ValueError, r"num_params must be an int"),
        ({"name": "toy_n", "num_params": -5}, _toy, ValueError, r"at least 0; got -5"),
        ({"name": "toy_c", "num_classes": 0}, _toy, ValueError, r"num_classes must be an int of"),
        ({"name": "toy_y", "year": "2024"}, _toy, ValueError, r"year must be an int of at least"),
        ({"name": "toy_f", "family": None}, _toy, TypeError, r"family must be a non-empty str"),
    ],
)
def test_register_model_refuses_a_bad_entry_and_records_nothing(
    kwargs: dict, builder: object, error: type[Exception], match: str
) -> None:
    before = dict(_REGISTRY)
    with pytest.raises(error, match=match):
        register_model(**{**TOY_ENTRY, **kwargs})(builder)  # type: ignore[arg-type]
    assert before == _REGISTRY
    assert list_models("lenet5") == ["lenet5"]  # the registry still lists and finds its names


def test_the_option_names_register_model_reserves_are_the_tasks_arguments() -> None:
    params = inspect.signature(classic_cnns.ImageClassifier.__init__).parameters.values()
    task = {p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD} - {"self"}
    assert task == _TASK_ARGUMENTS


def test_build_net_refuses_a_builder_that_returns_no_module() -> None:
    register_model(**TOY_ENTRY, name="toy_not_a_module")(lambda **kwargs: 5)
    try:
        with pytest.raises(TypeError, match=r"must return an nn\.Module network; it returned 5"):
            create_model("toy_not_a_module")
    finally:
        _REGISTRY.pop("toy_not_a_module")


def test_a_family_with_a_class_takes_members_with_its_options_only() -> None:
    def hidden(*, num_classes: int = 10, in_channels: int = 3, hidden: int = 5) -> torch.nn.Module:
        return torch.nn.Flatten()

    def stem(
        *, num_classes: int = 10, in_channels: int = 3, small_input: bool = False
    ) -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(in_channels, num_classes))

    # ResNet's __init__ is written once: `hidden` cannot reach the network through it; the
    # member is registered (it builds with its defaults) and the message says what to do.
    register_model(**{**TOY_ENTRY, "family": "resnet"}, name="toy_resnet")(hidden)
    try:
        assert isinstance(create_model("toy_resnet"), classic_cnns.ResNet)
        assert model_info("toy_resnet").build_net(hidden=3) is not None
        with pytest.raises(TypeError, match=r"toy_resnet's network option\(s\) \['hidden'\] cann"):
            create_model("toy_resnet", hidden=3)
    finally:
        _REGISTRY.pop("toy_resnet")
    # Under a family of its own, ImageClassifier hands the option to the builder.
    register_model(**{**TOY_ENTRY, "family": "toy_res"}, name="toy_res")(hidden)
    register_model(**{**TOY_ENTRY, "family": "resnet"}, name="toy_res_stem")(stem)
    try:
        assert create_model("toy_res", hidden=3).hparams.hidden == 3
        model = create_model("toy_res_stem", small_input=True)
        assert isinstance(model, classic_cnns.ResNet) and model.hparams.small_input is True
    finally:
        _REGISTRY.pop("toy_res")
        _REGISTRY.pop("toy_res_stem")


@pytest.mark.parametrize(
    ("field", "edge", "value", "expected"),
    [
        ("optimizer", "rmsprop", "nope", r"one of \('sgd', 'adam', 'adamw', 'rmsprop'\)"),
        ("optimizer", "sgd", None, r"one of \('sgd', .*\)"),
        ("scheduler", "none", "linear", r"one of \('cosine', 'onecycle', 'step', 'none'\)"),
        ("lr", 1, -1, "a positive finite number"),
        ("lr", 1e-8, 0.0, "a positive finite number"),
        ("lr", 0.1, float("nan"), "a positive finite number"),
        ("lr", 0.1, "0.1", "a positive finite number"),
        ("weight_decay", 0, -1e-4, "a finite number >= 0"),
        ("weight_decay", 0.0, float("inf"), "a finite number >= 0"),
        ("momentum", 0.99, 1.0, r"in \[0, 1\)"),
        ("momentum", 0, -0.1, r"in \[0, 1\)"),
        ("label_smoothing", 0.99, 1.0, r"in \[0, 1\)"),
        ("batch_size", 1, 0, "an int >= 1"),
        ("batch_size", 32, 32.0, "an int >= 1"),
        ("batch_size", 1, True, "an int >= 1"),
        ("epochs", 1, -3, "an int >= 1"),
        ("epochs", 1, 0, "an int >= 1"),
        ("small_image_size", 1, 0, "None or an int >= 1"),
        ("small_image_size", None, 32.5, "None or an int >= 1"),
    ],
)
def test_a_recipe_refuses_a_field_out_of_range_naming_it(
    field: str, edge: object, value: object, expected: str
) -> None:
    # Accepted, these failed far from the recipe (a batch of 0: a ZeroDivisionError in the
    # data loader; an image size of 0: "image_size ... got None") or printed nonsense.
    assert getattr(Recipe(**{field: edge}), field) == edge  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=rf"^Recipe\.{field} must be {expected}; got "):
        Recipe(**{field: value})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=rf"^Recipe\.{field} must be "):
        dataclasses.replace(Recipe(), **{field: value})
