// Direct convolution for a narrow kernel row: when one kernel row of the
// input (kw * in_c bytes) fits in 16 bytes - the 3-channel first layer of an
// image network, a 1x1 conv over at most 16 channels - the GEMM route packs
// and finishes far more than it multiplies. The direct kernel instead loads
// each kernel row of the input once per output pixel as 16 int16 values
// (x - x_zp), broadcasts them pair by pair and multiplies them with weights
// prepared once as (w - w_zp) int16 pairs (vpmaddwd-style): |x - x_zp| and
// |w - w_zp| are at most 255, so a pair sums to at most 2 * 255^2 and no zero-
// point corrections are needed afterwards.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels.h"
#include "lowp/lowp.h"

namespace lowp {

// Kernel rows this wide or narrower take the direct kernel where a path has
// one, for kernels of at most kDirectConvMaxPairs pairs of values in all.
constexpr size_t kDirectConvMaxRow = 16;
constexpr size_t kDirectConvMaxPairs = 64;
// Output channels are computed in groups of 8 (one 8-lane int32 vector).
constexpr size_t kDirectConvGroup = 8;

struct DirectConvJob {
  const uint8_t* x;  // NHWC input
  size_t x_bytes;    // its size, so that 16-byte loads never run past it
  ConvGeometry g;
  size_t in_c, kh, kw, sh, sw;
  int32_t x_zero_point;
  // Weights: for each group of 8 output channels, for each kernel row ky,
  // for each pair p < P = ceil(kw in_c / 2), int16 lanes [o][2]: (w - w_zp)
  // of kernel-row values 2p and 2p + 1 (zero past kw in_c and past out_c).
  // groups is a multiple of 4.
  const int16_t* weights;
  size_t groups;
  const int32_t* bias;  // [groups * 8], zero past out_c
  size_t out_c;
  // Per output channel (period >= out_c) or per tensor (period 1); null for
  // int32 output.
  const ChannelParams* requant;
  int32_t zero_point, qmin, qmax;
  void* out;  // NHWC, out_c channels per pixel
};

// A DirectConvFn (kernels.h) computes output pixels [begin, end), NHW order.
#if defined(__x86_64__) || defined(_M_X64)
void direct_conv_avx2(const DirectConvJob& job, size_t begin, size_t end);
#endif

}  // namespace lowp
