"""Training and inference throughput, side by side with torchvision, with MFU.

For each model, backend, precision, memory format and ``torch.compile`` setting, one
configuration builds the package's network and, where torchvision ships the same
architecture, torchvision's, with the same input, batch, optimizer and settings. It then
times:

* training steps: forward, cross-entropy (plus GoogLeNet's weighted auxiliary losses),
  backward and an SGD-with-momentum step;
* inference steps: forward in ``eval()`` mode under ``torch.inference_mode()``.

Warm-up steps (which compile, for ``torch.compile``) are excluded. Each timed repeat runs
enough steps to last ``min_time`` seconds; the two implementations' repeats alternate, so
noise from other processes lands on both alike, and the ratio is taken between medians of
the same run. Peak memory is read while an implementation is alone being warmed up, never
while timing.

MFU divides the achieved FLOP/s (3x the forward FLOPs for a training step, 1x for
inference, from :func:`classic_cnns.inspection.summary`) by the peak of the math the layers
may use (:func:`math_modes`): TF32 for fp32 on CUDA where cuDNN or cuBLAS may use it
(PyTorch's default for convolutions), bf16 or fp16 for the mixed precisions (the ops
autocast keeps in fp32 run slower, so the low-precision peak bounds them too; a CPU
without fast bf16 falls back to fp32 and its fp32 peak counts), fp32 otherwise. Each peak
is the best rate of large matmuls in that mode, measured before the first and again after
the last configuration of a backend; MFU is computed then, from the best of both. A rate
above the peak means the peak was measured too low (a busy machine, say): such rows keep
their value and say so in their note.

Example:
    >>> from classic_cnns.bench import BenchConfig, Results
    >>> from classic_cnns.bench.throughput import plan
    >>> cfg = BenchConfig.quick(models=["lenet5"], backends=["cpu"], compile=[False])
    >>> [t.label for t in plan(cfg)][:2]
    ['peak cpu', 'throughput lenet5 cpu fp32 contiguous eager']
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from classic_cnns.bench._common import (
    BenchConfig,
    PeakMemory,
    Results,
    Task,
    autocast,
    backend_unavailable,
    precision_unsupported,
    ratio,
    spread,
    synchronize,
    timed,
    to_memory_format,
)
from classic_cnns.bench._data import image_size
from classic_cnns.registry import model_info

__all__ = ["TORCHVISION_ARCHS", "fill_mfu", "math_modes", "measure_peak", "plan", "run_config"]

# Registered names that torchvision ships with the same layers (and parameter names).
TORCHVISION_ARCHS = frozenset(
    ["alexnet", "googlenet", "densenet121", "densenet161", "densenet169", "densenet201"]
    + [f"resnet{d}" for d in (18, 34, 50, 101, 152)]
    + [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")]
)
# Math mode -> (matmul dtype, float32_matmul_precision while measuring its peak).
_MATH = {
    "fp32": (torch.float32, "highest"),
    "tf32": (torch.float32, "high"),
    "bf16": (torch.bfloat16, "highest"),
    "fp16": (torch.float16, "highest"),
}
_AUX_WEIGHT = 0.3  # the task's default weight of GoogLeNet's auxiliary losses


def math_modes(backend: str, precision: str) -> tuple[str, ...]:
    """The math modes the layers of ``precision`` may run in on ``backend``, lowest first.

    fp32 on CUDA is ``"tf32"`` when cuDNN (``torch.backends.cudnn.allow_tf32``, on by
    default) or cuBLAS (``torch.get_float32_matmul_precision() != "highest"``) may use
    TF32, else ``"fp32"``. A mixed precision adds its low-precision mode in front.

    Example:
        >>> from classic_cnns.bench.throughput import math_modes
        >>> math_modes("cpu", "bf16-mixed")
        ('bf16', 'fp32')
    """
    fp32 = "fp32"
    if backend == "cuda" and (
        torch.backends.cudnn.allow_tf32 or torch.get_float32_matmul_precision() != "highest"
    ):
        fp32 = "tf32"
    low = {"bf16-mixed": "bf16", "fp16-mixed": "fp16"}.get(precision)
    return (fp32,) if low is None else (low, fp32)


def measure_peak(backend: str, mode: str, seconds: float = 0.5) -> float:
    """FLOP/s of large square matmuls in math mode ``mode``: the best of several tries.

    Sizes 512 to 2048 on CPUs, 4096 and 8192 on GPUs: the best of the timed tries of all
    sizes is the peak (on a CPU a smaller matrix can be the fastest, fitting its caches).

    Example:
        >>> from classic_cnns.bench.throughput import measure_peak
        >>> measure_peak("cpu", "fp32", seconds=0.05) > 0
        True
    """
    dtype, matmul_precision = _MATH[mode]
    sizes = (512, 1024, 2048) if backend == "cpu" else (4096, 8192)
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(matmul_precision)
    best = 0.0
    try:
        for n in sizes:
            a = torch.randn(n, n, device=backend).to(dtype)
            b = torch.randn(n, n, device=backend).to(dtype)
            (a @ b).sum().item()  # warm-up (BLAS initialisation, kernel selection)
            deadline = time.perf_counter() + seconds / len(sizes)
            for tries in range(50):
                best = max(best, 2 * n**3 / timed(partial(torch.matmul, a, b), 1, backend))
                if tries >= 1 and time.perf_counter() > deadline:
                    break
    finally:
        torch.set_float32_matmul_precision(previous)
    return best


def fill_mfu(results: Results, backend: str, flag: bool = True) -> None:
    """Set the peak and MFU columns of ``backend``'s throughput rows from the run's peaks.

    With ``flag`` (the final pass), a row whose MFU exceeds 1 keeps it, gets a note and
    adds a note to the report: its peak was measured too low.

    Example:
        >>> from classic_cnns.bench import BenchConfig, Results
        >>> from classic_cnns.bench.throughput import fill_mfu
        >>> results = Results(BenchConfig())
        >>> results.matmul_peaks["cpu/fp32"] = 1e12
        >>> row = results.add("throughput", "cpu", precision="fp32", train_tflops=0.5)
        >>> fill_mfu(results, "cpu")
        >>> row["peak_math"], row["train_mfu"]
        ('fp32', 0.5)
    """
    for row in results.rows.get("throughput", []):
        if row["backend"] != backend or row["status"] != "ok":
            continue
        peaks = {
            m: results.matmul_peaks[f"{backend}/{m}"]
            for m in math_modes(backend, row["precision"])
            if f"{backend}/{m}" in results.matmul_peaks
        }
        if not peaks:
            continue
        mode = max(peaks, key=peaks.__getitem__)
        peak = peaks[mode]
        row.update(peak_math=mode, peak_tflops=peak / 1e12)
        for phase in ("train", "infer"):
            row[f"{phase}_mfu"] = ratio(row[f"{phase}_tflops"], peak / 1e12)
        high = [p for p in ("train", "infer") if (row[f"{p}_mfu"] or 0) > 1]
        if high and flag:
            text = f"MFU above 1 ({', '.join(high)}): the {mode} peak was measured too low"
            row["note"] = "; ".join(n for n in (row["note"], text) if n)
            results.note(f"{backend} {row['model']} {row['precision']}: {text}")


def _default_batch(fwd_flops: int) -> int:
    # Tiny networks (LeNet-5) need large batches to keep the device busy; larger ones
    # would take seconds per step on a laptop CPU at 128.
    return 128 if fwd_flops < 10e6 else 32


def _input_size(cfg: BenchConfig, name: str) -> tuple[tuple[int, int, int], str | None]:
    c, h, w = model_info(name).input_size
    size = (c, *image_size(name, max_size=cfg.max_image_size))
    cap = cfg.max_image_size
    if cap is not None and (size[1] > min(h, cap) or size[2] > min(w, cap)):
        return size, f"input kept at the model's minimum {size[1]}x{size[2]}"
    return size, None


_FLOPS_CACHE: dict[tuple[str, tuple[int, int, int]], int] = {}


def forward_flops(name: str, size: tuple[int, int, int]) -> int:
    """Forward FLOPs per image of a registered model (2 per multiply-accumulate).

    Example:
        >>> from classic_cnns.bench.throughput import forward_flops
        >>> forward_flops("lenet5", (1, 32, 32))
        846076
    """
    key = (name, size)
    if key not in _FLOPS_CACHE:
        from classic_cnns.inspection import summary

        net = model_info(name).build_net(num_classes=10, in_channels=size[0])
        _FLOPS_CACHE[key] = summary(net, size).total_flops
    return _FLOPS_CACHE[key]


def _build(name: str, impl: str, in_channels: int) -> nn.Module:
    if impl == "classic_cnns":
        return model_info(name).build_net(num_classes=10, in_channels=in_channels)
    import torchvision

    # GoogLeNet: both with auxiliary heads in training, as the package's network has.
    extra: dict[str, Any] = {}
    if name == "googlenet":
        extra = {"aux_logits": True, "init_weights": True}
    return getattr(torchvision.models, name)(num_classes=10, **extra)  # type: ignore[no-any-return]


def _loss(out: Any, y: Tensor) -> Tensor:
    # GoogLeNet returns (logits, aux...) in training, torchvision a namedtuple of the same.
    if isinstance(out, tuple):
        loss = F.cross_entropy(out[0], y)
        for aux in out[1:]:
            if aux is not None:
                loss = loss + _AUX_WEIGHT * F.cross_entropy(aux, y)
        return loss
    return F.cross_entropy(out, y)


@dataclass
class _Impl:
    """One implementation under test: its network (maybe compiled) and step functions."""

    impl: str
    net: nn.Module
    call: Callable[[Tensor], Any]
    train_step: Callable[[], None] | None = None
    infer_step: Callable[[], None] | None = None
    warmup_s: float = 0.0
    train_meter: PeakMemory | None = None
    infer_meter: PeakMemory | None = None


def _prepare(
    impl: _Impl, x: Tensor, y: Tensor, backend: str, precision: str, warmup: int
) -> tuple[float, float]:
    """Warm up inference then training alone, reading peak memory; return step times."""
    net = impl.net
    dtype_ctx = lambda: autocast(backend, precision)  # noqa: E731

    def infer() -> None:
        with torch.inference_mode(), dtype_ctx():
            impl.call(x)

    # Inference first, before an optimizer exists: its memory is weights plus activations.
    net.eval()
    start = time.perf_counter()
    for _ in range(warmup):
        infer()
    synchronize(backend)
    assert impl.infer_meter is not None
    with impl.infer_meter:
        infer_s = timed(infer, 1, backend)

    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler(backend) if precision == "fp16-mixed" else None

    def train() -> None:
        opt.zero_grad(set_to_none=True)
        with dtype_ctx():
            loss = _loss(impl.call(x), y)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    net.train()
    for _ in range(warmup):
        train()
    synchronize(backend)
    impl.warmup_s = time.perf_counter() - start - infer_s
    assert impl.train_meter is not None
    with impl.train_meter:
        train_s = timed(train, 1, backend)
    impl.train_step, impl.infer_step = train, infer
    return train_s, infer_s


def _steps(step_s: float, min_time: float) -> int:
    return max(1, min(1000, math.ceil(min_time / max(step_s, 1e-9))))


def run_config(
    cfg: BenchConfig,
    results: Results,
    name: str,
    backend: str,
    precision: str,
    memory_format: str,
    compiled: bool,
) -> None:
    """Measure one throughput configuration; add a row per implementation to ``results``.

    Example:
        >>> from classic_cnns.bench import BenchConfig, Results
        >>> from classic_cnns.bench.throughput import run_config
        >>> cfg = BenchConfig(repeats=1, warmup=1, min_time=0.0, batch_size=4)
        >>> results = Results(cfg)
        >>> run_config(cfg, results, "lenet5", "cpu", "fp32", "contiguous", False)
        >>> results.rows["throughput"][0]["train_ips_median"] > 0
        True
    """
    size, size_note = _input_size(cfg, name)
    fwd = forward_flops(name, size)
    batch = cfg.batch_size or _default_batch(fwd)
    impl_names = ["classic_cnns"] + (["torchvision"] if name in TORCHVISION_ARCHS else [])
    base: dict[str, Any] = dict(
        model=name,
        precision=precision,
        memory_format=memory_format,
        compile=compiled,
        batch_size=batch,
        input_size="x".join(map(str, size)),
        warmup_steps=cfg.warmup,
        repeats=cfg.repeats,
        fwd_flops_per_image=fwd,
    )
    reason = backend_unavailable(backend) or precision_unsupported(backend, precision)
    if reason is not None:
        for impl_name in impl_names:
            results.add(
                "throughput", backend, status="skipped", note=reason, impl=impl_name, **base
            )
        return
    if compiled:
        import torch._dynamo as dynamo

        # Fresh caches: earlier configurations' graphs would count toward the recompile limit.
        dynamo.reset()
    fmt = to_memory_format(memory_format)
    gen = torch.Generator().manual_seed(cfg.seed)
    x = torch.randn(batch, *size, generator=gen).to(backend).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,), generator=gen).to(backend)

    impls: list[_Impl] = []
    times: dict[str, tuple[float, float]] = {}
    for impl_name in impl_names:
        train_meter, infer_meter = PeakMemory(backend), PeakMemory(backend)
        train_meter.baseline()
        infer_meter.base = train_meter.base
        torch.manual_seed(cfg.seed)
        net = _build(name, impl_name, size[0]).to(backend).to(memory_format=fmt)
        call = torch.compile(net) if compiled else net
        impl = _Impl(impl_name, net, call, train_meter=train_meter, infer_meter=infer_meter)
        times[impl_name] = _prepare(impl, x, y, backend, precision, cfg.warmup)
        impls.append(impl)

    # Steps per repeat from the package's own step time; every implementation runs as many.
    train_steps = _steps(times["classic_cnns"][0], cfg.min_time)
    infer_steps = _steps(times["classic_cnns"][1], cfg.min_time)
    train_ips: dict[str, list[float]] = {i.impl: [] for i in impls}
    infer_ips: dict[str, list[float]] = {i.impl: [] for i in impls}
    for impl in impls:
        impl.net.train()
        assert impl.train_step is not None
        impl.train_step()  # one untimed step after the mode switch
    for _ in range(cfg.repeats):
        for impl in impls:
            assert impl.train_step is not None
            train_ips[impl.impl].append(
                train_steps * batch / timed(impl.train_step, train_steps, backend)
            )
    for impl in impls:
        impl.net.eval()
        assert impl.infer_step is not None
        impl.infer_step()
    for _ in range(cfg.repeats):
        for impl in impls:
            assert impl.infer_step is not None
            infer_ips[impl.impl].append(
                infer_steps * batch / timed(impl.infer_step, infer_steps, backend)
            )

    rows = {}
    for impl in impls:
        train = spread("train_ips", train_ips[impl.impl])
        infer = spread("infer_ips", infer_ips[impl.impl])
        train_flops = 3 * fwd * (train["train_ips_median"] or 0.0)
        infer_flops = fwd * (infer["infer_ips_median"] or 0.0)
        assert impl.train_meter is not None and impl.infer_meter is not None
        rows[impl.impl] = results.add(
            "throughput",
            backend,
            note=size_note,
            impl=impl.impl,
            **base,
            train_steps=train_steps,
            infer_steps=infer_steps,
            warmup_s=impl.warmup_s,
            **train,
            **infer,
            train_peak_mem_mb=impl.train_meter.peak_mb,
            infer_peak_mem_mb=impl.infer_meter.peak_mb,
            mem_kind=impl.train_meter.kind,
            train_tflops=train_flops / 1e12,
            infer_tflops=infer_flops / 1e12,
        )
    if "torchvision" in rows:
        ours, tv = rows["classic_cnns"], rows["torchvision"]
        ours["vs_torchvision_train"] = ratio(ours["train_ips_median"], tv["train_ips_median"])
        ours["vs_torchvision_infer"] = ratio(ours["infer_ips_median"], tv["infer_ips_median"])
    del impls


def _peak_task(cfg: BenchConfig, backend: str, last: bool) -> Task:
    def run(results: Results) -> None:
        modes = {
            m
            for p in cfg.precisions
            if precision_unsupported(backend, p) is None
            for m in math_modes(backend, p)
        }
        for mode in sorted(modes):
            flops = measure_peak(backend, mode, 0.6 if cfg.min_time < 1 else 2.0)
            key = f"{backend}/{mode}"
            results.matmul_peaks[key] = max(flops, results.matmul_peaks.get(key, 0.0))
        if last:
            fill_mfu(results, backend)

    return Task(f"peak {backend}" + (" again, MFU" if last else ""), run, "throughput", backend)


def _config_task(
    cfg: BenchConfig, name: str, backend: str, precision: str, fmt: str, compiled: bool
) -> Task:
    label = f"throughput {name} {backend} {precision} {fmt} {'compiled' if compiled else 'eager'}"

    def run(results: Results) -> None:
        run_config(cfg, results, name, backend, precision, fmt, compiled)
        fill_mfu(results, backend, flag=False)  # provisional: the last task sets it again

    fields = dict(
        model=name, impl="classic_cnns", precision=precision, memory_format=fmt, compile=compiled
    )
    return Task(label, run, "throughput", backend, fields)


def plan(cfg: BenchConfig) -> list[Task]:
    """The throughput tasks of a run: per backend the peaks, each configuration, the peaks
    again and MFU.

    Absent backends get one task that records skipped rows, so the report lists them.
    """
    tasks: list[Task] = []
    for backend in cfg.backends:
        reason = backend_unavailable(backend)
        if reason is not None:
            tasks.append(_skip_backend_task(cfg, backend, reason))
            continue
        tasks.append(_peak_task(cfg, backend, last=False))
        for name in cfg.models:
            for precision in cfg.precisions:
                for fmt in cfg.memory_formats:
                    for compiled in sorted(set(cfg.compile)):
                        if compiled and not cfg.wants_compile(name, precision, fmt):
                            continue
                        tasks.append(_config_task(cfg, name, backend, precision, fmt, compiled))
        tasks.append(_peak_task(cfg, backend, last=True))
    return tasks


def _skip_backend_task(cfg: BenchConfig, backend: str, reason: str) -> Task:
    def run(results: Results) -> None:
        results.note(f"{backend}: skipped, {reason}")
        for name in cfg.models:
            size, _ = _input_size(cfg, name)
            results.add(
                "throughput",
                backend,
                status="skipped",
                note=reason,
                model=name,
                impl="classic_cnns",
                input_size="x".join(map(str, size)),
            )

    return Task(f"throughput {backend} (skipped)", run, "throughput", backend)
