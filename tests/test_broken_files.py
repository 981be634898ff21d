"""Broken files: truncated or corrupted checkpoints, checkpoints of another architecture,
truncated or tampered dataset files. Each error names the file and what is wrong, and
nothing already on disk is overwritten or lost. Checkpoints are written atomically and
read with ``weights_only=True``; nothing in the package calls ``torch.load`` without it.
"""

from __future__ import annotations

import ast
import gzip
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import classic_cnns
import classic_cnns.files as files_module
from classic_cnns import MNIST, LeNet5, create_model
from classic_cnns._checks import refuse_existing
from classic_cnns._signals import sigterm_as_exit
from classic_cnns.checkpoint import AtomicCheckpointIO, ExactResume, restore, verify_checkpoint
from classic_cnns.files import (
    DATA_CHECKPOINT_KEY,
    CheckpointError,
    NoRoomError,
    atomic_path,
    atomic_save,
    check_checkpoint_file,
    check_writable,
    download,
    load_checkpoint,
    read_weights_file,
)
from classic_cnns.weights import load_weights_file
from conftest import T10K_IMAGES, T10K_LABELS, make_mnist_dir

SRC = Path(classic_cnns.__file__).resolve().parent


pytestmark = pytest.mark.usefixtures("one_thread")


def _loader(channels: int, n: int = 32) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, channels, 32, 32, generator=g)
    return DataLoader(TensorDataset(x, torch.randint(0, 10, (n,), generator=g)), batch_size=16)


def _trainer(root: Path, **kw: Any) -> L.Trainer:
    kw = {
        "max_epochs": 1,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": root,
        "plugins": [AtomicCheckpointIO()],
        "callbacks": [ExactResume()],
        **kw,
    }
    return L.Trainer(**kw)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real checkpoints of a short fit: a LeNet-5 and a ResNet-20."""
    root = tmp_path_factory.mktemp("ckpts")
    paths = {}
    for arch, channels in (("lenet5", 1), ("resnet20", 3)):
        torch.manual_seed(0)
        trainer = _trainer(root / arch, enable_checkpointing=False, max_steps=2)
        trainer.fit(create_model(arch, in_channels=channels, scheduler="none"), _loader(channels))
        paths[arch] = root / f"{arch}.ckpt"
        trainer.save_checkpoint(paths[arch])
    return paths


# -- damaged checkpoints ---------------------------------------------------------------------


def _truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _flip_tensor_byte(data: bytes) -> bytes:
    # A byte in the middle of the file lies in a tensor: torch.load alone would not notice.
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0xFF
    return bytes(damaged)


DAMAGE: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated": (
        _truncate,
        r"the file is truncated or corrupted \(\d+ bytes; .*\); expected a "
        r"complete zip archive",
    ),
    "last bytes cut": (lambda d: d[:-10], r"the file is truncated or corrupted"),
    "byte flipped": (
        _flip_tensor_byte,
        r"the file is corrupted: the CRC-32 checksum of its "
        r"record '.*' does not match its contents",
    ),
    "empty": (lambda d: b"", r"the file is empty \(0 bytes\); expected a checkpoint"),
    "text": (
        lambda d: b"epoch=3 loss=0.1\n",
        r"not a PyTorch checkpoint: it starts with "
        r"b'epoc'; expected a zip archive",
    ),
}


@pytest.fixture(params=sorted(DAMAGE))
def damaged(
    request: pytest.FixtureRequest, checkpoints: dict[str, Path], tmp_path: Path
) -> tuple[Path, str, bytes]:
    damage, message = DAMAGE[request.param]
    path = tmp_path / f"{request.param.replace(' ', '-')}.ckpt"
    path.write_bytes(damage(checkpoints["lenet5"].read_bytes()))
    return path, message, path.read_bytes()


def test_a_damaged_checkpoint_is_named_with_what_is_wrong(damaged: tuple[Path, str, bytes]) -> None:
    path, message, before = damaged
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(path))}: {message}"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(path))}: {message}"):
        check_checkpoint_file(path)
    assert path.read_bytes() == before  # the evidence stays as it was


def test_resuming_from_a_damaged_checkpoint_names_it(
    damaged: tuple[Path, str, bytes], tmp_path: Path
) -> None:
    path, message, before = damaged
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(path))}: {message}"):
        _trainer(tmp_path / "run").fit(LeNet5(scheduler="none"), _loader(1), ckpt_path=path)
    assert path.read_bytes() == before


def test_a_plain_trainer_resumes_no_damaged_checkpoint(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    # Without AtomicCheckpointIO, torch.load reads a file with a damaged tensor record and
    # training went on from the damaged weights; the task checks the file itself.
    path = tmp_path / "flipped.ckpt"
    path.write_bytes(_flip_tensor_byte(checkpoints["lenet5"].read_bytes()))
    trainer = _trainer(tmp_path / "run", plugins=[], callbacks=[])
    with pytest.raises(
        CheckpointError, match=rf"^{re.escape(str(path))}: {DAMAGE['byte flipped'][1]}"
    ):
        trainer.fit(LeNet5(scheduler="none"), _loader(1), ckpt_path=path)
    assert trainer.global_step == 0


def test_a_missing_checkpoint_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=rf"{re.escape(str(tmp_path / 'nope.ckpt'))}: no such checkpoint"
    ):
        load_checkpoint(tmp_path / "nope.ckpt")
    # An empty path ($CKPT unset) was called a folder, named ":".
    with pytest.raises(FileNotFoundError, match=r"^the checkpoint path is empty; expected a"):
        load_checkpoint("")


class _RunsACommand:
    """Unpickles to a call of os.system, which weights_only=True refuses (never run here)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize(
    ("hook", "refused"),
    [
        (lambda marker: shutil.rmtree, r"Unsupported global.*rmtree"),  # a function: code
        # os.system: torch says "unsupported GLOBAL posix.system whose module posix is blocked"
        (_RunsACommand, r"unsupported GLOBAL (posix|nt)\.system"),
    ],
    ids=["shutil.rmtree", "os.system"],
)
def test_a_checkpoint_with_arbitrary_objects_is_not_unpickled(
    tmp_path: Path, hook: Callable[[Path], Any], refused: str
) -> None:
    path, marker = tmp_path / "code.ckpt", tmp_path / "ran"
    torch.save({"state_dict": {}, "hook": hook(marker)}, path)
    for opened in (False, True):  # a file object is not checked before torch.load
        with pytest.raises(CheckpointError) as raised, path.open("rb") as f:
            load_checkpoint(f if opened else path)
        message = str(raised.value)
        assert re.match(
            rf"^{re.escape(str(path))}: the checkpoint holds objects other than tensors and "
            rf"plain Python values \(.*{refused}.*only if you trust where it came from$",
            message,
        ), message
        assert "will likely succeed" not in message  # torch's advice is not passed on
    assert not marker.exists()


def test_a_damaged_pickle_is_reported_without_torchs_advice(tmp_path: Path) -> None:
    path = tmp_path / "bad.pt"  # the legacy format's pickle stream, with no valid opcode
    path.write_bytes(b"\x80\x02\xff\xff")
    with pytest.raises(CheckpointError) as raised:
        load_checkpoint(path)
    message = str(raised.value)
    assert re.match(rf"^{re.escape(str(path))}: the file is truncated or corrupted", message)
    assert "Unsupported operand 255" in message and "weights_only" not in message, message


@pytest.fixture
def without_crc32() -> Iterator[None]:
    """torch.save stores every record's CRC-32 as 0 during the test, as it can be told to."""
    # torch.utils.serialization.config.save.compute_crc32; monkeypatch cannot restore it.
    if not hasattr(torch.serialization, "set_crc32_options"):
        pytest.skip(f"torch {torch.__version__} has no set_crc32_options: it always writes them")
    before = torch.serialization.get_crc32_options()
    torch.serialization.set_crc32_options(False)
    try:
        yield
    finally:
        torch.serialization.set_crc32_options(before)


def _crcs(path: Path) -> set[int]:
    with zipfile.ZipFile(path) as archive:
        return {record.CRC for record in archive.infolist()}


@pytest.mark.usefixtures("without_crc32")
def test_a_checkpoint_saved_without_crc32s_loads(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    torch.save({"fc.weight": torch.ones(2)}, tmp_path / "nocrc.pt")
    assert _crcs(tmp_path / "nocrc.pt") == {0}  # the case at hand: nothing to check against
    assert torch.equal(load_checkpoint(tmp_path / "nocrc.pt")["fc.weight"], torch.ones(2))
    assert list(read_weights_file(tmp_path / "nocrc.pt").state_dict) == ["fc.weight"]
    # A Lightning checkpoint written so restores as well.
    torch.save(load_checkpoint(checkpoints["lenet5"]), tmp_path / "m.ckpt")
    assert _crcs(tmp_path / "m.ckpt") == {0}
    model = LeNet5.load_from_checkpoint(tmp_path / "m.ckpt")
    saved = load_checkpoint(checkpoints["lenet5"])["state_dict"]
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())


def test_load_from_checkpoint_called_on_a_model_is_refused(checkpoints: dict[str, Path]) -> None:
    # model.load_from_checkpoint(path) returns a new model and left `model` untrained, in
    # silence: Lightning's own classmethod refuses the call, which ours had lost.
    model = LeNet5()
    with pytest.raises(TypeError, match=r"`LeNet5.load_from_checkpoint` cannot be called on an"):
        model.load_from_checkpoint(checkpoints["lenet5"])
    saved = load_checkpoint(checkpoints["lenet5"])["state_dict"]
    loaded = LeNet5.load_from_checkpoint(checkpoints["lenet5"])
    assert all(torch.equal(v, saved[k]) for k, v in loaded.state_dict().items())


def test_an_hparams_file_is_read_as_lightning_reads_it_and_a_missing_one_refused(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    # A missing file passed with Lightning's "Missing Tags" warning, and the class defaults
    # built the model; a .csv was read as YAML ("dictionary update sequence element").
    from lightning.pytorch.core.saving import save_hparams_to_tags_csv, save_hparams_to_yaml

    saved = dict(load_checkpoint(checkpoints["lenet5"])["hyper_parameters"])
    saved = {k: v for k, v in saved.items() if v is not None}  # a CSV cell has no None
    for name, save in (("h.yaml", save_hparams_to_yaml), ("h.csv", save_hparams_to_tags_csv)):
        save(tmp_path / name, {**saved, "lr": 0.25, "optimizer": "adamw"})
        model = LeNet5.load_from_checkpoint(checkpoints["lenet5"], hparams_file=tmp_path / name)
        assert (model.hparams.lr, model.hparams.optimizer) == (0.25, "adamw"), name
        assert model.num_classes == saved["num_classes"]
    with pytest.raises(FileNotFoundError, match=r"hparams_file '.*nope\.yaml' does not exist"):
        LeNet5.load_from_checkpoint(checkpoints["lenet5"], hparams_file=tmp_path / "nope.yaml")
    (tmp_path / "h.txt").write_text("lr: 0.25\n")
    with pytest.raises(ValueError, match=r"must be a \.yaml, \.yml or \.csv file; got '.*h\.txt'"):
        LeNet5.load_from_checkpoint(checkpoints["lenet5"], hparams_file=tmp_path / "h.txt")


def _tensor_record(data: bytes) -> tuple[int, int, int]:
    """Where the tensor's record (.../data/0) is in a zip archive: its central directory
    entry, its local header, and its data, which follows the local header's 30 bytes, its
    name and its extra field (the zip format's layout, read here without zipfile)."""
    at = -1
    while True:  # to the central directory entry of .../data/0
        at = data.index(b"PK\x01\x02", at + 1)
        name_length = int.from_bytes(data[at + 28 : at + 30], "little")
        if data[at + 46 : at + 46 + name_length].endswith(b"/data/0"):
            break
    local = int.from_bytes(data[at + 42 : at + 46], "little")
    lengths = data[local + 26 : local + 28], data[local + 28 : local + 30]
    return at, local, local + 30 + sum(int.from_bytes(n, "little") for n in lengths)


def _sized(data: bytes, size: int) -> bytes:
    # The central directory gives the tensor's record this size (compressed and plain).
    at, _, _ = _tensor_record(data)
    damaged = bytearray(data)
    damaged[at + 20 : at + 28] = size.to_bytes(4, "little") * 2
    return bytes(damaged)


def _past_the_end(data: bytes) -> bytes:
    return _sized(data, len(data))  # larger than the whole file


def _one_byte_past_the_end(data: bytes) -> bytes:
    _, _, start = _tensor_record(data)
    return _sized(data, len(data) - start + 1)  # its data would end a byte past the file's


def _no_local_header(data: bytes) -> bytes:
    # The local header the central directory points to lost its magic (PK\3\4).
    _, local, _ = _tensor_record(data)
    assert data[local : local + 4] == b"PK\x03\x04"
    return data[:local] + b"XX" + data[local + 2 :]


@pytest.mark.usefixtures("without_crc32")
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_truncate, r"\d+ bytes; File is not a zip file"),
        (_past_the_end, r"\d+ bytes; record '.*data/0' ends past the file's end"),
        (_one_byte_past_the_end, r"\d+ bytes; record '.*data/0' ends past the file's end"),
        (_no_local_header, r"\d+ bytes; no local header for record '.*data/0'"),
    ],
)
def test_a_damaged_checkpoint_without_crc32s_is_still_refused(
    tmp_path: Path, damage: Callable[[bytes], bytes], message: str
) -> None:
    path = tmp_path / "nocrc.pt"
    torch.save({"fc.weight": torch.ones(1000)}, path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(
        CheckpointError, match=rf"^{re.escape(str(path))}: the file is truncated .*\({message}\)"
    ):
        load_checkpoint(path)


@pytest.mark.usefixtures("without_crc32")
def test_a_record_that_ends_at_the_file_s_end_lies_within_it(tmp_path: Path) -> None:
    # The boundary of the check above: data that ends with the file is whole.
    path = tmp_path / "nocrc.pt"
    torch.save({"fc.weight": torch.ones(1000)}, path)
    data = path.read_bytes()
    _, _, start = _tensor_record(data)
    path.write_bytes(_sized(data, len(data) - start))
    check_checkpoint_file(path)  # no error


def test_lightning_checkpoints_load_with_weights_only(checkpoints: dict[str, Path]) -> None:
    for path in checkpoints.values():
        checkpoint = torch.load(path, weights_only=True)
        assert {"state_dict", "hyper_parameters", "optimizer_states", "loops"} <= set(checkpoint)
        assert load_checkpoint(path).keys() == checkpoint.keys()


def test_load_from_checkpoint_names_a_damaged_file(damaged: tuple[Path, str, bytes]) -> None:
    path, message, _ = damaged
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(path))}: {message}"):
        LeNet5.load_from_checkpoint(path)


def test_an_open_file_restores_with_and_without_weights_only(checkpoints: dict[str, Path]) -> None:
    # Lightning's reader, which weights_only=False goes through, asks the file system
    # whether the path exists: an open file was "not found".
    saved = load_checkpoint(checkpoints["lenet5"])
    for weights_only in (True, False):
        with checkpoints["lenet5"].open("rb") as f:
            model = restore(LeNet5, f, weights_only=weights_only)
            state = model.state_dict()
            assert all(torch.equal(v, saved["state_dict"][k]) for k, v in state.items())
        with checkpoints["lenet5"].open("rb") as f:
            loaded = AtomicCheckpointIO().load_checkpoint(f, weights_only=weights_only)
            assert loaded["global_step"] == saved["global_step"]


# -- another architecture --------------------------------------------------------------------


def test_a_checkpoint_of_another_architecture_is_refused(checkpoints: dict[str, Path]) -> None:
    path = checkpoints["resnet20"]
    with pytest.raises(
        CheckpointError,
        match=rf"^{re.escape(str(path))}: the checkpoint holds a 'resnet20' "
        r"model; expected 'lenet5', the model it is loaded into\. .*\(on the command line: "
        r"--model resnet20\).*\(--weights FILE\) instead of resuming$",
    ):
        verify_checkpoint(LeNet5(), load_checkpoint(path), str(path))
    # Without hyperparameters, the weights themselves tell.
    state = {"state_dict": load_checkpoint(path)["state_dict"]}
    message = (
        rf"^{re.escape(str(path))}: the weights do not fit lenet5 "
        r"\(10 entries expected, 116 given: "
        r"8 missing \(net\.c1\.0\.weight, .* and 5 more\); 114 unexpected "
        r"\(net\.conv1\.weight, .* and 111 more\); 1 of another shape: net\.fc\.weight "
        r"\(10, 64\) \(expected \(10, 84\)\)\)\. It is a checkpoint of another architecture"
    )
    with pytest.raises(CheckpointError, match=message):
        verify_checkpoint(LeNet5(), state, str(path))


def test_a_checkpoint_of_another_configuration_names_the_shapes(tmp_path: Path) -> None:
    state = {"state_dict": LeNet5(num_classes=5).state_dict()}
    with pytest.raises(
        CheckpointError,
        match=r"^five\.ckpt: the weights do not fit lenet5 .*2 of "
        r"another shape: net\.fc\.weight \(5, 84\) \(expected \(10, 84\)\), "
        r"net\.fc\.bias \(5,\) \(expected \(10,\)\)",
    ):
        verify_checkpoint(LeNet5(num_classes=10), state, "five.ckpt")
    verify_checkpoint(LeNet5(num_classes=5), state, "five.ckpt")  # its own: no error
    # The classes the checkpoint records must be the data's, in order (compared as text).
    state[DATA_CHECKPOINT_KEY] = {"class_names": ["0", "1", "2", "3", "4"]}
    verify_checkpoint(LeNet5(num_classes=5), state, "five.ckpt", class_names=range(5))
    with pytest.raises(
        CheckpointError,
        match=r"^five\.ckpt: the checkpoint was trained on the classes "
        r"\['0', '1', '2', '3', '4'\]; the data has \['4', '3', '2', '1', '0'\], which its "
        "outputs do not stand for",
    ):
        verify_checkpoint(LeNet5(num_classes=5), state, "five.ckpt", "43210")
    # Names of another count are an older head's, left in the file: not this head's classes.
    state[DATA_CHECKPOINT_KEY] = {"class_names": [str(d) for d in range(10)]}
    verify_checkpoint(LeNet5(num_classes=5), state, "five.ckpt", class_names="abcde")


def test_resuming_on_other_classes_is_refused_for_a_head_of_its_own_size() -> None:
    # A checkpoint whose head is not its arch's default (lenet5: 10 classes), as saved.
    saved = LeNet5(num_classes=4)
    checkpoint = {
        "hyper_parameters": dict(saved.hparams),
        DATA_CHECKPOINT_KEY: {"class_names": ["cat", "dog", "fox", "owl"]},
        "state_dict": saved.state_dict(),
    }
    assert checkpoint["hyper_parameters"]["num_classes"] == 4
    verify_checkpoint(LeNet5(num_classes=4), checkpoint, "four.ckpt", ["cat", "dog", "fox", "owl"])
    with pytest.raises(
        CheckpointError,
        match=r"^four\.ckpt: the checkpoint was trained on the classes "
        r"\['cat', 'dog', 'fox', 'owl'\]; the data has \['ant', 'bee', 'cow', 'elk'\]",
    ):
        verify_checkpoint(
            LeNet5(num_classes=4), checkpoint, "four.ckpt", ["ant", "bee", "cow", "elk"]
        )


def test_the_weights_api_refuses_another_architecture(checkpoints: dict[str, Path]) -> None:
    path = checkpoints["resnet20"]
    with pytest.raises(
        ValueError,
        match=rf"{re.escape(str(path))} holds a 'resnet20' network; got arch='lenet5'\. "
        r".* \(on the command line: --model resnet20 --weights "
        rf"{re.escape(str(path))}\)$",
    ):
        load_weights_file(LeNet5().net, path, arch="lenet5")


def test_strict_false_loads_what_fits_of_another_network_everywhere(tmp_path: Path) -> None:
    # As load_from_checkpoint(strict=False) did, and the README says of all three: create_model
    # and load_model refused the file by its network's name, whatever strict said.
    source = LeNet5(arch="lenet5_modern")
    trainer = L.Trainer(logger=False, enable_checkpointing=False)
    trainer.strategy.connect(source)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    for load in (
        lambda: LeNet5.load_from_checkpoint(tmp_path / "m.ckpt", arch="lenet5_bn", strict=False),
        lambda: create_model("lenet5_bn", checkpoint_path=tmp_path / "m.ckpt", strict=False),
        lambda: classic_cnns.load_model(tmp_path / "m.ckpt", arch="lenet5_bn", strict=False),
    ):
        with pytest.warns(UserWarning, match=r"16 key\(s\) not loaded from"):
            model = load()
        assert model.info.name == "lenet5_bn"
        assert torch.equal(model.net.c1[0].weight, source.net.c1[0].weight)  # what fits loads
    with pytest.raises(CheckpointError, match=r"holds a 'lenet5_modern' network"):
        create_model("lenet5_bn", checkpoint_path=tmp_path / "m.ckpt")  # strict by default


def test_resuming_from_a_checkpoint_of_another_architecture_is_refused(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    path = checkpoints["resnet20"]
    with pytest.raises(
        CheckpointError, match=rf"{re.escape(str(path))}: the checkpoint holds a 'resnet20' model"
    ):
        _trainer(tmp_path).fit(LeNet5(scheduler="none"), _loader(1), ckpt_path=path)


def test_a_family_class_refuses_a_checkpoint_of_another_family(
    checkpoints: dict[str, Path],
) -> None:
    path = checkpoints["resnet20"]
    with pytest.raises(
        ValueError,
        match=rf"{re.escape(str(path))}.*'resnet20'.*LeNet5|LeNet5.*'resnet20'.*{re.escape(str(path))}",
    ):
        LeNet5.load_from_checkpoint(path)
    # An arch of another family given as a keyword is the caller's, not the file's.
    path = checkpoints["lenet5"]
    with pytest.raises(
        ValueError,
        match=rf"^arch='resnet20' is not one of LeNet5's archs \(the lenet family\); "
        rf"{re.escape(str(path))} holds 'lenet5'$",
    ):
        LeNet5.load_from_checkpoint(path, arch="resnet20")


# -- atomic writes ---------------------------------------------------------------------------


def _failing_save(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    """Make torch.save write half a file, then fail (a full disk, a kill)."""
    real = torch.save

    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        real(obj, f, *args, **kwargs)
        f.seek(0)
        f.truncate(100)
        raise exc

    monkeypatch.setattr(files_module.torch, "save", save)


@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_an_interrupted_save_leaves_the_old_checkpoint_whole(
    checkpoints: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    exc: BaseException,
) -> None:
    path = tmp_path / "last.ckpt"
    shutil.copy(checkpoints["lenet5"], path)
    before = path.read_bytes()
    trainer = _trainer(tmp_path, enable_checkpointing=False)
    trainer.strategy.connect(create_model("lenet5"))
    _failing_save(monkeypatch, exc)
    with pytest.raises(type(exc)):
        trainer.save_checkpoint(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]  # no temporary left
    monkeypatch.undo()
    trainer.save_checkpoint(path)  # and a save that succeeds replaces it whole
    assert load_checkpoint(path)["hyper_parameters"]["arch"] == "lenet5"


def test_atomic_save_replaces_the_file_in_one_step(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "w.pt"
    atomic_save({"w": torch.ones(2)}, path)
    atomic_save({"w": torch.zeros(3)}, path)
    assert torch.equal(load_checkpoint(path)["w"], torch.zeros(3))
    assert [p.name for p in path.parent.iterdir()] == ["w.pt"]


def test_model_checkpoint_writes_through_the_atomic_plugin(tmp_path: Path) -> None:
    trainer = _trainer(tmp_path, max_steps=2)
    trainer.fit(LeNet5(scheduler="none"), _loader(1))
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    (path,) = tmp_path.glob("checkpoints/*.ckpt")
    assert load_checkpoint(path)["global_step"] == 2
    assert not list(tmp_path.rglob(".*.tmp"))


def test_a_remote_checkpoint_is_saved_through_its_file_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As the plugin's docstring says: a remote (fsspec) path takes Lightning's own save, not
    # a local file named like the URL. fsspec's in-memory file system stands for one.
    import fsspec

    monkeypatch.chdir(tmp_path)
    memory = fsspec.filesystem("memory")
    folder = f"/classic-cnns-{tmp_path.name}"
    try:
        AtomicCheckpointIO().save_checkpoint({"w": torch.ones(1)}, f"memory://{folder}/m.ckpt")
        with memory.open(f"{folder}/m.ckpt", "rb") as f:
            assert torch.equal(torch.load(f, weights_only=True)["w"], torch.ones(1))
        assert list(tmp_path.iterdir()) == []  # no local memory: folder
    finally:
        if memory.exists(folder):
            memory.rm(folder, recursive=True)


posix_only = pytest.mark.skipif(
    os.name != "posix", reason="file modes and symbolic links as POSIX has them"
)


@posix_only
@pytest.mark.parametrize("mode", [0o600, 0o640, 0o444, 0o755], ids=oct)
def test_atomic_path_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "secret.csv"
    path.write_text("old\n")
    path.chmod(mode)
    with atomic_path(path) as tmp:
        tmp.write_text("new\n")
    assert (path.read_text(), path.stat().st_mode & 0o777) == ("new\n", mode)
    with atomic_path(tmp_path / "fresh.csv") as tmp:  # a new file: as open() makes one
        tmp.write_text("new\n")
    with (tmp_path / "plain.csv").open("w") as f:
        f.write("new\n")
    assert (tmp_path / "fresh.csv").stat().st_mode == (tmp_path / "plain.csv").stat().st_mode


@posix_only
def test_atomic_path_writes_through_a_symbolic_link(tmp_path: Path) -> None:
    # As open() does: the file the link names is replaced, the link is kept.
    (tmp_path / "runs").mkdir()
    target = tmp_path / "runs" / "last.pt"
    atomic_save({"w": torch.ones(2)}, target)
    link = tmp_path / "latest.pt"
    link.symlink_to(target)
    atomic_save({"w": torch.zeros(3)}, link)
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert torch.equal(load_checkpoint(target)["w"], torch.zeros(3))
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["last.pt", "latest.pt", "runs"]


def test_atomic_path_leaves_nothing_behind_when_its_block_fails(tmp_path: Path) -> None:
    # The folders made for the file go with it; a folder that was there stays.
    (tmp_path / "kept").mkdir()
    for target in (tmp_path / "deploy" / "v1" / "m.onnx", tmp_path / "kept" / "v2" / "m.onnx"):
        with pytest.raises(ValueError, match="the writer failed"), atomic_path(target) as tmp:
            tmp.write_bytes(b"half a model")
            raise ValueError("the writer failed")
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")] == ["kept"]


def test_atomic_path_takes_long_names_and_refuses_a_folder_s_without_leaving_anything(
    tmp_path: Path,
) -> None:
    # 80 CJK characters are 240 bytes: the temporary name, cut at 200 characters, was over
    # the 255 bytes a name may have, so the file could not be written, and the folder made
    # for it stayed.
    name = "图" * 80 + ".pt2"
    with atomic_path(tmp_path / "sub" / name) as tmp:
        tmp.write_bytes(b"x")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == [name]
    with pytest.raises(OSError), atomic_path(tmp_path / "new" / ("图" * 90 + ".pt2")) as tmp:
        tmp.write_bytes(b"x")  # 274 bytes: no file system takes the name itself
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]
    # A path ending in a slash is a folder's, as open() says: Path() dropped the slash, and a
    # file named like the folder was written (export --output models/, predict-folder too).
    refused = pytest.raises(IsADirectoryError, match="models/: it ends in a slash; expected a")
    with refused, atomic_path(f"{tmp_path}/models/"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]


def _sigterm_inside(block: str, write: str) -> None:
    # Run `with {block} as out:`, write a file with `write`, and SIGTERM the process in the
    # block, in a child process: it must end with the status the signal's own exit gives.
    script = (
        "import os, signal\n"
        "from classic_cnns._download import download_folder\n"
        "from classic_cnns.files import atomic_path\n"
        f"with {block} as out:\n"
        f"    {write}\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    raise AssertionError('SIGTERM did not stop the block')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert done.returncode == 143, done.stderr.decode()


@posix_only
def test_atomic_path_cleans_up_after_a_sigterm(tmp_path: Path) -> None:
    # kill, timeout, a job scheduler: the writer ends as after Ctrl-C, with the status the
    # signal's own exit gives (143), and leaves no hidden temporary file the model's size.
    _sigterm_inside(f"atomic_path({str(tmp_path / 'deploy' / 'm.onnx')!r})",
                    "out.write_bytes(b'x' * 1000)")  # fmt: skip
    assert list(tmp_path.iterdir()) == []
    # Its handler is put back after; where something else handles SIGTERM (a Lightning run's
    # handler, here SIG_IGN), that is left alone.
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with sigterm_as_exit():
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with sigterm_as_exit():
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


@posix_only
def test_a_download_stopped_by_sigterm_leaves_nothing_behind(tmp_path: Path) -> None:
    # `data fetch` under kill or a scheduler: the partial file, its scratch folder and the
    # folders made for it stayed (a later download removed the scratch a day on); Ctrl-C's
    # cleanup now runs for SIGTERM too, which ends with status 143.
    _sigterm_inside(f"download_folder({str(tmp_path / 'MNIST' / 'raw')!r})",
                    "(out / 'train-images-idx3-ubyte.gz').write_bytes(b'x' * 1000)")  # fmt: skip
    assert list(tmp_path.iterdir()) == []


@posix_only
def test_a_save_that_runs_out_of_room_names_its_file_and_keeps_the_earlier_one(
    tmp_path: Path,
) -> None:
    # A full disk or a file-size limit: torch's writer raised "unexpected pos 273600 vs
    # 273488" over the OSError (EFBIG, ENOSPC), and neither named the file. (A limit set in a
    # child process, as `ulimit -f` would; Python ignores SIGXFSZ, so the write fails.)
    path = tmp_path / "last.ckpt"
    atomic_save({"w": torch.ones(4)}, path)
    before = path.read_bytes()
    script = (
        "import resource, sys, torch\n"
        "from classic_cnns.files import atomic_save\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))\n"
        "try:\n"
        "    atomic_save({'w': torch.ones(100_000)}, sys.argv[1])\n"
        "except OSError as err:\n"
        "    print(err.errno, err)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    expected = f"cannot write {path}: File too large; the last.ckpt there is kept"
    assert done.stdout.strip() == f"27 [Errno 27] {expected}"
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [path.name]
    # Safetensors' Rust writer says "(os error 28)" (older releases "Os { code: 28") in a
    # message of its own: the same errno.
    full = rf"^\[Errno 28\] cannot write {re.escape(str(path))}: "
    for said in ("I/O error: (os error 28)", "IoError(Os { code: 28, kind: StorageFull })"):
        with pytest.raises(NoRoomError, match=full) as raised, atomic_path(path):
            raise RuntimeError(f"Error while serializing: {said}")
        assert raised.value.path == path and raised.value.errno == 28
    # Other errors stay as they are: words that only quote one, Ctrl-C while handling one.
    with pytest.raises(ValueError, match="bad label"), atomic_path(path):
        raise ValueError("bad label (os error 28)")
    with pytest.raises(KeyboardInterrupt), atomic_path(path):
        try:
            raise OSError(28, "No space left on device")
        except OSError:
            raise KeyboardInterrupt from None
    # A nested write's own file stays named (not the outer one's, which did not fail).
    inner = tmp_path / "inner.pt"
    outer = atomic_path(tmp_path / "outer.txt")
    with pytest.raises(NoRoomError) as raised, outer, atomic_path(inner):
        raise OSError(28, "No space left on device")
    assert raised.value.path == inner and str(inner) in str(raised.value)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_atomic_path_refuses_a_folder_before_the_block_runs(tmp_path: Path) -> None:
    # It used to fail at the final rename, naming its hidden temporary file.
    folder = tmp_path / "imgs"
    folder.mkdir()
    with pytest.raises(
        IsADirectoryError, match=rf"^expected a file path; got the folder {re.escape(str(folder))}$"
    ):
        atomic_save({"w": torch.ones(2)}, folder)
    ran = []
    with pytest.raises(IsADirectoryError, match=r"got the folder"), atomic_path(folder) as tmp:
        ran.append(tmp)
    assert ran == [] and sorted(p.name for p in tmp_path.rglob("*")) == ["imgs"]


def test_the_home_folder_is_where_the_writers_and_readers_take_a_tilde(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As fsspec (Lightning's own checkpoint IO) does: ~/x.ckpt was written to ./~/x.ckpt and
    # could not be read back; an existing ~/p.csv was not seen by the overwrite check.
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    AtomicCheckpointIO().save_checkpoint({"w": torch.ones(2)}, "~/runs/m.ckpt")
    assert torch.equal(AtomicCheckpointIO().load_checkpoint("~/runs/m.ckpt")["w"], torch.ones(2))
    with pytest.raises(FileExistsError, match=r"~/runs/m.ckpt exists; pass overwrite=True"):
        refuse_existing("~/runs/m.ckpt", overwrite=False)
    assert list(work.iterdir()) == [] and (home / "runs" / "m.ckpt").is_file()


def test_a_name_near_the_file_system_s_limit_is_written(tmp_path: Path) -> None:
    # The temporary name (a dot, the name, a random part) went past 255 bytes.
    path = tmp_path / ("p" * 245 + ".csv")
    with atomic_path(path) as tmp:
        tmp.write_text("file,class\n")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_an_unwritable_target_is_named_not_the_temporary_file(tmp_path: Path) -> None:
    # A file where a folder should be gave "[Errno 17] File exists: 'good.ckpt'".
    (tmp_path / "good.ckpt").write_text("weights\n")
    with pytest.raises(NotADirectoryError, match=r"x.pt: .*good.ckpt is a file, not a folder"):
        atomic_save({"w": torch.ones(1)}, tmp_path / "good.ckpt" / "x.pt")


def test_check_writable_leaves_nothing_behind(tmp_path: Path) -> None:
    # As its docstring says: a probe file is made and removed, nothing at the path touched.
    (tmp_path / "out.csv").write_text("mine\n")
    check_writable(tmp_path / "out.csv")
    check_writable(tmp_path / "new" / "sub" / "out.csv")  # the folders atomic_path would make
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
    assert (tmp_path / "out.csv").read_text() == "mine\n"


def test_a_folder_is_not_reported_as_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=rf"^{re.escape(str(tmp_path))}: is a folder; expected a checkpoint"
    ):
        load_checkpoint(tmp_path)
    with pytest.raises(
        FileNotFoundError, match=rf"^{re.escape(str(tmp_path))}: is a folder; expected a weights"
    ):
        read_weights_file(tmp_path)
    with pytest.raises(
        FileNotFoundError, match=rf"^{re.escape(str(tmp_path))}: is a folder; expected a weights"
    ):
        classic_cnns.load_model(tmp_path)
    with pytest.raises(
        FileNotFoundError, match=rf"^{re.escape(str(tmp_path))}: is a folder; expected a weights"
    ):
        create_model("lenet5", checkpoint_path=tmp_path)


def test_a_safetensors_file_given_for_a_checkpoint_is_named_as_one(tmp_path: Path) -> None:
    from classic_cnns.export import save_safetensors

    path = tmp_path / "m.safetensors"
    save_safetensors(LeNet5(num_classes=3), path)
    said = (
        r": a safetensors file, not a torch.save checkpoint; load it with "
        r"classic_cnns.load_model\(path\) or create_model\(arch, checkpoint_path=path\)$"
    )
    for weights_only in (None, False):
        with pytest.raises(CheckpointError, match=rf"^{re.escape(str(path))}{said}"):
            LeNet5.load_from_checkpoint(path, weights_only=weights_only)
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(path))}{said}"):
        load_checkpoint(path)
    assert classic_cnns.load_model(path).num_classes == 3  # where it does load
    # Cut short, it is still a safetensors file: load_model says it is truncated.
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(cut))}{said}"):
        load_checkpoint(cut)
    with pytest.raises(
        CheckpointError, match=r"cut.safetensors: the safetensors file is truncated"
    ):
        classic_cnns.load_model(cut)
    # Empty, it is no file of either kind; its name says which was meant.
    empty = tmp_path / "empty.safetensors"
    empty.touch()
    with pytest.raises(CheckpointError, match=r"empty \(0 bytes\); expected a safetensors file\."):
        classic_cnns.load_model(empty)


def test_a_zip_archive_torch_save_did_not_write_is_named_as_one(tmp_path: Path) -> None:
    # Neither a checkpoint nor a program (TorchScript, torch.export): whole, it is no
    # truncated or corrupted checkpoint either.
    path = tmp_path / "photos.ckpt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("photos/readme.txt", "holiday photos\n")
    said = (
        r": a zip archive that torch.save did not write \(it has no data\.pkl record\); "
        r"expected a checkpoint or a \.safetensors file$"
    )
    with pytest.raises(CheckpointError, match=rf"^{re.escape(str(path))}{said}"):
        load_checkpoint(path)
    with (
        path.open("rb") as f,
        pytest.raises(CheckpointError, match=rf"^{re.escape(str(path))}{said}"),
    ):
        load_checkpoint(f)  # an open file: read as is, its records named all the same


def test_strip_compiled_refuses_what_is_not_a_key() -> None:
    with pytest.raises(
        TypeError, match=r"^strip_compiled takes a state-dict key \(a str\); got int$"
    ):
        files_module.strip_compiled(5)  # type: ignore[arg-type]


# -- dataset files ---------------------------------------------------------------------------


def test_a_truncated_or_tampered_dataset_file_is_named_and_kept(
    mnist_raw: Path, tmp_path: Path, http_mirror: tuple[Path, str]
) -> None:
    raw = make_mnist_dir(tmp_path, mnist_raw)
    good_images = (raw / T10K_IMAGES).read_bytes()
    (raw / T10K_LABELS).write_bytes((raw / T10K_LABELS).read_bytes()[:3000])  # cut off
    dm = MNIST(str(tmp_path), download=True, protocol="10k")
    # Only an empty loopback mirror: a download attempt would fail with a 404 here.
    dm.mirrors = [http_mirror[1]]
    dm.prepare_data()  # the file is there, so nothing is downloaded over it
    with pytest.raises(
        ValueError,
        match=rf"^{re.escape(str(raw / T10K_LABELS))}: md5 \w+ does not match the "
        r"published \w+; the file is corrupted or not the original: delete it",
    ):
        dm.setup("fit")
    assert len((raw / T10K_LABELS).read_bytes()) == 3000  # kept for inspection, not replaced
    assert (raw / T10K_IMAGES).read_bytes() == good_images


def test_a_damaged_gzip_stream_is_named_and_kept(mnist_raw: Path, tmp_path: Path) -> None:
    # One flipped bit inside the deflate data: zlib's error, not a truncation (EOFError).
    raw = make_mnist_dir(tmp_path, mnist_raw)
    damaged = bytearray((raw / T10K_IMAGES).read_bytes())
    damaged[100] ^= 0x10
    (raw / T10K_IMAGES).write_bytes(damaged)
    with pytest.raises(
        ValueError,
        match=rf"^{re.escape(str(raw / T10K_IMAGES))}: md5 .* fails: "
        r"cannot read the file \(Error -3",
    ):
        MNIST(str(tmp_path), download=False, protocol="10k").setup("fit")
    assert (raw / T10K_IMAGES).read_bytes() == damaged


def test_a_truncated_uncompressed_dataset_file_is_named_and_kept(
    mnist_raw: Path, tmp_path: Path
) -> None:
    raw = make_mnist_dir(tmp_path, mnist_raw, gz=False)
    labels = raw / T10K_LABELS.removesuffix(".gz")
    labels.write_bytes(labels.read_bytes()[:5008])
    with pytest.raises(
        ValueError,
        match=rf"^{re.escape(str(labels))}: expected 10008 bytes for shape \(10000,\), "
        r"got 5008 \(the file is truncated or corrupted\): delete it and download",
    ):
        MNIST(str(tmp_path), download=False, protocol="10k").setup("fit")
    assert len(labels.read_bytes()) == 5008
    with gzip.open(mnist_raw / T10K_IMAGES) as f:
        assert (raw / T10K_IMAGES.removesuffix(".gz")).read_bytes() == f.read()


def test_a_damaged_uncompressed_copy_gives_way_to_the_good_gz_beside_it(
    mnist_raw: Path, tmp_path: Path
) -> None:
    # An interrupted `gunzip -k` leaves a truncated file beside a good archive: the archive
    # is read (with a warning naming the damaged file), and neither file is touched.
    raw = make_mnist_dir(tmp_path, mnist_raw, gz=False)
    for name in (T10K_IMAGES, T10K_LABELS):
        shutil.copy(mnist_raw / name, raw / name)
    labels = raw / T10K_LABELS.removesuffix(".gz")
    labels.write_bytes(labels.read_bytes()[:5008])
    with pytest.warns(
        UserWarning,
        match=rf"^{re.escape(str(labels))}: expected .* corrupted\): delete it; read {T10K_LABELS}",
    ):
        dm = MNIST(str(tmp_path), download=False, protocol="10k", val_size=0)
        dm.setup("fit")
    assert dm.num_classes == 10 and dm._splits["train"][1].shape == (8000,)  # 8,000 of 10,000
    assert len(labels.read_bytes()) == 5008
    # Both copies damaged: both are named.
    (raw / T10K_LABELS).write_bytes((raw / T10K_LABELS).read_bytes()[:100])
    with pytest.raises(
        ValueError,
        match=rf"(?s)^{re.escape(str(labels))}: expected .*\n"
        rf"{re.escape(str(raw / T10K_LABELS))}: md5",
    ):
        MNIST(str(tmp_path), download=False, protocol="10k").setup("fit")


@pytest.fixture
def http_reply() -> Iterator[Callable[[bytes], str]]:
    """A loopback server that answers every request with the given raw bytes, then closes."""
    replies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.wfile.write(replies[-1])
            self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def serve(reply: bytes) -> str:
        replies.append(reply)
        return f"http://127.0.0.1:{server.server_address[1]}/file.gz"

    try:
        yield serve
    finally:
        server.shutdown()
        server.server_close()


def test_a_download_cut_off_mid_transfer_fails(
    http_reply: Callable[[bytes], str], tmp_path: Path
) -> None:
    body = bytes(range(256)) * 18  # 4,608 bytes
    header = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
    url = http_reply(header % len(body) + body[: len(body) // 2])  # then the server closes
    with pytest.raises(OSError, match=r"^the connection closed after 2304 of 4608 bytes$"):
        download(url, tmp_path / "file.gz")
    download(http_reply(header % len(body) + body), tmp_path / "file.gz")  # a whole body
    assert (tmp_path / "file.gz").read_bytes() == body


def test_a_reply_that_is_not_http_is_an_os_error(
    http_reply: Callable[[bytes], str], tmp_path: Path
) -> None:
    url = http_reply(b"GARBAGE\r\n\r\n")
    with pytest.raises(
        OSError, match=r"^not a valid HTTP reply: BadStatusLine\('GARBAGE\\r\\n'\)$"
    ):
        download(url, tmp_path / "file.gz")


# -- torch.load ------------------------------------------------------------------------------


def _torch_load_calls_without_weights_only(source: str) -> list[int]:
    """Line numbers of ``torch.load`` / ``pl_load`` calls lacking ``weights_only=True``."""
    tree = ast.parse(source)
    aliases = {"load"} & {
        a.asname or a.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module in ("torch", "torch.serialization")
        for a in node.names
    }
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = ast.unparse(func)
        is_load = (
            name in ("torch.load", "torch.serialization.load", "pl_load", "_load")
            or name.endswith("cloud_io._load")
            or (isinstance(func, ast.Name) and func.id in aliases)
        )
        if not is_load:
            continue
        safe = any(
            kw.arg == "weights_only"
            and isinstance(kw.value, ast.Constant)
            and kw.value.value is True
            for kw in node.keywords
        )
        if not safe:
            bad.append(node.lineno)
    return bad


def test_nothing_in_the_package_calls_torch_load_without_weights_only() -> None:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 10
    offenders = {
        str(path.relative_to(SRC)): lines
        for path in files
        if (lines := _torch_load_calls_without_weights_only(path.read_text()))
    }
    assert offenders == {}, f"torch.load without weights_only=True at {offenders}"


def test_the_torch_load_check_catches_what_it_should() -> None:
    assert _torch_load_calls_without_weights_only("import torch\ntorch.load(p)\n") == [2]
    assert _torch_load_calls_without_weights_only(
        "import torch\ntorch.load(\n    p,\n    weights_only=False,\n)\n"
    ) == [2]
    assert _torch_load_calls_without_weights_only("from torch import load\nload(p)\n") == [2]
    assert _torch_load_calls_without_weights_only("torch.load(p, weights_only=True)\n") == []
