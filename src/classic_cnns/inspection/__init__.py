"""Inspection: output sizes, parameter counts and a layer-by-layer model summary.

Each concern is its own module:

* :mod:`~classic_cnns.inspection.formulas`: the output-size and parameter-count formulas
  of convolution, pooling and linear layers, as functions that build nothing;
* :mod:`~classic_cnns.inspection.receptive_field`: receptive fields followed tensor by
  tensor through a forward pass;
* :mod:`~classic_cnns.inspection.summarize`: :func:`summary`, which runs one real forward
  pass, checks every convolution and pooling layer against the formulas and reports
  shapes, parameters, multiply-accumulates and receptive fields (totals equal torchinfo's);
* :mod:`~classic_cnns.inspection.report`: what it returns, :class:`ModelSummary` of
  :class:`LayerRow`, printed as a text or Markdown table.

Example:
    >>> from classic_cnns import create_model
    >>> from classic_cnns.inspection import conv2d_output_size, summary
    >>> conv2d_output_size(32, kernel_size=5)  # LeNet-5's C1
    (28, 28)
    >>> summary(create_model("lenet5"), (1, 32, 32)).total_macs
    423038
"""

from classic_cnns.inspection.formulas import (
    conv2d_output_size,
    conv2d_params,
    linear_params,
    pool2d_output_size,
)
from classic_cnns.inspection.report import LayerRow, ModelSummary
from classic_cnns.inspection.summarize import summary

__all__ = [
    "LayerRow",
    "ModelSummary",
    "conv2d_output_size",
    "conv2d_params",
    "linear_params",
    "pool2d_output_size",
    "summary",
]
