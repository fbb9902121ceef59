// Convolutions on top of the GEMM.
//
// Conv2d: the weights OHWI [out_c, kh, kw, in_c] are the GEMM's B (K = kh kw
// in_c taps by out_c columns), packed once. A row of A is one output pixel's
// receptive field in (ky, kx, c) order, gathered per GEMM task (im2col a task
// at a time, so it stays in cache); a 1x1 stride-1 unpadded conv reads the
// input directly. Padded taps are filled with the input zero point, which
// makes them contribute exactly zero.
//
// ConvTranspose2d: every input pixel times B [in_c, kh kw out_c] gives its
// contributions to a kh x kw patch of the full output. With stride == kernel
// (2x2 stride 2) the patches tile the output without overlap, so the GEMM
// (output stage fused) hands each finished block to a scatter into place.
// Otherwise the contributions are computed as int32 columns and each output
// pixel gathers and adds the ones that land on it (col2im, race-free across
// threads), then the output stage runs.
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "conv_direct.h"
#include "copy_bytes.h"
#include "gemm_hooks.h"
#include "kernels.h"
#include "lowp/lowp.h"

namespace lowp {

void DirectConvPacked::reset(size_t data_bytes, size_t bias_values) {
  data.assign(data_bytes, 0);
  bias.assign(bias_values, 0);
}

namespace {

// n values cycling through values[0, count): a per-channel table repeated
// for every tap's columns (count 1 repeats one value).
std::vector<int32_t> repeat_per_column(const int32_t* values, size_t count, size_t n) {
  std::vector<int32_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = values[count == 1 ? 0 : i % count];
  return out;
}

// Elements from one output pixel to the next.
size_t out_stride_of(const ConvGeometry& g, size_t out_c) {
  return g.out_stride != 0 ? g.out_stride : out_c;
}

// The sizes of a convolution's weights (OHWI) and its strides.
struct KernelShape {
  size_t out_c, kh, kw, in_c, sh, sw;
};

struct Im2col {
  const uint8_t* x;
  ConvGeometry g;
  size_t in_c, kh, kw, sh, sw;
  uint8_t x_zero_point;
};

// Rows [row0, row0 + rows) of the im2col matrix: output pixels in NHW order.
void im2col_rows(const void* ctx, size_t row0, size_t rows, uint8_t* dst) {
  const Im2col& c = *static_cast<const Im2col*>(ctx);
  const ConvGeometry& g = c.g;
  const size_t tap_bytes = c.in_c, row_bytes = c.kw * c.in_c;
  size_t n = row0 / (g.out_h * g.out_w);
  size_t oy = row0 / g.out_w % g.out_h, ox = row0 % g.out_w;
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* image = c.x + n * g.in_h * g.in_w * c.in_c;
    // Signed: the receptive field may start in the padding.
    const ptrdiff_t iy0 = static_cast<ptrdiff_t>(oy * c.sh) - static_cast<ptrdiff_t>(g.pad_top);
    const ptrdiff_t ix0 = static_cast<ptrdiff_t>(ox * c.sw) - static_cast<ptrdiff_t>(g.pad_left);
    const bool row_inside =
        ix0 >= 0 && ix0 + static_cast<ptrdiff_t>(c.kw) <= static_cast<ptrdiff_t>(g.in_w);
    for (size_t ky = 0; ky < c.kh; ++ky, dst += row_bytes) {
      const ptrdiff_t iy = iy0 + static_cast<ptrdiff_t>(ky);
      if (iy < 0 || iy >= static_cast<ptrdiff_t>(g.in_h)) {
        std::memset(dst, c.x_zero_point, row_bytes);
        continue;
      }
      const uint8_t* line = image + static_cast<size_t>(iy) * g.in_w * c.in_c;
      if (row_inside) {  // the kw taps of a kernel row are adjacent in the input
        copy_bytes(dst, line + static_cast<size_t>(ix0) * c.in_c, row_bytes);
        continue;
      }
      for (size_t kx = 0; kx < c.kw; ++kx) {
        const ptrdiff_t ix = ix0 + static_cast<ptrdiff_t>(kx);
        if (ix < 0 || ix >= static_cast<ptrdiff_t>(g.in_w)) {
          std::memset(dst + kx * tap_bytes, c.x_zero_point, tap_bytes);
        } else {
          copy_bytes(dst + kx * tap_bytes, line + static_cast<size_t>(ix) * c.in_c, tap_bytes);
        }
      }
    }
    if (++ox == g.out_w) {
      ox = 0;
      if (++oy == g.out_h) {
        oy = 0;
        ++n;
      }
    }
  }
}

// One GEMM micro-panel of im2col rows, packed by the kernel's own packer.
// When the rows are output pixels of one image row whose receptive fields lie
// inside the image, the k values [ky L, (ky + 1) L) of every row (L = kw
// in_c, one kernel row) are input bytes at a fixed stride of sw in_c from one
// pixel to the next: the packer reads them straight from the input, one
// kernel row at a time, and no im2col copy is made. Other panels (at the
// padding, or spanning two image rows) are gathered first.
void im2col_pack(const void* ctx, const GemmKernel& kn, size_t row, size_t rows, size_t k0,
                 size_t k_valid, size_t kc, void* packed, int32_t* rowsum) {
  const Im2col& c = *static_cast<const Im2col*>(ctx);
  const ConvGeometry& g = c.g;
  const size_t run = c.kw * c.in_c, k = c.kh * run;
  const size_t n = row / (g.out_h * g.out_w), oy = row / g.out_w % g.out_h, ox = row % g.out_w;
  const ptrdiff_t iy0 = static_cast<ptrdiff_t>(oy * c.sh) - static_cast<ptrdiff_t>(g.pad_top);
  const ptrdiff_t ix0 = static_cast<ptrdiff_t>(ox * c.sw) - static_cast<ptrdiff_t>(g.pad_left);
  const ptrdiff_t ix_end = ix0 + static_cast<ptrdiff_t>((rows - 1) * c.sw + c.kw);
  const bool direct = run % kn.kr == 0 && k_valid == kc && ox + rows <= g.out_w && iy0 >= 0 &&
                      iy0 + static_cast<ptrdiff_t>(c.kh) <= static_cast<ptrdiff_t>(g.in_h) &&
                      ix0 >= 0 && ix_end <= static_cast<ptrdiff_t>(g.in_w);
  if (direct) {
    const uint8_t* first =
        c.x +
        ((n * g.in_h + static_cast<size_t>(iy0)) * g.in_w + static_cast<size_t>(ix0)) * c.in_c;
    uint8_t* dst = static_cast<uint8_t*>(packed);
    for (size_t ky = k0 / run; ky < c.kh && ky * run < k0 + k_valid; ++ky) {
      const size_t lo = std::max(k0, ky * run), hi = std::min(k0 + k_valid, (ky + 1) * run);
      kn.pack_a(first + ky * g.in_w * c.in_c + (lo - ky * run), c.sw * c.in_c, rows, hi - lo,
                hi - lo, dst + (lo - k0) * kn.a_bytes_per_k, rowsum);
    }
    return;
  }
  static thread_local std::vector<uint8_t> rows_buffer;
  rows_buffer.resize(rows * k);
  im2col_rows(ctx, row, rows, rows_buffer.data());
  kn.pack_a(rows_buffer.data() + k0, k, rows, k_valid, kc, packed, rowsum);
}

struct DirectTasks {
  const DirectConvKernel* kernel;
  const DirectConvJob* job;
  size_t pixels, per_task;
};

void direct_task(void* ctx, size_t task) {
  const DirectTasks& t = *static_cast<const DirectTasks*>(ctx);
  const size_t begin = task * t.per_task;
  t.kernel->run(*t.job, begin, std::min(t.pixels, begin + t.per_task));
}

// The weights as given, for a path's direct kernels (conv_direct.h), and
// each kernel's packed copy, made when a path that has one first runs (the
// active path's at creation). A null packed copy: the kernel declined.
struct DirectCache {
  KernelShape shape;
  int32_t x_zero_point;
  std::vector<uint8_t> w;
  std::vector<int32_t> w_zero_point, bias;
  mutable std::mutex mutex;
  mutable std::vector<std::pair<const DirectConvKernel*, std::unique_ptr<DirectConvPacked>>> packed;

  DirectCache(const KernelShape& s, const uint8_t* weights, const int32_t* zp, size_t zp_count,
              int32_t x_zp, const int32_t* b)
      : shape(s),
        x_zero_point(x_zp),
        w(weights, weights + s.out_c * s.kh * s.kw * s.in_c),
        w_zero_point(zp, zp + zp_count) {
    if (b != nullptr) bias.assign(b, b + s.out_c);
  }

  const DirectConvPacked* get(const DirectConvKernel& kernel) const {
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& d : packed) {
      if (d.first == &kernel) return d.second.get();
    }
    const DirectConvWeights weights = {w.data(),
                                       shape.out_c,
                                       shape.kh,
                                       shape.kw,
                                       shape.in_c,
                                       shape.sh,
                                       shape.sw,
                                       w_zero_point.data(),
                                       w_zero_point.size(),
                                       x_zero_point,
                                       bias.empty() ? nullptr : bias.data()};
    auto p = std::make_unique<DirectConvPacked>();
    if (!kernel.prepare(weights, p.get())) p.reset();
    packed.emplace_back(&kernel, std::move(p));
    return packed.back().second.get();
  }

  // Runs `kernel` over rows x row_pixels pixels (output pixels of a conv,
  // input pixels of a transposed conv) with the job's
  // other fields filled here; false where the kernel declined the shape or
  // cannot read the stage's tables.
  bool run(const DirectConvKernel* kernel, const uint8_t* x, const ConvGeometry& g,
           const OutputStage* stage, void* out, size_t rows, size_t row_pixels) const {
    if (kernel == nullptr) return false;
    const DirectConvPacked* p = get(*kernel);
    if (p == nullptr) return false;
    const Requantization* rq = stage != nullptr ? &stage->requant() : nullptr;
    const ChannelParams* tables = stage != nullptr ? &stage->tables().tables.params() : nullptr;
    // The kernel may read per-channel entries up to its padded channel count.
    if (tables != nullptr && tables->period != 1 && tables->period < p->channels) return false;
    const KernelShape& s = shape;
    DirectConvJob job;
    job.x = x;
    job.x_bytes = g.batch * g.in_h * g.in_w * s.in_c;
    job.g = g;
    job.in_c = s.in_c;
    job.kh = s.kh;
    job.kw = s.kw;
    job.sh = s.sh;
    job.sw = s.sw;
    job.x_zero_point = x_zero_point;
    job.packed = p;
    job.out_c = s.out_c;
    job.requant = tables;
    job.zero_point = rq ? rq->zero_point : 0;
    job.qmin = rq ? rq->qmin : 0;
    job.qmax = rq ? rq->qmax : 255;
    job.out = out;
    job.out_stride = out_stride_of(g, s.out_c);
    // Tasks of whole rows (kernels tile along a row), about 256 pixels
    // each, and fewer rows while there are under 4 tasks per thread.
    const size_t pixels = rows * row_pixels;
    const size_t work = pixels * s.out_c * s.kh * s.kw * s.in_c;  // conv or transposed
    const size_t threads = static_cast<size_t>(threads_for(work));
    size_t task_rows = std::max<size_t>(1, 256 / std::max<size_t>(row_pixels, 1));
    while (task_rows > 1 && (rows + task_rows - 1) / task_rows < 4 * threads) task_rows /= 2;
    DirectTasks tasks = {kernel, &job, pixels, std::max<size_t>(1, task_rows * row_pixels)};
    parallel_for((pixels + tasks.per_task - 1) / tasks.per_task, direct_task, &tasks, work);
    return true;
  }
};

}  // namespace

// ---------------------------------------------------------------------------
struct Conv2d::Impl : KernelShape {
  int32_t x_zero_point;
  std::unique_ptr<Gemm> gemm;
  std::unique_ptr<DirectCache> direct;

  bool run_direct(const uint8_t* x, const ConvGeometry& g, const OutputStage* stage,
                  void* out) const {
    return direct->run(active_kernels().direct_conv, x, g, stage, out, g.batch * g.out_h, g.out_w);
  }

  void run(const uint8_t* x, const ConvGeometry& g, const OutputStage* stage, void* out) const {
    if (run_direct(x, g, stage, out)) return;
    GemmCall call;
    call.m = g.batch * g.out_h * g.out_w;
    call.stage = stage;
    call.c = out;
    call.ldc = out_stride_of(g, out_c);
    Im2col im2col = {x, g, in_c, kh, kw, sh, sw, static_cast<uint8_t>(x_zero_point)};
    GemmRowSource source = {im2col_rows, &im2col, im2col_pack};
    const bool pointwise = kh == 1 && kw == 1 && sh == 1 && sw == 1 && g.pad_top == 0 &&
                           g.pad_left == 0 && g.out_h == g.in_h && g.out_w == g.in_w;
    if (pointwise) {  // the input is A as it is
      call.a = x;
      call.lda = in_c;
    } else {
      call.source = &source;
    }
    run_gemm(*gemm, call);
  }
};

Conv2d::Conv2d(const uint8_t* w, size_t out_c, size_t kh, size_t kw, size_t in_c, size_t stride_h,
               size_t stride_w, const int32_t* w_zero_point, size_t w_zero_point_count,
               int32_t x_zero_point, const int32_t* bias)
    : impl_(std::make_unique<Impl>()) {
  Impl& c = *impl_;
  static_cast<KernelShape&>(c) = {out_c, kh, kw, in_c, stride_h, stride_w};
  c.x_zero_point = x_zero_point;
  // B[k, o] = w[o, k] with k = (ky, kx, c): OHWI transposed.
  const size_t k = kh * kw * in_c;
  std::vector<uint8_t> b(k * out_c);
  for (size_t o = 0; o < out_c; ++o)
    for (size_t i = 0; i < k; ++i) b[i * out_c + o] = w[o * k + i];
  c.gemm = std::make_unique<Gemm>(b.data(), k, out_c, out_c, w_zero_point, w_zero_point_count,
                                  x_zero_point, bias);
  c.direct =
      std::make_unique<DirectCache>(c, w, w_zero_point, w_zero_point_count, x_zero_point, bias);
  if (const DirectConvKernel* direct = active_kernels().direct_conv) c.direct->get(*direct);
}

Conv2d::~Conv2d() = default;

void Conv2d::run(const uint8_t* x, const ConvGeometry& g, int32_t* out) const {
  impl_->run(x, g, nullptr, out);
}

void Conv2d::run(const uint8_t* x, const ConvGeometry& g, const Requantization& requant,
                 uint8_t* out) const {
  impl_->run(x, g, prepare(requant).get(), out);
}

std::unique_ptr<OutputStage> Conv2d::prepare(const Requantization& requant) const {
  return std::make_unique<OutputStage>(requant, impl_->out_c);
}

void Conv2d::run(const uint8_t* x, const ConvGeometry& g, const OutputStage& stage,
                 uint8_t* out) const {
  impl_->run(x, g, &stage, out);
}

// ---------------------------------------------------------------------------
namespace {

struct DeconvShape : KernelShape {
  ConvGeometry g;
};

// Non-overlapping scatter: GEMM row (n, y, x), column (ky, kx, o) goes to
// output pixel (n, y sh + ky - pad_top, x sw + kx - pad_left), channel o.
struct PatchScatter {
  DeconvShape s;
  void* out;
  size_t elem;  // bytes per output element
};

void scatter_patches(const void* ctx, size_t row0, size_t rows, size_t col0, size_t cols,
                     const void* block, size_t ld) {
  const PatchScatter& p = *static_cast<const PatchScatter*>(ctx);
  const DeconvShape& s = p.s;
  const ConvGeometry& g = s.g;
  // With stride == kernel, the kw taps of one kernel row land on adjacent
  // output pixels: GEMM columns [ky kw out_c, (ky + 1) kw out_c) of a row
  // are one contiguous run of the output row y sh + ky - pad_top.
  const size_t run = s.kw * s.out_c, stride = out_stride_of(g, s.out_c);
  const size_t first_ky = col0 / run, last_ky = (col0 + cols - 1) / run;
  size_t n = row0 / (g.in_h * g.in_w), y = row0 / g.in_w % g.in_h, x = row0 % g.in_w;
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* src = static_cast<const uint8_t*>(block) + r * ld * p.elem;
    // Output column of the row's first tap (may be left of the output).
    const ptrdiff_t ox0 = static_cast<ptrdiff_t>(x * s.sw) - static_cast<ptrdiff_t>(g.pad_left);
    const size_t kx_lo = static_cast<size_t>(std::max<ptrdiff_t>(-ox0, 0));
    const size_t kx_hi = static_cast<size_t>(std::clamp<ptrdiff_t>(
        static_cast<ptrdiff_t>(g.out_w) - ox0, 0, static_cast<ptrdiff_t>(s.kw)));
    for (size_t ky = first_ky; ky <= last_ky && kx_lo < kx_hi; ++ky) {
      const size_t fy = y * s.sh + ky;
      if (fy < g.pad_top || fy - g.pad_top >= g.out_h) continue;
      const size_t c_begin = std::max(col0, ky * run + kx_lo * s.out_c);
      const size_t c_end = std::min(col0 + cols, ky * run + kx_hi * s.out_c);
      if (c_begin >= c_end) continue;
      const ptrdiff_t pixel =
          static_cast<ptrdiff_t>((n * g.out_h + fy - g.pad_top) * g.out_w) + ox0;
      uint8_t* row_out =
          static_cast<uint8_t*>(p.out) + pixel * static_cast<ptrdiff_t>(stride * p.elem);
      if (stride == s.out_c) {  // the taps' channels are one run of the output
        copy_bytes(row_out + (c_begin - ky * run) * p.elem, src + (c_begin - col0) * p.elem,
                   (c_end - c_begin) * p.elem);
        continue;
      }
      for (size_t c = c_begin; c < c_end;) {  // tap by tap: the pixels lie apart
        const size_t kx = (c - ky * run) / s.out_c, o = (c - ky * run) % s.out_c;
        const size_t len = std::min(c_end - c, s.out_c - o);
        copy_bytes(row_out + (kx * stride + o) * p.elem, src + (c - col0) * p.elem, len * p.elem);
        c += len;
      }
    }
    if (++x == g.in_w) {
      x = 0;
      if (++y == g.in_h) {
        y = 0;
        ++n;
      }
    }
  }
}

// Overlapping case: output pixel = bias + the sum of the columns landing on
// it. The columns cover input rows [iy0, iy1) of one image; the caller picks
// them so that every contribution to output rows [oy0, oy0 + tasks) is there.
struct Col2im {
  DeconvShape s;
  const int32_t* columns;  // [(iy1 - iy0) in_w, kh kw out_c]
  size_t iy0, iy1, oy0;
  const int32_t* bias;  // [out_c] or null
  int32_t* out;         // the image's output
  size_t stride;        // elements from one output pixel to the next
};

void col2im_row(void* ctx, size_t task) {
  const Col2im& c = *static_cast<const Col2im*>(ctx);
  const DeconvShape& s = c.s;
  const ConvGeometry& g = s.g;
  const size_t oy = c.oy0 + task, fy = oy + g.pad_top;
  const size_t ncols = s.kh * s.kw * s.out_c;
  int32_t* dst = c.out + oy * g.out_w * c.stride;
  for (size_t ox = 0; ox < g.out_w; ++ox, dst += c.stride) {
    // Wrapping sums in uint32: only the final value must fit.
    uint32_t* acc = reinterpret_cast<uint32_t*>(dst);
    for (size_t o = 0; o < s.out_c; ++o) acc[o] = c.bias ? static_cast<uint32_t>(c.bias[o]) : 0u;
    const size_t fx = ox + g.pad_left;
    for (size_t ky = 0; ky < s.kh && ky <= fy; ++ky) {
      if ((fy - ky) % s.sh != 0) continue;
      const size_t iy = (fy - ky) / s.sh;
      if (iy < c.iy0 || iy >= c.iy1) continue;
      for (size_t kx = 0; kx < s.kw && kx <= fx; ++kx) {
        if ((fx - kx) % s.sw != 0) continue;
        const size_t ix = (fx - kx) / s.sw;
        if (ix >= g.in_w) continue;
        const int32_t* col =
            c.columns + ((iy - c.iy0) * g.in_w + ix) * ncols + (ky * s.kw + kx) * s.out_c;
        for (size_t o = 0; o < s.out_c; ++o) acc[o] += static_cast<uint32_t>(col[o]);
      }
    }
  }
}

}  // namespace

struct ConvTranspose2d::Impl : KernelShape {
  bool tiled;                 // stride == kernel: no overlap, bias folded into the GEMM
  std::vector<int32_t> bias;  // [out_c], for the overlapping case (empty: none)
  std::unique_ptr<Gemm> gemm;
  std::unique_ptr<DirectCache> direct;  // tiled only

  DeconvShape shape(const ConvGeometry& g) const { return {{*this}, g}; }

  // The output stage's tables are per GEMM column (ky, kx, o), channel o
  // repeated for every tap (OutputStage: column i uses channel i % count).
  void run_tiled(const uint8_t* x, const ConvGeometry& g, const OutputStage* stage,
                 void* out) const {
    // A path's direct kernel writes each input pixel's patch in place.
    if (direct->run(active_kernels().direct_deconv, x, g, stage, out, g.batch * g.in_h, g.in_w)) {
      return;
    }
    PatchScatter scatter = {shape(g), out, stage ? sizeof(uint8_t) : sizeof(int32_t)};
    GemmBlockSink sink = {scatter_patches, &scatter};
    GemmCall call;
    call.a = x;
    call.m = g.batch * g.in_h * g.in_w;
    call.lda = in_c;
    call.stage = stage;
    call.sink = &sink;
    run_gemm(*gemm, call);
  }

  // One image and one band of output rows at a time: the int32 columns of
  // the input rows a band needs stay within kColumnBudget values (a large
  // kernel at stride 1 would otherwise need kh kw times the output).
  static constexpr size_t kColumnBudget = size_t(4) << 20;

  void run_overlapping(const uint8_t* x, const ConvGeometry& g, const OutputStage* stage,
                       void* out) const {
    const Requantization* rq = stage != nullptr ? &stage->requant() : nullptr;
    const ChannelParams* tables = stage != nullptr ? &stage->tables().tables.params() : nullptr;
    const size_t ncols = kh * kw * out_c, row_values = g.in_w * ncols;
    const size_t pixels = g.out_h * g.out_w, out_values = pixels * out_c;
    const size_t stride = out_stride_of(g, out_c);
    // Output rows per band: about as many input rows as fit the budget.
    const size_t in_rows = std::max<size_t>(1, kColumnBudget / row_values);
    const size_t band =
        std::max<size_t>(1, in_rows > (kh - 1) / sh ? (in_rows - (kh - 1) / sh) * sh : sh);
    std::vector<int32_t> columns, acc(rq != nullptr ? out_values : 0);
    // With a pixel stride the output stage writes here first.
    std::vector<uint8_t> bytes(rq != nullptr && stride != out_c ? out_values : 0);
    ConvGeometry one = g;
    one.batch = 1;
    for (size_t b = 0; b < g.batch; ++b) {
      const uint8_t* image = x + b * g.in_h * g.in_w * in_c;
      int32_t* dst = rq != nullptr ? acc.data() : static_cast<int32_t*>(out) + b * pixels * stride;
      const size_t dst_stride = rq != nullptr ? out_c : stride;
      for (size_t oy0 = 0; oy0 < g.out_h; oy0 += band) {
        const size_t rows = std::min(band, g.out_h - oy0);
        // Input rows reaching full-output rows [fy0, fy1]: iy sh + ky in range.
        const size_t fy0 = oy0 + g.pad_top, fy1 = fy0 + rows - 1;
        const size_t iy0 = fy0 + 1 > kh ? (fy0 + 1 - kh + sh - 1) / sh : 0;
        const size_t iy1 = std::min(g.in_h, fy1 / sh + 1);
        if (iy0 < iy1) {
          columns.resize((iy1 - iy0) * row_values);
          gemm->run(image + iy0 * g.in_w * in_c, (iy1 - iy0) * g.in_w, in_c, columns.data(), ncols);
        }
        Col2im c2i = {shape(one), columns.data(),
                      iy0,        std::max(iy0, iy1),
                      oy0,        bias.empty() ? nullptr : bias.data(),
                      dst,        dst_stride};
        // Each output value adds the columns of about ceil(kh / sh) ceil(kw /
        // sw) taps.
        const size_t taps = ((kh + sh - 1) / sh) * ((kw + sw - 1) / sw);
        parallel_for(rows, col2im_row, &c2i, rows * g.out_w * out_c * (taps + 1));
      }
      if (rq != nullptr) {
        uint8_t* image_out = static_cast<uint8_t*>(out) + b * pixels * stride;
        requantize_u8(dst, out_values, tables->multiplier, tables->shift,
                      rq->count == 1 ? 1 : out_c, rq->zero_point, rq->qmin, rq->qmax,
                      stride == out_c ? image_out : bytes.data());
        if (stride != out_c) {
          for (size_t i = 0; i < pixels; ++i) {
            copy_bytes(image_out + i * stride, bytes.data() + i * out_c, out_c);
          }
        }
      }
    }
  }
};

ConvTranspose2d::ConvTranspose2d(const uint8_t* w, size_t out_c, size_t kh, size_t kw, size_t in_c,
                                 size_t stride_h, size_t stride_w, const int32_t* w_zero_point,
                                 size_t w_zero_point_count, int32_t x_zero_point,
                                 const int32_t* bias)
    : impl_(std::make_unique<Impl>()) {
  Impl& c = *impl_;
  static_cast<KernelShape&>(c) = {out_c, kh, kw, in_c, stride_h, stride_w};
  c.tiled = stride_h == kh && stride_w == kw;
  // B[c, (ky, kx, o)] = w[o, ky, kx, c].
  const size_t taps = kh * kw, n = taps * out_c;
  std::vector<uint8_t> b(in_c * n);
  for (size_t o = 0; o < out_c; ++o)
    for (size_t t = 0; t < taps; ++t)
      for (size_t i = 0; i < in_c; ++i) b[i * n + t * out_c + o] = w[(o * taps + t) * in_c + i];
  const std::vector<int32_t> zp = repeat_per_column(w_zero_point, w_zero_point_count, n);
  std::vector<int32_t> column_bias;
  if (bias != nullptr) {
    if (c.tiled) {
      column_bias = repeat_per_column(bias, out_c, n);
    } else {
      c.bias.assign(bias, bias + out_c);
    }
  }
  c.gemm = std::make_unique<Gemm>(b.data(), in_c, n, n, zp.data(), n, x_zero_point,
                                  column_bias.empty() ? nullptr : column_bias.data());
  if (c.tiled) {
    c.direct =
        std::make_unique<DirectCache>(c, w, w_zero_point, w_zero_point_count, x_zero_point, bias);
    if (const DirectConvKernel* direct = active_kernels().direct_deconv) c.direct->get(*direct);
  }
}

ConvTranspose2d::~ConvTranspose2d() = default;

void ConvTranspose2d::run(const uint8_t* x, const ConvGeometry& g, int32_t* out) const {
  if (impl_->tiled) {
    impl_->run_tiled(x, g, nullptr, out);
  } else {
    impl_->run_overlapping(x, g, nullptr, out);
  }
}

void ConvTranspose2d::run(const uint8_t* x, const ConvGeometry& g, const Requantization& requant,
                          uint8_t* out) const {
  run(x, g, *prepare(requant), out);
}

// Tiled: one column per (tap, channel) of the GEMM; overlapping: the
// elementwise requantize over channels.
std::unique_ptr<OutputStage> ConvTranspose2d::prepare(const Requantization& requant) const {
  const Impl& c = *impl_;
  return std::make_unique<OutputStage>(requant, c.tiled ? c.kh * c.kw * c.out_c : c.out_c);
}

void ConvTranspose2d::run(const uint8_t* x, const ConvGeometry& g, const OutputStage& stage,
                          uint8_t* out) const {
  if (impl_->tiled) {
    impl_->run_tiled(x, g, &stage, out);
  } else {
    impl_->run_overlapping(x, g, &stage, out);
  }
}

}  // namespace lowp
