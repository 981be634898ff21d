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
while timing. MFU divides the achieved FLOP/s (3x the forward FLOPs for a training step,
1x for inference, from :func:`classic_cnns.inspect.summary`) by the FLOP/s of a large
matmul of the matching dtype measured on the same device in the same run.

Example:
    >>> from classic_cnns.bench import BenchConfig, Results
    >>> from classic_cnns.bench.throughput import plan
    >>> cfg = BenchConfig.quick(models=["lenet5"], backends=["cpu"], compile=[False])
    >>> [t.label for t in plan(cfg)][:2]
    ['matmul peak cpu', 'throughput lenet5 cpu fp32 contiguous eager']
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
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
)
from classic_cnns.registry import model_info

__all__ = ["TORCHVISION_ARCHS", "measure_matmul_peak", "plan", "run_config"]

# Registered names that torchvision ships with the same layers (and parameter names).
TORCHVISION_ARCHS = frozenset(
    ["alexnet", "googlenet", "densenet121", "densenet161", "densenet169", "densenet201"]
    + [f"resnet{d}" for d in (18, 34, 50, 101, 152)]
    + [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")]
)
_PEAK_DTYPE = {"fp32": torch.float32, "bf16-mixed": torch.bfloat16, "fp16-mixed": torch.float16}
_AUX_WEIGHT = 0.3  # the task's default weight of GoogLeNet's auxiliary losses


def measure_matmul_peak(backend: str, dtype: torch.dtype, seconds: float = 0.5) -> float:
    """FLOP/s of a large square matmul of ``dtype`` on ``backend``: the best of several tries.

    The size (2048 on CPUs, 8192 on GPUs) is large enough to reach the BLAS library's
    top speed; the best of the timed tries is the peak.

    Example:
        >>> import torch
        >>> from classic_cnns.bench.throughput import measure_matmul_peak
        >>> measure_matmul_peak("cpu", torch.float32, seconds=0.05) > 0
        True
    """
    n = 2048 if backend == "cpu" else 8192
    a = torch.randn(n, n, device=backend).to(dtype)
    b = torch.randn(n, n, device=backend).to(dtype)
    flops = 2 * n**3
    (a @ b).sum().item()  # warm-up (BLAS initialisation, kernel selection)
    best = 0.0
    deadline = time.perf_counter() + seconds
    tries = 0
    while tries < 3 or time.perf_counter() < deadline:
        best = max(best, flops / timed(lambda: a @ b, 1, backend))
        tries += 1
        if tries >= 50:
            break
    return best


def _default_batch(fwd_flops: int) -> int:
    # Tiny networks (LeNet-5) need large batches to keep the device busy; larger ones
    # would take seconds per step on a laptop CPU at 128.
    return 128 if fwd_flops < 10e6 else 32


def _input_size(cfg: BenchConfig, name: str) -> tuple[tuple[int, int, int], str | None]:
    info = model_info(name)
    c, h, w = info.input_size
    if cfg.max_image_size is None:
        return (c, h, w), None
    # Shrink large default inputs (224x224 ImageNet models) to the cap, never below the
    # smallest input the network accepts.
    target = (min(h, cfg.max_image_size), min(w, cfg.max_image_size))
    min_h, min_w = info.min_input_size
    size = (c, max(target[0], min_h), max(target[1], min_w))
    note = None
    if size[1:] != target:
        note = f"input kept at the model's minimum {size[1]}x{size[2]}"
    return size, note


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
        from classic_cnns.inspect import summary

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
    fmt = torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
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

    peak = results.matmul_peaks.get(f"{backend}/{precision}")
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
            matmul_peak_tflops=None if peak is None else peak / 1e12,
            train_mfu=ratio(train_flops, peak),
            infer_mfu=ratio(infer_flops, peak),
        )
    if "torchvision" in rows:
        ours, tv = rows["classic_cnns"], rows["torchvision"]
        ours["vs_torchvision_train"] = ratio(ours["train_ips_median"], tv["train_ips_median"])
        ours["vs_torchvision_infer"] = ratio(ours["infer_ips_median"], tv["infer_ips_median"])
    del impls


def _matmul_task(cfg: BenchConfig, backend: str) -> Task:
    def run(results: Results) -> None:
        for precision in cfg.precisions:
            if precision_unsupported(backend, precision) is None:
                seconds = 0.2 if cfg.min_time < 1 else 1.0
                flops = measure_matmul_peak(backend, _PEAK_DTYPE[precision], seconds)
                results.matmul_peaks[f"{backend}/{precision}"] = flops

    return Task(f"matmul peak {backend}", run, "throughput", backend)


def _config_task(
    cfg: BenchConfig, name: str, backend: str, precision: str, fmt: str, compiled: bool
) -> Task:
    label = f"throughput {name} {backend} {precision} {fmt} {'compiled' if compiled else 'eager'}"

    def run(results: Results) -> None:
        run_config(cfg, results, name, backend, precision, fmt, compiled)

    fields = dict(
        model=name, impl="classic_cnns", precision=precision, memory_format=fmt, compile=compiled
    )
    return Task(label, run, "throughput", backend, fields)


def plan(cfg: BenchConfig) -> list[Task]:
    """The throughput tasks of a run: a matmul peak per backend, then each configuration.

    Absent backends get one task that records skipped rows, so the report lists them.
    """
    tasks: list[Task] = []
    for backend in cfg.backends:
        reason = backend_unavailable(backend)
        if reason is not None:
            tasks.append(_skip_backend_task(cfg, backend, reason))
            continue
        tasks.append(_matmul_task(cfg, backend))
        for name in cfg.models:
            for precision in cfg.precisions:
                for fmt in cfg.memory_formats:
                    for compiled in sorted(set(cfg.compile)):
                        if compiled and not cfg.wants_compile(name, precision, fmt):
                            continue
                        tasks.append(_config_task(cfg, name, backend, precision, fmt, compiled))
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
