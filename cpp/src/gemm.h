// GEMM internals shared by the driver (gemm.cc) and the per-path
// microkernels. Everything here is plain data: the driver has already
// validated shapes and folded the weight-only zero-point terms.
//
//   C[m, n] = sum_k A[m, k] B[k, n]            (the microkernel's loop)
//           + col_offset[n]                     (bias + K a_zp b_zp[n] - a_zp colsum_n(B))
//           - b_zp[n] * rowsum_m(A)             (the only input-dependent term)
//
// All of it in wrapping uint32 arithmetic: the terms may overflow, the sum is
// exact whenever the true result fits in int32 (K <= 33025).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fixedpoint_scalar.h"
#include "kernels.h"

namespace lowp {

// Where a finished MR x NR tile goes, and how. Pointers are already offset to
// the tile's first row / column. rows <= MR and cols <= NR are the valid part
// (edge tiles); per-column arrays are padded to whole panels, so a kernel may
// read NR entries from them.
struct GemmTileOut {
  size_t rows, cols;
  const int32_t* col_offset;    // [NR]
  const int32_t* b_zero_point;  // [NR]
  bool b_zero_point_uniform;    // every column's b_zero_point is b_zero_point[0]
  const int32_t* rowsum;        // [MR], sums of the packed A rows
  void* c;                      // int32 or uint8 output, row stride ldc elements
  size_t ldc;
  // Fused requantization, or null for int32 output. Its tables are per
  // column (period = padded N, offset to the tile) or per tensor (period 1).
  const ChannelParams* requant;
  size_t requant_column;  // the tile's first column, to index requant tables
  int32_t zero_point, qmin, qmax;
};

// One microkernel call: kgroups groups of KR k values of a packed A
// micro-panel (MR rows) times a packed B panel (NR columns). acc_in, if not
// null, holds the MR x NR partial sums of earlier K blocks (row-major,
// stride NR) to add. If acc_out is not null the raw partial sums are stored
// there (more K blocks follow); otherwise the tile is finished into *out.
using GemmUkernelFn = void (*)(size_t kgroups, const void* a, const uint8_t* b,
                               const int32_t* acc_in, int32_t* acc_out, const GemmTileOut* out);

// Packs rows [0, rows) (rows <= MR; missing rows are zero) of A, k values
// [0, kc) (kc a multiple of KR; values at k >= k_valid are zero) into one
// micro-panel, and adds each row's sum over k < k_valid to rowsum[0, MR).
using GemmPackAFn = void (*)(const uint8_t* a, size_t lda, size_t rows, size_t k_valid, size_t kc,
                             void* packed, int32_t* rowsum);

// Packed B as a GEMV sees it: K blocks of kc values (the last may be
// shorter), each holding every panel; panel p of the block at k0 starts at
// data + k0 * panels * nr + p * (block size) * nr.
struct GemvB {
  const uint8_t* data;
  size_t k_padded, kc, panels;
};

// One row of A (k values, unpacked) times panels [p0, p1) of B, finished
// into *out (rows = 1; the per-column pointers and c at column p0 * nr; cols
// = the valid columns of those panels). For M = 1 a micro-panel of mr rows
// would waste mr - 1 of them.
using GemvFn = void (*)(const uint8_t* a, size_t k, const GemvB& b, size_t p0, size_t p1,
                        const GemmTileOut* out);

// Widest panel any kernel may declare: per-column tables are padded by this
// much so that a kernel may read nr entries from any panel's first column.
constexpr size_t kMaxNr = 64;

// A GEMM kernel declares everything the driver needs to pack for it:
// its tile, its A packer, and how its B panels are stored. B panels are
// laid out generically (gemm.cc pack_b): per group of kr k values, nr
// columns of kr consecutive k bytes each, K padded with zeros. b_flip is
// XORed into every stored B byte: 0x80 stores B - 128 as int8, for the u8 x
// s8 dot products (vpdpbusd); the packer then folds the -128 into the
// per-column zero points it hands the kernel (b_zp - 128), which keeps the
// result exact modulo 2^32 (DESIGN.md section 6).
struct GemmKernel {
  const char* name;      // microkernel name, e.g. "gemm_u8_6x16c2_avx2"
  size_t mr, nr, kr;     // tile and k-group sizes (nr <= kMaxNr)
  size_t a_bytes_per_k;  // packed A bytes per k value of one micro-panel
  size_t kc;             // k values per cache block (a multiple of kr)
  uint8_t b_flip;        // 0, or 0x80 for kernels that read B as int8
  GemmPackAFn pack_a;
  GemmUkernelFn ukernel;
  GemvFn gemv;  // optional M = 1 kernel (null: use ukernel)
};

// The value of one output element before requantization.
static inline int32_t gemm_finish_one(uint32_t sum, int32_t col_offset, int32_t b_zero_point,
                                      int32_t rowsum) {
  return static_cast<int32_t>(sum + static_cast<uint32_t>(col_offset) -
                              static_cast<uint32_t>(b_zero_point) * static_cast<uint32_t>(rowsum));
}

// Stores (or requantizes) element (i, j) of a finished tile, the scalar way:
// the edge path of every microkernel and the whole of the scalar one.
static inline void gemm_store_one(const GemmTileOut& out, size_t i, size_t j, uint32_t sum) {
  const int32_t v = gemm_finish_one(sum, out.col_offset[j], out.b_zero_point[j], out.rowsum[i]);
  if (out.requant == nullptr) {
    static_cast<int32_t*>(out.c)[i * out.ldc + j] = v;
    return;
  }
  const ChannelParams& rq = *out.requant;
  const size_t ch = rq.period == 1 ? 0 : out.requant_column + j;
  static_cast<uint8_t*>(out.c)[i * out.ldc + j] = fixedpoint::requantize_one(
      v, rq.multiplier[ch], rq.shift[ch], out.zero_point, out.qmin, out.qmax);
}

// Packs rows [0, rows) of A (k values [0, k_valid); the rest zero) into a
// compact micro-panel of kMr rows: per group of kKr k values, each row's kKr
// bytes in turn. Adds each row's sum to rowsum. The scalar and NEON kernels
// read this layout; `static` keeps one copy per translation unit, since the
// units are compiled with different ISA flags.
template <size_t kMr, size_t kKr>
static void gemm_pack_a_compact(const uint8_t* a, size_t lda, size_t rows, size_t k_valid,
                                size_t kc, void* packed, int32_t* rowsum) {
  uint8_t* dst = static_cast<uint8_t*>(packed);
  std::memset(dst, 0, kc * kMr);
  for (size_t i = 0; i < rows; ++i) {
    uint32_t sum = 0;
    for (size_t k = 0; k < k_valid; ++k) {
      dst[(k / kKr) * kMr * kKr + i * kKr + k % kKr] = a[i * lda + k];
      sum += a[i * lda + k];
    }
    rowsum[i] += static_cast<int32_t>(sum);
  }
}

const GemmKernel& scalar_gemm_kernel();  // scalar/gemm_scalar.cc

}  // namespace lowp
