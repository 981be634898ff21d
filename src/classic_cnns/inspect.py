"""Deprecated alias of :mod:`classic_cnns.inspection`: import from there instead.

The module was renamed so that no module of the package is named like the standard
library's ``inspect``. This alias re-exports the same names, warns once when imported, and
will be removed in a future release.
"""

import warnings

from classic_cnns.inspection import (
    LayerRow,
    ModelSummary,
    conv2d_output_size,
    conv2d_params,
    linear_params,
    pool2d_output_size,
    summary,
)

__all__ = [
    "LayerRow",
    "ModelSummary",
    "conv2d_output_size",
    "conv2d_params",
    "linear_params",
    "pool2d_output_size",
    "summary",
]

warnings.warn(
    "classic_cnns.inspect is deprecated and will be removed: import the same names from "
    "classic_cnns.inspection",
    DeprecationWarning,
    stacklevel=2,
)
