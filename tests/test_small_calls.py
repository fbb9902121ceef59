"""Small calls run on the caller's thread: the thread pool wakes only for
work worth a worker's wake-up (the per-call cost itself is measured by
bench/small_calls.py, not tested)."""

from __future__ import annotations

import numpy as np

import lowp
from lowp import _core


def _small_calls():
    rng = np.random.default_rng(0)
    acc = rng.integers(-5000, 5000, (8, 8), dtype=np.int32)
    fc = lowp.Linear(rng.integers(0, 256, (16, 16), dtype=np.uint8), 128, x_zero_point=3)
    w = rng.integers(0, 256, (4, 3, 3, 4), dtype=np.uint8)
    conv = lowp.Conv2d(w, 128, x_zero_point=3, padding="same")
    up = lowp.ConvTranspose2d(w, 128, x_zero_point=3, stride=2)
    up_tiled = lowp.ConvTranspose2d(w[:, :2, :2], 128, x_zero_point=3, stride=2)
    x = rng.integers(0, 256, (1, 8, 8, 4), dtype=np.uint8)
    rq = lowp.Requant(2**30, -3, 3)
    return [
        lambda: lowp.requantize(acc, 2**30, -3, 3),
        lambda: lowp.multiply_by_quantized_multiplier(acc, 2**30, -3),
        lambda: rq(acc),
        lambda: fc(x[0, 0, :4].reshape(1, 16)),
        lambda: fc(x.reshape(16, 16)),
        lambda: conv(x),
        lambda: up(x[:, :4, :4]),
        lambda: up_tiled(x[:, :4, :4]),
        lambda: lowp.quantize(acc.astype(np.float32), lowp.QParams(0.5, 0, -128, 127)),
    ]


def test_small_calls_do_not_wake_the_pool(threads):
    calls = _small_calls()
    for n_threads in (2, 4):
        lowp.set_num_threads(n_threads)
        before = _core.pool_jobs()
        for call in calls:
            call()
        assert _core.pool_jobs() == before, f"{n_threads} threads"


def test_large_calls_use_the_pool(threads):
    lowp.set_num_threads(2)
    a = np.ones((512, 256), np.uint8)
    before = _core.pool_jobs()
    lowp.gemm(a, np.ones((256, 256), np.uint8), 0, 0)
    assert _core.pool_jobs() > before
