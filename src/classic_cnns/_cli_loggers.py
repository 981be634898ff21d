"""The command line's loggers: where the default CSV logger, and a CSV or TensorBoard logger
named without a folder, write; a run's log folder found without a collective."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from classic_cnns._checks import as_folder

__all__ = ["log_dir", "place_default_logger", "writes_run_folder"]


def place_default_logger(trainer: Any) -> None:
    """Put the command line's default CSV logger (``save_dir`` ``.``), and a CSV or
    TensorBoard logger chosen without a ``save_dir``, in ``default_root_dir``: where
    Lightning's own default logger writes. A root that is a file is refused here, before
    Lightning fails on a path below it.

    Example:
        >>> from jsonargparse import Namespace
        >>> logger = Namespace(class_path="lightning.pytorch.loggers.CSVLogger",
        ...                    init_args=Namespace(save_dir="."))
        >>> place_default_logger(Namespace(default_root_dir="runs", logger=logger))
        >>> logger.init_args.save_dir
        'runs'
    """
    logger, root = trainer.get("logger"), trainer.get("default_root_dir")
    if root and "://" not in str(root):  # a remote root (s3://) is Lightning's; "" the cwd
        as_folder("--trainer.default_root_dir", root)
    if not writes_run_folder(logger):  # (a list of loggers is the user's: left as given)
        return
    # "." is the default logger's, and that of a CSV or TensorBoard logger chosen without a
    # save_dir: the root, where Lightning's default logger writes.
    if root and logger.init_args.get("save_dir") == ".":
        logger.init_args.save_dir = os.path.expanduser(root)  # as Lightning takes the root


def writes_run_folder(logger: Any) -> bool:
    """Whether a logger, or a logger's configuration, is a CSV or TensorBoard logger, which
    writes in a run folder of its own, ``save_dir/name/version_N``.

    Example:
        >>> from jsonargparse import Namespace
        >>> writes_run_folder(Namespace(class_path="lightning.pytorch.loggers.CSVLogger"))
        True
        >>> writes_run_folder(CSVLogger("runs")), writes_run_folder(None)
        (True, False)
    """
    if isinstance(logger, CSVLogger | TensorBoardLogger):
        return True
    return str(getattr(logger, "class_path", "")).endswith((".CSVLogger", ".TensorBoardLogger"))


def log_dir(trainer: Trainer) -> Path:
    """``trainer.log_dir`` without its broadcast: a collective, which an exception raised in
    one process alone would wait on for ever (the others are in another, or gone). For a
    logger without a folder (``save_dir=None``: CometLogger online), ``default_root_dir``,
    where the plots and predictions go then.

    Example:
        >>> import lightning as L
        >>> log_dir(L.Trainer(logger=False, default_root_dir="runs"))
        PosixPath('runs')
    """
    logger = trainer.loggers[0] if trainer.loggers else None
    if logger is None:
        return Path(trainer.default_root_dir)
    local = logger.log_dir if writes_run_folder(logger) else logger.save_dir
    return Path(trainer.default_root_dir if local is None else str(local))
