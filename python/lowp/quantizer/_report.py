"""``qm.report(samples)``: every layer's real integer output against the
float model's same tensor, isolated (the layer fed its quantized float
input) and propagated (the whole integer chain), with the quantities that
explain an error: clamped outputs, inputs outside the calibrated range,
accumulator headroom, scale, zero point, multiplier and shift."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

import lowp

from ._eval import OneOp, outputs_sqnr, qparams_of
from ._prepare import conv2d_float, executor

if TYPE_CHECKING:
    from ._model import QuantizedModel

__all__ = ["LayerReport", "Report", "Sweep", "make_report", "make_sweep", "plot_summary"]


@dataclass
class LayerReport:
    name: str  # the layer (the module path, or the source node's name)
    tensor: str  # the tensor it writes
    op: str
    source: str  # where in the source model (the last source node fused into it)
    method: str
    scale: float
    zero_point: int
    range: tuple[float, float]
    sqnr_isolated: float
    sqnr_propagated: float
    max_error_steps: float  # propagated, in output quantization steps
    clamped: float  # share of outputs the range clips (float beyond it)
    inputs_outside: float  # share of the float inputs outside their calibrated range
    headroom_bits: float | None  # int32 accumulator: 31 - log2(max |acc|)
    multiplier: tuple[float, float] | None  # the real output multiplier (min, max)
    shift: tuple[int, int] | None  # the fixed-point shift (min, max)


@dataclass
class Report:
    layers: list[LayerReport]
    outputs: dict[str, float]  # model output -> SQNR (dB)
    samples: int
    scheme: str
    per_channel: bool
    concat: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            return v

        return clean(asdict(self))

    def to_json(self, path: Any = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            from pathlib import Path

            Path(path).write_text(text + "\n")
        return text

    def table(self) -> str:
        head = (
            f"{'layer':<28} {'op':<17} {'method':<15} {'SQNR iso':>8} {'SQNR prop':>9} "
            f"{'max err':>7} {'clamped':>7} {'in out':>7} {'headroom':>8} "
            f"{'scale':>10} {'zp':>4} {'multiplier':>19} {'shift':>7}"
        )
        lines = [head, "-" * len(head)]
        for r in self.layers:
            mult = "" if r.multiplier is None else f"{r.multiplier[0]:.3g}..{r.multiplier[1]:.3g}"
            shift = "" if r.shift is None else f"{r.shift[0]}..{r.shift[1]}"
            head_room = "" if r.headroom_bits is None else f"{r.headroom_bits:.1f} b"
            lines.append(
                f"{r.name[:28]:<28} {r.op:<17} {r.method:<15} {r.sqnr_isolated:8.2f} "
                f"{r.sqnr_propagated:9.2f} {r.max_error_steps:7.1f} {r.clamped:7.2%} "
                f"{r.inputs_outside:7.2%} {head_room:>8} {r.scale:10.3g} {r.zero_point:4d} "
                f"{mult:>19} {shift:>7}"
            )
        lines.append("")
        for name, v in self.outputs.items():
            lines.append(f"output {name}: SQNR {v:.2f} dB over {self.samples} samples")
        for name, c in self.concat.items():
            tried = ", ".join(f"{k} {v:.2f} dB" for k, v in c.get("sqnr", {}).items())
            lines.append(f"concatenation {name}: {c['choice']}" + (f" ({tried})" if tried else ""))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def plot(self, path: Any = None, ax: Any = None) -> Any:
        """Per-layer SQNR (isolated and propagated) as a bar chart; needs
        matplotlib (``pip install "lowp[plot]"``). Returns the figure."""
        plt = _pyplot()
        fig = None
        if ax is None:
            fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(self.layers) + 2), 4.0))
        x = np.arange(len(self.layers))
        iso = [_finite(r.sqnr_isolated) for r in self.layers]
        prop = [_finite(r.sqnr_propagated) for r in self.layers]
        ax.bar(x - 0.2, iso, 0.4, label="isolated")
        ax.bar(x + 0.2, prop, 0.4, label="propagated")
        ax.set_xticks(x, [r.name for r in self.layers], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("SQNR (dB)")
        ax.set_title(f"per-layer SQNR, {self.scheme} ({self.samples} samples)")
        ax.legend()
        if fig is not None:
            fig.tight_layout()
            if path is not None:
                fig.savefig(path, dpi=120)
        return fig if fig is not None else ax.figure


def _finite(v: float) -> float:
    return 99.0 if v == float("inf") else (-99.0 if v == float("-inf") else v)


def _pyplot() -> Any:
    try:
        import matplotlib

        if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg") and not _interactive():
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            'plots need matplotlib: pip install "lowp[plot]" (or matplotlib)'
        ) from None
    return plt


def _interactive() -> bool:
    import sys

    return hasattr(sys, "ps1")


def _centered_weights(qm: QuantizedModel, node: Any) -> np.ndarray:
    """The layer's integer weights less their zero points (float64, exact)."""
    w_spec, _ = qm.layer_constants(node.output)
    assert w_spec.data is not None and w_spec.zero_point is not None
    w = w_spec.data.astype(np.float64)
    zw = w_spec.zero_point.astype(np.float64)
    return w - (zw.reshape(-1, *([1] * (w.ndim - 1))) if zw.size > 1 else zw[0])


def _headroom(qm: QuantizedModel, node: Any, ints: dict[str, np.ndarray], w: np.ndarray) -> float:
    """Bits of int32 headroom of the layer's accumulators on these inputs
    (``w``: its centered weights)."""
    x = ints[node.inputs[0]].astype(np.float64) - qm.quant[node.inputs[0]].zero_point
    if node.op == "conv2d":
        acc = conv2d_float(
            x,
            w,
            np.zeros(w.shape[0]),
            node.attrs["stride"],
            node.attrs["padding"],
            dtype=np.float64,
        )
    else:
        acc = x @ w.T
    peak = float(np.max(np.abs(acc))) if acc.size else 0.0
    return 31.0 if peak < 1 else 31.0 - math.log2(peak)


def _requant(
    qm: QuantizedModel, node: Any
) -> tuple[tuple[float, float] | None, tuple[int, int] | None]:
    if node.op not in ("conv2d", "conv_transpose2d", "linear"):
        return None, None
    spec, _ = qm.layer_constants(node.output)
    assert spec.scale is not None
    real = (
        float(qm.quant[node.inputs[0]].scale)
        * spec.scale.astype(np.float64)
        / float(qm.quant[node.output].scale)
    )
    _, shifts = lowp.quantize_multiplier(real)
    shifts = np.atleast_1d(shifts)
    return (float(real.min()), float(real.max())), (int(shifts.min()), int(shifts.max()))


def make_report(qm: QuantizedModel, samples: Any, batch: int = 16) -> Report:
    """The report of ``qm`` on ``samples`` (float, source layout; an array
    with samples on the first axis, or a tuple of them for several inputs)."""
    xs = list(samples) if isinstance(samples, (tuple, list)) else [samples]
    arrs = qm._check_inputs(xs, "float")
    n = arrs[0].shape[0]
    if n == 0:
        raise ValueError("samples is empty")
    pg, scheme = qm.prepared, qm.scheme
    acc: dict[str, dict[str, float]] = {}

    def add(name: str, key: str, value: float) -> None:
        acc.setdefault(name, {}).setdefault(key, 0.0)
        acc[name][key] += value

    ones = {node.output: OneOp(pg, node, qm.quant, scheme) for node in pg.nodes}
    # the accumulators of the layers whose headroom is reported (conv and linear)
    centered = {
        node.output: _centered_weights(qm, node)
        for node in pg.nodes
        if node.op in ("conv2d", "linear")
    }
    engine = executor(pg)
    for start in range(0, n, batch):
        part = [np.asarray(a[start : start + batch], np.float32) for a in arrs]
        feed = {
            name: (p.transpose(0, 2, 3, 1) if p.ndim == 4 else p)
            for name, p in zip(qm.input_names, part)
        }
        floats = engine.run(feed)
        ints = qm.trace(*part)
        for node in pg.nodes:
            ref = floats[node.output].astype(np.float64)
            qp = qparams_of(qm.quant[node.output], scheme)
            prop = lowp.dequantize(ints[node.output], qp).astype(np.float64)
            iso = ones[node.output](floats).astype(np.float64)
            add(node.output, "signal", float(np.sum(ref**2)))
            add(node.output, "noise_prop", float(np.sum((ref - prop) ** 2)))
            add(node.output, "noise_iso", float(np.sum((ref - iso) ** 2)))
            steps = float(np.max(np.abs(ref - prop))) / float(qm.quant[node.output].scale)
            acc.setdefault(node.output, {})["max_steps"] = max(
                acc[node.output].get("max_steps", 0.0), steps
            )
            q = qm.quant[node.output]
            add(node.output, "clamped", float(np.count_nonzero((ref < q.lo) | (ref > q.hi))))
            add(node.output, "count", float(ref.size))
            outside = sum(
                np.count_nonzero((floats[i] < qm.quant[i].lo) | (floats[i] > qm.quant[i].hi))
                for i in node.inputs
            )
            add(node.output, "outside", float(outside))
            add(node.output, "in_count", float(sum(floats[i].size for i in node.inputs)))
            if node.output in centered:
                h = _headroom(qm, node, ints, centered[node.output])
                acc[node.output]["headroom"] = min(acc[node.output].get("headroom", 31.0), h)
        for o in qm.output_names:
            ref = floats[o].astype(np.float64)
            got = lowp.dequantize(ints[o], qparams_of(qm.quant[o], scheme)).astype(np.float64)
            add("__out__" + o, "signal", float(np.sum(ref**2)))
            add("__out__" + o, "noise", float(np.sum((ref - got) ** 2)))

    def db(signal: float, noise: float) -> float:
        if noise == 0:
            return float("inf")
        return float("-inf") if signal == 0 else 10 * math.log10(signal / noise)

    layers = []
    for node in pg.nodes:
        a = acc[node.output]
        q = qm.quant[node.output]
        mult, shift = _requant(qm, node)
        layers.append(
            LayerReport(
                node.label or node.output,
                node.output,
                node.op,
                node.sources[-1] if node.sources else node.where,
                qm.methods.get(node.output, qm.method),
                q.scale,
                q.zero_point,
                (q.lo, q.hi),
                db(a["signal"], a["noise_iso"]),
                db(a["signal"], a["noise_prop"]),
                a["max_steps"],
                a["clamped"] / a["count"],
                a["outside"] / max(a["in_count"], 1.0),
                a.get("headroom"),
                mult,
                shift,
            )
        )
    outputs = {
        o: db(acc["__out__" + o]["signal"], acc["__out__" + o]["noise"]) for o in qm.output_names
    }
    concat = {
        c: {"choice": choice, "sqnr": qm.concat_sqnr.get(c, {})}
        for c, choice in qm.concat_choices.items()
    }
    return Report(layers, outputs, n, scheme.name, scheme.per_channel, concat)


@dataclass
class Sweep:
    """Output SQNR (dB) of one model at other bit widths and ranges."""

    weight_bits: dict[int, float]  # activations at 8 bits
    activation_bits: dict[int, float]  # weights at 8 bits
    both_bits: dict[int, float]
    range_scale: dict[float, float]
    scheme: str
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return {
            k: ({str(a): b for a, b in v.items()} if isinstance(v, dict) else v)
            for k, v in asdict(self).items()
        }

    def plot(self, path: Any = None, axes: Any = None) -> Any:
        """Two panels: SQNR against bits, and against the range's widening.
        Returns the figure."""
        plt = _pyplot()
        fig = None
        if axes is None:
            fig, axes = plt.subplots(1, 2, figsize=(10.0, 4.0))
        left, right = axes
        for label, series in (
            ("weights", self.weight_bits),
            ("activations", self.activation_bits),
            ("both", self.both_bits),
        ):
            xs = sorted(series)
            left.plot(xs, [_finite(series[b]) for b in xs], marker="o", label=label)
        left.set_xlabel("bits (the others at 8)")
        left.set_ylabel("output SQNR (dB)")
        left.set_title("fewer bits, more error")
        left.legend()
        left.grid(alpha=0.3)
        scales = sorted(self.range_scale)
        right.plot(scales, [_finite(self.range_scale[f]) for f in scales], marker="o", color="C3")
        right.set_xlabel("every activation range x factor (8 bits)")
        right.set_ylabel("output SQNR (dB)")
        right.set_title("a wider range, more error")
        right.grid(alpha=0.3)
        if fig is not None:
            fig.suptitle(f"{self.scheme}, {self.samples} samples")
            fig.tight_layout()
            if path is not None:
                fig.savefig(path, dpi=120)
        return fig if fig is not None else left.figure


def plot_summary(report: Report, sweep: Sweep, path: Any = None) -> Any:
    """One figure: per-layer SQNR above, output SQNR against bits and range below."""
    plt = _pyplot()
    fig = plt.figure(figsize=(max(10.0, 0.45 * len(report.layers) + 2), 8.0))
    grid = fig.add_gridspec(2, 2)
    report.plot(ax=fig.add_subplot(grid[0, :]))
    sweep.plot(axes=(fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])))
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def _output_sqnr(qm: QuantizedModel, arrs: list[np.ndarray], floats: list[np.ndarray]) -> float:
    outs = qm(*arrs)
    return outputs_sqnr(floats, outs if isinstance(outs, tuple) else (outs,))


def make_sweep(qm: QuantizedModel, samples: Any, bits: Any, range_scales: Any) -> Sweep:
    xs = list(samples) if isinstance(samples, (tuple, list)) else [samples]
    arrs = [np.asarray(a, np.float32) for a in qm._check_inputs(xs, "float")]
    out = qm.float_outputs(*arrs)
    floats = list(out) if isinstance(out, tuple) else [out]
    bit_list = [int(b) for b in bits]
    w = {
        b: _output_sqnr(qm.requantized(weight_bits=b, activation_bits=8), arrs, floats)
        for b in bit_list
    }
    a = {
        b: _output_sqnr(qm.requantized(weight_bits=8, activation_bits=b), arrs, floats)
        for b in bit_list
    }
    both = {
        b: _output_sqnr(qm.requantized(weight_bits=b, activation_bits=b), arrs, floats)
        for b in bit_list
    }
    r = {
        float(f): _output_sqnr(
            qm.requantized(weight_bits=8, activation_bits=8, range_scale=f), arrs, floats
        )
        for f in range_scales
    }
    return Sweep(w, a, both, r, qm.scheme.name, int(arrs[0].shape[0]))
