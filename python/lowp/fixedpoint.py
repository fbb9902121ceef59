"""gemmlowp / TFLite fixed-point requantization (DESIGN.md section 2).

Front end over the compiled kernels: arguments are validated here, then the
work runs in C++ on the active ISA path with the GIL released.
"""

from __future__ import annotations

import math

import numpy as np

from . import _checks, _core

__all__ = [
    "Requant",
    "multiply_by_quantized_multiplier",
    "quantize_multiplier",
    "rdivpot",
    "requantize",
    "srdhm",
]


def quantize_multiplier(real):
    """Split a non-negative real multiplier into ``(m0, shift)``.

    ``real ~= m0 * 2**(shift - 31)`` with ``m0`` in ``[2**30, 2**31 - 1]``.
    A float gives two ints; an array gives two int32 arrays of its shape.
    0 and reals below ``2**-32`` give ``(0, 0)``. NaN, infinite, negative
    and reals of ``2**30`` or more raise ValueError.
    """
    arr = np.asarray(real)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"real must be a real number or array, got dtype {arr.dtype}")
    values = np.ascontiguousarray(arr, dtype=np.float64).reshape(-1)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        raise ValueError(f"real must be finite and >= 0, got {values[bad][0]}")
    try:
        m0, shift = _core.quantize_multiplier(values)
    except ValueError:
        raise ValueError(f"real must be below 2**30 (shift <= 30), got {values.max()}") from None
    if arr.ndim == 0:
        return int(m0[0]), int(shift[0])
    return m0.reshape(arr.shape), shift.reshape(arr.shape)


def _int32_operand(value, name: str) -> np.ndarray:
    """A Python int in int32 range or an int32 array."""
    if type(value) is np.ndarray and value.dtype == np.int32:  # the common case
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        _checks.integer(value, name, _checks.INT32_MIN, _checks.INT32_MAX)
        return np.asarray(value, dtype=np.int32)
    return _checks.int32_array(value, name)


def _result(arr: np.ndarray, scalar: bool):
    return arr.reshape(()).item() if scalar else arr


def srdhm(a, b):
    """SaturatingRoundingDoublingHighMul: ``round(a * b / 2**31)``, ties up,
    ``INT32_MIN * INT32_MIN`` saturating to ``INT32_MAX``. Broadcasts."""
    a = _int32_operand(a, "a")
    b = _int32_operand(b, "b")
    a, b = np.broadcast_arrays(a, b)
    if a.nbytes > _checks.MAX_ALLOC_BYTES:
        raise _checks.too_large(a.nbytes, f"a {a.shape} and b {b.shape} broadcast together")
    out = np.empty(a.shape, dtype=np.int32)
    _core.srdhm(_checks.contiguous(a, "a"), _checks.contiguous(b, "b"), out)
    return _result(out, a.ndim == 0)


def rdivpot(x, exponent):
    """RoundingDivideByPOT: ``x / 2**exponent`` rounded, ties away from zero.
    ``exponent`` in [0, 31]. Broadcasts."""
    x = _int32_operand(x, "x")
    e = _checks.integer_values(exponent, "exponent", 0, 31).astype(np.int32)
    x, e = np.broadcast_arrays(x, e)
    if x.nbytes > _checks.MAX_ALLOC_BYTES:
        raise _checks.too_large(x.nbytes, f"x {x.shape} and exponent {e.shape} broadcast together")
    out = np.empty(x.shape, dtype=np.int32)
    _core.rdivpot(_checks.contiguous(x, "x"), _checks.contiguous(e, "exponent"), out)
    return _result(out, x.ndim == 0)


def multiply_by_quantized_multiplier(x, m0, shift):
    """``rdivpot(srdhm(saturate(x * 2**left), m0), right)`` with
    ``left = max(shift, 0)``, ``right = max(-shift, 0)``.

    ``m0``/``shift`` are scalars or one value per channel of the last axis of
    ``x``. Returns int32 of ``x``'s shape.
    """
    x = _int32_operand(x, "x")
    m, s = _checks.channel_params(m0, shift, x.shape[-1] if x.ndim else 1, "x", "m0")
    if x.nbytes > _checks.MAX_ALLOC_BYTES:
        raise _checks.too_large(x.nbytes, f"x of shape {x.shape}")
    src = _checks.contiguous(x, "x")
    out = np.empty(x.shape, dtype=np.int32)
    _core.multiply_by_quantized_multiplier(src, m, s, out)
    return _result(out, x.ndim == 0)


def _clamp_bounds(zero_point, qmin, qmax) -> tuple[int, int, int]:
    zp = _checks.integer(zero_point, "zero_point", 0, 255)
    lo = _checks.integer(qmin, "qmin", 0, 255)
    hi = _checks.integer(qmax, "qmax", 0, 255)
    if lo > hi:
        raise ValueError(f"qmin must be <= qmax, got qmin={lo}, qmax={hi}")
    return zp, lo, hi


def requantize(acc, m0, shift, zero_point, *, qmin=0, qmax=255, out=None):
    """int32 accumulators -> uint8:
    ``clamp(zero_point + multiply_by_quantized_multiplier(acc, m0, shift), qmin, qmax)``.

    ``acc`` is an int32 array of any shape; ``m0``/``shift`` are scalars or
    one per channel of the last axis. ``out``, if given, is a
    uint8 array of ``acc``'s shape; a call interrupted by Ctrl-C raises
    KeyboardInterrupt and leaves ``out`` filled with zeros.
    """
    if type(acc) is not np.ndarray or acc.dtype != np.int32:
        acc = _checks.int32_array(acc, "acc")
    m, s = _checks.channel_params(m0, shift, acc.shape[-1] if acc.ndim else 1, "acc", "m0")
    zp, lo, hi = _clamp_bounds(zero_point, qmin, qmax)
    return _requantize(acc, m, s, zp, lo, hi, out)


def _requantize(acc, m, s, zp, lo, hi, out):
    src = _checks.contiguous(acc, "acc")
    if out is None:  # the common case, kept short
        if acc.size > _checks.MAX_ALLOC_BYTES:
            raise _checks.too_large(acc.size, f"acc of shape {acc.shape}")
        dest = np.empty(acc.shape, dtype=np.uint8)
        _core.requantize(src, m, s, zp, lo, hi, dest)
        return dest
    return _checks.into_out(
        lambda dest: _core.requantize(src, m, s, zp, lo, hi, dest),
        (acc,),
        acc.shape,
        np.uint8,
        out,
    )


_ACTIVATIONS = (None, "relu", "relu6")


class Requant:
    """An output stage: requantize int32 accumulators to uint8 with a
    fixed-point multiplier (scalar or per output channel), a zero point and a
    clamp. ReLU and ReLU6 are clamps (see :meth:`from_scales`)."""

    __slots__ = ("multiplier", "qmax", "qmin", "shift", "zero_point")

    multiplier: np.ndarray
    shift: np.ndarray
    zero_point: int
    qmin: int
    qmax: int

    def __init__(self, multiplier, shift, zero_point, qmin=0, qmax=255):
        m, s = _checks.channel_params(multiplier, shift, None)
        if m.size == 0:
            raise ValueError("multiplier and shift must have at least one value (1 per tensor)")
        for arr in (m, s):
            arr.flags.writeable = False
        zp, lo, hi = _clamp_bounds(zero_point, qmin, qmax)
        # Validated once: the fields cannot be reassigned afterwards.
        for name, value in (
            ("multiplier", m),
            ("shift", s),
            ("zero_point", zp),
            ("qmin", lo),
            ("qmax", hi),
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"Requant is immutable: make a new one instead of setting {name}")

    def __delattr__(self, name):
        raise AttributeError(f"Requant is immutable: {name} cannot be deleted")

    def __reduce__(self):  # pickle and copy through the constructor, which validates
        return (Requant, (self.multiplier, self.shift, self.zero_point, self.qmin, self.qmax))

    @property
    def channels(self) -> int:
        """Number of output channels the multiplier covers (1: per tensor)."""
        return int(self.multiplier.size)

    @classmethod
    def from_scales(
        cls,
        input_scale,
        weight_scale,
        output_scale,
        output_zero_point,
        activation: str | None = None,
    ) -> Requant:
        """TFLite's output stage from real scales.

        Per output channel ``real = double(in) * double(w[o]) / double(out)``
        from the float32 scales, then :func:`quantize_multiplier`. The clamp is
        ``[0, 255]``, ``[max(0, q(0)), 255]`` for ``"relu"`` and
        ``[max(0, q(0)), min(255, q(6))]`` for ``"relu6"``, with
        ``q(f) = zero_point + round_half_away(f / out_scale)`` in float32.
        """
        s_in = _scale(input_scale, "input_scale", allow_vector=False)
        s_w = _scale(weight_scale, "weight_scale", allow_vector=True)
        s_out = _scale(output_scale, "output_scale", allow_vector=False)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be None, 'relu' or 'relu6', got {activation!r}")
        zp = _checks.integer(output_zero_point, "output_zero_point", 0, 255)
        real = (np.float64(s_in) * s_w.astype(np.float64)) / np.float64(s_out)
        try:
            m, s = quantize_multiplier(real)
        except ValueError as err:
            raise ValueError(f"input_scale * weight_scale / output_scale: {err}") from None
        qmin, qmax = 0, 255
        if activation is not None:
            qmin = max(qmin, zp)
        if activation == "relu6":
            six = np.float32(6.0) / np.float32(s_out)
            qmax = min(qmax, zp + math.floor(float(six) + 0.5))
        return cls(m, s, zp, qmin, qmax)

    def __call__(self, acc, out=None) -> np.ndarray:
        if type(acc) is not np.ndarray or acc.dtype != np.int32:
            acc = _checks.int32_array(acc, "acc")
        if self.channels > 1 and (acc.ndim == 0 or acc.shape[-1] != self.channels):
            got = acc.shape[-1] if acc.ndim else "a scalar"
            raise ValueError(
                f"acc's last axis must have {self.channels} channels (one per multiplier), "
                f"got {got}"
            )
        return _requantize(
            acc, self.multiplier, self.shift, self.zero_point, self.qmin, self.qmax, out
        )

    def __repr__(self) -> str:
        if self.channels == 1:
            mult = f"multiplier={int(self.multiplier[0])}, shift={int(self.shift[0])}"
        else:
            mult = f"{self.channels} channels"
        return f"Requant({mult}, zero_point={self.zero_point}, qmin={self.qmin}, qmax={self.qmax})"


def _scale(value, name: str, allow_vector: bool) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"{name} must be a real number, got dtype {arr.dtype}")
    if arr.ndim > (1 if allow_vector else 0):
        raise ValueError(
            f"{name} must be a scalar{' or a 1-D array' if allow_vector else ''},"
            f" got shape {arr.shape}"
        )
    arr = arr.astype(np.float32)
    bad = ~np.isfinite(arr) | (arr <= 0)
    if bad.any():
        raise ValueError(f"{name} must be finite and > 0, got {arr[bad].ravel()[0]}")
    return arr
