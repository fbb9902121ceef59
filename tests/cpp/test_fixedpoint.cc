// Fixed-point tests: the shared edge-case table against the scalar
// definitions, then every available path's kernels against the scalar path
// (the table's sweep values and 10 million random values per path).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "fixedpoint_scalar.h"
#include "kernels.h"
#include "lowp/lowp.h"
#include "test_util.h"

namespace {

struct EdgeTable {
  std::vector<int32_t> values, multipliers;
  struct Qm {
    double real;
    int32_t m0, shift;
  };
  struct Srdhm {
    int32_t a, b, r;
  };
  struct Rdivpot {
    int32_t x;
    int e;
    int32_t r;
  };
  struct MulQuant {
    int32_t x, m;
    int shift;
    int32_t r;
  };
  std::vector<Qm> qm;
  std::vector<Srdhm> srdhm;
  std::vector<Rdivpot> rdivpot;
  std::vector<MulQuant> mulquant;
};

const EdgeTable& edge_table() {
  static const EdgeTable table = [] {
    EdgeTable t;
    const char* path = std::getenv("LOWP_EDGE_TABLE");
    std::ifstream in(path ? path : LOWP_EDGE_TABLE);
    if (!in) {
      std::printf("cannot open the edge table %s\n", path ? path : LOWP_EDGE_TABLE);
      std::exit(2);
    }
    std::string line, kind;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream f(line);
      f >> kind;
      long long a, b, c, d;
      if (kind == "value") {
        f >> a;
        t.values.push_back(static_cast<int32_t>(a));
      } else if (kind == "multiplier") {
        f >> a;
        t.multipliers.push_back(static_cast<int32_t>(a));
      } else if (kind == "quantize_multiplier") {
        std::string real;
        f >> real >> a >> b;
        t.qm.push_back(
            {std::strtod(real.c_str(), nullptr), static_cast<int32_t>(a), static_cast<int32_t>(b)});
      } else if (kind == "srdhm") {
        f >> a >> b >> c;
        t.srdhm.push_back(
            {static_cast<int32_t>(a), static_cast<int32_t>(b), static_cast<int32_t>(c)});
      } else if (kind == "rdivpot") {
        f >> a >> b >> c;
        t.rdivpot.push_back(
            {static_cast<int32_t>(a), static_cast<int>(b), static_cast<int32_t>(c)});
      } else if (kind == "mulquant") {
        f >> a >> b >> c >> d;
        t.mulquant.push_back({static_cast<int32_t>(a), static_cast<int32_t>(b), static_cast<int>(c),
                              static_cast<int32_t>(d)});
      }
      if (f.fail()) {
        std::printf("bad edge table line: %s\n", line.c_str());
        std::exit(2);
      }
    }
    return t;
  }();
  return table;
}

// Runs fn once per available path with that path forced, then restores it.
template <typename Fn>
void for_each_path(Fn fn) {
  const lowp::Path saved = lowp::active_path();
  for (lowp::Path p : lowp::available_paths()) {
    lowp::set_active_path(p);
    fn(p);
  }
  lowp::set_active_path(saved);
}

// Checks one requantize / multiply configuration on the active path against
// the scalar definitions, element by element. Outputs start as a sentinel
// (0xA5) and the buffers have guard bytes after the end to catch stray writes.
class RequantTester {
 public:
  RequantTester& acc(std::vector<int32_t> v) {
    acc_ = std::move(v);
    return *this;
  }
  RequantTester& channels(std::vector<int32_t> m, std::vector<int32_t> s) {
    m_ = std::move(m);
    s_ = std::move(s);
    return *this;
  }
  RequantTester& zero_point(int32_t zp) {
    zp_ = zp;
    return *this;
  }
  RequantTester& clamp(int32_t lo, int32_t hi) {
    qmin_ = lo;
    qmax_ = hi;
    return *this;
  }

  void test() const {
    const size_t n = acc_.size(), period = m_.size();
    const char* path = lowp::path_name(lowp::active_path());
    std::vector<uint8_t> out(n + 64, 0xA5);
    lowp::requantize_u8(acc_.data(), n, m_.data(), s_.data(), period, zp_, qmin_, qmax_,
                        out.data());
    std::vector<int32_t> out32(n + 16, int32_t(0xA5A5A5A5));
    lowp::multiply_by_quantized_multiplier_s32(acc_.data(), n, m_.data(), s_.data(), period,
                                               out32.data());
    size_t c = 0;
    for (size_t i = 0; i < n; ++i) {
      const uint8_t want =
          lowp::fixedpoint::requantize_one(acc_[i], m_[c], s_[c], zp_, qmin_, qmax_);
      LOWP_CHECK(out[i] == want, "%s requant acc=%d m=%d shift=%d zp=%d [%d,%d]: got %d want %d",
                 path, acc_[i], m_[c], s_[c], zp_, qmin_, qmax_, out[i], want);
      const int32_t want32 =
          lowp::fixedpoint::multiply_by_quantized_multiplier(acc_[i], m_[c], s_[c]);
      LOWP_CHECK(out32[i] == want32, "%s mulquant x=%d m=%d shift=%d: got %d want %d", path,
                 acc_[i], m_[c], s_[c], out32[i], want32);
      if (++c == period) c = 0;
    }
    for (size_t i = n; i < out.size(); ++i) LOWP_CHECK(out[i] == 0xA5, "%s stray write", path);
    for (size_t i = n; i < out32.size(); ++i)
      LOWP_CHECK(out32[i] == int32_t(0xA5A5A5A5), "%s stray write", path);
  }

 private:
  std::vector<int32_t> acc_, m_{1 << 30}, s_{0};
  int32_t zp_ = 0, qmin_ = 0, qmax_ = 255;
};

struct ClampCase {
  int32_t zp, lo, hi;
};
const ClampCase kClamps[] = {{0, 0, 255},     {128, 0, 255},   {255, 0, 255},
                             {3, 10, 200},    {0, 0, 0},       {255, 255, 255},
                             {100, 100, 100}, {128, 128, 255}, {200, 0, 127}};

}  // namespace

LOWP_TEST(edge_table_quantize_multiplier) {
  for (const auto& c : edge_table().qm) {
    int32_t m0 = -1, shift = -1;
    LOWP_CHECK(lowp::quantize_multiplier(c.real, &m0, &shift), "real=%a refused", c.real);
    LOWP_CHECK(m0 == c.m0 && shift == c.shift, "real=%a: got (%d, %d) want (%d, %d)", c.real, m0,
               shift, c.m0, c.shift);
  }
  int32_t m0, shift;
  LOWP_CHECK(!lowp::quantize_multiplier(std::nan(""), &m0, &shift), "NaN accepted");
  LOWP_CHECK(!lowp::quantize_multiplier(-1.0, &m0, &shift), "negative accepted");
  LOWP_CHECK(!lowp::quantize_multiplier(INFINITY, &m0, &shift), "inf accepted");
  LOWP_CHECK(!lowp::quantize_multiplier(std::ldexp(1.0, 30), &m0, &shift), "2^30 accepted");
}

LOWP_TEST(edge_table_scalar_definitions) {
  const EdgeTable& t = edge_table();
  LOWP_CHECK(t.values.size() > 400 && t.srdhm.size() > 50 && t.rdivpot.size() > 1000,
             "edge table looks truncated");
  for (const auto& c : t.srdhm)
    LOWP_CHECK(lowp::srdhm(c.a, c.b) == c.r, "srdhm(%d, %d) = %d, want %d", c.a, c.b,
               lowp::srdhm(c.a, c.b), c.r);
  for (const auto& c : t.rdivpot)
    LOWP_CHECK(lowp::rdivpot(c.x, c.e) == c.r, "rdivpot(%d, %d) = %d, want %d", c.x, c.e,
               lowp::rdivpot(c.x, c.e), c.r);
  for (const auto& c : t.mulquant) {
    const int32_t got = lowp::multiply_by_quantized_multiplier(c.x, c.m, c.shift);
    LOWP_CHECK(got == c.r, "mulquant(%d, %d, %d) = %d, want %d", c.x, c.m, c.shift, got, c.r);
  }
}

LOWP_TEST(edge_table_every_path) {
  const EdgeTable& t = edge_table();
  // Layout [value][shift]: channel j has shift j - 31, so one per-channel
  // call covers every shift for every value.
  std::vector<int32_t> acc, shifts;
  for (int s = -31; s <= 30; ++s) shifts.push_back(s);
  for (int32_t v : t.values)
    for (size_t j = 0; j < shifts.size(); ++j) acc.push_back(v);
  for_each_path([&](lowp::Path) {
    for (int32_t m : t.multipliers) {
      for (const ClampCase& c : kClamps) {
        RequantTester()
            .acc(acc)
            .channels(std::vector<int32_t>(shifts.size(), m), shifts)
            .zero_point(c.zp)
            .clamp(c.lo, c.hi)
            .test();
      }
      for (int s : {-31, -1, 0, 1, 30})  // per-tensor
        RequantTester().acc(t.values).channels({m}, {s}).zero_point(77).test();
    }
  });
}

LOWP_TEST(lengths_and_periods_every_path) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> any(INT32_MIN, INT32_MAX);
  std::uniform_int_distribution<int32_t> mult(0, INT32_MAX), shift(-31, 30);
  for_each_path([&](lowp::Path) {
    for (size_t period : {1, 2, 3, 5, 7, 8, 9, 16, 17, 31, 32, 33, 63, 64, 65, 100}) {
      for (size_t rows : {1, 2, 3, 7}) {
        for (size_t extra : {size_t{0}, period / 2}) {  // a partial last row
          std::vector<int32_t> acc(period * rows + extra), m(period), s(period);
          for (auto& v : acc) v = any(rng) >> (rng() % 32);
          for (auto& v : m) v = mult(rng);
          for (auto& v : s) v = shift(rng);
          RequantTester().acc(acc).channels(m, s).zero_point(rng() % 256).clamp(0, 255).test();
        }
      }
    }
  });
}

LOWP_TEST(random_sweep_10m_every_path) {
  // Ten million random accumulators per path against the scalar definition, with
  // random per-channel multipliers and shifts and random zero points and
  // clamps per block.
  constexpr size_t kTotal = 10'000'000, kBlock = 1 << 17;
  std::mt19937_64 rng(2024);
  std::vector<int32_t> acc(kBlock), m, s;
  std::vector<uint8_t> got(kBlock), want(kBlock);
  std::vector<int32_t> got32(kBlock), want32(kBlock);
  const lowp::Path saved = lowp::active_path();
  for (lowp::Path p : lowp::available_paths()) {
    if (p == lowp::Path::kScalar) continue;
    lowp::set_active_path(p);
    size_t mismatches = 0;
    for (size_t done = 0; done < kTotal; done += kBlock) {
      const size_t periods[] = {1, 3, 8, 37, 64, 1000};
      const size_t period = periods[rng() % 6];
      m.resize(period);
      s.resize(period);
      for (auto& v : m) v = static_cast<int32_t>(rng() % 2147483648u);
      for (auto& v : s) v = static_cast<int32_t>(rng() % 62) - 31;
      for (auto& v : acc) v = static_cast<int32_t>(static_cast<uint32_t>(rng())) >> (rng() % 32);
      int32_t lo = static_cast<int32_t>(rng() % 256), hi = static_cast<int32_t>(rng() % 256);
      if (lo > hi) std::swap(lo, hi);
      if (rng() % 2) lo = 0, hi = 255;
      const int32_t zp = static_cast<int32_t>(rng() % 256);
      lowp::requantize_u8(acc.data(), kBlock, m.data(), s.data(), period, zp, lo, hi, got.data());
      for (size_t i = 0; i < kBlock; ++i) {
        want[i] =
            lowp::fixedpoint::requantize_one(acc[i], m[i % period], s[i % period], zp, lo, hi);
      }
      lowp::multiply_by_quantized_multiplier_s32(acc.data(), kBlock, m.data(), s.data(), period,
                                                 got32.data());
      for (size_t i = 0; i < kBlock; ++i) {
        want32[i] = lowp::fixedpoint::multiply_by_quantized_multiplier(acc[i], m[i % period],
                                                                       s[i % period]);
      }
      mismatches += std::memcmp(got.data(), want.data(), kBlock) != 0;
      mismatches += std::memcmp(got32.data(), want32.data(), kBlock * sizeof(int32_t)) != 0;
    }
    LOWP_CHECK(mismatches == 0, "%s: %zu blocks differ from the scalar path", lowp::path_name(p),
               mismatches);
  }
  lowp::set_active_path(saved);
}

LOWP_TEST(quantize_f32_every_path) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 50.0f);
  std::vector<float> x(100003);
  for (auto& v : x) v = normal(rng);
  // Exact ties of x / scale, both signs, and values far outside the range.
  for (int i = 0; i < 200; ++i) x[i] = (static_cast<float>(i) - 100.0f) * 0.5f;
  x[200] = INFINITY;
  x[201] = -INFINITY;
  x[202] = 1e30f;
  x[203] = -1e30f;
  struct Case {
    float scale;
    int32_t zp, lo, hi;
  };
  const Case cases[] = {{0.5f, 128, 0, 255},
                        {0.25f, 0, -128, 127},
                        {0.1f, -3, -127, 127},
                        {1.0f, 0, 0, 255},
                        {0.37f, 200, 10, 250}};
  for (const Case& c : cases) {
    std::vector<uint8_t> want(x.size());
    const float bias = c.lo < 0 ? 128.0f : 0.0f;
    lowp::kernels_of(lowp::Path::kScalar)
        .quantize_f32(x.data(), x.size(), c.scale, c.zp + bias, c.lo + bias, c.hi + bias,
                      c.lo < 0 ? 0x80 : 0, want.data());
    // The scalar kernel against the definition, in double where it is exact.
    for (size_t i = 0; i < x.size(); ++i) {
      float q = std::nearbyint(x[i] / c.scale) + static_cast<float>(c.zp);
      q = std::fmin(std::fmax(q, static_cast<float>(c.lo)), static_cast<float>(c.hi));
      const int32_t def = static_cast<int32_t>(q);
      const int32_t got = c.lo < 0 ? static_cast<int8_t>(want[i]) : want[i];
      LOWP_CHECK(got == def, "quantize x=%g scale=%g: got %d want %d", x[i], c.scale, got, def);
    }
    for_each_path([&](lowp::Path p) {
      for (size_t n : {x.size(), size_t{1}, size_t{7}, size_t{31}, size_t{33}}) {
        std::vector<uint8_t> got(n + 32, 0xA5);
        LOWP_CHECK(lowp::quantize_f32_8bit(x.data(), n, c.scale, c.zp, c.lo, c.hi, got.data()),
                   "%s reported NaN", lowp::path_name(p));
        LOWP_CHECK(std::memcmp(got.data(), want.data(), n) == 0, "%s quantize differs (n=%zu)",
                   lowp::path_name(p), n);
        for (size_t i = n; i < got.size(); ++i) LOWP_CHECK(got[i] == 0xA5, "stray write");
      }
      std::vector<float> with_nan(x.begin(), x.begin() + 45);
      with_nan[40] = NAN;
      std::vector<uint8_t> out(with_nan.size());
      LOWP_CHECK(!lowp::quantize_f32_8bit(with_nan.data(), with_nan.size(), c.scale, c.zp, c.lo,
                                          c.hi, out.data()),
                 "%s missed a NaN", lowp::path_name(p));
    });
  }
}

LOWP_TEST(thread_count_does_not_change_results) {
  std::mt19937 rng(5);
  std::vector<int32_t> acc(3'000'001), m(37), s(37);
  for (auto& v : acc) v = static_cast<int32_t>(rng());
  for (auto& v : m) v = static_cast<int32_t>(rng() % 2147483648u);
  for (auto& v : s) v = static_cast<int32_t>(rng() % 62) - 31;
  std::vector<uint8_t> one(acc.size()), many(acc.size());
  const int saved = lowp::num_threads();
  lowp::set_num_threads(1);
  lowp::requantize_u8(acc.data(), acc.size(), m.data(), s.data(), 37, 9, 0, 255, one.data());
  for (int threads : {2, 3, 8}) {
    lowp::set_num_threads(threads);
    lowp::requantize_u8(acc.data(), acc.size(), m.data(), s.data(), 37, 9, 0, 255, many.data());
    LOWP_CHECK(one == many, "%d threads differ from 1", threads);
  }
  lowp::set_num_threads(saved);
}

LOWP_TEST(path_selection) {
  LOWP_CHECK(lowp::path_available(lowp::Path::kScalar), "scalar must always be available");
  LOWP_CHECK(std::string(lowp::path_name(lowp::Path::kScalar)) == "scalar", "path 0 is scalar");
  lowp::Path p;
  LOWP_CHECK(!lowp::path_from_name("sse9", &p), "unknown name accepted");
  for (lowp::Path q : lowp::registered_paths()) {
    LOWP_CHECK(lowp::path_from_name(lowp::path_name(q), &p) && p == q, "name lookup of %s",
               lowp::path_name(q));
  }
  const lowp::CpuInfo info = lowp::cpu_info();
#if defined(__x86_64__)
  LOWP_CHECK(info.arch == "x86_64", "arch %s", info.arch.c_str());
  LOWP_CHECK(!lowp::path_from_name("neon", &p), "neon registered on x86-64");
  LOWP_CHECK(lowp::path_from_name("avx2", &p), "avx2 not registered on x86-64");
  const bool has_avx2 =
      std::find(info.features.begin(), info.features.end(), "avx2") != info.features.end();
  LOWP_CHECK(lowp::path_available(p) == has_avx2, "avx2 availability differs from CPUID");
#elif defined(__aarch64__)
  LOWP_CHECK(info.arch == "aarch64", "arch %s", info.arch.c_str());
  LOWP_CHECK(lowp::path_from_name("neon", &p) && lowp::path_available(p), "neon missing");
  LOWP_CHECK(!lowp::path_from_name("avx2", &p), "avx2 registered on aarch64");
#endif
  // The default is the last available path, and it is one this CPU runs
  // itself (never a SIMDe test path).
  const std::vector<lowp::Path> avail = lowp::available_paths();
  const std::string best = lowp::path_name(avail.back());
  LOWP_CHECK(best.find("_simde") == std::string::npos, "default is a test path: %s", best.c_str());
  // The Nehalem run under qemu (no AVX) sets this to "scalar": proof that the
  // detection, not the build, picks the path.
  if (const char* want = std::getenv("LOWP_EXPECT_DEFAULT_PATH")) {
    LOWP_CHECK(best == want, "default path %s, expected %s", best.c_str(), want);
  }
}
