"""Pieces of the command line that are not LightningCLI's: name checks with suggestions, the
short ``--help``, ``classic-cnns data fetch``, the callbacks a run adds (one-line errors and
quiet runs: :mod:`classic_cnns._cli_errors`; the checkpoint a run starts from:
:mod:`classic_cnns._cli_ckpt`; the default classes added to a command line:
:mod:`classic_cnns._cli_args`).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import textwrap
import typing
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import lightning
import torch
import torchvision
import yaml
from jsonargparse.typing import register_type
from lightning.pytorch import Trainer
from lightning.pytorch.cli import SaveConfigCallback
from torch.torch_version import TorchVersion

from classic_cnns import data
from classic_cnns._checks import suggest
from classic_cnns._cli_args import (
    check_config_files,
    config_model_flags,
    config_options,
    environment_configs,
    option_values,
)
from classic_cnns._cli_errors import quiet_lightning
from classic_cnns._cli_loggers import log_dir, writes_run_folder
from classic_cnns._version import __version__
from classic_cnns.data import MNIST, FashionMNIST, InMemoryDataModule
from classic_cnns.data.transfer import TransferDataModule
from classic_cnns.files import DATA_ENV, default_data_dir
from classic_cnns.hub import create_model
from classic_cnns.inspection import summary
from classic_cnns.models import FAMILIES, family_class
from classic_cnns.optim import OPTIMIZERS, SCHEDULERS
from classic_cnns.registry import list_models, model_info
from classic_cnns.task import ImageClassifier

DEBUG_ENV = "CLASSIC_CNNS_DEBUG"

# jsonargparse serialises no torch.device: StochasticWeightAveraging's device=cpu went into
# config.yaml as "Unable to serialize instance cpu", on which a rerun with -c failed later.
register_type(torch.device, serializer=str, deserializer=torch.device)


def model_class_names() -> list[str]:
    """The LightningModule classes ``--model`` takes by name (``LeNet5``, ``ResNet``...)."""
    return [ImageClassifier.__name__, *(cls.__name__ for cls in FAMILIES.values())]


def data_class_names() -> list[str]:
    """The datamodules ``--data`` takes by name (``Digits``, ``MNIST``...; not the bases)."""
    bases = (InMemoryDataModule, TransferDataModule)
    classes = [getattr(data, name) for name in data.__all__]
    return [
        c.__name__
        for c in classes
        if isinstance(c, type) and issubclass(c, InMemoryDataModule) and c not in bases
    ]


@contextlib.contextmanager
def int_before_float(function: Callable[..., Any]) -> Iterator[None]:
    """Within the block, ``function``'s annotations list ``int`` before ``float`` in a Union.

    typing caches the first Union it builds of a set of types, whatever their order: after
    ``import sklearn.datasets`` (whose ``Optional[Union[float, int]]`` comes first), the
    Trainer's ``Optional[Union[int, float]]`` is float-first too, and jsonargparse, which
    tries the types in order, reads ``--trainer.limit_train_batches=1`` as 1.0, the whole
    epoch. The annotations are restored on leaving.
    """
    annotations = function.__annotations__
    saved = dict(annotations)
    for name, hint in saved.items():
        types = typing.get_args(hint)
        if typing.get_origin(hint) is typing.Union and {int, float} <= set(types):
            # A flat tuple: the cache compares its items in order, so no float-first hit.
            ordered = tuple(sorted(types, key=lambda t: t is not int))
            annotations[name] = typing.Union[ordered]  # noqa: UP007 (the typing object)
    try:
        yield
    finally:
        annotations.clear()
        annotations.update(saved)


def check_names(args: list[str]) -> None:
    """:func:`~classic_cnns._cli_args.check_config_files`, :func:`check_data_names` (which
    may fix a name in place) and :func:`check_optimizer_names`: what LightningCLI would
    refuse with less to go on (no file named, no close names).

    Example:
        >>> args = ["fit", "--data", "digits", "--optimizer", "AdamW"]
        >>> check_names(args)
        >>> args
        ['fit', '--data', 'Digits', '--optimizer', 'AdamW']
    """
    check_config_files(args)
    check_data_names(args)
    check_optimizer_names(args)


def check_data_names(args: list[str]) -> None:
    """Check ``--data NAME`` (and ``--data.help NAME``) against the datamodules, in place;
    fix a name's letter case.

    Raises:
        ValueError: for an unknown name, with close names (a dotted class path passes), and
            for ``--model.num_classes`` or ``--model.in_channels``, which the data sets (each
            with what to do instead).

    Example:
        >>> check_data_names(["fit", "--model.in_channels", "3"])
        Traceback (most recent call last):
        ...
        ValueError: --model.in_channels: the model takes its in_channels from the datamodule; ...
    """
    names = data_class_names()
    given = [(flag, *o) for flag in ("--data", "--data.help") for o in option_values(args, flag)]
    for flag, i, value, used in sorted(given, key=lambda g: -g[1]):  # later first: indices hold
        if "." in value or "{" in value or value in names:
            continue
        same = [n for n in names if n.lower() == value.lower()]
        if same:
            args[i : i + used] = [flag, same[0]]
            continue
        raise ValueError(
            f"{flag}: unknown datamodule {value!r}: expected one of {', '.join(names)}, or the "
            f"import path of your own (my_package.MyData).{suggest(value, names)}"
        )
    # The datamodule sets these (LightningCLI's link); a flag (or a config file's value) for
    # them would be dropped.
    configured = config_model_flags(args)
    for key, advice in _LINKED_ADVICE.items():
        for flag in (f"--model.{key}", f"--model.init_args.{key}", f"model.{key}"):
            if option_values(args, flag) or (flag[0] != "-" and f"--{flag}" in configured):
                where = " in a --config file" if flag[0] != "-" else ""
                raise ValueError(
                    f"{flag}{where}: the model takes its {key} from the datamodule; leave the "
                    f"{'value' if where else 'flag'} out ({advice})"
                )


def _subclass_names(base: type) -> list[str]:
    # The names of base's subclasses imported so far: those LightningCLI takes without a path.
    found, todo = set[str](), [base]
    while todo:
        todo += (subclasses := list[type](todo.pop().__subclasses__()))
        found |= {c.__name__ for c in subclasses if not c.__name__.startswith("_")}
    return sorted(found)


def check_optimizer_names(args: Sequence[str]) -> None:
    """Check ``--optimizer NAME`` and ``--lr_scheduler NAME`` against torch's classes.

    Raises:
        ValueError: for a name that is no class of the kind (``adam`` for ``Adam``), with
            close names and the model's own option of that name (``--model.optimizer adam``).

    Example:
        >>> check_optimizer_names(["fit", "--optimizer", "adamw"])
        Traceback (most recent call last):
        ...
        ValueError: --optimizer adamw: expected a class of torch.optim (or ...
    """
    kinds = (
        ("--optimizer", torch.optim, torch.optim.Optimizer, "optimizer", OPTIMIZERS),
        ("--lr_scheduler", torch.optim.lr_scheduler, torch.optim.lr_scheduler.LRScheduler,
         "scheduler", SCHEDULERS),
    )  # fmt: skip
    for flag, module, base, key, own in kinds:
        for _, value, _ in option_values(args, flag):
            names = _subclass_names(base)
            if "." in value or "{" in value or value in names:
                continue
            mine = f" The model's own {key}: --model.{key} {value}." if value in own else ""
            raise ValueError(
                f"{flag} {value}: expected a class of {module.__name__} (or the import path of "
                f"your own, my_package.MyClass), which replaces the model's {key}."
                f"{suggest(value, names)}{mine}"
            )


# What to do instead of giving the model a value the datamodule links into it.
_LINKED_ADVICE = {
    "num_classes": "for another head, train on data with those classes, or fine-tune in "
    "Python: create_model(name, num_classes=...)",
    "in_channels": "the data's images decide the channels: for 3, --data.channels 3 "
    "(ImageFolder); --weights FILE adapts a first convolution trained on other channels",
}


def expand_model_names(argv: Sequence[str]) -> list[str]:
    """Turn ``--model resnet20`` into ``--model classic_cnns.ResNet --model.arch=resnet20``,
    and ``--model.help resnet20`` into ``--model.help classic_cnns.ResNet`` (its family's).

    A ``--config`` file's ``model: resnet20`` is given the same way: the file's content, with
    that ``model`` section, is passed as a YAML string. ``--model AlexNet`` after a config of
    another family's arch adds ``--model.arch=alexnet`` (the class's own), which it would keep.

    Raises:
        ValueError: for a name that is neither a class nor registered, with close names.
    """
    out: list[str] = []
    args = list(argv)
    classes = model_class_names()
    for i, used, config in reversed(config_options(args)):  # later indices first
        name = config.get("model")
        if isinstance(name, str) and "." not in name and name not in classes:
            family = family_class(model_info(name).family).__name__
            config["model"] = {"class_path": f"classic_cnns.{family}", "init_args": {"arch": name}}
            args[i : i + used] = [args[i].split("=", 1)[0], yaml.safe_dump(config)]
    i = 0
    while i < len(args):
        arg, value = args[i], None
        flag = arg.split("=", 1)[0]
        if flag in ("--model", "--model.help") and "=" in arg:
            value, step = arg.split("=", 1)[1], 1
        elif flag in ("--model", "--model.help") and i + 1 < len(args):
            value, step = args[i + 1], 2
        if value is not None and "." not in value and "{" not in value and value not in classes:
            cls = family_class(_family(value, classes))  # unknown names raise with suggestions
            out += [flag, f"classic_cnns.{cls.__name__}"]
            out += [f"--model.arch={value}"] if flag == "--model" else []
        elif flag == "--model" and (own := _own_arch(str(value), out)):
            out += [*args[i : i + step], f"--model.arch={own}"]  # not a config's of another
        else:
            out.append(arg)
            step = 1
        i += step
    return out


def _family(name: str, classes: Sequence[str]) -> str:
    # A registered name's family; an unknown one raises model_info's error, which suggests
    # registered names, and the class where only the case differs (--model Resnet: ResNet).
    try:
        return model_info(name).family
    except ValueError as err:
        if not (same := [c for c in classes if c.lower() == name.lower()]):
            raise
        raise ValueError(f"{err} Or the class {same[0]!r}: --model {same[0]}") from err


def _own_arch(name: str, args: Sequence[str]) -> str | None:
    # A family class's default arch where the last arch args set (a --config file's, or a
    # --model.arch flag's: an earlier --model resnet20) is another family's.
    cls = {c.__name__: c for c in FAMILIES.values()}.get(name.rsplit(".", 1)[-1])
    models = [(-1, c.get("model")) for c in environment_configs(args)]
    models += [(i, c.get("model")) for i, _, c in config_options(args)]
    found = [(i, m.get("init_args", {}).get("arch")) for i, m in models if isinstance(m, dict)]
    for flag in ("--model.arch", "--model.init_args.arch"):
        found += [(i, value) for i, value, _ in option_values(args, flag)]
    archs = [a for _, a in sorted(found, key=lambda f: f[0]) if isinstance(a, str)]
    arch = archs[-1] if archs else None
    if cls is None or arch not in list_models() or family_class(model_info(arch).family) is cls:
        return None
    return str(inspect.signature(cls).parameters["arch"].default)


def _entry(flag: str, text: str) -> str:
    indent = " " * 23
    return textwrap.fill(text, width=94, initial_indent=f"  {flag:<20} ", subsequent_indent=indent)


def short_help(command: str) -> str:
    """The overview ``classic-cnns <command> --help`` prints (``--help-all``: every flag)."""
    models = ", ".join(sorted(n for n in model_class_names() if n != "ImageClassifier"))
    doing = {
        "fit": "Train a model, then test it",
        "validate": "Evaluate a checkpoint on the validation split",
        "test": "Evaluate a checkpoint on the test split",
        "predict": "Class probabilities for the test split",
    }[command]
    ckpt = "resume from" if command == "fit" else "evaluate"
    writes = {
        "fit": "metrics.csv, config.yaml, checkpoints/ (last.ckpt), and curves.png and "
        "confusion_matrix.png with the 'plot' extra",
        "validate": "metrics.csv and config.yaml",
        "test": "metrics.csv, config.yaml, and confusion_matrix.png with the 'plot' extra",
        "predict": "predictions.csv (each image's class and probability) and config.yaml",
    }
    lines = [
        f"usage: classic-cnns {command} [--model MODEL] [--data DATA] [--model.ARG V] "
        "[--data.ARG V]",
        f"{' ' * len(command)}                    [--trainer.ARG V] [--threads N] "
        "[--ckpt_path PATH] [--config FILE]",
        "",
        textwrap.fill(
            f"{doing}. Every argument of the model, the data and the Trainer is a flag "
            "(LightningCLI).",
            width=92,
        ),
        "",
        "model:",
        _entry("--model MODEL", f"a class ({models}) or one of the {len(list_models())} "
               "registered names (classic-cnns list); default LeNet5"),
        _entry("--model.ARG V", "e.g. --model.optimizer sgd --model.lr 0.1 --model.arch "
               f"lenet5_bn; all of a class's: classic-cnns {command} --model.help ResNet"),
        "data:",
        _entry("--data DATA", f"{', '.join(sorted(data_class_names()))}, or your own "
               "(my_package.MyData); default Digits (offline)"),
        _entry("--data.ARG V", "e.g. --data.batch_size 256 --data.val_size 0; all of a "
               f"class's: classic-cnns {command} --data.help MNIST"),
        "trainer:",
        _entry("--trainer.ARG V", "e.g. --trainer.max_epochs 5 --trainer.accelerator gpu "
               "--trainer.devices 2 --trainer.precision bf16-mixed"),
        "run:",
        _entry("--pretrained true", "start from torchvision's ImageNet weights"),
        _entry("--weights FILE", "the network weights in a .ckpt or .safetensors file"
               + (" (a new run; --ckpt_path resumes one)" if command == "fit" else "")),
        _entry("--threads N", "CPU threads (default: 1 on machines with at most 2 cores "
               "unless $OMP_NUM_THREADS is set, else PyTorch's default)"),
        _entry("--ckpt_path PATH", f"checkpoint to {ckpt}: a file, or 'last' for the latest "
               "run's last.ckpt"),
        _entry("--seed_everything N", "the seed (default 0)"),
        _entry("-c, --config FILE", "a YAML config, e.g. a run's "
               "lightning_logs/version_N/config.yaml"),
        _entry("--print_config", "print the configuration and exit (null: the recipe's value)"),
        _entry("--debug", f"show the traceback of an error (or {DEBUG_ENV}=1)"),
        _entry("--help-all", "every flag, with its type and default"),
        "",
        textwrap.fill(f"Each run writes lightning_logs/version_N/: {writes[command]}.", width=92),
    ]  # fmt: skip
    return "\n".join(lines)


# -- classic-cnns data ---------------------------------------------------------------------
DATASETS: dict[str, type[MNIST]] = {"mnist": MNIST, "fashion-mnist": FashionMNIST}


def data_main(argv: Sequence[str]) -> int:
    """``classic-cnns data fetch mnist|fashion-mnist [--data-dir DIR] [--protocol 10k]``."""
    parser = argparse.ArgumentParser(prog="classic-cnns data", description="Datasets.")
    actions = parser.add_subparsers(dest="action", metavar="{fetch}", required=True)
    fetch = actions.add_parser(
        "fetch",
        help="download a dataset's files, md5-checked",
        description="Download a dataset's IDX files into DIR/<Name>/raw/ (torchvision's "
        "layout), each checked against its published md5 before it is kept; files already "
        "there are kept.",
    )
    fetch.add_argument("dataset", choices=sorted(DATASETS))
    fetch.add_argument(
        "--data-dir",
        default=default_data_dir(),
        help=f"folder to fill (default: ${DATA_ENV}, else ./data)",
    )
    fetch.add_argument(
        "--protocol",
        choices=("standard", "10k"),
        default="standard",
        help="standard: training and test files; 10k: the test files only (MNIST-10k)",
    )
    args = parser.parse_args(argv)
    cls = DATASETS[args.dataset]
    dm: Any = cls(data_dir=args.data_dir, download=True, protocol=args.protocol)
    dm.prepare_data()
    dm.load_splits()  # files already there are checked too; a bad one is named (exit 2)
    files = sorted(dm.read_from[name].name for name, _ in dm._needed())  # the copies read
    print(f"{cls.__name__} ({args.protocol}): {', '.join(files)} in {dm.raw_dir}, checked")
    return 0


def summary_main(argv: Sequence[str]) -> int:
    """``classic-cnns summary MODEL [--input-size C H W] [--small-input] [--format F]``.

    Example:
        >>> summary_main(["lenet5", "--format", "markdown"])  # doctest: +ELLIPSIS
        **LeNet5Net summary for input [1, 1, 32, 32]**
        ...
        0
    """
    parser = argparse.ArgumentParser(
        prog="classic-cnns summary",
        description="Layer table of a registered model: shapes, parameters, MACs, receptive field.",
    )
    parser.add_argument("model", help="registered name, e.g. lenet5 (see classic-cnns list)")
    parser.add_argument(
        "--input-size",
        nargs=3,
        type=int,
        metavar=("C", "H", "W"),
        help="input (C, H, W); default: the model's own input size (32 px with --small-input)",
    )
    parser.add_argument("--num-classes", type=int, help="classes (default: the model's)")
    parser.add_argument("--small-input", action="store_true", help="small_input=True (32 px)")
    parser.add_argument("--format", choices=("text", "markdown"), default="text")
    args = parser.parse_args(argv)
    own = model_info(args.model).input_size  # --small-input: CIFAR's 32 px, as its help says
    size = tuple(args.input_size or ((own[0], 32, 32) if args.small_input else own))
    if min(size) < 1:  # the channels too, which would be named in_channels
        raise ValueError(f"--input-size: expected C H W, each >= 1; got {' '.join(map(str, size))}")
    small: dict[str, Any] = {"small_input": True} if args.small_input else {}
    model = create_model(args.model, in_channels=size[0], num_classes=args.num_classes, **small)
    try:
        table = summary(model, size)
    except ValueError as err:
        option = model_info(args.model).options.get("small_input")  # a default of False helps
        if small or "too small" not in str(err) or option is None or option.default is not False:
            raise
        try:  # named only where it makes the size fit (VGG's keeps its stem: 32 px at least)
            small_model = create_model(args.model, in_channels=size[0], small_input=True,
                                       num_classes=args.num_classes)  # fmt: skip
            summary(small_model, size)
        except ValueError:
            raise err from None
        raise ValueError(
            f"{err}\n--small-input builds {args.model} for images this small"
        ) from None
    print(table.to_markdown() if args.format == "markdown" else table)
    return 0


def version_text() -> str:
    """What ``classic-cnns --version`` prints: the package's version and those it runs on.

    Example:
        >>> from classic_cnns import __version__
        >>> version_text().splitlines()[0] == f"classic-cnns {__version__}"
        True
    """
    return (
        f"classic-cnns {__version__}\n"
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"lightning {lightning.__version__}"
    )


def record_data_dir(config: Any, datamodule: Any) -> None:
    """Write the folder a datamodule chose for ``data_dir=None`` into the run's configuration.

    So that the run's ``config.yaml`` names the folder read (``$CLASSIC_CNNS_DATA``, else
    ``data``) and ``--config`` reruns it there whatever the environment says then.

    Example:
        >>> from jsonargparse import Namespace
        >>> from classic_cnns import MNIST
        >>> config = Namespace(data=Namespace(init_args=Namespace(data_dir=None)))
        >>> record_data_dir(config, MNIST(data_dir="here"))
        >>> config.data.init_args.data_dir
        'here'
    """
    args = config.get("data", {}).get("init_args") if hasattr(config, "get") else None
    used = getattr(datamodule, "data_dir", None)
    if args is not None and "data_dir" in args and args.data_dir is None and used is not None:
        args.data_dir = str(used)


# jsonargparse 4.49 renamed ArgumentParser.save's skip_none to skip_unset (the old name: warned
# of, and gone in 5.0).
_KEEP_NONE = "skip_unset" if TorchVersion(version("jsonargparse")) >= "4.49" else "skip_none"


class SaveConfig(SaveConfigCallback):
    """Lightning's config saver, with errors that speak to CLI users and no empty run folder.

    Its refusal to overwrite a run's ``config.yaml`` says how to keep the earlier run; a run
    that fails before writing anything (a missing dataset, found in the datamodule's
    ``setup``) leaves no empty ``version_N`` folder, which the logger made before it, nor
    an empty ``lightning_logs``. A run without a logger that fails before its first batch
    (a plot or prediction file it refuses to replace) takes back the ``config.yaml`` it
    wrote, which would refuse the next run in that folder.

    Example:
        >>> from classic_cnns._cli_helpers import SaveConfig
        >>> issubclass(SaveConfig, SaveConfigCallback)
        True
    """

    def setup(self, trainer: Trainer, pl_module: Any, stage: str) -> None:
        """Save the configuration, or say how to keep the earlier run's."""
        quiet_lightning()  # in every process: ddp_spawn's start as new interpreters
        # The default logger's save_dir as the command line had it ("."), so that a rerun
        # with --config and another --trainer.default_root_dir writes there.
        trainer_config = self.config.get("trainer", {})
        logger, root = trainer_config.get("logger"), trainer_config.get("default_root_dir")
        if root and writes_run_folder(logger) and logger.init_args.get("save_dir") == root:
            self.config = self.config.clone()
            self.config.trainer.logger.init_args.save_dir = "."
        folder = log_dir(trainer)  # what was there before: never this run's to remove
        self._found = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
        if self.save_to_log_dir and trainer.log_dir is None:  # a logger without a folder
            self._save_in(folder, trainer)  # (Lightning's own asserts it has one)
        try:
            super().setup(trainer, pl_module, stage)
        except RuntimeError as err:
            if "to NOT exist" not in str(err):
                raise
            raise self._refusal(trainer) from None

    def _save_in(self, folder: Path, trainer: Trainer) -> None:
        # The configuration where the plots and predictions go (default_root_dir); Lightning's
        # setup then only passes it to the loggers (save_config).
        path, self.save_to_log_dir = folder / self.config_filename, False
        there = trainer.is_global_zero and path.is_file()  # rank 0's file system, as Lightning's
        if not self.overwrite and trainer.strategy.broadcast(there):
            raise self._refusal(trainer)
        if trainer.is_global_zero:
            folder.mkdir(parents=True, exist_ok=True)
            self.parser.save(
                self.config, str(path), **{_KEEP_NONE: False}, overwrite=self.overwrite,
                multifile=self.multifile,
            )  # fmt: skip

    def _refusal(self, trainer: Trainer) -> FileExistsError:
        path, logger = log_dir(trainer) / self.config_filename, trainer.logger
        run_folder = writes_run_folder(logger)  # its own: else the root, or its save_dir
        instead = (
            "give the logger a new version (--trainer.logger.init_args.version)"
            if run_folder
            else "give the logger another folder (--trainer.logger.init_args.save_dir DIR)"
            if logger is not None and logger.save_dir is not None
            else "run in another folder (--trainer.default_root_dir DIR; a run without a "
            "logger, or with one that keeps no folder, writes there, this folder by default)"
        )
        ckpt = self.config.get("ckpt_path")  # a resume ("last" of another logger: none found)
        if ckpt == "last" and logger is None:  # "last" in DIR would look there
            ckpt = Path(trainer.default_root_dir, "checkpoints", "last.ckpt")
        if ckpt and ckpt != "last" and not run_folder:
            instead += f" and resume from the file: --ckpt_path {ckpt}"
        return FileExistsError(
            f"{path}: an earlier run saved its configuration there. To keep it, {instead}, "
            "or move the earlier run's files away"
        )

    @staticmethod
    def refuse_early(trainer: Trainer) -> Trainer:
        """Refuse a run whose ``config.yaml`` would replace an earlier run's before the run
        starts: Lightning's logger (the CSV one deletes the folder's ``metrics.csv``) takes
        its folder before :meth:`setup` refuses. Returns ``trainer``.

        Example:
            >>> import lightning as L
            >>> trainer = L.Trainer(logger=False)  # no SaveConfig: nothing to refuse
            >>> SaveConfig.refuse_early(trainer) is trainer
            True
        """
        callbacks = getattr(trainer, "callbacks", [])
        saver = next((c for c in callbacks if isinstance(c, SaveConfig)), None)
        if saver is None or saver.overwrite or not saver.save_to_log_dir:
            return trainer
        if trainer.logger is not None and getattr(trainer.logger, "_version", None) is None:
            return trainer  # the next version, a new folder: not fixed here (ddp_spawn's is not)
        if trainer.is_global_zero and (log_dir(trainer) / saver.config_filename).is_file():
            raise saver._refusal(trainer)  # (the other processes: before rank 0 writes it)
        return trainer

    # A run that did some work (a batch past the sanity check) keeps its configuration:
    def on_train_batch_end(self, trainer: Trainer, *args: Any) -> None:  # type: ignore[override]
        self._ran = True

    def on_validation_batch_end(self, trainer: Trainer, *args: Any) -> None:  # type: ignore[override]
        self._ran = getattr(self, "_ran", False) or not trainer.sanity_checking

    on_test_batch_end = on_predict_batch_end = on_train_batch_end  # type: ignore[assignment]

    def on_exception(self, trainer: Trainer, pl_module: Any, exception: BaseException) -> None:
        """Remove the run's log folder and the logger's, if empty or holding only what this
        run wrote before its first batch (a refused resume, a checkpoint that does not fit)."""
        folders = [log_dir(trainer)]
        names = {self.config_filename, "hparams.yaml"}
        own = names - getattr(self, "_found", names)  # only what this run wrote
        unused = self.already_saved and not getattr(self, "_ran", False)
        if not writes_run_folder(trainer.logger):  # the root, or another logger's save_dir
            # ("." for W&B): not a run folder of its own, from which only ours goes
            if unused and self.config_filename in own and trainer.is_global_zero:
                with contextlib.suppress(OSError):
                    (folders[0] / self.config_filename).unlink(missing_ok=True)
            return
        with contextlib.suppress(OSError):
            written = {p.name for p in folders[0].iterdir()}
            if unused and written <= own:
                for name in own:
                    (folders[0] / name).unlink(missing_ok=True)
        if getattr(trainer.logger, "name", None):  # <save_dir>/<name>/version_N: not save_dir
            folders.append(folders[0].parent)
        for folder in folders:
            with contextlib.suppress(OSError):  # not empty, or removed by another process
                folder.rmdir()
