"""The checks of an argument's type every layer makes: a number, an int, a flag, a path.

Python's ``bool`` is an ``int`` (``True >= 1``) and ``"no"`` is truthy, so that a plain
``isinstance`` or ``if flag:`` takes what a user did not mean; these refuse them. Each caller
raises its own error, which names the argument and what it expects.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeGuard

from torch import nn

__all__ = ["as_folder", "as_plain", "check_flag", "differing", "is_int", "is_number"]
__all__ += ["check_strict", "file_path", "refuse_existing", "require_module"]
__all__ += ["close_names", "suggest"]


def as_plain(value: Any) -> Any:
    """A numpy number or a 0-d tensor as its Python value and a path as its string, which
    checkpoints read back under ``weights_only`` loading; anything else as it is.

    Example:
        >>> import numpy as np
        >>> from pathlib import Path
        >>> as_plain(np.float32(0.5)), as_plain("sgd"), as_plain(Path("teacher.ckpt"))
        (0.5, 'sgd', 'teacher.ckpt')
    """
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value.item() if getattr(value, "ndim", None) == 0 and hasattr(value, "item") else value


def is_number(value: Any) -> bool:
    """Whether ``value`` is a finite real number (not a bool, not a string).

    Example:
        >>> is_number(0.1), is_number(float("nan")), is_number(True), is_number("1")
        (True, False, False, False)
    """
    try:
        return not isinstance(value, bool | str) and math.isfinite(value)
    except TypeError:
        return False


def is_int(value: Any, minimum: int | None = None) -> TypeGuard[int]:
    """Whether ``value`` is an int (not a bool), at least ``minimum`` if one is given.

    Example:
        >>> is_int(3, minimum=1), is_int(0, minimum=1), is_int(True), is_int(3.0)
        (True, False, False, False)
    """
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and (minimum is None or value >= minimum)
    )


def check_flag(name: str, value: Any, none: bool | str = False) -> None:
    """Refuse a flag that is not ``True``/``False`` (``"no"`` would count as true); with
    ``none``, ``None`` too (a str says what it means).

    Example:
        >>> check_flag("download", "false")
        Traceback (most recent call last):
        ...
        ValueError: download must be True or False; got 'false'
    """
    if not (isinstance(value, bool) or (none is not False and value is None)):
        allowed = "True, False or None" if none is not False else "True or False"
        meaning = f" ({none})" if isinstance(none, str) else ""
        raise ValueError(f"{name} must be {allowed}{meaning}; got {value!r}")


def check_strict(strict: Any) -> None:
    """Refuse a ``strict`` (how a file's tensors must fit) that is not ``True``, ``False`` or
    ``None`` (the default: all but the head's).

    Example:
        >>> check_strict("false")
        Traceback (most recent call last):
        ...
        ValueError: strict must be True, False or None (the default); got 'false'
    """
    check_flag("strict", strict, none="the default")


def as_folder(name: str, value: Any) -> Path:
    """The folder path ``name`` as a ``Path``, ``~`` expanded (as torchvision's datasets do:
    a YAML config or ``--data.root=~/x`` reaches us unexpanded); refuses a non-path and an
    empty one (``--data.root "$DIR"`` with ``DIR`` unset), which ``Path`` reads as ``.``,
    and a file or a path below one (``mkdir`` would fail later, naming a path the user did
    not give).

    Example:
        >>> as_folder("root", "~/data") == Path.home() / "data"
        True
        >>> as_folder("root", 1)
        Traceback (most recent call last):
        ...
        TypeError: root must be a folder's path (str or Path); got 1
        >>> as_folder("root", "")
        Traceback (most recent call last):
        ...
        ValueError: root is empty; expected a folder's path ('.' for the current folder)
        >>> as_folder("root", __file__)
        Traceback (most recent call last):
        ...
        NotADirectoryError: root .../_checks.py is a file; expected a folder's path
    """
    if not isinstance(value, str | os.PathLike):
        raise TypeError(f"{name} must be a folder's path (str or Path); got {value!r}")
    if not os.fspath(value):
        raise ValueError(f"{name} is empty; expected a folder's path ('.' for the current folder)")
    path = Path(value).expanduser()
    # The nearest that exists (os.path's tests: Path.exists raises in an unreadable folder).
    there = next((p for p in (path, *path.parents) if os.path.exists(p)), None)
    if there is not None and not os.path.isdir(there):
        below = "" if there == path else f" is below {there}, which"
        raise NotADirectoryError(f"{name} {path}{below} is a file; expected a folder's path")
    return path


def file_path(name: str, value: Any) -> str:
    """The file path ``name`` as a string; refuses a non-path and an empty one (``""``, as
    Lightning's ``ModelCheckpoint.best_model_path`` is until a checkpoint is saved).

    Example:
        >>> file_path("checkpoint_path", "")
        Traceback (most recent call last):
        ...
        ValueError: checkpoint_path is empty; expected a file's path
    """
    if not isinstance(value, str | os.PathLike):
        raise TypeError(f"{name} must be a file's path (str or Path); got {value!r}")
    if not os.fspath(value):
        raise ValueError(f"{name} is empty; expected a file's path")
    return os.fspath(value)


def differing(
    saved: Mapping[str, Any], ours: Mapping[str, Any], keys: Iterable[str]
) -> tuple[list[str], str, str] | None:
    """The ``keys`` both have with other values (a checkpoint's settings against a model's or
    a datamodule's), and their ``key=value`` lists, ``saved``'s and ``ours``; ``None`` if none
    differ.

    Example:
        >>> differing({"lr": 0.1, "wd": 0.0}, {"lr": 0.2, "wd": 0.0}, ["lr", "wd"])
        (['lr'], 'lr=0.1', 'lr=0.2')
    """
    differ = [k for k in keys if k in saved and k in ours and saved[k] != ours[k]]
    if not differ:
        return None
    was, now = (", ".join(f"{k}={d[k]!r}" for k in differ) for d in (saved, ours))
    return differ, was, now


def refuse_existing(path: str | os.PathLike[str], overwrite: bool) -> None:
    """Raise ``FileExistsError`` if a file (or a link) is at ``path`` and ``overwrite`` is
    false: what a writer that replaces only when told checks before any work.

    Example:
        >>> refuse_existing(__file__, overwrite=False)
        Traceback (most recent call last):
        ...
        FileExistsError: ... exists; pass overwrite=True to replace it
    """
    check_flag("overwrite", overwrite)
    if os.path.lexists(os.path.expanduser(path)) and not overwrite:  # ~: as the writers take it
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")


def require_module(net: object, caller: str) -> None:
    """Refuse anything but an ``nn.Module`` as the network ``caller`` works on.

    Example:
        >>> require_module("resnet20", "head_names")
        Traceback (most recent call last):
        ...
        TypeError: head_names expected a network (an nn.Module, such as ...); got str
    """
    if not isinstance(net, nn.Module):
        raise TypeError(
            f"{caller} expected a network (an nn.Module, such as create_model(name).net); got "
            f"{type(net).__name__}"
        )


def close_names(name: str, names: Sequence[str], n: int = 3, cutoff: float = 0.5) -> list[str]:
    """Up to ``n`` of ``names`` close to ``name``, closest first, in any letter case.

    Example:
        >>> close_names("in_chans", ["num_classes", "in_channels", "lr"], n=1)
        ['in_channels']
    """
    lower = {str(m).lower(): m for m in names}
    return [lower[c] for c in difflib.get_close_matches(name.lower(), lower, n, cutoff)]


def suggest(name: str, names: Sequence[str]) -> str:
    """`` Did you mean ...?`` with up to three of ``names`` close to ``name`` (any case), or "".

    Example:
        >>> suggest("max_epochz", ["max_epochs", "min_epochs", "precision"])
        " Did you mean 'max_epochs', 'min_epochs'?"
    """
    close = close_names(name, names)
    return f" Did you mean {', '.join(map(repr, close))}?" if close else ""
