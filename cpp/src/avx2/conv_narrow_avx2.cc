// AVX2 direct convolution for few channels (conv_direct.h):
// conv_u8_narrow_c2_avx2, P output pixels along one output row by G vectors
// of 8 output channels, for in_c, out_c <= 64, kernels up to 5x5 and
// strides up to 2: the 3x3 layers of a small UNet and its 3-channel first
// layer. On those the GEMM route gathers and packs A (im2col, micro-panels,
// row sums) for every output pixel, and with N = out_c <= 32 each packed
// value feeds only one or two 16-column tiles: it spent as long packing as
// multiplying.
//
// The loop. For a run of tiles along an output row (as many as the 24 KiB
// stack buffer holds) the kh input rows of their window strip are widened
// once into int16 values x - x_zp, with every padded position 0. Within one
// kernel row ky the kw taps of a pixel are kw in_c adjacent values of the
// strip row, and pixel p + 1's start sw in_c values after pixel p's. So per
// kernel row the K loop of a tile runs over ceil(kw in_c / 2) pairs r of
// values: for each pair, G weight vectors [8 channels x 2 int16] and, for
// each pixel, a 32-bit broadcast of the pair at row + p sw in_c + 2 r, into
// P x G vpmaddwd + vpaddd. The P x G = 12 accumulators (12 pixels x 1
// vector, or 6 x 2) stay in registers for the whole K loop, with the
// weights, a broadcast and a product: the 16 registers, held by inline
// assembly. More than 16 output channels run as chunks of 2 vectors over
// the same strip. Measured on Zen 2 (3x3 stride 1, 16 -> 16 channels), the
// K loop runs at the vpmaddwd peak, and the layer at ~85% of it.
//
// Weights, packed once: per kernel row ky, per pair r, per vector g of 8
// channels, lanes l = 0..7 of int16 pairs: (w[o][ky][2r] - w_zp[o],
// w[o][ky][2r + 1] - w_zp[o]) for channel o = 8 g + l, and 0 for a value
// past kw in_c or a channel past out_c. The bias, padded to whole vectors, is
// DirectConvPacked::bias.
//
// Exactness. |x - x_zp| <= 255 and |w - w_zp| <= 255 both fit int16, and
// vpmaddwd adds two such products, at most 2 x 255^2 < 2^31 in magnitude:
// exact, never saturating (vpmaddubsw, which saturates, is not used). The
// lanes accumulate with vpaddd, exact modulo 2^32, so each lane holds bias +
// sum over the K = kh kw in_c taps of (x - x_zp)(w - w_zp) wherever that
// fits int32 (the contract's K <= 33025). A padding tap is the value 0,
// which adds 0: exactly the contract's zero. The value a row's last pair
// reads past its kernel row (when kw in_c is odd) meets weight 0.
#include <algorithm>
#include <cstring>

#include "../conv_direct.h"
#include "../copy_bytes.h"
#include "../x86/intrin.h"
#include "../x86/pack_x86.h"
#include "fixedpoint_avx2.h"
#include "kernels_avx2.h"

namespace lowp {
namespace {

using avx2::lanes8_at;
using avx2::MulQuantLanes;
using avx2::requant8;

constexpr size_t kGroup = 8;       // output channels per int32 vector
constexpr size_t kMaxVectors = 8;  // out_c <= 64
constexpr size_t kMaxInC = 64;
constexpr size_t kMaxKernel = 5;  // kh, kw
constexpr size_t kMaxStride = 2;
constexpr size_t kMaxP = 12;
// The strip buffer, in int16 values: a run of tiles along an output row is
// widened at once, as many as fit (a 3x3 stride-1 layer over 16 channels:
// 16 tiles of 6 pixels). A strip row holds its pixels' values rounded up to
// 16, plus 16 for a widened tail's store and the pair a row's end may read
// on into; 16 more at the end for the last row's zeroing store.
constexpr size_t kStripValues = 12 * 1024;
static_assert(kMaxKernel * (((kMaxP - 1) * kMaxStride + kMaxKernel) * kMaxInC + 32) + 16 <=
                  kStripValues,
              "one tile of the largest shape fits the strip");

inline int32_t load32(const int16_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// n bytes from src as n int16 values x - x_zp at dst, reading none past
// `readable` bytes from src; writes up to 15 zero values past dst + n.
inline void widen(int16_t* dst, const uint8_t* src, size_t n, size_t readable, __m256i zp16) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        _mm256_sub_epi16(_mm256_cvtepu8_epi16(bytes), zp16));
  }
  if (i == n) return;
  const size_t t = n - i;
  const __m256i keep = _mm256_cvtepi8_epi16(x86::keep_first(t));  // 0xffff for the first t
  const __m128i bytes = x86::load_tail16(src, i, n, readable);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                      _mm256_and_si256(_mm256_sub_epi16(_mm256_cvtepu8_epi16(bytes), zp16), keep));
}

// Widens the kh rows of the window strip of `width` pixels starting at
// (iy0, ix0) of image n into buf (row stride `stride` values, a multiple of
// 16 with room for a tail's store), padding as 0.
void fill_strip(const DirectConvJob& j, size_t n, ptrdiff_t iy0, ptrdiff_t ix0, size_t width,
                int16_t* buf, size_t stride) {
  const ConvGeometry& g = j.g;
  const size_t c = j.in_c;
  const __m256i zp16 = _mm256_set1_epi16(static_cast<int16_t>(j.x_zero_point));
  const __m256i zero = _mm256_setzero_si256();
  // Pixels [lo, hi) of the strip lie inside the image's columns.
  const ptrdiff_t w = static_cast<ptrdiff_t>(g.in_w), wd = static_cast<ptrdiff_t>(width);
  const size_t lo = static_cast<size_t>(std::clamp<ptrdiff_t>(-ix0, 0, wd));
  const size_t hi = static_cast<size_t>(std::clamp<ptrdiff_t>(w - ix0, 0, wd));
  for (size_t ky = 0; ky < j.kh; ++ky, buf += stride) {
    const ptrdiff_t iy = iy0 + static_cast<ptrdiff_t>(ky);
    const bool inside = iy >= 0 && iy < static_cast<ptrdiff_t>(g.in_h) && lo < hi;
    // The widened run's stores cover values [start, stop); the rest of the
    // row (all of a padding row) is zeroed first, 16 values at a time: the
    // head's last store may run into the run (written after it), the
    // tail's into the next row (written after it) or the buffer's slack.
    const size_t start = inside ? lo * c : stride;
    const size_t stop = inside ? start + ((hi - lo) * c + 15) / 16 * 16 : stride;
    for (size_t i = 0; i < start; i += 16) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(buf + i), zero);
    }
    for (size_t i = stop; i < stride; i += 16) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(buf + i), zero);
    }
    if (!inside) continue;
    const size_t first = ((n * g.in_h + static_cast<size_t>(iy)) * g.in_w +
                          static_cast<size_t>(ix0 + static_cast<ptrdiff_t>(lo))) *
                         c;
    widen(buf + lo * c, j.x + first, (hi - lo) * c, j.x_bytes - first, zp16);
  }
}

// The K loop of a tile: sums[(p G + g) 8 + l], which holds the bias on
// entry, gains pixel p's products for channel 8 (g0 + g) + l, pixel p's
// kernel row ky starting at in + ky row_stride + p step.
struct TileLoop {
  const int16_t* in;
  size_t row_stride, step;  // int16 values
  const int16_t* w;         // the chunk's first weight vector
  size_t w_step;            // int16 values from one pair's vectors to the next
  size_t kh, pairs;
};

template <size_t P, size_t G>
void accumulate(const TileLoop& t, int32_t* sums) {
  __m256i acc[P][G];
  for (size_t p = 0; p < P; ++p)
    for (size_t g = 0; g < G; ++g)
      acc[p][g] = _mm256_load_si256(reinterpret_cast<const __m256i*>(sums + (p * G + g) * 8));
  const int16_t* w = t.w;
  for (size_t ky = 0; ky < t.kh; ++ky) {
    const int16_t* row = t.in + ky * t.row_stride;
    for (size_t r = 0; r < t.pairs; ++r, row += 2, w += t.w_step) {
      __m256i wv[G];
      for (size_t g = 0; g < G; ++g)
        wv[g] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + g * 16));
      for (size_t p = 0; p < P; ++p) {
        const __m256i x = _mm256_set1_epi32(load32(row + p * t.step));
        for (size_t g = 0; g < G; ++g)
          acc[p][g] = _mm256_add_epi32(acc[p][g], _mm256_madd_epi16(x, wv[g]));
      }
    }
  }
  for (size_t p = 0; p < P; ++p)
    for (size_t g = 0; g < G; ++g)
      _mm256_store_si256(reinterpret_cast<__m256i*>(sums + (p * G + g) * 8), acc[p][g]);
}

// The two tiles that fill the registers (12 accumulators, the weights, a
// broadcast and a product) are inline assembly: GCC spills 4 or 5 of the
// accumulators of the same loop written with intrinsics (as in the GEMM
// tile, gemm_avx2.cc). Pixel p's pair is at base + (p % 3) s, base the
// pointer of pixels 3 (p / 3) on (s: step in bytes).
// clang-format off
#define LOWP_NS(x) #x
#define LOWP_NSTR(x) LOWP_NS(x)
#define LOWP_AT0(B) "(%[" #B "])"
#define LOWP_AT1(B) "(%[" #B "],%[s],1)"
#define LOWP_AT2(B) "(%[" #B "],%[s],2)"
// Pixel with accumulators A0 (and A1) from the pair at ADDR.
#define LOWP_PX2(ADDR, A0, A1)                         \
  "vpbroadcastd " ADDR ", %%ymm14\n\t"                 \
  "vpmaddwd %%ymm12, %%ymm14, %%ymm15\n\t"             \
  "vpaddd %%ymm15, %%ymm" #A0 ", %%ymm" #A0 "\n\t"     \
  "vpmaddwd %%ymm13, %%ymm14, %%ymm15\n\t"             \
  "vpaddd %%ymm15, %%ymm" #A1 ", %%ymm" #A1 "\n\t"
#define LOWP_PX1(ADDR, A0)                             \
  "vpbroadcastd " ADDR ", %%ymm14\n\t"                 \
  "vpmaddwd %%ymm12, %%ymm14, %%ymm15\n\t"             \
  "vpaddd %%ymm15, %%ymm" #A0 ", %%ymm" #A0 "\n\t"
#define LOWP_LD(I) "vmovdqa " LOWP_NSTR(32 * I) "(%[sums]), %%ymm" #I "\n\t"
#define LOWP_ST(I) "vmovdqa %%ymm" #I ", " LOWP_NSTR(32 * I) "(%[sums])\n\t"
#define LOWP_LD12 LOWP_LD(0) LOWP_LD(1) LOWP_LD(2) LOWP_LD(3) LOWP_LD(4) LOWP_LD(5) \
  LOWP_LD(6) LOWP_LD(7) LOWP_LD(8) LOWP_LD(9) LOWP_LD(10) LOWP_LD(11)
#define LOWP_ST12 LOWP_ST(0) LOWP_ST(1) LOWP_ST(2) LOWP_ST(3) LOWP_ST(4) LOWP_ST(5) \
  LOWP_ST(6) LOWP_ST(7) LOWP_ST(8) LOWP_ST(9) LOWP_ST(10) LOWP_ST(11)
// The end of a pair, of a kernel row, and of the K loop.
#define LOWP_LOOP_END                 \
  "add %[w_bytes], %[w]\n\t"         \
  "dec %[left]\n\t"                  \
  "jnz 2b\n\t"                       \
  "add %[row_bytes], %[row]\n\t"     \
  "decq %[kh]\n\t"                   \
  "jnz 1b\n\t"                       \
  LOWP_ST12                          \
  "vzeroupper\n\t"
// clang-format on

template <>
void accumulate<6, 2>(const TileLoop& t, int32_t* sums) {
  const uint8_t* row = reinterpret_cast<const uint8_t*>(t.in);
  const uint8_t* w = reinterpret_cast<const uint8_t*>(t.w);
  const size_t s = t.step * 2, row_bytes = t.row_stride * 2, w_bytes = t.w_step * 2;
  size_t kh = t.kh;
  const uint8_t *b0, *b3;
  size_t left;
  // clang-format off
  __asm__ volatile(
      LOWP_LD12
      "1:\n\t"
      "mov %[row], %[b0]\n\t"
      "lea (%[s],%[s],2), %[b3]\n\t"
      "add %[row], %[b3]\n\t"
      "mov %[pairs], %[left]\n\t"
      "2:\n\t"
      "vmovdqu (%[w]), %%ymm12\n\t"
      "vmovdqu 32(%[w]), %%ymm13\n\t"
      LOWP_PX2(LOWP_AT0(b0), 0, 1) LOWP_PX2(LOWP_AT1(b0), 2, 3) LOWP_PX2(LOWP_AT2(b0), 4, 5)
      LOWP_PX2(LOWP_AT0(b3), 6, 7) LOWP_PX2(LOWP_AT1(b3), 8, 9) LOWP_PX2(LOWP_AT2(b3), 10, 11)
      "add $4, %[b0]\n\t"
      "add $4, %[b3]\n\t"
      LOWP_LOOP_END
      : [row] "+r"(row), [w] "+r"(w), [kh] "+m"(kh), [b0] "=&r"(b0), [b3] "=&r"(b3),
        [left] "=&r"(left)
      : [s] "r"(s), [sums] "r"(sums), [pairs] "m"(t.pairs), [row_bytes] "m"(row_bytes),
        [w_bytes] "m"(w_bytes)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
  // clang-format on
}

template <>
void accumulate<12, 1>(const TileLoop& t, int32_t* sums) {
  const uint8_t* row = reinterpret_cast<const uint8_t*>(t.in);
  const uint8_t* w = reinterpret_cast<const uint8_t*>(t.w);
  const size_t s = t.step * 2, row_bytes = t.row_stride * 2, w_bytes = t.w_step * 2;
  size_t kh = t.kh;
  const uint8_t *b0, *b3, *b6, *b9;
  size_t left;
  // clang-format off
  __asm__ volatile(
      LOWP_LD12
      "1:\n\t"
      "mov %[row], %[b0]\n\t"
      "lea (%[s],%[s],2), %[b3]\n\t"
      "add %[row], %[b3]\n\t"
      "lea (%[b3],%[s],2), %[b6]\n\t"
      "add %[s], %[b6]\n\t"
      "lea (%[b6],%[s],2), %[b9]\n\t"
      "add %[s], %[b9]\n\t"
      "mov %[pairs], %[left]\n\t"
      "2:\n\t"
      "vmovdqu (%[w]), %%ymm12\n\t"
      LOWP_PX1(LOWP_AT0(b0), 0) LOWP_PX1(LOWP_AT1(b0), 1) LOWP_PX1(LOWP_AT2(b0), 2)
      LOWP_PX1(LOWP_AT0(b3), 3) LOWP_PX1(LOWP_AT1(b3), 4) LOWP_PX1(LOWP_AT2(b3), 5)
      LOWP_PX1(LOWP_AT0(b6), 6) LOWP_PX1(LOWP_AT1(b6), 7) LOWP_PX1(LOWP_AT2(b6), 8)
      LOWP_PX1(LOWP_AT0(b9), 9) LOWP_PX1(LOWP_AT1(b9), 10) LOWP_PX1(LOWP_AT2(b9), 11)
      "add $4, %[b0]\n\t"
      "add $4, %[b3]\n\t"
      "add $4, %[b6]\n\t"
      "add $4, %[b9]\n\t"
      LOWP_LOOP_END
      : [row] "+r"(row), [w] "+r"(w), [kh] "+m"(kh), [b0] "=&r"(b0), [b3] "=&r"(b3),
        [b6] "=&r"(b6), [b9] "=&r"(b9), [left] "=&r"(left)
      : [s] "r"(s), [sums] "r"(sums), [pairs] "m"(t.pairs), [row_bytes] "m"(row_bytes),
        [w_bytes] "m"(w_bytes)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
  // clang-format on
}

#undef LOWP_LOOP_END
#undef LOWP_ST12
#undef LOWP_LD12
#undef LOWP_ST
#undef LOWP_LD
#undef LOWP_PX1
#undef LOWP_PX2
#undef LOWP_AT2
#undef LOWP_AT1
#undef LOWP_AT0
#undef LOWP_NSTR
#undef LOWP_NS

// Output channels [8 g0, 8 (g0 + G)) of pixels [pixel0, pixel0 + count),
// from the strip at `in` (pixel p's kernel row ky at in + ky row_stride + p
// step).
template <size_t P, size_t G>
void tile(const DirectConvJob& j, const int16_t* in, size_t row_stride, size_t step, size_t g0,
          size_t pixel0, size_t count) {
  const size_t vectors = j.packed->channels / kGroup;
  const int32_t* bias = j.packed->bias.data() + g0 * kGroup;
  alignas(32) int32_t sums[P * G * kGroup];
  for (size_t g = 0; g < G; ++g) {
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias + 8 * g));
    for (size_t p = 0; p < P; ++p)
      _mm256_store_si256(reinterpret_cast<__m256i*>(sums + (p * G + g) * 8), b);
  }
  const TileLoop loop = {in,
                         row_stride,
                         step,
                         reinterpret_cast<const int16_t*>(j.packed->data.data()) + g0 * 16,
                         vectors * 16,
                         j.kh,
                         (j.kw * j.in_c + 1) / 2};
  accumulate<P, G>(loop, sums);
  __m256i acc[P][G];
  for (size_t p = 0; p < P; ++p)
    for (size_t g = 0; g < G; ++g)
      acc[p][g] = _mm256_load_si256(reinterpret_cast<const __m256i*>(sums + (p * G + g) * 8));

  const size_t out_c = j.out_c, stride = j.out_stride;
  const size_t ch0 = g0 * kGroup, channels = std::min(G * kGroup, out_c - ch0);
  if (G == 1 && out_c < kGroup) {
    // Few channels (a 2-channel head): the tile's P out_c values are
    // adjacent in the output, so they are packed together first and
    // finished 32 at a time rather than one vector per pixel. Each store
    // writes 8 lanes; the next pixel's overwrites those past out_c. The
    // lanes after the last store are zeroed: the 32-value steps below read
    // them (their results are never stored).
    alignas(32) int32_t packed[P * kGroup + 32];
#pragma GCC unroll 12
    for (size_t p = 0; p < P; ++p)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(packed + p * out_c), acc[p][0]);
    const size_t written = (P - 1) * out_c + kGroup;
    std::memset(packed + written, 0, sizeof(packed) - written * sizeof(int32_t));
    const size_t values = count * out_c;
    if (j.requant == nullptr) {
      store_pixels(static_cast<int32_t*>(j.out) + pixel0 * stride, packed, count, out_c, stride);
      return;
    }
    const ChannelParams& ch = *j.requant;
    const avx2::OutputClamp clamp(j.zero_point, j.qmin, j.qmax);
    // Value e of the output has channel e % out_c: the tables' entries from
    // e % out_c on cycle through the channels (ChannelTables).
    const size_t e0 = pixel0 * out_c;
    alignas(32) uint8_t bytes[P * kGroup + 32];
    for (size_t i = 0; i < values; i += 32) {
      __m256i v[4];
      for (size_t k = 0; k < 4; ++k) {
        const size_t at = i + 8 * k;
        v[k] = requant8(_mm256_load_si256(reinterpret_cast<const __m256i*>(packed + at)), ch,
                        lanes8_at(ch, (e0 + at) % out_c));
      }
      _mm256_store_si256(reinterpret_cast<__m256i*>(bytes + i), clamp(v[0], v[1], v[2], v[3]));
    }
    store_pixels(static_cast<uint8_t*>(j.out) + pixel0 * stride, bytes, count, out_c, stride);
    return;
  }
  if (j.requant == nullptr) {
#pragma GCC unroll 12
    for (size_t p = 0; p < P; ++p) {
      if (p >= count) break;
      int32_t* dst = static_cast<int32_t*>(j.out) + (pixel0 + p) * stride + ch0;
      if (channels == G * kGroup) {
        for (size_t g = 0; g < G; ++g)
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 8 * g), acc[p][g]);
      } else {  // sums holds the pixel's G vectors side by side
        copy_bytes(reinterpret_cast<uint8_t*>(dst),
                   reinterpret_cast<const uint8_t*>(sums + p * G * kGroup),
                   channels * sizeof(int32_t));
      }
    }
    return;
  }
  const ChannelParams& ch = *j.requant;
  MulQuantLanes lanes[G];
  for (size_t g = 0; g < G; ++g) lanes[g] = lanes8_at(ch, ch0 + 8 * g);
  const avx2::OutputClamp clamp(j.zero_point, j.qmin, j.qmax);
  uint8_t* out = static_cast<uint8_t*>(j.out) + pixel0 * stride + ch0;
  if (G == 2) {
    // Two pixels' 16 channels per 32 bytes: adjacent in the output when the
    // layer has exactly those 16 channels.
#pragma GCC unroll 6
    for (size_t p = 0; p < P; p += 2) {
      if (p >= count) break;
      const size_t q = p + 1 < P ? p + 1 : p;
      const __m256i bytes =
          clamp(requant8(acc[p][0], ch, lanes[0]), requant8(acc[p][1], ch, lanes[1]),
                requant8(acc[q][0], ch, lanes[0]), requant8(acc[q][1], ch, lanes[1]));
      if (stride == 16 && channels == 16 && p + 2 <= count) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16 * p), bytes);
      } else {
        avx2::store_rows16_u8(out + p * stride, stride, bytes, channels, p + 1 < count);
      }
    }
    return;
  }
  // One vector: four pixels' 8 channels per 32 bytes.
#pragma GCC unroll 3
  for (size_t p = 0; p < P; p += 4) {
    if (p >= count) break;
    __m256i v[4];
    for (size_t i = 0; i < 4; ++i) v[i] = requant8(acc[p + i < P ? p + i : p][0], ch, lanes[0]);
    alignas(32) uint8_t bytes[32];
    _mm256_store_si256(reinterpret_cast<__m256i*>(bytes), clamp(v[0], v[1], v[2], v[3]));
    const size_t n = std::min<size_t>(4, count - p);
    if (stride == 8 && channels == 8) {
      copy_bytes(out + 8 * p, bytes, 8 * n);
    } else {
      for (size_t i = 0; i < n; ++i) copy_bytes(out + (p + i) * stride, bytes + 8 * i, channels);
    }
  }
}

// Pixels [begin, end) in runs of tiles of P along each output row: each
// run's strip is widened once for all its tiles and chunks of output
// channels.
template <size_t P>
void narrow_rows(const DirectConvJob& j, size_t begin, size_t end) {
  const ConvGeometry& g = j.g;
  const size_t c = j.in_c, step = j.sw * c;
  const size_t vectors = j.packed->channels / kGroup;
  // The most tiles whose strip fits: a row of w pixels takes at most
  // w c + 31 values.
  const size_t width_cap = ((kStripValues - 16) / j.kh - 31) / c;
  const size_t tiles_cap = std::max<size_t>(1, ((width_cap - j.kw) / j.sw + 1) / P);
  alignas(32) int16_t strip[kStripValues];
  size_t n = begin / (g.out_h * g.out_w), oy = begin / g.out_w % g.out_h, ox = begin % g.out_w;
  for (size_t pixel = begin; pixel < end;) {
    const size_t run = std::min({P * tiles_cap, g.out_w - ox, end - pixel});
    const size_t tiles = (run + P - 1) / P;
    // Every tile reads P pixels' windows, the last one's past the run too.
    const size_t width = (tiles * P - 1) * j.sw + j.kw;
    const size_t strip_row = (width * c + 15) / 16 * 16 + 16;
    const ptrdiff_t iy0 = static_cast<ptrdiff_t>(oy * j.sh) - static_cast<ptrdiff_t>(g.pad_top);
    const ptrdiff_t ix0 = static_cast<ptrdiff_t>(ox * j.sw) - static_cast<ptrdiff_t>(g.pad_left);
    fill_strip(j, n, iy0, ix0, width, strip, strip_row);
    for (size_t t = 0; t < tiles; ++t) {
      const size_t first = pixel + t * P, count = std::min(P, run - t * P);
      const int16_t* in = strip + t * P * step;
      if (P == 12 || vectors == 1) {  // 12 pixels: one vector (conv_u8_narrow_c2_avx2)
        tile<P, 1>(j, in, strip_row, step, 0, first, count);
      } else if constexpr (P != 12) {
        size_t v = 0;
        for (; v + 2 <= vectors; v += 2) tile<P, 2>(j, in, strip_row, step, v, first, count);
        if (v < vectors) tile<P, 1>(j, in, strip_row, step, v, first, count);
      }
    }
    pixel += run;
    ox += run;
    if (ox == g.out_w) {
      ox = 0;
      if (++oy == g.out_h) {
        oy = 0;
        ++n;
      }
    }
  }
}

// Transposed convolution with stride == kernel (KernelTable::direct_deconv,
// the 2x2 stride-2 up-sampling of a UNet): deconv_u8_tiled_c2_avx2. Each
// input pixel's in_c values times the weights give its kh x kw patch of the
// output, and the patches tile the output without overlap. Per kernel row
// ky a pixel's kw out_c outputs (kx, o) are one run of columns: as a 1x1
// convolution with kw out_c output columns, the same strip (runs of input
// pixels widened once to x - x_zp), the same 6 x 2-vector tiles and K loop
// (pairs of input channels) as the convolution above. Each tile's outputs
// go through the output stage into a small buffer and from there, per
// pixel and kx (or per pixel where the run is contiguous in the output), to
// their place, with the crop applied there. The GEMM route does the same
// through a [pixels, kh kw out_c] block and a scatter pass; on Zen 2 it
// spent as long in its packing and scatter as in multiplying.
//
// Weights, packed once: per pair r of input channels, per kernel row ky,
// per vector v of 8 columns (column kx out_c + o = 8 v + l), int16 pairs
// (w[o][ky][kx][2r] - w_zp[o], w[o][ky][kx][2r + 1] - w_zp[o]), 0 past
// in_c and past kw out_c; the bias per padded column (ky, 8 v + l). Exact
// for the same reasons as the convolution's.
constexpr size_t kDeconvMaxInC = 64;
constexpr size_t kDeconvMaxRow = 256;  // kw out_c columns of one kernel row
constexpr size_t kDeconvP = 6;

void deconv_rows(const DirectConvJob& j, size_t begin, size_t end) {
  constexpr size_t P = kDeconvP;
  const ConvGeometry& g = j.g;
  const size_t in_c = j.in_c, out_c = j.out_c, row = j.kw * out_c;
  const size_t row_vectors = (row + kGroup - 1) / kGroup, row_padded = row_vectors * kGroup;
  const size_t vectors = j.packed->channels / kGroup;  // kh row_vectors
  const bool requant = j.requant != nullptr;
  const size_t elem = requant ? 1 : sizeof(int32_t), stride = j.out_stride;
  const __m256i zp16 = _mm256_set1_epi16(static_cast<int16_t>(j.x_zero_point));
  const __m256i zero = _mm256_setzero_si256();
  const int16_t* weights = reinterpret_cast<const int16_t*>(j.packed->data.data());
  const int32_t* bias = j.packed->bias.data();
  // Runs of whole tiles, as many as the strip holds with 32 values to spare.
  const size_t run_cap = std::max<size_t>(P, (kStripValues - 32) / in_c / P * P);
  alignas(32) int16_t strip[kStripValues];
  alignas(32) int32_t sums[P * 2 * kGroup];
  alignas(32) uint8_t patch[P * kDeconvMaxRow * sizeof(int32_t)];  // [p][row_padded] elements
  const avx2::OutputClamp clamp(j.zero_point, j.qmin, j.qmax);
  size_t n = begin / (g.in_h * g.in_w), y = begin / g.in_w % g.in_h, x = begin % g.in_w;
  for (size_t pixel = begin; pixel < end;) {
    const size_t run = std::min(run_cap, end - pixel), tiles = (run + P - 1) / P;
    widen(strip, j.x + pixel * in_c, run * in_c, j.x_bytes - pixel * in_c, zp16);
    // The last tile's pixels past the run read zeros (their outputs are
    // dropped), and so does its last pair past in_c.
    for (size_t i = (run * in_c + 15) / 16 * 16; i < tiles * P * in_c + 16; i += 16) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(strip + i), zero);
    }
    for (size_t t = 0; t < tiles; ++t) {
      const size_t count = std::min(P, run - t * P);
      const int16_t* in = strip + t * P * in_c;
      // The tile's pixels' coordinates, stepped rather than divided.
      size_t image[P], iy[P], ix[P];
      for (size_t p = 0; p < count; ++p) {
        image[p] = n;
        iy[p] = y;
        ix[p] = x;
        if (++x == g.in_w) {
          x = 0;
          if (++y == g.in_h) {
            y = 0;
            ++n;
          }
        }
      }
      for (size_t ky = 0; ky < j.kh; ++ky) {
        for (size_t v = 0; v < row_vectors; v += 2) {
          const size_t G = std::min<size_t>(2, row_vectors - v), col0 = v * kGroup;
          const int32_t* b = bias + ky * row_padded + col0;
          for (size_t gi = 0; gi < G; ++gi) {
            const __m256i bv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 8 * gi));
            for (size_t p = 0; p < P; ++p)
              _mm256_store_si256(reinterpret_cast<__m256i*>(sums + (p * G + gi) * 8), bv);
          }
          const TileLoop loop = {
              in, 0, in_c, weights + (ky * row_vectors + v) * 16, vectors * 16, 1, (in_c + 1) / 2};
          if (G == 2) {
            accumulate<P, 2>(loop, sums);
          } else {
            accumulate<P, 1>(loop, sums);
          }
          if (!requant) {
            for (size_t p = 0; p < count; ++p) {
              std::memcpy(reinterpret_cast<int32_t*>(patch) + p * row_padded + col0,
                          sums + p * G * kGroup, G * kGroup * sizeof(int32_t));
            }
            continue;
          }
          // Two pixels per 32 bytes. Column c's channel is c % out_c, as
          // the stage's tables cycle.
          const MulQuantLanes l0 = lanes8_at(*j.requant, col0);
          const MulQuantLanes l1 = G == 2 ? lanes8_at(*j.requant, col0 + 8) : l0;
          const auto value = [&](size_t p, size_t gi) {
            return requant8(
                _mm256_load_si256(reinterpret_cast<const __m256i*>(sums + (p * G + gi) * 8)),
                *j.requant, gi == 0 ? l0 : l1);
          };
          for (size_t p = 0; p < count; p += 2) {
            const size_t q = p + 1 < P ? p + 1 : p;
            const __m256i bytes = G == 2
                                      ? clamp(value(p, 0), value(p, 1), value(q, 0), value(q, 1))
                                      : clamp(value(p, 0), value(q, 0), value(p, 0), value(p, 0));
            uint8_t* dst = patch + p * row_padded + col0;
            const __m128i lo = _mm256_castsi256_si128(bytes),
                          hi = _mm256_extracti128_si256(bytes, 1);
            if (G == 2) {
              _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), lo);
              _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + row_padded), hi);
            } else {  // bytes 0-7: pixel p, 8-15: pixel q
              _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), lo);
              _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + row_padded), _mm_srli_si128(lo, 8));
            }
          }
        }
        // Kernel row ky of each pixel's patch to its place in the output.
        for (size_t p = 0; p < count; ++p) {
          const ptrdiff_t oy =
              static_cast<ptrdiff_t>(iy[p] * j.kh + ky) - static_cast<ptrdiff_t>(g.pad_top);
          if (oy < 0 || oy >= static_cast<ptrdiff_t>(g.out_h)) continue;
          const ptrdiff_t ox0 =
              static_cast<ptrdiff_t>(ix[p] * j.kw) - static_cast<ptrdiff_t>(g.pad_left);
          uint8_t* line = static_cast<uint8_t*>(j.out) +
                          (image[p] * g.out_h + static_cast<size_t>(oy)) * g.out_w * stride * elem;
          const uint8_t* src = patch + p * row_padded * elem;
          if (stride == out_c && ox0 >= 0 && static_cast<size_t>(ox0) + j.kw <= g.out_w) {
            copy_bytes(line + static_cast<size_t>(ox0) * stride * elem, src, row * elem);
            continue;
          }
          for (size_t kx = 0; kx < j.kw; ++kx) {
            const ptrdiff_t ox = ox0 + static_cast<ptrdiff_t>(kx);
            if (ox < 0 || ox >= static_cast<ptrdiff_t>(g.out_w)) continue;
            copy_bytes(line + static_cast<size_t>(ox) * stride * elem, src + kx * out_c * elem,
                       out_c * elem);
          }
        }
      }
    }
    pixel += run;
  }
}

// A 1x1 head with few output channels (the UNet's 16 -> 2): one vector per
// output channel would leave 6 of its 8 lanes idle, so here the lanes are 8
// pixels instead. Per 16 input channels, 8 pixels' values x - x_zp (one
// vector each) are transposed as 8 x 8 pairs, and each output channel o
// gains the vpmaddwd of pair vector q with (w[o][2q] - w_zp, w[o][2q + 1] -
// w_zp) in every lane. Exact as above; the head's weights follow the
// narrow layout's in the packed data, as [o][pair] vectors of 8 lanes.
constexpr uint32_t kHead = 2;  // DirectConvPacked::flags
constexpr size_t kHeadMaxOutC = 4;

size_t narrow_weight_values(size_t kh, size_t kw, size_t in_c, size_t out_c) {
  return kh * ((kw * in_c + 1) / 2) * ((out_c + kGroup - 1) / kGroup) * 16;
}

inline void transpose_8x8(__m256i r[8]) {
  __m256i t[8], u[8];
  for (size_t i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (size_t i = 0; i < 8; i += 4) {
    u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
    u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
    u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (size_t i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x31);
  }
}

// O = out_c output channels.
template <size_t O>
void head_rows(const DirectConvJob& j, size_t begin, size_t end) {
  constexpr size_t out_c = O;
  const size_t c = j.in_c, chunks = (c + 15) / 16, stride = j.out_stride;
  const __m256i* wv =
      reinterpret_cast<const __m256i*>(reinterpret_cast<const int16_t*>(j.packed->data.data()) +
                                       narrow_weight_values(1, 1, c, out_c));
  const __m256i zp16 = _mm256_set1_epi16(static_cast<int16_t>(j.x_zero_point));
  __m256i bias[kHeadMaxOutC];
  MulQuantLanes lanes[kHeadMaxOutC];
  for (size_t o = 0; o < out_c; ++o) {
    bias[o] = _mm256_set1_epi32(j.packed->bias[o]);
    const size_t e = j.requant != nullptr && j.requant->period != 1 ? o : 0;
    lanes[o] = j.requant != nullptr
                   ? avx2::broadcast_lanes(j.requant->multiplier[e], j.requant->shift[e])
                   : avx2::broadcast_lanes(0, 0);
  }
  const avx2::OutputClamp clamp(j.zero_point, j.qmin, j.qmax);
  for (size_t pixel = begin; pixel < end; pixel += 8) {
    const size_t count = std::min<size_t>(8, end - pixel);
    __m256i acc[kHeadMaxOutC];
    for (size_t o = 0; o < out_c; ++o) acc[o] = bias[o];
    for (size_t k = 0; k < chunks; ++k) {
      __m256i r[8];
      const uint8_t* row = j.x + pixel * c + 16 * k;
      if (count == 8 && pixel * c + 7 * c + 16 * k + 16 <= j.x_bytes) {
#pragma GCC unroll 8
        for (size_t p = 0; p < 8; ++p) {
          const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + p * c));
          r[p] = _mm256_sub_epi16(_mm256_cvtepu8_epi16(bytes), zp16);
        }
      } else {
        for (size_t p = 0; p < 8; ++p) {
          // Channels 16 k.. of the pixel (a short tile repeats its last
          // one); past in_c the next pixel's values or zeros, which meet
          // weight 0.
          const size_t at = (pixel + std::min(p, count - 1)) * c + 16 * k;
          const __m128i bytes =
              at + 16 <= j.x_bytes
                  ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(j.x + at))
                  : x86::load_tail16(j.x + at, 0, std::min<size_t>(16, j.x_bytes - at),
                                     j.x_bytes - at);
          r[p] = _mm256_sub_epi16(_mm256_cvtepu8_epi16(bytes), zp16);
        }
      }
      transpose_8x8(r);  // r[q]: pair q of the chunk, pixels in lanes
      for (size_t o = 0; o < out_c; ++o) {
        const __m256i* w = wv + (o * chunks + k) * 8;
#pragma GCC unroll 8
        for (size_t q = 0; q < 8; ++q) {
          acc[o] = _mm256_add_epi32(acc[o], _mm256_madd_epi16(r[q], _mm256_loadu_si256(w + q)));
        }
      }
    }
    if (j.requant == nullptr) {
      alignas(32) int32_t v[kHeadMaxOutC][8];
      for (size_t o = 0; o < out_c; ++o)
        _mm256_store_si256(reinterpret_cast<__m256i*>(v[o]), acc[o]);
      int32_t* dst = static_cast<int32_t*>(j.out) + pixel * stride;
      for (size_t p = 0; p < count; ++p)
        for (size_t o = 0; o < out_c; ++o) dst[p * stride + o] = v[o][p];
      continue;
    }
    __m256i v[4];
    for (size_t o = 0; o < 4; ++o) v[o] = o < out_c ? requant8(acc[o], *j.requant, lanes[o]) : v[0];
    const __m256i bytes = clamp(v[0], v[1], v[2], v[3]);  // channel o of pixel p at 8 o + p
    uint8_t* dst = static_cast<uint8_t*>(j.out) + pixel * stride;
    if (out_c == 2 && stride == 2 && count == 8) {
      const __m128i pairs =
          _mm_shuffle_epi8(_mm256_castsi256_si128(bytes),
                           _mm_setr_epi8(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), pairs);
      continue;
    }
    alignas(32) uint8_t b[32];
    _mm256_store_si256(reinterpret_cast<__m256i*>(b), bytes);
    for (size_t p = 0; p < count; ++p)
      for (size_t o = 0; o < out_c; ++o) dst[p * stride + o] = b[o * 8 + p];
  }
}

}  // namespace

bool prepare_narrow_avx2(const DirectConvWeights& w, DirectConvPacked* out) {
  if (w.out_c == 0 || w.out_c > kGroup * kMaxVectors || w.in_c == 0 || w.in_c > kMaxInC ||
      w.kh == 0 || w.kh > kMaxKernel || w.kw == 0 || w.kw > kMaxKernel || w.sh == 0 ||
      w.sh > kMaxStride || w.sw == 0 || w.sw > kMaxStride) {
    return false;
  }
  // With more than 32 output channels over 32 or more input channels the
  // GEMM route reuses each packed A value across enough columns to be as
  // fast (16x16x64 -> 64, 56x56x64 -> 64, the stride-2 32 -> 64: 1-6%
  // faster on Zen 2).
  if (w.out_c > 32 && w.in_c >= 32) return false;
  const size_t run = w.kw * w.in_c, pairs = (run + 1) / 2;
  const size_t vectors = (w.out_c + kGroup - 1) / kGroup;
  const size_t narrow_values = narrow_weight_values(w.kh, w.kw, w.in_c, w.out_c);
  const bool head = w.kh == 1 && w.kw == 1 && w.sh == 1 && w.sw == 1 && w.out_c <= kHeadMaxOutC;
  // The head's [o][pair] vectors follow, every lane the same pair (int16
  // values, 16 per vector), pairs padded to whole chunks of 16 channels.
  const size_t chunk_pairs = (w.in_c + 15) / 16 * 8;
  const size_t head_values = head ? w.out_c * chunk_pairs * 16 : 0;
  out->channels = vectors * kGroup;
  out->reset((narrow_values + head_values) * sizeof(int16_t), out->channels);
  uint8_t* weights = out->data.data();
  for (size_t o = 0; o < w.out_c; ++o) {
    const int32_t zp = w.w_zero_point[w.w_zero_point_count == 1 ? 0 : o];
    if (w.bias != nullptr) out->bias[o] = w.bias[o];
    for (size_t ky = 0; ky < w.kh; ++ky) {
      for (size_t k = 0; k < run; ++k) {
        avx2::put_i16(weights,
                      ((ky * pairs + k / 2) * vectors + o / kGroup) * 16 + o % kGroup * 2 + k % 2,
                      static_cast<int16_t>(w.w[(o * w.kh + ky) * run + k] - zp));
      }
    }
    for (size_t c = 0; head && c < w.in_c; ++c) {
      for (size_t lane = 0; lane < 8; ++lane) {
        avx2::put_i16(weights, narrow_values + (o * chunk_pairs + c / 2) * 16 + lane * 2 + c % 2,
                      static_cast<int16_t>(w.w[o * w.in_c + c] - zp));
      }
    }
  }
  out->flags = head ? kHead : 0;
  return true;
}

void conv_u8_narrow_c2_avx2(const DirectConvJob& j, size_t begin, size_t end) {
  const ConvGeometry& g = j.g;
  if ((j.packed->flags & kHead) && g.pad_top == 0 && g.pad_left == 0 && g.out_h == g.in_h &&
      g.out_w == g.in_w) {
    switch (j.out_c) {
      case 1:
        return head_rows<1>(j, begin, end);
      case 2:
        return head_rows<2>(j, begin, end);
      case 3:
        return head_rows<3>(j, begin, end);
      default:
        return head_rows<4>(j, begin, end);
    }
  }
  if (j.packed->channels == kGroup) {
    narrow_rows<12>(j, begin, end);
  } else {
    narrow_rows<6>(j, begin, end);
  }
}

}  // namespace lowp

namespace lowp {

bool prepare_deconv_avx2(const DirectConvWeights& w, DirectConvPacked* out) {
  const size_t row = w.kw * w.out_c;
  if (w.kh == 0 || w.kw == 0 || w.kh != w.sh || w.kw != w.sw || w.in_c == 0 ||
      w.in_c > kDeconvMaxInC || w.out_c == 0 || row > kDeconvMaxRow) {
    return false;
  }
  const size_t row_vectors = (row + kGroup - 1) / kGroup, row_padded = row_vectors * kGroup;
  const size_t vectors = w.kh * row_vectors, pairs = (w.in_c + 1) / 2;
  out->channels = vectors * kGroup;
  out->reset(pairs * vectors * 16 * sizeof(int16_t), out->channels);
  uint8_t* weights = out->data.data();
  for (size_t o = 0; o < w.out_c; ++o) {
    const int32_t zp = w.w_zero_point[w.w_zero_point_count == 1 ? 0 : o];
    for (size_t ky = 0; ky < w.kh; ++ky) {
      for (size_t kx = 0; kx < w.kw; ++kx) {
        const size_t col = kx * w.out_c + o, v = ky * row_vectors + col / kGroup;
        if (w.bias != nullptr) out->bias[ky * row_padded + col] = w.bias[o];
        for (size_t c = 0; c < w.in_c; ++c) {
          avx2::put_i16(weights, ((c / 2) * vectors + v) * 16 + col % kGroup * 2 + c % 2,
                        static_cast<int16_t>(w.w[((o * w.kh + ky) * w.kw + kx) * w.in_c + c] - zp));
        }
      }
    }
  }
  out->flags = 0;
  return true;
}

void deconv_u8_tiled_c2_avx2(const DirectConvJob& j, size_t begin, size_t end) {
  deconv_rows(j, begin, end);
}

const DirectConvKernel& avx2_direct_deconv_kernel() {
  static const DirectConvKernel kernel = {prepare_deconv_avx2, deconv_u8_tiled_c2_avx2};
  return kernel;
}

}  // namespace lowp
