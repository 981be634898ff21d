"""The checkpoint a command line runs from: what a ``--ckpt_path`` file may make the command
line do (never import a module it names) and which file ``--ckpt_path last`` is."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

import classic_cnns
from classic_cnns._cli_ckpt import checkpoint_model, configured_last_checkpoint
from classic_cnns.cli import main

# A module a hostile checkpoint could name beside it: importing it runs its code.
PAYLOAD = """
import pathlib
pathlib.Path("imported.marker").write_text("the checkpoint ran this module")


class LeNet5:
    pass
"""


class MyClassifier(classic_cnns.LeNet5):
    """A user's own ImageClassifier, imported (with this module) before the checkpoint is read."""


def _checkpoint(path: Path, model: L.LightningModule, class_path: str | None) -> Path:
    trainer = L.Trainer(logger=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    if class_path is not None:  # as LightningCLI records the class it built
        saved = torch.load(path, weights_only=True)
        saved["hyper_parameters"]["_class_path"] = class_path
        saved["hyper_parameters"]["_instantiator"] = "lightning.pytorch.cli.instantiate_module"
        torch.save(saved, path)
    return path


@pytest.mark.usefixtures("one_thread")
def test_a_class_a_checkpoint_names_is_never_imported(tmp_path: Path) -> None:
    # torch.load(weights_only=True) runs no code; the class path in the hyperparameters must
    # not either: "payload.LeNet5" (a module beside the checkpoint, on the import path of
    # `python -m` run there) and "this.Zen" (a module of the standard library).
    (tmp_path / "payload.py").write_text(PAYLOAD)
    for name, class_path in (("payload", "payload.LeNet5"), ("this", "this.Zen")):
        _checkpoint(tmp_path / f"{name}.ckpt", classic_cnns.LeNet5(), class_path)
    runs = [
        ["test", "--data", "Digits", "--ckpt_path", f"{name}.ckpt",
         "--trainer.limit_test_batches=1", "--trainer.enable_progress_bar=false"]
        for name in ("payload", "this")
    ]  # fmt: skip
    script = (
        "import sys\nfrom classic_cnns.cli import main\n"
        f"codes = [main(args) for args in {runs!r}]\n"
        "print('exit codes', codes, 'imported', 'payload' in sys.modules, 'this' in sys.modules)"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run(
        [sys.executable, "-c", script],  # the current folder first on sys.path, as python -m
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert "exit codes [0, 0] imported False False" in result.stdout, result.stderr[-3000:]
    assert not (tmp_path / "imported.marker").exists()
    assert "The Zen of Python" not in result.stdout
    for class_path in ("payload.LeNet5", "this.Zen"):  # rebuilt from the arch, with a warning
        assert f"the checkpoint names the class {class_path!r}, which is not an" in result.stderr


def test_a_checkpoint_of_an_imported_class_rebuilds_that_class(tmp_path: Path) -> None:
    resnet = classic_cnns.create_model("resnet20", num_classes=10, in_channels=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the classes the command line records: no warning
        for class_path in ("classic_cnns.ResNet", "classic_cnns.models.ResNet"):
            model = checkpoint_model(str(_checkpoint(tmp_path / "r.ckpt", resnet, class_path)))
            assert model is not None and model["class_path"] == class_path
            assert model["dict_kwargs"]["arch"] == "resnet20"
            assert "_class_path" not in model["dict_kwargs"]
        mine = f"{MyClassifier.__module__}.{MyClassifier.__qualname__}"
        model = checkpoint_model(str(_checkpoint(tmp_path / "m.ckpt", MyClassifier(), mine)))
        assert model is not None and model["class_path"] == mine
    # A class that is not an ImageClassifier, imported or not, gives way to the arch's family.
    for class_path in ("lightning.pytorch.demos.boring_classes.BoringModel", "os.system"):
        with pytest.warns(UserWarning, match=f"names the class {class_path!r}"):
            model = checkpoint_model(str(_checkpoint(tmp_path / "b.ckpt", resnet, class_path)))
        assert model is not None and model["class_path"] == "classic_cnns.models.ResNet"


@pytest.mark.usefixtures("one_thread")
def test_print_config_with_a_checkpoint_prints_its_model_and_runs_again_with_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # It printed the default LeNet5, which -c then found contradicting the checkpoint's.
    monkeypatch.chdir(tmp_path)
    base = ["fit", "--data", "Digits", "--model.scheduler", "none",
            "--trainer.enable_progress_bar=false", "--trainer.limit_train_batches=1",
            "--trainer.limit_val_batches=1", "--trainer.limit_test_batches=1"]  # fmt: skip
    assert main([*base, "--model", "resnet20", "--trainer.max_epochs=1"]) == 0
    ckpt = "lightning_logs/version_0/checkpoints/last.ckpt"
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(
            [*base[:1], "--ckpt_path", ckpt, *base[1:], "--trainer.max_epochs=2", "--print_config"]
        )
    printed = capsys.readouterr().out
    model = yaml.safe_load(printed)["model"]
    assert (model["class_path"], model["init_args"]["arch"]) == ("classic_cnns.ResNet", "resnet20")
    Path("again.yaml").write_text(printed)
    assert main(["fit", "-c", "again.yaml"]) == 0
    resumed = torch.load("lightning_logs/version_1/checkpoints/last.ckpt", weights_only=True)
    assert (resumed["epoch"], resumed["hyper_parameters"]["arch"]) == (1, "resnet20")


@pytest.mark.usefixtures("one_thread")
def test_a_monitoring_checkpoint_of_one_s_own_still_saves_last_for_a_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --trainer.callbacks+=ModelCheckpoint replaced the default one: no last.ckpt, and
    # --ckpt_path last then started afresh. An explicit save_last=false is kept.
    monkeypatch.chdir(tmp_path)
    base = ["fit", "--model", "LeNet5", "--data", "Digits", "--model.scheduler", "none",
            "--trainer.enable_progress_bar=false",
            "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1",
            "--trainer.limit_test_batches=1", "--trainer.callbacks+=ModelCheckpoint",
            "--trainer.callbacks.monitor=val_loss"]  # fmt: skip
    assert main([*base, "--trainer.max_epochs=1"]) == 0
    saved = Path("lightning_logs/version_0/checkpoints")
    assert sorted(p.name for p in saved.iterdir()) == ["epoch=0-step=2.ckpt", "last.ckpt"]
    assert main([*base, "--trainer.max_epochs=2", "--ckpt_path=last"]) == 0
    resumed = torch.load("lightning_logs/version_1/checkpoints/last.ckpt", weights_only=True)
    assert (resumed["epoch"], resumed["global_step"]) == (1, 4)  # one more epoch, not two
    assert main([*base, "--trainer.max_epochs=1", "--trainer.callbacks.save_last=false"]) == 0
    assert not Path("lightning_logs/version_2/checkpoints/last.ckpt").exists()


@pytest.mark.usefixtures("one_thread")
def test_fit_with_ckpt_path_last_and_no_earlier_run_says_so_and_starts_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lightning's own warning blamed the callback ("Set ModelCheckpoint(..., save_last=True)"),
    # which the CLI sets: the cause is that there was no earlier run.
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--model", "LeNet5", "--data", "Digits", "--trainer.max_epochs=1",
            "--trainer.enable_progress_bar=false", "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=1", "--trainer.limit_test_batches=1",
            "--ckpt_path=last"]  # fmt: skip
    code = "from classic_cnns.cli import main; raise SystemExit(main())"
    run = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    said = "--ckpt_path last: no earlier run left a last.ckpt; training from the start"
    assert said in run.stderr and "save_last=True" not in run.stderr, run.stderr
    saved = torch.load("lightning_logs/version_0/checkpoints/last.ckpt", weights_only=True)
    assert saved["global_step"] == 2
    # config.yaml keeps "last": run again with it, it resumes this run.
    assert (
        yaml.safe_load(Path("lightning_logs/version_0/config.yaml").read_text())["ckpt_path"]
        == "last"
    )


@pytest.mark.usefixtures("one_thread")
def test_ckpt_path_last_resumes_the_real_run_not_a_smoke_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fast_dev_run saves nothing (Lightning's ModelCheckpoint(save_last=True) still wrote
    # <root>/checkpoints/last.ckpt at the end of training, which "last" then resumed from).
    monkeypatch.chdir(tmp_path)
    base = ["fit", "--model", "LeNet5", "--data", "Digits", "--model.scheduler", "none",
            "--trainer.enable_progress_bar=false", "--trainer.limit_val_batches=1",
            "--trainer.limit_test_batches=1"]  # fmt: skip
    steps = ["--trainer.limit_train_batches=2"]
    assert main([*base, *steps, "--trainer.max_epochs=2"]) == 0
    real = Path("lightning_logs/version_0/checkpoints/last.ckpt")
    for smoke_test in ("true", "2"):  # True, or a number of batches
        assert main([*base, f"--trainer.fast_dev_run={smoke_test}"]) == 0
    assert sorted(p.as_posix() for p in Path().rglob("*.ckpt")) == [
        "lightning_logs/version_0/checkpoints/epoch=1-step=4.ckpt",
        real.as_posix(),
    ]
    # A run with a logger resumes from the logger's runs: a last.ckpt of a run without one
    # (or of an earlier version's smoke test), newer, is another configuration's.
    other = Path("checkpoints/last.ckpt")
    other.parent.mkdir()
    other.write_bytes(real.read_bytes())
    assert main([*base, *steps, "--trainer.max_epochs=3", "--ckpt_path=last"]) == 0
    config = yaml.safe_load(Path("lightning_logs/version_1/config.yaml").read_text())
    assert Path(config["ckpt_path"]) == real
    resumed = torch.load("lightning_logs/version_1/checkpoints/last.ckpt", weights_only=True)
    assert (resumed["epoch"], resumed["global_step"]) == (2, 6)  # one more epoch of 2 steps
    # Without a logger, runs save to <root>/checkpoints: that is where "last" looks then.
    assert configured_last_checkpoint({"logger": False}) == other
    assert configured_last_checkpoint({"logger": None}) == Path(
        "lightning_logs/version_1/checkpoints/last.ckpt"
    )


def _data_warnings(*args: str) -> list[str]:
    # The run's warnings that a --ckpt_path restored the model but not its data.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(list(args)) == 0
    return [str(w.message) for w in caught if "restores the model, not the data" in str(w.message)]


@pytest.mark.usefixtures("one_thread")
def test_a_checkpoint_run_on_other_data_than_it_was_trained_on_says_so(
    mnist_raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `test --ckpt_path last` after an MNIST run tested on the default Digits (test_acc 0.16)
    # without a word: the checkpoint restores the model, not the data, whose preprocessing
    # (mean 0.3053, resized) is not what the model was trained on (mean 0.1307, padded).
    monkeypatch.chdir(tmp_path)
    data_dir = str(mnist_raw.parent.parent)
    mnist = ["--data", "MNIST", "--data.data_dir", data_dir, "--data.download", "false",
             "--data.protocol", "10k", "--data.val_size", "0"]  # fmt: skip
    quiet = ["--trainer.enable_progress_bar=false", "--trainer.limit_test_batches=1"]
    fit = ["fit", "--model", "LeNet5", "--model.scheduler", "none", *quiet,
           "--trainer.limit_train_batches=2"]  # fmt: skip
    assert not _data_warnings(*fit, *mnist, "--trainer.max_epochs=1")
    ckpt = "lightning_logs/version_0/checkpoints/last.ckpt"
    (warned,) = _data_warnings("test", "--ckpt_path", ckpt, *quiet)  # once
    assert warned.startswith(f"{ckpt}: the model was trained on images prepared with ")
    assert "mean=[0.1307], std=[0.3081], resize='pad'; the datamodule Digits prepares " in warned
    assert "them with mean=[0.3053], std=[0.3759], resize='resize'" in warned
    assert "give the training run's --data flags again, or -c its config.yaml" in warned
    # The training run's data again: testing, predicting and resuming say nothing.
    assert not _data_warnings("test", "--ckpt_path", ckpt, *mnist, *quiet)
    predict = ["--trainer.limit_predict_batches=1", "--trainer.enable_progress_bar=false"]
    assert not _data_warnings("predict", "--ckpt_path", ckpt, *mnist, *predict)
    assert not _data_warnings(*fit, *mnist, "--trainer.max_epochs=2", "--ckpt_path", ckpt)
    # A fit resumed on another datamodule is not refused (its split is another data's): warned.
    (warned,) = _data_warnings(*fit, "--trainer.max_epochs=2", "--ckpt_path", ckpt)
    assert "the datamodule Digits prepares them with mean=[0.3053]" in warned
