"""Planning a checked graph: tensor lifetimes, the activation arena laid out
by them, and the native steps (lowp._core.Plan) that run the nodes in order.

The arena follows TFLite's arena planner in spirit: every buffer lives from
the step that writes it to the last step that reads it, and buffers are
placed largest first at the lowest offset that no buffer alive at the same
time occupies. A reshape's output shares its input's buffer.

Tables: a node whose arithmetic is a function of one input byte (a uint8
requantization, a concatenation's float rescale, a dequantization) or of two
(ADD) is tabulated here, once, by the reference arithmetic of its requant
mode (the same NumPy code that defines it), and the native step only looks
values up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _core
from ..fixedpoint import multiply_by_quantized_multiplier
from ._ir import Graph, GraphError, Node, Tensor

__all__ = ["Layout", "NativeOps", "Planned", "build_plan", "layout"]

_ALIGN = 64


def round_half_away(x: Any) -> Any:
    """C's ``round``: halves go away from zero (NumPy's ``round`` goes to even)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


# ------------------------------------------------------------------------------------------
# The requant modes' tables


def float_rescale_table(
    scale: np.float32, bias: np.float32, offset: int, zp_out: int, lo: int, hi: int
) -> np.ndarray:
    """``float_rescale`` of every uint8 value: in the model's integers ``q =
    x - offset``, ``round_half_away(float32(q) * scale + bias) + zp_out``
    (float32 multiply, then float32 add), clamped to [lo, hi], back + offset."""
    native = (np.arange(256, dtype=np.int32) - offset).astype(np.float32)
    v = native * np.float32(scale) + np.float32(bias)
    q = round_half_away(v.astype(np.float64)) + zp_out
    return (np.clip(q, lo, hi) + offset).astype(np.uint8)


def q31_table(multiplier: int, shift: int, zp_in: int, zp_out: int, lo: int, hi: int) -> np.ndarray:
    """``q31`` requantization of every uint8 value ``x``: (x - zp_in) times the
    fixed-point multiplier, + zp_out, clamped."""
    acc = np.arange(256, dtype=np.int32) - np.int32(zp_in)
    v = multiply_by_quantized_multiplier(acc, multiplier, shift).astype(np.int64) + zp_out
    return np.clip(v, lo, hi).astype(np.uint8)


def add_q31_table(
    zp_a: int, zp_b: int, zp_out: int, left_shift: int, mults: tuple[int, ...], lo: int, hi: int
) -> np.ndarray:
    """TFLite's ADD for every pair of uint8 values (a * 256 + b): both inputs
    shifted left by ``left_shift``, scaled by their q31 multipliers, added,
    scaled to the output, + zp_out, clamped."""
    ma, sa, mb, sb, mo, so = mults
    v = np.arange(256, dtype=np.int32)
    a = ((v - np.int32(zp_a)) << left_shift).astype(np.int32)
    b = ((v - np.int32(zp_b)) << left_shift).astype(np.int32)
    sa_ = multiply_by_quantized_multiplier(a, ma, sa).astype(np.int64)
    sb_ = multiply_by_quantized_multiplier(b, mb, sb).astype(np.int64)
    total = (sa_[:, None] + sb_[None, :]).reshape(-1)
    if np.any(np.abs(total) >= 2**31):
        raise GraphError("ADD: the scaled sum overflows int32 for these scales")
    out = multiply_by_quantized_multiplier(total.astype(np.int32), mo, so).astype(np.int64)
    return np.clip(out + zp_out, lo, hi).astype(np.uint8)


def dequantize_table(scale: float, zero_point: int) -> np.ndarray:
    """``float32(float64(scale) * (x - zero_point))`` for every uint8 x."""
    v = np.arange(256, dtype=np.int32) - np.int32(zero_point)
    return (np.float64(scale) * v).astype(np.float32)


# ------------------------------------------------------------------------------------------
# Memory


@dataclass(frozen=True)
class Layout:
    """Where every tensor lives: byte offsets into one arena."""

    offsets: dict[int, int]  # tensor id -> offset
    scratch: dict[int, int]  # node position -> offset of its scratch buffer
    arena_bytes: int
    #: the largest total of buffers alive at one step (no layout can do better)
    lower_bound: int
    #: tensors written in place into a concatenation: elements per pixel
    pixel_stride: dict[int, int] = field(default_factory=dict)


def _scratch_bytes(graph: Graph, node: Node) -> int:
    if node.op == "fully_connected":
        return graph.tensors[node.outputs[0]].size * 4
    return 0


#: nodes whose native step can write its NHWC output with a pixel stride
#: larger than its channel count, straight into a concatenation's output
#: (lowp::ConvGeometry::out_stride, graph_kernels.h PoolShape::out_stride)
STRIDED_OUTPUT_OPS = frozenset({"conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d"})


def _embedded(graph: Graph) -> dict[int, tuple[int, int]]:
    """The concatenation inputs written in place by their producers: tensor
    -> (the concatenation's output, channel offset). A tensor qualifies when
    the concatenation joins channels (the last axis), it is that node's only
    use, and its producer can write with a pixel stride."""
    producer: dict[int, Node] = {}
    uses: dict[int, int] = {}
    for node in graph.nodes:
        for i in node.outputs:
            producer[i] = node
        for i in node.inputs:
            uses[i] = uses.get(i, 0) + 1
    boundary = set(graph.inputs) | set(graph.outputs)
    out: dict[int, tuple[int, int]] = {}
    for node in graph.nodes:
        if node.op != "concat":
            continue
        dst = graph.tensors[node.outputs[0]]
        if node.attrs["axis"] != len(dst.shape) - 1 or len(dst.shape) != 4:
            continue
        at = 0
        for i, rs in zip(node.inputs, node.attrs["rescale"]):
            src = producer.get(i)
            if (
                rs is None
                and src is not None
                and src.op in STRIDED_OUTPUT_OPS
                and uses.get(i) == 1
                and i not in boundary
                and node.outputs[0] not in boundary
            ):
                out[i] = (node.outputs[0], at)
            at += graph.tensors[i].shape[-1]
    return out


def layout(graph: Graph, *, reuse: bool = True) -> Layout:
    """Lays out the arena by lifetimes (``reuse=False``: every tensor keeps
    its own buffer and none is written in place, for tracing)."""
    n = len(graph.nodes)
    root: dict[int, int] = {}  # tensor -> the tensor whose buffer it shares
    for node in graph.nodes:
        if node.op == "reshape":
            src = node.inputs[0]
            root[node.outputs[0]] = root.get(src, src)
    embedded = _embedded(graph) if reuse else {}
    for i, (dst, _) in embedded.items():
        root[i] = root.get(dst, dst)
    # buffers: key -> [size, first step, last step]
    bufs: dict[Any, list[int]] = {}

    def touch(key: Any, size: int, step: int) -> None:
        b = bufs.setdefault(key, [size, step, step])
        b[0] = max(b[0], size)
        b[1], b[2] = min(b[1], step), max(b[2], step)

    def size_of(i: int) -> int:
        return graph.tensors[root.get(i, i)].nbytes

    for i in graph.inputs:
        touch(("t", root.get(i, i)), size_of(i), -1)
    for i, t in graph.tensors.items():
        if t.data is not None:
            touch(("t", root.get(i, i)), size_of(i), -1)
    for pos, node in enumerate(graph.nodes):
        for i in (*node.inputs, *node.outputs):
            touch(("t", root.get(i, i)), size_of(i), pos)
        extra = _scratch_bytes(graph, node)
        if extra:
            touch(("s", pos), extra, pos)
    for i in graph.outputs:
        touch(("t", root.get(i, i)), size_of(i), n)
    for i, t in graph.tensors.items():  # constants are written once per run, never reused
        if t.data is not None:
            bufs[("t", root.get(i, i))][2] = n
    if not reuse:
        for b in bufs.values():
            b[1], b[2] = -1, n

    def aligned(v: int) -> int:
        return (v + _ALIGN - 1) // _ALIGN * _ALIGN

    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last)
    offset_of: dict[Any, int] = {}
    order = sorted(bufs.items(), key=lambda kv: (-kv[1][0], kv[1][1], str(kv[0])))
    for key, (size, first, last) in order:
        live = sorted((off, sz) for off, sz, f, la in placed if not (la < first or last < f))
        at = 0
        for off, sz in live:
            if at + size <= off:
                break
            at = max(at, aligned(off + sz))
        offset_of[key] = at
        placed.append((at, size, first, last))
    total = max((off + sz for off, sz, _, _ in placed), default=0)
    bound = 0
    for step in range(-1, n + 1):
        bound = max(bound, sum(sz for _, sz, f, la in placed if f <= step <= la))
    offsets = {}
    for i in graph.tensors:
        key = ("t", root.get(i, i))
        if key in offset_of:
            offsets[i] = offset_of[key]
    pixel = {}
    for i, (dst, channel) in embedded.items():
        t = graph.tensors[dst]
        offsets[i] += channel * np.dtype(t.dtype).itemsize
        pixel[i] = t.shape[-1]
    scratch = {key[1]: off for key, off in offset_of.items() if key[0] == "s"}
    return Layout(offsets, scratch, total, bound, pixel)


# ------------------------------------------------------------------------------------------
# Native operators (packed once per node, shared by the plans of every batch size)


class NativeOps:
    """The packed native operator of each node that has weights."""

    def __init__(self, graph: Graph):
        self.ops: dict[int, Any] = {}
        for pos, node in enumerate(graph.nodes):
            a = node.attrs
            if node.op in ("conv2d", "conv_transpose2d"):
                x = graph.tensors[node.inputs[0]]
                out = graph.tensors[node.outputs[0]]
                cls = _core.GraphConv2d if node.op == "conv2d" else _core.GraphConvTranspose2d
                lo, hi = a["clamp"]
                try:
                    self.ops[pos] = cls(
                        a["weights"],
                        int(a["stride"][0]),
                        int(a["stride"][1]),
                        np.asarray(a["w_zero_point"], np.int32).reshape(-1),
                        int(x.zero_point),  # type: ignore[arg-type]
                        None if a.get("bias") is None else np.asarray(a["bias"], np.int32),
                        np.asarray(a["multiplier"], np.int32).reshape(-1),
                        np.asarray(a["shift"], np.int32).reshape(-1),
                        _zp(out),
                        int(lo),
                        int(hi),
                    )
                except ValueError as err:
                    raise GraphError(f"{node.what()}: {err}") from None
            elif node.op == "fully_connected":
                x = graph.tensors[node.inputs[0]]
                try:
                    self.ops[pos] = _core.GraphGemm(
                        a["weights"],
                        np.asarray(a["w_zero_point"], np.int32).reshape(-1),
                        int(x.zero_point),  # type: ignore[arg-type]
                        None if a.get("bias") is None else np.asarray(a["bias"], np.int32),
                    )
                except ValueError as err:
                    raise GraphError(f"{node.what()}: {err}") from None


# ------------------------------------------------------------------------------------------
# The plan


@dataclass
class Planned:
    plan: Any  # lowp._core.Plan
    layout: Layout
    #: node position -> [first step, end step) of its native steps
    steps: list[tuple[int, int]]


def _strides(shape: tuple[int, ...]) -> list[int]:
    out = [1] * len(shape)
    for d in range(len(shape) - 2, -1, -1):
        out[d] = out[d + 1] * shape[d + 1]
    return out


def _zp(t: Tensor) -> int:
    assert t.zero_point is not None  # check() requires quantized operands
    return int(t.zero_point)


def _io_mask(t: Tensor) -> int:
    return 0x80 if t.view_dtype == np.int8 else 0


def _lower(plan: Any, graph: Graph, lay: Layout, ops: NativeOps, pos: int, node: Node) -> None:
    a = node.attrs
    off = lay.offsets
    ins = [graph.tensors[i] for i in node.inputs]
    out = graph.tensors[node.outputs[0]]
    src, dst = off[node.inputs[0]], off[node.outputs[0]]
    op = node.op
    if op in ("conv2d", "conv_transpose2d"):
        n, h, w, _ = ins[0].shape
        _, oh, ow, _ = out.shape
        top, _, left, _ = a["padding"] if op == "conv2d" else a["crop"]
        add = plan.add_conv2d if op == "conv2d" else plan.add_conv_transpose2d
        stride = lay.pixel_stride.get(node.outputs[0], 0)  # 0: out_c, contiguous
        add(ops.ops[pos], src, n, h, w, top, left, oh, ow, dst, stride)
    elif op == "fully_connected":
        lo, hi = a["clamp"]
        k = a["weights"].shape[0]
        plan.add_fully_connected(
            ops.ops[pos],
            src,
            ins[0].size // k,
            lay.scratch[pos],
            np.asarray(a["real"], np.float64).reshape(-1),
            _zp(out),
            int(lo),
            int(hi),
            dst,
        )
    elif op in ("max_pool2d", "avg_pool2d"):
        n, h, w, c = ins[0].shape
        _, oh, ow, _ = out.shape
        (kh, kw), (sh, sw) = a["kernel"], a["stride"]
        top, _, left, _ = a["padding"]
        lo, hi = a["clamp"]
        plan.add_pool(
            lay.pixel_stride.get(node.outputs[0], c),
            op == "avg_pool2d",
            int(a.get("offset", 0)),
            n,
            h,
            w,
            c,
            kh,
            kw,
            sh,
            sw,
            top,
            left,
            oh,
            ow,
            src,
            dst,
            lo,
            hi,
        )
    elif op == "concat":
        axis = a["axis"]
        ostr = _strides(out.shape)
        at = 0
        for i, t, rs in zip(node.inputs, ins, a["rescale"]):
            if i in lay.pixel_stride:  # written in place by its producer
                at += t.shape[axis]
                continue
            lut = None
            if rs is not None:
                lut = float_rescale_table(
                    rs[0], rs[1], a["offset"], a["zero_point"], a["range"][0], a["range"][1]
                )
            plan.add_copy(
                off[i], _strides(t.shape), dst + at * ostr[axis], ostr, list(t.shape), 1, lut
            )
            at += t.shape[axis]
    elif op == "add":
        lo, hi = a["clamp"]
        lut = add_q31_table(
            _zp(ins[0]),
            _zp(ins[1]),
            _zp(out),
            a["left_shift"],
            tuple(a["multipliers"]),
            lo,
            hi,
        )
        rank = len(out.shape)
        views = []
        for t in ins:
            shape = (1,) * (rank - len(t.shape)) + tuple(t.shape)
            st = _strides(shape)
            views.append([0 if d == 1 and o != 1 else s for d, o, s in zip(shape, out.shape, st)])
        plan.add_binary_lut(
            off[node.inputs[0]],
            views[0],
            off[node.inputs[1]],
            views[1],
            dst,
            _strides(out.shape),
            list(out.shape) or [1],
            lut,
        )
    elif op == "pad":
        plan.add_fill(dst, out.nbytes, int(a["value"]))
        ostr = _strides(out.shape)
        start = sum(lo * s for (lo, _), s in zip(a["pads"], ostr))
        item = np.dtype(out.dtype).itemsize
        plan.add_copy(
            src, _strides(ins[0].shape), dst + start * item, ostr, list(ins[0].shape), item, None
        )
    elif op == "reshape":
        if src != dst:  # shares the buffer unless the layout could not alias it
            plan.add_copy(src, [1], dst, [1], [ins[0].nbytes], 1, None)
    elif op == "quantize":
        if ins[0].dtype == np.float32:
            lo, hi = a["range"]
            plan.add_quantize_f32(
                src,
                out.size,
                float(np.float32(a["scale"])),
                int(a["zero_point"]),
                int(lo),
                int(hi),
                int(a["offset"]),
                dst,
            )
        else:
            lut = q31_table(
                int(np.asarray(a["multiplier"]).reshape(-1)[0]),
                int(np.asarray(a["shift"]).reshape(-1)[0]),
                _zp(ins[0]),
                _zp(out),
                0,
                255,
            )
            plan.add_copy(src, [1], dst, [1], [out.size], 1, lut)
    elif op == "dequantize":
        lut = dequantize_table(a["scale"], _zp(ins[0]))
        plan.add_dequantize(src, out.size, lut, dst)
    else:  # check() refuses unknown kinds
        raise GraphError(f"{node.what()}: unknown op kind {op!r}")


def build_plan(
    graph: Graph, ops: NativeOps, *, reuse: bool = True, memory_limit: int | None = None
) -> Planned:
    """The native plan of a checked graph."""
    lay = layout(graph, reuse=reuse)
    if memory_limit is not None and lay.arena_bytes > memory_limit:
        raise GraphError(
            f"the graph needs an arena of {lay.arena_bytes} bytes, more than the memory "
            f"limit of {memory_limit} bytes"
        )
    plan = _core.Plan()
    plan.arena_bytes = lay.arena_bytes
    for i, t in graph.tensors.items():
        if t.data is not None:
            raw = np.ascontiguousarray(t.data).view(np.uint8).reshape(-1)
            plan.add_constant(lay.offsets[i], raw)
    for i in graph.inputs:
        t = graph.tensors[i]
        plan.add_input(lay.offsets[i], t.nbytes, _io_mask(t))
    steps = []
    for pos, node in enumerate(graph.nodes):
        first = plan.steps
        try:
            _lower(plan, graph, lay, ops, pos, node)
        except ValueError as err:
            if isinstance(err, GraphError):
                raise
            raise GraphError(f"{node.what()}: {err}") from None
        steps.append((first, plan.steps))
    for i in graph.outputs:
        t = graph.tensors[i]
        plan.add_output(lay.offsets[i], t.nbytes, _io_mask(t))
    return Planned(plan, lay, steps)
