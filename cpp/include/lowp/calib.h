// Calibration statistics for post-training quantization (DESIGN.md section 8):
// the histogram accumulation behind lowp.quantizer's RangeObserver. Arguments
// are trusted (the Python layer validates them), as in lowp.h.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lowp {

// Adds to counts[i], i in [0, bins), the number of x[j] with
// floor(x[j] * inv_width) - first_bin == i, the product rounded to float32.
// With inv_width a power of two the product is exact, so bin i holds exactly
// the values in [(first_bin + i) * width, (first_bin + i + 1) * width), except
// values whose product underflows (within 2^-149 * width of zero, a negative one
// may land in the bin above zero). Values outside the bins (and NaN) are
// counted in the nearest end bin, so no write leaves counts. Requires
// 1 <= bins <= 2^24, |first_bin| and |first_bin + bins| <= 2^24 (every bin
// index exact in float32) and inv_width finite and > 0. Runs on the calling
// thread; under an InterruptScope it polls between blocks of 2^20 values.
// Returns how many of the values are zero (+0 or -0): they are quantized
// exactly by any range that contains 0, which the range methods use.
int64_t histogram_f32(const float* x, size_t n, float inv_width, int64_t first_bin, size_t bins,
                      int64_t* counts);

}  // namespace lowp
