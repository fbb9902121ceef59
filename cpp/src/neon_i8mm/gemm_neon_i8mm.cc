// NEON i8mm GEMM microkernel: an 8x8 tile, eight k values per step.
//
// Tile: UMMLA multiplies a 2x8 block of u8 (two rows of A, 8 k each) by an
// 8x2 block of u8 (two columns of B, 8 k each) into a 2x2 block of u32. The
// 8x8 tile is 4 x 4 such blocks, acc[row pair][column pair], 16 of the 32
// vector registers, plus 4 A and 4 B operands per step (MLAS's
// QgemmU8X8KernelUmmla layout); 8x12 would need 24 accumulators and leave
// too few registers to hold its 10 operands.
//
// Packing (kr = 8): an A micro-panel holds, per group of 8 k, the 8 rows'
// 8 bytes in turn (gemm_pack_a_compact<8, 8>'s layout, packed here with
// NEON), so rows 2p and 2p + 1 are one 16-byte A operand; the generic B
// panel (gemm.h) holds, per group of 8 k, the 8 columns' 8 bytes in turn, so
// columns 2q and 2q + 1 are one 16-byte B operand. Each block's lanes are
// (2p, 2q), (2p, 2q + 1), (2p + 1, 2q), (2p + 1, 2q + 1); the 64-bit halves
// are zipped into rows for neon::gemm_store_8x8 (and back for the partial
// sums of earlier K blocks, which are row-major as gemm.h says).
//
// Exactness: UMMLA is u8 x u8 -> u32 with wrapping additions, so the sums are
// exact modulo 2^32 with B stored as is (b_flip 0) and the zero points fold
// exactly as on the other paths (DESIGN.md section 6).
//
// Inner loop (aarch64-linux-gnu-g++ 12 -O3, objdump): 4 LDP + 16 UMMLA +
// 2 ADD + SUBS + B.NE = 24 instructions per 512 multiply-adds, 0.047 each;
// gemm_u8_8x8c4_neondot's is 23 per 256 (2 LDP + 16 UDOT + 3 ADD + CMP +
// B.NE), 0.090 each: 0.52x.
//
// Compiled with +i8mm; reached only when the CPU reports i8mm (HWCAP2_I8MM).
// The path changes only the GEMM kernel: the rest comes from neon_dot.
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "../gemm.h"
#include "../neon/gemm_epilogue_neon.h"
#include "../paths.h"

namespace lowp {
namespace {

constexpr size_t kMr = 8, kNr = 8, kKr = 8;

inline uint32x4_t zip1_u64(uint32x4_t x, uint32x4_t y) {
  return vreinterpretq_u32_u64(vzip1q_u64(vreinterpretq_u64_u32(x), vreinterpretq_u64_u32(y)));
}
inline uint32x4_t zip2_u64(uint32x4_t x, uint32x4_t y) {
  return vreinterpretq_u32_u64(vzip2q_u64(vreinterpretq_u64_u32(x), vreinterpretq_u64_u32(y)));
}

// blocks[p][q] (rows 2p, 2p + 1, columns 2q, 2q + 1) -> rows[i][h] (row i,
// columns 4h..4h+3): each pair of rows is a pair of 64-bit zips.
inline void blocks_to_rows(const uint32x4_t blocks[4][4], uint32x4_t rows[8][2]) {
  for (int p = 0; p < 4; ++p) {
    for (int h = 0; h < 2; ++h) {
      rows[2 * p][h] = zip1_u64(blocks[p][2 * h], blocks[p][2 * h + 1]);
      rows[2 * p + 1][h] = zip2_u64(blocks[p][2 * h], blocks[p][2 * h + 1]);
    }
  }
}

// The partial sums of earlier K blocks (row-major, stride 8) as blocks, or
// zeros.
inline void load_blocks(const int32_t* acc_in, uint32x4_t blocks[4][4]) {
  if (acc_in == nullptr) {
    for (int p = 0; p < 4; ++p)
      for (int q = 0; q < 4; ++q) blocks[p][q] = vdupq_n_u32(0);
    return;
  }
  for (int p = 0; p < 4; ++p) {
    for (int h = 0; h < 2; ++h) {
      const uint32x4_t r0 = vreinterpretq_u32_s32(vld1q_s32(acc_in + 16 * p + 4 * h));
      const uint32x4_t r1 = vreinterpretq_u32_s32(vld1q_s32(acc_in + 16 * p + 8 + 4 * h));
      blocks[p][2 * h] = zip1_u64(r0, r1);
      blocks[p][2 * h + 1] = zip2_u64(r0, r1);
    }
  }
}

// gemm_pack_a_compact<8, 8>'s layout and row sums, 8 bytes at a time.
void pack_a_8x8c8(const uint8_t* a, size_t lda, size_t rows, size_t k_valid, size_t kc,
                  void* packed, int32_t* rowsum) {
  uint8_t* dst = static_cast<uint8_t*>(packed);
  const size_t groups = kc / kKr, full = k_valid / kKr;
  if (rows < kMr || full < groups) std::memset(dst, 0, kc * kMr);
  for (size_t i = 0; i < rows; ++i) {
    const uint8_t* src = a + i * lda;
    uint8_t* row_dst = dst + i * kKr;
    uint32x2_t sum = vdup_n_u32(0);
    // u16 lanes gain at most 2 * 255 per group: flush every 128 groups.
    for (size_t g0 = 0; g0 < full; g0 += 128) {
      const size_t g1 = std::min(full, g0 + 128);
      uint16x4_t sum16 = vdup_n_u16(0);
      for (size_t g = g0; g < g1; ++g) {
        const uint8x8_t v = vld1_u8(src + g * kKr);
        vst1_u8(row_dst + g * kMr * kKr, v);
        sum16 = vpadal_u8(sum16, v);
      }
      sum = vpadal_u16(sum, sum16);
    }
    uint32_t total = vaddv_u32(sum);
    for (size_t k = full * kKr; k < k_valid; ++k) {
      row_dst[full * kMr * kKr + k - full * kKr] = src[k];
      total += src[k];
    }
    rowsum[i] += static_cast<int32_t>(total);
  }
}

void gemm_u8_8x8c8_neoni8mm(size_t kgroups, const void* a_packed, const uint8_t* b,
                            const int32_t* acc_in, int32_t* acc_out, const GemmTileOut* out) {
  const uint8_t* a = static_cast<const uint8_t*>(a_packed);
  uint32x4_t acc[4][4];
  load_blocks(acc_in, acc);
  for (; kgroups != 0; --kgroups, a += kMr * kKr, b += kNr * kKr) {
    const uint8x16_t a01 = vld1q_u8(a), a23 = vld1q_u8(a + 16);
    const uint8x16_t a45 = vld1q_u8(a + 32), a67 = vld1q_u8(a + 48);
    const uint8x16_t b01 = vld1q_u8(b), b23 = vld1q_u8(b + 16);
    const uint8x16_t b45 = vld1q_u8(b + 32), b67 = vld1q_u8(b + 48);
    acc[0][0] = vmmlaq_u32(acc[0][0], a01, b01);
    acc[0][1] = vmmlaq_u32(acc[0][1], a01, b23);
    acc[0][2] = vmmlaq_u32(acc[0][2], a01, b45);
    acc[0][3] = vmmlaq_u32(acc[0][3], a01, b67);
    acc[1][0] = vmmlaq_u32(acc[1][0], a23, b01);
    acc[1][1] = vmmlaq_u32(acc[1][1], a23, b23);
    acc[1][2] = vmmlaq_u32(acc[1][2], a23, b45);
    acc[1][3] = vmmlaq_u32(acc[1][3], a23, b67);
    acc[2][0] = vmmlaq_u32(acc[2][0], a45, b01);
    acc[2][1] = vmmlaq_u32(acc[2][1], a45, b23);
    acc[2][2] = vmmlaq_u32(acc[2][2], a45, b45);
    acc[2][3] = vmmlaq_u32(acc[2][3], a45, b67);
    acc[3][0] = vmmlaq_u32(acc[3][0], a67, b01);
    acc[3][1] = vmmlaq_u32(acc[3][1], a67, b23);
    acc[3][2] = vmmlaq_u32(acc[3][2], a67, b45);
    acc[3][3] = vmmlaq_u32(acc[3][3], a67, b67);
  }
  uint32x4_t rows[8][2];
  blocks_to_rows(acc, rows);
  neon::gemm_store_8x8(rows, acc_out, out);
}

}  // namespace

namespace native {

const PathEntry& path_entry_neon_i8mm() {
  static const GemmKernel kernel = {
      "gemm_u8_8x8c8_neoni8mm", kMr,    kNr, kKr, kMr, 512, 0, pack_a_8x8c8,
      gemm_u8_8x8c8_neoni8mm,   nullptr};
  static const PathEntry entry = {
      "neon_i8mm", 30, kFeatureNeonI8mm, "neon_dot", {nullptr, nullptr, nullptr, &kernel, nullptr}};
  return entry;
}

}  // namespace native
}  // namespace lowp
