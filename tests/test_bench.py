"""Smoke tests of the benchmark suite: every mode on tiny settings, seconds each.

No test asserts a timing: they check that rows carry every column, that ratios are
computed from numbers of the same run, and that the outputs are written safely.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import math
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from classic_cnns.bench import (
    MODE_COLUMNS,
    BenchConfig,
    PeakMemory,
    Results,
    Task,
    backend_unavailable,
    main,
    run,
    spread,
)
from classic_cnns.bench.accuracy import D2L_BOOK, OPTIMIZER_SETTINGS, RECIPES, run_recipe
from classic_cnns.bench.overhead import Setting
from classic_cnns.bench.overhead import run as run_overhead
from classic_cnns.bench.report import read_targets, targets, write_all
from classic_cnns.bench.throughput import fill_mfu, math_modes, measure_peak
from classic_cnns.registry import model_info
from conftest import SHARED_DATA

ENV_COLUMNS = ("backend", "device_name", "threads", "torch", "torchvision", "lightning", "python")
# Targets as benchmarks/targets.json states them; the run's verdicts are checked, not met.
TARGETS: list[dict[str, Any]] = [
    {
        "text": "MFU in (0, 1]",
        "mode": "throughput",
        "column": ["train_mfu", "infer_mfu"],
        "min": 1e-12,
        "max": 1,
    },
    {
        "text": "bare loop",
        "mode": "overhead",
        "where": {"loop": ["lightning_bare"]},
        "column": "vs_network",
        "min": 0,
    },
    {
        "text": "no GPU here",
        "mode": "overhead",
        "where": {"backend": "cuda", "status": "ok"},
        "column": "overhead_pct",
        "max": 5,
    },
    {"text": "impossible", "mode": "pipeline", "column": "speedup", "min": 1e9},
]


def _tiny(data_dir: Path, **overrides: Any) -> BenchConfig:
    settings: dict[str, Any] = dict(
        models=["lenet5", "resnet18"],
        backends=["cpu", "cuda", "mps"],
        precisions=["fp32", "bf16-mixed"],
        memory_formats=["contiguous"],
        compile=[False],
        batch_size=2,
        max_image_size=16,  # resnet18 takes it; lenet5 stays at its minimum, 32x32
        repeats=2,
        warmup=1,
        min_time=0.0,
        overhead=["lenet5/digits"],
        overhead_epochs=2,
        overhead_repeats=1,
        pipeline_repeats=1,
        recipes=["lenet5/digits", "lenet5/mnist"],  # full MNIST is absent: a skipped row
        time_to_accuracy={"lenet5/digits": 0.5},
        targets=TARGETS,
        optimizer_recipe="lenet5/digits",
        optimizer_epochs=1,
        scaling_dataset="digits",
        scaling_epochs=2,
        scaling_processes=[1, 2],
        limit_train_batches=2,
        max_epochs=2,
        threads=1,  # tiny steps: one thread is quickest, above all on a busy machine
        data_dir=data_dir,
        progress=False,
        plots=False,
    )
    settings.update(overrides)
    return BenchConfig(**settings)


@pytest.fixture(scope="module")
def results(mnist_raw: Path) -> Results:
    """One tiny run of every mode, shared by the tests that inspect its rows."""
    threads = torch.get_num_threads()
    results = run(_tiny(mnist_raw.parent.parent))
    assert torch.get_num_threads() == threads  # --threads applies to the run only
    return results


def _rows(results: Results, mode: str, **match: Any) -> list[dict[str, Any]]:
    return [r for r in results.rows.get(mode, []) if all(r[k] == v for k, v in match.items())]


def test_every_mode_writes_rows_with_every_column(results: Results) -> None:
    assert set(results.rows) == set(MODE_COLUMNS)
    for mode, rows in results.rows.items():
        assert rows, mode
        for row in rows:
            assert tuple(row) == MODE_COLUMNS[mode]
            assert row["mode"] == mode and row["status"] in ("ok", "skipped")
            assert all(row[c] is not None for c in ENV_COLUMNS), row
            assert row["threads"] == 1  # the run's --threads, stated in every row
    assert not [r for rows in results.rows.values() for r in rows if r["status"] == "failed"]


def test_throughput_rows_are_measured_and_ratios_come_from_the_same_run(results: Results) -> None:
    ok = _rows(results, "throughput", status="ok")
    short = {"classic_cnns": "ours", "torchvision": "torchvision"}
    assert {(r["model"], short[r["impl"]], r["precision"]) for r in ok} == {
        (m, i, p)
        for m, impls in (("lenet5", ["ours"]), ("resnet18", ["ours", "torchvision"]))
        for i in impls
        for p in ("fp32", "bf16-mixed")
    }
    assert set(results.matmul_peaks) == {"cpu/fp32", "cpu/bf16"}
    for r in ok:
        assert r["train_ips_min"] <= r["train_ips_median"] <= r["train_ips_max"]
        assert r["infer_ips_q1"] <= r["infer_ips_median"] <= r["infer_ips_q3"]
        # The peak is the fastest math mode the precision's layers may use, from this run.
        modes = {"fp32": ["fp32"], "bf16-mixed": ["bf16", "fp32"]}[r["precision"]]
        peak = max(results.matmul_peaks[f"cpu/{m}"] for m in modes)
        assert r["peak_math"] in modes and r["peak_tflops"] == peak / 1e12
        flops = r["fwd_flops_per_image"]
        assert flops > 0 and 0 < r["train_mfu"] <= 1 and 0 < r["infer_mfu"] <= 1
        assert math.isclose(r["train_mfu"], 3 * flops * r["train_ips_median"] / peak)
        assert math.isclose(r["infer_mfu"], flops * r["infer_ips_median"] / peak)
    for precision in ("fp32", "bf16-mixed"):
        pick = dict(model="resnet18", precision=precision)
        (ours,) = _rows(results, "throughput", impl="classic_cnns", **pick)
        (tv,) = _rows(results, "throughput", impl="torchvision", **pick)
        assert (ours["train_steps"], ours["batch_size"]) == (tv["train_steps"], tv["batch_size"])
        assert ours["vs_torchvision_train"] == ours["train_ips_median"] / tv["train_ips_median"]
        assert ours["vs_torchvision_infer"] == ours["infer_ips_median"] / tv["infer_ips_median"]
    (lenet,) = _rows(results, "throughput", model="lenet5", precision="fp32")
    assert lenet["vs_torchvision_train"] is None  # torchvision has no LeNet-5
    assert lenet["input_size"] == "1x32x32" and "minimum" in lenet["note"]


@pytest.mark.skipif(backend_unavailable("cuda") is None, reason="a CUDA device is present")
def test_absent_backends_are_skipped_with_a_note(results: Results) -> None:
    skipped = _rows(results, "throughput", backend="cuda")
    assert skipped and all(r["status"] == "skipped" and "CUDA" in r["note"] for r in skipped)
    assert any(n.startswith("cuda: skipped") for n in results.notes)
    assert all(r["status"] == "skipped" for r in _rows(results, "overhead", backend="cuda"))


def test_fp16_is_skipped_off_cuda() -> None:
    cfg = BenchConfig(precisions=["fp16-mixed"], compile=[False])
    res = Results(cfg)
    from classic_cnns.bench.throughput import run_config

    run_config(cfg, res, "lenet5", "cpu", "fp16-mixed", "contiguous", False)
    (row,) = res.rows["throughput"]
    assert row["status"] == "skipped" and "CUDA" in row["note"]


def test_lightning_overhead_is_relative_to_the_handwritten_loop(results: Results) -> None:
    rows = {r["loop"]: r for r in _rows(results, "overhead", backend="cpu")}
    assert list(rows) == ["network", "handwritten", "lightning", "lightning_bare"]
    hand, network = rows["handwritten"], rows["network"]
    assert hand["overhead_pct"] == 0 and network["overhead_pct"] is None
    assert (network["input_size"], network["precision"]) == ("1x32x32", "fp32")
    for loop in ("handwritten", "lightning", "lightning_bare"):
        r = rows[loop]
        assert r["ips"] == r["images_per_epoch"] / r["epoch_s_median"]
        assert r["vs_network"] == r["ips"] / network["ips"]
        expected = (r["epoch_s_median"] - hand["epoch_s_median"]) / hand["epoch_s_median"] * 100
        assert math.isclose(r["overhead_pct"], expected)
        assert r["measured_epochs"] == 1 and r["images_per_epoch"] == 2 * 128
        step = (r["step_ms_median"] - hand["step_ms_median"]) / hand["step_ms_median"]
        assert math.isclose(r["overhead_step_pct"], 100 * step)
        assert 0 < r["step_ms_min"] <= r["step_ms_median"]


def test_pipeline_yields_the_same_batches_and_a_same_run_speedup(results: Results) -> None:
    rows = {r["pipeline"]: r for r in _rows(results, "pipeline")}
    ours, tv = rows["classic_cnns"], rows["torchvision"]
    assert ours["outputs_match"] is True and ours["images"] == 2 * 128 == tv["images"]
    assert tv["speedup"] == tv["epoch_s_median"] / ours["epoch_s_median"]


def test_accuracy_rows_curves_and_confusion(results: Results) -> None:
    (row,) = _rows(results, "accuracy", run="lenet5/digits")
    curve = results.curves["accuracy"]["lenet5/digits"]
    assert [p["epoch"] for p in curve] == list(range(row["epochs"] + 1))
    assert all(a["train_s"] <= b["train_s"] for a, b in itertools.pairwise(curve))
    assert row["final_test_acc"] == curve[-1]["test_acc"]
    assert row["train_s"] == curve[-1]["train_s"] <= row["fit_wall_s"]
    assert row["target_acc"] == 0.5  # from the run's time_to_accuracy, not from the recipe
    reached = [p["train_s"] for p in curve if p["test_acc"] >= 0.5]
    assert row["time_to_target_s"] == (reached[0] if reached else None)
    matrix = results.confusion["lenet5/digits"]["matrix"]
    # --limit-train-batches 2 caps the evaluations too: 2 test batches of 32 of the 359.
    assert sum(map(sum, matrix)) == row["test_images"] == 64
    assert sum(matrix[i][i] for i in range(10)) / 64 == pytest.approx(row["final_test_acc"])
    (skipped,) = _rows(results, "accuracy", run="lenet5/mnist")
    assert skipped["status"] == "skipped" and skipped["reference_error_pct"] == 0.95


def test_optimizer_comparison_has_every_optimizer_and_loss_curves(results: Results) -> None:
    rows = _rows(results, "optimizers")
    assert [r["label"] for r in rows] == list(OPTIMIZER_SETTINGS)
    assert {r["optimizer"] for r in rows} == {"sgd", "adam", "adamw", "rmsprop"}
    assert [r["momentum"] for r in rows if r["optimizer"] == "sgd"] == [0.0, 0.9]
    for label, points in results.curves["optimizer_loss"].items():
        assert [p["step"] for p in points] == [1, 2], label
        assert all(math.isfinite(p["loss"]) for p in points)


def test_outputs_csv_json_markdown_and_plots(results: Results, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    results.config.plots = True
    try:
        files = write_all(results, tmp_path, ["--tiny"])
    finally:
        results.config.plots = False
    for mode, columns in MODE_COLUMNS.items():
        with (tmp_path / f"{mode}.csv").open() as f:
            reader = csv.DictReader(f)
            assert tuple(reader.fieldnames or ()) == columns
            assert len(list(reader)) == len(results.rows[mode])
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["rows"]["pipeline"][0]["threads"] >= 1 and data["environment"]["torch"]
    report = (tmp_path / "report.md").read_text()
    assert targets(results) == [
        ("MFU in (0, 1]", targets(results)[0][1], "met"),
        ("bare loop", targets(results)[1][1], "met"),
        ("no GPU here", "–", "not measured"),
        ("impossible", targets(results)[3][1], "not met"),
    ]
    assert "| impossible |" in (tmp_path / "report.md").read_text()
    for heading in (
        "## Targets",
        "## Throughput",
        "## Lightning overhead",
        "## Data pipeline",
        "## Accuracy",
        "## Optimizers",
        "## Scaling (DDP)",
        "## Notes",
    ):
        assert heading in report
    for png in (
        "throughput.png",
        "accuracy_vs_time.png",
        "confusion_digits.png",
        "optimizers.png",
        "scaling.png",
    ):
        assert png in files and (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_scaling_rows_and_efficiency_from_the_same_run(results: Results) -> None:
    rows = _rows(results, "scaling", backend="cpu")
    # --threads 1: one process with 1 thread, two processes with 1 thread each.
    assert [(r["processes"], r["threads_per_process"]) for r in rows] == [(1, 1), (2, 1)]
    baseline = {r["threads_per_process"]: r for r in rows if r["processes"] == 1}
    for r in rows:
        assert r["status"] == "ok" and tuple(r) == MODE_COLUMNS["scaling"]
        assert all(r[c] is not None for c in MODE_COLUMNS["scaling"] if c != "note"), r
        assert r["strategy"] == ("ddp" if r["processes"] > 1 else "single device")
        # Weak scaling: 2 batches of 128 per process and epoch (--limit-train-batches 2).
        assert r["batch_size"] == 128 and r["global_batch_size"] == 128 * r["processes"]
        assert r["images_per_epoch"] == 2 * 128 * r["processes"]
        assert r["measured_epochs"] == 1 and r["total_threads"] == r["processes"]
        assert r["ips"] == r["images_per_epoch"] / r["epoch_s_median"]
        base = baseline[r["threads_per_process"]]
        assert r["baseline_ips"] == base["ips"]
        assert r["efficiency"] == r["ips"] / (r["processes"] * base["ips"])
        assert r["vs_one_process_all_threads"] == r["ips"] / baseline[1]["ips"]
        assert r["wall_s"] >= r["epoch_s_max"] > 0
    assert "oversubscribed" in rows[1]["note"]  # 2 processes x 1 thread > --threads 1
    for backend in ("cuda", "mps") if backend_unavailable("cuda") else ("mps",):
        (skipped,) = _rows(results, "scaling", backend=backend)
        assert skipped["status"] == "skipped" and skipped["note"]


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc")
def test_scaling_worker_past_its_time_limit_is_killed_with_every_rank(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    from classic_cnns.bench.scaling import run as run_scaling

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the workers' folders go here
    cfg = BenchConfig(
        scaling_dataset="digits",
        scaling_processes=[2],
        scaling_epochs=2,
        scaling_timeout=0.5,
        limit_train_batches=1,
    )
    res = Results(cfg)
    run_scaling(cfg, res, "cpu")
    failed = [r for r in res.rows["scaling"] if r["processes"] == 2]
    assert len(failed) == 1 and failed[0]["status"] == "failed"
    assert "ran past" in failed[0]["note"] and failed[0]["efficiency"] is None
    leftovers = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(tmp_path).encode() in cmdline.read_bytes():
                leftovers.append(cmdline.parent.name)
        except OSError:
            pass
    assert not leftovers  # no rank of the killed worker is still running
    assert not list(tmp_path.iterdir())  # and its temporary folder is gone


def test_main_writes_atomically_and_refuses_to_overwrite(mnist_raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    argv = [
        "--modes",
        "pipeline",
        "--pipeline-repeats",
        "1",
        "--limit-train-batches",
        "2",
        "--no-progress",
        "--no-plots",
        "--threads",
        "1",
        "--data-dir",
        str(mnist_raw.parent.parent),
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert {p.name for p in out.iterdir()} == {"pipeline.csv", "results.json", "report.md"}
    before = (out / "results.json").read_text()
    assert main(argv) == 2  # refused: nothing run, nothing touched
    assert (out / "results.json").read_text() == before
    assert main([*argv, "--force"]) == 0
    assert (out / "results.json").read_text() != before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temporary folders left


def test_a_failing_task_is_recorded_and_the_run_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(results: Results) -> None:
        raise RuntimeError("no compiler")

    def fine(results: Results) -> None:
        results.add("pipeline", "cpu", dataset="digits", pipeline="classic_cnns")

    tasks = [
        Task("broken", boom, "throughput", "cpu", dict(model="lenet5", compile=True)),
        Task("fine", fine, "pipeline"),
    ]
    monkeypatch.setattr("classic_cnns.bench.cli.plan", lambda cfg: tasks)
    res = run(BenchConfig(progress=False))
    (failed,) = res.rows["throughput"]
    assert failed["status"] == "failed" and "no compiler" in failed["note"]
    assert failed["model"] == "lenet5" and res.rows["pipeline"][0]["status"] == "ok"


def test_quick_plan_and_argument_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--backends", "cpu", "--dry-run"]) == 0
    labels = capsys.readouterr().out.splitlines()
    compiled = [t for t in labels if t.endswith("compiled")]
    assert compiled == ["throughput lenet5 cpu fp32 contiguous compiled"]
    assert "pipeline mnist10k" in labels and "accuracy lenet5/mnist10k" in labels
    assert labels[-1] == "scaling lenet5 digits cpu"
    assert len([t for t in labels if t.startswith("optimizers")]) == 5
    # Modes run in the order given; one precision/format pair can be the compiled one.
    argv = ["--quick", "--backends", "cpu", "--precisions", "fp32,bf16-mixed", "--dry-run"]
    argv += [
        "--modes",
        "overhead,throughput",
        "--overhead",
        "lenet5/digits,resnet18/digits:size=40",
    ]
    assert main([*argv, "--compile-scope", "bf16-mixed/channels_last"]) == 0
    labels = capsys.readouterr().out.splitlines()
    assert labels[:2] == ["overhead lenet5/digits cpu", "overhead resnet18/digits:size=40 cpu"]
    assert [t for t in labels if t.endswith("compiled")] == [
        "throughput lenet5 cpu bf16-mixed channels_last compiled"
    ]
    assert main([*argv, "--compile-scope", "fp8/channels_last"]) == 2
    assert main([*argv, "--overhead", "lenet5/digits:batch=0"]) == 2
    assert main(["--models", "lenet", "--dry-run"]) == 2
    assert "Did you mean" in capsys.readouterr().err
    assert main(["--modes", "speed", "--dry-run"]) == 2
    assert main(["--modes", "scaling", "--scaling-epochs", "1", "--dry-run"]) == 2
    assert main(["--modes", "scaling", "--scaling-devices", "0,2", "--dry-run"]) == 2
    assert (
        main(
            [
                "--models",
                "resnet1*",
                "--modes",
                "throughput",
                "--backends",
                "cpu",
                "--compile",
                "off",
                "--precisions",
                "fp32",
                "--memory-formats",
                "contiguous",
                "--dry-run",
            ]
        )
        == 0
    )
    assert "throughput resnet110 cpu fp32 contiguous eager" in capsys.readouterr().out


def test_spread_and_peak_memory() -> None:
    stats = spread("x", [4.0, 1.0, 3.0, 2.0])
    assert stats == {"x_median": 2.5, "x_q1": 1.75, "x_q3": 3.25, "x_min": 1.0, "x_max": 4.0}
    meter = PeakMemory("cpu")
    meter.baseline()
    with meter:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, written, so resident
    if meter.kind.startswith("process RSS"):
        assert meter.peak_mb is not None and meter.peak_mb >= 48
    del block


def test_peaks_follow_the_math_the_layers_use(monkeypatch: pytest.MonkeyPatch) -> None:
    assert math_modes("cpu", "fp32") == ("fp32",)
    assert math_modes("cpu", "bf16-mixed") == ("bf16", "fp32")  # ops kept in fp32 count too
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)  # PyTorch's default
    monkeypatch.setattr(torch, "get_float32_matmul_precision", lambda: "highest")
    assert math_modes("cuda", "fp32") == ("tf32",)  # cuDNN convolutions run TF32
    assert math_modes("cuda", "bf16-mixed") == ("bf16", "tf32")
    assert math_modes("cuda", "fp16-mixed") == ("fp16", "tf32")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    assert math_modes("cuda", "fp32") == ("fp32",)
    monkeypatch.setattr(torch, "get_float32_matmul_precision", lambda: "high")
    assert math_modes("cuda", "fp32") == ("tf32",)  # cuBLAS may use TF32 for the linears
    monkeypatch.undo()
    before = torch.get_float32_matmul_precision()
    assert measure_peak("cpu", "tf32", seconds=0.01) > 0
    assert torch.get_float32_matmul_precision() == before  # restored after measuring


def test_mfu_uses_the_fastest_allowed_peak_and_flags_rates_above_it() -> None:
    target = {"text": "MFU", "mode": "throughput", "column": "train_mfu", "min": 0, "max": 1}
    results = Results(BenchConfig(targets=[target]))
    # A CPU whose bf16 matmul is slower than fp32 (no native bf16): fp32's peak bounds both.
    results.matmul_peaks.update({"cpu/bf16": 1e9, "cpu/fp32": 2e9})
    fast = results.add("throughput", "cpu", model="m", precision="bf16-mixed", train_tflops=1e-3)
    slow = results.add("throughput", "cpu", model="m", precision="fp32", train_tflops=4e-3)
    fill_mfu(results, "cpu")
    assert fast["peak_math"] == "fp32" and fast["train_mfu"] == 0.5 and fast["note"] is None
    assert slow["train_mfu"] == 2.0  # kept, not clipped, but flagged in the row and report
    assert "MFU above 1 (train)" in slow["note"] and any("too low" in n for n in results.notes)
    assert targets(results)[0][2] == "not met"


def test_targets_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(__file__).parents[1] / "benchmarks" / "targets.json"
    accs, found = read_targets(path)
    assert accs["resnet18/fashion_mnist"] == 0.94 and accs["lenet5/fashion_mnist"] == 0.89
    assert found == json.loads(path.read_text())["targets"]  # read as written, not altered
    assert {t["mode"] for t in found} >= {"throughput", "overhead", "accuracy"}
    bad = tmp_path / "bad.json"
    for content in (
        "{",
        '{"targets": [{"text": "x", "mode": "overhead", "column": "no_such_column", "max": 1}]}',
        '{"targets": [{"text": "x", "mode": "overhead", "column": "ips"}]}',
        '{"time_to_accuracy": {"lenet5/digits": 98}}',
    ):
        bad.write_text(content)
        with pytest.raises(ValueError, match=r"bad\.json"):
            read_targets(bad)
    assert main(["--targets", str(bad), "--dry-run"]) == 2
    assert "bad.json" in capsys.readouterr().err


def test_overhead_settings() -> None:
    s = Setting.parse("resnet18/fashion_mnist:size=96:batch=256:precision=bf16-mixed")
    assert (s.model, s.dataset, s.image_size, s.batch_size) == (
        "resnet18",
        "fashion_mnist",
        96,
        256,
    )
    assert (s.precision, s.memory_format) == ("bf16-mixed", "contiguous")
    for bad in (
        "resnet18",
        "resnet18/imagenet",
        "resnet18/mnist:size=0",
        "resnet18/mnist:batch=x",
        "resnet18/mnist:depth=3",
        "resnet18/mnist:precision=fp8",
        "resnet18/mnist:format=nhwc",
    ):
        with pytest.raises(ValueError, match="overhead setting"):
            Setting.parse(bad)
    with pytest.raises(ValueError, match="Did you mean"):
        Setting.parse("resnet19/mnist")


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real Fashion-MNIST, decompressed (its recompressed .gz files fail the md5 check)."""
    src = SHARED_DATA / "FashionMNIST" / "raw"
    root = tmp_path_factory.mktemp("data")
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for path in src.glob("*.gz"):
        with gzip.open(path) as f_in, (raw / path.stem).open("wb") as f_out:
            shutil.copyfileobj(f_in, f_out)
    return root


@pytest.mark.slow
def test_fashion_mnist_recipes_and_overhead_settings_on_the_real_data(
    fashion_dir: Path, one_thread: None
) -> None:
    cfg = BenchConfig(
        data_dir=fashion_dir,
        max_epochs=1,
        limit_train_batches=1,
        max_image_size=32,  # ResNet-18's 96 px, shrunk: one step of it stays quick here
        overhead_epochs=2,
        overhead_repeats=1,
        time_to_accuracy={"lenet5/fashion_mnist": 0.01},
    )
    results = Results(cfg)
    for name in ("lenet5/fashion_mnist", "resnet18/fashion_mnist"):
        run_recipe(cfg, results, RECIPES[name])
    lenet, resnet = results.rows["accuracy"]
    assert lenet["status"] == resnet["status"] == "ok"
    assert lenet["train_images"] == resnet["train_images"] == 60_000
    assert (lenet["test_images"], resnet["test_images"]) == (1024, 256)  # one batch each
    assert (lenet["image_size"], resnet["image_size"]) == (32, 32)
    assert (resnet["precision"], resnet["memory_format"]) == ("bf16-mixed", "channels_last")
    assert (
        lenet["time_to_target_s"]
        == results.curves["accuracy"]["lenet5/fashion_mnist"][0]["train_s"]
    )  # 1% is reached before any training
    assert resnet["target_acc"] is None and resnet["time_to_target_s"] is None
    classes = results.confusion["resnet18/fashion_mnist"]["classes"]
    assert classes[0] == "T-shirt/top" and len(classes) == 10
    setting = "resnet18/fashion_mnist:size=32:batch=8:precision=bf16-mixed:format=channels_last"
    run_overhead(replace(cfg, overhead=[setting]), results, "cpu", setting)
    rows = results.rows["overhead"]
    assert [r["loop"] for r in rows] == ["network", "handwritten", "lightning", "lightning_bare"]
    for r in rows:
        assert r["status"] == "ok" and r["setting"] == setting and r["batch_size"] == 8
        assert (r["input_size"], r["precision"], r["memory_format"]) == (
            "1x32x32",
            "bf16-mixed",
            "channels_last",
        )
        assert r["images_per_epoch"] == 8 and r["vs_network"] > 0


def test_no_task_starts_after_the_time_budget(mnist_raw: Path, tmp_path: Path) -> None:
    cfg = BenchConfig(modes=["pipeline"], data_dir=mnist_raw.parent.parent, budget_s=0.0)
    results = run(replace(cfg, progress=False), save_to=tmp_path)
    (row,) = results.rows["pipeline"]
    assert row["status"] == "skipped" and "time budget of 0 s" in row["note"]
    # What ran so far is on disk after every task (a run killed from outside keeps it).
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["rows"]["pipeline"][0]["note"] == row["note"]
    assert {p.name for p in tmp_path.iterdir()} == {"pipeline.csv", "results.json", "report.md"}


def test_d2l_recipes_are_the_books_setting_and_the_models_own() -> None:
    # The book's (batch, lr) per chapter, 10 epochs of plain SGD (d2l-zh 2.0, d2l-en 0.17).
    book = dict(lenet5=(256, 0.9), alexnet=(128, 0.01), vgg11=(128, 0.05), nin=(128, 0.1))
    book |= dict(googlenet=(128, 0.1), lenet5_bn=(256, 1.0), resnet18=(256, 0.05))
    assert set(D2L_BOOK) == set(book) | {"densenet_bc_100"}
    same = ("optimizer", "lr", "momentum", "weight_decay", "scheduler", "batch_size", "epochs")
    for model, (batch, lr) in (book | dict(densenet_bc_100=(256, 0.1))).items():
        b, o = (RECIPES[f"{model}/fashion_mnist/{v}"] for v in ("d2l", "default"))
        assert (b.optimizer, b.momentum, b.weight_decay, b.scheduler) == ("sgd", 0, 0, "none")
        assert (b.batch_size, b.lr, b.epochs) == (batch, lr, 10)
        r = model_info(model).recipe  # what `fit` takes by default
        assert [getattr(o, f) for f in same] == [getattr(r, f) for f in same]
        assert o.image_size == r.small_image_size
