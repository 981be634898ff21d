"""In-memory datamodules: uint8 tensors on the host, conversion per batch on the device.

Small datasets (MNIST's 70,000 training and test images take 55 MB as uint8) fit in
memory many times over, so the datamodules here hold them as one ``uint8`` tensor per
split and hand out whole batches by indexing that tensor. The float conversion, padding or
resizing and normalisation run once per *batch* (no per-sample PIL round trip), after the
batch reaches its device, in ``on_after_batch_transfer``, by the datamodule's
:class:`~classic_cnns.data.preprocessing.Preprocessing`.

A datamodule settles what was left to the model in ``setup``: it reads the model being
trained (``trainer.lightning_module``) through the typed ``ModelSpec`` protocol
(:mod:`~classic_cnns.data.preprocessing`: its recipe, input size and data configuration).

Under a distributed strategy (DDP, ``ddp_spawn``) every process holds the whole dataset
as uint8, training and test images (MNIST 55 MB, CIFAR-10 184 MB), and transforms its own
batches on its own device; the samplers shard the batches: training as
``DistributedSampler`` does (padded to equal shards, one seeded order per epoch),
evaluation without padding, so that each image is counted once and the synchronised
metrics equal a single process's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from classic_cnns._checks import as_plain, check_flag, is_int, is_number
from classic_cnns.data.preprocessing import ModelSpec, Preprocessing, ResizeMode, _is_size
from classic_cnns.data.sampling import (
    EpochShuffleSampler,
    ResumableDataLoader,
    evaluation_sampler,
)

__all__ = ["InMemoryDataModule", "TensorBatches"]

Split = tuple[Tensor, Tensor]


class TensorBatches(Dataset[tuple[Tensor, Tensor]]):
    """A dataset of ``(uint8 images, int64 labels)`` that returns whole batches at once.

    ``DataLoader`` calls ``__getitems__`` with a batch of indices, so a batch costs one
    tensor index instead of ``batch_size`` item lookups and a ``torch.stack``.

    Example:
        >>> import torch
        >>> ds = TensorBatches(torch.zeros(5, 1, 8, 8, dtype=torch.uint8), torch.arange(5))
        >>> images, labels = ds.__getitems__([0, 3])
        >>> images.shape, labels.tolist()
        (torch.Size([2, 1, 8, 8]), [0, 3])
    """

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"images and labels must have the same length; got {images.shape[0]} "
                f"images and {labels.shape[0]} labels"
            )
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        if self.images.device.type != "cpu":
            # The data lives on the accelerator: send only the indices, from pinned memory
            # and without waiting (a copy from pageable memory would wait for the device).
            idx = idx.pin_memory().to(self.images.device, non_blocking=True)
        return self.images[idx], self.labels[idx]


def _check_alphas(mixup_alpha: Any, cutmix_alpha: Any) -> None:
    for name, alpha in (("mixup_alpha", mixup_alpha), ("cutmix_alpha", cutmix_alpha)):
        if not is_number(alpha) or alpha < 0:
            raise ValueError(f"{name} must be a finite number >= 0 (0: off); got {alpha!r}")


def _how_to_get(download: bool, by_hand: str) -> str:
    # The end of a "files missing" error: with download=True, only prepare_data() was skipped.
    if download:
        return f"Call prepare_data() first (Trainer.fit does), which downloads them, or {by_hand}"
    return f"Pass download=True, or {by_hand}"


def _keep_batch(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    # __getitems__ already built the batch; a module-level function pickles for workers.
    return batch


class InMemoryDataModule(L.LightningDataModule):
    """Base class of the datamodules that hold a whole dataset as uint8 tensors.

    Subclasses set ``num_classes``, ``class_names``, ``mean`` and ``std`` and implement
    :meth:`load_splits`, which returns ``(train_images, train_labels, test_images,
    test_labels)`` with images as ``uint8`` ``(N, C, H, W)`` and labels as ``int64``.

    Args:
        batch_size: Images per batch. ``None`` takes the batch size of the model's recipe
            (``model_info(name).recipe``) when a model is being trained, else
            ``default_batch_size``; resolved in ``setup``.
        image_size: Output ``(H, W)`` (an int means square). ``None`` follows the model being
            trained: the size its weights were trained at, where its ``data_config`` records
            one (a checkpoint's); else, for images of at most 32 pixels (MNIST,
            Fashion-MNIST, CIFAR), the size its recipe gives for such data (32 for LeNet-5
            and the CIFAR networks, 96 or 224 for the ImageNet networks, as *Dive into Deep
            Learning* trains them), else its ``input_size``; without a model, the dataset's
            own size.
        resize: How to reach ``image_size``: ``"pad"`` with background (zeros) around the
            image, as LeCun padded 28x28 MNIST to 32x32; or ``"resize"`` (bilinear, to cover
            the size, centre-cropped; see :func:`~classic_cnns.data.preprocessing.to_size`).
            ``None`` pads when the image grows by at most 4 pixels a side, else resizes;
            a model whose weights were trained on resized images (its ``data_config``)
            gets them resized when ``image_size`` is left to it too.
        val_size: Part of the training set held out for validation, as a fraction in
            ``[0, 1)`` or a count; 0 means no validation.
        seed: Seed of the train/validation split (the split is the same in every run).
        num_workers: DataLoader worker processes (0 is fastest for in-memory data).
        data_on_device: Keep the whole uint8 dataset on the accelerator the model trains on,
            moved once in ``setup``, so that no batch is copied from the host. ``None``
            (default) does so on a CUDA GPU when the data takes under a quarter of its free
            memory (Fashion-MNIST: 55 MB); on other accelerators only with ``True``; on the
            CPU it changes nothing.
        mixup_alpha: MixUp for training batches (Zhang et al. 2018): each image blends with
            the one before it in the batch, ``lam ~ Beta(alpha, alpha)``, and so do their
            labels, which become soft labels ``(N, C)`` (torchvision's ``v2.MixUp``); 0
            (default) turns it off.
        cutmix_alpha: CutMix likewise (Yun et al. 2019, ``v2.CutMix``): a box of the other
            image, its area ``1 - lam``. With both, each batch gets one of the two at random.
            Both act on ``Trainer.fit``'s training batches only; in a loop of your own, on
            those passed with ``training=True`` (see :meth:`on_after_batch_transfer`).

    Example:
        >>> from classic_cnns import Digits
        >>> dm = Digits(batch_size=64, image_size=32)
        >>> dm.setup("fit")
        >>> images, labels = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
        >>> images.shape, images.dtype
        (torch.Size([64, 1, 32, 32]), torch.float32)
    """

    num_classes: int
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    default_batch_size: int = 128
    # What the resize to the image size works on (Preprocessing.resize_dtype): the float
    # batch here; ImageFolder resizes each file as it decodes it.
    _resize_dtype: Literal["float", "uint8"] = "float"

    def __init__(
        self,
        batch_size: int | None = None,
        image_size: int | tuple[int, int] | None = None,
        resize: ResizeMode | None = None,
        val_size: int | float = 0.1,
        seed: int = 0,
        num_workers: int = 0,
        data_on_device: bool | None = None,
        *,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
    ) -> None:
        super().__init__()
        # A numpy number or a 0-d tensor (a sweep's, np.int64(64)) as its Python value.
        batch_size, val_size, seed, num_workers, mixup_alpha, cutmix_alpha = map(
            as_plain, (batch_size, val_size, seed, num_workers, mixup_alpha, cutmix_alpha)
        )
        if batch_size is not None and not is_int(batch_size, 1):
            raise ValueError(f"batch_size must be a positive int or None; got {batch_size!r}")
        if not (is_int(seed, 0) and seed < 2**64):
            raise ValueError(f"seed must be an int (the seed of the split); got {seed!r}, expected "
                             "one in [0, 2**64)")  # fmt: skip
        if resize not in ("pad", "resize", None):
            raise ValueError(f"resize must be 'pad', 'resize' or None; got {resize!r}")
        if not is_number(val_size) or val_size < 0 or (val_size >= 1 and val_size % 1):
            raise ValueError(
                f"val_size must be a fraction in [0, 1) or a whole count; got {val_size!r}"
            )
        if isinstance(val_size, float) and val_size == 1:
            raise ValueError(
                "val_size=1.0 is ambiguous: a fraction must be below 1 (all of the training set "
                "would leave nothing to train on); for one validation image pass the int 1"
            )
        if not is_int(num_workers, 0):
            raise ValueError(f"num_workers must be an int >= 0 (0: batches made in the main "
                             f"process); got {num_workers!r}")  # fmt: skip
        check_flag("data_on_device", data_on_device, none=True)
        _check_alphas(mixup_alpha, cutmix_alpha)
        if image_size is not None and not _is_size(image_size):
            raise ValueError(
                f"image_size must be an int or (H, W) of positive ints, or None; got {image_size!r}"
            )
        # None: the model's recipe decides in setup(); until then, the class's default.
        self._batch_size_given = batch_size is not None
        self._batch_size: int = self.default_batch_size if batch_size is None else batch_size
        self.image_size = image_size
        self.resize = resize
        self.val_size = val_size
        self.seed = seed
        self.num_workers = num_workers
        self.data_on_device = data_on_device
        self.mixup_alpha, self.cutmix_alpha = float(mixup_alpha), float(cutmix_alpha)
        self._mixer: tuple[tuple[float, float, int], v2.Transform] | None = None
        self._splits: dict[str, Split] = {}
        # How batches become the network's input; settled in setup(), when the model is known.
        self.preprocessing: Preprocessing | None = None
        self._native: tuple[int, ...] | None = None  # the stored images' size, after setup

    # -- what subclasses provide -------------------------------------------------
    def load_splits(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Return ``(train_images, train_labels, test_images, test_labels)``.

        Images ``uint8`` ``(N, C, H, W)`` with ``C == len(mean)``, labels integer ``(N,)``;
        ``setup`` refuses anything else, naming the split.

        Example:
            >>> from classic_cnns import Digits
            >>> train_images, train_labels, test_images, test_labels = Digits().load_splits()
            >>> train_images.dtype, tuple(train_images.shape[1:]), test_labels.dtype
            (torch.uint8, (1, 8, 8), torch.int64)
        """
        raise NotImplementedError

    # -- facts ---------------------------------------------------------------------
    @property
    def in_channels(self) -> int:
        """Channels of the images this datamodule yields."""
        return len(self.mean)

    @property
    def has_test_set(self) -> bool | None:
        """Whether ``setup`` found test images (an ``ImageFolder`` without ``test/`` has none).

        ``None`` until ``setup`` has loaded the data in this process: under ``ddp_spawn`` the
        launching process never does, only the processes it starts.

        Example:
            >>> from classic_cnns import Digits
            >>> dm = Digits()
            >>> print(dm.has_test_set)
            None
            >>> dm.setup("fit")
            >>> dm.has_test_set
            True
        """
        if not self._splits:
            return None
        return self._splits["test"][1].numel() > 0

    @property
    def batch_size(self) -> int:
        """Images per batch; setting it (as Lightning's batch-size ``Tuner`` does) fixes it,
        where a ``batch_size=None`` datamodule would take the model's recipe at ``setup``."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        if not is_int(value, 1):
            raise ValueError(f"batch_size must be a positive int; got {value!r}")
        self._batch_size, self._batch_size_given = value, True

    @property
    def resize_mode(self) -> ResizeMode:
        """How batches reach the image size: ``"pad"`` or ``"resize"`` (known after ``setup``)."""
        if self.preprocessing is None:
            return self.resize or "pad"
        return self.preprocessing.resize

    @property
    def dims(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the batches after the batch transform (known after ``setup``)."""
        if self.preprocessing is None:
            raise RuntimeError("dims is known after setup(); call dm.setup('fit') first")
        return (self.in_channels, *self.preprocessing.image_size)

    @property
    def data_config(self) -> dict[str, Any]:
        """What a model trained on these batches records: the preprocessing and class names.

        ``ImageClassifier`` copies it at fit start and keeps it in its checkpoints, so that
        ``predict_folder`` and export prepare new images the same way. Empty before ``setup``.

        Example:
            >>> from classic_cnns import Digits
            >>> dm = Digits(image_size=32)
            >>> dm.setup("fit")
            >>> dm.data_config["image_size"], dm.data_config["resize"]
            ([32, 32], 'resize')
        """
        if self.preprocessing is None:
            return {}
        names = getattr(self, "class_names", None)
        extra = {} if names is None else {"class_names": [str(n) for n in names]}
        return {**self.preprocessing.config(), **extra}

    # -- Lightning hooks -----------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Load the data once and split train/validation with the fixed seed."""
        if not self._splits:
            train_x, train_y, test_x, test_y = self._checked(self.load_splits())
            self._splits = self._split(train_x, train_y)
            self._splits["test"] = (test_x, test_y)
        self._native = tuple(self._splits["test"][0].shape[-2:])
        self._follow_model(self._native)
        self._move_to_device()

    def _checked(self, loaded: Any) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        # What load_splits returned, checked here: images of another dtype or rank would
        # skip the normalisation (only uint8 is converted) or fail deep in a batch.
        where = f"{type(self).__name__}.load_splits()"
        if not isinstance(loaded, tuple | list) or len(loaded) != 4:
            raise TypeError(
                f"{where} must return (train_images, train_labels, test_images, test_labels); "
                f"got {type(loaded).__name__}"
                + (f" of {len(loaded)}" if isinstance(loaded, tuple | list) else "")
            )
        channels = self.in_channels
        for split, images, labels in (("training", *loaded[:2]), ("test", *loaded[2:])):
            if not isinstance(images, Tensor) or not isinstance(labels, Tensor):
                raise TypeError(
                    f"{where}: the {split} images and labels must be tensors; got "
                    f"{type(images).__name__} and {type(labels).__name__}"
                )
            if images.dtype != torch.uint8:
                raise TypeError(
                    f"{where}: the {split} images must be uint8 (0-255), which the batches are "
                    f"converted and normalised from; got {images.dtype}"
                )
            if images.shape[0] == 0:  # (before val_size, which would be blamed for it)
                raise ValueError(f"{where}: the {split} split is empty; expected 1 image or more")
            if images.ndim != 4 or images.shape[1] != channels:
                raise ValueError(
                    f"{where}: the {split} images must be (N, {channels}, H, W), as many "
                    f"channels as mean has values; got shape {tuple(images.shape)}"
                )
            kind = labels.dtype
            if kind.is_floating_point or kind.is_complex or kind == torch.bool:
                raise TypeError(
                    f"{where}: the {split} labels must be class indices of an integer dtype "
                    f"(int64); got {kind}"
                )
            if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
                raise ValueError(
                    f"{where}: the {split} labels must be (N,), one per image "
                    f"({images.shape[0]}); got shape {tuple(labels.shape)}"
                )
        return loaded[0], loaded[1], loaded[2], loaded[3]

    def _move_to_device(self) -> None:
        # Put every split on the accelerator the Trainer runs on, once (see data_on_device).
        strategy = getattr(self.trainer, "strategy", None)
        device = getattr(strategy, "root_device", torch.device("cpu"))
        if device.type == "cpu" or self.data_on_device is False:
            return
        size = sum(t.numel() * t.element_size() for split in self._splits.values() for t in split)
        if self.data_on_device is None and device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if size > free // 4:
                return
        elif self.data_on_device is None:
            return  # other accelerators: only when asked
        self._splits = {name: (x.to(device), y.to(device)) for name, (x, y) in self._splits.items()}

    def _model(self) -> ModelSpec | None:
        # The model being trained, when it says what the datamodule needs (see ModelSpec).
        model = self.trainer.lightning_module if self.trainer is not None else None
        return model if isinstance(model, ModelSpec) else None

    def _follow_model(self, native: tuple[int, ...] | None) -> None:
        # Settle what was left to the model being trained: the batch size, the image size and
        # the way to reach it (the model's recipe and input size; see the Args).
        model = self._model()
        if not self._batch_size_given and model is not None:
            self._batch_size = model.recipe.batch_size
        size, mode = self._resolve_size(native, model)
        self._resolve_stats()
        preprocessing = Preprocessing(self.mean, self.std, size, mode, 1.0, self._resize_dtype)
        if preprocessing != self.preprocessing:  # an equal one keeps its tensors on the device
            self.preprocessing = preprocessing

    def _resolve_stats(self) -> None:
        # Settle ``mean`` and ``std`` before the preprocessing is built; the class's own here.
        pass

    def _split_settings(self) -> dict[str, Any]:
        # What decides which images train, validate and test, as plain values: ExactResume
        # records them, and a fit resumed from its checkpoint must split the data the same way.
        test_size = getattr(self, "test_size", None)  # Digits', ImageFolder's
        flags = {"seed": self.seed, "val_size": self.val_size, "test_size": test_size}
        return {k: v if is_int(v) else float(v) for k, v in flags.items() if v is not None}

    def _split(self, images: Tensor, labels: Tensor) -> dict[str, Split]:
        train, val = self._split_indices(images.shape[0])
        return {"train": (images[train], labels[train]), "val": (images[val], labels[val])}

    def _split_indices(self, n: int) -> tuple[Tensor, Tensor]:
        # The training and the validation indices of n images, each sorted (which keeps the
        # in-memory tensors contiguous-ish and the split readable).
        n_val = int(self.val_size) if self.val_size >= 1 else round(n * self.val_size)
        if n_val >= n:
            raise ValueError(
                f"val_size={self.val_size!r} leaves no training images ({n} in the training set)"
            )
        if n_val == 0 and self.val_size > 0:
            raise ValueError(
                f"val_size={self.val_size!r} of {n} training images rounds to no validation "
                "image; expected a larger share, a count, or 0 for no validation"
            )
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        return order[n_val:].sort().values, order[:n_val].sort().values

    def _resolve_size(
        self, native: tuple[int, ...] | None, model: ModelSpec | None
    ) -> tuple[tuple[int, int], ResizeMode]:
        # The output size and how to reach it (pad or resize, when not given); native: the
        # images' own size, None when not known yet.
        size: Any = self.image_size
        recorded = (model.data_config or {}) if model is not None and size is None else {}
        if size is None:
            size = recorded.get("image_size")  # what its weights were trained at
        if size is None:
            small = model.recipe.small_image_size if model is not None else None
            if small is not None and native is not None and max(native) <= 32:
                size = small
            else:
                size = tuple(model.input_size[-2:]) if model is not None else native
        if not _is_size(size):  # a model's own record (its data_config) may be malformed
            what = "the model's data_config['image_size'] must be an int or (H, W) of ints > 0"
            raise ValueError(f"{what}; got {size!r} (pass image_size to the datamodule instead)")
        size = (size, size) if isinstance(size, int) else tuple(size)
        mode: ResizeMode = self.resize or "pad"
        if native is not None and self.resize is None:
            grow = (size[0] - native[0], size[1] - native[1])
            mode = "pad" if min(grow) >= 0 and max(grow) <= 8 else "resize"
            if recorded.get("resize") == "resize":  # the weights saw resized images
                mode = "resize"
        if native is not None and mode == "pad" and (size[0] < native[0] or size[1] < native[1]):
            raise ValueError(
                f"resize='pad' cannot shrink {native[0]}x{native[1]} images to "
                f"{size[0]}x{size[1]}; use resize='resize'"
            )
        return size, mode  # type: ignore[return-value]

    def _loader(self, split: str, shuffle: bool) -> DataLoader[Any]:
        if not self._splits:
            raise RuntimeError(f"call setup() before asking for the {split} dataloader")
        # Trainer.fit/validate/test(ckpt_path=...) restores the model's data_config after
        # setup: follow the size (and, fine-tuning, the normalisation) its weights expect.
        self._follow_model(self._native)
        images, labels = self._splits[split]
        dataset = TensorBatches(images, labels)
        kwargs: dict[str, Any] = {
            "batch_size": self.batch_size,
            "collate_fn": _keep_batch,
            # Worker processes cannot index tensors that live on an accelerator.
            "num_workers": self.num_workers if images.device.type == "cpu" else 0,
            "persistent_workers": self.num_workers > 0 and images.device.type == "cpu",
            # A loader draws its workers' base seed when it starts a pass; its own generator
            # keeps that draw off the global RNG, which augmentation and dropout use.
            "generator": torch.Generator().manual_seed(0),
        }
        shard = self._shard()
        if shuffle:
            # The order is a function of (torch.initial_seed(), epoch), not of the global RNG,
            # and the loader's position is saved in checkpoints: resuming is exact.
            if shard is None:
                sampler = EpochShuffleSampler(len(dataset))
            else:  # every process must draw the same order: rank 0's seed
                trainer, seed = self.trainer, torch.initial_seed()
                seed = seed if trainer is None else int(trainer.strategy.broadcast(seed, src=0))
                sampler = EpochShuffleSampler(len(dataset), seed, **shard)
            # An epoch that would end on a batch of one image ends before it: batch norm
            # cannot train on one image (timm drops every short training batch); the image
            # left out is another one each epoch.
            lone = len(sampler) > 1 and len(sampler) % self.batch_size == 1
            return ResumableDataLoader(dataset, sampler=sampler, drop_last=lone, **kwargs)
        if shard is not None:  # each image evaluated once, by one process
            return DataLoader(
                dataset, sampler=evaluation_sampler(dataset, split, **shard), **kwargs
            )
        return DataLoader(dataset, shuffle=False, **kwargs)

    def _shard(self) -> dict[str, int] | None:
        # {"num_replicas", "rank"} when a Trainer runs several processes (DDP), else None.
        trainer = self.trainer
        kwargs = trainer.distributed_sampler_kwargs if trainer is not None else None
        if not kwargs or kwargs.get("num_replicas", 1) <= 1:
            return None
        return {"num_replicas": int(kwargs["num_replicas"]), "rank": int(kwargs["rank"])}

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled training batches of uint8 images, resumable from a checkpoint.

        Epoch ``e`` visits the images in an order fixed by ``torch.initial_seed()`` (the
        seed of ``seed_everything``) and ``e``; see :mod:`classic_cnns.data.sampling`.
        """
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader[Any] | list[Any]:
        """Validation batches, or an empty list when ``val_size`` is 0 (no validation)."""
        if self._splits and self._splits["val"][0].shape[0] == 0:
            return []
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader[Any]:
        """Test batches, in file order."""
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader[Any]:
        """The test set, in file order, for ``Trainer.predict`` (as :meth:`test_dataloader`)."""
        return self.test_dataloader()

    def on_after_batch_transfer(
        self, batch: Any, dataloader_idx: int, *, training: bool | None = None
    ) -> Any:
        """Convert a uint8 batch on its device: to float, pad or resize, normalise; then
        MixUp or CutMix training batches when asked (``mixup_alpha``, ``cutmix_alpha``).

        Training batches are those of a Trainer's training loop (``trainer.training``): in a
        loop of your own, without a Trainer, a batch is augmented (mixed, and in a
        ``TransferDataModule`` cropped and flipped) only with ``training=True``. A lone tensor
        (the model summary's ``example_input_array``) is converted if it is uint8.

        Example:
            >>> from classic_cnns import Digits
            >>> dm = Digits(batch_size=8, mixup_alpha=0.2)
            >>> dm.setup("fit")
            >>> batch = next(iter(dm.train_dataloader()))
            >>> dm.on_after_batch_transfer(batch, 0, training=True)[1].shape  # mixed labels
            torch.Size([8, 10])
        """
        if isinstance(batch, Tensor):
            return self._to_float(batch)
        images, labels = batch
        images = self._to_float(images)
        if (self.mixup_alpha or self.cutmix_alpha) and self._training(training):
            return self._mix(images, labels)
        return images, labels

    def _training(self, training: bool | None) -> bool:
        # Training batches, the only ones augmented: as told, else a Trainer's training loop's.
        if training is None:
            return self.trainer is not None and self.trainer.training
        check_flag("training", training, none=True)
        return training

    @property
    def _mix(self) -> v2.Transform:
        # torchvision's MixUp/CutMix, built once per setting (about 70 us each), so that
        # alphas changed between fits take effect: lam is drawn on the host (no device
        # read); the labels become the soft labels (N, C) the loss takes.
        key = (self.mixup_alpha, self.cutmix_alpha, self.num_classes)
        if self._mixer is None or self._mixer[0] != key:
            _check_alphas(self.mixup_alpha, self.cutmix_alpha)
            n = self.num_classes
            mixes = [v2.MixUp(alpha=self.mixup_alpha, num_classes=n)] if self.mixup_alpha else []
            if self.cutmix_alpha:
                mixes.append(v2.CutMix(alpha=self.cutmix_alpha, num_classes=n))
            self._mixer = (key, mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes))
        return self._mixer[1]

    def _to_float(self, images: Tensor) -> Tensor:
        if images.dtype == torch.uint8:
            images = self.transform(images)
        # Lightning casts a batch to "bf16-true"'s or "64-true"'s dtype before this hook,
        # when it is still uint8, and the model summary's example input not at all: the
        # float images get the precision's dtype here.
        trainer = getattr(self, "trainer", None)
        return images if trainer is None else trainer.precision_plugin.convert_input(images)

    def transform(self, images: Tensor) -> Tensor:
        """The batch transform: uint8 ``(N, C, h, w)`` to normalised float ``(N, C, H, W)``.

        Runs :attr:`preprocessing`, which ``setup`` settles.

        Example:
            >>> import torch
            >>> from classic_cnns import Digits
            >>> dm = Digits(image_size=32)
            >>> dm.setup("fit")
            >>> dm.transform(torch.zeros(2, 1, 8, 8, dtype=torch.uint8)).shape
            torch.Size([2, 1, 32, 32])
        """
        if self.preprocessing is None:
            raise RuntimeError("call setup() before transforming batches")
        return self.preprocessing(images)
