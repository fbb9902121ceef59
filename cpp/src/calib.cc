// Histogram accumulation for calibration (lowp/calib.h). One pass: a block of
// bin indices is computed in a loop the compiler vectorizes (float multiply,
// clamp, floor by truncate-and-correct), then scattered into four interleaved
// uint32 sub-histograms, so that consecutive values in the same bin (a ReLU's
// zeros: half of its output) do not wait on each other's stores; that gains
// about 1.3x on such data, nothing on a Gaussian. Measured on the AMD EPYC of
// the README's tables: ~0.45 ms per 2^19 floats, where the same bins in NumPy
// (indices, then np.bincount: the fallback in quantizer/_calib.py) take
// ~1.7 ms and np.histogram ~4.2 ms. The work is memory-bound and short next to
// the model run that produces the data, so it stays on the calling thread.
#include "lowp/calib.h"

#include <algorithm>
#include <vector>

#include "lowp/lowp.h"

namespace lowp {
namespace {

constexpr size_t kBlock = 1024;            // indices computed per scatter pass
constexpr int kCopies = 4;                 // interleaved sub-histograms
constexpr size_t kPoll = size_t{1} << 20;  // values between interrupt polls
// A uint32 sub-histogram takes at most kFlush / kCopies + kBlock counts before
// it is flushed into the int64 result.
constexpr size_t kFlush = size_t{1} << 31;

// Bin indices of x[0, m), m <= kBlock, each in [0, bins); returns how many
// of the values are zero.
int32_t bin_indices(const float* x, size_t m, float inv_width, float lowest, float highest,
                    int32_t first, int32_t* index) {
  int32_t zeros = 0;
  for (size_t j = 0; j < m; ++j) {
    zeros += static_cast<int32_t>(x[j] == 0.0f);
    float f = x[j] * inv_width;
    f = f > lowest ? f : lowest;  // NaN compares false: it goes to the first bin
    f = f < highest ? f : highest;
    int32_t t = static_cast<int32_t>(f);                   // toward zero
    t -= static_cast<int32_t>(static_cast<float>(t) > f);  // floor
    index[j] = t - first;
  }
  return zeros;
}

}  // namespace

int64_t histogram_f32(const float* x, size_t n, float inv_width, int64_t first_bin, size_t bins,
                      int64_t* counts) {
  if (n == 0 || bins == 0) return 0;
  const int32_t first = static_cast<int32_t>(first_bin);
  const float lowest = static_cast<float>(first_bin);
  const float highest = static_cast<float>(first_bin + static_cast<int64_t>(bins) - 1);
  std::vector<uint32_t> sub(kCopies * bins, 0u);
  uint32_t* h0 = sub.data();
  uint32_t* h1 = h0 + bins;
  uint32_t* h2 = h1 + bins;
  uint32_t* h3 = h2 + bins;
  auto flush = [&] {
    for (size_t b = 0; b < bins; ++b) {
      counts[b] += static_cast<int64_t>(h0[b]) + h1[b] + h2[b] + h3[b];
      h0[b] = h1[b] = h2[b] = h3[b] = 0;
    }
  };
  InterruptScope* scope = InterruptScope::current();
  int32_t index[kBlock];
  size_t since_flush = 0;
  int64_t zeros = 0;
  for (size_t begin = 0; begin < n; begin += kPoll) {
    if (scope != nullptr && scope->stop()) return zeros;
    const size_t end = std::min(n, begin + kPoll);
    for (size_t i = begin; i < end; i += kBlock) {
      const size_t m = std::min(kBlock, end - i);
      zeros += bin_indices(x + i, m, inv_width, lowest, highest, first, index);
      size_t j = 0;
      for (; j + kCopies <= m; j += kCopies) {
        ++h0[index[j]];
        ++h1[index[j + 1]];
        ++h2[index[j + 2]];
        ++h3[index[j + 3]];
      }
      for (; j < m; ++j) ++h0[index[j]];
    }
    since_flush += end - begin;
    if (since_flush >= kFlush) {
      flush();
      since_flush = 0;
    }
  }
  flush();
  return zeros;
}

}  // namespace lowp
