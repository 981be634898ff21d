"""The shared base of the fine-tuning datamodules (``ImageFolder``, CIFAR-10 and CIFAR-100).

:class:`TransferDataModule` normalises as the weights the model starts from expect (the
pretrained weights' mean and std, or those the model's checkpoint records), and augments
training batches with a random crop and a horizontal flip on the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from classic_cnns._checks import check_flag, is_int
from classic_cnns.data.base import InMemoryDataModule
from classic_cnns.data.preprocessing import check_stats, normalization, random_crop_flip

__all__ = ["TransferDataModule"]


class TransferDataModule(InMemoryDataModule):
    """Base of the fine-tuning datamodules: weights' normalisation, on-device crop and flip.

    Normalisation (resolved at ``setup`` from the model being trained, and again when a
    loader is made, after ``ckpt_path``'s checkpoint has been restored), the first of
    (:func:`~classic_cnns.data.preprocessing.normalization`):

    1. ``mean``/``std`` when given;
    2. the mean and std the model's weights expect, as its ``data_config`` records them (if
       there is one value per channel): a pretrained model's are the weights' own
       (``create_model(..., pretrained=True)`` sets them: ImageNet's, averaged over RGB for
       other channel counts), a trained model's those it was trained with
       (``load_from_checkpoint``, ``load_model``, or ``create_model`` with ``checkpoint_path``);
    3. the dataset's own statistics.

    Training batches (only those) get :func:`random_crop_flip`.

    Args:
        batch_size: Images per batch; ``None``: the model's recipe (see the base class).
        image_size: Output ``(H, W)``; ``None`` follows the model being trained, as in the
            base class: for these 32-pixel images, the size its recipe gives for them (32
            for the CIFAR networks, 96 or 224 for the ImageNet ones).
        resize: ``"pad"`` or ``"resize"``; ``None`` pads by up to 4 pixels a side, else resizes.
        val_size: Fraction or count of the training images held out for validation.
        seed: Seed of the splits.
        num_workers: DataLoader worker processes.
        data_on_device: Keep the dataset on the accelerator (see ``InMemoryDataModule``).
        augment: Random crop and flip for training batches (``Trainer.fit``'s; in a loop of
            your own, those passed with ``training=True``, see :meth:`on_after_batch_transfer`).
        crop_padding: Zero padding of the random crop, in pixels of the stored images;
            ``None`` takes 1/8 of their size (4 for 32x32).
        mean: Per-channel mean (0-1 scale) to normalise with, instead of the default.
        std: Per-channel standard deviation, with ``mean``.
        mixup_alpha: MixUp for training batches (see ``InMemoryDataModule``); 0: off.
        cutmix_alpha: CutMix for training batches (see ``InMemoryDataModule``); 0: off.

    Example:
        >>> from classic_cnns.data.cifar import CIFAR10
        >>> CIFAR10(download=False).mean
        (0.4914, 0.4822, 0.4465)
    """

    def __init__(
        self,
        batch_size: int | None = None,
        image_size: int | tuple[int, int] | None = None,
        resize: Literal["pad", "resize"] | None = None,
        val_size: int | float = 0.1,
        seed: int = 0,
        num_workers: int = 0,
        data_on_device: bool | None = None,
        augment: bool = True,
        crop_padding: int | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
    ) -> None:
        mix = {"mixup_alpha": mixup_alpha, "cutmix_alpha": cutmix_alpha}
        super().__init__(
            batch_size, image_size, resize, val_size, seed, num_workers, data_on_device, **mix
        )
        self._given_stats = check_stats(mean, std, self.in_channels)
        if crop_padding is not None and not is_int(crop_padding, 0):
            raise ValueError(
                f"crop_padding must be an int >= 0 (pixels) or None; got {crop_padding!r}"
            )
        check_flag("augment", augment)
        self.augment = augment
        self.crop_padding = crop_padding

    def dataset_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Mean and std of the dataset itself; by default the class attributes.

        Example:
            >>> from classic_cnns.data.cifar import CIFAR100
            >>> CIFAR100(download=False, mean=(0.5,) * 3, std=(0.5,) * 3).dataset_stats()
            ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
        """
        return type(self).mean, type(self).std

    def _resolve_stats(self) -> None:
        # Each setup: the model being trained may have changed.
        model = self._model()
        recorded = model.data_config if model is not None else None
        stats = normalization(self.in_channels, given=self._given_stats, recorded=recorded)
        self.mean, self.std = stats or self.dataset_stats()  # instance values shadow the class's

    def on_after_batch_transfer(
        self, batch: Any, dataloader_idx: int, *, training: bool | None = None
    ) -> Any:
        """Augment training batches (crop, flip) on the device, then convert and normalise.

        Training batches are a Trainer's (``trainer.training``), or those passed with
        ``training=True`` in a loop of your own (see the base class).

        Example:
            >>> from classic_cnns import ImageFolder  # doctest: +SKIP
            >>> dm = ImageFolder("flowers", image_size=64)  # doctest: +SKIP
            >>> dm.setup("fit")  # doctest: +SKIP
            >>> for batch in dm.train_dataloader():  # doctest: +SKIP
            ...     images, labels = dm.on_after_batch_transfer(batch, 0, training=True)
        """
        if isinstance(batch, Tensor):  # a lone input, as the base class converts it
            return super().on_after_batch_transfer(batch, dataloader_idx)
        images, labels = batch
        training = self._training(training)
        if self.augment and training and images.dtype == torch.uint8:
            padding = self.crop_padding
            if padding is None:
                padding = max(images.shape[-2:]) // 8
            images = random_crop_flip(images, padding)
        return super().on_after_batch_transfer((images, labels), dataloader_idx, training=training)
