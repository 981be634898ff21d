"""Fine-tuning: heads, freezing, the unfreezing callback, per-part learning rates, checkpoints."""

from __future__ import annotations

import csv
import re
import shlex
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.optim import lr_scheduler
from torch.utils.data import DataLoader, TensorDataset

from classic_cnns import Digits, LeNet5, NiN, ResNet, create_model, model_info
from classic_cnns.data.mnist import read_idx
from classic_cnns.finetune import UnfreezeBackbone, freeze_backbone, head_names, reset_head

pytestmark = pytest.mark.usefixtures("one_thread")


def _trainer(**kw) -> L.Trainer:
    quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}
    kw = {"max_epochs": 1, "enable_checkpointing": False, "accelerator": "cpu", **quiet, **kw}
    return L.Trainer(**kw)


def _loader(n: int = 64, classes: int = 10, size: int = 32, channels: int = 1) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, channels, size, size, generator=g)
    return DataLoader(TensorDataset(x, torch.randint(0, classes, (n,), generator=g)), batch_size=16)


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize(
    ("name", "kwargs", "heads"),
    [
        ("lenet5", {}, ("fc",)),
        ("resnet20", {}, ("fc",)),
        ("nin", {}, ("classifier.0",)),
        ("densenet_bc_100", {}, ("classifier",)),
        ("vgg11", {"small_input": True}, ("classifier.6",)),
        ("googlenet", {"small_input": True}, ("fc", "aux1", "aux2")),
        ("googlenet", {"small_input": True, "aux_logits": False}, ("fc",)),
    ],
)
def test_the_head_is_what_reset_classifier_replaces(name: str, kwargs: dict, heads: tuple) -> None:
    net = model_info(name).build_net(**kwargs)
    assert head_names(net) == heads


def test_freeze_backbone_trains_only_the_head_and_keeps_batch_norm_fixed() -> None:
    model = ResNet("resnet20", num_classes=10, in_channels=1, scheduler="none", lr=0.05)
    model.freeze_backbone()
    assert model.backbone_frozen
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "net.fc.weight",
        "net.fc.bias",
    ]
    before = _snapshot(model)
    _trainer(max_steps=3).fit(model, _loader(48, size=28))
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # Only the head moved: no backbone weight, and no batch norm statistic either.
    assert changed == {"net.fc.weight", "net.fc.bias"}
    assert not model.net.bn1.training and model.training
    model.unfreeze_backbone()
    assert not model.backbone_frozen and model.train().net.bn1.training


def test_freezing_googlenet_s_backbone_leaves_its_auxiliary_heads_batch_norms_training() -> None:
    # aux1 and aux2 are head (torchvision's weights leave them untrained): their batch norms
    # must train and track statistics while the backbone's stay fixed.
    torch.manual_seed(0)
    model = create_model("googlenet", num_classes=10, small_input=True)
    model.freeze_backbone()
    model.train()
    aux, stem = model.net.aux1.conv.bn, model.net.conv1.bn
    assert aux.training and aux.track_running_stats and aux.weight.requires_grad
    assert not stem.training
    before, stem_before = aux.running_mean.clone(), stem.running_mean.clone()
    model(torch.randn(4, 3, 32, 32))
    assert not torch.equal(before, aux.running_mean)
    assert torch.equal(stem_before, stem.running_mean)


def test_freezing_again_with_train_bn_trains_and_tracks_the_batch_norms_again() -> None:
    # The README's model.freeze_backbone(), then UnfreezeBackbone(train_bn=True) (or a second
    # freeze with train_bn): the norms trained on batch statistics but tracked none, so that
    # validation normalised with stale ones.
    model = LeNet5("lenet5_bn", num_classes=10)
    model.freeze_backbone()
    model.freeze_backbone(train_bn=True)
    norms = [model.net.c1[1], model.net.c3[1]]
    assert all(m.track_running_stats and m.weight.requires_grad for m in norms)
    before = _snapshot(model)
    _trainer(max_steps=2).fit(model, _loader(32))
    after = model.state_dict()
    for name in ("net.c1.1.running_mean", "net.c1.1.weight", "net.fc.weight"):
        assert not torch.equal(before[name], after[name]), name
    assert torch.equal(before["net.c1.0.weight"], after["net.c1.0.weight"])  # still frozen


def test_a_frozen_backbone_keeps_its_batch_norm_statistics_through_a_re_estimation() -> None:
    # torch's update_bn (and Lightning's SWA) reset every batch norm's statistics, then run
    # the data in training mode to re-estimate them; frozen norms stay in eval mode, so they
    # were left at mean 0, variance 1. Untracked while frozen (as Lightning's
    # BaseFinetuning.freeze leaves them), update_bn passes them by.
    model = LeNet5("lenet5_bn", num_classes=10)
    _trainer(max_steps=3).fit(model, _loader(48))
    model.freeze_backbone()
    before = _snapshot(model)
    images = [x for x, _ in _loader(32)]
    torch.optim.swa_utils.update_bn(images, model)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    model.unfreeze_backbone()  # tracked again: the next training step updates them
    model.train()(images[0])
    assert not torch.equal(before["net.c1.1.running_mean"], model.net.c1[1].running_mean)
    # Lightning's SWA resets them whatever they track: the reset is warned of.
    model.freeze_backbone()
    swa = L.pytorch.callbacks.StochasticWeightAveraging(swa_lrs=0.01, swa_epoch_start=1)
    with pytest.warns(UserWarning, match=r"reset the running statistics of 4 batch norm la"):
        _trainer(max_epochs=2, callbacks=[swa]).fit(model, _loader(48))
    assert not model.net.c1[1].running_mean.any()  # what the warning says


def test_lightning_s_unfreeze_after_freeze_backbone_trains_the_batch_norm_layers_again() -> None:
    # LightningModule.unfreeze() set requires_grad, but the frozen norms stayed in eval mode
    # through training (their statistics never moved) and backbone_frozen stayed True.
    model = ResNet("resnet20", num_classes=10, in_channels=1)
    model.freeze_backbone()
    model.unfreeze()
    assert not model.backbone_frozen and all(p.requires_grad for p in model.parameters())
    before = model.net.bn1.running_mean.clone()
    _trainer(max_steps=2).fit(model, _loader(32))
    assert model.net.bn1.track_running_stats and not torch.equal(before, model.net.bn1.running_mean)


def test_lightning_s_backbone_finetuning_is_refused_with_the_callback_to_use() -> None:
    # It failed inside Lightning: "'ResNet' object has no attribute 'backbone'".
    finetuning = L.pytorch.callbacks.BackboneFinetuning(unfreeze_backbone_at_epoch=1)
    with pytest.raises(
        TypeError,
        match=r"^Lightning's BackboneFinetuning needs a `backbone` module .*; ResNet has no "
        r"`backbone`, .* Use classic_cnns\.UnfreezeBackbone\(after_epochs=N\) instead",
    ):
        _trainer(callbacks=[finetuning]).fit(ResNet("resnet20", in_channels=1), _loader())
    # A subclass with a backbone of its own may use it; the task's own callback still comes.
    model = ResNet("resnet20", in_channels=1)
    model.backbone = model.net.layer1
    model.trainer = _trainer(callbacks=[finetuning])
    assert [type(c).__name__ for c in model.configure_callbacks()] == ["ExactResume"]


@pytest.mark.parametrize(
    ("options", "train_bn"),
    # The default, as documented: the frozen backbone's batch norm layers are frozen too.
    [({}, False), ({"train_bn": False}, False), ({"train_bn": True}, True)],
)
def test_unfreeze_backbone_callback_trains_the_backbone_after_n_epochs(
    options: dict, train_bn: bool
) -> None:
    model = LeNet5(arch="lenet5_bn", scheduler="cosine", lr=0.01)
    seen: list[tuple[int, bool]] = []

    frozen_epoch: dict[str, torch.Tensor] = {}

    class Spy(L.Callback):
        def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            seen.append((trainer.current_epoch, pl_module.backbone_frozen))
            if trainer.current_epoch == 0:
                frozen_epoch.update(_snapshot(pl_module))
                frozen_epoch["bn_training"] = torch.tensor(pl_module.net.c1[1].training)

    before = _snapshot(model)
    callback = UnfreezeBackbone(after_epochs=1, **options)
    trainer = _trainer(max_epochs=2, limit_train_batches=2, callbacks=[callback, Spy()])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, _loader())
    assert seen == [(0, True), (1, False)]
    # Lightning's warning about modules in eval mode counts the fixed batch norm layers,
    # as the README says: the 4 of LeNet-5-BN (c1, c3, c5 and f6; the head, fc, has none).
    eval_mode = [str(w.message) for w in caught if "in eval mode" in str(w.message)]
    assert [m.split(" module")[0] for m in eval_mode] == ([] if train_bn else ["Found 4"])
    assert not torch.equal(before["net.c1.0.weight"], model.net.c1[0].weight)
    # While the backbone was frozen (epoch 0) its convolutions stayed; with train_bn its
    # batch norm layers trained (scale, shift and running statistics), else they stayed too.
    assert torch.equal(frozen_epoch["net.c1.0.weight"], before["net.c1.0.weight"])
    bn_keys = ("net.c1.1.weight", "net.c1.1.bias", "net.c1.1.running_mean")
    moved = [not torch.equal(frozen_epoch[k], before[k]) for k in bn_keys]
    assert moved == [train_bn] * 3 and bool(frozen_epoch["bn_training"]) == train_bn
    bn = model.net.c1[1]
    assert bn.weight.requires_grad and bn.training  # and after unfreezing, every layer trains
    # Frozen parameters were in the optimizer all along: unfreezing added no group.
    assert len(trainer.optimizers[0].param_groups) == 4
    # Testing with the same trainer afterwards does not freeze the trained backbone again.
    trainer.test(model, _loader(16), verbose=False)
    assert not model.backbone_frozen and all(p.requires_grad for p in model.parameters())


def test_unfreeze_backbone_after_zero_epochs_trains_everything_from_the_start() -> None:
    model = LeNet5(arch="lenet5_bn", scheduler="none", lr=0.01)
    seen: list[tuple[bool, bool]] = []

    class Spy(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            bn = pl_module.net.c1[1]
            seen.append((pl_module.backbone_frozen, bn.training and bn.weight.requires_grad))

    before = _snapshot(model)
    trainer = _trainer(limit_train_batches=2, callbacks=[UnfreezeBackbone(after_epochs=0), Spy()])
    trainer.fit(model, _loader())
    assert seen == [(False, True), (False, True)]
    assert not torch.equal(before["net.c1.0.weight"], model.net.c1[0].weight)
    assert not torch.equal(before["net.c1.1.running_mean"], model.net.c1[1].running_mean)


@pytest.mark.parametrize("after_epochs", [-1, 1.5, "1"])
def test_unfreeze_backbone_refuses_what_is_not_a_count_of_epochs(after_epochs: object) -> None:
    with pytest.raises(
        ValueError,
        match=rf"^after_epochs must be an int >= 0; got {re.escape(repr(after_epochs))}$",
    ):
        UnfreezeBackbone(after_epochs=after_epochs)


@pytest.mark.parametrize(
    ("make", "message"),
    [  # a str lr_scale failed in a comparison; "no" froze with train_bn on
        (lambda: UnfreezeBackbone(lr_scale="0.1"), "lr_scale must be a number > 0; got '0.1'"),
        (lambda: UnfreezeBackbone(lr_scale=0), "lr_scale must be a number > 0; got 0"),
        (lambda: UnfreezeBackbone(train_bn="no"), "train_bn must be True or False; got 'no'"),
        (lambda: freeze_backbone(LeNet5().net, train_bn="no"), "train_bn must be True or False"),
        (lambda: LeNet5().freeze_backbone(train_bn=1), "train_bn must be True or False; got 1"),
    ],
)
def test_fine_tuning_settings_of_the_wrong_type_are_refused(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_unfreeze_backbone_refuses_a_module_that_cannot_freeze_its_backbone() -> None:
    from lightning.pytorch.demos.boring_classes import BoringModel

    trainer = _trainer(max_steps=1, callbacks=[UnfreezeBackbone()])
    with pytest.raises(
        TypeError,
        match=r"^UnfreezeBackbone needs a LightningModule with freeze_backbone\(\) and "
        r"unfreeze_backbone\(\) \(an ImageClassifier\); got BoringModel$",
    ):
        trainer.fit(BoringModel())


def test_unfreeze_backbone_adds_missing_parameters_to_the_optimizer() -> None:
    class OnlyTrainable(LeNet5):
        def configure_optimizers(self):  # the usual filter(requires_grad) recipe
            return torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=0.1)

    model = OnlyTrainable()
    trainer = _trainer(max_epochs=2, limit_train_batches=1, callbacks=[UnfreezeBackbone(1)])
    trainer.fit(model, _loader())
    groups = trainer.optimizers[0].param_groups
    assert len(groups) == 2 and groups[1]["lr"] == pytest.approx(0.01)
    held = {id(p) for g in groups for p in g["params"]}
    assert held == {id(p) for p in model.parameters()}


def test_a_group_added_at_unfreezing_carries_the_schedule_s_keys() -> None:
    # OneCycleLR reads initial_lr, max_lr and min_lr from every group: the group added for
    # the backbone had none, and the first step after unfreezing raised KeyError: 'max_lr'.
    class OneCycle(LeNet5):
        def configure_optimizers(self):
            params = [p for p in self.parameters() if p.requires_grad]
            optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9)
            total = self.trainer.estimated_stepping_batches
            cycle = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=total)
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": cycle, "interval": "step"},
            }

    model = OneCycle(arch="lenet5_bn")
    trainer = _trainer(max_epochs=2, limit_train_batches=2, callbacks=[UnfreezeBackbone(1)])
    trainer.fit(model, _loader(16))
    head, backbone = trainer.optimizers[0].param_groups
    assert len(backbone["params"]) == 16  # and the schedule cycles its momentum too:
    assert backbone["momentum"] == pytest.approx(head["momentum"]) != 0.9
    for key in ("lr", "initial_lr", "max_lr", "min_lr"):
        assert backbone[key] == pytest.approx(head[key] / 10), key  # lr_scale: 1/10


class _Warmup:  # a callable object: LambdaLR saves its state in the checkpoint
    def __call__(self, step: int) -> float:
        return min(1.0, (step + 1) / 3)


_SCHEDULES = {
    "LambdaLR": lambda o: lr_scheduler.LambdaLR(o, lambda step: min(1.0, (step + 1) / 3)),
    "LambdaLR of an object": lambda o: lr_scheduler.LambdaLR(o, _Warmup()),
    "MultiplicativeLR": lambda o: lr_scheduler.MultiplicativeLR(o, lambda step: 0.9),
    "CyclicLR": lambda o: lr_scheduler.CyclicLR(o, 0.01, 0.1, step_size_up=3),
    "CosineAnnealingWarmRestarts": lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, 3),
    "SequentialLR": lambda o: lr_scheduler.SequentialLR(
        o,
        [
            lr_scheduler.LambdaLR(o, lambda s: 0.5),
            lr_scheduler.CyclicLR(o, 0.01, 0.1, cycle_momentum=False),
        ],
        [2],
    ),
}


@pytest.mark.parametrize("name", sorted(_SCHEDULES))
def test_a_group_added_at_unfreezing_follows_schedules_that_keep_per_group_lists(
    name: str, tmp_path: Path
) -> None:
    # These schedules keep a list per group from their construction (lr_lambdas, max_lrs,
    # base_lrs): the step after a group was added raised "zip() argument 2 is shorter than
    # argument 1". The added group now follows the first one's schedule at lr_scale, in a
    # resumed run too (its lambdas are not in the checkpoint).
    class Scheduled(LeNet5):
        def configure_optimizers(self):
            params = [p for p in self.parameters() if p.requires_grad]  # the head's alone
            optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9)
            schedule = {"scheduler": _SCHEDULES[name](optimizer), "interval": "step"}
            return {"optimizer": optimizer, "lr_scheduler": schedule}

    trainer = _trainer(max_epochs=2, limit_train_batches=3, callbacks=[UnfreezeBackbone(1)])
    trainer.fit(Scheduled(arch="lenet5_bn"), _loader(48))
    head, backbone = trainer.optimizers[0].param_groups
    assert len(backbone["params"]) == 16 and backbone["lr"] == pytest.approx(head["lr"] / 10)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    trainer = _trainer(max_epochs=3, limit_train_batches=3, callbacks=[UnfreezeBackbone(1)])
    trainer.fit(Scheduled(arch="lenet5_bn"), _loader(48), ckpt_path=tmp_path / "m.ckpt")
    head, backbone = trainer.optimizers[0].param_groups
    assert trainer.global_step == 9 and backbone["lr"] == pytest.approx(head["lr"] / 10)


def test_backbone_and_head_learning_rates() -> None:
    model = LeNet5(lr=0.1, backbone_lr=0.01, scheduler="none", optimizer="sgd", weight_decay=0.1)
    groups = model.configure_optimizers().param_groups
    assert [(g["lr"], g["weight_decay"], len(g["params"])) for g in groups] == [
        (0.01, 0.1, 4), (0.01, 0.0, 4), (0.1, 0.1, 1), (0.1, 0.0, 1)
    ]  # fmt: skip
    # OneCycle peaks each group at its own rate.
    model = LeNet5(lr=0.1, backbone_lr=0.01, scheduler="onecycle")
    trainer = _trainer(max_steps=1)
    trainer.fit(model, _loader(16))
    assert [g["max_lr"] for g in trainer.optimizers[0].param_groups] == [0.01, 0.01, 0.1, 0.1]
    with pytest.raises(
        ValueError, match=r"backbone_lr must be a positive finite number or None; got 0"
    ):
        LeNet5(backbone_lr=0)


def test_reset_classifier_and_forward_features(tmp_path: Path) -> None:
    model = LeNet5(num_classes=10)
    backbone = _snapshot(model.net.c5)
    model.reset_classifier(4)
    assert model.net.fc.out_features == 4 and model.num_classes == 4
    assert sorted(model.val_metrics.keys()) == ["val_acc", "val_f1"]  # no top-5 for 4 classes
    x = torch.randn(3, 1, 32, 32)
    assert model(x).shape == (3, 4)
    # The task's forward_features are the network's unpooled maps (C5's for LeNet-5); the
    # network's head turns them into the pre-logits features, num_features wide (F6's 84).
    maps = model.forward_features(x)
    assert maps.shape == (3, 120, 1, 1) and model.num_features == 84
    assert model.net.forward_head(maps, pre_logits=True).shape == (3, 84)
    assert torch.equal(model.net.forward_head(maps), model(x))
    with pytest.raises(ValueError, match=r"needs images of at least 32x32"):
        model.forward_features(torch.zeros(1, 1, 28, 28))  # checked like forward's input
    assert all(torch.equal(v, model.net.c5.state_dict()[k]) for k, v in backbone.items())
    trainer = _trainer(max_steps=1)
    trainer.fit(model, _loader(16, classes=4))
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    assert LeNet5.load_from_checkpoint(tmp_path / "m.ckpt").net.fc.out_features == 4
    assert NiN(num_classes=10).eval().forward_features(torch.zeros(2, 3, 32, 32)).shape == (
        2, 192, 8, 8
    )  # fmt: skip


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind", ["linear", "conv1x1"])
def test_a_network_of_ones_own_gets_a_head_without_declaring_one(kind: str, bias: bool) -> None:
    # Without head_names or reset_classifier: the last module with parameters is the head,
    # and reset_head replaces that linear layer or 1x1 convolution, with a bias if it had one.
    torch.manual_seed(0)
    nn = torch.nn
    head: list[nn.Module] = (
        [nn.Flatten(), nn.Linear(16, 10, bias=bias)]
        if kind == "linear"
        else [nn.Conv2d(4, 10, 1, bias=bias), nn.Flatten()]
    )
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), *head)
    name = "3" if kind == "linear" else "2"
    assert head_names(net) == (name,)
    conv = net[0].weight.detach().clone()
    reset_head(net, 3)
    fresh = net.get_submodule(name)
    assert type(fresh) is type(head[0 if kind == "conv1x1" else 1])
    assert fresh.weight.shape[0] == 3 and (fresh.bias is not None) == bias
    assert torch.equal(net[0].weight, conv)
    assert net(torch.zeros(2, 1, 4, 4)).shape == ((2, 3) if kind == "linear" else (2, 12))
    with pytest.raises(ValueError, match=r"num_classes must be an int of at least 2; got 1"):
        reset_head(net, 1)


@pytest.mark.parametrize("own_reset", [False, True])
def test_reset_head_makes_the_head_where_the_network_is(own_reset: bool) -> None:
    # A network of one's own, with or without a reset_classifier (which, as PyTorch makes
    # layers, puts its head in float32 on the CPU), moved to another device and dtype first.
    # Its own head has a batch norm without weights (buffers only) and a layer that a
    # second attribute shares: both follow, and stay shared.
    class Net(torch.nn.Sequential):
        def reset_classifier(self, num_classes: int) -> None:
            norm = torch.nn.BatchNorm1d(4, affine=False)
            self[2] = torch.nn.Sequential(norm, torch.nn.Linear(4, num_classes))
            self.shared = self[2][1]

    net = (Net if own_reset else torch.nn.Sequential)(
        torch.nn.Conv2d(1, 4, 1), torch.nn.Flatten(), torch.nn.Linear(4, 10)
    )
    net.to("meta", torch.float64)
    reset_head(net, 3)
    tensors = [*net.parameters(), *(b for b in net.buffers() if b.is_floating_point())]
    assert {(t.device.type, t.dtype) for t in tensors} == {("meta", torch.float64)}
    assert {b.dtype for b in net.buffers() if not b.is_floating_point()} <= {torch.int64}
    if own_reset:
        assert net[2][1].out_features == 3 and net.shared.weight is net[2][1].weight
        assert len(list(net.buffers())) == 3  # the norm's mean, variance and count
    else:
        assert net[2].out_features == 3


def test_load_from_checkpoint_with_a_new_head_names_the_keys_not_loaded(tmp_path: Path) -> None:
    model = LeNet5(num_classes=10)
    trainer = _trainer(max_steps=1)
    trainer.fit(model, _loader(16))
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    with pytest.warns(UserWarning, match=r"2 key\(s\) not loaded") as record:
        new = LeNet5.load_from_checkpoint(tmp_path / "m.ckpt", num_classes=5)
    message = str(record[0].message)
    assert "net.fc.weight (shape (10, 84) in the source, (5, 84) here: kept fresh)" in message
    assert "net.fc.bias" in message and "c5" not in message
    assert new.num_classes == 5 and new.net.fc.out_features == 5
    assert torch.equal(new.net.f6[0].weight, model.net.f6[0].weight)
    # Three input channels: the first convolution is adapted, the rest loads as it is.
    with pytest.warns(UserWarning, match=r"net.fc.weight"):
        rgb = LeNet5.load_from_checkpoint(tmp_path / "m.ckpt", num_classes=5, in_channels=3)
    torch.testing.assert_close(rgb.net.c1[0].weight.sum(1), model.net.c1[0].weight.sum(1))


def test_weights_loaded_for_other_channels_carry_statistics_for_them(tmp_path: Path) -> None:
    # A grey model's one mean and std, repeated for the RGB network its first convolution is
    # adapted to, whichever way it is loaded (as fit records three for RGB data); they were
    # kept one long, and exported so for a three-channel network.
    from classic_cnns import create_model, load_model
    from classic_cnns.export import save_safetensors
    from classic_cnns.hub import load_weights

    model = LeNet5(num_classes=10)
    model.data_config = {"mean": [0.1307], "std": [0.3081], "image_size": [32, 32]}
    trainer = _trainer()
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    save_safetensors(model, tmp_path / "m.safetensors")
    into_rgb = LeNet5(num_classes=10, in_channels=3)
    load_weights(into_rgb, checkpoint_path=tmp_path / "m.ckpt")
    loaded = [
        load_model(tmp_path / "m.ckpt", in_channels=3),
        LeNet5.load_from_checkpoint(tmp_path / "m.ckpt", in_channels=3),
        create_model("lenet5", checkpoint_path=tmp_path / "m.safetensors", in_channels=3),
        into_rgb,
    ]
    for rgb in loaded:
        assert rgb.data_config == {
            "mean": [0.1307] * 3,
            "std": [0.3081] * 3,
            "image_size": [32, 32],
        }
    assert load_model(tmp_path / "m.ckpt").data_config == model.data_config  # 1 channel: as is


class _Reordered(Digits):
    # The same digits, numbered as a folder sorted otherwise would number them.
    class_names = tuple(str(d) for d in (1, 0, *range(2, 10)))


class _Renamed(Digits):
    class_names = ("zero", "one", *(str(d) for d in range(2, 10)))


class _Shifted(Digits):
    # A new class first, the head's "0"-"8" after it (an STL-10 folder for a CIFAR-10 head).
    class_names = ("ten", *(str(d) for d in range(9)))


class _Unnamed(Digits):
    class_names = ("a", "b", "c")  # names that do not cover the classes: the count decides


def test_fine_tuning_a_head_refuses_its_classes_numbered_otherwise(tmp_path: Path) -> None:
    # A head that knows "0" at output 0 must not be fine-tuned on data that labels "0" as 1:
    # it would silently start from the wrong class (and then record the data's names).
    trainer = _trainer(max_steps=2)
    trainer.fit(LeNet5(), Digits(batch_size=32))
    trainer.save_checkpoint(tmp_path / "digits.ckpt")
    model = LeNet5.load_from_checkpoint(tmp_path / "digits.ckpt")
    assert model.data_config["class_names"] == [str(d) for d in range(10)]
    with pytest.raises(ValueError, match=r"numbers the classes \['1', '0', '2'") as err:
        _trainer(max_steps=1).fit(model, _Reordered(batch_size=32))
    assert "fine-tuning would start '1' (and 1 more) from another class's output" in str(err.value)
    assert "classes=['0', '1', '2', '3'" in str(err.value)
    # The order it suggests keeps each class the head knows at its output, the new one where
    # a class of the head's is missing.
    with pytest.raises(ValueError, match=r"start '0' \(and 8 more\)") as err:
        _trainer(max_steps=1).fit(model, _Shifted(batch_size=32))
    assert f"classes={[*(str(d) for d in range(9)), 'ten']}" in str(err.value)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", ".*head was trained")
        _trainer(max_steps=1).fit(LeNet5.load_from_checkpoint(tmp_path / "digits.ckpt"),
                                  _Unnamed(batch_size=32))  # fmt: skip
    # New names for some outputs: fine-tuning them is fine, and says what it starts from.
    with pytest.warns(
        UserWarning, match=r"'0' -> 'zero', '1' -> 'one'\); model.reset_classifier"
    ) as record:
        _trainer(max_steps=1).fit(model, _Renamed(batch_size=32))
    # At the trainer.fit line here, past Lightning's frames and the package's.
    assert {w.filename for w in record if "head was trained" in str(w.message)} == {__file__}
    assert model.data_config["class_names"][:2] == ["zero", "one"]  # the data's, from now on
    # The data's own classes, in the head's order: no word.
    fresh = LeNet5.load_from_checkpoint(tmp_path / "digits.ckpt")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", ".*head was trained")
        _trainer(max_steps=1).fit(fresh, Digits(batch_size=32))


def test_checkpoints_of_a_compiled_network_load(tmp_path: Path) -> None:
    model = LeNet5(arch="lenet5_modern")
    model.net = torch.compile(model.net, backend="eager")  # type: ignore[assignment]
    state = model.state_dict()
    assert any("_orig_mod." in k for k in state)
    torch.save(
        {"state_dict": state, "hyper_parameters": dict(model.hparams),
         "pytorch-lightning_version": L.__version__},
        tmp_path / "compiled.ckpt",
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        restored = LeNet5.load_from_checkpoint(tmp_path / "compiled.ckpt")
    for key, value in restored.state_dict().items():
        assert torch.equal(value, state[key.replace("net.", "net._orig_mod.", 1)])


@pytest.mark.slow
def test_fine_tuning_from_digits_beats_training_from_scratch_on_mnist(
    mnist_raw: Path, tmp_path: Path
) -> None:
    # Source task: LeNet-5 on scikit-learn's 8x8 digits, upsampled to 32x32.
    L.seed_everything(0, verbose=False)
    source = LeNet5(arch="lenet5_modern", optimizer="adamw", lr=3e-3)
    digits = Digits(batch_size=64, image_size=32, val_size=0)
    trainer = _trainer(max_epochs=5)
    trainer.fit(source, datamodule=digits)
    trainer.save_checkpoint(tmp_path / "digits.ckpt")

    # Target task: real MNIST digits. Their 20x20 box is cropped and scaled to 32x32, as the
    # 8x8 digits fill their frame; normalised as the source was.
    images = read_idx(mnist_raw / "t10k-images-idx3-ubyte.gz")[:, None, 4:24, 4:24]
    labels = read_idx(mnist_raw / "t10k-labels-idx1-ubyte.gz").long()
    x = F.interpolate(images.float() / 255, size=(32, 32), mode="bilinear", align_corners=False)
    x = (x - Digits.mean[0]) / Digits.std[0]
    train = DataLoader(TensorDataset(x[:256], labels[:256]), batch_size=32, shuffle=True)
    test = DataLoader(TensorDataset(x[8000:], labels[8000:]), batch_size=500)

    def accuracy_after_8_steps(model: LeNet5) -> float:
        L.seed_everything(0, verbose=False)
        trainer = _trainer(max_steps=8, max_epochs=-1)
        trainer.fit(model, train)
        return float(trainer.test(model, test, verbose=False)[0]["test_acc"])

    scratch = accuracy_after_8_steps(LeNet5(arch="lenet5_modern", optimizer="adamw", lr=3e-3))
    tuned = accuracy_after_8_steps(LeNet5.load_from_checkpoint(tmp_path / "digits.ckpt"))
    # Measured: about 0.25 from scratch and 0.59 fine-tuned (seeds 0-2: margins 0.27-0.45).
    assert tuned > scratch + 0.15, (tuned, scratch)


# -- the README's Fine-tune section ----------------------------------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"
# The fences the section may use: "python" blocks run, "console" lines run through the CLI,
# and "python no-run" is a python block after `<!-- no-run -->` (invisible on GitHub and the
# site, where a fence's extra words would break the block), the one snippet that needs a
# download (ImageNet weights).
FENCES = {"python", "python no-run", "console"}


def _fine_tune_blocks() -> list[tuple[str, str]]:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Fine-tune\n")
    end = text.find("\n## ", start + 1)
    section = text[start : None if end == -1 else end]
    found = re.findall(
        r"^(<!-- no-run -->\n)?```([^\n]*)\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL
    )
    return [(f"{info} no-run" if skip else info, code) for skip, info, code in found]


@pytest.mark.slow
def test_the_readme_fine_tune_example_runs_offline(tmp_path: Path, monkeypatch) -> None:
    from classic_cnns.cli import main

    blocks = _fine_tune_blocks()
    assert {info for info, _ in blocks} <= FENCES, [info for info, _ in blocks]
    skipped = [code for info, code in blocks if info == "python no-run"]
    assert len(skipped) == 1 and "pretrained=True" in skipped[0]  # only the download is skipped
    runnable = [code for info, code in blocks if info == "python"]
    assert runnable, "the Fine-tune section has no runnable example"
    code = "\n".join(runnable)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme_fine_tune"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(code, str(README), "exec"), namespace)  # our own README

    # What the example's comments say happened.
    not_loaded = [w for w in caught if "not loaded from" in str(w.message)]
    assert len(not_loaded) == 1
    assert "net.fc.weight" in str(not_loaded[0].message) and "c5" not in str(not_loaded[0].message)
    assert not_loaded[0].filename == str(README)  # the example's line, not the package's
    model, data = namespace["model"], namespace["data"]
    assert model.num_classes == 2 and model.net.fc.out_features == 2
    # It learns: the digits' model was trained (at chance, a fine-tune had little to start
    # from), and the balanced even/odd test set is classified well above chance.
    assert namespace["trainer"].callback_metrics["test_acc"] > 0.8
    assert model.hparams.backbone_lr == pytest.approx(model.hparams.lr / 10)
    assert not model.backbone_frozen  # unfrozen after the first epoch
    assert data.dims == (1, 32, 32) and (data.mean, data.std) == (Digits.mean, Digits.std)
    x = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(namespace["same"].eval()(x), model.eval()(x))
    odd = sorted(p.name for p in (tmp_path / "my_images" / "odd").iterdir())
    with open("predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == odd and rows == [
        {k: str(v) for k, v in r.items()} for r in namespace["rows"]
    ]
    assert {r["class"] for r in rows} <= {"even", "odd"}
    assert Path("even_odd.onnx").is_file() and Path("even_odd.safetensors").is_file()

    # The command-line equivalents.
    commands = [
        line.removeprefix("$ classic-cnns ")
        for info, block in blocks
        if info == "console"
        for line in block.splitlines()
        if line.startswith("$ ")
    ]
    assert len(commands) == 2
    for command in commands:
        assert main(shlex.split(command)) == 0, command
    assert Path("even_odd.pt2").is_file()


def test_the_functions_refuse_what_is_not_a_network() -> None:
    # They used to fail with "'int' object has no attribute 'named_modules'".
    from classic_cnns import finetune

    for name in ("freeze_backbone", "unfreeze_backbone", "head_names", "head_parameters",
                 "backbone_parameters"):  # fmt: skip
        with pytest.raises(TypeError, match=rf"^{name} expected a network \(an nn.Module"):
            getattr(finetune, name)(5)
    with pytest.raises(TypeError, match=r"^reset_head expected a network .*; got dict$"):
        reset_head({}, 3)  # type: ignore[arg-type]
    # Any module is one: a model's freeze_backbone() hands its network over.
    model = LeNet5()
    model.freeze_backbone()
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "net.fc.weight",
        "net.fc.bias",
    ]
