"""What :func:`~classic_cnns.inspection.summary` returns, and its text and Markdown tables.

Example:
    >>> from classic_cnns import create_model
    >>> from classic_cnns.inspection import summary
    >>> table = summary(create_model("lenet5"), (1, 32, 32))
    >>> table.rows[-1].name, table.rows[-1].output_shape
    ('fc', (1, 10))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from classic_cnns.inspection.formulas import Pair

__all__ = ["LayerRow", "ModelSummary"]


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
        ceil_mode: For pooling, whether the output size rounds up (PyTorch's ``ceil_mode``:
            GoogLeNet's and NiN's max pooling), else ``None``.
        output_shape: Shape of the output, batch dimension included.
        params: Parameters of the module; counted at its first call only, so a module
            called twice (a shared ReLU) shows 0 the second time.
        macs: Multiply-accumulates of this call, counted as torchinfo counts them.
        receptive_field: ``(h, w)`` input pixels that one output element sees, or
            ``None`` where it could not be followed.
        jump: ``(h, w)`` input pixels between neighbouring output elements.

    Example:
        >>> from classic_cnns import create_model
        >>> from classic_cnns.inspection import summary
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
    ceil_mode: bool | None
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
    "ceil_mode": "Ceil mode",
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


def _aligned(values: list[str], widths: list[int]) -> str:
    """One line of the text table: numbers right-aligned, the rest left-aligned."""
    return "  ".join(
        value.rjust(width) if key in _NUMERIC else value.ljust(width)
        for value, width, key in zip(values, widths, _HEADERS, strict=True)
    ).rstrip()


def _human(number: float, units: tuple[str, ...] = ("", "K", "M", "G", "T")) -> str:
    scale = 0  # 999,998 is "1.00 M", not "1000.00 K": the scale follows the rounded value
    while abs(float(f"{number:.2f}")) >= 1000 and scale < len(units) - 1:
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
        activation_bytes: Bytes of all leaf-layer outputs, in-place layers included: an
            estimate of the forward pass's activations, not a bound (what ``forward`` makes
            outside leaf layers, such as ``torch.cat``'s outputs, is not counted).

    Example:
        >>> from classic_cnns import create_model
        >>> from classic_cnns.inspection import summary
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
            >>> from classic_cnns.inspection import summary
            >>> rows = summary(create_model("lenet5"), (1, 32, 32)).to_rows()
            >>> rows[2]["type"], rows[2]["kernel_size"], rows[2]["stride"]
            ('AvgPool2d', (2, 2), (2, 2))
        """
        return [asdict(row) for row in self.rows]

    @property
    def params_not_run(self) -> int:
        """Parameters of modules the forward pass did not call, which have no row (GoogLeNet's
        auxiliary heads in eval mode), or 0.

        Example:
            >>> from classic_cnns import create_model
            >>> from classic_cnns.inspection import summary
            >>> summary(create_model("googlenet", num_classes=10), (3, 96, 96)).params_not_run
            4350484
        """
        # A row holds its module's parameters at the module's first call only (0 after),
        # and a module registered under two names is one module: each is counted once.
        # Parameters tied between two different modules are counted by each (clamped at 0).
        shown = sum(row.params for row in self.rows)
        return max(self.total_params - shown, 0)

    def _totals(self) -> list[tuple[str, str]]:
        totals = [("Total params", f"{self.total_params:,}")]
        if unused := self.params_not_run:
            totals.append(("  in layers not run", f"{unused:,} (counted above, no row)"))
        return [
            *totals,
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

        rule_width = sum(widths) + 2 * (len(widths) - 1)
        totals = self._totals()
        label_width = max(len(label) for label, _ in totals)
        return "\n".join(
            [
                self._title(),
                "=" * rule_width,
                _aligned(headers, widths),
                "-" * rule_width,
                *(_aligned(r, widths) for r in cells),
                "=" * rule_width,
                *(f"{label + ':':<{label_width + 1}} {value}" for label, value in totals),
            ]
        )

    def to_markdown(self) -> str:
        """The summary as a GitHub-flavoured Markdown table followed by the totals.

        Example:
            >>> from classic_cnns import create_model
            >>> from classic_cnns.inspection import summary
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
