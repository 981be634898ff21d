"""Training curves and the test confusion matrix of a run, as PNG files in its log folder.

:class:`TrainingPlots` is a Lightning callback: add it to any ``Trainer`` (the command line
adds it to ``fit`` and ``test``). It keeps one row of metrics per epoch, taken from what the
task logs (``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``val_f1``), and builds the
confusion matrix of the test set with torchmetrics. Its history is part of the checkpoint, so
the curves of a resumed run start at epoch 0.

matplotlib is the optional ``plot`` extra, imported only when a figure is drawn; figures are
built without pyplot, so no display is needed and a user's pyplot backend is left alone.
"""

from __future__ import annotations

import csv
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix

from classic_cnns._checks import as_folder, check_flag, is_number
from classic_cnns._writers import (
    PLOTS_SKIPPED,
    RUN_ELSEWHERE,
    matplotlib_missing,
    refuse_replacing,
    require_matplotlib,
    save_png,
)
from classic_cnns.files import atomic_path
from classic_cnns.task import ImageClassifier

__all__ = ["TrainingPlots", "plot_confusion_matrix", "plot_curves"]

CURVES_FILE = "curves.png"
CONFUSION_FILE = "confusion_matrix.png"
CONFUSION_CSV = "confusion_matrix.csv"
_EPOCH_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "val_f1")
_CURVES = _EPOCH_KEYS[:4]  # what plot_curves draws


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def plot_curves(
    history: Sequence[dict[str, float]], title: str = "", train_loss_terms: str = ""
) -> Any:
    """Loss and accuracy per epoch, training and validation, side by side.

    Args:
        history: One dict per epoch with ``epoch`` and any of ``train_loss``,
            ``train_acc``, ``val_loss`` and ``val_acc``. A value that is not finite (a
            diverged run) leaves a gap in its line, and the legend names its epochs.
        title: Shown above the two panels.
        train_loss_terms: What the training loss adds to the validation loss
            (``ImageClassifier.train_loss_terms``), shown in its legend entry.

    Returns:
        A ``matplotlib.figure.Figure`` (``fig.savefig(path)`` writes it).

    Raises:
        ValueError: if ``history`` is empty, a dict has no number ``epoch`` or one of the
            four values is not a number. The epochs are drawn in their order.
        ImportError: if matplotlib (the ``plot`` extra) is not installed.

    Example:
        >>> from classic_cnns.plots import plot_curves
        >>> fig = plot_curves([{"epoch": 0, "train_loss": 1.2, "val_loss": 0.9,
        ...                     "train_acc": 0.6, "val_acc": 0.7}])
        >>> [ax.get_ylabel() for ax in fig.axes]
        ['loss', 'accuracy (%)']
        >>> fig = plot_curves([{"epoch": 0, "train_loss": 1.2}], train_loss_terms="smoothed")
        >>> fig.axes[0].get_legend_handles_labels()[1]
        ['training (smoothed)']
        >>> nan = float("nan")
        >>> fig = plot_curves([{"epoch": 0, "val_loss": 2.3}, {"epoch": 1, "val_loss": nan}])
        >>> fig.axes[0].get_legend_handles_labels()[1]
        ['validation; not finite at epoch 1']
    """
    require_matplotlib("plot_curves")
    from matplotlib.ticker import MaxNLocator

    history = _checked_history(history)
    fig = _figure(10, 3.8)
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = [h["epoch"] for h in history]
    for ax, metric, scale in ((ax_loss, "loss", 1.0), (ax_acc, "acc", 100.0)):
        for stage, color in (("train", "C0"), ("val", "C1")):
            points = [(h["epoch"], scale * h[f"{stage}_{metric}"]) for h in history if
                      f"{stage}_{metric}" in h]  # fmt: skip
            if points:
                xs, ys = zip(*points, strict=True)
                label = "training" if stage == "train" else "validation"
                if stage == "train" and metric == "loss" and train_loss_terms:
                    label += f" ({train_loss_terms})"
                gaps = [f"{x:g}" for x, y in points if not math.isfinite(y)]
                if gaps:  # matplotlib leaves a gap: say why
                    label += f"; not finite at epoch {', '.join(gaps)}"
                ax.plot(xs, ys, color=color, marker="o", markersize=3, label=label)
        ax.set_xlabel("epoch")
        if len(set(epochs)) > 1:  # the run's epochs, though a diverged loss has one point
            pad = (max(epochs) - min(epochs)) / 20
            ax.set_xlim(min(epochs) - pad, max(epochs) + pad)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_lines():
            ax.legend(fontsize=8)
    ax_loss.set_ylabel("loss")
    ax_acc.set_ylabel("accuracy (%)")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _checked_history(history: Any) -> list[dict[str, float]]:
    # One dict per epoch, a number "epoch" in each; a curve's value is a real number (NaN and
    # inf are kept: they leave a gap, which the legend explains). Sorted by epoch.
    if not isinstance(history, Sequence) or isinstance(history, str) or not history:
        raise ValueError(f"expected a non-empty list of dicts, one per epoch; got {history!r}")
    for row in history:
        epoch = row.get("epoch") if isinstance(row, Mapping) else None
        if not is_number(epoch):
            raise ValueError(f"expected each epoch's dict to hold a number 'epoch'; got {row!r}")
        for key in _CURVES:
            value = row.get(key, 0.0)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"expected {key} to be a number; got {value!r} at epoch {epoch}")
    return sorted(history, key=lambda row: row["epoch"])


_MAX_LABELS = 40  # classes named on each axis of a confusion matrix, and its size's cap


def plot_confusion_matrix(
    matrix: Tensor | Sequence[Sequence[int]], class_names: Sequence[str], title: str = ""
) -> Any:
    """A confusion matrix as a heat map with its counts (rows: true class, columns: predicted).

    Up to 30 classes each non-zero cell shows its count; up to 40, each class is named. Beyond that
    the figure keeps the size of 40 classes, the colours tell the counts and every k-th class
    is named (the CSV that ``TrainingPlots`` writes has every count).

    Args:
        matrix: ``(C, C)`` counts (whole numbers, of any numeric dtype).
        class_names: ``C`` names for the axes.
        title: Shown above the matrix.

    Returns:
        A ``matplotlib.figure.Figure``.

    Raises:
        ValueError: if the matrix is not square, is empty or holds a count that is negative,
            fractional or not finite, or the names do not match its size.
        ImportError: if matplotlib (the ``plot`` extra) is not installed.

    Example:
        >>> from classic_cnns.plots import plot_confusion_matrix
        >>> fig = plot_confusion_matrix([[5, 1], [0, 4]], ["cat", "dog"])
        >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
        ('predicted', 'true')
    """
    require_matplotlib("plot_confusion_matrix")
    try:  # in float64, which every numeric dtype converts to (uint32 has no comparisons)
        counts = torch.as_tensor(matrix).detach().cpu().to(torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:  # ragged rows, strings, ...
        raise ValueError(
            f"expected a square (C, C) matrix of counts; could not read one ({err})"
        ) from err
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise ValueError(f"expected a sequence of C class names; got {class_names!r}")
    n = counts.shape[0] if counts.ndim else 0
    if counts.ndim != 2 or n == 0 or counts.shape != (n, n) or len(class_names) != n:
        raise ValueError(
            "expected a square (C, C) matrix of counts (C >= 1) and C class names; got shape "
            f"{tuple(counts.shape)} and {len(class_names)} names"
        )
    if bool((counts < 0).any()):
        raise ValueError(f"expected counts of at least 0; got {counts.min().item():g}")
    if (bad := ~(torch.isfinite(counts) & (counts == counts.trunc()))).any():
        raise ValueError(f"expected whole-number counts; got {counts[bad][0].item()!r}")
    rows = counts.long().tolist()
    cells = min(max(n, 6), _MAX_LABELS)  # a 1000-class figure grew to 50,000 px a side
    fig = _figure(1.5 + 0.45 * cells, 1.2 + 0.42 * cells)
    ax = fig.subplots()
    image = ax.imshow(rows, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    top = max(max(r) for r in rows)
    if n <= 30:  # beyond that the counts are unreadable; the colours still tell
        for i in range(n):
            for j in range(n):
                if rows[i][j]:
                    color = "white" if rows[i][j] > top / 2 else "black"
                    ax.text(j, i, str(rows[i][j]), ha="center", va="center", fontsize=7,
                            color=color)  # fmt: skip
    ticks = range(0, n, -(-n // _MAX_LABELS))  # every class up to 40, else every k-th
    names = [str(class_names[i]) for i in ticks]
    ax.set_xticks(ticks, names, rotation=45 if n <= _MAX_LABELS else 90, ha="right", fontsize=8)
    ax.set_yticks(ticks, names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


class TrainingPlots(L.Callback):
    """Write the loss and accuracy curves after ``fit`` and the confusion matrix after ``test``.

    Files, in the run's log folder (``trainer.log_dir``, e.g. ``lightning_logs/version_0``)
    or ``dirpath``: ``curves.png`` (loss and accuracy per epoch, training and validation),
    ``confusion_matrix.png`` and ``confusion_matrix.csv`` (rows: true class, columns:
    predicted). Without matplotlib, one line says how to get the figures; the CSV is still
    written. Nothing is written under ``fast_dev_run``. Each file is written beside its
    target and renamed over it, so a failed write leaves the earlier file whole.

    A file there that this run did not write (a user's, or an earlier run's in a folder
    without a logger's ``version_N``) is not replaced: ``fit`` is refused when it starts,
    before the first batch, if any of the three files is there (the test that usually
    follows writes the matrix), and ``test`` if the matrix's are (``FileExistsError``, naming
    the file). The check runs in ``on_fit_start`` rather than ``setup`` because only then is
    a resumed run's state restored: its own files, in the folder it wrote to, are replaced.

    Args:
        dirpath: Folder for the files; ``None`` uses the trainer's log folder.
        overwrite: Replace files this run did not write, as Lightning's
            ``SaveConfigCallback(overwrite=True)`` does.

    Attributes:
        history: One dict per finished epoch: ``epoch`` and the logged ``train_loss``,
            ``train_acc``, ``val_loss``, ``val_acc`` and ``val_f1`` (those that were logged).
        confusion: The last test run's ``(C, C)`` confusion matrix (int64), or ``None``.

    Example:
        >>> import lightning as L
        >>> from classic_cnns.plots import TrainingPlots
        >>> trainer = L.Trainer(callbacks=[TrainingPlots()], logger=False)
        >>> TrainingPlots(overwrite=True).overwrite
        True
    """

    def __init__(
        self, dirpath: str | os.PathLike[str] | None = None, overwrite: bool = False
    ) -> None:
        check_flag("overwrite", overwrite)
        self.dirpath = None if dirpath is None else as_folder("dirpath", dirpath)
        self.overwrite = overwrite
        self._written: set[Path] = set()  # the files this run wrote (resolved)
        self._run_folder: Path | None = None  # where this run writes; saved in checkpoints
        self._resumed_folder: Path | None = None  # where the run it resumes wrote
        self.history: list[dict[str, float]] = []
        self.confusion: Tensor | None = None
        self._val: dict[str, float] = {}
        self._recorded_epoch = -1
        self._resumed_epoch = -1  # an epoch a checkpoint interrupted: partial training metrics
        self._matrix: MulticlassConfusionMatrix | None = None
        self._trainer: L.Trainer | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Remember the trainer, whose metrics :meth:`state_dict` records; a new ``fit``
        starts a new history (a resumed run's comes back after this, from its checkpoint)."""
        self._trainer = trainer
        if stage == "fit":  # one callback, several fits (comparing optimizers): each its own
            self.history, self._val, self._written = [], {}, set()
            self._recorded_epoch = self._resumed_epoch = -1
            self._run_folder = self._resumed_folder = None

    # -- where ---------------------------------------------------------------------------
    def _target(self, trainer: L.Trainer) -> Path | None:
        # Every process must call this: trainer.log_dir broadcasts rank 0's folder.
        log_dir = trainer.log_dir
        if getattr(trainer, "fast_dev_run", False):
            return None
        return self.dirpath or Path(log_dir or trainer.default_root_dir)

    def _folder(self, trainer: L.Trainer) -> Path | None:
        folder = self._target(trainer)
        if folder is None or not trainer.is_global_zero:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _own(self, path: Path) -> bool:
        path = path.resolve()
        return path in self._written or path.parent == self._resumed_folder

    def _refuse_replacing(self, trainer: L.Trainer, names: Sequence[str]) -> None:
        # Before anything is written: a file there that is not this run's is refused.
        folder = self._target(trainer)
        if folder is None:
            return
        self._run_folder = folder.resolve()
        if matplotlib_missing():  # no figure is drawn, so none is replaced
            names = [n for n in names if not n.endswith(".png")]
        advice = RUN_ELSEWHERE if self.dirpath is None else "give TrainingPlots another dirpath"
        paths = [folder / n for n in names]
        refuse_replacing(trainer, paths, self._own, "TrainingPlots", advice, self.overwrite)

    @staticmethod
    def _metrics(trainer: L.Trainer, keys: Sequence[str]) -> dict[str, float]:
        logged = trainer.callback_metrics
        return {k: float(logged[k]) for k in keys if k in logged}

    # -- fit -------------------------------------------------------------------------------
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Refuse to replace a file this run did not write (see the class's notes)."""
        self._refuse_replacing(trainer, [CURVES_FILE, CONFUSION_CSV, CONFUSION_FILE])

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Keep this epoch's validation metrics (the task has logged them by now)."""
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self._val = self._metrics(trainer, [k for k in _EPOCH_KEYS if k.startswith("val_")])

    def _record_epoch(self, trainer: L.Trainer) -> None:
        # The task logs the training metrics in its own on_train_epoch_end, which runs after
        # the callbacks' hook; so an epoch is recorded once its end hooks have run: when the
        # next epoch starts, when a checkpoint is saved at the epoch's end, or when fit ends.
        epoch = getattr(trainer.fit_loop.epoch_progress.current, "processed", 0) - 1
        if epoch <= self._recorded_epoch:
            return
        row = {"epoch": float(epoch)}
        # An epoch a checkpoint interrupted: the training metrics cover only the batches after
        # the resume, unless ExactResume put the metrics' states back.
        continued = [getattr(c, "continued_epoch", None) for c in getattr(trainer, "callbacks", [])]
        if epoch != self._resumed_epoch or epoch in continued:
            row.update(self._metrics(trainer, ("train_loss", "train_acc")))
        row.update(self._val)
        if len(row) > 1:
            self.history.append(row)
        self._recorded_epoch, self._val = epoch, {}

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Record the epoch that just ended."""
        self._record_epoch(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Record the last epoch and draw the curves."""
        self._record_epoch(trainer)
        folder = self._folder(trainer)
        if folder is None or not self.history:
            return
        if matplotlib_missing():
            rank_zero_info(PLOTS_SKIPPED)
            return
        dm = getattr(trainer, "datamodule", None)  # MixUp and CutMix mix the training labels
        alphas = (
            ("MixUp", getattr(dm, "mixup_alpha", 0)),
            ("CutMix", getattr(dm, "cutmix_alpha", 0)),
        )
        mixed = " and ".join(f"{name} (alpha {alpha:g})" for name, alpha in alphas if alpha)
        terms = [getattr(pl_module, "train_loss_terms", ""), mixed and f"labels mixed by {mixed}"]
        title = f"{type(pl_module).__name__}: loss and accuracy"
        fig = plot_curves(self.history, title, ", ".join(t for t in terms if t))
        self._save(fig, folder / CURVES_FILE)

    def state_dict(self) -> dict[str, Any]:
        """The per-epoch history, saved in checkpoints so a resumed run keeps its curves, and
        the folder the run writes to, whose files a run resumed there may replace.

        A checkpoint saved before its epoch ended (mid-epoch, or after a validation that
        runs before the epoch's end hooks, as with ``check_val_every_n_epoch`` > 1) also
        holds that epoch's validation metrics; the resumed run plots them for it, with the
        training metrics where :class:`~classic_cnns.resume.ExactResume` put their states
        back (else they would cover only the batches after the resume: left out).
        """
        unfinished: dict[str, Any] = {}
        if self._trainer is not None and self._trainer.state.fn == "fit":
            self._record_epoch(self._trainer)
            if self._trainer.current_epoch > self._recorded_epoch:
                unfinished = {"unfinished": self._trainer.current_epoch, "val": dict(self._val)}
        history = [dict(h) for h in self.history]
        folder = {} if self._run_folder is None else {"folder": str(self._run_folder)}
        return {"history": history, "recorded": self._recorded_epoch, **unfinished, **folder}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the history of the run being resumed."""
        self.history = [dict(h) for h in state_dict.get("history", [])]
        self._recorded_epoch = int(state_dict.get("recorded", -1))
        self._resumed_epoch = int(state_dict.get("unfinished", -1))
        self._val = dict(state_dict.get("val", {}))
        folder = state_dict.get("folder")
        self._resumed_folder = None if folder is None else Path(folder)

    # -- test ------------------------------------------------------------------------------
    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Refuse to replace a matrix this run did not write; start an empty one for the
        model's classes."""
        self._refuse_replacing(trainer, [CONFUSION_CSV, CONFUSION_FILE])
        num_classes = int(getattr(pl_module, "num_classes", 0) or 0)
        self._matrix = None
        if num_classes > 1:
            self._matrix = MulticlassConfusionMatrix(num_classes).to(pl_module.device)

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Add the batch's predictions: the step's logits if it returns them, else a forward
        pass's. The task's ``test_step`` returns ``None`` for a batch ``nonfinite="skip"``
        left out (its images or its logits not finite), which is left out here too."""
        if self._matrix is None or not isinstance(batch, list | tuple) or len(batch) != 2:
            return
        x, y = batch
        if isinstance(outputs, Tensor) and outputs.ndim == 2 and len(outputs) == len(y):
            logits = outputs
        else:  # a step of one's own that returns nothing, or a skipped batch
            task = isinstance(pl_module, ImageClassifier)
            if task and isinstance(x, Tensor) and not bool(torch.isfinite(x).all()):
                return
            with torch.no_grad():
                out = pl_module(x)
            logits = out[0] if isinstance(out, tuple) else out
            if task and not bool(torch.isfinite(logits).all()):
                return
        self._matrix.update(logits.argmax(dim=1), y.long())

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Compute the matrix (summed over processes) and write the CSV and the figure."""
        if self._matrix is None or not self._matrix.update_called:
            return
        self.confusion = self._matrix.compute().long().cpu()
        self._matrix = None
        folder = self._folder(trainer)
        if folder is None:
            return
        names = _class_names(trainer, len(self.confusion))
        with (
            atomic_path(folder / CONFUSION_CSV) as tmp,
            tmp.open("w", newline="", encoding="utf-8") as f,
        ):
            writer = csv.writer(f)
            writer.writerow(["true \\ predicted", *names])
            for name, row in zip(names, self.confusion.tolist(), strict=True):
                writer.writerow([name, *row])
        self._written.add((folder / CONFUSION_CSV).resolve())
        if matplotlib_missing():
            rank_zero_info(PLOTS_SKIPPED)
            return
        accuracy = float(self.confusion.diag().sum() / self.confusion.sum().clamp(min=1))
        title = f"{type(pl_module).__name__}: test accuracy {100 * accuracy:.2f}%"
        fig = plot_confusion_matrix(self.confusion, names, title=title)
        self._save(fig, folder / CONFUSION_FILE)

    def _save(self, fig: Any, path: Path) -> None:
        save_png(fig, path)
        self._written.add(path.resolve())


def _class_names(trainer: L.Trainer, n: int) -> list[str]:
    names = getattr(getattr(trainer, "datamodule", None), "class_names", None)
    return [str(c) for c in names] if names and len(names) == n else [str(i) for i in range(n)]
