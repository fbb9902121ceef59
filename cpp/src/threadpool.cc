// A small fork-aware thread pool. The caller's thread takes tasks too, so a
// pool of n threads has n - 1 workers. Work is handed out as task indices
// from an atomic counter; every task writes its own part of the output, so
// results do not depend on which thread ran what.
//
// One job runs at a time: a second caller (another Python thread, since the
// GIL is released around kernels) that finds the pool busy runs its job on
// its own thread instead of waiting.
//
// Waking a sleeping worker (a futex wake, then the scheduler) takes tens of
// microseconds, more in a virtual machine: as much as a whole 512^3 GEMM on
// two AVX-512 cores takes. So a worker that finishes a job spins on the
// job counter for a short while (kSpinNs) before it sleeps, and the caller
// spins as long on the workers' completion count before it sleeps: a
// model's consecutive layers, and the end of a job, then cost no wake-up.
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "kernels.h"

namespace lowp {
namespace {

// How long a worker polls for the next job, and the caller for the end of
// its job, before sleeping on the condition variable.
constexpr int64_t kSpinNs = 50000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// True on a pool worker, and on a caller while its job runs: a
// parallel_for from inside a task runs its tasks serially on that thread
// (the pool runs one job at a time, and the caller already holds its
// submit mutex).
thread_local bool t_in_job = false;

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Polls done() for up to kSpinNs; true once it held.
template <typename Done>
bool spin_until(Done done) {
  const int64_t until = steady_ns() + kSpinNs;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (steady_ns() >= until) return done();
  }
}

class ThreadPool {
 public:
  // Runs the job on `threads` threads; returns when every task is done (or,
  // once `scope` stops the job, when the tasks already started are).
  void run(size_t n_tasks, void (*fn)(void*, size_t), void* ctx, int threads,
           InterruptScope* scope) {
    jobs_.fetch_add(1, std::memory_order_relaxed);
    {
      std::unique_lock<std::mutex> lock(mutex_);
      while (static_cast<int>(workers_.size()) < threads - 1) {
        const int index = static_cast<int>(workers_.size());
        workers_.emplace_back([this, index] { worker_loop(index); });
      }
      fn_ = fn;
      ctx_ = ctx;
      n_tasks_ = n_tasks;
      next_.store(0, std::memory_order_relaxed);
      participants_ = threads - 1;
      pending_.store(threads - 1, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    work_cv_.notify_all();
    if (scope == nullptr) {
      take_tasks(fn, ctx, n_tasks);
    } else {
      for (size_t t = next_.fetch_add(1); t < n_tasks; t = next_.fetch_add(1)) {
        if (scope->stop()) {
          next_.store(n_tasks);  // the workers take no further task
          break;
        }
        fn(ctx, t);
      }
    }
    // The workers may still be busy (or, on a loaded machine, have taken
    // every task): wait for them, and keep polling the scope meanwhile.
    const auto done = [this] { return pending_.load(std::memory_order_acquire) == 0; };
    if (spin_until(done)) return;
    std::unique_lock<std::mutex> lock(mutex_);
    while (scope != nullptr && !scope->interrupted() &&
           !done_cv_.wait_for(lock, std::chrono::nanoseconds(scope->ns_to_next_poll()), done)) {
      lock.unlock();  // a poll may take long (the GIL)
      if (scope->stop()) next_.store(n_tasks);
      lock.lock();
    }
    done_cv_.wait(lock, done);
  }

  std::mutex& submit_mutex() { return submit_mutex_; }
  uint64_t jobs() const { return jobs_.load(std::memory_order_relaxed); }

  // Stops the workers beyond threads - 1 (joined, so their stacks are
  // freed). Waits for a job in flight to finish first.
  void trim(int threads) {
    std::lock_guard<std::mutex> submit(submit_mutex_);
    const size_t keep = static_cast<size_t>(std::max(threads - 1, 0));
    if (workers_.size() <= keep) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      keep_.store(static_cast<int>(keep), std::memory_order_relaxed);
    }
    work_cv_.notify_all();
    for (size_t i = keep; i < workers_.size(); ++i) workers_[i].join();
    workers_.resize(keep);
    std::lock_guard<std::mutex> lock(mutex_);
    keep_.store(kMaxThreads, std::memory_order_relaxed);
  }

 private:
  void take_tasks(void (*fn)(void*, size_t), void* ctx, size_t n_tasks) {
    for (size_t t = next_.fetch_add(1); t < n_tasks; t = next_.fetch_add(1)) fn(ctx, t);
  }

  void worker_loop(int index) {
    t_in_job = true;
    uint64_t seen = 0;
    const auto next = [&] {
      return generation_.load(std::memory_order_acquire) != seen ||
             index >= keep_.load(std::memory_order_relaxed);
    };
    for (;;) {
      void (*fn)(void*, size_t);
      void* ctx;
      size_t n_tasks;
      spin_until(next);  // then sleep, unless a job or a trim came meanwhile
      {
        std::unique_lock<std::mutex> lock(mutex_);
        work_cv_.wait(lock, next);
        if (index >= keep_.load(std::memory_order_relaxed)) return;  // trimmed
        seen = generation_.load(std::memory_order_relaxed);
        if (index >= participants_) continue;
        fn = fn_;
        ctx = ctx_;
        n_tasks = n_tasks_;
      }
      take_tasks(fn, ctx, n_tasks);
      // The last worker out wakes a sleeping caller; taking the mutex first
      // orders the wake after the caller's check of pending_ (no lost wake).
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        { std::lock_guard<std::mutex> lock(mutex_); }
        done_cv_.notify_one();
      }
    }
  }

  std::mutex submit_mutex_;
  std::mutex mutex_;
  std::condition_variable work_cv_, done_cv_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> generation_{0};
  void (*fn_)(void*, size_t) = nullptr;
  void* ctx_ = nullptr;
  size_t n_tasks_ = 0;
  std::atomic<size_t> next_{0};
  int participants_ = 0;
  std::atomic<int> pending_{0};
  std::atomic<int> keep_{kMaxThreads};  // workers with a lower index live on
  std::atomic<uint64_t> jobs_{0};
};

// The pool is never destroyed: its workers sleep in a wait at process exit,
// and joining them from a static destructor would race the interpreter's
// shutdown. After fork() the child has none of the parent's workers, so it
// gets a fresh pool.
std::mutex g_pool_mutex;
ThreadPool* g_pool = nullptr;
pid_t g_pool_pid = 0;

ThreadPool& pool() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (g_pool == nullptr || g_pool_pid != getpid()) {
    g_pool = new ThreadPool();
    g_pool_pid = getpid();
  }
  return *g_pool;
}

std::atomic<int> g_num_threads{0};

thread_local InterruptScope* t_interrupt = nullptr;

// The clock of the interruption polls: they are ~50 ms apart, so a coarse
// clock (a few ms of resolution, a fraction of steady_clock's cost: it is
// read before every task) is enough.
int64_t now_ns() {
#if defined(CLOCK_MONOTONIC_COARSE)
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
#else
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
#endif
}

void run_serial(size_t n_tasks, void (*fn)(void*, size_t), void* ctx, InterruptScope* scope) {
  for (size_t t = 0; t < n_tasks; ++t) {
    if (scope != nullptr && scope->stop()) return;
    fn(ctx, t);
  }
}

}  // namespace

InterruptScope::InterruptScope(bool (*poll)(void* ctx), void* ctx, int interval_ms)
    : poll_(poll),
      ctx_(ctx),
      interval_ns_(int64_t{interval_ms} * 1000000),
      next_ns_(now_ns() + interval_ns_),
      outer_(t_interrupt) {
  t_interrupt = this;
}

InterruptScope::~InterruptScope() { t_interrupt = outer_; }

InterruptScope* InterruptScope::current() { return t_interrupt; }

int64_t InterruptScope::ns_to_next_poll() const {
  return std::max<int64_t>(next_ns_ - now_ns(), 0);
}

bool InterruptScope::stop() {
  if (interrupted_) return true;
  const int64_t now = now_ns();
  if (now < next_ns_) return false;
  interrupted_ = poll_(ctx_);
  next_ns_ = now_ns() + interval_ns_;
  return interrupted_;
}

int default_num_threads() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return std::min(n, kMaxThreads);
  }
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? std::min(static_cast<int>(n), kMaxThreads) : 1;
}

int num_threads() {
  int n = g_num_threads.load(std::memory_order_relaxed);
  if (n == 0) {
    int expected = 0;
    g_num_threads.compare_exchange_strong(expected, default_num_threads());
    n = g_num_threads.load(std::memory_order_relaxed);
  }
  return n;
}

void set_num_threads(int n) {
  n = std::clamp(n, 1, kMaxThreads);
  const int before = g_num_threads.exchange(n, std::memory_order_relaxed);
  if (before > n) pool().trim(n);
}

uint64_t pool_jobs() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (g_pool == nullptr || g_pool_pid != getpid()) return 0;
  return g_pool->jobs();
}

int threads_for(size_t work) { return work < kMinParallelWork ? 1 : num_threads(); }

void parallel_for(size_t n_tasks, void (*fn)(void* ctx, size_t task), void* ctx, size_t work) {
  InterruptScope* scope = t_interrupt;
  if (scope != nullptr && scope->stop()) return;
  const int threads =
      static_cast<int>(std::min<size_t>(static_cast<size_t>(threads_for(work)), n_tasks));
  if (threads <= 1 || t_in_job) {
    run_serial(n_tasks, fn, ctx, scope);
    return;
  }
  ThreadPool& p = pool();
  std::unique_lock<std::mutex> busy(p.submit_mutex(), std::try_to_lock);
  if (!busy.owns_lock()) {
    run_serial(n_tasks, fn, ctx, scope);
    return;
  }
  t_in_job = true;
  struct Leave {
    ~Leave() { t_in_job = false; }
  } leave;
  p.run(n_tasks, fn, ctx, threads, scope);
}

}  // namespace lowp
