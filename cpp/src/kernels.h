// The per-path kernel table. Each ISA fills one table in its own translation
// unit (compiled with that ISA's flags); dispatch.cc picks one table at run
// time, after CPUID/XGETBV (x86) or the auxiliary vector (aarch64) said the
// CPU supports it. Nothing outside those files may call an ISA kernel
// directly. Microkernels never allocate and never validate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lowp/lowp.h"

namespace lowp {

// Channel parameters of a fixed-point multiply, in the forms the kernels
// use, derived once per call (elementwise.cc) rather than per element.
// Element i uses entry i % period of every array.
struct ChannelParams {
  const int32_t* multiplier;  // m0
  const int32_t* shift;       // as given, in [-31, 30]
  const int32_t* left;        // max(shift, 0)
  const int32_t* right;       // max(-shift, 0)
  const int32_t* round_mask;  // (1 << right) - 1: the bits a right shift drops
  const int32_t* round_half;  // round_mask >> 1: the largest remainder that rounds down
  size_t period;
  bool any_left;   // some shift > 0 (else the saturating left shift is a no-op)
  bool any_right;  // some shift < 0 (else the rounding right shift is a no-op)
};

// ChannelParams with its own storage: entry i of every table is derived
// from multiplier[i % count] and shift[i % count], for i < size. Built once
// per call (or per operator): a kernel never derives them per element. The
// storage sits inside the object for the usual sizes, since a heap
// allocation per call would cost more than a small requantize.
class ChannelTables {
 public:
  ChannelTables(const int32_t* multiplier, const int32_t* shift, size_t count, size_t size);
  ChannelTables(const ChannelTables&) = delete;  // params() points into this object
  ChannelTables& operator=(const ChannelTables&) = delete;
  const ChannelParams& params() const { return params_; }

 private:
  static constexpr size_t kInline = 6 * 256;
  int32_t inline_[kInline];
  std::vector<int32_t> heap_;
  ChannelParams params_;
};

// OutputStage's tables (lowp.h): channel tables over the stage's columns
// plus the padding a kernel may read past them.
struct OutputStage::Tables {
  Tables(const Requantization& rq, size_t size) : tables(rq.multiplier, rq.shift, rq.count, size) {}
  ChannelTables tables;
};

using RequantU8Fn = void (*)(const int32_t* acc, size_t n, const ChannelParams& channels,
                             int32_t zero_point, int32_t qmin, int32_t qmax, uint8_t* out);
using MulQuantS32Fn = void (*)(const int32_t* x, size_t n, const ChannelParams& channels,
                               int32_t* out);
// Writes clamp(rint(x / scale) + zero_point, qmin, qmax) ^ flip as a byte;
// flip = 0x80 turns the biased uint8 result into int8. Returns false on NaN.
using QuantizeF32Fn = bool (*)(const float* x, size_t n, float scale, float zero_point, float qmin,
                               float qmax, uint8_t flip, uint8_t* out);

struct GemmKernel;        // gemm.h
struct DirectConvKernel;  // conv_direct.h

// One path's kernels. An entry a path leaves null is filled from the path
// it inherits from (paths.h); after that only direct_conv, gemm_narrow and direct_deconv may be
// null (the convolution then takes the GEMM route).
struct KernelTable {
  RequantU8Fn requant_u8 = nullptr;
  MulQuantS32Fn mulquant_s32 = nullptr;
  QuantizeF32Fn quantize_f32 = nullptr;
  const GemmKernel* gemm = nullptr;
  const DirectConvKernel* direct_conv = nullptr;  // narrow-row convolutions
  // Optional: taken for N <= its nr, where the default kernel's wider panels
  // would mostly multiply padding (same B flip and K layout rules).
  const GemmKernel* gemm_narrow = nullptr;
  // Optional: transposed convolutions with stride == kernel (no overlap),
  // run over input pixels [begin, end) and writing each one's kh x kw patch
  // of the output (conv_direct.h).
  const DirectConvKernel* direct_deconv = nullptr;
};

// The GEMM kernel a table uses for n output columns.
const GemmKernel& gemm_kernel_for(const KernelTable& table, size_t n);

// The (resolved) table of a path, which must be registered, and of the
// active path.
const KernelTable& kernels_of(Path path);
const KernelTable& active_kernels();

// A job of less work than this (in multiply-adds; an elementwise element
// counts as kElementWork) runs on the caller's thread alone: waking a worker
// costs tens of microseconds, more than such a job takes on one core.
constexpr size_t kMinParallelWork = size_t{1} << 20;
constexpr size_t kElementWork = 16;

// The threads a job of `work` multiply-adds runs on: 1 below
// kMinParallelWork, else num_threads(). Drivers shape their tasks for it.
int threads_for(size_t work);

// Runs fn(task) for task in [0, n_tasks) on up to threads_for(work) threads
// (the caller is one of them). Tasks must write disjoint outputs. Under an
// InterruptScope (lowp.h) the caller polls it between tasks; once it is
// interrupted the tasks not yet started are skipped, and so is every later
// job on this thread until the scope ends.
void parallel_for(size_t n_tasks, void (*fn)(void* ctx, size_t task), void* ctx, size_t work);

}  // namespace lowp
