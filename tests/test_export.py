"""Export round trips (ONNX, torch.export, TorchScript, safetensors) and folder predictions."""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import fsspec
import lightning as L
import pytest
import torch

import classic_cnns
from classic_cnns import LeNet5, ResNet, create_model, load_model
from classic_cnns.data.mnist import read_idx
from classic_cnns.export import FORMATS, export_main, export_model, save_safetensors
from classic_cnns.files import CheckpointError, load_checkpoint, read_weights_file
from classic_cnns.hub import load_weights
from classic_cnns.predict import PredictionCSV, predict_folder, predict_main
from conftest import symlink, write_png

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings(r"ignore:`torch\.jit\.load` is deprecated:FutureWarning"),
]

ARCHS = {"lenet5": "lenet5_bn", "resnet20": "resnet20"}


def _save(model: L.LightningModule, path: Path) -> Path:
    # Batch norm statistics away from their defaults, so that exporting them matters.
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    L.seed_everything(0, verbose=False)
    lenet = LeNet5(arch="lenet5_bn", num_classes=10)
    lenet.data_config = {
        "mean": [0.1307],
        "std": [0.3081],
        "image_size": [32, 32],
        "resize": "pad",
        "class_names": [f"digit {d}" for d in range(10)],
    }
    resnet = ResNet("resnet20", num_classes=7, in_channels=3)
    return {
        "lenet5": _save(lenet, root / "lenet5.ckpt"),
        "resnet20": _save(resnet, root / "r.ckpt"),
    }


@pytest.mark.parametrize("name", ["lenet5", "resnet20"])
@pytest.mark.parametrize("format", ["onnx", "pt2", "torchscript", "safetensors"])
def test_export_round_trip_matches_pytorch(checkpoints, tmp_path, name: str, format: str) -> None:
    pytest.importorskip("onnxruntime" if format == "onnx" else "torch")
    if format == "safetensors":
        pytest.importorskip("safetensors")
    output = tmp_path / f"model.{format}"
    assert export_main([str(checkpoints[name]), "--format", format, "--output", str(output)]) == 0
    assert output.is_file() and [p.name for p in tmp_path.iterdir()] == [output.name]
    cls = ResNet if name == "resnet20" else LeNet5
    reference = cls.load_from_checkpoint(checkpoints[name]).eval()
    x = torch.randn(5, reference.in_channels, 32, 32)
    with torch.no_grad():
        expected = reference(x)
        if format == "torchscript":
            got = torch.jit.load(str(output))(x)
        elif format == "pt2":
            got = torch.export.load(str(output)).module()(x)
        elif format == "onnx":
            import onnxruntime as ort

            session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
            got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
        else:
            got = create_model(ARCHS[name], checkpoint_path=str(output)).eval()(x)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_safetensors_holds_the_hyperparameters_and_data_configuration(checkpoints, tmp_path):
    pytest.importorskip("safetensors")
    path = tmp_path / "lenet.safetensors"
    export_model(LeNet5.load_from_checkpoint(checkpoints["lenet5"]), path, "safetensors")
    file = read_weights_file(path)
    assert file.arch == "lenet5_bn" and file.hparams["num_classes"] == 10
    assert file.data["class_names"][3] == "digit 3"
    assert set(file.state_dict) == set(LeNet5(arch="lenet5_bn").net.state_dict())
    # create_model takes the file's hyperparameters as defaults; arguments given win.
    model = create_model("lenet5_bn", checkpoint_path=str(path))
    assert model.num_classes == 10 and model.data_config["mean"] == [0.1307]
    with pytest.warns(UserWarning, match=r"fc.weight \(shape \(10, 84\) in the source, \(3, 84\)"):
        assert create_model("lenet5_bn", checkpoint_path=str(path), num_classes=3).num_classes == 3
    with pytest.raises(ValueError, match=r"holds a 'lenet5_bn' network; got arch='lenet5'"):
        create_model("lenet5", checkpoint_path=str(path))


def test_a_failed_check_writes_nothing_and_existing_files_are_kept(
    checkpoints, tmp_path, capsys, monkeypatch
):
    model = LeNet5.load_from_checkpoint(checkpoints["lenet5"])
    # An exporter that gets the model wrong: the reloaded file answers zeros.
    with monkeypatch.context() as patch:
        patch.setattr(torch.jit, "load", lambda *a, **k: lambda x: torch.zeros(len(x), 10))
        with pytest.raises(ValueError, match=r"differ from PyTorch's by up to .* was not written"):
            export_model(model, tmp_path / "m.pt", "torchscript")
    assert list(tmp_path.iterdir()) == []
    # Nor does it replace a file that is already there, even with overwrite=True.
    (tmp_path / "m.pt").write_text("keep me")
    with monkeypatch.context() as patch:
        patch.setattr(torch.jit, "load", lambda *a, **k: lambda x: torch.zeros(len(x), 10))
        with pytest.raises(ValueError, match=r"differ from PyTorch's"):
            export_model(model, tmp_path / "m.pt", "torchscript", overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
    assert (tmp_path / "m.pt").read_text() == "keep me"
    (tmp_path / "m.pt").unlink()
    with pytest.raises(ValueError, match=r"atol must be a finite number >= 0; got -1.0"):
        export_model(model, tmp_path / "m.pt", "torchscript", atol=-1.0)
    for size in [(1, 32), (1, 32.7, 32), "1,32,32", (1, 0, 32)]:  # 32.7 was cut to 32
        with pytest.raises(
            ValueError,
            match=rf"input_size must be \(C, H, W\) of positive ints; got {re.escape(repr(size))}",
        ):
            export_model(model, tmp_path / "m.pt", "torchscript", input_size=size)  # type: ignore[arg-type]
    # A string: this ValueError, not the comparison's TypeError.
    with pytest.raises(ValueError, match=r"atol must be a finite number >= 0; got '1e-3'"):
        export_model(model, tmp_path / "m.pt", "torchscript", atol="1e-3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"path must be a file's path \(str or Path\); got None"):
        export_model(model, None, "torchscript")  # type: ignore[arg-type]
    # An input_size of other channels than the network's 1, or too small: the model's own
    # check's facts, with advice about input_size (not about a datamodule, nor a batch of 3).
    for size, fact in (
        ((3, 32, 32), r"lenet5_bn was built for 1 input channel\(s\); got a batch with 3 "),
        ((1, 16, 16), r"lenet5_bn needs images of at least 32x32 \(H x W\); got 16x16 "),
    ):
        given = re.escape(str(size))
        with pytest.raises(ValueError, match=rf"^input_size {given} does not fit lenet5_bn: "
                           rf"{fact}\(shape \(1, {size[0]}, {size[1]}, {size[2]}\)\)\. Give "
                           r"input_size \(--input-size\) as \(C, H, W\) it takes, e\.g\. "
                           r"\(1, 32, 32\)$"):  # fmt: skip
            export_model(model, tmp_path / "out" / "m.pt", "torchscript", input_size=size)
    assert list(tmp_path.iterdir()) == []
    # atol=0 accepts an exact file: safetensors' weights rebuild the very same logits.
    result = export_model(model, tmp_path / "m.safetensors", "safetensors", atol=0.0)
    assert result.max_abs_diff == 0.0 and result.path.is_file()
    result.path.unlink()
    # --format has no default: the command asks for it (argparse's exit status 2).
    with pytest.raises(SystemExit) as exit_info:
        export_main([str(checkpoints["lenet5"])])
    assert exit_info.value.code == 2
    assert "the following arguments are required: --format" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    existing = tmp_path / "m.onnx"
    existing.write_text("keep me")
    assert (
        export_main([str(checkpoints["lenet5"]), "--format", "onnx", "--output", str(existing)])
        == 2
    )
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert existing.read_text() == "keep me"
    symlink(dangling := tmp_path / "link.onnx", tmp_path / "gone")  # the command's words too
    assert (
        export_main([str(checkpoints["lenet5"]), "--format", "onnx", "--output", str(dangling)])
        == 2
    )
    assert f"{dangling} exists; pass --overwrite" in capsys.readouterr().err
    dangling.unlink()
    argv = [str(checkpoints["lenet5"]), "--format", "onnx", "--output", str(tmp_path)]
    assert export_main([*argv, "--overwrite"]) == 2  # a folder is no file to write
    assert f"export: error: --output {tmp_path} is a folder; give a file" in capsys.readouterr().err
    new = f"{tmp_path}/new/"  # a folder's path, though none is there: no file named "new"
    assert export_main([str(checkpoints["lenet5"]), "--format", "onnx", "--output", new]) == 2
    assert f"--output {new} is a folder; give a file" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    assert export_main([str(tmp_path / "nope.ckpt"), "--format", "onnx"]) == 2
    assert "export: error: " in (err := capsys.readouterr().err)
    assert "nope.ckpt: no such weights file" in err
    # No --output, and the input has the format's suffix (an exported file, say): the
    # default output is the input, which the message says, not "the checkpoint itself".
    existing.rename(onnx := tmp_path / "x.onnx")
    assert export_main([str(onnx), "--format", "onnx"]) == 2
    assert f"--output {onnx} is the input itself (.onnx); export reads a .ckpt or" in (
        capsys.readouterr().err
    )
    assert onnx.read_text() == "keep me"


def test_onnx_without_the_onnx_package_says_what_to_install(checkpoints, tmp_path, capsys,
                                                            monkeypatch) -> None:  # fmt: skip
    # A plain `pip install classic-cnns` has no onnx: torch's exporter raised its own error
    # (a RuntimeError, 37 lines of traceback from the CLI), not the ImportError documented.
    for name in ("onnx", "onnxscript", "onnxruntime"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    with pytest.raises(ImportError, match=r"needs the onnx package .* pip install onnx onnxscript"):
        export_model(LeNet5(), tmp_path / "m.onnx", "onnx")
    out = tmp_path / "cli.onnx"
    assert export_main([str(checkpoints["lenet5"]), "--format", "onnx", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "needs the onnx package" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_networks_it_cannot_write_are_refused_naming_why(tmp_path) -> None:
    # A network changed after it was built: its hyperparameters no longer rebuild it.
    model = create_model("resnet20")
    model.net.layer1 = torch.nn.Sequential(model.net.layer1, torch.nn.Identity())
    with pytest.raises(ValueError) as info:
        export_model(model, tmp_path / "edited.safetensors", "safetensors")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'edited.safetensors'} was not written: ")
    assert "60 key(s) of the file do not fit ResNetNet" in message and ".tmp" not in message
    assert list(tmp_path.iterdir()) == []
    # A head replaced by one of 5 classes: the file's hyperparameters build 10, so its two
    # tensors would not load (a warning when loading, refused here).
    model = LeNet5()
    model.net.fc = torch.nn.Linear(84, 5)
    with pytest.raises(ValueError) as info:
        export_model(model, tmp_path / "head.safetensors", "safetensors")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'head.safetensors'} was not written: ")
    assert "2 key(s) not loaded from the file into LeNet5Net" in message
    assert list(tmp_path.iterdir()) == []
    # Weights in another dtype than float32 (a bf16-true run's).
    with pytest.raises(TypeError, match=r"float32 networks; this one has \['torch.bfloat16'\]"):
        export_model(LeNet5().to(torch.bfloat16), tmp_path / "m.onnx", "onnx")


def test_a_pt2_program_that_answers_wrong_is_not_written(tmp_path, monkeypatch) -> None:
    class Wrong:  # a loaded program whose module answers zeros
        def module(self):
            return lambda x: torch.zeros(len(x), 10)

    monkeypatch.setattr(torch.export, "load", lambda *a, **k: Wrong())
    with pytest.raises(ValueError, match=r"pt2 model's logits differ .*m\.pt2 was not written"):
        export_model(LeNet5(), tmp_path / "m.pt2", "pt2")
    assert list(tmp_path.iterdir()) == []


def test_a_memory_efficient_densenet_traces_to_torchscript(tmp_path) -> None:
    # Traced with gradients on, its layers took the checkpointed branch and tracing failed.
    model = create_model("densenet_bc_100", memory_efficient=True)
    result = export_model(model, tmp_path / "d.pt", "torchscript", input_size=(3, 16, 16))
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-5


def test_predict_folder_writes_file_class_and_probability(checkpoints, tmp_path, mnist_raw, capsys):
    images = read_idx(mnist_raw / "t10k-images-idx3-ubyte.gz")[:6]
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, image in enumerate(images):
        write_png(image[None], str(folder / f"{i}.png"))
    (folder / "readme.txt").write_text("ignored")
    output = tmp_path / "out" / "predictions.csv"
    assert predict_main([str(checkpoints["lenet5"]), str(folder), "--output", str(output)]) == 0
    with output.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == [f"{i}.png" for i in range(6)]
    symlink(dangling := tmp_path / "link.csv", tmp_path / "gone")  # the command's words
    assert predict_main([str(checkpoints["lenet5"]), str(folder), "--output", str(dangling)]) == 2
    assert f"{dangling} exists; pass --overwrite" in capsys.readouterr().err
    # One image a batch (--batch-size 1, the smallest) gives the same table.
    single = tmp_path / "single.csv"
    args = [str(checkpoints["lenet5"]), str(folder), "--output", str(single), "--batch-size", "1"]
    assert predict_main(args) == 0
    with single.open(newline="") as f:
        one_by_one = list(csv.DictReader(f))
    assert [(r["file"], r["class_index"]) for r in one_by_one] == [
        (r["file"], r["class_index"]) for r in rows
    ]
    assert [float(r["probability"]) for r in one_by_one] == pytest.approx(
        [float(r["probability"]) for r in rows], abs=2e-6
    )
    assert all(r["class"] == f"digit {r['class_index']}" for r in rows)
    assert all(0.1 <= float(r["probability"]) <= 1 for r in rows)
    # The CSV agrees with the model on the same preprocessing (28x28 padded to 32x32).
    model = LeNet5.load_from_checkpoint(checkpoints["lenet5"]).eval()
    x = torch.nn.functional.pad(images[:, None].float() / 255, (2, 2, 2, 2))
    with torch.no_grad():
        probs = model((x - 0.1307) / 0.3081).softmax(-1)
    assert [int(r["class_index"]) for r in rows] == probs.argmax(1).tolist()
    assert [float(r["probability"]) for r in rows] == pytest.approx(
        probs.max(1).values.tolist(), abs=2e-6
    )  # rounded to 6 decimals in the CSV
    assert predict_folder(model, folder)[0]["probability"] == pytest.approx(
        float(rows[0]["probability"])
    )
    # A model kept in bf16 (as a fit with precision="bf16-true" leaves it) or float64 gets
    # its images in its own dtype; it raised a TypeError that advised converting the batch.
    for dtype, tolerance in ((torch.bfloat16, 2e-2), (torch.float64, 2e-6)):
        other = predict_folder(copy.deepcopy(model).to(dtype), folder)
        assert [r["class_index"] for r in other] == [int(r["class_index"]) for r in rows]
        assert [r["probability"] for r in other] == pytest.approx(
            [float(r["probability"]) for r in rows], abs=tolerance
        )
    # The command refuses, --overwrite or not, to write its CSV over one of the images.
    image = folder / "0.png"
    before = image.read_bytes()
    args = [str(checkpoints["lenet5"]), str(folder), "--output", str(image), "--overwrite"]
    assert predict_main(args) == 2
    assert "0.png is one of the images to classify" in capsys.readouterr().err
    assert image.read_bytes() == before
    # Without --output the CSV goes to standard output.
    assert predict_main([str(checkpoints["lenet5"]), str(folder)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "file,class,class_index,probability"
    # A model that does not know its normalisation asks for it.
    with pytest.raises(ValueError, match="pass mean and std"):
        predict_folder(LeNet5(), folder)
    assert json.loads(json.dumps(rows))  # plain strings and numbers


@pytest.mark.skipif(sys.platform == "win32", reason="a file-size limit is POSIX's (RLIMIT_FSIZE)")
@pytest.mark.parametrize("format", FORMATS)
def test_an_export_the_disk_cannot_hold_is_an_error_and_keeps_the_earlier_file(
    checkpoints, tmp_path, format: str
) -> None:
    # torch's own writers aborted the process on a full disk (SIGABRT, status 134), and
    # could leave their hidden temporary file; a file-size limit fails the same write. The
    # ONNX and safetensors writers' errors named no file (or the temporary one).
    import resource

    output = tmp_path / f"model.{format}"
    assert (
        export_main([str(checkpoints["lenet5"]), "--format", format, "--output", str(output)]) == 0
    )
    before = output.read_bytes()
    command = [sys.executable, "-m", "classic_cnns", "export", str(checkpoints["lenet5"]),
               "--format", format, "--output", str(output), "--overwrite"]  # fmt: skip
    limit = len(before) // 2

    def small_files() -> None:  # in the child: writes past `limit` bytes fail (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    run = subprocess.run(
        command, capture_output=True, text=True, preexec_fn=small_files, timeout=300
    )
    assert run.returncode == 2, run.stderr[-3000:]
    assert f"[Errno 27] cannot write {output}: File too large; the {output.name} there is kept" in (
        run.stderr
    )
    assert output.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [output.name]


def test_exported_files_get_the_usual_permissions(checkpoints, tmp_path) -> None:
    import os

    umask = os.umask(0o022)
    os.umask(umask)
    model = LeNet5.load_from_checkpoint(checkpoints["lenet5"])
    # As a plain open() would create them (a bare mkstemp would make them owner-only, and
    # safetensors' save_file writes its file owner-only).
    for name, fmt in (("m.pt", "torchscript"), ("m.safetensors", "safetensors")):
        export_model(model, tmp_path / name, fmt)
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_predict_folder_refuses_bad_arguments_and_stale_class_names(checkpoints, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    write_png(torch.zeros(1, 28, 28, dtype=torch.uint8), str(folder / "a.png"))
    model = LeNet5.load_from_checkpoint(checkpoints["lenet5"])
    with pytest.raises(ValueError, match=r"batch_size must be a positive int; got 0"):
        predict_folder(model, folder, batch_size=0)
    with pytest.raises(ValueError, match=r"mean and std need 1 value\(s\) each.*got 3 and 3"):
        predict_folder(model, folder, mean=(0.5,) * 3, std=(0.2,) * 3)
    with pytest.raises(ValueError, match=r"give mean and std together"):
        predict_folder(model, folder, mean=(0.5,))
    with pytest.raises(FileNotFoundError, match=r"missing: no such folder"):
        predict_folder(model, tmp_path / "missing")
    with pytest.raises(ValueError, match=r"device must be such as 'cpu' or 'cuda:0'; got 'gpu0'"):
        predict_folder(model, folder, device="gpu0")
    cuda = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU, or the first of none
    with pytest.raises(ValueError, match=rf"device '{cuda}' is not available here"):
        predict_folder(model, folder, device=cuda)
    assert predict_main([str(checkpoints["lenet5"]), str(folder), "--device", cuda]) == 2
    assert f"device '{cuda}' is not available here" in capsys.readouterr().err
    # "meta" left the caller's model on meta, its weights gone; xpu without one: a traceback.
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    for device in ("meta", "xpu"):
        with pytest.raises(ValueError, match=rf"device '{device}' is not available here"):
            predict_folder(model, folder, device=device)
        assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no image files \(.png, .*\) in .*empty"):
        predict_folder(model, tmp_path / "empty", output=tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
    for name in ("cat", "dog", ".cache"):  # an ImageFolder layout: the images are one level down
        (tmp_path / "empty" / name).mkdir()
    with pytest.raises(
        FileNotFoundError,
        match=r"empty; it has subfolders \(cat, dog\): pass recursive=True \(--recursive\)",
    ):
        predict_folder(model, tmp_path / "empty")
    assert predict_main([str(checkpoints["lenet5"]), str(folder), "--batch-size", "0"]) == 2
    assert "--batch-size must be at least 1; got 0" in capsys.readouterr().err
    # A new head, not trained yet: the recorded names belong to the old classes.
    with pytest.warns(UserWarning, match="not loaded"):
        three = LeNet5.load_from_checkpoint(checkpoints["lenet5"], num_classes=3)
    three.data_config = {**model.data_config}  # as on_load_checkpoint restores it
    with pytest.warns(UserWarning, match=r"records 10 class names for its 3 classes"):
        (row,) = predict_folder(three, folder)
    assert row["class"] == str(row["class_index"])


def test_predict_folder_writes_the_readable_images_and_names_the_others(
    checkpoints, tmp_path, mnist_raw, capsys
):
    images = read_idx(mnist_raw / "t10k-images-idx3-ubyte.gz")[:3]
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, image in enumerate(images):
        write_png(image[None], str(folder / f"{i}.png"))
    (folder / "3_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png")
    output = tmp_path / "predictions.csv"
    ckpt = str(checkpoints["lenet5"])
    assert predict_main([ckpt, str(folder), "--output", str(output)]) == 0
    with output.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["file"] for r in rows] == ["0.png", "1.png", "2.png"]
    err = capsys.readouterr().err
    assert "wrote 3 predictions to" in err
    assert "skipped them: 1 of the 4 image files cannot be read: 3_broken.png (" in err
    # An existing output is kept unless --overwrite, and the checkpoint is never the output.
    written = output.read_bytes()
    assert predict_main([ckpt, str(folder), "--output", str(output)]) == 2
    assert f"{output} exists; pass --overwrite" in capsys.readouterr().err
    assert output.read_bytes() == written
    assert predict_main([ckpt, str(folder), "--output", ckpt, "--overwrite"]) == 2
    assert f"--output {ckpt} is the checkpoint itself; pick another" in capsys.readouterr().err
    assert LeNet5.load_from_checkpoint(ckpt)  # still the checkpoint
    assert predict_main([ckpt, str(folder), "--output", str(folder), "--overwrite"]) == 2
    assert f"--output {folder} is a folder; give a file" in capsys.readouterr().err
    assert predict_main([ckpt, str(folder), "--output", f"{folder}.csv/"]) == 2  # a folder's
    assert f"--output {folder}.csv/ is a folder; give a file" in capsys.readouterr().err
    assert predict_main([ckpt, str(folder), "--output", str(output), "--overwrite"]) == 0
    capsys.readouterr()
    # The same rows as a folder of the good images alone.
    model = LeNet5.load_from_checkpoint(checkpoints["lenet5"])
    with pytest.warns(UserWarning, match=r"skipped them: 1 of the 4 .* read: 3_broken\.png") as w:
        python_rows = predict_folder(model, folder)
    assert [warning.filename for warning in w] == [__file__]  # the predict_folder line
    assert [str(r["class_index"]) for r in python_rows] == [r["class_index"] for r in rows]
    # Refused up front when asked: nothing is written, every bad file is named.
    output.unlink()
    assert predict_main([ckpt, str(folder), "--output", str(output), "--on-error", "raise"]) == 2
    err = capsys.readouterr().err
    assert "1 of the 4 image files cannot be read" in err and "nothing written" in err
    assert not output.exists()
    with pytest.raises(ValueError, match=r"1 of the 4 image files cannot be read: 3_broken\.png"):
        predict_folder(model, folder, on_error="raise")
    # A folder of unreadable files only: an error, not an empty CSV.
    for i in range(3):
        (folder / f"{i}.png").unlink()
    assert predict_main([ckpt, str(folder), "--output", str(output)]) == 2
    assert "1 of the 1 image files cannot be read" in capsys.readouterr().err
    assert not output.exists()


def test_export_and_predict_leave_the_model_as_they_found_it(tmp_path) -> None:
    # As torch.onnx.export and Lightning's to_onnx do: the mode (and device) come back. A
    # compiled network is traced without torch.compile's wrapper, which tracing cannot see.
    model = LeNet5(compile=True)
    model.net.compile()
    model.train()
    result = export_model(model, tmp_path / "m.pt", "torchscript")
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-4
    assert model.training and all(m.training for m in model.modules())
    assert model.net._compiled_call_impl is not None  # still compiled
    # A model in eval mode stays so: later predictions must not run batch norm on batch
    # statistics (nor move its running ones).
    evaluating = LeNet5(arch="lenet5_bn").eval()
    export_model(evaluating, tmp_path / "e.pt", "torchscript")
    (tmp_path / "eval").mkdir()
    write_png(torch.zeros(1, 32, 32, dtype=torch.uint8), tmp_path / "eval" / "a.png")
    predict_folder(evaluating, tmp_path / "eval", mean=(0.5,), std=(0.25,))
    assert not any(m.training for m in evaluating.modules())
    # The other way to compile a network, torch.compile's wrapper module in its place, as
    # the fine-tuning docs do: each format failed inside torch, tracing the wrapper.
    wrapped = LeNet5()
    wrapped.net = torch.compile(wrapped.net)  # type: ignore[assignment]
    for format in ("torchscript", "pt2", "onnx"):  # (onnx: the dev extra's)
        result = export_model(wrapped, tmp_path / f"w.{format}", format)
        assert result.max_abs_diff is not None and result.max_abs_diff < 1e-4, format
    assert isinstance(wrapped.net, torch._dynamo.eval_frame.OptimizedModule)
    folder = tmp_path / "images"
    folder.mkdir()
    write_png(torch.zeros(1, 32, 32, dtype=torch.uint8), str(folder / "a.png"))
    plain = LeNet5().train()  # (a compiled one would compile here: slow)
    (row,) = predict_folder(plain, folder, mean=(0.5,), std=(0.25,))
    assert row["file"] == "a.png" and plain.training


@pytest.mark.parametrize(
    ("format", "name", "what"),
    [
        ("torchscript", "m.torchscript.pt", r"a TorchScript archive \(.*torch\.jit\.load runs"),
        ("pt2", "m.pt2", r"a torch\.export program \(.*torch\.export\.load runs"),
    ],
)
def test_a_program_is_named_as_such_where_a_checkpoint_is_expected(
    tmp_path, format: str, name: str, what: str
) -> None:
    export_model(LeNet5(), tmp_path / name, format)
    refused = rf"{re.escape(name)}: {what}; expected a ch"
    for load in (load_model, read_weights_file):
        with pytest.raises(CheckpointError, match=refused):
            load(tmp_path / name)
    # An open file and a remote one are told apart by the same records, not by torch's
    # error: for a .pt2 file it said "truncated or corrupted".
    with (tmp_path / name).open("rb") as f, pytest.raises(CheckpointError, match=refused):
        load_checkpoint(f)
    memory = fsspec.filesystem("memory")
    memory.pipe(f"/{name}", (tmp_path / name).read_bytes())
    with pytest.raises(CheckpointError, match=refused):
        load_checkpoint(f"memory://{name}")
    # A checkpoint read the same ways still loads: the check leaves the file where it was.
    torch.save({"w": torch.arange(3)}, tmp_path / "w.pt")
    memory.pipe("/w.pt", (tmp_path / "w.pt").read_bytes())
    with (tmp_path / "w.pt").open("rb") as f:
        f.read(2)
        f.seek(0)
        assert torch.equal(load_checkpoint(f)["w"], torch.arange(3))
    assert torch.equal(load_checkpoint("memory://w.pt")["w"], torch.arange(3))

    class Minimal:  # what torch.load needs of a file object, and no seekable()
        def __init__(self, data: bytes) -> None:
            self.read, self.readline = (f := io.BytesIO(data)).read, f.readline
            self.seek, self.tell = f.seek, f.tell

    assert torch.equal(load_checkpoint(Minimal(memory.cat("/w.pt")))["w"], torch.arange(3))


def test_an_onnx_model_is_named_as_such_where_a_checkpoint_is_expected(tmp_path) -> None:
    pytest.importorskip("onnx")
    export_model(LeNet5(), tmp_path / "m.onnx", "onnx")
    refused = r"m\.onnx: an ONNX model \(classic-cnns export --format onnx\), which onnxruntime"
    for load in (load_model, read_weights_file, load_checkpoint):
        with pytest.raises(CheckpointError, match=refused):
            load(tmp_path / "m.onnx")
    # Named by its first byte and its name together: other bytes under the name are not ONNX.
    (tmp_path / "x.onnx").write_bytes(b"\x09junk")
    with pytest.raises(CheckpointError, match=r"x\.onnx: not a PyTorch checkpoint"):
        load_checkpoint(tmp_path / "x.onnx")


def test_program_files_carry_the_hyperparameters_and_data_configuration(checkpoints, tmp_path):
    # What safetensors and ONNX files hold as metadata, TorchScript and torch.export
    # archives hold as one JSON file beside the program.
    model = LeNet5.load_from_checkpoint(checkpoints["lenet5"])
    export_model(model, tmp_path / "m.pt", "torchscript")
    export_model(model, tmp_path / "m.pt2", "pt2")
    scripted: dict[str, str] = {"classic_cnns.json": ""}
    exported: dict[str, str] = {"classic_cnns.json": ""}
    torch.jit.load(str(tmp_path / "m.pt"), _extra_files=scripted)
    torch.export.load(str(tmp_path / "m.pt2"), extra_files=exported)
    meta = json.loads(exported["classic_cnns.json"])
    assert json.loads(scripted["classic_cnns.json"]) == meta  # (TorchScript's: bytes)
    assert json.loads(meta["classic_cnns.hparams"])["arch"] == "lenet5_bn"
    assert json.loads(meta["classic_cnns.data"])["class_names"][3] == "digit 3"
    assert meta["classic_cnns.version"] == classic_cnns.__version__


def test_programs_record_the_image_size_they_take(checkpoints, tmp_path) -> None:
    # Traced at --input-size 1 40 40, a program takes 40x40 images (ONNX's input shape says
    # so): its metadata says 40x40, not the 32x32 the network was trained at, which the
    # safetensors file, a network rebuilt at any size, keeps.
    model = LeNet5.load_from_checkpoint(checkpoints["lenet5"])
    for name, format in (("m.pt", "torchscript"), ("m.pt2", "pt2"), ("m.st", "safetensors")):
        export_model(model, tmp_path / name, format, input_size=(1, 40, 40))
    files: dict[str, dict[str, str]] = {"m.pt": {"classic_cnns.json": ""}}
    files["m.pt2"] = {"classic_cnns.json": ""}
    torch.jit.load(str(tmp_path / "m.pt"), _extra_files=files["m.pt"])
    torch.export.load(str(tmp_path / "m.pt2"), extra_files=files["m.pt2"])
    sizes = [json.loads(json.loads(f["classic_cnns.json"])["classic_cnns.data"])["image_size"]
             for f in files.values()]  # fmt: skip
    assert sizes == [[40, 40], [40, 40]]
    assert read_weights_file(tmp_path / "m.st").data["image_size"] == [32, 32]
    onnx = pytest.importorskip("onnx")
    export_model(model, tmp_path / "m.onnx", "onnx", input_size=(1, 40, 40))
    proto = onnx.load(str(tmp_path / "m.onnx"))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims][1:] == [1, 40, 40]  # the file's fixed C, H, W
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["classic_cnns.data"])["image_size"] == [40, 40]


def test_an_existing_file_is_refused_unless_overwrite(checkpoints, tmp_path) -> None:
    # An ONNX file over the checkpoint its model came from was written without a word.
    source = tmp_path / "lenet5.ckpt"
    source.write_bytes(checkpoints["lenet5"].read_bytes())
    model = LeNet5.load_from_checkpoint(source)
    for format in ("onnx", "safetensors"):
        with pytest.raises(FileExistsError, match=r"lenet5.ckpt exists; pass overwrite=True"):
            export_model(model, source, format)
    assert source.read_bytes() == checkpoints["lenet5"].read_bytes()
    (tmp_path / "m.pt").write_text("an older export")
    result = export_model(model, tmp_path / "m.pt", "torchscript", overwrite=True)
    assert result.max_abs_diff is not None and result.max_abs_diff < 1e-5
    assert torch.jit.load(str(tmp_path / "m.pt"))(torch.zeros(1, 1, 32, 32)).shape == (1, 10)
    with pytest.raises(ValueError, match=r"overwrite must be True or False; got 'yes'"):
        export_model(model, tmp_path / "n.pt", "torchscript", overwrite="yes")  # type: ignore[arg-type]


def test_a_name_of_another_format_s_file_is_refused_before_any_work(
    checkpoints, tmp_path, capsys
) -> None:
    # An ONNX file named m.safetensors was written and checked; load_model then called it
    # "not a PyTorch checkpoint".
    model, calls = LeNet5(), []
    model.net.register_forward_hook(lambda *args: calls.append(1))
    for format, name, other in [
        ("onnx", "m.safetensors", "safetensors"),
        ("safetensors", "m.onnx", "onnx"),
        ("pt2", "m.torchscript.pt", "torchscript"),
        ("torchscript", "m.pt2", "pt2"),
        ("pt2", "M.ONNX", "onnx"),  # in any case, as the suffixes read
    ]:
        with pytest.raises(ValueError, match=rf"ends as a {other} file's name does .* but format "
                           rf"'{format}' writes .* files: name it so, or export with format "
                           rf"'{other}'$"):  # fmt: skip
            export_model(model, tmp_path / name, format)
    argv = [str(checkpoints["lenet5"]), "--format", "onnx", "--output", str(tmp_path / "m.pt2")]
    assert export_main(argv) == 2
    assert "ends as a pt2 file's name does (.pt2), but format 'onnx' writes .onnx files" in (
        capsys.readouterr().err
    )
    assert calls == [] and list(tmp_path.iterdir()) == []
    result = export_model(model, tmp_path / "m.pt", "torchscript")  # no format's suffix: kept
    assert result.path == tmp_path / "m.pt"


def test_predict_folder_keeps_an_existing_csv_unless_overwrite(checkpoints, tmp_path) -> None:
    # As the command's --output without --overwrite, and as export_model.
    model = LeNet5.load_from_checkpoint(checkpoints["lenet5"])
    (folder := tmp_path / "digits").mkdir()
    write_png(torch.zeros(1, 28, 28, dtype=torch.uint8), str(folder / "0.png"))
    (output := tmp_path / "out.csv").write_text("a user's table")
    calls = []
    model.net.register_forward_hook(lambda *args: calls.append(1))
    with pytest.raises(FileExistsError, match=r"out\.csv exists; pass overwrite=True"):
        predict_folder(model, folder, output=output)
    assert output.read_text() == "a user's table" and calls == []  # refused before any work
    rows = predict_folder(model, folder, output=output, overwrite=True)
    with output.open(newline="") as f:
        assert [r["file"] for r in csv.DictReader(f)] == [r["file"] for r in rows] == ["0.png"]


def test_an_output_that_is_a_folder_is_refused_before_any_work(tmp_path) -> None:
    # It used to fail only at the final rename, naming a hidden temporary file
    # ('.out.<random>.tmp' -> 'out'), and predict_folder only after classifying everything.
    model, out = LeNet5(), tmp_path / "out"
    out.mkdir()
    calls = []
    model.net.register_forward_hook(lambda *args: calls.append(1))
    for format in ("torchscript", "safetensors"):
        with pytest.raises(
            IsADirectoryError,
            match=rf"^expected a file path; got the folder {re.escape(str(out))}$",
        ):
            export_model(model, out, format)
    with pytest.raises(IsADirectoryError, match=rf"got the folder {re.escape(str(out))}$"):
        save_safetensors(model, out)
    write_png(torch.zeros(1, 28, 28, dtype=torch.uint8), str(out / "a.png"))
    with pytest.raises(IsADirectoryError, match=rf"got the folder {re.escape(str(out))}$"):
        predict_folder(model, out, output=out)
    with pytest.raises(ValueError, match=r"a.png is one of the images to classify; pick anot"):
        predict_folder(model, out, output=out / "a.png")  # --overwrite replaced the image
    assert calls == []  # nothing was traced, exported or classified
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.png", "out"]  # no temporary file
    assert (out / "a.png").read_bytes()[:4] == b"\x89PNG"


def test_a_plain_network_is_refused_where_a_model_is_expected(tmp_path) -> None:
    net = create_model("lenet5").net
    expected = (
        r"expected an ImageClassifier \(create_model\(name\) or a model class such as "
        r"LeNet5\); got LeNet5Net$"
    )
    with pytest.raises(TypeError, match=rf"^export_model {expected}"):
        export_model(net, tmp_path / "m.pt2", "pt2")
    with pytest.raises(TypeError, match=rf"^save_safetensors {expected}"):
        save_safetensors(net, tmp_path / "m.safetensors")
    with pytest.raises(TypeError, match=rf"^predict_folder {expected}"):
        predict_folder(net, tmp_path)
    with pytest.raises(TypeError, match=rf"^load_weights {expected}"):
        load_weights(net, checkpoint_path=tmp_path / "w.pt")
    assert list(tmp_path.iterdir()) == []
    # A torch.compile'd model is still the model (it forwards its attributes).
    model = create_model("lenet5")
    save_safetensors(torch.compile(model), tmp_path / "c.safetensors")
    saved = read_weights_file(tmp_path / "c.safetensors").state_dict
    assert set(saved) == set(model.net.state_dict())


def test_predict_folder_says_a_file_is_not_a_folder(tmp_path) -> None:
    (tmp_path / "notes.py").write_text("x = 1\n")
    with pytest.raises(
        NotADirectoryError, match=r"^folder .*notes.py is a file; expected a folder"
    ):
        predict_folder(LeNet5(), tmp_path / "notes.py")


def test_prediction_csv_says_which_of_several_loaders_a_row_comes_from(tmp_path: Path) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    x, y = torch.rand(30, 1, 32, 32), torch.arange(30) % 10
    first = DataLoader(TensorDataset(x, y), batch_size=8)
    second = DataLoader(TensorDataset(x[:12], y[:12]), batch_size=8)
    writer = PredictionCSV(tmp_path / "p.csv")
    trainer = L.Trainer(logger=False, callbacks=[writer], enable_progress_bar=False)
    model = LeNet5().eval()
    trainer.predict(model, [first, second], return_predictions=False)
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert list(rows[0]) == ["dataloader", "index", "label", "class", "class_index", "probability"]
    assert [(r["dataloader"], r["index"]) for r in rows] == [
        *[("0", str(i)) for i in range(30)],
        *[("1", str(i)) for i in range(12)],
    ]
    with torch.no_grad():
        expected = model(x[:12]).argmax(1).tolist()
    assert [int(r["class_index"]) for r in rows[30:]] == expected
    trainer.predict(model, first, return_predictions=False)  # one loader: the usual columns
    assert (tmp_path / "p.csv").read_text().splitlines()[
        0
    ] == "index,label,class,class_index,probability"


class _SixDigits(torch.utils.data.IterableDataset):
    """Six images with labels 0..5, streamed: Lightning has no indices of its batches."""

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int]]:
        g = torch.Generator().manual_seed(0)
        for i in range(6):
            yield torch.rand(1, 32, 32, generator=g), i


def test_prediction_csv_counts_the_rows_of_a_loader_without_batch_indices(tmp_path: Path) -> None:
    from torch.utils.data import DataLoader

    writer = PredictionCSV(tmp_path / "p.csv")
    trainer = L.Trainer(logger=False, callbacks=[writer], enable_progress_bar=False)
    trainer.predict(
        LeNet5().eval(), DataLoader(_SixDigits(), batch_size=2), return_predictions=False
    )
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert [r["index"] for r in rows] == [str(i) for i in range(6)]  # the position in the stream
    assert [r["label"] for r in rows] == [str(i) for i in range(6)]


def _mnist_loader(mnist_raw: Path, count: int, batch_size: int) -> torch.utils.data.DataLoader:
    # Real MNIST test images, padded to 32x32 and normalised as the checkpoint's records.
    images = read_idx(mnist_raw / "t10k-images-idx3-ubyte.gz")[:count]
    labels = read_idx(mnist_raw / "t10k-labels-idx1-ubyte.gz")[:count].long()
    x = torch.nn.functional.pad(images[:, None].float() / 255, (2, 2, 2, 2))
    data = torch.utils.data.TensorDataset((x - 0.1307) / 0.3081, labels)
    return torch.utils.data.DataLoader(data, batch_size=batch_size)


class _Watch(L.Callback):
    # After the writer, at batch `at`: what is on disk, then (if told) a failure.
    def __init__(self, folder: Path, at: int, fail: BaseException | None = None) -> None:
        self.folder, self.at, self.fail = folder, at, fail
        self.seen: dict[str, str] = {}

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *args) -> None:
        if batch_idx == self.at:
            self.seen = {p.name: p.read_text() for p in self.folder.iterdir()}
            if self.fail is not None:
                raise self.fail


def test_prediction_csv_streams_rows_and_writes_what_the_model_predicts(
    checkpoints, tmp_path: Path, mnist_raw: Path
) -> None:
    # 100 real test images in batches of 16: the CSV holds, in order, each image's index,
    # label, and the softmax's argmax and maximum, computed here on the same batches.
    model = load_model(checkpoints["lenet5"]).eval()
    loader = _mnist_loader(mnist_raw, 100, 16)
    path = tmp_path / "predictions.csv"
    writer, watch = PredictionCSV(path), _Watch(tmp_path, at=2)
    trainer = L.Trainer(logger=False, callbacks=[writer, watch], enable_progress_bar=False,
                        enable_model_summary=False)  # fmt: skip
    assert trainer.predict(model, loader, return_predictions=False) is None
    lines = ["index,label,class,class_index,probability"]
    with torch.no_grad():
        for k, (x, y) in enumerate(loader):
            best, index = model(x).softmax(-1).max(1)
            for j, (p, i, label) in enumerate(zip(best.tolist(), index, y, strict=True)):
                lines.append(f"{16 * k + j},digit {label},digit {i},{i},{round(p, 6)}")
    assert path.read_text().splitlines() == lines
    assert writer.written == path and writer.rows == 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv"]  # no temporary
    # After the third batch its rows were in a temporary file beside it, none in the CSV yet.
    assert len(watch.seen) == 1, watch.seen
    ((name, text),) = watch.seen.items()
    assert name.startswith(".predictions.csv.") and name.endswith(".tmp")
    assert text.splitlines() == lines[: 1 + 3 * 16]


@pytest.mark.parametrize("error", [RuntimeError("disk trouble"), KeyboardInterrupt()])
def test_a_failed_or_interrupted_prediction_leaves_the_old_csv_and_no_temporary_file(
    checkpoints, tmp_path: Path, mnist_raw: Path, error: BaseException
) -> None:
    import signal

    model = load_model(checkpoints["lenet5"])
    path = tmp_path / "predictions.csv"
    path.write_text("an earlier run's predictions\n")
    watch = _Watch(tmp_path, at=2, fail=error)
    trainer = L.Trainer(logger=False, callbacks=[PredictionCSV(path, overwrite=True), watch],
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    handler = signal.getsignal(signal.SIGINT)  # Lightning ignores Ctrl+C once interrupted
    try:
        with pytest.raises(RuntimeError if isinstance(error, RuntimeError) else SystemExit):
            trainer.predict(model, _mnist_loader(mnist_raw, 100, 16), return_predictions=False)
    finally:
        signal.signal(signal.SIGINT, handler)
    assert len(watch.seen) == 2  # the rows so far were written, beside the CSV
    assert path.read_text() == "an earlier run's predictions\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv"]


def test_the_predict_command_keeps_no_predictions_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Its PredictionCSV writes them: Lightning need not also keep every batch's probabilities.
    from lightning.pytorch import Trainer

    from classic_cnns.cli import ClassicCLI, main

    monkeypatch.chdir(tmp_path)
    export_model(LeNet5(), "model.safetensors", "safetensors")
    trainers: list[Trainer] = []
    build = ClassicCLI.instantiate_trainer

    def instantiate_trainer(self: ClassicCLI, **kwargs: object) -> Trainer:
        trainers.append(build(self, **kwargs))
        return trainers[-1]

    monkeypatch.setattr(ClassicCLI, "instantiate_trainer", instantiate_trainer)
    args = ["predict", "--weights", "model.safetensors", "--trainer.limit_predict_batches=3",
            "--data.batch_size=50", "--trainer.enable_progress_bar=false"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    loop = trainers[-1].predict_loop
    assert loop.return_predictions is False and loop.predictions == []
    csv_file = Path("lightning_logs/version_0/predictions.csv")
    assert f"predictions: {csv_file} (150 images)" in capsys.readouterr().out
    written = csv_file.read_text().splitlines()
    assert len(written) == 1 + 150
    # Asked for, they are kept, and the CSV is written as well.
    assert main([*args, "--return_predictions", "true"]) == 0, capsys.readouterr().err
    loop = trainers[-1].predict_loop
    assert loop.return_predictions is True and [len(p) for p in loop.predictions] == [50] * 3
    assert Path("lightning_logs/version_1/predictions.csv").read_text().splitlines() == written
