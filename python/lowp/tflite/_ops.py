"""The TFLite operators lowp runs, each matching TFLite's *reference* kernel.

Every quantized tensor is held in the uint8 domain while the graph runs: an
int8 tensor ``q`` with zero point ``z`` is the uint8 tensor ``q + 128`` with
zero point ``z + 128`` (DESIGN.md section 2), so int8 and uint8 models share
the uint8 kernels. Where a reference kernel works on the signed values
(average pooling's rounding, concatenation's float rescaling) the op moves to
the model's own domain for that step.

An op is built once from the parsed graph (checking its tensors and packing
its weights) and then only computes: ``run(values)`` reads its inputs from and
writes its outputs to ``values``, a list indexed by tensor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import lowp

from ._schema import Graph, ModelError, OpSpec, TensorSpec, UnsupportedOpError

__all__ = ["OPS", "Op", "requantize_double"]

_PADDING_SAME, _PADDING_VALID = 0, 1
_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
_QTYPES = (np.dtype(np.uint8), np.dtype(np.int8))


def _round_half_away(x: np.ndarray | float) -> Any:
    """C's ``round``: halves go away from zero (NumPy's ``round`` goes to even)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def requantize_double(acc: np.ndarray, real_multiplier, zero_point: int, qmin: int, qmax: int):
    """TFLite 2.21's reference FULLY_CONNECTED output stage: the int32
    accumulator times the real multiplier in double precision, rounded half
    away from zero, plus the zero point, clamped. ``real_multiplier`` is a
    float or one value per output channel (the last axis). Returns int32."""
    scaled = acc.astype(np.float64) * np.asarray(real_multiplier, dtype=np.float64)
    out = _round_half_away(scaled) + zero_point
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
        self._buffer: np.ndarray | None = None

    def buffer(self) -> np.ndarray:
        """The op's own uint8 output array, reused by every run: a fresh
        array per run costs page faults on every large activation."""
        if self._buffer is None:
            self._buffer = np.empty(self.graph.tensors[self.outputs[0]].shape, np.uint8)
        return self._buffer

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
        if t.scale is None or t.zero_point is None or t.scale.size != 1:
            raise self.unsupported(f"{t.describe()} must be quantized per tensor")
        if not t.scale[0] > 0:
            raise self.fail(f"{t.describe()} has a non-positive scale {t.scale[0]}")
        lo, hi = _native_range(t.dtype)
        if not lo <= int(t.zero_point[0]) <= hi:
            raise self.fail(f"{t.describe()} has zero point {t.zero_point[0]} outside {t.dtype}")
        if rank is not None and len(t.shape) != rank:
            raise self.fail(f"{t.describe()} must have rank {rank}")

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
        return _activation_range(name, out)

    def build(self, layer: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Construct a lowp layer, its argument errors named after this op."""
        try:
            return layer(*args, **kwargs)
        except (TypeError, ValueError) as err:
            raise self.unsupported(str(err)) from None

    # --- run ------------------------------------------------------------------------------

    def run(self, values: list[Any]) -> None:
        raise NotImplementedError

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
        return zp + int(_round_half_away(float(np.float32(f) / scale)))

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
    if np.any(~(w.scale > 0)):
        raise op.fail(f"{w.describe()} has a non-positive scale")
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


def _conv_layer(
    op: Op,
    layer: Callable[..., Any],
    x: TensorSpec,
    w: TensorSpec,
    wdata: np.ndarray,
    out: TensorSpec,
    opt: Any,
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    bias_position: int,
) -> Any:
    """A packed lowp convolution (CONV_2D or TRANSPOSE_CONV) with TFLite's
    fixed-point output stage and fused activation clamp."""
    lo, hi = op.activation_range(opt.FusedActivationFunction(), out)
    requant = _fixed_requant(op, _real_multiplier(op, x, w, out), out, lo, hi)
    cout = w.shape[0]
    return op.build(
        layer,
        np.ascontiguousarray(_to_u8(wdata)),
        _weights_zero_point(op, w, cout),
        x_zero_point=_zp_u8(x),
        stride=stride,
        padding=padding,
        bias=_bias(op, bias_position, cout),
        requant=requant,
    )


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
        self.layer = _conv_layer(
            self, lowp.Conv2d, x, w, wdata, out, opt, (sh, sw), (top, bottom, left, right), 2
        )

    def run(self, values: list[Any]) -> None:
        values[self.outputs[0]] = self.layer(values[self.inputs[0]], out=self.buffer())


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
        self.layer = _conv_layer(
            self,
            lowp.ConvTranspose2d,
            x,
            w,
            wdata,
            out,
            opt,
            (sh, sw),
            (top, bottom, left, right),
            3,
        )
        self.inputs = [self.inputs[2]]  # the only run-time input

    def run(self, values: list[Any]) -> None:
        values[self.outputs[0]] = self.layer(values[self.inputs[0]], out=self.buffer())


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
        self.layer = self.build(
            lowp.Linear,
            np.ascontiguousarray(_to_u8(wdata).T),
            _weights_zero_point(self, w, n_out),
            x_zero_point=_zp_u8(x),
            bias=_bias(self, 2, n_out),
            x_dtype=np.uint8,
        )

    def run(self, values: list[Any]) -> None:
        x = values[self.inputs[0]].reshape(self.rows, self.k)
        acc = self.layer(x)
        out = requantize_double(acc, self.real, self.zp, self.lo, self.hi)
        values[self.outputs[0]] = out.astype(np.uint8).reshape(self.out_shape)


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
        oh, top, bottom = _tflite_padding(opt.Padding(), h, kh, sh, self.fail)
        ow, left, right = _tflite_padding(opt.Padding(), w, kw, sw, self.fail)
        if oh < 1 or ow < 1:
            raise self.fail(f"a {kh}x{kw} window does not fit the input {h}x{w}")
        self.check_shape(out, (n, oh, ow, c))
        self.lo, self.hi = self.activation_range(opt.FusedActivationFunction(), out)
        self.kernel, self.stride = (kh, kw), (sh, sw)
        self.pads = ((0, 0), (top, bottom), (left, right), (0, 0))
        self.out_hw = (oh, ow)
        self.padded = bool(top or bottom or left or right)
        self.offset = _offset(x.dtype)

    def windows(self, padded: np.ndarray):
        """Each kernel tap's strided view of the padded input, one output per step."""
        (kh, kw), (sh, sw), (oh, ow) = self.kernel, self.stride, self.out_hw
        for i in range(kh):
            for j in range(kw):
                yield padded[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]


class MaxPool2D(_Pool):
    name = "MAX_POOL_2D"

    def run(self, values: list[Any]) -> None:
        x = values[self.inputs[0]]
        if not self.padded and self.kernel == self.stride:
            values[self.outputs[0]] = self._tiled(x)
            return
        # padded positions are outside the window in TFLite; 0 is the smallest
        # uint8 and every window holds at least one real position
        padded = np.pad(x, self.pads) if self.padded else x
        taps = self.windows(padded)
        out = next(taps).copy()
        for view in taps:
            np.maximum(out, view, out=out)
        np.clip(out, self.lo, self.hi, out=out)
        values[self.outputs[0]] = out

    def _tiled(self, x: np.ndarray) -> np.ndarray:
        # Windows that tile the input (the UNet's 2x2 stride 2): the max over
        # whole rows first, then over neighbouring pixels, on contiguous runs.
        (kh, kw), (oh, ow) = self.kernel, self.out_hw
        n, c = x.shape[0], x.shape[3]
        rows = x[:, : oh * kh, : ow * kw, :].reshape(n, oh, kh, ow * kw * c)
        out = rows[:, :, 0].copy()
        for i in range(1, kh):
            np.maximum(out, rows[:, :, i], out=out)
        pixels = out.reshape(n, oh, ow, kw, c)
        res = self.buffer()
        np.copyto(res, pixels[:, :, :, 0])
        for j in range(1, kw):
            np.maximum(res, pixels[:, :, :, j], out=res)
        if self.lo > 0 or self.hi < 255:
            np.clip(res, self.lo, self.hi, out=res)
        return res


class AveragePool2D(_Pool):
    name = "AVERAGE_POOL_2D"

    def __init__(self, graph: Graph, spec: OpSpec):
        super().__init__(graph, spec)
        # how many real (unpadded) positions each output window covers
        _, h, w, _ = self.input(0).shape
        ones = np.pad(np.ones((1, h, w, 1), np.int32), self.pads)
        count = sum(v for v in self.windows(ones))
        self.count = np.asarray(count, dtype=np.int32)
        self.half = self.count // 2

    def run(self, values: list[Any]) -> None:
        x = values[self.inputs[0]]
        signed = x.astype(np.int32) - self.offset  # the model's own integers
        padded = np.pad(signed, self.pads) if self.padded else signed
        acc = sum(v for v in self.windows(padded))
        # C division truncates: (acc + n/2) / n above zero, (acc - n/2) / n below
        mag = (np.abs(acc) + self.half) // self.count
        avg = np.where(acc < 0, -mag, mag) + self.offset
        values[self.outputs[0]] = np.clip(avg, self.lo, self.hi).astype(np.uint8)


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
                scale = np.float32(_scale(t) * inv_out)
                bias = np.float32(np.float32(-int(t.zero_point[0])) * scale)  # type: ignore[index]
                self.rescale.append((scale, bias))
        expected = list(out.shape)
        expected[self.axis] = total
        self.check_shape(out, tuple(expected))
        self.lo, self.hi = _native_range(out.dtype)

    def run(self, values: list[Any]) -> None:
        parts = []
        for i, rs in zip(self.inputs, self.rescale):
            x = values[i]
            if rs is not None:
                scale, bias = rs
                native = (x.astype(np.int32) - self.offset).astype(np.float32)
                v = native * scale + bias  # float32 multiply, then float32 add
                q = _round_half_away(v.astype(np.float64)) + self.zp_out
                x = (np.clip(q, self.lo, self.hi) + self.offset).astype(np.uint8)
            parts.append(x)
        values[self.outputs[0]] = np.concatenate(parts, axis=self.axis, out=self.buffer())


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

    def run(self, values: list[Any]) -> None:
        mbqm = lowp.multiply_by_quantized_multiplier
        a = (values[self.inputs[0]].astype(np.int32) - self.zp_a) << self._LEFT_SHIFT
        b = (values[self.inputs[1]].astype(np.int32) - self.zp_b) << self._LEFT_SHIFT
        total = mbqm(a, self.ma, self.sa) + mbqm(b, self.mb, self.sb)
        out = mbqm(np.ascontiguousarray(total), self.mo, self.so) + self.zp_out
        values[self.outputs[0]] = np.clip(out, self.lo, self.hi).astype(np.uint8)


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
            self.value = int(cdata.reshape(-1)[0]) + _offset(c.dtype)
        self.inputs = [self.inputs[0]]

    def run(self, values: list[Any]) -> None:
        x = values[self.inputs[0]]
        values[self.outputs[0]] = np.pad(x, self.pads, constant_values=self.value)


class Reshape(Op):
    name = "RESHAPE"

    def __init__(self, graph: Graph, spec: OpSpec):
        super().__init__(graph, spec)
        self.counts((1, 2))
        x, out = self.input(0), self.output()
        if x.dtype != out.dtype or x.dtype == np.void:
            raise self.unsupported(f"{x.describe()} -> {out.describe()}: unsupported types")
        if x.quantized and out.quantized and (_scale(x) != _scale(out) or _zp_u8(x) != _zp_u8(out)):
            raise self.unsupported("input and output must have the same scale and zero point")
        size_in = int(np.prod(x.shape, dtype=np.int64))
        if size_in != int(np.prod(out.shape, dtype=np.int64)):
            raise self.fail(f"{x.describe()} cannot be reshaped to {out.describe()}")
        self.shape = tuple(out.shape)
        self.inputs = [self.inputs[0]]

    def run(self, values: list[Any]) -> None:
        values[self.outputs[0]] = values[self.inputs[0]].reshape(self.shape)


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

    def run(self, values: list[Any]) -> None:
        x = values[self.inputs[0]]
        if self.from_float:
            v = _round_half_away((x / self.scale).astype(np.float64))
            # beyond int32 (and NaN) the C conversion gives INT32_MIN on x86
            big = ~(np.abs(v) < 2.0**31)
            q = np.where(big, -(2.0**31), v) + self.zp
            values[self.outputs[0]] = (np.clip(q, self.lo, self.hi) + self.offset).astype(np.uint8)
        else:
            acc = np.ascontiguousarray(x.astype(np.int32) - self.zp_in)
            values[self.outputs[0]] = self.requant(acc)


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

    def run(self, values: list[Any]) -> None:
        x = values[self.inputs[0]]
        values[self.outputs[0]] = (self.scale * (x.astype(np.int32) - self.zp)).astype(np.float32)


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
