"""How images become a network's input: the one owner of statistics, size and resize policy.

:class:`Preprocessing` turns uint8 images ``(N, C, h, w)`` into the normalised float batch a
network takes: to float on the 0-1 scale, to the image size (:func:`to_size`: zero padding
around the image, or resizing to cover the size and cropping the centre), then normalised
with the mean and standard deviation. The datamodules run it on every batch, on the device
(``on_after_batch_transfer``); ``ImageFolder`` sizes its files with :func:`to_size` when it
decodes them; the task records :meth:`Preprocessing.config` in its checkpoints, and
``predict_folder`` rebuilds the same :class:`Preprocessing` from it
(:meth:`Preprocessing.from_config`), so new images are prepared as the training images were.
:func:`random_crop_flip` is the fine-tuning datamodules' on-device augmentation.

Which mean and std, in this order (:func:`normalization`): the ones given; else the ones the
model's weights expect (its ``data_config``: recorded when it was trained, or set by
``create_model(..., pretrained=True)``); else the dataset's own.

:class:`ModelSpec` is what a datamodule reads from the model being trained
(``trainer.lightning_module``) to follow it: its ``recipe`` (batch size, image size for
small datasets), its ``input_size`` and its ``data_config``.

Example:
    >>> import torch
    >>> from classic_cnns.data.preprocessing import Preprocessing
    >>> prep = Preprocessing(mean=(0.5,), std=(0.25,), image_size=(32, 32), resize="pad")
    >>> x = prep(torch.full((2, 1, 28, 28), 255, dtype=torch.uint8))
    >>> x.shape, x[0, 0, 0, 0].item(), x[0, 0, 16, 16].item()
    (torch.Size([2, 1, 32, 32]), -2.0, 2.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from classic_cnns._checks import is_int, is_number
from classic_cnns.recipes import Recipe

__all__ = [
    "ModelSpec",
    "Preprocessing",
    "ResizeMode",
    "check_stats",
    "config_for_channels",
    "normalization",
    "random_crop_flip",
    "to_size",
]

ResizeMode = Literal["pad", "resize"]
"""How images reach another size (:func:`to_size`): ``"pad"`` centres them in a zero border
(28 px MNIST digits to LeNet-5's 32, as LeCun did), ``"resize"`` resizes to cover and
crops the centre.

Example:
    >>> import torch
    >>> mode: ResizeMode = "pad"
    >>> to_size(torch.ones(1, 1, 28, 28), (32, 32), mode)[0, 0, 0, :3]
    tensor([0., 0., 0.])
"""
Stats = tuple[tuple[float, ...], tuple[float, ...]]


@runtime_checkable
class ModelSpec(Protocol):
    """What a datamodule reads from the model it feeds, to follow it.

    ``ImageClassifier`` has all three; a LightningModule of your own is followed when it has
    them too (otherwise the datamodule keeps its own defaults).

    Attributes:
        recipe: The model's training recipe: the datamodule's ``batch_size=None`` takes its
            batch size, and ``image_size=None`` its ``small_image_size`` for images of at
            most 32 pixels.
        input_size: ``(C, H, W)``: the image size otherwise.
        data_config: What the model's weights expect (``mean``, ``std``), for the
            fine-tuning datamodules' normalisation.

    Example:
        >>> from classic_cnns import LeNet5
        >>> from classic_cnns.data.preprocessing import ModelSpec
        >>> isinstance(LeNet5(), ModelSpec)
        True
    """

    @property
    def recipe(self) -> Recipe: ...

    @property
    def input_size(self) -> tuple[int, int, int]: ...

    @property
    def data_config(self) -> Mapping[str, Any]: ...


def check_stats(
    mean: Sequence[float] | None, std: Sequence[float] | None, channels: int
) -> Stats | None:
    """Given statistics, checked, as floats: both or neither, one value per channel, on the
    0-1 scale of the images (mean in ``[0, 1]``, std in ``(0, 1]``).

    Returns ``None`` when neither is given.

    Example:
        >>> check_stats([0.5], [0.25], channels=1)
        ((0.5,), (0.25,))
        >>> check_stats(None, None, channels=3) is None
        True
    """
    if (mean is None) != (std is None):
        raise ValueError(f"give mean and std together; got mean={mean!r} and std={std!r}")
    if mean is None or std is None:
        return None
    if any(isinstance(v, int | float | str) for v in (mean, std)):
        raise ValueError(
            f"mean and std are sequences of {channels} value(s) each, one per input channel "
            f"(mean=[0.5] for grey images); got mean={mean!r} and std={std!r}"
        )
    if len(mean) != channels or len(std) != channels:
        raise ValueError(
            f"mean and std need {channels} value(s) each, one per input channel; got "
            f"{len(mean)} and {len(std)}"
        )
    if not all(is_number(v) for v in (*mean, *std)):
        raise ValueError(f"mean and std must be numbers; got mean={mean!r} and std={std!r}")
    if min(std) <= 0:
        raise ValueError(f"std must be positive; got {tuple(std)}")
    # Statistics of 0-255 pixels would pass silently and normalise the 0-1 batches to
    # nearly constant values.
    if not all(0 <= v <= 1 for v in mean) or max(std) > 1:
        raise ValueError(
            "mean and std are on the 0-1 scale of the images (mean in [0, 1], std in (0, 1]); "
            f"got mean={tuple(mean)} and std={tuple(std)}: for statistics of 0-255 pixels, "
            "divide them by 255"
        )
    return tuple(map(float, mean)), tuple(map(float, std))


def normalization(
    channels: int,
    *,
    given: Stats | None = None,
    recorded: Mapping[str, Any] | None = None,
) -> Stats | None:
    """The mean and std to normalise with: ``given``, else ``recorded``'s, else ``None``.

    ``recorded`` is a model's ``data_config``. For another number of channels (a grey model
    whose first convolution was adapted to RGB) its statistics are averaged over the
    channels and repeated, as the first convolution's weights are adapted
    (:func:`~classic_cnns.weights.adapt_input_conv`) and as torchvision's ImageNet statistics
    are for other channels. ``None`` (nothing recorded) leaves the choice to the caller: a
    datamodule then takes its dataset's own statistics.

    Example:
        >>> normalization(1, recorded={"mean": [0.1307], "std": [0.3081]})
        ((0.1307,), (0.3081,))
        >>> normalization(3, recorded={"mean": [0.1307], "std": [0.3081]})
        ((0.1307, 0.1307, 0.1307), (0.3081, 0.3081, 0.3081))
    """
    if given is not None:
        return given
    mean, std = (recorded or {}).get("mean"), (recorded or {}).get("std")
    if mean is None or std is None or not 0 < len(mean) == len(std) or min(std) <= 0:
        return None
    if len(mean) != channels:
        mean = [round(sum(mean) / len(mean), 4)] * channels
        std = [round(sum(std) / len(std), 4)] * channels
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def config_for_channels(config: Mapping[str, Any], channels: int) -> dict[str, Any]:
    """A copy of a model's data configuration with its mean and std for ``channels``.

    What a model whose first convolution was adapted to other channels records (as ``fit``
    would): the statistics averaged and repeated, by :func:`normalization`; the rest as it is.

    Example:
        >>> config_for_channels({"mean": [0.1307], "std": [0.3081], "resize": "pad"}, 3)
        {'mean': [0.1307, 0.1307, 0.1307], 'std': [0.3081, 0.3081, 0.3081], 'resize': 'pad'}
    """
    config = dict(config)
    if stats := normalization(channels, recorded=config):
        config["mean"], config["std"] = list(stats[0]), list(stats[1])
    return config


def to_size(
    images: Tensor, size: tuple[int, int], mode: ResizeMode, crop_pct: float = 1.0
) -> Tensor:
    """Bring images ``(..., C, h, w)`` (uint8 or float) to ``size`` ``(H, W)``.

    ``"pad"`` adds zeros around the image (LeCun padded 28x28 MNIST to 32x32 so), where it
    fits; otherwise, and for ``"resize"``, the image is resized (bilinear, antialiased) to
    cover ``size / crop_pct`` with its aspect ratio kept and the centre ``size`` is cropped:
    torchvision's ``Resize`` + ``CenterCrop`` (ImageNet evaluation: ``crop_pct`` 224 / 256).
    A square image reaching a square size with ``crop_pct=1`` is simply resized.

    Example:
        >>> import torch
        >>> to_size(torch.ones(1, 28, 28), (32, 32), "pad")[0, 1:3, 1:3].tolist()
        [[0.0, 0.0], [0.0, 1.0]]
        >>> to_size(torch.ones(1, 40, 20), (32, 32), "pad").shape
        torch.Size([1, 32, 32])
    """
    h, w = images.shape[-2:]
    height, width = size
    if (h, w) == (height, width) and crop_pct == 1:
        return images
    if mode == "pad" and h <= height and w <= width:
        dh, dw = height - h, width - w
        return F.pad(images, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
    # The side that binds reaches size / crop_pct; the other follows the aspect ratio,
    # rounded down as torchvision's Resize(int) rounds it.
    if height / h >= width / w:
        cover_h = round(height / crop_pct)
        cover = [cover_h, max(width, int(cover_h * w / h))]
    else:
        cover_w = round(width / crop_pct)
        cover = [max(height, int(cover_w * h / w)), cover_w]
    return TF.center_crop(TF.resize(images, cover, antialias=True), [height, width])


def _is_size(size: object) -> bool:
    # A positive int, or a pair (H, W) of them; bools and strings are not sizes.
    sizes = size if isinstance(size, tuple | list) else (size, size)
    ints = [v for v in sizes if is_int(v, 1)]
    return len(sizes) == len(ints) == 2


_STATS_CHUNK = 2**24  # pixels of one channel that _channel_stats copies at a time


def _channel_stats(images: Tensor) -> Stats:
    # Per-channel mean and std of uint8 images (N, C, H, W) on the 0-1 scale, rounded to 4
    # places (std at least 1e-3), exactly, from each channel's histogram of the 256 values:
    # the only copies are chunks of one channel of about 16 MB (a float copy of the images
    # would take 4 or 8 times their memory). Where the images are (a GPU's may be).
    n, channels = images.shape[:2]
    step = max(1, _STATS_CHUNK // max(1, images[0, 0].numel()))  # images per chunk
    counts = torch.zeros(channels, 256, dtype=torch.int64, device=images.device)
    for start in range(0, n, step):
        for c in range(channels):
            counts[c] += torch.bincount(images[start : start + step, c].reshape(-1), minlength=256)
    values = torch.arange(256, dtype=torch.float64) / 255
    counts64 = counts.cpu().double()
    total = counts64.sum(dim=1)
    mean = (counts64 @ values) / total
    std = ((counts64 @ values.square()) / total - mean.square()).clamp_min(1e-12).sqrt()
    return (
        tuple(round(float(v), 4) for v in mean),
        tuple(max(round(float(v), 4), 1e-3) for v in std),
    )


def random_crop_flip(images: Tensor, padding: int, flip: bool = True) -> Tensor:
    """Random crop after zero padding, and random horizontal flip, one draw per image.

    The batch stays on its device and in its dtype (uint8 works); the random numbers come
    from torch's generator on that device, which ``seed_everything`` seeds.

    Args:
        images: ``(N, C, H, W)`` batch.
        padding: Zeros added on each side before cropping back to ``H x W`` (the CIFAR
            recipe pads 4 pixels); 0 skips the crop.
        flip: Mirror each image left-right with probability 1/2.

    Example:
        >>> import torch
        >>> x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4).repeat(8, 3, 1, 1)
        >>> random_crop_flip(x, padding=1).shape
        torch.Size([8, 3, 4, 4])
    """
    if images.ndim != 4:
        raise ValueError(f"expected a batch (N, C, H, W); got shape {tuple(images.shape)}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0; got {padding}")
    n, c, h, w = images.shape
    device = images.device
    if padding > 0:
        padded = F.pad(images, (padding,) * 4)
        top = torch.randint(0, 2 * padding + 1, (n, 1), device=device)
        left = torch.randint(0, 2 * padding + 1, (n, 1), device=device)
        rows = (top + torch.arange(h, device=device)).view(n, 1, h, 1)
        cols = (left + torch.arange(w, device=device)).view(n, 1, 1, w)
        # One gather for the whole batch: each image has its own crop window.
        batch = torch.arange(n, device=device).view(n, 1, 1, 1)
        channel = torch.arange(c, device=device).view(1, c, 1, 1)
        images = padded[batch, channel, rows, cols]
    if flip:
        mirrored = torch.rand(n, device=device) < 0.5
        images = torch.where(mirrored.view(n, 1, 1, 1), images.flip(-1), images)
    return images


@dataclass(frozen=True)
class Preprocessing:
    """uint8 images to the network's input: float, sized (:func:`to_size`), normalised.

    Attributes:
        mean: Per-channel mean, on the 0-1 scale.
        std: Per-channel standard deviation.
        image_size: Output ``(H, W)``.
        resize: ``"pad"`` or ``"resize"`` (see :func:`to_size`).
        crop_pct: Share of the resized image the centre crop keeps (see :func:`to_size`);
            below 1 for ImageNet weights' evaluation transform (0.875: 256 px, then 224;
            0.966: 232 px for ResNet-50's), which ``predict_folder`` applies. The
            datamodules train at the size they decode or pad to, without it; ``ImageFolder``
            evaluates a model that records a crop on files it cropped as it decoded them, so
            its batches need no further crop and its ``preprocessing`` keeps 1.
        resize_dtype: What a resize works on: ``"float"`` (the in-memory datamodules resize
            the float batch) or ``"uint8"`` (``ImageFolder`` resizes each file as it decodes
            it, and stores uint8). ``predict_folder`` follows the recorded one, so that new
            images get the pixels the training images had (the two differ by up to about
            one grey level).

    Example:
        >>> import torch
        >>> prep = Preprocessing((0.0,), (1.0,), (4, 4), "resize")
        >>> prep(torch.zeros(3, 1, 2, 2, dtype=torch.uint8)).shape
        torch.Size([3, 1, 4, 4])
        >>> Preprocessing.from_config(prep.config(), channels=1) == prep
        True
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: tuple[int, int]
    resize: ResizeMode = "resize"
    crop_pct: float = 1.0
    resize_dtype: Literal["float", "uint8"] = "float"
    # The statistics as tensors, one pair per device, made once (a copy per batch would
    # make the host wait for the device).
    _tensors: dict[torch.device, tuple[Tensor, Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.mean, str) and len(self.mean) == 0:
            raise ValueError(f"mean and std need a value per channel; got mean={self.mean!r}")
        mean, std = check_stats(self.mean, self.std, len(self.mean)) or ((), ())
        object.__setattr__(self, "mean", mean)  # frozen: tuples of floats, whatever was given
        object.__setattr__(self, "std", std)
        if not isinstance(self.image_size, tuple | list) or not _is_size(self.image_size):
            raise ValueError(f"image_size must be (H, W) of positive ints; got {self.image_size!r}")
        object.__setattr__(self, "image_size", tuple(self.image_size))
        if self.resize not in ("pad", "resize"):
            raise ValueError(f"resize must be 'pad' or 'resize'; got {self.resize!r}")
        if self.resize_dtype not in ("float", "uint8"):
            raise ValueError(f"resize_dtype must be 'float' or 'uint8'; got {self.resize_dtype!r}")
        if not is_number(self.crop_pct) or not 0 < self.crop_pct <= 1:
            raise ValueError(f"crop_pct must be a number in (0, 1]; got {self.crop_pct!r}")
        if self.crop_pct < 1 and self.resize == "pad":
            raise ValueError(
                f"crop_pct={self.crop_pct!r} crops a resized image; expected resize='resize' "
                "with it, got resize='pad'"
            )

    @property
    def in_channels(self) -> int:
        """Channels of the images (one mean per channel).

        Example:
            >>> Preprocessing((0.5,) * 3, (0.2,) * 3, (8, 8)).in_channels
            3
        """
        return len(self.mean)

    def fit(self, images: Tensor) -> Tensor:
        """Images ``(..., C, h, w)`` at the image size, still in their dtype (:func:`to_size`).

        Example:
            >>> import torch
            >>> Preprocessing((0.5,), (0.2,), (8, 8), "pad").fit(torch.zeros(1, 6, 6)).shape
            torch.Size([1, 8, 8])
        """
        return to_size(images, self.image_size, self.resize, self.crop_pct)

    def __call__(self, images: Tensor) -> Tensor:
        """A uint8 batch ``(N, C, h, w)`` as the normalised float batch ``(N, C, H, W)``,
        sized in the :attr:`resize_dtype`."""
        self._check(images)
        if self.resize_dtype == "uint8":
            return self._normalize(self._float(self.fit(images)))
        return self._normalize(self.fit(self._float(images)))

    def normalize(self, images: Tensor) -> Tensor:
        """A uint8 batch already at the image size (:meth:`fit`), as normalised floats.

        Example:
            >>> import torch
            >>> prep = Preprocessing((0.5,), (0.5,), (2, 2))
            >>> prep.normalize(torch.full((1, 1, 2, 2), 255, dtype=torch.uint8)).flatten().tolist()
            [1.0, 1.0, 1.0, 1.0]
        """
        self._check(images)
        return self._normalize(self._float(images))

    def _check(self, images: Tensor) -> None:
        if images.dtype != torch.uint8:
            raise TypeError(f"expected uint8 images; got {images.dtype}")
        if images.ndim != 4 or images.shape[1] != self.in_channels:
            raise ValueError(
                f"expected a batch of images (N, {self.in_channels}, h, w), one mean per "
                f"channel; got shape {tuple(images.shape)}"
            )

    @staticmethod
    def _float(images: Tensor) -> Tensor:
        return images.float().div_(255)

    def _normalize(self, x: Tensor) -> Tensor:
        mean, std = self._on(x.device)
        return x.sub_(mean).div_(std)

    def _on(self, device: torch.device) -> tuple[Tensor, Tensor]:
        if device not in self._tensors:
            shape = (1, -1, 1, 1)
            self._tensors[device] = (
                torch.tensor(self.mean, device=device).view(shape),
                torch.tensor(self.std, device=device).view(shape),
            )
        return self._tensors[device]

    def config(self) -> dict[str, Any]:
        """The preprocessing as plain values, as checkpoints record it (``data_config``).

        Example:
            >>> Preprocessing((0.5,), (0.2,), (8, 8), "pad").config()
            {'mean': [0.5], 'std': [0.2], 'image_size': [8, 8], 'resize': 'pad'}
        """
        extra: dict[str, Any] = {} if self.crop_pct == 1 else {"crop_pct": self.crop_pct}
        if self.resize_dtype != "float":  # recorded where it is not the default
            extra["resize_dtype"] = self.resize_dtype
        return {
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "image_size": [int(v) for v in self.image_size],
            "resize": self.resize,
            **extra,
        }

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        channels: int,
        *,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        image_size: Sequence[int] | None = None,
    ) -> Preprocessing:
        """The preprocessing a model's ``data_config`` records; ``mean``/``std`` override it.

        Args:
            config: A ``data_config`` (``mean``, ``std``, ``image_size``, ``resize``,
                ``crop_pct``, ``resize_dtype``).
            channels: The model's input channels.
            mean: Normalisation mean, instead of the recorded one.
            std: Normalisation std, with ``mean``.
            image_size: ``(H, W)`` when the config records none.

        Raises:
            ValueError: when neither the config nor the arguments give the statistics or
                the size.

        Example:
            >>> config = {"image_size": [224, 224], "crop_pct": 0.875}
            >>> Preprocessing.from_config(config, 1, mean=[0.5], std=[0.2])
            Preprocessing(mean=(0.5,), std=(0.2,), image_size=(224, 224), resize='resize',
                          crop_pct=0.875, resize_dtype='float')
        """
        stats = normalization(channels, given=check_stats(mean, std, channels), recorded=config)
        if stats is None:
            raise ValueError(
                "the model does not record the normalisation it was trained with (it was not "
                "trained with a classic_cnns datamodule); pass mean and std "
                f"({channels} value(s) each)"
            )
        size = config.get("image_size") or image_size
        if size is None:
            raise ValueError("the model does not record its image size; pass image_size (H, W)")
        h, w = (int(s) for s in size)
        resize, crop_pct = config.get("resize", "resize"), float(config.get("crop_pct", 1.0))
        dtype = config.get("resize_dtype", "float")
        return cls(*stats, image_size=(h, w), resize=resize, crop_pct=crop_pct, resize_dtype=dtype)
