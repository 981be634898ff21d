"""Datasets of the benchmarks: where their files are and which datamodule reads them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from classic_cnns.data.base import InMemoryDataModule
from classic_cnns.registry import model_info

__all__ = ["DATASETS", "DataUnavailable", "image_size", "make_datamodule", "resolve_data_dir"]

# name -> what it is, for the report.
DATASETS: dict[str, str] = {
    "digits": "scikit-learn digits (1,797 8x8 images, 20% test), offline",
    "mnist10k": "MNIST-10k: first 8,000 t10k images train, last 2,000 test",
    "mnist": "MNIST (60,000 train, 10,000 test)",
    "fashion_mnist": "Fashion-MNIST (60,000 train, 10,000 test)",
    "cifar10": "CIFAR-10 (50,000 train, 10,000 test)",
}


def image_size(model: str, size: int | None = None, max_size: int | None = None) -> tuple[int, int]:
    """``(H, W)`` a benchmark feeds ``model``: ``size`` (square), else the model's own input
    size; shrunk to ``max_size`` (smoke runs) but never below the model's minimum.

    Example:
        >>> from classic_cnns.bench._data import image_size
        >>> image_size("resnet18"), image_size("resnet18", 96), image_size("lenet5", max_size=16)
        ((224, 224), (96, 96), (32, 32))
    """
    info = model_info(model)
    h, w = (size, size) if size else info.input_size[1:]
    if max_size:
        h, w = min(h, max_size), min(w, max_size)
    return max(h, info.min_input_size[0]), max(w, info.min_input_size[1])


class DataUnavailable(RuntimeError):
    """A dataset's files or datamodule are not here; the benchmark is skipped with a note."""


def resolve_data_dir(data_dir: Path | None) -> Path:
    """The data folder: ``data_dir``, else ``$CLASSIC_CNNS_DATA``, else the first of
    ``./data`` and ``../shared/data`` that holds an ``MNIST`` folder (else ``./data``).

    Example:
        >>> from pathlib import Path
        >>> from classic_cnns.bench._data import resolve_data_dir
        >>> resolve_data_dir(Path("/tmp"))
        PosixPath('/tmp')
    """
    if data_dir is not None:
        return Path(data_dir)
    if os.environ.get("CLASSIC_CNNS_DATA"):
        return Path(os.environ["CLASSIC_CNNS_DATA"])
    for candidate in (Path("data"), Path("..") / "shared" / "data"):
        if (candidate / "MNIST").is_dir():
            return candidate
    return Path("data")


def make_datamodule(
    dataset: str, data_dir: Path, batch_size: int, seed: int = 0, **kwargs: Any
) -> InMemoryDataModule:
    """A set-up datamodule for ``dataset`` with no validation split (tests use the test split).

    Raises:
        DataUnavailable: when the files (or, for CIFAR-10, the datamodule) are missing.

    Example:
        >>> from pathlib import Path
        >>> from classic_cnns.bench._data import make_datamodule
        >>> dm = make_datamodule("digits", Path("data"), batch_size=64)
        >>> len(dm.train_dataloader().dataset)
        1438
    """
    import classic_cnns

    common: dict[str, Any] = dict(batch_size=batch_size, val_size=0, seed=seed, **kwargs)
    dm: InMemoryDataModule
    if dataset == "digits":
        dm = classic_cnns.Digits(**common)
    elif dataset in ("mnist10k", "mnist"):
        protocol: Literal["standard", "10k"] = "10k" if dataset == "mnist10k" else "standard"
        dm = classic_cnns.MNIST(str(data_dir), download=False, protocol=protocol, **common)
    elif dataset == "fashion_mnist":
        dm = classic_cnns.FashionMNIST(str(data_dir), download=False, **common)
    elif dataset == "cifar10":
        cls = getattr(classic_cnns, "CIFAR10", None)
        if cls is None:
            raise DataUnavailable("classic_cnns has no CIFAR10 datamodule yet")
        try:
            dm = cls(str(data_dir), download=False, **common)
        except TypeError as err:
            raise DataUnavailable(f"CIFAR10 datamodule takes other arguments: {err}") from err
    else:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(DATASETS)}")
    try:
        dm.setup("fit")
    except FileNotFoundError as err:
        first_line = str(err).splitlines()[0]
        raise DataUnavailable(f"{dataset} data not found under {data_dir}: {first_line}") from err
    return dm
