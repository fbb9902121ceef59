// NEON fixed-point helpers on 4 int32 lanes (aarch64). SQRDMULH computes
// (2ab + 2^31) >> 32 with saturation, which is exactly gemmlowp's
// SaturatingRoundingDoublingHighMul; SRSHL rounds ties up, so negative
// values are first moved down by one (saturating) to round ties away from
// zero, the same fixup gemmlowp's NEON RoundingDivideByPOT uses.
#pragma once

#include <arm_neon.h>

namespace lowp {
namespace neon {

// neg_right = -max(-shift, 0) (so <= 0); left = max(shift, 0).
static inline int32x4_t mulquant(int32x4_t x, int32x4_t m, int32x4_t left, int32x4_t neg_right) {
  const int32x4_t scaled = vqrdmulhq_s32(vqshlq_s32(x, left), m);
  // -1 where scaled < 0 and a right shift happens, else 0.
  const int32x4_t fixup = vshrq_n_s32(vandq_s32(scaled, neg_right), 31);
  return vrshlq_s32(vqaddq_s32(scaled, fixup), neg_right);
}

static inline int32x4_t clamp_add(int32x4_t v, int32x4_t lo, int32x4_t hi, int32x4_t zero_point) {
  return vaddq_s32(vminq_s32(vmaxq_s32(v, lo), hi), zero_point);
}

// Four vectors of values in [0, 255] -> 16 bytes in order.
static inline uint8x16_t pack_u8(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
  const uint16x8_t ab = vcombine_u16(vqmovun_s32(a), vqmovun_s32(b));
  const uint16x8_t cd = vcombine_u16(vqmovun_s32(c), vqmovun_s32(d));
  return vcombine_u8(vqmovn_u16(ab), vqmovn_u16(cd));
}

}  // namespace neon
}  // namespace lowp
