"""MNIST and Fashion-MNIST: IDX files read straight into uint8 tensors.

The download goes through torchvision's mirrors and md5 sums (torchvision's
``MNIST.mirrors`` / ``resources``), into the same ``<data_dir>/<Name>/raw/`` layout
torchvision uses, so a folder torchvision filled works here. The other way round,
torchvision reads the uncompressed files, which it extracts itself when downloading: this
module keeps only the ``.gz`` archives, so extract them (``gunzip -k``) for torchvision.
Files are verified in a scratch folder and only then moved into place: a failed or
corrupted download never replaces a good file.

Files already in the folder are verified before use: the published ``.gz`` archive by its
md5; any other copy (recompressed by a mirror, a Linux distribution or a user, or stored
uncompressed) by its content: a valid IDX file, whose decompressed bytes have the published
content's md5 where it is known (``content_md5``), and labels in range.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import zlib
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import torch
import torchvision.datasets as tvd
from torch import Tensor

from classic_cnns._checks import as_folder, check_flag
from classic_cnns._download import file_in_the_way
from classic_cnns._warn import warn
from classic_cnns.data.base import InMemoryDataModule, _how_to_get
from classic_cnns.files import (
    DOWNLOAD_TIMEOUT,
    default_data_dir,
    download,
    download_folder,
    file_digest,
)

__all__ = ["MNIST", "FashionMNIST", "read_idx"]

# IDX type codes (http://yann.lecun.com/exdb/mnist/): only unsigned bytes occur here.
_UBYTE = 0x08
_CHUNK = 1 << 24  # bytes read at a time: no buffer of what a lying header announces up front
_MAX_PAYLOAD = 2**63 - 1  # the most elements a tensor holds (int64 sizes)


class _Misnamed(ValueError):
    """A file that holds another file's published content (train and test swapped, say)."""


class _Remedy(NamedTuple):
    # What an error says to do about a file that fails, appended once where it is raised:
    # to a damaged file, and to one that holds another file's content (_Misnamed).
    damaged: str
    misnamed: str


_OWN = _Remedy(": delete it and download again", ": rename it")  # the user's only copy
_BESIDE_GOOD = _Remedy(": delete it", ": rename it")  # a copy with another one beside it
_SERVED = _Remedy("", ", which the mirror serves as this")  # a download: not the user's file


def _read_bytes(path: Path) -> bytearray:
    # The file's bytes, decompressed if gzipped, read as far as its header says: the
    # header first, then at most one byte more than the shape it announces, so that a longer
    # file (a gzip bomb, from a plain-HTTP mirror) is refused without being decompressed whole.
    try:  # gzip's magic, not the suffix, decides: a browser may keep .gz on an unpacked file
        with path.open("rb") as f:
            opener = gzip.open if f.read(2) == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            data = bytearray(f.read(4))
            data += f.read(4 * _check_magic(data, path))
            shape, header = _header(data, path)
            size = header + _payload(shape, path)
            while len(data) <= size and (chunk := f.read(min(_CHUNK, size + 1 - len(data)))):
                data += chunk
    # gzip raises these for truncated or non-gzip files, zlib.error for a damaged stream.
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path}: cannot read the file ({err})") from err
    _check_length(data, size, shape, path)
    return data


def _check_magic(data: bytes | bytearray, path: Path) -> int:
    # The number of dimensions, once the magic number says IDX of unsigned bytes.
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _UBYTE:
        raise ValueError(
            f"{path}: not an IDX file of unsigned bytes (expected magic 0x0000 08 NN, "
            f"got {bytes(data[:4]).hex() or 'an empty file'})"
        )
    return data[3]


def _header(data: bytes | bytearray, path: Path) -> tuple[list[int], int]:
    # The shape the header announces, and the header's length in bytes.
    header = 4 + 4 * _check_magic(data, path)
    if len(data) < header:
        raise ValueError(f"{path}: truncated header ({len(data)} bytes, expected {header})")
    return [int.from_bytes(data[i : i + 4], "big") for i in range(4, header, 4)], header


def _payload(shape: list[int], path: Path) -> int:
    # The bytes the shape needs (Python ints: no int64 wrap-around); none or absurdly many
    # mean a damaged header, not a dataset.
    size = math.prod(shape)
    if size == 0:
        raise ValueError(
            f"{path}: the header's shape {tuple(shape)} has a zero dimension, so the file "
            f"holds no data (expected at least one item; it is corrupted)"
        )
    if size > _MAX_PAYLOAD:
        raise ValueError(
            f"{path}: the header's shape {tuple(shape)} needs {size} bytes, more than a "
            f"tensor can hold (at most {_MAX_PAYLOAD}; it is corrupted)"
        )
    return size


def _check_length(data: bytes | bytearray, size: int, shape: list[int], path: Path) -> None:
    if len(data) > size:  # read no further than one byte past the announced end
        raise ValueError(
            f"{path}: expected {size} bytes for shape {tuple(shape)}, got more (the file holds "
            f"data past what its header announces: it is corrupted)"
        )
    if len(data) < size:
        raise ValueError(
            f"{path}: expected {size} bytes for shape {tuple(shape)}, got {len(data)} "
            f"(the file is truncated or corrupted)"
        )


def _parse_idx(data: bytearray, path: Path) -> Tensor:
    # data as _read_bytes returns it, its length checked against the header already.
    shape, header = _header(data, path)
    # A view of data (writable): no copy of the images.
    return torch.frombuffer(data, dtype=torch.uint8, offset=header).view(shape)


def read_idx(path: str | os.PathLike[str]) -> Tensor:
    """Read an IDX file of unsigned bytes (gzipped or not, whatever its name) into a uint8 tensor.

    The header is read first, and then no more than one byte past the data it announces:
    a longer file (a gzip bomb) is refused without being decompressed whole.

    Raises:
        ValueError: naming the file, if the header or the length is not what IDX requires,
            or the shape has a zero dimension (no data) or more bytes than a tensor holds.

    Example:
        >>> from classic_cnns.data.mnist import read_idx
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
        >>> _ = path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
        >>> read_idx(path).tolist()
        [7, 2, 1]
    """
    path = Path(path)
    return _parse_idx(_read_bytes(path), path)


class MNIST(InMemoryDataModule):
    """MNIST handwritten digits (LeCun, Cortes and Burges), 28x28 grey, padded to 32x32 for LeNet-5.

    Args:
        data_dir: Folder holding ``MNIST/raw/`` (torchvision's layout); ``None``:
            ``$CLASSIC_CNNS_DATA`` if set, else ``data``
            (:func:`~classic_cnns.files.default_data_dir`), read when the datamodule is
            built; ``self.data_dir`` is the folder used.
        download: Download missing files in ``prepare_data`` (md5-checked). With
            ``False``, the IDX files (``.gz`` or not) must already be in ``data_dir``; a
            recompressed or uncompressed copy is accepted by its decompressed content.
            After ``setup``, ``read_from`` maps each file's name to the copy read.
        protocol: ``"standard"`` (60,000 training and 10,000 test images) or ``"10k"``:
            only the test file, the first 8,000 images to train and the last 2,000 to test.
        batch_size: Images per batch; ``None``: the model's recipe (see the base class).
        image_size: Output ``(H, W)``; ``None`` follows the model (32x32 for LeNet-5).
        resize: ``"pad"`` or ``"resize"``; ``None`` pads by up to 4 pixels a side, else resizes.
        val_size: Fraction or count of the training images held out for validation.
        seed: Seed of the train/validation split.
        num_workers: DataLoader worker processes.
        data_on_device: Keep the dataset on the accelerator (see ``InMemoryDataModule``).
        mixup_alpha: MixUp for training batches (see ``InMemoryDataModule``); 0: off.
        cutmix_alpha: CutMix for training batches (see ``InMemoryDataModule``); 0: off.

    Example:
        >>> from classic_cnns import MNIST
        >>> dm = MNIST("data", protocol="10k", val_size=0)
        >>> dm.prepare_data()  # the 10,000 test images, if missing (md5-checked)  # doctest: +SKIP
        >>> dm.setup("fit")  # doctest: +SKIP
        >>> len(dm.train_dataloader().dataset)  # doctest: +SKIP
        8000
    """

    num_classes = 10
    class_names = tuple(str(d) for d in range(10))
    mean = (0.1307,)
    std = (0.3081,)
    # Sources: torchvision's own lists, so mirrors and checksums stay in one place.
    mirrors: ClassVar[list[str]] = list(tvd.MNIST.mirrors)
    resources: ClassVar[list[tuple[str, str]]] = list(tvd.MNIST.resources)
    folder: ClassVar[str] = "MNIST"
    # md5 of the decompressed files, for copies whose .gz is not the published archive.
    content_md5: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    }

    def __init__(
        self,
        data_dir: str | None = None,
        download: bool = True,
        protocol: Literal["standard", "10k"] = "standard",
        batch_size: int | None = None,
        image_size: int | tuple[int, int] | None = None,
        resize: Literal["pad", "resize"] | None = None,
        val_size: int | float = 0.1,
        seed: int = 0,
        num_workers: int = 0,
        data_on_device: bool | None = None,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
    ) -> None:
        super().__init__(
            batch_size,
            image_size,
            resize,
            val_size,
            seed,
            num_workers,
            data_on_device,
            mixup_alpha=mixup_alpha,
            cutmix_alpha=cutmix_alpha,
        )
        check_flag("download", download)
        data_dir = default_data_dir() if data_dir is None else data_dir
        if protocol not in ("standard", "10k"):
            raise ValueError(f"protocol must be 'standard' or '10k'; got {protocol!r}")
        self.data_dir = as_folder("data_dir", data_dir)
        self.download = download
        self.protocol = protocol
        self.read_from: dict[str, Path] = {}  # each file's copy that verified (data fetch's)

    @property
    def raw_dir(self) -> Path:
        """``<data_dir>/<Name>/raw``, where the IDX files live."""
        return self.data_dir / self.folder / "raw"

    def _split_settings(self) -> dict[str, Any]:
        # protocol="10k" trains on the test file's first 8,000 images: another split as well.
        return {**super()._split_settings(), "protocol": self.protocol}

    def _needed(self) -> list[tuple[str, str]]:
        prefixes = ("t10k",) if self.protocol == "10k" else ("train", "t10k")
        return [r for r in self.resources if r[0].startswith(prefixes)]

    def _find(self, gz_name: str) -> Path | None:
        return next(iter(self._copies(gz_name)), None)

    def _copies(self, gz_name: str) -> list[Path]:
        # The file's copies in raw_dir: the uncompressed one first (torchvision's), then the .gz.
        names = (gz_name.removesuffix(".gz"), gz_name)
        return [self.raw_dir / n for n in names if (self.raw_dir / n).is_file()]

    def prepare_data(self) -> None:
        """Download the missing files (once per node), verifying each md5 before use."""
        if not self.download:
            return
        for filename, md5 in self._needed():
            if self._find(filename) is None:
                self._download(filename, md5)

    def _download(self, filename: str, md5: str) -> None:
        errors = []
        known = self.content_md5.get(filename.removesuffix(".gz"))
        with download_folder(self.raw_dir) as tmp:
            for mirror in self.mirrors:
                target = Path(tmp) / filename  # each mirror's body replaces the last one's
                try:
                    download(f"{mirror}{filename}", target, timeout=DOWNLOAD_TIMEOUT)
                    if (got := file_digest(target)) != md5:
                        if known is None:  # a copy can pass by its content only where known
                            raise RuntimeError(f"md5 {got} does not match the expected {md5}")
                        try:  # recompressed: by its content
                            self._verified(target, filename, _SERVED)
                        except ValueError as err:  # say it of the URL, not the scratch copy
                            raise RuntimeError(str(err).removeprefix(f"{target}: ")) from None
                except Exception as err:  # one mirror failing is normal; try the next
                    errors.append(f"  {mirror}{filename}: {err}")
                    continue
                os.replace(target, self.raw_dir / filename)
                return
            raise RuntimeError(  # in the block: the folders made for it go (if empty)
                f"could not download {filename} into {self.raw_dir}; tried:\n" + "\n".join(errors)
            )

    def _read(self, filename: str) -> Tensor:
        # The first copy that verifies: a damaged uncompressed file beside a good .gz (an
        # interrupted gunzip -k) is named in a warning and the .gz is read instead.
        copies = self._copies(filename)
        assert copies, "load_splits checks that every file is present"
        errors: list[str] = []  # both damaged: both named
        for path in copies:
            remedy = _BESIDE_GOOD if path != copies[-1] else _OWN
            try:
                images = self._verified(path, filename, remedy)
            except ValueError as err:
                errors.append(str(err))
                continue
            if errors:
                warn(f"{errors[0]}; read {path.name} beside it instead")
            self.read_from[filename] = path
            return images
        raise ValueError("\n".join(errors))

    def _verified(self, path: Path, filename: str, remedy: _Remedy = _OWN) -> Tensor:
        # The published archive passes by its md5. Any other copy (recompressed by a mirror,
        # a distribution or a user, or stored uncompressed) passes by what it holds. An error
        # ends with what to do about the file (remedy), said once.
        published = dict(self.resources)[filename]
        if path.suffix == ".gz" and (got := file_digest(path)) == published:
            return read_idx(path)
        try:
            return self._by_content(path, filename)
        except _Misnamed as err:
            raise _Misnamed(f"{err}{remedy.misnamed}") from None
        except ValueError as err:
            if path.suffix != ".gz":
                raise ValueError(f"{err}{remedy.damaged}") from None
            reason = str(err).removeprefix(f"{path}: ")
            raise ValueError(
                f"{path}: md5 {got} does not match the published {published}; the file is "
                f"corrupted or not the original{remedy.damaged} (a recompressed "
                f"copy passes by its content, but this one fails: {reason})"
            ) from None

    def _by_content(self, path: Path, filename: str) -> Tensor:
        # A valid IDX file whose decompressed bytes have the published content's md5 where known.
        data = _read_bytes(path)
        images = _parse_idx(data, path)
        known = self.content_md5.get(filename.removesuffix(".gz"))
        content = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if known is not None and content != known:
            wrong = f"{path}: content md5 {content} does not match the published content's {known}"
            if other := [n for n, m in self.content_md5.items() if m == content]:
                raise _Misnamed(f"{wrong}; it holds {other[0]} (that file's content md5)")
            raise ValueError(f"{wrong}; the file is corrupted or not the original")
        return images

    def _read_pair(self, prefix: str) -> tuple[Tensor, Tensor]:
        images = self._read(f"{prefix}-images-idx3-ubyte.gz")
        labels = self._read(f"{prefix}-labels-idx1-ubyte.gz")
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{self.raw_dir}: {prefix} images {tuple(images.shape)} and labels "
                f"{tuple(labels.shape)} do not pair up; expected (N, H, W) and (N,)"
            )
        if labels.numel() and int(labels.max()) >= self.num_classes:
            raise ValueError(
                f"{self._find(f'{prefix}-labels-idx1-ubyte.gz')}: labels must lie in "
                f"[0, {self.num_classes}); got a largest label of {int(labels.max())}"
            )
        return images.unsqueeze(1), labels.long()

    def load_splits(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Read the IDX files; for ``protocol="10k"`` split the test file 8,000 / 2,000.

        Example:
            >>> [t.shape[0] for t in MNIST("data", protocol="10k").load_splits()]  # doctest: +SKIP
            [8000, 8000, 2000, 2000]
        """
        missing = [name for name, _ in self._needed() if self._find(name) is None]
        if missing:
            # Only the test set there (as MNIST-10k needs): say that protocol="10k" uses it.
            only_test = all(n.startswith("train") for n in missing)
            # What is there instead: a misplaced or misnamed copy shows in the message.
            above = (self.data_dir, self.raw_dir.parent)  # one or two folders too high
            strays = [folder for folder in above if any(folder.glob("*ubyte*"))]
            raise FileNotFoundError(
                f"{type(self).__name__}: {', '.join(missing)} missing from {self.raw_dir} "
                f"({_contents(self.raw_dir)}; each file may also be there uncompressed, "
                "without .gz). "
                + "".join(f"{folder}: {_contents(folder, '*ubyte*')}; " for folder in strays)
                + (f"IDX files belong in {self.raw_dir}. " if strays else "")
                + _how_to_get(self.download, "put the IDX files there")
                + (
                    "; or train on the test set's first 8,000 images and test on its last "
                    "2,000 (protocol='10k', --data.protocol 10k), which needs only the t10k files"
                    if only_test
                    else ""
                )
            )
        test_x, test_y = self._read_pair("t10k")
        if self.protocol == "10k":
            # The test split's own copy: a view would keep all 10,000 images in memory.
            return test_x[:8000], test_y[:8000], test_x[8000:].clone(), test_y[8000:].clone()
        return (*self._read_pair("train"), test_x, test_y)


def _contents(folder: Path, pattern: str = "*") -> str:
    # What a folder holds (up to six names matching pattern), for an error message.
    if not folder.is_dir():
        file = file_in_the_way(folder)
        return "no such folder" + (f": {file} is a file" if file is not None else "")
    names = sorted(p.name for p in folder.glob(pattern))
    more = f" and {len(names) - 6} more" if len(names) > 6 else ""
    return "it holds " + (", ".join(names[:6]) + more if names else "nothing")


class FashionMNIST(MNIST):
    """Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): 28x28 grey images of 10 kinds of clothing.

    Same arguments and layout (``<data_dir>/FashionMNIST/raw/``) as :class:`MNIST`.

    Example:
        >>> from classic_cnns import FashionMNIST
        >>> FashionMNIST.class_names[:3]
        ('T-shirt/top', 'Trouser', 'Pullover')
    """

    class_names = tuple(tvd.FashionMNIST.classes)
    mean = (0.2860,)
    std = (0.3530,)
    mirrors: ClassVar[list[str]] = list(tvd.FashionMNIST.mirrors)
    resources: ClassVar[list[tuple[str, str]]] = list(tvd.FashionMNIST.resources)
    folder: ClassVar[str] = "FashionMNIST"
    content_md5: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    }
