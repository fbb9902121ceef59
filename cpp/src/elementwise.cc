// Drivers of the elementwise kernels: they shape the channel parameters for
// the microkernels and split long arrays across threads.
#include <algorithm>
#include <numeric>
#include <vector>

#include "kernels.h"

namespace lowp {
namespace {

// A short period wastes vector lanes (3 channels fill 3 of 8), so it is
// widened by repetition to a multiple of 8 of at least 64 entries: the same
// element still meets the same parameters, and the kernels run whole vectors.
size_t widened_period(size_t period) {
  if (period <= 1 || period >= 64) return period;
  size_t wide = std::lcm(period, size_t{8});
  while (wide < 64) wide *= 2;
  return wide;
}

// Elements per task: a whole number of periods, large enough that a task is
// worth waking a thread for (kMinParallelWork), small enough (a few
// milliseconds) that a long call can be interrupted between tasks.
size_t task_size(size_t n, size_t period) {
  constexpr size_t kMinTask = kMinParallelWork / kElementWork;
  constexpr size_t kMaxTask = size_t{1} << 22;
  const size_t threads = static_cast<size_t>(num_threads());
  size_t size = std::max(kMinTask, std::min(kMaxTask, (n + 4 * threads - 1) / (4 * threads)));
  const size_t unit = std::lcm(period, size_t{64});
  return (size + unit - 1) / unit * unit;
}

struct RequantJob {
  RequantU8Fn kernel;
  const int32_t* acc;
  size_t n, chunk;
  const ChannelParams* channels;
  int32_t zero_point, qmin, qmax;
  uint8_t* out;
};

struct MulQuantJob {
  MulQuantS32Fn kernel;
  const int32_t* x;
  size_t n, chunk;
  const ChannelParams* channels;
  int32_t* out;
};

struct QuantizeJob {
  QuantizeF32Fn kernel;
  const float* x;
  size_t n, chunk;
  float scale, zero_point, qmin, qmax;
  uint8_t flip;
  uint8_t* out;
  std::vector<char> ok;  // one flag per task, so tasks write disjoint memory
};

}  // namespace

void requantize_u8(const int32_t* acc, size_t n, const int32_t* multiplier, const int32_t* shift,
                   size_t period, int32_t zero_point, int32_t qmin, int32_t qmax, uint8_t* out) {
  if (n == 0) return;
  const ChannelTables channels(multiplier, shift, period, widened_period(period));
  const ChannelParams& params = channels.params();
  RequantJob job = {active_kernels().requant_u8,
                    acc,
                    n,
                    task_size(n, params.period),
                    &params,
                    zero_point,
                    qmin,
                    qmax,
                    out};
  parallel_for((n + job.chunk - 1) / job.chunk,
               [](void* ctx, size_t task) {
                 const RequantJob& j = *static_cast<const RequantJob*>(ctx);
                 const size_t begin = task * j.chunk;
                 const size_t len = std::min(j.chunk, j.n - begin);
                 j.kernel(j.acc + begin, len, *j.channels, j.zero_point, j.qmin, j.qmax,
                          j.out + begin);
               },
               &job, n * kElementWork);
}

void multiply_by_quantized_multiplier_s32(const int32_t* x, size_t n, const int32_t* multiplier,
                                          const int32_t* shift, size_t period, int32_t* out) {
  if (n == 0) return;
  const ChannelTables channels(multiplier, shift, period, widened_period(period));
  const ChannelParams& params = channels.params();
  MulQuantJob job = {active_kernels().mulquant_s32, x,       n,
                     task_size(n, params.period),   &params, out};
  parallel_for((n + job.chunk - 1) / job.chunk,
               [](void* ctx, size_t task) {
                 const MulQuantJob& j = *static_cast<const MulQuantJob*>(ctx);
                 const size_t begin = task * j.chunk;
                 const size_t len = std::min(j.chunk, j.n - begin);
                 j.kernel(j.x + begin, len, *j.channels, j.out + begin);
               },
               &job, n * kElementWork);
}

bool quantize_f32_8bit(const float* x, size_t n, float scale, int32_t zero_point, int32_t qmin,
                       int32_t qmax, void* out) {
  if (n == 0) return true;
  // int8 results are computed as uint8 with every bound moved up by 128 and
  // the top bit flipped on store: exact, and one kernel serves both.
  const int32_t bias = qmin < 0 ? 128 : 0;
  QuantizeJob job = {active_kernels().quantize_f32,
                     x,
                     n,
                     task_size(n, 1),
                     scale,
                     static_cast<float>(zero_point + bias),
                     static_cast<float>(qmin + bias),
                     static_cast<float>(qmax + bias),
                     static_cast<uint8_t>(bias ? 0x80 : 0),
                     static_cast<uint8_t*>(out),
                     {}};
  const size_t tasks = (n + job.chunk - 1) / job.chunk;
  job.ok.assign(tasks, 1);
  parallel_for(
      tasks,
      [](void* ctx, size_t task) {
        QuantizeJob& j = *static_cast<QuantizeJob*>(ctx);
        const size_t begin = task * j.chunk;
        const size_t len = std::min(j.chunk, j.n - begin);
        j.ok[task] = j.kernel(j.x + begin, len, j.scale, j.zero_point, j.qmin, j.qmax, j.flip,
                              j.out + begin);
      },
      &job, n * kElementWork);
  return std::all_of(job.ok.begin(), job.ok.end(), [](char ok) { return ok != 0; });
}

}  // namespace lowp

namespace lowp {

ChannelTables::ChannelTables(const int32_t* multiplier, const int32_t* shift, size_t count,
                             size_t size) {
  int32_t* block = inline_;
  if (6 * size > kInline) {
    heap_.resize(6 * size);
    block = heap_.data();
  }
  int32_t *m = block, *s = m + size, *left = s + size, *right = left + size;
  int32_t *mask = right + size, *half = mask + size;
  bool any_left = false, any_right = false;
  for (size_t i = 0; i < size; ++i) {
    s[i] = shift[i % count];
    m[i] = multiplier[i % count];
    left[i] = s[i] > 0 ? s[i] : 0;
    right[i] = s[i] < 0 ? -s[i] : 0;
    mask[i] = static_cast<int32_t>((uint32_t{1} << right[i]) - 1u);
    half[i] = mask[i] >> 1;
    any_left |= s[i] > 0;
    any_right |= s[i] < 0;
  }
  params_ = {m, s, left, right, mask, half, size, any_left, any_right};
}

}  // namespace lowp
