"""From the source model's float graph to the one lowp quantizes: NHWC
inside, batch norm folded into the convolution before it, ReLU / clamps
fused into the op that produces their input, aliases removed, shapes
known. Also the float executor of that graph (NumPy), which calibration and
the report read every tensor from.

A rank-4 tensor of the source (NCHW) is NHWC here. Flattening one to
``[N, C*H*W]`` gives its values in H, W, C order instead; the tensor records
the permutation (``perm``), and the fully connected layer that reads it takes
its weight columns in that order, so no transpose is ever computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._fgraph import FGraph, FNode, UnsupportedModelError

__all__ = ["NumpyExecutor", "PGraph", "PNode", "executor", "prepare", "run_float"]

#: ops that can absorb a following ReLU / clamp (their output is requantized)
_CLAMPABLE = ("conv2d", "conv_transpose2d", "linear", "add")


@dataclass
class PNode:
    """One op of the prepared graph. ``clamp`` (lo, hi), floats, either side
    None, is the fused activation."""

    op: str  # conv2d conv_transpose2d linear max_pool2d avg_pool2d concat add reshape
    inputs: list[str]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)
    clamp: tuple[float | None, float | None] = (None, None)
    where: str = ""
    #: the source nodes this op stands for (a conv, its batch norm, its ReLU)
    sources: list[str] = field(default_factory=list)
    #: a short name for tables (the first source node's label)
    label: str = ""

    def unsupported(self, message: str) -> UnsupportedModelError:
        return UnsupportedModelError(f"{self.where or self.op}: {message}")


@dataclass
class PGraph:
    nodes: list[PNode]
    inputs: list[str]
    outputs: list[str]
    #: every tensor's shape here (NHWC for rank 4), for the batch it was prepared with
    shapes: dict[str, tuple[int, ...]]
    #: tensors whose source layout is NCHW (rank 4)
    nchw: set[str]
    source: str = ""

    def producer(self) -> dict[str, PNode]:
        return {n.output: n for n in self.nodes}

    def users(self) -> dict[str, list[PNode]]:
        out: dict[str, list[PNode]] = {}
        for n in self.nodes:
            for i in n.inputs:
                out.setdefault(i, []).append(n)
        return out


def _conv_out(size: int, before: int, after: int, k: int, s: int) -> int:
    return (size + before + after - k) // s + 1


def _to_nhwc_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    n, c, h, w = shape
    return (n, h, w, c)


class _Builder:
    def __init__(self, fg: FGraph, input_shapes: dict[str, tuple[int, ...]]):
        self.fg = fg
        self.nodes: list[PNode] = []
        self.current: FNode | None = None
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.nchw: set[str] = set()
        self.perm: dict[str, np.ndarray] = {}  # flattened NCHW tensors: source index -> ours
        self.alias: dict[str, str] = {}
        self.producer: dict[str, PNode] = {}
        uses: dict[str, int] = {}
        for node in fg.nodes:
            for i in node.inputs:
                uses[i] = uses.get(i, 0) + 1
        for o in fg.outputs:
            uses[o] = uses.get(o, 0) + 1
        self.uses = uses
        for name in fg.inputs:
            shape = tuple(int(d) for d in input_shapes[name])
            if len(shape) == 4:
                self.nchw.add(name)
                shape = _to_nhwc_shape(shape)
            self.shapes[name] = shape

    def name(self, n: str) -> str:
        while n in self.alias:
            n = self.alias[n]
        return n

    def emit(
        self,
        kind: str,
        inputs: list[str],
        attrs: dict[str, Any] | None,
        shape: tuple[int, ...],
        nchw: bool,
    ) -> None:
        """Adds the op that stands for the source node being read (it names
        its output, its place and its label)."""
        source = self.current
        assert source is not None
        node = PNode(
            kind,
            list(inputs),
            source.output,
            attrs or {},
            where=source.where,
            sources=[source.where],
            label=source.label or source.output,
        )
        if min(shape, default=1) < 1:
            raise node.unsupported(f"computes the empty shape {list(shape)}")
        self.nodes.append(node)
        self.producer[node.output] = node
        self.shapes[node.output] = shape
        if nchw:
            self.nchw.add(node.output)

    def rank4(self, node: FNode, x: str) -> tuple[int, int, int, int]:
        shape = self.shapes[x]
        if len(shape) != 4 or x not in self.nchw:
            raise node.unsupported(f"needs a 4-D NCHW input, got shape {list(shape)}")
        n, h, w, c = shape
        return n, h, w, c

    def fusable(self, x: str) -> PNode | None:
        """The op producing ``x`` when a following op may fold into it (it is
        its only reader)."""
        p = self.producer.get(x)
        if p is None or self.uses.get(x, 0) != 1 or x in self.fg.outputs:
            return None
        return p

    def rename(self, p: PNode, old: str, new: str, source: FNode) -> None:
        del self.producer[old]
        p.output = new
        p.sources.append(source.where)
        self.producer[new] = p
        self.shapes[new] = self.shapes.pop(old)
        if old in self.nchw:
            self.nchw.discard(old)
            self.nchw.add(new)

    def add(self, node: FNode) -> None:
        self.current = node
        ins = [self.name(i) for i in node.inputs]
        for i in ins:
            if i not in self.shapes:
                raise node.unsupported(f"reads {i!r}, which nothing computes before it")
        handler = getattr(self, "op_" + node.op, None)
        if handler is None:
            raise node.unsupported(f"lowp cannot quantize the operation {node.op!r}")
        handler(node, ins)

    # -- convolutions and linear layers -------------------------------------------------

    def conv_weights(self, node: FNode, x: str, kind: str) -> tuple[np.ndarray, int]:
        """The float weights of a (transposed) convolution, checked against
        what lowp quantizes, and the input's channel count."""
        a = node.attrs
        c = self.rank4(node, x)[3]
        if a.get("groups", 1) != 1:
            raise node.unsupported(f"grouped {kind} (groups={a['groups']}) is not supported")
        if tuple(a.get("dilation", (1, 1))) != (1, 1):
            raise node.unsupported(f"dilated {kind} ({a['dilation']}) is not supported")
        wt = np.asarray(a["w"], np.float32)
        taken = wt.shape[1 if kind == "convolution" else 0]
        if taken != c:
            raise node.unsupported(f"the weights take {taken} channels, the input has {c}")
        return wt, c

    def op_conv(self, node: FNode, ins: list[str]) -> None:
        a = node.attrs
        n, h, w, _ = self.rank4(node, ins[0])
        wt, _ = self.conv_weights(node, ins[0], "convolution")
        o, _, kh, kw = wt.shape
        sh, sw = a["stride"]
        top, bottom, left, right = a["pads"]
        oh, ow = _conv_out(h, top, bottom, kh, sh), _conv_out(w, left, right, kw, sw)
        self.emit(
            "conv2d",
            [ins[0]],
            {
                "w": np.ascontiguousarray(wt.transpose(0, 2, 3, 1)),
                "b": _bias(a.get("b"), o),
                "stride": (int(sh), int(sw)),
                "padding": (int(top), int(bottom), int(left), int(right)),
            },
            (n, oh, ow, o),
            True,
        )

    def op_conv_transpose(self, node: FNode, ins: list[str]) -> None:
        a = node.attrs
        n, h, w, _ = self.rank4(node, ins[0])
        wt, _ = self.conv_weights(node, ins[0], "transposed convolution")
        _, o, kh, kw = wt.shape
        sh, sw = a["stride"]
        top, bottom, left, right = a["pads"]
        oph, opw = a.get("output_padding", (0, 0))
        crop = (top, bottom - oph, left, right - opw)
        if min(crop) < 0:
            raise node.unsupported(
                f"output_padding ({oph}, {opw}) larger than the padding ({bottom}, {right}) "
                "adds rows no input reaches; lowp crops the full output but never extends it"
            )
        oh = (h - 1) * sh + kh - crop[0] - crop[1]
        ow = (w - 1) * sw + kw - crop[2] - crop[3]
        self.emit(
            "conv_transpose2d",
            [ins[0]],
            {
                "w": np.ascontiguousarray(wt.transpose(1, 2, 3, 0)),
                "b": _bias(a.get("b"), o),
                "stride": (int(sh), int(sw)),
                "crop": tuple(int(v) for v in crop),
            },
            (n, oh, ow, o),
            True,
        )

    def op_linear(self, node: FNode, ins: list[str]) -> None:
        x = ins[0]
        shape = self.shapes[x]
        wt = np.asarray(node.attrs["w"], np.float32)
        n_out, k = wt.shape
        if len(shape) != 2 or shape[1] != k:
            raise node.unsupported(
                f"needs a 2-D input of {k} features, got shape {list(shape)} "
                "(flatten the input first)"
            )
        perm = self.perm.get(x)
        if perm is not None:
            # the source's feature j is our feature perm[j]
            permuted = np.empty_like(wt)
            permuted[:, perm] = wt
            wt = permuted
        self.emit(
            "linear",
            [x],
            {"w": np.ascontiguousarray(wt), "b": _bias(node.attrs.get("b"), n_out), "perm": perm},
            (shape[0], n_out),
            False,
        )

    def op_batch_norm(self, node: FNode, ins: list[str]) -> None:
        a = node.attrs
        p = self.fusable(ins[0])
        if p is None or p.op not in ("conv2d", "conv_transpose2d") or p.clamp != (None, None):
            raise node.unsupported(
                "batch norm must directly follow a convolution or transposed convolution "
                "whose output nothing else reads (it is folded into it)"
            )
        scale = np.asarray(a["gamma"], np.float64) / np.sqrt(
            np.asarray(a["var"], np.float64) + a["eps"]
        )
        shift = np.asarray(a["beta"], np.float64) - np.asarray(a["mean"], np.float64) * scale
        if scale.shape != (p.attrs["w"].shape[0],):
            raise node.unsupported(f"has {scale.size} channels, its input {p.attrs['w'].shape[0]}")
        p.attrs["w"] = (p.attrs["w"] * scale[:, None, None, None]).astype(np.float32)
        p.attrs["b"] = (p.attrs["b"] * scale + shift).astype(np.float32)
        self.rename(p, ins[0], node.output, node)

    # -- activations ---------------------------------------------------------------------

    def _clamp(self, node: FNode, ins: list[str], lo: float | None, hi: float | None) -> None:
        if lo is not None and hi is not None and lo > hi:
            raise node.unsupported(f"clamps to the empty range [{lo}, {hi}]")
        if (lo is not None and lo > 0) or (hi is not None and hi < 0):
            raise node.unsupported(
                f"a clamp to [{lo}, {hi}] that excludes 0 is not supported (an activation's "
                "quantized range always holds 0)"
            )
        p = self.fusable(ins[0])
        if p is None or p.op not in _CLAMPABLE:
            raise node.unsupported(
                "an activation must directly follow a convolution, linear layer or add whose "
                "output nothing else reads (it becomes that op's output clamp)"
            )
        old_lo, old_hi = p.clamp
        new_lo = lo if old_lo is None else (old_lo if lo is None else max(lo, old_lo))
        new_hi = hi if old_hi is None else (old_hi if hi is None else min(hi, old_hi))
        p.clamp = (new_lo, new_hi)
        self.rename(p, ins[0], node.output, node)

    def op_relu(self, node: FNode, ins: list[str]) -> None:
        self._clamp(node, ins, 0.0, None)

    def op_clamp(self, node: FNode, ins: list[str]) -> None:
        lo, hi = node.attrs.get("lo"), node.attrs.get("hi")
        self._clamp(node, ins, None if lo is None else float(lo), None if hi is None else float(hi))

    def op_identity(self, node: FNode, ins: list[str]) -> None:
        self.alias[node.output] = ins[0]

    # -- pooling -------------------------------------------------------------------------

    def _pool(self, node: FNode, ins: list[str], kind: str) -> None:
        a = node.attrs
        n, h, w, c = self.rank4(node, ins[0])
        kh, kw = a["kernel"]
        sh, sw = a.get("stride") or (kh, kw)
        top, bottom, left, right = a.get("pads", (0, 0, 0, 0))
        if tuple(a.get("dilation", (1, 1))) != (1, 1):
            raise node.unsupported("dilated pooling is not supported")
        oh, ow = _conv_out(h, top, bottom, kh, sh), _conv_out(w, left, right, kw, sw)
        if a.get("ceil_mode"):
            ceil_h = -(-(h + top + bottom - kh) // sh) + 1
            ceil_w = -(-(w + left + right - kw) // sw) + 1
            if (ceil_h, ceil_w) != (oh, ow):
                raise node.unsupported("ceil_mode pooling that adds a partial window")
        if (
            kind == "avg_pool2d"
            and a.get("count_include_pad", True)
            and (top or bottom or left or right)
        ):
            raise node.unsupported(
                "average pooling that counts the padding (count_include_pad=True with padding); "
                "lowp averages over the input positions only, as TFLite"
            )
        if max(top, bottom) >= kh or max(left, right) >= kw:
            raise node.unsupported("a pooling window lies wholly in the padding")
        self.emit(
            kind,
            [ins[0]],
            {
                "kernel": (int(kh), int(kw)),
                "stride": (int(sh), int(sw)),
                "padding": (int(top), int(bottom), int(left), int(right)),
            },
            (n, oh, ow, c),
            True,
        )

    def op_max_pool(self, node: FNode, ins: list[str]) -> None:
        self._pool(node, ins, "max_pool2d")

    def op_avg_pool(self, node: FNode, ins: list[str]) -> None:
        self._pool(node, ins, "avg_pool2d")

    def op_global_avg_pool(self, node: FNode, ins: list[str]) -> None:
        _, h, w, _ = self.rank4(node, ins[0])
        node.attrs = {"kernel": (h, w), "stride": (1, 1), "pads": (0, 0, 0, 0)}
        self._pool(node, ins, "avg_pool2d")

    # -- joins and shapes ----------------------------------------------------------------

    def op_concat(self, node: FNode, ins: list[str]) -> None:
        shapes = [self.shapes[i] for i in ins]
        rank = len(shapes[0])
        axis = int(node.attrs["axis"])
        if not -rank <= axis < rank:
            raise node.unsupported(f"axis {axis} is outside rank {rank}")
        axis %= rank
        if any(len(s) != rank for s in shapes):
            raise node.unsupported("joins tensors of different ranks")
        nchw = ins[0] in self.nchw
        if any((i in self.nchw) != nchw or i in self.perm for i in ins):
            raise node.unsupported("joins tensors of different layouts")
        if axis == 0:
            raise node.unsupported("joining along the batch axis is not supported")
        ours = {1: 3, 2: 1, 3: 2}[axis] if nchw else axis
        for s in shapes[1:]:
            if any(x != y for d, (x, y) in enumerate(zip(s, shapes[0])) if d != ours):
                raise node.unsupported(f"shapes {[list(t) for t in shapes]} do not join")
        out = list(shapes[0])
        out[ours] = sum(s[ours] for s in shapes)
        self.emit("concat", ins, {"axis": ours}, tuple(out), nchw)

    def op_add(self, node: FNode, ins: list[str]) -> None:
        if len(ins) != 2:
            raise node.unsupported(f"adds {len(ins)} tensors; lowp adds two")
        a, b = (self.shapes[i] for i in ins)
        if a != b or (ins[0] in self.nchw) != (ins[1] in self.nchw):
            raise node.unsupported(
                f"adds shapes {list(a)} and {list(b)}; lowp adds tensors of one shape"
            )
        if ins[0] in self.perm or ins[1] in self.perm:
            raise node.unsupported("adds flattened images; add before flattening")
        self.emit("add", ins, None, a, ins[0] in self.nchw)

    def _flatten_nchw(self, node: FNode, x: str) -> None:
        n, h, w, c = self.shapes[x]
        self.emit("reshape", [x], {"shape": (n, h * w * c)}, (n, h * w * c), False)
        if h * w > 1 and c > 1:
            # source order (c, h, w) -> our order (h, w, c)
            cc, hh, ww = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
            self.perm[node.output] = ((hh * w + ww) * c + cc).reshape(-1)

    def op_flatten(self, node: FNode, ins: list[str]) -> None:
        x = ins[0]
        shape = self.shapes[x]
        start = int(node.attrs.get("start", 1))
        if start < 0:
            start += len(shape)
        if start != 1:
            raise node.unsupported(f"flattening from axis {start}; lowp flattens from axis 1")
        if len(shape) == 2:
            self.alias[node.output] = x
        elif x in self.nchw:
            self._flatten_nchw(node, x)
        else:
            raise node.unsupported(f"cannot flatten shape {list(shape)}")

    def op_reshape(self, node: FNode, ins: list[str]) -> None:
        x = ins[0]
        shape = self.shapes[x]
        target = [int(v) for v in node.attrs["shape"]]
        size = int(np.prod(shape))
        if target.count(-1) > 1:
            raise node.unsupported(f"reshape to {target} has more than one -1")
        if -1 in target:
            rest = int(np.prod([v for v in target if v != -1]))
            if rest == 0 or size % rest:
                raise node.unsupported(f"cannot reshape {size} values to {target}")
            target[target.index(-1)] = size // rest
        if len(target) == 2 and target[0] == shape[0] and int(np.prod(target)) == size:
            if len(shape) == 2:
                self.alias[node.output] = x
                return
            if x in self.nchw:
                self._flatten_nchw(node, x)
                return
        raise node.unsupported(
            f"reshape of {list(shape)} to {target}: lowp quantizes reshapes that flatten "
            "each sample (batch axis kept)"
        )


def _bias(b: Any, channels: int) -> np.ndarray:
    if b is None:
        return np.zeros(channels, np.float32)
    arr = np.asarray(b, np.float32).reshape(-1)
    if arr.size != channels:
        raise UnsupportedModelError(f"a bias of {arr.size} values for {channels} channels")
    return arr


def prepare(fg: FGraph, input_shapes: dict[str, tuple[int, ...]]) -> PGraph:
    """The prepared graph of ``fg`` for inputs of ``input_shapes`` (source
    layout). Raises UnsupportedModelError naming the first op lowp cannot
    quantize."""
    if not fg.outputs:
        raise UnsupportedModelError(f"the {fg.source or 'source'} model has no outputs")
    b = _Builder(fg, input_shapes)
    for source in fg.nodes:
        b.add(source)
    outputs = []
    for o in fg.outputs:
        name = b.name(o)
        if name in fg.inputs:
            raise UnsupportedModelError(f"model output {o!r} is an input, unchanged")
        if name in b.perm:
            raise UnsupportedModelError(
                f"model output {o!r} is a flattened image; lowp would give it in H, W, C order"
            )
        outputs.append(name)
    live = set(outputs)
    nodes: list[PNode] = []
    for node in reversed(b.nodes):  # drop what no output needs
        if node.output in live:
            nodes.append(node)
            live.update(node.inputs)
    nodes.reverse()
    used_inputs = [i for i in fg.inputs if i in live]
    return PGraph(nodes, used_inputs, outputs, b.shapes, b.nchw, fg.source)


# ------------------------------------------------------------------------------------------
# The float executor


def _windows(x: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """[N, OH, OW, C, KH, KW] views of an NHWC array (already padded)."""
    v = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    return v[:, ::sh, ::sw]


def conv2d_float(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride, padding, dtype: Any = np.float32
) -> np.ndarray:
    """NHWC convolution as one matrix product over patches laid out
    (KH, KW, C) with C innermost, the order of ``w`` [O, KH, KW, C]."""
    top, bottom, left, right = padding
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    o, kh, kw, c = w.shape
    win = _windows(xp, kh, kw, *stride).transpose(0, 1, 2, 4, 5, 3)  # N OH OW KH KW C
    n, oh, ow = win.shape[:3]
    cols = win.reshape(n * oh * ow, kh * kw * c)
    y = cols @ w.reshape(o, -1).T.astype(cols.dtype, copy=False)
    return (y.reshape(n, oh, ow, o) + b).astype(dtype, copy=False)


def conv_transpose2d_float(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride, crop) -> np.ndarray:
    n, h, wd, _ = x.shape
    o, kh, kw, _ = w.shape
    sh, sw = stride
    full = np.zeros((n, (h - 1) * sh + kh, (wd - 1) * sw + kw, o), np.float32)
    for i in range(kh):
        for j in range(kw):
            full[:, i : i + (h - 1) * sh + 1 : sh, j : j + (wd - 1) * sw + 1 : sw] += (
                x @ w[:, i, j].T
            )
    top, bottom, left, right = crop
    y = full[:, top : full.shape[1] - bottom, left : full.shape[2] - right]
    return y + b


def _pool_float(x: np.ndarray, node: PNode) -> np.ndarray:
    (kh, kw), (sh, sw) = node.attrs["kernel"], node.attrs["stride"]
    top, bottom, left, right = node.attrs["padding"]
    pads = ((0, 0), (top, bottom), (left, right), (0, 0))
    if node.op == "max_pool2d":
        xp = np.pad(x, pads, constant_values=-np.inf)
        return _windows(xp, kh, kw, sh, sw).max(axis=(4, 5))
    xp = np.pad(x, pads)
    ones = np.pad(np.ones((1, *x.shape[1:3], 1), np.float32), pads)
    total = _windows(xp, kh, kw, sh, sw).sum(axis=(4, 5), dtype=np.float32)
    count = _windows(ones, kh, kw, sh, sw).sum(axis=(4, 5), dtype=np.float32)
    return total / count


def _apply_clamp(y: np.ndarray, clamp: tuple[float | None, float | None]) -> np.ndarray:
    lo, hi = clamp
    if lo is None and hi is None:
        return y
    return np.clip(y, -np.inf if lo is None else lo, np.inf if hi is None else hi)


def run_node_float(node: PNode, ins: list[np.ndarray]) -> np.ndarray:
    a, x = node.attrs, ins[0]
    if node.op == "conv2d":
        y = conv2d_float(x, a["w"], a["b"], a["stride"], a["padding"])
    elif node.op == "conv_transpose2d":
        y = conv_transpose2d_float(x, a["w"], a["b"], a["stride"], a["crop"])
    elif node.op == "linear":
        y = x @ a["w"].T + a["b"]
    elif node.op in ("max_pool2d", "avg_pool2d"):
        y = _pool_float(x, node)
    elif node.op == "concat":
        y = np.concatenate(ins, axis=a["axis"])
    elif node.op == "add":
        y = ins[0] + ins[1]
    elif node.op == "reshape":
        y = x.reshape(x.shape[0], -1)
    else:  # pragma: no cover - prepare() emits only the kinds above
        raise AssertionError(node.op)
    return np.ascontiguousarray(_apply_clamp(y, node.clamp), dtype=np.float32)


class NumpyExecutor:
    """The float executor without PyTorch."""

    def __init__(self, pg: PGraph):
        self.pg = pg

    def run(self, inputs: dict[str, np.ndarray], keep: bool = True) -> dict[str, np.ndarray]:
        return _run_numpy(self.pg, inputs, keep)

    def values(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return _run_numpy(self.pg, inputs, True)


def executor(pg: PGraph) -> Any:
    """The fastest float executor at hand for ``pg``: PyTorch's kernels when
    torch is installed (``LOWP_FLOAT=numpy`` forces NumPy), else NumPy."""
    import os

    from . import _float_torch

    if os.environ.get("LOWP_FLOAT", "").lower() != "numpy" and _float_torch.available():
        return _float_torch.TorchExecutor(pg)
    return NumpyExecutor(pg)


def run_float(
    pg: PGraph, inputs: dict[str, np.ndarray], keep: bool = True
) -> dict[str, np.ndarray]:
    """Every tensor of ``pg`` (``keep``) or its outputs, for NHWC float32 inputs."""
    return executor(pg).run(inputs, keep)


def _run_numpy(
    pg: PGraph, inputs: dict[str, np.ndarray], keep: bool = True
) -> dict[str, np.ndarray]:
    values = dict(inputs)
    last_use: dict[str, int] = {}
    for k, node in enumerate(pg.nodes):
        for i in node.inputs:
            last_use[i] = k
    for k, node in enumerate(pg.nodes):
        values[node.output] = run_node_float(node, [values[i] for i in node.inputs])
        if not keep:
            for i in node.inputs:
                if last_use[i] == k and i not in pg.outputs:
                    values.pop(i, None)
    if keep:
        return values
    return {o: values[o] for o in pg.outputs}
