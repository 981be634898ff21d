"""Every model's recipe is the README's, and every family learns with it on real Fashion-MNIST.

The recipes' optimizer, learning rate and schedule are the ones each model gets by default;
the budget is a CPU's: 48 steps of 64 real Fashion-MNIST training images at 32 pixels (16
for NiN, GoogLeNet and ResNet-18, whose layers accept it), then the first 1,000 test images.
Chance is 10%. The thresholds sit below what these runs measured (in the comments), and
far above chance; AlexNet and the plain VGGs left at chance by AdamW 3e-3 is what the recipes
fixed.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L
import pytest

from classic_cnns import FashionMNIST, create_model, list_models, model_info
from conftest import in_clone

# The README's "Training recipes" table, family by family, with every registered model named:
# a model added without a row here fails. Fields the table leaves out are the generic ones
# (Recipe's docstring: "wd 0.0005, batch 128, 10 epochs"; label smoothing off by default).
_ADAMW = {"optimizer": "adamw", "weight_decay": 5e-4, "scheduler": "onecycle"}
_CIFAR = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "scheduler": "step"}
_LENET, _ALEX, _BN = (
    "LeNet-5",
    "AlexNet, plain VGG",
    "NiN, GoogLeNet, `_bn` VGGs, ImageNet ResNets and DenseNets",
)
_SGD_STEP = "CIFAR ResNets, DenseNet-BC-100"  # the README rows' first cells
_README_RECIPES: list[tuple[str, set[str], dict[str, Any]]] = [
    # LeNet-5: SGD (Nesterov) 0.1, one-cycle, batch 128, 12 epochs, 32 px.
    (
        _LENET, {"lenet5", "lenet5_bn", "lenet5_modern"},
        {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4,
         "scheduler": "onecycle", "batch_size": 128, "epochs": 12, "small_image_size": 32},
    ),
    # AlexNet, plain VGG: AdamW 1e-4, one-cycle, batch 128, 10 epochs, 224 px.
    (
        _ALEX, {"alexnet", "vgg11", "vgg13", "vgg16", "vgg19"},
        {**_ADAMW, "lr": 1e-4, "batch_size": 128, "epochs": 10, "small_image_size": 224},
    ),
    # NiN, GoogLeNet, _bn VGGs, ImageNet ResNets and DenseNets: AdamW 3e-3, one-cycle, batch
    # 128, 10 epochs; 32 px for NiN, 224 for the VGGs, 96 for the others.
    (_BN, {"nin"}, {**_ADAMW, "lr": 3e-3, "batch_size": 128, "epochs": 10, "small_image_size": 32}),
    (
        _BN, {"vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"},
        {**_ADAMW, "lr": 3e-3, "batch_size": 128, "epochs": 10, "small_image_size": 224},
    ),
    (
        _BN, {"googlenet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
         "densenet121", "densenet161", "densenet169", "densenet201"},
        {**_ADAMW, "lr": 3e-3, "batch_size": 128, "epochs": 10, "small_image_size": 96},
    ),
    # CIFAR ResNets, DenseNet-BC-100: SGD (Nesterov 0.9) 0.1, x0.1 at 50% and 75%, weight
    # decay 1e-4, 10 epochs (batch 128; DenseNet 64), 32 px.
    (
        _SGD_STEP, {"resnet20", "resnet32", "resnet44", "resnet56", "resnet110"},
        {**_CIFAR, "batch_size": 128, "epochs": 10, "small_image_size": 32},
    ),
    (
        _SGD_STEP, {"densenet_bc_100"},
        {**_CIFAR, "batch_size": 64, "epochs": 10, "small_image_size": 32},
    ),
]  # fmt: skip


@pytest.mark.parametrize("name", list_models())
def test_every_model_has_the_recipe_the_readme_documents_for_its_family(name: str) -> None:
    rows = [expected for _, names, expected in _README_RECIPES if name in names]
    assert len(rows) == 1, f"{name} has {len(rows)} rows in the README's recipe table"
    recipe = asdict(model_info(name).recipe)
    if recipe["optimizer"] != "sgd":
        del recipe["momentum"]  # AdamW has no momentum to set
    assert recipe == {**rows[0], "label_smoothing": 0.0}


def test_the_recipe_table_names_only_registered_models() -> None:
    names = [name for _, names, _ in _README_RECIPES for name in names]
    assert sorted(names) == sorted(list_models())


def _readme_recipe_rows() -> dict[str, str]:
    # The README's recipe table: its first cell (the family) -> the second (the recipe).
    text = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    table = text.split("<!-- --8<-- [start:recipes] -->")[1].split("[end:recipes]")[0]
    cells = [line.strip("| ").split(" | ") for line in table.splitlines() if line[:2] == "| "]
    return {row[0]: row[1] for row in cells[1:] if len(row) == 3}  # after the header


def _shown(lr: float) -> str:
    return f"{lr:g}" if lr >= 0.01 else f"{lr:.0e}".replace("e-0", "e-")  # 0.1, 1e-4


@pytest.mark.parametrize(("family", "names", "expected"), _README_RECIPES)
def test_the_readme_row_states_the_recipe(family: str, names: set[str], expected: dict) -> None:
    # The table above is the README's: a change there, not here, fails.
    rows = _readme_recipe_rows()
    assert sorted(rows) == sorted({row[0] for row in _README_RECIPES})
    words = [
        {"sgd": "SGD", "adamw": "AdamW"}[expected["optimizer"]],
        {"onecycle": "one-cycle", "step": "×0.1 at 50% and 75%"}[expected["scheduler"]],
        f"{_shown(expected['lr'])}, ", f"batch {expected['batch_size']}" if family != _SGD_STEP
        else f"{expected['batch_size']}", f"{expected['epochs']} epochs",
        f"{expected['small_image_size']}", " px",
    ]  # fmt: skip
    if "weight decay" in rows[family]:
        words.append(f"weight decay {_shown(expected['weight_decay'])}")
    assert [w for w in words if w not in rows[family]] == [], rows[family]


# name: (image size, extra model arguments, threshold); measured accuracy in the comment.
FAMILIES: dict[str, tuple[int, dict[str, Any], float]] = {
    "lenet5": (32, {}, 0.5),  # 0.675
    "alexnet": (32, {"small_input": True}, 0.35),
    "vgg11": (32, {"small_input": True}, 0.17),  # 0.240: the plain VGG starts slowly
    "nin": (16, {}, 0.35),  # 0.501
    "googlenet": (16, {}, 0.35),
    "resnet18": (16, {}, 0.5),
    "densenet121": (32, {}, 0.5),  # 0.775
}


def test_one_network_of_every_family_is_tested() -> None:
    families = {model_info(name).family for name in list_models()}
    assert {model_info(name).family for name in FAMILIES} == families


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("name", FAMILIES)
def test_each_family_learns_well_above_chance_with_its_recipe(
    name: str, fashion_raw: Path, tmp_path: Path
) -> None:
    size, extra, threshold = FAMILIES[name]
    L.seed_everything(0, verbose=False)
    model = create_model(name, num_classes=10, in_channels=1, **extra)
    recipe = model_info(name).recipe
    assert (model.hparams.optimizer, model.hparams.lr) == (recipe.optimizer, recipe.lr)
    dm = FashionMNIST(
        str(fashion_raw.parents[1]), download=False, batch_size=64, image_size=size, val_size=0
    )
    trainer = L.Trainer(
        max_epochs=3, limit_train_batches=16, limit_test_batches=2, accelerator="cpu",
        logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    dm.batch_size = 500  # the first 1,000 test images
    accuracy = trainer.test(model, datamodule=dm, verbose=False)[0]["test_acc"]
    assert accuracy > threshold, (name, accuracy)


def _d2l_cpu_rows(data_dir: str) -> list[tuple[str, list[str], str, str, str]]:
    # docs/d2l.md's table of CPU runs: name, the flags ($DATA, with data_dir, and $BOOK
    # expanded; "the same with/without" read as the row above changed), accuracy, `fit took`,
    # load average.
    text = (Path(__file__).parents[1] / "docs/d2l.md").read_text(encoding="utf-8")
    words = {v: text.split(f'{v}="')[1].split('"')[0] for v in ("DATA", "BOOK")}
    table = text.split("<!-- runs:start -->")[1].split("<!-- runs:end -->")[0]
    rows, flags = [], ""
    for line in table.strip().splitlines()[2:]:
        name, given, acc, took, load = line.strip("| ").split(" | ")
        quoted = given.split("`")[1]
        if given.startswith("the same without"):
            flags = flags.replace(f" {quoted}", "")
        elif given.startswith("the same with"):
            option = quoted.split()[0]
            flags = flags.replace(f"{option} {flags.split(option + ' ')[1].split()[0]}", quoted)
        else:
            flags = quoted
        data = f"{words['DATA']} --data.data_dir {data_dir} --data.download false"
        expanded = flags.replace("$DATA", data).replace("$BOOK", words["BOOK"])
        rows.append((name, expanded.split(), acc, took, load))
    return rows


@in_clone
def test_the_d2l_cpu_table_is_what_its_logs_say() -> None:
    # Each row's figures come from its committed log, of the command the row states.
    logs = Path(__file__).parents[1] / "benchmarks/results/reference/d2l-cpu"
    rows = _d2l_cpu_rows("/work/shared/data")  # the project's copy, where the runs read it
    assert len(rows) == 20 and sorted(p.stem for p in logs.glob("*.log")) == sorted(
        r[0] for r in rows
    )
    for name, flags, acc, took, load in rows:
        log = (logs / f"{name}.log").read_text(encoding="utf-8")
        command = log.split("$ classic-cnns fit ")[1].splitlines()[0].split()
        assert command == [*flags, "--trainer.enable_progress_bar", "false"], name
        assert "# exit 0," in log, name
        found = float(log.split("test_acc ")[1].split("│")[1])
        assert f"{100 * found:.2f}%" == acc, name
        assert f"fit took {took.removesuffix(' s')} s" in log, name
        start, end = (f"{float(v):.2f}" for v in re.findall(r"load average at \w+: ([\d.]+)", log))
        assert load == f"{start} → {end}", name
