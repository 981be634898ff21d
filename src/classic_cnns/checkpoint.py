"""Checkpoints that are written atomically and read safely.

* :class:`AtomicCheckpointIO` is a Lightning ``CheckpointIO`` plugin that writes each
  checkpoint to a temporary file beside its target and renames it into place, so an
  interrupted save never leaves a truncated file where a good one was; it loads with
  ``weights_only=True`` and names the file in every error.
* :func:`atomic_path` is the same write-then-rename for any writer (exported models,
  CSV files): nothing is lost or half-written when writing fails.
* :func:`load_checkpoint` reads a checkpoint with ``torch.load(weights_only=True)`` and
  turns a missing, empty, truncated or corrupted file into an error that says which file
  and what is wrong. It is the package's one reader of ``torch.save`` files:
  :func:`classic_cnns.weights.read_weights_file` (fine-tuning, export, predict) and
  ``ImageClassifier.load_from_checkpoint`` read through it.
  :func:`verify_checkpoint` refuses the checkpoint of another architecture or
  configuration (for resuming, where nothing may be adapted).
* :class:`ExactResume` stores what else an exact resume needs in the checkpoint: the
  training loader's position and torch's random number generator states.

Example:
    >>> import lightning as L
    >>> from classic_cnns.checkpoint import AtomicCheckpointIO, ExactResume
    >>> trainer = L.Trainer(plugins=[AtomicCheckpointIO()], callbacks=[ExactResume()],
    ...                     logger=False, enable_progress_bar=False)
"""

from __future__ import annotations

import contextlib
import os
import pickle
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import nn

from classic_cnns.data.sampling import ResumableDataLoader
from classic_cnns.weights import _strip_compiled

__all__ = [
    "AtomicCheckpointIO",
    "CheckpointError",
    "ExactResume",
    "atomic_path",
    "atomic_save",
    "check_checkpoint_file",
    "load_checkpoint",
    "verify_checkpoint",
]

MapLocation = str | torch.device | Callable[..., Any] | dict[str, str] | None


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and the problem.

    Example:
        >>> import tempfile
        >>> from classic_cnns.checkpoint import CheckpointError, load_checkpoint
        >>> with tempfile.NamedTemporaryFile(suffix=".ckpt") as f:  # an empty file
        ...     try:
        ...         load_checkpoint(f.name)
        ...     except CheckpointError as err:
        ...         print(str(err).removeprefix(f.name).split(";")[0])
        : the file is empty (0 bytes)
    """


def _is_local(path: str | os.PathLike[str]) -> bool:
    return "://" not in str(path) or str(path).startswith("file://")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto ``path`` only if the block succeeds.

    The temporary file (``.<name>.<random>.tmp`` in the target's folder, created empty
    with the permissions a plain ``open`` would give) is for the block to write, by any
    means. When the block ends without an error the file is flushed to disk and renamed
    over ``path`` in one step (atomic on POSIX and Windows file systems: readers see the
    old file or the complete new one). When it raises, even ``KeyboardInterrupt``, the
    temporary file is removed and whatever was at ``path`` is left untouched.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from classic_cnns.checkpoint import atomic_path
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     with atomic_path(f"{folder}/out.csv") as tmp:
        ...         _ = tmp.write_text("file,class\\n")
        ...     sorted(p.name for p in Path(folder).iterdir())
        ['out.csv']
    """
    path = Path(os.fspath(path).removeprefix("file://"))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    # os.open with 0o666 lets the umask decide the permissions, as for a plain open()
    # (tempfile.mkstemp would make the final file readable by its owner only).
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666))
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # the writer may not have synced: do it before the rename
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if os.name == "posix":  # make the rename itself durable (best effort)
        with contextlib.suppress(OSError):
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to a temporary file in the target's folder, then rename it into place.

    See :func:`atomic_path`: readers see the old file or the complete new one, never a
    partial write. If saving fails, the temporary file is removed and whatever was at
    ``path`` is left untouched.

    Example:
        >>> import tempfile, torch
        >>> from classic_cnns.checkpoint import atomic_save
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     atomic_save({"w": torch.ones(2)}, f"{folder}/w.pt")
        ...     torch.load(f"{folder}/w.pt", weights_only=True)["w"].tolist()
        [1.0, 1.0]
    """
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        torch.save(obj, f)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def check_checkpoint_file(path: str | os.PathLike[str], shown: str | None = None) -> None:
    """Raise unless the local file ``path`` is a whole, intact ``torch.save`` file.

    Reads the file once without unpickling anything: a zip archive (what ``torch.save``
    writes) must be complete and every record must match its CRC-32 checksum.

    Raises:
        FileNotFoundError: if there is no such file.
        CheckpointError: naming the file, if it is empty, truncated, corrupted or not a
            PyTorch file.

    Example:
        >>> import tempfile, torch
        >>> from classic_cnns.checkpoint import check_checkpoint_file
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     torch.save({"w": torch.ones(3)}, f"{folder}/w.pt")
        ...     check_checkpoint_file(f"{folder}/w.pt")  # no error: whole and intact
    """
    shown = os.fspath(path) if shown is None else shown
    path = Path(os.fspath(path).removeprefix("file://"))
    if not path.is_file():
        raise FileNotFoundError(f"{shown}: no such checkpoint file")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(
            f"{shown}: the file is empty (0 bytes); expected a checkpoint written by "
            "torch.save. It was probably cut off while being written"
        )
    with path.open("rb") as f:
        head = f.read(4)
    if head.startswith(b"\x80"):  # the legacy (pre-1.6) torch.save format: a pickle stream
        return
    if head != b"PK\x03\x04":
        raise CheckpointError(
            f"{shown}: not a PyTorch checkpoint: it starts with {head!r}; expected a zip "
            "archive (b'PK\\x03\\x04') as torch.save and Trainer.save_checkpoint write"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # reads every record and checks its CRC-32
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


def load_checkpoint(
    path: str | os.PathLike[str], map_location: MapLocation = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)``, naming the file in every error.

    A local file is first checked whole: a ``torch.save`` zip archive must be complete
    and every record must match its CRC-32 checksum, which catches truncation and flipped
    bytes that ``torch.load`` alone would load without a word.

    Raises:
        FileNotFoundError: if there is no such file.
        CheckpointError: if the file is empty, truncated, corrupted, not a PyTorch file,
            holds objects other than tensors and plain Python values, or is not a dict.

    Example:
        >>> import tempfile, torch
        >>> from classic_cnns.checkpoint import CheckpointError, load_checkpoint
        >>> with tempfile.NamedTemporaryFile(suffix=".ckpt") as f:
        ...     _ = f.write(b"not a checkpoint"); f.flush()
        ...     load_checkpoint(f.name)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        classic_cnns.checkpoint.CheckpointError: ...: not a PyTorch checkpoint: it starts ...
    """
    shown = os.fspath(path)
    local = _is_local(path)
    if local:
        file = Path(shown.removeprefix("file://"))
        check_checkpoint_file(file, shown)
    try:
        if local:
            obj = torch.load(file, map_location=map_location, weights_only=True)
        else:
            with get_filesystem(shown).open(shown, "rb") as f:
                obj = torch.load(f, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err):
            found = [line.strip() for line in str(err).splitlines() if "Unsupported" in line]
            raise CheckpointError(
                f"{shown}: the checkpoint holds objects other than tensors and plain Python "
                f"values ({found[0] if found else _first_line(err)}), so it was not loaded: "
                "expected weights_only=True to suffice. Load it with torch.load(..., "
                "weights_only=False) only if you trust where it came from"
            ) from err
        raise CheckpointError(
            f"{shown}: the file is corrupted ({_first_line(err)}); expected a checkpoint "
            "written by torch.save / Trainer.save_checkpoint"
        ) from err
    except Exception as err:  # torch.load raises RuntimeError, KeyError, EOFError, ...
        raise CheckpointError(
            f"{shown}: the file is truncated or corrupted ({type(err).__name__}: "
            f"{_first_line(err)}); expected a checkpoint written by torch.save / "
            "Trainer.save_checkpoint"
        ) from err
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"{shown}: expected a checkpoint dict (a Lightning checkpoint or a state_dict); "
            f"got a {type(obj).__name__}"
        )
    return obj


def verify_checkpoint(
    model: nn.Module, checkpoint: Mapping[str, Any], source: str = "the checkpoint"
) -> None:
    """Raise a :class:`CheckpointError` unless ``checkpoint`` holds exactly ``model``'s weights.

    For resuming a run, where nothing may be adapted: the checkpoint's ``arch``
    hyperparameter (if any) must be ``model``'s, and its ``state_dict`` must have the
    same keys and shapes (``_orig_mod.`` prefixes of ``torch.compile`` aside). The message
    names ``source`` and lists (the first few) missing, unexpected and reshaped entries.

    Example:
        >>> from classic_cnns import create_model
        >>> from classic_cnns.checkpoint import verify_checkpoint
        >>> lenet, resnet = create_model("lenet5"), create_model("resnet20")
        >>> verify_checkpoint(lenet, {"state_dict": resnet.state_dict()}, "r.ckpt")
        Traceback (most recent call last):
        ...
        classic_cnns.checkpoint.CheckpointError: r.ckpt: the weights do not fit lenet5 ...
    """
    name = getattr(getattr(model, "info", None), "name", type(model).__name__)
    hparams = checkpoint.get("hyper_parameters")
    arch = hparams.get("arch") if isinstance(hparams, Mapping) else None
    if isinstance(arch, str) and arch != name:
        raise CheckpointError(
            f"{source}: the checkpoint holds a {arch!r} model; expected {name!r}, the model "
            f"it is loaded into. Create the model with create_model({arch!r}), or start a new "
            "run from its weights with checkpoint_path instead of resuming"
        )
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, Mapping):
        raise CheckpointError(
            f"{source}: expected a state_dict mapping; got {type(state).__name__}"
        )
    state = {_strip_compiled(k): v for k, v in state.items()}
    expected = {_strip_compiled(k): v for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if isinstance(state.get(k), torch.Tensor) and state[k].shape != v.shape
    ]
    if not (missing or unexpected or shapes):
        return

    def few(items: list[str]) -> str:
        return ", ".join(items[:3]) + (f" and {len(items) - 3} more" if len(items) > 3 else "")

    parts = [
        f"{len(missing)} missing ({few(missing)})" if missing else "",
        f"{len(unexpected)} unexpected ({few(unexpected)})" if unexpected else "",
        f"{len(shapes)} of another shape: {few(shapes)}" if shapes else "",
    ]
    raise CheckpointError(
        f"{source}: the weights do not fit {name} ({len(expected)} entries expected, "
        f"{len(state)} given: " + "; ".join(p for p in parts if p) + "). It is a checkpoint "
        "of another architecture or configuration"
    )


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO``, made atomic on save and safe on load.

    Saving writes a temporary file in the checkpoint's folder, fsyncs it and renames it
    over the target (:func:`atomic_save`), so an interrupted save never replaces a good
    checkpoint with a truncated one. Loading uses ``weights_only=True`` unless the
    caller asks otherwise, and a missing, truncated or corrupted file raises an error
    that names it (:func:`load_checkpoint`). Remote (fsspec) paths use Lightning's own
    save.

    Example:
        >>> import lightning as L
        >>> from classic_cnns.checkpoint import AtomicCheckpointIO
        >>> trainer = L.Trainer(plugins=[AtomicCheckpointIO()], logger=False)
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        """Write ``checkpoint`` to ``path`` atomically (temporary file, then rename)."""
        if storage_options is not None or not _is_local(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        atomic_save(checkpoint, path)

    def load_checkpoint(
        self,
        path: Any,
        map_location: Any | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        """Load ``path`` with ``weights_only=True`` (unless ``weights_only=False`` is passed)."""
        if weights_only is False:
            return super().load_checkpoint(path, map_location, weights_only=False)
        return load_checkpoint(path, map_location)


def _rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: Mapping[str, Any]) -> None:
    if "torch" in states:
        torch.set_rng_state(states["torch"].cpu())
    cuda = states.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


def _train_loaders(trainer: L.Trainer) -> list[ResumableDataLoader]:
    from lightning.pytorch.utilities.combined_loader import CombinedLoader

    loaders = trainer.train_dataloader
    if loaders is None:
        return []
    flat = (
        loaders.flattened
        if isinstance(loaders, CombinedLoader)
        else (CombinedLoader(loaders).flattened)
    )
    return [dl for dl in flat if isinstance(dl, ResumableDataLoader)]


class ExactResume(L.Callback):
    """Save what a Lightning checkpoint leaves out, so that a resumed run continues exactly.

    A checkpoint holds the weights, the optimizer, the LR schedule and the loop counters.
    This callback adds, under its own key:

    * the position of the datamodules' training loader
      (:class:`~classic_cnns.data.sampling.ResumableDataLoader`: seed, epoch, batches
      served), which it hands back before the first batch of the resumed run, so an epoch
      interrupted mid-way goes on with the batches it had not seen, in the same order;
    * torch's random number generator states (CPU, and CUDA when in use), so dropout
      draws the same masks as in the uninterrupted run.

    With ``seed_everything``, ``deterministic=True`` and ``num_workers=0`` the resumed
    run's weights and metrics are then bit-identical to the uninterrupted run's on the
    CPU (``tests/test_resume.py``).

    Example:
        >>> import lightning as L
        >>> from classic_cnns.checkpoint import ExactResume
        >>> trainer = L.Trainer(callbacks=[ExactResume()], logger=False)
    """

    def __init__(self) -> None:
        self._trainer: L.Trainer | None = None
        self._pending: dict[str, Any] | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Remember the trainer, whose loaders :meth:`state_dict` reads."""
        self._trainer = trainer

    def state_dict(self) -> dict[str, Any]:
        """The RNG states and the training loaders' positions."""
        loaders = _train_loaders(self._trainer) if self._trainer is not None else []
        return {"rng": _rng_states(), "loaders": [dl.state_dict() for dl in loaders]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep the saved state until training starts (the loaders do not exist yet)."""
        self._pending = state_dict

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Put the saved RNG states and loader positions back, just before the first batch."""
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        loaders = _train_loaders(trainer)
        saved = state.get("loaders", [])
        if len(saved) == len(loaders):
            for loader, loader_state in zip(loaders, saved, strict=True):
                loader.load_state_dict(loader_state)
        elif saved:
            from lightning.pytorch.utilities import rank_zero_warn

            rank_zero_warn(
                f"ExactResume: the checkpoint holds the position of {len(saved)} training "
                f"loader(s), the run has {len(loaders)} resumable one(s); the data order "
                "restarts instead of continuing"
            )
        _set_rng_states(state.get("rng", {}))
