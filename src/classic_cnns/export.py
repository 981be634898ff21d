"""Export trained models: ONNX, torch.export, TorchScript and safetensors files, each checked.

``classic-cnns export CHECKPOINT --format onnx|pt2|torchscript|safetensors`` writes the
network (normalised float images ``(N, C, H, W)`` in, logits out) and, in the same
command, loads the written file back and compares its outputs with PyTorch's on a random
batch of another size (onnxruntime runs the ONNX file when it is installed;
``torch.export.load`` the ``.pt2`` program). The file is
written beside its destination under a temporary name and renamed into place only after
the check passed (:func:`classic_cnns.files.atomic_path`), so a failed export never
leaves a file, nor replaces one.

New images are classified by :mod:`classic_cnns.predict` (``classic-cnns predict-folder``).

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
import importlib.util
import io
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from classic_cnns._checks import file_path, is_int, is_number, refuse_existing
from classic_cnns._launch import command_error, output_refusal
from classic_cnns._version import __version__
from classic_cnns.files import META_DATA, META_HPARAMS, META_VERSION, atomic_path, refuse_folder
from classic_cnns.hub import load_model, require_classifier
from classic_cnns.task import ImageClassifier

__all__ = [
    "FORMATS",
    "ExportResult",
    "export_main",
    "export_model",
    "save_safetensors",
]

FORMATS: tuple[str, ...] = ("onnx", "pt2", "torchscript", "safetensors")
"""The ``format`` choices of :func:`export_model` and ``classic-cnns export --format``.

Example:
    >>> from classic_cnns.export import FORMATS
    >>> FORMATS
    ('onnx', 'pt2', 'torchscript', 'safetensors')
"""
_SUFFIXES = {
    "onnx": ".onnx",
    "pt2": ".pt2",
    "torchscript": ".torchscript.pt",
    "safetensors": ".safetensors",
}
# The file inside TorchScript and torch.export archives that holds the hyperparameters.
_EXTRA = "classic_cnns.json"


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote and how closely the file reproduces PyTorch.

    Attributes:
        path: The written file.
        format: ``"onnx"``, ``"pt2"``, ``"torchscript"`` or ``"safetensors"``.
        max_abs_diff: Largest absolute difference of the logits, file versus PyTorch;
            ``None`` when nothing could run the file (ONNX without onnxruntime).
        checked_with: What ran the file: ``"onnxruntime"``, ``"torch.export.load"``,
            ``"torch.jit.load"``, ``"create_model(checkpoint_path=...)"``,
            ``"onnx.checker only"`` (onnxruntime missing) or ``"nothing"`` (onnx missing
            too).

    Example:
        >>> from classic_cnns.export import ExportResult
        >>> ExportResult(Path("m.onnx"), "onnx", 1e-6, "onnxruntime").max_abs_diff
        1e-06
    """

    path: Path
    format: str
    max_abs_diff: float | None
    checked_with: str


def _metadata(model: ImageClassifier, x: Tensor | None = None) -> dict[str, str]:
    # What every exported file carries: as safetensors and ONNX metadata, and as the JSON
    # record of TorchScript and torch.export archives. A program traced on `x` takes images
    # of x's size, which its image_size says (the trained size may be another).
    hparams = {k: v for k, v in model.hparams.items() if not str(k).startswith("_")}
    data = model.data_config if x is None else {**model.data_config, "image_size": [*x.shape[2:]]}
    try:
        return {
            META_VERSION: __version__,
            META_HPARAMS: json.dumps(hparams, sort_keys=True),
            META_DATA: json.dumps(data, sort_keys=True),
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
        TypeError: if ``model`` is not an ImageClassifier (a plain network, say).
        IsADirectoryError: if ``path`` is a folder.

    Example:
        >>> import tempfile
        >>> from classic_cnns import LeNet5
        >>> from classic_cnns.files import read_weights_file
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     save_safetensors(LeNet5(num_classes=3), f"{folder}/lenet5.safetensors")
        ...     read_weights_file(f"{folder}/lenet5.safetensors").hparams["num_classes"]
        3
    """
    require_classifier(model, "save_safetensors")
    try:
        from safetensors.torch import save_file
    except ImportError as err:
        raise ImportError(
            "the safetensors format needs the safetensors package: pip install safetensors "
            "(or pip install 'classic-cnns[export]')"
        ) from err

    metadata = {"format": "pt", **_metadata(model)}  # first: it may refuse the hparams
    state = {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)


def _extra_files(model: ImageClassifier, x: Tensor) -> dict[str, str]:
    # TorchScript and torch.export archives carry one JSON file beside the program: the
    # hyperparameters, the data configuration (class names, normalisation) and our version.
    return {_EXTRA: json.dumps(_metadata(model, x))}


def _write_onnx(net: nn.Module, x: Tensor, path: Path, model: ImageClassifier) -> None:
    try:
        _export_onnx(net, x, path)
    except Exception as err:  # torch's exporter needs onnx (2.14's TorchScript-based one too)
        if importlib.util.find_spec("onnx") is None:
            raise ImportError(
                "the ONNX format needs the onnx package (and onnxscript for torch's default "
                "exporter): pip install onnx onnxscript (or pip install 'classic-cnns[export]')"
            ) from err
        raise
    try:
        import onnx
    except ImportError:
        return
    proto = onnx.load(str(path))
    for key, value in _metadata(model, x).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _export_onnx(net: nn.Module, x: Tensor, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter (constant folding, deprecations)
        # (torch.__version__ compares as a version, not as a string.)
        if importlib.util.find_spec("onnxscript") is not None and torch.__version__ >= "2.9":
            # The torch.export-based exporter, PyTorch's default since 2.9 (torch 2.6's fails
            # on batch norm with today's onnxscript).
            batch = torch.export.Dim("batch", min=1)
            torch.onnx.export(
                net, (x,), str(path), dynamo=True, external_data=False, verbose=False,
                input_names=["images"], output_names=["logits"], dynamic_shapes=({0: batch},),
            )  # fmt: skip
        else:
            # The TorchScript-based exporter: torch's default before 2.9, and the one there
            # is without onnxscript.
            torch.onnx.export(
                net, (x,), str(path), dynamo=False, input_names=["images"],
                output_names=["logits"],
                dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
            )  # fmt: skip


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
        with torch.no_grad():  # as in inference (memory-efficient DenseNet checkpoints else)
            traced = torch.jit.trace(net, x)
        buffer = io.BytesIO()  # written by Python: a full disk is an OSError, not an abort
        torch.jit.save(traced, buffer, _extra_files=_extra_files(model, x))
    path.write_bytes(buffer.getvalue())


def _write_pt2(net: nn.Module, x: Tensor, path: Path, model: ImageClassifier) -> None:
    # torch.export's program; the batch dimension must stay dynamic (DYNAMIC raises where
    # the network would fix it; a named Dim trips over a bound guard on torch 2.6).
    # Non-strict, torch's default from 2.7.
    batch = torch.export.Dim.DYNAMIC
    with torch.no_grad():  # as in inference (memory-efficient DenseNet checkpoints else)
        program = torch.export.export(net, (x,), dynamic_shapes=({0: batch},), strict=False)
    # Into memory, then written by Python: torch's own writer aborts the process (SIGABRT)
    # on a full disk; a file object, as torch warns of a path not ending in .pt2.
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files=_extra_files(model, x))
    path.write_bytes(buffer.getvalue())


def export_model(
    model: ImageClassifier,
    path: str | os.PathLike[str],
    format: str,
    *,
    input_size: Sequence[int] | None = None,
    atol: float = 1e-4,
    overwrite: bool = False,
) -> ExportResult:
    """Export ``model.net`` to ``path`` and check the file's logits against PyTorch's.

    The network is traced or exported on a random batch of 2 images; the check runs a
    batch of 3 (so a fixed batch size would show). For this the model moves to the CPU in
    eval mode, without ``torch.compile``'s wrapper; then it is back as it was.

    Args:
        model: The model (its network is exported; inputs are normalised images).
        path: Destination; written only if the check passes.
        format: ``"onnx"``, ``"pt2"`` (``torch.export``'s program, PyTorch's successor
            to TorchScript), ``"torchscript"`` or ``"safetensors"``.
        input_size: ``(C, H, W)`` of the example input; default: the size the model was
            trained at (its data configuration), else its ``input_size``.
        atol: Largest absolute difference of the logits accepted.
        overwrite: Replace a file already at ``path`` (the command's ``--overwrite``); by
            default it is refused, so that a slip of the name cannot replace a checkpoint.

    Returns:
        What was written and how closely it reproduces PyTorch.

    Raises:
        ValueError: for an unknown format, a ``path`` named as another format's file
            (``model.safetensors`` for ONNX) or a bad ``input_size``, or when the file's
            outputs differ by more than ``atol`` (nothing is written then).
        TypeError: for a network whose weights are not float32, or a ``model`` that is not
            an ImageClassifier (a plain network, say).
        IsADirectoryError: if ``path`` is a folder (checked before anything is exported).
        FileExistsError: if a file is at ``path`` and ``overwrite`` is false (checked first).
        ImportError: when the format's package is missing (onnxscript or onnx for ONNX,
            safetensors).

    Example:
        >>> import tempfile
        >>> from classic_cnns import LeNet5
        >>> from classic_cnns.export import export_model
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     result = export_model(LeNet5(), f"{folder}/lenet5.pt2", "pt2")
        >>> result.checked_with, result.max_abs_diff < 1e-4
        ('torch.export.load', True)
    """
    require_classifier(model, "export_model")
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}; got {format!r}")
    name = file_path("path", path)
    if other := [f for f, end in _SUFFIXES.items() if f != format and name.lower().endswith(end)]:
        raise ValueError(
            f"path {name!r} ends as a {other[0]} file's name does ({_SUFFIXES[other[0]]}), but "
            f"format {format!r} writes {_SUFFIXES[format]} files: name it so, or export with "
            f"format {other[0]!r}"
        )
    refuse_folder(path)
    refuse_existing(path, overwrite)
    if not (is_number(atol) and atol >= 0):
        raise ValueError(f"atol must be a finite number >= 0; got {atol!r}")
    sizes = input_size if isinstance(input_size, Sequence) else ()
    if input_size is not None and (len(sizes) != 3 or not all(is_int(s, 1) for s in sizes)):
        raise ValueError(f"input_size must be (C, H, W) of positive ints; got {input_size!r}")
    with borrowed(model, torch.device("cpu"), eager=True):
        return _export(model, Path(path), format, input_size, atol)


@contextlib.contextmanager
def borrowed(
    model: ImageClassifier, device: torch.device, eager: bool = False
) -> Iterator[ImageClassifier]:
    """The caller's model on ``device`` in eval mode (``eager``: its network called without
    ``torch.compile``'s wrapper, which tracing cannot see through) for the block; then back
    where it was, in the mode it was in.

    Example:
        >>> from classic_cnns import create_model
        >>> model = create_model("lenet5").train()
        >>> with borrowed(model, torch.device("cpu")) as lent:
        ...     lent.training
        False
        >>> model.training
        True
    """
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
    net = getattr(model.net, "_orig_mod", model.net)  # model.net = torch.compile(model.net)
    trained = model.data_config.get("image_size")  # the default: the size it was trained at
    default = (model.in_channels, *trained) if trained else model.input_size
    size = tuple(int(s) for s in (default if input_size is None else input_size))
    dtypes = {p.dtype for p in net.parameters() if p.is_floating_point()}
    if dtypes - {torch.float32}:
        raise TypeError(
            f"export_model writes float32 networks; this one has {sorted(map(str, dtypes))} "
            "weights. Export a float32 copy: export_model(copy.deepcopy(model).float(), ...)"
        )
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(2, *size, generator=generator)
    check = torch.randn(3, *size, generator=generator)
    try:
        model.check_input(check[:1])
    except ValueError as err:  # its facts, with advice about input_size, not the data's
        raise ValueError(
            f"input_size {size} does not fit {model.info.name}: {str(err).split('. ')[0]}. Give "
            f"input_size (--input-size) as (C, H, W) it takes, e.g. {tuple(default)}"
        ) from None
    with torch.no_grad():
        expected = net(check)
    got: Tensor | None
    with atomic_path(path) as tmp:
        if format == "onnx":
            _write_onnx(net, example, tmp, model)
            got = _run_onnx(tmp, check)
            checker = "onnx.checker only" if importlib.util.find_spec("onnx") else "nothing"
            checked_with = "onnxruntime" if got is not None else checker
        elif format == "pt2":
            _write_pt2(net, example, tmp, model)
            with torch.no_grad(), tmp.open("rb") as f:
                got = torch.export.load(f).module()(check)
            checked_with = "torch.export.load"
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
                try:
                    reloaded = load_model(tmp).eval()  # create_model(arch, checkpoint_path=tmp)
                    problem = next(
                        (str(w.message) for w in caught if "not loaded from" in str(w.message)), ""
                    )
                except ValueError as err:
                    problem = str(err)
            if problem:
                first = problem.splitlines()[0].replace(str(tmp), "the file").rstrip(":")
                raise ValueError(
                    f"{path} was not written: a safetensors file holds the weights and the "
                    "hyperparameters that build the network again, and this network is no "
                    f"longer the one they build (changed after it was built?): {first}. "
                    "ONNX and TorchScript keep the network's own structure"
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
    """``classic-cnns export CHECKPOINT --format onnx|pt2|torchscript|safetensors [--output PATH]``.

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
        "--output", help="destination (default: the checkpoint's name with .onnx, .pt2, "
        ".torchscript.pt or .safetensors)",
    )  # fmt: skip
    parser.add_argument(
        "--input-size", nargs=3, type=int, metavar=("C", "H", "W"),
        help="example input (default: the size the model was trained at)",
    )  # fmt: skip
    parser.add_argument("--atol", type=float, default=1e-4, help="largest logit difference")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    args = parser.parse_args(argv)
    source = Path(args.checkpoint).expanduser()  # ~ as the shell leaves it in --output=~/x
    output = Path(args.output).expanduser() if args.output else _default_output(source, args.format)
    prog = "classic-cnns export"
    if not args.output and output.resolve() == source.resolve():  # the input has the suffix
        return command_error(prog, f"--output {output} is the input itself "
                             f"({_SUFFIXES[args.format]}); export reads a .ckpt or .safetensors "
                             "checkpoint, and --output names another file")  # fmt: skip
    if refused := output_refusal(args.output or str(output), output, source, args.overwrite):
        return command_error(prog, refused)
    try:
        model = load_model(source)
        result = export_model(model, output, args.format, input_size=args.input_size,
                              atol=args.atol, overwrite=args.overwrite)  # fmt: skip
    except (FileNotFoundError, ValueError, ImportError) as err:  # CheckpointError too
        return command_error(prog, str(err))
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
