// Run-time choice of the ISA path. The detection reads the CPU (CPUID and
// XGETBV on x86-64, the auxiliary vector on aarch64), never the build
// machine: one x86-64 build runs everywhere and takes a path only where both
// the CPU and the OS (which must save the wider registers) support it.
//
// The registry is built once, on first use: scalar, every path CMake listed
// in lowp_paths.inc (one per ISA folder, see paths.h), then any test paths.
// Each entry's null kernels are filled from the path it inherits from, and
// its requirements include its ancestors', so that a path never runs a
// kernel its CPU lacks.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "gemm.h"
#include "paths.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

// The registration functions of the ISA folders this build has.
namespace lowp {
namespace native {
#define LOWP_PATH(name) const PathEntry& path_entry_##name();
#include "lowp_paths.inc"
#undef LOWP_PATH
}  // namespace native
}  // namespace lowp

namespace lowp {
namespace {

struct Detected {
  CpuInfo info;
  uint64_t features = 0;
};

#if defined(__x86_64__) || defined(_M_X64)
uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

std::string brand_string() {
  unsigned regs[12];
  if (__get_cpuid_max(0x80000000u, nullptr) < 0x80000004u) return "";
  for (unsigned i = 0; i < 3; ++i) {
    __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2],
                &regs[4 * i + 3]);
  }
  char text[49] = {};
  std::memcpy(text, regs, 48);
  std::string s(text);
  const size_t first = s.find_first_not_of(' '), last = s.find_last_not_of(' ');
  return first == std::string::npos ? "" : s.substr(first, last - first + 1);
}
#endif

Detected detect() {
  Detected d;
#if defined(__x86_64__) || defined(_M_X64)
  d.info.arch = "x86_64";
  d.info.model = brand_string();
  unsigned eax, ebx, ecx, edx;
  bool avx = false, fma = false, osxsave = false;
  uint64_t xcr0 = 0;
  auto add = [&](bool has, const char* name) {
    if (has) d.info.features.push_back(name);
    return has;
  };
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
    add(edx & (1u << 26), "sse2");
    add(ecx & (1u << 19), "sse4.1");
    osxsave = (ecx & (1u << 27)) != 0;
    avx = add(ecx & (1u << 28), "avx");
    fma = add(ecx & (1u << 12), "fma");
    if (osxsave) xcr0 = read_xcr0();
  }
  // XMM and YMM state (bits 1-2); opmask, ZMM_Hi256 and Hi16_ZMM (bits 5-7).
  const bool os_ymm = add(osxsave && (xcr0 & 0x6) == 0x6, "os_ymm");
  const bool os_zmm = add(os_ymm && (xcr0 & 0xE0) == 0xE0, "os_zmm");
  bool avx2 = false, avx512 = false, avx512_vnni = false, avx_vnni = false;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) {
    const unsigned max_subleaf = eax;
    avx2 = add(ebx & (1u << 5), "avx2");
    const bool f = add(ebx & (1u << 16), "avx512f");
    const bool bw = add(ebx & (1u << 30), "avx512bw");
    const bool vl = add(ebx & (1u << 31), "avx512vl");
    avx512 = f && bw && vl;
    avx512_vnni = add(ecx & (1u << 11), "avx512_vnni");
    if (max_subleaf >= 1 && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) {
      avx_vnni = add(eax & (1u << 4), "avx_vnni");
    }
  }
  const bool has_avx2 = avx && avx2 && fma && os_ymm;
  if (has_avx2) d.features |= kFeatureAvx2;
  if (has_avx2 && avx512 && os_zmm) d.features |= kFeatureAvx512;
  if (has_avx2 && avx512 && os_zmm && avx512_vnni) d.features |= kFeatureAvx512Vnni;
  if (has_avx2 && avx_vnni) d.features |= kFeatureAvxVnni;
#elif defined(__aarch64__)
  d.info.arch = "aarch64";
  d.info.features.push_back("asimd");  // mandatory in AArch64
  d.features |= kFeatureNeon;
#if defined(__linux__)
  if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) {
    d.info.features.push_back("asimddp");
    d.features |= kFeatureNeonDot;
  }
#if defined(HWCAP2_I8MM)
  if (getauxval(AT_HWCAP2) & HWCAP2_I8MM) {
    d.info.features.push_back("i8mm");
    d.features |= kFeatureNeonI8mm;
  }
#endif
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

struct Registered {
  PathEntry entry;    // table resolved, requires including the ancestors'
  bool test = false;  // a test path: available everywhere, never the default
  bool available = false;
};

struct Registry {
  std::vector<Registered> paths;  // index = Path value; scalar first
  std::vector<int> by_priority;   // available paths, most portable first
};

std::vector<const PathEntry*>& test_entries() {
  static std::vector<const PathEntry*> entries;
  return entries;
}
std::atomic<bool> g_registry_built{false};

const Registered* find(const std::vector<Registered>& paths, const char* name) {
  for (const Registered& r : paths) {
    if (std::strcmp(r.entry.name, name) == 0) return &r;
  }
  return nullptr;
}

// Fills the null entries of `table` from the inherited (already resolved)
// path and merges its requirements.
void inherit(Registered* r, const Registered& parent) {
  KernelTable& t = r->entry.table;
  const KernelTable& p = parent.entry.table;
  if (t.requant_u8 == nullptr) t.requant_u8 = p.requant_u8;
  if (t.mulquant_s32 == nullptr) t.mulquant_s32 = p.mulquant_s32;
  if (t.quantize_f32 == nullptr) t.quantize_f32 = p.quantize_f32;
  if (t.direct_conv == nullptr) t.direct_conv = p.direct_conv;
  if (t.direct_deconv == nullptr) t.direct_deconv = p.direct_deconv;
  // A narrow kernel belongs with its path's default one: inherit it only
  // together with the GEMM kernel.
  if (t.gemm == nullptr) {
    t.gemm = p.gemm;
    t.gemm_narrow = p.gemm_narrow;
  }
  if (!r->test) r->entry.requires |= parent.entry.requires;
}

Registry build_registry() {
  Registry reg;
  std::vector<const PathEntry*> entries = {&path_entry_scalar()};
#define LOWP_PATH(name) entries.push_back(&native::path_entry_##name());
#include "lowp_paths.inc"
#undef LOWP_PATH
  const size_t native_count = entries.size();
  for (const PathEntry* e : test_entries()) entries.push_back(e);
  // Parents first: an entry is added once the path it inherits from is in.
  std::vector<bool> done(entries.size(), false);
  for (bool progress = true; progress;) {
    progress = false;
    for (size_t i = 0; i < entries.size(); ++i) {
      if (done[i] || static_cast<int>(reg.paths.size()) >= kMaxPaths) continue;
      Registered r;
      r.entry = *entries[i];
      r.test = i >= native_count;
      // A test build of an ISA's sources (SIMDe) runs on any CPU, so it only
      // inherits the portable kernels.
      const char* parent = r.test ? "scalar" : r.entry.inherits;
      if (parent != nullptr) {
        const Registered* p = find(reg.paths, parent);
        if (p == nullptr) continue;  // not resolved yet (or never: then left out)
        inherit(&r, *p);
      }
      if (r.test) r.entry.priority = -1;
      r.available = r.test || (r.entry.requires & ~detected().features) == 0;
      reg.paths.push_back(r);
      done[i] = true;
      progress = true;
    }
  }
  for (size_t i = 0; i < reg.paths.size(); ++i) {
    if (reg.paths[i].available) reg.by_priority.push_back(static_cast<int>(i));
  }
  std::stable_sort(reg.by_priority.begin(), reg.by_priority.end(), [&](int a, int b) {
    return reg.paths[a].entry.priority < reg.paths[b].entry.priority;
  });
  g_registry_built.store(true);
  return reg;
}

const Registry& registry() {
  static const Registry reg = build_registry();
  return reg;
}

const Registered* registered(Path path) {
  const auto& paths = registry().paths;
  const int p = static_cast<int>(path);
  return p >= 0 && p < static_cast<int>(paths.size()) ? &paths[p] : nullptr;
}

// -1 until first use, then the active path.
std::atomic<int> g_active{-1};

}  // namespace

bool register_test_path(const PathEntry* entry) {
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  if (g_registry_built.load()) return false;
  test_entries().push_back(entry);
  return true;
}

const char* path_name(Path path) {
  const Registered* r = registered(path);
  return r != nullptr ? r->entry.name : "unknown";
}

bool path_from_name(const std::string& name, Path* path) {
  const auto& paths = registry().paths;
  for (size_t p = 0; p < paths.size(); ++p) {
    if (name == paths[p].entry.name) {
      *path = static_cast<Path>(p);
      return true;
    }
  }
  return false;
}

std::vector<Path> registered_paths() {
  std::vector<Path> out;
  for (size_t p = 0; p < registry().paths.size(); ++p) out.push_back(static_cast<Path>(p));
  return out;
}

// Test paths (priority -1) come first, then scalar, then the real ones: the
// default, the last, is always a path the CPU itself runs.
std::vector<Path> available_paths() {
  std::vector<Path> out;
  for (int p : registry().by_priority) out.push_back(static_cast<Path>(p));
  return out;
}

bool path_available(Path path) {
  const Registered* r = registered(path);
  return r != nullptr && r->available;
}

Path active_path() {
  int p = g_active.load(std::memory_order_acquire);
  if (p < 0) {
    int expected = -1;
    g_active.compare_exchange_strong(expected, registry().by_priority.back());
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
  const Registered* r = registered(path);
  return r != nullptr ? r->entry.table : registry().paths[0].entry.table;
}

const KernelTable& active_kernels() { return kernels_of(active_path()); }

const GemmKernel& gemm_kernel_for(const KernelTable& table, size_t n) {
  return table.gemm_narrow != nullptr && n <= table.gemm_narrow->nr ? *table.gemm_narrow
                                                                    : *table.gemm;
}

}  // namespace lowp
