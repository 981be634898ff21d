"""Whole command-line runs in a fresh process, as a user starts them: a quiet run that leaves
its checkpoints and plots, and Ctrl-C then ``--ckpt_path last``."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from classic_cnns.cli import main
from classic_cnns.hub import load_model
from conftest import write_png

STEPS_PER_EPOCH = 11  # 1,294 Digits training images in batches of 128 (LeNet-5's recipe)
# A fit of two steps an epoch on Digits, validated on one batch.
TINY_FIT = ["fit", "--model", "lenet5", "--data", "Digits", "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false"]  # fmt: skip

CTRL_C = '''
import signal

import lightning as L


class CtrlC(L.Callback):
    """Press Ctrl-C (SIGINT to this process) when epoch ``at`` starts.

    ``raise_signal`` runs the process's SIGINT handler, as a real Ctrl-C does, on Windows
    too, where ``os.kill(pid, SIGINT)`` would end the process (TerminateProcess) instead.
    """

    def __init__(self, at: int = 2) -> None:
        self.at = at

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.at:
            signal.raise_signal(signal.SIGINT)
'''

FAIL_LATE = '''
import lightning as L


class FailLate(L.Callback):
    """Fail at the end of the validation epoch, after its batches."""

    def on_validation_epoch_end(self, trainer, pl_module):
        raise RuntimeError("failed after the batches")
'''


def _run(cwd: Path, *args: str, command: str = "fit") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # This process's import path (the source tree first) plus the folder with CtrlC.
    env["PYTHONPATH"] = os.pathsep.join([str(cwd), *sys.path])
    return subprocess.run(
        [sys.executable, "-m", "classic_cnns", command, "--trainer.enable_progress_bar=false",
         *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_a_run_is_quiet_and_leaves_checkpoints_and_plots(tmp_path: Path) -> None:
    result = _run(tmp_path, "--trainer.max_epochs=1")
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    for noise in ("Tip:", "LeafSpec", "log_every_n_steps", "override existing callbacks",
                  "Warning", "warn("):  # fmt: skip
        assert noise not in output, noise
    assert "test_acc" in result.stdout
    run = tmp_path / "lightning_logs" / "version_0"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    for name in ("curves.png", "confusion_matrix.png", "confusion_matrix.csv", "config.yaml"):
        assert (run / name).is_file(), name
    # The thread count the run used is recorded, so that --config repeats it.
    assert re.search(r"^threads: [1-9][0-9]*$", (run / "config.yaml").read_text(), re.M)


def _epochs_trained(metrics: Path) -> list[int]:
    with metrics.open() as f:
        return sorted({int(r["epoch"]) for r in csv.DictReader(f) if r.get("train_loss")})


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_ctrl_c_then_ckpt_path_last_finishes_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ctrl_c.py").write_text(CTRL_C)
    stopped = _run(tmp_path, "--trainer.max_epochs=4", "--trainer.callbacks+=ctrl_c.CtrlC")
    # Lightning shuts down and exits 1, any failure's status; the command says what stopped
    # it and exits 130, as the package's other commands on Ctrl-C.
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    said = "classic-cnns fit: stopped by Ctrl-C (resume it with --ckpt_path last)"
    assert "Detected KeyboardInterrupt" in stopped.stdout + stopped.stderr
    assert said in stopped.stderr and "test_acc" not in stopped.stdout
    first = tmp_path / "lightning_logs" / "version_0"
    saved = torch.load(first / "checkpoints" / "last.ckpt", weights_only=True)
    assert (saved["epoch"], saved["global_step"]) == (1, 2 * STEPS_PER_EPOCH)
    assert _epochs_trained(first / "metrics.csv") == [0, 1]

    # The same command with --ckpt_path last continues from there, in this process.
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--trainer.max_epochs=4", "--trainer.enable_progress_bar=false"]
    assert main([*args, "--ckpt_path", "last"]) == 0
    resumed = tmp_path / "lightning_logs" / "version_1"
    assert _epochs_trained(resumed / "metrics.csv") == [2, 3]
    # Its config.yaml names the file it resumed from, not "last", so --config repeats it.
    config = yaml.safe_load((resumed / "config.yaml").read_text())
    assert Path(config["ckpt_path"]).resolve() == (first / "checkpoints" / "last.ckpt").resolve()
    final = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)
    assert (final["epoch"], final["global_step"]) == (3, 4 * STEPS_PER_EPOCH)
    # The curves cover the whole run: the history came back with the checkpoint.
    history = final["callbacks"]["TrainingPlots"]["history"]
    assert [h["epoch"] for h in history] == [0.0, 1.0, 2.0, 3.0]
    assert (resumed / "curves.png").is_file()


KILL = """
import os
import signal

import lightning as L


class Kill(L.Callback):  # a kill, or a job scheduler's, at the third step or batch
    def on_train_batch_start(self, trainer, *args):
        if trainer.global_step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *args):
        if batch_idx == 1:
            os.kill(os.getpid(), signal.SIGTERM)


class KillAtEnd(L.Callback):  # after the last batch, where Lightning no longer looks
    def on_train_end(self, trainer, pl_module):
        os.kill(os.getpid(), signal.SIGTERM)

"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is not a signal a process catches")
def test_a_run_stopped_by_sigterm_exits_143_and_says_so(tmp_path: Path) -> None:
    # Lightning ends a run on SIGTERM with SystemExit(): status 0, as if it had finished,
    # so that `fit && export last.ckpt` went on with a half-trained model.
    (tmp_path / "kill.py").write_text(KILL)
    stopped = _run(tmp_path, "--trainer.max_epochs=2", "--trainer.callbacks+=kill.Kill")
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    said = "classic-cnns fit: stopped by SIGTERM (resume it with --ckpt_path last)"
    assert said in stopped.stderr and "test_acc" not in stopped.stdout
    # At training's end: the test after it ran, and the command exited 0.
    stopped = _run(tmp_path, "--trainer.max_steps=1", "--trainer.callbacks+=kill.KillAtEnd")
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert said in stopped.stderr and "test_acc" not in stopped.stdout
    # predict too: Lightning's predict loop does not look, and wrote every batch's rows.
    done = _run(tmp_path, "--trainer.max_steps=1", "--trainer.limit_val_batches=1",
                "--trainer.limit_test_batches=1")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    stopped = _run(tmp_path, "--ckpt_path=last", "--trainer.callbacks+=kill.Kill",
                   "--data.batch_size=16", command="predict")  # fmt: skip
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert "classic-cnns predict: stopped by SIGTERM\n" in stopped.stderr
    assert not [p.name for p in tmp_path.rglob("*predictions*")]  # nor a temporary file
    # In Python too: SIGTERMException() alone is SystemExit(None), a status of 0.
    ckpt = str(next(tmp_path.rglob("last.ckpt")))
    script = (
        "import os, signal, lightning as L\n"
        "from classic_cnns import Digits, load_model\n"
        "from classic_cnns.predict import PredictionCSV\n"
        "from kill import Kill\n"
        "trainer = L.Trainer(callbacks=[PredictionCSV('p.csv'), Kill()], logger=False)\n"
        f"trainer.predict(load_model({ckpt!r}), datamodule=Digits(batch_size=16))\n"
    )
    plain = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    assert plain.returncode == 143, plain.stderr[-3000:]
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="a file-size limit is POSIX's (RLIMIT_FSIZE)")
def test_a_prediction_csv_the_disk_cannot_hold_is_named_once(tmp_path: Path) -> None:
    # predict said "[Errno 27] File too large" (the flush's error, under atomic_path's), and
    # predict-folder "cannot write p.csv: cannot write p.csv: File too large".
    import resource

    done = _run(tmp_path, "--trainer.max_steps=1", "--trainer.limit_val_batches=1",
                "--trainer.limit_test_batches=1")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    ckpt = next(tmp_path.rglob("last.ckpt"))
    (tmp_path / "imgs").mkdir()
    for i in range(300):
        write_png(
            torch.full((1, 8, 8), i % 256, dtype=torch.uint8), str(tmp_path / "imgs" / f"{i}.png")
        )

    def small_files() -> None:  # in the child: a write past 6,000 bytes fails (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (6000, 6000))

    for command, written in (
        (
            ["predict", "--ckpt_path", str(ckpt), "--trainer.logger=false"],
            tmp_path / "predictions.csv",
        ),
        (["predict-folder", str(ckpt), "imgs", "--output", "p.csv"], Path("p.csv")),
    ):
        run = subprocess.run(
            [sys.executable, "-m", "classic_cnns", *command], cwd=tmp_path, capture_output=True,
            text=True, timeout=300, preexec_fn=small_files,
        )  # fmt: skip
        assert run.returncode == 2, run.stderr[-3000:]
        said = f"[Errno 27] cannot write {written}: File too large\n"
        assert said in run.stderr and run.stderr.count("cannot write") == 1, run.stderr[-3000:]
        assert not list(tmp_path.glob(f"*{written.name}*"))


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is not a signal a process catches")
def test_a_command_stopped_by_sigterm_while_writing_a_file_says_so(tmp_path: Path) -> None:
    # The package's own writers turn SIGTERM into an exit that cleans up: with status 143 but
    # no word, where a Lightning run's said "stopped by SIGTERM".
    script = (
        "import os, signal, sys\n"
        "import lightning as L\n"
        "from classic_cnns import LeNet5\n"
        "from classic_cnns.cli import main\n"
        "trainer = L.Trainer(logger=False, enable_progress_bar=False)\n"
        "trainer.strategy.connect(LeNet5())\n"
        "trainer.save_checkpoint('m.ckpt')\n"
        "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGTERM)  # in the export's write\n"
        "sys.exit(main(['export', 'm.ckpt', '--format', 'safetensors']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 143, done.stderr[-3000:]
    assert done.stderr.endswith("classic-cnns export: stopped by SIGTERM\n"), done.stderr[-3000:]
    assert [p.name for p in tmp_path.iterdir()] == ["m.ckpt"]


def test_a_reader_that_closes_the_pipe_stops_the_output_quietly(tmp_path: Path) -> None:
    # As `classic-cnns list | head -1` once the reader has gone: no error message, status 1.
    run = subprocess.Popen(
        [sys.executable, "-m", "classic_cnns", "list"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert run.stdout is not None and run.stderr is not None
    run.stdout.close()  # before the command (still importing) writes a line
    assert run.stderr.read() == b"" and run.wait(timeout=300) == 1


@pytest.mark.usefixtures("one_thread")
def test_resuming_without_the_run_s_optimizer_flags_says_to_give_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    args = TINY_FIT
    adam = ["--optimizer", "Adam", "--optimizer.lr", "0.001"]
    assert main([*args, "--trainer.max_epochs=1", *adam]) == 0
    capsys.readouterr()
    # The records name the optimizer that trained, beside the model's own settings.
    run = Path("lightning_logs/version_0")
    logged = yaml.safe_load((run / "hparams.yaml").read_text())
    saved = torch.load(run / "checkpoints/last.ckpt", weights_only=True)["hyper_parameters"]
    for hparams in (logged, saved):
        assert hparams["cli_optimizer"]["class_path"] == "torch.optim.Adam"
        assert hparams["cli_optimizer"]["init_args"]["lr"] == 0.001
        assert hparams["cli_optimizer"]["init_args"]["betas"] == [0.9, 0.999]
        assert (hparams["optimizer"], "cli_lr_scheduler" in hparams) == ("sgd", False)
    # A test run's records say how the weights trained, whatever --optimizer it is given.
    test = ["test", "--data", "Digits", "--ckpt_path", str(run / "checkpoints/last.ckpt")]
    assert main([*test, "--optimizer", "SGD", "--optimizer.lr", "0.3"]) == 0
    out, err = capsys.readouterr()
    assert "test_acc" in out and "replaces the model's optimizer" not in err  # nothing trains
    tested = yaml.safe_load(_newest_run().joinpath("hparams.yaml").read_text())
    assert tested["cli_optimizer"] == logged["cli_optimizer"]
    assert load_model(run / "checkpoints/last.ckpt").hparams.cli_optimizer == saved["cli_optimizer"]
    assert main([*args, "--trainer.max_epochs=2", "--ckpt_path", "last"]) == 2
    err = capsys.readouterr().err
    assert "the checkpoint's optimizer is not this run's" in err, err
    assert "--optimizer and --lr_scheduler flags" in err
    # Another class with as many groups: torch's SGD had a KeyError('momentum') traceback.
    sgd = ["--optimizer", "SGD", "--optimizer.lr", "0.1", "--trainer.max_epochs=2"]
    assert main([*args, *sgd, "--ckpt_path", "last"]) == 2
    assert (
        "error: the checkpoint's optimizer is not this run's SGD: its parameter groups lack "
        "['dampening', 'momentum']. Resume with the checkpoint's optimizer"
    ) in capsys.readouterr().err
    assert main([*args, "--trainer.max_epochs=2", "--ckpt_path", "last", *adam]) == 0
    # The same class with other settings: the checkpoint's train (torch restores them), said.
    other = ["--optimizer", "Adam", "--optimizer.lr", "0.01", "--optimizer.weight_decay", "0.1"]
    kept = "group 0 lr 0.001 (this run's: 0.01), group 0 weight_decay 0.0 (this run's: 0.1)"
    with pytest.warns(UserWarning, match=re.escape(kept)):
        assert main([*args, "--trainer.max_epochs=3", "--ckpt_path", "last", *other]) == 0
    resumed = yaml.safe_load(_newest_run().joinpath("hparams.yaml").read_text())
    assert resumed["cli_optimizer"] == logged["cli_optimizer"]  # the settings that trained
    # And the other way: torch's Adam raised KeyError('step') on SGD's state, a traceback.
    elsewhere = ["--trainer.default_root_dir=sgd"]
    momentum = ["--optimizer", "SGD", "--optimizer.lr", "0.1", "--optimizer.momentum", "0.9"]
    assert main([*args, *elsewhere, *momentum, "--trainer.max_epochs=1"]) == 0
    capsys.readouterr()
    assert main([*args, *elsewhere, *adam, "--trainer.max_epochs=2", "--ckpt_path", "last"]) == 2
    assert (
        "error: the checkpoint's optimizer state does not load into this run's Adam (KeyError: "
        "'step'). Resume with the checkpoint's optimizer"
    ) in capsys.readouterr().err
    assert sorted(p.name for p in Path("sgd/lightning_logs").iterdir()) == ["version_0"]


def _newest_run(root: str = "lightning_logs") -> Path:
    return max(Path(root).iterdir(), key=lambda p: int(p.name.removeprefix("version_")))


@pytest.mark.usefixtures("one_thread")
def test_a_resume_records_the_lr_schedule_that_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Torch restores a schedule's settings with its state: another --lr_scheduler.step_size
    # on a resume did not run, yet was recorded, unsaid.
    monkeypatch.chdir(tmp_path)
    adam = [*TINY_FIT, "--optimizer", "Adam", "--lr_scheduler", "StepLR"]
    assert main([*adam, "--lr_scheduler.step_size", "1", "--trainer.max_epochs=1"]) == 0
    first = yaml.safe_load(_newest_run().joinpath("hparams.yaml").read_text())
    resume = [*adam, "--trainer.max_epochs=2", "--ckpt_path", "last"]
    kept = "step_size 1 (this run's: 5)"
    with pytest.warns(UserWarning, match=re.escape(kept)):
        assert main([*resume, "--lr_scheduler.step_size", "5"]) == 0
    checkpoint = torch.load(_newest_run() / "checkpoints/last.ckpt", weights_only=True)
    assert checkpoint["lr_schedulers"][0]["step_size"] == 1  # what ran
    resumed = yaml.safe_load(_newest_run().joinpath("hparams.yaml").read_text())
    for hparams in (resumed, checkpoint["hyper_parameters"]):
        assert hparams["cli_lr_scheduler"] == first["cli_lr_scheduler"]
    capsys.readouterr()
    other = [*TINY_FIT, "--optimizer", "Adam", "--lr_scheduler", "ExponentialLR"]
    other += ["--lr_scheduler.gamma", "0.5", "--trainer.max_epochs=3", "--ckpt_path", "last"]
    assert main(other) == 2
    assert (
        "error: the checkpoint's LR schedule is torch.optim.lr_scheduler.StepLR; this run's "
        "--lr_scheduler is torch.optim.lr_scheduler.ExponentialLR. Resume with the"
    ) in capsys.readouterr().err


@pytest.mark.usefixtures("one_thread")
def test_a_learning_rate_finder_s_rate_is_recorded_for_the_cli_optimizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lightning's finder sets its lr in every group of --optimizer's optimizer; the records
    # kept --optimizer.lr beside it.
    monkeypatch.chdir(tmp_path)
    finder = ["--trainer.callbacks", "LearningRateFinder", "--trainer.callbacks.num_training_steps",
              "20", "--trainer.callbacks.early_stop_threshold", "null"]  # fmt: skip
    sgd = ["--optimizer", "SGD", "--optimizer.lr", "0.05", "--trainer.max_epochs=3"]
    assert main([*TINY_FIT[:5], "--trainer.enable_progress_bar=false", *sgd, *finder]) == 0
    run = Path("lightning_logs/version_0")
    checkpoint = torch.load(run / "checkpoints/last.ckpt", weights_only=True)
    trained = checkpoint["optimizer_states"][0]["param_groups"][0]["lr"]
    logged = yaml.safe_load((run / "hparams.yaml").read_text())
    assert trained != 0.05
    for hparams in (logged, checkpoint["hyper_parameters"]):
        assert hparams["cli_optimizer"]["init_args"]["lr"] == hparams["lr"] == trained


@pytest.mark.usefixtures("one_thread")
def test_testing_a_grey_checkpoint_on_a_folder_names_the_channels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # ImageFolder decodes RGB unless told; the model the command line builds follows the data,
    # so a grey checkpoint's first convolution did not fit: "another architecture" it said.
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i in range(40):
        folder = tmp_path / "photos" / str(digits.target[i])
        folder.mkdir(parents=True, exist_ok=True)
        image = torch.tensor(digits.images[i] * 255 / 16).round().to(torch.uint8)[None]
        write_png(image, str(folder / f"{i}.png"))
    monkeypatch.chdir(tmp_path)
    quiet = ["--trainer.enable_progress_bar=false"]
    fit = ["fit", "--model", "lenet5", "--data", "Digits", "--trainer.max_epochs=1", *quiet]
    assert main([*fit, "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1"]) == 0
    capsys.readouterr()
    names = str([str(d) for d in range(10)])  # the folders of the digits' classes, all ten
    test = ["test", "--ckpt_path", "last", "--data", "ImageFolder", "--data.root", "photos",
            "--data.test_size", "1", "--data.classes", names, *quiet]  # fmt: skip
    assert main(test) == 2
    err = capsys.readouterr().err
    assert "takes images of 1 channel(s); the model was built for 3" in err, err
    assert "--data.channels 1" in err
    assert main([*test, "--data.channels", "1"]) == 0


@pytest.mark.usefixtures("one_thread")
def test_a_refused_run_leaves_no_run_folder_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A resume refused at its start (another run length) had left version_1 with only the
    # config.yaml and hparams.yaml it wrote; an earlier run's folder stays whole.
    monkeypatch.chdir(tmp_path)
    args = TINY_FIT
    assert main([*args, "--trainer.max_epochs=2"]) == 0
    first = sorted(p.name for p in (tmp_path / "lightning_logs" / "version_0").iterdir())
    assert main([*args, "--trainer.max_epochs=3", "--ckpt_path", "last"]) == 2
    assert "LR schedule was made for 4 steps; this run has 6" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "lightning_logs").iterdir()] == ["version_0"]
    assert sorted(p.name for p in (tmp_path / "lightning_logs" / "version_0").iterdir()) == first
    # A file there before the run (a version folder given again) is never the run's to remove.
    keep = tmp_path / "lightning_logs" / "keep"
    keep.mkdir()
    (keep / "hparams.yaml").write_text("note: my earlier run\n")
    logger = ["--trainer.logger", "CSVLogger", "--trainer.logger.save_dir", ".",
              "--trainer.logger.version", "keep", "--ckpt_path", "missing.ckpt"]  # fmt: skip
    assert main([*args, "--trainer.max_epochs=2", *logger]) == 2
    assert (keep / "hparams.yaml").read_text() == "note: my earlier run\n"
    # A run that fails after its batches did its work: its folder stays, to be looked at.
    (tmp_path / "fail_late.py").write_text(FAIL_LATE)
    monkeypatch.syspath_prepend(str(tmp_path))
    validate = ["validate", "--ckpt_path", "last", "--trainer.limit_val_batches=1",
                "--trainer.enable_progress_bar=false",
                "--trainer.callbacks+=fail_late.FailLate"]  # fmt: skip
    with pytest.raises(RuntimeError, match="failed after the batches"):
        main(validate)
    assert (tmp_path / "lightning_logs" / "version_1" / "config.yaml").is_file()
    assert (tmp_path / "lightning_logs" / "version_1" / "hparams.yaml").is_file()


def _digit_folder(root: Path, classes: range, channels: int = 1) -> None:
    # scikit-learn's 8x8 digits of these classes, one folder each (named by the digit), as
    # uint8 PNG files: grey, or RGB with the grey in every channel.
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i in range(200):
        if (label := int(digits.target[i])) in classes:
            (root / str(label)).mkdir(parents=True, exist_ok=True)
            image = torch.tensor(digits.images[i] * 255 / 16).round().to(torch.uint8)[None]
            write_png(image.expand(channels, -1, -1).contiguous(), root / str(label) / f"{i}.png")


@pytest.mark.usefixtures("one_thread")
def test_predicting_on_some_of_a_checkpoint_s_classes_keeps_its_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The data's class count built the model, so a checkpoint of 5 classes did not load for
    # a folder of 4 of them ("a checkpoint of another architecture or configuration", it
    # said). Predicting scores no labels: the checkpoint's head and class names are kept,
    # as --data.classes numbering the folders as the checkpoint does keeps them.
    _digit_folder(tmp_path / "five", range(5))
    _digit_folder(tmp_path / "four", range(1, 5))  # no "0": the others numbered 0 to 3
    monkeypatch.chdir(tmp_path)
    quiet = ["--trainer.enable_progress_bar=false"]
    grey = ["--data", "ImageFolder", "--data.channels", "1"]
    fit = ["fit", "--model", "lenet5", *grey, "--data.root", "five", "--trainer.max_epochs=1",
           "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1",
           "--trainer.limit_test_batches=1", *quiet]  # fmt: skip
    assert main(fit) == 0, capsys.readouterr().err
    ckpt = ["--ckpt_path", "lightning_logs/version_0/checkpoints/last.ckpt"]
    four = [*ckpt, *grey, "--data.root", "four", "--data.test_size", "1", *quiet]
    capsys.readouterr()
    assert main(["predict", *four]) == 0, capsys.readouterr().err
    assert "predictions: lightning_logs/version_1/predictions.csv (" in capsys.readouterr().out
    table = Path("lightning_logs/version_1/predictions.csv").read_text()
    rows = list(csv.DictReader(table.splitlines()))
    assert {r["label"] for r in rows} == {"1", "2", "3", "4"}  # named as the data names them
    assert all(r["class"] == r["class_index"] for r in rows)  # the checkpoint's 5: "0" to "4"
    numbered = "--data.classes=" + str([str(d) for d in range(5)])  # the checkpoint's order
    assert main(["predict", *four, numbered]) == 0, capsys.readouterr().err
    assert Path("lightning_logs/version_2/predictions.csv").read_text() == table
    # --weights starts from the same tensors, head included: the same table, where the 4
    # classes' head was refused ("the weights must fit the whole model").
    weights = ["--weights", ckpt[1], *grey, "--data.root", "four", "--data.test_size", "1"]
    assert main(["predict", *weights, *quiet]) == 0, capsys.readouterr().err
    assert Path("lightning_logs/version_3/predictions.csv").read_text() == table
    # test scores the labels: there the folders must be numbered as the checkpoint does.
    assert main(["test", *four]) == 2
    err = capsys.readouterr().err
    assert "the checkpoint was trained on the classes ['0', '1', '2', '3', '4']" in err
    assert "classes=['0', '1', '2', '3', '4'] (ImageFolder; --data.classes" in err


@pytest.mark.usefixtures("one_thread")
def test_predicting_with_the_last_checkpoint_of_another_logger_keeps_its_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A logger whose folder the configuration does not say finds "last" after the model is
    # built for the data's 4 classes: the checkpoint's 10-class head failed to load there.
    from test_cli import RUNS_LOGGER

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs_logger.py").write_text(RUNS_LOGGER)
    monkeypatch.syspath_prepend(str(tmp_path))
    logger = ["--trainer.logger=runs_logger.RunsLogger", "--trainer.enable_progress_bar=false"]
    fit = ["fit", "--trainer.max_steps=1", "--trainer.limit_val_batches=1",
           "--trainer.limit_test_batches=1", *logger]  # fmt: skip
    assert main(fit) == 0, capsys.readouterr().err
    _digit_folder(tmp_path / "four", range(1, 5))
    four = ["--data", "ImageFolder", "--data.channels", "1", "--data.root", "four"]
    predict = ["predict", "--ckpt_path=last", *logger, "--trainer.logger.version=b", *four]
    capsys.readouterr()
    assert main(predict) == 0, capsys.readouterr().err
    rows = list(csv.DictReader(Path("runs/b/predictions.csv").read_text().splitlines()))
    assert rows and {r["label"] for r in rows} <= {"1", "2", "3", "4"}
    assert all(0 <= int(r["class_index"]) < 10 for r in rows)
    assert {r["class"] for r in rows} <= {str(d) for d in range(10)}  # Digits' class names


@pytest.mark.usefixtures("one_thread")
def test_a_flag_for_the_model_s_channels_says_what_decides_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # --model.in_channels was refused with the advice for another head (num_classes). The
    # channels are the data's, and --weights adapts a first convolution of other channels:
    # what the message says is run here, on RGB images with a grey LeNet-5's weights.
    import lightning as L

    from classic_cnns import LeNet5

    monkeypatch.chdir(tmp_path)
    for flag in ("--model.in_channels", "--model.init_args.in_channels"):
        assert main(["fit", "--model", "lenet5", flag, "3"]) == 2
        err = capsys.readouterr().err
        assert f"{flag}: the model takes its in_channels from the datamodule" in err
        assert "--data.channels 3 (ImageFolder)" in err and "--weights FILE adapts" in err
        assert "num_classes" not in err
    _digit_folder(tmp_path / "rgb", range(10), channels=3)
    grey = LeNet5()  # 1 channel, 10 classes: the folder's classes
    trainer = L.Trainer(logger=False, enable_progress_bar=False)
    trainer.strategy.connect(grey)
    trainer.save_checkpoint("grey.ckpt")
    rgb = ["--weights", "grey.ckpt", "--data", "ImageFolder", "--data.root", "rgb",
           "--data.channels", "3", "--trainer.enable_progress_bar=false"]  # fmt: skip
    # test loads every tensor or nothing: the first convolution was adapted, not left fresh.
    assert main(["test", *rgb, "--data.test_size", "1", "--trainer.limit_test_batches=1"]) == 0
    fit = ["fit", *rgb, "--trainer.max_steps=1", "--trainer.limit_val_batches=1",
           "--trainer.limit_test_batches=1"]  # fmt: skip
    assert main(fit) == 0, capsys.readouterr().err
