"""Activation calibration: lowp's RangeObserver against ONNX Runtime's HistogramCollector.

    python bench/calib_speed.py [--batches 64] [--shape 8,16,64,64] [--rounds 5]

Both calibrate one activation from the same float32 batches (a ReLU's output
and a Gaussian), with 2048 histogram bins: lowp's ``RangeObserver.update``
over every batch then ``range``, against ONNX Runtime's
``HistogramCollector.collect`` over every batch then
``compute_collection_result`` (what its HistogramCalibrater runs per tensor
once the model has produced the activations). The rounds are interleaved in
one process, each engine from a fresh state; the table gives the medians
(the accumulation and the range computation apart, then the total), the
ratio ONNX Runtime / lowp, and the range each one found.

The settings are chosen to ask both for the same thing:

- ``percentile``: ONNX Runtime with ``symmetric=False`` cuts each tail by
  half of ``100 - percentile``, as lowp's asymmetric percentile; with
  ``symmetric=True`` both take the percentile of ``|x|``.
- ``entropy``: ONNX Runtime's windows are ``[-T, T]`` on a signed histogram
  with ``num_quantized_bins`` spread over the whole window, so 256 of them
  match TensorRT's 128 over ``[0, T]``, which is lowp's
  ``range("entropy", bits=8, symmetric=True)`` (ONNX Runtime's default of 128
  would be 7 bits).

Why the ranges differ:

- ``percentile``: by less than a bin. ONNX Runtime returns the lower edge of
  the bin the percentile falls in (its bins are ``2 * max|x| / 2048`` wide);
  lowp interpolates inside its bin (a power of two wide, 1024 to 2048 of them
  over ``[min(0, min), max(0, max)]``).
- ``percentile |x|`` on the ReLU: ONNX Runtime clamps a symmetric threshold
  to the observed min, so its range is ``(0, T)``; lowp's ``symmetric=True``
  stays ``(-T, T)``, with the same ``T``.
- ``entropy`` on the ReLU: ONNX Runtime counts the ReLU's zeros (half the
  values) in its zero bin, and its Q spreads them over the whole first
  quantized bin, which pulls the window in; lowp leaves exactly-zero values
  out (every range represents them exactly; TensorRT's calibrator overwrites
  its first bin with the second for the same reason) and clips far less.
- ``entropy`` on the Gaussian: the KL curve is flat near its minimum (within
  about 20% from 4.5 to 5.2 sigma), and the two objectives differ in detail:
  ONNX Runtime folds each tail into its own end of a signed window, merges
  ``n // 256`` bins per quantized bin with the rest into the last one and
  smooths P as well as Q; lowp folds ``|x|``, spreads the window evenly over
  the quantized bins and smooths Q only. On this Gaussian the two land about
  10% apart, where lowp's KL differs by less than 20%.

The last lines give the exact percentiles (``np.percentile`` over all the
values) that both percentile rows approximate.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time

import numpy as np

import lowp
from lowp.quantizer._calib import RangeObserver

BINS = 2048
PERCENTILE = 99.99

# (row name, ONNX Runtime collector settings, lowp range() arguments)
CASES = [
    ("percentile", {"method": "percentile", "symmetric": False}, {"method": "percentile"}),
    (
        "percentile |x|",
        {"method": "percentile", "symmetric": True},
        {"method": "percentile", "symmetric": True},
    ),
    (
        "entropy",
        {"method": "entropy", "symmetric": True, "num_quantized_bins": 256},
        {"method": "entropy", "bits": 8, "symmetric": True},
    ),
]


def make_data(batches: int, shape: tuple[int, ...]) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    gauss = [rng.standard_normal(shape, dtype=np.float32) for _ in range(batches)]
    # a ReLU after a conv: per-channel scales and shifts, then max(., 0)
    channels = shape[1] if len(shape) > 1 else 1
    view = (1, channels) + (1,) * (len(shape) - 2)
    scale = rng.uniform(0.5, 2.0, channels).astype(np.float32).reshape(view)
    shift = rng.uniform(-0.5, 0.5, channels).astype(np.float32).reshape(view)
    relu = [np.maximum(g * scale + shift, np.float32(0.0)) for g in gauss]
    return {"relu": relu, "gaussian": gauss}


def run_lowp(batches, args) -> tuple[float, float, tuple[float, float]]:
    t0 = time.perf_counter()
    obs = RangeObserver(bins=BINS)
    for b in batches:
        obs.update(b)
    t1 = time.perf_counter()
    method = args["method"]
    kwargs = {k: v for k, v in args.items() if k != "method"}
    lo, hi = obs.range(method, percentile=PERCENTILE, **kwargs)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, (lo, hi)


def run_ort(batches, settings) -> tuple[float, float, tuple[float, float]]:
    from onnxruntime.quantization.calibrate import HistogramCollector

    options = {
        "method": settings["method"],
        "symmetric": settings["symmetric"],
        "num_bins": BINS,
        "num_quantized_bins": settings.get("num_quantized_bins", 128),
        "percentile": PERCENTILE,
        "scenario": "same",
    }
    quiet = io.StringIO()  # it prints a line per call
    with contextlib.redirect_stdout(quiet):
        t0 = time.perf_counter()
        collector = HistogramCollector(**options)
        for b in batches:
            collector.collect({"t": b})
        t1 = time.perf_counter()
        result = collector.compute_collection_result()["t"]
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1, (float(result[0]), float(result[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=64)
    parser.add_argument("--shape", default="8,16,64,64")
    parser.add_argument("--rounds", type=int, default=5)
    opts = parser.parse_args()
    shape = tuple(int(s) for s in opts.shape.split(","))

    import onnxruntime

    info = lowp.cpu_info()
    print(
        f"CPU: {info.get('model', '?')} ({info['arch']}, lowp path {info['path']}); "
        f"lowp {lowp.__version__}, ONNX Runtime {onnxruntime.__version__}, NumPy {np.__version__}"
    )
    print(
        f"{opts.batches} batches of {'x'.join(map(str, shape))} float32, {BINS} bins, "
        f"percentile {PERCENTILE}; medians of {opts.rounds} interleaved rounds, one thread"
    )
    data = make_data(opts.batches, shape)

    times: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    ranges: dict[tuple[str, str, str], tuple[float, float]] = {}
    for _ in range(opts.rounds):
        for dist, batches in data.items():
            for name, ort_settings, lowp_args in CASES:
                for engine in ("lowp", "ort"):
                    if engine == "lowp":
                        acc, fin, rng = run_lowp(batches, lowp_args)
                    else:
                        acc, fin, rng = run_ort(batches, ort_settings)
                    times.setdefault((dist, name, engine), []).append((acc, fin))
                    ranges[(dist, name, engine)] = rng

    def med(key, part):
        vals = [t[0] + t[1] if part == 2 else t[part] for t in times[key]]
        return statistics.median(vals) * 1e3

    header = (
        f"{'data':9} {'method':15} {'lowp ms (acc+range=total)':>27} "
        f"{'ORT ms (acc+range=total)':>28} {'ORT/lowp':>8}  ranges lowp | ORT"
    )
    print(header)
    print("-" * len(header))
    for dist in data:
        for name, _, _ in CASES:
            lo_key, ort_key = (dist, name, "lowp"), (dist, name, "ort")
            ratio = med(ort_key, 2) / med(lo_key, 2)
            rl, ro = ranges[lo_key], ranges[ort_key]
            print(
                f"{dist:9} {name:15} "
                f"{med(lo_key, 0):8.1f} +{med(lo_key, 1):7.1f} ={med(lo_key, 2):8.1f} "
                f"{med(ort_key, 0):9.1f} +{med(ort_key, 1):7.1f} ={med(ort_key, 2):8.1f} "
                f"{ratio:7.1f}x  ({rl[0]:+.4f}, {rl[1]:.4f}) | ({ro[0]:+.4f}, {ro[1]:.4f})"
            )
    print("(why the ranges differ: see this script's docstring)")
    tail = (100.0 - PERCENTILE) / 2
    for dist, batches in data.items():
        values = np.concatenate([b.reshape(-1) for b in batches])
        lo, hi = np.percentile(values, [tail, 100.0 - tail])
        amax = np.percentile(np.abs(values), PERCENTILE)
        print(f"exact {dist:9} percentile ({lo:+.4f}, {hi:.4f})  percentile |x| {amax:.4f}")


if __name__ == "__main__":
    main()
