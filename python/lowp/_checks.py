"""Argument checks shared by the front end. Every message names the argument."""

from __future__ import annotations

import functools
import numbers
import os

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def _physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): the x86-64 address space
        return 2**47


#: The most bytes one output (or one copy of an input) may take: the machine's
#: physical memory. Anything larger could never be computed in memory (and,
#: with Linux's overcommit, an allocation of it may succeed only for the
#: process to be killed as it writes), so it is refused before allocating.
MAX_ALLOC_BYTES = _physical_memory()


def memory_size(nbytes: int) -> str:
    """``"N bytes (x.y GiB)"``."""
    for unit, scale in (("EiB", 2**60), ("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30)):
        if nbytes >= scale:
            return f"{nbytes} bytes ({nbytes / scale:.1f} {unit})"
    return f"{nbytes} bytes ({nbytes / 2**20:.1f} MiB)"


def too_large(nbytes: int, what: str, gives: str = "gives an output of") -> ValueError:
    """The error for an allocation above MAX_ALLOC_BYTES; ``what`` names the
    argument. Callers compare first, so the fast path builds no message."""
    return ValueError(
        f"{what} {gives} {memory_size(nbytes)}, more than this machine's"
        f" memory ({memory_size(MAX_ALLOC_BYTES)})"
    )


def contiguous(arr: np.ndarray, name: str) -> np.ndarray:
    """``arr`` C-contiguous, copied only when needed (and refused when the
    copy could not fit in memory: a broadcast view may be far larger than the
    memory behind it)."""
    if arr.flags.c_contiguous:
        return arr
    if arr.nbytes > MAX_ALLOC_BYTES:
        raise too_large(
            arr.nbytes, f"{name} (a non-contiguous view of shape {arr.shape})", "needs a copy of"
        )
    return np.ascontiguousarray(arr)


def int32_array(value, name: str) -> np.ndarray:
    """An int32 array (any order), refusing every other dtype."""
    arr = np.asarray(value)
    if arr.dtype != np.int32:
        raise TypeError(
            f"{name} must be an int32 array, got dtype {arr.dtype}"
            f" (convert with np.asarray({name}, dtype=np.int32))"
        )
    return arr


def integer_values(value, name: str, low: int, high: int) -> np.ndarray:
    """A scalar or array of integers in [low, high], as an int64 array."""
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer or an integer array, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < low or arr.max() > high):
        bad = arr[(arr < low) | (arr > high)].ravel()[0]
        raise ValueError(f"{name} must be in [{low}, {high}], got {bad}")
    return arr


def integer(value, name: str, low: int, high: int) -> int:
    """One integer in [low, high]."""
    if type(value) is int:  # the common case, without NumPy
        if low <= value <= high:
            return value
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        if not (isinstance(value, np.ndarray) and value.ndim == 0):
            raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    arr = integer_values(value, name, low, high)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {arr.shape}")
    return int(arr)


def channel_params(
    multiplier, shift, channels: int | None, what: str = "acc", m_name: str = "multiplier"
):
    """Validate a multiplier/shift pair, scalar or one per channel.

    Returns two contiguous 1-D int32 arrays of equal length (1 for
    per-tensor). `channels` is the size of the last axis of the data (1 for
    a scalar), or None to accept any count.
    """
    if type(multiplier) is int and type(shift) is int:  # per tensor, the common case
        return _scalar_channel_params(
            integer(multiplier, m_name, 0, INT32_MAX), integer(shift, "shift", -31, 30)
        )
    m = integer_values(multiplier, m_name, 0, INT32_MAX)
    s = integer_values(shift, "shift", -31, 30)
    for arr, name in ((m, m_name), (s, "shift")):
        if arr.ndim > 1:
            raise ValueError(f"{name} must be a scalar or a 1-D array, got shape {arr.shape}")
    n = max(m.size if m.ndim else 1, s.size if s.ndim else 1)
    for arr, name in ((m, m_name), (s, "shift")):
        if arr.ndim == 1 and arr.size not in (1, n):
            raise ValueError(f"{name} has {arr.size} values but the other parameter has {n}")
    if n > 1 and channels is not None and channels != n:
        raise ValueError(
            f"per-channel {m_name}/shift have {n} values but the last axis of {what} has {channels}"
        )
    m = np.ascontiguousarray(np.broadcast_to(m.reshape(-1), (n,)), dtype=np.int32)
    s = np.ascontiguousarray(np.broadcast_to(s.reshape(-1), (n,)), dtype=np.int32)
    return m, s


@functools.lru_cache(maxsize=256)
def _scalar_channel_params(multiplier: int, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """One multiplier and shift as 1-value int32 arrays, made once (read-only)."""
    m = np.array([multiplier], dtype=np.int32)
    s = np.array([shift], dtype=np.int32)
    m.flags.writeable = False
    s.flags.writeable = False
    return m, s


def out_array(out, shape: tuple, dtype, name: str = "out") -> np.ndarray:
    """Check a user-supplied output array."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {out.shape}")
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    return out


def into_out(compute, inputs, shape: tuple, dtype, out) -> np.ndarray:
    """Run compute(dest) where dest is `out` when it can be written directly
    (C-contiguous, no overlap with an input), else a fresh array that is
    then copied into `out`.

    A call interrupted in the kernel (Ctrl-C: KeyboardInterrupt, or whatever
    a signal handler raises) leaves `out` filled with zeros, so that no part
    of a result is left there."""
    if out is None:
        dest = np.empty(shape, dtype=dtype)
        compute(dest)
        return dest
    out_array(out, shape, dtype)
    direct = out.flags.c_contiguous and not any(np.may_share_memory(out, a) for a in inputs)
    dest = out if direct else np.empty(shape, dtype=dtype)
    try:
        compute(dest)
    except BaseException:
        out[...] = 0
        raise
    if dest is not out:
        out[...] = dest
    return out
