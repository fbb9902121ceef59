"""Affine quantization tools (DESIGN.md section 2): ``real = scale * (q - zero_point)``.

:class:`QParams` holds validated parameters (per tensor, or per channel along
one axis); :func:`choose_qparams` derives them from data; :func:`quantize`
and :func:`dequantize` convert; :func:`quant_error` measures the loss.

The arithmetic is exactly that of ``lowp.reference.quantize`` /
``lowp.reference.dequantize``: float32 input is divided in float32 by the
float32 scale, every other input in float64; rounding is half to even and
the result saturates to ``[qmin, qmax]``. Per-tensor float32 input with an
8-bit result runs on the compiled kernel of the active ISA path (bit-identical
to the NumPy arithmetic); everything else runs in NumPy.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Union

import numpy as np

from . import _checks, _core
from .reference import quant_dtype

__all__ = ["QParams", "QuantError", "choose_qparams", "dequantize", "quant_error", "quantize"]

# qmin/qmax must fit int16 (signed ranges) or uint16 (unsigned ranges).
_QMIN_LOWEST = -(2**15)
_QMAX_HIGHEST = 2**16 - 1
_INT16_MAX = 2**15 - 1
# choose_qparams never returns a subnormal scale: its few significant bits
# would break the "every value in range is within scale / 2" guarantee.
_F32_TINY = float(np.finfo(np.float32).tiny)

ScaleLike = Union[float, np.ndarray]
ZeroPointLike = Union[int, np.ndarray]


def _real_array(value: Any, name: str) -> np.ndarray:
    """An array of real numbers (floats or integers); bool, complex, object refused."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":  # not bool, complex, object, str, datetime
        raise TypeError(f"{name} must be real numbers (float or integer), got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return bool(value)


def _axis_value(axis: Any) -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an int or None, got {type(axis).__name__}")
    return int(axis)


class QParams:
    """Affine quantization parameters: ``real = scale * (q - zero_point)``,
    ``q`` an integer in ``[qmin, qmax]``.

    Per tensor (``axis=None``): ``scale`` is a positive finite number, stored
    as a float32 scalar, and ``zero_point`` an int in ``[qmin, qmax]``.

    Per channel (``axis`` an int): ``scale`` is a 1-D array with one value per
    index of that axis of the data, stored as read-only float32;
    ``zero_point`` is a 1-D integer array of the same length or one integer
    for every channel, stored as a read-only int32 array.

    ``qmin < qmax`` are integers of a signed range within int16 or an unsigned
    range within uint16 (2 to 16 bits); quantized data has dtype
    :attr:`dtype`, the smallest of uint8, int8, uint16, int16 that holds them.

    The scale must stay positive and finite once rounded to float32. Float
    (even integral) or bool zero points and bounds are a TypeError, values
    out of range a ValueError; each message names the argument. Instances are
    immutable, comparable and hashable.
    """

    __slots__ = ("_axis", "_qmax", "_qmin", "_scale", "_zero_point")

    _scale: np.float32 | np.ndarray
    _zero_point: int | np.ndarray
    _qmin: int
    _qmax: int
    _axis: int | None

    def __init__(
        self,
        scale: ScaleLike,
        zero_point: ZeroPointLike,
        qmin: int,
        qmax: int,
        axis: int | None = None,
    ) -> None:
        lo = _checks.integer(qmin, "qmin", _QMIN_LOWEST, _QMAX_HIGHEST)
        hi = _checks.integer(qmax, "qmax", _QMIN_LOWEST, _QMAX_HIGHEST)
        if lo >= hi:
            raise ValueError(f"qmin must be less than qmax, got qmin={lo}, qmax={hi}")
        if lo < 0 and hi > _INT16_MAX:
            raise ValueError(
                f"qmin/qmax must fit int16 (qmin < 0) or uint16 (qmin >= 0),"
                f" got qmin={lo}, qmax={hi}"
            )
        ax = None if axis is None else _axis_value(axis)

        s = _real_array(scale, "scale")
        if ax is None and s.ndim != 0:
            raise ValueError(
                f"scale must be a scalar for per-tensor qparams (axis=None), got shape {s.shape};"
                " pass axis= for per-channel scales"
            )
        if ax is not None and s.ndim != 1:
            raise ValueError(
                f"scale must be a 1-D array (one per channel) with axis={ax}, got shape {s.shape}"
            )
        s64 = s.astype(np.float64)
        bad = ~(np.isfinite(s64) & (s64 > 0))
        if bad.any():
            raise ValueError(f"scale must be finite and > 0, got {s64[bad][0]}")
        with np.errstate(over="ignore", under="ignore"):
            s32 = s64.astype(np.float32)
        bad = ~(np.isfinite(s32) & (s32 > 0))
        if bad.any():
            raise ValueError(
                f"scale must be finite and > 0 as a float32, got {s64[bad][0]!r}"
                f" (float32: {s32[bad][0]})"
            )

        z = _checks.integer_values(zero_point, "zero_point", lo, hi)
        if ax is None:
            if z.ndim != 0:
                raise ValueError(
                    f"zero_point must be a scalar for per-tensor qparams (axis=None),"
                    f" got shape {z.shape}"
                )
            object.__setattr__(self, "_scale", np.float32(s32))
            object.__setattr__(self, "_zero_point", int(z))
        else:
            if z.ndim > 1 or (z.ndim == 1 and z.shape != s32.shape):
                raise ValueError(
                    f"zero_point must be a scalar or a 1-D array of {s32.size} values"
                    f" (one per scale), got shape {z.shape}"
                )
            zs = np.array(np.broadcast_to(z, s32.shape), dtype=np.int32)
            s32 = np.array(s32, dtype=np.float32)
            s32.flags.writeable = False
            zs.flags.writeable = False
            object.__setattr__(self, "_scale", s32)
            object.__setattr__(self, "_zero_point", zs)
        object.__setattr__(self, "_qmin", lo)
        object.__setattr__(self, "_qmax", hi)
        object.__setattr__(self, "_axis", ax)

    @property
    def scale(self) -> np.float32 | np.ndarray:
        """float32 scale: a scalar, or a read-only 1-D array per channel."""
        return self._scale

    @property
    def zero_point(self) -> int | np.ndarray:
        """An int, or a read-only 1-D int32 array per channel."""
        return self._zero_point

    @property
    def qmin(self) -> int:
        return self._qmin

    @property
    def qmax(self) -> int:
        return self._qmax

    @property
    def axis(self) -> int | None:
        """The channel axis of the data, or None for per-tensor parameters."""
        return self._axis

    @property
    def per_channel(self) -> bool:
        return self._axis is not None

    @property
    def dtype(self) -> np.dtype:
        """dtype of quantized data: the smallest of uint8, int8, uint16, int16 holding the range."""
        return quant_dtype(self._qmin, self._qmax)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("QParams is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("QParams is immutable")

    def __reduce__(self):
        return (QParams, (self._scale, self._zero_point, self._qmin, self._qmax, self._axis))

    def _key(self) -> tuple:
        return (
            np.asarray(self._scale).tobytes(),
            np.asarray(self._zero_point).tobytes(),
            self._qmin,
            self._qmax,
            self._axis,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QParams):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        if self._axis is None:
            return (
                f"QParams(scale={self._scale!s}, zero_point={self._zero_point},"
                f" qmin={self._qmin}, qmax={self._qmax})"
            )
        scale = np.array2string(
            np.asarray(self._scale), separator=", ", threshold=8, floatmode="unique"
        )
        zero_point = np.array2string(np.asarray(self._zero_point), separator=", ", threshold=8)
        return (
            f"QParams(scale={scale}, zero_point={zero_point}, qmin={self._qmin},"
            f" qmax={self._qmax}, axis={self._axis})"
        )


def _qparams(value: Any) -> QParams:
    if not isinstance(value, QParams):
        raise TypeError(f"qparams must be a lowp.QParams, got {type(value).__name__}")
    return value


def _channel_axis(arr: np.ndarray, qp: QParams, name: str) -> int | None:
    """Check that `arr` has qp's channel axis with one index per channel;
    return that axis as a non-negative int (None for per-tensor)."""
    if qp.axis is None:
        return None
    if not -arr.ndim <= qp.axis < arr.ndim:
        raise ValueError(
            f"{name} has {arr.ndim} dimension(s) (shape {arr.shape}), so it has no axis"
            f" {qp.axis} for per-channel qparams (axis={qp.axis})"
        )
    axis = qp.axis % arr.ndim
    channels = np.asarray(qp.scale).size
    if arr.shape[axis] != channels:
        raise ValueError(
            f"{name} has {arr.shape[axis]} entries along axis {qp.axis} (shape {arr.shape}),"
            f" but the per-channel qparams have {channels} scales"
        )
    return axis


def _along(values: Any, ndim: int, axis: int | None, dtype) -> np.ndarray:
    """Per-channel values shaped to broadcast along `axis` of an ndim array."""
    arr = np.asarray(values, dtype=dtype)
    if axis is None:
        return arr
    shape = [1] * ndim
    shape[axis] = -1
    return arr.reshape(shape)


def choose_qparams(
    x: Any,
    *,
    bits: int = 8,
    signed: bool = False,
    symmetric: bool = False,
    narrow_range: bool = False,
    axis: int | None = None,
) -> QParams:
    """Quantization parameters covering the range of ``x``.

    The integer range has ``bits`` bits (2 to 16): unsigned ``[0, 2**bits - 1]``
    (``narrow_range``: ``[1, 2**bits - 1]``), signed
    ``[-2**(bits-1), 2**(bits-1) - 1]`` (``narrow_range``:
    ``[-2**(bits-1) + 1, 2**(bits-1) - 1]``). The result's :attr:`QParams.dtype`
    is int8/int16 for signed ranges, uint8/uint16 for unsigned ones.

    The real range always contains 0: ``rmin = min(min(x), 0)``,
    ``rmax = max(max(x), 0)``, per channel when ``axis`` is given (reduced
    over every other axis; the returned ``axis`` is non-negative).

    - symmetric: ``zero_point = (qmin + qmax + 1) // 2`` (0 for signed ranges,
      ``2**(bits-1)`` for unsigned ones) and
      ``scale = max(-rmin, rmax) / (qmax - zero_point)``.
    - asymmetric: ``scale = (rmax - rmin) / (qmax - qmin)`` and
      ``zero_point = round_half_to_even(qmin - rmin / scale)`` clamped to
      ``[qmin, qmax]``, computed in float64 from the scale already rounded to
      float32, so that real 0 is exactly representable.

    The scale is computed in float64 and rounded to nearest float32. An
    all-zero channel (or an empty ``x``) gets scale 1.0; a scale below the
    smallest normal float32 (``x`` of subnormal magnitude) is raised to it.
    Every value in ``[rmin, rmax]`` then dequantizes within about ``scale / 2``
    of itself (up to float32 rounding) and 0 exactly.

    ``x`` is any real array (integers are converted to float64); NaN or inf in
    ``x``, or a range too wide for a float32 scale, is a ValueError.
    """
    arr = _real_array(x, "x")
    b = _checks.integer(bits, "bits", 2, 16)
    is_signed = _flag(signed, "signed")
    is_symmetric = _flag(symmetric, "symmetric")
    is_narrow = _flag(narrow_range, "narrow_range")
    if is_signed:
        qmin, qmax = -(2 ** (b - 1)), 2 ** (b - 1) - 1
    else:
        qmin, qmax = 0, 2**b - 1
    if is_narrow:
        qmin += 1

    ax: int | None = None
    reduce_axes: tuple | None = None
    if axis is not None:
        ax = _axis_value(axis)
        if not -arr.ndim <= ax < arr.ndim:
            raise ValueError(
                f"axis must be in [{-arr.ndim}, {arr.ndim - 1}] for x of shape {arr.shape},"
                f" got {ax}"
            )
        ax %= arr.ndim
        reduce_axes = tuple(i for i in range(arr.ndim) if i != ax)

    # `initial` puts 0 in every range and handles empty data (and channels).
    # NaN and inf reach the extremes, so checking those checks all of x.
    rmin = np.asarray(np.min(arr, axis=reduce_axes, initial=0), dtype=np.float64)
    rmax = np.asarray(np.max(arr, axis=reduce_axes, initial=0), dtype=np.float64)
    for extreme in (rmin, rmax):
        if not np.isfinite(extreme).all():
            bad = extreme[~np.isfinite(extreme)].ravel()[0]
            raise ValueError(f"x must be finite to choose a range, got {bad}")

    with np.errstate(over="ignore"):
        if is_symmetric:
            zero_point = np.full(rmin.shape, (qmin + qmax + 1) // 2, dtype=np.int64)
            scale64 = np.maximum(-rmin, rmax) / (qmax - zero_point)
        else:
            scale64 = (rmax - rmin) / (qmax - qmin)
        scale32 = scale64.astype(np.float32)
    if not np.isfinite(scale32).all():
        raise ValueError(f"x spans [{np.min(rmin)}, {np.max(rmax)}], too wide for a float32 scale")
    scale32 = np.where(rmin == rmax, np.float32(1.0), scale32)
    scale32 = np.maximum(scale32, np.float32(_F32_TINY))

    if not is_symmetric:
        # rmin <= 0 and scale32 >= tiny, so this stays finite; the clamp only
        # matters at the ends (rmax == 0, or float32 rounding of the scale).
        zp64 = np.rint(qmin - rmin / scale32.astype(np.float64))
        zero_point = np.clip(zp64, qmin, qmax).astype(np.int64)

    if ax is None:
        return QParams(np.float32(scale32), int(zero_point), qmin, qmax)
    return QParams(scale32.reshape(-1), zero_point.reshape(-1), qmin, qmax, axis=ax)


def quantize(x: Any, qparams: QParams) -> np.ndarray:
    """``clamp(round_half_to_even(x / scale) + zero_point, qmin, qmax)`` as
    ``qparams.dtype``, of ``x``'s shape.

    float32 ``x`` is divided in float32 by the float32 scale, any other real
    ``x`` (float64, float16, integers) in float64. +-inf and values beyond the
    range saturate to qmin/qmax; NaN is a ValueError. Per-channel qparams
    apply along ``qparams.axis``, which ``x`` must have with one entry per
    channel. Any memory layout is accepted; the result is C-contiguous.
    """
    qp = _qparams(qparams)
    arr = _real_array(x, "x")
    axis = _channel_axis(arr, qp, "x")
    dtype = qp.dtype
    if axis is None and arr.dtype == np.float32 and dtype.itemsize == 1:
        out = np.empty(arr.shape, dtype=dtype)
        src = np.ascontiguousarray(arr)
        if not _core.quantize_f32(src, float(qp.scale), int(qp.zero_point), qp.qmin, qp.qmax, out):
            raise ValueError("x contains NaN, which has no quantized value")
        return out

    ftype = np.float32 if arr.dtype == np.float32 else np.float64
    scale = _along(qp.scale, arr.ndim, axis, np.float32).astype(ftype)
    zero_point = _along(qp.zero_point, arr.ndim, axis, ftype)
    # A huge |x| over a tiny scale overflows to inf, which saturates: fine.
    q = np.empty(arr.shape, dtype=ftype)
    with np.errstate(over="ignore"):
        np.divide(arr.astype(ftype, copy=False), scale, out=q)
    np.rint(q, out=q)
    if np.isnan(q).any():
        raise ValueError("x contains NaN, which has no quantized value")
    # Adding the zero point is exact while |q| < 2**24 (float32); beyond that
    # the clamp decides anyway.
    np.add(q, zero_point, out=q)
    np.clip(q, qp.qmin, qp.qmax, out=q)
    return q.astype(dtype)


def dequantize(q: Any, qparams: QParams) -> np.ndarray:
    """``scale * (q - zero_point)`` as float32, of ``q``'s shape.

    ``q`` is an array of any integer dtype (int8/uint8 data, or wider) whose
    values lie in ``[qmin, qmax]``; a float or bool array is a TypeError, a
    value outside the range a ValueError. ``q - zero_point`` is exact; the
    product is one float32 multiplication. Per-channel qparams apply along
    ``qparams.axis``.
    """
    qp = _qparams(qparams)
    arr = np.asarray(q)
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"q must be an integer array (quantized data), got dtype {arr.dtype};"
            " quantize float data first"
        )
    info = np.iinfo(arr.dtype)
    if arr.size and (info.min < qp.qmin or info.max > qp.qmax):
        lo, hi = arr.min(), arr.max()
        if lo < qp.qmin or hi > qp.qmax:
            bad = lo if lo < qp.qmin else hi
            raise ValueError(f"q must lie in [qmin, qmax] = [{qp.qmin}, {qp.qmax}], got {bad}")
    axis = _channel_axis(arr, qp, "q")
    scale = _along(qp.scale, arr.ndim, axis, np.float32)
    zero_point = _along(qp.zero_point, arr.ndim, axis, np.float32)
    # q and the zero point lie in [-32768, 65535]: both and their difference
    # are exact in float32, so this equals scale * float32(q - zero_point).
    out = arr.astype(np.float32)
    np.subtract(out, zero_point, out=out)
    np.multiply(out, scale, out=out)
    return out


class QuantError(NamedTuple):
    """How much quantizing lost: ``err = dequantize(quantize(x)) - x`` in float64."""

    mse: float
    """Mean of ``err**2`` (0.0 for empty ``x``)."""
    sqnr_db: float
    """``10 * log10(sum(x**2) / sum(err**2))``; inf when ``err`` is all zero."""
    max_abs: float
    """Largest ``|err|`` (0.0 for empty ``x``)."""


def quant_error(x: Any, qparams: QParams) -> QuantError:
    """The error of a quantize/dequantize round trip of ``x`` (see :class:`QuantError`).

    ``x`` must be finite (inf would give an infinite error).
    """
    qp = _qparams(qparams)
    arr = _real_array(x, "x")
    if not np.isfinite(arr).all():
        bad = arr[~np.isfinite(arr)].ravel()[0]
        raise ValueError(f"x must be finite to measure the quantization error, got {bad}")
    restored = dequantize(quantize(arr, qp), qp)
    if arr.size == 0:
        return QuantError(0.0, math.inf, 0.0)
    x64 = arr.astype(np.float64)
    err = restored.astype(np.float64) - x64
    max_abs = float(np.max(np.abs(err)))
    if max_abs == 0.0:
        return QuantError(0.0, math.inf, 0.0)
    with np.errstate(over="ignore", under="ignore"):
        mse = float(np.mean(err * err))
        # Normalized sums: no overflow for large x, the ratio is unchanged.
        norm = max(float(np.max(np.abs(x64))), max_abs)
        signal = float(np.sum(np.square(x64 / norm)))
        noise = float(np.sum(np.square(err / norm)))
    if noise == 0.0:
        sqnr_db = math.inf
    elif signal == 0.0:
        sqnr_db = -math.inf
    else:
        sqnr_db = 10.0 * math.log10(signal / noise)
    return QuantError(mse, sqnr_db, max_abs)
