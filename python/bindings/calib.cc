// lowp._core's calibration statistics (lowp/calib.h). The Python layer
// (python/lowp/quantizer/_calib.py) checks the values and the window; this
// layer checks only what could make the kernel write out of bounds.
#include "lowp/calib.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>

#include "common.h"

namespace py = pybind11;

namespace {

using lowp_bindings::CArray;
using lowp_bindings::require;
using lowp_bindings::run_interruptible;

constexpr int64_t kMaxIndex = int64_t{1} << 24;

// counts is written in place, so it must be the caller's own int64 buffer,
// never a converted copy.
int64_t histogram_f32(const CArray<float>& x, float inv_width, int64_t first_bin,
                      py::array& counts) {
  require(counts.dtype().equal(py::dtype::of<int64_t>()) && (counts.flags() & py::array::c_style) &&
              counts.writeable(),
          "counts must be a writeable C-contiguous int64 array");
  const int64_t bins = static_cast<int64_t>(counts.size());
  require(bins >= 1 && bins <= kMaxIndex, "counts must have 1 to 2**24 bins");
  require(first_bin >= -kMaxIndex && first_bin + bins <= kMaxIndex,
          "first_bin out of [-2**24, 2**24 - bins]");
  require(std::isfinite(inv_width) && inv_width > 0.0f, "inv_width must be finite and > 0");
  const float* xp = x.data();
  const size_t n = static_cast<size_t>(x.size());
  int64_t* cp = static_cast<int64_t*>(counts.mutable_data());
  int64_t zeros = 0;
  run_interruptible([&] {
    zeros = lowp::histogram_f32(xp, n, inv_width, first_bin, static_cast<size_t>(bins), cp);
  });
  return zeros;
}

}  // namespace

void bind_calib(py::module_& m) {
  m.def("histogram_f32", &histogram_f32, py::arg("x"), py::arg("inv_width"), py::arg("first_bin"),
        py::arg("counts"));
}
