"""Bad input, everywhere it can enter, gets an error that says what was expected and what was given.

Images of the wrong rank, channel count, size or dtype; NaN or infinite values in a batch
(training stops naming the step, or skips the batch when asked); labels outside
``[0, num_classes)``; empty datasets and splits; invalid hyperparameters. The fuzz test
feeds random shapes and dtypes to several models and accepts only correct logits or the
package's own ``ValueError``/``TypeError``, never an error from deep inside a layer.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

from classic_cnns import (
    CIFAR10,
    MNIST,
    Digits,
    ImageClassifier,
    ImageFolder,
    InMemoryDataModule,
    LeNet5,
    ResNet,
    create_model,
)
from classic_cnns.cli import main
from classic_cnns.data.preprocessing import check_stats
from classic_cnns.predict import predict_folder
from conftest import sklearn_metrics, write_png

pytestmark = pytest.mark.usefixtures("one_thread")


def _trainer(**kw: Any) -> L.Trainer:
    kw = {
        "max_epochs": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        **kw,
    }
    return L.Trainer(**kw)


# -- images ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "x,error,message",
    [
        ([[0.0]], TypeError, r"lenet5 expects a float tensor of shape \(N, 1, H, W\); got list"),
        (
            torch.zeros(1, 32, 32),
            ValueError,
            r"lenet5 expects a float tensor of shape \(N, 1, H, W\); got shape \(1, 32, 32\)",
        ),
        (torch.zeros(1, 1, 1, 32, 32), ValueError, r"got shape \(1, 1, 1, 32, 32\)"),
        (
            torch.zeros(2, 3, 32, 32),
            ValueError,
            r"lenet5 was built for 1 input channel\(s\); got a batch with 3 "
            r"\(shape \(2, 3, 32, 32\)\)\. Give it 1 channel\(s\), or build the model with "
            r"in_channels=3",
        ),
        (
            torch.zeros(2, 32, 32, 1),  # numpy's and PIL's layout
            ValueError,
            r"got a batch with 32 \(shape \(2, 32, 32, 1\)\)\. It looks channels-last "
            r"\(N, H, W, C\): x\.permute\(0, 3, 1, 2\) makes it \(N, C, H, W\)",
        ),
        (
            torch.zeros(2, 1, 28, 28),
            ValueError,
            r"lenet5 needs images of at least 32x32 \(H x W\); got 28x28 "
            r"\(shape \(2, 1, 28, 28\)\)",
        ),
        (torch.zeros(2, 1, 32, 31), ValueError, r"at least 32x32 \(H x W\); got 32x31"),
        (
            torch.zeros(2, 1, 32, 32, dtype=torch.uint8),
            TypeError,
            r"got dtype torch.uint8\. Convert images with x\.float\(\) / 255 and normalise",
        ),
        (torch.zeros(2, 1, 32, 32, dtype=torch.int64), TypeError, r"got dtype torch.int64"),
        (torch.zeros(2, 1, 32, 32, dtype=torch.bool), TypeError, r"got dtype torch.bool"),
        (
            torch.zeros(2, 1, 32, 32, dtype=torch.float64),
            TypeError,
            r"lenet5 has torch.float32 weights; got a batch of dtype torch.float64\. Convert the "
            r"batch \(x\.to\(torch.float32\)\) or the model \(model\.to\(torch.float64\)\)",
        ),
        (torch.zeros(2, 1, 32, 32, dtype=torch.float16), TypeError, r"dtype torch.float16"),
        (torch.zeros(2, 1, 32, 32, dtype=torch.complex64), TypeError, r"dtype torch.complex64"),
    ],
)
def test_wrong_images_are_named_with_what_was_expected(x: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        LeNet5()(x)
    if isinstance(x, torch.Tensor) and x.ndim == 4:  # the same in a training step
        with pytest.raises(error, match=message):
            LeNet5().training_step((x, torch.zeros(len(x), dtype=torch.long)), 0)


def test_a_small_input_stem_lowers_the_minimum_and_the_check_follows() -> None:
    model = ResNet("resnet18", num_classes=10, small_input=True)
    assert model.min_input_size == (1, 1)
    assert model.eval()(torch.zeros(1, 3, 1, 1)).shape == (1, 10)
    with pytest.raises(
        ValueError, match=r"resnet18 needs images of at least 1x1 \(H x W\); got 0x5"
    ):
        model(torch.zeros(1, 3, 0, 5))


def test_a_float64_model_takes_float64_batches_and_autocast_mixes_dtypes() -> None:
    model = LeNet5().eval()
    x = torch.randn(2, 1, 32, 32)
    assert model.double()(x.double()).dtype == torch.float64
    model.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(x.bfloat16()).shape == (2, 10)  # autocast casts inputs and weights
        assert model(x).shape == (2, 10) and model(x.half()).shape == (2, 10)  # cast too
        # but never float64: torch's "Input type (double) and bias type (c10::BFloat16)"
        with pytest.raises(TypeError, match=r"float32 weights; got a batch of dtype torch.float64"):
            model(x.double())


def test_a_batch_on_another_device_than_the_weights_is_named() -> None:
    model = LeNet5().to("meta")
    with pytest.raises(ValueError, match=r"lenet5 is on meta; got a batch on cpu\. Move the batch"):
        model(torch.zeros(1, 1, 32, 32))


# -- NaN and inf in a batch -------------------------------------------------------------------


def _batches(bad_batch: int | None, value: float = math.nan, n: int = 32) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 32, 32, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    if bad_batch is not None:
        x[bad_batch * 8 + 3, 0, 5, 7] = value
    return DataLoader(TensorDataset(x, y), batch_size=8)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_batch_stops_training_with_the_step(value: float) -> None:
    model = LeNet5(scheduler="none")
    with pytest.raises(
        ValueError,
        match=r"lenet5: the train batch 2 of epoch 0 \(global step 2\) has 1 NaN or infinite "
        r"value\(s\) among its 8192 image values; expected finite images\. Check the data and "
        r"its transform, or pass nonfinite='skip' to skip such batches",
    ):
        _trainer().fit(model, train_dataloaders=_batches(bad_batch=2, value=value))


@pytest.mark.parametrize(
    "overflow", [False, True], ids=["NaN image", "finite images whose loss overflows"]
)
def test_a_non_finite_batch_is_skipped_when_asked(overflow: bool) -> None:
    # A NaN image is caught before the forward pass; finite images of 3e38 overflow inside
    # it, after batch norm has updated its running statistics, which the skip puts back.
    loader = _batches(bad_batch=None if overflow else 1)
    if overflow:
        loader.dataset.tensors[0][8:16] = 3e38  # type: ignore[attr-defined]
    torch.manual_seed(0)
    model = LeNet5(arch="lenet5_bn", scheduler="none", nonfinite="skip")
    batch = r"the train batch 1 of epoch 0 \(global step 1\)"
    found = rf"the loss of {batch} is nan" if overflow else rf"{batch} has 1 NaN"
    with pytest.warns(UserWarning, match=rf"{found}.*skipping the batch \(nonfinite='skip'\)"):
        _trainer().fit(model, train_dataloaders=loader)
    # The same as training on the three good batches alone: nothing of the bad one reached
    # the weights, the optimizer state or the batch norm statistics.
    x, y = loader.dataset.tensors  # type: ignore[attr-defined]
    keep = torch.cat([torch.arange(0, 8), torch.arange(16, 32)])
    good = DataLoader(TensorDataset(x[keep], y[keep]), batch_size=8)
    torch.manual_seed(0)
    reference = LeNet5(arch="lenet5_bn", scheduler="none", nonfinite="skip")
    _trainer().fit(reference, train_dataloaders=good)
    for (key, got), want in zip(
        model.state_dict().items(), reference.state_dict().values(), strict=True
    ):
        assert torch.equal(got, want), key


def test_a_non_finite_validation_batch_is_skipped_and_left_out_of_the_metrics() -> None:
    model = LeNet5(scheduler="none", nonfinite="skip")
    trainer = _trainer(limit_train_batches=1)
    with pytest.warns(UserWarning, match=r"the val batch .* skipping the batch"):
        trainer.fit(model, _batches(None), val_dataloaders=_batches(bad_batch=0))
    logged = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_")}
    # Scikit-learn's metrics (and the mean loss) on the 24 images of the three good batches.
    x, y = _batches(None).dataset.tensors  # type: ignore[attr-defined]
    model.eval()
    with torch.no_grad():
        logits = model(x[8:])
    expected = sklearn_metrics(logits, y[8:], "val_")
    expected["val_loss"] = float(torch.nn.functional.cross_entropy(logits, y[8:]))
    assert logged == pytest.approx(expected, abs=1e-5)


def test_a_diverging_loss_stops_training_with_the_step_and_the_learning_rate() -> None:
    # Finite images, weights that have overflowed (as after a divergence): the loss is NaN.
    model = LeNet5(arch="lenet5_modern", scheduler="none")
    with torch.no_grad():
        model.net.fc.bias[0] = math.inf
    message = (
        r"lenet5_modern: the loss of the train batch 0 of epoch 0 \(global step 0\) is nan; "
        r"expected a finite number.*learning rate \(lr=0\.1\)"
    )
    with pytest.raises(ValueError, match=message):
        _trainer().fit(model, train_dataloaders=_batches(None))


def test_a_resume_refused_for_its_schedule_s_length_warns_of_no_changed_setting(
    tmp_path: Path,
) -> None:
    # A one-cycle of 2 steps starts at its peak, so its groups' initial_lr and max_momentum
    # differ from a longer run's: the refusal came after a warning that this run had asked
    # for other optimizer settings, which it had not.
    trainer = _trainer(max_epochs=1, limit_train_batches=2)
    trainer.fit(LeNet5(), train_dataloaders=_batches(None))
    trainer.save_checkpoint(tmp_path / "short.ckpt")
    with (
        warnings.catch_warnings(record=True) as caught,
        pytest.raises(ValueError, match=r"'onecycle' LR schedule was made for 2 steps; this run "),
    ):
        warnings.simplefilter("always")
        _trainer(max_epochs=2, limit_train_batches=2).fit(
            LeNet5(), train_dataloaders=_batches(None), ckpt_path=tmp_path / "short.ckpt"
        )
    assert [str(w.message) for w in caught if "settings" in str(w.message)] == []


@pytest.mark.parametrize("scheduler", ["onecycle", "cosine", "step"])
def test_resuming_with_another_run_length_is_refused_with_the_way_out(
    scheduler: str, tmp_path: Path
) -> None:
    # The LR schedule's state comes back from the checkpoint, made for the old run length.
    trainer = _trainer(max_epochs=1)
    trainer.fit(LeNet5(scheduler=scheduler), train_dataloaders=_batches(None))
    trainer.save_checkpoint(tmp_path / "one_epoch.ckpt")
    message = (
        rf"the checkpoint's '{scheduler}' LR schedule was made for 4 steps; this run has 8\. "
        r"The steps of a run are its epochs \(trainer max_epochs\).*the batch size "
        r"\(--data\.batch_size\).*checkpoint_path=<file>"
    )
    with pytest.raises(ValueError, match=message):
        _trainer(max_epochs=2).fit(
            LeNet5(scheduler=scheduler),
            train_dataloaders=_batches(None),
            ckpt_path=tmp_path / "one_epoch.ckpt",
        )
    # The run length of the checkpoint resumes (here: nothing left to do).
    resumed = _trainer(max_epochs=1)
    resumed.fit(
        LeNet5(scheduler=scheduler),
        train_dataloaders=_batches(None),
        ckpt_path=tmp_path / "one_epoch.ckpt",
    )
    assert resumed.global_step == 4


def test_nonfinite_ignore_does_not_check() -> None:
    model = LeNet5(scheduler="none", nonfinite="ignore")
    trainer = _trainer()
    trainer.fit(model, train_dataloaders=_batches(bad_batch=1))
    assert trainer.global_step == 4
    assert not all(torch.isfinite(p).all() for p in model.parameters())  # it did go through


# -- labels and batches ----------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["training_step", "validation_step", "test_step"])
def test_labels_outside_the_classes_are_named_in_every_stage(stage: str) -> None:
    x = torch.randn(3, 1, 32, 32)
    step = getattr(LeNet5(num_classes=4), stage)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\); got values from -1 to 2"):
        step((x, torch.tensor([0, -1, 2])), 0)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\); got values from 0 to 4"):
        step((x, torch.tensor([0, 4, 2])), 0)


@pytest.mark.parametrize("stage", ["validate", "test"])
def test_a_bad_evaluation_batch_is_named_by_its_index_not_the_training_step(stage: str) -> None:
    # Evaluation batches all share the training's global step: it named none of them.
    labels = _batches(None)
    labels.dataset.tensors[1][2 * 8 + 5] = 10  # type: ignore[attr-defined]
    where = rf"the {stage.removesuffix('idate')} batch 2 \(after 0 training steps, epoch 0\)"
    with pytest.raises(ValueError, match=rf"got values from 0 to 10 \({where}\)$"):
        getattr(_trainer(), stage)(LeNet5(), labels, verbose=False)
    model = LeNet5(nonfinite="skip")
    with pytest.warns(UserWarning, match=rf"^lenet5: {where} has 1 NaN"):
        getattr(_trainer(), stage)(model, _batches(bad_batch=2), verbose=False)


@pytest.mark.parametrize(
    "labels,error,message",
    [
        (torch.tensor([0.0, 1.0]), ValueError, r"got dtype torch.float32 and shape \(2,\)"),
        (torch.tensor([True, False]), ValueError, r"got dtype torch.bool"),
        (
            torch.tensor([[0, 1]]),
            ValueError,
            r"of shape \(2,\) or soft labels \(float\) of shape \(2, 10\); got dtype "
            r"torch.int64 and shape \(1, 2\)",
        ),
        (  # soft labels, as MixUp's, of another class count
            torch.full((2, 5), 0.2),
            ValueError,
            r"soft labels \(float\) of shape \(2, 10\); got soft labels of shape \(2, 5\)",
        ),
        (
            torch.tensor([0, 1, 2]),
            ValueError,
            r"shape \(2, 10\); got dtype torch.int64 and shape \(3,\)",
        ),
        (
            [0, 1],
            TypeError,
            r"labels must be an integer tensor of shape \(2,\) or soft .*; got list",
        ),
    ],
)
def test_malformed_labels(labels: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        LeNet5().training_step((torch.randn(2, 1, 32, 32), labels), 0)


def test_labels_of_any_integer_dtype_are_accepted() -> None:
    x = torch.randn(2, 1, 32, 32)
    torch.manual_seed(0)
    loss = LeNet5().training_step((x, torch.tensor([3, 7])), 0)
    for dtype in (torch.uint8, torch.int32, torch.int16):
        torch.manual_seed(0)
        assert LeNet5().training_step((x, torch.tensor([3, 7], dtype=dtype)), 0) == loss


@pytest.mark.parametrize(
    "batch,message",
    [
        (
            torch.zeros(2, 1, 32, 32),
            r"train batches must be \(images, labels\) pairs; got a Tensor",
        ),
        ((torch.zeros(2, 1, 32, 32),), r"pairs; got a tuple of length 1"),
        ({"x": 1}, r"pairs; got a dict"),
        (
            (torch.zeros(0, 1, 32, 32), torch.zeros(0, dtype=torch.long)),
            r"expected a batch of at least one image; got an empty batch",
        ),
    ],
)
def test_batches_that_are_not_image_label_pairs(batch: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LeNet5().training_step(batch, 0)


# -- empty datasets and splits ---------------------------------------------------------------


class _Sized(InMemoryDataModule):
    num_classes = 10
    class_names = tuple("0123456789")
    mean, std = (0.5,), (0.25,)

    def __init__(self, n_train: int, n_test: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_train, self.n_test = n_train, n_test

    def load_splits(self) -> tuple[torch.Tensor, ...]:
        def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.zeros(n, 1, 8, 8, dtype=torch.uint8), torch.zeros(n, dtype=torch.long)

        return (*split(self.n_train), *split(self.n_test))


@pytest.mark.parametrize(
    "n_train,n_test,val_size,message",
    [
        # An empty split is load_splits' doing, not val_size's.
        (0, 5, 0.0, r"_Sized\.load_splits\(\): the training split is empty; expected 1 image"),
        (5, 0, 0.0, r"_Sized\.load_splits\(\): the test split is empty"),
        (0, 0, 0.1, r"_Sized\.load_splits\(\): the training split is empty"),
        (5, 5, 5, r"val_size=5 leaves no training images \(5 in the training set\)"),
        (5, 5, 0.99, r"val_size=0\.99 leaves no training images \(5 in the training set\)"),
        (100, 5, 0.001, r"val_size=0\.001 of 100 training images rounds to no validation"),
    ],
)
def test_empty_datasets_and_splits_that_leave_a_stage_empty(
    n_train: int, n_test: int, val_size: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _Sized(n_train, n_test, val_size=val_size).setup("fit")


def test_no_validation_split_gives_no_validation_loader() -> None:
    dm = _Sized(5, 5, val_size=0)
    dm.setup("fit")
    assert dm.val_dataloader() == []


def test_dataloaders_before_setup_say_so() -> None:
    with pytest.raises(RuntimeError, match=r"call setup\(\) before asking for the train"):
        Digits().train_dataloader()


# -- hyperparameters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (
            {"optimizer": "adagrad"},
            r"optimizer must be one of \('sgd', 'adam', 'adamw', 'rmsprop'\); got 'adagrad'",
        ),
        (
            {"scheduler": "linear"},
            r"scheduler must be one of \('cosine', 'onecycle', 'step', 'none'\); got 'linear'",
        ),
        (
            {"nonfinite": "warn"},
            r"nonfinite must be one of \('raise', 'skip', 'ignore'\); got 'warn'",
        ),
        ({"lr": -0.1}, r"lr must be a positive finite number; got -0\.1"),
        ({"lr": 0.0}, r"lr must be a positive finite number; got 0\.0"),
        ({"lr": math.nan}, r"lr must be a positive finite number; got nan"),
        ({"lr": math.inf}, r"lr must be a positive finite number; got inf"),
        ({"lr": "0.1"}, r"lr must be a positive finite number; got '0\.1'"),
        ({"lr": True}, r"lr must be a positive finite number; got True"),
        ({"weight_decay": "x"}, r"weight_decay must be a finite number >= 0; got 'x'"),
        ({"weight_decay": -1.0}, r"weight_decay must be a finite number >= 0; got -1\.0"),
        ({"momentum": -0.5}, r"momentum must be in \[0, 1\); got -0\.5"),
        ({"momentum": 2.0}, r"momentum must be in \[0, 1\); got 2\.0"),
        ({"momentum": 1.0}, r"momentum must be in \[0, 1\); got 1\.0"),
        ({"channels_last": "yes"}, r"channels_last must be True or False; got 'yes'"),
        (
            {"compile": {"moed": "max-autotune"}},
            r"compile has 'moed', which torch\.compile does "
            r"not take; expected keys among \[.*'mode'.*Did you mean 'mode'",
        ),
        ({"label_smoothing": -0.1}, r"label_smoothing must be in \[0, 1\); got -0\.1"),
        ({"label_smoothing": 1.0}, r"label_smoothing must be in \[0, 1\); got 1\.0"),
        ({"aux_loss_weight": -1.0}, r"aux_loss_weight must be a finite number >= 0; got -1\.0"),
        ({"num_classes": 0}, r"least 2; got 0\. .*: model\.net\.reset_classifier\(0\)"),
        ({"num_classes": -3}, r"num_classes must be an int of at least 2; got -3"),
        ({"num_classes": 2.5}, r"num_classes must be an int of at least 2; got 2\.5"),
        ({"num_classes": 1}, r"num_classes must be an int of at least 2; got 1"),
        ({"in_channels": 0}, r"in_channels must be a positive int; got 0"),
        ({"in_channels": True}, r"in_channels must be a positive int; got True"),
        (
            {"teacher_weights": "t.ckpt"},
            r"teacher_weights is for a teacher given by its registered name .*got "
            r"teacher=None and teacher_weights='t\.ckpt'",
        ),
        (
            {"loss": "kl_div", "teacher": "t.ckpt", "teacher_weights": "w.ckpt"},
            r"a file holds its own weights\); got teacher='t\.ckpt'",
        ),
        (  # a misspelt name is not taken for a file
            {"loss": "kl_div", "teacher": "resnet2O", "teacher_weights": "w.ckpt"},
            r"got teacher='resnet2O' and teacher_weights='w\.ckpt'\. Did you mean .*'resnet20'",
        ),
        (
            {"arch": "lenet6"},
            r"unknown model 'lenet6': expected one of the \d+ registered names.*"
            r"Did you mean 'lenet5'",
        ),
    ],
)
def test_invalid_hyperparameters_are_rejected_at_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ImageClassifier(**{"arch": "lenet5", **kwargs})


@pytest.mark.parametrize(
    "kwargs",
    [  # the closed ends of the ranges the messages above state, and the open ends' neighbours
        {"aux_loss_weight": 0.0},  # a finite number >= 0
        {"aux_loss_weight": 0},
        {"label_smoothing": 0.0},  # [0, 1)
        {"label_smoothing": 0.999},
        {"weight_decay": 0.0},  # >= 0
        {"weight_decay": 0},
        {"momentum": 0.0, "scheduler": "cosine"},  # [0, 1)
        {"momentum": 0.999, "scheduler": "cosine"},
        {"lr": 1e-12},  # a positive number
        {"backbone_lr": 1e-12},  # a positive number or None
        {"num_classes": 2},  # at least 2
        {"in_channels": 1},  # a positive int
    ],
    ids=repr,
)
def test_hyperparameters_at_the_edge_of_their_range_are_accepted(kwargs: dict) -> None:
    model = ImageClassifier(**{"arch": "lenet5", **kwargs})
    for key, value in kwargs.items():
        assert model.hparams[key] == value, key


def test_family_classes_validate_the_same_way_and_name_their_members() -> None:
    with pytest.raises(ValueError, match=r"lr must be a positive finite number; got -1"):
        ResNet("resnet20", lr=-1)
    with pytest.raises(
        ValueError,
        match=r"LeNet5 builds 'lenet' models \['lenet5', 'lenet5_bn', "
        r"'lenet5_modern'\]; got arch='resnet20', .*create_model\('resnet20'\) instead "
        r"\(on the command line: --model resnet20\)",
    ):
        LeNet5(arch="resnet20")


def test_create_model_names_an_unknown_argument_and_the_models_options() -> None:
    with pytest.raises(
        TypeError, match=r"lenet5 takes no argument 'small_input': .*network options \(none\)"
    ):
        create_model("lenet5", small_input=True)
    with pytest.raises(
        TypeError,
        match=r"resnet18 takes no argument 'drop', 'smal_input': expected the arguments of "
        r"ResNet .* resnet18's network options \(zero_init_residual, small_input\); "
        r"for 'smal_input', did you mean 'small_input'\?$",
    ):
        create_model("resnet18", smal_input=True, drop=0.1)
    with pytest.raises(  # timm's spelling; the task's own arguments are named too
        TypeError, match=r"\(num_classes, in_channels, .*for 'in_chans', did you mean 'in_channels'"
    ):
        create_model("resnet20", in_chans=1)


def test_datamodule_and_weight_arguments_of_the_wrong_kind_are_named() -> None:
    with pytest.raises(
        ValueError, match=r"seed must be an int \(the seed of the split\); got None"
    ):
        Digits(seed=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"mean and std are sequences of 1 value\(s\) each.*0\.5"):
        check_stats(0.5, 0.25, channels=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"checkpoint_path is empty; expected a file's path"):
        create_model("lenet5", checkpoint_path="")  # it built a fresh model
    with pytest.raises(TypeError, match=r"checkpoint_path must be a file's path .*; got 123"):
        create_model("lenet5", checkpoint_path=123)  # type: ignore[arg-type]


def test_an_empty_folder_path_is_refused_not_read_as_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `--data.root "$DIR"` with DIR unset: Path("") is ".", whose subfolders became the
    # classes (and whose images were classified by predict-folder).
    monkeypatch.chdir(tmp_path)
    for name in ("docs", "src"):
        (tmp_path / name).mkdir()
        write_png(torch.zeros(1, 8, 8, dtype=torch.uint8), str(tmp_path / name / "a.png"))
    model = create_model("lenet5")
    makers = {
        "root": lambda: ImageFolder(""),
        "data_dir": lambda: MNIST(""),
        "folder": lambda: predict_folder(model, ""),
    }
    for name, make in makers.items():
        with pytest.raises(ValueError, match=rf"^{name} is empty; expected a folder's path"):
            make()
    assert ImageFolder(".").root == Path(".")  # "." still names this folder


def test_a_folder_path_that_is_a_file_or_below_one_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # MNIST(download=True) said only "Not a directory: '<file>/MNIST/raw'", CIFAR10 "File
    # exists", and Lightning a path under --trainer.default_root_dir the user did not give.
    monkeypatch.chdir(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    for path in (notes, notes / "data"):
        below = "" if path == notes else f" is below {notes}, which"
        for make in (MNIST, CIFAR10):
            with pytest.raises(NotADirectoryError, match=rf"^data_dir {path}{below} is a file"):
                make(data_dir=path, download=True)
    with pytest.raises(NotADirectoryError, match=rf"^folder {notes} is a file; expected a "):
        predict_folder(create_model("lenet5"), notes)
    assert main(["data", "fetch", "mnist", "--data-dir", str(notes)]) == 2
    assert f"data_dir {notes} is a file; expected a folder's path" in capsys.readouterr().err
    fit = ["fit", "--model=LeNet5", "--data=Digits", "--trainer.max_epochs=1"]
    assert main([*fit, f"--trainer.default_root_dir={notes / 'runs'}"]) == 2
    err = capsys.readouterr().err
    assert f"--trainer.default_root_dir {notes / 'runs'} is below {notes}, which is a" in err
    assert notes.read_text() == "mine\n" and sorted(tmp_path.iterdir()) == [notes]


# -- fuzz -----------------------------------------------------------------------------------

FUZZ_MODELS: dict[str, dict[str, Any]] = {
    "lenet5": {},
    "resnet20": {},
    "nin": {},
    "densenet_bc_100": {},
    "googlenet": {"small_input": True, "num_classes": 10},
    "vgg11_bn": {"small_input": True, "num_classes": 10},
}
_BUILT: dict[str, ImageClassifier] = {}
DTYPES = [
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.uint8,
    torch.int32,
    torch.int64,
    torch.bool,
    torch.complex64,
]


def _model(name: str) -> ImageClassifier:
    if name not in _BUILT:
        torch.manual_seed(0)
        _BUILT[name] = create_model(name, **FUZZ_MODELS[name]).eval()
    return _BUILT[name]


def _tensor(shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point or dtype.is_complex:
        return torch.randn(shape, generator=g).to(dtype)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    return torch.randint(0, 255, shape, generator=g).to(dtype)


def _side(data: st.DataObject, minimum: int, label: str) -> int:
    # Mostly at or just above the model's minimum, where the edge cases are; sometimes anywhere.
    return data.draw(
        st.one_of(st.integers(max(minimum - 1, 0), minimum + 6), st.integers(0, 36)), label=label
    )


@settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    name=st.sampled_from(sorted(FUZZ_MODELS)),
    rank=st.sampled_from([0, 1, 2, 3, 5] + [4] * 10),
    n=st.integers(0, 3),
    dtype=st.sampled_from(DTYPES + [torch.float32] * 12),
    channels_last=st.booleans(),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_fuzz_random_shapes_and_dtypes_give_logits_or_our_own_errors(
    name: str,
    rank: int,
    n: int,
    dtype: torch.dtype,
    channels_last: bool,
    seed: int,
    data: st.DataObject,
) -> None:
    model = _model(name)
    min_h, min_w = model.min_input_size
    c = data.draw(st.sampled_from([model.in_channels] * 6 + [0, 1, 2, 3, 4]), label="channels")
    h, w = _side(data, min_h, "h"), _side(data, min_w, "w")
    shape = {0: (), 1: (w,), 2: (h, w), 3: (c, h, w), 4: (n, c, h, w), 5: (n, c, 1, h, w)}[rank]
    x = _tensor(shape, dtype, seed)
    if channels_last and rank == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    valid = (
        rank == 4
        and dtype == torch.float32
        and c == model.in_channels
        and h >= min_h
        and w >= min_w
    )
    event("valid" if valid else "invalid")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = model(x)
    except (ValueError, TypeError) as err:
        assert not valid, f"{name} refused a valid batch {tuple(shape)} {dtype}: {err}"
        assert str(err).startswith(f"{name} "), f"not the package's own message: {err}"
        assert "got" in str(err), f"the message does not say what was given: {err}"
        return
    assert valid, f"{name} accepted an invalid batch {tuple(shape)} {dtype}"
    assert out.shape == (n, 10) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


# -- what a datamodule of your own loads, and the statistics it is given ----------------------


class _Loaded(InMemoryDataModule):
    # A datamodule of one's own whose load_splits returns what it was given.
    num_classes = 10
    class_names = tuple("0123456789")
    mean, std = (0.5,), (0.25,)

    def __init__(self, loaded: Any) -> None:
        super().__init__(val_size=0)
        self.loaded = loaded

    def load_splits(self) -> Any:
        return self.loaded


_IMAGES = torch.zeros(5, 1, 8, 8, dtype=torch.uint8)
_LABELS = torch.arange(5)


@pytest.mark.parametrize(
    "loaded,error,message",
    [
        (
            (_IMAGES.float() / 255, _LABELS, _IMAGES, _LABELS),
            TypeError,
            r"_Loaded\.load_splits\(\): the training images must be uint8 \(0-255\), .*; "
            r"got torch\.float32",
        ),
        (
            (_IMAGES, _LABELS, _IMAGES[:, 0], _LABELS),
            ValueError,
            r"the test images must be \(N, 1, H, W\), .*; got shape \(5, 8, 8\)",
        ),
        (
            (_IMAGES.expand(5, 3, 8, 8), _LABELS, _IMAGES, _LABELS),
            ValueError,
            r"the training images must be \(N, 1, H, W\), .*; got shape \(5, 3, 8, 8\)",
        ),
        (
            (_IMAGES, _LABELS.float(), _IMAGES, _LABELS),
            TypeError,
            r"the training labels must be class indices of an integer dtype .*; got torch\.float32",
        ),
        (
            (_IMAGES, _LABELS, _IMAGES, _LABELS[:4]),
            ValueError,
            r"the test labels must be \(N,\), one per image \(5\); got shape \(4,\)",
        ),
        (
            (_IMAGES, _LABELS),
            TypeError,
            r"must return \(train_images, train_labels, test_images, test_labels\); got tuple of 2",
        ),
    ],
)
def test_what_load_splits_returns_is_checked_at_setup_naming_the_split(
    loaded: Any, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        _Loaded(loaded).setup("fit")


def test_load_splits_with_labels_of_any_integer_dtype_sets_up() -> None:
    dm = _Loaded((_IMAGES, _LABELS.int(), _IMAGES, _LABELS))  # any integer labels
    dm.setup("fit")
    assert dm.has_test_set


def test_statistics_on_the_0_255_scale_are_refused_with_the_fix() -> None:
    from classic_cnns import CIFAR10

    with pytest.raises(ValueError, match=r"0-1 scale .*got mean=\(125\.3, .*divide them by 255"):
        CIFAR10(mean=(125.3, 123.0, 113.9), std=(63.0, 62.1, 66.7))
    with pytest.raises(ValueError, match=r"0-1 scale .*std=\(1\.5,\)"):
        check_stats([0.5], [1.5], channels=1)
    with pytest.raises(ValueError, match=r"0-1 scale .*std=\(0\.25, 0\.25, 58\.0\)"):
        check_stats([0.5] * 3, [0.25, 0.25, 58.0], channels=3)  # one channel's std of 0-255
    with pytest.raises(ValueError, match=r"0-1 scale .*mean=\(-0\.1,\)"):
        check_stats([-0.1], [0.2], channels=1)
    with pytest.raises(ValueError, match=r"mean and std must be numbers; got mean=\[nan\]"):
        check_stats([math.nan], [0.2], channels=1)
    assert check_stats([0.0, 1.0], [1.0, 0.01], channels=2) == ((0.0, 1.0), (1.0, 0.01))


def test_skip_is_refused_in_a_run_of_several_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    # A process that skips a batch would leave the others waiting (for its gradients, or for
    # the metrics' sync): refused at setup, before anything runs.
    monkeypatch.setattr(L.Trainer, "world_size", property(lambda self: 2))
    with pytest.raises(ValueError, match=r"nonfinite='skip' works in one process only; got 2"):
        _trainer().fit(LeNet5(nonfinite="skip"), train_dataloaders=_batches(None))
    _trainer(max_steps=1).fit(LeNet5(), train_dataloaders=_batches(None))  # "raise": runs
