"""The classification losses against the formulas written out by hand, and trained for real.

The hand computations use ``math`` on Python floats, element by element, as the formulas
read: no torch loss function is called to compute an expected value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from classic_cnns import Digits, model_info
from classic_cnns.losses import (
    LOSS_NAMES,
    ClassificationLoss,
    bce,
    cross_entropy,
    distillation_loss,
    get_loss,
    kl_div,
    mse,
)

# Three images, four classes, float64 so that the comparisons can be tight.
LOGITS = [[1.5, -0.3, 0.2, 2.0], [-1.0, 0.0, 3.0, 0.5], [0.7, 0.7, -2.2, 0.1]]
TEACHER = [[0.4, -1.2, 2.5, 1.0], [2.0, 0.3, -0.5, 0.0], [-0.6, 1.9, 0.8, -3.0]]
TARGET = [3, 0, 1]
REDUCTIONS = ("mean", "sum")


def _tensor(rows: list[list[float]]) -> Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def _softmax(row: list[float], temperature: float = 1.0) -> list[float]:
    exps = [math.exp(z / temperature) for z in row]
    return [e / sum(exps) for e in exps]


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def _reduce(values: list[float], reduction: str, count: int) -> float:
    # The notes' mean(L) or sum(L), with ``count`` the number of terms the mean divides by.
    return sum(values) / count if reduction == "mean" else sum(values)


def _hand_cross_entropy(reduction: str, smoothing: float) -> float:
    per_image = []
    for row, y in zip(LOGITS, TARGET, strict=True):
        c = len(row)
        q = [(1 - smoothing) * (k == y) + smoothing / c for k in range(c)]
        per_image.append(-sum(qk * math.log(pk) for qk, pk in zip(q, _softmax(row), strict=True)))
    return _reduce(per_image, reduction, len(LOGITS))


def _hand_mse(reduction: str) -> float:
    # l = (x - y)^2 with x the softmax and y the one-hot target, one term per element.
    terms = [
        (p - (k == y)) ** 2
        for row, y in zip(LOGITS, TARGET, strict=True)
        for k, p in enumerate(_softmax(row))
    ]
    return _reduce(terms, reduction, len(terms))


def _hand_bce(reduction: str, weight: Any = lambda n, k: 1.0) -> float:
    # l = -w [y log x + (1 - y) log(1 - x)] with x = sigmoid(z), one term per element (n, k).
    terms = []
    for n, (row, y) in enumerate(zip(LOGITS, TARGET, strict=True)):
        for k, z in enumerate(row):
            x, t = _sigmoid(z), float(k == y)
            terms.append(-weight(n, k) * (t * math.log(x) + (1 - t) * math.log(1 - x)))
    return _reduce(terms, reduction, len(terms))


def _hand_kl_terms(temperature: float) -> list[float]:
    # The notes' l = y (log y - x): y the teacher's probabilities, x the student's
    # log-probabilities, both at temperature T; one term per element.
    terms = []
    for student, teacher in zip(LOGITS, TEACHER, strict=True):
        q, p = _softmax(student, temperature), _softmax(teacher, temperature)
        terms += [pk * (math.log(pk) - math.log(qk)) for pk, qk in zip(p, q, strict=True)]
    return terms


# -- each loss against its formula -----------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_is_the_formula(reduction: str, smoothing: float) -> None:
    got = cross_entropy(_tensor(LOGITS), torch.tensor(TARGET), reduction, label_smoothing=smoothing)
    assert float(got) == pytest.approx(_hand_cross_entropy(reduction, smoothing), rel=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_is_the_formula_on_the_softmax_against_one_hot(reduction: str) -> None:
    got = mse(_tensor(LOGITS), torch.tensor(TARGET), reduction)
    assert float(got) == pytest.approx(_hand_mse(reduction), rel=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_is_the_formula_on_the_sigmoid_against_one_hot(reduction: str) -> None:
    got = bce(_tensor(LOGITS), torch.tensor(TARGET), reduction)
    assert float(got) == pytest.approx(_hand_bce(reduction), rel=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_weighs_each_class_or_each_image_as_the_notes_w(reduction: str) -> None:
    per_class, per_image = [0.5, 2.0, 1.0, 3.0], [0.25, 1.0, 4.0]
    for weight, hand in (
        (per_class, lambda n, k: per_class[k]),
        ([[w] for w in per_image], lambda n, k: per_image[n]),
    ):
        got = bce(_tensor(LOGITS), torch.tensor(TARGET), reduction, weight=_tensor(weight))
        assert float(got) == pytest.approx(_hand_bce(reduction, hand), rel=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_kl_div_is_the_formula_times_t_squared(reduction: str, temperature: float) -> None:
    terms = _hand_kl_terms(temperature)
    n, c = len(LOGITS), len(LOGITS[0])
    got = float(kl_div(_tensor(LOGITS), _tensor(TEACHER), reduction, temperature=temperature))
    # "mean" is the mean over images (batchmean): the notes' element-wise mean times C.
    expected = temperature**2 * (sum(terms) / n if reduction == "mean" else sum(terms))
    assert got == pytest.approx(expected, rel=1e-12)
    if reduction == "mean":
        notes_mean = sum(terms) / (n * c)
        assert got == pytest.approx(temperature**2 * c * notes_mean, rel=1e-12)


def test_a_class_the_teacher_rules_out_adds_nothing_and_the_gradient_stays_finite() -> None:
    # A -inf teacher logit is p = 0: the term is 0 * log 0 = 0 (scipy's entropy), not NaN.
    from scipy.stats import entropy

    student = torch.tensor([[0.5, 0.0, -1.0]], requires_grad=True)
    teacher = torch.tensor([[1.0, float("-inf"), 0.0]])
    p = torch.softmax(teacher, dim=1)[0].tolist()
    q = torch.softmax(student.detach(), dim=1)[0].tolist()
    assert float(kl_div(student, teacher)) == pytest.approx(entropy(p, q), rel=1e-6)
    both = torch.tensor([[0.0, float("-inf")]])
    assert float(kl_div(both, both)) == 0.0
    loss = distillation_loss(student, torch.tensor([0]), teacher)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(student.grad).all()


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_soft_targets_of_a_masked_class_give_the_class_index_loss(reduction: str) -> None:
    # A class of probability 0 with a -inf logit adds 0 (torch's soft cross-entropy: NaN), so a
    # one-hot target gives the class index's loss, and the gradient stays finite.
    logits = torch.tensor([[0.0, 0.0, float("-inf")], [1.0, -2.0, 0.5]], requires_grad=True)
    index = cross_entropy(logits, torch.tensor([0, 2]), reduction)
    one_hot = cross_entropy(logits, torch.tensor([[1.0, 0, 0], [0, 0, 1.0]]), reduction)
    assert float(one_hot) == pytest.approx(float(index), rel=1e-6)
    assert float(index) == pytest.approx(_reduce([math.log(2), 1.0046], reduction, 2), abs=1e-4)
    one_hot.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    # Smoothing gives the masked class a share of the target: the loss is then infinite.
    smoothed = torch.tensor([[1.0, 0, 0]])
    assert math.isinf(float(cross_entropy(logits[:1], smoothed, label_smoothing=0.1)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_distillation_mixes_the_soft_and_hard_terms_by_alpha(reduction: str, alpha: float) -> None:
    temperature = 3.0
    soft = temperature**2 * _reduce(_hand_kl_terms(temperature), reduction, len(LOGITS))
    hard = _hand_cross_entropy(reduction, 0.0)
    got = distillation_loss(
        _tensor(LOGITS),
        torch.tensor(TARGET),
        _tensor(TEACHER),
        reduction,
        temperature=temperature,
        alpha=alpha,
    )
    assert float(got) == pytest.approx(alpha * soft + (1 - alpha) * hard, rel=1e-12)


def test_t_squared_keeps_the_soft_loss_finite_at_high_temperature() -> None:
    # Hinton et al. 2015: as T grows, T^2 KL tends to the squared distance of the zero-mean
    # logits over 2C; without the T^2 the loss (and its gradients) would vanish like 1/T^2.
    c = len(LOGITS[0])
    limit = 0.0
    for student, teacher in zip(LOGITS, TEACHER, strict=True):
        v = [z - sum(student) / c for z in student]
        u = [z - sum(teacher) / c for z in teacher]
        limit += sum((a - b) ** 2 for a, b in zip(v, u, strict=True)) / (2 * c)
    limit /= len(LOGITS)
    got = float(kl_div(_tensor(LOGITS), _tensor(TEACHER), temperature=1000.0))
    assert got == pytest.approx(limit, rel=1e-3)


def test_the_module_gives_what_the_functions_give() -> None:
    z, y, t = _tensor(LOGITS), torch.tensor(TARGET), _tensor(TEACHER)
    for reduction in REDUCTIONS:
        loss = ClassificationLoss("cross_entropy", reduction=reduction, label_smoothing=0.2)
        assert float(loss(z, y)) == float(cross_entropy(z, y, reduction, label_smoothing=0.2))
        assert float(ClassificationLoss("mse", reduction=reduction)(z, y)) == float(
            mse(z, y, reduction)
        )
        assert float(ClassificationLoss("bce", reduction=reduction)(z, y)) == float(
            bce(z, y, reduction)
        )
        kd = ClassificationLoss("kl_div", reduction=reduction, temperature=2.0, alpha=0.25)
        assert float(kd(z, y, t)) == float(
            distillation_loss(z, y, t, reduction, temperature=2.0, alpha=0.25)
        )


def test_get_loss_maps_every_name() -> None:
    assert LOSS_NAMES == ("cross_entropy", "mse", "bce", "kl_div")
    assert [get_loss(n) for n in LOSS_NAMES] == [cross_entropy, mse, bce, distillation_loss]


def test_integer_label_dtypes_are_accepted() -> None:
    z = _tensor(LOGITS)
    for dtype in (torch.uint8, torch.int32, torch.int64):
        y = torch.tensor(TARGET, dtype=dtype)
        assert float(mse(z, y)) == pytest.approx(_hand_mse("mean"), rel=1e-12)


# -- gradients -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradients_are_finite_even_for_saturated_logits(name: str, reduction: str) -> None:
    # Ordinary logits and saturated ones (softmax and sigmoid at 0 and 1 in float32).
    logits = torch.tensor([[1.0, -2.0, 0.5], [1e4, -1e4, 0.0], [-80.0, 90.0, 3.0]])
    logits.requires_grad_(True)
    teacher = torch.tensor([[0.0, 1.0, -1.0], [-1e4, 0.0, 1e4], [50.0, -50.0, 0.0]])
    teacher.requires_grad_(True)
    y = torch.tensor([0, 1, 2])
    loss = ClassificationLoss(name, reduction=reduction, temperature=2.0, alpha=0.5)
    value = loss(logits, y, teacher) if loss.needs_teacher else loss(logits, y)
    value.backward()
    assert torch.isfinite(value)
    assert logits.grad is not None
    assert torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0
    assert teacher.grad is None  # the teacher never learns from the student's loss


# -- bad arguments ---------------------------------------------------------------------------
Z, Y, T = torch.zeros(2, 3), torch.tensor([0, 2]), torch.zeros(2, 3)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: mse(Z, Y, "none"), ValueError, "reduction must be one of ('mean', 'sum')"),
        (lambda: kl_div(Z, T, "batchmean"), ValueError, "reduction must be one of"),  # type: ignore[arg-type]
        (lambda: bce([[0.0, 1.0]], Y), TypeError, "logits must be a float tensor"),  # type: ignore[arg-type]
        (
            lambda: mse(torch.zeros(3), Y),
            ValueError,
            "shape (N, C); got dtype torch.float32",
        ),
        (lambda: mse(torch.zeros(2, 3, dtype=torch.long), Y), ValueError, "float tensor"),
        (lambda: cross_entropy(Z, [0, 2]), TypeError, "target must be an integer tensor"),  # type: ignore[arg-type]
        (
            lambda: mse(Z, torch.eye(4)[Y]),
            ValueError,
            "probabilities must have the logits' shape (2, 3); got shape (2, 4)",
        ),
        (lambda: bce(Z, torch.tensor([0, 1, 2])), ValueError, "2 class indices, shape (2,)"),
        (lambda: bce(Z, torch.tensor([True, False])), ValueError, "integer tensor"),
        (
            lambda: bce(Z, Y, weight=torch.ones(2)),
            ValueError,
            "weight must be a float tensor that broadcasts against the logits' shape (2, 3), "
            "such as (3,) per class or (2, 1) per image; got dtype torch.float32 and shape (2,)",
        ),
        (lambda: bce(Z, Y, weight=torch.ones(3, dtype=torch.long)), ValueError, "torch.int64"),
        (lambda: bce(Z, Y, weight=[1.0, 1.0, 1.0]), TypeError, "per image; got list"),  # type: ignore[arg-type]
        (lambda: mse(Z, torch.tensor([0, 3])), ValueError, "in [0, 3); got values from 0 to 3"),
        (lambda: cross_entropy(Z, torch.tensor([-1, 0])), ValueError, "from -1 to 0"),
        (
            lambda: cross_entropy(Z, Y, label_smoothing=1.0),
            ValueError,
            "label_smoothing must be a number in [0, 1); got 1.0",
        ),
        (lambda: cross_entropy(Z, Y, label_smoothing="0.1"), ValueError, "label_smoothing"),  # type: ignore[arg-type]
        (lambda: kl_div(Z, T, temperature=0), ValueError, "temperature must be a positive"),
        (lambda: kl_div(Z, T, temperature=math.nan), ValueError, "got nan"),
        (lambda: kl_div(Z, torch.zeros(2, 4)), ValueError, "student's shape (2, 3); got (2, 4)"),
        (lambda: distillation_loss(Z, Y, T, alpha=1.5), ValueError, "alpha must be a number in"),
        (lambda: distillation_loss(Z, Y, T, alpha=True), ValueError, "alpha"),
        (lambda: get_loss("hinge"), ValueError, "loss must be one of ('cross_entropy',"),  # type: ignore[arg-type]
        (lambda: ClassificationLoss("l1"), ValueError, "got 'l1'"),  # type: ignore[arg-type]
        (
            lambda: ClassificationLoss("mse", label_smoothing=0.1),
            ValueError,
            "label_smoothing applies to 'cross_entropy' and 'kl_div', not to 'mse'",
        ),
        (lambda: ClassificationLoss("kl_div", temperature=-1), ValueError, "got -1"),
        (lambda: ClassificationLoss("kl_div")(Z, Y), ValueError, "needs teacher_logits; got none"),
        (lambda: ClassificationLoss("bce")(Z, Y, T), ValueError, "takes no teacher_logits"),
        *[  # a mean over no images would be NaN (a sum is 0: see below)
            (lambda f=f: f(Z[:0], Y[:0]), ValueError, "reduction='mean' needs at least one image")
            for f in (cross_entropy, mse, bce)
        ],
        (lambda: kl_div(Z[:0], T[:0]), ValueError, "got an empty batch (N = 0)"),
    ],
)
def test_bad_arguments_are_refused_clearly(
    call: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


def test_an_empty_batch_sums_to_zero() -> None:
    for value in (cross_entropy(Z[:0], Y[:0], reduction="sum"), kl_div(Z[:0], T[:0], "sum")):
        assert value.item() == 0.0


# -- training LeNet-5 on the real digits -----------------------------------------------------
EPOCHS = 5
CHANCE = 0.1


@pytest.fixture(scope="module")
def digits() -> Iterator[Digits]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    dm = Digits(batch_size=64, image_size=32)
    dm.setup("fit")
    yield dm
    torch.set_num_threads(threads)


def _batches(dm: Digits, loader: DataLoader[Any]) -> Iterator[tuple[Tensor, Tensor]]:
    for batch in loader:
        yield dm.on_after_batch_transfer(batch, 0)


def _train(
    dm: Digits, loss: ClassificationLoss, teacher: nn.Module | None = None, seed: int = 0
) -> nn.Module:
    # A plain PyTorch loop: Adam (indifferent to each loss's scale), seeded, EPOCHS epochs.
    torch.manual_seed(seed)
    net = model_info("lenet5").build_net(num_classes=10, in_channels=1)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loader = dm.train_dataloader()
    for epoch in range(EPOCHS):
        loader.sampler.set_epoch(epoch)  # type: ignore[attr-defined]
        net.train()
        for x, y in _batches(dm, loader):
            if teacher is None:
                value = loss(net(x), y)
            else:
                with torch.no_grad():
                    teacher_logits = teacher(x)
                value = loss(net(x), y, teacher_logits)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
    return net.eval()


def _test_accuracy(dm: Digits, net: nn.Module) -> float:
    correct = total = 0
    with torch.no_grad():
        for x, y in _batches(dm, dm.test_dataloader()):
            correct += int((net(x).argmax(dim=1) == y).sum())
            total += y.numel()
    assert total == 359
    return correct / total


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cross_entropy", "mse", "bce"])
def test_each_loss_trains_lenet5_on_the_digits(digits: Digits, name: str) -> None:
    net = _train(digits, ClassificationLoss(name))  # type: ignore[arg-type]
    accuracy = _test_accuracy(digits, net)
    assert accuracy > 6 * CHANCE, f"{name}: test accuracy {accuracy:.3f} after {EPOCHS} epochs"


@pytest.mark.slow
def test_distillation_alone_trains_lenet5_on_the_digits(digits: Digits) -> None:
    # The teacher learns from the labels; the student (alpha=1) sees only the teacher.
    teacher = _train(digits, ClassificationLoss("cross_entropy"))
    student = _train(digits, ClassificationLoss("kl_div", alpha=1.0), teacher, seed=1)
    accuracy = _test_accuracy(digits, student)
    assert accuracy > 6 * CHANCE, f"distilled student: test accuracy {accuracy:.3f}"


def test_soft_targets_follow_the_hand_formulas() -> None:
    # Class probabilities (MixUp's and CutMix's soft labels) in place of the one-hot target.
    g = torch.Generator().manual_seed(0)
    z, teacher = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    q = torch.rand(6, 4, generator=g)
    q /= q.sum(dim=1, keepdim=True)
    log_p, p, s = z.log_softmax(dim=1), z.softmax(dim=1), z.sigmoid()
    assert torch.allclose(cross_entropy(z, q), -(q * log_p).sum(dim=1).mean())
    smoothed = 0.9 * q + 0.1 / 4
    assert torch.allclose(
        cross_entropy(z, q, "sum", label_smoothing=0.1), -(smoothed * log_p).sum()
    )
    assert torch.allclose(mse(z, q), ((p - q) ** 2).mean())
    assert torch.allclose(bce(z, q), -(q * s.log() + (1 - q) * (1 - s).log()).mean())
    blended = distillation_loss(z, q, teacher, alpha=0.25, temperature=2.0)
    assert torch.allclose(
        blended, 0.25 * kl_div(z, teacher, temperature=2.0) + 0.75 * cross_entropy(z, q)
    )
    # bf16 logits (bf16-true) against float32 probabilities: computed in float32, the
    # labels not rounded to bf16's 8 bits.
    z16 = z.to(torch.bfloat16)
    for loss in (cross_entropy, mse, bce):
        assert loss(z16, q).dtype == torch.float32
        assert torch.equal(loss(z16, q), loss(z16.float(), q))
    y = torch.tensor([0, 3, 1, 2, 3, 0])  # one-hot probabilities are the indices
    for loss in (cross_entropy, mse, bce):
        assert torch.allclose(loss(z, torch.eye(4)[y]), loss(z, y))
    for value, shown in (
        (1.5, r"0\.\d+ to 1\.5"),
        (-0.25, r"-0\.25 to 0\.\d+"),
        (math.nan, "nan to nan"),
    ):
        spoilt = q.clone()
        spoilt[2, 1] = value
        with pytest.raises(ValueError, match=rf"summing to 1 per image; got values from {shown}$"):
            cross_entropy(z, spoilt)
