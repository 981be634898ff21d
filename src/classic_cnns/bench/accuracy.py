"""Seeded training recipes: test accuracy, accuracy against training time, time to accuracy.

A :class:`Recipe` fixes a model, a dataset and every training setting; a run is
``Trainer.fit`` of the package's task and datamodule, as ``fit`` does, measuring the test
accuracy after every epoch with the clock stopped: the accuracy-vs-time curve, and the time to
each accuracy in ``time_to_accuracy`` (an upper bound: per epoch). Datasets: ``digits``,
``mnist10k`` (the MNIST test set: 8,000 images train, 2,000 test), ``mnist``,
``fashion_mnist`` and ``cifar10`` in torchvision's layout (absent: the recipe is skipped).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import asdict, dataclass, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch

from classic_cnns._checks import is_number
from classic_cnns._writers import require_matplotlib, save_png
from classic_cnns.bench import core
from classic_cnns.data import CIFAR10, MNIST, Digits, FashionMNIST, InMemoryDataModule
from classic_cnns.hub import create_model
from classic_cnns.plots import plot_confusion_matrix
from classic_cnns.recipes import OptimizerName, SchedulerName
from classic_cnns.registry import model_info

__all__ = ["D2L_BOOK", "DATASETS", "QUICK", "RECIPES", "Curve", "Recipe", "Settings"]
__all__ += ["make_datamodule", "report", "tasks"]

MODE = "accuracy"
DATASETS = ("digits", "mnist10k", "mnist", "fashion_mnist", "cifar10")
"""What :func:`make_datamodule` loads: Digits ships with the package, the others are read in
torchvision's layout under the data folder.

Example:
    >>> from classic_cnns.bench.accuracy import DATASETS
    >>> DATASETS[0]
    'digits'
"""


@dataclass(frozen=True)
class Recipe:
    """A seeded training recipe of one model on one dataset, with the task's optimizer settings
    (``sgd``: Nesterov SGD when ``momentum > 0``) and the model's other ``options`` (such as
    ``weight_init`` and ``width_mult``); ``image_size`` ``None``: the model's own, padded;
    ``variant`` tells recipes of one model on one dataset apart.

    Example:
        >>> from classic_cnns.bench.accuracy import Recipe
        >>> Recipe("lenet5", "fashion_mnist", variant="d2l").name
        'lenet5/fashion_mnist/d2l'
    """

    model: str
    dataset: str
    optimizer: OptimizerName = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    scheduler: SchedulerName = "onecycle"
    batch_size: int = 128
    epochs: int = 10
    image_size: int | None = None
    precision: core.Precision = "fp32"
    channels_last: bool = False
    options: tuple[tuple[str, Any], ...] = ()
    reference_error_pct: float | None = None
    reference: str | None = None
    variant: str | None = None

    @property
    def name(self) -> str:
        """``model/dataset`` or ``model/dataset/variant``: what ``recipes`` wildcards match."""
        return "/".join(p for p in (self.model, self.dataset, self.variant) if p)

    def describe(self) -> str:
        """One line: optimizer, lr, momentum (SGD's and RMSprop's; ``0.95-0.85`` where the
        one-cycle schedule cycles it), weight decay, schedule, batch, epochs, size, precision,
        memory format, options.

        Example:
            >>> from classic_cnns.bench.accuracy import RECIPES
            >>> RECIPES["lenet5/mnist10k/adam"].describe()
            'adam lr 0.001, wd 0.0005, none, batch 128, 5 epochs, own px, fp32, contiguous'
            >>> RECIPES["lenet5/fashion_mnist/d2l"].describe().split(", ")[:4]
            ['sgd lr 0.9', 'momentum 0', 'wd 0', 'none']
        """
        size, fmt = self.image_size or "own", ("contiguous", "channels_last")[self.channels_last]
        m = "0.95-0.85" if self.scheduler == "onecycle" and self.momentum else f"{self.momentum:g}"
        m = f"momentum {m}, " * (self.optimizer in ("sgd", "rmsprop"))  # as OneCycleLR cycles it
        return (f"{self.optimizer} lr {self.lr:g}, {m}wd {self.weight_decay:g}, {self.scheduler}, "
                f"batch {self.batch_size}, {self.epochs} epochs, {size} px, {self.precision}, {fmt}"
                + "".join(f", {k} {v}" for k, v in self.options))  # fmt: skip


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
"""Dive into Deep Learning's Fashion-MNIST chapters: model -> (image size, batch, lr, the test
accuracy printed in d2l-zh 2.0, in d2l-en 0.17); each trains 10 epochs of SGD at a constant
lr from Xavier weights. 32 px: LeNet (28 padded), NiN and DenseNet.

Example:
    >>> from classic_cnns.bench.accuracy import D2L_BOOK
    >>> D2L_BOOK["resnet18"]  # 96 px, batch 256, lr 0.05; 90.7% and 86.5% in the books
    (96, 256, 0.05, 0.907, 0.865)
"""
_D2L_NET = {"vgg11": (("width_mult", 0.25),)}  # the book's VGG-11 is a quarter as wide


def _d2l(model: str) -> tuple[Recipe, Recipe]:
    """The book's setting (variant "d2l") and the model's own recipe as `fit` uses it."""
    size, batch, lr, zh, en = D2L_BOOK[model]
    ref = f"Dive into Deep Learning: test acc {zh} (d2l-zh 2.0), {en} (d2l-en 0.17)"
    book = Recipe(model, "fashion_mnist", "sgd", lr, 0.0, 0.0, "none", batch, 10, size,
                  options=(("weight_init", "xavier"), *_D2L_NET.get(model, ())))  # fmt: skip
    book = replace(book, reference_error_pct=round(100 * (1 - zh), 1), reference=ref, variant="d2l")
    r = model_info(model).recipe
    own = (r.optimizer, r.lr, r.momentum, r.weight_decay, r.scheduler, r.batch_size, r.epochs)
    return book, Recipe(model, "fashion_mnist", *own, r.small_image_size, variant="default")


_HE = "He et al. 2015, Deep Residual Learning, Table 6 (with augmentation)"
_CIFAR: dict[str, Any] = dict(weight_decay=1e-4, scheduler="step", epochs=164)
RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("lenet5", "digits", batch_size=32, epochs=15),
    Recipe("lenet5", "mnist10k", lr=0.2, epochs=8),
    *(Recipe(model, "mnist10k", epochs=8) for model in ("lenet5_modern", "lenet5_bn", "resnet20")),
    # Five update rules, each at a constant learning rate: the optimizer comparison.
    Recipe("lenet5", "mnist10k", "sgd", 0.05, 0.0, 5e-4, "none", epochs=5, variant="sgd"),
    Recipe("lenet5", "mnist10k", "sgd", 0.01, 0.9, 5e-4, "none", epochs=5, variant="nesterov"),
    Recipe("lenet5", "mnist10k", "rmsprop", 1e-3, 0.0, 5e-4, "none", epochs=5, variant="rmsprop"),
    Recipe("lenet5", "mnist10k", "adam", 1e-3, 0.0, 5e-4, "none", epochs=5, variant="adam"),
    Recipe("lenet5", "mnist10k", "adamw", 1e-3, 0.0, 5e-2, "none", epochs=5, variant="adamw"),
    Recipe("lenet5", "mnist", epochs=20, reference_error_pct=0.95,
           reference="LeCun et al. 1998, LeNet-5 without distortions"),
    # Bound by steps: batch 1024 reached 89.1% after 8 of 10 epochs (1 thread), 256 after 7.
    Recipe("lenet5", "fashion_mnist", "adamw", 1e-2, batch_size=1024),
    # d2l's 96 px and batch 256 with `fit`'s AdamW 3e-3 and one-cycle, in the GPU's fastest setup.
    Recipe("resnet18", "fashion_mnist", "adamw", 3e-3, batch_size=256, image_size=96,
           precision="bf16-mixed", channels_last=True),
    *(Recipe(f"resnet{d}", "cifar10", **_CIFAR, reference_error_pct=e, reference=_HE)
      for d, e in ((20, 8.75), (56, 6.97), (110, 6.43))),
    Recipe("densenet_bc_100", "cifar10", **{**_CIFAR, "epochs": 300}, batch_size=64,
           reference_error_pct=4.51,
           reference="Huang et al. 2017, DenseNet-BC (k=12), C10+ (with augmentation)"),
    *itertools.chain.from_iterable(_d2l(model) for model in D2L_BOOK),
)}  # fmt: skip
"""Every accuracy recipe by name (``model/dataset`` or ``model/dataset/variant``): the
README's headline runs (``lenet5/mnist10k`` peaks at lr 0.2, where the README's `fit`
command uses 0.1), the papers' settings, the optimizer comparison and, per d2l chapter, the
book's setting (``/d2l``) and the model's own recipe (``/default``).

Example:
    >>> from classic_cnns.bench.accuracy import RECIPES
    >>> RECIPES["lenet5/mnist10k"].epochs
    8
"""


@dataclass(frozen=True)
class Settings:
    """What the accuracy mode trains (``--accuracy.*`` on the command line).

    Attributes:
        recipes: Shell wildcards over the recipe names (``*/fashion_mnist``).
        time_to_accuracy: Recipe name -> the test accuracy to time, ``{"lenet5/mnist10k": 0.98}``.
        backend: Where to train; ``auto``: CUDA, else MPS, else the CPU; an absent one gives
            skipped rows.
        data_dir: Datasets in torchvision's layout; ``None``: ``$CLASSIC_CNNS_DATA``, else ``data``.
        max_image_size: Shrink larger inputs to this H = W (smoke runs).
        max_epochs: Cap every recipe's epochs (smoke runs).
        limit_train_batches: Cap the training and test batches per epoch (smoke runs).

    Example:
        >>> from classic_cnns.bench.accuracy import QUICK, Settings
        >>> Settings(**QUICK).recipes, Settings(backend="cpu").device()
        (('lenet5/digits', 'lenet5/mnist10k'), 'cpu')
    """

    recipes: tuple[str, ...] = ("*",)
    time_to_accuracy: dict[str, float] | None = None
    backend: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    data_dir: Path | None = None
    max_image_size: int | None = None
    max_epochs: int | None = None
    limit_train_batches: int | None = None

    def __post_init__(self) -> None:
        core.check_minimums(f"{MODE}.", asdict(self), max_image_size=1, max_epochs=1,
                            limit_train_batches=1)  # fmt: skip
        core.check_choices(f"{MODE}.", self, "recipes", "backend")
        for name, target in (self.time_to_accuracy or {}).items():
            if name not in RECIPES:
                raise ValueError(f"time_to_accuracy: no recipe {name!r}; expected one of "
                                 f"{sorted(RECIPES)}")  # fmt: skip
            if not is_number(target) or not 0 < target <= 1:
                raise ValueError(f"time_to_accuracy[{name!r}] must be a test accuracy in (0, 1] "
                                 f"(0.9 for 90%); got {target!r}")  # fmt: skip

    def device(self) -> str:
        """The backend the recipes train on: ``backend``, or for ``auto`` the first present.

        Example:
            >>> from classic_cnns.bench.accuracy import Settings
            >>> Settings(backend="mps").device()  # kept, present or not: its rows are skipped
            'mps'
        """
        if self.backend != "auto":  # an absent one is skipped, as in throughput, never swapped
            return self.backend
        return next((b for b in ("cuda", "mps") if not core.unavailable(b)), "cpu")


QUICK: dict[str, Any] = dict(recipes=("lenet5/digits", "lenet5/mnist10k"))
"""The accuracy settings of ``classic-cnns bench --quick``: two short LeNet-5 recipes.

Example:
    >>> from classic_cnns.bench.accuracy import QUICK
    >>> QUICK["recipes"]
    ('lenet5/digits', 'lenet5/mnist10k')
"""


def make_datamodule(dataset: str, data_dir: Path | str | None, batch_size: int, seed: int = 0,
                    image_size: int | tuple[int, int] | None = None
                    ) -> InMemoryDataModule:  # fmt: skip
    """A set-up datamodule of ``dataset`` without a validation split (the test split tests),
    reaching ``image_size`` as ``fit`` does (padding by up to 4 pixels a side, else resizing);
    ``FileNotFoundError`` when ``data_dir`` lacks the files, ``ValueError`` for a dataset not
    in :data:`DATASETS`. ``seed`` is the datamodule's, the seed of the split: Digits' test
    images (the other datasets come with a test set). The bench keeps it at 0 whatever its
    own seed, so that every seed's accuracy is measured on the same test images.

    Example:
        >>> from classic_cnns.bench.accuracy import make_datamodule
        >>> dm = make_datamodule("digits", None, batch_size=64, image_size=16)
        >>> dm.num_classes, tuple(dm.transform(next(iter(dm.train_dataloader()))[0]).shape)
        (10, (64, 1, 16, 16))
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {list(DATASETS)}; got {dataset!r}")
    common = dict[str, Any](batch_size=batch_size, val_size=0, seed=seed, image_size=image_size)
    common |= dict(protocol="10k") if dataset == "mnist10k" else {}
    by = dict(mnist10k=MNIST, mnist=MNIST, fashion_mnist=FashionMNIST, cifar10=CIFAR10)
    dm = Digits(**common) if dataset == "digits" else by[dataset](data_dir or None, False, **common)
    try:
        dm.setup("fit")
    except FileNotFoundError as err:  # the bench downloads nothing and has no --data flags
        why = str(err).replace("Pass download=True", "Choose another data_dir (the bench "
                               "downloads nothing)")  # fmt: skip
        raise FileNotFoundError(why.replace("--data.protocol 10k", "dataset mnist10k")) from None
    return dm


class Curve(core.Clock):
    """A :class:`~.core.Clock` that measures the test accuracy before training and after every
    epoch with the clock stopped (``points``: epoch, step, training seconds so far, test
    accuracy, the epoch's training loss as the task logs it: the mean over its images), keeping
    the last ``(predictions, labels)``.

    Example:
        >>> from classic_cnns import create_model
        >>> from classic_cnns.bench.accuracy import Curve, make_datamodule
        >>> from classic_cnns.bench.core import trainer
        >>> dm = make_datamodule("digits", None, batch_size=64)
        >>> curve = Curve(dm, "cpu", limit=2)
        >>> model = create_model("lenet5", num_classes=10, in_channels=1)
        >>> trainer("cpu", epochs=2, limit=2, callbacks=[curve]).fit(model, dm)
        >>> [(p["epoch"], p["step"]) for p in curve.points], len(curve.last[0])
        ([(0, 0), (1, 2), (2, 4)], 128)
    """

    def __init__(self, dm: InMemoryDataModule, backend: str, limit: int | None = None) -> None:
        super().__init__(backend)
        self.dm, self.limit, self._losses = dm, limit, []  # type: ignore[var-annotated]
        self.points: list[dict[str, Any]] = []

    def _evaluate(self, trainer: Any, pl_module: Any) -> None:
        pl_module.eval()
        preds, labels = [], []
        # In the run's precision (bf16-mixed: autocast), as Lightning's own test loop runs.
        with torch.inference_mode(), trainer.precision_plugin.forward_context():
            for images, y in itertools.islice(self.dm.test_dataloader(), self.limit):
                preds.append(pl_module(self.dm.transform(images.to(self.backend))).argmax(1).cpu())
                labels.append(y.cpu())
        pl_module.train()
        self.last = pred, label = torch.cat(preds), torch.cat(labels)
        loss = float(torch.cat(self._losses).mean()) if self._losses else None
        acc, self._losses = int((pred == label).sum()) / len(label), []  # 0.89, not 0.8899999
        point = dict(epoch=len(self.points), step=trainer.global_step, train_s=sum(self.epochs))
        self.points.append(point | dict(test_acc=acc, train_loss=loss))

    on_train_start = _evaluate  # and after every epoch

    def on_train_batch_end(self, trainer: Any, module: Any, out: Any, batch: Any, i: int) -> None:
        super().on_train_batch_end(trainer, module, out, batch, i)
        self._losses.append(out["loss"].detach().expand(len(batch[0])))  # per image; no GPU sync

    def epoch_ended(self, trainer: Any, module: Any) -> None:
        """Measure the test accuracy, off the clock.

        Example:
            >>> curve = Curve(make_datamodule("digits", None, 64, image_size=32), "cpu", limit=1)
            >>> curve.epoch_ended(core.trainer("cpu"), create_model("lenet5", in_channels=1))
            >>> [(p["epoch"], p["step"], p["train_s"]) for p in curve.points], len(curve.last[1])
            ([(0, 0, 0)], 64)
        """
        self._evaluate(trainer, module)


def _fields(s: Settings, recipe: Recipe) -> dict[str, Any]:
    """The recipe as run (epochs capped, the image size settled): every row's first columns, a
    skipped one's too."""
    size = core.image_size(recipe.model, recipe.image_size, s.max_image_size)
    row = dict(run=recipe.name, **asdict(recipe), target_acc=(s.time_to_accuracy or {}).get(
        recipe.name))  # fmt: skip
    row.update(epochs=min(recipe.epochs, s.max_epochs or recipe.epochs), image_size=size[0],
               options=" ".join(f"{k}={v}" for k, v in recipe.options))  # fmt: skip
    del row["variant"], row["reference"]  # the variant ends the name; the report cites
    return row


def _run(s: Settings, seed: int, recipe: Recipe, results: core.Results) -> None:
    backend, row = s.device(), _fields(s, recipe)
    target, size = row["target_acc"], core.image_size(recipe.model, row["image_size"])  # settled
    if reason := core.unavailable(backend, recipe.precision):  # before any data is loaded
        results.add(MODE, backend, "skipped", note=reason, **row)
        return
    dm = make_datamodule(recipe.dataset, s.data_dir, recipe.batch_size, image_size=size)  # or skip
    L.seed_everything(seed, verbose=False)  # then `Trainer.fit` of the task, as `fit` does
    keys = ("optimizer", "lr", "momentum", "weight_decay", "scheduler", "channels_last")
    args = dict(recipe.options, num_classes=dm.num_classes, in_channels=dm.in_channels)
    model = create_model(recipe.model, **{k: getattr(recipe, k) for k in keys}, **args)
    curve = Curve(dm, backend, s.limit_train_batches)
    trainer = core.trainer(backend, recipe.precision, row["epochs"], curve.limit, callbacks=[curve])
    wall = core.timed(functools.partial(trainer.fit, model, dm), 1, backend)
    points, (pred, label), n = curve.points, curve.last, dm.num_classes
    accs = [p["test_acc"] for p in points]
    reached = [p["train_s"] for p in points if target is not None and p["test_acc"] >= target]
    matrix = torch.bincount(label * n + pred, minlength=n * n).view(n, n).tolist()
    results.data.setdefault("curves", {})[recipe.name] = points
    results.data.setdefault("confusion", {})[recipe.name] = dict(matrix=matrix,
        classes=list(dm.class_names), dataset=recipe.dataset, accuracy=accs[-1])  # fmt: skip
    train_images = curve.images // row["epochs"]  # per epoch, as trained (limits included)
    row |= dict(train_images=train_images, test_images=len(label), train_s=points[-1]["train_s"])
    row |= dict(fit_wall_s=wall, train_loss=points[-1]["train_loss"], final_test_acc=accs[-1])
    row |= dict(best_test_acc=max(accs), time_to_target_s=reached[0] if reached else None)
    results.add(MODE, backend, **row)


def tasks(s: Settings, seed: int) -> list[core.Task]:
    """One task per recipe that ``s.recipes`` matches (``ValueError`` when none does).

    Example:
        >>> from classic_cnns.bench.accuracy import Settings, tasks
        >>> [t.label for t in tasks(Settings(recipes=("lenet5/fashion_mnist*",)), seed=0)]
        ['accuracy lenet5/fashion_mnist', 'accuracy lenet5/fashion_mnist/d2l',
         'accuracy lenet5/fashion_mnist/default']
    """
    chosen = [r for name, r in RECIPES.items() if any(fnmatchcase(name, p) for p in s.recipes)]
    if not chosen:
        raise ValueError(f"--accuracy.recipes {list(s.recipes)} match none of {sorted(RECIPES)}")
    return [core.Task(f"accuracy {r.name}", functools.partial(_run, s, seed, r), MODE,
                      s.device(), _fields(s, r)) for r in chosen]  # fmt: skip


def report(results: core.Results, out: Path | None) -> list[str]:
    """The report's accuracy section (and its plots in ``out``, if given).

    Example:
        >>> from classic_cnns.bench.accuracy import report
        >>> from classic_cnns.bench.core import Results
        >>> results = Results()
        >>> _ = results.add("accuracy", "cpu", "skipped", note="no data", run="lenet5/mnist")
        >>> row = report(results, None)[6].split(" | ")
        >>> row[0], row[3], row[6]
        ('| lenet5/mnist', 'skipped', '0.95')
        >>> row[1].split(", ")[:5]  # the recipe
        ['sgd lr 0.1', 'momentum 0.95-0.85', 'wd 0.0005', 'onecycle', 'batch 128']
    """
    rows, body = results.rows.get(MODE, []), []
    for r in rows:
        recipe = replace(RECIPES[r["run"]], **{k: r[k] for k in ("epochs", "image_size") if k in r})
        target, acc, took = r.get("target_acc"), r.get("final_test_acc"), r.get("time_to_target_s")
        reached = None if target is None or acc is None else f"{100 * target:.1f}% " + (
            "not reached" if took is None else f"in {took:.1f} s")  # fmt: skip
        body.append([r["run"], recipe.describe(), f"{r['backend']} ({r['threads']} threads)",
                     r["status"] if acc is None else f"{100 * acc:.2f}%", r.get("train_loss"),
                     r.get("train_s"), recipe.reference_error_pct, reached])  # fmt: skip
    if not rows:
        return []
    header = ["run", "recipe", "backend", "test acc", "train loss", "train s"]
    lines = ["## Accuracy", "", "Test accuracy after every epoch with the clock stopped: `train s` "
             "excludes the evaluations; `time to accuracy` is the training time at the first "
             "evaluation at or above the accuracy given (an upper bound).", "",
             *core.table([*header, "reference error %", "time to accuracy"], body)]  # fmt: skip
    lines += sorted({f"- {n}: {RECIPES[n].reference}" for n in (r["run"] for r in rows)
                     if RECIPES[n].reference})  # fmt: skip
    if out is None or not results.data.get("curves"):
        return [*lines, ""]
    require_matplotlib("accuracy.report")  # out given: a figure is drawn
    from matplotlib import figure, ticker  # accuracy by time, loss by epoch, confusions

    fig = figure.Figure(figsize=(11, 4.5), layout="constrained")
    ax_acc, ax_loss = fig.subplots(1, 2)
    for i, (name, points) in enumerate(results.data["curves"].items()):
        epochs = points[1:]  # from 1 (chance would flatten the rest); colour and style: 10+ runs
        style = dict(color=f"C{i % 10}", marker="o", ms=3, ls=("-", "--", ":")[i // 10 % 3])
        ax_acc.plot([p["train_s"] for p in epochs], [100 * p["test_acc"] for p in epochs], **style,
                    label=f"{name}, lr {RECIPES[name].lr:g}")  # fmt: skip
        ax_loss.plot([p["epoch"] for p in epochs], [p["train_loss"] for p in epochs], **style)
    ax_acc.set(xscale="log", xlabel="training s (evaluations excluded)", ylabel="test accuracy %")
    ax_acc.xaxis.set_minor_formatter(ticker.LogFormatter(minor_thresholds=(1, 0.4)))  # 2, 3, 5
    ax_loss.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))  # whole epochs
    ax_loss.set(xlabel="epoch", ylabel="training loss (epoch mean)")
    ax_acc.legend(fontsize=7)
    save_png(fig, out / "accuracy_vs_time.png")
    lines += ["", "![accuracy vs time, loss per epoch](accuracy_vs_time.png)", ""]
    runs = sorted(results.data["confusion"].items(), key=lambda run: run[1]["accuracy"])
    for dataset, (name, c) in {c["dataset"]: (n, c) for n, c in runs}.items():  # each one's best
        title = f"{name}: test accuracy {100 * c['accuracy']:.2f}%"
        fig = plot_confusion_matrix(c["matrix"], c["classes"], title)
        save_png(fig, out / f"confusion_{dataset}.png")
        lines += [f"![confusion matrix, {dataset}](confusion_{dataset}.png)", ""]
    return lines
