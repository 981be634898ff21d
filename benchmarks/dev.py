"""The developer measurements: what the project checks itself against, not what users run.

``python benchmarks/dev.py COMMAND --help`` lists the flags of ``overhead`` (Lightning against a
hand-written loop), ``scaling`` (DDP), ``pipeline`` (the datamodule against torchvision's),
``memory`` (DenseNet's ``memory_efficient``) and ``targets`` (ours, against the runs). The
measuring ones write their ``--out`` folder as ``classic-cnns bench`` does; ``--data_dir``
defaults to ``$CLASSIC_CNNS_DATA``, else ``./data``.
"""

from __future__ import annotations

import itertools
import json
import math
import multiprocessing
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

import lightning as L
import torch
import torch.nn.functional as F
from jsonargparse import CLI
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from classic_cnns.bench import core, throughput
from classic_cnns.bench.accuracy import DATASETS, make_datamodule
from classic_cnns.hub import create_model
from classic_cnns.optim import make_scheduler
from classic_cnns.registry import list_models, model_info


def _execute(command: Callable[..., int], tasks: list[core.Task], columns: str, out: Path,
             settings: dict[str, Any], threads: int | None, force: bool) -> int:  # fmt: skip
    """The report: the command's description, then the rows' `columns` (medians, quartiles)."""
    mode, text = command.__name__, " ".join((command.__doc__ or "").split("Args:")[0].split())

    def report(results: core.Results, _: Path | None) -> list[str]:
        rows = [[core.quartiles(r, c[:-7]) if c.endswith("_median") else r.get(c)
                 for c in columns.split()] for r in results.rows.get(mode, [])]  # fmt: skip
        return [f"## {mode}", "", text, "", *core.table(columns.split(), rows)]

    argv = shlex.join(["benchmarks/dev.py", *sys.argv[1:]])
    return core.execute(tasks, [report], out, argv, settings, force, threads=threads)


@dataclass(frozen=True)
class Setting:
    """An overhead or scaling configuration (``image_size`` ``None``: the model's own)."""

    model: str = "lenet5"
    dataset: str = "mnist10k"
    image_size: int | None = None
    batch_size: int = 128
    precision: core.Precision = "fp32"
    channels_last: bool = False

    def datamodule(self, data_dir: Path | None) -> Any:  # as in `fit`: the split's seed is 0
        size = core.image_size(self.model, self.image_size)
        return make_datamodule(self.dataset, data_dir, self.batch_size, image_size=size)

    def task(self, dm: Any, **kwargs: Any) -> Any:  # one optimizer for every loop and run
        return create_model(self.model, num_classes=dm.num_classes, in_channels=dm.in_channels,
                            optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4,
                            channels_last=self.channels_last, **kwargs)  # fmt: skip


LENET = Setting()
TARGETS = Path(__file__).with_name("targets.json")
LOOPS = ("network", "handwritten", "lightning", "lightning_bare")
PipelineDataset = Literal["mnist10k", "mnist", "fashion_mnist", "digits"]  # 1 channel, PIL


def _refused(command: Callable[..., int], values: dict[str, Any], *settings: Setting,
             seed: int = 0, datasets: tuple[str, ...] = DATASETS, **minimums: float
             ) -> bool:  # fmt: skip
    """Checked before any work: too few epochs or repeats leave nothing to measure; a dataset,
    model or seed that cannot be run would end as a failed row."""
    try:
        if values.get("processes", 2) is None:  # scaling's empty list: only the 1-process run
            raise ValueError("--processes must list at least one process count, each >= 2; got []")
        required = [k for k, t in get_type_hints(command).items() if type(None) not in get_args(t)]
        core.check_minimums("--", values, required=required, **minimums)  # None if typed so
        core.check_seed(seed, "--")
        for s in settings:
            if s.dataset not in datasets:
                raise ValueError(f"dataset must be one of {list(datasets)}; got {s.dataset!r}")
            model_info(s.model)  # an unknown name: close names suggested
    except ValueError as err:
        print(f"benchmarks/dev.py {command.__name__}: {err}", file=sys.stderr)
        return True
    return False


def _handwritten(model: Any, dm: Any, precision: str, fmt: torch.memory_format, epochs: int,
                 limit: int | None, clock: core.Clock, network_only: bool) -> None:  # fmt: skip
    """The task's optimizer (the model has scheduler="none") and one-cycle schedule, written
    out, calling the clock's hooks. `network_only`: every step on one batch, ready."""
    backend, loader = clock.backend, dm.train_dataloader()
    net = model.net.to(backend).to(memory_format=fmt).train()  # as the task's channels_last
    steps = min(limit or len(loader), len(loader))
    sched = make_scheduler("onecycle", opt := model.configure_optimizers(), epochs * steps)
    scaler = torch.amp.GradScaler(backend, enabled=precision == "fp16-mixed")

    def ready(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = (t.to(backend) for t in batch)
        return dm.transform(x).contiguous(memory_format=fmt), y

    first = ready(next(iter(loader))) if network_only else None
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)  # as the Trainer does: a new order every epoch
        clock.on_train_epoch_start()
        for batch in itertools.repeat(first, steps) if first else itertools.islice(loader, steps):
            x, y = first or ready(batch)
            with core.autocast(backend, precision):
                loss = throughput.plain_loss(net(x), y)  # GoogLeNet: its auxiliary heads too
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            clock.on_train_batch_end(None, None, None, (x, y), 0)
        clock.on_train_epoch_end()


def loss_only(model: Any, channels_last: bool) -> None:
    """Make ``model`` (the package's task) train with a step that only computes the loss, as
    `lightning_bare`: no checks, metrics or logging, and nothing at the epoch's end."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def step(batch: Any, batch_idx: int) -> Any:
        return throughput.plain_loss(model.net(batch[0].contiguous(memory_format=fmt)), batch[1])

    model.training_step, model.on_train_epoch_end = step, lambda: None


def _overhead(s: Setting, backend: str, epochs: int, repeats: int, limit: int | None, seed: int,
              data_dir: Path | None, results: core.Results) -> None:  # fmt: skip
    size = core.image_size(s.model, s.image_size)
    base = dict(**asdict(s), input_size=f"{size[0]}x{size[1]}", epochs=epochs, repeats=repeats)
    base["limit_train_batches"] = limit  # a smoke run's rows say so: targets need whole epochs
    if reason := core.unavailable(backend, s.precision):  # before a Trainer would refuse it
        for loop in LOOPS:
            results.add("overhead", backend, "skipped", note=reason, loop=loop, **base)
        return
    dm = s.datamodule(data_dir)  # a missing dataset: run_tasks records a skipped row
    dm.trainer = core.trainer(backend)
    dm.setup("fit")  # on a GPU the data moves to it, as in fit: for every loop alike
    L.seed_everything(seed, verbose=False)
    state = s.task(dm).state_dict()  # the same initial weights in every loop
    fmt = torch.channels_last if s.channels_last else torch.contiguous_format
    clocks: dict[str, list[core.Clock]] = {loop: [] for loop in LOOPS}
    for _, loop in itertools.product(range(repeats), LOOPS):  # the loops alternate
        lightning = loop.startswith("lightning")
        model = s.task(dm, scheduler="onecycle" if lightning else "none")
        model.load_state_dict(state)
        L.seed_everything(seed, verbose=False)  # the same data order in every loop
        if loop == "lightning_bare":
            loss_only(model, s.channels_last)
        clocks[loop].append(clock := core.Clock(backend))
        if lightning:
            core.trainer(backend, s.precision, epochs, limit, callbacks=[clock]).fit(model, dm)
        else:
            _handwritten(model, dm, s.precision, fmt, epochs, limit, clock, loop == "network")
    stats: dict[str, dict[str, Any]] = {}
    for loop, found in clocks.items():  # network, then handwritten: the references come first
        first = len(found[0].steps) // epochs  # the first epoch of each fit is warm-up
        own = stats[loop] = core.spread("epoch_s", [t for c in found for t in c.epochs[1:]])
        own |= core.spread("step_ms", [1e3 * t for c in found for t in c.steps[first:]])
        own["images_per_epoch"] = images = found[0].images // epochs
        own["ips"] = core.ratio(images, own["epoch_s_median"])
        hand = stats["handwritten"] if loop != "network" else {}
        for column, key in (("overhead_pct", "epoch_s"), ("overhead_step_pct", "step_ms")):
            change = core.ratio(own[f"{key}_median"], hand.get(f"{key}_median"))
            own[column] = None if change is None else 100 * (change - 1)
        own["vs_network"] = core.ratio(own["ips"], stats["network"]["ips"])
        results.add("overhead", backend, loop=loop, **base, **own)


def overhead(out: Path, settings: tuple[Setting, ...] = (LENET,), backend: core.Backend = "cpu",
             epochs: int = 4, repeats: int = 3, limit_train_batches: int | None = None,
             data_dir: Path | None = None, seed: int = 0, threads: int | None = None,
             force: bool = False) -> int:  # fmt: skip
    """Lightning overhead: the package's task under `Trainer.fit` against a hand-written loop.

    The same weights, data order, optimizer, schedule, precision and memory format; the loops
    alternate; each fit's first epoch is warm-up; `network`: the hand-written step on one batch
    on the device; `lightning_bare`: a loss-only `training_step`. Overheads: over `handwritten`.

    Args:
        settings: Configurations, e.g. ``[{model: resnet18, dataset: fashion_mnist,
            image_size: 96, batch_size: 256, precision: bf16-mixed, channels_last: true}]``.
        epochs: Epochs per fit (at least 2); the first is warm-up.
        repeats: Fits per loop, the loops alternating (at least 1).
        limit_train_batches: Cap on the batches per epoch (smoke runs).
    """
    counts = dict(epochs=epochs, repeats=repeats, limit_train_batches=limit_train_batches)
    if _refused(overhead, counts | dict(threads=threads), *settings, seed=seed, epochs=2,
                repeats=1, limit_train_batches=1, threads=1):  # fmt: skip
        return 2
    tasks = [core.Task(f"overhead {s.model}/{s.dataset} {backend}", partial(
        _overhead, s, backend, epochs, repeats, limit_train_batches, seed, data_dir), "overhead",
        backend, dict(model=s.model, dataset=s.dataset)) for s in settings]  # fmt: skip
    columns = "model dataset input_size batch_size precision channels_last loop epoch_s_median "
    columns += "ips vs_network overhead_pct step_ms_median overhead_step_pct"
    given = dict(settings=[asdict(s) for s in settings], backend=backend, **counts)
    return _execute(overhead, tasks, columns, out, given, threads, force)


class _RankZero(core.Clock):
    """Every process's torch threads; rank 0 writes its epochs and all images to `path`."""

    def __init__(self, backend: str, threads: int, path: Path) -> None:
        super().__init__(backend)
        self.threads, self.path = threads, path

    def on_fit_start(self, trainer: L.Trainer, *_: Any) -> None:
        if self.backend == "cpu":
            torch.set_num_threads(self.threads)

    def on_fit_end(self, trainer: L.Trainer, *_: Any) -> None:
        count = torch.tensor(float(self.images), device=trainer.strategy.root_device)  # NCCL
        images = trainer.strategy.reduce(count, reduce_op="sum")
        if trainer.is_global_zero:
            self.path.write_text(json.dumps(dict(epochs=self.epochs, images=float(images))))


def scaling(out: Path, setting: Setting = LENET, backend: core.Backend = "cpu",
            processes: tuple[int, ...] = (2,), epochs: int = 3,
            limit_train_batches: int | None = None, data_dir: Path | None = None, seed: int = 0,
            threads: int | None = None, force: bool = False) -> int:  # fmt: skip
    """DDP weak scaling, the batch per process fixed.

    Every process's images/s over rank 0's epoch time between barriers (the first epoch
    warm-up); `efficiency`: ips(n) / (n × ips(1)) at equal threads per process; the last
    column: over 1 process with every thread. The runs: 1 process with every thread, then 1
    and n processes with threads // n each (1 on CUDA).

    Args:
        processes: Process counts besides 1 (``ddp_spawn``; gloo on the CPU, NCCL on CUDA).
        epochs: Epochs per fit (at least 2); the first is warm-up.
        limit_train_batches: Cap on the batches per epoch (smoke runs).
        threads: Torch threads in all, shared by the processes on the CPU.
    """
    counts = dict(epochs=epochs, limit_train_batches=limit_train_batches, threads=threads,
                  processes=min(processes, default=None))  # the smallest (0 divided) # fmt: skip
    lows = dict(epochs=2, limit_train_batches=1, threads=1, processes=2)
    if _refused(scaling, counts, setting, seed=seed, **lows):
        return 2
    s, ips = setting, dict[tuple[int, int], float]()
    total = 1 if backend == "cuda" else threads or torch.get_num_threads()
    runs = [(1, total), *((m, max(1, total // n)) for n in processes for m in (1, n))]

    def run(results: core.Results) -> None:
        for n, t in dict.fromkeys(runs):
            dm = s.datamodule(data_dir)
            L.seed_everything(seed, verbose=False)
            model = s.task(dm)
            with tempfile.TemporaryDirectory() as tmp:
                clock = _RankZero(backend, t, Path(tmp) / "times.json")
                strategy = "ddp_spawn" if n > 1 else "auto"
                core.trainer(backend, s.precision, epochs, limit_train_batches, callbacks=[clock],
                             devices=n, strategy=strategy).fit(model, dm)  # fmt: skip
                found = json.loads(clock.path.read_text())
            row = results.add("scaling", backend, **asdict(s), processes=n, threads_per_process=t)
            row |= dict(epochs=epochs, limit_train_batches=limit_train_batches)
            row |= core.spread("epoch_s", found["epochs"][1:])
            ips[n, t] = row["ips"] = found["images"] / epochs / row["epoch_s_median"]
            row["efficiency"] = ips[n, t] / (n * ips.get((1, t), math.nan))
            row["vs_one_process_all_threads"] = ips[n, t] / ips[1, total]

    columns = "model processes threads_per_process epoch_s_median ips efficiency "
    task = core.Task(f"scaling {s.model} {backend}", run, "scaling", backend)
    return _execute(scaling, [task], columns + "vs_one_process_all_threads", out,
                    dict(setting=asdict(s), processes=processes, epochs=epochs,
                         limit_train_batches=limit_train_batches), threads, force)  # fmt: skip


def _step_memory(model: str, batch: int, size: int, efficient: bool, threads: int) -> float:
    def _peak_kib() -> int:  # the peak resident set since the last reset (Linux)
        return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0])

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = model_info(model).build_net(num_classes=10, memory_efficient=efficient).train()
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 10, (batch,))
    Path("/proc/self/clear_refs").write_text("5")  # the peak restarts from the resident set
    before = _peak_kib()
    F.cross_entropy(net(x), y).backward()
    return (_peak_kib() - before) / 1024


def memory(model: str = "densenet121", batch_size: int = 8, image_size: int = 128,
           threads: int = 1) -> int:  # fmt: skip
    """Peak CPU memory of one DenseNet training step with and without ``memory_efficient``.

    Each in a fresh process: the peak resident set (Linux ``VmHWM``) above the one before the step.

    Args:
        model: A registered model with the ``memory_efficient`` option (the DenseNets).
    """
    takes = [m for m in list_models() if "memory_efficient" in model_info(m).options]
    if model not in takes:
        print(f"benchmarks/dev.py memory: --model must be a model with the memory_efficient "
              f"option, one of {takes}; got {model!r}", file=sys.stderr)  # fmt: skip
        return 2
    sizes = dict(batch_size=batch_size, image_size=image_size, threads=threads)
    if _refused(memory, sizes, batch_size=1, image_size=max(model_info(model).min_input_size),
                threads=1):  # fmt: skip
        return 2
    for efficient in (False, True):
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            mib = pool.submit(_step_memory, model, batch_size, image_size, efficient, threads)
            print(f"{model}, batch {batch_size} at {image_size} px, {threads} thread(s), "
                  f"memory_efficient={efficient}: {mib.result():.0f} MiB")  # fmt: skip
    return 0


def pipeline(out: Path, dataset: PipelineDataset = "mnist10k", repeats: int = 5,
             limit_train_batches: int | None = None, data_dir: Path | None = None, seed: int = 0,
             threads: int | None = None, force: bool = False) -> int:  # fmt: skip
    """The in-memory datamodule against torchvision's per-sample pipeline.

    torchvision's: a PIL image, `Pad` and `ToTensor`, or `ToTensor` and `Resize`, as the
    datamodule fits the size; `Normalize`. A shuffled epoch each to normalised 32x32 batches,
    alternating, on the CPU, `num_workers=0`; `speedup`: the epoch's time over the
    datamodule's, none where the batches differ.

    Args:
        dataset: ``mnist10k``, ``mnist`` or ``fashion_mnist`` (28x28, padded to 32), or
            ``digits`` (8x8, resized to 32).
        repeats: Epochs per pipeline, alternating (at least 1).
        limit_train_batches: Cap on the batches per epoch (smoke runs).
    """
    counts = dict(repeats=repeats, limit_train_batches=limit_train_batches, threads=threads)
    if _refused(pipeline, counts, Setting(dataset=dataset), seed=seed, repeats=1, threads=1,
                datasets=get_args(PipelineDataset), limit_train_batches=1):  # fmt: skip
        return 2

    def run(results: core.Results) -> None:
        dm = make_datamodule(dataset, data_dir, 128, image_size=32)
        data = dm.train_dataloader().dataset
        size, pad = (32 - data.images.shape[-1]) // 2, dm.resize_mode == "pad"  # as the dm does
        steps = [transforms.Pad(size), transforms.ToTensor()] if pad else [transforms.ToTensor(),
                 transforms.Resize(32)]  # fmt: skip
        transform = transforms.Compose([*steps, transforms.Normalize(dm.mean, dm.std)])

        class PIL(Dataset[tuple[torch.Tensor, int]]):  # as torchvision's MNIST: a PIL image each
            def __len__(self) -> int:
                return len(data.labels)

            def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
                return transform(Image.fromarray(data.images[i, 0].numpy())), int(data.labels[i])

        first = dm.transform(data.images[:128])  # the datamodule's transform, the same batch
        same = torch.allclose(first, next(iter(DataLoader(PIL(), 128)))[0], atol=1e-5)
        loaders = dict(classic_cnns=lambda: (dm.transform(x) for x, _ in dm.train_dataloader()))
        loaders["torchvision"] = lambda: (x for x, _ in DataLoader(PIL(), 128, shuffle=True))
        seconds: dict[str, list[float]] = {name: [] for name in loaders}
        L.seed_everything(seed, verbose=False)
        for _, (name, batches) in itertools.product(range(repeats), loaders.items()):
            start = time.perf_counter()  # the two alternate
            images = sum(len(x) for x in itertools.islice(batches(), limit_train_batches))
            seconds[name].append(time.perf_counter() - start)
        ours = core.spread("epoch_s", seconds["classic_cnns"])["epoch_s_median"]
        differ = None if same else "the pipelines' batches differ: no speedup"  # not the work
        for name, found in seconds.items():
            row = results.add("pipeline", "cpu", pipeline=name, dataset=dataset, images=images)
            row |= dict(repeats=repeats, outputs_match=same, **core.spread("epoch_s", found),
                        limit_train_batches=limit_train_batches)  # smoke: no target # fmt: skip
            speedup = row["epoch_s_median"] / ours if same else None  # only for the same work
            row.update(ips=images / row["epoch_s_median"], speedup=speedup, note=differ)

    columns = "pipeline images epoch_s_median ips speedup outputs_match"
    return _execute(pipeline, [core.Task(f"pipeline {dataset}", run, "pipeline")], columns, out,
                    dict(dataset=dataset), threads, force)  # fmt: skip


def targets(folder: Path, file: Path = TARGETS) -> int:
    """Check the runs under ``folder`` (every ``results.json``) against our targets.

    Writes and prints ``targets.md``. A target is ``met`` when every value of its
    ``column``\\(s) in the ``ok`` rows of its mode matching its ``where`` (a list: any of its
    values) lies within ``min`` and ``max``, ``not met`` when one does not or is missing, else
    ``not measured``."""
    for path, kind in ((folder, "folder"), (file, "file")):
        if not (Path(path).is_dir() if kind == "folder" else Path(path).is_file()):
            print(f"benchmarks/dev.py targets: --{kind} {path} is not a {kind}; expected a "
                  "folder of runs and a targets file", file=sys.stderr)  # fmt: skip
            return 2
    runs = [json.loads(path.read_text())["rows"] for path in sorted(folder.rglob("results.json"))]
    body = []
    for t in json.loads(file.read_text(encoding="utf-8"))["targets"]:
        where = {k: v if isinstance(v, list) else [v] for k, v in t.get("where", {}).items()}
        found = [r for rows in runs for r in rows.get(t["mode"], []) if r["status"] == "ok"
                 and all(r.get(k) in v for k, v in where.items())]  # fmt: skip
        columns = t["column"] if isinstance(t["column"], list) else [t["column"]]
        values = [r.get(c) for r in found for c in columns]
        low, high = t.get("min", -math.inf), t.get("max", math.inf)
        missed = [v for v in values if v is None or not low <= v <= high]
        listed = missed + [v for v in values if v not in missed]  # the misses first: the reason
        shown = ", ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in listed[:8])
        shown += f", ... ({len(listed) - 8} more)" if len(listed) > 8 else ""
        verdict = ("not met", "met")[not missed] if found else "not measured"
        body.append([t["text"], shown, verdict])
    lines = ["# Targets", "", "Measured in these runs, never asserted by the tests.", ""]
    text = "\n".join([*lines, *core.table(["target", "measured", "verdict"], body)])
    (folder / "targets.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(CLI([overhead, scaling, pipeline, memory, targets], as_positional=False))
