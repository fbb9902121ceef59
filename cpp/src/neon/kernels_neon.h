// The NEON kernels one file of the folder hands to the path's registration
// (elementwise_neon.cc).
#pragma once

#include "../gemm.h"

namespace lowp {

const GemmKernel& neon_gemm_kernel();  // gemm_neon.cc

}  // namespace lowp
