"""Per-call cost of small lowp calls (tensors under 4 KiB), 1 and 2 threads.

    python bench/small_calls.py [--repeats 2000]

For each call: the median time of the public API call, and of the bare
compiled call with its arguments prepared (``lowp._core``: the kernel, the
pybind11 conversion and the driver), one thread. ``over`` is the public call
minus that: the Python checks plus any thread-pool wake-up.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import lowp
from lowp import _core


def median_us(fn, repeats: int) -> float:
    for _ in range(50):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1000.0


def cases():
    rng = np.random.default_rng(0)
    acc = rng.integers(-5000, 5000, (8, 8), dtype=np.int32)
    m0, shift = lowp.quantize_multiplier(0.0123)
    m = np.array([m0], np.int32)
    s = np.array([shift], np.int32)
    out_u8 = np.empty((8, 8), np.uint8)
    out_s32 = np.empty((8, 8), np.int32)
    yield (
        "requantize 8x8",
        lambda: lowp.requantize(acc, m0, shift, 3),
        lambda: _core.requantize(acc, m, s, 3, 0, 255, out_u8),
    )
    yield (
        "multiply_by_quantized_multiplier 8x8",
        lambda: lowp.multiply_by_quantized_multiplier(acc, m0, shift),
        lambda: _core.multiply_by_quantized_multiplier(acc, m, s, out_s32),
    )

    w = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    x = rng.integers(0, 256, (1, 16), dtype=np.uint8)
    fc = lowp.Linear(w, 128, x_zero_point=3)
    fc_out = np.empty((1, 16), np.int32)
    yield "Linear 1x16 @ 16x16", lambda: fc(x), lambda: fc._packed.core.run(x, fc_out)

    xc = rng.integers(0, 256, (1, 8, 8, 4), dtype=np.uint8)
    wc = rng.integers(0, 256, (4, 3, 3, 4), dtype=np.uint8)
    conv = lowp.Conv2d(wc, 128, x_zero_point=3, padding="same")
    conv_out = np.empty((1, 8, 8, 4), np.int32)
    yield (
        "Conv2d 1x8x8x4 -> 4, 3x3 same",
        lambda: conv(xc),
        lambda: conv._op.core.run(xc, 1, 1, 8, 8, conv_out),
    )

    xt = rng.integers(0, 256, (1, 4, 4, 4), dtype=np.uint8)
    wt = rng.integers(0, 256, (4, 3, 3, 4), dtype=np.uint8)
    up = lowp.ConvTranspose2d(wt, 128, x_zero_point=3, stride=2)
    up_out = np.empty((1, 9, 9, 4), np.int32)
    yield (
        "ConvTranspose2d 1x4x4x4 -> 4, 3x3 stride 2",
        lambda: up(xt),
        lambda: up._op.core.run(xt, 0, 0, 9, 9, up_out),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2000)
    args = parser.parse_args()
    info = lowp.cpu_info()
    print(f"{info.get('model', '')}, path {lowp.get_path()}; medians of {args.repeats} calls, us")
    print("| call | core, 1 thread | 1 thread | over | 2 threads | over |")
    print("|---|---|---|---|---|---|")
    for name, call, core in cases():
        lowp.set_num_threads(1)
        kernel = median_us(core, args.repeats)
        row = [name, f"{kernel:.2f}"]
        for threads in (1, 2):
            lowp.set_num_threads(threads)
            t = median_us(call, args.repeats)
            row += [f"{t:.2f}", f"{t - kernel:+.2f}"]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
