// A minimal test runner for the core (no test framework: the same binary is
// cross-compiled for aarch64 and run under qemu-user).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "lowp/lowp.h"
#include "paths.h"
#include "test_util.h"

// The SIMDe builds of ISA folders this CPU may lack (cmake/lowp_isa.cmake).
namespace lowp {
namespace simde_build {
#define LOWP_PATH(name) const PathEntry& path_entry_##name();
#include "lowp_simde_paths.inc"
#undef LOWP_PATH
}  // namespace simde_build
}  // namespace lowp

namespace lowp_test {

std::vector<TestCase>& registry() {
  static std::vector<TestCase> tests;
  return tests;
}

Registrar::Registrar(const char* name, void (*fn)()) { registry().push_back({name, fn}); }

int g_failures = 0;

}  // namespace lowp_test

namespace {

// LOWP_TEST_FILTER: comma-separated substrings of the test names to run
// (all when unset or empty), e.g. for the slow emulated runs in CI.
bool selected(const char* name) {
  const char* filter = std::getenv("LOWP_TEST_FILTER");
  if (filter == nullptr || *filter == '\0') return true;
  const std::string list(filter);
  for (size_t begin = 0; begin <= list.size();) {
    size_t end = list.find(',', begin);
    if (end == std::string::npos) end = list.size();
    const std::string word = list.substr(begin, end - begin);
    if (!word.empty() && std::strstr(name, word.c_str()) != nullptr) return true;
    begin = end + 1;
  }
  return false;
}

}  // namespace

int main() {
#define LOWP_PATH(name) lowp::register_test_path(&lowp::simde_build::path_entry_##name());
#include "lowp_simde_paths.inc"
#undef LOWP_PATH
  std::printf("paths:");
  for (lowp::Path p : lowp::available_paths()) std::printf(" %s", lowp::path_name(p));
  std::printf(" (default %s)\n", lowp::path_name(lowp::active_path()));
  int passed = 0, failed = 0, skipped = 0;
  for (const auto& test : lowp_test::registry()) {
    if (!selected(test.name)) {
      ++skipped;
      continue;
    }
    const int before = lowp_test::g_failures;
    const auto start = std::chrono::steady_clock::now();
    test.fn();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    const bool ok = lowp_test::g_failures == before;
    (ok ? passed : failed) += 1;
    std::printf("[ %s ] %s (%.0f ms)\n", ok ? "PASS" : "FAIL", test.name, ms);
    std::fflush(stdout);
  }
  std::printf("%d passed, %d failed", passed, failed);
  if (skipped > 0) std::printf(", %d not selected by LOWP_TEST_FILTER", skipped);
  std::printf("\n");
  return failed == 0 ? 0 : 1;
}
