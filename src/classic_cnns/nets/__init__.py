"""Pure ``nn.Module`` networks, one file per architecture family.

Importing this package registers every built-in architecture.
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
