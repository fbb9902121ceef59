// The thread pool's work threshold and the interruption of long calls.
#include <cstdint>
#include <random>
#include <vector>

#include "kernels.h"
#include "lowp/lowp.h"
#include "test_util.h"

namespace {

struct Operands {
  std::vector<uint8_t> a, b;
  int32_t b_zero_point = 7;
};

Operands random_operands(size_t m, size_t k, size_t n) {
  std::mt19937 rng(3);
  Operands o;
  o.a.resize(m * k);
  o.b.resize(k * n);
  for (auto& v : o.a) v = static_cast<uint8_t>(rng());
  for (auto& v : o.b) v = static_cast<uint8_t>(rng());
  return o;
}

struct Polls {
  int calls = 0;
  int stop_at = 0;  // the poll that says stop (0: never)
};

bool count_poll(void* ctx) {
  Polls& p = *static_cast<Polls*>(ctx);
  return ++p.calls == p.stop_at;
}

}  // namespace

// Small jobs run on the caller's thread: the pool is not woken for them.
LOWP_TEST(small_jobs_skip_the_pool) {
  const int saved = lowp::num_threads();
  lowp::set_num_threads(2);
  const Operands small = random_operands(8, 16, 16);
  lowp::Gemm gemm(small.b.data(), 16, 16, 16, &small.b_zero_point, 1, 3, nullptr);
  std::vector<int32_t> c(8 * 16);
  const int32_t m = 1 << 30, s = -3;
  std::vector<uint8_t> q(64);
  const uint64_t before = lowp::pool_jobs();
  gemm.run(small.a.data(), 8, 16, c.data(), 16);
  lowp::requantize_u8(c.data(), 64, &m, &s, 1, 0, 0, 255, q.data());
  const std::vector<uint8_t> w(4 * 3 * 3 * 4, 9);
  const std::vector<uint8_t> x(4 * 4 * 4, 5);
  const int32_t zp = 128;
  lowp::ConvTranspose2d deconv(w.data(), 4, 3, 3, 4, 2, 2, &zp, 1, 3, nullptr);
  std::vector<int32_t> y(9 * 9 * 4);
  deconv.run(x.data(), {1, 4, 4, 0, 0, 9, 9}, y.data());
  lowp::Conv2d conv(w.data(), 4, 3, 3, 4, 1, 1, &zp, 1, 3, nullptr);
  conv.run(x.data(), {1, 4, 4, 1, 1, 4, 4}, y.data());
  LOWP_CHECK(lowp::pool_jobs() == before, "small calls used the pool %d times",
             static_cast<int>(lowp::pool_jobs() - before));

  const Operands big = random_operands(256, 256, 256);
  lowp::Gemm big_gemm(big.b.data(), 256, 256, 256, &big.b_zero_point, 1, 3, nullptr);
  std::vector<int32_t> big_c(256 * 256);
  big_gemm.run(big.a.data(), 256, 256, big_c.data(), 256);
  LOWP_CHECK(lowp::pool_jobs() > before, "a 256^3 GEMM on 2 threads did not use the pool");
  lowp::set_num_threads(saved);
}

// A poll that says stop ends the call early and every later call in the
// scope; a poll that never does changes nothing. Polls (interval 0 here)
// happen as a job starts and before each task the caller takes.
LOWP_TEST(interrupt_scope_stops_the_work) {
  const int saved = lowp::num_threads();
  const size_t m = 2048, k = 64, n = 512;
  const Operands o = random_operands(m, k, n);
  lowp::Gemm gemm(o.b.data(), k, n, n, &o.b_zero_point, 1, 3, nullptr);
  std::vector<int32_t> want(m * n);
  gemm.run(o.a.data(), m, k, want.data(), n);
  const auto unwritten = [](const std::vector<int32_t>& c) {
    size_t count = 0;
    for (int32_t v : c) count += v == -1;
    return count;
  };
  for (int threads : {1, 2}) {
    lowp::set_num_threads(threads);
    {
      Polls polls;
      lowp::InterruptScope scope(count_poll, &polls, 0);
      std::vector<int32_t> c(m * n, -1);
      gemm.run(o.a.data(), m, k, c.data(), n);
      LOWP_CHECK(!scope.interrupted() && c == want, "%d threads: a poll that never stops", threads);
      LOWP_CHECK(polls.calls >= 1, "%d threads: polled %d times", threads, polls.calls);
    }
    Polls polls;
    polls.stop_at = 1;
    lowp::InterruptScope scope(count_poll, &polls, 0);
    std::vector<int32_t> c(m * n, -1);
    gemm.run(o.a.data(), m, k, c.data(), n);
    LOWP_CHECK(scope.interrupted(), "%d threads: not interrupted", threads);
    LOWP_CHECK(unwritten(c) == m * n, "%d threads: %zu of %zu values written", threads,
               m * n - unwritten(c), m * n);
    gemm.run(o.a.data(), m, k, c.data(), n);
    LOWP_CHECK(unwritten(c) == m * n, "%d threads: a later call ran", threads);
    LOWP_CHECK(polls.calls == 1, "%d threads: polled %d times after stopping", threads,
               polls.calls);
  }
  // One thread, stopped at its second task: the first task's rows only.
  lowp::set_num_threads(1);
  Polls polls;
  polls.stop_at = 3;  // the job's start, task 0, task 1
  lowp::InterruptScope scope(count_poll, &polls, 0);
  std::vector<int32_t> c(m * n, -1);
  gemm.run(o.a.data(), m, k, c.data(), n);
  LOWP_CHECK(scope.interrupted() && unwritten(c) > 0 && unwritten(c) < m * n,
             "stopped mid-job: %zu of %zu values written", m * n - unwritten(c), m * n);
  lowp::set_num_threads(saved);
}

// Scopes nest: the inner one is polled, the outer one is back after it.
LOWP_TEST(interrupt_scopes_nest) {
  Polls outer_polls, inner_polls;
  lowp::InterruptScope outer(count_poll, &outer_polls, 0);
  {
    lowp::InterruptScope inner(count_poll, &inner_polls, 0);
    LOWP_CHECK(lowp::InterruptScope::current() == &inner, "the inner scope is not current");
  }
  LOWP_CHECK(lowp::InterruptScope::current() == &outer, "the outer scope is not back");
}

// A parallel_for from inside a task (on the caller or on a worker) runs its
// tasks on that thread: every inner task runs once, and nothing deadlocks.
namespace {
struct Nested {
  std::vector<int> hits;  // outer task * kInner + inner task
};
constexpr size_t kOuter = 8, kInner = 16;
struct InnerCtx {
  Nested* nested;
  size_t outer;
};
void inner_task(void* ctx, size_t task) {
  const InnerCtx& c = *static_cast<InnerCtx*>(ctx);
  ++c.nested->hits[c.outer * kInner + task];
}
void outer_task(void* ctx, size_t task) {
  InnerCtx inner = {static_cast<Nested*>(ctx), task};
  lowp::parallel_for(kInner, inner_task, &inner, lowp::kMinParallelWork * 4);
}
}  // namespace

LOWP_TEST(nested_parallel_for_runs_inline) {
  const int saved = lowp::num_threads();
  for (int threads : {1, 2, 3}) {
    lowp::set_num_threads(threads);
    for (int round = 0; round < 50; ++round) {
      Nested nested;
      nested.hits.assign(kOuter * kInner, 0);
      lowp::parallel_for(kOuter, outer_task, &nested, lowp::kMinParallelWork * 4);
      size_t once = 0;
      for (int h : nested.hits) once += h == 1;
      LOWP_CHECK(once == kOuter * kInner, "%d threads: %zu of %zu inner tasks ran once", threads,
                 once, kOuter * kInner);
    }
  }
  lowp::set_num_threads(saved);
}
