"""The real datasets: fetched by the package's own md5-checked download, found through one
variable, and a test that needs a missing one skips saying how to get it (fails in CI)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from classic_cnns import MNIST, FashionMNIST
from classic_cnns.cli import main
from conftest import ROOT, T10K_IMAGES, T10K_LABELS


def test_data_fetch_downloads_and_checks_the_files(
    mnist_raw: Path,
    http_mirror: tuple[Path, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mirror, url = http_mirror
    for name in (T10K_IMAGES, T10K_LABELS):
        shutil.copy(mnist_raw / name, mirror / name)
    monkeypatch.setattr(MNIST, "mirrors", [url])
    target = tmp_path / "data"
    args = ["data", "fetch", "mnist", "--protocol", "10k", "--data-dir", str(target)]
    assert main(args) == 0
    raw = target / "MNIST" / "raw"
    assert f"MNIST (10k): {T10K_IMAGES}, {T10K_LABELS} in {raw}, checked" in capsys.readouterr().out
    published = dict(MNIST.resources)
    for name in (T10K_IMAGES, T10K_LABELS):
        assert hashlib.md5((raw / name).read_bytes()).hexdigest() == published[name]
    # A damaged file already in place is not downloaded over; it is named, with exit status 2.
    (raw / T10K_LABELS).write_bytes((raw / T10K_LABELS).read_bytes()[:3000])
    assert main(args) == 2
    assert f"{raw / T10K_LABELS}: md5 " in capsys.readouterr().err
    # A damaged unpacked copy beside a good archive: the archive is read, and listed as such.
    (raw / T10K_LABELS).write_bytes((mirror / T10K_LABELS).read_bytes())
    (raw / T10K_LABELS.removesuffix(".gz")).write_bytes(b"x")
    with pytest.warns(UserWarning, match="beside it instead"):
        assert main(args) == 0
    assert f"{T10K_IMAGES}, {T10K_LABELS} in {raw}, checked" in capsys.readouterr().out
    (raw / T10K_LABELS.removesuffix(".gz")).unlink()
    # The default folder is $CLASSIC_CNNS_DATA; a file that fails its md5 is refused in one line.
    (mirror / "train-images-idx3-ubyte.gz").write_bytes(b"not the images")
    monkeypatch.setenv("CLASSIC_CNNS_DATA", str(tmp_path / "elsewhere"))
    assert main(["data", "fetch", "mnist"]) == 2
    err = capsys.readouterr().err
    assert "\nclassic-cnns data: error: could not download train-images-idx3" in f"\n{err}"
    assert str(tmp_path / "elsewhere" / "MNIST" / "raw") in err and "Traceback" not in err
    assert "does not match the published" in err  # neither the archive nor its content
    assert not list((tmp_path / "elsewhere" / "MNIST" / "raw").glob("train-*"))


TEST_FILE = """
def test_needs_the_real_mnist_test_set(mnist_raw):
    assert mnist_raw.is_dir()
"""


@pytest.mark.parametrize("required", ["", "1"])
def test_a_missing_dataset_skips_with_how_to_get_it_or_fails_where_required(
    required: str, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest((ROOT / "tests" / "conftest.py").read_text())
    pytester.makepyfile(test_real=TEST_FILE)
    empty = pytester.mkdir("no_data")
    monkeypatch.setenv("CLASSIC_CNNS_DATA", str(empty))
    monkeypatch.setenv("CLASSIC_CNNS_REQUIRE_DATA", required)
    result = pytester.runpytest_subprocess("-rsE", "-p", "no:cacheprovider")
    how = (
        f"*real data missing: {T10K_IMAGES}, {T10K_LABELS} not in {empty / 'MNIST' / 'raw'}; "
        "get it "
        "with `classic-cnns data fetch mnist --protocol 10k --data-dir data` (from the "
        "repository root) or set $CLASSIC_CNNS_DATA to a folder that holds it*"
    )
    result.stdout.fnmatch_lines([how])
    if required:
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*($CLASSIC_CNNS_REQUIRE_DATA is set)*"])
    else:
        result.assert_outcomes(skipped=1)


def test_the_default_splits_hold_out_a_tenth_for_validation(
    fashion_raw: Path, mnist_raw: Path
) -> None:
    # val_size's default, 0.1 of the training images: Fashion-MNIST's 60,000 split 54,000 /
    # 6,000 (its 10,000 test images apart); MNIST-10k's first 8,000 split 7,200 / 800.
    for datamodule, sizes in (
        (FashionMNIST(fashion_raw.parents[1], download=False), (54_000, 6_000, 10_000)),
        (MNIST(mnist_raw.parents[1], download=False, protocol="10k"), (7_200, 800, 2_000)),
    ):
        datamodule.setup("fit")
        loaders = (
            datamodule.train_dataloader(),
            datamodule.val_dataloader(),
            datamodule.test_dataloader(),
        )
        assert tuple(len(loader.dataset) for loader in loaders) == sizes
