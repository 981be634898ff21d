"""Whether the data's classes are the model's: the class count a network's head must have,
and, for evaluation, the class names its outputs stand for; one evaluation loader at a time;
whether a restored checkpoint's model gets its images prepared as it was trained on them,
and split as they were.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from classic_cnns._checks import differing, is_int
from classic_cnns._guard import check_classes
from classic_cnns._warn import warn
from classic_cnns.files import CheckpointError

__all__ = [
    "check_data_classes",
    "check_data_config",
    "check_one_loader",
    "check_split",
    "class_names_hint",
    "data_classes",
    "datamodule_config",
    "split_settings",
]
# What a data configuration records of how images are prepared, which a model's weights expect.
_PREPARED = ("mean", "std", "image_size", "resize")


def check_one_loader(loaders: Any, stage: Any) -> None:
    """Refuse several evaluation dataloaders (a list, tuple or dict of them) at once: the
    metrics would merge them. ``stage``: ``"fit"`` (its validation), ``"validate"`` or
    ``"test"`` (or Lightning's ``TrainerFn``).

    Example:
        >>> check_one_loader({"a": [0], "b": [1]}, "test")
        Traceback (most recent call last):
        ...
        ValueError: test takes one dataloader at a time (its metrics would merge them); got 2: ...
    """
    stage = getattr(stage, "value", stage)
    if not (isinstance(loaders, Sequence | Mapping) and len(loaders) > 1):
        return
    if stage == "fit":
        raise ValueError(
            f"fit takes one validation dataloader (its metrics would merge them); got "
            f"{len(loaders)}: validate on the others with trainer.validate(model, loader)"
        )
    raise ValueError(
        f"{stage} takes one dataloader at a time (its metrics would merge them); got "
        f"{len(loaders)}: call trainer.{stage}(model, loader) for each"
    )


def check_data_classes(
    name: str, num_classes: int, recorded: Sequence[str] | None, dm: Any, stage: str | None
) -> None:
    """Refuse a datamodule whose labels do not index the model's outputs.

    ``fit``: its class count must be the head's (:func:`check_classes`); a head trained on
    ``recorded`` classes (loaded weights) may learn new ones, with a warning, but a class it
    has under another output is refused (the same classes numbered otherwise). ``validate``
    and ``test``: the class names must be the model's ``recorded`` ones, where both name them
    (a folder without one of the classes numbers the others differently).

    Example:
        >>> from types import SimpleNamespace as Data
        >>> check_data_classes("lenet5", 3, ["a", "b", "c"], Data(num_classes=3,
        ...                    class_names=("a", "c", "d")), "test")
        Traceback (most recent call last):
        ...
        ValueError: lenet5's outputs stand for the classes ['a', 'b', 'c']; the datamodule ...
    """
    stage = getattr(stage, "value", stage)  # Lightning passes its TrainerFn
    where, found = f"the datamodule {type(dm).__name__}", getattr(dm, "num_classes", None)
    names = getattr(dm, "class_names", None)
    names = None if names is None else [str(n) for n in names]
    if stage == "fit":
        check_classes(name, num_classes, found, where)
        _check_head_classes(name, recorded, names, where)
    if stage not in ("validate", "test"):
        return
    if (isinstance(found, int) and found != num_classes) or (
        recorded is not None and names is not None and list(recorded) != names
    ):
        ours = f"the classes {list(recorded)}" if recorded is not None else f"{num_classes} classes"
        theirs = f"the classes {names}" if names is not None else f"{found} classes"
        raise ValueError(
            f"{name}'s outputs stand for {ours}; {where} labels {theirs}, so its labels would "
            f"be scored against other outputs. To {stage}, give it data of the model's classes "
            "(the same class folders), or fine-tune the model on these (fit)"
            + class_names_hint(recorded, names)
        )


def class_names_hint(recorded: Sequence[str] | None, names: Sequence[str] | None) -> str:
    """How to label data as a model does: for some of its classes, or under other names.

    ``""`` when either side names no classes, or both name the same.

    Example:
        >>> class_names_hint(["cat", "dog", "fox"], ["dog", "fox"])
        "; for data of some of its classes, number them as it does: classes=['cat', 'dog', ..."
    """
    if recorded is None or names is None or list(names) == list(recorded):
        return ""
    if set(names) < set(recorded):
        return (
            f"; for data of some of its classes, number them as it does: "
            f"classes={list(recorded)} (ImageFolder; --data.classes on the command line)"
        )
    return (
        "; if the data is an image folder whose subfolders hold its classes under other names, "
        f"map each to its class: classes={{folder: class name}} over {list(recorded)} "
        "(ImageFolder; --data.classes)"
    )


def data_classes(trainer: Any) -> Sequence[str] | None:
    """The class names of the data ``trainer`` runs on, which a checkpoint it restores must
    have been trained on; ``None`` when predicting (no labels) or when the data names none.

    Example:
        >>> import lightning as L
        >>> data_classes(L.Trainer(logger=False)) is None  # no datamodule
        True
    """
    if trainer.predicting:
        return None
    return getattr(getattr(trainer, "datamodule", None), "class_names", None)


def _check_head_classes(
    name: str, recorded: Sequence[str] | None, names: list[str] | None, where: str
) -> None:
    # Fine-tuning a head trained on `recorded` classes (as many as the data's): a class it
    # knows under another output would start from another class's weights, and a head moved
    # to new classes keeps its old weights as a start, which the user should know.
    if recorded is None or names is None or len(recorded) != len(names) or list(recorded) == names:
        return  # (a count that differs: the count's own check, where the data has one)
    recorded = list(recorded)
    moved = [n for i, n in enumerate(names) if n in recorded and recorded.index(n) != i]
    if moved:
        # The order that keeps each class the head knows at its output, new ones where free.
        new_names = iter(n for n in names if n not in recorded)
        order = [n if n in names else next(new_names) for n in recorded]
        more = f" (and {len(moved) - 1} more)" if len(moved) > 1 else ""
        raise ValueError(
            f"{name}'s head was trained on the classes {recorded}; {where} numbers the classes "
            f"{names}, so fine-tuning would start {moved[0]!r}{more} from another class's "
            f"output. Number them as the head does: classes={order} (ImageFolder; "
            "--data.classes), or give the model a fresh head (model.reset_classifier(n))"
        )
    new = [f"{old!r} -> {n!r}" for old, n in zip(recorded, names, strict=True) if old != n]
    shown = ", ".join(new[:3]) + (f", ... ({len(new)} in all)" if len(new) > 3 else "")
    warn(
        f"{name}'s head was trained on other classes than {where}'s; fine-tuning starts each "
        f"output from the old class's weights ({shown}); model.reset_classifier(num_classes) "
        "gives a fresh head instead"
    )


_RESTORE_DATA = (
    "--ckpt_path restores the model, not the data: give the training run's --data flags "
    "again, or -c its config.yaml (in Python, the datamodule it was trained with)"
)


def datamodule_config(dm: Any, say: bool = False) -> dict[str, Any] | None:
    """``dm``'s ``data_config`` in the package's form, which the task records beside its
    weights: a mapping with the ``image_size`` ``(H, W)`` (``Preprocessing.config()`` and
    class names). ``None`` for none, or another form, such as the dict timm's
    ``resolve_data_config`` gives, which a project's own datamodule may keep under that
    name; ``say``: warn of that, since the run's files then record no preprocessing.

    Example:
        >>> from types import SimpleNamespace as Data
        >>> datamodule_config(Data(data_config={"image_size": [28, 28], "mean": [0.5]}))
        {'image_size': [28, 28], 'mean': [0.5]}
        >>> datamodule_config(Data(data_config={"input_size": (3, 224, 224)})) is None
        True
    """
    config = getattr(dm, "data_config", None)
    size = config.get("image_size") if isinstance(config, Mapping) else None
    if isinstance(size, Sequence) and len(size) == 2 and all(is_int(n, 1) for n in size):
        return dict(config)  # type: ignore[arg-type]  # a Mapping: it has an image_size
    if config and say:
        warn(
            f"{type(dm).__name__}.data_config is not a classic-cnns data configuration (a "
            f"mapping with image_size (H, W), as Preprocessing.config() gives); got "
            f"{config!r}. It is left out: this run's checkpoints and exported files record "
            "no preprocessing (predict_folder will need mean, std and the image size)"
        )
    return None


def check_data_config(
    recorded: Mapping[str, Any] | None, dm: Any, source: Any, advice: str = _RESTORE_DATA
) -> None:
    """Warn when ``dm`` prepares images otherwise than the checkpoint ``source``'s model was
    trained on: its recorded data configuration (``recorded``) and the datamodule's
    ``data_config`` differ in the normalisation ``mean``/``std``, the ``image_size`` or the
    ``resize`` mode (where both record it). A ``ckpt_path`` restores the model, not the data;
    testing a model on other data can be deliberate, so this warns and does not refuse.
    ``advice`` ends the warning: what to do about it.

    Example:
        >>> import warnings
        >>> from types import SimpleNamespace as Data
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     config = {"mean": [0.3053], "image_size": [32, 32], "resize": "resize"}
        ...     dm = Data(data_config=config)
        ...     check_data_config({"mean": [0.1307], "resize": "pad"}, dm, "m.ckpt")
        >>> print(caught[0].message)  # doctest: +ELLIPSIS
        m.ckpt: the model was trained on images prepared with mean=[0.1307], resize='pad'; ...
    """
    current = datamodule_config(dm)
    if not recorded or not current:
        return  # nothing recorded, or a datamodule that does not say (yet)
    changed = [
        k
        for k in _PREPARED
        if k in recorded and k in current and not _same(recorded[k], current[k])
    ]
    if not changed:
        return
    was = ", ".join(f"{k}={_shown(recorded[k])!r}" for k in changed)
    now = ", ".join(f"{k}={_shown(current[k])!r}" for k in changed)
    warn(
        f"{source}: the model was trained on images prepared with {was}; the datamodule "
        f"{type(dm).__name__} prepares them with {now}, so it runs on other inputs than it "
        f"learned from. {advice}"
    )


def _same(a: Any, b: Any) -> bool:
    # Equal, numbers to 4 decimals (statistics measured again), sequences item by item.
    if isinstance(a, Sequence) and not isinstance(a, str):
        if not isinstance(b, Sequence) or isinstance(b, str) or len(a) != len(b):
            return False
        return all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=0, abs_tol=5e-5)
    return bool(a == b)


def _shown(value: Any) -> Any:
    # A recorded value as a user reads it: plain lists, statistics to 4 decimals.
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [round(v, 4) if isinstance(v, float) else v for v in value]
    return value


def split_settings(datamodule: Any) -> dict[str, Any]:
    """The datamodule's class and the settings that decide its splits (``seed``, ``val_size``,
    ``test_size``, ...); ``{}`` for one that does not say (a datamodule of the user's own).

    Example:
        >>> from classic_cnns import Digits
        >>> split_settings(Digits(seed=3))
        {'class': 'Digits', 'seed': 3, 'val_size': 0.1, 'test_size': 0.2}
    """
    settings = getattr(datamodule, "_split_settings", None)
    return {"class": type(datamodule).__qualname__, **settings()} if callable(settings) else {}


def check_split(saved: Any, datamodule: Any, source: Any, fitting: bool = True) -> None:
    """Refuse to resume a fit whose datamodule, of the checkpoint's class, splits otherwise
    than the checkpoint's run (``saved``: its :func:`split_settings`): images it validated or
    tested on would become training images. Evaluating (``fitting=False``), warn: the images
    validated or tested on may include ones the run trained on.

    Example:
        >>> from classic_cnns import Digits
        >>> check_split(split_settings(Digits(seed=3)), Digits(seed=3), "a.ckpt")  # the same
        >>> check_split(split_settings(Digits(seed=3)), Digits(), "a.ckpt")
        Traceback (most recent call last):
        ...
        classic_cnns.files.CheckpointError: a.ckpt: the run was trained on Digits split with ...
    """
    current = split_settings(datamodule)
    if not isinstance(saved, Mapping) or not current or saved.get("class") != current["class"]:
        return  # a checkpoint from before the record, or other data: nothing to compare
    found = differing(saved, current, [k for k in current if k != "class"])
    if found is None:
        return
    changed, was, now = found
    # "files", "file_names": the image files a folder's split draws from (ImageFolder's).
    listed = [k for k in changed if k in ("files", "file_names")]
    flags = " ".join(f"--data.{k} {saved[k]}" for k in changed if k not in listed)
    how = [was] + [f"on the command line {flags}"] * bool(flags)
    if listed:
        how.append("the folder's files as they were: an image added, removed or renamed "
                   "draws anew")  # fmt: skip
    if changed == ["file_names"]:  # as many files, other names: the order may have held
        how[-1] += " (a rename that keeps the files' order keeps the split, but cannot be told "
        how[-1] += "from one that moves images)"
    split = f"{source}: the run was trained on {current['class']} split with {was}; this "
    if not fitting:
        warn(
            f"{split}datamodule has {now}, so the images evaluated may include images the run "
            f"trained on, which inflates its figures. Evaluate on the run's split "
            f"({'; '.join(how)})"
        )
        return
    raise CheckpointError(
        f"{split}datamodule has {now}, which would make images it validated or tested on "
        f"training images. Resume with the same split ({'; '.join(how)}), or train on "
        "another split in a new run (without ckpt_path)"
    )
