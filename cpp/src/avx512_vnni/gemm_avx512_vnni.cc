// AVX-512 VNNI GEMM microkernel gemm_u8_12x32c4_avx512vnni: a 12 x 32 int32
// tile from a compact A micro-panel, exact, and its GEMV companion for M = 1.
//
// Packing: A per group of 4 k values holds the 12 rows' 4 bytes side by side
// (48 bytes; one 32-bit broadcast is a row's quad), zero past k_valid and
// past `rows`. B (gemm.cc pack_b, b_flip 0x80) per group of 4 k values holds
// 32 columns of 4 bytes, each byte B ^ 0x80: two zmm per group.
//
// Per group: 2 B loads, 12 broadcasts (folded into vpdpbusd's {1to16}
// memory operand) and 24 vpdpbusd into 24 accumulators (zmm0-23 or so; GCC
// allocates, the loop has no spills). Zen 4 issues one vpdpbusd zmm per
// cycle (probe: ~450 GOPS/core, 0.285 ns each); 24 independent chains cover
// its latency. Why 12 x 32 rather than 8 x 48 or 6 x 64 (as fast in L1):
// the common channel counts 32, 64, 96, 128 fill 32-wide panels exactly
// (48 wastes a third of N = 64, 64 half of N = 32), and M is large in
// convolutions; edge micro-panels of 1..4 / 5..8 rows run only 4 / 8 rows.
//
// Exactness. vpdpbusd multiplies unsigned bytes (A, 0..255) by signed bytes
// (the stored B ^ 0x80, read as B - 128 in -128..127) and adds the four
// products of a lane to its int32 accumulator without saturation (it wraps;
// never vpdpbusds, never vpmaddubsw). So acc = sum_k A (B - 128) mod 2^32.
// Padded k values hold A = 0 (this packer) and B' = 0 (pack_b's zero fill),
// padded rows A = 0, padded columns are never stored: they add nothing.
// The driver hands b_zero_point' = b_zp - 128, and the finish computes, in
// wrapping uint32, acc + col_offset - b_zp' rowsum(A) = sum A B - 128 rowsum
// + col_offset - b_zp rowsum + 128 rowsum = sum A B + col_offset - b_zp
// rowsum, the contract's value mod 2^32, hence exact whenever it fits int32.
// Row sums are vpdpbusd of the A quads by ones (u8 x 1), exact.
#include <algorithm>
#include <cstring>

#include "../gemm.h"
#include "../x86/intrin.h"
#include "../x86/pack_x86.h"
#include "fixedpoint_avx512.h"

namespace lowp {
namespace LOWP_ISA_NS {
namespace {

constexpr size_t kKr = 4;
constexpr size_t kMr = 12, kNr = 32;
constexpr size_t kNv = kNr / 16;  // zmm per tile row

inline __m512i load512(const void* p) { return _mm512_loadu_si512(p); }
inline void store512(void* p, __m512i v) { _mm512_storeu_si512(p, v); }
inline int32_t load32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// ---------------------------------------------------------------------------
// A packer.

using x86::kKeep;
using x86::load_tail32;

// Four rows' 32 bytes (8 k groups each) -> t[j] holding group j (low 128
// bits) and group j + 4 (high) of rows 0..3, row r at dword r: 8 in-lane
// unpacks of 256 bits (a 512-bit shuffle takes Zen 4's shuffle pipes twice
// as long). Adds each dword's byte sum to sums[j] (vpdpbusd by ones; four
// accumulators, so no long dependency chain).
inline void transpose_4x8(__m256i r0, __m256i r1, __m256i r2, __m256i r3, __m256i t[4],
                          __m256i sums[4]) {
  const __m256i u0 = _mm256_unpacklo_epi32(r0, r1), u1 = _mm256_unpackhi_epi32(r0, r1);
  const __m256i u2 = _mm256_unpacklo_epi32(r2, r3), u3 = _mm256_unpackhi_epi32(r2, r3);
  t[0] = _mm256_unpacklo_epi64(u0, u2);
  t[1] = _mm256_unpackhi_epi64(u0, u2);
  t[2] = _mm256_unpacklo_epi64(u1, u3);
  t[3] = _mm256_unpackhi_epi64(u1, u3);
  const __m256i ones = _mm256_set1_epi8(1);
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) sums[j] = lowp_dpbusd_ymm(sums[j], t[j], ones);
}

// Stores groups [0, count) of a transposed block: group j's 16 bytes at
// dst + j * (4 kMr).
inline void store_groups(uint8_t* dst, const __m256i t[4], size_t count) {
  constexpr size_t stride = kKr * kMr;
  if (count == 8) {
#pragma GCC unroll 4
    for (size_t j = 0; j < 4; ++j) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j * stride), _mm256_castsi256_si128(t[j]));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (j + 4) * stride),
                       _mm256_extracti128_si256(t[j], 1));
    }
    return;
  }
  for (size_t j = 0; j < count; ++j) {
    const __m128i v = j < 4 ? _mm256_castsi256_si128(t[j]) : _mm256_extracti128_si256(t[j - 4], 1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + j * stride), v);
  }
}

// Rows [0, rows) of A (k values [0, k_valid); the rest zero) as the 12-row
// compact micro-panel, kc / 4 groups of 48 bytes, with row sums. 32 k values
// (8 groups) of 4 rows at a time: 4 loads, one transpose, 8 stores. Writes
// exactly kc * 12 bytes (callers may pack a K range in pieces).
void pack_a_12x4_avx512(const uint8_t* a, size_t lda, size_t rows, size_t k_valid, size_t kc,
                        void* packed, int32_t* rowsum) {
  uint8_t* dst = static_cast<uint8_t*>(packed);
  const size_t groups = kc / kKr;
  constexpr size_t kBlocks = kMr / 4;
  __m256i sums[kBlocks][4], t[4];
#pragma GCC unroll 4
  for (size_t b = 0; b < kBlocks; ++b)
#pragma GCC unroll 4
    for (size_t j = 0; j < 4; ++j) sums[b][j] = _mm256_setzero_si256();
  const auto load = [&](size_t i, size_t k) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i * lda + k));
  };
  size_t g = 0;
  if (rows == kMr) {  // whole rows and whole steps: no checks
    for (; 4 * g + 32 <= k_valid && g + 8 <= groups; g += 8) {
      const size_t k = 4 * g;
      // With N = 32 each packed byte feeds two tiles, and the pack waited
      // on its loads of A.
      if (k % 64 == 0) x86::prefetch_next_panel<kMr>(a, lda, k);  // per 2 steps
#pragma GCC unroll 4
      for (size_t b = 0; b < kBlocks; ++b) {
        const size_t i = 4 * b;
        transpose_4x8(load(i, k), load(i + 1, k), load(i + 2, k), load(i + 3, k), t, sums[b]);
        store_groups(dst + g * kKr * kMr + 16 * b, t, 8);
      }
    }
  }
  for (; g < groups; g += 8) {
    const size_t k = 4 * g, count = std::min<size_t>(8, groups - g);
    if (rows == kMr && k < k_valid && k_valid < k + 32 && lda + k_valid >= k + 32) {
      // The tail of K in 12 whole rows (K = 27: the only step): rows 0..10
      // read on into the next row (row i may read (11 - i) lda + k_valid
      // bytes) and keep n bytes; row 11 alone takes load_tail32's checks.
      const size_t n = k_valid - k;
      const __m256i keep = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kKeep + 32 - n));
#pragma GCC unroll 4
      for (size_t b = 0; b < kBlocks; ++b) {
        const size_t i = 4 * b;
        const __m256i last = b + 1 < kBlocks
                                 ? _mm256_and_si256(load(i + 3, k), keep)
                                 : load_tail32(a + (kMr - 1) * lda, k, k_valid, k_valid);
        transpose_4x8(_mm256_and_si256(load(i, k), keep), _mm256_and_si256(load(i + 1, k), keep),
                      _mm256_and_si256(load(i + 2, k), keep), last, t, sums[b]);
        store_groups(dst + g * kKr * kMr + 16 * b, t, count);
      }
      continue;
    }
    const auto row_bytes = [&](size_t i) -> __m256i {
      if (i >= rows || k >= k_valid) return _mm256_setzero_si256();
      if (k + 32 <= k_valid) return load(i, k);
      return load_tail32(a + i * lda, k, k_valid, (rows - 1 - i) * lda + k_valid);
    };
    for (size_t b = 0; b < kBlocks; ++b) {
      const size_t i = 4 * b;
      transpose_4x8(row_bytes(i), row_bytes(i + 1), row_bytes(i + 2), row_bytes(i + 3), t, sums[b]);
      store_groups(dst + g * kKr * kMr + 16 * b, t, count);
    }
  }
#pragma GCC unroll 4
  for (size_t b = 0; b < kBlocks; ++b) {  // rows past `rows` summed zeros
    const __m256i s = _mm256_add_epi32(_mm256_add_epi32(sums[b][0], sums[b][1]),
                                       _mm256_add_epi32(sums[b][2], sums[b][3]));
    const __m128i row4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    __m128i* p = reinterpret_cast<__m128i*>(rowsum + 4 * b);
    _mm_storeu_si128(p, _mm_add_epi32(_mm_loadu_si128(p), row4));
  }
}

// ---------------------------------------------------------------------------
// Output stage.

// Columns [0, cols) of one tile row of NV vectors, as int32.
template <size_t NV>
inline void store_row_s32(int32_t* row, const __m512i (&v)[NV], size_t cols) {
  if (cols == 16 * NV) {
#pragma GCC unroll 16
    for (size_t h = 0; h < NV; ++h) store512(row + 16 * h, v[h]);
    return;
  }
  alignas(64) int32_t tmp[16 * NV];
#pragma GCC unroll 16
  for (size_t h = 0; h < NV; ++h) store512(tmp + 16 * h, v[h]);
  std::memcpy(row, tmp, cols * sizeof(int32_t));
}

// Columns [0, cols) of one tile row of NV <= 4 vectors, requantized.
template <size_t NV>
inline void store_row_u8(uint8_t* row, const __m512i (&v)[NV], size_t cols,
                         const avx512::OutputClamp16& clamp) {
  static_assert(NV >= 1 && NV <= 4, "one clamp per row");
  const __m512i bytes =
      clamp(v[0], v[NV > 1 ? 1 : 0], v[NV > 2 ? 2 : NV - 1], v[NV > 3 ? 3 : NV - 1]);
  if (cols == 16 * NV) {
    if (NV == 4) {
      store512(row, bytes);
    } else if (NV == 1) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(row), _mm512_castsi512_si128(bytes));
    } else {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(row), _mm512_castsi512_si256(bytes));
      if (NV == 3) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(row + 32), _mm512_extracti32x4_epi32(bytes, 2));
      }
    }
    return;
  }
  alignas(64) uint8_t tmp[64];
  store512(tmp, bytes);
  std::memcpy(row, tmp, cols);
}

template <size_t NV, bool kLeft, bool kRight>
inline void requant_row(uint8_t* row, __m512i (&v)[NV], const avx512::MulQuantLanes16 (&lanes)[NV],
                        size_t cols, const avx512::OutputClamp16& clamp) {
#pragma GCC unroll 16
  for (size_t h = 0; h < NV; ++h) v[h] = avx512::mulquant<kLeft, kRight>(v[h], lanes[h]);
  store_row_u8<NV>(row, v, cols, clamp);
}

// Finishes rows [0, out.rows) (<= R) of a tile of sums A . B' held in acc:
// adds the column offsets, subtracts b_zp'[j] * rowsum[i] (wrapping), then
// stores int32 or requantizes.
template <size_t R, size_t NV>
void finish_tile(const __m512i (&acc)[R][NV], const GemmTileOut& out) {
  __m512i offset[NV], bzp[NV];
#pragma GCC unroll 16
  for (size_t h = 0; h < NV; ++h) {
    offset[h] = load512(out.col_offset + 16 * h);
    bzp[h] = load512(out.b_zero_point + 16 * h);
  }
  const ChannelParams* rq = out.requant;
  avx512::MulQuantLanes16 lanes[NV];
  if (rq != nullptr) {
#pragma GCC unroll 16
    for (size_t h = 0; h < NV; ++h) {
      lanes[h] = rq->period == 1 ? avx512::broadcast_lanes16(rq->multiplier[0], rq->shift[0])
                                 : avx512::load_lanes16(*rq, out.requant_column + 16 * h);
    }
  }
  const avx512::OutputClamp16 clamp(out.zero_point, out.qmin, out.qmax);
  const uint32_t bz0 = static_cast<uint32_t>(out.b_zero_point[0]);
#pragma GCC unroll 16
  for (size_t i = 0; i < R; ++i) {
    if (i >= out.rows) break;
    __m512i v[NV];
    if (out.b_zero_point_uniform) {  // one scalar product per row, no vpmulld
      const __m512i corr =
          _mm512_set1_epi32(static_cast<int32_t>(bz0 * static_cast<uint32_t>(out.rowsum[i])));
#pragma GCC unroll 16
      for (size_t h = 0; h < NV; ++h)
        v[h] = _mm512_add_epi32(acc[i][h], _mm512_sub_epi32(offset[h], corr));
    } else {
      const __m512i rs = _mm512_set1_epi32(out.rowsum[i]);
#pragma GCC unroll 16
      for (size_t h = 0; h < NV; ++h) {
        v[h] = _mm512_sub_epi32(_mm512_add_epi32(acc[i][h], offset[h]),
                                _mm512_mullo_epi32(bzp[h], rs));
      }
    }
    if (rq == nullptr) {
      store_row_s32<NV>(static_cast<int32_t*>(out.c) + i * out.ldc, v, out.cols);
      continue;
    }
    uint8_t* row = static_cast<uint8_t*>(out.c) + i * out.ldc;
    if (rq->any_left && rq->any_right) {
      requant_row<NV, true, true>(row, v, lanes, out.cols, clamp);
    } else if (rq->any_left) {
      requant_row<NV, true, false>(row, v, lanes, out.cols, clamp);
    } else if (rq->any_right) {
      requant_row<NV, false, true>(row, v, lanes, out.cols, clamp);
    } else {
      requant_row<NV, false, false>(row, v, lanes, out.cols, clamp);
    }
  }
}

// ---------------------------------------------------------------------------
// Microkernel.

// R rows (of an MR-row packed panel) x NV zmm columns, kgroups groups.
template <size_t MR, size_t R, size_t NV>
inline void tile_rows(size_t kgroups, const uint8_t* a, const uint8_t* b, const int32_t* acc_in,
                      int32_t* acc_out, const GemmTileOut* out) {
  __m512i acc[R][NV];
  if (acc_in != nullptr) {
#pragma GCC unroll 16
    for (size_t i = 0; i < R; ++i)
#pragma GCC unroll 16
      for (size_t h = 0; h < NV; ++h) acc[i][h] = load512(acc_in + i * 16 * NV + 16 * h);
  } else {
#pragma GCC unroll 16
    for (size_t i = 0; i < R; ++i)
#pragma GCC unroll 16
      for (size_t h = 0; h < NV; ++h) acc[i][h] = _mm512_setzero_si512();
  }
  for (size_t g = 0; g < kgroups; ++g) {
    __m512i bv[NV];
#pragma GCC unroll 16
    for (size_t h = 0; h < NV; ++h) bv[h] = load512(b + 64 * h);
#pragma GCC unroll 16
    for (size_t i = 0; i < R; ++i) {
      const __m512i av = _mm512_set1_epi32(load32(a + 4 * i));
#pragma GCC unroll 16
      for (size_t h = 0; h < NV; ++h) acc[i][h] = _mm512_dpbusd_epi32(acc[i][h], av, bv[h]);
    }
    a += kKr * MR;
    b += 64 * NV;
  }
  if (acc_out != nullptr) {
#pragma GCC unroll 16
    for (size_t i = 0; i < R; ++i)
#pragma GCC unroll 16
      for (size_t h = 0; h < NV; ++h) store512(acc_out + i * 16 * NV + 16 * h, acc[i][h]);
    return;
  }
  finish_tile<R, NV>(acc, *out);
}

// The tile of an MR-row panel; edge panels run only 4 or 8 of the rows
// (M = 16 is 12 + 4). Rows not run are not stored to acc_out: the driver
// passes the same rows for every K block and never reads the others.
template <size_t MR, size_t NV>
void gemm_tile(size_t kgroups, const void* a_packed, const uint8_t* b_packed, const int32_t* acc_in,
               int32_t* acc_out, const GemmTileOut* tile_out) {
  const uint8_t* a = static_cast<const uint8_t*>(a_packed);
  const size_t rows = tile_out != nullptr ? tile_out->rows : MR;
  if (MR > 8 && rows > 8) {
    tile_rows<MR, MR, NV>(kgroups, a, b_packed, acc_in, acc_out, tile_out);
  } else if (MR > 4 && rows > 4) {
    tile_rows<MR, (MR < 8 ? MR : 8), NV>(kgroups, a, b_packed, acc_in, acc_out, tile_out);
  } else {
    tile_rows<MR, (MR < 4 ? MR : 4), NV>(kgroups, a, b_packed, acc_in, acc_out, tile_out);
  }
}

void gemm_u8_12x32c4_avx512vnni(size_t kgroups, const void* a_packed, const uint8_t* b_packed,
                                const int32_t* acc_in, int32_t* acc_out,
                                const GemmTileOut* tile_out) {
  gemm_tile<kMr, kNv>(kgroups, a_packed, b_packed, acc_in, acc_out, tile_out);
}

// The same tile one zmm wide, for N <= 16 (the 16-channel layers of a UNet),
// where 32-column panels would spend half their multiplies on padding. Same
// A packing; B panels of 16 columns.
void gemm_u8_12x16c4_avx512vnni(size_t kgroups, const void* a_packed, const uint8_t* b_packed,
                                const int32_t* acc_in, int32_t* acc_out,
                                const GemmTileOut* tile_out) {
  gemm_tile<kMr, 1>(kgroups, a_packed, b_packed, acc_in, acc_out, tile_out);
}

// ---------------------------------------------------------------------------
// GEMV (M = 1): one row of A, read in place (4-byte broadcasts; the last
// partial quad assembled in a register), against P panels at a time, each
// broadcast serving P x NV vpdpbusd. Two sets of accumulators (even / odd
// groups) give 2 P NV independent chains. No partial sums: the
// accumulators stay in registers across K blocks. Nothing is allocated.

inline int32_t quad_tail(const uint8_t* a, size_t k0, size_t k) {
  uint32_t v = 0;
  for (size_t j = 0; k0 + j < k && j < 4; ++j) v |= static_cast<uint32_t>(a[k0 + j]) << (8 * j);
  return static_cast<int32_t>(v);
}

template <size_t P>
void gemv_panels(const uint8_t* a, size_t k, const GemvB& b, size_t p, __m512i (&acc)[P][kNv]) {
  __m512i acc2[P][kNv];
#pragma GCC unroll 16
  for (size_t j = 0; j < P; ++j)
#pragma GCC unroll 16
    for (size_t h = 0; h < kNv; ++h) acc[j][h] = acc2[j][h] = _mm512_setzero_si512();
  const size_t full = k / kKr;  // groups whose 4 bytes are all inside the row
  for (size_t k0 = 0; k0 < b.k_padded; k0 += b.kc) {
    const size_t kb = std::min(b.kc, b.k_padded - k0);
    const uint8_t* base = b.data + k0 * b.panels * kNr + p * kb * kNr;
    const size_t g0 = k0 / kKr, gb = kb / kKr;
    // Groups past the row (k_padded past k) have A = 0, B' = 0: skipped.
    const size_t n = full > g0 ? std::min(gb, full - g0) : 0;
    const uint8_t* ar = a + k0;
    size_t q = 0;
    for (; q + 2 <= n; q += 2) {
      const __m512i av = _mm512_set1_epi32(load32(ar + 4 * q));
      const __m512i av2 = _mm512_set1_epi32(load32(ar + 4 * q + 4));
#pragma GCC unroll 16
      for (size_t j = 0; j < P; ++j) {
        const uint8_t* bp = base + j * kb * kNr + q * kKr * kNr;
#pragma GCC unroll 16
        for (size_t h = 0; h < kNv; ++h) {
          acc[j][h] = _mm512_dpbusd_epi32(acc[j][h], av, load512(bp + 64 * h));
          acc2[j][h] = _mm512_dpbusd_epi32(acc2[j][h], av2, load512(bp + kKr * kNr + 64 * h));
        }
      }
    }
    // One odd full group, then the row's partial last group if it is here.
    const size_t end = n < gb && g0 + n < (k + kKr - 1) / kKr ? n + 1 : n;
    for (; q < end; ++q) {
      const __m512i av =
          _mm512_set1_epi32(q < n ? load32(ar + 4 * q) : quad_tail(a, k0 + 4 * q, k));
#pragma GCC unroll 16
      for (size_t j = 0; j < P; ++j) {
        const uint8_t* bp = base + j * kb * kNr + q * kKr * kNr;
#pragma GCC unroll 16
        for (size_t h = 0; h < kNv; ++h)
          acc[j][h] = _mm512_dpbusd_epi32(acc[j][h], av, load512(bp + 64 * h));
      }
    }
  }
#pragma GCC unroll 16
  for (size_t j = 0; j < P; ++j)
#pragma GCC unroll 16
    for (size_t h = 0; h < kNv; ++h) acc[j][h] = _mm512_add_epi32(acc[j][h], acc2[j][h]);
}

int32_t row_sum(const uint8_t* a, size_t k) {
  __m512i sums = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 64 <= k; i += 64)
    sums = _mm512_add_epi64(sums, _mm512_sad_epu8(load512(a + i), _mm512_setzero_si512()));
  alignas(64) int64_t s[8];
  store512(s, sums);
  uint32_t total = 0;
  for (int j = 0; j < 8; ++j) total += static_cast<uint32_t>(s[j]);
  for (; i < k; ++i) total += a[i];
  return static_cast<int32_t>(total);
}

template <size_t P>
void gemv_group(const uint8_t* a, size_t k, const GemvB& b, size_t p, size_t p0,
                const GemmTileOut& o) {
  __m512i acc[P][kNv];
  gemv_panels<P>(a, k, b, p, acc);
#pragma GCC unroll 16
  for (size_t j = 0; j < P; ++j) {
    const size_t col = (p - p0 + j) * kNr;
    GemmTileOut t = o;
    t.rows = 1;
    t.cols = std::min(kNr, o.cols - col);
    t.col_offset += col;
    t.b_zero_point += col;
    t.requant_column += col;
    t.c = static_cast<uint8_t*>(o.c) + col * (o.requant ? 1 : sizeof(int32_t));
    const __m512i(&row)[1][kNv] = reinterpret_cast<const __m512i(&)[1][kNv]>(acc[j]);
    finish_tile<1, kNv>(row, t);
  }
}

// gemv_u8_1x128c4_avx512vnni: four 32-column panels per broadcast quad.
void gemv_u8_1x128c4_avx512vnni(const uint8_t* a, size_t k, const GemvB& b, size_t p0, size_t p1,
                                const GemmTileOut* out) {
  int32_t rowsum = row_sum(a, k);
  GemmTileOut o = *out;
  o.rowsum = &rowsum;
  for (size_t p = p0; p < p1; p += 4) {
    switch (std::min<size_t>(4, p1 - p)) {
      case 4:
        gemv_group<4>(a, k, b, p, p0, o);
        break;
      case 3:
        gemv_group<3>(a, k, b, p, p0, o);
        break;
      case 2:
        gemv_group<2>(a, k, b, p, p0, o);
        break;
      default:
        gemv_group<1>(a, k, b, p, p0, o);
        break;
    }
  }
}

}  // namespace

const GemmKernel& avx512_vnni_gemm_kernel() {
  static const GemmKernel kernel = {LOWP_PATH_NAME("gemm_u8_12x32c4_avx512vnni"),
                                    kMr,
                                    kNr,
                                    kKr,
                                    kMr,
                                    1024,
                                    0x80,
                                    pack_a_12x4_avx512,
                                    gemm_u8_12x32c4_avx512vnni,
                                    gemv_u8_1x128c4_avx512vnni};
  return kernel;
}

const GemmKernel& avx512_vnni_gemm_narrow_kernel() {
  static const GemmKernel kernel = {LOWP_PATH_NAME("gemm_u8_12x16c4_avx512vnni"),
                                    kMr,
                                    16,
                                    kKr,
                                    kMr,
                                    1024,
                                    0x80,
                                    pack_a_12x4_avx512,
                                    gemm_u8_12x16c4_avx512vnni,
                                    nullptr};
  return kernel;
}

}  // namespace LOWP_ISA_NS
}  // namespace lowp
