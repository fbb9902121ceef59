// AVX2 direct convolution for narrow kernel rows (conv_direct.h), for kernel
// rows of at most 16 bytes and at most 64 pairs of values in all. It loads
// each kernel row of the input once per output pixel as 16 int16 values
// (x - x_zp), broadcasts them pair by pair and multiplies them with weights
// prepared once as (w - w_zp) int16 pairs (vpmaddwd): |x - x_zp| and
// |w - w_zp| are at most 255, so a pair sums to at most 2 * 255^2 and no
// zero-point corrections are needed afterwards.
//
// Output pixels in blocks of 8 / G, output channels in chunks of G groups of
// 8, so that the 8 accumulators, G weight vectors and a broadcast fit the 16
// registers.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "../conv_direct.h"
#include "fixedpoint_avx2.h"
#include "kernels_avx2.h"

namespace lowp {
namespace {

using avx2::lanes8_at;
using avx2::MulQuantLanes;
using avx2::requant8;

constexpr size_t kMaxRow = 16;    // bytes of one kernel row (one 16-byte load)
constexpr size_t kMaxPairs = 64;  // pairs of values over all kernel rows
constexpr size_t kGroup = 8;      // output channels per int32 vector

// Weights: for each group of 8 output channels, for each kernel row ky, for
// each pair p < P = ceil(kw in_c / 2), int16 lanes [o][2]: (w - w_zp) of
// kernel-row values 2p and 2p + 1 (zero past kw in_c and past out_c). The
// number of groups is a multiple of 4; bias is padded to match.
bool prepare_direct_avx2(const DirectConvWeights& w, DirectConvPacked* out) {
  const size_t run = w.kw * w.in_c, pairs = (run + 1) / 2;
  if (run > kMaxRow || w.kh * pairs > kMaxPairs) return false;
  const size_t groups = (w.out_c + 4 * kGroup - 1) / (4 * kGroup) * 4;
  out->channels = groups * kGroup;
  out->reset(groups * w.kh * pairs * 16 * sizeof(int16_t), out->channels);
  uint8_t* weights = out->data.data();
  for (size_t o = 0; o < w.out_c; ++o) {
    const int32_t zp = w.w_zero_point[w.w_zero_point_count == 1 ? 0 : o];
    const size_t group = o / kGroup, lane = o % kGroup;
    if (w.bias != nullptr) out->bias[o] = w.bias[o];
    for (size_t ky = 0; ky < w.kh; ++ky) {
      for (size_t i = 0; i < run; ++i) {
        avx2::put_i16(weights, ((group * w.kh + ky) * pairs + i / 2) * 16 + lane * 2 + i % 2,
                      static_cast<int16_t>(w.w[(o * w.kh + ky) * run + i] - zp));
      }
    }
  }
  return true;
}

inline __m256i load8(const int32_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// Kernel row ky of an output pixel: the input bytes from (iy, ix0) on, as 16
// int16 values x - x_zp. Values past the kernel row meet zero weights; taps
// in the padding (and past the input's end) read as x_zp, i.e. zero.
inline __m256i input_row(const DirectConvJob& j, size_t n, ptrdiff_t iy, ptrdiff_t ix0,
                         __m256i zp16) {
  const ConvGeometry& g = j.g;
  if (iy < 0 || iy >= static_cast<ptrdiff_t>(g.in_h)) return _mm256_setzero_si256();
  const size_t line = (n * g.in_h + static_cast<size_t>(iy)) * g.in_w;
  __m128i bytes;
  if (ix0 >= 0 && ix0 + static_cast<ptrdiff_t>(j.kw) <= static_cast<ptrdiff_t>(g.in_w) &&
      (line + static_cast<size_t>(ix0)) * j.in_c + 16 <= j.x_bytes) {
    bytes = _mm_loadu_si128(
        reinterpret_cast<const __m128i*>(j.x + (line + static_cast<size_t>(ix0)) * j.in_c));
  } else {
    alignas(16) uint8_t buf[16];
    std::memset(buf, j.x_zero_point, sizeof(buf));
    for (size_t kx = 0; kx < j.kw; ++kx) {
      const ptrdiff_t ix = ix0 + static_cast<ptrdiff_t>(kx);
      if (ix < 0 || ix >= static_cast<ptrdiff_t>(g.in_w)) continue;
      std::memcpy(buf + kx * j.in_c, j.x + (line + static_cast<size_t>(ix)) * j.in_c, j.in_c);
    }
    bytes = _mm_load_si128(reinterpret_cast<const __m128i*>(buf));
  }
  return _mm256_sub_epi16(_mm256_cvtepu8_epi16(bytes), zp16);
}

// Output channels [8 group0, 8 (group0 + G)) of pixels [begin, end).
template <size_t G>
void direct_conv_chunk(const DirectConvJob& j, size_t begin, size_t end, size_t group0) {
  constexpr size_t kPixels = 8 / G;
  const ConvGeometry& g = j.g;
  const size_t pairs = (j.kw * j.in_c + 1) / 2, taps = j.kh * pairs;
  const size_t ch0 = group0 * kGroup;
  const size_t channels = std::min(G * kGroup, j.out_c - ch0);
  const size_t group_stride = taps * 16;  // int16 values per weight group
  const __m256i zp16 = _mm256_set1_epi16(static_cast<int16_t>(j.x_zero_point));
  __m256i bias[G];
  MulQuantLanes lanes[G];
  for (size_t gi = 0; gi < G; ++gi) {
    bias[gi] = load8(j.packed->bias.data() + ch0 + gi * 8);
    lanes[gi] =
        j.requant != nullptr ? lanes8_at(*j.requant, ch0 + gi * 8) : avx2::broadcast_lanes(0, 0);
  }
  const avx2::OutputClamp clamp(j.zero_point, j.qmin, j.qmax);
  // Each pixel's kernel rows, back to back: pair t of the flattened (ky, p)
  // loop at rows[i][2 t]. A row is stored whole (16 values); the next one
  // overwrites its tail past the row's pairs.
  alignas(32) int16_t rows[kPixels][2 * kMaxPairs + 16];
  // Coordinates of the next pixel, stepped rather than divided per pixel.
  size_t n = begin / (g.out_h * g.out_w), oy = begin / g.out_w % g.out_h, ox = begin % g.out_w;
  for (size_t p0 = begin; p0 < end; p0 += kPixels) {
    const size_t count = std::min(kPixels, end - p0);
    size_t image[kPixels];
    ptrdiff_t iy0[kPixels], ix0[kPixels];
    for (size_t i = 0; i < kPixels; ++i) {
      image[i] = n;  // a short block repeats its last pixel
      iy0[i] = static_cast<ptrdiff_t>(oy * j.sh) - static_cast<ptrdiff_t>(g.pad_top);
      ix0[i] = static_cast<ptrdiff_t>(ox * j.sw) - static_cast<ptrdiff_t>(g.pad_left);
      if (i + 1 < count && ++ox == g.out_w) {
        ox = 0;
        if (++oy == g.out_h) {
          oy = 0;
          ++n;
        }
      }
    }
    if (++ox == g.out_w) {  // step past the block's last pixel
      ox = 0;
      if (++oy == g.out_h) {
        oy = 0;
        ++n;
      }
    }
    __m256i acc[kPixels][G];
    for (size_t i = 0; i < kPixels; ++i)
      for (size_t gi = 0; gi < G; ++gi) acc[i][gi] = bias[gi];
    for (size_t ky = 0; ky < j.kh; ++ky) {
      for (size_t i = 0; i < kPixels; ++i) {
        _mm256_storeu_si256(
            reinterpret_cast<__m256i*>(rows[i] + 2 * ky * pairs),
            input_row(j, image[i], iy0[i] + static_cast<ptrdiff_t>(ky), ix0[i], zp16));
      }
    }
    // One flat loop over every pair of every kernel row: the accumulators
    // stay in registers throughout.
    const int16_t* w =
        reinterpret_cast<const int16_t*>(j.packed->data.data()) + group0 * group_stride;
    for (size_t t = 0; t < taps; ++t, w += 16) {
      __m256i wv[G];
      for (size_t gi = 0; gi < G; ++gi)
        wv[gi] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + gi * group_stride));
      for (size_t i = 0; i < kPixels; ++i) {
        int32_t pair;
        std::memcpy(&pair, &rows[i][2 * t], sizeof(pair));
        const __m256i b = _mm256_set1_epi32(pair);
        for (size_t gi = 0; gi < G; ++gi)
          acc[i][gi] = _mm256_add_epi32(acc[i][gi], _mm256_madd_epi16(b, wv[gi]));
      }
    }
    for (size_t i = 0; i < count; ++i) {
      const size_t pixel = p0 + i;
      if (j.requant == nullptr && channels == G * 8) {
        int32_t* dst = static_cast<int32_t*>(j.out) + pixel * j.out_stride + ch0;
        for (size_t gi = 0; gi < G; ++gi)
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + gi * 8), acc[i][gi]);
        continue;
      }
      if (j.requant == nullptr) {
        alignas(32) int32_t values[G * 8];
        for (size_t gi = 0; gi < G; ++gi)
          _mm256_store_si256(reinterpret_cast<__m256i*>(values + gi * 8), acc[i][gi]);
        std::memcpy(static_cast<int32_t*>(j.out) + pixel * j.out_stride + ch0, values,
                    channels * sizeof(int32_t));
        continue;
      }
      __m256i v[4];
      for (size_t gi = 0; gi < 4; ++gi) {
        v[gi] = gi < G ? requant8(acc[i][gi], *j.requant, lanes[gi]) : v[gi % G];
      }
      const __m256i bytes = clamp(v[0], v[1], v[2], v[3]);
      uint8_t* dst = static_cast<uint8_t*>(j.out) + pixel * j.out_stride + ch0;
      if (channels == 32) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), bytes);
      } else if (channels == 16) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm256_castsi256_si128(bytes));
      } else if (channels == 8) {
        _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), _mm256_castsi256_si128(bytes));
      } else {
        alignas(32) uint8_t tmp[32];
        _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), bytes);
        for (size_t c = 0; c < channels; ++c) dst[c] = tmp[c];  // short: no library call
      }
    }
  }
}

void direct_conv_avx2(const DirectConvJob& j, size_t begin, size_t end) {
  const size_t used = (j.out_c + kGroup - 1) / kGroup;
  if (used == 1) {
    direct_conv_chunk<1>(j, begin, end, 0);
  } else if (used == 2) {
    direct_conv_chunk<2>(j, begin, end, 0);
  } else {
    for (size_t g0 = 0; g0 < used; g0 += 4) direct_conv_chunk<4>(j, begin, end, g0);
  }
}

// The folder's direct kernel: the narrow-channel one (conv_narrow_avx2.cc)
// for the shapes it takes, else the narrow-row one above. Bit 0 of the
// packed flags says which; the narrow kernel keeps its own bits above it.
constexpr uint32_t kNarrowChannels = 1;

bool prepare_avx2(const DirectConvWeights& w, DirectConvPacked* out) {
  if (prepare_narrow_avx2(w, out)) {
    out->flags |= kNarrowChannels;
    return true;
  }
  out->flags = 0;
  return prepare_direct_avx2(w, out);
}

void run_avx2(const DirectConvJob& j, size_t begin, size_t end) {
  if (j.packed->flags & kNarrowChannels) {
    conv_u8_narrow_c2_avx2(j, begin, end);
  } else {
    direct_conv_avx2(j, begin, end);
  }
}

}  // namespace

const DirectConvKernel& avx2_direct_conv_kernel() {
  static const DirectConvKernel kernel = {prepare_avx2, run_avx2};
  return kernel;
}

}  // namespace lowp
