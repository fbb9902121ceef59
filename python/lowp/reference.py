"""Plain NumPy reference of every lowp kernel: the oracle of the test suite.

Written from the definitions in DESIGN.md for clarity, not speed, in int64
wherever that removes a question about overflow. It shares no code with the
C++ core or with the validating front end (``lowp.fixedpoint``,
``lowp.quant``): arguments are assumed valid.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def _int64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def quantize_multiplier(real):
    """``real -> (m0, shift)``; a float gives Python ints, an array int32 arrays."""
    if np.ndim(real) == 0:
        return _quantize_multiplier_one(float(real))
    pairs = [_quantize_multiplier_one(float(r)) for r in np.asarray(real).ravel()]
    m0 = np.array([p[0] for p in pairs], dtype=np.int32).reshape(np.shape(real))
    shift = np.array([p[1] for p in pairs], dtype=np.int32).reshape(np.shape(real))
    return m0, shift


def _quantize_multiplier_one(real: float) -> tuple[int, int]:
    if math.isnan(real) or math.isinf(real) or real < 0:
        raise ValueError(f"real must be finite and >= 0, got {real}")
    if real == 0:
        return 0, 0
    q, e = math.frexp(real)
    scaled = q * 2**31  # exact: a power-of-two scaling
    m0 = math.floor(scaled + 0.5)  # half away from zero (scaled > 0)
    if m0 == 2**31:
        m0 //= 2
        e += 1
    if e > 30:
        raise ValueError(f"real must be below 2**30, got {real}")
    if e < -31:
        return 0, 0
    return m0, e


def srdhm(a, b) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul of int32 values, as int32."""
    a, b = np.broadcast_arrays(_int64(a), _int64(b))
    p = a * b
    nudge = np.where(p >= 0, 1 << 30, 1 - (1 << 30))
    total = p + nudge
    # Division by 2**31 truncating toward zero.
    high = np.sign(total) * (np.abs(total) // 2**31)
    high = np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high)
    return high.astype(np.int32)


def rdivpot(x, exponent) -> np.ndarray:
    """RoundingDivideByPOT: x / 2**exponent rounded, ties away from zero."""
    x, e = np.broadcast_arrays(_int64(x), _int64(exponent))
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return ((x >> e) + (remainder > threshold)).astype(np.int32)


def saturating_left_shift(x, left) -> np.ndarray:
    wide = _int64(x) * (np.int64(1) << _int64(left))
    return np.clip(wide, INT32_MIN, INT32_MAX).astype(np.int32)


def multiply_by_quantized_multiplier(x, m0, shift) -> np.ndarray:
    """Fixed-point ``x * m0 * 2**(shift - 31)`` with gemmlowp's double rounding."""
    shift = _int64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rdivpot(srdhm(saturating_left_shift(x, left), m0), right)


def requantize(acc, m0, shift, zero_point, qmin=0, qmax=255) -> np.ndarray:
    """int32 accumulators -> uint8; m0/shift are scalars or per last-axis channel."""
    scaled = multiply_by_quantized_multiplier(acc, m0, shift).astype(np.int64)
    return np.clip(scaled + zero_point, qmin, qmax).astype(np.uint8)


def output_stage(acc, bias, m0, shift, zero_point, qmin=0, qmax=255) -> np.ndarray:
    """Fused bias + requantize + clamp; the bias adds with int32 wrap-around."""
    acc = _int64(acc)
    if bias is not None:
        acc = acc + _int64(bias)
    wrapped = ((acc - INT32_MIN) % 2**32 + INT32_MIN).astype(np.int32)
    return requantize(wrapped, m0, shift, zero_point, qmin, qmax)


def quant_dtype(qmin: int, qmax: int) -> np.dtype:
    """The smallest integer dtype that holds [qmin, qmax]."""
    for dtype in (np.uint8, np.int8, np.uint16, np.int16):
        info = np.iinfo(dtype)
        if info.min <= qmin and qmax <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.int32)


def _along(values, ndim: int, axis: int | None) -> np.ndarray:
    """Shape per-channel values to broadcast along `axis` of an ndim array."""
    values = np.asarray(values)
    if axis is None or values.ndim == 0:
        return values
    shape = [1] * ndim
    shape[axis] = -1
    return values.reshape(shape)


def quantize(x, scale, zero_point, qmin, qmax, axis=None) -> np.ndarray:
    """``clamp(round_half_even(x / scale) + zero_point, qmin, qmax)``.

    float32 input is divided in float32 (the scale rounded to float32);
    any other input in float64.
    """
    x = np.asarray(x)
    ftype = np.float32 if x.dtype.kind == "f" and x.dtype.itemsize == 4 else np.float64
    xs = x.astype(ftype)
    s = _along(np.asarray(scale, dtype=np.float32).astype(ftype), xs.ndim, axis)
    z = _along(np.asarray(zero_point, dtype=np.int64), xs.ndim, axis)
    q = np.rint(xs / s)
    if np.isnan(q).any():
        raise ValueError("x contains NaN")
    q = np.clip(q + z.astype(ftype), qmin, qmax)
    return q.astype(quant_dtype(qmin, qmax))


def dequantize(q, scale, zero_point, axis=None) -> np.ndarray:
    """``scale * (q - zero_point)`` in float32."""
    q = np.asarray(q)
    s = _along(np.asarray(scale, dtype=np.float32), q.ndim, axis)
    z = _along(np.asarray(zero_point, dtype=np.int64), q.ndim, axis)
    return (s * (q.astype(np.int64) - z).astype(np.float32)).astype(np.float32)


def gemm(a, b, a_zero_point, b_zero_point, bias=None) -> np.ndarray:
    """``sum_k (a[..., k] - a_zp) * (b[k, n] - b_zp[n]) (+ bias[n])`` as int32.

    ``a`` is ``[..., K]``, ``b`` is ``[K, N]``; ``b_zero_point`` is a scalar or one
    value per column. int8 operands are used as they are (their zero points
    in the same signed range). The bias adds with int32 wrap-around.
    """
    a64 = _int64(a) - _int64(a_zero_point)
    b64 = _int64(b) - _int64(b_zero_point)
    acc = np.matmul(a64, b64)
    if bias is not None:
        acc = acc + _int64(bias)
    return ((acc - INT32_MIN) % 2**32 + INT32_MIN).astype(np.int32)
