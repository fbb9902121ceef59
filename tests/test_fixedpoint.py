"""Fixed-point requantization: the edge table and a random sweep, on every
path, bit for bit against lowp.reference (and the table's exact results)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lowp
from conftest import read_edge_table
from lowp import reference as ref

TABLE = read_edge_table()
VALUES = np.array([v for (v,) in TABLE["value"]], dtype=np.int32)
MULTIPLIERS = [m for (m,) in TABLE["multiplier"]]
SHIFTS = np.arange(-31, 31, dtype=np.int32)
# (zero_point, qmin, qmax): full range, both ends, narrow clamps, one-value clamps.
CLAMPS = [
    (0, 0, 255),
    (128, 0, 255),
    (255, 0, 255),
    (3, 10, 200),
    (0, 0, 0),
    (255, 255, 255),
    (100, 100, 100),
    (128, 128, 255),
    (200, 0, 127),
]


def test_table_is_complete():
    assert len(TABLE["value"]) > 400
    assert {-(2**31), 2**31 - 1, 0} <= set(VALUES.tolist())
    assert len(TABLE["quantize_multiplier"]) >= 12


@pytest.mark.parametrize(("real", "m0", "shift"), TABLE["quantize_multiplier"])
def test_quantize_multiplier_table(real, m0, shift):
    assert lowp.quantize_multiplier(real) == (m0, shift)
    assert ref.quantize_multiplier(real) == (m0, shift)


def test_quantize_multiplier_array_matches_reference():
    rng = np.random.default_rng(1)
    reals = np.concatenate(
        [
            [row[0] for row in TABLE["quantize_multiplier"]],
            np.ldexp(rng.random(2000), rng.integers(-40, 30, 2000)),
        ]
    )
    m0, shift = lowp.quantize_multiplier(reals)
    want_m0, want_shift = ref.quantize_multiplier(reals)
    assert m0.dtype == np.int32 and shift.dtype == np.int32
    np.testing.assert_array_equal(m0, want_m0)
    np.testing.assert_array_equal(shift, want_shift)
    nz = m0 != 0
    assert ((m0[nz] >= 2**30) & (shift[nz] <= 30)).all()


def test_srdhm_table(each_path):
    a, b, r = (np.array(col, dtype=np.int32) for col in zip(*TABLE["srdhm"]))
    np.testing.assert_array_equal(lowp.srdhm(a, b), r)
    np.testing.assert_array_equal(ref.srdhm(a, b), r)
    assert lowp.srdhm(-(2**31), -(2**31)) == 2**31 - 1


def test_rdivpot_table(each_path):
    x, e, r = (np.array(col, dtype=np.int32) for col in zip(*TABLE["rdivpot"]))
    np.testing.assert_array_equal(lowp.rdivpot(x, e), r)
    np.testing.assert_array_equal(ref.rdivpot(x, e), r)


def test_multiply_by_quantized_multiplier_table(each_path):
    x, m, s, r = (np.array(col, dtype=np.int32) for col in zip(*TABLE["mulquant"]))
    np.testing.assert_array_equal(ref.multiply_by_quantized_multiplier(x, m, s), r)
    for i in range(len(x)):  # one element per call: exercises the kernel tails
        assert lowp.multiply_by_quantized_multiplier(x[i : i + 1], m[i], s[i])[0] == r[i]


@pytest.mark.parametrize("multiplier", MULTIPLIERS)
def test_every_value_every_shift(each_path, multiplier):
    # Rows are the table's values, columns every shift: one per-channel call.
    acc = np.repeat(VALUES[:, None], SHIFTS.size, axis=1)
    m = np.full(SHIFTS.size, multiplier, dtype=np.int32)
    np.testing.assert_array_equal(
        lowp.multiply_by_quantized_multiplier(acc, m, SHIFTS),
        ref.multiply_by_quantized_multiplier(acc, m, SHIFTS),
    )
    for zp, lo, hi in CLAMPS:
        got = lowp.requantize(acc, m, SHIFTS, zp, qmin=lo, qmax=hi)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, ref.requantize(acc, m, SHIFTS, zp, lo, hi))
    for shift in (-31, -1, 0, 1, 30):  # per tensor
        np.testing.assert_array_equal(
            lowp.requantize(VALUES, multiplier, shift, 77),
            ref.requantize(VALUES, multiplier, shift, 77),
        )


def test_random_sweep_ten_million(each_path):
    """10 million random accumulators per path, random per-channel multipliers
    and shifts in [-31, 30], random zero points and clamps."""
    rng = np.random.default_rng(12345)
    block, total = 1 << 20, 10_000_000
    done = 0
    while done < total:
        channels = int(rng.choice([1, 3, 8, 37, 64, 1000]))
        rows = block // channels
        bits = rng.integers(0, 32, size=(rows, channels))
        acc = (rng.integers(-(2**31), 2**31, size=(rows, channels)) >> bits).astype(np.int32)
        m = rng.integers(0, 2**31, size=channels).astype(np.int32)
        s = rng.integers(-31, 31, size=channels).astype(np.int32)
        zp = int(rng.integers(0, 256))
        lo, hi = sorted(int(v) for v in rng.integers(0, 256, size=2))
        if rng.random() < 0.5:
            lo, hi = 0, 255
        np.testing.assert_array_equal(
            lowp.requantize(acc, m, s, zp, qmin=lo, qmax=hi),
            ref.requantize(acc, m, s, zp, lo, hi),
        )
        np.testing.assert_array_equal(
            lowp.multiply_by_quantized_multiplier(acc, m, s),
            ref.multiply_by_quantized_multiplier(acc, m, s),
        )
        done += acc.size


@settings(max_examples=60, deadline=None)
@given(
    acc=hnp.arrays(np.int32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=40)),
    data=st.data(),
)
def test_hypothesis_shapes(acc, data):
    channels = acc.shape[-1]
    per_channel = data.draw(st.booleans())
    n = channels if per_channel else 1
    m = np.array(data.draw(st.lists(st.integers(0, 2**31 - 1), min_size=n, max_size=n)), np.int32)
    s = np.array(data.draw(st.lists(st.integers(-31, 30), min_size=n, max_size=n)), np.int32)
    zp = data.draw(st.integers(0, 255))
    lo = data.draw(st.integers(0, 255))
    hi = data.draw(st.integers(lo, 255))
    want = ref.requantize(acc, m, s, zp, lo, hi)
    for path in lowp.cpu_info()["paths"]:
        lowp.set_path(path)
        np.testing.assert_array_equal(lowp.requantize(acc, m, s, zp, qmin=lo, qmax=hi), want)
    lowp.set_path(lowp.cpu_info()["paths"][-1])


def test_layouts_give_the_same_result(each_path):
    rng = np.random.default_rng(3)
    base = rng.integers(-(2**31), 2**31, size=(64, 48), dtype=np.int64).astype(np.int32)
    m = rng.integers(2**30, 2**31, size=24).astype(np.int32)
    s = rng.integers(-31, 31, size=24).astype(np.int32)
    strided = base[::2, ::2]
    fortran = np.asfortranarray(strided)
    readonly = strided.copy()
    readonly.flags.writeable = False
    want = ref.requantize(strided, m, s, 5)
    for acc in (strided, fortran, readonly, np.ascontiguousarray(strided)):
        np.testing.assert_array_equal(lowp.requantize(acc, m, s, 5), want)


def test_out_argument(each_path):
    rng = np.random.default_rng(4)
    acc = rng.integers(-(2**20), 2**20, size=(10, 16)).astype(np.int32)
    want = ref.requantize(acc, 2**30, -5, 128)
    out = np.full((10, 16), 0xA5, dtype=np.uint8)
    assert lowp.requantize(acc, 2**30, -5, 128, out=out) is out
    np.testing.assert_array_equal(out, want)
    # A non-contiguous out is written through a temporary.
    big = np.full((10, 32), 0xA5, dtype=np.uint8)
    lowp.requantize(acc, 2**30, -5, 128, out=big[:, ::2])
    np.testing.assert_array_equal(big[:, ::2], want)
    assert (big[:, 1::2] == 0xA5).all()


def test_out_overlapping_input_is_handled(each_path):
    rng = np.random.default_rng(5)
    acc = rng.integers(-(2**20), 2**20, size=4096).astype(np.int32)
    want = ref.requantize(acc, 2**30, -5, 128)
    alias = acc.view(np.uint8)[: acc.size]  # out shares acc's memory
    lowp.requantize(acc, 2**30, -5, 128, out=alias)
    np.testing.assert_array_equal(alias, want)


def test_thread_counts_agree(each_path, threads):
    rng = np.random.default_rng(6)
    acc = rng.integers(-(2**31), 2**31, size=(50_001, 37), dtype=np.int64).astype(np.int32)
    m = rng.integers(0, 2**31, size=37).astype(np.int32)
    s = rng.integers(-31, 31, size=37).astype(np.int32)
    lowp.set_num_threads(1)
    one = lowp.requantize(acc, m, s, 3)
    for n in (2, 3, 7):
        lowp.set_num_threads(n)
        np.testing.assert_array_equal(lowp.requantize(acc, m, s, 3), one)


def test_scalars_and_broadcasting():
    assert lowp.srdhm(2**30, 2**30) == 2**29
    assert isinstance(lowp.rdivpot(5, 1), int)
    assert lowp.rdivpot(5, 1) == 3 and lowp.rdivpot(-5, 1) == -3
    x = np.array([[-5], [5]], dtype=np.int32)
    np.testing.assert_array_equal(lowp.rdivpot(x, np.array([0, 1, 2])), ref.rdivpot(x, [0, 1, 2]))
    assert lowp.multiply_by_quantized_multiplier(1000, 2**30, 1) == 1000


class TestRequant:
    def test_call_matches_requantize(self, each_path):
        acc = np.arange(-5000, 5000, 5, dtype=np.int32).reshape(-1, 2)
        rq = lowp.Requant([2**30, 1610612736], [-4, -3], 10, qmin=5, qmax=250)
        assert rq.channels == 2
        np.testing.assert_array_equal(
            rq(acc), ref.requantize(acc, rq.multiplier, rq.shift, 10, 5, 250)
        )

    def test_from_scales_per_channel(self):
        in_scale, out_scale = np.float32(0.02), np.float32(0.1)
        w = np.array([0.003, 0.5, 1e-7], dtype=np.float32)
        rq = lowp.Requant.from_scales(in_scale, w, out_scale, 12)
        real = (np.float64(in_scale) * w.astype(np.float64)) / np.float64(out_scale)
        want_m, want_s = ref.quantize_multiplier(real)
        np.testing.assert_array_equal(rq.multiplier, want_m)
        np.testing.assert_array_equal(rq.shift, want_s)
        assert (rq.zero_point, rq.qmin, rq.qmax) == (12, 0, 255)

    def test_from_scales_activations(self):
        relu = lowp.Requant.from_scales(0.5, 0.25, 0.05, 20, activation="relu")
        assert (relu.qmin, relu.qmax) == (20, 255)
        relu6 = lowp.Requant.from_scales(0.5, 0.25, 0.05, 20, activation="relu6")
        assert (relu6.qmin, relu6.qmax) == (20, 20 + 120)
        wide = lowp.Requant.from_scales(0.5, 0.25, 0.01, 20, activation="relu6")
        assert (wide.qmin, wide.qmax) == (20, 255)  # q(6) = 620 clamps to 255
        # q(6) is 6 / out_scale in float32, rounded half away from zero.
        half = lowp.Requant.from_scales(1.0, 1.0, 0.16, 0, activation="relu6")
        six = np.float32(6) / np.float32(0.16)
        assert half.qmax == int(np.floor(six + np.float32(0.5)))

    def test_repr(self):
        assert "zero_point=3" in repr(lowp.Requant(2**30, -1, 3))
