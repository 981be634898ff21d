"""classic-cnns: the classic convolutional networks as PyTorch Lightning modules.

Example:
    >>> from classic_cnns import LeNet5, list_models
    >>> "lenet5" in list_models("lenet*")
    True
"""

from classic_cnns import nets as _nets  # noqa: F401  (registers the built-in networks)
from classic_cnns._version import __version__
from classic_cnns.data import (
    CIFAR10,
    CIFAR100,
    MNIST,
    Digits,
    FashionMNIST,
    ImageFolder,
    InMemoryDataModule,
)
from classic_cnns.finetune import UnfreezeBackbone
from classic_cnns.hub import create_model, load_model
from classic_cnns.inspection import (
    ModelSummary,
    conv2d_output_size,
    conv2d_params,
    linear_params,
    pool2d_output_size,
    summary,
)
from classic_cnns.metrics import classification_metrics
from classic_cnns.models import VGG, AlexNet, DenseNet, GoogLeNet, LeNet5, NiN, ResNet
from classic_cnns.registry import ModelInfo, WeightsInfo, list_models, model_info, register_model
from classic_cnns.task import ImageClassifier

__all__ = [
    "CIFAR10",
    "CIFAR100",
    "MNIST",
    "VGG",
    "AlexNet",
    "DenseNet",
    "Digits",
    "FashionMNIST",
    "GoogLeNet",
    "ImageClassifier",
    "ImageFolder",
    "InMemoryDataModule",
    "LeNet5",
    "ModelInfo",
    "ModelSummary",
    "NiN",
    "ResNet",
    "UnfreezeBackbone",
    "WeightsInfo",
    "__version__",
    "classification_metrics",
    "conv2d_output_size",
    "conv2d_params",
    "create_model",
    "linear_params",
    "list_models",
    "load_model",
    "model_info",
    "pool2d_output_size",
    "register_model",
    "summary",
]
