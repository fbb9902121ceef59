// lowp: exact uint8 integer kernels for quantized inference (gemmlowp / TFLite
// integer semantics). This is the public C++ API of the core library; it has
// no Python in it. Arguments are trusted: the Python bindings (or a C++ caller)
// validate shapes, ranges and dtypes before calling in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lowp {

// ---------------------------------------------------------------------------
// Paths (ISA variants). One build carries every path its architecture can
// have (each registered by its folder, cpp/src/paths.h); the best one the
// running CPU supports is picked on first use. A Path is an index into the
// registry: scalar is always 0, the others are found by name.
enum class Path : int { kScalar = 0 };
constexpr int kMaxPaths = 16;

const char* path_name(Path path);
// Parses a registered path's name ("scalar", "avx2", "avx_vnni",
// "avx512_vnni", "neon", "neon_dot", ... as built). Returns false for other
// names.
bool path_from_name(const std::string& name, Path* path);
// Every registered path of this build, available or not.
std::vector<Path> registered_paths();

// Paths this CPU (and OS) can run, best last.
std::vector<Path> available_paths();
bool path_available(Path path);
// The path kernels run on now. Starts as the best available one.
Path active_path();
// Forces a path; returns false (and changes nothing) if it is not available.
bool set_active_path(Path path);

struct CpuInfo {
  std::string arch;                   // "x86_64", "aarch64" or "other"
  std::string model;                  // the CPU's brand string, where it has one
  std::vector<std::string> features;  // e.g. "avx2", "fma", "avx512_vnni", "asimddp"
};
CpuInfo cpu_info();

// ---------------------------------------------------------------------------
// Threads. Work is split so that results never depend on the thread count.
// At most kMaxThreads: more threads than that only cost memory and wake-ups.
constexpr int kMaxThreads = 256;
int default_num_threads();  // cores this process may run on (at most kMaxThreads)
int num_threads();
// Clamped to [1, kMaxThreads]. Lowering the count stops the pool's extra
// workers (after any job in flight).
void set_num_threads(int n);
// Jobs handed to the thread pool in this process so far. Small jobs run on
// the caller's thread alone and are not counted (for tests).
uint64_t pool_jobs();

// ---------------------------------------------------------------------------
// Interruption. While an InterruptScope lives on a thread, the kernels that
// thread calls poll it between their tasks (pieces of a few milliseconds at
// most): every `interval` they call poll(ctx), and once it returns true the
// call skips the rest of its work and returns early, as does every later
// call on that thread while the scope lives. interrupted() then says so, and
// the outputs of the interrupted call are partly written (unspecified).
// Scopes nest; a poll never runs within the first interval of its scope.
class InterruptScope {
 public:
  InterruptScope(bool (*poll)(void* ctx), void* ctx, int interval_ms);
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;
  bool interrupted() const { return interrupted_; }
  // The innermost scope of this thread, or null.
  static InterruptScope* current();
  // True when the work should stop: interrupted already, or a poll due now
  // said so.
  bool stop();
  // Nanoseconds until the next poll is due (0: now).
  int64_t ns_to_next_poll() const;

 private:
  bool (*poll_)(void*);
  void* ctx_;
  int64_t interval_ns_, next_ns_;
  bool interrupted_ = false;
  InterruptScope* outer_;
};

// ---------------------------------------------------------------------------
// Fixed-point arithmetic (gemmlowp semantics, DESIGN.md section 2). These are
// the scalar definitions; the kernels below are bit-identical to them.

// real -> (m0, shift) with m0 in [2^30, 2^31 - 1] (or 0) and shift <= 30.
// Returns false (and writes (0, 0)) for a NaN, infinite or negative real or
// one whose shift would exceed 30; 0 and reals below 2^-32 give (0, 0).
bool quantize_multiplier(double real, int32_t* multiplier, int32_t* shift);

int32_t srdhm(int32_t a, int32_t b);       // SaturatingRoundingDoublingHighMul
int32_t rdivpot(int32_t x, int exponent);  // RoundingDivideByPOT, 0 <= exponent <= 31
int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift);

// ---------------------------------------------------------------------------
// Elementwise kernels on flat arrays. Channel parameters repeat with `period`:
// element i uses multiplier[i % period] and shift[i % period] (period 1 is a
// per-tensor multiplier). Preconditions: multiplier in [0, 2^31 - 1],
// shift in [-31, 30], 0 <= qmin <= qmax <= 255, zero_point in [0, 255].
// They run on the active path and on num_threads() threads.

void requantize_u8(const int32_t* acc, size_t n, const int32_t* multiplier, const int32_t* shift,
                   size_t period, int32_t zero_point, int32_t qmin, int32_t qmax, uint8_t* out);

void multiply_by_quantized_multiplier_s32(const int32_t* x, size_t n, const int32_t* multiplier,
                                          const int32_t* shift, size_t period, int32_t* out);

// q = clamp(rint_half_even(x / scale) + zero_point, qmin, qmax), in float32
// arithmetic. The result is written as uint8 when qmin >= 0, otherwise as
// int8 (qmin >= -128, qmax <= 127). Returns false if x holds a NaN (the output
// is then unspecified).
bool quantize_f32_8bit(const float* x, size_t n, float scale, int32_t zero_point, int32_t qmin,
                       int32_t qmax, void* out);

// ---------------------------------------------------------------------------
// GEMM: C[m, n] = sum_k (A[m, k] - a_zp) * (B[k, n] - b_zp[n]) (+ bias[n]),
// exact in int32 for K <= kMaxGemmK. Operands are uint8 (int8 maps onto them
// exactly: q + 128, zero point + 128).
constexpr size_t kMaxGemmK = 33025;

// A fused output stage: the int32 result is requantized to uint8 while the
// tile is in registers. multiplier/shift have 1 (per tensor) or n values.
struct Requantization {
  const int32_t* multiplier;
  const int32_t* shift;
  size_t count;
  int32_t zero_point, qmin, qmax;
};
class OutputStage;

// A fused output stage prepared once, when an operator is created: the
// requantization's per-channel tables in the form the kernels read, for the
// operator's output columns. Runs taking a Requantization prepare one per
// call; the operators' prepare() is for repeated calls. Immutable, so one
// stage may serve concurrent runs.
class OutputStage {
 public:
  // Column i uses channel i % requant.count (count 1: per tensor), for
  // columns [0, columns) and the padding kernels may read past them.
  OutputStage(const Requantization& requant, size_t columns);
  ~OutputStage();
  OutputStage(const OutputStage&) = delete;
  OutputStage& operator=(const OutputStage&) = delete;
  const Requantization& requant() const { return requant_; }
  size_t columns() const { return columns_; }
  struct Tables;
  const Tables& tables() const { return *tables_; }

 private:
  Requantization requant_;  // the pointers are not kept: the tables hold copies
  size_t columns_;
  std::unique_ptr<Tables> tables_;
};

struct GemmCall;  // internal: a run with im2col / scatter hooks (the convolutions)
class Gemm;
void run_gemm(const Gemm& gemm, const GemmCall& call);

// B packed once (for the active path, repacked if the path changes), with
// every term that depends only on the weights folded in.
class Gemm {
 public:
  // b: k x n with row stride ldb. b_zero_point: 1 or n values in [0, 255].
  // bias: n values or null. Requires k <= kMaxGemmK.
  Gemm(const uint8_t* b, size_t k, size_t n, size_t ldb, const int32_t* b_zero_point,
       size_t b_zero_point_count, int32_t a_zero_point, const int32_t* bias);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  size_t k() const;
  size_t n() const;
  // c (m x n, row stride ldc) = the int32 result. a: m x k, row stride lda.
  void run(const uint8_t* a, size_t m, size_t lda, int32_t* c, size_t ldc) const;
  // c = requantize(result) as uint8.
  void run(const uint8_t* a, size_t m, size_t lda, const Requantization& requant, uint8_t* c,
           size_t ldc) const;
  // The output stage of `requant` for this operator, prepared once.
  std::unique_ptr<OutputStage> prepare(const Requantization& requant) const;
  void run(const uint8_t* a, size_t m, size_t lda, const OutputStage& stage, uint8_t* c,
           size_t ldc) const;

 private:
  friend void run_gemm(const Gemm& gemm, const GemmCall& call);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------
// Convolutions, channel-last. Input x is NHWC [batch, in_h, in_w, in_c],
// weights OHWI [out_c, kh, kw, in_c], output NHWC [batch, out_h, out_w,
// out_c], contiguous except that the output's pixels may lie out_stride
// elements apart (a channel slice of a wider tensor, e.g. a concatenation's
// output): channels [out_c, out_stride) of every pixel are never written.
// The caller resolves the padding (or crop) to the top/left amount and the
// output size. The results are the GEMM's: exact in int32, with the same
// fused output stage (requant tables per output channel).

struct ConvGeometry {
  size_t batch, in_h, in_w;
  size_t pad_top, pad_left;  // conv: zero rows/columns before the input;
                             // transposed conv: rows/columns cropped off the full output
  size_t out_h, out_w;
  size_t out_stride = 0;  // elements from one output pixel to the next; 0: out_c
};

// out[n, y, x, o] = sum over taps (ky, kx, c) of (x[n, y*sh - pad_top + ky,
// x*sw - pad_left + kx, c] - x_zp) * (w[o, ky, kx, c] - w_zp[o]) + bias[o],
// a tap outside the input contributing zero. Requires kh * kw * in_c <= kMaxGemmK.
class Conv2d {
 public:
  Conv2d(const uint8_t* w, size_t out_c, size_t kh, size_t kw, size_t in_c, size_t stride_h,
         size_t stride_w, const int32_t* w_zero_point, size_t w_zero_point_count,
         int32_t x_zero_point, const int32_t* bias);
  ~Conv2d();
  Conv2d(const Conv2d&) = delete;
  Conv2d& operator=(const Conv2d&) = delete;

  void run(const uint8_t* x, const ConvGeometry& g, int32_t* out) const;
  void run(const uint8_t* x, const ConvGeometry& g, const Requantization& requant,
           uint8_t* out) const;
  std::unique_ptr<OutputStage> prepare(const Requantization& requant) const;
  void run(const uint8_t* x, const ConvGeometry& g, const OutputStage& stage, uint8_t* out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The full output F [batch, (in_h - 1) * sh + kh, (in_w - 1) * sw + kw,
// out_c] sums, for every input pixel (y, x) and tap (ky, kx), (x[n, y, x, :] -
// x_zp) . (w[o, ky, kx, :] - w_zp[o]) into F[n, y*sh + ky, x*sw + kx, o]; the
// output is F cropped by pad_top / pad_left, plus bias[o] (pixels past the
// end of F, as TFLite's "same" gives when the kernel is smaller than the
// stride, are the bias alone; pad_top + out_h must not exceed the larger of
// F's height and in_h * sh, likewise for the width). Exact when in_c *
// ceil(kh / sh) * ceil(kw / sw) <= kMaxGemmK (the products summed into one
// output). When the stride equals the kernel (2x2 stride 2) no
// contributions overlap and it is one GEMM with the output stage fused.
class ConvTranspose2d {
 public:
  ConvTranspose2d(const uint8_t* w, size_t out_c, size_t kh, size_t kw, size_t in_c,
                  size_t stride_h, size_t stride_w, const int32_t* w_zero_point,
                  size_t w_zero_point_count, int32_t x_zero_point, const int32_t* bias);
  ~ConvTranspose2d();
  ConvTranspose2d(const ConvTranspose2d&) = delete;
  ConvTranspose2d& operator=(const ConvTranspose2d&) = delete;

  void run(const uint8_t* x, const ConvGeometry& g, int32_t* out) const;
  void run(const uint8_t* x, const ConvGeometry& g, const Requantization& requant,
           uint8_t* out) const;
  std::unique_ptr<OutputStage> prepare(const Requantization& requant) const;
  void run(const uint8_t* x, const ConvGeometry& g, const OutputStage& stage, uint8_t* out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lowp
