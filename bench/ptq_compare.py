"""lowp.quantize_model against ONNX Runtime's quantize_static on the example
networks: the same float ONNX model, the same calibration and evaluation
samples, in one run.

For each network and scheme it prints the output SQNR against the float
model (dB, over the evaluation samples) of

- lowp with each calibration method (minmax, moving_average, percentile,
  mse, entropy) and ``auto``, run on lowp's integer kernels, and
- ONNX Runtime's static quantization (QDQ, per channel for int8; MinMax,
  Entropy and Percentile at their defaults), run by ONNX Runtime,

and the calibration time of lowp's ``entropy`` and ``percentile`` against
ONNX Runtime's same methods (medians of interleaved rounds; ONNX Runtime's
time includes its float runs of the model, lowp's its own).

    python bench/ptq_compare.py [--calibration 256] [--samples 64] [--repeats 3] [--threads 1]

Needs torch, onnx, onnxruntime and scikit-image (the example data).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import lowp
from lowp import examples
from lowp.quantizer._calib import METHODS
from lowp.quantizer._eval import sqnr


def _ort():
    import onnxruntime as ort
    from onnxruntime import quantization as q

    return ort, q


def _session(path: Path):
    ort, _ = _ort()
    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    s = _session(path)
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i : i + 16]})[0] for i in range(0, len(x), 16)])


#: threads of every engine (--threads)
THREADS = 1


@contextlib.contextmanager
def _ort_threads(threads: int):
    """quantize_static makes its calibration sessions with default options
    (every core): give them ``threads`` intra-op threads, as lowp has."""
    ort, _ = _ort()
    original = ort.SessionOptions

    class Options(original):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.intra_op_num_threads = threads
            self.inter_op_num_threads = 1

    ort.SessionOptions = Options
    try:
        yield
    finally:
        ort.SessionOptions = original


def ort_quantize(model: Path, cal: np.ndarray, scheme: str, method: str, out: Path) -> float:
    """quantize_static into ``out``; returns the seconds it took."""
    _, q = _ort()
    name = _session(model).get_inputs()[0].name

    class Reader(q.CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{name: cal[i : i + 16]} for i in range(0, len(cal), 16)])

        def get_next(self):
            return next(self.batches, None)

    kind = q.QuantType.QInt8 if scheme == "int8" else q.QuantType.QUInt8
    start = time.perf_counter()
    with warnings.catch_warnings(), _ort_threads(THREADS):
        warnings.simplefilter("ignore")
        q.quantize_static(
            str(model),
            str(out),
            Reader(),
            quant_format=q.QuantFormat.QDQ,
            per_channel=scheme == "int8",
            activation_type=kind,
            weight_type=kind,
            calibrate_method=getattr(q.CalibrationMethod, method),
        )
    return time.perf_counter() - start


def lowp_quantize(model: Path, cal: np.ndarray, scheme: str, method: str):
    start = time.perf_counter()
    qm = lowp.quantize_model(model, cal, scheme=scheme, method=method, progress=False)
    return qm, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calibration", type=int, default=256, help="calibration samples")
    p.add_argument("--samples", type=int, default=64, help="evaluation samples")
    p.add_argument("--repeats", type=int, default=3, help="rounds of the timing")
    p.add_argument("--models", nargs="*", default=list(examples.NAMES))
    p.add_argument("--threads", type=int, default=1, help="threads of lowp and ONNX Runtime")
    args = p.parse_args(argv)
    global THREADS
    THREADS = args.threads
    lowp.set_num_threads(args.threads)
    info = lowp.cpu_info()
    print(
        f"CPU: {info['model']}, lowp path {info['path']}; {args.threads} thread(s) for lowp "
        f"(its kernels and its float pass on PyTorch) and for ONNX Runtime's sessions"
    )
    print(f"calibration {args.calibration} samples, evaluation {args.samples} samples\n")
    tmp = Path(tempfile.mkdtemp(prefix="ptq"))
    for name in args.models:
        model = examples.onnx_path(name)
        cal = examples.dataset(name, "calibration", args.calibration)[0]
        test = examples.dataset(name, "test", args.samples)[0]
        ref = _run(model, test)
        for scheme in ("int8", "uint8"):
            print(f"{name} {scheme}: output SQNR (dB) against float")
            scores: dict[str, float] = {}
            for method in (*METHODS, "auto"):
                qm, took = lowp_quantize(model, cal, scheme, method)
                scores[f"lowp {method}"] = sqnr(ref, qm(test))
                print(f"  lowp {method:<15} {scores[f'lowp {method}']:7.2f}   ({took:.2f} s)")
            for method in ("MinMax", "Entropy", "Percentile"):
                out = tmp / f"{name}_{scheme}_{method}.onnx"
                took = ort_quantize(model, cal, scheme, method, out)
                scores[f"ORT {method}"] = sqnr(ref, _run(out, test))
                print(f"  ORT  {method:<15} {scores[f'ORT {method}']:7.2f}   ({took:.2f} s)")
            best_lowp = max(
                v for k, v in scores.items() if k.startswith("lowp") and "auto" not in k
            )
            best_ort = max(v for k, v in scores.items() if k.startswith("ORT"))
            print(
                f"  best lowp {best_lowp:.2f} vs best ORT {best_ort:.2f} "
                f"({best_lowp - best_ort:+.2f} dB); auto {scores['lowp auto'] - best_lowp:+.2f} "
                "dB from lowp's best\n"
            )
        print(f"{name}: calibration time, int8, {args.calibration} samples")
        for lowp_method, ort_method in (("entropy", "Entropy"), ("percentile", "Percentile")):
            ours, theirs = [], []
            for _ in range(args.repeats):
                ours.append(lowp_quantize(model, cal, "int8", lowp_method)[1])
                theirs.append(ort_quantize(model, cal, "int8", ort_method, tmp / "timing.onnx"))
            a, b = statistics.median(ours), statistics.median(theirs)
            print(f"  {lowp_method:<11} lowp {a:6.2f} s  ORT {b:6.2f} s  ({b / a:.1f}x)")
        print()
    for f in tmp.iterdir():
        f.unlink()
    os.rmdir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
