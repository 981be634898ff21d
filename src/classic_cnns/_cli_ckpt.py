"""The checkpoint a command line runs from: the model a ``--ckpt_path`` file rebuilds (never
importing what the file names) and the file ``--ckpt_path last`` stands for; the callbacks
(checkpoints, plots, predictions) each run gets.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from classic_cnns._checks import differing
from classic_cnns._warn import warn
from classic_cnns.files import is_safetensors_file, load_checkpoint
from classic_cnns.models import family_class
from classic_cnns.optim import CLI_OPTIMIZER_KEYS
from classic_cnns.plots import TrainingPlots
from classic_cnns.predict import PredictionCSV
from classic_cnns.registry import ModelInfo, list_models, model_info
from classic_cnns.task import ImageClassifier

__all__ = [
    "check_resumed_hparams",
    "checkpoint_head",
    "checkpoint_model",
    "configured_last_checkpoint",
    "last_checkpoint",
]


def arch_info(arch: Any) -> ModelInfo | None:
    """What the registry knows of a registered name; None for anything else (the model then
    says why).

    Example:
        >>> arch_info("lenet5").family, arch_info("no such net"), arch_info(None)
        ('lenet', None, None)
    """
    try:
        return model_info(arch) if isinstance(arch, str) else None
    except ValueError:
        return None


def _imported_model_class(class_path: Any) -> type[ImageClassifier] | None:
    # The ImageClassifier class that "module.Class" names in a module imported already, read
    # from sys.modules: no import, no module __getattr__, so no code that a file names runs.
    module, _, name = str(class_path).rpartition(".")
    found = getattr(sys.modules.get(module), "__dict__", {}).get(name)
    return found if isinstance(found, type) and issubclass(found, ImageClassifier) else None


def checkpoint_model(ckpt_path: str) -> dict[str, Any] | None:
    """The ``--model`` value that rebuilds a checkpoint's model, as Lightning's CLI finds it.

    Lightning's ``_parse_ckpt_path`` reads the hyperparameters with a ``torch.load`` that
    names no file; :func:`~classic_cnns.files.load_checkpoint` does. A checkpoint saved from
    Python records no class: its arch's family class rebuilds it, not ``ImageClassifier``,
    which does not take the family's options (ResNet's ``zero_init_residual``). The class a
    checkpoint names (``_class_path``) is taken only if it is an ``ImageClassifier`` that is
    imported already (``--model my_package.MyNet`` imports one): the file never makes a module
    be imported, which would run its code. Any other is ignored, with a warning, and the
    model rebuilt by its arch's family class.

    Example:
        >>> import tempfile
        >>> import lightning as L
        >>> from classic_cnns import create_model
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     trainer = L.Trainer(logger=False, enable_progress_bar=False)
        ...     trainer.strategy.connect(create_model("resnet20"))
        ...     trainer.save_checkpoint(f"{folder}/r.ckpt")
        ...     model = checkpoint_model(f"{folder}/r.ckpt")
        >>> model["class_path"], model["dict_kwargs"]["arch"]
        ('classic_cnns.models.ResNet', 'resnet20')

    Raises:
        ValueError: for a safetensors file or a ``torch.save``d state dict, which hold weights
            only: ``--weights`` takes them.
    """
    if is_safetensors_file(ckpt_path):  # load_checkpoint's advice is for Python
        raise ValueError(
            f"--ckpt_path {ckpt_path}: a safetensors file holds network weights only, not a "
            f"Lightning checkpoint (.ckpt); give it as --weights {ckpt_path} instead"
        )
    checkpoint = load_checkpoint(ckpt_path)
    if "state_dict" not in checkpoint or "pytorch-lightning_version" not in checkpoint:
        raise ValueError(  # Lightning's restore would fail with KeyError('state_dict'), ...
            f"--ckpt_path {ckpt_path}: not a Lightning checkpoint (a .ckpt that "
            "Trainer.save_checkpoint writes, with the run's state), but weights alone (a "
            f"state dict); give it as --weights {ckpt_path} instead"
        )
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    for key in ("_instantiator", *CLI_OPTIMIZER_KEYS):  # not the model's arguments
        hparams.pop(key, None)
    class_path = hparams.pop("_class_path", None)
    if class_path is not None and _imported_model_class(class_path) is None:
        warn(
            f"--ckpt_path {ckpt_path}: the checkpoint names the class {class_path!r}, which is "
            "not an ImageClassifier of a module imported already; it is ignored (a checkpoint "
            "never makes a module be imported) and the model rebuilt from its arch. For a "
            "class of your own, name it: --model my_package.MyClassifier"
        )
        class_path = None
    arch = hparams.get("arch")
    if class_path is None and isinstance(arch, str) and arch in list_models():
        cls = family_class(model_info(arch).family)
        class_path = f"{cls.__module__}.{cls.__qualname__}"
    if class_path is None:
        return hparams or None
    return {"class_path": class_path, "dict_kwargs": hparams}


def checkpoint_head(model: dict[str, Any] | None) -> int | None:
    """The class count of a checkpoint's head, from :func:`checkpoint_model`'s value: its
    ``num_classes``, else its registered arch's; ``None`` where neither says.

    ``predict --ckpt_path`` builds this head, not one for the data's classes (see
    ``ClassicCLI.after_instantiate_classes``).

    Example:
        >>> checkpoint_head({"class_path": "classic_cnns.models.LeNet5",
        ...                  "dict_kwargs": {"arch": "lenet5", "num_classes": 5}})
        5
        >>> checkpoint_head({"arch": "lenet5", "num_classes": None})  # the arch's
        10
    """
    hparams = (model or {}).get("dict_kwargs", model or {})
    found, arch = hparams.get("num_classes"), hparams.get("arch")
    if found is None and isinstance(arch, str) and arch in list_models():
        found = model_info(arch).num_classes
    return found if isinstance(found, int) and not isinstance(found, bool) else None


def _newest_last(folders: list[Path], logs: Path | None) -> Path | None:
    # The newest last*.ckpt in the folders, or in a checkpoints/ of a run under logs.
    if logs is not None:
        folders = folders + [p / "checkpoints" for p in logs.glob("*") if p.is_dir()]
    found = [p for folder in folders if folder.is_dir() for p in folder.glob("last*.ckpt")]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def last_checkpoint(trainer: Trainer) -> Path | None:
    """The newest ``last*.ckpt`` of any run under the trainer's log folder, else ``None``.

    Looks in ``<save_dir>/<name>/*/checkpoints/`` of the trainer's logger (every
    ``version_N`` of e.g. ``lightning_logs``; a logger without a folder: under
    ``default_root_dir``), or ``<default_root_dir>/checkpoints/`` without a logger, and in
    the checkpoint callbacks' own folders: where the run's configuration
    saves, as Lightning's ``"last"`` does. With a logger, ``<default_root_dir>/checkpoints/``
    holds another configuration's runs (a run without a logger, an older smoke test).

    Example:
        >>> import lightning as L
        >>> from classic_cnns.cli import last_checkpoint
        >>> last_checkpoint(L.Trainer(default_root_dir="no_runs_here", logger=False)) is None
        True
    """
    folders = [Path(c.dirpath) for c in trainer.checkpoint_callbacks if
               isinstance(c, ModelCheckpoint) and c.dirpath]  # fmt: skip
    if trainer.logger is None:  # as configured_last_checkpoint: the root's only without one
        return _newest_last([*folders, Path(trainer.default_root_dir) / "checkpoints"], None)
    logger = trainer.logger
    root = getattr(logger, "root_dir", None)
    if root is None:  # where Lightning puts another logger's: <save_dir>/<name>/<version>/
        root = Path(logger.save_dir or trainer.default_root_dir, str(logger.name))
    return _newest_last(folders, Path(root))


def configured_last_checkpoint(trainer: Any) -> Path | None:
    """:func:`last_checkpoint` of a Trainer's command-line configuration, before it is built.

    ``None`` also where the logger's folder is not in its configuration (a logger other
    than Lightning's CSV and TensorBoard loggers); the built trainer can say then.

    Example:
        >>> configured_last_checkpoint({"default_root_dir": "no_runs_here"}) is None
        True
    """
    root = Path(trainer.get("default_root_dir") or ".")
    folders = []
    callbacks = trainer.get("callbacks") or []
    for c in callbacks if isinstance(callbacks, list) else [callbacks]:  # YAML: one, or a list
        if dirpath := getattr(getattr(c, "init_args", c), "dirpath", None):
            folders.append(Path(dirpath))
    logger = trainer.get("logger")
    if isinstance(logger, list):  # Lightning's trainer.logger is the first
        logger = logger[0] if logger else False
    if logger is False:  # as last_checkpoint: the root's checkpoints/ only without a logger
        return _newest_last([*folders, root / "checkpoints"], None)
    if logger is None or logger is True:  # Lightning's default logger
        return _newest_last(folders, root / "lightning_logs")
    module, _, name = str(getattr(logger, "class_path", "")).rpartition(".")
    cls = getattr(importlib.import_module(module), name, None) if module else None
    if not (isinstance(cls, type) and issubclass(cls, CSVLogger | TensorBoardLogger)):
        return None
    args = logger.get("init_args") or {}
    logs = Path(args.get("save_dir", "."))  # (see place_default_logger)
    name = args.get("name", "lightning_logs")
    return _newest_last(folders, logs / name if name else logs)


def with_default_callbacks(trainer: Any, subcommand: str | None) -> list[Any]:
    """The trainer's callbacks, with those the command line adds unless given already.

    ``ModelCheckpoint(save_last=True)`` where checkpointing is on (not under ``fast_dev_run``,
    which is to save nothing: Lightning's callback still writes ``last.ckpt``), or
    ``save_last=True`` on the user's own first ``ModelCheckpoint`` if none of them sets it; the
    :class:`~classic_cnns.plots.TrainingPlots`, which draw in fit and test (in validate and
    predict they only take their state back from a checkpoint, as Lightning asks); for
    ``predict``, a :class:`~classic_cnns.predict.PredictionCSV`, without which Lightning's
    predictions go nowhere. ``barebones`` takes neither checkpoints nor plots.

    Example:
        >>> [type(c).__name__ for c in with_default_callbacks({}, "predict")]
        ['ModelCheckpoint', 'TrainingPlots', 'PredictionCSV']
    """
    callbacks = list(trainer.get("callbacks") or [])
    barebones = bool(trainer.get("barebones"))  # no checkpoints, no logged metrics to plot
    smoke_test = bool(trainer.get("fast_dev_run"))  # True, or a number of batches (0: off)

    def missing(kind: type) -> bool:
        return not any(isinstance(c, kind) for c in callbacks)

    saving = trainer.get("enable_checkpointing") is not False and not (barebones or smoke_test)
    if saving and missing(ModelCheckpoint):
        callbacks.append(ModelCheckpoint(save_last=True))
    own = [c for c in callbacks if isinstance(c, ModelCheckpoint)]
    if saving and own and all(c.save_last is None for c in own):
        own[0].save_last = True  # a monitoring one of the user's: --ckpt_path last still works
    if not barebones and missing(TrainingPlots):
        callbacks.append(TrainingPlots())
    if subcommand == "predict" and missing(PredictionCSV):
        callbacks.append(PredictionCSV())
    return callbacks


def with_checkpoint_model(args: list[str], at: int) -> list[str]:
    """Under ``--print_config``, put a ``--ckpt_path FILE``'s model at ``at`` in ``args``.

    jsonargparse prints the configuration before the checkpoint rebuilds its model (see
    :func:`checkpoint_model`), which printed the default model: passed back with ``-c``, its
    ``model`` contradicted the checkpoint's. The user's ``--model`` flags, after it, still
    apply (and are still checked against it). Other command lines are returned unchanged.

    Example:
        >>> with_checkpoint_model(["fit", "--ckpt_path", "r.ckpt"], 1)
        ['fit', '--ckpt_path', 'r.ckpt']
    """
    flags = [a.split("=", 1)[0] for a in args]
    if "--print_config" not in flags or "--ckpt_path" not in flags:
        return args
    i = flags.index("--ckpt_path")
    path = args[i].partition("=")[2] if "=" in args[i] else "".join(args[i + 1 : i + 2])
    model = checkpoint_model(path) if Path(path).is_file() else None
    return args if model is None else [*args[:at], "--model", yaml.safe_dump(model), *args[at:]]


def check_resumed_hparams(path: Path, hparams: Mapping[str, Any]) -> None:
    """Refuse ``--ckpt_path last``'s checkpoint where it records other model settings.

    A file given to ``--ckpt_path`` rebuilds its own model; ``last``, found only after the
    model was built from this command (a logger whose folder the configuration does not
    say), must find the run this command started. (``--optimizer``'s settings are checked
    as the optimizer's state is restored: ``optim.check_resumed_optimizers``.)

    Example:
        >>> import tempfile, torch
        >>> path = Path(tempfile.mkdtemp()) / "last.ckpt"
        >>> torch.save({"hyper_parameters": {"arch": "lenet5", "lr": 0.1}}, path)
        >>> check_resumed_hparams(path, {"arch": "lenet5", "lr": 0.2})
        Traceback (most recent call last):
        ...
        ValueError: --ckpt_path last is ...ckpt, a run with lr=0.1; this command gives lr=0.2...
    """
    saved = load_checkpoint(path).get("hyper_parameters") or {}
    keys = sorted(k for k in saved if k[0] != "_" and k not in CLI_OPTIMIZER_KEYS)
    if found := differing(saved, hparams, keys):
        _, was, now = found
        raise ValueError(
            f"--ckpt_path last is {path}, a run with {was}; this command gives {now}. "
            "Resume with that run's command, or give the file (--ckpt_path FILE), which "
            "rebuilds its model"
        )
