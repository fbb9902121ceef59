"""Running one op of a quantized graph on lowp's integer kernels by itself,
for the ``auto`` calibration method and the report's isolated figures: the
op's float inputs are quantized with their chosen parameters, the op runs
as a one-op lowp.tflite model (the same lowering as the whole model), and
the output is dequantized."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

import lowp
from lowp.quant import QParams

from ._prepare import PGraph, PNode
from ._tflite import Scheme, TensorQuant, build

__all__ = ["OneOp", "outputs_sqnr", "qparams_of", "sqnr"]


def sqnr(ref: np.ndarray, got: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB (inf when equal)."""
    ref64 = np.asarray(ref, np.float64)
    noise = float(np.sum((ref64 - np.asarray(got, np.float64)) ** 2))
    signal = float(np.sum(ref64**2))
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return 10.0 * float(np.log10(signal / noise))


def outputs_sqnr(refs: Sequence[np.ndarray], gots: Sequence[np.ndarray]) -> float:
    """One SQNR (dB) for a model's several outputs: their relative noise
    powers averaged (each output counts alike, whatever its scale)."""
    mean = float(np.mean([10.0 ** (-sqnr(r, g) / 10.0) for r, g in zip(refs, gots)]))
    return float("inf") if mean == 0 else -10.0 * math.log10(mean)


def qparams_of(q: TensorQuant, scheme: Scheme) -> QParams:
    """8-bit quantization parameters of an activation (the model's integers)."""
    qmin, qmax = (-128, 127) if scheme.name == "int8" else (0, 255)
    return QParams(np.float32(q.scale), q.zero_point, qmin, qmax)


def input_qparams(q: TensorQuant, scheme: Scheme) -> QParams:
    """What a graph input is quantized with: the scheme's activation range."""
    return QParams(np.float32(q.scale), q.zero_point, *scheme.act_range)


class OneOp:
    """``node`` of ``pg`` as a model of its own."""

    def __init__(self, pg: PGraph, node: PNode, quant: dict[str, TensorQuant], scheme: Scheme):
        from lowp.tflite import Model

        inputs = list(dict.fromkeys(node.inputs))
        names = [*inputs, node.output]
        one = PGraph(
            [node],
            inputs,
            [node.output],
            {k: pg.shapes[k] for k in names},
            {k for k in names if k in pg.nchw},
            pg.source,
        )
        graph, _ = build(one, quant, scheme, "one op")
        self.model = Model(graph)
        self.inputs = inputs
        self.node = node
        self.quant = quant
        self.scheme = scheme

    def integer(self, floats: dict[str, np.ndarray]) -> np.ndarray:
        """The op's integer output for float (NHWC) inputs."""
        qs = [lowp.quantize(floats[i], qparams_of(self.quant[i], self.scheme)) for i in self.inputs]
        return self.model(*qs)

    def __call__(self, floats: dict[str, np.ndarray]) -> np.ndarray:
        """The op's dequantized output for float (NHWC) inputs."""
        q = self.integer(floats)
        return lowp.dequantize(q, qparams_of(self.quant[self.node.output], self.scheme))
