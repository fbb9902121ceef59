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

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../kernels.h"
#include "../x86/intrin.h"

namespace lowp {
namespace avx2 {
// Internal linkage: the header is compiled under several ISAs' flags (avx2,
// avx_vnni, their SIMDe builds), and an inline function or member with
// external linkage would be one symbol whose copy the linker picks.
namespace {

// x * 2^left saturated to int32, for 0 <= left <= 30 per lane.
static inline __m256i saturating_left_shift(__m256i x, __m256i left) {
  const __m256i shifted = _mm256_sllv_epi32(x, left);
  const __m256i fits = _mm256_cmpeq_epi32(_mm256_srav_epi32(shifted, left), x);
  // x < 0 -> INT32_MIN, else INT32_MAX.
  const __m256i saturated =
      _mm256_xor_si256(_mm256_srai_epi32(x, 31), _mm256_set1_epi32(INT32_MAX));
  return _mm256_blendv_epi8(saturated, shifted, fits);
}

// srdhm(x, m) for m >= 0; m_odd is m shifted down by 32 bits (the odd lanes'
// multipliers moved where _mm256_mul_epi32 reads them), hoisted by callers
// that reuse m.
static inline __m256i srdhm_nonneg(__m256i x, __m256i m, __m256i m_odd) {
  const __m256i nudge = _mm256_set1_epi64x(int64_t{1} << 30);
  const __m256i even = _mm256_add_epi64(_mm256_mul_epi32(x, m), nudge);
  const __m256i odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), m_odd), nudge);
  // Bits 31..62 of each product: shifted down in even lanes, up into the
  // high half in odd lanes.
  return _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0xAA);
}

// RoundingDivideByPOT with a per-lane exponent in [0, 31]; mask is
// (1 << exponent) - 1 and half is mask >> 1.
static inline __m256i rdivpot(__m256i x, __m256i exponent, __m256i mask, __m256i half) {
  const __m256i remainder = _mm256_and_si256(x, mask);
  // threshold = half + (x < 0); srai(x, 31) is -1 where x < 0.
  const __m256i threshold = _mm256_sub_epi32(half, _mm256_srai_epi32(x, 31));
  return _mm256_sub_epi32(_mm256_srav_epi32(x, exponent), _mm256_cmpgt_epi32(remainder, threshold));
}

// Per-lane parameters of multiply_by_quantized_multiplier, in the forms the
// steps above take.
struct MulQuantLanes {
  __m256i m, m_odd, left, right, mask, half;
};

static inline MulQuantLanes broadcast_lanes(int32_t m, int32_t shift) {
  const int32_t right = shift < 0 ? -shift : 0;
  const int32_t mask = static_cast<int32_t>((uint32_t{1} << right) - 1u);
  return {
      _mm256_set1_epi32(m),     _mm256_set1_epi32(m),    _mm256_set1_epi32(shift > 0 ? shift : 0),
      _mm256_set1_epi32(right), _mm256_set1_epi32(mask), _mm256_set1_epi32(mask >> 1)};
}

// Lanes for channels [c, c + 8) of per-channel tables (ChannelParams).
static inline MulQuantLanes load_lanes(const ChannelParams& ch, size_t c) {
  const auto load = [](const int32_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  };
  const __m256i m = load(ch.multiplier + c);
  return {m,
          _mm256_srli_epi64(m, 32),
          load(ch.left + c),
          load(ch.right + c),
          load(ch.round_mask + c),
          load(ch.round_half + c)};
}

// kLeft / kRight: whether any lane shifts left / right. Without them the
// step is an identity and is skipped: most layers only shift right.
template <bool kLeft, bool kRight>
static inline __m256i mulquant(__m256i x, const MulQuantLanes& p) {
  if (kLeft) x = saturating_left_shift(x, p.left);
  x = srdhm_nonneg(x, p.m, p.m_odd);
  if (kRight) x = rdivpot(x, p.right, p.mask, p.half);
  return x;
}

// Stores int16 value `index` of a packed weight buffer held as bytes.
static inline void put_i16(uint8_t* bytes, size_t index, int16_t v) {
  std::memcpy(bytes + index * sizeof(int16_t), &v, sizeof(v));
}

// Lanes for channels [c, c + 8) of the tables, or the one per-tensor pair.
static inline MulQuantLanes lanes8_at(const ChannelParams& ch, size_t c) {
  if (ch.period == 1) return broadcast_lanes(ch.multiplier[0], ch.shift[0]);
  return load_lanes(ch, c);
}

// mulquant with only the shift steps some lane of the tables needs.
static inline __m256i requant8(__m256i v, const ChannelParams& ch, const MulQuantLanes& l) {
  if (ch.any_left) return ch.any_right ? mulquant<true, true>(v, l) : mulquant<true, false>(v, l);
  return ch.any_right ? mulquant<false, true>(v, l) : mulquant<false, false>(v, l);
}

// Four vectors of values in [0, 255] -> 32 bytes in order.
static inline __m256i pack_u8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b);  // a0-3 b0-3 | a4-7 b4-7
  const __m256i cd = _mm256_packs_epi32(c, d);
  const __m256i abcd = _mm256_packus_epi16(ab, cd);  // a0-3 b0-3 c0-3 d0-3 | a4-7 ...
  return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Output stage of 32 lanes at once: four int32 vectors -> 32 bytes
// clamp(v + zero_point, qmin, qmax). Saturating to int16, adding the zero
// point with int16 saturation, then saturating to uint8 and clamping bytes
// gives exactly the clamp of the exact sum: every saturation happens only
// where the exact result lies outside [0, 255] on the same side.
struct OutputClamp {
  __m256i zero_point16, qmin8, qmax8;
  OutputClamp(int32_t zero_point, int32_t qmin, int32_t qmax)
      : zero_point16(_mm256_set1_epi16(static_cast<int16_t>(zero_point))),
        qmin8(_mm256_set1_epi8(static_cast<char>(qmin))),
        qmax8(_mm256_set1_epi8(static_cast<char>(qmax))) {}

  inline __m256i operator()(__m256i a, __m256i b, __m256i c, __m256i d) const {
    const __m256i ab =
        _mm256_adds_epi16(_mm256_packs_epi32(a, b), zero_point16);  // a0-3 b0-3 | a4-7 b4-7
    const __m256i cd = _mm256_adds_epi16(_mm256_packs_epi32(c, d), zero_point16);
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(ab, cd),
                                                      _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    return _mm256_min_epu8(_mm256_max_epu8(bytes, qmin8), qmax8);
  }
};

// Columns [0, cols) of one tile row of 16 int32 values (lo: 0..7, hi:
// 8..15), cols <= 16: the int32 store of the 16-column GEMM tiles.
static inline void store_row16_s32(int32_t* row, __m256i lo, __m256i hi, size_t cols) {
  if (cols == 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(row), lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(row + 8), hi);
    return;
  }
  alignas(32) int32_t tmp[16];
  _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), lo);
  _mm256_store_si256(reinterpret_cast<__m256i*>(tmp + 8), hi);
  std::memcpy(row, tmp, cols * sizeof(int32_t));
}

// Columns [0, cols) (cols <= 16) of one or two tile rows of bytes: row 0
// from the low 16 bytes of `bytes` at row, row 1 (if two_rows) from the high
// 16 at row + ldc. The uint8 store of the 16-column GEMM tiles.
static inline void store_rows16_u8(uint8_t* row, size_t ldc, __m256i bytes, size_t cols,
                                   bool two_rows) {
  const __m128i first = _mm256_castsi256_si128(bytes), second = _mm256_extracti128_si256(bytes, 1);
  if (cols == 16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(row), first);
    if (two_rows) _mm_storeu_si128(reinterpret_cast<__m128i*>(row + ldc), second);
    return;
  }
  alignas(16) uint8_t tmp[2][16];
  _mm_store_si128(reinterpret_cast<__m128i*>(tmp[0]), first);
  _mm_store_si128(reinterpret_cast<__m128i*>(tmp[1]), second);
  std::memcpy(row, tmp[0], cols);
  if (two_rows) std::memcpy(row + ldc, tmp[1], cols);
}

}  // namespace
}  // namespace avx2
}  // namespace lowp
