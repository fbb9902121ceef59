// Scalar path: the plain definitions, one element at a time. It runs on every
// CPU and is the baseline that every other path is compared against.
#include <cmath>

#include "../fixedpoint_scalar.h"
#include "../gemm.h"
#include "../paths.h"

namespace lowp {
namespace {

void requant_q31_u8_scalar(const int32_t* acc, size_t n, const ChannelParams& ch,
                           int32_t zero_point, int32_t qmin, int32_t qmax, uint8_t* out) {
  size_t c = 0;
  for (size_t i = 0; i < n; ++i) {
    out[i] =
        fixedpoint::requantize_one(acc[i], ch.multiplier[c], ch.shift[c], zero_point, qmin, qmax);
    if (++c == ch.period) c = 0;
  }
}

void mulquant_q31_s32_scalar(const int32_t* x, size_t n, const ChannelParams& ch, int32_t* out) {
  size_t c = 0;
  for (size_t i = 0; i < n; ++i) {
    out[i] = fixedpoint::multiply_by_quantized_multiplier(x[i], ch.multiplier[c], ch.shift[c]);
    if (++c == ch.period) c = 0;
  }
}

bool quantize_f32_u8_scalar(const float* x, size_t n, float scale, float zero_point, float qmin,
                            float qmax, uint8_t flip, uint8_t* out) {
  bool finite_or_inf = true;
  for (size_t i = 0; i < n; ++i) {
    float q = std::nearbyint(x[i] / scale);  // default rounding mode: half to even
    if (q != q) {
      finite_or_inf = false;
      q = 0.0f;
    }
    // Adding the zero point is exact below 2^24; above it the clamp wins anyway.
    q = q + zero_point;
    q = q < qmin ? qmin : (q > qmax ? qmax : q);
    out[i] = static_cast<uint8_t>(static_cast<int32_t>(q)) ^ flip;
  }
  return finite_or_inf;
}

}  // namespace

const PathEntry& path_entry_scalar() {
  static const PathEntry entry = {"scalar",
                                  0,
                                  0,
                                  nullptr,
                                  {requant_q31_u8_scalar, mulquant_q31_s32_scalar,
                                   quantize_f32_u8_scalar, &scalar_gemm_kernel(), nullptr}};
  return entry;
}

}  // namespace lowp
