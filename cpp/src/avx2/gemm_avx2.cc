// AVX2 GEMM microkernel gemm_u8_8x8c2_avx2: an 8x8 int32 tile, exact.
//
// Packing: B panels hold, per k-pair (k = 2p, 2p + 1), the two bytes of each
// of the 8 columns side by side (16 bytes; one vpmovzxbw gives vpmaddwd's
// int16 pairs). The A micro-panel is "pre-broadcast": per k-pair, per row,
// the int16 pair (a[2p], a[2p + 1]) repeated 8 times (32 bytes, 256 per
// k-pair), so each vpmaddwd takes its A operand straight from memory.
//
// Why this shape (measured on Zen 3 in L1; vpmaddwd issues 2 per cycle, an
// exact ceiling of ~204 GOPS): u8 x u8 must go through int16 and vpmaddwd,
// never vpmaddubsw (u8 x s8, saturating). Exactness then costs one vpaddd per
// vpmaddwd. Broadcast loads are pure loads on Zen 3; what limits a plain
// kernel (~160 GOPS, 79%) is each add waiting on the multiply just before it.
// Here every product is added five multiplies later, multiplies and adds
// issued in pairs, through 7 rotating temporaries (ymm8-14) next to the 8
// row accumulators (ymm0-7) and the widened B (ymm15): ~170 GOPS (84%). The
// registers are pinned and every step passes an empty volatile asm, or GCC
// re-associates the adds into trees, spills, and undoes the schedule.
// Unrolled by 7 k-pairs, the temporary (mod 7) and row (mod 8) rotations
// repeat exactly, so five adds carry over the loop's back edge.
//
// The pre-broadcast A micro-panel is 8x a compact one, so the driver keeps it
// in L1 (kc <= 192: 24 KiB) and streams B panels from L2; the other loop
// order runs at ~100 GOPS.
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "../gemm.h"
#include "fixedpoint_avx2.h"

namespace lowp {
namespace {

constexpr size_t kMr = 8, kNr = 8;

// One micro-panel of A, pre-broadcast (see above), with row sums.
void pack_a_8x2_avx2(const uint8_t* a, size_t lda, size_t rows, size_t k_valid, size_t kc,
                     void* packed, int32_t* rowsum) {
  uint8_t* dst = static_cast<uint8_t*>(packed);
  const size_t kpairs = kc / 2;
  for (size_t i = 0; i < kMr; ++i) {
    uint8_t* row_dst = dst + 32 * i;
    if (i >= rows) {
      for (size_t p = 0; p < kpairs; ++p)
        _mm256_store_si256(reinterpret_cast<__m256i*>(row_dst + 256 * p), _mm256_setzero_si256());
      continue;
    }
    const uint8_t* src = a + i * lda;
    __m128i sums = _mm_setzero_si128();
    size_t p = 0;
    for (; 2 * p + 16 <= k_valid; p += 8) {  // 8 pairs per 16 source bytes
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * p));
      sums = _mm_add_epi64(sums, _mm_sad_epu8(bytes, _mm_setzero_si128()));
      const __m256i pairs = _mm256_cvtepu8_epi16(bytes);
      for (int j = 0; j < 8; ++j) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(row_dst + 256 * (p + j)),
                           _mm256_permutevar8x32_epi32(pairs, _mm256_set1_epi32(j)));
      }
    }
    uint32_t sum = static_cast<uint32_t>(_mm_cvtsi128_si32(sums) +
                                         _mm_cvtsi128_si32(_mm_unpackhi_epi64(sums, sums)));
    for (; p < kpairs; ++p) {
      const uint32_t lo = 2 * p < k_valid ? src[2 * p] : 0;
      const uint32_t hi = 2 * p + 1 < k_valid ? src[2 * p + 1] : 0;
      sum += lo + hi;
      _mm256_store_si256(reinterpret_cast<__m256i*>(row_dst + 256 * p),
                         _mm256_set1_epi32(static_cast<int32_t>(lo | (hi << 16))));
    }
    rowsum[i] += static_cast<int32_t>(sum);
  }
}

template <bool kLeft, bool kRight>
inline void requant_rows(const __m256i v[8], const avx2::MulQuantLanes& lanes,
                         const GemmTileOut& out) {
  const avx2::OutputClamp clamp(out.zero_point, out.qmin, out.qmax);
  uint8_t* c = static_cast<uint8_t*>(out.c);
  for (int i = 0; i < 8; i += 4) {
    const __m256i bytes = clamp(avx2::mulquant<kLeft, kRight>(v[i], lanes),
                                avx2::mulquant<kLeft, kRight>(v[i + 1], lanes),
                                avx2::mulquant<kLeft, kRight>(v[i + 2], lanes),
                                avx2::mulquant<kLeft, kRight>(v[i + 3], lanes));
    const __m128i lo = _mm256_castsi256_si128(bytes), hi = _mm256_extracti128_si256(bytes, 1);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(c + i * out.ldc), lo);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(c + (i + 1) * out.ldc), _mm_unpackhi_epi64(lo, lo));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(c + (i + 2) * out.ldc), hi);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(c + (i + 3) * out.ldc), _mm_unpackhi_epi64(hi, hi));
  }
}

// Finishes a tile whose row sums of A . B are in acc[0..7].
void finish_8x8(const __m256i acc[8], int32_t* acc_out, const GemmTileOut& out) {
  if (acc_out != nullptr) {
    for (int i = 0; i < 8; ++i)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc_out + 8 * i), acc[i]);
    return;
  }
  if (out.rows < kMr || out.cols < kNr) {  // edge tile: the scalar definition
    alignas(32) uint32_t tile[kMr][kNr];
    for (int i = 0; i < 8; ++i) _mm256_store_si256(reinterpret_cast<__m256i*>(tile[i]), acc[i]);
    for (size_t i = 0; i < out.rows; ++i)
      for (size_t j = 0; j < out.cols; ++j) gemm_store_one(out, i, j, tile[i][j]);
    return;
  }
  const __m256i offset = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(out.col_offset));
  const __m256i bzp = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(out.b_zero_point));
  __m256i v[8];
  for (int i = 0; i < 8; ++i) {
    const __m256i correction = _mm256_mullo_epi32(bzp, _mm256_set1_epi32(out.rowsum[i]));
    v[i] = _mm256_sub_epi32(_mm256_add_epi32(acc[i], offset), correction);
  }
  if (out.requant == nullptr) {
    int32_t* c = static_cast<int32_t*>(out.c);
    for (int i = 0; i < 8; ++i)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + i * out.ldc), v[i]);
    return;
  }
  const ChannelParams& rq = *out.requant;
  avx2::MulQuantLanes lanes;
  if (rq.period == 1) {
    lanes = avx2::broadcast_lanes(rq.multiplier[0], rq.shift[0]);
  } else {
    const size_t c = out.requant_column;
    auto load = [](const int32_t* p) {
      return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    };
    const __m256i m = load(rq.multiplier + c);
    lanes = {m,
             _mm256_srli_epi64(m, 32),
             load(rq.left + c),
             load(rq.right + c),
             load(rq.round_mask + c),
             load(rq.round_half + c)};
  }
  if (rq.any_left && rq.any_right) {
    requant_rows<true, true>(v, lanes, out);
  } else if (rq.any_left) {
    requant_rows<true, false>(v, lanes, out);
  } else if (rq.any_right) {
    requant_rows<false, true>(v, lanes, out);
  } else {
    requant_rows<false, false>(v, lanes, out);
  }
}

#define LOWP_PIN(x) __asm__ volatile("" : "+x"(x))

void gemm_u8_8x8c2_avx2(size_t kpairs, const void* a_packed, const uint8_t* b_packed,
                        const int32_t* acc_in, int32_t* acc_out, const GemmTileOut* tile_out) {
  const uint8_t* a = static_cast<const uint8_t*>(a_packed);
  const uint8_t* b = b_packed;
  auto start = [acc_in](int row) {
    return acc_in ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc_in + 8 * row))
                  : _mm256_setzero_si256();
  };
  register __m256i c0 asm("ymm0") = start(0);
  register __m256i c1 asm("ymm1") = start(1);
  register __m256i c2 asm("ymm2") = start(2);
  register __m256i c3 asm("ymm3") = start(3);
  register __m256i c4 asm("ymm4") = start(4);
  register __m256i c5 asm("ymm5") = start(5);
  register __m256i c6 asm("ymm6") = start(6);
  register __m256i c7 asm("ymm7") = start(7);
  // Temporaries start at zero: the first iteration adds "carried" products
  // that do not exist yet.
  register __m256i t0 asm("ymm8") = _mm256_setzero_si256();
  register __m256i t1 asm("ymm9") = _mm256_setzero_si256();
  register __m256i t2 asm("ymm10") = _mm256_setzero_si256();
  register __m256i t3 asm("ymm11") = _mm256_setzero_si256();
  register __m256i t4 asm("ymm12") = _mm256_setzero_si256();
  register __m256i t5 asm("ymm13") = _mm256_setzero_si256();
  register __m256i t6 asm("ymm14") = _mm256_setzero_si256();
  register __m256i bv asm("ymm15");

#define LOAD_B(K) \
  bv = _mm256_cvtepu8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(b + 16 * (K))));
#define MADD(T, K, M)                                                                     \
  t##T = _mm256_madd_epi16(                                                               \
      bv, _mm256_load_si256(reinterpret_cast<const __m256i*>(a + 256 * (K) + 32 * (M)))); \
  LOWP_PIN(t##T);
#define ACC(C, T)                      \
  c##C = _mm256_add_epi32(c##C, t##T); \
  LOWP_PIN(c##C);
// Multiplies for rows M, M+1 of k-pair K into temporaries TM0, TM1, then the
// adds of the multiplies issued five and four places earlier.
#define GROUP(K, M, TM0, TM1, CA, TA, CB, TB) \
  MADD(TM0, K, M) MADD(TM1, K, (M) + 1) ACC(CA, TA) ACC(CB, TB)

  // clang-format off
  size_t p = kpairs;
  for (; p >= 7; p -= 7) {
    // Madd number i (0..55) is row i % 8 of k-pair i / 8 into temp i % 7; group j issues madds
    // 2j and 2j+1, then adds madds 2j-5 and 2j-4 (mod 56: the first groups finish the previous
    // iteration's last madds).
    LOAD_B(0)
    GROUP(0, 0, 0, 1, 3, 2, 4, 3) GROUP(0, 2, 2, 3, 5, 4, 6, 5)
    GROUP(0, 4, 4, 5, 7, 6, 0, 0) GROUP(0, 6, 6, 0, 1, 1, 2, 2)
    LOAD_B(1)
    GROUP(1, 0, 1, 2, 3, 3, 4, 4) GROUP(1, 2, 3, 4, 5, 5, 6, 6)
    GROUP(1, 4, 5, 6, 7, 0, 0, 1) GROUP(1, 6, 0, 1, 1, 2, 2, 3)
    LOAD_B(2)
    GROUP(2, 0, 2, 3, 3, 4, 4, 5) GROUP(2, 2, 4, 5, 5, 6, 6, 0)
    GROUP(2, 4, 6, 0, 7, 1, 0, 2) GROUP(2, 6, 1, 2, 1, 3, 2, 4)
    LOAD_B(3)
    GROUP(3, 0, 3, 4, 3, 5, 4, 6) GROUP(3, 2, 5, 6, 5, 0, 6, 1)
    GROUP(3, 4, 0, 1, 7, 2, 0, 3) GROUP(3, 6, 2, 3, 1, 4, 2, 5)
    LOAD_B(4)
    GROUP(4, 0, 4, 5, 3, 6, 4, 0) GROUP(4, 2, 6, 0, 5, 1, 6, 2)
    GROUP(4, 4, 1, 2, 7, 3, 0, 4) GROUP(4, 6, 3, 4, 1, 5, 2, 6)
    LOAD_B(5)
    GROUP(5, 0, 5, 6, 3, 0, 4, 1) GROUP(5, 2, 0, 1, 5, 2, 6, 3)
    GROUP(5, 4, 2, 3, 7, 4, 0, 5) GROUP(5, 6, 4, 5, 1, 6, 2, 0)
    LOAD_B(6)
    GROUP(6, 0, 6, 0, 3, 1, 4, 2) GROUP(6, 2, 1, 2, 5, 3, 6, 4)
    GROUP(6, 4, 3, 4, 7, 5, 0, 6) GROUP(6, 6, 5, 6, 1, 0, 2, 1)
    a += 7 * 256;
    b += 7 * 16;
  }
  // Madds 51..55 of the last iteration (rows 3..7, temps 2..6) are still pending.
  ACC(3, 2) ACC(4, 3) ACC(5, 4) ACC(6, 5) ACC(7, 6)
  for (; p > 0; --p) {  // remaining k-pairs (< 7): plain multiply-then-add
    LOAD_B(0)
    MADD(0, 0, 0) ACC(0, 0) MADD(1, 0, 1) ACC(1, 1) MADD(2, 0, 2) ACC(2, 2)
    MADD(3, 0, 3) ACC(3, 3) MADD(4, 0, 4) ACC(4, 4) MADD(5, 0, 5) ACC(5, 5)
    MADD(6, 0, 6) ACC(6, 6) MADD(0, 0, 7) ACC(7, 0)
    a += 256;
    b += 16;
  }
  // clang-format on
#undef GROUP
#undef ACC
#undef MADD
#undef LOAD_B
  const __m256i acc[8] = {c0, c1, c2, c3, c4, c5, c6, c7};
  finish_8x8(acc, acc_out, *tile_out);
}

#undef LOWP_PIN

// Finishes one row of 8 columns (a GEMV panel) at column offset col of out.
void finish_1x8(__m256i acc, const GemmTileOut& out, size_t col) {
  const size_t cols = out.cols > col ? std::min<size_t>(kNr, out.cols - col) : 0;
  GemmTileOut o = out;
  o.col_offset += col;
  o.b_zero_point += col;
  o.requant_column += col;
  o.c = static_cast<uint8_t*>(out.c) + col * (out.requant ? 1 : sizeof(int32_t));
  if (cols < kNr) {
    alignas(32) uint32_t sums[kNr];
    _mm256_store_si256(reinterpret_cast<__m256i*>(sums), acc);
    for (size_t j = 0; j < cols; ++j) gemm_store_one(o, 0, j, sums[j]);
    return;
  }
  const __m256i offset = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(o.col_offset));
  const __m256i bzp = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(o.b_zero_point));
  const __m256i v = _mm256_sub_epi32(_mm256_add_epi32(acc, offset),
                                     _mm256_mullo_epi32(bzp, _mm256_set1_epi32(o.rowsum[0])));
  if (o.requant == nullptr) {
    _mm256_storeu_si256(static_cast<__m256i*>(o.c), v);
    return;
  }
  // The requantized row goes through the scalar definition per element: a
  // GEMV output is n values against k * n multiply-adds.
  alignas(32) uint32_t sums[kNr];
  _mm256_store_si256(reinterpret_cast<__m256i*>(sums), acc);
  for (size_t j = 0; j < kNr; ++j) gemm_store_one(o, 0, j, sums[j]);
}

// kPanels panels at once: one broadcast A pair serves kPanels multiplies.
template <int kPanels>
void gemv_panels(const int32_t* pairs, const GemvB& b, size_t p, __m256i acc[4]) {
  for (int j = 0; j < kPanels; ++j) acc[j] = _mm256_setzero_si256();
  for (size_t k0 = 0; k0 < b.k_padded; k0 += b.kc) {
    const size_t kb = std::min(b.kc, b.k_padded - k0);
    const uint8_t* base = b.data + k0 * b.panels * kNr + p * kb * kNr;
    const int32_t* a = pairs + k0 / 2;
    for (size_t q = 0; q < kb / 2; ++q) {
      const __m256i av = _mm256_set1_epi32(a[q]);
      for (int j = 0; j < kPanels; ++j) {
        const __m128i bytes =
            _mm_load_si128(reinterpret_cast<const __m128i*>(base + j * kb * kNr + 16 * q));
        acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(av, _mm256_cvtepu8_epi16(bytes)));
      }
    }
  }
}

struct GemvScratch {
  int32_t* pairs = nullptr;
  size_t capacity = 0;
  ~GemvScratch() { std::free(pairs); }
};

// gemv_u8_1x32c2_avx2: one row of A against four B panels (32 columns) at a
// time, the A pairs broadcast from a small unpacked buffer.
void gemv_u8_1x32c2_avx2(const uint8_t* a, size_t k, const GemvB& b, size_t p0, size_t p1,
                         const GemmTileOut* out) {
  static thread_local GemvScratch scratch;
  const size_t kpairs = b.k_padded / 2;
  if (scratch.capacity < kpairs + 8) {
    std::free(scratch.pairs);
    scratch.capacity = kpairs + 8;
    scratch.pairs =
        static_cast<int32_t*>(std::aligned_alloc(32, (scratch.capacity * 4 + 31) / 32 * 32));
  }
  int32_t* pairs = scratch.pairs;
  uint32_t sum = 0;
  size_t q = 0;
  __m128i sums = _mm_setzero_si128();
  for (; 2 * q + 16 <= k; q += 8) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 2 * q));
    sums = _mm_add_epi64(sums, _mm_sad_epu8(bytes, _mm_setzero_si128()));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(pairs + q), _mm256_cvtepu8_epi16(bytes));
  }
  sum = static_cast<uint32_t>(_mm_cvtsi128_si32(sums) +
                              _mm_cvtsi128_si32(_mm_unpackhi_epi64(sums, sums)));
  for (; q < kpairs; ++q) {
    const uint32_t lo = 2 * q < k ? a[2 * q] : 0, hi = 2 * q + 1 < k ? a[2 * q + 1] : 0;
    sum += lo + hi;
    pairs[q] = static_cast<int32_t>(lo | (hi << 16));
  }
  GemmTileOut o = *out;
  const int32_t rowsum = static_cast<int32_t>(sum);
  o.rowsum = &rowsum;
  __m256i acc[4];
  for (size_t p = p0; p < p1; p += 4) {
    const size_t np = std::min<size_t>(4, p1 - p);
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
    for (size_t j = 0; j < np; ++j) finish_1x8(acc[j], o, (p - p0 + j) * kNr);
  }
}

}  // namespace

const GemmKernel& avx2_gemm_kernel() {
  static const GemmKernel kernel = {
      kMr, kNr, 2, 128, 192, pack_a_8x2_avx2, gemm_u8_8x8c2_avx2, gemv_u8_1x32c2_avx2};
  return kernel;
}

}  // namespace lowp
