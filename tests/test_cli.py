"""The classic-cnns console script, run as a user would run it."""

import glob
import importlib.util
import inspect
import json
import os
import re
import shlex
import subprocess
import sys
import typing
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import torchvision
import yaml

import classic_cnns
from classic_cnns import create_model, list_models, model_info
from classic_cnns._cli_helpers import data_class_names, expand_model_names, model_class_names
from classic_cnns.cli import ClassicCLI, default_threads, main, model_table
from classic_cnns.inspection import summary
from conftest import in_clone, logged_metrics, write_png

# A run of one training and one validation batch per epoch, without a progress bar.
ONE_BATCH = ["--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1",
             "--trainer.enable_progress_bar=false"]  # fmt: skip


def test_list_prints_every_model_with_its_parameter_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    header = ["name", "class", "year", "params", "input", "(C,H,W)", "min", "(H,W)", "recipe"]
    assert out[0].split() == header
    rows = {line.split()[0]: line.split(maxsplit=6) for line in out[1:]}
    assert list(rows) == list_models()  # in its order
    for name, row in rows.items():
        assert row[3] == f"{model_info(name).num_params:,}"
        assert row[6] == model_info(name).recipe.describe()  # the recipe each model trains with
    assert rows["lenet5"][:6] == ["lenet5", "LeNet5", "1998", "61,706", "1x32x32", "32x32"]


def test_list_with_a_pattern_and_without_a_match(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "lenet5_*"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == [
        "lenet5_bn",
        "lenet5_modern",
    ]
    assert main(["list", "vgg99*"]) == 1  # no match: 1, as grep
    assert (
        capsys.readouterr().err
        == "classic-cnns list: error: no registered model matches 'vgg99*'\n"
    )


def test_no_or_unknown_command_says_what_is_expected(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert (
        "expected a command (list, summary, export, predict-folder, bench, data, fit, validate, "
        "test, predict); got nothing" in capsys.readouterr().err
    )
    assert main(["train"]) == 2
    assert "got 'train'" in capsys.readouterr().err


def test_version_prints_the_package_and_the_libraries_it_runs_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for flag in ("--version", "-V"):
        assert main([flag]) == 0, flag
        assert capsys.readouterr().out == (
            f"classic-cnns {classic_cnns.__version__}\ntorch {torch.__version__}, torchvision "
            f"{torchvision.__version__}, lightning {L.__version__}\n"
        )
    assert main(["--help"]) == 0
    assert "-V, --version" in capsys.readouterr().out


def test_registered_names_expand_to_their_family_class() -> None:
    assert expand_model_names(["fit", "--model", "lenet5_bn", "--data=Digits"]) == [
        "fit",
        "--model",
        "classic_cnns.LeNet5",
        "--model.arch=lenet5_bn",
        "--data=Digits",
    ]
    assert expand_model_names(["fit", "--model=LeNet5"]) == ["fit", "--model=LeNet5"]


def test_model_help_takes_a_registered_name(capsys: pytest.CaptureFixture[str]) -> None:
    # --model resnet20 works, so --model.help resnet20 should too: it shows ResNet's flags.
    assert expand_model_names(["fit", "--model.help", "resnet20"]) == [
        "fit",
        "--model.help",
        "classic_cnns.ResNet",
    ]
    assert expand_model_names(["fit", "--model.help=lenet5_bn"]) == [
        "fit",
        "--model.help",
        "classic_cnns.LeNet5",
    ]
    with pytest.raises(SystemExit) as shown:
        main(["fit", "--model.help", "resnet20"])
    assert shown.value.code == 0
    assert "--model.zero_init_residual" in capsys.readouterr().out
    assert main(["fit", "--model.help", "resnt20"]) == 2
    assert "Did you mean 'resnet20'" in capsys.readouterr().err


def test_data_help_takes_a_name_as_data_does(capsys: pytest.CaptureFixture[str]) -> None:
    # "--data.help: Expected a dot import path string: mnist" where --data mnist works.
    with pytest.raises(SystemExit) as shown:
        main(["fit", "--data.help", "mnist"])
    assert shown.value.code == 0
    assert "--data.protocol" in capsys.readouterr().out
    assert main(["fit", "--data.help", "Digitz"]) == 2
    err = capsys.readouterr().err
    assert "--data.help: unknown datamodule 'Digitz': expected one of " in err
    assert "Did you mean 'Digits'" in err


def test_weights_start_a_new_run_from_a_file_and_pretrained_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(1)  # not the command line's seed (0), which builds its model the same
    source = classic_cnns.LeNet5()
    torch.save(source.net.state_dict(), tmp_path / "w.pt")
    cli = ClassicCLI(args=["--weights", str(tmp_path / "w.pt")], run=False)
    assert torch.equal(cli.model.net.fc.weight, source.net.fc.weight)
    fresh = ClassicCLI(args=[], run=False)
    assert not torch.equal(fresh.model.net.fc.weight, source.net.fc.weight)
    # LeNet-5 has no ImageNet weights: refused before anything runs, naming those that do.
    assert main(["fit", "--pretrained", "true"]) == 2
    assert "lenet5 has no pretrained weights; pretrained=True works for" in capsys.readouterr().err


def test_seed_everything_true_draws_a_random_seed_and_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lightning 2.6 seeds 0 for `true`, though its help says "a random seed".
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PL_GLOBAL_SEED", "0")  # (so that the end of the test restores it)
    monkeypatch.delenv("PL_GLOBAL_SEED")
    seeds = []
    for _ in range(2):  # one Python process: the first run's PL_GLOBAL_SEED is not reused
        cli = ClassicCLI(args=["--seed_everything", "true"], run=False)
        seeds.append(cli.config["seed_everything"])
        assert os.environ["PL_GLOBAL_SEED"] == str(seeds[-1])  # the seed recorded is the one set
    assert all(isinstance(s, int) and 0 <= s < 2**32 for s in seeds) and seeds[0] != seeds[1]
    assert ClassicCLI(args=["--seed_everything", "7"], run=False).config["seed_everything"] == 7


def test_seed_everything_true_in_a_launch_takes_the_launch_s_seed_or_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A process that Lightning's DDP launcher started (WORLD_SIZE set) keeps the seed the
    # first process drew, which the launcher hands on as PL_GLOBAL_SEED.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("PL_GLOBAL_SEED", "1234")
    cli = ClassicCLI(args=["--seed_everything", "true"], run=False)
    assert cli.config["seed_everything"] == 1234
    # torchrun's processes, with no seed handed on, cannot agree on a random one.
    for launch in ({"WORLD_SIZE": "2"}, {"SLURM_NTASKS": "4"}):
        monkeypatch.delenv("PL_GLOBAL_SEED")
        monkeypatch.delenv("WORLD_SIZE", raising=False)
        for key, value in launch.items():
            monkeypatch.setenv(key, value)
        assert main(["fit", "--seed_everything", "true"]) == 2
        err = capsys.readouterr().err
        assert f"this process is one of a launch ({key}={value}) whose launcher set no " in err
        assert "pass an int seed (--seed_everything N)" in err
        assert "PL_GLOBAL_SEED" not in os.environ and not (tmp_path / "lightning_logs").exists()
        monkeypatch.delenv(key)
        # An int seed is the same in every process: taken as given.
        cli = ClassicCLI(args=["--seed_everything", "5"], run=False)
        assert cli.config["seed_everything"] == 5


def test_under_a_launch_rank_zero_prints_an_error_and_the_others_only_after_a_grace(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every process of a DDP run meets the same bad flag: one message, every process exits 2
    # (the others wait, and torchrun stops them once rank 0 exits: tests/test_ddp.py). An
    # error rank 0 did not meet is said by its process after the wait; it was said by none.
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    import classic_cnns._launch as launch

    slept: list[float] = []
    monkeypatch.setattr(launch.time, "sleep", slept.append)
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    assert main(["fit", "--model", "lenet"]) == 2
    err = capsys.readouterr().err
    assert slept == [launch.LAUNCH_GRACE_S]
    assert err.startswith("(process 1) classic-cnns fit: error: unknown model 'lenet'"), err
    # Under Lightning's own launcher rank 0 started this process: rank 0 said it and exited,
    # which leaves this process another parent; it said it again after the prompt.
    parents = iter([4321])
    monkeypatch.setattr(launch.os, "getppid", lambda: next(parents, 1))
    assert main(["fit", "--model", "lenet"]) == 2
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(rank_zero_only, "rank", 0)
    assert main(["fit", "--model", "lenet"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'lenet'" in err and "(--debug or" in err


def test_an_error_in_a_spawned_worker_is_a_one_line_error() -> None:
    # Under ddp_spawn a worker's error reaches the main process as torch's
    # ProcessRaisedException, holding the worker's traceback as text.
    import operator

    from torch.multiprocessing import spawn
    from torch.multiprocessing.spawn import ProcessRaisedException

    from classic_cnns._cli_errors import user_error_message

    with pytest.raises(ProcessRaisedException) as raised:
        spawn(model_info, nprocs=1)  # model_info(0) in the worker: a user's error
    message = user_error_message(raised.value)
    assert message == "expected a registered model's name (a str); got 0"
    with pytest.raises(ProcessRaisedException) as raised:
        spawn(operator.truediv, args=(0,), nprocs=1)  # 0 / 0: a bug, shown as a traceback
    assert user_error_message(raised.value) is None


def test_unknown_model_name_suggests_close_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit", "--model", "lenet"]) == 2
    assert "unknown model 'lenet'" in capsys.readouterr().err


@pytest.mark.slow
def test_fit_on_digits_end_to_end_reaches_95_percent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--trainer.enable_progress_bar=false"]) == 0  # LeNet-5 on Digits
    metrics = logged_metrics(tmp_path)
    assert metrics["test_acc"] >= 0.95, metrics
    assert {"train_loss", "val_acc", "val_f1", "test_f1", "test_acc_top5"} <= set(metrics)
    (config,) = tmp_path.glob("lightning_logs/version_*/config.yaml")
    assert "seed_everything: 0" in config.read_text()


def test_int_flags_stay_ints_under_a_float_first_union(monkeypatch: pytest.MonkeyPatch) -> None:
    # typing caches a Union by its set of types, so after `import sklearn.datasets` the
    # Trainer's Optional[Union[int, float]] can be float-first, as here, and 1 became 1.0.
    ClassicCLI(args=[], run=False)  # a parser built before: nothing of it is reused
    annotations = L.Trainer.__init__.__annotations__
    # A flat tuple of types, which the cache compares in order: no int-first hit.
    float_first = typing.Union[(float, int, type(None))]  # noqa: UP007
    monkeypatch.setitem(annotations, "limit_train_batches", float_first)
    monkeypatch.setitem(annotations, "overfit_batches", typing.Union[(float, int)])  # noqa: UP007
    for flag in ["1", "0.5", "1.0"]:
        args = [f"--trainer.limit_train_batches={flag}", f"--trainer.overfit_batches={flag}"]
        config = ClassicCLI(args=args, run=False).config["trainer"]
        # 1 is one batch, 1.0 the whole epoch.
        assert repr(config["limit_train_batches"]) == repr(config["overfit_batches"]) == flag
    assert annotations["limit_train_batches"] is float_first  # Lightning's left as it was


def test_console_script_runs_fit_with_a_registered_name(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("classic-cnns")
    result = subprocess.run(
        [
            str(script),
            "fit",
            "--model",
            "lenet5_modern",
            "--data",
            "Digits",
            "--trainer.fast_dev_run=2",
            "--trainer.enable_progress_bar=false",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "test_acc" in result.stdout


def test_readme_model_table_is_current() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    start, end = "<!-- model-table:start -->\n", "\n<!-- model-table:end -->"
    table = readme[readme.index(start) + len(start) : readme.index(end)]
    assert table == model_table(markdown=True), "run: classic-cnns list --format markdown"


@in_clone
def test_ci_runs_exactly_the_readme_test_command() -> None:
    root = Path(__file__).parents[1]
    command = (
        'python3 -m venv .venv && .venv/bin/pip install -e ".[dev]" && .venv/bin/python -m pytest'
    )
    assert f"\n{command}\n" in (root / "README.md").read_text()
    ci = (root / ".ci" / "run").read_text()
    assert f"\n{command}\n" in ci
    # ... and CI makes a missing dataset fail the tests that need it (conftest.require_data).
    assert ci.index("\nexport CLASSIC_CNNS_REQUIRE_DATA=1\n") < ci.index(command)


@pytest.mark.slow
def test_the_readme_new_user_path_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The README's lines from install to an exported model, run through the console script's
    # entry point (the install line is what .ci/run and check_wheel cover).
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    start, end = "<!-- new-user:start -->\n```bash\n", "```\n<!-- new-user:end -->"
    lines = readme[readme.index(start) + len(start) : readme.index(end)].splitlines()
    assert lines[0] == (
        'pip install "classic-cnns[export] @ git+https://github.com/classic-cnns/classic-cnns"'
    )
    monkeypatch.chdir(tmp_path)
    for line in lines[1:]:
        words = shlex.split(line)
        assert words[0] == "classic-cnns", line
        args = [a for w in words[1:] for a in (sorted(glob.glob(w)) if "*" in w else [w])]
        assert main([*args, "--trainer.enable_progress_bar=false"] if "fit" in args else args) == 0
    assert logged_metrics(tmp_path)["test_acc"] > 0.9
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / "lenet5.onnx"))
    (logits,) = session.run(None, {session.get_inputs()[0].name: np.zeros((2, 1, 32, 32), "f")})
    assert logits.shape == (2, 10)


# -- one source of defaults ------------------------------------------------------------------
def _check_defaults(cls: type, printed: dict[str, Any], linked: tuple[str, ...] = ()) -> None:
    # Every argument of cls.__init__ is printed, and each printed value is the default of the
    # most derived __init__ that declares it (arguments passed on through **kwargs take the
    # base class's default).
    own = inspect.signature(cls.__init__).parameters.values()
    assert {p.name for p in own if p.default is not p.empty} - set(linked) <= set(printed), cls
    for key, value in printed.items():
        init = next(
            k.__init__ for k in cls.__mro__ if key in inspect.signature(k.__init__).parameters
        )
        default = inspect.signature(init).parameters[key].default
        if default is not inspect.Parameter.empty:
            assert value == _plain(default), (cls.__name__, key)


def _plain(value: Any) -> Any:
    # As YAML prints it: tuples are lists.
    return [_plain(v) for v in value] if isinstance(value, list | tuple) else value


def _printed_config(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *args, "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def test_settings_from_the_environment_as_the_guide_documents(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # docs/getting-started.md: PL_<COMMAND>__<FLAG> under JSONARGPARSE_DEFAULT_ENV=true, a
    # model as JSON, and a flag on the command line wins.
    monkeypatch.setenv("PL_FIT__TRAINER__MAX_EPOCHS", "3")
    model = '{"class_path": "classic_cnns.LeNet5", "init_args": {"lr": 0.5}}'
    monkeypatch.setenv("PL_FIT__MODEL", model)
    assert _printed_config(capsys)["trainer"]["max_epochs"] is None  # off by default
    monkeypatch.setenv("JSONARGPARSE_DEFAULT_ENV", "true")
    config = _printed_config(capsys)
    assert config["trainer"]["max_epochs"] == 3
    assert config["model"]["class_path"] == "classic_cnns.LeNet5"
    assert config["model"]["init_args"]["lr"] == 0.5
    assert _printed_config(capsys, "--trainer.max_epochs", "2")["trainer"]["max_epochs"] == 2
    # A class the environment chooses is the user's, as a config file's: the CLI's default
    # classes went onto the command line, which beats the environment, and replaced them.
    monkeypatch.setenv("PL_FIT__MODEL", '{"class_path": "classic_cnns.ResNet"}')
    monkeypatch.setenv("PL_FIT__DATA", "{class_path: classic_cnns.MNIST, init_args: {val_size: 0}}")
    monkeypatch.setenv("PL_FIT__TRAINER__LOGGER", "false")
    config = _printed_config(capsys)
    assert config["model"]["class_path"] == "classic_cnns.ResNet"
    assert config["model"]["init_args"]["arch"] == "resnet18"  # ResNet's own default
    assert config["data"]["class_path"] == "classic_cnns.MNIST"
    assert config["data"]["init_args"]["val_size"] == 0
    assert config["trainer"]["logger"] is False
    monkeypatch.delenv("PL_FIT__TRAINER__LOGGER")
    logger = _printed_config(capsys, "--model", "AlexNet")["trainer"]["logger"]  # the default
    assert logger["class_path"] == "lightning.pytorch.loggers.CSVLogger"
    monkeypatch.setenv("PL_FIT__CONFIG", "{model: {class_path: classic_cnns.NiN}}")
    monkeypatch.delenv("PL_FIT__MODEL")
    assert _printed_config(capsys)["model"]["class_path"] == "classic_cnns.NiN"


def test_a_model_class_after_a_config_of_another_family_takes_its_own_arch(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # -c a LeNet-5 run's config.yaml --model AlexNet kept arch 'lenet5': AlexNet refused it.
    lenet = "{model: {class_path: classic_cnns.LeNet5, init_args: {arch: lenet5, lr: 0.1}}}"
    resnet = "{model: {class_path: classic_cnns.ResNet, init_args: {arch: resnet20}}}"
    cases = [
        (["-c", lenet, "--model", "AlexNet"], "classic_cnns.AlexNet", "alexnet"),
        (["-c", lenet, "--model=classic_cnns.VGG"], "classic_cnns.VGG", "vgg16"),
        (["-c", resnet, "--model", "ResNet"], "classic_cnns.ResNet", "resnet20"),  # its own
        (
            ["-c", lenet, "--model", "ResNet", "--model.arch=resnet56"],
            "classic_cnns.ResNet",
            "resnet56",
        ),
        # An earlier --model name's arch, as a config's: LeNet5 refused 'resnet20'.
        (["--model", "resnet20", "--model", "LeNet5"], "classic_cnns.LeNet5", "lenet5"),
        (["--model", "lenet5_bn", "--model", "LeNet5"], "classic_cnns.LeNet5", "lenet5_bn"),
        (["-c", lenet, "--model.arch", "resnet20", "--model", "NiN"], "classic_cnns.NiN", "nin"),
    ]
    for args, class_path, arch in cases:
        model = _printed_config(capsys, *args)["model"]
        assert (model["class_path"], model["init_args"]["arch"]) == (class_path, arch), args


@pytest.mark.parametrize("name", data_class_names())
def test_the_command_line_takes_each_datamodule_s_own_defaults(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cls = getattr(classic_cnns, name)
    required = ["--data.root", "photos"] if name == "ImageFolder" else []
    printed = _printed_config(capsys, "--data", name, *required)["data"]
    assert printed["class_path"] == f"classic_cnns.{name}"
    _check_defaults(cls, printed["init_args"])


def test_fit_reads_the_data_folder_classic_cnns_data_names_and_records_it(
    mnist_raw: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `CLASSIC_CNNS_DATA=D classic-cnns data fetch mnist` fills D; fit reads it from there.
    data = mnist_raw.parent.parent
    monkeypatch.chdir(tmp_path)  # no ./data here
    monkeypatch.setenv("CLASSIC_CNNS_DATA", str(data))
    assert _printed_config(capsys, "--data", "MNIST")["data"]["init_args"]["data_dir"] is None
    limits = [f"--trainer.limit_{s}_batches=1" for s in ("train", "val", "test")]
    args = ["fit", "--data", "MNIST", "--data.protocol", "10k", "--data.download", "false"]
    args += ["--trainer.max_epochs=1", "--trainer.enable_progress_bar=false", *limits]
    assert main(args) == 0
    assert "test_acc" in capsys.readouterr().out and not (tmp_path / "data").exists()
    # The run's config.yaml names the folder read: --config reruns it there, whatever the
    # variable says then.
    (config,) = tmp_path.glob("lightning_logs/version_*/config.yaml")
    monkeypatch.setenv("CLASSIC_CNNS_DATA", str(tmp_path / "elsewhere"))
    printed = _printed_config(capsys, "--config", str(config))
    assert printed["data"]["init_args"]["data_dir"] == str(data)


def test_a_whole_val_size_on_the_command_line_stays_a_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Read as a float, "1" became 1.0, which the datamodule refuses as ambiguous.
    for given, kept in (("1", 1), ("500", 500), ("0.1", 0.1)):
        printed = _printed_config(capsys, "--data", "Digits", "--data.val_size", given)
        value = printed["data"]["init_args"]["val_size"]
        assert value == kept and type(value) is type(kept)


@pytest.mark.parametrize("name", model_class_names())
def test_the_command_line_takes_each_model_class_s_own_defaults(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cls = getattr(classic_cnns, name)
    printed = _printed_config(capsys, "--model", name)["model"]["init_args"]
    # The data sets num_classes and in_channels (linked), so the config leaves them out.
    _check_defaults(cls, printed, linked=("num_classes", "in_channels"))


def test_a_config_file_chooses_the_classes_without_the_defaults_leaking_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "mnist.yaml"
    config.write_text("data:\n  class_path: classic_cnns.MNIST\n  init_args:\n    val_size: 0\n")
    printed = _printed_config(capsys, "--config", str(config))["data"]
    assert printed["class_path"] == "classic_cnns.MNIST"
    assert printed["init_args"]["val_size"] == 0
    defaults = inspect.signature(classic_cnns.MNIST).parameters
    for key in ("batch_size", "resize", "protocol"):  # MNIST's own (batch: the recipe's)
        assert printed["init_args"][key] == defaults[key].default, key
    assert "test_size" not in printed["init_args"]  # Digits' argument did not leak in
    # Flags after --data still apply; without --data the default class takes them.
    printed = _printed_config(capsys, "--data.batch_size", "32")["data"]
    assert printed["class_path"] == "classic_cnns.Digits"
    assert printed["init_args"]["batch_size"] == 32


@pytest.mark.usefixtures("one_thread")
def test_a_tilde_in_any_path_is_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # --flag=~/x reaches us as it is (the shell expands only a word that starts with ~).
    # The CSV logs went to ~/r, the checkpoints and plots to ./~/r; --output=~/p.csv to ./~.
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    limits = [f"--trainer.limit_{s}_batches=1" for s in ("train", "val", "test")]
    args = ["fit", "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false", *limits]
    assert main([*args, "--trainer.default_root_dir=~/r"]) == 0, capsys.readouterr().err
    run = home / "r" / "lightning_logs" / "version_0"
    for name in ("metrics.csv", "config.yaml", "curves.png", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    (home / "imgs").mkdir()
    write_png(torch.zeros(1, 8, 8, dtype=torch.uint8), home / "imgs" / "a.png")
    last = "--ckpt_path=~/r/lightning_logs/version_0/checkpoints/last.ckpt"
    quiet = ["--trainer.default_root_dir=~/t", "--trainer.enable_progress_bar=false"]
    assert main(["test", last, *quiet]) == 0, capsys.readouterr().err
    ckpt = last.split("=")[1]
    assert main(["export", ckpt, "--format", "safetensors", "--output=~/m.safetensors"]) == 0
    for _ in range(2):  # the second is refused: the file is seen where it was written
        code = main(["predict-folder", ckpt, "~/imgs", "--output=~/p.csv"])
    assert code == 2 and "p.csv exists; pass --overwrite" in capsys.readouterr().err
    assert (home / "m.safetensors").is_file() and (home / "p.csv").is_file()
    assert (home / "t" / "lightning_logs" / "version_0" / "confusion_matrix.csv").is_file()
    assert list(work.iterdir()) == []


def test_a_config_file_names_a_registered_model_as_the_command_line_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `model: resnet20` failed in jsonargparse ("Expected a dot import path string") where
    # `--model resnet20` works. The file's other values stay, and later flags still apply.
    config = tmp_path / "run.yaml"
    config.write_text("model: resnet20\ndata: Digits\ntrainer:\n  max_epochs: 3\n")
    for flag in (["--config", str(config)], [f"--config={config}"]):
        printed = _printed_config(capsys, *flag, "--model.lr", "0.05")
        assert printed["model"]["class_path"] == "classic_cnns.ResNet"
        assert printed["model"]["init_args"]["arch"] == "resnet20"
        assert printed["model"]["init_args"]["lr"] == 0.05
        assert printed["data"]["class_path"] == "classic_cnns.Digits"
        assert printed["trainer"]["max_epochs"] == 3


# -- errors ----------------------------------------------------------------------------------
ERRORS = {
    "unknown model": (  # the command, not the Python function, lists the names
        ["fit", "--model", "LeNet6"],
        "unknown model 'LeNet6': expected one of the ",
        "registered names (see classic-cnns list)",
        "Did you mean 'lenet5'",
    ),
    "unknown model in a config file": (
        ["fit", "-c", "{model: resnet2}"],
        "unknown model 'resnet2': expected one of the ",
        "Did you mean 'resnet32'",
    ),
    "unknown datamodule": (
        ["fit", "--data", "Digitz"],
        "unknown datamodule 'Digitz': expected one of ",
        "Did you mean 'Digits'?",
    ),
    "an optimizer class in lower case": (  # jsonargparse: "Expected a dot import path"
        ["fit", "--optimizer", "adam"],
        "--optimizer adam: expected a class of torch.optim (or the import path of your own",
        "Did you mean 'Adam', ",
        "The model's own optimizer: --model.optimizer adam.",
    ),
    "an unknown scheduler class": (
        ["fit", "--lr_scheduler=StepLr"],
        "--lr_scheduler StepLr: expected a class of torch.optim.lr_scheduler (or the ",
        "Did you mean 'StepLR'",
    ),
    "a size the data sets": (  # LightningCLI's link would drop it without a word
        ["fit", "--model.num_classes=5"],
        "--model.num_classes: the model takes its num_classes from the datamodule",
        "create_model(name, num_classes=...)",
    ),
    "a size the data sets, in a config file": (  # which was dropped without a word too
        ["fit", "-c", "{model: {init_args: {num_classes: 3}}}"],
        "model.num_classes in a --config file: the model takes its num_classes from the data",
        "leave the value out",
    ),
    "resume and new weights at once": (
        ["fit", "--ckpt_path", "last", "--weights", "w.ckpt"],
        "--ckpt_path resumes a run with the checkpoint's own weights; --weights and",
        "give one or the other",
    ),
    "data folder without the files": (
        ["fit", "--data", "MNIST", "--data.data_dir", "{tmp}", "--data.download", "false"],
        "MNIST: train-images-idx3-ubyte.gz, ",
        f"missing from {Path('{tmp}', 'MNIST', 'raw')}",
    ),
    "image folder that does not exist": (
        ["fit", "--data", "ImageFolder", "--data.root", "{tmp}/photos"],
        f"no image folder at {Path('{tmp}', 'photos')}",
        "",
    ),
    "no network": (
        ["fit", "--data", "MNIST", "--data.data_dir", "{tmp}"],
        "could not download train-images-idx3-ubyte.gz into "
        f"{Path('{tmp}', 'MNIST', 'raw')}; tried:",
        "the tests run offline",
    ),
    "no network for CIFAR's archive": (
        ["fit", "--model", "resnet20", "--data", "CIFAR10", "--data.data_dir", "{tmp}"],
        "could not download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz into ",
        "{tmp}",
    ),
    "infinite run with a one-cycle schedule": (
        ["fit", "--trainer.max_epochs", "-1"],
        "scheduler='onecycle' needs a finite run length",
        "",
    ),
    "not an int": (
        ["fit", "--trainer.max_epochs", "abc"],
        "--trainer.max_epochs abc: Expected a <class 'int'>",
        "",
    ),
    "bad value of a model argument": (
        ["fit", "--model.lr", "fast"],
        "--model.lr fast: Expected a <class 'float'>",
        "",
    ),
    "bad value of an int-or-float argument": (  # each type's reason, no "Given value type"
        ["fit", "--data.val_size", "abc"],
        "--data.val_size abc: Expected a <class 'int'>; Expected a <class 'float'>\n",
    ),
    "numbers for class names": (  # folders named 0, 1, 2: the names are strings
        ["fit", "--data", "ImageFolder", "--data.root", "{tmp}", "--data.classes", "[0, 1]"],
        """--data.classes [0, 1]: Expected a <class 'str'>. Got value: 0, a number: quote each """
        """name as it is spelled, e.g. '["01", "02"]'; Expected a <class 'dict'>""",
    ),
    # A flag without its value, last on the command line (the progress bar flag goes first):
    "no datamodule after --data": (["fit", "--data"], "argument --data: expected one argument"),
    "no config after -c": (["fit", "-c"], "argument -c/--config: expected one argument"),
    "no model after --model": (["fit", "--model"], "argument --model: expected one argument"),
    # torch's own refusal (raised once fit configured the optimizer) named with its flag:
    "a value torch's optimizer refuses": (
        ["fit", "--optimizer", "Adam", "--optimizer.lr", "-1"],
        "error: --optimizer Adam: Invalid learning rate: -1.0",
    ),
    "input too small for the model": (
        ["summary", "lenet5", "--input-size", "1", "16", "16"],
        "layer 'c5.0' (Conv2d) gets a 1x1 map",  # as the README says
        "conv2d output height would be -3",
    ),
    "input too small for the model's own stem": (
        ["summary", "alexnet", "--input-size", "3", "32", "32"],
        "layer 'features.12' (MaxPool2d) gets a 1x1 map",
        "--small-input builds alexnet for images this small",
    ),
    "evaluating random weights": (
        ["test"],
        "test needs trained weights: --ckpt_path FILE (or last), --weights FILE or "
        "--pretrained true",
    ),
    "evaluating the last run where there is none": (
        ["validate", "--ckpt_path", "last"],
        "--ckpt_path last: no earlier run left a last.ckpt to validate",
    ),
    "an option the model does not have": (
        ["summary", "lenet5", "--small-input"],
        "lenet5 takes no argument 'small_input'",
    ),
}


def test_summary_with_the_small_input_stem(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "alexnet", "--input-size", "3", "32", "32", "--small-input"]) == 0
    table = capsys.readouterr().out
    expected = summary(create_model("alexnet", small_input=True), (3, 32, 32))
    assert table.strip() == str(expected).strip()
    assert "1x1 map" not in table
    # Without --input-size, the 32 px its help names (not the ImageNet model's 224 px).
    assert main(["summary", "resnet18", "--small-input", "--num-classes", "10"]) == 0
    small = create_model("resnet18", small_input=True, num_classes=10)
    assert capsys.readouterr().out.strip() == str(summary(small, (3, 32, 32))).strip()


@pytest.mark.parametrize(
    "args",
    [
        ["resnet20", "--input-size", "3", "0", "32"],  # not a size: small_input is no remedy
        ["resnet18", "--input-size", "3", "0", "32"],
        ["lenet5", "--input-size", "1", "16", "16"],  # too small, and without the option
        ["lenet5", "--input-size", "0", "32", "32"],  # named by its flag, not in_channels
        ["vgg11", "--input-size", "3", "28", "28"],  # its option keeps the stem: 32 px still
        ["alexnet", "--input-size", "3", "10", "10"],  # its small stem needs 15 px
    ],
)
def test_summary_suggests_small_input_only_where_it_would_help(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # The hint followed every error of a model with the option (alexnet's too small input,
    # in ERRORS, keeps it): a size of 0 too, and for resnet20, built for small images already.
    assert main(["summary", *args]) == 2
    err = capsys.readouterr().err
    assert "--input-size: expected C H W, each >= 1; got " in err or "too small" in err
    assert "--small-input" not in err


@pytest.mark.parametrize("case", ERRORS)
def test_a_user_s_mistake_is_one_message_with_status_2(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLASSIC_CNNS_DEBUG", raising=False)
    args, *expected = ERRORS[case]
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    quiet = [args[0], "--trainer.enable_progress_bar=false", *args[1:]]
    assert main(quiet if args[0] == "fit" else args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "usage:" not in err
    first, *rest = err.strip().splitlines()
    assert first.startswith(f"classic-cnns {args[0]}: error: "), err
    for text in expected:
        assert text.replace("{tmp}", str(tmp_path)) in err
    assert rest[-1] == "(--debug or CLASSIC_CNNS_DEBUG=1 shows the traceback)"
    # Nothing is left behind: the logger's run folder and its lightning_logs, made before
    # the datamodule failed, are removed while still empty.
    logs = [tmp_path / "lightning_logs", *tmp_path.glob("lightning_logs/*")]
    assert not [p for p in logs if p.is_dir() and not any(p.iterdir())]


@pytest.mark.parametrize(
    "args,line,named",
    [  # a class given to a Union-typed flag: its flag, its name and its reason, no other's
        (
            ["--lr_scheduler", "StepLR", "--optimizer", "SGD"],
            "--lr_scheduler StepLR: ",
            "step_size",
        ),
        (
            ["--trainer.callbacks", "EarlyStopping"],
            "--trainer.callbacks EarlyStopping: ",
            "monitor",
        ),
        (
            ["--trainer.logger", "CSVLogger", "--trainer.logger.init_args.bogus", "1"],
            "--trainer.logger CSVLogger: ",
            "bogus",
        ),
        (["--optimizer", "SGD", "--optimizer.lr", "abc"], "--optimizer.lr abc: Expected a ", ""),
    ],
)
def test_a_class_s_error_names_its_flag_and_its_own_reason(
    args: list[str], line: str, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fit", *args]) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith(f"classic-cnns fit: error: {line}"), first
    # The reason is jsonargparse's, worded by its version ("the following arguments are
    # required: step_size" in 4.53, 'Key "step_size" is required ...' in 4.40): it names the key.
    assert named in first.removeprefix(f"classic-cnns fit: error: {line}"), first
    assert "Namespace(" not in first and "<class 'bool'>" not in first, first
    assert "Iterable" not in first and "ReduceLROnPlateau" not in first, first


def test_a_misspelled_early_stopping_monitor_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lightning's RuntimeError after the first validation printed its traceback (exit 1).
    monkeypatch.chdir(tmp_path)
    run = ["fit", "--trainer.callbacks+=EarlyStopping", "--trainer.callbacks.monitor=val_los",
           "--trainer.max_epochs=2", *ONE_BATCH]  # fmt: skip
    assert main(run) == 2
    err = capsys.readouterr().err.splitlines()
    assert (
        err[-2].startswith(
            "classic-cnns fit: error: Early stopping conditioned on metric `val_los` which is "
            "not available. Pass in or modify your `EarlyStopping` callback to use any of the "
        )
        and "`val_loss`" in err[-2]
    ), err
    assert err[-1] == "(--debug or CLASSIC_CNNS_DEBUG=1 shows the traceback)"
    assert "Traceback" not in "\n".join(err)


class NeedsDepth(classic_cnns.LeNet5):
    """A user's classifier with an argument that has no default."""

    def __init__(self, depth: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.depth = depth


@pytest.mark.parametrize(
    "args,line",
    [
        (["--data", "ImageFolder"], "--data ImageFolder: the following arguments are required: "
         "--data.root"),
        (["--model", f"{NeedsDepth.__module__}.NeedsDepth"], "--model NeedsDepth: the following "
         "arguments are required: --model.depth"),
    ],
)  # fmt: skip
def test_a_class_s_argument_not_given_is_named_by_its_flag(
    args: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # jsonargparse names the argument ("required: root"); the flag a user types is --data.root.
    assert main(["fit", *args]) == 2
    assert capsys.readouterr().err.splitlines()[0] == f"classic-cnns fit: error: {line}"


_OWN_LOGGER = """
from lightning.pytorch.loggers import CSVLogger


class Own(CSVLogger):  # a logger of the user's, with its own defaults
    def __init__(self, save_dir: str = "elsewhere", name: str | None = None) -> None:
        super().__init__(save_dir, name=name or "mine")
"""


def test_a_logger_the_user_chooses_keeps_its_defaults_and_is_the_only_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default CSV logger was a parser default: jsonargparse carried its save_dir "." and
    # name "lightning_logs" over to the logger chosen instead (a W&B run's name), and
    # --trainer.logger+= added to it, a hidden CSV logger whose folder the run then used.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "own.py").write_text(_OWN_LOGGER)
    monkeypatch.syspath_prepend(str(tmp_path))
    own = ClassicCLI(args=["--trainer.logger=own.Own"], run=False).trainer.logger
    assert (type(own).__name__, own.save_dir, own.name) == ("Own", "elsewhere", "mine")
    listed = ["--trainer.logger+=own.Own", "--trainer.logger+=CSVLogger"]
    loggers = ClassicCLI(args=listed, run=False).trainer.loggers
    assert [(type(x).__name__, x.save_dir) for x in loggers] == [
        ("Own", "elsewhere"),
        ("CSVLogger", "."),
    ]
    # A CSV (or TensorBoard) logger named without a folder writes in the root, as the default.
    root = ["--trainer.default_root_dir=runs"]
    for chosen in ([], ["--trainer.logger", "CSVLogger"]):
        (logger,) = ClassicCLI(args=[*root, *chosen], run=False).trainer.loggers
        assert (type(logger).__name__, logger.save_dir) == ("CSVLogger", "runs"), chosen


@pytest.mark.parametrize("logger", ["TensorBoardLogger", "[TensorBoardLogger]"])
def test_a_logger_whose_package_is_missing_names_the_flag_and_the_extra(
    logger: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The class fails when it is built, after parsing: jsonargparse names no flag then.
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        pytest.skip("tensorboard is installed (the dev extra leaves it out)")
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--trainer.logger", logger, "--trainer.max_epochs", "1"]) == 2
    assert capsys.readouterr().err.splitlines()[0] == (
        "classic-cnns fit: error: --trainer.logger TensorBoardLogger: Neither `tensorboard` nor "
        "`tensorboardX` is available (install the extra: pip install 'classic-cnns[tensorboard]')"
    )
    assert not list(tmp_path.iterdir())


def test_ctrl_c_in_a_command_of_the_package_s_own_is_one_line_and_status_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # export, predict-folder, summary...: a KeyboardInterrupt traceback, where Lightning's
    # commands say one line (their files are cleaned up either way: files.atomic_path).
    import classic_cnns.cli as cli

    def pressed(args: list[str]) -> int:
        raise KeyboardInterrupt

    monkeypatch.setitem(cli._OWN_COMMANDS, "export", ("", pressed))
    assert main(["export", "m.ckpt"]) == 130
    assert capsys.readouterr().err == "classic-cnns export: stopped by Ctrl-C\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("trainer: [1, 2\n", r"not valid YAML: expected ',' or '\]', but got '<stream end>' "
         r"at line 2, column 1$"),
        ("- 1\n- 2\n", r"expected a mapping of options \(trainer:, model:, data:, \.\.\.\); "
         r"the file holds a list$"),
    ],
    ids=["broken YAML", "a list"],
)  # fmt: skip
def test_a_config_file_that_is_no_mapping_of_options_is_named(
    text: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # jsonargparse said 'in "<unicode string>", line 1', or "Unexpected config: - 1".
    config = tmp_path / "run.yaml"
    config.write_text(text)
    for flag in ("--config", "-c"):
        assert main(["fit", flag, str(config)]) == 2
        first = capsys.readouterr().err.splitlines()[0]
        assert re.match(
            rf"classic-cnns fit: error: {flag} {re.escape(str(config))}: {expected}", first
        ), first


@pytest.mark.parametrize(
    ("flags", "config", "expected"),
    [
        (["--trainer.max_epochz", "1"], None, "unrecognized arguments: --trainer.max_epochz 1. "
         "Did you mean '--trainer.max_epochs', '--trainer.min_epochs', '--trainer.max_steps'?"),
        (["--seed_everythin", "1", "--data.batch_size", "8", "--trainer.max_epochz", "1"], None,
         "unrecognized arguments: --seed_everythin 1 --trainer.max_epochz 1. --seed_everythin: "
         "did you mean '--seed_everything'? --trainer.max_epochz: did you mean "
         "'--trainer.max_epochs', '--trainer.min_epochs', '--trainer.max_steps'?"),
        ([], "trainer:\n  max_epochz: 1\n", "{config}: Subcommand 'fit' does not accept option "
         "'trainer.max_epochz'. Did you mean 'trainer.max_epochs', 'trainer.min_epochs', "
         "'trainer.max_steps'?"),
        ([], "model:\n  class_path: classic_cnns.LeNet5\n  init_args:\n    lrr: 0.1\n",
         "{config}: --model LeNet5: Option 'lrr' is not accepted. Did you mean 'lr'?"),
        ([], "data:\n  class_path: classic_cnns.Digits\n  init_args:\n    batchsize: 8\n",
         "{config}: --data Digits: Option 'batchsize' is not accepted. Did you mean "
         "'batch_size', 'val_size', 'test_size'?"),
        # The class's arguments beside its class_path: jsonargparse's words mislead.
        ([], "data:\n  class_path: classic_cnns.Digits\n  batch_size: 8\n",
         "{config}: --data InMemoryDataModule: Option 'class_path' is not accepted. Put the "
         "class's arguments under init_args: (data: {{class_path: ..., init_args: {{...}}}})"),
        (["--optimizer", "SGD", "--optimizer.lrr", "0.1"], None,
         "--optimizer SGD: Option 'lrr' is not accepted. Did you mean 'lr'?"),
        # The flag's value is the one parsed, though the file sets it too: no file named.
        (["--model.lrr", "0.1"], "model:\n  init_args:\n    lrr: 0.1\n",
         "--model LeNet5: Option 'lrr' is not accepted. Did you mean 'lr'?"),
    ],
    ids=["flag", "flags", "config key", "config class key", "config data key",
         "config class and arguments", "class flag", "flag and config"],
)  # fmt: skip
def test_an_unknown_option_gets_close_names_and_its_config_file(
    flags: list[str], config: str | None, expected: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # jsonargparse named the option alone: not the config file that held it, nor close names.
    args = ["fit", "--data", "Digits", *flags]
    if config is not None:
        (path := tmp_path / "run.yaml").write_text(config)
        args[1:1] = ["--config", str(path)]
    assert main(args) == 2
    shown = f"--config {tmp_path / 'run.yaml'}"
    assert capsys.readouterr().err.splitlines()[0] == (
        f"classic-cnns fit: error: {expected.format(config=shown)}"
    )


def test_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="unknown datamodule 'Digitz'"):
        main(["fit", "--data", "Digitz", "--debug"])
    monkeypatch.setenv("CLASSIC_CNNS_DEBUG", "1")
    with pytest.raises(ValueError, match="unknown model 'lenet'"):
        main(["fit", "--model", "lenet"])


def test_datamodule_names_ignore_letter_case(capsys: pytest.CaptureFixture[str]) -> None:
    assert _printed_config(capsys, "--data", "fashionmnist")["data"]["class_path"] == (
        "classic_cnns.FashionMNIST"
    )
    # The name fixed in place: the flags after it stay, in either form.
    for name in (["--data", "mnist"], ["--data=mnist"]):
        printed = _printed_config(capsys, *name, "--data.batch_size", "7", "--trainer.max_epochs=3")
        assert printed["data"]["class_path"] == "classic_cnns.MNIST"
        assert printed["data"]["init_args"]["batch_size"] == 7
        assert printed["trainer"]["max_epochs"] == 3


# -- help --------------------------------------------------------------------------------------
def test_fit_help_is_short_and_names_the_model_and_data_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["fit", "--help"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) < 40
    for text in ("--model MODEL", "--data DATA", "--model.help ResNet", "--data.help MNIST"):
        assert text in out, text
    for text in ("--threads N", "--ckpt_path PATH", "--help-all", "LeNet5", "ImageFolder"):
        assert text in out, text
    # The pointers it gives work: a class's own arguments, and every flag.
    with pytest.raises(SystemExit):
        main(["fit", "--model.help", "ResNet"])
    assert "--model.zero_init_residual" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["fit", "--help-all"])
    assert "--trainer.max_epochs" in capsys.readouterr().out
    # argparse's own words name what to give, not its internal name for it ("action").
    with pytest.raises(SystemExit):
        main(["data"])
    assert "the following arguments are required: {fetch}" in capsys.readouterr().err


@pytest.mark.usefixtures("one_thread")
def test_each_command_s_help_names_the_files_its_run_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every command's help said checkpoints/ (last.ckpt) and curves.png: fit's files alone.
    monkeypatch.chdir(tmp_path)
    limits = [*ONE_BATCH, "--trainer.limit_test_batches=1", "--trainer.limit_predict_batches=1"]
    for version, command in enumerate(["fit", "validate", "test", "predict"]):
        last = [] if command == "fit" else ["--ckpt_path", "last"]
        assert main([command, "--trainer.max_epochs=1", *limits, *last]) == 0
        assert main([command, "--help"]) == 0
        told = capsys.readouterr().out.split("lightning_logs/version_N/: ")[1]
        named = set(re.findall(r"[\w.]+\.(?:csv|yaml|png)|checkpoints/", told))
        written = {
            p.name + "/" * p.is_dir() for p in Path(f"lightning_logs/version_{version}").iterdir()
        }
        extra = {"hparams.yaml", "confusion_matrix.csv"}  # Lightning's; the PNG's numbers
        assert named == written - extra, (command, named, written)


# -- threads and the optimizer notice -----------------------------------------------------------
def test_threads_default_to_one_on_small_machines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    previous = torch.get_num_threads()
    torch.set_num_threads(3)  # PyTorch's own choice, here told apart from 1
    try:
        assert default_threads(cpu_count=1) == default_threads(cpu_count=2) == 1
        assert default_threads(cpu_count=16) == 3
        monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice stands
        assert default_threads(cpu_count=2) == 3
    finally:
        torch.set_num_threads(previous)


@pytest.mark.usefixtures("one_thread")
def test_threads_and_a_replaced_optimizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # restored after the test
    args = ["fit", "--trainer.fast_dev_run=1", "--trainer.enable_progress_bar=false"]
    assert main([*args, "--threads", "2", "--optimizer", "SGD", "--optimizer.lr", "0.1"]) == 0
    assert torch.get_num_threads() == 2
    err = capsys.readouterr().err
    assert err.count("--optimizer replaces the model's optimizer") == 1
    assert "(sgd, lr 0.1, weight decay 0.0005 on weights only) and its 'onecycle'" in err
    assert "no LR schedule runs (add --lr_scheduler for one)" in err
    assert "backbone_lr" not in err
    # One learning rate for all: a backbone_lr given is named as not used.
    replaced = ["--optimizer", "Adam", "--optimizer.lr", "0.01", "--model.backbone_lr", "0.001"]
    assert main([*args, *replaced, "--trainer.default_root_dir=adam"]) == 0
    err = capsys.readouterr().err
    assert "LR schedule; --model.backbone_lr 0.001 is not used (one lr for all); no LR" in err
    assert "will be overridden" not in err
    # --lr_scheduler alone: Lightning would drop it and run the model's own schedule.
    before = sorted(Path().rglob("*"))
    assert main([*args, "--lr_scheduler", "StepLR", "--lr_scheduler.step_size", "2"]) == 2
    err = capsys.readouterr().err
    assert "error: --lr_scheduler needs --optimizer: without it the model's own" in err
    assert sorted(Path().rglob("*")) == before  # refused before anything is written


def test_barebones_runs_without_the_logger_and_callbacks_the_cli_adds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Trainer(barebones=True) refuses a logger and checkpointing; the user gave neither.
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--trainer.barebones", "true", "--trainer.max_steps", "2"]) == 0, (
        capsys.readouterr().err
    )
    assert "fit took" in capsys.readouterr().out
    assert not Path("lightning_logs").exists()
    # A logger the user asked for is not dropped in silence: Lightning refuses it.
    logger = ["--trainer.logger", "CSVLogger", "--trainer.logger.save_dir", "logs"]
    assert main(["fit", "--trainer.barebones", "true", *logger]) == 2
    assert "Trainer(barebones=True, logger=" in capsys.readouterr().err
    # A config file's logger may be the default one a config.yaml records: left out.
    Path("config.yaml").unlink()  # the first run's
    named = "{trainer: {logger: {class_path: CSVLogger, init_args: {save_dir: logs}}}}"
    assert main(["fit", "--trainer.barebones=true", "--trainer.max_steps=1", "-c", named]) == 0
    assert not Path("logs").exists()


def test_enable_checkpointing_on_the_command_line_turns_the_checkpoints_off_or_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # false: Lightning refuses a ModelCheckpoint in the callbacks, so none is added and no
    # file is written; true (its default): last.ckpt besides the epoch's, as the README says
    # (Lightning names that one epoch={epoch}-step={step}).
    monkeypatch.chdir(tmp_path)
    run = ["fit", "--trainer.max_steps=1", "--trainer.enable_progress_bar=false"]
    run += [f"--trainer.limit_{s}_batches=1" for s in ("val", "test")]
    assert main([*run, "--trainer.enable_checkpointing", "false"]) == 0, capsys.readouterr().err
    assert Path("lightning_logs/version_0/config.yaml").is_file()
    assert not list(Path().rglob("*.ckpt"))
    assert main([*run, "--trainer.enable_checkpointing", "true"]) == 0, capsys.readouterr().err
    saved = sorted(p.name for p in Path("lightning_logs/version_1/checkpoints").iterdir())
    assert saved == ["epoch=0-step=1.ckpt", "last.ckpt"]


def test_max_time_alone_caps_the_recipe_s_epochs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # It was refused: without the recipe's epochs the one-cycle schedule has no length.
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--trainer.max_time", "00:00:01:00", "--trainer.limit_train_batches", "1"]
    assert main([*args, "--trainer.limit_val_batches", "1"]) == 0, capsys.readouterr().err
    last = torch.load("lightning_logs/version_0/checkpoints/last.ckpt", weights_only=True)
    assert last["epoch"] + 1 == model_info("lenet5").recipe.epochs  # done before the minute


def test_config_yaml_leaves_the_recipe_s_epochs_to_the_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The recipe's epochs were written into config.yaml, so a rerun with -c and another
    # --model kept the first model's epochs while its lr, batch and schedule followed the new.
    monkeypatch.chdir(tmp_path)
    limits = [f"--trainer.limit_{s}_batches=1" for s in ("train", "val", "test")]
    assert main(["fit", "--trainer.enable_progress_bar=false", *limits]) == 0
    saved = yaml.safe_load(Path("lightning_logs/version_0/config.yaml").read_text())
    assert saved["trainer"]["max_epochs"] is None and saved["model"]["init_args"]["lr"] is None
    for version, name in enumerate(["lenet5", "resnet20"]):
        if version:
            again = ["fit", "-c", "lightning_logs/version_0/config.yaml", "--model", name]
            assert main(again) == 0, capsys.readouterr().err
        ckpt = f"lightning_logs/version_{version}/checkpoints/last.ckpt"
        last = torch.load(ckpt, weights_only=True)
        assert last["epoch"] + 1 == model_info(name).recipe.epochs
    assert model_info("lenet5").recipe.epochs != model_info("resnet20").recipe.epochs


def test_predict_writes_the_test_split_s_predictions_as_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Lightning's predict keeps nothing without a writer: the run said nothing, wrote nothing.
    import csv

    monkeypatch.chdir(tmp_path)
    quiet = ["--trainer.enable_progress_bar", "false"]
    assert main(["fit", "--trainer.max_epochs", "1", *quiet]) == 0
    capsys.readouterr()
    assert main(["predict", "--ckpt_path", "last", *quiet]) == 0, capsys.readouterr().err
    path = Path("lightning_logs/version_1/predictions.csv")
    assert f"predictions: {path} (359 images)" in capsys.readouterr().out
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["index"]) for r in rows] == list(range(359))
    # Its accuracy is what Trainer.test reports for the same checkpoint.
    model = classic_cnns.load_model("lightning_logs/version_0/checkpoints/last.ckpt")
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    (tested,) = trainer.test(model, datamodule=classic_cnns.Digits(), verbose=False)
    accuracy = sum(r["class"] == r["label"] for r in rows) / len(rows)
    assert accuracy == pytest.approx(tested["test_acc"], abs=1e-6)


def test_a_second_run_without_a_logger_in_one_folder_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run = ["fit", "--trainer.logger=false", "--trainer.max_epochs=1", *ONE_BATCH]
    assert main(run) == 0
    saved = Path("config.yaml").read_text()
    assert main(run) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"classic-cnns fit: error: {tmp_path / 'config.yaml'}: an earlier run saved its "
        "configuration there. To keep it, run in another folder (--trainer.default_root_dir"
    ), err
    assert Path("config.yaml").read_text() == saved  # the earlier run's, kept
    # Resuming it: another folder, from this one's checkpoint ("last" would look in DIR).
    assert main([*run, "--trainer.max_epochs=1", "--ckpt_path=last"]) == 2
    assert re.search(
        r"this folder by default\) and resume from the file: --ckpt_path \S*checkpoints/last\.ckpt",
        capsys.readouterr().err,
    )
    # With a logger, the same version twice: a new version is what keeps the first.
    versioned = [run[0], "--trainer.logger.init_args.version=v0", *run[2:]]  # the CSVLogger
    assert main(versioned) == 0
    logs = {p.name: p.read_bytes() for p in Path("lightning_logs/v0").iterdir() if p.is_file()}
    assert "metrics.csv" in logs
    assert main(versioned) == 2
    assert "To keep it, give the logger a new version (--trainer.logger.init_args.version)" in (
        capsys.readouterr().err
    )
    # Refused before the logger took the folder: its metrics.csv had gone (the CSV logger
    # deletes an existing one), and the README's resume with -c config.yaml met the same.
    again = ["fit", "-c", "lightning_logs/v0/config.yaml", "--ckpt_path", "last"]
    assert main(again) == 2
    assert {n: Path("lightning_logs/v0", n).read_bytes() for n in logs} == logs


def test_a_run_without_a_logger_replaces_no_file_it_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without a logger a run writes in default_root_dir itself, where a user's files may be:
    # it is refused before its first batch, and leaves nothing behind (no config.yaml, which
    # would refuse the next run there).
    monkeypatch.chdir(tmp_path)
    quiet = ["--trainer.enable_progress_bar=false", "--trainer.limit_train_batches=1",
             "--trainer.limit_val_batches=1", "--trainer.limit_test_batches=1",
             "--trainer.limit_predict_batches=1", "--trainer.max_epochs=1"]  # fmt: skip
    assert main(["fit", *quiet]) == 0, capsys.readouterr().err  # with the default logger
    ckpt = ["--ckpt_path", "lightning_logs/version_0/checkpoints/last.ckpt"]
    mine = tmp_path / "mine"
    mine.mkdir()
    names = ["confusion_matrix.csv", "curves.png", "predictions.csv"]
    for name in names:
        (mine / name).write_text(f"the user's {name}\n")
    here = ["--trainer.logger=false", "--trainer.default_root_dir=mine", *quiet]
    capsys.readouterr()
    for command, name in (("test", "confusion_matrix.csv"), ("predict", "predictions.csv"),
                          ("fit", "curves.png")):  # fmt: skip
        assert main([command, *here, *(ckpt if command != "fit" else [])]) == 2
        err = capsys.readouterr().err
        assert f"{name}: the file exists, and this run's " in err, err
        assert "run in another folder (--trainer.default_root_dir DIR" in err
        assert "or with a logger, which gives each run a new version_N folder" in err
        assert sorted(p.name for p in mine.iterdir()) == names  # nothing trained, written
        assert all((mine / n).read_text() == f"the user's {n}\n" for n in names)
    # With a logger each run has its own folder: no clash.
    assert main(["test", "--trainer.default_root_dir=mine", *quiet, *ckpt]) == 0
    assert (mine / "lightning_logs" / "version_0" / "confusion_matrix.csv").is_file()
    # The file moved away, the run goes ahead.
    (mine / "predictions.csv").unlink()
    assert main(["predict", *here, *ckpt]) == 0, capsys.readouterr().err
    assert (mine / "predictions.csv").read_text().startswith("index,label,class,")


def test_ckpt_path_with_a_safetensors_file_says_to_give_it_as_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from classic_cnns.export import export_model

    monkeypatch.chdir(tmp_path)
    export_model(classic_cnns.LeNet5(), "model.safetensors", "safetensors")
    quiet = ["--trainer.enable_progress_bar=false", "--trainer.limit_test_batches=1"]
    for command in ("fit", "test"):
        assert main([command, "--ckpt_path", "model.safetensors", *quiet]) == 2
        assert capsys.readouterr().err.startswith(
            f"classic-cnns {command}: error: --ckpt_path model.safetensors: a safetensors file "
            "holds network weights only, not a Lightning checkpoint (.ckpt); give it as "
            "--weights model.safetensors instead\n"
        )
    assert main(["test", "--weights", "model.safetensors", *quiet]) == 0  # as it says
    # A torch.save'd state dict likewise (Lightning's restore had a KeyError's traceback).
    torch.save(classic_cnns.LeNet5().net.state_dict(), "sd.pt")
    for command in ("fit", "test", "predict"):
        assert main([command, "--ckpt_path", "sd.pt", *quiet]) == 2
        assert capsys.readouterr().err.startswith(
            f"classic-cnns {command}: error: --ckpt_path sd.pt: not a Lightning checkpoint (a "
            ".ckpt that Trainer.save_checkpoint writes, with the run's state), but weights "
            "alone (a state dict); give it as --weights sd.pt instead\n"
        )
    assert main(["test", "--weights", "sd.pt", *quiet]) == 0


def test_predict_folder_says_why_an_output_is_refused_even_with_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trainer = L.Trainer(logger=False, enable_progress_bar=False)
    trainer.strategy.connect(classic_cnns.LeNet5())
    ckpt = tmp_path / "a.ckpt"
    trainer.save_checkpoint(ckpt)
    saved = ckpt.read_bytes()
    images = tmp_path / "images"
    (images / "0").mkdir(parents=True)
    write_png(torch.zeros(1, 28, 28, dtype=torch.uint8), images / "0" / "0.png")
    for output, why in ((ckpt, "the checkpoint itself; pick another"),
                        (images, "a folder; give a file")):  # fmt: skip
        command = ["predict-folder", str(ckpt), str(images), "--recursive", "--output",
                   str(output), "--overwrite"]  # fmt: skip
        assert main(command) == 2
        assert (
            capsys.readouterr().err
            == f"classic-cnns predict-folder: error: --output {output} is {why}\n"
        )
    assert ckpt.read_bytes() == saved
    (tmp_path / "out.csv").write_text("kept\n")
    assert (
        main(["predict-folder", str(ckpt), str(images), "--output", str(tmp_path / "out.csv")]) == 2
    )
    assert "predict-folder: error: " in (err := capsys.readouterr().err)
    assert "out.csv exists; pass --overwrite to replace it\n" in err


def test_default_root_dir_holds_the_logs_and_last_resumes_from_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As with Lightning's own default logger: logs and checkpoints go under the root.
    monkeypatch.chdir(tmp_path)
    run = ["fit", "--trainer.default_root_dir=runs/exp1", "--trainer.max_epochs=1", *ONE_BATCH]
    assert main(run) == 0
    version = tmp_path / "runs" / "exp1" / "lightning_logs" / "version_0"
    assert {"metrics.csv", "config.yaml", "hparams.yaml"} <= {p.name for p in version.iterdir()}
    assert (version / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "lightning_logs").exists()
    assert main([*run, "--ckpt_path=last"]) == 0  # the resumed run records the file it found
    resumed = (version.parent / "version_1" / "config.yaml").read_text()
    last = Path("runs/exp1/lightning_logs/version_0/checkpoints/last.ckpt")  # as str(Path) shows it
    assert Path(yaml.safe_load(resumed)["ckpt_path"]) == last
    # "last" is that file: a --model flag it contradicts is refused.
    capsys.readouterr()
    assert main([*run, "--ckpt_path=last", "--model.lr=0.05"]) == 2
    assert (
        f"--model.lr 0.05 (its 0.1): the checkpoint {last} rebuilds its own model (LeNet5, arch "
        "'lenet5'), which these settings contradict"
    ) in capsys.readouterr().err
    # The run's config.yaml, given with another root, writes there: its logger follows.
    assert "save_dir: .\n" in (version / "config.yaml").read_text()
    again = ["fit", "-c", str(version / "config.yaml"), "--trainer.default_root_dir=runs/exp2"]
    assert main(again) == 0, capsys.readouterr().err
    assert (tmp_path / "runs" / "exp2" / "lightning_logs" / "version_0" / "config.yaml").is_file()
    assert sorted(p.name for p in version.parent.iterdir()) == ["version_0", "version_1"]


def test_ckpt_path_last_rebuilds_the_last_run_s_model_in_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # "last" is found before the model is built, so it is what the file would be: the
    # checkpoint's own model, without repeating the run's --model flags.
    monkeypatch.chdir(tmp_path)
    quiet = ["--trainer.enable_progress_bar=false", "--trainer.limit_val_batches=1",
             "--trainer.limit_test_batches=1"]  # fmt: skip
    fit = ["fit", "--model=resnet20", "--trainer.max_epochs=1", "--trainer.limit_train_batches=1"]
    assert main([*fit, *quiet]) == 0, capsys.readouterr().err
    ckpt = Path("lightning_logs/version_0/checkpoints/last.ckpt")
    for command in ("validate", "test"):
        assert main([command, "--ckpt_path=last", *quiet]) == 0, capsys.readouterr().err
    config = yaml.safe_load(Path("lightning_logs/version_2/config.yaml").read_text())
    assert Path(config["ckpt_path"]) == ckpt
    assert config["model"]["class_path"] == "classic_cnns.ResNet"
    assert config["model"]["init_args"]["arch"] == "resnet20"
    capsys.readouterr()
    assert main(["test", "--ckpt_path=last", "--model=LeNet5", *quiet]) == 2
    assert f"--model LeNet5: the checkpoint {ckpt} rebuilds its own model (ResNet" in (
        capsys.readouterr().err
    )


def test_ckpt_path_last_looks_where_the_run_s_logger_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the default CSV logger moves to default_root_dir: a list of loggers writes under
    # its own save_dir, and "last" is the newest run there, not an older one under the root.
    monkeypatch.chdir(tmp_path)
    quiet = ["--trainer.enable_progress_bar=false", "--trainer.limit_val_batches=1",
             "--trainer.limit_test_batches=1", "--trainer.default_root_dir=runs"]  # fmt: skip
    fit = ["fit", "--trainer.max_epochs=1", "--trainer.limit_train_batches=1", *quiet]
    assert main(fit) == 0, capsys.readouterr().err  # LeNet-5 in runs/lightning_logs
    listed = ["--trainer.logger", "[{class_path: CSVLogger, init_args: {save_dir: .}}]"]
    assert main([*fit, "--model=resnet20", *listed]) == 0, capsys.readouterr().err
    assert main(["test", "--ckpt_path=last", *quiet, *listed]) == 0, capsys.readouterr().err
    config = yaml.safe_load(Path("lightning_logs/version_1/config.yaml").read_text())
    assert Path(config["ckpt_path"]) == Path("lightning_logs/version_0/checkpoints/last.ckpt")
    assert config["model"]["init_args"]["arch"] == "resnet20"
    # A --config file's model settings are checked against "last" as flags are.
    lr = ["--model.lr=0.05", "--trainer.logger.init_args.version=lr"]
    assert main([*fit, "--model=resnet20", *listed, *lr]) == 0, capsys.readouterr().err
    assert main([*fit, "--model=resnet20", *listed]) == 0, capsys.readouterr().err
    capsys.readouterr()
    earlier = ["-c", "lightning_logs/lr/config.yaml", "--ckpt_path=last"]
    assert main(["fit", *earlier, "--trainer.logger.init_args.version=again"]) == 2
    last = Path("lightning_logs/version_2/checkpoints/last.ckpt")
    assert f"--model.lr 0.05 (its 0.1): the checkpoint {last}" in capsys.readouterr().err


RUNS_LOGGER = """
from lightning.pytorch.loggers import Logger


class RunsLogger(Logger):
    # Logs nothing; run VERSION writes in ROOT/VERSION, checkpoints in ROOT/VERSION/checkpoints.
    def __init__(self, root: str = "runs", version: str = "a") -> None:
        super().__init__()
        self._root, self._version = root, version

    name = property(lambda self: ".")
    version = property(lambda self: ".")
    root_dir = property(lambda self: self._root)
    save_dir = property(lambda self: f"{self._root}/{self._version}")

    def log_metrics(self, metrics, step=None):
        pass

    def log_hyperparams(self, params, *args, **kwargs):
        pass
"""


def test_ckpt_path_last_of_a_logger_the_configuration_does_not_place_checks_fit_s_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another logger's folder is known once the trainer is built, after the model: a fit
    # resuming "last" there with other hyperparameters is refused (README, Resuming).
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs_logger.py").write_text(RUNS_LOGGER)
    monkeypatch.syspath_prepend(str(tmp_path))
    fit = ["fit", "--trainer.max_steps=1", "--trainer.enable_progress_bar=false",
           "--trainer.limit_val_batches=1", "--trainer.limit_test_batches=1",
           "--trainer.logger=runs_logger.RunsLogger"]  # fmt: skip
    assert main([*fit, "--model.lr=0.05"]) == 0, capsys.readouterr().err
    last = Path("runs", "a", "checkpoints", "last.ckpt")
    assert last.is_file()
    again = [*fit, "--trainer.logger.version=b", "--ckpt_path=last"]
    assert main([*again, "--model.lr=0.2"]) == 2
    assert (
        f"--ckpt_path last is {last}, a run with lr=0.05; this command gives lr=0.2. Resume "
        "with that run's command, or give the file (--ckpt_path FILE)"
    ) in capsys.readouterr().err
    assert not Path("runs", "b", "checkpoints").exists()


def test_a_stochastic_weight_averaging_run_repeats_from_its_config_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # jsonargparse could not serialise SWA's device=torch.device("cpu"): config.yaml held
    # "Unable to serialize instance cpu", and -c failed once the averaging began.
    monkeypatch.chdir(tmp_path)
    run = ["fit", "--trainer.max_epochs=2", "--trainer.limit_train_batches=3",
           "--trainer.limit_val_batches=1", "--trainer.limit_test_batches=1",
           "--trainer.enable_progress_bar=false", "--trainer.callbacks+=StochasticWeightAveraging",
           "--trainer.callbacks.swa_lrs=0.01", "--trainer.callbacks.swa_epoch_start=1"]  # fmt: skip
    assert main(run) == 0, capsys.readouterr().err
    config = tmp_path / "lightning_logs/version_0/config.yaml"
    assert "      device: cpu\n" in config.read_text()
    again = tmp_path / "again"
    again.mkdir()
    monkeypatch.chdir(again)
    assert main(["fit", "-c", str(config)]) == 0, capsys.readouterr().err
    metrics = "lightning_logs/version_0/metrics.csv"
    assert (again / metrics).read_text() == (tmp_path / metrics).read_text()


FOLDER_LOGGERS = """
from lightning.pytorch.loggers import Logger


class Quiet(Logger):
    # Logs nothing, in save_dir: None, as CometLogger online; ".", as WandbLogger.
    def __init__(self, save_dir=None):
        super().__init__()
        self._save_dir = save_dir

    name = property(lambda self: "quiet")
    version = property(lambda self: 0)
    save_dir = property(lambda self: self._save_dir)

    def log_metrics(self, metrics, step=None):
        pass

    def log_hyperparams(self, params, *args, **kwargs):
        pass
"""


@pytest.mark.parametrize(
    ("save_dir", "advice"),
    [
        ("null", "run in another folder (--trainer.default_root_dir DIR; a run without a logger, "
         "or with one that keeps no folder, writes there"),
        (".", "give the logger another folder (--trainer.logger.init_args.save_dir DIR)"),
    ],
)  # fmt: skip
def test_a_logger_of_another_kind_keeps_the_configuration_and_is_told_how_to_keep_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    save_dir: str, advice: str,
) -> None:  # fmt: skip
    # Without a folder Lightning's config saver failed on a bare AssertionError; a second run
    # in W&B's folder was told to give a new version, which leaves the folder the same.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder_loggers.py").write_text(FOLDER_LOGGERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    fit = ["fit", "--trainer.max_steps=1", "--trainer.enable_progress_bar=false",
           "--trainer.limit_val_batches=1", "--trainer.limit_test_batches=1",
           "--trainer.logger=folder_loggers.Quiet",
           f"--trainer.logger.save_dir={save_dir}"]  # fmt: skip
    # A run refused before its first batch (a user's file where its plot goes) takes its
    # config.yaml back: the folder is not its own.
    Path("curves.png").write_text("the user's")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(fit) == 2 and "curves.png: the file exists" in capsys.readouterr().err
        assert sorted(p.name for p in tmp_path.glob("*.*")) == ["curves.png", "folder_loggers.py"]
        Path("curves.png").unlink()
        assert main(fit) == 0, capsys.readouterr().err
    ours = [f"{w.filename}: {w.message}" for w in caught if "classic_cnns" in w.filename]
    assert not [w for w in ours if "deprecated" in w], ours  # jsonargparse's skip_none, say
    saved = Path("config.yaml").read_text()  # the root's, where the plots go
    assert "folder_loggers.Quiet" in saved and Path("curves.png").is_file()
    assert "ckpt_path: null" in saved  # the unset values, kept as Lightning's saver keeps them
    assert main(fit) == 2
    err = capsys.readouterr().err
    assert err.startswith("classic-cnns fit: error: ") and f"To keep it, {advice}" in err, err
    assert Path("config.yaml").read_text() == saved
    # --ckpt_path last finds the run's last.ckpt where Lightning put it (<folder>/<name>/
    # <version>/checkpoints), and the refusal names it: "last" in another folder finds none.
    assert main([*fit, "--ckpt_path=last"]) == 2
    assert re.search(
        r"and resume from the file: --ckpt_path \S*quiet/version_0/checkpoints/last\.ckpt, or",
        capsys.readouterr().err,
    )


@pytest.mark.parametrize("size", [0, 3000])
def test_a_damaged_ckpt_path_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    # Lightning reads --ckpt_path's hyperparameters with a bare torch.load: an EOFError or
    # "[Errno 22] Invalid argument" that names no file.
    monkeypatch.chdir(tmp_path)
    trainer = L.Trainer(logger=False, enable_progress_bar=False)
    trainer.strategy.connect(classic_cnns.LeNet5())
    trainer.save_checkpoint("whole.ckpt")
    Path("cut.ckpt").write_bytes(Path("whole.ckpt").read_bytes()[:size])
    assert main(["validate", "--data", "Digits", "--ckpt_path", "cut.ckpt"]) == 2
    err = capsys.readouterr().err
    what = "the file is empty (0 bytes)" if size == 0 else "the file is truncated or corrupted"
    assert err.startswith(f"classic-cnns validate: error: cut.ckpt: {what}"), err


def test_model_flags_a_checkpoint_contradicts_are_refused_not_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lightning rebuilds the model from the checkpoint's hyperparameters: --model ResNet or
    # --model.lr 0.5 beside --ckpt_path would run the checkpoint's LeNet-5 at its own lr.
    monkeypatch.chdir(tmp_path)
    run = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=1", "--model.lr=0.05"]
    assert main(["fit", *run, "--trainer.enable_progress_bar=false"]) == 0
    Path("lightning_logs/version_0/checkpoints/last.ckpt").rename("m.ckpt")
    base = ["validate", "--data", "Digits", "--ckpt_path", "m.ckpt"]
    for flags, named in (
        (["--model", "ResNet"], "--model ResNet: "),
        (["--model.lr", "0.5"], "--model.lr 0.5 (its 0.05): "),  # the checkpoint's lr too
        (["--model.init_args.lr=0.5", "--model.optimizer=adam"], "--model.lr 0.5 (its 0.05), "),
    ):
        assert main([*base, *flags]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"classic-cnns validate: error: {named}"), err
        assert "the checkpoint m.ckpt rebuilds its own model (LeNet5, arch 'lenet5'), which " in err
        assert "--weights FILE instead of --ckpt_path" in err
    # Flags that agree with it, or none, validate it; so does the class of a checkpoint saved
    # from Python, which records none (its arch's family class rebuilds it).
    trainer = L.Trainer(logger=False, enable_progress_bar=False)
    trainer.strategy.connect(classic_cnns.LeNet5(lr=0.05))
    trainer.save_checkpoint("python.ckpt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for flags in ([], ["--model", "LeNet5", "--model.lr", "0.05"],
                      ["--model", "ImageClassifier"]):  # fmt: skip
            for ckpt in ("m.ckpt", "python.ckpt"):
                args = [*base[:-1], ckpt, *flags, "--trainer.limit_val_batches=1"]
                assert main(args) == 0, capsys.readouterr().err
    assert "val_acc" in capsys.readouterr().out
    # The plots' state in the checkpoint has its callback to go back to.
    assert not [w for w in caught if "Please add the following callbacks" in str(w.message)]
    assert main([*base[:-1], "python.ckpt", "--model", "ResNet"]) == 2
    assert "(LeNet5, arch 'lenet5'), which " in capsys.readouterr().err
    # A family with options of its own (ResNet's zero_init_residual) too: Lightning parsed
    # them against ImageClassifier, which refused them.
    trainer.strategy.connect(classic_cnns.create_model("resnet20", num_classes=10, in_channels=1))
    trainer.save_checkpoint("resnet.ckpt")
    for flags in ([], ["--model", "resnet20"]):
        args = [*base[:-1], "resnet.ckpt", *flags, "--trainer.limit_val_batches=1"]
        assert main(args) == 0, capsys.readouterr().err
    assert main([*base[:-1], "resnet.ckpt", "--model", "LeNet5"]) == 2
    assert "(ResNet, arch 'resnet20'), which " in capsys.readouterr().err
    # A config file's model counts as well: the run's own config.yaml fits its checkpoint;
    # one for another network is refused, not silently replaced by the checkpoint's.
    own = "lightning_logs/version_0/config.yaml"
    assert main(["validate", "-c", own, "--ckpt_path", "m.ckpt", "--data", "Digits"]) == 0
    capsys.readouterr()
    other = yaml.safe_load(Path(own).read_text())
    other["model"] = {"class_path": "classic_cnns.ResNet", "init_args": {"arch": "resnet20"}}
    Path("other.yaml").write_text(yaml.safe_dump(other))
    assert main(["validate", "-c", "other.yaml", "--ckpt_path", "m.ckpt"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("classic-cnns validate: error: --model ResNet, --model.arch 'resnet20'")
    # A config that names the class alone stands for --model alone, not its default arch.
    trainer.strategy.connect(classic_cnns.LeNet5(arch="lenet5_modern"))
    trainer.save_checkpoint("modern.ckpt")
    args = ["validate", "-c", "{model: LeNet5}", "--ckpt_path", "modern.ckpt", "--data", "Digits"]
    assert main([*args, "--trainer.limit_val_batches=1"]) == 0, capsys.readouterr().err


def test_no_validation_split_is_no_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder
) -> None:
    # --data.val_size 0 asks for no validation: Lightning's "Total length of `list` across
    # ranks is zero. Please make sure this was your intention." is not for the user.
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--data.val_size", "0", "--trainer.max_steps", "2"]
    assert main([*args, "--trainer.enable_progress_bar", "false"]) == 0
    assert not [w for w in recwarn if "across ranks is zero" in str(w.message)]
    assert "val_acc" not in logged_metrics(tmp_path) and "test_acc" in logged_metrics(tmp_path)


def test_fit_on_train_and_val_folders_alone_skips_the_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The documented train/ + val/ layout without test/: fit succeeds and says it did not test.
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images[:60], digits.target[:60], strict=True)):
        folder = tmp_path / "photos" / ("val" if i % 4 == 0 else "train") / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = torch.tensor(image * 255 / 16).round().to(torch.uint8)[None]
        write_png(pixels, str(folder / f"{i}.png"))
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--data", "ImageFolder", "--data.root", "photos", "--data.channels", "1"]
    args += ["--trainer.max_steps", "1", "--trainer.enable_progress_bar", "false"]
    assert main(args) == 0, capsys.readouterr().err
    assert "not tested: ImageFolder has no test images" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("trainer", "folder"),
    [
        ({}, "lightning_logs/version_3/checkpoints"),
        ({"default_root_dir": "runs", "logger": True}, "runs/lightning_logs/version_0/checkpoints"),
        ({"logger": False, "default_root_dir": "runs"}, "runs/checkpoints"),
        ({"logger": [], "callbacks": [{"class_path": "ModelCheckpoint",
                                       "init_args": {"dirpath": "mine"}}]}, "mine"),
        ({"logger": False, "callbacks": {"class_path": "ModelCheckpoint",
                                         "init_args": {"dirpath": "one"}}}, "one"),
        ({"logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                     "init_args": {"save_dir": "logs", "name": "exp"}}}, "logs/exp/v/checkpoints"),
        # The default CSV logger moves to default_root_dir (place_default_logger); a list
        # of loggers, or another logger, stays where its save_dir says.
        ({"default_root_dir": "runs", "logger": {
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            "init_args": {"save_dir": "."}}}, "runs/lightning_logs/version_2/checkpoints"),
        ({"default_root_dir": "runs", "logger": [
            {"class_path": "lightning.pytorch.loggers.CSVLogger",
             "init_args": {"save_dir": "."}}]}, "lightning_logs/version_2/checkpoints"),
        ({"default_root_dir": "runs", "logger": [
            {"class_path": "lightning.pytorch.loggers.TensorBoardLogger",
             "init_args": {"save_dir": ".", "name": ""}}]}, "version_1/checkpoints"),
    ],
)  # fmt: skip
def test_configured_last_checkpoint_reads_the_folders_from_the_trainer_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trainer: dict[str, Any], folder: str
) -> None:
    # Where Lightning's trainer so configured writes: its logger's root_dir, its callbacks'
    # dirpath, or default_root_dir/checkpoints without a logger.
    from jsonargparse import Namespace

    from classic_cnns._cli_ckpt import configured_last_checkpoint
    from classic_cnns._cli_loggers import place_default_logger

    def parsed(value: Any) -> Any:  # nested Namespaces, as the CLI's parser makes them
        if isinstance(value, dict):
            return Namespace(**{k: parsed(v) for k, v in value.items()})
        return [parsed(v) for v in value] if isinstance(value, list) else value

    monkeypatch.chdir(tmp_path)
    config = parsed(trainer)
    place_default_logger(config)  # as the command line does first
    assert configured_last_checkpoint(config) is None  # nothing saved yet
    Path(folder).mkdir(parents=True)
    (Path(folder) / "last.ckpt").write_bytes(b"")
    assert configured_last_checkpoint(config) == Path(folder) / "last.ckpt"
    wandb = {"logger": {"class_path": "lightning.pytorch.loggers.WandbLogger"}}
    assert configured_last_checkpoint(parsed(wandb)) is None  # its folder: not configured


def test_evaluating_from_weights_needs_every_tensor_of_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    mnist_raw: Path,
) -> None:  # fmt: skip
    # fit --weights starts from what fits (a fresh head for other classes); test --weights
    # would score that fresh head, so there every tensor must load.

    from classic_cnns.data.mnist import read_idx
    from classic_cnns.export import export_model

    monkeypatch.chdir(tmp_path)
    model = classic_cnns.LeNet5()
    trainer = L.Trainer(logger=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint("w.ckpt")
    export_model(model, "w.safetensors", "safetensors")
    quiet = ["--trainer.enable_progress_bar=false", "--trainer.limit_test_batches=1"]
    for weights in ("w.ckpt", "w.safetensors"):  # the same ten classes: tested
        assert main(["test", "--weights", weights, *quiet]) == 0, capsys.readouterr().err
    # Another network's file: no advice to fine-tune it, which would not help.
    assert main(["test", "--weights", "w.ckpt", "--model", "resnet20", *quiet]) == 2
    err = capsys.readouterr().err
    assert "w.ckpt holds a 'lenet5' network; got arch='resnet20'" in err
    assert "fine-tune" not in err
    images = read_idx(mnist_raw / "t10k-images-idx3-ubyte.gz")[:100]
    labels = read_idx(mnist_raw / "t10k-labels-idx1-ubyte.gz")[:100]
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        if label != 8:  # nine classes: the head would be fresh
            Path(f"nine/{label}").mkdir(parents=True, exist_ok=True)
            write_png(image[None], f"nine/{label}/{i}.png")
    nine = ["--data=ImageFolder", "--data.root=nine", "--data.channels=1", "--data.test_size=1"]
    capsys.readouterr()
    assert main(["test", "--weights", "w.ckpt", *nine, *quiet]) == 2
    err = capsys.readouterr().err
    assert "do not fit LeNet5Net" in err and "To test, the weights must fit the whole model" in err
    ten = "--data.classes=" + json.dumps([str(d) for d in range(10)])  # numbered as the model's
    assert main(["test", "--weights", "w.ckpt", *nine, ten, *quiet]) == 0, capsys.readouterr().err
    fit = ["fit", "--weights", "w.ckpt", *nine[:-1], "--trainer.max_steps=1", *quiet]
    assert main(fit) == 0, capsys.readouterr().err  # fine-tuning: a fresh head, as before


def test_a_checkpoint_tested_on_some_of_its_classes_says_how(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The data's 7 classes build the model, so the checkpoint's 10-class head cannot load:
    # the message names both sets of classes and --data.classes, not "another architecture".
    monkeypatch.chdir(tmp_path)
    quiet = ["--trainer.enable_progress_bar=false", "--trainer.limit_test_batches=1"]
    fit = ["fit", "--trainer.max_epochs=1", "--trainer.limit_train_batches=1", *quiet]
    assert main([*fit, "--trainer.limit_val_batches=1"]) == 0, capsys.readouterr().err
    digits = classic_cnns.Digits()
    digits.setup("test")
    images, labels = digits._splits["test"]
    for i, (image, label) in enumerate(zip(images[:60], labels[:60].tolist(), strict=True)):
        if label >= 3:
            Path(f"some/{label}").mkdir(parents=True, exist_ok=True)
            write_png(image, f"some/{label}/{i}.png")
    some = ["--data=ImageFolder", "--data.root=some", "--data.channels=1", "--data.test_size=1"]
    ckpt = "lightning_logs/version_0/checkpoints/last.ckpt"
    capsys.readouterr()
    assert main(["test", "--ckpt_path", ckpt, *some, *quiet]) == 2
    err = capsys.readouterr().err
    assert "the checkpoint was trained on the classes ['0', '1', '2', '3'," in err
    assert "the data has ['3', '4', '5', '6', '7', '8', '9']" in err and "--data.classes" in err
    ten = "--data.classes=" + json.dumps([str(d) for d in range(10)])
    assert main(["test", "--ckpt_path", ckpt, *some, ten, *quiet]) == 0, capsys.readouterr().err


def test_a_config_section_of_arguments_alone_keeps_the_default_class(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `data: {batch_size: 32}` counted as choosing a class: the abstract InMemoryDataModule
    # ran, and failed with an empty message. Arguments go to the default class, as the flags'
    # --data.batch_size 32 do; a model section naming its arch still builds that arch.
    monkeypatch.chdir(tmp_path)
    Path("args.yaml").write_text("data:\n  batch_size: 32\nmodel:\n  lr: 0.05\n")
    Path("arch.yaml").write_text("model:\n  init_args:\n    arch: resnet20\n")
    run = ["--trainer.max_steps=1", "--trainer.limit_val_batches=1", "--trainer.logger=false",
           "--trainer.limit_test_batches=1", "--trainer.enable_progress_bar=false"]  # fmt: skip
    for i, config in enumerate(("args.yaml", "arch.yaml")):
        assert main(["fit", "-c", config, *run, f"--trainer.default_root_dir=r{i}"]) == 0, (
            capsys.readouterr().err
        )
    saved = [yaml.safe_load(Path(f"r{i}/config.yaml").read_text()) for i in range(2)]
    assert saved[0]["data"]["class_path"] == "classic_cnns.Digits"
    assert saved[0]["data"]["init_args"]["batch_size"] == 32
    assert saved[0]["model"]["class_path"] == "classic_cnns.LeNet5"
    assert saved[0]["model"]["init_args"]["lr"] == 0.05
    assert saved[1]["model"]["init_args"]["arch"] == "resnet20"


@pytest.mark.parametrize("command", ["fit", "validate"])
@pytest.mark.parametrize("flag", ["--trainer.max_epoch", "--conf", "--seed"])
def test_an_abbreviated_flag_is_refused(
    capsys: pytest.CaptureFixture[str], command: str, flag: str
) -> None:
    # argparse took a flag's prefix for the flag; the CLI reads --config and --model by their
    # full names, so `--conf FILE` with `model: alexnet` in FILE failed as "not a class".
    assert (
        main([command, "--model", "lenet5", "--data", "Digits", flag, "2", "--print_config"]) == 2
    )
    assert f"unrecognized arguments: {flag} 2" in capsys.readouterr().err


@pytest.mark.parametrize(("given", "cls"), [("Resnet", "ResNet"), ("densenet", "DenseNet")])
def test_a_class_name_in_another_case_is_suggested(
    capsys: pytest.CaptureFixture[str], given: str, cls: str
) -> None:
    # --help says --model takes a class or a registered name; the error suggested only names.
    assert main(["fit", "--model", given, "--print_config"]) == 2
    assert f"unknown model '{given}'" in (err := capsys.readouterr().err)
    assert f"Or the class '{cls}': --model {cls}" in err
