"""The task's arguments, checked at the boundary, before anything is built.

``ImageClassifier.__init__`` resolves its training arguments from the model's recipe and
hands them here: each is checked against its range, and the error says what was expected
and what was given. The optimizer's settings are :mod:`classic_cnns.optim`'s to check.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

import torch

from classic_cnns._checks import check_flag, is_int, is_number, suggest
from classic_cnns._guard import NonFinitePolicy
from classic_cnns._warn import warn
from classic_cnns.nets._layers import WeightInit
from classic_cnns.optim import check_settings
from classic_cnns.registry import ModelInfo, list_models, model_info

__all__ = ["check_arguments", "check_teacher"]

_OPTIMIZER_SETTINGS = ("optimizer", "scheduler", "lr", "weight_decay", "momentum", "backbone_lr")


def warn_of_the_recipe_lr(info: ModelInfo, optimizer: Any, lr: Any) -> None:
    """Warn when another kind of optimizer than the recipe's would take the recipe's lr.

    SGD's learning rates are some 10-100x Adam's: LeNet-5's SGD 0.1 makes Adam diverge.

    Example:
        >>> import warnings
        >>> from classic_cnns import model_info
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_of_the_recipe_lr(model_info("lenet5"), "adam", None)
        >>> str(caught[0].message)[:52]
        "lr 0.1 is lenet5's recipe's for 'sgd'; 'adam' often "
    """
    recipe = info.recipe
    if lr is None and optimizer is not None and (optimizer == "sgd") != (recipe.optimizer == "sgd"):
        warn(
            f"lr {recipe.lr:g} is {info.name}'s recipe's for {recipe.optimizer!r}; "
            f"{optimizer!r} often needs another (SGD's are some 10-100x Adam's): pass lr"
        )


def warn_of_unused_momentum(info: ModelInfo, optimizer: Any, momentum: Any, scheduler: Any) -> None:
    """Warn when a ``momentum`` given (other than the recipe's) is not used: Adam and AdamW
    take none, and ``"onecycle"`` cycles SGD's and RMSprop's from 0.95 to 0.85 and back
    (:func:`classic_cnns.optim.make_scheduler`), whatever the optimizer was built with.
    ``optimizer`` and ``scheduler`` are the resolved ones (given, else the recipe's).

    Example:
        >>> import warnings
        >>> from classic_cnns import model_info
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_of_unused_momentum(model_info("lenet5"), "sgd", 0.5, "onecycle")
        >>> str(caught[0].message)[:60]
        'momentum=0.5 is not used: the one-cycle schedule cycles the '
    """
    if not (is_number(momentum) and momentum > 0 and momentum != info.recipe.momentum):
        return
    if optimizer in ("adam", "adamw"):
        warn(
            f"momentum={momentum:g} is not used: {optimizer!r} takes no momentum (its first "
            "moment's decay, beta1, is torch's 0.9, or cycled by the one-cycle schedule)"
        )
    elif scheduler == "onecycle" and optimizer in ("sgd", "rmsprop"):
        warn(
            f"momentum={momentum:g} is not used: the one-cycle schedule cycles the momentum "
            "from 0.95 to 0.85 and back (scheduler 'cosine', 'step' or 'none' keeps it)"
        )


def check_arguments(cls: type, info: ModelInfo, kwargs: Mapping[str, Any]) -> None:
    """Raise a ``ValueError`` naming the first of the task's arguments that is out of range.

    ``kwargs`` holds the values the task resolved (its recipe's where none was given); the
    message says what was expected and what was given.

    Example:
        >>> from classic_cnns import LeNet5, model_info
        >>> check_arguments(LeNet5, model_info("resnet20"), {})
        Traceback (most recent call last):
        ...
        ValueError: LeNet5 builds 'lenet' models ['lenet5', 'lenet5_bn', 'lenet5_modern']; ...
    """
    family = getattr(cls, "family", None)
    if family is not None and info.family != family:
        members = [n for n in list_models() if model_info(n).family == family]
        raise ValueError(
            f"{cls.__name__} builds {family!r} models {members}; got arch={info.name!r}, "
            f"which is a {info.family!r} model: use create_model({info.name!r}) instead "
            f"(on the command line: --model {info.name})"
        )
    # A misspelled task argument lands among the network's options (None: a family class's
    # default for an option its member lacks): say what is taken.
    if unknown := [
        k for k, v in kwargs.get("options", {}).items() if v is not None and k not in info.options
    ]:
        raise TypeError(
            f"{cls.__name__} got an unexpected argument {unknown[0]!r}: it takes the task's "
            f"arguments (lr, momentum, optimizer, ...) and {info.name}'s network options "
            f"({', '.join(info.options) or 'none'})"
        )
    if kwargs["num_classes"] == 0:  # timm's headless model
        raise ValueError(
            "num_classes must be an int of at least 2; got 0. The task trains a classifier; for "
            "features, take the plain network and remove its head: model.net.reset_classifier(0)"
        )
    if not is_int(kwargs["num_classes"], 2):
        raise ValueError(f"num_classes must be an int of at least 2; got {kwargs['num_classes']!r}")
    if not is_int(kwargs["in_channels"], 1):
        raise ValueError(f"in_channels must be a positive int; got {kwargs['in_channels']!r}")
    check_settings(**{k: kwargs[k] for k in _OPTIMIZER_SETTINGS})
    smoothing, aux = kwargs["label_smoothing"], kwargs["aux_loss_weight"]
    if not (is_number(smoothing) and 0 <= smoothing < 1):
        raise ValueError(f"label_smoothing must be in [0, 1); got {smoothing!r}")
    if not (is_number(aux) and aux >= 0):
        raise ValueError(f"aux_loss_weight must be a finite number >= 0; got {aux!r}")
    for name, allowed in (("nonfinite", NonFinitePolicy), ("weight_init", WeightInit)):
        if kwargs[name] not in get_args(allowed):
            raise ValueError(f"{name} must be one of {get_args(allowed)}; got {kwargs[name]!r}")
    loss, teacher = kwargs["loss"], kwargs["teacher"]
    if (loss == "kl_div") != (teacher is not None):
        raise ValueError(
            "loss='kl_div' (knowledge distillation) needs a teacher, and a teacher needs "
            f"loss='kl_div'; got loss={loss!r} and teacher={teacher!r}"
        )
    check_teacher(teacher, kwargs["teacher_weights"])
    check_flag("channels_last", kwargs["channels_last"])
    if not isinstance(kwargs["compile"], bool | dict):
        raise ValueError(
            "compile must be a bool or a dict of torch.compile arguments; got "
            f"{kwargs['compile']!r}"
        )
    takes = [*inspect.signature(torch.compile).parameters][1:]  # after the model
    given = kwargs["compile"] if isinstance(kwargs["compile"], dict) else {}
    unknown = [k for k in given if k not in takes]
    if unknown:  # found now, not when fit compiles the network
        raise ValueError(
            f"compile has {unknown[0]!r}, which torch.compile does not take; expected keys "
            f"among {takes}." + suggest(str(unknown[0]), takes)
        )


def check_teacher(teacher: str | None, weights: str | None, loading: bool = False) -> None:
    """Refuse a distillation teacher given by its registered name without its trained
    ``weights``, and ``weights`` for a teacher that is not a name (a file holds its own):
    what is known before a file is read. ``loading``: also one that is neither a name nor a
    file (``FileNotFoundError``), which is looked for when the teacher is loaded.

    Example:
        >>> check_teacher("lenet5", None)
        Traceback (most recent call last):
        ...
        ValueError: teacher='lenet5' is a model name; give its trained weights ...
    """
    named = teacher in list_models()
    if named and weights is None:
        raise ValueError(
            f"teacher={teacher!r} is a model name; give its trained weights as "
            "teacher_weights (a .ckpt or .safetensors file): an untrained teacher teaches "
            "nothing"
        )
    if weights is not None and not named:
        raise ValueError(
            "teacher_weights is for a teacher given by its registered name (a file holds its "
            f"own weights); got teacher={teacher!r} and teacher_weights={weights!r}."
            + suggest(str(teacher), list_models())
        )
    if loading and not named and not Path(str(teacher)).is_file():
        raise FileNotFoundError(
            f"teacher={teacher!r} is neither a registered model name nor a file; expected a "
            ".ckpt or .safetensors file, or a name with teacher_weights."
            + suggest(str(teacher), list_models())
        )
