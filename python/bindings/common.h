// What the two halves of lowp._core (module.cc: the kernels and operators;
// graph.cc: the integer graph's plan) share: array and argument checks, and
// running a long native call so that Ctrl-C interrupts it.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <optional>
#include <stdexcept>
#include <string>

#include "lowp/lowp.h"

namespace lowp_bindings {

namespace py = pybind11;

template <typename T>
using CArray = py::array_t<T, py::array::c_style>;

inline void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

// Channel parameters: equal lengths, at least one, every value in range.
inline void check_channels(const CArray<int32_t>& m, const CArray<int32_t>& s) {
  require(m.size() >= 1 && m.size() == s.size(), "multiplier and shift sizes differ");
  for (py::ssize_t i = 0; i < m.size(); ++i) {
    require(m.data()[i] >= 0, "multiplier must be in [0, 2**31 - 1]");
    require(s.data()[i] >= -31 && s.data()[i] <= 30, "shift must be in [-31, 30]");
  }
}

// An operator's weight zero points (1 or `channels` values in [0, 255]),
// its input's zero point and its bias (`channels` values or none). `name`
// is the weights' argument ("b", "w") and `count` how the channels are
// called ("N", "Cout").
inline void check_operands(const CArray<int32_t>& w_zero_point, int x_zero_point,
                           const std::optional<CArray<int32_t>>& bias, size_t channels,
                           const std::string& name, const std::string& x_name,
                           const std::string& count) {
  const size_t zp_count = static_cast<size_t>(w_zero_point.size());
  require(zp_count == 1 || zp_count == channels,
          name + "_zero_point must have 1 or " + count + " values");
  for (size_t i = 0; i < zp_count; ++i)
    require(w_zero_point.data()[i] >= 0 && w_zero_point.data()[i] <= 255,
            name + "_zero_point must be in [0, 255]");
  require(x_zero_point >= 0 && x_zero_point <= 255, x_name + "_zero_point must be in [0, 255]");
  if (bias)
    require(static_cast<size_t>(bias->size()) == channels, "bias must have " + count + " values");
}

// A convolution's OHWI weights and strides, checked: non-empty, strides >= 1,
// and at most kMaxGemmK products summed into one output (every tap; for a
// transposed conv, the taps of the input pixels that overlap there).
struct ConvShape {
  size_t out_c, kh, kw, in_c, sh, sw;
};

inline ConvShape check_conv_weights(const CArray<uint8_t>& w, int stride_h, int stride_w,
                                    bool transposed) {
  require(w.ndim() == 4, "w must be 4-D [Cout, KH, KW, Cin]");
  for (int d = 0; d < 4; ++d) require(w.shape(d) >= 1, "w must not be empty");
  require(stride_h >= 1 && stride_w >= 1, "stride must be >= 1");
  const ConvShape c = {static_cast<size_t>(w.shape(0)), static_cast<size_t>(w.shape(1)),
                       static_cast<size_t>(w.shape(2)), static_cast<size_t>(w.shape(3)),
                       static_cast<size_t>(stride_h),   static_cast<size_t>(stride_w)};
  const size_t terms = transposed ? c.in_c * ((c.kh + c.sh - 1) / c.sh) * ((c.kw + c.sw - 1) / c.sw)
                                  : c.in_c * c.kh * c.kw;
  require(terms <= lowp::kMaxGemmK, "too many products per output for an exact int32 result");
  return c;
}

// Long calls and Ctrl-C: a kernel runs with the GIL released, and every
// kPollMs its calling thread takes the GIL back to run Python's signal
// handlers (PyErr_CheckSignals). When one raises (KeyboardInterrupt on
// Ctrl-C), the kernel skips the rest of its work and the exception
// propagates; the output is then partly written (the Python layer zero-fills
// a caller's out=). Calls shorter than kPollMs never take the GIL, nor do
// calls from other threads than the main one, where Python runs no signal
// handlers.
constexpr int kPollMs = 50;
inline unsigned long g_main_thread = 0;  // threading.main_thread().ident, at import

inline bool check_signals(void*) {
  const PyGILState_STATE gil = PyGILState_Ensure();
  const bool raised = PyErr_CheckSignals() != 0;
  PyGILState_Release(gil);
  return raised;
}

template <typename Work>
void run_interruptible(Work&& work) {
  if (PyThread_get_thread_ident() != g_main_thread) {
    py::gil_scoped_release release;
    work();
    return;
  }
  bool interrupted;
  {
    py::gil_scoped_release release;
    lowp::InterruptScope scope(check_signals, nullptr, kPollMs);
    work();
    interrupted = scope.interrupted();
  }
  if (interrupted) throw py::error_already_set();
}

}  // namespace lowp_bindings
