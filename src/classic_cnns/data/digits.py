"""scikit-learn's bundled handwritten digits: 1,797 real 8x8 images, fully offline."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from classic_cnns._checks import is_number
from classic_cnns.data.base import InMemoryDataModule
from classic_cnns.data.sampling import _test_split

__all__ = ["Digits"]


class Digits(InMemoryDataModule):
    """The UCI optical handwritten digits as shipped inside scikit-learn (no download).

    1,797 grey 8x8 images of the digits 0-9 with 17 grey levels. A seeded ``test_size``
    share is the test set; ``val_size`` of the rest is held out for validation.
    Images are upsampled (bilinear) to the model's input size by default.

    Args:
        batch_size: Images per batch; ``None``: the model's recipe (see the base class).
        image_size: Output ``(H, W)``; ``None`` follows the model (32x32 for LeNet-5).
        resize: ``"pad"`` or ``"resize"``; ``None`` pads by up to 4 pixels a side, else resizes.
        val_size: Fraction or count of the training images used for validation.
        test_size: Fraction of all images used for testing (default 0.2, i.e. 359 images).
        seed: Seed of both splits.
        num_workers: DataLoader worker processes.
        data_on_device: Keep the dataset on the accelerator (see ``InMemoryDataModule``).
        mixup_alpha: MixUp for training batches (see ``InMemoryDataModule``); 0: off.
        cutmix_alpha: CutMix for training batches (see ``InMemoryDataModule``); 0: off.

    Example:
        >>> from classic_cnns import Digits
        >>> dm = Digits()
        >>> dm.setup("fit")
        >>> dm.num_classes, len(dm.train_dataloader().dataset)
        (10, 1294)
    """

    num_classes = 10
    class_names = tuple(str(d) for d in range(10))
    # Mean and standard deviation of all 1,797 images as stored (0-255), scaled to [0, 1].
    mean = (0.3053,)
    std = (0.3759,)
    default_batch_size = 64

    def __init__(
        self,
        batch_size: int | None = None,
        image_size: int | tuple[int, int] | None = None,
        resize: Literal["pad", "resize"] | None = None,
        val_size: int | float = 0.1,
        test_size: float = 0.2,
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
        if not is_number(test_size) or not 0 < test_size < 1:
            raise ValueError(f"test_size must be a fraction in (0, 1); got {test_size!r}")
        self.test_size = test_size

    def load_splits(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Load the bundled digits, scale 0-16 to 0-255 and split off the test set.

        Example:
            >>> [t.shape[0] for t in Digits().load_splits()]  # 1,797 digits, a fifth to test
            [1438, 1438, 359, 359]
        """
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = torch.from_numpy(bunch.images * (255 / 16)).round().to(torch.uint8)
        images = images.unsqueeze(1)  # (N, 1, 8, 8)
        labels = torch.from_numpy(bunch.target).long()
        test, train = _test_split(len(labels), self.test_size, self.seed, "Digits")
        return images[train], labels[train], images[test], labels[test]
