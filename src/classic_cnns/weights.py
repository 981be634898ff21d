"""Pretrained weights and weight files: what they are, where they come from, how they load.

Three jobs live here:

* **Facts.** :class:`WeightsInfo` describes a set of pretrained weights (source URL, the
  sha256 prefix torch.hub checks, ImageNet accuracy, preprocessing). The built-in networks
  that torchvision also ships (``alexnet``, ``vgg*``, ``googlenet``, ``resnet18``-``152``,
  ``densenet121``-``201``) get theirs from torchvision's ``Weights`` enums when they are
  registered (:func:`torchvision_weights`), so nothing is copied by hand.
* **Loading with adaptation.** :func:`load_pretrained` downloads through torch.hub (hash
  checked, cached, ``weights_only=True``) and :func:`load_into` puts any state dict into a
  network: the ``_orig_mod.`` prefix of ``torch.compile`` is handled, the first convolution
  is adapted to another number of input channels (:func:`adapt_input_conv`) and tensors
  whose shapes cannot fit (a head for another number of classes) stay freshly initialised,
  with a warning that names every key that was not loaded.
* **Files.** :func:`read_weights_file` reads a Lightning checkpoint, a ``.safetensors``
  file written by ``classic-cnns export`` or a plain state dict, and :func:`load_model`
  rebuilds the LightningModule a file describes.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import Tensor, nn

if TYPE_CHECKING:
    from classic_cnns.task import ImageClassifier

__all__ = [
    "WeightsFile",
    "WeightsInfo",
    "adapt_input_conv",
    "first_conv_name",
    "fit_checkpoint_state",
    "load_into",
    "load_model",
    "load_pretrained",
    "load_weights_file",
    "model_kwargs_from_file",
    "read_weights_file",
    "reconcile_state_dict",
    "torchvision_weights",
    "warn_not_loaded",
]

# The metadata keys of the .safetensors files that classic-cnns writes.
META_HPARAMS = "classic_cnns.hparams"
META_DATA = "classic_cnns.data"
META_VERSION = "classic_cnns.version"
# The key under which ImageClassifier keeps its data configuration in Lightning checkpoints.
DATA_CHECKPOINT_KEY = "classic_cnns_data"
# Hyperparameters that describe how a file was made, not what it holds: a model rebuilt
# from a file must neither download ImageNet weights nor read another file again.
_PROVENANCE = ("pretrained", "checkpoint_path")

_COMPILED = "_orig_mod."
_COUNTER = "num_batches_tracked"
# torchvision's DenseNet checkpoints predate the ban on '.' in module names and still call
# DenseLayer.norm1 "norm.1" (and so on); torchvision renames them with this pattern.
_OLD_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
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

    @property
    def input_size(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the evaluation input: ``(3, crop_size, crop_size)``."""
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
        >>> from classic_cnns.weights import torchvision_weights
        >>> torchvision_weights("resnet50").name, torchvision_weights("resnet50").top1
        ('ResNet50_Weights.IMAGENET1K_V2', 80.858)
        >>> torchvision_weights("resnet20") is None
        True
    """
    import torchvision.models as tvm

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
    )


# -- adapting state dicts ----------------------------------------------------------------


def adapt_input_conv(weight: Tensor, in_channels: int) -> Tensor:
    """Adapt first-convolution weights ``(O, C, kH, kW)`` to ``in_channels`` input channels.

    Every output channel keeps its response to a *grey* input (all channels equal): for
    fewer channels the filters are summed, channel ``c`` taking every filter ``k`` with
    ``k % in_channels == c`` (so 1 channel gets the sum of the RGB filters, as timm's
    ``adapt_input_conv`` does); for more, the filters are repeated in turn (R, G, B, R, ...)
    and each copy is divided by how many copies of it there are. When ``in_channels`` is a
    multiple of ``C`` that is timm's rescaling by ``C / in_channels``; timm also uses it for
    other counts (4 channels: ``[R, G, B, R] * 3/4``), which changes the grey response, so
    here the two copies of R get half each instead.

    Args:
        weight: The pretrained weights.
        in_channels: Input channels wanted.

    Returns:
        A new tensor ``(O, in_channels, kH, kW)`` of the same dtype.

    Example:
        >>> import torch
        >>> from classic_cnns.weights import adapt_input_conv
        >>> w = torch.randn(8, 3, 5, 5)
        >>> torch.allclose(adapt_input_conv(w, 1), w.sum(1, keepdim=True))
        True
        >>> torch.allclose(adapt_input_conv(w, 4).sum(1), w.sum(1), atol=1e-6)
        True
    """
    if weight.ndim != 4:
        raise ValueError(
            f"expected convolution weights (O, C, kH, kW); got shape {tuple(weight.shape)}"
        )
    if not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive int; got {in_channels!r}")
    source = weight.shape[1]
    if in_channels == source:
        return weight.clone()
    w = weight.float()
    if in_channels < source:
        out = torch.stack([w[:, c::in_channels].sum(1) for c in range(in_channels)], dim=1)
    else:
        copies = torch.tensor([len(range(k, in_channels, source)) for k in range(source)])
        index = torch.arange(in_channels) % source
        out = w[:, index] / copies[index].view(1, -1, 1, 1).to(w)
    return out.to(weight.dtype)


def first_conv_name(net: nn.Module) -> str | None:
    """Dotted name of the network's first ``nn.Conv2d`` (the one that sees the input).

    Example:
        >>> from classic_cnns import model_info
        >>> first_conv_name(model_info("googlenet").build_net())
        'conv1.conv'
    """
    return next((n for n, m in net.named_modules() if isinstance(m, nn.Conv2d)), None)


def _strip_compiled(key: str) -> str:
    # torch.compile wraps a module in OptimizedModule, which adds "_orig_mod." to its keys.
    return key.replace(_COMPILED, "")


def _describe(key: str, reason: str) -> str:
    return f"{key} ({reason})"


def reconcile_state_dict(
    own: Mapping[str, Tensor],
    state: Mapping[str, Tensor],
    *,
    first_conv: str | None = None,
) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Fit ``state`` to a module whose own state dict is ``own``, keeping ``own`` where it can't.

    Keys are matched with and without torch.compile's ``_orig_mod.`` part (either side may
    be compiled); ``first_conv`` (a key of ``own``) is adapted with :func:`adapt_input_conv`
    when only its input channels differ; a tensor of any other shape than ``own``'s, or
    missing from ``state``, is replaced by ``own``'s.

    Returns:
        A complete state dict for ``load_state_dict(strict=True)`` and ``{key: reason}`` for
        every key of either side that was not loaded (BatchNorm's ``num_batches_tracked``
        counters, which old torchvision files lack and which hold no weights, are not
        reported).

    Example:
        >>> import torch
        >>> own = {"fc.weight": torch.zeros(5, 4)}
        >>> state = {"_orig_mod.fc.weight": torch.ones(10, 4), "extra": torch.ones(1)}
        >>> merged, skipped = reconcile_state_dict(own, state)
        >>> merged["fc.weight"].sum().item(), sorted(skipped)
        (0.0, ['extra', 'fc.weight'])
    """
    by_plain = {_strip_compiled(k): k for k in own}
    merged = dict(own)
    loaded: set[str] = set()
    skipped: dict[str, str] = {}
    for key, value in state.items():
        target = by_plain.get(_strip_compiled(key))
        if target is None:
            if not key.endswith(_COUNTER):
                skipped[key] = "not in this network"
            continue
        want = own[target]
        if (
            target == first_conv
            and value.ndim == 4
            and value.shape[0] == want.shape[0]
            and value.shape[2:] == want.shape[2:]
            and value.shape[1] != want.shape[1]
        ):
            value = adapt_input_conv(value, want.shape[1])
        if value.shape != want.shape:
            skipped[target] = (
                f"shape {tuple(value.shape)} in the source, {tuple(want.shape)} here: kept fresh"
            )
            continue
        merged[target] = value.to(dtype=want.dtype)
        loaded.add(target)
    for key in own:
        if key not in loaded and key not in skipped and not key.endswith(_COUNTER):
            skipped[key] = "not in the source: kept fresh"
    return merged, skipped


def warn_not_loaded(skipped: Mapping[str, str], source: str, target: str) -> None:
    """Warn, naming every key, that some tensors of ``source`` did not load into ``target``."""
    if not skipped:
        return
    lines = "\n  ".join(_describe(k, r) for k, r in skipped.items())
    rank_zero_warn(
        f"{len(skipped)} key(s) not loaded from {source} into {target}:\n  {lines}",
        category=UserWarning,
    )


def load_into(net: nn.Module, state: Mapping[str, Tensor], *, source: str) -> dict[str, str]:
    """Load ``state`` into ``net`` as far as it fits (see :func:`reconcile_state_dict`).

    Warns once, naming each key, when anything was not loaded.

    Returns:
        ``{key: reason}`` for the keys that were not loaded.

    Example:
        >>> import torch
        >>> from classic_cnns import model_info
        >>> src = model_info("lenet5").build_net(num_classes=10)
        >>> dst = model_info("lenet5").build_net(num_classes=10)
        >>> load_into(dst, src.state_dict(), source="a LeNet-5")
        {}
        >>> torch.equal(dst.c1[0].weight, src.c1[0].weight)
        True
    """
    first = first_conv_name(net)
    merged, skipped = reconcile_state_dict(
        net.state_dict(), state, first_conv=None if first is None else f"{first}.weight"
    )
    net.load_state_dict(merged, strict=True)
    warn_not_loaded(skipped, source, type(net).__name__)
    return skipped


# -- pretrained weights --------------------------------------------------------------------


def _download_state_dict(url: str, progress: bool) -> dict[str, Tensor]:
    # torch.hub downloads into a temporary file, checks the sha256 prefix in the file name
    # and only then moves it into its cache, so an interrupted download is never used.
    return torch.hub.load_state_dict_from_url(  # type: ignore[no-any-return]
        url, map_location="cpu", progress=progress, check_hash=True, weights_only=True
    )


def load_pretrained(net: nn.Module, name: str, *, progress: bool = True) -> dict[str, str]:
    """Load the pretrained weights of registered model ``name`` into ``net``, adapting them.

    The file is downloaded once through torch.hub (checked against its sha256 prefix) and
    cached. ``net`` may have other input channels (the first convolution is adapted) and
    another number of classes (its freshly initialised head is kept); the warning lists
    every key that was not loaded.

    Raises:
        ValueError: if ``name`` has no pretrained weights.

    Example:
        >>> from classic_cnns import model_info
        >>> net = model_info("resnet18").build_net(num_classes=10, in_channels=1)
        >>> load_pretrained(net, "resnet18")  # doctest: +SKIP
        {'fc.weight': 'shape (1000, 512) in the source, (10, 512) here: kept fresh', ...}
    """
    from classic_cnns.registry import list_models, model_info

    info = model_info(name).weights
    if info is None:
        have = [n for n in list_models() if model_info(n).weights is not None]
        raise ValueError(
            f"{name} has no pretrained weights; pretrained=True works for {', '.join(have)}"
        )
    state = _rename_old_keys(_download_state_dict(info.url, progress))
    return load_into(net, state, source=f"{info.name} ({info.url})")


def _rename_old_keys(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    renamed = {}
    for key, value in state.items():
        m = _OLD_DENSENET_KEY.match(key)
        renamed[key if m is None else m.group(1) + m.group(2)] = value
    return renamed


# -- weight files --------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightsFile:
    """What a weights file holds, as :func:`read_weights_file` reads it.

    Attributes:
        state_dict: The network's tensors, keyed as in ``model.net.state_dict()``.
        hparams: The LightningModule's hyperparameters (empty for a plain state dict).
        data: The data configuration the model was trained with (``mean``, ``std``,
            ``image_size``, ``class_names``), when the file records it.

    Example:
        >>> from classic_cnns.weights import WeightsFile
        >>> WeightsFile({}, {"arch": "lenet5"}, {}).arch
        'lenet5'
    """

    state_dict: dict[str, Tensor]
    hparams: dict[str, Any]
    data: dict[str, Any]

    @property
    def arch(self) -> str | None:
        """The registered model name the file was saved from, if it says."""
        arch = self.hparams.get("arch")
        return arch if isinstance(arch, str) else None


def read_weights_file(path: str | os.PathLike[str]) -> WeightsFile:
    """Read a Lightning ``.ckpt``, a ``.safetensors`` file or a plain ``torch.save``d state dict.

    Everything is read with ``weights_only=True`` (no code runs from the file).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file holds none of these.

    Example:
        >>> from classic_cnns.weights import read_weights_file
        >>> read_weights_file("lenet5.safetensors").arch  # doctest: +SKIP
        'lenet5'
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    if path.suffix == ".safetensors":
        try:
            from safetensors import safe_open
        except ImportError as err:
            raise ImportError(
                f"reading {path} needs the safetensors package: pip install safetensors"
            ) from err
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iterator)
        return WeightsFile(
            state, json.loads(meta.get(META_HPARAMS, "{}")), json.loads(meta.get(META_DATA, "{}"))
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise ValueError(
            f"{path}: not a checkpoint torch.load(weights_only=True) can read ({err})"
        ) from err
    if isinstance(obj, Mapping) and "state_dict" in obj:
        # A Lightning checkpoint: the LightningModule's keys, the network's under "net.".
        plain = {_strip_compiled(k): v for k, v in obj["state_dict"].items()}
        state = {k.removeprefix("net."): v for k, v in plain.items() if k.startswith("net.")}
        hparams = dict(obj.get("hyper_parameters") or {})
        return WeightsFile(state, hparams, dict(obj.get(DATA_CHECKPOINT_KEY) or {}))
    if isinstance(obj, Mapping) and obj and all(isinstance(v, Tensor) for v in obj.values()):
        return WeightsFile(dict(obj), {}, {})
    raise ValueError(
        f"{path}: expected a Lightning checkpoint (a dict with 'state_dict'), a state dict of "
        f"tensors or a .safetensors file; got a {type(obj).__name__}"
    )


def load_weights_file(
    net: nn.Module, path: str | os.PathLike[str], *, arch: str | None = None
) -> dict[str, Any]:
    """Load the network weights of a file (see :func:`read_weights_file`) into ``net``.

    Args:
        net: The network.
        path: The file.
        arch: The registered name ``net`` was built as; a file that records another
            architecture is refused.

    Returns:
        The data configuration the file records (empty if none).

    Example:
        >>> from classic_cnns import model_info
        >>> net = model_info("lenet5").build_net()
        >>> load_weights_file(net, "lenet5.safetensors", arch="lenet5")  # doctest: +SKIP
        {'mean': [0.1307], 'std': [0.3081], 'image_size': [32, 32], 'class_names': [...]}
    """
    file = read_weights_file(path)
    if arch is not None and file.arch is not None and file.arch != arch:
        raise ValueError(
            f"{path} holds a {file.arch!r} network; got arch={arch!r}. Use "
            f"create_model({file.arch!r}, checkpoint_path={str(path)!r}) instead"
        )
    load_into(net, file.state_dict, source=str(path))
    return dict(file.data)


def fit_checkpoint_state(module: nn.Module, checkpoint: dict[str, Any]) -> None:
    """Make ``checkpoint["state_dict"]`` load into ``module`` with ``strict=True``, in place.

    For ``LightningModule.on_load_checkpoint``: keys of a ``torch.compile``d network
    (``_orig_mod.``) are matched, the first convolution of ``module.net`` is adapted to
    other input channels and tensors of other shapes (a head for other ``num_classes``)
    are replaced by the module's own, fresh ones; a warning names every key not loaded.

    Example:
        >>> from classic_cnns import LeNet5
        >>> ckpt = {"state_dict": LeNet5(num_classes=10).state_dict()}
        >>> fit_checkpoint_state(LeNet5(num_classes=5), ckpt)  # doctest: +SKIP
        UserWarning: 2 key(s) not loaded from the checkpoint into LeNet5: ...
    """
    state = checkpoint.get("state_dict")
    if state is None:
        return
    net = getattr(module, "net", None)
    first = first_conv_name(net) if isinstance(net, nn.Module) else None
    merged, skipped = reconcile_state_dict(
        module.state_dict(), state, first_conv=None if first is None else f"net.{first}.weight"
    )
    checkpoint["state_dict"] = merged
    warn_not_loaded(skipped, "the checkpoint", type(module).__name__)


def model_kwargs_from_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The hyperparameters a weights file records, less provenance and LightningCLI's own.

    ``pretrained`` and ``checkpoint_path`` are left out: a model rebuilt from the file must
    not download ImageNet weights or read yet another file.

    Example:
        >>> from classic_cnns.weights import model_kwargs_from_file
        >>> model_kwargs_from_file("lenet5.safetensors")  # doctest: +SKIP
        {'arch': 'lenet5', 'num_classes': 10, 'in_channels': 1, ...}
    """
    path = Path(path)
    if path.suffix == ".safetensors" and path.is_file():
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:  # the header only, not the tensors
            hparams = json.loads((f.metadata() or {}).get(META_HPARAMS, "{}"))
    else:
        hparams = read_weights_file(path).hparams
    return {k: v for k, v in hparams.items() if k not in _PROVENANCE and not k.startswith("_")}


def load_model(path: str | os.PathLike[str], **overrides: Any) -> ImageClassifier:
    """Rebuild the LightningModule a ``.ckpt`` or ``.safetensors`` file was saved from.

    The registered name in the file picks the family class (``LeNet5``, ``ResNet``, ...);
    ``overrides`` replace saved hyperparameters (``num_classes=5`` gives a new head).

    Raises:
        ValueError: if the file does not say which model it holds.

    Example:
        >>> from classic_cnns.weights import load_model
        >>> model = load_model("lightning_logs/version_0/checkpoints/last.ckpt")  # doctest: +SKIP
    """
    from classic_cnns.registry import create_model, family_class, model_info

    path = Path(path)
    file = read_weights_file(path)
    arch = overrides.get("arch", file.arch)
    if arch is None:
        raise ValueError(
            f"{path} does not record which model it holds (no 'arch' hyperparameter); build "
            "the model yourself and pass checkpoint_path, e.g. create_model('resnet20', "
            f"checkpoint_path={str(path)!r})"
        )
    if path.suffix == ".safetensors":
        return create_model(arch, checkpoint_path=str(path), **overrides)
    cls = family_class(model_info(arch).family)
    return cls.load_from_checkpoint(path, map_location="cpu", **overrides)
