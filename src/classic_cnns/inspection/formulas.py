"""Output sizes and parameter counts of convolution, pooling and linear layers.

The functions mirror PyTorch's layers argument for argument, so they answer "what size comes
out of this layer?" and "how many weights does it hold?" without building anything;
:func:`~classic_cnns.inspection.summary` checks every convolution and pooling layer of a real
forward pass against them.

The formulas, per spatial dimension (the source notes' output-size and parameter rules,
generalised to dilation, groups and PyTorch's ``ceil_mode``)::

    conv:  H_out = floor((H_in + 2*padding - dilation*(kernel_size-1) - 1) / stride + 1)
    pool:  the same, with ceil instead of floor when ceil_mode=True (a last window that
           would start in the right padding is dropped, as PyTorch does)
    conv params:   ((kernel_h*kernel_w*in_channels/groups) + 1) * out_channels
    linear params: in_features*out_features + out_features

Example:
    >>> from classic_cnns.inspection import conv2d_output_size, pool2d_output_size
    >>> conv2d_output_size(32, kernel_size=5)      # LeNet-5's C1
    (28, 28)
    >>> pool2d_output_size((28, 28), kernel_size=2)  # and S2
    (14, 14)
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from classic_cnns._checks import check_flag

__all__ = [
    "conv2d_output_size",
    "conv2d_params",
    "linear_params",
    "pool2d_output_size",
]

IntPair = int | Sequence[int]
Pair = tuple[int, int]

_CONV_FORMULA = "floor((H_in + 2*padding - dilation*(kernel_size-1) - 1) / stride + 1)"
_POOL_FORMULA_CEIL = "ceil((H_in + 2*padding - dilation*(kernel_size-1) - 1) / stride) + 1"


def _pair(value: Any, name: str, minimum: int, one: bool = True) -> Pair:
    """``value`` as an ``(h, w)`` pair of ints >= ``minimum``, as PyTorch's ``_pair`` reads it;
    with ``one``, a one-element sequence too."""
    expected = f"{name} must be an int or an (h, w) pair of ints >= {minimum}; got {value!r}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = list(value)
        # PyTorch takes a one-element sequence for both dimensions, as it does an int, except
        # for a convolution's kernel: nn.Conv2d(3, 4, (3,)) builds a 3x1 weight and fails.
        if len(items) == 1 and one:
            items = items * 2
        if len(items) != 2:
            raise ValueError(expected)
    else:
        items = [value, value]
    pair: list[int] = []
    for item in items:
        # operator.index accepts numpy and torch integers but rejects floats; bools are ints
        # to Python and never meant as sizes.
        if isinstance(item, bool):
            raise ValueError(expected)
        try:
            number = operator.index(item)
        except TypeError:
            raise ValueError(expected) from None
        if number < minimum:
            raise ValueError(expected)
        pair.append(number)
    return pair[0], pair[1]


def _count(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return number


def conv2d_output_size(
    input_size: IntPair,
    kernel_size: IntPair,
    stride: IntPair = 1,
    padding: IntPair | str = 0,
    dilation: IntPair = 1,
) -> Pair:
    """Spatial output size ``(h, w)`` of ``nn.Conv2d`` with these arguments.

    Per dimension (the notes' ``O = (W - F + 2P) / S + 1`` with dilation and flooring)::

        H_out = floor((H_in + 2*padding - dilation*(kernel_size-1) - 1) / stride + 1)

    Dive into Deep Learning writes it with the total padding ``p = 2*padding`` and no
    dilation, ``floor((n - k + p + s) / s)``: with ``p = k - 1`` that is
    ``floor((n + s - 1) / s)``, and ``n / s`` when ``s`` divides ``n``.
    ``padding="valid"`` is ``0``; ``padding="same"`` keeps the input size and, as in
    PyTorch, needs ``stride=1``.

    Args:
        input_size: Input ``H`` and ``W``, an int for both or an ``(h, w)`` pair.
        kernel_size: Kernel size, int or pair.
        stride: Stride, int or pair.
        padding: Zero padding on each side, int or pair, or ``"valid"`` / ``"same"``.
        dilation: Spacing between kernel elements, int or pair.

    Returns:
        ``(H_out, W_out)``.

    Raises:
        ValueError: for an argument PyTorch rejects, or if the output would be empty
            (the input, padded, is smaller than the dilated kernel); the message fills
            the formula in with the numbers.

    Example:
        >>> conv2d_output_size(224, kernel_size=11, stride=4, padding=2)  # AlexNet conv1
        (55, 55)
        >>> conv2d_output_size((7, 9), kernel_size=(3, 1), padding="same")
        (7, 9)
        >>> conv2d_output_size(8, kernel_size=3, stride=2, padding=1)  # d2l: p = k - 1
        (4, 4)
    """
    size = _pair(input_size, "input_size", 1)
    kernel = _pair(kernel_size, "kernel_size", 1, one=False)
    step = _pair(stride, "stride", 1)
    dil = _pair(dilation, "dilation", 1)
    if isinstance(padding, str):
        if padding == "valid":
            pad: Pair = (0, 0)
        elif padding == "same":
            if step != (1, 1):
                raise ValueError(
                    f"padding='same' is not supported for strided convolutions (as in "
                    f"PyTorch): expected stride=1; got stride={stride!r}"
                )
            return size
        else:
            raise ValueError(
                f"padding must be an int, an (h, w) pair, 'valid' or 'same'; got {padding!r}"
            )
    else:
        pad = _pair(padding, "padding", 0)
    out = []
    for axis, i, k, s, p, d in zip("HW", size, kernel, step, pad, dil, strict=True):
        o = (i + 2 * p - d * (k - 1) - 1) // s + 1
        if o <= 0:
            raise ValueError(
                f"conv2d output {'height' if axis == 'H' else 'width'} would be {o}: expected "
                f"the padded input ({i} + 2*{p} = {i + 2 * p}) to be at least the dilated "
                f"kernel ({d}*({k}-1) + 1 = {d * (k - 1) + 1}); got input_size={input_size!r}. "
                f"{axis}_out = {_CONV_FORMULA.replace('H_in', f'{axis}_in')} = "
                f"floor(({i} + 2*{p} - {d}*({k}-1) - 1) / {s} + 1) = {o}"
            )
        out.append(o)
    return out[0], out[1]


def pool2d_output_size(
    input_size: IntPair,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
) -> Pair:
    """Spatial output size ``(h, w)`` of ``nn.MaxPool2d`` or ``nn.AvgPool2d``.

    Per dimension, exactly as PyTorch's ``pooling_output_shape``::

        ceil_mode=False:  H_out = floor((H_in + 2*padding - dilation*(kernel_size-1) - 1)
                                        / stride) + 1
        ceil_mode=True:   H_out = ceil((H_in + 2*padding - dilation*(kernel_size-1) - 1)
                                       / stride) + 1,
                          minus 1 if that last window would start in the right padding,
                          i.e. if (H_out - 1)*stride >= H_in + padding

    ``nn.AvgPool2d`` has no dilation: leave it at 1. PyTorch also requires
    ``padding <= kernel_size // 2``; so does this function.

    Args:
        input_size: Input ``H`` and ``W``, an int for both or an ``(h, w)`` pair.
        kernel_size: Window size, int or pair.
        stride: Window step, int or pair; ``None`` (PyTorch's default) means ``kernel_size``.
        padding: Implicit padding on each side, int or pair.
        dilation: Spacing between window elements (max pooling only), int or pair.
        ceil_mode: Round the output size up instead of down.

    Returns:
        ``(H_out, W_out)``.

    Raises:
        ValueError: for an argument PyTorch rejects (including padding larger than half
            the kernel), a ``ceil_mode`` other than a bool (PyTorch takes any truthy value),
            or if the output would be empty; the message fills the formula in with the
            numbers.

    Example:
        >>> pool2d_output_size(112, kernel_size=3, stride=2, padding=1)  # ResNet's stem pool
        (56, 56)
        >>> pool2d_output_size(112, kernel_size=3, stride=2, ceil_mode=True)  # GoogLeNet's
        (56, 56)
        >>> pool2d_output_size(112, kernel_size=3, stride=2)
        (55, 55)
    """
    size = _pair(input_size, "input_size", 1)
    kernel = _pair(kernel_size, "kernel_size", 1)
    # PyTorch reads an empty stride like None: the functional API's default is [].
    no_stride = stride is None or (isinstance(stride, Sequence) and len(stride) == 0)
    step = kernel if no_stride else _pair(stride, "stride", 1)
    pad = _pair(padding, "padding", 0)
    dil = _pair(dilation, "dilation", 1)
    if not isinstance(ceil_mode, bool):
        raise ValueError(f"ceil_mode must be a bool; got {ceil_mode!r}")
    out = []
    for axis, i, k, s, p, d in zip("HW", size, kernel, step, pad, dil, strict=True):
        # aten checks p <= ((k-1)*d + 1) // 2 and p <= k // 2; for d >= 1 the second binds.
        if p > k // 2:
            raise ValueError(
                f"pooling padding must be at most half the kernel size (as in PyTorch): "
                f"expected padding <= kernel_size // 2 = {k} // 2 = {k // 2}; got padding={p} "
                f"(kernel_size={kernel_size!r}, padding={padding!r})"
            )
        span = i + 2 * p - d * (k - 1) - 1
        if ceil_mode:
            o = -(-span // s) + 1
            # PyTorch drops a last window that would start in the right padding.
            dropped = (o - 1) * s >= i + p
            if dropped:
                o -= 1
            shown = (
                f"{_POOL_FORMULA_CEIL.replace('H_in', f'{axis}_in')}"
                f"{' - 1 (last window starts in the padding)' if dropped else ''} = "
                f"ceil(({i} + 2*{p} - {d}*({k}-1) - 1) / {s}) + 1"
                f"{' - 1' if dropped else ''} = {o}"
            )
        else:
            o = span // s + 1
            shown = (
                f"{_CONV_FORMULA.replace('H_in', f'{axis}_in')} = "
                f"floor(({i} + 2*{p} - {d}*({k}-1) - 1) / {s} + 1) = {o}"
            )
        if o <= 0:
            # Only without ceil_mode is an empty output the same as the window not fitting.
            hint = (
                ""
                if ceil_mode
                else f" the padded input ({i} + 2*{p} = {i + 2 * p}) to be at least the "
                f"dilated window ({d}*({k}-1) + 1 = {d * (k - 1) + 1}), i.e."
            )
            raise ValueError(
                f"pool2d output {'height' if axis == 'H' else 'width'} would be {o}: expected"
                f"{hint} an output of at least 1; got input_size={input_size!r}. "
                f"{axis}_out = {shown}"
            )
        out.append(o)
    return out[0], out[1]


def conv2d_params(
    in_channels: int,
    out_channels: int,
    kernel_size: IntPair,
    groups: int = 1,
    bias: bool = True,
) -> int:
    """Number of parameters of ``nn.Conv2d`` with these arguments.

    The notes' ``((m*n*d) + 1) * k`` for an ``m x n`` kernel, ``d`` input and ``k``
    output channels, where with groups each filter sees ``d = in_channels / groups``::

        params = (kernel_h*kernel_w*in_channels/groups + (1 if bias else 0)) * out_channels

    Raises:
        ValueError: for a non-positive size, a one-element ``kernel_size`` (which
            ``nn.Conv2d`` builds but cannot run), channels not divisible by ``groups``, or
            a ``bias`` other than a bool (PyTorch takes any truthy value).

    Example:
        >>> conv2d_params(1, 6, 5)  # LeNet-5's C1: (5*5*1 + 1) * 6
        156
        >>> conv2d_params(32, 32, 3, groups=32, bias=False)  # a depthwise 3x3
        288
    """
    cin = _count(in_channels, "in_channels")
    cout = _count(out_channels, "out_channels")
    g = _count(groups, "groups")
    kh, kw = _pair(kernel_size, "kernel_size", 1, one=False)
    for name, value in (("in_channels", cin), ("out_channels", cout)):
        if value % g:
            raise ValueError(
                f"{name} must be divisible by groups (as in PyTorch): expected a multiple of "
                f"{g}; got {name}={value}"
            )
    check_flag("bias", bias)
    return (kh * kw * cin // g + int(bias)) * cout


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Number of parameters of ``nn.Linear``: the notes' ``c*p + c``.

    With ``p`` input and ``c`` output features::

        params = in_features*out_features + (out_features if bias else 0)

    Raises:
        ValueError: for a non-positive size, or a ``bias`` other than a bool.

    Example:
        >>> linear_params(120, 84)  # LeNet-5's F6
        10164
    """
    p = _count(in_features, "in_features")
    c = _count(out_features, "out_features")
    check_flag("bias", bias)
    return c * p + (c if bias else 0)
