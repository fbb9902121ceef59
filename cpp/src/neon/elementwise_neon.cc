// NEON path for the elementwise kernels: 16 elements per step; tails take
// the scalar definition.
#include <arm_neon.h>

#include <cstring>

#include "../fixedpoint_scalar.h"
#include "../gemm.h"
#include "../paths.h"
#include "fixedpoint_neon.h"
#include "kernels_neon.h"

namespace lowp {
namespace {

struct Lanes {
  int32x4_t m, left, neg_right;
};

inline Lanes load_lanes(const lowp::ChannelParams& ch, size_t c) {
  return {vld1q_s32(ch.multiplier + c), vld1q_s32(ch.left + c), vnegq_s32(vld1q_s32(ch.right + c))};
}

inline Lanes broadcast_lanes(int32_t multiplier, int32_t shift) {
  return {vdupq_n_s32(multiplier), vdupq_n_s32(shift > 0 ? shift : 0),
          vdupq_n_s32(shift < 0 ? shift : 0)};
}

struct OutputStage {
  int32x4_t lo, hi, zero_point;
  inline int32x4_t operator()(int32x4_t acc, const Lanes& p) const {
    return neon::clamp_add(neon::mulquant(acc, p.m, p.left, p.neg_right), lo, hi, zero_point);
  }
};

// 16 elements from channel c on (unless kPerTensor).
template <bool kPerTensor>
inline uint8x16_t requant16(const int32_t* acc, const ChannelParams& ch, size_t c,
                            const Lanes& tensor_lanes, const OutputStage& stage) {
  int32x4_t v[4];
  for (int k = 0; k < 4; ++k) {
    const Lanes p = kPerTensor ? tensor_lanes : load_lanes(ch, c + 4 * k);
    v[k] = stage(vld1q_s32(acc + 4 * k), p);
  }
  return neon::pack_u8(v[0], v[1], v[2], v[3]);
}

// acc[0, len): per tensor, or one row of channels starting at channel 0.
// Tails take the scalar definition, bit-identical by construction.
template <bool kPerTensor>
void requant_run(const int32_t* acc, size_t len, const ChannelParams& ch, const Lanes& lanes,
                 const OutputStage& stage, int32_t zero_point, int32_t qmin, int32_t qmax,
                 uint8_t* out) {
  size_t j = 0;
  for (; j + 16 <= len; j += 16) {
    vst1q_u8(out + j, requant16<kPerTensor>(acc + j, ch, j, lanes, stage));
  }
  for (; j < len; ++j) {
    const size_t c = kPerTensor ? 0 : j;
    out[j] =
        fixedpoint::requantize_one(acc[j], ch.multiplier[c], ch.shift[c], zero_point, qmin, qmax);
  }
}

void requant_q31_u8_neon(const int32_t* acc, size_t n, const ChannelParams& ch, int32_t zero_point,
                         int32_t qmin, int32_t qmax, uint8_t* out) {
  const OutputStage stage = {vdupq_n_s32(qmin - zero_point), vdupq_n_s32(qmax - zero_point),
                             vdupq_n_s32(zero_point)};
  if (ch.period == 1) {
    const Lanes lanes = broadcast_lanes(ch.multiplier[0], ch.shift[0]);
    requant_run<true>(acc, n, ch, lanes, stage, zero_point, qmin, qmax, out);
    return;
  }
  const Lanes unused = broadcast_lanes(0, 0);
  for (size_t i = 0; i < n; i += ch.period) {
    const size_t len = n - i < ch.period ? n - i : ch.period;
    requant_run<false>(acc + i, len, ch, unused, stage, zero_point, qmin, qmax, out + i);
  }
}

template <bool kPerTensor>
void mulquant_run(const int32_t* x, size_t len, const ChannelParams& ch, const Lanes& lanes,
                  int32_t* out) {
  size_t j = 0;
  for (; j + 4 <= len; j += 4) {
    const Lanes p = kPerTensor ? lanes : load_lanes(ch, j);
    vst1q_s32(out + j, neon::mulquant(vld1q_s32(x + j), p.m, p.left, p.neg_right));
  }
  for (; j < len; ++j) {
    const size_t c = kPerTensor ? 0 : j;
    out[j] = fixedpoint::multiply_by_quantized_multiplier(x[j], ch.multiplier[c], ch.shift[c]);
  }
}

void mulquant_q31_s32_neon(const int32_t* x, size_t n, const ChannelParams& ch, int32_t* out) {
  if (ch.period == 1) {
    mulquant_run<true>(x, n, ch, broadcast_lanes(ch.multiplier[0], ch.shift[0]), out);
    return;
  }
  const Lanes unused = broadcast_lanes(0, 0);
  for (size_t i = 0; i < n; i += ch.period) {
    const size_t len = n - i < ch.period ? n - i : ch.period;
    mulquant_run<false>(x + i, len, ch, unused, out + i);
  }
}

bool quantize_f32_u8_neon(const float* x, size_t n, float scale, float zero_point, float qmin,
                          float qmax, uint8_t flip, uint8_t* out) {
  const float32x4_t vscale = vdupq_n_f32(scale), vzp = vdupq_n_f32(zero_point);
  const float32x4_t lo = vdupq_n_f32(qmin), hi = vdupq_n_f32(qmax);
  const uint8x16_t flip_bytes = vdupq_n_u8(flip);
  uint32x4_t ordered = vdupq_n_u32(~0u);
  auto one = [&](const float* p) {
    const float32x4_t q = vrndnq_f32(vdivq_f32(vld1q_f32(p), vscale));  // ties to even
    ordered = vandq_u32(ordered, vceqq_f32(q, q));
    return vcvtq_s32_f32(vminq_f32(vmaxq_f32(vaddq_f32(q, vzp), lo), hi));
  };
  for (size_t i = 0; i < n; i += 16) {
    const size_t rest = n - i < 16 ? n - i : 16;
    float a[16] = {0};
    const float* src = x + i;
    if (rest < 16) {
      std::memcpy(a, src, rest * sizeof(float));
      src = a;
    }
    const uint8x16_t packed =
        veorq_u8(neon::pack_u8(one(src), one(src + 4), one(src + 8), one(src + 12)), flip_bytes);
    if (rest == 16) {
      vst1q_u8(out + i, packed);
    } else {
      uint8_t o[16];
      vst1q_u8(o, packed);
      std::memcpy(out + i, o, rest);
    }
  }
  return vminvq_u32(ordered) != 0;
}

}  // namespace

namespace native {

const PathEntry& path_entry_neon() {
  static const PathEntry entry = {"neon",
                                  10,
                                  kFeatureNeon,
                                  "scalar",
                                  {requant_q31_u8_neon, mulquant_q31_s32_neon, quantize_f32_u8_neon,
                                   &neon_gemm_kernel(), nullptr}};
  return entry;
}

}  // namespace native
}  // namespace lowp
