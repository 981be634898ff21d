"""Export trained models (ONNX, TorchScript, safetensors) and predict a folder of images.

``classic-cnns export CHECKPOINT --format onnx|torchscript|safetensors`` writes the
network (normalised float images ``(N, C, H, W)`` in, logits out) and, in the same
command, loads the written file back and compares its outputs with PyTorch's on a random
batch of another size (onnxruntime runs the ONNX file when it is installed). The file is
written beside its destination under a temporary name and renamed into place only after
the check passed (:func:`classic_cnns.files.atomic_path`), so a failed export never
leaves a file, nor replaces one.

``classic-cnns predict-folder CHECKPOINT FOLDER`` classifies every image file in a folder
and writes a CSV of file, predicted class and probability, preprocessing each image as the
model's training data was: the :class:`~classic_cnns.data.preprocessing.Preprocessing` its
checkpoint records (mean, std, size, padding or resizing). The name is
not ``predict``: that subcommand is LightningCLI's (``Trainer.predict`` on a datamodule).

Example:
    >>> import tempfile
    >>> from classic_cnns import LeNet5
    >>> from classic_cnns.export import export_model
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     result = export_model(LeNet5(), f"{folder}/lenet5.safetensors", "safetensors")
    >>> result.checked_with, result.max_abs_diff
    ('create_model(checkpoint_path=...)', 0.0)
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.util
import io
import json
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from classic_cnns._version import __version__
from classic_cnns.data.folder import IMAGE_EXTENSIONS, list_images, load_image
from classic_cnns.data.preprocessing import Preprocessing
from classic_cnns.files import META_DATA, META_HPARAMS, META_VERSION, atomic_path
from classic_cnns.hub import load_model
from classic_cnns.task import ImageClassifier

__all__ = [
    "FORMATS",
    "ExportResult",
    "export_main",
    "export_model",
    "predict_folder",
    "predict_main",
    "save_safetensors",
]

FORMATS = ("onnx", "torchscript", "safetensors")
_COLUMNS = ["file", "class", "class_index", "probability"]
_SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "safetensors": ".safetensors"}


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote and how closely the file reproduces PyTorch.

    Attributes:
        path: The written file.
        format: ``"onnx"``, ``"torchscript"`` or ``"safetensors"``.
        max_abs_diff: Largest absolute difference of the logits, file versus PyTorch;
            ``None`` when nothing could run the file (ONNX without onnxruntime).
        checked_with: What ran the file: ``"onnxruntime"``, ``"torch.jit.load"``,
            ``"create_model(checkpoint_path=...)"``, ``"onnx.checker only"`` (onnxruntime
            missing) or ``"nothing"`` (onnx missing too).

    Example:
        >>> from classic_cnns.export import ExportResult
        >>> ExportResult(Path("m.onnx"), "onnx", 1e-6, "onnxruntime").max_abs_diff
        1e-06
    """

    path: Path
    format: str
    max_abs_diff: float | None
    checked_with: str


def _metadata(model: ImageClassifier) -> dict[str, str]:
    hparams = {k: v for k, v in model.hparams.items() if not str(k).startswith("_")}
    try:
        return {
            "format": "pt",
            META_VERSION: __version__,
            META_HPARAMS: json.dumps(hparams, sort_keys=True),
            META_DATA: json.dumps(model.data_config, sort_keys=True),
        }
    except TypeError as err:
        raise ValueError(
            f"the hyperparameters must be JSON values (numbers, strings, lists, dicts) to be "
            f"stored with the weights; {err}"
        ) from err


def save_safetensors(model: ImageClassifier, path: str | os.PathLike[str]) -> None:
    """Write the network's weights to ``path`` with the hyperparameters as metadata.

    Tensors are keyed as in ``model.net.state_dict()``; the metadata holds the
    hyperparameters (JSON, ``classic_cnns.hparams``) and the data configuration
    (``classic_cnns.data``), so ``create_model(arch, checkpoint_path=path)`` rebuilds the
    model. Written to a temporary file and renamed into place. Nothing checks the file
    here; :func:`export_model` does.

    Raises:
        ImportError: without the safetensors package.
        ValueError: if a hyperparameter is not a JSON value.

    Example:
        >>> import tempfile
        >>> from classic_cnns import LeNet5
        >>> from classic_cnns.files import read_weights_file
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     save_safetensors(LeNet5(num_classes=3), f"{folder}/lenet5.safetensors")
        ...     read_weights_file(f"{folder}/lenet5.safetensors").hparams["num_classes"]
        3
    """
    try:
        from safetensors.torch import save_file
    except ImportError as err:
        raise ImportError(
            "the safetensors format needs the safetensors package: pip install safetensors "
            "(or pip install 'classic-cnns[export]')"
        ) from err

    metadata = _metadata(model)  # before anything is written: it may refuse the hparams
    state = {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)


def _write_onnx(net: nn.Module, x: Tensor, path: Path, model: ImageClassifier) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter (constant folding, deprecations)
        if importlib.util.find_spec("onnxscript") is not None:
            # The torch.export-based exporter, PyTorch's default since 2.9.
            batch = torch.export.Dim("batch", min=1)
            torch.onnx.export(
                net, (x,), str(path), dynamo=True, external_data=False, verbose=False,
                input_names=["images"], output_names=["logits"], dynamic_shapes=({0: batch},),
            )  # fmt: skip
        else:
            # Without onnxscript only the older TorchScript-based exporter is available.
            torch.onnx.export(
                net, (x,), str(path), dynamo=False, input_names=["images"],
                output_names=["logits"],
                dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
            )  # fmt: skip
    try:
        import onnx
    except ImportError:
        return
    proto = onnx.load(str(path))
    meta = _metadata(model)
    for key in (META_HPARAMS, META_DATA, META_VERSION):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, meta[key]
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _run_onnx(path: Path, x: Tensor) -> Tensor | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return torch.from_numpy(session.run(None, {name: x.numpy()})[0])


def _write_torchscript(net: nn.Module, x: Tensor, path: Path, model: ImageClassifier) -> None:
    with warnings.catch_warnings():
        # TorchScript is deprecated in PyTorch in favour of torch.export; it still runs
        # everywhere libtorch does, which is why it is offered.
        warnings.filterwarnings("ignore", r".*torch\.jit\.\w+` is deprecated")
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(net, x)
        meta = _metadata(model)
        extra = {"classic_cnns.json": json.dumps({k: meta[k] for k in (META_HPARAMS, META_DATA)})}
        torch.jit.save(traced, str(path), _extra_files=extra)


def export_model(
    model: ImageClassifier,
    path: str | os.PathLike[str],
    format: str,
    *,
    input_size: Sequence[int] | None = None,
    atol: float = 1e-4,
) -> ExportResult:
    """Export ``model.net`` to ``path`` and check the file's logits against PyTorch's.

    The network is traced or exported on a random batch of 2 images; the check runs a
    batch of 3 (so a fixed batch size would show). For this the model moves to the CPU in
    eval mode, without ``torch.compile``'s wrapper; then it is back as it was.

    Args:
        model: The model (its network is exported; inputs are normalised images).
        path: Destination; written only if the check passes.
        format: ``"onnx"``, ``"torchscript"`` or ``"safetensors"``.
        input_size: ``(C, H, W)`` of the example input; default: the size the model was
            trained at (its data configuration), else its ``input_size``.
        atol: Largest absolute difference of the logits accepted.

    Returns:
        What was written and how closely it reproduces PyTorch.

    Raises:
        ValueError: for an unknown format or a bad ``input_size``, or when the file's
            outputs differ by more than ``atol`` (nothing is written then).
        ImportError: when the format's package is missing (onnxscript or onnx for ONNX,
            safetensors).

    Example:
        >>> import tempfile
        >>> from classic_cnns import LeNet5
        >>> from classic_cnns.export import export_model
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     result = export_model(LeNet5(), f"{folder}/lenet5.pt", "torchscript")
        >>> result.checked_with, result.max_abs_diff < 1e-4
        ('torch.jit.load', True)
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}; got {format!r}")
    if not atol >= 0:
        raise ValueError(f"atol must be a number >= 0; got {atol!r}")
    with _borrowed(model, torch.device("cpu"), eager=True):
        return _export(model, Path(path), format, input_size, atol)


@contextlib.contextmanager
def _borrowed(
    model: ImageClassifier, device: torch.device, eager: bool = False
) -> Iterator[ImageClassifier]:
    # The caller's model on `device` in eval mode (`eager`: its network called without
    # torch.compile's wrapper, which tracing cannot see through) for the block; then back
    # where it was, in the mode it was in.
    where = next(model.parameters(), torch.empty(0)).device
    training, compiled = model.training, getattr(model.net, "_compiled_call_impl", None)
    model.to(device).eval()
    if eager:
        model.net._compiled_call_impl = None
    try:
        yield model
    finally:
        model.net._compiled_call_impl = compiled
        model.to(where).train(training)


def _export(model: ImageClassifier, path: Path, format: str, input_size: Sequence[int] | None,
            atol: float) -> ExportResult:  # fmt: skip
    net = model.net
    if input_size is None:
        trained = model.data_config.get("image_size")
        input_size = (model.in_channels, *trained) if trained else model.input_size
    size = tuple(int(s) for s in input_size)
    if len(size) != 3 or min(size) < 1:
        raise ValueError(f"input_size must be (C, H, W) of positive ints; got {input_size!r}")
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(2, *size, generator=generator)
    check = torch.randn(3, *size, generator=generator)
    model.check_input(check)
    with torch.no_grad():
        expected = net(check)
    got: Tensor | None
    with atomic_path(path) as tmp:
        if format == "onnx":
            _write_onnx(net, example, tmp, model)
            got = _run_onnx(tmp, check)
            checker = "onnx.checker only" if importlib.util.find_spec("onnx") else "nothing"
            checked_with = "onnxruntime" if got is not None else checker
        elif format == "torchscript":
            _write_torchscript(net, example, tmp, model)
            with torch.no_grad(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", r".*torch\.jit\.\w+` is deprecated")
                got = torch.jit.load(str(tmp), map_location="cpu")(check)
            checked_with = "torch.jit.load"
        else:
            save_safetensors(model, tmp)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                reloaded = load_model(tmp).eval()  # create_model(arch, checkpoint_path=tmp)
            not_loaded = [str(w.message) for w in caught if "not loaded from" in str(w.message)]
            if not_loaded:
                raise ValueError(
                    f"the exported safetensors file does not rebuild the model: "
                    f"{not_loaded[0]}; {path} was not written"
                )
            with torch.no_grad():
                got = reloaded.net(check)
            checked_with = "create_model(checkpoint_path=...)"
        diff = None if got is None else float((got - expected).abs().max())
        if diff is not None and not diff <= atol:
            raise ValueError(
                f"the exported {format} model's logits differ from PyTorch's by up to {diff:.3g} "
                f"(expected at most atol={atol}); {path} was not written"
            )
    return ExportResult(path, format, diff, checked_with)


def export_main(argv: Sequence[str] | None = None) -> int:
    """``classic-cnns export CHECKPOINT --format onnx|torchscript|safetensors [--output PATH]``.

    Returns:
        0 on success, 2 for bad arguments or a failed check (the message goes to stderr).

    Example:
        >>> from classic_cnns.export import export_main
        >>> export_main(["best.ckpt", "--format", "onnx"])  # doctest: +SKIP
        wrote best.onnx (onnx); logits match PyTorch's within 2.4e-07 (onnxruntime)
        0
    """
    parser = argparse.ArgumentParser(
        prog="classic-cnns export",
        description="Export a trained model and check the exported outputs against PyTorch's.",
    )
    parser.add_argument("checkpoint", help="Lightning .ckpt or .safetensors file")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument(
        "--output", help="destination (default: the checkpoint's name with .onnx, "
        ".torchscript.pt or .safetensors)",
    )  # fmt: skip
    parser.add_argument(
        "--input-size", nargs=3, type=int, metavar=("C", "H", "W"),
        help="example input (default: the size the model was trained at)",
    )  # fmt: skip
    parser.add_argument("--atol", type=float, default=1e-4, help="largest logit difference")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    args = parser.parse_args(argv)
    source = Path(args.checkpoint)
    output = Path(args.output) if args.output else _default_output(source, args.format)
    prog = "classic-cnns export"
    if output.resolve() == source.resolve() or output.is_dir():
        what = "a folder; give a file" if output.is_dir() else "the checkpoint itself; pick another"
        print(f"{prog}: --output {output} is {what}", file=sys.stderr)
        return 2
    if output.exists() and not args.overwrite:
        print(f"{prog}: {output} exists; pass --overwrite to replace it", file=sys.stderr)
        return 2
    try:
        model = load_model(source)
        result = export_model(
            model, output, args.format, input_size=args.input_size, atol=args.atol
        )
    except (FileNotFoundError, ValueError, ImportError) as err:  # CheckpointError too
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    if result.max_abs_diff is None:
        print(f"wrote {output} ({args.format}); checked with {result.checked_with}: install "
              "onnxruntime to compare its outputs with PyTorch's")  # fmt: skip
    else:
        print(f"wrote {output} ({args.format}); logits match PyTorch's within "
              f"{result.max_abs_diff:.2g} ({result.checked_with})")  # fmt: skip
    return 0


def _default_output(source: Path, format: str) -> Path:
    stem = source.name.removesuffix(source.suffix)
    return source.with_name(stem + _SUFFIXES[format])


# -- predicting a folder -----------------------------------------------------------------


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
) -> list[dict[str, Any]]:
    """Classify every image file in ``folder``; optionally write the rows as a CSV.

    Images are decoded to the model's channels and prepared as its training batches were:
    the :class:`~classic_cnns.data.preprocessing.Preprocessing` its ``data_config`` records
    (padded if it was trained on padded images, else resized to cover and centre-cropped,
    then normalised), with ``mean``/``std`` instead of the recorded ones when given.

    Args:
        model: The trained model.
        folder: Folder of PNG, JPEG, GIF or WebP files.
        output: CSV to write (columns ``file``, ``class``, ``class_index``,
            ``probability``), written to a temporary file and renamed into place.
        batch_size: Images per forward pass.
        device: Where to run the model.
        mean: Normalisation mean, overriding the recorded one.
        std: Normalisation std, with ``mean``.
        recursive: Include images in subfolders (``file`` is then a relative path).
        on_error: Unreadable files: ``"skip"`` leaves them out and warns once, naming them
            and why; ``"raise"`` writes nothing and raises, naming them.

    Returns:
        One dict per readable image, in file order, with the CSV's columns.

    Raises:
        FileNotFoundError: if the folder does not exist or holds no image files.
        ValueError: if the normalisation is unknown, ``batch_size`` or ``on_error`` is not
            valid, no image can be decoded, or (``on_error="raise"``) any image cannot.

    Example:
        >>> from classic_cnns import load_model
        >>> rows = predict_folder(load_model("best.ckpt"), "new_digits")  # doctest: +SKIP
        >>> rows[0]  # doctest: +SKIP
        {'file': '0001.png', 'class': '7', 'class_index': 7, 'probability': 0.998}
    """
    rows, skipped = _predict(
        model, Path(folder), batch_size=batch_size, device=device, mean=mean, std=std,
        recursive=recursive, on_error=on_error,
    )  # fmt: skip
    if skipped:
        message = _skipped_message(skipped, len(rows) + len(skipped))
        warnings.warn(f"skipped them: {message}", UserWarning, stacklevel=2)
    if output is not None:
        _write_csv(rows, Path(output))
    return rows


def _available(device: str | torch.device) -> torch.device:
    # A device that exists here, or a ValueError saying which ones do.
    try:
        found = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be such as 'cpu' or 'cuda:0'; got {device!r}") from err
    count = {"cuda": torch.cuda.device_count(), "mps": int(torch.backends.mps.is_available())}
    if found.type in count and (found.index or 0) >= count[found.type]:
        raise ValueError(
            f"device {str(found)!r} is not available here ({count[found.type]} {found.type} "
            "device(s)); use 'cpu'"
        )
    return found


def _skipped_message(skipped: list[tuple[str, str]], total: int) -> str:
    shown = "; ".join(f"{name} ({reason})" for name, reason in skipped[:10])
    more = f"; and {len(skipped) - 10} more" if len(skipped) > 10 else ""
    return f"{len(skipped)} of the {total} image files cannot be read: {shown}{more}"


def _predict(
    model: ImageClassifier,
    folder: Path,
    *,
    batch_size: int,
    device: str | torch.device,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    recursive: bool,
    on_error: str,
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    # The rows of the readable images, and (file, reason) of the others.
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
    if on_error not in ("skip", "raise"):
        raise ValueError(f"on_error must be 'skip' or 'raise'; got {on_error!r}")
    files = list_images(folder, recursive=recursive)
    if not files:
        raise FileNotFoundError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {folder}")
    config = model.data_config
    prep = Preprocessing.from_config(
        config, model.in_channels, mean=mean, std=std, image_size=model.input_size[1:]
    )
    names = [str(i) for i in range(model.num_classes)]
    recorded = config.get("class_names")
    if recorded and len(recorded) == model.num_classes:
        names = [str(n) for n in recorded]
    elif recorded:  # e.g. a checkpoint loaded with another num_classes, not yet trained
        warnings.warn(
            f"the model records {len(recorded)} class names for its {model.num_classes} "
            "classes; writing class indices instead",
            UserWarning,
            stacklevel=3,
        )
    with _borrowed(model, _available(device)):  # then back where it was, as it was
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
            try:  # at its own size: the preprocessing brings it to the model's
                raw.append(prep.fit(load_image(path, model.in_channels, None)))
                chunk.append(path)
            except ValueError as err:
                skipped.append((path.relative_to(folder).as_posix(), str(err.__cause__ or err)))
        if not chunk or (skipped and on_error == "raise"):
            continue  # nothing to classify, or nothing will be written anyway
        x = prep(torch.stack(raw).to(model.device))
        with torch.no_grad():
            probs = model(x).softmax(dim=-1)
        best, index = probs.max(dim=1)
        for path, p, i in zip(chunk, best.tolist(), index.tolist(), strict=True):
            rows.append(
                {"file": path.relative_to(folder).as_posix(), "class": names[i],
                 "class_index": i, "probability": round(p, 6)}
            )  # fmt: skip
    return rows, skipped


def _write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8", newline="")


def predict_main(argv: Sequence[str] | None = None) -> int:
    """``classic-cnns predict-folder CHECKPOINT FOLDER [--output predictions.csv]``.

    Writes the CSV to ``--output`` (atomically) or to standard output. Unreadable files are
    named on standard error and left out (``--on-error raise``: nothing is written).

    Returns:
        0 when the CSV is written (also with files skipped), 2 for bad arguments or
        unreadable inputs (message on stderr).

    Example:
        >>> from classic_cnns.export import predict_main
        >>> predict_main(["best.ckpt", "new_digits", "--output", "preds.csv"])  # doctest: +SKIP
        0
    """
    parser = argparse.ArgumentParser(
        prog="classic-cnns predict-folder",
        description="Classify a folder of images; write file, class and probability as CSV.",
    )
    parser.add_argument("checkpoint", help="Lightning .ckpt or .safetensors file")
    parser.add_argument("folder", help="folder of .png, .jpg, .jpeg, .gif or .webp files")
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
    output = None if args.output is None else Path(args.output)
    itself = output is not None and output.resolve() == Path(args.checkpoint).resolve()
    if output is not None and output.exists() and (itself or output.is_dir() or not args.overwrite):
        print(f"{prog}: {output} exists; pass --overwrite to replace a file (not a folder, nor "
              "the checkpoint itself)", file=sys.stderr)  # fmt: skip
        return 2
    if (args.mean is None) != (args.std is None):
        print(f"{prog}: give --mean and --std together", file=sys.stderr)
        return 2
    if args.batch_size < 1:
        print(f"{prog}: --batch-size must be at least 1; got {args.batch_size}", file=sys.stderr)
        return 2
    try:
        model = load_model(args.checkpoint)
        rows, skipped = _predict(
            model, Path(args.folder), batch_size=args.batch_size, device=args.device,
            mean=args.mean, std=args.std, recursive=args.recursive, on_error=args.on_error,
        )  # fmt: skip
    except (FileNotFoundError, ValueError, ImportError) as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    if output is None:
        writer = csv.DictWriter(sys.stdout, fieldnames=_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    else:
        _write_csv(rows, output)
        print(f"wrote {len(rows)} predictions to {output}", file=sys.stderr)
    if skipped:
        message = _skipped_message(skipped, len(rows) + len(skipped))
        print(f"{prog}: skipped them: {message}", file=sys.stderr)
    return 0
