// Output stage of the NEON GEMM microkernels, on an 8x8 tile of uint32
// sums held as acc[row][half] (columns 0-3 and 4-7). Full tiles are finished
// in registers; edge tiles go through the scalar definition.
#pragma once

#include <arm_neon.h>

#include "../gemm.h"
#include "fixedpoint_neon.h"

namespace lowp {
namespace neon {

static inline void gemm_store_8x8(uint32x4_t acc[8][2], int32_t* acc_out, const GemmTileOut* out) {
  if (acc_out != nullptr) {
    for (int i = 0; i < 8; ++i) {
      vst1q_s32(acc_out + 8 * i, vreinterpretq_s32_u32(acc[i][0]));
      vst1q_s32(acc_out + 8 * i + 4, vreinterpretq_s32_u32(acc[i][1]));
    }
    return;
  }
  if (out->rows < 8 || out->cols < 8) {
    uint32_t tile[8][8];
    for (int i = 0; i < 8; ++i) {
      vst1q_u32(tile[i], acc[i][0]);
      vst1q_u32(tile[i] + 4, acc[i][1]);
    }
    for (size_t i = 0; i < out->rows; ++i)
      for (size_t j = 0; j < out->cols; ++j) gemm_store_one(*out, i, j, tile[i][j]);
    return;
  }
  const uint32x4_t offset[2] = {vreinterpretq_u32_s32(vld1q_s32(out->col_offset)),
                                vreinterpretq_u32_s32(vld1q_s32(out->col_offset + 4))};
  const uint32x4_t bzp[2] = {vreinterpretq_u32_s32(vld1q_s32(out->b_zero_point)),
                             vreinterpretq_u32_s32(vld1q_s32(out->b_zero_point + 4))};
  int32x4_t v[8][2];
  for (int i = 0; i < 8; ++i) {
    const uint32_t rowsum = static_cast<uint32_t>(out->rowsum[i]);
    for (int h = 0; h < 2; ++h) {
      v[i][h] = vreinterpretq_s32_u32(vmlsq_n_u32(vaddq_u32(acc[i][h], offset[h]), bzp[h], rowsum));
    }
  }
  if (out->requant == nullptr) {
    int32_t* c = static_cast<int32_t*>(out->c);
    for (int i = 0; i < 8; ++i) {
      vst1q_s32(c + i * out->ldc, v[i][0]);
      vst1q_s32(c + i * out->ldc + 4, v[i][1]);
    }
    return;
  }
  const ChannelParams& rq = *out->requant;
  int32x4_t m[2], left[2], neg_right[2];
  for (int h = 0; h < 2; ++h) {
    const size_t ch = rq.period == 1 ? 0 : out->requant_column + 4 * h;
    m[h] = rq.period == 1 ? vdupq_n_s32(rq.multiplier[0]) : vld1q_s32(rq.multiplier + ch);
    left[h] = rq.period == 1 ? vdupq_n_s32(rq.left[0]) : vld1q_s32(rq.left + ch);
    neg_right[h] = vnegq_s32(rq.period == 1 ? vdupq_n_s32(rq.right[0]) : vld1q_s32(rq.right + ch));
  }
  const int32x4_t lo = vdupq_n_s32(out->qmin - out->zero_point);
  const int32x4_t hi = vdupq_n_s32(out->qmax - out->zero_point);
  const int32x4_t zp = vdupq_n_s32(out->zero_point);
  uint8_t* c = static_cast<uint8_t*>(out->c);
  for (int i = 0; i < 8; ++i) {
    const int32x4_t r0 = clamp_add(mulquant(v[i][0], m[0], left[0], neg_right[0]), lo, hi, zp);
    const int32x4_t r1 = clamp_add(mulquant(v[i][1], m[1], left[1], neg_right[1]), lo, hi, zp);
    const uint16x8_t narrow = vcombine_u16(vqmovun_s32(r0), vqmovun_s32(r1));
    vst1_u8(c + i * out->ldc, vqmovn_u16(narrow));
  }
}

static inline void gemm_load_8x8(uint32x4_t acc[8][2], const int32_t* acc_in) {
  for (int i = 0; i < 8; ++i) {
    acc[i][0] = acc_in ? vreinterpretq_u32_s32(vld1q_s32(acc_in + 8 * i)) : vdupq_n_u32(0);
    acc[i][1] = acc_in ? vreinterpretq_u32_s32(vld1q_s32(acc_in + 8 * i + 4)) : vdupq_n_u32(0);
  }
}

}  // namespace neon
}  // namespace lowp
