// The avx_vnni kernels the folder's files hand to its registration
// (path_avx_vnni.cc).
#pragma once

#include "../gemm.h"
#include "../x86/intrin.h"

namespace lowp {
namespace LOWP_ISA_NS {

const GemmKernel& avx_vnni_gemm_kernel();  // gemm_avx_vnni.cc

}  // namespace LOWP_ISA_NS
}  // namespace lowp
