"""Distributed training with real processes: LeNet-5 on Digits under DDP on the CPU (gloo).

The command is the README's (``classic-cnns fit ... --trainer.strategy ddp``); Lightning
starts the second process by running it again. The metrics the two processes log, which
torchmetrics gathers across them, must equal those of one process evaluating the same
checkpoint on the same data: every validation and test image counted once.
"""

from __future__ import annotations

import csv
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import pytest
import torch

from classic_cnns import Digits, LeNet5
from classic_cnns._cli_errors import _NOISE
from classic_cnns.data.sampling import EpochShuffleSampler
from conftest import logged_metrics, sklearn_metrics


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "ddp_spawn"])
def test_two_process_ddp_logs_the_metrics_of_a_single_process(
    strategy: str, tmp_path: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "classic_cnns",
        "fit",
        "--model=LeNet5",
        "--data=Digits",
        "--trainer.accelerator=cpu",
        f"--trainer.strategy={strategy}",
        "--trainer.devices=2",
        "--trainer.max_epochs=2",
        "--trainer.enable_progress_bar=false",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes on two cores
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stderr + result.stdout
    # The warnings the command silences stay silent in ddp_spawn's new interpreters too
    # (Lightning's "smaller than the logging interval": 6 batches a process, not 50).
    assert [p for p in _NOISE if re.search(p, result.stderr)] == [], result.stderr[-3000:]
    assert "All distributed processes registered. Starting with 2 processes" in (
        result.stderr + result.stdout
    )
    # Under ddp_spawn the test after fit starts new processes, whose logger writes a
    # second version folder.
    logged = logged_metrics(tmp_path, versions=2 if strategy == "ddp_spawn" else 1)
    (ckpt,) = tmp_path.glob("lightning_logs/version_*/checkpoints/last.ckpt")

    # The checkpoint saved under DDP loads in a single process, which evaluates it alone.
    model = LeNet5.load_from_checkpoint(ckpt)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    dm = Digits()  # the CLI's defaults: the same split, the same batches
    single: dict[str, Any] = {
        **trainer.validate(model, datamodule=dm, verbose=False)[0],
        **trainer.test(model, datamodule=dm, verbose=False)[0],
    }
    for key in ("val_acc", "val_f1", "val_acc_top5", "test_acc", "test_f1", "test_acc_top5"):
        assert logged[key] == single[key], (key, logged[key], single[key])
    for key in ("val_loss", "test_loss"):
        assert math.isclose(logged[key], single[key], rel_tol=1e-5), key
    # And those metrics are scikit-learn's on the same predictions.
    model.eval()
    for stage in ("val", "test"):
        images, labels = dm._splits[stage]
        with torch.no_grad():
            logits = model(dm.transform(images))
        for key, value in sklearn_metrics(logits, labels, f"{stage}_").items():
            assert logged[key] == pytest.approx(value, abs=1e-6), key
    assert logged["test_acc"] > 0.5  # it did learn, in both processes together
    # Rank 0 draws the plots; the confusion matrix counts both processes' shards.
    assert len(list(tmp_path.glob("lightning_logs/version_*/curves.png"))) == 1
    (matrix,) = tmp_path.glob("lightning_logs/version_*/confusion_matrix.csv")
    with matrix.open() as f:
        counts = [[int(v) for v in row[1:]] for row in list(csv.reader(f))[1:]]
    total, right = sum(map(sum, counts)), sum(counts[i][i] for i in range(len(counts)))
    assert total == len(dm.test_dataloader().dataset)
    assert right / total == pytest.approx(logged["test_acc"], abs=1e-6)


def _loaders(dm: Digits, world: int) -> list[dict[str, list[int]]]:
    # The indices each process's train, val and test loaders visit in one epoch.
    per_rank = []
    for rank in range(world):
        dm.trainer = SimpleNamespace(  # what the datamodule reads of a DDP trainer
            distributed_sampler_kwargs={"num_replicas": world, "rank": rank},
            lightning_module=None,
            strategy=SimpleNamespace(broadcast=lambda obj, src: obj),  # rank 0's, here all's
        )
        per_rank.append(
            {
                name: list(loader.sampler)  # type: ignore[arg-type]
                for name, loader in (
                    ("train", dm.train_dataloader()),
                    ("val", dm.val_dataloader()),
                    ("test", dm.test_dataloader()),
                )
            }
        )
    return per_rank


@pytest.mark.parametrize("world", [2, 3])
def test_shards_cover_the_data_once_and_training_shards_are_equal(world: int) -> None:
    torch.manual_seed(0)
    dm = Digits(seed=0)
    dm.setup("fit")
    sizes = {name: dm._splits[name][0].shape[0] for name in ("train", "val", "test")}
    shards = _loaders(dm, world)
    for name in ("val", "test"):  # no padding: every image exactly once
        visited = sorted(i for shard in shards for i in shard[name])
        assert visited == list(range(sizes[name])), name
    train = [shard["train"] for shard in shards]
    assert len({len(t) for t in train}) == 1  # equal steps in every process
    assert set().union(*map(set, train)) == set(range(sizes["train"]))
    assert sum(map(len, train)) - sizes["train"] < world  # padding: under one per process
    # The shards interleave the order one process would draw for the epoch.
    single = EpochShuffleSampler(sizes["train"], seed=0).order(0).tolist()
    assert [t[0] for t in train] == single[:world]
    # That order follows the seed, as one process's does (not Lightning's seed alone).
    torch.manual_seed(1)
    seeded = EpochShuffleSampler(sizes["train"], seed=1).order(0).tolist()
    assert [shard["train"][0] for shard in _loaders(dm, world)] == seeded[:world] != single[:world]


def test_a_sampler_rejects_a_rank_outside_the_world() -> None:
    with pytest.raises(ValueError, match=r"rank must be an int in \[0, 2\); got 2"):
        EpochShuffleSampler(10, seed=0, num_replicas=2, rank=2)


def test_a_sampler_rejects_a_world_of_no_process() -> None:
    # Refused for what it is, not as a rank outside an empty world.
    with pytest.raises(ValueError, match=r"^num_replicas must be a positive int; got 0$"):
        EpochShuffleSampler(10, seed=0, num_replicas=0, rank=0)


_EXIT_CHECK = """
import atexit, sys, torch
import torch.distributed as dist
from classic_cnns import LeNet5
# atexit runs last-in first-out: this handler, registered first, runs after the task's.
atexit.register(lambda: print("initialized at exit:", dist.is_initialized(), flush=True))
dist.init_process_group("gloo", init_method=f"file://{sys.argv[1]}", rank=0, world_size=1)
model = LeNet5()
model.setup("fit")
model.setup("validate")  # registered once, whatever the stages
print("initialized after setup:", dist.is_initialized(), flush=True)
"""


def test_the_task_destroys_a_gloo_process_group_before_the_interpreter_exits(
    tmp_path: Path,
) -> None:
    # Lightning destroys an NCCL group at exit but not a gloo one, whose threads can abort
    # the process at interpreter shutdown (seen in test_bench's ddp_spawn scaling run).
    run = subprocess.run(
        [sys.executable, "-c", _EXIT_CHECK, str(tmp_path / "store")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.splitlines() == [
        "initialized after setup: True",
        "initialized at exit: False",
    ]


def _two_processes(strategy: str) -> list[str]:
    return [f"--trainer.strategy={strategy}", "--trainer.devices=2", "--trainer.accelerator=cpu"]


_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes on two cores


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "ddp_spawn"])
def test_the_predict_command_counts_the_images_of_every_process(
    strategy: str, tmp_path: Path
) -> None:
    torch.save(LeNet5().net.state_dict(), tmp_path / "w.pt")
    command = [sys.executable, "-m", "classic_cnns", "predict", "--data=Digits", "--weights=w.pt",
               "--trainer.enable_progress_bar=false", *_two_processes(strategy)]  # fmt: skip
    result = subprocess.run(
        command, cwd=tmp_path, env=_ENV, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    files = sorted(tmp_path.glob("lightning_logs/version_0/predictions-rank*.csv"))
    rows = [len(f.read_text().splitlines()) - 1 for f in files]
    assert len(files) == 2 and sum(rows) == 359 and min(rows) > 0  # Digits' test images
    assert result.stdout.splitlines() == [
        f"predictions: {Path('lightning_logs/version_0/predictions-rank*.csv')} "
        "(359 images in 2 files)"
    ]


@pytest.mark.slow
def test_torchrun_refuses_a_random_seed_once_and_every_process_exits_2(tmp_path: Path) -> None:
    # torchrun starts both processes itself and hands on no seed: they cannot agree on one.
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [str(torchrun), "--nproc-per-node=2", "--master-port=0", "-m", "classic_cnns", "fit",
               "--data=Digits", "--seed_everything=true", *_two_processes("ddp")]  # fmt: skip
    result = subprocess.run(
        command, cwd=tmp_path, env=_ENV, capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0
    err = result.stderr
    assert err.count("classic-cnns fit: error: --seed_everything true: ") == 1, err[-3000:]
    assert err.count("(--debug or CLASSIC_CNNS_DEBUG=1 shows the traceback)") == 1
    assert "pass an int seed (--seed_everything N)" in err
    # torchrun names the first process to fail (the other may be stopped by then): exit 2.
    assert "exitcode  : 2" in err and "exitcode  : 1 " not in err
    assert not (tmp_path / "lightning_logs").exists()


_PREDICT_TWICE = """
import lightning as L
from classic_cnns import Digits, LeNet5
from classic_cnns._cli_errors import _NOISE
from classic_cnns.predict import PredictionCSV

if __name__ == "__main__":
    writer = PredictionCSV("preds.csv")
    trainer = L.Trainer(strategy="ddp", devices=2, accelerator="cpu", logger=False,
                        enable_progress_bar=False, callbacks=[writer])
    for run in range(2):  # the second replaces the files that this writer's processes wrote
        trainer.predict(LeNet5(), datamodule=Digits(), return_predictions=False)
        with open(f"rank{trainer.global_rank}-{run}.txt", "w") as f:
            print(writer.written.name, writer.rows, [p.name for p in writer.files],
                  writer.total_rows, file=f)
"""


@pytest.mark.slow
def test_a_prediction_csv_under_ddp_replaces_its_own_files(tmp_path: Path) -> None:
    (tmp_path / "run.py").write_text(_PREDICT_TWICE)
    result = subprocess.run(
        [sys.executable, "run.py"], cwd=tmp_path, env=_ENV, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    said = {f.stem: f.read_text().strip() for f in tmp_path.glob("rank*.txt")}
    files = "['preds-rank0.csv', 'preds-rank1.csv'] 359"  # every process's, and all the rows
    assert said == {
        "rank0-0": f"preds-rank0.csv 180 {files}", "rank0-1": f"preds-rank0.csv 180 {files}",
        "rank1-0": f"preds-rank1.csv 179 {files}", "rank1-1": f"preds-rank1.csv 179 {files}",
    }  # fmt: skip


def _with_module(folder: Path, name: str, source: str) -> dict[str, str]:
    # The environment of a command that imports `name` (a callback the test writes) from
    # `folder`, as --trainer.callbacks+=name.Class asks.
    (folder / f"{name}.py").write_text(source)
    return {**_ENV, "PYTHONPATH": f"{folder}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


_STOP = """
import lightning as L


class Stop(L.Callback):  # Ctrl-C on every process, as a terminal sends it, before step 3
    def on_train_batch_start(self, trainer, *args):
        if trainer.global_step == 3:
            raise KeyboardInterrupt
"""


@pytest.mark.slow
def test_a_ddp_run_resumed_mid_epoch_logs_the_whole_epochs_training_metrics(
    tmp_path: Path,
) -> None:
    # last.ckpt after the validation at step 2 holds each process's share of the epoch's
    # training metrics; the resumed run's train_loss and train_acc covered only the batches
    # after the resume. The sums over both processes come back on rank 0.
    env = _with_module(tmp_path, "stop", _STOP)
    flags = ["--model=LeNet5", "--data=Digits", "--data.batch_size=32", "--trainer.max_epochs=1",
             "--trainer.limit_train_batches=5", "--trainer.val_check_interval=2",
             "--trainer.enable_progress_bar=false", "--trainer.limit_test_batches=0",
             *_two_processes("ddp")]  # fmt: skip

    def fit(folder: str, *more: str) -> dict[str, str]:
        (tmp_path / folder).mkdir(exist_ok=True)
        command = [sys.executable, "-m", "classic_cnns", "fit", *flags, *more]
        run = subprocess.run(command, cwd=tmp_path / folder, env=env, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
        if not more or more[0] != "--trainer.callbacks+=stop.Stop":
            assert run.returncode == 0, run.stderr[-3000:]
        paths = sorted((tmp_path / folder).glob("lightning_logs/version_*/metrics.csv"))
        rows = list(csv.DictReader(paths[-1].read_text().splitlines())) if paths else []
        return next((r for r in rows if r.get("train_loss")), {})

    whole = fit("whole")
    fit("resumed", "--trainer.callbacks+=stop.Stop")
    (ckpt,) = (tmp_path / "resumed").glob("lightning_logs/version_0/checkpoints/last.ckpt")
    assert torch.load(ckpt, weights_only=True)["global_step"] == 2  # stopped mid-epoch
    resumed = fit("resumed", "--ckpt_path=last")
    assert whole["train_loss"] and {k: resumed[k] for k in whole} == whole


_FAIL_ALONE = """
import lightning as L


class FailAlone(L.Callback):  # an error one process meets alone: a bad image, a NaN, memory
    def on_train_batch_start(self, trainer, *args):
        if trainer.global_rank == 1 and trainer.global_step == 2:
            raise RuntimeError("process 1 fails alone")
"""


@pytest.mark.slow
def test_an_error_in_one_process_ends_the_run_and_a_split_too_small_to_share_is_said_once(
    tmp_path: Path,
) -> None:
    # The first hung for good: the failing process's cleanup asked the trainer for its log
    # folder, a broadcast the other process never joined. The second raised a bare
    # AssertionError in Lightning's sampler, and the command then hung the same way.
    env = _with_module(tmp_path, "fail", _FAIL_ALONE)
    fit = [sys.executable, "-m", "classic_cnns", "fit", "--model=LeNet5", "--data=Digits",
           "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false",
           *_two_processes("ddp")]  # fmt: skip

    def run(*more: str) -> tuple[int, str]:
        process = subprocess.Popen(
            [*fit, *more], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            _, err = process.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # both processes: their own session
            process.communicate()
            pytest.fail(f"classic-cnns fit {' '.join(more)} still ran after 240 s")
        return process.returncode, err

    code, err = run("--trainer.callbacks+=fail.FailAlone")
    assert code != 0 and "process 1 fails alone" in err, err[-3000:]
    code, err = run("--data.val_size=1")
    message = "the val split has 1 image(s) for 2 processes; expected at least one a process"
    assert code == 2 and err.count(message) == 1, err[-3000:]
    assert "--data.val_size" in err and "--trainer.devices" in err
