"""Every logged classification metric against scikit-learn, on the same predictions.

torchmetrics' ``MetricCollection`` merges metrics into compute groups when their states
are equal after the first update. After a perfectly classified first batch, macro F1 and
top-5 accuracy had equal states, and F1 then reported top-5's value for the whole epoch.
Each test here starts with such a batch.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassF1Score

from classic_cnns import Digits, LeNet5
from classic_cnns.metrics import _MacroF1, classification_metrics
from conftest import logged_metrics, sklearn_metrics

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(("seed", "validate_args"), [(0, True), (1, True), (2, False), (3, False)])
def test_the_collection_equals_sklearn_after_a_perfect_first_batch(
    seed: int, validate_args: bool
) -> None:
    # validate_args=False is what the task uses: F1 then counts its own confusion matrix.
    generator = torch.Generator().manual_seed(seed)
    first = torch.randint(0, 10, (64,), generator=generator)
    batches = [(torch.nn.functional.one_hot(first, 10).float() * 10, first)]
    for _ in range(20):  # then noisy predictions: accuracy near chance, top-5 near half
        labels = torch.randint(0, 10, (64,), generator=generator)
        batches.append((torch.randn(64, 10, generator=generator), labels))
    metrics = classification_metrics(10, validate_args).clone(prefix="val_")
    for logits, labels in batches:
        metrics.update(logits, labels)
    got = {k: float(v) for k, v in metrics.compute().items()}
    expected = sklearn_metrics(
        torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches]), "val_"
    )
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
    assert got["val_f1"] < 0.3 < got["val_acc_top5"]  # the two stay apart


@pytest.mark.parametrize(("num_classes", "shown"), [(1, "1"), (10.0, r"10\.0"), ("10", "'10'")])
def test_the_collection_needs_an_int_of_at_least_two_classes(
    num_classes: object, shown: str
) -> None:
    # The package's own check, before torchmetrics sees the value (and says it otherwise).
    message = rf"^num_classes must be an int of at least 2; got {shown}$"
    with pytest.raises(ValueError, match=message):
        classification_metrics(num_classes)  # type: ignore[arg-type]


def test_validate_args_must_be_a_bool() -> None:
    # "no" would have switched the checks on: torchmetrics takes any value as a flag.
    with pytest.raises(ValueError, match=r"^validate_args must be True or False; got 'no'$"):
        classification_metrics(10, validate_args="no")  # type: ignore[arg-type]


def test_the_collection_takes_a_numpy_count_of_classes() -> None:
    # As labels.max() + 1 gives it; create_model and the classes took it, this did not.
    import numpy as np

    assert sorted(classification_metrics(np.int64(10)).keys()) == ["acc", "acc_top5", "f1"]


@pytest.mark.parametrize(
    "options",
    [{}, {"ignore_index": 0}, {"top_k": 2}, {"average": "micro"}, {"average": "weighted"}],
)
def test_the_sync_free_f1_is_torchmetrics_f1(options: dict) -> None:
    # Its own counting covers top-1 macro F1 of whole images; other options take torchmetrics'.
    generator = torch.Generator().manual_seed(0)
    ours = _MacroF1(5, validate_args=False, **{"average": "macro", **options})
    theirs = MulticlassF1Score(5, validate_args=False, **{"average": "macro", **options})
    for shape in ((64,), (8, 3, 3)):  # images, and per-pixel labels
        logits = torch.randn(shape[0], 5, *shape[1:], generator=generator)
        labels = torch.randint(0, 5, shape, generator=generator)
        ours.update(logits, labels)
        theirs.update(logits, labels)
    assert float(ours.compute()) == pytest.approx(float(theirs.compute()), abs=1e-7)


def _perfect_first(model: LeNet5, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    # The same images, reordered so that the first 32 are ones the model classifies right.
    with torch.no_grad():
        right = model(images).argmax(dim=1) == labels
    order = torch.cat([right.nonzero()[:32, 0], right.nonzero()[32:, 0], (~right).nonzero()[:, 0]])
    return images[order], labels[order]


def test_logged_metrics_equal_sklearn_in_every_stage(tmp_path: Path) -> None:
    L.seed_everything(0)
    dm = Digits(image_size=32)
    dm.setup("fit")
    model = LeNet5(optimizer="sgd", lr=0.05, scheduler="none")
    L.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    ).fit(model, datamodule=dm)  # fmt: skip
    model.eval()
    splits = {
        stage: _perfect_first(model, dm.transform(dm._splits[split][0]), dm._splits[split][1])
        for stage, split in (("train", "train"), ("val", "val"), ("test", "test"))
    }
    loaders = {s: DataLoader(TensorDataset(*splits[s]), batch_size=64) for s in splits}

    # One more epoch whose steps cannot move the weights, so the training predictions are
    # the ones computed below (LeNet-5 has no dropout or batch norm: train = eval mode).
    frozen = LeNet5(optimizer="sgd", lr=1e-30, momentum=0.0, weight_decay=0.0, scheduler="none")
    frozen.load_state_dict(model.state_dict())
    trainer = L.Trainer(
        max_epochs=1, accelerator="cpu", default_root_dir=tmp_path,
        logger=L.pytorch.loggers.CSVLogger(tmp_path), enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1,
    )  # fmt: skip
    trainer.fit(frozen, loaders["train"], loaders["val"])
    trainer.test(frozen, loaders["test"], verbose=False)
    logged = logged_metrics(tmp_path)

    frozen.eval()
    checked = 0
    for stage, (images, labels) in splits.items():
        with torch.no_grad():
            logits = frozen(images)
        assert bool((logits[:32].argmax(dim=1) == labels[:32]).all())  # a perfect first batch
        expected = sklearn_metrics(logits, labels, f"{stage}_")
        if stage == "train":  # training logs top-1 accuracy only
            expected = {"train_acc": expected["train_acc"]}
        for key, value in expected.items():
            assert logged[key] == pytest.approx(value, abs=1e-6), key
            checked += 1
        # The mean loss over the stage's images, weighted by batch size.
        loss = torch.nn.functional.cross_entropy(logits, labels)
        assert logged[f"{stage}_loss"] == pytest.approx(float(loss), rel=1e-5)
    assert checked == 7


@pytest.mark.parametrize("precision", ["bf16-true", "16-true"])
def test_the_logged_loss_is_the_mean_in_16_bit_precisions(precision: str) -> None:
    # "bf16-true"/"16-true" cast the whole module: a 16-bit image count stopped at 256 and
    # a float16 sum overflowed. The mean of the batches' own 16-bit losses, in float64:
    from torchmetrics import MeanMetric

    from classic_cnns.metrics import MeanLoss

    L.seed_everything(0, verbose=False)
    images = Digits().load_splits()[0][:700]  # real digits, 8x8 uint8
    x = torch.nn.functional.pad(images.float() / 255, (12, 12, 12, 12))  # 32x32
    y = torch.arange(len(x)) % 10
    model = LeNet5()
    loader = DataLoader(TensorDataset(x, y), batch_size=1)
    trainer = L.Trainer(precision=precision, logger=False, enable_progress_bar=False,
                        enable_model_summary=False)  # fmt: skip
    (logged,) = trainer.validate(model, loader, verbose=False)
    dtype = next(model.parameters()).dtype
    assert dtype in (torch.bfloat16, torch.float16)
    with torch.no_grad():
        losses = [torch.nn.functional.cross_entropy(model(a.to(dtype)), b) for a, b in loader]
    expected = torch.stack(losses).double().mean().item()
    assert logged["val_loss"] == pytest.approx(expected, rel=1e-4)
    assert isinstance(model.losses["val_loss"], MeanLoss)
    assert model.losses["val_loss"].mean_value.dtype == torch.float32
    plain = MeanMetric(nan_strategy="disable").to(torch.bfloat16)  # torchmetrics' own
    for loss in losses:
        plain.update(loss.expand(1))
    assert float(plain.weight) < len(losses)  # what the task logged before: stuck at 256


@pytest.mark.parametrize("stage", ["validate", "test"])
def test_a_run_stopped_by_an_error_leaves_nothing_in_the_next_one_s_metrics(stage: str) -> None:
    # Lightning resets the metrics only as it logs them at the epoch's end: a validate or test
    # that raised partway left its sums, and the next run on the model added to them.
    L.seed_everything(0, verbose=False)
    images, labels = Digits().load_splits()[0][:60], torch.arange(60) % 10
    x = torch.nn.functional.pad(images.float() / 255, (12, 12, 12, 12))  # real digits, 32x32
    damaged = x.clone()
    damaged[45] = float("nan")  # nonfinite="raise": the run stops at its third batch
    model = LeNet5()
    options = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}
    run = getattr(L.Trainer(**options), stage)
    with pytest.raises(ValueError, match="NaN or infinite"):
        run(model, DataLoader(TensorDataset(damaged, labels), batch_size=20), verbose=False)
    run = getattr(L.Trainer(**options), stage)
    (logged,) = run(model, DataLoader(TensorDataset(x, labels), batch_size=20), verbose=False)
    with torch.no_grad():
        logits = model.eval()(x)
    prefix = "val_" if stage == "validate" else "test_"
    for key, value in sklearn_metrics(logits, labels, prefix).items():
        assert logged[key] == pytest.approx(value, abs=1e-6), key
    loss = torch.nn.functional.cross_entropy(logits, labels)
    assert logged[f"{prefix}loss"] == pytest.approx(float(loss), rel=1e-6)
