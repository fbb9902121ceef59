// lowp::Plan (lowp/plan.h): the steps of a planned integer graph and the
// pool of arenas its runs lease.
#include "lowp/plan.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include "graph_kernels.h"

namespace lowp {

struct Plan::Step {
  virtual ~Step() = default;
  virtual void run(uint8_t* arena) const = 0;
};

namespace {

using Step = Plan::Step;

// Conv2d or ConvTranspose2d with its output stage.
template <typename Op>
struct ConvStep : Step {
  std::shared_ptr<const Op> op;
  std::shared_ptr<const OutputStage> stage;
  size_t in, out;
  ConvGeometry g;
  void run(uint8_t* arena) const override { op->run(arena + in, g, *stage, arena + out); }
};

struct FullyConnectedStep : Step {
  std::shared_ptr<const Gemm> op;
  size_t in, rows, acc, out;
  std::vector<double> real;
  int32_t zero_point, qmin, qmax;
  void run(uint8_t* arena) const override {
    int32_t* c = reinterpret_cast<int32_t*>(arena + acc);
    op->run(arena + in, rows, op->k(), c, op->n());
    graph::requantize_double_u8(c, rows, op->n(), real.data(), real.size(), zero_point, qmin, qmax,
                                arena + out);
  }
};

struct PoolStep : Step {
  graph::PoolShape shape;
  bool average;
  int32_t offset;
  uint8_t qmin, qmax;
  size_t in, out;
  void run(uint8_t* arena) const override {
    if (average) {
      graph::avg_pool_u8(arena + in, shape, offset, qmin, qmax, arena + out);
    } else {
      graph::max_pool_u8(arena + in, shape, qmin, qmax, arena + out);
    }
  }
};

struct CopyStep : Step {
  PlanView src, dst;
  std::vector<size_t> shape;
  size_t elem;
  std::vector<uint8_t> lut;
  void run(uint8_t* arena) const override {
    graph::copy_nd(arena + src.offset, src.strides.data(), arena + dst.offset, dst.strides.data(),
                   shape.data(), shape.size(), elem, lut.empty() ? nullptr : lut.data());
  }
};

struct FillStep : Step {
  size_t offset, bytes;
  uint8_t value;
  void run(uint8_t* arena) const override { std::memset(arena + offset, value, bytes); }
};

struct BinaryLutStep : Step {
  PlanView a, b, dst;
  std::vector<size_t> shape;
  std::vector<uint8_t> lut;
  void run(uint8_t* arena) const override {
    graph::binary_lut_nd(arena + a.offset, a.strides.data(), arena + b.offset, b.strides.data(),
                         arena + dst.offset, dst.strides.data(), shape.data(), shape.size(),
                         lut.data());
  }
};

struct QuantizeStep : Step {
  size_t in, n, out;
  float scale;
  int32_t zero_point, qmin, qmax, offset;
  void run(uint8_t* arena) const override {
    graph::quantize_f32_tflite(reinterpret_cast<const float*>(arena + in), n, scale, zero_point,
                               qmin, qmax, offset, arena + out);
  }
};

struct DequantizeStep : Step {
  size_t in, n, out;
  std::vector<float> lut;
  void run(uint8_t* arena) const override {
    graph::lut_u8_to_f32(arena + in, n, lut.data(), reinterpret_cast<float*>(arena + out));
  }
};

struct Io {
  size_t offset, bytes;
  uint8_t mask;
};

struct Constant {
  size_t offset;
  std::vector<uint8_t> bytes;
};

void copy_masked(const uint8_t* src, size_t n, uint8_t mask, uint8_t* dst) {
  if (mask == 0) {
    std::memcpy(dst, src, n);
    return;
  }
  for (size_t i = 0; i < n; ++i) dst[i] = static_cast<uint8_t>(src[i] ^ mask);
}

struct FreeAligned {
  void operator()(uint8_t* p) const { std::free(p); }
};
using ArenaBuffer = std::unique_ptr<uint8_t, FreeAligned>;

[[noreturn]] void fail(const std::string& what) { throw std::invalid_argument("plan: " + what); }

}  // namespace

struct Plan::Impl {
  size_t arena_bytes = 0;
  std::vector<Io> inputs, outputs;
  std::vector<Constant> constants;
  std::vector<std::unique_ptr<Step>> steps;

  mutable std::mutex mutex;
  mutable std::vector<ArenaBuffer> free_arenas;

  // An offset range must lie inside the arena.
  void check(size_t offset, size_t bytes, const char* what) const {
    if (offset > arena_bytes || bytes > arena_bytes - offset) {
      fail(std::string(what) + " lies outside the arena");
    }
  }

  // The furthest element a view reaches (and the nearest, which must not be
  // before the arena's start), for `shape`.
  void check_view(const PlanView& v, const std::vector<size_t>& shape, size_t elem,
                  const char* what) const {
    if (shape.empty() || shape.size() > kPlanMaxRank || v.strides.size() != shape.size()) {
      fail(std::string(what) + ": rank must be 1 to 6, one stride per dimension");
    }
    ptrdiff_t lo = 0, hi = 0;
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] == 0) return;  // nothing is touched
      const ptrdiff_t span = v.strides[d] * static_cast<ptrdiff_t>(shape[d] - 1);
      (span < 0 ? lo : hi) += span;
    }
    const ptrdiff_t start = static_cast<ptrdiff_t>(v.offset) + lo * static_cast<ptrdiff_t>(elem);
    const ptrdiff_t end =
        static_cast<ptrdiff_t>(v.offset) + (hi + 1) * static_cast<ptrdiff_t>(elem);
    if (start < 0 || end > static_cast<ptrdiff_t>(arena_bytes)) {
      fail(std::string(what) + " lies outside the arena");
    }
  }

  ArenaBuffer lease() const {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (!free_arenas.empty()) {
        ArenaBuffer a = std::move(free_arenas.back());
        free_arenas.pop_back();
        return a;
      }
    }
    const size_t bytes = (std::max<size_t>(arena_bytes, 1) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, bytes);
    if (p == nullptr) throw std::bad_alloc();
    return ArenaBuffer(static_cast<uint8_t*>(p));
  }

  void give_back(ArenaBuffer a) const {
    std::lock_guard<std::mutex> lock(mutex);
    free_arenas.push_back(std::move(a));
  }
};

Plan::Plan() : impl_(std::make_unique<Impl>()) {}
Plan::~Plan() = default;

void Plan::set_arena_bytes(size_t bytes) {
  if (!impl_->steps.empty() || !impl_->inputs.empty() || !impl_->outputs.empty() ||
      !impl_->constants.empty()) {
    fail("the arena is sized before any step is added");
  }
  impl_->arena_bytes = bytes;
}
size_t Plan::arena_bytes() const { return impl_->arena_bytes; }
size_t Plan::steps() const { return impl_->steps.size(); }
size_t Plan::inputs() const { return impl_->inputs.size(); }
size_t Plan::outputs() const { return impl_->outputs.size(); }
size_t Plan::input_bytes(size_t i) const { return impl_->inputs.at(i).bytes; }
size_t Plan::output_bytes(size_t i) const { return impl_->outputs.at(i).bytes; }

void Plan::add_input(size_t offset, size_t bytes, uint8_t xor_mask) {
  impl_->check(offset, bytes, "an input");
  impl_->inputs.push_back({offset, bytes, xor_mask});
}

void Plan::add_output(size_t offset, size_t bytes, uint8_t xor_mask) {
  impl_->check(offset, bytes, "an output");
  impl_->outputs.push_back({offset, bytes, xor_mask});
}

void Plan::add_constant(size_t offset, std::vector<uint8_t> bytes) {
  impl_->check(offset, bytes.size(), "a constant");
  impl_->constants.push_back({offset, std::move(bytes)});
}

namespace {
void check_conv(const Plan::Impl& p, size_t in_c, size_t out_c, size_t in, const ConvGeometry& g,
                size_t out) {
  p.check(in, g.batch * g.in_h * g.in_w * in_c, "a convolution's input");
  const size_t stride = g.out_stride == 0 ? out_c : g.out_stride;
  if (stride < out_c) fail("a convolution's output pixel stride is below its channels");
  const size_t pixels = g.batch * g.out_h * g.out_w;
  p.check(out, pixels == 0 ? 0 : (pixels - 1) * stride + out_c, "a convolution's output");
}
}  // namespace

namespace {
template <typename Op>
std::unique_ptr<Step> conv_step(const Plan::Impl& p, std::shared_ptr<const Op> op,
                                std::shared_ptr<const OutputStage> stage, size_t in_c, size_t out_c,
                                size_t in, const ConvGeometry& g, size_t out) {
  check_conv(p, in_c, out_c, in, g, out);
  auto s = std::make_unique<ConvStep<Op>>();
  s->op = std::move(op);
  s->stage = std::move(stage);
  s->in = in;
  s->out = out;
  s->g = g;
  return s;
}
}  // namespace

void Plan::add_conv2d(std::shared_ptr<const Conv2d> op, std::shared_ptr<const OutputStage> stage,
                      size_t in_c, size_t out_c, size_t in, const ConvGeometry& g, size_t out) {
  impl_->steps.push_back(
      conv_step(*impl_, std::move(op), std::move(stage), in_c, out_c, in, g, out));
}

void Plan::add_conv_transpose2d(std::shared_ptr<const ConvTranspose2d> op,
                                std::shared_ptr<const OutputStage> stage, size_t in_c, size_t out_c,
                                size_t in, const ConvGeometry& g, size_t out) {
  impl_->steps.push_back(
      conv_step(*impl_, std::move(op), std::move(stage), in_c, out_c, in, g, out));
}

void Plan::add_fully_connected(std::shared_ptr<const Gemm> op, size_t in, size_t rows, size_t acc,
                               std::vector<double> real, int32_t zero_point, int32_t qmin,
                               int32_t qmax, size_t out) {
  impl_->check(in, rows * op->k(), "a fully connected input");
  impl_->check(acc, rows * op->n() * sizeof(int32_t), "a fully connected accumulator");
  impl_->check(out, rows * op->n(), "a fully connected output");
  if (acc % alignof(int32_t) != 0) fail("a fully connected accumulator must be aligned");
  if (real.size() != 1 && real.size() != op->n()) fail("real must have 1 or N values");
  auto s = std::make_unique<FullyConnectedStep>();
  s->op = std::move(op);
  s->in = in;
  s->rows = rows;
  s->acc = acc;
  s->out = out;
  s->real = std::move(real);
  s->zero_point = zero_point;
  s->qmin = qmin;
  s->qmax = qmax;
  impl_->steps.push_back(std::move(s));
}

namespace {
std::unique_ptr<PoolStep> pool_step(const Plan::Impl& p, const Plan::Pool& q, size_t in, size_t out,
                                    uint8_t qmin, uint8_t qmax) {
  if (q.kh == 0 || q.kw == 0 || q.stride_h == 0 || q.stride_w == 0) {
    fail("a pooling window and stride must be positive");
  }
  // Every window must hold at least one input position.
  if (q.out_h > 0 && (q.pad_top >= q.kh || (q.out_h - 1) * q.stride_h >= q.pad_top + q.in_h)) {
    fail("a pooling window lies outside the input");
  }
  if (q.out_w > 0 && (q.pad_left >= q.kw || (q.out_w - 1) * q.stride_w >= q.pad_left + q.in_w)) {
    fail("a pooling window lies outside the input");
  }
  p.check(in, q.batch * q.in_h * q.in_w * q.channels, "a pooling input");
  if (q.out_stride < q.channels) fail("a pooling output's pixel stride is below its channels");
  const size_t pixels = q.batch * q.out_h * q.out_w;
  p.check(out, pixels == 0 ? 0 : (pixels - 1) * q.out_stride + q.channels, "a pooling output");
  auto s = std::make_unique<PoolStep>();
  s->shape = {q.batch,    q.in_h,    q.in_w,     q.channels, q.kh,    q.kw,        q.stride_h,
              q.stride_w, q.pad_top, q.pad_left, q.out_h,    q.out_w, q.out_stride};
  s->in = in;
  s->out = out;
  s->qmin = qmin;
  s->qmax = qmax;
  s->offset = 0;
  s->average = false;
  return s;
}
}  // namespace

void Plan::add_max_pool(const Pool& p, size_t in, size_t out, uint8_t qmin, uint8_t qmax) {
  impl_->steps.push_back(pool_step(*impl_, p, in, out, qmin, qmax));
}

void Plan::add_avg_pool(const Pool& p, int32_t offset, size_t in, size_t out, uint8_t qmin,
                        uint8_t qmax) {
  auto s = pool_step(*impl_, p, in, out, qmin, qmax);
  s->average = true;
  s->offset = offset;
  impl_->steps.push_back(std::move(s));
}

void Plan::add_copy(const PlanView& src, const PlanView& dst, const std::vector<size_t>& shape,
                    size_t elem_bytes, std::vector<uint8_t> lut) {
  if (elem_bytes == 0 || (!lut.empty() && (elem_bytes != 1 || lut.size() != 256))) {
    fail("a copy's table needs one-byte elements and 256 entries");
  }
  impl_->check_view(src, shape, elem_bytes, "a copy's source");
  impl_->check_view(dst, shape, elem_bytes, "a copy's destination");
  auto s = std::make_unique<CopyStep>();
  s->src = src;
  s->dst = dst;
  s->shape = shape;
  s->elem = elem_bytes;
  s->lut = std::move(lut);
  impl_->steps.push_back(std::move(s));
}

void Plan::add_fill(size_t offset, size_t bytes, uint8_t value) {
  impl_->check(offset, bytes, "a fill");
  auto s = std::make_unique<FillStep>();
  s->offset = offset;
  s->bytes = bytes;
  s->value = value;
  impl_->steps.push_back(std::move(s));
}

void Plan::add_binary_lut(const PlanView& a, const PlanView& b, const PlanView& dst,
                          const std::vector<size_t>& shape, std::vector<uint8_t> lut) {
  if (lut.size() != 65536) fail("a binary table has 65536 entries");
  impl_->check_view(a, shape, 1, "a binary op's first input");
  impl_->check_view(b, shape, 1, "a binary op's second input");
  impl_->check_view(dst, shape, 1, "a binary op's output");
  auto s = std::make_unique<BinaryLutStep>();
  s->a = a;
  s->b = b;
  s->dst = dst;
  s->shape = shape;
  s->lut = std::move(lut);
  impl_->steps.push_back(std::move(s));
}

void Plan::add_quantize_f32(size_t in, size_t n, float scale, int32_t zero_point, int32_t qmin,
                            int32_t qmax, int32_t offset, size_t out) {
  impl_->check(in, n * sizeof(float), "a quantize input");
  impl_->check(out, n, "a quantize output");
  if (in % alignof(float) != 0) fail("a float input must be aligned");
  auto s = std::make_unique<QuantizeStep>();
  s->in = in;
  s->n = n;
  s->out = out;
  s->scale = scale;
  s->zero_point = zero_point;
  s->qmin = qmin;
  s->qmax = qmax;
  s->offset = offset;
  impl_->steps.push_back(std::move(s));
}

void Plan::add_dequantize(size_t in, size_t n, std::vector<float> lut, size_t out) {
  if (lut.size() != 256) fail("a dequantize table has 256 entries");
  impl_->check(in, n, "a dequantize input");
  impl_->check(out, n * sizeof(float), "a dequantize output");
  if (out % alignof(float) != 0) fail("a float output must be aligned");
  auto s = std::make_unique<DequantizeStep>();
  s->in = in;
  s->n = n;
  s->out = out;
  s->lut = std::move(lut);
  impl_->steps.push_back(std::move(s));
}

void Plan::run(const void* const* inputs, void* const* outputs, double* step_seconds,
               uint8_t* arena) const {
  const Impl& p = *impl_;
  ArenaBuffer leased;
  if (arena == nullptr) {
    leased = p.lease();
    arena = leased.get();
  }
  for (const Constant& c : p.constants) {
    std::memcpy(arena + c.offset, c.bytes.data(), c.bytes.size());
  }
  for (size_t i = 0; i < p.inputs.size(); ++i) {
    const Io& io = p.inputs[i];
    copy_masked(static_cast<const uint8_t*>(inputs[i]), io.bytes, io.mask, arena + io.offset);
  }
  // Under an InterruptScope (lowp.h) the run stops between steps once it
  // is interrupted (the kernels inside a step poll it themselves).
  InterruptScope* scope = InterruptScope::current();
  using Clock = std::chrono::steady_clock;
  for (size_t i = 0; i < p.steps.size(); ++i) {
    if (scope != nullptr && scope->stop()) break;
    if (step_seconds == nullptr) {
      p.steps[i]->run(arena);
      continue;
    }
    const auto t0 = Clock::now();
    p.steps[i]->run(arena);
    step_seconds[i] = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  for (size_t i = 0; i < p.outputs.size(); ++i) {
    const Io& io = p.outputs[i];
    copy_masked(arena + io.offset, io.bytes, io.mask, static_cast<uint8_t*>(outputs[i]));
  }
  if (leased) p.give_back(std::move(leased));
}

}  // namespace lowp
