"""The LightningModule class of each architecture family.

Each class is a thin subclass of :class:`~classic_cnns.task.ImageClassifier`: it names
its family, picks the default architecture and declares the family's own network
arguments, which reach the network builder unchanged.
"""

from __future__ import annotations

from typing import Any

from classic_cnns.task import ImageClassifier

__all__ = ["LeNet5"]


class LeNet5(ImageClassifier):
    """LeNet-5 (LeCun et al., 1998) as a LightningModule.

    Args:
        arch: ``"lenet5"`` (tanh, average pooling, the paper's table), ``"lenet5_modern"``
            (ReLU, max pooling) or ``"lenet5_bn"`` (with batch normalisation).
        num_classes: Number of classes.
        in_channels: Input channels.
        **kwargs: Training arguments of :class:`~classic_cnns.task.ImageClassifier`.

    Example:
        >>> import torch
        >>> from classic_cnns import LeNet5
        >>> model = LeNet5(num_classes=10, in_channels=1)
        >>> model(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
    """

    family = "lenet"

    def __init__(
        self, arch: str = "lenet5", num_classes: int = 10, in_channels: int = 1, **kwargs: Any
    ) -> None:
        super().__init__(arch=arch, num_classes=num_classes, in_channels=in_channels, **kwargs)
