"""The float graph the front ends produce: the source model's computation in
its own layout (NCHW), one node per operation, weights as float32 NumPy
arrays. Nothing here depends on torch or onnx.

Source-level op kinds and their attributes:

``conv``            w [O, I, KH, KW], b [O] or None, stride (sh, sw), pads
                    (top, bottom, left, right), dilation (dh, dw), groups
``conv_transpose``  w [I, O, KH, KW], b, stride, pads, output_padding (h, w),
                    dilation, groups
``linear``          w [N, K], b
``batch_norm``      mean, var, gamma, beta (per channel), eps
``relu``            (none)
``clamp``           lo, hi (float; None for an open side)
``max_pool``        kernel, stride, pads, dilation, ceil_mode
``avg_pool``        kernel, stride, pads, ceil_mode, count_include_pad
``global_avg_pool`` (mean over H and W, keeping them as 1 x 1)
``concat``          axis
``add``             (two tensors of one shape)
``flatten``         start (the first flattened axis; the rest to the end)
``reshape``         shape (the target, -1 allowed once)
``identity``        (dropout in eval mode, aliases)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["FGraph", "FNode", "UnsupportedModelError"]


class UnsupportedModelError(ValueError):
    """The model holds an operation (or a variant of one) that lowp cannot
    quantize; the message names the operation and its place in the model."""


@dataclass
class FNode:
    op: str
    inputs: list[str]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)
    #: where the node comes from, for messages ("node 'conv2d_3' (aten.conv2d)")
    where: str = ""
    #: a short name for tables: the module path ("enc1.0") or the node's name
    label: str = ""

    def unsupported(self, message: str) -> UnsupportedModelError:
        return UnsupportedModelError(f"{self.where or self.op}: {message}")


@dataclass
class FGraph:
    nodes: list[FNode]
    inputs: list[str]
    outputs: list[str]
    #: the inputs' shapes in the source layout, when the source fixes them
    #: (None for a dimension the source leaves open, such as the batch)
    input_shapes: dict[str, tuple[int | None, ...]]
    #: "torch" or "onnx", for messages
    source: str = ""
