"""The scripts in examples/ run as a user runs them and write what they promise."""

from __future__ import annotations

import csv
import runpy
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import DATA_ENV, MNIST_RAW, T10K_IMAGES, T10K_LABELS, require_data

EXAMPLES = Path(__file__).parents[1] / "examples"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
def test_regression_example_fits_the_curve_and_writes_its_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    argv = ["regression.py", "--out", str(out), "--epochs", "60", "--every", "20"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(EXAMPLES / "regression.py"), run_name="__main__")

    with (out / "losses.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 61))
    losses = [float(r["train_loss"]) for r in rows]
    # The untrained fit is far off; 60 full-batch Adam steps take the MSE well down towards
    # the noise's mean square (0.042 here, 0.2 ** 2 = 0.04 expected), which no fit beats by much.
    assert losses[-1] < 0.5 * losses[0], losses
    assert 0.02 < losses[-1] < 0.1, losses[-1]

    with Image.open(out / "fit.gif") as gif:
        gif.verify()
    with Image.open(out / "fit.gif") as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == 4  # epochs 0, 20, 40, 60
        first = gif.convert("RGB").tobytes()
        gif.seek(gif.n_frames - 1)
        assert gif.convert("RGB").tobytes() != first  # the curve moved
    with Image.open(out / "loss.png") as png:
        png.verify()
    with Image.open(out / "loss.png") as png:
        assert png.format == "PNG"
        assert png.width > 100 and png.height > 100


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--points", "1"], "--points must be at least 2; got 1"),
        (["--lr", "-1"], "--lr must be a finite number > 0; got -1.0"),
        (["--noise", "-0.1"], "--noise must be a finite number >= 0; got -0.1"),
        (["--hidden", "0"], "--hidden must be at least 1; got 0"),
        (["--out", "{file}"], "is a file; expected a folder (created if missing)"),
    ],
)
def test_regression_example_refuses_bad_flags_before_training(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    # A file given as --out was found only after the whole training; the others raised
    # tracebacks from deep inside (CurveData, torch's Adam).
    (tmp_path / "a-file").write_text("kept\n")
    flags = [f.replace("{file}", str(tmp_path / "a-file")) for f in flags]
    argv = ["regression.py", "--out", str(tmp_path / "out"), *flags]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(EXAMPLES / "regression.py"), run_name="__main__")
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert (tmp_path / "a-file").read_text() == "kept\n"


def test_regression_example_s_data_and_loss_axis_are_the_ones_its_docstrings_give(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = runpy.run_path(str(EXAMPLES / "regression.py"))
    data = example["CurveData"]("sine", n_points=5, noise=0.0)
    assert data.x.squeeze(1).tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]  # evenly, on [-1, 1]
    assert data.y.squeeze(1).tolist() == pytest.approx([0.0, -1.0, 0.0, 1.0, 0.0], abs=1e-6)
    noisy = example["CurveData"]("square", n_points=20_000, noise=0.2, seed=3)
    residual = noisy.y - noisy.x.pow(2)
    assert abs(float(residual.std()) - 0.2) < 0.01 and abs(float(residual.mean())) < 0.01
    # loss.png's axis is a log one ("on a log scale"), the loss per epoch from epoch 1.
    figures: list = []
    monkeypatch.setattr(example["Figure"], "savefig", lambda fig, path: figures.append(fig))
    example["write_loss_curve"]([1.0, 0.1, 0.01], tmp_path / "loss.png")
    (ax,) = figures[0].axes
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "training MSE"
    assert ax.lines[0].get_xdata().tolist() == [1, 2, 3]


@pytest.mark.slow
def test_distillation_example_runs_the_readme_s_commands_and_tabulates_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_data([MNIST_RAW / T10K_IMAGES, MNIST_RAW / T10K_LABELS], "MNIST")
    monkeypatch.setenv(DATA_ENV, str(MNIST_RAW.parents[1]))  # what the fits read
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["distillation.py", "--out", str(out), "--quick"])
    runpy.run_path(str(EXAMPLES / "distillation.py"), run_name="__main__")

    with (out / "distillation.csv").open(newline="") as f:
        rows = {r["run"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["teacher", "lenet5_alone", "lenet5_taught", "lenet5_alone_3",
                          "lenet5_taught_3"]  # fmt: skip
    assert [rows[r]["epochs"] for r in rows] == ["15", "12", "12", "3", "3"]
    teacher = out / "teacher/lightning_logs/version_0/checkpoints/last.ckpt"
    assert teacher.is_file()
    for run, row in rows.items():
        assert 0.0 <= float(row["test_acc"]) <= 1.0 and float(row["fit_took_s"]) > 0
        assert row["command"].startswith(
            f"fit --model {run.split('_')[0].replace('teacher', 'resnet20')}"
        )
        taught = "--model.loss kl_div --model.teacher OUT/teacher/lightning_logs/version_0/"
        assert (taught in row["command"]) == ("taught" in run)
    report = (out / "report.md").read_text().splitlines()
    assert len([line for line in report if line.startswith("| ")]) == 6  # header + 5 runs
    # The accuracies in the table are the CSV's.
    assert f"{100 * float(rows['teacher']['test_acc']):.2f}%" in report[4]
    monkeypatch.setattr(sys, "argv", ["distillation.py", "--out", str(out)])
    with pytest.raises(SystemExit):  # never into an earlier run's folder
        runpy.run_path(str(EXAMPLES / "distillation.py"), run_name="__main__")
