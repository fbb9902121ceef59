// The pybind11 module lowp._core. This layer only converts: the Python code
// in python/lowp validates every argument and hands over C-contiguous arrays
// of the right dtype. The checks here are a last line of defence against a
// crash (a wrong size raises ValueError), not the user-facing messages.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "common.h"
#include "lowp/lowp.h"

namespace py = pybind11;

void bind_calib(py::module_& m);  // calib.cc
void bind_graph(py::module_& m);  // graph.cc

namespace {

using lowp_bindings::check_channels;
using lowp_bindings::check_operands;
using lowp_bindings::g_main_thread;
using lowp_bindings::require;
using lowp_bindings::run_interruptible;
template <typename T>
using CArray = lowp_bindings::CArray<T>;

// Output arrays are taken as plain arrays and checked, never converted: a
// converted copy would be written and thrown away.
template <typename T>
T* out_data(py::array& a, py::ssize_t n) {
  if (!a.dtype().equal(py::dtype::of<T>()) || !(a.flags() & py::array::c_style) || !a.writeable() ||
      a.size() != n) {
    throw std::invalid_argument(
        "out must be a writeable C-contiguous array of the right dtype and size");
  }
  return static_cast<T*>(a.mutable_data());
}

// An elementwise loop in pieces, interruptible between them.
template <typename Body>
void run_elementwise(py::ssize_t n, Body&& body) {
  run_interruptible([&] {
    lowp::InterruptScope* scope = lowp::InterruptScope::current();
    constexpr py::ssize_t kPiece = py::ssize_t{1} << 20;
    for (py::ssize_t begin = 0; begin < n && !(scope && scope->stop()); begin += kPiece) {
      const py::ssize_t end = std::min(n, begin + kPiece);
      for (py::ssize_t i = begin; i < end; ++i) body(i);
    }
  });
}

py::dict cpu_info() {
  const lowp::CpuInfo info = lowp::cpu_info();
  py::dict d;
  d["arch"] = info.arch;
  d["model"] = info.model;
  d["features"] = info.features;
  return d;
}

std::vector<std::string> available_paths() {
  std::vector<std::string> names;
  for (lowp::Path p : lowp::available_paths()) names.emplace_back(lowp::path_name(p));
  return names;
}

void set_path(const std::string& name) {
  lowp::Path path;
  if (!lowp::path_from_name(name, &path) || !lowp::set_active_path(path)) {
    std::string msg = "path must be one of the paths this CPU supports (";
    const auto names = available_paths();
    for (size_t i = 0; i < names.size(); ++i) msg += (i ? ", " : "") + names[i];
    throw py::value_error(msg + "), got '" + name + "'");
  }
}

void set_num_threads(int n) {
  if (n < 1 || n > lowp::kMaxThreads) {
    throw py::value_error("num_threads must be in [1, " + std::to_string(lowp::kMaxThreads) +
                          "], got " + std::to_string(n));
  }
  // Lowering the count waits for a job in flight, whose thread may need the
  // GIL to poll for signals.
  py::gil_scoped_release release;
  lowp::set_num_threads(n);
}

py::tuple quantize_multiplier(const CArray<double>& real) {
  const py::ssize_t n = real.size();
  CArray<int32_t> m(n), s(n);
  const double* r = real.data();
  int32_t* mp = m.mutable_data();
  int32_t* sp = s.mutable_data();
  for (py::ssize_t i = 0; i < n; ++i) {
    require(lowp::quantize_multiplier(r[i], &mp[i], &sp[i]),
            "real must be finite, >= 0 and below 2**30 after rounding");
  }
  return py::make_tuple(m, s);
}

void srdhm(const CArray<int32_t>& a, const CArray<int32_t>& b, py::array& out) {
  require(a.size() == b.size(), "srdhm: sizes differ");
  const int32_t* ap = a.data();
  const int32_t* bp = b.data();
  int32_t* op = out_data<int32_t>(out, a.size());
  run_elementwise(a.size(), [&](py::ssize_t i) { op[i] = lowp::srdhm(ap[i], bp[i]); });
}

void rdivpot(const CArray<int32_t>& x, const CArray<int32_t>& exponent, py::array& out) {
  require(x.size() == exponent.size(), "rdivpot: sizes differ");
  const int32_t* xp = x.data();
  const int32_t* ep = exponent.data();
  int32_t* op = out_data<int32_t>(out, x.size());
  const py::ssize_t n = x.size();
  for (py::ssize_t i = 0; i < n; ++i)
    require(ep[i] >= 0 && ep[i] <= 31, "exponent must be in [0, 31]");
  run_elementwise(n, [&](py::ssize_t i) { op[i] = lowp::rdivpot(xp[i], ep[i]); });
}

void mulquant(const CArray<int32_t>& x, const CArray<int32_t>& m, const CArray<int32_t>& s,
              py::array& out) {
  check_channels(m, s);
  require(x.size() % m.size() == 0, "x size is not a multiple of the channel count");
  const int32_t* xp = x.data();
  int32_t* op = out_data<int32_t>(out, x.size());
  run_interruptible([&] {
    lowp::multiply_by_quantized_multiplier_s32(xp, static_cast<size_t>(x.size()), m.data(),
                                               s.data(), static_cast<size_t>(m.size()), op);
  });
}

void requantize(const CArray<int32_t>& acc, const CArray<int32_t>& m, const CArray<int32_t>& s,
                int zero_point, int qmin, int qmax, py::array& out) {
  check_channels(m, s);
  require(acc.size() % m.size() == 0, "acc size is not a multiple of the channel count");
  require(0 <= qmin && qmin <= qmax && qmax <= 255, "need 0 <= qmin <= qmax <= 255");
  require(0 <= zero_point && zero_point <= 255, "zero_point must be in [0, 255]");
  const int32_t* ap = acc.data();
  uint8_t* op = out_data<uint8_t>(out, acc.size());
  run_interruptible([&] {
    lowp::requantize_u8(ap, static_cast<size_t>(acc.size()), m.data(), s.data(),
                        static_cast<size_t>(m.size()), zero_point, qmin, qmax, op);
  });
}

bool quantize_f32(const CArray<float>& x, float scale, int zero_point, int qmin, int qmax,
                  py::array& out) {
  require(scale > 0.0f && std::isfinite(scale), "scale must be finite and > 0");
  const bool is_signed = qmin < 0;
  require(is_signed ? (qmin >= -128 && qmax <= 127) : (qmax <= 255), "qmin/qmax outside 8 bits");
  require(qmin <= zero_point && zero_point <= qmax, "zero_point outside [qmin, qmax]");
  const float* xp = x.data();
  void* op = is_signed ? static_cast<void*>(out_data<int8_t>(out, x.size()))
                       : static_cast<void*>(out_data<uint8_t>(out, x.size()));
  const size_t n = static_cast<size_t>(x.size());
  bool ok = true;
  run_interruptible(
      [&] { ok = lowp::quantize_f32_8bit(xp, n, scale, zero_point, qmin, qmax, op); });
  return ok;
}

// A prepared output stage, tied to the operator it was prepared for.
struct PyOutputStage {
  std::shared_ptr<lowp::OutputStage> stage;
  const void* owner;
};

// Checks an output stage's parameters for an operator of `channels` output
// channels (1 or that many multipliers).
lowp::Requantization checked_requant(const CArray<int32_t>& multiplier,
                                     const CArray<int32_t>& shift, int zero_point, int qmin,
                                     int qmax, size_t channels, const char* name) {
  check_channels(multiplier, shift);
  require(multiplier.size() == 1 || static_cast<size_t>(multiplier.size()) == channels,
          (std::string("requant must have 1 or ") + name + " channels").c_str());
  require(0 <= qmin && qmin <= qmax && qmax <= 255, "need 0 <= qmin <= qmax <= 255");
  require(0 <= zero_point && zero_point <= 255, "zero_point must be in [0, 255]");
  return {multiplier.data(), shift.data(), static_cast<size_t>(multiplier.size()),
          zero_point,        qmin,         qmax};
}

// lowp::Gemm for Python: B is copied and packed at construction.
class PyGemm {
 public:
  PyGemm(const CArray<uint8_t>& b, const CArray<int32_t>& b_zero_point, int a_zero_point,
         const std::optional<CArray<int32_t>>& bias) {
    require(b.ndim() == 2, "b must be 2-D");
    const size_t k = static_cast<size_t>(b.shape(0)), n = static_cast<size_t>(b.shape(1));
    require(k <= lowp::kMaxGemmK, "K too large for an exact int32 result");
    check_operands(b_zero_point, a_zero_point, bias, n, "b", "a", "N");
    const size_t zp_count = static_cast<size_t>(b_zero_point.size());
    py::gil_scoped_release release;
    gemm_ = std::make_unique<lowp::Gemm>(b.data(), k, n, n, b_zero_point.data(), zp_count,
                                         a_zero_point, bias ? bias->data() : nullptr);
  }

  void run(const CArray<uint8_t>& a, py::array& out) const {
    const size_t m = rows_of(a);
    int32_t* c = out_data<int32_t>(out, static_cast<py::ssize_t>(m * gemm_->n()));
    const uint8_t* ap = a.data();
    run_interruptible([&] { gemm_->run(ap, m, gemm_->k(), c, gemm_->n()); });
  }

  // The output stage for this operator, prepared once (the Python layer
  // keeps it with the operator).
  PyOutputStage prepare(const CArray<int32_t>& multiplier, const CArray<int32_t>& shift,
                        int zero_point, int qmin, int qmax) const {
    const lowp::Requantization rq =
        checked_requant(multiplier, shift, zero_point, qmin, qmax, gemm_->n(), "N");
    return {gemm_->prepare(rq), this};
  }

  void run_requant(const CArray<uint8_t>& a, const PyOutputStage& stage, py::array& out) const {
    const size_t m = rows_of(a);
    require(stage.owner == this, "stage was prepared for another operator");
    uint8_t* c = out_data<uint8_t>(out, static_cast<py::ssize_t>(m * gemm_->n()));
    const uint8_t* ap = a.data();
    run_interruptible([&] { gemm_->run(ap, m, gemm_->k(), *stage.stage, c, gemm_->n()); });
  }

 private:
  size_t rows_of(const CArray<uint8_t>& a) const {
    require(a.ndim() == 2 && static_cast<size_t>(a.shape(1)) == gemm_->k(), "a must be 2-D [M, K]");
    return static_cast<size_t>(a.shape(0));
  }
  std::unique_ptr<lowp::Gemm> gemm_;
};

// lowp::Conv2d and lowp::ConvTranspose2d for Python (Op is one of them):
// OHWI weights packed at construction; runs take NHWC input, the resolved
// top/left padding (or crop) and the output size.
template <typename Op>
class PyConv {
 public:
  PyConv(const CArray<uint8_t>& w, int stride_h, int stride_w, const CArray<int32_t>& w_zero_point,
         int x_zero_point, const std::optional<CArray<int32_t>>& bias) {
    const lowp_bindings::ConvShape c = lowp_bindings::check_conv_weights(
        w, stride_h, stride_w, std::is_same<Op, lowp::ConvTranspose2d>::value);
    check_operands(w_zero_point, x_zero_point, bias, c.out_c, "w", "x", "Cout");
    out_c_ = c.out_c;
    in_c_ = c.in_c;
    kh_ = c.kh;
    kw_ = c.kw;
    sh_ = c.sh;
    sw_ = c.sw;
    const size_t kh = c.kh, kw = c.kw;
    const size_t zp_count = static_cast<size_t>(w_zero_point.size());
    py::gil_scoped_release release;
    op_ = std::make_unique<Op>(w.data(), out_c_, kh, kw, in_c_, static_cast<size_t>(stride_h),
                               static_cast<size_t>(stride_w), w_zero_point.data(), zp_count,
                               x_zero_point, bias ? bias->data() : nullptr);
  }

  void run(const CArray<uint8_t>& x, int pad_top, int pad_left, int out_h, int out_w,
           py::array& out) const {
    const lowp::ConvGeometry g = geometry(x, pad_top, pad_left, out_h, out_w);
    int32_t* o = out_data<int32_t>(out, output_size(g));
    const uint8_t* xp = x.data();
    run_interruptible([&] { op_->run(xp, g, o); });
  }

  PyOutputStage prepare(const CArray<int32_t>& multiplier, const CArray<int32_t>& shift,
                        int zero_point, int qmin, int qmax) const {
    const lowp::Requantization rq =
        checked_requant(multiplier, shift, zero_point, qmin, qmax, out_c_, "Cout");
    return {op_->prepare(rq), this};
  }

  void run_requant(const CArray<uint8_t>& x, int pad_top, int pad_left, int out_h, int out_w,
                   const PyOutputStage& stage, py::array& out) const {
    const lowp::ConvGeometry g = geometry(x, pad_top, pad_left, out_h, out_w);
    require(stage.owner == this, "stage was prepared for another operator");
    uint8_t* o = out_data<uint8_t>(out, output_size(g));
    const uint8_t* xp = x.data();
    run_interruptible([&] { op_->run(xp, g, *stage.stage, o); });
  }

 private:
  lowp::ConvGeometry geometry(const CArray<uint8_t>& x, int pad_top, int pad_left, int out_h,
                              int out_w) const {
    require(x.ndim() == 4 && static_cast<size_t>(x.shape(3)) == in_c_,
            "x must be 4-D [N, H, W, Cin]");
    require(x.shape(1) >= 1 && x.shape(2) >= 1, "x must have H, W >= 1");
    require(pad_top >= 0 && pad_left >= 0 && out_h >= 1 && out_w >= 1, "bad output geometry");
    if (std::is_same<Op, lowp::ConvTranspose2d>::value) {
      // Every output pixel must lie in the full output (or, for "same" with a
      // kernel smaller than the stride, in the in * stride extent).
      const auto extent = [](py::ssize_t in, size_t k, size_t s) {
        return std::max(static_cast<size_t>(in - 1) * s + k, static_cast<size_t>(in) * s);
      };
      require(static_cast<size_t>(pad_top) + static_cast<size_t>(out_h) <=
                      extent(x.shape(1), kh_, sh_) &&
                  static_cast<size_t>(pad_left) + static_cast<size_t>(out_w) <=
                      extent(x.shape(2), kw_, sw_),
              "the output lies outside the transposed convolution's full output");
    }
    return {static_cast<size_t>(x.shape(0)), static_cast<size_t>(x.shape(1)),
            static_cast<size_t>(x.shape(2)), static_cast<size_t>(pad_top),
            static_cast<size_t>(pad_left),   static_cast<size_t>(out_h),
            static_cast<size_t>(out_w)};
  }
  py::ssize_t output_size(const lowp::ConvGeometry& g) const {
    return static_cast<py::ssize_t>(g.batch * g.out_h * g.out_w * out_c_);
  }

  size_t out_c_ = 0, in_c_ = 0, kh_ = 0, kw_ = 0, sh_ = 0, sw_ = 0;
  std::unique_ptr<Op> op_;
};

template <typename Op>
void bind_conv(py::module_& m, const char* name) {
  py::class_<PyConv<Op>>(m, name)
      .def(py::init<const CArray<uint8_t>&, int, int, const CArray<int32_t>&, int,
                    const std::optional<CArray<int32_t>>&>(),
           py::arg("w"), py::arg("stride_h"), py::arg("stride_w"), py::arg("w_zero_point"),
           py::arg("x_zero_point"), py::arg("bias"))
      .def("run", &PyConv<Op>::run, py::arg("x"), py::arg("pad_top"), py::arg("pad_left"),
           py::arg("out_h"), py::arg("out_w"), py::arg("out"))
      .def("prepare", &PyConv<Op>::prepare, py::arg("multiplier"), py::arg("shift"),
           py::arg("zero_point"), py::arg("qmin"), py::arg("qmax"))
      .def("run_requant", &PyConv<Op>::run_requant, py::arg("x"), py::arg("pad_top"),
           py::arg("pad_left"), py::arg("out_h"), py::arg("out_w"), py::arg("stage"),
           py::arg("out"));
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "lowp's compiled core (use the lowp package, which validates arguments).";
  g_main_thread =
      py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
  m.def("cpu_info", &cpu_info);
  m.def("available_paths", &available_paths);
  m.def("get_path", [] { return std::string(lowp::path_name(lowp::active_path())); });
  m.def("set_path", &set_path, py::arg("name"));
  m.def("get_num_threads", &lowp::num_threads);
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("default_num_threads", &lowp::default_num_threads);
  m.def("pool_jobs", &lowp::pool_jobs);
  m.attr("MAX_THREADS") = lowp::kMaxThreads;
  m.def("quantize_multiplier", &quantize_multiplier, py::arg("real"));
  m.def("srdhm", &srdhm, py::arg("a"), py::arg("b"), py::arg("out"));
  m.def("rdivpot", &rdivpot, py::arg("x"), py::arg("exponent"), py::arg("out"));
  m.def("multiply_by_quantized_multiplier", &mulquant, py::arg("x"), py::arg("multiplier"),
        py::arg("shift"), py::arg("out"));
  m.def("requantize", &requantize, py::arg("acc"), py::arg("multiplier"), py::arg("shift"),
        py::arg("zero_point"), py::arg("qmin"), py::arg("qmax"), py::arg("out"));
  m.def("quantize_f32", &quantize_f32, py::arg("x"), py::arg("scale"), py::arg("zero_point"),
        py::arg("qmin"), py::arg("qmax"), py::arg("out"));
  py::class_<PyOutputStage>(m, "OutputStage");
  py::class_<PyGemm>(m, "Gemm")
      .def(py::init<const CArray<uint8_t>&, const CArray<int32_t>&, int,
                    const std::optional<CArray<int32_t>>&>(),
           py::arg("b"), py::arg("b_zero_point"), py::arg("a_zero_point"), py::arg("bias"))
      .def("run", &PyGemm::run, py::arg("a"), py::arg("out"))
      .def("prepare", &PyGemm::prepare, py::arg("multiplier"), py::arg("shift"),
           py::arg("zero_point"), py::arg("qmin"), py::arg("qmax"))
      .def("run_requant", &PyGemm::run_requant, py::arg("a"), py::arg("stage"), py::arg("out"));
  bind_conv<lowp::Conv2d>(m, "Conv2d");
  bind_conv<lowp::ConvTranspose2d>(m, "ConvTranspose2d");
  bind_graph(m);
  bind_calib(m);
}
