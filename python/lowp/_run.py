"""``lowp run``: run a .tflite model on lowp, time every operator, and with
``--check`` compare each operator with TensorFlow Lite's reference
interpreter (needs TensorFlow)."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model", nargs="?", type=Path, help="a .tflite file (default: the bundled int8 UNet)"
    )
    parser.add_argument(
        "--input",
        action="append",
        type=Path,
        metavar="X.npy",
        help="an input array, once per model input (default: deterministic random data)",
    )
    parser.add_argument("--output", type=Path, metavar="Y.npy", help="save the output(s) here")
    parser.add_argument("--threads", type=int, help="lowp threads (default: lowp's setting)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (median per op)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare every op with TFLite's reference interpreter (needs TensorFlow)",
    )


def _fail(message: str) -> int:
    print(f"lowp run: error: {message}", file=sys.stderr)
    return 2


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) or "scalar"


def run(args: argparse.Namespace) -> int:
    import lowp
    import lowp.tflite as lt

    if args.threads is not None:
        if args.threads < 1:
            return _fail("--threads must be >= 1")
        lowp.set_num_threads(args.threads)
    if args.repeats < 1:
        return _fail("--repeats must be >= 1")
    path = args.model if args.model is not None else lt.bundled_model()
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        return _fail(f"cannot read {path}: {err.strerror or err}")
    try:
        t0 = time.perf_counter()
        model = lt.load(data)
        load_s = time.perf_counter() - t0
    except lt.ModelError as err:
        return _fail(f"{path}: {err}")

    if args.input:
        if len(args.input) != len(model.inputs):
            return _fail(f"the model takes {len(model.inputs)} input(s), got {len(args.input)}")
        try:
            inputs = [np.load(p, allow_pickle=False) for p in args.input]
        except (OSError, ValueError) as err:
            return _fail(f"cannot read the input: {err}")
        source = ", ".join(str(p) for p in args.input)
    else:
        inputs = model.random_inputs(0)
        source = "deterministic random data (seed 0)"
    try:
        outputs = model.run(*inputs)  # also the warm-up
    except (TypeError, ValueError) as err:
        return _fail(str(err))

    runs = []
    for _ in range(args.repeats):
        _, timings = model.profile(*inputs)
        runs.append(timings)
    totals = [sum(t.seconds for t in r) for r in runs]

    print(f"model:   {path}")
    print(
        f"inputs:  {', '.join(f'{t.dtype}[{_shape(t.shape)}]' for t in model.inputs)} from {source}"
    )
    info = lowp.cpu_info()
    threads = f"{info['threads']} thread(s)"
    print(f"lowp:    path {info['path']}, {threads}, loaded in {load_s * 1e3:.1f} ms")
    print(f"\n{'#':>3}  {'op':<16} {'shapes':<36} {'ms':>9}")
    for i, op in enumerate(model.ops):
        ms = statistics.median(r[i].seconds for r in runs) * 1e3
        print(f"{op.spec.index:>3}  {op.spec.name:<16} {op.describe_shapes():<36} {ms:>9.3f}")
    print(f"{'':>3}  {'total':<16} {'':<36} {statistics.median(totals) * 1e3:>9.3f}")
    print(f"(median of {args.repeats} runs)")

    if args.output is not None:
        try:
            if len(outputs) == 1:
                np.save(args.output, outputs[0])
            else:
                np.savez(args.output, *outputs)
        except OSError as err:
            return _fail(f"cannot write {args.output}: {err.strerror or err}")
        print(f"output:  {args.output}")

    if args.check:
        return _check(model, data, inputs)
    return 0


def _check(model, data: bytes, inputs: list[np.ndarray]) -> int:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return _fail("--check needs TensorFlow (pip install tensorflow-cpu)")
    from .tflite._check import compare

    checks = compare(model, data, inputs)
    print("\ncheck against TFLite's reference interpreter (BUILTIN_REF):")
    for c in checks:
        verdict = "exact" if c.match else f"DIFFERS in {c.mismatches} values (max {c.max_diff:g})"
        print(f"{c.index:>3}  {c.op:<16} {verdict}")
    bad = sum(not c.match for c in checks)
    print(f"{len(checks) - bad} of {len(checks)} op outputs bit-exact")
    return 1 if bad else 0
