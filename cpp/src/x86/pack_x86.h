// A-packing helpers shared by the x86 GEMM kernels (avx2, avx_vnni,
// avx512_vnni and their SIMDe builds). Internal linkage: each includer
// compiles them with its own ISA's flags, and a shared external symbol would
// be one copy the linker picks (see cpp/src/avx2/fixedpoint_avx2.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "intrin.h"

namespace lowp {
namespace x86 {
namespace {

// kKeep + 32 - n: n bytes of 0xff, then zeros (n <= 32). kSlide + 16 - n: a
// shuffle moving bytes 16 - n .. 15 down to 0 .. n - 1 and zeroing the rest.
alignas(32) const uint8_t kKeep[64] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
alignas(16) const uint8_t kSlide[32] = {
    0,    1,    2,    3,    4,    5,    6,    7,    8,    9,    10,   11,   12,   13,   14,   15,
    0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80};

// Prefetches the 64-byte line at byte k of each of the kRows rows of the
// micro-panel after the one at `a` (row stride lda): the packs call it once
// per 64 bytes of K, so that A's next panel is in cache when they get there.
// A prefetch is only a hint, and the address is formed as an integer: past
// the end of A it neither faults nor reads, nor forms an out-of-range pointer.
template <size_t kRows>
inline void prefetch_next_panel(const uint8_t* a, size_t lda, size_t k) {
  const uintptr_t next = reinterpret_cast<uintptr_t>(a) + kRows * lda + k;
#pragma GCC unroll 12
  for (size_t i = 0; i < kRows; ++i)
    _mm_prefetch(reinterpret_cast<const char*>(next + i * lda), _MM_HINT_T0);
}

inline __m128i keep_first(size_t n) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(kKeep + 32 - n));
}
inline __m128i slide_down(size_t n) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(kSlide + 16 - n));
}

// Bytes k .. k_valid - 1 of a row (1..15 of them) followed by zeros,
// reading only the `readable` bytes from the row's start (its own and, where
// lda is small or rows overlap, the rows after it). A byte-wise copy to the
// stack and a 16-byte load back would stall on store forwarding once per row
// of every micro-panel: the whole cost of packing when K is as small as a
// first conv layer's 27.
inline __m128i load_tail16(const uint8_t* row, size_t k, size_t k_valid, size_t readable) {
  const size_t n = k_valid - k;
  if (k + 16 <= readable) {  // read on into the next rows, keep the first n
    return _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + k)), keep_first(n));
  }
  if (k_valid >= 16) {  // the 16 bytes ending at k_valid, moved down by 16 - n
    return _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + k_valid - 16)),
                            slide_down(n));
  }
  uint64_t lo = 0, hi = 0;  // a short row at the very end: byte by byte, in registers
  for (size_t j = 0; j < n; ++j) {
    const uint64_t v = static_cast<uint64_t>(row[k + j]) << (8 * (j & 7));
    if (j < 8) {
      lo |= v;
    } else {
      hi |= v;
    }
  }
  return _mm_set_epi64x(static_cast<long long>(hi), static_cast<long long>(lo));
}

// The same for 1..31 bytes as 32.
inline __m256i load_tail32(const uint8_t* row, size_t k, size_t k_valid, size_t readable) {
  const size_t n = k_valid - k;
  if (k + 32 <= readable) {
    const __m256i keep = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kKeep + 32 - n));
    return _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + k)), keep);
  }
  const __m256i zero = _mm256_setzero_si256();
  if (n < 16) return _mm256_inserti128_si256(zero, load_tail16(row, k, k_valid, readable), 0);
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + k));
  const __m128i hi = n == 16 ? _mm_setzero_si128() : load_tail16(row, k + 16, k_valid, readable);
  return _mm256_inserti128_si256(_mm256_inserti128_si256(zero, lo, 0), hi, 1);
}

// Transposes 6 rows of 8 dwords (r[i] dword j: group j of row i) to 8
// groups of 6 rows (+ 2 zero dwords): group j's 6 dwords in the first 24
// bytes of out[j]. (A k-pair of int16 values or a quad of bytes: a dword.)
inline void transpose_6x8(const __m256i r[6], __m256i out[8]) {
  const __m256i zero = _mm256_setzero_si256();
  const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
  const __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
  const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
  const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
  const __m256i w0 = _mm256_unpacklo_epi64(t4, zero), w1 = _mm256_unpackhi_epi64(t4, zero);
  const __m256i w2 = _mm256_unpacklo_epi64(t5, zero), w3 = _mm256_unpackhi_epi64(t5, zero);
  out[0] = _mm256_permute2x128_si256(u0, w0, 0x20);
  out[1] = _mm256_permute2x128_si256(u1, w1, 0x20);
  out[2] = _mm256_permute2x128_si256(u2, w2, 0x20);
  out[3] = _mm256_permute2x128_si256(u3, w3, 0x20);
  out[4] = _mm256_permute2x128_si256(u0, w0, 0x31);
  out[5] = _mm256_permute2x128_si256(u1, w1, 0x31);
  out[6] = _mm256_permute2x128_si256(u2, w2, 0x31);
  out[7] = _mm256_permute2x128_si256(u3, w3, 0x31);
}

}  // namespace
}  // namespace x86
}  // namespace lowp
