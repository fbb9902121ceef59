"""Activation-range calibration for post-training quantization (DESIGN.md section 8).

A :class:`RangeObserver` keeps one tensor's statistics over the calibration
batches: the exact min and max, an exponential moving average of each batch's
min and max, and a histogram of a fixed number of bins. :meth:`RangeObserver.range`
turns the statistics into a clipping range by one of :data:`METHODS`;
:meth:`RangeObserver.candidates` gives every method's range from the same
statistics (the quantizer's ``"auto"`` picks among them by the real integer
error). The statistics never depend on the method, so one pass over the
calibration set serves them all.

The histogram
-------------
Bin widths are powers of two, ``w = 2**e``, and bin ``k`` (an integer of
either sign) holds exactly the values in ``[k*w, (k+1)*w)``: with ``1/w`` a
power of two, ``floor(x / w)`` is exact in float32 arithmetic. The observer
keeps ``bins`` consecutive bins that cover the data and zero (every range
this module returns contains 0, so the bins between the data and zero cost
nothing in the result). When a batch falls outside them, the width doubles as
often as needed and each new bin is the exact sum of ``2**d`` old ones, then
the window slides to cover the data.

So re-binning moves no count across an edge: the counts, and the quantiles at
every edge, stay exact, and the histogram after any sequence of batches is the
one a single pass over all of them would give (batch order does not matter).
The price is resolution: the data spans between half and all of the bins. The
two references trade differently. PyTorch's ``HistogramObserver`` keeps
``bins`` bins over exactly ``[min, max]`` and, when the range grows, spreads
each old bin uniformly over the new bins it overlaps (sampled 16 times per
bin): full resolution, but every growth smears counts across edges, the error
adds up over batches, and the result depends on their order. ONNX Runtime's
``HistogramCollector`` keeps the first batch's width and appends bins: exact,
but the memory grows with the range (and its symmetric collector re-bins every
batch against an explicit edge array, a binary search per value).

Histogram accumulation is the hot part of calibration. It runs in
``lowp._core.histogram_f32``: one pass over float32, about 3.5x as fast as
the same bins in NumPy (bin indices, then ``np.bincount``), which is itself
about 2.5x as fast as ``np.histogram``. The NumPy form below computes the same
counts, bit for bit, for a core built without the kernel.

The methods
-----------
Every range has ``lo <= 0 <= hi`` and ``lo < hi``; with ``symmetric=True``,
``lo == -hi``. A range whose width would be below ``2**-100`` (a tensor that
is all zeros, or a method that clips everything to zero) falls back to the
minmax range, and when that too is that narrow, to ``(0, 2**-8)``
(``(-2**-8, 2**-8)`` symmetric): any scale represents an all-zero tensor
exactly, and a moderate one keeps the multipliers of the neighbouring layers
representable.

- ``minmax``: the observed min and max.
- ``moving_average``: the exponential moving average of the batch min and max
  (``m += momentum * (batch - m)``, the first batch setting it), as PyTorch's
  ``MovingAverageMinMaxObserver`` with its averaging constant 0.01.
- ``percentile``: symmetric, the ``percentile`` of ``|x|``; otherwise the
  ``(100 - percentile) / 2`` and ``100 - (100 - percentile) / 2`` percentiles
  (each tail cut by half of the rest, as ONNX Runtime). Linear within a bin.
- ``mse``: the range minimising the expected quantization error of the
  histogram with ``2**bits`` levels (``2**(bits-1) - 1`` steps per side when
  symmetric, as ``lowp.choose_qparams``): rounding noise ``step**2 / 12`` for
  each value inside, ``(x - edge)**2`` (plus the bin's own variance) for each
  value clipped. Candidates are bin edges; the two-sided search is exhaustive
  on a grid of at most 257 edges per side, then exhaustive around the best
  grid point.
- ``entropy``: TensorRT's KL-divergence calibration. For each candidate
  window of whole bins (at least as many as quantized bins), the reference
  ``P`` is the window with the counts outside folded into its end bins; the
  candidate ``Q`` merges the window's own counts into the quantized bins and
  spreads each back evenly over its non-empty bins; zero bins of ``Q`` get
  ``1e-4`` of a count; the window of least ``KL(P || Q)`` wins. Symmetric: the
  histogram of ``|x|``, windows ``[0, T)`` and ``2**(bits-1)`` quantized bins
  (128 at 8 bits, TensorRT's setting). Otherwise windows
  ``[max(min, -T), min(max, T))`` with ``2**bits`` quantized bins over them:
  for a non-negative tensor (after a ReLU) that is the one-sided search over
  ``[0, T)`` with every level in use. With fewer bins than quantized bins
  (16 bits) the quantization is finer than the histogram and nothing is
  clipped. Evaluated for all windows at once from prefix sums
  (``O(quantized bins)`` per window).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .. import _core

__all__ = ["METHODS", "RangeObserver"]

#: The calibration methods of :meth:`RangeObserver.range`.
METHODS: tuple[str, ...] = ("minmax", "moving_average", "percentile", "mse", "entropy")

_MIN_BINS = 8
_MAX_BINS = 1 << 16
# The narrowest bin is 2**-126: its inverse is still a normal float32.
_EXP_MIN = -126
# Ranges narrower than this are degenerate (see the module docstring).
_MIN_SPAN = 2.0**-100
_ZERO_SPAN = 2.0**-8
# Smoothing of the empty bins of the entropy method's candidate distribution,
# in counts.
_KL_EPS = 1e-4
# The mse search is exhaustive up to this many edge pairs, else on a grid of
# at most _GRID edges per side, refined around the best.
_MSE_EXHAUSTIVE = 1 << 16
_GRID = 257
# Elements per piece of the vectorized entropy search.
_KL_PIECE = 1 << 19
#: windows the entropy search tries at first (then the neighbours of the best)
_COARSE = 512
_NUMPY_PIECE = 1 << 18
_F32_MAX = float(np.finfo(np.float32).max)


def _histogram_numpy(
    x: np.ndarray, inv_width: np.float32, first_bin: int, counts: np.ndarray
) -> int:
    """``_core.histogram_f32`` in NumPy: the same float32 product, clamp and
    floor; returns how many values are zero."""
    bins = counts.size
    zeros = 0
    for begin in range(0, x.size, _NUMPY_PIECE):
        with np.errstate(over="ignore"):  # beyond the bins either way: clamped
            f = np.multiply(x[begin : begin + _NUMPY_PIECE], inv_width, dtype=np.float32)
        np.clip(f, first_bin, first_bin + bins - 1, out=f)
        np.floor(f, out=f)
        index = f.astype(np.intp)
        index -= first_bin
        counts += np.bincount(index, minlength=bins)
        zeros += int(np.count_nonzero(x[begin : begin + _NUMPY_PIECE] == 0))
    return zeros


_histogram = getattr(_core, "histogram_f32", None) or _histogram_numpy


def _batch_values(x: Any) -> tuple[np.ndarray, float, float]:
    """One batch as flat C-contiguous float32, with its min and max (checked finite)."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"x must hold real numbers (float or integer), got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"x is empty (shape {arr.shape}); a calibration batch needs values")
    with np.errstate(over="ignore"):
        flat = np.ascontiguousarray(arr, dtype=np.float32).reshape(-1)
    lo = float(flat.min())
    hi = float(flat.max())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        if math.isnan(lo) or math.isnan(hi):
            raise ValueError("x contains NaN; calibration data must be finite")
        if arr.dtype.kind == "f" and not (np.isfinite(arr.min()) and np.isfinite(arr.max())):
            raise ValueError("x contains infinite values; calibration data must be finite")
        raise ValueError(
            f"x has values beyond float32's range (|x| > {_F32_MAX:.4g}); "
            "calibration data must be float32"
        )
    return flat, lo, hi


def _floor_div(value: float, exp: int) -> int:
    """``floor(value / 2**exp)``, exact."""
    return math.floor(math.ldexp(value, -exp))


def _fit_exponent(lo: float, hi: float, bins: int, exp_from: int) -> int:
    """The least ``e >= exp_from`` with [lo, hi] in ``bins`` bins of width 2**e."""
    exp = exp_from
    if hi > lo:
        # bins of width w hold a span s only if w > s / bins
        exp = max(exp, math.frexp((hi - lo) / bins)[1] - 1)
    while _floor_div(hi, exp) - _floor_div(lo, exp) + 1 > bins:
        exp += 1
    return exp


def _integer(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not low <= int(value) <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {int(value)}")
    return int(value)


def _real(value: Any, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {out}")
    return out


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return bool(value)


def _options(bits: Any, symmetric: Any, percentile: Any) -> tuple[int, bool, float]:
    b = _integer(bits, "bits", 2, 16)
    s = _flag(symmetric, "symmetric")
    p = _real(percentile, "percentile")
    if not 0.0 < p <= 100.0:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    return b, s, p


def _quantile(h: np.ndarray, q: float) -> float:
    """The position, in bins from the start of ``h``, below which the share ``q``
    of its counts lies; linear within a bin."""
    cum = np.cumsum(h)
    target = q * cum[-1]  # q <= 1, so target <= cum[-1]
    if target <= 0.0:
        return float(np.flatnonzero(h)[0])
    i = int(np.searchsorted(cum, target, side="left"))  # cum[i-1] < target <= cum[i]
    below = cum[i - 1] if i else 0.0
    return i + float((target - below) / h[i])


def _xlogx(v: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(v > 0, v * np.log(np.where(v > 0, v, 1.0)), 0.0)


def _clip_errors(h: np.ndarray) -> np.ndarray:
    """``out[t]``: the squared error of clipping the bins below edge ``t`` to it,
    in squared bin widths (each value uniform in its bin). Sums of non-negative
    terms only, so no cancellation: with ``c[t]`` the count below edge ``t``
    and ``m1[t]`` its first moment about ``t``, ``m1[t+1] = m1[t] + (c[t] +
    c[t+1]) / 2`` and ``m2[t+1] = m2[t] + 2 m1[t] + c[t] + h[t] / 4``."""
    c = np.concatenate(([0.0], np.cumsum(h)))
    m1 = np.concatenate(([0.0], np.cumsum((c[:-1] + c[1:]) * 0.5)))
    m2 = np.concatenate(([0.0], np.cumsum(2.0 * m1[:-1] + c[:-1] + 0.25 * h)))
    return m2 + c / 12.0


def _grid(low: int, high: int) -> np.ndarray:
    """Integers from low to high inclusive: all of them, or about _GRID evenly spread."""
    if high - low + 1 <= _GRID:
        return np.arange(low, high + 1)
    return np.unique(np.linspace(low, high, _GRID).round().astype(np.int64))


def _kl_windows(g: np.ndarray, start: np.ndarray, stop: np.ndarray, levels: int) -> np.ndarray:
    """KL(P || Q) of TensorRT's entropy calibration for the windows
    ``g[start[k]:stop[k]]`` (each at least ``levels`` bins) quantized to
    ``levels`` bins, all windows at once.

    With prefix sums of the counts (``cg``), of the non-empty bins (``cz``)
    and of ``g log g`` (``cgl``), a window costs one row of ``levels`` groups:
    inside a group every non-empty bin of Q holds the group's mean, so
    ``sum P log Q`` over the group is ``G log(G / Z)``; the folded outliers and
    the smoothing only touch the two end bins and the normalisation.
    """
    cg = np.concatenate(([0.0], np.cumsum(g)))
    cz = np.concatenate(([0], np.cumsum(g > 0)))
    cgl = np.concatenate(([0.0], np.cumsum(_xlogx(g))))
    total = cg[-1]
    out = np.empty(start.size)
    groups = np.arange(levels + 1, dtype=np.int64)
    piece = max(1, _KL_PIECE // (levels + 1))
    for k0 in range(0, start.size, piece):
        s = start[k0 : k0 + piece]
        e = stop[k0 : k0 + piece]
        n = e - s
        # group j of a window of n bins: [ceil(j n / levels), ceil((j+1) n / levels))
        edges = s[:, None] + (groups[None, :] * n[:, None] + levels - 1) // levels
        gsum = cg[edges[:, 1:]] - cg[edges[:, :-1]]
        nz = cz[edges[:, 1:]] - cz[edges[:, :-1]]
        with np.errstate(divide="ignore", invalid="ignore"):
            plogq = np.where(nz > 0, gsum * np.log(gsum / np.maximum(nz, 1)), 0.0).sum(axis=1)
        below = cg[s]
        above = total - cg[e]
        first = g[s]
        last = g[e - 1]
        q_first = np.where(first > 0, gsum[:, 0] / np.maximum(nz[:, 0], 1), _KL_EPS)
        q_last = np.where(last > 0, gsum[:, -1] / np.maximum(nz[:, -1], 1), _KL_EPS)
        plogq += below * np.log(q_first) + above * np.log(q_last)
        plogp = (
            (cgl[e] - cgl[s])
            + _xlogx(first + below)
            - _xlogx(first)
            + _xlogx(last + above)
            - _xlogx(last)
        )
        q_total = (cg[e] - cg[s]) + _KL_EPS * (n - (cz[e] - cz[s]))
        out[k0 : k0 + piece] = (plogp - plogq) / total - math.log(total) + np.log(q_total)
    return out


def _coarse_to_fine(n: int, cost: Any) -> int:
    """The index in ``range(n)`` where ``cost(indices)`` is least, searched on
    every ``step``-th index and then around the best one: the KL divergence
    of neighbouring windows differs little, and a search of every window of
    a wide histogram costs thousands of rows of ``levels`` groups."""
    step = max(1, n // _COARSE)
    coarse = np.arange(0, n, step)
    k = int(coarse[np.argmin(cost(coarse))])
    if step == 1:
        return k
    fine = np.arange(max(0, k - step + 1), min(n, k + step))
    return int(fine[np.argmin(cost(fine))])


class RangeObserver:
    """Statistics of one tensor's float values over calibration batches, and
    the clipping ranges the calibration methods draw from them.

    ``bins`` (8 to 65536) is the histogram's fixed size, whatever the number
    of batches; ``momentum`` (in (0, 1]) the averaging constant of the
    ``moving_average`` method. See the module docstring for the histogram and
    the methods.
    """

    __slots__ = (
        "_bins",
        "_count",
        "_counts",
        "_ema_max",
        "_ema_min",
        "_exp",
        "_first",
        "_max",
        "_min",
        "_momentum",
        "_zeros",
    )

    def __init__(self, *, bins: int = 2048, momentum: float = 0.01) -> None:
        self._bins = _integer(bins, "bins", _MIN_BINS, _MAX_BINS)
        m = _real(momentum, "momentum")
        if not 0.0 < m <= 1.0:
            raise ValueError(f"momentum must be in (0, 1], got {m}")
        self._momentum = m
        self._counts = np.zeros(self._bins, dtype=np.int64)
        self._exp = _EXP_MIN  # bin width 2**_exp
        self._first = 0  # bin k of the histogram holds [(first + k) w, (first + k + 1) w)
        self._count = 0
        self._zeros = 0  # values exactly zero, all in the bin [0, w)
        self._min = math.inf
        self._max = -math.inf
        self._ema_min = math.inf
        self._ema_max = -math.inf

    # --- statistics ---------------------------------------------------------

    def update(self, x: Any) -> None:
        """Adds one batch of the tensor's values (any shape, real dtype; held
        as float32). NaN, infinite or empty input is a ValueError and leaves
        the observer as it was."""
        flat, lo, hi = _batch_values(x)
        bins = self._bins
        all_lo = min(lo, self._min, 0.0)
        all_hi = max(hi, self._max, 0.0)
        exp, first, counts = self._exp, self._first, self._counts
        if (
            self._count == 0
            or _floor_div(all_lo, exp) < first
            or _floor_div(all_hi, exp) >= first + bins
        ):
            exp = _fit_exponent(all_lo, all_hi, bins, exp)  # never narrower than now
            first = _floor_div(all_lo, exp)
            counts = self._rebinned(exp, first)
        batch = np.zeros(bins, dtype=np.int64)
        zeros = int(_histogram(flat, np.float32(math.ldexp(1.0, -exp)), first, batch))
        # Commit only now: an interrupted kernel leaves the observer unchanged.
        counts = counts + batch
        if self._count == 0:
            self._ema_min, self._ema_max = lo, hi
        else:
            self._ema_min += self._momentum * (lo - self._ema_min)
            self._ema_max += self._momentum * (hi - self._ema_max)
        self._counts, self._exp, self._first = counts, exp, first
        self._count += flat.size
        self._zeros += zeros
        self._min = min(self._min, lo)
        self._max = max(self._max, hi)

    def _rebinned(self, exp: int, first: int) -> np.ndarray:
        """The counts on bins of width 2**exp starting at bin ``first``: each new
        bin the exact sum of the old ones inside it."""
        out = np.zeros(self._bins, dtype=np.int64)
        used = np.flatnonzero(self._counts)
        if used.size:
            # |old bin| < 2**17, so a shift by more than 40 gives the same 0 or -1
            shift = min(exp - self._exp, 40)
            target = ((used + self._first) >> shift) - first
            np.add.at(out, target, self._counts[used])
        return out

    @property
    def count(self) -> int:
        """Values observed so far."""
        return self._count

    @property
    def min(self) -> float:
        """The least value observed (``inf`` before the first batch)."""
        return self._min

    @property
    def max(self) -> float:
        """The greatest value observed (``-inf`` before the first batch)."""
        return self._max

    @property
    def bins(self) -> int:
        return self._bins

    def histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """``(counts, edges)``: a copy of the ``bins`` int64 counts and their
        ``bins + 1`` float64 edges (bin ``k`` holds ``[edges[k], edges[k+1])``)."""
        width = math.ldexp(1.0, self._exp)
        edges = (self._first + np.arange(self._bins + 1, dtype=np.float64)) * width
        return self._counts.copy(), edges

    # --- ranges -------------------------------------------------------------

    def range(
        self,
        method: str,
        *,
        bits: int = 8,
        symmetric: bool = False,
        percentile: float = 99.99,
    ) -> tuple[float, float]:
        """``(lo, hi)`` by ``method`` (one of :data:`METHODS`) for a ``bits``-bit
        quantizer (2 to 16), with ``lo <= 0 <= hi`` and ``lo < hi``;
        ``symmetric`` gives ``lo == -hi``. ``percentile`` (in (0, 100]) is used
        by the ``percentile`` method only."""
        if not isinstance(method, str):
            raise TypeError(f"method must be a str, got {type(method).__name__}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
        b, s, p = _options(bits, symmetric, percentile)
        self._require_data()
        return self._range(method, b, s, p)

    def candidates(
        self, *, bits: int = 8, symmetric: bool = False, percentile: float = 99.99
    ) -> dict[str, tuple[float, float]]:
        """Every method's range (as :meth:`range`), keyed by method."""
        b, s, p = _options(bits, symmetric, percentile)
        self._require_data()
        return {m: self._range(m, b, s, p) for m in METHODS}

    def _require_data(self) -> None:
        if self._count == 0:
            raise ValueError("the observer has no data: call update() with a batch first")

    def _range(self, method: str, bits: int, symmetric: bool, percentile: float):
        if method == "minmax":
            lo, hi = self._min, self._max
        elif method == "moving_average":
            lo, hi = self._ema_min, self._ema_max
        elif method == "percentile":
            lo, hi = self._percentile(percentile, symmetric)
        elif method == "mse":
            lo, hi = self._mse(bits, symmetric)
        else:
            lo, hi = self._entropy(bits, symmetric)
        return self._finish(lo, hi, symmetric, fallback=method != "minmax")

    def _finish(self, lo: float, hi: float, symmetric: bool, fallback: bool):
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        if symmetric:
            hi = max(-lo, hi)
            lo = -hi
        if hi - lo >= _MIN_SPAN:
            return float(lo), float(hi)
        if fallback:
            return self._finish(self._min, self._max, symmetric, fallback=False)
        return (-_ZERO_SPAN if symmetric else 0.0), _ZERO_SPAN

    # The histogram-based methods work in bin units on the histogram's own
    # indices: edge t is the value (first + t) * w; z is the edge at zero.

    def _layout(self, exact_zeros: bool = True) -> tuple[np.ndarray, float, int, int, int] | None:
        """(counts as float64, bin width, zero edge z, data edges lo, hi), or
        None when no count is left. ``exact_zeros=False`` leaves out the
        values exactly zero: every range quantizes them exactly, so they weigh
        on no choice of the mse and entropy methods (for a ReLU's output, half
        the counts, in one bin, that would pull the entropy method's window
        in: its Q spreads that bin's count over the whole first quantized bin)."""
        h = self._counts.astype(np.float64)
        z = -self._first
        if not exact_zeros:
            h[z] -= self._zeros
        used = np.flatnonzero(h)
        if used.size == 0:
            return None
        return h, math.ldexp(1.0, self._exp), z, min(int(used[0]), z), max(int(used[-1]) + 1, z)

    def _folded(self, h: np.ndarray, z: int) -> np.ndarray:
        """The histogram of |x|: bin j holds [j w, (j+1) w) and its mirror."""
        g = np.zeros(max(h.size - z, z))
        g[: h.size - z] += h[z:]
        g[:z] += h[:z][::-1]
        return g

    def _clamped(self, lo: float, hi: float, symmetric: bool) -> tuple[float, float]:
        """lo, hi within the observed data (a bin edge may lie beyond it)."""
        if symmetric:
            t = min(hi, max(-self._min, self._max))
            return -t, t
        return max(lo, min(self._min, 0.0)), min(hi, max(self._max, 0.0))

    def _percentile(self, percentile: float, symmetric: bool) -> tuple[float, float]:
        layout = self._layout()
        assert layout is not None  # count > 0
        h, w, z, _, _ = layout
        if symmetric:
            t = _quantile(self._folded(h, z), percentile / 100.0) * w
            return self._clamped(-t, t, True)
        tail = (100.0 - percentile) / 200.0
        lo = (_quantile(h, tail) - z) * w
        hi = (_quantile(h, 1.0 - tail) - z) * w
        return max(lo, self._min), min(hi, self._max)

    def _mse(self, bits: int, symmetric: bool) -> tuple[float, float]:
        layout = self._layout(exact_zeros=False)
        if layout is None:
            return 0.0, 0.0
        h, w, z, a0, b0 = layout
        left = _clip_errors(h)  # left[t]: clipping the bins below edge t
        right = _clip_errors(h[::-1])[::-1]  # right[t]: clipping the bins from edge t up
        below = np.concatenate(([0.0], np.cumsum(h)))
        if symmetric:
            t = np.arange(1, max(z - a0, b0 - z) + 1)
            lo_edge = np.maximum(z - t, 0)
            hi_edge = np.minimum(z + t, h.size)
            step = t / (2 ** (bits - 1) - 1)
            err = (
                left[lo_edge]
                + right[hi_edge]
                + (below[hi_edge] - below[lo_edge]) * step * step / 12.0
            )
            best = int(t[np.argmin(err)]) * w
            return self._clamped(-best, best, True)

        steps = 2**bits - 1

        def search(ta: np.ndarray, tb: np.ndarray) -> tuple[int, int]:
            a = ta[:, None]
            b = tb[None, :]
            step = (b - a) / steps
            err = left[a] + right[b] + (below[b] - below[a]) * step * step / 12.0
            err = np.where(b > a, err, np.inf)
            i, j = np.unravel_index(np.argmin(err), err.shape)
            return int(ta[i]), int(tb[j])

        if (z - a0 + 1) * (b0 - z + 1) <= _MSE_EXHAUSTIVE:
            ta, tb = search(np.arange(a0, z + 1), np.arange(z, b0 + 1))
        else:
            grid_a, grid_b = _grid(a0, z), _grid(z, b0)
            ta, tb = search(grid_a, grid_b)
            da = max(1, -(-(z - a0) // (grid_a.size - 1 or 1)))
            db = max(1, -(-(b0 - z) // (grid_b.size - 1 or 1)))
            ta, tb = search(
                np.arange(max(a0, ta - da), min(z, ta + da) + 1),
                np.arange(max(z, tb - db), min(b0, tb + db) + 1),
            )
        return self._clamped((ta - z) * w, (tb - z) * w, False)

    def _entropy(self, bits: int, symmetric: bool) -> tuple[float, float]:
        layout = self._layout(exact_zeros=False)
        if layout is None:
            return 0.0, 0.0
        h, w, z, a0, b0 = layout
        if symmetric:
            g = self._folded(h, z)
            top = int(np.flatnonzero(g)[-1]) + 1
            levels = 2 ** (bits - 1)
            if top < levels:  # the quantization is finer than the histogram
                return self._clamped(-top * w, top * w, True)
            stop = np.arange(levels, top + 1)
            k = _coarse_to_fine(stop.size, lambda i: _kl_windows(g, 0 * stop[i], stop[i], levels))
            best = int(stop[k]) * w
            return self._clamped(-best, best, True)

        levels = 2**bits
        t = np.arange(1, max(z - a0, b0 - z) + 1)
        start = np.maximum(z - t, a0)
        stop = np.minimum(z + t, b0)
        wide = stop - start >= levels
        if not wide.any():  # the quantization is finer than the histogram
            return self._clamped((a0 - z) * w, (b0 - z) * w, False)
        start, stop = start[wide], stop[wide]
        k = _coarse_to_fine(start.size, lambda i: _kl_windows(h, start[i], stop[i], levels))
        return self._clamped((int(start[k]) - z) * w, (int(stop[k]) - z) * w, False)

    def __repr__(self) -> str:
        if self._count == 0:
            return f"RangeObserver(bins={self._bins}, no data)"
        return (
            f"RangeObserver(bins={self._bins}, count={self._count}, min={self._min:.6g},"
            f" max={self._max:.6g}, bin width=2**{self._exp})"
        )
