"""The command line's one-line errors and quiet runs: which errors a user can act on (printed
as one message, exit status 2) and the warnings and tips a user neither caused nor can act on.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import importlib.metadata
import inspect
import logging
import re
import sys
import textwrap
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch.multiprocessing.spawn import ProcessRaisedException

from classic_cnns._checks import suggest
from classic_cnns._cli_args import LIGHTNING_COMMANDS, config_options
from classic_cnns.files import NoRoomError

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


_UNION = "Does not validate against any of the Union subtypes"
_CHOSEN = re.compile(r"Problem with given class_path '([^']+)':")


def _members(message: str) -> list[tuple[str, str]]:
    # The "Errors:" of a Union error: (first line, the lines under it, dedented) per member.
    lines = message.splitlines()
    at = next((i for i, line in enumerate(lines) if line.strip() == "Errors:"), len(lines))
    if at == len(lines):
        return []
    indent = len(lines[at]) - len(lines[at].lstrip())
    members: list[tuple[str, list[str]]] = []
    for line in lines[at + 1 :]:
        depth = len(line) - len(line.lstrip())
        if line.strip() and depth <= indent:  # "Given value type:": the section ends
            break
        if depth == indent + 2 and line.lstrip().startswith("- "):
            members.append((line.strip()[2:], []))
        elif members and line.strip():
            members[-1][1].append(line)
    return [(head, textwrap.dedent("\n".join(body))) for head, body in members]


def _extra_of(package: str) -> str | None:
    # The first of the project's extras (pyproject.toml) that installs the package, not "dev".
    try:
        requires = importlib.metadata.requires("classic-cnns") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for requirement in requires:
        found = re.match(r"([\w.-]+).*extra == \"(\w+)\"", requirement)
        if found and found[1].lower() == package.lower() and found[2] != "dev":
            return found[2]
    return None


def _reasons(text: str) -> list[str]:
    # The lines of a member's reason, each once; a package that one of the project's extras
    # installs is named with that extra, in place of the library's own pip hints.
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    missing = re.findall(r"Requirement '([\w.-]+)' not met|No module named '([\w.-]+)'", text)
    extras = {e for names in missing for name in names if name and (e := _extra_of(name))}
    if extras:
        lines = [line for line in lines if not line.startswith("Requirement '")]
        lines = [re.sub(r"\s*[^.;]*`?pip install[^.;]*[.;]?", "", line).strip() for line in lines]
        lines = [line for line in lines if line] or ["a package is missing"]
        hint = " or ".join(f"pip install 'classic-cnns[{e}]'" for e in sorted(extras))
        lines[-1] = f"{lines[-1].rstrip('.')} (install the extra: {hint})"
    lines = [_NUMBER_NOT_STR.sub(_QUOTE_IT, line) for line in lines]
    return list(dict.fromkeys(line for line in lines if line))


# A number where a string is expected: class names of folders named 0, 1, ... (--data.classes).
# The value shown is the number parsed (01 shows as 1): the advice is how to write it.
_NUMBER_NOT_STR = re.compile(r"(Expected a <class 'str'>\. Got value: -?[\d.e+-]+)$")
_QUOTE_IT = r"""\1, a number: quote each name as it is spelled, e.g. '["01", "02"]'"""


def _condense(message: str, key: str | None = None) -> str:
    # jsonargparse explains a value that fits no member of a Union type (an Optional[...], a
    # logger that may be a class, a list or a bool) with a block per member: one line, with
    # the flag (``key``, else the message's "Parser key"), the value and the reasons; the
    # chosen class's init arguments not given are named as flags (--data.root).
    if _UNION not in message:
        return message
    outer = re.match(r'Parser key "([^"]+)":', message)
    key = key or (outer[1] if outer else None)
    where, value, reasons = _explain(message)
    flag = f"--{key}{where}" if key else where.lstrip(".")
    if key and not where and _CHOSEN.search(message):  # the chosen class's arguments: flags
        reasons = [_REQUIRED.sub(lambda m: _required_flags(m, key), r) for r in reasons]
    return f"{flag}{value}: {'; '.join(reasons) or message}".lstrip()


# jsonargparse's words for a class's init arguments not given (4.53, then 4.40's, which may
# say "Validation failed: " first and end with a period).
_REQUIRED = re.compile(
    r"(?:Validation failed: )?(?:the following arguments are required: (.+?)"
    r'|Key "([\w.]+)" is required[^.;]*)\.?$'
)


def _required_flags(found: re.Match[str], key: str) -> str:
    # jsonargparse names a class's missing init arguments (root, depth); a user types them as
    # flags under the one that chose the class (--data.root).
    names = (n.strip().removeprefix("init_args.") for n in (found[1] or found[2]).split(","))
    flags = ", ".join(f"--{key}.{n}" for n in names if n)
    return f"the following arguments are required: {flags}"


def _explain(message: str) -> tuple[str, str, list[str]]:
    # (the key of a class's argument, the value shown, the reasons) of a Union error. A
    # class the user chose (class_path) gives that class's reasons: the other members' (a
    # list, a bool) do not apply; any other value, the reasons of the members but None.
    if _UNION not in message:
        return "", "", _reasons(message)
    members = _members(message)
    chosen = [(m, body) for head, body in members if (m := _CHOSEN.match(head))]
    if chosen:
        match, body = chosen[0]
        inner = re.match(r'Parser key "([^"]+)":\n', body)
        if inner is None:
            return "", f" {match[1].rpartition('.')[2]}", _explain(body)[2]
        # An argument of the class (--trainer.logger.flush_logs_every_n_steps abc).
        nested = re.search(
            r"Given value: NestedArg\(key='[^']*', val=(['\"]?)(.*)\1\)$", message, re.M
        )
        value = f" {nested[2]}" if nested else ""
        return f".{inner[1]}", value, _explain(textwrap.dedent(body[inner.end() :]))[2]
    reasons = [r for head, body in members if "NoneType" not in head
               for r in _reasons(f"{head}\n{body}")]  # fmt: skip
    given = re.search(r"Given value: (.*)", message)
    plain = given is not None and not given[1].startswith(("NestedArg(", "Namespace(", "["))
    return "", f" {given[1]}" if given and plain else "", list(dict.fromkeys(reasons))


def _flags_choosing(config: Any, class_path: str) -> list[str]:
    # The keys of a parsed configuration whose class (or one in their list) is class_path.
    keys = []
    for key, value in config.items():
        items = value if isinstance(value, list) else [value]
        if key.endswith(".class_path") and value == class_path:
            keys.append(key.removesuffix(".class_path"))
        elif any(getattr(item, "class_path", None) == class_path for item in items):
            keys.append(key)
    return keys


def class_error(err: BaseException, config: Any) -> ValueError | None:
    r"""A one-line error naming the flag of a class that failed to build, else ``None``.

    jsonargparse reports a class of a Union-typed flag (``--trainer.logger``) that fails to
    build by its value alone; ``config`` (the parsed configuration) says which flag chose it.

    Example:
        >>> from jsonargparse import Namespace
        >>> err = ValueError(
        ...     "Does not validate against any of the Union subtypes\nErrors:\n"
        ...     "  - Problem with given class_path 'a.Logger':\n      no disk\n"
        ...     "  - Expected a <class 'bool'>\nGiven value: Namespace(class_path='a.Logger')")
        >>> config = Namespace(trainer=Namespace(logger=Namespace(class_path="a.Logger")))
        >>> class_error(err, config)
        ValueError('--trainer.logger Logger: no disk')
    """
    message = str(err)
    chosen = _CHOSEN.search(message)
    if _UNION not in message or message.startswith("Parser key") or chosen is None:
        return None
    keys = _flags_choosing(config, chosen[1])
    if len(keys) != 1:  # not found, or two flags chose the class: not guessed
        return None
    return ValueError(_condense(message, keys[0]))


def closed_pipe(err: BaseException) -> bool:
    """Whether ``err`` says that standard output's reader has gone (``classic-cnns list | head
    -1``): a ``BrokenPipeError``, or on Windows, whose pipes raise ``EINVAL`` instead
    (CPython issue 79935), an ``EINVAL`` that standard output raises again when flushed (a bad
    file name raises ``EINVAL`` there too).

    Example:
        >>> closed_pipe(BrokenPipeError()), closed_pipe(OSError(errno.EINVAL, "a bad name"))
        (True, False)
    """
    if isinstance(err, BrokenPipeError):
        return True
    if sys.platform != "win32" or not isinstance(err, OSError) or err.errno != errno.EINVAL:
        return False
    try:
        sys.stdout.flush()
    except OSError:
        return True
    return False


def user_error_message(err: BaseException) -> str | None:
    """The message to print for an error a user can act on, else ``None`` (a bug: traceback).

    The innermost error the package raised in the chain of causes wins (the parser wraps a
    datamodule's ``ValueError`` in its own message), unless an outer one of the package's
    quotes it with more (a failed download's URL and folder); a ``RuntimeError`` counts only
    when the package raised it. An error in a worker that ``ddp_spawn`` started
    arrives as torch's ``ProcessRaisedException`` holding the worker's traceback as text:
    its errors count as if raised here.

    Example:
        >>> user_error_message(ValueError("--data.batch_size must be positive; got 0"))
        '--data.batch_size must be positive; got 0'
        >>> user_error_message(KeyError("a bug")) is None
        True
    """
    chain: list[tuple[type[BaseException] | None, str, bool]] = []  # outermost first
    current: BaseException | None = err
    seen: list[BaseException] = []
    while current is not None and current not in seen:
        seen.append(current)
        if isinstance(current, NoRoomError):  # it names the file; the errors under it do not
            return str(current)
        if isinstance(current, ProcessRaisedException):  # the worker's chain, as text
            chain += reversed(_spawned_chain(str(current)))
        else:
            chain.append((type(current), str(current), _raised_by_package(current)))
        # `raise ... from None` hides the context: the new error says more (a layer's name).
        hidden = current.__suppress_context__
        current = current.__cause__ or (None if hidden else current.__context__)
    told = [m for k, m, o in chain if o and k and issubclass(k, (*_USER_ERRORS, RuntimeError))]
    if told:  # the innermost, or an outer one that quotes it with more (a URL, a folder)
        return next(message for message in told if told[-1] in message)
    kind, message, _ = chain[0]
    if kind is RuntimeError and message.startswith("Early stopping conditioned on metric"):
        return _condense(message)  # a --trainer.callbacks.monitor typo, as ModelCheckpoint's
    if kind is None or not issubclass(kind, _USER_ERRORS):
        return None
    if "loaded state dict" in message and "group" in message:  # torch's Optimizer
        return (
            f"{_condense(message)}: the checkpoint's optimizer is not this run's. Resume with "
            "the interrupted run's --optimizer and --lr_scheduler flags (or -c its config.yaml)"
        )
    return _condense(message)


@contextlib.contextmanager
def named_unknown_options(parser: Any, args: Sequence[str]) -> Iterator[None]:
    """Add close names, and the ``--config`` file that holds it, to an unknown option's error.

    jsonargparse names the option alone: ``unrecognized arguments: --trainer.max_epochz 1``
    (a flag), ``Subcommand 'fit' does not accept option 'trainer.max_epochz'`` (a config
    file's key) and ``--model LeNet5: Option 'lrr' is not accepted`` (a class's argument,
    from either). ``parser`` is LightningCLI's, with a parser per command.

    Example:
        >>> with named_unknown_options(None, ["fit", "-c", "{model: {init_args: {lrr: 1}}}"]):
        ...     raise argparse.ArgumentError(None, "--model LeNet5: Option 'lrr' is not accepted")
        Traceback (most recent call last):
        ...
        ValueError: -c {model: ...}: --model LeNet5: Option 'lrr' ... Did you mean 'lr'?
    """
    try:
        yield
    except argparse.ArgumentError as err:
        message = user_error_message(err) or ""
        command = next((a for a in args if a in LIGHTNING_COMMANDS), None)
        choices = getattr(getattr(parser, "_subcommands_action", None), "choices", {})
        flags = [
            f for f in getattr(choices.get(command), "_option_string_actions", {}) if f[1:2] == "-"
        ]
        if found := re.match(r"unrecognized arguments: (.*)", message):  # flags: no file
            unknown = [a for a in found[1].split() if a.startswith("--")]
            hints = [suggest(a, flags) for a in unknown]
            if len(unknown) > 1:  # each flag's, named
                hints = [
                    f" {a}:{h.replace(' Did', ' did', 1)}" if h else ""
                    for a, h in zip(unknown, hints, strict=True)
                ]
            raise ValueError(message + "." + "".join(hints)) from err
        if found := re.match(r"Subcommand '\w+' does not accept option '([\w.]+)'", message):
            section, _, key = found[1].rpartition(".")
            close = suggest(found[1], [f.removeprefix("--") for f in flags])
        elif found := re.match(r"--([\w.]+) ([\w.]+): Option '(\w+)' is not accepted", message):
            section, key = found[1], found[3]
            close = suggest(key, _argument_names(found[2]))
            if key == "class_path":  # beside the class's arguments, which jsonargparse took
                close = f" Put the class's arguments under init_args: ({section}: {{class_path: "
                close += "..., init_args: {...}})"
        else:
            raise
        raise ValueError(f"{_config_giving(args, section, key)}{message}.{close}") from err


def check_optimizer_arguments(config: Any) -> None:
    """Build ``--optimizer`` (and ``--lr_scheduler`` on it) once for a stand-in parameter, so
    that a value torch refuses is named with its flag before any data is read.

    Raises:
        ValueError: torch's reason, after the flag and the class (``--optimizer Adam:
            Invalid learning rate: -1.0``).

    Example:
        >>> from jsonargparse import Namespace
        >>> adam = Namespace(class_path="torch.optim.Adam", init_args=Namespace(lr=-1.0))
        >>> check_optimizer_arguments(Namespace(optimizer=adam))
        Traceback (most recent call last):
        ...
        ValueError: --optimizer Adam: Invalid learning rate: -1.0
    """
    parameter = torch.nn.Parameter(torch.zeros(1))
    built: Any = torch.optim.SGD([parameter], lr=0.1)
    for flag in ("optimizer", "lr_scheduler"):
        given = config.get(flag)
        if not isinstance(getattr(given, "class_path", None), str):
            continue
        name = given.class_path.rpartition(".")[2]
        init = given.get("init_args")
        kwargs = init.as_dict() if hasattr(init, "as_dict") else dict(init or {})
        if (cls := import_named(given.class_path)) is None:
            return  # LightningCLI says what is wrong with the path
        try:
            built = cls([parameter] if flag == "optimizer" else built, **kwargs)
        except ValueError as err:
            raise ValueError(f"--{flag} {name}: {err}") from err
        except Exception:  # a class of the user's that wants more than this: the run will say
            return


def import_named(name: str, homes: Sequence[str] = ()) -> Any:
    """What a dotted import path names (``torch.optim.SGD``); a bare name is looked up in
    ``homes``, in order. ``None`` where nothing is found: the callers' errors say more.

    Example:
        >>> import_named("torch.optim.SGD").__name__, import_named("SGD", ["torch.optim"]).__name__
        ('SGD', 'SGD')
        >>> import_named("no_such_module.Thing") is None
        True
    """
    module, _, attribute = name.rpartition(".")
    for home in [module] if module else homes:
        with contextlib.suppress(ImportError, AttributeError, ValueError):
            return getattr(importlib.import_module(home), attribute)
    return None


def _argument_names(name: str) -> list[str]:
    # The init arguments of the class a command line names (LeNet5, SGD, my_package.MyData).
    homes = ("classic_cnns", "torch.optim", "torch.optim.lr_scheduler", "lightning.pytorch",
             "lightning.pytorch.callbacks", "lightning.pytorch.loggers")  # fmt: skip
    with contextlib.suppress(TypeError, ValueError):  # None, or no signature to read
        found = inspect.signature(import_named(name, homes))
        return [p.name for p in found.parameters.values() if p.kind <= p.KEYWORD_ONLY]
    return []


def _config_giving(args: Sequence[str], section: str, key: str) -> str:
    # "--config FILE: " of the first config file that sets the key (directly in its section
    # or under init_args), unless a flag gives it; else "".
    if any(a.split("=")[0] in (f"--{section}.{key}", f"--{section}.init_args.{key}") for a in args):
        return ""
    for i, used, content in config_options(args):
        value: Any = content
        for part in section.split(".") if section else []:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, dict) and key in {**value, **(value.get("init_args") or {})}:
            return (
                f"{args[i]} {args[i + 1]}: " if used == 2 else f"{args[i].replace('=', ' ', 1)}: "
            )
    return ""


_CHAINED = re.compile(
    r"\n\n(?:The above exception was the direct cause of the following exception|"
    r"During handling of the above exception, another exception occurred):\n\n"
)
_FRAME = re.compile(r'^  File "([^"]+)", line \d+', re.M)


def _spawned_chain(text: str) -> list[tuple[type[BaseException] | None, str, bool]]:
    # (type, message, raised by the package) of each error of a worker's formatted traceback,
    # the root cause first; the type is None where it cannot be imported here.
    errors = []
    for section in _CHAINED.split(text):
        frames = list(_FRAME.finditer(section))
        if not frames:
            continue
        lines = section[frames[-1].end() :].splitlines()[1:]
        at = next((i for i, line in enumerate(lines) if line and not line[0].isspace()), None)
        if at is None:
            continue
        name, _, first = lines[at].partition(":")
        message = "\n".join([first.strip(), *lines[at + 1 :]]).strip()
        ours = Path(frames[-1][1]).resolve().is_relative_to(_PACKAGE_DIR)
        errors.append((_exception_type(name.strip()), message, ours))
    return errors


def _exception_type(name: str) -> type[BaseException] | None:
    # The exception class a traceback names (ValueError, classic_cnns.files.CheckpointError),
    # among the modules imported here (a traceback's text imports nothing).
    module, _, attr = name.rpartition(".")
    found = getattr(sys.modules.get(module or "builtins"), attr, None)
    return found if isinstance(found, type) and issubclass(found, BaseException) else None


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
    # --data.val_size 0: no validation split, as asked (val_dataloader returns []).
    r"Total length of `list` across ranks is zero",
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
