// AVX-512 fixed-point helpers on 16 int32 lanes (zmm). Only for translation
// units compiled for AVX-512 F/BW/VL (cpp/src/avx512_vnni/), or for their
// SIMDe test build (LOWP_SIMDE, see x86/intrin.h). Bit-identical to
// fixedpoint_scalar.h and avx2/fixedpoint_avx2.h for every input.
//
// srdhm as (p + 2^30) >> 31 (floor): for a nonnegative multiplier it lands
// on gemmlowp's truncated (p + nudge) / 2^31 for every product; see
// fixedpoint_avx2.h. INT32_MIN * INT32_MIN cannot occur (m >= 0).
//
// SIMDe 0.7 has no 512-bit srai_epi32 / srav_epi32: the SIMDe build forms
// the sign as 0 - (x >>> 31) and the arithmetic shift as
// ~((~x) >>> e) on negative lanes (x ^ s, logical shift, ^ s with s the sign
// mask), the same integers. Compares go through k-masks only where SIMDe
// has the mask form (cmpeq/cmpgt_epi32_mask, mask_blend_epi32); the rounding
// step needs none: remainder > threshold is the sign bit of
// threshold - remainder, both in [0, 2^31).
#pragma once

#include <cstddef>
#include <cstdint>

#include "../kernels.h"
#include "../x86/intrin.h"

namespace lowp {
namespace LOWP_ISA_NS {
namespace avx512 {

// -1 in lanes where x < 0, else 0.
static inline __m512i sign_mask(__m512i x) {
#if defined(LOWP_SIMDE)
  return _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_srli_epi32(x, 31));
#else
  return _mm512_srai_epi32(x, 31);
#endif
}

// Arithmetic right shift by a per-lane count in [0, 31].
static inline __m512i srav(__m512i x, __m512i count) {
#if defined(LOWP_SIMDE)
  const __m512i s = sign_mask(x);
  return _mm512_xor_si512(_mm512_srlv_epi32(_mm512_xor_si512(x, s), count), s);
#else
  return _mm512_srav_epi32(x, count);
#endif
}

// x * 2^left saturated to int32, for 0 <= left <= 30 per lane.
static inline __m512i saturating_left_shift(__m512i x, __m512i left) {
  const __m512i shifted = _mm512_sllv_epi32(x, left);
  const auto fits = _mm512_cmpeq_epi32_mask(srav(shifted, left), x);
  // x < 0 -> INT32_MIN, else INT32_MAX.
  const __m512i saturated = _mm512_xor_si512(sign_mask(x), _mm512_set1_epi32(INT32_MAX));
  return _mm512_mask_blend_epi32(fits, saturated, shifted);
}

// srdhm(x, m) for m >= 0; m_odd is m shifted down by 32 bits (the odd lanes'
// multipliers where _mm512_mul_epi32 reads them), hoisted by callers that
// reuse m.
static inline __m512i srdhm_nonneg(__m512i x, __m512i m, __m512i m_odd) {
  const __m512i nudge = _mm512_set1_epi64(int64_t{1} << 30);
  const __m512i even = _mm512_add_epi64(_mm512_mul_epi32(x, m), nudge);
  const __m512i odd = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), m_odd), nudge);
  // Bits 31..62 of each product: shifted down in even lanes, up into the
  // high half in odd lanes.
  return _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 31), _mm512_slli_epi64(odd, 1));
}

// RoundingDivideByPOT with a per-lane exponent in [0, 31]; mask is
// (1 << exponent) - 1 and half is mask >> 1.
static inline __m512i rdivpot(__m512i x, __m512i exponent, __m512i mask, __m512i half) {
  const __m512i remainder = _mm512_and_si512(x, mask);
  // threshold = half + (x < 0), in [0, 2^30]; remainder in [0, 2^31 - 1].
  const __m512i threshold = _mm512_sub_epi32(half, sign_mask(x));
  // remainder > threshold <=> threshold - remainder < 0 (no overflow).
  const __m512i round_up = _mm512_srli_epi32(_mm512_sub_epi32(threshold, remainder), 31);
  return _mm512_add_epi32(srav(x, exponent), round_up);
}

// Per-lane parameters of multiply_by_quantized_multiplier, in the forms the
// steps above take.
struct MulQuantLanes16 {
  __m512i m, m_odd, left, right, mask, half;
};

static inline MulQuantLanes16 broadcast_lanes16(int32_t m, int32_t shift) {
  const int32_t right = shift < 0 ? -shift : 0;
  const int32_t mask = static_cast<int32_t>((uint32_t{1} << right) - 1u);
  return {
      _mm512_set1_epi32(m),     _mm512_set1_epi32(m),    _mm512_set1_epi32(shift > 0 ? shift : 0),
      _mm512_set1_epi32(right), _mm512_set1_epi32(mask), _mm512_set1_epi32(mask >> 1)};
}

// Lanes for channels [c, c + 16) of per-channel tables (ChannelParams).
static inline MulQuantLanes16 load_lanes16(const ChannelParams& ch, size_t c) {
  const auto load = [](const int32_t* p) {
    return _mm512_loadu_si512(static_cast<const void*>(p));
  };
  const __m512i m = load(ch.multiplier + c);
  return {m,
          _mm512_srli_epi64(m, 32),
          load(ch.left + c),
          load(ch.right + c),
          load(ch.round_mask + c),
          load(ch.round_half + c)};
}

// Lanes for the 16 elements starting at element index i of a tensor whose
// tables repeat with ch.period (period 1: broadcast; else i % period must
// leave 16 entries, as the padded GEMM tables do).
static inline MulQuantLanes16 channel_lanes16(const ChannelParams& ch, size_t i) {
  if (ch.period == 1) return broadcast_lanes16(ch.multiplier[0], ch.shift[0]);
  return load_lanes16(ch, i % ch.period);
}

// kLeft / kRight: whether any lane shifts left / right. Without them the
// step is an identity and is skipped: most layers only shift right.
template <bool kLeft, bool kRight>
static inline __m512i mulquant(__m512i x, const MulQuantLanes16& p) {
  if (kLeft) x = saturating_left_shift(x, p.left);
  x = srdhm_nonneg(x, p.m, p.m_odd);
  if (kRight) x = rdivpot(x, p.right, p.mask, p.half);
  return x;
}

// Lanes for channels [c, c + 16), c an index into the tables as they are
// (no wrap; period 1: broadcast). The direct convolutions' channels.
static inline MulQuantLanes16 lanes16_at(const ChannelParams& ch, size_t c) {
  if (ch.period == 1) return broadcast_lanes16(ch.multiplier[0], ch.shift[0]);
  return load_lanes16(ch, c);
}

// mulquant with the shifts the tables hold (ch.any_left / ch.any_right).
static inline __m512i requant16(__m512i v, const ChannelParams& ch, const MulQuantLanes16& l) {
  if (ch.any_left) return ch.any_right ? mulquant<true, true>(v, l) : mulquant<true, false>(v, l);
  return ch.any_right ? mulquant<false, true>(v, l) : mulquant<false, false>(v, l);
}

// Output stage: int32 lanes v -> bytes clamp(v + zero_point, qmin, qmax),
// for 0 <= qmin <= qmax <= 255 and a zero point in [0, 255] (int16 range
// suffices). Saturating to int16 (packs), adding the zero point with int16
// saturation (adds), saturating to uint8 (packus) and clamping the bytes
// gives exactly the clamp of the exact sum: a saturation only happens where
// the exact value lies outside [0, 255] on the same side, where the byte
// clamp lands on qmin or qmax anyway (as avx2::OutputClamp).
struct OutputClamp16 {
  __m512i zero_point16, qmin8, qmax8;
  OutputClamp16(int32_t zero_point, int32_t qmin, int32_t qmax)
      : zero_point16(_mm512_set1_epi16(static_cast<int16_t>(zero_point))),
        qmin8(_mm512_set1_epi8(static_cast<char>(qmin))),
        qmax8(_mm512_set1_epi8(static_cast<char>(qmax))) {}

  // Four vectors of 16 lanes -> 64 bytes in order (a0..a15 b0..b15 c.. d..).
  inline __m512i operator()(__m512i a, __m512i b, __m512i c, __m512i d) const {
    // Per 128-bit lane L: words a[4L..4L+3] b[4L..4L+3]; bytes then
    // a[4L..] b[4L..] c[4L..] d[4L..]: dword 4L + {0, 1, 2, 3}.
    const __m512i ab = _mm512_adds_epi16(_mm512_packs_epi32(a, b), zero_point16);
    const __m512i cd = _mm512_adds_epi16(_mm512_packs_epi32(c, d), zero_point16);
    const __m512i bytes = _mm512_permutexvar_epi32(
        _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15),
        _mm512_packus_epi16(ab, cd));
    return _mm512_min_epu8(_mm512_max_epu8(bytes, qmin8), qmax8);
  }

  // One vector of 16 lanes -> 16 bytes in order.
  inline __m128i operator()(__m512i a) const { return _mm512_castsi512_si128((*this)(a, a, a, a)); }
};

}  // namespace avx512
}  // namespace LOWP_ISA_NS
}  // namespace lowp
