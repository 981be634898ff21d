"""Warnings that point at the user's line, not at the package's.

A warning's file and line are where ``warnings.warn``'s ``stacklevel`` lands. A fixed level
is right for one way of reaching the code that warns and wrong for the others: the same
check runs under ``create_model``, a family class's ``__init__``, a datamodule's ``setup``
inside ``Trainer.fit``, or the CLI. :func:`warn` counts the frames instead, past this
package, Lightning, torch, jsonargparse and generated code (a dataclass-like ``__init__``),
so that the warning names the first line of the user's own code: the ``create_model(...)``,
``trainer.fit(...)`` or ``main([...])`` call that led to it (on the command line, the
``classic-cnns`` script), which is also the line a ``-W`` filter can match.
"""

from __future__ import annotations

import os
import sys
import warnings

import jsonargparse
import lightning
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_only

__all__ = ["user_stacklevel", "warn"]

# The folders of this package, Lightning, torch and jsonargparse (which builds the classes
# of a command line), as imported and with links resolved, and generated code: "<string>",
# "<frozen importlib._bootstrap>".
_SKIPPED = (
    *{
        os.path.join(os.path.dirname(path), "")
        for module in (__file__, lightning.__file__, torch.__file__, jsonargparse.__file__)
        for path in (module, os.path.realpath(module))
    },
    "<",
)


def user_stacklevel() -> int:
    """The ``stacklevel`` at which a warning issued by the caller names the user's line.

    The caller is level 1; the level returned is that of the first frame outside this
    package, Lightning, torch, jsonargparse and generated code (the outermost frame if all
    of them are).

    Example:
        >>> import warnings
        >>> from classic_cnns._warn import user_stacklevel
        >>> def check(value: int) -> None:  # a function of a package that warns
        ...     if value < 0:
        ...         warnings.warn(f"{value} < 0", stacklevel=user_stacklevel())
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     check(-1)
        >>> print(caught[0].message)
        -1 < 0
    """
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_SKIPPED):
        frame, level = frame.f_back, level + 1
    return level


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """Warn at the user's line (see :func:`user_stacklevel`), once: on rank 0 only under DDP.

    Example:
        >>> import warnings
        >>> from classic_cnns._warn import warn
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn("three epochs is few")
        >>> print(caught[0].category.__name__, caught[0].message)
        UserWarning three epochs is few
    """
    if getattr(rank_zero_only, "rank", 0) == 0:
        # Level 1 would be this function; user_stacklevel counts from its caller, this one.
        warnings.warn(message, category, stacklevel=user_stacklevel())
