"""uint8 x uint8 -> int32 GEMM with zero points and a fused output stage
(DESIGN.md section 2 GEMM, section 3 ``lowp.gemm`` / ``lowp.Linear``).

``C[m, n] = sum_k (A[m, k] - a_zp) * (B[k, n] - b_zp[n])``, exact in int32;
with a :class:`~lowp.Requant` the result is requantized to uint8 while the
tile is still in registers. int8 operands map exactly onto uint8 (``q + 128``
with zero point ``z + 128``).

Long calls can be interrupted (Ctrl-C: KeyboardInterrupt within about 50 ms);
an ``out=`` array of an interrupted call is left filled with zeros. Outputs
larger than the machine's memory are refused before allocating.
"""

from __future__ import annotations

import math

import numpy as np

from . import _checks, _core
from .fixedpoint import Requant

__all__ = ["MAX_K", "Linear", "gemm"]

#: The largest K for which the int32 result is guaranteed exact: 255 * 255 * K
#: must stay below 2**31.
MAX_K = 33025


def _operand_u8(x, name: str) -> tuple[np.ndarray, bool]:
    """uint8 view of a uint8 or int8 array; True when it was int8."""
    arr = x if type(x) is np.ndarray else np.asarray(x)
    if arr.dtype == np.uint8:
        return arr, False
    if arr.dtype == np.int8:
        # q + 128 in uint8 is the bit pattern with its top bit flipped (a copy).
        if arr.size > _checks.MAX_ALLOC_BYTES:
            raise _checks.too_large(
                arr.size, f"{name} (int8, shape {arr.shape})", "needs a uint8 copy of"
            )
        return arr.view(np.uint8) ^ np.uint8(0x80), True
    raise TypeError(f"{name} must be a uint8 or int8 array, got dtype {arr.dtype}")


_UINT8 = np.dtype(np.uint8)


def _layer_x_dtype(w, x_dtype) -> np.dtype:
    """A packed layer's input dtype: ``x_dtype``, by default the weights'."""
    _operand_u8(w, "w")  # a wrong weight dtype is named as such, not as x_dtype
    try:
        dtype = np.dtype(np.asarray(w).dtype if x_dtype is None else x_dtype)
    except TypeError:
        raise TypeError(f"x_dtype must be uint8 or int8, got {x_dtype!r}") from None
    if dtype not in (np.uint8, np.int8):
        raise TypeError(f"x_dtype must be uint8 or int8, got {dtype}")
    return dtype


def _layer_input(x, x_dtype: np.dtype, layer: str) -> np.ndarray:
    """uint8 view of a packed layer's input, which must have the layer's dtype."""
    if x_dtype is _UINT8 and type(x) is np.ndarray and x.dtype is _UINT8:  # the common case
        return x
    x_u8, x_signed = _operand_u8(x, "x")
    if x_signed != (x_dtype == np.int8):
        raise TypeError(
            f"x must be {x_dtype} (this {layer} was built for it), got {np.asarray(x).dtype}"
        )
    return x_u8


def _zero_points(value, name: str, signed: bool, count: int | None) -> np.ndarray:
    """Zero point(s) in the operand's range, moved to the uint8 domain."""
    low, high = (-128, 127) if signed else (0, 255)
    zp = _checks.integer_values(value, name, low, high)
    if zp.ndim > 1 or (zp.ndim == 1 and count is None):
        raise ValueError(f"{name} must be a scalar, got shape {zp.shape}")
    if zp.ndim == 1 and zp.size != count:
        raise ValueError(f"{name} must be a scalar or have {count} values, got {zp.size}")
    return (zp + (128 if signed else 0)).astype(np.int32).reshape(-1)


def _bias(bias, n: int, what: str = "output column") -> np.ndarray | None:
    if bias is None:
        return None
    arr = np.asarray(bias)
    if arr.dtype != np.int32:
        raise TypeError(f"bias must be an int32 array, got dtype {arr.dtype}")
    if arr.shape != (n,):
        raise ValueError(f"bias must have shape ({n},) (one per {what}), got {arr.shape}")
    return np.ascontiguousarray(arr)


def _requant(requant, n: int, what: str = "columns") -> Requant | None:
    if requant is None:
        return None
    if not isinstance(requant, Requant):
        raise TypeError(f"requant must be a lowp.Requant or None, got {type(requant).__name__}")
    if requant.channels not in (1, n):
        raise ValueError(f"requant has {requant.channels} channels but the output has {n} {what}")
    return requant


class _Packed:
    """Weights B [K, N] packed once with their zero points, the input zero
    point and the bias folded in; runs A [..., K] -> [..., N]."""

    def __init__(self, b, b_zero_point, a_zero_point, a_signed: bool, bias, requant, b_name="b"):
        b_u8, b_signed = _operand_u8(b, b_name)
        if b_u8.ndim != 2:
            raise ValueError(f"{b_name} must be 2-D [K, N], got shape {b_u8.shape}")
        k, n = b_u8.shape
        if k > MAX_K:
            raise ValueError(f"K must be <= {MAX_K} for an exact int32 result, got K={k}")
        zp_name = f"{b_name}_zero_point"
        b_zp = _zero_points(b_zero_point, zp_name, b_signed, n)
        self.a_signed = a_signed
        self.a_zp = int(
            _zero_points(
                a_zero_point, "a_zero_point" if b_name == "b" else "x_zero_point", a_signed, None
            )[0]
        )
        self.k, self.n = k, n
        self.requant = _requant(requant, n)
        self.core = _core.Gemm(np.ascontiguousarray(b_u8), b_zp, self.a_zp, _bias(bias, n))
        rq = self.requant  # the output stage's tables, prepared once
        self.stage = (
            None
            if rq is None
            else self.core.prepare(rq.multiplier, rq.shift, rq.zero_point, rq.qmin, rq.qmax)
        )
        self.out_dtype = np.dtype(np.int32 if rq is None else np.uint8)

    def __call__(self, a_u8: np.ndarray, out, a_name: str) -> np.ndarray:
        if a_u8.ndim < 1 or a_u8.shape[-1] != self.k:
            got = a_u8.shape[-1] if a_u8.ndim else "a scalar"
            raise ValueError(f"{a_name}'s last axis must be K={self.k}, got {got}")
        shape = (*a_u8.shape[:-1], self.n)
        rows = math.prod(a_u8.shape[:-1])  # explicit: -1 cannot be inferred when K = 0
        dtype = self.out_dtype
        nbytes = rows * self.n * dtype.itemsize
        if nbytes > _checks.MAX_ALLOC_BYTES:
            raise _checks.too_large(
                nbytes, f"{a_name}'s {rows} rows (shape {a_u8.shape}) x N={self.n}"
            )
        a2 = _checks.contiguous(a_u8.reshape(rows, self.k), a_name)
        if out is None:  # the common case, kept short: per-call overhead matters at M = 1
            dest = np.empty(shape, dtype=dtype)
            self._run(a2, dest.reshape(rows, self.n))
            return dest
        return _checks.into_out(
            lambda d: self._run(a2, d.reshape(rows, self.n)), (a_u8,), shape, dtype, out
        )

    def _run(self, a2: np.ndarray, dest2: np.ndarray) -> None:
        if self.stage is None:
            self.core.run(a2, dest2)
        else:
            self.core.run_requant(a2, self.stage, dest2)


def gemm(a, b, a_zero_point, b_zero_point, *, bias=None, requant=None, out=None) -> np.ndarray:
    """``sum_k (a[..., k] - a_zero_point) * (b[k, n] - b_zero_point[n])``.

    ``a`` is uint8 or int8 ``[..., K]``, ``b`` uint8 or int8 ``[K, N]``;
    ``b_zero_point`` is a scalar or one value per column. Returns exact int32
    ``[..., N]``, plus ``bias`` (int32 ``[N]``, wrapping) when given; with
    ``requant`` (a :class:`lowp.Requant`, scalar or per column) returns uint8.
    ``b`` is packed on the fly: use :class:`Linear` to pack once. ``out``, if
    given, is an array of the result's shape and dtype; a call interrupted by
    Ctrl-C raises KeyboardInterrupt and leaves it filled with zeros.
    """
    a_u8, a_signed = _operand_u8(a, "a")
    packed = _Packed(b, b_zero_point, a_zero_point, a_signed, bias, requant)
    return packed(a_u8, out, "a")


class Linear:
    """A fully connected layer with its weights packed once: ``y = x @ w``.

    ``w`` is uint8 or int8 ``[K, N]`` (in features x out features) with
    ``w_zero_point`` a scalar or one per output column; ``x_zero_point`` is
    the input's zero point, in the range of ``x_dtype`` (default: the
    weights' dtype, as in TFLite's uint8 and int8 models). Calls take
    ``x [..., K]`` of that dtype and return int32, or uint8 with ``requant``.
    """

    def __init__(self, w, w_zero_point, *, x_zero_point, bias=None, requant=None, x_dtype=None):
        self.x_dtype = _layer_x_dtype(w, x_dtype)
        self._packed = _Packed(
            w, w_zero_point, x_zero_point, self.x_dtype == np.int8, bias, requant, b_name="w"
        )

    @property
    def in_features(self) -> int:
        return self._packed.k

    @property
    def out_features(self) -> int:
        return self._packed.n

    @property
    def requant(self) -> Requant | None:
        return self._packed.requant

    def __call__(self, x, out=None) -> np.ndarray:
        return self._packed(_layer_input(x, self.x_dtype, "Linear"), out, "x")

    def __repr__(self) -> str:
        rq = f", requant={self.requant!r}" if self.requant is not None else ""
        return f"Linear(in_features={self.in_features}, out_features={self.out_features}{rq})"
