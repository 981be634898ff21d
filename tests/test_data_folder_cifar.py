"""ImageFolder on PNGs of real MNIST digits; CIFAR-10/100 on batches written like the originals.

No CIFAR download happens: the tests write small batch files in CIFAR's pickle format
(the real archive is 163 MB) and point the checksums at them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import pickle
import re
import tarfile
from collections import Counter
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

import classic_cnns.data.folder as folder_module
import classic_cnns.data.images as images_module
import classic_cnns.data.transfer as transfer_module
import classic_cnns.weights as weights_module
from classic_cnns import MNIST, Digits, LeNet5, ResNet, create_model, load_model, model_info
from classic_cnns._data_classes import class_names_hint
from classic_cnns.data.cifar import CIFAR10, CIFAR100
from classic_cnns.data.folder import ImageFolder, TransferDataModule, load_image, random_crop_flip
from classic_cnns.data.mnist import read_idx
from classic_cnns.files import CheckpointError
from classic_cnns.predict import PredictionCSV, predict_folder
from conftest import symlink, write_png

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
]


@pytest.fixture(scope="module")
def digits(mnist_raw: Path) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(mnist_raw / "t10k-images-idx3-ubyte.gz")[:200]
    labels = read_idx(mnist_raw / "t10k-labels-idx1-ubyte.gz")[:200].long()
    return images, labels


def _write_pngs(folder: Path, images: torch.Tensor, labels: torch.Tensor) -> None:
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        (folder / str(int(label))).mkdir(parents=True, exist_ok=True)
        write_png(image[None], str(folder / str(int(label)) / f"{i:04d}.png"))


def _connect(dm: L.LightningDataModule, model: L.LightningModule) -> None:
    """Attach ``dm`` to a trainer that trains ``model``, as ``Trainer.fit`` does."""
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(model)
    dm.trainer = trainer


def test_a_folder_path_with_a_tilde_is_the_home_folder_s(
    tmp_path: Path, digits, mnist_raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As torchvision's datasets expand it. A YAML config or --data.root=~/x reaches the
    # datamodules unexpanded: "no image folder at ~/imgs" (it was there), and a download
    # made a folder named "~" in the current one.
    from classic_cnns._cli_helpers import data_main

    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    _write_pngs(home / "imgs", *(t[:100] for t in digits))
    dm = ImageFolder("~/imgs", channels=1, image_size=28)
    assert dm.root == home / "imgs" and len(dm.class_names) == 10
    (home / "data" / "MNIST").mkdir(parents=True)
    symlink(home / "data" / "MNIST" / "raw", mnist_raw)
    mnist = MNIST("~/data", download=False, protocol="10k")
    mnist.prepare_data()
    mnist.setup("test")
    assert mnist.data_dir == home / "data" and len(mnist.test_dataloader().dataset) == 2000
    assert data_main(["fetch", "mnist", "--protocol", "10k", "--data-dir", "~/data"]) == 0
    assert list(work.iterdir()) == []
    rows = predict_folder(LeNet5(), "~/imgs/7", mean=(0.5,), std=(0.25,))
    assert len(rows) == len(list((home / "imgs" / "7").iterdir())) > 0


def test_image_folder_decodes_real_digits_exactly_and_splits_by_seed(tmp_path, digits) -> None:
    images, labels = digits
    _write_pngs(tmp_path, images[:100], labels[:100])
    (tmp_path / "notes.txt").write_text("not an image")
    dm = ImageFolder(tmp_path, channels=1, image_size=28, val_size=0.1, test_size=0.2)
    assert dm.class_names == tuple(str(d) for d in range(10)) and dm.in_channels == 1
    dm.setup("fit")
    sizes = [dm._splits[s][0].shape[0] for s in ("train", "val", "test")]
    assert sizes == [72, 8, 20]
    # At their own size the PNGs come back pixel for pixel, with their folder's label.
    stored = torch.cat([dm._splits[s][0] for s in ("train", "val", "test")])
    stored_labels = torch.cat([dm._splits[s][1] for s in ("train", "val", "test")])
    by_pixels = {
        img.numpy().tobytes(): int(lab) for img, lab in zip(images[:100], labels[:100], strict=True)
    }
    for img, lab in zip(stored, stored_labels, strict=True):
        assert by_pixels[img[0].numpy().tobytes()] == int(lab)
    # The splits are disjoint and cover every image once; the seed, and only it, decides them.
    index = {img.numpy().tobytes(): i for i, img in enumerate(images[:100])}
    assert len(index) == 100  # 100 different digits

    def splits(seed: int) -> list[set[int]]:
        dm = ImageFolder(
            tmp_path, channels=1, image_size=28, val_size=0.1, test_size=0.2, seed=seed
        )
        dm.setup("fit")
        return [
            {index[img[0].numpy().tobytes()] for img in dm._splits[s][0]}
            for s in ("train", "val", "test")
        ]

    train, val, test = splits(0)
    assert train | val | test == set(range(100)) and len(train) + len(val) + len(test) == 100
    assert splits(0) == [train, val, test] and splits(1)[2] != test
    # The normalisation is measured on the training images.
    train = dm._splits["train"][0].double() / 255
    assert dm.mean[0] == pytest.approx(float(train.mean()), abs=1e-3)
    assert dm.std[0] == pytest.approx(float(train.std()), abs=1e-3)


def test_image_folder_with_split_folders_trains_a_lenet_at_its_input_size(tmp_path, digits) -> None:
    images, labels = digits
    for split, part in (
        ("train", slice(0, 120)),
        ("val", slice(120, 160)),
        ("test", slice(160, 200)),
    ):
        _write_pngs(tmp_path / split, images[part], labels[part])
    dm = ImageFolder(tmp_path, channels=1, batch_size=32)
    model = LeNet5(num_classes=dm.num_classes, in_channels=dm.in_channels)
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(model, datamodule=dm)
    assert dm.dims == (1, 32, 32)  # LeNet-5's input size, decoded once at that size
    assert [dm._splits[s][0].shape[0] for s in ("train", "val", "test")] == [120, 40, 40]
    assert model.data_config["image_size"] == [32, 32]
    assert model.data_config["class_names"] == [str(d) for d in range(10)]


def test_a_fine_tuned_model_gets_the_normalisation_its_checkpoint_records(tmp_path, digits):
    images, labels = digits
    _write_pngs(tmp_path / "imgs", images[:40], labels[:40])
    (tmp_path / "imgs" / ".ipynb_checkpoints").mkdir()  # hidden folders are not classes
    source = LeNet5(num_classes=10)
    source.data_config = {"mean": [0.3], "std": [0.4], "image_size": [32, 32]}
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(source)
    trainer.save_checkpoint(tmp_path / "source.ckpt")
    model = LeNet5.load_from_checkpoint(tmp_path / "source.ckpt")
    dm = ImageFolder(tmp_path / "imgs", channels=1, test_size=0.25)
    assert dm.class_names == tuple(sorted({str(int(v)) for v in labels[:40]}))
    _connect(dm, model)
    dm.setup("fit")
    assert (dm.mean, dm.std) == ((0.3,), (0.4,))
    # A model trained from scratch gets the images' own statistics.
    dm = ImageFolder(tmp_path / "imgs", channels=1, test_size=0)
    _connect(dm, LeNet5(num_classes=10))
    dm.setup("fit")
    assert (dm.mean, dm.std) == dm.dataset_stats() and dm.mean[0] == pytest.approx(0.12, abs=0.01)
    with pytest.raises(ValueError, match=r"test_size=0 leaves no test images"):
        dm.test_dataloader()


def test_a_ckpt_path_run_normalises_and_names_classes_as_its_checkpoint_records(
    tmp_path, digits
) -> None:
    # Lightning restores Trainer.validate/fit(ckpt_path=...)'s checkpoint after the
    # datamodule's setup: the batches must still get the normalisation it records.
    images, labels = digits
    _write_pngs(tmp_path / "a", images[:100], labels[:100])
    _write_pngs(tmp_path / "b", images[:100] // 2 + 100, labels[:100])  # greyer scans
    quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}
    model = LeNet5(num_classes=10)
    trainer = L.Trainer(max_steps=2, enable_checkpointing=False, **quiet)
    trainer.fit(model, datamodule=ImageFolder(tmp_path / "a", channels=1, batch_size=16))
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    recorded = tuple(model.data_config["mean"]), tuple(model.data_config["std"])

    def validate(by_ckpt_path: bool) -> tuple[ImageFolder, list[dict[str, float]]]:
        dm = ImageFolder(tmp_path / "b", channels=1, val_size=0.5, test_size=0)
        trainer = L.Trainer(**quiet)
        if by_ckpt_path:
            return dm, trainer.validate(LeNet5(num_classes=10), dm, ckpt_path=tmp_path / "m.ckpt")
        return dm, trainer.validate(load_model(tmp_path / "m.ckpt"), dm)

    dm, by_ckpt_path = validate(True)
    assert dm.dataset_stats() != recorded  # the greyer scans' own statistics differ
    assert (dm.preprocessing.mean, dm.preprocessing.std) == recorded
    assert by_ckpt_path == validate(False)[1]  # the same figures as the loaded model's
    # Resuming on data whose classes are not the checkpoint's is refused, naming both.
    (tmp_path / "a" / "1").rename(tmp_path / "a" / "one")
    with pytest.raises(CheckpointError) as caught:
        L.Trainer(max_steps=2, **quiet).fit(
            LeNet5(num_classes=10),
            ImageFolder(tmp_path / "a", channels=1),
            ckpt_path=tmp_path / "m.ckpt",
        )
    assert str(caught.value).startswith(
        f"{tmp_path / 'm.ckpt'}: the checkpoint was trained on the classes ['0', '1', '2', "
    )
    assert "the data has ['0', '2', '3', '4', '5', '6', '7', '8', '9', 'one']" in str(caught.value)
    # Predicting needs no labels: the same checkpoint predicts on those images.
    predicted = L.Trainer(**quiet).predict(
        LeNet5(num_classes=10),
        ImageFolder(tmp_path / "a", channels=1),
        ckpt_path=tmp_path / "m.ckpt",
    )
    assert predicted is not None and predicted[0].shape[1] == 10  # type: ignore[union-attr]
    # A new head forgets the old classes' names, so its own run resumes on other classes.
    model = load_model(tmp_path / "m.ckpt")
    model.reset_classifier(10)
    assert "class_names" not in model.data_config and "mean" in model.data_config


def test_a_ckpt_path_run_decodes_the_files_once_at_the_checkpoints_size(tmp_path, digits):
    # The fresh model's 32 px are settled at setup; the checkpoint, restored after it, was
    # trained at 40 px. The files are decoded again at 40 px, not resampled from 32 px.
    images, labels = digits
    _write_pngs(tmp_path, images[:100], labels[:100])
    quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}
    trainer = L.Trainer(max_steps=1, enable_checkpointing=False, **quiet)
    options = {"channels": 1, "val_size": 0.5, "test_size": 0}
    trainer.fit(LeNet5(num_classes=10), datamodule=ImageFolder(tmp_path, image_size=40, **options))
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    dm = ImageFolder(tmp_path, **options)
    L.Trainer(**quiet).validate(LeNet5(num_classes=10), dm, ckpt_path=tmp_path / "m.ckpt")
    at_40 = ImageFolder(tmp_path, image_size=40, **options)
    at_40.setup("validate")
    assert torch.equal(dm._splits["val"][0], at_40._splits["val"][0])
    assert dm.preprocessing is not None and dm.preprocessing.image_size == (40, 40)

    class Plain(L.LightningModule):  # says nothing of sizes: the images stay as they are
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(40 * 40, 10)

        def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], i: int) -> None:
            loss = torch.nn.functional.cross_entropy(self.fc(batch[0].flatten(1)), batch[1])
            self.log("val_loss", loss)

    assert L.Trainer(**quiet).validate(Plain(), dm)[0]["val_loss"] > 0


def test_a_model_trained_on_padded_images_gets_the_files_padded(tmp_path, digits) -> None:
    # MNIST's 28 px digits padded to LeNet-5's 32, as its checkpoint records: ImageFolder pads
    # the files too (as predict_folder does), instead of stretching them.
    images, labels = digits
    _write_pngs(tmp_path, images[:100], labels[:100])
    model = LeNet5(num_classes=10)
    model.data_config = {"mean": [0.13], "std": [0.31], "image_size": [32, 32], "resize": "pad"}
    dm = ImageFolder(tmp_path, channels=1, val_size=0, test_size=0)
    _connect(dm, model)
    dm.setup("fit")
    padded = torch.nn.functional.pad(images[:100][:, None], (2, 2, 2, 2))
    order = torch.cat([torch.nonzero(labels[:100] == c)[:, 0] for c in range(10)])  # by class
    assert torch.equal(dm._splits["train"][0], padded[order])
    resized = ImageFolder(tmp_path, channels=1, image_size=32, val_size=0, test_size=0)
    resized.setup("fit")  # a size given: resized as always
    assert not torch.equal(resized._splits["train"][0], dm._splits["train"][0])


def test_fitting_a_model_trained_on_padded_mnist_pads_each_file_once(
    tmp_path, digits, mnist_raw, monkeypatch
) -> None:
    # LeNet-5 trained on MNIST records its 28 px padded to 32; fitting it on a folder of
    # digits with the size left to it decodes each file once, padded, trains on those
    # pixels, and the model records "pad" again (it used to decode twice and resize).
    images, labels = digits
    _write_pngs(tmp_path / "imgs", images[:100], labels[:100])
    quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}
    model = LeNet5(num_classes=10)
    mnist = MNIST(str(mnist_raw.parents[1]), download=False, protocol="10k", val_size=0)
    L.Trainer(max_steps=1, enable_checkpointing=False, **quiet).fit(model, datamodule=mnist)
    assert model.data_config["resize"] == "pad"
    decoded: Counter[str] = Counter()
    load = images_module._read_image

    def counted(path: Path, *args: Any) -> torch.Tensor:
        decoded[Path(path).name] += 1
        return load(path, *args)

    monkeypatch.setattr(images_module, "_read_image", counted)
    seen: list[torch.Tensor] = []

    class Batches(L.Callback):  # the batches as the network gets them, normalised
        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, i: int) -> None:
            seen.append(batch[0].detach().clone())

    dm = ImageFolder(
        tmp_path / "imgs", channels=1, batch_size=25, val_size=0, test_size=0, augment=False
    )
    trainer = L.Trainer(max_epochs=1, enable_checkpointing=False, callbacks=[Batches()], **quiet)
    trainer.fit(model, datamodule=dm)
    assert len(decoded) == 100 and set(decoded.values()) == {1}
    assert model.data_config["resize"] == "pad" and model.data_config["image_size"] == [32, 32]
    assert dm.preprocessing is not None
    (mean,), (std,) = dm.preprocessing.mean, dm.preprocessing.std
    pixels = torch.cat(seen).mul(std).add(mean).mul(255).round().to(torch.uint8)
    padded = torch.nn.functional.pad(images[:100][:, None], (2, 2, 2, 2))
    assert sorted(p.numpy().tobytes() for p in pixels) == sorted(
        p.numpy().tobytes() for p in padded
    )


def test_split_folders_go_by_their_common_names_and_misplaced_images_are_refused(
    tmp_path, digits
) -> None:
    images, labels = digits
    for split, part in (
        ("Train", slice(0, 100)),
        ("valid", slice(100, 150)),
        ("TEST", slice(150, 200)),
    ):
        _write_pngs(tmp_path / "kaggle" / split, images[part], labels[part])
    dm = ImageFolder(tmp_path / "kaggle", channels=1, image_size=28)
    dm.setup("fit")
    assert [dm._splits[s][0].shape[0] for s in ("train", "val", "test")] == [100, 50, 50]
    assert dm.class_names == tuple(str(d) for d in range(10))
    # Images straight in a split folder (or beside the class folders) are refused, not lost.
    _write_pngs(tmp_path / "flat" / "train", images[:100], labels[:100])
    (tmp_path / "flat" / "val").mkdir()
    write_png(images[100][None], str(tmp_path / "flat" / "val" / "x.png"))
    with pytest.raises(
        ValueError,
        match=rf"^{re.escape(str(tmp_path / 'flat' / 'val'))}: 1 image\(s\) lie directly in it, "
        r"such as x.png; "
        "expected every image in a subfolder named after its class$",
    ):
        ImageFolder(tmp_path / "flat", channels=1, image_size=28).setup("fit")
    # Two folders of one split (a link to the other counts once), and split folders without
    # a training folder.
    symlink(tmp_path / "flat" / "validation", tmp_path / "flat" / "val")
    assert ImageFolder(tmp_path / "flat", channels=1)._split_dirs["val"].name == "val"
    (tmp_path / "flat" / "validation").unlink()
    (tmp_path / "flat" / "validation").mkdir()
    with pytest.raises(
        ValueError, match=r"\['val', 'validation'\] are all val folders; expected one"
    ):
        ImageFolder(tmp_path / "flat", channels=1)
    for name in ("Val/a", "test/b"):
        (tmp_path / "no_train" / name).mkdir(parents=True)
    with pytest.raises(
        ValueError, match=r"\['Val', 'test'\] look like split folders, but there is no training"
    ):
        ImageFolder(tmp_path / "no_train", channels=1)
    # Folders of images named like splits are classes (a "test" pattern, a "Train" vehicle),
    # and so are such folders beside classes of other names, whatever lies in them.
    _write_pngs(tmp_path / "classes", images[:20], labels[:20] % 2)
    (tmp_path / "classes" / "1").rename(tmp_path / "classes" / "Train")
    assert ImageFolder(tmp_path / "classes", channels=1).class_names == ("0", "Train")
    (tmp_path / "classes" / "valid" / "batch1").mkdir(parents=True)
    write_png(images[0][None], str(tmp_path / "classes" / "valid" / "batch1" / "v.png"))
    names = ImageFolder(tmp_path / "classes", channels=1).class_names
    assert names == ("0", "Train", "valid")
    # A held-out test/ of the same class folders beside the classes, without train/: read
    # as a class, its images were trained on (torchvision reads it so too). Refused.
    _write_pngs(tmp_path / "leak", images[:20], labels[:20] % 2)
    _write_pngs(tmp_path / "leak" / "test", images[20:30], labels[20:30] % 2)
    with pytest.raises(ValueError, match=r"leak: test/ holds class folders \['0', '1'\] as "
                       r"leak/ does, so it would be read as a class of its own"):  # fmt: skip
        ImageFolder(tmp_path / "leak", channels=1)
    for i, folder in enumerate(("cat", "dog", "Test/Cat", "Test/DOG")):  # split names: any case
        (tmp_path / "cased" / folder).mkdir(parents=True)
        write_png(images[i][None], str(tmp_path / "cased" / folder / "x.png"))
    with pytest.raises(ValueError, match=r"Test/ holds class folders \['cat', 'dog'\] as"):
        ImageFolder(tmp_path / "cased", channels=1)
    # A "train" class whose images lie in subfolders reads as the split: said, not silent.
    (tmp_path / "vehicles" / "bus").mkdir(parents=True)
    write_png(images[0][None], str(tmp_path / "vehicles" / "bus" / "b.png"))
    for kind in ("steam", "electric"):
        (tmp_path / "vehicles" / "train" / kind).mkdir(parents=True)
        write_png(images[1][None], str(tmp_path / "vehicles" / "train" / kind / "t.png"))
    with pytest.warns(
        UserWarning,
        match=r"vehicles: read as split folders \['train'\]; the folders \['bus'\] beside them "
        r"are left out .* put the classes in a folder of their own",
    ) as record:
        assert ImageFolder(tmp_path / "vehicles", channels=1).class_names == ("electric", "steam")
    assert [w.filename for w in record] == [__file__]  # the line that built the datamodule
    # Kaggle's test/ of unlabelled images is no test set: training goes on, testing says why.
    _write_pngs(tmp_path / "unlabelled" / "train", images[:100], labels[:100])
    (tmp_path / "unlabelled" / "test").mkdir()
    write_png(images[100][None], str(tmp_path / "unlabelled" / "test" / "0001.png"))
    dm = ImageFolder(tmp_path / "unlabelled", channels=1, image_size=28)
    dm.setup("fit")
    with pytest.raises(
        ValueError,
        match=r"no test folder of class folders \(test/<class>/...\), so there is no test set; "
        rf"{re.escape(str(tmp_path / 'unlabelled' / 'test'))} holds images without labels: "
        r"classify them with "
        r"predict_folder \(classic-cnns predict-folder\)$",
    ):
        dm.test_dataloader()
    with pytest.raises(ValueError, match=r"no test folder of class folders"):
        dm.predict_dataloader()  # the same set: an empty CSV would say nothing


def test_image_folder_errors_name_the_folder(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no image folder at"):
        ImageFolder(tmp_path / "missing")
    (tmp_path / "only").mkdir()
    with pytest.raises(ValueError, match=r"expected one subfolder per class \(at least 2\)"):
        ImageFolder(tmp_path)
    (tmp_path / "only").rmdir()
    for name in ("train/a", "train/b", "val/c"):
        (tmp_path / name).mkdir(parents=True)
    dm = ImageFolder(tmp_path, image_size=8)
    with pytest.raises(
        ValueError,
        match=rf"{re.escape(str(Path('train', 'a')))}: no image files "
        r"with the extensions .* at least",
    ):
        dm.setup("fit")  # an empty class is refused, not kept with no images
    (tmp_path / "train/a/x.png").write_bytes(b"not a png")
    write_png(torch.zeros(1, 4, 4, dtype=torch.uint8), str(tmp_path / "train/b/y.png"))
    # The folders are checked before any file is decoded: a validation class training lacks.
    with pytest.raises(
        ValueError,
        match=rf"{re.escape(str(Path('val', 'c')))}: class 'c' is not among the training classes",
    ):
        dm.setup("fit")
    (tmp_path / "val/c").rename(tmp_path / "val/b")
    write_png(torch.zeros(1, 4, 4, dtype=torch.uint8), str(tmp_path / "val/b/z.png"))
    with pytest.raises(ValueError, match=r"x.png: cannot decode the image"):
        dm.setup("fit")
    with pytest.raises(ValueError, match="needs image_size"):
        ImageFolder(tmp_path).setup("fit")
    for size in ("32", 32.0, (32, 0), (8, 8, 8), True):
        with pytest.raises(ValueError, match=rf"image_size must be an int or \(H, W\).*{size!r}"):
            ImageFolder(tmp_path, image_size=size)  # type: ignore[arg-type]
    for share in ("0.2", 1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"test_size must be a fraction in \[0, 1\]; got"):
            ImageFolder(tmp_path, test_size=share)  # type: ignore[arg-type]


def test_a_test_share_that_rounds_to_no_image_is_refused_at_setup(tmp_path, digits) -> None:
    images, labels = digits
    _write_pngs(tmp_path, images, labels)
    for test_size, none, share in ((0.001, "test", "larger"), (0.999, "training", "smaller")):
        dm = ImageFolder(tmp_path, image_size=28, channels=1, test_size=test_size)
        with pytest.raises(
            ValueError,
            match=rf"test_size={test_size} of 200 images rounds to no {none} image; "
            rf"expected a {share} share",
        ):
            dm.setup("fit")


def test_one_extension_as_a_string_is_one_extension(tmp_path, digits) -> None:
    images, labels = digits
    _write_pngs(tmp_path, images[:40], labels[:40])
    (tmp_path / "0" / "scan.jpg").write_bytes((tmp_path / "0" / "0003.png").read_bytes())
    pngs = folder_module.list_images(tmp_path / "0", extensions="png")
    assert [p.name for p in pngs] == ["0003.png", "0010.png", "0013.png", "0025.png", "0028.png"]
    assert folder_module.list_images(tmp_path / "0", extensions=".PNG") == pngs
    dm = ImageFolder(tmp_path, channels=1, image_size=28, extensions="png", test_size=0)
    assert dm.extensions == ("png",)
    dm.setup("fit")
    assert sum(dm._splits[s][1].numel() for s in ("train", "val")) == 40  # not the .jpg
    with pytest.raises(TypeError, match=r"extensions must be an extension .*; got \[3\]"):
        ImageFolder(tmp_path, extensions=[3])  # type: ignore[list-item]
    # No extension at all: refused when built, not at setup (after the run has started).
    with pytest.raises(ValueError, match=r"extensions must name at least one extension; got \[\]"):
        ImageFolder(tmp_path, extensions=[])
    with pytest.raises(TypeError, match=r"root must be a folder's path \(str or Path\); got None"):
        ImageFolder(None)  # type: ignore[arg-type]


def test_hidden_files_and_folders_inside_classes_are_not_images(tmp_path, digits) -> None:
    images, labels = digits
    _write_pngs(tmp_path, images[:30], labels[:30])
    for junk in ("3/.ipynb_checkpoints/0001-checkpoint.png", "3/._0001.png", "5/.@__thumb/a.png"):
        (tmp_path / junk).parent.mkdir(parents=True, exist_ok=True)
        write_png(images[0][None], str(tmp_path / junk))
    dm = ImageFolder(
        tmp_path, channels=1, image_size=28, val_size=0, test_size=0, extensions=("png",)
    )  # fmt: skip  (the dot may be left out)
    dm.setup("fit")
    found = [dm.class_names[i] for i in dm._splits["train"][1]]
    assert sorted(found) == sorted(str(int(v)) for v in labels[:30])  # each image once


def _torchcodec_or_skip() -> None:
    try:
        import torchcodec.decoders  # noqa: F401
    except (ImportError, OSError, RuntimeError) as err:  # a build for another torch: OSError
        pytest.skip(f"TorchCodec cannot load here: {err}")


@pytest.fixture(params=["torchvision", "torchcodec"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    # ImageFolder decodes with torchvision while it has a decoder, else with TorchCodec.
    if request.param == "torchcodec":
        _torchcodec_or_skip()
        monkeypatch.setattr(images_module, "_torchvision_decode", None)
    return request.param


def test_load_image_converts_colour_modes_and_16_bit_pngs(tmp_path, digits, decoder) -> None:
    from PIL import Image

    digit = digits[0][0].numpy()  # a real 28x28 MNIST digit
    rgb = np.stack([digit, digit // 2, 255 - digit], axis=-1)
    grey = (rgb @ np.array([0.299, 0.587, 0.114])).round()  # ITU-R 601-2 luma, as PIL
    # BMP, TIFF and netpbm files: by PIL, which the decoders do not read.
    for suffix in ("png", "jpg", "gif", "webp", "bmp", "tif", "ppm"):
        for name, image in (("rgb", rgb), ("grey", np.repeat(digit[..., None], 3, axis=-1))):
            path = tmp_path / f"{name}.{suffix}"
            Image.fromarray(image).save(path, lossless=True, quality=95)
            loaded = load_image(path, 1, None)
            assert loaded.shape == (1, 28, 28) and loaded.dtype == torch.uint8
            with Image.open(path) as file:  # the file's own pixels (JPEG, GIF: not rgb's)
                if suffix == "jpg":  # libjpeg's grey: the luma plane the file stores
                    file.draft("L", file.size)
                pil = torch.from_numpy(np.asarray(file.convert("L")))
            # The same grey from every format: PIL's (a colour PNG's too, which libpng
            # would round a level off), or for a JPEG its own luma plane.
            assert torch.equal(loaded[0], pil), (path, decoder)
            if name == "rgb" and suffix not in ("jpg", "gif"):  # lossless: the pixels' luma
                assert np.abs(loaded[0].numpy() - grey).max() <= 1, (path, decoder)
            if name == "grey" and suffix != "jpg":  # a grey image stays as it is
                assert torch.equal(loaded[0], torch.from_numpy(digit)), (path, decoder)
    Image.fromarray(np.dstack([rgb, np.full_like(digit, 128)])).save(tmp_path / "rgba.png")
    assert torch.equal(
        load_image(tmp_path / "rgba.png", 3, None), torch.from_numpy(rgb).permute(2, 0, 1)
    )
    write_png(torch.from_numpy(digit)[None], str(tmp_path / "grey.png"))
    assert torch.equal(
        load_image(tmp_path / "grey.png", 3, None), torch.from_numpy(digit).expand(3, -1, -1)
    )
    # 16 bits: 257 * v is v on the 8-bit scale (a cast would wrap it modulo 256).
    deep = Image.fromarray(digit.astype(np.uint16) * 257)
    assert deep.mode == "I;16"
    for suffix in ("png", "tif"):
        deep.save(tmp_path / f"deep.{suffix}")
        assert torch.equal(
            load_image(tmp_path / f"deep.{suffix}", 1, None)[0], torch.from_numpy(digit)
        )
    # A 16-bit PGM, which PIL reads in mode I scaled to 0..65535 from its maxval: 65535 or
    # 4095 (12 bits, a sensor's), refused as 32-bit pixels. (Written by hand: PIL 9 cannot.)
    for maxval in (65535, 4095):
        pixels = np.round(digit.astype(np.float64) * maxval / 255).astype(">u2")
        (tmp_path / "deep.pgm").write_bytes(b"P5\n28 28\n%d\n" % maxval + pixels.tobytes())
        assert torch.equal(load_image(tmp_path / "deep.pgm", 1, None)[0], torch.from_numpy(digit))
    Image.fromarray(np.dstack([rgb, np.full_like(digit, 128)])).save(tmp_path / "rgba.tif")
    assert torch.equal(
        load_image(tmp_path / "rgba.tif", 3, None), torch.from_numpy(rgb).permute(2, 0, 1)
    )
    # 32-bit pixels have no scale to read them on: refused, naming the file.
    Image.fromarray(digit.astype(np.int32) * 1000).save(tmp_path / "wide.tif")
    with pytest.raises(ValueError, match=r"wide\.tif: cannot decode .*PIL mode I \(32-bit"):
        load_image(tmp_path / "wide.tif", 1, None)


def test_torchcodec_decodes_to_torchvision_s_pixels(tmp_path, digits) -> None:
    # Where torchvision's decoders are gone, models trained on its pixels get the same ones.
    from PIL import Image

    _torchcodec_or_skip()
    images = digits[0][:4].numpy()  # real MNIST digits
    files = []
    for i, digit in enumerate(images):
        rgb = np.stack([digit, digit // 2, 255 - digit], axis=-1)
        for name, array in ((f"{i}.grey", digit), (f"{i}.rgb", rgb)):
            for suffix in ("png", "jpg", "gif", "webp"):
                Image.fromarray(array).save(tmp_path / f"{name}.{suffix}", quality=90)
                files.append(tmp_path / f"{name}.{suffix}")
    size = (32, 40)  # resized too, as ImageFolder does
    ours = {(f, c): load_image(f, c, size) for f in files for c in (1, 3)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(images_module, "_torchvision_decode", None)
        for (file, channels), expected in ours.items():
            assert torch.equal(load_image(file, channels, size), expected), (file, channels)


def test_a_jpeg_is_turned_upright_by_its_exif_orientation(tmp_path, digits, decoder) -> None:
    # As image viewers show it, PIL's ImageOps.exif_transpose turns it and TorchCodec decodes
    # it: a phone's photo stored sideways with orientation 6 ("rotate 90 degrees clockwise").
    from PIL import Image, ImageOps

    digit = digits[0][0].numpy()[:, 4:20]  # a real MNIST digit, cut to 28x16
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(digit).save(tmp_path / "a.jpg", quality=95, exif=exif.tobytes())
    loaded = load_image(tmp_path / "a.jpg", 1, None)
    with Image.open(tmp_path / "a.jpg") as file:
        upright = torch.from_numpy(np.asarray(ImageOps.exif_transpose(file).convert("L")))
    assert loaded.shape == (1, 16, 28) and torch.equal(loaded[0], upright), decoder


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_webp_is_turned_upright_by_its_exif_orientation(
    tmp_path, digits, decoder, orientation
) -> None:
    # torchvision's WebP decoder ignores the EXIF orientation that its JPEG and PNG decoders
    # apply: every orientation must give PIL's ImageOps.exif_transpose, with both decoders.
    from PIL import Image, ImageOps

    digit = digits[0][3].numpy()[:, 4:20]  # a real MNIST digit, cut to 28x16
    rgb = np.stack([digit, digit // 2, 255 - digit], axis=-1)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.webp"
    Image.fromarray(rgb).save(path, lossless=True, exif=exif)
    with Image.open(path) as file:
        assert file.getexif().get(0x0112) == orientation
        upright = ImageOps.exif_transpose(file)
        grey, colour = np.array(upright.convert("L")), np.array(upright.convert("RGB"))
    assert grey.shape == ((16, 28) if orientation > 4 else (28, 16))
    assert torch.equal(load_image(path, 1, None)[0], torch.from_numpy(grey)), decoder
    loaded = load_image(path, 3, None)
    assert torch.equal(loaded, torch.from_numpy(colour).permute(2, 0, 1)), decoder


def test_an_empty_file_is_named_as_empty(tmp_path, digits) -> None:
    images, labels = digits
    _write_pngs(tmp_path, images[:20], labels[:20])
    empty = tmp_path / "3" / "empty.png"
    empty.touch()
    message = rf"^{re.escape(str(empty))}: the file is empty \(0 bytes\); expected an image$"
    with pytest.raises(ValueError, match=message):
        load_image(empty, 1, None)
    with pytest.raises(ValueError, match=message):
        ImageFolder(tmp_path, channels=1, image_size=28).setup("fit")


@pytest.mark.parametrize("channels", [True, 1.0, 3.0, "3"])
def test_channels_must_be_the_int_1_or_3(tmp_path, digits, channels) -> None:
    # True == 1 and 3.0 == 3 passed "in (1, 3)" and failed later in torch.
    images, labels = digits
    _write_pngs(tmp_path, images[:20], labels[:20])
    message = rf"channels must be the int 1 \(grey\) or 3 \(RGB\); got {re.escape(repr(channels))}"
    with pytest.raises(ValueError, match=message):
        ImageFolder(tmp_path, channels=channels, image_size=28)
    with pytest.raises(ValueError, match=message):
        load_image(next((tmp_path / "0").iterdir()), channels, None)


def test_testing_decodes_the_test_images_alone_unless_statistics_need_the_others(
    tmp_path, digits, monkeypatch
) -> None:
    # Trainer.test and predict decoded every training and validation file too; now only the
    # test files, unless the normalisation has to measure the training images.
    images, labels = digits
    parts = {"train": slice(0, 120), "val": slice(120, 160), "test": slice(160, 200)}
    for split, part in parts.items():
        _write_pngs(tmp_path / "split" / split, images[part], labels[part])
    _write_pngs(tmp_path / "classes", images[:100], labels[:100])
    decoded: Counter[str] = Counter()
    load = images_module._read_image

    def counted(path: Path, *args: Any) -> torch.Tensor:
        decoded[Path(path).relative_to(tmp_path).parts[1]] += 1  # by split (or class)
        return load(path, *args)

    def fitted(root: Path, **kwargs: Any) -> ImageFolder:  # as fit sets it up
        dm = ImageFolder(root, channels=1, image_size=32, **kwargs)
        dm.setup("fit")
        return dm

    quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}
    torch.manual_seed(0)
    model = LeNet5(num_classes=10)  # records the normalisation, as a trained model does
    model.data_config = {"mean": [0.13], "std": [0.31], "image_size": [32, 32], "resize": "resize"}
    reference = fitted(tmp_path / "split")
    (expected,) = L.Trainer(**quiet).test(model, reference, verbose=False)
    monkeypatch.setattr(images_module, "_read_image", counted)
    dm = ImageFolder(tmp_path / "split", channels=1)
    (tested,) = L.Trainer(**quiet).test(model, dm, verbose=False)
    assert decoded == {"test": 40} and tested == expected
    L.Trainer(**quiet).predict(model, dm)
    assert decoded == {"test": 40}
    L.Trainer(**quiet).validate(model, dm, verbose=False)  # the rest, once
    assert decoded == {"train": 120, "val": 40, "test": 40}
    for split in parts:
        assert torch.equal(dm._splits[split][0], reference._splits[split][0])
    # One folder split by seed: its test share alone, the images fit would test on.
    decoded.clear()
    dm = ImageFolder(tmp_path / "classes", channels=1, test_size=0.2)
    L.Trainer(**quiet).test(model, dm, verbose=False)
    assert decoded.total() == 20 and list(dm._splits) == ["test"]
    reference = fitted(tmp_path / "classes", test_size=0.2)
    for ours, theirs in zip(dm._splits["test"], reference._splits["test"], strict=True):
        assert torch.equal(ours, theirs)
    # A checkpoint that records it, which Lightning restores after setup: the loaders follow
    # its statistics, and no training image is decoded to measure them (all were, before).
    saver = L.Trainer(**quiet)
    saver.test(model, reference, verbose=False)
    saver.save_checkpoint(tmp_path / "recorded.ckpt")
    decoded.clear()
    dm = ImageFolder(tmp_path / "split", channels=1)
    (restored,) = L.Trainer(**quiet).test(
        LeNet5(num_classes=10), dm, ckpt_path=tmp_path / "recorded.ckpt", verbose=False
    )
    assert decoded == {"test": 40} and restored == expected
    assert dm.preprocessing.mean == (0.13,) and dm.preprocessing.std == (0.31,)
    # Until the first loader the statistics are unknown, and nothing shows stand-ins for them.
    seen: list[Any] = []
    watch = L.Callback()
    watch.setup = lambda trainer, *_, **__: seen.append(trainer.datamodule.data_config)  # type: ignore[method-assign]
    L.Trainer(**quiet, callbacks=[watch]).test(LeNet5(num_classes=10), dm, verbose=False)
    assert seen == [{}] and dm.preprocessing is not None and dm.preprocessing.mean != (0.5,)
    # A model that records no normalisation: the training images are measured, as in fit.
    decoded.clear()
    dm = ImageFolder(tmp_path / "split", channels=1)
    L.Trainer(**quiet).test(LeNet5(num_classes=10), dm, verbose=False)
    assert decoded == {"train": 120, "val": 40, "test": 40}
    assert dm.mean == fitted(tmp_path / "split").mean
    # Tested next with a model of another size: decoded again at its size, and measured again
    # (the statistics of the 32 px images stayed, and normalised the 48 px ones).
    wide = create_model("lenet5", num_classes=10, in_channels=1)
    wide.data_config = {"image_size": [48, 48]}  # weights trained at 48 px, no statistics
    L.Trainer(**quiet).test(wide, dm, verbose=False)
    assert dm._splits["test"][0].shape[-2:] == (48, 48)
    again = ImageFolder(tmp_path / "split", channels=1, image_size=48)
    again.setup("fit")
    assert dm.dataset_stats() == again.dataset_stats() and dm.mean == again.mean


def test_without_an_image_decoder_the_error_says_how_to_get_one(
    tmp_path, digits, monkeypatch
) -> None:
    import sys

    write_png(digits[0][0][None], str(tmp_path / "a.png"))
    monkeypatch.setattr(images_module, "_torchvision_decode", None)
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)  # import fails
    with pytest.raises(ImportError, match=r"no image decoders .*: pip install torchcodec"):
        load_image(tmp_path / "a.png", 1, None)


def test_pretrained_models_get_the_weights_normalisation(tmp_path, digits, monkeypatch) -> None:
    images, labels = digits
    _write_pngs(tmp_path, images[:40], labels[:40])
    net = model_info("resnet18").build_net()
    monkeypatch.setattr(
        weights_module, "_download_state_dict", lambda url, progress: net.state_dict()
    )
    with pytest.warns(UserWarning, match="not loaded"):
        model = create_model("resnet18", pretrained=True, num_classes=10, in_channels=1)
    dm = ImageFolder(tmp_path, channels=1, test_size=0.25)
    _connect(dm, model)
    dm.setup("fit")
    assert (dm.mean, dm.std) == model_info("resnet18").weights.normalization(1)  # type: ignore[union-attr]
    assert dm.dims == (1, 224, 224)
    # Explicit values win.
    dm = ImageFolder(tmp_path, channels=1, test_size=0.25, mean=(0.1,), std=(0.2,))
    _connect(dm, model)
    dm.setup("fit")
    assert (dm.mean, dm.std) == ((0.1,), (0.2,))


def test_random_crop_flip_takes_a_window_of_the_padded_image() -> None:
    torch.manual_seed(0)
    x = torch.randint(1, 256, (16, 3, 8, 8), dtype=torch.uint8)  # no zeros: padding shows
    out = random_crop_flip(x, padding=2)
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(16):
        windows = [
            w for top in range(5) for left in range(5)
            for w in (padded[i, :, top:top + 8, left:left + 8],)
        ]  # fmt: skip
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(-1)) for w in windows)
    shifted = sum(not torch.equal(out[i], x[i]) for i in range(16))
    assert shifted > 8  # most images moved or flipped


# -- CIFAR -----------------------------------------------------------------------------


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _batch(n: int, seed: int, label_key: str) -> tuple[bytes, np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=n)]
    # Protocol 2 and str keys, as the Python 2 originals read with encoding="latin1".
    blob = pickle.dumps({"batch_label": "test", label_key: labels, "data": data}, protocol=2)
    return blob, data, labels


@pytest.fixture
def fake_cifar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A CIFAR-10 folder with 4 images per batch file, and checksums that match it."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    files, arrays = {}, {}
    for i, (name, _) in enumerate(CIFAR10.train_list + CIFAR10.test_list):
        blob, data, labels = _batch(4, i, "labels")
        (folder / name).write_bytes(blob)
        files[name] = _md5(blob)
        arrays[name] = (data, labels)
    meta = pickle.dumps({"label_names": list(CIFAR10.class_names)}, protocol=2)
    (folder / "batches.meta").write_bytes(meta)
    monkeypatch.setattr(CIFAR10, "train_list", [[n, files[n]] for n, _ in CIFAR10.train_list])
    monkeypatch.setattr(CIFAR10, "test_list", [[n, files[n]] for n, _ in CIFAR10.test_list])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": _md5(meta)})
    return {"root": tmp_path, "folder": folder, "arrays": arrays}


def test_cifar100_reads_the_100_fine_labels_not_the_20_coarse_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CIFAR-100's batches hold both: the coarse ones are valid indices too, so reading them
    # would train a 100-class head on 20 superclasses without a word.
    folder, rng, fine = tmp_path / "cifar-100-python", np.random.default_rng(0), {}
    folder.mkdir()
    md5s = {}
    for name in ("train", "test"):
        fine[name] = [int(v) for v in rng.integers(20, 100, size=6)]  # never a coarse label
        data = rng.integers(0, 256, size=(6, 3072), dtype=np.uint8)
        batch = {
            "data": data,
            "fine_labels": fine[name],
            "coarse_labels": [f // 5 for f in fine[name]],
        }
        (folder / name).write_bytes(blob := pickle.dumps(batch, protocol=2))
        md5s[name] = _md5(blob)
    names = {"fine_label_names": list(CIFAR100.class_names), "coarse_label_names": ["x"] * 20}
    (folder / "meta").write_bytes(meta := pickle.dumps(names, protocol=2))
    monkeypatch.setattr(CIFAR100, "train_list", [["train", md5s["train"]]])
    monkeypatch.setattr(CIFAR100, "test_list", [["test", md5s["test"]]])
    monkeypatch.setattr(CIFAR100, "meta", {**CIFAR100.meta, "md5": _md5(meta)})
    dm = CIFAR100(tmp_path, download=False, val_size=0)
    dm.setup("fit")
    assert dm.num_classes == 100 and dm._splits["train"][1].tolist() == fine["train"]
    assert dm._splits["test"][1].tolist() == fine["test"]


def test_cifar10_reads_the_pickled_batches_into_uint8(fake_cifar: dict) -> None:
    dm = CIFAR10(fake_cifar["root"], download=False, val_size=4)
    dm.setup("fit")
    train_x = torch.cat([dm._splits["train"][0], dm._splits["val"][0]])
    assert train_x.shape == (20, 3, 32, 32) and train_x.dtype == torch.uint8
    assert dm._splits["val"][0].shape[0] == 4
    data, labels = fake_cifar["arrays"]["test_batch"]
    test_x, test_y = dm._splits["test"]
    assert test_y.tolist() == labels
    # Each row is the red, then green, then blue 32x32 plane.
    assert torch.equal(test_x[1, 2], torch.from_numpy(data[1, 2048:].reshape(32, 32)))
    assert (dm.mean, dm.dims) == (CIFAR10.mean, (3, 32, 32))
    assert dm.class_names[0] == "airplane"


def test_cifar_missing_corrupted_and_unsafe_files(fake_cifar: dict, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"cifar-100-python") as err:
        CIFAR100(tmp_path / "empty", download=False).setup("fit")
    assert "train" in str(err.value) and "test" in str(err.value)
    folder = fake_cifar["folder"]
    (folder / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match=r"data_batch_3 missing from .*cifar-10-batches-py"):
        CIFAR10(fake_cifar["root"], download=False).setup("fit")
    (folder / "data_batch_3").write_bytes(b"corrupted")
    with pytest.raises(ValueError, match=r"data_batch_3: md5 \w+ does not match the published"):
        CIFAR10(fake_cifar["root"], download=False).setup("fit")
    # A pickle that would run code is refused even when its checksum is the expected one.
    evil = pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [0], "x": print})
    (folder / "data_batch_3").write_bytes(evil)
    CIFAR10.train_list[2][1] = _md5(evil)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load builtins\.print"):
        CIFAR10(fake_cifar["root"], download=False).setup("fit")


def _archive(fake_cifar: dict) -> bytes:
    """The fake batches as the published archive holds them: cifar-10-batches-py/, gzipped."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(fake_cifar["folder"], arcname="cifar-10-batches-py")
    return buffer.getvalue()


def test_cifar_download_is_checked_then_moved_into_place(
    fake_cifar: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http_mirror: tuple[Path, str]
) -> None:
    archive = _archive(fake_cifar)
    mirror, url = http_mirror  # a real HTTP server on loopback
    (mirror / CIFAR10.archive).write_bytes(archive)
    monkeypatch.setattr(CIFAR10, "url", url + CIFAR10.archive)
    root = tmp_path / "fresh"
    monkeypatch.setattr(CIFAR10, "archive_md5", "0" * 32)  # wrong: nothing may change
    with pytest.raises(RuntimeError, match="does not match the published"):
        CIFAR10(root).prepare_data()
    assert not (root / "cifar-10-batches-py").exists()
    monkeypatch.setattr(CIFAR10, "archive_md5", _md5(archive))
    dm = CIFAR10(root)
    dm.prepare_data()
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py"]  # no leftovers
    dm.setup("fit")
    assert dm._splits["test"][0].shape == (4, 3, 32, 32)


def test_cifar_unpacks_an_intact_archive_already_in_data_dir_without_the_network(
    fake_cifar: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http_mirror: tuple[Path, str]
) -> None:
    # As with torchvision: an archive fetched by hand into data_dir is used when its md5 is
    # the published one; a damaged one is not, and the mirror's copy is fetched instead.
    archive = _archive(fake_cifar)
    monkeypatch.setattr(CIFAR10, "archive_md5", _md5(archive))
    monkeypatch.setattr(CIFAR10, "url", "http://127.0.0.1:9/" + CIFAR10.archive)  # refused
    root = tmp_path / "offline"
    root.mkdir()
    (root / CIFAR10.archive).write_bytes(archive)
    with pytest.raises(
        FileNotFoundError,
        match=rf"Pass download=True, or unpack {CIFAR10.archive} \(it is in {root}\)",
    ):
        CIFAR10(root, download=False).setup("fit")
    dm = CIFAR10(root)
    dm.prepare_data()
    assert {p.name for p in root.iterdir()} == {CIFAR10.archive, "cifar-10-batches-py"}
    dm.setup("fit")
    assert dm._splits["test"][1].tolist() == fake_cifar["arrays"]["test_batch"][1]
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / CIFAR10.archive).write_bytes(archive[:-10])
    # Named, with its md5, where the batches are missing (it went unmentioned).
    named = rf"{re.escape(str(damaged / CIFAR10.archive))} is there, but its md5 [0-9a-f]{{32}} is"
    with pytest.raises(RuntimeError, match=r"could not download http://127\.0\.0\.1:9/.*" + named):
        CIFAR10(damaged).prepare_data()
    with pytest.raises(FileNotFoundError, match=r"Pass download=True, or " + named):
        CIFAR10(damaged, download=False).setup("fit")
    mirror, url = http_mirror
    (mirror / CIFAR10.archive).write_bytes(archive)
    monkeypatch.setattr(CIFAR10, "url", url + CIFAR10.archive)
    CIFAR10(damaged).prepare_data()
    assert (damaged / "cifar-10-batches-py" / "test_batch").is_file()


def test_cifar_training_batches_are_augmented_and_others_are_not(fake_cifar: dict) -> None:
    dm = CIFAR10(fake_cifar["root"], download=False, val_size=0)
    model = ResNet("resnet20", num_classes=10)
    _connect(dm, model)
    dm.setup("fit")
    batch = dm._splits["test"][0], dm._splits["test"][1]
    plain = dm.on_after_batch_transfer(batch, 0)[0]
    torch.testing.assert_close(plain, dm.transform(batch[0]))
    dm.trainer.state.stage = "train"  # what Lightning sets while training
    torch.manual_seed(1)
    augmented = dm.on_after_batch_transfer(batch, 0)[0]
    assert augmented.shape == plain.shape and not torch.equal(augmented, plain)
    # The ResNet paper's CIFAR recipe (section 4.2): 4 pixels of padding a side at 32x32.
    assert _crop_paddings(dm, batch)[0] == [4]


def _crop_paddings(dm: TransferDataModule, batch: Any, **kwargs: Any) -> tuple[list[int], Any]:
    # The crop paddings dm.on_after_batch_transfer(batch, 0, **kwargs) used, and its batch.
    paddings: list[int] = []
    real = transfer_module.random_crop_flip

    def spy(images: torch.Tensor, padding: int, flip: bool = True) -> torch.Tensor:
        paddings.append(padding)
        return real(images, padding, flip)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transfer_module, "random_crop_flip", spy)
        out = dm.on_after_batch_transfer(batch, 0, **kwargs)
    return paddings, out


def test_an_image_folder_s_crops_pad_an_eighth_of_the_longer_side(tmp_path, digits) -> None:
    # CIFAR gives its 4; a folder's padding follows the stored size, 24x40 here.
    _write_pngs(tmp_path, *(t[:20] for t in digits))
    dm = ImageFolder(tmp_path, channels=1, image_size=(24, 40), batch_size=4, val_size=0)
    dm.setup("fit")
    paddings, (images, _) = _crop_paddings(dm, next(iter(dm.train_dataloader())), training=True)
    assert paddings == [5] and images.shape == (4, 1, 24, 40)


def test_a_loop_of_one_s_own_augments_the_batches_it_says_are_training_batches(
    fake_cifar: dict,
) -> None:
    # Without a Trainer no batch is a training batch, unless passed with training=True.
    dm = CIFAR10(fake_cifar["root"], download=False, val_size=0)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    plain = dm.on_after_batch_transfer(batch, 0)[0]
    torch.testing.assert_close(plain, dm.transform(batch[0]))
    torch.manual_seed(1)
    augmented = dm.on_after_batch_transfer(batch, 0, training=True)[0]
    assert augmented.shape == plain.shape and not torch.equal(augmented, plain)
    with pytest.raises(ValueError, match=r"training must be True, False or None; got 1"):
        dm.on_after_batch_transfer(batch, 0, training=1)


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"augment": "yes"}, ValueError, r"augment must be True or False; got 'yes'"),
        ({"augment": None}, ValueError, r"augment must be True or False; got None"),
        (
            {"crop_padding": 2.5},
            ValueError,
            r"crop_padding must be an int >= 0 \(pixels\) or None; got 2.5",
        ),
        ({"crop_padding": "4"}, ValueError, r"crop_padding must be an int >= 0 .*; got '4'"),
        ({"crop_padding": True}, ValueError, r"crop_padding must be an int >= 0 .*; got True"),
        ({"crop_padding": -1}, ValueError, r"crop_padding must be an int >= 0 .*; got -1"),
    ],
)
def test_fine_tuning_datamodules_refuse_flags_and_paddings_of_another_type(
    tmp_path, digits, kwargs: dict, error: type, message: str
) -> None:
    # crop_padding=2.5 was accepted and failed on the first training batch; "4" in a bare
    # comparison; augment="yes" and None were taken for a truth value.
    class Digits8(TransferDataModule):
        num_classes, class_names, mean, std = 10, tuple("0123456789"), (0.5,), (0.25,)

    with pytest.raises(error, match=message):
        Digits8(**kwargs)
    if "augment" in kwargs:
        _write_pngs(tmp_path, images=digits[0][:20], labels=digits[1][:20])
        with pytest.raises(error, match=message):
            ImageFolder(tmp_path, channels=1, **kwargs)
        with pytest.raises(error, match=message):
            CIFAR10(tmp_path, download=False, **kwargs)


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"download": "false"}, ValueError, r"download must be True or False; got 'false'"),
        ({"download": None}, ValueError, r"download must be True or False; got None"),
        ({"data_dir": 3}, TypeError, r"data_dir must be a folder's path .*; got 3"),
    ],
)
def test_cifar_refuses_a_download_flag_or_data_dir_of_another_type(
    tmp_path, kwargs: dict, error: type, message: str
) -> None:
    kwargs = {"data_dir": str(tmp_path), **kwargs}
    for cls in (CIFAR10, CIFAR100):
        with pytest.raises(error, match=message):
            cls(**kwargs)
    assert not any(tmp_path.iterdir())


def test_image_folder_knows_before_setup_whether_it_has_a_test_set(tmp_path, digits) -> None:
    # The launching process of ddp_spawn never runs setup; fit asks it whether to test.
    images, labels = digits
    _write_pngs(tmp_path / "split" / "train", images[:40], labels[:40])
    dm = ImageFolder(tmp_path / "split", channels=1, image_size=28)
    assert dm.has_test_set is False
    (tmp_path / "split" / "test").mkdir()
    write_png(images[40][None], str(tmp_path / "split" / "test" / "unlabelled.png"))
    assert ImageFolder(tmp_path / "split", channels=1).has_test_set is False  # Kaggle's test/
    _write_pngs(tmp_path / "split" / "test", images[40:60], labels[40:60])
    (tmp_path / "split" / "test" / "unlabelled.png").unlink()
    dm = ImageFolder(tmp_path / "split", channels=1, image_size=28)
    assert dm.has_test_set is True
    dm.setup("fit")
    assert dm.has_test_set is True
    _write_pngs(tmp_path / "classes", images[:40], labels[:40])
    assert ImageFolder(tmp_path / "classes", channels=1, test_size=0).has_test_set is False
    dm = ImageFolder(tmp_path / "classes", channels=1, image_size=28)
    assert dm.has_test_set is None  # a share of images not counted yet
    dm.setup("fit")
    assert dm.has_test_set is True


def test_evaluation_crops_as_the_weights_record_and_predict_folder_does(tmp_path, digits) -> None:
    # A model whose data_config records an evaluation crop (torchvision's ImageNet weights:
    # 224 of 256 px) is tested on the files sized as predict_folder sizes them; fit keeps
    # the whole image (its checkpoint then records no crop).
    images, labels = digits
    _write_pngs(tmp_path / "train", images[:120], labels[:120])
    _write_pngs(tmp_path / "test", images[120:180], labels[120:180])
    torch.manual_seed(0)
    model = LeNet5(num_classes=10)
    model.data_config = {"mean": [0.13], "std": [0.31], "image_size": [32, 32], "crop_pct": 0.875}
    quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}
    dm = ImageFolder(tmp_path, channels=1, val_size=0.2)
    probs = torch.cat(L.Trainer(**quiet).predict(model, dm))  # type: ignore[arg-type]
    files = [p.relative_to(tmp_path / "test").as_posix() for p in dm._files(tmp_path / "test")[0]]
    rows = {r["file"]: r for r in predict_folder(model, tmp_path / "test", recursive=True)}
    assert sorted(rows) == sorted(files)
    best, index = probs.max(dim=1)
    assert [rows[f]["class_index"] for f in files] == index.tolist()
    assert [rows[f]["probability"] for f in files] == pytest.approx(best.tolist(), abs=1e-5)
    assert dm._decoded == ((32, 32), "resize", 0.875)
    whole = ImageFolder(tmp_path, channels=1, image_size=32, val_size=0.2)
    whole.setup("test")  # no model: the whole image, resized
    assert not torch.equal(whole._splits["test"][0], dm._splits["test"][0])
    fitted = ImageFolder(tmp_path, channels=1, val_size=0.2)
    L.Trainer(max_steps=1, enable_checkpointing=False, **quiet).fit(model, datamodule=fitted)
    assert fitted._decoded == ((32, 32), "resize", 1.0)
    assert torch.equal(fitted._splits["test"][0], whole._splits["test"][0])
    assert "crop_pct" not in model.data_config


def test_test_size_1_tests_on_every_image_and_trains_on_none(tmp_path, digits) -> None:
    # A labelled folder to evaluate a model on, all of it: the accuracy is predict_folder's
    # on the same files, counted here against the folder names.
    images, labels = digits
    _write_pngs(tmp_path, images[:100], labels[:100])
    torch.manual_seed(0)
    model = LeNet5(num_classes=10)
    model.data_config = {"mean": [0.13], "std": [0.31], "image_size": [32, 32], "resize": "pad"}
    dm = ImageFolder(tmp_path, channels=1, test_size=1)
    quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}
    (tested,) = L.Trainer(**quiet).test(model, dm, verbose=False)
    assert dm._splits["test"][1].numel() == 100 and dm._splits["train"][1].numel() == 0
    rows = predict_folder(model, tmp_path, recursive=True)
    right = sum(r["class"] == r["file"].split("/")[0] for r in rows)
    assert len(rows) == 100 and tested["test_acc"] == pytest.approx(right / 100, abs=1e-6)
    (validated,) = L.Trainer(**quiet).validate(model, dm, verbose=False)  # the same images
    assert validated["val_acc"] == tested["test_acc"]
    with pytest.raises(ValueError, match=r"test_size=1 holds every image out for testing"):
        L.Trainer(max_steps=1, **quiet).fit(model, datamodule=dm)


def test_evaluating_on_a_folder_without_one_of_the_model_s_classes_is_refused(
    tmp_path, digits
) -> None:
    # Without its "8" folder, ImageFolder numbers "9" as 8: each 9 would be scored against
    # the model's output for 8 (and the accuracy came out as 0.0 for a model right on 10%).
    images, labels = digits
    keep = labels[:100] != 8
    _write_pngs(tmp_path, images[:100][keep], labels[:100][keep])
    model = LeNet5(num_classes=10)
    model.data_config = {"class_names": [str(d) for d in range(10)]}
    quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}
    for stage in ("test", "validate"):
        with pytest.raises(ValueError, match=(
            r"lenet5's outputs stand for the classes \['0', .*'9'\]; the datamodule "
            rf"ImageFolder labels the classes \['0', .*'7', '9'\], so .* To {stage}, give it"
        )):  # fmt: skip
            getattr(L.Trainer(**quiet), stage)(model, ImageFolder(tmp_path, channels=1))
    model.data_config = {}  # names unknown: the count still differs
    with pytest.raises(ValueError, match=r"stand for 10 classes; the datamodule ImageFolder"):
        L.Trainer(**quiet).test(model, ImageFolder(tmp_path, channels=1))
    # With ckpt_path, the checkpoint's names count (verify_checkpoint), not those of the
    # model it is restored into: a model of other classes tests a Digits checkpoint.
    digits_model = LeNet5(num_classes=10)
    digits_model.data_config = {"class_names": [str(d) for d in range(10)]}
    trainer = L.Trainer(**quiet)
    trainer.strategy.connect(digits_model)
    trainer.save_checkpoint(tmp_path / "digits.ckpt")
    model.data_config = {"class_names": [f"c{d}" for d in range(10)]}
    with pytest.raises(ValueError, match=r"outputs stand for the classes \['c0'"):
        L.Trainer(**quiet).test(model, Digits())
    # The same names in another order: each digit would be scored against another's output.
    model.data_config = {"class_names": [str(d) for d in reversed(range(10))]}
    with pytest.raises(ValueError, match=r"outputs stand for the classes \['9', '8', .*'0'\]"):
        L.Trainer(**quiet).validate(model, Digits())
    (tested,) = L.Trainer(**quiet).test(model, Digits(), ckpt_path=tmp_path / "digits.ckpt")
    assert 0 <= tested["test_acc"] <= 1


def test_the_class_advice_tells_some_classes_from_other_names() -> None:
    # Data of some of the model's classes: number them as it does; the same classes in
    # another order, or other names: map each folder to its class.
    recorded = ["cat", "dog", "fox"]
    assert class_names_hint(recorded, ["dog", "fox"]).startswith(
        "; for data of some of its classes, number them as it does: classes=['cat', 'dog', 'fox']"
    )
    for names in (["dog", "cat", "fox"], ["ant", "bee", "cow"], ["cat", "dog", "fox", "owl"]):
        hint = class_names_hint(recorded, names)
        assert "map each to its class: classes={folder: class name}" in hint, names
        assert "some of its classes" not in hint, names
    assert class_names_hint(recorded, recorded) == class_names_hint(None, recorded) == ""


def test_classes_number_a_folder_of_some_classes_as_the_model_does(tmp_path, digits) -> None:
    # The same folder without "8": with the model's class list, "9" stays label 9, and the
    # accuracy is predict_folder's on the same files, counted against the folder names.
    images, labels = digits
    keep = labels[:100] != 8
    _write_pngs(tmp_path, images[:100][keep], labels[:100][keep])
    names = [str(d) for d in range(10)]
    torch.manual_seed(0)
    model = LeNet5(num_classes=10)
    model.data_config = {"class_names": names, "mean": [0.13], "std": [0.31], "resize": "pad"}
    quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}
    hint = re.escape(f"; for data of some of its classes, number them as it does: classes={names}")
    with pytest.raises(ValueError, match=hint):
        L.Trainer(**quiet).test(model, ImageFolder(tmp_path, channels=1, test_size=1))
    dm = ImageFolder(tmp_path, channels=1, test_size=1, classes=names)
    assert dm.num_classes == 10 and dm.class_names == tuple(names)
    (tested,) = L.Trainer(**quiet).test(model, dm, verbose=False)
    truth = labels[:100][keep].sort().values  # the files in folder order
    assert torch.equal(dm._splits["test"][1].cpu(), truth)  # by name, not rank
    rows = predict_folder(model, tmp_path, recursive=True)
    folders, predicted = [r["file"].split("/")[0] for r in rows], [r["class"] for r in rows]
    assert len(rows) == int(keep.sum())
    assert tested["test_acc"] == pytest.approx(accuracy_score(folders, predicted), abs=1e-6)
    # Macro F1 over the classes the folder has or the model predicts, as scikit-learn's.
    assert tested["test_f1"] == pytest.approx(
        f1_score(folders, predicted, average="macro"), abs=1e-6
    )
    # Through ckpt_path, the checkpoint's class names count: refused with the same advice,
    # then tested with it as the model itself was.
    trainer = L.Trainer(**quiet)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "ten.ckpt")
    with pytest.raises(CheckpointError, match=hint):
        L.Trainer(**quiet).test(
            LeNet5(),
            ImageFolder(tmp_path, channels=1, test_size=1),
            ckpt_path=tmp_path / "ten.ckpt",
        )
    (restored,) = L.Trainer(**quiet).test(
        LeNet5(), ImageFolder(tmp_path, channels=1, test_size=1, classes=names),
        ckpt_path=tmp_path / "ten.ckpt", verbose=False,
    )  # fmt: skip
    assert restored["test_acc"] == tested["test_acc"]
    # A class list in another order numbers the folders by it.
    backwards = ImageFolder(tmp_path, channels=1, image_size=28, test_size=1, classes=names[::-1])
    backwards.setup("test")
    assert torch.equal(backwards._splits["test"][1], 9 - truth)


def test_classes_must_list_every_class_folder_once(tmp_path, digits) -> None:
    images, labels = digits
    _write_pngs(tmp_path / "train", images[:20], labels[:20])
    _write_pngs(tmp_path / "val", images[20:40], labels[20:40])
    names = [str(d) for d in range(10)]
    with pytest.raises(
        ValueError,
        match=rf"{re.escape(str(Path('train', '3')))}: class '3' is not among "
        r"the classes' folders \['0'",
    ):
        ImageFolder(tmp_path, classes=[n for n in names if n != "3"])
    with pytest.raises(
        TypeError, match=r"classes must be a list of class names, or a mapping; got '0123'"
    ):
        ImageFolder(tmp_path, classes="0123")
    with pytest.raises(ValueError, match=r"each class once; \['1'\] appear more than once"):
        ImageFolder(tmp_path, classes=[*names, "1"])
    with pytest.raises(ValueError, match=r"two or more non-empty names; got \['0'\]"):
        ImageFolder(tmp_path, classes=["0"])
    # Numbers for the folders named 0, 1, ...: a name's spelling (01 or 1) is not a number's.
    for numbered in ([0, 1], {0: "zero", "1": "one"}, {"0": "zero", "1": 1}):
        with pytest.raises(TypeError, match=r"classes must name folders and classes with "
                           r"strings; got [01]$"):  # fmt: skip
            ImageFolder(tmp_path, classes=numbered)  # type: ignore[arg-type]
    dm = ImageFolder(tmp_path, channels=1, image_size=28, classes=[*names, "extra"])
    dm.setup("fit")  # a class without images is a class all the same: 11 outputs
    assert dm.num_classes == 11 and torch.equal(dm._splits["val"][1], labels[20:40].sort().values)
    (tmp_path / "val" / "9").rename(tmp_path / "val" / "nine")
    with pytest.raises(
        ValueError,
        match=rf"{re.escape(str(Path('val', 'nine')))}: class 'nine' is not among "
        r"the classes' folders",
    ):
        ImageFolder(tmp_path, channels=1, image_size=28, classes=names).setup("fit")


def test_predictions_name_labels_as_the_data_and_classes_as_the_model(tmp_path, digits) -> None:
    # A folder without "8" numbers "9" as its label 8: the CSV's label column must say "9",
    # the folder's name (it said the model's name for class 8), and its class column the
    # model's name for the output.
    images, labels = digits
    keep = labels[:60] != 8
    _write_pngs(tmp_path / "photos", images[:60][keep], labels[:60][keep])
    model = LeNet5(num_classes=10)
    model.data_config = {"class_names": [f"digit {d}" for d in range(10)], "resize": "pad"}
    writer = PredictionCSV(tmp_path / "predictions.csv")
    trainer = L.Trainer(logger=False, callbacks=[writer], enable_progress_bar=False)
    data = ImageFolder(tmp_path / "photos", channels=1, test_size=1)
    trainer.predict(model, datamodule=data, return_predictions=False)
    with (tmp_path / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    folders = [str(int(v)) for v in labels[:60][keep].sort().values]  # in file order
    assert [r["label"] for r in rows] == folders
    assert all(r["class"] == f"digit {r['class_index']}" for r in rows)


def test_each_predicted_row_names_its_file(tmp_path, digits) -> None:
    # The test split of one folder is a seeded draw: without the file, a row's index could
    # not be matched to an image. Each row's file is checked against its folder (the label)
    # and against predict_folder, which reads that file by itself.
    images, labels = digits
    _write_pngs(tmp_path / "photos", images[:80], labels[:80])
    torch.manual_seed(0)
    model = LeNet5(num_classes=10)
    model.data_config = {"class_names": [str(d) for d in range(10)], "resize": "pad"}
    data = ImageFolder(tmp_path / "photos", channels=1, test_size=0.25, mean=[0.1], std=[0.3])
    writer = PredictionCSV(tmp_path / "predictions.csv")
    trainer = L.Trainer(logger=False, callbacks=[writer], enable_progress_bar=False)
    trainer.predict(model, datamodule=data, return_predictions=False)
    with (tmp_path / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 20 and list(rows[0])[:2] == ["file", "index"]
    assert [r["file"] for r in rows] == [p.as_posix() for p in data.files["test"]]
    every = {p.as_posix() for p in (tmp_path / "photos").rglob("*.png")}
    assert len(every) == 80 and len({r["file"] for r in rows} & every) == 20  # a draw of 20
    assert all(Path(r["file"]).parent.name == r["label"] for r in rows)

    # The user's own images of the same count, after it: the trainer keeps the ImageFolder
    # attached, whose files these are not (they were named).
    # Nor does a `files` of another kind (a tensor, which has no truth value) name them.
    class Listed(torch.utils.data.TensorDataset):
        files = torch.arange(20)

    for mine in (torch.zeros(20, 1, 32, 32), Listed(torch.zeros(20, 1, 32, 32))):
        loader = torch.utils.data.DataLoader(mine, batch_size=8)
        trainer.predict(model, dataloaders=loader, return_predictions=False)
        with (tmp_path / "predictions.csv").open() as f:
            assert next(csv.reader(f))[0] == "index"
    alone = predict_folder(model, tmp_path / "photos", recursive=True, mean=[0.1], std=[0.3])
    by_file = {(tmp_path / "photos" / r["file"]).as_posix(): r for r in alone}
    for row in rows:
        read = by_file[row["file"]]
        assert read["class"] == row["class"], row
        assert read["probability"] == pytest.approx(float(row["probability"]), abs=1e-5)


def test_a_class_map_names_classes_no_folder_can_be_named_after(tmp_path, fashion_raw) -> None:
    # A Fashion-MNIST model's classes include "T-shirt/top": folders named by index, mapped
    # to the names the model records, test it (here on 120 real test images).
    from classic_cnns import FashionMNIST

    images = read_idx(fashion_raw / "t10k-images-idx3-ubyte.gz")[:120]
    labels = read_idx(fashion_raw / "t10k-labels-idx1-ubyte.gz")[:120].long()
    _write_pngs(tmp_path, images, labels)
    names = list(FashionMNIST.class_names)
    assert "T-shirt/top" in names
    torch.manual_seed(0)
    model = LeNet5(num_classes=10)
    model.data_config = {"class_names": names, "mean": [0.29], "std": [0.35], "resize": "pad"}
    quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}
    with pytest.raises(ValueError, match=r"map each to its class: classes=\{folder: class name"):
        L.Trainer(**quiet).test(model, ImageFolder(tmp_path, channels=1, test_size=1))
    by_index = {str(i): name for i, name in enumerate(names)}
    data = ImageFolder(tmp_path, channels=1, test_size=1, classes=by_index)
    assert data.class_names == tuple(names)
    (tested,) = L.Trainer(**quiet).test(model, data, verbose=False)
    assert torch.equal(data._splits["test"][1].cpu(), labels.sort().values)
    rows = predict_folder(model, tmp_path, recursive=True)
    truth = [names[int(r["file"].split("/")[0])] for r in rows]
    predicted = [r["class"] for r in rows]
    assert tested["test_acc"] == pytest.approx(accuracy_score(truth, predicted), abs=1e-6)
    with pytest.raises(ValueError, match=r"each class once; \['Trouser'\] appear more than once"):
        ImageFolder(tmp_path, classes={"0": "Trouser", "1": "Trouser"})


def test_predict_folder_names_classes_only_with_as_many_names_as_outputs(tmp_path, digits) -> None:
    images, labels = digits
    _write_pngs(tmp_path, images[:12], labels[:12])
    model = LeNet5(num_classes=10)
    names = [f"digit {d}" for d in range(10)]
    model.data_config = {"class_names": names, "mean": [0.13], "std": [0.31], "resize": "pad"}
    rows = predict_folder(model, tmp_path, recursive=True)
    assert all(r["class"] == f"digit {r['class_index']}" for r in rows)
    model.data_config["class_names"] = ["cat", "dog", "fox"]  # an older head's
    with pytest.warns(UserWarning, match=r"records 3 class names for its 10 classes; writing"):
        rows = predict_folder(model, tmp_path, recursive=True)
    assert all(r["class"] == str(r["class_index"]) for r in rows) and len(rows) == 12


def test_images_that_cannot_fit_in_memory_are_refused_before_any_is_decoded(
    tmp_path, digits, monkeypatch
) -> None:
    images, labels = digits
    _write_pngs(tmp_path, images[:40], labels[:40])
    decoded: list[Path] = []
    real_load = images_module._read_image
    monkeypatch.setattr(
        images_module, "_read_image", lambda p, *a: decoded.append(p) or real_load(p, *a)
    )
    # All 40 images at 3x224x224 take 40 * 150,528 bytes; one byte fewer is available. The
    # whole folder is counted before any file is decoded: the test split (8 images) was
    # decoded first, and then the training split's 29 refused.
    monkeypatch.setattr(folder_module, "_available_memory", lambda: 40 * 150_528 - 1)
    dm = ImageFolder(tmp_path, channels=3, image_size=224, test_size=0.2)
    with pytest.raises(
        MemoryError,
        match=rf"{re.escape(str(tmp_path))}: ImageFolder keeps its images decoded in memory; 40 "
        r"images at 3x224x224 take 0\.0 GiB, and 0\.0 GiB is available\. Decode them at a "
        r"smaller image_size",
    ):
        dm.setup("fit")
    assert decoded == []
    # Exactly the folder's bytes: they fit (only more than is available is refused).
    monkeypatch.setattr(folder_module, "_available_memory", lambda: 40 * 150_528)
    dm.setup("fit")
    assert len(decoded) == 40
    assert sum(len(dm._splits[s][1]) for s in ("train", "val", "test")) == 40


def test_available_memory_is_the_least_of_the_machine_s_and_the_container_s(monkeypatch) -> None:
    available = folder_module._available_memory()
    if Path("/proc/meminfo").is_file():  # Linux: at most the machine's physical memory
        assert available is not None
        assert 0 < available <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    files = {
        "/proc/meminfo": "MemTotal:  8000000 kB\nMemAvailable:    4000000 kB\n",
        "/sys/fs/cgroup/memory.max": "3000000000\n",
        "/sys/fs/cgroup/memory.current": "1000000000\n",
    }
    monkeypatch.setattr(folder_module, "_text", lambda path: files.get(path, ""))
    assert folder_module._available_memory() == 2_000_000_000  # the container's limit
    files["/sys/fs/cgroup/memory.max"] = "max\n"  # no limit: the machine's
    assert folder_module._available_memory() == 4_000_000 * 1024
    files.clear()  # nothing readable (macOS, Windows): no check
    assert folder_module._available_memory() is None


def test_training_and_validation_images_are_decoded_apart_and_split_as_before(
    tmp_path, digits, monkeypatch
) -> None:
    # Decoding the training share whole and then splitting it held it twice at the peak (the
    # memory check counts it once): each split is decoded into its own tensor, the same split.
    images, labels = digits
    _write_pngs(tmp_path / "one", images[:60], labels[:60])
    _write_pngs(tmp_path / "split" / "train", images[:60], labels[:60])
    sizes: list[int] = []
    real_decode = ImageFolder._decode

    def decode(self, split, paths, labels, pick=None):
        sizes.append(len(paths) if pick is None else len(pick))
        return real_decode(self, split, paths, labels, pick)

    monkeypatch.setattr(ImageFolder, "_decode", decode)
    for layout, test_share in (("one", 0.2), ("split", 0.2)):
        sizes.clear()
        dm = ImageFolder(tmp_path / layout, channels=1, image_size=28, val_size=0.25,
                         test_size=test_share)  # fmt: skip
        dm.setup("fit")
        seen = list(sizes)  # the images each decode of dm's took
        whole = ImageFolder(
            tmp_path / layout, channels=1, image_size=28, val_size=0, test_size=test_share
        )
        whole.setup("fit")  # its training split is the training and validation images
        expected = dm._split(*whole._splits["train"])
        for split in ("train", "val"):
            assert torch.equal(dm._splits[split][0], expected[split][0])
            assert torch.equal(dm._splits[split][1], expected[split][1])
        counts = [len(dm._splits[split][1]) for split in ("train", "val", "test")]
        assert counts[1] > 0 and sorted(seen) == sorted(counts)  # one decode per split


def test_nested_files_come_in_torchvision_s_order(tmp_path: Path) -> None:
    # Folder by folder, then by name, as torchvision's ImageFolder walks them: a class's own
    # files before its subfolders' ("sub b" and "sub-1" sort before "sub/deeper" as text).
    import torchvision
    from PIL import Image

    for rel in ("a/z.png", "a/sub/a.png", "a/sub b/c.png", "a/sub/deeper/d.png", "a/A.png",
                "a/sub-1/e.png", "b/x.png", "b/10.png", "b/9.png", "b/s/1.png"):  # fmt: skip
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (8, 8)).save(tmp_path / rel)
    theirs = torchvision.datasets.ImageFolder(str(tmp_path)).samples
    dm = ImageFolder(tmp_path, channels=1, image_size=8, test_size=1.0, val_size=0)
    dm.setup("test")  # test_size=1: every image, in the order listed
    assert [str(p) for p in dm.files["test"]] == [path for path, _ in theirs]
    assert dm._splits["test"][1].tolist() == [label for _, label in theirs]
