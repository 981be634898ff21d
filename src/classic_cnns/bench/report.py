"""Writing a run's results: CSV per mode, one JSON, and a Markdown report.

Files in the output folder:

* ``<mode>.csv``: one row per configuration, columns :data:`MODE_COLUMNS` of the mode;
* ``results.json``: settings, environment, matmul peaks, notes, all rows, curves and
  confusion matrices;
* ``curves.csv``: the accuracy-vs-time and optimizer curves, one point per line;
* ``report.md``: the tables, the targets given (``--targets``) with their measured values,
  notes and plots.

Example:
    >>> from classic_cnns.bench.report import fmt
    >>> fmt(1234.5678), fmt(0.031, pct=True), fmt(None)
    ('1,235', '3.1%', '–')
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from classic_cnns.bench._common import MODE_COLUMNS, MODES, Results, environment
from classic_cnns.bench._data import DATASETS

__all__ = ["best_configs", "fmt", "read_targets", "targets", "write_all", "write_markdown"]

_BASE_CONFIG = ("fp32", "contiguous", False)
# An option is reported as slower below this ratio of medians, and only where the two
# interquartile ranges do not overlap: closer calls are within timing noise.
SLOWER = 0.95
# Interquartile range above this fraction of the median: the cell is marked noisy (⚠).
NOISY = 0.25


def fmt(value: Any, digits: int | None = None, pct: bool = False) -> str:
    """A table cell: thousands separators for large numbers, ``–`` for missing values.

    Example:
        >>> from classic_cnns.bench.report import fmt
        >>> fmt(0.98765, 3), fmt(12.3456)
        ('0.988', '12.35')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if pct:
        return f"{100 * value:.{1 if digits is None else digits}f}%"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if digits is not None:
            return f"{value:,.{digits}f}"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3g}"
    return str(value)


def _table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _ok(results: Results, mode: str) -> list[dict[str, Any]]:
    return [r for r in results.rows.get(mode, []) if r["status"] == "ok"]


def _config(row: dict[str, Any]) -> tuple[str, str, bool]:
    return (row["precision"], row["memory_format"], bool(row["compile"]))


def _config_label(row: dict[str, Any]) -> str:
    compiled = "compiled" if row["compile"] else "eager"
    return f"{row['precision']} / {row['memory_format']} / {compiled}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1f}%"


def _noisy(row: dict[str, Any], prefix: str) -> bool:
    median, q1, q3 = (row[f"{prefix}_{s}"] for s in ("median", "q1", "q3"))
    return bool(median) and (q3 - q1) / median > NOISY


def _spread(row: dict[str, Any], prefix: str) -> str:
    median = row[f"{prefix}_median"]
    if median is None:
        return "–"
    text = f"{fmt(median)} [{fmt(row[f'{prefix}_q1'])}–{fmt(row[f'{prefix}_q3'])}]"
    return text + (" ⚠" if _noisy(row, prefix) else "")


# --------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------


def best_configs(results: Results) -> list[dict[str, Any]]:
    """Per backend and model, the fastest training and inference configuration.

    Returns dicts with ``backend``, ``model``, ``train`` and ``infer`` (the winning rows)
    and ``base`` (the fp32 / contiguous / eager row, if measured).

    Example:
        >>> from classic_cnns.bench import BenchConfig, Results
        >>> from classic_cnns.bench.report import best_configs
        >>> best_configs(Results(BenchConfig()))
        []
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in _ok(results, "throughput"):
        if row["impl"] == "classic_cnns":
            groups.setdefault((row["backend"], row["model"]), []).append(row)
    out = []
    for (backend, model), rows in groups.items():
        base = next((r for r in rows if _config(r) == _BASE_CONFIG), None)
        out.append(
            dict(
                backend=backend,
                model=model,
                train=max(rows, key=lambda r: r["train_ips_median"] or 0),
                infer=max(rows, key=lambda r: r["infer_ips_median"] or 0),
                base=base,
            )
        )
    return out


def _advice(best: list[dict[str, Any]]) -> list[str]:
    """One line per backend and phase: which configuration was fastest for which models.

    Example:
        >>> from classic_cnns.bench.report import _advice
        >>> row = dict(device_name="CPU", precision="fp32", memory_format="contiguous",
        ...            compile=False)
        >>> _advice([dict(backend="cpu", model="lenet5", train=row, infer=row)])[0]
        '- On cpu (CPU), train with fp32 / contiguous / eager (lenet5).'
    """
    lines = []
    for backend in dict.fromkeys(b["backend"] for b in best):
        group = [b for b in best if b["backend"] == backend]
        for phase, verb in (("train", "train with"), ("infer", "run inference with")):
            winners: dict[str, list[str]] = {}
            for b in group:
                winners.setdefault(_config_label(b[phase]), []).append(b["model"])
            choices = "; ".join(f"{c} ({', '.join(models)})" for c, models in winners.items())
            lines.append(f"- On {backend} ({group[0][phase]['device_name']}), {verb} {choices}.")
    return lines


def _slower_notes(results: Results) -> list[str]:
    """Where bf16, channels_last or compile is slower (× < ``SLOWER``) than without it."""
    notes = []
    rows = [r for r in _ok(results, "throughput") if r["impl"] == "classic_cnns"]
    index = {(r["backend"], r["model"], *_config(r)): r for r in rows}
    changes = (
        ("bf16-mixed", lambda c: ("bf16-mixed", c[1], c[2]), lambda c: c[0] == "fp32"),
        ("channels_last", lambda c: (c[0], "channels_last", c[2]), lambda c: c[1] == "contiguous"),
        ("torch.compile", lambda c: (c[0], c[1], True), lambda c: not c[2]),
    )
    for what, change, applies in changes:
        for r in rows:
            cfg = _config(r)
            if not applies(cfg):
                continue
            other = index.get((r["backend"], r["model"], *change(cfg)))
            if other is None:
                continue
            parts = []
            for phase in ("train", "infer"):
                x = other[f"{phase}_ips_median"] / r[f"{phase}_ips_median"]
                apart = other[f"{phase}_ips_q3"] < r[f"{phase}_ips_q1"]
                if x < SLOWER and apart:
                    parts.append(f"{'training' if phase == 'train' else 'inference'} ×{x:.2f}")
            if parts:
                notes.append(
                    f"On this {r['backend'].upper() if r['backend'] != 'cpu' else 'CPU'}, "
                    f"{what} is **slower** for {r['model']} than {_config_label(r)}: "
                    + ", ".join(parts)
                )
    return notes


def read_targets(path: Path) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Read a targets file: ``(time_to_accuracy, targets)`` for :class:`BenchConfig`.

    The file (``benchmarks/targets.json`` is one) is JSON with ``"time_to_accuracy"``
    (recipe name -> test accuracy) and ``"targets"``: dicts with ``text``, ``mode``,
    ``where`` (column -> value, or a list of allowed values), ``column`` (one or a list)
    and ``min`` and/or ``max``.

    Raises:
        ValueError: naming the file and the entry that is malformed.

    Example:
        >>> import json, tempfile
        >>> from pathlib import Path
        >>> from classic_cnns.bench.report import read_targets
        >>> path = Path(tempfile.mkdtemp()) / "targets.json"
        >>> target = {"text": "fast", "mode": "pipeline", "column": "speedup", "min": 2}
        >>> _ = path.write_text(json.dumps({"targets": [target]}))
        >>> read_targets(path)[1][0]["min"]
        2
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read the targets file {path}: {err}") from err
    accs = data.get("time_to_accuracy", {})
    if not all(isinstance(v, int | float) and 0 < v <= 1 for v in accs.values()):
        raise ValueError(f"{path}: time_to_accuracy values must be accuracies in (0, 1]")
    found = data.get("targets", [])
    for t in found:
        columns = MODE_COLUMNS.get(t.get("mode"), ())
        column = t.get("column") or []
        named = [column] if isinstance(column, str) else [*column]
        named += list(t.get("where", {}))
        if not t.get("text") or not columns or not named or set(named) - set(columns):
            raise ValueError(
                f"{path}: target {t!r} needs 'text', a 'mode' of {MODES} and 'column' and "
                "'where' keys among that mode's columns"
            )
        if "min" not in t and "max" not in t:
            raise ValueError(f"{path}: target {t['text']!r} has neither 'min' nor 'max'")
    return {str(k): float(v) for k, v in accs.items()}, found


def targets(results: Results) -> list[tuple[str, str, str]]:
    """The run's targets (:attr:`BenchConfig.targets`): ``(text, measured, verdict)`` each.

    A target's rows are the ``ok`` rows of its mode that match its ``where``. Its verdict
    is ``met`` when every value of its column(s) in them lies within ``min`` and ``max``,
    ``not met`` when one does not (a missing value, such as an accuracy never reached, is
    not met), ``not measured`` without rows. Verdicts are measurements of this run on this
    machine and load, never assertions.

    Example:
        >>> from classic_cnns.bench import BenchConfig, Results
        >>> from classic_cnns.bench.report import targets
        >>> target = {"text": "fast", "mode": "pipeline", "column": "speedup", "min": 2}
        >>> targets(Results(BenchConfig(targets=[target])))
        [('fast', '–', 'not measured')]
    """
    out = []
    for t in results.config.targets:
        where = {k: v if isinstance(v, list) else [v] for k, v in t.get("where", {}).items()}
        rows = [r for r in _ok(results, t["mode"]) if all(r[k] in v for k, v in where.items())]
        columns = [t["column"]] if isinstance(t["column"], str) else t["column"]
        low, high = t.get("min", -math.inf), t.get("max", math.inf)
        values = [(r, c, r[c]) for r in rows for c in columns]
        met = all(v is not None and low <= v <= high for _, _, v in values)
        found = [v for _, _, v in values if v is not None]
        if len(values) > 4:  # many rows (every configuration): the range, and what is missing
            missing = len(values) - len(found)
            measured = f"{len(values)} values" + (
                f", {fmt(min(found), 3)} to {fmt(max(found), 3)}" if found else ""
            )
            measured += f", {missing} missing" if missing else ""
        else:
            several = len(rows) > 1
            measured = "; ".join(
                (f"{r.get('run') or r.get('model')} " if several else "") + f"{c} {fmt(v, 3)}"
                for r, c, v in values
            )
        verdict = "not measured" if not rows else ("met" if met else "not met")
        out.append((t["text"], measured or "–", verdict))
    return out


# --------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def write_csv(results: Results, out: Path) -> list[str]:
    """Write ``<mode>.csv`` for every mode with rows and ``curves.csv``; return file names."""
    written = []
    for mode in MODES:
        rows = results.rows.get(mode)
        if not rows:
            continue
        with (out / f"{mode}.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(MODE_COLUMNS[mode]))
            writer.writeheader()
            writer.writerows(rows)
        written.append(f"{mode}.csv")
    if results.curves:
        fields = ["kind", "run", "epoch", "step", "train_s", "test_acc", "train_loss", "loss"]
        with (out / "curves.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            for kind, runs in results.curves.items():
                for run, points in runs.items():
                    for point in points:
                        writer.writerow({"kind": kind, "run": run, **point})
        written.append("curves.csv")
    return written


def write_json(results: Results, out: Path, argv: list[str] | None = None) -> str:
    """Write ``results.json`` (everything the run measured); return its name."""
    payload = {
        "started": results.started,
        "wall_s": results.wall_s,
        "argv": argv,
        "config": dataclasses.asdict(results.config),
        "environment": environment("cpu"),
        "matmul_peaks_flops": results.matmul_peaks,
        "task_s": results.task_s,
        "notes": results.notes,
        "columns": {mode: list(cols) for mode, cols in MODE_COLUMNS.items()},
        "rows": results.rows,
        "curves": results.curves,
        "confusion": results.confusion,
        "targets": [
            dict(zip(("text", "measured", "verdict"), t, strict=True)) for t in targets(results)
        ],
    }
    (out / "results.json").write_text(json.dumps(_jsonable(payload), indent=1) + "\n")
    return "results.json"


def _throughput_section(results: Results) -> list[str]:
    rows = results.rows.get("throughput", [])
    if not rows:
        return []
    lines = ["## Throughput", ""]
    lines.append(
        "Images per second, median [interquartile range] over repeats, warm-up excluded. "
        "Training = forward, loss, backward and SGD step; inference = forward under "
        "`torch.inference_mode()`. MFU = achieved FLOP/s (3× forward FLOPs per training "
        "image, 1× per inference image) over the peak of the math the layers may use "
        "(`peak`: TF32 for fp32 on CUDA where cuDNN/cuBLAS allow it, bf16 / fp16 for the "
        "mixed precisions, else fp32), the best large-matmul rate in that mode measured "
        "before and after the configurations of this run. `vs tv` = this package's median "
        "/ torchvision's median, measured alternately in the same run. Peak memory is read "
        "while each model warms up alone."
    )
    lines.append("")
    ok = [r for r in rows if r["status"] == "ok"]
    keys = sorted({(r["backend"], r["model"]) for r in ok}, key=lambda k: (k[0], k[1]))
    for backend, model in keys:
        group = [r for r in ok if r["backend"] == backend and r["model"] == model]
        first = group[0]
        lines.append(
            f"### {model} on {backend} ({first['device_name']}, {first['threads']} threads), "
            f"batch {first['batch_size']}, input {first['input_size']}"
        )
        lines.append("")
        header = [
            "impl",
            "precision / format / compile",
            "train img/s",
            "infer img/s",
            "train MFU",
            "infer MFU",
            "peak",
            "train peak MB",
            "infer peak MB",
            "vs tv train",
            "vs tv infer",
            "warm-up s",
        ]
        body = [
            [
                r["impl"],
                _config_label(r),
                _spread(r, "train_ips"),
                _spread(r, "infer_ips"),
                fmt(r["train_mfu"], pct=True),
                fmt(r["infer_mfu"], pct=True),
                f"{r['peak_math']} {fmt(r['peak_tflops'])} TFLOP/s" if r["peak_math"] else "–",
                fmt(r["train_peak_mem_mb"]),
                fmt(r["infer_peak_mem_mb"]),
                fmt(r["vs_torchvision_train"], 3),
                fmt(r["vs_torchvision_infer"], 3),
                fmt(r["warmup_s"]),
            ]
            for r in group
        ]
        lines += _table(header, body)
    best = best_configs(results)
    if best:
        lines += ["### Best configuration per model", ""]
        body = []
        for b in best:
            base = b["base"]
            gain_t = b["train"]["train_ips_median"] / base["train_ips_median"] if base else None
            gain_i = b["infer"]["infer_ips_median"] / base["infer_ips_median"] if base else None
            body.append(
                [
                    b["model"],
                    b["backend"],
                    f"{_config_label(b['train'])}: {fmt(b['train']['train_ips_median'])} img/s"
                    + (f" (×{gain_t:.2f})" if gain_t else ""),
                    f"{_config_label(b['infer'])}: {fmt(b['infer']['infer_ips_median'])} img/s"
                    + (f" (×{gain_i:.2f})" if gain_i else ""),
                ]
            )
        lines += _table(
            ["model", "backend", "best training (× vs fp32/contiguous/eager)", "best inference"],
            body,
        )
        lines += [*_advice(best), ""]
    slower = _slower_notes(results)
    if slower:
        lines += [
            "### Where an option is slower",
            "",
            f"Compared with the same configuration without it; listed below ×{SLOWER} where "
            "the interquartile ranges do not overlap.",
            "",
            *[f"- {n}" for n in slower],
            "",
        ]
    return lines


def _overhead_section(results: Results) -> list[str]:
    rows = _ok(results, "overhead")
    if not rows:
        return []
    r0 = rows[0]
    lines = [
        "## Lightning overhead",
        "",
        f"{r0['repeats']} fits of {r0['epochs_per_fit']} epochs per loop, alternating; the "
        "first epoch of each fit is warm-up. Same weights, data order, optimizer, schedule, "
        "precision and memory format in every loop. `network` is the hand-written step on "
        "one batch already on the device (the network's own training speed, no data "
        "loading); `lightning` is the package's LightningModule under `Trainer.fit` (what "
        "`fit` does per step); `lightning_bare` the same Trainer with a `training_step` that "
        "only computes the loss (no label check, metrics or logging). `vs network` = images/s "
        "over the `network` loop's; overheads are against the hand-written loop. Trainer "
        f"flags: `{next((r['trainer_flags'] for r in rows if r['trainer_flags']), '')}`.",
        "",
    ]
    for key in dict.fromkeys((r["setting"], r["backend"]) for r in rows):
        group = [r for r in rows if (r["setting"], r["backend"]) == key]
        g = group[0]
        lines += [
            f"### {g['model']} on {g['dataset']}, {g['backend']} ({g['device_name']}): input "
            f"{g['input_size']}, batch {g['batch_size']}, {g['precision']}, "
            f"{g['memory_format']}, {g['images_per_epoch']:,} images per epoch",
            "",
        ]
        body = [
            [
                r["loop"],
                _spread(r, "epoch_s"),
                fmt(r["ips"]),
                "–" if r["vs_network"] is None else f"×{r['vs_network']:.2f}",
                _pct(r["overhead_pct"]),
                fmt(r["step_ms_median"]),
                _pct(r["overhead_step_pct"]),
            ]
            for r in group
        ]
        lines += _table(
            [
                "loop",
                "epoch s",
                "img/s",
                "vs network",
                "overhead (epoch)",
                "median step ms",
                "overhead (median step)",
            ],
            body,
        )
    return [
        *lines,
        "A step is the interval between two optimizer-step ends (fetch, transfer, transform, "
        "forward, backward, step, hooks). Other processes lengthen a few steps but barely move "
        "the median, so on a shared machine the median-step overhead is the steadier figure.",
        "",
    ]


def _pipeline_section(results: Results) -> list[str]:
    rows = _ok(results, "pipeline")
    if not rows:
        return []
    lines = [
        "## Data pipeline",
        "",
        f"One shuffled epoch of the {rows[0]['dataset']} training split "
        f"({rows[0]['images']:,} images, batch {rows[0]['batch_size']}, "
        f"num_workers={rows[0]['num_workers']}) to normalised float 32x32 batches on the CPU; "
        f"{rows[0]['repeats']} alternating repeats. Same first batch from both pipelines: "
        f"{fmt(rows[0]['outputs_match'])}.",
        "",
    ]
    body = [
        [
            r["pipeline"],
            r["description"],
            _spread(r, "epoch_s"),
            fmt(r["ips"]),
            "–" if r["speedup"] is None else f"×{r['speedup']:.1f}",
        ]
        for r in rows
    ]
    return lines + _table(
        ["pipeline", "what it does", "epoch s", "img/s", "classic_cnns speed-up"], body
    )


def _accuracy_section(results: Results, plots: list[str]) -> list[str]:
    rows = results.rows.get("accuracy", [])
    if not rows:
        return []
    lines = [
        "## Accuracy",
        "",
        "Seeded recipes through `Trainer.fit` on the package's datamodules; test accuracy "
        "after every epoch with the clock stopped. `train s` excludes those evaluations; "
        "`time to accuracy` is the training time at the first evaluation at or above the "
        "accuracy the run was given (an upper bound at epoch granularity). SGD is Nesterov "
        "SGD (the task's `sgd` with momentum > 0).",
        "",
    ]
    body = []
    for r in rows:
        recipe = (
            f"{r['optimizer']} lr {r['lr']:g}, {r['scheduler']}, batch {r['batch_size']}, "
            f"{r['epochs']} ep, {r['image_size']} px, {r['precision']}, {r['memory_format']}"
            if r["optimizer"]
            else "–"
        )
        if r["status"] != "ok":
            body.append(
                [
                    r["run"],
                    recipe,
                    r["status"],
                    "–",
                    "–",
                    "–",
                    fmt(r["reference_error_pct"]),
                    "see notes",
                ]
            )
            continue
        reached = "–"
        if r["target_acc"] is not None:
            reached = (
                f"{100 * r['target_acc']:.1f}% in {r['time_to_target_s']:.1f} s"
                if r["time_to_target_s"] is not None
                else f"{100 * r['target_acc']:.1f}% not reached"
            )
        body.append(
            [
                r["run"],
                recipe,
                f"{r['backend']} ({r['threads']} thr)",
                fmt(r["train_s"], 1),
                f"{100 * r['final_test_acc']:.2f}%",
                f"{r['final_test_error_pct']:.2f}%",
                fmt(r["reference_error_pct"]) + ("%" if r["reference_error_pct"] else ""),
                reached,
            ]
        )
    lines += _table(
        [
            "run",
            "recipe",
            "backend",
            "train s",
            "test acc",
            "test error",
            "reference error",
            "time to accuracy",
        ],
        body,
    )
    refs = sorted({(r["run"], r["reference"]) for r in rows if r["reference"]})
    lines += [f"- {run}: reference {ref}" for run, ref in refs]
    if refs:
        lines.append("")
    lines += [f"- `{name}`: {desc}" for name, desc in DATASETS.items()] + [""]
    lines += [f"![{p}]({p})" for p in plots if p.startswith(("accuracy", "confusion"))]
    return [*lines, ""]


def _optimizer_section(results: Results, plots: list[str]) -> list[str]:
    rows = results.rows.get("optimizers", [])
    if not rows:
        return []
    ok = [r for r in rows if r["status"] == "ok"]
    lines = ["## Optimizers", ""]
    if ok:
        lines += [
            f"{ok[0]['model']} on {ok[0]['dataset']}, {ok[0]['epochs']} epochs at a constant "
            "learning rate each, the same initial weights and data order.",
            "",
        ]
    body = [
        [
            r["label"],
            r["optimizer"] or "–",
            fmt(r["lr"]),
            fmt(r["momentum"]),
            fmt(r["weight_decay"]),
            fmt(r["final_train_loss"], 4),
            "–" if r["final_test_acc"] is None else f"{100 * r['final_test_acc']:.2f}%",
            fmt(r["train_s"], 1),
            r["status"],
        ]
        for r in rows
    ]
    lines += _table(
        [
            "optimizer",
            "task optimizer",
            "lr",
            "momentum",
            "weight decay",
            "final train loss",
            "test acc",
            "train s",
            "status",
        ],
        body,
    )
    return lines + [f"![{p}]({p})" for p in plots if p.startswith("optimizers")] + [""]


def _scaling_section(results: Results, plots: list[str]) -> list[str]:
    rows = results.rows.get("scaling", [])
    ok = [r for r in rows if r["status"] == "ok"]
    if not rows:
        return []
    lines = ["## Scaling (DDP)", ""]
    if ok:
        r0 = ok[0]
        lines += [
            f"{r0['model']} trained on {r0['dataset']} with `Trainer.fit`, batch "
            f"{r0['batch_size']} per process at every process count (weak scaling: n "
            "processes share each epoch, n times fewer steps of an n times larger global "
            f"batch), {r0['epochs']} epochs per configuration, the first one warm-up. One "
            'process is a plain single-device Trainer; more are `strategy="ddp"` worker '
            "processes (gloo on the CPU, NCCL on CUDA). Images/s = every process's images per "
            "epoch / epoch wall time on rank 0 between barriers (median [interquartile range] "
            "over epochs). Efficiency = images/s at n processes / (n × images/s of 1 process "
            "at the same threads per process), from this run: 1.0 is perfect scaling.",
            "",
            "On a CPU the processes share the same cores, so each gets `threads // n` torch "
            "threads and the honest question is the last column: images/s against 1 process "
            "with all threads (the same total cores). Efficiency instead holds the cores per "
            "process fixed, the view that carries over to adding GPUs or machines. On CUDA "
            "each process has a GPU of its own and efficiency is the figure to read.",
            "",
        ]
    body = [
        [
            r["backend"],
            fmt(r["processes"]),
            fmt(r["threads_per_process"]),
            r["strategy"] or "–",
            _spread(r, "epoch_s") if r["status"] == "ok" else r["status"],
            fmt(r["ips"]),
            fmt(r["efficiency"], 2),
            "–"
            if r["vs_one_process_all_threads"] is None
            else f"×{r['vs_one_process_all_threads']:.2f}",
            r["note"] or "",
        ]
        for r in rows
    ]
    lines += _table(
        [
            "backend",
            "processes",
            "threads/process",
            "strategy",
            "epoch s",
            "img/s",
            "efficiency",
            "vs 1 process, all threads",
            "note",
        ],
        body,
    )
    return lines + [f"![{p}]({p})" for p in plots if p.startswith("scaling")] + [""]


def _load_warning(results: Results) -> list[str]:
    """A warning when the machine was busier than its CPU count during the run."""
    loads = [r["load_1m"] for rows in results.rows.values() for r in rows if r["load_1m"]]
    cpus = os.cpu_count() or 1
    if not loads or max(loads) <= 1.25 * cpus:  # its own threads load the machine up to cpus
        return []
    return [
        f"> **The machine was busy**: its 1-minute load average reached {max(loads):.1f} on "
        f"{cpus} logical CPUs during this run (column `load_1m`). Timings, above all "
        "multi-threaded CPU ones, are disturbed; ratios are still from alternating "
        "measurements of one run, but their spread is wide (⚠ marks an interquartile range "
        f"over {NOISY:.0%} of the median).",
        "",
    ]


def write_markdown(
    results: Results, out: Path, plots: list[str], argv: list[str] | None = None
) -> str:
    """Write ``report.md``; return its name."""
    env = environment("cpu")
    lines = [
        "# classic-cnns benchmark report",
        "",
        f"Started {results.started}, wall time {fmt(results.wall_s, 0)} s. "
        f"Command: `classic-cnns bench {' '.join(argv or [])}`",
        "",
    ]
    lines += _table(
        ["machine", "CPU threads", "torch", "torchvision", "lightning", "python", "platform"],
        [
            [
                env["device_name"],
                str(env["threads"]),
                env["torch"],
                env["torchvision"],
                env["lightning"],
                env["python"],
                env["platform"],
            ]
        ],
    )
    devices = {
        f"{r['backend']}: {r['device_name']}" for rows in results.rows.values() for r in rows
    }
    if devices:
        lines += [f"Devices: {'; '.join(sorted(devices))}.", ""]
    if results.matmul_peaks:
        peaks = ", ".join(f"{k}: {v / 1e12:.3f} TFLOP/s" for k, v in results.matmul_peaks.items())
        lines += [f"Matmul peaks measured in this run: {peaks}.", ""]
    lines += _load_warning(results)
    if results.config.targets:
        lines += ["## Targets", "", "Measured in this run, never asserted by the tests.", ""]
        lines += _table(["target", "measured", "verdict"], [list(t) for t in targets(results)])
    lines += _throughput_section(results)
    lines += [f"![{p}]({p})" for p in plots if p.startswith("throughput")] + [""]
    lines += _overhead_section(results)
    lines += _pipeline_section(results)
    lines += _accuracy_section(results, plots)
    lines += _optimizer_section(results, plots)
    lines += _scaling_section(results, plots)
    failed = [r for rows in results.rows.values() for r in rows if r["status"] == "failed"]
    if results.notes or failed:
        lines += ["## Notes, skips and failures", ""]
        lines += [f"- {n}" for n in results.notes]
        lines += [f"- failed: {r['mode']} {r.get('model') or ''}: {r['note']}" for r in failed]
        lines.append("")
    (out / "report.md").write_text("\n".join(lines).rstrip() + "\n")
    return "report.md"


def write_all(
    results: Results, out: Path, argv: list[str] | None = None, plots: bool = True
) -> list[str]:
    """Write CSV, JSON, plots (if matplotlib is installed and wanted) and the report.

    Returns:
        The names of the files written, relative to ``out``.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from classic_cnns.bench import BenchConfig, Results
        >>> from classic_cnns.bench.report import write_all
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     sorted(write_all(Results(BenchConfig(plots=False)), Path(tmp)))
        ['report.md', 'results.json']
    """
    pngs: list[str] = []
    if plots and results.config.plots:
        from classic_cnns.bench.plots import write_plots

        pngs = write_plots(results, out)  # first: a missing matplotlib adds a note
    written = write_csv(results, out) + pngs
    written.append(write_json(results, out, argv))
    written.append(write_markdown(results, out, pngs, argv))
    return written
