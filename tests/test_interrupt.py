"""Ctrl-C during a long call: the kernel notices within about 50 ms, stops,
and KeyboardInterrupt propagates; a caller's out= is left zero-filled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs SIGINT")

# Each call takes several seconds on one thread even on a fast CPU (the
# scalar path): the signal arrives while the kernel runs.
_CHILD = r"""
import sys, time
import numpy as np
import lowp
threads, what = int(sys.argv[1]), sys.argv[2]
lowp.set_path("scalar")
lowp.set_num_threads(threads)
rng = np.random.default_rng(0)
if what == "gemm":
    a = rng.integers(0, 256, (4096, 2048), dtype=np.uint8)
    b = rng.integers(0, 256, (2048, 2048), dtype=np.uint8)
    out = np.full((4096, 2048), 7, np.int32)
    call = lambda: lowp.gemm(a, b, 3, 4, out=out)
elif what == "model":  # one native call running a whole graph
    import lowp.tflite
    model = lowp.tflite.load(lowp.tflite.bundled_model())
    x = rng.integers(-128, 128, (96, 64, 64, 3), dtype=np.int8)
    out = np.zeros(1)
    call = lambda: model(x)
else:
    x = rng.integers(0, 256, (1, 256, 256, 256), dtype=np.uint8)
    conv = lowp.Conv2d(rng.integers(0, 256, (256, 3, 3, 256), dtype=np.uint8), 4,
                       x_zero_point=3, padding="same")
    out = np.full((1, 256, 256, 256), 7, np.int32)
    call = lambda: conv(x, out=out)
print("start", flush=True)
t0 = time.perf_counter()
try:
    call()
except KeyboardInterrupt:
    print("interrupted", f"{time.perf_counter() - t0:.3f}", bool((out == 0).all()), flush=True)
    sys.exit(3)
print("finished", f"{time.perf_counter() - t0:.3f}", flush=True)
"""


@pytest.mark.parametrize(("threads", "what"), [(1, "gemm"), (2, "gemm"), (2, "conv"), (2, "model")])
def test_ctrl_c_interrupts_a_long_call(threads, what):
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(threads), what],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "start", child.stderr.read()
        time.sleep(0.5)
        child.send_signal(signal.SIGINT)
        sent = time.perf_counter()
        out, err = child.communicate(timeout=30)
        waited = time.perf_counter() - sent
    finally:
        child.kill()
    words = out.split()
    assert words and words[0] == "interrupted", (out, err)
    assert child.returncode == 3
    assert waited < 1.0, f"exited {waited:.2f} s after SIGINT"
    assert words[2] == "True", "out= holds part of a result"
