"""The TFLite operators lowp runs, each matching TFLite's *reference* kernel.

Every quantized tensor is held in the uint8 domain while the graph runs: an
int8 tensor ``q`` with zero point ``z`` is the uint8 tensor ``q + 128`` with
zero point ``z + 128`` (DESIGN.md section 2), so int8 and uint8 models share
the uint8 kernels. Where a reference kernel works on the signed values
(average pooling's rounding, concatenation's float rescaling) the op moves to
the model's own domain for that step.

An op is built once from the parsed graph, checking its tensors and options,
and lowers to one node of lowp's integer graph (:mod:`lowp.graph`): the
TFLite arithmetic of each op becomes an explicit requant mode there (``q31``
for CONV_2D and TRANSPOSE_CONV, ``double`` for FULLY_CONNECTED,
``float_rescale`` for CONCATENATION, ``add_q31`` for ADD), and the graph
runtime executes it natively.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

import numpy as np

import lowp
from lowp.graph import Node
from lowp.graph._plan import round_half_away

from ._schema import Graph, ModelError, OpSpec, TensorSpec, UnsupportedOpError, scale_problem

__all__ = ["OPS", "Op", "requantize_double"]

_PADDING_SAME, _PADDING_VALID = 0, 1
_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
_QTYPES = (np.dtype(np.uint8), np.dtype(np.int8))


def requantize_double(acc: np.ndarray, real_multiplier, zero_point: int, qmin: int, qmax: int):
    """TFLite 2.21's reference FULLY_CONNECTED output stage: the int32
    accumulator times the real multiplier in double precision, rounded half
    away from zero, plus the zero point, clamped. ``real_multiplier`` is a
    float or one value per output channel (the last axis). Returns int32."""
    scaled = acc.astype(np.float64) * np.asarray(real_multiplier, dtype=np.float64)
    out = round_half_away(scaled) + zero_point
    return np.clip(out, qmin, qmax).astype(np.int32)


class Op:
    """One operator of the graph, built (checked, packed) once."""

    #: the TFLite operator name
    name = ""

    def __init__(self, graph: Graph, spec: OpSpec):
        self.spec = spec
        self.graph = graph
        self.inputs = list(spec.inputs)
        self.outputs = list(spec.outputs)
        self.what = f"operator {spec.index} ({spec.name})"

    # --- helpers for the constructors -------------------------------------------------------

    def fail(self, message: str) -> ModelError:
        return ModelError(f"{self.what}: {message}")

    def unsupported(self, message: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"{self.what}: {message}")

    def tensor(self, position: int, *, optional: bool = False) -> TensorSpec | None:
        ids = self.inputs
        if position >= len(ids) or ids[position] == -1:
            if optional:
                return None
            raise self.fail(f"needs at least {position + 1} inputs, has {len(ids)}")
        return self.graph.tensors[ids[position]]

    def input(self, position: int) -> TensorSpec:
        t = self.tensor(position)
        assert t is not None
        return t

    def output(self, position: int = 0) -> TensorSpec:
        if position >= len(self.outputs):
            raise self.fail(f"needs {position + 1} outputs, has {len(self.outputs)}")
        return self.graph.tensors[self.outputs[position]]

    def counts(self, n_in: tuple[int, int], n_out: int = 1) -> None:
        lo, hi = n_in
        if not lo <= len(self.inputs) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            raise self.fail(f"needs {want} inputs, has {len(self.inputs)}")
        if len(self.outputs) != n_out:
            raise self.fail(f"needs {n_out} output(s), has {len(self.outputs)}")

    def activation_tensor(self, t: TensorSpec, rank: int | None = None) -> None:
        """A quantized int8/uint8 tensor with one scale and zero point."""
        if t.dtype not in _QTYPES:
            raise self.unsupported(f"{t.describe()} must be int8 or uint8 (quantized)")
        if t.scale is None or t.zero_point is None:
            raise self.unsupported(
                f"{t.describe()} has no quantization parameters (scale and zero point); "
                "lowp runs quantized int8/uint8 tensors here"
            )
        if t.scale.size != 1:
            raise self.unsupported(f"{t.describe()} must be quantized per tensor")
        self.check_scales(t)
        lo, hi = _native_range(t.dtype)
        if not lo <= int(t.zero_point[0]) <= hi:
            raise self.fail(f"{t.describe()} has zero point {t.zero_point[0]} outside {t.dtype}")
        if rank is not None and len(t.shape) != rank:
            raise self.fail(f"{t.describe()} must have rank {rank}")

    def check_scales(self, t: TensorSpec) -> None:
        """Every scale of ``t`` normal, positive and finite (see scale_problem)."""
        problem = scale_problem(t)
        if problem is not None:
            raise self.fail(problem)

    def same_type(self, a: TensorSpec, b: TensorSpec) -> None:
        if a.dtype != b.dtype:
            raise self.unsupported(f"{a.describe()} and {b.describe()} must have one dtype")

    def check_shape(self, t: TensorSpec, expected: tuple[int, ...]) -> None:
        if tuple(t.shape) != tuple(expected):
            raise self.fail(
                f"{t.describe()} has shape {list(t.shape)}, the op computes {list(expected)}"
            )

    def constant(self, t: TensorSpec, what: str) -> np.ndarray:
        if t.data is None:
            raise self.unsupported(f"{what} ({t.describe()}) must be a constant in the model")
        return t.data

    def activation_range(self, fused: int, out: TensorSpec) -> tuple[int, int]:
        """TFLite's CalculateActivationRangeQuantized, in the uint8 domain."""
        name = _ACTIVATIONS.get(fused, f"activation {fused}")
        if name not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
            raise self.unsupported(f"fused activation {name} is not supported")
        bound = {"RELU6": 6.0, "RELU_N1_TO_1": 1.0}.get(name)
        if bound is not None:  # TFLite divides in float32: 6 / 1e-38 is no integer
            with np.errstate(over="ignore"):
                steps = np.float32(bound) / _scale(out)
            if not np.isfinite(steps):
                raise self.fail(
                    f"{out.describe()}: the {name} bound {bound} / its scale {_scale(out)} "
                    "overflows float32"
                )
        return _activation_range(name, out)

    def build(self, layer: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Construct a lowp layer, its argument errors named after this op."""
        try:
            return layer(*args, **kwargs)
        except (TypeError, ValueError) as err:
            raise self.unsupported(str(err)) from None

    # --- lowering -------------------------------------------------------------------------

    def node(self) -> Node:
        """This op as a node of the integer graph (tensor ids are the file's)."""
        raise NotImplementedError

    def make_node(self, kind: str, requant: str | None = None, **attrs: Any) -> Node:
        return Node(
            kind,
            tuple(i for i in self.inputs if i >= 0),
            tuple(self.outputs),
            attrs,
            requant,
            self.what,
        )

    def describe_shapes(self) -> str:
        ins = [self.graph.tensors[i] for i in self.inputs if i >= 0]
        shown = [t for t in ins if t.data is None] or ins[:1]
        src = " ".join("x".join(map(str, t.shape)) or "scalar" for t in shown)
        dst = " ".join("x".join(map(str, self.graph.tensors[i].shape)) for i in self.outputs)
        return f"{src} -> {dst}"


def _native_range(dtype: np.dtype) -> tuple[int, int]:
    return (-128, 127) if dtype == np.int8 else (0, 255)


def _offset(dtype: np.dtype) -> int:
    """What maps the tensor's own integers into the uint8 domain."""
    return 128 if dtype == np.int8 else 0


def _zp_u8(t: TensorSpec) -> int:
    assert t.zero_point is not None
    return int(t.zero_point[0]) + _offset(t.dtype)


def _scale(t: TensorSpec) -> np.float32:
    assert t.scale is not None
    return np.float32(t.scale[0])


def _activation_range(name: str, out: TensorSpec) -> tuple[int, int]:
    qmin, qmax = _native_range(out.dtype)
    scale, zp = _scale(out), int(out.zero_point[0])  # type: ignore[index]

    def q(f: float) -> int:
        # zero_point + round(f / scale) with the division in float32, as TFLite
        return zp + int(round_half_away(float(np.float32(f) / scale)))

    lo, hi = qmin, qmax
    if name in ("RELU", "RELU6"):
        lo = max(qmin, q(0.0))
    if name == "RELU6":
        hi = min(qmax, q(6.0))
    if name == "RELU_N1_TO_1":
        lo, hi = max(qmin, q(-1.0)), min(qmax, q(1.0))
    off = _offset(out.dtype)
    lo, hi = lo + off, hi + off
    if lo > hi:  # an activation range outside the representable one: all one value
        hi = lo = min(max(lo, 0), 255)
    return lo, hi


def _to_u8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.int8:
        return arr.view(np.uint8) ^ np.uint8(0x80)
    return arr


def _tflite_padding(
    padding: int, size: int, kernel: int, stride: int, what: Callable[[str], ModelError]
) -> tuple[int, int, int]:
    """(output size, pad before, pad after) by TFLite's ComputePaddingHeightWidth."""
    if padding == _PADDING_SAME:
        out = (size + stride - 1) // stride
    elif padding == _PADDING_VALID:
        out = (size - kernel + stride) // stride
    else:
        raise what(f"unknown padding {padding}")
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def _weights_zero_point(op: Op, w: TensorSpec, channels: int) -> np.ndarray | int:
    """The weights' zero point(s) in the uint8 domain (scalar or per output channel)."""
    assert w.zero_point is not None and w.scale is not None
    n = w.scale.size
    if n > 1 and (w.quantized_dimension != 0 or n != channels):
        raise op.unsupported(
            f"{w.describe()} is quantized per channel along dimension "
            f"{w.quantized_dimension}; lowp needs the output-channel dimension 0"
        )
    lo, hi = _native_range(w.dtype)
    if np.any(w.zero_point < lo) or np.any(w.zero_point > hi):
        raise op.fail(f"{w.describe()} has a zero point outside {w.dtype}")
    op.check_scales(w)
    zp = w.zero_point.astype(np.int32) + _offset(w.dtype)
    return int(zp[0]) if n == 1 else zp


def _real_multiplier(op: Op, x: TensorSpec, w: TensorSpec, out: TensorSpec) -> np.ndarray:
    """``double(in_scale) * double(w_scale[o]) / double(out_scale)``, as TFLite."""
    assert w.scale is not None
    return (np.float64(_scale(x)) * w.scale.astype(np.float64)) / np.float64(_scale(out))


def _fixed_requant(op: Op, real: np.ndarray, out: TensorSpec, lo: int, hi: int) -> lowp.Requant:
    try:
        m0, shift = lowp.quantize_multiplier(real)
    except ValueError as err:
        raise op.unsupported(f"the output multiplier {real.max()} is out of range: {err}") from None
    return lowp.Requant(m0, shift, _zp_u8(out), lo, hi)


def _bias(op: Op, position: int, channels: int) -> np.ndarray | None:
    b = op.tensor(position, optional=True)
    if b is None:
        return None
    data = op.constant(b, "the bias")
    if b.dtype != np.int32:
        raise op.unsupported(f"{b.describe()}: the bias must be int32")
    if data.size != channels:
        raise op.fail(f"{b.describe()}: the bias must have {channels} values")
    return np.ascontiguousarray(data.reshape(channels))


# ------------------------------------------------------------------------------------------
# Convolutions and fully connected


def _conv_attrs(
    op: Op,
    x: TensorSpec,
    w: TensorSpec,
    wdata: np.ndarray,
    out: TensorSpec,
    opt: Any,
    stride: tuple[int, int],
    bias_position: int,
) -> dict[str, Any]:
    """A convolution node's attributes (CONV_2D or TRANSPOSE_CONV): the
    weights in the uint8 domain and TFLite's fixed-point (``q31``) output
    stage with the fused activation clamp."""
    lo, hi = op.activation_range(opt.FusedActivationFunction(), out)
    rq = _fixed_requant(op, _real_multiplier(op, x, w, out), out, lo, hi)
    cout = w.shape[0]
    return {
        "weights": np.ascontiguousarray(_to_u8(wdata)),
        "w_zero_point": np.atleast_1d(np.asarray(_weights_zero_point(op, w, cout), np.int32)),
        "bias": _bias(op, bias_position, cout),
        "stride": stride,
        "multiplier": np.atleast_1d(rq.multiplier).astype(np.int32),
        "shift": np.atleast_1d(rq.shift).astype(np.int32),
        "clamp": (lo, hi),
    }


class Conv2D(Op):
    name = "CONV_2D"

    def __init__(self, graph: Graph, spec: OpSpec):
        super().__init__(graph, spec)
        self.counts((2, 3))
        x, w, out = self.input(0), self.input(1), self.output()
        self.activation_tensor(x, rank=4)
        self.activation_tensor(out, rank=4)
        self.same_type(x, out)
        self.same_type(x, w)
        wdata = self.constant(w, "the filter")
        if w.scale is None or len(w.shape) != 4:
            raise self.fail(f"{w.describe()}: the filter must be quantized [Cout, KH, KW, Cin]")
        cout, kh, kw, cin = w.shape
        n, h, wd, c = x.shape
        if c != cin:
            raise self.unsupported(
                f"the filter has {cin} input channels, the input {c} (grouped convolution)"
            )
        opt = spec.options
        if opt is None:
            raise self.fail("has no Conv2DOptions")
        if opt.DilationHFactor() != 1 or opt.DilationWFactor() != 1:
            raise self.unsupported("dilated convolution is not supported")
        sh, sw = int(opt.StrideH()), int(opt.StrideW())
        if sh < 1 or sw < 1:
            raise self.fail(f"stride ({sh}, {sw}) must be positive")
        oh, top, bottom = _tflite_padding(opt.Padding(), h, kh, sh, self.fail)
        ow, left, right = _tflite_padding(opt.Padding(), wd, kw, sw, self.fail)
        if oh < 1 or ow < 1:
            raise self.fail(f"a {kh}x{kw} filter does not fit the input {h}x{wd}")
        self.check_shape(out, (n, oh, ow, cout))
        self.attrs = _conv_attrs(self, x, w, wdata, out, opt, (sh, sw), 2)
        self.attrs["padding"] = (top, bottom, left, right)
        self.inputs = [self.inputs[0]]  # the only run-time input

    def node(self) -> Node:
        return self.make_node("conv2d", "q31", **self.attrs)


class TransposeConv(Op):
    name = "TRANSPOSE_CONV"

    def __init__(self, graph: Graph, spec: OpSpec):
        super().__init__(graph, spec)
        self.counts((3, 4))
        shape_t, w, x, out = self.input(0), self.input(1), self.input(2), self.output()
        self.activation_tensor(x, rank=4)
        self.activation_tensor(out, rank=4)
        self.same_type(x, out)
        self.same_type(x, w)
        shape = self.constant(shape_t, "the output shape")
        if shape.size != 4 or tuple(int(v) for v in shape.reshape(-1)) != tuple(out.shape):
            raise self.fail(
                f"the output shape input {shape.reshape(-1).tolist()} differs from {out.describe()}"
            )
        wdata = self.constant(w, "the filter")
        if w.scale is None or len(w.shape) != 4:
            raise self.fail(f"{w.describe()}: the filter must be quantized [Cout, KH, KW, Cin]")
        cout, kh, kw, cin = w.shape
        n, h, wd, c = x.shape
        if c != cin:
            raise self.fail(f"the filter has {cin} input channels, the input {c}")
        opt = spec.options
        if opt is None:
            raise self.fail("has no TransposeConvOptions")
        sh, sw = int(opt.StrideH()), int(opt.StrideW())
        if sh < 1 or sw < 1:
            raise self.fail(f"stride ({sh}, {sw}) must be positive")
        on, oh, ow, oc = out.shape
        if on != n or oc != cout:
            raise self.fail(f"{out.describe()} does not fit the input and filter")
        # TFLite derives the crop from the *output* size, as the padding a
        # forward convolution from the output back to the input would use.
        crops = []
        for size, full_in, k, s in ((oh, h, kh, sh), (ow, wd, kw, sw)):
            _, before, _ = _tflite_padding(opt.Padding(), size, k, s, self.fail)
            after = (full_in - 1) * s + k - size - before
            if after < 0 or before < 0:
                raise self.unsupported(
                    f"output size {size} is larger than the full transposed convolution "
                    f"{(full_in - 1) * s + k} allows with a crop of {before}"
                )
            crops.append((before, after))
        (top, bottom), (left, right) = crops
        self.attrs = _conv_attrs(self, x, w, wdata, out, opt, (sh, sw), 3)
        self.attrs["crop"] = (top, bottom, left, right)
        self.inputs = [self.inputs[2]]  # the only run-time input

    def node(self) -> Node:
        return self.make_node("conv_transpose2d", "q31", **self.attrs)


class FullyConnected(Op):
    """TFLite's reference FULLY_CONNECTED requantizes in double precision
    (:func:`requantize_double`), not with the fixed-point multiplier: lowp
    runs the GEMM to int32 (bias folded in) and applies that stage."""

    name = "FULLY_CONNECTED"

    def __init__(self, graph: Graph, spec: OpSpec):
        super().__init__(graph, spec)
        self.counts((2, 3))
        x, w, out = self.input(0), self.input(1), self.output()
        self.activation_tensor(x)
        self.activation_tensor(out)
        self.same_type(x, out)
        self.same_type(x, w)
        wdata = self.constant(w, "the weights")
        if w.scale is None or len(w.shape) != 2:
            raise self.fail(f"{w.describe()}: the weights must be quantized [N, K]")
        opt = spec.options
        if opt is None:
            raise self.fail("has no FullyConnectedOptions")
        if opt.WeightsFormat() != 0:
            raise self.unsupported("shuffled weights are not supported")
        n_out, k = w.shape
        size = int(np.prod(x.shape, dtype=np.int64))
        if k == 0 or size % k:
            raise self.fail(f"{x.describe()} does not split into rows of K={k}")
        self.rows = size // k
        if int(np.prod(out.shape, dtype=np.int64)) != self.rows * n_out or (
            len(out.shape) == 0 or out.shape[-1] != n_out
        ):
            raise self.fail(f"{out.describe()} does not hold {self.rows} x {n_out} outputs")
        self.out_shape = tuple(out.shape)
        self.lo, self.hi = self.activation_range(opt.FusedActivationFunction(), out)
        self.real = _real_multiplier(self, x, w, out)
        self.zp = _zp_u8(out)
        self.k = k
        self.weights = np.ascontiguousarray(_to_u8(wdata).T)
        self.w_zero_point = _weights_zero_point(self, w, n_out)
        self.bias = _bias(self, 2, n_out)
        self.x_zero_point = _zp_u8(x)
        keep = tuple(out.shape) == (*x.shape[:-1], n_out)
        if not keep and tuple(out.shape) != (self.rows, n_out):
            raise self.unsupported(
                f"{out.describe()}: lowp takes outputs [{self.rows}, {n_out}] or the input's "
                f"leading dimensions and {n_out}"
            )
        self.keep_dims = keep and len(x.shape) != 2
        self.inputs = [self.inputs[0]]

    @cached_property
    def layer(self) -> Any:
        """The op's GEMM as a lowp layer (int32 out), for layer-by-layer checks."""
        return self.build(
            lowp.Linear,
            self.weights,
            self.w_zero_point,
            x_zero_point=self.x_zero_point,
            bias=self.bias,
            x_dtype=np.uint8,
        )

    def node(self) -> Node:
        return self.make_node(
            "fully_connected",
            "double",
            weights=self.weights,
            w_zero_point=np.atleast_1d(np.asarray(self.w_zero_point, np.int32)),
            bias=self.bias,
            real=np.atleast_1d(np.asarray(self.real, np.float64)),
            clamp=(self.lo, self.hi),
            keep_dims=self.keep_dims,
        )


# ------------------------------------------------------------------------------------------
# Pooling


class _Pool(Op):
    def __init__(self, graph: Graph, spec: OpSpec):
        super().__init__(graph, spec)
        self.counts((1, 1))
        x, out = self.input(0), self.output()
        self.activation_tensor(x, rank=4)
        self.activation_tensor(out, rank=4)
        self.same_type(x, out)
        if _scale(x) != _scale(out) or _zp_u8(x) != _zp_u8(out):
            raise self.unsupported("input and output must have the same scale and zero point")
        opt = spec.options
        if opt is None:
            raise self.fail("has no Pool2DOptions")
        kh, kw = int(opt.FilterHeight()), int(opt.FilterWidth())
        sh, sw = int(opt.StrideH()), int(opt.StrideW())
        if min(kh, kw, sh, sw) < 1:
            raise self.fail(f"filter {kh}x{kw} and stride ({sh}, {sw}) must be positive")
        n, h, w, c = x.shape
        # Under SAME padding a window of 2 * size - 1 already covers the whole
        # input from every output position; far larger ones are corruption
        # (a 2**30 filter), refused before any arithmetic on them.
        if max(kh, sh) > 2 * h + 1 or max(kw, sw) > 2 * w + 1:
            raise self.fail(
                f"filter {kh}x{kw} and stride ({sh}, {sw}) are far beyond the input {h}x{w} "
                "(at most 2 * size + 1 along each axis)"
            )
        oh, top, bottom = _tflite_padding(opt.Padding(), h, kh, sh, self.fail)
        ow, left, right = _tflite_padding(opt.Padding(), w, kw, sw, self.fail)
        if oh < 1 or ow < 1:
            raise self.fail(f"a {kh}x{kw} window does not fit the input {h}x{w}")
        for size, k, stride, count, before in ((h, kh, sh, oh, top), (w, kw, sw, ow, left)):
            if k <= before or (count - 1) * stride - before >= size:
                raise self.fail(f"a {kh}x{kw} window holds no position of the input {h}x{w}")
        self.check_shape(out, (n, oh, ow, c))
        self.lo, self.hi = self.activation_range(opt.FusedActivationFunction(), out)
        self.kernel, self.stride = (kh, kw), (sh, sw)
        self.pads = ((0, 0), (top, bottom), (left, right), (0, 0))
        self.out_hw = (oh, ow)
        self.padded = bool(top or bottom or left or right)
        self.offset = _offset(x.dtype)

    def node(self) -> Node:
        kind = "avg_pool2d" if isinstance(self, AveragePool2D) else "max_pool2d"
        (top, bottom), (left, right) = self.pads[1], self.pads[2]
        return self.make_node(
            kind,
            kernel=self.kernel,
            stride=self.stride,
            padding=(top, bottom, left, right),
            clamp=(self.lo, self.hi),
            offset=self.offset,
        )


class MaxPool2D(_Pool):
    name = "MAX_POOL_2D"


class AveragePool2D(_Pool):
    """TFLite's reference average of the model's own integers (int8: the
    signed values), rounding half away from zero; windows are clipped to the
    input (padding is not counted)."""

    name = "AVERAGE_POOL_2D"


# ------------------------------------------------------------------------------------------
# Elementwise and data movement


class Concatenation(Op):
    """Inputs whose scale or zero point differ from the output's are rescaled
    as TFLite's reference ConcatenationWithScaling does it: in float32,
    ``round(q * (s_in * (1 / s_out)) + (-z_in * that)) + z_out``."""

    name = "CONCATENATION"

    def __init__(self, graph: Graph, spec: OpSpec):
        super().__init__(graph, spec)
        if len(self.inputs) < 1 or len(self.outputs) != 1:
            raise self.fail("needs at least one input and one output")
        out = self.output()
        self.activation_tensor(out)
        opt = spec.options
        if opt is None:
            raise self.fail("has no ConcatenationOptions")
        if opt.FusedActivationFunction() != 0:
            raise self.unsupported("a fused activation on CONCATENATION is not supported")
        rank = len(out.shape)
        axis = int(opt.Axis())
        if not -rank <= axis < rank:
            raise self.fail(f"axis {axis} is outside rank {rank}")
        self.axis = axis % rank
        total = 0
        self.rescale: list[tuple[np.float32, np.float32] | None] = []
        inv_out = np.float32(1.0) / _scale(out)
        off = _offset(out.dtype)
        self.offset = off
        self.zp_out = int(out.zero_point[0])  # type: ignore[index]
        for pos in range(len(self.inputs)):
            t = self.input(pos)
            self.activation_tensor(t)
            self.same_type(t, out)
            if len(t.shape) != rank or any(
                a != b for d, (a, b) in enumerate(zip(t.shape, out.shape)) if d != self.axis
            ):
                raise self.fail(f"{t.describe()} does not fit {out.describe()} on axis {axis}")
            total += t.shape[self.axis]
            if _scale(t) == _scale(out) and _zp_u8(t) == _zp_u8(out):
                self.rescale.append(None)
            else:
                with np.errstate(over="ignore", invalid="ignore"):
                    scale = np.float32(_scale(t) * inv_out)
                    bias = np.float32(np.float32(-int(t.zero_point[0])) * scale)  # type: ignore[index]
                    lo, hi = _native_range(t.dtype)
                    ends = np.array([lo, hi], np.float32) * scale + bias
                if not np.all(np.isfinite(ends)):
                    raise self.fail(
                        f"{t.describe()}: rescaling it to {out.describe()} multiplies by "
                        f"{_scale(t)} / {_scale(out)}, beyond float32"
                    )
                self.rescale.append((scale, bias))
        expected = list(out.shape)
        expected[self.axis] = total
        self.check_shape(out, tuple(expected))
        self.lo, self.hi = _native_range(out.dtype)

    def node(self) -> Node:
        rescaled = any(r is not None for r in self.rescale)
        return self.make_node(
            "concat",
            "float_rescale" if rescaled else None,
            axis=self.axis,
            rescale=list(self.rescale),
            offset=self.offset,
            zero_point=self.zp_out,
            range=(self.lo, self.hi),
        )


class Add(Op):
    """TFLite's quantized ADD: both inputs shifted left by 20 bits, scaled to
    twice the larger input scale with fixed-point multipliers, added, then
    scaled to the output (three multiply_by_quantized_multiplier steps)."""

    name = "ADD"
    _LEFT_SHIFT = 20

    def __init__(self, graph: Graph, spec: OpSpec):
        super().__init__(graph, spec)
        self.counts((2, 2))
        a, b, out = self.input(0), self.input(1), self.output()
        for t in (a, b, out):
            self.activation_tensor(t)
        self.same_type(a, out)
        self.same_type(b, out)
        try:
            shape = np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise self.fail(f"{a.describe()} and {b.describe()} do not broadcast") from None
        self.check_shape(out, tuple(shape))
        opt = spec.options
        fused = opt.FusedActivationFunction() if opt is not None else 0
        self.lo, self.hi = self.activation_range(fused, out)
        twice_max = 2.0 * float(max(_scale(a), _scale(b)))
        real_a = float(_scale(a)) / twice_max
        real_b = float(_scale(b)) / twice_max
        real_out = twice_max / ((1 << self._LEFT_SHIFT) * float(_scale(out)))
        self.ma, self.sa = lowp.quantize_multiplier(real_a)
        self.mb, self.sb = lowp.quantize_multiplier(real_b)
        try:
            self.mo, self.so = lowp.quantize_multiplier(real_out)
        except ValueError as err:
            raise self.unsupported(f"the output multiplier is out of range: {err}") from None
        self.zp_a, self.zp_b, self.zp_out = _zp_u8(a), _zp_u8(b), _zp_u8(out)

    def node(self) -> Node:
        mults = tuple(int(v) for v in (self.ma, self.sa, self.mb, self.sb, self.mo, self.so))
        return self.make_node(
            "add",
            "add_q31",
            left_shift=self._LEFT_SHIFT,
            multipliers=mults,
            clamp=(self.lo, self.hi),
        )


class Pad(Op):
    """PAD and PADV2: the padding is the output zero point (PAD) or the given
    constant (PADV2)."""

    name = "PAD"

    def __init__(self, graph: Graph, spec: OpSpec):
        super().__init__(graph, spec)
        self.counts((2, 3) if spec.name == "PADV2" else (2, 2))
        x, p, out = self.input(0), self.input(1), self.output()
        self.activation_tensor(x)
        self.activation_tensor(out)
        self.same_type(x, out)
        if _scale(x) != _scale(out) or _zp_u8(x) != _zp_u8(out):
            raise self.unsupported("input and output must have the same scale and zero point")
        pads = self.constant(p, "the paddings")
        if p.dtype not in (np.int32, np.int64) or pads.shape != (len(x.shape), 2):
            raise self.fail(f"{p.describe()} must be integer [{len(x.shape)}, 2]")
        if np.any(pads < 0):
            raise self.fail(f"negative paddings {pads.tolist()}")
        self.pads = tuple((int(a), int(b)) for a, b in pads)
        self.check_shape(out, tuple(d + a + b for d, (a, b) in zip(x.shape, self.pads)))
        self.value = _zp_u8(out)
        c = self.tensor(2, optional=True)
        if c is not None:
            cdata = self.constant(c, "the padding value")
            if c.dtype != out.dtype or cdata.size != 1:
                raise self.fail(f"{c.describe()} must be one {out.dtype} value")
            # TFLite's reference PADV2 requires the output's scale and zero point
            if not c.quantized or c.scale.size != 1:  # type: ignore[union-attr]
                raise self.unsupported(
                    f"the padding value {c.describe()} has no per-tensor quantization parameters"
                )
            if _scale(c) != _scale(out) or _zp_u8(c) != _zp_u8(out):
                raise self.unsupported(
                    f"the padding value {c.describe()} must have the output's scale and zero point"
                )
            self.value = int(cdata.reshape(-1)[0]) + _offset(c.dtype)
        self.inputs = [self.inputs[0]]

    def node(self) -> Node:
        return self.make_node("pad", pads=self.pads, value=self.value)


class Reshape(Op):
    name = "RESHAPE"

    def __init__(self, graph: Graph, spec: OpSpec):
        super().__init__(graph, spec)
        self.counts((1, 2))
        x, out = self.input(0), self.output()
        if x.dtype != out.dtype or x.dtype == np.void:
            raise self.unsupported(f"{x.describe()} -> {out.describe()}: unsupported types")
        for t in (x, out):
            if t.quantized:
                self.check_scales(t)
        if x.quantized and out.quantized and (_scale(x) != _scale(out) or _zp_u8(x) != _zp_u8(out)):
            raise self.unsupported("input and output must have the same scale and zero point")
        size_in = int(np.prod(x.shape, dtype=np.int64))
        if size_in != int(np.prod(out.shape, dtype=np.int64)):
            raise self.fail(f"{x.describe()} cannot be reshaped to {out.describe()}")
        self.shape = tuple(out.shape)
        self.size = size_in
        self.inputs = [self.inputs[0]]

    def node(self) -> Node:
        return self.make_node("reshape", source_size=self.size)


class Quantize(Op):
    """float32 -> int8/uint8: ``round(x / scale) + zero_point`` with the
    division in float32; int8/uint8 -> int8/uint8: requantize with the
    fixed-point multiplier of ``double(s_in) / double(s_out)``."""

    name = "QUANTIZE"

    def __init__(self, graph: Graph, spec: OpSpec):
        super().__init__(graph, spec)
        self.counts((1, 1))
        x, out = self.input(0), self.output()
        self.activation_tensor(out)
        self.check_shape(out, tuple(x.shape))
        self.lo, self.hi = _native_range(out.dtype)
        self.offset = _offset(out.dtype)
        self.zp = int(out.zero_point[0])  # type: ignore[index]
        self.scale = _scale(out)
        self.from_float = x.dtype == np.float32
        if not self.from_float:
            self.activation_tensor(x)
            real = np.float64(_scale(x)) / np.float64(self.scale)
            try:
                m0, shift = lowp.quantize_multiplier(real)
            except ValueError as err:
                raise self.unsupported(f"the rescale {real} is out of range: {err}") from None
            self.requant = lowp.Requant(m0, shift, _zp_u8(out), 0, 255)
            self.zp_in = _zp_u8(x)

    def node(self) -> Node:
        if self.from_float:
            return self.make_node(
                "quantize",
                scale=self.scale,
                zero_point=self.zp,
                range=(self.lo, self.hi),
                offset=self.offset,
            )
        return self.make_node(
            "quantize", "q31", multiplier=self.requant.multiplier, shift=self.requant.shift
        )


class Dequantize(Op):
    """int8/uint8 -> float32: ``float(double(scale) * (q - zero_point))``."""

    name = "DEQUANTIZE"

    def __init__(self, graph: Graph, spec: OpSpec):
        super().__init__(graph, spec)
        self.counts((1, 1))
        x, out = self.input(0), self.output()
        self.activation_tensor(x)
        if out.dtype != np.float32:
            raise self.unsupported(f"{out.describe()} must be float32")
        self.check_shape(out, tuple(x.shape))
        self.scale = np.float64(_scale(x))
        self.zp = _zp_u8(x)

    def node(self) -> Node:
        return self.make_node("dequantize", scale=float(self.scale))


OPS: dict[str, type[Op]] = {
    "CONV_2D": Conv2D,
    "TRANSPOSE_CONV": TransposeConv,
    "FULLY_CONNECTED": FullyConnected,
    "MAX_POOL_2D": MaxPool2D,
    "AVERAGE_POOL_2D": AveragePool2D,
    "CONCATENATION": Concatenation,
    "ADD": Add,
    "PAD": Pad,
    "PADV2": Pad,
    "RESHAPE": Reshape,
    "QUANTIZE": Quantize,
    "DEQUANTIZE": Dequantize,
}
