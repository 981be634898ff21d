"""Shared datamodules: uint8 tensors in memory, converted per batch on the device."""

from classic_cnns.data.base import InMemoryDataModule, TensorBatches
from classic_cnns.data.digits import Digits
from classic_cnns.data.mnist import MNIST, FashionMNIST, read_idx

__all__ = ["MNIST", "Digits", "FashionMNIST", "InMemoryDataModule", "TensorBatches", "read_idx"]
