"""Run TensorFlow Lite int8 and uint8 models on lowp's kernels, bit-exact with
TFLite's reference kernels.

>>> import lowp.tflite
>>> model = lowp.tflite.load("unet.tflite")   # parse, check, pack weights once
>>> y = model(x)                              # NumPy in, NumPy out

Running a model needs NumPy, lowp and the ``tflite`` schema package, never
TensorFlow. int8 tensors run on the uint8 kernels through the exact +128
mapping. ``lowp.tflite.bundled_model()`` is the path of a small int8 UNet
shipped with the package.

The file is untrusted: a malformed or inconsistent one is a :class:`ModelError`
(a ValueError) at load time, naming the tensor or operator. ``load(model,
memory_limit=...)`` bounds the bytes any one tensor may declare
(:data:`DEFAULT_MEMORY_LIMIT`, 2 GiB, by default).

``lowp.tflite.save(graph, path)`` (and ``serialize(graph)``, the bytes)
writes a parsed or Python-built graph (``lowp.tflite._schema.Graph``) back
as a .tflite file that TensorFlow Lite runs and ``load`` reads back as the
same graph.
"""

from __future__ import annotations

from pathlib import Path

from ._model import Model, OpTiming, TensorInfo, load
from ._ops import OPS, requantize_double
from ._schema import DEFAULT_MEMORY_LIMIT, ModelError, UnsupportedOpError
from ._write import save, serialize

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "SUPPORTED_OPS",
    "Model",
    "ModelError",
    "OpTiming",
    "TensorInfo",
    "UnsupportedOpError",
    "bundled_model",
    "load",
    "requantize_double",
    "save",
    "serialize",
]

#: TFLite builtin operators lowp runs
SUPPORTED_OPS = tuple(sorted(OPS))


def bundled_model() -> Path:
    """Path of the small int8 UNet .tflite shipped with lowp (made by
    ``python -m lowp.tflite._build``)."""
    return Path(__file__).resolve().parent.parent / "data" / "unet_int8.tflite"
