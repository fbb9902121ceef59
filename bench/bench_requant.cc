// Bandwidth of the requantize kernel on every ISA path this CPU can run, next
// to a plain memcpy of the same int32 input, in L1, in L2 and out of cache.
//
// Both report bytes read + bytes written per element (requantize: 4 + 1,
// copy: 4 + 4), so "bytes_per_second" says how close the kernel comes to
// moving memory as fast as a copy does. Neither count includes the line a
// store miss reads first: the kernel really moves 4 + 1 + 1 bytes, the copy
// 4 + 4 + 4, or 4 + 4 where memcpy switches to non-temporal stores (glibc does
// above its x86_non_temporal_threshold). So at equal DRAM traffic the kernel
// shows between 0.83x and 1.25x of the copy's number out of cache.
//
// Times are wall-clock (UseRealTime) so the 2-thread variants, which run on
// lowp's pool, are measured like the single-thread ones.
//
//   lowp_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "kernels.h"  // parallel_for, for the 2-thread copy baseline
#include "lowp/lowp.h"

namespace {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// Page-aligned so every size starts at the same cache-line and page offset;
// large buffers ask for huge pages so TLB misses weigh the same on both sides.
template <typename T>
std::unique_ptr<T[], FreeDeleter> allocate(size_t n) {
  constexpr size_t kAlign = 4096;
  const size_t bytes = (n * sizeof(T) + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, bytes);
  if (p == nullptr) std::abort();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes >= (size_t{2} << 20)) madvise(p, bytes, MADV_HUGEPAGE);
#endif
  return std::unique_ptr<T[], FreeDeleter>(static_cast<T*>(p));
}

struct Size {
  const char* name;
  size_t n;  // int32 input elements
};

// 16 KiB, 256 KiB and 64 MiB of int32 input. The output comes on top: n bytes
// for the kernel, 4n for the copy, whose 16 + 16 KiB and 256 + 256 KiB fill a
// 32 KiB L1 and a 512 KiB L2 exactly. 64 MiB is above the last-level cache
// of the machines we run on.
constexpr Size kSizes[] = {
    {"L1", size_t{16} << 8},
    {"L2", size_t{256} << 8},
    {"out_of_cache", size_t{64} << 18},
};
constexpr int kNumSizes = sizeof(kSizes) / sizeof(kSizes[0]);

// One set of buffers per size, filled (so touched and faulted in) before any
// benchmark runs. The input is shared by copy and requantize.
struct Buffers {
  std::unique_ptr<int32_t[], FreeDeleter> acc;
  std::unique_ptr<uint8_t[], FreeDeleter> out_u8;
  std::unique_ptr<int32_t[], FreeDeleter> out_s32;
};

constexpr size_t kChannels = 64;

struct Params {
  std::vector<int32_t> multiplier, shift;
  size_t period;
};

Params per_tensor_params() {
  // ~0.3 * 2^31 and shift -8: a real scale of about 0.3 / 256.
  return {{644245094}, {-8}, 1};
}

// Shifts in [min_shift, max_shift]. Real conv and dense layers shift right
// only (a real multiplier below 1); the mixed range forces both the
// saturating left shift and the rounding right shift on every element.
Params per_channel_params(std::mt19937& rng, int32_t min_shift, int32_t max_shift) {
  std::uniform_int_distribution<int32_t> m(int32_t{1} << 30, INT32_MAX);
  std::uniform_int_distribution<int32_t> s(min_shift, max_shift);
  Params p{std::vector<int32_t>(kChannels), std::vector<int32_t>(kChannels), kChannels};
  for (size_t c = 0; c < kChannels; ++c) {
    p.multiplier[c] = m(rng);
    p.shift[c] = s(rng);
  }
  return p;
}

void set_counters(benchmark::State& state, size_t n, size_t bytes_per_element) {
  const auto iterations = static_cast<int64_t>(state.iterations());
  state.SetBytesProcessed(iterations * static_cast<int64_t>(n * bytes_per_element));
  state.counters["elements_per_second"] = benchmark::Counter(
      static_cast<double>(iterations) * static_cast<double>(n), benchmark::Counter::kIsRate);
}

void bench_requantize(benchmark::State& state, lowp::Path path, const Params* params,
                      const Buffers* buffers, size_t n, int threads) {
  // Each benchmark sets the global state it depends on: registration order
  // and --benchmark_filter must not change what runs.
  if (!lowp::set_active_path(path)) {
    state.SkipWithError("path not available");
    return;
  }
  lowp::set_num_threads(threads);
  const int32_t zero_point = 128, qmin = 0, qmax = 255;
  for (auto _ : state) {
    lowp::requantize_u8(buffers->acc.get(), n, params->multiplier.data(), params->shift.data(),
                        params->period, zero_point, qmin, qmax, buffers->out_u8.get());
    benchmark::ClobberMemory();
  }
  lowp::set_num_threads(1);
  set_counters(state, n, sizeof(int32_t) + sizeof(uint8_t));
}

struct CopyJob {
  const int32_t* src;
  int32_t* dst;
  size_t n, chunk;
};

void bench_copy(benchmark::State& state, const Buffers* buffers, size_t n, int threads) {
  lowp::set_num_threads(threads);
  // The threaded copy goes through the same pool and a similar task split as
  // the kernel's driver, so the two pay the same thread overhead.
  const size_t tasks = threads > 1 ? 4 * static_cast<size_t>(threads) : 1;
  CopyJob job = {buffers->acc.get(), buffers->out_s32.get(), n, (n + tasks - 1) / tasks};
  for (auto _ : state) {
    if (threads == 1) {
      std::memcpy(job.dst, job.src, n * sizeof(int32_t));
    } else {
      lowp::parallel_for(
          tasks,
          [](void* ctx, size_t task) {
            const CopyJob& j = *static_cast<const CopyJob*>(ctx);
            const size_t begin = task * j.chunk;
            if (begin >= j.n) return;
            const size_t len = j.n - begin < j.chunk ? j.n - begin : j.chunk;
            std::memcpy(j.dst + begin, j.src + begin, len * sizeof(int32_t));
          },
          &job, lowp::kMinParallelWork);  // always on the pool, as the kernel's driver
    }
    benchmark::ClobberMemory();
  }
  lowp::set_num_threads(1);
  set_counters(state, n, sizeof(int32_t) + sizeof(int32_t));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  lowp::set_num_threads(1);

  std::mt19937 rng(12345);
  // Accumulators of a real layer: a K of a few hundred with uint8 operands
  // gives sums of up to about +-2^20.
  std::uniform_int_distribution<int32_t> acc_dist(-(int32_t{1} << 20), int32_t{1} << 20);
  // Static: the registered benchmarks keep pointers into these until exit.
  static Buffers buffers[kNumSizes];
  for (int s = 0; s < kNumSizes; ++s) {
    const size_t n = kSizes[s].n;
    buffers[s].acc = allocate<int32_t>(n);
    buffers[s].out_u8 = allocate<uint8_t>(n);
    buffers[s].out_s32 = allocate<int32_t>(n);
    for (size_t i = 0; i < n; ++i) buffers[s].acc[i] = acc_dist(rng);
    std::memset(buffers[s].out_u8.get(), 0, n);
    std::memset(buffers[s].out_s32.get(), 0, n * sizeof(int32_t));
  }
  static const Params per_tensor = per_tensor_params();
  static const Params per_channel = per_channel_params(rng, -15, -1);
  static const Params per_channel_mixed = per_channel_params(rng, -31, 30);
  const struct {
    const char* name;
    const Params* params;
  } layouts[] = {{"per_tensor", &per_tensor},
                 {"per_channel", &per_channel},
                 {"per_channel_mixed_shifts", &per_channel_mixed}};

  // 2 threads only out of cache: does a second core buy bandwidth that one
  // core cannot draw?
  auto thread_counts = [](int s) {
    return s == kNumSizes - 1 ? std::vector<int>{1, 2} : std::vector<int>{1};
  };
  auto suffix = [](int threads) {
    return threads == 1 ? std::string() : "/threads:" + std::to_string(threads);
  };

  for (int s = 0; s < kNumSizes; ++s) {
    for (int threads : thread_counts(s)) {
      const std::string name = std::string("copy/") + kSizes[s].name + suffix(threads);
      benchmark::RegisterBenchmark(name.c_str(), bench_copy, &buffers[s], kSizes[s].n, threads)
          ->UseRealTime();
    }
  }
  for (lowp::Path path : lowp::available_paths()) {
    for (const auto& layout : layouts) {
      for (int s = 0; s < kNumSizes; ++s) {
        for (int threads : thread_counts(s)) {
          const std::string name = std::string("requantize/") + lowp::path_name(path) + "/" +
                                   layout.name + "/" + kSizes[s].name + suffix(threads);
          benchmark::RegisterBenchmark(name.c_str(), bench_requantize, path, layout.params,
                                       &buffers[s], kSizes[s].n, threads)
              ->UseRealTime();
        }
      }
    }
  }

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
