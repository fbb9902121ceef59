// Scalar fixed-point primitives, written straight from the definitions in
// DESIGN.md section 2. Every vector path must agree with these bit for bit.
//
// The functions are `static inline` on purpose: this header is included by
// translation units compiled with different ISA flags (-mavx2, ...). With
// external linkage the linker could keep the AVX2-compiled copy of an inline
// function and call it from scalar code on a CPU without AVX2.
#pragma once

#include <cstdint>

namespace lowp {
namespace fixedpoint {

static inline int32_t srdhm(int32_t a, int32_t b) {
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  const int64_t p = static_cast<int64_t>(a) * static_cast<int64_t>(b);
  const int64_t nudge = p >= 0 ? (int64_t{1} << 30) : (1 - (int64_t{1} << 30));
  // Division truncating toward zero, as gemmlowp writes it.
  return static_cast<int32_t>((p + nudge) / (int64_t{1} << 31));
}

static inline int32_t rdivpot(int32_t x, int exponent) {
  const int32_t mask = static_cast<int32_t>((uint32_t{1} << exponent) - 1u);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static inline int32_t saturating_left_shift(int32_t x, int left) {
  const int64_t wide = static_cast<int64_t>(x) * (int64_t{1} << left);
  if (wide > INT32_MAX) return INT32_MAX;
  if (wide < INT32_MIN) return INT32_MIN;
  return static_cast<int32_t>(wide);
}

static inline int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift) {
  const int left = shift > 0 ? shift : 0;
  const int right = shift > 0 ? 0 : -shift;
  return rdivpot(srdhm(saturating_left_shift(x, left), multiplier), right);
}

// Clamp before adding the zero point: out_zp + value may not fit in int32.
static inline uint8_t requantize_one(int32_t acc, int32_t multiplier, int shift, int32_t zero_point,
                                     int32_t qmin, int32_t qmax) {
  int32_t v = multiply_by_quantized_multiplier(acc, multiplier, shift);
  const int32_t lo = qmin - zero_point;
  const int32_t hi = qmax - zero_point;
  v = v < lo ? lo : (v > hi ? hi : v);
  return static_cast<uint8_t>(v + zero_point);
}

}  // namespace fixedpoint
}  // namespace lowp
