"""Lightning checkpoints: written atomically, verified before a resume, resumed exactly.

* :class:`AtomicCheckpointIO` is a Lightning ``CheckpointIO`` plugin that writes each
  checkpoint to a temporary file beside its target and renames it into place
  (:func:`classic_cnns.files.atomic_save`), so an interrupted save never leaves a truncated
  file where a good one was; it loads through :func:`classic_cnns.files.load_checkpoint`
  (``weights_only=True``, the file named in every error).
* :func:`verify_checkpoint` refuses the checkpoint of another architecture or
  configuration (for resuming, where nothing may be adapted).
* :class:`~classic_cnns.resume.ExactResume` (in :mod:`classic_cnns.resume`, and importable
  from here) stores what else an exact resume needs in the checkpoint.
* :func:`restore` is ``ImageClassifier.load_from_checkpoint``: it reads the file once and
  rebuilds the LightningModule from the hyperparameters it records.
* :class:`CheckpointHooks` holds the task's checkpoint hooks: ``load_from_checkpoint``, the
  data configuration saved beside the weights, and the weights of another shape fitted.

Example:
    >>> import lightning as L
    >>> from classic_cnns.checkpoint import AtomicCheckpointIO, ExactResume
    >>> trainer = L.Trainer(plugins=[AtomicCheckpointIO()], callbacks=[ExactResume()],
    ...                     logger=False, enable_progress_bar=False)
"""

from __future__ import annotations

import inspect
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import lightning as L
import torch
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.core.saving import load_hparams_from_tags_csv, load_hparams_from_yaml
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.model_helpers import _restricted_classmethod
from torch import nn
from typing_extensions import Self

from classic_cnns._atomic import local_path
from classic_cnns._checks import check_strict, differing, file_path
from classic_cnns._data_classes import (
    check_data_config,
    class_names_hint,
    data_classes,
)
from classic_cnns.data.preprocessing import config_for_channels
from classic_cnns.files import (
    DATA_CHECKPOINT_KEY,
    CheckpointError,
    atomic_save,
    check_checkpoint_file,
    is_local,
    is_safetensors_file,
    load_checkpoint,
    strip_compiled,
)
from classic_cnns.optim import restore_cli_optimizer
from classic_cnns.registry import model_info, saved_model_info
from classic_cnns.resume import ExactResume
from classic_cnns.weights import fit_checkpoint_state

__all__ = [
    "AtomicCheckpointIO",
    "CheckpointHooks",
    "ExactResume",
    "head_class_names",
    "init_parameters",
    "restore",
    "verify_checkpoint",
]

M = TypeVar("M", bound=L.LightningModule)


def init_parameters(cls: type[L.LightningModule], arch: str | None = None) -> frozenset[str]:
    """The arguments ``cls`` takes: its ``__init__``'s and, as far as each passes on more
    (``**kwargs``), those of the LightningModules above.

    With ``arch``, also that model's network options (``model_info(arch).options``), which
    :class:`~classic_cnns.task.ImageClassifier` takes as keywords, where they reach it.

    Example:
        >>> from classic_cnns import ResNet
        >>> from classic_cnns.checkpoint import init_parameters
        >>> {"arch", "lr", "small_input"} <= init_parameters(ResNet)
        True
    """
    names: set[str] = set()
    open_ended = False  # whether the last __init__ read takes **kwargs on to the next
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or not issubclass(klass, L.LightningModule):
            continue
        if klass.__module__.startswith(("lightning.", "pytorch_lightning.")):
            break
        params = inspect.signature(init).parameters.values()
        names |= {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        open_ended = any(p.kind is p.VAR_KEYWORD for p in params)
        if not open_ended:
            break  # a subclass that narrows __init__: the classes above get what it hands on
    if isinstance(arch, str) and open_ended:
        names |= set(model_info(arch).options)
    return frozenset(names - {"self"})


def restore(
    cls: type[M],
    checkpoint_path: str | os.PathLike[str] | IO[bytes],
    map_location: Any = None,
    hparams_file: str | os.PathLike[str] | None = None,
    strict: bool | None = None,
    weights_only: bool | None = True,
    **kwargs: Any,
) -> M:
    """Rebuild ``cls`` from a Lightning checkpoint, reading the file once.

    The file is read by :func:`classic_cnns.files.load_checkpoint` (checked whole, then
    ``weights_only=True`` unless ``weights_only=False``). The saved hyperparameters (or those
    of ``hparams_file``, a ``.yaml`` or ``.csv`` file as Lightning reads them, which must
    exist), updated with ``kwargs``, build the model (saved ones that ``cls``
    does not take, such as LightningCLI's ``_class_path``, are left out; a keyword it does
    not take is refused); its ``on_load_checkpoint`` fits the state (by default every
    tensor outside the head must fit, with ``strict=True`` every tensor, with
    ``strict=False`` none; see :func:`classic_cnns.weights.load_into`), and the model moves
    to the device the tensors were loaded onto (by default the one they were saved from,
    where it exists here, else the CPU; as Lightning does). A class with a ``family``
    refuses the checkpoint of another family's model.

    Example:
        >>> import tempfile
        >>> import lightning as L
        >>> from classic_cnns import LeNet5
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     trainer = L.Trainer(logger=False, enable_progress_bar=False)
        ...     trainer.strategy.connect(LeNet5(num_classes=4))
        ...     trainer.save_checkpoint(f"{folder}/m.ckpt")
        ...     restore(LeNet5, f"{folder}/m.ckpt").num_classes
        4
    """
    check_strict(strict)
    if not hasattr(checkpoint_path, "read"):  # else an open file
        file_path("checkpoint_path", checkpoint_path)
    if weights_only is False:  # a file you trust: any object is unpickled
        checkpoint = _load_trusted(checkpoint_path, map_location or _saved_device_or_cpu)
    else:
        checkpoint = load_checkpoint(checkpoint_path, map_location or _saved_device_or_cpu)
    if isinstance(checkpoint_path, str | os.PathLike):
        shown = os.fspath(checkpoint_path)
    else:
        shown = str(getattr(checkpoint_path, "name", "the checkpoint"))
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    if hparams_file is not None:  # Lightning's reading, but a missing file is no {}
        path = file_path("hparams_file", hparams_file)
        suffix = os.path.splitext(path)[1].lower()
        if suffix not in (".yaml", ".yml", ".csv"):
            raise ValueError(f"hparams_file must be a .yaml, .yml or .csv file; got {path!r}")
        if not get_filesystem(path).isfile(path):
            raise FileNotFoundError(f"hparams_file {path!r} does not exist")
        read = load_hparams_from_tags_csv if suffix == ".csv" else load_hparams_from_yaml
        hparams = dict(read(path) or {})
    saved = hparams.get("arch")
    hparams.update(kwargs)
    arch, family = hparams.get("arch"), getattr(cls, "family", None)
    if isinstance(arch, str) and "arch" not in kwargs:  # a model of one's own, not imported
        saved_model_info(arch, shown)
    if family is not None and isinstance(arch, str) and model_info(arch).family != family:
        if "arch" in kwargs:  # the caller's, not the file's
            raise ValueError(
                f"arch={arch!r} is not one of {cls.__name__}'s archs (the {family} family); "
                f"{shown} holds {saved!r}"
            )
        raise CheckpointError(
            f"{shown}: the checkpoint holds a {arch!r} model, which {cls.__name__} does not "
            "build; load it with ImageClassifier.load_from_checkpoint or classic_cnns.load_model"
        )
    accepted = init_parameters(cls, arch if isinstance(arch, str) else None)
    if unknown := sorted(set(kwargs) - accepted):  # a typo must not pass as the saved value
        raise TypeError(
            f"{cls.__name__}.load_from_checkpoint() got unknown argument(s) {unknown}; "
            f"it takes {sorted(accepted)}"
        )
    model = cls(**{k: v for k, v in hparams.items() if k in accepted})
    # Lightning's switch for how a checkpoint loads (None: not set), which
    # on_load_checkpoint reads: None, the head may differ; True, nothing may; False, anything.
    previous = getattr(model, "_strict_loading", None)
    model._strict_loading = previous if strict is None else strict
    try:
        model.on_load_checkpoint(checkpoint)
    finally:
        model._strict_loading = previous
    state = checkpoint["state_dict"]
    model.load_state_dict(state, strict=True if strict is None else strict)
    # As Lightning does: the model joins the device its tensors were loaded onto.
    device = next((t.device for t in state.values() if isinstance(t, torch.Tensor)), None)
    return model if device is None else model.to(device)


def _load_trusted(source: Any, map_location: Any) -> dict[str, Any]:
    # weights_only=False goes through Lightning's reader only (torch.load is never called
    # without weights_only=True). It takes a path, asking the file system first whether it
    # exists: an open file object, which no file system knows, is copied to one.
    read = TorchCheckpointIO().load_checkpoint
    if isinstance(source, str | os.PathLike):
        local = local_path(source)
        if is_local(source) and is_safetensors_file(local):
            check_checkpoint_file(local, os.fspath(source))  # says how to load one
        return read(os.fspath(source), map_location, weights_only=False)
    with tempfile.TemporaryDirectory(prefix="classic-cnns-") as folder:
        path = os.path.join(folder, "checkpoint")
        with open(path, "wb") as f:
            shutil.copyfileobj(source, f, 1 << 20)
        return read(path, map_location, weights_only=False)


def _saved_device_or_cpu(storage: Any, location: str) -> Any:
    # Lightning's default map_location: each tensor goes back to the device it was saved
    # from where that device exists here, else to the CPU.
    kind = location.split(":")[0]
    available = {"cpu": True, "cuda": torch.cuda.is_available()}.get(kind)
    if kind == "mps":
        available = torch.backends.mps.is_available()
    return None if available else storage.cpu()


def head_class_names(config: Mapping[str, Any] | None, num_classes: int | None) -> list[str] | None:
    """The class names a data configuration records, if they are as many as ``num_classes``
    (the head's; ``None``: any number); ``None`` otherwise: names of an older head, left by a
    checkpoint that replaced it, or none recorded.

    Example:
        >>> head_class_names({"class_names": ["cat", "dog"]}, 2)
        ['cat', 'dog']
        >>> head_class_names({"class_names": ["cat", "dog"]}, 5) is None
        True
    """
    names = (config or {}).get("class_names")
    if names is None or (num_classes is not None and len(names) != num_classes):
        return None
    return list(names)


def verify_checkpoint(
    model: nn.Module,
    checkpoint: Mapping[str, Any],
    source: str | os.PathLike[str] = "the checkpoint",
    class_names: Sequence[str] | None = None,
) -> None:
    """Raise a :class:`CheckpointError` unless ``checkpoint`` holds exactly ``model``'s weights.

    For resuming a run, where nothing may be adapted: the checkpoint's ``arch``
    hyperparameter (if any) must be ``model``'s, and its ``state_dict`` must have the
    same keys and shapes (``_orig_mod.`` prefixes of ``torch.compile`` aside). The message
    names ``source`` and lists (the first few) missing, unexpected and reshaped entries.
    ``class_names``, the classes of the data the run goes on with, must be those the
    checkpoint records (if it records as many as ``model`` has): output ``i`` means its
    ``i``-th class.

    Example:
        >>> from classic_cnns import create_model
        >>> from classic_cnns.checkpoint import verify_checkpoint
        >>> lenet, resnet = create_model("lenet5"), create_model("resnet20")
        >>> verify_checkpoint(lenet, {"state_dict": resnet.state_dict()}, "r.ckpt")
        Traceback (most recent call last):
        ...
        classic_cnns.files.CheckpointError: r.ckpt: the weights do not fit lenet5 ...
    """
    name = getattr(getattr(model, "info", None), "name", type(model).__name__)
    hparams = checkpoint.get("hyper_parameters")
    arch = hparams.get("arch") if isinstance(hparams, Mapping) else None
    if isinstance(arch, str) and arch != name:
        raise CheckpointError(
            f"{source}: the checkpoint holds a {arch!r} model; expected {name!r}, the model "
            f"it is loaded into. Create the model with create_model({arch!r}) (on the command "
            f"line: --model {arch}), or start a new run from its weights with checkpoint_path "
            "(--weights FILE) instead of resuming"
        )
    channels = hparams.get("in_channels") if isinstance(hparams, Mapping) else None
    built = getattr(model, "in_channels", channels)
    if isinstance(channels, int) and channels != built:
        raise CheckpointError(
            f"{source}: the checkpoint's {arch or name} takes images of {channels} channel(s); "
            f"the model was built for {built} (on the command line, the data's). "
            f"Give it {channels}-channel images (ImageFolder: channels={channels}, "
            f"--data.channels {channels})"
        )
    config = checkpoint.get(DATA_CHECKPOINT_KEY)
    # The checkpoint's own head (None: its arch's), not the model's, which on the command line
    # the data's classes build: names of as many classes as the data's hid the mismatch.
    saved = getattr(model, "num_classes", None)  # without hyperparameters: as the model's
    if isinstance(hparams, Mapping) and "num_classes" in hparams:
        saved = hparams["num_classes"] or getattr(getattr(model, "info", None), "num_classes", None)
    recorded = head_class_names(config, saved)
    names = None if class_names is None else [str(n) for n in class_names]  # as recorded
    if names is not None and recorded is not None and recorded != names:
        raise CheckpointError(
            f"{source}: the checkpoint was trained on the classes {recorded}; the data "
            f"has {names}, which its outputs do not stand for. Start a new run "
            "from its weights (--weights FILE, or checkpoint_path) to train on these classes"
            + class_names_hint(recorded, names)
        )
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, Mapping):
        raise CheckpointError(
            f"{source}: expected a state_dict mapping; got {type(state).__name__}"
        )
    state = {strip_compiled(k): v for k, v in state.items()}
    expected = {strip_compiled(k): v for k, v in model.state_dict().items()}
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
        if storage_options is not None or not is_local(path):
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
            return _load_trusted(path, map_location)
        return load_checkpoint(path, map_location)


# What to do about data prepared otherwise than a model's record (not a ckpt_path's) says.
_PREPARE_AS_TRAINED = (
    "Give the datamodule the preparation model.data_config records (on the command line, "
    "the training run's --data flags, or -c its config.yaml)"
)
# What the restored optimizer and LR schedule carry: settings a resume cannot change.
_RESUMED = ("optimizer", "lr", "backbone_lr", "weight_decay", "momentum", "scheduler")


def _check_resumed_settings(ours: Mapping[str, Any], checkpoint: Mapping[str, Any],
                            source: str | os.PathLike[str]) -> None:  # fmt: skip
    # The optimizer's and the schedule's states come back from the checkpoint over the ones
    # this model made: other settings would not run (or fail inside torch), yet be recorded.
    saved = checkpoint.get("hyper_parameters")
    if found := differing(saved if isinstance(saved, Mapping) else {}, ours, _RESUMED):
        _, was, now = found
        raise CheckpointError(
            f"{source}: the checkpoint's run trained with {was}; this model has {now}. "
            "Resuming restores the checkpoint's optimizer and LR schedule, which these "
            "settings cannot change: resume with the checkpoint's settings (load_model(path) "
            "or Model.load_from_checkpoint(path) rebuilds them), or start a new run from its "
            "weights: create_model(name, checkpoint_path=<file>) (the CLI: --weights <file>)"
        )


class CheckpointHooks(L.LightningModule):
    """The checkpoint hooks of :class:`~classic_cnns.task.ImageClassifier`: exact resumes
    (:class:`ExactResume`), the data configuration kept beside the weights, checkpoints of
    another shape fitted to the model (a new head, other input channels) and
    ``load_from_checkpoint`` reading the file once (:func:`restore`).

    Example:
        >>> from classic_cnns import LeNet5
        >>> from classic_cnns.checkpoint import CheckpointHooks
        >>> isinstance(LeNet5(), CheckpointHooks)
        True
    """

    # What the task sets: its head's class count and how its training data was prepared.
    num_classes: int
    in_channels: int
    data_config: dict[str, Any]
    info: Any  # its registry entry (ModelInfo): .name, the registered name
    _restored_data: tuple[Any, dict[str, Any]] | None  # a ckpt_path and its data config

    def configure_callbacks(self) -> list[L.Callback]:
        """:class:`~classic_cnns.resume.ExactResume`: resuming from a checkpoint is exact.

        None when the trainer has one already (its own, or this model's from an earlier
        ``fit`` on the same trainer), so that ``test`` after ``fit`` replaces nothing.
        """
        given = any(isinstance(c, ExactResume) for c in getattr(self._trainer, "callbacks", []))
        return [] if given else [ExactResume()]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the data configuration beside the weights (plain lists, for ``weights_only``);
        leave out the function older torch (2.6; not 2.14) puts in ``SWALR``'s state (#163105),
        which ``weights_only`` refuses: ``StochasticWeightAveraging``'s checkpoints would not
        load. ``SWALR`` sets it again when it is made, before a resume loads its state."""
        if self.data_config:
            checkpoint[DATA_CHECKPOINT_KEY] = self.data_config
        callbacks = checkpoint.get("callbacks", {}).values()
        swa = [c.get("scheduler_state") for c in callbacks if isinstance(c, dict)]
        for state in [*checkpoint.get("lr_schedulers", []), *swa]:
            if isinstance(state, dict) and callable(state.get("anneal_func")):
                del state["anneal_func"]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Fit the checkpoint's weights to this model before Lightning loads them.

        See :func:`classic_cnns.weights.fit_checkpoint_state`: ``_orig_mod.`` keys of a
        ``torch.compile``d network, other input channels and other ``num_classes``. A
        ``ckpt_path`` restore's recorded data configuration is compared with the datamodule's
        once its loaders are made (:func:`~classic_cnns._data_classes.check_data_config`).
        """
        trainer = self._trainer
        resumed = False
        if trainer is not None and trainer.ckpt_path:
            # Trainer.fit/validate/test(ckpt_path=...): the checkpoint must be this very model,
            # and whole: torch.load takes a file with a damaged record (AtomicCheckpointIO's
            # reading, the CLI's, checked it already).
            io, path = trainer.strategy.checkpoint_io, trainer.ckpt_path
            if not isinstance(io, AtomicCheckpointIO) and is_local(path):
                check_checkpoint_file(path)
            verify_checkpoint(self, checkpoint, trainer.ckpt_path, data_classes(trainer))
            if resumed := trainer.state.fn == TrainerFn.FITTING:  # its training settings too
                _check_resumed_settings(self.hparams, checkpoint, trainer.ckpt_path)
                # For the task's on_fit_start, before Lightning loads them (optim's check); a
                # tuner's own restore (LearningRateFinder's) comes once they exist, and loads them.
                if not trainer.optimizers:
                    saved = checkpoint.get("optimizer_states"), checkpoint.get("lr_schedulers")
                    self._saved_states = (saved[0] or [], saved[1] or [])
        restore_cli_optimizer(self, checkpoint.get("hyper_parameters"), resumed=resumed)
        self.data_config = dict(checkpoint.get(DATA_CHECKPOINT_KEY) or self.data_config)
        if head_class_names(self.data_config, self.num_classes) is None:  # a new head's: unknown
            self.data_config.pop("class_names", None)
        self.data_config = config_for_channels(self.data_config, self.in_channels)
        restored = trainer.ckpt_path if trainer is not None else None  # fit/test(ckpt_path=)
        self._restored_data = None
        if restored:  # compared at the loop's start (no record in the file: nothing to compare)
            recorded = self.data_config if checkpoint.get(DATA_CHECKPOINT_KEY) else {}
            self._restored_data = (restored, dict(recorded))
        fit_checkpoint_state(self, checkpoint, getattr(self, "_strict_loading", None))

    def on_predict_start(self) -> None:
        """Warn of data prepared otherwise than the model was trained on (its record, or a restored
        checkpoint's)."""
        self._check_restored_data()

    def _check_restored_data(self) -> None:
        # At a loop's start (its loaders made: the datamodule has followed the restored model):
        # the data's preprocessing must be what the model learned from. Once per ckpt_path
        # restore, the checkpoint's; else, evaluating, what load_model or a fit recorded (a
        # run's record has its image size; ImageNet weights' normalisation alone is no run's).
        restored, self._restored_data = getattr(self, "_restored_data", None), None
        trainer, config = self._trainer, self.data_config
        dm = getattr(trainer, "datamodule", None)
        evaluating = trainer is not None and trainer.state.fn != TrainerFn.FITTING
        if restored is not None:
            check_data_config(restored[1], dm, restored[0])
        elif evaluating and "image_size" in config:
            check_data_config(config, dm, self.info.name, _PREPARE_AS_TRAINED)

    @_restricted_classmethod  # as Lightning's: model.load_from_checkpoint(...) is refused
    def load_from_checkpoint(  # type: ignore[override]
        cls,
        checkpoint_path: str | Path | IO[bytes],
        map_location: Any = None,
        hparams_file: str | Path | None = None,
        strict: bool | None = None,
        weights_only: bool | None = True,
        **kwargs: Any,
    ) -> Self:
        """Restore a model from a Lightning checkpoint, reading the file once.

        See :func:`classic_cnns.checkpoint.restore`: the file is checked whole and read with
        ``weights_only=True`` (unless ``weights_only=False``). Keyword arguments override the
        saved hyperparameters, and shapes may change with them: ``num_classes=5`` loads the
        backbone and gives a fresh 5-class head, ``in_channels=1`` adapts the first
        convolution; a warning names every key not loaded. ``strict``: see ``restore``
        (``False`` loads what fits). ``_orig_mod.`` keys load. Nothing is downloaded. Called
        on an instance (``model.load_from_checkpoint(path)``, which would leave ``model`` as
        it was), it raises ``TypeError``, as Lightning's does.

        Example:
            >>> from classic_cnns import LeNet5
            >>> model = LeNet5.load_from_checkpoint("digits.ckpt", num_classes=5)  # doctest: +SKIP
        """
        return restore(
            cls, checkpoint_path, map_location, hparams_file, strict, weights_only, **kwargs
        )
