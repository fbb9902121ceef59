// A minimal test runner for the core (no test framework: the same binary is
// cross-compiled for aarch64 and run under qemu-user).
#include <cstdio>
#include <vector>

#include "test_util.h"

namespace lowp_test {

std::vector<TestCase>& registry() {
  static std::vector<TestCase> tests;
  return tests;
}

Registrar::Registrar(const char* name, void (*fn)()) { registry().push_back({name, fn}); }

int g_failures = 0;

}  // namespace lowp_test

int main() {
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
