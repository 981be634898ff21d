"""Datamodules on real data: the MNIST test set from ../shared/data and scikit-learn's digits."""

import gzip
import inspect
import math
import os
import re
import shutil
import socket
import time
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import scipy.stats
import torch

from classic_cnns import CIFAR10, CIFAR100, MNIST, Digits, FashionMNIST, LeNet5
from classic_cnns.data import ImageFolder, TensorBatches, read_idx
from classic_cnns.data import mnist as mnist_module
from classic_cnns.files import file_digest
from conftest import T10K_IMAGES, T10K_LABELS, make_mnist_dir

# Class counts of the real MNIST test set, digits 0..9 (../shared/data/README.md).
T10K_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_read_idx_reads_the_real_test_set(mnist_raw: Path, tmp_path: Path) -> None:
    images = read_idx(mnist_raw / T10K_IMAGES)
    labels = read_idx(mnist_raw / T10K_LABELS)
    assert images.shape == (10_000, 28, 28) and images.dtype == torch.uint8
    assert torch.bincount(labels.long()).tolist() == T10K_COUNTS
    assert images.float().mean().item() == pytest.approx(0.1325 * 255, rel=0.01)
    raw = make_mnist_dir(tmp_path, mnist_raw, gz=False)  # the same bytes, uncompressed
    assert torch.equal(read_idx(raw / T10K_IMAGES.removesuffix(".gz")), images)


def test_read_idx_names_a_truncated_file(mnist_raw: Path, tmp_path: Path) -> None:
    with gzip.open(mnist_raw / T10K_LABELS) as f:
        data = f.read()
    bad = tmp_path / "t10k-labels-idx1-ubyte"
    bad.write_bytes(data[:5000])
    with pytest.raises(
        ValueError,
        match=rf"{re.escape(str(bad))}: expected 10008 bytes for shape \(10000,\), got 5000",
    ):
        read_idx(bad)
    bad.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match="not an IDX file of unsigned bytes"):
        read_idx(bad)
    half_gz = tmp_path / "cut.gz"
    half_gz.write_bytes((mnist_raw / T10K_LABELS).read_bytes()[:1000])
    with pytest.raises(ValueError, match=rf"{re.escape(str(half_gz))}: cannot read the file"):
        read_idx(half_gz)


def _copy_fashion(src: Path, root: Path) -> Path:
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for path in src.glob("*.gz"):
        shutil.copy(path, raw / path.name)
    return raw


def test_a_recompressed_copy_is_accepted_by_its_content(fashion_raw: Path, tmp_path: Path) -> None:
    # Not the published .gz bytes, but the published content: Debian's copy is such, and the
    # published files (as `classic-cnns data fetch` gets them) are recompressed here.
    raw = _copy_fashion(fashion_raw, tmp_path)
    for path in raw.glob("*.gz"):
        published = dict(FashionMNIST.resources)[path.name]
        if file_digest(path) == published:
            with gzip.open(path) as f:
                path.write_bytes(gzip.compress(f.read(), compresslevel=1, mtime=0))
        assert file_digest(path) != published
    dm = FashionMNIST(str(tmp_path), download=False, val_size=0)
    dm.setup("fit")
    (train_x, train_y), (test_x, test_y) = dm._splits["train"], dm._splits["test"]
    assert train_x.shape == (60_000, 1, 28, 28) and test_x.shape == (10_000, 1, 28, 28)
    assert torch.bincount(train_y).tolist() == [6000] * 10
    assert torch.bincount(test_y).tolist() == [1000] * 10


def test_a_recompressed_mnist_file_passes_and_the_published_one_too(
    mnist_raw: Path, tmp_path: Path
) -> None:
    raw = make_mnist_dir(tmp_path, mnist_raw)
    with gzip.open(raw / T10K_LABELS) as f:
        content = f.read()
    (raw / T10K_LABELS).write_bytes(gzip.compress(content, compresslevel=1, mtime=0))
    dm = MNIST(str(tmp_path), download=False, protocol="10k", val_size=0)
    dm.setup("fit")
    assert dm._splits["test"][1].shape == (2000,)


@pytest.mark.parametrize("compressed", [True, False])
def test_a_damaged_copy_is_refused_by_its_content(
    fashion_raw: Path, tmp_path: Path, compressed: bool
) -> None:
    raw = _copy_fashion(fashion_raw, tmp_path)
    name = "t10k-labels-idx1-ubyte.gz"
    with gzip.open(raw / name) as f:
        content = bytearray(f.read())
    content[100] = (content[100] + 1) % 10  # a wrong label that is still a valid label
    (raw / name).unlink()
    if compressed:
        path = raw / name
        path.write_bytes(gzip.compress(bytes(content)))
        match = (
            rf"^{re.escape(str(path))}: md5 \w+ does not match the published \w+; "
            r"the file is corrupted or "
            r"not the original: delete it and download again \(a recompressed copy passes by "
            r"its content, but this one fails: content md5 \w+ does not match the published "
            r"content's 15d484375f8d13e6eb1aabb0c3f46965"
        )
    else:
        path = raw / name.removesuffix(".gz")
        path.write_bytes(bytes(content))
        match = (
            rf"^{re.escape(str(path))}: content md5 \w+ does not match the published content's "
            r"15d484375f8d13e6eb1aabb0c3f46965; the file is corrupted or not the original"
        )
    with pytest.raises(ValueError, match=match) as info:
        FashionMNIST(str(tmp_path), download=False).setup("fit")
    assert str(info.value).count("delete it and download again") == 1  # said once, at the end
    assert path.read_bytes() != b""  # kept for inspection


def test_an_unpacked_file_that_kept_its_gz_name_is_read_and_a_swapped_one_named(
    fashion_raw: Path, tmp_path: Path
) -> None:
    # Browsers unpack these files and keep ".gz": refused as "corrupted: delete it" before.
    raw = _copy_fashion(fashion_raw, tmp_path)
    name = "t10k-labels-idx1-ubyte.gz"
    with gzip.open(raw / name) as f:
        content = f.read()
    (raw / name).write_bytes(content)
    dm = FashionMNIST(str(tmp_path), download=False)
    dm.setup("fit")
    assert dm._splits["test"][1].tolist() == list(content[8:])
    # Train and test swapped: each holds the other's published content, which says so.
    train, test = raw / "train-labels-idx1-ubyte.gz", raw / name
    train_bytes = train.read_bytes()
    train.write_bytes(test.read_bytes())
    test.write_bytes(train_bytes)
    with pytest.raises(ValueError) as info:
        FashionMNIST(str(tmp_path), download=False).setup("fit")
    assert re.fullmatch(
        rf"{re.escape(str(test))}: content md5 \w+ does not match the published content's "
        r"\w+; it holds train-labels-idx1-ubyte \(that file's content md5\): rename it",
        str(info.value),
    )


def test_a_truncated_recompressed_copy_is_refused_with_its_name(
    fashion_raw: Path, tmp_path: Path
) -> None:
    raw = _copy_fashion(fashion_raw, tmp_path)
    path = raw / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(
        ValueError,
        match=rf"^{re.escape(str(path))}: md5 \w+ does not match the published \w+; "
        r".* this one fails: "
        "cannot read the file",
    ):
        FashionMNIST(str(tmp_path), download=False).setup("fit")


def test_stand_in_training_files_are_refused_by_their_content(
    mnist_raw: Path, tmp_path: Path
) -> None:
    # Valid IDX files with the right header and labels, but not the published training set.
    raw = make_mnist_dir(tmp_path, mnist_raw, train=True)
    path = raw / "train-images-idx3-ubyte"
    with pytest.raises(
        ValueError,
        match=rf"^{re.escape(str(path))}: content md5 \w+ does not match the published content's "
        "6bbc9ace898e44ae57da46a324031adb; the file is corrupted or not the original",
    ):
        MNIST(str(tmp_path), download=False).setup("fit")
    assert path.stat().st_size == 16 + 6000 * 28 * 28  # kept for inspection


@pytest.mark.usefixtures("mnist_standins")
@pytest.mark.parametrize("label", [10, 12])  # 10: the first one out of range
def test_labels_out_of_range_are_named(mnist_raw: Path, tmp_path: Path, label: int) -> None:
    raw = make_mnist_dir(tmp_path, mnist_raw, train=True)
    labels = raw / "train-labels-idx1-ubyte"
    data = bytearray(labels.read_bytes())
    data[8 + 17] = label
    labels.write_bytes(bytes(data))
    with pytest.raises(
        ValueError,
        match=rf"^{re.escape(str(labels))}: labels must lie in \[0, 10\); "
        rf"got a largest label of {label}",
    ):
        MNIST(str(tmp_path), download=False).setup("fit")


def test_missing_files_name_the_file_and_the_folder(tmp_path: Path) -> None:
    dm = MNIST(str(tmp_path), download=False)
    missing = ", ".join(
        f"{kind}-{what}-ubyte.gz"
        for kind in ("train", "t10k")
        for what in ("images-idx3", "labels-idx1")
    )
    raw = tmp_path / "MNIST" / "raw"
    with pytest.raises(
        FileNotFoundError, match=rf"MNIST: {missing} missing from {re.escape(str(raw))}"
    ) as e:
        dm.setup("fit")
    assert "protocol='10k'" not in str(e.value)  # its files are missing too
    assert f"{raw} (no such folder;" in str(e.value)


def test_missing_files_say_what_is_there_instead(mnist_raw: Path, tmp_path: Path) -> None:
    # The IDX files one folder too high, as downloaded by hand: the message points them out.
    for f in mnist_raw.glob("t10k-*"):
        shutil.copy(f, tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    with pytest.raises(
        FileNotFoundError,
        match=rf"\. {re.escape(str(tmp_path))}: it holds t10k-images-idx3-ubyte\.gz, "
        rf"t10k-labels-idx1-ubyte\.gz; IDX files belong in {re.escape(str(raw))}\. Pass",
    ):
        MNIST(str(tmp_path), download=False, protocol="10k").setup("fit")
    # In MNIST/ itself, beside raw/ (as unpacked from an archive): pointed out too.
    inside = tmp_path / "inside"
    (inside / "MNIST").mkdir(parents=True)
    for f in mnist_raw.glob("t10k-*"):
        shutil.copy(f, inside / "MNIST")
    there, raw_inside = (re.escape(str(p)) for p in (inside / "MNIST", inside / "MNIST/raw"))
    with pytest.raises(
        FileNotFoundError,
        match=rf"\. {there}: it holds t10k-images-idx3-ubyte\.gz, "
        rf"t10k-labels-idx1-ubyte\.gz; IDX files belong in {raw_inside}\. Pass",
    ):
        MNIST(str(inside), download=False, protocol="10k").setup("fit")
    # Kaggle's copies, named with a dot: the folder's files are listed beside the names sought.
    raw.mkdir(parents=True)
    for n in range(8):
        (raw / f"t10k-part{n}.idx3-ubyte").write_bytes(b"")
    with pytest.raises(
        FileNotFoundError,
        match=rf"missing from {re.escape(str(raw))} \(it holds t10k-part0\.idx3-ubyte, .*"
        r"t10k-part5\.idx3-ubyte and 2 more; each file",
    ):
        MNIST(str(tmp_path), download=False, protocol="10k").setup("fit")


def test_a_test_set_alone_points_to_the_10k_protocol(mnist_raw: Path, tmp_path: Path) -> None:
    # ../shared/data holds MNIST's test set only, as here: the standard protocol says what to do.
    make_mnist_dir(tmp_path, mnist_raw)
    with pytest.raises(
        FileNotFoundError,
        match=r"train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz missing from .*; or "
        r"train on the test set's first 8,000 images .* \(protocol='10k', --data.protocol 10k\)",
    ):
        MNIST(str(tmp_path), download=False).setup("fit")


@pytest.mark.usefixtures("mnist_standins")
@pytest.mark.parametrize("gz", [True, False])
def test_standard_protocol_reads_train_and_test(mnist_raw: Path, tmp_path: Path, gz: bool) -> None:
    make_mnist_dir(tmp_path, mnist_raw, gz=gz, train=True)
    dm = MNIST(str(tmp_path), download=False, val_size=0.1, image_size=32)
    dm.setup("fit")
    assert [len(dm._splits[s][1]) for s in ("train", "val", "test")] == [5400, 600, 10_000]
    assert dm.dims == (1, 32, 32)
    images, _ = next(iter(dm.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (128, 1, 28, 28)


def test_10k_protocol_trains_on_the_first_8000_and_tests_on_the_last_2000(mnist_raw: Path) -> None:
    dm = MNIST(str(mnist_raw.parents[1]), download=False, protocol="10k", val_size=0)
    dm.setup("fit")
    all_labels = read_idx(mnist_raw / T10K_LABELS).long()
    assert torch.equal(dm._splits["train"][1], all_labels[:8000])
    assert torch.equal(dm._splits["test"][1], all_labels[8000:])
    assert dm.val_dataloader() == []
    # The test split holds its own 2,000 images, not a view that keeps all 10,000 in memory.
    images, labels = dm._splits["test"]
    assert images.untyped_storage().nbytes() == images.nbytes == 2000 * 28 * 28
    assert labels.untyped_storage().nbytes() == labels.nbytes == 2000 * 8


def test_split_is_seeded_and_deterministic(mnist_raw: Path) -> None:
    def val_labels(seed: int) -> torch.Tensor:
        dm = MNIST(
            str(mnist_raw.parents[1]), download=False, protocol="10k", val_size=500, seed=seed
        )
        dm.setup("fit")
        assert len(dm._splits["val"][1]) == 500 and len(dm._splits["train"][1]) == 7500
        return torch.cat([y for _, y in dm.val_dataloader()])

    assert torch.equal(val_labels(0), val_labels(0))
    assert not torch.equal(val_labels(0), val_labels(1))


def test_corrupted_file_fails_its_checksum(mnist_raw: Path, tmp_path: Path) -> None:
    raw = make_mnist_dir(tmp_path, mnist_raw)
    data = bytearray((raw / T10K_LABELS).read_bytes())
    data[-20] ^= 0xFF
    (raw / T10K_LABELS).write_bytes(bytes(data))
    dm = MNIST(str(tmp_path), download=False, protocol="10k")
    with pytest.raises(
        ValueError,
        match=rf"{re.escape(str(raw / T10K_LABELS))}: md5 \w+ does not match the published",
    ):
        dm.setup("fit")


def test_download_fetches_from_a_mirror_and_verifies_md5(
    mnist_raw: Path, tmp_path: Path, http_mirror: tuple[Path, str]
) -> None:
    mirror, url = http_mirror
    for name in (T10K_IMAGES, T10K_LABELS):
        shutil.copy(mnist_raw / name, mirror / name)
    dm = MNIST(str(tmp_path / "data"), download=True, protocol="10k", val_size=0)
    dm.mirrors = [url + "missing/", url]  # the first mirror answers 404
    dm.prepare_data()
    assert sorted(p.name for p in dm.raw_dir.iterdir()) == [T10K_IMAGES, T10K_LABELS]
    dm.setup("fit")
    assert len(dm._splits["train"][1]) == 8000


def test_each_mirror_is_fetched_afresh_and_a_silent_one_times_out(
    mnist_raw: Path, tmp_path: Path, http_mirror: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror, url = http_mirror
    (mirror / "cut").mkdir()
    for name in (T10K_IMAGES, T10K_LABELS):
        shutil.copy(mnist_raw / name, mirror / name)
        (mirror / "cut" / name).write_bytes((mnist_raw / name).read_bytes()[:1000])
    monkeypatch.setattr(mnist_module, "DOWNLOAD_TIMEOUT", 1.0)
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        dm = MNIST(str(tmp_path / "data"), download=True, protocol="10k", val_size=0)
        dm.mirrors = [f"http://127.0.0.1:{silent.getsockname()[1]}/", url + "cut/", url]
        dm.prepare_data()  # the third mirror's files, not the second's cut ones again
    for name in (T10K_IMAGES, T10K_LABELS):
        assert (dm.raw_dir / name).read_bytes() == (mnist_raw / name).read_bytes()


def test_a_mirrors_recompressed_copy_is_kept_by_its_content(
    fashion_raw: Path, tmp_path: Path, http_mirror: tuple[Path, str]
) -> None:
    # Debian's Fashion-MNIST: recompressed, so not the published .gz md5s; the content is.
    mirror, url = http_mirror
    for name in (T10K_IMAGES, T10K_LABELS):
        shutil.copy(fashion_raw / name, mirror / name)
    dm = FashionMNIST(str(tmp_path / "data"), download=True, protocol="10k", val_size=0)
    dm.mirrors = [url]
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm._splits["train"][1]) == 8000
    # A recompressed file whose content is not the published one is refused, naming why.
    with gzip.open(fashion_raw / T10K_LABELS) as f:
        labels = bytearray(f.read())
    labels[-1] = (labels[-1] + 1) % 10
    (mirror / T10K_LABELS).write_bytes(gzip.compress(bytes(labels)))
    (dm.raw_dir / T10K_LABELS).unlink()
    with pytest.raises(
        RuntimeError, match=r"(?s)could not download .*content md5 \w+ does not"
    ) as info:
        dm.prepare_data()
    assert not (dm.raw_dir / T10K_LABELS).exists()
    # Said of the URL: the scratch copy it names would be gone, and is not the user's to delete.
    assert f"{url}{T10K_LABELS}: md5 " in str(info.value)
    assert "-download-" not in str(info.value) and "delete it" not in str(info.value)
    # The training labels under the test labels' name: not the user's file to rename.
    with gzip.open(fashion_raw / "train-labels-idx1-ubyte.gz") as f:
        (mirror / T10K_LABELS).write_bytes(gzip.compress(f.read()))
    with pytest.raises(RuntimeError) as info:
        dm.prepare_data()
    assert (
        "it holds train-labels-idx1-ubyte (that file's content md5), which the mirror "
        "serves as this" in str(info.value)
    )
    assert "rename" not in str(info.value) and not (dm.raw_dir / T10K_LABELS).exists()


def test_a_file_where_the_dataset_folder_goes_is_named(tmp_path: Path) -> None:
    # os.mkdir said "[Errno 20] Not a directory: '.../FashionMNIST/raw'", of the folder.
    (tmp_path / "FashionMNIST").write_text("")
    with pytest.raises(NotADirectoryError) as info:
        FashionMNIST(str(tmp_path), download=True, protocol="10k").prepare_data()
    assert str(info.value) == (
        f"{tmp_path / 'FashionMNIST'} is a file; expected a folder there, to hold "
        f"{tmp_path / 'FashionMNIST' / 'raw'}"
    )
    with pytest.raises(FileNotFoundError, match=r"\(no such folder: .*FashionMNIST is a file;"):
        FashionMNIST(str(tmp_path), download=False, protocol="10k").setup("fit")


def test_failed_download_leaves_nothing_behind_and_keeps_good_files(
    mnist_raw: Path, tmp_path: Path, http_mirror: tuple[Path, str]
) -> None:
    mirror, url = http_mirror
    shutil.copy(mnist_raw / T10K_IMAGES, mirror / T10K_IMAGES)
    (mirror / T10K_LABELS).write_bytes(b"not the real labels")
    dm = MNIST(str(tmp_path / "data"), download=True, protocol="10k")
    dm.mirrors = [url]
    # Scratch folders a killed download left: a day old ones go, a running one's stays.
    old = dm.raw_dir / ".classic-cnns-download-old"
    running = dm.raw_dir / ".classic-cnns-download-running"
    for folder in (old, running):
        (folder / T10K_LABELS).parent.mkdir(parents=True)
        (folder / T10K_LABELS).write_bytes(b"partial")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (two_days_ago, two_days_ago))
    with pytest.raises(
        RuntimeError, match=rf"(?s)could not download {T10K_LABELS} into .*md5 \w+ does not match"
    ):
        dm.prepare_data()
    assert sorted(p.name for p in dm.raw_dir.iterdir()) == [running.name, T10K_IMAGES]
    shutil.rmtree(running)
    good = (dm.raw_dir / T10K_IMAGES).read_bytes()
    with pytest.raises(RuntimeError, match=rf"could not download {T10K_LABELS}"):
        dm.prepare_data()
    assert (dm.raw_dir / T10K_IMAGES).read_bytes() == good


def test_the_default_statistics_are_each_training_set_s_own(fashion_raw: Path) -> None:
    # Per channel, over every pixel of the training images scaled to [0, 1], rounded to four
    # places. Fashion-MNIST's are computed here from the real images (the digits' in
    # test_digits_are_real_and_split_by_seed).
    pixels = read_idx(fashion_raw / "train-images-idx3-ubyte.gz").double() / 255
    assert pixels.shape == (60_000, 28, 28)
    stats = (round(pixels.mean().item(), 4),), (round(pixels.std(correction=0).item(), 4),)
    assert (FashionMNIST.mean, FashionMNIST.std) == stats == ((0.2860,), (0.3530,))
    # Training sets not at hand here: the figures everyone quotes (torchvision's MNIST
    # examples; CIFAR's per-channel figures over all 50,000 training images).
    assert (MNIST.mean, MNIST.std) == ((0.1307,), (0.3081,))
    assert (CIFAR10.mean, CIFAR10.std) == ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    assert (CIFAR100.mean, CIFAR100.std) == ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))


@pytest.mark.parametrize(
    "datamodule", [MNIST, FashionMNIST, CIFAR10, CIFAR100, Digits, ImageFolder]
)
def test_batches_are_made_in_the_main_process_by_default(datamodule: type) -> None:
    # The datamodules' documented default: num_workers=0, fastest for images held in memory.
    assert inspect.signature(datamodule).parameters["num_workers"].default == 0


def test_fashion_mnist_uses_its_own_folder_and_sources(tmp_path: Path) -> None:
    dm = FashionMNIST(str(tmp_path), download=False)
    assert dm.raw_dir == tmp_path / "FashionMNIST" / "raw"
    assert dm.mirrors != MNIST.mirrors and len(dm.class_names) == 10
    with pytest.raises(FileNotFoundError, match=r"FashionMNIST: train-images-idx3-ubyte\.gz.*Pass"):
        dm.setup("fit")
    # With download=True, setup without prepare_data says to call it (not to pass download).
    with pytest.raises(
        FileNotFoundError, match=r"Call prepare_data\(\) first \(Trainer.fit does\)"
    ):
        FashionMNIST(str(tmp_path), download=True).setup("fit")


def test_batch_transform_pads_28_to_32_and_normalises(mnist_raw: Path) -> None:
    dm = MNIST(str(mnist_raw.parents[1]), download=False, protocol="10k", image_size=32)
    dm.setup("fit")
    images, labels = next(iter(dm.test_dataloader()))
    x, y = dm.on_after_batch_transfer((images, labels), 0)
    assert x.shape == (128, 1, 32, 32) and x.dtype == torch.float32 and y is labels
    expected = (images.float() / 255 - 0.1307) / 0.3081
    torch.testing.assert_close(x[..., 2:30, 2:30], expected)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    torch.testing.assert_close(x[..., border], torch.full_like(x[..., border], -0.1307 / 0.3081))
    # A float batch from a user's own pipeline passes through unchanged.
    assert dm.on_after_batch_transfer((expected, labels), 0)[0] is expected


def test_pad_cannot_shrink_and_resize_can(mnist_raw: Path) -> None:
    root = str(mnist_raw.parents[1])
    with pytest.raises(ValueError, match="resize='pad' cannot shrink 28x28 images to 16x16"):
        MNIST(root, download=False, protocol="10k", image_size=16, resize="pad").setup("fit")
    shrunk = MNIST(root, download=False, protocol="10k", image_size=16)  # resize=None: auto
    shrunk.setup("fit")
    assert shrunk.resize_mode == "resize"
    dm = MNIST(root, download=False, protocol="10k", image_size=(16, 20), resize="resize")
    dm.setup("fit")
    x, _ = dm.on_after_batch_transfer(next(iter(dm.test_dataloader())), 0)
    assert x.shape == (128, 1, 16, 20)


@pytest.mark.parametrize(
    "size,mode", [(28, "pad"), (32, "pad"), (36, "pad"), (37, "resize"), (96, "resize")]
)
def test_resize_none_pads_by_up_to_four_pixels_a_side(
    mnist_raw: Path, size: int, mode: str
) -> None:
    dm = MNIST(str(mnist_raw.parents[1]), download=False, protocol="10k", image_size=size)
    dm.setup("fit")
    assert dm.resize_mode == mode
    x, _ = dm.on_after_batch_transfer(next(iter(dm.test_dataloader())), 0)
    assert x.shape[-2:] == (size, size)
    if mode == "pad":  # the digit itself is untouched: LeCun's padding of 28 to 32
        border = (size - 28) // 2
        raw = dm._splits["test"][0][:128].float() / 255
        inner = x[:, :, border : border + 28, border : border + 28] * dm.std[0] + dm.mean[0]
        torch.testing.assert_close(inner, raw, atol=1e-5, rtol=0)


def test_image_size_follows_the_model_being_trained() -> None:
    dm = Digits(batch_size=256)
    trainer = L.Trainer(
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(LeNet5(), datamodule=dm)
    assert dm.dims == (1, 32, 32)


def test_digits_are_real_and_split_by_seed() -> None:
    dm = Digits(image_size=8)
    dm.setup("fit")
    sizes = {k: len(v[1]) for k, v in dm._splits.items()}
    assert sizes == {"train": 1294, "val": 144, "test": 359}
    images = torch.cat([dm._splits[k][0] for k in sizes])
    assert images.dtype == torch.uint8 and images.max() == 255 and images.shape[1:] == (1, 8, 8)
    labels = torch.cat([dm._splits[k][1] for k in sizes])
    assert torch.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    # scikit-learn's images, each in one split; the seed, and only it, decides which.
    from sklearn.datasets import load_digits

    raw = torch.from_numpy(load_digits().images)  # 0-16 grey levels

    def test_indices(seed: int) -> list[int]:
        other = Digits(image_size=8, seed=seed)
        other.setup("fit")
        rows = {tuple(v.tolist()): i for i, v in enumerate(raw.flatten(1))}
        scale = other._splits["test"][0].flatten(1).double() * 16 / 255  # back to 0-16
        return sorted(rows[tuple(v.round().tolist())] for v in scale)

    first = test_indices(0)
    assert first == test_indices(0) != test_indices(1) and first != list(range(359))
    # Its normalisation is the statistics of these images, computed apart (numpy, float64).
    import numpy as np

    stored = np.round(load_digits().images * 255 / 16) / 255
    assert (dm.mean, dm.std) == ((round(stored.mean(), 4),), (round(stored.std(), 4),))


def test_in_memory_batches_cover_every_image_once() -> None:
    ds = TensorBatches(torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1), torch.arange(10))
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True, collate_fn=lambda b: b)
    seen = torch.cat([y for _, y in loader])
    assert sorted(seen.tolist()) == list(range(10))
    with pytest.raises(ValueError, match="same length; got 10 images and 3 labels"):
        TensorBatches(torch.zeros(10, 1, 1, 1), torch.arange(3))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"batch_size": 0}, "batch_size must be a positive int or None; got 0"),
        ({"resize": "crop"}, "resize must be 'pad', 'resize' or None; got 'crop'"),
        ({"val_size": -0.5}, r"val_size must be a fraction in \[0, 1\) or a whole count; got -0.5"),
        ({"val_size": float("nan")}, r"val_size must be a fraction .*; got nan"),
        ({"val_size": True}, r"val_size must be a fraction .*; got True"),
        ({"val_size": "0.1"}, r"val_size must be a fraction .*; got '0.1'"),
        ({"val_size": 1.5}, r"val_size must be a fraction in \[0, 1\) or a whole count; got 1\.5"),
        (
            {"val_size": 1.0},
            r"val_size=1\.0 is ambiguous: .* pass the int 1",
        ),
        ({"data_on_device": "yes"}, r"data_on_device must be True, False or None; got 'yes'"),
        ({"test_size": 1.5}, r"test_size must be a fraction in \(0, 1\); got 1.5"),
        ({"test_size": "0.2"}, r"test_size must be a fraction in \(0, 1\); got '0.2'"),
        ({"test_size": None}, r"test_size must be a fraction in \(0, 1\); got None"),
        ({"num_workers": "2"}, r"num_workers must be an int >= 0 \(0: .*\); got '2'"),
        ({"num_workers": -1}, r"num_workers must be an int >= 0 .*; got -1"),
        ({"num_workers": True}, r"num_workers must be an int >= 0 .*; got True"),
        ({"num_workers": 1.0}, r"num_workers must be an int >= 0 .*; got 1\.0"),
        ({"mixup_alpha": -0.2}, r"mixup_alpha must be a finite number >= 0 \(0: off\); got -0.2"),
        ({"cutmix_alpha": float("inf")}, r"cutmix_alpha must be a finite number >= 0 .*; got inf"),
        # torch.Generator.manual_seed takes [-2**63, 2**64); a negative seed aliases 2**64 + s
        ({"seed": -1}, r"seed must be an int \(the .*\); got -1, expected one in \[0, 2\*\*64\)"),
        ({"seed": 2**64}, rf"seed must be an int .*; got {2**64}, expected one in \[0, 2\*\*64\)"),
        ({"seed": True}, r"seed must be an int .*; got True, expected one in \[0, 2\*\*64\)"),
    ],
)
def test_invalid_datamodule_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Digits(**kwargs)


def test_numpy_and_tensor_numbers_are_taken_as_python_numbers() -> None:
    # As the models take them: np.int64(8) was refused as a batch size ("must be a positive int
    # or None; got np.int64(8)"), and a 0-d tensor val_size passed the check, then failed in
    # setup ("type Tensor doesn't define __round__").
    dm = Digits(batch_size=np.int64(8), val_size=torch.tensor(0.25), seed=np.uint64(3),
                num_workers=np.int32(0), mixup_alpha=np.float32(0.5))  # fmt: skip
    assert [type(v) for v in (dm.batch_size, dm.val_size, dm.seed, dm.num_workers)] == [
        int,
        float,
        int,
        int,
    ]
    dm.setup("fit")
    plain = Digits(batch_size=8, val_size=0.25, seed=3, mixup_alpha=0.5)
    plain.setup("fit")
    assert torch.equal(dm._splits["val"][1], plain._splits["val"][1])
    assert len(dm._splits["val"][1]) == round(0.25 * 1438) and dm.mixup_alpha == 0.5


def test_the_largest_seed_splits() -> None:
    dm = Digits(seed=2**64 - 1)  # the largest seed torch's generators take
    dm.setup("fit")
    assert sum(x.shape[0] for x, _ in dm._splits.values()) == 1797


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"download": "false"}, ValueError, r"download must be True or False; got 'false'"),
        ({"download": None}, ValueError, r"download must be True or False; got None"),
        ({"download": 1}, ValueError, r"download must be True or False; got 1"),
        ({"data_dir": 3}, TypeError, r"data_dir must be a folder's path .*; got 3"),
    ],
)
def test_mnist_refuses_a_download_flag_or_data_dir_of_another_type(
    tmp_path: Path, kwargs: dict, error: type, message: str
) -> None:
    # A truthy string ("false") used to download; None failed in Path() without a name.
    kwargs = {"data_dir": str(tmp_path), **kwargs}
    for cls in (MNIST, FashionMNIST):
        with pytest.raises(error, match=message):
            cls(**kwargs)
    assert not any(tmp_path.iterdir())


def test_the_default_data_folder_is_classic_cnns_data_else_data(
    mnist_raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where `classic-cnns data fetch` puts a dataset is where the datamodules look for it.
    monkeypatch.chdir(tmp_path)  # no ./data here
    monkeypatch.setenv("CLASSIC_CNNS_DATA", str(mnist_raw.parent.parent))
    dm = MNIST(download=False, protocol="10k", val_size=0)
    assert dm.data_dir == mnist_raw.parent.parent and dm.raw_dir == mnist_raw
    dm.setup("fit")
    assert len(dm.train_dataloader().dataset) == 8000
    for cls in (FashionMNIST, CIFAR10, CIFAR100):
        assert cls().data_dir == mnist_raw.parent.parent, cls
    assert MNIST(data_dir="given").data_dir == Path("given")  # a folder given wins
    for unset in ("", None):  # an empty variable counts as unset
        if unset is None:
            monkeypatch.delenv("CLASSIC_CNNS_DATA")
        else:
            monkeypatch.setenv("CLASSIC_CNNS_DATA", unset)
        for cls in (MNIST, FashionMNIST, CIFAR10, CIFAR100):
            assert cls().data_dir == Path("data"), (cls, unset)
    assert not any(tmp_path.iterdir())


def test_a_split_that_leaves_no_training_data_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"val_size=5000 leaves no training images \(1438 in the training set\)"
    ):
        Digits(val_size=5000).setup("fit")


def test_val_size_1_holds_out_one_image_and_0_gives_no_validation() -> None:
    # Digits' training set holds 1438 images (see above); val_size=1 is a count of one.
    one, none = Digits(val_size=1), Digits(val_size=0)
    for dm in (one, none):
        dm.setup("fit")
    assert {name: x.shape[0] for name, (x, _) in one._splits.items() if name != "test"} == {
        "train": 1437,
        "val": 1,
    }
    loader = one.val_dataloader()
    assert isinstance(loader, torch.utils.data.DataLoader)
    assert sum(y.shape[0] for _, y in loader) == 1
    assert none._splits["train"][0].shape[0] == 1438
    assert none.val_dataloader() == []  # no validation, as val_dataloader documents


@pytest.mark.parametrize(
    "test_size,message",
    [
        (
            0.0002,
            r"Digits: test_size=0\.0002 of 1797 images rounds to no test image; expected a larger",
        ),
        (
            0.9999,
            r"test_size=0\.9999 of 1797 images rounds to no training image; expected a smaller",
        ),
    ],
)
def test_a_test_share_that_rounds_to_no_image_says_so(test_size: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Digits(test_size=test_size).setup("fit")


def test_the_tests_cannot_reach_the_network() -> None:
    # conftest's guard refuses any host beyond loopback, so no test downloads by accident.
    # Checked on the sockets themselves, with nothing downloaded; the address is TEST-NET-1
    # (RFC 5737), which is never routed even if the guard broke.
    with socket.socket() as sock, pytest.raises(OSError, match="the tests run offline"):
        sock.connect(("192.0.2.1", 80))
    with pytest.raises(OSError, match="the tests run offline"):
        socket.getaddrinfo("yann.lecun.com", 80)


def test_a_file_no_mirror_serves_is_named_and_nothing_is_left_behind(
    tmp_path: Path, http_mirror: tuple[Path, str]
) -> None:
    _, url = http_mirror  # an empty folder on loopback: every file answers 404
    dm = MNIST(str(tmp_path / "data"), download=True, protocol="10k")
    dm.mirrors = [url]
    with pytest.raises(RuntimeError, match=r"(?s)could not download \S+ into .*404"):
        dm.prepare_data()
    # Not even the folders made for it (data/MNIST/raw): beside the mirror's, nothing.
    assert [p.name for p in tmp_path.iterdir()] == ["mirror"]
    (tmp_path / "data").mkdir()  # a folder of the user's, empty: kept
    with pytest.raises(RuntimeError, match=r"(?s)could not download"):
        dm.prepare_data()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "mirror"]
    assert not any(dm.data_dir.iterdir())


@pytest.mark.parametrize(
    ("precision", "dtype"), [("bf16-true", torch.bfloat16), ("64-true", torch.float64)]
)
def test_true_precisions_get_batches_in_their_dtype(precision: str, dtype: torch.dtype) -> None:
    # Lightning casts a batch before on_after_batch_transfer, when ours is still uint8.
    seen = []

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
            seen.append(batch[0].dtype)

    model = LeNet5()
    trainer = L.Trainer(precision=precision, max_epochs=1, limit_train_batches=2,  # type: ignore[arg-type]
                        limit_val_batches=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, callbacks=[Record()])  # fmt: skip
    # (The model summary, on as in `fit`, runs an example input of the model's own.)
    trainer.fit(model, datamodule=Digits())
    assert seen == [dtype, dtype] and next(model.parameters()).dtype == dtype
    assert torch.isfinite(trainer.callback_metrics["val_loss"])


def _training_batch(
    dm: Digits, batch: tuple[torch.Tensor, torch.Tensor] | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    # A batch (by default the loader's first) converted without the mix, then as the
    # training loop gets it.
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(LeNet5(num_classes=10))
    dm.trainer = trainer
    dm.setup("fit")
    batch = batch or next(iter(dm.train_dataloader()))
    x, y = dm.on_after_batch_transfer(batch, 0)  # not training: converted only
    trainer.training = True
    mixed, q = dm.on_after_batch_transfer(batch, 0)
    return x, y, mixed, q


def test_mixup_blends_training_batches_and_their_labels() -> None:
    # MixUp pairs image i with image i-1: x' = lam x + (1 - lam) x.roll(1), and the label
    # lam onehot(y) + (1 - lam) onehot(y.roll(1)); lam read back from a pair of two classes.
    torch.manual_seed(0)
    x, y, mixed, q = _training_batch(Digits(image_size=32, mixup_alpha=0.4))
    i = int(torch.nonzero(y != y.roll(1))[0])
    lam = float(q[i, y[i]])
    onehot = torch.nn.functional.one_hot(y, 10).float()
    assert 0 < lam < 1 and q.shape == (y.shape[0], 10)
    assert torch.allclose(q, lam * onehot + (1 - lam) * onehot.roll(1, 0), atol=1e-6)
    assert torch.allclose(mixed, lam * x + (1 - lam) * x.roll(1, 0), atol=1e-5)


def test_cutmix_pastes_a_box_and_weights_the_labels_by_its_area() -> None:
    # Random 8x8 images, so that no pixel of the box equals its neighbour image's.
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8, generator=g)
    batch = (images, torch.randint(0, 10, (64,), generator=g))
    torch.manual_seed(0)
    x, y, mixed, q = _training_batch(Digits(image_size=32, cutmix_alpha=1.0), batch)
    changed = (mixed != x).any(dim=0).any(dim=0)  # (H, W): the box
    rows, cols = torch.nonzero(changed, as_tuple=True)
    box = torch.zeros_like(changed)
    box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
    assert torch.equal(changed, box)  # one rectangle, the same for every image
    assert torch.equal(mixed[:, :, box], x.roll(1, 0)[:, :, box])
    assert torch.equal(mixed[:, :, ~box], x[:, :, ~box])
    lam = 1 - float(box.sum()) / box.numel()  # the share of the image's own pixels
    onehot = torch.nn.functional.one_hot(y, 10).float()
    assert torch.allclose(q, lam * onehot + (1 - lam) * onehot.roll(1, 0), atol=1e-6)


def _mix_lambdas(n: int, image_size: int, **alphas: float) -> np.ndarray:
    # n training batches of two images of classes 0 and 1, mixed as a loop of one's own asks
    # (training=True): image 0 keeps the share lam of its own class, q[0, 0].
    dm = Digits(image_size=image_size, **alphas)
    dm.setup("fit")
    g = torch.Generator().manual_seed(0)
    batch = (torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8, generator=g), torch.arange(2))
    torch.manual_seed(0)
    lams = [float(dm.on_after_batch_transfer(batch, 0, training=True)[1][0, 0]) for _ in range(n)]
    return np.array(lams)


@pytest.mark.parametrize("alpha", [0.2, 5.0])
def test_mixup_draws_lam_from_beta_of_the_datamodules_alpha(alpha: float) -> None:
    # lam ~ Beta(alpha, alpha): with 0.2 mostly near 0 or 1, with 5 near 1/2. The sample mean
    # of |lam - 1/2| over n draws is within 5 standard errors of Beta's own (scipy's integral);
    # with alpha 1 instead (uniform lam, mean 1/4) it would be off by 6 (0.2) and 9 (5).
    n = 400
    lams = _mix_lambdas(n, 32, mixup_alpha=alpha)
    beta = scipy.stats.beta(alpha, alpha)
    mean = beta.expect(lambda lam: abs(lam - 0.5))
    sd = math.sqrt(beta.var() - mean**2)  # E|lam - 1/2|^2 is the variance: the mean is 1/2
    assert abs(np.abs(lams - 0.5).mean() - mean) < 5 * sd / math.sqrt(n), (alpha, mean)


@pytest.mark.parametrize("alpha", [0.2, 5.0])
def test_cutmix_box_areas_follow_beta_of_the_datamodules_alpha(alpha: float) -> None:
    # CutMix (Yun et al. 2019): lam ~ Beta(alpha, alpha), a box of sides sqrt(1 - lam) of the
    # image's around a uniform centre, clipped at the edges; the labels take 1 - its area. The
    # clipping makes the area's law no Beta, so it is drawn here from that recipe (numpy, 10^5
    # boxes) and compared whole (two-sample Kolmogorov-Smirnov) with the areas of n mixed
    # batches. Pixels: at 224 whole-pixel sides shift an area by about 1%, and a box under 2
    # pixels a side is empty (8% of them with alpha 0.2), so areas under 1% count as 1%. At
    # p = 1e-4 the test allows a distance of 0.11; alpha 1 instead lies 0.2 away (p < 1e-12).
    n = 400
    areas = 1 - _mix_lambdas(n, 224, cutmix_alpha=alpha)
    rng = np.random.default_rng(0)
    side = np.sqrt(1 - rng.beta(alpha, alpha, 100_000))
    centres = rng.random((2, side.size))
    widths = np.minimum(centres + side / 2, 1) - np.maximum(centres - side / 2, 0)
    model = widths.prod(axis=0)
    p = scipy.stats.ks_2samp(np.maximum(areas, 0.01), np.maximum(model, 0.01)).pvalue
    assert p > 1e-4, (alpha, p)


def test_alphas_changed_after_a_training_batch_take_effect() -> None:
    # The mix is rebuilt when the alphas change (between two fits, say), and a bad value
    # set later is refused as it is at construction, not by torch's Dirichlet.
    g = torch.Generator().manual_seed(0)  # random pixels: no two images share one
    images = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8, generator=g)
    batch = (images, torch.randint(0, 10, (64,), generator=g))
    dm = Digits(image_size=32, mixup_alpha=0.4)
    _, y, _, q = _training_batch(dm, batch)
    assert q.shape == (y.shape[0], 10)
    dm.mixup_alpha = 0.0
    x, labels = dm.on_after_batch_transfer(batch, 0)
    assert torch.equal(labels, batch[1])  # off: the classes, as they were
    assert torch.equal(x, dm.transform(batch[0]))
    dm.cutmix_alpha = 1.0
    torch.manual_seed(0)
    mixed, q = dm.on_after_batch_transfer(batch, 0)
    changed = (mixed != x).any(dim=0).any(dim=0)  # CutMix: a box; MixUp: every pixel
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert changed.sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert 0 < changed.sum() < changed.numel()
    dm.cutmix_alpha = -1.0
    with pytest.raises(ValueError, match=r"cutmix_alpha must be a finite number >= 0 .*; got -1.0"):
        dm.on_after_batch_transfer(batch, 0)


def test_mixing_leaves_evaluation_batches_alone() -> None:
    dm = Digits(image_size=32, mixup_alpha=1.0, cutmix_alpha=1.0)
    _, y, _, q = _training_batch(dm)
    assert q.shape == (y.shape[0], 10) and torch.allclose(q.sum(dim=1), torch.ones(y.shape[0]))
    dm.trainer.validating = True
    batch = next(iter(dm.val_dataloader()))
    _, labels = dm.on_after_batch_transfer(batch, 0)
    assert torch.equal(labels, batch[1])  # the classes, as they were


def test_a_loop_of_one_s_own_mixes_the_batches_it_says_are_training_batches() -> None:
    # Without a Trainer, nothing tells the hook that a batch is a training batch: it mixes
    # only those passed with training=True, and refuses a training flag of another type.
    dm = Digits(image_size=32, batch_size=64, mixup_alpha=1.0)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    x, y = dm.on_after_batch_transfer(batch, 0)  # not said: converted only
    assert torch.equal(y, batch[1]) and torch.equal(x, dm.transform(batch[0]))
    assert torch.equal(dm.on_after_batch_transfer(batch, 0, training=False)[1], batch[1])
    torch.manual_seed(0)
    mixed, q = dm.on_after_batch_transfer(batch, 0, training=True)
    assert q.shape == (64, 10) and not torch.equal(mixed, x)
    with pytest.raises(ValueError, match=r"training must be True, False or None; got 'yes'"):
        dm.on_after_batch_transfer(batch, 0, training="yes")


def test_an_epoch_never_ends_on_a_lone_training_image() -> None:
    # Batch norm cannot train on one image: a last training batch of one is left out (a
    # different image each epoch); other short batches and evaluation batches are kept.
    from classic_cnns import create_model

    dm = Digits()
    dm.setup("fit")
    n = dm._splits["train"][0].shape[0]
    batch = next(b for b in range(100, n) if n % b == 1)
    dm = Digits(batch_size=batch)
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(create_model("lenet5_bn"), dm)  # before: batch norm's ValueError on the last
    assert trainer.global_step == 2 * (n // batch)
    loader = dm.train_dataloader()
    epochs = []
    for epoch in (0, 1):
        loader.sampler.set_epoch(epoch)
        epochs.append(torch.cat([labels for _, labels in loader]))
    assert [len(e) for e in epochs] == [n - 1, n - 1]
    left_out = [set(range(n)) - set(loader.sampler.order(e)[: n - 1].tolist()) for e in (0, 1)]
    assert left_out[0] != left_out[1]
    assert n % (batch + 1) > 1
    short = Digits(batch_size=batch + 1)  # a last batch of n % (batch + 1) > 1 images stays
    short.setup("fit")
    assert sum(len(y) for _, y in short.train_dataloader()) == n
    assert sum(len(y) for _, y in dm.val_dataloader()) == dm._splits["val"][0].shape[0]
