"""Convolution helpers shared by the ResNet and DenseNet files.

Both families use bias-free convolutions because a batch norm follows (ResNet) or
precedes the next one (DenseNet) and its shift makes a bias redundant. The helpers
are torchvision's ``conv3x3``/``conv1x1`` so state dicts stay interchangeable.
"""

from __future__ import annotations

from torch import nn

__all__ = ["conv1x1", "conv3x3"]


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """A bias-free 3x3 convolution with padding 1: keeps the size at stride 1, halves it at 2.

    Example:
        >>> import torch
        >>> conv3x3(3, 16, stride=2)(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 16, 16, 16])
    """
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """A bias-free 1x1 convolution: mixes channels (and subsamples at stride 2).

    Example:
        >>> import torch
        >>> conv1x1(64, 256)(torch.zeros(1, 64, 8, 8)).shape
        torch.Size([1, 256, 8, 8])
    """
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)
