"""The ``classic-cnns`` command line: LightningCLI for training, small commands for the zoo.

``fit``, ``validate``, ``test`` and ``predict`` are LightningCLI's, so every argument of
the model, the datamodule and the Trainer is a flag (``classic-cnns fit --help`` for an
overview, ``--help-all`` for all of them). ``--model`` takes a family class (``LeNet5``,
``ResNet``) or any registered name (``resnet20``); the datamodule's class count and channels
flow into the model. ``list`` prints the registry, ``summary`` a model's layer table and
``data fetch`` downloads a dataset.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from jsonargparse.typing import PositiveInt
from lightning.pytorch import Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from classic_cnns._cli_args import LIGHTNING_COMMANDS, add_default_classes, config_model_flags
from classic_cnns._cli_ckpt import (
    arch_info,
    check_resumed_hparams,
    checkpoint_head,
    checkpoint_model,
    configured_last_checkpoint,
    last_checkpoint,
    with_checkpoint_model,
    with_default_callbacks,
)
from classic_cnns._cli_errors import (
    check_optimizer_arguments,
    class_error,
    closed_pipe,
    import_named,
    named_unknown_options,
    quiet_lightning,
    user_error_message,
)
from classic_cnns._cli_helpers import (
    DEBUG_ENV,
    SaveConfig,
    check_names,
    data_main,
    expand_model_names,
    int_before_float,
    record_data_dir,
    short_help,
    summary_main,
    version_text,
)
from classic_cnns._cli_loggers import place_default_logger
from classic_cnns._launch import launch_seed, pin_log_dir, say_error
from classic_cnns._measured import MNIST10K
from classic_cnns._signals import SIGTERM_STATUS
from classic_cnns._warn import warn
from classic_cnns.bench import main as bench_main
from classic_cnns.data.base import InMemoryDataModule
from classic_cnns.export import export_main
from classic_cnns.files import CheckpointError, read_weights_file
from classic_cnns.hub import load_weights
from classic_cnns.models import family_class
from classic_cnns.optim import record_cli_optimizer
from classic_cnns.predict import PredictionCSV, predict_main
from classic_cnns.registry import list_models, model_info
from classic_cnns.task import ImageClassifier

__all__ = ["ClassicCLI", "default_threads", "last_checkpoint", "main", "model_table"]


def default_threads(cpu_count: int | None = None) -> int:
    """PyTorch's CPU threads when ``--threads`` is not given.

    One thread on a machine with at most two cores, where a second thread speeds small
    models up by at most about 1.5x when the machine is idle and slows them down many times
    when any other process wants a core, unless ``$OMP_NUM_THREADS`` is set; elsewhere
    PyTorch's own default (``$OMP_NUM_THREADS``, or one thread per physical core).

    Args:
        cpu_count: Cores to decide for; ``None`` counts the cores this process may use.

    Example:
        >>> from classic_cnns.cli import default_threads
        >>> default_threads(cpu_count=2)
        1
    """
    if cpu_count is None:
        affinity = getattr(os, "sched_getaffinity", None)
        cpu_count = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    if cpu_count <= 2 and "OMP_NUM_THREADS" not in os.environ:
        return 1
    return torch.get_num_threads()


class ClassicCLI(LightningCLI):
    """LightningCLI with the zoo's defaults: LeNet-5 on Digits, CSV logs, seed 0.

    The model and data defaults are the classes' own (``--data MNIST`` gets ``MNIST()``'s
    arguments). Every run saves ``last.ckpt``, which ``--ckpt_path last`` resumes; ``fit``
    and ``test`` draw their curves and confusion matrix (:class:`~classic_cnns.plots.
    TrainingPlots`). After ``fit`` it evaluates the trained weights on the test split and
    prints the metrics table and the wall time of ``fit``.

    Example:
        >>> from classic_cnns.cli import ClassicCLI
        >>> cli = ClassicCLI(args=["--trainer.max_epochs=1"], run=False)  # doctest: +SKIP
    """

    def __init__(self, **kwargs: Any) -> None:
        exact = {"allow_abbrev": False}  # flags in full: the CLI reads --config, --model itself
        commands = dict.fromkeys(("fit", "validate", "test", "predict"), exact)
        kwargs.setdefault("parser_kwargs", {"prog": "classic-cnns", **exact, **commands})
        super().__init__(
            ImageClassifier,
            InMemoryDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_callback=SaveConfig,
            seed_everything_default=0,
            trainer_defaults={
                "max_epochs": None,  # None: the model's recipe (set before instantiation)
                "plugins": [{"class_path": "classic_cnns.checkpoint.AtomicCheckpointIO"}],
            },
            **kwargs,
        )

    def _set_seed(self) -> None:
        # --seed_everything true: a random seed, as Lightning's help says, where Lightning 2.6
        # seeds 0; one for all the processes of a launch (see launch_seed).
        config = self._given
        config["seed_everything"] = launch_seed(config.get("seed_everything"))
        super()._set_seed()  # seeds, and records the seed in config.yaml

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        """Parsers that raise their errors, so that ``main`` prints one line, not the usage."""
        kwargs.setdefault("exit_on_error", False)
        return super().init_parser(**kwargs)

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Add the default model and data classes where the command line chooses none."""
        self._model_flags: list[str] = []
        self._ckpt_head: int | None = None  # the --ckpt_path file's class count (if it says)
        self._logger_given = False
        self._recipe_epochs: int | None = None  # the Trainer's, where no flag gives a length
        if args is None or isinstance(args, list | tuple):
            args = list(sys.argv[1:] if args is None else args)
            # The --model flags the user gave (--model X, --model.key): what --ckpt_path
            # must not contradict.
            self._model_flags = [a.split("=")[0] for a in args if a.startswith("--model")]
            self._model_flags += config_model_flags(args)  # a config file's model settings
            # A config file's logger may be the one this CLI wrote (config.yaml): not counted.
            self._logger_given = any(a.startswith("--trainer.logger") for a in args)
            at = 1 if args and args[0] in LIGHTNING_COMMANDS else 0
            args = add_default_classes(with_checkpoint_model(args, at), at)
        with named_unknown_options(parser, args):  # close names, and the config file
            super().parse_arguments(parser, args)

    def _parse_ckpt_path(self) -> None:
        # Lightning rebuilds the model from the checkpoint's hyperparameters, whatever the
        # --model flags said; a flag that the checkpoint contradicts is refused, not ignored.
        sub = self.config.get("subcommand")
        if sub and self.config[sub].get("ckpt_path") == "last":
            # Found before the model is built, "last" is the file: it rebuilds its own model.
            place_default_logger(self.config[sub].trainer)
            found = configured_last_checkpoint(self.config[sub].trainer)
            if found is not None:
                self.config[sub].ckpt_path = str(found)
        given = self.config[sub].get("model") if sub else None
        ckpt_path = self.config[sub].get("ckpt_path") if sub else None
        if ckpt_path and Path(ckpt_path).is_file():  # as Lightning's, but see the helper
            model = checkpoint_model(ckpt_path)
            self._ckpt_head = checkpoint_head(model)  # before the parser takes the dict over
            if model is not None:
                self.config = self.parser.parse_object({sub: {"model": model}}, self.config)
        if given is None or not ckpt_path:
            return
        used = self.config[sub].get("model")
        keys = {f.removeprefix("--model.").removeprefix("init_args.") for f in self._model_flags}
        # The class contradicts when its family does not build the checkpoint's arch (a
        # checkpoint saved from Python records no class: Lightning rebuilds ImageClassifier).
        name = given.class_path.rpartition(".")[2]
        family = getattr(import_named(given.class_path), "family", None)
        arch = used.init_args.get("arch")
        info = arch_info(arch)
        other_family = family is not None and info is not None and info.family != family
        g, u = given.init_args.get, used.init_args.get  # the flags', the checkpoint's
        ignored = [
            f"--model {name}" if key == "--model" else f"--model.{key} {g(key)!r} (its {u(key)!r})"
            for key in sorted(keys)
            if (key == "--model" and other_family) or (key != "--model" and g(key) != u(key))
        ]
        if ignored:
            raise ValueError(
                f"{', '.join(ignored)}: the checkpoint {self.config[sub].ckpt_path} rebuilds its "
                f"own model ({used.class_path.rsplit('.', 1)[-1]}, "
                f"arch {used.init_args.get('arch')!r}), which these settings contradict. Drop "
                "them, or start a new run from its weights: --weights FILE instead of --ckpt_path"
            )

    def add_core_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """The Trainer's int-or-float flags read ``1`` as the int 1 (see ``int_before_float``)."""
        with int_before_float(self.trainer_class.__init__):
            super().add_core_arguments_to_parser(parser)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Link the data's classes and channels to the model; add ``--pretrained``,
        ``--weights`` and ``--threads``."""
        # The data decides how many classes and channels the model is built for.
        for key in ("num_classes", "in_channels"):
            parser.link_arguments(f"data.{key}", f"model.init_args.{key}", apply_on="instantiate")
        parser.add_argument(
            "--pretrained",
            type=bool,
            default=False,
            help="start from torchvision's ImageNet weights (a fresh head for other classes, "
            "the first convolution adapted to other channels)",
        )
        parser.add_argument(
            "--weights",
            type=str | None,
            default=None,
            help="start from the network weights in a .ckpt or .safetensors file, adapted to "
            "the model (unlike --ckpt_path, which resumes a run); validate and test need all "
            "of them to fit, predict keeps the file's head",
        )
        parser.add_argument(
            "--threads",
            type=PositiveInt | None,
            default=None,
            help="CPU threads for PyTorch (torch.set_num_threads); default: 1 on machines "
            "with at most 2 cores unless $OMP_NUM_THREADS is set, else PyTorch's default "
            "(see the README)",
        )

    @property
    def _given(self) -> Any:
        """This run's configuration (its subcommand's, where the CLI has subcommands)."""
        return self.config[self.subcommand] if self.subcommand else self.config

    def before_instantiate_classes(self) -> None:
        """Set the thread count and the recipe's epochs; say if ``--optimizer`` replaces ours.

        Without ``--trainer.max_epochs`` (or ``max_steps``) a run lasts the model's recipe's
        epochs (``model_info(name).recipe.epochs``); ``--trainer.max_time`` stops it sooner.
        """
        config = self._given
        check_optimizer_arguments(config)  # torch's refusals, named by flag
        model = config.model.get("init_args", {})
        info = arch_info(model.get("arch"))
        recipe = None if info is None else info.recipe
        trainer = config.get("trainer")
        # Given to the Trainer, not written into the config: config.yaml keeps null, so a
        # rerun with -c and another --model takes that model's recipe, as for lr or batch.
        if trainer is not None and recipe is not None and trainer.get("max_epochs") is None:
            self._recipe_epochs = recipe.epochs if trainer.get("max_steps", -1) == -1 else None
        if trainer is not None:
            # barebones logs nothing: our default logger goes too (one the user named stays,
            # for Lightning to refuse).
            if trainer.get("barebones") and not self._logger_given:
                trainer.logger = False
            place_default_logger(trainer)
        if config.get("threads") is not None:
            # Lightning's DDP sets its own count unless OMP_NUM_THREADS is set.
            os.environ["OMP_NUM_THREADS"] = str(config.threads)
        else:
            config.threads = default_threads()
        torch.set_num_threads(config.threads)
        if config.get("lr_scheduler") is not None and config.get("optimizer") is None:
            raise ValueError(
                "--lr_scheduler needs --optimizer: without it the model's own optimizer and "
                "schedule run and Lightning drops --lr_scheduler. Give --optimizer too, or "
                "choose the model's schedule with --model.scheduler"
            )
        # Said once, and by fit only: validate, test and predict take no optimizer step.
        says = self.subcommand in (None, "fit") and getattr(rank_zero_only, "rank", 0) == 0
        if config.get("optimizer") is not None and says:

            def used(key: str) -> Any:  # the value given, else the recipe's
                given = model.get(key)
                return given if given is not None else getattr(recipe, key, None)

            print(
                f"classic-cnns: --optimizer replaces the model's optimizer ({used('optimizer')}, "
                f"lr {used('lr')}, weight decay {used('weight_decay')} on weights only) and its "
                f"{used('scheduler')!r} LR schedule; "
                + f"--model.backbone_lr {model.get('backbone_lr')} is not used (one lr for all); "
                * (model.get("backbone_lr") is not None)
                + (
                    "the schedule is --lr_scheduler's"
                    if config.get("lr_scheduler") is not None
                    else "no LR schedule runs (add --lr_scheduler for one)"
                ),
                file=sys.stderr,
            )

    def after_instantiate_classes(self) -> None:
        """Load the starting weights (``--pretrained``, ``--weights``) into the model built.

        Not when ``--ckpt_path`` resumes a run: its weights come from the checkpoint.
        ``predict`` keeps the head and class names of the ``--ckpt_path`` or ``--weights`` file
        (if it records them) whatever classes the data has (the data's class count built the
        model), as predicting scores no labels.
        """
        config = self._given
        pretrained, path = bool(config.get("pretrained")), config.get("weights")
        if self.subcommand == "predict" and isinstance(self.model, ImageClassifier):
            head = self._ckpt_head
            if head is None and path and config.get("ckpt_path") is None:  # as --ckpt_path's
                head = checkpoint_head(read_weights_file(path, tensors=False).hparams)
            self._predict_with(head)
        if config.get("ckpt_path") is not None and (pretrained or path):
            raise ValueError(
                "--ckpt_path resumes a run with the checkpoint's own weights; --weights and "
                "--pretrained start a new run: give one or the other"
            )
        evaluating = self.subcommand in ("validate", "test", "predict")
        if evaluating and config.get("ckpt_path") is None and not (pretrained or path):
            raise ValueError(
                f"{self.subcommand} needs trained weights: --ckpt_path FILE (or last), --weights "
                "FILE or --pretrained true; without them the weights are the random initial ones"
            )
        if isinstance(self.model, ImageClassifier) and self.subcommand in (None, "fit"):
            # What config.yaml records, in hparams too; a checkpoint evaluated keeps its own.
            record_cli_optimizer(self.model, config.get("optimizer"), config.get("lr_scheduler"))
        if config.get("ckpt_path") is None and isinstance(self.model, ImageClassifier):
            try:  # evaluating, every tensor must load: a fresh head would be scored
                load_weights(self.model, pretrained=pretrained, checkpoint_path=path,
                             strict=True if evaluating else None)  # fmt: skip
            except CheckpointError:
                raise  # the file itself (another network, damaged): fine-tuning can't help
            except ValueError as err:
                if not evaluating:
                    raise
                raise ValueError(
                    f"{err}. To {self.subcommand}, the weights must fit the whole model, "
                    "head included (the data's classes): for data of some of their classes, "
                    "number the classes as they do (--data.classes), else fine-tune them first: "
                    "classic-cnns fit with the same --weights or --pretrained"
                ) from None

    def _predict_with(self, head: int | None) -> None:
        # The file's head (its class count, if it says), which it loads with its class names.
        if head is not None and head != self.model.num_classes:
            self.model.reset_classifier(head)

    def instantiate_classes(self) -> None:
        """Build the classes; a class that fails names its flag (``--trainer.logger``)."""
        try:
            super().instantiate_classes()
        except ValueError as err:
            config = self._given
            if (named := class_error(err, config)) is None:
                raise
            raise named from err

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The Trainer, with the callbacks of :func:`with_default_callbacks`; the run's
        configuration records the datamodule's folder (``data_dir=None`` chooses one)."""
        record_data_dir(self._given, self.datamodule)
        config = self._get(self.config_init, "trainer", default={})
        callbacks = with_default_callbacks(config, self.subcommand)
        if self._recipe_epochs is not None:
            kwargs = {"max_epochs": self._recipe_epochs, **kwargs}
        trainer = super().instantiate_trainer(**{"callbacks": callbacks, **kwargs})
        return SaveConfig.refuse_early(trainer)

    def _resolve_last(self, subcommand: str) -> None:
        # Lightning looks for "last" in this run's checkpoint folder, which a new version_N
        # leaves empty; a user resuming means the latest run's.
        config = self.config_init[subcommand]
        if config.get("ckpt_path") == "last":
            path = last_checkpoint(self.trainer)
            if path is None:  # fit starts afresh, as Lightning's does (whose hint misleads)
                none = "--ckpt_path last: no earlier run left a last.ckpt"
                if subcommand != "fit":
                    raise ValueError(f"{none} to {subcommand}")
                warn(f"{none}; training from the start")
                config["ckpt_path"] = None
            if path is not None:
                if subcommand == "fit":
                    check_resumed_hparams(path, self.model.hparams)
                elif subcommand == "predict":  # found after the model was built: its head now
                    self._predict_with(checkpoint_head(checkpoint_model(str(path))))
                config["ckpt_path"] = str(path)
                # config.yaml records the file, so that --config resumes from it again.
                self.config[subcommand]["ckpt_path"] = str(path)

    def before_fit(self) -> None:
        """Resolve ``--ckpt_path last``; start the clock."""
        self._resolve_last("fit")
        self._fit_start = time.perf_counter()

    def before_validate(self) -> None:
        """Resolve ``--ckpt_path last`` (``before_test`` too)."""
        self._resolve_last(str(self.subcommand))

    before_test = before_validate

    def before_predict(self) -> None:
        """Resolve ``--ckpt_path last``; where a PredictionCSV writes the predictions, Lightning
        keeps none in memory unless ``--return_predictions true`` asks."""
        self._resolve_last("predict")
        pin_log_dir(self.trainer)  # where ddp_spawn's workers write, known here
        csvs = [c for c in getattr(self.trainer, "callbacks", []) if isinstance(c, PredictionCSV)]
        if csvs and self.config_init["predict"].get("return_predictions") is None:
            self.config_init["predict"]["return_predictions"] = False  # as Lightning's docs advise

    def after_predict(self) -> None:
        """Say where the predictions went: every process's file, and the images in all."""
        for c in getattr(self.trainer, "callbacks", []) if self.trainer.is_global_zero else []:
            if isinstance(c, PredictionCSV) and (line := c.describe(self.trainer)):
                print(line)

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        except SystemExit as stop:  # Lightning's Ctrl-C: a graceful shutdown, then exit(1),
            if stop.code == 1 and isinstance(stop.__context__, KeyboardInterrupt):  # in except
                raise KeyboardInterrupt from None  # main: "stopped by Ctrl-C", status 130
            raise

    def after_fit(self) -> None:
        """Print the wall time of ``fit``, then test the trained weights, if there is a test set."""
        if self.trainer.received_sigterm:  # after the last batch: Lightning did not look
            raise SIGTERMException(SIGTERM_STATUS)
        seconds = time.perf_counter() - self._fit_start
        if self.trainer.is_global_zero:
            print(f"fit took {seconds:.1f} s (wall clock: setup, training, any validation)")
        dm = self.datamodule
        if isinstance(dm, InMemoryDataModule) and dm.has_test_set is False:
            if self.trainer.is_global_zero:
                print(f"not tested: {type(dm).__name__} has no test images")
            return
        self.trainer.test(self.model, datamodule=self.datamodule)


def model_table(pattern: str | None = None, markdown: bool = False) -> str:
    """The registry as a table: name, class, paper year, parameters, input sizes, recipe.

    The README's model table is this function's Markdown output (a test keeps it current),
    which adds the paper's title and link and the MNIST-10k test accuracy the package's own
    training reached (see the README for the command), or "not measured yet". The recipe is
    the default training setting (``model_info(name).recipe``).

    Example:
        >>> from classic_cnns.cli import model_table
        >>> print(model_table("lenet5"))  # doctest: +NORMALIZE_WHITESPACE
        name    class   year  params  input (C,H,W)  min (H,W)  recipe
        lenet5  LeNet5  1998  61,706  1x32x32        32x32      sgd 0.1 onecycle, wd 0.0005,
        batch 128, 12 epochs, 32 px for small images
    """
    header = ("name", "class", "year", "params", "input (C,H,W)", "min (H,W)", "recipe")
    rows = []
    for name in list_models(pattern):
        info = model_info(name)
        paper = f"[{info.paper}]({info.url})" if markdown else None
        rows.append((
            f"`{name}`" if markdown else name, family_class(info.family).__name__,
            f"{info.year}" if paper is None else f"{info.year}, {paper}", f"{info.num_params:,}",
            "x".join(map(str, info.input_size)), "x".join(map(str, info.min_input_size)),
            info.recipe.describe(),
        ))  # fmt: skip
    if markdown:
        md_header = (*header[:2], "paper", *header[3:], "MNIST-10k test accuracy")
        lines = ["| " + " | ".join(md_header) + " |", "|---|---|---|---:|---|---|---|---:|"]
        for name, row in zip(list_models(pattern), rows, strict=True):
            run, accuracy = MNIST10K.get(name), "not measured yet"
            if run is not None:
                accuracy = f"{run.accuracy:.2f}% ({run.epochs} epochs, {run.optimizer} {run.lr:g})"
            lines.append("| " + " | ".join((*row, accuracy)) + " |")
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        pairs = enumerate(zip(row, widths, strict=True))
        return "  ".join(c.rjust(w) if i == 3 else c.ljust(w) for i, (c, w) in pairs).rstrip()

    return "\n".join(line(r) for r in [header, *rows])


def _list_command(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="classic-cnns list", description="List registered models."
    )
    parser.add_argument("pattern", nargs="?", default=None, help="shell wildcard, e.g. 'resnet*'")
    parser.add_argument("--format", choices=("text", "markdown"), default="text")
    args = parser.parse_args(argv)
    if not list_models(args.pattern):
        print(
            f"classic-cnns list: error: no registered model matches {args.pattern!r}",
            file=sys.stderr,
        )
        return 1
    print(model_table(args.pattern, markdown=args.format == "markdown"))
    return 0


# The commands that are not LightningCLI's: name -> (help line, handler).
_OWN_COMMANDS: dict[str, tuple[str, Callable[[list[str]], int]]] = {
    "list": ("the registered models with parameter counts and input sizes", _list_command),
    "summary": (
        "a model's layers: classic-cnns summary lenet5 --input-size 1 32 32",
        summary_main,
    ),
    "export": ("a checkpoint to onnx, pt2, torchscript or safetensors, checked", export_main),
    "predict-folder": ("a CSV of predicted classes for a folder of images", predict_main),
    "bench": ("throughput and accuracy benchmarks: classic-cnns bench --quick", bench_main),
    "data": ("download a dataset: classic-cnns data fetch mnist --data-dir data", data_main),
}
_ALL_COMMANDS = (*_OWN_COMMANDS, *LIGHTNING_COMMANDS)


def _run(args: list[str]) -> int:
    command = args[0] if args else None
    if command in _OWN_COMMANDS:
        return _OWN_COMMANDS[command][1](args[1:])
    if command in ("-V", "--version"):
        print(version_text())
        return 0
    if command in ("-h", "--help"):
        print(f"usage: classic-cnns [-V] {{{','.join(_ALL_COMMANDS)}}} ...\n")
        for name, (text, _) in _OWN_COMMANDS.items():
            print(f"  {name:<15} {text}")
        print(f"  {'fit':<15} train, then test: classic-cnns fit --model LeNet5 --data Digits")
        print(f"  {'validate, test, predict'}  LightningCLI's commands; add --help for their flags")
        print("\n--debug (or CLASSIC_CNNS_DEBUG=1) shows the traceback of an error")
        print("-V, --version prints the versions of classic-cnns, torch, torchvision, lightning")
        return 0
    if command not in LIGHTNING_COMMANDS:
        given = repr(command) if args else "nothing"
        print(
            f"classic-cnns: expected a command ({', '.join(_ALL_COMMANDS)}); "
            f"got {given}. Try classic-cnns --help",
            file=sys.stderr,
        )
        return 2
    if "--help-all" in args:
        args = [("--help" if a == "--help-all" else a) for a in args]
    elif "-h" in args or "--help" in args:
        print(short_help(command))
        return 0
    quiet_lightning()
    check_names(args)
    ClassicCLI(args=expand_model_names(args))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``classic-cnns`` console script.

    Errors a user can fix (a bad argument, a missing file, a failed download) are printed as
    one message with exit status 2; ``--debug`` or ``CLASSIC_CNNS_DEBUG=1`` shows the
    traceback instead.

    Example:
        >>> from classic_cnns.cli import main
        >>> main(["list", "lenet5"])
        name    class   year  params  input (C,H,W)  min (H,W)  recipe
        lenet5  LeNet5  1998  61,706  1x32x32        32x32      sgd 0.1 onecycle, ...
        0
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    args = [a for a in args if a != "--debug"]
    command = args[0] if args and args[0] in _ALL_COMMANDS else None
    prog = f"classic-cnns {command}" if command else "classic-cnns"
    try:
        return _run(args)
    except (SIGTERMException, KeyboardInterrupt) as stop:  # Lightning's SIGTERM: SystemExit()
        name, status = ("SIGTERM", 143) if isinstance(stop, SystemExit) else ("Ctrl-C", 130)
        resume = " (resume it with --ckpt_path last)" if command == "fit" else ""
        print(f"{prog}: stopped by {name}{resume}", file=sys.stderr)
        return status
    except Exception as err:
        if closed_pipe(err):  # the reader closed the pipe (`| head`): stop quietly, as cat does
            with contextlib.suppress(OSError, ValueError):  # and flush stdout at exit to nowhere
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        message = user_error_message(err)
        if debug or message is None:
            raise
        message = message.replace("classic_cnns.list_models()", "classic-cnns list")  # here
        say_error(f"{prog}: error: {message}", f"(--debug or {DEBUG_ENV}=1 shows the traceback)")
        return 2


if __name__ == "__main__":
    sys.exit(main())
