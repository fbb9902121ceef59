// AVX2 path for the elementwise kernels: requantize, multiply by quantized
// multiplier, float32 quantize. 32 elements per step (four vectors packed to
// one 32-byte store), then 8, then a tail done in a zero-padded 8-lane buffer
// with the same vector code, so the tail cannot round differently.
#include <immintrin.h>

#include <cstring>

#include "../kernels.h"
#include "fixedpoint_avx2.h"

namespace lowp {
namespace {

struct ChannelParams {
  __m256i m, left, right;
};

inline ChannelParams load_params(const int32_t* multiplier, const int32_t* shift) {
  const __m256i s = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(shift));
  const __m256i zero = _mm256_setzero_si256();
  return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(multiplier)),
          _mm256_max_epi32(s, zero), _mm256_max_epi32(_mm256_sub_epi32(zero, s), zero)};
}

inline ChannelParams broadcast_params(int32_t multiplier, int32_t shift) {
  return {_mm256_set1_epi32(multiplier), _mm256_set1_epi32(shift > 0 ? shift : 0),
          _mm256_set1_epi32(shift < 0 ? -shift : 0)};
}

inline __m256i load8(const int32_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

struct OutputStage {
  __m256i lo, hi, zero_point;
  inline __m256i operator()(__m256i acc, const ChannelParams& p) const {
    return avx2::clamp_add(avx2::mulquant(acc, p.m, p.left, p.right), lo, hi, zero_point);
  }
};

inline void store8_u8(uint8_t* out, __m256i v) {
  const __m256i packed = avx2::pack_u8(v, v, v, v);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(packed));
}

// Elements [0, len) of one period-long row (or of a per-tensor run when
// per_tensor is set, in which case `params` is used for every lane).
template <bool kPerTensor>
void requant_run(const int32_t* acc, size_t len, const int32_t* multiplier, const int32_t* shift,
                 const ChannelParams& tensor_params, const OutputStage& stage, uint8_t* out) {
  size_t j = 0;
  for (; j + 32 <= len; j += 32) {
    __m256i v[4];
    for (int k = 0; k < 4; ++k) {
      const ChannelParams p =
          kPerTensor ? tensor_params : load_params(multiplier + j + 8 * k, shift + j + 8 * k);
      v[k] = stage(load8(acc + j + 8 * k), p);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), avx2::pack_u8(v[0], v[1], v[2], v[3]));
  }
  for (; j + 8 <= len; j += 8) {
    const ChannelParams p = kPerTensor ? tensor_params : load_params(multiplier + j, shift + j);
    store8_u8(out + j, stage(load8(acc + j), p));
  }
  if (j < len) {
    const size_t rest = len - j;
    alignas(32) int32_t a[8] = {0}, m[8] = {0}, s[8] = {0};
    alignas(8) uint8_t o[8];
    std::memcpy(a, acc + j, rest * sizeof(int32_t));
    if (!kPerTensor) {
      std::memcpy(m, multiplier + j, rest * sizeof(int32_t));
      std::memcpy(s, shift + j, rest * sizeof(int32_t));
    }
    const ChannelParams p = kPerTensor ? tensor_params : load_params(m, s);
    store8_u8(o, stage(load8(a), p));
    std::memcpy(out + j, o, rest);
  }
}

void requant_q31_u8_avx2(const int32_t* acc, size_t n, const int32_t* multiplier,
                         const int32_t* shift, size_t period, int32_t zero_point, int32_t qmin,
                         int32_t qmax, uint8_t* out) {
  const OutputStage stage = {_mm256_set1_epi32(qmin - zero_point),
                             _mm256_set1_epi32(qmax - zero_point), _mm256_set1_epi32(zero_point)};
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
  for (; j + 8 <= len; j += 8) {
    const ChannelParams p = kPerTensor ? tensor_params : load_params(multiplier + j, shift + j);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j),
                        avx2::mulquant(load8(x + j), p.m, p.left, p.right));
  }
  if (j < len) {
    const size_t rest = len - j;
    alignas(32) int32_t a[8] = {0}, m[8] = {0}, s[8] = {0}, o[8];
    std::memcpy(a, x + j, rest * sizeof(int32_t));
    if (!kPerTensor) {
      std::memcpy(m, multiplier + j, rest * sizeof(int32_t));
      std::memcpy(s, shift + j, rest * sizeof(int32_t));
    }
    const ChannelParams p = kPerTensor ? tensor_params : load_params(m, s);
    _mm256_store_si256(reinterpret_cast<__m256i*>(o),
                       avx2::mulquant(load8(a), p.m, p.left, p.right));
    std::memcpy(out + j, o, rest * sizeof(int32_t));
  }
}

void mulquant_q31_s32_avx2(const int32_t* x, size_t n, const int32_t* multiplier,
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

const KernelTable& avx2_kernels() {
  static const KernelTable table = {requant_q31_u8_avx2, mulquant_q31_s32_avx2,
                                    quantize_f32_u8_avx2};
  return table;
}

}  // namespace lowp
