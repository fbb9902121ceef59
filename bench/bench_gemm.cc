// GEMM benchmarks: the peak of the multiply instruction of each path the CPU
// has (peak/...), the microkernel alone (A micro-panel in L1, B panels in L1
// or streaming from L2) and whole GEMMs with prepacked weights on shapes from
// real networks, per ISA path. Counter "GOPS" = 2 M N K per second.
//
//   lowp_bench_gemm --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "bench_peak.h"
#include "gemm.h"
#include "kernels.h"
#include "lowp/lowp.h"

namespace {

void set_gops(benchmark::State& state, double ops_per_iteration) {
  state.counters["GOPS"] = benchmark::Counter(ops_per_iteration * 1e-9 * state.iterations(),
                                              benchmark::Counter::kIsRate);
}

// A microkernel on one A micro-panel (kc = the kernel's block) against
// `panels` B panels: 1 panel stays in L1, 128 panels stream from L2 / L3.
void bench_ukernel(benchmark::State& state, const lowp::GemmKernel* kernel, size_t panels) {
  const lowp::GemmKernel& kn = *kernel;
  const size_t kc = kn.kc;
  std::mt19937 rng(1);
  std::vector<uint8_t> a(kn.mr * kc);
  for (auto& v : a) v = static_cast<uint8_t>(rng());
  void* a_packed = std::aligned_alloc(64, kc * kn.a_bytes_per_k + 64);
  uint8_t* b = static_cast<uint8_t*>(std::aligned_alloc(64, panels * kc * kn.nr + 64));
  for (size_t i = 0; i < panels * kc * kn.nr; ++i) b[i] = static_cast<uint8_t>(rng());
  std::vector<int32_t> rowsum(kn.mr), partial(kn.mr * kn.nr);
  kn.pack_a(a.data(), kc, kn.mr, kc, kc, a_packed, rowsum.data());
  size_t p = 0;
  for (auto _ : state) {
    kn.ukernel(kc / kn.kr, a_packed, b + p * kc * kn.nr, nullptr, partial.data(), nullptr);
    if (++p == panels) p = 0;
    benchmark::DoNotOptimize(partial.data());
  }
  set_gops(state, 2.0 * kn.mr * kn.nr * kc);
  std::free(a_packed);
  std::free(b);
}

void bench_gemm(benchmark::State& state, lowp::Path path, size_t m, size_t k, size_t n,
                bool requant) {
  lowp::set_active_path(path);
  lowp::set_num_threads(static_cast<int>(state.range(0)));
  std::mt19937 rng(2);
  std::vector<uint8_t> a(m * k), b(k * n);
  for (auto& v : a) v = static_cast<uint8_t>(rng());
  for (auto& v : b) v = static_cast<uint8_t>(rng());
  const int32_t b_zp = 128;
  lowp::Gemm gemm(b.data(), k, n, n, &b_zp, 1, 3, nullptr);
  std::vector<int32_t> c(m * n);
  std::vector<uint8_t> c8(m * n);
  const int32_t mult = 1 << 30, shift = -12;
  const lowp::Requantization rq = {&mult, &shift, 1, 128, 0, 255};
  for (auto _ : state) {
    if (requant) {
      gemm.run(a.data(), m, k, rq, c8.data(), n);
    } else {
      gemm.run(a.data(), m, k, c.data(), n);
    }
    benchmark::ClobberMemory();
  }
  set_gops(state, 2.0 * m * n * k);
  lowp::set_num_threads(1);
}

struct Shape {
  size_t m, k, n;
};

// Squares, a GEMV, and layers: a transformer FC pair and 3x3 convs as
// im2col GEMMs (M output pixels, K = 9 x input channels, N output channels):
// a ResNet one (56x56, 64 -> 64), a 3-channel first layer (112x112, 3 -> 32)
// and UNet-like ones (16..128 channels).
constexpr Shape kShapes[] = {
    {256, 256, 256},  {512, 512, 512},   {1024, 1024, 1024}, {2048, 2048, 2048}, {1, 1024, 1024},
    {16, 1024, 4096}, {64, 4096, 1024},  {3136, 576, 64},    {12544, 27, 32},    {16384, 288, 32},
    {4096, 576, 64},  {1024, 1152, 128}, {4096, 144, 16}};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const lowp::CpuInfo cpu = lowp::cpu_info();
  benchmark::AddCustomContext("lowp_cpu", cpu.model);
  benchmark::AddCustomContext("lowp_default_path", lowp::path_name(lowp::active_path()));
  lowp_bench::register_peak_probes(cpu.features);
  for (lowp::Path path : lowp::available_paths()) {
    const std::string p = lowp::path_name(path);
    const lowp::KernelTable& table = lowp::kernels_of(path);
    for (const lowp::GemmKernel* kn : {table.gemm, table.gemm_narrow}) {
      if (kn == nullptr) continue;
      const std::string name = "ukernel/" + p + "/" + kn->name + "/";
      benchmark::RegisterBenchmark((name + "L1").c_str(), bench_ukernel, kn, 1);
      benchmark::RegisterBenchmark((name + "L2").c_str(), bench_ukernel, kn, 128);
    }
    for (const Shape& s : kShapes) {
      for (bool requant : {false, true}) {
        const std::string name = "gemm/" + p + "/" + std::to_string(s.m) + "x" +
                                 std::to_string(s.k) + "x" + std::to_string(s.n) +
                                 (requant ? "/u8" : "/s32");
        benchmark::RegisterBenchmark(name.c_str(), bench_gemm, path, s.m, s.k, s.n, requant)
            ->ArgName("threads")
            ->Arg(1)
            ->Arg(2)
            ->UseRealTime();
      }
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
