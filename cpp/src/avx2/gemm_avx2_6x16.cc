// AVX2 GEMM microkernel gemm_u8_6x16c2_avx2: a 6x16 int32 tile from a
// compact A micro-panel, exact. The driver picks it for narrow outputs
// (convolutions: N = 16..128 output channels), where the pre-broadcast A
// micro-panel of gemm_u8_8x8c2_avx2 (8x the A bytes, packed once per
// micro-panel) is reused by too few B panels to pay for itself.
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
// at ~150 GOPS, the 8x8 pre-broadcast kernel's speed, with a pack that only
// widens and transposes. The loop is inline assembly: GCC spills the 12
// accumulators of the same loop written with intrinsics.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "../gemm.h"
#include "fixedpoint_avx2.h"

namespace lowp {
namespace {

constexpr size_t kMr = 6, kNr = 16;

// Bytes k .. k_valid - 1 of a row (fewer than 16) followed by zeros, reading
// only the `readable` bytes from the row's start (its own and the rows after
// it). A byte-wise copy to the stack and a 16-byte load back would stall on
// store forwarding, once per row of every micro-panel: the whole cost of
// packing when K is as small as a first conv layer's 27.
alignas(16) const uint8_t kSlide[32] = {
    0,    1,    2,    3,    4,    5,    6,    7,    8,    9,    10,   11,   12,   13,   14,   15,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80};
alignas(16) const uint8_t kKeep[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

inline __m128i load_tail(const uint8_t* row, size_t k, size_t k_valid, size_t readable) {
  const size_t n = k_valid - k;  // 1..15 bytes wanted
  if (k + 16 <= readable) {      // read on into the next rows, keep the first n
    const __m128i keep = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kKeep + 16 - n));
    return _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + k)), keep);
  }
  if (k_valid >= 16) {  // the 16 bytes ending at k_valid, moved down by 16 - n
    const __m128i slide = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kSlide + 16 - n));
    return _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + k_valid - 16)),
                            slide);
  }
  uint64_t lo = 0, hi = 0;  // a short row at the very end: byte by byte, in registers
  for (size_t j = 0; j < n; ++j) {
    const uint64_t v = static_cast<uint64_t>(row[k + j]) << (8 * (j & 7));
    if (j < 8) {
      lo |= v;
    } else {
      hi |= v;
    }
  }
  return _mm_set_epi64x(static_cast<long long>(hi), static_cast<long long>(lo));
}

// Rows [0, rows) of A (k values [0, k_valid); the rest zero) as the 6-row
// compact micro-panel, kc / 2 k-pairs of 24 bytes, with row sums.
void pack_a_6x2_avx2(const uint8_t* a, size_t lda, size_t rows, size_t k_valid, size_t kc,
                     void* packed, int32_t* rowsum) {
  uint8_t* dst = static_cast<uint8_t*>(packed);
  const size_t kpairs = kc / 2;
  __m128i sums[kMr];
  for (size_t i = 0; i < kMr; ++i) sums[i] = _mm_setzero_si128();
  const __m256i zero = _mm256_setzero_si256();
  for (size_t p = 0; p < kpairs; p += 8) {  // 8 pairs (16 bytes) of each row at a time
    const size_t k = 2 * p;
    __m256i r[kMr];
    for (size_t i = 0; i < kMr; ++i) {
      __m128i bytes;
      if (i >= rows || k >= k_valid) {
        bytes = _mm_setzero_si128();
      } else if (k + 16 <= k_valid) {
        bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i * lda + k));
      } else {
        bytes = load_tail(a + i * lda, k, k_valid, (rows - 1 - i) * lda + k_valid);
      }
      sums[i] = _mm_add_epi64(sums[i], _mm_sad_epu8(bytes, _mm_setzero_si128()));
      r[i] = _mm256_cvtepu8_epi16(bytes);  // dword j: the pair p + j of row i
    }
    // Transpose the 6 x 8 dwords to 8 x (6 rows + 2 zero): pair j gets rows
    // 0..5 in its first 24 bytes.
    const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
    const __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    const __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
    const __m256i u[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2),
                          _mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3)};
    const __m256i w[4] = {_mm256_unpacklo_epi64(t4, zero), _mm256_unpackhi_epi64(t4, zero),
                          _mm256_unpacklo_epi64(t5, zero), _mm256_unpackhi_epi64(t5, zero)};
    __m256i pairs[8];
    for (int j = 0; j < 4; ++j) {
      pairs[j] = _mm256_permute2x128_si256(u[j], w[j], 0x20);
      pairs[j + 4] = _mm256_permute2x128_si256(u[j], w[j], 0x31);
    }
    const size_t count = std::min<size_t>(8, kpairs - p);
    for (size_t j = 0; j < count; ++j) {
      uint8_t* d = dst + 24 * (p + j);
      if (p + j + 1 < kpairs) {  // 32 bytes; the next pair overwrites the last 8
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), pairs[j]);
      } else {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(d), _mm256_castsi256_si128(pairs[j]));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(d + 16), _mm256_extracti128_si256(pairs[j], 1));
      }
    }
  }
  for (size_t i = 0; i < rows; ++i) {
    rowsum[i] +=
        _mm_cvtsi128_si32(sums[i]) + _mm_cvtsi128_si32(_mm_unpackhi_epi64(sums[i], sums[i]));
  }
}

// Stores rows [0, rows) and columns [0, cols) of a 6 x 16 tile of values,
// row i in v[2i] (columns 0..7) and v[2i + 1] (8..15).
void store_s32(const __m256i v[12], const GemmTileOut& out) {
  int32_t* c = static_cast<int32_t*>(out.c);
  for (size_t i = 0; i < out.rows; ++i) {
    int32_t* row = c + i * out.ldc;
    if (out.cols == kNr) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(row), v[2 * i]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(row + 8), v[2 * i + 1]);
    } else {
      alignas(32) int32_t tmp[kNr];
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), v[2 * i]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp + 8), v[2 * i + 1]);
      std::memcpy(row, tmp, out.cols * sizeof(int32_t));
    }
  }
}

template <bool kLeft, bool kRight>
void store_u8(const __m256i v[12], const avx2::MulQuantLanes& lo, const avx2::MulQuantLanes& hi,
              const GemmTileOut& out) {
  const avx2::OutputClamp clamp(out.zero_point, out.qmin, out.qmax);
  uint8_t* c = static_cast<uint8_t*>(out.c);
  for (size_t i = 0; i < out.rows; i += 2) {  // two rows of 16 bytes at a time
    const __m256i bytes = clamp(avx2::mulquant<kLeft, kRight>(v[2 * i], lo),
                                avx2::mulquant<kLeft, kRight>(v[2 * i + 1], hi),
                                avx2::mulquant<kLeft, kRight>(v[2 * i + 2], lo),
                                avx2::mulquant<kLeft, kRight>(v[2 * i + 3], hi));
    const __m128i first = _mm256_castsi256_si128(bytes),
                  second = _mm256_extracti128_si256(bytes, 1);
    uint8_t* row = c + i * out.ldc;
    if (out.cols == kNr) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(row), first);
      if (i + 1 < out.rows) _mm_storeu_si128(reinterpret_cast<__m128i*>(row + out.ldc), second);
    } else {
      alignas(16) uint8_t tmp[2][kNr];
      _mm_store_si128(reinterpret_cast<__m128i*>(tmp[0]), first);
      _mm_store_si128(reinterpret_cast<__m128i*>(tmp[1]), second);
      std::memcpy(row, tmp[0], out.cols);
      if (i + 1 < out.rows) std::memcpy(row + out.ldc, tmp[1], out.cols);
    }
  }
}

// Finishes a tile of sums A . B (row-major, 16 per row): adds the column
// offsets, subtracts b_zp[j] * rowsum[i], then stores int32 or requantizes.
void finish_6x16(const int32_t* acc, const GemmTileOut& out) {
  auto load = [](const int32_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  };
  const __m256i offset[2] = {load(out.col_offset), load(out.col_offset + 8)};
  const __m256i bzp[2] = {load(out.b_zero_point), load(out.b_zero_point + 8)};
  __m256i v[12];
  for (size_t i = 0; i < kMr; ++i) {
    const __m256i rs = _mm256_set1_epi32(out.rowsum[i]);
    for (int h = 0; h < 2; ++h) {
      v[2 * i + h] = _mm256_sub_epi32(_mm256_add_epi32(load(acc + 16 * i + 8 * h), offset[h]),
                                      _mm256_mullo_epi32(bzp[h], rs));
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
    for (int h = 0; h < 2; ++h) {
      const size_t c = out.requant_column + 8 * h;
      const __m256i m = load(rq.multiplier + c);
      lanes[h] = {m,
                  _mm256_srli_epi64(m, 32),
                  load(rq.left + c),
                  load(rq.right + c),
                  load(rq.round_mask + c),
                  load(rq.round_half + c)};
    }
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

alignas(32) const int32_t kZeroTile[kMr * kNr] = {};

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
#define LOWP_KPAIR(U)                                        \
  "vpmovzxbw " LOWP_STR(32 * U) "(%[b]), %%ymm12\n\t"        \
  "vpmovzxbw " LOWP_STR(32 * U + 16) "(%[b]), %%ymm13\n\t"   \
  LOWP_ROW(U, 0, 0, 1) LOWP_ROW(U, 1, 2, 3) LOWP_ROW(U, 2, 4, 5) \
  LOWP_ROW(U, 3, 6, 7) LOWP_ROW(U, 4, 8, 9) LOWP_ROW(U, 5, 10, 11)
#define LOWP_ACC(OP, I) OP " " LOWP_STR(32 * I) "(%[src]), %%ymm" #I "\n\t"
#define LOWP_OUT(I) "vmovdqu %%ymm" #I ", " LOWP_STR(32 * I) "(%[dst])\n\t"
// clang-format on

void gemm_u8_6x16c2_avx2(size_t kpairs, const void* a_packed, const uint8_t* b_packed,
                         const int32_t* acc_in, int32_t* acc_out, const GemmTileOut* tile_out) {
  alignas(32) int32_t tile[kMr * kNr];
  const uint8_t* a = static_cast<const uint8_t*>(a_packed);
  const uint8_t* b = b_packed;
  const int32_t* src = acc_in != nullptr ? acc_in : kZeroTile;
  int32_t* dst = acc_out != nullptr ? acc_out : tile;
  size_t twos = kpairs / 2;
  const size_t odd = kpairs & 1;
  // The accumulators are loaded from src (unaligned: partial sums), the
  // k-pairs run two at a time, then the odd one; the tile goes to dst.
  __asm__ volatile(
      // clang-format off
      LOWP_ACC("vmovdqu", 0) LOWP_ACC("vmovdqu", 1) LOWP_ACC("vmovdqu", 2) LOWP_ACC("vmovdqu", 3)
      LOWP_ACC("vmovdqu", 4) LOWP_ACC("vmovdqu", 5) LOWP_ACC("vmovdqu", 6) LOWP_ACC("vmovdqu", 7)
      LOWP_ACC("vmovdqu", 8) LOWP_ACC("vmovdqu", 9) LOWP_ACC("vmovdqu", 10) LOWP_ACC("vmovdqu", 11)
      "test %[twos], %[twos]\n\t"
      "jz 2f\n\t"
      "1:\n\t"
      LOWP_KPAIR(0) LOWP_KPAIR(1)
      "add $48, %[a]\n\t"
      "add $64, %[b]\n\t"
      "dec %[twos]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "test %[odd], %[odd]\n\t"
      "jz 3f\n\t"
      LOWP_KPAIR(0)
      "3:\n\t"
      LOWP_OUT(0) LOWP_OUT(1) LOWP_OUT(2) LOWP_OUT(3) LOWP_OUT(4) LOWP_OUT(5)
      LOWP_OUT(6) LOWP_OUT(7) LOWP_OUT(8) LOWP_OUT(9) LOWP_OUT(10) LOWP_OUT(11)
      "vzeroupper\n\t"
      // clang-format on
      : [a] "+r"(a), [b] "+r"(b), [twos] "+r"(twos)
      : [odd] "r"(odd), [src] "r"(src), [dst] "r"(dst)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
  if (acc_out == nullptr) finish_6x16(tile, *tile_out);
}

#undef LOWP_OUT
#undef LOWP_ACC
#undef LOWP_KPAIR
#undef LOWP_ROW
#undef LOWP_STR
#undef LOWP_S

}  // namespace

const GemmKernel& avx2_gemm_kernel_6x16() {
  static const GemmKernel kernel = {
      kMr, kNr, 2, 2 * kMr, 1152, pack_a_6x2_avx2, gemm_u8_6x16c2_avx2, nullptr};
  return kernel;
}

}  // namespace lowp
