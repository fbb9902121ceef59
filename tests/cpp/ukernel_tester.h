// A tester for one GEMM microkernel (lowp::GemmKernel), in the style of
// QNNPACK's test/gemm-microkernel-tester.h: fluent setters, then test(kn) or
// test_gemv(kn) against a plain int64 triple loop.
//
// It takes the kernel itself, not a path, so a kernel is checked before it
// is wired into one. Everything the driver (gemm.cc) would do is done here
// by hand, from the documented contract (gemm.h):
//   - A is packed by kn.pack_a from a matrix with lda > K (garbage between
//     the rows), one K block at a time, and once more in pieces of the block
//     (as GemmRowSource::pack may): the bytes and row sums must agree.
//   - B panels are packed here from the generic layout: per group of kr k
//     values, nr columns of kr consecutive k bytes, each XORed with
//     kn.b_flip, zeros past K and past the valid columns; with b_flip 0x80
//     the zero points handed to the kernel are b_zp - 128.
//   - K blocks are chained through acc_in / acc_out (in place, as the
//     driver does, or through separate buffers), and the raw partial sums
//     are checked too; the last block finishes through GemmTileOut.
//   - Every buffer the kernel writes is surrounded by 0xA5 canaries (C: before
//     and after the tile, between rows when ldc > cols, rows past `rows`
//     up to mr; the packed A past kc * a_bytes_per_k; acc_out past mr * nr).
//   - The per-column arrays hold garbage past the valid columns and are
//     exactly one panel long, so AddressSanitizer sees any read past nr.
#pragma once

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "fixedpoint_scalar.h"
#include "gemm.h"
#include "kernels.h"
#include "test_util.h"

namespace lowp_test {

// 64-byte aligned storage, like the driver's (its size rounded up to 64).
class AlignedBytes {
 public:
  explicit AlignedBytes(size_t bytes, uint8_t fill)
      : size_((bytes + 63) / 64 * 64 + 64 * (bytes == 0)),
        data_(static_cast<uint8_t*>(std::aligned_alloc(64, size_)), &std::free) {
    std::memset(data_.get(), fill, size_);
  }
  uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  size_t size_;
  std::unique_ptr<uint8_t, decltype(&std::free)> data_;
};

enum class Requant { kNone, kPerTensor, kPerColumn };

class GemmUkernelTester {
 public:
  // Tile: rows <= kn.mr, cols <= kn.nr (0: the whole tile). For test_gemv,
  // cols is N over any number of panels.
  GemmUkernelTester& rows(size_t v) { return set(rows_, v); }
  GemmUkernelTester& cols(size_t v) { return set(cols_, v); }
  GemmUkernelTester& k(size_t v) { return set(k_, v); }
  GemmUkernelTester& lda(size_t v) { return set(lda_, v); }  // 0: K + 5
  GemmUkernelTester& ldc(size_t v) { return set(ldc_, v); }  // 0: cols + 3
  // k values per K block (rounded up to kr, at most kn.kc; 0: kn.kc).
  GemmUkernelTester& k_block(size_t v) { return set(k_block_, v); }
  // Also pack each block of A in pieces of this many k values (a multiple
  // of kr; 0: kr) and compare with the one-call pack.
  GemmUkernelTester& pack_piece(size_t v) { return set(pack_piece_, v); }
  // Middle K blocks read and write one partial-sum buffer (as the driver)
  // or two (which also checks acc_out's canary).
  GemmUkernelTester& in_place(bool v) { return set(in_place_, v); }
  GemmUkernelTester& a_zero_point(int32_t v) { return set(a_zp_, v); }
  // b zero point: one value for every column (the uniform flag set), or
  // random per column.
  GemmUkernelTester& b_zero_point(int32_t v) {
    per_column_ = false;
    return set(b_zp_, v);
  }
  GemmUkernelTester& per_column_zero_points() { return set(per_column_, true); }
  GemmUkernelTester& bias(bool v) { return set(bias_, v); }
  // Constant operands (-1: random).
  GemmUkernelTester& fill_a(int v) { return set(fill_a_, v); }
  GemmUkernelTester& fill_b(int v) { return set(fill_b_, v); }
  GemmUkernelTester& requant(Requant v) { return set(requant_, v); }
  // Shifts drawn from [lo, hi] (positive: left). Unset, right shifts
  // around log2(K) + 7, which map typical sums into [0, 255] (most outputs
  // unclamped, so that a wrong multiplier or rounding shows).
  GemmUkernelTester& shifts(int lo, int hi) {
    shifts_set_ = true;
    shift_lo_ = lo;
    return set(shift_hi_, hi);
  }
  // Biases that set each column's sum next to a rounding tie of its
  // multiplier and shift, where the result lands inside the output range,
  // or at the ends of int32: checks the output stage's rounding at every
  // shift. A is filled with its zero point, so that the sum is the bias.
  GemmUkernelTester& bias_at_ties() {
    bias_ = true;
    return set(ties_, true);
  }
  GemmUkernelTester& output_zero_point(int32_t v) { return set(out_zp_, v); }
  GemmUkernelTester& clamp(int32_t lo, int32_t hi) {
    qmin_ = lo;
    return set(qmax_, hi);
  }
  // The tile's first column in a wider GEMM (a multiple of nr), which
  // indexes the per-column requant tables.
  GemmUkernelTester& column(size_t v) { return set(column_, v); }
  // GEMV: panels [p0, p1) of the cols / nr (0: to the last).
  GemmUkernelTester& panels(size_t p0, size_t p1) {
    p0_ = p0;
    return set(p1_, p1);
  }
  GemmUkernelTester& seed(uint32_t v) { return set(seed_, v); }

  void test(const lowp::GemmKernel& kn) const {
    const size_t mr = kn.mr, nr = kn.nr, kr = kn.kr;
    const size_t m = rows_ ? rows_ : mr, n = cols_ ? cols_ : nr, k = k_;
    if (m > mr || n > nr || k == 0 || !valid_flip(kn)) {
      LOWP_CHECK(false, "%s: bad tester case %s", kn.name, describe(kn).c_str());
      return;
    }
    const Data d = make_data(kn, m, n, k);
    const size_t lda = d.lda, ldc = ldc_ ? ldc_ : n + 3;
    const size_t k_padded = round_up(k, kr), kb_max = block_size(kn);
    const size_t es = requant_ == Requant::kNone ? 4 : 1;  // output element bytes
    const std::string what = describe(kn);

    // C with room for mr rows of ldc, a guard before and after.
    const size_t guard = 64;
    const size_t c_elems = guard + mr * std::max(ldc, nr) + guard;
    std::vector<uint8_t> c(c_elems * es, 0xA5);
    std::vector<int32_t> rowsum(mr), rowsum_pieces(mr);
    // Rows past m: a row sum the kernel may use for rows it never stores
    // (any value a real row could have).
    for (size_t i = 0; i < mr; ++i) rowsum[i] = i < m ? 0 : static_cast<int32_t>(k * 131 + i);
    rowsum_pieces = rowsum;

    const size_t tile = mr * nr;
    std::vector<int32_t> acc_a(tile + 16, kCanary32), acc_b(tile + 16, kCanary32);
    const int32_t* acc_in = nullptr;
    int32_t* acc_next = acc_a.data();
    std::vector<int64_t> raw(m * n, 0);

    lowp::GemmTileOut out = tile_out(kn, d, m, n, c.data() + guard * es, ldc);
    out.rowsum = rowsum.data();

    bool blocks_ok = true;
    for (size_t k0 = 0; k0 < k_padded && blocks_ok; k0 += kb_max) {
      const size_t kb = std::min(kb_max, k_padded - k0);
      const size_t k_valid = std::min(kb, k - k0);
      const bool last = k0 + kb == k_padded;
      // A: one call, and in pieces into a buffer of another fill, so that
      // a byte of the micro-panel left unwritten (a padded k value or row
      // not zeroed) shows as a difference.
      const size_t a_bytes = kb * kn.a_bytes_per_k;
      AlignedBytes a_packed(a_bytes + 64, 0xA5), a_pieces(a_bytes + 64, 0x5A);
      kn.pack_a(d.a.data() + k0, lda, m, k_valid, kb, a_packed.data(), rowsum.data());
      blocks_ok &= LOWP_EXPECT(canary_intact(a_packed.data() + a_bytes, a_packed.size() - a_bytes),
                               "%s: pack_a wrote past kc * a_bytes_per_k = %zu bytes (block at "
                               "k %zu); %s",
                               kn.name, a_bytes, k0, what.c_str());
      const size_t piece = pack_piece_ ? round_up(pack_piece_, kr) : kr;
      for (size_t off = 0; off < kb; off += piece) {
        const size_t pk = std::min(piece, kb - off);
        const size_t pv = k_valid > off ? std::min(pk, k_valid - off) : 0;
        kn.pack_a(d.a.data() + k0 + off, lda, m, pv, pk, a_pieces.data() + off * kn.a_bytes_per_k,
                  rowsum_pieces.data());
      }
      blocks_ok &=
          LOWP_EXPECT(std::memcmp(a_packed.data(), a_pieces.data(), a_bytes) == 0 &&
                          std::equal(rowsum.begin(), rowsum.begin() + m, rowsum_pieces.begin()),
                      "%s: pack_a in pieces of %zu k values differs from one call, or left bytes "
                      "unwritten (block at k %zu); %s",
                      kn.name, piece, k0, what.c_str());
      // B: this block's panel.
      AlignedBytes b_packed(kb * nr + 64, 0);
      pack_b_block(kn, d, n, k0, kb, b_packed.data());

      int32_t* acc_out = nullptr;
      if (!last) {
        acc_out = in_place_ && acc_in != nullptr ? const_cast<int32_t*>(acc_in) : acc_next;
        if (acc_out != acc_in) std::fill(acc_out, acc_out + tile + 16, kCanary32);
      }
      kn.ukernel(kb / kr, a_packed.data(), b_packed.data(), acc_in, acc_out, &out);
      if (!last) {
        blocks_ok &= check_partial(kn, d, m, n, k0, k0 + kb, raw, acc_out, acc_out != acc_in, what);
        blocks_ok &= LOWP_EXPECT(canary_intact(c.data(), c.size()),
                                 "%s: wrote C in a K block with acc_out (block at k %zu); %s",
                                 kn.name, k0, what.c_str());
        acc_in = acc_out;
        acc_next = acc_out == acc_a.data() ? acc_b.data() : acc_a.data();
      }
    }
    if (!blocks_ok) return;
    for (size_t i = 0; i < m; ++i) {
      uint32_t s = 0;
      for (size_t kk = 0; kk < k; ++kk) s += d.a[i * lda + kk];
      if (!LOWP_EXPECT(static_cast<uint32_t>(rowsum[i]) == s, "%s: row sum %zu: got %d want %u; %s",
                       kn.name, i, rowsum[i], s, what.c_str()))
        return;
    }
    check_c(kn, d, m, n, ldc, c, guard, 0, n, what);
  }

  // kn.gemv (if not null): M = 1 over panels [p0, p1) of a B of cols
  // columns, packed in K blocks of k_block as the driver's PackedB.
  void test_gemv(const lowp::GemmKernel& kn) const {
    if (kn.gemv == nullptr) return;
    const size_t nr = kn.nr, kr = kn.kr, n = cols_ ? cols_ : nr, k = k_;
    const size_t panels = (n + nr - 1) / nr;
    const size_t p0 = p0_, p1 = p1_ ? std::min(p1_, panels) : panels;
    if (k == 0 || p0 >= p1 || column_ % nr != 0 || !valid_flip(kn)) {
      LOWP_CHECK(false, "%s: bad gemv tester case %s", kn.name, describe(kn).c_str());
      return;
    }
    const std::string what =
        describe(kn) + " panels [" + std::to_string(p0) + ", " + std::to_string(p1) + ")";
    const Data d = make_data(kn, 1, n, k);
    // The row exactly K bytes long: a read past it is an ASan error.
    const std::vector<uint8_t> a_row(d.a.begin(), d.a.begin() + k);
    const size_t k_padded = round_up(k, kr), kc = block_size(kn);
    AlignedBytes b_packed(panels * k_padded * nr + 64, 0);
    for (size_t k0 = 0; k0 < k_padded; k0 += kc) {
      const size_t kb = std::min(kc, k_padded - k0);
      for (size_t p = 0; p < panels; ++p) {
        pack_b_block(kn, d, n, k0, kb, b_packed.data() + k0 * panels * nr + p * kb * nr, p * nr);
      }
    }
    const lowp::GemvB b = {b_packed.data(), k_padded, kc, panels};
    const size_t es = requant_ == Requant::kNone ? 4 : 1, guard = 64;
    std::vector<uint8_t> c((guard + n + guard) * es, 0xA5);
    lowp::GemmTileOut out = tile_out(kn, d, 1, n, c.data() + (guard + p0 * nr) * es, n, p0 * nr);
    out.rows = 1;
    out.cols = std::min(n, p1 * nr) - p0 * nr;
    out.rowsum = nullptr;
    kn.gemv(a_row.data(), k, b, p0, p1, &out);
    check_c(kn, d, 1, n, n, c, guard, p0 * nr, std::min(n, p1 * nr), what);
  }

  std::string describe(const lowp::GemmKernel& kn) const {
    char text[400];
    const char* rq = requant_ == Requant::kNone        ? "int32"
                     : requant_ == Requant::kPerTensor ? "u8 per-tensor"
                                                       : "u8 per-column";
    std::snprintf(text, sizeof(text),
                  "[%zux%zu k=%zu lda=%zu ldc=%zu k_block=%zu piece=%zu %s a_zp=%d b_zp=%s%s "
                  "fill=%d/%d %s shifts=[%d,%d] out_zp=%d clamp=[%d,%d] column=%zu seed=%u]",
                  rows_ ? rows_ : kn.mr, cols_ ? cols_ : kn.nr, k_, lda_ ? lda_ : k_ + 5,
                  ldc_ ? ldc_ : (cols_ ? cols_ : kn.nr) + 3, block_size(kn), pack_piece_,
                  in_place_ ? "in-place" : "two-buffers", a_zp_,
                  per_column_ ? "per-column" : std::to_string(b_zp_).c_str(), bias_ ? " bias" : "",
                  a_fill(), fill_b_, rq, shift_range(k_).first, shift_range(k_).second, out_zp_,
                  qmin_, qmax_, column_, seed_);
    return text;
  }

 private:
  static constexpr int32_t kCanary32 = static_cast<int32_t>(0xA5A5A5A5u);

  struct Data {
    std::vector<uint8_t> a, b;  // a: rows at lda (garbage between); b: k x n
    size_t lda;
    std::vector<int32_t> b_zp, bias;               // [n]
    std::vector<int32_t> mult, shift;              // [column + n] or [1]
    std::vector<int32_t> col_offset, b_zp_kernel;  // [panels * nr], garbage past n
    std::unique_ptr<lowp::ChannelTables> tables;
  };

  template <typename T, typename V>
  GemmUkernelTester& set(T& field, V v) {
    field = static_cast<T>(v);
    return *this;
  }
  static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }
  size_t block_size(const lowp::GemmKernel& kn) const {
    return std::min(kn.kc, round_up(k_block_ ? k_block_ : kn.kc, kn.kr));
  }
  static bool valid_flip(const lowp::GemmKernel& kn) { return kn.b_flip == 0 || kn.b_flip == 0x80; }
  // A stored B byte as the kernel reads it: u8, or with b_flip 0x80 as s8
  // (B ^ 0x80 read as int8 is B - 128).
  static int64_t b_as_read(const lowp::GemmKernel& kn, uint8_t stored) {
    return kn.b_flip == 0x80 ? int64_t(static_cast<int8_t>(stored)) : int64_t(stored);
  }
  std::pair<int, int> shift_range(size_t k) const {
    if (shifts_set_) return {shift_lo_, shift_hi_};
    int log2k = 0;
    while ((size_t{1} << log2k) < k) ++log2k;
    const int center = -std::min(log2k + 7, 29);
    return {center - 2, center + 2};
  }
  // The constant A is filled with (-1: random).
  int a_fill() const { return ties_ ? a_zp_ : fill_a_; }
  int32_t garbage() const { return static_cast<int32_t>(0x5EED0000u + seed_ * 7919u); }
  static bool canary_intact(const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i)
      if (p[i] != 0xA5) return false;
    return true;
  }

  Data make_data(const lowp::GemmKernel& kn, size_t m, size_t n, size_t k) const {
    std::mt19937 rng(seed_);
    Data d;
    d.lda = lda_ ? lda_ : k + 5;
    // Exactly (m - 1) lda + k bytes: a read past the last row's K is an ASan
    // error; the bytes between rows are random, so a packer that reads
    // them as A gives wrong sums.
    d.a.resize((m - 1) * d.lda + k);
    for (size_t i = 0; i < d.a.size(); ++i) {
      const bool in_row = i % d.lda < k;
      d.a[i] =
          in_row && a_fill() >= 0 ? static_cast<uint8_t>(a_fill()) : static_cast<uint8_t>(rng());
    }
    d.b.resize(k * n);
    for (auto& v : d.b)
      v = fill_b_ >= 0 ? static_cast<uint8_t>(fill_b_) : static_cast<uint8_t>(rng());
    d.b_zp.resize(n);
    d.bias.resize(n);
    for (size_t j = 0; j < n; ++j) {
      d.b_zp[j] = per_column_ ? static_cast<int32_t>(rng() % 256) : b_zp_;
      // On the scale of the sums (so that a requantized output stays
      // mostly unclamped), and up to 2^24.
      const uint32_t span =
          static_cast<uint32_t>(std::min<size_t>(size_t{1} << 24, 1000 + k * 8192));
      d.bias[j] =
          bias_ ? static_cast<int32_t>(rng() % (2 * span + 1)) - static_cast<int32_t>(span) : 0;
    }
    const size_t panels = (n + kn.nr - 1) / kn.nr;
    if (requant_ != Requant::kNone) {
      // Per-column tables cover columns [0, column + panels * nr) of the
      // wider GEMM; entries past its N repeat real ones (ChannelTables).
      const size_t count = requant_ == Requant::kPerTensor ? 1 : column_ + n;
      d.mult.resize(count);
      d.shift.resize(count);
      const int lo = shift_range(k).first, hi = shift_range(k).second;
      for (size_t i = 0; i < count; ++i) {
        d.mult[i] = (1 << 30) + static_cast<int32_t>(rng() % (1u << 30));
        d.shift[i] = lo + static_cast<int32_t>(rng() % uint32_t(hi - lo + 1));
      }
      if (count > 1) d.mult[column_] = INT32_MAX;  // the largest multiplier, once
      const size_t size = requant_ == Requant::kPerTensor ? 1 : column_ + panels * kn.nr;
      d.tables = std::make_unique<lowp::ChannelTables>(d.mult.data(), d.shift.data(), count, size);
      if (ties_) {
        for (size_t j = 0; j < n; ++j)
          d.bias[j] = bias_at_tie(d, count == 1 ? 0 : column_ + j, rng);
      }
    }
    // Past n (columns never stored): an arbitrary offset and a zero point in
    // the range of real ones (the driver leaves zeros).
    d.col_offset.assign(panels * kn.nr, garbage());
    d.b_zp_kernel.assign(panels * kn.nr, 201 - (kn.b_flip == 0x80 ? 128 : 0));
    // What the driver folds (gemm.cc): bias + K a_zp b_zp - a_zp colsum(B),
    // wrapping; the kernel's zero points lose 128 where B is stored as s8.
    const uint32_t azp = static_cast<uint32_t>(a_zp_);
    for (size_t j = 0; j < n; ++j) {
      uint32_t colsum = 0;
      for (size_t kk = 0; kk < k; ++kk) colsum += d.b[kk * n + j];
      const uint32_t bzp = static_cast<uint32_t>(d.b_zp[j]);
      d.col_offset[j] = static_cast<int32_t>(static_cast<uint32_t>(d.bias[j]) +
                                             static_cast<uint32_t>(k) * azp * bzp - azp * colsum);
      d.b_zp_kernel[j] = d.b_zp[j] - (kn.b_flip == 0x80 ? 128 : 0);
    }
    return d;
  }

  // A sum x for channel ch whose exact x 2^left m / 2^(31 + right) lies
  // within 2 / 2^31 of r + 1/2 for a random r in [-120, 120], the point
  // where the roundings decide; one column in 8 gets an end of int32 (or
  // one next to it) instead.
  static int32_t bias_at_tie(const Data& d, size_t ch, std::mt19937& rng) {
    static const int32_t kEnds[] = {INT32_MIN, INT32_MIN + 1, -(1 << 30) - 1, -(1 << 30),
                                    (1 << 30), INT32_MAX - 1, INT32_MAX};
    if (rng() % 8 == 0) return kEnds[rng() % std::size(kEnds)];
    const int shift = d.shift[ch];
    const int left = shift > 0 ? shift : 0, right = shift < 0 ? -shift : 0;
    const int64_t r = static_cast<int64_t>(rng() % 241) - 120;
    // x = (2 r + 1) 2^(30 + right) / (m 2^left), in 128 bits, then +-2.
    const __int128 num =
        static_cast<__int128>(2 * r + 1) * (static_cast<__int128>(1) << (30 + right));
    const __int128 x =
        num / (static_cast<__int128>(d.mult[ch]) << left) + static_cast<int64_t>(rng() % 5) - 2;
    return static_cast<int32_t>(std::clamp<__int128>(x, INT32_MIN, INT32_MAX));
  }

  lowp::GemmTileOut tile_out(const lowp::GemmKernel&, const Data& d, size_t m, size_t n, void* c,
                             size_t ldc, size_t col = 0) const {
    lowp::GemmTileOut out;
    out.rows = m;
    out.cols = n;
    out.col_offset = d.col_offset.data() + col;
    out.b_zero_point = d.b_zp_kernel.data() + col;
    out.b_zero_point_uniform = !per_column_;
    out.rowsum = nullptr;
    out.c = c;
    out.ldc = ldc;
    out.requant = d.tables ? &d.tables->params() : nullptr;
    out.requant_column = column_ + col;
    out.zero_point = out_zp_;
    out.qmin = qmin_;
    out.qmax = qmax_;
    return out;
  }

  // Panel of columns [col, col + nr) of B, k values [k0, k0 + kb), in the
  // generic layout.
  static void pack_b_block(const lowp::GemmKernel& kn, const Data& d, size_t n, size_t k0,
                           size_t kb, uint8_t* dst, size_t col = 0) {
    const size_t nr = kn.nr, kr = kn.kr, k = d.b.size() / n;
    std::memset(dst, 0, kb * nr);
    for (size_t g = 0; g < kb / kr; ++g)
      for (size_t c = 0; c < nr && col + c < n; ++c)
        for (size_t w = 0; w < kr; ++w) {
          const size_t kk = k0 + g * kr + w;
          if (kk < k) dst[(g * nr + c) * kr + w] = d.b[kk * n + col + c] ^ kn.b_flip;
        }
  }

  // Adds k values [k_begin, k_end) of sum A B (B as the kernel reads it) to
  // raw, then compares the partial sums the kernel stored with it.
  bool check_partial(const lowp::GemmKernel& kn, const Data& d, size_t m, size_t n, size_t k_begin,
                     size_t k_end, std::vector<int64_t>& raw, const int32_t* acc, bool check_canary,
                     const std::string& what) const {
    const size_t k = std::min(k_end, d.b.size() / n);
    for (size_t i = 0; i < m; ++i)
      for (size_t j = 0; j < n; ++j) {
        int64_t& s = raw[i * n + j];
        for (size_t kk = k_begin; kk < k; ++kk)
          s += int64_t(d.a[i * d.lda + kk]) * b_as_read(kn, d.b[kk * n + j] ^ kn.b_flip);
        const int32_t want = static_cast<int32_t>(static_cast<uint32_t>(s));
        if (!LOWP_EXPECT(acc[i * kn.nr + j] == want,
                         "%s: acc_out after k %zu at (%zu, %zu): got %d want %d; %s", kn.name,
                         k_end, i, j, acc[i * kn.nr + j], want, what.c_str()))
          return false;
      }
    if (check_canary) {
      for (size_t i = kn.mr * kn.nr; i < kn.mr * kn.nr + 16; ++i)
        if (!LOWP_EXPECT(acc[i] == kCanary32, "%s: acc_out written past mr * nr; %s", kn.name,
                         what.c_str()))
          return false;
    }
    return true;
  }

  // C[i, j] for j in [j0, j1) against the int64 definition; every other
  // byte of the buffer (guard, tile at base, rows at ldc) still 0xA5.
  void check_c(const lowp::GemmKernel& kn, const Data& d, size_t m, size_t n, size_t ldc,
               const std::vector<uint8_t>& buffer, size_t guard, size_t j0, size_t j1,
               const std::string& what) const {
    const size_t es = requant_ == Requant::kNone ? 4 : 1;
    const size_t k = d.b.size() / n;
    const uint8_t* c = buffer.data();
    const size_t elems = buffer.size() / es;
    size_t wrong = 0, stray = 0;
    std::string first;
    for (size_t e = 0; e < elems; ++e) {
      const bool in_tile =
          e >= guard && (e - guard) / ldc < m && (e - guard) % ldc >= j0 && (e - guard) % ldc < j1;
      if (!in_tile) {
        bool intact = true;
        for (size_t b = 0; b < es; ++b) intact &= c[e * es + b] == 0xA5;
        if (!intact && stray++ == 0) {
          char text[160];
          const long off = static_cast<long>(e) - static_cast<long>(guard);
          std::snprintf(text, sizeof(text),
                        "stray write at element %ld from the tile (row %ld, col %ld)", off,
                        off >= 0 ? off / static_cast<long>(ldc) : -1,
                        off >= 0 ? off % static_cast<long>(ldc) : off);
          if (first.empty()) first = text;
        }
        continue;
      }
      const size_t i = (e - guard) / ldc, j = (e - guard) % ldc;
      int64_t s = d.bias[j];
      for (size_t kk = 0; kk < k; ++kk)
        s += (int64_t(d.a[i * d.lda + kk]) - a_zp_) * (int64_t(d.b[kk * n + j]) - d.b_zp[j]);
      const int32_t acc = static_cast<int32_t>(static_cast<uint32_t>(s));
      int32_t got, want;
      if (requant_ == Requant::kNone) {
        std::memcpy(&got, c + e * es, 4);
        want = acc;
      } else {
        const size_t ch = requant_ == Requant::kPerTensor ? 0 : column_ + j;
        got = c[e];
        want =
            lowp::fixedpoint::requantize_one(acc, d.mult[ch], d.shift[ch], out_zp_, qmin_, qmax_);
      }
      if (got != want && wrong++ == 0) {
        char text[160];
        std::snprintf(text, sizeof(text), "at (%zu, %zu): got %d want %d (acc %d)", i, j, got, want,
                      acc);
        first = text;
      }
    }
    LOWP_CHECK(wrong == 0 && stray == 0, "%s: %zu wrong, %zu stray writes; first %s; %s", kn.name,
               wrong, stray, first.c_str(), what.c_str());
  }

  size_t rows_ = 0, cols_ = 0, k_ = 1, lda_ = 0, ldc_ = 0, k_block_ = 0, pack_piece_ = 0;
  bool in_place_ = true, per_column_ = false, bias_ = false, shifts_set_ = false, ties_ = false;
  int32_t a_zp_ = 0, b_zp_ = 0;
  int fill_a_ = -1, fill_b_ = -1;
  Requant requant_ = Requant::kNone;
  int shift_lo_ = 0, shift_hi_ = 0;
  int32_t out_zp_ = 77, qmin_ = 0, qmax_ = 255;
  size_t column_ = 0, p0_ = 0, p1_ = 0;
  uint32_t seed_ = 1;
};

// Every case of test_ukernel.cc on one kernel (for a kernel not yet wired
// into a path: call it from a scratch main).
void test_gemm_ukernel_all(const lowp::GemmKernel& kn);

}  // namespace lowp_test
