// Hooks of a GEMM run for the operators built on it (the convolutions): A
// rows produced on demand instead of read from memory (im2col, one task's
// rows at a time so they stay in cache), and finished C blocks handed to a
// callback instead of stored at c + row * ldc (the scatter of a transposed
// convolution).
#pragma once

#include <cstddef>
#include <cstdint>

#include "gemm.h"
#include "lowp/lowp.h"

namespace lowp {

struct GemmRowSource {
  // Writes rows [row0, row0 + rows) of A, k bytes each, to dst (row stride k).
  void (*gather)(const void* ctx, size_t row0, size_t rows, uint8_t* dst);
  const void* ctx;
  // Optional; when set it replaces gather + the kernel's pack_a: packs rows
  // [row, row + rows) (rows <= kn.mr), k values [k0, k0 + k_valid) of A into
  // one micro-panel exactly as kn.pack_a would (the rest of [k0, k0 + kc)
  // zero) and adds the row sums. Every kernel's packed layout is linear in
  // k groups (k values [k, k + n) of a panel, k a multiple of kr, start at
  // byte k * a_bytes_per_k), so it may pack a range in pieces.
  void (*pack)(const void* ctx, const GemmKernel& kn, size_t row, size_t rows, size_t k0,
               size_t k_valid, size_t kc, void* packed, int32_t* rowsum) = nullptr;
};

struct GemmBlockSink {
  // block holds C[row0 + i, col0 + j] for i < rows, j < cols at
  // block + (i * ld + j) elements (int32, or uint8 with a fused requant).
  // Called once per task, after the block is finished; blocks never overlap.
  void (*scatter)(const void* ctx, size_t row0, size_t rows, size_t col0, size_t cols,
                  const void* block, size_t ld);
  const void* ctx;
};

struct GemmCall {
  const uint8_t* a = nullptr;  // m x k, row stride lda (unused with a source)
  size_t m = 0, lda = 0;
  const GemmRowSource* source = nullptr;
  const OutputStage* stage = nullptr;  // null: int32 output
  void* c = nullptr;                   // m x n, row stride ldc (unused with a sink)
  size_t ldc = 0;
  const GemmBlockSink* sink = nullptr;
};

// Runs the GEMM on the active path and num_threads() threads.
void run_gemm(const Gemm& gemm, const GemmCall& call);

}  // namespace lowp
