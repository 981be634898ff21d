"""The distributed process group's clean-up at exit, which Lightning leaves to gloo runs."""

from __future__ import annotations

import atexit
import time

import torch

__all__ = ["destroy_at_exit"]


def destroy_at_exit() -> None:
    """Destroy the default process group when this process exits (registered once).

    Lightning destroys an NCCL group itself; a gloo group left to the interpreter's shutdown
    can abort the process with "terminate called without an active exception"
    (pytorch/pytorch#190489).

    Example:
        >>> destroy_at_exit()  # no process group here: nothing to register
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        atexit.unregister(_destroy_process_group)  # once per process
        atexit.register(_destroy_process_group)


def _destroy_process_group() -> None:
    # Gloo's worker threads take the GIL to free a finished collective's tensors, and
    # destroying the group waits for them holding the GIL (a deadlock seen in torch 2.6's
    # ddp_spawn): a pause lets them finish first.
    if torch.distributed.is_initialized():
        time.sleep(0.1)
        torch.distributed.destroy_process_group()
