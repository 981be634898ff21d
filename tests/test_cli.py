"""The classic-cnns console script, run as a user would run it."""

import glob
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from classic_cnns import list_models, model_info
from classic_cnns.cli import _expand_model_names, main, model_table
from conftest import logged_metrics


def test_list_prints_every_model_with_its_parameter_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["name", "class", "year", "params", "input", "(C,H,W)", "min", "(H,W)"]
    rows = {line.split()[0]: line.split() for line in out[1:]}
    assert sorted(rows) == list_models()
    for name, row in rows.items():
        assert row[3] == f"{model_info(name).num_params:,}"
    assert rows["lenet5"] == ["lenet5", "LeNet5", "1998", "61,706", "1x32x32", "32x32"]


def test_list_with_a_pattern_and_without_a_match(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "lenet5_*"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]] == [
        "lenet5_bn",
        "lenet5_modern",
    ]
    assert main(["list", "vgg99*"]) == 1
    assert "no registered model matches 'vgg99*'" in capsys.readouterr().err


def test_no_or_unknown_command_says_what_is_expected(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert (
        "expected a command (list, summary, export, predict-folder, bench, fit, validate, "
        "test, predict); got nothing" in capsys.readouterr().err
    )
    assert main(["train"]) == 2
    assert "got 'train'" in capsys.readouterr().err


def test_registered_names_expand_to_their_family_class() -> None:
    assert _expand_model_names(["fit", "--model", "lenet5_bn", "--data=Digits"]) == [
        "fit",
        "--model",
        "classic_cnns.LeNet5",
        "--model.arch=lenet5_bn",
        "--data=Digits",
    ]
    assert _expand_model_names(["fit", "--model=LeNet5"]) == ["fit", "--model=LeNet5"]


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


def test_ci_runs_exactly_the_readme_test_command() -> None:
    root = Path(__file__).parents[1]
    command = (
        'python3 -m venv .venv && .venv/bin/pip install -e ".[dev]" && .venv/bin/python -m pytest'
    )
    assert f"\n{command}\n" in (root / "README.md").read_text()
    assert f"\n{command}\n" in (root / ".ci" / "run").read_text()


@pytest.mark.slow
def test_the_readme_new_user_path_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The README's lines from install to an exported model, run through the console script's
    # entry point (the install line is what .ci/run and check_wheel cover).
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    start, end = "<!-- new-user:start -->\n```bash\n", "```\n<!-- new-user:end -->"
    lines = readme[readme.index(start) + len(start) : readme.index(end)].splitlines()
    assert lines[0] == 'pip install "classic-cnns[export]"'
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
