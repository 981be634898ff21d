"""Tests of classic_cnns.inspection: formulas against real layers, summaries against torchinfo."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import math
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from torch import nn

import classic_cnns.inspection
from classic_cnns import create_model, model_info
from classic_cnns.inspection import (
    LayerRow,
    ModelSummary,
    conv2d_output_size,
    conv2d_params,
    linear_params,
    pool2d_output_size,
    summary,
)

SIZES = st.integers(1, 40)
KERNELS = st.integers(1, 7)
STRIDES = st.integers(1, 4)
PADDINGS = st.integers(0, 4)
DILATIONS = st.integers(1, 3)


def pairs(values: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    """An int for both dimensions, or an (h, w) pair, as PyTorch's layers accept."""
    return st.one_of(values, st.tuples(values, values))


def real_output(layer: nn.Module, h: int, w: int) -> tuple[int, int] | None:
    """The (h, w) a real layer produces, or None where PyTorch refuses."""
    try:
        out = layer(torch.zeros(1, 1, h, w))
    except (RuntimeError, ValueError):
        return None
    return out.shape[-2], out.shape[-1]


# ---------------------------------------------------------------------------------------
# Output-size formulas against real layers
# ---------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    h=SIZES,
    w=SIZES,
    kernel=pairs(KERNELS),
    stride=pairs(STRIDES),
    padding=pairs(PADDINGS),
    dilation=pairs(DILATIONS),
)
@example(h=4, w=4, kernel=5, stride=1, padding=0, dilation=1)  # kernel larger than the input
@example(h=1, w=1, kernel=3, stride=1, padding=1, dilation=1)  # padding rescues it
def test_conv2d_output_size_matches_conv2d(
    h: int, w: int, kernel: Any, stride: Any, padding: Any, dilation: Any
) -> None:
    conv = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation, bias=False)
    expected = real_output(conv, h, w)
    if expected is None:
        with pytest.raises(ValueError, match=r"expected .* got .*floor\("):
            conv2d_output_size((h, w), kernel, stride, padding, dilation)
    else:
        assert conv2d_output_size((h, w), kernel, stride, padding, dilation) == expected


@settings(max_examples=200, deadline=None)
@given(
    h=SIZES,
    w=SIZES,
    kernel=pairs(KERNELS),
    stride=st.one_of(st.none(), pairs(STRIDES)),
    padding=pairs(PADDINGS),
    dilation=pairs(DILATIONS),
    ceil_mode=st.booleans(),
)
# ceil_mode drops a last window that would start in the right padding: 4, not 3.
@example(h=5, w=5, kernel=2, stride=2, padding=1, dilation=1, ceil_mode=True)
@example(h=3, w=3, kernel=3, stride=2, padding=1, dilation=1, ceil_mode=True)
@example(h=8, w=8, kernel=3, stride=1, padding=2, dilation=1, ceil_mode=False)  # pad > k // 2
@example(h=2, w=2, kernel=3, stride=3, padding=0, dilation=1, ceil_mode=True)  # window > input
@example(h=1, w=1, kernel=7, stride=2, padding=0, dilation=1, ceil_mode=True)  # empty output
def test_pool2d_output_size_matches_max_pool2d(
    h: int, w: int, kernel: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool
) -> None:
    pool = nn.MaxPool2d(kernel, stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    expected = real_output(pool, h, w)
    if expected is None:
        with pytest.raises(ValueError, match=r"expected .* got"):
            pool2d_output_size((h, w), kernel, stride, padding, dilation, ceil_mode)
    else:
        assert pool2d_output_size((h, w), kernel, stride, padding, dilation, ceil_mode) == expected


@settings(max_examples=150, deadline=None)
@given(
    h=SIZES,
    w=SIZES,
    kernel=pairs(KERNELS),
    stride=st.one_of(st.none(), pairs(STRIDES)),
    padding=pairs(PADDINGS),
    ceil_mode=st.booleans(),
)
@example(h=5, w=5, kernel=2, stride=2, padding=1, ceil_mode=True)
def test_pool2d_output_size_matches_avg_pool2d(
    h: int, w: int, kernel: Any, stride: Any, padding: Any, ceil_mode: bool
) -> None:
    # AvgPool2d has no dilation, so the formula's is left at 1.
    pool = nn.AvgPool2d(kernel, stride, padding=padding, ceil_mode=ceil_mode)
    expected = real_output(pool, h, w)
    if expected is None:
        with pytest.raises(ValueError, match=r"expected .* got"):
            pool2d_output_size((h, w), kernel, stride, padding, ceil_mode=ceil_mode)
    else:
        assert pool2d_output_size((h, w), kernel, stride, padding, ceil_mode=ceil_mode) == expected


def test_output_size_examples_from_the_notes() -> None:
    assert conv2d_output_size(32, 5) == (28, 28)
    assert pool2d_output_size(28, 2, 2) == (14, 14)
    assert conv2d_output_size((7, 9), (3, 1), padding="same") == (7, 9)
    assert conv2d_output_size((7, 9), 3, padding="valid") == (5, 7)
    assert conv2d_output_size(torch.Size([10, 10]), 3, stride=(1,)) == (8, 8)


def test_output_size_error_quotes_the_formula_with_numbers() -> None:
    with pytest.raises(ValueError) as info:
        conv2d_output_size(3, kernel_size=5)
    message = str(info.value)
    assert (
        "H_out = floor((H_in + 2*padding - dilation*(kernel_size-1) - 1) / stride + 1)" in message
    )
    assert "floor((3 + 2*0 - 1*(5-1) - 1) / 1 + 1) = -1" in message
    # In ceil_mode a window larger than the input still gives one output...
    assert pool2d_output_size(2, 3, ceil_mode=True) == (1, 1)
    # ...but not always.
    with pytest.raises(ValueError, match=r"ceil\(\(1 \+ 2\*0 - 1\*\(7-1\) - 1\) / 2\) \+ 1 = -2"):
        pool2d_output_size(1, 7, 2, ceil_mode=True)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: conv2d_output_size(0, 3), "input_size must be .* got 0"),
        (lambda: conv2d_output_size(8, 0), "kernel_size must be .* got 0"),
        (lambda: conv2d_output_size(8, 3, stride=0), "stride must be .* got 0"),
        (lambda: conv2d_output_size(8, 3, padding=-1), "padding must be .* got -1"),
        (lambda: conv2d_output_size(8, 3, dilation=2.0), "dilation must be .* got 2.0"),
        (lambda: conv2d_output_size(8, (3, 3, 3)), r"kernel_size must be .* got \(3, 3, 3\)"),
        (lambda: conv2d_output_size(8, True), "kernel_size must be .* got True"),
        (lambda: conv2d_output_size(8, 3, stride=2, padding="same"), "expected stride=1"),
        (lambda: conv2d_output_size(8, 3, padding="full"), "'valid' or 'same'; got 'full'"),
        (lambda: pool2d_output_size(8, 3, padding=2), r"padding <= kernel_size // 2 = 3 // 2"),
        (lambda: pool2d_output_size(28, 2, stride=0), "stride must be .* got 0"),
        (lambda: pool2d_output_size(8, 2, ceil_mode=1), "ceil_mode must be a bool; got 1"),
        (lambda: conv2d_params(3, 6, 3, groups=2), "divisible by groups.* got in_channels=3"),
        (lambda: conv2d_params(0, 6, 3), "in_channels must be an int >= 1; got 0"),
        (lambda: linear_params(10, 0), "out_features must be an int >= 1; got 0"),
        # PyTorch would count these as a bias, or build a 3x1 kernel it cannot run.
        (lambda: conv2d_params(3, 4, 3, bias="no"), "bias must be True or False; got 'no'"),
        (lambda: linear_params(3, 4, bias=0), "bias must be True or False; got 0"),
        (lambda: conv2d_params(3, 4, (3,)), r"kernel_size must be .* got \(3,\)"),
        (lambda: conv2d_output_size(8, (3,)), r"kernel_size must be .* got \(3,\)"),
    ],
)
def test_invalid_arguments_raise_value_error(call: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------------------------
# Parameter formulas against real layers
# ---------------------------------------------------------------------------------------


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@settings(max_examples=100, deadline=None)
@given(
    groups=st.integers(1, 4),
    in_per_group=st.integers(1, 4),
    out_per_group=st.integers(1, 4),
    kernel=pairs(KERNELS),
    bias=st.booleans(),
)
def test_conv2d_params_matches_conv2d(
    groups: int, in_per_group: int, out_per_group: int, kernel: Any, bias: bool
) -> None:
    cin, cout = groups * in_per_group, groups * out_per_group
    conv = nn.Conv2d(cin, cout, kernel, groups=groups, bias=bias)
    assert conv2d_params(cin, cout, kernel, groups=groups, bias=bias) == numel(conv)


@settings(max_examples=100, deadline=None)
@given(in_features=st.integers(1, 64), out_features=st.integers(1, 64), bias=st.booleans())
def test_linear_params_matches_linear(in_features: int, out_features: int, bias: bool) -> None:
    layer = nn.Linear(in_features, out_features, bias=bias)
    assert linear_params(in_features, out_features, bias=bias) == numel(layer)


def test_param_formulas_reproduce_the_lenet5_table() -> None:
    counts = [
        conv2d_params(1, 6, 5),
        conv2d_params(6, 16, 5),
        conv2d_params(16, 120, 5),
        linear_params(120, 84),
        linear_params(84, 10),
    ]
    assert counts == [156, 2416, 48120, 10164, 850]
    assert sum(counts) == 61_706


# ---------------------------------------------------------------------------------------
# summary: LeNet-5 against the notes' table
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lenet_summary() -> ModelSummary:
    return summary(create_model("lenet5"), (1, 32, 32))


def test_lenet5_summary_reproduces_the_seed_table(lenet_summary: ModelSummary) -> None:
    # (name, type, output C@HxW or features, kernel, stride, params, receptive field)
    table = [
        ("c1.0", "Conv2d", (6, 28, 28), (5, 5), (1, 1), 156, (5, 5)),
        ("s2.0", "AvgPool2d", (6, 14, 14), (2, 2), (2, 2), 0, (6, 6)),
        ("c3.0", "Conv2d", (16, 10, 10), (5, 5), (1, 1), 2416, (14, 14)),
        ("s4.0", "AvgPool2d", (16, 5, 5), (2, 2), (2, 2), 0, (16, 16)),
        ("c5.0", "Conv2d", (120, 1, 1), (5, 5), (1, 1), 48120, (32, 32)),
        ("f6.0", "Linear", (84,), None, None, 10164, (32, 32)),
        ("fc", "Linear", (10,), None, None, 850, (32, 32)),
    ]
    rows = [r for r in lenet_summary.rows if r.type in ("Conv2d", "AvgPool2d", "Linear")]
    got = [
        (r.name, r.type, r.output_shape[1:], r.kernel_size, r.stride, r.params, r.receptive_field)
        for r in rows
    ]
    assert got == table
    assert all(r.output_shape[0] == 1 for r in lenet_summary.rows)
    assert lenet_summary.total_params == 61_706 == sum(r.params for r in lenet_summary.rows)
    assert lenet_summary.trainable_params == 61_706
    assert lenet_summary.non_trainable_params == 0
    # Jumps: 1 until S2, then 2, then 4 after S4.
    assert [r.jump for r in rows[:5]] == [(1, 1), (2, 2), (2, 2), (4, 4), (4, 4)]


def test_lenet5_macs_by_hand(lenet_summary: ModelSummary) -> None:
    # out_elements * (in_channels * kh * kw + 1): torchinfo counts the bias add as a MAC.
    by_hand = 6 * 28 * 28 * 26 + 16 * 10 * 10 * 151 + 120 * 401 + 10164 + 850
    assert lenet_summary.total_macs == by_hand
    assert lenet_summary.total_flops == 2 * by_hand
    # Every leaf output, float32: 6@28x28 twice, 6@14x14 twice, ...
    elements = 2 * (6 * 784 + 6 * 196 + 16 * 100 + 16 * 25 + 120) + 120 + 2 * 84 + 10
    assert lenet_summary.activation_bytes == 4 * elements


def test_lightning_module_is_summarised_through_its_net(lenet_summary: ModelSummary) -> None:
    plain = summary(create_model("lenet5").net, (1, 32, 32))
    assert plain.rows == lenet_summary.rows
    assert lenet_summary.model_name == "LeNet5Net"
    # (H, W) takes the channels from the model.
    assert summary(create_model("lenet5", in_channels=3), (32, 32)).input_shape == (1, 3, 32, 32)


def test_generic_lightning_module_is_forwarded() -> None:
    import lightning as L

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3, padding=1)
            self.head = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.conv(x).mean((2, 3)))

    s = summary(Tiny(), (2, 8, 8))
    assert [r.name for r in s.rows] == ["conv", "head"]
    # The spatial mean sees the whole 8x8 map (plus the padding ring): 3 + 7 = 10.
    assert s.rows[-1].receptive_field == (10, 10)


def test_text_and_markdown_contain_header_and_totals(lenet_summary: ModelSummary) -> None:
    text = str(lenet_summary)
    header = next(line for line in text.splitlines() if line.startswith("Layer"))
    for column in ("Layer", "Type", "Kernel", "Stride", "Output shape", "Params", "MACs", "RF"):
        assert column in header
    assert "Total params:           61,706" in text
    assert "Total MACs:             423,038" in text
    assert "c5.0" in text and "[1, 120, 1, 1]" in text
    # Aligned: every table line is as long as the header, bar trailing blanks.
    lines = text.splitlines()
    table = lines[lines.index(header) + 2 : lines.index(header) + 2 + len(lenet_summary.rows)]
    positions = {line.index("Conv2d") for line in table if "Conv2d" in line}
    assert len(positions) == 1

    markdown = lenet_summary.to_markdown()
    assert "| Layer | Type | Kernel |" in markdown
    assert "| c1.0 | Conv2d | 5x5 | 1x1 | 0x0 | 1x1 | - | [1, 6, 28, 28] | 156 |" in markdown
    assert "| s2.0 | AvgPool2d | 2x2 | 2x2 | 0x0 | - | False | [1, 6, 14, 14] | 0 |" in markdown
    assert "| Total params | 61,706 |" in markdown
    assert "| Total FLOPs (2 x MACs) | 846,076 (846.08 K) |" in markdown


def test_to_rows_carries_every_column(lenet_summary: ModelSummary) -> None:
    rows = lenet_summary.to_rows()
    fields = [f.name for f in dataclasses.fields(LayerRow)]
    assert fields == [
        "name",
        "type",
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "ceil_mode",
        "output_shape",
        "params",
        "macs",
        "receptive_field",
        "jump",
    ]
    assert len(rows) == len(lenet_summary.rows) == 14
    assert all(list(row) == fields for row in rows)
    assert rows[0] == {
        "name": "c1.0",
        "type": "Conv2d",
        "kernel_size": (5, 5),
        "stride": (1, 1),
        "padding": (0, 0),
        "dilation": (1, 1),
        "ceil_mode": None,
        "output_shape": (1, 6, 28, 28),
        "params": 156,
        "macs": 122_304,
        "receptive_field": (5, 5),
        "jump": (1, 1),
    }


# ---------------------------------------------------------------------------------------
# summary: errors
# ---------------------------------------------------------------------------------------


def test_too_small_input_names_the_layer_and_the_formula() -> None:
    # 16 -> c1 12 -> s2 6 -> c3 2 -> s4 1 -> c5: a 5x5 kernel on a 1x1 map.
    with pytest.raises(ValueError) as info:
        summary(create_model("lenet5").net, (1, 16, 16))
    message = str(info.value)
    assert "'c5.0' (Conv2d)" in message
    assert "gets a 1x1 map" in message
    assert "floor((1 + 2*0 - 1*(5-1) - 1) / 1 + 1) = -3" in message
    # The formula's "got input_size=(1, 1)" is the layer's map, not the summary's input_size.
    assert "input_size" not in message and message.count("1x1") == 1


def test_too_small_input_for_a_pool() -> None:
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(4))
    with pytest.raises(ValueError, match=r"'1' \(MaxPool2d\) gets a 3x3 map.*= 0"):
        summary(net, (1, 5, 5))


def test_wrong_channels_and_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"'c1.0' \(Conv2d\) expects 1 input channel"):
        summary(create_model("lenet5"), (3, 32, 32))
    with pytest.raises(ValueError, match="input_size must be"):
        summary(create_model("lenet5"), (1, 1, 32, 32))
    for model in (create_model("lenet5"), "lenet5"):  # a registered name alike
        with pytest.raises(ValueError, match=r"input_size must be \(C, H, W\) .*; got 32$"):
            summary(model, 32)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"input_size must be .*; got \(0, 32, 32\)$"):
            summary(model, (0, 32, 32))
    with pytest.raises(ValueError, match="batch_size must be"):
        summary(create_model("lenet5"), (1, 32, 32), batch_size=0)
    with pytest.raises(ValueError, match=r"cannot tell the input channels.*\(C, H, W\)"):
        summary(nn.Sequential(nn.Flatten()), (4, 4))
    with pytest.raises(ValueError, match=r"'0' \(MaxPool2d\) has invalid arguments"):
        summary(nn.Sequential(nn.MaxPool2d(3, padding=2)), (1, 8, 8))


def test_an_unknown_channel_count_is_asked_for_and_the_model_left_untouched() -> None:
    # A lazy first convolution has in_channels 0 until its first call: the summary ran a
    # 0-channel input and built the user's model for it for good. A Conv1d's channels are
    # not an image's.
    lazy = nn.Sequential(nn.LazyConv2d(8, 3), nn.Flatten(), nn.LazyLinear(2))
    with pytest.raises(ValueError, match=r"cannot tell the input channels of Sequential"):
        summary(lazy, (8, 8))
    assert lazy(torch.zeros(1, 3, 8, 8)).shape == (1, 2)
    with pytest.raises(ValueError, match=r"cannot tell the input channels.*got \(H, W\)"):
        summary(nn.Sequential(nn.Conv1d(2, 4, 3)), (2, 16))


def _pruned_and_parametrized() -> tuple[nn.Module, nn.Module, nn.Module]:
    def net() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(288, 2))

    pruned, normed = net(), net()
    torch.nn.utils.prune.l1_unstructured(pruned[0], "weight", amount=0.5)
    torch.nn.utils.parametrizations.weight_norm(normed[0])
    torch.nn.utils.parametrizations.spectral_norm(normed[3])
    return net(), pruned, normed


def test_pruned_and_parametrized_layers_keep_their_rows_and_dense_macs() -> None:
    # Pruning renames the weight weight_orig: its MACs were dropped (288 of 8,064 left).
    # weight_norm puts the weight's computation in submodules: the convolution lost its row
    # and its MACs, and a row for the weight tensor (shape [8, 3, 3, 3]) took its place.
    dense, pruned, normed = (summary(m, (3, 8, 8)) for m in _pruned_and_parametrized())
    conv_macs = 8 * 6 * 6 * (3 * 9 + 1)  # out_elements * (in * kh * kw + 1 for the bias)
    assert [r.macs for r in dense.rows] == [conv_macs, 0, 0, 288 * 2 + 2]
    for s in (pruned, normed):
        assert [r.macs for r in s.rows] == [r.macs for r in dense.rows]
        assert [r.output_shape for r in s.rows] == [r.output_shape for r in dense.rows]
        assert [r.name for r in s.rows] == ["0", "1", "2", "3"]
        assert sum(r.params for r in s.rows) == s.total_params  # every parameter in a row
    assert normed.rows[0].params == 8 + 8 * 27 + 8  # weight_norm's g and v, and the bias
    assert normed.rows[0].receptive_field == (3, 3)


def test_other_forward_errors_name_the_layer() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(10, 3))
    with pytest.raises(RuntimeError, match=r"failed in layer '1' \(Linear\)"):
        summary(net, (1, 3, 3))


def test_formula_mismatch_is_a_runtime_error() -> None:
    class CroppingConv(nn.Conv2d):
        # Not what Conv2d's formula promises: the summary must notice.
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x)[..., 1:, :]

    with pytest.raises(RuntimeError, match="the formula gives 6x6 but the layer produced 5x6"):
        summary(nn.Sequential(CroppingConv(1, 1, 3)), (1, 8, 8))


def test_summary_restores_modes_and_counts_frozen_params() -> None:
    model = create_model("lenet5_bn")
    model.train()
    model.net.c1.eval()
    for p in model.net.fc.parameters():
        p.requires_grad_(False)
    s = summary(model, (1, 32, 32), batch_size=3)
    assert model.training and not model.net.c1.training and model.net.c3.training
    assert s.non_trainable_params == 850
    assert s.total_params == 62_158 == s.trainable_params + 850
    assert s.input_shape == (3, 1, 32, 32)
    single = summary(model, (1, 32, 32))
    assert s.total_macs == 3 * single.total_macs
    assert s.activation_bytes == 3 * single.activation_bytes


def test_shared_module_counts_params_once_and_macs_per_call() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(self.conv(x))

    s = summary(Twice(), (2, 4, 4))
    assert [r.params for r in s.rows] == [38, 0]
    assert s.total_macs == 2 * 2 * 16 * (2 * 9 + 1)
    assert [r.receptive_field for r in s.rows] == [(3, 3), (5, 5)]


class _Index(nn.Module):  # x[index]: a slicing the tracker follows
    def __init__(self, index: tuple[Any, ...]) -> None:
        super().__init__()
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[self.index]


def _measured_field(net: nn.Module, size: int | tuple[int, int]) -> tuple[int, int]:
    # Independent of the tracker: the input pixels the centre output depends on, found by
    # backpropagation through positive weights at an input of ones (size: H = W, or (H, W)).
    for p in net.parameters():
        p.data.fill_(0.1)
    x = torch.ones(1, 1, *(size if isinstance(size, tuple) else (size, size)), requires_grad=True)
    y = net(x)
    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()
    assert x.grad is not None
    rows, cols = x.grad[0, 0].nonzero(as_tuple=True)
    return int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1


_EVERY_SECOND_PIXEL = (slice(None), slice(None), slice(None, None, 2), slice(None, None, 2))


@pytest.mark.parametrize(
    # x[:, :, ::2, ::2], as ResNet-20's shortcut samples
    "middle",
    [_Index(_EVERY_SECOND_PIXEL), nn.LPPool2d(2, 3, stride=2), nn.AvgPool2d(3, stride=2)],
)
def test_fields_through_slicing_and_power_pooling_are_the_measured_ones(middle) -> None:
    net = nn.Sequential(nn.Conv2d(1, 1, 3), middle, nn.Conv2d(1, 1, 3))
    rows = summary(net, (1, 23, 23)).rows
    for k, row in enumerate(rows):
        assert row.receptive_field == _measured_field(net[: k + 1], 23), row.name
    assert rows[1].jump == (2, 2)


@pytest.mark.parametrize(
    "middle",
    [
        nn.Conv2d(1, 1, (1, 5)),  # a kernel wider than high
        nn.Conv2d(1, 1, (3, 1), dilation=(2, 1)),  # taller than wide, dilated
        nn.AvgPool2d(3, stride=(2, 1)),  # the stride as a pair, one per axis (max: ties)
        _Index((..., slice(None, None, 2), slice(None))),  # every second row
        _Index((slice(None), slice(None), slice(None), slice(None, None, 3))),  # third column
        nn.AdaptiveAvgPool2d((4, 8)),  # windows of 5x2 on a 20x16 map
    ],
    ids=["conv1x5", "conv3x1-dilated", "pool-stride-pair", "rows", "columns", "adaptive"],
)
def test_fields_along_each_axis_are_the_measured_ones(middle: nn.Module) -> None:
    # Height and width differ everywhere (input, kernel, stride, step), so a formula that
    # takes one axis's value for the other's is caught.
    net = nn.Sequential(nn.Conv2d(1, 1, 3), middle, nn.Conv2d(1, 1, 3))
    rows = summary(net, (1, 22, 18)).rows
    assert [r.receptive_field for r in rows] == [
        _measured_field(net[: k + 1], (22, 18)) for k in range(len(rows))
    ]


def test_an_operation_that_resizes_the_map_unknowably_gets_no_field() -> None:
    # An upsampling is no window: "-" rather than the field of a pointwise operation.
    net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Upsample(scale_factor=2), nn.Conv2d(1, 1, 3))
    assert [r.receptive_field for r in summary(net, (1, 16, 16)).rows] == [(3, 3), None, None]
    resnet = summary(create_model("resnet20").net, (3, 32, 32))
    shortcut = next(r for r in resnet.rows if r.name == "layer2.0.downsample")
    assert shortcut.jump == (2, 2)


# ---------------------------------------------------------------------------------------
# summary: against torchinfo, and receptive fields of branching networks
# ---------------------------------------------------------------------------------------


def assert_matches_torchinfo(net: nn.Module, input_size: tuple[int, int, int]) -> ModelSummary:
    torchinfo = pytest.importorskip("torchinfo")
    ours = summary(net, input_size)
    theirs = torchinfo.summary(net, input_size=(1, *input_size), verbose=0)
    assert ours.total_macs == theirs.total_mult_adds
    assert ours.total_params == theirs.total_params == sum(p.numel() for p in net.parameters())
    assert all(r.receptive_field is not None for r in ours.rows)
    return ours


def test_lenet5_matches_torchinfo() -> None:
    assert_matches_torchinfo(create_model("lenet5").net, (1, 32, 32))
    assert_matches_torchinfo(create_model("lenet5_bn").net, (1, 32, 32))


def zoo_net(module: str, name: str) -> nn.Module:
    """The zoo's network ``name``, from ``classic_cnns.nets.<module>``: one gone fails."""
    net = create_model(name).net
    assert type(net).__module__ == f"classic_cnns.nets.{module}"
    return net


def rf(s: ModelSummary, name: str, call: int = 0) -> int:
    rows = [r for r in s.rows if r.name == name]
    field = rows[call].receptive_field
    assert field is not None and field[0] == field[1]
    return field[0]


def test_vgg11_matches_torchinfo() -> None:
    s = assert_matches_torchinfo(zoo_net("vgg", "vgg11"), (3, 32, 32))
    pools = [r for r in s.rows if r.type == "MaxPool2d"]
    # The classic VGG-11 fields: 4, 10, 30, 70, 150 at pool1..pool5.
    assert [p.receptive_field for p in pools] == [(n, n) for n in (4, 10, 30, 70, 150)]


@pytest.mark.parametrize(
    ("module", "name"),
    [("resnet", "resnet18"), ("googlenet", "googlenet"), ("densenet", "densenet121")],
)
def test_zoo_matches_torchinfo(module: str, name: str) -> None:
    assert_matches_torchinfo(zoo_net(module, name), (3, 32, 32))


# The receptive-field checks below use torchvision's networks: their layer names are fixed.


def test_resnet18_receptive_fields_merge_branches() -> None:
    torchvision = pytest.importorskip("torchvision")
    s = summary(torchvision.models.resnet18(), (3, 32, 32))
    assert all(r.receptive_field is not None for r in s.rows)
    assert rf(s, "layer4.1.conv2") == 435  # the known ResNet-18 field
    # After the residual addition the field is the larger branch's (its second ReLU).
    assert rf(s, "layer2.0.relu", call=1) == rf(s, "layer2.0.bn2")
    # A 1x1 stride-2 shortcut sees what its block's input saw.
    assert rf(s, "layer2.0.downsample.0") == rf(s, "layer1.1.relu", call=1)


def test_googlenet_receptive_fields_merge_branches() -> None:
    torchvision = pytest.importorskip("torchvision")
    net = torchvision.models.googlenet(aux_logits=False, init_weights=False)
    s = summary(net, (3, 32, 32))
    branches = ("branch1.conv", "branch2.1.conv", "branch3.1.conv", "branch4.1.conv")
    # The concatenation takes the widest branch: the next block's 1x1 sees it.
    widest = max(rf(s, f"inception3a.{b}") for b in branches)
    assert widest > min(rf(s, f"inception3a.{b}") for b in branches)
    assert rf(s, "inception3b.branch1.conv") == widest


def test_densenet121_receptive_fields_merge_branches() -> None:
    torchvision = pytest.importorskip("torchvision")
    s = summary(torchvision.models.densenet121(), (3, 32, 32))
    # Each dense layer sees the concatenation of all before it: the largest is the last.
    block = "features.denseblock1"
    assert rf(s, f"{block}.denselayer3.norm1") == rf(s, f"{block}.denselayer2.conv2")


def test_functional_operations_are_followed() -> None:
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(1, 2, 3)  # field 3
            self.b = nn.Conv2d(1, 2, 5)  # field 5
            self.head = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.cat([self.a(x)[..., 1:-1, 1:-1], self.b(x)], dim=1)  # 12x12, field 5
            x = F.max_pool2d(x, 2, stride=2, padding=1, dilation=2)  # 5 + 2*1 = 7, jump 2
            x = F.adaptive_avg_pool2d(torch.relu(x), 1)  # whole 6x6 map: 7 + 5*2
            return self.head(x.flatten(1))

    s = summary(Functional(), (1, 16, 16))
    assert [(r.name, r.receptive_field, r.jump) for r in s.rows] == [
        ("a", (3, 3), (1, 1)),
        ("b", (5, 5), (1, 1)),
        ("head", (17, 17), (12, 12)),  # global pooling: stride 6
    ]


def _reach(net: nn.Module, size: int, out_rows: int) -> int:
    # The truth by autograd: the most input rows one output row's value depends on.
    x = torch.rand(1, 1, size, size, requires_grad=True)
    out = net(x)
    widest = 0
    for i in range(out_rows):
        (grad,) = torch.autograd.grad(out[0, 0, i, 0], x, retain_graph=True)
        rows = grad[0, 0].abs().sum(1).nonzero()
        widest = max(widest, int(rows.max() - rows.min()) + 1)
    return widest


def test_adaptive_pooling_and_kept_dimension_means_against_autograd() -> None:
    class SqueezeExcite(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.fc = nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.conv(x).mean((2, 3), keepdim=True))  # the whole map

    # 11 rows pooled to 6: windows of 2 or 3 rows, so the widest is 3 (not ceil(11/6) = 2).
    pool = nn.Sequential(nn.Conv2d(1, 1, 1), nn.AdaptiveAvgPool2d(6), nn.Conv2d(1, 1, 1))
    for net, size, out_rows, layer in ((pool, 11, 6, "2"), (SqueezeExcite(), 16, 1, "fc")):
        truth = _reach(net, size, out_rows)
        assert rf(summary(net, (1, size, size)), layer) == truth == (3 if net is pool else 16)


class _TwoBranches(nn.Module):
    # Two branches of one stride whose windows may lie apart (padding, a padded or cropped
    # map), joined by + or torch.cat, then a 1x1 convolution: the summary's row after the
    # join. All weights 1, so every input pixel of an output's field moves it.
    def __init__(self, stride: int, a: dict, b: dict, join: str) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 1, stride=stride, bias=False, **a)
        kind, self.pad, self.crop = b.pop("kind"), b.pop("pad"), b.pop("crop")
        self.b = (
            nn.AvgPool2d(stride=stride, **b)
            if kind == "avg"
            else nn.Conv2d(1, 1, stride=stride, bias=False, **b)
        )
        self.join = join
        self.head = nn.Conv2d(2 if join == "cat" else 1, 1, 1, bias=False)
        for conv in (self.a, self.b, self.head):
            if isinstance(conv, nn.Conv2d):
                nn.init.ones_(conv.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ya = self.a(x)
        yb = self.b(F.pad(x, (self.pad[1], 0, self.pad[0], 0)))[..., self.crop[0] :, self.crop[1] :]
        h, w = min(ya.shape[-2], yb.shape[-2]), min(ya.shape[-1], yb.shape[-1])
        ya, yb = ya[..., :h, :w], yb[..., :h, :w]
        return self.head(torch.cat([ya, yb], 1) if self.join == "cat" else ya + yb)


def _field_by_autograd(net: nn.Module, size: int) -> tuple[tuple[int, int], tuple[int, int]]:
    # The input rows and columns one interior output element depends on, and how far they
    # move to the next element: its field and jump.
    x = torch.ones(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    out = net.double()(x)
    i, j = out.shape[-2] // 2, out.shape[-1] // 2
    spans = []
    for di in (0, 1):
        (grad,) = torch.autograd.grad(out[0, 0, i + di, j + di], x, retain_graph=True)
        rows, cols = grad[0, 0].sum(1).nonzero()[:, 0], grad[0, 0].sum(0).nonzero()[:, 0]
        spans.append((int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())))
    (top, bottom, left, right), (top2, _, left2, _) = spans
    assume(top > 0 and left > 0 and bottom < size - 1 and right < size - 1)  # not clipped
    return (bottom - top + 1, right - left + 1), (top2 - top, left2 - left)


_pairs = st.tuples(st.integers(0, 3), st.integers(0, 3))
_sides = {"pad": _pairs, "crop": _pairs}  # F.pad before the second branch, a crop after
_conv = {"kernel_size": st.integers(1, 5), "padding": _pairs, "dilation": st.integers(1, 3)}
_pool = {"kernel_size": st.integers(2, 4), "padding": st.just(1), "ceil_mode": st.booleans()}
_second = st.one_of(
    st.fixed_dictionaries({"kind": st.just("avg"), **_pool, **_sides}),
    st.fixed_dictionaries({"kind": st.just("conv"), **_conv, **_sides}),
)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.fixed_dictionaries(_conv), _second, st.sampled_from(["add", "cat"]))
@example(  # the fields [2i - 1, 2i] and [2i, 2i + 1]: 2 pixels each, 3 together
    2,
    {"kernel_size": 2, "padding": (1, 1), "dilation": 1},
    {
        "kind": "conv",
        "kernel_size": 2,
        "padding": (0, 0),
        "dilation": 1,
        **dict.fromkeys(_sides, (0, 0)),
    },
    "add",
)
def test_branches_that_meet_see_the_union_of_their_fields(
    stride: int, a: dict, b: dict, join: str
) -> None:
    # Where branches meet, the field is where both branches' fields lie, not the larger
    # one: windows apart (padding, F.pad, a cropped map) reach further than either.
    net = _TwoBranches(stride, a, dict(b), join).eval()
    field, jump = _field_by_autograd(net, 40)
    row = next(r for r in summary(net.float(), (1, 40, 40)).rows if r.name == "head")
    assert (row.receptive_field, row.jump) == (field, jump)


def test_alexnet_receptive_field() -> None:
    s = summary(zoo_net("alexnet", "alexnet"), (3, 224, 224))
    assert [r.receptive_field for r in s.rows if r.type == "MaxPool2d"][-1] == (195, 195)


# ---------------------------------------------------------------------------------------
# The package: its old name, and what it may import
# ---------------------------------------------------------------------------------------


def test_the_old_module_name_is_a_deprecated_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "classic_cnns.inspect", raising=False)
    with pytest.warns(
        DeprecationWarning, match=r"import the same names from classic_cnns\.inspection"
    ):
        old = importlib.import_module("classic_cnns.inspect")
    assert old.__all__ == classic_cnns.inspection.__all__
    assert all(getattr(old, n) is getattr(classic_cnns.inspection, n) for n in old.__all__)
    # Once: a second import takes the loaded module and says nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert importlib.import_module("classic_cnns.inspect") is old


def imported_modules(path: Path) -> list[str]:
    """The modules a source file imports (absolute imports; the package uses no others)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module, f"{path.name}: a relative import"
            found.append(node.module)
    return found


def test_inspection_imports_only_torch_the_standard_library_and_the_registry() -> None:
    # The inspection sits on the networks: it may read the registry (and _checks, standard
    # library alone), never the task, the command line or the benchmarks.
    package = Path(classic_cnns.inspection.__file__).parent
    for path in sorted(package.glob("*.py")):
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top == "classic_cnns":
                allowed = name.startswith("classic_cnns.inspection") or name in (
                    "classic_cnns.registry",
                    "classic_cnns._checks",
                )
            else:
                allowed = top in ("torch", "__future__") or top in sys.stdlib_module_names
            assert allowed, f"{path.name} imports {name}"


def test_the_readable_totals_carry_over_to_the_next_unit() -> None:
    from classic_cnns.inspection.report import _human

    found = [_human(n) for n in (999, 1_000, 999_994, 999_998, 1_234_567, 999_999_999)]
    assert found == ["999", "1.00 K", "999.99 K", "1.00 M", "1.23 M", "1.00 G"]


def test_a_registered_name_is_summarised_as_its_network() -> None:
    # As `classic-cnns summary NAME` takes it; the input's channels build the network.
    by_name = summary("lenet5_bn", (3, 32, 32))
    built = summary(model_info("lenet5_bn").build_net(in_channels=3), (3, 32, 32))
    assert by_name.rows == built.rows and by_name.total_params == built.total_params
    with pytest.raises(ValueError, match=r"model must be an nn.Module or a registered name; got"):
        summary(5, (1, 32, 32))  # type: ignore[arg-type]


def test_flops_differ_from_torch_s_counter_by_the_bias_adds_counted_twice() -> None:
    # As the README says: Lightning's summary (torch.utils.flop_counter) gives 833,040 for
    # LeNet-5, ours 2 x torchinfo's MACs, which count each bias add as a multiply-add.
    from torch.utils.flop_counter import FlopCounterMode

    from classic_cnns import create_model
    from classic_cnns.inspection import summary

    net = create_model("lenet5").net.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(1, 1, 32, 32))
    bias_adds = sum(
        row.output_shape[1] * math.prod(row.output_shape[2:])
        for row in summary(net, (1, 32, 32)).rows
        if row.type in ("Conv2d", "Linear")
    )
    assert counter.get_total_flops() == 833_040 and bias_adds == 6_518
    assert summary(net, (1, 32, 32)).total_flops == 833_040 + 2 * bias_adds


def test_the_totals_say_which_parameters_have_no_row() -> None:
    # GoogLeNet's auxiliary heads do not run in eval mode: counted in Total params, no row;
    # the table says how many, equal to the heads' own count.
    from classic_cnns import create_model

    model = create_model("googlenet")
    aux = sum(p.numel() for head in (model.net.aux1, model.net.aux2) for p in head.parameters())
    assert aux == 3_188_968 + 3_191_016
    found = summary(model, (3, 96, 96))
    assert found.params_not_run == aux
    assert f"in layers not run:    {aux:,} (counted above, no row)" in str(found)
    assert summary(create_model("resnet18"), (3, 64, 64)).params_not_run == 0
    assert "not run" not in str(summary(create_model("lenet5"), (1, 32, 32)))


class _CalledTwice(nn.Module):
    """One convolution applied twice; with ``alias``, also registered as ``again``; and a
    layer never called."""

    def __init__(self, alias: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.unused = nn.Linear(2, 2)
        if alias:
            self.again = self.conv  # the same module under two names: one set of parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        second = self.again if hasattr(self, "again") else self.conv
        return second(self.conv(x))


@pytest.mark.parametrize("alias", [False, True])
def test_a_module_called_twice_has_its_parameters_run(alias: bool) -> None:
    # The second call's row shows 0 parameters (counted at the first call): that must not
    # make the first call's parameters look "not run", whichever name the module has; only
    # the layer never called (6 parameters) is.
    net = _CalledTwice(alias)
    found = summary(net, (3, 8, 8))
    assert found.total_params == sum(p.numel() for p in net.parameters()) == 84 + 6
    assert [(row.name, row.params) for row in found.rows] == [("conv", 84), ("conv", 0)]
    assert found.params_not_run == 6
    assert re.search(r"\n  in layers not run: +6 \(counted above, no row\)\n", str(found))
    assert "in layers not run | 6 (counted above, no row) |" in found.to_markdown()
