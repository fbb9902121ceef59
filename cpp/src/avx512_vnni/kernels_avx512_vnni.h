// The avx512_vnni kernels the folder's files hand to its registration
// (path_avx512_vnni.cc).
#pragma once

#include "../conv_direct.h"
#include "../gemm.h"
#include "../x86/intrin.h"

namespace lowp {
namespace LOWP_ISA_NS {

const GemmKernel& avx512_vnni_gemm_kernel();               // gemm_avx512_vnni.cc
const GemmKernel& avx512_vnni_gemm_narrow_kernel();        // the same, N <= 16
const DirectConvKernel& avx512_vnni_direct_conv_kernel();  // conv_avx512_vnni.cc
// deconv_avx512_vnni.cc: transposed convolutions with stride == kernel, run
// over input pixels.
const DirectConvKernel& avx512_vnni_direct_deconv_kernel();

// conv_narrow_avx512_vnni.cc: the direct kernel for few channels, to which
// the path's direct-conv entry hands shapes its kernel-row kernel does not
// take. DirectConvPacked::flags: kNarrowNoSums where every w_zp is 128 (bit
// 1, kNarrowHead, is the file's own: a 1x1 head with pixels in lanes).
constexpr uint32_t kNarrowNoSums = 1;
bool prepare_narrow_avx512vnni(const DirectConvWeights& w, DirectConvPacked* out);
void conv_u8_narrow_c4_avx512vnni(const DirectConvJob& j, size_t begin, size_t end);

// elementwise_avx512_vnni.cc
void requant_q31_u8_64x_avx512(const int32_t* acc, size_t n, const ChannelParams& channels,
                               int32_t zero_point, int32_t qmin, int32_t qmax, uint8_t* out);
void mulquant_q31_s32_16x_avx512(const int32_t* x, size_t n, const ChannelParams& channels,
                                 int32_t* out);
bool quantize_f32_u8_64x_avx512(const float* x, size_t n, float scale, float zero_point, float qmin,
                                float qmax, uint8_t flip, uint8_t* out);

}  // namespace LOWP_ISA_NS
}  // namespace lowp
