"""Your own images: a folder of class subfolders, decoded once into uint8 tensors.

:class:`ImageFolder` reads the layout torchvision's ``ImageFolder`` reads (one subfolder
per class) either as ``train/``, ``val/`` and ``test/`` folders or as one folder that a
seed splits. Every file is decoded once, at ``setup``, with ``torchvision.io.decode_image``
(TorchCodec's where torchvision no longer has it) and resized to cover a fixed size and
centre-cropped (torchvision's ``Resize`` + ``CenterCrop``), keeping the aspect ratio. The
images stay in memory as one uint8 tensor per split (10,000 224x224 RGB images take 1.5 GB);
conversion, normalisation and augmentation run per batch on the device, as in
:class:`~classic_cnns.data.base.InMemoryDataModule`. Its base
:class:`~classic_cnns.data.transfer.TransferDataModule` (CIFAR's too) normalises as the
weights the model starts from expect, and crops and flips training batches.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor
from torch.utils.data import DataLoader

from classic_cnns._checks import as_folder, is_number
from classic_cnns._warn import warn
from classic_cnns.data.base import Split
from classic_cnns.data.images import (
    IMAGE_EXTENSIONS,
    _check_channels,
    _extensions,
    files_digest,
    list_images,
    load_image,
    load_images,
)
from classic_cnns.data.preprocessing import (
    ModelSpec,
    ResizeMode,
    _channel_stats,
    random_crop_flip,
)
from classic_cnns.data.sampling import _test_split
from classic_cnns.data.transfer import TransferDataModule

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageFolder",
    "TransferDataModule",
    "list_images",
    "load_image",
    "random_crop_flip",
]


def _class_map(classes: Any) -> dict[str, str]:
    # {folder name: class name} in the outputs' order (a list: each folder named as its class).
    if isinstance(classes, str) or not isinstance(classes, Sequence | Mapping):
        raise TypeError(f"classes must be a list of class names, or a mapping; got {classes!r}")
    pairs = list(classes.items()) if isinstance(classes, Mapping) else [(n, n) for n in classes]
    if wrong := [s for pair in pairs for s in pair if not isinstance(s, str)]:
        raise TypeError(f"classes must name folders and classes with strings; got {wrong[0]!r}")
    if len(pairs) < 2 or not all(s for pair in pairs for s in pair):
        raise ValueError(f"classes must be two or more non-empty names; got {classes!r}")
    names = [name for _, name in pairs]
    if twice := sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"classes must name each class once; {twice} appear more than once")
    return dict(pairs)


def class_dirs(folder: Path) -> list[Path]:
    """The folders in ``folder`` that can be classes: hidden ones (``.ipynb_checkpoints``,
    ``.git``) are not.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> root = Path(tempfile.mkdtemp())
        >>> for name in ("cat", "dog", ".git"):
        ...     (root / name).mkdir()
        >>> sorted(p.name for p in class_dirs(root))
        ['cat', 'dog']
    """
    return [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]


# The names a split folder goes by, in any case (Kaggle's and Roboflow's "valid" among them).
_SPLIT_NAMES = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation"),
    "test": ("test", "testing"),
}


def _split_dirs(root: Path, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> dict[str, Path]:
    # {"train": root/Train, ...} when root holds a training folder of class folders; {} when
    # root's folders are the classes (one named like a split holds its images itself).
    folders = sorted(class_dirs(root))
    found: dict[str, dict[Path, Path]] = {}  # split -> {resolved path: folder}: links count once
    for folder in folders:
        for split, names in _SPLIT_NAMES.items():
            if folder.name.lower() in names:
                found.setdefault(split, {}).setdefault(folder.resolve(), folder)
    splits = {split: list(same.values()) for split, same in found.items()}
    named = [f for f in folders if any(f.name.lower() in n for n in _SPLIT_NAMES.values())]
    if not any(class_dirs(f) for f in splits.get("train", [])):
        if folders and named == folders and all(class_dirs(f) for f in named):
            raise ValueError(
                f"{root}: {[f.name for f in folders]} look like split folders, but there is "
                "no training folder; expected train/ beside them (val/ and test/ optional), "
                "or one folder per class"
            )
        classes = {f.name.casefold() for f in folders if f not in named}
        for folder in named:  # root/cat, root/dog, root/Test/{Cat,dog}: "Test" is no class
            if shared := sorted(classes & {d.name.casefold() for d in class_dirs(folder)}):
                raise ValueError(
                    f"{root}: {folder.name}/ holds class folders {shared} as {root.name}/ "
                    f"does, so it would be read as a class of its own, its images trained "
                    f"on; expected train/ beside it (the class folders moved into it), or "
                    f"{folder.name}/ moved out of {root}"
                )
        return {}
    for split, same in splits.items():
        if len(same) > 1:
            raise ValueError(
                f"{root}: {[f.name for f in same]} are all {split} folders; expected one"
            )
    for split in ("val", "test"):  # an empty one would be a split of no images, silently
        for folder in splits.get(split, []):  # (a test/ of loose images is Kaggle's: no set)
            if not class_dirs(folder) and not list_images(folder, extensions):
                raise ValueError(
                    f"{folder}: the {split} folder is empty; expected a folder per class "
                    f"holding its images (as in {splits['train'][0].name}/), or no "
                    f"{folder.name}/ folder"
                )
    left = [f.name for f in folders if f not in named]
    loose = [p.name for p in list_images(root, extensions)]
    beside = [f"the folders {left}"] if left else []
    if loose:  # images put beside the splits rather than in a class folder of one
        shown = ", ".join(loose[:3]) + (", ..." if len(loose) > 3 else "")
        beside.append(f"{len(loose)} image file(s) ({shown})")
    if beside:  # a class named "train" holding subfolders would read as a split too
        warn(
            f"{root}: read as split folders {[same[0].name for same in splits.values()]}; "
            f"{' and '.join(beside)} beside them are left out (no split has their images). "
            "For one folder per class, put the classes in a folder of their own"
        )
    return {split: same[0] for split, same in splits.items()}


def _available_memory() -> int | None:
    # Bytes this process may still allocate: Linux's MemAvailable, or less where a cgroup
    # (a container's limit) allows less; None where neither can be read (macOS, Windows).
    found = [
        int(line.split()[1]) * 1024
        for line in _text("/proc/meminfo").splitlines()
        if line.startswith("MemAvailable:")
    ]
    limit, used = _text("/sys/fs/cgroup/memory.max"), _text("/sys/fs/cgroup/memory.current")
    if limit.strip().isdigit() and used.strip().isdigit():  # "max": no limit
        found.append(int(limit) - int(used))
    return min(found) if found else None


def _text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return ""


def _check_memory(count: int, shape: tuple[int, ...], root: Path) -> None:
    # Refuse images that cannot fit in memory before decoding any, not after minutes (OOM).
    need = count * math.prod(shape)
    available = _available_memory()
    if available is not None and need > available:
        raise MemoryError(
            f"{root}: ImageFolder keeps its images decoded in memory; {count:,} images at "
            f"{'x'.join(map(str, shape))} take {need / 2**30:.1f} GiB, and "
            f"{max(available, 0) / 2**30:.1f} GiB is available. Decode them at a smaller "
            "image_size, use fewer images, or read the files lazily with your own DataLoader "
            "(torchvision.datasets.ImageFolder) passed to Trainer.fit"
        )


class ImageFolder(TransferDataModule):
    """Images in class subfolders: ``root/<split>/<class>/<file>`` or ``root/<class>/<file>``.

    With ``train/`` under ``root``, that folder is the training set, ``val/`` (if present)
    the validation set (else ``val_size`` of the training images) and ``test/`` (if
    present) the test set. The split folders' names may be in any case and are also
    ``training``, ``valid`` or ``validation``, and ``testing``. Other folders and image
    files beside them are left out, with a warning that names them.
    Without a training folder, the class folders directly under ``root`` are split by
    ``seed``: ``test_size`` for testing, then ``val_size`` of the rest for validation.
    Class names are the sorted folder names of the training set (as torchvision's
    ``ImageFolder``), or ``classes`` in their order. A training folder counts as one when it
    holds class folders; a folder of images named like a split is a class. A ``test``
    folder of images without class folders (unlabelled, as Kaggle's) gives no test set.
    Errors, not silence: a ``val``/``test`` class that training (or ``classes``) lacks,
    images lying beside the class folders instead of in them, two folders of one split
    (``val/`` and ``valid/``; a link to the other counts once), an empty ``val/`` or
    ``test/`` folder, and split folders of class folders without a training folder. Linked
    folders are followed (see :func:`list_images`).

    Files are decoded once at ``setup`` (see :func:`load_image`) at ``image_size`` (or the
    model's size, see ``image_size`` below) and kept as uint8 in memory; a folder too large
    for the memory available is refused (``MemoryError``) before any file is decoded. With
    ``image_size`` left to it, a model whose ``data_config`` records padded images (MNIST's
    28 px padded to LeNet-5's 32) gets the files padded where they fit, as
    :func:`~classic_cnns.predict.predict_folder` pads them, and records ``"pad"`` again when
    trained on them. Validating, testing or predicting (not ``fit``) with a model whose
    ``data_config`` records an evaluation crop (ImageNet weights' ``crop_pct``, 224/256 or
    224/232), the images are resized to cover ``size / crop_pct`` and the centre cropped, as
    :func:`~classic_cnns.predict.predict_folder` and torchvision's evaluation do; ``fit``
    (and its validation) keeps the whole image.
    ``files[split]`` (and its loader's ``dataset.files``) lists a decoded split's files in
    order: ``files["test"][i]`` is test image ``i``, ``classic-cnns predict``'s CSV's ``file``.

    Args:
        root: The folder.
        channels: 1 to read images as grey, 3 as RGB.
        batch_size: Images per batch; ``None``: the model's recipe (see the base class).
        image_size: Stored and output ``(H, W)``; ``None``: the size the model's ``data_config``
            records (a checkpoint's), else its ``input_size``.
        val_size: Validation share of the training images without a ``val/`` folder.
        test_size: Test share of all images in the one-folder layout; ``1`` tests (and
            validates) on them all: a labelled folder to evaluate on, not to train on.
        seed: Seed of the splits.
        num_workers: DataLoader worker processes.
        data_on_device: Keep the dataset on the accelerator (see ``InMemoryDataModule``).
        augment: Random crop (padding 1/8 of the size) and flip for training batches (see
            :meth:`~TransferDataModule.on_after_batch_transfer`).
        mean: Per-channel mean (0-1 scale); default: what the model's weights expect (the
            pretrained weights' or its checkpoint's, see :class:`TransferDataModule`),
            else the training images' own.
        std: Per-channel standard deviation, with ``mean``.
        extensions: File extensions to read, or one (``"png"``; ``--data.extensions png``);
            other files, and folders whose name starts with a dot (``.ipynb_checkpoints``),
            are ignored.
        classes: The class names in the order of the model's outputs (label ``i`` is
            ``classes[i]``), as timm's ``class_map``: every class folder must be one of
            them, and a class may have no folder. To evaluate a model on a folder of some
            of its classes, pass the names it records (``model.data_config["class_names"]``).
            A mapping ``{folder: class name}`` names classes no folder can be named after
            (Fashion-MNIST's ``"T-shirt/top"``). Default: the training set's folders, sorted.
        mixup_alpha: MixUp for training batches (see ``InMemoryDataModule``); 0: off.
        cutmix_alpha: CutMix for training batches (see ``InMemoryDataModule``); 0: off.

    Example:
        >>> from classic_cnns.data.folder import ImageFolder
        >>> dm = ImageFolder("flowers", image_size=224)  # doctest: +SKIP
        >>> dm.class_names  # doctest: +SKIP
        ('daisy', 'rose', 'tulip')
        >>> ImageFolder("roses", classes=dm.class_names).num_classes  # doctest: +SKIP
        3
    """

    _resize_dtype = "uint8"  # each file is resized as it is decoded, and kept as uint8

    def __init__(
        self,
        root: str | os.PathLike[str],
        channels: int = 3,
        batch_size: int | None = None,
        image_size: int | tuple[int, int] | None = None,
        val_size: int | float = 0.1,
        test_size: float = 0.1,
        seed: int = 0,
        num_workers: int = 0,
        data_on_device: bool | None = None,
        augment: bool = True,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        extensions: str | Sequence[str] = IMAGE_EXTENSIONS,
        classes: Sequence[str] | dict[str, str] | None = None,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
    ) -> None:
        _check_channels(channels)
        self.channels = channels
        super().__init__(
            batch_size,
            image_size,
            "resize",
            val_size,
            seed,
            num_workers,
            data_on_device,
            augment=augment,
            crop_padding=None,
            mean=mean,
            std=std,
            mixup_alpha=mixup_alpha,
            cutmix_alpha=cutmix_alpha,
        )
        if not is_number(test_size) or not 0 <= test_size <= 1:
            raise ValueError(f"test_size must be a fraction in [0, 1]; got {test_size!r}")
        self.root = as_folder("root", root)
        self.files: dict[str, list[Path]] = {}  # each split's, once decoded
        self._drawn: dict[str, Any] = {}  # the image files the splits are drawn from, listed
        self.test_size = test_size
        self.extensions = _extensions(extensions)
        if not self.root.is_dir():  # as_folder has refused a file
            raise FileNotFoundError(
                f"no image folder at {self.root}: no such folder; expected a folder of class "
                "folders (or of train/, val/ and test/ folders of class folders)"
            )
        self._split_dirs = _split_dirs(self.root, self.extensions)
        self.layout = "split" if self._split_dirs else "classes"
        train_root = self._split_dirs.get("train", self.root)
        found = sorted(p.name for p in class_dirs(train_root))
        # {folder name: class name}, in the order of the outputs; None: the folders, sorted.
        self._folders = None if classes is None else _class_map(classes)
        if self._folders is None and len(found) < 2:
            raise ValueError(
                f"{train_root}: expected one subfolder per class (at least 2); found "
                f"{found or 'none'}"
            )
        if not found:
            raise ValueError(f"{train_root}: expected a subfolder per class; found none")
        self.class_names = tuple(found if self._folders is None else self._folders.values())
        for name in found:  # val/ and test/ are checked when they are read
            self._check_class_folder(train_root / name)
        self.num_classes = len(self.class_names)
        # Until setup measures the images, grey/RGB mid-grey stands in (used only for in_channels).
        self.mean, self.std = (0.5,) * channels, (0.5,) * channels
        self._measured: tuple[tuple[float, ...], tuple[float, ...]] | None = None
        self._stats_later = False  # set by setup (test, predict): see _resolve_stats
        # The size, mode and crop_pct the files were decoded at.
        self._decoded: tuple[tuple[int, int], ResizeMode, float] | None = None

    @property
    def in_channels(self) -> int:
        """Channels of the images (the ``channels`` argument)."""
        return self.channels

    @property
    def has_test_set(self) -> bool | None:
        """Whether there are test images; known before ``setup`` from the folders where it can be.

        A ``test/`` folder of class folders (or, in one folder of classes, ``test_size > 0``)
        is a test set; ``None`` while a share has yet to be counted. The launching process of
        ``ddp_spawn`` never runs ``setup``, and ``fit`` asks it whether to test.

        Example:
            >>> import os
            >>> from classic_cnns import ImageFolder
            >>> for name in ("train/cat", "train/dog", "val/cat", "val/dog"):
            ...     os.makedirs(f"pets/{name}", exist_ok=True)
            >>> ImageFolder("pets").has_test_set  # no test/ folder: known without decoding
            False
        """
        if self._splits:
            return super().has_test_set
        if self.layout == "split":
            return self._labelled_test_folder()
        return False if self.test_size == 0 else None

    def _labelled_test_folder(self) -> bool:
        # A test folder of images without class folders (Kaggle's) is no test set.
        test = self._split_dirs.get("test")
        return test is not None and bool(class_dirs(test))

    def _files(self, folder: Path) -> tuple[list[Path], list[int]]:
        if loose := list_images(folder, self.extensions):
            raise ValueError(
                f"{folder}: {len(loose)} image(s) lie directly in it, such as {loose[0].name}; "
                "expected every image in a subfolder named after its class"
            )
        paths: list[Path] = []
        labels: list[int] = []
        for class_dir in sorted(class_dirs(folder)):
            self._check_class_folder(class_dir)
            found = list_images(class_dir, self.extensions, recursive=True)
            if not found:
                raise ValueError(
                    f"{class_dir}: no image files with the extensions {list(self.extensions)}; "
                    "expected at least one image in every class folder"
                )
            paths += found
            labels += [self.class_names.index(self._class_of(class_dir.name))] * len(found)
        return paths, labels

    def _class_of(self, folder: str) -> str | None:
        return folder if self._folders is None else self._folders.get(folder)

    def _check_class_folder(self, class_dir: Path) -> None:
        if self._class_of(class_dir.name) not in self.class_names:
            whose = "the training classes" if self._folders is None else "the classes' folders"
            known = list(self.class_names if self._folders is None else self._folders)
            raise ValueError(f"{class_dir}: class {class_dir.name!r} is not among {whose} {known}")

    def _decode(
        self, split: str, paths: list[Path], labels: list[int], pick: Tensor | None = None
    ) -> Split:
        # The files at the indices `pick`, sized as predict_folder sizes them: files[split].
        picked = range(len(paths)) if pick is None else pick.tolist()
        paths, labels = [paths[i] for i in picked], [labels[i] for i in picked]
        self.files[split] = paths
        size, mode, crop = self._decoded or self._storage()
        images = load_images(paths, self.channels, size, mode, crop)
        return images, torch.tensor(labels, dtype=torch.long)

    def _storage(self) -> tuple[tuple[int, int], ResizeMode, float]:
        # The size to decode at, and how: padded for a model whose recorded preprocessing
        # padded its images (MNIST's 28 to 32 px) when the size is left to it, else resized;
        # outside fit, cropped as the model's recorded evaluation crop says.
        model = self._model()
        if self.image_size is None and model is None:
            raise ValueError(
                "ImageFolder needs image_size (an int or (H, W)) to decode the images at, or "
                "a model being trained with an input_size to take it from; got neither"
            )
        recorded = (model.data_config or {}) if model is not None else {}
        pad = self.image_size is None and recorded.get("resize") == "pad"
        fitting = self.trainer is not None and self.trainer.state.fn == TrainerFn.FITTING
        crop = 1.0 if fitting else float(recorded.get("crop_pct", 1.0))
        return self._resolve_size(None, model)[0], "pad" if pad else "resize", crop

    def setup(self, stage: str | None = None) -> None:
        """Decode the images once (at the resolved size), split, and measure the training set.

        ``Trainer.test`` and ``predict`` decode the test images alone, and the training images
        only when the normalisation needs their statistics: neither ``mean`` given nor one the
        model records (a ``ckpt_path``'s model records them: Lightning restores it after this
        setup, and the loaders follow it; until the first loader, under a ``Trainer``,
        ``preprocessing`` is ``None``). The other splits are decoded when first asked for.
        A datamodule used again with a model that takes the images at another size, or
        padded rather than resized, decodes the files again.
        """
        # The model's own data_config decides, before its setup records this datamodule's.
        if self._stale():  # the statistics too: they were measured at the old size
            self._splits, self._measured = {}, None
        self._load(only_test=stage in ("test", "predict"))
        self._native = tuple(self._splits["test"][0].shape[-2:])  # every split's size
        later = self._stats_later = stage in ("test", "predict") and self.trainer is not None
        try:
            self._follow_model(self._native)
        finally:
            self._stats_later = False
        if later:  # not known yet: no preprocessing (nor data_config) with stand-in statistics
            self.preprocessing = None
        self._move_to_device()

    def _resolve_stats(self) -> None:
        # Under a Trainer, test and predict ask for their loader after restoring a ckpt_path,
        # whose recorded statistics _loader's _follow_model then takes: measuring the training
        # images here would decode them for nothing. Without a record, they are measured then.
        if not self._stats_later:
            super()._resolve_stats()

    def _listing(self, paths: list[Path]) -> dict[str, Any]:  # the files drawn from
        return {"files": len(paths), "file_names": files_digest(paths, self.root)}

    def _split_settings(self) -> dict[str, Any]:
        # The base class's and _listing's, less what split folders decide instead: train/ and
        # test/ make test_size unused; val/ seed and val_size too.
        flags = super()._split_settings() | self._drawn
        if self.layout == "split":
            flags.pop("test_size", None)
        return {} if "val" in self._split_dirs else flags

    def _load(self, only_test: bool = False) -> None:
        # Decode the splits not decoded yet (the test split alone with only_test), each once.
        if "train" in self._splits or (only_test and self._splits):
            return
        if not self._splits:
            self._decoded = self._storage()
        done, (size, _, _) = self._splits, self._decoded or self._storage()
        fits = functools.partial(_check_memory, shape=(self.channels, *size), root=self.root)
        if self.layout == "split":  # every file listed, and counted, before one is decoded
            none: tuple[list[Path], list[int]] = ([], [])
            dirs = self._split_dirs
            # A test folder without class folders: no test set.
            test = none
            if "test" not in done and self._labelled_test_folder():
                test = self._files(dirs["test"])
            paths, labels = none if only_test else self._files(dirs["train"])
            self._drawn = self._listing(paths) if paths else self._drawn  # (val: from train/)
            val = self._files(dirs["val"]) if "val" in dirs and not only_test else none
            fits(len(test[0]) + len(paths) + len(val[0]))
            if "test" not in done:
                done["test"] = self._decode("test", *test)
            if only_test:
                return
            if "val" in dirs:
                decoded = self._decode("train", paths, labels), self._decode("val", *val)
                splits = dict(zip(("train", "val"), decoded, strict=True))
            else:
                splits = self._decode_split(paths, labels, torch.arange(len(paths)))
        else:
            paths, labels = self._files(self.root)
            self._drawn = self._listing(paths)
            test_idx, train_idx = _test_split(len(paths), self.test_size, self.seed, str(self.root))
            only = only_test and len(train_idx)  # (test_size=1: the test images are all)
            fits((len(test_idx) if "test" not in done else 0) + (0 if only else len(train_idx)))
            if "test" not in done:
                done["test"] = self._decode("test", paths, labels, test_idx)
            if only:
                return
            if len(train_idx):
                splits = self._decode_split(paths, labels, train_idx)
            else:  # test_size=1: every image is a test (and validation) image
                images, targets = done["test"]
                splits = {"train": (images[:0], targets[:0]), "val": (images, targets)}
                self.files.update(train=[], val=self.files["test"])
        if splits["train"][0].shape[0] == 0 and self.test_size < 1:
            raise ValueError(f"{self.root}: no training images with {self.extensions}")
        self._splits = {**splits, "test": done["test"]}
        self._measured = None

    def _decode_split(self, paths: list[Path], labels: list[int], pick: Tensor) -> dict[str, Split]:
        # The files at `pick` split into training and validation as _split splits images, each
        # decoded into its own tensor: splitting the decoded images would hold them twice.
        train, val = self._split_indices(len(pick))
        return {
            split: self._decode(split, paths, labels, pick[i])
            for split, i in (("train", train), ("val", val))
        }

    def _resolve_size(
        self, native: tuple[int, ...] | None, model: ModelSpec | None
    ) -> tuple[tuple[int, int], ResizeMode]:
        # The files were sized when decoded, so the batches only keep that size; the mode is
        # the one they were decoded with, so that the model records it ("pad" for a model
        # trained on padded images), predict_folder prepares new files alike, and the next
        # _storage() (which reads what the model records) agrees with the stored images.
        size, mode = super()._resolve_size(native, model)
        if native is not None and self._decoded is not None and tuple(native) == size:
            mode = self._decoded[1]
        return size, mode

    def _loader(self, split: str, shuffle: bool) -> DataLoader[Any]:
        # Trainer.validate/test/fit(ckpt_path=...) restores the checkpoint after setup: for one
        # trained at another size (or padded), decode again rather than resample twice.
        if self._stale() or split not in self._splits:  # decode (again) what this loader needs
            self.setup("test" if split == "test" else None)
        loader = super()._loader(split, shuffle)
        loader.dataset.files = self.files[split]  # type: ignore[attr-defined]  # PredictionCSV's
        return loader

    def _stale(self) -> bool:
        # Whether the files were decoded otherwise than the attached model now takes them.
        return bool(self._splits) and self._model() is not None and self._storage() != self._decoded

    def dataset_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the training images, on the 0-1 scale (measured once).

        With ``test_size=1``, of the test images: there are no others.

        Example:
            >>> mean, std = ImageFolder("flowers", image_size=64).dataset_stats()  # doctest: +SKIP
        """
        if self._measured is not None:
            return self._measured
        if "train" not in self._splits:  # not decoded (setup("test")) until needed here
            self._load()
            self._move_to_device()
        images = self._splits["train" if self._splits["train"][0].numel() else "test"][0]
        self._measured = _channel_stats(images)
        return self._measured

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled training batches (see the base class); none with ``test_size=1``."""
        if self.test_size == 1 and self.layout == "classes":
            raise ValueError(
                f"{self.root}: test_size=1 holds every image out for testing, so there is "
                "nothing to train on; expected test_size < 1 to train (or a train/ folder)"
            )
        return super().train_dataloader()

    def val_dataloader(self) -> DataLoader[Any] | list[Any]:
        """Validation batches (see the base class), decoded here after ``setup("test")``."""
        if self._splits and "val" not in self._splits:
            self.setup()
        return super().val_dataloader()

    def test_dataloader(self) -> DataLoader[Any]:
        """Test batches; needs a ``test/`` folder in the train/val/test layout."""
        if self._splits and self._splits["test"][0].shape[0] == 0:
            if self.layout == "split":
                test = self._split_dirs.get("test")
                why = f"; {test} holds images without labels: classify them with predict_folder"
                raise ValueError(
                    f"{self.root} has no test folder of class folders (test/<class>/...), so "
                    "there is no test set"
                    + ("" if test is None else f"{why} (classic-cnns predict-folder)")
                )
            raise ValueError(
                f"{self.root}: test_size={self.test_size!r} leaves no test images; expected "
                "test_size > 0 (a share of the images) to test on"
            )
        return super().test_dataloader()
