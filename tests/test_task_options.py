"""The task's recipe defaults, loss choice, distillation, channels_last and compile options."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from classic_cnns import (
    Digits,
    FashionMNIST,
    LeNet5,
    ResNet,
    create_model,
    list_models,
    load_model,
    model_info,
)
from classic_cnns.cli import ClassicCLI
from classic_cnns.files import load_checkpoint
from classic_cnns.losses import load_teacher
from classic_cnns.optim import record_cli_optimizer, schedule_length
from classic_cnns.recipes import Recipe

pytestmark = pytest.mark.usefixtures("one_thread")


def _trainer(**kw: object) -> L.Trainer:
    return L.Trainer(
        **{  # type: ignore[arg-type]
            "max_epochs": 1,
            "accelerator": "cpu",
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            **kw,
        }
    )


# -- recipes -----------------------------------------------------------------------------------


def test_every_model_has_a_recipe_and_the_task_takes_it_when_not_told_otherwise() -> None:
    for name in list_models():
        recipe = model_info(name).recipe
        assert isinstance(recipe, Recipe) and recipe.lr > 0 and recipe.epochs > 0, name
    model = create_model("alexnet", num_classes=10, in_channels=1)
    recipe = model_info("alexnet").recipe
    assert (model.hparams.optimizer, model.hparams.lr, model.hparams.scheduler) == (
        recipe.optimizer,
        recipe.lr,
        recipe.scheduler,
    )
    assert (recipe.optimizer, recipe.lr) == ("adamw", 1e-4)  # not AdamW at 3e-3
    # A value given wins over the recipe, and the checkpointed hyperparameters say what ran.
    given = create_model("alexnet", num_classes=10, in_channels=1, optimizer="sgd", lr=0.01)
    assert (given.hparams.optimizer, given.hparams.lr, given.hparams.momentum) == (
        "sgd",
        0.01,
        recipe.momentum,
    )


def test_the_optimizer_is_built_from_the_recipe() -> None:
    model = ResNet("resnet20", num_classes=10, in_channels=1)
    trainer = _trainer(max_steps=1)
    trainer.fit(model, DataLoader(TensorDataset(torch.randn(8, 1, 32, 32), torch.arange(8)), 8))
    (optimizer,) = trainer.optimizers
    assert isinstance(optimizer, torch.optim.SGD)
    assert {g["weight_decay"] for g in optimizer.param_groups} == {1e-4, 0.0}
    assert type(trainer.lr_scheduler_configs[0].scheduler).__name__ == "MultiStepLR"


def test_another_kind_of_optimizer_on_the_recipe_s_lr_is_warned_of(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # LeNet-5's recipe is SGD at 0.1; Adam there diverges. Adam's kin, or an lr, say nothing.
    with pytest.warns(UserWarning, match=r"lr 0\.1 is lenet5's recipe's for 'sgd'; 'adam' ") as w:
        assert LeNet5(optimizer="adam").hparams.lr == 0.1
    assert w[0].filename == __file__
    # Through the command line (jsonargparse builds the class): the line that called it.
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match=r"lr 0\.1 is lenet5's recipe's for 'sgd'") as w:
        ClassicCLI(args=["--model", "LeNet5", "--model.optimizer", "adam"], run=False)
    assert [warning.filename for warning in w if "recipe's" in str(warning.message)] == [__file__]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LeNet5(optimizer="adam", lr=1e-3)
        LeNet5(optimizer="sgd")
        create_model("resnet18", optimizer="adam")  # its recipe's AdamW: the same scale


def test_a_momentum_that_is_not_used_is_warned_of() -> None:
    # One-cycle cycles SGD's momentum 0.95 -> 0.85 -> 0.95 whatever it was built with: a user's
    # momentum=0.5 never runs, though hparams (and config.yaml) record it.
    with pytest.warns(UserWarning, match=r"momentum=0\.5 is not used: the one-cycle schedule") as w:
        model = LeNet5(momentum=0.5)
    assert w[0].filename == __file__  # the user's line, not the family class's generated code
    trainer = _trainer(max_steps=3)
    trainer.fit(model, DataLoader(TensorDataset(torch.randn(8, 1, 32, 32), torch.arange(8)), 4))
    assert trainer.optimizers[0].param_groups[0]["momentum"] != 0.5
    with warnings.catch_warnings():  # a schedule that keeps it, the recipe's own, or none
        warnings.simplefilter("error")
        LeNet5(momentum=0.5, scheduler="cosine")
        LeNet5(momentum=0.9)
        LeNet5(momentum=0.0)  # plain SGD: not cycled
        ResNet("resnet20", momentum=0.5)  # its recipe's step schedule
        LeNet5(optimizer="adam", lr=1e-3)  # momentum left to the recipe
    # Adam and AdamW take no momentum: one given is recorded but never used.
    for optimizer in ("adam", "adamw"):
        with pytest.warns(UserWarning, match=rf"momentum=0\.5 is not used: '{optimizer}' takes"):
            model = LeNet5(optimizer=optimizer, lr=1e-3, momentum=0.5, scheduler="cosine")
        trainer = _trainer(max_steps=1)
        trainer.fit(model, DataLoader(TensorDataset(torch.randn(4, 1, 32, 32), torch.arange(4))))
        assert "momentum" not in trainer.optimizers[0].defaults


def test_a_checkpoints_lr_is_not_carried_over_to_another_optimizer(tmp_path: Path) -> None:
    trainer = _trainer()
    trainer.strategy.connect(LeNet5(lr=0.05, backbone_lr=0.01))  # SGD, the recipe's optimizer
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_model(tmp_path / "m.ckpt").hparams.lr == 0.05
        assert load_model(tmp_path / "m.ckpt").hparams.backbone_lr == 0.01
        adam = load_model(tmp_path / "m.ckpt", optimizer="adam", lr=1e-3)
        # Nor its backbone_lr, an SGD rate too: kept, the backbone would learn 10x the head's.
        assert (adam.hparams.lr, adam.hparams.backbone_lr) == (1e-3, None)
        path = tmp_path / "m.ckpt"
        adam = create_model("lenet5", checkpoint_path=path, optimizer="adam", lr=1e-3)
        assert (adam.hparams.lr, adam.hparams.backbone_lr) == (1e-3, None)
    # Adam without an lr: the recipe's rule, as for a new model (its SGD lr, with a warning).
    with pytest.warns(UserWarning, match=r"lr 0\.1 is lenet5's recipe's for 'sgd'; 'adam' "):
        assert load_model(tmp_path / "m.ckpt", optimizer="adam").hparams.lr == 0.1


# -- losses --------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["cross_entropy", "mse", "bce"])
def test_each_loss_trains_lenet5_on_the_digits_well_above_chance(loss: str) -> None:
    L.seed_everything(0, verbose=False)
    model = LeNet5(loss=loss, optimizer="adamw", lr=3e-3)
    dm = Digits(image_size=32)
    trainer = _trainer(max_epochs=8)
    trainer.fit(model, datamodule=dm)
    assert trainer.test(model, datamodule=dm, verbose=False)[0]["test_acc"] > 0.6  # chance: 0.1


def test_the_chosen_loss_is_the_training_loss() -> None:
    x, y = torch.randn(6, 1, 32, 32), torch.tensor([0, 1, 2, 3, 4, 5])
    torch.manual_seed(0)
    model = LeNet5(loss="mse")
    with torch.no_grad():
        logits = model(x)
    expected = ((logits.softmax(1) - torch.nn.functional.one_hot(y, 10)) ** 2).mean()
    loss = model.training_step((x, y), 0)
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"loss": "kl_div"}, r"loss='kl_div' \(knowledge distillation\) needs a teacher"),
        ({"teacher": "t.ckpt"}, r"a teacher needs loss='kl_div'; got loss='cross_entropy'"),
        ({"loss": "mse", "label_smoothing": 0.1}, r"label_smoothing applies to"),
    ],
)
def test_inconsistent_loss_options_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LeNet5(**kwargs)


# -- distillation --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LeNet-5 (batch norm) trained on the digits, saved as a Lightning checkpoint."""
    L.seed_everything(0, verbose=False)
    teacher = LeNet5(arch="lenet5_bn", optimizer="adamw", lr=3e-3)
    trainer = _trainer(max_epochs=4)
    trainer.fit(teacher, datamodule=Digits(image_size=32))
    path = tmp_path_factory.mktemp("teacher") / "teacher.ckpt"
    trainer.save_checkpoint(path)
    return path


@pytest.mark.slow
def test_a_student_learns_from_a_frozen_teacher_that_is_never_saved(
    teacher_file: Path, tmp_path: Path
) -> None:
    teacher_state = {k: v.clone() for k, v in load_checkpoint(teacher_file)["state_dict"].items()}
    L.seed_everything(0, verbose=False)
    # alpha=1: the student never sees a label, only the teacher's softened outputs.
    student = LeNet5(
        arch="lenet5_modern", optimizer="adamw", lr=3e-3, loss="kl_div", alpha=1.0,
        teacher=str(teacher_file),
    )  # fmt: skip
    dm = Digits(image_size=32)
    trainer = _trainer(max_epochs=4, default_root_dir=tmp_path)
    trainer.fit(student, datamodule=dm)
    (teacher,) = student._teacher
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    for key, value in teacher.state_dict().items():  # untouched by the student's training
        assert torch.equal(value, teacher_state[f"net.{key}"]), key
    assert not any(k.startswith("_teacher") for k in student.state_dict())
    assert trainer.test(student, datamodule=dm, verbose=False)[0]["test_acc"] > 0.6
    trainer.save_checkpoint(tmp_path / "student.ckpt")
    saved = load_checkpoint(tmp_path / "student.ckpt")["state_dict"]
    assert set(saved) == set(LeNet5(arch="lenet5_modern").state_dict())  # no teacher inside
    # The student reloads without its teacher file.
    teacher_file.rename(tmp_path / "moved.ckpt")
    try:
        restored = LeNet5.load_from_checkpoint(tmp_path / "student.ckpt")
    finally:
        (tmp_path / "moved.ckpt").rename(teacher_file)
    assert restored.hparams.loss == "kl_div" and not restored._teacher


def test_a_teacher_given_as_a_path_is_saved_as_its_string(
    teacher_file: Path, tmp_path: Path
) -> None:
    # A pathlib.Path went into the checkpoint's hyperparameters as a PosixPath, which no
    # weights_only load reads: load_model, load_from_checkpoint and resuming all failed.
    student = LeNet5(loss="kl_div", teacher=teacher_file)  # type: ignore[arg-type]
    by_name = LeNet5(loss="kl_div", teacher="lenet5_bn", teacher_weights=teacher_file)  # type: ignore[arg-type]
    assert (student.hparams.teacher, by_name.hparams.teacher_weights) == (str(teacher_file),) * 2
    trainer = _trainer(max_steps=1, limit_val_batches=0, default_root_dir=tmp_path)
    trainer.fit(student, datamodule=Digits(image_size=32))
    trainer.save_checkpoint(tmp_path / "student.ckpt")
    assert load_model(tmp_path / "student.ckpt").hparams.teacher == str(teacher_file)


def test_a_teacher_by_name_needs_weights_and_must_match(teacher_file: Path) -> None:
    # Refused as the model is built, not after the data's setup (a fit's first minutes)
    with pytest.raises(ValueError, match=r"teacher='lenet5_bn' is a model name; give its trained"):
        LeNet5(loss="kl_div", teacher="lenet5_bn")
    with pytest.raises(ValueError, match=r"teacher='lenet5_bn' is a model name; give its trained"):
        load_teacher("lenet5_bn", None, num_classes=10, in_channels=1)
    named = LeNet5(loss="kl_div", teacher="lenet5_bn", teacher_weights=str(teacher_file))
    named.setup("fit")
    assert type(named._teacher[0]).__name__ == "LeNet5Net"
    with pytest.raises(FileNotFoundError, match=r"neither a registered model name nor a file"):
        LeNet5(loss="kl_div", teacher="no/such.ckpt").setup("fit")
    with pytest.raises(FileNotFoundError, match=r"nor a file; .* Did you mean 'lenet5_bn'"):
        LeNet5(loss="kl_div", teacher="lenet5-bn").setup("fit")
    with pytest.raises(ValueError, match=r"the teacher lenet5_bn takes 1 channel\(s\) and has 10"):
        LeNet5(num_classes=5, loss="kl_div", teacher=str(teacher_file)).setup("fit")
    # By name, the weights must fit the student's classes too: a fresh head teaches nothing.
    five = LeNet5(
        num_classes=5, loss="kl_div", teacher="lenet5_bn", teacher_weights=str(teacher_file)
    )
    with pytest.raises(
        ValueError, match=r"2 key\(s\) of .*teacher.* do not fit LeNet5Net:\n  fc.weight"
    ):
        five.setup("fit")


def test_a_teacher_must_stand_for_the_student_s_classes_and_data(
    teacher_file: Path, fashion_raw: Path
) -> None:
    # A digits teacher taught Fashion-MNIST's classes without a word (test_acc 0.10).
    student = LeNet5(loss="kl_div", teacher=str(teacher_file))
    data = FashionMNIST(fashion_raw.parent.parent, download=False, val_size=0)
    with pytest.raises(
        ValueError,
        match=r"^the teacher .*teacher\.ckpt was trained on the classes \['0', '1', .*'9'\]; "
        r"the student's data FashionMNIST labels the classes \['T-shirt/top', 'Trouser', ",
    ):
        _trainer(max_steps=1).fit(student, datamodule=data)
    # Its classes, on images prepared otherwise: the teacher sees what it never learned from.
    config = {"mean": [0.5], "std": [0.5], "image_size": [32, 32]}  # as the teacher's size
    data_like = SimpleNamespace(class_names=[str(n) for n in range(10)], data_config=config)
    with pytest.warns(
        UserWarning,
        match=r"^the teacher .*teacher\.ckpt: the model was trained on images prepared with "
        r"mean=\[0\.3053\], std=\[0\.3759\]; .* Distil on data prepared as the teacher's",
    ):
        load_teacher(str(teacher_file), None, 10, 1, data_like)


# -- weight_init ---------------------------------------------------------------------------------


def test_xavier_init_draws_conv_and_linear_weights_from_glorots_uniform_and_keeps_the_rest() -> (
    None
):
    torch.manual_seed(0)
    default = create_model("resnet18", weight_init="default").net
    torch.manual_seed(0)
    xavier = create_model("resnet18", weight_init="xavier").net
    drawn = 0
    for (name, a), b in zip(default.named_modules(), xavier.modules(), strict=True):
        if isinstance(a, nn.Conv2d):  # Glorot and Bengio's fans, by hand
            k = a.kernel_size[0] * a.kernel_size[1]
            fans = a.in_channels * k, a.out_channels * k
        elif isinstance(a, nn.Linear):
            fans = a.in_features, a.out_features
        else:
            for key, value in a.state_dict(keep_vars=False).items():
                if "." not in key:  # batch norm's scale, shift and statistics are the network's
                    assert torch.equal(value, b.state_dict()[key]), f"{name}.{key}"
            continue
        bound = math.sqrt(6 / sum(fans))  # U(-bound, bound): std bound / sqrt(3)
        w = b.weight.detach()
        assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound, name
        assert abs(w.std().item() / (bound / math.sqrt(3)) - 1) < 0.1, name
        assert not torch.equal(w, a.weight), name  # ResNet's own init is He's normal
        if a.bias is not None:  # biases keep the network's own initialisation
            assert torch.equal(a.bias, b.bias), name
        drawn += 1
    assert drawn == 21  # 20 convolutions (3 of them 1x1 shortcuts) and the classifier


def test_weight_init_is_recorded_and_a_checkpoint_restores_its_weights_not_new_ones(
    tmp_path: Path,
) -> None:
    model = create_model("lenet5", weight_init="xavier")
    assert model.hparams.weight_init == "xavier"
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_checkpointing=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = LeNet5.load_from_checkpoint(tmp_path / "m.ckpt")
    assert loaded.hparams.weight_init == "xavier"
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    with pytest.raises(
        ValueError, match=r"weight_init must be one of \('default', 'xavier'\); got 'he'"
    ):
        LeNet5(weight_init="he")  # type: ignore[arg-type]


# -- speed options -------------------------------------------------------------------------------


def test_channels_last_moves_the_weights_and_each_batch_with_the_same_outputs() -> None:
    torch.manual_seed(0)
    plain = ResNet("resnet20", num_classes=10, in_channels=3).eval()
    fast = ResNet("resnet20", num_classes=10, in_channels=3, channels_last=True).eval()
    fast.load_state_dict(plain.state_dict())
    fast.setup("fit")
    conv = fast.net.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    x = torch.randn(4, 3, 32, 32)
    seen: list[bool] = []  # the batch reaches the first convolution in channels_last
    fast.net.conv1.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last))
    )
    with torch.no_grad():
        torch.testing.assert_close(fast(x), plain(x), rtol=1e-4, atol=1e-5)
    assert x.is_contiguous() and seen == [True]


def test_compile_compiles_the_network_in_place_and_keeps_its_state_dict_keys() -> None:
    torch.manual_seed(0)
    model = LeNet5(compile={"backend": "eager"})  # the eager backend: no C++ build in tests
    keys = list(model.state_dict())
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        before = model.eval()(x)
    model.setup("fit")
    assert model.net._compiled_call_impl is not None
    assert list(model.state_dict()) == keys
    with torch.no_grad():
        torch.testing.assert_close(model(x), before)
    with pytest.raises(ValueError, match=r"compile must be a bool or a dict"):
        LeNet5(compile="yes")  # type: ignore[arg-type]


def test_a_compiled_channels_last_model_trains() -> None:
    model = LeNet5(arch="lenet5_bn", channels_last=True, compile={"backend": "eager"})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _trainer(max_steps=3).fit(
        model, DataLoader(TensorDataset(torch.randn(24, 1, 32, 32), torch.arange(24) % 10), 8)
    )
    after = {k.replace("_orig_mod.", ""): v for k, v in model.state_dict().items()}
    assert all(torch.isfinite(v).all() for v in after.values())
    weights = [k for k in before if k.endswith("weight")]
    assert all(not torch.equal(before[k], after[k]) for k in weights)  # every layer trained


def test_help_on_a_family_class_lists_the_training_arguments() -> None:
    import pydoc

    from classic_cnns import ResNet as ResNetClass

    text = pydoc.render_doc(ResNetClass, renderer=pydoc.plaintext)
    for argument in ("small_input", "optimizer", "lr", "loss", "channels_last", "compile"):
        assert f"{argument}:" in text or f"{argument}=" in text, argument
    # They stay keyword-only: only the family's own arguments are positional.
    model = ResNetClass("resnet20", 10, 1, lr=0.05, loss="mse")
    assert (model.hparams.lr, model.hparams.loss) == (0.05, "mse")


def test_a_run_without_training_batches_needs_no_schedule() -> None:
    # limit_train_batches=0: Lightning only validates; the recipe's one-cycle has nothing to
    # schedule (it said the run length was not finite although max_epochs was set).
    from classic_cnns import Digits, LeNet5

    for nothing in (dict(limit_train_batches=0), dict(max_steps=0)):  # max_steps: the same
        model = LeNet5()
        assert model.hparams.scheduler == "onecycle"
        trainer = _trainer(**nothing)
        trainer.fit(model, Digits())
        assert trainer.global_step == 0 and trainer.lr_scheduler_configs == [], nothing
    with pytest.raises(  # still: no end at all, and the advice is to give it one
        ValueError,
        match=r"needs a finite run length; set trainer max_epochs or max_steps, or pass "
        r"scheduler='none'",
    ):
        L.Trainer(max_epochs=-1, logger=False).fit(LeNet5(), Digits())


@pytest.mark.parametrize("scheduler", ["cosine", "onecycle"])
def test_a_schedule_spans_the_steps_of_an_accumulation_that_changes_by_epoch(
    scheduler: str,
) -> None:
    # Lightning's estimate takes epoch 0's accumulation for every epoch: the schedule was
    # planned for 82 steps of a 62-step run, and cosine ended at 14% of its peak.
    from lightning.pytorch.callbacks import GradientAccumulationScheduler

    model = LeNet5(scheduler=scheduler)
    trainer = _trainer(max_epochs=3, callbacks=[GradientAccumulationScheduler({0: 1, 1: 2, 2: 3})])
    trainer.fit(model, Digits(batch_size=64))
    assert trainer.num_training_batches == 21  # the last step of an epoch takes what is left
    sched = trainer.lr_scheduler_configs[0].scheduler
    assert schedule_length(sched) == trainer.global_step == 21 + 11 + 7
    assert sched.last_epoch == trainer.global_step  # stepped to its very end, not past it


@pytest.mark.parametrize("scheduler", ["none", "onecycle"])
@pytest.mark.parametrize("accumulate", [0, -2])
def test_gradient_accumulation_below_one_batch_is_refused_by_name(
    scheduler: str, accumulate: int
) -> None:
    # Lightning takes it unchecked: 0 divided by zero (a traceback), -2 trained on, and under
    # a schedule was blamed on a loader without length.
    trainer = _trainer(limit_train_batches=2, accumulate_grad_batches=accumulate)
    with pytest.raises(ValueError) as info:
        trainer.fit(LeNet5(scheduler=scheduler), Digits())
    assert str(info.value) == (
        "accumulate_grad_batches must be an int >= 1 (batches per optimizer step); "
        f"got {accumulate}"
    )
    assert trainer.global_step == 0


def test_several_evaluation_loaders_at_once_are_refused_with_what_to_do() -> None:
    # One set of metrics per stage would merge them (Lightning's own message asked to edit
    # the package's test_step).
    from classic_cnns import LeNet5

    x, y = torch.rand(20, 1, 32, 32), torch.arange(20) % 10
    loaders = [DataLoader(TensorDataset(x, y), batch_size=8)] * 2
    trainer = L.Trainer(logger=False, enable_progress_bar=False)
    for stage in ("test", "validate"):
        with pytest.raises(ValueError, match=rf"^{stage} takes one dataloader at a time .*got 2"):
            getattr(trainer, stage)(LeNet5(), loaders)
        with pytest.raises(ValueError, match=rf"^{stage} takes one dataloader .*got 2"):
            getattr(trainer, stage)(LeNet5(), dict(zip("ab", loaders, strict=True)))  # a dict too
    with pytest.raises(ValueError, match=r"^fit takes one validation dataloader .*trainer.valid"):
        L.Trainer(max_steps=1, logger=False, enable_checkpointing=False).fit(
            LeNet5(), loaders[0], loaders
        )
    (one,) = trainer.test(LeNet5(), loaders[0], verbose=False)  # one loader: as before
    assert 0 <= one["test_acc"] <= 1
    # A list or dict of one loader is one loader, as Lightning takes it.
    for stage in ("test", "validate"):
        for single in (loaders[:1], {"a": loaders[0]}):
            (one,) = getattr(trainer, stage)(LeNet5(), single, verbose=False)
            assert 0 <= one[f"{stage.replace('validate', 'val')}_acc"] <= 1, (stage, single)
    for single in (loaders[:1], {"a": loaders[0]}):
        fit = L.Trainer(max_epochs=1, limit_train_batches=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False)  # fmt: skip
        fit.fit(LeNet5(), loaders[0], single)
        assert fit.global_step == 1 and 0 <= fit.callback_metrics["val_acc"] <= 1


def _digits(n: int) -> TensorDataset:
    # Real handwritten digits (scikit-learn's 8x8, upsampled to LeNet's 32x32).
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images[:n, None] / 16, dtype=torch.float32)
    return TensorDataset(
        nn.functional.interpolate(images, size=32), torch.tensor(digits.target[:n])
    )


def test_a_training_batch_of_one_image_names_the_batch_norm_fix() -> None:
    # A user's loader of 33 images in batches of 32 ends on one image, which batch norm cannot
    # train on where its map is 1x1 (LeNet-5-BN's C5): torch's bare error now names the fix.
    data = _digits(33)
    one = r"lenet5_bn cannot train on a batch of one image \(the train batch 1 of epoch 0 "
    with pytest.raises(ValueError, match=one + r"\(global step 1\)\).*drop_last=True\)") as info:
        _trainer().fit(LeNet5(arch="lenet5_bn"), DataLoader(data, batch_size=32))
    assert "Expected more than 1 value per channel" in str(info.value.__cause__)
    trainer = _trainer()  # the fix it names
    trainer.fit(LeNet5(arch="lenet5_bn"), DataLoader(data, batch_size=32, drop_last=True))
    assert trainer.global_step == 1


def test_a_schedule_over_a_loader_without_length_says_what_to_set() -> None:
    # An IterableDataset has no len(): max_epochs cannot bound the one-cycle schedule (the
    # message said to set max_epochs, already set, and quoted Lightning's -1 as a step count).
    data = _digits(96)

    class Stream(torch.utils.data.IterableDataset[tuple[torch.Tensor, torch.Tensor]]):
        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter(data)

    with pytest.raises(ValueError) as info:
        _trainer().fit(LeNet5(), DataLoader(Stream(), batch_size=32))
    assert str(info.value) == (
        "scheduler='onecycle' needs a finite run length; the training loader has no length (an "
        "IterableDataset?): set trainer max_steps or an int limit_train_batches, or pass "
        "scheduler='none'"
    )
    trainer = _trainer(max_steps=2)  # what it says to set
    trainer.fit(LeNet5(), DataLoader(Stream(), batch_size=32))
    assert trainer.global_step == 2


def test_a_small_input_network_defaults_to_32_px_where_no_data_recorded_a_size(
    tmp_path: Path,
) -> None:
    # Trained on a user's own loader, no image size is recorded: export fell back to the
    # architecture's 224 px, a size the small stem's recipe (32 px) never trains at.
    pytest.importorskip("onnx")
    import onnx

    from classic_cnns.export import export_model

    model = ResNet("resnet18", num_classes=10, small_input=True)
    assert model.input_size == (3, 32, 32) == (3, *[model.recipe.small_image_size] * 2)
    assert ResNet("resnet18", num_classes=10).input_size == (3, 224, 224)
    export_model(model, tmp_path / "r18.onnx", "onnx")
    graph = onnx.load(str(tmp_path / "r18.onnx")).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [3, 32, 32]


def test_predicted_probabilities_are_float32_under_bf16_autocast() -> None:
    # bf16-mixed on the CPU ran the softmax in bfloat16: probabilities in 3 significant digits.
    model = LeNet5()
    trainer = _trainer(precision="bf16-mixed")
    (probs, *_) = trainer.predict(model, DataLoader(_digits(64), batch_size=64))
    assert probs.dtype == torch.float32
    torch.testing.assert_close(probs.sum(1), torch.ones(64))
    (probs, *_) = _trainer(precision="64-true").predict(model, DataLoader(_digits(8), batch_size=8))
    assert probs.dtype == torch.float64  # a double model's are not cut to float32


def test_a_cli_optimizer_record_holds_plain_values_only(tmp_path: Path) -> None:
    # A callable init arg (LambdaLR's lr_lambda) was kept as the function: hparams.yaml got a
    # !!python/name tag and no checkpoint of the run loaded with weights_only.
    model = LeNet5()
    init = {"lr_lambda": math.cos, "last_epoch": -1, "kinds": (int, None)}
    scheduler = {"class_path": "torch.optim.lr_scheduler.LambdaLR", "init_args": init}
    recorded = record_cli_optimizer(model, {"class_path": "torch.optim.SGD"}, scheduler)
    assert recorded["cli_lr_scheduler"]["init_args"] == {
        "lr_lambda": "math.cos", "last_epoch": -1, "kinds": ["builtins.int", None]}  # fmt: skip
    assert model.hparams_initial.cli_lr_scheduler == recorded["cli_lr_scheduler"]
    torch.save({"hyper_parameters": dict(model.hparams)}, tmp_path / "h.ckpt")
    loaded = torch.load(tmp_path / "h.ckpt", weights_only=True)["hyper_parameters"]
    assert loaded["cli_lr_scheduler"] == recorded["cli_lr_scheduler"]
