// AVX2 GEMM microkernel gemm_u8_6x16c2_avx2: a 6x16 int32 tile from a
// compact A micro-panel, exact, and its GEMV companion for M = 1.
//
// Packing: A per k-pair holds the 6 rows' int16 pairs (a[2p], a[2p + 1])
// side by side (24 bytes, 2x the A bytes); B panels are 16 columns wide, per
// k-pair the two bytes of each column side by side (32 bytes: two
// vpmovzxbw give vpmaddwd's int16 pairs). u8 x u8 goes through int16 and
// vpmaddwd, never vpmaddubsw (u8 x s8, saturating).
//
// Per k-pair: 2 vpmovzxbw of B, 6 vpbroadcastd of A (pure loads on Zen 3),
// 12 vpmaddwd into one temporary (ymm15, renamed) and 12 vpaddd into the
// accumulators ymm0-11. Zen 3 issues vpmaddwd on two pipes and the adds on
// the other two, and dispatches 6 macro-ops a cycle: 36 per k-pair (68 per
// two, unrolled) is just what 12 multiplies in 6 cycles allow. Measured in L1
// at ~150 GOPS. The loop is inline assembly: GCC spills the 12 accumulators
// of the same loop written with intrinsics.
//
// It replaced an 8x8 kernel that read a pre-broadcast A micro-panel (each
// pair repeated 8 times, so vpmaddwd took A from memory): as fast in L1, but
// that pack wrote 8x the A bytes per micro-panel, which only N / 8 B panels
// reused. Measured single-thread on whole GEMMs, the compact kernel was
// ahead or level on every shape: +10-20% for conv shapes (N = 32..128),
// +3-5% on squares, level at M = 8.
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "../gemm.h"
#include "../x86/pack_x86.h"
#include "fixedpoint_avx2.h"

namespace lowp {
namespace {

constexpr size_t kMr = 6, kNr = 16;

using x86::keep_first;
using x86::load_tail16;
using x86::slide_down;
using x86::transpose_6x8;

// Adds the 8 transposed k-pairs' values to row sums (int32 lane i: row i).
inline __m256i add_row_sums(__m256i sums, const __m256i pairs[8]) {
  // int16 lanes sum at most 8 x 255; vpmaddwd by ones adds each pair.
  const __m256i s01 = _mm256_add_epi16(pairs[0], pairs[1]);
  const __m256i s23 = _mm256_add_epi16(pairs[2], pairs[3]);
  const __m256i s45 = _mm256_add_epi16(pairs[4], pairs[5]);
  const __m256i s67 = _mm256_add_epi16(pairs[6], pairs[7]);
  const __m256i s = _mm256_add_epi16(_mm256_add_epi16(s01, s23), _mm256_add_epi16(s45, s67));
  return _mm256_add_epi32(sums, _mm256_madd_epi16(s, _mm256_set1_epi16(1)));
}

// Rows [0, rows) of A (k values [0, k_valid); the rest zero) as the 6-row
// compact micro-panel, kc / 2 k-pairs of 24 bytes, with row sums. Whole
// groups of 8 k-pairs of all 6 rows take a short path with every value in
// registers; the rest (edge rows, the tail of K) checks each row.
void pack_a_6x2_avx2(const uint8_t* a, size_t lda, size_t rows, size_t k_valid, size_t kc,
                     void* packed, int32_t* rowsum) {
  uint8_t* dst = static_cast<uint8_t*>(packed);
  const size_t kpairs = kc / 2;
  __m256i sums = _mm256_setzero_si256();
  __m256i r[kMr], pairs[8];
  size_t p = 0;
  if (rows == kMr) {
    const uint8_t* a3 = a + 3 * lda;
    // 16 bytes of each row, and the 8th pair's 32-byte store stays inside.
    for (; 2 * p + 16 <= k_valid && p + 8 < kpairs; p += 8) {
      auto row = [&](const uint8_t* base) {
        return _mm256_cvtepu8_epi16(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + 2 * p)));
      };
      if (p % 32 == 0) x86::prefetch_next_panel<kMr>(a, lda, 2 * p);  // per 4 steps
      r[0] = row(a);
      r[1] = row(a + lda);
      r[2] = row(a + 2 * lda);
      r[3] = row(a3);
      r[4] = row(a3 + lda);
      r[5] = row(a3 + 2 * lda);
      transpose_6x8(r, pairs);
      sums = add_row_sums(sums, pairs);
#pragma GCC unroll 8
      for (size_t j = 0; j < 8; ++j) {  // each store's last 8 bytes are overwritten by the next
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 24 * (p + j)), pairs[j]);
      }
    }
  }
  for (; p < kpairs; p += 8) {
    const size_t k = 2 * p;
    if (rows == kMr && k < k_valid && k_valid < k + 16 && k_valid >= 16 && lda >= 16) {
      // The tail of K in 6 whole rows (K = 27: every other group): rows 0..4
      // read on into the next row and keep n bytes, row 5 takes the 16 bytes
      // ending at k_valid and moves them down.
      const size_t n = k_valid - k;
      const __m128i keep = keep_first(n);
      for (size_t i = 0; i + 1 < kMr; ++i) {
        r[i] = _mm256_cvtepu8_epi16(_mm_and_si128(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i * lda + k)), keep));
      }
      const __m128i slide = slide_down(n);
      r[kMr - 1] = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + (kMr - 1) * lda + k_valid - 16)),
          slide));
    } else {
      for (size_t i = 0; i < kMr; ++i) {
        __m128i bytes;
        if (i >= rows || k >= k_valid) {
          bytes = _mm_setzero_si128();
        } else if (k + 16 <= k_valid) {
          bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i * lda + k));
        } else {
          bytes = load_tail16(a + i * lda, k, k_valid, (rows - 1 - i) * lda + k_valid);
        }
        r[i] = _mm256_cvtepu8_epi16(bytes);  // dword j: the pair p + j of row i
      }
    }
    transpose_6x8(r, pairs);
    sums = add_row_sums(sums, pairs);
    const size_t count = std::min<size_t>(8, kpairs - p);
    for (size_t j = 0; j < count; ++j) {
      uint8_t* d = dst + 24 * (p + j);
      if (p + j + 1 < kpairs) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), pairs[j]);
      } else {  // the panel's last pair: 24 bytes
        _mm_storeu_si128(reinterpret_cast<__m128i*>(d), _mm256_castsi256_si128(pairs[j]));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(d + 16), _mm256_extracti128_si256(pairs[j], 1));
      }
    }
  }
  alignas(32) int32_t row_sums[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(row_sums), sums);
  for (size_t i = 0; i < kMr; ++i) rowsum[i] += row_sums[i];  // rows past `rows` summed zeros
}

// Stores rows [0, rows) and columns [0, cols) of a 6 x 16 tile of values,
// row i in v[2i] (columns 0..7) and v[2i + 1] (8..15).
void store_s32(const __m256i v[12], const GemmTileOut& out) {
  int32_t* c = static_cast<int32_t*>(out.c);
  for (size_t i = 0; i < out.rows; ++i) {
    avx2::store_row16_s32(c + i * out.ldc, v[2 * i], v[2 * i + 1], out.cols);
  }
}

template <bool kLeft, bool kRight>
void store_u8(const __m256i v[12], const avx2::MulQuantLanes& lo, const avx2::MulQuantLanes& hi,
              const GemmTileOut& out) {
  const avx2::OutputClamp clamp(out.zero_point, out.qmin, out.qmax);
  uint8_t* c = static_cast<uint8_t*>(out.c);
  for (size_t i = 0; i < out.rows; i += 2) {  // two rows of 16 bytes at a time
    const size_t next = i + 1 < out.rows ? i + 1 : i;
    const __m256i bytes = clamp(avx2::mulquant<kLeft, kRight>(v[2 * i], lo),
                                avx2::mulquant<kLeft, kRight>(v[2 * i + 1], hi),
                                avx2::mulquant<kLeft, kRight>(v[2 * next], lo),
                                avx2::mulquant<kLeft, kRight>(v[2 * next + 1], hi));
    avx2::store_rows16_u8(c + i * out.ldc, out.ldc, bytes, out.cols, i + 1 < out.rows);
  }
}

// Finishes rows [0, out.rows) of a tile of sums A . B (row-major, 16 per
// row): adds the column offsets, subtracts b_zp[j] * rowsum[i], then stores
// int32 or requantizes.
void finish_tile(const int32_t* acc, const GemmTileOut& out) {
  auto load = [](const int32_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  };
  const __m256i offset[2] = {load(out.col_offset), load(out.col_offset + 8)};
  __m256i v[12];
  if (out.b_zero_point_uniform) {  // one scalar product per row, no vpmulld
    const uint32_t bz = static_cast<uint32_t>(out.b_zero_point[0]);
    for (size_t i = 0; i < out.rows; ++i) {
      const __m256i corr =
          _mm256_set1_epi32(static_cast<int32_t>(bz * static_cast<uint32_t>(out.rowsum[i])));
      for (int h = 0; h < 2; ++h) {
        v[2 * i + h] =
            _mm256_add_epi32(load(acc + 16 * i + 8 * h), _mm256_sub_epi32(offset[h], corr));
      }
    }
  } else {
    const __m256i bzp[2] = {load(out.b_zero_point), load(out.b_zero_point + 8)};
    for (size_t i = 0; i < out.rows; ++i) {
      const __m256i rs = _mm256_set1_epi32(out.rowsum[i]);
      for (int h = 0; h < 2; ++h) {
        v[2 * i + h] = _mm256_sub_epi32(_mm256_add_epi32(load(acc + 16 * i + 8 * h), offset[h]),
                                        _mm256_mullo_epi32(bzp[h], rs));
      }
    }
  }
  if (out.requant == nullptr) {
    store_s32(v, out);
    return;
  }
  const ChannelParams& rq = *out.requant;
  avx2::MulQuantLanes lanes[2];
  if (rq.period == 1) {
    lanes[0] = lanes[1] = avx2::broadcast_lanes(rq.multiplier[0], rq.shift[0]);
  } else {
    for (int h = 0; h < 2; ++h) lanes[h] = avx2::load_lanes(rq, out.requant_column + 8 * h);
  }
  if (rq.any_left && rq.any_right) {
    store_u8<true, true>(v, lanes[0], lanes[1], out);
  } else if (rq.any_left) {
    store_u8<true, false>(v, lanes[0], lanes[1], out);
  } else if (rq.any_right) {
    store_u8<false, true>(v, lanes[0], lanes[1], out);
  } else {
    store_u8<false, false>(v, lanes[0], lanes[1], out);
  }
}

// clang-format off
#define LOWP_S(x) #x
#define LOWP_STR(x) LOWP_S(x)
// Row I of k-pair U (its A pair at byte 24 U + 4 I): broadcast, then
// columns 0..7 into accumulator 2I and 8..15 into 2I + 1.
#define LOWP_ROW(U, I, C0, C1)                                   \
  "vpbroadcastd " LOWP_STR(24 * U + 4 * I) "(%[a]), %%ymm14\n\t" \
  "vpmaddwd %%ymm12, %%ymm14, %%ymm15\n\t"                       \
  "vpaddd %%ymm15, %%ymm" #C0 ", %%ymm" #C0 "\n\t"               \
  "vpmaddwd %%ymm13, %%ymm14, %%ymm15\n\t"                       \
  "vpaddd %%ymm15, %%ymm" #C1 ", %%ymm" #C1 "\n\t"
#define LOWP_B(U)                                      \
  "vpmovzxbw " LOWP_STR(32 * U) "(%[b]), %%ymm12\n\t"      \
  "vpmovzxbw " LOWP_STR(32 * U + 16) "(%[b]), %%ymm13\n\t"
#define LOWP_KPAIR6(U) LOWP_B(U)                                  \
  LOWP_ROW(U, 0, 0, 1) LOWP_ROW(U, 1, 2, 3) LOWP_ROW(U, 2, 4, 5) \
  LOWP_ROW(U, 3, 6, 7) LOWP_ROW(U, 4, 8, 9) LOWP_ROW(U, 5, 10, 11)
#define LOWP_KPAIR4(U) LOWP_B(U) \
  LOWP_ROW(U, 0, 0, 1) LOWP_ROW(U, 1, 2, 3) LOWP_ROW(U, 2, 4, 5) LOWP_ROW(U, 3, 6, 7)
#define LOWP_KPAIR2(U) LOWP_B(U) LOWP_ROW(U, 0, 0, 1) LOWP_ROW(U, 1, 2, 3)
#define LOWP_ACC(I) "vmovdqu " LOWP_STR(32 * I) "(%[src]), %%ymm" #I "\n\t"
#define LOWP_ZERO(I) "vpxor %%xmm" #I ", %%xmm" #I ", %%xmm" #I "\n\t"
#define LOWP_OUT(I) "vmovdqu %%ymm" #I ", " LOWP_STR(32 * I) "(%[dst])\n\t"
// clang-format on

// clang-format off
#define LOWP_TILE(KPAIR)                                                                         \
  __asm__ volatile(                                                                              \
      "test %[src], %[src]\n\t"                                                                   \
      "jz 4f\n\t"                                                                                 \
      LOWP_ACC(0) LOWP_ACC(1) LOWP_ACC(2) LOWP_ACC(3) LOWP_ACC(4) LOWP_ACC(5)                    \
      LOWP_ACC(6) LOWP_ACC(7) LOWP_ACC(8) LOWP_ACC(9) LOWP_ACC(10) LOWP_ACC(11)                  \
      "jmp 5f\n\t"                                                                                \
      "4:\n\t"                                                                                    \
      LOWP_ZERO(0) LOWP_ZERO(1) LOWP_ZERO(2) LOWP_ZERO(3) LOWP_ZERO(4) LOWP_ZERO(5)              \
      LOWP_ZERO(6) LOWP_ZERO(7) LOWP_ZERO(8) LOWP_ZERO(9) LOWP_ZERO(10) LOWP_ZERO(11)            \
      "5:\n\t"                                                                                    \
      "test %[twos], %[twos]\n\t"                                                                 \
      "jz 2f\n\t"                                                                                 \
      "1:\n\t"                                                                                    \
      KPAIR(0) KPAIR(1)                                                                          \
      "add $48, %[a]\n\t"                                                                         \
      "add $64, %[b]\n\t"                                                                         \
      "dec %[twos]\n\t"                                                                           \
      "jnz 1b\n\t"                                                                                \
      "2:\n\t"                                                                                    \
      "test %[odd], %[odd]\n\t"                                                                   \
      "jz 3f\n\t"                                                                                 \
      KPAIR(0)                                                                                   \
      "3:\n\t"                                                                                    \
      LOWP_OUT(0) LOWP_OUT(1) LOWP_OUT(2) LOWP_OUT(3) LOWP_OUT(4) LOWP_OUT(5)                    \
      LOWP_OUT(6) LOWP_OUT(7) LOWP_OUT(8) LOWP_OUT(9) LOWP_OUT(10) LOWP_OUT(11)                  \
      "vzeroupper\n\t"                                                                            \
      : [a] "+r"(a), [b] "+r"(b), [twos] "+r"(twos)                                              \
      : [odd] "r"(odd), [src] "r"(src), [dst] "r"(dst)                                           \
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",  \
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory")
// clang-format on

void gemm_u8_6x16c2_avx2(size_t kpairs, const void* a_packed, const uint8_t* b_packed,
                         const int32_t* acc_in, int32_t* acc_out, const GemmTileOut* tile_out) {
  alignas(32) int32_t tile[kMr * kNr];
  const uint8_t* a = static_cast<const uint8_t*>(a_packed);
  const uint8_t* b = b_packed;
  const int32_t* src = acc_in;  // null: start from zero
  int32_t* dst = acc_out != nullptr ? acc_out : tile;
  size_t twos = kpairs / 2;
  const size_t odd = kpairs & 1;
  // The accumulators start at zero or from src (unaligned: partial sums), the
  // k-pairs run two at a time, then the odd one; the tile goes to dst. An
  // edge micro-panel of 1..4 rows runs only its rows' multiplies (M = 8 is
  // 6 + 2 rows); the other accumulators pass through unchanged.
  const size_t rows = tile_out != nullptr ? tile_out->rows : kMr;
  if (rows > 4) {
    LOWP_TILE(LOWP_KPAIR6);
  } else if (rows > 2) {
    LOWP_TILE(LOWP_KPAIR4);
  } else {
    LOWP_TILE(LOWP_KPAIR2);
  }
  if (acc_out == nullptr) finish_tile(tile, *tile_out);
}

#undef LOWP_TILE
#undef LOWP_OUT
#undef LOWP_ZERO
#undef LOWP_ACC
#undef LOWP_KPAIR2
#undef LOWP_KPAIR4
#undef LOWP_KPAIR6
#undef LOWP_B
#undef LOWP_ROW
#undef LOWP_STR
#undef LOWP_S

// M = 1 (a GEMV): one row of A, unpacked, against kPanels B panels at a
// time, each broadcast A pair serving 2 kPanels multiplies; no partial sums
// (the accumulators stay in registers across K blocks).
template <int kPanels>
void gemv_panels(const int32_t* pairs, const GemvB& b, size_t p, __m256i acc[2 * kPanels]) {
  for (int j = 0; j < 2 * kPanels; ++j) acc[j] = _mm256_setzero_si256();
  for (size_t k0 = 0; k0 < b.k_padded; k0 += b.kc) {
    const size_t kb = std::min(b.kc, b.k_padded - k0);
    const uint8_t* base = b.data + k0 * b.panels * kNr + p * kb * kNr;
    const int32_t* a = pairs + k0 / 2;
    for (size_t q = 0; q < kb / 2; ++q) {
      const __m256i av = _mm256_set1_epi32(a[q]);
      for (int j = 0; j < 2 * kPanels; ++j) {
        const __m128i bytes = _mm_load_si128(
            reinterpret_cast<const __m128i*>(base + (j / 2) * kb * kNr + 32 * q + 16 * (j % 2)));
        acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(av, _mm256_cvtepu8_epi16(bytes)));
      }
    }
  }
}

// Capacity of a GEMV's A pairs: every K the GEMM accepts, plus a vector.
constexpr size_t kMaxPairs = (kMaxGemmK + 1) / 2 + 8;

// The row's A pairs as int32 (lo | hi << 16), zero-padded to k_padded, into
// `pairs` (kMaxPairs entries, on the caller's stack), and the row sum.
void gemv_pairs(const uint8_t* a, size_t k, size_t k_padded, int32_t* pairs, int32_t* rowsum) {
  const size_t kpairs = k_padded / 2;
  __m128i sums = _mm_setzero_si128();
  size_t q = 0;
  for (; 2 * q + 16 <= k; q += 8) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 2 * q));
    sums = _mm_add_epi64(sums, _mm_sad_epu8(bytes, _mm_setzero_si128()));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(pairs + q), _mm256_cvtepu8_epi16(bytes));
  }
  uint32_t sum = static_cast<uint32_t>(_mm_cvtsi128_si32(sums) +
                                       _mm_cvtsi128_si32(_mm_unpackhi_epi64(sums, sums)));
  for (; q < kpairs; ++q) {
    const uint32_t lo = 2 * q < k ? a[2 * q] : 0, hi = 2 * q + 1 < k ? a[2 * q + 1] : 0;
    sum += lo + hi;
    pairs[q] = static_cast<int32_t>(lo | (hi << 16));
  }
  *rowsum = static_cast<int32_t>(sum);
}

// gemv_u8_1x64c2_avx2: four 16-column panels per broadcast A pair, each
// panel finished through the tile output stage (vector requantization).
void gemv_u8_1x64c2_avx2(const uint8_t* a, size_t k, const GemvB& b, size_t p0, size_t p1,
                         const GemmTileOut* out) {
  // 66 KB on the stack at the largest K: no allocation in a microkernel.
  alignas(32) int32_t pairs[kMaxPairs];
  int32_t rowsum = 0;
  gemv_pairs(a, k, b.k_padded, pairs, &rowsum);
  GemmTileOut o = *out;
  o.rowsum = &rowsum;
  alignas(32) int32_t tile[kMr * kNr];
  for (size_t p = p0; p < p1; p += 4) {
    const size_t np = std::min<size_t>(4, p1 - p);
    __m256i acc[8];
    switch (np) {
      case 4:
        gemv_panels<4>(pairs, b, p, acc);
        break;
      case 3:
        gemv_panels<3>(pairs, b, p, acc);
        break;
      case 2:
        gemv_panels<2>(pairs, b, p, acc);
        break;
      default:
        gemv_panels<1>(pairs, b, p, acc);
        break;
    }
    for (size_t j = 0; j < np; ++j) {
      const size_t col = (p - p0 + j) * kNr;
      GemmTileOut t = o;
      t.rows = 1;
      t.cols = std::min(kNr, out->cols - col);
      t.col_offset += col;
      t.b_zero_point += col;
      t.requant_column += col;
      t.c = static_cast<uint8_t*>(out->c) + col * (out->requant ? 1 : sizeof(int32_t));
      _mm256_store_si256(reinterpret_cast<__m256i*>(tile), acc[2 * j]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(tile + 8), acc[2 * j + 1]);
      finish_tile(tile, t);
    }
  }
}

}  // namespace

const GemmKernel& avx2_gemm_kernel() {
  static const GemmKernel kernel = {
      "gemm_u8_6x16c2_avx2", kMr, kNr, 2, 2 * kMr, 1152, 0, pack_a_6x2_avx2, gemm_u8_6x16c2_avx2,
      gemv_u8_1x64c2_avx2};
  return kernel;
}

}  // namespace lowp
