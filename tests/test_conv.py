"""Convolution and transposed convolution: lowp.reference against PyTorch's
float64 convolutions, then every lowp path bit for bit against the reference
(functional and packed forms, int32 and fused output stage, canaries)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
