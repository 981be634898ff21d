"""``classic-cnns bench``: throughput and accuracy, measured on your own hardware.

Two modes, each a module owning its settings, rows, report section and plot:
:mod:`~classic_cnns.bench.throughput` and :mod:`~classic_cnns.bench.accuracy`. The flags come
from :func:`bench`'s signature through jsonargparse, as LightningCLI's do (``--force true``).
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal, get_origin

from jsonargparse import ActionConfigFile, ArgumentError, ArgumentParser

from classic_cnns._launch import command_error
from classic_cnns.bench import accuracy as accuracy_mode
from classic_cnns.bench import throughput as throughput_mode
from classic_cnns.bench.core import check_minimums, check_seed, execute

__all__ = ["bench", "main"]

MODES = {"throughput": throughput_mode, "accuracy": accuracy_mode}
_THROUGHPUT, _ACCURACY = throughput_mode.Settings(), accuracy_mode.Settings()


def bench(modes: tuple[Literal["throughput", "accuracy"], ...] = ("throughput", "accuracy"),
          throughput: throughput_mode.Settings = _THROUGHPUT,
          accuracy: accuracy_mode.Settings = _ACCURACY, seed: int = 0, threads: int | None = None,
          budget: float | None = None, out: str | Path | None = None,
          force: bool = False, plots: bool = True, dry_run: bool = False,
          list_recipes: bool = False, command: str = "classic-cnns bench") -> int:  # fmt: skip
    """Run the modes and write their files; return the exit status.

    The files and the status: see :func:`~.core.execute`.

    Args:
        modes: The modes to run, in this order (``throughput``, ``accuracy``: their
            settings); on the command line, as every list flag: ``--modes throughput``,
            ``--modes throughput,accuracy`` or ``--modes '[throughput]'``.
        seed: Seed of the weights, inputs and data order: an int in [0, 2**32). Not of the
            data's split: Digits' test images are seed 0's whatever the seed, as in ``fit``.
        threads: ``torch.set_num_threads`` for the run; ``None`` keeps PyTorch's choice.
        budget: Seconds after which no further task starts (those left are recorded skipped).
        out: Output folder; ``None``: ``bench-results/<YYYYmmdd-HHMMSS>``.
        force: Replace an earlier run's files in ``out`` (only those: a folder that holds no
            run's ``results.json`` is refused).
        plots: Draw PNG plots (needs matplotlib: ``pip install 'classic-cnns[plot]'``).
        dry_run: List the tasks and exit.
        list_recipes: List the accuracy recipes and exit.
        command: The command line, for the report.

    Example:
        >>> from classic_cnns.bench import bench
        >>> from classic_cnns.bench.accuracy import Settings
        >>> bench(modes=("accuracy",), accuracy=Settings(recipes=("lenet5/dig*",)), dry_run=True)
        accuracy lenet5/digits
        0
    """
    check_minimums("", dict(threads=threads, budget=budget), threads=1, budget=0.0)
    check_seed(seed)
    if not modes or any(mode not in MODES for mode in modes):
        raise ValueError(f"modes must name one or more of {list(MODES)}; got {list(modes)}")
    settings: dict[str, Any] = {"throughput": throughput, "accuracy": accuracy}
    if list_recipes:
        for name, r in accuracy_mode.RECIPES.items():
            ref = f", reference error {r.reference_error_pct}%" if r.reference_error_pct else ""
            print(f"{name}: {r.describe()}{ref}")
        return 0
    tasks = [t for mode in dict.fromkeys(modes) for t in MODES[mode].tasks(settings[mode], seed)]
    if dry_run:
        print("\n".join(t.label for t in tasks))
        return 0
    out = Path(out or Path("bench-results") / time.strftime("%Y%m%d-%H%M%S")).expanduser()
    reports = [MODES[mode].report for mode in dict.fromkeys(modes)]
    given = dict(modes=modes, seed=seed, threads=threads, budget=budget)
    given |= {mode: asdict(settings[mode]) for mode in modes}
    return execute(tasks, reports, out, command, given, force, budget, threads, plots)


def _quick(parser: ArgumentParser, args: list[str]) -> list[str]:
    """``--quick``, or ``quick: true`` in a --config file: the QUICK values as flags after the
    others, so that they beat a config's values, for the fields still at their defaults (a
    --print_config dump holds every default) and not named on the command line (those win).
    A mode's own file (``--throughput FILE``) is a config file too: it names no field."""
    printing = [a for a in args if a.startswith("--print_config")]
    given = [a for a in args if a not in printing]
    found, defaults = parser.parse_args(given), parser.get_defaults()
    if not found.quick:
        return args
    named = {a.split("=")[0].removeprefix("--") for a in given if a.startswith("--")}
    quick = [f"--{m}.{k}={json.dumps(v)}" for m in MODES for k, v in MODES[m].QUICK.items()
             if found[f"{m}.{k}"] == defaults[f"{m}.{k}"] and f"{m}.{k}" not in named]  # fmt: skip
    return [*given, *quick, *printing]


def _lists(parser: ArgumentParser, args: list[str]) -> list[str]:
    """A list flag given a bare word or comma-separated words (``--modes throughput``,
    ``--throughput.models lenet5,resnet20``): the JSON list jsonargparse expects."""
    lists = {a.dest for a in parser._actions if get_origin(getattr(a, "_typehint", None)) is tuple}
    out, i = [], 0
    while i < len(args):
        key, eq, value = args[i].partition("=")
        listed = key.removeprefix("--") in lists
        if listed and not eq and i + 1 < len(args) and not args[i + 1].startswith("--"):
            value, eq, i = args[i + 1], "=", i + 1
        if listed and eq and value.strip() and not value.lstrip().startswith("["):
            value = json.dumps([v.strip() for v in value.split(",") if v.strip()])
        out.append(f"{key}={value}" if listed and eq else args[i])
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    """``classic-cnns bench``: parse the flags, run :func:`bench`. ``--quick`` (or ``quick: true``
    in a ``--config`` file) sets small values for every mode (a few minutes on 2 CPU cores) in
    the fields still at their defaults; flags given beside it, and a config file's values other
    than the defaults, win.

    Example:
        >>> from classic_cnns.bench import main
        >>> main(["--quick", "--modes", "[accuracy]", "--dry_run", "true"])
        accuracy lenet5/digits
        accuracy lenet5/mnist10k
        0
    """
    args = list(sys.argv[1:] if argv is None else argv)
    parser = ArgumentParser(prog="classic-cnns bench", exit_on_error=False,
                            description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_argument("--quick", action="store_true", help="small grids for every mode "
                        "(the fields still at their defaults)")  # fmt: skip
    parser.add_function_arguments(bench, as_positional=False, skip={"command"})
    try:
        parsed = parser.parse_args(_quick(parser, _lists(parser, args)))  # as --print_config
        init = getattr(parser, "instantiate", parser.instantiate_classes)(parsed)
        kwargs = {k: v for k, v in vars(init).items() if k not in ("config", "quick")}
        return bench(**kwargs, command=shlex.join(["classic-cnns", "bench", *args]))
    except (ArgumentError, ValueError) as err:
        return command_error("classic-cnns bench", str(err))
