"""Quantization tools: choose_qparams, quantize, dequantize, quant_error, QParams.

quantize is compared bit for bit with lowp.reference.quantize on every ISA
path (the float32 per-tensor 8-bit case runs on the compiled kernels).
"""

from __future__ import annotations

import contextlib
import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lowp
import lowp.quant as quant_module
from lowp import reference

PATHS = lowp.cpu_info()["paths"]
F32_EPS = float(np.finfo(np.float32).eps)

# name -> (scale, zero_point, qmin, qmax): every output dtype, a clamp
# narrower than the type, and 4-bit ranges (which still use 8-bit storage).
KINDS = {
    "uint8": (0.05, 100, 0, 255),
    "int8": (0.05, -10, -128, 127),
    "uint8_clamped": (0.125, 7, 5, 200),
    "int4": (0.5, 0, -8, 7),
    "uint16": (0.001, 2048, 0, 4095),
    "int16": (0.0003, 3, -32768, 32767),
}


def ranges(bits: int, signed: bool, narrow: bool) -> tuple[int, int]:
    if signed:
        return -(2 ** (bits - 1)) + int(narrow), 2 ** (bits - 1) - 1
    return int(narrow), 2**bits - 1


def ref_quantize(x, qp: lowp.QParams) -> np.ndarray:
    # Huge |x| over a small scale overflows to inf in the oracle's division.
    with np.errstate(over="ignore"):
        return reference.quantize(x, qp.scale, qp.zero_point, qp.qmin, qp.qmax, qp.axis)


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


@contextlib.contextmanager
def on_path(name: str):
    saved = lowp.get_path()
    lowp.set_path(name)
    try:
        yield
    finally:
        lowp.set_path(saved)


def data_with_ties(rng, n: int, dtype, scale: float, qmin: int, qmax: int, zp) -> np.ndarray:
    """Values inside the range, beyond it, and exactly half-way between steps."""
    lo = (qmin - np.max(zp) - 20) * scale
    hi = (qmax - np.min(zp) + 20) * scale
    x = rng.uniform(lo, hi, n)
    halves = (rng.integers(qmin, qmax + 1, n) - np.asarray(zp) + 0.5) * scale
    pick = rng.random(n) < 0.3
    return np.where(pick, halves, x).astype(dtype)


# --- choose_qparams -----------------------------------------------------------


def test_classic_example(each_path):
    x = np.array([0.21535037, 1.2962357, -1.0161772], dtype=np.float32)
    qp = lowp.choose_qparams(x, signed=True, symmetric=True, narrow_range=True)
    assert (qp.qmin, qp.qmax, qp.zero_point, qp.axis) == (-127, 127, 0, None)
    assert qp.dtype == np.int8
    assert qp.scale.dtype == np.float32
    assert qp.scale == np.float32(np.max(np.abs(x.astype(np.float64))) / 127)
    q = lowp.quantize(x, qp)
    assert_same(q, np.array([21, 127, -100], dtype=np.int8))


@pytest.mark.parametrize("bits", [2, 3, 4, 7, 8, 9, 12, 15, 16])
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("narrow", [False, True])
def test_integer_ranges(bits, signed, narrow):
    qp = lowp.choose_qparams(np.array([-1.0, 2.0]), bits=bits, signed=signed, narrow_range=narrow)
    assert (qp.qmin, qp.qmax) == ranges(bits, signed, narrow)
    assert qp.dtype == reference.quant_dtype(qp.qmin, qp.qmax)
    assert qp.dtype.itemsize == (1 if bits <= 8 else 2)
    assert np.issubdtype(qp.dtype, np.signedinteger) == signed


@pytest.mark.parametrize("bits", [2, 8, 16])
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("narrow", [False, True])
def test_symmetric_zero_point_and_scale(bits, signed, narrow):
    x = np.array([-3.0, 1.0, 0.5])
    qp = lowp.choose_qparams(x, bits=bits, signed=signed, symmetric=True, narrow_range=narrow)
    assert qp.zero_point == (0 if signed else 2 ** (bits - 1))
    assert qp.scale == np.float32(3.0 / (qp.qmax - qp.zero_point))


def test_asymmetric_formula():
    x = np.array([-0.3, 0.9, 2.2], dtype=np.float32)
    qp = lowp.choose_qparams(x)
    rmin, rmax = float(x.min()), float(x.max())
    assert qp.scale == np.float32((rmax - rmin) / 255)
    assert qp.zero_point == round(0 - rmin / float(qp.scale))


@pytest.mark.parametrize(
    ("x", "zero_point"),
    [
        # bits=2 unsigned: scale (rmax - rmin) / 3 == 1.0 exactly, zero point
        # qmin - rmin / scale lands exactly on a half.
        ([-0.5, 2.5], 0),  # 0.5 -> 0 (half to even; half away would give 1)
        ([-1.5, 1.5], 2),  # 1.5 -> 2
        ([-2.5, 0.5], 2),  # 2.5 -> 2
    ],
)
def test_zero_point_rounds_half_to_even(x, zero_point):
    qp = lowp.choose_qparams(np.array(x), bits=2)
    assert qp.scale == 1.0
    assert qp.zero_point == zero_point


@pytest.mark.parametrize("signed", [False, True])
def test_range_always_contains_zero(signed):
    qmin, qmax = ranges(8, signed, False)
    positive = lowp.choose_qparams(np.array([2.0, 5.1]), signed=signed)
    assert positive.zero_point == qmin
    assert positive.scale == np.float32(5.1 / 255)
    negative = lowp.choose_qparams(np.array([-2.0, -5.1]), signed=signed)
    assert negative.zero_point == qmax
    assert negative.scale == np.float32(5.1 / 255)


@pytest.mark.parametrize("symmetric", [False, True])
def test_all_zero_and_empty_give_scale_one(symmetric):
    for x in (np.zeros(5, np.float32), np.zeros(0), np.zeros((3, 0))):
        qp = lowp.choose_qparams(x, symmetric=symmetric)
        assert qp.scale == 1.0
    qp = lowp.choose_qparams(
        np.array([[0.0, 0.0], [1.0, -2.0], [0.0, 0.0]]), symmetric=symmetric, axis=0
    )
    assert qp.scale[0] == 1.0 and qp.scale[2] == 1.0 and qp.scale[1] != 1.0
    assert lowp.choose_qparams(np.zeros((0, 4)), axis=1).scale.tolist() == [1.0] * 4


def test_subnormal_data_gets_a_normal_scale():
    x = np.array([0.0, 3e-44, -1e-45], dtype=np.float32)
    qp = lowp.choose_qparams(x)
    assert qp.scale == np.finfo(np.float32).tiny
    assert np.all(lowp.quantize(x, qp) == qp.zero_point)


def test_per_channel_reduces_over_other_axes():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    for axis in (0, 1, 2, -1):
        qp = lowp.choose_qparams(x, axis=axis, bits=8, signed=True)
        ax = axis % 3
        assert qp.axis == ax
        moved = np.moveaxis(x, ax, 0).reshape(x.shape[ax], -1)
        for c in range(x.shape[ax]):
            one = lowp.choose_qparams(moved[c], bits=8, signed=True)
            assert qp.scale[c] == one.scale
            assert qp.zero_point[c] == one.zero_point


def test_integer_data_is_accepted():
    qi = lowp.choose_qparams(np.array([-3, 7], dtype=np.int16))
    qf = lowp.choose_qparams(np.array([-3.0, 7.0]))
    assert qi == qf
    assert lowp.choose_qparams([1, 2, 3]) == lowp.choose_qparams(np.array([1.0, 2.0, 3.0]))


def _coverage_check(values: np.ndarray, qp: lowp.QParams, rmin: float, rmax: float) -> None:
    """Every value of [rmin, rmax] comes back within scale / 2, 0 exactly."""
    q = lowp.quantize(values, qp)
    back = lowp.dequantize(q, qp).astype(np.float64)
    err = np.abs(back - values.astype(np.float64))
    scale = float(qp.scale)
    # Half a step, plus float32 rounding: of the scale (the grid's extent),
    # of x / scale (float32 data) and of the float32 product in dequantize.
    slack = 1e-5 * scale + 4 * F32_EPS * max(-rmin, rmax)
    assert np.all(err <= scale / 2 + slack), (values[err.argmax()], err.max(), scale)
    zero = lowp.quantize(np.zeros(1, values.dtype), qp)
    assert lowp.dequantize(zero, qp)[0] == 0.0


@settings(deadline=None, max_examples=150)
@given(
    data=st.data(),
    dtype=st.sampled_from([np.float32, np.float64]),
    bits=st.integers(2, 16),
    signed=st.booleans(),
    narrow=st.booleans(),
    symmetric=st.booleans(),
    per_channel=st.booleans(),
)
def test_values_in_range_round_trip_within_half_a_step(
    data, dtype, bits, signed, narrow, symmetric, per_channel
):
    elements = st.floats(-(2.0**100), 2.0**100, width=32)
    x = data.draw(
        hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5), elements=elements)
    )
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1)) if per_channel else None
    qp = lowp.choose_qparams(
        x, bits=bits, signed=signed, symmetric=symmetric, narrow_range=narrow, axis=axis
    )
    qmin, qmax = ranges(bits, signed, narrow)
    assert (qp.qmin, qp.qmax) == (qmin, qmax)
    channels = [x] if axis is None else list(np.moveaxis(x, axis, 0))
    scales = np.atleast_1d(qp.scale)
    zero_points = np.atleast_1d(qp.zero_point)
    assert scales.size == len(channels)
    for c, chan in enumerate(channels):
        rmin = min(float(chan.min(initial=0.0)), 0.0)
        rmax = max(float(chan.max(initial=0.0)), 0.0)
        one = lowp.QParams(scales[c], int(zero_points[c]), qmin, qmax)
        if not symmetric and rmin != rmax:
            scale = np.float32((rmax - rmin) / (qmax - qmin))
            assert one.scale == max(scale, np.finfo(np.float32).tiny)
            expected_zp = np.clip(np.rint(qmin - rmin / float(one.scale)), qmin, qmax)
            assert one.zero_point == expected_zp
        probe = np.concatenate([chan.ravel(), np.linspace(rmin, rmax, 65), [rmin, rmax, 0.0]])
        _coverage_check(probe.astype(dtype), one, rmin, rmax)
    # The per-channel parameters applied along the axis agree with one channel at a time.
    if axis is not None:
        whole = lowp.quantize(x, qp)
        for c, chan in enumerate(channels):
            one = lowp.QParams(scales[c], int(zero_points[c]), qmin, qmax)
            assert_same(np.moveaxis(whole, axis, 0)[c], lowp.quantize(chan, one))


# --- quantize: parity with the reference on every path --------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_quantize_matches_reference_odd_sizes(each_path, dtype, kind):
    qp = lowp.QParams(*KINDS[kind])
    rng = np.random.default_rng(sum(map(ord, kind)))
    for n in range(1, 41):
        x = data_with_ties(rng, n, dtype, float(qp.scale), qp.qmin, qp.qmax, qp.zero_point)
        assert_same(lowp.quantize(x, qp), ref_quantize(x, qp))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_quantize_matches_reference_large(each_path, dtype, kind):
    qp = lowp.QParams(*KINDS[kind])
    rng = np.random.default_rng(7)
    n = 1_000_003
    x = data_with_ties(rng, n, dtype, float(qp.scale), qp.qmin, qp.qmax, qp.zero_point)
    assert_same(lowp.quantize(x, qp), ref_quantize(x, qp))


@pytest.mark.parametrize(
    ("dtype", "kind", "per_channel", "compiled"),
    [
        (np.float32, "uint8", False, True),
        (np.float32, "int8", False, True),
        (np.float32, "int4", False, True),
        (np.float32, "uint16", False, False),
        (np.float64, "uint8", False, False),
        (np.float32, "uint8", True, False),
    ],
)
def test_quantize_uses_the_compiled_kernel_for_float32_8_bit(
    monkeypatch, dtype, kind, per_channel, compiled
):
    calls = []
    kernel = quant_module._core.quantize_f32

    def counting(*args):
        calls.append(args)
        return kernel(*args)

    monkeypatch.setattr(quant_module._core, "quantize_f32", counting)
    scale, zero_point, qmin, qmax = KINDS[kind]
    axis = 0 if per_channel else None
    qp = lowp.QParams([scale] * 3 if per_channel else scale, zero_point, qmin, qmax, axis=axis)
    x = np.linspace(-5, 5, 3 * 41, dtype=dtype).reshape(3, 41)
    assert_same(lowp.quantize(x, qp), ref_quantize(x, qp))
    assert len(calls) == int(compiled)


def test_quantize_same_for_every_thread_count(threads):
    qp = lowp.QParams(*KINDS["uint8"])
    x = data_with_ties(np.random.default_rng(3), 300_001, np.float32, 0.05, 0, 255, 100)
    expected = ref_quantize(x, qp)
    for n in (1, 2, 3, 8):
        lowp.set_num_threads(n)
        assert_same(lowp.quantize(x, qp), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("shape", "axis"), [((4, 7), 0), ((3, 5, 6), 1), ((2, 9), -1), ((33,), 0), ((5, 1, 3), 2)]
)
@pytest.mark.parametrize("signed", [False, True])
def test_quantize_per_channel_matches_reference(dtype, shape, axis, signed):
    rng = np.random.default_rng(11)
    channels = shape[axis]
    qmin, qmax = ranges(8, signed, False)
    scale = rng.uniform(0.01, 0.2, channels)
    zero_point = rng.integers(qmin, qmax + 1, channels)
    qp = lowp.QParams(scale, zero_point, qmin, qmax, axis=axis)
    x = rng.uniform(-40, 40, shape).astype(dtype)
    expected = ref_quantize(x, qp)
    assert_same(lowp.quantize(x, qp), expected)
    # The same values, one channel at a time, as per-tensor parameters.
    for c in range(channels):
        one = lowp.QParams(qp.scale[c], int(qp.zero_point[c]), qmin, qmax)
        assert_same(np.take(expected, c, axis=axis), lowp.quantize(np.take(x, c, axis=axis), one))


def test_quantize_per_channel_scalar_zero_point_broadcasts():
    qp = lowp.QParams([0.5, 0.25], 3, 0, 255, axis=1)
    assert qp.zero_point.tolist() == [3, 3]
    x = np.array([[1.0, 1.0], [-1.0, 2.0]], dtype=np.float32)
    assert_same(lowp.quantize(x, qp), np.array([[5, 7], [1, 11]], dtype=np.uint8))


@settings(deadline=None, max_examples=100)
@given(
    data=st.data(),
    dtype=st.sampled_from([np.float32, np.float64]),
    bits=st.integers(2, 16),
    signed=st.booleans(),
    narrow=st.booleans(),
    per_channel=st.booleans(),
)
def test_quantize_matches_reference_random(data, dtype, bits, signed, narrow, per_channel):
    qmin, qmax = ranges(bits, signed, narrow)
    x = data.draw(
        hnp.arrays(
            dtype,
            hnp.array_shapes(min_dims=1, max_dims=3, max_side=40),
            elements=st.floats(allow_nan=False, width=32),
        )
    )
    axis = data.draw(st.integers(0, x.ndim - 1)) if per_channel else None
    channels = () if axis is None else (x.shape[axis],)
    scale = data.draw(
        hnp.arrays(np.float32, channels, elements=st.floats(2.0**-20, 2.0**20, width=32))
    )
    zero_point = data.draw(hnp.arrays(np.int64, channels, elements=st.integers(qmin, qmax)))
    qp = lowp.QParams(scale, zero_point if channels else int(zero_point), qmin, qmax, axis=axis)
    expected = ref_quantize(x, qp)
    for path in PATHS:
        with on_path(path):
            assert_same(lowp.quantize(x, qp), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_rounds_half_to_even(each_path, dtype):
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, 0.49999997], dtype=dtype)
    qp = lowp.QParams(1.0, 0, -128, 127)
    assert_same(lowp.quantize(x, qp), np.array([0, 2, 2, 0, -2, -2, 4, 0], dtype=np.int8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_quantize_saturates(each_path, dtype, kind):
    qp = lowp.QParams(*KINDS[kind])
    big = float(np.finfo(dtype).max)
    x = np.array([np.inf, -np.inf, 1e30, -1e30, big, -big, 1e6, -1e6] * 5, dtype=dtype)
    expected = np.array([qp.qmax, qp.qmin] * 20, dtype=qp.dtype)
    assert_same(lowp.quantize(x, qp), expected)
    assert_same(expected, ref_quantize(x, qp))


def test_quantize_saturates_tiny_scale(each_path):
    qp = lowp.QParams(np.finfo(np.float32).smallest_subnormal, 0, 0, 255)
    x = np.array([1e30, -1e30, 3.0, -3.0, 0.0], dtype=np.float32)
    assert_same(lowp.quantize(x, qp), np.array([255, 0, 255, 0, 0], dtype=np.uint8))
    assert_same(lowp.quantize(x.astype(np.float64), qp), ref_quantize(x.astype(np.float64), qp))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["uint8", "int8", "uint16"])
def test_quantize_nan_raises(each_path, dtype, kind):
    qp = lowp.QParams(*KINDS[kind])
    for n, where in ((1, 0), (37, 0), (37, 31), (37, 32), (37, 36), (100, 64)):
        x = np.zeros(n, dtype=dtype)
        x[where] = np.nan
        with pytest.raises(ValueError, match="x"):
            lowp.quantize(x, qp)


def test_quantize_nan_raises_per_channel():
    qp = lowp.QParams([1.0, 2.0], 0, 0, 255, axis=0)
    x = np.array([[1.0, 2.0], [np.nan, 0.0]], dtype=np.float32)
    with pytest.raises(ValueError, match="x"):
        lowp.quantize(x, qp)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("per_channel", [False, True])
def test_quantize_any_layout(each_path, dtype, per_channel):
    rng = np.random.default_rng(5)
    base = rng.uniform(-10, 10, (37, 24)).astype(dtype)
    if per_channel:
        qp = lowp.QParams(rng.uniform(0.01, 0.1, 24), 128, 0, 255, axis=1)
    else:
        qp = lowp.QParams(0.07, 128, 0, 255)
    fortran = np.asfortranarray(base)
    assert not fortran.flags.c_contiguous
    for x in (fortran, base[::2], base[::-1], base[:, ::-1][::3], np.asfortranarray(base)[1:]):
        assert_same(lowp.quantize(x, qp), lowp.quantize(np.ascontiguousarray(x), qp))
        assert_same(lowp.quantize(x, qp), ref_quantize(np.ascontiguousarray(x), qp))
    swapped = base.astype(base.dtype.newbyteorder(">"))
    assert_same(lowp.quantize(swapped, qp), lowp.quantize(base, qp))


def test_quantize_keeps_shape_and_handles_empty(each_path):
    qp = lowp.QParams(0.5, 10, 0, 255)
    assert_same(lowp.quantize(np.float32(1.0), qp), np.array(12, dtype=np.uint8))
    assert_same(lowp.quantize(np.zeros((2, 0, 3), np.float32), qp), np.zeros((2, 0, 3), np.uint8))
    assert_same(lowp.quantize(np.zeros((0,)), qp), np.zeros((0,), np.uint8))


def test_quantize_integer_and_half_input():
    qp = lowp.QParams(0.5, 10, 0, 255)
    for x in (np.array([1, -3, 200], dtype=np.int32), np.array([1.0, -3.0, 200.0], np.float16)):
        assert_same(lowp.quantize(x, qp), np.array([12, 4, 255], dtype=np.uint8))
        assert_same(lowp.quantize(x, qp), ref_quantize(x, qp))


# --- dequantize and quant_error ---------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_dequantize_matches_reference(kind):
    qp = lowp.QParams(*KINDS[kind])
    q = np.random.default_rng(2).integers(qp.qmin, qp.qmax + 1, (7, 9)).astype(qp.dtype)
    expected = reference.dequantize(q, qp.scale, qp.zero_point)
    out = lowp.dequantize(q, qp)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)
    # Any integer dtype holding the values gives the same.
    np.testing.assert_array_equal(lowp.dequantize(q.astype(np.int64), qp), expected)
    np.testing.assert_array_equal(
        lowp.dequantize(np.asfortranarray(q)[:, ::2], qp), expected[:, ::2]
    )


def test_dequantize_per_channel():
    qp = lowp.QParams([0.5, 0.25, 2.0], [1, 2, 3], -128, 127, axis=0)
    q = np.array([[1, 3], [2, -2], [3, 127]], dtype=np.int8)
    expected = np.array([[0.0, 1.0], [0.0, -1.0], [0.0, 248.0]], dtype=np.float32)
    np.testing.assert_array_equal(lowp.dequantize(q, qp), expected)
    np.testing.assert_array_equal(reference.dequantize(q, qp.scale, qp.zero_point, 0), expected)


def test_dequantize_refuses_float_and_out_of_range():
    qp = lowp.QParams(0.5, 3, 0, 255)
    for bad in (np.array([1.0, 2.0]), np.array([True])):
        with pytest.raises(TypeError, match="q"):
            lowp.dequantize(bad, qp)
    with pytest.raises(ValueError, match="q"):
        lowp.dequantize(np.array([-1, 3]), qp)
    with pytest.raises(ValueError, match="q"):
        lowp.dequantize(np.array([256], dtype=np.uint64), qp)
    signed = lowp.QParams(0.5, 0, -8, 7)
    with pytest.raises(ValueError, match="q"):
        lowp.dequantize(np.array([8], dtype=np.int8), signed)


def test_quant_error_values():
    x = np.array([0.21535037, 1.2962357, -1.0161772], dtype=np.float32)
    qp = lowp.choose_qparams(x, signed=True, symmetric=True, narrow_range=True)
    err = lowp.dequantize(lowp.quantize(x, qp), qp).astype(np.float64) - x.astype(np.float64)
    result = lowp.quant_error(x, qp)
    assert isinstance(result, lowp.QuantError)
    assert result.mse == pytest.approx(np.mean(err**2), rel=1e-12)
    assert result.max_abs == np.max(np.abs(err))
    expected_db = 10 * math.log10(np.sum(x.astype(np.float64) ** 2) / np.sum(err**2))
    assert result.sqnr_db == pytest.approx(expected_db, rel=1e-12)
    assert tuple(result) == (result.mse, result.sqnr_db, result.max_abs)
    assert 0 < result.max_abs <= float(qp.scale) / 2
    assert result.sqnr_db > 40


def test_quant_error_exact_and_zero():
    qp = lowp.QParams(0.25, 0, -128, 127)
    exact = lowp.quant_error(np.array([0.25, -1.0, 0.0, 31.75]), qp)
    assert exact == lowp.QuantError(0.0, math.inf, 0.0)
    assert lowp.quant_error(np.zeros(6, np.float32), qp) == lowp.QuantError(0.0, math.inf, 0.0)
    assert lowp.quant_error(np.zeros(0), qp) == lowp.QuantError(0.0, math.inf, 0.0)


def test_quant_error_huge_values_do_not_overflow():
    # Saturated far beyond float32: the error is ~x itself, the sums of
    # squares would overflow float64, the ratio does not.
    x = np.array([1e200, -3e199, 7e198])
    qp = lowp.QParams(1e34, 0, -32768, 32767)
    result = lowp.quant_error(x, qp)
    assert result.mse == math.inf
    assert result.max_abs == pytest.approx(1e200)
    assert math.isfinite(result.sqnr_db) and abs(result.sqnr_db) < 1e-3


def test_quant_error_refuses_non_finite():
    qp = lowp.QParams(0.25, 0, -128, 127)
    for bad in (np.inf, np.nan):
        with pytest.raises(ValueError, match="x"):
            lowp.quant_error(np.array([1.0, bad]), qp)


# --- QParams as a value -------------------------------------------------------------


def test_qparams_is_an_immutable_value():
    qp = lowp.QParams(0.1, 3, 0, 255)
    assert qp.scale == np.float32(0.1) and isinstance(qp.scale, np.float32)
    assert isinstance(qp.zero_point, int) and qp.per_channel is False
    with pytest.raises(AttributeError):
        qp.scale = 0.2  # type: ignore[misc]
    assert qp == lowp.QParams(np.float32(0.1), np.int64(3), 0, 255)
    assert qp != lowp.QParams(0.1, 4, 0, 255)
    assert len({qp, lowp.QParams(0.1, 3, 0, 255)}) == 1
    assert pickle.loads(pickle.dumps(qp)) == qp
    assert repr(qp) == "QParams(scale=0.1, zero_point=3, qmin=0, qmax=255)"

    pc = lowp.QParams(np.array([0.5, 0.25]), np.array([1, 2]), -128, 127, axis=0)
    assert pc.per_channel and pc.scale.dtype == np.float32 and pc.zero_point.dtype == np.int32
    with pytest.raises(ValueError):
        pc.scale[0] = 1.0
    assert pickle.loads(pickle.dumps(pc)) == pc
    assert hash(pc) == hash(lowp.QParams([0.5, 0.25], [1, 2], -128, 127, axis=0))
    assert "axis=0" in repr(pc) and "0.25" in repr(pc)


def test_qparams_does_not_alias_the_caller_arrays():
    scale = np.array([0.5, 0.25], dtype=np.float32)
    zero_point = np.array([1, 2], dtype=np.int32)
    qp = lowp.QParams(scale, zero_point, 0, 255, axis=0)
    scale[0] = 9.0
    zero_point[0] = 9
    assert qp.scale[0] == 0.5 and qp.zero_point[0] == 1


def test_qparams_accepts_16_bit_ranges():
    assert lowp.QParams(1.0, 0, -32768, 32767).dtype == np.int16
    assert lowp.QParams(1.0, 65535, 0, 65535).dtype == np.uint16
    assert lowp.QParams(1.0, 0, 0, 1).dtype == np.uint8
    assert lowp.QParams(1.0, -200, -200, 200).dtype == np.int16


# --- bad input: one check each -------------------------------------------------------


@pytest.mark.parametrize("scale", [0.0, -0.5, -np.inf])
def test_bad_scale_not_positive(scale):
    with pytest.raises(ValueError, match="scale"):
        lowp.QParams(scale, 0, 0, 255)


def test_bad_scale_nan():
    with pytest.raises(ValueError, match="scale"):
        lowp.QParams(np.nan, 0, 0, 255)


def test_bad_scale_inf():
    with pytest.raises(ValueError, match="scale"):
        lowp.QParams(np.inf, 0, 0, 255)


@pytest.mark.parametrize("scale", [1e39, 1e-50])
def test_bad_scale_not_a_float32(scale):
    with pytest.raises(ValueError, match="scale"):
        lowp.QParams(scale, 0, 0, 255)


def test_bad_scale_per_channel_value():
    with pytest.raises(ValueError, match="scale"):
        lowp.QParams([0.5, 0.0], 0, 0, 255, axis=0)


@pytest.mark.parametrize("scale", [True, 1j, "0.5", None])
def test_bad_scale_type(scale):
    with pytest.raises(TypeError, match="scale"):
        lowp.QParams(scale, 0, 0, 255)


@pytest.mark.parametrize(("zero_point", "qmin", "qmax"), [(-1, 0, 255), (256, 0, 255), (5, 6, 9)])
def test_bad_zero_point_outside_range(zero_point, qmin, qmax):
    with pytest.raises(ValueError, match="zero_point"):
        lowp.QParams(0.5, zero_point, qmin, qmax)


def test_bad_zero_point_per_channel_outside_range():
    with pytest.raises(ValueError, match="zero_point"):
        lowp.QParams([0.5, 0.5], [0, 128], -128, 127, axis=0)


@pytest.mark.parametrize("zero_point", [3.0, np.float32(3), np.array([1.0]), True])
def test_bad_zero_point_type(zero_point):
    with pytest.raises(TypeError, match="zero_point"):
        lowp.QParams(0.5, zero_point, 0, 255)


@pytest.mark.parametrize(("qmin", "qmax"), [(5, 5), (10, 3)])
def test_bad_qmin_not_below_qmax(qmin, qmax):
    with pytest.raises(ValueError, match="qmin"):
        lowp.QParams(0.5, 5, qmin, qmax)


@pytest.mark.parametrize(
    ("qmin", "qmax", "name"),
    [(-32769, 0, "qmin"), (0, 65536, "qmax"), (-1, 32768, "qmin/qmax"), (-40000, 5, "qmin")],
)
def test_bad_qmin_qmax_beyond_16_bits(qmin, qmax, name):
    with pytest.raises(ValueError, match=name):
        lowp.QParams(0.5, 0, qmin, qmax)


@pytest.mark.parametrize(("qmin", "qmax", "name"), [(0.0, 255, "qmin"), (0, 255.0, "qmax")])
def test_bad_qmin_qmax_type(qmin, qmax, name):
    with pytest.raises(TypeError, match=name):
        lowp.QParams(0.5, 0, qmin, qmax)


@pytest.mark.parametrize("bits", [0, 1, 17, 32, -8])
def test_bad_bits_outside_2_to_16(bits):
    with pytest.raises(ValueError, match="bits"):
        lowp.choose_qparams(np.ones(3), bits=bits)


@pytest.mark.parametrize("bits", [8.0, True])
def test_bad_bits_type(bits):
    with pytest.raises(TypeError, match="bits"):
        lowp.choose_qparams(np.ones(3), bits=bits)


@pytest.mark.parametrize("flag", ["signed", "symmetric", "narrow_range"])
def test_bad_flag_type(flag):
    with pytest.raises(TypeError, match=flag):
        lowp.choose_qparams(np.ones(3), **{flag: "yes"})


@pytest.mark.parametrize("axis", [2, -3])
def test_bad_axis_choose_qparams(axis):
    with pytest.raises(ValueError, match="axis"):
        lowp.choose_qparams(np.ones((2, 3)), axis=axis)


def test_bad_axis_type():
    with pytest.raises(TypeError, match="axis"):
        lowp.choose_qparams(np.ones((2, 3)), axis=1.0)
    with pytest.raises(TypeError, match="axis"):
        lowp.QParams([0.5], 0, 0, 255, axis=True)


def test_bad_axis_quantize():
    qp = lowp.QParams([0.5, 0.5, 0.5], 0, 0, 255, axis=2)
    with pytest.raises(ValueError, match="axis"):
        lowp.quantize(np.ones((3, 3), np.float32), qp)
    with pytest.raises(ValueError, match="axis"):
        lowp.dequantize(np.ones((3, 3), np.uint8), qp)
    with pytest.raises(ValueError, match="axis"):
        lowp.quantize(np.float32(1.0), lowp.QParams([0.5], 0, 0, 255, axis=0))


def test_bad_per_channel_length_in_quantize():
    qp = lowp.QParams([0.5, 0.25, 0.125], 0, 0, 255, axis=1)
    with pytest.raises(ValueError, match="axis 1"):
        lowp.quantize(np.ones((3, 4), np.float32), qp)
    with pytest.raises(ValueError, match="axis 1"):
        lowp.dequantize(np.ones((3, 4), np.uint8), qp)


def test_bad_per_channel_zero_point_length():
    with pytest.raises(ValueError, match="zero_point"):
        lowp.QParams([0.5, 0.25, 0.125], [0, 1], 0, 255, axis=0)


def test_bad_per_channel_scale_shape():
    with pytest.raises(ValueError, match="scale"):
        lowp.QParams(0.5, 0, 0, 255, axis=0)
    with pytest.raises(ValueError, match="scale"):
        lowp.QParams([[0.5, 0.25]], 0, 0, 255, axis=0)
    with pytest.raises(ValueError, match="scale"):
        lowp.QParams([0.5, 0.25], 0, 0, 255)
    with pytest.raises(ValueError, match="zero_point"):
        lowp.QParams(0.5, [0, 1], 0, 255)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_bad_choose_qparams_non_finite_x(bad):
    with pytest.raises(ValueError, match="x"):
        lowp.choose_qparams(np.array([1.0, bad], dtype=np.float32))


def test_bad_choose_qparams_range_too_wide():
    with pytest.raises(ValueError, match="x"):
        lowp.choose_qparams(np.array([-1e300, 1e300]))


@pytest.mark.parametrize(
    "x",
    [
        np.array([True, False]),
        np.array([1 + 2j]),
        np.array([1.0, None]),
        np.array([1, 2], dtype="m8[s]"),
        "abc",
    ],
)
def test_bad_x_type(x):
    with pytest.raises(TypeError, match="x"):
        lowp.choose_qparams(x)
    with pytest.raises(TypeError, match="x"):
        lowp.quantize(x, lowp.QParams(0.5, 0, 0, 255))


def test_bad_qparams_argument():
    with pytest.raises(TypeError, match="qparams"):
        lowp.quantize(np.ones(3, np.float32), (0.5, 0, 0, 255))
    with pytest.raises(TypeError, match="qparams"):
        lowp.dequantize(np.ones(3, np.uint8), None)
