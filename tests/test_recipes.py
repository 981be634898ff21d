"""Every family learns with its recipe: one network of each, trained briefly on real Fashion-MNIST.

The recipes' optimizer, learning rate and schedule are the ones each model gets by default;
the budget is a CPU's: 48 steps of 64 real Fashion-MNIST training images at 32 pixels (16
for NiN, GoogLeNet and ResNet-18, whose layers accept it), then the first 1,000 test images.
Chance is 10%. The thresholds sit below what these runs measured (in the comments), and
far above chance; AlexNet and the plain VGGs left at chance by AdamW 3e-3 is what the recipes
fixed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest

from classic_cnns import FashionMNIST, create_model, list_models, model_info

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

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
