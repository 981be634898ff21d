"""The benchmark suite behind ``classic-cnns bench``: speed, overhead, data, accuracy, scaling.

Modes (``--modes``):

* ``throughput``: training and inference images/s per model, backend, precision, memory
  format and ``torch.compile`` setting, side by side with torchvision's same
  architecture, with peak memory and MFU against the peak of the math the layers use
  (:mod:`~classic_cnns.bench.throughput`);
* ``overhead``: the package's LightningModule under ``Trainer.fit`` against a hand-written
  loop and the network alone, per model, input size, batch, precision and memory format
  (:mod:`~classic_cnns.bench.overhead`);
* ``pipeline``: the in-memory datamodule against a per-sample torchvision-style loader
  (:mod:`~classic_cnns.bench.pipeline`);
* ``accuracy`` and ``optimizers``: seeded recipes with accuracy-vs-time curves, and five
  optimizers on one recipe (:mod:`~classic_cnns.bench.accuracy`);
* ``scaling``: training images/s at 1 and N processes under DDP and the scaling
  efficiency, on the CPU and on every GPU present (:mod:`~classic_cnns.bench.scaling`).

Results are CSV and JSON rows (one per configuration, each naming the machine, versions
and thread count), a Markdown report and PNG plots (:mod:`~classic_cnns.bench.report`,
:mod:`~classic_cnns.bench.plots`). Targets to check are the caller's, read from a file
(``--targets``); the package states none of its own.

Example:
    >>> from classic_cnns.bench import BenchConfig, plan
    >>> cfg = BenchConfig.quick(modes=["throughput"], backends=["cpu"])
    >>> plan(cfg)[0].label
    'peak cpu'
"""

from classic_cnns.bench._common import (
    MODE_COLUMNS,
    MODES,
    BenchConfig,
    PeakMemory,
    Results,
    Task,
    autocast,
    backend_unavailable,
    environment,
    precision_unsupported,
    spread,
    synchronize,
)
from classic_cnns.bench.cli import main, plan, run

__all__ = [
    "MODES",
    "MODE_COLUMNS",
    "BenchConfig",
    "PeakMemory",
    "Results",
    "Task",
    "autocast",
    "backend_unavailable",
    "environment",
    "main",
    "plan",
    "precision_unsupported",
    "run",
    "spread",
    "synchronize",
]
