"""lowp.graph: the integer graph every model becomes (DESIGN.md section 7),
whatever it came from, and its runtime.

A :class:`Graph` holds :class:`Tensor` s (activations in the uint8 domain,
with scale and zero point) and :class:`Node` s (an op kind, typed attributes,
the requant mode that names its arithmetic). :func:`check` validates it once;
:class:`Runtime` packs its weights, lays out one activation arena by tensor
lifetimes and runs every inference as one native call (lowp._core.Plan),
from any number of threads at once. Front ends (``lowp.tflite``) lower their
formats into it.
"""

from ._ir import OPS, REQUANT_MODES, Graph, GraphError, Node, Tensor, check
from ._model import NodeTiming, Runtime, TensorInfo
from ._plan import Layout, layout

__all__ = [
    "OPS",
    "REQUANT_MODES",
    "Graph",
    "GraphError",
    "Layout",
    "Node",
    "NodeTiming",
    "Runtime",
    "Tensor",
    "TensorInfo",
    "check",
    "layout",
]
