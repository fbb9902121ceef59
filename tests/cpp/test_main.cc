// A minimal test runner for the core (no test framework: the same binary is
// cross-compiled for aarch64 and run under qemu-user).
#include <cstdio>
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

int main() {
#define LOWP_PATH(name) lowp::register_test_path(&lowp::simde_build::path_entry_##name());
#include "lowp_simde_paths.inc"
#undef LOWP_PATH
  std::printf("paths:");
  for (lowp::Path p : lowp::available_paths()) std::printf(" %s", lowp::path_name(p));
  std::printf(" (default %s)\n", lowp::path_name(lowp::active_path()));
  int passed = 0, failed = 0;
  for (const auto& test : lowp_test::registry()) {
    const int before = lowp_test::g_failures;
    test.fn();
    if (lowp_test::g_failures == before) {
      ++passed;
      std::printf("[ PASS ] %s\n", test.name);
    } else {
      ++failed;
      std::printf("[ FAIL ] %s\n", test.name);
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
