"""Shared fixtures: real data only, built in temporary folders, never downloaded."""

from __future__ import annotations

import csv
import gzip
import os
import shutil
import socket
import tempfile
import threading
import warnings
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import settings
from sklearn.metrics import accuracy_score, f1_score, top_k_accuracy_score
from torch import Tensor, nn

from classic_cnns.data import MNIST

ROOT = Path(__file__).resolve().parents[1]
# Each real dataset's raw folder (MNIST/raw, FashionMNIST/raw): under $CLASSIC_CNNS_DATA, else
# under the first of <repo>/data (where `classic-cnns data fetch` puts them) and
# <repo>/../shared/data that holds its test images.
DATA_ENV = "CLASSIC_CNNS_DATA"
# Set (to 1) where a missing dataset must fail the tests instead of skipping them (.ci/run).
REQUIRE_DATA_ENV = "CLASSIC_CNNS_REQUIRE_DATA"
T10K_IMAGES = "t10k-images-idx3-ubyte.gz"
T10K_LABELS = "t10k-labels-idx1-ubyte.gz"


# A clone's own files, which the unpacked sdist leaves out (MANIFEST.in): there, the tests
# that read them are skipped, and test_bench.py (it imports benchmarks/dev.py) is not collected.
IN_CLONE = all((ROOT / name).is_dir() for name in ("benchmarks", "docs", ".ci", ".github"))
in_clone = pytest.mark.skipif(
    not IN_CLONE, reason="reads a clone's benchmarks/, docs/, .ci/ or .github/ (not in the sdist)"
)
collect_ignore = [] if IN_CLONE else ["test_bench.py"]


def _raw(dataset: str) -> Path:
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]) / dataset / "raw"
    candidates = [
        root / dataset / "raw" for root in (ROOT / "data", ROOT.parent / "shared" / "data")
    ]
    return next((c for c in candidates if (c / T10K_IMAGES).is_file()), candidates[-1])


MNIST_RAW = _raw("MNIST")
# The real Fashion-MNIST (60,000 + 10,000): the published files, or Debian's recompressed
# copy in ../shared/data (its .gz md5 sums are not the published ones, its content is).
FASHION_RAW = _raw("FashionMNIST")


def symlink(link: Path, target: Path) -> None:
    """``link.symlink_to(target)``, a folder's as a folder's (which Windows tells apart); on
    Windows, where a link needs a privilege or developer mode, the test is skipped without."""
    try:
        link.symlink_to(target, target_is_directory=target.is_dir())
    except OSError as err:
        if os.name != "nt":
            raise
        pytest.skip(f"cannot create a symbolic link here ({err})")


def require_data(files: list[Path], fetch: str) -> None:
    """Skip the test (fail it where ``$CLASSIC_CNNS_REQUIRE_DATA`` is set) if a file is missing.

    ``fetch`` is the dataset's name for ``classic-cnns data fetch``.
    """
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        message = (
            f"real data missing: {', '.join(missing)} not in {files[0].parent}; get it with "
            f"`classic-cnns data fetch {fetch} --data-dir data` (from the repository root) or "
            f"set ${DATA_ENV} to a folder that holds it"
        )
        if os.environ.get(REQUIRE_DATA_ENV, "") not in ("", "0"):
            pytest.fail(f"{message} (${REQUIRE_DATA_ENV} is set)", pytrace=False)
        pytest.skip(message)


pytest_plugins = ["pytester"]

# Every hypothesis test draws the same examples on every run (from a hash of the test, not a
# random seed) and keeps no example database (.hypothesis/ in the working directory): a
# failure reproduces as it is, and a run writes nothing. A test's own @settings(...) changes
# only what it names, on top of this profile.
settings.register_profile("classic_cnns", derandomize=True, database=None)
settings.load_profile("classic_cnns")


# Hypothesis also caches the constants of the source files it reads (database or not), in
# $HYPOTHESIS_STORAGE_DIRECTORY, by default .hypothesis/ in the working directory, while pytest
# collects: unless that is set, a folder of the session's own, removed at its end.
_HYPOTHESIS_HOME = "HYPOTHESIS_STORAGE_DIRECTORY"
_own_hypothesis_home: list[str] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    if not os.environ.get(_HYPOTHESIS_HOME):
        _own_hypothesis_home.append(tempfile.mkdtemp(prefix="classic-cnns-hypothesis-"))
        os.environ[_HYPOTHESIS_HOME] = _own_hypothesis_home[-1]


def pytest_sessionfinish(session: pytest.Session) -> None:
    while _own_hypothesis_home:
        shutil.rmtree(_own_hypothesis_home.pop(), ignore_errors=True)
        os.environ.pop(_HYPOTHESIS_HOME, None)


if os.environ.get("PYTEST_XDIST_WORKER"):
    # One intra-op thread per pytest-xdist worker: the workers already fill the cores, and
    # two OpenMP threads per worker on a busy machine run many times slower than one.
    torch.set_num_threads(1)

# The metadata of a toy network that tests register (register_model's keyword arguments).
TOY_ENTRY: dict[str, Any] = dict(
    family="toy",
    paper="Toy",
    year=2024,
    url="u",
    input_size=(1, 8, 8),
    min_input_size=(8, 8),
    num_params=0,
)

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach the network: a connection beyond loopback fails loudly.

    The download tests serve real files from a loopback HTTP mirror, and the distributed
    tests rendezvous on loopback; anything else (a real mirror, torch.hub) is refused here
    instead of being fetched.
    """
    connect, getaddrinfo = socket.socket.connect, socket.getaddrinfo
    local = _LOOPBACK | {socket.gethostname()}

    def refuse(what: object) -> OSError:
        return OSError(f"the tests run offline: refused {what!r}")

    def loopback_only(sock: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else None
        if sock.family in (socket.AF_INET, socket.AF_INET6) and host not in _LOOPBACK:
            raise refuse(address)
        connect(sock, address)  # type: ignore[arg-type]

    def local_names_only(host: object, *args: object, **kwargs: object) -> object:
        if host is not None and host not in local:
            raise refuse(host)
        return getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    monkeypatch.setattr(socket, "getaddrinfo", local_names_only)


@pytest.fixture(autouse=True)
def _cpu_unless_marked_gpu(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside the ``gpu`` tests, Lightning's ``"auto"`` accelerator is the CPU, as in CI.

    On a GPU machine the suite then checks what it checks everywhere, and ``tests/test_gpu.py``
    what only a GPU shows. Subprocesses (the command-line and DDP tests) see no GPU either.
    """
    if request.node.get_closest_marker("gpu") is None:
        from lightning.pytorch.accelerators import CUDAAccelerator

        monkeypatch.setattr(CUDAAccelerator, "is_available", staticmethod(lambda: False))
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture(autouse=True)
def _no_global_seed() -> Iterator[None]:
    """Each test starts without ``PL_GLOBAL_SEED``, which ``seed_everything`` leaves behind.

    The distributed samplers read it, so a seed set by one test would change another's order.
    """
    saved = os.environ.pop("PL_GLOBAL_SEED", None)
    yield
    os.environ.pop("PL_GLOBAL_SEED", None)
    if saved is not None:
        os.environ["PL_GLOBAL_SEED"] = saved


def forget_freed_torchscript_builtins() -> int:
    """Drop TorchScript's builtin-table entries of operator objects torch has let go; the count.

    The table is keyed by ``id()``. ``torch.library`` replaces an operator's packet object
    when a later definition adds an overload (importing ``torch.ao.quantization.fx._decomposed``
    does, and torch.compile and torch.export import it), and deletes the packets of a library
    it destroys, but leaves the old ids in the table. An object later allocated at such an
    address (a Conv2d's padding tuple) is then taken for an operator, and ``torch.jit.script``
    fails with "builtin cannot be used as a value", in one run of many (torch 2.14).
    """
    from torch.jit import _builtins

    table = _builtins._builtin_table or {}
    held = {id(fn) for fn, _ in _builtins._builtin_ops}
    freed = []
    for key, name in table.items():
        namespace, _, op = name.partition("::")
        if key in held or namespace in ("aten", "prim"):
            continue  # torch's own functions and modules hold these
        packet = vars(getattr(torch.ops, namespace)).get(op)
        if packet is None or id(getattr(packet, "_op", None)) != key:
            freed.append(key)
    for key in freed:
        del table[key]
    return len(freed)


@pytest.fixture(autouse=True)
def _no_freed_torchscript_builtins() -> None:
    forget_freed_torchscript_builtins()


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread for the test: on a shared 2-core runner, many times faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _quiet_lightning() -> None:
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*GPU available but not used.*")


@pytest.fixture(scope="session")
def mnist_raw() -> Path:
    """The folder holding the real t10k IDX files (the test skips, or fails in CI, without)."""
    require_data([MNIST_RAW / T10K_IMAGES, MNIST_RAW / T10K_LABELS], "mnist --protocol 10k")
    return MNIST_RAW


@pytest.fixture(scope="session")
def fashion_raw() -> Path:
    """The folder holding the real Fashion-MNIST IDX files (skips, or fails in CI, without)."""
    names = [f"{s}-{k}-ubyte.gz" for s in ("train", "t10k") for k in ("images-idx3", "labels-idx1")]
    require_data([FASHION_RAW / name for name in names], "fashion-mnist")
    return FASHION_RAW


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_mirror(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real HTTP server on loopback serving a folder: the download code runs unchanged."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    handler = partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def make_mnist_dir(root: Path, src: Path, *, gz: bool = True, train: bool = False) -> Path:
    """Build ``root/MNIST/raw`` from the real t10k files.

    With ``train=True`` the first 6,000 real test images also stand in as the training
    files (the 60,000-image training set is not available offline); their content is not
    the published one, so a test reading them needs the ``mnist_standins`` fixture.
    """
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in (T10K_IMAGES, T10K_LABELS):
        if gz:
            shutil.copy(src / name, raw / name)
        else:
            with gzip.open(src / name, "rb") as f_in, (raw / name[:-3]).open("wb") as f_out:
                shutil.copyfileobj(f_in, f_out)
    if train:
        _write_train_subset(src, raw, 6000)
    return raw


@pytest.fixture
def mnist_standins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accept ``make_mnist_dir(train=True)``'s stand-ins: forget the training files' digests."""
    known = {k: v for k, v in MNIST.content_md5.items() if not k.startswith("train-")}
    monkeypatch.setattr(MNIST, "content_md5", known)


def _write_train_subset(src: Path, raw: Path, n: int) -> None:
    for kind, item_bytes, header in (("images", 28 * 28, 16), ("labels", 1, 8)):
        with gzip.open(src / f"t10k-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz") as f:
            data = bytearray(f.read())
        data[4:8] = n.to_bytes(4, "big")
        body = data[: header + n * item_bytes]
        name = f"train-{kind}-idx{3 if kind == 'images' else 1}-ubyte"
        (raw / name).write_bytes(bytes(body))


def logged_metrics(root: Path, versions: int = 1) -> dict[str, float]:
    """The last logged value of every metric in ``root/lightning_logs``'s CSV files.

    ``versions`` is how many ``version_*`` folders the run must have written (``ddp_spawn``
    writes a second one for the test after ``fit``); later folders override earlier ones.
    """
    paths = sorted(root.glob("lightning_logs/version_*/metrics.csv"))
    assert len(paths) == versions, paths
    final: dict[str, float] = {}
    for path in paths:
        with path.open() as f:
            for row in csv.DictReader(f):
                final.update({k: float(v) for k, v in row.items() if v})
    return final


def sklearn_metrics(logits: Tensor, labels: Tensor, prefix: str = "") -> dict[str, float]:
    """Top-1 accuracy, macro F1 and top-5 accuracy computed by scikit-learn."""
    preds = logits.argmax(dim=1).numpy()
    y = labels.numpy()
    return {
        f"{prefix}acc": accuracy_score(y, preds),
        # sklearn's default labels are the classes present in y or preds, and torchmetrics
        # leaves classes that occur in neither out of the macro average: the same set.
        f"{prefix}f1": f1_score(y, preds, average="macro"),
        f"{prefix}acc_top5": top_k_accuracy_score(
            y, logits.numpy(), k=5, labels=range(logits.shape[1])
        ),
    }


def param_count(module: nn.Module) -> int:
    """The number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


def train_loss(out: Tensor | tuple[Tensor, ...], y: Tensor) -> Tensor:
    """Cross-entropy, plus auxiliary losses weighted 0.3 as the task adds them."""
    if isinstance(out, tuple):
        return F.cross_entropy(out[0], y) + 0.3 * sum(F.cross_entropy(a, y) for a in out[1:])
    return F.cross_entropy(out, y)


def write_png(image: Tensor, path: str | os.PathLike[str]) -> None:
    """Write a uint8 ``(C, H, W)`` tensor (C: 1 or 3) as a PNG file, with PIL.

    What ``torchvision.io.write_png`` does; torchvision deprecated its encoders in 0.29.
    """
    from PIL import Image

    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(
            f"expected a uint8 (1 or 3, H, W) tensor; got {image.dtype} {tuple(image.shape)}"
        )
    array = image.permute(1, 2, 0).contiguous().numpy()
    Image.fromarray(array[..., 0] if image.shape[0] == 1 else array).save(path, format="PNG")
