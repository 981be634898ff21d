"""Receptive fields, followed tensor by tensor through a forward pass.

:class:`FieldTracker` is a ``TorchFunctionMode``: inside it every torch operation is seen,
functional ones included, and each output tensor is given the :class:`Field` its inputs
imply. :func:`~classic_cnns.inspection.summary` reads the field of every layer's output
from it.

Example:
    >>> import torch
    >>> from classic_cnns.inspection.receptive_field import Field, FieldTracker
    >>> conv = torch.nn.Conv2d(1, 1, kernel_size=5)
    >>> tracker = FieldTracker()
    >>> x = torch.zeros(1, 1, 32, 32)
    >>> tracker.set(x, Field.of_input(32, 32))
    >>> with tracker:
    ...     y = torch.nn.functional.max_pool2d(conv(x), 2)
    >>> tracker.get(y)  # LeNet-5's S2: 5 + 1, every second pixel
    Field(rf=(6, 6), jump=(2, 2), span=(32, 32), start=(0, 0))
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor
from torch.overrides import TorchFunctionMode

from classic_cnns.inspection.formulas import Pair, _pair

__all__ = ["Field", "FieldTracker", "tensors_in"]

_MAX_POOLS = {"max_pool2d", "_max_pool2d", "max_pool2d_with_indices"}
_ADAPTIVE_POOLS = {
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "_adaptive_max_pool2d",
    "adaptive_max_pool2d_with_indices",
}
_REDUCTIONS = {"mean", "sum", "amax", "amin", "max", "min", "logsumexp"}


@dataclass(frozen=True)
class Field:
    """Receptive field of every element of one tensor, relative to the input image.

    Attributes:
        rf: The field's ``(h, w)`` size in input pixels.
        jump: Input pixels between neighbouring elements (the product of strides so far).
        span: Input pixels the whole feature map covers, ``rf + (size - 1) * jump``. It is
            kept through flattening and adaptive pooling, so a linear layer knows how much
            it sees.
        start: The input pixel where the first element's field begins (negative where
            padding lies before the image): where branches meet, their fields are joined
            by where they lie, not only by their sizes.

    Example:
        >>> Field.of_input(32, 32).window((5, 5), (1, 1), (1, 1), size=(28, 28))
        Field(rf=(5, 5), jump=(1, 1), span=(32, 32), start=(0, 0))
    """

    rf: Pair
    jump: Pair
    span: Pair
    start: Pair = (0, 0)

    @classmethod
    def of_input(cls, height: int, width: int) -> Field:
        """The field of an input image: each pixel sees itself.

        Example:
            >>> Field.of_input(28, 28)
            Field(rf=(1, 1), jump=(1, 1), span=(28, 28), start=(0, 0))
        """
        return cls((1, 1), (1, 1), (height, width))

    def window(
        self, kernel: Pair, stride: Pair, dilation: Pair, size: Pair, padding: Pair = (0, 0)
    ) -> Field:
        """The field after a sliding window (convolution or pooling) with output ``size``;
        ``padding`` (the rows and columns added before the map) moves where it begins.

        Example:
            >>> Field.of_input(32, 32).window((3, 3), (1, 1), (2, 2), size=(28, 28))  # dilated
            Field(rf=(5, 5), jump=(1, 1), span=(32, 32), start=(0, 0))
            >>> Field.of_input(32, 32).window((3, 3), (2, 2), (1, 1), (16, 16), padding=(1, 1))
            Field(rf=(3, 3), jump=(2, 2), span=(33, 33), start=(-1, -1))
        """
        # The standard recurrence: rf += (effective kernel - 1) * jump; jump *= stride;
        # start -= padding * jump.
        (rh, rw), (jh, jw) = self.rf, self.jump
        rf = (rh + dilation[0] * (kernel[0] - 1) * jh, rw + dilation[1] * (kernel[1] - 1) * jw)
        jump = (jh * stride[0], jw * stride[1])
        span = (rf[0] + (size[0] - 1) * jump[0], rf[1] + (size[1] - 1) * jump[1])
        return Field(rf, jump, span, self.moved((-padding[0], -padding[1])))

    def moved(self, pixels: Pair) -> Pair:
        """Where the field begins once the map's first element is ``pixels`` elements on
        (a slice's start; negative for padding added before the map).

        Example:
            >>> Field((3, 3), (2, 2), (17, 17)).moved((1, -2))
            (2, -4)
        """
        return (self.start[0] + pixels[0] * self.jump[0], self.start[1] + pixels[1] * self.jump[1])

    def whole(self) -> Field:
        """The field of a layer that sees the whole map.

        Example:
            >>> Field((5, 5), (2, 2), (32, 32)).whole()  # a linear layer on the flattened map
            Field(rf=(32, 32), jump=(2, 2), span=(32, 32), start=(0, 0))
        """
        return Field(self.span, self.jump, self.span, self.start)

    @staticmethod
    def widest(fields: list[Field]) -> Field:
        """Where tensors meet (``torch.cat``, ``+``): each element sees what it sees in any
        of them, the union of their fields (exact where their jumps agree, as they do where
        maps of one size meet; else the largest of each measure).

        Example:
            >>> Field.widest([Field((1, 1), (1, 1), (8, 8)), Field((5, 5), (1, 1), (8, 8))])
            Field(rf=(5, 5), jump=(1, 1), span=(8, 8), start=(0, 0))
            >>> Field.widest([Field((2, 2), (2, 2), (10, 10), (-1, -1)),  # windows [2i-1, 2i]
            ...               Field((2, 2), (2, 2), (10, 10))])           # and [2i, 2i+1]
            Field(rf=(3, 3), jump=(2, 2), span=(11, 11), start=(-1, -1))
        """
        if len(fields) == 1:
            return fields[0]
        rf, jump, span, start = [], [], [], []
        for d in (0, 1):
            jumps = {f.jump[d] for f in fields}
            first = min(f.start[d] for f in fields)
            if len(jumps) == 1:  # the union: from the first start to the last end
                rf.append(max(f.start[d] + f.rf[d] for f in fields) - first)
                span.append(max(f.start[d] + f.span[d] for f in fields) - first)
            else:
                rf.append(max(f.rf[d] for f in fields))
                span.append(max(f.span[d] for f in fields))
            jump.append(max(jumps))
            start.append(first)
        return Field((rf[0], rf[1]), (jump[0], jump[1]), (span[0], span[1]), (start[0], start[1]))


def tensors_in(obj: Any) -> Iterator[Tensor]:
    """The tensors in ``obj``, searching lists, tuples and dict values depth first.

    Example:
        >>> import torch
        >>> len(list(tensors_in(([torch.zeros(1)], {"a": torch.ones(2)}, 3))))
        2
    """
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, list | tuple):
        for item in obj:
            yield from tensors_in(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from tensors_in(item)


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    """An argument of a torch function, given by position or by keyword."""
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _adaptive_window(size: int, out: int) -> int:
    # The widest of adaptive pooling's windows [floor(i*size/out), ceil((i+1)*size/out)):
    # ceil(size/out) where out divides size, else up to one more (11 -> 6: 2, 3, 3, 3, 3, 2).
    return max(-(-(i + 1) * size // out) - i * size // out for i in range(out))


class FieldTracker(TorchFunctionMode):
    """Follows the receptive field of every tensor through every torch operation.

    Module hooks alone see only modules; this mode also sees the functional operations
    between them (``torch.cat`` in Inception and DenseNet, the residual ``+`` in ResNet,
    ``F.adaptive_avg_pool2d`` in a ``forward``), so each tensor gets its own field:

    * convolutions and max/average/power-average pooling apply the standard recurrence;
    * adaptive pooling is a pool with the kernel of its widest window (``in/out`` where
      ``out`` divides ``in``, else up to ``ceil(in/out) + 1``) and stride
      ``max(1, in // out)`` (exact for global pooling and whenever ``out`` divides ``in``);
    * a linear layer on a flattened map, and a mean/sum/max over both spatial
      dimensions, sees the whole map;
    * strided slicing (``x[:, :, ::2, ::2]``) multiplies the jump by its steps;
    * padding (``F.pad``) moves where the fields begin;
    * any other operation that keeps the map's size is treated as pointwise: its output's
      elements see the union of what its inputs' elements see, which is exact for
      concatenation and addition (branches whose windows lie apart included);
    * any other operation that changes the map's size (``interpolate``,
      ``conv_transpose2d``) cannot be followed.

    Give the input its field with :meth:`set` before the forward pass; an operation that
    cannot be followed leaves its output without one (:meth:`get` returns ``None``).

    Example:
        >>> import torch
        >>> tracker = FieldTracker()
        >>> x = torch.zeros(1, 3, 8, 8)
        >>> tracker.set(x, Field.of_input(8, 8))
        >>> with tracker:
        ...     y = torch.cat([x, torch.nn.functional.avg_pool2d(x, 3, 1, 1)], dim=1)
        >>> tracker.get(y).rf
        (3, 3)
    """

    def __init__(self) -> None:
        super().__init__()
        # id -> (weak reference, field); the weak reference guards against a reused id.
        self._fields: dict[int, tuple[weakref.ref[Tensor], Field]] = {}

    def get(self, tensor: Tensor) -> Field | None:
        """The field of ``tensor``, or ``None`` if it has none.

        Example:
            >>> import torch
            >>> tracker, x = FieldTracker(), torch.zeros(1, 1, 8, 8)
            >>> tracker.set(x, Field.of_input(8, 8))
            >>> tracker.get(x).span, tracker.get(x.clone())  # the copy was made untracked
            ((8, 8), None)
        """
        entry = self._fields.get(id(tensor))
        if entry is None or entry[0]() is not tensor:
            return None
        return entry[1]

    def set(self, tensor: Tensor, field: Field) -> None:
        """Give ``tensor`` its field (the input's, before the forward pass).

        Example:
            >>> import torch
            >>> tracker, x = FieldTracker(), torch.zeros(1, 3, 32, 32)
            >>> tracker.set(x, Field.of_input(32, 32))
            >>> tracker.get(x)
            Field(rf=(1, 1), jump=(1, 1), span=(32, 32), start=(0, 0))
        """
        self._fields[id(tensor)] = (weakref.ref(tensor), field)

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        outputs = list(tensors_in(out))
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
    ) -> Field | None:
        """The field of ``out``, the result of the torch function ``name``."""
        fields = [f for t in tensors_in((args, kwargs)) if (f := self.get(t)) is not None]
        if not fields:
            return None
        field = Field.widest(fields)
        source = args[0] if args and isinstance(args[0], Tensor) else None
        if source is None:
            return field
        base = self.get(source) or field
        if out.ndim >= 3 and source.ndim >= 3:
            windowed = self._window(name, args, kwargs, source, out, base)
            if windowed is not None:
                return windowed
        if name == "linear" and source.ndim == 2:
            return base.whole()
        if name in _REDUCTIONS and source.ndim >= 3:
            # Over both spatial dimensions, kept (SE's x.mean((2, 3), keepdim=True)) or not.
            spatial = out.ndim >= 3 and out.shape[-2:] == (1, 1) != source.shape[-2:]
            if out.ndim < 3 or spatial:
                return base.whole()
        if name == "pad" and out.ndim >= 3:
            return _padded(base, _arg(args, kwargs, 1, "pad", ()))
        if out.ndim >= 3:
            maps = [t for t in tensors_in((args, kwargs)) if t.ndim >= 3]
            if maps and all(t.shape[-2:] != out.shape[-2:] for t in maps):
                # The map's size changed, and not by a window we know: a strided slice, or
                # an operation we cannot follow.
                return _sliced(base, args, source, out) if name == "__getitem__" else None
        return field

    @staticmethod
    def _window(
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        source: Tensor,
        out: Tensor,
        base: Field,
    ) -> Field | None:
        """The field after a convolution or a pooling, or ``None`` for any other function."""
        out_size: Pair = (out.shape[-2], out.shape[-1])
        if name == "conv2d":
            weight = args[1]
            kernel = (weight.shape[-2], weight.shape[-1])
            stride = _pair(_arg(args, kwargs, 3, "stride", 1), "stride", 1)
            dilation = _pair(_arg(args, kwargs, 5, "dilation", 1), "dilation", 1)
            padding = _arg(args, kwargs, 4, "padding", 0)
            if padding == "same":  # torch puts the smaller half before
                padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel, strict=True))
            padding = _pair(0 if padding == "valid" else padding, "padding", 0)
            return base.window(kernel, stride, dilation, out_size, padding)
        if name in _MAX_POOLS or name in ("avg_pool2d", "lp_pool2d"):
            at = 2 if name == "lp_pool2d" else 1  # lp_pool2d(input, norm_type, kernel_size, ...)
            kernel = _pair(_arg(args, kwargs, at, "kernel_size", 1), "kernel_size", 1)
            raw_stride = _arg(args, kwargs, at + 1, "stride", None)
            stride = kernel if raw_stride in (None, [], ()) else _pair(raw_stride, "stride", 1)
            dilation = (
                _pair(_arg(args, kwargs, 4, "dilation", 1), "dilation", 1)
                if name in _MAX_POOLS
                else (1, 1)
            )
            padding = (
                (0, 0) if at == 2 else _pair(_arg(args, kwargs, 3, "padding", 0), "padding", 0)
            )
            return base.window(kernel, stride, dilation, out_size, padding)
        if name in _ADAPTIVE_POOLS:
            (ih, iw), (oh, ow) = (source.shape[-2], source.shape[-1]), out_size
            kernel = (_adaptive_window(ih, oh), _adaptive_window(iw, ow))
            pooled = base.window(kernel, (max(1, ih // oh), max(1, iw // ow)), (1, 1), out_size)
            # However the windows fall, together they cover the input map exactly.
            return Field(pooled.rf, pooled.jump, base.span)
        return None


def _sliced(base: Field, args: tuple[Any, ...], source: Tensor, out: Tensor) -> Field | None:
    """The field after ``source[index]`` when the index slices the last two dimensions."""
    index = args[1] if len(args) > 1 else None
    items = index if isinstance(index, tuple) else (index,)
    if not all(isinstance(i, slice | int) or i is Ellipsis for i in items):
        return None  # a new axis, a tensor index: not followed
    if Ellipsis in items:
        k = items.index(Ellipsis)
        items = items[:k] + (slice(None),) * (source.ndim - len(items) + 1) + items[k + 1 :]
    items = items + (slice(None),) * (source.ndim - len(items))
    h, w = items[source.ndim - 2], items[source.ndim - 1]
    if not (isinstance(h, slice) and isinstance(w, slice)):
        return None
    # A window of one pixel with the slice's steps as its stride, from the slice's start.
    first = (-h.indices(source.shape[-2])[0], -w.indices(source.shape[-1])[0])
    size = (out.shape[-2], out.shape[-1])
    return base.window((1, 1), (h.step or 1, w.step or 1), (1, 1), size, first)


def _padded(base: Field, pad: Sequence[int]) -> Field:
    """The field after ``F.pad(x, (left, right, top, bottom, ...))``: the map's first
    element moves ``left`` columns and ``top`` rows before it (after it, for a crop)."""
    left, _, top, _ = [*pad, 0, 0, 0, 0][:4]
    return Field(base.rf, base.jump, base.span, base.moved((-top, -left)))
