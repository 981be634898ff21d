"""The shared task: hyperparameters, optimizers, schedules, metrics, steps."""

import inspect
import math
import warnings

import lightning as L
import pytest
import torch
from lightning.pytorch.utilities.model_summary import ModelSummary
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics import Metric

from classic_cnns import Digits, ImageClassifier, LeNet5, ResNet, model_info
from classic_cnns.checkpoint import init_parameters
from classic_cnns.optim import make_optimizer, make_scheduler, param_groups, schedule_length
from classic_cnns.task import OPTIMIZERS, SCHEDULERS
from conftest import sklearn_metrics


def _loader(n: int = 64, classes: int = 10) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 32, 32, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=16)


def _trainer(**kw) -> L.Trainer:
    kw = {
        "max_epochs": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        **kw,
    }
    return L.Trainer(**kw)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_optimizer_and_schedule_trains_from_a_plain_loader(
    optimizer: str, scheduler: str
) -> None:
    model = LeNet5(optimizer=optimizer, scheduler=scheduler, lr=0.01)
    before = [p.detach().clone() for p in model.parameters()]
    _trainer(max_epochs=2).fit(model, train_dataloaders=_loader(), val_dataloaders=_loader(32))
    after = list(model.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(after, before, strict=True))
    assert all(torch.isfinite(p).all() for p in after)


def _lrs_and_momenta(name: str, total: int, optimizer: str, momentum: float) -> tuple[list, list]:
    # Each step's learning rate and momentum (Adam: beta1), as the optimizer sees them.
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))]}]
    opt = make_optimizer(optimizer, groups, lr=0.1, momentum=momentum)  # type: ignore[arg-type]
    sched = make_scheduler(name, opt, total)  # type: ignore[arg-type]
    lrs, momenta = [], []
    for _ in range(total):
        group = opt.param_groups[0]
        lrs.append(round(group["lr"], 6))
        momenta.append(group["betas"][0] if "betas" in group else group["momentum"])
        opt.step()
        sched.step()
    assert schedule_length(sched) == total
    return lrs, momenta


def test_schedules_by_hand() -> None:
    # One-cycle cycles a momentum that exists (Smith's 0.95 -> 0.85 -> 0.95), never adds one.
    for optimizer, momentum in (("sgd", 0.9), ("adamw", 0.9), ("rmsprop", 0.5)):
        _, momenta = _lrs_and_momenta("onecycle", 40, optimizer, momentum)
        assert momenta[0] == 0.95 and min(momenta) == pytest.approx(0.85, abs=1e-3)
    for optimizer in ("sgd", "rmsprop"):
        assert set(_lrs_and_momenta("onecycle", 40, optimizer, 0.0)[1]) == {0.0}
    # Nor in one group of several without it (a user's own groups): every group keeps its own.
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(2)]
    mixed = torch.optim.SGD([{"params": params[:1], "momentum": 0.0}, {"params": params[1:]}],
                            lr=0.1, momentum=0.9)  # fmt: skip
    make_scheduler("onecycle", mixed, 40)
    assert [g["momentum"] for g in mixed.param_groups] == [0.0, 0.9]
    # The step schedule: x0.1 at 50% and 75%, and at least one step before each decay.
    assert _lrs_and_momenta("step", 8, "sgd", 0.9)[0] == [0.1] * 4 + [0.01] * 2 + [0.001] * 2
    assert _lrs_and_momenta("step", 1, "sgd", 0.9)[0] == [0.1]
    assert _lrs_and_momenta("step", 2, "sgd", 0.9)[0] == [0.1, 0.01]
    # Cosine: lr/2 * (1 + cos(pi t / T)), from the full rate to 0.
    cosine = [round(0.05 * (1 + math.cos(math.pi * t / 8)), 6) for t in range(8)]
    assert _lrs_and_momenta("cosine", 8, "sgd", 0.9)[0] == cosine
    for name in ("cosine", "onecycle", "step"):  # each tells its length (22 and 23 apart)
        for total in (3, 22, 23):
            _lrs_and_momenta(name, total, "sgd", 0.9)


@pytest.mark.parametrize("total", [1, 2, 3, 100])
def test_step_schedule_decays_at_half_and_three_quarters(total: int) -> None:
    # x0.1 at 50% and 75% of the run (rounded down), at least one step before each decay.
    first = max(1, math.floor(total * 0.5))
    second = max(first + 1, math.floor(total * 0.75))
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))]}]
    opt = make_optimizer("sgd", groups, lr=0.1, momentum=0.9)
    assert sorted(make_scheduler("step", opt, total).milestones) == [first, second]
    expected = [round(0.1 * 0.1 ** ((t >= first) + (t >= second)), 6) for t in range(total)]
    assert _lrs_and_momenta("step", total, "sgd", 0.9)[0] == expected


def _one_cycle_history(total: int, optimizer: str) -> tuple[list[list[float]], list[float]]:
    # Each group's lr per step (backbone 0.01, head 0.1) and the first group's momentum.
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    groups = param_groups(net, set(net[1].parameters()), lr=0.1, weight_decay=0, backbone_lr=0.01)
    opt = make_optimizer(optimizer, groups, lr=0.1, momentum=0.9)  # type: ignore[arg-type]
    sched = make_scheduler("onecycle", opt, total)
    lrs: list[list[float]] = [[] for _ in opt.param_groups]
    momenta = []
    for _ in range(total):
        for history, group in zip(lrs, opt.param_groups, strict=True):
            history.append(group["lr"])
        group = opt.param_groups[0]
        momenta.append(group["betas"][0] if "betas" in group else group["momentum"])
        opt.step()
        sched.step()  # after the last step too, as Lightning does
    return lrs, momenta


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_onecycle_with_one_or_two_steps_trains_at_each_groups_rate(optimizer: str) -> None:
    # torch's warm-up would end before step 0: one step trained at the final rate,
    # rate / 250000, and two steps at 0.81 of the rate and then the final rate.
    for total, expected in ((1, [1.0]), (2, [1.0, 1 / 250_000])):
        lrs, momenta = _one_cycle_history(total, optimizer)
        for history, rate in zip(lrs, (0.01, 0.01, 0.1, 0.1), strict=True):
            assert history == pytest.approx([rate * e for e in expected], rel=1e-12), total
            assert history[0] == rate  # exactly
        assert momenta == [0.85] * total  # the peak's momentum
    opt = make_optimizer(
        optimizer, [{"params": [torch.nn.Parameter(torch.zeros(1))]}], lr=0.1, momentum=0.9
    )  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="total_steps must be a positive integer; got 0"):
        make_scheduler("onecycle", opt, 0)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_onecycle_from_three_steps_is_torchs_to_the_last_bit(optimizer: str) -> None:
    # The committed figures were trained with torch's OneCycleLR (pct_start 0.3): kept, with
    # the peaks its docstring states where the warm-up's end falls between two steps.
    for total in (3, 4, 11, 48, 83, 100):
        lrs, momenta = _one_cycle_history(total, optimizer)
        net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
        groups = [{"params": net[0].parameters(), "lr": 0.01}, {"params": net[1].parameters()}]
        opt = make_optimizer(optimizer, groups, lr=0.1, momentum=0.9)  # type: ignore[arg-type]
        torchs = torch.optim.lr_scheduler.OneCycleLR(opt, [0.01, 0.1], total_steps=total)
        expected, beta = list[float](), "betas" if optimizer == "adamw" else "momentum"
        moments = list[float]()
        for _ in range(total):
            expected.append(opt.param_groups[1]["lr"])
            moment = opt.param_groups[0][beta]
            moments.append(moment[0] if beta == "betas" else moment)
            opt.step()
            torchs.step()
        assert (lrs[2], lrs[3], momenta) == (expected, expected, moments), total
    assert max(_one_cycle_history(4, "sgd")[0][2]) == pytest.approx(0.081, abs=5e-4)
    assert max(_one_cycle_history(11, "sgd")[0][2]) == pytest.approx(0.098, abs=5e-4)


def test_each_optimizer_name_builds_that_optimizer() -> None:
    def groups() -> list[dict]:
        return [{"params": [torch.nn.Parameter(torch.zeros(1))]}]

    kinds = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    kinds["rmsprop"] = torch.optim.RMSprop
    assert set(kinds) == set(OPTIMIZERS)
    for name, kind in kinds.items():
        opt = make_optimizer(name, groups(), lr=0.1, momentum=0.9)  # type: ignore[arg-type]
        assert type(opt) is kind and opt.defaults["lr"] == 0.1
    for momentum in (0.0, 0.9):  # Nesterov needs momentum; plain SGD without
        opt = make_optimizer("sgd", groups(), lr=0.1, momentum=momentum)
        assert (opt.defaults["momentum"], opt.defaults["nesterov"]) == (momentum, momentum > 0)
    assert make_optimizer("rmsprop", groups(), lr=0.1, momentum=0.5).defaults["momentum"] == 0.5


def test_hyperparameters_are_saved_for_checkpoint_reload(tmp_path) -> None:
    model = LeNet5(
        arch="lenet5_modern", num_classes=5, optimizer="sgd", lr=0.2, label_smoothing=0.1
    )
    trainer = _trainer(enable_checkpointing=True, default_root_dir=tmp_path)
    trainer.fit(model, train_dataloaders=_loader(classes=5))
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    restored = LeNet5.load_from_checkpoint(path)
    assert restored.hparams.arch == "lenet5_modern"
    assert (restored.num_classes, restored.hparams.optimizer, restored.hparams.lr) == (
        5,
        "sgd",
        0.2,
    )
    x = torch.randn(3, 1, 32, 32)
    model.eval(), restored.eval()
    torch.testing.assert_close(restored(x), model(x))


def test_metrics_are_one_collection_per_stage() -> None:
    model = LeNet5()
    stages = [model.train_metrics, model.val_metrics, model.test_metrics]
    # Training tracks top-1 accuracy only; evaluation adds top-5 and macro F1.
    assert [sorted(m.keys()) for m in stages] == [
        ["train_acc"],
        ["val_acc", "val_acc_top5", "val_f1"],
        ["test_acc", "test_acc_top5", "test_f1"],
    ]
    losses = list(model.losses.values())
    # Never one metric instance shared between stages.
    assert len({id(metric) for m in stages for metric in m.values()} | set(map(id, losses))) == 10


@pytest.mark.parametrize("classes", [3, 4, 5, 6])
@pytest.mark.filterwarnings("ignore:'k' \\(5\\) greater than or equal to 'n_classes' \\(5\\)")
def test_top5_only_with_at_least_five_classes(classes: int) -> None:
    model = LeNet5(num_classes=classes)
    top5 = classes >= 5
    assert sorted(model.val_metrics.keys()) == ["val_acc"] + ["val_acc_top5"] * top5 + ["val_f1"]
    loader = _loader(48, classes)
    result = _trainer().validate(model, dataloaders=loader, verbose=False)[0]
    assert ("val_acc_top5" in result) == top5
    if top5:  # scikit-learn's top-5 accuracy of the same logits (5 classes: always 1)
        model.eval()
        with torch.no_grad():
            logits = torch.cat([model(x) for x, _ in loader])
        labels = torch.cat([y for _, y in loader])
        assert result["val_acc_top5"] == pytest.approx(sklearn_metrics(logits, labels)["acc_top5"])


def test_test_metrics_match_a_hand_computed_accuracy() -> None:
    model = LeNet5()
    loader = _loader(96)
    result = _trainer().test(model, dataloaders=loader, verbose=False)[0]
    model.eval()
    with torch.no_grad():
        correct = sum((model(x).argmax(1) == y).sum().item() for x, y in loader)
    assert result["test_acc"] == pytest.approx(correct / 96)


def test_test_step_returns_the_logits_or_none_for_a_skipped_batch() -> None:
    model = LeNet5(nonfinite="skip").eval()
    x, y = torch.randn(4, 1, 32, 32), torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        logits = model.net(x)
        torch.testing.assert_close(model.test_step((x, y), 0), logits)
        x[1, 0, 3, 3] = math.nan
        with pytest.warns(UserWarning, match=r"NaN or infinite"):
            assert model.test_step((x, y), 0) is None  # skipped: no logits


def test_predict_step_returns_probabilities() -> None:
    model = LeNet5().eval()
    x = torch.randn(4, 1, 32, 32)
    probs = model.predict_step((x, torch.zeros(4, dtype=torch.long)), 0)
    with torch.no_grad():
        torch.testing.assert_close(probs, torch.softmax(model.net(x), dim=1))
    assert model.predict_step(torch.zeros(2, 1, 32, 32), 0).shape == (2, 10)  # images only


def test_label_smoothing_is_pytorchs() -> None:
    x, y = next(iter(_loader()))
    smooth = LeNet5(label_smoothing=0.2)
    with torch.no_grad():
        logits = smooth.net(x)
    expected = torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a plain loop: no Trainer, so no self.log and no warning
        loss = smooth.training_step((x, y), 0)
    torch.testing.assert_close(loss, expected)
    assert not torch.isclose(expected, torch.nn.functional.cross_entropy(logits, y))


def test_auxiliary_outputs_are_added_with_their_weight() -> None:
    model = LeNet5(aux_loss_weight=0.7)  # not the default 0.3
    x, y = next(iter(_loader()))
    logits = model(x)
    model.net.forward = lambda inp: (logits, logits * 0.5)  # a network with one aux head
    expected = torch.nn.functional.cross_entropy(
        logits, y
    ) + 0.7 * torch.nn.functional.cross_entropy(logits * 0.5, y)
    torch.testing.assert_close(model.training_step((x, y), 0), expected)


def test_distillation_keeps_label_smoothing_in_the_auxiliary_heads_loss() -> None:
    # With a teacher, the network's logits learn from alpha * KL + (1 - alpha) * smoothed CE;
    # the auxiliary heads, which the teacher does not see, from the smoothed labels alone.
    F = torch.nn.functional
    model = LeNet5(
        loss="kl_div",
        teacher="t.ckpt",
        label_smoothing=0.1,
        alpha=0.25,
        temperature=2.0,
        aux_loss_weight=0.5,
    )
    x, y = next(iter(_loader()))
    logits, aux = model(x).detach(), torch.randn(16, 10, generator=torch.Generator().manual_seed(1))
    smoothed = F.cross_entropy(aux, y, label_smoothing=0.1)
    assert not torch.isclose(smoothed, F.cross_entropy(aux, y))
    torch.testing.assert_close(model.hard_criterion(aux, y), smoothed)
    # The same through a training step, the teacher (not loaded outside fit) a fixed network.
    torch.manual_seed(2)
    teacher = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32 * 32, 10))
    with torch.no_grad():
        teacher_logits = teacher(x)
    model._teacher = [teacher]
    model.net.forward = lambda inp: (logits, aux)  # a network with one aux head
    p, log_q = (teacher_logits / 2).softmax(1), (logits / 2).log_softmax(1)
    kl = 4 * (p * (p.log() - log_q)).sum(1).mean()
    expected = 0.25 * kl + 0.75 * F.cross_entropy(logits, y, label_smoothing=0.1) + 0.5 * smoothed
    torch.testing.assert_close(model.training_step((x, y), 0), expected)


def test_labels_out_of_range_are_named() -> None:
    x = torch.randn(4, 1, 32, 32)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\); got values from 0 to 10"):
        LeNet5().training_step((x, torch.tensor([0, 1, 2, 10])), 0)
    with pytest.raises(ValueError, match=r"labels must be an integer tensor of shape \(4,\)"):
        LeNet5().training_step((x, torch.zeros(4)), 0)


def test_weight_decay_skips_biases() -> None:
    groups = LeNet5(weight_decay=0.1, scheduler="none").configure_optimizers().param_groups
    assert groups[0]["weight_decay"] == 0.1 and all(p.ndim > 1 for p in groups[0]["params"])
    assert groups[1]["weight_decay"] == 0.0 and all(p.ndim == 1 for p in groups[1]["params"])
    # Called by hand with a schedule: Lightning's "LeNet5 is not attached to a `Trainer`".
    made = r"^the 'onecycle' LR schedule is made for a run's optimizer steps, which only a Trainer"
    with pytest.raises(RuntimeError, match=made + r" knows: .*scheduler='none'"):
        LeNet5(scheduler="onecycle").configure_optimizers()


def test_the_logged_loss_is_the_mean_over_images_not_over_batches() -> None:
    # Batches of 8 and 2 images: the mean of the two batch means would weigh the 2 images
    # as much as the 8.
    torch.manual_seed(0)
    x, y = torch.randn(10, 1, 32, 32), torch.randint(0, 10, (10,))
    model = LeNet5(scheduler="none").eval()
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    (logged,) = trainer.validate(model, DataLoader(TensorDataset(x, y), batch_size=8))
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(model(x), y).item()
    assert logged["val_loss"] == pytest.approx(expected, rel=1e-6)


def test_the_model_summary_counts_the_flops_of_one_training_image(tmp_path) -> None:
    # LeNet-5 at 32x32, multiply-accumulates of the weights (Lightning counts 2 FLOPs each, and
    # no bias, pooling or activation): C1 6*25*28*28, C3 16*6*25*10*10, C5 120*16*25, F6 120*84
    # and the classifier 84*10.
    macs = 6 * 25 * 28 * 28 + 16 * 6 * 25 * 10 * 10 + 120 * 16 * 25 + 120 * 84 + 84 * 10

    model = LeNet5()
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, Digits(image_size=32))
    assert tuple(model.example_input_array.shape) == (1, 1, 32, 32)
    assert ModelSummary(model).total_flops == 2 * macs == 833_040
    # A compiled network would compile once more for the example: no example, no count.
    compiled = LeNet5(compile=True)
    compiled.trainer = trainer
    compiled.setup("fit")
    assert compiled.example_input_array is None and compiled.data_config


def test_evaluation_reports_unsmoothed_cross_entropy() -> None:
    # Training learns from the smoothed loss; val_loss and test_loss are plain cross-entropy
    # (as timm validates), which a perfect prediction brings to 0 and smoothing never does.
    loader = _loader()
    model = LeNet5(label_smoothing=0.2)
    x, y = (torch.cat(t) for t in zip(*loader, strict=True))
    with torch.no_grad():
        logits = model.net(x)
    plain = torch.nn.functional.cross_entropy(logits, y)
    smoothed = torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.2)
    assert not torch.isclose(plain, smoothed)
    torch.testing.assert_close(model.training_step((x, y), 0), smoothed)
    trainer = _trainer()
    val = trainer.validate(model, loader, verbose=False)[0]["val_loss"]
    test = trainer.test(model, loader, verbose=False)[0]["test_loss"]
    torch.testing.assert_close(torch.tensor([val, test]), plain.repeat(2))


def test_a_model_and_data_of_other_class_counts_are_refused() -> None:
    # A 10-class model on 3-class data would train, then record 3 class names for 10 outputs.
    class ThreeClasses(Digits):
        num_classes = 3

    expected = r"lenet5 has num_classes=10; the datamodule ThreeClasses has 3 classes\. Build"
    with pytest.raises(ValueError, match=expected + r" the model with num_classes=3"):
        _trainer(limit_train_batches=1).fit(LeNet5(), datamodule=ThreeClasses())

    class OneClass(Digits):
        num_classes = 1

    # Not the num_classes=1 that the model would refuse: a classifier needs two classes.
    with pytest.raises(ValueError, match=r"OneClass has 1 class\(es\), and a classifier needs at"):
        _trainer(limit_train_batches=1).fit(LeNet5(), datamodule=OneClass())
    # A head replaced on the plain network, as in torchvision, leaves the metrics at 10.
    model = LeNet5()
    model.net.reset_classifier(20)
    expected = r"lenet5 has num_classes=10; its network has 20 classes\. .*reset_classifier\(20\)"
    with pytest.raises(ValueError, match=expected):
        _trainer(limit_train_batches=1).fit(model, _loader())
    model.reset_classifier(20)  # the model's: the head, the metrics and the checks
    _trainer(limit_train_batches=1, limit_val_batches=0).fit(model, _loader())
    assert model.num_classes == 20 and model.net.fc.out_features == 20


class _OwnValidation(LeNet5):
    # A user's own validation step, logging under the task's names.
    def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x, y = batch
        logits = self(x)
        self.log("val_loss", torch.nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())


def test_an_overriding_step_logs_its_own_values_not_the_unused_metrics() -> None:
    model = _OwnValidation(num_classes=10)
    trainer = _trainer(limit_train_batches=2)
    trainer.fit(model, train_dataloaders=_loader(), val_dataloaders=_loader())
    logged = trainer.callback_metrics
    model.eval()
    with torch.no_grad():  # the subclass's own figures over the validation loader
        x, y = next(iter(DataLoader(_loader().dataset, batch_size=64)))
        logits = model(x)
    assert math.isfinite(float(logged["val_loss"]))  # not the unused metric's NaN
    assert float(logged["val_acc"]) == pytest.approx(float((logits.argmax(1) == y).float().mean()))
    assert "val_f1" not in logged  # the task's own metrics were never updated


class _Narrowed(LeNet5):
    # A subclass that fixes the task's arguments and takes only its own.
    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__(num_classes=5, lr=0.05)
        self.save_hyperparameters()
        self.drop = torch.nn.Dropout(dropout)


class _NarrowedResNet(ResNet):
    # The same for a family whose networks take options (small_input, ...): the checkpoint
    # records them (None) with the task's arguments, and the subclass takes none of them.
    def __init__(self, dropout: float = 0.1) -> None:
        super().__init__(arch="resnet20", num_classes=5, in_channels=1, lr=0.05)
        self.save_hyperparameters()
        self.drop = torch.nn.Dropout(dropout)


def test_init_parameters_are_the_init_arguments_and_the_options_of_the_arch() -> None:
    # As its docstring says: ImageClassifier.__init__'s arguments (not **options), and with
    # an arch that model's network options, which **options takes.
    own = set(inspect.signature(ImageClassifier).parameters) - {"options"}
    assert init_parameters(ImageClassifier) == own
    assert "small_input" in model_info("resnet20").options
    assert init_parameters(ResNet, "resnet20") == own | set(model_info("resnet20").options)
    # A subclass whose __init__ takes no **kwargs passes none of them on.
    assert init_parameters(_NarrowedResNet, "resnet20") == {"dropout"}
    assert init_parameters(_Narrowed, "lenet5") == {"dropout"}


@pytest.mark.parametrize("narrowed", [_Narrowed, _NarrowedResNet], ids=["lenet5", "resnet20"])
def test_a_subclass_that_narrows_init_reloads_from_its_checkpoint(
    tmp_path, narrowed: type[ImageClassifier]
) -> None:
    trainer = _trainer(limit_train_batches=1)
    trainer.fit(narrowed(dropout=0.3), train_dataloaders=_loader(classes=5))
    trainer.save_checkpoint(tmp_path / "n.ckpt")
    restored = narrowed.load_from_checkpoint(tmp_path / "n.ckpt")
    assert restored.drop.p == 0.3 and restored.num_classes == 5
    # Neither the family's arguments nor its network options are the subclass's.
    for unknown, value in (("lr", 0.1), ("small_input", False)):
        with pytest.raises(
            TypeError,
            match=rf"got unknown argument\(s\) \['{unknown}'\]; it takes \['dropout'\]",
        ):
            narrowed.load_from_checkpoint(tmp_path / "n.ckpt", **{unknown: value})


def test_a_batch_size_set_on_the_datamodule_is_kept_over_the_recipe() -> None:
    # As Lightning's batch-size Tuner sets it; Digits(batch_size=None) takes the recipe's.
    dm = Digits()
    dm.batch_size = 16
    trainer = _trainer(limit_train_batches=1, limit_val_batches=1)
    trainer.fit(LeNet5(num_classes=10), datamodule=dm)
    assert dm.batch_size == 16 and trainer.train_dataloader.batch_size == 16  # type: ignore[union-attr]
    recipe = Digits()
    trainer = _trainer(limit_train_batches=1, limit_val_batches=1)
    trainer.fit(LeNet5(num_classes=10), datamodule=recipe)
    assert recipe.batch_size == LeNet5(num_classes=10).recipe.batch_size
    with pytest.raises(ValueError, match="batch_size must be a positive int; got 0"):
        dm.batch_size = 0


def test_loggers_record_the_recipes_values_not_none(tmp_path) -> None:
    # Lightning's loggers log hparams_initial; the recipe fills lr, optimizer, ... after
    # save_hyperparameters has recorded the family's arguments (None: the recipe's).
    model = LeNet5(num_classes=10)
    recipe = model.recipe
    logger = L.pytorch.loggers.CSVLogger(tmp_path)
    _trainer(logger=logger, limit_train_batches=1).fit(model, train_dataloaders=_loader())
    saved = (tmp_path / "lightning_logs" / "version_0" / "hparams.yaml").read_text()
    assert f"lr: {recipe.lr}\n" in saved and f"optimizer: {recipe.optimizer}\n" in saved
    assert model.hparams_initial["scheduler"] == recipe.scheduler


def test_a_checkpoint_is_tested_at_the_image_size_it_was_trained_at(tmp_path) -> None:
    # Digits' 8x8 images reach LeNet-5 at 40x40 in training; a datamodule left at its
    # defaults must feed the checkpoint the same, whichever way the checkpoint comes in.
    trainer = _trainer(limit_train_batches=2, limit_val_batches=1)
    trainer.fit(LeNet5(num_classes=10), datamodule=Digits(image_size=40))
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded, by_path = Digits(), Digits()
    figures = _trainer().test(LeNet5.load_from_checkpoint(tmp_path / "m.ckpt"), loaded)
    assert figures == _trainer().test(LeNet5(), by_path, ckpt_path=tmp_path / "m.ckpt")
    assert loaded.preprocessing.image_size == by_path.preprocessing.image_size == (40, 40)  # type: ignore[union-attr]
    given = Digits(image_size=32)  # a size given is kept
    _trainer().test(LeNet5.load_from_checkpoint(tmp_path / "m.ckpt"), given)
    assert given.preprocessing.image_size == (32, 32)  # type: ignore[union-attr]
    # Trained on resized images where padding would be the default (8 -> 12 px): resized.
    trainer = _trainer(limit_train_batches=1, limit_val_batches=1)
    net = {"arch": "resnet20", "num_classes": 10, "in_channels": 1}
    trainer.fit(ResNet(**net), datamodule=Digits(image_size=12, resize="resize"))
    trainer.save_checkpoint(tmp_path / "r.ckpt")
    for dm, ckpt_path in ((Digits(), None), (Digits(), tmp_path / "r.ckpt")):
        model = ResNet(**net) if ckpt_path else ResNet.load_from_checkpoint(tmp_path / "r.ckpt")
        _trainer().test(model, dm, ckpt_path=ckpt_path)
        assert dm.preprocessing is not None
        assert (dm.preprocessing.image_size, dm.preprocessing.resize) == ((12, 12), "resize")
    plain = Digits(image_size=12)  # without such a model, 4 px a side are padded
    plain.setup("fit")
    assert plain.preprocessing is not None and plain.preprocessing.resize == "pad"


def test_a_model_validated_or_tested_first_then_trains(tmp_path) -> None:
    # validate/test reset the metric states under inference mode; fit could not update
    # them after ("Inplace update to inference tensor outside InferenceMode").
    quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False,
             "enable_checkpointing": False, "default_root_dir": tmp_path}  # fmt: skip
    model, data = LeNet5(), Digits()
    (validated,) = L.Trainer(**quiet).validate(model, data, verbose=False)
    L.Trainer(**quiet).test(model, data, verbose=False)
    trainer = L.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=2, **quiet)
    trainer.fit(model, data)
    assert trainer.global_step == 2 and math.isfinite(trainer.callback_metrics["val_loss"])
    assert 0 <= validated["val_acc"] <= 1


def test_a_training_step_takes_soft_labels_and_scores_their_top_class() -> None:
    # torchvision's MixUp on real digits: the loss is the cross-entropy against the mixed
    # probabilities, and the training metrics count each image's largest share.
    from sklearn.metrics import accuracy_score
    from torchvision.transforms import v2

    dm = Digits(image_size=32, batch_size=64)
    dm.setup("fit")
    x, y = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    torch.manual_seed(0)
    mixed, q = v2.MixUp(alpha=1.0, num_classes=10)(x, y)
    assert q.shape == (64, 10) and not torch.equal(mixed, x)
    model = LeNet5(num_classes=10)
    loss = model.training_step((mixed, q), 0)
    logits = model.net(mixed).detach()
    assert torch.allclose(loss, -(q * logits.log_softmax(dim=1)).sum(dim=1).mean(), atol=1e-6)
    acc = model.train_metrics.compute()["train_acc"]
    assert float(acc) == pytest.approx(accuracy_score(q.argmax(1), logits.argmax(1)), abs=1e-6)
    for stage in ("validation_step", "test_step"):  # metrics there need the true class
        with pytest.raises(ValueError, match=r"soft labels are for training batches"):
            getattr(model, stage)((mixed, q), 0)


def test_mixup_and_cutmix_batches_train_a_model(tmp_path) -> None:
    torch.manual_seed(0)
    model = LeNet5(num_classes=10)
    trainer = _trainer(max_epochs=4, default_root_dir=tmp_path)
    # Each training batch gets MixUp or CutMix (at random) in the datamodule's transform.
    trainer.fit(model, datamodule=Digits(image_size=32, mixup_alpha=0.2, cutmix_alpha=1.0))
    metrics = trainer.callback_metrics
    # Evaluated on the true classes: well above chance (0.1) after 4 epochs (0.93-0.94
    # over seeds 0-3).
    assert math.isfinite(float(metrics["train_loss"])) and float(metrics["val_acc"]) > 0.8


def test_lightning_s_ema_callback_leaves_the_averaged_weights_in_the_checkpoint(tmp_path) -> None:
    # timm's and torchvision's "model EMA" is Lightning's EMAWeightAveraging here; the
    # checkpoint (and so load_model, test --ckpt_path, export) holds the average, computed by
    # hand: the weights after the first step, then avg = d * avg + (1 - d) * weights.
    from lightning.pytorch.callbacks import EMAWeightAveraging

    from classic_cnns import load_model

    seen: list[dict[str, torch.Tensor]] = []

    class Weights(L.Callback):
        def on_train_batch_end(self, trainer, module, *args) -> None:
            seen.append({k: v.detach().clone() for k, v in module.net.state_dict().items()})

    torch.manual_seed(0)
    trainer = _trainer(
        max_steps=6, default_root_dir=tmp_path, limit_val_batches=0,
        callbacks=[Weights(), EMAWeightAveraging(decay=0.5)],
    )  # fmt: skip
    trainer.fit(LeNet5(num_classes=10, scheduler="none"), datamodule=Digits(image_size=32))
    trainer.save_checkpoint(tmp_path / "ema.ckpt")
    average = dict(seen[0])
    for weights in seen[1:]:
        average = {k: 0.5 * average[k] + 0.5 * w for k, w in weights.items()}
    loaded = load_model(tmp_path / "ema.ckpt").net.state_dict()
    assert len(seen) == 6 and not torch.equal(loaded["fc.weight"], seen[-1]["fc.weight"])
    for key, value in average.items():
        torch.testing.assert_close(loaded[key], value, rtol=1e-5, atol=1e-6)


def test_barebones_training_updates_no_metrics_and_asks_for_no_logging(recwarn) -> None:
    # Trainer(barebones=True) logs nothing, so the metrics would be computed for nobody, and
    # Lightning warned at the first self.log.
    model = LeNet5()
    before = [p.detach().clone() for p in model.parameters()]
    trainer = L.Trainer(barebones=True, max_epochs=1, limit_train_batches=3, limit_val_batches=2)
    trainer.fit(model, datamodule=Digits())
    assert not any("self.log()" in str(w.message) for w in recwarn.list)
    assert not any(m.update_called for m in model.modules() if isinstance(m, Metric))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    # The same model under a plain Trainer updates and logs them.
    trainer = _trainer(limit_train_batches=3, limit_val_batches=2)
    trainer.fit(model, datamodule=Digits())
    assert {"train_acc", "train_loss", "val_acc", "val_loss"} <= set(trainer.callback_metrics)


@pytest.mark.parametrize(
    "config",
    [
        {"input_size": (1, 32, 32), "interpolation": "bicubic", "mean": (0.5,), "crop_pct": 0.9},
        {"image_size": 32, "batch_size": 8},
    ],
    ids=["timm", "int_image_size"],
)
def test_a_project_s_datamodule_with_a_data_config_of_its_own_trains(
    tmp_path, config: dict
) -> None:
    # timm keeps resolve_data_config's dict as `data_config`: fit stopped in setup with a
    # KeyError 'image_size' (an int image_size: a TypeError), deep in the task.
    x, y = torch.rand(24, 1, 32, 32), torch.arange(24) % 10

    class ProjectData(L.LightningDataModule):
        data_config = config

        def train_dataloader(self) -> DataLoader:
            return DataLoader(TensorDataset(x, y), batch_size=8)

    model = LeNet5(scheduler="none")
    trainer = L.Trainer(max_epochs=1, default_root_dir=tmp_path, logger=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    with pytest.warns(UserWarning) as caught:
        trainer.fit(model, datamodule=ProjectData())
    said = [str(w.message) for w in caught if "data_config" in str(w.message)]
    assert len(said) == 1 and said[0].startswith(
        "ProjectData.data_config is not a classic-cnns data configuration (a mapping with "
        f"image_size (H, W), as Preprocessing.config() gives); got {config!r}. It is left out"
    )
    assert trainer.global_step == 3 and model.data_config == {}  # nothing foreign recorded
