"""The command line across the processes of a launch: the seed they share, which one speaks.

A multi-process run starts its processes one of two ways: Lightning's own DDP launcher
(the first process parses the command line, then starts the others, which parse it again
with ``WORLD_SIZE`` and Lightning's ``PL_GLOBAL_SEED`` set; ``ddp_spawn`` forks workers off
the first), or an outside launcher (``torchrun``, ``srun``) that starts every process itself.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.strategies.launchers import _MultiProcessingLauncher
from lightning.pytorch.utilities.rank_zero import rank_zero_only

__all__ = ["LAUNCH_GRACE_S", "command_error", "launch_seed", "output_refusal", "pin_log_dir"]
__all__ += ["say_error"]


def _count(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env.get(name, "1"))
    except ValueError:
        return 1


def launch_seed(seed: Any, environ: Mapping[str, str] | None = None) -> Any:
    """The seed ``--seed_everything`` stands for: a random one for ``true``, else ``seed``.

    ``true`` draws a fresh seed in a single process and in the first process of Lightning's
    own launch (``WORLD_SIZE`` not yet set), whose seed Lightning hands to the processes it
    starts as ``PL_GLOBAL_SEED``. A process of a launch (``WORLD_SIZE`` or ``SLURM_NTASKS``
    above 1) takes ``PL_GLOBAL_SEED``: all processes train with one seed, the one
    ``config.yaml`` records. A launcher that sets none (``torchrun``, ``srun``) starts
    processes that cannot agree on a random seed: ``true`` is refused there.

    Args:
        seed: The parsed ``--seed_everything`` value (``True``, ``False`` or an int).
        environ: The environment to read; ``None``: ``os.environ``.

    Raises:
        ValueError: for ``true`` in a process of a launch that set no ``PL_GLOBAL_SEED``, or
            if ``PL_GLOBAL_SEED`` is not an int.

    Example:
        >>> launch_seed(7)
        7
        >>> launch_seed(True, {"WORLD_SIZE": "2", "PL_GLOBAL_SEED": "1234"})
        1234
        >>> 0 <= launch_seed(True, {}) < 2**32
        True
    """
    if seed is not True:
        return seed
    env = os.environ if environ is None else environ
    if _count(env, "WORLD_SIZE") <= 1 and _count(env, "SLURM_NTASKS") <= 1:
        return random.SystemRandom().randrange(2**32)  # a single process, or Lightning's first
    given = env.get("PL_GLOBAL_SEED")
    if given is None:
        launch = "WORLD_SIZE" if _count(env, "WORLD_SIZE") > 1 else "SLURM_NTASKS"
        raise ValueError(
            f"--seed_everything true: this process is one of a launch ({launch}="
            f"{env[launch]}) whose launcher set no PL_GLOBAL_SEED, so its processes would draw "
            "different seeds; pass an int seed (--seed_everything N), the same for every process"
        )
    try:
        return int(given)
    except ValueError:
        raise ValueError(f"PL_GLOBAL_SEED must be an int seed; got {given!r}") from None


# How long another process of a launch leaves rank 0 to say an error they share.
LAUNCH_GRACE_S = 5.0


def command_error(prog: str, message: str) -> int:
    """Say ``PROG: error: MESSAGE`` on stderr, as argparse and the LightningCLI commands do;
    return the exit status of a refused command, 2. For the commands of one process
    (``export``, ``predict-folder``, ``bench``).

    Example:
        >>> command_error("classic-cnns export", "no such file")  # (the line goes to stderr)
        2
    """
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2


def output_refusal(given: str, output: Path, checkpoint: Path, overwrite: bool) -> str | None:
    """Why a command's ``--output`` (``given``, read as ``output``) may not be written, else
    ``None``: a folder (also a path ending in a slash, which ``Path`` drops), the
    ``checkpoint`` it reads, or an existing file (a dangling link too) without ``overwrite``.
    For ``export`` and ``predict-folder``.

    Example:
        >>> output_refusal("out/", Path("out"), Path("m.ckpt"), overwrite=True)
        '--output out/ is a folder; give a file'
    """
    if output.is_dir() or given.endswith(("/", os.sep)):
        return f"--output {given} is a folder; give a file"
    if output.resolve() == checkpoint.resolve():
        return f"--output {given} is the checkpoint itself; pick another"
    if os.path.lexists(output) and not overwrite:
        return f"{output} exists; pass --overwrite to replace it"
    return None


def say_error(*lines: str) -> None:
    """Print an error's lines to stderr, once for a launch's processes that all meet it.

    Rank 0 (or a single process) prints at once. Another process waits ``LAUNCH_GRACE_S``
    first: if rank 0 met the error too, it has said it and exited by then, and the launcher
    (torchrun) stops this process before it prints, or, under Lightning's own launcher (rank
    0 started this process), this process finds it has another parent and prints nothing;
    if rank 0 went on, the error is this process's own, and it says so with its rank. (It
    printed nothing before, and a rank 0 slower to reach the error was stopped before it
    printed, when this process exited first.)

    Example:
        >>> say_error("classic-cnns fit: error: no such file")  # one process: at once
    """
    rank = getattr(rank_zero_only, "rank", 0)
    if rank:
        parent = os.getppid()
        time.sleep(LAUNCH_GRACE_S)
        if os.getppid() != parent:  # Lightning's launcher: rank 0 started it, said it, exited
            return
        lines = (f"(process {rank}) {lines[0]}", *lines[1:])
    for line in lines:
        print(line, file=sys.stderr)


def pin_log_dir(trainer: Trainer) -> None:
    """Under ``ddp_spawn``, fix the run's log folder (the logger's ``version_N``) before the
    workers start, so that this main process knows the folder they write to.

    A logger chooses its version when first asked; the workers, which get a copy of the
    trainer, would choose it after this process last looked.

    Example:
        >>> import lightning as L
        >>> pin_log_dir(L.Trainer(logger=False))  # one process: nothing to do
    """
    if isinstance(getattr(trainer.strategy, "launcher", None), _MultiProcessingLauncher):
        _ = trainer.log_dir  # the logger's version, chosen now and copied to the workers
