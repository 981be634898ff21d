"""Writing a file whole or not at all, and the errors that name it.

:func:`atomic_path` and :func:`atomic_save` write to a temporary file beside the target and
rename it into place: an interrupted write never leaves a truncated file where a good one was.
A write that fails for lack of room (a full disk, a quota, a file-size limit) is an
``OSError`` that names the file, where torch's writers named none. :mod:`classic_cnns.files`
exports them.

Example:
    >>> import tempfile, torch
    >>> from classic_cnns.files import atomic_save
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     atomic_save({"w": torch.ones(2)}, f"{folder}/w.pt")
    ...     sorted(p.name for p in Path(folder).iterdir())
    ['w.pt']
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from classic_cnns._signals import sigterm_as_exit

__all__ = ["NoRoomError", "atomic_path", "atomic_save", "check_writable", "local_path"]
__all__ += ["refuse_folder"]

# A write refused for lack of room: a full disk, a quota, a file-size limit (ulimit -f).
_NO_ROOM = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def local_path(path: str | os.PathLike[str]) -> str:
    """A ``file://`` URL's path as fsspec reads it (``file:///C:/w.pt``: ``C:/w.pt`` on
    Windows), and ``~`` expanded; a plain path as it is.

    Example:
        >>> local_path("file:///tmp/w.pt")
        '/tmp/w.pt'
    """
    text = os.fspath(path)
    drive = os.name == "nt" and text.startswith("file:///") and text[9:10] == ":"
    return os.path.expanduser(text[8:] if drive else text.removeprefix("file://"))


def _written_file(path: str | os.PathLike[str]) -> Path:
    # The file atomic_path writes: a file:// URL's path; through a symbolic link, its target.
    path = Path(local_path(path))
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise ``OSError`` naming ``path`` unless :func:`atomic_path` can make its file there: in
    ``path``'s folder, or the nearest one that exists (the rest it creates). Nothing at
    ``path`` is touched; a probe file is made and removed.

    Example:
        >>> check_writable(Path(__file__, "out.csv"))  # a path under a file
        Traceback (most recent call last):
        ...
        NotADirectoryError: cannot write .../out.csv: ... is a file, not a folder
    """
    if isinstance(path, str) and path.endswith(("/", os.sep)):  # Path() would drop the slash
        raise IsADirectoryError(f"cannot write {path}: it ends in a slash; expected a file's path")
    target = _written_file(path)
    there = next(p for p in (target.parent, *target.parent.parents) if p.exists())
    if not there.is_dir():
        raise NotADirectoryError(f"cannot write {path}: {there} is a file, not a folder")
    try:
        handle, probe = tempfile.mkstemp(prefix=".classic-cnns-", suffix=".tmp", dir=there)
    except OSError as err:
        why = f"no file can be made in {there} ({err.strerror or err})"
        raise type(err)(f"cannot write {path}: {why}") from err
    os.close(handle)
    os.unlink(probe)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed onto ``path`` only if the block succeeds.

    The temporary file (``.<name>.<random>.tmp`` in the target's folder, created empty with the
    permissions a plain ``open`` would give, those of a file it replaces) is for the block to
    write. When the block ends without an error the file is flushed to disk and renamed over
    ``path`` in one step (atomic on POSIX and Windows file systems: readers see the old file or
    the complete new one); a symbolic link is written through, as by ``open``. When the block
    raises, even ``KeyboardInterrupt`` or a SIGTERM (see ``_signals.sigterm_as_exit``), the
    temporary file and the folders made for it are removed and ``path`` is left untouched.
    A folder at ``path`` is refused up front (``IsADirectoryError``); a block that fails for
    lack of room (``ENOSPC``, ``EDQUOT``, ``EFBIG`` anywhere in its error's chain: torch's
    writers raise a ``RuntimeError`` over it) raises a :class:`NoRoomError` naming ``path``.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     with atomic_path(f"{folder}/out.csv") as tmp:
        ...         _ = tmp.write_text("file,class\\n")
        ...     sorted(p.name for p in Path(folder).iterdir())
        ['out.csv']
    """
    check_writable(path)  # a file in the way, or no permission: said of `path`, not of tmp
    shown, path = os.fspath(path), _written_file(path)
    refuse_folder(path)
    made = list(itertools.takewhile(lambda p: not p.exists(), (path.parent, *path.parent.parents)))
    short = path.name  # under 255 bytes with the rest (not characters: 80 CJK ones are 240)
    while len(os.fsencode(short)) > 200:
        short = short[:-1]
    tmp = path.with_name(f".{short}.{uuid.uuid4().hex[:12]}.tmp")
    try:  # (the folders are made inside: a temporary file that cannot be made removes them)
        path.parent.mkdir(parents=True, exist_ok=True)
        # As for a plain open(): a replaced file keeps its mode, a new one gets what the umask
        # leaves of 0o666 (tempfile.mkstemp would make it readable by its owner only).
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        os.close(os.open(tmp, flags, 0o666))
        mode = os.stat(path if path.is_file() else tmp).st_mode & 0o777
        with sigterm_as_exit():  # `kill` or `timeout` cleans up as Ctrl-C does
            yield tmp
            with open(tmp, "rb+") as f:  # the writer may not have synced: do it before renaming
                os.fsync(f.fileno())
            # After the sync, which a read-only mode refuses; a writer may have replaced tmp.
            os.chmod(tmp, mode)
            os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o600)  # Windows removes no read-only file (the mode copied above)
            os.unlink(tmp)
        for folder in made:  # the folders made for it (deepest first), while empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(err, NoRoomError) and err.path != tmp:  # another file's, named
            raise
        if code := _no_room(err):  # torch's and safetensors' writers name no file
            kept = f"; the {path.name} there is kept" if path.exists() else ""
            cause = err.__cause__ if isinstance(err, NoRoomError) else err  # its tmp: this file
            message = f"cannot write {shown}: {os.strerror(code)}{kept}"
            raise NoRoomError(code, message, path) from cause
        raise
    if os.name == "posix":  # make the rename itself durable (best effort)
        with contextlib.suppress(OSError):
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def refuse_folder(path: str | os.PathLike[str]) -> None:
    """Raise ``IsADirectoryError`` if ``path``, where a file is to be written, is a folder.

    Example:
        >>> refuse_folder(".")
        Traceback (most recent call last):
        IsADirectoryError: expected a file path; got the folder .
    """
    if os.path.isdir(local_path(path)):
        raise IsADirectoryError(f"expected a file path; got the folder {os.fspath(path)}")


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to a temporary file in the target's folder, then rename it into place.

    See :func:`atomic_path`: readers see the old file or the complete new one, never a
    partial write. If saving fails, the temporary file is removed and whatever was at
    ``path`` is left untouched.

    Example:
        >>> import tempfile, torch
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     atomic_save({"w": torch.ones(2)}, f"{folder}/w.pt")
        ...     torch.load(f"{folder}/w.pt", weights_only=True)["w"].tolist()
        [1.0, 1.0]
    """
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        torch.save(obj, f)


class NoRoomError(OSError):
    """A file that could not be written for lack of room (``ENOSPC``, ``EDQUOT``, ``EFBIG``):
    :func:`atomic_path`'s error, which names the file (``path``) where torch's writers named
    none. The file's earlier contents are kept.

    Example:
        >>> import errno
        >>> err = NoRoomError(errno.ENOSPC, "cannot write m.pt: No space left on device", "m.pt")
        >>> isinstance(err, OSError), err.errno == errno.ENOSPC, str(err.path)
        (True, True, 'm.pt')
    """

    def __init__(self, code: int, message: str, path: str | os.PathLike[str]) -> None:
        super().__init__(code, message)
        self.path = Path(path)


def _no_room(err: BaseException) -> int | None:
    # The errno of a lack of room under an error a writer raised: an OSError that names no
    # file, or one in a RuntimeError's chain (torch's writer raises one over it), or
    # "(os error 28)" (in older releases "Os { code: 28") in the words of safetensors' Rust
    # writer. Anything else (a ValueError, Ctrl-C) is left as it is.
    if not isinstance(err, OSError | RuntimeError) and type(err).__name__ != "SafetensorError":
        return None
    seen: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in seen:
        found = re.search(r"(?:\(os error |Os \{ code: )(\d+)", str(current))
        code = current.errno if isinstance(current, OSError) else found and int(found[1])
        if code in _NO_ROOM:
            named = getattr(current, "filename", None) and not isinstance(current, NoRoomError)
            return None if named else code
        seen.append(current)
        current = current.__cause__ or current.__context__
    return None
