"""What the package's file writers share: the refusal to replace a file they did not write,
and PNG figures written whole or not at all.

:class:`~classic_cnns.plots.TrainingPlots` and :class:`~classic_cnns.predict.PredictionCSV`
check their files with :func:`refuse_replacing` before the first batch; they and the bench
save figures with :func:`save_png`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L

from classic_cnns.files import atomic_path

__all__ = [
    "PLOTS_SKIPPED",
    "RUN_ELSEWHERE",
    "matplotlib_missing",
    "refuse_replacing",
    "require_matplotlib",
    "save_png",
]

# Where a run without a logger writes: the files of an earlier run, or a user's, are there.
RUN_ELSEWHERE = (
    "run in another folder (--trainer.default_root_dir DIR; in Python, "
    "Trainer(default_root_dir=...)) or with a logger, which gives each run a new version_N folder"
)


# What a run that would draw says once without matplotlib (it still writes its CSVs).
PLOTS_SKIPPED = "plots skipped: matplotlib is missing (pip install 'classic-cnns[plot]')"


def matplotlib_missing() -> bool:
    """Whether matplotlib, the optional ``plot`` extra, cannot be imported.

    Example:
        >>> matplotlib_missing()  # installed here
        False
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return True
    return False


def require_matplotlib(caller: str) -> None:
    """Refuse to draw without matplotlib, naming ``caller`` and how to install it.

    Example:
        >>> require_matplotlib("plot_curves")  # installed here: nothing to say
    """
    if matplotlib_missing():
        raise ImportError(
            f"{caller} draws with matplotlib, which is not installed: "
            "pip install 'classic-cnns[plot]'"
        )


def save_png(fig: Any, path: Path) -> None:
    """Save a matplotlib figure as a PNG at ``path``, whole or not at all.

    Written beside the file and renamed over it, so an earlier figure survives a failure.

    Example:
        >>> from matplotlib.figure import Figure
        >>> save_png(Figure(figsize=(1, 1)), Path("blank.png"))
        >>> Path("blank.png").read_bytes()[:4]
        b'\\x89PNG'
    """
    with atomic_path(path) as tmp:  # the format is given: tmp's name does not end in .png
        fig.savefig(tmp, format="png", dpi=110)


def refuse_replacing(
    trainer: L.Trainer,
    paths: Sequence[Path],
    own: Callable[[Path], bool],
    owner: str,
    advice: str,
    overwrite: bool = False,
) -> None:
    """Raise ``FileExistsError`` on every process if one of ``paths`` is there and not ``own``
    (with ``overwrite``, only if it is a folder, which no file replaces).

    What :class:`~classic_cnns.plots.TrainingPlots` and
    :class:`~classic_cnns.predict.PredictionCSV` check before they write: the global-zero
    process looks, the others hear its answer. ``advice`` says how to keep the file (the
    message adds: delete it, or ``owner(overwrite=True)``).

    Example:
        >>> import lightning as L
        >>> trainer = L.Trainer(logger=False)
        >>> refuse_replacing(trainer, [Path("none.csv")], lambda p: False, "Writer", "move")
        >>> _ = Path("mine.csv").write_text("a user's file")
        >>> refuse_replacing(trainer, [Path("mine.csv")], lambda p: False, "Writer",
        ...                  "write elsewhere")
        Traceback (most recent call last):
        ...
        FileExistsError: mine.csv: the file exists, and this run's Writer did not write it ...
    """
    clash = folder = None
    if trainer.is_global_zero:  # a link is replaced too, even one to nothing
        folder = next((p for p in paths if p.is_dir() and not p.is_symlink()), None)
        if not overwrite:
            clash = next((p for p in paths if os.path.lexists(p) and not own(p)), None)
    clash, folder = trainer.strategy.broadcast((clash, folder))
    if folder is not None:
        raise FileExistsError(
            f"{folder}: a folder, where this run's {owner} writes a file; expected a file path "
            f"or nothing there. {advice[0].upper()}{advice[1:]}, or move the folder"
        )
    if clash is not None:
        raise FileExistsError(
            f"{clash}: the file exists, and this run's {owner} did not write it but would "
            f"replace it. To keep it, {advice}, or delete it; {owner}(overwrite=True) "
            "replaces such files"
        )
