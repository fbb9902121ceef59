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


def _wrap_int32(acc) -> np.ndarray:
    return ((_int64(acc) - INT32_MIN) % 2**32 + INT32_MIN).astype(np.int32)


def _pair(value) -> tuple[int, int]:
    if np.ndim(value) == 0:
        return int(value), int(value)
    first, second = value
    return int(first), int(second)


def _four(value) -> tuple[int, int, int, int]:
    if np.ndim(value) == 0:
        return int(value), int(value), int(value), int(value)
    top, bottom, left, right = value
    return int(top), int(bottom), int(left), int(right)


def _same_split(total: int) -> tuple[int, int]:
    """TFLite puts the smaller half before (top/left), the odd one after."""
    return total // 2, total - total // 2


def conv_padding(in_hw, kernel_hw, stride, padding) -> tuple[int, int, int, int]:
    """Padding ``(top, bottom, left, right)`` of a convolution.

    ``"same"``: ``out = ceil(in / stride)``, total ``max((out - 1) * stride + k - in, 0)``,
    the smaller half before; ``"valid"``: none; an int or a 4-tuple as given.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        pads: list[int] = []
        for size, k, s in zip(in_hw, kernel_hw, _pair(stride)):
            out = -(-size // s)
            pads.extend(_same_split(max((out - 1) * s + k - size, 0)))
        return pads[0], pads[1], pads[2], pads[3]
    return _four(padding)


def conv2d(x, w, x_zero_point, w_zero_point, *, stride=1, padding="valid", bias=None):
    """``out[n, y, x, o] = sum_{i, j, c} (xp[n, y*sh + i, x*sw + j, c] - x_zp)
    * (w[o, i, j, c] - w_zp[o]) (+ bias[o])`` as int32, NHWC.

    ``x`` is ``[N, H, W, Cin]``, ``w`` is OHWI ``[Cout, KH, KW, Cin]``,
    ``w_zero_point`` a scalar or one per output channel. ``xp`` is ``x``
    padded with the input zero point, so a padded tap adds exactly nothing.
    int8 operands are used as they are (zero points in the signed range).
    """
    xs = _int64(x) - _int64(x_zero_point)
    ws = _int64(w) - _int64(w_zero_point).reshape(-1, 1, 1, 1)
    n, h, wd, _ = xs.shape
    _, kh, kw, _ = ws.shape
    sh, sw = _pair(stride)
    top, bottom, left, right = conv_padding((h, wd), (kh, kw), stride, padding)
    # Zero after the shift is the input zero point before it.
    xp = np.pad(xs, ((0, 0), (top, bottom), (left, right), (0, 0)))
    out_h = (h + top + bottom - kh) // sh + 1
    out_w = (wd + left + right - kw) // sw + 1
    acc = np.zeros((n, out_h, out_w, ws.shape[0]), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            # The input pixel under tap (i, j) for every output pixel.
            tap = xp[:, i : i + (out_h - 1) * sh + 1 : sh, j : j + (out_w - 1) * sw + 1 : sw, :]
            acc += np.einsum("nhwc,oc->nhwo", tap, ws[:, i, j, :])
    if bias is not None:
        acc += _int64(bias)
    return _wrap_int32(acc)


def conv_transpose_crop(in_hw, kernel_hw, stride, padding) -> tuple[int, int, int, int]:
    """Crop ``(top, bottom, left, right)`` of the full transposed-conv output.

    ``"same"`` (TFLite): crop total ``max(k - stride, 0)``, the smaller half at
    the top/left; ``"valid"``: none; an int or a 4-tuple as given.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        crops: list[int] = []
        for k, s in zip(kernel_hw, _pair(stride)):
            crops.extend(_same_split(max(k - s, 0)))
        return crops[0], crops[1], crops[2], crops[3]
    return _four(padding)


def conv_transpose2d(x, w, x_zero_point, w_zero_point, *, stride=1, padding="valid", bias=None):
    """Transposed convolution, NHWC, as int32.

    Every input pixel ``x[n, y, x, :] - x_zp`` times the kernel
    ``w[o, i, j, :] - w_zp[o]`` (OHWI ``[Cout, KH, KW, Cin]``, TFLite
    TRANSPOSE_CONV layout) adds into the full output at ``(y*sh + i, x*sw + j)``;
    the full output ``(in - 1) * stride + k`` is then cropped by ``padding``
    (see :func:`conv_transpose_crop`). With ``"same"`` the output is
    ``in * stride``: when ``k < stride`` that is more than the full output and
    the rows/columns past it hold nothing but the bias, as in TFLite.
    """
    xs = _int64(x) - _int64(x_zero_point)
    ws = _int64(w) - _int64(w_zero_point).reshape(-1, 1, 1, 1)
    n, h, wd, _ = xs.shape
    cout, kh, kw, _ = ws.shape
    sh, sw = _pair(stride)
    full_h, full_w = (h - 1) * sh + kh, (wd - 1) * sw + kw
    full = np.zeros((n, full_h, full_w, cout), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            # Input pixel (y, x) lands on full-output pixel (y*sh + i, x*sw + j).
            full[:, i : i + (h - 1) * sh + 1 : sh, j : j + (wd - 1) * sw + 1 : sw, :] += np.einsum(
                "nhwc,oc->nhwo", xs, ws[:, i, j, :]
            )
    top, bottom, left, right = conv_transpose_crop((h, wd), (kh, kw), stride, padding)
    if isinstance(padding, str) and padding == "same":
        out_h, out_w = h * sh, wd * sw
    else:
        out_h, out_w = full_h - top - bottom, full_w - left - right
    acc = np.zeros((n, out_h, out_w, cout), dtype=np.int64)
    kept = full[:, top : top + out_h, left : left + out_w, :]
    acc[:, : kept.shape[1], : kept.shape[2], :] = kept
    if bias is not None:
        acc += _int64(bias)
    return _wrap_int32(acc)
