"""lowp's post-training quantizer (DESIGN.md section 8): float PyTorch and
ONNX models to lowp's integer graph, calibrated, evaluated and exported on
the same integer kernels that deploy them."""

from ._fgraph import UnsupportedModelError
from ._model import QuantizedModel, quantize_model
from ._report import LayerReport, Report, Sweep, plot_summary

__all__ = [
    "LayerReport",
    "QuantizedModel",
    "Report",
    "Sweep",
    "UnsupportedModelError",
    "plot_summary",
    "quantize_model",
]
