"""Profile the package's training step against a loss-only one under the same Trainer.

One short fit per step kind, with ``torch.profiler`` over ``--steps`` steps after
``--warmup`` (by default steps 80 to 120, with the 100th, a logging step, which reads):
where a step's time goes, and on a GPU whether the device waits on the host. Per step:
wall time; the device's busy time (the sum of its kernels and copies) and that as a share
of the wall time; the host's waits on the device (``cudaStreamSynchronize`` and kin, which
torch's sync debug mode may miss); kernel launches; aten calls.

    python benchmarks/profile_step.py --out DIR --backend cuda --model resnet18 \\
        --dataset fashion_mnist --image_size 96 --batch_size 256 [--precision bf16-mixed \\
        --channels_last]
    python benchmarks/profile_step.py --out DIR --dataset digits --steps 5 --warmup 3  # CPU

``DIR/report.md`` gets the table (printed too); ``DIR/<step>.txt`` the profiler's op tables.
"""

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import dev  # benchmarks/dev.py: the overhead mode's settings, datamodules and models
import lightning as L
import torch
from torch.profiler import ProfilerActivity, profile

from classic_cnns.bench import core

WAITS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy")
LAUNCHES = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx")


class Window(L.Callback):
    """Profiles training steps ``first`` to ``last`` and takes their wall time; then stops."""

    def __init__(self, backend: str, first: int, last: int) -> None:
        self.backend, self.first, self.last, self.prof, self.wall = backend, first, last, None, 0.0

    def on_train_batch_start(self, trainer: Any, *args: Any) -> None:
        if trainer.global_step == self.first:
            core.synchronize(self.backend)
            cuda = [ProfilerActivity.CUDA] if self.backend == "cuda" else []
            self.prof = profile(activities=[ProfilerActivity.CPU, *cuda]).__enter__()
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        if self.prof is not None and trainer.global_step == self.last:
            core.synchronize(self.backend)
            self.wall, trainer.should_stop = time.perf_counter() - self.start, True
            self.prof.__exit__(None, None, None)


def _profile(s: Any, kind: str, backend: str, first: int, steps: int) -> dict[str, Any]:
    dm = s.datamodule(None)  # the data folder CLASSIC_CNNS_DATA names, as `fit` finds it
    L.seed_everything(0, verbose=False)
    model = s.task(dm, scheduler="onecycle")
    if kind == "bare":
        dev.loss_only(model, s.channels_last)  # as the overhead mode's lightning_bare
    w = Window(backend, first, first + steps)
    core.trainer(backend, s.precision, epochs=10_000, callbacks=[w]).fit(model, dm)
    if not w.wall:
        raise SystemExit(f"profile_step: the fit ended before step {first + steps}")
    events = w.prof.key_averages()  # type: ignore[attr-defined]
    calls = lambda keys: sum(e.count for e in events if keys(e.key)) / steps  # noqa: E731
    wall, busy = 1e3 * w.wall / steps, sum(e.self_device_time_total for e in events) / 1e3 / steps
    sorts = ["self_cpu_time_total", *(["self_device_time_total"] * (backend == "cuda"))]
    tables = "\n\n".join(events.table(sort_by=key, row_limit=40) for key in sorts)
    return {"step": kind, "wall ms/step": f"{wall:.2f}", "device busy ms/step": f"{busy:.2f}",
            "device busy %": f"{100 * busy / wall:.0f}", "tables": tables,
            "host waits/step": f"{calls(WAITS.__contains__):.2f}",
            "launches/step": f"{calls(LAUNCHES.__contains__):.0f}",
            "aten calls/step": f"{calls(lambda key: key.startswith('aten::')):.0f}"}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Parse the flags, profile both step kinds, write and print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--backend", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--model", default="lenet5")
    p.add_argument("--dataset", default="fashion_mnist")
    p.add_argument("--image_size", type=int, default=None)
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16-mixed", "fp16-mixed"])
    p.add_argument("--channels_last", action="store_true")
    p.add_argument("--warmup", type=int, default=80)
    p.add_argument("--steps", type=int, default=40)
    a = p.parse_args(argv)
    if a.warmup < 1 or a.steps < 1:
        p.error(f"--warmup and --steps must be at least 1; got {a.warmup} and {a.steps}")
    s = dev.Setting(a.model, a.dataset, a.image_size, a.batch_size, a.precision, a.channels_last)
    a.out.mkdir(parents=True, exist_ok=True)
    rows = [_profile(s, kind, a.backend, a.warmup, a.steps) for kind in ("task", "bare")]
    for row in rows:
        (a.out / f"{row['step']}.txt").write_text(row.pop("tables"))
    what = f"{a.model}, {a.dataset}, batch {a.batch_size}, {a.precision}"
    what += f"{', channels_last' if a.channels_last else ''}, {a.backend}"
    lines = [f"Steps {a.warmup} to {a.warmup + a.steps} of {what}:", "", " | ".join(rows[0])]
    lines += ["---|" * len(rows[0]), *(" | ".join(r.values()) for r in rows)]
    (a.out / "report.md").write_text("## Profile of a step\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
