"""lowp: exact, fast uint8 integer kernels for quantized inference.

Integer results are bit-identical to gemmlowp / TensorFlow Lite's reference
semantics on every ISA path (scalar, AVX2, NEON, NEON dot-product).
"""

from __future__ import annotations

from . import reference
from ._runtime import (
    MAX_THREADS,
    cpu_info,
    get_num_threads,
    get_path,
    set_num_threads,
    set_path,
)
from .conv import Conv2d, ConvTranspose2d, conv2d, conv_transpose2d
from .fixedpoint import (
    Requant,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rdivpot,
    requantize,
    srdhm,
)
from .gemm import Linear, gemm
from .quant import QParams, QuantError, choose_qparams, dequantize, quant_error, quantize

__version__ = "0.1.0"

_QUANTIZER = ("QuantizedModel", "UnsupportedModelError", "quantize_model")


def __getattr__(name: str):
    # the quantizer loads on first use: ``import lowp`` stays light
    if name in _QUANTIZER:
        from . import quantizer

        return getattr(quantizer, name)
    raise AttributeError(f"module 'lowp' has no attribute {name!r}")


__all__ = [
    "MAX_THREADS",
    "Conv2d",
    "ConvTranspose2d",
    "Linear",
    "QParams",
    "QuantError",
    "QuantizedModel",
    "Requant",
    "UnsupportedModelError",
    "choose_qparams",
    "conv2d",
    "conv_transpose2d",
    "cpu_info",
    "dequantize",
    "gemm",
    "get_num_threads",
    "get_path",
    "multiply_by_quantized_multiplier",
    "quant_error",
    "quantize",
    "quantize_model",
    "quantize_multiplier",
    "rdivpot",
    "reference",
    "requantize",
    "set_num_threads",
    "set_path",
    "srdhm",
]
