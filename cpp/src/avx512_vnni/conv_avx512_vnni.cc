// AVX-512 VNNI direct convolution for narrow kernel rows (conv_direct.h):
// direct_conv_u8_c4_avx512vnni: tiles of P output pixels by G vectors of 16
// output channels, 4 taps per vpdpbusd. Made for the 3-channel first layer
// of an image network (3x3 stride 2 over RGB: 9-byte kernel rows), it takes
// any kernel row of at most 16 bytes with kh * ceil(kw in_c / 2) <= 64 (the
// AVX2 kernel's shapes), so K = kh kw in_c <= 128.
//
// Per output pixel, each kernel row ky is one 16-byte load of the image
// (x[iy][ix0 ..] for kw in_c bytes; the bytes after it meet zero weights),
// stored into a per-pixel buffer at 4 q ky, q = ceil(kw in_c / 4) quads per
// row, so that quad t of the buffer is taps 4t .. 4t + 3 of the flattened
// (ky, quad) loop. A tap in the padding (or a row read past the image) is
// the byte x_zp. The main loop, per quad t: G weight vectors, and for each
// of the P pixels a 32-bit broadcast of its quad into P x G vpdpbusd
// (P x G <= 24 accumulators, G weights and a broadcast fit the 32 zmm
// registers: 16 x 1, 12 x 2, 8 x 3, 6 x 4 by the number of channel vectors).
//
// Weights, packed once: per vector v of 16 output channels, per quad t,
// 64 bytes: lane l (channel 16 v + l), byte j holds w[o][ky][4 (t % q) + j]
// ^ 0x80, i.e. w - 128 as a signed byte, and 0 past the kernel row or past
// out_c. After all weights: per channel c[o] = 128 - w_zp[o] as an int16 in
// the low half of an int32 (high half 0).
//
// Exactness. vpdpbusd multiplies the unsigned input bytes x (0..255) by the
// signed bytes w - 128 and adds four products per lane without saturation
// (never vpdpbusds, no vpmaddubsw): dot = sum_t x_t (w_t - 128), |dot| <=
// 128 * 255 * 128 < 2^23; bytes past the row meet weight 0. With s = sum_t
// x_t over the K real taps (padding taps counted as x_zp),
//   sum_t (x_t - x_zp)(w_t - w_zp) = dot + (128 - w_zp) s - x_zp sum_t (w_t - w_zp).
// The last term depends only on the weights and is folded into the packed
// bias (with the caller's bias, in wrapping int32). s is at most 255 K <=
// 32640, an int16, and 128 - w_zp is in [-127, 128]: vpdpwssd of the
// broadcast s (high half 0) with c[o] (high half 0) adds exactly s c[o]
// (vpdpwssd does not saturate; its pair's second product is 0 * 0). s itself
// is vpdpbusd of each row's 16 bytes with a 0/1 mask of its first kw in_c
// bytes: exact sums of bytes. So every lane holds bias + the exact sum mod
// 2^32, the contract's value. A padding tap is the byte x_zp both in dot and
// in s, so it adds (x_zp - x_zp)(w - w_zp) = 0, exactly what x = x_zp adds.
// Where every w_zp is 128 (int8-symmetric weights, TFLite's int8 scheme),
// the s term is zero and the kernel skips the input sums (kNoSums).
#include <algorithm>
#include <cstring>

#include "../conv_direct.h"
#include "../copy_bytes.h"
#include "../x86/intrin.h"
#include "fixedpoint_avx512.h"
#include "kernels_avx512_vnni.h"

namespace lowp {
namespace LOWP_ISA_NS {
namespace {

using avx512::MulQuantLanes16;
using avx512::requant16;

constexpr size_t kMaxRow = 16;    // bytes of one kernel row (one 16-byte load)
constexpr size_t kMaxPairs = 64;  // kh * ceil(row / 2), as the AVX2 kernel
constexpr size_t kMaxQuads = 64;  // kh * ceil(row / 4) <= kh * ceil(row / 2)
// Bytes of one pixel's buffer: every quad, and the last row's full 16 bytes.
constexpr size_t kPixelBytes = 4 * kMaxQuads + kMaxRow;

// DirectConvPacked::flags: every c[o] is 0 (w_zp = 128), so s is not needed;
// kNarrow: the shape went to the narrow-channel kernel, with its flags.
constexpr uint32_t kNoSums = 1;
constexpr uint32_t kNarrow = 1u << 31;

inline int32_t load32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Weights and per-channel terms in the layout above; bias padded to the
// vector count. Returns false for shapes the kernel does not take.
bool prepare_direct_avx512vnni(const DirectConvWeights& w, DirectConvPacked* out) {
  const size_t run = w.kw * w.in_c, quads = (run + 3) / 4, taps = w.kh * quads;
  if (run == 0 || run > kMaxRow || w.kh * ((run + 1) / 2) > kMaxPairs) return false;
  const size_t vectors = (w.out_c + 15) / 16;
  out->channels = vectors * 16;
  out->reset(vectors * taps * 64 + out->channels * sizeof(int32_t), out->channels);
  uint8_t* c = out->data.data() + vectors * taps * 64;  // int32 per channel
  bool no_sums = true;                                  // every c[o] is 0 (the padding's are)
  for (size_t o = 0; o < w.out_c; ++o) {
    const int32_t zp = w.w_zero_point[w.w_zero_point_count == 1 ? 0 : o];
    uint8_t* lanes = out->data.data() + (o / 16) * taps * 64 + (o % 16) * 4;
    int64_t sum = 0;  // sum over the taps of (w - w_zp)
    for (size_t ky = 0; ky < w.kh; ++ky) {
      for (size_t i = 0; i < run; ++i) {
        const uint8_t v = w.w[(o * w.kh + ky) * run + i];
        lanes[(ky * quads + i / 4) * 64 + i % 4] = static_cast<uint8_t>(v ^ 0x80);
        sum += int64_t{v} - zp;
      }
    }
    const uint32_t folded = static_cast<uint32_t>(w.bias != nullptr ? w.bias[o] : 0) -
                            static_cast<uint32_t>(int64_t{w.x_zero_point} * sum);
    out->bias[o] = static_cast<int32_t>(folded);
    const int32_t term = (128 - zp) & 0xFFFF;
    std::memcpy(c + o * sizeof(int32_t), &term, sizeof(term));
    no_sums &= term == 0;
  }
  out->flags = no_sums ? kNoSums : 0;
  return true;
}

// The pixels of one block: pixel p's kernel rows in the buffer layout at
// rows[p] (quad t at rows[p][4 t]) and its input sum s at sums[p].
template <size_t P>
struct Block {
  alignas(64) uint8_t rows[P][kPixelBytes];
  alignas(16) int32_t sums[(P + 3) / 4 * 4];
};

// Kernel row ky of a pixel whose window starts at (iy, ix0) of image n.
inline __m128i input_row(const DirectConvJob& j, size_t n, ptrdiff_t iy, ptrdiff_t ix0,
                         __m128i zp8) {
  const ConvGeometry& g = j.g;
  if (iy < 0 || iy >= static_cast<ptrdiff_t>(g.in_h)) return zp8;
  const size_t line = (n * g.in_h + static_cast<size_t>(iy)) * g.in_w;
  if (ix0 >= 0 && ix0 + static_cast<ptrdiff_t>(j.kw) <= static_cast<ptrdiff_t>(g.in_w) &&
      (line + static_cast<size_t>(ix0)) * j.in_c + 16 <= j.x_bytes) {
    return _mm_loadu_si128(
        reinterpret_cast<const __m128i*>(j.x + (line + static_cast<size_t>(ix0)) * j.in_c));
  }
  alignas(16) uint8_t buf[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(buf), zp8);
  for (size_t kx = 0; kx < j.kw; ++kx) {
    const ptrdiff_t ix = ix0 + static_cast<ptrdiff_t>(kx);
    if (ix < 0 || ix >= static_cast<ptrdiff_t>(g.in_w)) continue;
    std::memcpy(buf + kx * j.in_c, j.x + (line + static_cast<size_t>(ix)) * j.in_c, j.in_c);
  }
  return _mm_load_si128(reinterpret_cast<const __m128i*>(buf));
}

// Output channels [16 v0, 16 (v0 + G)) of the block's pixels [p0, p0 + count).
template <size_t P, size_t G, bool kSums>
void block_chunk(const DirectConvJob& j, const Block<P>& b, size_t p0, size_t count, size_t v0) {
  const size_t quads = (j.kw * j.in_c + 3) / 4, taps = j.kh * quads;
  const size_t vectors = j.packed->channels / 16;
  const uint8_t* weights = j.packed->data.data() + v0 * taps * 64;
  const int32_t* c = reinterpret_cast<const int32_t*>(j.packed->data.data() + vectors * taps * 64);
  const size_t ch0 = 16 * v0;
  const size_t channels = std::min(16 * G, j.out_c - ch0);

  // Every loop over p and g is unrolled, so that acc stays in registers (a
  // run-time index would put it in memory).
  __m512i acc[P][G];
#pragma GCC unroll 4
  for (size_t g = 0; g < G; ++g) {
    const __m512i bias = _mm512_loadu_si512(j.packed->bias.data() + ch0 + 16 * g);
    const __m512i cg = _mm512_loadu_si512(c + ch0 + 16 * g);
#pragma GCC unroll 16
    for (size_t p = 0; p < P; ++p) {
      acc[p][g] = kSums ? _mm512_dpwssd_epi32(bias, _mm512_set1_epi32(b.sums[p]), cg) : bias;
    }
  }
  const uint8_t* rows = b.rows[0];
  for (size_t t = 0; t < taps; ++t, rows += 4) {
    __m512i wv[G];
#pragma GCC unroll 4
    for (size_t g = 0; g < G; ++g) wv[g] = _mm512_loadu_si512(weights + (g * taps + t) * 64);
#pragma GCC unroll 16
    for (size_t p = 0; p < P; ++p) {
      const __m512i x = _mm512_set1_epi32(load32(rows + p * kPixelBytes));
#pragma GCC unroll 4
      for (size_t g = 0; g < G; ++g) acc[p][g] = _mm512_dpbusd_epi32(acc[p][g], x, wv[g]);
    }
  }

  if (j.requant == nullptr) {
#pragma GCC unroll 16
    for (size_t p = 0; p < P; ++p) {
      if (p >= count) break;
      int32_t* dst = static_cast<int32_t*>(j.out) + (p0 + p) * j.out_stride + ch0;
      if (channels == 16 * G) {
#pragma GCC unroll 4
        for (size_t g = 0; g < G; ++g) _mm512_storeu_si512(dst + 16 * g, acc[p][g]);
      } else {
        alignas(64) int32_t tmp[16 * G];
#pragma GCC unroll 4
        for (size_t g = 0; g < G; ++g) _mm512_store_si512(tmp + 16 * g, acc[p][g]);
        const size_t bytes = channels * sizeof(int32_t);
        uint8_t* d = reinterpret_cast<uint8_t*>(dst);
        const uint8_t* s = reinterpret_cast<const uint8_t*>(tmp);
        size_t i = 0;
        for (; i + 64 <= bytes; i += 64) std::memcpy(d + i, s + i, 64);
        copy_bytes(d + i, s + i, bytes - i);
      }
    }
    return;
  }
  const ChannelParams& ch = *j.requant;
  MulQuantLanes16 lanes[G];
#pragma GCC unroll 4
  for (size_t g = 0; g < G; ++g) lanes[g] = avx512::lanes16_at(ch, ch0 + 16 * g);
  const avx512::OutputClamp16 clamp(j.zero_point, j.qmin, j.qmax);
#pragma GCC unroll 16
  for (size_t p = 0; p < P; ++p) {
    if (p >= count) break;
    __m512i v[4];
#pragma GCC unroll 4
    for (size_t g = 0; g < 4; ++g) v[g] = g < G ? requant16(acc[p][g], ch, lanes[g]) : v[0];
    const __m512i bytes = clamp(v[0], v[1], v[2], v[3]);
    uint8_t* dst = static_cast<uint8_t*>(j.out) + (p0 + p) * j.out_stride + ch0;
    if (channels == 16 * G) {
      if (G == 1) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm512_castsi512_si128(bytes));
      } else if (G == 2) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_castsi512_si256(bytes));
      } else if (G == 3) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_castsi512_si256(bytes));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 32), _mm512_extracti32x4_epi32(bytes, 2));
      } else {
        _mm512_storeu_si512(dst, bytes);
      }
    } else {
      alignas(64) uint8_t tmp[64];
      _mm512_store_si512(tmp, bytes);
      copy_bytes(dst, tmp, channels);
    }
  }
}

// Pixels [begin, end) in blocks of P; within a block, output channels in
// chunks of G vectors (the last chunk of fewer).
template <size_t P, size_t G, bool kSums>
void direct_conv_blocks(const DirectConvJob& j, size_t begin, size_t end) {
  const ConvGeometry& g = j.g;
  const size_t run = j.kw * j.in_c, quads = (run + 3) / 4;
  const size_t vectors = j.packed->channels / 16;
  const __m128i zp8 = _mm_set1_epi8(static_cast<char>(j.x_zero_point));
  // 1 in the first `run` bytes: vpdpbusd with it sums a row's real bytes.
  alignas(16) int8_t mask_bytes[16];
  for (size_t i = 0; i < 16; ++i) mask_bytes[i] = i < run ? 1 : 0;
  const __m128i row_mask = _mm_load_si128(reinterpret_cast<const __m128i*>(mask_bytes));
  const size_t line_bytes = g.in_w * j.in_c;
  Block<P> b;
  // The first output column whose window starts inside the image, and the
  // last whose window ends inside it (columns in [lo, hi] need no padding).
  const size_t ox_lo = (g.pad_left + j.sw - 1) / j.sw;
  const size_t ox_hi = g.in_w + g.pad_left >= j.kw ? (g.in_w + g.pad_left - j.kw) / j.sw : 0;
  const bool any_inside = g.in_w + g.pad_left >= j.kw;
  const size_t step = j.sw * j.in_c, last_row = (j.kh - 1) * line_bytes + 16;
  // Coordinates of the next pixel, stepped rather than divided per pixel,
  // and the byte offset of its window (wrapping where it starts outside).
  size_t n = begin / (g.out_h * g.out_w), oy = begin / g.out_w % g.out_h, ox = begin % g.out_w;
  ptrdiff_t iy0 = 0;
  bool row_inside = false;
  size_t first = 0;
  const auto start_row = [&] {
    iy0 = static_cast<ptrdiff_t>(oy * j.sh) - static_cast<ptrdiff_t>(g.pad_top);
    row_inside = any_inside && iy0 >= 0 && static_cast<size_t>(iy0) + j.kh <= g.in_h;
    first = ((n * g.in_h + static_cast<size_t>(iy0)) * g.in_w + ox * j.sw - g.pad_left) * j.in_c;
  };
  start_row();
  for (size_t p0 = begin; p0 < end; p0 += P) {
    const size_t count = std::min(P, end - p0);
    // Per pixel, its rows into the buffer and 4 partial sums of its bytes.
    alignas(16) int32_t partial[(P + 3) / 4 * 4][4] = {};
    for (size_t p = 0; p < P; ++p) {
      // A short block repeats its last pixel.
      uint8_t* rows = b.rows[p];
      __m128i sum = _mm_setzero_si128();
      if (row_inside && ox >= ox_lo && ox <= ox_hi && first + last_row <= j.x_bytes) {
        // Inside the image: every row is one load.
        const uint8_t* src = j.x + first;
        for (size_t ky = 0; ky < j.kh; ++ky, src += line_bytes) {
          const __m128i row = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(rows + 4 * quads * ky), row);
          if (kSums) sum = _mm_dpbusd_epi32(sum, row, row_mask);
        }
      } else {
        const ptrdiff_t ix0 =
            static_cast<ptrdiff_t>(ox * j.sw) - static_cast<ptrdiff_t>(g.pad_left);
        for (size_t ky = 0; ky < j.kh; ++ky) {
          const __m128i row = input_row(j, n, iy0 + static_cast<ptrdiff_t>(ky), ix0, zp8);
          _mm_storeu_si128(reinterpret_cast<__m128i*>(rows + 4 * quads * ky), row);
          if (kSums) sum = _mm_dpbusd_epi32(sum, row, row_mask);
        }
      }
      if (kSums) _mm_store_si128(reinterpret_cast<__m128i*>(partial[p]), sum);
      if (p + 1 < count || p + 1 == P) {  // step to the next pixel
        first += step;
        if (++ox == g.out_w) {
          ox = 0;
          if (++oy == g.out_h) {
            oy = 0;
            ++n;
          }
          start_row();
        }
      }
    }
    // Four pixels' partial sums at a time into their totals.
    for (size_t p = 0; kSums && p < P; p += 4) {
      const auto at = [&](size_t i) {
        return _mm_load_si128(reinterpret_cast<const __m128i*>(partial[p + i]));
      };
      const __m128i total =
          _mm_hadd_epi32(_mm_hadd_epi32(at(0), at(1)), _mm_hadd_epi32(at(2), at(3)));
      _mm_store_si128(reinterpret_cast<__m128i*>(b.sums + p), total);
    }
    size_t v0 = 0;
    for (; v0 + G <= vectors; v0 += G) block_chunk<P, G, kSums>(j, b, p0, count, v0);
    switch (vectors - v0) {  // only when G == 4
      case 1:
        block_chunk<P, 1, kSums>(j, b, p0, count, v0);
        break;
      case 2:
        block_chunk<P, 2 < G ? 2 : 1, kSums>(j, b, p0, count, v0);
        break;
      case 3:
        block_chunk<P, 3 < G ? 3 : 1, kSums>(j, b, p0, count, v0);
        break;
      default:
        break;
    }
  }
}

template <bool kSums>
void direct_conv_by_vectors(const DirectConvJob& j, size_t begin, size_t end) {
  const size_t vectors = j.packed->channels / 16;
  if (vectors == 1) {
    direct_conv_blocks<16, 1, kSums>(j, begin, end);
  } else if (vectors == 2) {
    direct_conv_blocks<12, 2, kSums>(j, begin, end);
  } else if (vectors == 3) {
    direct_conv_blocks<8, 3, kSums>(j, begin, end);
  } else {
    direct_conv_blocks<6, 4, kSums>(j, begin, end);
  }
}

// The path's entry: the shapes conv_u8_narrow_c4_avx512vnni takes go there
// (it reads the input in place, and measured ahead of this file's kernel on
// the 3-channel layers too), other kernel rows of at most 16 bytes here, the
// rest to the GEMM.
bool prepare_avx512vnni(const DirectConvWeights& w, DirectConvPacked* out) {
  if (prepare_narrow_avx512vnni(w, out)) {
    out->flags |= kNarrow;
    return true;
  }
  return prepare_direct_avx512vnni(w, out);
}

void direct_conv_u8_c4_avx512vnni(const DirectConvJob& j, size_t begin, size_t end) {
  if (j.packed->flags & kNarrow) {
    conv_u8_narrow_c4_avx512vnni(j, begin, end);
  } else if (j.packed->flags & kNoSums) {
    direct_conv_by_vectors<false>(j, begin, end);
  } else {
    direct_conv_by_vectors<true>(j, begin, end);
  }
}

}  // namespace

const DirectConvKernel& avx512_vnni_direct_conv_kernel() {
  static const DirectConvKernel kernel = {prepare_avx512vnni, direct_conv_u8_c4_avx512vnni};
  return kernel;
}

}  // namespace LOWP_ISA_NS
}  // namespace lowp
