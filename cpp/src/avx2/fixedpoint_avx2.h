// AVX2 fixed-point helpers on 8 int32 lanes. Only for translation units
// compiled with -mavx2 -mfma (cpp/src/avx2/); the GEMM and convolution output
// stages use them on tiles still in registers.
//
// SaturatingRoundingDoublingHighMul as (p + 2^30) >> 31: gemmlowp's nudge of
// 1 - 2^30 for negative products followed by a truncating division lands on
// exactly the same integer as adding 2^30 and flooring, for every product.
// Flooring is a plain shift of the 64-bit product, so one add and one shift
// per half replace gemmlowp's sign-dependent nudge. The only product that
// does not fit is INT32_MIN * INT32_MIN, impossible here because multipliers
// are never negative.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace lowp {
namespace avx2 {

// x * 2^left saturated to int32, for 0 <= left <= 30 per lane.
static inline __m256i saturating_left_shift(__m256i x, __m256i left) {
  const __m256i shifted = _mm256_sllv_epi32(x, left);
  const __m256i fits = _mm256_cmpeq_epi32(_mm256_srav_epi32(shifted, left), x);
  // x < 0 -> INT32_MIN, else INT32_MAX.
  const __m256i saturated =
      _mm256_xor_si256(_mm256_srai_epi32(x, 31), _mm256_set1_epi32(INT32_MAX));
  return _mm256_blendv_epi8(saturated, shifted, fits);
}

// srdhm(x, m) for m >= 0.
static inline __m256i srdhm_nonneg(__m256i x, __m256i m) {
  const __m256i nudge = _mm256_set1_epi64x(int64_t{1} << 30);
  const __m256i even = _mm256_add_epi64(_mm256_mul_epi32(x, m), nudge);
  const __m256i odd =
      _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(m, 32)), nudge);
  // Bits 31..62 of each product: shifted down in even lanes, up into the
  // high half in odd lanes.
  return _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0xAA);
}

// RoundingDivideByPOT with a per-lane exponent in [0, 31].
static inline __m256i rdivpot(__m256i x, __m256i exponent) {
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, exponent), one);
  const __m256i remainder = _mm256_and_si256(x, mask);
  // threshold = (mask >> 1) + (x < 0); srai(x, 31) is -1 where x < 0.
  const __m256i threshold = _mm256_sub_epi32(_mm256_srli_epi32(mask, 1), _mm256_srai_epi32(x, 31));
  return _mm256_sub_epi32(_mm256_srav_epi32(x, exponent), _mm256_cmpgt_epi32(remainder, threshold));
}

// multiply_by_quantized_multiplier with left = max(shift, 0), right = max(-shift, 0).
static inline __m256i mulquant(__m256i x, __m256i m, __m256i left, __m256i right) {
  return rdivpot(srdhm_nonneg(saturating_left_shift(x, left), m), right);
}

// clamp(v, lo, hi) + zero_point, with lo = qmin - zp, hi = qmax - zp: the clamp
// comes first because zero_point + v may overflow int32.
static inline __m256i clamp_add(__m256i v, __m256i lo, __m256i hi, __m256i zero_point) {
  return _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(v, lo), hi), zero_point);
}

// Four vectors of values in [0, 255] -> 32 bytes in order.
static inline __m256i pack_u8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b);  // a0-3 b0-3 | a4-7 b4-7
  const __m256i cd = _mm256_packs_epi32(c, d);
  const __m256i abcd = _mm256_packus_epi16(ab, cd);  // a0-3 b0-3 c0-3 d0-3 | a4-7 ...
  return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

}  // namespace avx2
}  // namespace lowp
