// Convolution benchmarks: the UNet layers of the convolution issue with
// packed weights and the fused per-channel output stage, per ISA path and
// thread count. Counter "GOPS" = 2 N Ho Wo Cout KH KW Cin per second (for a
// transposed conv, per input pixel: 2 N H W Cout KH KW Cin).
//
//   lowp_bench_conv --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "lowp/lowp.h"

namespace {

struct Layer {
  const char* name;
  bool transposed;
  size_t h, w, in_c, out_c, k, stride;
  bool symmetric = false;  // int8-symmetric weights (every w_zp 128), as TFLite's int8 models
};

// TFLite "same" padding (conv) or crop (transposed conv, none for k == stride).
lowp::ConvGeometry geometry(const Layer& l) {
  if (l.transposed) {
    return {1, l.h, l.w, 0, 0, (l.h - 1) * l.stride + l.k, (l.w - 1) * l.stride + l.k};
  }
  const size_t out_h = (l.h + l.stride - 1) / l.stride, out_w = (l.w + l.stride - 1) / l.stride;
  const size_t pad_h = (out_h - 1) * l.stride + l.k > l.h ? (out_h - 1) * l.stride + l.k - l.h : 0;
  const size_t pad_w = (out_w - 1) * l.stride + l.k > l.w ? (out_w - 1) * l.stride + l.k - l.w : 0;
  return {1, l.h, l.w, pad_h / 2, pad_w / 2, out_h, out_w};
}

template <typename Op>
void bench_layer(benchmark::State& state, lowp::Path path, Layer l) {
  lowp::set_active_path(path);
  lowp::set_num_threads(static_cast<int>(state.range(0)));
  std::mt19937 rng(3);
  std::vector<uint8_t> x(l.h * l.w * l.in_c), w(l.out_c * l.k * l.k * l.in_c);
  for (auto& v : x) v = static_cast<uint8_t>(rng());
  for (auto& v : w) v = static_cast<uint8_t>(rng());
  std::vector<int32_t> wzp(l.out_c), bias(l.out_c), mult(l.out_c), shift(l.out_c);
  for (size_t o = 0; o < l.out_c; ++o) {
    wzp[o] = l.symmetric ? 128 : static_cast<int32_t>(rng() % 256);
    bias[o] = static_cast<int32_t>(rng() % 2001) - 1000;
    mult[o] = (1 << 30) + static_cast<int32_t>(rng() % (1u << 30));
    shift[o] = -10;
  }
  const Op op(w.data(), l.out_c, l.k, l.k, l.in_c, l.stride, l.stride, wzp.data(), l.out_c, 3,
              bias.data());
  const lowp::ConvGeometry g = geometry(l);
  const lowp::Requantization rq = {mult.data(), shift.data(), l.out_c, 128, 0, 255};
  std::vector<uint8_t> out(g.out_h * g.out_w * l.out_c);
  for (auto _ : state) {
    op.run(x.data(), g, rq, out.data());
    benchmark::ClobberMemory();
  }
  const double pixels = l.transposed ? double(l.h * l.w) : double(g.out_h * g.out_w);
  state.counters["GOPS"] =
      benchmark::Counter(2.0 * pixels * l.out_c * l.k * l.k * l.in_c * 1e-9 * state.iterations(),
                         benchmark::Counter::kIsRate);
  lowp::set_num_threads(1);
}

constexpr Layer kLayers[] = {
    {"conv3x3/56x56x64-64", false, 56, 56, 64, 64, 3, 1},
    {"conv3x3/128x128x32-32", false, 128, 128, 32, 32, 3, 1},
    {"conv3x3/28x28x128-128", false, 28, 28, 128, 128, 3, 1},
    {"conv3x3s2/224x224x3-32", false, 224, 224, 3, 32, 3, 2},
    {"deconv2x2s2/28x28x128-64", true, 28, 28, 128, 64, 2, 2},
    {"deconv2x2s2/56x56x64-32", true, 56, 56, 64, 32, 2, 2},
    {"deconv2x2s2/64x64x64-64", true, 64, 64, 64, 64, 2, 2},
    // The bundled int8 UNet (64x64x3 input, python/lowp/tflite/_build.py):
    // few channels, where packing A costs as much as multiplying it, and
    // int8-symmetric weights. Two of them with asymmetric weights too.
    {"unet_int8/conv3x3/64x64x3-16", false, 64, 64, 3, 16, 3, 1, true},
    {"unet_int8/conv3x3/64x64x16-16", false, 64, 64, 16, 16, 3, 1, true},
    {"unet_int8/conv3x3/32x32x16-32", false, 32, 32, 16, 32, 3, 1, true},
    {"unet_int8/conv3x3/32x32x32-32", false, 32, 32, 32, 32, 3, 1, true},
    {"unet_int8/conv3x3s2/32x32x32-64", false, 32, 32, 32, 64, 3, 2, true},
    {"unet_int8/conv3x3/16x16x64-64", false, 16, 16, 64, 64, 3, 1, true},
    {"unet_int8/conv3x3/32x32x64-32", false, 32, 32, 64, 32, 3, 1, true},
    {"unet_int8/conv3x3/64x64x32-16", false, 64, 64, 32, 16, 3, 1, true},
    {"unet_int8/conv1x1/64x64x16-2", false, 64, 64, 16, 2, 1, 1, true},
    {"unet_int8/deconv2x2s2/16x16x64-32", true, 16, 16, 64, 32, 2, 2, true},
    {"unet_int8/deconv2x2s2/32x32x32-16", true, 32, 32, 32, 16, 2, 2, true},
    // The same UNet on a 256x256 input: its 16-channel layers.
    {"unet_int8/conv3x3/256x256x16-16", false, 256, 256, 16, 16, 3, 1, true},
    {"unet_int8/conv3x3/128x128x16-32", false, 128, 128, 16, 32, 3, 1, true},
    {"unet_int8/conv3x3/256x256x32-16", false, 256, 256, 32, 16, 3, 1, true},
    {"unet_int8/deconv2x2s2/64x64x64-32", true, 64, 64, 64, 32, 2, 2, true},
    {"unet_int8/deconv2x2s2/128x128x32-16", true, 128, 128, 32, 16, 2, 2, true},
    {"unet_int8/conv1x1/256x256x16-2", false, 256, 256, 16, 2, 1, 1, true},
    {"deconv2x2s2/128x128x32-16", true, 128, 128, 32, 16, 2, 2},
    {"conv3x3/64x64x16-16", false, 64, 64, 16, 16, 3, 1},
    {"conv3x3/32x32x32-32", false, 32, 32, 32, 32, 3, 1},
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  for (lowp::Path path : lowp::available_paths()) {
    for (const Layer& l : kLayers) {
      const std::string name = std::string(l.name) + "/" + lowp::path_name(path);
      auto* b = l.transposed ? benchmark::RegisterBenchmark(
                                   name.c_str(), bench_layer<lowp::ConvTranspose2d>, path, l)
                             : benchmark::RegisterBenchmark(name.c_str(), bench_layer<lowp::Conv2d>,
                                                            path, l);
      b->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
