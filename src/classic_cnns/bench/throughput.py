"""Training and inference throughput beside torchvision's same network, with MFU.

Per model, backend, precision, memory format and ``torch.compile`` setting, the package's
network and torchvision's (if any), built from one seed, are timed on one batch after warm-up:
a training step (cross-entropy, GoogLeNet's auxiliary losses at 0.3, SGD with momentum) and an
inference step, their repeats alternating, so ``vs_torchvision_*`` (a ratio of medians)
compares like with like. MFU: the FLOP/s (3× the forward FLOPs per training image, 1× per
inference image) over the best matmul rate, before and after a backend's configurations, of
the fastest math mode the layers may use (:func:`math_modes`); above 1 is flagged.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from itertools import product
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from classic_cnns._writers import require_matplotlib, save_png
from classic_cnns.bench import core
from classic_cnns.inspection import summary
from classic_cnns.registry import list_models, model_info

__all__ = ["MAX_STEPS", "QUICK", "Settings", "fill_mfu", "math_modes", "measure", "report"]
__all__ += ["plain_loss", "tasks"]

MODE = "throughput"
MAX_STEPS = 1000
"""The most steps in one timed repeat: a tiny network's repeat may then last less than
``min_time``.

Example:
    >>> from classic_cnns.bench.throughput import MAX_STEPS
    >>> MAX_STEPS
    1000
"""
TORCHVISION = set(torchvision.models.list_models())
"""Where torchvision has a network of the same name, it has the same layers and parameters."""
_MATH = dict(fp32=(torch.float32, "highest"), tf32=(torch.float32, "high"),
             bf16=(torch.bfloat16, "highest"), fp16=(torch.float16, "highest"))  # fmt: skip
"""Math mode -> (matmul dtype, float32_matmul_precision while its peak is measured)."""
_MODELS = ("lenet5", "resnet20", "nin", "densenet_bc_100", "alexnet", "resnet18", "googlenet")
_FORMAT = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


@dataclass(frozen=True)
class Settings:
    """What the throughput mode measures (``--throughput.*`` on the command line).

    Attributes:
        models: Registered names, shell wildcards (``resnet*``) or ``all``.
        backends: Backends to try; absent ones give skipped rows.
        precisions: Precisions to try (fp16-mixed on CUDA only).
        memory_formats: Memory formats of the weights and the input.
        compile: Wildcards over ``model/precision/format`` measured ``torch.compile``d too.
        batch_size: Images per step; ``None``: 128 for tiny networks, else 32.
        max_image_size: Larger inputs shrink to this H = W (not below a model's minimum).
        repeats: Timed repeats per measurement (the median and spread are over these).
        warmup: Untimed steps first (the first compiles, with ``torch.compile``).
        min_time: Seconds one timed repeat should last, within 1,000 steps (``MAX_STEPS``):
            a tiny network's repeat may be shorter.

    Example:
        >>> from classic_cnns.bench.throughput import QUICK, Settings
        >>> Settings(**QUICK).models, Settings().compile
        (('lenet5', 'resnet18'), ('*',))
    """

    models: tuple[str, ...] = (*_MODELS, "densenet121")
    backends: tuple[core.Backend, ...] = ("cpu", "cuda", "mps")
    precisions: tuple[core.Precision, ...] = ("fp32", "bf16-mixed", "fp16-mixed")
    memory_formats: tuple[Literal["contiguous", "channels_last"], ...] = ("contiguous",)
    compile: tuple[str, ...] = ("*",)
    batch_size: int | None = None
    max_image_size: int | None = None
    repeats: int = 5
    warmup: int = 3
    min_time: float = 1.0

    def __post_init__(self) -> None:
        core.check_minimums(f"{MODE}.", asdict(self), required=("repeats", "warmup", "min_time"),
                            batch_size=1, max_image_size=1, repeats=1, warmup=0,
                            min_time=0.0)  # fmt: skip
        core.check_choices(f"{MODE}.", self, "models", "backends", "precisions", "memory_formats")


QUICK: dict[str, Any] = dict(models=("lenet5", "resnet18"), compile=("lenet5/fp32/contiguous",),
                             memory_formats=("contiguous", "channels_last"), max_image_size=32,
                             repeats=3, warmup=2, min_time=0.3)  # fmt: skip
"""The throughput settings of ``classic-cnns bench --quick``: two networks at 32 px, few
repeats.

Example:
    >>> from classic_cnns.bench.throughput import QUICK
    >>> QUICK["models"], QUICK["max_image_size"]
    (('lenet5', 'resnet18'), 32)
"""


def math_modes(backend: str, precision: str) -> tuple[str, ...]:
    """The math modes the layers of ``precision`` may run in on ``backend``, lowest first: a
    mixed precision's and fp32 (autocast keeps some ops in fp32), ``"tf32"`` on CUDA when cuDNN
    (``torch.backends.cudnn.allow_tf32``, on by default) or cuBLAS may use TF32.

    Example:
        >>> from classic_cnns.bench.throughput import math_modes
        >>> math_modes("cpu", "bf16-mixed")
        ('bf16', 'fp32')
    """
    tf32 = torch.backends.cudnn.allow_tf32 or torch.get_float32_matmul_precision() != "highest"
    fp32 = "tf32" if backend == "cuda" and tf32 else "fp32"
    low = {"bf16-mixed": "bf16", "fp16-mixed": "fp16"}.get(precision)
    return (fp32,) if low is None else (low, fp32)


def _peak(backend: str, mode: str, seconds: float, rates: dict[str, float]) -> float:
    """The best FLOP/s in `mode` of dense kernels, each for an equal share of `seconds`: square
    matmuls (512 to 2048 on CPUs, for the caches; 4096 and 8192 on GPUs) and a 3x3
    convolution in the math the layers run (cuDNN's TF32 as set), since its library may outrun
    the matmul's (oneDNN against MKL in a run on an AMD EPYC, fp32: 0.3-0.44 against 0.18 TFLOP/s,
    so that networks measured above 1 MFU against matmuls alone). Each kernel's best FLOP/s,
    this call's or an earlier one's in `rates`, is kept there by name (``matmul2048``)."""
    dtype, matmul_precision = _MATH[mode]
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(matmul_precision)
    rand = functools.partial(torch.randn, device=backend, dtype=dtype)
    sizes = (512, 1024, 2048) if backend == "cpu" else (4096, 8192)
    conv = functools.partial(F.conv2d, rand(32, 256, 32, 32), rand(256, 256, 3, 3), padding=1)
    kernels = [("conv3x3", conv, 2 * 32 * 256 * 32 * 32 * 256 * 9)]  # 32 maps of 256 channels
    kernels += [(f"matmul{m}", functools.partial(torch.matmul, rand(m, m), rand(m, m)), 2 * m**3)
                for m in sizes]  # fmt: skip
    try:
        for name, kernel, flops in kernels:
            core.timed(kernel, 1, backend)  # kernel choice
            steps = [core.timed(kernel, 1, backend)]
            while len(steps) < 50 and sum(steps) < seconds / len(kernels):
                steps.append(core.timed(kernel, 1, backend))
            rates[name] = max(flops / min(steps), rates.get(name, 0.0))
    finally:
        torch.set_float32_matmul_precision(previous)
    return max(rates.values())


def fill_mfu(results: core.Results, backend: str, final: bool = True) -> None:
    """Set the peak and MFU of ``backend``'s rows from the fastest peak (of matmuls and a 3x3
    convolution) of the modes :func:`math_modes` allows; with ``final``, flag an MFU above 1
    in the notes (kept).

    Example:
        >>> from classic_cnns.bench.core import Results
        >>> from classic_cnns.bench.throughput import fill_mfu
        >>> results = Results(data={"matmul_peaks": {"cpu/fp32": 2e12}})
        >>> row = results.add("throughput", "cpu", precision="fp32", note=None,
        ...                   train_tflops=0.5, infer_tflops=2.5)
        >>> fill_mfu(results, "cpu")
        >>> row["train_mfu"], row["infer_mfu"], results.notes
        (0.25, 1.25, ['cpu None fp32: MFU above 1 (infer): the fp32 peak was measured too low'])
    """
    found = results.data.get("matmul_peaks", {})
    for row in results.ok(MODE):
        modes = [m for m in math_modes(backend, row["precision"]) if f"{backend}/{m}" in found]
        if row["backend"] != backend or not modes:
            continue
        mode = max(modes, key=lambda m: found[f"{backend}/{m}"])
        row.update(peak_math=mode, peak_tflops=found[f"{backend}/{mode}"] / 1e12)
        for phase in ("train", "infer"):
            row[f"{phase}_mfu"] = core.ratio(row[f"{phase}_tflops"], row["peak_tflops"])
        high = [p for p in ("train", "infer") if (row[f"{p}_mfu"] or 0) > 1]
        if high and final:
            text = f"MFU above 1 ({', '.join(high)}): the {mode} peak was measured too low"
            row["note"] = "; ".join(n for n in (row["note"], text) if n)
            results.note(f"{backend} {row.get('model')} {row['precision']}: {text}")


def plain_loss(out: Any, y: Tensor) -> Tensor:
    """The cross-entropy a plain PyTorch loop trains with: of the logits, plus 0.3 x each
    auxiliary head's where the network returns ``(logits, aux...)`` in training (GoogLeNet, a
    namedtuple as torchvision's).

    Example:
        >>> import torch
        >>> z, y = torch.zeros(4, 10), torch.zeros(4, dtype=torch.long)
        >>> round(float(plain_loss(z, y)), 4), round(float(plain_loss((z, z, z), y)), 4)
        (2.3026, 3.6841)
    """
    z, *aux = out if isinstance(out, tuple) else (out,)
    return sum((0.3 * F.cross_entropy(a, y) for a in aux if a is not None), F.cross_entropy(z, y))


def _steps(net: nn.Module, compiled: bool, x: Tensor, y: Tensor, backend: str,
           precision: str) -> dict[str, Callable[[], None]]:  # fmt: skip
    call = torch.compile(net) if compiled else net
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler(backend, enabled=precision == "fp16-mixed")

    def train() -> None:
        opt.zero_grad(set_to_none=True)
        with core.autocast(backend, precision):
            loss = plain_loss(call(x), y)
        scaler.scale(loss).backward()  # a disabled scaler passes everything through
        scaler.step(opt)
        scaler.update()

    def infer() -> None:
        with torch.inference_mode(), core.autocast(backend, precision):
            call(x)

    return {"train": train, "infer": infer}


@functools.cache
def _flops(name: str, size: tuple[int, int, int]) -> tuple[int, int]:
    """Forward FLOPs per image as the summary counts them (eval mode), and per training image:
    3x the forward in train mode, which runs GoogLeNet's auxiliary heads too (their share
    is taken from torch's FLOP counter, the forward in both modes)."""
    net = _network(name, "classic_cnns", size[0])
    fwd = summary(net, size).total_flops
    counted = []
    for training in (False, True):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            net.train(training)(torch.zeros(2, *size))  # 2: batch norm in train mode
        counted.append(counter.get_total_flops())
    return fwd, round(3 * fwd * counted[1] / counted[0])


def _network(name: str, impl: str, in_channels: int) -> nn.Module:
    if impl == "classic_cnns":
        return model_info(name).build_net(num_classes=10, in_channels=in_channels)
    extra = dict(aux_logits=True, init_weights=True) if name == "googlenet" else {}
    return torchvision.models.get_model(name, num_classes=10, **extra)


def measure(s: Settings, seed: int, name: str, backend: str, precision: str,
            memory_format: str, compiled: bool, results: core.Results) -> None:  # fmt: skip
    """Measure one configuration: a row for the package's network and torchvision's, with a
    provisional MFU (the run's last peaks set it again).

    Example:
        >>> from classic_cnns.bench.core import Results
        >>> from classic_cnns.bench.throughput import Settings, measure
        >>> s, results = Settings(batch_size=4, repeats=2, warmup=1, min_time=0), Results()
        >>> measure(s, 0, "lenet5", "cpu", "fp32", "contiguous", False, results)
        >>> row = results.ok("throughput")[0]
        >>> row["impl"], row["input_size"], row["train_ips_median"] > 0
        ('classic_cnns', '1x32x32', True)
    """
    size = (model_info(name).input_size[0], *core.image_size(name, max_size=s.max_image_size))
    fwd, train_flops = _flops(name, size)
    batch = s.batch_size or (128 if fwd < 10e6 else 32)  # tiny networks need larger batches
    impls = ["classic_cnns", *(["torchvision"] if name in TORCHVISION else [])]
    base: dict[str, Any] = dict(model=name, precision=precision, memory_format=memory_format)
    base |= dict(compile=compiled, batch_size=batch, input_size="x".join(map(str, size)))
    base |= dict(fwd_flops_per_image=fwd, train_flops_per_image=train_flops)
    base |= dict(repeats=s.repeats, warmup_steps=s.warmup)
    if reason := core.unavailable(backend, precision):
        for impl in impls:
            results.add(MODE, backend, "skipped", note=reason, impl=impl, **base)
        return
    torch.compiler.reset()  # earlier graphs would count toward the recompilation limit
    fmt, gen = _FORMAT[memory_format], torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *size, generator=gen).to(backend).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,), generator=gen).to(backend)
    nets, steps, one, mib, warm = {}, {}, {}, {}, dict.fromkeys(impls, 0.0)
    cuda = backend == "cuda"  # peak memory: CUDA's allocator's, above the memory in use before
    for impl in impls:  # the network was built (its weights, state and activations count)
        torch.manual_seed(seed)
        used = torch.cuda.memory_allocated() if cuda else 0
        nets[impl] = _network(name, impl, size[0]).to(backend).to(memory_format=fmt)
        steps[impl] = _steps(nets[impl], compiled, x, y, backend, precision)
        for phase in ("infer", "train"):  # inference first, before the optimizer holds state
            nets[impl].train(phase == "train")
            warm[impl] += core.timed(steps[impl][phase], s.warmup, backend)
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            one[impl, phase] = core.timed(steps[impl][phase], 1, backend)  # sizes the repeats
            mib[impl, phase] = (torch.cuda.max_memory_allocated() - used) / 2**20 if cuda else None
    ips, counts = {key: list[float]() for key in one}, dict[str, int]()
    for phase in ("train", "infer"):  # the package's step time sets both networks' steps
        wanted = math.ceil(s.min_time / one["classic_cnns", phase])
        n = counts[phase] = max(1, min(MAX_STEPS, wanted))
        for impl in impls:
            nets[impl].train(phase == "train")
            steps[impl][phase]()  # one untimed step after the mode switch
        for _, impl in product(range(s.repeats), impls):
            ips[impl, phase].append(n * batch / core.timed(steps[impl][phase], n, backend))
    shrunk = max(size[1:]) > (s.max_image_size or math.inf)  # (C, H, W): not C
    small = "kept at the model's minimum input size" if shrunk else None
    rows = {}
    for impl in impls:  # each row whole before it joins the results
        row: dict[str, Any] = dict(warmup_s=warm[impl], **{f"{p}_steps": counts[p] for p in counts})
        for phase, flops in (("train", train_flops), ("infer", fwd)):
            row |= core.spread(f"{phase}_ips", ips[impl, phase])
            row[f"{phase}_tflops"] = flops * row[f"{phase}_ips_median"] / 1e12
            row[f"{phase}_peak_mib"] = mib[impl, phase]
        later = ("peak_math", "peak_tflops", "train_mfu", "infer_mfu", "vs_torchvision_train")
        row |= dict.fromkeys((*later, "vs_torchvision_infer"))  # filled in below and by fill_mfu
        rows[impl] = results.add(MODE, backend, impl=impl, note=small, **base, **row)
    ours, tv = rows["classic_cnns"], rows.get("torchvision", {})
    for p in ("train", "infer"):
        ours[f"vs_torchvision_{p}"] = core.ratio(ours[f"{p}_ips_median"], tv.get(f"{p}_ips_median"))
    fill_mfu(results, backend, final=False)


def tasks(s: Settings, seed: int) -> list[core.Task]:
    """Per backend: the peaks (of matmuls and a convolution), every configuration (then
    provisional MFU), the peaks again and the final MFU. Raises ``ValueError`` for a name
    that is not registered.

    Example:
        >>> from classic_cnns.bench.throughput import Settings, tasks
        >>> s = Settings(models=("lenet*",), backends=("cpu",), precisions=("fp32",), compile=())
        >>> [t.label for t in tasks(s, seed=0)]
        ['peak cpu', 'throughput lenet5 cpu fp32 contiguous eager',
         'throughput lenet5_bn cpu fp32 contiguous eager',
         'throughput lenet5_modern cpu fp32 contiguous eager', 'peak cpu again, MFU']
    """
    models: list[str] = []
    for p in s.models:
        found = list_models("*" if p == "all" else p) if set(p) & set("*?[") or p == "all" else [p]
        if not found:
            raise ValueError(f"--throughput.models: no registered model matches {p!r}")
        models += [model_info(n).name for n in found if n not in models]  # suggests on a typo

    def peaks(backend: str, final: bool, results: core.Results) -> None:
        found, kernels = (results.data.setdefault(k, {}) for k in ("matmul_peaks", "kernel_peaks"))
        for p in s.precisions:
            for mode in math_modes(backend, p) if not core.unavailable(backend, p) else ():
                rates = kernels.setdefault(key := f"{backend}/{mode}", {})  # each kernel's best
                found[key] = _peak(backend, mode, min(2.0, max(0.1, 2 * s.min_time)), rates)
        fill_mfu(results, backend, final)

    out = []
    for backend in s.backends:
        if reason := core.unavailable(backend):  # one skipped row
            named: dict[str, Any] = dict(models=" ".join(models))
            skip = functools.partial(core.Results.add, mode=MODE, backend=backend, note=reason,
                                     status="skipped", **named)  # fmt: skip
            out.append(core.Task(f"throughput {backend} (skipped)", skip, MODE, backend, named))
            continue
        first, last = (functools.partial(peaks, backend, final) for final in (False, True))
        out.append(core.Task(f"peak {backend}", first, MODE, backend, rows=False))
        configs = list(product(models, s.precisions, s.memory_formats))
        compiled_too = [c for c in configs if any(fnmatchcase("/".join(c), p) for p in s.compile)]
        # Every eager configuration first, then the compiled ones (compiling takes minutes).
        for (name, precision, fmt), compiled in [*product(configs, [False]),
                                                 *product(compiled_too, [True])]:  # fmt: skip
            label = f"{name} {backend} {precision} {fmt} {('eager', 'compiled')[compiled]}"
            label += " (skipped)" if core.unavailable(backend, precision) else ""  # fp16, CPU
            fields: dict[str, Any] = dict(model=name, impl="classic_cnns", precision=precision)
            fields |= dict(memory_format=fmt, compile=compiled)
            run = functools.partial(measure, s, seed, name, backend, precision, fmt, compiled)
            out.append(core.Task(f"throughput {label}", run, MODE, backend, fields))
        out.append(core.Task(f"peak {backend} again, MFU", last, MODE, backend, closing=True,
                             rows=False))  # fmt: skip
    return out


def _label(row: dict[str, Any], where: bool = False) -> str:
    label = f"{row['precision']} / {row['memory_format']} / {('eager', 'compiled')[row['compile']]}"
    return f"{row['model']}, {row['backend']}: {label}" if where else label


def report(results: core.Results, out: Path | None) -> list[str]:
    """The report's throughput section (and ``throughput.png`` in ``out``, if given).

    Example:
        >>> from classic_cnns.bench.core import Results
        >>> from classic_cnns.bench.throughput import report
        >>> results = Results()
        >>> _ = results.add("throughput", "cuda", "skipped", note="no CUDA device", model="vgg11")
        >>> report(results, None), report(Results(), None)  # skipped: in the notes alone
        ([], [])
    """
    if not results.ok(MODE):
        return []
    rows, groups = results.ok(MODE), {}  # type: ignore[var-annotated]
    for r in rows:
        groups.setdefault((r["backend"], r["model"]), []).append(r)
    peaks = results.data.get("matmul_peaks", {})
    each = " (each in `kernel_peaks`)" if results.data.get("kernel_peaks") else ""  # older: none
    text = ("Images per second, median [quartiles] over alternating repeats; MFU against the peak "
            "of the fastest math mode the layers may use (`peak`); `vs tv`: the package's median "
            "over torchvision's; `train MiB`: CUDA's peak memory in a training step (– elsewhere). "
            f"Peaks (TFLOP/s), the best of matmuls and a 3x3 convolution{each}: "
            + ", ".join(f"{k} {v / 1e12:.3g}" for k, v in peaks.items()) + ".")  # fmt: skip
    header = "model|backend|batch|input|impl|precision / format / compile|train img/s|infer img/s"
    header += "|train MFU|infer MFU|peak|vs tv train|vs tv infer|train MiB|warm-up s"
    keys = ("train_mfu", "infer_mfu", "peak_math", "vs_torchvision_train", "vs_torchvision_infer")
    body = [[r["model"], r["backend"], r["batch_size"], r["input_size"], r["impl"], _label(r),
             core.quartiles(r, "train_ips"), core.quartiles(r, "infer_ips"),
             *(r[k] for k in (*keys, "train_peak_mib", "warmup_s"))] for r in rows]  # fmt: skip
    lines = ["## Throughput", "", text, "", *core.table(header.split("|"), body)]
    best, advice = [], {}  # type: ignore[var-annotated]
    for (backend, model), group in groups.items():
        ours = {_label(r): r for r in group if r["impl"] == "classic_cnns"}
        cells = [model, f"{backend} ({group[0]['device_name']}, {group[0]['threads']} threads)"]
        for phase, verb in (("train", "train"), ("infer", "run inference")):
            key = f"{phase}_ips_median"
            win = max(ours, key=lambda label: ours[label][key])
            gain = core.ratio(ours[win][key], ours.get("fp32 / contiguous / eager", {}).get(key))
            times = f" (×{gain:.2f})" if gain else ""
            cells.append(f"{win}: {ours[win][key]:,.0f} img/s{times}")
            advice.setdefault((backend, verb), {}).setdefault(win, []).append(model)
        best.append(cells)
    header = "model|backend|training (× fp32 / contiguous / eager)|inference"
    lines += ["### Best configuration per model", "", *core.table(header.split("|"), best)]
    for (backend, verb), won in advice.items():
        choices = "; ".join(f"{c} ({', '.join(m)})" for c, m in won.items())
        lines.append(f"- On {backend}, {verb} with {choices}.")
    if out is None or not rows:
        return [*lines, ""]
    require_matplotlib("throughput.report")  # out given: a figure is drawn
    from matplotlib.figure import Figure

    labels = list(dict.fromkeys(_label(r, where=True) for r in rows))
    fig = Figure(figsize=(12, 1 + 0.3 * len(labels)), layout="constrained")
    for ax, phase in zip(fig.subplots(1, 2, sharey=True), ("train", "infer"), strict=True):
        for offset, impl in ((-0.2, "classic_cnns"), (0.2, "torchvision")):
            mine = [r for r in rows if r["impl"] == impl]
            ys = [labels.index(_label(r, where=True)) + offset for r in mine]
            ax.barh(ys, [r[f"{phase}_ips_median"] for r in mine], height=0.4, label=impl)
        ax.set(xscale="log", xlabel=f"{phase} images/s (median)", yticks=range(len(labels)))
    fig.axes[0].set_yticklabels(labels, fontsize=7)
    fig.axes[0].invert_yaxis()
    fig.axes[0].legend(fontsize=8)
    save_png(fig, out / "throughput.png")
    return [*lines, "", "![throughput](throughput.png)", ""]
