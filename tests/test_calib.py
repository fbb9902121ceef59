"""lowp.quantizer._calib: the activation-range observer of post-training
quantization, checked against distributions whose answers are known."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from lowp import _core
from lowp.quantizer import _calib
from lowp.quantizer._calib import METHODS, RangeObserver

RNG_SEED = 20240601


def observe(batches, **kwargs) -> RangeObserver:
    obs = RangeObserver(**kwargs)
    for b in batches:
        obs.update(b)
    return obs


def gaussian(batches=8, size=200_000, scale=1.0, seed=RNG_SEED):
    rng = np.random.default_rng(seed)
    return [(scale * rng.standard_normal(size)).astype(np.float32) for _ in range(batches)]


def bin_width(obs: RangeObserver) -> float:
    edges = obs.histogram()[1]
    return float(edges[1] - edges[0])


def reference_histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per [edges[k], edges[k+1]), independently of the observer: the
    width is a power of two, so value / width is exact in float64."""
    width = edges[1] - edges[0]
    k = np.floor(values.astype(np.float64) / width) - edges[0] / width
    return np.bincount(k.astype(np.int64), minlength=edges.size - 1)


# --- the histogram ------------------------------------------------------------


def test_histogram_counts_every_value_in_its_bin():
    batches = gaussian(batches=3, size=50_000)
    obs = observe(batches)
    counts, edges = obs.histogram()
    values = np.concatenate(batches)
    assert counts.sum() == obs.count == values.size
    np.testing.assert_array_equal(counts, reference_histogram(values, edges))
    assert edges[0] <= values.min() and values.max() < edges[-1]


def test_rebinning_after_growth_is_exact_and_order_free():
    # every batch wider than the last: the width doubles many times
    rng = np.random.default_rng(1)
    batches = [
        (rng.standard_normal(20_000) * 3.0**i + (i - 3)).astype(np.float32) for i in range(8)
    ]
    grown = observe(batches)
    once = observe([np.concatenate(batches)])
    backwards = observe(batches[::-1])
    values = np.concatenate(batches)
    for obs in (grown, once, backwards):
        counts, edges = obs.histogram()
        assert obs.count == counts.sum() == values.size
        np.testing.assert_array_equal(counts, reference_histogram(values, edges))
    # the same width, and the same counts on the same edges whatever the order
    np.testing.assert_array_equal(grown.histogram()[1], once.histogram()[1])
    np.testing.assert_array_equal(grown.histogram()[0], once.histogram()[0])
    assert grown.range("percentile") == once.range("percentile") == backwards.range("percentile")
    # quantiles after growth still within a bin of the data's
    w = bin_width(grown)
    for p in (99.0, 99.9):
        lo, hi = grown.range("percentile", percentile=p)
        ref_lo, ref_hi = np.percentile(values, [(100 - p) / 2, 100 - (100 - p) / 2])
        assert abs(lo - min(ref_lo, 0.0)) <= w
        assert abs(hi - ref_hi) <= w


def test_histogram_memory_is_fixed():
    rng = np.random.default_rng(2)
    obs = RangeObserver(bins=512)
    tracemalloc.start()
    try:
        for i in range(300):
            # the range keeps growing, then shrinks: the bins never change in number
            scale = 1.001**i if i < 200 else 0.5
            obs.update(rng.standard_normal(2_000).astype(np.float32) * scale)
            if i == 20:
                held = tracemalloc.get_traced_memory()[0]
            assert obs.histogram()[0].size == 512
        grown = tracemalloc.get_traced_memory()[0] - held
    finally:
        tracemalloc.stop()
    assert obs.count == 300 * 2_000
    assert grown < 16 * 1024, f"the observer's memory grew by {grown} bytes over 280 batches"


def test_bins_span_at_least_half_the_data():
    for scale in (1e-3, 1.0, 7.0, 1e6):
        obs = observe(gaussian(batches=2, size=10_000, scale=scale), bins=1024)
        span = max(obs.max, 0.0) - min(obs.min, 0.0)
        assert span / bin_width(obs) > 512


def test_native_histogram_matches_numpy_bit_for_bit():
    if not hasattr(_core, "histogram_f32"):
        pytest.skip("this lowp._core was built without histogram_f32")
    rng = np.random.default_rng(3)
    special = np.array(
        [0.0, -0.0, 1e-45, -1e-45, 1.0, -1.0, 0.5, -0.5, 3.75, -3.75, 1e30, -1e30], np.float32
    )
    for exp, first, bins in ((-4, -40, 64), (0, 0, 8), (3, -5, 37), (-126, -3, 9), (20, -1, 8)):
        inv = np.float32(2.0**-exp)
        x = np.concatenate(
            [special, (rng.standard_normal(5_003) * 2.0 ** (exp + 4)).astype(np.float32)]
        )
        # on the edges: k * w for k across (and beyond) the window
        x = np.concatenate(
            [x, (np.arange(first - 3, first + bins + 3) * 2.0**exp).astype(np.float32)]
        )
        native = np.full(bins, 7, np.int64)
        numpy = np.full(bins, 7, np.int64)
        zn = _core.histogram_f32(x, inv, first, native)
        zp = _calib._histogram_numpy(x, inv, first, numpy)
        np.testing.assert_array_equal(native, numpy)
        assert zn == zp == np.count_nonzero(x == 0)
        assert native.sum() == x.size + 7 * bins


def test_numpy_accumulation_gives_the_same_observer(monkeypatch):
    batches = [*gaussian(batches=3, size=30_000), np.float32(7.0) * gaussian(batches=1)[0]]
    native = observe(batches)
    monkeypatch.setattr(_calib, "_histogram", _calib._histogram_numpy)
    numpy = observe(batches)
    np.testing.assert_array_equal(native.histogram()[0], numpy.histogram()[0])
    assert native.candidates() == numpy.candidates()


# --- the vectorized searches against their definitions ---------------------------


def kl_by_definition(g: np.ndarray, start: int, stop: int, levels: int) -> float:
    """TensorRT's KL(P || Q) for one window, built bin by bin."""
    n = stop - start
    raw = g[start:stop].astype(np.float64)
    p = raw.copy()
    p[0] += g[:start].sum()  # the outliers fold into the end bins
    p[-1] += g[stop:].sum()
    group = np.arange(n) * levels // n
    q = np.zeros(n)
    for k in range(levels):
        members = group == k
        nonzero = members & (raw > 0)
        if nonzero.any():
            q[nonzero] = raw[members].sum() / nonzero.sum()
    q[q == 0] = _calib._KL_EPS
    p, q = p / p.sum(), q / q.sum()
    used = p > 0
    return float(np.sum(p[used] * np.log(p[used] / q[used])))


def test_entropy_search_matches_the_definition():
    rng = np.random.default_rng(11)
    for levels in (2, 8, 16):
        g = rng.poisson(rng.uniform(0, 30, 90)).astype(np.float64)
        g[rng.random(90) < 0.3] = 0  # empty bins, also at window ends
        g[[0, 45, 89]] = 0
        start = rng.integers(0, 40, 60)
        stop = np.minimum(start + levels + rng.integers(0, 50, 60), 90)
        start[:3], stop[:3] = (0, 45, 3), (90, 90, 3 + levels)
        got = _calib._kl_windows(g, start, stop, levels)
        want = [kl_by_definition(g, s, e, levels) for s, e in zip(start, stop)]
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_clipping_errors_match_the_definition():
    rng = np.random.default_rng(12)
    h = rng.poisson(5.0, 40).astype(np.float64)
    centers = np.arange(40) + 0.5
    want = [np.sum(h[:t] * ((t - centers[:t]) ** 2 + 1 / 12)) for t in range(41)]
    np.testing.assert_allclose(_calib._clip_errors(h), want, rtol=1e-12)


# --- the methods ----------------------------------------------------------------


def test_minmax_is_exact_on_uniform_data():
    rng = np.random.default_rng(4)
    batches = [rng.uniform(-1.5, 2.5, 30_000).astype(np.float32) for _ in range(5)]
    obs = observe(batches)
    values = np.concatenate(batches)
    assert obs.range("minmax") == (float(values.min()), float(values.max()))
    assert obs.min == float(values.min()) and obs.max == float(values.max())
    assert obs.range("minmax", symmetric=True) == (-float(values.max()), float(values.max()))
    positive = observe([b + 2.0 for b in batches])  # all in [0.5, 4.5]: lo moves to 0
    assert positive.range("minmax") == (0.0, float(values.max() + 2.0))


def test_moving_average_follows_pytorch_recurrence():
    rng = np.random.default_rng(5)
    batches = [rng.standard_normal(1_000).astype(np.float32) * (1 + i) for i in range(20)]
    for momentum in (0.01, 0.3, 1.0):
        obs = observe(batches, momentum=momentum)
        lo, hi = float(batches[0].min()), float(batches[0].max())
        for b in batches[1:]:
            lo += momentum * (float(b.min()) - lo)
            hi += momentum * (float(b.max()) - hi)
        assert obs.range("moving_average") == pytest.approx((lo, hi), rel=1e-12)
        assert obs.range("moving_average", symmetric=True) == pytest.approx(
            (-max(-lo, hi), max(-lo, hi)), rel=1e-12
        )
    last = observe(batches, momentum=1.0).range("moving_average")
    assert last == (float(batches[-1].min()), float(batches[-1].max()))


@pytest.mark.parametrize("p", [90.0, 99.0, 99.9, 99.99, 100.0])
def test_percentile_matches_numpy_within_a_bin(p):
    batches = gaussian()
    values = np.concatenate(batches)
    obs = observe(batches)
    w = bin_width(obs)
    lo, hi = obs.range("percentile", percentile=p)
    ref_lo, ref_hi = np.percentile(values, [(100 - p) / 2, 100 - (100 - p) / 2])
    assert abs(lo - ref_lo) <= w and abs(hi - ref_hi) <= w
    lo, hi = obs.range("percentile", percentile=p, symmetric=True)
    ref = np.percentile(np.abs(values), p)
    assert lo == -hi and abs(hi - ref) <= w
    if p == 100.0:
        assert obs.range("percentile", percentile=p) == obs.range("minmax")


def test_percentile_of_a_one_sided_tensor():
    relu = [np.maximum(b, 0) for b in gaussian()]
    values = np.concatenate(relu)
    obs = observe(relu)
    lo, hi = obs.range("percentile", percentile=99.9)
    assert lo == 0.0
    assert abs(hi - np.percentile(values, 100 - 0.05)) <= bin_width(obs)


def gaussian_mse_optimum(steps_per_side: float) -> float:
    """The clipping a of a unit Gaussian that minimises rounding noise
    (a / steps)**2 / 12 inside plus the squared clipping error outside."""

    def tail(a):
        return 0.5 * math.erfc(a / math.sqrt(2))

    def err(a):
        step = a / steps_per_side
        density = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
        return step * step / 12 * (1 - 2 * tail(a)) + 2 * ((1 + a * a) * tail(a) - a * density)

    grid = np.linspace(0.3, 6.0, 57_001)
    return float(grid[np.argmin([err(a) for a in grid])])


@pytest.mark.parametrize("bits", [3, 4, 8])
def test_mse_finds_the_gaussian_optimum(bits):
    obs = observe(gaussian(batches=10))
    optimum = gaussian_mse_optimum(2 ** (bits - 1) - 1)  # symmetric: 2**(bits-1) - 1 steps a side
    lo, hi = obs.range("mse", bits=bits, symmetric=True)
    assert lo == -hi
    assert hi == pytest.approx(optimum, abs=0.06), (bits, optimum)
    lo, hi = obs.range("mse", bits=bits)  # 2**bits - 1 steps over [lo, hi]
    optimum = gaussian_mse_optimum((2**bits - 1) / 2)
    assert -lo == pytest.approx(optimum, abs=0.1) and hi == pytest.approx(optimum, abs=0.1)
    if bits == 8:
        assert 3.8 < hi < 4.05  # the well-known ~3.9 sigma at 8 bits


def test_fewer_bits_clip_harder_with_mse():
    obs = observe(gaussian(batches=4))
    relu = observe([np.maximum(b, 0) for b in gaussian(batches=4)])
    for o, symmetric in ((obs, True), (obs, False), (relu, False)):
        his = [o.range("mse", bits=b, symmetric=symmetric)[1] for b in range(2, 9)]
        assert all(a < b for a, b in zip(his, his[1:])), his
        assert his[-1] < o.max


def test_mse_leaves_a_compact_distribution_unclipped():
    rng = np.random.default_rng(6)
    batches = [rng.uniform(-1.0, 1.0, 100_000).astype(np.float32) for _ in range(3)]
    obs = observe(batches)
    lo, hi = obs.range("mse")
    assert lo < -0.99 and hi > 0.99


def test_entropy_clips_heavy_tails():
    rng = np.random.default_rng(7)
    batches = [rng.standard_t(2.0, 100_000).astype(np.float32) for _ in range(6)]
    values = np.concatenate(batches)
    obs = observe(batches)
    for symmetric in (False, True):
        lo, hi = obs.range("entropy", symmetric=symmetric)
        # the outliers go: far inside the observed max ...
        assert hi < 0.25 * max(-obs.min, obs.max)
        # ... but the bulk stays
        assert hi > np.percentile(np.abs(values), 99.0)
        assert lo < -np.percentile(np.abs(values), 99.0)
    relu = observe([np.maximum(b, 0) for b in batches])  # the one-sided search over [0, max]
    lo, hi = relu.range("entropy")
    assert lo == 0.0 and np.percentile(values, 99.0) < hi < 0.25 * relu.max


def test_entropy_leaves_a_uniform_distribution_unclipped():
    rng = np.random.default_rng(8)
    batches = [rng.uniform(0.0, 3.0, 100_000).astype(np.float32) for _ in range(3)]
    for symmetric in (False, True):
        hi = observe(batches).range("entropy", symmetric=symmetric)[1]
        assert hi > 0.97 * 3.0


def test_entropy_ignores_a_relus_zeros():
    # Half the values are exactly 0, all in the first bin. Were they counted,
    # Q would spread them over the first quantized bin and the search would
    # shrink the window until that bin is one histogram bin (about 2 sigma).
    relu = observe([np.maximum(b, 0) for b in gaussian()])
    gauss = observe(gaussian())
    for symmetric in (False, True):
        hi = relu.range("entropy", symmetric=symmetric)[1]
        assert hi > 3.5
        assert hi == pytest.approx(gauss.range("entropy", symmetric=True)[1], rel=0.1)


def test_sixteen_bits_clip_little():
    obs = observe(gaussian(batches=4))
    assert obs.range("entropy", bits=16) == obs.range("minmax")
    lo, hi = obs.range("mse", bits=16)
    assert lo < 0.98 * obs.min and hi > 0.98 * obs.max


# --- what every range satisfies -------------------------------------------------


def distributions():
    rng = np.random.default_rng(9)
    g = rng.standard_normal(50_000).astype(np.float32)
    return {
        "gaussian": [g, 2 * g],
        "relu": [np.maximum(g, 0)],
        "positive": [g * 0.1 + 5.0],
        "negative": [-np.abs(g) - 1.0],
        "constant zero": [np.zeros(1000, np.float32)],
        "constant": [np.full(1000, 5.0, np.float32)],
        "negative zero": [np.full(10, -0.0, np.float32)],
        "one value": [np.float32(-3.0)],
        "tiny": [g * np.float32(1e-30)],
        "sparse": [np.where(rng.random(200_000) < 1e-5, 1.0, 0.0).astype(np.float32)],
        "huge": [np.array([-3e38, 1.0, 3e38], np.float32)],
    }


@pytest.mark.parametrize("name", list(distributions()))
@pytest.mark.parametrize("bits", [2, 8, 16])
def test_every_range_contains_zero_and_symmetric_is_symmetric(name, bits):
    obs = observe(distributions()[name])
    for symmetric in (False, True):
        cands = obs.candidates(bits=bits, symmetric=symmetric)
        assert tuple(cands) == METHODS
        for method, (lo, hi) in cands.items():
            assert isinstance(lo, float) and isinstance(hi, float)
            assert math.isfinite(lo) and math.isfinite(hi)
            assert lo <= 0.0 <= hi and lo < hi, (method, lo, hi)
            if symmetric:
                assert lo == -hi, (method, lo, hi)
            assert (lo, hi) == obs.range(method, bits=bits, symmetric=symmetric)
            # no method reaches past the data (the moving average of batch
            # extremes neither), but for the small range of a degenerate one
            if symmetric:
                assert hi <= max(-obs.min, obs.max, 2.0**-8)
            else:
                assert lo >= min(obs.min, 0.0) and hi <= max(obs.max, 2.0**-8)


def test_a_constant_zero_tensor_gets_a_small_positive_range():
    obs = observe([np.zeros((4, 4), np.float32)])
    for method in METHODS:
        lo, hi = obs.range(method)
        assert lo == 0.0 and 0.0 < hi <= 2.0**-8
        lo, hi = obs.range(method, symmetric=True)
        assert lo == -hi and 0.0 < hi <= 2.0**-8


def test_input_dtypes_and_layouts():
    rng = np.random.default_rng(10)
    base = rng.standard_normal((64, 48)).astype(np.float32)
    ref = observe([base])
    for variant in (
        base.astype(np.float64),
        np.asfortranarray(base),
        base.astype(">f4"),
        base.T.copy().T,
    ):
        obs = observe([variant])
        np.testing.assert_array_equal(obs.histogram()[0], ref.histogram()[0])
        assert obs.candidates() == ref.candidates()
    half = observe([base.astype(np.float16)])
    assert half.count == base.size
    ints = observe([np.arange(-5, 300, dtype=np.int32)])
    assert ints.range("minmax") == (-5.0, 299.0)
    strided = observe([base[:, ::3]])
    assert strided.count == base[:, ::3].size and strided.max == float(base[:, ::3].max())


# --- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "error", "words"),
    [
        (np.array([1.0, np.nan], np.float32), ValueError, "NaN"),
        (np.array([[np.inf, 0.0]], np.float32), ValueError, "infinite"),
        (np.array([-np.inf], np.float64), ValueError, "infinite"),
        (np.array([np.nan, np.inf]), ValueError, "NaN"),
        (np.array([1e39]), ValueError, "float32"),
        (np.zeros((3, 0), np.float32), ValueError, "empty"),
        ([], ValueError, "empty"),
        (np.array([True, False]), TypeError, "real numbers"),
        (np.array([1 + 2j]), TypeError, "real numbers"),
        (np.array(["a"]), TypeError, "real numbers"),
    ],
)
def test_bad_batches_are_refused_and_change_nothing(x, error, words):
    obs = observe([np.array([-1.0, 2.0], np.float32)])
    before = (obs.count, obs.min, obs.max, obs.histogram()[0].tolist(), obs.candidates())
    with pytest.raises(error, match=words) as info:
        obs.update(x)
    assert "x" in str(info.value)
    after = (obs.count, obs.min, obs.max, obs.histogram()[0].tolist(), obs.candidates())
    assert after == before


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"method": "kl"}, ValueError, "method must be one of minmax, moving_average"),
        ({"method": "MSE"}, ValueError, "method"),
        ({"method": None}, TypeError, "method"),
        ({"method": "mse", "bits": 1}, ValueError, r"bits must be in \[2, 16\], got 1"),
        ({"method": "mse", "bits": 17}, ValueError, "bits"),
        ({"method": "mse", "bits": 8.0}, TypeError, "bits"),
        ({"method": "mse", "bits": True}, TypeError, "bits"),
        ({"method": "percentile", "percentile": 0}, ValueError, r"percentile must be in \(0, 1"),
        ({"method": "percentile", "percentile": -5.0}, ValueError, "percentile"),
        ({"method": "percentile", "percentile": 100.01}, ValueError, "percentile"),
        ({"method": "percentile", "percentile": float("nan")}, ValueError, "percentile"),
        ({"method": "percentile", "percentile": "99"}, TypeError, "percentile"),
        ({"method": "minmax", "symmetric": 1}, TypeError, "symmetric"),
    ],
)
def test_bad_range_arguments(kwargs, error, words):
    obs = observe(gaussian(batches=1, size=100))
    method = kwargs.pop("method")
    with pytest.raises(error, match=words):
        obs.range(method, **kwargs)
    if method in METHODS:
        with pytest.raises(error, match=words):
            obs.candidates(**kwargs)


def test_bad_observer_arguments_and_no_data():
    for kwargs, error, words in (
        ({"bins": 4}, ValueError, r"bins must be in \[8, 65536\]"),
        ({"bins": 1 << 17}, ValueError, "bins"),
        ({"bins": 2048.0}, TypeError, "bins"),
        ({"momentum": 0.0}, ValueError, r"momentum must be in \(0, 1\]"),
        ({"momentum": 1.5}, ValueError, "momentum"),
        ({"momentum": float("inf")}, ValueError, "momentum"),
        ({"momentum": None}, TypeError, "momentum"),
    ):
        with pytest.raises(error, match=words):
            RangeObserver(**kwargs)
    with pytest.raises(TypeError):
        RangeObserver(2048)  # keyword only
    obs = RangeObserver()
    assert obs.count == 0 and obs.min == math.inf and obs.max == -math.inf
    with pytest.raises(ValueError, match="no data"):
        obs.range("minmax")
    with pytest.raises(ValueError, match="no data"):
        obs.candidates()
