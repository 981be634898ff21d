"""DDP scaling: training images/s at 1 and N processes, and the scaling efficiency.

The package's LightningModule (LeNet-5 by default) trains on the in-memory datamodule
(MNIST-10k by default) with the same seed, optimizer and schedule at every process count;
the datamodule shards the training batches itself under DDP (padded, equal shards, as
``DistributedSampler`` does). The batch size per process is fixed (weak scaling): with
``n`` processes an epoch is ``n`` times fewer steps of an ``n`` times larger global batch.

* 1 process: a plain single-device ``Trainer`` (no DDP wrapper) in the benchmark
  process, the baseline a user would otherwise run;
* ``n > 1`` processes: ``Trainer(strategy="ddp", devices=n)`` in a worker process tree,
  ``python -m classic_cnns.bench.scaling --worker SPEC``, which Lightning extends to ``n``
  processes by running the same command again (gloo on the CPU, NCCL on CUDA). The worker
  starts in a session of its own; the whole process group is killed when it ends, fails
  or runs past ``scaling_timeout``, so no process is left behind. Global rank 0 writes its
  epoch times to a JSON file in a temporary folder.

Each process gets ``threads // n`` torch threads on the CPU (``OMP_NUM_THREADS`` and
``torch.set_num_threads``), ``threads`` being the run's thread count (``--threads``, else
PyTorch's default). Epoch times are wall times on global rank 0 between barriers (and
device synchronisation), so they cover the slowest process; the first epoch is warm-up.
Images/s counts every process's images (gathered at the end of the fit).

Two ratios, both from numbers of the same run:

* ``efficiency = ips(n) / (n × ips(1))``, with the 1-process run at the same threads per
  process: how well DDP scales when every process brings its own cores (or GPU);
* ``vs_one_process_all_threads = ips(n) / ips(1 process, all threads)``: what splitting a
  fixed set of CPU threads among processes gains, the honest figure on one CPU.

Example:
    >>> from classic_cnns.bench import BenchConfig
    >>> from classic_cnns.bench.scaling import configurations, plan
    >>> [t.label for t in plan(BenchConfig.quick(backends=["cpu"]))]
    ['scaling lenet5 digits cpu']
    >>> configurations([1, 2], 4)
    [(1, 4), (1, 2), (2, 2)]
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch

from classic_cnns.bench._common import (
    BenchConfig,
    Results,
    Task,
    backend_tasks,
    backend_unavailable,
    ratio,
    seeded,
    spread,
    synchronize,
)
from classic_cnns.bench._data import DataUnavailable, make_datamodule, resolve_data_dir

__all__ = ["Spec", "configurations", "fit_once", "plan", "processes_for", "run"]

# Variables that would make the worker believe it is already one rank of a launched job.
_DIST_ENV = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "NODE_RANK",
    "LOCAL_RANK",
    "GLOBAL_RANK",
    "RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "GROUP_RANK",
)


class WorkerFailed(RuntimeError):
    """A DDP worker exited with an error, wrote no result or ran past its time limit."""


@dataclass
class Spec:
    """One training run of the scaling mode; JSON-serialisable, passed to the worker.

    Attributes:
        backend: ``"cpu"`` or ``"cuda"``.
        model: Registered model name.
        dataset: ``"mnist10k"`` or ``"digits"``.
        data_dir: Folder holding ``MNIST/raw``.
        batch_size: Batch per process.
        epochs: Epochs of the fit; the first is warm-up.
        processes: Processes (devices); 1 runs without DDP.
        threads: Torch threads per process.
        seed: Seed of weights and data order.
        limit: Training batches per epoch and process; ``None``: all.
        root: A folder for the worker's result, log and Lightning's root dir.
    """

    backend: str
    model: str
    dataset: str
    data_dir: str
    batch_size: int
    epochs: int
    processes: int
    threads: int
    seed: int
    limit: int | None
    root: str


class _EpochClock(L.Callback):
    """Epoch wall times between barriers (so they cover every rank) and images per epoch."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.seconds: list[float] = []
        self.local_images: list[int] = []
        self.global_images: list[int] = []
        self._start = 0.0
        self._count = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        synchronize(self.backend)
        trainer.strategy.barrier("scaling_epoch_start")
        self._count = 0
        self._start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        self._count += len(batch[0])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        synchronize(self.backend)
        trainer.strategy.barrier("scaling_epoch_end")
        self.seconds.append(time.perf_counter() - self._start)
        self.local_images.append(self._count)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        counts = torch.tensor(self.local_images, dtype=torch.long, device=pl_module.device)
        total = trainer.strategy.reduce(counts, reduce_op="sum")
        self.global_images = [int(v) for v in total.tolist()]


def fit_once(spec: Spec) -> dict[str, Any] | None:
    """Train once as ``spec`` says; on global rank 0 return what was measured, else ``None``.

    Under DDP every rank calls this (Lightning runs the worker's command once per rank).

    Example:
        >>> import tempfile
        >>> from classic_cnns.bench.scaling import Spec, fit_once
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     out = fit_once(Spec("cpu", "lenet5", "digits", "data", 128, 2, 1, 1, 0, 2, tmp))
        >>> out["world_size"], out["images"]
        (1, [256, 256])
    """
    from classic_cnns.bench.overhead import _HPARAMS, TRAINER_FLAGS
    from classic_cnns.models import family_class
    from classic_cnns.registry import model_info

    info = model_info(spec.model)
    dm = make_datamodule(
        spec.dataset,
        Path(spec.data_dir),
        batch_size=spec.batch_size,
        seed=spec.seed,
        image_size=info.input_size[1:],
    )
    with seeded(spec.seed):  # the same weights and data order at every process count
        model = family_class(info.family)(
            arch=spec.model, num_classes=dm.num_classes, in_channels=dm.in_channels, **_HPARAMS
        )
    clock = _EpochClock(spec.backend)
    distributed: dict[str, Any] = {}
    if spec.processes > 1:
        from lightning.fabric.plugins.environments import LightningEnvironment

        # Lightning launches the other ranks itself, even inside SLURM or torchrun.
        distributed = dict(strategy="ddp", plugins=[LightningEnvironment()])
    trainer = L.Trainer(
        accelerator=spec.backend,
        devices=spec.processes,
        max_epochs=spec.epochs,
        limit_train_batches=spec.limit if spec.limit is not None else 1.0,
        limit_val_batches=0,
        default_root_dir=spec.root,
        callbacks=[clock],
        **distributed,
        **TRAINER_FLAGS,
    )
    trainer.fit(model, datamodule=dm)
    for proc in getattr(trainer.strategy.launcher, "procs", []):
        proc.wait(timeout=300)  # rank 0 returns after the ranks it started have ended
    if not trainer.is_global_zero:
        return None
    return dict(
        epoch_s=clock.seconds,
        images=clock.global_images,
        world_size=trainer.world_size,
        threads=torch.get_num_threads(),
        batch_size=dm.batch_size,
    )


# --------------------------------------------------------------------------------------
# Running the worker
# --------------------------------------------------------------------------------------


def _exited(proc: subprocess.Popen[bytes], deadline: float) -> bool:
    """Wait until ``proc`` exits or ``deadline``, leaving it unreaped (its id stays taken)."""
    waitid = getattr(os, "waitid", None)
    while time.monotonic() < deadline:
        if waitid is None:
            if proc.poll() is not None:
                return True
        elif waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
            return True
        time.sleep(0.1)
    return False


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the worker's process group (every rank) and reap the worker."""
    if hasattr(os, "killpg"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the worker leads its own session
    elif proc.poll() is None:
        proc.kill()
    proc.wait()


def _last_error(log: Path) -> str:
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    errors = [ln for ln in lines if "Error" in ln.split(":", 1)[0] or ln.startswith("Killed")]
    return (errors or lines or ["no output"])[-1][:300]


def _worker_env(threads: int) -> dict[str, str]:
    import classic_cnns

    env = {k: v for k, v in os.environ.items() if k not in _DIST_ENV}
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    # The worker imports this very package, wherever it was imported from.
    src = str(Path(classic_cnns.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def launch(spec: Spec, timeout: float) -> dict[str, Any]:
    """Run ``spec`` in a DDP worker process tree; return rank 0's measurements.

    Raises:
        WorkerFailed: when the worker fails, writes no result or runs past ``timeout``.
    """
    root = Path(spec.root)
    log, result = root / "worker.log", root / "result.json"
    command = [sys.executable, "-m", "classic_cnns.bench.scaling", "--worker"]
    command.append(json.dumps(asdict(spec)))
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=root,
            env=_worker_env(spec.threads),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=hasattr(os, "killpg"),
        )
        try:
            finished = _exited(proc, time.monotonic() + timeout)
        finally:
            _kill_group(proc)  # also on Ctrl-C: no rank survives the benchmark
    if not finished:
        raise WorkerFailed(f"{spec.processes}-process worker ran past {timeout:.0f} s; killed")
    if proc.returncode != 0 or not result.is_file():
        raise WorkerFailed(f"worker exited with {proc.returncode}: {_last_error(log)}")
    measured: dict[str, Any] = json.loads(result.read_text())
    return measured


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _measure(spec: Spec, timeout: float) -> dict[str, Any]:
    start = time.perf_counter()
    if spec.processes == 1:
        with _torch_threads(spec.threads):
            measured = fit_once(spec)
        assert measured is not None  # one process is rank 0
    else:
        measured = launch(spec, timeout)
    measured["wall_s"] = time.perf_counter() - start
    return measured


# --------------------------------------------------------------------------------------
# Plan and rows
# --------------------------------------------------------------------------------------


def processes_for(cfg: BenchConfig, backend: str) -> list[int]:
    """The process counts of a backend: ``scaling_processes``, else 1,2 (CPU) or 1,N (CUDA).

    Example:
        >>> from classic_cnns.bench import BenchConfig
        >>> from classic_cnns.bench.scaling import processes_for
        >>> processes_for(BenchConfig(), "cpu")
        [1, 2]
        >>> processes_for(BenchConfig(scaling_processes=[4, 1]), "cpu")
        [1, 4]
    """
    if cfg.scaling_processes:
        counts = list(cfg.scaling_processes)
    elif backend == "cuda":
        counts = [1, max(1, torch.cuda.device_count())]
    else:
        counts = [1, 2]
    return sorted(set(counts))


def configurations(processes: Sequence[int], threads: int) -> list[tuple[int, int]]:
    """``(processes, threads per process)`` to run, in order, each once.

    One process with all ``threads`` first, then for every ``n``: one process and ``n``
    processes with ``threads // n`` threads each (at least 1), the pair whose ratio is
    the efficiency.

    Example:
        >>> from classic_cnns.bench.scaling import configurations
        >>> configurations([1, 2], 2), configurations([1, 2], 1)
        ([(1, 2), (1, 1), (2, 1)], [(1, 1), (2, 1)])
    """
    configs = [(1, threads)]
    for n in sorted(set(processes)):
        per = max(1, threads // n)
        configs += [(1, per), (n, per)]
    return list(dict.fromkeys(configs))


def _notes(backend: str, n: int, t: int, threads: int) -> list[str]:
    notes = []
    if backend == "cpu" and n * t > threads:
        notes.append(f"oversubscribed: {n} × {t} threads > {threads}")
    cpus = os.cpu_count() or 1
    if backend == "cpu" and n > cpus:
        notes.append(f"more processes than the {cpus} logical CPUs")
    return notes


def run(cfg: BenchConfig, results: Results, backend: str) -> None:
    """Train at every process count of ``backend``; add one row per configuration.

    Example:
        >>> from classic_cnns.bench import BenchConfig, Results
        >>> from classic_cnns.bench.scaling import run
        >>> cfg = BenchConfig(scaling_dataset="digits", scaling_epochs=2, scaling_processes=[1],
        ...                   limit_train_batches=2)
        >>> results = Results(cfg)
        >>> run(cfg, results, "cpu")
        >>> [(r["processes"], r["images_per_epoch"], r["efficiency"])
        ...  for r in results.rows["scaling"]][0]
        (1, 256, 1.0)
    """
    name, dataset = cfg.scaling_model, cfg.scaling_dataset
    base: dict[str, Any] = dict(model=name, dataset=dataset, batch_size=cfg.scaling_batch_size)
    reason = "DDP does not run on Apple MPS" if backend == "mps" else backend_unavailable(backend)
    if reason is None and cfg.scaling_epochs < 2:
        reason = "scaling_epochs must be >= 2 (the first epoch is warm-up)"
    data_dir = resolve_data_dir(cfg.data_dir)
    if reason is None:
        try:  # the same check as the workers' datamodule, before starting any process
            make_datamodule(dataset, data_dir, batch_size=cfg.scaling_batch_size, seed=cfg.seed)
        except DataUnavailable as err:
            reason = str(err)
    if reason is not None:
        results.note(f"scaling {name}/{dataset} on {backend}: skipped, {reason}")
        results.add("scaling", backend, status="skipped", note=reason, **base)
        return
    threads = torch.get_num_threads()
    counts = processes_for(cfg, backend)
    if backend == "cuda" and max(counts) > torch.cuda.device_count():
        too_many = [n for n in counts if n > torch.cuda.device_count()]
        note = f"only {torch.cuda.device_count()} CUDA device(s)"
        for n in too_many:
            results.add("scaling", backend, status="skipped", note=note, processes=n, **base)
        counts = [n for n in counts if n not in too_many]
    if counts == [1]:
        results.note(f"scaling on {backend}: one process only, nothing to scale")
    measured: dict[tuple[int, int], dict[str, Any]] = {}
    failures: dict[tuple[int, int], str] = {}
    for n, t in configurations(counts, threads):
        with tempfile.TemporaryDirectory(prefix="classic-cnns-scaling-") as tmp:
            spec = Spec(
                backend=backend,
                model=name,
                dataset=dataset,
                data_dir=str(data_dir.resolve()),
                batch_size=cfg.scaling_batch_size,
                epochs=cfg.scaling_epochs,
                processes=n,
                threads=t,
                seed=cfg.seed,
                limit=cfg.limit_train_batches,
                root=tmp,
            )
            try:
                measured[(n, t)] = _measure(spec, cfg.scaling_timeout)
            except Exception as err:  # one process count failing must not lose the others
                failures[(n, t)] = f"{type(err).__name__}: {err}".splitlines()[0][:300]

    def ips_of(m: dict[str, Any]) -> tuple[float | None, dict[str, float | None], int]:
        stats = spread("epoch_s", m["epoch_s"][1:])  # the first epoch is warm-up
        images = m["images"][-1]
        return ratio(images, stats["epoch_s_median"]), stats, images

    ips = {key: ips_of(m)[0] for key, m in measured.items()}
    for n, t in configurations(counts, threads):
        fields: dict[str, Any] = dict(
            **base,
            strategy="ddp" if n > 1 else "single device",
            processes=n,
            threads_per_process=t,
            total_threads=n * t,
            global_batch_size=n * cfg.scaling_batch_size,
            epochs=cfg.scaling_epochs,
        )
        notes = _notes(backend, n, t, threads)
        if (n, t) in failures:
            results.note(f"scaling {name} {backend} {n} process(es): failed, {failures[(n, t)]}")
            note = "; ".join([failures[(n, t)], *notes])
            results.add("scaling", backend, status="failed", note=note, **fields)
            continue
        m = measured[(n, t)]
        value, stats, images = ips_of(m)
        baseline = ips.get((1, t))
        if t != threads and n == 1:
            notes.append(f"baseline of the efficiency at {t} thread(s) per process")
        results.add(
            "scaling",
            backend,
            note="; ".join(notes) or None,
            **fields,
            images_per_epoch=images,
            measured_epochs=len(m["epoch_s"]) - 1,
            **stats,
            ips=value,
            ips_per_process=ratio(value, n),
            baseline_ips=baseline,
            efficiency=ratio(value, None if baseline is None else n * baseline),
            vs_one_process_all_threads=ratio(value, ips.get((1, threads))),
            wall_s=m["wall_s"],
        )


def plan(cfg: BenchConfig) -> list[Task]:
    """One scaling task per selected backend."""
    model, dataset = cfg.scaling_model, cfg.scaling_dataset
    return backend_tasks(cfg, "scaling", f"{model} {dataset}", run, model=model, dataset=dataset)


# --------------------------------------------------------------------------------------
# Worker entry point: python -m classic_cnns.bench.scaling --worker SPEC
# --------------------------------------------------------------------------------------


def _worker(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "--worker":
        print("usage: python -m classic_cnns.bench.scaling --worker SPEC_JSON", file=sys.stderr)
        return 2
    from classic_cnns.bench.cli import _quiet

    spec = Spec(**json.loads(argv[1]))
    torch.set_num_threads(spec.threads)
    with _quiet():
        measured = fit_once(spec)
    if measured is not None:  # global rank 0
        path = Path(spec.root) / "result.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(measured))
        tmp.replace(path)
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
