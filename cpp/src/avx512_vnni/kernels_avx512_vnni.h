// The avx512_vnni kernels the folder's files hand to its registration
// (path_avx512_vnni.cc).
#pragma once

#include "../conv_direct.h"
#include "../gemm.h"
#include "../x86/intrin.h"

namespace lowp {
namespace LOWP_ISA_NS {}  // namespace LOWP_ISA_NS
}  // namespace lowp
