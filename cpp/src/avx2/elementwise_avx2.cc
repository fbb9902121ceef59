// AVX2 path for the elementwise kernels: requantize, multiply by quantized
// multiplier, float32 quantize. Requantize runs 32 elements per step (four
// vectors packed to one 32-byte store); short tails use the scalar
// definition, which is bit-identical by construction. Each kernel is
// instantiated for the shift directions present, so the common right-shift-
// only layer pays nothing for the saturating left shift.
#include <immintrin.h>

#include <cstring>

#include "../conv_direct.h"
#include "../fixedpoint_scalar.h"
#include "../gemm.h"
#include "../paths.h"
#include "fixedpoint_avx2.h"
#include "kernels_avx2.h"

namespace lowp {
namespace {

using avx2::MulQuantLanes;

inline __m256i load8(const int32_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// Requantizes acc[0, len): per tensor (kPerTensor, `lanes` used everywhere)
// or one row of channels starting at channel 0. A tail of less than 32
// elements takes the scalar definition.
template <bool kPerTensor, bool kLeft, bool kRight>
void requant_run(const int32_t* acc, size_t len, const ChannelParams& ch,
                 const MulQuantLanes& lanes, const avx2::OutputClamp& clamp, int32_t zero_point,
                 int32_t qmin, int32_t qmax, uint8_t* out) {
  size_t j = 0;
  for (; j + 32 <= len; j += 32) {
    __m256i v[4];
    for (int k = 0; k < 4; ++k) {
      v[k] = avx2::mulquant<kLeft, kRight>(load8(acc + j + 8 * k),
                                           kPerTensor ? lanes : avx2::load_lanes(ch, j + 8 * k));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), clamp(v[0], v[1], v[2], v[3]));
  }
  for (; j < len; ++j) {
    const size_t c = kPerTensor ? 0 : j;
    out[j] =
        fixedpoint::requantize_one(acc[j], ch.multiplier[c], ch.shift[c], zero_point, qmin, qmax);
  }
}

template <bool kLeft, bool kRight>
void requant_rows(const int32_t* acc, size_t n, const ChannelParams& ch, int32_t zero_point,
                  int32_t qmin, int32_t qmax, uint8_t* out) {
  const avx2::OutputClamp clamp(zero_point, qmin, qmax);
  if (ch.period == 1) {
    const MulQuantLanes lanes = avx2::broadcast_lanes(ch.multiplier[0], ch.shift[0]);
    requant_run<true, kLeft, kRight>(acc, n, ch, lanes, clamp, zero_point, qmin, qmax, out);
    return;
  }
  const MulQuantLanes unused = avx2::broadcast_lanes(0, 0);
  for (size_t i = 0; i < n; i += ch.period) {
    const size_t len = n - i < ch.period ? n - i : ch.period;
    requant_run<false, kLeft, kRight>(acc + i, len, ch, unused, clamp, zero_point, qmin, qmax,
                                      out + i);
  }
}

void requant_q31_u8_avx2(const int32_t* acc, size_t n, const ChannelParams& ch, int32_t zero_point,
                         int32_t qmin, int32_t qmax, uint8_t* out) {
  if (ch.any_left && ch.any_right) {
    requant_rows<true, true>(acc, n, ch, zero_point, qmin, qmax, out);
  } else if (ch.any_left) {
    requant_rows<true, false>(acc, n, ch, zero_point, qmin, qmax, out);
  } else if (ch.any_right) {
    requant_rows<false, true>(acc, n, ch, zero_point, qmin, qmax, out);
  } else {
    requant_rows<false, false>(acc, n, ch, zero_point, qmin, qmax, out);
  }
}

template <bool kPerTensor, bool kLeft, bool kRight>
void mulquant_run(const int32_t* x, size_t len, const ChannelParams& ch, const MulQuantLanes& lanes,
                  int32_t* out) {
  size_t j = 0;
  for (; j + 8 <= len; j += 8) {
    _mm256_storeu_si256(
        reinterpret_cast<__m256i*>(out + j),
        avx2::mulquant<kLeft, kRight>(load8(x + j), kPerTensor ? lanes : avx2::load_lanes(ch, j)));
  }
  for (; j < len; ++j) {
    const size_t c = kPerTensor ? 0 : j;
    out[j] = fixedpoint::multiply_by_quantized_multiplier(x[j], ch.multiplier[c], ch.shift[c]);
  }
}

template <bool kLeft, bool kRight>
void mulquant_rows(const int32_t* x, size_t n, const ChannelParams& ch, int32_t* out) {
  if (ch.period == 1) {
    const MulQuantLanes lanes = avx2::broadcast_lanes(ch.multiplier[0], ch.shift[0]);
    mulquant_run<true, kLeft, kRight>(x, n, ch, lanes, out);
    return;
  }
  const MulQuantLanes unused = avx2::broadcast_lanes(0, 0);
  for (size_t i = 0; i < n; i += ch.period) {
    const size_t len = n - i < ch.period ? n - i : ch.period;
    mulquant_run<false, kLeft, kRight>(x + i, len, ch, unused, out + i);
  }
}

void mulquant_q31_s32_avx2(const int32_t* x, size_t n, const ChannelParams& ch, int32_t* out) {
  if (ch.any_left && ch.any_right) {
    mulquant_rows<true, true>(x, n, ch, out);
  } else if (ch.any_left) {
    mulquant_rows<true, false>(x, n, ch, out);
  } else if (ch.any_right) {
    mulquant_rows<false, true>(x, n, ch, out);
  } else {
    mulquant_rows<false, false>(x, n, ch, out);
  }
}

struct QuantizeStage {
  __m256 scale, zero_point, lo, hi;
  // Integer-valued floats; NaN lanes are or-ed into *nan.
  inline __m256i operator()(const float* x, __m256* nan) const {
    const __m256 q = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(x), scale),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    *nan = _mm256_or_ps(*nan, _mm256_cmp_ps(q, q, _CMP_UNORD_Q));
    const __m256 c = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(q, zero_point), lo), hi);
    return _mm256_cvtps_epi32(c);
  }
};

bool quantize_f32_u8_avx2(const float* x, size_t n, float scale, float zero_point, float qmin,
                          float qmax, uint8_t flip, uint8_t* out) {
  const QuantizeStage stage = {_mm256_set1_ps(scale), _mm256_set1_ps(zero_point),
                               _mm256_set1_ps(qmin), _mm256_set1_ps(qmax)};
  const __m256i flip_bytes = _mm256_set1_epi8(static_cast<char>(flip));
  __m256 nan = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i packed = avx2::pack_u8(stage(x + i, &nan), stage(x + i + 8, &nan),
                                         stage(x + i + 16, &nan), stage(x + i + 24, &nan));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_xor_si256(packed, flip_bytes));
  }
  for (; i < n; i += 8) {
    const size_t rest = n - i < 8 ? n - i : 8;
    alignas(32) float a[8] = {0};
    alignas(8) uint8_t o[8];
    std::memcpy(a, x + i, rest * sizeof(float));
    const __m256i v = stage(a, &nan);
    const __m256i packed = _mm256_xor_si256(avx2::pack_u8(v, v, v, v), flip_bytes);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(o), _mm256_castsi256_si128(packed));
    std::memcpy(out + i, o, rest);
  }
  return _mm256_movemask_ps(nan) == 0;
}

}  // namespace

namespace native {

// AVX2 + FMA: every kernel of the table.
const PathEntry& path_entry_avx2() {
  static const PathEntry entry = {
      "avx2",
      10,
      kFeatureAvx2,
      "scalar",
      {requant_q31_u8_avx2, mulquant_q31_s32_avx2, quantize_f32_u8_avx2, &avx2_gemm_kernel(),
       &avx2_direct_conv_kernel(), nullptr, &avx2_direct_deconv_kernel()}};
  return entry;
}

}  // namespace native
}  // namespace lowp
