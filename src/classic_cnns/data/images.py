"""Image files: listed by extension and decoded into uint8 ``(C, H, W)`` tensors.

``torchvision.io.decode_image`` decodes while torchvision has it (deprecated from 0.29), and
TorchCodec's ``decode_image`` after; PNG, JPEG, GIF and WebP files give the same pixels in
both, upright by their EXIF orientation. BMP, TIFF and netpbm (PGM, PPM) files, which
neither reads, are read by PIL, as torchvision's ``ImageFolder`` reads every file.
:class:`~classic_cnns.data.folder.ImageFolder` and :func:`~classic_cnns.predict.predict_folder`
read every file through :func:`load_image`.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
import zlib
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image, ImageOps
from torch import Tensor

try:  # deprecated from torchvision 0.29 in favour of TorchCodec's decoders, later removed
    from torchvision.io import decode_image as _torchvision_decode
except ImportError:  # a torchvision without image decoders
    _torchvision_decode = None  # type: ignore[assignment]

from classic_cnns._checks import is_int
from classic_cnns.data.preprocessing import ResizeMode, _is_size, to_size

__all__ = ["IMAGE_EXTENSIONS", "files_digest", "list_images", "load_image", "load_images"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".pbm",
                    ".pgm", ".ppm")  # fmt: skip
"""The extensions :func:`list_images` and ``ImageFolder`` read by default, in any case:
torchvision's ``ImageFolder``'s and ``.gif`` (its first frame), which torchvision's leaves
out. What torchvision's and TorchCodec's ``decode_image`` read in every build (AVIF, HEIC:
not all), and by PIL, BMP, TIFF and netpbm files.

Example:
    >>> from classic_cnns.data.images import IMAGE_EXTENSIONS
    >>> ".webp" in IMAGE_EXTENSIONS
    True
"""


def list_images(
    folder: str | os.PathLike[str],
    extensions: str | Sequence[str] = IMAGE_EXTENSIONS,
    recursive: bool = False,
) -> list[Path]:
    """Image files in ``folder`` (by extension, any case), sorted by folder, then by name, as
    torchvision's ``ImageFolder`` lists them (``cat/z.png`` before ``cat/sub/a.png``).

    Hidden files and folders (a name that starts with a dot: ``.ipynb_checkpoints``, macOS's
    ``._photo.jpg``) are left out. Linked folders are followed, as torchvision's
    ``ImageFolder`` follows them, each real folder once (a link back into ``folder`` is no
    loop; one to a folder above it is skipped, with a warning), and their files are named
    by the link's path. A broken link named like an image is listed, for :func:`load_image`
    to report as unreadable rather than to drop silently.

    Args:
        folder: The folder.
        extensions: File extensions to take (``".png"``; ``"png"`` is read as ``".png"``).
        recursive: Include the files in subfolders.

    Raises:
        FileNotFoundError: if ``folder`` is not a folder.

    Example:
        >>> from classic_cnns.data.folder import list_images
        >>> list_images("photos")  # doctest: +SKIP
        [PosixPath('photos/a.jpg'), PosixPath('photos/b.png')]
    """
    folder = Path(folder)
    if not folder.is_dir():
        why = "is a file" if folder.exists() else "no such folder"
        raise FileNotFoundError(f"{folder}: {why}; expected a folder of images")
    exts = {"." + e.lower().lstrip(".") for e in _extensions(extensions)}
    found = (p for p in _files(folder, recursive) if p.suffix.lower() in exts)
    return sorted(found, key=lambda p: (str(p.parent), p.name))  # torchvision's order


def files_digest(paths: Sequence[Path], root: str | os.PathLike[str]) -> str:
    """A short digest of ``paths`` named from ``root``, in their order: which files a split is
    drawn from, and in which order, whatever the folder is called (a file added, removed or
    renamed gives another; new pixels in a file do not).

    Example:
        >>> from pathlib import Path
        >>> files_digest([Path("photos/cat/1.png")], "photos") == files_digest(
        ...     [Path("copy/cat/1.png")], "copy")
        True
        >>> len(files_digest([Path("r/\\udcff.png"), Path("r/\\ud800.png")], "r"))  # not UTF-8
        12
    """
    names = "\n".join(Path(p).relative_to(root).as_posix() for p in paths)
    return hashlib.sha256(names.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _files(folder: Path, recursive: bool) -> list[Path]:
    # The files (and broken links) in folder, hidden ones left out; with recursive, in its
    # subfolders too, linked ones followed (rglob does not, before Python 3.13). Each real
    # folder is read once: first every folder reached without a link (so that its files keep
    # their own names), then the linked ones in the order found.
    found: list[Path] = []
    top = os.path.realpath(folder)
    seen: set[str] = set()
    plain, linked = deque([folder]), deque[Path]()
    while plain or linked:
        current = plain.popleft() if plain else linked.popleft()
        real = os.path.realpath(current)
        if real in seen:
            continue
        if real != top and os.path.commonpath([top, real]) == real:  # above: its neighbours
            warnings.warn(
                f"{current}: a link to {real}, a folder above {folder}, is skipped: it would "
                f"list the folders beside {folder} as part of it",
                stacklevel=3,
            )
            continue
        seen.add(real)
        with os.scandir(current) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                path = current / entry.name
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    if recursive:
                        (linked if entry.is_symlink() else plain).append(path)
                elif entry.is_file() or (entry.is_symlink() and not path.exists()):
                    found.append(path)
    return found


def _extensions(extensions: Any) -> tuple[str, ...]:
    # A plain string ("png") is one extension, not the letters iterating it would give.
    found = (extensions,) if isinstance(extensions, str) else extensions
    if not isinstance(found, Sequence | set | frozenset) or not all(
        isinstance(e, str) and e.strip(".") for e in found
    ):
        raise TypeError(
            f'extensions must be an extension (".png" or "png") or a list of them; got '
            f"{extensions!r}"
        )
    if not found:
        raise ValueError(f"extensions must name at least one extension; got {extensions!r}")
    return tuple(found)


def _check_channels(channels: Any) -> None:
    # The channels an image is decoded to: grey or RGB.
    if not is_int(channels) or channels not in (1, 3):
        raise ValueError(f"channels must be the int 1 (grey) or 3 (RGB); got {channels!r}")


def load_image(
    path: str | os.PathLike[str], channels: int, size: int | Sequence[int] | None
) -> Tensor:
    """Decode an image file into uint8 ``(channels, H, W)``: resize to cover, crop the centre.

    The shorter side is scaled (bilinear, antialiased) so the image covers ``size`` and the
    centre is cropped, keeping the aspect ratio
    (:func:`~classic_cnns.data.preprocessing.to_size` with ``"resize"``).

    Args:
        path: PNG (8 or 16 bits), JPEG, GIF or WebP (of animations, the first frame) file,
            or BMP, TIFF (8 or 16 bits; the first page) or netpbm file; turned upright by its
            EXIF orientation.
        channels: 1 (grey) or 3 (RGB); other colour modes are converted, and transparency
            is dropped. Colour turns grey as PIL's ``convert("L")`` (ITU-R 601-2 luma); a
            JPEG's is its stored luma plane, as PIL's ``draft("L")`` decodes it.
        size: Output ``(H, W)``, one int for a square, or ``None`` for the file's own size.

    Raises:
        FileNotFoundError: naming the file, if it is missing (or a broken link).
        ValueError: naming the file, if it is empty or cannot be decoded, or has more pixels
            than PIL's ``Image.MAX_IMAGE_PIXELS`` allows (read from its header, before
            decoding; ``None``: no limit), or ``size`` is not valid.

    Example:
        >>> from classic_cnns.data.folder import load_image
        >>> load_image("digit.png", channels=1, size=32).shape  # doctest: +SKIP
        torch.Size([1, 32, 32])
    """
    _check_channels(channels)
    target = _size(size)
    image = _read_image(path, channels)
    if target is not None:
        image = to_size(image, target, "resize")
    return image.contiguous()


def _read_image(path: str | os.PathLike[str], channels: int) -> Tensor:
    # load_image's image at the file's size, as decoded: often a strided view of (H, W, C)
    # bytes, which resizing reads as well as a copy.
    if not os.path.exists(path):  # a missing file, or a broken link (list_images lists them)
        why = f"a broken link to {os.readlink(path)}" if os.path.islink(path) else "no such file"
        raise FileNotFoundError(f"{path}: {why}; expected an image file")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise ValueError(f"{path}: the file is empty (0 bytes); expected an image")
    try:
        image = _decode_file(path, channels)
    except (RuntimeError, ValueError, OSError, Image.DecompressionBombError) as err:
        # torchvision's messages start "decode_jpeg, /path/of/decode_jpeg.cpp:62, " (PNG's:
        # "operator(), ..."): the reason only
        reason = re.sub(r"^[\w()]+, \S+:\d+, ", "", str(err))
        raise ValueError(f"{path}: cannot decode the image ({reason})") from err
    if image.ndim == 4:  # an animated GIF decodes to (frames, C, H, W): keep the first frame
        image = image[0]
    # A 16-bit PNG decodes to uint16, scaled down here (a plain cast would wrap modulo 256).
    image = TF.to_dtype(image, torch.uint8, scale=True)
    image = image[:3] if image.shape[0] >= 3 else image[:1]  # without alpha
    if image.shape[0] != channels:
        image = _luma(image) if channels == 1 else image.expand(3, -1, -1)
    return image


def load_images(
    paths: Sequence[str | os.PathLike[str]],
    channels: int,
    size: int | tuple[int, int],
    mode: ResizeMode = "resize",
    crop_pct: float = 1.0,
) -> Tensor:
    """Decode image files into one uint8 batch ``(N, channels, H, W)``.

    Each file is decoded as :func:`load_image` decodes it and sized by
    :func:`~classic_cnns.data.preprocessing.to_size` (``mode``, ``crop_pct``) straight from
    the decoder's output, which :func:`load_image` copies once more to return it contiguous.

    Raises:
        FileNotFoundError, ValueError: as :func:`load_image`, for the first file that fails.

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> folder = tempfile.mkdtemp()
        >>> for i in range(3):
        ...     Image.new("L", (8, 6), 40 * i).save(f"{folder}/{i}.png")
        >>> batch = load_images([f"{folder}/{i}.png" for i in range(3)], channels=1, size=4)
        >>> batch.shape, batch[:, 0, 0, 0].tolist()
        (torch.Size([3, 1, 4, 4]), [0, 40, 80])
    """
    _check_channels(channels)
    if (target := _size(size)) is None:
        raise ValueError("size must be an int or (H, W) of positive ints; got None")
    images = torch.empty((len(paths), channels, *target), dtype=torch.uint8)
    for i, path in enumerate(paths):
        images[i] = to_size(_read_image(path, channels), target, mode, crop_pct)
    return images


def _size(size: Any) -> tuple[int, int] | None:
    # load_image's size as (H, W): an int, two ints, or None; never a bool or a string.
    if size is not None and not _is_size(size):
        raise ValueError(f"size must be an int or (H, W) of positive ints; got {size!r}")
    return None if size is None else (size, size) if isinstance(size, int) else tuple(size)


def _decode_file(path: str | os.PathLike[str], channels: int) -> Tensor:
    # Upright by the EXIF orientation (as viewers and PIL's ImageOps.exif_transpose show it),
    # by torchvision's decoder while there is one (WebP's here), else TorchCodec's: the same
    # pixels. Colour turns grey in _luma, as PIL's convert("L"), from every format but JPEG,
    # whose decoder keeps its stored luma plane (libpng's conversion would round a level off
    # PIL's; torchvision's GIF and WebP ignore the mode, TorchCodec converts its own way).
    # The file is read once; its first bytes tell the format.
    with open(path, "rb") as f:
        data = bytearray(f.read())  # writable, for torch.frombuffer
    _check_pixels(data)
    if data.startswith(_PIL_ONLY):
        return _decode_pil(data, channels)
    if data.startswith(_PNG):
        _check_png(data)
    webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if not (webp or data.startswith(_DECODED) or data[4:8] == b"ftyp"):  # ftyp: AVIF, HEIC
        raise ValueError("its first bytes are no image format's: a damaged file, or not an image "
                         "(PNG, JPEG, GIF, WebP, BMP, TIFF, PBM/PGM/PPM are read)")  # fmt: skip
    if webp and data[12:16] == b"VP8X" and data[20:21] and data[20] & 0x02:  # animated
        return _first_webp_frame(data)
    colour_png = data.startswith(_PNG) and data[25:26] in (b"\x02", b"\x03", b"\x06")
    rgb = webp or data.startswith(_GIF) or colour_png  # IHDR's colour type: RGB, palette, RGBA
    mode: Literal["GRAY", "RGB"] = "GRAY" if channels == 1 and not rgb else "RGB"
    encoded = torch.frombuffer(data, dtype=torch.uint8)
    if _torchvision_decode is not None:
        with warnings.catch_warnings():  # the deprecation is ours to act on, not the user's
            warnings.filterwarnings("ignore", "The image decoding", DeprecationWarning)
            image = _torchvision_decode(encoded, mode=mode, apply_exif_orientation=not webp)
        if not webp:
            return image
        with Image.open(io.BytesIO(data)) as file:  # torchvision's WebP ignores the EXIF's
            return _exif_transpose(image, file.getexif().get(0x0112, 1))
    try:
        from torchcodec.decoders import decode_image
    except (ImportError, OSError, RuntimeError) as err:  # a build for another torch: OSError
        raise ImportError(
            "this torchvision has no image decoders (deprecated in 0.29, since removed); "
            f"ImageFolder and predict-folder need TorchCodec's: pip install torchcodec ({err})"
        ) from err
    return decode_image(encoded, mode=mode, output_dtype="auto")  # 16-bit PNGs: scaled by us


# The signatures of PNG, JPEG and GIF, which the decoders read (and WebP's, AVIF's, HEIC's).
_PNG, _GIF = b"\x89PNG\r\n\x1a\n", b"GIF8"
_DECODED = (_PNG, b"\xff\xd8\xff", _GIF)


def _check_png(data: bytearray) -> None:
    """Raise ``ValueError`` unless the PNG ``data`` is whole: libpng's errors while it reads
    the pixels crash the process in torchvision's ``decode_png`` (0.29.1: a segmentation fault
    for each of 30 PNGs with 1 to 4 bits flipped). Checks every chunk's CRC-32 and inflates the
    IDAT stream (its Adler-32 included) to the length the IHDR's size, colour type, bit depth
    and interlacing need. ``load_image`` then takes about 35% longer for a 28 x 28 grey PNG
    and 45% for a 224 x 224 colour one (one thread).

    Example:
        >>> import io, numpy as np
        >>> from PIL import Image
        >>> buffer = io.BytesIO()
        >>> Image.fromarray(np.zeros((4, 4), np.uint8)).save(buffer, "PNG")
        >>> damaged = bytearray(buffer.getvalue())
        >>> damaged[45] ^= 1  # a bit of the IDAT chunk
        >>> _check_png(damaged)
        Traceback (most recent call last):
        ...
        ValueError: damaged: the CRC-32 of its IDAT chunk at byte 33 does not match its data
    """
    view, pos, pixels = memoryview(data), 8, zlib.decompressobj()
    need = inflated = 0
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(view[pos : pos + 4], "big"), bytes(view[pos + 4 : pos + 8])
        name, end = kind.decode() if kind.isalpha() else repr(kind), pos + 12 + size
        if end > len(data):
            raise ValueError(f"truncated: its {name} chunk at byte {pos} ends at byte {end}, "
                             f"past the file's end ({len(data)} bytes)")  # fmt: skip
        if zlib.crc32(view[pos + 4 : end - 4]) != int.from_bytes(view[end - 4 : end], "big"):
            raise ValueError(f"damaged: the CRC-32 of its {name} chunk at byte {pos} does not "
                             "match its data")  # fmt: skip
        if kind == b"IHDR":
            need = _png_pixel_bytes(bytes(view[pos + 8 : end - 4]))
        elif kind == b"IDAT":
            try:
                inflated += len(pixels.decompress(view[pos + 8 : end - 4]))
            except zlib.error as err:
                raise ValueError(f"damaged: its compressed pixels do not inflate ({err})") from err
        elif kind == b"IEND":
            break
        pos = end
    if inflated < need:
        raise ValueError(f"truncated or damaged: its pixels inflate to {inflated:,} bytes; "
                         f"its size and colour type need {need:,}")  # fmt: skip


# Adam7's seven passes: the first column and row, and the steps between columns and rows.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))  # fmt: skip
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # per pixel, by colour type (grey ... RGBA)


def _png_pixel_bytes(ihdr: bytes) -> int:
    # The inflated size of a PNG's pixels: each row of each pass, its filter byte first. A
    # header libpng refuses (no such colour type) needs 0 here: libpng says what is wrong.
    if len(ihdr) != 13 or ihdr[9] not in _PNG_SAMPLES:
        return 0
    width, height = int.from_bytes(ihdr[:4], "big"), int.from_bytes(ihdr[4:8], "big")
    bits = ihdr[8] * _PNG_SAMPLES[ihdr[9]]
    total = 0
    for x0, y0, dx, dy in _ADAM7 if ihdr[12] else ((0, 0, 1, 1),):
        columns, rows = -(-max(width - x0, 0) // dx), -(-max(height - y0, 0) // dy)
        total += rows * (1 + (columns * bits + 7) // 8) if columns else 0
    return total


# The signatures of BMP, TIFF (both byte orders) and netpbm files (PBM, PGM, PPM; plain or
# binary): formats PIL reads and the decoders do not.
_PIL_ONLY = (b"BM", b"II*\x00", b"MM\x00*", *(b"P%d" % n for n in range(1, 7)))


def _decode_pil(data: bytearray, channels: int) -> Tensor:
    # By PIL, as torchvision's ImageFolder reads every file: upright by the EXIF orientation,
    # grey by convert("L"), the first page of a TIFF; 16-bit grey as uint16, which
    # load_image scales as a 16-bit PNG's. PIL reads a 16-bit PGM (any maxval above 255) in
    # mode I, scaled to 0..65535.
    with Image.open(io.BytesIO(data)) as file:
        image = ImageOps.exif_transpose(file)
        deep = image.mode.startswith("I;16") or (image.mode == "I" and file.format == "PPM")
        if image.mode in ("I", "F") and not deep:  # 32-bit integers or floats: no scale
            raise ValueError(f"PIL mode {image.mode} (32-bit pixels); expected 8 or 16 bits")
        if deep:  # as uint16, in native byte order
            return torch.from_numpy(np.asarray(image).astype(np.uint16))[None]
        image = image.convert("L" if channels == 1 else "RGB")
        pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
        return pixels.view(image.height, image.width, channels).permute(2, 0, 1)


def _luma(rgb: Tensor) -> Tensor:
    # PIL's grey (ITU-R 601-2 luma in 16-bit fixed point, weights summing to 2**16, rounded),
    # so a grey image stays as it is; rgb_to_grayscale's 0.2989 + 0.587 + 0.114 truncates it
    # to one level less. In float32, exactly: every sum stays below 2**24.
    x = rgb.float()
    y = x[0].mul(19595.0).add_(x[1], alpha=38470.0).add_(x[2], alpha=7471.0).add_(32768.0)
    return y.div_(65536.0).floor_().to(torch.uint8)[None]


def _exif_transpose(image: Tensor, orientation: int) -> Tensor:
    """Turn ``(..., H, W)`` upright as an EXIF orientation (1 to 8) says, as PIL does.

    The same flips and transpositions as PIL's ``ImageOps.exif_transpose``: 2 to 4 flip,
    5 to 8 swap height and width, then flip; 1 and other values leave the image as it is.

    Example:
        >>> import torch
        >>> x = torch.arange(6).view(1, 2, 3)  # 2 rows, 3 columns
        >>> _exif_transpose(x, 6).tolist()  # 6: rotate 90 degrees clockwise
        [[[3, 0], [4, 1], [5, 2]]]
    """
    if orientation in (5, 6, 7, 8):
        image = image.transpose(-2, -1)
    flips = {2: (-1,), 3: (-2, -1), 4: (-2,), 6: (-1,), 7: (-2, -1), 8: (-2,)}
    return image.flip(flips[orientation]) if orientation in flips else image


def _check_pixels(data: bytearray) -> None:
    # PIL's decompression-bomb limit, Image.MAX_IMAGE_PIXELS (None: none), for every format
    # and decoder: the size comes from the header, read by PIL without decoding, so a 400 KB
    # PNG of 20000x20000 pixels is refused before any decoder allocates them. Refused over
    # the limit itself (PIL only warns below twice it). A header PIL cannot read is left to
    # the decoder to report.
    limit = Image.MAX_IMAGE_PIXELS
    if limit is None:
        return
    try:
        with warnings.catch_warnings():  # the limit is refused below, not warned about
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as file:
                width, height = file.size
        if max(width, 1) * max(height, 1) <= limit:
            return
        size = f"{width}x{height} = {width * height:,} pixels"
    except Image.DecompressionBombError as err:  # over twice the limit: PIL's own error
        found = re.search(r"\((\d+) pixels\)", str(err))
        size = f"{int(found[1]):,} pixels" if found else f"over twice {limit:,} pixels"
    except Exception:  # not an image PIL reads: the decoder says why
        return
    raise ValueError(
        f"{size}, more than PIL.Image.MAX_IMAGE_PIXELS = {limit:,} allows (a decompression "
        "bomb?); to read a genuine image this large, raise PIL.Image.MAX_IMAGE_PIXELS (None: "
        "no limit) before reading it"
    )


def _first_webp_frame(data: bytearray) -> Tensor:
    # An animated WebP's first frame (the whole canvas) as RGB, as an animated GIF's first
    # frame is taken, upright by its EXIF orientation: by PIL, as neither decoder reads them.
    with Image.open(io.BytesIO(data)) as file:
        frame = file.convert("RGB")
        pixels = torch.frombuffer(bytearray(frame.tobytes()), dtype=torch.uint8)
        image = pixels.view(frame.height, frame.width, 3).permute(2, 0, 1)
        return _exif_transpose(image, file.getexif().get(0x0112, 1))
