"""Time lowp against TensorFlow Lite on the same .tflite models, one thread,
interleaved rounds, medians: ``python -m lowp.tflite._speed``.

Engines: lowp (exact), TFLite's reference kernels (BUILTIN_REF, the integer
semantics lowp matches bit for bit) and TFLite's default interpreter
(optimized kernels with the XNNPACK delegate, which differs from the
reference in the last bit). Models: the bundled 64x64 UNet and the same UNet
on a 256x256 input. Needs TensorFlow.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np

import lowp
from lowp._runtime import describe_machine

from . import _build, bundled_model, load
from ._check import reference_interpreter, run_reference


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_model(name: str, data: bytes, repeats: int) -> dict[str, float]:
    model = load(data)
    inputs = model.random_inputs(0)
    ref = reference_interpreter(data, keep_tensors=False)
    xnn = reference_interpreter(data, optimized=True)
    engines: dict[str, Callable[[], object]] = {
        "lowp": lambda: model(*inputs),
        "tflite_ref": lambda: run_reference(ref, inputs),
        "tflite_xnnpack": lambda: run_reference(xnn, inputs),
    }
    for fn in engines.values():  # warm-up
        fn()
    out = model(*inputs)
    expect = ref.get_tensor(ref.get_output_details()[0]["index"])
    if not np.array_equal(out, expect):
        raise AssertionError(f"{name}: lowp differs from the reference interpreter")
    times: dict[str, list[float]] = {k: [] for k in engines}
    for _ in range(repeats):  # interleaved: every engine once per round
        for key, fn in engines.items():
            times[key].append(_timed(fn))
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds (median)")
    parser.add_argument("--large", type=int, default=256, help="input size of the larger UNet")
    args = parser.parse_args(argv)
    lowp.set_num_threads(1)
    models = [
        ("bundled UNet 64x64x3", bundled_model().read_bytes()),
        (
            f"UNet {args.large}x{args.large}x3",
            _build.unet_int8((args.large, args.large), 16, seed=0),
        ),
    ]
    print(describe_machine())
    print(f"one thread, median of {args.repeats} interleaved rounds, path {lowp.get_path()}")
    head = ["model", "lowp ms", "TFLite reference ms", "TFLite XNNPACK ms"]
    print("| " + " | ".join([*head, "ref / lowp", "XNNPACK / lowp"]) + " |")
    print("|---|---|---|---|---|---|")
    for name, data in models:
        t = bench_model(name, data, args.repeats)
        print(
            f"| {name} | {t['lowp'] * 1e3:.2f} | {t['tflite_ref'] * 1e3:.1f} | "
            f"{t['tflite_xnnpack'] * 1e3:.2f} | {t['tflite_ref'] / t['lowp']:.1f}x | "
            f"{t['tflite_xnnpack'] / t['lowp']:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
