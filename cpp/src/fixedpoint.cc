// The public scalar fixed-point functions and quantize_multiplier.
#include <cmath>

#include "fixedpoint_scalar.h"
#include "lowp/lowp.h"

namespace lowp {

bool quantize_multiplier(double real, int32_t* multiplier, int32_t* shift) {
  *multiplier = 0;
  *shift = 0;
  if (!(real >= 0.0) || std::isinf(real)) return false;  // NaN fails the comparison
  if (real == 0.0) return true;
  int exponent = 0;
  const double mantissa = std::frexp(real, &exponent);  // in [0.5, 1)
  // Scaling by 2^31 is exact; llround rounds half away from zero.
  long long m0 = std::llround(mantissa * 2147483648.0);
  if (m0 == (1LL << 31)) {  // the mantissa rounded up to 1.0
    m0 /= 2;
    ++exponent;
  }
  if (exponent > 30) return false;
  if (exponent < -31) return true;  // too small to represent: a zero multiplier
  *multiplier = static_cast<int32_t>(m0);
  *shift = exponent;
  return true;
}

int32_t srdhm(int32_t a, int32_t b) { return fixedpoint::srdhm(a, b); }

int32_t rdivpot(int32_t x, int exponent) { return fixedpoint::rdivpot(x, exponent); }

int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift) {
  return fixedpoint::multiply_by_quantized_multiplier(x, multiplier, shift);
}

}  // namespace lowp
