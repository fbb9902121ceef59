// GEMM microkernel tests: every case of the tester (ukernel_tester.h) on the
// GEMM kernel of every available path (each kernel once), one-line cases
// as QNNPACK's test/q8gemm.cc: k below, at and above kr, K not a multiple
// of kr, every tile edge, strides, chained K blocks, A packed in pieces, zero
// points, bias, fused requantization with every clamp, extreme operands, and
// the GEMV companion.
#include <cstdio>
#include <vector>

#include "gemm.h"
#include "kernels.h"
#include "lowp/lowp.h"
#include "test_util.h"
#include "ukernel_tester.h"

using lowp_test::GemmUkernelTester;
using lowp_test::Requant;

namespace {

std::vector<const lowp::GemmKernel*> kernels_under_test() {
  std::vector<const lowp::GemmKernel*> out;
  for (lowp::Path p : lowp::available_paths()) {
    const lowp::KernelTable& t = lowp::kernels_of(p);
    for (const lowp::GemmKernel* kn : {t.gemm, t.gemm_narrow}) {
      bool seen = false;
      for (const lowp::GemmKernel* q : out) seen |= q == kn;
      if (kn != nullptr && !seen) out.push_back(kn);
    }
  }
  return out;
}

// Runs one group of cases on every kernel under test.
template <typename Cases>
void for_each_kernel(Cases cases) {
  for (const lowp::GemmKernel* kn : kernels_under_test()) cases(*kn);
}

uint32_t g_seed = 1;
size_t below(size_t x) { return x > 1 ? x - 1 : 1; }
GemmUkernelTester T() { return GemmUkernelTester().seed(g_seed++); }

void k_below_at_above_kr(const lowp::GemmKernel& kn) {
  const size_t kr = kn.kr;
  for (size_t k = 1; k < kr; ++k) T().k(k).a_zero_point(3).b_zero_point(200).test(kn);  // k < kr
  T().k(kr).a_zero_point(3).b_zero_point(200).test(kn);                                 // k == kr
  for (size_t k : {kr + 1, 2 * kr, 2 * kr + 1, 3 * kr - 1, 8 * kr + 3, 37 * kr + kr / 2})
    T().k(k).a_zero_point(17).b_zero_point(9).test(kn);  // k > kr, multiples and not
  for (size_t k : {kr, 5 * kr + 1}) T().k(k).requant(Requant::kPerColumn).test(kn);
}

void every_tile_edge(const lowp::GemmKernel& kn) {
  for (size_t m = 1; m <= kn.mr; ++m)
    for (size_t n = 1; n <= kn.nr; ++n) {
      T().rows(m).cols(n).k(2 * kn.kr + 1).a_zero_point(5).per_column_zero_points().test(kn);
      T().rows(m).cols(n).k(kn.kr).bias(true).requant(Requant::kPerColumn).test(kn);
    }
  for (size_t m = 1; m <= kn.mr; ++m) {  // a deeper K through every row count
    T().rows(m).k(kn.kc + 3 * kn.kr + 1).a_zero_point(128).per_column_zero_points().test(kn);
  }
}

void strides(const lowp::GemmKernel& kn) {
  const size_t mr = kn.mr, nr = kn.nr, kr = kn.kr;
  for (size_t k : {kr, 3 * kr + 1, 67 * kr + 1}) {
    for (size_t lda : {k + 1, k + 31, 2 * k + 64}) T().k(k).lda(lda).a_zero_point(1).test(kn);
    // ldc == cols (tight) and wider: a stray write between rows is caught.
    for (size_t ldc : {nr, nr + 1, 3 * nr + 5}) T().k(k).ldc(ldc).test(kn);
    T().rows(below(mr)).cols(below(nr)).k(k).ldc(below(nr)).test(kn);
    T().rows(mr).cols(1).k(k).ldc(1).requant(Requant::kPerTensor).test(kn);
    T().rows(mr).cols(nr / 2 + 1).k(k).ldc(2 * nr + 3).requant(Requant::kPerColumn).test(kn);
  }
}

void k_blocks(const lowp::GemmKernel& kn) {
  const size_t kr = kn.kr, kc = kn.kc;
  for (bool in_place : {true, false}) {
    for (size_t k : {kc + 1, 2 * kc, 2 * kc + kr + 1, 3 * kc - 1})
      T().k(k).in_place(in_place).a_zero_point(99).per_column_zero_points().bias(true).test(kn);
    // Many short blocks, the shortest a single k group.
    for (size_t block : {kr, 2 * kr, 5 * kr}) {
      T().k(11 * kr + 1)
          .k_block(block)
          .in_place(in_place)
          .a_zero_point(7)
          .b_zero_point(250)
          .test(kn);
      T().rows(kn.mr / 2 + 1)
          .cols(kn.nr / 2 + 1)
          .k(7 * kr)
          .k_block(block)
          .in_place(in_place)
          .requant(Requant::kPerColumn)
          .bias(true)
          .test(kn);
    }
  }
}

void pack_pieces(const lowp::GemmKernel& kn) {
  const size_t kr = kn.kr;
  for (size_t piece : {kr, 2 * kr, 3 * kr, 8 * kr, 32 * kr})
    for (size_t k : {9 * kr, 9 * kr + 1, 64 * kr + kr / 2 + 1, kn.kc + 2 * kr})
      for (size_t m : {size_t{1}, kn.mr / 2 + 1, kn.mr})
        T().rows(m).k(k).lda(k + 13).pack_piece(piece).a_zero_point(11).test(kn);
}

void zero_points_and_bias(const lowp::GemmKernel& kn) {
  const size_t k = 5 * kn.kr + 3;
  for (int32_t azp : {0, 1, 128, 255})
    for (int32_t bzp : {0, 1, 127, 128, 129, 255}) {
      T().k(k).a_zero_point(azp).b_zero_point(bzp).test(kn);
      T().k(k).a_zero_point(azp).b_zero_point(bzp).bias(true).requant(Requant::kPerTensor).test(kn);
    }
  for (int32_t azp : {0, 200}) {
    T().k(k).a_zero_point(azp).per_column_zero_points().test(kn);
    T().k(k).a_zero_point(azp).per_column_zero_points().bias(true).test(kn);
    T().rows(1).cols(1).k(k).a_zero_point(azp).per_column_zero_points().bias(true).test(kn);
  }
}

void fused_output_stage(const lowp::GemmKernel& kn) {
  const size_t k = 9 * kn.kr + 1;
  for (Requant rq : {Requant::kPerTensor, Requant::kPerColumn}) {
    // Right shifts only, left only, both, the extremes of the range.
    const int ranges[][2] = {{-31, -1}, {-12, 0}, {0, 0}, {1, 8}, {-3, 3}, {30, 30}, {-31, -31}};
    for (const auto& r : ranges)
      T().k(k)
          .a_zero_point(40)
          .per_column_zero_points()
          .bias(true)
          .requant(rq)
          .shifts(r[0], r[1])
          .test(kn);
    // Sums next to the rounding ties of every shift, and at the ends of
    // int32 (the output zero point 128 leaves results in [-128, 127]).
    for (int shift = -31; shift <= 3; ++shift)
      T().k(k)
          .a_zero_point(37)
          .bias_at_ties()
          .requant(rq)
          .shifts(shift, rq == Requant::kPerTensor ? shift : std::min(shift + 6, 3))
          .output_zero_point(128)
          .test(kn);
    // Every clamp, output zero points at both ends.
    const int clamps[][2] = {{0, 255},   {5, 240}, {128, 128}, {0, 0},
                             {255, 255}, {0, 127}, {128, 255}};
    for (const auto& c : clamps)
      for (int32_t zp : {0, 77, 128, 255})
        T().k(k)
            .a_zero_point(13)
            .b_zero_point(140)
            .bias(true)
            .requant(rq)
            .clamp(c[0], c[1])
            .output_zero_point(zp)
            .test(kn);
    // Tables indexed from the tile's column in a wider GEMM.
    for (size_t panel : {1, 3})
      T().cols(below(kn.nr))
          .k(k)
          .per_column_zero_points()
          .requant(rq)
          .column(panel * kn.nr)
          .test(kn);
  }
}

void extreme_operands(const lowp::GemmKernel& kn) {
  const size_t kr = kn.kr;
  for (size_t k : {size_t{1}, kr, 4 * kr + 1, kn.kc + kr + 1})
    for (int a : {0, 255})
      for (int b : {0, 255})
        for (int32_t azp : {0, 255})
          for (int32_t bzp : {0, 255}) {
            T().k(k).fill_a(a).fill_b(b).a_zero_point(azp).b_zero_point(bzp).test(kn);
            T().k(k)
                .fill_a(a)
                .fill_b(b)
                .a_zero_point(azp)
                .b_zero_point(bzp)
                .requant(Requant::kPerTensor)
                .shifts(-4, 4)
                .test(kn);
          }
  // The largest K the contract allows, sums of K * 255 * 255 of either sign
  // (one int32 away from overflow), through many K blocks.
  T().k(lowp::kMaxGemmK).fill_a(255).fill_b(255).a_zero_point(0).b_zero_point(0).test(kn);
  T().k(lowp::kMaxGemmK).fill_a(0).fill_b(255).a_zero_point(255).b_zero_point(0).test(kn);
  T().k(lowp::kMaxGemmK)
      .fill_a(255)
      .fill_b(0)
      .a_zero_point(0)
      .b_zero_point(255)
      .in_place(false)
      .test(kn);
}

void gemv(const lowp::GemmKernel& kn) {
  if (kn.gemv == nullptr) return;
  const size_t nr = kn.nr, kr = kn.kr, kc = kn.kc;
  for (size_t n : {size_t{1}, below(nr), nr, nr + 1, 3 * nr + 2, 4 * nr, 4 * nr + 1, 9 * nr - 3})
    for (size_t k : {size_t{1}, kr, kr + 1, 13 * kr + 2, kc + 3, 2 * kc + kr + 1}) {
      T().cols(n).k(k).a_zero_point(21).b_zero_point(3).test_gemv(kn);
      T().cols(n)
          .k(k)
          .a_zero_point(200)
          .per_column_zero_points()
          .bias(true)
          .requant(Requant::kPerColumn)
          .test_gemv(kn);
    }
  // A panel range that does not start at 0 (the driver's tasks), per-tensor
  // requant, short K blocks, extremes.
  for (size_t p0 : {1, 4, 5}) {
    T().cols(9 * nr - 3).k(3 * kr + 1).panels(p0, 0).per_column_zero_points().test_gemv(kn);
    T().cols(9 * nr - 3)
        .k(3 * kr + 1)
        .panels(p0, p0 + 3)
        .per_column_zero_points()
        .bias(true)
        .requant(Requant::kPerColumn)
        .test_gemv(kn);
  }
  T().cols(9 * nr - 3).k(5 * kr).panels(4, 8).requant(Requant::kPerColumn).test_gemv(kn);
  T().cols(2 * nr + 1).k(40 * kr + 1).k_block(3 * kr).requant(Requant::kPerTensor).test_gemv(kn);
  for (int a : {0, 255})
    T().cols(5 * nr)
        .k(lowp::kMaxGemmK)
        .fill_a(a)
        .fill_b(255 - a)
        .a_zero_point(255 - a)
        .b_zero_point(a)
        .test_gemv(kn);
  const int clamps[][2] = {{0, 0}, {255, 255}, {10, 200}};
  for (const auto& c : clamps)
    T().cols(4 * nr + 3)
        .k(7 * kr)
        .requant(Requant::kPerColumn)
        .clamp(c[0], c[1])
        .column(2 * nr)
        .test_gemv(kn);
}

}  // namespace

namespace lowp_test {

void test_gemm_ukernel_all(const lowp::GemmKernel& kn) {
  k_below_at_above_kr(kn);
  every_tile_edge(kn);
  strides(kn);
  k_blocks(kn);
  pack_pieces(kn);
  zero_points_and_bias(kn);
  fused_output_stage(kn);
  extreme_operands(kn);
  gemv(kn);
}

}  // namespace lowp_test

LOWP_TEST(ukernel_kernels_tested) {
  for (const lowp::GemmKernel* kn : kernels_under_test()) {
    std::printf("  ukernel: %s (%zux%zu, kr %zu, kc %zu, b_flip 0x%02x, gemv %s)\n", kn->name,
                kn->mr, kn->nr, kn->kr, kn->kc, kn->b_flip, kn->gemv ? "yes" : "no");
  }
}
LOWP_TEST(ukernel_k_below_at_above_kr) { for_each_kernel(k_below_at_above_kr); }
LOWP_TEST(ukernel_every_tile_edge) { for_each_kernel(every_tile_edge); }
LOWP_TEST(ukernel_strides) { for_each_kernel(strides); }
LOWP_TEST(ukernel_k_blocks) { for_each_kernel(k_blocks); }
LOWP_TEST(ukernel_pack_a_in_pieces) { for_each_kernel(pack_pieces); }
LOWP_TEST(ukernel_zero_points_and_bias) { for_each_kernel(zero_points_and_bias); }
LOWP_TEST(ukernel_fused_output_stage) { for_each_kernel(fused_output_stage); }
LOWP_TEST(ukernel_extreme_operands) { for_each_kernel(extreme_operands); }
LOWP_TEST(ukernel_gemv) { for_each_kernel(gemv); }
