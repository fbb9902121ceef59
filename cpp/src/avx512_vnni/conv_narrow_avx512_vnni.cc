// AVX-512 VNNI direct convolution for few channels (conv_direct.h):
// conv_u8_narrow_c4_avx512vnni, P output pixels along one output row by G
// vectors of 16 output channels, read from the input in place. Made for the
// 3x3 layers of a small UNet (16 to 64 channels in and out), where the GEMM
// route spends as long gathering and packing A (im2col, micro-panels, row
// sums) as multiplying it: with N = out_c <= 32 every packed A byte feeds
// one or two 16-column vpdpbusd, against the 24 a wide GEMM tile gets.
//
// The loop. Within one kernel row ky the kw taps of a pixel are kw in_c
// adjacent input bytes, and pixel p + 1's start sw in_c bytes after pixel
// p's. So per kernel row the K loop runs over q = ceil(kw in_c / 4) quads
// of input bytes: for each quad r, G weight vectors [16 channels x 4 bytes]
// and, for each of the P pixels, a 32-bit broadcast of the 4 input bytes at
// row + p sw in_c + 4 r, into P x G vpdpbusd. The accumulators stay in
// registers for the whole K loop (P x G <= 25, plus G weights and one
// broadcast: 16 x 1, 12 x 2, 8 x 3, 6 x 4, 5 x 5). No im2col, no packing:
// the input bytes each vpdpbusd needs are a broadcast load of the image.
//
// Padding. A tile whose P pixels' windows all lie inside the image (and
// whose last quad ends inside the buffer) reads the image itself. Any other
// tile - at the border, a row end, a stride the window leaves - first copies
// the kh rows of its window strip, (P - 1) sw + kw pixels wide, into a
// stack buffer with every padded position set to the byte x_zp, and runs
// the same loop on the buffer (copying 3 x 18 x 16 bytes for 16 x 3 x 3 x
// 16 x 16 multiply-adds).
//
// Weights, packed once: per kernel row ky, per quad r, G vectors of 64
// bytes: lane l of vector g (channel 16 g + l), byte j holds w[o][ky][k] ^
// 0x80 (w - 128 as a signed byte) for k = 4 r + j < kw in_c, else 0 (and 0
// past out_c). Where some w_zp is not 128, one more vector per quad holds
// the byte 1 for k < kw in_c and 0 past it in every lane: its vpdpbusd
// leaves in each lane the pixel's input sum s. After the weights: per
// channel c[o] = 128 - w_zp[o] as an int32.
//
// Exactness. vpdpbusd multiplies the unsigned input bytes x (0..255) by the
// signed bytes w - 128 and adds four products per lane without saturation
// (never vpdpbusds, no vpmaddubsw): each lane holds, modulo 2^32, dot = sum
// over the K = kh kw in_c taps of x (w - 128); the bytes past a kernel row
// (at most 3 per row, to end on a quad) meet weight 0 and, in the sums
// vector, the byte 0. With s = sum of x over the K taps,
//   sum (x - x_zp)(w - w_zp) = dot + (128 - w_zp) s - x_zp sum (w - w_zp).
// The last term depends only on the weights and is folded into the packed
// bias (with the caller's bias, in wrapping int32). s is a sum of bytes (<=
// 255 K, exact in int32), and s c[o] is added by vpmulld + vpaddd, both
// wrapping. Every step is exact modulo 2^32, so the lane holds the exact
// result wherever it fits int32 (the contract's K <= 33025). A padding tap
// is the byte x_zp in dot and in s, so it adds (x_zp - x_zp)(w - w_zp) = 0:
// exactly what the contract's zero does. Where every w_zp is 128 (int8-
// symmetric weights) c is 0 and the sums vector is left out (kNoSums).
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

constexpr size_t kMaxVectors = 4;  // out_c <= 64
constexpr size_t kMaxInC = 64;
constexpr size_t kMaxKernel = 5;  // kh, kw
constexpr size_t kMaxStride = 2;
constexpr size_t kMaxP = 16;
// A window strip of kMaxP pixels at the largest kernel, stride and input
// channels, rounded up to 64 bytes with room for a quad's overrun.
constexpr size_t kStripRow = ((kMaxP - 1) * kMaxStride + kMaxKernel) * kMaxInC + 64;
constexpr size_t kStripBytes = kMaxKernel * kStripRow;

inline int32_t load32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// The layout's sizes for one shape.
struct Layout {
  size_t quads;    // per kernel row: ceil(kw in_c / 4)
  size_t vectors;  // of 16 output channels
  size_t groups;   // vectors, plus the sums vector unless kNoSums
};

Layout layout_of(size_t kw, size_t in_c, size_t out_c, bool sums) {
  const size_t vectors = (out_c + 15) / 16;
  return {(kw * in_c + 3) / 4, vectors, vectors + (sums ? 1 : 0)};
}

// Where a tile's input comes from: pixel p's kernel row ky starts at
// base + ky row_stride + p step.
struct TileInput {
  const uint8_t* base;
  size_t row_stride, step;
};

// G = vectors + (kSums ? 1 : 0) weight vectors per quad; output channels
// [0, out_c) of pixels [pixel0, pixel0 + count) of the output.
template <size_t P, size_t G, bool kSums>
void tile(const DirectConvJob& j, const TileInput& in, size_t pixel0, size_t count) {
  constexpr size_t V = kSums ? G - 1 : G;  // output vectors
  const size_t quads = (j.kw * j.in_c + 3) / 4;
  const uint8_t* weights = j.packed->data.data();
  const int32_t* bias = j.packed->bias.data();

  __m512i acc[P][G];
#pragma GCC unroll 5
  for (size_t g = 0; g < G; ++g) {
    const __m512i b = g < V ? _mm512_loadu_si512(bias + 16 * g) : _mm512_setzero_si512();
#pragma GCC unroll 16
    for (size_t p = 0; p < P; ++p) acc[p][g] = b;
  }
  const uint8_t* w = weights;
  const size_t step = in.step;
  for (size_t ky = 0; ky < j.kh; ++ky) {
    const uint8_t* row = in.base + ky * in.row_stride;
    for (size_t r = 0; r < quads; ++r, row += 4, w += G * 64) {
      __m512i wv[G];
#pragma GCC unroll 5
      for (size_t g = 0; g < G; ++g) wv[g] = _mm512_loadu_si512(w + g * 64);
#pragma GCC unroll 16
      for (size_t p = 0; p < P; ++p) {
        const __m512i x = _mm512_set1_epi32(load32(row + p * step));
#pragma GCC unroll 5
        for (size_t g = 0; g < G; ++g) acc[p][g] = _mm512_dpbusd_epi32(acc[p][g], x, wv[g]);
      }
    }
  }
  if (kSums) {  // + (128 - w_zp) s: the sums vector holds s in every lane
    const int32_t* c = reinterpret_cast<const int32_t*>(weights + j.kh * quads * G * 64);
#pragma GCC unroll 4
    for (size_t g = 0; g < V; ++g) {
      const __m512i cg = _mm512_loadu_si512(c + 16 * g);
#pragma GCC unroll 16
      for (size_t p = 0; p < P; ++p) {
        acc[p][g] = _mm512_add_epi32(acc[p][g], _mm512_mullo_epi32(acc[p][V], cg));
      }
    }
  }

  const size_t out_c = j.out_c, stride = j.out_stride;
  if (V == 1 && out_c < 16) {
    // Few channels (a 2-channel head): the tile's P out_c values are
    // adjacent in the output, so they are packed together first and
    // finished 16 at a time rather than one vector per pixel. Each store
    // writes 16 lanes; the next pixel's overwrites those past out_c. The
    // lanes after the last store are zeroed: the 64-value steps below read
    // them (their results are never stored).
    alignas(64) int32_t packed[P * 16];
#pragma GCC unroll 16
    for (size_t p = 0; p < P; ++p) _mm512_storeu_si512(packed + p * out_c, acc[p][0]);
    const size_t written = (P - 1) * out_c + 16;
    std::memset(packed + written, 0, sizeof(packed) - written * sizeof(int32_t));
    const size_t values = count * out_c;
    if (j.requant == nullptr) {
      store_pixels(static_cast<int32_t*>(j.out) + pixel0 * stride, packed, count, out_c, stride);
      return;
    }
    const ChannelParams& ch = *j.requant;
    const avx512::OutputClamp16 clamp(j.zero_point, j.qmin, j.qmax);
    // Value e of the output has channel e % out_c: the tables' entries from
    // e % out_c on cycle through the channels (ChannelTables).
    const size_t e0 = pixel0 * out_c;
    alignas(64) uint8_t bytes[P * 16];
    for (size_t i = 0; i < values; i += 64) {
      __m512i v[4];
#pragma GCC unroll 4
      for (size_t k = 0; k < 4; ++k) {
        const size_t at = std::min(i + 16 * k, P * 16 - 16);
        v[k] = requant16(_mm512_load_si512(packed + at), ch,
                         avx512::lanes16_at(ch, (e0 + at) % out_c));
      }
      _mm512_store_si512(bytes + i, clamp(v[0], v[1], v[2], v[3]));
    }
    store_pixels(static_cast<uint8_t*>(j.out) + pixel0 * stride, bytes, count, out_c, stride);
    return;
  }
  if (j.requant == nullptr) {
#pragma GCC unroll 16
    for (size_t p = 0; p < P; ++p) {
      if (p >= count) break;
      int32_t* dst = static_cast<int32_t*>(j.out) + (pixel0 + p) * stride;
      if (out_c == 16 * V) {
#pragma GCC unroll 4
        for (size_t g = 0; g < V; ++g) _mm512_storeu_si512(dst + 16 * g, acc[p][g]);
      } else {
        alignas(64) int32_t tmp[16 * V];
#pragma GCC unroll 4
        for (size_t g = 0; g < V; ++g) _mm512_store_si512(tmp + 16 * g, acc[p][g]);
        std::memcpy(dst, tmp, out_c * sizeof(int32_t));
      }
    }
    return;
  }
  const ChannelParams& ch = *j.requant;
  MulQuantLanes16 lanes[V];
#pragma GCC unroll 4
  for (size_t g = 0; g < V; ++g) lanes[g] = avx512::lanes16_at(ch, 16 * g);
  const avx512::OutputClamp16 clamp(j.zero_point, j.qmin, j.qmax);
  uint8_t* out = static_cast<uint8_t*>(j.out) + pixel0 * stride;
  if (out_c == 16 && V == 1 && stride == 16) {
    // Four pixels' 16 channels are 64 adjacent output bytes.
#pragma GCC unroll 4
    for (size_t p = 0; p < P; p += 4) {
      if (p >= count) break;
      __m512i v[4];
#pragma GCC unroll 4
      for (size_t i = 0; i < 4; ++i) v[i] = requant16(acc[p + i < P ? p + i : p][0], ch, lanes[0]);
      const __m512i bytes = clamp(v[0], v[1], v[2], v[3]);
      if (p + 4 <= count) {
        _mm512_storeu_si512(out + 16 * p, bytes);
      } else {
        alignas(64) uint8_t tmp[64];
        _mm512_store_si512(tmp, bytes);
        std::memcpy(out + 16 * p, tmp, 16 * (count - p));
      }
    }
    return;
  }
  if (out_c == 32 && V == 2 && stride == 32) {
    // Two pixels' 32 channels are 64 adjacent output bytes.
#pragma GCC unroll 8
    for (size_t p = 0; p < P; p += 2) {
      if (p >= count) break;
      const size_t q = p + 1 < P ? p + 1 : p;
      const __m512i bytes =
          clamp(requant16(acc[p][0], ch, lanes[0]), requant16(acc[p][1], ch, lanes[1]),
                requant16(acc[q][0], ch, lanes[0]), requant16(acc[q][1], ch, lanes[1]));
      if (p + 2 <= count) {
        _mm512_storeu_si512(out + 32 * p, bytes);
      } else {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * p),
                            _mm512_castsi512_si256(bytes));
      }
    }
    return;
  }
#pragma GCC unroll 16
  for (size_t p = 0; p < P; ++p) {
    if (p >= count) break;
    __m512i v[4];
#pragma GCC unroll 4
    for (size_t g = 0; g < 4; ++g) v[g] = g < V ? requant16(acc[p][g], ch, lanes[g]) : v[0];
    const __m512i bytes = clamp(v[0], v[1], v[2], v[3]);
    uint8_t* dst = out + p * stride;
    if (out_c == 64) {
      _mm512_storeu_si512(dst, bytes);
    } else {
      alignas(64) uint8_t tmp[64];
      _mm512_store_si512(tmp, bytes);
      std::memcpy(dst, tmp, out_c);
    }
  }
}

// n bytes from src to dst in 64-byte pieces (the last one overlapping),
// without a library call: a strip row is a few hundred bytes.
inline void copy_row(uint8_t* dst, const uint8_t* src, size_t n) {
  if (n < 64) {
    copy_bytes(dst, src, n);
    return;
  }
  for (size_t i = 0; i + 64 < n; i += 64) {
    _mm512_storeu_si512(dst + i, _mm512_loadu_si512(src + i));
  }
  _mm512_storeu_si512(dst + n - 64, _mm512_loadu_si512(src + n - 64));
}

// Copies the kh rows of the window strip of `width` pixels starting at
// (iy0, ix0) of image n into buf (row stride `stride`, a multiple of 64),
// padding as x_zp.
void fill_strip(const DirectConvJob& j, size_t n, ptrdiff_t iy0, ptrdiff_t ix0, size_t width,
                uint8_t* buf, size_t stride) {
  const ConvGeometry& g = j.g;
  const size_t c = j.in_c;
  const __m512i zp = _mm512_set1_epi8(static_cast<char>(j.x_zero_point));
  // Pixels [lo, hi) of the strip lie inside the image's columns.
  const ptrdiff_t w = static_cast<ptrdiff_t>(g.in_w), wd = static_cast<ptrdiff_t>(width);
  const size_t lo = static_cast<size_t>(std::clamp<ptrdiff_t>(-ix0, 0, wd));
  const size_t hi = static_cast<size_t>(std::clamp<ptrdiff_t>(w - ix0, 0, wd));
  for (size_t ky = 0; ky < j.kh; ++ky, buf += stride) {
    for (size_t i = 0; i < stride; i += 64) _mm512_store_si512(buf + i, zp);
    const ptrdiff_t iy = iy0 + static_cast<ptrdiff_t>(ky);
    if (iy < 0 || iy >= static_cast<ptrdiff_t>(g.in_h) || lo >= hi) continue;
    const uint8_t* line = j.x + (n * g.in_h + static_cast<size_t>(iy)) * g.in_w * c;
    copy_row(buf + lo * c, line + static_cast<size_t>(ix0 + static_cast<ptrdiff_t>(lo)) * c,
             (hi - lo) * c);
  }
}

// Pixels [begin, end) in tiles of at most P along each output row.
template <size_t P, size_t G, bool kSums>
void narrow_rows(const DirectConvJob& j, size_t begin, size_t end) {
  const ConvGeometry& g = j.g;
  const size_t c = j.in_c, step = j.sw * c, quads = (j.kw * c + 3) / 4;
  const size_t width = (P - 1) * j.sw + j.kw;  // window strip of a tile, pixels
  const size_t strip_row = (width * c + 4 + 63) / 64 * 64;
  const size_t line = g.in_w * c;
  alignas(64) uint8_t strip[kStripBytes];
  size_t n = begin / (g.out_h * g.out_w), oy = begin / g.out_w % g.out_h, ox = begin % g.out_w;
  for (size_t pixel = begin; pixel < end;) {
    const size_t count = std::min({P, g.out_w - ox, end - pixel});
    const ptrdiff_t iy0 = static_cast<ptrdiff_t>(oy * j.sh) - static_cast<ptrdiff_t>(g.pad_top);
    const ptrdiff_t ix0 = static_cast<ptrdiff_t>(ox * j.sw) - static_cast<ptrdiff_t>(g.pad_left);
    bool inside = iy0 >= 0 && static_cast<size_t>(iy0) + j.kh <= g.in_h && ix0 >= 0 &&
                  static_cast<size_t>(ix0) + width <= g.in_w;
    size_t first = 0;
    if (inside) {
      first = ((n * g.in_h + static_cast<size_t>(iy0)) * g.in_w + static_cast<size_t>(ix0)) * c;
      // The last pixel's last quad may end up to 3 bytes past its row.
      inside = first + (j.kh - 1) * line + (P - 1) * step + 4 * quads <= j.x_bytes;
    }
    TileInput in;
    if (inside) {
      in = {j.x + first, line, step};
    } else {
      fill_strip(j, n, iy0, ix0, width, strip, strip_row);
      in = {strip, strip_row, step};
    }
    tile<P, G, kSums>(j, in, pixel, count);
    pixel += count;
    ox += count;
    if (ox == g.out_w) {
      ox = 0;
      if (++oy == g.out_h) {
        oy = 0;
        ++n;
      }
    }
  }
}

template <bool kSums>
void narrow_by_vectors(const DirectConvJob& j, size_t begin, size_t end) {
  constexpr size_t S = kSums ? 1 : 0;
  switch (j.packed->channels / 16) {
    case 1:
      return narrow_rows < kSums ? 12 : 16, 1 + S, kSums > (j, begin, end);
    case 2:
      return narrow_rows < kSums ? 8 : 12, 2 + S, kSums > (j, begin, end);
    case 3:
      return narrow_rows < kSums ? 6 : 8, 3 + S, kSums > (j, begin, end);
    default:
      return narrow_rows < kSums ? 5 : 6, 4 + S, kSums > (j, begin, end);
  }
}

// A 1x1 head with few output channels (the UNet's 16 -> 2): one vector of
// 16 output channels per pixel would leave 14 of its lanes idle, so here the
// lanes are 16 pixels instead. Per 16 input channels, the 16 pixels' 16
// bytes (four vectors of four pixels) are transposed by 8 two-source dword
// permutes into four vectors, vector q holding quad q (channels 4 q..4 q + 3
// of the chunk) of every pixel; output channel o gains the vpdpbusd of
// vector q with its weight quad (w - 128 as signed bytes) in every lane, and
// the sums vector s gains the vpdpbusd with the quad of ones. Exact as
// above: the same dot, s and folded bias. Channels past in_c (read from the
// next pixel, or zeros at the end of the input) meet weight 0 and a 0 in the
// ones quad. The head's quads follow the channel terms in the packed data:
// int32 [o][chunk][q], then the ones quads [chunk][q].
constexpr uint32_t kNarrowHead = 2;  // DirectConvPacked::flags
constexpr size_t kHeadMaxOutC = 4;

size_t head_quads(size_t in_c, size_t out_c) { return (out_c + 1) * ((in_c + 15) / 16) * 4; }

template <size_t O, bool kSums>
void head_rows(const DirectConvJob& j, size_t begin, size_t end) {
  constexpr size_t out_c = O;
  const size_t c = j.in_c, chunks = (c + 15) / 16, stride = j.out_stride;
  const size_t vector_bytes = j.packed->data.size() - j.packed->channels * sizeof(int32_t) -
                              head_quads(c, out_c) * sizeof(int32_t);
  const uint8_t* terms = j.packed->data.data() + vector_bytes;
  const uint8_t* quads = terms + j.packed->channels * sizeof(int32_t);
  const auto quad = [&](size_t index) {
    int32_t v;
    std::memcpy(&v, quads + index * sizeof(int32_t), sizeof(v));
    return _mm512_set1_epi32(v);
  };
  __m512i bias[kHeadMaxOutC], term[kHeadMaxOutC];
  MulQuantLanes16 lanes[kHeadMaxOutC];
  for (size_t o = 0; o < out_c; ++o) {
    bias[o] = _mm512_set1_epi32(j.packed->bias[o]);
    int32_t t;
    std::memcpy(&t, terms + o * sizeof(int32_t), sizeof(t));
    term[o] = _mm512_set1_epi32(t);
    const size_t e = j.requant != nullptr && j.requant->period != 1 ? o : 0;
    lanes[o] = j.requant != nullptr
                   ? avx512::broadcast_lanes16(j.requant->multiplier[e], j.requant->shift[e])
                   : avx512::broadcast_lanes16(0, 0);
  }
  // Dword m of the first permutes: quad m / 8 (+ 2 for idx_hi) of pixel
  // m % 8 of two vectors of four pixels (dword 4 p + q of the first, 16 + 4
  // (p - 4) + q of the second); of the last: pixels 0..7 from the first
  // source, 8..15 from the second.
  const __m512i idx_lo =
      _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
  const __m512i idx_hi = _mm512_add_epi32(idx_lo, _mm512_set1_epi32(2));
  const __m512i idx_q0 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  const __m512i idx_q1 = _mm512_add_epi32(idx_q0, _mm512_set1_epi32(8));
  const avx512::OutputClamp16 clamp(j.zero_point, j.qmin, j.qmax);
  for (size_t pixel = begin; pixel < end; pixel += 16) {
    const size_t count = std::min<size_t>(16, end - pixel);
    __m512i acc[kHeadMaxOutC], sums = _mm512_setzero_si512();
    for (size_t o = 0; o < out_c; ++o) acc[o] = bias[o];
    for (size_t k = 0; k < chunks; ++k) {
      __m128i px[16];
      const uint8_t* row = j.x + pixel * c + 16 * k;
      if (count == 16 && pixel * c + 15 * c + 16 * k + 16 <= j.x_bytes) {
#pragma GCC unroll 16
        for (size_t p = 0; p < 16; ++p)
          px[p] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + p * c));
      } else {
        for (size_t p = 0; p < 16; ++p) {
          // A short tile repeats its last pixel; past the input, zeros.
          const size_t at = (pixel + std::min(p, count - 1)) * c + 16 * k;
          alignas(16) uint8_t bytes[16] = {};
          std::memcpy(bytes, j.x + at, std::min<size_t>(16, j.x_bytes - at));
          px[p] = _mm_load_si128(reinterpret_cast<const __m128i*>(bytes));
        }
      }
      __m512i z[4];
      for (size_t i = 0; i < 4; ++i) {
        z[i] = _mm512_inserti32x4(
            _mm512_inserti32x4(
                _mm512_inserti32x4(_mm512_castsi128_si512(px[4 * i]), px[4 * i + 1], 1),
                px[4 * i + 2], 2),
            px[4 * i + 3], 3);
      }
      const __m512i t_lo = _mm512_permutex2var_epi32(z[0], idx_lo, z[1]);
      const __m512i t_hi = _mm512_permutex2var_epi32(z[0], idx_hi, z[1]);
      const __m512i u_lo = _mm512_permutex2var_epi32(z[2], idx_lo, z[3]);
      const __m512i u_hi = _mm512_permutex2var_epi32(z[2], idx_hi, z[3]);
      const __m512i xq[4] = {_mm512_permutex2var_epi32(t_lo, idx_q0, u_lo),
                             _mm512_permutex2var_epi32(t_lo, idx_q1, u_lo),
                             _mm512_permutex2var_epi32(t_hi, idx_q0, u_hi),
                             _mm512_permutex2var_epi32(t_hi, idx_q1, u_hi)};
#pragma GCC unroll 4
      for (size_t q = 0; q < 4; ++q) {
        for (size_t o = 0; o < out_c; ++o)
          acc[o] = _mm512_dpbusd_epi32(acc[o], xq[q], quad((o * chunks + k) * 4 + q));
        if (kSums) sums = _mm512_dpbusd_epi32(sums, xq[q], quad((out_c * chunks + k) * 4 + q));
      }
    }
    if (kSums) {
      for (size_t o = 0; o < out_c; ++o)
        acc[o] = _mm512_add_epi32(acc[o], _mm512_mullo_epi32(sums, term[o]));
    }
    if (j.requant == nullptr) {
      alignas(64) int32_t v[kHeadMaxOutC][16];
      for (size_t o = 0; o < out_c; ++o) _mm512_store_si512(v[o], acc[o]);
      int32_t* dst = static_cast<int32_t*>(j.out) + pixel * stride;
      for (size_t p = 0; p < count; ++p)
        for (size_t o = 0; o < out_c; ++o) dst[p * stride + o] = v[o][p];
      continue;
    }
    __m512i v[4];
    for (size_t o = 0; o < 4; ++o)
      v[o] = o < out_c ? requant16(acc[o], *j.requant, lanes[o]) : v[0];
    const __m512i bytes = clamp(v[0], v[1], v[2], v[3]);  // channel o of pixel p at 16 o + p
    uint8_t* dst = static_cast<uint8_t*>(j.out) + pixel * stride;
    if (out_c == 2 && stride == 2 && count == 16) {
      const __m128i ch0 = _mm512_castsi512_si128(bytes), ch1 = _mm512_extracti32x4_epi32(bytes, 1);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm_unpacklo_epi8(ch0, ch1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16), _mm_unpackhi_epi8(ch0, ch1));
      continue;
    }
    alignas(64) uint8_t b[64];
    _mm512_store_si512(b, bytes);
    for (size_t p = 0; p < count; ++p)
      for (size_t o = 0; o < out_c; ++o) dst[p * stride + o] = b[o * 16 + p];
  }
}

template <size_t O>
void head_by_sums(const DirectConvJob& j, size_t begin, size_t end) {
  if (j.packed->flags & kNarrowNoSums) return head_rows<O, false>(j, begin, end);
  head_rows<O, true>(j, begin, end);
}

}  // namespace

bool prepare_narrow_avx512vnni(const DirectConvWeights& w, DirectConvPacked* out) {
  if (w.out_c == 0 || w.out_c > 16 * kMaxVectors || w.in_c == 0 || w.in_c > kMaxInC || w.kh == 0 ||
      w.kh > kMaxKernel || w.kw == 0 || w.kw > kMaxKernel || w.sh == 0 || w.sh > kMaxStride ||
      w.sw == 0 || w.sw > kMaxStride) {
    return false;
  }
  bool symmetric = true;
  for (size_t i = 0; i < w.w_zero_point_count; ++i) symmetric &= w.w_zero_point[i] == 128;
  // With the sums vector, 3 or 4 output vectors leave too few registers for
  // the pixels: the GEMM route was as fast or faster (16x16x64 -> 64).
  if (!symmetric && w.out_c > 32) return false;
  const Layout l = layout_of(w.kw, w.in_c, w.out_c, !symmetric);
  const size_t run = w.kw * w.in_c, vector_bytes = w.kh * l.quads * l.groups * 64;
  const bool head = w.kh == 1 && w.kw == 1 && w.sh == 1 && w.sw == 1 && w.out_c <= kHeadMaxOutC;
  const size_t head_bytes = head ? head_quads(w.in_c, w.out_c) * sizeof(int32_t) : 0;
  out->channels = l.vectors * 16;
  out->reset(vector_bytes + out->channels * sizeof(int32_t) + head_bytes, out->channels);
  uint8_t* c = out->data.data() + vector_bytes;  // int32 per channel
  // Byte k of kernel row ky, lane `lane` of vector g.
  const auto at = [&](size_t ky, size_t k, size_t g, size_t lane) -> uint8_t& {
    return out->data[((ky * l.quads + k / 4) * l.groups + g) * 64 + lane * 4 + k % 4];
  };
  for (size_t o = 0; o < w.out_c; ++o) {
    const int32_t zp = w.w_zero_point[w.w_zero_point_count == 1 ? 0 : o];
    int64_t sum = 0;  // sum over the taps of (w - w_zp)
    for (size_t ky = 0; ky < w.kh; ++ky) {
      for (size_t k = 0; k < run; ++k) {
        const uint8_t v = w.w[(o * w.kh + ky) * run + k];
        at(ky, k, o / 16, o % 16) = static_cast<uint8_t>(v ^ 0x80);
        sum += int64_t{v} - zp;
      }
    }
    const uint32_t folded = static_cast<uint32_t>(w.bias != nullptr ? w.bias[o] : 0) -
                            static_cast<uint32_t>(int64_t{w.x_zero_point} * sum);
    out->bias[o] = static_cast<int32_t>(folded);
    const int32_t term = 128 - zp;
    std::memcpy(c + o * sizeof(int32_t), &term, sizeof(term));
  }
  if (!symmetric) {
    for (size_t ky = 0; ky < w.kh; ++ky)
      for (size_t k = 0; k < run; ++k)
        for (size_t lane = 0; lane < 16; ++lane) at(ky, k, l.vectors, lane) = 1;
  }
  if (head) {
    // Quad q of chunk k of channel o: bytes w[o][16 k + 4 q + b] ^ 0x80 (0
    // past in_c); then the ones quads (1 below in_c, else 0).
    uint8_t* quads = c + out->channels * sizeof(int32_t);
    const size_t chunks = (w.in_c + 15) / 16;
    for (size_t o = 0; o <= w.out_c; ++o) {
      for (size_t ch = 0; ch < w.in_c; ++ch) {
        const size_t index = (o * chunks + ch / 16) * 4 + ch % 16 / 4;
        quads[index * 4 + ch % 4] =
            o < w.out_c ? static_cast<uint8_t>(w.w[o * w.in_c + ch] ^ 0x80) : 1;
      }
    }
  }
  out->flags = (symmetric ? kNarrowNoSums : 0) | (head ? kNarrowHead : 0);
  return true;
}

void conv_u8_narrow_c4_avx512vnni(const DirectConvJob& j, size_t begin, size_t end) {
  const ConvGeometry& g = j.g;
  if ((j.packed->flags & kNarrowHead) && g.pad_top == 0 && g.pad_left == 0 && g.out_h == g.in_h &&
      g.out_w == g.in_w) {
    switch (j.out_c) {
      case 1:
        return head_by_sums<1>(j, begin, end);
      case 2:
        return head_by_sums<2>(j, begin, end);
      case 3:
        return head_by_sums<3>(j, begin, end);
      default:
        return head_by_sums<4>(j, begin, end);
    }
  }
  if (j.packed->flags & kNarrowNoSums) {
    narrow_by_vectors<false>(j, begin, end);
  } else {
    narrow_by_vectors<true>(j, begin, end);
  }
}

}  // namespace LOWP_ISA_NS
}  // namespace lowp
