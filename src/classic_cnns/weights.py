"""Tensors into a network: adapted, reconciled, loaded, with a warning for what was not.

* :func:`adapt_input_conv` adapts the first convolution's weights to another number of
  input channels, keeping every filter's response to a grey image.
* :func:`reconcile_state_dict` fits any state dict to a network: the ``_orig_mod.`` prefix
  of ``torch.compile`` is matched either way, the first convolution is adapted, and
  tensors whose shapes cannot fit (a head for another number of classes) stay freshly
  initialised; it returns every key it did not load, and why.
* :func:`load_into` loads a state dict into a network that way, refusing by default a
  tensor outside the head that does not fit, and warns, naming every key not loaded;
  :func:`load_pretrained` downloads a registered model's pretrained weights through
  torch.hub (hash checked, cached, ``weights_only=True``) and loads them;
  :func:`load_weights_file` loads a file :func:`classic_cnns.files.read_weights_file` read;
  :func:`fit_checkpoint_state` fits a Lightning checkpoint to a LightningModule.

The facts of pretrained weights (:class:`~classic_cnns.registry.WeightsInfo`) live in the
registry; reading files lives in :mod:`classic_cnns.files`.
"""

from __future__ import annotations

import contextlib
import os
import re
import urllib.error
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from classic_cnns._checks import check_strict, require_module
from classic_cnns._warn import warn
from classic_cnns.files import (
    COMPILED_PREFIX,
    CheckpointError,
    WeightsFile,
    file_digest,
    read_weights_file,
    strip_compiled,
)
from classic_cnns.finetune import head_names
from classic_cnns.registry import list_models, model_info

__all__ = [
    "adapt_input_conv", "build_from_file", "check_arch", "first_conv_name",
    "fit_checkpoint_state", "load_into", "load_pretrained", "load_weights_file",
    "reconcile_state_dict", "warn_not_loaded",
]  # fmt: skip

_COUNTER = "num_batches_tracked"
# torchvision's DenseNet checkpoints predate the ban on '.' in module names and still call
# DenseLayer.norm1 "norm.1" (and so on); torchvision renames them with this pattern.
_OLD_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
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
        A new tensor ``(O, in_channels, kH, kW)`` of the same dtype, computed in float32
        (float64 for float64 weights).

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
    # float32 at least (half and bfloat16 sums would round), float64 kept as it is
    w = weight.to(torch.promote_types(weight.dtype, torch.float32))
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
        return declared if inner is net else COMPILED_PREFIX + declared
    return next((n for n, m in net.named_modules() if isinstance(m, nn.Conv2d)), None)


def _listed(skipped: Mapping[str, str], limit: int | None = None) -> str:
    # One indented line per key that did not load: "key (reason)", the first `limit` of them.
    shown = list(skipped.items())[:limit]
    more = f"\n  and {len(skipped) - len(shown)} more" if len(shown) < len(skipped) else ""
    return "".join(f"\n  {key} ({reason})" for key, reason in shown) + more


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
    by_plain = {strip_compiled(k): k for k in own}
    merged = dict(own)
    loaded: set[str] = set()
    skipped: dict[str, str] = {}
    for key, value in state.items():
        target = by_plain.get(strip_compiled(key))
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
    warn(f"{len(skipped)} key(s) not loaded from {source} into {target}:{_listed(skipped)}")


def load_into(
    net: nn.Module, state: Mapping[str, Tensor], *, source: str, strict: bool | None = None
) -> dict[str, str]:
    """Load ``state`` into ``net`` (see :func:`reconcile_state_dict`), the head free to differ.

    By default (``strict=None``) every tensor outside the head must fit, as a strict
    ``load_state_dict`` would have it; the head's may not (a fresh head for other
    ``num_classes``, or auxiliary heads one side lacks). ``strict=True``: every tensor must
    fit. ``strict=False``: what fits loads and the rest stays fresh. Warns once, naming
    each key, when anything was not loaded; when it raises, nothing is loaded. The key
    names of torchvision's published DenseNet files (``denselayer1.norm.1.weight``) are
    read as its current ones (``denselayer1.norm1.weight``).

    Returns:
        ``{key: reason}`` for the keys that were not loaded.

    Raises:
        ValueError: if none of the tensors of ``state`` fits ``net`` (the wrong file), or,
            unless ``strict=False``, if a tensor that must fit does not.

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
    require_module(net, "load_into")
    check_strict(strict)
    first = first_conv_name(net)
    own = net.state_dict()
    state = _rename_old_keys(state, own)
    merged, skipped = reconcile_state_dict(
        own, state, first_conv=None if first is None else f"{first}.weight"
    )
    _require_fit(own, state, skipped, strict, source, type(net).__name__, _head_prefixes(net))
    net.load_state_dict(merged, strict=True)
    warn_not_loaded(skipped, source, type(net).__name__)
    return skipped


def _head_prefixes(net: nn.Module | None, prefix: str = "") -> tuple[str, ...]:
    # "fc." and the like: the head modules the network's class declares (GoogLeNet's aux
    # heads too, when this instance has none), else the one finetune.head_names finds.
    inner = getattr(net, "_orig_mod", net)
    names = getattr(inner, "head_names", None)
    if names is None and net is not None:
        with contextlib.suppress(ValueError):  # a network without parameters has no head
            names = head_names(net)
    return tuple(f"{prefix}{strip_compiled(n)}." for n in names or ())


def _require_fit(own: Mapping[str, Any], state: Mapping[str, Any], skipped: Mapping[str, str],
                 strict: bool | None, source: str, target: str,
                 heads: tuple[str, ...]) -> None:  # fmt: skip
    """Refuse ``state`` for ``target`` (whose state dict is ``own``) when no backbone tensor
    fits (the wrong file, not a starting point: a head tensor alone may match by chance, as
    two networks with 10 classes share the shape of ``fc.bias``), and the keys that did not
    load and had to: all (``strict``), those outside the ``heads`` (``None``), none
    (``False``)."""
    weights = [k for k in own if not k.endswith(_COUNTER)]
    backbone = [k for k in weights if not strip_compiled(k).startswith(heads)] or weights
    if backbone and all(k in skipped for k in backbone):
        raise ValueError(
            f"none of the {len(state)} tensors of {source} fits the backbone of {target}: "
            f"expected keys such as {backbone[:3]} with shapes "
            f"{[tuple(own[k].shape) for k in backbone[:3]]}; the source has "
            f"{sorted(state)[:3] or 'no keys'}. It holds another network"
        )
    refused = {
        k: why.removesuffix(": kept fresh")  # nothing is loaded
        for k, why in skipped.items()
        if strict or (strict is None and not strip_compiled(k).startswith(heads))
    }
    if refused:
        where = "" if strict else " outside its head"
        lenient = "" if strict else (
            "; it holds another network, or one built with other options. To load what fits "
            "and leave the rest fresh, pass strict=False (in Python: to load_from_checkpoint, "
            "create_model, load_model or load_into; the command line's --weights has no such "
            "option, but --pretrained loads torchvision's weights so, from torch.hub's cache)"
        )  # fmt: skip
        raise ValueError(
            f"{len(refused)} key(s) of {source} do not fit {target}{where}:"
            f"{_listed(refused, limit=10)}{lenient}"
        )


# -- pretrained weights --------------------------------------------------------------------


def _check_cached(path: str, url: str) -> None:
    # torch.hub checks the sha256 prefix in the file name only when it downloads; a file
    # put in its cache by hand (as the offline error says) or damaged since is checked here.
    match = torch.hub.HASH_REGEX.search(os.path.basename(path))
    if match is None or not match.group(1):
        return
    if not (digest := file_digest(path, "sha256")).startswith(match.group(1)):
        raise CheckpointError(
            f"{path}: sha256 {digest[: len(match.group(1))]}... does not match "
            f"the {match.group(1)}... in its name: the cached copy of {url} is damaged or "
            "another file. Delete it, and it is downloaded again"
        )


def _download_state_dict(url: str, progress: bool) -> dict[str, Tensor]:
    # torch.hub downloads into a temporary file, checks the sha256 prefix in the file name
    # and only then moves it into its cache, so an interrupted download is never used.
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", url.rsplit("/", 1)[-1])
    if os.path.isfile(cached):
        _check_cached(cached, url)
    try:
        return torch.hub.load_state_dict_from_url(  # type: ignore[no-any-return]
            url, map_location="cpu", progress=progress, check_hash=True, weights_only=True
        )
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:  # offline, or HTTP
        raise OSError(
            f"cannot download the pretrained weights {url} ({getattr(err, 'reason', err)}). "
            f"Offline, put that file at {cached} (torch.hub's cache), or start from a weights "
            "file of your own: create_model(..., checkpoint_path=FILE), or --weights FILE on "
            "the command line"
        ) from err


def load_pretrained(
    net: nn.Module, name: str, *, progress: bool = True, strict: bool | None = False
) -> dict[str, str]:
    """Load the pretrained weights of registered model ``name`` into ``net``, adapting them.

    The file is downloaded once through torch.hub (checked against its sha256 prefix) and
    cached. ``net`` may have other input channels (the first convolution is adapted),
    another number of classes (its freshly initialised head is kept) and other network
    options (``small_input``'s stem stays fresh too); the warning lists every key that was
    not loaded. ``strict`` as for :func:`load_into` (``True``: every tensor must fit).

    Raises:
        ValueError: if ``name`` has no pretrained weights.
        OSError: if the file is not cached and cannot be downloaded (the message says where
            to put it).
        CheckpointError: naming the cached file, if its sha256 does not begin with the
            prefix in its name (damaged, or another file put there).

    Example:
        >>> from classic_cnns import model_info
        >>> net = model_info("resnet18").build_net(num_classes=10, in_channels=1)
        >>> load_pretrained(net, "resnet18")  # doctest: +SKIP
        {'fc.weight': 'shape (1000, 512) in the source, (10, 512) here: kept fresh', ...}
    """
    require_module(net, "load_pretrained")
    info = model_info(name).weights
    if info is None:
        have = [n for n in list_models() if model_info(n).weights is not None]
        raise ValueError(
            f"{name} has no pretrained weights; pretrained=True works for {', '.join(have)}"
        )
    state = _download_state_dict(info.url, progress)
    # By default as far as they fit the network asked for: small_input changes the stem.
    skipped = load_into(net, state, source=f"{info.name} ({info.url})", strict=strict)
    if kept := [m for m in info.untrained if any(k.startswith(f"{m}.") for k in net.state_dict())]:
        warn(
            f"{name}'s pretrained {', '.join(kept)} are not trained ({info.name} holds them "
            "as initialised): they learn from there; aux_logits=False builds the network without"
        )
    return skipped


def _rename_old_keys(state: Mapping[str, Tensor], own: Mapping[str, Tensor]) -> dict[str, Tensor]:
    # torchvision's old DenseNet names (norm.1) as the network's (norm1), where it has them;
    # compared without torch.compile's _orig_mod. parts, as reconcile_state_dict matches keys.
    plain_own = {strip_compiled(k) for k in own}
    plain_state = {strip_compiled(k) for k in state}
    renamed = {}
    for key, value in state.items():
        plain = strip_compiled(key)
        m = _OLD_DENSENET_KEY.match(plain)
        new = plain if m is None or plain in plain_own else m.group(1) + m.group(2)
        renamed[new if new in plain_own and new not in plain_state else key] = value
    return renamed


# -- weight files --------------------------------------------------------------------------


def load_weights_file(
    net: nn.Module,
    file: str | os.PathLike[str] | WeightsFile,
    *,
    arch: str | None = None,
    strict: bool | None = None,
) -> dict[str, Any]:
    """Load the network weights of a file into ``net``; return its data configuration.

    ``file`` is a path (read once, by :func:`~classic_cnns.files.read_weights_file`) or a
    :class:`~classic_cnns.files.WeightsFile` already read. Tensors are fitted as
    :func:`load_into` does with ``strict`` (compiled keys, first convolution adapted to
    other input channels, a head of another shape kept fresh, with a warning).

    Args:
        net: The network.
        file: The file, or what was read from it.
        arch: The registered name ``net`` was built as; a file that records another
            architecture is refused.
        strict: How the tensors must fit (see :func:`load_into`).

    Returns:
        The data configuration the file records (empty if none); its ``class_names`` are
        left out when their number is not ``net``'s number of classes.

    Raises:
        ValueError: if the file records another architecture than ``arch``, or its tensors
            do not fit ``net`` (see :func:`load_into`); see also
            :func:`~classic_cnns.files.read_weights_file`.

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
    require_module(net, "load_weights_file")
    if not isinstance(file, WeightsFile):
        file = read_weights_file(file)
    if strict is not False:  # False: what fits of another network's file loads
        check_arch(file, arch)
    _outside(file, strict, type(net).__name__)
    load_into(net, file.state_dict, source=file.source, strict=strict)
    data = dict(file.data)
    names = data.get("class_names")
    if names is not None and len(names) != getattr(net, "num_classes", len(names)):
        del data["class_names"]  # they name the old head's classes, not this one's
    return data


def check_arch(file: WeightsFile, arch: str | None) -> None:
    """Refuse a file that records another architecture than ``arch`` (``None``: any).

    Raises:
        CheckpointError: naming the file, its architecture and ``arch``.

    Example:
        >>> from classic_cnns.files import WeightsFile
        >>> check_arch(WeightsFile({}, {"arch": "resnet20"}, {}, "r.ckpt"), "lenet5")
        Traceback (most recent call last):
        ...
        classic_cnns.files.CheckpointError: r.ckpt holds a 'resnet20' network; got arch=...
    """
    if arch is not None and file.arch is not None and file.arch != arch:
        raise CheckpointError(
            f"{file.source} holds a {file.arch!r} network; got arch={arch!r}. Use "
            f"create_model({file.arch!r}, checkpoint_path={file.source!r}) instead (on the "
            f"command line: --model {file.arch} --weights {file.source})"
        )


def build_from_file(
    file: WeightsFile,
    arch: str | None = None,
    *,
    num_classes: int | None = None,
    in_channels: int | None = None,
    strict: bool | None = None,
) -> nn.Module:
    """Build the plain network a weights file holds and load its tensors into it.

    The network arguments the file's hyperparameters record (those the builder takes, such
    as ``small_input``) are used; ``num_classes`` and ``in_channels`` default to the file's,
    else the architecture's. Tensors load as :func:`load_into` loads them with ``strict``.

    Raises:
        ValueError: if the file names no architecture and ``arch`` is not given, or names
            another one; if a tensor that must fit does not (see :func:`load_into`).

    Example:
        >>> from classic_cnns import model_info
        >>> from classic_cnns.files import WeightsFile
        >>> state = model_info("lenet5").build_net().state_dict()
        >>> net = build_from_file(WeightsFile(state, {"arch": "lenet5"}, {}))
        >>> type(net).__name__
        'LeNet5Net'
    """
    check_arch(file, arch)
    name = arch or file.arch
    if name is None:
        raise ValueError(
            f"{file.source} does not record which model it holds (no 'arch' hyperparameter); "
            "name the architecture"
        )
    info = model_info(name)
    takes = {"num_classes", "in_channels", *info.options}
    kwargs = {k: v for k, v in file.hparams.items() if k in takes and v is not None}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if in_channels is not None:
        kwargs["in_channels"] = in_channels
    net = info.build_net(**kwargs)
    _outside(file, strict, type(net).__name__)
    load_into(net, file.state_dict, source=file.source, strict=strict)
    return net


def _outside(file: WeightsFile, strict: bool | None, target: str) -> None:
    # Tensors outside a checkpoint's network (a subclass's modules): refused unless strict=False.
    keys = dict.fromkeys(file.outside, "outside the network 'net' of the checkpoint's module")
    if keys and strict is not False:
        raise CheckpointError(
            f"{file.source}: {len(keys)} key(s) do not fit {target}:{_listed(keys)}\nThe "
            "checkpoint's LightningModule had modules of its own (a subclass's?): load it with "
            "that class's load_from_checkpoint, or its network alone with strict=False (in "
            "Python: load_model(path, strict=False); the command line has no such option)"
        )
    warn_not_loaded(keys, file.source, target)


def fit_checkpoint_state(
    module: nn.Module, checkpoint: dict[str, Any], strict: bool | None = None
) -> None:
    """Make ``checkpoint["state_dict"]`` load into ``module`` with ``strict=True``, in place.

    For ``LightningModule.on_load_checkpoint``: keys of a ``torch.compile``d network
    (``_orig_mod.``) are matched, the first convolution of ``module.net`` is adapted to
    other input channels, and a head of another shape (other ``num_classes``) is replaced
    by the module's own, fresh one; a warning names every key not loaded. Every other
    tensor must fit, unless ``strict=False`` (see :func:`load_into`).

    Raises:
        ValueError: if none of the checkpoint's tensors fits ``module``, or one that must
            fit does not.

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
    heads = _head_prefixes(net, "net.") if isinstance(net, nn.Module) else _head_prefixes(module)
    _require_fit(own, state, skipped, strict, "the checkpoint", type(module).__name__, heads)
    checkpoint["state_dict"] = merged
    warn_not_loaded(skipped, "the checkpoint", type(module).__name__)
