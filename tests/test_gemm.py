"""GEMM: every path bit for bit against lowp.reference.gemm (and the fused
output stage against requantize(reference + bias))."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lowp
from lowp import reference as ref

# Around every tile size the kernels use (scalar 4x4, AVX2 6x16, NEON 8x8 /
# 8x16): below, at and above a tile, and primes.
DIMS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 49, 97]


def _rand(rng, shape, dtype=np.uint8):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, size=shape, dtype=np.int64).astype(dtype)


class GemmCase:
    """One GEMM configuration, checked on the active path (fluent setters, as
    QNNPACK's gemm tester)."""

    def __init__(self, m=4, k=8, n=4, seed=0):
        self.m, self.k, self.n, self.seed = m, k, n, seed
        self.a_zp, self.b_zp, self.use_bias, self.rq = 0, 0, False, None

    def zero_points(self, a_zp, b_zp):
        self.a_zp, self.b_zp = a_zp, b_zp
        return self

    def bias(self):
        self.use_bias = True
        return self

    def requant(self, rq):
        self.rq = rq
        return self

    def check(self, a=None, b=None):
        rng = np.random.default_rng(self.seed)
        a = _rand(rng, (self.m, self.k)) if a is None else a
        b = _rand(rng, (self.k, self.n)) if b is None else b
        bias = rng.integers(-(2**20), 2**20, self.n).astype(np.int32) if self.use_bias else None
        want = ref.gemm(a, b, self.a_zp, self.b_zp, bias)
        if self.rq is None:
            out = np.full(want.shape, -0x5A5A5A5B, dtype=np.int32)  # canary
            got = lowp.gemm(a, b, self.a_zp, self.b_zp, bias=bias, out=out)
        else:
            want = ref.requantize(
                want,
                self.rq.multiplier,
                self.rq.shift,
                self.rq.zero_point,
                self.rq.qmin,
                self.rq.qmax,
            )
            out = np.full(want.shape, 0xA5, dtype=np.uint8)
            got = lowp.gemm(a, b, self.a_zp, self.b_zp, bias=bias, requant=self.rq, out=out)
        assert got is out
        np.testing.assert_array_equal(got, want)
        return self


@pytest.mark.parametrize("m", DIMS)
@pytest.mark.parametrize("n", DIMS)
def test_shapes(each_path, m, n):
    for k in (1, 2, 3, 8, 17, 64):
        GemmCase(m, k, n, seed=m * 1000 + n).zero_points(m % 256, (n * 37) % 256).check()


@pytest.mark.parametrize(
    "k",
    [
        1,
        2,
        3,
        4,
        5,
        7,
        8,
        9,
        15,
        16,
        17,
        31,
        32,
        33,
        255,
        256,
        257,
        511,
        512,
        513,
        1000,
        1024,
        1031,
        4096,
    ],
)
def test_depths(each_path, k):
    GemmCase(13, k, 35, seed=k).zero_points(100, 200).bias().check()


def test_large_square(each_path):
    GemmCase(300, 700, 260, seed=1).zero_points(128, 127).bias().check()


@pytest.mark.parametrize(
    ("a_zp", "b_zp", "a_val", "b_val"),
    [(0, 255, 255, 0), (255, 0, 0, 255), (0, 0, 255, 255), (255, 255, 0, 0)],
)
def test_max_k_worst_case(each_path, a_zp, b_zp, a_val, b_val):
    # |sum| = K * 255 * 255 fits int32 exactly at K = 33025; one B panel and many.
    k = 33025
    for n in (5, 130):
        a = np.full((3, k), a_val, dtype=np.uint8)
        b = np.full((k, n), b_val, dtype=np.uint8)
        got = lowp.gemm(a, b, a_zp, b_zp)
        np.testing.assert_array_equal(got, ref.gemm(a, b, a_zp, b_zp))
        assert abs(int(got[0, 0])) == k * 255 * 255


@pytest.mark.parametrize("n", [127, 128, 129, 136])
def test_edge_micro_panels_and_blocks(each_path, n):
    # Edge micro-panels of every row count (AVX2's 6x16 kernel runs 2-, 4- or
    # 6-row loops), edge panels, K blocks (1153 and 2400 cross AVX2's 1152).
    rng = np.random.default_rng(n)
    for m in (2, 6, 8, 9, 10, 13):
        for k in (27, 193, 1153, 2400):
            GemmCase(m, k, n, seed=m * k + n).zero_points(m * 19, rng.integers(0, 256, n)).check()
    rq = lowp.Requant(rng.integers(2**30, 2**31, n), rng.integers(-20, 1, n), 9)
    GemmCase(13, 1153, n, seed=n).zero_points(5, 250).bias().requant(rq).check()


def test_per_column_zero_points(each_path):
    rng = np.random.default_rng(2)
    for n in (1, 5, 16, 33):
        GemmCase(9, 40, n, seed=n).zero_points(7, rng.integers(0, 256, n)).bias().check()


@pytest.mark.parametrize("per_channel", [False, True])
def test_fused_output_stage(each_path, per_channel):
    rng = np.random.default_rng(3)
    for m, k, n in [(1, 1, 1), (5, 30, 7), (17, 300, 33), (64, 1100, 48)]:
        c = n if per_channel else 1
        rq = lowp.Requant(
            rng.integers(2**30, 2**31, c),
            rng.integers(-20, 3, c),
            int(rng.integers(0, 256)),
            qmin=int(rng.integers(0, 60)),
            qmax=int(rng.integers(190, 256)),
        )
        GemmCase(m, k, n, seed=k).zero_points(
            int(rng.integers(0, 256)), rng.integers(0, 256, n)
        ).bias().requant(rq).check()


def test_output_stage_saturates_both_ways(each_path):
    # Huge positive and negative accumulators against a left shift.
    a = np.array([[255] * 64, [0] * 64], dtype=np.uint8)
    b = np.full((64, 20), 255, dtype=np.uint8)
    rq = lowp.Requant(2**31 - 1, 30, 128, qmin=3, qmax=250)
    got = lowp.gemm(a, b, 128, 0, requant=rq)
    want = ref.requantize(ref.gemm(a, b, 128, 0), 2**31 - 1, 30, 128, 3, 250)
    np.testing.assert_array_equal(got, want)
    assert set(np.unique(got)) == {3, 250}


def test_int8_operands(each_path):
    rng = np.random.default_rng(4)
    a = _rand(rng, (7, 50), np.int8)
    b = _rand(rng, (50, 9), np.int8)
    np.testing.assert_array_equal(lowp.gemm(a, b, -3, 0), ref.gemm(a, b, -3, 0))
    b_u8 = _rand(rng, (50, 9))
    zps = rng.integers(0, 256, 9)
    np.testing.assert_array_equal(lowp.gemm(a, b_u8, 127, zps), ref.gemm(a, b_u8, 127, zps))


def test_batch_dims_and_layouts(each_path):
    rng = np.random.default_rng(5)
    a = _rand(rng, (2, 3, 11, 40))
    b = _rand(rng, (40, 21))
    want = ref.gemm(a, b, 9, 200)
    got = lowp.gemm(a, b, 9, 200)
    assert got.shape == (2, 3, 11, 21)
    np.testing.assert_array_equal(got, want)
    big = _rand(rng, (30, 90))
    a2, b2 = big[::2, ::3], np.asfortranarray(_rand(rng, (30, 13)))
    ro = a2.copy()
    ro.flags.writeable = False
    for a_in in (a2, np.asfortranarray(a2), ro):
        np.testing.assert_array_equal(lowp.gemm(a_in, b2, 1, 2), ref.gemm(a2, b2, 1, 2))
    assert lowp.gemm(a[0, 0, 0], b, 9, 200).shape == (21,)


def test_non_contiguous_out(each_path):
    rng = np.random.default_rng(6)
    a, b = _rand(rng, (8, 30)), _rand(rng, (30, 10))
    big = np.full((8, 20), 7, dtype=np.int32)
    lowp.gemm(a, b, 1, 2, out=big[:, ::2])
    np.testing.assert_array_equal(big[:, ::2], ref.gemm(a, b, 1, 2))
    assert (big[:, 1::2] == 7).all()


def test_linear_packs_once_and_matches(each_path, threads):
    rng = np.random.default_rng(7)
    w = _rand(rng, (200, 70))
    bias = rng.integers(-5000, 5000, 70).astype(np.int32)
    rq = lowp.Requant.from_scales(0.05, rng.uniform(0.001, 0.01, 70).astype(np.float32), 0.2, 128)
    w_zp = rng.integers(0, 256, 70)
    lin = lowp.Linear(w, w_zp, x_zero_point=120, bias=bias, requant=rq)
    w[:] = 0  # packed at construction: later changes to w do not matter
    assert (lin.in_features, lin.out_features) == (200, 70)
    w = _rand(np.random.default_rng(7), (200, 70))
    for m in (1, 3, 64, 129):
        x = _rand(rng, (m, 200))
        acc = ref.gemm(x, w, 120, w_zp, bias)
        want = ref.requantize(acc, rq.multiplier, rq.shift, rq.zero_point, rq.qmin, rq.qmax)
        for n_threads in (1, 2, 3):
            lowp.set_num_threads(n_threads)
            np.testing.assert_array_equal(lin(x), want)


def test_linear_int8(each_path):
    rng = np.random.default_rng(8)
    w = _rand(rng, (33, 17), np.int8)
    lin = lowp.Linear(w, 0, x_zero_point=-5)
    x = _rand(rng, (4, 33), np.int8)
    np.testing.assert_array_equal(lin(x), ref.gemm(x, w, -5, 0))
    with pytest.raises(TypeError, match="x must be int8"):
        lin(x.view(np.uint8))


def test_thread_counts_agree(each_path, threads):
    rng = np.random.default_rng(9)
    a, b = _rand(rng, (257, 300)), _rand(rng, (300, 190))
    lowp.set_num_threads(1)
    one = lowp.gemm(a, b, 3, 4)
    for n in (2, 3, 5):
        lowp.set_num_threads(n)
        np.testing.assert_array_equal(lowp.gemm(a, b, 3, 4), one)


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(1, 40),
    k=st.integers(1, 300),
    n=st.integers(1, 40),
    a_zp=st.integers(0, 255),
    b_zp=st.integers(0, 255),
    seed=st.integers(0, 2**32 - 1),
    per_col=st.booleans(),
)
def test_hypothesis(m, k, n, a_zp, b_zp, seed, per_col):
    rng = np.random.default_rng(seed)
    zps = rng.integers(0, 256, n) if per_col else b_zp
    a, b = _rand(rng, (m, k)), _rand(rng, (k, n))
    want = ref.gemm(a, b, a_zp, zps)
    saved = lowp.get_path()
    try:
        for path in lowp.cpu_info()["paths"]:
            lowp.set_path(path)
            np.testing.assert_array_equal(lowp.gemm(a, b, a_zp, zps), want)
    finally:
        lowp.set_path(saved)


A = np.zeros((4, 8), dtype=np.uint8)
B = np.zeros((8, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"a": A.astype(np.float32)}, TypeError, "a must be a uint8 or int8"),
        ({"b": B.astype(np.int32)}, TypeError, "b must be a uint8 or int8"),
        ({"b": B[0]}, ValueError, "b must be 2-D"),
        ({"b": np.zeros((7, 3), np.uint8)}, ValueError, "last axis must be K=7"),
        ({"a_zero_point": 256}, ValueError, "a_zero_point"),
        ({"a_zero_point": 1.5}, TypeError, "a_zero_point"),
        ({"b_zero_point": [1, 2]}, ValueError, "b_zero_point must be a scalar or have 3"),
        ({"b_zero_point": -1}, ValueError, "b_zero_point"),
        ({"bias": np.zeros(3, np.int64)}, TypeError, "bias must be an int32"),
        ({"bias": np.zeros(4, np.int32)}, ValueError, "bias must have shape"),
        ({"requant": 3}, TypeError, "requant must be a lowp.Requant"),
        ({"requant": lowp.Requant([2**30] * 2, [0, 0], 0)}, ValueError, "requant has 2"),
        ({"out": np.zeros((4, 3), np.uint8)}, TypeError, "out must have dtype int32"),
        ({"out": np.zeros((3, 4), np.int32)}, ValueError, "out must have shape"),
    ],
)
def test_bad_input(kwargs, error, match):
    args = {"a": A, "b": B, "a_zero_point": 0, "b_zero_point": 0, **kwargs}
    with pytest.raises(error, match=match):
        lowp.gemm(
            args.pop("a"), args.pop("b"), args.pop("a_zero_point"), args.pop("b_zero_point"), **args
        )


def test_k_too_large():
    with pytest.raises(ValueError, match="K must be <= 33025"):
        lowp.gemm(np.zeros((1, 33026), np.uint8), np.zeros((33026, 1), np.uint8), 0, 0)


def test_int8_zero_point_range():
    with pytest.raises(ValueError, match=r"a_zero_point must be in \[-128, 127\]"):
        lowp.gemm(A.view(np.int8), B, 128, 0)


@pytest.mark.parametrize("k", [1, 2, 191, 192, 193, 385, 1000, 4097])
def test_single_row(each_path, k):
    # M = 1 takes the GEMV kernel where a path has one: K blocks, partial
    # panel groups, int32 and fused per-column output.
    rng = np.random.default_rng(k)
    for n in (1, 8, 31, 33, 100, 129, 300):
        GemmCase(1, k, n, seed=k + n).zero_points(201, rng.integers(0, 256, n)).bias().check()
        rq = lowp.Requant(rng.integers(2**30, 2**31, n), rng.integers(-20, 1, n), 9)
        GemmCase(1, k, n, seed=n).zero_points(5, 250).bias().requant(rq).check()
