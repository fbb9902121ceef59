// NEON GEMM microkernel (no dot product): an 8x8 tile, k one at a time.
// A and B bytes widen to u16 and UMLAL (by lane) accumulates u16 x u16 into
// u32: 255 * 255 fits u16's product range and every sum wraps exactly.
#include <arm_neon.h>

#include <cstring>

#include "../gemm.h"
#include "gemm_epilogue_neon.h"

namespace lowp {
namespace {

template <int kLane>
inline void row_mla(uint32x4_t acc[8][2], uint16x8_t va, uint16x4_t b_lo, uint16x4_t b_hi) {
  acc[kLane][0] = vmlal_laneq_u16(acc[kLane][0], b_lo, va, kLane);
  acc[kLane][1] = vmlal_laneq_u16(acc[kLane][1], b_hi, va, kLane);
}

void gemm_u8_8x8_neon(size_t kgroups, const void* a_packed, const uint8_t* b, const int32_t* acc_in,
                      int32_t* acc_out, const GemmTileOut* out) {
  const uint8_t* a = static_cast<const uint8_t*>(a_packed);
  uint32x4_t acc[8][2];
  neon::gemm_load_8x8(acc, acc_in);
  for (size_t k = 0; k < kgroups; ++k, a += 8, b += 8) {
    const uint16x8_t va = vmovl_u8(vld1_u8(a));
    const uint16x8_t vb = vmovl_u8(vld1_u8(b));
    const uint16x4_t b_lo = vget_low_u16(vb), b_hi = vget_high_u16(vb);
    row_mla<0>(acc, va, b_lo, b_hi);
    row_mla<1>(acc, va, b_lo, b_hi);
    row_mla<2>(acc, va, b_lo, b_hi);
    row_mla<3>(acc, va, b_lo, b_hi);
    row_mla<4>(acc, va, b_lo, b_hi);
    row_mla<5>(acc, va, b_lo, b_hi);
    row_mla<6>(acc, va, b_lo, b_hi);
    row_mla<7>(acc, va, b_lo, b_hi);
  }
  neon::gemm_store_8x8(acc, acc_out, out);
}

}  // namespace

const GemmKernel& neon_gemm_kernel() {
  static const GemmKernel kernel = {
      "gemm_u8_8x8_neon", 8, 8, 1, 8, 512, 0, gemm_pack_a_compact<8, 1>, gemm_u8_8x8_neon, nullptr};
  return kernel;
}

}  // namespace lowp
