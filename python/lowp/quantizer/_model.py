"""``lowp.quantize_model`` and ``lowp.QuantizedModel`` (DESIGN.md section 8)."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

import lowp
from lowp import _checks
from lowp.graph import Graph as IntGraph
from lowp.quant import QParams
from lowp.tflite._schema import TensorSpec

from ._calib import METHODS, RangeObserver
from ._eval import OneOp, input_qparams, outputs_sqnr, qparams_of
from ._fgraph import FGraph
from ._prepare import PGraph, executor, prepare
from ._report import Report, Sweep, make_report, make_sweep
from ._tflite import Scheme, TensorQuant, build, clamp_problem, share_groups

__all__ = ["QuantizedModel", "quantize_model"]

SCHEMES = ("int8", "uint8")
CONCAT_MODES = ("auto", "shared", "requantize")
#: samples per batch when the calibration set comes as one array
CALIBRATION_BATCH = 16


def _is_torch_module(model: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def _float_batch(x: Any, what: str, rank: int | None) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        else:
            x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{what} must hold floating-point values, got dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if rank is not None and x.ndim == rank - 1:
        x = x[None]  # one sample
    if x.size == 0:
        raise ValueError(f"{what} is empty (shape {list(x.shape)})")
    if not np.isfinite(x).all():
        bad = "NaN" if np.isnan(x).any() else "an infinite value"
        raise ValueError(f"{what} holds {bad}; calibration data must be finite")
    return x


def _batches(calibration: Any, n_inputs: int, rank: int | None) -> Iterator[list[np.ndarray]]:
    """The calibration set as lists of float32 batches (one array per input)."""
    if isinstance(calibration, np.ndarray) or (
        sys.modules.get("torch") is not None
        and isinstance(calibration, sys.modules["torch"].Tensor)
    ):
        arr = _float_batch(calibration, "calibration", None)
        if n_inputs != 1:
            raise TypeError(
                f"the model has {n_inputs} inputs: give calibration as an iterable of tuples"
            )
        if arr.ndim < 1 or arr.shape[0] == 0:
            raise ValueError("calibration is empty")
        for start in range(0, arr.shape[0], CALIBRATION_BATCH):
            yield [arr[start : start + CALIBRATION_BATCH]]
        return
    if isinstance(calibration, (str, bytes)) or not isinstance(calibration, Iterable):
        raise TypeError(
            "calibration must be an array (samples on the first axis) or an iterable of "
            f"arrays, got {type(calibration).__name__}"
        )
    count = 0
    for k, item in enumerate(calibration):
        items = list(item) if isinstance(item, (tuple, list)) else [item]
        if len(items) != n_inputs:
            raise ValueError(
                f"calibration item {k} has {len(items)} arrays, the model takes {n_inputs} inputs"
            )
        yield [_float_batch(x, f"calibration item {k}", rank) for x in items]
        count += 1
    if count == 0:
        raise ValueError("calibration is empty: it gave no batches")


def _to_nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x


def _to_nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x


def _progress(it: Iterable[Any], enabled: bool) -> Iterable[Any]:
    if not enabled or not sys.stderr.isatty():
        return it
    try:
        from tqdm import tqdm
    except ImportError:
        return it
    return tqdm(it, desc="calibrating", unit="batch")


def _front_end(model: Any, first: list[np.ndarray]) -> FGraph:
    if _is_torch_module(model):
        from ._torch import from_torch

        return from_torch(model, first)
    from ._onnx import from_onnx

    return from_onnx(model)


class QuantizedModel:
    """A float model quantized by :func:`quantize_model`, running on lowp's
    integer kernels. ``qm(x)`` takes and returns float arrays in the source
    model's layout (NCHW images); ``qm.run_integer(q)`` takes and returns its
    integers (int8 or uint8, same layout). ``qm.graph`` is the integer graph,
    ``qm.tflite`` the lowp.tflite model it runs (NHWC, as the exported file)."""

    def __init__(
        self,
        prepared: PGraph,
        quant: dict[str, TensorQuant],
        scheme: Scheme,
        method: str,
        observers: dict[str, RangeObserver],
        ranges: dict[str, dict[str, tuple[float, float]]],
    ):
        from lowp.tflite import Model

        self.prepared = prepared
        self.quant = quant
        self.scheme = scheme
        self.method = method
        self.observers = observers
        #: per tensor, the range of each calibration method that was considered
        self.ranges = ranges
        desc = f"lowp {lowp.__version__} {scheme.name} {method}"
        self.tflite_graph, self._index = build(prepared, quant, scheme, desc)
        # TFLite's kernels clamp to 8 bits; b-bit activations also clamp
        # every requantized output to the b-bit range
        narrow = scheme.activation_bits < 8
        self.tflite = Model(
            self.tflite_graph, rewrite=(lambda g: _narrow(g, scheme)) if narrow else None
        )
        self.graph = self.tflite.runtime.graph
        self.input_names = list(prepared.inputs)
        self.output_names = list(prepared.outputs)
        #: the calibration method each tensor's range came from
        self.methods: dict[str, str] = {n: method for n in quant}
        #: per concatenation: "shared" (one scale for inputs and output) or "requantize"
        self.concat_choices: dict[str, str] = {}
        #: per concatenation, the model's output SQNR (dB) with either choice, when tried
        self.concat_sqnr: dict[str, dict[str, float]] = {}
        self._recalibrate: tuple[float, dict[str, np.ndarray] | None] = (99.99, None)
        self._float_engine: Any = None

    def __repr__(self) -> str:
        return (
            f"QuantizedModel({self.scheme.name}, per_channel={self.scheme.per_channel}, "
            f"method={self.method!r}, {len(self.prepared.nodes)} ops, inputs "
            f"{self.input_names}, outputs {self.output_names})"
        )

    # -- quantization of the ends ------------------------------------------------------

    def qparams(self, name: str) -> QParams:
        """The quantization parameters of tensor ``name``: an input's have the
        scheme's activation range, every other tensor's the 8-bit one."""
        if name in self.input_names:
            return input_qparams(self.quant[name], self.scheme)
        return qparams_of(self.quant[name], self.scheme)

    def layer_constants(self, name: str) -> tuple[TensorSpec, TensorSpec]:
        """The quantized weights and int32 bias of the layer writing ``name``."""
        tensors = self.tflite_graph.tensors
        return tensors[self._index[name + "/weights"]], tensors[self._index[name + "/bias"]]

    def trace(self, *xs: Any) -> dict[str, np.ndarray]:
        """Every tensor of the integer graph (the model's integers, NHWC) for
        float inputs ``xs`` (source layout), by the prepared graph's names."""
        qs = [_to_nhwc(q) for q in self.quantize_inputs(*xs)]
        by_index = self.tflite.trace(*qs)
        out = {n: q for n, q in zip(self.input_names, qs)}
        for name, i in self._index.items():
            if i in by_index and name in self.quant:
                out[name] = by_index[i]
        return out

    def _check_inputs(self, xs: Sequence[Any], kind: str) -> list[np.ndarray]:
        if len(xs) != len(self.input_names):
            raise TypeError(f"the model takes {len(self.input_names)} inputs, got {len(xs)}")
        out = []
        for name, x in zip(self.input_names, xs):
            arr = np.asarray(x)
            want = self.prepared.shapes[name]
            src = (want[0], want[3], want[1], want[2]) if len(want) == 4 else want
            if arr.ndim != len(src) or tuple(arr.shape[1:]) != tuple(src[1:]):
                raise ValueError(
                    f"input {name!r}: shape {list(arr.shape)} does not fit the model's "
                    f"[N, {', '.join(map(str, src[1:]))}]"
                )
            if kind == "float" and arr.dtype.kind != "f":
                raise TypeError(f"input {name!r} must be floating point, got {arr.dtype}")
            if kind == "int" and arr.dtype != self.scheme.dtype:
                raise TypeError(f"input {name!r} must be {self.scheme.dtype}, got {arr.dtype}")
            out.append(arr)
        return out

    def quantize_inputs(self, *xs: Any) -> list[np.ndarray]:
        """Float inputs (source layout) as the model's integers, as ``qm(x)``
        quantizes them."""
        arrs = self._check_inputs(xs, "float")
        return [
            lowp.quantize(np.asarray(a, np.float32), self.qparams(n))
            for a, n in zip(arrs, self.input_names)
        ]

    def run_integer(self, *qs: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        """Run the integer graph on quantized inputs (source layout)."""
        arrs = self._check_inputs(qs, "int")
        outs = self.tflite(*[_to_nhwc(a) for a in arrs])
        outs = outs if isinstance(outs, tuple) else (outs,)
        res = tuple(self._source_layout(name, y) for name, y in zip(self.output_names, outs))
        return res if len(res) > 1 else res[0]

    def _source_layout(self, name: str, y: np.ndarray) -> np.ndarray:
        return _to_nchw(y) if name in self.prepared.nchw else y

    def __call__(self, *xs: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        outs = self.run_integer(*self.quantize_inputs(*xs))
        outs = outs if isinstance(outs, tuple) else (outs,)
        res = tuple(lowp.dequantize(y, self.qparams(n)) for y, n in zip(outs, self.output_names))
        return res if len(res) > 1 else res[0]

    def float_outputs(self, *xs: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        """The float model (batch norm folded, NumPy) on ``xs``, source layout."""
        arrs = self._check_inputs(xs, "float")
        if self._float_engine is None:  # built once: it holds a copy of the weights
            self._float_engine = executor(self.prepared)
        vals = self._float_engine.run(
            {n: _to_nhwc(np.asarray(a, np.float32)) for n, a in zip(self.input_names, arrs)},
            keep=False,
        )
        res = tuple(self._source_layout(o, vals[o]) for o in self.output_names)
        return res if len(res) > 1 else res[0]

    def requantized(
        self,
        *,
        weight_bits: int | None = None,
        activation_bits: int | None = None,
        range_scale: float = 1.0,
    ) -> QuantizedModel:
        """The same model and calibration with other bit widths, or with
        every activation range widened by ``range_scale`` (for studying the
        error; the concatenation choices are kept)."""
        wb = self.scheme.weight_bits if weight_bits is None else weight_bits
        ab = self.scheme.activation_bits if activation_bits is None else activation_bits
        scheme = Scheme(
            self.scheme.name,
            self.scheme.per_channel,
            _checks.integer(wb, "weight_bits", 2, 8),
            _checks.integer(ab, "activation_bits", 2, 8),
        )
        scale = float(range_scale)
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"range_scale must be a positive number, got {range_scale}")
        percentile, kept = self._recalibrate
        chooser = _Chooser(self.prepared, self.observers, scheme, percentile, kept)
        chooser.range_scale = scale
        shared = {c for c, v in self.concat_choices.items() if v == "shared"}
        # auto's per-tensor methods are kept (re-running auto would tune to these bits)
        per_tensor = self.methods if self.method == "auto" else None
        base = "minmax" if per_tensor else self.method
        quant, picked = chooser.choose(base, shared, per_tensor)
        qm = QuantizedModel(
            self.prepared, quant, scheme, self.method, self.observers, chooser.ranges
        )
        qm.methods, qm.concat_choices = picked, dict(self.concat_choices)
        qm._recalibrate = self._recalibrate
        return qm

    def sweep(
        self,
        samples: Any,
        *,
        bits: Sequence[int] = tuple(range(2, 9)),
        range_scales: Sequence[float] = (1.0, 1.5, 2.0, 3.0, 4.0),
    ) -> Sweep:
        """The whole model's output SQNR on ``samples`` against weight bits,
        activation bits (each with the other at 8) and both, and against
        activation ranges widened by ``range_scales``."""
        return make_sweep(self, samples, bits, range_scales)

    def report(self, samples: Any, *, batch: int = 16) -> Report:
        """Every layer's real integer output against the float model's
        tensor on ``samples`` (float, source layout): SQNR isolated and
        propagated, error in steps, clamping, accumulator headroom, scale,
        zero point, multiplier and shift. ``str(report)`` is a table;
        ``report.to_json()`` and ``report.plot()`` the rest."""
        b = _checks.integer(batch, "batch", 1, 1 << 20)
        return make_report(self, samples, b)

    # -- export --------------------------------------------------------------------------

    def _tflite_problem(self) -> str | None:
        if self.scheme.name == "uint8" and self.scheme.per_channel:
            return (
                "TFLite's uint8 kernels have no per-channel weights; quantize with "
                "per_channel=False (or scheme='int8') to export"
            )
        if self.scheme.activation_bits != 8:
            return (
                f"activation_bits={self.scheme.activation_bits}: TFLite's kernels clamp "
                "activations to 8 bits, so the file would not compute this model"
            )
        return None

    def onnx_model(self) -> Any:
        """The model as an ONNX QDQ ``ModelProto`` (NCHW, float inputs and
        outputs), for ONNX Runtime."""
        from ._onnx_export import onnx_model

        return onnx_model(self)

    def save_onnx(self, path: Any) -> None:
        """Write the model as ONNX QDQ (see :meth:`onnx_model`) for ONNX
        Runtime, which runs it on its own integer kernels: its float
        requantization can differ from lowp's in the last step. Nothing is
        written unless it all succeeds."""
        from ._onnx_export import save_onnx

        save_onnx(self, path)

    def tflite_bytes(self) -> bytes:
        """The .tflite file of this model, as bytes."""
        problem = self._tflite_problem()
        if problem:
            raise ValueError(f"save_tflite: {problem}")
        from lowp.tflite._write import serialize

        return serialize(self.tflite_graph)

    def save_tflite(self, path: Any) -> None:
        """Write the model as a .tflite file that TensorFlow Lite's reference
        interpreter runs to the same integers as lowp (NHWC inputs and
        outputs, int8 or uint8). Nothing is written unless it all succeeds."""
        problem = self._tflite_problem()
        if problem:
            raise ValueError(f"save_tflite: {problem}")
        from lowp.tflite._write import save

        save(self.tflite_graph, path)


def _narrow(graph: IntGraph, scheme: Scheme) -> IntGraph:
    """``graph`` with every requantized output clamped to the scheme's
    activation range (fewer than 8 activation bits)."""
    qmin, qmax = scheme.act_range
    off = 128 if scheme.name == "int8" else 0
    nodes = []
    for node in graph.nodes:
        attrs = node.attrs
        if "clamp" in attrs and node.op not in ("max_pool2d", "avg_pool2d"):
            lo, hi = attrs["clamp"]
            attrs = {**attrs, "clamp": (max(lo, qmin + off), min(hi, qmax + off))}
        elif node.op == "concat" and node.requant is not None:
            lo, hi = attrs["range"]
            attrs = {**attrs, "range": (max(lo, qmin), min(hi, qmax))}
        nodes.append(replace(node, attrs=attrs))
    return IntGraph(graph.tensors, nodes, list(graph.inputs), list(graph.outputs))


#: ops whose output is requantized from an accumulator (or a rescaled concatenation)
_REQUANTIZING = ("conv2d", "conv_transpose2d", "linear", "add", "concat")
#: samples kept for the ``auto`` choices (and the concatenation choice)
AUTO_SAMPLES = 32


class _Chooser:
    """Picks every activation's range from the calibrated candidates."""

    def __init__(
        self,
        pg: PGraph,
        observers: dict[str, RangeObserver],
        scheme: Scheme,
        percentile: float,
        samples: dict[str, np.ndarray] | None,
        engine: Any = None,
    ):
        self.pg, self.scheme = pg, scheme
        self.observers, self.percentile = observers, percentile
        #: per tensor, the range of each method asked for so far (computed on demand:
        #: the entropy and mse searches are most of a calibration's own time)
        self.ranges: dict[str, dict[str, tuple[float, float]]] = {n: {} for n in observers}
        self.clamps = {n.output: n.clamp for n in pg.nodes}
        self.producer = pg.producer()
        self.samples = samples
        self._engine = engine  # the float executor, when the caller has one built
        self._floats: dict[str, np.ndarray] | None = None

    @property
    def floats(self) -> dict[str, np.ndarray] | None:
        """Every float tensor on the kept samples, computed when first asked for
        (only auto, the concatenation choice and bias correction need them)."""
        if self._floats is None and self.samples is not None:
            engine = self._engine if self._engine is not None else executor(self.pg)
            self._floats = engine.run(self.samples, True)
        return self._floats

    #: every chosen range is multiplied by this (the report's range sweep)
    range_scale = 1.0

    def method_range(self, name: str, method: str) -> tuple[float, float]:
        known = self.ranges[name]
        if method not in known:
            known[method] = self.observers[name].range(
                method, bits=self.scheme.activation_bits, percentile=self.percentile
            )
        lo, hi = known[method]
        lo, hi = lo * self.range_scale, hi * self.range_scale
        c_lo, c_hi = self.clamps.get(name, (None, None))
        if c_lo is not None:
            lo = max(lo, c_lo)
        if c_hi is not None:
            hi = min(hi, c_hi)
        return min(lo, 0.0), max(hi, 0.0)

    def group_quant(self, group: list[str], method: str) -> TensorQuant:
        lo = min(self.method_range(n, method)[0] for n in group)
        hi = max(self.method_range(n, method)[1] for n in group)
        if hi - lo <= 0:
            hi = lo + 1e-6
        qp = self.scheme.activation(lo, hi)
        return TensorQuant(float(qp.scale), int(qp.zero_point), lo, hi)

    def choose(
        self, method: str, shared: set[str], per_tensor: dict[str, str] | None = None
    ) -> tuple[dict[str, TensorQuant], dict[str, str]]:
        """Every tensor's quantization with ``method``'s ranges (or, given
        ``per_tensor``, each tensor's own method, as ``auto`` picked them)."""
        quant: dict[str, TensorQuant] = {}
        picked: dict[str, str] = {}
        for group in share_groups(self.pg, shared):
            m = per_tensor.get(group[0], method) if per_tensor else method
            q = self.group_quant(group, m)
            for n in group:
                quant[n] = q
                picked[n] = m
        self.check_clamps(quant)
        return quant, picked

    def check_clamps(self, quant: dict[str, TensorQuant]) -> None:
        for node in self.pg.nodes:
            problem = clamp_problem(node, quant[node.output])
            if problem:
                raise node.unsupported(problem)

    def refine(
        self, quant: dict[str, TensorQuant], picked: dict[str, str], shared: set[str]
    ) -> tuple[dict[str, TensorQuant], dict[str, str], float]:
        """The ``auto`` method: one pass over the tensors (groups sharing a
        scale together) in graph order, each given the calibration method
        whose range makes the real integer model's output closest to the
        float one on the kept samples, the others as chosen so far."""
        best = self.output_sqnr(quant)
        quant, picked = dict(quant), dict(picked)
        for group in share_groups(self.pg, shared):
            current = picked[group[0]]
            for m in METHODS:
                if m == current:
                    continue
                cand = self.group_quant(group, m)
                if cand == quant[group[0]]:
                    continue
                trial = {**quant, **{n: cand for n in group}}
                if any(clamp_problem(n, trial[n.output]) for n in self.pg.nodes):
                    continue
                score = self.output_sqnr(trial)
                if score > best:
                    best, quant, current = score, trial, m
                    for n in group:
                        picked[n] = m
        return quant, picked, best

    def output_sqnr(self, quant: dict[str, TensorQuant]) -> float:
        """The whole integer model's output SQNR (dB) on the kept samples
        (several outputs: their mean relative noise)."""
        from lowp.tflite import Model

        assert self.samples is not None and self.floats is not None
        graph, _ = build(self.pg, quant, self.scheme, "trial")
        model = Model(graph)
        qs = [
            lowp.quantize(self.samples[i], input_qparams(quant[i], self.scheme))
            for i in self.pg.inputs
        ]
        outs = model(*qs)
        outs = outs if isinstance(outs, tuple) else (outs,)
        return outputs_sqnr(
            [self.floats[o] for o in self.pg.outputs],
            [
                lowp.dequantize(y, qparams_of(quant[o], self.scheme))
                for o, y in zip(self.pg.outputs, outs)
            ],
        )


def _correct_biases(chooser: _Chooser, quant: dict[str, TensorQuant]) -> None:
    """Shift each layer's bias by the mean error, per output channel, of its
    real integer output (isolated: fed its quantized float input) on the
    kept calibration samples; the float model keeps its own bias."""
    assert chooser.floats is not None
    for node in chooser.pg.nodes:
        if node.op not in ("conv2d", "conv_transpose2d", "linear"):
            continue
        got = OneOp(chooser.pg, node, quant, chooser.scheme)(chooser.floats)
        err = (got.astype(np.float64) - chooser.floats[node.output]).reshape(-1, got.shape[-1])
        node.attrs["bias_shift"] = err.mean(axis=0).astype(np.float32)


def quantize_model(
    model: Any,
    calibration: Any,
    *,
    scheme: str = "int8",
    per_channel: bool | None = None,
    method: str = "minmax",
    percentile: float = 99.99,
    weight_bits: int = 8,
    activation_bits: int = 8,
    bias_correction: bool = False,
    progress: bool = True,
    concat: str = "auto",
) -> QuantizedModel:
    """Quantize a float model (a ``torch.nn.Module``, an ``onnx.ModelProto``
    or the path of a .onnx file) with the activation ranges of a
    calibration set: DESIGN.md section 8."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    if per_channel is not None and not isinstance(per_channel, bool):
        raise TypeError(f"per_channel must be None, True or False, got {per_channel!r}")
    allowed = (*METHODS, "auto")
    if method not in allowed:
        raise ValueError(f"method must be one of {', '.join(allowed)}, got {method!r}")
    wb = _checks.integer(weight_bits, "weight_bits", 2, 8)
    ab = _checks.integer(activation_bits, "activation_bits", 2, 8)
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)):
        raise TypeError(f"percentile must be a number, got {type(percentile).__name__}")
    if not (50.0 < float(percentile) <= 100.0) or math.isnan(percentile):
        raise ValueError(f"percentile must be in (50, 100], got {percentile}")
    if concat not in CONCAT_MODES:
        raise ValueError(f"concat must be one of {', '.join(CONCAT_MODES)}, got {concat!r}")
    if not isinstance(bias_correction, bool):
        raise TypeError(f"bias_correction must be True or False, got {bias_correction!r}")
    chosen_scheme = Scheme(scheme, scheme == "int8" if per_channel is None else per_channel, wb, ab)

    fg: FGraph | None = None
    if not _is_torch_module(model):
        from ._onnx import from_onnx

        fg = from_onnx(model)
    n_inputs = len(fg.inputs) if fg is not None else 1
    rank = None
    if fg is not None and n_inputs:
        rank = len(next(iter(fg.input_shapes.values())))
    batches = _batches(calibration, n_inputs, rank)
    first = next(batches)
    if fg is None:
        fg = _front_end(model, first)
    if len(first) != len(fg.inputs):
        raise ValueError(f"the model takes {len(fg.inputs)} inputs, calibration gives {len(first)}")
    shapes: dict[str, tuple[int, ...]] = {}
    for name, x in zip(fg.inputs, first):
        want = fg.input_shapes.get(name)
        if want is not None and (
            len(want) != x.ndim
            or any(w is not None and w != d for w, d in zip(want[1:], x.shape[1:]))
        ):
            raise ValueError(
                f"calibration: input {name!r} has shape {list(x.shape)}, the model takes "
                f"{['N' if d is None else d for d in want]}"
            )
        shapes[name] = tuple(x.shape)
    pg = prepare(fg, shapes)  # unsupported ops fail here, before calibration

    tensors = [*pg.inputs, *(n.output for n in pg.nodes)]
    observers = {t: RangeObserver() for t in tensors}

    def all_batches() -> Iterator[list[np.ndarray]]:
        yield first
        yield from batches

    has_concat = any(n.op == "concat" for n in pg.nodes)
    need_samples = method == "auto" or (concat == "auto" and has_concat) or bias_correction
    keep: dict[str, list[np.ndarray]] = {n: [] for n in pg.inputs} if need_samples else {}
    kept_count = 0
    engine = executor(pg)
    for batch in _progress(all_batches(), progress):
        for name, x in zip(fg.inputs, batch):
            if tuple(x.shape[1:]) != tuple(shapes[name][1:]):
                raise ValueError(
                    f"calibration: input {name!r} has shape {list(x.shape)} in one batch and "
                    f"{list(shapes[name])} in the first"
                )
        feed = {n: _to_nhwc(x) for n, x in zip(fg.inputs, batch) if n in pg.inputs}
        if need_samples and kept_count < AUTO_SAMPLES:
            for n in pg.inputs:
                keep[n].append(feed[n])
            kept_count += next(iter(feed.values())).shape[0]
        values = engine.values(feed)
        for t in tensors:
            observers[t].update(values[t])
    kept = {n: np.concatenate(v)[:AUTO_SAMPLES] for n, v in keep.items()} if keep else None
    chooser = _Chooser(pg, observers, chosen_scheme, float(percentile), kept, engine)
    concats = [n.output for n in pg.nodes if n.op == "concat"]
    shared = set(concats) if concat in ("shared", "auto") else set()
    # auto starts from minmax and refines tensor by tensor, after the concatenations
    base = "minmax" if method == "auto" else method
    quant, picked = chooser.choose(base, shared)
    choices: dict[str, dict[str, float]] = {}
    if concat == "auto" and concats:
        # per concatenation, the whole model's output SQNR either way; the better kept
        best = chooser.output_sqnr(quant)
        for c in concats:
            trial_shared = shared - {c}
            trial_quant, trial_picked = chooser.choose(base, trial_shared)
            score = chooser.output_sqnr(trial_quant)
            choices[c] = {"shared": best, "requantize": score}
            if score > best:
                shared, quant, picked, best = trial_shared, trial_quant, trial_picked, score
    if method == "auto":
        quant, picked, _ = chooser.refine(quant, picked, shared)
    if bias_correction:
        _correct_biases(chooser, quant)
    qm = QuantizedModel(pg, quant, chosen_scheme, method, observers, chooser.ranges)
    qm.methods = picked
    qm.concat_choices = {c: ("shared" if c in shared else "requantize") for c in concats}
    qm.concat_sqnr = choices
    qm._recalibrate = (float(percentile), kept)
    return qm
