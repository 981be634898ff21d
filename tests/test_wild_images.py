"""Image files and folders as they come: oversized, linked, animated, misplaced, oddly named.

Every image is a real handwritten digit (scikit-learn's, scaled up), written with PIL.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from sklearn.datasets import load_digits

import classic_cnns.predict as predict_module
from classic_cnns import LeNet5
from classic_cnns.cli import main
from classic_cnns.data.folder import ImageFolder, list_images, load_image
from classic_cnns.data.images import load_images
from classic_cnns.data.preprocessing import to_size
from classic_cnns.predict import predict_folder, predict_main
from conftest import symlink

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """The first 60 of scikit-learn's digits as uint8 32x32 images, and their labels."""
    data = load_digits()
    images = (data.images[:60] * 255 / 16).round().astype(np.uint8)
    return np.kron(images, np.ones((4, 4), dtype=np.uint8)), data.target[:60]


def _png(digits: tuple[np.ndarray, np.ndarray], i: int, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(digits[0][i]).save(path)
    return path


def _classes(digits: tuple[np.ndarray, np.ndarray], folder: Path, n: int = 20) -> None:
    # Even and odd digits, as class folders of PNGs.
    for i in range(n):
        _png(digits, i, folder / ("odd" if digits[1][i] % 2 else "even") / f"{i:02d}.png")


def _predict(folder: Path, **kwargs: Any) -> list[dict[str, Any]]:
    # An untrained LeNet-5, normalised as told: the files and their order are what is tested.
    return predict_folder(LeNet5(), folder, mean=(0.5,), std=(0.25,), **kwargs)


def test_a_webp_over_pil_s_pixel_limit_is_an_unreadable_file_named(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An image of more pixels than PIL's Image.MAX_IMAGE_PIXELS allows is refused, a WebP as
    # any other format: lowered here, so that a small real WebP is "too big".
    Image.fromarray(digits[0][0][::4, ::4]).save(tmp_path / "a.png")  # 8x8: under the limit
    big = tmp_path / "big.webp"
    Image.fromarray(digits[0][1]).save(big, lossless=True)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 32x32 = 1024 > twice that
    with pytest.raises(ValueError, match=rf"^{re.escape(str(big))}: cannot decode the image \("):
        load_image(big, 1, None)
    with pytest.warns(UserWarning, match=r"1 of the 2 image files cannot be read: big\.webp \("):
        rows = _predict(tmp_path)
    assert [r["file"] for r in rows] == ["a.png"]


def test_linked_folders_are_followed_once_without_looping(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    root = tmp_path / "root"
    _classes(digits, root)
    even = root / "even"
    _png(digits, 20, tmp_path / "elsewhere" / "x.png")
    _png(digits, 21, even / "sub" / "y.png")
    symlink(even / "more", tmp_path / "elsewhere")  # a linked subfolder: followed
    symlink(even / "sub" / "up", even)  # a link to a folder above: no loop
    symlink(even / "again", even / "sub")  # a second name of a folder read already
    symlink(even / "sub" / "top", root)  # above even: it would list the odd images too
    with pytest.warns(UserWarning, match=rf"^{re.escape(str(even / 'sub' / 'top'))}: a link to "):
        files = [p.relative_to(even).as_posix() for p in list_images(even, recursive=True)]
    plain = sorted(p.name for p in even.glob("*.png"))
    assert files == [*plain, "more/x.png", "sub/y.png"]  # each file once, by its own name
    assert list_images(even) == [even / name for name in plain]  # not recursive: these alone
    rows = _predict(root, recursive=True)  # from root, the link leads back in: no loop
    assert [r["file"] for r in rows] == sorted(r["file"] for r in rows)
    assert {"even/more/x.png", "even/sub/y.png"} <= {r["file"] for r in rows}
    assert len(rows) == 22
    # ImageFolder's class folders take the linked images too (as torchvision's ImageFolder).
    dm = ImageFolder(root, channels=1, image_size=32, val_size=0, test_size=0)
    with pytest.warns(UserWarning, match="is skipped: it would list the folders beside"):
        dm.setup("fit")
    labels = dm._splits["train"][1].tolist()
    assert labels.count(dm.class_names.index("even")) == len(plain) + 2


def test_an_empty_val_or_test_folder_is_refused_and_an_absent_one_is_not(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    _classes(digits, tmp_path / "train")
    dm = ImageFolder(tmp_path, channels=1, image_size=32)  # no val/: val_size of train/
    dm.setup("fit")
    assert dm._splits["val"][0].shape[0] == 2 and dm.has_test_set is False
    for name in ("val", "Test"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "notes.txt").write_text("not an image")
        split = name.lower()
        with pytest.raises(
            ValueError,
            match=rf"^{re.escape(str(tmp_path / name))}: the {split} folder is empty; expected "
            rf"a folder per class holding its images \(as in train/\), or no {name}/ folder$",
        ):
            ImageFolder(tmp_path, channels=1, image_size=32)
        (tmp_path / name / "notes.txt").unlink()
        (tmp_path / name).rmdir()


def test_images_beside_the_split_folders_are_named_in_a_warning(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    _classes(digits, tmp_path / "train")
    for i, name in enumerate(("stray.png", "b.jpg", "c.PNG", "d.webp")):
        _png(digits, i, tmp_path / name)
    with pytest.warns(
        UserWarning,
        match=rf"^{re.escape(str(tmp_path))}: read as split folders \['train'\]; 4 image "
        r"file\(s\) \(b\.jpg, c\.PNG, d\.webp, \.\.\.\) beside them are left out",
    ):
        assert ImageFolder(tmp_path, channels=1).layout == "split"


def test_a_file_name_that_is_not_utf8_is_written_to_the_csv_as_its_bytes(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1, as an old camera or archive names files
    try:
        _png(digits, 0, tmp_path / "images" / name)
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system takes only UTF-8 file names")
    _png(digits, 1, tmp_path / "images" / "b.png")
    output = tmp_path / "out.csv"
    rows = _predict(tmp_path / "images", output=output)
    assert [r["file"] for r in rows] == ["b.png", name]
    lines = output.read_bytes().splitlines()
    assert [line.split(b",")[0] for line in lines] == [b"file", b"b.png", b"caf\xe9.png"]
    # The CSV alone: neither check_writable's probe nor atomic_path's temporary is left.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "out.csv"]


def test_an_output_that_cannot_be_written_is_refused_before_any_image_is_read(
    tmp_path: Path,
    digits: tuple[np.ndarray, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "images"
    for i in range(3):
        _png(digits, i, folder / f"{i}.png")
    decoded: list[Path] = []

    def counted(path: Path, *args: Any) -> torch.Tensor:
        decoded.append(path)
        return load_image(path, *args)

    monkeypatch.setattr(predict_module, "load_image", counted)
    (tmp_path / "notes.txt").write_text("mine")
    output = tmp_path / "notes.txt" / "out.csv"  # its folder is a file
    with pytest.raises(
        NotADirectoryError,
        match=rf"^cannot write {re.escape(str(output))}: .*notes\.txt is a file, not a folder$",
    ):
        _predict(folder, output=output)
    if Path("/proc/self").is_dir():  # Linux: no file can be made in /proc
        with pytest.raises(OSError, match=r"^cannot write /proc/out\.csv: no file can be made"):
            _predict(folder, output="/proc/out.csv")
    assert decoded == []  # refused first, not after classifying every image
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "notes.txt"]  # no leftovers
    assert sorted(p.name for p in Path("/proc").glob(".*.tmp")) == []
    # The command says so, without a traceback.
    model = LeNet5()
    model.data_config = {"mean": [0.5], "std": [0.25]}
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "lenet5.ckpt")
    code = predict_main([str(tmp_path / "lenet5.ckpt"), str(folder), "--output", str(output)])
    err = capsys.readouterr().err
    assert code == 2 and f"cannot write {output}" in err, err
    assert decoded == []


def test_a_broken_link_named_like_an_image_is_reported_not_dropped(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    _png(digits, 0, tmp_path / "a.png")
    broken = tmp_path / "x.png"
    symlink(broken, tmp_path / "gone.png")
    assert list_images(tmp_path) == [tmp_path / "a.png", broken]
    with pytest.raises(FileNotFoundError, match=rf"^{re.escape(str(broken))}: a broken link to "):
        load_image(broken, 1, None)
    with pytest.raises(FileNotFoundError, match=r"missing\.png: no such file; expected an image"):
        load_image(tmp_path / "missing.png", 1, None)
    with pytest.warns(UserWarning, match=r"1 of the 2 .* read: x\.png \(a broken link to .*gone"):
        assert [r["file"] for r in _predict(tmp_path)] == ["a.png"]
    with pytest.raises(ValueError, match=r"1 of the 2 image files cannot be read: x\.png \("):
        _predict(tmp_path, on_error="raise")


def test_an_animated_webp_gives_its_first_frame(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    frames = [Image.fromarray(digits[0][i]).convert("RGB") for i in range(3)]
    path = tmp_path / "anim.webp"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, lossless=True)
    with Image.open(path) as file:
        assert file.n_frames == 3
    first = torch.from_numpy(np.array(frames[0])).permute(2, 0, 1)
    assert torch.equal(load_image(path, 3, None), first)
    assert load_image(path, 1, 16).shape == (1, 16, 16)


def test_an_animated_gif_gives_its_first_frame(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    # Three frames of different colours (the digit drawn in red, green, blue): the docstring
    # promises the first frame of an animation, as PIL's own first frame shows it.
    frames = []
    for colour in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]:
        drawn = digits[0][0][:, :, None] * (np.array(colour) // 255)
        frames.append(Image.fromarray(drawn.astype(np.uint8)))
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(path) as file:
        assert file.n_frames == 3
        rgb, grey = np.array(file.convert("RGB")), np.array(file.convert("L"))
    assert rgb[..., 0].any() and not rgb[..., 1:].any()  # the red frame, the first one
    assert torch.equal(load_image(path, 3, None), torch.from_numpy(rgb).permute(2, 0, 1))
    assert torch.equal(load_image(path, 1, None), torch.from_numpy(grey)[None])


@pytest.mark.parametrize("height", [1, 2])
def test_a_colour_image_one_or_two_pixels_tall_keeps_its_colour(
    tmp_path: Path, height: int
) -> None:
    pixels = np.zeros((height, 6, 3), dtype=np.uint8)
    pixels[height - 1, 4] = (200, 0, 50)
    path = tmp_path / f"strip{height}.png"
    Image.fromarray(pixels).save(path)
    assert torch.equal(load_image(path, 3, None), torch.from_numpy(pixels).permute(2, 0, 1))


def test_a_decoding_error_gives_the_reason_without_the_decoder_s_source_file(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.webp"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WEBPjunkjunkjunk")
    with pytest.raises(ValueError) as info:
        load_image(bad, 3, None)
    message = str(info.value)
    assert message.startswith(f"{bad}: cannot decode the image (") and ".cpp" not in message
    # A truncated PNG: torchvision's message starts "operator(), .../decode_png.cpp:79, ".
    png = tmp_path / "cut.png"
    Image.fromarray(np.arange(64 * 64 * 3, dtype=np.uint8).reshape(64, 64, 3)).save(png)
    png.write_bytes(png.read_bytes()[:100])
    with pytest.raises(ValueError) as info:
        load_image(png, 3, None)
    message = str(info.value)
    assert message.startswith(f"{png}: cannot decode the image (") and ".cpp" not in message
    # Text under an image's name: torchvision's "Only jpeg, png, webp and gif are currently
    # supported" called a damaged BMP (a format read here, by PIL) an unsupported one.
    for name in ("fake.bmp", "fake.png", "fake.pgm", "fake.jpg"):
        (fake := tmp_path / name).write_text("not an image at all")
        with pytest.raises(ValueError) as info:
            load_image(fake, 1, None)
        assert str(info.value) == (
            f"{fake}: cannot decode the image (its first bytes are no image format's: a damaged "
            "file, or not an image (PNG, JPEG, GIF, WebP, BMP, TIFF, PBM/PGM/PPM are read))"
        )


@pytest.mark.parametrize("size", [True, "32", 32.0, (32, "32"), (True, 8)])
def test_a_size_of_another_type_is_refused(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray], size: Any
) -> None:
    path = _png(digits, 0, tmp_path / "a.png")
    with pytest.raises(
        ValueError,
        match=rf"^size must be an int or \(H, W\) of positive ints; got {re.escape(repr(size))}$",
    ):
        load_image(path, 1, size)
    assert load_image(path, 1, (8, 12)).shape == (1, 8, 12)


def test_a_root_that_is_a_file_is_said_to_be_one(tmp_path: Path) -> None:
    (tmp_path / "photos.zip").write_bytes(b"PK")
    with pytest.raises(
        NotADirectoryError, match=r"^root .*photos\.zip is a file; expected a folder's path$"
    ):
        ImageFolder(tmp_path / "photos.zip")
    with pytest.raises(FileNotFoundError, match=r"no image folder at .*absent: no such folder"):
        ImageFolder(tmp_path / "absent")


def test_one_extension_is_taken_as_a_bare_word_on_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["fit", "--data", "ImageFolder", "--data.root", "photos", "--data.extensions"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "png", "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)["data"]["init_args"]
    assert printed["extensions"] == "png"


def test_a_one_bit_netpbm_file_is_listed_as_load_image_reads_it(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    # load_image reads PBM (its message says so); a folder of them listed none ("no image
    # files"), and beside PNGs they were left out without a word.
    _png(digits, 0, tmp_path / "a.png")
    Image.fromarray(digits[0][1] > 127).save(tmp_path / "b.pbm")  # 1-bit: ink or not
    assert list_images(tmp_path) == [tmp_path / "a.png", tmp_path / "b.pbm"]
    ink = torch.from_numpy((digits[0][1] > 127).astype(np.uint8) * 255)
    assert torch.equal(load_image(tmp_path / "b.pbm", 1, None)[0], ink)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def _png_file(pixels: np.ndarray, bits: int = 8, interlaced: bool = False, cut_rows: int = 0,
              adler_flip: bool = False) -> bytes:  # fmt: skip
    # A grey PNG written by hand, every chunk's CRC right: Adam7 passes when interlaced (a pass
    # is the pixels from its first row and column, in its steps), rows of packed bits below 8.
    height, width = pixels.shape
    steps = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
             (0, 1, 1, 2)] if interlaced else [(0, 0, 1, 1)]  # fmt: skip
    raw = b""
    for x0, y0, dx, dy in steps:
        part = pixels[y0::dy, x0::dx]
        for row in part[: len(part) - cut_rows] if part.size else []:
            raw += b"\0" + (np.packbits(row).tobytes() if bits == 1 else row.tobytes())
    stream = bytearray(zlib.compress(raw))
    stream[-1] ^= adler_flip  # the Adler-32 of the inflated pixels, zlib's last byte
    header = (
        width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([bits, 0, 0, 0, interlaced])
    )
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        _png_chunk(k, v) for k, v in [(b"IHDR", header), (b"IDAT", bytes(stream)), (b"IEND", b"")]
    )


def test_a_damaged_png_is_refused_by_name_where_its_decoder_crashed(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    # torchvision 0.29.1's decode_png ends the process (a segmentation fault) on each of these:
    # libpng's errors while reading rows. Read in a child process, so that a crash fails this
    # test instead of ending the run.
    pixels = digits[0][7][:13, :11]  # 13 x 11: Adam7's passes of unequal sizes
    (good := tmp_path / "digit.png").write_bytes(_png_file(pixels))
    flipped, size = bytearray(good.read_bytes()), good.stat().st_size
    flipped[60] ^= 0x10  # inside the IDAT chunk, which starts at byte 33
    damaged = [  # each file, and why it is refused
        (flipped, "damaged: the CRC-32 of its IDAT chunk at byte 33 does not match its data"),
        (
            _png_file(pixels, adler_flip=True),
            "damaged: its compressed pixels do not inflate (Error -3 while decompressing data: "
            "incorrect data check)",
        ),
        (
            _png_file(pixels, cut_rows=6),
            "truncated or damaged: its pixels inflate to 84 bytes; its size and colour type "
            "need 156",
        ),
        (
            _png_file(pixels, interlaced=True, cut_rows=1),
            "truncated or damaged: its pixels inflate to 131 bytes; its size and colour type "
            "need 169",
        ),
        (
            good.read_bytes()[:-20],  # IEND's 12 bytes and IDAT's last 8
            f"truncated: its IDAT chunk at byte 33 ends at byte {size - 12}, past the file's "
            f"end ({size - 20} bytes)",
        ),
    ]
    paths = []
    for i, (data, _) in enumerate(damaged):
        paths.append(tmp_path / f"{i}.png")
        paths[-1].write_bytes(data)
    script = (
        "import sys, warnings\nwarnings.simplefilter('ignore')\n"
        "from classic_cnns.data.images import load_image\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n        load_image(path, 1, None)\n        print('read')\n"
        "    except ValueError as err:\n        print(err)\n"
    )
    args = [sys.executable, "-c", script, *map(str, paths)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = [
        f"{p}: cannot decode the image ({why})" for p, (_, why) in zip(paths, damaged, strict=True)
    ]
    assert done.stdout.splitlines() == expected
    # Whole files of every layout are read as written: 8-bit and 1-bit, interlaced or not.
    for bits, interlaced in [(8, False), (8, True), (1, False), (1, True)]:
        grey = pixels if bits == 8 else (pixels > 127).astype(np.uint8)
        (path := tmp_path / f"{bits}{interlaced}.png").write_bytes(
            _png_file(grey, bits, interlaced)
        )
        expected_pixels = grey if bits == 8 else grey * 255
        assert load_image(path, 1, None)[0].numpy().tolist() == expected_pixels.tolist()


def test_a_folder_s_images_are_sized_from_the_decoder_s_output_as_each_file_alone(
    tmp_path: Path,
) -> None:
    # load_images sizes the decoder's strided output without load_image's contiguous copy
    # (a sixth of ImageFolder's decoding time): the same pixels, PNG and JPEG, colour and grey.
    digits = load_digits()
    paths = []
    for i in range(12):
        image = Image.fromarray((digits.images[i] * 15).astype(np.uint8)).resize((8 + i, 12 + i))
        paths.append(tmp_path / f"{i}.{'png' if i % 2 else 'jpg'}")
        (image.convert("RGB") if i % 3 else image).save(paths[-1])
    for channels, mode in ((3, "resize"), (1, "resize"), (3, "pad")):
        size = (24, 24) if mode == "pad" else (16, 16)
        batch = load_images(paths, channels, size, mode)
        assert batch.shape == (12, channels, *size) and batch.float().std() > 10  # not blank
        for i, path in enumerate(paths):
            alone = to_size(load_image(path, channels, None), size, mode)
            assert torch.equal(batch[i], alone), (channels, mode, i)
    for size in ((0, 4), None, 2.5):
        with pytest.raises(ValueError, match=r"^size must be an int or \(H, W\) of positive ints"):
            load_images(paths, 3, size)  # type: ignore[arg-type]
    # Of two damaged files, the first is named.
    for bad in (paths[9], paths[5]):
        bad.write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(paths[5]))}: cannot decode"):
        load_images(paths, 3, (16, 16))
