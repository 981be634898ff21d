"""Shared datamodules: uint8 tensors in memory, converted per batch on the device.

:class:`Preprocessing` is the one owner of how images become a network's input (statistics,
size, padding or resizing); :class:`ModelSpec` is what a datamodule reads from the model it
feeds.
"""

from classic_cnns.data.base import InMemoryDataModule, TensorBatches
from classic_cnns.data.cifar import CIFAR10, CIFAR100
from classic_cnns.data.digits import Digits
from classic_cnns.data.folder import ImageFolder
from classic_cnns.data.mnist import MNIST, FashionMNIST, read_idx
from classic_cnns.data.preprocessing import ModelSpec, Preprocessing
from classic_cnns.data.transfer import TransferDataModule

__all__ = [
    "CIFAR10",
    "CIFAR100",
    "MNIST",
    "Digits",
    "FashionMNIST",
    "ImageFolder",
    "InMemoryDataModule",
    "ModelSpec",
    "Preprocessing",
    "TensorBatches",
    "TransferDataModule",
    "read_idx",
]
