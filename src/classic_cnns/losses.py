"""Classification losses: cross-entropy, MSE and BCE on one-hot targets, and distillation.

Every loss takes raw ``logits`` of shape ``(N, C)``, a ``target`` of integer class indices
``(N,)`` or of class probabilities ``(N, C)`` (soft labels, as torchvision's ``MixUp`` and
``CutMix`` make them: ``onehot(y)`` below is then the target itself), and a ``reduction`` of
``"mean"`` or ``"sum"``:

* :func:`cross_entropy`: ``-log softmax(z)[y]`` per image, with optional label smoothing.
* :func:`mse`: ``(softmax(z)_c - onehot(y)_c)**2`` per element, as ``nn.MSELoss`` on the
  class probabilities; ``"mean"`` averages over all ``N * C`` elements.
* :func:`bce`: ``-[t log sigmoid(z) + (1 - t) log(1 - sigmoid(z))]`` per element with the
  one-hot ``t``, as ``nn.BCEWithLogitsLoss`` (each class is its own yes/no question);
  ``"mean"`` averages over all ``N * C`` elements.
* :func:`kl_div`: ``T**2 * KL(softmax(teacher / T) || softmax(student / T))`` per image;
  ``"mean"`` averages over the ``N`` images (PyTorch's ``"batchmean"``).
* :func:`distillation_loss`: ``alpha * kl_div + (1 - alpha) * cross_entropy`` (Hinton et al.
  2015, https://arxiv.org/abs/1503.02531).

:class:`ClassificationLoss` fixes one of them, chosen by a :data:`LossName`, with its options;
:func:`load_teacher` builds the frozen network that distillation learns from.

Example:
    >>> import torch
    >>> from classic_cnns.losses import ClassificationLoss
    >>> loss = ClassificationLoss("mse")
    >>> float(loss(torch.tensor([[0.0, 0.0]]), torch.tensor([1])))
    0.25
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from classic_cnns import _guard
from classic_cnns._arguments import check_teacher
from classic_cnns._checks import is_number
from classic_cnns._data_classes import check_data_config
from classic_cnns.files import read_weights_file
from classic_cnns.weights import build_from_file, first_conv_name

__all__ = [
    "LOSS_NAMES",
    "ClassificationLoss",
    "LossName",
    "Reduction",
    "bce",
    "cross_entropy",
    "distillation_loss",
    "get_loss",
    "kl_div",
    "load_teacher",
    "mse",
]

LossName = Literal["cross_entropy", "mse", "bce", "kl_div"]
"""The names that select a loss; ``"kl_div"`` is knowledge distillation.

Example:
    >>> from classic_cnns.losses import ClassificationLoss, LossName
    >>> name: LossName = "mse"
    >>> ClassificationLoss(name).name
    'mse'
"""

Reduction = Literal["mean", "sum"]
"""How per-image (or per-element) losses become one number.

Example:
    >>> import torch
    >>> from classic_cnns.losses import Reduction, cross_entropy
    >>> reduction: Reduction = "sum"  # of the two images' log(4)
    >>> round(float(cross_entropy(torch.zeros(2, 4), torch.tensor([0, 1]), reduction)), 4)
    2.7726
"""

LOSS_NAMES: tuple[str, ...] = get_args(LossName)
"""The :data:`LossName` choices as a tuple, in the order above.

Example:
    >>> from classic_cnns.losses import LOSS_NAMES
    >>> LOSS_NAMES
    ('cross_entropy', 'mse', 'bce', 'kl_div')
"""
_REDUCTIONS: tuple[str, ...] = get_args(Reduction)


# -- argument checks (shapes and dtypes only: no device sync) ------------------------------
def _check_reduction(reduction: Any, images: int | None = None) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}; got {reduction!r}")
    if reduction == "mean" and images == 0:  # torch would return NaN
        raise ValueError(
            "reduction='mean' needs at least one image; got an empty batch (N = 0). "
            "reduction='sum' gives 0 for it"
        )


def _check_logits(logits: Any, name: str = "logits") -> None:
    if not isinstance(logits, Tensor):
        raise TypeError(f"{name} must be a float tensor of shape (N, C); got {type(logits)}")
    if logits.ndim != 2 or not logits.is_floating_point():
        raise ValueError(
            f"{name} must be a float tensor of shape (N, C); "
            f"got dtype {logits.dtype} and shape {tuple(logits.shape)}"
        )


def _check_target(target: Any, logits: Tensor) -> None:
    n, c = logits.shape
    if not isinstance(target, Tensor):
        raise TypeError(f"target must be an integer tensor of class indices; got {type(target)}")
    soft = target.is_floating_point() and target.ndim == 2
    if soft and target.shape != (n, c):
        raise ValueError(
            f"a target of class probabilities must have the logits' shape ({n}, {c}); got "
            f"shape {tuple(target.shape)}"
        )
    if not soft and (
        target.ndim != 1
        or target.shape[0] != n
        or target.is_floating_point()
        or target.is_complex()
        or target.dtype == torch.bool
    ):
        raise ValueError(
            f"target must be an integer tensor of {n} class indices, shape ({n},), or float "
            f"class probabilities of shape ({n}, {c}); got dtype {target.dtype} and shape "
            f"{tuple(target.shape)}"
        )
    # The value range is read on the CPU only: on an accelerator the read would wait for the
    # device at every step (and ImageClassifier checks every batch's labels already).
    if not _guard.queued(target.device) and n > 0:
        _guard.check_label_values(target, c)


def _weighted(p: Tensor, log_terms: Tensor) -> Tensor:
    # p * log_terms per class, exactly 0 where p = 0: the convention 0 * log 0 = 0, also
    # against a -inf log (a class ruled out or masked), where torch's product gives NaN.
    return (p * log_terms).masked_fill(p == 0, 0.0)


def _as_target(target: Tensor, logits: Tensor, one_hot: bool = False) -> tuple[Tensor, Tensor]:
    # The logits and the target as torch's loss takes them. Class indices: int64, or one-hot
    # rows in the logits' dtype; probabilities: both in the wider of the two dtypes (bf16
    # logits do not round a float32 MixUp label).
    if target.is_floating_point():
        dtype = torch.promote_types(logits.dtype, target.dtype)
        return logits.to(dtype), target.to(dtype)
    if one_hot:
        return logits, F.one_hot(target.long(), logits.shape[1]).to(logits.dtype)
    return logits, target.long()


def _check_temperature(temperature: Any) -> None:
    if not (is_number(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive finite number; got {temperature!r}")


def _check_alpha(alpha: Any) -> None:
    if not (is_number(alpha) and 0 <= alpha <= 1):
        raise ValueError(f"alpha must be a number in [0, 1]; got {alpha!r}")


def _check_label_smoothing(label_smoothing: Any) -> None:
    if not (is_number(label_smoothing) and 0 <= label_smoothing < 1):
        raise ValueError(f"label_smoothing must be a number in [0, 1); got {label_smoothing!r}")


# -- the losses ----------------------------------------------------------------------------
def cross_entropy(
    logits: Tensor,
    target: Tensor,
    reduction: Reduction = "mean",
    *,
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy of the softmax of ``logits`` against class indices or probabilities.

    Per image ``l_n = -sum_c q_c log softmax(z_n)_c`` with ``q = (1 - eps) onehot(y_n) +
    eps / C`` (``eps = label_smoothing``; 0 gives ``-log softmax(z_n)[y_n]``); for a target
    of probabilities ``p_n``, ``onehot(y_n)`` is ``p_n``.

    Args:
        logits: Raw scores, ``(N, C)``.
        target: Class indices, ``(N,)``, any integer dtype; or class probabilities
            ``(N, C)`` in ``[0, 1]`` (MixUp's and CutMix's soft labels).
        reduction: ``"mean"`` over the ``N`` images or ``"sum"``.
        label_smoothing: ``eps`` in ``[0, 1)``.

    Returns:
        A scalar tensor.

    Example:
        >>> import torch
        >>> from classic_cnns.losses import cross_entropy
        >>> round(float(cross_entropy(torch.zeros(2, 4), torch.tensor([0, 3]))), 4)  # log 4
        1.3863
    """
    _check_logits(logits)
    _check_target(target, logits)
    _check_reduction(reduction, logits.shape[0])
    _check_label_smoothing(label_smoothing)
    logits, target = _as_target(target, logits)
    if not target.is_floating_point():
        return F.cross_entropy(logits, target, reduction=reduction, label_smoothing=label_smoothing)
    # Probabilities: a class of q = 0 adds 0 (torch's soft cross-entropy: NaN at a -inf logit).
    q = target * (1 - label_smoothing) + label_smoothing / target.shape[1]
    total = -_weighted(q, F.log_softmax(logits, dim=1)).sum()
    return total / logits.shape[0] if reduction == "mean" else total


def mse(logits: Tensor, target: Tensor, reduction: Reduction = "mean") -> Tensor:
    """Mean squared error between the class probabilities and one-hot targets.

    Per element ``l_nc = (softmax(z_n)_c - onehot(y_n)_c)**2``, as ``nn.MSELoss`` on the
    softmax. ``"mean"`` divides the sum by ``N * C`` (every element counts once), so its
    gradient is ``1 / C`` of a per-image mean; scale-free optimisers (Adam) do not mind.

    Args:
        logits: Raw scores, ``(N, C)``; the softmax is taken here.
        target: Class indices, ``(N,)``, any integer dtype; or probabilities ``(N, C)``.
        reduction: ``"mean"`` over the ``N * C`` elements or ``"sum"``.

    Returns:
        A scalar tensor.

    Example:
        >>> import torch
        >>> from classic_cnns.losses import mse
        >>> logits = torch.tensor([[0.0, 0.0]])  # probabilities (0.5, 0.5)
        >>> float(mse(logits, torch.tensor([0]))), float(mse(logits, torch.tensor([0]), "sum"))
        (0.25, 0.5)
    """
    _check_logits(logits)
    _check_target(target, logits)
    _check_reduction(reduction, logits.shape[0])
    logits, target = _as_target(target, logits, one_hot=True)
    return F.mse_loss(logits.softmax(dim=1), target, reduction=reduction)


def bce(
    logits: Tensor, target: Tensor, reduction: Reduction = "mean", *, weight: Tensor | None = None
) -> Tensor:
    """Binary cross-entropy of each class's sigmoid against one-hot targets.

    Per element ``l_nc = -w_nc [t_nc log sigmoid(z_nc) + (1 - t_nc) log(1 - sigmoid(z_nc))]``
    with ``t = onehot(y)``, as ``nn.BCEWithLogitsLoss``: every class is a separate yes/no
    question, computed from the logits (stable where ``sigmoid`` saturates).

    Args:
        logits: Raw scores, ``(N, C)``; the sigmoid is taken here.
        target: Class indices, ``(N,)``, any integer dtype; or probabilities ``(N, C)``.
        reduction: ``"mean"`` over the ``N * C`` elements or ``"sum"``.
        weight: The notes' ``w``, each element's factor, broadcast against ``(N, C)``:
            ``(C,)`` weighs each class, ``(N, 1)`` each image. ``None`` (default) is 1
            everywhere. ``"mean"`` still divides by ``N * C``, as torch's does.

    Returns:
        A scalar tensor.

    Example:
        >>> import torch
        >>> from classic_cnns.losses import bce
        >>> round(float(bce(torch.zeros(1, 3), torch.tensor([2]))), 4)  # log 2 per element
        0.6931
        >>> w = torch.tensor([1.0, 1.0, 4.0])  # class 2's question counts four times
        >>> round(float(bce(torch.zeros(1, 3), torch.tensor([2]), weight=w)), 4)  # 2 log 2
        1.3863
    """
    _check_logits(logits)
    _check_target(target, logits)
    _check_reduction(reduction, logits.shape[0])
    if weight is not None:
        _check_weight(weight, logits)
    logits, target = _as_target(target, logits, one_hot=True)
    return F.binary_cross_entropy_with_logits(logits, target, weight, reduction=reduction)


def _check_weight(weight: Any, logits: Tensor) -> None:
    # A float tensor that broadcasts against the logits without growing them.
    n, c = logits.shape
    expected = f"a float tensor that broadcasts against the logits' shape ({n}, {c}), such as "
    expected += f"({c},) per class or ({n}, 1) per image"
    if not isinstance(weight, Tensor):
        raise TypeError(f"weight must be {expected}; got {type(weight).__name__}")
    try:
        fits = torch.broadcast_shapes(weight.shape, logits.shape) == logits.shape
    except RuntimeError:
        fits = False
    if not (fits and weight.is_floating_point()):
        raise ValueError(
            f"weight must be {expected}; got dtype {weight.dtype} and shape {tuple(weight.shape)}"
        )


def kl_div(
    logits: Tensor,
    teacher_logits: Tensor,
    reduction: Reduction = "mean",
    *,
    temperature: float = 1.0,
) -> Tensor:
    """``T**2`` times the KL divergence from the softened teacher to the softened student.

    Per image ``l_n = T**2 sum_c p_nc (log p_nc - log q_nc)`` with the teacher's
    ``p = softmax(teacher_logits / T)`` and the student's ``q = softmax(logits / T)``. The
    ``T**2`` keeps the gradients' size independent of ``T`` (Hinton et al. 2015).

    ``"mean"`` averages over the ``N`` images, which is PyTorch's ``reduction="batchmean"``
    and the divergence per image. ``nn.KLDivLoss``'s ``"mean"`` (the element-wise mean over
    ``N * C``) is ``1 / C`` of that and not a divergence of anything.

    The teacher's logits are detached: no gradient reaches the teacher.

    Args:
        logits: The student's raw scores, ``(N, C)``.
        teacher_logits: The teacher's raw scores, the same shape.
        reduction: ``"mean"`` over the ``N`` images or ``"sum"``.
        temperature: ``T > 0``; higher spreads both distributions over more classes.

    Returns:
        A scalar tensor, 0 where the two distributions agree.

    Example:
        >>> import torch
        >>> from classic_cnns.losses import kl_div
        >>> z = torch.tensor([[2.0, 0.0, -1.0]])
        >>> float(kl_div(z, z, temperature=4.0))
        0.0
        >>> ruled_out = torch.tensor([[0.0, float("-inf")]])  # the teacher's p = (1, 0)
        >>> round(float(kl_div(torch.zeros(1, 2), ruled_out)), 4)  # log 2
        0.6931
    """
    _check_logits(logits)
    _check_logits(teacher_logits, "teacher_logits")
    if teacher_logits.shape != logits.shape:
        raise ValueError(
            f"teacher_logits must have the student's shape {tuple(logits.shape)}; "
            f"got {tuple(teacher_logits.shape)}"
        )
    _check_reduction(reduction, logits.shape[0])
    _check_temperature(temperature)
    student = F.log_softmax(logits / temperature, dim=1)
    teacher = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    # p * (log p - log q) per class; a class the teacher rules out (p = 0) adds exactly 0
    # (F.kl_div gives NaN there).
    total = _weighted(teacher.exp(), teacher - student).sum()
    total = total / (logits.shape[0] if reduction == "mean" else 1)
    return total * temperature**2


def distillation_loss(
    logits: Tensor,
    target: Tensor,
    teacher_logits: Tensor,
    reduction: Reduction = "mean",
    *,
    temperature: float = 4.0,
    alpha: float = 0.9,
    label_smoothing: float = 0.0,
) -> Tensor:
    """Knowledge distillation: ``alpha * kl_div + (1 - alpha) * cross_entropy``.

    ``alpha`` weights the soft side (the teacher): 1 learns from the teacher alone, 0 from
    the labels alone. Hinton et al. (2015) found a small weight on the labels best, hence
    the default 0.9. Both terms are per image, so ``"mean"`` and ``"sum"`` mix like terms.

    Args:
        logits: The student's raw scores, ``(N, C)``.
        target: Class indices, ``(N,)``, any integer dtype; or probabilities ``(N, C)``.
        teacher_logits: The teacher's raw scores, ``(N, C)`` (detached here).
        reduction: ``"mean"`` over the ``N`` images or ``"sum"``.
        temperature: ``T > 0`` of the soft term (see :func:`kl_div`).
        alpha: Weight of the soft term, in ``[0, 1]``.
        label_smoothing: Of the hard term (see :func:`cross_entropy`).

    Returns:
        A scalar tensor.

    Example:
        >>> import torch
        >>> from classic_cnns.losses import distillation_loss
        >>> student, teacher = torch.zeros(2, 4), torch.zeros(2, 4)
        >>> y = torch.tensor([0, 1])
        >>> round(float(distillation_loss(student, y, teacher, alpha=0.5)), 4)  # 0.5 * log 4
        0.6931
    """
    _check_alpha(alpha)
    soft = kl_div(logits, teacher_logits, reduction, temperature=temperature)
    hard = cross_entropy(logits, target, reduction, label_smoothing=label_smoothing)
    return alpha * soft + (1 - alpha) * hard


_LOSSES: dict[str, Callable[..., Tensor]] = {
    "cross_entropy": cross_entropy,
    "mse": mse,
    "bce": bce,
    "kl_div": distillation_loss,
}


def get_loss(name: LossName) -> Callable[..., Tensor]:
    """The loss function a :data:`LossName` selects.

    ``"kl_div"`` selects :func:`distillation_loss`, which takes the teacher's logits too:
    ``f(logits, target, teacher_logits, reduction)``. The others are ``f(logits, target,
    reduction)``.

    Raises:
        ValueError: if ``name`` is not one of :data:`LOSS_NAMES`.

    Example:
        >>> from classic_cnns.losses import get_loss
        >>> get_loss("bce").__name__, get_loss("kl_div").__name__
        ('bce', 'distillation_loss')
    """
    if not isinstance(name, str) or name not in _LOSSES:
        raise ValueError(f"loss must be one of {LOSS_NAMES}; got {name!r}")
    return _LOSSES[name]


class ClassificationLoss(nn.Module):
    """One loss, chosen by name, with its options checked once and fixed.

    Call it as ``loss(logits, target)``, or ``loss(logits, target, teacher_logits)`` for
    ``"kl_div"``. It holds no parameters or buffers.

    Args:
        name: ``"cross_entropy"``, ``"mse"``, ``"bce"`` or ``"kl_div"`` (distillation).
        reduction: ``"mean"`` or ``"sum"`` (see each loss for what the mean is over).
        label_smoothing: For ``"cross_entropy"`` and the hard term of ``"kl_div"``; the
            one-hot losses refuse it rather than ignore it.
        temperature: Of ``"kl_div"``'s soft term; unused by the others.
        alpha: ``"kl_div"``'s weight of the soft term; unused by the others.

    Example:
        >>> import torch
        >>> from classic_cnns.losses import ClassificationLoss
        >>> loss = ClassificationLoss("kl_div", temperature=2.0, alpha=1.0)
        >>> z = torch.randn(8, 10)
        >>> float(loss(z, torch.zeros(8, dtype=torch.long), teacher_logits=z))
        0.0
    """

    def __init__(
        self,
        name: LossName = "cross_entropy",
        *,
        reduction: Reduction = "mean",
        label_smoothing: float = 0.0,
        temperature: float = 4.0,
        alpha: float = 0.9,
    ) -> None:
        super().__init__()
        self.fn = get_loss(name)
        _check_reduction(reduction)
        _check_label_smoothing(label_smoothing)
        _check_temperature(temperature)
        _check_alpha(alpha)
        if label_smoothing and name in ("mse", "bce"):
            raise ValueError(
                f"label_smoothing applies to 'cross_entropy' and 'kl_div', not to {name!r}; "
                f"got label_smoothing={label_smoothing!r}"
            )
        self.name = name
        self.reduction = reduction
        # The keyword options that self.fn takes, beyond (logits, target[, teacher], reduction).
        self.options: dict[str, float] = {}
        if name in ("cross_entropy", "kl_div"):
            self.options["label_smoothing"] = float(label_smoothing)
        if name == "kl_div":
            self.options |= {"temperature": float(temperature), "alpha": float(alpha)}

    @property
    def needs_teacher(self) -> bool:
        """Whether a call needs ``teacher_logits`` (only ``"kl_div"``).

        Example:
            >>> ClassificationLoss("kl_div").needs_teacher, ClassificationLoss().needs_teacher
            (True, False)
        """
        return self.name == "kl_div"

    @property
    def terms(self) -> str:
        """What the loss adds to plain cross-entropy (or to its one-hot loss), or ``""``.

        Example:
            >>> ClassificationLoss("kl_div", alpha=0.5, temperature=2.0).terms
            'distillation: 0.5 x KL at T=2 + 0.5 x CE'
        """
        o = self.options
        alpha, t = o.get("alpha", 0.0), o.get("temperature", 1.0)
        kl = f"distillation: {alpha:g} x KL at T={t:g} + {1 - alpha:g} x CE"
        terms = [kl] if self.needs_teacher else []
        if o.get("label_smoothing"):
            terms.append(f"labels smoothed by {o['label_smoothing']:g}")
        return ", ".join(terms)

    def forward(
        self, logits: Tensor, target: Tensor, teacher_logits: Tensor | None = None
    ) -> Tensor:
        """The loss of a batch, a 0-dimensional tensor.

        ``logits`` are ``(N, C)``, ``target`` class indices ``(N,)`` (or probabilities
        ``(N, C)``) and, for ``"kl_div"`` alone, ``teacher_logits`` ``(N, C)``.

        Example:
            >>> import torch
            >>> loss = ClassificationLoss("cross_entropy", reduction="sum")
            >>> round(float(loss(torch.zeros(2, 4), torch.tensor([0, 3]))), 4)  # 2 x log(4)
            2.7726
        """
        if self.needs_teacher != (teacher_logits is not None):
            need = "needs teacher_logits" if self.needs_teacher else "takes no teacher_logits"
            given = "none" if teacher_logits is None else "a tensor"
            raise ValueError(f"loss {self.name!r} {need}; got {given}")
        args = (logits, target) if teacher_logits is None else (logits, target, teacher_logits)
        return self.fn(*args, self.reduction, **self.options)

    def extra_repr(self) -> str:
        """The name and the options that apply to it.

        Example:
            >>> ClassificationLoss("mse")
            ClassificationLoss('mse', reduction='mean')
        """
        options = "".join(f", {k}={v}" for k, v in self.options.items())
        return f"{self.name!r}, reduction={self.reduction!r}{options}"


def load_teacher(
    teacher: str, weights: str | None, num_classes: int, in_channels: int, data: Any = None
) -> nn.Module:
    """The frozen distillation teacher: a weights file, or a registered name with its weights.

    A file (``.ckpt`` or ``.safetensors``) says which network it holds and must take the
    student's ``in_channels`` and ``num_classes``; a name is built for them and every tensor
    of ``weights`` must fit it (a fresh head would teach nothing). The network is returned
    in eval mode with ``requires_grad=False``. With the student's datamodule ``data``, a
    file that records the classes its outputs stand for must name the data's (else it would
    teach other classes), and one trained on images prepared otherwise (mean, std, size) is
    warned of.

    Raises:
        ValueError: for a name without ``weights`` (or ``weights`` for a file), a teacher
            that does not fit, or one trained on other classes than ``data``'s.
        FileNotFoundError: if ``teacher`` is neither a registered name nor a file.

    Example:
        >>> load_teacher("lenet5", None, num_classes=10, in_channels=1)
        Traceback (most recent call last):
        ...
        ValueError: teacher='lenet5' is a model name; give its trained weights ...
    """
    check_teacher(teacher, weights, loading=True)
    if weights is not None:  # a registered name's
        file = read_weights_file(weights)
        net = build_from_file(
            file, teacher, num_classes=num_classes, in_channels=in_channels, strict=True
        )
    else:
        file = read_weights_file(teacher)
        net = build_from_file(file)
        first = first_conv_name(net)
        channels = net.get_submodule(first).in_channels if first else in_channels
        classes = getattr(net, "num_classes", num_classes)
        if (classes, channels) != (num_classes, in_channels):
            raise ValueError(
                f"the teacher {file.arch} takes {channels} channel(s) and has {classes} "
                f"classes; the student takes {in_channels} and has {num_classes}"
            )
    recorded, names = file.data.get("class_names"), getattr(data, "class_names", None)
    if (
        recorded is not None
        and names is not None
        and list(map(str, recorded)) != [str(n) for n in names]
    ):
        raise ValueError(
            f"the teacher {file.source} was trained on the classes {list(recorded)}; the "
            f"student's data {type(data).__name__} labels the classes {list(names)}, so the "
            "teacher would teach other classes. Give a teacher trained on these classes, in "
            "this order"
        )
    check_data_config(
        file.data, data, f"the teacher {file.source}", "Distil on data prepared as the "
        "teacher's was (the same mean, std and image size), or train a teacher on this data"
    )  # fmt: skip
    return net.eval().requires_grad_(False)
