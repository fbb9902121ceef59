// The AVX2 kernels one file of the folder hands to the path's registration
// (elementwise_avx2.cc). Compiled with -mavx2 -mfma only.
#pragma once

#include "../conv_direct.h"
#include "../gemm.h"

namespace lowp {

const GemmKernel& avx2_gemm_kernel();               // gemm_avx2.cc
const DirectConvKernel& avx2_direct_conv_kernel();  // conv_avx2.cc

// The narrow-channel direct convolution (conv_narrow_avx2.cc), which
// avx2_direct_conv_kernel() takes for the shapes prepare accepts.
bool prepare_narrow_avx2(const DirectConvWeights& w, DirectConvPacked* out);
void conv_u8_narrow_c2_avx2(const DirectConvJob& j, size_t begin, size_t end);

// The transposed convolution for stride == kernel (conv_narrow_avx2.cc).
const DirectConvKernel& avx2_direct_deconv_kernel();

}  // namespace lowp
