// AVX-512 elementwise kernels: requant_q31_u8_64x_avx512 (requantize, 64
// elements and one 64-byte store per step), mulquant_q31_s32_16x_avx512 and
// quantize_f32_u8_64x_avx512. The arithmetic is fixedpoint_avx512.h's, bit-
// identical to the scalar definitions for every input; what this file adds is
// the memory side.
//
// Channels: element i meets entry i % period of the ChannelParams tables. A
// vector of 16 elements starting at channel c reads the tables at c when
// c + 16 <= period; the vectors that cross the end of a period read a small
// copy of the tables' last 16 and first 16 entries (`wrap`, built once per
// call), so a period that is not a multiple of 16 (72, 100, ...) still runs
// whole vectors instead of a scalar tail per row. A period of 2..15 never
// comes from the driver (it widens them to >= 64) and takes the scalar path.
//
// Stores: an output that is read once and written once is bound by DRAM, and
// an ordinary store first reads the line it writes (read-for-ownership), one
// extra byte of traffic per 4 + 1. Above kStreamMin elements the 64-byte
// blocks of an output aligned to 64 bytes go out as non-temporal stores
// (vmovntdq), which skip that read; an sfence at the end orders them before
// whatever the caller does next. Short arrays keep ordinary stores (and stay
// in cache for the next layer). The values stored are the same either way.
//
// The partial vector at the end of an array is computed in a zero-padded
// copy on the stack, never by reading past the input or writing past the
// output. Forward order, and every vector read before it is written, so
// mulquant may run in place (out == x).
#include <cstring>

#include "../fixedpoint_scalar.h"
#include "../kernels.h"
#include "../x86/intrin.h"
#include "fixedpoint_avx512.h"
#include "kernels_avx512_vnni.h"

namespace lowp {
namespace LOWP_ISA_NS {
namespace {

using avx512::MulQuantLanes16;

// Elements (per call, i.e. per task of the driver) from which stores bypass
// the cache: 1 MiB of uint8 output, 4 MiB of input.
constexpr size_t kStreamMin = size_t{1} << 20;

inline __m512i load16(const int32_t* p) { return _mm512_loadu_si512(static_cast<const void*>(p)); }

// A 64-byte store to a 64-byte aligned address, non-temporal where the build
// has it (SIMDe 0.7 has no _mm512_stream_si512; its build stores normally).
inline void stream64(void* p, __m512i v) {
#if defined(LOWP_SIMDE)
  _mm512_storeu_si512(p, v);
#else
  _mm512_stream_si512(static_cast<__m512i*>(p), v);
#endif
}

// The lanes of 16 consecutive elements, walking through the channels: a
// small value that the loops copy into locals (a walk reached through a
// reference would be reloaded after every byte store, which may alias it).
// kPerTensor: one set of lanes for every element.
template <bool kPerTensor>
class ChannelWalk;

template <>
class ChannelWalk<true> {
 public:
  explicit ChannelWalk(const ChannelParams& ch)
      : lanes_(avx512::broadcast_lanes16(ch.multiplier[0], ch.shift[0])) {}
  const MulQuantLanes16& peek() const { return lanes_; }
  const MulQuantLanes16& next() { return lanes_; }
  void skip(size_t) {}

 private:
  MulQuantLanes16 lanes_;
};

// The entries period - 16 .. period + 15 (mod period) of the tables, for
// the vectors that cross the end of a period. Requires period >= 16.
struct WrapTables {
  static constexpr size_t kTables = 5;  // multiplier, left, right, round_mask, round_half
  int32_t entries[kTables][32];
  explicit WrapTables(const ChannelParams& ch) {
    const int32_t* tables[kTables] = {ch.multiplier, ch.left, ch.right, ch.round_mask,
                                      ch.round_half};
    for (size_t t = 0; t < kTables; ++t) {
      std::memcpy(entries[t], tables[t] + ch.period - 16, 16 * sizeof(int32_t));
      std::memcpy(entries[t] + 16, tables[t], 16 * sizeof(int32_t));
    }
  }
};

template <>
class ChannelWalk<false> {
 public:
  ChannelWalk(const ChannelParams& ch, const WrapTables& wrap)
      : m_(ch.multiplier),
        left_(ch.left),
        right_(ch.right),
        mask_(ch.round_mask),
        half_(ch.round_half),
        wrap_(&wrap),
        period_(ch.period) {}

  // Lanes of channels c, c + 1, ..., c + 15 (mod period).
  MulQuantLanes16 peek() const {
    if (c_ + 16 <= period_) return lanes(m_ + c_, left_ + c_, right_ + c_, mask_ + c_, half_ + c_);
    const size_t w = c_ - (period_ - 16);
    const auto& e = wrap_->entries;
    return lanes(e[0] + w, e[1] + w, e[2] + w, e[3] + w, e[4] + w);
  }

  // peek(), then c += 16.
  MulQuantLanes16 next() {
    const MulQuantLanes16 l = peek();
    skip(16);
    return l;
  }

  void skip(size_t count) {  // count <= 16 <= period
    c_ += count;
    if (c_ >= period_) c_ -= period_;
  }

 private:
  static MulQuantLanes16 lanes(const int32_t* m, const int32_t* left, const int32_t* right,
                               const int32_t* mask, const int32_t* half) {
    const __m512i mv = load16(m);
    return {mv, _mm512_srli_epi64(mv, 32), load16(left), load16(right), load16(mask), load16(half)};
  }

  const int32_t *m_, *left_, *right_, *mask_, *half_;
  const WrapTables* wrap_;
  size_t period_, c_ = 0;
};

// The walk of a call: per tensor, or per channel with its wrap tables.
template <bool kPerTensor>
struct Walker;

template <>
struct Walker<true> {
  ChannelWalk<true> walk;
  explicit Walker(const ChannelParams& ch) : walk(ch) {}
};

template <>
struct Walker<false> {
  WrapTables wrap;
  ChannelWalk<false> walk;
  explicit Walker(const ChannelParams& ch) : wrap(ch), walk(ch, wrap) {}
};

// ---------------------------------------------------------------------------
// requantize

template <bool kPerTensor, bool kLeft, bool kRight, bool kStream>
ChannelWalk<kPerTensor> requant_span(const int32_t* acc, size_t len, ChannelWalk<kPerTensor> walk,
                                     const avx512::OutputClamp16 clamp, uint8_t* out) {
  size_t i = 0;
  for (; i + 64 <= len; i += 64) {
    const __m512i a = avx512::mulquant<kLeft, kRight>(load16(acc + i), walk.next());
    const __m512i b = avx512::mulquant<kLeft, kRight>(load16(acc + i + 16), walk.next());
    const __m512i c = avx512::mulquant<kLeft, kRight>(load16(acc + i + 32), walk.next());
    const __m512i d = avx512::mulquant<kLeft, kRight>(load16(acc + i + 48), walk.next());
    if (kStream) {
      stream64(out + i, clamp(a, b, c, d));
    } else {
      _mm512_storeu_si512(out + i, clamp(a, b, c, d));
    }
  }
  for (; i + 16 <= len; i += 16) {
    const __m512i v = avx512::mulquant<kLeft, kRight>(load16(acc + i), walk.next());
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), clamp(v));
  }
  if (i < len) {
    const size_t rest = len - i;
    alignas(64) int32_t in[16] = {0};
    alignas(16) uint8_t bytes[16];
    std::memcpy(in, acc + i, rest * sizeof(int32_t));
    const __m512i v = avx512::mulquant<kLeft, kRight>(load16(in), walk.peek());
    _mm_store_si128(reinterpret_cast<__m128i*>(bytes), clamp(v));
    std::memcpy(out + i, bytes, rest);
    walk.skip(rest);
  }
  return walk;
}

template <bool kPerTensor, bool kLeft, bool kRight>
void requant_walk(const int32_t* acc, size_t n, const ChannelParams& ch, int32_t zero_point,
                  int32_t qmin, int32_t qmax, uint8_t* out) {
  const Walker<kPerTensor> walker(ch);
  const avx512::OutputClamp16 clamp(zero_point, qmin, qmax);
  if (n < kStreamMin) {
    requant_span<kPerTensor, kLeft, kRight, false>(acc, n, walker.walk, clamp, out);
    return;
  }
  // Up to the first 64-byte boundary of the output, then aligned blocks.
  const size_t head = (64 - reinterpret_cast<uintptr_t>(out) % 64) % 64;
  const ChannelWalk<kPerTensor> walk =
      requant_span<kPerTensor, kLeft, kRight, false>(acc, head, walker.walk, clamp, out);
  requant_span<kPerTensor, kLeft, kRight, true>(acc + head, n - head, walk, clamp, out + head);
  _mm_sfence();
}

template <bool kLeft, bool kRight>
void requant_dispatch(const int32_t* acc, size_t n, const ChannelParams& ch, int32_t zero_point,
                      int32_t qmin, int32_t qmax, uint8_t* out) {
  if (ch.period == 1) {
    requant_walk<true, kLeft, kRight>(acc, n, ch, zero_point, qmin, qmax, out);
  } else {
    requant_walk<false, kLeft, kRight>(acc, n, ch, zero_point, qmin, qmax, out);
  }
}

}  // namespace

void requant_q31_u8_64x_avx512(const int32_t* acc, size_t n, const ChannelParams& ch,
                               int32_t zero_point, int32_t qmin, int32_t qmax, uint8_t* out) {
  if (ch.period > 1 && ch.period < 16) {  // not from the driver, which widens short periods
    size_t c = 0;
    for (size_t i = 0; i < n; ++i) {
      out[i] =
          fixedpoint::requantize_one(acc[i], ch.multiplier[c], ch.shift[c], zero_point, qmin, qmax);
      if (++c == ch.period) c = 0;
    }
    return;
  }
  if (ch.any_left && ch.any_right) {
    requant_dispatch<true, true>(acc, n, ch, zero_point, qmin, qmax, out);
  } else if (ch.any_left) {
    requant_dispatch<true, false>(acc, n, ch, zero_point, qmin, qmax, out);
  } else if (ch.any_right) {
    requant_dispatch<false, true>(acc, n, ch, zero_point, qmin, qmax, out);
  } else {
    requant_dispatch<false, false>(acc, n, ch, zero_point, qmin, qmax, out);
  }
}

namespace {

// ---------------------------------------------------------------------------
// multiply by quantized multiplier, int32 out

template <bool kPerTensor, bool kLeft, bool kRight, bool kStream>
ChannelWalk<kPerTensor> mulquant_span(const int32_t* x, size_t len, ChannelWalk<kPerTensor> walk,
                                      int32_t* out) {
  size_t i = 0;
  for (; i + 16 <= len; i += 16) {
    const __m512i v = avx512::mulquant<kLeft, kRight>(load16(x + i), walk.next());
    if (kStream) {
      stream64(out + i, v);
    } else {
      _mm512_storeu_si512(out + i, v);
    }
  }
  if (i < len) {
    const size_t rest = len - i;
    alignas(64) int32_t in[16] = {0};
    std::memcpy(in, x + i, rest * sizeof(int32_t));
    const __m512i v = avx512::mulquant<kLeft, kRight>(load16(in), walk.peek());
    _mm512_store_si512(in, v);
    std::memcpy(out + i, in, rest * sizeof(int32_t));
    walk.skip(rest);
  }
  return walk;
}

template <bool kPerTensor, bool kLeft, bool kRight>
void mulquant_walk(const int32_t* x, size_t n, const ChannelParams& ch, int32_t* out) {
  const Walker<kPerTensor> walker(ch);
  const uintptr_t address = reinterpret_cast<uintptr_t>(out);
  if (n < kStreamMin / 4 || address % 4 != 0) {
    mulquant_span<kPerTensor, kLeft, kRight, false>(x, n, walker.walk, out);
    return;
  }
  const size_t head = (64 - address % 64) % 64 / 4;
  const ChannelWalk<kPerTensor> walk =
      mulquant_span<kPerTensor, kLeft, kRight, false>(x, head, walker.walk, out);
  mulquant_span<kPerTensor, kLeft, kRight, true>(x + head, n - head, walk, out + head);
  _mm_sfence();
}

template <bool kLeft, bool kRight>
void mulquant_dispatch(const int32_t* x, size_t n, const ChannelParams& ch, int32_t* out) {
  if (ch.period == 1) {
    mulquant_walk<true, kLeft, kRight>(x, n, ch, out);
  } else {
    mulquant_walk<false, kLeft, kRight>(x, n, ch, out);
  }
}

}  // namespace

void mulquant_q31_s32_16x_avx512(const int32_t* x, size_t n, const ChannelParams& ch,
                                 int32_t* out) {
  if (ch.period > 1 && ch.period < 16) {
    size_t c = 0;
    for (size_t i = 0; i < n; ++i) {
      out[i] = fixedpoint::multiply_by_quantized_multiplier(x[i], ch.multiplier[c], ch.shift[c]);
      if (++c == ch.period) c = 0;
    }
    return;
  }
  if (ch.any_left && ch.any_right) {
    mulquant_dispatch<true, true>(x, n, ch, out);
  } else if (ch.any_left) {
    mulquant_dispatch<true, false>(x, n, ch, out);
  } else if (ch.any_right) {
    mulquant_dispatch<false, true>(x, n, ch, out);
  } else {
    mulquant_dispatch<false, false>(x, n, ch, out);
  }
}

namespace {

// ---------------------------------------------------------------------------
// float32 quantize
//
// q = roundscale(x / scale) rounds half to even (the immediate's mode, which
// is the default MXCSR mode std::nearbyint uses); a NaN lane is reported and
// replaced by 0, as the scalar kernel does; then + zero_point and the clamp,
// in that order (rounding after adding the zero point could differ). The
// clamped value is an integer in [0, 255], so adding 2^23 puts it in the low
// mantissa bits exactly: the float bits minus those of 2^23 are the integer
// (no float->int conversion needed, which SIMDe 0.7 lacks on zmm).

// _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC as roundscale's immediate
// (SIMDe 0.7 has no native alias of the second).
constexpr int kRoundNearestNoExc = 0x08;

struct QuantizeStage16 {
  __m512 scale, zero_point, lo, hi, magic;
  __m512i magic_bits;

  // *nan collects the lanes that were NaN.
  inline __m512i operator()(const float* x, uint32_t* nan) const {
    const __m512 q =
        _mm512_roundscale_ps(_mm512_div_ps(_mm512_loadu_ps(x), scale), kRoundNearestNoExc);
    const auto unordered = _mm512_cmp_ps_mask(q, q, _CMP_UNORD_Q);
    *nan |= unordered;
    const __m512 finite = _mm512_mask_blend_ps(unordered, q, _mm512_setzero_ps());
    const __m512 c = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(finite, zero_point), lo), hi);
    return _mm512_sub_epi32(_mm512_castps_si512(_mm512_add_ps(c, magic)), magic_bits);
  }
};

// Four vectors of values in [0, 255] -> 64 bytes in order.
inline __m512i pack_u8(__m512i a, __m512i b, __m512i c, __m512i d) {
  const __m512i ab = _mm512_packs_epi32(a, b);  // per 128-bit lane: a b words
  const __m512i cd = _mm512_packs_epi32(c, d);
  return _mm512_permutexvar_epi32(
      _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15),
      _mm512_packus_epi16(ab, cd));
}

}  // namespace

bool quantize_f32_u8_64x_avx512(const float* x, size_t n, float scale, float zero_point, float qmin,
                                float qmax, uint8_t flip, uint8_t* out) {
  const QuantizeStage16 stage = {_mm512_set1_ps(scale),      _mm512_set1_ps(zero_point),
                                 _mm512_set1_ps(qmin),       _mm512_set1_ps(qmax),
                                 _mm512_set1_ps(8388608.0f), _mm512_set1_epi32(0x4B000000)};
  const __m512i flip_bytes = _mm512_set1_epi8(static_cast<char>(flip));
  uint32_t nan = 0;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i a = stage(x + i, &nan), b = stage(x + i + 16, &nan);
    const __m512i c = stage(x + i + 32, &nan), d = stage(x + i + 48, &nan);
    _mm512_storeu_si512(out + i, _mm512_xor_si512(pack_u8(a, b, c, d), flip_bytes));
  }
  for (; i < n; i += 16) {
    const size_t rest = n - i < 16 ? n - i : 16;
    alignas(64) float in[16] = {0};
    alignas(16) uint8_t bytes[16];
    std::memcpy(in, x + i, rest * sizeof(float));
    const __m512i v = stage(in, &nan);
    _mm_store_si128(reinterpret_cast<__m128i*>(bytes),
                    _mm512_castsi512_si128(_mm512_xor_si512(pack_u8(v, v, v, v), flip_bytes)));
    std::memcpy(out + i, bytes, rest);
  }
  return nan == 0;
}

}  // namespace LOWP_ISA_NS
}  // namespace lowp
