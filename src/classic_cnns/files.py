"""Files on disk: written atomically, read safely, and the errors that name them.

The bottom layer of the package; of ours, it imports only the downloads, the checks and the
atomic writers (:mod:`classic_cnns._atomic`), which it exports.

* :func:`atomic_path` and :func:`atomic_save` write to a temporary file beside the target and
  rename it into place: an interrupted write never leaves a truncated file where a good one was,
  and one that runs out of room names the file.
* :func:`load_checkpoint`, the one reader of ``torch.save`` files, checks the file whole, loads
  it with ``torch.load(weights_only=True)``, and turns a missing, empty, truncated or corrupted
  file into a :class:`CheckpointError` that says which file and what is wrong.
* :func:`read_weights_file` reads any weights file (a Lightning ``.ckpt``, a ``torch.save``d
  state dict, a ``.safetensors`` file) into a :class:`WeightsFile`: the network's tensors,
  hyperparameters and data configuration, from one read of the file.

Example:
    >>> import tempfile, torch
    >>> from classic_cnns.files import atomic_save, read_weights_file
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     atomic_save({"net.fc.weight": torch.ones(2, 3)}, f"{folder}/w.pt")
    ...     list(read_weights_file(f"{folder}/w.pt").state_dict)
    ['fc.weight']
"""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch
from lightning.fabric.utilities.cloud_io import get_filesystem
from torch import Tensor

from classic_cnns._atomic import (
    NoRoomError,
    atomic_path,
    atomic_save,
    check_writable,
    local_path,
    refuse_folder,
)
from classic_cnns._checks import file_path
from classic_cnns._download import DOWNLOAD_TIMEOUT, download, download_folder, file_digest

__all__ = [
    "DATA_CHECKPOINT_KEY", "DATA_ENV", "DOWNLOAD_TIMEOUT", "CheckpointError", "NoRoomError",
    "WeightsFile",
    "atomic_path", "atomic_save", "check_checkpoint_file", "check_writable", "default_data_dir",
    "download", "download_folder", "file_digest", "is_safetensors_file", "load_checkpoint",
    "read_weights_file", "refuse_folder", "strip_compiled",
]  # fmt: skip

MapLocation = str | torch.device | Callable[..., Any] | dict[str, str] | None

META_HPARAMS = "classic_cnns.hparams"  # the metadata keys of the .safetensors files we write
META_DATA = "classic_cnns.data"
META_VERSION = "classic_cnns.version"
DATA_CHECKPOINT_KEY = "classic_cnns_data"
"""The key under which ``ImageClassifier`` keeps its data configuration (mean, std, image
size, resize, class names) in Lightning checkpoints, beside the weights.

Example:
    >>> from classic_cnns.files import DATA_CHECKPOINT_KEY
    >>> DATA_CHECKPOINT_KEY
    'classic_cnns_data'
"""
DATA_ENV = "CLASSIC_CNNS_DATA"
"""The environment variable naming the datasets' folder (see :func:`default_data_dir`).

Example:
    >>> from classic_cnns.files import DATA_ENV
    >>> DATA_ENV
    'CLASSIC_CNNS_DATA'
"""
# torch.compile wraps a module in OptimizedModule, which adds this to its state-dict keys.
COMPILED_PREFIX = "_orig_mod."
_RUNS = "(classic-cnns export --format {}), which {} runs"  # a program, not weights
_REFUSED = r"global|allowlist|unrecognized function|can only|only persistent_load|must be imported"


def default_data_dir() -> str:
    """The datasets' folder when none is given: ``$CLASSIC_CNNS_DATA`` if set, else ``data``.

    The one rule for the datamodules' ``data_dir=None``, ``classic-cnns data fetch`` and the
    benchmarks, so that a dataset fetched into ``$CLASSIC_CNNS_DATA`` is the one ``fit``
    reads. An empty variable counts as unset.

    Example:
        >>> import os
        >>> from classic_cnns.files import default_data_dir
        >>> default_data_dir() == (os.environ.get("CLASSIC_CNNS_DATA") or "data")
        True
    """
    return os.environ.get(DATA_ENV) or "data"


def strip_compiled(key: str) -> str:
    """A state-dict key without the ``_orig_mod.`` parts that ``torch.compile`` adds.

    Example:
        >>> strip_compiled("net._orig_mod.fc.weight")
        'net.fc.weight'
        >>> strip_compiled("_orig_mod.net._orig_mod.fc.weight")  # compiled twice over
        'net.fc.weight'
    """
    if not isinstance(key, str):
        raise TypeError(f"strip_compiled takes a state-dict key (a str); got {type(key).__name__}")
    return key.replace(COMPILED_PREFIX, "")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and the problem.

    Example:
        >>> issubclass(CheckpointError, ValueError)
        True
    """


def is_local(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a local file (a plain path or a ``file://`` URL), not a remote one.

    Example:
        >>> is_local("runs/last.ckpt"), is_local("file:///tmp/w.pt"), is_local("s3://b/w.pt")
        (True, True, False)
    """
    return "://" not in str(path) or str(path).startswith("file://")


def _require_file(path: Path, shown: str, what: str) -> None:
    if not shown:  # Path("") is the current folder, which the message would have called ":"
        raise FileNotFoundError(f"the {what} path is empty; expected a {what} file's path")
    if not path.is_file():  # a folder is no such file either, but say which it is
        why = "is a folder; expected a" if path.is_dir() else "no such"
        raise FileNotFoundError(f"{shown}: {why} {what} file")


def _first_line(err: BaseException) -> str:
    # torch's weights_only error wraps the unpickler's (its context) in advice not passed on
    err = err.__context__ if isinstance(err.__context__, pickle.UnpicklingError) else err
    text = str(err).replace(torch.serialization.UNSAFE_MESSAGE, "").strip()
    return text.splitlines()[0] if text else type(err).__name__


def check_checkpoint_file(path: str | os.PathLike[str], shown: str | None = None) -> None:
    """Raise unless the local file ``path`` is a whole, intact ``torch.save`` file.

    Reads the file once without unpickling anything: a zip archive (``torch.save``'s) must be
    complete, every record matching its CRC-32 (where ``torch.save`` wrote none: whole).

    Raises:
        FileNotFoundError: if there is no such file (a folder is not one; the message says).
        CheckpointError: naming the file, if it is empty, truncated, corrupted, not a
            PyTorch file, a safetensors file (which :func:`read_weights_file` reads), or a
            program (TorchScript, ``torch.export``) rather than weights.

    Example:
        >>> import tempfile, torch
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     torch.save({"w": torch.ones(3)}, f"{folder}/w.pt")
        ...     check_checkpoint_file(f"{folder}/w.pt")  # no error: whole and intact
    """
    shown = os.fspath(path) if shown is None else shown
    path = Path(local_path(path))
    _require_file(path, shown, "checkpoint")
    if (size := path.stat().st_size) == 0:
        safetensors = path.suffix == ".safetensors"
        what = "a safetensors file" if safetensors else "a checkpoint written by torch.save"
        raise CheckpointError(
            f"{shown}: the file is empty (0 bytes); expected {what}. It was probably cut off "
            "while being written"
        )
    if is_safetensors_file(path):
        raise CheckpointError(
            f"{shown}: a safetensors file, not a torch.save checkpoint; load it with "
            "classic_cnns.load_model(path) or create_model(arch, checkpoint_path=path)"
        )
    with path.open("rb") as f:
        head = f.read(4)
    if head.startswith(b"\x80"):  # the legacy (pre-1.6) torch.save format: a pickle stream
        return
    if head[:1] == b"\x08" and path.suffix.lower() == ".onnx":  # protobuf: field 1, ir_version
        raise CheckpointError(f"{shown}: an ONNX model {_RUNS.format('onnx', 'onnxruntime')}; "
                              "expected a checkpoint or a .safetensors file")  # fmt: skip
    if head != b"PK\x03\x04":
        raise CheckpointError(
            f"{shown}: not a PyTorch checkpoint: it starts with {head!r}; expected a zip "
            "archive (b'PK\\x03\\x04') as torch.save and Trainer.save_checkpoint write"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            records, names, bad = archive.infolist(), archive.namelist(), None
            if any(record.CRC for record in records):
                bad = archive.testzip()  # reads every record and checks its CRC-32
            else:  # torch.save under config.save.compute_crc32 = False stores only 0s
                _check_extents(path, records, size)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise CheckpointError(
            f"{shown}: the file is truncated or corrupted ({size} bytes; {_first_line(err)}); "
            "expected a complete zip archive as torch.save writes. It was probably cut off "
            "while being written or copied"
        ) from err
    if bad is not None:
        raise CheckpointError(
            f"{shown}: the file is corrupted: the CRC-32 checksum of its record {bad!r} does "
            "not match its contents (a damaged copy or disk); expected an intact checkpoint"
        )
    _refuse_names(names, shown)


def _check_extents(path: Path, records: list[zipfile.ZipInfo], size: int) -> None:
    # Without CRC-32s: each local header where the central directory says, data within the file.
    with path.open("rb") as f:
        for record in records:
            f.seek(record.header_offset)
            header = f.read(30)
            if len(header) < 30 or header[:4] != b"PK\x03\x04":
                raise zipfile.BadZipFile(f"no local header for record {record.filename!r}")
            end = record.header_offset + 30 + sum(struct.unpack("<HH", header[26:30]))
            if end + record.compress_size > size:
                raise zipfile.BadZipFile(f"record {record.filename!r} ends past the file's end")


def _refuse_program(f: IO[bytes], shown: str) -> None:
    # An open or remote file: the zip's central directory names a program, read without
    # the tensors; torch.load reports whatever else is wrong with the file.
    if not getattr(f, "seekable", lambda: False)():  # torch.load reads what it can
        return
    start = f.tell()
    try:
        with zipfile.ZipFile(f) as archive:  # a file object passed in stays open
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        names = []
    finally:
        f.seek(start)
    _refuse_names(names, shown)


def _refuse_names(names: list[str], shown: str) -> None:
    # A zip archive other than a torch.save file (whose records include data.pkl), told apart
    # as torch.load does: TorchScript's holds constants.pkl; a torch.export .pt2 archive_format
    # (torch 2.14) or serialized_exported_program.json (torch 2.6) and no data.pkl.
    records = {name.rsplit("/", 1)[-1] for name in names}
    if "constants.pkl" in records:
        what = "a TorchScript archive " + _RUNS.format("torchscript", "torch.jit.load")
    elif "data.pkl" in records or not names:
        return
    elif records & {"archive_format", "serialized_exported_program.json"}:
        what = "a torch.export program " + _RUNS.format("pt2", "torch.export.load")
    else:
        what = "a zip archive that torch.save did not write (it has no data.pkl record)"
    raise CheckpointError(f"{shown}: {what}; expected a checkpoint or a .safetensors file")


def load_checkpoint(
    path: str | os.PathLike[str] | IO[bytes], map_location: MapLocation = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)``, naming the file in every error.

    A local file is first checked whole (:func:`check_checkpoint_file`): a ``torch.save``
    zip archive must be complete and its records match their CRC-32 checksums, which catches
    truncation and flipped bytes ``torch.load`` misses. An open file object is read as is.

    Raises:
        FileNotFoundError: if there is no such file (a folder is not one; the message says).
        CheckpointError: if the file is empty, truncated, corrupted, not a PyTorch file (for
            a safetensors file it says how to load it), holds objects other than tensors and
            plain Python values, or is not a dict.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _ = Path(folder, "w.ckpt").write_bytes(b"not a checkpoint")
        ...     load_checkpoint(Path(folder, "w.ckpt"))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        classic_cnns.files.CheckpointError: ...: not a PyTorch checkpoint: it starts ...
    """
    opened = not isinstance(path, str | os.PathLike)
    shown = str(getattr(path, "name", "the checkpoint") if opened else os.fspath(path))  # type: ignore[arg-type]
    if local := not opened and is_local(shown):
        file = Path(local_path(shown))
        check_checkpoint_file(file, shown)
    try:
        if local:
            obj = torch.load(file, map_location=map_location, weights_only=True)
        elif opened:
            _refuse_program(path, shown)  # type: ignore[arg-type]
            obj = torch.load(path, map_location=map_location, weights_only=True)  # type: ignore[arg-type]
        else:
            with get_filesystem(shown).open(shown, "rb") as f:
                _refuse_program(f, shown)
                obj = torch.load(f, map_location=map_location, weights_only=True)
    except CheckpointError:
        raise
    except Exception as err:  # torch.load raises UnpicklingError, RuntimeError, EOFError, ...
        reason = _first_line(err)  # _REFUSED: torch/_weights_only_unpickler.py's refusals
        if isinstance(err, pickle.UnpicklingError) and re.search(_REFUSED, reason, re.I):
            raise CheckpointError(
                f"{shown}: the checkpoint holds objects other than tensors and plain Python "
                f"values ({reason}), so it was not loaded: "
                "expected weights_only=True to suffice. Load it with torch.load(..., "
                "weights_only=False) only if you trust where it came from"
            ) from err
        raise CheckpointError(
            f"{shown}: the file is truncated or corrupted ({type(err).__name__}: {reason}); "
            "expected a checkpoint written by torch.save / Trainer.save_checkpoint"
        ) from err
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"{shown}: expected a checkpoint dict (a Lightning checkpoint or a state_dict); "
            f"got a {type(obj).__name__}"
        )
    return obj


@dataclass(frozen=True)
class WeightsFile:
    """What a weights file holds, as :func:`read_weights_file` reads it.

    Attributes:
        state_dict: The network's tensors, keyed as in ``model.net.state_dict()`` (empty
            when the file was read with ``tensors=False``).
        hparams: The LightningModule's hyperparameters (empty for a plain state dict).
        data: The data configuration the model was trained with (``mean``, ``std``,
            ``image_size``, ``class_names``), when the file records it.
        source: Where the tensors came from (the file name), for messages.
        outside: A Lightning checkpoint's keys outside its network (``net.``): the saved
            LightningModule's own modules (a subclass's), which no network loads.

    Example:
        >>> WeightsFile({}, {"arch": "lenet5"}, {}).arch
        'lenet5'
    """

    state_dict: dict[str, Tensor]
    hparams: dict[str, Any]
    data: dict[str, Any]
    source: str = "the weights file"
    outside: tuple[str, ...] = ()

    @property
    def arch(self) -> str | None:
        """The registered model name the file was saved from, if it says.

        Example:
            >>> WeightsFile({}, {}, {}).arch is None
            True
        """
        return arch if isinstance(arch := self.hparams.get("arch"), str) else None


def is_safetensors_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a safetensors file, judged by its contents, not its name.

    A safetensors file starts with the 8-byte little-endian length of its JSON header,
    which begins with ``{``; ``torch.save`` writes a zip archive (``PK``) or a pickle. A
    truncated safetensors file is one too (reading it then says what is wrong).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     Path(folder, "w.safetensors").touch()
        ...     is_safetensors_file(Path(folder, "w.safetensors"))  # empty: none, whatever its name
        False
    """
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") >= 2


def _json_metadata(meta: Mapping[str, str], key: str, shown: str) -> dict[str, Any]:
    where = f"{shown}: the metadata entry {key!r}"
    expected = "the JSON object classic-cnns export writes"
    try:
        value = json.loads(meta.get(key, "{}"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{where} is not valid JSON ({err}); expected {expected}") from err
    if not isinstance(value, dict):
        raise CheckpointError(f"{where} holds a {type(value).__name__}; expected {expected}")
    return value


def _read_safetensors(path: Path, shown: str, tensors: bool) -> WeightsFile:
    try:  # an optional dependency (the export extra)
        from safetensors import safe_open
    except ImportError as err:
        raise ImportError(
            f"reading {shown} needs the safetensors package: pip install safetensors "
            "(or pip install 'classic-cnns[export]')"
        ) from err
    try:
        with safe_open(str(path), framework="pt") as f:  # the header; tensors on demand
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}  # noqa: SIM118
    except Exception as err:  # safetensors raises its own SafetensorError, OSError, ...
        raise CheckpointError(
            f"{shown}: the safetensors file is truncated or corrupted ({type(err).__name__}: "
            f"{err}); expected a file written by classic-cnns export or safetensors.save_file"
        ) from err
    hparams, data = (_json_metadata(meta, key, shown) for key in (META_HPARAMS, META_DATA))
    return WeightsFile(state, hparams, data, shown)


def read_weights_file(path: str | os.PathLike[str], *, tensors: bool = True) -> WeightsFile:
    """Read a Lightning ``.ckpt``, a ``.safetensors`` file or a ``torch.save``d state dict.

    A ``torch.save``d dict with the network's state dict under ``"state_dict"`` beside other
    entries (a training script's ``{"state_dict": ..., "epoch": ...}``) reads too. The one
    reader of weight files: ``torch.save`` files go through :func:`load_checkpoint`
    (integrity check first, then ``weights_only=True``: no code runs from the file),
    safetensors files (recognised by their contents, whatever their name) through
    ``safetensors.safe_open``. Keys of a ``torch.compile``d network (``_orig_mod.``) and the
    LightningModule's ``net.`` prefix are removed: the keys are ``model.net.state_dict()``'s.

    Args:
        path: The file.
        tensors: Read the tensors too; ``False`` reads only the hyperparameters and data
            configuration (for a safetensors file, only its header).

    Raises:
        FileNotFoundError: if ``path`` does not exist or is a folder (the message says).
        classic_cnns.files.CheckpointError: (a ``ValueError``) naming the file, if it
            is empty, truncated or corrupted, holds code, or holds none of these.

    Example:
        >>> import tempfile, torch
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     torch.save({"fc.weight": torch.ones(2, 3)}, f"{folder}/w.pt")
        ...     file = read_weights_file(f"{folder}/w.pt")
        >>> list(file.state_dict), file.arch
        (['fc.weight'], None)
    """
    shown = file_path("path", path)
    path = Path(local_path(shown))  # as load_checkpoint takes it
    _require_file(path, shown, "weights")
    if is_safetensors_file(path):
        return _read_safetensors(path, shown, tensors)
    obj = load_checkpoint(path)  # FileNotFoundError or CheckpointError, naming the file
    if "state_dict" in obj:
        # A Lightning checkpoint: the LightningModule's keys, the network's under "net.".
        saved = obj["state_dict"]
        if not isinstance(saved, Mapping):
            raise CheckpointError(
                f"{shown}: expected a state dict under 'state_dict'; got {type(saved).__name__}"
            )
        plain = {strip_compiled(k): v for k, v in saved.items()}
        state = {k.removeprefix("net."): v for k, v in plain.items() if k.startswith("net.")}
        if plain and not state:
            lightning = "pytorch-lightning_version" in obj or "hyper_parameters" in obj
            if lightning or not all(isinstance(v, Tensor) for v in plain.values()):
                raise CheckpointError(
                    f"{shown}: the checkpoint's state_dict has no 'net.' entries (it has e.g. "
                    f"{sorted(plain)[:3]}); expected the checkpoint of a classic_cnns "
                    "ImageClassifier, whose network is its 'net' attribute"
                )
            state = plain  # a training script's {"state_dict": net.state_dict(), "epoch": ...}
        saved_meta = (obj.get("hyper_parameters"), obj.get(DATA_CHECKPOINT_KEY))
        hparams, data = (dict(m) if isinstance(m, Mapping) else {} for m in saved_meta)
        outside = () if state is plain else tuple(k for k in plain if not k.startswith("net."))
        return WeightsFile(state if tensors else {}, hparams, data, shown, outside)
    if obj and all(isinstance(v, Tensor) for v in obj.values()):
        plain = {strip_compiled(str(k)): v for k, v in obj.items()}
        if all(k.startswith("net.") for k in plain):  # a LightningModule's own state_dict()
            plain = {k.removeprefix("net."): v for k, v in plain.items()}
        return WeightsFile(plain if tensors else {}, {}, {}, shown)
    kinds = sorted({type(v).__name__ for v in obj.values()})
    raise CheckpointError(
        f"{shown}: expected a Lightning checkpoint (a dict with 'state_dict'), a state dict of "
        f"tensors or a safetensors file; got a dict of {len(obj)} entries of type(s) "
        f"{', '.join(kinds) or 'none'}"
    )
