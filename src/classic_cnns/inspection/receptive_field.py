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
    Field(rf=(6, 6), jump=(2, 2), span=(32, 32))
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
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

    Example:
        >>> Field.of_input(32, 32).window((5, 5), (1, 1), (1, 1), size=(28, 28))
        Field(rf=(5, 5), jump=(1, 1), span=(32, 32))
    """

    rf: Pair
    jump: Pair
    span: Pair

    @classmethod
    def of_input(cls, height: int, width: int) -> Field:
        """The field of an input image: each pixel sees itself.

        Example:
            >>> Field.of_input(28, 28)
            Field(rf=(1, 1), jump=(1, 1), span=(28, 28))
        """
        return cls((1, 1), (1, 1), (height, width))

    def window(self, kernel: Pair, stride: Pair, dilation: Pair, size: Pair) -> Field:
        """The field after a sliding window (convolution or pooling) with output ``size``.

        Example:
            >>> Field.of_input(32, 32).window((3, 3), (1, 1), (2, 2), size=(28, 28))  # dilated
            Field(rf=(5, 5), jump=(1, 1), span=(32, 32))
        """
        # The standard recurrence: rf += (effective kernel - 1) * jump; jump *= stride.
        (rh, rw), (jh, jw) = self.rf, self.jump
        rf = (rh + dilation[0] * (kernel[0] - 1) * jh, rw + dilation[1] * (kernel[1] - 1) * jw)
        jump = (jh * stride[0], jw * stride[1])
        span = (rf[0] + (size[0] - 1) * jump[0], rf[1] + (size[1] - 1) * jump[1])
        return Field(rf, jump, span)

    def whole(self) -> Field:
        """The field of a layer that sees the whole map.

        Example:
            >>> Field((5, 5), (2, 2), (32, 32)).whole()  # a linear layer on the flattened map
            Field(rf=(32, 32), jump=(2, 2), span=(32, 32))
        """
        return Field(self.span, self.jump, self.span)

    @staticmethod
    def widest(fields: list[Field]) -> Field:
        """Where tensors meet (``torch.cat``, ``+``): the largest of each measure.

        Example:
            >>> Field.widest([Field((1, 1), (1, 1), (8, 8)), Field((5, 5), (1, 1), (8, 8))])
            Field(rf=(5, 5), jump=(1, 1), span=(8, 8))
        """
        if len(fields) == 1:
            return fields[0]
        return Field(
            (max(f.rf[0] for f in fields), max(f.rf[1] for f in fields)),
            (max(f.jump[0] for f in fields), max(f.jump[1] for f in fields)),
            (max(f.span[0] for f in fields), max(f.span[1] for f in fields)),
        )


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
    * any other operation that keeps the map's size (or pads it) is treated as pointwise:
      its output takes the elementwise maximum of its inputs' fields, which is exact for
      concatenation and addition;
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
            Field(rf=(1, 1), jump=(1, 1), span=(32, 32))
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
        if out.ndim >= 3 and name != "pad":
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
            return base.window(kernel, stride, dilation, out_size)
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
            return base.window(kernel, stride, dilation, out_size)
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
    # A window of one pixel with the slice's steps as its stride.
    return base.window((1, 1), (h.step or 1, w.step or 1), (1, 1), (out.shape[-2], out.shape[-1]))
