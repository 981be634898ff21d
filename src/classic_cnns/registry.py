"""The model registry: every architecture is registered once, by name, with its facts.

A registered entry is a *builder*: a keyword-only function that returns a pure
``nn.Module`` network. ``create_model`` wraps that network in the LightningModule of
its family (``LeNet5``, ``ResNet``, ...), so what users get back trains with a
``lightning.Trainer`` and still exposes the plain network as ``.net``.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from torch import nn

from classic_cnns.recipes import Recipe, default_recipe

if TYPE_CHECKING:
    from classic_cnns.task import ImageClassifier
    from classic_cnns.weights import WeightsInfo

__all__ = ["ModelInfo", "create_model", "list_models", "model_info", "register_model"]

Builder = Callable[..., nn.Module]
B = TypeVar("B", bound=Builder)

_REGISTRY: dict[str, ModelInfo] = {}
# family name -> LightningModule class; filled by ImageClassifier.__init_subclass__.
_FAMILIES: dict[str, type[ImageClassifier]] = {}


@dataclass(frozen=True)
class ModelInfo:
    """Facts about one registered architecture.

    Attributes:
        name: Registered name, e.g. ``"lenet5"``.
        family: Architecture family; selects the LightningModule class (``"lenet"``).
        paper: Title of the paper that introduced the architecture.
        year: Year of that paper.
        url: Link to the paper.
        input_size: Default input as ``(C, H, W)``.
        min_input_size: Smallest spatial input ``(H, W)`` the network accepts.
        num_classes: Default number of classes.
        num_params: Parameter count of the default configuration (``input_size[0]``
            channels, ``num_classes`` classes) as used for inference: auxiliary classifiers
            that exist only for training (GoogLeNet's ``aux1``/``aux2``) are not counted,
            as torchvision does not count them.
        builder: Function that builds the plain ``nn.Module`` network.
        weights: Pretrained weights that ``pretrained=True`` loads (source URL, checksum,
            ImageNet accuracy, preprocessing), or ``None`` when there are none. The built-in
            networks that torchvision also ships take these facts from torchvision's
            ``Weights`` enums.
        recipe: How the model trains from scratch by default (optimizer, learning rate,
            schedule, batch size, epochs, image size for small datasets); see
            :mod:`classic_cnns.recipes`.

    Example:
        >>> from classic_cnns import model_info
        >>> info = model_info("lenet5")
        >>> info.input_size, info.num_params, info.weights
        ((1, 32, 32), 61706, None)
        >>> model_info("resnet18").weights.top1
        69.758
    """

    name: str
    family: str
    paper: str
    year: int
    url: str
    input_size: tuple[int, int, int]
    min_input_size: tuple[int, int]
    num_classes: int
    num_params: int
    builder: Builder = field(repr=False, compare=False)
    weights: WeightsInfo | None = None
    recipe: Recipe = field(default_factory=Recipe)

    def build_net(self, **kwargs: Any) -> nn.Module:
        """Build the plain ``nn.Module`` network, with defaults from this entry.

        Example:
            >>> from classic_cnns import model_info
            >>> net = model_info("lenet5").build_net(num_classes=10, in_channels=1)
            >>> sum(p.numel() for p in net.parameters())
            61706
        """
        kwargs.setdefault("num_classes", self.num_classes)
        kwargs.setdefault("in_channels", self.input_size[0])
        return self.builder(**kwargs)


def register_model(
    *,
    family: str,
    paper: str,
    year: int,
    url: str,
    input_size: tuple[int, int, int],
    min_input_size: tuple[int, int],
    num_params: int,
    num_classes: int = 10,
    name: str | None = None,
    weights: WeightsInfo | None = None,
    recipe: Recipe | None = None,
) -> Callable[[B], B]:
    """Register a network builder under ``name`` (default: the function's name).

    The builder must accept the keyword arguments ``num_classes`` and ``in_channels``.
    ``num_params`` is declared rather than computed so that listing the zoo never
    builds a 100-million-parameter network; the test suite checks every declaration.
    ``weights`` describes pretrained weights for ``pretrained=True``; the built-in
    networks whose layout is torchvision's get torchvision's without declaring them.
    ``recipe`` is the default training setting; without one, the built-in recipe of the
    name or the family (:func:`~classic_cnns.recipes.default_recipe`) applies.

    Example:
        >>> from torch import nn
        >>> from classic_cnns import register_model
        >>> @register_model(family="toy", paper="A toy", year=2024, url="https://example.org",
        ...                 input_size=(1, 8, 8), min_input_size=(1, 1), num_params=650,
        ...                 name="toy_linear")
        ... def toy_linear(*, num_classes: int = 10, in_channels: int = 1) -> nn.Module:
        ...     return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))
    """

    def decorator(builder: B) -> B:
        key = name or builder.__name__
        if key in _REGISTRY:
            raise ValueError(f"a model named {key!r} is registered already; pick another name")
        if len(input_size) != 3 or len(min_input_size) != 2:
            raise ValueError(
                f"input_size must be (C, H, W) and min_input_size (H, W); "
                f"got {input_size!r} and {min_input_size!r}"
            )
        _REGISTRY[key] = ModelInfo(
            name=key,
            family=family,
            paper=paper,
            year=year,
            url=url,
            input_size=tuple(input_size),  # type: ignore[arg-type]
            min_input_size=tuple(min_input_size),  # type: ignore[arg-type]
            num_classes=num_classes,
            num_params=num_params,
            builder=builder,
            weights=weights if weights is not None else _builtin_weights(key, builder),
            recipe=recipe if recipe is not None else default_recipe(key, family),
        )
        return builder

    return decorator


def _builtin_weights(name: str, builder: Builder) -> WeightsInfo | None:
    # Only the package's own networks have torchvision's layout; a user's network that
    # happens to share a torchvision name must not be handed torchvision's weights.
    if not getattr(builder, "__module__", "").startswith("classic_cnns.nets."):
        return None
    from classic_cnns.weights import torchvision_weights

    return torchvision_weights(name)


def _ensure_loaded() -> None:
    # Importing the package registers the built-in networks and families; this keeps
    # `from classic_cnns.registry import create_model` working on its own too.
    import classic_cnns  # noqa: F401


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, sorted, optionally filtered by a shell wildcard.

    Example:
        >>> from classic_cnns import list_models
        >>> list_models("lenet5*")
        ['lenet5', 'lenet5_bn', 'lenet5_modern']
    """
    _ensure_loaded()
    names = sorted(_REGISTRY)
    if pattern is None:
        return names
    return [n for n in names if fnmatch.fnmatchcase(n, pattern.lower())]


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered model.

    Raises:
        ValueError: if ``name`` is not registered; the message suggests close names.

    Example:
        >>> from classic_cnns import model_info
        >>> model_info("lenet5").year
        1998
    """
    _ensure_loaded()
    if not isinstance(name, str) or name not in _REGISTRY:
        close = difflib.get_close_matches(str(name).lower(), _REGISTRY, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"unknown model {name!r}: expected one of the {len(_REGISTRY)} registered "
            f"names (see classic_cnns.list_models()).{hint}"
        )
    return _REGISTRY[name]


def family_class(family: str) -> type[ImageClassifier]:
    """The LightningModule class of a family (the generic ``ImageClassifier`` if none)."""
    _ensure_loaded()
    from classic_cnns.task import ImageClassifier

    return _FAMILIES.get(family, ImageClassifier)


def create_model(name: str, **kwargs: Any) -> ImageClassifier:
    """Create a registered model as a LightningModule ready for ``Trainer.fit``.

    Keyword arguments go to the family's LightningModule class: network arguments
    (``num_classes``, ``in_channels`` and family-specific ones) and training
    arguments (``optimizer``, ``lr``, ``scheduler``, ...). The plain network is ``.net``.
    With ``checkpoint_path`` (a ``.safetensors`` file from ``classic-cnns export`` or a
    Lightning ``.ckpt``), the hyperparameters the file records are the defaults of the
    arguments not given, and the network starts from its weights.

    Example:
        >>> import torch
        >>> from classic_cnns import create_model
        >>> model = create_model("lenet5", num_classes=10, in_channels=1)
        >>> model(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
    """
    info = model_info(name)
    cls = family_class(info.family)
    if kwargs.get("checkpoint_path"):
        from classic_cnns.weights import model_kwargs_from_file

        saved = model_kwargs_from_file(kwargs["checkpoint_path"])
        # A file of another architecture is refused, by name, when its weights are loaded.
        if saved.pop("arch", name) == name:
            accepted = _init_parameters(cls)
            kwargs = {**{k: v for k, v in saved.items() if k in accepted}, **kwargs}
    return cls(arch=name, **kwargs)


def _init_parameters(cls: type) -> set[str]:
    import inspect

    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None and klass.__module__.startswith("classic_cnns"):
            names |= set(inspect.signature(init).parameters)
    return names - {"self", "kwargs"}
