// The avx512_vnni path: AVX-512 F/BW/VL with VNNI (Ice Lake and later
// servers, Zen 4, Zen 5). Its GEMM multiplies with vpdpbusd on zmm; entries
// it leaves null come from avx2.
#include "../paths.h"
#include "../x86/intrin.h"
#include "kernels_avx512_vnni.h"

namespace lowp {
namespace LOWP_ISA_NS {

const PathEntry& path_entry_avx512_vnni() {
  static const PathEntry entry = {
      LOWP_PATH_NAME("avx512_vnni"),
      30,
      kFeatureAvx512 | kFeatureAvx512Vnni,
      "avx2",
      {requant_q31_u8_64x_avx512, mulquant_q31_s32_16x_avx512, quantize_f32_u8_64x_avx512,
       &avx512_vnni_gemm_kernel(), &avx512_vnni_direct_conv_kernel(),
       &avx512_vnni_gemm_narrow_kernel(), &avx512_vnni_direct_deconv_kernel()}};
  return entry;
}

}  // namespace LOWP_ISA_NS
}  // namespace lowp
