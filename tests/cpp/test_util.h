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
