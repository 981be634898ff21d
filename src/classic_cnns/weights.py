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
* **Files.** :func:`read_weights_file` is the one reader of weight files: a Lightning
  checkpoint or a plain state dict (through :func:`classic_cnns.checkpoint.load_checkpoint`,
  which checks the file whole before ``torch.load(weights_only=True)``) or a safetensors
  file written by ``classic-cnns export``. :func:`load_weights_file` loads one into a
  network and :func:`load_model` rebuilds the LightningModule a file describes.
"""

from __future__ import annotations

import contextlib
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
    "is_safetensors_file",
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

    Every output channel keeps its response to a *grey* input (the same image in every
    channel), so a grey image gets exactly the first-layer response of the original
    network, whatever ``in_channels`` is:

    * fewer channels: channel ``c`` gets the sum of the filters ``k`` with
      ``k % in_channels == c``; 1 channel gets ``R + G + B``, as in timm's
      ``adapt_input_conv``, and 2 get ``[R + B, G]``;
    * more channels: the filters are repeated in turn (R, G, B, R, ...) and each copy is
      divided by the number of copies of its filter: 4 channels get ``[R/2, G, B, R/2]``,
      6 get ``[R, G, B, R, G, B] / 2``.

    This differs from timm for every count other than 1 and the multiples of 3. timm
    repeats the filters and scales them *all* by ``C / in_channels`` (4 channels:
    ``[R, G, B, R] * 3/4``; 2: ``[R, G] * 3/2``), so a grey image's response becomes
    ``3/4 * (2R + G + B)`` instead of ``R + G + B``: the first layer's outputs, and with
    them every statistic the later layers and batch norms were trained on, shift by an
    amount that depends on the filters. Here the sum over channels is kept per output
    channel, so the pretrained network sees what it saw in training for grey inputs (and
    an extra channel that merely repeats an RGB one changes nothing), which is what the
    adaptation is meant to preserve. For multiples of 3 the two rules coincide.

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
    """Dotted name of the convolution that sees the input (timm's ``first_conv``).

    Every built-in network declares it as its ``first_conv`` attribute, and a network of
    your own can too; without it, the first ``nn.Conv2d`` among the modules is taken.

    Example:
        >>> from classic_cnns import model_info
        >>> first_conv_name(model_info("googlenet").build_net())
        'conv1.conv'
    """
    inner = getattr(net, "_orig_mod", net)  # torch.compile's wrapper holds the network
    declared = getattr(inner, "first_conv", None)
    if isinstance(declared, str):
        return declared if inner is net else _COMPILED + declared
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
        if not isinstance(value, Tensor) or not isinstance(want, Tensor):
            if type(value) is type(want):  # e.g. a module's _extra_state: taken as it is
                merged[target] = value
                loaded.add(target)
            else:
                skipped[target] = f"a {type(value).__name__} in the source: kept fresh"
            continue
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
    """Warn, naming every key, that some tensors of ``source`` did not load into ``target``.

    Args:
        skipped: ``{key: reason}``, as :func:`reconcile_state_dict` returns it.
        source: Where the tensors came from (a file name, a weights name).
        target: What they were loaded into (a class name).

    Example:
        >>> import warnings
        >>> from classic_cnns.weights import warn_not_loaded
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_not_loaded({"fc.bias": "not in the source: kept fresh"}, "w.pt", "LeNet5Net")
        >>> print(caught[0].message)
        1 key(s) not loaded from w.pt into LeNet5Net:
          fc.bias (not in the source: kept fresh)
    """
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

    Raises:
        ValueError: if none of the tensors of ``state`` fits ``net`` (the wrong file).

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
    own = net.state_dict()
    merged, skipped = reconcile_state_dict(
        own, state, first_conv=None if first is None else f"{first}.weight"
    )
    _require_some_loaded(own, state, skipped, source, net)
    net.load_state_dict(merged, strict=True)
    warn_not_loaded(skipped, source, type(net).__name__)
    return skipped


def _require_some_loaded(
    own: Mapping[str, Any],
    state: Mapping[str, Any],
    skipped: Mapping[str, str],
    source: str,
    net: nn.Module | None,
    prefix: str = "",
) -> None:
    """Refuse a source of which no backbone tensor fits: the wrong file, not a starting point.

    A head tensor alone may match by chance (two networks with 10 classes share the shape
    of ``fc.bias``), so only tensors outside the head (:func:`~classic_cnns.finetune.head_names`)
    count.
    """
    from classic_cnns.finetune import head_names

    heads: tuple[str, ...] = ()
    if net is not None:
        with contextlib.suppress(ValueError):  # a network without parameters has no head
            heads = tuple(prefix + _strip_compiled(n) + "." for n in head_names(net))
    weights = [k for k in own if not k.endswith(_COUNTER)]
    backbone = [k for k in weights if not _strip_compiled(k).startswith(heads)] or weights
    if backbone and all(k in skipped for k in backbone):
        raise ValueError(
            f"none of the {len(state)} tensors of {source} fits the backbone of "
            f"{type(net).__name__}: expected keys such as {backbone[:3]} with shapes "
            f"{[tuple(own[k].shape) for k in backbone[:3]]}; the source has "
            f"{sorted(state)[:3] or 'no keys'}. It holds another network"
        )


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
        state_dict: The network's tensors, keyed as in ``model.net.state_dict()`` (empty
            when the file was read with ``tensors=False``).
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
        """The registered model name the file was saved from, if it says.

        Example:
            >>> from classic_cnns.weights import WeightsFile
            >>> WeightsFile({}, {}, {}).arch is None
            True
        """
        arch = self.hparams.get("arch")
        return arch if isinstance(arch, str) else None


def is_safetensors_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a safetensors file, judged by its contents, not its name.

    A safetensors file starts with the 8-byte little-endian length of its JSON header,
    which begins with ``{``; ``torch.save`` writes a zip archive (``PK``) or a pickle.

    Example:
        >>> import tempfile
        >>> from classic_cnns.weights import is_safetensors_file
        >>> with tempfile.NamedTemporaryFile(suffix=".safetensors") as f:
        ...     is_safetensors_file(f.name)  # empty: not one, whatever its name says
        False
    """
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    if len(head) < 9 or head[8:9] != b"{":
        return False
    size = int.from_bytes(head[:8], "little")
    return 2 <= size <= os.path.getsize(path) - 8


def _json_metadata(meta: Mapping[str, str], key: str, shown: str) -> dict[str, Any]:
    from classic_cnns.checkpoint import CheckpointError

    try:
        value = json.loads(meta.get(key, "{}"))
    except json.JSONDecodeError as err:
        raise CheckpointError(
            f"{shown}: the metadata entry {key!r} is not valid JSON ({err}); expected the "
            "JSON object classic-cnns export writes"
        ) from err
    if not isinstance(value, dict):
        raise CheckpointError(
            f"{shown}: the metadata entry {key!r} holds a {type(value).__name__}; expected a "
            "JSON object"
        )
    return value


def _read_safetensors(path: Path, shown: str, tensors: bool) -> WeightsFile:
    from classic_cnns.checkpoint import CheckpointError

    try:
        from safetensors import safe_open
    except ImportError as err:
        raise ImportError(
            f"reading {shown} needs the safetensors package: pip install safetensors "
            "(or pip install 'classic-cnns[export]')"
        ) from err
    try:
        with safe_open(str(path), framework="pt") as f:  # the header; tensors on demand
            meta = f.metadata() or {}
            keys = list(f.keys())
            state = {k: f.get_tensor(k) for k in keys} if tensors else {}
    except Exception as err:  # safetensors raises its own SafetensorError, OSError, ...
        raise CheckpointError(
            f"{shown}: the safetensors file is truncated or corrupted ({type(err).__name__}: "
            f"{err}); expected a file written by classic-cnns export or safetensors.save_file"
        ) from err
    return WeightsFile(
        state,
        _json_metadata(meta, META_HPARAMS, shown),
        _json_metadata(meta, META_DATA, shown),
    )


def read_weights_file(path: str | os.PathLike[str], *, tensors: bool = True) -> WeightsFile:
    """Read a Lightning ``.ckpt``, a ``.safetensors`` file or a ``torch.save``d state dict.

    The one reader of weight files: ``torch.save`` files go through
    :func:`classic_cnns.checkpoint.load_checkpoint` (integrity check first, then
    ``weights_only=True``, so no code runs from the file), safetensors files (recognised
    by their contents, whatever their name) through ``safetensors.safe_open``. Keys of a
    ``torch.compile``d network (``_orig_mod.``) and the LightningModule's ``net.`` prefix
    are removed, so the keys are those of ``model.net.state_dict()``.

    Args:
        path: The file.
        tensors: Read the tensors too; ``False`` reads only the hyperparameters and data
            configuration (for a safetensors file, only its header).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        classic_cnns.checkpoint.CheckpointError: (a ``ValueError``) naming the file, if it
            is empty, truncated or corrupted, holds code, or holds none of these.

    Example:
        >>> import tempfile, torch
        >>> from classic_cnns.weights import read_weights_file
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     torch.save({"fc.weight": torch.ones(2, 3)}, f"{folder}/w.pt")
        ...     file = read_weights_file(f"{folder}/w.pt")
        >>> list(file.state_dict), file.arch
        (['fc.weight'], None)
    """
    from classic_cnns.checkpoint import CheckpointError, load_checkpoint

    shown = os.fspath(path)
    path = Path(shown)
    if not path.is_file():
        raise FileNotFoundError(f"{shown}: no such weights file")
    if is_safetensors_file(path):
        return _read_safetensors(path, shown, tensors)
    obj = load_checkpoint(path)  # FileNotFoundError or CheckpointError, naming the file
    if "state_dict" in obj:
        # A Lightning checkpoint: the LightningModule's keys, the network's under "net.".
        saved = obj["state_dict"]
        if not isinstance(saved, Mapping):
            raise CheckpointError(
                f"{shown}: expected a state dict under 'state_dict'; got {type(saved).__name__}"
            )
        plain = {_strip_compiled(k): v for k, v in saved.items()}
        state = {k.removeprefix("net."): v for k, v in plain.items() if k.startswith("net.")}
        if plain and not state:
            raise CheckpointError(
                f"{shown}: the checkpoint's state_dict has no 'net.' entries (it has e.g. "
                f"{sorted(plain)[:3]}); expected the checkpoint of a classic_cnns "
                "ImageClassifier, whose network is its 'net' attribute"
            )
        hparams = obj.get("hyper_parameters") or {}
        data = obj.get(DATA_CHECKPOINT_KEY) or {}
        return WeightsFile(
            state if tensors else {},
            dict(hparams) if isinstance(hparams, Mapping) else {},
            dict(data) if isinstance(data, Mapping) else {},
        )
    if obj and all(isinstance(v, Tensor) for v in obj.values()):
        plain = {_strip_compiled(str(k)): v for k, v in obj.items()}
        if all(k.startswith("net.") for k in plain):  # a LightningModule's own state_dict()
            plain = {k.removeprefix("net."): v for k, v in plain.items()}
        return WeightsFile(plain if tensors else {}, {}, {})
    kinds = sorted({type(v).__name__ for v in obj.values()})
    raise CheckpointError(
        f"{shown}: expected a Lightning checkpoint (a dict with 'state_dict'), a state dict of "
        f"tensors or a safetensors file; got a dict of {len(obj)} entries of type(s) "
        f"{', '.join(kinds) or 'none'}"
    )


def load_weights_file(
    net: nn.Module, path: str | os.PathLike[str], *, arch: str | None = None
) -> dict[str, Any]:
    """Load the network weights of a file (see :func:`read_weights_file`) into ``net``.

    Tensors are fitted as :func:`load_into` does (compiled keys, first convolution adapted
    to other input channels, a head of another shape kept fresh, with a warning).

    Args:
        net: The network.
        path: The file.
        arch: The registered name ``net`` was built as; a file that records another
            architecture is refused.

    Returns:
        The data configuration the file records (empty if none); its ``class_names`` are
        left out when their number is not ``net``'s number of classes.

    Raises:
        ValueError: if the file records another architecture than ``arch``, or none of its
            tensors fits ``net``; see also :func:`read_weights_file`.

    Example:
        >>> import tempfile
        >>> from classic_cnns import model_info
        >>> from classic_cnns.weights import load_weights_file
        >>> source = model_info("lenet5").build_net()
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     torch.save(source.state_dict(), f"{folder}/lenet5.pt")
        ...     net = model_info("lenet5").build_net()
        ...     load_weights_file(net, f"{folder}/lenet5.pt", arch="lenet5")
        {}
        >>> torch.equal(net.fc.weight, source.fc.weight)
        True
    """
    file = read_weights_file(path)
    if arch is not None and file.arch is not None and file.arch != arch:
        raise ValueError(
            f"{path} holds a {file.arch!r} network; got arch={arch!r}. Use "
            f"create_model({file.arch!r}, checkpoint_path={str(path)!r}) instead"
        )
    load_into(net, file.state_dict, source=str(path))
    data = dict(file.data)
    names = data.get("class_names")
    if names is not None and len(names) != getattr(net, "num_classes", len(names)):
        del data["class_names"]  # they name the old head's classes, not this one's
    return data


def fit_checkpoint_state(module: nn.Module, checkpoint: dict[str, Any]) -> None:
    """Make ``checkpoint["state_dict"]`` load into ``module`` with ``strict=True``, in place.

    For ``LightningModule.on_load_checkpoint``: keys of a ``torch.compile``d network
    (``_orig_mod.``) are matched, the first convolution of ``module.net`` is adapted to
    other input channels and tensors of other shapes (a head for other ``num_classes``)
    are replaced by the module's own, fresh ones; a warning names every key not loaded.

    Raises:
        ValueError: if none of the checkpoint's tensors fits ``module``.

    Example:
        >>> import warnings
        >>> from classic_cnns import LeNet5
        >>> from classic_cnns.weights import fit_checkpoint_state
        >>> ckpt = {"state_dict": LeNet5(num_classes=10).state_dict()}
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     fit_checkpoint_state(LeNet5(num_classes=5), ckpt)
        >>> str(caught[0].message).splitlines()[0]
        '2 key(s) not loaded from the checkpoint into LeNet5:'
        >>> tuple(ckpt["state_dict"]["net.fc.weight"].shape)
        (5, 84)
    """
    state = checkpoint.get("state_dict")
    if state is None:
        return
    net = getattr(module, "net", None)
    first = first_conv_name(net) if isinstance(net, nn.Module) else None
    own = module.state_dict()
    merged, skipped = reconcile_state_dict(
        own, state, first_conv=None if first is None else f"net.{first}.weight"
    )
    _require_some_loaded(
        own, state, skipped, "the checkpoint", net if isinstance(net, nn.Module) else None, "net."
    )
    checkpoint["state_dict"] = merged
    warn_not_loaded(skipped, "the checkpoint", type(module).__name__)


def model_kwargs_from_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The hyperparameters a weights file records, less provenance and LightningCLI's own.

    ``pretrained`` and ``checkpoint_path`` are left out: a model rebuilt from the file must
    not download ImageNet weights or read yet another file. Only the header of a
    safetensors file is read.

    Example:
        >>> import tempfile, torch
        >>> from classic_cnns.weights import model_kwargs_from_file
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     torch.save({"state_dict": {"net.w": torch.ones(1)},
        ...                 "hyper_parameters": {"arch": "lenet5", "pretrained": False}},
        ...                f"{folder}/m.ckpt")
        ...     model_kwargs_from_file(f"{folder}/m.ckpt")
        {'arch': 'lenet5'}
    """
    hparams = read_weights_file(path, tensors=False).hparams
    return {k: v for k, v in hparams.items() if k not in _PROVENANCE and not k.startswith("_")}


def load_model(path: str | os.PathLike[str], **overrides: Any) -> ImageClassifier:
    """Rebuild the LightningModule a ``.ckpt`` or ``.safetensors`` file was saved from.

    The registered name in the file picks the family class (``LeNet5``, ``ResNet``, ...);
    ``overrides`` replace saved hyperparameters (``num_classes=5`` gives a fresh head and
    a warning naming the keys not loaded). A Lightning checkpoint is restored with the
    family's ``load_from_checkpoint``, a safetensors file with
    ``create_model(arch, checkpoint_path=path)``.

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: if the file is damaged or does not say which model it holds.

    Example:
        >>> import tempfile
        >>> import lightning as L
        >>> from classic_cnns import LeNet5, load_model
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     trainer = L.Trainer(logger=False, enable_progress_bar=False)
        ...     trainer.strategy.connect(LeNet5(num_classes=10))
        ...     trainer.save_checkpoint(f"{folder}/m.ckpt")
        ...     model = load_model(f"{folder}/m.ckpt")
        >>> type(model).__name__, model.num_classes
        ('LeNet5', 10)
    """
    from classic_cnns.registry import create_model, family_class, model_info

    shown = os.fspath(path)
    file = read_weights_file(path, tensors=False)
    arch = overrides.pop("arch", None) or file.arch
    if arch is None:
        raise ValueError(
            f"{shown} does not record which model it holds (no 'arch' hyperparameter); build "
            "the model yourself and pass checkpoint_path, e.g. create_model('resnet20', "
            f"checkpoint_path={shown!r})"
        )
    if is_safetensors_file(path) or not file.hparams:
        # Weights and metadata only: build the model, then load the weights into it.
        return create_model(arch, checkpoint_path=shown, **overrides)
    cls = family_class(model_info(arch).family)
    overrides.setdefault("map_location", "cpu")
    return cls.load_from_checkpoint(shown, arch=arch, **overrides)
