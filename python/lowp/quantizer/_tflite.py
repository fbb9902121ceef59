"""From the prepared float graph and its activation ranges to a quantized
TensorFlow Lite graph (``lowp.tflite._schema.Graph``): the model lowp runs
(through ``lowp.tflite.Model``, the same lowering a loaded file gets) and the
one ``save_tflite`` writes, so what is evaluated is what is deployed.

The TFLite rules it follows: activations asymmetric per tensor; weights
int8 symmetric narrow-range per output channel (``int8``) or uint8
asymmetric (``uint8``); int32 bias at ``s_in * s_w[c]`` (float32 product,
as TFLite checks), zero point 0; max and average pooling and reshape keep
their input's scale and zero point, and so does a concatenation when its
inputs share one (``concat="shared"``; with ``"requantize"`` each input
keeps its own and the concatenation rescales); paddings TFLite's SAME and
VALID do not express become an explicit PAD (PADV2 with the lowest value
before a max pool). ReLU, ReLU6 and clamps to [-1, 1] are fused activations;
any other clamp is carried by the output range itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lowp.quant import QParams, choose_qparams, quantize
from lowp.tflite._ops import _tflite_padding
from lowp.tflite._schema import Graph, ModelError, OpSpec, Options, TensorSpec

from ._prepare import PGraph, PNode

__all__ = ["Scheme", "TensorQuant", "build", "clamp_problem", "share_groups"]

_SAME, _VALID = 0, 1
_ACT_NONE, _ACT_RELU, _ACT_RELU_N1_TO_1, _ACT_RELU6 = 0, 1, 2, 3


@dataclass(frozen=True)
class Scheme:
    """How integers are chosen: DESIGN.md section 8."""

    name: str  # "int8" or "uint8"
    per_channel: bool
    weight_bits: int = 8
    activation_bits: int = 8

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.int8 if self.name == "int8" else np.uint8)

    @property
    def act_range(self) -> tuple[int, int]:
        b = self.activation_bits
        return (-(2 ** (b - 1)), 2 ** (b - 1) - 1) if self.name == "int8" else (0, 2**b - 1)

    def activation(self, lo: float, hi: float) -> QParams:
        qmin, qmax = self.act_range
        qp = choose_qparams(
            np.array([lo, hi], np.float64),
            bits=self.activation_bits,
            signed=self.name == "int8",
        )
        # the model's integers are 8-bit; fewer activation bits narrow the
        # grid (scale) around the same zero point
        return QParams(float(qp.scale), int(qp.zero_point), qmin, qmax)

    def weights(self, w: np.ndarray) -> QParams:
        """``w`` [O, ...] float32: its quantization parameters."""
        axis = 0 if self.per_channel else None
        if self.name == "int8":
            return choose_qparams(
                w,
                bits=self.weight_bits,
                signed=True,
                symmetric=True,
                narrow_range=True,
                axis=axis,
            )
        return choose_qparams(w, bits=self.weight_bits, signed=False, axis=axis)


@dataclass(frozen=True)
class TensorQuant:
    """An activation's quantization: float32 scale, zero point in the model's integers."""

    scale: float
    zero_point: int
    lo: float  # the real range it covers
    hi: float


def share_groups(pg: PGraph, shared: set[str]) -> list[list[str]]:
    """Tensors that must share one scale and zero point: TFLite's rule for
    pooling and reshape, and the inputs and output of the concatenations
    whose outputs are in ``shared``. Groups come in graph order."""
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        parent.setdefault(a, a)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a: str, b: str) -> None:
        parent[find(a)] = find(b)

    for name in [*pg.inputs, *(n.output for n in pg.nodes)]:
        find(name)
    for n in pg.nodes:
        if n.op in ("max_pool2d", "avg_pool2d", "reshape") or (
            n.op == "concat" and n.output in shared
        ):
            for i in n.inputs:
                union(i, n.output)
    groups: dict[str, list[str]] = {}
    for name in parent:
        groups.setdefault(find(name), []).append(name)
    return list(groups.values())


_FUSED: dict[tuple[float | None, float | None], int] = {
    (0.0, None): _ACT_RELU,
    (0.0, 6.0): _ACT_RELU6,
    (-1.0, 1.0): _ACT_RELU_N1_TO_1,
}


def _fused(clamp: tuple[float | None, float | None]) -> int:
    """TFLite's fused activation for a clamp (NONE: the output range carries it)."""
    return _FUSED.get(clamp, _ACT_NONE)


def _padding(kind: int, size: int, k: int, s: int) -> tuple[int, int, int]:
    """(output size, pad before, pad after) of a TFLite padding kind: the
    rule lowp.tflite applies when it loads the file."""
    return _tflite_padding(kind, size, k, s, ModelError)


def _same_valid(size: int, k: int, s: int, before: int, after: int) -> int | None:
    """TFLite's padding kind giving exactly (before, after), or None."""
    for kind in (_VALID, _SAME):
        if _padding(kind, size, k, s)[1:] == (before, after):
            return kind
    return None


class _Builder:
    def __init__(self, pg: PGraph, quant: dict[str, TensorQuant], scheme: Scheme):
        self.pg, self.quant, self.scheme = pg, quant, scheme
        self.tensors: list[TensorSpec] = []
        self.ops: list[OpSpec] = []
        self.index: dict[str, int] = {}

    def _add(self, spec: TensorSpec) -> int:
        spec.index = len(self.tensors)
        self.tensors.append(spec)
        return spec.index

    def act(self, name: str, shape: tuple[int, ...] | None = None, like: str | None = None) -> int:
        """The activation tensor ``name`` (created on first use)."""
        if name in self.index:
            return self.index[name]
        q = self.quant[like or name]
        spec = TensorSpec(
            0,
            name,
            tuple(shape if shape is not None else self.pg.shapes[name]),
            self.scheme.dtype,
            np.array([q.scale], np.float32),
            np.array([q.zero_point], np.int64),
        )
        self.index[name] = self._add(spec)
        return self.index[name]

    def const(self, name: str, data: np.ndarray, qp: QParams | None = None, scale=None) -> int:
        spec = TensorSpec(0, name, tuple(data.shape), data.dtype)
        data = np.ascontiguousarray(data)
        data.flags.writeable = False
        spec.data = data
        if qp is not None:
            spec.scale = np.atleast_1d(np.asarray(qp.scale, np.float32))
            spec.zero_point = np.atleast_1d(np.asarray(qp.zero_point, np.int64))
            spec.quantized_dimension = 0
        elif scale is not None:
            spec.scale = np.atleast_1d(np.asarray(scale, np.float32))
            spec.zero_point = np.zeros(spec.scale.size, np.int64)
        self.index[name] = self._add(spec)
        return self.index[name]

    def op(
        self,
        name: str,
        inputs: list[int],
        outputs: list[int],
        kind: str | None,
        values: dict[str, Any] | None = None,
    ) -> None:
        options = Options.make(kind, values or {}) if kind else None
        # version 0: the writer gives the version TFLite's converter would
        self.ops.append(OpSpec(len(self.ops), name, 0, inputs, outputs, options))

    # -- helpers ----------------------------------------------------------------------

    def weights(self, node: PNode) -> tuple[int, int, QParams]:
        """Quantized weights and int32 bias tensors of a conv / linear node."""
        w, b = node.attrs["w"], node.attrs["b"]
        shift = node.attrs.get("bias_shift")  # bias correction (quantize_model)
        if shift is not None:
            b = b - shift
        qp = self.scheme.weights(w)
        qw = quantize(w, qp)
        s_in = np.float32(self.quant[node.inputs[0]].scale)
        s_w = np.atleast_1d(np.asarray(qp.scale, np.float32))
        bias_scale = (s_in * s_w).astype(np.float32)
        if bias_scale.size == 1:
            bias_scale = np.full(w.shape[0], bias_scale[0], np.float32)
        qb = np.clip(
            np.rint(b.astype(np.float64) / bias_scale.astype(np.float64)), -(2**31), 2**31 - 1
        ).astype(np.int32)
        wi = self.const(node.output + "/weights", qw, qp)
        bi = self.const(node.output + "/bias", qb, scale=bias_scale)
        return wi, bi, qp

    def padded(
        self, node: PNode, x: str, pads: tuple[int, int, int, int], value: int | None
    ) -> str:
        """``x`` padded explicitly (PAD with the zero point, or PADV2 with ``value``)."""
        top, bottom, left, right = pads
        n, h, w, c = self.pg.shapes[x]
        name = node.output + "/padded"
        shape = (n, h + top + bottom, w + left + right, c)
        xi = self.act(x)
        pi = self.const(
            name + "/paddings", np.array([[0, 0], [top, bottom], [left, right], [0, 0]], np.int32)
        )
        oi = self.act(name, shape, like=x)
        if value is None:
            self.op("PAD", [xi, pi], [oi], "PadOptions")
        else:
            q = self.quant[x]
            vi = self.const(
                name + "/value",
                np.array([value], self.scheme.dtype),
                QParams(np.float32(q.scale), q.zero_point, *self.scheme.act_range),
            )
            self.op("PADV2", [xi, pi, vi], [oi], "PadV2Options")
        self.pg.shapes[name] = shape
        return name

    def window(
        self,
        node: PNode,
        x: str,
        k: tuple[int, int],
        s: tuple[int, int],
        pads: tuple[int, int, int, int],
        pad_value: int | str | None,
    ) -> tuple[str, int]:
        """The input to read and TFLite's padding kind for a windowed op."""
        _, h, w, _ = self.pg.shapes[x]
        top, bottom, left, right = pads
        kh = _same_valid(h, k[0], s[0], top, bottom)
        kw = _same_valid(w, k[1], s[1], left, right)
        if kh is not None and kh == kw:
            return x, kh
        if pad_value == "refuse":
            raise node.unsupported(
                f"padding {pads} is neither TFLite's SAME nor VALID for this input, and an "
                "explicit pad would change this op's result"
            )
        return self.padded(node, x, pads, pad_value if isinstance(pad_value, int) else None), _VALID

    # -- ops ---------------------------------------------------------------------------

    def conv2d(self, node: PNode) -> None:
        a = node.attrs
        _, kh, kw, _ = a["w"].shape
        x, padding = self.window(node, node.inputs[0], (kh, kw), a["stride"], a["padding"], None)
        wi, bi, _ = self.weights(node)
        self.op(
            "CONV_2D",
            [self.act(x), wi, bi],
            [self.act(node.output)],
            "Conv2DOptions",
            {
                "Padding": padding,
                "StrideH": a["stride"][0],
                "StrideW": a["stride"][1],
                "DilationHFactor": 1,
                "DilationWFactor": 1,
                "FusedActivationFunction": _fused(node.clamp),
            },
        )

    def conv_transpose2d(self, node: PNode) -> None:
        a = node.attrs
        x = node.inputs[0]
        _, h, w, _ = self.pg.shapes[x]
        shape = self.pg.shapes[node.output]
        _, kh, kw, _ = a["w"].shape
        (sh, sw), (top, _, left, _) = a["stride"], a["crop"]
        kinds = []
        for size, full_in, k, s, before in (
            (shape[1], h, kh, sh, top),
            (shape[2], w, kw, sw, left),
        ):
            # TFLite crops by the padding a convolution from the output back
            # to the input would have; the rest of the full output after
            kind = None
            for cand in (_VALID, _SAME):
                if (
                    _padding(cand, size, k, s)[1] == before
                    and (full_in - 1) * s + k - size >= before
                ):
                    kind = cand
                    break
            kinds.append(kind)
        if kinds[0] is None or kinds[0] != kinds[1]:
            raise node.unsupported(
                f"a transposed convolution cropped by {a['crop']}: TFLite's TRANSPOSE_CONV "
                "crops only as SAME or VALID padding does (the odd pixel after)"
            )
        wi, bi, _ = self.weights(node)
        si = self.const(node.output + "/shape", np.array(shape, np.int32))
        self.op(
            "TRANSPOSE_CONV",
            [si, wi, self.act(x), bi],
            [self.act(node.output)],
            "TransposeConvOptions",
            {
                "Padding": kinds[0],
                "StrideH": sh,
                "StrideW": sw,
                "FusedActivationFunction": _fused(node.clamp),
            },
        )

    def linear(self, node: PNode) -> None:
        wi, bi, _ = self.weights(node)
        self.op(
            "FULLY_CONNECTED",
            [self.act(node.inputs[0]), wi, bi],
            [self.act(node.output)],
            "FullyConnectedOptions",
            {
                "FusedActivationFunction": _fused(node.clamp),
                "WeightsFormat": 0,
                "KeepNumDims": False,
            },
        )

    def _pool(self, node: PNode, name: str, pad_value: int | str | None) -> None:
        a = node.attrs
        x, padding = self.window(
            node, node.inputs[0], a["kernel"], a["stride"], a["padding"], pad_value
        )
        self.op(
            name,
            [self.act(x)],
            [self.act(node.output)],
            "Pool2DOptions",
            {
                "Padding": padding,
                "StrideH": a["stride"][0],
                "StrideW": a["stride"][1],
                "FilterHeight": a["kernel"][0],
                "FilterWidth": a["kernel"][1],
                "FusedActivationFunction": _ACT_NONE,
            },
        )

    def max_pool2d(self, node: PNode) -> None:
        self._pool(node, "MAX_POOL_2D", self.scheme.act_range[0])

    def avg_pool2d(self, node: PNode) -> None:
        self._pool(node, "AVERAGE_POOL_2D", "refuse")

    def concat(self, node: PNode) -> None:
        """TFLite's int8 CONCATENATION takes inputs of the output's scale and
        zero point only: an input with other parameters is requantized to
        them first by a QUANTIZE op (lowp runs it with the fixed-point
        multiplier, as TFLite)."""
        out = self.quant[node.output]
        ins = []
        for k, i in enumerate(node.inputs):
            if self.quant[i] == out:
                ins.append(self.act(i))
                continue
            name = f"{node.output}/requantized{k}"
            ri = self.act(name, self.pg.shapes[i], like=node.output)
            self.op("QUANTIZE", [self.act(i)], [ri], "QuantizeOptions")
            ins.append(ri)
        self.op(
            "CONCATENATION",
            ins,
            [self.act(node.output)],
            "ConcatenationOptions",
            {"Axis": node.attrs["axis"], "FusedActivationFunction": _ACT_NONE},
        )

    def add(self, node: PNode) -> None:
        a, b = (self.act(i) for i in node.inputs)
        self.op(
            "ADD",
            [a, b],
            [self.act(node.output)],
            "AddOptions",
            {"FusedActivationFunction": _fused(node.clamp), "PotScaleInt16": True},
        )

    def reshape(self, node: PNode) -> None:
        shape = self.pg.shapes[node.output]
        si = self.const(node.output + "/shape", np.array([-1, *shape[1:]], np.int32))
        self.op("RESHAPE", [self.act(node.inputs[0]), si], [self.act(node.output)], None)


def build(
    pg: PGraph, quant: dict[str, TensorQuant], scheme: Scheme, description: str
) -> tuple[Graph, dict[str, int]]:
    """The quantized TFLite graph of ``pg`` with every activation's
    quantization, and the TFLite tensor index of each of ``pg``'s tensors
    and of each layer's constants ("<layer output>/weights", "/bias")."""
    # a .tflite file holds batch 1; lowp (and TFLite's resize_tensor_input) run any batch
    one = PGraph(
        pg.nodes,
        pg.inputs,
        pg.outputs,
        {k: (1, *v[1:]) for k, v in pg.shapes.items()},
        pg.nchw,
        pg.source,
    )
    b = _Builder(one, quant, scheme)
    inputs = [b.act(i) for i in pg.inputs]
    for node in pg.nodes:
        getattr(b, node.op)(node)
    outputs = [b.act(o) for o in pg.outputs]
    return Graph(b.tensors, b.ops, inputs, outputs, description), dict(b.index)


def clamp_problem(node: PNode, q: TensorQuant) -> str | None:
    """Why ``node``'s clamp cannot be carried by its output range, or None."""
    lo, hi = node.clamp
    if _fused(node.clamp) != _ACT_NONE or (lo is None and hi is None):
        return None
    if (lo is not None and q.lo < lo - 1e-6 * abs(lo)) or (
        hi is not None and q.hi > hi + 1e-6 * abs(hi)
    ):
        return (
            f"clamps to [{lo}, {hi}] but its output shares the range [{q.lo:.6g}, {q.hi:.6g}]; "
            "TFLite fuses only ReLU, ReLU6 and [-1, 1]"
        )
    return None
