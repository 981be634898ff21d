"""Building models: from a registered name, or from a file, with their starting weights.

This is timm's ``build_model_with_cfg`` idea. :func:`create_model` and :func:`load_model`
read a weights file once (:func:`classic_cnns.files.read_weights_file`), take the
hyperparameters it records as the defaults of the arguments not given, build the family's
LightningModule (:data:`classic_cnns.models.FAMILIES`) and fit the tensors already in
memory to its network (:func:`classic_cnns.weights.load_weights_file`). Pretrained
ImageNet weights are loaded here too, after the model is built, never by a class's
``__init__``: restoring a checkpoint (``load_from_checkpoint``) downloads nothing.

Example:
    >>> import tempfile
    >>> from classic_cnns.export import save_safetensors
    >>> from classic_cnns.hub import create_model, load_model
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save_safetensors(create_model("lenet5", num_classes=3), f"{folder}/m.safetensors")
    ...     model = load_model(f"{folder}/m.safetensors")
    >>> type(model).__name__, model.num_classes
    ('LeNet5', 3)
"""

from __future__ import annotations

import os
from typing import Any

from classic_cnns._checks import check_flag, check_strict, close_names, file_path
from classic_cnns.checkpoint import init_parameters
from classic_cnns.data.preprocessing import config_for_channels
from classic_cnns.files import WeightsFile, read_weights_file
from classic_cnns.models import family_class
from classic_cnns.optim import restore_cli_optimizer
from classic_cnns.registry import list_models, model_info, saved_model_info
from classic_cnns.task import ImageClassifier
from classic_cnns.weights import check_arch, load_pretrained, load_weights_file

__all__ = ["create_model", "load_model", "load_weights"]


def create_model(
    name: str,
    *,
    pretrained: bool = False,
    checkpoint_path: str | os.PathLike[str] | None = None,
    strict: bool | None = None,
    **kwargs: Any,
) -> ImageClassifier:
    """Create a registered model as a LightningModule ready for ``Trainer.fit``.

    Keyword arguments go to the family's LightningModule class (``LeNet5``, ``ResNet``,
    ...): network arguments (``num_classes``, ``in_channels`` and family-specific ones such
    as ``small_input``) and training arguments (``optimizer``, ``lr``, ...). The plain
    network is ``.net``.

    Args:
        name: A registered name (``classic_cnns.list_models()``).
        pretrained: Start from torchvision's ImageNet weights (``model_info(name).weights``),
            downloaded once through torch.hub with its hash check. With other
            ``num_classes`` the head stays freshly initialised; with other ``in_channels``
            the first convolution is adapted (:func:`~classic_cnns.weights.adapt_input_conv`).
            The model's ``data_config`` then holds the normalisation the weights expect,
            which the fine-tuning datamodules and ``predict_folder`` use, and their
            evaluation crop (``crop_pct``: 224 of 256 px; of 232 for ResNet-50/101/152's),
            which ``predict_folder`` uses.
        checkpoint_path: Start from the network weights in a ``.safetensors`` file (as
            ``classic-cnns export`` writes), a Lightning ``.ckpt`` or a state dict, read
            once and adapted the same way; the hyperparameters the file records are the
            defaults of the arguments not given or given as ``None`` (but ``backbone_lr``,
            ``teacher`` and ``teacher_weights``, whose ``None`` is a choice; its ``lr`` and
            ``backbone_lr`` not for another ``optimizer``), and its data configuration is
            kept.
        strict: How the file's tensors must fit (:func:`~classic_cnns.weights.load_into`):
            by default all but the head's, ``True`` all, ``False`` what fits loads.
        **kwargs: Arguments of the family's class.

    Raises:
        ValueError: for an unknown name, both ``pretrained`` and ``checkpoint_path``, a name
            without pretrained weights, a file of another architecture or whose tensors
            do not fit (see ``strict``), ``pretrained`` other than ``True``/``False`` or
            ``strict`` other than ``True``/``False``/``None``.
        TypeError: for an argument that neither the family's class nor the network takes.

    Example:
        >>> import torch
        >>> from classic_cnns import create_model
        >>> model = create_model("lenet5", num_classes=10, in_channels=1)
        >>> model(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
    """
    _check_start(name, pretrained, checkpoint_path, strict)
    if checkpoint_path:
        return _build(name, read_weights_file(checkpoint_path), strict, **kwargs)
    model = _build(name, None, None, **kwargs)
    if pretrained:
        _load_pretrained(model, strict)
    return model


def load_weights(
    model: ImageClassifier,
    *,
    pretrained: bool = False,
    checkpoint_path: str | os.PathLike[str] | None = None,
    strict: bool | None = None,
) -> None:
    """Give a model built already its starting weights: torchvision's ImageNet ones, or a file's.

    What ``create_model(..., pretrained=True)`` does after building, and what the command
    line's ``--pretrained`` and ``--weights FILE`` do to the model it built. The tensors are
    fitted to the network as :func:`create_model`'s are (a fresh head for other
    ``num_classes``, the first convolution adapted to other ``in_channels``, a warning
    naming every key not loaded); ``model.data_config`` becomes the normalisation the
    weights expect (the file's data configuration, for a file). ``strict=True`` refuses
    weights that leave any tensor fresh, the head's too (the command line's ``validate``,
    ``test`` and ``predict``: a fresh head would be scored); ``None``: see ``create_model``.

    Example:
        >>> import tempfile, torch
        >>> from classic_cnns import LeNet5
        >>> trained, model = LeNet5(), LeNet5()
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     torch.save(trained.net.state_dict(), f"{folder}/w.pt")
        ...     load_weights(model, checkpoint_path=f"{folder}/w.pt")
        >>> torch.equal(model.net.fc.weight, trained.net.fc.weight)
        True
    """
    require_classifier(model, "load_weights")
    _check_start(model.info.name, pretrained, checkpoint_path, strict)
    if checkpoint_path:
        _load_file(model, checkpoint_path, strict)
    elif pretrained:
        _load_pretrained(model, strict)


def _load_pretrained(model: ImageClassifier, strict: bool | None) -> None:
    # torchvision's ImageNet weights, and the normalisation they expect
    load_pretrained(model.net, model.info.name, strict=False if strict is None else strict)
    weights = model.info.weights
    assert weights is not None  # _check_start refused names without weights
    mean, std = weights.normalization(model.in_channels)
    # torchvision's evaluation transform: resize to resize_size, crop the centre crop_size
    crop_pct = weights.crop_size / weights.resize_size
    model.data_config = {"mean": list(mean), "std": list(std), "crop_pct": crop_pct}


def _check_start(
    name: str,
    pretrained: bool,
    checkpoint_path: str | os.PathLike[str] | None,
    strict: bool | None,
) -> None:
    check_flag("pretrained", pretrained)
    check_strict(strict)
    if checkpoint_path is not None:
        file_path("checkpoint_path", checkpoint_path)  # not "" nor 123 (None: no file)
    if pretrained and checkpoint_path:
        raise ValueError(
            "pass pretrained=True or checkpoint_path, not both: the checkpoint's weights "
            f"would replace the ImageNet ones (got checkpoint_path={str(checkpoint_path)!r})"
        )
    if pretrained and model_info(name).weights is None:
        raise ValueError(
            f"{name} has no pretrained weights; pretrained=True works for "
            f"{[n for n in list_models() if model_info(n).weights is not None]}"
        )


def require_classifier(model: object, caller: str) -> None:
    """Refuse anything but an ``ImageClassifier`` (or one under ``torch.compile``), for the
    functions that need a whole model (network, hyperparameters, data configuration), not a
    plain network such as ``model.net``.

    Example:
        >>> from classic_cnns import create_model
        >>> from classic_cnns.hub import require_classifier
        >>> require_classifier(create_model("lenet5").net, "export")
        Traceback (most recent call last):
        ...
        TypeError: export expected an ImageClassifier (...); got LeNet5Net
    """
    if not isinstance(getattr(model, "_orig_mod", model), ImageClassifier):  # torch.compile's too
        raise TypeError(
            f"{caller} expected an ImageClassifier (create_model(name) or a model class such as "
            f"LeNet5); got {type(model).__name__}"
        )


def load_model(
    path: str | os.PathLike[str], *, strict: bool | None = None, **overrides: Any
) -> ImageClassifier:
    """Rebuild the LightningModule a ``.ckpt`` or ``.safetensors`` file was saved from.

    The file is read once. The registered name it records picks the family class
    (``LeNet5``, ``ResNet``, ...); ``overrides`` replace saved hyperparameters
    (``num_classes=5`` gives a fresh head and a warning naming the keys not loaded);
    ``strict`` says how the tensors must fit, as for :func:`create_model`.

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: if the file is damaged, does not say which model it holds, or holds a
            tensor outside the head that does not fit (another network, or one built with
            other options); for ``strict`` other than ``True``, ``False`` or ``None``.

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
    check_strict(strict)
    file = read_weights_file(path)
    given = overrides.pop("arch", None)
    arch = given or file.arch
    if arch is None:
        raise ValueError(
            f"{file.source} does not record which model it holds (no 'arch' hyperparameter); "
            "build the model yourself: create_model(NAME, checkpoint_path="
            f"{file.source!r}), NAME the model it holds (`classic-cnns list` names them). The "
            "command line reads only files that record it: a Lightning checkpoint of one of the "
            "package's models, or a .safetensors file from export_model"
        )
    if not given:  # a model of one's own, not imported
        saved_model_info(arch, file.source)
    model = _build(arch, file, strict, **overrides)
    restore_cli_optimizer(model, file.hparams)  # how its weights trained, for its records
    return model


# The arguments whose None is not "the default" but a choice: no separate backbone rate,
# no teacher. Every other None given with a file takes the file's value.
_NONE_IS_A_CHOICE = frozenset({"backbone_lr", "teacher", "teacher_weights"})


def _build(
    name: str, file: WeightsFile | None, strict: bool | None, **kwargs: Any
) -> ImageClassifier:
    # Build the family's class from the file's hyperparameters (the defaults) and kwargs,
    # then load the file's tensors into its network.
    cls = family_class(model_info(name).family)
    if "arch" in kwargs:
        raise TypeError(
            f"create_model builds the arch it is named, {name!r}; got arch={kwargs['arch']!r} too"
        )
    takes = init_parameters(cls, name)
    unknown = sorted(set(kwargs) - takes)
    options = model_info(name).options
    own = [k for k in unknown if k in options]
    if own:  # a family class's signature is written once, from its built-in members
        raise TypeError(
            f"{name}'s network option(s) {own} cannot reach it through {cls.__name__}, whose "
            f"arguments are its built-in networks': build the network with model_info({name!r})"
            f".build_net(...), or register {name} under a family of its own (ImageClassifier "
            f"takes any option; pass recipe=model_info(...).recipe to keep a recipe)"
        )
    if unknown:
        known = sorted(takes - {"arch"} | set(options))
        close = {k: close_names(k, known, n=1, cutoff=0.6) for k in unknown}
        hint = "".join(f"; for {k!r}, did you mean {c[0]!r}?" for k, c in close.items() if c)
        raise TypeError(
            f"{name} takes no argument {', '.join(map(repr, unknown))}: expected the arguments "
            f"of {cls.__name__} (num_classes, in_channels, lr, optimizer, ...) or {name}'s "
            f"network options ({', '.join(options) or 'none'}){hint}"
        )
    if file is not None:
        if strict is not False:  # False: what fits of another network's file loads
            check_arch(file, name)
        # None means the default, and a file's value is the default: not the recipe's.
        kwargs = {k: v for k, v in kwargs.items() if v is not None or k in _NONE_IS_A_CHOICE}
        accepted = takes - {"arch"} if file.arch in (None, name) else set()  # its hparams: its own
        if kwargs.get("optimizer", file.hparams.get("optimizer")) != file.hparams.get("optimizer"):
            accepted -= {"lr", "backbone_lr"}  # the file's optimizer's: the recipe's rule applies
        kwargs = {**{k: v for k, v in file.hparams.items() if k in accepted}, **kwargs}
    model = cls(arch=name, **kwargs)
    if file is not None:
        _load_file(model, file, strict)
    return model


def _load_file(
    model: ImageClassifier, file: WeightsFile | str | os.PathLike[str], strict: bool | None
) -> None:
    # The file's tensors into the network, and its data configuration into the model, with
    # the normalisation for the model's channels: a grey file's statistics repeated for an
    # RGB network, as its first convolution is adapted (and as `fit` would record them).
    data = load_weights_file(model.net, file, arch=model.info.name, strict=strict)
    model.data_config = config_for_channels(data, model.in_channels)
