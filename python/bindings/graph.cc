// lowp._core's integer-graph part: the native operators of a planned graph
// (packed once, shared by the plans of several batch sizes) and lowp::Plan.
// python/lowp/graph validates the graph and lays out the arena; the checks
// here (and in plan.cc) are a last line of defence against a crash.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.h"
#include "lowp/lowp.h"
#include "lowp/plan.h"

namespace py = pybind11;

namespace {

using lowp_bindings::check_channels;
using lowp_bindings::check_operands;
using lowp_bindings::require;
using lowp_bindings::run_interruptible;
template <typename T>
using CArray = lowp_bindings::CArray<T>;

// A requantization's tables, checked, for an operator of `channels` outputs.
lowp::Requantization requant_of(const CArray<int32_t>& m, const CArray<int32_t>& s, int zero_point,
                                int qmin, int qmax, size_t channels) {
  check_channels(m, s);
  const size_t count = static_cast<size_t>(m.size());
  require(count == 1 || count == channels, "multiplier and shift must have 1 or out_c values");
  require(0 <= qmin && qmin <= qmax && qmax <= 255, "need 0 <= qmin <= qmax <= 255");
  require(0 <= zero_point && zero_point <= 255, "zero_point must be in [0, 255]");
  return {m.data(), s.data(), count, zero_point, qmin, qmax};
}

// Conv2d or ConvTranspose2d with its output stage, for plans.
template <typename Op>
struct GraphConv {
  std::shared_ptr<const Op> op;
  std::shared_ptr<const lowp::OutputStage> stage;
  lowp_bindings::ConvShape shape;

  GraphConv(const CArray<uint8_t>& w, int stride_h, int stride_w,
            const CArray<int32_t>& w_zero_point, int x_zero_point,
            const std::optional<CArray<int32_t>>& bias, const CArray<int32_t>& multiplier,
            const CArray<int32_t>& shift, int zero_point, int qmin, int qmax) {
    shape = lowp_bindings::check_conv_weights(w, stride_h, stride_w,
                                              std::is_same<Op, lowp::ConvTranspose2d>::value);
    const lowp_bindings::ConvShape& c = shape;
    check_operands(w_zero_point, x_zero_point, bias, c.out_c, "w", "x", "Cout");
    const size_t zp_count = static_cast<size_t>(w_zero_point.size());
    const lowp::Requantization rq = requant_of(multiplier, shift, zero_point, qmin, qmax, c.out_c);
    py::gil_scoped_release release;
    auto made =
        std::make_shared<Op>(w.data(), c.out_c, c.kh, c.kw, c.in_c, c.sh, c.sw, w_zero_point.data(),
                             zp_count, x_zero_point, bias ? bias->data() : nullptr);
    stage = made->prepare(rq);
    op = std::move(made);
  }
};

struct GraphGemm {
  std::shared_ptr<const lowp::Gemm> op;
  GraphGemm(const CArray<uint8_t>& b, const CArray<int32_t>& b_zero_point, int a_zero_point,
            const std::optional<CArray<int32_t>>& bias) {
    require(b.ndim() == 2 && b.shape(0) >= 1 && b.shape(1) >= 1, "b must be 2-D [K, N]");
    const size_t k = static_cast<size_t>(b.shape(0)), n = static_cast<size_t>(b.shape(1));
    require(k <= lowp::kMaxGemmK, "K too large for an exact int32 result");
    check_operands(b_zero_point, a_zero_point, bias, n, "b", "a", "N");
    const size_t zp_count = static_cast<size_t>(b_zero_point.size());
    py::gil_scoped_release release;
    op = std::make_shared<lowp::Gemm>(b.data(), k, n, n, b_zero_point.data(), zp_count,
                                      a_zero_point, bias ? bias->data() : nullptr);
  }
};

lowp::ConvGeometry geometry(size_t batch, size_t in_h, size_t in_w, size_t pad_top, size_t pad_left,
                            size_t out_h, size_t out_w, size_t out_stride) {
  require(batch >= 1 && in_h >= 1 && in_w >= 1 && out_h >= 1 && out_w >= 1,
          "a convolution's sizes must be positive");
  return {batch, in_h, in_w, pad_top, pad_left, out_h, out_w, out_stride};
}

lowp::PlanView view(size_t offset, const std::vector<ptrdiff_t>& strides) {
  lowp::PlanView v;
  v.offset = offset;
  v.strides = strides;
  return v;
}

std::vector<uint8_t> table(const std::optional<CArray<uint8_t>>& lut) {
  if (!lut) return {};
  return std::vector<uint8_t>(lut->data(), lut->data() + lut->size());
}

// A plan and the Python-side run: inputs are C-contiguous arrays of the
// plan's input sizes (dtypes are the Python layer's business), outputs
// writeable C-contiguous arrays of its output sizes.
struct PyPlan {
  lowp::Plan plan;

  void run(const std::vector<py::array>& inputs, const std::vector<py::array>& outputs,
           const std::optional<py::array>& seconds, const std::optional<py::array>& arena) {
    require(inputs.size() == plan.inputs(), "run: wrong number of inputs");
    require(outputs.size() == plan.outputs(), "run: wrong number of outputs");
    std::vector<const void*> in(inputs.size());
    std::vector<void*> out(outputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      const py::array& a = inputs[i];
      require((a.flags() & py::array::c_style) &&
                  static_cast<size_t>(a.nbytes()) == plan.input_bytes(i),
              "run: input " + std::to_string(i) + " has the wrong size or layout");
      in[i] = a.data();
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
      py::array a = outputs[i];
      require((a.flags() & py::array::c_style) && a.writeable() &&
                  static_cast<size_t>(a.nbytes()) == plan.output_bytes(i),
              "run: output " + std::to_string(i) + " has the wrong size or layout");
      out[i] = a.mutable_data();
    }
    double* t = nullptr;
    if (seconds) {
      py::array s = *seconds;
      require(s.dtype().equal(py::dtype::of<double>()) && (s.flags() & py::array::c_style) &&
                  s.writeable() && static_cast<size_t>(s.size()) == plan.steps(),
              "run: seconds must be a float64 array of one value per step");
      t = static_cast<double*>(s.mutable_data());
    }
    uint8_t* base = nullptr;
    if (arena) {
      py::array a = *arena;
      require((a.flags() & py::array::c_style) && a.writeable() &&
                  static_cast<size_t>(a.nbytes()) >= plan.arena_bytes(),
              "run: arena must be a writeable C-contiguous array of arena_bytes bytes");
      base = static_cast<uint8_t*>(a.mutable_data());
    }
    run_interruptible([&] { plan.run(in.data(), out.data(), t, base); });
  }
};

}  // namespace

void bind_graph(py::module_& m) {
  using Conv = GraphConv<lowp::Conv2d>;
  using Deconv = GraphConv<lowp::ConvTranspose2d>;
  const auto conv_args = [](auto& cls) {
    cls.def(py::init<const CArray<uint8_t>&, int, int, const CArray<int32_t>&, int,
                     const std::optional<CArray<int32_t>>&, const CArray<int32_t>&,
                     const CArray<int32_t>&, int, int, int>(),
            py::arg("w"), py::arg("stride_h"), py::arg("stride_w"), py::arg("w_zero_point"),
            py::arg("x_zero_point"), py::arg("bias"), py::arg("multiplier"), py::arg("shift"),
            py::arg("zero_point"), py::arg("qmin"), py::arg("qmax"));
  };
  py::class_<Conv> conv(m, "GraphConv2d");
  conv_args(conv);
  py::class_<Deconv> deconv(m, "GraphConvTranspose2d");
  conv_args(deconv);
  py::class_<GraphGemm>(m, "GraphGemm")
      .def(py::init<const CArray<uint8_t>&, const CArray<int32_t>&, int,
                    const std::optional<CArray<int32_t>>&>(),
           py::arg("b"), py::arg("b_zero_point"), py::arg("a_zero_point"), py::arg("bias"));

  py::class_<PyPlan>(m, "Plan")
      .def(py::init<>())
      .def_property(
          "arena_bytes", [](const PyPlan& p) { return p.plan.arena_bytes(); },
          [](PyPlan& p, size_t bytes) { p.plan.set_arena_bytes(bytes); })
      .def_property_readonly("steps", [](const PyPlan& p) { return p.plan.steps(); })
      .def(
          "add_input",
          [](PyPlan& p, size_t offset, size_t bytes, uint8_t mask) {
            p.plan.add_input(offset, bytes, mask);
          },
          py::arg("offset"), py::arg("bytes"), py::arg("xor_mask"))
      .def(
          "add_output",
          [](PyPlan& p, size_t offset, size_t bytes, uint8_t mask) {
            p.plan.add_output(offset, bytes, mask);
          },
          py::arg("offset"), py::arg("bytes"), py::arg("xor_mask"))
      .def(
          "add_constant",
          [](PyPlan& p, size_t offset, const CArray<uint8_t>& bytes) {
            p.plan.add_constant(offset, table(bytes));
          },
          py::arg("offset"), py::arg("bytes"))
      .def(
          "add_conv2d",
          [](PyPlan& p, const Conv& c, size_t in, size_t batch, size_t in_h, size_t in_w,
             size_t pad_top, size_t pad_left, size_t out_h, size_t out_w, size_t out,
             size_t out_stride) {
            p.plan.add_conv2d(
                c.op, c.stage, c.shape.in_c, c.shape.out_c, in,
                geometry(batch, in_h, in_w, pad_top, pad_left, out_h, out_w, out_stride), out);
          },
          py::arg("op"), py::arg("input"), py::arg("batch"), py::arg("in_h"), py::arg("in_w"),
          py::arg("pad_top"), py::arg("pad_left"), py::arg("out_h"), py::arg("out_w"),
          py::arg("output"), py::arg("out_stride"))
      .def(
          "add_conv_transpose2d",
          [](PyPlan& p, const Deconv& c, size_t in, size_t batch, size_t in_h, size_t in_w,
             size_t crop_top, size_t crop_left, size_t out_h, size_t out_w, size_t out,
             size_t out_stride) {
            // Every output pixel lies in the full output (or, for "same"
            // with a kernel smaller than the stride, in the in * stride extent).
            const auto extent = [](size_t n, size_t k, size_t s) {
              return std::max((n - 1) * s + k, n * s);
            };
            require(in_h >= 1 && in_w >= 1 &&
                        crop_top + out_h <= extent(in_h, c.shape.kh, c.shape.sh) &&
                        crop_left + out_w <= extent(in_w, c.shape.kw, c.shape.sw),
                    "the output lies outside the transposed convolution's full output");
            p.plan.add_conv_transpose2d(
                c.op, c.stage, c.shape.in_c, c.shape.out_c, in,
                geometry(batch, in_h, in_w, crop_top, crop_left, out_h, out_w, out_stride), out);
          },
          py::arg("op"), py::arg("input"), py::arg("batch"), py::arg("in_h"), py::arg("in_w"),
          py::arg("crop_top"), py::arg("crop_left"), py::arg("out_h"), py::arg("out_w"),
          py::arg("output"), py::arg("out_stride"))
      .def(
          "add_fully_connected",
          [](PyPlan& p, const GraphGemm& g, size_t in, size_t rows, size_t acc,
             const CArray<double>& real, int zero_point, int qmin, int qmax, size_t out) {
            require(0 <= qmin && qmin <= qmax && qmax <= 255, "need 0 <= qmin <= qmax <= 255");
            p.plan.add_fully_connected(g.op, in, rows, acc,
                                       std::vector<double>(real.data(), real.data() + real.size()),
                                       zero_point, qmin, qmax, out);
          },
          py::arg("op"), py::arg("input"), py::arg("rows"), py::arg("acc"), py::arg("real"),
          py::arg("zero_point"), py::arg("qmin"), py::arg("qmax"), py::arg("output"))
      .def(
          "add_pool",
          [](PyPlan& p, size_t out_stride, bool average, int offset, size_t batch, size_t in_h,
             size_t in_w, size_t channels, size_t kh, size_t kw, size_t stride_h, size_t stride_w,
             size_t pad_top, size_t pad_left, size_t out_h, size_t out_w, size_t in, size_t out,
             uint8_t qmin, uint8_t qmax) {
            const lowp::Plan::Pool q = {batch, in_h,     in_w,      channels, kh,
                                        kw,    stride_h, stride_w,  pad_top,  pad_left,
                                        out_h, out_w,    out_stride};
            if (average) {
              p.plan.add_avg_pool(q, offset, in, out, qmin, qmax);
            } else {
              p.plan.add_max_pool(q, in, out, qmin, qmax);
            }
          },
          py::arg("out_stride"), py::arg("average"), py::arg("offset"), py::arg("batch"),
          py::arg("in_h"), py::arg("in_w"), py::arg("channels"), py::arg("kh"), py::arg("kw"),
          py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_top"), py::arg("pad_left"),
          py::arg("out_h"), py::arg("out_w"), py::arg("input"), py::arg("output"), py::arg("qmin"),
          py::arg("qmax"))
      .def(
          "add_copy",
          [](PyPlan& p, size_t src, const std::vector<ptrdiff_t>& src_strides, size_t dst,
             const std::vector<ptrdiff_t>& dst_strides, const std::vector<size_t>& shape,
             size_t elem_bytes, const std::optional<CArray<uint8_t>>& lut) {
            p.plan.add_copy(view(src, src_strides), view(dst, dst_strides), shape, elem_bytes,
                            table(lut));
          },
          py::arg("src"), py::arg("src_strides"), py::arg("dst"), py::arg("dst_strides"),
          py::arg("shape"), py::arg("elem_bytes"), py::arg("lut"))
      .def(
          "add_fill",
          [](PyPlan& p, size_t offset, size_t bytes, uint8_t value) {
            p.plan.add_fill(offset, bytes, value);
          },
          py::arg("offset"), py::arg("bytes"), py::arg("value"))
      .def(
          "add_binary_lut",
          [](PyPlan& p, size_t a, const std::vector<ptrdiff_t>& a_strides, size_t b,
             const std::vector<ptrdiff_t>& b_strides, size_t dst,
             const std::vector<ptrdiff_t>& dst_strides, const std::vector<size_t>& shape,
             const CArray<uint8_t>& lut) {
            p.plan.add_binary_lut(view(a, a_strides), view(b, b_strides), view(dst, dst_strides),
                                  shape, table(lut));
          },
          py::arg("a"), py::arg("a_strides"), py::arg("b"), py::arg("b_strides"), py::arg("dst"),
          py::arg("dst_strides"), py::arg("shape"), py::arg("lut"))
      .def(
          "add_quantize_f32",
          [](PyPlan& p, size_t in, size_t n, float scale, int zero_point, int qmin, int qmax,
             int offset, size_t out) {
            require(scale > 0.0f && std::isfinite(scale), "scale must be finite and > 0");
            p.plan.add_quantize_f32(in, n, scale, zero_point, qmin, qmax, offset, out);
          },
          py::arg("input"), py::arg("n"), py::arg("scale"), py::arg("zero_point"), py::arg("qmin"),
          py::arg("qmax"), py::arg("offset"), py::arg("output"))
      .def(
          "add_dequantize",
          [](PyPlan& p, size_t in, size_t n, const CArray<float>& lut, size_t out) {
            p.plan.add_dequantize(in, n, std::vector<float>(lut.data(), lut.data() + lut.size()),
                                  out);
          },
          py::arg("input"), py::arg("n"), py::arg("lut"), py::arg("output"))
      .def("run", &PyPlan::run, py::arg("inputs"), py::arg("outputs"), py::arg("seconds"),
           py::arg("arena"));
}
