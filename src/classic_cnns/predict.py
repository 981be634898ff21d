"""Classify a folder of new images with a trained model; write the predictions as CSV.

``classic-cnns predict-folder CHECKPOINT FOLDER`` classifies every image file in a folder
and writes a CSV of file, predicted class and probability, preprocessing each image as the
model's training data was: the :class:`~classic_cnns.data.preprocessing.Preprocessing` its
checkpoint records (mean, std, size, padding or resizing). The name is
not ``predict``: that subcommand is LightningCLI's (``Trainer.predict`` on a datamodule).

Example:
    >>> from classic_cnns import load_model
    >>> from classic_cnns.predict import predict_folder
    >>> rows = predict_folder(load_model("best.ckpt"), "new_digits")  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Literal

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter

from classic_cnns._checks import as_folder, check_flag, file_path, is_int, refuse_existing
from classic_cnns._launch import command_error, output_refusal
from classic_cnns._signals import SIGTERM_STATUS, SIGTERMException
from classic_cnns._warn import warn
from classic_cnns._writers import RUN_ELSEWHERE, refuse_replacing
from classic_cnns.checkpoint import head_class_names
from classic_cnns.data.folder import IMAGE_EXTENSIONS, class_dirs, list_images, load_image
from classic_cnns.data.preprocessing import Preprocessing
from classic_cnns.export import borrowed
from classic_cnns.files import NoRoomError, atomic_path, check_writable, refuse_folder
from classic_cnns.hub import load_model, require_classifier
from classic_cnns.task import ImageClassifier

__all__ = ["PredictionCSV", "predict_folder", "predict_main"]

_COLUMNS = ["file", "class", "class_index", "probability"]
_PREDICTION_COLUMNS = ["index", "label", "class", "class_index", "probability"]


def predict_folder(
    model: ImageClassifier,
    folder: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    recursive: bool = False,
    on_error: Literal["skip", "raise"] = "skip",
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Classify every image file in ``folder``; optionally write the rows as a CSV.

    Images are decoded to the model's channels and prepared as its training batches were:
    the :class:`~classic_cnns.data.preprocessing.Preprocessing` its ``data_config`` records
    (padded if it was trained on padded images, else resized to cover and centre-cropped,
    then normalised), with ``mean``/``std`` instead of the recorded ones when given. A model
    fresh from ImageNet weights gets their evaluation transform (resized to 256 px, or 232
    for ResNet-50/101/152, the centre 224 px cropped; its ``data_config["crop_pct"]``).

    Args:
        model: The trained model.
        folder: Folder of image files (PNG, JPEG, GIF, WebP, BMP, TIFF, PGM or PPM).
        output: CSV to write (columns ``file``, ``class``, ``class_index``,
            ``probability``), written to a temporary file and renamed into place.
        batch_size: Images per forward pass.
        device: Where to run the model.
        mean: Normalisation mean, overriding the recorded one.
        std: Normalisation std, with ``mean``.
        recursive: Include images in subfolders (``file`` is then a relative path).
        on_error: Unreadable files: ``"skip"`` leaves them out and warns once, naming them
            and why; ``"raise"`` writes nothing and raises, naming them.
        overwrite: Replace a file already at ``output`` (the command's ``--overwrite``).

    Returns:
        One dict per readable image, in file order, with the CSV's columns.

    Raises:
        FileNotFoundError: if the folder does not exist or holds no image files.
        NotADirectoryError: if ``folder`` is a file.
        IsADirectoryError: if ``output`` is a folder (checked before anything is predicted).
        OSError: naming ``output``, if no file can be written there (its folder is a file,
            say; also checked first). Whatever was at ``output`` is kept.
        ValueError: if ``output`` is one of the images (also checked first).
        FileExistsError: if a file is at ``output`` and ``overwrite`` is false (also first).
        TypeError: if ``model`` is not an ImageClassifier (a plain network, say).
        ValueError: if the normalisation is unknown, ``batch_size`` or ``on_error`` is not
            valid, no image can be decoded, or (``on_error="raise"``) any image cannot.

    Example:
        >>> from classic_cnns import load_model
        >>> rows = predict_folder(load_model("best.ckpt"), "new_digits")  # doctest: +SKIP
        >>> rows[0]  # doctest: +SKIP
        {'file': '0001.png', 'class': '7', 'class_index': 7, 'probability': 0.998}
    """
    require_classifier(model, "predict_folder")
    rows, skipped = _predict(
        model, folder, batch_size=batch_size, device=device, mean=mean, std=std,
        recursive=recursive, on_error=on_error, output=output, overwrite=overwrite,
    )  # fmt: skip
    if skipped:
        message = _skipped_message(skipped, len(rows) + len(skipped))
        warn(f"skipped them: {message}")
    if output is not None:
        _write_output(rows, output)
    return rows


def _available(device: str | torch.device) -> torch.device:
    # A device that exists here, or a ValueError saying which ones do.
    try:
        found = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be such as 'cpu' or 'cuda:0'; got {device!r}") from err
    if found.type in ("cpu", "mps"):
        count = 1 if found.type == "cpu" else int(torch.backends.mps.is_available())
    else:  # cuda, xpu, ... as this build counts them; none of "meta", which holds no weights
        count = getattr(getattr(torch, found.type, None), "device_count", lambda: 0)()
    if (found.index or 0) >= count:
        raise ValueError(
            f"device {str(found)!r} is not available here ({count} {found.type} device(s)); "
            "use 'cpu'"
        )
    return found


def _skipped_message(skipped: list[tuple[str, str]], total: int) -> str:
    shown = "; ".join(f"{name} ({reason})" for name, reason in skipped[:10])
    more = f"; and {len(skipped) - 10} more" if len(skipped) > 10 else ""
    return f"{len(skipped)} of the {total} image files cannot be read: {shown}{more}"


def _predict(
    model: ImageClassifier,
    folder: str | os.PathLike[str],
    *,
    batch_size: int,
    device: str | torch.device,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    recursive: bool,
    on_error: str,
    output: str | os.PathLike[str] | None,
    overwrite: bool,
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    # The rows of the readable images, and (file, reason) of the others; the CSV to be
    # written, checked first (predict_folder's and the command's alike).
    if not is_int(batch_size, 1):
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise'; got {on_error!r}")
    folder = as_folder("folder", folder)  # ~ expanded, as the datamodules take their folders
    files = list_images(folder, recursive=recursive)
    if not files:
        hint = "" if recursive else _subfolder_hint(folder)
        raise FileNotFoundError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {folder}{hint}")
    if output is not None:
        refuse_folder(output)
        if Path(output).resolve() in {f.resolve() for f in files}:
            raise ValueError(f"output {output} is one of the images to classify; pick another")
        refuse_existing(output, overwrite)
        check_writable(output)  # before anything is classified
    config = model.data_config
    prep = Preprocessing.from_config(
        config, model.in_channels, mean=mean, std=std, image_size=model.input_size[1:]
    )
    recorded = head_class_names(config, model.num_classes)
    names = [str(n) for n in recorded or range(model.num_classes)]
    if recorded is None and (other := config.get("class_names")):  # an older head's names
        warn(
            f"the model records {len(other)} class names for its {model.num_classes} "
            "classes; writing class indices instead"
        )
    with borrowed(model, _available(device)):  # then back where it was, as it was
        rows, skipped = _classify(model, folder, files, prep, names, batch_size, on_error)
    if skipped and (on_error == "raise" or not rows):
        raise ValueError(f"{folder}: {_skipped_message(skipped, len(files))}; nothing written")
    return rows, skipped


def _classify(model: ImageClassifier, folder: Path, files: list[Path], prep: Preprocessing,
              names: list[str], batch_size: int, on_error: str
              ) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:  # fmt: skip
    rows: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    for start in range(0, len(files), batch_size):
        chunk, raw = [], []
        for path in files[start : start + batch_size]:
            try:  # at its own size: the preprocessing sizes it as the training images were
                raw.append(prep(load_image(path, model.in_channels, None)[None])[0])
                chunk.append(path)
            except (ValueError, FileNotFoundError) as err:  # named: said once, as the file
                reason = str(err).removeprefix(f"{path}: ")
                skipped.append((path.relative_to(folder).as_posix(), reason))
        if not chunk or (skipped and on_error == "raise"):
            continue  # nothing to classify, or nothing will be written anyway
        # In the weights' dtype (a model kept in bf16, as a bf16-true fit leaves it); the
        # probabilities as Trainer.predict's (at least float32).
        x = torch.stack(raw).to(model.device, next(model.parameters()).dtype)
        with torch.no_grad():
            probs = model.predict_step(x, 0)
        best, index = probs.max(dim=1)
        for path, p, i in zip(chunk, best.tolist(), index.tolist(), strict=True):
            rows.append(
                {"file": path.relative_to(folder).as_posix(), "class": names[i],
                 "class_index": i, "probability": round(p, 6)}
            )  # fmt: skip
    return rows, skipped


@contextlib.contextmanager
def _csv_table(path: Path, columns: list[str]) -> Iterator[tuple[csv.DictWriter[str], IO[str]]]:
    # A CSV writer, its header written, into a temporary file beside `path` that replaces it
    # when the block ends (removed if it fails; see atomic_path), and that file. A file name
    # that is not UTF-8 keeps its bytes, as on stdout.
    with (
        atomic_path(path) as tmp,
        tmp.open("w", encoding="utf-8", errors="surrogateescape", newline="") as file,
    ):
        writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        yield writer, file


def _count_rows(paths: Sequence[Path]) -> int | None:
    # The rows of the CSVs at paths (a header each), or None if one is not there.
    try:
        total = 0
        for path in paths:
            with path.open(encoding="utf-8", errors="surrogateescape", newline="") as f:
                total += max(sum(1 for _ in csv.reader(f)) - 1, 0)
    except FileNotFoundError:
        return None
    return total


def _write_output(rows: list[dict[str, Any]], output: str | os.PathLike[str]) -> None:
    try:
        with _csv_table(Path(output), _COLUMNS) as (writer, _):
            writer.writerows(rows)
    except NoRoomError:  # atomic_path's, which names the file
        raise
    except OSError as err:  # named as the user's path, not the temporary file that failed
        raise type(err)(f"cannot write {output}: {err.strerror or err}") from err


def _predicted_files(trainer: Trainer) -> list[Path] | None:
    # The files of the images predicted, where their dataset lists one per image (ImageFolder's
    # loaders): not the trainer's datamodule's, which predict(dataloaders=...) leaves attached.
    dataset: Any = getattr(trainer.predict_dataloaders, "dataset", None)
    files = getattr(dataset, "files", None)
    if not isinstance(files, list | tuple) or not files:  # (a user's array, say: not ours)
        return None
    try:
        return [Path(f) for f in files] if len(files) == len(dataset) else None
    except TypeError:  # no length, or not paths
        return None


class PredictionCSV(BasePredictionWriter):
    """Write ``Trainer.predict``'s class probabilities as CSV: what ``classic-cnns predict`` saves.

    One row per image, in the order predicted: ``file`` (where the dataset lists a file per
    image in ``dataset.files``, as :class:`~classic_cnns.data.folder.ImageFolder`'s do),
    ``index`` (its position in the split), ``label`` (its true class, where the batches have
    labels), ``class``, ``class_index`` and ``probability`` of the most probable class. Classes
    are named as the model names them (``data_config["class_names"]``), labels as the datamodule
    does (its ``class_names``, which may number other classes), else as the model names its
    classes, else by index. The CSV goes to ``path`` or else
    ``<the trainer's log_dir>/predictions.csv``; each process of a multi-process run writes its own,
    ``predictions-rank<r>.csv``. Rows are written as predicting goes, batch by batch, to a
    temporary file beside it (none are kept in memory), which is moved into place when
    predicting ends: the file appears then, complete. A run that fails or is interrupted leaves
    whatever was at ``path`` as it was, and no temporary file. With several dataloaders a first
    column, ``dataloader``, says which one each row comes from (``index`` counts within it).

    A file there that this writer did not write (a user's, or an earlier run's in a folder
    without a logger's ``version_N``) is not replaced: predicting is refused when it starts,
    before the first batch (``FileExistsError``, naming the file). Under DDP the files that
    any process of this writer wrote count as its own (a second ``Trainer.predict`` replaces
    them); under ``ddp_spawn`` the workers' writers are copies, so a second run needs
    ``overwrite=True``.

    Across processes, each file is moved into place when its own process finishes: a run in
    which one process fails can leave a mixed set (new files of the processes that finished,
    the earlier files of the others), and a process that is killed (no Python clean-up) may
    leave its temporary ``.<name>.<random>.tmp`` beside the CSV. :attr:`files` and
    :attr:`total_rows` are set only when every process has written its file.

    Args:
        path: The CSV file; ``None``: ``predictions.csv`` in the run's log folder.
        overwrite: Replace a file this writer did not write.

    Example:
        >>> import lightning as L
        >>> from classic_cnns import Digits, LeNet5
        >>> writer = PredictionCSV("predictions.csv", overwrite=True)  # an old one too
        >>> trainer = L.Trainer(logger=False, callbacks=[writer], enable_progress_bar=False)
        >>> _ = trainer.predict(LeNet5(), datamodule=Digits(), return_predictions=False)
        >>> writer.written.name, writer.rows  # Digits' 359 test images
        ('predictions.csv', 359)
        >>> [p.name for p in writer.files], writer.total_rows  # every process's: one here
        (['predictions.csv'], 359)
        >>> Path("predictions.csv").read_text().splitlines()[0]
        'index,label,class,class_index,probability'
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, overwrite: bool = False) -> None:
        check_flag("overwrite", overwrite)
        super().__init__(write_interval="batch")
        # ~ expanded here, as the writer expands it: the check for a file there must see it
        self.path = None if path is None else Path(file_path("path", path)).expanduser()
        if self.path is not None and self.path.is_dir():
            raise IsADirectoryError(f"path {self.path} is a folder; expected the CSV file's path")
        self.overwrite = overwrite
        self._written: set[Path] = set()  # the files this writer wrote (resolved)
        self.written: Path | None = None  # the file of the last run, once written
        self.rows = 0
        self.files: list[Path] = []  # every process's file of the last run, once all are written
        self.total_rows = 0  # the rows in all of them
        # While predicting: the temporary file's closer, its CSV writer, the file, the CSV.
        self._table: tuple[contextlib.ExitStack, csv.DictWriter[str], IO[str], Path] | None = None
        self._count = 0  # rows so far
        self._counts: dict[int, int] = {}  # rows so far of each dataloader
        self._files: list[Path] | None = None  # the predicted images' files, where known

    def _paths(self, trainer: Trainer) -> list[Path]:
        # The file of each process (one, unless several write); every process calls this,
        # as trainer.log_dir broadcasts rank 0's folder.
        path = self.path or Path(trainer.log_dir or trainer.default_root_dir) / "predictions.csv"
        if trainer.world_size == 1:
            return [path]
        ranks = range(trainer.world_size)
        return [path.with_name(f"{path.stem}-rank{r}{path.suffix}") for r in ranks]

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Refuse to replace a file this writer did not write, before the first batch."""
        paths = self._paths(trainer)
        advice = RUN_ELSEWHERE if self.path is None else "give PredictionCSV another path"
        refuse_replacing(trainer, paths, self._own, "PredictionCSV", advice, self.overwrite)

    def _own(self, path: Path) -> bool:
        return path.resolve() in self._written

    def on_predict_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start a new table: its header, in a temporary file beside the CSV."""
        self.files, self.total_rows = [], 0
        path = self._paths(trainer)[trainer.global_rank]
        several = len(trainer.num_predict_batches) > 1  # several dataloaders
        self._files = None if several else _predicted_files(trainer)
        columns = ["dataloader"] * several + ["file"] * bool(self._files) + _PREDICTION_COLUMNS
        with contextlib.ExitStack() as stack:  # a failure here leaves no temporary file
            writer, file = stack.enter_context(_csv_table(path, columns))
            self._table = (stack.pop_all(), writer, file, path)
        self._count, self._counts = 0, {}

    def on_predict_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:  # fmt: skip
        """Stop at a SIGTERM (``kill``, a job scheduler), as Lightning's fit and evaluation
        loops do: its predict loop goes on to the end. The table is removed (``on_exception``)."""
        if getattr(trainer, "received_sigterm", False):
            raise SIGTERMException(SIGTERM_STATUS)

    def write_on_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        """Write a batch's rows to the temporary file."""
        if self._table is None:
            raise RuntimeError(
                "PredictionCSV writes rows while Trainer.predict runs, from its "
                "on_predict_epoch_start; got a batch before that (or after its end)"
            )
        _, writer, file, _ = self._table
        # Outputs are named as the model records (if for as many classes as it outputs); the
        # labels are the data's class indices, named as the data names them, else as the model.
        names = head_class_names(getattr(pl_module, "data_config", None), prediction.shape[1])
        names = names or []
        data = getattr(trainer, "datamodule", None)
        label_names = list(getattr(data, "class_names", None) or names)
        labels = batch[1].tolist() if isinstance(batch, list | tuple) and len(batch) > 1 else None
        best, index = prediction.max(dim=1)
        start = self._counts.get(dataloader_idx, 0)
        self._counts[dataloader_idx] = start + len(index)
        order = list(batch_indices or [])
        if len(order) != len(index):
            order = list(range(start, start + len(index)))
        rows = []
        for k, (p, i) in enumerate(zip(best.tolist(), index.tolist(), strict=True)):
            label = "" if labels is None else (label_names[labels[k]] if label_names else labels[k])
            image = self._files[order[k]].as_posix() if self._files else ""
            rows.append(
                {"dataloader": dataloader_idx, "file": image, "index": order[k], "label": label,
                 "class": names[i] if names else i, "class_index": i, "probability": round(p, 6)}
            )  # fmt: skip
        writer.writerows(rows)
        file.flush()  # to the file as it goes, not in a buffer until the end
        self._count += len(rows)

    def on_predict_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Move the finished table into place, atomically."""
        table, self._table = self._table, None
        if table is None:
            return
        table[0].close()  # the file closed, synced and renamed onto the CSV (removed on failure)
        self._written.add(table[3].resolve())
        self.written, self.rows = table[3], self._count
        # Every process has its file in place once all are here: each learns the others'.
        count = torch.tensor(self._count, device=trainer.strategy.root_device)
        self.total_rows = int(trainer.strategy.reduce(count, reduce_op="sum"))
        self.files = self._paths(trainer)
        self._written.update(p.resolve() for p in self.files)

    def describe(self, trainer: Trainer) -> str | None:
        """Where the last run wrote, in the words of ``classic-cnns predict``: every process's
        file and the images in all; ``None`` before a run has written.

        Under ``ddp_spawn`` the workers wrote the files, not the main process, whose writer
        learnt nothing: the files are counted.

        Example:
            >>> import lightning as L
            >>> from classic_cnns import Digits, LeNet5
            >>> writer = PredictionCSV("digits.csv", overwrite=True)
            >>> trainer = L.Trainer(logger=False, callbacks=[writer], enable_progress_bar=False)
            >>> _ = trainer.predict(LeNet5(), datamodule=Digits(), return_predictions=False)
            >>> writer.describe(trainer)
            'predictions: digits.csv (359 images)'
        """
        rows: int | None
        files, rows = self.files, self.total_rows
        if not files and trainer.world_size > 1:  # ddp_spawn's main process
            files = self._paths(trainer)
            rows = _count_rows(files)
        if not files or rows is None:
            return None
        if len(files) == 1:
            return f"predictions: {files[0]} ({rows} images)"
        pattern = files[0].with_name(files[0].name.replace("-rank0", "-rank*", 1))
        return f"predictions: {pattern} ({rows} images in {len(files)} files)"

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        """Remove the unfinished table: whatever was at the CSV's path stays as it was."""
        table, self._table = self._table, None
        if table is not None:  # atomic_path sees the error: it removes the temporary file
            table[0].__exit__(type(exception), exception, exception.__traceback__)


def predict_main(argv: Sequence[str] | None = None) -> int:
    """``classic-cnns predict-folder CHECKPOINT FOLDER [--output predictions.csv]``.

    Writes the CSV to ``--output`` (atomically) or to standard output. Unreadable files are
    named on standard error and left out (``--on-error raise``: nothing is written).

    Returns:
        0 when the CSV is written (also with files skipped), 2 for bad arguments or
        unreadable inputs (message on stderr).

    Example:
        >>> from classic_cnns.predict import predict_main
        >>> predict_main(["best.ckpt", "new_digits", "--output", "preds.csv"])  # doctest: +SKIP
        0
    """
    parser = argparse.ArgumentParser(
        prog="classic-cnns predict-folder",
        description="Classify a folder of images; write file, class and probability as CSV.",
    )
    parser.add_argument("checkpoint", help="Lightning .ckpt or .safetensors file")
    parser.add_argument("folder", help=f"folder of {', '.join(IMAGE_EXTENSIONS)} files")
    parser.add_argument("--output", help="CSV file to write (default: standard output)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu", help="e.g. cpu or cuda")
    parser.add_argument("--mean", type=float, nargs="+", help="override the recorded mean")
    parser.add_argument("--std", type=float, nargs="+", help="override the recorded std")
    parser.add_argument("--recursive", action="store_true", help="include subfolders")
    parser.add_argument("--on-error", choices=("skip", "raise"), default="skip",
                        help="unreadable files: skip them (default), or write nothing")  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    args = parser.parse_args(argv)
    prog = "classic-cnns predict-folder"
    output = None if args.output is None else Path(args.output).expanduser()  # --output=~/x
    checkpoint = Path(args.checkpoint).expanduser()
    if output is not None and (refused := output_refusal(args.output, output, checkpoint,
                                                         args.overwrite)):  # fmt: skip
        return command_error(prog, refused)
    if (args.mean is None) != (args.std is None):
        return command_error(prog, "give --mean and --std together")
    if args.batch_size < 1:
        return command_error(prog, f"--batch-size must be at least 1; got {args.batch_size}")
    try:
        model = load_model(args.checkpoint)
        rows, skipped = _predict(
            model, args.folder, batch_size=args.batch_size, device=args.device,
            mean=args.mean, std=args.std, recursive=args.recursive, on_error=args.on_error,
            output=output, overwrite=args.overwrite,
        )  # fmt: skip
    except (OSError, ValueError, ImportError) as err:  # OSError: an --output not writable
        return command_error(prog, str(err))
    if output is None:
        # "\n": the text stream ends lines as the platform does (csv's "\r\n" gave "\r\r\n")
        writer = csv.DictWriter(sys.stdout, fieldnames=_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        try:
            _write_output(rows, output)
        except OSError as err:
            return command_error(prog, str(err))
        print(f"wrote {len(rows)} predictions to {output}", file=sys.stderr)
    if skipped:
        message = _skipped_message(skipped, len(rows) + len(skipped))
        print(f"{prog}: skipped them: {message}", file=sys.stderr)
    return 0


def _subfolder_hint(folder: Path) -> str:
    # Images in class subfolders (an ImageFolder layout) are found only with recursive.
    names = sorted(p.name for p in class_dirs(folder))
    if not names:
        return ""
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    return f"; it has subfolders ({shown}): pass recursive=True (--recursive) to include them"
