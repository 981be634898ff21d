"""Pieces every benchmark mode shares: settings, environment, rows, statistics, timing.

Each mode module (``throughput``, ``overhead``, ``pipeline``, ``accuracy``, ``scaling``)
plans a list of :class:`Task` objects; :mod:`classic_cnns.bench.cli` runs them under one
progress bar and collects what they return in one :class:`Results`. Rows are plain dicts
whose keys are exactly :data:`MODE_COLUMNS` of their mode, so the CSV, JSON and Markdown
writers and the tests agree on one schema.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fnmatch
import gc
import math
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "BACKENDS",
    "COMMON_COLUMNS",
    "MODES",
    "MODE_COLUMNS",
    "PRECISIONS",
    "BenchConfig",
    "PeakMemory",
    "Results",
    "Task",
    "autocast",
    "backend_unavailable",
    "environment",
    "precision_unsupported",
    "spread",
    "synchronize",
]

MODES = ("throughput", "overhead", "pipeline", "accuracy", "optimizers", "scaling")
BACKENDS = ("cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16-mixed", "fp16-mixed")
# The Trainer's name of each precision (fp16-mixed comes with a gradient scaler).
TRAINER_PRECISION = {"fp32": "32-true", "bf16-mixed": "bf16-mixed", "fp16-mixed": "16-mixed"}
MEMORY_FORMATS = ("contiguous", "channels_last")

# Columns every row carries: where and with what it was measured.
COMMON_COLUMNS: tuple[str, ...] = (
    "mode",
    "status",  # "ok", "skipped" or "failed"
    "note",
    "backend",
    "device_name",
    "threads",
    "load_1m",  # the machine's 1-minute load average when the row was written
    "host",
    "platform",
    "python",
    "torch",
    "torchvision",
    "lightning",
    "seed",
)


def _stat_columns(prefix: str) -> tuple[str, ...]:
    return tuple(f"{prefix}_{s}" for s in ("median", "q1", "q3", "min", "max"))


MODE_COLUMNS: dict[str, tuple[str, ...]] = {
    "throughput": (
        *COMMON_COLUMNS,
        "model",
        "impl",  # "classic_cnns" or "torchvision"
        "precision",
        "memory_format",
        "compile",
        "batch_size",
        "input_size",
        "warmup_steps",
        "train_steps",
        "infer_steps",
        "repeats",
        "warmup_s",  # wall time of the warm-up steps (includes compilation)
        *_stat_columns("train_ips"),
        *_stat_columns("infer_ips"),
        "train_peak_mem_mb",
        "infer_peak_mem_mb",
        "mem_kind",
        "fwd_flops_per_image",
        "train_tflops",
        "infer_tflops",
        "peak_math",  # the math mode whose peak MFU divides by: fp32, tf32, bf16 or fp16
        "peak_tflops",
        "train_mfu",
        "infer_mfu",
        "vs_torchvision_train",  # classic_cnns median / torchvision median, same run
        "vs_torchvision_infer",
    ),
    "overhead": (
        *COMMON_COLUMNS,
        "setting",  # the --overhead setting: model/dataset[:key=value...]
        "model",
        "dataset",
        "input_size",
        "precision",
        "memory_format",
        "loop",  # "network", "handwritten", "lightning" or "lightning_bare"
        "batch_size",
        "images_per_epoch",
        "epochs_per_fit",
        "measured_epochs",
        "repeats",
        *_stat_columns("epoch_s"),
        "ips",
        "overhead_pct",  # (loop median - handwritten median) / handwritten median * 100
        # Intervals between step ends (fetch, transfer, transform, step, hooks): their median
        # is steadier than epoch times on a shared machine.
        "step_ms_median",
        "step_ms_min",
        "overhead_step_pct",
        "vs_network",  # ips / the network's own training ips ("network" loop), same run
        "trainer_flags",
    ),
    "pipeline": (
        *COMMON_COLUMNS,
        "dataset",
        "pipeline",  # "classic_cnns" or "torchvision"
        "description",
        "images",
        "batch_size",
        "num_workers",
        "repeats",
        *_stat_columns("epoch_s"),
        "ips",
        "outputs_match",  # both pipelines yield the same first batch (no shuffling)
        "speedup",  # torchvision median / classic_cnns median, same run
    ),
    "accuracy": (
        *COMMON_COLUMNS,
        "run",
        "model",
        "dataset",
        "optimizer",
        "lr",
        "momentum",
        "weight_decay",
        "scheduler",
        "batch_size",
        "epochs",
        "image_size",
        "precision",
        "memory_format",
        "train_images",
        "test_images",
        "train_s",  # training time only: evaluations for the curve are excluded
        "fit_wall_s",
        "final_test_acc",
        "final_test_error_pct",
        "best_test_acc",
        "target_acc",
        "time_to_target_s",
        "reference_error_pct",
        "reference",
    ),
    "optimizers": (
        *COMMON_COLUMNS,
        "run",
        "label",
        "model",
        "dataset",
        "optimizer",
        "lr",
        "momentum",
        "weight_decay",
        "batch_size",
        "epochs",
        "steps",
        "final_train_loss",
        "final_test_acc",
        "train_s",
    ),
    "scaling": (
        *COMMON_COLUMNS,  # ``threads``: the run's thread count, split among the processes
        "model",
        "dataset",
        "strategy",  # "single device" (1 process) or "ddp"
        "processes",
        "threads_per_process",  # torch threads (OMP_NUM_THREADS) of each process
        "total_threads",
        "batch_size",  # per process, fixed at every process count (weak scaling)
        "global_batch_size",
        "images_per_epoch",  # all processes' images (the shards are padded to equal size)
        "epochs",
        "measured_epochs",
        *_stat_columns("epoch_s"),  # wall time on global rank 0, between barriers
        "ips",  # images_per_epoch / median epoch_s
        "ips_per_process",
        "baseline_ips",  # ips of 1 process at the same threads_per_process, same run
        "efficiency",  # ips / (processes * baseline_ips)
        "vs_one_process_all_threads",  # ips / ips of 1 process with all `threads`, same run
        "wall_s",  # the whole configuration: process start-up, data, every epoch
    ),
}


@dataclass
class BenchConfig:
    """Settings of one benchmark run; the defaults are the full run, see :meth:`quick`.

    Attributes:
        modes: Modes to run, a subset of :data:`MODES`.
        models: Registered model names for the throughput mode.
        backends: Backends to try (absent ones are skipped with a note).
        precisions: Precisions for the throughput grid.
        memory_formats: ``"contiguous"`` and/or ``"channels_last"``.
        compile: ``torch.compile`` settings to try: ``False`` (eager) and/or ``True``.
        compile_models: Shell wildcard: compiled configurations run only for these models.
        compile_scope: ``"all"`` compiles every precision and memory format; ``"base"``
            only the first precision with the first memory format; ``"PRECISION/FORMAT"``
            (``"bf16-mixed/channels_last"``) only that one.
        batch_size: Throughput batch size; ``None``: 128 for tiny models, else 32.
        max_image_size: Inputs larger than ``H = W`` of this shrink to it (not below a
            model's minimum), in every mode; ``None``: the sizes of the models, recipes and
            overhead settings.
        repeats: Timed repeats per measurement (median and spread are over these).
        warmup: Untimed warm-up steps (the first compiles, for ``torch.compile``).
        min_time: Seconds one timed repeat should last; sets the steps per repeat.
        threads: ``torch.set_num_threads`` for the run; ``None`` keeps PyTorch's choice.
        budget_s: Seconds after which no further task starts (those left are recorded as
            skipped); ``None``: no limit.
        seed: Seed of weights, data order and recipes.
        data_dir: Folder holding ``MNIST/raw`` etc.; ``None`` searches ``$CLASSIC_CNNS_DATA``,
            ``./data`` and ``../shared/data``.
        overhead: Settings of the Lightning-overhead comparison, each
            ``"model/dataset[:key=value...]"`` with keys ``size`` (H = W), ``batch``,
            ``precision`` and ``format`` (see :mod:`~classic_cnns.bench.overhead`).
        overhead_epochs: Epochs per fit; the first is warm-up and not measured.
        overhead_repeats: Fits per loop, interleaved.
        pipeline_dataset: Dataset of the data-pipeline comparison (``"mnist10k"``).
        pipeline_repeats: Epochs per pipeline, interleaved.
        recipes: Shell wildcards over ``"model/dataset"`` recipe names.
        time_to_accuracy: Recipe name -> test accuracy whose time-to-reach is reported.
        targets: Measured targets the report checks, as in ``benchmarks/targets.json``:
            dicts with ``text``, ``mode``, ``where`` (column values a row must have),
            ``column`` (one or a list) and ``min`` and/or ``max``.
        optimizer_recipe: The ``"model/dataset"`` recipe of the optimizer comparison.
        optimizer_epochs: Epochs per optimizer.
        scaling_model: Model of the DDP scaling measurement.
        scaling_dataset: ``"mnist10k"`` or ``"digits"``.
        scaling_processes: Process counts; ``None``: 1 and 2 on the CPU, 1 and every GPU
            on CUDA. A 1-process run is always added as the baseline.
        scaling_epochs: Epochs per configuration; the first is warm-up and not measured.
        scaling_batch_size: Batch per process, the same at every process count.
        scaling_timeout: Seconds after which a DDP worker is killed.
        limit_train_batches: Cap on training batches per epoch, for the data pipeline and
            the accuracy evaluations too (smoke tests); ``None``: all.
        max_epochs: Cap on every recipe's epochs (smoke tests); ``None``: the recipe's.
        plots: Write PNG plots (needs matplotlib, the ``plot`` extra).
        progress: Show a progress bar.

    Example:
        >>> from classic_cnns.bench import BenchConfig
        >>> cfg = BenchConfig.quick()
        >>> cfg.models, cfg.repeats
        (['lenet5', 'resnet18'], 3)
    """

    modes: list[str] = field(default_factory=lambda: list(MODES))
    models: list[str] = field(
        default_factory=lambda: [
            "lenet5",
            "resnet20",
            "nin",
            "densenet_bc_100",
            "alexnet",
            "resnet18",
            "googlenet",
            "densenet121",
        ]
    )
    backends: list[str] = field(default_factory=lambda: list(BACKENDS))
    precisions: list[str] = field(default_factory=lambda: list(PRECISIONS))
    memory_formats: list[str] = field(default_factory=lambda: list(MEMORY_FORMATS))
    compile: list[bool] = field(default_factory=lambda: [False, True])
    compile_models: str = "*"
    compile_scope: str = "all"
    batch_size: int | None = None
    max_image_size: int | None = None
    repeats: int = 5
    warmup: int = 3
    min_time: float = 1.0
    threads: int | None = None
    budget_s: float | None = None
    seed: int = 0
    data_dir: Path | None = None
    overhead: list[str] = field(default_factory=lambda: ["lenet5/mnist10k"])
    overhead_epochs: int = 4
    overhead_repeats: int = 3
    pipeline_dataset: str = "mnist10k"
    pipeline_repeats: int = 5
    recipes: list[str] = field(default_factory=lambda: ["*"])
    time_to_accuracy: dict[str, float] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    optimizer_recipe: str = "lenet5/mnist10k"
    optimizer_epochs: int = 5
    scaling_model: str = "lenet5"
    scaling_dataset: str = "mnist10k"
    scaling_processes: list[int] | None = None
    scaling_epochs: int = 4
    scaling_batch_size: int = 128
    scaling_timeout: float = 1200.0
    limit_train_batches: int | None = None
    max_epochs: int | None = None
    plots: bool = True
    progress: bool = True

    @classmethod
    def quick(cls, **overrides: Any) -> BenchConfig:
        """The ``--quick`` settings: every mode, small grids, under 5 minutes on 2 CPU cores.

        Example:
            >>> from classic_cnns.bench import BenchConfig
            >>> BenchConfig.quick(repeats=2).repeats
            2
        """
        settings: dict[str, Any] = dict(
            models=["lenet5", "resnet18"],
            precisions=["fp32", "bf16-mixed", "fp16-mixed"],
            compile_models="lenet5",
            compile_scope="base",
            max_image_size=32,
            repeats=3,
            warmup=2,
            min_time=0.3,
            overhead_epochs=2,
            overhead_repeats=2,
            pipeline_repeats=3,
            recipes=["lenet5/digits", "lenet5/mnist10k"],
            optimizer_recipe="lenet5/digits",
            optimizer_epochs=5,
            scaling_dataset="digits",
            scaling_epochs=3,
            scaling_timeout=300.0,
        )
        settings.update(overrides)
        return cls(**settings)

    def wants_compile(self, model: str, precision: str, memory_format: str) -> bool:
        """Whether the compiled form of this throughput configuration is in the grid.

        Example:
            >>> from classic_cnns.bench import BenchConfig
            >>> BenchConfig.quick().wants_compile("resnet18", "fp32", "contiguous")
            False
        """
        if True not in self.compile or not fnmatch.fnmatchcase(model, self.compile_models):
            return False
        if self.compile_scope == "all":
            return True
        if self.compile_scope == "base":
            return precision == self.precisions[0] and memory_format == self.memory_formats[0]
        return self.compile_scope == f"{precision}/{memory_format}"


@dataclass
class Task:
    """One unit of work under the progress bar: a label and a function filling :class:`Results`.

    Attributes:
        label: What the progress bar shows.
        run: Measures and adds rows to the :class:`Results` it is given.
        mode: The mode whose row records a failure of ``run``.
        backend: The backend of that row.
        fields: Columns that identify the configuration in that row (``model``, ...).

    Example:
        >>> from classic_cnns.bench import Task
        >>> Task("noop", lambda results: None, "pipeline").label
        'noop'
    """

    label: str
    run: Callable[[Results], None]
    mode: str
    backend: str = "cpu"
    fields: dict[str, Any] = field(default_factory=dict)


def backend_tasks(
    cfg: BenchConfig,
    mode: str,
    what: str,
    run: Callable[[BenchConfig, Results, str], None],
    **fields: Any,
) -> list[Task]:
    """One task of ``mode`` per selected backend, each calling ``run(cfg, results, backend)``.

    ``what`` goes into the label, ``fields`` into the row that records a failure.

    Example:
        >>> from classic_cnns.bench import BenchConfig
        >>> from classic_cnns.bench._common import backend_tasks
        >>> cfg = BenchConfig(backends=["cpu", "cuda"])
        >>> [t.label for t in backend_tasks(cfg, "scaling", "lenet5 digits", print)]
        ['scaling lenet5 digits cpu', 'scaling lenet5 digits cuda']
    """
    tasks = []
    for backend in cfg.backends:

        def task(results: Results, backend: str = backend) -> None:
            run(cfg, results, backend)

        tasks.append(Task(f"{mode} {what} {backend}", task, mode, backend, dict(fields)))
    return tasks


@dataclass
class Results:
    """Everything one run measured: rows per mode, curves, confusion matrices and notes.

    Example:
        >>> from classic_cnns.bench import BenchConfig, Results
        >>> results = Results(BenchConfig.quick())
        >>> row = results.add("pipeline", "cpu", status="skipped", note="no data")
        >>> row["mode"], len(row) == len(MODE_COLUMNS["pipeline"])
        ('pipeline', True)
    """

    config: BenchConfig
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # kind ("accuracy", "optimizers") -> run name -> list of curve points.
    curves: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    # run name -> {"matrix": [[...]], "classes": [...], "dataset": ..., "accuracy": ...}
    confusion: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # "backend/math" (math: fp32, tf32, bf16, fp16) -> the best FLOP/s of large matmuls in
    # that math mode measured in this run (the MFU denominators).
    matmul_peaks: dict[str, float] = field(default_factory=dict)
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    wall_s: float | None = None
    # task label -> wall seconds it took (where the run's time went).
    task_s: dict[str, float] = field(default_factory=dict)

    def add(self, mode: str, backend: str, **values: Any) -> dict[str, Any]:
        """Append a row of ``mode``: the environment of ``backend`` plus ``values``.

        Unknown keys raise, missing ones are ``None``, so every row has every column.
        """
        columns = MODE_COLUMNS[mode]
        unknown = set(values) - set(columns)
        if unknown:
            raise KeyError(f"{mode} rows have no column(s) {sorted(unknown)}")
        row: dict[str, Any] = dict.fromkeys(columns)
        row.update(environment(backend))
        row.update(mode=mode, status="ok", seed=self.config.seed)
        row.update(values)
        self.rows.setdefault(mode, []).append(row)
        return row

    def note(self, text: str) -> None:
        """Record a note for the report (skips, caveats), once."""
        if text not in self.notes:
            self.notes.append(text)


# --------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(backend: str) -> str:
    """A readable name of the device a backend runs on.

    Example:
        >>> from classic_cnns.bench._common import device_name
        >>> isinstance(device_name("cpu"), str)
        True
    """
    if backend == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name()
    if backend == "mps":
        return f"Apple MPS ({platform.machine()})"
    return f"{_cpu_name()} ({os.cpu_count()} logical CPUs)"


def environment(backend: str = "cpu") -> dict[str, Any]:
    """Where and with what a row was measured (the :data:`COMMON_COLUMNS` it fills).

    Example:
        >>> from classic_cnns.bench import environment
        >>> env = environment("cpu")
        >>> env["threads"] >= 1 and env["backend"] == "cpu"
        True
    """
    import lightning
    import torchvision

    try:
        load: float | None = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on Windows
        load = None
    return {
        "backend": backend,
        "device_name": device_name(backend),
        "threads": torch.get_num_threads(),
        "load_1m": load,
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "lightning": lightning.__version__,
    }


def backend_unavailable(backend: str) -> str | None:
    """Why ``backend`` cannot run here, or ``None`` if it can.

    Example:
        >>> from classic_cnns.bench import backend_unavailable
        >>> backend_unavailable("cpu") is None
        True
    """
    if backend == "cpu":
        return None
    if backend == "cuda":
        return None if torch.cuda.is_available() else "no CUDA device (torch.cuda.is_available())"
    if backend == "mps":
        mps = getattr(torch.backends, "mps", None)
        ok = mps is not None and mps.is_available()
        return None if ok else "no Apple MPS device (torch.backends.mps.is_available())"
    return f"unknown backend {backend!r}; expected one of {BACKENDS}"


def precision_unsupported(backend: str, precision: str) -> str | None:
    """Why ``precision`` is not benchmarked on ``backend``, or ``None`` if it is.

    fp16-mixed is a CUDA recipe (with a gradient scaler); CPUs have no fast fp16 path.

    Example:
        >>> from classic_cnns.bench import precision_unsupported
        >>> precision_unsupported("cpu", "fp16-mixed")
        'fp16-mixed runs on CUDA only'
    """
    if precision not in PRECISIONS:
        return f"unknown precision {precision!r}; expected one of {PRECISIONS}"
    if precision == "fp16-mixed" and backend != "cuda":
        return "fp16-mixed runs on CUDA only"
    if precision == "bf16-mixed" and backend == "cuda" and not torch.cuda.is_bf16_supported():
        return "this CUDA device has no bf16 support"
    return None


def autocast(backend: str, precision: str) -> contextlib.AbstractContextManager[Any]:
    """The autocast context of a precision (``fp32``: none).

    Example:
        >>> import torch
        >>> from classic_cnns.bench import autocast
        >>> with autocast("cpu", "bf16-mixed"):
        ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        torch.bfloat16
    """
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16-mixed" else torch.float16
    return torch.autocast(device_type=backend, dtype=dtype)


def to_memory_format(name: str) -> torch.memory_format:
    """The ``torch.memory_format`` of a :data:`MEMORY_FORMATS` name.

    Example:
        >>> from classic_cnns.bench._common import to_memory_format
        >>> to_memory_format("channels_last")
        torch.channels_last
    """
    if name not in MEMORY_FORMATS:
        raise ValueError(f"unknown memory format {name!r}; expected one of {MEMORY_FORMATS}")
    return torch.channels_last if name == "channels_last" else torch.contiguous_format


def synchronize(backend: str) -> None:
    """Wait for queued device work, so wall-clock timings cover it (CPU: nothing to do).

    Example:
        >>> from classic_cnns.bench import synchronize
        >>> synchronize("cpu")
    """
    if backend == "cuda":
        torch.cuda.synchronize()
    elif backend == "mps":
        torch.mps.synchronize()


def set_threads(threads: int | None) -> None:
    """Apply ``--threads`` (``None`` keeps PyTorch's default)."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1; got {threads}")
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------
# Statistics and timing
# --------------------------------------------------------------------------------------


def _percentile(ordered: Sequence[float], q: float) -> float:
    # Linear interpolation between closest ranks (numpy's default "linear" method).
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def spread(prefix: str, values: Sequence[float]) -> dict[str, float | None]:
    """Median, quartiles, min and max of ``values`` as ``{prefix}_median`` ... columns.

    Example:
        >>> from classic_cnns.bench import spread
        >>> spread("ips", [1.0, 2.0, 4.0])["ips_median"]
        2.0
    """
    names = [f"{prefix}_{s}" for s in ("median", "q1", "q3", "min", "max")]
    if not values:
        return dict.fromkeys(names)
    ordered = sorted(values)
    stats = (
        statistics.median(ordered),
        _percentile(ordered, 0.25),
        _percentile(ordered, 0.75),
        ordered[0],
        ordered[-1],
    )
    return dict(zip(names, stats, strict=True))


def timed(fn: Callable[[], Any], steps: int, backend: str) -> float:
    """Seconds for ``steps`` calls of ``fn``, synchronised before and after on the device.

    Example:
        >>> from classic_cnns.bench._common import timed
        >>> timed(lambda: None, 3, "cpu") >= 0
        True
    """
    synchronize(backend)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    synchronize(backend)
    return time.perf_counter() - start


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or ``None`` when either is missing or zero."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


# --------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------

_LIBC: Any = None


def release_memory(backend: str = "cpu") -> None:
    """Collect garbage and hand freed memory back to the OS / device allocator.

    On glibc, ``malloc_trim`` returns freed heap pages, so a later resident-set reading
    shows what is live rather than what the allocator kept.
    """
    global _LIBC
    gc.collect()
    if backend == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
    if _LIBC is None:
        name = ctypes.util.find_library("c")
        try:
            _LIBC = ctypes.CDLL(name) if name else False
        except OSError:
            _LIBC = False
    if _LIBC and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class PeakMemory:
    """Peak memory above a baseline, for CUDA (allocator statistics) or the CPU (sampled RSS).

    Take the baseline with :meth:`baseline` before building a model; wrap steps in
    ``with meter:``; :attr:`peak_mb` is then the most memory in use during the wrapped
    steps above that baseline. On the CPU it is the process's resident set sampled
    every millisecond by a thread (Linux ``/proc``), so it is approximate and never used
    while timing. Elsewhere :attr:`peak_mb` stays ``None``.

    Example:
        >>> import torch
        >>> from classic_cnns.bench import PeakMemory
        >>> meter = PeakMemory("cpu")
        >>> meter.baseline()
        >>> with meter:
        ...     x = torch.ones(1 << 20)
        >>> meter.peak_mb is None or meter.peak_mb >= 0
        True
    """

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.base: int | None = None
        self.peak_mb: float | None = None
        self._stop = threading.Event()
        self._peak = 0
        self._thread: threading.Thread | None = None

    @property
    def kind(self) -> str:
        """What the number measures, for the ``mem_kind`` column."""
        if self.backend == "cuda":
            return "cuda max_memory_allocated above baseline"
        if self.backend == "cpu" and _rss_bytes() is not None:
            return "process RSS peak above baseline (sampled, approximate)"
        return "not measured"

    def _now(self) -> int | None:
        if self.backend == "cuda":
            return int(torch.cuda.memory_allocated())
        if self.backend == "cpu":
            return _rss_bytes()
        return None

    def baseline(self) -> None:
        """Record the memory in use now (after releasing what is free) as the zero point."""
        release_memory(self.backend)
        self.base = self._now()

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            now = _rss_bytes()
            if now is not None and now > self._peak:
                self._peak = now

    def __enter__(self) -> PeakMemory:
        if self.base is None:
            self.baseline()
        self._peak = self._now() or 0
        if self.backend == "cuda":
            torch.cuda.reset_peak_memory_stats()
        elif self.backend == "cpu" and self.base is not None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        synchronize(self.backend)
        if self.backend == "cuda":
            self._peak = int(torch.cuda.max_memory_allocated())
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self._peak = max(self._peak, _rss_bytes() or 0)
        if self.base is not None and self.backend in ("cpu", "cuda"):
            # Keep the largest reading over several ``with`` blocks.
            peak = max(0.0, (self._peak - self.base) / 2**20)
            self.peak_mb = peak if self.peak_mb is None else max(self.peak_mb, peak)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed Python, NumPy and PyTorch for what runs inside (weights, data order).

    Example:
        >>> import torch
        >>> from classic_cnns.bench._common import seeded
        >>> with seeded(0):
        ...     a = torch.rand(1)
        >>> with seeded(0):
        ...     bool(torch.rand(1) == a)
        True
    """
    import lightning

    lightning.seed_everything(seed, verbose=False)
    yield


def matches(name: str, patterns: Sequence[str]) -> bool:
    """Whether ``name`` matches any of the shell wildcards in ``patterns``.

    Example:
        >>> from classic_cnns.bench._common import matches
        >>> matches("lenet5/digits", ["lenet5/*"])
        True
    """
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)
