// Scalar GEMM microkernel: a 4x4 tile, k one at a time. A micro-panel is
// packed k-major (4 bytes per k), B panels hold 4 columns per k.
#include <cstring>

#include "../gemm.h"

namespace lowp {
namespace {

constexpr size_t kMr = 4, kNr = 4;

void gemm_u8_4x4_scalar(size_t kgroups, const void* a_packed, const uint8_t* b,
                        const int32_t* acc_in, int32_t* acc_out, const GemmTileOut* out) {
  const uint8_t* a = static_cast<const uint8_t*>(a_packed);
  uint32_t acc[kMr][kNr] = {};
  if (acc_in != nullptr) {
    for (size_t i = 0; i < kMr; ++i)
      for (size_t j = 0; j < kNr; ++j) acc[i][j] = static_cast<uint32_t>(acc_in[i * kNr + j]);
  }
  for (size_t k = 0; k < kgroups; ++k, a += kMr, b += kNr) {
    for (size_t i = 0; i < kMr; ++i)
      for (size_t j = 0; j < kNr; ++j) acc[i][j] += uint32_t{a[i]} * uint32_t{b[j]};
  }
  if (acc_out != nullptr) {
    for (size_t i = 0; i < kMr; ++i)
      for (size_t j = 0; j < kNr; ++j) acc_out[i * kNr + j] = static_cast<int32_t>(acc[i][j]);
    return;
  }
  for (size_t i = 0; i < out->rows; ++i)
    for (size_t j = 0; j < out->cols; ++j) gemm_store_one(*out, i, j, acc[i][j]);
}

}  // namespace

const GemmKernel& scalar_gemm_kernel() {
  static const GemmKernel kernel = {
      "gemm_u8_4x4_scalar", kMr,    kNr, 1, kMr, 512, 0, gemm_pack_a_compact<kMr, 1>,
      gemm_u8_4x4_scalar,   nullptr};
  return kernel;
}

}  // namespace lowp
