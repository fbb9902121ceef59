// AVX-512 VNNI direct transposed convolution for stride == kernel (the 2x2
// stride-2 up-sampling of a UNet; conv_direct.h, KernelTable::direct_deconv):
// deconv_u8_tiled_c4_avx512vnni. Every input pixel's in_c bytes times the
// weights give its kh x kw patch of the output, and with stride == kernel
// the patches tile the output without overlap. The GEMM route computes the
// patches as blocks of a [pixels, kh kw out_c] matrix and scatters each
// block through a per-task buffer; here the accumulators go from registers,
// through the output stage, straight into the output pixels.
//
// The loop. Per kernel row ky the kw out_c outputs of one input pixel,
// (kx, o) in order, are kw out_c adjacent output values (one run when
// pixels lie out_c apart): R = ceil(kw out_c / 16) vectors of 16 lanes. A
// tile is P input pixels along one input row; per kernel row, the R vectors
// in pieces of G <= 4, and per piece the K loop over q = ceil(in_c / 4)
// quads: G weight vectors [16 outputs x 4 bytes] and, per pixel, a 32-bit
// broadcast of the 4 input bytes at x + p in_c + 4 r, read in place (as
// conv_u8_narrow_c4_avx512vnni does), into P x G vpdpbusd. P x G <= 24
// accumulators (16 x 1, 12 x 2, 8 x 3, 6 x 4; with the sums vector 12 x 1,
// 8 x 2, 6 x 3, 5 x 4) stay in registers for the whole K loop. The tile's
// P in_c input bytes stay in L1 across the kernel rows and pieces.
//
// Weights, packed once: per kernel row ky, per vector v < R, per quad r, 64
// bytes: lane l (output column kx out_c + o = 16 v + l), byte j holds
// w[o][ky][kx][4 r + j] ^ 0x80 (w - 128 as a signed byte) for 4 r + j <
// in_c, else 0 (and 0 in lanes past kw out_c). Where some w_zp is not 128,
// q more vectors hold the byte 1 for k < in_c, 0 past it: their vpdpbusd
// leaves the pixel's input sum s in every lane. Then per padded column
// (ky, 16 v + l) the folded bias and c = 128 - w_zp[o], int32.
//
// Exactness. vpdpbusd multiplies the unsigned input bytes x (0..255) by the
// signed bytes w - 128 and adds four products per lane without saturation
// (never vpdpbusds, no vpmaddubsw): each lane holds, modulo 2^32, dot =
// sum over c < in_c of x_c (w_c - 128); the up to 3 bytes read past a
// pixel's in_c (the next pixel's, or a copy's padding) meet weight 0 and, in
// the sums vector, the byte 0. With s = sum_c x_c,
//   sum_c (x_c - x_zp)(w_c - w_zp) = dot + (128 - w_zp) s - x_zp sum_c (w_c - w_zp).
// The last term depends only on the weights and is folded into the packed
// bias (with the caller's bias, in wrapping int32). s <= 255 in_c is exact,
// and s c is added by vpmulld + vpaddd, both wrapping. Every step is exact
// modulo 2^32, so each lane holds the contract's value wherever it fits
// int32 (in_c <= kMaxGemmK). Where every w_zp is 128 (int8-symmetric
// weights) c is 0 and the sums vector is left out (kNoSums). The output
// stage is fixedpoint_avx512.h's, bit-identical to the scalar definition.
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

constexpr uint32_t kNoSums = 1;  // DirectConvPacked::flags
constexpr size_t kMaxInC = 256;  // a tile's copy at the end of the input fits the stack
constexpr size_t kMaxP = 16;
// Input channels above this go to the GEMM route: on Zen 4 (one thread,
// 2x2 stride 2) this kernel took 0.62x the GEMM route's time at in_c 32,
// 0.71-0.93x at 64, but 1.06x at 28x28x128 -> 64, where K is long enough
// for the GEMM's wide tile and its output stage to pay off.
constexpr size_t kDeconvMaxInC = 64;

inline int32_t load32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// The packed layout's sizes for one shape.
struct Layout {
  size_t quads;  // ceil(in_c / 4)
  size_t row;    // vectors per kernel row: ceil(kw out_c / 16)
  size_t vectors_bytes, sums_bytes;
};

Layout layout_of(size_t kh, size_t kw, size_t in_c, size_t out_c, bool sums) {
  const size_t quads = (in_c + 3) / 4, row = (kw * out_c + 15) / 16;
  return {quads, row, kh * row * quads * 64, sums ? quads * 64 : 0};
}

// Where a tile writes: output row `oy` (already checked to lie inside) of
// image n, input pixels x0 .. x0 + count - 1 of one row.
struct TileOut {
  size_t n, oy, x0, count, ky;
};

// Stores one pixel's G vectors (columns [16 v0, 16 (v0 + G)) of its kernel
// row, `elem` bytes each, in `values`) into the output, piece by piece of
// kx: the slow path for crops and pixel strides.
void store_pieces(const DirectConvJob& j, const TileOut& t, size_t p, size_t v0, size_t G,
                  const uint8_t* values, size_t elem) {
  const ConvGeometry& g = j.g;
  const size_t run = j.kw * j.out_c, stride = j.out_stride;
  const size_t c_end = std::min(run, 16 * (v0 + G));
  const ptrdiff_t ox0 =
      static_cast<ptrdiff_t>((t.x0 + p) * j.sw) - static_cast<ptrdiff_t>(g.pad_left);
  uint8_t* row = static_cast<uint8_t*>(j.out) + (t.n * g.out_h + t.oy) * g.out_w * stride * elem;
  for (size_t c = 16 * v0; c < c_end;) {
    const size_t kx = c / j.out_c, o = c % j.out_c, len = std::min(c_end - c, j.out_c - o);
    const ptrdiff_t ox = ox0 + static_cast<ptrdiff_t>(kx);
    if (ox >= 0 && ox < static_cast<ptrdiff_t>(g.out_w)) {
      copy_bytes(row + (static_cast<size_t>(ox) * stride + o) * elem, values + (c - 16 * v0) * elem,
                 len * elem);
    }
    c += len;
  }
}

// Vectors [v0, v0 + G) of kernel row t.ky for the tile's pixels, whose
// bytes start at `in` (pixel p at in + p in_c).
template <size_t P, size_t G, bool kSums>
void tile(const DirectConvJob& j, const uint8_t* in, const TileOut& t, size_t v0) {
  const size_t in_c = j.in_c, out_c = j.out_c;
  const Layout l = layout_of(j.kh, j.kw, in_c, out_c, kSums);
  const uint8_t* data = j.packed->data.data();
  const size_t column0 = (t.ky * l.row + v0) * 16;  // padded column of the first lane
  const int32_t* bias = j.packed->bias.data() + column0;
  const int32_t* c =
      reinterpret_cast<const int32_t*>(data + l.vectors_bytes + l.sums_bytes) + column0;

  __m512i acc[P][G];
  __m512i sums[kSums ? P : 1];
#pragma GCC unroll 4
  for (size_t g = 0; g < G; ++g) {
    const __m512i b = _mm512_loadu_si512(bias + 16 * g);
#pragma GCC unroll 16
    for (size_t p = 0; p < P; ++p) acc[p][g] = b;
  }
  if (kSums) {
#pragma GCC unroll 16
    for (size_t p = 0; p < P; ++p) sums[p] = _mm512_setzero_si512();
  }
  const uint8_t* w = data + (t.ky * l.row + v0) * l.quads * 64;
  const uint8_t* ones = data + l.vectors_bytes;
  const size_t vstride = l.quads * 64;
  for (size_t r = 0; r < l.quads; ++r, w += 64) {
    __m512i wv[G];
#pragma GCC unroll 4
    for (size_t g = 0; g < G; ++g) wv[g] = _mm512_loadu_si512(w + g * vstride);
    const __m512i one = kSums ? _mm512_loadu_si512(ones + r * 64) : _mm512_setzero_si512();
#pragma GCC unroll 16
    for (size_t p = 0; p < P; ++p) {
      const __m512i x = _mm512_set1_epi32(load32(in + p * in_c + 4 * r));
#pragma GCC unroll 4
      for (size_t g = 0; g < G; ++g) acc[p][g] = _mm512_dpbusd_epi32(acc[p][g], x, wv[g]);
      if (kSums) sums[p] = _mm512_dpbusd_epi32(sums[p], x, one);
    }
  }
  if (kSums) {  // + (128 - w_zp) s
#pragma GCC unroll 4
    for (size_t g = 0; g < G; ++g) {
      const __m512i cg = _mm512_loadu_si512(c + 16 * g);
#pragma GCC unroll 16
      for (size_t p = 0; p < P; ++p) {
        acc[p][g] = _mm512_add_epi32(acc[p][g], _mm512_mullo_epi32(sums[p], cg));
      }
    }
  }

  // Output columns of this piece: [16 v0, 16 v0 + limit) of the kernel row.
  const ConvGeometry& g = j.g;
  const size_t run = j.kw * out_c, limit = std::min(16 * G, run - 16 * v0);
  const size_t stride = j.out_stride;
  const bool contiguous = stride == out_c;
  // Pixels whose kw output columns all lie inside the output row.
  const size_t row_pixel = (t.n * g.out_h + t.oy) * g.out_w;
  const auto inside = [&](size_t p, ptrdiff_t* ox0) {
    *ox0 = static_cast<ptrdiff_t>((t.x0 + p) * j.sw) - static_cast<ptrdiff_t>(g.pad_left);
    return contiguous && *ox0 >= 0 && static_cast<size_t>(*ox0) + j.kw <= g.out_w;
  };
  if (j.requant == nullptr) {
#pragma GCC unroll 16
    for (size_t p = 0; p < P; ++p) {
      if (p >= t.count) break;
      ptrdiff_t ox0;
      if (inside(p, &ox0)) {
        int32_t* dst =
            static_cast<int32_t*>(j.out) + (row_pixel + static_cast<size_t>(ox0)) * out_c + 16 * v0;
#pragma GCC unroll 4
        for (size_t k = 0; k < G; ++k) {
          if (16 * (k + 1) <= limit) {
            _mm512_storeu_si512(dst + 16 * k, acc[p][k]);
          } else if (16 * k < limit) {
            alignas(64) int32_t tmp[16];
            _mm512_store_si512(tmp, acc[p][k]);
            copy_bytes(reinterpret_cast<uint8_t*>(dst + 16 * k),
                       reinterpret_cast<const uint8_t*>(tmp), (limit - 16 * k) * sizeof(int32_t));
          }
        }
      } else {
        alignas(64) int32_t tmp[16 * G];
#pragma GCC unroll 4
        for (size_t k = 0; k < G; ++k) _mm512_store_si512(tmp + 16 * k, acc[p][k]);
        store_pieces(j, t, p, v0, G, reinterpret_cast<const uint8_t*>(tmp), sizeof(int32_t));
      }
    }
    return;
  }
  const ChannelParams& ch = *j.requant;
  // The output stage's columns are the GEMM's, (ky, kx, o) unpadded.
  const size_t stage_column = t.ky * run + 16 * v0;
  MulQuantLanes16 lanes[G];
#pragma GCC unroll 4
  for (size_t k = 0; k < G; ++k) lanes[k] = avx512::lanes16_at(ch, stage_column + 16 * k);
  const avx512::OutputClamp16 clamp(j.zero_point, j.qmin, j.qmax);
#pragma GCC unroll 16
  for (size_t p = 0; p < P; ++p) {
    if (p >= t.count) break;
    __m512i v[4];
#pragma GCC unroll 4
    for (size_t k = 0; k < 4; ++k) v[k] = k < G ? requant16(acc[p][k], ch, lanes[k]) : v[0];
    const __m512i bytes = clamp(v[0], v[1], v[2], v[3]);
    ptrdiff_t ox0;
    if (inside(p, &ox0)) {
      uint8_t* dst =
          static_cast<uint8_t*>(j.out) + (row_pixel + static_cast<size_t>(ox0)) * out_c + 16 * v0;
      if (limit == 64) {
        _mm512_storeu_si512(dst, bytes);
      } else if (limit == 32) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_castsi512_si256(bytes));
      } else if (limit == 16) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm512_castsi512_si128(bytes));
      } else {
        alignas(64) uint8_t tmp[64];
        _mm512_store_si512(tmp, bytes);
        copy_bytes(dst, tmp, limit);
      }
    } else if (!contiguous && out_c % 16 == 0 && ox0 >= 0 &&
               static_cast<size_t>(ox0) + j.kw <= g.out_w) {
      // A pixel stride (the output is a channel slice of a concatenation):
      // each 16 columns are 16 channels of one output pixel.
      uint8_t* base =
          static_cast<uint8_t*>(j.out) + (row_pixel + static_cast<size_t>(ox0)) * stride;
      const auto at = [&](size_t k) {
        const size_t c = 16 * (v0 + k);
        return reinterpret_cast<__m128i*>(base + (c / out_c) * stride + c % out_c);
      };
      _mm_storeu_si128(at(0), _mm512_castsi512_si128(bytes));
      if (limit > 16) _mm_storeu_si128(at(1), _mm512_extracti32x4_epi32(bytes, 1));
      if (limit > 32) _mm_storeu_si128(at(2), _mm512_extracti32x4_epi32(bytes, 2));
      if (limit > 48) _mm_storeu_si128(at(3), _mm512_extracti32x4_epi32(bytes, 3));
    } else {
      alignas(64) uint8_t tmp[64];
      _mm512_store_si512(tmp, bytes);
      store_pieces(j, t, p, v0, G, tmp, 1);
    }
  }
}

// Input pixels [begin, end) in tiles of at most P along each input row;
// per tile, every kernel row whose output row lies inside, in pieces of at
// most kG vectors.
template <size_t P, size_t kG, bool kSums>
void deconv_rows(const DirectConvJob& j, size_t begin, size_t end) {
  const ConvGeometry& g = j.g;
  const size_t in_c = j.in_c, quads = (in_c + 3) / 4;
  const size_t row = (j.kw * j.out_c + 15) / 16;
  alignas(64) uint8_t copy[kMaxP * kMaxInC + 64];
  size_t n = begin / (g.in_h * g.in_w), y = begin / g.in_w % g.in_h, x = begin % g.in_w;
  for (size_t pixel = begin; pixel < end;) {
    const size_t count = std::min({P, g.in_w - x, end - pixel});
    const uint8_t* in = j.x + pixel * in_c;
    // The last pixel's last quad may end up to 3 bytes past it; a tile at
    // the end of the input reads a copy instead (P pixels, the missing ones
    // repeating nothing in particular: their results are not stored).
    if ((pixel + P - 1) * in_c + 4 * quads > j.x_bytes) {
      std::memset(copy, 0, sizeof(copy));
      std::memcpy(copy, in, count * in_c);
      in = copy;
    }
    for (size_t ky = 0; ky < j.kh; ++ky) {
      const size_t fy = y * j.sh + ky;
      if (fy < g.pad_top || fy - g.pad_top >= g.out_h) continue;
      const TileOut t = {n, fy - g.pad_top, x, count, ky};
      for (size_t v0 = 0; v0 < row; v0 += kG) {
        switch (std::min(kG, row - v0)) {
          case 1:
            tile<P, 1, kSums>(j, in, t, v0);
            break;
          case 2:
            tile<P, (kG >= 2 ? 2 : 1), kSums>(j, in, t, v0);
            break;
          case 3:
            tile<P, (kG >= 3 ? 3 : 1), kSums>(j, in, t, v0);
            break;
          default:
            tile<P, kG, kSums>(j, in, t, v0);
            break;
        }
      }
    }
    pixel += count;
    x += count;
    if (x == g.in_w) {
      x = 0;
      if (++y == g.in_h) {
        y = 0;
        ++n;
      }
    }
  }
}

template <bool kSums>
void deconv_by_row(const DirectConvJob& j, size_t begin, size_t end) {
  const size_t row = (j.kw * j.out_c + 15) / 16;
  switch (std::min<size_t>(row, 4)) {
    case 1:
      return deconv_rows < kSums ? 12 : 16, 1, kSums > (j, begin, end);
    case 2:
      return deconv_rows < kSums ? 8 : 12, 2, kSums > (j, begin, end);
    case 3:
      return deconv_rows < kSums ? 6 : 8, 3, kSums > (j, begin, end);
    default:
      return deconv_rows < kSums ? 5 : 6, 4, kSums > (j, begin, end);
  }
}

// Shapes where this kernel measured ahead of the GEMM route: the GEMM's
// scatter through a per-task buffer weighs most against small K.
bool prepare_deconv_avx512vnni(const DirectConvWeights& w, DirectConvPacked* out) {
  if (w.kh != w.sh || w.kw != w.sw || w.in_c == 0 || w.in_c > kMaxInC || w.out_c == 0 ||
      w.in_c > kDeconvMaxInC) {
    return false;
  }
  bool symmetric = true;
  for (size_t i = 0; i < w.w_zero_point_count; ++i) symmetric &= w.w_zero_point[i] == 128;
  const Layout l = layout_of(w.kh, w.kw, w.in_c, w.out_c, !symmetric);
  const size_t columns = w.kh * l.row * 16;  // padded
  out->channels = columns;
  out->reset(l.vectors_bytes + l.sums_bytes + columns * sizeof(int32_t), columns);
  int32_t* c = reinterpret_cast<int32_t*>(out->data.data() + l.vectors_bytes + l.sums_bytes);
  const size_t run = w.kw * w.out_c;
  for (size_t ky = 0; ky < w.kh; ++ky) {
    for (size_t col = 0; col < run; ++col) {
      const size_t kx = col / w.out_c, o = col % w.out_c, v = col / 16, lane = col % 16;
      const int32_t zp = w.w_zero_point[w.w_zero_point_count == 1 ? 0 : o];
      const uint8_t* src = w.w + ((o * w.kh + ky) * w.kw + kx) * w.in_c;
      uint8_t* dst = out->data.data() + (ky * l.row + v) * l.quads * 64 + lane * 4;
      int64_t sum = 0;  // sum over the taps of (w - w_zp)
      for (size_t k = 0; k < w.in_c; ++k) {
        dst[(k / 4) * 64 + k % 4] = static_cast<uint8_t>(src[k] ^ 0x80);
        sum += int64_t{src[k]} - zp;
      }
      const size_t padded = ky * l.row * 16 + col;
      const uint32_t folded = static_cast<uint32_t>(w.bias != nullptr ? w.bias[o] : 0) -
                              static_cast<uint32_t>(int64_t{w.x_zero_point} * sum);
      out->bias[padded] = static_cast<int32_t>(folded);
      int32_t cv = 128 - zp;
      std::memcpy(c + padded, &cv, sizeof(cv));
    }
  }
  if (!symmetric) {
    uint8_t* ones = out->data.data() + l.vectors_bytes;
    for (size_t k = 0; k < w.in_c; ++k)
      for (size_t lane = 0; lane < 16; ++lane) ones[(k / 4) * 64 + lane * 4 + k % 4] = 1;
  }
  out->flags = symmetric ? kNoSums : 0;
  return true;
}

void deconv_u8_tiled_c4_avx512vnni(const DirectConvJob& j, size_t begin, size_t end) {
  if (j.packed->flags & kNoSums) {
    deconv_by_row<false>(j, begin, end);
  } else {
    deconv_by_row<true>(j, begin, end);
  }
}

}  // namespace

const DirectConvKernel& avx512_vnni_direct_deconv_kernel() {
  static const DirectConvKernel kernel = {prepare_deconv_avx512vnni, deconv_u8_tiled_c4_avx512vnni};
  return kernel;
}

}  // namespace LOWP_ISA_NS
}  // namespace lowp
