// The registry of ISA paths. Each cpp/src/<isa>/ folder registers one path
// with a PathEntry: its name, its priority (the best available path is the
// default), the CPU features it needs, the path it inherits missing kernel
// table entries from, and its table. CMake's lowp_add_isa() adds the folder's
// sources with their flags and lists the path in lowp_paths.inc, which
// dispatch.cc includes to build the registry; nothing else names a path.
//
// A table entry left null is taken from the inherited path (recursively down
// to scalar), so a path can start with just a GEMM kernel and still run
// everything. Kernels compiled with an ISA's flags are only reachable through
// its entry, and an entry is only used after detection (CPUID + XGETBV on
// x86-64, the auxiliary vector on aarch64) found all its features.
#pragma once

#include <cstdint>

#include "kernels.h"

namespace lowp {

// CPU (and OS state) features a path may require, as bits of a mask.
enum CpuFeature : uint64_t {
  kFeatureAvx2 = 1u << 0,        // AVX2 + FMA, with YMM state saved by the OS (XCR0 bits 1-2)
  kFeatureAvx512 = 1u << 1,      // AVX-512 F, BW, VL, with opmask and ZMM state (XCR0 bits 5-7)
  kFeatureAvx512Vnni = 1u << 2,  // AVX512_VNNI (EVEX vpdpbusd)
  kFeatureAvxVnni = 1u << 3,     // AVX-VNNI (VEX vpdpbusd on ymm)
  kFeatureNeon = 1u << 8,        // AArch64 Advanced SIMD (always)
  kFeatureNeonDot = 1u << 9,     // FEAT_DotProd (HWCAP_ASIMDDP)
  kFeatureNeonI8mm = 1u << 10,   // FEAT_I8MM (HWCAP2_I8MM)
};

struct PathEntry {
  const char* name;      // as lowp.set_path takes it
  int priority;          // higher is preferred when available
  uint64_t requires;     // CpuFeature bits, all needed
  const char* inherits;  // name of the path that fills null entries; null for scalar
  KernelTable table;
};

// The scalar path (always available), defined in scalar/.
const PathEntry& path_entry_scalar();

// Test hook: registers an extra path (e.g. a SIMDe build of an ISA's
// sources) that counts as available on every CPU. Call before first use of
// the dispatch functions; returns false if the registry is already built.
bool register_test_path(const PathEntry* entry);

}  // namespace lowp
