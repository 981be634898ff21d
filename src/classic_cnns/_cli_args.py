"""What a command line and the environment choose, read before LightningCLI parses them:
the default classes added where they choose none, and the model settings a checkpoint is
checked against.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")

# The classes a command line gets when it names none. Their arguments are the classes'
# own defaults: the classes are added as flags before the user's, not as parser defaults,
# since jsonargparse carries a default class's arguments over to a class chosen instead.
# Per-model training recipes (optimizer, lr, batch size, epochs) belong here too, added as
# flags in the same place, so that the user's own flags still win.
DEFAULT_CLASSES = {"model": "classic_cnns.LeNet5", "data": "classic_cnns.Digits"}


def option_values(args: Sequence[str], option: str) -> list[tuple[int, str, int]]:
    # (index, value, tokens used) of every "--option value" and "--option=value".
    found = []
    for i, arg in enumerate(args):
        if arg == option and i + 1 < len(args):
            found.append((i, args[i + 1], 2))
        elif arg.startswith(option + "="):
            found.append((i, arg.split("=", 1)[1], 1))
    return found


def config_options(args: Sequence[str]) -> list[tuple[int, int, dict[str, Any]]]:
    # (index, tokens used, content) of the --config files (or YAML strings) on the command
    # line that hold a mapping, in order.
    found = []
    for i, value, used in [*option_values(args, "--config"), *option_values(args, "-c")]:
        try:
            text = Path(value).read_text(encoding="utf-8") if Path(value).is_file() else value
            loaded = yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError):
            continue
        if isinstance(loaded, dict):
            found.append((i, used, loaded))
    return sorted(found, key=lambda option: option[0])


def configs(args: Sequence[str]) -> list[dict[str, Any]]:
    # The configurations in the order jsonargparse applies them: the environment's, then
    # each --config (flags after them win).
    return [*environment_configs(args), *(config for _, _, config in config_options(args))]


def environment_configs(args: Sequence[str]) -> list[dict[str, Any]]:
    """What jsonargparse reads from the environment when ``JSONARGPARSE_DEFAULT_ENV=true``, as
    configurations: ``PL_FIT__CONFIG``'s, then ``PL_FIT__MODEL``, ``PL_FIT__DATA`` and
    ``PL_FIT__TRAINER__LOGGER`` (for ``fit``; ``PL_`` alone without a subcommand).

    The classes they choose are the user's, as a config file's are: no default is added over
    them (a command-line ``--model`` would win over ``PL_FIT__MODEL``).

    Example:
        >>> import os
        >>> os.environ.update(JSONARGPARSE_DEFAULT_ENV="true", PL_FIT__MODEL="{class_path: ResNet}")
        >>> environment_configs(["fit", "--trainer.max_epochs", "1"])
        [{'model': {'class_path': 'ResNet'}}]
        >>> for name in ("JSONARGPARSE_DEFAULT_ENV", "PL_FIT__MODEL"):
        ...     del os.environ[name]
    """
    if os.environ.get("JSONARGPARSE_DEFAULT_ENV", "").lower() != "true":
        return []
    prefix = f"PL_{args[0].upper()}__" if args and args[0] in LIGHTNING_COMMANDS else "PL_"
    path = os.environ.get(prefix + "CONFIG")
    found = [config for _, _, config in config_options([] if path is None else ["-c", path])]
    given: dict[str, Any] = {}
    for key, name in (("model", "MODEL"), ("data", "DATA"), ("logger", "TRAINER__LOGGER")):
        if (value := os.environ.get(prefix + name)) is not None:
            try:
                given[key] = yaml.safe_load(value)
            except yaml.YAMLError:
                given[key] = value  # jsonargparse says what is wrong with it
    if "logger" in given:
        given["trainer"] = {"logger": given.pop("logger")}
    return [*found, given] if given else found


def config_model_flags(args: Sequence[str]) -> list[str]:
    """The flags that the ``--config`` files' ``model`` sections stand for (and the
    environment's, see :func:`environment_configs`).

    Its class, and each argument it sets (``null`` sets none: the recipe's value).

    Example:
        >>> config_model_flags(["validate", "-c", "{model: {class_path: ResNet}}"])
        ['--model']
        >>> config_model_flags(["fit", "-c", "{model: {init_args: {arch: resnet20, lr: null}}}"])
        ['--model', '--model.arch']
        >>> config_model_flags(["fit", "-c", "{model: {init_args: {lr: 0.1}}}",
        ...                     "-c", "{model: {init_args: {lr: null}}}"])  # the later file's
        ['--model']
    """
    flags, given = [], {}
    for config in configs(args):  # in order: a later file's value replaces an earlier one's
        if "model" not in config:
            continue
        flags.append("--model")
        model = config["model"] if isinstance(config["model"], dict) else {}
        given.update({k: v for k, v in model.items() if k not in ("class_path", "init_args")})
        given.update(model.get("init_args") or {})
    return flags[:1] + [f"--model.{key}" for key, value in given.items() if value is not None]


def _chooses(section: Any) -> bool:
    # A config's model or data section chooses a class by a name, a class_path or (the model,
    # which ImageClassifier builds) an arch; other arguments alone do not.
    if not isinstance(section, dict):
        return isinstance(section, str)
    args = section.get("init_args")
    return "class_path" in section or "arch" in (args if isinstance(args, dict) else section)


def add_default_classes(args: Sequence[str], at: int) -> list[str]:
    """Insert ``--model``/``--data`` with the default classes at ``at`` where none is chosen,
    and the default CSV logger (``save_dir`` ``.``, see :func:`place_default_logger`) where
    no logger is: not a parser default, whose arguments jsonargparse would carry over to a
    logger the user chose (a ``WandbLogger`` named ``lightning_logs``).

    Example:
        >>> add_default_classes(["fit", "--trainer.logger", "TensorBoardLogger"], 1)[1:3]
        ['--model=classic_cnns.LeNet5', '--data=classic_cnns.Digits']
        >>> add_default_classes(["fit", "--model", "nin"], 1)[1:]  # doctest: +ELLIPSIS
        ['--data=classic_cnns.Digits', '--trainer.logger=...CSVLogger', ..., '--model', 'nin']
    """
    given = configs(args)  # read once: the files and the environment
    chosen = {k for config in given for k, v in config.items() if _chooses(v)}
    for key in DEFAULT_CLASSES:
        if option_values(args, f"--{key}") or option_values(args, f"--{key}.class_path"):
            chosen.add(key)
    extra = [f"--{key}={path}" for key, path in DEFAULT_CLASSES.items() if key not in chosen]
    chooses = ("--trainer.logger=", "--trainer.logger+=", "--trainer.logger.class_path")
    configured = any("logger" in (c.get("trainer") or {}) for c in given)
    if not configured and not any(a == "--trainer.logger" or a.startswith(chooses) for a in args):
        extra += ["--trainer.logger=lightning.pytorch.loggers.CSVLogger"]
        extra += ["--trainer.logger.save_dir=."]
    args = list(args)
    appended = [(i, a.split("=", 1)[1], 1) for i, a in enumerate(args) if a.startswith(chooses[1])]
    for i, value, used in sorted([*option_values(args, "--trainer.logger"), *appended])[::-1]:
        if value.strip("[]").rsplit(".", 1)[-1] in ("CSVLogger", "TensorBoardLogger"):
            args.insert(i + used, "--trainer.logger.save_dir=.")  # a folder: "." (the root)
    return [*args[:at], *extra, *args[at:]]


def check_config_files(args: Sequence[str]) -> None:
    """Check that each ``--config FILE`` (``-c``) holds a YAML mapping of options.

    Raises:
        ValueError: naming the file, for YAML that does not parse (with the line and column)
            and for a file that holds something other than a mapping (a list, a number).

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        ...     _ = f.write("trainer: [1, 2\\n")
        ...     f.flush()
        ...     check_config_files(["fit", "--config", f.name])
        Traceback (most recent call last):
        ...
        ValueError: --config ...yaml: not valid YAML: expected ',' or ']', ... at line 2, column 1
    """
    for flag in ("--config", "-c"):
        for _, value, _ in option_values(args, flag):
            if not Path(value).is_file():
                continue  # a YAML string, or a missing file: jsonargparse says which
            try:
                loaded = yaml.safe_load(Path(value).read_text(encoding="utf-8"))
            except yaml.YAMLError as err:
                mark = getattr(err, "problem_mark", None)
                where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
                problem = getattr(err, "problem", None) or str(err)
                raise ValueError(f"{flag} {value}: not valid YAML: {problem}{where}") from err
            if not isinstance(loaded, dict | None):
                raise ValueError(
                    f"{flag} {value}: expected a mapping of options (trainer:, model:, data:, "
                    f"...); the file holds a {type(loaded).__name__}"
                )
