// Convolution tests: lowp::Conv2d and lowp::ConvTranspose2d on every
// available path against the definitions written as plain loops in int64,
// bit for bit, with int32 and fused uint8 output and output canaries. They
// exercise the GEMM's gather (im2col) and scatter hooks on the NEON paths
// too, under qemu.
#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "fixedpoint_scalar.h"
#include "lowp/lowp.h"
#include "test_util.h"

namespace {

struct ConvCase {
  size_t batch, in_h, in_w, in_c, out_c, kh, kw, sh, sw;
  size_t pad_top, pad_bottom, pad_left, pad_right;  // conv padding or transposed-conv crop
  bool per_channel, requant;
};

struct Data {
  std::vector<uint8_t> x, w;
  std::vector<int32_t> wzp, bias, mult, shift;
  int32_t xzp;
};

Data make_data(const ConvCase& c, uint32_t seed) {
  std::mt19937 rng(seed);
  Data d;
  d.x.resize(c.batch * c.in_h * c.in_w * c.in_c);
  d.w.resize(c.out_c * c.kh * c.kw * c.in_c);
  for (auto& v : d.x) v = static_cast<uint8_t>(rng());
  for (auto& v : d.w) v = static_cast<uint8_t>(rng());
  d.xzp = static_cast<int32_t>(rng() % 256);
  d.wzp.resize(c.per_channel ? c.out_c : 1);
  // Every third case has int8-symmetric weights (zero point 128 in the
  // uint8 domain), which kernels may special-case.
  for (auto& v : d.wzp) v = seed % 3 == 0 ? 128 : static_cast<int32_t>(rng() % 256);
  d.bias.resize(c.out_c);
  for (auto& v : d.bias) v = static_cast<int32_t>(rng() % 200001) - 100000;
  d.mult.resize(c.per_channel ? c.out_c : 1);
  d.shift.resize(d.mult.size());
  for (size_t i = 0; i < d.mult.size(); ++i) {
    d.mult[i] = (1 << 30) + static_cast<int32_t>(rng() % (1u << 30));
    // Mostly right shifts, as real layers have, and some left ones.
    d.shift[i] = static_cast<int32_t>(rng() % 22) - 19;
  }
  return d;
}

int64_t weight(const ConvCase& c, const Data& d, size_t o, size_t ky, size_t kx, size_t ci) {
  return int64_t(d.w[((o * c.kh + ky) * c.kw + kx) * c.in_c + ci]) - d.wzp[c.per_channel ? o : 0];
}

// Requantizes (or not) the int64 sums and compares with what the op wrote,
// once into a contiguous output and once with pixels out_c + 5 elements
// apart (ConvGeometry::out_stride, a channel slice of a wider tensor): the
// gaps between pixels and the elements past the last one hold canaries.
template <typename Op>
void check(const ConvCase& c, const Data& d, const std::vector<int64_t>& sums, size_t out_h,
           size_t out_w, const char* what) {
  const size_t pixels = sums.size() / c.out_c;
  const lowp::Path saved = lowp::active_path();
  for (lowp::Path p : lowp::available_paths()) {
    lowp::set_active_path(p);
    Op op(d.w.data(), c.out_c, c.kh, c.kw, c.in_c, c.sh, c.sw, d.wzp.data(), d.wzp.size(), d.xzp,
          d.bias.data());
    const char* name = lowp::path_name(p);
    for (size_t stride : {size_t(0), c.out_c + 5}) {
      lowp::ConvGeometry g = {c.batch, c.in_h, c.in_w, c.pad_top, c.pad_left, out_h, out_w};
      g.out_stride = stride;
      const size_t step = stride == 0 ? c.out_c : stride, n = pixels * step;
      // Output element i holds channel i % step of pixel i / step, or a canary.
      const auto expected = [&](size_t i, int64_t* sum) {
        if (i >= n || i % step >= c.out_c) return false;
        *sum = sums[i / step * c.out_c + i % step];
        return true;
      };
      if (!c.requant) {
        std::vector<int32_t> out(n + 16, int32_t(0xA5A5A5A5));
        op.run(d.x.data(), g, out.data());
        size_t bad = 0;
        for (size_t i = 0; i < out.size(); ++i) {
          int64_t sum;
          bad += out[i] != (expected(i, &sum) ? static_cast<int32_t>(sum) : int32_t(0xA5A5A5A5));
        }
        LOWP_CHECK(bad == 0, "%s %s int32, pixel stride %zu: %zu wrong values", name, what, step,
                   bad);
      } else {
        std::vector<uint8_t> out(n + 16, 0xA5);
        const lowp::Requantization rq = {d.mult.data(), d.shift.data(), d.mult.size(), 90, 3, 250};
        op.run(d.x.data(), g, rq, out.data());
        size_t bad = 0;
        for (size_t i = 0; i < out.size(); ++i) {
          int64_t sum;
          if (!expected(i, &sum)) {
            bad += out[i] != 0xA5;
            continue;
          }
          const size_t ch = d.mult.size() == 1 ? 0 : i % step;
          bad += out[i] != lowp::fixedpoint::requantize_one(static_cast<int32_t>(sum), d.mult[ch],
                                                            d.shift[ch], 90, 3, 250);
        }
        LOWP_CHECK(bad == 0, "%s %s uint8, pixel stride %zu: %zu wrong values", name, what, step,
                   bad);
      }
    }
  }
  lowp::set_active_path(saved);
}

void test_conv(const ConvCase& c, const Data& d) {
  const size_t out_h = (c.in_h + c.pad_top + c.pad_bottom - c.kh) / c.sh + 1;
  const size_t out_w = (c.in_w + c.pad_left + c.pad_right - c.kw) / c.sw + 1;
  std::vector<int64_t> sums(c.batch * out_h * out_w * c.out_c);
  for (size_t b = 0; b < c.batch; ++b)
    for (size_t oy = 0; oy < out_h; ++oy)
      for (size_t ox = 0; ox < out_w; ++ox)
        for (size_t o = 0; o < c.out_c; ++o) {
          int64_t s = d.bias[o];
          for (size_t ky = 0; ky < c.kh; ++ky)
            for (size_t kx = 0; kx < c.kw; ++kx) {
              const int64_t iy = int64_t(oy * c.sh + ky) - int64_t(c.pad_top);
              const int64_t ix = int64_t(ox * c.sw + kx) - int64_t(c.pad_left);
              if (iy < 0 || ix < 0 || iy >= int64_t(c.in_h) || ix >= int64_t(c.in_w)) continue;
              const uint8_t* px = &d.x[((b * c.in_h + iy) * c.in_w + ix) * c.in_c];
              for (size_t ci = 0; ci < c.in_c; ++ci)
                s += (px[ci] - d.xzp) * weight(c, d, o, ky, kx, ci);
            }
          sums[((b * out_h + oy) * out_w + ox) * c.out_c + o] = s;
        }
  check<lowp::Conv2d>(c, d, sums, out_h, out_w, "conv");
}

void test_conv(const ConvCase& c, uint32_t seed) { test_conv(c, make_data(c, seed)); }

void test_deconv(const ConvCase& c, const Data& d) {
  const size_t full_h = (c.in_h - 1) * c.sh + c.kh, full_w = (c.in_w - 1) * c.sw + c.kw;
  std::vector<int64_t> full(c.batch * full_h * full_w * c.out_c, 0);
  for (size_t b = 0; b < c.batch; ++b)
    for (size_t y = 0; y < c.in_h; ++y)
      for (size_t x = 0; x < c.in_w; ++x) {
        const uint8_t* px = &d.x[((b * c.in_h + y) * c.in_w + x) * c.in_c];
        for (size_t ky = 0; ky < c.kh; ++ky)
          for (size_t kx = 0; kx < c.kw; ++kx)
            for (size_t o = 0; o < c.out_c; ++o) {
              int64_t s = 0;
              for (size_t ci = 0; ci < c.in_c; ++ci)
                s += (px[ci] - d.xzp) * weight(c, d, o, ky, kx, ci);
              full[((b * full_h + y * c.sh + ky) * full_w + x * c.sw + kx) * c.out_c + o] += s;
            }
      }
  const size_t out_h = full_h - c.pad_top - c.pad_bottom, out_w = full_w - c.pad_left - c.pad_right;
  std::vector<int64_t> sums(c.batch * out_h * out_w * c.out_c);
  for (size_t b = 0; b < c.batch; ++b)
    for (size_t y = 0; y < out_h; ++y)
      for (size_t x = 0; x < out_w; ++x)
        for (size_t o = 0; o < c.out_c; ++o)
          sums[((b * out_h + y) * out_w + x) * c.out_c + o] =
              full[((b * full_h + y + c.pad_top) * full_w + x + c.pad_left) * c.out_c + o] +
              d.bias[o];
  check<lowp::ConvTranspose2d>(c, d, sums, out_h, out_w, "transposed conv");
}

void test_deconv(const ConvCase& c, uint32_t seed) { test_deconv(c, make_data(c, seed)); }

// batch, in_h, in_w, in_c, out_c, kh, kw, sh, sw, top, bottom, left, right, per-channel, requant
const ConvCase kConvCases[] = {
    {1, 5, 7, 3, 8, 3, 3, 1, 1, 1, 1, 1, 1, false, false},
    {2, 9, 8, 16, 17, 3, 3, 2, 2, 0, 1, 0, 1, true, true},
    {1, 8, 8, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, true, true},
    {1, 15, 17, 3, 32, 3, 3, 2, 2, 1, 1, 1, 1, true, false},
    {1, 6, 5, 7, 9, 1, 1, 1, 1, 0, 0, 0, 0, false, true},
    {1, 7, 7, 5, 4, 5, 5, 1, 2, 2, 2, 0, 3, false, false},
    {1, 1, 1, 8, 3, 3, 3, 1, 1, 1, 1, 1, 1, true, true},
    // Kernel rows of at most 16 bytes (the direct kernel where a path has
    // it): 40 channels (a partial second chunk), a 16-channel 1x1 head with
    // 2 outputs, a 2x2 kernel over 8 channels.
    {2, 9, 11, 2, 40, 3, 3, 2, 1, 1, 1, 0, 2, true, true},
    {1, 7, 6, 16, 2, 1, 1, 1, 1, 0, 0, 0, 0, false, true},
    {1, 6, 6, 8, 5, 2, 2, 1, 1, 0, 1, 0, 1, true, false},
    {1, 13, 12, 1, 17, 3, 3, 1, 1, 1, 1, 1, 1, true, false},
    // The 3-channel stride-2 first layer with requant, batch 2; 48 and 70
    // output channels (partial chunks of 16-channel vectors); a 4x4 stride
    // 3 kernel over 4 channels; a 1x1 head over 16 channels with 130 outputs.
    {2, 15, 17, 3, 32, 3, 3, 2, 2, 1, 1, 1, 1, true, true},
    {1, 12, 12, 3, 48, 3, 3, 2, 2, 2, 2, 2, 2, false, true},
    {3, 10, 9, 3, 70, 3, 3, 2, 2, 1, 1, 1, 1, true, true},
    {1, 10, 10, 4, 33, 4, 4, 3, 3, 3, 3, 3, 3, true, true},
    {2, 11, 8, 16, 130, 1, 1, 1, 1, 0, 0, 0, 0, true, false},
    // Rows wider than a direct kernel's strip buffer holds at once (the
    // avx2 narrow kernel widens runs of tiles: 246 pixels of 16 channels at
    // 3x3, 12 of 64 channels at 5x5 stride 2).
    {1, 3, 300, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, true, true},
    {1, 6, 90, 64, 8, 5, 5, 2, 2, 2, 2, 2, 2, false, true},
    // 1x1 heads with 1 to 4 outputs (the avx2 kernel puts pixels in lanes):
    // several 16-channel chunks, a partial one, pixel counts that leave a
    // short group of 8 at the end, int32 and per-channel output.
    {2, 5, 7, 20, 2, 1, 1, 1, 1, 0, 0, 0, 0, true, true},
    {1, 3, 11, 33, 3, 1, 1, 1, 1, 0, 0, 0, 0, true, false},
    {1, 4, 5, 64, 4, 1, 1, 1, 1, 0, 0, 0, 0, true, true},
    {1, 1, 3, 5, 1, 1, 1, 1, 1, 0, 0, 0, 0, false, true},
    {1, 9, 9, 16, 2, 1, 1, 1, 1, 1, 0, 1, 0, false, true},
};

const ConvCase kDeconvCases[] = {
    {1, 5, 7, 16, 8, 2, 2, 2, 2, 0, 0, 0, 0, true, true},
    {2, 4, 3, 17, 9, 2, 2, 2, 2, 1, 0, 0, 1, false, false},
    {1, 3, 4, 8, 5, 3, 3, 2, 2, 0, 1, 0, 1, true, true},
    {1, 4, 4, 9, 6, 4, 4, 2, 2, 1, 1, 1, 1, true, false},
    {1, 3, 3, 4, 3, 1, 1, 2, 2, 0, 0, 0, 0, false, true},
    {1, 5, 5, 3, 7, 3, 3, 1, 1, 1, 1, 1, 1, false, false},
    // 7x7 stride 1 on a 100-row image: the columns of its input rows exceed
    // the per-band budget, so the output is computed in several bands.
    {2, 100, 64, 2, 16, 7, 7, 1, 1, 3, 2, 3, 4, true, true},
};

LOWP_TEST(conv_matches_definition) {
  uint32_t seed = 1;
  for (const ConvCase& c : kConvCases) test_conv(c, seed++);
}

// The sweeps' zero points: weights all 128 (w_mode 0), any (1), or any
// with the first channel at 128 (2); the input's 0 (x_mode 0), 255 (1) or
// any.
void draw_zero_points(Data& d, int w_mode, int x_mode, std::mt19937& rng) {
  for (auto& v : d.wzp) v = w_mode == 0 ? 128 : static_cast<int32_t>(rng() % 256);
  if (w_mode == 2 && d.wzp.size() > 1) d.wzp[0] = 128;  // 128 next to others
  d.xzp = x_mode == 0 ? 0 : x_mode == 1 ? 255 : static_cast<int32_t>(rng() % 256);
}

// The narrow-channel shapes (a direct kernel where a path has one: up to 64
// channels in and out, kernels up to 5x5, strides up to 2): input channels
// 1 to 70 (multiples of 4 or not, kernel rows of whole quads or not), each
// with a few output-channel counts from 1 to 70; images narrower and wider
// than a tile of pixels, padding on any side, batches; per-tensor and
// per-channel weight zero points, all 128 (int8-symmetric) or not, and
// input zero points 0, 255 or any; int32 and requantized output.
LOWP_TEST(conv_narrow_channels_match_definition) {
  const size_t in_cs[] = {1, 2, 3, 4, 5, 7, 8, 12, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65, 70};
  const size_t out_cs[] = {1, 2, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 70, 3, 8};
  std::mt19937 rng(11);
  size_t next_out = 0;
  uint32_t seed = 1000;
  for (size_t in_c : in_cs) {
    for (int rep = 0; rep < 3; ++rep, ++seed) {
      ConvCase c;
      c.in_c = in_c;
      c.out_c = out_cs[next_out++ % (sizeof(out_cs) / sizeof(out_cs[0]))];
      c.batch = rng() % 4 == 0 ? 2 : 1;
      c.kh = rng() % 5 == 0 ? 1 + rng() % 5 : 3;
      c.kw = rng() % 5 == 0 ? 1 + rng() % 5 : 3;
      c.sh = 1 + rng() % 2;
      c.sw = 1 + rng() % 2;
      c.pad_top = rng() % c.kh;
      c.pad_bottom = rng() % c.kh;
      c.pad_left = rng() % c.kw;
      c.pad_right = rng() % c.kw;
      // Mostly a few rows of up to 3 tiles, sometimes a single output pixel.
      const bool single = rng() % 8 == 0;
      const size_t pad_h = c.pad_top + c.pad_bottom, pad_w = c.pad_left + c.pad_right;
      c.in_h = single ? (c.kh > pad_h ? c.kh - pad_h : 1) : c.kh + rng() % 5;
      c.in_w = single ? (c.kw > pad_w ? c.kw - pad_w : 1) : c.kw + rng() % 40;
      c.per_channel = rng() % 3 != 0;
      c.requant = rep != 1;
      Data d = make_data(c, seed);
      draw_zero_points(d, static_cast<int>(seed % 3), rep, rng);
      test_conv(c, d);
    }
  }
}

// 1x1 stride-1 heads with 1 to 4 outputs (the avx2 and avx512_vnni narrow
// kernels put pixels in lanes, 8 or 16 at a time): input channels within
// one 16-channel chunk and across several, partial ones; pixel counts below,
// at and past a group of 16 (batches too; tasks are whole rows, so rows of
// 33 and 40 pixels give full groups); weight zero points all 128 or
// not, per tensor or per channel; input zero points 0, 255 or any; int32 and
// requantized output.
LOWP_TEST(conv_heads_match_definition) {
  const size_t in_cs[] = {1, 3, 4, 8, 15, 16, 17, 31, 33, 48, 64};
  const size_t sizes[][3] = {{1, 1, 1}, {1, 3, 5}, {1, 8, 40}, {1, 2, 8}, {2, 5, 33}, {1, 7, 9}};
  std::mt19937 rng(31);
  uint32_t seed = 5000;
  for (size_t in_c : in_cs) {
    for (size_t out_c = 1; out_c <= 4; ++out_c, ++seed) {
      const size_t* hw = sizes[rng() % (sizeof(sizes) / sizeof(sizes[0]))];
      ConvCase c = {hw[0], hw[1], hw[2], in_c, out_c, 1, 1, 1, 1, 0, 0, 0, 0, false, false};
      c.per_channel = rng() % 2 == 0;
      c.requant = rng() % 4 != 0;
      Data d = make_data(c, seed);
      draw_zero_points(d, static_cast<int>(seed % 3), static_cast<int>(seed % 5), rng);
      test_conv(c, d);
    }
  }
}

LOWP_TEST(conv_transpose_matches_definition) {
  uint32_t seed = 100;
  for (const ConvCase& c : kDeconvCases) test_deconv(c, seed++);
}

// Transposed convolutions with stride == kernel (a direct kernel where a
// path has one: each input pixel's patch written in place): input and
// output channels 1 to 70 and beyond, 2x2 stride 2 mostly, other tiled
// kernels (1x1, 3x3 stride 3, 1x2 stride 1x2) and overlapping ones the
// kernel must decline (2x2 stride 1, 3x3 stride 2), crops on every side,
// batches, images narrower and wider than a tile; weight zero points per
// tensor or per channel, all 128 or not, input zero points 0, 255 or any;
// int32 and requantized output (each also with a pixel stride, in check).
LOWP_TEST(conv_transpose_tiled_match_definition) {
  const size_t in_cs[] = {1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 70, 129};
  const size_t out_cs[] = {1, 2, 3, 8, 15, 16, 17, 31, 32, 33, 47, 48, 64, 65, 70, 5};
  std::mt19937 rng(23);
  size_t next_out = 0;
  uint32_t seed = 3000;
  for (size_t in_c : in_cs) {
    for (int rep = 0; rep < 3; ++rep, ++seed) {
      ConvCase c;
      c.in_c = in_c;
      c.out_c = out_cs[next_out++ % (sizeof(out_cs) / sizeof(out_cs[0]))];
      c.batch = rng() % 4 == 0 ? 2 : 1;
      const int shape = static_cast<int>(rng() % 10);
      c.kh = c.kw = c.sh = c.sw = 2;  // shapes 0..5
      if (shape == 6) c.kh = c.kw = c.sh = c.sw = 1;
      if (shape == 7) c.kh = c.sh = 3, c.kw = c.sw = 3;
      if (shape == 8) c.kh = c.sh = 1, c.kw = c.sw = 2;
      if (shape == 9) c.sh = c.sw = rep == 0 ? 1 : 2, c.kh = c.kw = rep == 0 ? 2 : 3;
      c.in_h = 1 + rng() % 5;
      c.in_w = 1 + rng() % 30;
      const size_t full_h = (c.in_h - 1) * c.sh + c.kh, full_w = (c.in_w - 1) * c.sw + c.kw;
      const bool crop = rng() % 2 == 0;
      c.pad_top = crop ? rng() % std::min(c.kh, full_h) : 0;
      c.pad_left = crop ? rng() % std::min(c.kw, full_w) : 0;
      c.pad_bottom = crop && full_h - c.pad_top > 1 ? rng() % 2 : 0;
      c.pad_right = crop && full_w - c.pad_left > 1 ? rng() % 2 : 0;
      c.per_channel = rng() % 3 != 0;
      c.requant = rep != 1;
      Data d = make_data(c, seed);
      draw_zero_points(d, static_cast<int>(seed % 3), rep, rng);
      test_deconv(c, d);
    }
  }
}

LOWP_TEST(conv_threads_agree) {
  const int saved = lowp::num_threads();
  for (int t : {1, 3}) {
    lowp::set_num_threads(t);
    test_conv({2, 21, 19, 16, 24, 3, 3, 1, 1, 1, 1, 1, 1, true, true}, 7);
    test_deconv({3, 13, 11, 32, 24, 2, 2, 2, 2, 0, 0, 0, 0, true, true}, 8);
  }
  lowp::set_num_threads(saved);
}

}  // namespace
