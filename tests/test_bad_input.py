"""DESIGN.md section 4: every bad input raises TypeError or ValueError naming
the argument; nothing crashes and nothing returns a wrong answer."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import lowp

ACC = np.arange(12, dtype=np.int32).reshape(3, 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int16, np.uint32, bool])
def test_requantize_refuses_non_int32_accumulators(dtype):
    with pytest.raises(TypeError, match="acc must be an int32 array"):
        lowp.requantize(ACC.astype(dtype), 2**30, 0, 0)


def test_requantize_refuses_lists_of_python_ints():
    with pytest.raises(TypeError, match="acc"):
        lowp.requantize([1, 2, 3], 2**30, 0, 0)


@pytest.mark.parametrize("multiplier", [-1, 2**31, [2**30, 2**30, 2**30, -5]])
def test_multiplier_out_of_range(multiplier):
    with pytest.raises(ValueError, match="m0 must be in"):
        lowp.requantize(ACC, multiplier, 0, 0)
    with pytest.raises(ValueError, match="m0 must be in"):
        lowp.multiply_by_quantized_multiplier(ACC, multiplier, 0)
    with pytest.raises(ValueError, match="multiplier must be in"):
        lowp.Requant(multiplier, 0, 0)


def test_multiplier_must_be_integer():
    with pytest.raises(TypeError, match="m0"):
        lowp.requantize(ACC, 0.5, 0, 0)


@pytest.mark.parametrize("shift", [-32, 31, 100, [0, 0, 0, 31]])
def test_shift_out_of_range(shift):
    with pytest.raises(ValueError, match="shift must be in"):
        lowp.requantize(ACC, 2**30, shift, 0)
    with pytest.raises(ValueError, match="shift must be in"):
        lowp.Requant(2**30, shift, 0)


@pytest.mark.parametrize(
    ("qmin", "qmax", "name"), [(10, 5, "qmin must be <= qmax"), (-1, 255, "qmin"), (0, 256, "qmax")]
)
def test_bad_clamp(qmin, qmax, name):
    with pytest.raises(ValueError, match=name):
        lowp.requantize(ACC, 2**30, 0, 0, qmin=qmin, qmax=qmax)
    with pytest.raises(ValueError, match=name):
        lowp.Requant(2**30, 0, 0, qmin, qmax)


@pytest.mark.parametrize("zero_point", [-1, 256])
def test_bad_zero_point(zero_point):
    with pytest.raises(ValueError, match="zero_point"):
        lowp.requantize(ACC, 2**30, 0, zero_point)


def test_float_zero_point():
    with pytest.raises(TypeError, match="zero_point"):
        lowp.requantize(ACC, 2**30, 0, 1.5)


@pytest.mark.parametrize("n", [3, 5, 1000])
def test_per_channel_wrong_length(n):
    m = np.full(n, 2**30, dtype=np.int32)
    s = np.zeros(n, dtype=np.int32)
    with pytest.raises(ValueError, match="last axis of acc has 4"):
        lowp.requantize(ACC, m, s, 0)
    with pytest.raises(ValueError, match="last axis"):
        lowp.multiply_by_quantized_multiplier(ACC, m, s)
    with pytest.raises(ValueError, match="channels"):
        lowp.Requant(m, s, 0)(ACC)


def test_multiplier_and_shift_lengths_differ():
    with pytest.raises(ValueError, match="has 3 values"):
        lowp.requantize(ACC, [2**30] * 4, [0, 0, 0], 0)


def test_two_dimensional_multiplier():
    with pytest.raises(ValueError, match="1-D"):
        lowp.requantize(ACC, np.full((2, 2), 2**30), 0, 0)


@pytest.mark.parametrize("real", [math.nan, math.inf, -math.inf, -0.5, 2.0**30, 2.0**40])
def test_quantize_multiplier_bad_reals(real):
    with pytest.raises(ValueError, match="real"):
        lowp.quantize_multiplier(real)
    with pytest.raises(ValueError, match="real"):
        lowp.quantize_multiplier(np.array([0.5, real]))


def test_quantize_multiplier_rounding_up_to_2_30_is_refused():
    # The mantissa of this real rounds up to 1.0, which moves the shift to 31.
    with pytest.raises(ValueError, match="real"):
        lowp.quantize_multiplier(np.nextafter(2.0**30, 0))


def test_quantize_multiplier_wrong_type():
    with pytest.raises(TypeError, match="real"):
        lowp.quantize_multiplier("0.5")


def test_rdivpot_bad_exponent():
    for e in (-1, 32):
        with pytest.raises(ValueError, match="exponent"):
            lowp.rdivpot(np.int32(5), e)


def test_srdhm_operands():
    with pytest.raises(TypeError, match="a must be an int32"):
        lowp.srdhm(np.array([1.0]), 1)
    with pytest.raises(ValueError, match="b must be in"):
        lowp.srdhm(1, 2**31)
    with pytest.raises(ValueError, match="shape mismatch"):
        lowp.srdhm(np.zeros(3, np.int32), np.zeros(4, np.int32))


@pytest.mark.parametrize(
    ("out", "error", "match"),
    [
        (np.zeros((3, 4), np.int32), TypeError, "out must have dtype uint8"),
        (np.zeros((4, 3), np.uint8), ValueError, "out must have shape"),
        ([0] * 12, TypeError, "out must be a numpy array"),
    ],
)
def test_bad_out(out, error, match):
    with pytest.raises(error, match=match):
        lowp.requantize(ACC, 2**30, 0, 0, out=out)


def test_readonly_out():
    out = np.zeros((3, 4), np.uint8)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        lowp.requantize(ACC, 2**30, 0, 0, out=out)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"input_scale": 0.0}, ValueError, "input_scale"),
        ({"weight_scale": [0.1, -0.2]}, ValueError, "weight_scale"),
        ({"output_scale": math.nan}, ValueError, "output_scale"),
        ({"output_scale": math.inf}, ValueError, "output_scale"),
        ({"output_zero_point": 300}, ValueError, "output_zero_point"),
        ({"activation": "gelu"}, ValueError, "activation"),
        ({"input_scale": "x"}, TypeError, "input_scale"),
        ({"input_scale": 1e30, "output_scale": 1e-30}, ValueError, "real must be below"),
    ],
)
def test_requant_from_scales_bad(kwargs, error, match):
    args = {
        "input_scale": 0.5,
        "weight_scale": 0.25,
        "output_scale": 0.1,
        "output_zero_point": 0,
        **kwargs,
    }
    with pytest.raises(error, match=match):
        lowp.Requant.from_scales(**args)


# --- misuse found by a hostile test (the misuse issue) ----------------------


def test_requant_refuses_empty_tables():
    empty = np.array([], np.int32)
    with pytest.raises(ValueError, match="at least one value"):
        lowp.Requant(empty, empty, 0)


@pytest.mark.parametrize("field", ["multiplier", "shift", "zero_point", "qmin", "qmax"])
def test_requant_is_immutable(field):
    rq = lowp.Requant(2**30, -3, 10, 1, 250)
    with pytest.raises(AttributeError, match="immutable"):
        setattr(rq, field, 999)
    with pytest.raises(AttributeError, match="immutable"):
        delattr(rq, field)
    assert (rq.zero_point, rq.qmin, rq.qmax) == (10, 1, 250)
    with pytest.raises(ValueError):  # the tables themselves are read-only
        rq.multiplier[0] = 1


def test_requant_pickles_and_copies_through_its_checks():
    import copy
    import pickle

    rq = lowp.Requant(np.array([2**30, 2**30 + 5], np.int32), np.array([-3, 2], np.int32), 7)
    for other in (pickle.loads(pickle.dumps(rq)), copy.copy(rq), copy.deepcopy(rq)):
        assert other.multiplier.tolist() == rq.multiplier.tolist()
        assert other.shift.tolist() == rq.shift.tolist()
        assert (other.zero_point, other.qmin, other.qmax) == (7, 0, 255)


@pytest.mark.parametrize("requant", [None, lowp.Requant(2**30, -1, 100)])
def test_gemm_with_k_zero_is_the_bias(requant):
    a = np.zeros((2, 3, 0), np.uint8)
    b = np.zeros((0, 4), np.uint8)
    bias = np.array([5, -6, 7, 1000], np.int32)
    got = lowp.gemm(a, b, 3, 128, bias=bias, requant=requant)
    assert got.shape == (2, 3, 4)
    want = np.broadcast_to(bias, (2, 3, 4))
    if requant is not None:
        want = lowp.requantize(np.ascontiguousarray(want), 2**30, -1, 100)
    np.testing.assert_array_equal(got, want)
    zeros = lowp.Linear(b, 128, x_zero_point=3)(a)
    np.testing.assert_array_equal(zeros, np.zeros((2, 3, 4), np.int32))


def test_gemm_with_n_zero_is_empty():
    a = np.ones((3, 5), np.uint8)
    got = lowp.gemm(a, np.ones((5, 0), np.uint8), 3, 128)
    assert got.shape == (3, 0) and got.dtype == np.int32
    out = np.empty((3, 0), np.int32)
    assert lowp.Linear(np.ones((5, 0), np.uint8), 128, x_zero_point=3)(a, out=out) is out


@pytest.mark.parametrize("bad", ["bogus", 3.5, object()])
def test_layer_x_dtype_is_named(bad):
    w = np.ones((4, 3, 3, 2), np.uint8)
    with pytest.raises(TypeError, match="x_dtype must be uint8 or int8"):
        lowp.Conv2d(w, 128, x_zero_point=0, x_dtype=bad)
    with pytest.raises(TypeError, match="x_dtype must be uint8 or int8"):
        lowp.Linear(np.ones((3, 2), np.uint8), 128, x_zero_point=0, x_dtype=bad)


@pytest.mark.parametrize(
    "bad, error",
    [
        (None, TypeError),
        (5, TypeError),
        ((1, 8, 8.0, 2), TypeError),
        ((1, 8, "8", 2), TypeError),
        ((1, 8, True, 2), TypeError),
        ((1, 8, 8), ValueError),
    ],
)
def test_output_shape_refuses_non_integer_shapes(bad, error):
    layer = lowp.Conv2d(np.ones((4, 3, 3, 2), np.uint8), 128, x_zero_point=0)
    with pytest.raises(error, match="input_shape"):
        layer.output_shape(bad)
    assert layer.output_shape((1, 8, 8, 2)) == (1, 6, 6, 4)
    assert layer.output_shape(np.array([1, 8, 8, 2])) == (1, 6, 6, 4)


# Outputs (or copies of inputs) larger than the machine's memory are refused
# before anything is allocated, naming the argument that makes them so large.
_X = np.zeros((1, 8, 8, 4), np.uint8)
_W = np.zeros((4, 3, 3, 4), np.uint8)
_MEMORY = "more than this machine's memory"


def test_conv_padding_too_large_for_memory():
    with pytest.raises(ValueError, match=rf"padding \(0, 1000000000, 0, 1000000000\).*{_MEMORY}"):
        lowp.conv2d(_X, _W, 0, 0, padding=(0, 10**9, 0, 10**9))
    layer = lowp.Conv2d(_W, 0, x_zero_point=0, padding=(10**9, 0, 10**9, 0))
    with pytest.raises(ValueError, match=rf"padding .* an output of shape \(1, .*{_MEMORY}"):
        layer(_X)


def test_conv_transpose_stride_too_large_for_memory():
    with pytest.raises(ValueError, match=rf"stride \(1000000, 1000000\).*{_MEMORY}"):
        lowp.conv_transpose2d(_X, _W, 0, 0, stride=10**6)
    layer = lowp.ConvTranspose2d(_W, 0, x_zero_point=0, stride=(10**6, 10**6))
    # The shape itself is still answered; running it is refused.
    assert layer.output_shape((1, 8, 8, 4)) == (1, 7 * 10**6 + 3, 7 * 10**6 + 3, 4)
    with pytest.raises(ValueError, match=rf"stride .*{_MEMORY}"):
        layer(_X)


def test_gemm_rows_of_a_broadcast_view_too_large_for_memory():
    a = np.broadcast_to(np.zeros(16, np.uint8), (10**12, 16))
    b = np.zeros((16, 16), np.uint8)
    with pytest.raises(ValueError, match=rf"a's 1000000000000 rows .* N=16 gives .*{_MEMORY}"):
        lowp.gemm(a, b, 0, 0)
    with pytest.raises(ValueError, match=rf"x's 1000000000000 rows .*{_MEMORY}"):
        lowp.Linear(b, 0, x_zero_point=0)(a)
    with pytest.raises(ValueError, match=rf"a \(int8, shape .*\) needs a uint8 copy .*{_MEMORY}"):
        lowp.gemm(a.view(np.int8), b.view(np.int8), 0, 0)


def test_copies_of_broadcast_views_too_large_for_memory(monkeypatch):
    acc = np.broadcast_to(np.int32(1), (10**7, 10**7))
    with pytest.raises(
        ValueError, match=rf"acc \(a non-contiguous view .* needs a copy .*{_MEMORY}"
    ):
        lowp.requantize(acc, 2**30, 0, 0)
    with pytest.raises(ValueError, match=rf"x .*{_MEMORY}"):
        lowp.multiply_by_quantized_multiplier(acc, 2**30, 0)
    col, row = np.zeros((10**7, 1), np.int32), np.zeros((1, 10**7), np.int32)
    with pytest.raises(ValueError, match=rf"broadcast together .*{_MEMORY}"):
        lowp.srdhm(col, row)
    with pytest.raises(ValueError, match=rf"broadcast together .*{_MEMORY}"):
        lowp.rdivpot(col, row)
    # The rule is the limit, not the size of these examples: with 1 MiB, a
    # 4 MiB copy of A is refused though the 4 KiB output would fit.
    monkeypatch.setattr(lowp._checks, "MAX_ALLOC_BYTES", 2**20)
    a = np.broadcast_to(np.zeros(4096, np.uint8), (1024, 4096))
    with pytest.raises(ValueError, match=r"a \(a non-contiguous view of shape \(1024, 4096\)\)"):
        lowp.gemm(a, np.zeros((4096, 1), np.uint8), 0, 0)
    assert lowp.gemm(a[:100], np.zeros((4096, 1), np.uint8), 0, 0).shape == (100, 1)


def test_memory_limit_is_the_physical_memory():
    assert lowp._checks.MAX_ALLOC_BYTES >= 2**26
    if hasattr(os, "sysconf"):
        assert lowp._checks.MAX_ALLOC_BYTES == os.sysconf("SC_PAGE_SIZE") * os.sysconf(
            "SC_PHYS_PAGES"
        )
