"""SIGTERM as an exception, so that what a block writes is cleaned up as after Ctrl-C."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from lightning.pytorch.utilities.exceptions import SIGTERMException

__all__ = ["SIGTERM_STATUS", "SIGTERMException", "sigterm_as_exit"]

SIGTERM_STATUS = 128 + signal.SIGTERM
"""The exit status of a process SIGTERM ends (the default action reports it): what a
command stopped by SIGTERM exits with, with Lightning's ``SIGTERMException`` (a
``SystemExit``, which Lightning raises with no status: 0).

Example:
    >>> SIGTERM_STATUS
    143
"""


def _exit(signum: int, frame: Any) -> None:
    # Lightning's class, which the command line reports as it does a Lightning run's SIGTERM
    # ("stopped by SIGTERM").
    raise SIGTERMException(SIGTERM_STATUS)


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """Within the block, SIGTERM (``kill``, ``timeout``, a job scheduler) raises
    ``SystemExit(143)`` (Lightning's ``SIGTERMException``, as a Lightning run's SIGTERM
    ends) where it would have ended the process at once: ``finally`` blocks and
    ``except BaseException`` run, as for Ctrl-C. Only where nothing else handles SIGTERM (a
    Lightning run's own handler is left alone) and in the main thread, where handlers live.

    Example:
        >>> import os, signal
        >>> previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)  # nothing handles it
        >>> with sigterm_as_exit():
        ...     try:
        ...         os.kill(os.getpid(), signal.SIGTERM)
        ...     except SystemExit as stop:
        ...         print(stop.code)
        143
        >>> signal.signal(signal.SIGTERM, previous) is signal.SIG_DFL  # after it: the default
        True
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
