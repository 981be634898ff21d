"""One owner of preprocessing: training batches, ImageFolder's files and predict_folder agree.

``classic_cnns.data.preprocessing`` decides the statistics, the size and the resize policy;
these tests hold the three users of it to the same numbers on real images (scikit-learn's
digits), and the datamodules to the ``ModelSpec`` protocol they read models through.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from classic_cnns import Digits, LeNet5, model_info
from classic_cnns.data import InMemoryDataModule, preprocessing
from classic_cnns.data.folder import load_image
from classic_cnns.data.mnist import read_idx
from classic_cnns.data.preprocessing import (
    ModelSpec,
    Preprocessing,
    _channel_stats,
    normalization,
    random_crop_flip,
    to_size,
)
from classic_cnns.recipes import Recipe
from conftest import write_png

pytestmark = pytest.mark.usefixtures("one_thread")


def _digits(n: int = 16) -> torch.Tensor:
    images = torch.tensor(load_digits().images[:n] * 255 / 16).round().to(torch.uint8)
    return images[:, None]  # (n, 1, 8, 8)


def _connect(dm: L.LightningDataModule, model: L.LightningModule) -> None:
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(model)
    dm.trainer = trainer


def test_padding_centres_the_image_and_resizing_keeps_the_aspect_ratio() -> None:
    x = _digits(2)
    padded = to_size(x, (12, 14), "pad")
    assert padded.shape == (2, 1, 12, 14) and torch.equal(padded[..., 2:10, 3:11], x)
    assert padded.sum() == x.sum()  # only zeros were added
    # A 16x8 image already covers 8x8 at scale 1: only its centre is cropped.
    tall = torch.arange(16 * 8, dtype=torch.float32).view(1, 1, 16, 8)
    assert torch.equal(to_size(tall, (8, 8), "resize"), tall[..., 4:12, :])
    # Where padding cannot reach the size (a larger image), the image is resized instead.
    assert to_size(x.float(), (4, 4), "pad").shape == (2, 1, 4, 4)


def test_a_square_batch_is_resized_as_bilinear_interpolation_does() -> None:
    x = _digits(4).float() / 255
    for size in ((32, 32), (96, 96)):
        expected = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        torch.testing.assert_close(to_size(x, size, "resize"), expected, atol=1e-6, rtol=0)


def test_resizing_is_torchvisions_resize_then_centre_crop(mnist_raw: Path) -> None:
    # Real digits side by side (28 x 28k) and stacked (28k x 28): torchvision rounds the long
    # side down. crop_pct < 1 is the ImageNet weights' evaluation (232 or 256 px, then 224).
    from torchvision.transforms import v2

    digits = read_idx(mnist_raw / "t10k-images-idx3-ubyte.gz")[:7]
    for image in (torch.cat(list(digits[:k]), dim=1)[None] for k in (2, 3, 5, 7)):
        for shape in (image, image.transpose(1, 2)):
            for short, crop in ((32, 32), (232, 224), (256, 224)):
                expected = v2.Compose([v2.Resize(short), v2.CenterCrop(crop)])(shape)
                assert torch.equal(to_size(shape, (crop, crop), "resize", crop / short), expected)
    # Aspect ratios that are not whole numbers (the digits above are), where rounding the long
    # side to nearest would differ; and an odd padding, whose spare pixel torchvision puts
    # bottom and right.
    for h, w in ((28, 39), (300, 451), (451, 300)):
        image = digits[0, :1, :1].expand(3, h, w) + torch.arange(w, dtype=torch.uint8)
        for short, crop in ((32, 32), (256, 224)):
            expected = v2.Compose([v2.Resize(short), v2.CenterCrop(crop)])(image)
            assert torch.equal(to_size(image, (crop, crop), "resize", crop / short), expected)
    odd = digits[0, 1:, 1:][None]  # 27 x 27
    assert torch.equal(to_size(odd, (32, 32), "pad"), v2.CenterCrop(32)(odd))
    with pytest.raises(ValueError, match=r"crop_pct must be a number in \(0, 1\]; got 1.5"):
        Preprocessing((0.5,), (0.2,), (8, 8), crop_pct=1.5)
    with pytest.raises(ValueError, match="expected resize='resize' with it, got resize='pad'"):
        Preprocessing((0.5,), (0.2,), (8, 8), "pad", crop_pct=0.875)
    prep = Preprocessing((0.5,), (0.2,), (224, 224), crop_pct=0.875)
    assert Preprocessing.from_config(prep.config(), channels=1) == prep


def test_training_batches_and_predictions_are_prepared_the_same_way() -> None:
    for image_size, mode in ((32, "resize"), (12, "pad")):
        dm = Digits(image_size=image_size)
        dm.setup("fit")
        assert dm.preprocessing is not None and dm.preprocessing.resize == mode
        # What a model trained on it records, rebuilt as predict_folder rebuilds it.
        rebuilt = Preprocessing.from_config(dm.data_config, channels=1)
        assert rebuilt == dm.preprocessing and rebuilt.resize_dtype == "float"
        batch = _digits()
        one_by_one = torch.stack([rebuilt(image[None])[0] for image in batch])  # as predicted
        assert torch.equal(one_by_one, dm.transform(batch))
    # Sizing the uint8 image instead (as ImageFolder decodes files) gives other pixels:
    # what the recorded resize_dtype is there for.
    resized = Preprocessing(rebuilt.mean, rebuilt.std, (32, 32), "resize")
    uint8 = Preprocessing(rebuilt.mean, rebuilt.std, (32, 32), "resize", resize_dtype="uint8")
    assert not torch.equal(resized(batch), uint8(batch))
    assert "resize_dtype" not in resized.config() and uint8.config()["resize_dtype"] == "uint8"
    assert Preprocessing.from_config(uint8.config(), channels=1) == uint8
    with pytest.raises(ValueError, match="resize_dtype must be 'float' or 'uint8'; got 'int8'"):
        Preprocessing((0.5,), (0.2,), (8, 8), resize_dtype="int8")  # type: ignore[arg-type]


def test_predict_folder_gives_the_logits_of_the_training_pipeline(tmp_path: Path) -> None:
    # Models trained on an in-memory datamodule (resized float batches) and on ImageFolder
    # (files resized as uint8 when decoded): predict_folder on the same images as PNG files
    # gives each model exactly the input its own datamodule gives it.
    from classic_cnns import ImageFolder
    from classic_cnns.predict import predict_folder

    images = _digits(40)
    for i, image in enumerate(images):
        (tmp_path / "files" / str(i % 2)).mkdir(parents=True, exist_ok=True)
        write_png(image, str(tmp_path / "files" / str(i % 2) / f"{i:02d}.png"))
    for dm in (Digits(image_size=32), ImageFolder(tmp_path / "files", image_size=32, channels=1)):
        L.seed_everything(0)
        model = LeNet5(num_classes=10 if isinstance(dm, Digits) else 2)
        trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
        trainer.fit(model, dm)  # records the datamodule's preprocessing
        recorded = model.data_config.get("resize_dtype", "float")
        assert recorded == ("float" if isinstance(dm, Digits) else "uint8")
        rows = predict_folder(model.eval(), tmp_path / "files", recursive=True)
        files = sorted((tmp_path / "files").rglob("*.png"))
        stored = dm.preprocessing  # what the training batches went through
        batch = images if isinstance(dm, Digits) else torch.stack(
            [load_image(f, 1, 32) for f in files])  # fmt: skip
        order = [int(f.stem) for f in files] if isinstance(dm, Digits) else range(len(files))
        with torch.no_grad():
            expected = model(stored(batch[list(order)])).softmax(-1).max(-1).values
        got = torch.tensor([r["probability"] for r in rows])
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


def test_image_folder_and_predict_folder_size_a_file_alike(tmp_path: Path) -> None:
    path = tmp_path / "digit.png"
    write_png(torch.nn.functional.pad(_digits(1)[0], (0, 4)), str(path))  # 8x12: not square
    prep = Preprocessing((0.5,), (0.25,), (16, 16), "resize")
    decoded_at_size = load_image(path, 1, 16)  # ImageFolder decodes at the size
    sized_after = prep.fit(load_image(path, 1, None))  # predict_folder sizes after decoding
    assert torch.equal(decoded_at_size, sized_after)


def test_the_statistics_come_given_then_recorded_then_from_the_dataset() -> None:
    recorded = {"mean": [0.1307], "std": [0.3081]}
    given = ((0.5,), (0.25,))
    assert normalization(1, given=given, recorded=recorded) == given
    assert normalization(1, recorded=recorded) == ((0.1307,), (0.3081,))
    # Another channel count (a grey model adapted to RGB): averaged and repeated, as the
    # first convolution's weights are adapted and as ImageNet weights are for grey inputs.
    assert normalization(3, recorded=recorded) == ((0.1307,) * 3, (0.3081,) * 3)
    rgb = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert normalization(1, recorded=rgb) == model_info("resnet18").weights.normalization(1)
    assert normalization(3, recorded={"mean": [], "std": []}) is None
    assert normalization(1, recorded={"mean": [0.5], "std": [0.0]}) is None
    # One channel's std of 0 is enough to refuse the recorded statistics (dividing by it).
    assert normalization(2, recorded={"mean": [0.5, 0.5], "std": [0.2, 0.0]}) is None
    with pytest.raises(ValueError, match=r"pass mean and std \(1 value\(s\) each\)"):
        Preprocessing.from_config({"image_size": [32, 32]}, channels=1)


class _OwnModel(L.LightningModule):
    """A LightningModule of a user's own that says what the datamodule needs."""

    recipe = Recipe(batch_size=24, small_image_size=20)
    input_size = (1, 64, 64)

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.data_config: dict[str, Any] = {}


class _Square(InMemoryDataModule):
    """Blank side x side images, 10 to train (1 of them to validate) and 2 to test."""

    num_classes = 10
    class_names = tuple("0123456789")
    mean, std = (0.5,), (0.25,)

    def __init__(self, side: int) -> None:
        super().__init__(val_size=1)
        self.side = side

    def load_splits(self) -> tuple[torch.Tensor, ...]:
        def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
            images = torch.zeros(n, 1, self.side, self.side, dtype=torch.uint8)
            return images, torch.zeros(n, dtype=torch.long)

        return (*split(10), *split(2))


def test_datamodules_follow_any_model_that_has_the_model_spec() -> None:
    assert isinstance(LeNet5(), ModelSpec) and isinstance(_OwnModel(), ModelSpec)
    dm = Digits()
    _connect(dm, _OwnModel())
    dm.setup("fit")
    assert dm.batch_size == 24 and dm.dims == (1, 20, 20)  # its recipe: 8 px data is small
    plain = Digits()
    _connect(plain, L.LightningModule())
    plain.setup("fit")
    assert plain.batch_size == Digits.default_batch_size and plain.dims == (1, 8, 8)
    lenet = Digits()
    _connect(lenet, LeNet5())
    lenet.setup("fit")
    assert lenet.batch_size == model_info("lenet5").recipe.batch_size
    assert lenet.dims == (1, 32, 32)
    # A network with the small-image stem takes small images at 32 px, not at the size of
    # its family's recipe (ResNet-18: d2l's 96 px, for the ImageNet stem).
    from classic_cnns import ResNet

    for options, size in (({}, 96), ({"small_input": True}, 32)):
        dm = Digits()
        _connect(dm, ResNet("resnet18", in_channels=1, num_classes=10, **options))
        dm.setup("fit")
        assert dm.dims == (1, size, size), options
    # The recipe's small size is for the 28-32 pixel datasets (the README): 32 px images are
    # small, 33 px ones get the model's own input size (ResNet-18: 224).
    for side, size in ((28, 96), (32, 96), (33, 224)):
        dm = _Square(side)
        _connect(dm, ResNet("resnet18", in_channels=1, num_classes=10))
        dm.setup("fit")
        assert dm.dims == (1, size, size), side


def test_a_grey_checkpoint_adapted_to_rgb_predicts_grey_rgb_files_as_before(
    tmp_path: Path,
) -> None:
    # load_model(..., in_channels=3) adapts the first convolution so that a grey image in
    # three channels gives the grey model's response; the recorded one-channel statistics
    # must then be repeated too (predict_folder used to refuse: "not trained with a
    # classic_cnns datamodule").
    from classic_cnns import load_model
    from classic_cnns.predict import predict_folder

    torch.manual_seed(0)
    model = LeNet5(num_classes=10)
    model.data_config = {"mean": [0.3053], "std": [0.3759], "image_size": [32, 32]}
    trainer = L.Trainer(logger=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "grey.ckpt")
    digits = load_digits()
    for name, channels in (("grey", 1), ("rgb", 3)):
        (tmp_path / name).mkdir()
        for i in range(4):
            pixels = torch.tensor(digits.images[i] * 255 / 16).round().to(torch.uint8)
            write_png(pixels[None].repeat(channels, 1, 1), str(tmp_path / name / f"{i}.png"))
    grey = predict_folder(load_model(tmp_path / "grey.ckpt"), tmp_path / "grey")
    rgb = predict_folder(load_model(tmp_path / "grey.ckpt", in_channels=3), tmp_path / "rgb")
    assert [row["class"] for row in rgb] == [row["class"] for row in grey]
    for a, b in zip(grey, rgb, strict=True):
        assert b["probability"] == pytest.approx(a["probability"], abs=1e-5)


def test_channel_statistics_are_numpys_on_real_images_and_across_chunks(
    fashion_raw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each channel's histogram gives the exact mean and std; numpy computes them in float64
    # from the pixels themselves.
    images = read_idx(fashion_raw / "t10k-images-idx3-ubyte.gz").unsqueeze(1)  # 10,000
    pixels = images.numpy().astype(np.float64) / 255
    expected = ((round(float(pixels.mean()), 4),), (round(float(pixels.std()), 4),))
    assert _channel_stats(images) == expected == ((0.2868,), (0.3524,))
    # In chunks of 3 images (the last one shorter), RGB, with a constant channel.
    monkeypatch.setattr(preprocessing, "_STATS_CHUNK", 3 * 28 * 28 + 5)
    rgb = torch.cat([images[:301], images[301:602].flip(-1), torch.full_like(images[:301], 7)], 1)
    flat = rgb.numpy().astype(np.float64).transpose(1, 0, 2, 3).reshape(3, -1) / 255
    mean, std = _channel_stats(rgb)
    assert mean == tuple(round(float(v), 4) for v in flat.mean(axis=1))
    assert std[:2] == tuple(round(float(v), 4) for v in flat.std(axis=1)[:2])
    assert std[2] == 1e-3  # a constant channel: at least 1e-3, so that normalising divides


def test_random_flip_mirrors_about_half_the_images_and_only_those() -> None:
    # Random pixels: no image is its own mirror. Without the crop (padding 0) each image comes
    # back whole or mirrored left-right, each with probability 1/2: the mirrored count of n is
    # Binomial(n, 1/2), within 4 standard deviations (sqrt(n) / 2) of n / 2 (all but 6e-5 of
    # the time), which also has both kinds occur.
    n = 200
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g)
    assert not (images == images.flip(-1)).flatten(1).all(1).any()
    torch.manual_seed(0)
    out = random_crop_flip(images, padding=0)
    kept = (out == images).flatten(1).all(1)
    mirrored = (out == images.flip(-1)).flatten(1).all(1)
    assert out.dtype == torch.uint8 and (kept ^ mirrored).all()
    assert abs(int(mirrored.sum()) - n / 2) <= 4 * math.sqrt(n) / 2, int(mirrored.sum())
    assert torch.equal(random_crop_flip(images, padding=0, flip=False), images)


def test_random_crop_shifts_each_image_by_minus_to_plus_the_padding_uniformly() -> None:
    # Each pixel of an 8x8 image holds its position (1..64, never the padding's 0). A crop
    # after padding 2 shifts the image by (dy, dx), each uniform on {-2, ..., 2}: out[i, j] is
    # image[i + dy, j + dx], or 0 outside it. Each value's count of n is Binomial(n, 1/5),
    # within 5 standard deviations of n / 5 (all but about 3e-6 of the time per count).
    n, padding, size = 2000, 2, 8
    image = torch.arange(1, size * size + 1, dtype=torch.uint8).view(1, 1, size, size)
    torch.manual_seed(0)
    out = random_crop_flip(image.repeat(n, 2, 1, 1), padding=padding, flip=False)
    assert out.shape == (n, 2, size, size) and torch.equal(out[:, 0], out[:, 1])
    centre = out[:, 0, size // 2, size // 2].long() - 1  # image[4 + dy, 4 + dx], always inside
    dy, dx = centre // size - size // 2, centre % size - size // 2
    padded = F.pad(image[0, 0], (padding,) * 4)
    for k in range(0, n, 97):  # the whole window, for some of the images
        top, left = int(dy[k]) + padding, int(dx[k]) + padding
        assert torch.equal(out[k, 0], padded[top : top + size, left : left + size])
    shifts = list(range(-padding, padding + 1))
    bound = 5 * math.sqrt(n * 0.2 * 0.8)
    for axis in (dy, dx):
        counts = torch.bincount(axis + padding, minlength=len(shifts)).tolist()
        assert len(counts) == len(shifts), sorted(set(axis.tolist()))
        assert all(abs(count - n / 5) <= bound for count in counts), counts


def test_a_size_one_pixel_high_is_a_size() -> None:
    prep = Preprocessing((0.5,), (0.2,), (1, 8))
    assert prep.image_size == (1, 8)
    out = prep(torch.full((2, 1, 1, 8), 255, dtype=torch.uint8))
    torch.testing.assert_close(out, torch.full((2, 1, 1, 8), (1 - 0.5) / 0.2))
    with pytest.raises(ValueError, match=r"image_size must be \(H, W\) of positive ints"):
        Preprocessing((0.5,), (0.2,), (0, 8))


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (((0.5,), (0.2,), 32), {}, r"image_size must be \(H, W\) of positive ints; got 32$"),
        (((0.5,), (0.2,), (32, 32.7)), {}, r"image_size .* got \(32, 32\.7\)$"),
        (((0.5,), (0.2,), ("8", "8")), {}, r"image_size .* got \('8', '8'\)$"),
        (((), (), (8, 8)), {}, r"mean and std need a value per channel; got mean=\(\)$"),
        (((0.5,), (0.2,), (8, 8)), {"crop_pct": "0.9"}, r"crop_pct must be a number in \(0, 1\]"),
    ],
)
def test_preprocessing_refuses_what_it_cannot_use_with_its_own_words(
    args: tuple[Any, ...], kwargs: dict[str, Any], match: str
) -> None:
    # A size of 32.7 was cut to 32 and "8" read as 8; the others failed inside Python.
    with pytest.raises(ValueError, match=match):
        Preprocessing(*args, **kwargs)


def test_preprocessing_names_a_batch_of_the_wrong_shape() -> None:
    # torch said "output with shape [3, 8, 8] doesn't match the broadcast shape [1, 3, 8, 8]".
    prep = Preprocessing((0.5,) * 3, (0.2,) * 3, (8, 8))
    for shape in ((3, 8, 8), (2, 1, 8, 8)):
        images = torch.zeros(shape, dtype=torch.uint8)
        for call in (prep, prep.normalize):
            said = rf"\(N, 3, h, w\), one mean per channel; got shape {re.escape(str(shape))}$"
            with pytest.raises(ValueError, match=rf"expected a batch of images {said}"):
                call(images)


def test_a_malformed_recorded_image_size_is_named_as_the_model_s() -> None:
    # Named "got None" (the datamodule's own image_size, not given) before; [32, 32.9] was cut.
    model = LeNet5()
    for recorded in ([32], [32, 32.9]):
        model.data_config["image_size"] = recorded
        with pytest.raises(
            ValueError, match=r"the model's data_config\['image_size'\] .* got \[32"
        ):
            Digits()._resolve_size((8, 8), model)
    model.data_config["image_size"] = [16, 16]  # as a checkpoint's YAML or JSON holds it
    assert Digits()._resolve_size((8, 8), model)[0] == (16, 16)
