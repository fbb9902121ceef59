"""The integer graph (DESIGN.md section 7): tensors, nodes, and the check
that validates a graph once, with errors that name the node.

Activations are held in the uint8 domain of DESIGN.md section 2: a tensor of
an int8 model is stored as ``q + 128`` with zero point ``z + 128``, and its
``io_dtype`` (int8) says how the caller sees it. Weights and the other
constant operands of a node are its attributes, already in that domain.

Node kinds and their attributes (every shape NHWC, every array NumPy):

``conv2d``            weights uint8 [O, KH, KW, I], w_zero_point int32 [1 or O],
                      bias int32 [O] or None, stride (sh, sw), padding (top,
                      bottom, left, right), requant ``q31``: multiplier, shift
                      int32 [1 or O], clamp (lo, hi)
``conv_transpose2d``  as conv2d, with crop (top, bottom, left, right) of the
                      full output instead of padding
``fully_connected``   weights uint8 [K, N], w_zero_point, bias, requant
                      ``double``: real float64 [1 or N], clamp; keep_dims
``max_pool2d``        kernel (kh, kw), stride, padding, clamp
``avg_pool2d``        as max_pool2d, and offset (128: the average of an int8
                      model's own integers, whose rounding differs)
``concat``            axis; requant ``float_rescale``: rescale, one entry per
                      input, None or (scale, bias) float32; offset, the
                      output's zero point and range in the model's integers
``add``               requant ``add_q31``: left_shift, multipliers (ma, sa, mb,
                      sb, mo, so), clamp
``pad``               pads ((before, after) per dimension), value
``reshape``           (the output tensor's shape)
``quantize``          from float32: scale, zero_point and range in the model's
                      integers, offset; from uint8 (requant ``q31``):
                      multiplier, shift
``dequantize``        scale (float64)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = ["OPS", "REQUANT_MODES", "Graph", "GraphError", "Node", "Tensor", "check"]

#: The arithmetic a requantizing node names (DESIGN.md section 7).
REQUANT_MODES = ("q31", "double", "float_rescale", "add_q31")

_U8 = np.dtype(np.uint8)
_F32 = np.dtype(np.float32)
_INT32_LIMIT = 2**31


class GraphError(ValueError):
    """A graph that is not well formed; the message names the node or tensor."""


@dataclass(frozen=True)
class Tensor:
    """An activation: its shape, storage dtype (uint8 for quantized values,
    float32) and, when quantized, scale and zero point (uint8 domain)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float | None = None
    zero_point: int | None = None
    #: how the caller sees the values: int8 for an int8 model's tensors
    io_dtype: np.dtype | None = None
    #: a constant activation (an operand read like any other input)
    data: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    @property
    def view_dtype(self) -> np.dtype:
        return np.dtype(self.io_dtype if self.io_dtype is not None else self.dtype)

    def describe(self) -> str:
        return f"tensor {self.name!r} {np.dtype(self.view_dtype).name}{list(self.shape)}"


@dataclass
class Node:
    """One operation: kind, tensor ids in and out, typed attributes, and the
    requant mode when it requantizes."""

    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    requant: str | None = None
    #: for messages and timings ("operator 3 (CONV_2D)")
    name: str = ""

    def what(self) -> str:
        return self.name or self.op


@dataclass
class Graph:
    tensors: dict[int, Tensor]
    nodes: list[Node]
    inputs: list[int]
    outputs: list[int]

    def with_batch(self, shapes: dict[int, tuple[int, ...]]) -> Graph:
        """The same graph with the graph inputs of ``shapes`` (tensor id ->
        shape) resized in their leading (batch) dimension, every other
        tensor's shape propagated through the nodes. Raises GraphError when
        a node does not allow it."""
        tensors = dict(self.tensors)
        for i, shape in shapes.items():
            old = tensors[i]
            if len(shape) != len(old.shape) or tuple(shape[1:]) != tuple(old.shape[1:]):
                raise GraphError(
                    f"{old.describe()}: only the leading (batch) dimension may change, "
                    f"got shape {tuple(shape)}"
                )
            tensors[i] = replace(old, shape=tuple(int(d) for d in shape))
        nodes = []
        for node in self.nodes:
            ins = [tensors[i] for i in node.inputs]
            new = _infer(node, ins, [tensors[i] for i in node.outputs])
            for i, shape in zip(node.outputs, new):
                tensors[i] = replace(tensors[i], shape=shape)
            if node.op == "reshape":  # its batch rule is relative to the sizes it was made for
                node = replace(node, attrs={**node.attrs, "source_size": ins[0].size})
            nodes.append(node)
        out = Graph(tensors, nodes, list(self.inputs), list(self.outputs))
        check(out)
        return out


def _fail(node: Node, message: str) -> GraphError:
    return GraphError(f"{node.what()}: {message}")


def _conv_out(size: int, before: int, after: int, k: int, s: int) -> int:
    return (size + before + after - k) // s + 1


def _infer(node: Node, ins: list[Tensor], outs: list[Tensor]) -> list[tuple[int, ...]]:
    """The output shapes a node computes from its inputs' shapes."""
    a = node.attrs
    op = node.op
    if op in ("conv2d", "max_pool2d", "avg_pool2d"):
        n, h, w, c = _rank(node, ins[0], 4)
        if op == "conv2d":
            o, kh, kw, _ = a["weights"].shape
        else:
            (kh, kw), o = a["kernel"], c
        (sh, sw), (top, bottom, left, right) = a["stride"], a["padding"]
        return [(n, _conv_out(h, top, bottom, kh, sh), _conv_out(w, left, right, kw, sw), o)]
    if op == "conv_transpose2d":
        n, h, w, c = _rank(node, ins[0], 4)
        o, kh, kw, _ = a["weights"].shape
        (sh, sw), (top, bottom, left, right) = a["stride"], a["crop"]
        return [(n, (h - 1) * sh + kh - top - bottom, (w - 1) * sw + kw - left - right, o)]
    if op == "fully_connected":
        k, n_out = a["weights"].shape
        size = ins[0].size
        if k == 0 or size % k:
            raise _fail(node, f"{ins[0].describe()} does not split into rows of K={k}")
        if a.get("keep_dims"):
            return [(*ins[0].shape[:-1], n_out)]
        return [(size // k, n_out)]
    if op == "concat":
        rank = len(ins[0].shape)
        axis = a["axis"]
        shape = list(ins[0].shape)
        shape[axis] = sum(t.shape[axis] for t in ins if len(t.shape) == rank)
        return [tuple(shape)]
    if op == "add":
        try:
            return [tuple(np.broadcast_shapes(ins[0].shape, ins[1].shape))]
        except ValueError:
            raise _fail(
                node, f"{ins[0].describe()} and {ins[1].describe()} do not broadcast"
            ) from None
    if op == "pad":
        pads = a["pads"]
        if len(pads) != len(ins[0].shape):
            raise _fail(node, f"pads {list(pads)} do not fit {ins[0].describe()}")
        return [tuple(d + lo + hi for d, (lo, hi) in zip(ins[0].shape, pads))]
    if op == "reshape":
        old_in, old_out = a.get("source_size"), outs[0].shape
        size = ins[0].size
        if old_in is None or old_in == size or not old_out:
            return [tuple(old_out)]
        # a batch change: the leading dimension scales with the input
        lead = old_out[0] * size
        if lead % old_in:
            raise _fail(node, f"cannot reshape {ins[0].describe()} for this batch size")
        return [(lead // old_in, *old_out[1:])]
    if op in ("quantize", "dequantize"):
        return [tuple(ins[0].shape)]
    raise _fail(node, f"unknown op kind {op!r}")


def _rank(node: Node, t: Tensor, rank: int) -> tuple[int, ...]:
    if len(t.shape) != rank:
        raise _fail(node, f"{t.describe()} must have rank {rank}")
    return tuple(t.shape)


def _quantized(node: Node, t: Tensor) -> None:
    if t.dtype != _U8 or t.scale is None or t.zero_point is None:
        raise _fail(node, f"{t.describe()} must be a quantized (uint8 domain) tensor")
    if not (np.isfinite(t.scale) and t.scale > 0):
        raise _fail(node, f"{t.describe()} has scale {t.scale}, not a positive finite number")
    if not 0 <= t.zero_point <= 255:
        raise _fail(node, f"{t.describe()} has zero point {t.zero_point} outside the uint8 domain")


def _clamp(node: Node) -> tuple[int, int]:
    lo, hi = node.attrs["clamp"]
    if not 0 <= lo <= hi <= 255:
        raise _fail(node, f"clamp ({lo}, {hi}) must satisfy 0 <= lo <= hi <= 255")
    return int(lo), int(hi)


def _int_array(node: Node, name: str, count: tuple[int, ...], lo: int, hi: int) -> np.ndarray:
    v = np.asarray(node.attrs[name])
    if v.dtype.kind not in "iu" or v.ndim != 1 or v.size not in count:
        raise _fail(node, f"{name} must be 1-D integers with {' or '.join(map(str, count))} values")
    if v.size and (int(v.min()) < lo or int(v.max()) > hi):
        raise _fail(node, f"{name} must lie in [{lo}, {hi}]")
    return v


def _check_requant_q31(node: Node, channels: int) -> None:
    if node.requant != "q31":
        raise _fail(node, f"requant mode must be 'q31', got {node.requant!r}")
    _int_array(node, "multiplier", (1, channels), 0, _INT32_LIMIT - 1)
    _int_array(node, "shift", (np.asarray(node.attrs["multiplier"]).size,), -31, 30)


def _check_weights(node: Node, x: Tensor, rank: int) -> int:
    w = node.attrs["weights"]
    if not isinstance(w, np.ndarray) or w.dtype != _U8 or w.ndim != rank or 0 in w.shape:
        raise _fail(node, f"weights must be a non-empty uint8 array of rank {rank}")
    channels = w.shape[0] if rank == 4 else w.shape[1]
    _int_array(node, "w_zero_point", (1, channels), 0, 255)
    bias = node.attrs.get("bias")
    if bias is not None:
        b = np.asarray(bias)
        if b.dtype != np.int32 or b.shape != (channels,):
            raise _fail(node, f"bias must be int32 with {channels} values")
    return channels


def _check_node(node: Node, ins: list[Tensor], outs: list[Tensor]) -> None:
    op, a = node.op, node.attrs
    if op in ("conv2d", "conv_transpose2d"):
        x = ins[0]
        _quantized(node, x)
        channels = _check_weights(node, x, 4)
        _, kh, kw, c = a["weights"].shape
        if x.shape[3:] != (c,):
            raise _fail(node, f"the weights have {c} input channels, {x.describe()}")
        sh, sw = a["stride"]
        if sh < 1 or sw < 1:
            raise _fail(node, f"stride ({sh}, {sw}) must be positive")
        key = "padding" if op == "conv2d" else "crop"
        if len(a[key]) != 4 or min(a[key]) < 0:
            raise _fail(node, f"{key} {a[key]} must be four sizes >= 0")
        terms = c * kh * kw if op == "conv2d" else c * -(-kh // sh) * -(-kw // sw)
        if terms > 33025:
            raise _fail(node, f"{terms} products per output exceed the exact int32 limit 33025")
        _check_requant_q31(node, channels)
        _clamp(node)
        _quantized(node, outs[0])
    elif op == "fully_connected":
        _quantized(node, ins[0])
        _check_weights(node, ins[0], 2)
        if a["weights"].shape[0] > 33025:
            raise _fail(node, "K exceeds the exact int32 limit 33025")
        if node.requant != "double":
            raise _fail(node, f"requant mode must be 'double', got {node.requant!r}")
        real = np.asarray(a["real"], dtype=np.float64)
        if real.ndim != 1 or real.size not in (1, a["weights"].shape[1]):
            raise _fail(node, "real must have 1 or N values")
        if not np.all(np.isfinite(real)) or np.any(real < 0) or np.any(real > 2**20):
            raise _fail(node, f"real multipliers {real.min()}..{real.max()} are out of range")
        _clamp(node)
        _quantized(node, outs[0])
    elif op in ("max_pool2d", "avg_pool2d"):
        _quantized(node, ins[0])
        _quantized(node, outs[0])
        (kh, kw), (sh, sw) = a["kernel"], a["stride"]
        top, bottom, left, right = a["padding"]
        _, h, w, _ = ins[0].shape
        if min(kh, kw, sh, sw) < 1 or min(top, bottom, left, right) < 0:
            raise _fail(node, f"window {kh}x{kw}, stride ({sh}, {sw}) must be positive")
        if top >= kh or bottom >= kh or left >= kw or right >= kw:
            raise _fail(node, "a window lies wholly in the padding")
        if kh > h + top + bottom or kw > w + left + right:
            raise _fail(node, f"a {kh}x{kw} window does not fit the input {h}x{w}")
        _clamp(node)
    elif op == "concat":
        out = outs[0]
        _quantized(node, out)
        rank = len(out.shape)
        axis = a["axis"]
        if not 0 <= axis < rank:
            raise _fail(node, f"axis {axis} is outside rank {rank}")
        if len(a["rescale"]) != len(ins):
            raise _fail(node, "rescale needs one entry per input")
        for t, rs in zip(ins, a["rescale"]):
            _quantized(node, t)
            if len(t.shape) != rank or any(
                x != y for d, (x, y) in enumerate(zip(t.shape, out.shape)) if d != axis
            ):
                raise _fail(node, f"{t.describe()} does not fit {out.describe()} on axis {axis}")
            if rs is not None:
                if node.requant != "float_rescale":
                    raise _fail(node, "rescaled inputs need requant mode 'float_rescale'")
                if not all(np.isfinite(np.float32(v)) for v in rs):
                    raise _fail(node, f"rescale {rs} is not finite")
    elif op == "add":
        for t in (*ins, outs[0]):
            _quantized(node, t)
        if node.requant != "add_q31":
            raise _fail(node, f"requant mode must be 'add_q31', got {node.requant!r}")
        ma, sa, mb, sb, mo, so = a["multipliers"]
        for m, s in ((ma, sa), (mb, sb), (mo, so)):
            if not (0 <= m < _INT32_LIMIT and -31 <= s <= 30):
                raise _fail(node, f"multiplier ({m}, {s}) is out of range")
        if not 0 <= a["left_shift"] <= 20:
            raise _fail(node, "left_shift must be in [0, 20]")
        _clamp(node)
    elif op == "pad":
        if min((v for p in a["pads"] for v in p), default=0) < 0:
            raise _fail(node, f"negative paddings {list(a['pads'])}")
        if ins[0].dtype != outs[0].dtype or not 0 <= a["value"] <= 255:
            raise _fail(node, "pad keeps the dtype and pads with a uint8 value")
    elif op == "reshape":
        if ins[0].size != outs[0].size or ins[0].dtype != outs[0].dtype:
            raise _fail(node, f"{ins[0].describe()} cannot be reshaped to {outs[0].describe()}")
    elif op == "quantize":
        _quantized(node, outs[0])
        if ins[0].dtype == _F32:
            s = np.float32(a["scale"])
            if not (np.isfinite(s) and s > 0):
                raise _fail(node, f"scale {a['scale']} must be positive and finite")
        else:
            _quantized(node, ins[0])
            if node.requant != "q31":
                raise _fail(node, "a uint8 -> uint8 quantize needs requant mode 'q31'")
            _int_array(node, "multiplier", (1,), 0, _INT32_LIMIT - 1)
            _int_array(node, "shift", (1,), -31, 30)
    elif op == "dequantize":
        _quantized(node, ins[0])
        if outs[0].dtype != _F32 or not np.isfinite(a["scale"]):
            raise _fail(node, "dequantize gives float32 with a finite scale")


_ARITY = {
    "conv2d": (1, 1),
    "conv_transpose2d": (1, 1),
    "fully_connected": (1, 1),
    "max_pool2d": (1, 1),
    "avg_pool2d": (1, 1),
    "concat": (1, 1 << 16),
    "add": (2, 2),
    "pad": (1, 1),
    "reshape": (1, 1),
    "quantize": (1, 1),
    "dequantize": (1, 1),
}
OPS = tuple(_ARITY)


def check(graph: Graph) -> None:
    """Validates the whole graph once: every tensor read is written before
    (or is an input or constant), every node's attributes and shapes are
    consistent. Raises GraphError naming the node or tensor."""
    written = set(graph.inputs)
    for i, t in graph.tensors.items():
        if t.data is not None:
            if i in graph.inputs:
                raise GraphError(f"graph input {t.describe()} is a constant")
            written.add(i)
        if any(d < 0 for d in t.shape):
            raise GraphError(f"{t.describe()} has a negative dimension")
    for i in graph.inputs:
        if i not in graph.tensors:
            raise GraphError(f"graph input {i} is not a tensor of the graph")
    for node in graph.nodes:
        if node.op not in _ARITY:
            raise _fail(node, f"unknown op kind {node.op!r} (known: {', '.join(OPS)})")
        lo, hi = _ARITY[node.op]
        if not lo <= len(node.inputs) <= hi or len(node.outputs) != 1:
            raise _fail(node, f"has {len(node.inputs)} inputs and {len(node.outputs)} outputs")
        if node.requant is not None and node.requant not in REQUANT_MODES:
            raise _fail(node, f"unknown requant mode {node.requant!r}")
        for i in node.inputs:
            if i not in graph.tensors:
                raise _fail(node, f"reads tensor {i}, which the graph does not have")
            if i not in written:
                raise _fail(node, f"reads {graph.tensors[i].describe()} before anything writes it")
        for i in node.outputs:
            if i not in graph.tensors:
                raise _fail(node, f"writes tensor {i}, which the graph does not have")
            if i in written:
                raise _fail(node, f"writes {graph.tensors[i].describe()}, written before")
        ins = [graph.tensors[i] for i in node.inputs]
        outs = [graph.tensors[i] for i in node.outputs]
        _check_node(node, ins, outs)
        for t, shape in zip(outs, _infer(node, ins, outs)):
            if tuple(t.shape) != tuple(shape) or min(shape, default=1) < 1:
                raise _fail(
                    node,
                    f"{t.describe()} has shape {list(t.shape)}, the node computes {list(shape)}",
                )
        written.update(node.outputs)
    for i in graph.outputs:
        if i not in written:
            raise GraphError(f"graph output {graph.tensors[i].describe()} is never written")
