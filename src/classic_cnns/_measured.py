"""Test accuracies the package's own training reached on the MNIST-10k protocol.

Each was measured on a 2-core CPU with the README's command (``classic-cnns fit --model
<name> --data MNIST --data.protocol 10k --data.val_size 0``, seed 0) and the model's recipe
(batch size, 32 px padding, optimizer and schedule), with the epochs, optimizer and peak
learning rate recorded here; the README's model table shows them, and the models without an
entry say "not measured yet".
"""

from __future__ import annotations

from typing import NamedTuple

__all__: list[str] = []


class Measured(NamedTuple):
    """One MNIST-10k run: test accuracy in percent and its recipe."""

    accuracy: float
    epochs: int
    optimizer: str
    lr: float


MNIST10K: dict[str, Measured] = {
    "lenet5": Measured(98.30, 12, "sgd", 0.1),
    "lenet5_bn": Measured(99.10, 12, "sgd", 0.1),
    "lenet5_modern": Measured(98.90, 12, "sgd", 0.1),
    "nin": Measured(97.45, 5, "adamw", 0.003),  # 2026-11-30, after the loader's own generator
    "resnet20": Measured(99.35, 15, "sgd", 0.1),
}
