"""Downloads into a scratch folder, for the caller to check before it keeps them
(:mod:`classic_cnns.files` exports these names).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from classic_cnns._signals import sigterm_as_exit

__all__ = ["DOWNLOAD_TIMEOUT", "download", "download_folder", "file_digest", "file_in_the_way"]

DOWNLOAD_TIMEOUT = 60.0
"""Seconds a server may stay silent before :func:`download` gives up (MNIST and
Fashion-MNIST then try their next mirror; CIFAR has one).

Example:
    >>> from classic_cnns.files import DOWNLOAD_TIMEOUT
    >>> DOWNLOAD_TIMEOUT
    60.0
"""


def download(url: str, path: str | os.PathLike[str], *, timeout: float = DOWNLOAD_TIMEOUT) -> None:
    """Write the body of ``url`` to ``path``, giving up after ``timeout`` s without data.

    The caller checks what arrived (a dataset's md5) and moves it into place: ``path`` is a
    scratch file, replaced if it exists.

    Raises:
        OSError: saying what failed (the HTTP status, a refused or dropped connection, a body
            short of its Content-Length, a reply not HTTP, a server silent for ``timeout`` s);
            the caller names the URL.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _ = Path(folder, "a.txt").write_text("IDX")
        ...     download(Path(folder, "a.txt").as_uri(), Path(folder, "b.txt"))
        ...     Path(folder, "b.txt").read_text()
        'IDX'
    """
    request = urllib.request.Request(url, headers={"User-Agent": "classic-cnns"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(path, "wb") as f:
            shutil.copyfileobj(response, f, 1 << 20)
            got, length = f.tell(), response.headers.get("Content-Length", "")
    except urllib.error.HTTPError as err:
        raise OSError(f"HTTP {err.code} {err.reason}") from err
    except (OSError, ValueError) as err:  # URLError and timeouts are OSErrors
        raise OSError(str(getattr(err, "reason", None) or err) or type(err).__name__) from err
    except http.client.HTTPException as err:  # a reply that is not HTTP (BadStatusLine, ...)
        raise OSError(f"not a valid HTTP reply: {err!r}") from err
    # read(amt) returns what came before the server closed, without raising IncompleteRead.
    if length.strip().isdigit() and got < int(length):
        raise OSError(f"the connection closed after {got} of {int(length)} bytes")


_PREFIX = ".classic-cnns-download-"  # a user's folder never has it: only these are removed


def file_in_the_way(folder: str | os.PathLike[str]) -> Path | None:
    """The file at ``folder`` or at one of its parents, which keeps it from being a folder.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as parent:
        ...     _ = (Path(parent) / "MNIST").write_text("")
        ...     file_in_the_way(Path(parent) / "MNIST" / "raw") == Path(parent) / "MNIST"
        True
    """
    found = next((p for p in (Path(folder), *Path(folder).parents) if p.exists()), None)
    return None if found is None or found.is_dir() else found


@contextlib.contextmanager
def download_folder(parent: str | os.PathLike[str]) -> Iterator[Path]:
    """A scratch folder in ``parent`` (``.classic-cnns-download-*``) for a download, removed
    afterwards. ``parent`` is made if missing; if the download fails, the folders made for
    it are removed again where they are still empty.

    The caller checks what arrived there and moves it into place. This package's scratch
    folders that a killed process left behind more than a day ago are removed first; other
    folders are left alone, whatever their names (a ``.download-manager`` of the user's).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as parent:
        ...     with download_folder(parent) as scratch:
        ...         scratch.name.startswith(".classic-cnns-download-")
        ...     list(Path(parent).iterdir())
        True
        []
    """
    made = [p for p in (Path(parent), *Path(parent).parents) if not p.exists()]
    if (file := file_in_the_way(parent)) is not None:  # mkdir would say "Not a directory"
        raise NotADirectoryError(f"{file} is a file; expected a folder there, to hold {parent}")
    Path(parent).mkdir(parents=True, exist_ok=True)
    for stale in Path(parent).glob(f"{_PREFIX}*"):  # a folder of the user's is never one
        with contextlib.suppress(OSError):  # another process may be removing it too
            if not stale.is_symlink() and time.time() - stale.stat().st_mtime > 24 * 3600:
                shutil.rmtree(stale)
    try:  # SIGTERM (kill, a scheduler) cleans up as Ctrl-C does
        with sigterm_as_exit(), tempfile.TemporaryDirectory(dir=parent, prefix=_PREFIX) as scratch:
            yield Path(scratch)
    except BaseException:
        for folder in made:  # innermost first: the folders made here, unless something is in
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def file_digest(path: str | os.PathLike[str], algorithm: str = "md5") -> str:
    """The hex digest of a file's bytes (``"md5"``, ``"sha256"``, ...), read 1 MiB at a time.

    Example:
        >>> file_digest(os.devnull)  # an empty file
        'd41d8cd98f00b204e9800998ecf8427e'
    """
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
