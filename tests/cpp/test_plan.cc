// lowp::Plan (lowp/plan.h): steps that would touch memory outside the arena
// are refused when added, a plan gives the same bytes as its steps run by
// hand, and concurrent runs of one plan (each on its own leased arena) give
// the results of runs one at a time.
#include <cstring>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "graph/graph_kernels.h"
#include "lowp/plan.h"
#include "test_util.h"

namespace {

template <typename Fn>
bool throws_invalid(const Fn& fn) {
  try {
    fn();
  } catch (const std::invalid_argument&) {
    return true;
  }
  return false;
}

lowp::PlanView view(size_t offset, std::vector<ptrdiff_t> strides) {
  lowp::PlanView v;
  v.offset = offset;
  v.strides = std::move(strides);
  return v;
}

}  // namespace

LOWP_TEST(plan_refuses_buffers_outside_the_arena) {
  lowp::Plan p;
  p.set_arena_bytes(100);
  LOWP_CHECK(throws_invalid([&] { p.add_input(90, 11, 0); }), "input past the end");
  LOWP_CHECK(throws_invalid([&] { p.add_fill(0, 101, 0); }), "fill past the end");
  LOWP_CHECK(throws_invalid([&] { p.add_constant(99, std::vector<uint8_t>(2)); }), "constant");
  LOWP_CHECK(throws_invalid([&] { p.add_copy(view(0, {12}), view(50, {1}), {10}, 1, {}); }),
             "a strided source reaching byte 108");
  LOWP_CHECK(throws_invalid([&] { p.add_copy(view(0, {-1}), view(50, {1}), {2}, 1, {}); }),
             "a negative stride before the arena");
  LOWP_CHECK(throws_invalid([&] {
               p.add_copy(view(0, {1}), view(0, {1}), {4}, 1, {1, 2});
             }),
             "a table of the wrong size");
  LOWP_CHECK(throws_invalid([&] {
               p.add_max_pool({1, 4, 4, 2, 2, 2, 2, 2, 0, 0, 3, 2, 2}, 0, 32, 0, 255);
             }),
             "a window starting past the input");
  LOWP_CHECK(!throws_invalid([&] { p.add_copy(view(0, {9}), view(50, {1}), {10}, 1, {}); }),
             "a copy inside the arena");
  LOWP_CHECK(throws_invalid([&] { p.set_arena_bytes(200); }), "resizing after steps");
}

LOWP_TEST(plan_runs_steps_in_order_and_concurrently) {
  // input (int8 view) -> max pool 2x2 -> table -> output, with a constant
  // added to the arena and a fill
  const size_t n = 2, h = 8, w = 8, c = 5, oh = 4, ow = 4;
  const size_t in_bytes = n * h * w * c, out_bytes = n * oh * ow * c;
  lowp::Plan p;
  p.set_arena_bytes(1100);
  p.add_input(0, in_bytes, 0x80);
  const size_t pooled = 704, mapped = 896;
  p.add_max_pool({n, h, w, c, 2, 2, 2, 2, 0, 0, oh, ow, c}, 0, pooled, 3, 250);
  std::vector<uint8_t> lut(256);
  for (int i = 0; i < 256; ++i) lut[i] = static_cast<uint8_t>(255 - i);
  p.add_copy(view(pooled, {1}), view(mapped, {1}), {out_bytes}, 1, lut);
  p.add_output(mapped, out_bytes, 0x80);
  LOWP_CHECK(p.steps() == 2 && p.inputs() == 1 && p.outputs() == 1, "counts");

  std::mt19937 rng(7);
  std::vector<std::vector<uint8_t>> xs(6, std::vector<uint8_t>(in_bytes));
  for (auto& x : xs)
    for (auto& b : x) b = static_cast<uint8_t>(rng());
  // by hand: the same kernels
  std::vector<std::vector<uint8_t>> expect;
  for (const auto& x : xs) {
    std::vector<uint8_t> u(in_bytes), pool(out_bytes), y(out_bytes);
    for (size_t i = 0; i < in_bytes; ++i) u[i] = static_cast<uint8_t>(x[i] ^ 0x80);
    const lowp::graph::PoolShape s = {n, h, w, c, 2, 2, 2, 2, 0, 0, oh, ow, c};
    lowp::graph::max_pool_u8(u.data(), s, 3, 250, pool.data());
    for (size_t i = 0; i < out_bytes; ++i) y[i] = static_cast<uint8_t>(lut[pool[i]] ^ 0x80);
    expect.push_back(y);
  }
  std::vector<double> seconds(p.steps(), -1.0);
  for (size_t k = 0; k < xs.size(); ++k) {
    std::vector<uint8_t> y(out_bytes);
    const void* in[] = {xs[k].data()};
    void* out[] = {y.data()};
    p.run(in, out, k == 0 ? seconds.data() : nullptr, nullptr);
    LOWP_CHECK(y == expect[k], "run %zu", k);
  }
  LOWP_CHECK(seconds[0] >= 0 && seconds[1] >= 0, "step timers");

  std::vector<int> wrong(xs.size(), 0);
  std::vector<std::thread> threads;
  for (size_t k = 0; k < xs.size(); ++k) {
    threads.emplace_back([&, k] {
      std::vector<uint8_t> y(out_bytes);
      for (int r = 0; r < 300; ++r) {
        const void* in[] = {xs[k].data()};
        void* out[] = {y.data()};
        p.run(in, out, nullptr, nullptr);
        if (y != expect[k]) ++wrong[k];
      }
    });
  }
  for (auto& t : threads) t.join();
  for (size_t k = 0; k < xs.size(); ++k) LOWP_CHECK(wrong[k] == 0, "thread %zu: %d", k, wrong[k]);
}
