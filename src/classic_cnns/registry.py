"""The model registry: every architecture is registered once, by name, with its facts.

A registered entry is a *builder*: a keyword-only function that returns a pure
``nn.Module`` network, stored with the facts of its paper, its input sizes, its parameter
count, its training recipe and its pretrained weights (:class:`WeightsInfo`). The registry
builds nothing but the plain network (:meth:`ModelInfo.build_net`);
:func:`classic_cnns.hub.create_model` wraps that network in the LightningModule of its
family (``LeNet5``, ``ResNet``, ...), as timm's ``create_model`` wraps its builders.
"""

from __future__ import annotations

import fnmatch
import functools
import inspect
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
import torchvision.models as tvm
from torch import nn

from classic_cnns._checks import as_plain, check_flag, is_int, is_number, suggest
from classic_cnns.recipes import Recipe, default_recipe

__all__ = [
    "ModelInfo",
    "WeightsInfo",
    "list_models",
    "model_info",
    "register_model",
    "torchvision_weights",
]

Builder = Callable[..., nn.Module]
B = TypeVar("B", bound=Builder)

_REGISTRY: dict[str, ModelInfo] = {}
# The task's (ImageClassifier's) arguments: it would take an option of one of these names
# itself, so no network may have one (tests/test_registry.py checks the list).
_TASK_ARGUMENTS = frozenset(
    {"arch", "num_classes", "in_channels", "optimizer", "lr", "weight_decay", "momentum"}
    | {"scheduler", "label_smoothing", "loss", "temperature", "alpha", "teacher"}
    | {"teacher_weights", "aux_loss_weight", "channels_last", "compile", "weight_init"}
    | {"nonfinite", "backbone_lr"}
)


@dataclass(frozen=True)
class WeightsInfo:
    """Facts about one set of pretrained weights.

    Attributes:
        name: The weights' name in torchvision, e.g. ``"ResNet18_Weights.IMAGENET1K_V1"``.
        url: Download address; torch.hub caches the file under ``torch.hub.get_dir()``.
        sha256_prefix: The leading hex digits of the file's sha256, part of the file name,
            which ``torch.hub.load_state_dict_from_url(check_hash=True)`` verifies.
        dataset: Dataset the weights were trained on.
        num_classes: Classes of the pretrained classifier.
        top1: Top-1 accuracy (%) on the dataset's validation set, as torchvision reports it.
        top5: Top-5 accuracy (%).
        num_params: Parameters of the network the weights belong to.
        crop_size: Side of the square input the weights were evaluated on (224).
        resize_size: Shorter side the evaluation resized images to before the centre crop.
        interpolation: Resizing interpolation of the evaluation transform, e.g. ``"bilinear"``.
        mean: Per-channel mean of the input normalisation (RGB, on the 0-1 scale).
        std: Per-channel standard deviation of the input normalisation.
        recipe: Link to the training recipe.
        untrained: Modules whose tensors in the file were not trained (torchvision's
            GoogLeNet auxiliary heads): they load, with a warning.

    Example:
        >>> from classic_cnns import model_info
        >>> w = model_info("resnet18").weights
        >>> w.url, w.sha256_prefix, w.top1
        ('https://download.pytorch.org/models/resnet18-f37072fd.pth', 'f37072fd', 69.758)
        >>> w.normalization(1)
        ((0.449,), (0.226,))
    """

    name: str
    url: str
    sha256_prefix: str
    dataset: str
    num_classes: int
    top1: float
    top5: float
    num_params: int
    crop_size: int
    resize_size: int
    interpolation: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    recipe: str
    untrained: tuple[str, ...] = ()

    @property
    def input_size(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the evaluation input: ``(3, crop_size, crop_size)``.

        Example:
            >>> from classic_cnns import model_info
            >>> model_info("resnet18").weights.input_size
            (3, 224, 224)
        """
        return (len(self.mean), self.crop_size, self.crop_size)

    def normalization(self, in_channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Mean and std for inputs of ``in_channels`` channels, matching the adapted weights.

        For other channel counts than the weights' own, every channel gets the average of
        the RGB values (as timm does for grey inputs), which suits :func:`adapt_input_conv`:
        it gives each input channel a share of all three RGB filters.

        Example:
            >>> from classic_cnns import model_info
            >>> model_info("resnet18").weights.normalization(3)[0]
            (0.485, 0.456, 0.406)
        """
        if in_channels == len(self.mean):
            return self.mean, self.std
        mean = round(sum(self.mean) / len(self.mean), 4)
        std = round(sum(self.std) / len(self.std), 4)
        return (mean,) * in_channels, (std,) * in_channels


def torchvision_weights(name: str) -> WeightsInfo | None:
    """The facts of torchvision's default ImageNet weights for ``name``, or ``None``.

    Read from torchvision's ``Weights`` enum (``get_model_weights(name).DEFAULT``): the
    URL, the sha256 prefix in its file name, ``meta["_metrics"]`` and the preset transform.

    Example:
        >>> from classic_cnns.registry import torchvision_weights
        >>> torchvision_weights("resnet50").name, torchvision_weights("resnet50").top1
        ('ResNet50_Weights.IMAGENET1K_V2', 80.858)
        >>> torchvision_weights("resnet20") is None
        True
    """
    if name not in tvm.list_models(module=tvm):
        return None
    weights = tvm.get_model_weights(name).DEFAULT
    match = torch.hub.HASH_REGEX.search(Path(weights.url).name)
    if match is None:  # torchvision names every file <arch>-<sha256 prefix>.pth
        raise RuntimeError(f"no sha256 prefix in the file name of {weights.url}")
    preset = weights.transforms()
    mean, std = tuple(preset.mean), tuple(preset.std)
    if name == "googlenet":
        # torchvision's GoogLeNet was ported from TensorFlow: with these weights it turns on
        # transform_input, which maps ImageNet-normalised inputs to (x - 0.5) / 0.5. Our
        # network has no such step, so the normalisation the weights expect is 0.5 / 0.5.
        mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    (dataset, metrics), *_ = weights.meta["_metrics"].items()
    return WeightsInfo(
        name=f"{type(weights).__name__}.{weights.name}",
        url=weights.url,
        sha256_prefix=match.group(1),
        dataset=dataset,
        num_classes=len(weights.meta["categories"]),
        top1=float(metrics["acc@1"]),
        top5=float(metrics["acc@5"]),
        num_params=int(weights.meta["num_params"]),
        crop_size=int(preset.crop_size[0]),
        resize_size=int(preset.resize_size[0]),
        interpolation=preset.interpolation.value,
        mean=mean,
        std=std,
        recipe=str(weights.meta.get("recipe", "")),
        untrained=("aux1", "aux2") if name == "googlenet" else (),  # torchvision: "NOT pretrained"
    )


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

    @property
    def options(self) -> dict[str, inspect.Parameter]:
        """The network arguments the builder takes besides ``num_classes`` and ``in_channels``.

        Each argument is declared once, in the network class: a builder that takes
        ``**kwargs`` hands them to the class it returns (as torchvision's builders do), and
        the class's keyword-only arguments are its options; the arguments before the ``*``
        describe the variant, which the builder fixes. A builder's own keyword arguments are
        options too. Annotations are resolved to types. The family's LightningModule takes
        these (``ResNet(small_input=True)``, ``--model.small_input true``), and so does
        :meth:`build_net`.

        Example:
            >>> from classic_cnns import model_info
            >>> list(model_info("resnet18").options)
            ['zero_init_residual', 'small_input']
            >>> model_info("resnet18").options["small_input"].default
            False
            >>> model_info("resnet20").options["small_input"].default  # a CIFAR network
            True
            >>> model_info("lenet5").options
            {}
        """
        return dict(_options(self.builder))  # a copy: the cached one stays as read

    @property
    def network(self) -> type[nn.Module] | None:
        """The network class the builder returns, from its return annotation (``None`` if unnamed).

        Example:
            >>> from classic_cnns import model_info
            >>> model_info("resnet20").network.__name__
            'ResNetNet'
        """
        return _network(self.builder)

    def build_net(self, **kwargs: Any) -> nn.Module:
        """Build the plain ``nn.Module`` network, with defaults from this entry.

        Raises:
            ValueError: for an argument that is neither ``num_classes``, ``in_channels``
                nor one of :attr:`options`, or an option whose value its annotation does not
                allow (a ``bool`` option takes ``True`` or ``False``; a ``dropout`` a number
                in [0, 1]). Numpy numbers and 0-d tensors are taken as plain Python ones.
            TypeError: if the builder returns something else than an ``nn.Module``.

        Example:
            >>> from classic_cnns import model_info
            >>> net = model_info("lenet5").build_net(num_classes=10, in_channels=1)
            >>> sum(p.numel() for p in net.parameters())
            61706
            >>> model_info("lenet5").build_net(small_input=True)
            Traceback (most recent call last):
            ...
            ValueError: lenet5 takes no network argument 'small_input'; its arguments are ...
            >>> model_info("resnet20").build_net(zero_init_residual="no")
            Traceback (most recent call last):
            ...
            ValueError: zero_init_residual must be True or False; got 'no'
        """
        options = _options(self.builder)
        takes = [*_SIZES, *options]
        unknown = [k for k in kwargs if k not in takes]
        if unknown:
            raise ValueError(
                f"{self.name} takes no network argument {unknown[0]!r}; its arguments are {takes}"
            )
        # Sizes are checked below (and by the network); options against their annotations.
        kwargs = {
            k: _checked(k, v, getattr(options.get(k), "annotation", None))
            for k, v in kwargs.items()
        }
        kwargs.setdefault("num_classes", self.num_classes)
        channels = kwargs.setdefault("in_channels", self.input_size[0])
        if not is_int(channels, 1):
            raise ValueError(f"in_channels must be an int >= 1; got {channels!r}")
        net = self.builder(**kwargs)
        if not isinstance(net, nn.Module):
            raise TypeError(
                f"{self.name}'s builder {getattr(self.builder, '__qualname__', self.builder)!r} "
                f"must return an nn.Module network; it returned {net!r}"
            )
        return net


def _checked(name: str, value: Any, annotation: Any) -> Any:
    # A network option as its annotation says, in plain Python (see as_plain).
    value = as_plain(value)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(annotation):
            return value
        kinds = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = kinds[0] if len(kinds) == 1 else None  # several: not checked here
    if annotation is bool:
        check_flag(name, value)
    if annotation is int and not is_int(value):
        raise ValueError(f"{name} must be an int; got {value!r}")
    if annotation is float and "drop" in name:  # dropout, drop_rate: a probability
        if not (is_number(value) and 0 <= value <= 1):
            raise ValueError(f"{name} must be a probability in [0, 1]; got {value!r}")
        return float(value)
    if annotation is float:
        if not is_number(value):
            raise ValueError(f"{name} must be a finite number; got {value!r}")
        return float(value)
    if annotation is str and not isinstance(value, str):
        raise ValueError(f"{name} must be a str; got {value!r}")
    if typing.get_origin(annotation) is typing.Literal and value not in typing.get_args(annotation):
        raise ValueError(f"{name} must be one of {typing.get_args(annotation)}; got {value!r}")
    return value


_SIZES = ("num_classes", "in_channels")


@functools.cache
def _options(builder: Builder) -> dict[str, inspect.Parameter]:
    # The builder's keyword arguments and, where it takes **kwargs, the keyword-only
    # arguments of the network class it returns.
    params = inspect.signature(builder).parameters.values()
    hints = _type_hints(builder)
    keyword = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    found = [
        p.replace(annotation=hints.get(p.name, p.annotation)) for p in params if p.kind in keyword
    ]
    net = _network(builder)
    if net is not None and any(p.kind is p.VAR_KEYWORD for p in params):
        net_hints = _type_hints(net.__init__)
        own = {p.name for p in found}  # the builder's default wins (CIFAR's small_input=True)
        found += [
            p.replace(annotation=net_hints.get(p.name, p.annotation))
            for p in inspect.signature(net.__init__).parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.name not in own
        ]
    return {
        p.name: p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in found
        if p.name not in _SIZES
    }


@functools.cache
def _network(builder: Builder) -> type[nn.Module] | None:
    returned = _type_hints(builder).get("return")
    return returned if isinstance(returned, type) and issubclass(returned, nn.Module) else None


def _type_hints(function: Callable[..., Any]) -> dict[str, Any]:
    # A user's builder may name types that cannot be resolved here: keep its annotations.
    try:
        return typing.get_type_hints(function)
    except (NameError, TypeError):
        return {}


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

    The builder must accept the keyword arguments ``num_classes`` and ``in_channels``; its
    other keyword arguments (with ``**kwargs``: the keyword-only arguments of the network
    class it returns) are the model's :attr:`ModelInfo.options`.
    ``num_params`` is declared rather than computed so that listing the zoo never
    builds a 100-million-parameter network; the test suite checks every declaration.
    ``weights`` describes pretrained weights for ``pretrained=True``; the built-in
    networks whose layout is torchvision's get torchvision's without declaring them.
    ``recipe`` is the default training setting; without one, the built-in recipe of the
    name or the family (:func:`~classic_cnns.recipes.default_recipe`) applies.

    Raises:
        ValueError: for a name that is not a non-empty str or that is registered already
            (names are compared ignoring case, as :func:`list_models` matches them), sizes
            that are not positive ints, a ``year``, ``num_params`` (0 allowed) or
            ``num_classes`` (at least 2) that is not, or an option named like an argument of
            the task (``lr``, ...). (A member of a family with a class of its own,
            ``"resnet"``, ..., takes only the options of the family's built-in networks
            through that class; ``create_model`` says so for others.)
        TypeError: for a builder that is not callable or does not take ``num_classes`` and
            ``in_channels``, a ``family``, ``paper`` or ``url`` that is not a non-empty str,
            ``weights`` that are not a :class:`WeightsInfo`, or a ``recipe`` that is not a
            :class:`Recipe` (whose fields are checked when it is made).

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
        key = _check_entry(builder, getattr(builder, "__name__", None) if name is None else name)
        _check_sizes("input_size", input_size, "(C, H, W)")
        _check_sizes("min_input_size", min_input_size, "(H, W)")
        if any(m > s for m, s in zip(min_input_size, input_size[1:], strict=True)):
            raise ValueError(
                f"min_input_size {tuple(min_input_size)} exceeds input_size's (H, W) "
                f"{tuple(input_size[1:])}: the network would refuse its own input"
            )
        _check_facts(family=family, paper=paper, url=url, year=year, num_params=num_params,
                     num_classes=num_classes)  # fmt: skip
        _check_options(key, builder)
        if recipe is not None and not isinstance(recipe, Recipe):  # its fields check themselves
            raise TypeError(f"recipe must be a classic_cnns.recipes.Recipe or None; got {recipe!r}")
        if weights is not None and not isinstance(weights, WeightsInfo):
            raise TypeError(f"weights must be a WeightsInfo or None; got {weights!r}")
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


def _check_entry(builder: object, name: object) -> str:
    # A new entry's builder and name (a str unique ignoring case, as list_models matches).
    if not callable(builder):
        raise TypeError(
            f"register_model decorates a function that builds the network; got {builder!r}"
        )
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty str (pass name=...); got {name!r}")
    same = [n for n in _REGISTRY if n.lower() == name.lower()]
    if same:
        raise ValueError(
            f"a model named {same[0]!r} is registered already (names are compared ignoring "
            f"case); pick another name than {name!r}"
        )
    params = inspect.signature(builder).parameters.values()
    takes = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if not any(p.kind is p.VAR_KEYWORD for p in params) and not takes >= set(_SIZES):
        raise TypeError(
            f"{name}'s builder must take the keyword arguments num_classes and in_channels; "
            f"it takes {sorted(takes)}"
        )
    return name


def _check_sizes(what: str, sizes: object, shape: str) -> None:
    length = shape.count(",") + 1
    if not (
        isinstance(sizes, tuple | list)
        and len(sizes) == length
        and all(is_int(v, 1) for v in sizes)
    ):
        raise ValueError(f"{what} must be {shape}, {length} ints >= 1; got {sizes!r}")


def _check_facts(**facts: object) -> None:
    # The listing's columns: a wrong type failed later, in model_table or create_model.
    least = {"year": 1, "num_params": 0, "num_classes": 2}
    for key, value in facts.items():
        if key in least and not is_int(value, least[key]):
            raise ValueError(f"{key} must be an int of at least {least[key]}; got {value!r}")
        if key not in least and (not isinstance(value, str) or not value):
            raise TypeError(f"{key} must be a non-empty str; got {value!r}")


def _check_options(name: str, builder: Builder) -> None:
    # Options the task would take as its own arguments would never reach the network.
    options = list(_options(builder))
    clash = [o for o in options if o in _TASK_ARGUMENTS]
    if clash:
        raise ValueError(
            f"{name}'s network options {clash} are named like arguments of the task "
            "(ImageClassifier), which would take them: give them other names"
        )


def _builtin_weights(name: str, builder: Builder) -> WeightsInfo | None:
    # Only the package's own networks have torchvision's layout; a user's network that
    # happens to share a torchvision name must not be handed torchvision's weights.
    if not getattr(builder, "__module__", "").startswith("classic_cnns.nets."):
        return None
    return torchvision_weights(name)


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names in natural order (as timm's: ``resnet18`` before ``resnet101``),
    optionally filtered by a shell wildcard (case-insensitive).

    Raises:
        TypeError: for a ``pattern`` that is not a string.

    Example:
        >>> from classic_cnns import list_models
        >>> list_models("lenet5*")
        ['lenet5', 'lenet5_bn', 'lenet5_modern']
        >>> list_models("resnet1*")
        ['resnet18', 'resnet101', 'resnet110', 'resnet152']
    """
    names = sorted(
        _REGISTRY, key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)]
    )
    if pattern is None:
        return names
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a str such as 'resnet*', or None; got {pattern!r}")
    return [n for n in names if fnmatch.fnmatchcase(n.lower(), pattern.lower())]


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered model.

    Raises:
        ValueError: if ``name`` is not registered; the message suggests close names.
        TypeError: if ``name`` is not a string.

    Example:
        >>> from classic_cnns import model_info
        >>> model_info("lenet5").year
        1998
    """
    if not isinstance(name, str):
        raise TypeError(f"expected a registered model's name (a str); got {name!r}")
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown model {name!r}: expected one of the {len(_REGISTRY)} registered "
            f"names (see classic_cnns.list_models()).{suggest(name, list(_REGISTRY))}"
        )
    return _REGISTRY[name]


def saved_model_info(name: str, source: str) -> ModelInfo:
    """The :class:`ModelInfo` of the model a file records (``source`` names the file).

    Raises:
        ValueError: for a name not registered in this process (a model of one's own whose
            ``register_model`` has not run here), saying to import what registers it.

    Example:
        >>> saved_model_info("toy_net", "m.ckpt")
        Traceback (most recent call last):
        ...
        ValueError: m.ckpt holds a 'toy_net' model, which is not registered here: ...
    """
    if isinstance(name, str) and name not in _REGISTRY:
        raise ValueError(
            f"{source} holds a {name!r} model, which is not registered here: import the module "
            "that registers it (its register_model) before loading the file; "
            f"classic_cnns.list_models() lists the {len(_REGISTRY)} registered"
        )
    return model_info(name)
