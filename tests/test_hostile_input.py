"""Hostile files and folders: gzip bombs, lying IDX headers, pixel bombs, escaping archives,
and a user's folder that looks like a download's. Each is built here and refused with an
error naming the file, without reading more than its header allows.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import struct
import tarfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from classic_cnns import CIFAR10, MNIST, FashionMNIST, LeNet5
from classic_cnns.data import mnist as mnist_module
from classic_cnns.data.folder import ImageFolder, load_image
from classic_cnns.data.mnist import read_idx
from classic_cnns.files import download_folder
from classic_cnns.predict import predict_folder
from conftest import T10K_LABELS

pytestmark = pytest.mark.usefixtures("one_thread")


def _idx(*shape: int, payload: bytes = b"") -> bytes:
    return bytes([0, 0, 8, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload


class _Counted:
    # A file whose read() counts the (decompressed) bytes it returns.
    def __init__(self, f: Any) -> None:
        self.f, self.count = f, 0

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        self.count += len(data)
        return data  # type: ignore[no-any-return]

    def __enter__(self) -> _Counted:
        return self

    def __exit__(self, *exc: object) -> None:
        self.f.close()


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[_Counted]:
    # Every file read_idx opens, gzip or not, counted.
    opened: list[_Counted] = []

    def counting(real: Callable[..., Any]) -> Callable[..., _Counted]:
        def open_counted(path: Any, mode: str = "rb") -> _Counted:
            opened.append(_Counted(real(path, mode)))
            return opened[-1]

        return open_counted

    monkeypatch.setattr(gzip, "open", counting(gzip.open))
    monkeypatch.setattr(mnist_module, "open", counting(open), raising=False)
    return opened


def _bomb(path: Path, tail: int = 8 << 20) -> Path:
    # Labels for 3 images, then megabytes of zeros: small on disk, huge decompressed.
    with gzip.open(path, "wb") as f:
        f.write(_idx(3, payload=b"\1\2\3"))
        f.write(bytes(tail))
    return path


@pytest.mark.parametrize("compressed", [True, False])
def test_a_file_longer_than_its_header_says_is_refused_after_one_byte_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compressed: bool
) -> None:
    path = _bomb(tmp_path / "bomb-idx1-ubyte.gz")
    if not compressed:
        path = path.rename(tmp_path / "bomb-idx1-ubyte")
        path.write_bytes(gzip.decompress(path.read_bytes()))
    opened = _count_reads(monkeypatch)
    with pytest.raises(
        ValueError, match=rf"^{re.escape(str(path))}: expected 11 bytes for shape \(3,\), got more"
    ):
        read_idx(path)
    assert [f.count for f in opened] == [11 + 1]  # the header, 3 labels, one byte past them
    # A file of the length its header says still reads.
    good = _idx(3, payload=b"\1\2\3")
    path.write_bytes(gzip.compress(good) if compressed else good)
    assert read_idx(path).tolist() == [1, 2, 3]


def test_a_gzip_bomb_from_a_mirror_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http_mirror: tuple[Path, str]
) -> None:
    # Fashion-MNIST's mirror is plain HTTP: a body not the published archive is checked by
    # its content, read no further than its header allows.
    mirror, url = http_mirror
    _bomb(mirror / T10K_LABELS)
    dm = FashionMNIST(str(tmp_path / "data"), protocol="10k")
    dm.mirrors = [url]
    dm.raw_dir.mkdir(parents=True)
    opened = _count_reads(monkeypatch)
    with pytest.raises(
        RuntimeError,
        match=rf"(?s){url}{T10K_LABELS}: md5 .*expected 11 bytes for shape \(3,\), got more",
    ):
        dm._download(T10K_LABELS, dict(dm.resources)[T10K_LABELS])
    assert [f.count for f in opened] == [12]
    assert not (dm.raw_dir / T10K_LABELS).exists()


@pytest.mark.parametrize(
    "shape,why",
    [
        ((0, 5), "has a zero dimension, so the file holds no data"),
        ((7, 0, 28), "has a zero dimension, so the file holds no data"),
        # int64 products that wrapped to 0 and to a negative byte count
        ((65536,) * 4, "needs 18446744073709551616 bytes, more than a tensor can hold"),
        ((2**32 - 1,) * 2, "needs 18446744065119617025 bytes, more than a tensor can hold"),
        ((2**32 - 1,) * 3, f"needs {(2**32 - 1) ** 3} bytes, more than a tensor can hold"),
    ],
)
@pytest.mark.parametrize("compressed", [True, False])
def test_an_idx_header_of_no_data_or_absurd_size_is_refused_by_name(
    tmp_path: Path, shape: tuple[int, ...], why: str, compressed: bool
) -> None:
    path = tmp_path / ("bad-idx-ubyte" + ".gz" * compressed)
    data = _idx(*shape, payload=b"\0" * 10)
    path.write_bytes(gzip.compress(data) if compressed else data)
    message = f"{path}: the header's shape {shape} {why}"
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        read_idx(path)


def test_an_mnist_file_of_no_images_is_named_by_the_datamodule(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = raw / "t10k-images-idx3-ubyte"
    images.write_bytes(_idx(0, 28, 28))
    (raw / T10K_LABELS.removesuffix(".gz")).write_bytes(_idx(0))
    dm = MNIST(str(tmp_path), download=False, protocol="10k")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(images))}: .* a zero dimension"):
        dm.setup("fit")


def _flat_png(path: Path, width: int, height: int) -> Path:
    # A real grey PNG of one colour: a few hundred kilobytes however many pixels it holds.
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    packer, row = zlib.compressobj(9), bytes(width + 1)  # filter byte 0, then black pixels
    idat = b"".join([*(packer.compress(row) for _ in range(height)), packer.flush()])
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


def test_an_image_over_pil_s_pixel_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    # Just over PIL's default limit (89,478,485 pixels): the decoders would allocate them all.
    limit = Image.MAX_IMAGE_PIXELS
    assert limit is not None
    width, height = 10_000, limit // 10_000 + 1
    big = _flat_png(tmp_path / "photos" / "big.png", width, height)
    assert big.stat().st_size < 1 << 20
    Image.new("L", (32, 32), 200).save(tmp_path / "photos" / "small.png")
    pixels = f"{width}x{height} = {width * height:,} pixels"
    message = (
        rf"^{re.escape(str(big))}: cannot decode the image \({re.escape(pixels)}, more than "
        rf"PIL\.Image\.MAX_IMAGE_PIXELS = {limit:,} allows .*raise PIL\.Image\.MAX_IMAGE_PIXELS"
    )
    with pytest.raises(ValueError, match=message):
        load_image(big, 1, 32)
    # predict-folder skips it as any unreadable file (--on-error skip), or names it (raise).
    model, norm = LeNet5(), {"mean": (0.5,), "std": (0.25,)}
    with pytest.warns(UserWarning, match=r"1 of the 2 image files cannot be read: big\.png \("):
        rows = predict_folder(model, tmp_path / "photos", **norm)
    assert [r["file"] for r in rows] == ["small.png"]
    with pytest.raises(ValueError, match=re.escape(pixels)):
        predict_folder(model, tmp_path / "photos", on_error="raise", **norm)
    # ImageFolder names it.
    for name in ("a", "b"):
        (tmp_path / "classes" / name).mkdir(parents=True)
        Image.new("L", (32, 32), 100).save(tmp_path / "classes" / name / "0.png")
    shutil.move(big, tmp_path / "classes" / "a" / "big.png")
    with pytest.raises(
        ValueError, match=rf"big\.png: cannot decode the image \({re.escape(pixels)}"
    ):
        ImageFolder(tmp_path / "classes", channels=1, image_size=32, test_size=1).setup("test")


def test_the_pixel_limit_is_pil_s_as_the_user_set_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.png"
    Image.new("L", (10, 10), 7).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 99)  # over the limit (PIL only warns)
    with pytest.raises(ValueError, match=r"\(10x10 = 100 pixels, more than .* = 99 allows"):
        load_image(path, 1, None)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40)  # over twice it (PIL refuses to open)
    with pytest.raises(ValueError, match=r"\(100 pixels, more than .* = 40 allows"):
        load_image(path, 1, None)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    assert load_image(path, 1, None).shape == (1, 10, 10)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # no limit
    assert load_image(path, 1, None).shape == (1, 10, 10)


def _archive(path: Path, hostile: Callable[[tarfile.TarFile], None] | None) -> Path:
    # A CIFAR-10 archive (gzipped tar) of a folder, a file, and a hostile member.
    with tarfile.open(path, "w:gz") as tar:
        folder = tarfile.TarInfo("cifar-10-batches-py")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        readme = tarfile.TarInfo("cifar-10-batches-py/readme.html")
        readme.size = 2
        tar.addfile(readme, io.BytesIO(b"ok"))
        if hostile is not None:
            hostile(tar)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, **attrs: Any) -> Callable[..., None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        for key, value in attrs.items():
            setattr(info, key, value)
        info.size = 3 if kind == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(b"pwn") if kind == tarfile.REGTYPE else None)

    return add


def _hostile(tmp: Path) -> dict[str, tuple[Callable[..., None], str]]:
    # Each hostile member, and the error's reason without the filter.
    victim = tmp / "victim"
    return {
        "dotdot": (_member("cifar-10-batches-py/../../../../escaped"), "a path with '..'"),
        "absolute": (_member(str(tmp / "escaped")), "an absolute path"),
        "symlink": (
            _member("cifar-10-batches-py/link", tarfile.SYMTYPE, linkname=str(victim)),
            "it is a symbolic link",
        ),
        "hardlink": (
            _member("cifar-10-batches-py/hard", tarfile.LNKTYPE, linkname=str(victim / "f")),
            "it is a hard link",
        ),
        "device": (
            _member("cifar-10-batches-py/dev", tarfile.CHRTYPE, devmajor=1, devminor=3),
            "it is a character device",
        ),
    }


_KINDS = ["dotdot", "absolute", "symlink", "hardlink", "device"]


# With the filter, an absolute path is unpacked inside, its leading "/" stripped: not tested.
@pytest.mark.parametrize(
    "kind,has_filter",
    [(k, False) for k in _KINDS] + [(k, True) for k in _KINDS if k != "absolute"],
)
def test_a_hostile_cifar_archive_is_refused_with_or_without_tarfile_s_filter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, has_filter: bool
) -> None:
    # The md5 pinned to the hostile archive's: what a forged or colliding archive would pass.
    if not has_filter:  # Python 3.10.0-3.10.11 and 3.11.0-3.11.3
        monkeypatch.delattr(tarfile, "data_filter")
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "f").write_text("mine")
    hostile, why = _hostile(tmp_path)[kind]
    archive = _archive(tmp_path / CIFAR10.archive, hostile)
    monkeypatch.setattr(CIFAR10, "url", archive.as_uri())
    monkeypatch.setattr(CIFAR10, "archive_md5", hashlib.md5(archive.read_bytes()).hexdigest())
    root = tmp_path / "a" / "b" / "data"
    with tarfile.open(archive) as tar:
        name = tar.getnames()[-1]
    message = (
        rf"^{re.escape(CIFAR10.archive)} from .*: refusing to unpack {re.escape(repr(name))}: "
    )
    with pytest.raises(RuntimeError, match=message + ("" if has_filter else re.escape(why))):
        CIFAR10(str(root)).prepare_data()
    # Nothing moved into place, no scratch folder left, nor the folders made for them.
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted([CIFAR10.archive, "victim", "f"])
    assert (tmp_path / "victim" / "f").read_text() == "mine"


def test_a_good_archive_is_unpacked_without_tarfile_s_filter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(tarfile, "data_filter")
    archive = _archive(tmp_path / CIFAR10.archive, None)
    monkeypatch.setattr(CIFAR10, "url", archive.as_uri())
    monkeypatch.setattr(CIFAR10, "archive_md5", hashlib.md5(archive.read_bytes()).hexdigest())
    CIFAR10(str(tmp_path / "data")).prepare_data()
    assert (tmp_path / "data" / "cifar-10-batches-py" / "readme.html").read_text() == "ok"
    assert os.listdir(tmp_path / "data") == ["cifar-10-batches-py"]


def test_only_this_package_s_stale_scratch_folders_are_removed(tmp_path: Path) -> None:
    def folder(name: str, *files: str, days: float = 2) -> Path:
        path = tmp_path / name
        path.mkdir()
        for file in files:
            (path / file).write_text("x")
        then = time.time() - days * 24 * 3600
        os.utime(path, (then, then))
        return path

    kept = [
        folder(".download-manager", "notes.txt"),  # the user's: never ours
        folder(".download-abcd1234", "notes.txt"),  # the old prefix: it may be the user's too
        folder(".classic-cnns-download-running", T10K_LABELS, days=0),  # a running download's
        folder(".classic-cnns-download-23h30", T10K_LABELS, days=23.5 / 24),  # under a day
    ]
    removed = [
        folder(".classic-cnns-download-k2j4h5g6", T10K_LABELS),
        folder(".classic-cnns-download-z9y8x7w6"),  # killed before it downloaded
        folder(".classic-cnns-download-24h30", T10K_LABELS, days=24.5 / 24),  # over a day
    ]
    with download_folder(tmp_path) as scratch:
        assert scratch.name.startswith(".classic-cnns-download-")
        assert all(path.is_dir() for path in kept)
        assert not any(path.exists() for path in removed)
    assert not scratch.exists()
    assert (tmp_path / ".download-manager" / "notes.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in kept)
