"""What only a GPU shows: mixed precision, channels_last, compile, device moves, sync-free steps.

Every test here is marked ``gpu`` and skips without CUDA (``pytest -m gpu`` runs just these
on a GPU machine). The rest of the suite pins itself to the CPU (``conftest.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from classic_cnns import Digits, FashionMNIST, LeNet5, ResNet
from classic_cnns.files import load_checkpoint

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def _trainer(**kw: Any) -> L.Trainer:
    return L.Trainer(
        **{
            "accelerator": "gpu",
            "devices": 1,
            "max_epochs": 1,
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            **kw,
        }
    )


@contextlib.contextmanager
def _no_tf32() -> Iterator[None]:
    # cuDNN runs fp32 convolutions in TF32 by default (10-bit mantissa): not the CPU's math.
    previous = torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = previous[0]
        torch.set_float32_matmul_precision(previous[1])


def _loader(n: int = 256, size: int = 32, channels: int = 1) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, channels, size, size, generator=g)
    return DataLoader(TensorDataset(x, torch.randint(0, 10, (n,), generator=g)), batch_size=64)


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_steps_train_and_stay_finite(precision: str) -> None:
    model = ResNet("resnet20", num_classes=10, in_channels=1)
    trainer = _trainer(precision=precision, max_epochs=2)
    trainer.fit(model, _loader())
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert model.net.fc.weight.dtype == torch.float32  # the weights stay fp32


def test_channels_last_on_the_gpu_gives_the_contiguous_outputs() -> None:
    torch.manual_seed(0)
    plain = ResNet("resnet20", num_classes=10, in_channels=3).cuda().eval()
    fast = ResNet("resnet20", num_classes=10, in_channels=3, channels_last=True).cuda().eval()
    fast.load_state_dict(plain.state_dict())
    fast.setup("fit")
    assert fast.net.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(8, 3, 32, 32, device="cuda")
    with torch.no_grad(), _no_tf32():  # TF32 rounding alone comes near the tolerance
        torch.testing.assert_close(fast(x), plain(x), rtol=1e-3, atol=1e-3)


def test_a_compiled_model_trains_on_the_gpu() -> None:
    from torch._dynamo.utils import counters

    counters.clear()
    model = LeNet5(arch="lenet5_bn", compile=True, channels_last=True)
    trainer = _trainer(max_epochs=2)
    trainer.fit(model, _loader())
    assert model.net._compiled_call_impl is not None
    assert counters["stats"]["unique_graphs"] >= 1  # the compiled graph ran
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_checkpoint_moves_between_gpu_and_cpu(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = LeNet5(scheduler="none")  # a constant lr: the resumed run may be longer

    class SaveOnTheGpu(L.Callback):  # after fit, Lightning's teardown moves the model to the CPU
        def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
            assert module.device.type == "cuda"
            trainer.save_checkpoint(tmp_path / "gpu.ckpt")

    _trainer(callbacks=[SaveOnTheGpu()]).fit(model, _loader())
    x = torch.randn(4, 1, 32, 32)
    on_cpu = LeNet5.load_from_checkpoint(tmp_path / "gpu.ckpt", map_location="cpu").eval()
    assert next(on_cpu.parameters()).device.type == "cpu"
    with torch.no_grad(), _no_tf32():
        expected = model.eval().cuda()(x.cuda()).cpu()
        torch.testing.assert_close(on_cpu(x), expected, rtol=1e-4, atol=1e-5)
    # Without map_location, a GPU checkpoint goes back to the GPU.
    assert next(LeNet5.load_from_checkpoint(tmp_path / "gpu.ckpt").parameters()).is_cuda
    # And back: a CPU checkpoint resumes training on the GPU.
    cpu_trainer = L.Trainer(
        accelerator="cpu", max_epochs=1, logger=False, enable_progress_bar=False,
        default_root_dir=tmp_path,
    )  # fmt: skip
    cpu_trainer.fit(LeNet5(scheduler="none"), _loader())
    cpu_trainer.save_checkpoint(tmp_path / "cpu.ckpt")
    assert load_checkpoint(tmp_path / "cpu.ckpt")["epoch"] == 1  # one epoch finished
    resumed = _trainer(max_epochs=2)
    resumed.fit(LeNet5(scheduler="none"), _loader(), ckpt_path=tmp_path / "cpu.ckpt")
    assert resumed.global_step == 8  # 4 steps of each epoch


def test_the_training_step_never_waits_for_the_device() -> None:
    # With the data on the device, a step that does not log has no synchronisation at all,
    # from its start to the next step's (Lightning's work after the step, which turns the
    # progress bar's values into numbers, included): torch raises at the first one in "error"
    # mode. Steps 4, 8 and 12 log, and read the device.
    model = LeNet5(arch="lenet5_modern", scheduler="none", optimizer="sgd", lr=0.01)
    dm = Digits(image_size=32, data_on_device=True, val_size=0)
    trainer = _trainer(max_steps=12, log_every_n_steps=4, enable_progress_bar=True)
    steps: list[int] = []

    class SyncsAreErrors(L.Callback):
        def on_train_batch_start(self, *args: Any) -> None:
            # after the first steps (allocations, cuDNN setup); logging steps may read
            logs = (trainer.global_step + 1) % 4 == 0
            torch.cuda.set_sync_debug_mode(
                "default" if logs or trainer.global_step < 2 else "error"
            )
            steps.append(trainer.global_step)

        def on_train_epoch_end(self, *args: Any) -> None:
            torch.cuda.set_sync_debug_mode("default")

    trainer.callbacks.append(SyncsAreErrors())
    try:
        trainer.fit(model, datamodule=dm)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert steps[-1] == 11 and trainer.global_step == 12


def test_mixup_cutmix_and_their_soft_label_step_never_wait_for_the_device() -> None:
    # The datamodule's MixUp/CutMix and a training step on its soft labels, called as the
    # fit loop calls them, with every synchronisation an error (after a warm-up batch).
    torch.manual_seed(0)
    model = LeNet5(arch="lenet5_modern", scheduler="none").cuda()
    dm = Digits(image_size=32, mixup_alpha=0.2, cutmix_alpha=1.0)
    trainer = _trainer(log_every_n_steps=50)
    trainer.strategy.connect(model)
    dm.trainer = trainer
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    batch = (x.cuda(), y.cuda())
    trainer.training = True
    model.training_step(dm.on_after_batch_transfer(batch, 0), 0)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for i in range(8):  # both MixUp and CutMix, unless all eight draws agree (1 in 128)
            images, soft = dm.on_after_batch_transfer(batch, 0)
            loss = model.training_step((images, soft), i)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert soft.is_cuda and soft.shape == (x.shape[0], 10) and torch.isfinite(loss)


@pytest.mark.parametrize("stage", ["validation", "test"])
def test_evaluation_steps_never_wait_for_the_device(stage: str) -> None:
    # Macro F1 counts its confusion matrix without torch.bincount, which on CUDA reads the
    # labels' range back to the host at every update.
    model = LeNet5(arch="lenet5_modern")
    dm = Digits(image_size=32, batch_size=16, data_on_device=True, val_size=0.2)
    trainer = _trainer()
    batches: list[int] = []

    def start(*args: Any) -> None:
        if batches:  # after the first batch (allocations, cuDNN setup)
            torch.cuda.set_sync_debug_mode("error")

    def end(*args: Any) -> None:
        torch.cuda.set_sync_debug_mode("default")
        batches.append(1)

    class SyncsAreErrors(L.Callback):
        on_validation_batch_start = on_test_batch_start = start
        on_validation_batch_end = on_test_batch_end = end

    trainer.callbacks.append(SyncsAreErrors())
    try:
        (trainer.validate if stage == "validation" else trainer.test)(model, datamodule=dm)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(batches) > 5


def test_the_data_moves_to_the_gpu_once(fashion_raw: Path) -> None:
    dm = FashionMNIST(str(fashion_raw.parents[1]), download=False, val_size=0)
    trainer = _trainer(max_steps=3)
    trainer.fit(ResNet("resnet20", num_classes=10, in_channels=1), datamodule=dm)
    assert dm._splits["train"][0].device.type == "cuda"
    images, labels = next(iter(dm.train_dataloader()))
    assert images.is_cuda and labels.is_cuda and images.dtype == torch.uint8


def test_a_one_gpu_fit_learns_the_digits() -> None:
    L.seed_everything(0, verbose=False)
    model = LeNet5()
    dm = Digits(image_size=32)
    trainer = _trainer(max_epochs=12)
    trainer.fit(model, datamodule=dm)
    assert trainer.test(model, datamodule=dm, verbose=False)[0]["test_acc"] > 0.9
