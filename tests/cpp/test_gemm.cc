// GEMM tests: every available path against a plain triple loop in int64,
// bit for bit, with int32 and fused uint8 output, edge tiles, K blocks,
// per-column zero points and output canaries.
#include <algorithm>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "fixedpoint_scalar.h"
#include "gemm.h"
#include "kernels.h"
#include "lowp/lowp.h"
#include "test_util.h"

namespace {

class GemmTester {
 public:
  GemmTester& shape(size_t m, size_t k, size_t n) {
    m_ = m;
    k_ = k;
    n_ = n;
    return *this;
  }
  GemmTester& a_zero_point(int32_t zp) {
    a_zp_ = zp;
    return *this;
  }
  GemmTester& per_column_zero_points(bool on) {
    per_column_ = on;
    return *this;
  }
  GemmTester& bias(bool on) {
    bias_ = on;
    return *this;
  }
  GemmTester& requant(bool on) {
    requant_ = on;
    return *this;
  }
  // Only these paths (default: every available one).
  GemmTester& paths(const std::vector<lowp::Path>& p) {
    paths_ = p;
    return *this;
  }
  GemmTester& fill(uint8_t a, uint8_t b) {  // constant operands (worst cases)
    fill_ = true;
    fill_a_ = a;
    fill_b_ = b;
    return *this;
  }

  void test(uint32_t seed) const {
    std::mt19937 rng(seed);
    std::vector<uint8_t> a(m_ * k_), b(k_ * n_);
    for (auto& v : a) v = fill_ ? fill_a_ : static_cast<uint8_t>(rng());
    for (auto& v : b) v = fill_ ? fill_b_ : static_cast<uint8_t>(rng());
    std::vector<int32_t> bzp(per_column_ ? n_ : 1), bias(n_);
    for (auto& v : bzp) v = fill_ ? 255 - fill_b_ : static_cast<int32_t>(rng() % 256);
    for (auto& v : bias) v = bias_ ? static_cast<int32_t>(rng() % 2000001) - 1000000 : 0;
    std::vector<int32_t> mult(requant_ ? n_ : 1), shift(mult.size());
    for (size_t j = 0; j < mult.size(); ++j) {
      mult[j] = (1 << 30) + static_cast<int32_t>(rng() % (1u << 30));
      shift[j] = -static_cast<int32_t>(rng() % 20) + 2;
    }
    const int32_t zp = 77, qmin = 5, qmax = 240;

    std::vector<int32_t> want(m_ * n_);
    for (size_t i = 0; i < m_; ++i) {
      for (size_t j = 0; j < n_; ++j) {
        int64_t sum = 0;
        const int64_t bz = bzp[per_column_ ? j : 0];
        for (size_t kk = 0; kk < k_; ++kk) sum += (a[i * k_ + kk] - a_zp_) * (b[kk * n_ + j] - bz);
        want[i * n_ + j] = static_cast<int32_t>(sum + bias[j]);
      }
    }
    const lowp::Path saved = lowp::active_path();
    for (lowp::Path p : paths_.empty() ? lowp::available_paths() : paths_) {
      lowp::set_active_path(p);
      lowp::Gemm gemm(b.data(), k_, n_, n_, bzp.data(), bzp.size(), a_zp_,
                      bias_ ? bias.data() : nullptr);
      const char* name = lowp::path_name(p);
      if (!requant_) {
        std::vector<int32_t> c(m_ * n_ + 16, int32_t(0xA5A5A5A5));
        gemm.run(a.data(), m_, k_, c.data(), n_);
        LOWP_CHECK(std::memcmp(c.data(), want.data(), want.size() * 4) == 0,
                   "%s int32 %zux%zux%zu differs", name, m_, k_, n_);
        for (size_t i = want.size(); i < c.size(); ++i)
          LOWP_CHECK(c[i] == int32_t(0xA5A5A5A5), "%s stray write", name);
      } else {
        std::vector<uint8_t> c(m_ * n_ + 64, 0xA5);
        const lowp::Requantization rq = {mult.data(), shift.data(), mult.size(), zp, qmin, qmax};
        gemm.run(a.data(), m_, k_, rq, c.data(), n_);
        for (size_t i = 0; i < m_ * n_; ++i) {
          const size_t ch = mult.size() == 1 ? 0 : i % n_;
          const uint8_t w =
              lowp::fixedpoint::requantize_one(want[i], mult[ch], shift[ch], zp, qmin, qmax);
          LOWP_CHECK(c[i] == w, "%s requant %zux%zux%zu at %zu: got %d want %d", name, m_, k_, n_,
                     i, c[i], w);
        }
        for (size_t i = m_ * n_; i < c.size(); ++i)
          LOWP_CHECK(c[i] == 0xA5, "%s stray write", name);
      }
    }
    lowp::set_active_path(saved);
  }

 private:
  size_t m_ = 1, k_ = 1, n_ = 1;
  int32_t a_zp_ = 0;
  bool per_column_ = false, bias_ = false, requant_ = false, fill_ = false;
  uint8_t fill_a_ = 0, fill_b_ = 0;
  std::vector<lowp::Path> paths_;
};

// The available paths grouped by the GEMM kernel they run for wide N
// (narrow = false) and, where a path has one, for N <= the narrow kernel's
// nr (narrow = true), for shapes derived from a kernel's tile and K block.
struct KernelPaths {
  const lowp::GemmKernel* kernel;
  bool narrow;
  std::vector<lowp::Path> paths;
};

std::vector<KernelPaths> paths_by_kernel() {
  std::vector<KernelPaths> out;
  auto add = [&](const lowp::GemmKernel* kn, bool narrow, lowp::Path p) {
    if (kn == nullptr) return;
    auto it = std::find_if(out.begin(), out.end(), [&](const KernelPaths& e) {
      return e.kernel == kn && e.narrow == narrow;
    });
    if (it == out.end()) {
      out.push_back({kn, narrow, {p}});
    } else {
      it->paths.push_back(p);
    }
  };
  for (lowp::Path p : lowp::available_paths()) {
    add(lowp::kernels_of(p).gemm, false, p);
    add(lowp::kernels_of(p).gemm_narrow, true, p);
  }
  return out;
}

}  // namespace

// K = 0 is an empty sum: the result is the bias (a division by K in the
// task shape once made it a SIGFPE).
LOWP_TEST(gemm_empty_k_is_the_bias) {
  const int32_t zp = 128, bias[3] = {5, -6, 7};
  const lowp::Path saved = lowp::active_path();
  for (lowp::Path p : lowp::available_paths()) {
    lowp::set_active_path(p);
    const uint8_t none = 0;
    lowp::Gemm gemm(&none, 0, 3, 3, &zp, 1, 9, bias);
    std::vector<int32_t> c(4 * 3, int32_t(0xA5A5A5A5));
    gemm.run(&none, 4, 0, c.data(), 3);
    for (size_t i = 0; i < c.size(); ++i) {
      LOWP_CHECK(c[i] == bias[i % 3], "%s K = 0: c[%zu] = %d", lowp::path_name(p), i, c[i]);
    }
  }
  lowp::set_active_path(saved);
}

LOWP_TEST(gemm_edge_tiles) {
  const size_t dims[] = {1, 2, 3, 5, 6, 7, 8, 9, 12, 15, 16, 17, 23, 24, 25, 33};
  uint32_t seed = 1;
  for (size_t m : dims)
    for (size_t n : dims)
      for (size_t k : {1, 2, 3, 4, 5, 8, 13, 64})
        GemmTester().shape(m, k, n).a_zero_point(static_cast<int32_t>(m * 7 % 256)).test(seed++);
}

LOWP_TEST(gemm_depths_and_blocks) {
  uint32_t seed = 100;
  for (size_t k : {255, 256, 257, 511, 512, 513, 1024, 1031, 2500}) {
    GemmTester().shape(13, k, 35).a_zero_point(128).per_column_zero_points(true).bias(true).test(
        seed++);
  }
}

LOWP_TEST(gemm_fused_output_stage) {
  uint32_t seed = 200;
  for (size_t m : {1, 5, 8, 17, 64})
    for (size_t n : {1, 7, 8, 16, 33})
      for (bool per_column : {false, true})
        GemmTester()
            .shape(m, 70, n)
            .a_zero_point(3)
            .per_column_zero_points(per_column)
            .bias(true)
            .requant(per_column)
            .test(seed++);
  GemmTester().shape(40, 1300, 40).a_zero_point(200).bias(true).requant(true).test(seed++);
}

LOWP_TEST(gemm_max_k_worst_case) {
  // K * 255 * 255 is the largest sum that still fits int32; one B panel and
  // many.
  for (size_t n : {9, 130}) {
    GemmTester().shape(3, lowp::kMaxGemmK, n).a_zero_point(0).fill(255, 0).test(1);
    GemmTester().shape(3, lowp::kMaxGemmK, n).a_zero_point(255).fill(0, 255).test(2);
  }
}

LOWP_TEST(gemm_edge_micro_panels_and_blocks) {
  // Per kernel, shapes from its own tile and K block: edge micro-panels of
  // several row counts (kernels run shorter row loops for them, e.g. AVX2's
  // 2-, 4- or 6-row ones), edge panels, one K block and several (K = kc + 1
  // and 2 kc + kr + 1 cross the kernel's block), int32 and fused output, on
  // the paths that use the kernel (and a path's narrow kernel, for N up to
  // its nr).
  uint32_t seed = 300;
  for (const KernelPaths& e : paths_by_kernel()) {
    const lowp::GemmKernel* kn = e.kernel;
    const size_t mr = kn->mr, nr = kn->nr;
    const std::vector<size_t> ms = {1,  mr / 2 + 1, mr > 1 ? mr - 1 : 1,
                                    mr, mr + 1,     2 * mr + mr / 2 + 1};
    // A narrow kernel only runs for N <= its nr: one panel, full or not.
    const std::vector<size_t> ns =
        e.narrow ? std::vector<size_t>{1, nr / 2 + 1, nr > 1 ? nr - 1 : 1, nr}
                 : std::vector<size_t>{4 * nr - 1, 4 * nr, 4 * nr + 1, 4 * nr + nr / 2};
    for (size_t n : ns)
      for (size_t m : ms)
        for (size_t k : {size_t{27}, size_t{193}, kn->kc + 1, 2 * kn->kc + kn->kr + 1}) {
          GemmTester()
              .shape(m, k, n)
              .a_zero_point(static_cast<int32_t>(seed % 256))
              .per_column_zero_points(seed % 2 == 0)
              .bias(true)
              .requant(seed % 3 == 0)
              .paths(e.paths)
              .test(seed);
          ++seed;
        }
  }
}

LOWP_TEST(gemm_threads_agree) {
  const int saved = lowp::num_threads();
  for (int t : {1, 2, 3}) {
    lowp::set_num_threads(t);
    GemmTester().shape(130, 300, 70).a_zero_point(9).per_column_zero_points(true).test(7);
  }
  lowp::set_num_threads(saved);
}
