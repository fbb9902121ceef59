// Direct convolution for a narrow kernel row or few channels: when one
// kernel row of the input (kw * in_c bytes) is only a few bytes - the
// 3-channel first layer of an image network, a 1x1 conv over few channels -
// or the output has few channels (N = out_c <= 64, the layers of a small
// UNet), the GEMM route packs and finishes about as much as it multiplies.
// A path may offer a direct kernel instead (KernelTable::direct_conv), which
// reads the input straight from the image. Each kernel declares which shapes
// it takes (by measurement against the GEMM route) and packs the weights in
// its own layout, once per operator (conv.cc keeps one packed copy per
// kernel).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels.h"
#include "lowp/lowp.h"

namespace lowp {

// The shape and weights a direct kernel prepares from, once per operator.
struct DirectConvWeights {
  const uint8_t* w;  // OHWI [out_c, kh, kw, in_c]
  size_t out_c, kh, kw, in_c;
  size_t sh, sw;                // strides
  const int32_t* w_zero_point;  // 1 or out_c values
  size_t w_zero_point_count;
  int32_t x_zero_point;
  const int32_t* bias;  // out_c values or null
};

// A path's packed form of those weights: opaque bytes in its own layout,
// and one int32 per output channel (bias and whatever else the kernel folds
// per channel), padded as the kernel likes (at least out_c entries; per-
// channel requant tables are padded to `channels`).
//
// The prepare functions live in ISA folders, compiled with the ISA's flags:
// they size the two vectors only through reset(), which conv.cc defines
// without those flags, and then write through data() / operator[]. Calling
// std::vector's sizing members there would instantiate them (weak symbols)
// with AVX-512 or AVX2 code, and the linker may pick that copy for every
// caller in the library: a SIGILL on a CPU without the ISA (CI checks the
// ISA objects for such symbols).
struct DirectConvPacked {
  std::vector<uint8_t> data;  // 64-byte aligned use: kernels load unaligned
  std::vector<int32_t> bias;
  size_t channels = 0;
  uint32_t flags = 0;  // the kernel's own (e.g. a term it can skip)

  // data_bytes zero bytes and bias_values zero biases.
  void reset(size_t data_bytes, size_t bias_values);
};

struct DirectConvJob {
  const uint8_t* x;  // NHWC input
  size_t x_bytes;    // its size, so that wide loads never run past it
  ConvGeometry g;
  size_t in_c, kh, kw, sh, sw;
  int32_t x_zero_point;
  const DirectConvPacked* packed;
  size_t out_c;
  // Per output channel (period >= packed->channels) or per tensor (period
  // 1); null for int32 output.
  const ChannelParams* requant;
  int32_t zero_point, qmin, qmax;
  void* out;          // NHWC, out_c channels per pixel
  size_t out_stride;  // elements from one output pixel to the next (>= out_c)
};

// A path's direct convolution: prepare returns false (and the convolution
// takes the GEMM route) for shapes the kernel does not take; run computes
// output pixels [begin, end), NHW order.
struct DirectConvKernel {
  bool (*prepare)(const DirectConvWeights& w, DirectConvPacked* out);
  void (*run)(const DirectConvJob& job, size_t begin, size_t end);
};

}  // namespace lowp
