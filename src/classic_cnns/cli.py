"""The ``classic-cnns`` command line: LightningCLI for training, small commands for the zoo.

``fit``, ``validate``, ``test`` and ``predict`` are LightningCLI's, so every argument of
the model, the datamodule and the Trainer is a flag (``classic-cnns fit --help``).
``--model`` takes a family class (``LeNet5``, ``ResNet``) or any registered name
(``resnet20``); the datamodule's class count and channels flow into the model.
``list`` prints the registry and ``summary`` a model's layer table.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable, Sequence

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from classic_cnns.data.base import InMemoryDataModule
from classic_cnns.registry import family_class, list_models, model_info
from classic_cnns.task import ImageClassifier

__all__ = ["ClassicCLI", "main"]

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


class ClassicCLI(LightningCLI):
    """LightningCLI with the zoo's defaults: LeNet-5 on Digits, CSV logs, seed 0.

    After ``fit`` it evaluates the trained weights on the test split and prints the
    metrics table and the wall time of ``fit``.

    Example:
        >>> from classic_cnns.cli import ClassicCLI
        >>> cli = ClassicCLI(args=["--trainer.max_epochs=1"], run=False)  # doctest: +SKIP
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(
            ImageClassifier,
            InMemoryDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            seed_everything_default=0,
            trainer_defaults={
                "max_epochs": 10,
                "plugins": [{"class_path": "classic_cnns.checkpoint.AtomicCheckpointIO"}],
                "logger": {
                    "class_path": "lightning.pytorch.loggers.CSVLogger",
                    "init_args": {"save_dir": "."},
                },
            },
            **kwargs,  # type: ignore[arg-type]
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.set_defaults(
            {
                "model": {"class_path": "classic_cnns.LeNet5"},
                "data": {"class_path": "classic_cnns.Digits"},
            }
        )
        # The data decides how many classes and channels the model is built for.
        parser.link_arguments(
            "data.num_classes", "model.init_args.num_classes", apply_on="instantiate"
        )
        parser.link_arguments(
            "data.in_channels", "model.init_args.in_channels", apply_on="instantiate"
        )

    def before_fit(self) -> None:
        self._fit_start = time.perf_counter()

    def after_fit(self) -> None:
        seconds = time.perf_counter() - self._fit_start
        if self.trainer.is_global_zero:
            print(f"fit took {seconds:.1f} s (wall clock, including validation)")
        self.trainer.test(self.model, datamodule=self.datamodule)


def _task_class_names() -> set[str]:
    import classic_cnns

    return {
        name
        for name in classic_cnns.__all__
        if isinstance(getattr(classic_cnns, name), type)
        and issubclass(getattr(classic_cnns, name), ImageClassifier)
    }


def _expand_model_names(argv: Sequence[str]) -> list[str]:
    """Turn ``--model resnet20`` into ``--model ResNet --model.arch resnet20``."""
    out: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        value = None
        if arg == "--model" and i + 1 < len(args):
            value, step = args[i + 1], 2
        elif arg.startswith("--model="):
            value, step = arg.split("=", 1)[1], 1
        if value is not None and "." not in value and value not in _task_class_names():
            cls = family_class(model_info(value).family)  # unknown names raise with suggestions
            out += [
                "--model",
                f"{cls.__module__.split('.')[0]}.{cls.__name__}",
                f"--model.arch={value}",
            ]
            i += step
            continue
        out.append(arg)
        i += 1
    return out


def model_table(pattern: str | None = None, markdown: bool = False) -> str:
    """The registry as a table: name, class, paper year, parameters, input sizes.

    The README's model table is this function's Markdown output (a test keeps it current),
    which adds the paper's title and link and the MNIST-10k test accuracy the package's own
    training reached (see the README for the command), or "not measured yet".

    Example:
        >>> from classic_cnns.cli import model_table
        >>> print(model_table("lenet5"))
        name    class   year  params  input (C,H,W)  min (H,W)
        lenet5  LeNet5  1998  61,706  1x32x32        32x32
    """
    header = ("name", "class", "year", "params", "input (C,H,W)", "min (H,W)")
    rows = []
    for name in list_models(pattern):
        info = model_info(name)
        paper = f"[{info.paper}]({info.url})" if markdown else None
        rows.append(
            (
                f"`{name}`" if markdown else name,
                family_class(info.family).__name__,
                f"{info.year}" if paper is None else f"{info.year}, {paper}",
                f"{info.num_params:,}",
                "x".join(map(str, info.input_size)),
                "x".join(map(str, info.min_input_size)),
            )
        )
    if markdown:
        from classic_cnns._measured import MNIST10K

        md_header = (*header[:2], "paper", *header[3:], "MNIST-10k test accuracy")
        lines = ["| " + " | ".join(md_header) + " |", "|---|---|---|---:|---|---|---:|"]
        for name, row in zip(list_models(pattern), rows, strict=True):
            run = MNIST10K.get(name)
            accuracy = (
                "not measured yet"
                if run is None
                else f"{run.accuracy:.2f}% ({run.epochs} epochs, {run.optimizer} {run.lr:g})"
            )
            lines.append("| " + " | ".join((*row, accuracy)) + " |")
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = (
            c.rjust(w) if i == 3 else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        return "  ".join(cells).rstrip()

    return "\n".join(line(r) for r in [header, *rows])


def _list_command(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="classic-cnns list", description="List registered models."
    )
    parser.add_argument("pattern", nargs="?", default=None, help="shell wildcard, e.g. 'resnet*'")
    parser.add_argument("--format", choices=("text", "markdown"), default="text")
    args = parser.parse_args(argv)
    if not list_models(args.pattern):
        print(f"no registered model matches {args.pattern!r}", file=sys.stderr)
        return 1
    print(model_table(args.pattern, markdown=args.format == "markdown"))
    return 0


def _summary_command(argv: Sequence[str]) -> int:
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
        help="input (C, H, W); default: the model's own input size",
    )
    parser.add_argument(
        "--num-classes", type=int, default=None, help="classes (default: the model's)"
    )
    parser.add_argument("--format", choices=("text", "markdown"), default="text")
    args = parser.parse_args(argv)
    from classic_cnns.inspect import summary
    from classic_cnns.registry import create_model

    try:
        size = tuple(args.input_size or model_info(args.model).input_size)
        model = create_model(args.model, in_channels=size[0], num_classes=args.num_classes)
        table = summary(model, size)
    except ValueError as err:
        print(f"classic-cnns summary: {err}", file=sys.stderr)
        return 2
    print(table.to_markdown() if args.format == "markdown" else table)
    return 0


def _export_command(argv: Sequence[str]) -> int:
    from classic_cnns.export import export_main

    return export_main(list(argv))


def _predict_folder_command(argv: Sequence[str]) -> int:
    from classic_cnns.export import predict_main

    return predict_main(list(argv))


def _bench_command(argv: Sequence[str]) -> int:
    from classic_cnns.bench import main as bench_main

    return bench_main(list(argv))


# The commands that are not LightningCLI's: name -> (help line, handler).
_OWN_COMMANDS: dict[str, tuple[str, Callable[[Sequence[str]], int]]] = {
    "list": ("the registered models with parameter counts and input sizes", _list_command),
    "summary": (
        "a model's layers: classic-cnns summary lenet5 --input-size 1 32 32",
        _summary_command,
    ),
    "export": ("a checkpoint to onnx, torchscript or safetensors, checked", _export_command),
    "predict-folder": (
        "a CSV of predicted classes for a folder of images",
        _predict_folder_command,
    ),
    "bench": ("throughput and accuracy benchmarks: classic-cnns bench --quick", _bench_command),
}
_ALL_COMMANDS = (*_OWN_COMMANDS, *LIGHTNING_COMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``classic-cnns`` console script.

    Example:
        >>> from classic_cnns.cli import main
        >>> main(["list", "lenet5"])
        name    class   year  params  input (C,H,W)  min (H,W)
        lenet5  LeNet5  1998  61,706  1x32x32        32x32
        0
    """
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else None
    if command in _OWN_COMMANDS:
        return _OWN_COMMANDS[command][1](args[1:])
    if command in ("-h", "--help"):
        print(f"usage: classic-cnns {{{','.join(_ALL_COMMANDS)}}} ...\n")
        for name, (text, _) in _OWN_COMMANDS.items():
            print(f"  {name:<15} {text}")
        print(f"  {'fit':<15} train, then test: classic-cnns fit --model LeNet5 --data Digits")
        print(f"  {'validate, test, predict'}  LightningCLI's commands; add --help for their flags")
        return 0
    if command not in LIGHTNING_COMMANDS:
        given = repr(command) if args else "nothing"
        print(
            f"classic-cnns: expected a command ({', '.join(_ALL_COMMANDS)}); "
            f"got {given}. Try classic-cnns --help",
            file=sys.stderr,
        )
        return 2
    # In-memory datamodules are fastest without worker processes; the warning misleads.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    # The command line reaches LightningCLI as ``args`` (model names expanded), so it sees
    # both those and sys.argv and warns about a mix-up that is not one.
    warnings.filterwarnings("ignore", ".*args parameter is intended to run from within Python.*")
    try:
        args = _expand_model_names(args)
    except ValueError as err:
        print(f"classic-cnns: {err}", file=sys.stderr)
        return 2
    ClassicCLI(args=args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
