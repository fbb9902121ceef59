"""``lowp quantize``: a float ONNX model (or an example's name), a calibration
set in a .npy file, and out come a .tflite (or ONNX QDQ) file, the per-layer
report as a table and JSON, and its plot."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model",
        help="a float .onnx file, or the name of an example (lowp.examples.NAMES: its ONNX "
        "file, and its calibration and test data unless given)",
    )
    p.add_argument("--calibration", metavar="NPY", help="float32 samples, first axis = samples")
    p.add_argument("-o", "--output", metavar="PATH", help="write .tflite or .onnx (QDQ)")
    p.add_argument("--scheme", choices=["int8", "uint8"], default="int8")
    p.add_argument(
        "--per-channel",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="per-channel weights (default: int8 yes, uint8 no)",
    )
    p.add_argument(
        "--method",
        choices=["minmax", "moving_average", "percentile", "mse", "entropy", "auto"],
        default="minmax",
    )
    p.add_argument("--percentile", type=float, default=99.99)
    p.add_argument("--weight-bits", type=int, default=8)
    p.add_argument("--activation-bits", type=int, default=8)
    p.add_argument("--samples", metavar="NPY", help="evaluation samples for the report")
    p.add_argument("--report", metavar="JSON", help="write the per-layer report as JSON")
    p.add_argument("--plot", metavar="PNG", help="plot per-layer SQNR and SQNR against bits")
    p.add_argument("--quiet", action="store_true", help="no table")


def _load(path: str, what: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{what}: no such file {path!r}")
    try:
        data = np.load(p, allow_pickle=False)
    except Exception as err:
        raise ValueError(f"{what}: {path!r} is not a .npy/.npz file ({err})") from None
    if hasattr(data, "files"):  # .npz: its first array
        if not data.files:
            raise ValueError(f"{what}: {path!r} holds no arrays")
        data = data[data.files[0]]
    return np.asarray(data)


def _example(name: str) -> tuple[Any, Any, Any]:
    from . import examples

    cal, _ = examples.dataset(name, "calibration", 64)
    test, _ = examples.dataset(name, "test", 32)
    return examples.onnx_path(name), cal, test


def run(args: argparse.Namespace) -> int:
    from .quantizer import quantize_model

    def fail(message: str) -> int:
        print(f"lowp quantize: {message}", file=sys.stderr)
        return 2

    try:
        model: Any = args.model
        cal = test = None
        if not args.model.endswith(".onnx"):
            try:
                from . import examples

                known = args.model in examples.NAMES
            except ImportError:
                known = False
            if not known:
                return fail(f"{args.model!r} is neither a .onnx file nor an example name")
            model, cal, test = _example(args.model)
        if args.calibration:
            cal = _load(args.calibration, "--calibration")
        if cal is None:
            return fail("--calibration is needed for a model file")
        if args.samples:
            test = _load(args.samples, "--samples")
        if test is None:
            test = cal[: min(len(cal), 64)]
        if args.output and Path(args.output).suffix not in (".tflite", ".onnx"):
            return fail(f"--output {args.output!r}: the name must end in .tflite or .onnx")
        start = time.perf_counter()
        qm = quantize_model(
            model,
            cal,
            scheme=args.scheme,
            per_channel=args.per_channel,
            method=args.method,
            percentile=args.percentile,
            weight_bits=args.weight_bits,
            activation_bits=args.activation_bits,
        )
        took = time.perf_counter() - start
        report = qm.report(test)
        if not args.quiet:
            print(report.table())
            print(f"quantized in {took:.2f} s ({args.scheme}, {args.method})")
        if args.output:
            if args.output.endswith(".tflite"):
                qm.save_tflite(args.output)
            else:
                qm.save_onnx(args.output)
            print(f"wrote {args.output}")
        if args.report:
            report.to_json(args.report)
            print(f"wrote {args.report}")
        if args.plot:
            from .quantizer import plot_summary

            plot_summary(report, qm.sweep(test), args.plot)
            print(f"wrote {args.plot}")
    except (ValueError, TypeError, ImportError, FileNotFoundError) as err:
        return fail(str(err))
    return 0
