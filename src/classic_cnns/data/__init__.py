"""Shared datamodules: uint8 tensors in memory, converted per batch on the device."""

from classic_cnns.data.base import InMemoryDataModule, TensorBatches
from classic_cnns.data.cifar import CIFAR10, CIFAR100
from classic_cnns.data.digits import Digits
from classic_cnns.data.folder import ImageFolder, TransferDataModule
from classic_cnns.data.mnist import MNIST, FashionMNIST, read_idx

__all__ = [
    "CIFAR10",
    "CIFAR100",
    "MNIST",
    "Digits",
    "FashionMNIST",
    "ImageFolder",
    "InMemoryDataModule",
    "TensorBatches",
    "TransferDataModule",
    "read_idx",
]
