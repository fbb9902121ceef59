// Peak probes: independent chains of the one instruction a GEMM path
// multiplies with, so that a microkernel's figure can be read against the
// limit of the CPU it ran on. Register operands only (no loads), more chains
// than the instruction's latency times its issue rate. Inline assembly needs
// no ISA flags to assemble; each probe is registered only where the CPU (and
// OS) reports the instructions, so this file stays safe to build anywhere.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>

namespace lowp_bench {

#if defined(__x86_64__)
// clang-format off
#define LOWP_P(op) op "\n\t"
#define LOWP_CHAINS_ZMM(ins)                                                                    \
  LOWP_P(ins " %%zmm14, %%zmm15, %%zmm0") LOWP_P(ins " %%zmm14, %%zmm15, %%zmm1")               \
  LOWP_P(ins " %%zmm14, %%zmm15, %%zmm2") LOWP_P(ins " %%zmm14, %%zmm15, %%zmm3")               \
  LOWP_P(ins " %%zmm14, %%zmm15, %%zmm4") LOWP_P(ins " %%zmm14, %%zmm15, %%zmm5")               \
  LOWP_P(ins " %%zmm14, %%zmm15, %%zmm6") LOWP_P(ins " %%zmm14, %%zmm15, %%zmm7")               \
  LOWP_P(ins " %%zmm14, %%zmm15, %%zmm8") LOWP_P(ins " %%zmm14, %%zmm15, %%zmm9")               \
  LOWP_P(ins " %%zmm14, %%zmm15, %%zmm10") LOWP_P(ins " %%zmm14, %%zmm15, %%zmm11")             \
  LOWP_P(ins " %%zmm14, %%zmm15, %%zmm12") LOWP_P(ins " %%zmm14, %%zmm15, %%zmm13")
#define LOWP_CHAINS_YMM(ins)                                                                    \
  LOWP_P(ins " %%ymm14, %%ymm15, %%ymm0") LOWP_P(ins " %%ymm14, %%ymm15, %%ymm1")               \
  LOWP_P(ins " %%ymm14, %%ymm15, %%ymm2") LOWP_P(ins " %%ymm14, %%ymm15, %%ymm3")               \
  LOWP_P(ins " %%ymm14, %%ymm15, %%ymm4") LOWP_P(ins " %%ymm14, %%ymm15, %%ymm5")               \
  LOWP_P(ins " %%ymm14, %%ymm15, %%ymm6") LOWP_P(ins " %%ymm14, %%ymm15, %%ymm7")               \
  LOWP_P(ins " %%ymm14, %%ymm15, %%ymm8") LOWP_P(ins " %%ymm14, %%ymm15, %%ymm9")               \
  LOWP_P(ins " %%ymm14, %%ymm15, %%ymm10") LOWP_P(ins " %%ymm14, %%ymm15, %%ymm11")           \
  LOWP_P(ins " %%ymm14, %%ymm15, %%ymm12") LOWP_P(ins " %%ymm14, %%ymm15, %%ymm13")
// vpmaddwd + vpaddd: AVX2's exact route (12 products into 6 chains).
#define LOWP_MADD_ADD(t, acc)                                                                   \
  LOWP_P("vpmaddwd %%ymm14, %%ymm15, %%ymm" #t) LOWP_P("vpaddd %%ymm" #t ", %%ymm" #acc ", %%ymm" #acc)
// clang-format on
#define LOWP_CLOBBER_ZMM                                                                   \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", \
      "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc"

// 14 x vpdpbusd zmm per iteration: 14 x 64 multiply-adds (zmm0-15 only, so
// that no AVX-512 flag is needed to name the clobbers).
inline void peak_vpdpbusd_zmm(benchmark::State& state) {
  for (auto _ : state) {
    int64_t n = 1000;
    __asm__ volatile(
        "vpxord %%zmm14, %%zmm14, %%zmm14\n\tvpxord %%zmm15, %%zmm15, %%zmm15\n\t"
        "1:\n\t" LOWP_CHAINS_ZMM("vpdpbusd") "dec %[n]\n\tjnz 1b\n\tvzeroupper\n\t"
        : [n] "+r"(n)
        :
        : LOWP_CLOBBER_ZMM);
  }
  state.counters["GOPS"] = benchmark::Counter(2.0 * 64 * 14 * 1000 * 1e-9 * state.iterations(),
                                              benchmark::Counter::kIsRate);
}

// 14 x vpdpbusd ymm per iteration, VEX (AVX-VNNI) or EVEX (AVX512_VNNI + VL).
template <bool kVex>
void peak_vpdpbusd_ymm(benchmark::State& state) {
  for (auto _ : state) {
    int64_t n = 1000;
    if (kVex) {
      __asm__ volatile(
          "vpxor %%xmm14, %%xmm14, %%xmm14\n\tvpxor %%xmm15, %%xmm15, %%xmm15\n\t"
          "1:\n\t" LOWP_CHAINS_YMM("%{vex%} vpdpbusd") "dec %[n]\n\tjnz 1b\n\tvzeroupper\n\t"
          : [n] "+r"(n)
          :
          : LOWP_CLOBBER_ZMM);
    } else {
      __asm__ volatile(
          "vpxor %%xmm14, %%xmm14, %%xmm14\n\tvpxor %%xmm15, %%xmm15, %%xmm15\n\t"
          "1:\n\t" LOWP_CHAINS_YMM("%{evex%} vpdpbusd") "dec %[n]\n\tjnz 1b\n\tvzeroupper\n\t"
          : [n] "+r"(n)
          :
          : LOWP_CLOBBER_ZMM);
    }
  }
  state.counters["GOPS"] = benchmark::Counter(2.0 * 32 * 14 * 1000 * 1e-9 * state.iterations(),
                                              benchmark::Counter::kIsRate);
}

// 12 x (vpmaddwd + vpaddd) ymm per iteration: 12 x 16 multiply-adds, the
// exact u8 x u8 route of the avx2 path.
inline void peak_vpmaddwd_ymm(benchmark::State& state) {
  for (auto _ : state) {
    int64_t n = 1000;
    __asm__ volatile(
        "vpxor %%xmm14, %%xmm14, %%xmm14\n\tvpxor %%xmm15, %%xmm15, %%xmm15\n\t"
        "1:\n\t" LOWP_MADD_ADD(6, 0) LOWP_MADD_ADD(7, 1) LOWP_MADD_ADD(8, 2) LOWP_MADD_ADD(9, 3)
            LOWP_MADD_ADD(10, 4) LOWP_MADD_ADD(11, 5) LOWP_MADD_ADD(12, 0) LOWP_MADD_ADD(13, 1)
                LOWP_MADD_ADD(6, 2) LOWP_MADD_ADD(7, 3) LOWP_MADD_ADD(8, 4)
                    LOWP_MADD_ADD(9, 5) "dec %[n]\n\tjnz 1b\n\tvzeroupper\n\t"
        : [n] "+r"(n)
        :
        : LOWP_CLOBBER_ZMM);
  }
  state.counters["GOPS"] = benchmark::Counter(2.0 * 16 * 12 * 1000 * 1e-9 * state.iterations(),
                                              benchmark::Counter::kIsRate);
}

#undef LOWP_CLOBBER_ZMM
#undef LOWP_MADD_ADD
#undef LOWP_CHAINS_YMM
#undef LOWP_CHAINS_ZMM
#undef LOWP_P
#endif

// Registers the probes whose instructions `features` (lowp::cpu_info())
// lists.
template <typename Features>
void register_peak_probes(const Features& features) {
#if defined(__x86_64__)
  auto has = [&](const char* f) {
    for (const auto& g : features)
      if (g == f) return true;
    return false;
  };
  if (has("avx2") && has("os_ymm")) {
    benchmark::RegisterBenchmark("peak/vpmaddwd+vpaddd_ymm", peak_vpmaddwd_ymm);
  }
  if (has("avx_vnni") && has("os_ymm")) {
    benchmark::RegisterBenchmark("peak/vpdpbusd_ymm_vex", peak_vpdpbusd_ymm<true>);
  }
  if (has("avx512_vnni") && has("avx512vl") && has("os_zmm")) {
    benchmark::RegisterBenchmark("peak/vpdpbusd_ymm_evex", peak_vpdpbusd_ymm<false>);
    benchmark::RegisterBenchmark("peak/vpdpbusd_zmm", peak_vpdpbusd_zmm);
  }
#else
  (void)features;
#endif
}

}  // namespace lowp_bench
