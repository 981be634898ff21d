"""CIFAR-10 and CIFAR-100: the pickled python batches read straight into uint8 tensors.

The download goes through torchvision's URL and md5 (``torchvision.datasets.CIFAR10.url``,
``tgz_md5``, ``train_list``, ...) into torchvision's layout, ``<data_dir>/cifar-10-batches-py``
(``cifar-100-python`` for CIFAR-100), so a folder torchvision filled works here and the
other way round. The archive is verified and unpacked in a scratch folder and only then
moved into place: a failed download never replaces good files.

Each batch file's md5 is checked before it is unpickled, and the unpickler accepts only
the numpy array types the batches hold, so no other pickle ever runs. Training batches
are augmented on the device (4-pixel padded random crop and horizontal flip, the ResNet
paper's CIFAR recipe; see :class:`~classic_cnns.data.transfer.TransferDataModule`).
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path, PureWindowsPath
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torchvision.datasets as tvd
from torch import Tensor

from classic_cnns._checks import as_folder, check_flag
from classic_cnns.data.base import _how_to_get
from classic_cnns.data.transfer import TransferDataModule
from classic_cnns.files import (
    DOWNLOAD_TIMEOUT,
    default_data_dir,
    download,
    download_folder,
    file_digest,
)

__all__ = ["CIFAR10", "CIFAR100"]

# The globals a CIFAR batch pickle needs: numpy's array reconstruction (numpy 1 and 2 names),
# and _codecs.encode, which Python 3 uses to pickle bytes at protocol 2 (torch's weights_only
# unpickler allows it as well). The md5 check before it admits the published files only.
_ALLOWED_GLOBALS = {
    ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: a CIFAR batch holds only numpy arrays, "
                "lists, numbers and strings"
            )
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        # The batches were pickled by Python 2; latin1 turns its byte strings into str.
        obj = _ArrayUnpickler(f, encoding="latin1").load()
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a pickled dict; got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


_KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
}


def _member_target(
    member: tarfile.TarInfo, into: Path, refuse: Callable[[str, str], Exception]
) -> Path:
    # Where a member of the archive is unpacked: a file or folder inside ``into`` (what
    # tarfile's "data" filter allows, less links), else refused.
    name = member.name
    if not (member.isreg() or member.isdir()):
        kind = _KINDS.get(member.type, f"a special member (type {member.type!r})")
        raise refuse(name, f"it is {kind}; expected regular files and folders only")
    if os.path.isabs(name) or name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        raise refuse(name, "an absolute path; expected paths inside the archive's folder")
    if ".." in re.split(r"[/\\]", name):
        raise refuse(name, "a path with '..'; expected paths inside the archive's folder")
    target = (into / name).resolve()
    if not target.is_relative_to(into.resolve()):
        raise refuse(name, "it would be written outside the folder it is unpacked into")
    return target


class CIFAR10(TransferDataModule):
    """CIFAR-10 (Krizhevsky, 2009): 60,000 32x32 colour images of 10 classes.

    Args:
        data_dir: Folder holding ``cifar-10-batches-py/`` (torchvision's layout); ``None``:
            ``$CLASSIC_CNNS_DATA`` if set, else ``data``
            (:func:`~classic_cnns.files.default_data_dir`), read when the datamodule is
            built; ``self.data_dir`` is the folder used.
        download: Unpack the archive in ``prepare_data`` when files are missing: the copy
            in ``data_dir`` if its md5 is the published one, else one downloaded and
            md5-checked. With ``False``, missing files raise ``FileNotFoundError``.
        batch_size: Images per batch; ``None``: the model's recipe (see the base class).
        image_size: Output ``(H, W)``; ``None`` follows the model (see the base class): its
            recipe's size for small images, 32 for the CIFAR networks, 96 or 224 for ImageNet's.
        resize: ``"pad"`` or ``"resize"``; ``None`` pads by up to 4 pixels a side, else resizes.
        val_size: Fraction or count of the 50,000 training images held out for validation.
        seed: Seed of the train/validation split.
        num_workers: DataLoader worker processes.
        data_on_device: Keep the dataset on the accelerator (see ``InMemoryDataModule``).
        augment: 4-pixel padded random crop and horizontal flip for training batches (see
            :meth:`~classic_cnns.data.base.InMemoryDataModule.on_after_batch_transfer`).
        mean: Per-channel mean; default: what the model's weights expect (the pretrained
            weights' or its checkpoint's, see
            :class:`~classic_cnns.data.transfer.TransferDataModule`), else CIFAR's own.
        std: Per-channel standard deviation, with ``mean``.
        mixup_alpha: MixUp for training batches (see ``InMemoryDataModule``); 0: off.
        cutmix_alpha: CutMix for training batches (see ``InMemoryDataModule``); 0: off.

    Example:
        >>> from classic_cnns.data.cifar import CIFAR10
        >>> dm = CIFAR10("data", download=False)
        >>> dm.num_classes, dm.in_channels, dm.class_names[:3]
        (10, 3, ('airplane', 'automobile', 'bird'))
    """

    num_classes = 10
    class_names: tuple[str, ...] = (
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    )  # fmt: skip
    # Per-channel statistics of the 50,000 training images.
    mean = (0.4914, 0.4822, 0.4465)
    std = (0.2470, 0.2435, 0.2616)
    # Sources: torchvision's own, so the URL and checksums stay in one place.
    url: ClassVar[str] = tvd.CIFAR10.url
    archive: ClassVar[str] = tvd.CIFAR10.filename
    archive_md5: ClassVar[str] = tvd.CIFAR10.tgz_md5
    folder: ClassVar[str] = tvd.CIFAR10.base_folder
    train_list: ClassVar[list[list[str]]] = [list(r) for r in tvd.CIFAR10.train_list]
    test_list: ClassVar[list[list[str]]] = [list(r) for r in tvd.CIFAR10.test_list]
    label_key: ClassVar[str] = "labels"
    meta: ClassVar[dict[str, str]] = dict(tvd.CIFAR10.meta)

    def __init__(
        self,
        data_dir: str | None = None,
        download: bool = True,
        batch_size: int | None = None,
        image_size: int | tuple[int, int] | None = None,
        resize: Literal["pad", "resize"] | None = None,
        val_size: int | float = 0.1,
        seed: int = 0,
        num_workers: int = 0,
        data_on_device: bool | None = None,
        augment: bool = True,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
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
            augment=augment,
            crop_padding=4,
            mean=mean,
            std=std,
            mixup_alpha=mixup_alpha,
            cutmix_alpha=cutmix_alpha,
        )
        check_flag("download", download)
        data_dir = default_data_dir() if data_dir is None else data_dir
        self.data_dir = as_folder("data_dir", data_dir)
        self.download = download

    @property
    def base_dir(self) -> Path:
        """``<data_dir>/cifar-10-batches-py`` (or ``cifar-100-python``), where the batches live."""
        return self.data_dir / self.folder

    def _missing(self) -> list[str]:
        files = [name for name, _ in self.train_list + self.test_list]
        return [name for name in files if not (self.base_dir / name).is_file()]

    def prepare_data(self) -> None:
        """Download and unpack the archive (once per node) if any batch file is missing."""
        if self.download and self._missing():
            self._download()

    def _archive_state(self) -> str | None:
        # The archive fetched by hand into data_dir, as torchvision leaves it: None if it is
        # not there, "" if intact (it is used), else what is wrong (said, and not used).
        archive = self.data_dir / self.archive
        if not archive.is_file():
            return None
        if (got := file_digest(archive)) == self.archive_md5:
            return ""
        return (
            f"{archive} is there, but its md5 {got} is not the published {self.archive_md5} "
            "(a partial or damaged download?): delete it and download it again"
        )

    def _download(self) -> None:
        with download_folder(self.data_dir) as tmp:
            archive, state = self.data_dir / self.archive, self._archive_state()
            if state != "":
                archive = Path(tmp) / self.archive
                try:
                    download(self.url, archive, timeout=DOWNLOAD_TIMEOUT)
                except Exception as err:
                    raise RuntimeError(
                        f"could not download {self.url} into {self.data_dir}: {err}"
                        + (f". {state}" if state else "")
                    ) from err
                got = file_digest(archive)
                if got != self.archive_md5:
                    raise RuntimeError(
                        f"{self.url}: md5 {got} does not match the published "
                        f"{self.archive_md5}; nothing was changed in {self.data_dir}"
                    )
            self._unpack(archive, Path(tmp))
            unpacked = Path(tmp) / self.folder
            if not unpacked.is_dir():
                raise RuntimeError(f"{self.archive} holds no {self.folder}/ folder")
            self.base_dir.mkdir(exist_ok=True)
            # Only missing files move in; files already in place are left as they are.
            for item in unpacked.iterdir():
                if not (self.base_dir / item.name).exists():
                    os.replace(item, self.base_dir / item.name)
            shutil.rmtree(unpacked, ignore_errors=True)

    def _unpack(self, archive: Path, into: Path) -> None:
        # Only files and folders inside ``into``: tarfile's "data" filter where Python has it
        # (3.10.12, 3.11.4, 3.12 on), else the same checks here, on every member before any
        # is written. A hostile archive is refused whole, naming the member.
        def refuse(name: str, why: str) -> RuntimeError:
            return RuntimeError(
                f"{self.archive} from {self.url}: refusing to unpack {name!r}: {why}; "
                f"nothing was changed in {self.data_dir}"
            )

        with tarfile.open(archive, "r:gz") as tar:
            if hasattr(tarfile, "data_filter"):
                try:
                    tar.extractall(into, filter="data")
                except tarfile.FilterError as err:
                    raise refuse(err.tarinfo.name, str(err)) from err
                return
            members = tar.getmembers()
            targets = [_member_target(m, into, refuse) for m in members]
            for member, target in zip(members, targets, strict=True):
                try:  # by hand: no owner, mode or time of the archive's is applied
                    if member.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = tar.extractfile(member)
                    assert source is not None, "a regular file's"
                    with source, target.open("wb") as dst:
                        shutil.copyfileobj(source, dst, 1 << 20)
                except OSError as err:
                    raise refuse(member.name, str(err)) from err

    def _verified(self, name: str, md5: str) -> dict[str, Any]:
        path = self.base_dir / name
        if (got := file_digest(path)) != md5:
            raise ValueError(
                f"{path}: md5 {got} does not match the published {md5}; the file is corrupted "
                "or not the original: delete it and download again"
            )
        return _unpickle(path)

    def _read(self, name: str, md5: str) -> tuple[Tensor, Tensor]:
        path = self.base_dir / name
        batch = self._verified(name, md5)
        try:
            data, labels = batch["data"], batch[self.label_key]
        except KeyError as err:
            raise ValueError(f"{path}: no {err.args[0]!r} entry in the batch") from err
        data = np.asarray(data, dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] != len(labels):
            raise ValueError(
                f"{path}: expected data (N, 3072) with N labels; got {data.shape} and "
                f"{len(labels)} labels"
            )
        # Rows are the red, green and blue planes of a 32x32 image, row by row: (N, 3, 32, 32).
        images = torch.from_numpy(data.copy()).view(-1, 3, 32, 32)
        return images, torch.as_tensor(labels, dtype=torch.long)

    def _read_all(self, files: list[list[str]]) -> tuple[Tensor, Tensor]:
        parts = [self._read(name, md5) for name, md5 in files]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def load_splits(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Read the training and test batches, verifying each file's md5 first.

        Example:
            >>> [t.shape[0] for t in CIFAR10("data").load_splits()]  # doctest: +SKIP
            [50000, 50000, 10000, 10000]
        """
        missing = self._missing()
        if missing:
            by_hand, state = f"unpack {self.url} into {self.data_dir}", self._archive_state()
            if state is not None:
                by_hand = state or f"unpack {self.archive} (it is in {self.data_dir})"
            raise FileNotFoundError(
                f"{type(self).__name__}: {', '.join(missing)} missing from {self.base_dir}. "
                + _how_to_get(self.download, by_hand)
            )
        if (self.base_dir / self.meta["filename"]).is_file():
            names = self._verified(self.meta["filename"], self.meta["md5"])[self.meta["key"]]
            self.class_names = tuple(str(n) for n in names)
        return (*self._read_all(self.train_list), *self._read_all(self.test_list))


class CIFAR100(CIFAR10):
    """CIFAR-100 (Krizhevsky, 2009): 60,000 32x32 colour images of 100 classes (fine labels).

    Same arguments as :class:`CIFAR10`; the files live in ``<data_dir>/cifar-100-python``.

    Example:
        >>> from classic_cnns.data.cifar import CIFAR100
        >>> CIFAR100(download=False).num_classes
        100
    """

    num_classes = 100
    class_names = (
        "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
        "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
        "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
        "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest",
        "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower",
        "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
        "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear",
        "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine", "possum",
        "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew",
        "skunk", "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar",
        "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
        "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree",
        "wolf", "woman", "worm",
    )  # fmt: skip
    mean = (0.5071, 0.4865, 0.4409)
    std = (0.2673, 0.2564, 0.2762)
    url: ClassVar[str] = tvd.CIFAR100.url
    archive: ClassVar[str] = tvd.CIFAR100.filename
    archive_md5: ClassVar[str] = tvd.CIFAR100.tgz_md5
    folder: ClassVar[str] = tvd.CIFAR100.base_folder
    train_list: ClassVar[list[list[str]]] = [list(r) for r in tvd.CIFAR100.train_list]
    test_list: ClassVar[list[list[str]]] = [list(r) for r in tvd.CIFAR100.test_list]
    label_key: ClassVar[str] = "fine_labels"
    meta: ClassVar[dict[str, str]] = dict(tvd.CIFAR100.meta)
