// The graph's data-movement and elementwise kernels (graph_kernels.h).
//
// Portable C++ on purpose: this file is built without ISA flags and runs on
// every path, so its loops are written for the compiler's auto-vectoriser at
// the baseline (SSE2, NEON): byte max over channels, widening sums, memcpy
// of contiguous runs. Table lookups stay scalar loads, which are already one
// load per byte.
//
// Threads: work above kParallelBytes is split over lowp::parallel_for. Every
// element is computed by the same arithmetic whichever task computes it, so
// the split never changes a result; smaller calls never wake the pool. The
// strided walks rely on what the plan gives them: an output never names one
// element twice (no stride 0 where it has more than one index) and overlaps
// no input, except a copy or lookup exactly in place (same address, same
// strides), which reads each element before writing it.
#include "graph_kernels.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "../copy_bytes.h"
#include "../kernels.h"
#include "lowp/lowp.h"

namespace lowp {
namespace graph {
namespace {

// --- splitting work over threads -------------------------------------------

constexpr size_t kParallelBytes = 256 * 1024;  // below this one thread is faster
constexpr size_t kTaskBytes = 64 * 1024;       // the work of one task, roughly
constexpr size_t kMaxTasks = 256;

// Runs fn(begin, end) over [0, n) in contiguous ranges; `work` estimates the
// bytes the whole call touches.
template <typename Fn>
void for_ranges(size_t n, size_t work, const Fn& fn) {
  if (n == 0) return;
  if (n == 1 || work <= kParallelBytes || num_threads() <= 1) {
    fn(size_t(0), n);
    return;
  }
  struct Ctx {
    const Fn* fn;
    size_t n, tasks;
  };
  Ctx ctx = {&fn, n, std::min({n, work / kTaskBytes, kMaxTasks})};
  parallel_for(
      ctx.tasks,
      [](void* p, size_t t) {
        const Ctx& c = *static_cast<const Ctx*>(p);
        (*c.fn)(t * c.n / c.tasks, (t + 1) * c.n / c.tasks);
      },
      &ctx, work * kElementWork);
}

// --- strided N-d walks -------------------------------------------------------

// A walk over the indices of `shape` for kOps operands, each with its own
// element strides. simplify() only drops dimensions of size 1 and merges a
// dimension into the next inner one where every operand's strides make the
// pair one run (outer stride == inner stride * inner size): the walk then
// visits the same (offset, offset, ...) tuples in the same order, so even an
// operand written through a broadcast stride ends with the same bytes.
template <int kOps>
struct Walk {
  size_t rank = 0;
  size_t shape[kMaxRank] = {};
  ptrdiff_t stride[kOps][kMaxRank] = {};
  size_t elements = 1;
};

// False if the shape has no elements.
template <int kOps>
bool simplify(const size_t* shape, size_t rank, const ptrdiff_t* const* strides, Walk<kOps>* w) {
  for (size_t d = 0; d < rank; ++d) {
    if (shape[d] == 0) return false;
    w->elements *= shape[d];
    if (shape[d] == 1) continue;
    bool merge = w->rank > 0;
    for (int k = 0; k < kOps && merge; ++k) {
      merge = w->stride[k][w->rank - 1] == strides[k][d] * static_cast<ptrdiff_t>(shape[d]);
    }
    if (merge) {
      w->shape[w->rank - 1] *= shape[d];
      for (int k = 0; k < kOps; ++k) w->stride[k][w->rank - 1] = strides[k][d];
    } else {
      w->shape[w->rank] = shape[d];
      for (int k = 0; k < kOps; ++k) w->stride[k][w->rank] = strides[k][d];
      ++w->rank;
    }
  }
  if (w->rank == 0) {  // a single element
    w->shape[0] = 1;
    for (int k = 0; k < kOps; ++k) w->stride[k][0] = 0;
    w->rank = 1;
  }
  return true;
}

// The innermost dimension cut into `chunks` pieces of `chunk` elements (the
// last one shorter), so that a walk with few outer rows still splits over
// threads. Item i of the walk is piece i % chunks of outer row i / chunks.
struct Pieces {
  size_t rows, chunks, chunk;
};

Pieces cut(size_t rows, size_t inner, size_t work) {
  Pieces p = {rows, 1, inner};
  if (work <= kParallelBytes) return p;
  const size_t wanted = std::min(work / kTaskBytes, kMaxTasks);
  if (rows >= wanted) return p;
  const size_t per_row = (wanted + rows - 1) / rows;
  size_t chunk = (inner + per_row - 1) / per_row;
  chunk = std::min(inner, (chunk + 63) / 64 * 64);  // no tiny pieces
  p.chunk = chunk;
  p.chunks = (inner + chunk - 1) / chunk;
  return p;
}

// Calls row(offsets, n) for items [begin, end): offsets[k] is operand k's
// element offset of the piece's first element, n its length; the innermost
// strides are the caller's to apply. Offsets are integers rather than
// pointers, so no out-of-range pointer is ever formed on the way.
template <int kOps, typename Row>
void walk_items(const Walk<kOps>& w, const Pieces& p, size_t begin, size_t end, const Row& row) {
  const size_t inner = w.rank - 1;
  const size_t n = w.shape[inner];
  size_t idx[kMaxRank] = {};
  ptrdiff_t off[kOps] = {};
  size_t r = begin / p.chunks, piece = begin % p.chunks;
  for (size_t d = inner; d-- > 0;) {
    idx[d] = r % w.shape[d];
    r /= w.shape[d];
    for (int k = 0; k < kOps; ++k) off[k] += static_cast<ptrdiff_t>(idx[d]) * w.stride[k][d];
  }
  for (size_t item = begin; item < end; ++item) {
    const size_t lo = piece * p.chunk;
    ptrdiff_t at[kOps];
    for (int k = 0; k < kOps; ++k) at[k] = off[k] + static_cast<ptrdiff_t>(lo) * w.stride[k][inner];
    row(at, std::min(p.chunk, n - lo));
    if (++piece < p.chunks) continue;
    piece = 0;
    for (size_t d = inner; d-- > 0;) {  // the odometer over the outer dimensions
      for (int k = 0; k < kOps; ++k) off[k] += w.stride[k][d];
      if (++idx[d] < w.shape[d]) break;
      for (int k = 0; k < kOps; ++k) off[k] -= w.stride[k][d] * static_cast<ptrdiff_t>(w.shape[d]);
      idx[d] = 0;
    }
  }
}

// Runs a walk, split over threads when `bytes_per_element` * its size is
// large.
template <int kOps, typename Row>
void run_walk(const Walk<kOps>& w, size_t bytes_per_element, const Row& row) {
  const size_t inner = w.shape[w.rank - 1];
  const size_t work = w.elements * bytes_per_element;
  const Pieces p = cut(w.elements / inner, inner, work);
  for_ranges(p.rows * p.chunks, work,
             [&](size_t begin, size_t end) { walk_items(w, p, begin, end, row); });
}

// One strided row of whole elements of kBytes bytes (0: `bytes`, given at
// run time). The fixed sizes turn each memcpy into one load and one store.
template <size_t kBytes>
void copy_row(const uint8_t* src, ptrdiff_t ss, uint8_t* dst, ptrdiff_t ds, size_t n,
              size_t bytes) {
  const size_t e = kBytes != 0 ? kBytes : bytes;
  if (ss == 1 && ds == 1) {
    copy_bytes(dst, src, n * e);
    return;
  }
  if (e == 1 && ss == 0 && ds == 1) {
    std::memset(dst, *src, n);
    return;
  }
  const ptrdiff_t sb = ss * static_cast<ptrdiff_t>(e), db = ds * static_cast<ptrdiff_t>(e);
  for (size_t j = 0; j < n; ++j) {
    std::memcpy(dst + static_cast<ptrdiff_t>(j) * db, src + static_cast<ptrdiff_t>(j) * sb, e);
  }
}

template <size_t kBytes>
void copy_walk(const Walk<2>& w, const uint8_t* src, uint8_t* dst, size_t bytes) {
  const ptrdiff_t ss = w.stride[0][w.rank - 1], ds = w.stride[1][w.rank - 1];
  const ptrdiff_t e = static_cast<ptrdiff_t>(bytes);
  run_walk(w, 2 * bytes, [&](const ptrdiff_t* at, size_t n) {
    copy_row<kBytes>(src + at[0] * e, ss, dst + at[1] * e, ds, n, bytes);
  });
}

// Short contiguous rows (a concatenation of few channels: a 16-byte pixel
// into a 32-byte one) are copied as whole rows, one fixed-size memcpy each,
// walking the outer dimensions in bytes: per element they would pay the
// walk's per-row cost for a few bytes.
constexpr size_t kShortRow = 128;

template <size_t kRow>
void copy_rows(const uint8_t* src, ptrdiff_t ss, uint8_t* dst, ptrdiff_t ds, size_t n, size_t row) {
  const size_t r = kRow != 0 ? kRow : row;
  for (size_t j = 0; j < n; ++j) {
    std::memcpy(dst + static_cast<ptrdiff_t>(j) * ds, src + static_cast<ptrdiff_t>(j) * ss, r);
  }
}

void copy_short_rows(const Walk<2>& w, const uint8_t* src, uint8_t* dst, size_t elem,
                     size_t row_bytes) {
  Walk<2> rows;  // the outer dimensions, strides in bytes
  rows.rank = w.rank - 1;
  rows.elements = w.elements / w.shape[w.rank - 1];
  for (size_t d = 0; d < rows.rank; ++d) {
    rows.shape[d] = w.shape[d];
    for (int k = 0; k < 2; ++k) rows.stride[k][d] = w.stride[k][d] * static_cast<ptrdiff_t>(elem);
  }
  const ptrdiff_t ss = rows.stride[0][rows.rank - 1], ds = rows.stride[1][rows.rank - 1];
  run_walk(rows, 2 * row_bytes, [&](const ptrdiff_t* at, size_t n) {
    const uint8_t* s = src + at[0];
    uint8_t* d = dst + at[1];
    switch (row_bytes) {
      case 8:
        return copy_rows<8>(s, ss, d, ds, n, 8);
      case 16:
        return copy_rows<16>(s, ss, d, ds, n, 16);
      case 32:
        return copy_rows<32>(s, ss, d, ds, n, 32);
      case 64:
        return copy_rows<64>(s, ss, d, ds, n, 64);
      default:
        return copy_rows<0>(s, ss, d, ds, n, row_bytes);
    }
  });
}

void lut_row(const uint8_t* src, ptrdiff_t ss, uint8_t* dst, ptrdiff_t ds, size_t n,
             const uint8_t* lut) {
  if (ss == 1 && ds == 1) {
    for (size_t j = 0; j < n; ++j) dst[j] = lut[src[j]];
  } else if (ss == 0 && ds == 1) {
    std::memset(dst, lut[*src], n);
  } else {
    for (size_t j = 0; j < n; ++j) {
      const ptrdiff_t i = static_cast<ptrdiff_t>(j);
      dst[i * ds] = lut[src[i * ss]];
    }
  }
}

void binary_row(const uint8_t* a, ptrdiff_t sa, const uint8_t* b, ptrdiff_t sb, uint8_t* dst,
                ptrdiff_t ds, size_t n, const uint8_t* lut) {
  if (ds == 1 && sa == 1 && sb == 1) {
    for (size_t j = 0; j < n; ++j) dst[j] = lut[size_t(a[j]) * 256 + b[j]];
  } else if (ds == 1 && sa == 1 && sb == 0) {
    const uint8_t* column = lut + *b;  // lut[a * 256 + b] for the one b
    for (size_t j = 0; j < n; ++j) dst[j] = column[size_t(a[j]) * 256];
  } else if (ds == 1 && sa == 0 && sb == 1) {
    const uint8_t* table = lut + size_t(*a) * 256;  // the one a's row of the table
    for (size_t j = 0; j < n; ++j) dst[j] = table[b[j]];
  } else if (ds == 1 && sa == 0 && sb == 0) {
    std::memset(dst, lut[size_t(*a) * 256 + *b], n);
  } else {
    for (size_t j = 0; j < n; ++j) {
      const ptrdiff_t i = static_cast<ptrdiff_t>(j);
      dst[i * ds] = lut[size_t(a[i * sa]) * 256 + b[i * sb]];
    }
  }
}

// --- pooling -------------------------------------------------------------------

// [lo, hi): the input positions of output position o's window along one axis.
struct Span {
  size_t lo, hi;
};

Span clip(size_t o, size_t stride, size_t pad, size_t k, size_t in) {
  const ptrdiff_t start = static_cast<ptrdiff_t>(o * stride) - static_cast<ptrdiff_t>(pad);
  const ptrdiff_t end = start + static_cast<ptrdiff_t>(k);
  const ptrdiff_t lo = std::max<ptrdiff_t>(start, 0);
  const ptrdiff_t hi = std::min<ptrdiff_t>(end, static_cast<ptrdiff_t>(in));
  return {static_cast<size_t>(lo), static_cast<size_t>(std::max(hi, lo))};
}

// Channels are reduced in blocks held in a local array, which the compiler
// knows aliases nothing, so the per-position loops vectorise.
constexpr size_t kMaxBlock = 512;
constexpr size_t kSumBlock = 256;

// Calls pixel(window_first_pixel, rows, cols, out_pixel) for every output
// pixel, with the window clipped to `rows` input rows of `cols` pixels.
// Split over threads by output rows.
template <typename Pixel>
void for_each_window(const uint8_t* x, const PoolShape& s, uint8_t* out, const Pixel& pixel) {
  const size_t rows = s.batch * s.out_h;
  // The call's work: every output pixel reads its clipped window, at most
  // min(kernel, input) positions along each axis.
  const size_t window = std::min(s.kh, s.in_h) * std::min(s.kw, s.in_w);
  const size_t work = rows * s.out_w * (window + 1) * s.channels;
  for_ranges(rows, work, [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r) {
      const size_t n = r / s.out_h, oy = r % s.out_h;
      const Span ys = clip(oy, s.stride_h, s.pad_top, s.kh, s.in_h);
      const uint8_t* image = x + n * s.in_h * s.in_w * s.channels;
      uint8_t* out_row = out + r * s.out_w * s.out_stride;
      for (size_t ox = 0; ox < s.out_w; ++ox) {
        const Span xs = clip(ox, s.stride_w, s.pad_left, s.kw, s.in_w);
        pixel(image + (ys.lo * s.in_w + xs.lo) * s.channels, ys.hi - ys.lo, xs.hi - xs.lo,
              out_row + ox * s.out_stride);
      }
    }
  });
}

// One output pixel of each pool: `rows` window rows of `cols` pixels of `c`
// channels, from `first`, rows `row_step` bytes apart. Plain functions of
// values, so that nothing the loops store to can alias what they read.
void max_pixel(const uint8_t* first, size_t row_step, size_t rows, size_t cols, size_t c,
               uint8_t qmin, uint8_t qmax, uint8_t* out) {
  if (c == 1) {  // the window's rows are contiguous runs
    uint8_t m = qmin;
    for (size_t y = 0; y < rows; ++y) {
      const uint8_t* p = first + y * row_step;
      for (size_t i = 0; i < cols; ++i) m = p[i] > m ? p[i] : m;
    }
    out[0] = m < qmax ? m : qmax;
    return;
  }
  uint8_t m[kMaxBlock];
  for (size_t c0 = 0; c0 < c; c0 += kMaxBlock) {
    const size_t cb = std::min(kMaxBlock, c - c0);
    // Starting from qmin applies the lower clamp: a max only moves up.
    for (size_t j = 0; j < cb; ++j) m[j] = qmin;
    for (size_t y = 0; y < rows; ++y) {
      const uint8_t* p = first + y * row_step + c0;
      for (size_t i = 0; i < cols; ++i, p += c) {
        for (size_t j = 0; j < cb; ++j) m[j] = p[j] > m[j] ? p[j] : m[j];
      }
    }
    for (size_t j = 0; j < cb; ++j) out[c0 + j] = m[j] < qmax ? m[j] : qmax;
  }
}

// The average's rounding, sign(acc) * ((|acc| + count / 2) / count), is the
// header's two-sided formula, since C division truncates toward zero.
void avg_pixel(const uint8_t* first, size_t row_step, size_t rows, size_t cols, size_t c,
               int32_t offset, int32_t qmin, int32_t qmax, uint8_t* out) {
  const size_t count = rows * cols;
  // With count < 2^23 and 0 <= offset <= 255, every partial sum, acc and
  // |acc| + count / 2 lie below 2^31 in magnitude, and a double quotient of
  // integers below 2^53 truncates to their integer quotient (its rounding
  // error is below 1 / count): int32 sums and a double division, which
  // vectorise where an integer division would not.
  if (count < (size_t(1) << 23) && offset >= 0 && offset <= 255) {
    const int32_t n = static_cast<int32_t>(count);
    const int32_t bias = n * offset, half = n / 2;
    const double dn = n;
    int32_t acc[kSumBlock];
    for (size_t c0 = 0; c0 < c; c0 += kSumBlock) {
      const size_t cb = std::min(kSumBlock, c - c0);
      for (size_t j = 0; j < cb; ++j) acc[j] = -bias;
      for (size_t y = 0; y < rows; ++y) {
        const uint8_t* p = first + y * row_step + c0;
        if (c == 1) {  // a contiguous run
          int32_t sum = 0;
          for (size_t i = 0; i < cols; ++i) sum += p[i];
          acc[0] += sum;
          continue;
        }
        for (size_t i = 0; i < cols; ++i, p += c) {
          for (size_t j = 0; j < cb; ++j) acc[j] += p[j];
        }
      }
      for (size_t j = 0; j < cb; ++j) {
        const int32_t a = acc[j];
        const int32_t mag = static_cast<int32_t>(static_cast<double>((a < 0 ? -a : a) + half) / dn);
        int32_t v = (a < 0 ? -mag : mag) + offset;
        v = v < qmin ? qmin : v;
        v = v > qmax ? qmax : v;
        out[c0 + j] = static_cast<uint8_t>(v);
      }
    }
    return;
  }
  // Any offset, any window: int64 sums and integer division.
  const int64_t n = static_cast<int64_t>(count), half = n / 2;
  int64_t acc[kSumBlock];
  for (size_t c0 = 0; c0 < c; c0 += kSumBlock) {
    const size_t cb = std::min(kSumBlock, c - c0);
    for (size_t j = 0; j < cb; ++j) acc[j] = -n * offset;
    for (size_t y = 0; y < rows; ++y) {
      const uint8_t* p = first + y * row_step + c0;
      for (size_t i = 0; i < cols; ++i, p += c) {
        for (size_t j = 0; j < cb; ++j) acc[j] += p[j];
      }
    }
    for (size_t j = 0; j < cb; ++j) {
      const int64_t a = acc[j];
      const int64_t mag = ((a < 0 ? -a : a) + half) / n;
      int64_t v = (a < 0 ? -mag : mag) + offset;
      v = v < qmin ? qmin : v;
      v = v > qmax ? qmax : v;
      out[c0 + j] = static_cast<uint8_t>(v);
    }
  }
}

// 16 bytes as a value, so that a window's running maximum lives in one
// register (the loops over its bytes are fixed-size: pmaxub / pminub).
struct Bytes16 {
  uint8_t b[16];
};
inline Bytes16 load16(const uint8_t* p) {
  Bytes16 v;
  std::memcpy(v.b, p, 16);
  return v;
}
inline Bytes16 max16(Bytes16 a, const Bytes16& b) {
  for (int j = 0; j < 16; ++j) a.b[j] = a.b[j] > b.b[j] ? a.b[j] : b.b[j];
  return a;
}
inline Bytes16 min16(Bytes16 a, const Bytes16& b) {
  for (int j = 0; j < 16; ++j) a.b[j] = a.b[j] < b.b[j] ? a.b[j] : b.b[j];
  return a;
}
inline Bytes16 splat16(uint8_t v) {
  Bytes16 a;
  for (int j = 0; j < 16; ++j) a.b[j] = v;
  return a;
}

// Max pooling when the channels are whole 16-byte vectors: per output pixel
// and vector, the clipped window's maximum in a register (2x2 windows, the
// UNet's, unrolled).
void max_pool_c16(const uint8_t* x, const PoolShape& s, uint8_t qmin, uint8_t qmax, uint8_t* out) {
  const size_t c = s.channels, row_step = s.in_w * c;
  const Bytes16 lo = splat16(qmin), hi = splat16(qmax);
  const size_t window = std::min(s.kh, s.in_h) * std::min(s.kw, s.in_w);
  const size_t rows = s.batch * s.out_h;
  for_ranges(rows, rows * s.out_w * (window + 1) * c, [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r) {
      const size_t n = r / s.out_h, oy = r % s.out_h;
      const Span ys = clip(oy, s.stride_h, s.pad_top, s.kh, s.in_h);
      const uint8_t* image = x + n * s.in_h * row_step;
      uint8_t* o = out + r * s.out_w * s.out_stride;
      for (size_t ox = 0; ox < s.out_w; ++ox, o += s.out_stride) {
        const Span xs = clip(ox, s.stride_w, s.pad_left, s.kw, s.in_w);
        const uint8_t* first = image + (ys.lo * s.in_w + xs.lo) * c;
        if (ys.hi - ys.lo == 2 && xs.hi - xs.lo == 2) {
          for (size_t c0 = 0; c0 < c; c0 += 16) {
            const uint8_t* p = first + c0;
            const Bytes16 m = max16(max16(load16(p), load16(p + c)),
                                    max16(load16(p + row_step), load16(p + row_step + c)));
            const Bytes16 v = min16(max16(m, lo), hi);
            std::memcpy(o + c0, v.b, 16);
          }
          continue;
        }
        for (size_t c0 = 0; c0 < c; c0 += 16) {
          Bytes16 m = lo;  // starting at qmin applies the lower clamp
          for (size_t y = ys.lo; y < ys.hi; ++y) {
            const uint8_t* p = first + (y - ys.lo) * row_step + c0;
            for (size_t i = xs.lo; i < xs.hi; ++i, p += c) m = max16(m, load16(p));
          }
          const Bytes16 v = min16(m, hi);
          std::memcpy(o + c0, v.b, 16);
        }
      }
    }
  });
}

}  // namespace

void max_pool_u8(const uint8_t* x, const PoolShape& s, uint8_t qmin, uint8_t qmax, uint8_t* out) {
  if (s.channels % 16 == 0) return max_pool_c16(x, s, qmin, qmax, out);
  const size_t c = s.channels, row_step = s.in_w * s.channels;
  for_each_window(x, s, out, [=](const uint8_t* first, size_t rows, size_t cols, uint8_t* o) {
    max_pixel(first, row_step, rows, cols, c, qmin, qmax, o);
  });
}

void avg_pool_u8(const uint8_t* x, const PoolShape& s, int32_t offset, uint8_t qmin, uint8_t qmax,
                 uint8_t* out) {
  const size_t c = s.channels, row_step = s.in_w * s.channels;
  for_each_window(x, s, out, [=](const uint8_t* first, size_t rows, size_t cols, uint8_t* o) {
    avg_pixel(first, row_step, rows, cols, c, offset, qmin, qmax, o);
  });
}

void copy_nd(const void* src, const ptrdiff_t* src_strides, void* dst, const ptrdiff_t* dst_strides,
             const size_t* shape, size_t rank, size_t elem_bytes, const uint8_t* lut) {
  const ptrdiff_t* strides[2] = {src_strides, dst_strides};
  Walk<2> w{};
  // (simplify() leaves 1 <= rank <= kMaxRank; the test tells the compiler)
  if (!simplify(shape, rank, strides, &w) || w.rank == 0 || w.rank > kMaxRank) return;
  const uint8_t* s = static_cast<const uint8_t*>(src);
  uint8_t* d = static_cast<uint8_t*>(dst);
  if (lut != nullptr) {
    const ptrdiff_t ss = w.stride[0][w.rank - 1], ds = w.stride[1][w.rank - 1];
    run_walk(w, 2,
             [&](const ptrdiff_t* at, size_t n) { lut_row(s + at[0], ss, d + at[1], ds, n, lut); });
    return;
  }
  bool same = s == d;  // a copy onto itself changes nothing
  for (size_t k = 0; k < w.rank && same; ++k) same = w.stride[0][k] == w.stride[1][k];
  if (same) return;
  const size_t in = w.rank - 1, row_bytes = w.shape[in] * elem_bytes;
  if (w.rank >= 2 && w.stride[0][in] == 1 && w.stride[1][in] == 1 && row_bytes <= kShortRow) {
    return copy_short_rows(w, s, d, elem_bytes, row_bytes);
  }
  switch (elem_bytes) {
    case 1:
      return copy_walk<1>(w, s, d, 1);
    case 2:
      return copy_walk<2>(w, s, d, 2);
    case 4:
      return copy_walk<4>(w, s, d, 4);
    case 8:
      return copy_walk<8>(w, s, d, 8);
    default:
      return copy_walk<0>(w, s, d, elem_bytes);
  }
}

void binary_lut_nd(const uint8_t* a, const ptrdiff_t* a_strides, const uint8_t* b,
                   const ptrdiff_t* b_strides, uint8_t* dst, const ptrdiff_t* dst_strides,
                   const size_t* shape, size_t rank, const uint8_t* lut) {
  const ptrdiff_t* strides[3] = {a_strides, b_strides, dst_strides};
  Walk<3> w{};
  if (!simplify(shape, rank, strides, &w)) return;
  const size_t in = w.rank - 1;
  const ptrdiff_t sa = w.stride[0][in], sb = w.stride[1][in], ds = w.stride[2][in];
  run_walk(w, 3, [&](const ptrdiff_t* at, size_t n) {
    binary_row(a + at[0], sa, b + at[1], sb, dst + at[2], ds, n, lut);
  });
}

void lut_u8_to_f32(const uint8_t* src, size_t n, const float* lut, float* dst) {
  for_ranges(n, 5 * n, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) dst[i] = lut[src[i]];
  });
}

void quantize_f32_tflite(const float* x, size_t n, float scale, int32_t zero_point, int32_t qmin,
                         int32_t qmax, int32_t offset, uint8_t* dst) {
  // NumPy's float64 arithmetic, step by step: every value below is an
  // integer of at most 34 bits (or the rounded quotient), exact in double.
  const double zp = zero_point, lo = qmin, hi = qmax;
  for_ranges(n, 5 * n, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
#if FLT_EVAL_METHOD == 0
      const float q = x[i] / scale;
#else
      // where float arithmetic runs wider (x87), a store rounds it to float
      volatile float rounded = x[i] / scale;
      const float q = rounded;
#endif
      const double d = q;
      const double m = std::floor(std::fabs(d) + 0.5);  // |round_half_away(d)|, or NaN
      double v = m < 2147483648.0 ? (d < 0 ? -m : m) : -2147483648.0;
      v += zp;
      v = v < lo ? lo : v;
      v = v > hi ? hi : v;
      dst[i] = static_cast<uint8_t>(static_cast<int32_t>(v) + offset);
    }
  });
}

void requantize_double_u8(const int32_t* acc, size_t rows, size_t cols, const double* real,
                          size_t real_count, int32_t zero_point, int32_t qmin, int32_t qmax,
                          uint8_t* dst) {
  const double zp = zero_point, lo = qmin, hi = qmax;
  // round_half_away as lowp's NumPy reference writes it, sign(s) * floor(|s|
  // + 0.5); clamped in double, so the conversion is always in range.
  auto one = [&](int32_t a, double r) {
    const double s = static_cast<double>(a) * r;
    const double m = std::floor(std::fabs(s) + 0.5);
    double v = (s < 0 ? -m : m) + zp;
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    return static_cast<uint8_t>(static_cast<int32_t>(v));
  };
  for_ranges(rows, rows * cols * 5, [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r) {
      const int32_t* a = acc + r * cols;
      uint8_t* o = dst + r * cols;
      if (real_count == 1) {
        for (size_t c = 0; c < cols; ++c) o[c] = one(a[c], real[0]);
      } else if (real_count >= cols) {
        for (size_t c = 0; c < cols; ++c) o[c] = one(a[c], real[c]);
      } else {
        for (size_t c = 0, k = 0; c < cols; ++c) {
          o[c] = one(a[c], real[k]);
          if (++k == real_count) k = 0;
        }
      }
    }
  });
}

}  // namespace graph
}  // namespace lowp
