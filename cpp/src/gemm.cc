// GEMM operator and driver: packs B once per path, folds the weight-only
// zero-point terms, blocks the computation for the caches and splits it into
// tasks for the thread pool. Integer sums are exact in any order, so the
// split never changes a result.
#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include "gemm_hooks.h"
#include "lowp/lowp.h"

namespace lowp {
namespace {

size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

// 64-byte aligned, uninitialized storage.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  void reserve(size_t bytes) {
    if (bytes <= size_) return;
    std::free(data_);
    size_ = round_up(bytes, 64);
    data_ = static_cast<uint8_t*>(std::aligned_alloc(64, size_));
    if (data_ == nullptr) throw std::bad_alloc();
  }
  uint8_t* data() const { return data_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

struct PackedB {
  const GemmKernel* kernel;
  // The zero points the kernel's row correction uses: b_zp, or b_zp - 128
  // where the kernel stores B as int8 (b_flip 0x80). [n_padded]
  std::vector<int32_t> b_zero_point;
  size_t k_padded;  // K rounded up to the kernel's k-group
  size_t kc;        // k values per cache block (the last block may be shorter)
  size_t panels;    // panels of nr columns
  AlignedBuffer data;

  // Panel p of the K block starting at k0. Blocks are stored one after
  // another, so a block of every panel is contiguous and streams well.
  const uint8_t* panel(size_t k0, size_t p) const {
    const size_t kb = std::min(kc, k_padded - k0);
    return data.data() + k0 * panels * kernel->nr + p * kb * kernel->nr;
  }
};

// K blocks of equal size (a multiple of kr, at most the kernel's kc), so no
// block is a short remainder.
size_t balanced_kc(size_t k_padded, const GemmKernel& kn) {
  const size_t blocks = (k_padded + kn.kc - 1) / kn.kc;
  return round_up((k_padded + blocks - 1) / blocks, kn.kr);
}

// B[k][n] -> K blocks; in a block, panels of nr columns; in a panel, groups
// of kr k values; in a group, nr columns of kr consecutive k values, each
// byte XORed with the kernel's b_flip. Missing values are zero: they meet
// zero A values (padded k) or land in columns that are never stored.
void pack_b(const uint8_t* b, size_t k, size_t n, size_t ldb, const GemmKernel& kn, PackedB* out) {
  out->kernel = &kn;
  const uint8_t flip = kn.b_flip;
  out->k_padded = round_up(std::max<size_t>(k, 1), kn.kr);
  out->kc = balanced_kc(out->k_padded, kn);
  out->panels = (n + kn.nr - 1) / kn.nr;
  const size_t bytes = out->panels * out->k_padded * kn.nr;
  out->data.reserve(bytes + 64);
  std::memset(out->data.data(), 0, bytes);
  for (size_t kk = 0; kk < k; ++kk) {
    const size_t k0 = kk / out->kc * out->kc, in_block = kk - k0;
    const size_t group = in_block / kn.kr, within = in_block % kn.kr;
    for (size_t p = 0; p < out->panels; ++p) {
      uint8_t* row = const_cast<uint8_t*>(out->panel(k0, p)) + group * kn.nr * kn.kr + within;
      const uint8_t* src = b + kk * ldb + p * kn.nr;
      const size_t cols = std::min(kn.nr, n - p * kn.nr);
      for (size_t c = 0; c < cols; ++c) row[c * kn.kr] = src[c] ^ flip;
    }
  }
}

struct Scratch {
  AlignedBuffer a_packed, partial, a_rows, c_block;
  std::vector<int32_t> rowsum;
};

Scratch& thread_scratch() {
  static thread_local Scratch scratch;
  return scratch;
}

}  // namespace

struct Gemm::Impl {
  size_t k, n, n_padded;
  int32_t a_zero_point;
  std::vector<uint8_t> b;                         // the weights as given, to pack for another path
  std::vector<int32_t> col_offset, b_zero_point;  // [n_padded]
  bool b_zero_point_uniform = true;
  // One packed copy per kernel (paths that share a kernel share it), made
  // when a path first runs; the active path's at creation.
  mutable std::mutex mutex;
  mutable std::vector<std::unique_ptr<PackedB>> packed;

  const PackedB& packed_for(Path path) const {
    const GemmKernel& kn = gemm_kernel_for(kernels_of(path), n);
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& p : packed) {
      if (p->kernel == &kn) return *p;
    }
    {
      auto p = std::make_unique<PackedB>();
      pack_b(b.data(), k, n, n, kn, p.get());
      // (B ^ 0x80) as int8 is B - 128: sum A B = sum A (B - 128) + 128 rowsum(A).
      const int32_t zp_shift = kn.b_flip == 0x80 ? 128 : 0;
      p->b_zero_point = b_zero_point;
      for (size_t j = 0; j < n; ++j) p->b_zero_point[j] -= zp_shift;
      packed.push_back(std::move(p));
    }
    return *packed.back();
  }

  void run(const GemmCall& call) const;
};

Gemm::Gemm(const uint8_t* b, size_t k, size_t n, size_t ldb, const int32_t* b_zero_point,
           size_t b_zero_point_count, int32_t a_zero_point, const int32_t* bias)
    : impl_(std::make_unique<Impl>()) {
  Impl& g = *impl_;
  g.k = k;
  g.n = n;
  // Per-column arrays reach a whole panel past any column a panel starts at.
  g.n_padded = round_up(n + kMaxNr, kMaxNr);
  g.a_zero_point = a_zero_point;
  g.b.resize(k * n);
  for (size_t kk = 0; kk < k; ++kk) std::memcpy(&g.b[kk * n], b + kk * ldb, n);
  g.col_offset.assign(g.n_padded, 0);
  g.b_zero_point.assign(g.n_padded, 0);
  std::vector<uint32_t> colsum(n, 0);
  for (size_t kk = 0; kk < k; ++kk)
    for (size_t j = 0; j < n; ++j) colsum[j] += g.b[kk * n + j];
  // bias + K a_zp b_zp - a_zp colsum, wrapping: only the final sum must fit.
  const uint32_t azp = static_cast<uint32_t>(a_zero_point);
  for (size_t j = 0; j < n; ++j) {
    const uint32_t bzp = static_cast<uint32_t>(b_zero_point[b_zero_point_count == 1 ? 0 : j]);
    const uint32_t bias_j = bias ? static_cast<uint32_t>(bias[j]) : 0u;
    g.b_zero_point[j] = static_cast<int32_t>(bzp);
    g.b_zero_point_uniform = g.b_zero_point_uniform && g.b_zero_point[j] == g.b_zero_point[0];
    g.col_offset[j] =
        static_cast<int32_t>(bias_j + static_cast<uint32_t>(k) * azp * bzp - azp * colsum[j]);
  }
  g.packed_for(active_path());  // pack now: the first run should only compute
}

Gemm::~Gemm() = default;
size_t Gemm::k() const { return impl_->k; }
size_t Gemm::n() const { return impl_->n; }

void Gemm::run(const uint8_t* a, size_t m, size_t lda, int32_t* c, size_t ldc) const {
  GemmCall call;
  call.a = a;
  call.m = m;
  call.lda = lda;
  call.c = c;
  call.ldc = ldc;
  impl_->run(call);
}

void Gemm::run(const uint8_t* a, size_t m, size_t lda, const Requantization& requant, uint8_t* c,
               size_t ldc) const {
  run(a, m, lda, *prepare(requant), c, ldc);
}

std::unique_ptr<OutputStage> Gemm::prepare(const Requantization& requant) const {
  return std::make_unique<OutputStage>(requant, impl_->n);
}

void Gemm::run(const uint8_t* a, size_t m, size_t lda, const OutputStage& stage, uint8_t* c,
               size_t ldc) const {
  GemmCall call;
  call.a = a;
  call.m = m;
  call.lda = lda;
  call.stage = &stage;
  call.c = c;
  call.ldc = ldc;
  impl_->run(call);
}

// Per-column tables reach a whole panel of the widest kernel past the last
// column (the padding repeats real channels, whose results are never
// stored); a per-tensor stage is one entry.
OutputStage::OutputStage(const Requantization& requant, size_t columns)
    : requant_(requant),
      columns_(columns),
      tables_(std::make_unique<Tables>(
          requant, requant.count == 1 ? 1 : round_up(columns + kMaxNr, kMaxNr))) {
  requant_.multiplier = nullptr;
  requant_.shift = nullptr;
}

OutputStage::~OutputStage() = default;

void run_gemm(const Gemm& gemm, const GemmCall& call) { gemm.impl_->run(call); }

namespace {

struct GemmJob {
  const GemmKernel* kn;
  const PackedB* packed;
  const uint8_t* a;
  size_t m, k, n, lda, ldc;
  // Row blocks: tasks_m of them, block i covering micro-panels [i P /
  // tasks_m, (i + 1) P / tasks_m) of the P = ceil(m / mr), so that they
  // differ by at most one micro-panel (a fixed mc would leave the last block
  // short: 512 rows in blocks of 72 give 7 x 72 + 8, and two threads 288 and
  // 224 rows, at best 1.78x one thread).
  size_t tasks_m, micro_panels;
  size_t nc, n_blocks_n;
  const int32_t* col_offset;
  const int32_t* b_zero_point;
  bool b_zero_point_uniform;
  const ChannelParams* requant;
  int32_t zero_point, qmin, qmax;
  void* c;
  size_t c_elem;  // bytes per output element
  const GemmRowSource* source;
  const GemmBlockSink* sink;
};

// One task: rows [m0, m0 + mc) x columns [n0, n0 + nc) of C, all of K.
// Loop order: K blocks, then A micro-panels (each packed once per block and
// kept in L1), then the B panels of the block (streaming from L2).
void gemm_task(void* ctx, size_t task) {
  const GemmJob& j = *static_cast<const GemmJob*>(ctx);
  const GemmKernel& kn = *j.kn;
  const PackedB& pb = *j.packed;
  const size_t ti = task / j.n_blocks_n, n0 = (task % j.n_blocks_n) * j.nc;
  const size_t m0 = ti * j.micro_panels / j.tasks_m * kn.mr;
  const size_t rows = std::min((ti + 1) * j.micro_panels / j.tasks_m * kn.mr, j.m) - m0;
  const size_t cols = std::min(j.nc, j.n - n0);
  const size_t micro_panels = (rows + kn.mr - 1) / kn.mr;
  const size_t panels = (cols + kn.nr - 1) / kn.nr;
  const bool blocked = pb.kc < pb.k_padded;
  const size_t tile = kn.mr * kn.nr;

  Scratch& s = thread_scratch();
  // A rows from memory, gathered once for the whole task (all of K), or
  // packed by the source itself.
  // (With a source, j.a is null: no pointer arithmetic on it.)
  const uint8_t* a = j.source == nullptr ? j.a + m0 * j.lda : nullptr;
  size_t lda = j.lda;
  const bool source_packs = j.source != nullptr && j.source->pack != nullptr;
  if (j.source != nullptr && !source_packs) {
    s.a_rows.reserve(rows * j.k);
    j.source->gather(j.source->ctx, m0, rows, s.a_rows.data());
    a = s.a_rows.data();
    lda = j.k;
  }
  // C in place, or a task-sized block handed to the sink at the end.
  // (With a sink, j.c is null.) The block's row stride is rounded up only
  // for alignment: edge tiles store just their valid columns.
  uint8_t* c = nullptr;
  size_t ldc = j.ldc;
  if (j.sink == nullptr) {
    c = static_cast<uint8_t*>(j.c) + (m0 * j.ldc + n0) * j.c_elem;
  } else {
    ldc = round_up(cols, 16);
    s.c_block.reserve(rows * ldc * j.c_elem);
    c = s.c_block.data();
  }
  s.a_packed.reserve(pb.kc * kn.a_bytes_per_k);
  if (blocked) s.partial.reserve(micro_panels * panels * tile * sizeof(int32_t));
  s.rowsum.assign(micro_panels * kn.mr, 0);
  int32_t* partial = reinterpret_cast<int32_t*>(s.partial.data());

  GemmTileOut out;
  out.ldc = ldc;
  out.requant = j.requant;
  out.zero_point = j.zero_point;
  out.qmin = j.qmin;
  out.qmax = j.qmax;
  for (size_t k0 = 0; k0 < pb.k_padded; k0 += pb.kc) {
    const size_t kb = std::min(pb.kc, pb.k_padded - k0);
    const bool first = k0 == 0, last = k0 + kb == pb.k_padded;
    const size_t k_valid = j.k > k0 ? std::min(kb, j.k - k0) : 0;
    for (size_t i = 0; i < micro_panels; ++i) {
      const size_t row = m0 + i * kn.mr;
      if (source_packs) {
        j.source->pack(j.source->ctx, kn, row, std::min(kn.mr, j.m - row), k0, k_valid, kb,
                       s.a_packed.data(), &s.rowsum[i * kn.mr]);
      } else {
        kn.pack_a(a + i * kn.mr * lda + k0, lda, std::min(kn.mr, j.m - row), k_valid, kb,
                  s.a_packed.data(), &s.rowsum[i * kn.mr]);
      }
      out.rows = std::min(kn.mr, j.m - row);
      out.rowsum = &s.rowsum[i * kn.mr];
      for (size_t p = 0; p < panels; ++p) {
        const size_t col = n0 + p * kn.nr;
        out.cols = std::min(kn.nr, j.n - col);
        out.col_offset = j.col_offset + col;
        out.b_zero_point = j.b_zero_point + col;
        out.b_zero_point_uniform = j.b_zero_point_uniform;
        out.requant_column = col;
        out.c = c + (i * kn.mr * ldc + p * kn.nr) * j.c_elem;
        int32_t* tile_partial = partial + (i * panels + p) * tile;
        kn.ukernel(kb / kn.kr, s.a_packed.data(), pb.panel(k0, n0 / kn.nr + p),
                   first ? nullptr : tile_partial, last ? nullptr : tile_partial, &out);
      }
    }
  }
  if (j.sink != nullptr) j.sink->scatter(j.sink->ctx, m0, rows, n0, cols, c, ldc);
}

// One GEMV task: the panels of columns [n0, n0 + nc).
void gemv_task(void* ctx, size_t task) {
  const GemmJob& j = *static_cast<const GemmJob*>(ctx);
  const PackedB& pb = *j.packed;
  const size_t nr = j.kn->nr;
  const size_t n0 = task * j.nc, cols = std::min(j.nc, j.n - n0);
  const GemvB b = {pb.data.data(), pb.k_padded, pb.kc, pb.panels};
  GemmTileOut out;
  out.rows = 1;
  out.cols = cols;
  out.col_offset = j.col_offset + n0;
  out.b_zero_point = j.b_zero_point + n0;
  out.b_zero_point_uniform = j.b_zero_point_uniform;
  out.rowsum = nullptr;  // the kernel sums its row itself
  out.c = static_cast<uint8_t*>(j.c) + n0 * j.c_elem;
  out.ldc = j.ldc;
  out.requant = j.requant;
  out.requant_column = n0;
  out.zero_point = j.zero_point;
  out.qmin = j.qmin;
  out.qmax = j.qmax;
  j.kn->gemv(j.a, j.k, b, n0 / nr, (n0 + cols + nr - 1) / nr, &out);
}

}  // namespace

void Gemm::Impl::run(const GemmCall& call) const {
  const size_t m = call.m;
  const Requantization* rq = call.stage != nullptr ? &call.stage->requant() : nullptr;
  if (m == 0 || n == 0) return;
  const PackedB& p = packed_for(active_path());
  const GemmKernel& kn = *p.kernel;

  GemmJob job;
  job.kn = &kn;
  job.packed = &p;
  job.a = call.a;
  job.m = m;
  job.k = k;
  job.n = n;
  job.lda = call.lda;
  job.ldc = call.ldc;
  job.col_offset = col_offset.data();
  job.b_zero_point = p.b_zero_point.data();
  job.b_zero_point_uniform = b_zero_point_uniform;
  job.requant = call.stage != nullptr ? &call.stage->tables().tables.params() : nullptr;
  job.zero_point = rq ? rq->zero_point : 0;
  job.qmin = rq ? rq->qmin : 0;
  job.qmax = rq ? rq->qmax : 255;
  job.c = call.c;
  job.c_elem = rq ? 1 : sizeof(int32_t);
  job.source = call.source;
  job.sink = call.sink;

  // Task shape: up to 64 rows by 512 columns, so that a K block of B
  // (kc x 512 bytes) and the task's partial sums (64 x 512 int32) share L2;
  // split further while there are fewer than 4 tasks per thread.
  const size_t work = m * n * std::max<size_t>(k, 1);
  const size_t threads = static_cast<size_t>(threads_for(work));
  // With K in one block there are no partial sums to keep in L2, and with a
  // small K a 64-row task is too little work for its fixed costs: take about
  // 16 KiB of A rows (K = 27: ~600 rows).
  const size_t rows_wanted =
      p.kc < p.k_padded ? 64 : std::max<size_t>(64, 16384 / std::max<size_t>(k, 1));
  size_t mc = std::min(round_up(m, kn.mr), round_up(rows_wanted, kn.mr));
  size_t nc = std::min(round_up(n, kn.nr), round_up(512, kn.nr));
  auto tasks = [&] { return ((m + mc - 1) / mc) * ((n + nc - 1) / nc); };
  while (threads > 1 && tasks() < 4 * threads) {
    if (nc > 2 * kn.nr) {
      nc = round_up(nc / 2, kn.nr);
    } else if (mc > 2 * kn.mr) {
      mc = round_up(mc / 2, kn.mr);
    } else {
      break;
    }
  }
  job.micro_panels = (m + kn.mr - 1) / kn.mr;
  job.tasks_m = (m + mc - 1) / mc;
  job.nc = nc;
  job.n_blocks_n = (n + nc - 1) / nc;
  if (m == 1 && kn.gemv != nullptr && call.source == nullptr && call.sink == nullptr) {
    // Tasks of whole groups of 4 panels, about 2 per thread; one task below
    // ~2M multiply-adds (~20 us on one core), where waking a worker costs
    // more than it saves (1x1024x1024: 117 GOPS on one thread, 97 on two).
    // A task stays under ~32M multiply-adds, so that a long GEMV can be
    // interrupted between tasks.
    const size_t groups = (p.panels + 3) / 4;
    const size_t gemv_work = size_t{2} << 20;
    size_t per_task = k * n < gemv_work
                          ? groups
                          : std::max<size_t>(1, (groups + 2 * threads - 1) / (2 * threads));
    const size_t group_work = std::max<size_t>(k, 1) * 4 * kn.nr;
    per_task = std::min(per_task, std::max<size_t>(1, (size_t{32} << 20) / group_work));
    job.nc = per_task * 4 * kn.nr;
    job.n_blocks_n = (n + job.nc - 1) / job.nc;
    parallel_for(job.n_blocks_n, gemv_task, &job, k * n < gemv_work ? 0 : work);
    return;
  }
  parallel_for(tasks(), gemm_task, &job, work);
}

}  // namespace lowp
