"""TrainingPlots: the curves after fit and the test confusion matrix, checked against the CSV
logger's record and an independent count of the predictions; like PredictionCSV, it replaces
no file that its run did not write."""

from __future__ import annotations

import csv
import logging
import re
import sys
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from classic_cnns import Digits, LeNet5
from classic_cnns.plots import TrainingPlots, plot_confusion_matrix, plot_curves
from classic_cnns.predict import PredictionCSV
from conftest import symlink

pytestmark = pytest.mark.usefixtures("one_thread")


def _trainer(root: Path, plots: TrainingPlots, epochs: int = 2) -> L.Trainer:
    return L.Trainer(
        max_epochs=epochs,
        callbacks=[plots],
        logger=CSVLogger(root),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def _epoch_rows(metrics_csv: Path) -> dict[int, dict[str, float]]:
    rows: dict[int, dict[str, float]] = {}
    with metrics_csv.open() as f:
        for row in csv.DictReader(f):
            epoch = rows.setdefault(int(row["epoch"]), {})
            epoch.update({k: float(v) for k, v in row.items() if v and k not in ("epoch", "step")})
    return rows


def _png_size(path: Path) -> tuple[int, int]:
    # (height, width) from the PNG header; the signature says it is a PNG at all.
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
    return int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big")


def test_curves_and_confusion_matrix_hold_the_run_s_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from classic_cnns import plots as plots_module

    drawn: list[Any] = []  # the confusion matrix figures TrainingPlots draws
    real = plots_module.plot_confusion_matrix
    monkeypatch.setattr(
        plots_module,
        "plot_confusion_matrix",
        lambda *a, **k: drawn.append(real(*a, **k)) or drawn[-1],
    )
    L.seed_everything(0, verbose=False)
    plots = TrainingPlots()
    model, dm = LeNet5(), Digits()
    trainer = _trainer(tmp_path, plots)
    trainer.fit(model, datamodule=dm)
    folder = Path(trainer.log_dir)
    assert min(_png_size(folder / "curves.png")) > 200
    # One row per epoch, equal to what the CSV logger wrote for that epoch.
    logged = _epoch_rows(folder / "metrics.csv")
    assert [h["epoch"] for h in plots.history] == [0.0, 1.0]
    for row in plots.history:
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "val_f1"):
            assert row[key] == pytest.approx(logged[int(row["epoch"])][key], rel=1e-6), key

    test_acc = trainer.test(model, datamodule=dm, verbose=False)[0]["test_acc"]
    assert min(_png_size(folder / "confusion_matrix.png")) > 200
    # The matrix counts the model's own predictions on the test split, computed here apart.
    model.eval()
    predicted, labels = [], []
    with torch.no_grad():
        for i, batch in enumerate(dm.test_dataloader()):
            x, y = dm.on_after_batch_transfer(batch, i)
            predicted.append(model(x).argmax(1))
            labels.append(y)
    pairs = torch.cat(labels) * 10 + torch.cat(predicted)
    expected = torch.bincount(pairs, minlength=100).view(10, 10)
    assert torch.equal(plots.confusion, expected)
    assert float(expected.diag().sum() / expected.sum()) == pytest.approx(test_acc, abs=1e-6)
    with (folder / "confusion_matrix.csv").open() as f:
        table = list(csv.reader(f))
    assert table[0] == ["true \\ predicted", *map(str, range(10))]
    assert [[int(v) for v in row[1:]] for row in table[1:]] == expected.tolist()
    # The figure's title gives the logged test accuracy, in percent.
    (fig,) = drawn
    title = re.fullmatch(r"LeNet5: test accuracy (\d+\.\d\d)%", fig.axes[0].get_title())
    assert title is not None, fig.axes[0].get_title()
    assert float(title[1]) == pytest.approx(100 * test_acc, abs=0.005)


def test_one_callback_for_several_fits_gives_each_run_its_own_curves(tmp_path: Path) -> None:
    # Comparing optimizers in a loop with one TrainingPlots: the second fit kept the first's
    # history (its epochs counted as recorded), so run 2's curves drew run 1's numbers.
    plots = TrainingPlots()
    for optimizer in ("sgd", "adam"):
        L.seed_everything(0, verbose=False)
        trainer = _trainer(tmp_path, plots)
        trainer.fit(LeNet5(optimizer=optimizer), datamodule=Digits(batch_size=128))
        logged = _epoch_rows(Path(trainer.log_dir) / "metrics.csv")
        assert [h["epoch"] for h in plots.history] == [0.0, 1.0], optimizer
        for row in plots.history:
            assert row["train_loss"] == pytest.approx(logged[int(row["epoch"])]["train_loss"])
    assert len(list(tmp_path.glob("lightning_logs/version_*/curves.png"))) == 2


class _WithoutExactResume(LeNet5):  # a module whose resumed metrics restart from zero
    def configure_callbacks(self) -> list[L.Callback]:
        return []


@pytest.mark.parametrize("exact", [True, False], ids=["exact_resume", "metrics_restart"])
def test_a_run_resumed_from_an_epoch_s_validation_keeps_that_epoch_s_point(
    tmp_path: Path, exact: bool
) -> None:
    # With validation every 2nd epoch, last.ckpt is saved after epoch 1's validation, before
    # the epoch's end hooks: the resumed curves keep its validation point. Its training
    # metrics are the whole epoch's where ExactResume put their states back (they were left
    # out, though metrics.csv had them); else they would cover only the batches after the
    # resume, and that epoch has none. The resumed run writes in its own folder.
    def run(
        epochs: int, ckpt: Path | None = None, root: Path = tmp_path
    ) -> tuple[L.Trainer, TrainingPlots]:
        L.seed_everything(0, verbose=False)
        plots = TrainingPlots()
        trainer = L.Trainer(
            max_epochs=epochs, check_val_every_n_epoch=2, default_root_dir=root,
            callbacks=[plots, ModelCheckpoint(save_last=True)], logger=False,
            enable_progress_bar=False, enable_model_summary=False,
        )  # fmt: skip
        model = (LeNet5 if exact else _WithoutExactResume)(scheduler="none")
        trainer.fit(model, datamodule=Digits(), ckpt_path=ckpt)
        return trainer, plots

    run(2)
    _, resumed = run(4, tmp_path / "checkpoints" / "last.ckpt")
    _, whole = run(4, root=tmp_path / "whole")  # a new run: not over the other's files
    assert [h["epoch"] for h in resumed.history] == [0.0, 1.0, 2.0, 3.0]
    if exact:
        assert resumed.history == whole.history and "train_loss" in resumed.history[1]
        return
    one = {k: v for k, v in whole.history[1].items() if not k.startswith("train_")}
    assert resumed.history[1] == one and "val_loss" in one
    assert [resumed.history[i] for i in (0, 2, 3)] == [whole.history[i] for i in (0, 2, 3)]


def test_the_matrix_counts_the_batches_the_metrics_count_with_no_second_forward(
    tmp_path: Path,
) -> None:
    # A test batch with a NaN, skipped under nonfinite="skip", is left out of the matrix as it
    # is of test_acc; the others come from the step's own logits (one forward per batch).
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 1, 32, 32, generator=g), torch.randint(0, 10, (32,), generator=g)
    x[3, 0, 5, 5] = float("nan")  # in the first of four batches of 8
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    model, plots = LeNet5(nonfinite="skip").eval(), TrainingPlots()
    calls = []
    model.net.register_forward_hook(lambda *_: calls.append(1))
    with pytest.warns(UserWarning, match="skipping the batch"):
        result = _trainer(tmp_path, plots).test(model, loader, verbose=False)[0]
    assert len(calls) == 3  # the three good batches, once each
    with torch.no_grad():
        predicted = model(x[8:]).argmax(1)
    expected = torch.bincount(y[8:] * 10 + predicted, minlength=100).view(10, 10)
    assert torch.equal(plots.confusion, expected) and int(expected.sum()) == 24
    assert float(expected.diag().sum() / 24) == pytest.approx(result["test_acc"], abs=1e-6)


def test_a_test_step_of_one_s_own_that_returns_nothing_still_gets_its_matrix(
    tmp_path: Path,
) -> None:
    # Its None was taken for a batch nonfinite="skip" had left out: no matrix, no word.
    class Quiet(LeNet5):
        def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
            super().test_step(batch, batch_idx, dataloader_idx)

    matrices = []
    for cls in (LeNet5, Quiet):
        torch.manual_seed(0)
        plots = TrainingPlots()
        _trainer(tmp_path, plots).test(cls(), datamodule=Digits(), verbose=False)
        assert plots.confusion is not None
        matrices.append(plots.confusion)
    data = Digits()
    data.setup("test")
    images = sum(len(y) for _, y in data.test_dataloader())
    assert torch.equal(matrices[0], matrices[1]) and int(matrices[1].sum()) == images


def test_without_matplotlib_the_drawing_functions_say_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    extra = r"which is not installed: pip install 'classic-cnns\[plot\]'"
    with pytest.raises(ImportError, match=rf"^plot_curves draws with matplotlib, {extra}$"):
        plot_curves([{"epoch": 0, "train_loss": 1.0}])
    with pytest.raises(
        ImportError, match=rf"^plot_confusion_matrix draws with matplotlib, {extra}"
    ):
        plot_confusion_matrix([[1, 0], [0, 1]], ["a", "b"])


def test_without_matplotlib_one_line_says_how_to_get_the_plots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    plots = TrainingPlots()
    trainer, model = _trainer(tmp_path, plots, epochs=1), LeNet5()
    with caplog.at_level(logging.INFO):
        trainer.fit(model, datamodule=Digits())
        trainer.test(model, datamodule=Digits(), verbose=False)
    folder = Path(trainer.log_dir)
    assert not list(folder.glob("*.png"))
    assert (folder / "confusion_matrix.csv").is_file()
    notes = [r.getMessage() for r in caplog.records if "matplotlib" in r.getMessage()]
    assert notes == ["plots skipped: matplotlib is missing (pip install 'classic-cnns[plot]')"] * 2
    # The CSV is still written, so a user's is still refused; figures there are not, as
    # none would be drawn over them.
    mine = tmp_path / "mine"
    mine.mkdir()
    figures = {name: f"a user's {name}".encode() for name in ("curves.png", "confusion_matrix.png")}
    for name, data in figures.items():
        (mine / name).write_bytes(data)
    (mine / "confusion_matrix.csv").write_text("a user's table\n")
    for start in (lambda t: t.fit(model, _loader(), _loader()), lambda t: t.test(model, _loader())):
        with pytest.raises(FileExistsError) as info:
            start(_plain(mine, TrainingPlots()))
        assert str(info.value).startswith(
            f"{mine / 'confusion_matrix.csv'}: the file exists, and this run's TrainingPlots "
            "did not write it"
        )
    assert (mine / "confusion_matrix.csv").read_text() == "a user's table\n"
    (mine / "confusion_matrix.csv").unlink()
    trainer, model = _plain(mine, TrainingPlots()), LeNet5(scheduler="none")
    trainer.fit(model, _loader(), _loader())
    trainer.test(model, _loader(), verbose=False)
    assert (mine / "confusion_matrix.csv").read_text().startswith("true \\ predicted,0,1,")
    assert {name: (mine / name).read_bytes() for name in figures} == figures


def _disk_full(*args: Any, **kwargs: Any) -> None:
    raise OSError(28, "No space left on device")


def test_a_failed_write_leaves_the_earlier_files_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.figure import Figure

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 1, 32, 32, generator=g), torch.randint(0, 10, (16,), generator=g)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    model, folder = LeNet5(scheduler="none"), tmp_path / "plots"

    def run(fit: bool = True, overwrite: bool = True) -> None:  # over the first run's files
        trainer = L.Trainer(
            max_epochs=1, callbacks=[TrainingPlots(folder, overwrite)], logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        )  # fmt: skip
        if fit:
            trainer.fit(model, loader, loader)
        trainer.test(model, loader, verbose=False)

    run(overwrite=False)
    names = ["confusion_matrix.csv", "confusion_matrix.png", "curves.png"]
    assert sorted(p.name for p in folder.iterdir()) == names
    before = {name: (folder / name).read_bytes() for name in names}
    real_savefig, real_writer = Figure.savefig, csv.writer

    def half_a_figure(fig: Any, fname: Any, *args: Any, **kwargs: Any) -> None:
        real_savefig(fig, fname, *args, **kwargs)
        with open(fname, "r+b") as f:  # the disk filled up half-way through
            f.truncate(Path(fname).stat().st_size // 2)
        _disk_full()

    class HeaderOnly:  # a csv.writer whose disk fills up after the first row
        def __init__(self, f: Any, *args: Any, **kwargs: Any) -> None:
            self.rows = 0
            self.writer = real_writer(f, *args, **kwargs)

        def writerow(self, row: list[Any]) -> None:
            self.rows += 1
            if self.rows > 1:
                _disk_full()
            self.writer.writerow(row)

    monkeypatch.setattr(Figure, "savefig", half_a_figure)
    with pytest.raises(OSError, match="No space left"):  # the curves, after fit
        run()
    assert (folder / "curves.png").read_bytes() == before["curves.png"]
    monkeypatch.setattr(csv, "writer", HeaderOnly)
    with pytest.raises(OSError, match="No space left"):  # the CSV, then nothing else
        run(fit=False)
    assert (folder / "confusion_matrix.csv").read_bytes() == before["confusion_matrix.csv"]
    monkeypatch.setattr(csv, "writer", real_writer)
    with pytest.raises(OSError, match="No space left"):  # the matrix figure, after the CSV
        run(fit=False)
    assert (folder / "confusion_matrix.png").read_bytes() == before["confusion_matrix.png"]
    assert sorted(p.name for p in folder.iterdir()) == names  # no temporary file left


def test_the_figures_draw_the_numbers_they_are_given() -> None:
    # Accuracies are fractions in the history and percent on the curves' right panel.
    history = [
        {"epoch": 0.0, "train_loss": 2.0, "train_acc": 0.25, "val_loss": 1.5, "val_acc": 0.5},
        {"epoch": 1.0, "train_loss": 1.0, "train_acc": 0.75, "val_loss": 1.25},
        {"epoch": 2.0, "val_acc": 0.875},  # an epoch without training metrics
    ]
    fig = plot_curves(history)
    drawn = {
        (ax.get_ylabel(), line.get_label()): (list(line.get_xdata()), list(line.get_ydata()))
        for ax in fig.axes
        for line in ax.get_lines()
    }
    assert drawn == {
        ("loss", "training"): ([0, 1], [2.0, 1.0]),
        ("loss", "validation"): ([0, 1], [1.5, 1.25]),
        ("accuracy (%)", "training"): ([0, 1], [25.0, 75.0]),
        ("accuracy (%)", "validation"): ([0, 2], [50.0, 87.5]),
    }
    # A diverged epoch leaves a gap in the line, and the legend names it.
    inf, nan = float("inf"), float("nan")
    diverged = [{"epoch": 0.0, "train_loss": 2.0}, {"epoch": 1.0, "train_loss": inf},
                {"epoch": 2.0, "train_loss": nan}, {"epoch": 3.0, "train_loss": 1.5}]  # fmt: skip
    (line,) = plot_curves(diverged).axes[0].get_lines()
    assert line.get_label() == "training; not finite at epoch 1, 2"
    # Finite only at epoch 0, the loss panel spanned -0.05 to 0.05 (fractional ticks), and
    # the epochs its legend names were off it: it spans the run's epochs, as accuracy does.
    for acc in ({"train_acc": 0.1}, {}):  # with accuracy beside it, or losses alone
        gone = [{"epoch": float(e), "train_loss": 2.0 if e == 0 else nan, **acc}
                for e in range(4)]  # fmt: skip
        fig = plot_curves(gone)
        fig.canvas.draw()
        for ax in fig.axes:
            lo, hi = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
            assert ticks == [0, 1, 2, 3], (ax.get_ylabel(), acc, ticks)
    # The matrix: rows true, columns predicted, both named; each count written in its cell.
    matrix = [[5, 1], [0, 4]]
    ax = plot_confusion_matrix(matrix, ["cat", "dog"]).axes[0]
    for ticks, labels in ((ax.get_xticks(), ax.get_xticklabels()),
                          (ax.get_yticks(), ax.get_yticklabels())):  # fmt: skip
        assert list(ticks) == [0, 1] and [t.get_text() for t in labels] == ["cat", "dog"]
    written = {(int(t.get_position()[1]), int(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert {(i, j) for i in range(2) for j in range(2) if matrix[i][j]} <= set(written)
    assert all(text == str(matrix[i][j]) for (i, j), text in written.items())
    # 1000 classes: the size of 40 (it grew to 50,000 pixels a side), every 25th class named.
    many = plot_confusion_matrix(torch.eye(1000, dtype=torch.long), [f"c{i}" for i in range(1000)])
    assert tuple(many.get_size_inches()) == (19.5, 18.0)
    names = [t.get_text() for t in many.axes[0].get_xticklabels()]
    assert names == [f"c{i}" for i in range(0, 1000, 25)]


@pytest.mark.parametrize(
    ("matrix", "names", "message"),
    [
        ([[1, 0], [0, 1]], ["a", "b", "c"], "C class names; got shape (2, 2) and 3 names"),
        ([3, 4], ["a", "b"], "C class names; got shape (2,) and 2 names"),
        ([[[1]]], ["a"], "got shape (1, 1, 1)"),
        ([], [], "(C >= 1) and C class names; got shape (0,) and 0 names"),
        ([[1, 2], [3]], ["a", "b"], "matrix of counts; could not read one (expected sequence"),
        ([[1, -2], [0, 1]], ["a", "b"], "expected counts of at least 0; got -2"),
        ([[1, float("nan")], [0, 1]], ["a", "b"], "expected whole-number counts; got nan"),
        ([[1, float("inf")], [0, 1]], ["a", "b"], "expected whole-number counts; got inf"),
        ([[0.5, 0.25], [1 / 3, 2 / 3]], ["a", "b"], "expected whole-number counts; got 0.5"),
        # A string of two letters is not two names; None had no len().
        ([[1, 0], [0, 1]], "ab", "expected a sequence of C class names; got 'ab'"),
        ([[1, 0], [0, 1]], None, "expected a sequence of C class names; got None"),
    ],
)
def test_a_confusion_matrix_must_be_square_counts_with_a_name_per_class(
    matrix: list, names: list[str], message: str
) -> None:
    with pytest.raises(ValueError) as info:
        plot_confusion_matrix(matrix, names)
    assert message in str(info.value)


def test_a_confusion_matrix_takes_whole_counts_of_any_numeric_dtype() -> None:
    # uint32 counts (numpy's from some tools) had no comparison in torch; float counts of
    # whole numbers are shown as ints; a zero cell is left blank.
    import numpy as np

    for matrix in (
        np.array([[1, 2], [3, 0]], dtype=np.uint32),
        [[1.0, 2.0], [3.0, 0.0]],
        torch.tensor([[1, 2], [3, 0]], dtype=torch.int16),
    ):
        figure = plot_confusion_matrix(matrix, ["a", "b"])
        assert [t.get_text() for t in figure.axes[0].texts] == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ([], "expected a non-empty list of dicts, one per epoch; got []"),
        ([{"train_loss": 1.0}], "to hold a number 'epoch'; got {'train_loss': 1.0}"),
        ([{"epoch": 0, "train_loss": None}], "expected train_loss to be a number; got None at"),
        ([{"epoch": 0, "val_acc": "0.9"}], "expected val_acc to be a number; got '0.9' at epoch 0"),
    ],
)
def test_curves_need_an_epoch_and_numbers(history: list, message: str) -> None:
    with pytest.raises(ValueError) as info:
        plot_curves(history)
    assert message in str(info.value)


def test_curves_are_drawn_in_the_order_of_their_epochs() -> None:
    figure = plot_curves([{"epoch": 2, "train_loss": 0.5}, {"epoch": 0, "train_loss": 1.5}])
    (line,) = figure.axes[0].get_lines()
    assert list(line.get_xdata()) == [0, 2] and list(line.get_ydata()) == [1.5, 0.5]


def test_the_curves_say_what_the_training_loss_adds(tmp_path: Path, monkeypatch) -> None:
    from classic_cnns import GoogLeNet, create_model
    from classic_cnns import plots as plots_module

    assert LeNet5().train_loss_terms == ""  # the validation's cross-entropy
    assert LeNet5(label_smoothing=0.1).train_loss_terms == "labels smoothed by 0.1"
    student = create_model("lenet5", loss="kl_div", teacher="t.ckpt", alpha=0.5, temperature=2)
    assert student.train_loss_terms == "distillation: 0.5 x KL at T=2 + 0.5 x CE"
    hinton = create_model("lenet5", loss="kl_div", teacher="t.ckpt", alpha=0.9, temperature=4)
    assert hinton.train_loss_terms == "distillation: 0.9 x KL at T=4 + 0.1 x CE"  # the loss's own
    net = GoogLeNet(num_classes=10, small_input=True, label_smoothing=0.1)
    assert net.train_loss_terms == "labels smoothed by 0.1, + 0.3 x each auxiliary head's"
    assert GoogLeNet(num_classes=10, aux_logits=False).train_loss_terms == ""
    # TrainingPlots passes them to the curves' legend.
    drawn: list[Any] = []
    real = plots_module.plot_curves
    monkeypatch.setattr(plots_module, "plot_curves", lambda *a: drawn.append(real(*a)) or drawn[0])
    L.seed_everything(0, verbose=False)
    _trainer(tmp_path, TrainingPlots(), epochs=1).fit(LeNet5(label_smoothing=0.1), Digits())
    (fig,) = drawn
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == ["training (labels smoothed by 0.1)", "validation"]
    # And what the datamodule does to the training labels: MixUp, CutMix.
    drawn.clear()
    dm = Digits(mixup_alpha=0.2, cutmix_alpha=1.0)
    _trainer(tmp_path / "mixed", TrainingPlots(), epochs=1).fit(LeNet5(), dm)
    labels = drawn[0].axes[0].get_legend_handles_labels()[1]
    mixed = "MixUp (alpha 0.2) and CutMix (alpha 1)"
    assert labels == [f"training (labels mixed by {mixed})", "validation"]


def _loader(n: int = 16) -> torch.utils.data.DataLoader:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 1, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)


def _plain(root: Path, callback: L.Callback) -> L.Trainer:
    # Without a logger, as in many scripts: the files go to default_root_dir itself.
    return L.Trainer(
        max_epochs=1, default_root_dir=root, logger=False, callbacks=[callback],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip


def test_a_file_the_run_did_not_write_is_refused_before_the_first_batch(tmp_path: Path) -> None:
    loader, model = _loader(), LeNet5(scheduler="none")
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    mine = tmp_path / "confusion_matrix.csv"
    mine.write_text("a user's table\n")
    # fit too: the test that usually follows writes the matrix.
    for start in (lambda t: t.fit(model, loader, loader), lambda t: t.test(model, loader)):
        with pytest.raises(FileExistsError) as info:
            start(_plain(tmp_path, TrainingPlots()))
        assert str(info.value).startswith(
            f"{mine}: the file exists, and this run's TrainingPlots did not write it but would "
            "replace it. To keep it, run in another folder (--trainer.default_root_dir DIR; in "
            "Python, Trainer(default_root_dir=...)) or with a logger"
        )
    assert mine.read_text() == "a user's table\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["confusion_matrix.csv"]
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())  # untrained
    # A run replaces its own files: fit, then test twice.
    mine.unlink()
    trainer = _plain(tmp_path, TrainingPlots())
    trainer.fit(model, loader, loader)
    trainer.test(model, loader, verbose=False)
    trainer.test(model, loader, verbose=False)
    # Those are another run's for a new one; overwrite=True replaces them.
    with pytest.raises(FileExistsError, match=r"curves\.png: the file exists"):
        _plain(tmp_path, TrainingPlots()).fit(model, loader, loader)
    mine.write_text("a user's table\n")
    _plain(tmp_path, TrainingPlots(overwrite=True)).test(model, loader, verbose=False)
    assert mine.read_text().startswith("true \\ predicted,0,1,")
    # With its own folder, the advice is another one.
    with pytest.raises(FileExistsError, match="To keep it, give TrainingPlots another dirpath"):
        _plain(tmp_path / "x", TrainingPlots(tmp_path)).test(model, loader, verbose=False)
    with pytest.raises(ValueError, match="overwrite must be True or False; got 'yes'"):
        TrainingPlots(overwrite="yes")  # type: ignore[arg-type]
    # A folder that cannot be one is refused when the callback is made, not after training.
    with pytest.raises(NotADirectoryError, match=r"dirpath .*confusion_matrix\.csv is a file"):
        TrainingPlots(mine)
    with pytest.raises(TypeError, match=r"dirpath must be a folder's path .*; got 5"):
        TrainingPlots(5)  # type: ignore[arg-type]
    # A link there would be replaced too, even one to nothing: refused, and left as it was.
    linked, nowhere = tmp_path / "linked", tmp_path / "nowhere.csv"
    linked.mkdir()
    symlink(linked / "confusion_matrix.csv", nowhere)
    with pytest.raises(FileExistsError, match=r"confusion_matrix\.csv: the file exists"):
        _plain(linked, TrainingPlots()).test(model, loader, verbose=False)
    assert (linked / "confusion_matrix.csv").is_symlink() and not nowhere.exists()
    assert [p.name for p in linked.iterdir()] == ["confusion_matrix.csv"]


def test_a_folder_where_a_plot_goes_is_refused_before_the_first_batch(tmp_path: Path) -> None:
    # With overwrite=True it was found after training ("expected a file path; got the
    # folder"), and the test never ran; without, it was called "the file exists".
    loader, model = _loader(), LeNet5(scheduler="none")
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    (tmp_path / "curves.png").mkdir()
    for overwrite in (True, False):
        with pytest.raises(FileExistsError) as info:
            _plain(tmp_path, TrainingPlots(overwrite=overwrite)).fit(model, loader, loader)
        assert str(info.value).startswith(
            f"{tmp_path / 'curves.png'}: a folder, where this run's TrainingPlots writes a file; "
            "expected a file path or nothing there. Run in another folder"
        ), overwrite
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())  # untrained
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]


def test_prediction_csv_replaces_no_file_it_did_not_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loader, model = _loader(), LeNet5()
    mine = tmp_path / "predictions.csv"
    mine.write_text("a user's predictions\n")
    for writer in (PredictionCSV(), PredictionCSV(mine)):  # the run's folder, or a path
        with pytest.raises(
            FileExistsError, match=rf"{re.escape(str(mine))}: the file exists"
        ) as info:
            _plain(tmp_path, writer).predict(model, loader, return_predictions=False)
        advice = "give PredictionCSV another path" if writer.path else "run in another folder"
        assert f"To keep it, {advice}" in str(info.value)
        assert writer.written is None and mine.read_text() == "a user's predictions\n"
    with pytest.raises(IsADirectoryError, match="is a folder; expected the CSV file's path"):
        PredictionCSV(tmp_path)  # found when it is made, not when the rows are moved there
    with pytest.raises(ValueError, match="path is empty; expected a file's path"):
        PredictionCSV("")
    # "~/predictions.csv" is the home folder's file, for the check as for the writer: the
    # check looked for a file named "~" and the writer then replaced the user's.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))  # Windows' home
    with pytest.raises(FileExistsError, match="the file exists"):
        _plain(tmp_path / "x", PredictionCSV("~/predictions.csv")).predict(
            model, loader, return_predictions=False
        )
    assert mine.read_text() == "a user's predictions\n"
    writer = PredictionCSV(overwrite=True)
    trainer = _plain(tmp_path, writer)
    for _ in range(2):  # the second time over its own file
        trainer.predict(model, loader, return_predictions=False)
        assert writer.written == mine and len(mine.read_text().splitlines()) == 17
    with pytest.raises(FileExistsError, match=r"predictions\.csv: the file exists"):
        _plain(tmp_path, PredictionCSV()).predict(model, loader, return_predictions=False)
