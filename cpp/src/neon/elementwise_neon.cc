// NEON path for the elementwise kernels: 16 elements per step, then a tail
// done in a zero-padded 16-lane buffer with the same vector code.
#include <arm_neon.h>

#include <cstring>

#include "../kernels.h"
#include "fixedpoint_neon.h"

namespace lowp {
namespace {

struct ChannelParams {
  int32x4_t m, left, neg_right;
};

inline ChannelParams load_params(const int32_t* multiplier, const int32_t* shift) {
  const int32x4_t s = vld1q_s32(shift);
  const int32x4_t zero = vdupq_n_s32(0);
  return {vld1q_s32(multiplier), vmaxq_s32(s, zero), vminq_s32(s, zero)};
}

inline ChannelParams broadcast_params(int32_t multiplier, int32_t shift) {
  return {vdupq_n_s32(multiplier), vdupq_n_s32(shift > 0 ? shift : 0),
          vdupq_n_s32(shift < 0 ? shift : 0)};
}

struct OutputStage {
  int32x4_t lo, hi, zero_point;
  inline int32x4_t operator()(int32x4_t acc, const ChannelParams& p) const {
    return neon::clamp_add(neon::mulquant(acc, p.m, p.left, p.neg_right), lo, hi, zero_point);
  }
};

// 16 elements; params for each lane group come from `multiplier`/`shift`
// unless kPerTensor.
template <bool kPerTensor>
inline uint8x16_t requant16(const int32_t* acc, const int32_t* multiplier, const int32_t* shift,
                            const ChannelParams& tensor_params, const OutputStage& stage) {
  int32x4_t v[4];
  for (int k = 0; k < 4; ++k) {
    const ChannelParams p =
        kPerTensor ? tensor_params : load_params(multiplier + 4 * k, shift + 4 * k);
    v[k] = stage(vld1q_s32(acc + 4 * k), p);
  }
  return neon::pack_u8(v[0], v[1], v[2], v[3]);
}

template <bool kPerTensor>
void requant_run(const int32_t* acc, size_t len, const int32_t* multiplier, const int32_t* shift,
                 const ChannelParams& tensor_params, const OutputStage& stage, uint8_t* out) {
  size_t j = 0;
  for (; j + 16 <= len; j += 16) {
    vst1q_u8(out + j,
             requant16<kPerTensor>(acc + j, kPerTensor ? nullptr : multiplier + j,
                                   kPerTensor ? nullptr : shift + j, tensor_params, stage));
  }
  if (j < len) {
    const size_t rest = len - j;
    int32_t a[16] = {0}, m[16] = {0}, s[16] = {0};
    uint8_t o[16];
    std::memcpy(a, acc + j, rest * sizeof(int32_t));
    if (!kPerTensor) {
      std::memcpy(m, multiplier + j, rest * sizeof(int32_t));
      std::memcpy(s, shift + j, rest * sizeof(int32_t));
    }
    vst1q_u8(o, requant16<kPerTensor>(a, m, s, tensor_params, stage));
    std::memcpy(out + j, o, rest);
  }
}

void requant_q31_u8_neon(const int32_t* acc, size_t n, const int32_t* multiplier,
                         const int32_t* shift, size_t period, int32_t zero_point, int32_t qmin,
                         int32_t qmax, uint8_t* out) {
  const OutputStage stage = {vdupq_n_s32(qmin - zero_point), vdupq_n_s32(qmax - zero_point),
                             vdupq_n_s32(zero_point)};
  if (period == 1) {
    requant_run<true>(acc, n, nullptr, nullptr, broadcast_params(multiplier[0], shift[0]), stage,
                      out);
    return;
  }
  const ChannelParams unused = broadcast_params(0, 0);
  for (size_t i = 0; i < n; i += period) {
    const size_t len = n - i < period ? n - i : period;
    requant_run<false>(acc + i, len, multiplier, shift, unused, stage, out + i);
  }
}

template <bool kPerTensor>
void mulquant_run(const int32_t* x, size_t len, const int32_t* multiplier, const int32_t* shift,
                  const ChannelParams& tensor_params, int32_t* out) {
  size_t j = 0;
  for (; j + 4 <= len; j += 4) {
    const ChannelParams p = kPerTensor ? tensor_params : load_params(multiplier + j, shift + j);
    vst1q_s32(out + j, neon::mulquant(vld1q_s32(x + j), p.m, p.left, p.neg_right));
  }
  if (j < len) {
    const size_t rest = len - j;
    int32_t a[4] = {0}, m[4] = {0}, s[4] = {0}, o[4];
    std::memcpy(a, x + j, rest * sizeof(int32_t));
    if (!kPerTensor) {
      std::memcpy(m, multiplier + j, rest * sizeof(int32_t));
      std::memcpy(s, shift + j, rest * sizeof(int32_t));
    }
    const ChannelParams p = kPerTensor ? tensor_params : load_params(m, s);
    vst1q_s32(o, neon::mulquant(vld1q_s32(a), p.m, p.left, p.neg_right));
    std::memcpy(out + j, o, rest * sizeof(int32_t));
  }
}

void mulquant_q31_s32_neon(const int32_t* x, size_t n, const int32_t* multiplier,
                           const int32_t* shift, size_t period, int32_t* out) {
  if (period == 1) {
    mulquant_run<true>(x, n, nullptr, nullptr, broadcast_params(multiplier[0], shift[0]), out);
    return;
  }
  const ChannelParams unused = broadcast_params(0, 0);
  for (size_t i = 0; i < n; i += period) {
    const size_t len = n - i < period ? n - i : period;
    mulquant_run<false>(x + i, len, multiplier, shift, unused, out + i);
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

const KernelTable& neon_kernels() {
  static const KernelTable table = {requant_q31_u8_neon, mulquant_q31_s32_neon,
                                    quantize_f32_u8_neon};
  return table;
}

// The dot-product extension changes only the GEMM kernels; the elementwise
// kernels of the neon_dot path are the NEON ones.
const KernelTable& neon_dot_kernels() { return neon_kernels(); }

}  // namespace lowp
