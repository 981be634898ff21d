"""PNG plots of a run: throughput bars, accuracy-vs-time, confusion matrices, optimizer curves,
DDP scaling bars.

matplotlib is the optional ``plot`` extra; it is imported here only, when plots are
written. Figures are built with ``matplotlib.figure.Figure`` (no pyplot), so writing them
neither needs a display nor changes a user's pyplot backend.

Example:
    >>> from classic_cnns.bench import BenchConfig, Results
    >>> from classic_cnns.bench.plots import write_plots
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     write_plots(Results(BenchConfig()), pathlib.Path(tmp))
    []
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from classic_cnns.bench._common import Results

__all__ = ["write_plots"]


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _throughput(results: Results, out: Path) -> list[str]:
    rows = [r for r in results.rows.get("throughput", []) if r["status"] == "ok"]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["backend"], r["model"]), []).append(r)
    if not groups:
        return []
    heights = [max(2.0, 0.35 * len(g) * 2 + 1) for g in groups.values()]
    fig = _figure(11, sum(heights))
    axes = fig.subplots(len(groups), 2, squeeze=False, height_ratios=heights)
    for (backend, model), (ax_train, ax_infer) in zip(groups, axes, strict=True):
        group = groups[(backend, model)]
        configs = list(
            dict.fromkeys(
                (r["precision"], r["memory_format"], "compiled" if r["compile"] else "eager")
                for r in group
            )
        )
        for ax, phase in ((ax_train, "train"), (ax_infer, "infer")):
            for offset, impl, color in ((-0.2, "classic_cnns", "C0"), (0.2, "torchvision", "C1")):
                ys, xs, lo, hi = [], [], [], []
                for i, cfg in enumerate(configs):
                    match = [
                        r
                        for r in group
                        if r["impl"] == impl
                        and (
                            r["precision"],
                            r["memory_format"],
                            "compiled" if r["compile"] else "eager",
                        )
                        == cfg
                    ]
                    if match and match[0][f"{phase}_ips_median"]:
                        r = match[0]
                        ys.append(i + offset)
                        xs.append(r[f"{phase}_ips_median"])
                        lo.append(xs[-1] - r[f"{phase}_ips_q1"])
                        hi.append(r[f"{phase}_ips_q3"] - xs[-1])
                if xs:
                    ax.barh(ys, xs, height=0.38, xerr=[lo, hi], color=color, label=impl)
            ax.set_yticks(range(len(configs)), [" / ".join(c) for c in configs], fontsize=8)
            ax.invert_yaxis()
            ax.set_xlabel("images/s (median, IQR)")
            ax.set_title(
                f"{model} on {backend}: {'training' if phase == 'train' else 'inference'}",
                fontsize=10,
            )
            ax.grid(axis="x", alpha=0.3)
        ax_train.legend(fontsize=8, loc="lower right")
    fig.savefig(out / "throughput.png", dpi=110)
    return ["throughput.png"]


def _accuracy(results: Results, out: Path) -> list[str]:
    curves = results.curves.get("accuracy", {})
    if not curves:
        return []
    targets = {
        r["run"]: r["target_acc"] for r in results.rows.get("accuracy", []) if r["status"] == "ok"
    }
    datasets = list(dict.fromkeys(run.split("/")[1] for run in curves))
    fig = _figure(5.5 * len(datasets), 4)
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    for ax, dataset in zip(axes, datasets, strict=True):
        lows = []
        for run, points in curves.items():
            if run.split("/")[1] != dataset:
                continue
            xs = [p["train_s"] for p in points]
            ys = [100 * p["test_acc"] for p in points]
            ax.plot(xs, ys, marker="o", markersize=3, label=run.split("/")[0])
            lows += ys[1:] or ys
            target = targets.get(run)
            if target is not None:
                ax.axhline(100 * target, color="grey", linestyle="--", linewidth=0.8)
        # The untrained starting point (10%) would flatten the interesting part.
        ax.set_ylim(max(0.0, min(lows) - 2), 100.5)
        ax.set_xlabel("training time (s), evaluations excluded")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"accuracy vs time: {dataset}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.savefig(out / "accuracy_vs_time.png", dpi=110)
    return ["accuracy_vs_time.png"]


def _confusion(results: Results, out: Path) -> list[str]:
    best: dict[str, tuple[str, dict[str, Any]]] = {}
    for run, info in results.confusion.items():
        if info["dataset"] not in best or info["accuracy"] > best[info["dataset"]][1]["accuracy"]:
            best[info["dataset"]] = (run, info)
    written = []
    for dataset, (run, info) in best.items():
        matrix = info["matrix"]
        n = len(matrix)
        fig = _figure(5.2, 4.6)
        ax = fig.subplots()
        image = ax.imshow(matrix, cmap="Blues")
        fig.colorbar(image, ax=ax, shrink=0.8)
        top = max(max(row) for row in matrix) or 1
        for i in range(n):
            for j in range(n):
                if matrix[i][j]:
                    ax.text(
                        j,
                        i,
                        str(matrix[i][j]),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if matrix[i][j] > top / 2 else "black",
                    )
        ax.set_xticks(range(n), info["classes"], rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(n), info["classes"], fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{run}: test accuracy {100 * info['accuracy']:.2f}%", fontsize=10)
        name = f"confusion_{dataset}.png"
        fig.savefig(out / name, dpi=110)
        written.append(name)
    return written


def _optimizers(results: Results, out: Path) -> list[str]:
    losses = results.curves.get("optimizer_loss", {})
    evals = results.curves.get("optimizer_eval", {})
    if not losses:
        return []
    fig = _figure(11, 4)
    ax_loss, ax_acc = fig.subplots(1, 2)
    styles = ("-", "--", "-.", ":")
    for i, (label, points) in enumerate(losses.items()):
        # Distinct dashes too: curves that nearly coincide (Adam, AdamW) stay visible.
        color, style = f"C{i}", styles[i % len(styles)]
        steps = [p["step"] for p in points]
        values = [p["loss"] for p in points]
        # Raw losses faint, an exponential moving average on top to read the trend.
        ax_loss.plot(steps, values, color=color, alpha=0.2, linewidth=0.7)
        smooth, ema = [], values[0] if values else 0.0
        for v in values:
            ema = 0.9 * ema + 0.1 * v
            smooth.append(ema)
        ax_loss.plot(steps, smooth, color=color, linestyle=style, label=label)
        if label in evals:
            ax_acc.plot(
                [p["epoch"] for p in evals[label]],
                [100 * p["test_acc"] for p in evals[label]],
                color=color,
                linestyle=style,
                marker="o",
                markersize=3,
                label=label,
            )
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("training step")
    ax_loss.set_ylabel("training loss (EMA 0.9; raw faint)")
    ax_loss.set_title("training loss per optimizer", fontsize=10)
    ax_loss.grid(alpha=0.3, which="both")
    ax_loss.legend(fontsize=8)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("test accuracy (%)")
    ax_acc.set_title("test accuracy per optimizer", fontsize=10)
    ax_acc.grid(alpha=0.3)
    fig.savefig(out / "optimizers.png", dpi=110)
    return ["optimizers.png"]


def _scaling(results: Results, out: Path) -> list[str]:
    rows = [r for r in results.rows.get("scaling", []) if r["status"] == "ok" and r["ips"]]
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    if not backends:
        return []
    fig = _figure(5 + 0.6 * max(len([r for r in rows if r["backend"] == b]) for b in backends), 3.5)
    axes = fig.subplots(1, len(backends), squeeze=False)[0]
    for ax, backend in zip(axes, backends, strict=True):
        group = [r for r in rows if r["backend"] == backend]
        labels = [f"{r['processes']} × {r['threads_per_process']} thr" for r in group]
        bars = ax.bar(range(len(group)), [r["ips"] for r in group], color="C0")
        for bar, r in zip(bars, group, strict=True):
            if r["processes"] > 1 and r["efficiency"] is not None:
                ax.annotate(
                    f"eff. {r['efficiency']:.2f}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
        ax.set_xticks(range(len(group)), labels, fontsize=8)
        ax.set_xlabel("processes × threads per process")
        ax.set_ylabel("training images/s (all processes)")
        ax.set_title(f"{group[0]['model']} on {group[0]['dataset']}, {backend}", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    fig.savefig(out / "scaling.png", dpi=110)
    return ["scaling.png"]


def write_plots(results: Results, out: Path) -> list[str]:
    """Write every plot the results have data for; return the file names.

    Without matplotlib it writes nothing and adds a note saying how to get the plots.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        results.note("plots skipped: matplotlib is missing (pip install 'classic-cnns[plot]')")
        return []
    written = []
    for writer in (_throughput, _accuracy, _confusion, _optimizers, _scaling):
        written += writer(results, out)
    return written
