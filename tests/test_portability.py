"""What differs on Windows and macOS, checked here on Linux: text files in UTF-8 whatever the
locale, a text stream's line ends, a closed pipe, ``file:///C:/`` URLs, read-only files.

The workflow runs the suite on Windows and macOS too; these tests reproduce, on Linux, what
those systems do differently (an ASCII locale for a code page, a stream that ends its lines
with ``\\r\\n``, the ``EINVAL`` Windows pipes raise), so that the package's side is checked
wherever the suite runs.
"""

from __future__ import annotations

import ast
import errno
import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest

import classic_cnns
from classic_cnns import LeNet5, _atomic, _cli_errors, cli, files
from classic_cnns.predict import predict_main
from conftest import write_png

SRC = Path(classic_cnns.__file__).parent
_BINARY_OPENERS = {"os", "gzip", "tarfile", "zipfile", "Image", "lzma", "bz2"}


def _text_without_encoding(source: str) -> list[int]:
    # The lines that open, read or write a file as text without naming its encoding, which
    # is then the locale's (a Windows code page): open(p), open(p, "w"), p.open("w"),
    # p.read_text(), p.write_text(s). Binary modes and other modules' open()s are left out.
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or any(k.arg == "encoding" for k in node.keywords):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name in ("read_text", "write_text"):
            found.append(node.lineno)
        elif name == "open":
            receiver = getattr(func, "value", None)
            if isinstance(receiver, ast.Name) and receiver.id in _BINARY_OPENERS:
                continue
            modes = [*node.args[:2], *(k.value for k in node.keywords if k.arg == "mode")]
            strings = [m.value for m in modes if isinstance(m, ast.Constant)]
            if not any(isinstance(m, str) and "b" in m for m in strings):
                found.append(node.lineno)
    return found


def test_every_text_file_the_package_reads_or_writes_names_its_encoding() -> None:
    # Without encoding= a file is read and written in the locale's encoding: on Windows a code
    # page, in which the bench's report ("⚠", "×") or a class name outside it cannot be written.
    offending = {
        str(path.relative_to(SRC)): lines
        for path in sorted(SRC.rglob("*.py"))
        if (lines := _text_without_encoding(path.read_text(encoding="utf-8")))
    }
    assert offending == {}
    # The check finds what it looks for.
    sample = 'open(p)\nopen(p, "rb")\nPath(p).open("w", newline="")\nq.read_text()\n'
    sample += 'q.write_text(s, encoding="utf-8")\ntarfile.open(p, "r:gz")\nf.open(p, "rb")\n'
    assert _text_without_encoding(sample) == [1, 3, 4]


def test_the_bench_report_is_written_in_utf8_under_an_ascii_locale(tmp_path: Path) -> None:
    # An ASCII locale stands in for a Windows code page: the report's "⚠" and a class name
    # outside it were an UnicodeEncodeError, and the run exited 2 without its report.
    script = (
        "import sys; from pathlib import Path\n"
        "from classic_cnns.bench.core import Results, write\n"
        "results = Results(); results.add('demo', 'cpu', model='lenet5', note='Pull\\xf6ver')\n"
        "results.notes.append('\\u26a0 a noisy row: 3\\u20135 \\xd7 slower')\n"  # ASCII argv
        "write(results, Path(sys.argv[1]), [], 'bench')\n"
        "import locale; print(locale.getpreferredencoding(False))\n"
    )
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    env.pop("PYTHONIOENCODING", None)
    run = subprocess.run(
        [sys.executable, "-X", "utf8=0", "-c", script, str(tmp_path)],
        env=env, capture_output=True, text=True, encoding="utf-8", timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().lower() in ("ansi_x3.4-1968", "ascii", "us-ascii")  # not UTF-8
    assert "⚠ a noisy row: 3–5 × slower" in (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "Pullöver" in (tmp_path / "demo.csv").read_text(encoding="utf-8")


def test_predict_folder_on_standard_output_ends_lines_as_the_stream_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mnist_raw: Path
) -> None:
    # Windows' text streams turn "\n" into "\r\n"; csv's own "\r\n" then became "\r\r\n", a
    # blank line between rows in a spreadsheet.
    from classic_cnns.data.mnist import read_idx

    folder = tmp_path / "digits"
    folder.mkdir()
    for i, image in enumerate(read_idx(mnist_raw / "t10k-images-idx3-ubyte.gz")[:3]):
        write_png(image[None], folder / f"{i}.png")
    model = LeNet5(num_classes=2)
    model.data_config = dict(mean=[0.13], std=[0.31], image_size=[32, 32], resize="pad",
                             class_names=["Pullöver", "T-shirt"])  # fmt: skip
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    buffer = io.BytesIO()
    stream = io.TextIOWrapper(buffer, encoding="utf-8", newline="\r\n", write_through=True)
    monkeypatch.setattr(sys, "stdout", stream)
    assert predict_main([str(tmp_path / "m.ckpt"), str(folder)]) == 0
    stream.flush()
    text = buffer.getvalue().decode("utf-8")
    assert "\r\r" not in text and text.count("\r\n") == 4 == text.count("\n")
    assert text.startswith("file,class,class_index,probability\r\n0.png,")
    assert {line.split(",")[1] for line in text.splitlines()[1:]} <= {"Pullöver", "T-shirt"}


class _ClosedPipe(io.StringIO):
    # Standard output whose reader has gone, as a Windows pipe reports it: EINVAL.
    def fileno(self) -> int:
        return 1

    def write(self, text: str) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    def flush(self) -> None:
        raise OSError(errno.EINVAL, "Invalid argument")


def test_a_closed_pipe_on_windows_stops_the_output_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `classic-cnns list | head -1` on Windows: the write raises EINVAL, not BrokenPipeError.
    # It printed "classic-cnns list: error: [Errno 22] Invalid argument" and exited 2.
    monkeypatch.setattr(_cli_errors.sys, "platform", "win32")
    assert _cli_errors.closed_pipe(BrokenPipeError())
    bad_name = OSError(errno.EINVAL, "Invalid argument: 'a?b.csv'")
    assert not _cli_errors.closed_pipe(bad_name)  # standard output still works: a real error
    dup2 = []
    with monkeypatch.context() as m:  # pytest's own capture uses os.dup2 between the phases
        m.setattr(cli.os, "dup2", lambda fd, to: (dup2.append(to), os.close(fd)))
        m.setattr(sys, "stdout", _ClosedPipe())
        assert _cli_errors.closed_pipe(OSError(errno.EINVAL, "Invalid argument"))
        assert cli.main(["list"]) == 1
    assert capsys.readouterr().err == "" and len(dup2) == 1
    # Elsewhere EINVAL is never a closed pipe.
    monkeypatch.setattr(_cli_errors.sys, "platform", "linux")
    with monkeypatch.context() as m:
        m.setattr(sys, "stdout", _ClosedPipe())
        assert not _cli_errors.closed_pipe(OSError(errno.EINVAL, "Invalid argument"))


def test_file_urls_name_the_path_fsspec_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _atomic.local_path("file:///tmp/w.pt") == "/tmp/w.pt"
    assert _atomic.local_path("runs/last.ckpt") == "runs/last.ckpt"
    assert _atomic.local_path(Path("runs/last.ckpt")) == os.path.join("runs", "last.ckpt")
    with monkeypatch.context() as m:  # Windows: the slash before the drive is not a folder
        m.setattr(files.os, "name", "nt")
        assert _atomic.local_path("file:///C:/runs/last.ckpt") == "C:/runs/last.ckpt"
        assert _atomic.local_path("file:///runs/last.ckpt") == "/runs/last.ckpt"


def test_a_failed_replace_of_a_read_only_file_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On Windows a read-only file cannot be replaced or removed. The temporary file takes the
    # replaced file's read-only mode before the rename; when the rename fails it must still go.
    target = tmp_path / "predictions.csv"
    target.write_text("kept\n", encoding="utf-8")
    target.chmod(0o444)
    unlink = os.unlink

    def windows_unlink(path: str | os.PathLike[str], **kwargs: object) -> None:
        if not os.stat(path).st_mode & stat.S_IWUSR:
            raise PermissionError(errno.EACCES, "Access is denied", os.fspath(path))
        unlink(path, **kwargs)  # type: ignore[arg-type]

    def refused(*args: object) -> None:
        raise PermissionError(errno.EACCES, "Access is denied")

    monkeypatch.setattr(files.os, "unlink", windows_unlink)
    monkeypatch.setattr(files.os, "replace", refused)
    with pytest.raises(PermissionError), files.atomic_path(target) as tmp:
        tmp.write_text("new\n", encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv"]
    assert target.read_text(encoding="utf-8") == "kept\n"
