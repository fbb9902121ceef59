// Run-time choice of the ISA path. The detection reads the CPU (CPUID and
// XGETBV on x86-64, the auxiliary vector on aarch64), never the build
// machine: one x86-64 build runs everywhere and takes AVX2 only where both
// the CPU and the OS (which must save the YMM registers) support it.
#include <atomic>
#include <cstring>

#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace lowp {
namespace {

struct Detected {
  CpuInfo info;
  bool available[kNumPaths] = {true, false, false, false};
};

#if defined(__x86_64__) || defined(_M_X64)
uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

Detected detect() {
  Detected d;
#if defined(__x86_64__) || defined(_M_X64)
  d.info.arch = "x86_64";
  unsigned eax, ebx, ecx, edx;
  bool avx = false, fma = false, avx2 = false, os_ymm = false;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
    if (edx & (1u << 26)) d.info.features.push_back("sse2");
    if (ecx & (1u << 19)) d.info.features.push_back("sse4.1");
    const bool osxsave = (ecx & (1u << 27)) != 0;
    avx = (ecx & (1u << 28)) != 0;
    fma = (ecx & (1u << 12)) != 0;
    // XMM (bit 1) and YMM (bit 2) state enabled by the OS.
    os_ymm = osxsave && (read_xcr0() & 0x6) == 0x6;
  }
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
    avx2 = (ebx & (1u << 5)) != 0;
    if (ebx & (1u << 16)) d.info.features.push_back("avx512f");
  }
  if (avx) d.info.features.push_back("avx");
  if (fma) d.info.features.push_back("fma");
  if (avx2) d.info.features.push_back("avx2");
  if (os_ymm) d.info.features.push_back("os_ymm");
  d.available[static_cast<int>(Path::kAvx2)] = avx && avx2 && fma && os_ymm;
#elif defined(__aarch64__)
  d.info.arch = "aarch64";
  d.info.features.push_back("asimd");  // mandatory in AArch64
  d.available[static_cast<int>(Path::kNeon)] = true;
#if defined(__linux__)
  if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) {
    d.info.features.push_back("asimddp");
    d.available[static_cast<int>(Path::kNeonDot)] = true;
  }
#endif
#else
  d.info.arch = "other";
#endif
  return d;
}

const Detected& detected() {
  static const Detected d = detect();
  return d;
}

Path best_path() {
  const Detected& d = detected();
  for (int p = kNumPaths - 1; p > 0; --p) {
    if (d.available[p]) return static_cast<Path>(p);
  }
  return Path::kScalar;
}

// -1 until first use, then the active path.
std::atomic<int> g_active{-1};

}  // namespace

const char* path_name(Path path) {
  switch (path) {
    case Path::kScalar:
      return "scalar";
    case Path::kAvx2:
      return "avx2";
    case Path::kNeon:
      return "neon";
    case Path::kNeonDot:
      return "neon_dot";
  }
  return "unknown";
}

bool path_from_name(const std::string& name, Path* path) {
  for (int p = 0; p < kNumPaths; ++p) {
    if (name == path_name(static_cast<Path>(p))) {
      *path = static_cast<Path>(p);
      return true;
    }
  }
  return false;
}

std::vector<Path> available_paths() {
  std::vector<Path> out;
  for (int p = 0; p < kNumPaths; ++p) {
    if (detected().available[p]) out.push_back(static_cast<Path>(p));
  }
  return out;
}

bool path_available(Path path) {
  const int p = static_cast<int>(path);
  return p >= 0 && p < kNumPaths && detected().available[p];
}

Path active_path() {
  int p = g_active.load(std::memory_order_acquire);
  if (p < 0) {
    int expected = -1;
    g_active.compare_exchange_strong(expected, static_cast<int>(best_path()));
    p = g_active.load(std::memory_order_acquire);
  }
  return static_cast<Path>(p);
}

bool set_active_path(Path path) {
  if (!path_available(path)) return false;
  g_active.store(static_cast<int>(path), std::memory_order_release);
  return true;
}

CpuInfo cpu_info() { return detected().info; }

const KernelTable& kernels_of(Path path) {
  switch (path) {
#if defined(__x86_64__) || defined(_M_X64)
    case Path::kAvx2:
      return avx2_kernels();
#endif
#if defined(__aarch64__)
    case Path::kNeon:
      return neon_kernels();
    case Path::kNeonDot:
      return neon_dot_kernels();
#endif
    default:
      return scalar_kernels();
  }
}

const KernelTable& active_kernels() { return kernels_of(active_path()); }

}  // namespace lowp
