"""The README's distillation table, run again: a ResNet-20 teaches LeNet-5 on MNIST-10k.

Five `classic-cnns fit` runs, each in its own folder under OUT, with the commands the README
shows: the teacher (ResNet-20, 15 epochs), LeNet-5 alone and taught, each for the recipe's 12
epochs and for 3. Every run's output goes to OUT/<run>.log; OUT/distillation.csv and
OUT/report.md get the table (printed too): test accuracy, `fit took`, the load average before
and after each run. About 30 minutes on one thread of this project's CPU machine.

    python examples/distillation.py --out DIR [--threads 1] [--quick]

The MNIST files are read from ``$CLASSIC_CNNS_DATA`` or ``data/`` (``classic-cnns data fetch
MNIST`` downloads them). ``--quick`` trains and tests on two batches of 32 per epoch: a check
that the commands run, not a measurement.
"""

import argparse
import csv
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import torch

DATA = ["--data", "MNIST", "--data.protocol", "10k", "--data.val_size", "0"]
TEACHER = "teacher/lightning_logs/version_0/checkpoints/last.ckpt"
KL = ["--model.loss", "kl_div", "--model.teacher"]
# (run, what the README's table calls it, epochs, the fit flags after the data's)
RUNS = [
    ("teacher", "ResNet-20, the teacher (its recipe)", 15, ["--model", "resnet20"]),
    ("lenet5_alone", "LeNet-5 alone (its recipe)", 12, ["--model", "lenet5"]),
    ("lenet5_taught", "LeNet-5 taught by the ResNet-20", 12, ["--model", "lenet5", *KL, TEACHER]),
    ("lenet5_alone_3", "LeNet-5 alone", 3, ["--model", "lenet5"]),
    ("lenet5_taught_3", "LeNet-5 taught by the ResNet-20", 3, ["--model", "lenet5", *KL, TEACHER]),
]


def _fit(out: Path, run: str, epochs: int, flags: list[str], extra: list[str]) -> dict[str, str]:
    folder = out / run
    folder.mkdir()
    flags = [str(out / f) if f == TEACHER else f for f in flags]
    command = [sys.executable, "-m", "classic_cnns", "fit", *flags, *DATA]
    command += ["--trainer.max_epochs", str(epochs), "--trainer.enable_progress_bar", "false"]
    command += ["--seed_everything", "0", *extra]
    before = os.getloadavg()[0]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    after = os.getloadavg()[0]
    log = done.stdout + done.stderr
    (out / f"{run}.log").write_text(" ".join(command) + "\n\n" + log)
    if done.returncode != 0:
        raise SystemExit(f"{run} failed with status {done.returncode}; see {out / run}.log")
    acc = re.search(r"│\s+test_acc\s+│\s+([0-9.]+)", log)
    took = re.search(r"fit took ([0-9.,]+) s", log)
    if acc is None or took is None:
        raise SystemExit(f"{run}: no test_acc or 'fit took' in its output; see {out / run}.log")
    return {
        "run": run, "epochs": str(epochs), "test_acc": f"{float(acc[1]):.4f}",
        "fit_took_s": took[1].replace(",", ""), "load_before": f"{before:.2f}",
        "load_after": f"{after:.2f}", "command": " ".join(command[3:]).replace(str(out), "OUT"),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="a new folder for the runs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of every run")
    parser.add_argument("--quick", action="store_true", help="2 batches of 32 per epoch: a check")
    args = parser.parse_args()
    quick = ["--trainer.limit_train_batches", "2", "--trainer.limit_test_batches", "2"]
    quick += ["--data.batch_size", "32"]
    extra = ["--threads", str(args.threads), *(quick if args.quick else [])]
    out = args.out.resolve()
    if out.exists():  # never mixes two runs' files
        parser.error(f"--out must be a new folder; {out} exists")
    out.mkdir(parents=True)
    rows = []
    for run, _, epochs, flags in RUNS:
        rows.append(_fit(out, run, epochs, flags, extra))
        print(f"{run}: {rows[-1]['test_acc']} in {rows[-1]['fit_took_s']} s", flush=True)
    with (out / "distillation.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"Seed 0, MNIST-10k test set, {args.threads} thread(s){' (--quick)' * args.quick}, "
        f"torch {torch.__version__}, python {platform.python_version()}, {os.cpu_count()} cores.",
        "",
        "| model | epochs | test accuracy | `fit took` | load average |",
        "|---|---:|---:|---:|---|",
    ]
    for (_, name, _, _), row in zip(RUNS, rows, strict=True):
        acc = f"{100 * float(row['test_acc']):.2f}%"
        lines.append(
            f"| {name} | {row['epochs']} | {acc} | {float(row['fit_took_s']):,.1f} s "
            f"| {row['load_before']} → {row['load_after']} |"
        )
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
