// AVX-VNNI GEMM microkernel gemm_u8_6x16c4_avxvnni: a 6x16 int32 tile from
// a compact A micro-panel with VEX vpdpbusd on ymm, exact, and its GEMV
// companion gemv_u8_1x64c4_avxvnni for M = 1.
//
// Packing: A per group of 4 k values holds the 6 rows' 4 bytes side by side
// (24 bytes; a_bytes_per_k = 6, linear in k groups so a K range may be
// packed in pieces). B panels are 16 columns wide, per k group the 4 bytes
// of each column side by side (64 bytes), stored as B ^ 0x80 (b_flip).
//
// Exactness: B ^ 0x80 read as int8 is B - 128, in [-128, 127]; A is read
// as uint8. vpdpbusd forms the four u8 x s8 products exactly (|p| < 2^15,
// their sum < 2^17) and adds them to the int32 lane without saturation,
// so each lane holds sum_k A (B - 128) modulo 2^32. Packed padding holds
// A = 0 (k >= K, rows >= M), so it adds nothing whatever B holds there. The
// driver hands the kernel b_zp' = b_zp - 128; the finish adds col_offset
// and subtracts b_zp' rowsum(A), all wrapping uint32:
//   sum A (B - 128) - (b_zp - 128) sum A + col_offset
//     = sum A (B - b_zp) + col_offset                     (mod 2^32),
// the contract's value, exact wherever it fits int32 (K <= 33025). Only
// vpdpbusd is used: never vpdpbusds (saturating int32) nor vpmaddubsw
// (saturating int16).
//
// Per k group: 2 B loads, 6 vpbroadcastd of A (pure loads), 12 vpdpbusd
// into ymm0-11; 15 of the 16 ymm registers, as MLAS's AVX-VNNI kernel. Two
// vpdpbusd a cycle (Alder Lake ports 0/5, Zen 5; Zen 4's EVEX form the
// same) with latency 4-5 need 8-10 independent chains: 12 hide it, and 8
// loads per 12 multiplies leave the load ports slack. A 4x24 tile reads
// fewer bytes per multiply but a 24-column panel fits none of the usual
// channel counts (32..512) without waste. Intrinsics, not asm: the loop
// keeps its 12 accumulators in registers (checked with objdump), and the
// SIMDe test build compiles the same source. Measured on Zen 4 with the same
// source built for EVEX vpdpbusd ymm (this CPU lacks the VEX form): in L1,
// K = 1152, ~470 GOPS, 97-100% of 12 independent vpdpbusd ymm chains and
// 2.7x the AVX2 kernel; a whole K = 27 first-layer GEMM with requant, 1.7x.
#include <algorithm>
#include <cstring>

#include "../avx2/fixedpoint_avx2.h"
#include "../gemm.h"
#include "../x86/intrin.h"
#include "../x86/pack_x86.h"

namespace lowp {
namespace LOWP_ISA_NS {
namespace {

constexpr size_t kMr = 6, kNr = 16, kKr = 4;

inline __m256i load256(const void* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
inline __m128i load128(const void* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}
inline int32_t load32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// ---------------------------------------------------------------------------
// A packing.

using x86::transpose_6x8;

// Bytes [k, min(k + 32, k_valid)) of a row, then zeros, reading only the
// `readable` bytes from the row's start (x86::load_tail32).
inline __m256i load_row32(const uint8_t* row, size_t k, size_t k_valid, size_t readable) {
  if (k >= k_valid) return _mm256_setzero_si256();
  if (k + 32 <= k_valid) return load256(row + k);
  return x86::load_tail32(row, k, k_valid, readable);
}

// Rows [0, rows) of A, k values [0, k_valid) (the rest of [0, kc) zero),
// as the 6-row micro-panel of kc / 4 groups of 24 bytes; adds the row sums.
// 32 bytes of each row at a time, transposed in registers; the row sums come
// from the transposed groups by vpdpbusd with ones (lane i: row i), which
// is exact (at most 4 x 255 per step). Never writes past kc * 6 bytes.
void pack_a_6x4_avxvnni(const uint8_t* a, size_t lda, size_t rows, size_t k_valid, size_t kc,
                        void* packed, int32_t* rowsum) {
  uint8_t* dst = static_cast<uint8_t*>(packed);
  const size_t groups = kc / kKr;
  const __m256i ones = _mm256_set1_epi8(1);
  __m256i sums = _mm256_setzero_si256();
  __m256i r[kMr], g[8];
  for (size_t q = 0; q < groups; q += 8) {
    const size_t k = kKr * q;
    if (rows == kMr && k + 32 <= k_valid) {
      if (k % 64 == 0) x86::prefetch_next_panel<kMr>(a, lda, k);  // per 2 steps
      const uint8_t* a3 = a + 3 * lda;
      r[0] = load256(a + k);
      r[1] = load256(a + lda + k);
      r[2] = load256(a + 2 * lda + k);
      r[3] = load256(a3 + k);
      r[4] = load256(a3 + lda + k);
      r[5] = load256(a3 + 2 * lda + k);
    } else {
      for (size_t i = 0; i < kMr; ++i) {
        r[i] = i < rows ? load_row32(a + i * lda, k, k_valid, (rows - 1 - i) * lda + k_valid)
                        : _mm256_setzero_si256();
      }
    }
    transpose_6x8(r, g);
    uint8_t* d = dst + 24 * q;
    if (q + 8 < groups) {  // each 32-byte store's last 8 bytes are overwritten by the next
#pragma GCC unroll 8
      for (size_t j = 0; j < 8; ++j) {
        sums = lowp_dpbusd_ymm(sums, g[j], ones);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 24 * j), g[j]);
      }
    } else {
      const size_t count = groups - q;
      for (size_t j = 0; j < count; ++j) {
        sums = lowp_dpbusd_ymm(sums, g[j], ones);
        if (j + 1 < count) {
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 24 * j), g[j]);
        } else {  // the panel's last group: 24 bytes
          _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 24 * j), _mm256_castsi256_si128(g[j]));
          _mm_storel_epi64(reinterpret_cast<__m128i*>(d + 24 * j + 16),
                           _mm256_extracti128_si256(g[j], 1));
        }
      }
    }
  }
  alignas(32) int32_t s[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(s), sums);
  for (size_t i = 0; i < kMr; ++i) rowsum[i] += s[i];  // rows past `rows` summed zeros
}

// ---------------------------------------------------------------------------
// Output stage: the tile still in registers, v[2 i] columns 0..7 of row i
// and v[2 i + 1] columns 8..15.

template <int R>
inline void store_s32(const __m256i* v, const GemmTileOut& out) {
  int32_t* c = static_cast<int32_t*>(out.c);
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i)
    avx2::store_row16_s32(c + i * out.ldc, v[2 * i], v[2 * i + 1], out.cols);
}

template <int R, bool kLeft, bool kRight>
inline void store_u8(const __m256i* v, const avx2::MulQuantLanes& lo, const avx2::MulQuantLanes& hi,
                     const GemmTileOut& out) {
  const avx2::OutputClamp clamp(out.zero_point, out.qmin, out.qmax);
  uint8_t* c = static_cast<uint8_t*>(out.c);
#pragma GCC unroll 6
  for (int i = 0; i < R; i += 2) {  // two rows of 16 bytes at a time
    const int next = i + 1 < R ? i + 1 : i;
    const __m256i bytes = clamp(avx2::mulquant<kLeft, kRight>(v[2 * i], lo),
                                avx2::mulquant<kLeft, kRight>(v[2 * i + 1], hi),
                                avx2::mulquant<kLeft, kRight>(v[2 * next], lo),
                                avx2::mulquant<kLeft, kRight>(v[2 * next + 1], hi));
    avx2::store_rows16_u8(c + i * out.ldc, out.ldc, bytes, out.cols, i + 1 < R);
  }
}

// Rows [0, R) of a tile of sums A . (B - 128): adds the column offsets,
// subtracts b_zp'[j] * rowsum[i] (wrapping), then stores int32 or
// requantizes. R == out.rows.
template <int R>
void finish_tile(__m256i* v, const GemmTileOut& out) {
  const __m256i offset0 = load256(out.col_offset), offset1 = load256(out.col_offset + 8);
  if (out.b_zero_point_uniform) {  // one scalar product per row, no vpmulld
    const uint32_t bz = static_cast<uint32_t>(out.b_zero_point[0]);
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
      const __m256i corr =
          _mm256_set1_epi32(static_cast<int32_t>(bz * static_cast<uint32_t>(out.rowsum[i])));
      v[2 * i] = _mm256_add_epi32(v[2 * i], _mm256_sub_epi32(offset0, corr));
      v[2 * i + 1] = _mm256_add_epi32(v[2 * i + 1], _mm256_sub_epi32(offset1, corr));
    }
  } else {
    const __m256i bzp0 = load256(out.b_zero_point), bzp1 = load256(out.b_zero_point + 8);
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
      const __m256i rs = _mm256_set1_epi32(out.rowsum[i]);
      v[2 * i] =
          _mm256_sub_epi32(_mm256_add_epi32(v[2 * i], offset0), _mm256_mullo_epi32(bzp0, rs));
      v[2 * i + 1] =
          _mm256_sub_epi32(_mm256_add_epi32(v[2 * i + 1], offset1), _mm256_mullo_epi32(bzp1, rs));
    }
  }
  if (out.requant == nullptr) {
    store_s32<R>(v, out);
    return;
  }
  const ChannelParams& rq = *out.requant;
  avx2::MulQuantLanes lo, hi;
  if (rq.period == 1) {
    lo = hi = avx2::broadcast_lanes(rq.multiplier[0], rq.shift[0]);
  } else {
    lo = avx2::load_lanes(rq, out.requant_column);
    hi = avx2::load_lanes(rq, out.requant_column + 8);
  }
  if (rq.any_left && rq.any_right) {
    store_u8<R, true, true>(v, lo, hi, out);
  } else if (rq.any_left) {
    store_u8<R, true, false>(v, lo, hi, out);
  } else if (rq.any_right) {
    store_u8<R, false, true>(v, lo, hi, out);
  } else {
    store_u8<R, false, false>(v, lo, hi, out);
  }
}

// ---------------------------------------------------------------------------
// The microkernel.

// R rows (R == rows of an edge micro-panel; the packed panel always has 6):
// only their multiplies run, so M = 8 costs 6 + 2 rows, not 12.
template <int R>
void tile_6x16c4(size_t kgroups, const uint8_t* a, const uint8_t* b, const int32_t* acc_in,
                 int32_t* acc_out, const GemmTileOut* out) {
  __m256i acc[2 * R];
#pragma GCC unroll 12
  for (int j = 0; j < 2 * R; ++j) {
    acc[j] =
        acc_in != nullptr ? load256(acc_in + kNr * (j / 2) + 8 * (j % 2)) : _mm256_setzero_si256();
  }
  for (size_t q = 0; q < kgroups; ++q) {
    const __m256i b0 = load256(b), b1 = load256(b + 32);
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
      const __m256i av = _mm256_set1_epi32(load32(a + kKr * i));
      acc[2 * i] = lowp_dpbusd_ymm(acc[2 * i], av, b0);
      acc[2 * i + 1] = lowp_dpbusd_ymm(acc[2 * i + 1], av, b1);
    }
    a += kKr * kMr;
    b += kKr * kNr;
  }
  if (acc_out != nullptr) {
#pragma GCC unroll 12
    for (int j = 0; j < 2 * R; ++j) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc_out + kNr * (j / 2) + 8 * (j % 2)),
                          acc[j]);
    }
    return;
  }
  // A copy: the accumulators' address is never taken, or GCC keeps them in
  // memory through the loop.
  __m256i v[2 * R];
#pragma GCC unroll 12
  for (int j = 0; j < 2 * R; ++j) v[j] = acc[j];
  finish_tile<R>(v, *out);
}

// kgroups groups of 4 k values of a packed A micro-panel times one B panel;
// acc_in / acc_out: partial sums of other K blocks (row-major, stride 16).
void gemm_u8_6x16c4_avxvnni(size_t kgroups, const void* a_packed, const uint8_t* b_packed,
                            const int32_t* acc_in, int32_t* acc_out, const GemmTileOut* out) {
  const uint8_t* a = static_cast<const uint8_t*>(a_packed);
  switch (out != nullptr ? out->rows : kMr) {
    case 1:
      return tile_6x16c4<1>(kgroups, a, b_packed, acc_in, acc_out, out);
    case 2:
      return tile_6x16c4<2>(kgroups, a, b_packed, acc_in, acc_out, out);
    case 3:
      return tile_6x16c4<3>(kgroups, a, b_packed, acc_in, acc_out, out);
    case 4:
      return tile_6x16c4<4>(kgroups, a, b_packed, acc_in, acc_out, out);
    case 5:
      return tile_6x16c4<5>(kgroups, a, b_packed, acc_in, acc_out, out);
    default:
      return tile_6x16c4<6>(kgroups, a, b_packed, acc_in, acc_out, out);
  }
}

// ---------------------------------------------------------------------------
// GEMV (M = 1): the row of A is read unpacked, 4 bytes broadcast per k group
// (vpdpbusd takes A's bytes as they are, so no pack and no buffer), and
// serves kPanels B panels; the accumulators stay in registers across K
// blocks, B comes straight from memory as vpdpbusd's signed operand.

// The last, partial k group of the row (n = 1..3 bytes, the rest zero), read
// byte by byte so that nothing past a + k is touched.
inline int32_t tail_group(const uint8_t* a, size_t n) {
  uint32_t v = 0;
  for (size_t j = 0; j < n; ++j) v |= static_cast<uint32_t>(a[j]) << (8 * j);
  return static_cast<int32_t>(v);
}

template <int kPanels>
void gemv_panels(const uint8_t* a, size_t k, const GemvB& b, size_t p, __m256i* acc) {
#pragma GCC unroll 8
  for (int j = 0; j < 2 * kPanels; ++j) acc[j] = _mm256_setzero_si256();
  for (size_t k0 = 0; k0 < b.k_padded; k0 += b.kc) {
    const size_t kb = std::min(b.kc, b.k_padded - k0);
    const uint8_t* base = b.data + k0 * b.panels * kNr + p * kb * kNr;
    const uint8_t* ak = a + k0;
    const size_t left = k > k0 ? std::min(kb, k - k0) : 0;  // valid k values in the block
    const size_t whole = left / kKr;
    auto group = [&](size_t q, int32_t av32) {
      const __m256i av = _mm256_set1_epi32(av32);
      const uint8_t* bq = base + kKr * kNr * q;
#pragma GCC unroll 8
      for (int j = 0; j < 2 * kPanels; ++j) {
        acc[j] = lowp_dpbusd_ymm(acc[j], av, load256(bq + (j / 2) * kb * kNr + 32 * (j % 2)));
      }
    };
    for (size_t q = 0; q < whole; ++q) group(q, load32(ak + kKr * q));
    if (left % kKr != 0) group(whole, tail_group(ak + kKr * whole, left % kKr));
  }
}

// Sum of a row's k bytes.
inline int32_t row_sum(const uint8_t* a, size_t k) {
  __m256i s = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 32 <= k; i += 32)
    s = _mm256_add_epi64(s, _mm256_sad_epu8(load256(a + i), _mm256_setzero_si256()));
  const __m128i h = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  uint32_t sum =
      static_cast<uint32_t>(_mm_cvtsi128_si32(h) + _mm_cvtsi128_si32(_mm_unpackhi_epi64(h, h)));
  for (; i < k; ++i) sum += a[i];
  return static_cast<int32_t>(sum);
}

// gemv_u8_1x64c4_avxvnni: four 16-column panels per broadcast A group, each
// finished through the tile output stage.
void gemv_u8_1x64c4_avxvnni(const uint8_t* a, size_t k, const GemvB& b, size_t p0, size_t p1,
                            const GemmTileOut* out) {
  const int32_t rowsum = row_sum(a, k);
  const size_t c_elem = out->requant != nullptr ? 1 : sizeof(int32_t);
  for (size_t p = p0; p < p1; p += 4) {
    const size_t np = std::min<size_t>(4, p1 - p);
    __m256i acc[8];
    switch (np) {
      case 4:
        gemv_panels<4>(a, k, b, p, acc);
        break;
      case 3:
        gemv_panels<3>(a, k, b, p, acc);
        break;
      case 2:
        gemv_panels<2>(a, k, b, p, acc);
        break;
      default:
        gemv_panels<1>(a, k, b, p, acc);
        break;
    }
    for (size_t j = 0; j < np; ++j) {
      const size_t col = (p - p0 + j) * kNr;
      GemmTileOut t = *out;
      t.rows = 1;
      t.cols = std::min(kNr, out->cols - col);
      t.rowsum = &rowsum;
      t.col_offset += col;
      t.b_zero_point += col;
      t.requant_column += col;
      t.c = static_cast<uint8_t*>(out->c) + col * c_elem;
      finish_tile<1>(acc + 2 * j, t);
    }
  }
}

}  // namespace

const GemmKernel& avx_vnni_gemm_kernel() {
  static const GemmKernel kernel = {LOWP_PATH_NAME("gemm_u8_6x16c4_avxvnni"),
                                    kMr,
                                    kNr,
                                    kKr,
                                    kMr,   // a_bytes_per_k: 24 bytes per group of 4
                                    1152,  // kc: a 1152 x 16 B panel (18 KiB) stays in L1
                                    0x80,  // b_flip: B stored as int8 B - 128
                                    pack_a_6x4_avxvnni,
                                    gemm_u8_6x16c4_avxvnni,
                                    gemv_u8_1x64c4_avxvnni};
  return kernel;
}

}  // namespace LOWP_ISA_NS
}  // namespace lowp
