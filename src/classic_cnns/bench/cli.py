"""``classic-cnns bench``: plan the selected modes, run them under a progress bar, write files.

The output folder is written atomically: results go to a hidden sibling folder first
and replace ``--out`` only once every file is written, so an interrupted or failed run
never destroys an earlier result (its partial results stay in the hidden folder, which
the message names). An existing non-empty ``--out`` is refused unless ``--force``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from classic_cnns.bench import accuracy, overhead, pipeline, scaling, throughput
from classic_cnns.bench._common import (
    BACKENDS,
    MEMORY_FORMATS,
    MODES,
    PRECISIONS,
    BenchConfig,
    Results,
    Task,
    set_threads,
)
from classic_cnns.bench.report import read_targets, targets, write_all

__all__ = ["main", "plan", "run"]


def plan(cfg: BenchConfig) -> list[Task]:
    """Every task of a run, mode after mode in the order of ``cfg.modes``.

    Example:
        >>> from classic_cnns.bench import BenchConfig, plan
        >>> tasks = plan(BenchConfig.quick(modes=["pipeline"]))
        >>> [t.label for t in tasks]
        ['pipeline mnist10k']
    """
    planners = {
        "throughput": throughput.plan,
        "overhead": overhead.plan,
        "pipeline": pipeline.plan,
        "accuracy": accuracy.plan,
        "optimizers": accuracy.plan,  # the accuracy module plans only the modes it is given
        "scaling": scaling.plan,
    }
    tasks: list[Task] = []
    for mode in dict.fromkeys(cfg.modes):
        tasks += planners[mode](dataclasses.replace(cfg, modes=[mode]))
    return tasks


@contextlib.contextmanager
def _threads(threads: int | None) -> Iterator[None]:
    """``torch.set_num_threads`` for the run, restored afterwards (the caller's process)."""
    import torch

    previous = torch.get_num_threads()
    set_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the Trainer's per-fit banners and known-harmless warnings for the run."""
    names = ("lightning.pytorch", "lightning.fabric", "lightning")
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.WARNING)
    with warnings.catch_warnings():
        for pattern in (
            ".*does not have many workers.*",
            ".*GPU available but not used.*",
            ".*number of training batches.*",
            ".*the trainer's `limit_train_batches`.*",
            ".*Total length of `list` across ranks is zero.*",  # val_size=0: no validation
            ".*LeafSpec.*is deprecated.*",  # Lightning 2.6 on newer PyTorch
        ):
            warnings.filterwarnings("ignore", pattern)
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def run(cfg: BenchConfig, results: Results | None = None, save_to: Path | None = None) -> Results:
    """Run every planned task, one failure never stopping the others; return the results.

    With ``save_to``, the CSV, JSON and report of what has run so far (no plots) are written
    there after every task, so a run killed from outside keeps its finished tasks.

    A task that raises is recorded as a ``failed`` row of its mode with the error as note.
    Once ``cfg.budget_s`` seconds have passed, the tasks left are recorded as ``skipped``.

    Example:
        >>> from classic_cnns.bench import BenchConfig, run
        >>> from pathlib import Path
        >>> results = run(BenchConfig(modes=["pipeline"], data_dir=Path("/nonexistent"),
        ...                           progress=False))
        >>> results.rows["pipeline"][0]["status"]
        'skipped'
    """
    from tqdm.auto import tqdm

    results = results if results is not None else Results(cfg)
    start = time.perf_counter()
    tasks = plan(cfg)
    with (
        _threads(cfg.threads),
        _quiet(),
        tqdm(tasks, disable=not cfg.progress, unit="task", dynamic_ncols=True) as bar,
    ):
        for task in bar:
            bar.set_description(task.label)
            task_start = time.perf_counter()
            try:
                if cfg.budget_s is not None and task_start - start > cfg.budget_s:
                    note = f"not run: the time budget of {cfg.budget_s:g} s was spent"
                    results.note(f"{note} (from {task.label} on)")
                    results.add(task.mode, task.backend, status="skipped", note=note, **task.fields)
                else:
                    task.run(results)
            except Exception as err:  # one configuration failing must not end the run
                message = f"{type(err).__name__}: {err}".splitlines()[0][:300]
                results.note(f"{task.label}: failed, {message}")
                results.add(task.mode, task.backend, status="failed", note=message, **task.fields)
            finally:
                results.task_s[task.label] = time.perf_counter() - task_start
                results.wall_s = time.perf_counter() - start
            if save_to is not None:
                write_all(results, save_to, plots=False)
    return results


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _ints(value: str) -> list[int]:
    try:
        return [int(v) for v in _csv(value)]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers: {err}") from err


def _choices(name: str, values: list[str], allowed: Sequence[str]) -> list[str]:
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(f"--{name}: unknown {bad}; expected some of {', '.join(allowed)}")
    return values


def _models(values: list[str]) -> list[str]:
    from classic_cnns.registry import list_models, model_info

    names: list[str] = []
    for value in values:
        if value == "all":
            names += list_models()
        elif any(c in value for c in "*?["):
            found = list_models(value)
            if not found:
                raise ValueError(f"--models: no registered model matches {value!r}")
            names += found
        else:
            names.append(model_info(value).name)  # unknown names raise with suggestions
    return list(dict.fromkeys(names))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``classic-cnns bench``.

    Example:
        >>> from classic_cnns.bench.cli import build_parser
        >>> build_parser().parse_args(["--quick"]).quick
        True
    """
    p = argparse.ArgumentParser(
        prog="classic-cnns bench",
        description=(
            "Benchmark the model zoo: throughput (vs torchvision, with MFU), Lightning overhead, "
            "data pipeline speed, accuracy recipes, an optimizer comparison and DDP scaling. "
            "Writes CSV, JSON, a Markdown report and PNG plots."
        ),
    )
    add = p.add_argument
    add(
        "--quick",
        action="store_true",
        help="small grids for every mode, under 5 minutes on 2 CPU cores",
    )
    add("--modes", type=_csv, help=f"comma-separated, of {','.join(MODES)} (default: all)")
    add(
        "--models", type=_csv, help="throughput models: names, shell wildcards ('resnet*') or 'all'"
    )
    add("--backends", type=_csv, help=f"of {','.join(BACKENDS)}; absent ones are skipped")
    add("--precisions", type=_csv, help=f"of {','.join(PRECISIONS)}")
    add("--memory-formats", type=_csv, help=f"of {','.join(MEMORY_FORMATS)}")
    add("--compile", type=_csv, help="torch.compile settings: off, on or off,on")
    add("--compile-models", help="shell wildcard: compile only these models")
    add(
        "--compile-scope",
        help="compile every precision/format ('all'), only the first of each ('base') or "
        "one, e.g. 'bf16-mixed/channels_last'",
    )
    add("--batch-size", type=int, help="throughput batch (default: 128 tiny models, else 32)")
    add(
        "--max-image-size",
        type=int,
        help="shrink larger throughput inputs to H=W (default: each model's own size)",
    )
    add("--repeats", type=int, help="timed repeats per measurement")
    add("--warmup", type=int, help="untimed warm-up steps")
    add("--min-time", type=float, help="seconds per timed repeat")
    add("--threads", type=int, help="torch.set_num_threads (default: PyTorch's choice)")
    add("--budget", dest="budget_s", type=float, help="seconds after which no task starts")
    add("--seed", type=int, help="seed of weights, data and recipes")
    add(
        "--data-dir",
        type=Path,
        help="folder with MNIST/raw etc. (default: $CLASSIC_CNNS_DATA, ./data, ../shared/data)",
    )
    add("--recipes", type=_csv, help="accuracy recipes 'model/dataset', shell wildcards")
    add(
        "--targets",
        dest="targets_file",
        type=Path,
        help="JSON file of targets to check and accuracies to time (benchmarks/targets.json)",
    )
    add(
        "--overhead",
        type=_csv,
        help="overhead settings 'model/dataset[:size=H][:batch=B][:precision=P][:format=F]', "
        "comma-separated (default: lenet5/mnist10k)",
    )
    add("--overhead-epochs", type=int, help="epochs per fit (first one is warm-up)")
    add("--overhead-repeats", type=int, help="fits per loop")
    add("--pipeline-repeats", type=int, help="epochs per data pipeline")
    add("--optimizer-recipe", help="'model/dataset' recipe of the optimizer comparison")
    add("--optimizer-epochs", type=int, help="epochs per optimizer")
    add("--scaling-model", help="model of the DDP scaling measurement")
    add("--scaling-dataset", choices=("mnist10k", "digits"))
    add(
        "--scaling-processes",
        "--scaling-devices",
        type=_ints,
        help="process counts, e.g. 1,2 (default: 1,2 on CPU; 1 and every GPU on CUDA)",
    )
    add("--scaling-epochs", type=int, help="epochs per process count (first one is warm-up)")
    add("--scaling-batch-size", type=int, help="batch per process (fixed: weak scaling)")
    add(
        "--limit-train-batches",
        type=int,
        help="cap training (and data pipeline) batches per epoch, for smoke tests",
    )
    add("--max-epochs", type=int, help="cap every accuracy recipe's epochs, for smoke tests")
    add("--out", type=Path, help="output folder (default: benchmarks/results/<YYYYmmdd-HHMMSS>)")
    add("--force", action="store_true", help="replace a non-empty --out")
    add("--no-plots", action="store_true", help="skip the PNG plots")
    add("--no-progress", action="store_true", help="no progress bar")
    add("--dry-run", action="store_true", help="list the planned tasks and exit")
    add("--list-recipes", action="store_true", help="list the accuracy recipes and exit")
    return p


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    """A :class:`BenchConfig` from parsed arguments: ``--quick`` or full defaults, overridden.

    Raises:
        ValueError: for unknown modes, models, backends, precisions or formats, or a bad
            targets file.

    Example:
        >>> from classic_cnns.bench.cli import build_parser, config_from_args
        >>> cfg = config_from_args(build_parser().parse_args(["--quick", "--repeats", "2"]))
        >>> cfg.repeats, cfg.models
        (2, ['lenet5', 'resnet18'])
    """
    # Every option named like a BenchConfig field overrides it when given.
    overrides: dict[str, Any] = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(BenchConfig)
        if getattr(args, f.name, None) is not None
    }
    for name, allowed in (
        ("modes", MODES),
        ("backends", BACKENDS),
        ("precisions", PRECISIONS),
        ("memory_formats", MEMORY_FORMATS),
        ("compile", ("off", "on")),
    ):
        if name in overrides:
            _choices(name.replace("_", "-"), overrides[name], allowed)
    if "models" in overrides:
        overrides["models"] = _models(args.models)
    if "compile" in overrides:
        overrides["compile"] = [v == "on" for v in overrides["compile"]]
    for name in (
        "repeats",
        "warmup",
        "overhead_repeats",
        "pipeline_repeats",
        "optimizer_epochs",
        "scaling_batch_size",
    ):
        if name in overrides and overrides[name] < (0 if name == "warmup" else 1):
            raise ValueError(f"--{name.replace('_', '-')} must be positive; got {overrides[name]}")
    if "scaling_epochs" in overrides and overrides["scaling_epochs"] < 2:
        raise ValueError("--scaling-epochs must be >= 2 (the first epoch is warm-up)")
    if any(n < 1 for n in overrides.get("scaling_processes") or []):
        raise ValueError(f"--scaling-processes must be >= 1; got {overrides['scaling_processes']}")
    if "scaling_model" in overrides:
        from classic_cnns.registry import model_info

        overrides["scaling_model"] = model_info(overrides["scaling_model"]).name
    scope = overrides.get("compile_scope", "all")
    if scope not in ("all", "base") and (
        scope.partition("/")[0] not in PRECISIONS or scope.partition("/")[2] not in MEMORY_FORMATS
    ):
        raise ValueError(
            f"--compile-scope: expected 'all', 'base' or PRECISION/FORMAT; got {scope!r}"
        )
    if args.targets_file is not None:
        overrides["time_to_accuracy"], overrides["targets"] = read_targets(args.targets_file)
    if args.no_plots:
        overrides["plots"] = False
    if args.no_progress:
        overrides["progress"] = False
    return BenchConfig.quick(**overrides) if args.quick else BenchConfig(**overrides)


def _check_out(out: Path, force: bool) -> str | None:
    if out.exists() and not out.is_dir():
        return f"{out} exists and is not a folder"
    if out.is_dir() and any(out.iterdir()) and not force:
        return f"{out} exists and is not empty; pass --force to replace it, or choose another --out"
    return None


def _replace(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` folder to ``out``, replacing an old ``out`` only now."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``classic-cnns bench``; returns the exit status.

    0: every task ran (skips are fine); 1: some task failed (recorded in the report);
    2: bad arguments or output folder; 130: interrupted (partial results kept).

    Example:
        >>> from classic_cnns.bench import main
        >>> main(["--quick", "--modes", "pipeline", "--dry-run"])
        pipeline mnist10k
        0
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(args_list)
    if args.list_recipes:
        from classic_cnns.bench.accuracy import RECIPES

        for name, r in RECIPES.items():
            ref = f", reference error {r.reference_error_pct}%" if r.reference_error_pct else ""
            print(
                f"{name}: {r.optimizer} lr {r.lr:g}, {r.scheduler}, batch {r.batch_size}, "
                f"{r.epochs} epochs, {r.image_size or 'own'} px, {r.precision}, "
                f"{r.memory_format}{ref}"
            )
        return 0
    try:
        cfg = config_from_args(args)
        tasks = plan(cfg)
    except ValueError as err:
        print(f"classic-cnns bench: {err}", file=sys.stderr)
        return 2
    if args.dry_run:
        for task in tasks:
            print(task.label)
        return 0
    out: Path = args.out or Path("benchmarks") / "results" / time.strftime("%Y%m%d-%H%M%S")
    problem = _check_out(out, args.force)
    if problem:
        print(f"classic-cnns bench: {problem}", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))

    results = Results(cfg)
    try:
        run(cfg, results, save_to=tmp)
    except KeyboardInterrupt:
        write_all(results, tmp, args_list)
        print(f"\nclassic-cnns bench: interrupted; partial results in {tmp}", file=sys.stderr)
        return 130
    files = write_all(results, tmp, args_list)
    _replace(tmp, out)
    print(f"classic-cnns bench: {len(files)} files in {out} ({results.wall_s or 0:.0f} s)")
    for target, measured, verdict in targets(results):
        print(f"  [{verdict}] {target}: {measured}")
    failed = [r for rows in results.rows.values() for r in rows if r["status"] == "failed"]
    if failed:
        print(
            f"classic-cnns bench: {len(failed)} configuration(s) failed; see {out / 'report.md'}",
            file=sys.stderr,
        )
        return 1
    return 0
