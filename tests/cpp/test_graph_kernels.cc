// Graph kernel tests (graph/graph_kernels.h): every function against a
// definition written here as plain loops, byte for byte, on random shapes
// and on hand-checked values that pin the definitions themselves. Output
// buffers start filled with a canary, and the whole buffer is compared, so a
// write to a gap between pixels, rows or elements, or past the end, fails.
// Large cases run on 1 and 4 threads (the kernels split them).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "graph/graph_kernels.h"
#include "lowp/lowp.h"
#include "test_util.h"

namespace {

using lowp::graph::kMaxRank;
using lowp::graph::PoolShape;

constexpr uint8_t kCanary = 0xA5;

size_t below(std::mt19937& rng, size_t n) { return static_cast<size_t>(rng() % n); }
int64_t between(std::mt19937& rng, int64_t lo, int64_t hi) {  // inclusive
  return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
}

std::vector<uint8_t> random_bytes(std::mt19937& rng, size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// Runs fn on 1 and on 4 threads.
template <typename Fn>
void on_threads(const Fn& fn) {
  const int saved = lowp::num_threads();
  for (int t : {1, 4}) {
    lowp::set_num_threads(t);
    fn(t);
  }
  lowp::set_num_threads(saved);
}

// ---------------------------------------------------------------------------
// Pooling

struct PoolCase {
  PoolShape s;
  uint8_t qmin, qmax;
  int32_t offset;
};

// Whether input position i belongs to output position o's window along one
// axis: the definition by membership, with no clipping arithmetic.
bool in_window(size_t i, size_t o, size_t stride, size_t pad, size_t k) {
  const int64_t start = int64_t(o) * int64_t(stride) - int64_t(pad);
  return int64_t(i) >= start && int64_t(i) < start + int64_t(k);
}

size_t out_size(const PoolShape& s) {
  return ((s.batch * s.out_h - 1) * s.out_w + s.out_w - 1) * s.out_stride + s.channels;
}

// The expected output buffer (canaries where nothing is written), max or
// average.
std::vector<uint8_t> pool_reference(const std::vector<uint8_t>& x, const PoolCase& c, bool max,
                                    size_t size) {
  const PoolShape& s = c.s;
  std::vector<uint8_t> out(size, kCanary);
  std::vector<int64_t> acc(s.channels);
  // Each output row's and column's input positions, by membership.
  std::vector<std::vector<size_t>> rows(s.out_h), cols(s.out_w);
  for (size_t oy = 0; oy < s.out_h; ++oy)
    for (size_t iy = 0; iy < s.in_h; ++iy)
      if (in_window(iy, oy, s.stride_h, s.pad_top, s.kh)) rows[oy].push_back(iy);
  for (size_t ox = 0; ox < s.out_w; ++ox)
    for (size_t ix = 0; ix < s.in_w; ++ix)
      if (in_window(ix, ox, s.stride_w, s.pad_left, s.kw)) cols[ox].push_back(ix);
  for (size_t n = 0; n < s.batch; ++n)
    for (size_t oy = 0; oy < s.out_h; ++oy)
      for (size_t ox = 0; ox < s.out_w; ++ox) {
        std::fill(acc.begin(), acc.end(), max ? -1 : 0);
        int64_t count = 0;
        for (size_t iy : rows[oy]) {
          for (size_t ix : cols[ox]) {
            ++count;
            const uint8_t* px = &x[((n * s.in_h + iy) * s.in_w + ix) * s.channels];
            for (size_t ch = 0; ch < s.channels; ++ch) {
              if (max) {
                acc[ch] = std::max<int64_t>(acc[ch], px[ch]);
              } else {
                acc[ch] += int64_t(px[ch]) - c.offset;
              }
            }
          }
        }
        LOWP_CHECK(count > 0, "test bug: an empty window");
        if (count == 0) return out;
        uint8_t* o = &out[((n * s.out_h + oy) * s.out_w + ox) * s.out_stride];
        for (size_t ch = 0; ch < s.channels; ++ch) {
          int64_t v = acc[ch];
          if (!max) {
            v = v >= 0 ? (v + count / 2) / count : (v - count / 2) / count;
            v += c.offset;
          }
          if (v < c.qmin) v = c.qmin;
          if (v > c.qmax) v = c.qmax;
          o[ch] = static_cast<uint8_t>(v);
        }
      }
  return out;
}

// Runs one pool on 1 and 4 threads and compares the whole output buffer.
bool check_pool(const std::vector<uint8_t>& x, const PoolCase& c, bool max, const char* what) {
  const size_t size = out_size(c.s) + 37;
  const std::vector<uint8_t> want = pool_reference(x, c, max, size);
  bool ok = true;
  on_threads([&](int threads) {
    std::vector<uint8_t> out(size, kCanary);
    if (max) {
      lowp::graph::max_pool_u8(x.data(), c.s, c.qmin, c.qmax, out.data());
    } else {
      lowp::graph::avg_pool_u8(x.data(), c.s, c.offset, c.qmin, c.qmax, out.data());
    }
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < size; ++i) {
      if (out[i] != want[i] && bad++ == 0) first = i;
    }
    const PoolShape& s = c.s;
    ok = ok && LOWP_EXPECT(bad == 0,
                           "%s %s, %d threads: %zu wrong bytes, first at %zu (got %d, want %d); "
                           "n%zu %zux%zux%zu k%zux%zu s%zux%zu pad %zu,%zu out %zux%zu stride "
                           "%zu q[%d, %d] offset %d",
                           max ? "max_pool" : "avg_pool", what, threads, bad, first,
                           bad ? out[first] : 0, bad ? want[first] : 0, s.batch, s.in_h, s.in_w,
                           s.channels, s.kh, s.kw, s.stride_h, s.stride_w, s.pad_top, s.pad_left,
                           s.out_h, s.out_w, s.out_stride, c.qmin, c.qmax, c.offset);
  });
  return ok;
}

// A kernel size, and a padding before that leaves the first window one real
// position at least. Now and then a nominal filter far larger than any
// input, which the kernel must clip before looping.
void random_axis(std::mt19937& rng, size_t in, size_t* k, size_t* stride, size_t* pad,
                 size_t* out) {
  *k = below(rng, 12) == 0 ? 100000 : 1 + below(rng, 5);
  *stride = 1 + below(rng, 4);
  *pad = below(rng, 3) == 0 ? 0 : below(rng, std::min<size_t>(*k, 4));
  if (*k == 100000 && below(rng, 2) == 0) *pad = 50000 + below(rng, 3);
  // Outputs whose window starts inside the input: o * stride - pad < in.
  const size_t most = (in - 1 + *pad) / *stride + 1;
  *out = 1 + below(rng, std::min<size_t>(most, 9));
}

PoolCase random_pool(std::mt19937& rng) {
  static const size_t kChannels[] = {1, 1, 2, 3, 4, 7, 8, 16, 17, 32, 64, 255, 300, 513, 1100};
  PoolCase c;
  PoolShape& s = c.s;
  s.batch = 1 + below(rng, 2);
  s.in_h = 1 + below(rng, 9);
  s.in_w = 1 + below(rng, 9);
  s.channels = kChannels[below(rng, sizeof(kChannels) / sizeof(kChannels[0]))];
  random_axis(rng, s.in_h, &s.kh, &s.stride_h, &s.pad_top, &s.out_h);
  random_axis(rng, s.in_w, &s.kw, &s.stride_w, &s.pad_left, &s.out_w);
  s.out_stride = s.channels + (below(rng, 2) == 0 ? 0 : 1 + below(rng, 5));
  uint8_t a = static_cast<uint8_t>(rng()), b = static_cast<uint8_t>(rng());
  if (below(rng, 3) == 0) a = 0, b = 255;
  c.qmin = std::min(a, b);
  c.qmax = std::max(a, b);
  static const int32_t kOffsets[] = {0, 128, 128, 255, -3, 300};
  c.offset = kOffsets[below(rng, 6)];
  return c;
}

LOWP_TEST(graph_max_pool_random) {
  std::mt19937 rng(101);
  for (int i = 0; i < 600; ++i) {
    const PoolCase c = random_pool(rng);
    const auto x = random_bytes(rng, c.s.batch * c.s.in_h * c.s.in_w * c.s.channels);
    if (!check_pool(x, c, true, "random")) break;
  }
}

LOWP_TEST(graph_avg_pool_random) {
  std::mt19937 rng(202);
  for (int i = 0; i < 600; ++i) {
    const PoolCase c = random_pool(rng);
    auto x = random_bytes(rng, c.s.batch * c.s.in_h * c.s.in_w * c.s.channels);
    // Bytes near the offset make sums near zero and many exact halves.
    if (i % 2 == 0) {
      for (auto& v : x) v = static_cast<uint8_t>(126 + rng() % 5);
    }
    if (!check_pool(x, c, false, "random")) break;
  }
}

PoolShape pool_shape(size_t n, size_t h, size_t w, size_t c, size_t kh, size_t kw, size_t sh,
                     size_t sw, size_t pt, size_t pl, size_t oh, size_t ow, size_t os) {
  PoolShape s;
  s.batch = n, s.in_h = h, s.in_w = w, s.channels = c;
  s.kh = kh, s.kw = kw, s.stride_h = sh, s.stride_w = sw;
  s.pad_top = pt, s.pad_left = pl, s.out_h = oh, s.out_w = ow, s.out_stride = os;
  return s;
}

// Windows that the random cases may miss: strides past the kernel (inputs
// that no window reads), kernels past the stride (overlap), windows clipped
// at each border in turn, a 10^5 nominal filter, and large pools that split
// over threads.
LOWP_TEST(graph_pool_shapes) {
  std::mt19937 rng(303);
  const PoolShape shapes[] = {
      pool_shape(1, 9, 9, 5, 2, 2, 4, 3, 0, 0, 3, 3, 5),  // stride > kernel
      pool_shape(2, 7, 8, 3, 5, 4, 1, 2, 2, 1, 6, 4, 7),  // kernel > stride, padding
      pool_shape(1, 5, 5, 4, 3, 3, 1, 1, 2, 0, 5, 5, 4),  // clipped at the top
      pool_shape(1, 5, 5, 4, 3, 3, 1, 1, 0, 2, 5, 5, 4),  // at the left
      pool_shape(1, 5, 5, 4, 3, 3, 1, 1, 0, 0, 5, 5, 4),  // at the bottom and right
      pool_shape(1, 4, 6, 9, 100000, 100000, 1, 1, 50000, 50000, 3, 2, 11),
      pool_shape(1, 4, 6, 1, 100000, 100000, 7, 7, 99999, 99999, 1, 1, 1),
      pool_shape(1, 3, 3, 600, 3, 3, 1, 1, 1, 1, 3, 3, 613),      // channel blocks, gaps
      pool_shape(1, 64, 64, 96, 3, 3, 1, 1, 1, 1, 64, 64, 96),    // threads
      pool_shape(2, 300, 300, 1, 3, 3, 2, 2, 1, 1, 150, 150, 3),  // threads, one channel
  };
  for (const PoolShape& s : shapes) {
    for (int v = 0; v < 4; ++v) {
      PoolCase c = {s, 0, 255, 0};
      if (v & 1) c.qmin = 17, c.qmax = 201;
      if (v & 2) c.offset = 128;
      auto x = random_bytes(rng, s.batch * s.in_h * s.in_w * s.channels);
      if (v & 2) {
        for (auto& b : x) b = static_cast<uint8_t>(120 + rng() % 17);
      }
      check_pool(x, c, true, "shape");
      check_pool(x, c, false, "shape");
    }
  }
}

// The rounding of TFLite's average, by hand: halves go away from zero, and
// negative sums (int8 models, offset 128) truncate toward zero.
LOWP_TEST(graph_avg_pool_rounding) {
  struct Case {
    std::vector<uint8_t> x;
    int32_t offset;
    uint8_t want;
  };
  const Case cases[] = {
      {{127, 126}, 128, 126},       // -1.5 -> -2
      {{129, 130}, 128, 130},       // 1.5 -> 2
      {{127, 127, 126}, 128, 127},  // -4/3 -> -1
      {{126, 126, 127}, 128, 126},  // -5/3 -> -2
      {{128, 127}, 128, 127},       // -0.5 -> -1
      {{128, 129}, 128, 129},       // 0.5 -> 1
      {{128, 128, 127}, 128, 128},  // -1/3 -> 0
      {{1, 2}, 0, 2},               // 1.5 -> 2
      {{0, 0, 1}, 0, 0},            // 1/3 -> 0
      {{0, 1, 1}, 0, 1},            // 2/3 -> 1
  };
  for (const Case& c : cases) {
    const PoolShape s = pool_shape(1, 1, c.x.size(), 1, 1, c.x.size(), 1, 1, 0, 0, 1, 1, 1);
    uint8_t out[2] = {kCanary, kCanary};
    lowp::graph::avg_pool_u8(c.x.data(), s, c.offset, 0, 255, out);
    LOWP_CHECK(out[0] == c.want && out[1] == kCanary, "avg of %zu values, offset %d: %d, want %d",
               c.x.size(), c.offset, out[0], c.want);
  }
}

// Windows of about 2^23 positions, on either side of where the kernel's
// int32 sums give way to int64 ones, at the extreme sums.
LOWP_TEST(graph_avg_pool_large_window) {
  for (size_t side : {2896, 2900}) {
    const PoolShape s = pool_shape(1, side, side, 1, side, side, 1, 1, 0, 0, 1, 1, 1);
    struct Fill {
      uint8_t byte;
      int32_t offset;
    };
    for (Fill f : {Fill{255, 0}, Fill{0, 255}, Fill{0, 128}, Fill{255, 128}}) {
      const std::vector<uint8_t> x(side * side, f.byte);
      const PoolCase c = {s, 0, 255, f.offset};
      check_pool(x, c, false, "large window");
    }
    std::mt19937 rng(static_cast<uint32_t>(side));
    const auto x = random_bytes(rng, side * side);
    check_pool(x, {s, 0, 255, 128}, false, "large window");
    check_pool(x, {s, 3, 250, 0}, true, "large window");
  }
}

// ---------------------------------------------------------------------------
// Strided N-d copies and lookups

// One operand's layout: element strides and the element offset of index 0
// in its buffer of `elements` elements.
struct Layout {
  ptrdiff_t strides[kMaxRank];
  ptrdiff_t base;
  size_t elements;
};

// A dense layout of an enlarged shape (each dimension up to `pad` larger) in
// a random dimension order, some dimensions reversed (negative strides) and,
// if `broadcast`, some read through stride 0. Distinct indices get distinct
// elements unless a stride is 0.
Layout random_layout(std::mt19937& rng, const size_t* shape, size_t rank, size_t pad,
                     bool broadcast) {
  Layout l;
  size_t order[kMaxRank];
  for (size_t d = 0; d < rank; ++d) order[d] = d;
  if (below(rng, 2) == 0) std::shuffle(order, order + rank, rng);
  ptrdiff_t step = 1;
  for (size_t i = rank; i-- > 0;) {
    const size_t d = order[i];
    l.strides[d] = step;
    step *= static_cast<ptrdiff_t>(shape[d] + (below(rng, 2) == 0 ? 0 : below(rng, pad + 1)));
  }
  l.elements = static_cast<size_t>(std::max<ptrdiff_t>(step, 1));
  l.base = 0;
  for (size_t d = 0; d < rank; ++d) {
    if (broadcast && below(rng, 5) == 0) {
      l.strides[d] = 0;
    } else if (below(rng, 6) == 0) {
      l.base += static_cast<ptrdiff_t>(shape[d] - (shape[d] > 0)) * l.strides[d];
      l.strides[d] = -l.strides[d];
    }
  }
  return l;
}

// Calls fn(offsets) for every index of the shape, in row-major order, with
// each layout's element offset (base included).
template <int kOps, typename Fn>
void for_each_index(const size_t* shape, size_t rank, const Layout* const* layouts, const Fn& fn) {
  size_t total = 1;
  for (size_t d = 0; d < rank; ++d) total *= shape[d];
  for (size_t flat = 0; flat < total; ++flat) {
    ptrdiff_t off[kOps];
    for (int k = 0; k < kOps; ++k) off[k] = layouts[k]->base;
    size_t rest = flat;
    for (size_t d = rank; d-- > 0;) {
      const ptrdiff_t i = static_cast<ptrdiff_t>(rest % shape[d]);
      rest /= shape[d];
      for (int k = 0; k < kOps; ++k) off[k] += i * layouts[k]->strides[d];
    }
    fn(off);
  }
}

struct CopyCase {
  size_t rank;
  size_t shape[kMaxRank];
  size_t elem_bytes;
  bool lut;
  Layout src, dst;
};

bool check_copy(std::mt19937& rng, const CopyCase& c, const char* what) {
  const size_t e = c.elem_bytes;
  const auto src = random_bytes(rng, c.src.elements * e);
  const auto lut = random_bytes(rng, 256);
  std::vector<uint8_t> want(c.dst.elements * e + 29, kCanary);
  const Layout* layouts[2] = {&c.src, &c.dst};
  for_each_index<2>(c.shape, c.rank, layouts, [&](const ptrdiff_t* off) {
    for (size_t b = 0; b < e; ++b) {
      const uint8_t v = src[size_t(off[0]) * e + b];
      want[size_t(off[1]) * e + b] = c.lut ? lut[v] : v;
    }
  });
  bool ok = true;
  on_threads([&](int threads) {
    std::vector<uint8_t> out(want.size(), kCanary);
    lowp::graph::copy_nd(src.data() + c.src.base * ptrdiff_t(e), c.src.strides,
                         out.data() + c.dst.base * ptrdiff_t(e), c.dst.strides, c.shape, c.rank, e,
                         c.lut ? lut.data() : nullptr);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i] != want[i] && bad++ == 0) first = i;
    }
    ok = ok && LOWP_EXPECT(bad == 0,
                           "copy_nd %s, %d threads: rank %zu, shape [%zu %zu %zu ...], %zu-byte "
                           "elements%s, strides src [%td %td %td ...] dst [%td %td %td ...]: %zu "
                           "wrong bytes, first at %zu",
                           what, threads, c.rank, c.shape[0], c.shape[1], c.shape[2], e,
                           c.lut ? " with a lut" : "", c.src.strides[0], c.src.strides[1],
                           c.src.strides[2], c.dst.strides[0], c.dst.strides[1], c.dst.strides[2],
                           bad, first);
  });
  return ok;
}

void random_shape(std::mt19937& rng, size_t* rank, size_t* shape, size_t max_elements) {
  *rank = 1 + below(rng, kMaxRank);
  size_t total = 1;
  for (size_t d = 0; d < *rank; ++d) {
    shape[d] = 1 + below(rng, d + 1 == *rank ? 40 : 5);
    if (total * shape[d] > max_elements) shape[d] = 1;
    total *= shape[d];
  }
  for (size_t d = *rank; d < kMaxRank; ++d) shape[d] = 0;  // never read
}

LOWP_TEST(graph_copy_nd_random) {
  std::mt19937 rng(404);
  static const size_t kBytes[] = {1, 1, 1, 2, 4, 8, 3, 6};
  for (int i = 0; i < 1500; ++i) {
    CopyCase c;
    random_shape(rng, &c.rank, c.shape, 6000);
    c.elem_bytes = kBytes[below(rng, 8)];
    c.lut = c.elem_bytes == 1 && below(rng, 2) == 0;
    c.src = random_layout(rng, c.shape, c.rank, 3, true);
    c.dst = random_layout(rng, c.shape, c.rank, 3, false);
    if (!check_copy(rng, c, "random")) break;
  }
}

CopyCase copy_case(std::initializer_list<size_t> shape, size_t elem_bytes, bool lut) {
  CopyCase c = {};
  c.rank = shape.size();
  std::copy(shape.begin(), shape.end(), c.shape);
  c.elem_bytes = elem_bytes;
  c.lut = lut;
  return c;
}

// Row-major strides of `shape` with the innermost dimension `inner_pad`
// elements wider (a slice of a concatenation's output).
Layout dense(const CopyCase& c, size_t inner_pad) {
  Layout l = {};
  ptrdiff_t step = 1;
  for (size_t d = c.rank; d-- > 0;) {
    l.strides[d] = step;
    step *= static_cast<ptrdiff_t>(c.shape[d] + (d + 1 == c.rank ? inner_pad : 0));
  }
  l.elements = static_cast<size_t>(step);
  return l;
}

// Shapes the plan uses (concatenation slices, padding, transposes, the
// domain change) and large ones that split over threads, down to a single
// long row cut into pieces.
LOWP_TEST(graph_copy_nd_shapes) {
  std::mt19937 rng(505);
  {  // an empty shape writes nothing
    CopyCase c = copy_case({3, 0, 4}, 1, false);
    c.src = dense(c, 0);
    c.dst = dense(c, 0);
    c.src.elements = c.dst.elements = 1;
    check_copy(rng, c, "empty");
  }
  for (bool lut : {false, true}) {
    CopyCase c = copy_case({600000}, 1, lut);
    c.src = dense(c, 0);
    c.dst = dense(c, 0);
    check_copy(rng, c, "one long row");
    c = copy_case({3, 300000}, 1, lut);
    c.src = dense(c, 0);
    c.dst = dense(c, 7);
    check_copy(rng, c, "concatenation slice");
    c = copy_case({2, 1, 300000}, 1, lut);
    c.src = dense(c, 0);
    c.src.strides[2] = 0;  // one value over each row
    c.dst = dense(c, 5);
    check_copy(rng, c, "broadcast rows");
  }
  for (size_t e : {1, 2, 4, 3}) {
    CopyCase c = copy_case({64, 96, 80}, e, false);
    c.dst = dense(c, 0);
    c.src = dense(c, 0);  // read as the transpose [2, 0, 1] of an [80, 64, 96] array
    c.src.strides[2] = 64 * 96, c.src.strides[0] = 96, c.src.strides[1] = 1;
    check_copy(rng, c, "transpose");
    c = copy_case({4, 200000}, e, false);
    c.src = dense(c, 0);
    c.src.strides[0] = 0;  // the same row four times
    c.src.elements = 200000;
    c.dst = dense(c, 3);
    check_copy(rng, c, "broadcast outer");
  }
  {  // padding: a [5, 6, 7] tensor into the middle of a [7, 9, 10] one
    CopyCase c = copy_case({5, 6, 7}, 1, false);
    c.src = dense(c, 0);
    c.dst = {{90, 10, 1}, 90 + 20 + 2, 7 * 9 * 10};
    check_copy(rng, c, "padding");
  }
}

// A copy onto itself (same address and strides) changes nothing; with a
// table it is the in-place domain change.
LOWP_TEST(graph_copy_nd_in_place) {
  std::mt19937 rng(606);
  const size_t shape[2] = {5, 33};
  const ptrdiff_t strides[2] = {40, 1};
  auto buf = random_bytes(rng, 200);
  const auto before = buf;
  lowp::graph::copy_nd(buf.data(), strides, buf.data(), strides, shape, 2, 1, nullptr);
  LOWP_CHECK(buf == before, "an in-place copy changed bytes");
  std::vector<uint8_t> flip(256);
  for (int v = 0; v < 256; ++v) flip[v] = static_cast<uint8_t>(v ^ 0x80);
  lowp::graph::copy_nd(buf.data(), strides, buf.data(), strides, shape, 2, 1, flip.data());
  size_t bad = 0;
  for (size_t i = 0; i < buf.size(); ++i) {
    const bool inside = i < 5 * 40 && i % 40 < 33;
    bad += buf[i] != (inside ? before[i] ^ 0x80 : before[i]);
  }
  LOWP_CHECK(bad == 0, "in-place lookup: %zu wrong bytes", bad);
}

struct BinaryCase {
  size_t rank;
  size_t shape[kMaxRank];
  Layout a, b, dst;
};

bool check_binary(std::mt19937& rng, const BinaryCase& c, const char* what) {
  const auto a = random_bytes(rng, c.a.elements);
  const auto b = random_bytes(rng, c.b.elements);
  const auto lut = random_bytes(rng, 65536);
  std::vector<uint8_t> want(c.dst.elements + 31, kCanary);
  const Layout* layouts[3] = {&c.a, &c.b, &c.dst};
  for_each_index<3>(c.shape, c.rank, layouts, [&](const ptrdiff_t* off) {
    want[size_t(off[2])] = lut[a[size_t(off[0])] * 256 + b[size_t(off[1])]];
  });
  bool ok = true;
  on_threads([&](int threads) {
    std::vector<uint8_t> out(want.size(), kCanary);
    lowp::graph::binary_lut_nd(a.data() + c.a.base, c.a.strides, b.data() + c.b.base, c.b.strides,
                               out.data() + c.dst.base, c.dst.strides, c.shape, c.rank, lut.data());
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i] != want[i] && bad++ == 0) first = i;
    }
    ok = ok && LOWP_EXPECT(bad == 0,
                           "binary_lut_nd %s, %d threads: rank %zu, shape [%zu %zu ...], inner "
                           "strides a %td b %td dst %td: %zu wrong bytes, first at %zu",
                           what, threads, c.rank, c.shape[0], c.shape[1], c.a.strides[c.rank - 1],
                           c.b.strides[c.rank - 1], c.dst.strides[c.rank - 1], bad, first);
  });
  return ok;
}

LOWP_TEST(graph_binary_lut_nd_random) {
  std::mt19937 rng(707);
  for (int i = 0; i < 1000; ++i) {
    BinaryCase c;
    random_shape(rng, &c.rank, c.shape, 6000);
    c.a = random_layout(rng, c.shape, c.rank, 2, true);
    c.b = random_layout(rng, c.shape, c.rank, 2, true);
    c.dst = random_layout(rng, c.shape, c.rank, 2, false);
    if (!check_binary(rng, c, "random")) break;
  }
}

// Every innermost broadcast pattern (each input contiguous or stride 0),
// large enough to split over threads, and a strided output.
LOWP_TEST(graph_binary_lut_nd_shapes) {
  std::mt19937 rng(808);
  for (int pattern = 0; pattern < 8; ++pattern) {
    BinaryCase c = {};
    c.rank = 2;
    c.shape[0] = pattern & 4 ? 1 : 300;
    c.shape[1] = pattern & 4 ? 200000 : 1500;
    const ptrdiff_t rows = static_cast<ptrdiff_t>(c.shape[0]);
    const ptrdiff_t cols = static_cast<ptrdiff_t>(c.shape[1]);
    c.a = {{cols, pattern & 1 ? 0 : 1}, 0, size_t(rows * cols)};
    c.b = {{pattern & 2 ? 1 : cols, pattern & 2 ? 0 : 1}, 0, size_t(rows * cols)};
    c.dst = {{cols + 3, 1}, 0, size_t(rows * (cols + 3))};
    check_binary(rng, c, "broadcast pattern");
    c.dst = {{1, rows + 1}, 0, size_t((rows + 1) * cols)};  // written transposed
    check_binary(rng, c, "transposed output");
  }
}

// ---------------------------------------------------------------------------
// Lookups to float, quantization, the double output stage

LOWP_TEST(graph_lut_u8_to_f32) {
  std::mt19937 rng(909);
  std::vector<float> lut(256);
  for (int v = 0; v < 256; ++v) lut[v] = 0.0078125f * float(v - 128) + 1e-3f * float(rng() % 7);
  lut[0] = -0.0f;
  lut[1] = std::numeric_limits<float>::infinity();
  lut[2] = std::numeric_limits<float>::denorm_min();
  for (size_t n : {0, 1, 7, 64, 1000, 300001}) {
    const auto src = random_bytes(rng, n);
    on_threads([&](int threads) {
      std::vector<float> out(n + 9, 12345.0f);
      lowp::graph::lut_u8_to_f32(src.data(), n, lut.data(), out.data());
      size_t bad = 0;
      for (size_t i = 0; i < out.size(); ++i) {
        const float want = i < n ? lut[src[i]] : 12345.0f;
        bad += std::memcmp(&out[i], &want, sizeof(float)) != 0;
      }
      LOWP_CHECK(bad == 0, "lut_u8_to_f32 n %zu, %d threads: %zu wrong values", n, threads, bad);
    });
  }
}

struct QuantParams {
  float scale;
  int32_t zero_point, qmin, qmax, offset;
};

// The NumPy of the QUANTIZE op, spelled out: v = round_half_away(float64(x /
// scale)) with the division in float32, NaN and |v| >= 2^31 become -2^31,
// then clip(v + zero_point, qmin, qmax) + offset, all in float64.
uint8_t quantize_reference(float x, const QuantParams& p) {
  const float quotient = x / p.scale;
  const double q = quotient;
  const double sign = q > 0 ? 1.0 : q < 0 ? -1.0 : q == 0 ? 0.0 : q;
  double v = sign * std::floor(std::fabs(q) + 0.5);
  if (!(std::fabs(v) < 2147483648.0)) v = -2147483648.0;
  v = std::min(std::max(v + p.zero_point, double(p.qmin)), double(p.qmax));
  return static_cast<uint8_t>(static_cast<int32_t>(v + p.offset));
}

float from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

bool check_quantize(const std::vector<float>& x, const QuantParams& p, const char* what) {
  bool ok = true;
  on_threads([&](int threads) {
    std::vector<uint8_t> out(x.size() + 17, kCanary);
    lowp::graph::quantize_f32_tflite(x.data(), x.size(), p.scale, p.zero_point, p.qmin, p.qmax,
                                     p.offset, out.data());
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      const uint8_t want = i < x.size() ? quantize_reference(x[i], p) : kCanary;
      if (out[i] != want && bad++ == 0) first = i;
    }
    ok = ok && LOWP_EXPECT(bad == 0,
                           "quantize %s, %d threads, scale %g zp %d [%d, %d] offset %d: %zu "
                           "wrong, first x = %.9g (got %d)",
                           what, threads, double(p.scale), p.zero_point, p.qmin, p.qmax, p.offset,
                           bad, first < x.size() ? double(x[first]) : 0.0, out[first]);
  });
  return ok;
}

// Values by hand: halves away from zero, NaN, infinities and values beyond
// int32 at -2^31 (so at qmin, whatever their sign).
LOWP_TEST(graph_quantize_values) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  struct Case {
    float x;
    QuantParams p;
    uint8_t want;
  };
  const QuantParams s8 = {0.5f, 0, -128, 127, 128}, s8z = {0.5f, 5, -128, 127, 128};
  const QuantParams u8 = {0.5f, 3, 0, 255, 0};
  const Case cases[] = {
      {1.25f, s8, 131},       {1.75f, s8, 132},
      {0.25f, s8, 129},       {-0.25f, s8, 127},
      {-1.25f, s8, 125},      {0.2f, s8, 128},
      {-0.0f, s8, 128},       {100.0f, s8, 255},
      {-100.0f, s8, 0},       {nan, s8, 0},
      {inf, s8, 0},           {-inf, s8, 0},
      {1e20f, s8, 0},         {-1e20f, s8, 0},
      {nan, s8z, 0},          {2.5f, s8z, 138},
      {1.25f, u8, 6},         {-1.25f, u8, 0},
      {1e20f, u8, 0},         {nan, u8, 0},
      {127.75f, u8, 255},     {1073741760.0f, u8, 255},
      {1073741824.0f, u8, 0}, {-1073741824.0f, u8, 0},
  };
  for (const Case& c : cases) {
    uint8_t out[2] = {kCanary, kCanary};
    lowp::graph::quantize_f32_tflite(&c.x, 1, c.p.scale, c.p.zero_point, c.p.qmin, c.p.qmax,
                                     c.p.offset, out);
    LOWP_CHECK(out[0] == c.want && out[1] == kCanary, "quantize %.9g (zp %d): %d, want %d",
               double(c.x), c.p.zero_point, out[0], c.want);
    LOWP_CHECK(quantize_reference(c.x, c.p) == c.want, "the reference of %.9g: %d, want %d",
               double(c.x), quantize_reference(c.x, c.p), c.want);
  }
}

LOWP_TEST(graph_quantize_random) {
  std::mt19937 rng(1001);
  const float scales[] = {0.5f, 0.1f, 1.0f / 255, 0.0078125f, 3.7e-5f, 1e-30f, 1e30f, 0.0235294f};
  for (int round = 0; round < 60; ++round) {
    QuantParams p;
    p.scale = scales[below(rng, sizeof(scales) / sizeof(scales[0]))];
    if (round % 2 == 0) {  // int8
      p.zero_point = static_cast<int32_t>(between(rng, -128, 127));
      p.qmin = -128, p.qmax = 127, p.offset = 128;
      if (round % 6 == 0) p.qmin = std::max(p.qmin, p.zero_point);  // a ReLU
    } else {
      p.zero_point = static_cast<int32_t>(between(rng, 0, 255));
      p.qmin = 0, p.qmax = 255, p.offset = 0;
      if (round % 5 == 0) p.qmin = 10, p.qmax = 200;
    }
    std::vector<float> x(round == 0 ? 300000 : 2000);
    for (size_t i = 0; i < x.size(); ++i) {
      switch (i % 4) {
        case 0:  // any bits: NaNs, infinities, subnormals, huge values
          x[i] = from_bits(static_cast<uint32_t>(rng()));
          break;
        case 1:  // within the quantized range
          x[i] = p.scale * (float(between(rng, -200, 200)) + float(rng() % 1000) / 1000.0f);
          break;
        case 2:  // exact halves of the scale, and their float neighbours
          x[i] = p.scale * (float(between(rng, -300, 300)) + 0.5f);
          if (rng() % 2) x[i] = std::nextafter(x[i], rng() % 2 ? 1e38f : -1e38f);
          break;
        default:  // near the int32 limits of x / scale
          x[i] = p.scale * std::ldexp(1.0f + float(rng() % 1000) / 1000.0f, 29 + int(rng() % 4)) *
                 (rng() % 2 ? 1.0f : -1.0f);
          break;
      }
    }
    if (!check_quantize(x, p, "random")) break;
  }
}

// Inputs whose float32 quotient rounds to another integer than the exact
// (double) one: a kernel that divided in double would fail on them.
LOWP_TEST(graph_quantize_float_division) {
  std::mt19937 rng(1101);
  size_t found = 0;
  for (int round = 0; round < 300; ++round) {
    const float scale = float(1 + rng() % 100000) * 1e-5f;
    std::vector<float> x;
    for (int k = -127; k < 127; ++k) {
      const float v = scale * (float(k) + 0.5f);
      for (float c : {std::nextafter(v, 1e9f), std::nextafter(v, -1e9f), v}) {
        const double exact = double(c) / double(scale);
        if (std::round(exact) != std::round(double(c / scale))) x.push_back(c);
      }
    }
    found += x.size();
    if (!x.empty() && !check_quantize(x, {scale, 0, -128, 127, 128}, "float division")) break;
  }
  LOWP_CHECK(found >= 100, "only %zu inputs where the float32 division matters", found);
}

struct DoubleCase {
  size_t rows, cols;
  std::vector<int32_t> acc;
  std::vector<double> real;
  int32_t zero_point, qmin, qmax;
};

// NumPy's requantize_double: clip(sign(s) * floor(|s| + 0.5) + zero_point,
// qmin, qmax) with s = float64(acc) * real, all in float64.
uint8_t requantize_double_reference(int32_t acc, double real, const DoubleCase& c) {
  const double s = double(acc) * real;
  const double sign = s > 0 ? 1.0 : s < 0 ? -1.0 : 0.0;
  double v = sign * std::floor(std::fabs(s) + 0.5) + double(c.zero_point);
  v = std::min(std::max(v, double(c.qmin)), double(c.qmax));
  return static_cast<uint8_t>(v);
}

bool check_requantize_double(const DoubleCase& c, const char* what) {
  bool ok = true;
  on_threads([&](int threads) {
    const size_t n = c.rows * c.cols;
    std::vector<uint8_t> out(n + 13, kCanary);
    lowp::graph::requantize_double_u8(c.acc.data(), c.rows, c.cols, c.real.data(), c.real.size(),
                                      c.zero_point, c.qmin, c.qmax, out.data());
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      const uint8_t want =
          i < n ? requantize_double_reference(c.acc[i], c.real[(i % c.cols) % c.real.size()], c)
                : kCanary;
      if (out[i] != want && bad++ == 0) first = i;
    }
    ok = ok && LOWP_EXPECT(bad == 0,
                           "requantize_double %s, %d threads: %zux%zu, %zu reals, zp %d [%d, %d]: "
                           "%zu wrong, first at %zu (got %d)",
                           what, threads, c.rows, c.cols, c.real.size(), c.zero_point, c.qmin,
                           c.qmax, bad, first, out[first]);
  });
  return ok;
}

// By hand: halves away from zero on both sides, no overflow at the int32
// limits, and NumPy's floor(|s| + 0.5) where |s| is the double just below
// 0.5 (it rounds up, since |s| + 0.5 rounds to 1; C's round would not).
LOWP_TEST(graph_requantize_double_values) {
  struct Case {
    int32_t acc;
    double real;
    int32_t zero_point;
    uint8_t want;
  };
  const double below_half = 0.49999999999999994;
  const Case cases[] = {
      {3, 0.5, 10, 12},
      {-3, 0.5, 10, 8},
      {-5, 0.5, 10, 7},
      {5, 0.5, 10, 13},
      {7, 0.25, 10, 12},
      {-7, 0.25, 10, 8},
      {1, below_half, 10, 11},
      {-1, below_half, 10, 9},
      {INT32_MAX, 1.0, INT32_MAX, 255},
      {INT32_MIN, 1.0, INT32_MIN, 0},
      {INT32_MIN, 1e300, 0, 0},
      {INT32_MAX, 1e300, 0, 255},
      {INT32_MIN, 1e-12, 100, 100},
  };
  for (const Case& k : cases) {
    DoubleCase c = {1, 1, {k.acc}, {k.real}, k.zero_point, 0, 255};
    uint8_t out[2] = {kCanary, kCanary};
    lowp::graph::requantize_double_u8(&k.acc, 1, 1, &k.real, 1, k.zero_point, 0, 255, out);
    LOWP_CHECK(out[0] == k.want && out[1] == kCanary, "acc %d * %.17g + %d: %d, want %d", k.acc,
               k.real, k.zero_point, out[0], k.want);
    LOWP_CHECK(requantize_double_reference(k.acc, k.real, c) == k.want,
               "the reference of acc %d * %.17g", k.acc, k.real);
  }
}

LOWP_TEST(graph_requantize_double_random) {
  std::mt19937 rng(1201);
  const int32_t zero_points[] = {0, 128, 3, -300, 300, INT32_MAX, INT32_MIN};
  for (int round = 0; round < 400; ++round) {
    DoubleCase c;
    c.rows = round == 0 ? 3000 : 1 + below(rng, 6);
    c.cols = round == 0 ? 129 : 1 + below(rng, 40);
    const size_t counts[] = {1, c.cols, 3, 7, c.cols + 2};
    c.real.resize(counts[below(rng, 5)]);
    for (double& r : c.real) {
      switch (rng() % 4) {
        case 0:  // a product of float32 scales, as the plan derives it
          r = double(float(1e-3 * (1 + rng() % 1000))) * double(float(1e-2 * (1 + rng() % 100))) /
              double(float(1e-2 * (1 + rng() % 100)));
          break;
        case 1:  // exact halves for odd accumulators
          r = std::ldexp(1.0, -int(rng() % 8));
          break;
        case 2:
          r = std::ldexp(double(rng()) / 4294967296.0, -int(rng() % 20));
          break;
        default:
          r = 1.0 + double(rng() % 1000);
          break;
      }
    }
    c.zero_point = zero_points[below(rng, 7)];
    uint8_t a = static_cast<uint8_t>(rng()), b = static_cast<uint8_t>(rng());
    if (round % 3 == 0) a = 0, b = 255;
    c.qmin = std::min(a, b), c.qmax = std::max(a, b);
    c.acc.resize(c.rows * c.cols);
    for (int32_t& v : c.acc) {
      switch (rng() % 5) {
        case 0:
          v = static_cast<int32_t>(rng());
          break;
        case 1:
          v = rng() % 2 ? INT32_MIN : INT32_MAX;
          break;
        default:
          v = static_cast<int32_t>(between(rng, -5000, 5000));
          break;
      }
    }
    if (!check_requantize_double(c, "random")) break;
  }
}

}  // namespace
