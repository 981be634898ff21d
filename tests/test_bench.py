"""The benchmarks: ``classic-cnns bench`` (throughput, accuracy) and ``benchmarks/dev.py``.

Every mode runs on tiny settings, seconds each. No test asserts a timing: they check that
ratios and MFU are computed from numbers of the same run, that the peaks follow the math the
layers use, that recipes are what they say, and that results survive a budget or a kill.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import math
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from classic_cnns.bench import bench, core, main
from classic_cnns.bench import throughput as tp
from classic_cnns.bench.accuracy import D2L_BOOK, RECIPES, Settings, make_datamodule, tasks
from classic_cnns.bench.accuracy import report as accuracy_report
from classic_cnns.bench.core import Results, Task, run_tasks, spread, unavailable, write
from classic_cnns.registry import model_info
from conftest import FASHION_RAW

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the developer measurements, benchmarks/dev.py
import dev  # noqa: E402

# A backend this machine lacks (Apple's MPS off a Mac, else CUDA): its rows are skipped.
ABSENT = "mps" if not torch.backends.mps.is_available() else "cuda"


@pytest.fixture(scope="module")
def throughput() -> Results:
    """LeNet-5 (no torchvision twin) and ResNet-18 in fp32 and bf16-mixed, on the CPU."""
    s = tp.Settings(models=("lenet5", "resnet18"), backends=("cpu", ABSENT), compile=(),
                    precisions=("fp32", "bf16-mixed"), batch_size=2, max_image_size=16,
                    repeats=2, warmup=1, min_time=0.0)  # fmt: skip
    return run_tasks(tp.tasks(s, seed=0), Results(), threads=1)


def test_throughput_ratios_come_from_the_same_run(throughput: Results) -> None:
    ok = throughput.ok("throughput")
    assert {(r["model"], r["impl"], r["precision"]) for r in ok} == {
        (m, i, p) for m, i in [("lenet5", "classic_cnns"), ("resnet18", "classic_cnns"),
                               ("resnet18", "torchvision")] for p in ("fp32", "bf16-mixed")
    }  # fmt: skip
    for precision in ("fp32", "bf16-mixed"):
        ours, tv = (r for r in ok if r["model"] == "resnet18" and r["precision"] == precision)
        assert (ours["train_steps"], ours["batch_size"]) == (tv["train_steps"], tv["batch_size"])
        assert ours["vs_torchvision_train"] == ours["train_ips_median"] / tv["train_ips_median"]
        assert ours["vs_torchvision_infer"] == ours["infer_ips_median"] / tv["infer_ips_median"]
        assert ours["train_ips_q1"] <= ours["train_ips_median"] <= ours["train_ips_q3"]
    (lenet,) = (r for r in ok if r["model"] == "lenet5" and r["precision"] == "fp32")
    assert lenet["vs_torchvision_train"] is None and lenet["input_size"] == "1x32x32"
    assert "minimum" in lenet["note"]  # max_image_size 16 is below LeNet-5's minimum
    (absent,) = (r for r in throughput.rows["throughput"] if r["backend"] == ABSENT)
    assert absent["status"] == "skipped" and absent["note"] == unavailable(ABSENT)  # says why
    assert absent["device_name"] == "absent"  # it had the CPU's name


def test_skips_are_noted_once_and_a_missing_dataset_is_a_skip_not_a_failure() -> None:
    s = tp.Settings(models=("lenet5", "resnet20"), backends=("cpu", ABSENT),
                    precisions=("fp16-mixed",), compile=())  # fmt: skip
    results = run_tasks(tp.tasks(s, seed=0), Results(), threads=1)
    assert {r["status"] for r in results.rows["throughput"]} == {"skipped"}
    assert results.notes == [  # one note per reason, not one per row
        f"throughput on cpu: skipped, {unavailable('cpu', 'fp16-mixed')}",
        f"throughput on {ABSENT}: skipped, {unavailable(ABSENT)}",
    ]

    def needs_data(results: Results) -> None:
        raise FileNotFoundError("MNIST: t10k-images-idx3-ubyte.gz missing from data/MNIST/raw")

    results = run_tasks([Task("scaling lenet5 cpu", needs_data, "scaling")], Results())
    (row,) = results.rows["scaling"]
    assert row["status"] == "skipped" and row["note"].startswith("FileNotFoundError: MNIST")
    assert results.notes == [f"scaling on cpu: skipped, {row['note']}"]  # once, by mode


def test_mfu_is_against_the_fastest_peak_the_layers_may_use(throughput: Results) -> None:
    peaks, kernels = throughput.data["matmul_peaks"], throughput.data["kernel_peaks"]
    assert set(peaks) == {"cpu/fp32", "cpu/bf16"}
    assert {k: max(rates.values()) for k, rates in kernels.items()} == peaks  # each kernel's
    assert {tuple(rates) for rates in kernels.values()} == {
        ("conv3x3", "matmul512", "matmul1024", "matmul2048")
    }
    for r in throughput.ok("throughput"):
        modes = {"fp32": ["fp32"], "bf16-mixed": ["bf16", "fp32"]}[r["precision"]]
        peak = max(peaks[f"cpu/{m}"] for m in modes)
        assert r["peak_math"] in modes and r["peak_tflops"] == peak / 1e12
        for phase, flops in (("train", "train_flops_per_image"), ("infer", "fwd_flops_per_image")):
            mfu = r[f"{phase}_mfu"]
            assert math.isclose(mfu, r[flops] * r[f"{phase}_ips_median"] / peak)
            # In (0, 1]; a rate above the peak (a busy machine) is kept and flagged, never hidden.
            assert mfu > 0 and (mfu <= 1 or "measured too low" in r["note"])


def test_a_training_image_counts_googlenets_auxiliary_heads() -> None:
    # 3x the forward in train mode: GoogLeNet's auxiliary heads run there, not in eval mode.
    for name, size in (("lenet5", (1, 32, 32)), ("googlenet", (3, 64, 64))):
        fwd, train = tp._flops(name, size)
        net = model_info(name).build_net(num_classes=10, in_channels=size[0])
        heads = sum(
            p.numel() for n, p in net.named_parameters() if n.startswith(("aux1.", "aux2."))
        )
        assert (train > 3 * fwd) == (heads > 0), name


def test_peaks_follow_the_math_the_layers_use(monkeypatch: pytest.MonkeyPatch) -> None:
    assert unavailable("cpu") is None and unavailable("cpu", "bf16-mixed") is None
    assert unavailable("cpu", "fp16-mixed") == "fp16-mixed runs on CUDA only"  # a skipped row
    assert tp.math_modes("cpu", "fp32") == ("fp32",)
    assert tp.math_modes("cpu", "bf16-mixed") == ("bf16", "fp32")  # ops kept in fp32 count too
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)  # PyTorch's default
    monkeypatch.setattr(torch, "get_float32_matmul_precision", lambda: "highest")
    assert tp.math_modes("cuda", "fp32") == ("tf32",)  # cuDNN convolutions run TF32
    assert tp.math_modes("cuda", "bf16-mixed") == ("bf16", "tf32")
    assert tp.math_modes("cuda", "fp16-mixed") == ("fp16", "tf32")
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    assert tp.math_modes("cuda", "fp32") == ("fp32",)
    monkeypatch.setattr(torch, "get_float32_matmul_precision", lambda: "high")
    assert tp.math_modes("cuda", "fp32") == ("tf32",)  # cuBLAS may use TF32 for the linears
    monkeypatch.undo()
    before = torch.get_float32_matmul_precision()
    assert tp._peak("cpu", "tf32", seconds=0.01, rates={}) > 0
    assert torch.get_float32_matmul_precision() == before  # restored after measuring


def test_the_peak_counts_a_convolution_beside_the_matmuls(monkeypatch: pytest.MonkeyPatch) -> None:
    # oneDNN's convolutions outran MKL's matmul on this AMD CPU (0.3-0.44 against 0.18 TFLOP/s in
    # fp32), so that networks measured above 1 MFU: the peak is the best of both. With every
    # kernel call taking 1 s, the peak is the largest kernel's FLOPs: the 3x3 convolution's.
    calls = []
    monkeypatch.setattr(core, "timed", lambda fn, steps, backend: calls.append(fn) or 1.0)
    conv_flops = 2 * 32 * 256 * 32 * 32 * 256 * 9  # batch, C_out, H, W, C_in, 3x3 multiply-adds
    assert conv_flops > 2 * 2048**3  # the largest matmul's
    rates = {"matmul512": 1e15}  # an earlier call's: the best of each kernel is kept
    assert tp._peak("cpu", "fp32", seconds=0.0, rates=rates) == 1e15
    assert [getattr(fn, "func", None) for fn in calls[::2]] == [F.conv2d, *[torch.matmul] * 3]
    matmuls = {f"matmul{m}": 2 * m**3 for m in (1024, 2048)}
    assert rates == {"conv3x3": conv_flops, "matmul512": 1e15, **matmuls}
    assert tp._peak("cpu", "fp32", seconds=0.0, rates={}) == conv_flops


def test_images_per_second_tflops_and_mfu_follow_from_the_seconds_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every timing takes 0.25 s: the one step that sizes a repeat asks for ceil(0.7 / 0.25) = 3
    # steps of a batch of 4, so a repeat runs 12 images in 0.25 s, 48 images/s.
    monkeypatch.setattr(core, "timed", lambda fn, steps, backend: 0.25)
    s = tp.Settings(batch_size=4, repeats=3, warmup=1, min_time=0.7)
    results = Results(data={"matmul_peaks": {"cpu/fp32": 2e12}})
    tp.measure(s, 0, "lenet5", "cpu", "fp32", "contiguous", False, results)
    (row,) = results.ok("throughput")
    assert row["train_steps"] == row["infer_steps"] == 3 and row["batch_size"] == 4
    for phase in ("train", "infer"):
        assert row[f"{phase}_ips_median"] == row[f"{phase}_ips_min"] == 3 * 4 / 0.25 == 48.0
    # LeNet-5's forward by hand: one multiply-add per weight and bias element per output
    # position, 2 FLOPs each: C1 6@28x28 from 1@5x5, C3 16@10x10 from 6@5x5, C5 120 from 16@5x5,
    # F6 84 from 120, the output 10 from 84. A training image: 3x the forward (no aux heads).
    layers = [(6 * 28 * 28, 25), (16 * 10 * 10, 6 * 25), (120, 16 * 25), (84, 120), (10, 84)]
    fwd = 2 * sum(outputs * (fan_in + 1) for outputs, fan_in in layers)
    assert fwd == 846_076  # the summary's count too (its docstring's example)
    assert (row["fwd_flops_per_image"], row["train_flops_per_image"]) == (fwd, 3 * fwd)
    for phase, flops in (("train", 3 * fwd), ("infer", fwd)):
        assert math.isclose(row[f"{phase}_tflops"], flops * 48 / 1e12, rel_tol=1e-12)
        assert math.isclose(row[f"{phase}_mfu"], flops * 48 / 2e12, rel_tol=1e-12)
    assert row["peak_math"] == "fp32" and row["peak_tflops"] == 2.0


def test_mfu_above_one_is_kept_and_flagged() -> None:
    # A CPU whose bf16 matmul is slower than fp32 (no native bf16): fp32's peak bounds both.
    results = Results(data={"matmul_peaks": {"cpu/bf16": 1e9, "cpu/fp32": 2e9}})
    kw: dict[str, Any] = dict(model="m", infer_tflops=None)
    fast = results.add("throughput", "cpu", precision="bf16-mixed", train_tflops=1e-3, **kw)
    slow = results.add("throughput", "cpu", precision="fp32", train_tflops=4e-3, **kw)
    tp.fill_mfu(results, "cpu")
    assert fast["peak_math"] == "fp32" and fast["train_mfu"] == 0.5 and fast["note"] is None
    assert slow["train_mfu"] == 2.0 and "MFU above 1 (train)" in slow["note"]
    assert any("too low" in n for n in results.notes)


@pytest.fixture(scope="module")
def accuracy(mnist_raw: Path) -> Results:
    s = Settings(recipes=("lenet5/digits", "lenet5/mnist"), backend="cpu", max_epochs=2,
                 limit_train_batches=2, time_to_accuracy={"lenet5/digits": 0.5},
                 data_dir=mnist_raw.parent.parent)  # fmt: skip
    return run_tasks(tasks(s, seed=0), Results(), threads=1)


def test_every_seed_is_measured_on_the_same_test_images(monkeypatch: pytest.MonkeyPatch) -> None:
    # The bench's seed seeds the weights and the data order; Digits' test split is drawn by
    # the datamodule's own seed, which stays 0 (as in fit), or seeds would differ in test sets.
    import classic_cnns.bench.accuracy as accuracy_mode

    tested: list[torch.Tensor] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        dm = make_datamodule(*args, **kwargs)
        tested.append(dm._splits["test"][0])
        return dm

    monkeypatch.setattr(accuracy_mode, "make_datamodule", spy)
    s = Settings(recipes=("lenet5/digits",), backend="cpu", max_epochs=1, limit_train_batches=1)
    runs = [run_tasks(tasks(s, seed=seed), Results(), threads=1) for seed in (0, 1)]
    assert len(tested) == 2 and torch.equal(tested[0], tested[1])
    untrained = [r.data["curves"]["lenet5/digits"][0]["test_acc"] for r in runs]
    assert untrained[0] != untrained[1]  # the seed still draws the initial weights


def test_accuracy_curve_time_to_accuracy_and_confusion(accuracy: Results) -> None:
    row, skipped = accuracy.rows["accuracy"]
    curve = accuracy.data["curves"]["lenet5/digits"]
    assert [p["epoch"] for p in curve] == [0, 1, 2] == list(range(row["epochs"] + 1))
    assert row["final_test_acc"] == curve[-1]["test_acc"]
    assert row["train_s"] == curve[-1]["train_s"] <= row["fit_wall_s"]
    reached = [p["train_s"] for p in curve if p["test_acc"] >= 0.5]
    assert row["target_acc"] == 0.5 and row["time_to_target_s"] == (reached[0] if reached else None)
    matrix = accuracy.data["confusion"]["lenet5/digits"]["matrix"]
    assert sum(map(sum, matrix)) == row["test_images"] == 64  # 2 test batches of 32
    assert row["train_images"] == 64  # and 2 training batches of 32 per epoch
    assert sum(matrix[i][i] for i in range(10)) / 64 == pytest.approx(row["final_test_acc"])
    # Rows are the true classes (plot_confusion_matrix's orientation): each row sums to its
    # class's count among the 64 test images, which a transposed matrix's would not.
    loader = make_datamodule("digits", None, batch_size=32).test_dataloader()
    truth = torch.cat([y for _, y in itertools.islice(loader, 2)])
    assert [sum(r) for r in matrix] == torch.bincount(truth, minlength=10).tolist()
    assert [sum(c) for c in zip(*matrix, strict=True)] != [sum(r) for r in matrix]
    # Full MNIST is absent here: skipped, with its published reference error, and the advice
    # a bench user can follow (the bench has no download=True).
    assert skipped["status"] == "skipped" and skipped["reference_error_pct"] == 0.95
    assert skipped["note"].startswith("FileNotFoundError: MNIST: train-images-idx3-ubyte.gz")
    assert "Choose another data_dir (the bench downloads nothing), or put" in skipped["note"]
    assert "download=True" not in skipped["note"]
    # Only the test set is there: the 10k protocol is the way out, by the bench's recipes
    # (the note named fit's --data.protocol, a flag the bench lacks).
    assert "(protocol='10k', dataset mnist10k)" in skipped["note"], skipped["note"]
    assert "--data." not in skipped["note"] and skipped["note"].endswith("the t10k files")


def test_the_curve_measures_the_model_in_eval_mode() -> None:
    # Batch norm on the test batch's own statistics (and dropout) would score another model
    # than the one trained: the accuracy is the eval-mode network's, and training goes on
    # in train mode after each measurement.
    from classic_cnns import create_model
    from classic_cnns.bench.accuracy import Curve

    dm = make_datamodule("digits", None, batch_size=32)
    curve, modes = Curve(dm, "cpu", limit=2), []

    class Mode(L.Callback):
        def on_train_batch_start(self, trainer: L.Trainer, module: Any, *_: Any) -> None:
            modes.append(module.training)

    model = create_model("lenet5_bn", num_classes=10, in_channels=1)
    core.trainer("cpu", epochs=1, limit=2, callbacks=[curve, Mode()]).fit(model, dm)
    model.eval()
    with torch.no_grad():
        batches = itertools.islice(dm.test_dataloader(), 2)
        expected = torch.cat([model(dm.transform(x)).argmax(1) for x, _ in batches])
        model.train()
        batches = itertools.islice(dm.test_dataloader(), 2)
        in_train_mode = torch.cat([model(dm.transform(x)).argmax(1) for x, _ in batches])
    assert torch.equal(curve.last[0], expected) and not torch.equal(expected, in_train_mode)
    assert modes == [True, True]


def test_the_curve_s_training_loss_is_the_logged_train_loss() -> None:
    # Digits' 1,438 training images in batches of 32 end with one of 30: the mean of the
    # batches' means would weigh each of its images more than the others'.
    from classic_cnns import create_model
    from classic_cnns.bench.accuracy import Curve

    dm = make_datamodule("digits", None, batch_size=32)
    curve = Curve(dm, "cpu", limit=1)
    model = create_model("lenet5", num_classes=10, in_channels=1)
    trainer = core.trainer("cpu", epochs=1, limit=None, callbacks=[curve])
    trainer.fit(model, dm)
    assert len(dm.train_dataloader().dataset) % 32 == 30
    logged = float(trainer.callback_metrics["train_loss"])
    assert curve.points[-1]["train_loss"] == pytest.approx(logged, rel=1e-6)


def test_an_accuracy_equal_to_the_target_reaches_it() -> None:
    # 8,900 of 10,000 right is 0.89 exactly; float32 makes it 0.8899999857, below the target.
    from types import SimpleNamespace

    from lightning.pytorch.plugins.precision import Precision

    from classic_cnns.bench.accuracy import Curve

    labels = torch.arange(10_000) % 10

    class Right8900(torch.nn.Module):  # the image is its index: right for the first 8,900
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            i = x[:, 0].long()
            return torch.nn.functional.one_hot((i + (i >= 8_900).long()) % 10, 10).float()

    dm = SimpleNamespace(
        transform=lambda x: x, test_dataloader=lambda: [(torch.arange(10_000.0)[:, None], labels)]
    )
    curve = Curve(dm, "cpu")  # type: ignore[arg-type]
    trainer = SimpleNamespace(global_step=0, precision_plugin=Precision())  # fp32
    curve.on_train_start(trainer, Right8900())
    assert curve.points[-1]["test_acc"] == 0.89 and curve.points[-1]["test_acc"] >= 0.89


def test_the_files_and_plots_of_a_run(
    tmp_path: Path, throughput: Results, accuracy: Results
) -> None:
    results = Results(rows=throughput.rows | accuracy.rows, data=throughput.data | accuracy.data)
    write(results, tmp_path, [tp.report, accuracy_report], "classic-cnns bench", plots=True)
    pngs = {"throughput.png", "accuracy_vs_time.png", "confusion_digits.png"}
    assert {p.name for p in tmp_path.iterdir()} == {"throughput.csv", "accuracy.csv",
                                                    "results.json", "report.md", *pngs}  # fmt: skip
    report = (tmp_path / "report.md").read_text()
    assert all(f"({name})" in report for name in pngs)  # each plot shown in the report
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["rows"]["accuracy"][0]["run"] == "lenet5/digits"


@pytest.mark.parametrize(("seconds", "labelled"), [((1.5, 7.7), True), ((0.5, 300.0), False)])
def test_the_time_axis_is_labelled_within_a_decade(
    tmp_path: Path, accuracy: Results, monkeypatch: pytest.MonkeyPatch,
    seconds: tuple[float, float], labelled: bool,
) -> None:  # fmt: skip
    # Training times of 1.5 to 7.7 s (the optimizer comparison's) hold no decade tick, and
    # the minor ticks had no labels: a bare time axis. Over decades, the decades say it.
    import classic_cnns.bench.accuracy as accuracy_mode

    drawn: list[Any] = []
    monkeypatch.setattr(accuracy_mode, "save_png", lambda fig, path: drawn.append(fig))
    data = json.loads(json.dumps(accuracy.data))  # a copy, with other times
    for points in data["curves"].values():
        for p, t in zip(points, [0.0, *seconds], strict=False):
            p["train_s"] = t
    accuracy_report(Results(rows=accuracy.rows, data=data), tmp_path)
    ax = drawn[0].axes[0]
    drawn[0].canvas.draw()
    lo, hi = ax.get_xlim()

    def shown(labels: list[Any]) -> list[str]:
        return [t.get_text() for t in labels if t.get_text() and lo <= t.get_position()[0] <= hi]

    minor, major = shown(ax.xaxis.get_minorticklabels()), shown(ax.xaxis.get_majorticklabels())
    assert (bool(minor), bool(major)) == (labelled, not labelled), (major, minor)


def test_the_accuracy_figure_names_each_runs_lr_and_ticks_whole_epochs(
    tmp_path: Path, accuracy: Results, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The optimizer comparison runs each optimizer at its own lr, which the legend did not
    # say; the loss panel of 2 epochs had ticks at 1.2, 1.4, ...
    import classic_cnns.bench.accuracy as accuracy_mode

    drawn: list[Any] = []
    monkeypatch.setattr(accuracy_mode, "save_png", lambda fig, path: drawn.append(fig))
    accuracy_report(accuracy, tmp_path)
    ax_acc, ax_loss = drawn[0].axes
    assert list(accuracy.data["curves"]) == ["lenet5/digits"]  # lenet5/mnist: no training set
    assert ax_acc.get_legend_handles_labels()[1] == ["lenet5/digits, lr 0.1"]
    drawn[0].canvas.draw()
    lo, hi = ax_loss.get_xlim()
    ticks = [t for t in ax_loss.get_xticks() if lo <= t <= hi]
    assert ticks and all(t == int(t) for t in ticks), ticks


def test_without_matplotlib_a_report_given_a_folder_says_how_to_get_it(
    tmp_path: Path, throughput: Results, accuracy: Results, monkeypatch: Any
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    for report, results in ((tp.report, throughput), (accuracy_report, accuracy)):
        assert report(results, None)  # the tables need no matplotlib
        with pytest.raises(ImportError, match=r"report draws with matplotlib, which is not "
                           r"installed: pip install 'classic-cnns\[plot\]'"):  # fmt: skip
            report(results, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("failing", [0, 1, 2])  # throughput.png, accuracy_vs_time, confusion
def test_a_plot_that_fails_leaves_the_earlier_run_s_plot_whole(
    tmp_path: Path, throughput: Results, accuracy: Results, failing: int, monkeypatch: Any
) -> None:
    from matplotlib.figure import Figure

    results = Results(rows=throughput.rows | accuracy.rows, data=throughput.data | accuracy.data)
    write(results, tmp_path, [tp.report, accuracy_report], "classic-cnns bench", plots=True)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    save, calls = Figure.savefig, []

    def cut_short(fig: Any, target: Any, **kwargs: Any) -> None:  # a disk that fills up
        save(fig, target, **kwargs)
        calls.append(target)
        if len(calls) == failing + 1:
            Path(target).write_bytes(Path(target).read_bytes()[:16])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", cut_short)
    with pytest.raises(OSError, match="No space left"):
        write(results, tmp_path, [tp.report, accuracy_report], "classic-cnns bench", plots=True)
    assert len(calls) == failing + 1
    assert {p.name for p in tmp_path.iterdir()} == set(before)  # no temporary file left
    for name in ("throughput.png", "accuracy_vs_time.png", "confusion_digits.png", "report.md"):
        assert (tmp_path / name).read_bytes() == before[name], name  # the earlier run's, whole


def test_recipes_reach_the_image_size_as_fit_does(mnist_raw: Path) -> None:
    # Padding by up to 4 pixels a side (MNIST 28 -> 32, as LeCun did), else resizing: Digits'
    # 8x8 images padded to 32x32 would be specks (LeNet-5 then reached 78% instead of 97%).
    digits = make_datamodule("digits", None, 32, image_size=32)
    mnist = make_datamodule("mnist10k", mnist_raw.parent.parent, 128, image_size=32)
    assert (digits.resize_mode, mnist.resize_mode) == ("resize", "pad")
    assert digits.dims == mnist.dims == (1, 32, 32)


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
        # The book's init_weights; its VGG-11 divides every convolution's width by 4.
        narrow = (("width_mult", 0.25),) if model == "vgg11" else ()
        assert (b.options, o.options) == ((("weight_init", "xavier"), *narrow), ())
        r = model_info(model).recipe  # what `fit` takes by default
        assert [getattr(o, f) for f in same] == [getattr(r, f) for f in same]
        assert o.image_size == r.small_image_size


def _readme_d2l_table() -> dict[str, tuple[int, int, int, float, float, float]]:
    # README's d2l table: model -> (px, epochs, batch, lr, zh, en) of its book's columns.
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- --8<-- [start:d2l] -->")[1].split("| chapter | model |")[1]
    rows = [line for line in block.split("\n\n")[0].splitlines()[2:] if line.startswith("|")]
    table = {}
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        model = re.match(r"`(\w+)`", cells[1]).group(1)  # type: ignore[union-attr]
        px, epochs, batch, lr = cells[2].split(", ")
        zh, en = re.match(r"([\d.]+)% / ([\d.]+)%", cells[3]).groups()  # type: ignore[union-attr]
        table[model] = (int(px), int(epochs), int(batch), float(lr), float(zh), float(en))
    return table


def test_d2l_book_figures_and_settings_are_the_readme_s_table() -> None:
    table = _readme_d2l_table()
    assert len(table) == 8 and set(D2L_BOOK) == set(table)  # a new chapter needs its row
    # The README: "LeNet takes 28 px padded to 32"; "NiN and DenseNet ... take 32 px instead
    # of 224 and 96" (CIFAR designs without the book's stride-4 stem).
    own_px = dict(lenet5=32, lenet5_bn=32, nin=32, densenet_bc_100=32)
    for model, (px, epochs, batch, lr, zh, en) in table.items():
        size = own_px.get(model, px)
        book_size, book_batch, book_lr, book_zh, book_en = D2L_BOOK[model]
        assert (book_size, book_batch, book_lr) == (size, batch, lr), model
        assert (round(100 * book_zh, 1), round(100 * book_en, 1)) == (zh, en), model
        r = RECIPES[f"{model}/fashion_mnist/d2l"]
        assert (r.image_size, r.epochs, r.batch_size, r.lr) == (size, epochs, batch, lr), model


def test_the_recipes_are_set_as_the_reference_report_describes_them() -> None:
    # The published reference run's accuracy table: run name -> its recipe, described.
    report = ROOT / "benchmarks/results/reference/bench/report.md"
    rows = [line.split(" | ") for line in report.read_text(encoding="utf-8").splitlines()]
    described = {r[0].lstrip("| "): r[1] for r in rows if len(r) > 2 and r[0][2:] in RECIPES}
    assert "lenet5/mnist10k/sgd" in described and len(described) >= 15
    with (report.parent / "accuracy.csv").open(newline="") as f:  # and as the run recorded
        recorded = {row["run"]: row for row in csv.DictReader(f)}
    for name, description in described.items():
        recipe, theirs = RECIPES[name], description.split(", ")
        ours = recipe.describe().split(", ")
        size = next(i for i, f in enumerate(ours) if f.endswith(" px"))
        if ours[size] == "own px":  # the run shows the model's own size it resolved to
            ours[size] = theirs[size]
        assert ours == theirs, name
        run = recorded[name]
        assert (float(run["momentum"]), float(run["weight_decay"])) == (
            recipe.momentum,
            recipe.weight_decay,
        ), name


def test_a_recipes_options_are_one_readable_csv_cell(tmp_path: Path) -> None:
    # No Fashion-MNIST in tmp_path: the row is skipped before any training, options and all.
    s = Settings(recipes=("vgg11/fashion_mnist/d2l",), backend="cpu", data_dir=tmp_path)
    results = run_tasks(tasks(s, seed=0), Results(), threads=1)
    write(results, tmp_path / "out", [accuracy_report], "test", plots=False)
    with (tmp_path / "out" / "accuracy.csv").open(newline="") as f:
        (row,) = csv.DictReader(f)
    assert (row["status"], row["options"]) == ("skipped", "weight_init=xavier width_mult=0.25")


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real Fashion-MNIST, decompressed (its recompressed .gz files fail the md5 check)."""
    raw = tmp_path_factory.mktemp("data") / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for path in FASHION_RAW.glob("*.gz"):
        with gzip.open(path) as f_in, (raw / path.stem).open("wb") as f_out:
            shutil.copyfileobj(f_in, f_out)
    return raw.parent.parent


@pytest.mark.slow
def test_one_real_fashion_mnist_step_of_each_recipe_and_overhead(fashion_dir: Path) -> None:
    s = Settings(recipes=("*/fashion_mnist",), backend="cpu", data_dir=fashion_dir,
                 max_image_size=32, max_epochs=1, limit_train_batches=1)  # fmt: skip
    results = run_tasks(tasks(s, seed=0), Results(), threads=1)
    lenet, resnet = results.rows["accuracy"]
    assert lenet["status"] == resnet["status"] == "ok"
    assert (lenet["train_images"], resnet["train_images"]) == (1024, 256)  # one batch each
    assert (lenet["test_images"], resnet["test_images"]) == (1024, 256)
    assert (resnet["image_size"], resnet["precision"], resnet["channels_last"]) == (
        32, "bf16-mixed", True)  # fmt: skip
    assert results.data["confusion"]["resnet18/fashion_mnist"]["classes"][0] == "T-shirt/top"
    setting = dev.Setting("resnet18", "fashion_mnist", 32, 8, "bf16-mixed", True)
    dev._overhead(setting, "cpu", 2, 1, 1, 0, fashion_dir, results)
    for r in results.rows["overhead"]:
        assert r["status"] == "ok" and r["images_per_epoch"] == 8 and r["vs_network"] > 0
        assert (r["input_size"], r["precision"], r["channels_last"]) == (
            "32x32",
            "bf16-mixed",
            True,
        )


def test_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--throughput.backends", "[cpu]", "--dry_run", "true"]) == 0
    labels = capsys.readouterr().out.splitlines()
    assert [t for t in labels if t.endswith("compiled")] == [
        "throughput lenet5 cpu fp32 contiguous compiled"]  # fmt: skip
    assert labels[-2:] == ["accuracy lenet5/digits", "accuracy lenet5/mnist10k"]
    assert "throughput lenet5 cpu fp16-mixed contiguous eager (skipped)" in labels  # CUDA only
    argv = ["--modes", "[throughput]", "--throughput.compile", "[resnet18/bf16-mixed/*]"]
    argv += ["--throughput.models", "[resnet1*]", "--throughput.backends", "[cpu]"]
    argv += ["--dry_run", "true"]
    assert main(argv) == 0
    labels = capsys.readouterr().out.splitlines()
    assert "throughput resnet110 cpu fp32 contiguous eager" in labels
    assert [t for t in labels if t.endswith("compiled")] == [
        "throughput resnet18 cpu bf16-mixed contiguous compiled"]  # fmt: skip
    # Compiling takes long: every eager configuration comes first, then the closing peak.
    assert labels[-2:] == ["throughput resnet18 cpu bf16-mixed contiguous compiled",
                           "peak cpu again, MFU"]  # fmt: skip
    bad = [["--throughput.models", "[lenet]"], ["--modes", "[speed]"]]
    bad += [["--throughput.precisions", "[fp8]"], ["--accuracy.recipes", "[nothing]"]]
    for flags in bad:
        assert main([*flags, "--dry_run", "true"]) == 2
    assert "Did you mean" in capsys.readouterr().err
    # Out-of-range numbers are refused, not read as "unset" or left to fail in a run.
    for flag, value, message in (
        ("--throughput.repeats", "0", "throughput.repeats must be an int of at least 1; got 0"),
        ("--throughput.batch_size", "0", "batch_size must be an int of at least 1 (or None)"),
        ("--throughput.warmup", "-3", "throughput.warmup must be an int of at least 0; got -3"),
        ("--accuracy.max_epochs", "0", "accuracy.max_epochs must be an int of at least 1"),
        ("--accuracy.limit_train_batches", "0", "accuracy.limit_train_batches must be an int"),
        ("--threads", "0", "threads must be an int of at least 1 (or None); got 0"),
        ("--accuracy.time_to_accuracy", "{lenet5/digits: 96}", "in (0, 1] (0.9 for 90%); got 96"),
        ("--accuracy.time_to_accuracy", "{lenet5/digitz: 0.9}", "no recipe 'lenet5/digitz'"),
    ):
        assert main([flag, value, "--dry_run", "true"]) == 2, flag
        assert "classic-cnns bench: error: " in (err := capsys.readouterr().err), flag
        assert message in err, flag
    out, argv = tmp_path / "run", ["--modes", "[accuracy]", "--accuracy.recipes", "[lenet5/digits]"]
    argv += ["--accuracy.max_epochs", "1", "--accuracy.limit_train_batches", "1"]
    argv += ["--accuracy.backend", "cpu", "--plots", "false"]  # on a GPU machine too
    argv += ["--threads", "1", "--out", str(out)]
    assert main(argv) == 0
    assert {p.name for p in out.iterdir()} == {"accuracy.csv", "results.json", "report.md"}
    capsys.readouterr()
    assert main(argv) == 2  # an existing result is refused, and left as it was
    assert capsys.readouterr().err.startswith("classic-cnns bench: error: ")
    assert main([*argv, "--force", "true"]) == 0


def test_list_flags_take_bare_and_comma_separated_words(capsys: pytest.CaptureFixture[str]) -> None:
    # --modes throughput is what a user types first; jsonargparse wants '[throughput]'.
    listed = ["--modes", "[accuracy]", "--accuracy.recipes", "[lenet5/dig*,lenet5/mnist10k]"]
    assert main([*listed, "--dry_run", "true"]) == 0
    expected = capsys.readouterr().out
    assert expected.splitlines() == ["accuracy lenet5/digits", "accuracy lenet5/mnist10k"]
    for words in (
        ["--modes", "accuracy", "--accuracy.recipes", "lenet5/dig*, lenet5/mnist10k"],
        ["--modes=accuracy", "--accuracy.recipes=lenet5/dig*,lenet5/mnist10k"],
    ):
        assert main([*words, "--dry_run", "true"]) == 0, words
        assert capsys.readouterr().out == expected, words
    # A flag without its value, and an empty list, are refused before any work.
    assert main(["--modes", "--dry_run", "true"]) == 2
    assert "--modes: expected one argument" in capsys.readouterr().err
    assert main(["--modes", "[]", "--dry_run", "true"]) == 2
    assert "modes must name one or more of ['throughput', 'accuracy']; got []" in (
        capsys.readouterr().err
    )
    # An empty value is no list of words (it ran no model at all); '[]' still says "none".
    for empty in (["--throughput.models="], ["--throughput.models", ""]):
        assert main(["--modes", "throughput", *empty, "--dry_run", "true"]) == 2, empty
        assert 'Parser key "throughput.models"' in capsys.readouterr().err


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: tp.Settings(repeats=2.5), "throughput.repeats must be an int of at least 1; got"),
        (lambda: tp.Settings(warmup=None), "throughput.warmup must be an int of at least 0; got"),
        (lambda: tp.Settings(min_time=math.inf), "min_time must be a finite number of at least"),
        (
            lambda: Settings(time_to_accuracy={"lenet5/digits": True}),
            "time_to_accuracy['lenet5/digits'] must be a test accuracy in (0, 1]",
        ),
        # An empty list measured nothing; an unknown precision was timed as fp16-mixed.
        (lambda: tp.Settings(models=()), "throughput.models must be a non-empty list of names"),
        (
            lambda: tp.Settings(backends=("gpu",)),
            "throughput.backends must be a non-empty list of ['cpu', 'cuda', 'mps']; got ('gpu',)",
        ),
        (lambda: tp.Settings(precisions=("fp8",)), "throughput.precisions must be a non-empty"),
        (lambda: tp.Settings(memory_formats="contiguous"), "memory_formats must be a non-empty"),
        (lambda: Settings(recipes=[]), "accuracy.recipes must be a non-empty list of names; got"),
        # Accepted, "gpu" reached torch as a device name after the data was loaded.
        (
            lambda: Settings(backend="gpu"),
            "accuracy.backend must be one of ['auto', 'cpu', 'cuda', 'mps']; got 'gpu'",
        ),
    ],
)
def test_settings_in_python_are_checked_as_on_the_command_line(
    make: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError) as info:
        make()
    assert message in str(info.value)


def test_a_budget_skips_the_rest_and_results_are_saved_after_every_task(tmp_path: Path) -> None:
    def boom(results: Results) -> None:
        raise RuntimeError("no compiler")

    saved = []
    done = [Task("broken", boom, "throughput", fields=dict(model="m"))]
    done.append(Task("fine", lambda r: r.add("throughput", "cpu", model="n"), "throughput"))
    results = run_tasks(done, Results(), after_each=lambda: saved.append(1))
    failed, fine = results.rows["throughput"]
    assert (failed["status"], failed["model"]) == ("failed", "m")
    assert failed["note"] == "RuntimeError: no compiler"
    assert fine["status"] == "ok" and len(saved) == 2
    closing = Task("last", lambda r: r.add("throughput", "cpu", model="z"), "throughput",
                   closing=True)  # fmt: skip
    results = run_tasks([*done, closing], Results(), budget_s=0.0)
    *skipped, last = results.rows["throughput"]
    assert len(skipped) == len(done) and all(
        r["status"] == "skipped" and "budget of 0 s" in r["note"] for r in skipped
    )
    assert (last["model"], last["status"]) == ("z", "ok")  # a closing task runs regardless
    # Written after each task: a run killed mid-way keeps what it finished.
    task = Task("t", lambda r: r.add("throughput", "cpu", model="m"), "throughput")
    slow = Task("slow", lambda r: (_ for _ in ()).throw(KeyboardInterrupt), "throughput")
    assert dev.core.execute([task, slow], [], tmp_path / "o", "x", {}) == 130
    saved_rows = json.loads((tmp_path / "o" / "results.json").read_text())["rows"]
    assert saved_rows["throughput"][0]["model"] == "m"
    # Ctrl-C in a Trainer.fit: Lightning catches it and calls sys.exit(1) instead,
    # which ended the bench with status 1 and no word (accuracy's and dev.py's fits).
    from lightning.pytorch.demos.boring_classes import BoringModel

    class CtrlC(L.Callback):
        def on_train_batch_start(self, *args: Any) -> None:
            raise KeyboardInterrupt

    def fit(results: Results) -> None:
        L.Trainer(max_steps=2, callbacks=[CtrlC()], logger=False, enable_checkpointing=False,
                  enable_progress_bar=False).fit(BoringModel())  # fmt: skip

    handler = signal.getsignal(signal.SIGINT)
    try:
        fits = [task, Task("fit", fit, "accuracy")]
        assert dev.core.execute(fits, [], tmp_path / "f", "x", {}) == 130
    finally:
        signal.signal(signal.SIGINT, handler)  # (Lightning puts it back; in case it did not)
    assert json.loads((tmp_path / "f" / "results.json").read_text())["rows"]["throughput"]
    # Another SystemExit is no interrupt: it goes on, as before.
    quits = Task("quits", lambda r: sys.exit(3), "throughput")
    with pytest.raises(SystemExit):
        dev.core.execute([quits], [], tmp_path / "q", "x", {})


def test_a_task_s_seconds_are_the_time_it_ran() -> None:
    # Bounds, not a speed: the task sleeps 0.05 s and the call around it lasts longer.
    start = time.perf_counter()
    results = run_tasks([Task("nap", lambda r: time.sleep(0.05), "throughput")], Results())
    wall = time.perf_counter() - start
    assert 0.05 <= results.task_s["nap"] <= results.wall_s <= wall


def test_an_image_size_below_the_channel_count_is_not_called_the_minimum() -> None:
    # ResNet-20 at 2x2 (its minimum is 1x1): the size's max took the 3 channels for a side.
    s = tp.Settings(batch_size=4, repeats=1, warmup=0, min_time=0.0, max_image_size=2)
    results = Results()
    tp.measure(s, 0, "resnet20", "cpu", "fp32", "contiguous", False, results)
    (row,) = results.ok("throughput")
    assert row["input_size"] == "3x2x2" and row["note"] is None


def test_the_default_batch_is_128_for_a_tiny_network_else_32() -> None:
    s = tp.Settings(max_image_size=32, repeats=1, warmup=0, min_time=0.0)
    results = Results()
    for name in ("lenet5", "resnet18"):
        tp.measure(s, 0, name, "cpu", "fp32", "contiguous", False, results)
    batches = {(r["model"], r["impl"]): r["batch_size"] for r in results.ok("throughput")}
    assert batches == {
        ("lenet5", "classic_cnns"): 128,
        ("resnet18", "classic_cnns"): 32,
        ("resnet18", "torchvision"): 32,
    }
    # The smallest batch there is, as the docstring's minimum of 1 says.
    assert tp.Settings(batch_size=1).batch_size == 1


def test_overhead_is_relative_to_the_handwritten_loop() -> None:
    results = Results()
    dev._overhead(dev.Setting(dataset="digits"), "cpu", 2, 1, 2, 0, None, results)
    rows = {r["loop"]: r for r in results.rows["overhead"]}
    assert list(rows) == ["network", "handwritten", "lightning", "lightning_bare"]
    hand, network = rows["handwritten"], rows["network"]
    assert hand["overhead_pct"] == 0 and network["overhead_pct"] is None
    for r in rows.values():
        assert r["images_per_epoch"] == 2 * 128 and r["input_size"] == "32x32"
        assert r["limit_train_batches"] == 2  # a smoke run says so: the targets want whole epochs
        assert r["ips"] == r["images_per_epoch"] / r["epoch_s_median"]
        assert r["vs_network"] == r["ips"] / network["ips"]
    for r in (rows["lightning"], rows["lightning_bare"]):
        for key, column in (("epoch_s", "overhead_pct"), ("step_ms", "overhead_step_pct")):
            expected = 100 * (r[f"{key}_median"] / hand[f"{key}_median"] - 1)
            assert math.isclose(r[column], expected)
    # GoogLeNet trains with its auxiliary heads' losses (weight 0.3, as the task): the
    # hand-written and loss-only steps took cross_entropy of its output tuple, and failed.
    googlenet = dev.Setting(model="googlenet", dataset="digits", image_size=32, batch_size=16)
    dev._overhead(googlenet, "cpu", 2, 1, 1, 0, None, results)
    rows = {r["loop"]: r for r in results.rows["overhead"] if r["model"] == "googlenet"}
    assert {loop: r["status"] for loop, r in rows.items()} == dict.fromkeys(dev.LOOPS, "ok")
    # A device that is not there: a skipped row per loop, with the reason (no Trainer built).
    absent = "mps" if not torch.backends.mps.is_available() else "cuda"
    dev._overhead(dev.Setting(dataset="digits"), absent, 2, 1, 2, 0, None, results)
    skipped = [r for r in results.rows["overhead"] if r["backend"] == absent]
    assert [r["status"] for r in skipped] == ["skipped"] * 4
    assert skipped[0]["note"] == unavailable(absent) is not None


@pytest.mark.slow
def test_scaling_rows_and_efficiency_from_the_same_run(tmp_path: Path) -> None:
    # 2 threads in all: 1 process with both, 1 with one, 2 with one each.
    setting = dev.Setting(dataset="digits")
    assert dev.scaling(tmp_path, setting, epochs=2, limit_train_batches=2, threads=2) == 0
    found = json.loads((tmp_path / "results.json").read_text())["rows"]["scaling"]
    rows = {(r["processes"], r["threads_per_process"]): r for r in found}
    assert {r["limit_train_batches"] for r in found} == {2}  # a smoke run's rows say so
    assert list(rows) == [(1, 2), (1, 1), (2, 1)]
    for (n, _), r in rows.items():  # every process's 2 batches of 128 per epoch
        assert math.isclose(r["ips"] * r["epoch_s_median"], n * 2 * 128)
    two = rows[2, 1]
    assert math.isclose(two["efficiency"], two["ips"] / (2 * rows[1, 1]["ips"]))
    assert math.isclose(two["vs_one_process_all_threads"], two["ips"] / rows[1, 2]["ips"])


@pytest.mark.slow
def test_densenet_memory_efficient_step_takes_less_memory(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert dev.memory("densenet_bc_100", batch_size=16, image_size=32) == 0
    plain, efficient = (float(line.split(": ")[-1].split()[0]) for line in
                        capsys.readouterr().out.splitlines())  # fmt: skip
    assert 0 < efficient < 0.75 * plain  # about 320 against 600 MiB


def test_pipeline_yields_the_same_batches_and_a_same_run_speedup(
    tmp_path: Path, mnist_raw: Path
) -> None:
    data_dir, out = mnist_raw.parent.parent, tmp_path / "pipeline"
    assert dev.pipeline(out, repeats=1, limit_train_batches=2, data_dir=data_dir) == 0
    ours, tv = json.loads((out / "results.json").read_text())["rows"]["pipeline"]
    assert "## pipeline" in (out / "report.md").read_text()
    assert ours["outputs_match"] is True and ours["images"] == tv["images"] == 2 * 128
    assert tv["speedup"] == tv["epoch_s_median"] / ours["epoch_s_median"]


def test_a_dev_measurement_without_its_data_is_skipped_with_the_bench_advice(
    tmp_path: Path,
) -> None:
    # dev.py has no download flag: its note said "Pass download=True" (fit's advice).
    out = tmp_path / "pipeline"
    assert dev.pipeline(out, dataset="fashion_mnist", repeats=1, data_dir=tmp_path) == 0
    (row,) = json.loads((out / "results.json").read_text())["rows"]["pipeline"]
    assert row["status"] == "skipped" and row["note"].startswith("FileNotFoundError: Fashion")
    assert f"missing from {tmp_path / 'FashionMNIST' / 'raw'}" in row["note"]
    assert "Choose another data_dir (the bench downloads nothing)" in row["note"]
    assert "download=True" not in row["note"]


def test_the_optimizer_comparison_recipes_differ_in_the_optimizer_only() -> None:
    found = {n: r for n, r in RECIPES.items() if n.startswith("lenet5/mnist10k/")}
    assert sorted(found) == [f"lenet5/mnist10k/{v}" for v in sorted(
        ("sgd", "nesterov", "rmsprop", "adam", "adamw"))]  # fmt: skip
    same = {(r.model, r.dataset, r.scheduler, r.batch_size, r.epochs) for r in found.values()}
    assert same == {("lenet5", "mnist10k", "none", 128, 5)}  # a constant learning rate each
    assert {(r.optimizer, r.momentum) for r in found.values()} == {
        ("sgd", 0.0), ("sgd", 0.9), ("rmsprop", 0.0), ("adam", 0.0), ("adamw", 0.0)}  # fmt: skip


def test_targets_file(tmp_path: Path, throughput: Results, accuracy: Results) -> None:
    found = json.loads((ROOT / "benchmarks" / "targets.json").read_text())
    assert found["time_to_accuracy"]["resnet18/fashion_mnist"] == 0.94
    assert all(name in RECIPES for name in found["time_to_accuracy"])
    overhead = Results()
    dev._overhead(dev.Setting(dataset="digits"), "cpu", 2, 1, 1, 0, None, overhead)
    row = dict(status="ok", pipeline="torchvision", speedup=2.0, limit_train_batches=None)
    pipeline = Results(rows={"pipeline": [row]})
    columns: dict[str, set[str]] = {}
    for part in (throughput, accuracy, overhead, pipeline):  # every column a target names exists
        for mode, rows in part.rows.items():
            columns.setdefault(mode, set()).update(*rows)
    for t in found["targets"]:
        named = [t["column"]] if isinstance(t["column"], str) else t["column"]
        assert {*named, *t.get("where", {})} <= columns[t["mode"]], t["text"]
    for i, part in enumerate((throughput, accuracy, overhead, pipeline)):
        (tmp_path / str(i)).mkdir()
        (tmp_path / str(i) / "results.json").write_text(json.dumps({"rows": part.rows}))
    assert dev.targets(tmp_path) == 0
    lines = (tmp_path / "targets.md").read_text().splitlines()
    verdicts = [line.rsplit("|", 2)[-2].strip() for line in lines if line.startswith("| ")][1:]
    assert len(verdicts) == len(found["targets"])
    assert set(verdicts) <= {"met", "not met", "not measured"}
    assert verdicts[2] == "not met"  # the pipeline's 2x is below the 5x wanted


def test_a_target_shows_the_value_that_misses_however_many_were_measured(tmp_path: Path) -> None:
    rows = [dict(status="ok", pipeline="torchvision", speedup=v) for v in [*range(6, 16), 2.0]]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text(json.dumps({"rows": {"pipeline": rows}}))
    target = {"text": "5x", "mode": "pipeline", "column": "speedup", "min": 5}
    (tmp_path / "targets.json").write_text(json.dumps({"targets": [target]}))
    assert dev.targets(tmp_path / "run", tmp_path / "targets.json") == 0
    row = (tmp_path / "run" / "targets.md").read_text().splitlines()[-1]
    assert row == "| 5x | 2, 6, 7, 8, 9, 10, 11, 12, ... (3 more) | not met |"


def test_spread() -> None:
    stats = spread("x", [4.0, 1.0, 3.0, 2.0])
    assert stats == {"x_median": 2.5, "x_q1": 1.75, "x_q3": 3.25, "x_min": 1.0, "x_max": 4.0}
    assert spread("x", [5.0])["x_q1"] == 5.0 and spread("x", [])["x_median"] is None


@pytest.mark.skipif(
    sys.platform == "win32" or shutil.which("bash") is None,
    reason="a syntax check of bash scripts needs bash (on Windows, `bash` may be WSL's)",
)
def test_the_shell_scripts_parse() -> None:
    for script in ("run_gpu.sh", "run_reference.sh"):
        subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / script)], check=True)


def test_the_dev_script_runs() -> None:
    help_ = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "dev.py"), "--help"],
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert all(c in help_ for c in ("overhead", "scaling", "pipeline", "memory", "targets"))
    assert replace(dev.Setting(), model="x").model == "x"


def test_the_step_profile_compares_the_task_with_a_loss_only_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import profile_step  # benchmarks/profile_step.py

    argv = ["--out", str(tmp_path), "--backend", "cpu", "--dataset", "digits"]
    assert profile_step.main([*argv, "--warmup", "3", "--steps", "4"]) == 0
    table = (tmp_path / "report.md").read_text().splitlines()
    assert table[2] == "Steps 3 to 7 of lenet5, digits, batch 128, fp32, cpu:"
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in table[-2:]}
    assert set(rows) == {"task", "bare"}
    assert {p.name for p in tmp_path.iterdir()} == {"report.md", "task.txt", "bare.txt"}
    calls = {k: int(v[-1].strip(" |")) for k, v in rows.items()}
    assert calls["task"] > calls["bare"] > 0  # the checks and the metrics: more calls a step
    assert all(v[3] == "0" and v[4] == "0.00" for v in rows.values())  # no device on the CPU
    assert "Steps 3 to 7" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        profile_step.main([*argv, "--steps", "0"])


def test_the_report_names_the_devices_the_rows_ran_on(tmp_path: Path) -> None:
    results = Results()
    results.add("throughput", "cpu", model="lenet5")
    results.rows["throughput"].append({**results.rows["throughput"][0], "device_name": "H200"})
    absent = {"backend": "cuda", "status": "skipped", "device_name": "absent"}  # no GPU: no device
    results.rows["throughput"].append({**results.rows["throughput"][0], **absent})
    write(results, tmp_path, [], "classic-cnns bench")
    header = (tmp_path / "report.md").read_text().splitlines()[4:7]
    cpu = results.rows["throughput"][0]["device_name"]
    assert header[0] == "| devices | torch | torchvision | lightning |"
    assert header[2].startswith(f"| {'; '.join(sorted([cpu, 'H200']))} | {torch.__version__} |")


def test_targets_want_their_accuracy_and_whole_epochs(tmp_path: Path, mnist_raw: Path) -> None:
    # Smoke runs of both CPU targets' configurations: time to 1% accuracy, one batch an epoch.
    data, runs = mnist_raw.parent.parent, tmp_path / "runs"
    s = Settings(recipes=("lenet5/mnist10k",), time_to_accuracy={"lenet5/mnist10k": 0.01},
                 backend="cpu", data_dir=data, max_epochs=1, limit_train_batches=1)  # fmt: skip
    out = str(runs / "bench")  # a str, as os.PathLike: either is a path
    assert bench(("accuracy",), accuracy=s, threads=1, out=out, plots=False) == 0
    assert dev.overhead(runs / "overhead", epochs=2, repeats=1, limit_train_batches=1,
                        data_dir=data, threads=1) == 0  # fmt: skip
    given = json.loads((runs / "overhead" / "results.json").read_text())["settings"]
    assert given == dict(settings=[asdict(dev.LENET)], backend="cpu", epochs=2, repeats=1,
                         limit_train_batches=1)  # fmt: skip

    def verdicts(folder: Path) -> list[str]:
        assert dev.targets(folder) == 0
        lines = (folder / "targets.md").read_text().splitlines()
        return [line.rsplit("|", 2)[-2].strip() for line in lines if line.startswith("| ")][1:]

    assert dev.pipeline(runs / "pipeline", "digits", repeats=1, limit_train_batches=1,
                        threads=1) == 0  # fmt: skip
    found = verdicts(runs)
    assert found[0] == found[2] == found[3] == "not measured"  # a smoke run meets none
    # The committed reference run keeps its verdicts (copied: `targets` writes into the folder).
    for path in (ROOT / "benchmarks" / "results" / "reference").rglob("results.json"):
        shutil.copytree(path.parent, tmp_path / "reference" / path.parent.name)
    found = verdicts(tmp_path / "reference")
    assert found == ["not met", "met", "met", "met", "met", *["not measured"] * 5]
    committed = ROOT / "benchmarks" / "results" / "reference" / "targets.md"  # not stale
    assert (tmp_path / "reference" / "targets.md").read_text() == committed.read_text()


def test_an_absent_accuracy_backend_is_skipped_not_swapped_for_the_cpu() -> None:
    s = Settings(recipes=("lenet5/digits",), backend=ABSENT, max_epochs=1, limit_train_batches=1)
    assert s.device() == ABSENT and Settings(backend="auto").device() != ABSENT
    (row,) = run_tasks(tasks(s, seed=0), Results(), threads=1).rows["accuracy"]
    assert (row["status"], row["backend"], row["note"]) == ("skipped", ABSENT, unavailable(ABSENT))


def test_a_run_records_its_threads_and_a_command_to_paste_back_and_out_is_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Skipped rows only (an absent backend): the files of a run, in no time.
    threads, out = torch.get_num_threads(), tmp_path / "run"
    argv = ["--modes", "[throughput]", "--throughput.backends", f"[{ABSENT}]", "--plots", "false"]
    argv += ["--throughput.models", "[lenet5, resnet18]", "--threads", str(threads + 1)]
    assert main([*argv, "--out", str(out)]) == 0 and torch.get_num_threads() == threads
    saved = json.loads((out / "results.json").read_text())
    (row,) = saved["rows"]["throughput"]
    assert saved["environment"]["threads"] == row["threads"] == threads + 1  # not the restored
    assert shlex.split(saved["command"]) == ["classic-cnns", "bench", *argv, "--out", str(out)]
    (tmp_path / "file").write_text("kept")  # --force replaces a folder, never a file
    assert main([*argv, "--out", str(tmp_path / "file"), "--force", "true"]) == 2
    assert "file is a file, not a folder; --out must be a folder" in capsys.readouterr().err


def test_quick_is_honoured_in_a_config_file_and_beside_a_full_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def labels(*argv: str) -> list[str]:
        assert main([*argv, "--modes", "[accuracy]", "--dry_run", "true"]) == 0
        return capsys.readouterr().out.splitlines()

    quick, config = labels("--quick"), str(tmp_path / "quick.yaml")
    assert quick == ["accuracy lenet5/digits", "accuracy lenet5/mnist10k"]
    with pytest.raises(SystemExit):  # --print_config prints, then exits
        main(["--quick", "--print_config"])
    (tmp_path / "dump.yaml").write_text(capsys.readouterr().out)
    assert labels("--config", str(tmp_path / "dump.yaml")) == quick
    Path(config).write_text("quick: true\n")
    assert labels("--config", config) == quick
    with pytest.raises(SystemExit):  # every field at its default, as YAML
        main(["--print_config"])
    (tmp_path / "full.yaml").write_text(capsys.readouterr().out)
    assert labels("--config", str(tmp_path / "full.yaml"), "--quick") == quick
    # A config's own value, not a default, wins over --quick's; so does a flag.
    (tmp_path / "mine.yaml").write_text("quick: true\naccuracy: {recipes: [lenet5/mnist10k]}\n")
    assert labels("--config", str(tmp_path / "mine.yaml")) == quick[1:]
    assert labels("--quick", "--accuracy.recipes", "['*/digits']") == quick[:1]
    with pytest.raises(SystemExit):  # and --print_config shows what will run
        main(["--config", config, "--print_config"])
    assert "- lenet5/mnist10k" in capsys.readouterr().out


def test_dev_refuses_counts_that_leave_nothing_to_measure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command, flags, message in (
        (dev.overhead, dict(epochs=1), "overhead: --epochs must be an int of at least 2; got 1"),
        (dev.scaling, dict(epochs=1), "scaling: --epochs must be an int of at least 2; got 1"),
        (dev.scaling, dict(processes=(0,)), "--processes must be an int of at least 2; got 0"),
        (dev.scaling, dict(processes=(4, -2)), "--processes must be an int of at least 2; got -2"),
        (dev.overhead, dict(epochs=0, repeats=0), "--epochs must be an int of at least 2; got 0"),
        (dev.pipeline, dict(repeats=0), "pipeline: --repeats must be an int of at least 1; got 0"),
        (dev.pipeline, dict(limit_train_batches=0), "--limit_train_batches must be an int of"),
    ):  # data_dir empty: a count let through would end in skipped rows at once
        assert command(tmp_path / "out", data_dir=tmp_path, threads=1, **flags) == 2, message
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_the_docs_state_the_cap_on_steps_per_repeat() -> None:
    cap = f"within {tp.MAX_STEPS:,} steps"  # a tiny network's repeat may end before min_time
    readme = (ROOT / "benchmarks" / "README.md").read_text()
    assert cap in " ".join(str(tp.Settings.__doc__).split()) and cap in readme


def test_force_replaces_an_earlier_runs_files_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A folder that is not a run's is refused whole, --force or not: nothing in it is removed.
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "mydata.txt").write_text("precious")
    (victim / "sub" / "code.py").write_text("x")
    skipped = ["--plots", "false", "--threads", "1"]  # skipped rows only: no work, no time
    throughput = ["--modes", "throughput", "--throughput.backends", ABSENT, *skipped]
    assert main([*throughput, "--out", str(victim), "--force", "true"]) == 2
    err = capsys.readouterr().err
    assert str(victim) in err and "'mydata.txt'" in err and "no run's results.json" in err
    assert sorted(p.relative_to(victim).as_posix() for p in victim.rglob("*")) == [
        "mydata.txt", "sub", "sub/code.py"]  # fmt: skip
    # An earlier run's folder: its own files go (a mode no longer run, its plots), others stay.
    run = tmp_path / "run"
    assert main([*throughput, "--out", str(run)]) == 0
    (run / "sub").mkdir()
    for name in ("notes.txt", "sub/results.json", "other.png", "throughput.png"):
        (run / name).write_text("mine" if name != "throughput.png" else "a plot")
    with (run / "report.md").open("a") as f:  # as a report shows its plots
        f.write("\n![throughput](throughput.png)\n")
    accuracy = ["--modes", "accuracy", "--accuracy.backend", ABSENT, *skipped]
    assert main([*accuracy, "--out", str(run), "--force", "true"]) == 0
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*")) == [
        "accuracy.csv", "notes.txt", "other.png", "report.md", "results.json", "sub",
        "sub/results.json"]  # fmt: skip
    assert f"3 files in {run}" in capsys.readouterr().out  # the run's files, not the others
    assert json.loads((run / "results.json").read_text())["settings"]["modes"] == ["accuracy"]
    # A results.json whose names reach out of the folder: nothing outside it goes.
    (tmp_path / "precious.csv").write_text("kept")
    (run / "results.json").write_text(json.dumps({"command": "x", "rows": {"../precious": []}}))
    assert main([*accuracy, "--out", str(run), "--force", "true"]) == 0
    assert (tmp_path / "precious.csv").read_text() == "kept"


def test_force_keeps_the_earlier_run_until_this_one_has_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The earlier run's files went before the first task: Ctrl-C then left an empty report.
    run = tmp_path / "run"
    throughput = ["--modes", "throughput", "--throughput.backends", ABSENT, "--plots", "false"]
    assert main([*throughput, "--out", str(run)]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert sorted(before) == ["report.md", "results.json", "throughput.csv"]

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(core, "run_tasks", interrupted)
    assert main([*throughput, "--out", str(run), "--force", "true"]) == 130
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    assert "interrupted; the tasks that finished are in" in capsys.readouterr().err
    # A first task that adds no rows (throughput's peak) is no result either: the save
    # after it wiped the earlier run, and the Ctrl-C in the next task left an empty folder.
    monkeypatch.undo()
    peak = Task("peak", lambda r: r.data.setdefault("peak", 1.0), "throughput", rows=False)
    stop = Task("stop", lambda r: (_ for _ in ()).throw(KeyboardInterrupt), "throughput")
    assert core.execute([peak, stop], [], run, "x", {}, force=True) == 130
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    # A write that fails keeps the earlier run's files that were not written again: they
    # were removed before the new files were written, and a full disk then lost both runs.
    real = core.atomic_path

    def full_at_the_report(path: Path) -> Any:
        if path.name == "report.md":
            raise OSError(28, "No space left on device")
        return real(path)

    monkeypatch.setattr(core, "atomic_path", full_at_the_report)
    task = Task("one", lambda r: r.add("throughput", "cpu", model="lenet5"), "throughput")
    with pytest.raises(OSError, match="No space left"):
        core.execute([task], [], run, "x", {}, force=True)
    assert (run / "report.md").read_bytes() == before["report.md"]
    assert sorted(p.name for p in run.iterdir()) == sorted(before)


def test_an_out_that_cannot_be_written_is_refused_before_any_task(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It was found when the first task's results were saved: minutes of training lost.
    ran: list[str] = []
    task = Task("one", lambda r: ran.append("ran"), "throughput")
    (tmp_path / "file").write_text("a file")
    assert core.execute([task], [], tmp_path / "file" / "run", "bench", {}) == 2
    assert ran == [] and "file is a file, not a folder; --out must" in capsys.readouterr().err


def test_quick_keeps_its_values_beside_a_modes_own_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    def printed(*argv: str) -> dict[str, Any]:
        with pytest.raises(SystemExit):
            main(["--quick", *argv, "--print_config"])
        return dict(yaml.safe_load(capsys.readouterr().out)["throughput"])

    file = tmp_path / "tp.yaml"
    file.write_text("repeats: 7\n")
    expected = printed("--throughput.repeats", "7")  # a flag names one field: quick keeps the rest
    assert expected == {**tp.QUICK, "repeats": 7, "backends": ["cpu", "cuda", "mps"],
                        "precisions": ["fp32", "bf16-mixed", "fp16-mixed"], "batch_size": None,
                        "models": ["lenet5", "resnet18"], "compile": ["lenet5/fp32/contiguous"],
                        "memory_formats": ["contiguous", "channels_last"]}  # fmt: skip
    for argv in (["--throughput", str(file)], [f"--throughput={file}"],
                 ["--throughput", "{repeats: 7}"]):  # fmt: skip
        assert printed(*argv) == expected, argv  # so does the mode's file: it sets repeats only


def test_the_seed_is_checked_before_any_work(capsys: pytest.CaptureFixture[str]) -> None:
    # Lightning's seed_everything takes [0, 2**32) (numpy's bound), the tightest of the seeders.
    for seed in ("-1", str(2**32), str(2**64)):
        assert main(["--modes", "accuracy", "--seed", seed, "--dry_run", "true"]) == 2, seed
        assert f"seed must be an int in [0, 2**32); got {seed}" in capsys.readouterr().err
    assert main(["--modes", "accuracy", "--seed", str(2**32 - 1), "--dry_run", "true"]) == 0
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\*\*32\); got -1"):
        bench(("throughput",), seed=-1, dry_run=True)


def test_an_epoch_on_the_clock_includes_the_modules_epoch_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The task logs its epoch metrics in on_train_epoch_end: Lightning's own loop, timed.
    from classic_cnns.bench.core import Clock, trainer
    from classic_cnns.hub import create_model

    monkeypatch.chdir(tmp_path)
    dm = make_datamodule("digits", None, 32)
    model, clock, seen = create_model("lenet5", num_classes=10, in_channels=1), Clock("cpu"), []
    hook = model.on_train_epoch_end

    def on_train_epoch_end() -> None:
        seen.append(len(clock.epochs))  # the epochs the clock had ended when the module's ran
        hook()

    monkeypatch.setattr(model, "on_train_epoch_end", on_train_epoch_end)
    trainer("cpu", epochs=2, limit=1, callbacks=[clock]).fit(model, dm)
    assert seen == [0, 1] and len(clock.epochs) == 2  # each epoch ended after the module's hook
    assert list(tmp_path.iterdir()) == []
    # A plain callback: a user's Trainer with a clock still checkpoints as Lightning does (a
    # Checkpoint subclass had replaced its ModelCheckpoint, and test() found no best model).

    quiet = dict(logger=False, enable_progress_bar=False, enable_model_summary=False)
    user = L.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1,
                     callbacks=[Clock("cpu")], **quiet)  # fmt: skip
    user.fit(create_model("lenet5", num_classes=10, in_channels=1), dm)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["epoch=0-step=2.ckpt"]
    user.test(datamodule=dm, verbose=False)  # the best checkpoint, restored
    L.Trainer(enable_checkpointing=False, callbacks=[Clock("cpu")], **quiet)


def test_dev_and_the_datamodules_refuse_bad_input_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match=r"dataset must be one of \['digits', 'mnist10k'.*'nope'"):
        make_datamodule("nope", None, 8)
    out = tmp_path / "out"
    for call, message in (
        (
            lambda: dev.pipeline(out, dataset="nope"),
            "pipeline: dataset must be one of ['mnist10k',",
        ),
        (lambda: dev.pipeline(out, seed=-1), "--seed must be an int in [0, 2**32); got -1"),
        (lambda: dev.overhead(out, (dev.Setting(dataset="nope"),)), "dataset must be one of"),
        (lambda: dev.scaling(out, dev.Setting(model="lenet")), "Did you mean 'lenet5'"),
        (lambda: dev.targets(tmp_path / "absent"), "absent is not a folder; expected a folder"),
        (
            lambda: dev.memory("lenet5"),
            "--model must be a model with the memory_efficient option, one of [",
        ),
        (  # memory's sizes are ints: "(or None)" offered what its parser refuses
            lambda: dev.memory(image_size=8),  # DenseNet-121: 29 px at least
            "--image_size must be an int of at least 29; got 8",
        ),
        (lambda: dev.overhead(out, limit_train_batches=0), "at least 1 (or None); got 0"),
        (lambda: dev.scaling(out, processes=()), "--processes must list at least one"),
    ):
        assert call() == 2, message
        assert message in capsys.readouterr().err
    assert not out.exists()  # refused before any work


def test_the_pipelines_compare_the_same_work_or_claim_no_speedup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Digits' 8x8 images are resized to 32x32 by the datamodule: by torchvision's too.
    def rows(out: Path) -> list[dict[str, Any]]:
        assert dev.pipeline(out, "digits", repeats=1, limit_train_batches=1, threads=1) == 0
        return list(json.loads((out / "results.json").read_text())["rows"]["pipeline"])

    ours, tv = rows(tmp_path / "same")
    assert ours["outputs_match"] is tv["outputs_match"] is True
    assert tv["speedup"] == tv["epoch_s_median"] / ours["epoch_s_median"]
    monkeypatch.setattr(dev.transforms, "Resize", lambda size: dev.transforms.Pad(12))
    ours, tv = rows(tmp_path / "different")  # batches that differ: no speedup claimed
    assert (tv["outputs_match"], tv["speedup"], ours["speedup"]) == (False, None, None)
    assert "differ" in tv["note"]


def test_a_spent_budget_skips_whole_rows_and_notes_each_mode(tmp_path: Path) -> None:
    out, argv = tmp_path / "b0", ["--modes", "throughput,accuracy", "--plots", "false"]
    argv += ["--throughput.models", "lenet5", "--throughput.backends", "cpu", "--threads", "1"]
    argv += ["--throughput.precisions", "fp32", "--throughput.compile", "[]"]
    argv += ["--throughput.min_time", "0", "--accuracy.recipes", "lenet5/digits"]
    argv += ["--accuracy.backend", "cpu", "--accuracy.max_epochs", "2", "--budget", "0"]
    assert main([*argv, "--out", str(out)]) == 0
    saved = json.loads((out / "results.json").read_text())
    (row,) = saved["rows"]["throughput"]  # the peaks complete other rows: none of their own
    assert (row["status"], row["model"], row["impl"], row["precision"]) == (
        "skipped", "lenet5", "classic_cnns", "fp32")  # fmt: skip
    (skip,) = saved["rows"]["accuracy"]  # the recipe as it would have run
    assert (skip["status"], skip["image_size"], skip["epochs"]) == ("skipped", 32, 2)
    assert "batch 32, 2 epochs, 32 px, fp32" in (out / "report.md").read_text()
    spent = "skipped, not run: the time budget of 0 s was spent"  # a note for each mode
    assert saved["notes"] == [f"throughput on cpu: {spent}", f"accuracy on cpu: {spent}"]
    # One reason in two modes: a note for each.
    results = Results()
    for mode in ("throughput", "accuracy", "accuracy"):
        results.add(mode, ABSENT, "skipped", note=unavailable(ABSENT))
    assert results.notes == [f"{m} on {ABSENT}: skipped, {unavailable(ABSENT)}"
                             for m in ("throughput", "accuracy")]  # fmt: skip
