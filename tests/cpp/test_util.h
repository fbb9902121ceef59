// Test registration and checks for the C++ core tests.
#pragma once

#include <cstdio>

namespace lowp_test {

struct TestCase {
  const char* name;
  void (*fn)();
};

struct Registrar {
  Registrar(const char* name, void (*fn)());
};

extern int g_failures;

}  // namespace lowp_test

#define LOWP_TEST(name)                                         \
  static void name();                                           \
  static ::lowp_test::Registrar name##_registrar(#name, &name); \
  static void name()

// Reports at most a few failures per test so a broken kernel stays readable.
#define LOWP_CHECK(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond)) {                                                             \
      if (++::lowp_test::g_failures < 20) {                                    \
        std::printf("  %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
        std::printf(__VA_ARGS__);                                              \
        std::printf("\n");                                                     \
      }                                                                        \
    }                                                                          \
  } while (0)

namespace lowp_test {
// Counts a failure; true if it should still be printed.
inline bool count_failure(const char* file, int line, const char* cond) {
  if (++g_failures >= 20) return false;
  std::printf("  %s:%d: check failed: %s: ", file, line, cond);
  return true;
}
}  // namespace lowp_test

// LOWP_CHECK as an expression: the condition's value, so that a tester can
// stop at the first failure of a case.
#define LOWP_EXPECT(cond, ...)                                       \
  ((cond) ? true                                                     \
          : ((::lowp_test::count_failure(__FILE__, __LINE__, #cond)  \
                  ? (std::printf(__VA_ARGS__), std::printf("\n"), 0) \
                  : 0),                                              \
             false))
