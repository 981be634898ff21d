"""Data pipeline: the package's in-memory datamodule vs a torchvision-style per-sample loader.

Both read the same real IDX data and yield the same normalised float batches of padded
32x32 images:

* ``classic_cnns``: the datamodule's loader (one tensor index per batch) and its batch
  transform (float, pad, normalise for the whole batch at once);
* ``torchvision``: a ``Dataset`` that, as ``torchvision.datasets.MNIST`` does, turns each
  image into a PIL image and runs ``Pad``, ``ToTensor`` and ``Normalize`` on it, batched by
  the ``DataLoader``'s default collate. (torchvision's ``MNIST`` class itself refuses a
  folder without the training files, so the dataset is built on the same tensors.)

One repeat is one shuffled epoch of the training split on the CPU, with ``num_workers=0``
for both, and the two pipelines alternate. Before timing, the first batch of each
(unshuffled) is compared, so the speed-up is between pipelines that produce the same data.

Example:
    >>> from classic_cnns.bench import BenchConfig
    >>> from classic_cnns.bench.pipeline import plan
    >>> [t.label for t in plan(BenchConfig.quick())]
    ['pipeline mnist10k']
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from classic_cnns.bench._common import BenchConfig, Results, Task, seeded, spread
from classic_cnns.bench._data import DataUnavailable, make_datamodule, resolve_data_dir
from classic_cnns.data.base import InMemoryDataModule

__all__ = ["PILDataset", "plan", "run", "torchvision_loader"]

_DESCRIPTIONS = {
    "classic_cnns": "uint8 tensor in memory, batch index, batch transform (pad, normalise)",
    "torchvision": "per-sample PIL image -> Pad(2) -> ToTensor -> Normalize, default collate",
}


class PILDataset(Dataset[tuple[Tensor, int]]):
    """A torchvision-style dataset: one PIL image per item through per-sample transforms.

    Args:
        images: uint8 ``(N, 1, H, W)`` images.
        labels: int64 ``(N,)`` labels.
        transform: Applied to each PIL image (e.g. ``Compose([Pad(2), ToTensor(), ...])``).

    Example:
        >>> import torch
        >>> from torchvision import transforms
        >>> from classic_cnns.bench.pipeline import PILDataset
        >>> ds = PILDataset(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), torch.tensor([3, 4]),
        ...                 transforms.ToTensor())
        >>> ds[1][0].shape, ds[1][1]
        (torch.Size([1, 28, 28]), 4)
    """

    def __init__(self, images: Tensor, labels: Tensor, transform: Any) -> None:
        self.images = images
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        from PIL import Image

        # What torchvision.datasets.MNIST.__getitem__ does: a grey PIL image per sample.
        image = Image.fromarray(self.images[index, 0].numpy())
        return self.transform(image), int(self.labels[index])


def torchvision_loader(
    dm: InMemoryDataModule, shuffle: bool = True, num_workers: int = 0
) -> DataLoader[Any]:
    """The per-sample loader over ``dm``'s training split, padded to ``dm.dims``.

    Example:
        >>> from classic_cnns import MNIST
        >>> from classic_cnns.bench.pipeline import torchvision_loader
        >>> dm = MNIST("../shared/data", download=False, protocol="10k", val_size=0,
        ...            image_size=32)
        >>> dm.setup("fit")  # doctest: +SKIP
        >>> next(iter(torchvision_loader(dm)))[0].shape  # doctest: +SKIP
        torch.Size([128, 1, 32, 32])
    """
    from torchvision import transforms

    dataset: Any = dm.train_dataloader().dataset  # the datamodule's TensorBatches
    images, labels = dataset.images, dataset.labels
    _, h, w = dm.dims
    dh, dw = h - images.shape[-2], w - images.shape[-1]
    if dh < 0 or dw < 0:
        raise ValueError("the torchvision pipeline pads; the target size must not be smaller")
    transform = transforms.Compose(
        [
            # (left, top, right, bottom), as the datamodule splits the padding.
            transforms.Pad((dw // 2, dh // 2, dw - dw // 2, dh - dh // 2)),
            transforms.ToTensor(),
            transforms.Normalize(dm.mean, dm.std),
        ]
    )
    return DataLoader(
        PILDataset(images, labels, transform),
        batch_size=dm.batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
    )


def _classic_epoch(dm: InMemoryDataModule, limit: int | None) -> int:
    n = 0
    for i, batch in enumerate(dm.train_dataloader()):
        if i == limit:
            break
        images, _ = dm.on_after_batch_transfer(batch, 0)
        n += images.shape[0]
    return n


def _torchvision_epoch(loader: DataLoader[Any], limit: int | None) -> int:
    n = 0
    for i, (images, _) in enumerate(loader):
        if i == limit:
            break
        n += images.shape[0]
    return n


def _first_batches_match(dm: InMemoryDataModule) -> bool:
    dataset: Any = dm.train_dataloader().dataset
    ours = dm.on_after_batch_transfer(dataset.__getitems__(range(dm.batch_size)), 0)
    theirs = next(iter(torchvision_loader(dm, shuffle=False)))
    return bool(torch.allclose(ours[0], theirs[0], atol=1e-5) and torch.equal(ours[1], theirs[1]))


def run(cfg: BenchConfig, results: Results) -> None:
    """Time one epoch of each pipeline ``pipeline_repeats`` times, interleaved; add two rows.

    Example:
        >>> from classic_cnns.bench import BenchConfig, Results
        >>> from classic_cnns.bench.pipeline import run
        >>> cfg = BenchConfig(pipeline_repeats=1)
        >>> results = Results(cfg)
        >>> run(cfg, results)  # doctest: +SKIP
        >>> results.rows["pipeline"][1]["speedup"] > 1  # doctest: +SKIP
        True
    """
    dataset = cfg.pipeline_dataset
    try:
        if dataset not in ("mnist10k", "mnist", "fashion_mnist"):
            raise DataUnavailable(f"the pipeline comparison pads 28x28 images; got {dataset!r}")
        dm = make_datamodule(
            dataset, resolve_data_dir(cfg.data_dir), batch_size=128, seed=cfg.seed, image_size=32
        )
    except DataUnavailable as err:
        results.note(f"pipeline {dataset}: skipped, {err}")
        for pipeline in ("classic_cnns", "torchvision"):
            results.add(
                "pipeline",
                "cpu",
                status="skipped",
                note=str(err),
                dataset=dataset,
                pipeline=pipeline,
            )
        return
    match = _first_batches_match(dm)
    loader = torchvision_loader(dm)
    seconds: dict[str, list[float]] = {"classic_cnns": [], "torchvision": []}
    images = 0
    with seeded(cfg.seed):
        for _ in range(cfg.pipeline_repeats):
            start = time.perf_counter()
            images = _classic_epoch(dm, cfg.limit_train_batches)
            seconds["classic_cnns"].append(time.perf_counter() - start)
            start = time.perf_counter()
            _torchvision_epoch(loader, cfg.limit_train_batches)
            seconds["torchvision"].append(time.perf_counter() - start)
    ours = spread("epoch_s", seconds["classic_cnns"])["epoch_s_median"]
    for pipeline, times in seconds.items():
        stats = spread("epoch_s", times)
        median = stats["epoch_s_median"]
        results.add(
            "pipeline",
            "cpu",
            dataset=dataset,
            pipeline=pipeline,
            description=_DESCRIPTIONS[pipeline],
            images=images,
            batch_size=dm.batch_size,
            num_workers=0,
            repeats=cfg.pipeline_repeats,
            **stats,
            ips=images / median if median else None,
            outputs_match=match,
            speedup=(median / ours) if pipeline == "torchvision" and median and ours else None,
        )


def plan(cfg: BenchConfig) -> list[Task]:
    """The pipeline task (CPU: the data pipeline runs on the host)."""

    def task(results: Results) -> None:
        run(cfg, results)

    fields = dict(dataset=cfg.pipeline_dataset)
    return [Task(f"pipeline {cfg.pipeline_dataset}", task, "pipeline", "cpu", fields)]
