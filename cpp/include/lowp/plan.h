// lowp::Plan: an integer graph (DESIGN.md section 7) prepared once and run
// as one native call. The front end (python/lowp/graph) validates the graph,
// orders its nodes and lays out the activation arena by tensor lifetimes;
// the plan only holds the steps that result, each reading and writing byte
// offsets of an arena, and runs them in order with no allocation.
//
// Concurrent runs are safe: the operators are immutable and every run leases
// its own arena from a small pool (a second concurrent run gets a second
// arena rather than waiting for the first).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "lowp/lowp.h"

namespace lowp {

// Up to this many dimensions in the strided steps (copies, broadcasts).
constexpr size_t kPlanMaxRank = 6;

// A strided view of an arena buffer for the copy and broadcast steps: the
// element at index i of `shape` is at offset + sum(i[d] * strides[d]) elements.
struct PlanView {
  size_t offset = 0;
  std::vector<ptrdiff_t> strides;
};

class Plan {
 public:
  Plan();
  ~Plan();
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  // --- building (once, before the first run; not thread-safe) ---------------
  // Every offset is a byte offset into the arena, which the caller has sized
  // so that every step's buffers lie inside it (checked as steps are added).
  void set_arena_bytes(size_t bytes);
  size_t arena_bytes() const;

  // Graph inputs and outputs, in order: run() copies input i (bytes bytes)
  // into the arena at offset, each byte XORed with xor_mask (0x80 maps an
  // int8 tensor to the uint8 domain), and output i back out likewise.
  void add_input(size_t offset, size_t bytes, uint8_t xor_mask);
  void add_output(size_t offset, size_t bytes, uint8_t xor_mask);

  // A constant tensor: its bytes are copied to offset at the start of every
  // run (before the steps; a constant's buffer is never reused).
  void add_constant(size_t offset, std::vector<uint8_t> bytes);

  // Convolutions with their prepared output stage (uint8 output, NHWC,
  // out_c channels per pixel). The operators are shared: plans of several
  // batch sizes hold the same packed weights.
  void add_conv2d(std::shared_ptr<const Conv2d> op, std::shared_ptr<const OutputStage> stage,
                  size_t in_c, size_t out_c, size_t in, const ConvGeometry& g, size_t out);
  void add_conv_transpose2d(std::shared_ptr<const ConvTranspose2d> op,
                            std::shared_ptr<const OutputStage> stage, size_t in_c, size_t out_c,
                            size_t in, const ConvGeometry& g, size_t out);

  // TFLite's FULLY_CONNECTED: the GEMM's int32 result (rows x n, at acc, a
  // scratch buffer of the arena) requantized in double precision
  // (graph_kernels.h, requantize_double_u8) to uint8 at out.
  void add_fully_connected(std::shared_ptr<const Gemm> op, size_t in, size_t rows, size_t acc,
                           std::vector<double> real, int32_t zero_point, int32_t qmin, int32_t qmax,
                           size_t out);

  // Pooling, NHWC uint8 (graph_kernels.h); offset != 0 averages the model's
  // signed integers (int8 models).
  struct Pool {
    size_t batch, in_h, in_w, channels, kh, kw, stride_h, stride_w, pad_top, pad_left, out_h, out_w;
    // Elements from one output pixel to the next: channels, or more when the
    // output is written in place into a wider (concatenated) tensor.
    size_t out_stride;
  };
  void add_max_pool(const Pool& p, size_t in, size_t out, uint8_t qmin, uint8_t qmax);
  void add_avg_pool(const Pool& p, int32_t offset, size_t in, size_t out, uint8_t qmin,
                    uint8_t qmax);

  // dst[i] = src[i] (or lut[src[i]], lut of 256 entries, for one-byte
  // elements) over the index space `shape`.
  void add_copy(const PlanView& src, const PlanView& dst, const std::vector<size_t>& shape,
                size_t elem_bytes, std::vector<uint8_t> lut);
  // bytes bytes at offset set to value.
  void add_fill(size_t offset, size_t bytes, uint8_t value);
  // dst[i] = lut[a[i] * 256 + b[i]] (65536 entries), broadcasting by strides.
  void add_binary_lut(const PlanView& a, const PlanView& b, const PlanView& dst,
                      const std::vector<size_t>& shape, std::vector<uint8_t> lut);
  // float32 -> uint8 domain (graph_kernels.h, quantize_f32_tflite).
  void add_quantize_f32(size_t in, size_t n, float scale, int32_t zero_point, int32_t qmin,
                        int32_t qmax, int32_t offset, size_t out);
  // uint8 -> float32 by a table of 256 floats.
  void add_dequantize(size_t in, size_t n, std::vector<float> lut, size_t out);

  size_t steps() const;
  size_t inputs() const;
  size_t outputs() const;
  size_t input_bytes(size_t i) const;
  size_t output_bytes(size_t i) const;

  // --- running (any number of threads at once) ------------------------------
  // inputs[i] / outputs[i]: the graph's i-th input and output, of the sizes
  // given above. step_seconds, when not null, receives each step's time.
  // arena, when not null, is used instead of a pooled one (arena_bytes(), 64
  // byte aligned is best): a caller that wants every tensor afterwards.
  // Under an InterruptScope (lowp.h) an interrupted run stops between steps
  // (and inside the convolutions); its outputs are then unspecified.
  void run(const void* const* inputs, void* const* outputs, double* step_seconds,
           uint8_t* arena) const;

  struct Step;  // internal (plan.cc)
  struct Impl;  // internal (plan.cc)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lowp
