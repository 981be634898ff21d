"""A layer-by-layer summary of a network from one real forward pass.

:func:`summary` hooks every leaf module, runs a batch of zeros through the network and
records one :class:`LayerRow` per call: the output shape, the parameters, the
multiply-accumulates (counted as torchinfo counts them) and the receptive field. Every
convolution and pooling layer is checked against :mod:`~classic_cnns.inspection.formulas`
first, so an input too small for the network fails with the layer and the formula.

Example:
    >>> from classic_cnns import create_model
    >>> from classic_cnns.inspection import summary
    >>> summary(create_model("lenet5"), (1, 32, 32)).total_params
    61706
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.utils import parametrize

from classic_cnns._checks import is_int
from classic_cnns.inspection.formulas import (
    Pair,
    _count,
    _pair,
    conv2d_output_size,
    pool2d_output_size,
)
from classic_cnns.inspection.receptive_field import Field, FieldTracker, tensors_in
from classic_cnns.inspection.report import LayerRow, ModelSummary
from classic_cnns.registry import ModelInfo, model_info

# A formula's "; got input_size=(2, 2)": the layer's map, which the summary names itself.
_SIZE_GIVEN = re.compile(r"; got input_size=\(\d+, \d+\)")

__all__ = ["summary"]

# Errors of a failing forward pass that are re-raised, same type, with the layer named.
_NAMED_ERRORS = (RuntimeError, ValueError, TypeError, IndexError)


# --------------------------------------------------------------------------------------
# Per-module facts
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    """The sliding-window arguments of a ``Conv2d``, ``MaxPool2d`` or ``AvgPool2d``."""

    kernel: Pair
    stride: Pair
    padding: Pair | str
    dilation: Pair | None  # None for average pooling, which has none
    ceil_mode: bool
    is_conv: bool

    @classmethod
    def of(cls, module: nn.Module) -> _Window | None:
        """The window of ``module``, or ``None`` if it is no convolution or pooling."""
        if isinstance(module, nn.Conv2d):
            padding = module.padding
            return cls(
                kernel=_pair(module.kernel_size, "kernel_size", 1),
                stride=_pair(module.stride, "stride", 1),
                padding=padding if isinstance(padding, str) else _pair(padding, "padding", 0),
                dilation=_pair(module.dilation, "dilation", 1),
                ceil_mode=False,
                is_conv=True,
            )
        if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
            kernel = _pair(module.kernel_size, "kernel_size", 1)
            stride = module.stride
            no_stride = stride is None or (isinstance(stride, Sequence) and len(stride) == 0)
            is_max = isinstance(module, nn.MaxPool2d)
            return cls(
                kernel=kernel,
                stride=kernel if no_stride else _pair(stride, "stride", 1),
                padding=_pair(module.padding, "padding", 0),
                dilation=_pair(module.dilation, "dilation", 1) if is_max else None,
                ceil_mode=bool(module.ceil_mode),
                is_conv=False,
            )
        return None

    def output_size(self, size: Pair) -> Pair:
        """The formula's ``(h, w)`` output for an ``(h, w)`` input; ``ValueError`` if empty."""
        dilation = self.dilation or 1
        if self.is_conv:
            return conv2d_output_size(size, self.kernel, self.stride, self.padding, dilation)
        assert not isinstance(self.padding, str)  # only convolutions take "same"/"valid"
        return pool2d_output_size(
            size, self.kernel, self.stride, self.padding, dilation, self.ceil_mode
        )


def _macs(module: nn.Module, output: Tensor) -> int:
    """Multiply-accumulates of one call of ``module`` that produced ``output``."""
    # torchinfo's rule (torchinfo.layer_info.LayerInfo.calculate_macs), so totals agree:
    # every parameter named "weight" or "bias" costs one MAC per use. A pruned one
    # (weight_orig * weight_mask) or a parametrized one (weight_norm) is the tensor the layer
    # multiplies by, zeros included: the dense layer's MACs.
    names = {n.removesuffix("_orig") for n, _ in module.named_parameters(recurse=False)}
    weights = [
        getattr(module, n)
        for n in ("weight", "bias")
        if n in names or parametrize.is_parametrized(module, n)
    ]
    counted = sum(w.numel() for w in weights if isinstance(w, Tensor))
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


# --------------------------------------------------------------------------------------
# The forward pass, recorded
# --------------------------------------------------------------------------------------


@dataclass
class _Call:
    """A module call in progress: what its pre-hook saw, for its hook and for errors."""

    module: nn.Module
    input_shape: tuple[int, ...] | None
    expected_size: Pair | None = None  # the formula's (h, w) output, for conv and pooling


class _Recorder:
    """Hooks on every module of ``net`` that turn one forward pass into :class:`LayerRow`.

    The pre-hook of a leaf checks its input (channels, size against the formula); the
    hook after it checks the output against the formula and appends the row. ``calls`` is
    the stack of module calls in progress, so a failure can name the innermost layer.
    """

    def __init__(self, net: nn.Module, input_shape: tuple[int, ...]) -> None:
        self.net = net
        self.input_shape = input_shape
        self.names = {module: name for name, module in net.named_modules()}
        # Leaf modules, and modules whose weights torch.nn.utils.parametrize computes (their
        # parametrizations run inside the layer's call: not layers of their own).
        inner = {m for p in self.names if parametrize.is_parametrized(p) for m in p.modules()}
        self.leaves = {
            m
            for m in self.names
            if parametrize.is_parametrized(m)
            or (m not in inner and next(iter(m.children()), None) is None)
        }
        self.tracker = FieldTracker()
        self.rows: list[LayerRow] = []
        self.activation_bytes = 0
        self.calls: list[_Call] = []
        self.counted: set[nn.Module] = set()  # modules whose parameters a row already holds
        self.raised: list[BaseException] = []  # our own errors, passed on untouched

    def run(self, x: Tensor) -> None:
        """One forward pass of ``x`` in eval mode without gradients; modes are restored."""
        handles = []
        for module in self.names:
            handles.append(module.register_forward_pre_hook(self.before_call))
            handles.append(module.register_forward_hook(self.after_call))
        training = {module: module.training for module in self.net.modules()}
        self.tracker.set(x, Field.of_input(x.shape[-2], x.shape[-1]))
        try:
            self.net.eval()
            with torch.no_grad(), self.tracker:
                self.net(x)
        except _NAMED_ERRORS as error:
            # Re-raise with the failing layer named, keeping the type; subclasses (such as
            # torch.OutOfMemoryError) and our own errors pass unchanged.
            if not self.calls or type(error) not in _NAMED_ERRORS or self.is_own(error):
                raise
            call = self.calls[-1]
            raise type(error)(
                f"the forward pass of {type(self.net).__name__} on input "
                f"{list(self.input_shape)} failed in {self.describe(call.module)} with input "
                f"shape {call.input_shape}: {error}"
            ) from error
        finally:
            for handle in handles:
                handle.remove()
            for module, flag in training.items():
                module.training = flag

    def before_call(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        """Forward pre-hook: push the call; check a leaf's input and expect its output."""
        x = next(tensors_in(args), None)
        call = _Call(module, tuple(x.shape) if x is not None else None)
        self.calls.append(call)
        if module in self.leaves and x is not None:
            self.check_channels(module, x)
            call.expected_size = self.expected_size(module, x)

    def after_call(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        """Forward hook: pop the call; check a leaf's output and record its row."""
        call = self.calls.pop()
        if module not in self.leaves:
            return
        outputs = list(tensors_in(output))
        first = outputs[0] if outputs else None
        if call.expected_size is not None and first is not None:
            self.check_output(module, call.expected_size, first, args)
        self.activation_bytes += sum(t.numel() * t.element_size() for t in outputs)
        self.rows.append(self.row(module, first))
        self.counted.add(module)

    def row(self, module: nn.Module, output: Tensor | None) -> LayerRow:
        """The row of one call of the leaf ``module`` that produced ``output``."""
        window = _Window.of(module)
        field = self.tracker.get(output) if output is not None else None
        return LayerRow(
            name=self.names[module],
            type=type(module).__name__,
            kernel_size=window.kernel if window else None,
            stride=window.stride if window else None,
            padding=window.padding if window else None,
            dilation=window.dilation if window else None,
            ceil_mode=window.ceil_mode if window and not window.is_conv else None,
            output_shape=tuple(output.shape) if output is not None else (),
            params=0 if module in self.counted else sum(p.numel() for p in module.parameters()),
            macs=_macs(module, output) if output is not None else 0,
            receptive_field=field.rf if field else None,
            jump=field.jump if field else None,
        )

    def check_channels(self, module: nn.Module, x: Tensor) -> None:
        """A convolution's input must have its ``in_channels``."""
        if isinstance(module, nn.Conv2d) and x.ndim >= 3 and x.shape[-3] != module.in_channels:
            raise self.own(
                ValueError(
                    f"{self.describe(module)} expects {module.in_channels} input channel(s); "
                    f"got an input of shape {tuple(x.shape)} (summary input "
                    f"{list(self.input_shape)}). Pass input_size with C={module.in_channels} "
                    f"or build the model for {x.shape[-3]} channels"
                )
            )

    def expected_size(self, module: nn.Module, x: Tensor) -> Pair | None:
        """The formula's output size of a conv or pooling ``module`` on ``x``, else ``None``."""
        window = _Window.of(module)
        if window is None or x.ndim < 3:
            return None
        size: Pair = (x.shape[-2], x.shape[-1])
        try:
            # On a huge input only invalid arguments can fail: tell them apart.
            window.output_size((2**31, 2**31))
        except ValueError as error:
            raise self.own(
                ValueError(f"{self.describe(module)} has invalid arguments: {error}")
            ) from None
        try:
            return window.output_size(size)
        except ValueError as error:
            raise self.own(
                ValueError(
                    f"input {list(self.input_shape[1:])} is too small for "
                    f"{type(self.net).__name__}: {self.describe(module)} gets a "
                    f"{size[0]}x{size[1]} map. {_SIZE_GIVEN.sub('', str(error))}"
                )
            ) from None

    def check_output(
        self, module: nn.Module, expected: Pair, output: Tensor, args: tuple[Any, ...]
    ) -> None:
        """The layer must produce what its formula promised."""
        got = (output.shape[-2], output.shape[-1])
        if got != expected:
            raise self.own(
                RuntimeError(
                    f"{self.describe(module)}: the formula gives {expected[0]}x{expected[1]} "
                    f"but the layer produced {got[0]}x{got[1]} (input {args[0].shape}). This "
                    "is a bug in classic_cnns.inspection; please report it"
                )
            )

    def describe(self, module: nn.Module) -> str:
        """``layer 'c1.0' (Conv2d)``, for messages."""
        return f"layer {self.names[module] or '(model)'!r} ({type(module).__name__})"

    def own(self, error: BaseException) -> BaseException:
        """Mark ``error`` as raised on purpose, so :meth:`run` passes it on untouched."""
        self.raised.append(error)
        return error

    def is_own(self, error: BaseException) -> bool:
        """Whether :meth:`own` marked ``error``."""
        return any(error is mine for mine in self.raised)


# --------------------------------------------------------------------------------------
# summary()
# --------------------------------------------------------------------------------------


def _network(model: nn.Module) -> nn.Module:
    """The plain network of a classic_cnns model (its ``.net``), else ``model`` itself.

    A classic_cnns model is a LightningModule holding its registry entry as ``.info`` and
    the plain network as ``.net``: summarising the network makes names read ``"c1.0"``
    rather than ``"net.c1.0"`` and leaves the input checks to the formulas.
    """
    net = getattr(model, "net", None)
    if isinstance(net, nn.Module) and isinstance(getattr(model, "info", None), ModelInfo):
        return net
    return model


def _in_channels(model: nn.Module, net: nn.Module) -> int | None:
    """The input channels a model declares, or its first convolution's."""
    channels = getattr(model, "in_channels", None)
    if is_int(channels):
        return channels
    for module in net.modules():
        if isinstance(module, nn.modules.conv._ConvNd):  # the first: a built 2-D one, or none
            lazy = isinstance(module, LazyModuleMixin) and module.has_uninitialized_params()
            return None if lazy or not isinstance(module, nn.Conv2d) else int(module.in_channels)
    return None


def _input_shape(
    model: nn.Module, net: nn.Module, input_size: Sequence[int], batch_size: int
) -> tuple[int, int, int, int]:
    """``(batch_size, C, H, W)`` from ``input_size``, which may leave ``C`` to the model."""
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


def summary(
    model: nn.Module | str,
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
      pooling and dropout 0. MACs are counted per call. A pruned weight
      (``torch.nn.utils.prune``) counts whole, zeros included, as the dense layer computes
      it (torchinfo counts its nonzeros); a parametrized one (``weight_norm``,
      ``spectral_norm``) is its layer's, whose row it is.
    * Receptive field and jump (cumulative stride) use the standard recurrence
      ``rf += dilation*(kernel-1)*jump; jump *= stride`` through convolutions and
      pooling. They are followed per tensor through every torch operation, so for
      branching networks (Inception, ResNet, DenseNet) each branch has its own field and
      where branches meet (``torch.cat``, ``+``) the output sees the union of their fields
      (wider than each where their windows lie apart, by padding say). Adaptive
      pooling is a pool with the kernel of its widest window and stride ``in // out``; a linear
      layer on a flattened map, or a spatial mean, sees the whole map; strided slicing
      (``x[:, :, ::2, ::2]``) multiplies the jump by its steps. Any other operation that
      changes the map's size (an upsampling, a transposed convolution) is not followed:
      its output gets no field ("-"), nor do the layers fed by it alone. Fields are not
      clipped to the image (as in the usual tables, they may exceed it).

    Args:
        model: Any ``nn.Module``, or a registered name (its network is built with the
            channels of ``input_size``). A classic_cnns model (an ``ImageClassifier``) is
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
        >>> from classic_cnns.inspection import summary
        >>> s = summary(create_model("lenet5"), (1, 32, 32))
        >>> [(r.name, r.output_shape[1:]) for r in s.rows if r.type == "Conv2d"]
        [('c1.0', (6, 28, 28)), ('c3.0', (16, 10, 10)), ('c5.0', (120, 1, 1))]
        >>> s.total_params
        61706
        >>> summary("resnet18", (1, 64, 64)).total_params  # a registered name
        11683240
    """
    if isinstance(model, str):  # a registered name, as `classic-cnns summary` takes
        size = tuple(input_size) if isinstance(input_size, list | tuple) else ()
        given = len(size) == 3 and isinstance(size[0], int) and size[0] > 0
        model = model_info(model).build_net(**({"in_channels": size[0]} if given else {}))
    net = _network(model)
    if not isinstance(net, nn.Module):
        raise ValueError(
            f"model must be an nn.Module or a registered name; got {type(model).__name__}"
        )
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

    recorder = _Recorder(net, shape)
    recorder.run(torch.zeros(shape, dtype=dtype, device=device))
    return ModelSummary(
        model_name=type(net).__name__,
        input_shape=shape,
        rows=tuple(recorder.rows),
        total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        total_macs=sum(row.macs for row in recorder.rows),
        activation_bytes=recorder.activation_bytes,
    )
