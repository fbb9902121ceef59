// Native kernels of the integer graph's data-movement and elementwise nodes
// (DESIGN.md section 7): pooling, strided copies (concatenation, padding,
// reshape, the int8 <-> uint8 domain change), table lookups (requantizing a
// uint8 tensor, dequantizing, ADD), float32 quantization and the double
// precision output stage of TFLite's FULLY_CONNECTED.
//
// Activations are in the uint8 domain of DESIGN.md section 2. Every function
// here is portable C++ (built without ISA flags, so it runs on every path)
// and gives the same bytes on every path. Arguments are trusted: the plan
// (plan.cc) checks them when it is built.
//
// A unary op on a uint8 tensor with per-tensor parameters is a function of
// one byte, and ADD one of two bytes: the plan tabulates those functions
// once (256 or 65536 entries, computed by the reference arithmetic of the
// node's requant mode) and the kernels only look them up, so they are exact
// by construction.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lowp {
namespace graph {

// NHWC pooling windows. Window positions outside the input (the padding)
// are not part of the window: a window covers rows [y * stride_h - pad_top,
// + kh) and columns likewise, clipped to the input, and every output window
// holds at least one input position (the plan checks it). Cost is the
// output size times the clipped window, never the nominal filter area.
struct PoolShape {
  size_t batch, in_h, in_w, channels;
  size_t kh, kw, stride_h, stride_w;
  size_t pad_top, pad_left;
  size_t out_h, out_w;
  size_t out_stride;  // elements from one output pixel to the next (>= channels)
};

// out = clamp(max over the window, qmin, qmax).
void max_pool_u8(const uint8_t* x, const PoolShape& s, uint8_t qmin, uint8_t qmax, uint8_t* out);

// TFLite's reference average pooling, on the model's own integers v = x -
// offset (offset 128 for an int8 model, 0 for uint8): acc = sum of v over
// the window's positions, count their number, avg = (acc + count / 2) /
// count if acc >= 0, else (acc - count / 2) / count (C division, which
// truncates); out = clamp(avg + offset, qmin, qmax).
void avg_pool_u8(const uint8_t* x, const PoolShape& s, int32_t offset, uint8_t qmin, uint8_t qmax,
                 uint8_t* out);

// Up to kMaxRank dimensions. Strides are in elements and may be 0 (a
// broadcast input); dimension rank - 1 is the innermost.
constexpr size_t kMaxRank = 6;

// For every index i of `shape` (rank >= 1 dims): dst[i . dst_strides] =
// src[i . src_strides], elements of elem_bytes bytes; with a lut (only for
// elem_bytes == 1), dst = lut[src] instead (lut has 256 entries). Fast when
// the innermost dimension is contiguous (stride 1) in both.
void copy_nd(const void* src, const ptrdiff_t* src_strides, void* dst, const ptrdiff_t* dst_strides,
             const size_t* shape, size_t rank, size_t elem_bytes, const uint8_t* lut);

// dst[i . dst_strides] = lut[a[i . a_strides] * 256 + b[i . b_strides]]
// (lut has 65536 entries): a broadcasting binary op on uint8.
void binary_lut_nd(const uint8_t* a, const ptrdiff_t* a_strides, const uint8_t* b,
                   const ptrdiff_t* b_strides, uint8_t* dst, const ptrdiff_t* dst_strides,
                   const size_t* shape, size_t rank, const uint8_t* lut);

// dst[i] = lut[src[i]] for i < n: uint8 -> float32 (dequantization).
void lut_u8_to_f32(const uint8_t* src, size_t n, const float* lut, float* dst);

// TFLite's reference QUANTIZE of float32: r = round_half_away(x / scale)
// (the division in float32); r outside int32 (and NaN) becomes INT32_MIN as
// the C conversion gives on x86; q = clamp(r + zero_point, qmin, qmax) in
// the model's integers; dst = q + offset (the uint8 domain).
void quantize_f32_tflite(const float* x, size_t n, float scale, int32_t zero_point, int32_t qmin,
                         int32_t qmax, int32_t offset, uint8_t* dst);

// TFLite 2.21's reference FULLY_CONNECTED output stage on a rows x cols
// int32 accumulator (row stride cols): dst = clamp(round_half_away(double(acc)
// * real[c % real_count]) + zero_point, qmin, qmax), qmin/qmax in the uint8
// domain, the clamp done before the conversion so no value overflows.
void requantize_double_u8(const int32_t* acc, size_t rows, size_t cols, const double* real,
                          size_t real_count, int32_t zero_point, int32_t qmin, int32_t qmax,
                          uint8_t* dst);

}  // namespace graph
}  // namespace lowp
