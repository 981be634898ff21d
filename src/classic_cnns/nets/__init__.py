"""Pure ``nn.Module`` networks, one file per architecture family.

Importing this package registers every built-in architecture. Each family's module
(:mod:`~classic_cnns.nets.lenet`, ...) holds its network class and the builders that
:func:`classic_cnns.model_info` and :func:`classic_cnns.create_model` find by name.

Example:
    >>> import torch
    >>> from classic_cnns.nets import LeNet5Net, lenet
    >>> isinstance(lenet.lenet5(), LeNet5Net)
    True
    >>> LeNet5Net(num_classes=10)(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 10])
"""

from classic_cnns.nets import alexnet, densenet, googlenet, lenet, nin, resnet, vgg
from classic_cnns.nets.alexnet import AlexNetNet
from classic_cnns.nets.densenet import DenseNetNet
from classic_cnns.nets.googlenet import GoogLeNetNet
from classic_cnns.nets.lenet import LeNet5Net
from classic_cnns.nets.nin import NiNNet
from classic_cnns.nets.resnet import ResNetNet
from classic_cnns.nets.vgg import VGGNet

__all__ = [
    "AlexNetNet",
    "DenseNetNet",
    "GoogLeNetNet",
    "LeNet5Net",
    "NiNNet",
    "ResNetNet",
    "VGGNet",
    "alexnet",
    "densenet",
    "googlenet",
    "lenet",
    "nin",
    "resnet",
    "vgg",
]
