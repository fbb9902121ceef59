"""Side-by-side timing of lowp's convolutions and other engines on the same
shapes, in one process, interleaved (``lowp bench conv``).

GOPS = 2 * N * Ho * Wo * Cout * KH * KW * Cin / seconds (medians). Every
engine gets the same uint8 data and the same function: 3x3 convolutions with
one pixel of zero-point padding on every side (TFLite's "same" at stride 1;
at stride 2 the same cost and output size, symmetric so that PyTorch can run
it), 2x2 stride-2 transposed convolutions without crop. Layouts are each
engine's own: NHWC for lowp, NCHW for ONNX Runtime, channels_last for
PyTorch, converted before the clock starts. ONNX Runtime has no quantized
ConvTranspose, so its float32 one is timed. Engines that are not installed
are left out.

Besides the speed, each quantized engine's output is compared with the
exact result requantized the engine's way: lowp bit for bit against its own
fixed-point stage, the others against ``round(acc * real_multiplier) + zp``
(their float requantization may differ by one step at ties; more than that
is a wrong result).
"""

from __future__ import annotations

import re
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import lowp
from lowp._runtime import describe_machine

from ._bench import _time  # also sets the OpenMP spinning policy before torch loads


@dataclass(frozen=True)
class ConvShape:
    """One benchmark layer: ``kind`` is "conv" or "deconv"."""

    kind: str
    n: int
    h: int
    w: int
    cin: int
    cout: int
    k: int
    stride: int

    @property
    def pad(self) -> int:
        return (self.k - 1) // 2 if self.kind == "conv" else 0

    @property
    def out_hw(self) -> tuple[int, int]:
        if self.kind == "deconv":
            return (self.h - 1) * self.stride + self.k, (self.w - 1) * self.stride + self.k
        return (
            (self.h + 2 * self.pad - self.k) // self.stride + 1,
            (self.w + 2 * self.pad - self.k) // self.stride + 1,
        )

    @property
    def ops(self) -> float:
        ho, wo = self.out_hw
        if self.kind == "deconv":  # every input pixel times the whole kernel
            return 2.0 * self.n * self.h * self.w * self.cout * self.k * self.k * self.cin
        return 2.0 * self.n * ho * wo * self.cout * self.k * self.k * self.cin

    def label(self) -> str:
        name = f"{self.kind} {self.k}x{self.k}" + (f" s{self.stride}" if self.stride > 1 else "")
        dims = f"{self.n}x{self.h}x{self.w}x{self.cin} -> {self.cout}"
        return f"{name:<14s}{dims}"


CONV_SHAPES = [
    ConvShape("conv", 1, 56, 56, 64, 64, 3, 1),
    ConvShape("conv", 1, 128, 128, 32, 32, 3, 1),
    ConvShape("conv", 1, 28, 28, 128, 128, 3, 1),
    ConvShape("conv", 1, 224, 224, 3, 32, 3, 2),
    ConvShape("deconv", 1, 28, 28, 128, 64, 2, 2),
    ConvShape("deconv", 1, 56, 56, 64, 32, 2, 2),
    ConvShape("deconv", 1, 64, 64, 64, 64, 2, 2),
]

_SPEC = re.compile(r"(conv|deconv)(\d+)(?:s(\d+))?:(\d+)x(\d+)x(\d+)x(\d+)x(\d+)")


def parse_shape(text: str) -> ConvShape:
    """``conv3s2:1x224x224x3x32`` (kind, kernel, stride: N x H x W x Cin x Cout)."""
    match = _SPEC.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"conv shape must look like conv3s1:1x56x56x64x64, got {text!r}")
    kind, k, stride, n, h, w, cin, cout = match.groups()
    shape = ConvShape(kind, int(n), int(h), int(w), int(cin), int(cout), int(k), int(stride or 1))
    if min(shape.n, shape.h, shape.w, shape.cin, shape.cout, shape.k, shape.stride) < 1:
        raise ValueError(f"conv shape sizes must be positive, got {text!r}")
    if min(shape.out_hw) < 1:
        raise ValueError(f"conv shape {text!r} has an empty output")
    return shape


# Quantization of the synthetic layer: input scale, per-channel weight
# scales, and an output scale that spreads the accumulators over the uint8
# range (about 3 standard deviations of a random sum).
X_SCALE, X_ZP, W_ZP, Y_ZP = 0.02, 120, 128, 128


class _Layer:
    """The data and the exact answer of one shape, shared by every engine."""

    def __init__(self, shape: ConvShape, seed: int = 0):
        rng = np.random.default_rng(seed)
        s = shape
        self.shape = s
        self.x = rng.integers(0, 256, (s.n, s.h, s.w, s.cin), dtype=np.uint8)
        self.w = rng.integers(0, 256, (s.cout, s.k, s.k, s.cin), dtype=np.uint8)  # OHWI
        self.w_scale = rng.uniform(0.5, 1.5, s.cout).astype(np.float32) * np.float32(0.01)
        spread = 3.0 * np.sqrt(s.k * s.k * s.cin) * 74.0 * 74.0  # std of uniform u8 ~ 74
        self.y_scale = float(np.float32(X_SCALE * 0.01 * spread / 127.0))
        # The exact int32 accumulators: lowp's int32 result, itself checked
        # against the NumPy reference (a fraction of a second at these sizes).
        self.acc = self._lowp_int32()
        fn = lowp.reference.conv_transpose2d if s.kind == "deconv" else lowp.reference.conv2d
        want = fn(self.x, self.w, X_ZP, W_ZP, stride=s.stride, padding=s.pad)
        if not np.array_equal(self.acc, want):
            raise AssertionError(f"lowp disagrees with lowp.reference on {s.label()}")

    def _lowp_int32(self) -> np.ndarray:
        s = self.shape
        fn = lowp.conv_transpose2d if s.kind == "deconv" else lowp.conv2d
        return fn(self.x, self.w, X_ZP, W_ZP, stride=s.stride, padding=s.pad)

    def float_expected(self, w_scale) -> np.ndarray:
        """``round(acc * x_scale * w_scale / y_scale) + y_zp``, clamped: the
        float requantization of the exact accumulators."""
        real = np.float64(X_SCALE) * np.asarray(w_scale, np.float64) / np.float64(self.y_scale)
        return np.clip(np.rint(self.acc * real) + Y_ZP, 0, 255).astype(np.uint8)


def _steps_off(got: np.ndarray, want: np.ndarray) -> int:
    return int(np.abs(got.astype(np.int64) - want.astype(np.int64)).max())


def _lowp(layer: _Layer) -> tuple[Callable[[], object], int]:
    s = layer.shape
    rq = lowp.Requant.from_scales(X_SCALE, layer.w_scale, layer.y_scale, Y_ZP)
    cls = lowp.ConvTranspose2d if s.kind == "deconv" else lowp.Conv2d
    op = cls(layer.w, W_ZP, x_zero_point=X_ZP, stride=s.stride, padding=s.pad, requant=rq)
    out = np.empty((s.n, *s.out_hw, s.cout), np.uint8)
    op(layer.x, out=out)
    want = lowp.reference.output_stage(
        layer.acc, None, rq.multiplier, rq.shift, rq.zero_point, rq.qmin, rq.qmax
    )
    return (lambda: op(layer.x, out=out)), _steps_off(out, want)


def _ort_session(nodes, inputs, outputs, initializers, threads: int):
    import onnxruntime as ort
    from onnx import helper

    graph = helper.make_graph(nodes, "conv", inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = min(model.ir_version, 9)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _ort_conv(layer: _Layer, op_type: str, threads: int) -> tuple[Callable[[], object], int]:
    """QLinearConv (uint8 out) or ConvInteger (int32 out), uint8 x uint8, NCHW."""
    from onnx import TensorProto, helper

    s = layer.shape
    ho, wo = s.out_hw
    x_nchw = np.ascontiguousarray(layer.x.transpose(0, 3, 1, 2))
    w_oihw = np.ascontiguousarray(layer.w.transpose(0, 3, 1, 2))
    attrs: dict[str, Any] = {
        "strides": [s.stride] * 2,
        "pads": [s.pad] * 4,
        "kernel_shape": [s.k] * 2,
    }
    w_init = helper.make_tensor("w", TensorProto.UINT8, w_oihw.shape, w_oihw.tobytes(), raw=True)
    x_info = helper.make_tensor_value_info("x", TensorProto.UINT8, x_nchw.shape)
    zp = [
        helper.make_tensor("x_zp", TensorProto.UINT8, [], [X_ZP]),
        helper.make_tensor("w_zp", TensorProto.UINT8, [], [W_ZP]),
    ]
    if op_type == "ConvInteger":
        node = helper.make_node("ConvInteger", ["x", "w", "x_zp", "w_zp"], ["y"], **attrs)
        y_type, inits = TensorProto.INT32, [w_init, *zp]
    else:
        node = helper.make_node(
            "QLinearConv",
            ["x", "x_scale", "x_zp", "w", "w_scale", "w_zp", "y_scale", "y_zp"],
            ["y"],
            **attrs,
        )
        y_type = TensorProto.UINT8
        inits = [
            w_init,
            *zp,
            helper.make_tensor("x_scale", TensorProto.FLOAT, [], [X_SCALE]),
            helper.make_tensor("w_scale", TensorProto.FLOAT, [s.cout], layer.w_scale.tolist()),
            helper.make_tensor("y_scale", TensorProto.FLOAT, [], [layer.y_scale]),
            helper.make_tensor("y_zp", TensorProto.UINT8, [], [Y_ZP]),
        ]
    y_info = helper.make_tensor_value_info("y", y_type, [s.n, s.cout, ho, wo])
    sess = _ort_session([node], [x_info], [y_info], inits, threads)
    feed = {"x": x_nchw}
    got = sess.run(None, feed)[0].transpose(0, 2, 3, 1)
    if op_type == "ConvInteger":
        off = 0 if np.array_equal(got, layer.acc) else _steps_off(got, layer.acc)
    else:
        off = _steps_off(got, layer.float_expected(layer.w_scale))
    return (lambda: sess.run(None, feed)), off


def _ort_conv_transpose_f32(layer: _Layer, threads: int) -> Callable[[], object]:
    from onnx import TensorProto, helper

    s = layer.shape
    ho, wo = s.out_hw
    x = np.ascontiguousarray(layer.x.transpose(0, 3, 1, 2)).astype(np.float32)
    w = np.ascontiguousarray(layer.w.transpose(3, 0, 1, 2)).astype(np.float32)  # [Cin, Cout, k, k]
    node = helper.make_node(
        "ConvTranspose", ["x", "w"], ["y"], strides=[s.stride] * 2, kernel_shape=[s.k] * 2
    )
    sess = _ort_session(
        [node],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [s.n, s.cout, ho, wo])],
        [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.tobytes(), raw=True)],
        threads,
    )
    feed = {"x": x}
    return lambda: sess.run(None, feed)


def _torch_fbgemm(layer: _Layer, threads: int) -> tuple[Callable[[], object], int]:
    """PyTorch's quantized conv on fbgemm, channels_last: uint8 input, int8
    weights (our uint8 weights minus their zero point 128), float requant."""
    import torch

    warnings.filterwarnings("ignore", message=".*quantized tensor creation.*")
    torch.backends.quantized.engine = "fbgemm"
    torch.set_num_threads(threads)
    s = layer.shape
    x = torch.from_numpy(layer.x).permute(0, 3, 1, 2)  # NHWC memory = channels_last
    xq = torch._make_per_tensor_quantized_tensor(x, X_SCALE, X_ZP)
    w_i8 = (layer.w.astype(np.int16) - W_ZP).astype(np.int8)
    if s.kind == "deconv":
        # Per-tensor weight scale: fbgemm's transposed conv takes no per-channel weights.
        w_scale = np.full(s.cout, layer.w_scale[0], np.float32)
        wt = torch.from_numpy(np.ascontiguousarray(w_i8.transpose(3, 0, 1, 2)))
        wq = torch._make_per_tensor_quantized_tensor(wt, float(w_scale[0]), 0)
        mod: Any = torch.ao.nn.quantized.ConvTranspose2d(s.cin, s.cout, s.k, stride=s.stride)
    else:
        w_scale = layer.w_scale
        wt = torch.from_numpy(np.ascontiguousarray(w_i8.transpose(0, 3, 1, 2)))
        wq = torch._make_per_channel_quantized_tensor(
            wt,
            torch.from_numpy(w_scale.astype(np.float64)),
            torch.zeros(s.cout, dtype=torch.long),
            0,
        )
        mod = torch.ao.nn.quantized.Conv2d(s.cin, s.cout, s.k, stride=s.stride, padding=s.pad)
    mod.set_weight_bias(wq, None)
    mod.scale, mod.zero_point = layer.y_scale, Y_ZP
    got = mod(xq).int_repr().permute(0, 2, 3, 1).numpy()
    return (lambda: mod(xq)), _steps_off(got, layer.float_expected(w_scale))


def _torch_f32(layer: _Layer, threads: int) -> Callable[[], object]:
    import torch

    torch.set_num_threads(threads)
    s = layer.shape
    f = torch.nn.functional
    x = torch.from_numpy(layer.x.astype(np.float32)).permute(0, 3, 1, 2)  # channels_last
    if s.kind == "deconv":
        w = torch.from_numpy(layer.w.astype(np.float32)).permute(3, 0, 1, 2)
        w = w.contiguous(memory_format=torch.channels_last)
        return lambda: f.conv_transpose2d(x, w, stride=s.stride)
    w = torch.from_numpy(layer.w.astype(np.float32)).permute(0, 3, 1, 2)  # OIHW, channels_last
    return lambda: f.conv2d(x, w, stride=s.stride, padding=s.pad)


def _engines(layer: _Layer, threads: int):
    """{name: callable} and {name: output steps off the exact result}."""
    lowp.set_num_threads(threads)
    engines: dict[str, Callable[[], object]] = {}
    off: dict[str, int] = {}
    engines["lowp"], off["lowp"] = _lowp(layer)
    try:
        if layer.shape.kind == "conv":
            for op, name in (("QLinearConv", "ort qlin"), ("ConvInteger", "ort cint")):
                engines[name], off[name] = _ort_conv(layer, op, threads)
        else:
            engines["ort f32"] = _ort_conv_transpose_f32(layer, threads)
    except ImportError:
        pass
    try:
        engines["fbgemm"], off["fbgemm"] = _torch_fbgemm(layer, threads)
        engines["torch f32"] = _torch_f32(layer, threads)
    except ImportError:
        pass
    return engines, off


COLUMNS = ["lowp", "ort qlin", "ort cint", "ort f32", "fbgemm", "torch f32"]


def _verdict(steps: int | None) -> str:
    if steps is None:
        return "-"
    return "exact" if steps == 0 else ("+-1" if steps == 1 else f"{steps} off")


def bench_conv(shapes=None, threads: int = 1, repeats: int = 7, min_seconds: float = 0.05):
    """Prints a table of GOPS medians, ratios and output checks; returns
    {shape: {engine: GOPS}}."""
    shapes = list(shapes or CONV_SHAPES)
    print(describe_machine())
    print(
        f"Convolutions, uint8, {threads} thread(s), GOPS = 2*N*Ho*Wo*Cout*KH*KW*Cin/s"
        f" (median of {repeats}, interleaved); lowp: packed weights, fused per-channel requant"
    )
    print(
        "ort qlin / ort cint: ONNX Runtime QLinearConv / ConvInteger (u8 x u8, NCHW); ort f32:"
        " its float32 ConvTranspose (it has no quantized one); fbgemm: PyTorch quantized conv"
        " (u8 x s8, channels_last); ratios: lowp / engine; check: output vs the exact result"
        " requantized the engine's way (max steps off)"
    )
    results: dict[ConvShape, dict[str, float]] = {}
    cols = "".join(f"{c:>11s}" for c in COLUMNS)
    ratios = "".join(f"{'/' + c:>11s}" for c in COLUMNS[1:])
    print(f"{'op':<14s}{'N x H x W x Cin -> Cout':<24s}{cols}{ratios}  check")
    for shape in shapes:
        layer = _Layer(shape)
        engines, off = _engines(layer, threads)
        for fn in engines.values():
            fn()  # warm up
        samples: dict[str, list[float]] = {name: [] for name in engines}
        for _ in range(repeats):
            for name, fn in engines.items():
                # The engine before may leave worker threads spinning; let them settle.
                time.sleep(0.1)
                samples[name].append(_time(fn, min_seconds))
        gops = {name: shape.ops / statistics.median(t) / 1e9 for name, t in samples.items()}
        results[shape] = gops
        row = "".join(f"{gops[c]:11.1f}" if c in gops else f"{'-':>11s}" for c in COLUMNS)
        ratio = "".join(
            f"{gops['lowp'] / gops[c]:11.2f}" if c in gops else f"{'-':>11s}" for c in COLUMNS[1:]
        )
        check = ", ".join(f"{name} {_verdict(steps)}" for name, steps in off.items())
        print(f"{shape.label():<38s}{row}{ratio}  {check}", flush=True)
    return results
