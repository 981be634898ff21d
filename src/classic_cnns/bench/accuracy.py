"""Accuracy recipes and the optimizer comparison: seeded ``Trainer.fit`` runs with curves.

A :class:`Recipe` fixes a model, a dataset and every training setting. A run trains the
package's LightningModule with ``Trainer.fit`` on the package's datamodule (the product
path) and, after every epoch, stops the clock and measures test accuracy, which gives
the accuracy-vs-time curve (training time only: evaluations are excluded) and, where the
run is given one (``time_to_accuracy``, e.g. from ``benchmarks/targets.json``), the time to
reach a test accuracy (at epoch granularity, so an upper bound). The final evaluation also
gives the confusion matrix.

Recipes on datasets whose files are absent (full MNIST, Fashion-MNIST, CIFAR-10 here) are
skipped with a note; their published reference errors stand beside the results.

Example:
    >>> from classic_cnns.bench.accuracy import RECIPES
    >>> RECIPES["lenet5/mnist"].reference_error_pct
    0.95
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass
from typing import Any

import lightning as L
import torch
from torch import Tensor

from classic_cnns.bench._common import (
    TRAINER_PRECISION,
    BenchConfig,
    Results,
    Task,
    backend_unavailable,
    matches,
    precision_unsupported,
    seeded,
    synchronize,
    to_memory_format,
)
from classic_cnns.bench._data import DataUnavailable, image_size, make_datamodule, resolve_data_dir
from classic_cnns.data.base import InMemoryDataModule
from classic_cnns.hub import create_model
from classic_cnns.registry import model_info
from classic_cnns.task import ImageClassifier

__all__ = [
    "D2L_BOOK",
    "OPTIMIZER_SETTINGS",
    "RECIPES",
    "Recipe",
    "fit_with_curve",
    "pick_backend",
    "plan",
]


@dataclass(frozen=True)
class Recipe:
    """A fixed, seeded training recipe for one model on one dataset.

    Attributes:
        model: Registered model name.
        dataset: A dataset of :data:`classic_cnns.bench._data.DATASETS`.
        optimizer: ``"sgd"`` (Nesterov when ``momentum > 0``), ``"adam"``, ``"adamw"``,
            ``"rmsprop"``.
        lr: Peak learning rate.
        momentum: Momentum (SGD and RMSprop).
        weight_decay: Weight decay on weights (not biases or norm scales).
        scheduler: The task's ``scheduler`` (``"onecycle"``, ``"cosine"``, ``"step"``, ``"none"``).
        batch_size: Images per batch.
        epochs: Training epochs.
        image_size: Input H = W, reached as ``fit`` does: padding by up to 4 px a side (28
            to 32), else bilinear resizing; ``None``: the model's own input size, padded.
        precision: ``"fp32"``, ``"bf16-mixed"`` or ``"fp16-mixed"`` (the Trainer's).
        memory_format: ``"contiguous"`` or ``"channels_last"`` (weights and activations).
        reference_error_pct: Published test error in percent, for comparison.
        reference: Where that figure comes from.
        variant: Tells apart recipes of one model on one dataset; ends the name.

    Example:
        >>> from classic_cnns.bench.accuracy import Recipe
        >>> Recipe("lenet5", "digits", epochs=2).name
        'lenet5/digits'
        >>> Recipe("lenet5", "fashion_mnist", variant="d2l").name
        'lenet5/fashion_mnist/d2l'
    """

    model: str
    dataset: str
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    scheduler: str = "onecycle"
    batch_size: int = 128
    epochs: int = 10
    image_size: int | None = None
    precision: str = "fp32"
    memory_format: str = "contiguous"
    reference_error_pct: float | None = None
    reference: str | None = None
    variant: str | None = None

    @property
    def name(self) -> str:
        """``"model/dataset"`` or ``"model/dataset/variant"``, the name ``--recipes``
        wildcards match."""
        base = f"{self.model}/{self.dataset}"
        return f"{base}/{self.variant}" if self.variant else base


_HE = "He et al. 2015, Deep Residual Learning, Table 6 (with augmentation)"
# LeNet-5 is bound by steps, not arithmetic: large batches reach a given accuracy in the
# fewest steps (on the CPU, 1 thread: 89.1% after 8 of 10 epochs at batch 1024, 472 steps;
# batch 256 needed 7 epochs, 1,645 steps).
_FASHION_LENET: dict[str, Any] = dict(
    optimizer="adamw", lr=1e-2, weight_decay=5e-4, batch_size=1024, epochs=10
)
_FASHION_RESNET: dict[str, Any] = dict(
    optimizer="adamw",
    lr=3e-3,
    weight_decay=5e-4,
    batch_size=256,
    epochs=10,
    image_size=96,
    precision="bf16-mixed",
    memory_format="channels_last",
)
# The Fashion-MNIST chapters of Dive into Deep Learning (d2l-zh 2.0 and d2l-en 0.17, PyTorch):
# model -> (image size, batch, lr, the book's printed test accuracy in d2l-zh, in d2l-en), all
# trained 10 epochs with plain SGD (no momentum, no weight decay, constant lr). LeNet takes
# 28 px padded to 32 (the book pads in its first convolution). The book's NiN and DenseNet
# take 224 and 96 px into a stride-4 stem; the package's are the CIFAR designs without one,
# so they take 32 px, which gives maps of the same scale.
D2L_BOOK: dict[str, tuple[int, int, float, float, float]] = {
    "lenet5": (32, 256, 0.9, 0.782, 0.809),
    "alexnet": (224, 128, 0.01, 0.881, 0.884),
    "vgg11": (224, 128, 0.05, 0.917, 0.916),
    "nin": (32, 128, 0.1, 0.842, 0.867),
    "googlenet": (96, 128, 0.1, 0.889, 0.889),
    "lenet5_bn": (32, 256, 1.0, 0.816, 0.838),  # with nn.BatchNorm2d (the concise version)
    "resnet18": (96, 256, 0.05, 0.907, 0.865),
    "densenet_bc_100": (32, 256, 0.1, 0.747, 0.882),
}


def _d2l_recipes(model: str) -> tuple[Recipe, Recipe]:
    """The book's setting (``variant="d2l"``) and the model's own recipe, as ``fit`` uses it
    by default (``variant="default"``), on Fashion-MNIST."""
    size, batch, lr, zh, en = D2L_BOOK[model]
    book = Recipe(
        model,
        "fashion_mnist",
        optimizer="sgd",
        lr=lr,
        momentum=0.0,
        weight_decay=0.0,
        scheduler="none",
        batch_size=batch,
        image_size=size,
        reference_error_pct=round(100 * (1 - zh), 1),
        reference=f"Dive into Deep Learning: test acc {zh} (d2l-zh 2.0), {en} (d2l-en 0.17)",
        variant="d2l",
    )
    r = model_info(model).recipe
    default = Recipe(
        model,
        "fashion_mnist",
        optimizer=r.optimizer,
        lr=r.lr,
        momentum=r.momentum,
        weight_decay=r.weight_decay,
        scheduler=r.scheduler,
        batch_size=r.batch_size,
        epochs=r.epochs,
        image_size=r.small_image_size,
        variant="default",
    )
    return book, default


_CIFAR_RESNET: dict[str, Any] = dict(
    dataset="cifar10", lr=0.1, momentum=0.9, weight_decay=1e-4, scheduler="step", epochs=164
)
RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("lenet5", "digits", lr=0.1, batch_size=32, epochs=15),
        Recipe("lenet5", "mnist10k", lr=0.2, batch_size=128, epochs=8),
        Recipe("lenet5_modern", "mnist10k", lr=0.1, batch_size=128, epochs=8),
        Recipe("lenet5_bn", "mnist10k", lr=0.1, batch_size=128, epochs=8),
        Recipe("resnet20", "mnist10k", lr=0.1, batch_size=128, epochs=8),
        Recipe(
            "lenet5",
            "mnist",
            lr=0.1,
            epochs=20,
            reference_error_pct=0.95,
            reference="LeCun et al. 1998, LeNet-5 without distortions",
        ),
        Recipe("lenet5", "fashion_mnist", **_FASHION_LENET),
        # Dive into Deep Learning's input size and batch (96 px, 256) with the optimizer
        # and schedule `fit` defaults to (AdamW 3e-3, one-cycle), in bf16 + channels_last,
        # the fastest configuration on a GPU.
        Recipe("resnet18", "fashion_mnist", **_FASHION_RESNET),
        Recipe("resnet20", **_CIFAR_RESNET, reference_error_pct=8.75, reference=_HE),
        Recipe("resnet56", **_CIFAR_RESNET, reference_error_pct=6.97, reference=_HE),
        Recipe("resnet110", **_CIFAR_RESNET, reference_error_pct=6.43, reference=_HE),
        Recipe(
            "densenet_bc_100",
            "cifar10",
            lr=0.1,
            momentum=0.9,
            weight_decay=1e-4,
            scheduler="step",
            batch_size=64,
            epochs=300,
            reference_error_pct=4.51,
            reference="Huang et al. 2017, DenseNet-BC (k=12), C10+ (with augmentation)",
        ),
        *(r for model in D2L_BOOK for r in _d2l_recipes(model)),
    )
}

# The optimizer comparison: label -> task arguments. A constant learning rate each, so
# the curves compare the update rules rather than schedules.
OPTIMIZER_SETTINGS: dict[str, dict[str, Any]] = {
    "SGD": dict(optimizer="sgd", lr=0.05, momentum=0.0, weight_decay=5e-4),
    "SGD+momentum": dict(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4),
    "RMSprop": dict(optimizer="rmsprop", lr=1e-3, momentum=0.0, weight_decay=5e-4),
    "Adam": dict(optimizer="adam", lr=1e-3, momentum=0.0, weight_decay=5e-4),
    "AdamW": dict(optimizer="adamw", lr=1e-3, momentum=0.0, weight_decay=5e-2),
}


def pick_backend(cfg: BenchConfig) -> str:
    """The backend training runs use: CUDA, then MPS, then the CPU, among those selected.

    Example:
        >>> from classic_cnns.bench import BenchConfig
        >>> from classic_cnns.bench.accuracy import pick_backend
        >>> pick_backend(BenchConfig(backends=["cpu"]))
        'cpu'
    """
    for backend in ("cuda", "mps", "cpu"):
        if backend in cfg.backends and backend_unavailable(backend) is None:
            return backend
    return "cpu"


def _evaluate(
    model: ImageClassifier, dm: InMemoryDataModule, backend: str, limit: int | None = None
) -> tuple[float, Tensor, Tensor]:
    """Test accuracy, predictions and labels of ``model.net`` on the test split (its first
    ``limit`` batches, if given)."""
    net = model.net
    was_training = net.training
    net.eval()
    preds, labels = [], []
    with torch.inference_mode():
        for images, y in itertools.islice(dm.test_dataloader(), limit):
            x, y = dm.on_after_batch_transfer((images.to(backend), y.to(backend)), 0)
            preds.append(net(x).argmax(dim=1).cpu())
            labels.append(y.cpu())
    net.train(was_training)
    pred, label = torch.cat(preds), torch.cat(labels)
    return float((pred == label).float().mean()), pred, label


class CurveCallback(L.Callback):
    """Per-step losses, and test accuracy after each epoch with the clock stopped.

    Attributes:
        points: One dict per evaluation: ``epoch``, ``step``, ``train_s``, ``test_acc``,
            ``train_loss`` (mean of the epoch); the first is before any training.
        losses: ``(step, loss)`` of every training step.
        train_s: Training time so far, evaluations excluded.

    Args:
        dm: The datamodule whose test split is evaluated.
        backend: Where the model runs.
        limit: Evaluate only the first ``limit`` test batches (smoke runs).

    Example:
        >>> from classic_cnns import Digits
        >>> from classic_cnns.bench.accuracy import CurveCallback
        >>> cb = CurveCallback(Digits(), "cpu")
        >>> cb.train_s
        0.0
    """

    def __init__(self, dm: InMemoryDataModule, backend: str, limit: int | None = None) -> None:
        self.dm = dm
        self.backend = backend
        self.limit = limit
        self.points: list[dict[str, Any]] = []
        self.losses: list[tuple[int, float]] = []
        self.train_s = 0.0
        self._start = 0.0
        self._epoch_losses: list[Tensor] = []
        self.last: tuple[Tensor, Tensor] | None = None

    def _point(self, trainer: L.Trainer, model: L.LightningModule, epoch: int) -> None:
        assert isinstance(model, ImageClassifier), "the curve is for the package's models"
        acc, pred, label = _evaluate(model, self.dm, self.backend, self.limit)
        self.last = (pred, label)
        losses = [float(v) for v in self._epoch_losses]
        step = trainer.global_step
        self.losses += list(zip(range(step - len(losses) + 1, step + 1), losses, strict=True))
        self._epoch_losses = []
        self.points.append(
            dict(
                epoch=epoch,
                step=step,
                train_s=self.train_s,
                test_acc=acc,
                train_loss=sum(losses) / len(losses) if losses else None,
            )
        )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._point(trainer, pl_module, 0)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        synchronize(self.backend)
        self._start = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        # Keep the tensor: converting to float each step would synchronise a GPU.
        self._epoch_losses.append(outputs["loss"].detach())

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        synchronize(self.backend)
        self.train_s += time.perf_counter() - self._start
        self._point(trainer, pl_module, trainer.current_epoch + 1)


def fit_with_curve(
    name: str,
    dm: InMemoryDataModule,
    epochs: int,
    backend: str,
    seed: int,
    limit_train_batches: int | None = None,
    precision: str = "fp32",
    memory_format: str = "contiguous",
    **hparams: Any,
) -> tuple[CurveCallback, float]:
    """Seeded ``Trainer.fit`` of a registered model; return its curve and the fit wall time.

    ``limit_train_batches`` caps the test batches of each evaluation alike (smoke runs).

    Example:
        >>> from classic_cnns import Digits
        >>> from classic_cnns.bench.accuracy import fit_with_curve
        >>> dm = Digits(image_size=32, val_size=0)
        >>> curve, _ = fit_with_curve("lenet5", dm, 1, "cpu", 0, limit_train_batches=2)
        >>> [p["epoch"] for p in curve.points]
        [0, 1]
    """
    with seeded(seed):
        model = create_model(
            name, num_classes=dm.num_classes, in_channels=dm.in_channels, **hparams
        )
        model.net.to(memory_format=to_memory_format(memory_format))
        curve = CurveCallback(dm, backend, limit_train_batches)
        trainer = L.Trainer(
            max_epochs=epochs,
            accelerator=backend,
            devices=1,
            precision=TRAINER_PRECISION[precision],  # type: ignore[arg-type]
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_train_batches=limit_train_batches if limit_train_batches else 1.0,
            callbacks=[curve],
        )
        start = time.perf_counter()
        trainer.fit(model, datamodule=dm)
        return curve, time.perf_counter() - start


def _datamodule(cfg: BenchConfig, recipe: Recipe) -> InMemoryDataModule:
    return make_datamodule(
        recipe.dataset,
        resolve_data_dir(cfg.data_dir),
        batch_size=recipe.batch_size,
        seed=cfg.seed,
        image_size=image_size(recipe.model, recipe.image_size, cfg.max_image_size),
        resize="pad" if recipe.image_size is None else None,
    )


def _confusion(pred: Tensor, label: Tensor, num_classes: int) -> list[list[int]]:
    counts = torch.bincount(label * num_classes + pred, minlength=num_classes**2)
    return counts.view(num_classes, num_classes).tolist()  # type: ignore[no-any-return]


def run_recipe(cfg: BenchConfig, results: Results, recipe: Recipe) -> None:
    """Train one recipe and add its row, curve and confusion matrix to ``results``."""
    backend = pick_backend(cfg)
    # Every recipe field is a column of the row, under the same name (the variant ends `run`).
    settings = asdict(recipe)
    del settings["variant"]
    target = cfg.time_to_accuracy.get(recipe.name)
    size = image_size(recipe.model, recipe.image_size, cfg.max_image_size)
    settings.update(target_acc=target, image_size=size[0])
    reason = precision_unsupported(backend, recipe.precision)
    if reason is not None:
        results.note(f"accuracy {recipe.name}: skipped, {reason}")
        results.add("accuracy", backend, status="skipped", note=reason, run=recipe.name, **settings)
        return
    try:
        dm = _datamodule(cfg, recipe)
    except DataUnavailable as err:
        results.note(f"accuracy {recipe.name}: skipped, {err}")
        results.add(
            "accuracy", backend, status="skipped", note=str(err), run=recipe.name, **settings
        )
        return
    hparams = dict(
        optimizer=recipe.optimizer,
        lr=recipe.lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        scheduler=recipe.scheduler,
    )
    epochs = min(recipe.epochs, cfg.max_epochs or recipe.epochs)
    settings["epochs"] = epochs
    curve, wall = fit_with_curve(
        recipe.model,
        dm,
        epochs,
        backend,
        cfg.seed,
        cfg.limit_train_batches,
        recipe.precision,
        recipe.memory_format,
        **hparams,
    )
    final = curve.points[-1]["test_acc"]
    reached = [p["train_s"] for p in curve.points if target is not None and p["test_acc"] >= target]
    results.curves.setdefault("accuracy", {})[recipe.name] = curve.points
    assert curve.last is not None
    pred, label = curve.last
    results.confusion[recipe.name] = dict(
        dataset=recipe.dataset,
        model=recipe.model,
        accuracy=final,
        classes=list(dm.class_names),
        matrix=_confusion(pred, label, dm.num_classes),
    )
    results.add(
        "accuracy",
        backend,
        run=recipe.name,
        **settings,
        train_images=len(dm.train_dataloader().dataset),  # type: ignore[arg-type]
        test_images=int(label.shape[0]),
        train_s=curve.train_s,
        fit_wall_s=wall,
        final_test_acc=final,
        final_test_error_pct=100 * (1 - final),
        best_test_acc=max(p["test_acc"] for p in curve.points),
        time_to_target_s=reached[0] if reached else None,
    )


def run_optimizers(cfg: BenchConfig, results: Results, label: str) -> None:
    """Train the optimizer-comparison recipe with one optimizer; add its row and curves."""
    backend = pick_backend(cfg)
    recipe = RECIPES.get(cfg.optimizer_recipe)
    if recipe is None:
        raise ValueError(
            f"unknown optimizer recipe {cfg.optimizer_recipe!r}; expected one of {sorted(RECIPES)}"
        )
    settings = OPTIMIZER_SETTINGS[label]
    base: dict[str, Any] = dict(
        run=f"{recipe.name}/{label}",
        label=label,
        model=recipe.model,
        dataset=recipe.dataset,
        batch_size=recipe.batch_size,
        epochs=cfg.optimizer_epochs,
        **settings,
    )
    try:
        dm = _datamodule(cfg, recipe)
    except DataUnavailable as err:
        results.note(f"optimizers {recipe.name}: skipped, {err}")
        results.add("optimizers", backend, status="skipped", note=str(err), **base)
        return
    curve, _ = fit_with_curve(
        recipe.model,
        dm,
        cfg.optimizer_epochs,
        backend,
        cfg.seed,
        cfg.limit_train_batches,
        scheduler="none",
        **settings,
    )
    curves = results.curves.setdefault("optimizer_loss", {})
    curves[label] = [dict(step=s, loss=v) for s, v in curve.losses]
    results.curves.setdefault("optimizer_eval", {})[label] = curve.points
    last = curve.points[-1]
    results.add(
        "optimizers",
        backend,
        **base,
        steps=last["step"],
        final_train_loss=last["train_loss"],
        final_test_acc=last["test_acc"],
        train_s=curve.train_s,
    )


def plan(cfg: BenchConfig) -> list[Task]:
    """Accuracy tasks (recipes matching ``cfg.recipes``) and/or optimizer tasks."""
    tasks: list[Task] = []
    backend = pick_backend(cfg)
    if "accuracy" in cfg.modes:
        selected = [r for name, r in RECIPES.items() if matches(name, cfg.recipes)]
        if not selected:
            raise ValueError(f"no recipe matches {cfg.recipes}; recipes: {sorted(RECIPES)}")
        for recipe in selected:

            def task(results: Results, recipe: Recipe = recipe) -> None:
                run_recipe(cfg, results, recipe)

            fields = dict(run=recipe.name, model=recipe.model, dataset=recipe.dataset)
            tasks.append(Task(f"accuracy {recipe.name}", task, "accuracy", backend, fields))
    if "optimizers" in cfg.modes:
        for label in OPTIMIZER_SETTINGS:

            def opt_task(results: Results, label: str = label) -> None:
                run_optimizers(cfg, results, label)

            tasks.append(
                Task(
                    f"optimizers {cfg.optimizer_recipe} {label}",
                    opt_task,
                    "optimizers",
                    backend,
                    dict(label=label),
                )
            )
    return tasks
