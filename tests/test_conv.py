"""Convolution and transposed convolution: lowp.reference against PyTorch's
float64 convolutions, then every lowp path bit for bit against the reference
(functional and packed forms, int32 and fused output stage, canaries)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lowp
from lowp import reference as ref


def _rand(rng, shape, dtype=np.uint8):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, size=shape, dtype=np.int64).astype(dtype)


# ---------------------------------------------------------------------------
# The reference itself: padding rules, then PyTorch float64 on shifted values.


@pytest.mark.parametrize(
    ("size", "k", "stride", "pads", "out"),
    [
        (15, 3, 2, (1, 1), 8),
        (17, 3, 2, (1, 1), 9),
        (32, 3, 2, (0, 1), 16),  # the odd extra goes to the bottom/right
        (8, 3, 1, (1, 1), 8),
        (8, 4, 1, (1, 2), 8),
        (7, 5, 3, (2, 2), 3),
        (1, 3, 1, (1, 1), 1),
        (2, 1, 2, (0, 0), 1),
        (5, 2, 3, (0, 0), 2),
    ],
)
def test_same_padding_rule(size, k, stride, pads, out):
    top, bottom, left, right = ref.conv_padding((size, 4), (k, 1), (stride, 1), "same")
    assert (top, bottom) == pads
    assert (left, right) == (0, 0)
    x = np.zeros((1, size, 4, 1), np.uint8)
    w = np.zeros((1, k, 1, 1), np.uint8)
    assert ref.conv2d(x, w, 0, 0, stride=(stride, 1), padding="same").shape == (1, out, 4, 1)


@pytest.mark.parametrize(
    ("size", "k", "stride", "crop", "out"),
    [
        (3, 3, 2, (0, 1), 6),  # full 7
        (3, 4, 2, (1, 1), 6),  # full 8
        (5, 2, 2, (0, 0), 10),
        (4, 3, 1, (1, 1), 4),
        (4, 5, 2, (1, 2), 8),
        (3, 1, 2, (0, 0), 6),  # k < stride: full 5, one row past it
    ],
)
def test_same_crop_rule(size, k, stride, crop, out):
    top, bottom, _, _ = ref.conv_transpose_crop((size, 1), (k, 1), (stride, 1), "same")
    assert (top, bottom) == crop
    x = np.ones((1, size, 1, 1), np.uint8)
    w = np.ones((1, k, 1, 1), np.uint8)
    got = ref.conv_transpose2d(x, w, 0, 0, stride=(stride, 1), padding="same")
    assert got.shape == (1, out, 1, 1)


def test_reference_by_hand():
    # 1 x 3 x 3 x 1 input, 2 x 2 kernel, "valid": each output is a 2 x 2 window.
    x = np.arange(9, dtype=np.uint8).reshape(1, 3, 3, 1) + 10
    w = np.array([1, 2, 3, 4], np.uint8).reshape(1, 2, 2, 1) + 5
    got = ref.conv2d(x, w, 10, 5)
    want = [[0 + 2 + 9 + 16, 1 + 4 + 12 + 20], [3 + 8 + 18 + 28, 4 + 10 + 21 + 32]]
    assert got[0, :, :, 0].tolist() == want
    # Padding with the zero point: the corner of a "same" 3 x 3 on a 1 x 1 input.
    one = np.full((1, 1, 1, 1), 17, np.uint8)
    k3 = np.full((1, 3, 3, 1), 9, np.uint8)
    assert ref.conv2d(one, k3, 7, 6, padding="same")[0, 0, 0, 0] == (17 - 7) * (9 - 6)
    # Transposed: a 2 x 2 stride-2 kernel tiles the output without overlap.
    x = np.array([1, 2, 3, 4], np.uint8).reshape(1, 2, 2, 1)
    w = np.array([1, 10, 100, 1000], np.uint16).reshape(1, 2, 2, 1)
    w = (w % 256).astype(np.uint8)
    got = ref.conv_transpose2d(x, w, 0, 0, stride=2)
    assert got.shape == (1, 4, 4, 1)
    assert got[0, :2, :2, 0].tolist() == [[1, 10], [100, 1000 % 256]]
    assert got[0, 2:, 2:, 0].tolist() == [[4, 40], [400, 4 * (1000 % 256)]]
    # Overlap (3 x 3, stride 1) adds.
    x = np.ones((1, 2, 2, 1), np.uint8)
    w = np.ones((1, 3, 3, 1), np.uint8)
    full = ref.conv_transpose2d(x, w, 0, 0)[0, :, :, 0]
    assert full.tolist() == [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]]


def _torch_conv2d(x, w, x_zp, w_zp, stride, pads):
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    xs = torch.from_numpy(x.astype(np.float64) - x_zp).permute(0, 3, 1, 2)
    ws = torch.from_numpy(w.astype(np.float64) - np.reshape(w_zp, (-1, 1, 1, 1)))
    ws = ws.permute(0, 3, 1, 2)  # OHWI -> OIHW
    top, bottom, left, right = pads
    xs = f.pad(xs, (left, right, top, bottom))  # zero after the shift
    y = f.conv2d(xs, ws, stride=stride)
    return y.permute(0, 2, 3, 1).numpy()


def _torch_conv_transpose2d(x, w, x_zp, w_zp, stride, crop, out_hw):
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    xs = torch.from_numpy(x.astype(np.float64) - x_zp).permute(0, 3, 1, 2)
    ws = torch.from_numpy(w.astype(np.float64) - np.reshape(w_zp, (-1, 1, 1, 1)))
    ws = ws.permute(3, 0, 1, 2)  # TFLite OHWI [Cout, KH, KW, Cin] -> torch [Cin, Cout, KH, KW]
    full = f.conv_transpose2d(xs, ws, stride=stride).permute(0, 2, 3, 1).numpy()
    top, _, left, _ = crop
    out = np.zeros((full.shape[0], *out_hw, full.shape[3]))
    kept = full[:, top : top + out_hw[0], left : left + out_hw[1], :]
    out[:, : kept.shape[1], : kept.shape[2]] = kept
    return out


# (N, H, W, Cin, Cout, KH, KW, stride, padding as the reference takes it)
TORCH_CONV_CASES = [
    (1, 8, 8, 3, 8, 3, 3, 1, "same"),
    (2, 15, 15, 7, 5, 3, 3, 2, "same"),
    (1, 17, 17, 4, 3, 3, 3, 2, "same"),
    (1, 32, 32, 2, 4, 3, 3, 2, "same"),
    (1, 7, 5, 17, 9, 3, 3, 1, "valid"),
    (3, 5, 9, 16, 16, 1, 1, 1, "valid"),
    (1, 9, 11, 6, 7, 5, 5, 3, (1, 2, 0, 3)),
    (1, 6, 10, 5, 6, 2, 4, (2, 3), "same"),
    (2, 3, 3, 64, 2, 3, 3, 1, 2),
]


@pytest.mark.parametrize("case", TORCH_CONV_CASES)
def test_reference_conv2d_matches_torch(case):
    n, h, w_, cin, cout, kh, kw, stride, padding = case
    rng = np.random.default_rng(h * 100 + cin)
    x = _rand(rng, (n, h, w_, cin))
    w = _rand(rng, (cout, kh, kw, cin))
    w_zp = rng.integers(0, 256, cout)
    got = ref.conv2d(x, w, 201, w_zp, stride=stride, padding=padding)
    pads = ref.conv_padding((h, w_), (kh, kw), stride, padding)
    want = _torch_conv2d(x, w, 201, w_zp, stride, pads)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want.astype(np.int64))


# (N, H, W, Cin, Cout, KH, KW, stride, padding, output H x W)
TORCH_DECONV_CASES = [
    (1, 3, 3, 4, 5, 3, 3, 2, "same", (6, 6)),
    (1, 3, 3, 6, 2, 4, 4, 2, "same", (6, 6)),
    (2, 5, 7, 9, 8, 2, 2, 2, "valid", (10, 14)),
    (1, 4, 4, 3, 3, 3, 3, 1, "valid", (6, 6)),
    (1, 4, 6, 5, 4, 5, 3, (2, 3), (1, 0, 2, 1), (10, 15)),
    (1, 3, 2, 2, 3, 1, 1, 2, "same", (6, 4)),
    (1, 2, 3, 17, 7, 3, 3, 3, 1, (4, 7)),
]


@pytest.mark.parametrize("case", TORCH_DECONV_CASES)
def test_reference_conv_transpose2d_matches_torch(case):
    n, h, w_, cin, cout, kh, kw, stride, padding, out_hw = case
    rng = np.random.default_rng(h * 100 + cin)
    x = _rand(rng, (n, h, w_, cin))
    w = _rand(rng, (cout, kh, kw, cin))
    w_zp = rng.integers(0, 256, cout)
    got = ref.conv_transpose2d(x, w, 33, w_zp, stride=stride, padding=padding)
    crop = ref.conv_transpose_crop((h, w_), (kh, kw), stride, padding)
    want = _torch_conv_transpose2d(x, w, 33, w_zp, stride, crop, out_hw)
    assert got.shape == (n, *out_hw, cout)
    np.testing.assert_array_equal(got, want.astype(np.int64))


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 2),
    h=st.integers(1, 12),
    w_=st.integers(1, 12),
    cin=st.integers(1, 9),
    cout=st.integers(1, 9),
    kh=st.integers(1, 5),
    kw=st.integers(1, 5),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_reference_matches_torch_hypothesis(n, h, w_, cin, cout, kh, kw, sh, sw, seed):
    pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    x = _rand(rng, (n, h, w_, cin))
    w = _rand(rng, (cout, kh, kw, cin))
    x_zp, w_zp = int(rng.integers(0, 256)), rng.integers(0, 256, cout)
    pads = ref.conv_padding((h, w_), (kh, kw), (sh, sw), "same")
    got = ref.conv2d(x, w, x_zp, w_zp, stride=(sh, sw), padding="same")
    np.testing.assert_array_equal(got, _torch_conv2d(x, w, x_zp, w_zp, (sh, sw), pads))
    full = ref.conv_transpose2d(x, w, x_zp, w_zp, stride=(sh, sw))
    want = _torch_conv_transpose2d(x, w, x_zp, w_zp, (sh, sw), (0, 0, 0, 0), full.shape[1:3])
    np.testing.assert_array_equal(full, want)


# ---------------------------------------------------------------------------
# lowp against the reference, bit for bit.

CANARY_I32 = np.int32(-0x5A5A5A5B)  # 0xA5A5A5A5
CANARY_U8 = np.uint8(0xA5)


class ConvCase:
    """One convolution (or transposed convolution) configuration, checked on
    the active path in the functional and the packed form, with canaries
    around the output (fluent setters, as QNNPACK's testers)."""

    def __init__(self, n=1, h=5, w=5, cin=3, cout=4, k=3, seed=0, transposed=False):
        self.n, self.h, self.w, self.cin, self.cout = n, h, w, cin, cout
        self.kh, self.kw = (k, k) if np.ndim(k) == 0 else k
        self.seed, self.transposed = seed, transposed
        self.stride_: object = 1
        self.padding_: object = "valid"
        self.x_zp: object = 0
        self.w_zp: object = 0
        self.use_bias, self.rq, self.dtype = False, None, np.uint8

    def stride(self, stride):
        self.stride_ = stride
        return self

    def padding(self, padding):
        self.padding_ = padding
        return self

    def zero_points(self, x_zp, w_zp):
        self.x_zp, self.w_zp = x_zp, w_zp
        return self

    def bias(self):
        self.use_bias = True
        return self

    def requant(self, rq):
        self.rq = rq
        return self

    def int8(self):
        self.dtype = np.int8
        return self

    def _funcs(self):
        if self.transposed:
            return ref.conv_transpose2d, lowp.conv_transpose2d, lowp.ConvTranspose2d
        return ref.conv2d, lowp.conv2d, lowp.Conv2d

    def expected(self, x, w, bias):
        ref_fn = self._funcs()[0]
        kw = {"stride": self.stride_, "padding": self.padding_}
        if self.rq is None:
            return ref_fn(x, w, self.x_zp, self.w_zp, bias=bias, **kw)
        acc = ref_fn(x, w, self.x_zp, self.w_zp, **kw)
        rq = self.rq
        return ref.output_stage(acc, bias, rq.multiplier, rq.shift, rq.zero_point, rq.qmin, rq.qmax)

    def check(self, x=None, w=None, want_shape=None):
        rng = np.random.default_rng(self.seed)
        x = _rand(rng, (self.n, self.h, self.w, self.cin), self.dtype) if x is None else x
        w = _rand(rng, (self.cout, self.kh, self.kw, self.cin), self.dtype) if w is None else w
        bias = None
        if self.use_bias:
            bias = rng.integers(-(2**20), 2**20, self.cout).astype(np.int32)
        want = self.expected(x, w, bias)
        if want_shape is not None:
            assert want.shape == want_shape
        _, fn, cls = self._funcs()
        kw = {"stride": self.stride_, "padding": self.padding_, "bias": bias, "requant": self.rq}

        # Functional, writing into a contiguous out inside a bigger buffer.
        canary = CANARY_I32 if self.rq is None else CANARY_U8
        size = want.size
        buf = np.full(size + 64, canary, dtype=want.dtype)
        out = buf[32 : 32 + size].reshape(want.shape)
        got = fn(x, w, self.x_zp, self.w_zp, out=out, **kw)
        assert got is out
        np.testing.assert_array_equal(got, want)
        assert (buf[:32] == canary).all() and (buf[32 + size :] == canary).all()

        # Without out=.
        got = fn(x, w, self.x_zp, self.w_zp, **kw)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)

        # Packed once, called twice (the second call must not see the first).
        layer = cls(w, self.w_zp, x_zero_point=self.x_zp, **kw)
        np.testing.assert_array_equal(layer(x), want)
        big = np.full(
            (want.shape[0], want.shape[1] + 2, want.shape[2] + 1, want.shape[3] + 3), canary
        )
        view = big[:, 1:-1, :-1, 2:-1]
        assert layer(x, out=view) is view
        np.testing.assert_array_equal(view, want)
        border = big.copy()
        border[:, 1:-1, :-1, 2:-1] = canary
        assert (border == canary).all()
        return self


def _per_channel_requant(rng, cout, per_channel=True):
    c = cout if per_channel else 1
    return lowp.Requant(
        rng.integers(2**30, 2**31, c),
        rng.integers(-16, 1, c),
        int(rng.integers(0, 256)),
        qmin=int(rng.integers(0, 40)),
        qmax=int(rng.integers(200, 256)),
    )


SIZES = [1, 2, 3, 5, 7, 8, 17, 32]
CHANNELS = [1, 3, 7, 8, 16, 17, 64]


@pytest.mark.parametrize("h", SIZES)
@pytest.mark.parametrize("stride", [1, 2])
def test_conv_spatial_sizes(each_path, h, stride):
    # Every height with a different width (non-square), "same" and (where it
    # fits) "valid"; input zero point far from 0 so wrong padding shows.
    w_ = SIZES[(SIZES.index(h) + 3) % len(SIZES)]
    for padding in ("same", "valid"):
        if padding == "valid" and min(h, w_) < 3:
            continue
        ConvCase(1, h, w_, 5, 6, 3, seed=h).stride(stride).padding(padding).zero_points(
            223, 17
        ).bias().check()


@pytest.mark.parametrize("cin", CHANNELS)
def test_conv_channels(each_path, cin):
    rng = np.random.default_rng(cin)
    for cout in (CHANNELS[(CHANNELS.index(cin) + 2) % len(CHANNELS)], cin):
        w_zp = rng.integers(0, 256, cout)
        ConvCase(1, 7, 6, cin, cout, 3, seed=cin + cout).padding("same").zero_points(
            131, w_zp
        ).check()
        ConvCase(1, 8, 9, cin, cout, 3, seed=cin).stride(2).padding("same").zero_points(
            77, w_zp
        ).bias().requant(_per_channel_requant(rng, cout)).check()


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, (1, 3), (3, 1), (2, 5)])
@pytest.mark.parametrize("stride", [1, 2, 3, (2, 1), (1, 3)])
def test_conv_kernels_and_strides(each_path, k, stride):
    seed = hash((str(k), str(stride))) % 1000
    for padding in ("valid", "same", (2, 0, 1, 3)):
        ConvCase(2, 9, 10, 6, 5, k, seed=seed).stride(stride).padding(padding).zero_points(
            250, 3
        ).check()


@pytest.mark.parametrize(("size", "out"), [(15, 8), (17, 9), (32, 16)])
def test_conv_same_stride2_odd_sizes(each_path, size, out):
    ConvCase(1, size, size, 8, 16, 3, seed=size).stride(2).padding("same").zero_points(
        190, 60
    ).bias().check(want_shape=(1, out, out, 16))
    # Padding (0, 1) on 32 -> 16: the same as an explicit (0, 1, 0, 1).
    if size == 32:
        ConvCase(1, size, size, 8, 16, 3, seed=5).stride(2).padding((0, 1, 0, 1)).zero_points(
            190, 60
        ).check(want_shape=(1, out, out, 16))


def test_conv_padding_beyond_kernel(each_path):
    # Whole output rows/columns made of padding: they hold the bias (after
    # the output stage) and nothing else.
    ConvCase(1, 3, 4, 5, 3, 3, seed=1).padding((4, 2, 0, 5)).zero_points(99, 12).bias().check()
    ConvCase(1, 1, 1, 5, 3, 1, seed=2).padding(3).zero_points(255, 255).bias().check()


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("transposed", [False, True])
def test_fused_output_stage(each_path, per_channel, transposed):
    rng = np.random.default_rng(10 + per_channel + 2 * transposed)
    for cout in (1, 7, 17, 64):
        rq = _per_channel_requant(rng, cout, per_channel)
        k, stride, padding = (2, 2, "valid") if transposed else (3, 1, "same")
        ConvCase(2, 6, 5, 16, cout, k, seed=cout, transposed=transposed).stride(stride).padding(
            padding
        ).zero_points(int(rng.integers(0, 256)), rng.integers(0, 256, cout)).bias().requant(
            rq
        ).check()


@pytest.mark.parametrize("activation", ["relu", "relu6"])
@pytest.mark.parametrize("transposed", [False, True])
def test_from_scales_activations(each_path, activation, transposed):
    rng = np.random.default_rng(11)
    cout = 24
    rq = lowp.Requant.from_scales(
        0.02, rng.uniform(0.001, 0.01, cout).astype(np.float32), 0.05, 40, activation
    )
    assert rq.qmin == 40
    k = 4 if transposed else 3
    ConvCase(1, 9, 7, 12, cout, k, seed=3, transposed=transposed).stride(2).padding(
        "same"
    ).zero_points(128, 128).bias().requant(rq).check()


def test_int8(each_path):
    rng = np.random.default_rng(12)
    for transposed in (False, True):
        ConvCase(2, 6, 7, 9, 10, 3, seed=4, transposed=transposed).stride(2).padding(
            "same"
        ).zero_points(-100, 0).int8().bias().check()
        ConvCase(1, 5, 5, 16, 8, 2, seed=5, transposed=transposed).stride(2).zero_points(
            127, rng.integers(-128, 128, 8)
        ).int8().requant(_per_channel_requant(rng, 8)).check()
    # int8 input with uint8 weights (and zero points in each one's range).
    x = _rand(rng, (1, 5, 6, 4), np.int8)
    w = _rand(rng, (3, 3, 3, 4))
    np.testing.assert_array_equal(
        lowp.conv2d(x, w, -7, 200, padding="same"), ref.conv2d(x, w, -7, 200, padding="same")
    )


# Transposed convolution: (H, W, Cin, Cout, k, stride, padding, output H x W).
DECONV_CASES = [
    (3, 3, 8, 16, 3, 2, "same", (6, 6)),  # full 7, crop 0 top / 1 bottom
    (3, 3, 8, 16, 4, 2, "same", (6, 6)),  # full 8, crop 1 / 1
    (5, 7, 16, 8, 2, 2, "valid", (10, 14)),  # the UNet up-sampling fast path
    (1, 1, 3, 7, 2, 2, "valid", (2, 2)),
    (8, 8, 64, 64, 2, 2, "valid", (16, 16)),
    (17, 3, 17, 17, 2, 2, "same", (34, 6)),
    (4, 5, 7, 3, 3, 1, "valid", (6, 7)),
    (4, 5, 7, 3, 3, 1, "same", (4, 5)),
    (3, 4, 5, 6, 3, 3, "valid", (9, 12)),
    (3, 4, 5, 6, 5, 2, (1, 2, 0, 3), (6, 8)),
    (2, 3, 1, 1, 1, 1, "valid", (2, 3)),
    (2, 3, 6, 4, 2, 1, "valid", (3, 4)),
    (7, 2, 3, 8, (3, 2), (2, 1), 1, (13, 1)),
    # "same" is in * stride also when k < stride (TFLite): past the full
    # output there is only the bias.
    (3, 2, 4, 5, 1, 2, "same", (6, 4)),
    (5, 4, 3, 3, (2, 3), 3, "same", (15, 12)),
]


@pytest.mark.parametrize("case", DECONV_CASES)
def test_conv_transpose(each_path, case):
    h, w_, cin, cout, k, stride, padding, out_hw = case
    rng = np.random.default_rng(h * 31 + cin)
    ConvCase(2, h, w_, cin, cout, k, seed=cin, transposed=True).stride(stride).padding(
        padding
    ).zero_points(201, rng.integers(0, 256, cout)).bias().check(want_shape=(2, *out_hw, cout))


@pytest.mark.parametrize("cin", CHANNELS)
def test_conv_transpose_2x2_channels(each_path, cin):
    rng = np.random.default_rng(cin)
    cout = CHANNELS[(CHANNELS.index(cin) + 3) % len(CHANNELS)]
    for h, w_ in ((SIZES[CHANNELS.index(cin)], 3), (2, SIZES[CHANNELS.index(cin) + 1])):
        ConvCase(1, h, w_, cin, cout, 2, seed=h + cin, transposed=True).stride(2).zero_points(
            9, rng.integers(0, 256, cout)
        ).bias().requant(_per_channel_requant(rng, cout)).check()


@pytest.mark.parametrize("transposed", [False, True])
def test_batch_and_threads(each_path, threads, transposed):
    rng = np.random.default_rng(13)
    k, stride = (2, 2) if transposed else (3, 1)
    x = _rand(rng, (3, 19, 21, 24))
    w = _rand(rng, (40, k, k, 24))
    w_zp = rng.integers(0, 256, 40)
    ref_fn = ref.conv_transpose2d if transposed else ref.conv2d
    fn = lowp.conv_transpose2d if transposed else lowp.conv2d
    want = ref_fn(x, w, 140, w_zp, stride=stride, padding="same")
    for n_threads in (1, 2, 3):
        lowp.set_num_threads(n_threads)
        np.testing.assert_array_equal(fn(x, w, 140, w_zp, stride=stride, padding="same"), want)


@pytest.mark.parametrize("transposed", [False, True])
def test_layouts(each_path, transposed):
    # Strided, Fortran-ordered and read-only inputs and weights.
    rng = np.random.default_rng(14)
    ref_fn = ref.conv_transpose2d if transposed else ref.conv2d
    fn = lowp.conv_transpose2d if transposed else lowp.conv2d
    cls = lowp.ConvTranspose2d if transposed else lowp.Conv2d
    big_x = _rand(rng, (2, 14, 16, 10))
    big_w = _rand(rng, (6, 3, 3, 20))
    x, w = big_x[:, ::2, 1::2, :5], big_w[:, :, :, ::4]
    want = ref_fn(x, w, 30, 40, stride=2, padding="same")
    ro = x.copy()
    ro.flags.writeable = False
    for x_in in (x, np.asfortranarray(x), ro):
        for w_in in (w, np.asfortranarray(w)):
            np.testing.assert_array_equal(fn(x_in, w_in, 30, 40, stride=2, padding="same"), want)
    layer = cls(w, 40, x_zero_point=30, stride=2, padding="same")
    np.testing.assert_array_equal(layer(np.asfortranarray(x)), want)


@pytest.mark.parametrize("transposed", [False, True])
def test_packed_once(each_path, transposed):
    # The layer keeps its own packed copy and serves any input size.
    rng = np.random.default_rng(15)
    ref_fn = ref.conv_transpose2d if transposed else ref.conv2d
    cls = lowp.ConvTranspose2d if transposed else lowp.Conv2d
    w = _rand(rng, (12, 3, 3, 7))
    saved = w.copy()
    bias = rng.integers(-1000, 1000, 12).astype(np.int32)
    layer = cls(w, 100, x_zero_point=50, stride=2, padding="same", bias=bias)
    w[:] = 0
    for shape in ((1, 5, 5, 7), (3, 8, 2, 7), (1, 1, 1, 7), (2, 17, 9, 7)):
        x = _rand(rng, shape)
        want = ref_fn(x, saved, 50, 100, stride=2, padding="same", bias=bias)
        np.testing.assert_array_equal(layer(x), want)


def test_unet_layers(each_path):
    # Realistic channel counts, small images: down 3x3, down 3x3 s2, up 2x2 s2.
    rng = np.random.default_rng(16)
    rq = _per_channel_requant(rng, 32)
    ConvCase(1, 12, 12, 32, 32, 3, seed=1).padding("same").zero_points(
        5, rng.integers(120, 136, 32)
    ).bias().requant(rq).check()
    ConvCase(1, 16, 16, 3, 32, 3, seed=2).stride(2).padding("same").zero_points(
        128, 128
    ).bias().requant(rq).check()
    ConvCase(2, 6, 6, 64, 32, 2, seed=3, transposed=True).stride(2).zero_points(
        7, 131
    ).bias().requant(rq).check()


@pytest.mark.parametrize(("k", "cin"), [(5, 1321), (1, 33025)])
def test_max_k_worst_case(each_path, k, cin):
    # K = KH * KW * Cin = 33025: |sum| = K * 255 * 255 still fits int32.
    x = np.full((1, k, k, cin), 255, np.uint8)
    w = np.zeros((2, k, k, cin), np.uint8)
    got = lowp.conv2d(x, w, 0, 255)
    np.testing.assert_array_equal(got, ref.conv2d(x, w, 0, 255))
    assert got[0, 0, 0, 0] == -33025 * 255 * 255


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 2),
    h=st.integers(1, 11),
    w_=st.integers(1, 11),
    cin=st.integers(1, 20),
    cout=st.integers(1, 20),
    kh=st.integers(1, 5),
    kw=st.integers(1, 5),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    padding=st.one_of(
        st.sampled_from(["same", "valid"]),
        st.tuples(*[st.integers(0, 3)] * 4),
    ),
    per_channel=st.booleans(),
    requant=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_hypothesis(n, h, w_, cin, cout, kh, kw, sh, sw, padding, per_channel, requant, seed):
    rng = np.random.default_rng(seed)
    w_zp = rng.integers(0, 256, cout) if per_channel else int(rng.integers(0, 256))
    rq = _per_channel_requant(rng, cout, per_channel) if requant else None
    saved = lowp.get_path()
    try:
        for path in lowp.cpu_info()["paths"]:
            lowp.set_path(path)
            for transposed in (False, True):
                if not transposed and isinstance(padding, str) and padding == "valid":
                    if h < kh or w_ < kw:
                        continue
                if not transposed and not isinstance(padding, str):
                    if h + padding[0] + padding[1] < kh or w_ + padding[2] + padding[3] < kw:
                        continue
                if transposed and not isinstance(padding, str):
                    if (h - 1) * sh + kh <= padding[0] + padding[1]:
                        continue
                    if (w_ - 1) * sw + kw <= padding[2] + padding[3]:
                        continue
                case = ConvCase(n, h, w_, cin, cout, (kh, kw), seed=seed, transposed=transposed)
                case.stride((sh, sw)).padding(padding).zero_points(
                    int(rng.integers(0, 256)), w_zp
                ).bias()
                if rq is not None:
                    case.requant(rq)
                case.check()
    finally:
        lowp.set_path(saved)


def test_out_overlapping_input(each_path):
    # A 1x1 conv with Cin == Cout and a uint8 output may be asked to write
    # over its own input: refused, or the right answer.
    rng = np.random.default_rng(17)
    x = _rand(rng, (2, 9, 7, 16))
    w = _rand(rng, (16, 1, 1, 16))
    rq = _per_channel_requant(rng, 16)
    acc = ref.conv2d(x, w, 3, 200)
    want = ref.output_stage(acc, None, rq.multiplier, rq.shift, rq.zero_point, rq.qmin, rq.qmax)
    try:
        got = lowp.conv2d(x, w, 3, 200, requant=rq, out=x)
    except ValueError as err:
        assert "out" in str(err)
    else:
        np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------
# Bad input: a TypeError or ValueError that names the argument.

X = np.zeros((1, 5, 5, 3), np.uint8)
W = np.zeros((4, 3, 3, 3), np.uint8)
RQ2 = lowp.Requant([2**30, 2**30], [0, 0], 0)


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"x": X.astype(np.float32)}, TypeError, r"\bx\b"),
        ({"x": X.astype(np.int32)}, TypeError, r"\bx\b"),
        ({"w": W.astype(np.uint16)}, TypeError, r"\bw\b"),
        ({"x": X[0]}, ValueError, r"\bx\b"),
        ({"x": X[None]}, ValueError, r"\bx\b"),
        ({"w": W[0]}, ValueError, r"\bw\b"),
        ({"x": np.zeros((1, 5, 5, 4), np.uint8)}, ValueError, r"\b(x|w)\b"),
        ({"stride": 0}, ValueError, "stride"),
        ({"stride": -1}, ValueError, "stride"),
        ({"stride": (1, 2, 3)}, ValueError, "stride"),
        ({"stride": (2, 0)}, ValueError, "stride"),
        ({"stride": 1.5}, TypeError, "stride"),
        ({"stride": "2"}, TypeError, "stride"),
        ({"padding": "full"}, ValueError, "padding"),
        ({"padding": -1}, ValueError, "padding"),
        ({"padding": (1, 1)}, ValueError, "padding"),
        ({"padding": (1, 1, 1)}, ValueError, "padding"),
        ({"padding": (0, 0, 0, -2)}, ValueError, "padding"),
        ({"padding": 1.5}, TypeError, "padding"),
        ({"x_zero_point": 256}, ValueError, "x_zero_point"),
        ({"x_zero_point": -1}, ValueError, "x_zero_point"),
        ({"x_zero_point": 1.5}, TypeError, "x_zero_point"),
        ({"x_zero_point": [1, 2]}, ValueError, "x_zero_point"),
        ({"w_zero_point": 300}, ValueError, "w_zero_point"),
        ({"w_zero_point": [1, 2, 3]}, ValueError, "w_zero_point"),
        ({"w_zero_point": [1, 2, 3, 4, 5]}, ValueError, "w_zero_point"),
        ({"w_zero_point": np.zeros((4, 1), np.int32)}, ValueError, "w_zero_point"),
        ({"bias": np.zeros(4, np.int64)}, TypeError, "bias"),
        ({"bias": np.zeros(4, np.float32)}, TypeError, "bias"),
        ({"bias": np.zeros(3, np.int32)}, ValueError, "bias"),
        ({"bias": np.zeros((1, 4), np.int32)}, ValueError, "bias"),
        ({"requant": 3}, TypeError, "requant"),
        ({"requant": RQ2}, ValueError, "requant"),
        ({"out": np.zeros((1, 3, 3, 4), np.float32)}, TypeError, "out"),
    ],
)
def test_bad_input(transposed, kwargs, error, match):
    args = {"x": X, "w": W, "x_zero_point": 0, "w_zero_point": 0, **kwargs}
    fn = lowp.conv_transpose2d if transposed else lowp.conv2d
    with pytest.raises(error, match=match):
        fn(
            args.pop("x"),
            args.pop("w"),
            args.pop("x_zero_point"),
            args.pop("w_zero_point"),
            **args,
        )


@pytest.mark.parametrize("transposed", [False, True])
def test_bad_out(transposed):
    fn = lowp.conv_transpose2d if transposed else lowp.conv2d
    shape = (1, 7, 7, 4) if transposed else (1, 3, 3, 4)
    with pytest.raises(ValueError, match="out"):
        fn(X, W, 0, 0, out=np.zeros((1, 3, 4, 4), np.int32))
    with pytest.raises(TypeError, match="out"):
        fn(X, W, 0, 0, out=np.zeros(shape, np.uint8))  # int32 without requant
    with pytest.raises(TypeError, match="out"):
        fn(X, W, 0, 0, requant=lowp.Requant(2**30, 0, 0), out=np.zeros(shape, np.int32))
    with pytest.raises(TypeError, match="out"):
        fn(X, W, 0, 0, out=[[0]])
    read_only = np.zeros(shape, np.int32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="out"):
        fn(X, W, 0, 0, out=read_only)


def test_int8_zero_point_ranges():
    with pytest.raises(ValueError, match=r"x_zero_point must be in \[-128, 127\]"):
        lowp.conv2d(X.view(np.int8), W, 128, 0)
    with pytest.raises(ValueError, match=r"w_zero_point must be in \[-128, 127\]"):
        lowp.conv2d(X, W.view(np.int8), 0, 200)


@pytest.mark.parametrize(
    ("x_shape", "k", "padding"),
    [((1, 2, 2, 3), 3, "valid"), ((1, 5, 1, 3), 3, "valid"), ((1, 1, 1, 3), 4, (1, 1, 1, 1))],
)
def test_conv_output_smaller_than_a_pixel(x_shape, k, padding):
    w = np.zeros((2, k, k, 3), np.uint8)
    with pytest.raises(ValueError, match=r"output|padding|\bx\b|\bw\b"):
        lowp.conv2d(np.zeros(x_shape, np.uint8), w, 0, 0, padding=padding)


@pytest.mark.parametrize("crop", [(2, 1, 0, 0), (0, 0, 5, 0), 3])
def test_conv_transpose_crop_leaves_nothing(crop):
    # Full output 1 x 2 x ... = (1 - 1) * 2 + 3 = 3 rows, 5 columns.
    x = np.zeros((1, 1, 2, 3), np.uint8)
    w = np.zeros((2, 3, 3, 3), np.uint8)
    with pytest.raises(ValueError, match=r"output|padding|crop"):
        lowp.conv_transpose2d(x, w, 0, 0, stride=2, padding=crop)


@pytest.mark.parametrize(("k", "cin"), [(1, 33026), (3, 3670), (2, 8257)])
def test_conv_k_too_large(k, cin):
    # K = KH * KW * Cin above 33025 has no exact int32 result guarantee.
    x = np.zeros((1, k, k, cin), np.uint8)
    w = np.zeros((1, k, k, cin), np.uint8)
    with pytest.raises(ValueError, match="33025"):
        lowp.conv2d(x, w, 0, 0)
    with pytest.raises(ValueError, match="33025"):
        lowp.Conv2d(w, 0, x_zero_point=0)


def test_conv_transpose_cin_too_large():
    x = np.zeros((1, 1, 1, 33026), np.uint8)
    w = np.zeros((1, 2, 2, 33026), np.uint8)
    with pytest.raises(ValueError, match="33025"):
        lowp.conv_transpose2d(x, w, 0, 0, stride=2)


@pytest.mark.parametrize("transposed", [False, True])
def test_packed_bad_input(transposed):
    cls = lowp.ConvTranspose2d if transposed else lowp.Conv2d
    with pytest.raises(TypeError, match=r"\bw\b"):
        cls(W.astype(np.float32), 0, x_zero_point=0)
    with pytest.raises(ValueError, match=r"\bw\b"):
        cls(W[0], 0, x_zero_point=0)
    with pytest.raises(ValueError, match="x_zero_point"):
        cls(W, 0, x_zero_point=256)
    with pytest.raises(ValueError, match="w_zero_point"):
        cls(W, [1, 2], x_zero_point=0)
    with pytest.raises(ValueError, match="stride"):
        cls(W, 0, x_zero_point=0, stride=0)
    with pytest.raises(ValueError, match="padding"):
        cls(W, 0, x_zero_point=0, padding="full")
    with pytest.raises(ValueError, match="bias"):
        cls(W, 0, x_zero_point=0, bias=np.zeros(5, np.int32))
    with pytest.raises(ValueError, match="requant"):
        cls(W, 0, x_zero_point=0, requant=RQ2)
    layer = cls(W, 0, x_zero_point=0)
    with pytest.raises(TypeError, match=r"\bx\b"):
        layer(X.view(np.int8))  # built for uint8 inputs
    with pytest.raises(ValueError, match=r"\bx\b"):
        layer(np.zeros((1, 5, 5, 4), np.uint8))
    with pytest.raises(ValueError, match=r"\bx\b"):
        layer(np.zeros((5, 5, 3), np.uint8))
    with pytest.raises(TypeError, match=r"\bx\b"):
        layer(np.zeros((1, 5, 5, 3), np.float64))
