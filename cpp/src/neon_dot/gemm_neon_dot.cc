// NEON dot-product GEMM microkernel: an 8x8 tile, four k values per step.
// UDOT adds four u8 x u8 products into each u32 lane exactly. A micro-panel:
// per group of 4 k, 8 rows of 4 bytes; B panel: 8 columns of 4 bytes.
// Compiled with +dotprod; reached only when the CPU reports asimddp. The
// path changes only the GEMM kernel: the rest comes from the neon path.
#include <arm_neon.h>

#include <cstring>

#include "../gemm.h"
#include "../neon/gemm_epilogue_neon.h"
#include "../paths.h"

namespace lowp {
namespace {

template <int kRow>
inline void row_dot(uint32x4_t acc[8][2], uint8x16_t a_rows, uint8x16_t b0, uint8x16_t b1) {
  acc[kRow][0] = vdotq_laneq_u32(acc[kRow][0], b0, a_rows, kRow % 4);
  acc[kRow][1] = vdotq_laneq_u32(acc[kRow][1], b1, a_rows, kRow % 4);
}

void gemm_u8_8x8c4_neondot(size_t kgroups, const void* a_packed, const uint8_t* b,
                           const int32_t* acc_in, int32_t* acc_out, const GemmTileOut* out) {
  const uint8_t* a = static_cast<const uint8_t*>(a_packed);
  uint32x4_t acc[8][2];
  neon::gemm_load_8x8(acc, acc_in);
  for (size_t g = 0; g < kgroups; ++g, a += 32, b += 32) {
    const uint8x16_t a03 = vld1q_u8(a), a47 = vld1q_u8(a + 16);
    const uint8x16_t b0 = vld1q_u8(b), b1 = vld1q_u8(b + 16);
    row_dot<0>(acc, a03, b0, b1);
    row_dot<1>(acc, a03, b0, b1);
    row_dot<2>(acc, a03, b0, b1);
    row_dot<3>(acc, a03, b0, b1);
    row_dot<4>(acc, a47, b0, b1);
    row_dot<5>(acc, a47, b0, b1);
    row_dot<6>(acc, a47, b0, b1);
    row_dot<7>(acc, a47, b0, b1);
  }
  neon::gemm_store_8x8(acc, acc_out, out);
}

}  // namespace

namespace native {

const PathEntry& path_entry_neon_dot() {
  static const GemmKernel kernel = {
      "gemm_u8_8x8c4_neondot", 8,      8, 4, 8, 512, 0, gemm_pack_a_compact<8, 4>,
      gemm_u8_8x8c4_neondot,   nullptr};
  static const PathEntry entry = {
      "neon_dot", 20, kFeatureNeonDot, "neon", {nullptr, nullptr, nullptr, &kernel, nullptr}};
  return entry;
}

}  // namespace native
}  // namespace lowp
