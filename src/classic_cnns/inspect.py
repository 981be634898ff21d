"""Inspection: output sizes, parameter counts and a layer-by-layer model summary.

The formula functions mirror PyTorch's layers argument for argument, so they answer
"what size comes out of this layer?" and "how many weights does it hold?" without
building anything; :func:`summary` runs one real forward pass and checks every
convolution and pooling layer against them.

The formulas, per spatial dimension (the source notes' output-size and parameter rules,
generalised to dilation, groups and PyTorch's ``ceil_mode``)::

    conv:  H_out = floor((H_in + 2*padding - dilation*(kernel_size-1) - 1) / stride + 1)
    pool:  the same, with ceil instead of floor when ceil_mode=True
    conv params:   ((kernel_h*kernel_w*in_channels/groups) + 1) * out_channels
    linear params: in_features*out_features + out_features

Example:
    >>> from classic_cnns.inspect import conv2d_output_size, pool2d_output_size
    >>> conv2d_output_size(32, kernel_size=5)      # LeNet-5's C1
    (28, 28)
    >>> pool2d_output_size((28, 28), kernel_size=2)  # and S2
    (14, 14)
"""

from __future__ import annotations

import math
import operator
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

__all__ = [
    "LayerRow",
    "ModelSummary",
    "conv2d_output_size",
    "conv2d_params",
    "linear_params",
    "pool2d_output_size",
    "summary",
]

IntPair = int | Sequence[int]
Pair = tuple[int, int]

_CONV_FORMULA = "floor((H_in + 2*padding - dilation*(kernel_size-1) - 1) / stride + 1)"
_POOL_FORMULA_CEIL = "ceil((H_in + 2*padding - dilation*(kernel_size-1) - 1) / stride) + 1"


# --------------------------------------------------------------------------------------
# Formula functions
# --------------------------------------------------------------------------------------


def _pair(value: Any, name: str, minimum: int) -> Pair:
    """``value`` as an ``(h, w)`` pair of ints >= ``minimum``, as PyTorch's ``_pair`` reads it."""
    expected = f"{name} must be an int or an (h, w) pair of ints >= {minimum}; got {value!r}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = list(value)
        # PyTorch accepts a one-element sequence for both dimensions, as for an int.
        if len(items) == 1:
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
    """
    size = _pair(input_size, "input_size", 1)
    kernel = _pair(kernel_size, "kernel_size", 1)
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
            the kernel), or if the output would be empty; the message fills the formula
            in with the numbers.

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
        ValueError: for a non-positive size, or channels not divisible by ``groups``.

    Example:
        >>> conv2d_params(1, 6, 5)  # LeNet-5's C1: (5*5*1 + 1) * 6
        156
        >>> conv2d_params(32, 32, 3, groups=32, bias=False)  # a depthwise 3x3
        288
    """
    cin = _count(in_channels, "in_channels")
    cout = _count(out_channels, "out_channels")
    g = _count(groups, "groups")
    kh, kw = _pair(kernel_size, "kernel_size", 1)
    for name, value in (("in_channels", cin), ("out_channels", cout)):
        if value % g:
            raise ValueError(
                f"{name} must be divisible by groups (as in PyTorch): expected a multiple of "
                f"{g}; got {name}={value}"
            )
    return (kh * kw * cin // g + int(bool(bias))) * cout


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Number of parameters of ``nn.Linear``: the notes' ``c*p + c``.

    With ``p`` input and ``c`` output features::

        params = in_features*out_features + (out_features if bias else 0)

    Raises:
        ValueError: for a non-positive size.

    Example:
        >>> linear_params(120, 84)  # LeNet-5's F6
        10164
    """
    p = _count(in_features, "in_features")
    c = _count(out_features, "out_features")
    return c * p + (c if bias else 0)


# --------------------------------------------------------------------------------------
# Receptive fields
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    """Receptive field of every element of one tensor, relative to the input image.

    ``rf`` is the field's size in input pixels, ``jump`` the distance in input pixels
    between neighbouring elements (the product of strides so far) and ``span`` the input
    pixels the whole feature map covers, ``rf + (size - 1) * jump``; it is kept through
    flattening and adaptive pooling, so a linear layer knows how much it sees.
    """

    rf: Pair
    jump: Pair
    span: Pair

    def window(self, kernel: Pair, stride: Pair, dilation: Pair, size: Pair) -> _Field:
        # The standard recurrence: rf += (effective kernel - 1) * jump; jump *= stride.
        rf = tuple(
            r + d * (k - 1) * j
            for r, k, d, j in zip(self.rf, kernel, dilation, self.jump, strict=True)
        )
        jump = tuple(j * s for j, s in zip(self.jump, stride, strict=True))
        span = tuple(r + (n - 1) * j for r, n, j in zip(rf, size, jump, strict=True))
        return _Field(rf, jump, span)  # type: ignore[arg-type]

    def whole(self) -> _Field:
        # A layer that sees the whole map.
        return _Field(self.span, self.jump, self.span)


def _max_field(fields: list[_Field]) -> _Field:
    if len(fields) == 1:
        return fields[0]
    return _Field(
        (max(f.rf[0] for f in fields), max(f.rf[1] for f in fields)),
        (max(f.jump[0] for f in fields), max(f.jump[1] for f in fields)),
        (max(f.span[0] for f in fields), max(f.span[1] for f in fields)),
    )


def _tensors(obj: Any) -> Iterator[Tensor]:
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, list | tuple):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


_MAX_POOLS = {"max_pool2d", "_max_pool2d", "max_pool2d_with_indices"}
_ADAPTIVE_POOLS = {
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "_adaptive_max_pool2d",
    "adaptive_max_pool2d_with_indices",
}
_REDUCTIONS = {"mean", "sum", "amax", "amin", "max", "min", "logsumexp"}


class _FieldTracker(TorchFunctionMode):
    """Follows the receptive field of every tensor through every torch operation.

    Module hooks alone see only modules; this mode also sees the functional operations
    between them (``torch.cat`` in Inception and DenseNet, the residual ``+`` in ResNet,
    ``F.adaptive_avg_pool2d`` in a ``forward``), so each tensor gets its own field:

    * convolutions and max/average pooling apply the standard recurrence;
    * adaptive pooling is a pool with kernel ``ceil(in/out)`` and stride
      ``max(1, in // out)`` (exact for global pooling and whenever ``out`` divides ``in``);
    * a linear layer on a flattened map, and a mean/sum/max over both spatial
      dimensions, sees the whole map;
    * any other operation is treated as pointwise: its output takes the elementwise
      maximum of its inputs' fields, which is exact for concatenation and addition.
    """

    def __init__(self) -> None:
        super().__init__()
        # id -> (weak reference, field); the weak reference guards against a reused id.
        self._fields: dict[int, tuple[weakref.ref[Tensor], _Field]] = {}

    def get(self, tensor: Tensor) -> _Field | None:
        entry = self._fields.get(id(tensor))
        if entry is None or entry[0]() is not tensor:
            return None
        return entry[1]

    def set(self, tensor: Tensor, field: _Field) -> None:
        self._fields[id(tensor)] = (weakref.ref(tensor), field)

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        outputs = list(_tensors(out))
        if outputs:
            try:
                field = self._derive(getattr(func, "__name__", ""), args, kwargs, outputs[0])
            except Exception:
                # Bookkeeping must never break the user's forward pass; an operation we
                # cannot follow leaves its output's field unknown ("-" in the table).
                field = None
            if field is not None:
                for tensor in outputs:
                    self.set(tensor, field)
        return out

    def _derive(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Tensor
    ) -> _Field | None:
        fields = [f for t in _tensors((args, kwargs)) if (f := self.get(t)) is not None]
        if not fields:
            return None
        field = _max_field(fields)
        source = args[0] if args and isinstance(args[0], Tensor) else None
        spatial = out.ndim >= 3 and source is not None and source.ndim >= 3
        out_size: Pair = (out.shape[-2], out.shape[-1]) if out.ndim >= 3 else (1, 1)
        if spatial and source is not None:
            base = self.get(source) or field
            if name == "conv2d":
                weight = args[1]
                kernel = (weight.shape[-2], weight.shape[-1])
                stride = _pair(_arg(args, kwargs, 3, "stride", 1), "stride", 1)
                dilation = _pair(_arg(args, kwargs, 5, "dilation", 1), "dilation", 1)
                return base.window(kernel, stride, dilation, out_size)
            if name in _MAX_POOLS or name == "avg_pool2d":
                kernel = _pair(_arg(args, kwargs, 1, "kernel_size", 1), "kernel_size", 1)
                raw_stride = _arg(args, kwargs, 2, "stride", None)
                stride = kernel if raw_stride in (None, [], ()) else _pair(raw_stride, "stride", 1)
                dilation = (
                    _pair(_arg(args, kwargs, 4, "dilation", 1), "dilation", 1)
                    if name in _MAX_POOLS
                    else (1, 1)
                )
                return base.window(kernel, stride, dilation, out_size)
            if name in _ADAPTIVE_POOLS:
                size_in = (source.shape[-2], source.shape[-1])
                (ih, iw), (oh, ow) = size_in, out_size
                pooled = base.window(
                    (-(-ih // oh), -(-iw // ow)),
                    (max(1, ih // oh), max(1, iw // ow)),
                    (1, 1),
                    out_size,
                )
                # However the windows fall, together they cover the input map exactly.
                return _Field(pooled.rf, pooled.jump, base.span)
        if name == "linear" and source is not None and source.ndim == 2:
            return (self.get(source) or field).whole()
        if name in _REDUCTIONS and source is not None and source.ndim >= 3 and out.ndim < 3:
            return (self.get(source) or field).whole()
        return field


# --------------------------------------------------------------------------------------
# The summary
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerRow:
    """One executed call of a leaf module in a :class:`ModelSummary`.

    Attributes:
        name: Dotted name relative to the summarised network, e.g. ``"c1.0"``.
        type: Class name, e.g. ``"Conv2d"``.
        kernel_size: ``(h, w)`` for convolutions and pooling, else ``None``.
        stride: ``(h, w)`` for convolutions and pooling, else ``None``.
        padding: ``(h, w)`` (or ``"same"``/``"valid"``) for convolutions and pooling.
        dilation: ``(h, w)`` for convolutions and max pooling, else ``None``.
        output_shape: Shape of the output, batch dimension included.
        params: Parameters of the module; counted at its first call only, so a module
            called twice (a shared ReLU) shows 0 the second time.
        macs: Multiply-accumulates of this call, counted as torchinfo counts them.
        receptive_field: ``(h, w)`` input pixels that one output element sees, or
            ``None`` where it could not be followed.
        jump: ``(h, w)`` input pixels between neighbouring output elements.

    Example:
        >>> from classic_cnns import create_model
        >>> from classic_cnns.inspect import summary
        >>> row = summary(create_model("lenet5"), (1, 32, 32)).rows[0]
        >>> row.name, row.output_shape, row.params, row.receptive_field
        ('c1.0', (1, 6, 28, 28), 156, (5, 5))
    """

    name: str
    type: str
    kernel_size: Pair | None
    stride: Pair | None
    padding: Pair | str | None
    dilation: Pair | None
    output_shape: tuple[int, ...]
    params: int
    macs: int
    receptive_field: Pair | None
    jump: Pair | None


_HEADERS = {
    "name": "Layer",
    "type": "Type",
    "kernel_size": "Kernel",
    "stride": "Stride",
    "padding": "Padding",
    "dilation": "Dilation",
    "output_shape": "Output shape",
    "params": "Params",
    "macs": "MACs",
    "receptive_field": "RF",
    "jump": "Jump",
}
_NUMERIC = {"params", "macs"}


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key in _NUMERIC:
        return f"{value:,}"
    if key == "output_shape":
        return "[" + ", ".join(map(str, value)) + "]"
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return str(value)


def _human(number: float, units: tuple[str, ...] = ("", "K", "M", "G", "T")) -> str:
    scale = 0
    while abs(number) >= 1000 and scale < len(units) - 1:
        number /= 1000
        scale += 1
    return f"{number:.2f} {units[scale]}".rstrip() if scale else f"{number:,.0f}"


@dataclass(frozen=True)
class ModelSummary:
    """What :func:`summary` found: one row per executed leaf layer, and the totals.

    ``print`` it for an aligned text table, or use :meth:`to_markdown` and
    :meth:`to_rows`.

    Attributes:
        model_name: Class name of the summarised network.
        input_shape: Shape of the input tensor, ``(batch_size, C, H, W)``.
        rows: One :class:`LayerRow` per leaf-module call, in execution order.
        total_params: All parameters, ``sum(p.numel() for p in net.parameters())``
            (a shared parameter counts once; modules never called count too).
        trainable_params: Parameters with ``requires_grad``.
        total_macs: Multiply-accumulates of the forward pass for the whole batch.
        activation_bytes: Bytes of all leaf-layer outputs (in-place layers included, so an
            upper bound on what the forward pass keeps).

    Example:
        >>> from classic_cnns import create_model
        >>> from classic_cnns.inspect import summary
        >>> s = summary(create_model("lenet5"), (1, 32, 32))
        >>> s.total_params, s.total_macs, s.total_flops
        (61706, 423038, 846076)
    """

    model_name: str
    input_shape: tuple[int, ...]
    rows: tuple[LayerRow, ...]
    total_params: int
    trainable_params: int
    total_macs: int
    activation_bytes: int

    @property
    def non_trainable_params(self) -> int:
        """Parameters without ``requires_grad`` (frozen layers)."""
        return self.total_params - self.trainable_params

    @property
    def total_flops(self) -> int:
        """Floating-point operations, counted as 2 per multiply-accumulate."""
        return 2 * self.total_macs

    def to_rows(self) -> list[dict[str, Any]]:
        """The layer rows as dicts, one key per column (the :class:`LayerRow` fields).

        Example:
            >>> from classic_cnns import create_model
            >>> from classic_cnns.inspect import summary
            >>> rows = summary(create_model("lenet5"), (1, 32, 32)).to_rows()
            >>> rows[2]["type"], rows[2]["kernel_size"], rows[2]["stride"]
            ('AvgPool2d', (2, 2), (2, 2))
        """
        return [asdict(row) for row in self.rows]

    def _totals(self) -> list[tuple[str, str]]:
        return [
            ("Total params", f"{self.total_params:,}"),
            ("Trainable params", f"{self.trainable_params:,}"),
            ("Non-trainable params", f"{self.non_trainable_params:,}"),
            ("Total MACs", f"{self.total_macs:,} ({_human(self.total_macs)})"),
            ("Total FLOPs (2 x MACs)", f"{self.total_flops:,} ({_human(self.total_flops)})"),
            (
                "Activation size",
                f"{self.activation_bytes:,} bytes ({self.activation_bytes / 2**20:.2f} MiB)",
            ),
        ]

    def _title(self) -> str:
        return f"{self.model_name} summary for input {list(self.input_shape)}"

    def _table(self) -> tuple[list[str], list[list[str]]]:
        keys = list(_HEADERS)
        cells = [
            [_cell(k, getattr(row, k)) if k != "name" else (row.name or "(model)") for k in keys]
            for row in self.rows
        ]
        return [_HEADERS[k] for k in keys], cells

    def __str__(self) -> str:
        headers, cells = self._table()
        widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
        right = [k in _NUMERIC for k in _HEADERS]

        def line(values: list[str]) -> str:
            return "  ".join(
                v.rjust(w) if r else v.ljust(w)
                for v, w, r in zip(values, widths, right, strict=True)
            ).rstrip()

        rule_width = sum(widths) + 2 * (len(widths) - 1)
        totals = self._totals()
        label_width = max(len(label) for label, _ in totals)
        return "\n".join(
            [
                self._title(),
                "=" * rule_width,
                line(headers),
                "-" * rule_width,
                *(line(r) for r in cells),
                "=" * rule_width,
                *(f"{label + ':':<{label_width + 1}} {value}" for label, value in totals),
            ]
        )

    def to_markdown(self) -> str:
        """The summary as a GitHub-flavoured Markdown table followed by the totals.

        Example:
            >>> from classic_cnns import create_model
            >>> from classic_cnns.inspect import summary
            >>> print(summary(create_model("lenet5"), (1, 32, 32)).to_markdown())
            ... # doctest: +ELLIPSIS
            **LeNet5Net summary for input [1, 1, 32, 32]**
            <BLANKLINE>
            | Layer | Type | Kernel | ...
        """
        headers, cells = self._table()
        align = ["---:" if k in _NUMERIC else "---" for k in _HEADERS]
        lines = [
            f"**{self._title()}**",
            "",
            "| " + " | ".join(headers) + " |",
            "| " + " | ".join(align) + " |",
            *("| " + " | ".join(r) + " |" for r in cells),
            "",
            "| Total | Value |",
            "| --- | ---: |",
            *(f"| {label} | {value} |" for label, value in self._totals()),
        ]
        return "\n".join(lines)


def _geometry(module: nn.Module) -> tuple[Pair, Pair, Pair | str, Pair | None, bool] | None:
    """``(kernel, stride, padding, dilation, ceil_mode)`` of a conv or pooling module."""
    if isinstance(module, nn.Conv2d):
        padding = module.padding
        return (
            _pair(module.kernel_size, "kernel_size", 1),
            _pair(module.stride, "stride", 1),
            padding if isinstance(padding, str) else _pair(padding, "padding", 0),
            _pair(module.dilation, "dilation", 1),
            False,
        )
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        kernel = _pair(module.kernel_size, "kernel_size", 1)
        stride = module.stride
        no_stride = stride is None or (isinstance(stride, Sequence) and len(stride) == 0)
        return (
            kernel,
            kernel if no_stride else _pair(stride, "stride", 1),
            _pair(module.padding, "padding", 0),
            _pair(module.dilation, "dilation", 1) if isinstance(module, nn.MaxPool2d) else None,
            bool(module.ceil_mode),
        )
    return None


def _expected_size(module: nn.Module, size: Pair) -> Pair | None:
    geometry = _geometry(module)
    if geometry is None:
        return None
    kernel, stride, padding, dilation, ceil_mode = geometry
    if isinstance(module, nn.Conv2d):
        return conv2d_output_size(size, kernel, stride, padding, dilation or 1)
    assert not isinstance(padding, str)  # only convolutions take "same"/"valid"
    return pool2d_output_size(size, kernel, stride, padding, dilation or 1, ceil_mode)


def _macs(module: nn.Module, output: Tensor) -> int:
    # torchinfo's rule (torchinfo.layer_info.LayerInfo.calculate_macs), so totals agree:
    # every parameter named "weight" or "bias" costs one MAC per use.
    counted = sum(p.numel() for n, p in module.named_parameters() if n in ("weight", "bias"))
    if not counted or output.ndim == 0:
        return 0
    shape = tuple(output.shape)
    if isinstance(module, nn.modules.conv._ConvNd):
        # Each weight and bias element is used once per output position of each sample:
        # out_elements * (in_channels/groups * kh * kw + 1 for a bias).
        return counted * math.prod(shape[:1] + shape[2:])
    if isinstance(module, nn.Linear):
        # Once per row: the batch and any other leading dimensions (torchinfo counts only
        # the first; the two agree on the (N, features) inputs of classic CNNs).
        return counted * math.prod(shape[:-1])
    # BatchNorm and other layers with weights: once per sample, as torchinfo does.
    return counted * shape[0]


def _resolve(model: nn.Module) -> nn.Module:
    from classic_cnns.task import ImageClassifier

    # A classic_cnns model is a LightningModule around the plain network: summarise that,
    # so names read "c1.0" rather than "net.c1.0" and the input check is the formulas'.
    if isinstance(model, ImageClassifier):
        return model.net
    return model


def _in_channels(model: nn.Module, net: nn.Module) -> int | None:
    channels = getattr(model, "in_channels", None)
    if isinstance(channels, int) and not isinstance(channels, bool):
        return channels
    for module in net.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            return int(module.in_channels)
    return None


def summary(
    model: nn.Module,
    input_size: Sequence[int],
    *,
    batch_size: int = 1,
    device: str | torch.device = "cpu",
) -> ModelSummary:
    """Summarise a network layer by layer with one forward pass of zeros.

    The model runs in eval mode under ``torch.no_grad()`` with hooks on every leaf module
    (its training flags are restored afterwards; the model is not moved). Every
    ``Conv2d``, ``MaxPool2d`` and ``AvgPool2d`` is first checked with
    :func:`conv2d_output_size` / :func:`pool2d_output_size`, so an input that is too
    small fails with the layer and the formula rather than PyTorch's message, and its
    real output is compared with the formula's.

    Counting rules:

    * Parameters: ``total_params`` is ``sum(p.numel() for p in net.parameters())``; a
      module that the forward pass never calls (GoogLeNet's auxiliary heads in eval mode)
      counts there but has no row.
    * MACs follow torchinfo's ``total_mult_adds`` exactly: a convolution costs
      ``out_elements * (in_channels/groups * kh * kw + 1 if bias)`` (torchinfo counts the
      bias add as one MAC per output element); a linear layer
      ``rows * (in_features * out_features + out_features)``; a layer with other weights
      (BatchNorm: its affine ``weight`` and ``bias``) ``batch * params``; activations,
      pooling and dropout 0. MACs are counted per call.
    * Receptive field and jump (cumulative stride) use the standard recurrence
      ``rf += dilation*(kernel-1)*jump; jump *= stride`` through convolutions and
      pooling. They are followed per tensor through every torch operation, so for
      branching networks (Inception, ResNet, DenseNet) each branch has its own field and
      where branches meet (``torch.cat``, ``+``) the output takes the largest. Adaptive
      pooling is a pool with kernel ``ceil(in/out)`` and stride ``in // out``; a linear
      layer on a flattened map, or a spatial mean, sees the whole map. Fields are not
      clipped to the image (as in the usual tables, they may exceed it).

    Args:
        model: Any ``nn.Module``. A classic_cnns model (an ``ImageClassifier``) is
            summarised through its plain network ``.net``, with names relative to it;
            other LightningModules are run as they are.
        input_size: ``(C, H, W)``, or ``(H, W)`` to take ``C`` from the model (its
            ``in_channels``, or the first convolution's).
        batch_size: Batch dimension of the input (MACs and activations scale with it).
        device: Device of the input; the model must already be there.

    Returns:
        A :class:`ModelSummary`.

    Raises:
        ValueError: for a malformed ``input_size``, an input with the wrong number of
            channels, or one too small for some layer (the message names the layer and
            fills its formula in).

    Example:
        >>> from classic_cnns import create_model
        >>> from classic_cnns.inspect import summary
        >>> s = summary(create_model("lenet5"), (1, 32, 32))
        >>> [(r.name, r.output_shape[1:]) for r in s.rows if r.type == "Conv2d"]
        [('c1.0', (6, 28, 28)), ('c3.0', (16, 10, 10)), ('c5.0', (120, 1, 1))]
        >>> s.total_params
        61706
    """
    net = _resolve(model)
    if not isinstance(net, nn.Module):
        raise ValueError(f"model must be an nn.Module; got {type(model).__name__}")
    shape = _input_shape(model, net, input_size, batch_size)
    device = torch.device(device)
    params = list(net.parameters())
    floating = [p for p in params if p.is_floating_point()]
    dtype = floating[0].dtype if floating else torch.get_default_dtype()
    elsewhere = {str(p.device) for p in params if p.device.type != device.type}
    if elsewhere:
        raise ValueError(
            f"the model's parameters are on {sorted(elsewhere)} but device={str(device)!r}: "
            f"pass device= the model's device, or move the model with model.to({str(device)!r})"
        )

    names = {module: name for name, module in net.named_modules()}
    leaves = [m for m in names if next(iter(m.children()), None) is None]
    rows: list[LayerRow] = []
    seen: set[nn.Module] = set()
    expected: dict[int, list[Pair | None]] = {}
    active: list[tuple[str, nn.Module, tuple[int, ...] | None]] = []
    activation_bytes = 0
    tracker = _FieldTracker()

    # Errors raised on purpose inside the forward pass, passed on untouched.
    raised: list[BaseException] = []

    def own(error: BaseException) -> BaseException:
        raised.append(error)
        return error

    def describe(module: nn.Module) -> str:
        return f"layer {names[module] or '(model)'!r} ({type(module).__name__})"

    def pre_hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        x = next(_tensors(args), None)
        active.append((names[module], module, tuple(x.shape) if x is not None else None))
        if module not in leaves_set or x is None:
            return
        if isinstance(module, nn.Conv2d) and x.ndim >= 3 and x.shape[-3] != module.in_channels:
            raise own(
                ValueError(
                    f"{describe(module)} expects {module.in_channels} input channel(s); got an "
                    f"input of shape {tuple(x.shape)} (summary input {list(shape)}). Pass "
                    f"input_size with C={module.in_channels} or build the model for "
                    f"{x.shape[-3]} channels"
                )
            )
        out = None
        if _geometry(module) is not None and x.ndim >= 3:
            size: Pair = (x.shape[-2], x.shape[-1])
            try:
                # On a huge input only invalid arguments can fail: tell them apart.
                _expected_size(module, (2**31, 2**31))
            except ValueError as error:
                raise own(
                    ValueError(f"{describe(module)} has invalid arguments: {error}")
                ) from None
            try:
                out = _expected_size(module, size)
            except ValueError as error:
                raise own(
                    ValueError(
                        f"input {list(shape[1:])} is too small for {type(net).__name__}: "
                        f"{describe(module)} gets a {size[0]}x{size[1]} map. {error}"
                    )
                ) from None
        expected.setdefault(id(module), []).append(out)

    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        nonlocal activation_bytes
        active.pop()
        if module not in leaves_set:
            return
        outputs = list(_tensors(output))
        first = outputs[0] if outputs else None
        want = expected[id(module)].pop() if expected.get(id(module)) else None
        if want is not None and first is not None:
            got = (first.shape[-2], first.shape[-1])
            if got != want:
                raise own(
                    RuntimeError(
                        f"{describe(module)}: the formula gives {want[0]}x{want[1]} but the layer "
                        f"produced {got[0]}x{got[1]} (input {args[0].shape}). This is a bug in "
                        "classic_cnns.inspect; please report it"
                    )
                )
        activation_bytes += sum(t.numel() * t.element_size() for t in outputs)
        geometry = _geometry(module)
        kernel, stride, padding, dilation = geometry[:4] if geometry else (None,) * 4
        field = tracker.get(first) if first is not None else None
        rows.append(
            LayerRow(
                name=names[module],
                type=type(module).__name__,
                kernel_size=kernel,  # type: ignore[arg-type]
                stride=stride,  # type: ignore[arg-type]
                padding=padding,  # type: ignore[arg-type]
                dilation=dilation,  # type: ignore[arg-type]
                output_shape=tuple(first.shape) if first is not None else (),
                params=0 if module in seen else sum(p.numel() for p in module.parameters()),
                macs=_macs(module, first) if first is not None else 0,
                receptive_field=field.rf if field else None,
                jump=field.jump if field else None,
            )
        )
        seen.add(module)

    leaves_set = set(leaves)
    handles = []
    for module in names:
        handles.append(module.register_forward_pre_hook(pre_hook))
        handles.append(module.register_forward_hook(hook))
    training = {module: module.training for module in net.modules()}
    x = torch.zeros(shape, dtype=dtype, device=device)
    tracker.set(x, _Field((1, 1), (1, 1), (shape[-2], shape[-1])))
    try:
        net.eval()
        with torch.no_grad(), tracker:
            net(x)
    except (RuntimeError, ValueError, TypeError, IndexError) as error:
        # Re-raise with the failing layer named, keeping the type; subclasses (such as
        # torch.OutOfMemoryError) and our own errors pass unchanged.
        wrappable = type(error) in (RuntimeError, ValueError, TypeError, IndexError)
        if not active or not wrappable or any(error is e for e in raised):
            raise
        _, module, in_shape = active[-1]
        raise type(error)(
            f"the forward pass of {type(net).__name__} on input {list(shape)} failed in "
            f"{describe(module)} with input shape {in_shape}: {error}"
        ) from error
    finally:
        for handle in handles:
            handle.remove()
        for module, flag in training.items():
            module.training = flag

    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return ModelSummary(
        model_name=type(net).__name__,
        input_shape=shape,
        rows=tuple(rows),
        total_params=total,
        trainable_params=trainable,
        total_macs=sum(row.macs for row in rows),
        activation_bytes=activation_bytes,
    )


def _input_shape(
    model: nn.Module, net: nn.Module, input_size: Sequence[int], batch_size: int
) -> tuple[int, int, int, int]:
    batch = _count(batch_size, "batch_size")
    expected = f"input_size must be (C, H, W) or (H, W) of positive ints; got {input_size!r}"
    if not isinstance(input_size, Sequence) or isinstance(input_size, str):
        raise ValueError(expected)
    if len(input_size) not in (2, 3):
        raise ValueError(expected)
    try:
        sizes = [_count(v, "input_size") for v in input_size]
    except ValueError:
        raise ValueError(expected) from None
    if len(sizes) == 2:
        channels = _in_channels(model, net)
        if channels is None:
            raise ValueError(
                f"cannot tell the input channels of {type(net).__name__}: expected "
                f"input_size=(C, H, W); got (H, W) = {tuple(input_size)!r}"
            )
        sizes.insert(0, channels)
    return (batch, sizes[0], sizes[1], sizes[2])
