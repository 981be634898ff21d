"""What every measurement shares: rows and their environment, statistics, clocks, the files.

:func:`execute` runs a list of :class:`Task` objects into one :class:`Results`, writing after
each ``<mode>.csv`` per mode, ``results.json`` and ``report.md`` (a section per mode, from its
``report``, which draws the mode's plots); ``classic-cnns bench`` and ``benchmarks/`` alike.
``--force`` replaces those files of an earlier run (:func:`outputs`), never anything else.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import logging
import math
import os
import platform
import re
import statistics
import sys
import time
import typing
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
import torchvision
from tqdm.auto import tqdm

from classic_cnns._launch import command_error
from classic_cnns._writers import PLOTS_SKIPPED, matplotlib_missing
from classic_cnns.files import atomic_path, check_writable
from classic_cnns.registry import model_info

__all__ = ["Clock", "Results", "Task", "autocast", "environment", "execute", "image_size"]
__all__ += ["check_seed", "outputs", "quartiles", "run_tasks", "spread", "table", "timed"]
__all__ += ["trainer", "write"]

Backend = Literal["cpu", "cuda", "mps"]
Precision = Literal["fp32", "bf16-mixed", "fp16-mixed"]
ENVIRONMENT: tuple[str, ...] = ("backend", "device_name", "threads", "load_1m", "host",
    "platform", "python", "torch", "torchvision", "lightning")  # fmt: skip
"""The columns :func:`environment` fills; each CSV file puts them last."""
Report = Callable[["Results", "Path | None"], list[str]]
"""A mode's report: its section of report.md, drawing its plots into the folder when given."""


@functools.cache
def _cpu() -> str:
    with contextlib.suppress(OSError, TypeError):  # no /proc (macOS, Windows), no model name
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
        return re.search(r"^model name\s*:(.*)$", text, re.M)[1].strip()  # type: ignore[index]
    return platform.processor() or platform.machine()


def environment(backend: str = "cpu") -> dict[str, Any]:
    """Where and with what a row was measured: the device, threads, load and versions.

    Example:
        >>> from classic_cnns.bench.core import environment
        >>> env = environment()
        >>> env["backend"], env["torch"] == torch.__version__, env["threads"] >= 1
        ('cpu', True, True)
    """
    device = "absent" if unavailable(backend) else f"{_cpu()} ({os.cpu_count()} logical CPUs)"
    if backend == "cuda" and torch.cuda.is_available():
        device = torch.cuda.get_device_name()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    values: tuple[Any, ...] = (backend, device, torch.get_num_threads(), load, platform.node())
    values += (platform.platform(), platform.python_version(), torch.__version__)
    return dict(zip(ENVIRONMENT, (*values, torchvision.__version__, L.__version__), strict=True))


def unavailable(backend: str, precision: str = "fp32") -> str | None:
    """Why ``backend`` (with ``precision``) cannot be measured here, or ``None`` if it can."""
    if backend == "cuda" and not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available())"
    if backend == "mps" and not torch.backends.mps.is_available():
        return "no Apple MPS device (torch.backends.mps.is_available())"
    if precision == "fp16-mixed" and backend != "cuda":
        return "fp16-mixed runs on CUDA only"  # a gradient-scaler recipe; CPUs lack fast fp16
    if precision == "bf16-mixed" and backend == "cuda" and not torch.cuda.is_bf16_supported():
        return "this CUDA device has no bf16 support"
    return None


def image_size(model: str, size: int | None = None, max_size: int | None = None) -> tuple[int, int]:
    """``(H, W)`` to feed ``model``: ``size`` (square), else its own input size, shrunk to
    ``max_size`` (smoke runs) but never below its minimum input size.

    Example:
        >>> from classic_cnns.bench.core import image_size
        >>> image_size("lenet5"), image_size("alexnet", 64), image_size("googlenet", max_size=8)
        ((32, 32), (64, 64), (15, 15))
    """
    info = model_info(model)
    h, w = (size, size) if size else info.input_size[1:]
    h, w = min(h, max_size or h), min(w, max_size or w)
    return max(h, info.min_input_size[0]), max(w, info.min_input_size[1])


def autocast(backend: str, precision: str) -> contextlib.AbstractContextManager[Any]:
    """The autocast context of a precision (none for ``fp32``: no cost in the timed steps).

    Example:
        >>> from classic_cnns.bench.core import autocast
        >>> with autocast("cpu", "bf16-mixed"):
        ...     torch.ones(2, 2) @ torch.ones(2, 2)
        tensor([[2., 2.],
                [2., 2.]], dtype=torch.bfloat16)
    """
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16-mixed" else torch.float16
    return torch.autocast(device_type=backend, dtype=dtype)


def trainer(backend: str, precision: str = "fp32", epochs: int = 1, limit: int | None = None,
            **kwargs: Any) -> L.Trainer:  # fmt: skip
    """A ``Trainer`` on one ``backend`` device that writes and prints nothing; ``limit`` caps
    the training batches per epoch, ``kwargs`` go to the ``Trainer``.

    Example:
        >>> from classic_cnns.bench.core import trainer
        >>> t = trainer("cpu", epochs=2, limit=5)
        >>> t.max_epochs, t.limit_train_batches, t.logger
        (2, 5, None)
    """
    names = {"fp32": "32-true", "bf16-mixed": "bf16-mixed", "fp16-mixed": "16-mixed"}
    quiet: dict[str, Any] = dict(devices=1, logger=False, enable_checkpointing=False)
    quiet |= dict(enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    quiet |= dict(precision=names[precision], limit_train_batches=limit or 1.0)
    return L.Trainer(accelerator=backend, max_epochs=epochs, **quiet | kwargs)


def synchronize(backend: str) -> None:
    """Wait for the work queued on the device, so that a clock read next covers it."""
    if backend in ("cuda", "mps"):
        getattr(torch, backend).synchronize()


def timed(fn: Callable[[], Any], steps: int, backend: str) -> float:
    """Seconds for ``steps`` calls of ``fn``, the device synchronised before and after.

    Example:
        >>> from classic_cnns.bench.core import timed
        >>> calls = []
        >>> seconds = timed(lambda: calls.append(1), 3, "cpu")
        >>> len(calls), seconds >= 0
        (3, True)
    """
    synchronize(backend)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    synchronize(backend)
    return time.perf_counter() - start


class Clock(L.Callback):
    """Epoch seconds (the device synchronised; under DDP between barriers, so that rank 0's
    cover the slowest process), the images and the intervals between step ends (data, transfer,
    transform, forward, backward, step, hooks), but an epoch's first.

    Under a ``Trainer`` an epoch ends when the next one starts, or training ends: after the
    ``LightningModule``'s own ``on_train_epoch_end`` (its epoch metrics and logging), which
    Lightning calls after the callbacks' hook; :meth:`epoch_ended` follows, off the clock.
    Called by hand (no trainer, a hand-written loop), ``on_train_epoch_end`` ends it at once.

    Example:
        >>> from classic_cnns.bench.core import Clock
        >>> clock = Clock("cpu")
        >>> clock.on_train_epoch_start()
        >>> for _ in range(3):
        ...     clock.on_train_batch_end(None, None, None, (torch.zeros(8, 1, 4, 4), None), 0)
        >>> clock.on_train_epoch_end()
        >>> len(clock.epochs), clock.images, len(clock.steps)
        (1, 24, 2)
    """

    def __init__(self, backend: str) -> None:
        self.backend, self.images, self._running = backend, 0, False
        self.epochs, self.steps = list[float](), list[float]()

    def on_train_epoch_start(self, trainer: Any = None, module: Any = None) -> None:
        self._stop(trainer, module)  # the epoch before, after every epoch-end hook
        self._sync(trainer)
        self._start, self._last, self._running = time.perf_counter(), math.nan, True

    def on_train_batch_end(self, trainer: Any, module: Any, out: Any, batch: Any, i: int) -> None:
        now = time.perf_counter()
        self.steps += [] if math.isnan(self._last) else [now - self._last]
        self._last, self.images = now, self.images + len(batch[0])

    def on_train_epoch_end(self, trainer: Any = None, module: Any = None) -> None:
        if trainer is None:  # by hand; a Trainer's module hook comes next: see the class
            self._stop(None, module)

    def _sync(self, trainer: Any) -> None:  # wait for every process (DDP), then the device
        if trainer is not None:
            trainer.strategy.barrier()
        synchronize(self.backend)

    def _stop(self, trainer: Any, pl_module: Any) -> None:
        if self._running:
            self._sync(trainer)
            self.epochs.append(time.perf_counter() - self._start)
            self._running = False
            self.epoch_ended(trainer, pl_module)

    on_train_end = _stop  # the last epoch ends with training

    def epoch_ended(self, trainer: Any, module: Any) -> None:
        """Called once an epoch's time is taken, off the clock: nothing here, a subclass's hook.

        Example:
            >>> Clock("cpu").epoch_ended(None, None)  # Curve measures its test accuracy here
        """


def spread(prefix: str, values: Sequence[float]) -> dict[str, float | None]:
    """Median, quartiles (interpolated, as numpy's), min and max as ``prefix_*`` columns.

    Example:
        >>> from classic_cnns.bench.core import spread
        >>> spread("x", [4.0, 1.0, 3.0, 2.0])
        {'x_median': 2.5, 'x_q1': 1.75, 'x_q3': 3.25, 'x_min': 1.0, 'x_max': 4.0}
    """
    names = [f"{prefix}_{s}" for s in ("median", "q1", "q3", "min", "max")]
    if not values:
        return dict.fromkeys(names)
    v = sorted(values)
    q1, _, q3 = statistics.quantiles(v, n=4, method="inclusive") if len(v) > 1 else v * 3
    return dict(zip(names, (statistics.median(v), q1, q3, v[0], v[-1]), strict=True))


def check_minimums(where: str, values: Mapping[str, Any], *, required: Sequence[str] = (),
                   **minimums: float) -> None:  # fmt: skip
    """Raise ``ValueError`` unless each named value is at least its minimum, or ``None``.

    An int minimum asks for an int (a count), a float one for any finite number; the names
    in ``required`` may not be ``None``.

    Example:
        >>> from classic_cnns.bench.core import check_minimums
        >>> check_minimums("throughput.", {"repeats": 0}, required=["repeats"], repeats=1)
        Traceback (most recent call last):
        ...
        ValueError: throughput.repeats must be an int of at least 1; got 0
    """
    for key, low in minimums.items():
        value, optional = values[key], key not in required
        if value is None and optional:
            continue
        kind = int if isinstance(low, int) else int | float
        if isinstance(value, bool) or not isinstance(value, kind) or not low <= value < math.inf:
            what = "an int" if kind is int else "a finite number"
            raise ValueError(f"{where}{key} must be {what} of at least {low}"
                             f"{' (or None)' * optional}; got {value!r}")  # fmt: skip


def check_choices(where: str, settings: Any, *names: str) -> None:
    """Raise ``ValueError`` unless each named field of the dataclass ``settings`` is a non-empty
    tuple or list of strings, each one of its ``Literal`` choices (``tuple[Literal[...], ...]``),
    or, for a ``Literal[...]`` field, one of them.

    Example:
        >>> from classic_cnns.bench.core import check_choices
        >>> from classic_cnns.bench.throughput import Settings
        >>> check_choices("throughput.", Settings(), "models", "backends")
        >>> Settings(precisions=("fp8",))
        Traceback (most recent call last):
        ...
        ValueError: throughput.precisions must be a non-empty list of ['fp32', 'bf16-mixed', ...
    """
    for name in names:  # Literal[...], tuple[Literal[...], ...] or tuple[str, ...] (any strings)
        value, hint = getattr(settings, name), typing.get_type_hints(type(settings))[name]
        one = typing.get_origin(hint) is Literal
        choices = typing.get_args(hint if one else typing.get_args(hint)[0])
        listed = [value] if one else value if isinstance(value, tuple | list) and value else [None]
        if any(not isinstance(v, str) or (choices and v not in choices) for v in listed):
            what = f"{'one' if one else 'a non-empty list'} of {list(choices) or 'names'}"
            raise ValueError(f"{where}{name} must be {what}; got {value!r}")


def check_seed(seed: Any, where: str = "") -> None:
    """Raise ``ValueError`` unless ``seed`` is an int in [0, 2**32): what every seeder of a run
    takes (``seed_everything``'s numpy bound is the tightest; torch and the datamodules' wider).

    Example:
        >>> from classic_cnns.bench.core import check_seed
        >>> check_seed(-1)
        Traceback (most recent call last):
        ...
        ValueError: seed must be an int in [0, 2**32); got -1
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"{where}seed must be an int in [0, 2**32); got {seed!r}")


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or ``None`` when either is missing or the divisor is 0."""
    return None if numerator is None or not denominator else numerator / denominator


def _cell(v: Any) -> str:
    if isinstance(v, float) and not math.isnan(v):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
    return "–" if v is None or isinstance(v, float) else str(v).replace("|", "/")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table, then a blank line: ``–`` for ``None``, floats to 3 figures (from 100:
    whole, thousands separated).

    Example:
        >>> from classic_cnns.bench.core import table
        >>> table(["model", "img/s"], [["lenet5", 12345.6], ["vgg11", None]])
        ['| model | img/s |', '|---|---|', '| lenet5 | 12,346 |', '| vgg11 | – |', '']
    """
    body = ["| " + " | ".join(map(_cell, r)) + " |" for r in rows]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *body, ""]


def quartiles(row: dict[str, Any], prefix: str) -> str:
    """``median [q1–q3]`` of a :func:`spread`, ⚠ where the quartiles lie 25% apart.

    Example:
        >>> from classic_cnns.bench.core import quartiles, spread
        >>> quartiles(spread("ips", [100.0, 101.0, 102.0]), "ips"), quartiles({}, "ips")
        ('101 [100–102]', '–')
    """
    median, q1, q3 = (row.get(f"{prefix}_{s}") for s in ("median", "q1", "q3"))
    if median is None or q1 is None or q3 is None:
        return "–"
    return f"{_cell(median)} [{_cell(q1)}–{_cell(q3)}]" + " ⚠" * (q3 - q1 > median / 4)


@dataclass
class Results:
    """One run: its settings, rows per mode (the mode's columns, then :func:`environment`'s),
    ``data`` beside (curves, peaks), notes for the report, the seconds per task and the
    ``environment`` the tasks ran in (set by :func:`run_tasks`).

    Example:
        >>> results = Results()
        >>> _ = results.add("demo", "cpu", "skipped", note="no data", model="vgg11")
        >>> results.ok("demo"), results.notes  # a skip: no measured row, and a note
        ([], ['demo on cpu: skipped, no data'])
    """

    settings: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    task_s: dict[str, float] = field(default_factory=dict)
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    wall_s: float | None = None
    environment: dict[str, Any] = field(default_factory=dict)

    def add(self, mode: str, backend: str, status: str = "ok", **values: Any) -> dict[str, Any]:
        """Append a row of ``mode`` on ``backend`` and return it; a skip's reason becomes a note
        (one per mode, backend and reason).

        Example:
            >>> list(Results().add("demo", "cpu", model="lenet5"))[:5]  # then environment()'s
            ['mode', 'status', 'note', 'model', 'backend']
        """
        row = {"mode": mode, "status": status, "note": None, **values, **environment(backend)}
        if status == "skipped" and row["note"]:
            self.note(f"{mode} on {backend}: skipped, {row['note']}")
        self.rows.setdefault(mode, []).append(row)
        return row

    def ok(self, mode: str) -> list[dict[str, Any]]:
        """The measured rows of ``mode`` (not skipped, not failed).

        Example:
            >>> Results(rows={"demo": [{"status": "ok"}, {"status": "failed"}]}).ok("demo")
            [{'status': 'ok'}]
        """
        return [r for r in self.rows.get(mode, []) if r["status"] == "ok"]

    def note(self, text: str) -> None:
        """Record a note for the report, once.

        Example:
            >>> results = Results(notes=["a skip"])
            >>> results.note("a skip"), results.note("a failure"), results.notes
            (None, None, ['a skip', 'a failure'])
        """
        if text not in self.notes:
            self.notes.append(text)


@dataclass
class Task:
    """A unit of work: a label, a function adding rows, and what a failure's row says;
    ``closing`` runs even when the time budget is spent (a run's final measurement); a task
    that only completes other tasks' rows (``rows=False``: the peaks) gets no row of its
    own when the budget skips it (the rows it would complete are skipped, and noted, too).

    Example:
        >>> from classic_cnns.bench.core import Results, Task
        >>> task = Task("demo lenet5", lambda r: r.add("demo", "cpu", model="lenet5"), "demo")
        >>> results = Results()
        >>> task.run(results)["model"]
        'lenet5'
    """

    label: str
    run: Callable[[Results], Any]
    mode: str
    backend: str = "cpu"
    fields: dict[str, Any] = field(default_factory=dict)
    closing: bool = False
    rows: bool = True


def run_tasks(tasks: Sequence[Task], results: Results, budget_s: float | None = None,
              threads: int | None = None, after_each: Callable[[], Any] | None = None
              ) -> Results:  # fmt: skip
    """Run every task with ``threads`` torch threads and ``after_each`` after each: one that
    raises adds a ``failed`` row (its ``fields`` and the error), and none starts after ``budget_s``
    (a ``skipped`` row each, but for ``rows=False``). A progress bar shows on a terminal.

    Example:
        >>> from classic_cnns.bench.core import Results, Task, run_tasks
        >>> def broken(results):
        ...     raise RuntimeError("out of memory")
        >>> results = run_tasks([Task("big", broken, "demo", fields={"model": "vgg11"})], Results())
        >>> row = results.rows["demo"][0]
        >>> row["status"], row["model"], row["note"]
        ('failed', 'vgg11', 'RuntimeError: out of memory')
    """
    logger, previous = logging.getLogger("lightning.pytorch"), torch.get_num_threads()
    start, level = time.perf_counter(), logger.level
    torch.set_num_threads(threads or previous)
    results.environment = environment()  # now: by the last write the threads are restored
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(), tqdm(tasks, disable=None, unit="task") as bar:
            warnings.filterwarnings("ignore", ".*(workers|GPU available|LeafSpec|batches|ranks)")
            for task in bar:
                bar.set_description(task.label)
                task_start = time.perf_counter()
                try:
                    spent = budget_s is not None and task_start - start > budget_s
                    if spent and not task.closing and task.rows:  # a note per mode and backend
                        note = f"not run: the time budget of {budget_s:g} s was spent"
                        results.add(task.mode, task.backend, "skipped", note=note, **task.fields)
                    elif not spent or task.closing:
                        task.run(results)
                except Exception as err:  # one configuration failing must not end the run
                    message = f"{type(err).__name__}: {err}".splitlines()[0][:600]
                    status = "skipped" if isinstance(err, FileNotFoundError) else "failed"
                    if status == "failed":  # a missing dataset is a skip, noted by add
                        results.note(f"{task.label}: failed, {message}")
                    results.add(task.mode, task.backend, status, note=message, **task.fields)
                results.task_s[task.label] = time.perf_counter() - task_start
                results.wall_s = time.perf_counter() - start
                if after_each is not None:
                    after_each()
    finally:
        torch.set_num_threads(previous)
        logger.setLevel(level)
    return results


def write(results: Results, out: Path, reports: Sequence[Report], command: str,
          plots: bool = False, replacing: list[Path] | None = None) -> None:  # fmt: skip
    """Write ``<mode>.csv`` per mode, ``results.json`` and ``report.md`` (and plots) to ``out``,
    each whole or not at all (:func:`~classic_cnns.files.atomic_path`), then remove those of
    ``replacing`` that this run did not write again (a failed write leaves them all).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from classic_cnns.bench.core import Results, write
        >>> results = Results()
        >>> _ = results.add("demo", "cpu", model="lenet5")
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     write(results, Path(folder), [], "bench")
        ...     sorted(p.name for p in Path(folder).iterdir())
        ['demo.csv', 'report.md', 'results.json']
    """
    for mode, rows in results.rows.items():
        columns = [*dict.fromkeys(k for r in rows for k in r if k not in ENVIRONMENT), *ENVIRONMENT]
        path = out / f"{mode}.csv"  # every text file in UTF-8, whatever the locale's encoding
        with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([columns, *([r.get(c) for c in columns] for r in rows)])
    env = results.environment or environment()
    payload = dict(command=command, started=results.started, wall_s=results.wall_s, environment=env)
    payload |= {k: getattr(results, k) for k in ("settings", "notes", "task_s", "rows", "data")}
    with atomic_path(out / "results.json") as tmp:
        tmp.write_text(json.dumps(payload, indent=1, default=str) + "\n", encoding="utf-8")
    keys = ("torch", "torchvision", "lightning")  # the threads: per row
    found = {str(r["device_name"]) for rows in results.rows.values() for r in rows
             if r.get("device_name") not in (None, "", "absent")}  # measured on # fmt: skip
    devices = "; ".join(sorted(found)) or env["device_name"]  # the GPU's name, on a GPU
    lines = [f"# {command.split(' -')[0]} report", ""]
    lines += [f"Started {results.started}, {results.wall_s or 0:.0f} s: `{command}`", ""]
    lines += table(["devices", *keys], [[devices, *(env[k] for k in keys)]])
    for report in reports:
        lines += report(results, out if plots else None)
    if results.notes:
        lines += ["## Notes, skips and failures", "", *(f"- {n}" for n in results.notes)]
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    for stale in set(replacing or ()) - {out / name for name in outputs(out) or ()}:
        stale.unlink(missing_ok=True)


def outputs(out: Path) -> set[str] | None:
    """The names of the files a run wrote in ``out`` (as its ``results.json`` and ``report.md``
    list them: a CSV per mode, ``results.json``, ``report.md``, the plots the report shows), or
    ``None`` when ``out`` holds no run's ``results.json``.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from classic_cnns.bench.core import Results, outputs, write
        >>> results = Results()
        >>> _ = results.add("demo", "cpu", model="lenet5")
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     missing = outputs(Path(folder))
        ...     write(results, Path(folder), [], "bench")
        ...     missing, sorted(outputs(Path(folder)))
        (None, ['demo.csv', 'report.md', 'results.json'])
    """
    with contextlib.suppress(OSError, ValueError):
        saved = json.loads((out / "results.json").read_text(encoding="utf-8"))
        if isinstance(saved, dict) and isinstance(saved.get("rows"), dict) and "command" in saved:
            names = {f"{m}.csv" for m in saved["rows"]} | {"results.json", "report.md"}
            report = md.read_text(encoding="utf-8") if (md := out / "report.md").is_file() else ""
            names |= set(re.findall(r"!\[[^\]]*\]\(([^/\\()]+\.png)\)", report))  # plots
            return {n for n in names if Path(n).name == n and n not in (".", "..")}  # in out
    return None


def _refusal(out: Path, force: bool) -> str | None:
    """Why the run may not write to ``out``, else ``None`` (``force``: an earlier run's may)."""
    try:  # a file, or a folder that cannot be written: found now, not after the first task
        check_writable(out / "results.json")
    except OSError as err:
        return f"{err}; --out must be a folder one can write in"
    if (found := sorted(p.name for p in out.iterdir()) if out.exists() else []) and not force:
        return f"{out} is not an empty folder; pass --force true to replace an earlier run's files"
    if found and outputs(out) is None:
        return (f"--force replaces an earlier run's files only, and {out} holds no run's "
                f"results.json but {found[0]!r}; choose another --out")  # fmt: skip
    return None


def execute(tasks: Sequence[Task], reports: Sequence[Report], out: Path, command: str,
            settings: dict[str, Any], force: bool = False, budget_s: float | None = None,
            threads: int | None = None, plots: bool = True) -> int:  # fmt: skip
    """Run ``tasks``, rewriting their files in ``out`` after each (a run stopped or killed keeps
    its finished tasks); return 0 (skips are fine), 1 (some failed), 2 (``out`` is a file, or a
    folder that is not empty, without ``force``, or with ``force`` but not an earlier run's) or
    130 (interrupted). ``force`` removes the earlier run's files (:func:`outputs`) with this
    one's first rows (a task that adds none, or none at all: they stay until the run ends), and
    leaves anything else in the folder.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from classic_cnns.bench.core import execute
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     execute([], [], Path(folder, "run"), "bench", {})
        bench: 2 files in ...
        0
    """
    prog = command.split(" -")[0]
    if refused := _refusal(out, force):
        return command_error(prog, refused)
    results, stale = Results(settings=settings), [out / n for n in outputs(out) or () if force]
    save = functools.partial(write, results, out, reports, command, replacing=stale)
    try:
        run_tasks(tasks, results, budget_s, threads, after_each=lambda: results.rows and save())
    except (KeyboardInterrupt, SystemExit) as err:  # Lightning ends a fit's Ctrl-C in exit(1)
        if isinstance(err, SystemExit) and not isinstance(err.__context__, KeyboardInterrupt):
            raise
        if results.rows:  # else the folder is as it was
            save()
        print(f"\n{prog}: interrupted; the tasks that finished are in {out}", file=sys.stderr)
        return 130
    if (drawn := plots and not matplotlib_missing()) != plots:  # the tables are still written
        results.note(PLOTS_SKIPPED)
    save(plots=drawn)
    print(f"{prog}: {len(outputs(out) or ())} files in {out} ({results.wall_s or 0:.0f} s)")
    if failed := sum(r["status"] == "failed" for rows in results.rows.values() for r in rows):
        print(f"{prog}: {failed} configuration(s) failed; see {out / 'report.md'}", file=sys.stderr)
    return 1 if failed else 0
