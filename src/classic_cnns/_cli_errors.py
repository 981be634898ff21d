"""The command line's one-line errors and quiet runs: which errors a user can act on (printed
as one message, exit status 2) and the warnings and tips a user neither caused nor can act on.
"""

from __future__ import annotations

import argparse
import logging
import re
import warnings
from pathlib import Path

from lightning.fabric.utilities.exceptions import MisconfigurationException

# -- errors -------------------------------------------------------------------------------
_PACKAGE_DIR = Path(__file__).resolve().parent
_USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # bad arguments and data, checkpoint errors
    TypeError,
    OSError,  # missing files and folders
    ImportError,  # a missing extra
    MisconfigurationException,  # Lightning's word for a Trainer set up wrongly
    argparse.ArgumentError,  # the parser's validation
)


def _raised_by_package(err: BaseException) -> bool:
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(
        _PACKAGE_DIR
    )


def _condense(message: str) -> str:
    # jsonargparse explains a value that fits no member of an Optional[...] type with a
    # block per member; a user needs the key and the reason of the member that is not None.
    if "Does not validate against any of the Union subtypes" not in message:
        return message
    keys = re.findall(r'Parser key "([^"]+)"', message)
    frame = ("Does not validate", "Subtypes:", "Errors:", "Given value", "Problem with given",
             "Parser key")  # fmt: skip
    reasons = []
    for line in message.splitlines():
        text = line.strip().removeprefix("- ").strip()
        if text and not text.startswith(frame) and "NoneType" not in text:
            reasons.append(text)
    given = re.search(r"Given value: (.*)", message)
    value = f" {given[1]}" if given and not given[1].startswith("NestedArg(") else ""
    return f"--{'.'.join(keys)}{value}: {'; '.join(reasons) or message}"


def user_error_message(err: BaseException) -> str | None:
    """The message to print for an error a user can act on, else ``None`` (a bug: traceback).

    The innermost error the package raised in the chain of causes wins (the parser wraps a
    datamodule's ``ValueError`` in its own message); a ``RuntimeError`` counts only when the
    package raised it (a failed download).
    """
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in chain:
        chain.append(current)
        # `raise ... from None` hides the context: the new error says more (a layer's name).
        hidden = current.__suppress_context__
        current = current.__cause__ or (None if hidden else current.__context__)
    for cause in reversed(chain):
        if isinstance(cause, (*_USER_ERRORS, RuntimeError)) and _raised_by_package(cause):
            return str(cause)
    if not isinstance(err, _USER_ERRORS):
        return None
    if "loaded state dict" in str(err) and "group" in str(err):  # torch's Optimizer
        return (
            f"{_condense(str(err))}: the checkpoint's optimizer is not this run's. Resume with "
            "the interrupted run's --optimizer and --lr_scheduler flags (or -c its config.yaml)"
        )
    return _condense(str(err))


# -- quiet runs ----------------------------------------------------------------------------
_NOISE = (
    # In-memory datamodules are fastest without worker processes.
    r".*does not have many workers",
    # main() hands LightningCLI the command line as ``args``; not a mix-up.
    r".*args parameter is intended to run from within Python",
    # Lightning's own use of a torch API torch deprecated.
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    # The task logs per epoch; step logging is what the warning is about.
    r".*smaller than the logging interval",
    # Said once, in words, by ClassicCLI.
    r".*configure_optimizers` will be overridden by",
    # A resumed run writes to a new version folder by design.
    r"The dirpath has changed from",
)


class _NoTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in str(record.msg)


def quiet_lightning() -> None:
    """Silence the warnings and tips a user neither caused nor can act on."""
    for pattern in _NOISE:
        warnings.filterwarnings("ignore", pattern)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoTips) for f in logger.filters):
            logger.addFilter(_NoTips())
