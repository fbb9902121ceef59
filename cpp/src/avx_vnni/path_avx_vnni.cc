// The avx_vnni path: AVX2 with AVX-VNNI (VEX vpdpbusd on ymm; Alder Lake and
// later clients, Zen 5). Its GEMM multiplies with vpdpbusd ymm; entries it
// leaves null come from avx2.
#include "../paths.h"
#include "../x86/intrin.h"
#include "kernels_avx_vnni.h"

namespace lowp {
namespace LOWP_ISA_NS {

const PathEntry& path_entry_avx_vnni() {
  static const PathEntry entry = {LOWP_PATH_NAME("avx_vnni"),
                                  20,
                                  kFeatureAvxVnni,
                                  "avx2",
                                  {nullptr, nullptr, nullptr, &avx_vnni_gemm_kernel(), nullptr}};
  return entry;
}

}  // namespace LOWP_ISA_NS
}  // namespace lowp
