// The 3x3 depthwise stencils of channels_last images (stride 1, padding 1,
// multiplier 1) over a span of pixels of one output row (the forward: one or
// two), all channels: depthwise_cl3x3.cpp walks each span down a band of rows,
// so most rows a step reads were read by the steps before (in cache). Pixels
// are `step` elements apart; channel k of a pixel is element k. Written over
// the vector traits V and included by depthwise_simd.h; like every helper
// there, each one here is a template on V in namespace simd (so no ISA unit's
// copy is shared).
//
// With `stream`, the outputs (y or dx, never the dw sums) go out with
// non-temporal stores where a register is aligned: the caller decides when
// that pays and fences afterwards (depthwise_cl3x3.cpp).
//
// Two orders of work, with the same sums (y and dx in the same order):
// - Pixel pairs (AVX-512, pixels of up to kPairPixelBytes): two adjacent
//   pixels at a time with all their channel registers before the next pair,
//   so each row is read in address order. The forward computes two output
//   rows per pair (4 input rows for 2 outputs); the weights stay in registers
//   for the pair; the backward too computes two rows per pair (the dy rows
//   and the dw sums serve both). This beat the blocks below on mid-sized
//   pixels (benchmarks/results holds the A/B runs).
// - Pixel blocks (otherwise): per channel register, B output pixels at a time
//   (8 with 32 vector registers, else 4; then smaller blocks for the span's
//   tail, or 9 for a last 9), so a block reads each row 64 bytes per pixel.
//   Each input row's B + 2 columns are loaded once into registers and serve
//   all 3 taps of the row (of both output rows it reaches, when the forward
//   takes two: 4 input rows for 2 output rows, not 6). Wide pixels (e.g. 728
//   channels) take this order: a pair's 16 pixels no longer stay in L1 for
//   the next pair.
// A partial last channel register runs under a lane mask. Sums run over the
// taps in order (r, then s), as in the other depthwise kernels; a row passed
// as nullptr lies in the padding and is skipped. The backward reads one input
// row per output row (span3x3_grad_block, span3x3_pair_grad_block). dw's sums
// take their terms in a different order in the two (a pair's two rows
// interleave), so its bits differ between them; y's and dx's do not.
#pragma once
#include <cstdint>
#include <utility>

#include "../util/stream_stores.h"

namespace cnnops {
namespace cpu {
namespace simd {

// f(std::integral_constant<int, i>{}) for i = 0 .. N-1, unrolled at compile time.
template <typename V, typename F, int... I>
__attribute__((always_inline)) inline void unrolled_seq(F& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <typename V, int N, typename F>
__attribute__((always_inline)) inline void unrolled(F&& f) {
  unrolled_seq<V>(f, std::make_integer_sequence<int, N>{});
}

template <typename V>
constexpr int span_block() {
  return sizeof(typename V::Reg) >= 64 ? 8 : 4;
}

template <typename V, bool Masked>
__attribute__((always_inline)) inline typename V::Reg span_load(const typename V::T* p, uint32_t bits) {
  if constexpr (Masked) return V::load_masked(p, bits);
  else return V::load(p);
}

template <typename V, bool Masked>
__attribute__((always_inline)) inline void span_store(typename V::T* p, typename V::Reg x, uint32_t bits) {
  if constexpr (Masked) V::store_masked(p, x, bits);
  else V::store(p, x);
}

// An output register of a span: masked ones are never streamed.
template <typename V, bool Masked>
__attribute__((always_inline)) inline void span_out(typename V::T* p, typename V::Reg x, uint32_t bits,
                                                    bool stream) {
  if constexpr (Masked) V::store_masked(p, x, bits);
  else store_or_stream<V>(p, x, stream);
}

// Channel register k (lanes `bits` if Masked) of B forward output pixels in
// each of Rows output rows; output row o reads input rows o .. o+2 of in:
//   out[o][u] = init + sum over rows r present, s = 0..2 of in[o + r][u + s - 1] * w[3r + s]
// (tap t's weights at w + t*K). Each input row's B + 2 columns are loaded once
// and serve every output row it reaches; each sum still takes its taps in
// order (r, then s).
template <typename V, int Rows, int B, bool Masked>
__attribute__((always_inline)) inline void span3x3_block(int64_t K, int64_t k, uint32_t bits,
                                                         const typename V::T* const* in, int64_t step,
                                                         const typename V::T* w, const typename V::T* init,
                                                         typename V::T* const* out, bool stream) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  Reg a[Rows][B];
  {
    const Reg a0 = init != nullptr ? span_load<V, Masked>(init + k, bits) : V::zero();
    unrolled<V, Rows>([&](auto o) __attribute__((always_inline)) {
      unrolled<V, B>([&](auto u) __attribute__((always_inline)) { a[o][u] = a0; });
    });
  }
  unrolled<V, Rows + 2>([&](auto r) __attribute__((always_inline)) {
    if (in[r] == nullptr) return;
    const T* col = in[r] - step + k;  // column -1
    Reg c[B + 2];
    unrolled<V, B + 2>([&](auto i) __attribute__((always_inline)) {
      asm("" : "+r"(col));  // one pointer bumped per load, not B + 2 live offsets
      c[i] = span_load<V, Masked>(col, bits);
      col += step;
    });
    unrolled<V, Rows>([&](auto o) __attribute__((always_inline)) {
      constexpr int tr = decltype(r)::value - decltype(o)::value;  // the tap row
      if constexpr (tr >= 0 && tr < 3) {
        unrolled<V, 3>([&](auto s) __attribute__((always_inline)) {
          const Reg ws = span_load<V, Masked>(w + (3 * tr + s) * K + k, bits);
          unrolled<V, B>([&](auto u)
                             __attribute__((always_inline)) { a[o][u] = V::fma(c[u + s], ws, a[o][u]); });
        });
      }
    });
  });
  unrolled<V, Rows>([&](auto o) __attribute__((always_inline)) {
    T* p = out[o] + k;
    unrolled<V, B>([&](auto u) __attribute__((always_inline)) {
      asm("" : "+r"(p));
      span_out<V, Masked>(p, a[o][u], bits, stream);
      p += step;
    });
  });
}

// Channel register k of both gradients at B pixels of row i, from dy rows
// i+1, i, i-1 (dy[0..2], nullptr in the padding) and input row i (x):
//   with dx: dx[u] = sum over rows r present, s of dy[r][u + 1 - s] * w[3r + s];
//   with acc: acc[(3r + s)*K + k] += sum over u of dy[r][u] * x[u + s - 1].
// The second is dw's sum taken by input row: dy row i+1-r meets input row i
// at tap row r, so the dy rows dx loads serve dw too and each input row is
// read by one step, not three. Each sum takes its pixels in order u = 0 .. B-1.
template <typename V, int B, bool Masked>
__attribute__((always_inline)) inline void span3x3_grad_block(int64_t K, int64_t k, uint32_t bits,
                                                              const typename V::T* const* dy,
                                                              const typename V::T* x, int64_t step,
                                                              const typename V::T* w, typename V::T* dx,
                                                              typename V::T* acc, bool stream) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  Reg a[B];
  Reg sum[9];
  if (dx != nullptr) unrolled<V, B>([&](auto u) __attribute__((always_inline)) { a[u] = V::zero(); });
  if (acc != nullptr) {
    unrolled<V, 9>(
        [&](auto t) __attribute__((always_inline)) { sum[t] = span_load<V, Masked>(acc + t * K + k, bits); });
  }
  unrolled<V, 3>([&](auto r) __attribute__((always_inline)) {
    if (dy[r] == nullptr) return;
    const T* col = dy[r] - step + k;  // column -1
    Reg c[B + 2];
    unrolled<V, B + 2>([&](auto i) __attribute__((always_inline)) {
      asm("" : "+r"(col));
      c[i] = span_load<V, Masked>(col, bits);
      col += step;
    });
    if (dx != nullptr)
      unrolled<V, 3>([&](auto s) __attribute__((always_inline)) {
        const Reg ws = span_load<V, Masked>(w + (3 * r + s) * K + k, bits);
        unrolled<V, B>([&](auto u) __attribute__((always_inline)) { a[u] = V::fma(c[u + 2 - s], ws, a[u]); });
      });
    if (acc != nullptr) {
      // Input row i's columns, loaded again for each dy row (from L1): with
      // the dy row, the dx sums and the 9 dw sums live, they do not all fit
      // in registers.
      const T* xcol = x - step + k;  // column -1
      asm("" : "+r"(xcol));
      unrolled<V, B>([&](auto u) __attribute__((always_inline)) {
        unrolled<V, 3>([&](auto s) __attribute__((always_inline)) {
          sum[3 * r + s] =
              V::fma(c[u + 1], span_load<V, Masked>(xcol + (u + s) * step, bits), sum[3 * r + s]);
        });
      });
    }
  });
  if (acc != nullptr)
    unrolled<V, 9>(
        [&](auto t) __attribute__((always_inline)) { span_store<V, Masked>(acc + t * K + k, sum[t], bits); });
  if (dx == nullptr) return;
  T* o = dx + k;
  unrolled<V, B>([&](auto u) __attribute__((always_inline)) {
    asm("" : "+r"(o));
    span_out<V, Masked>(o, a[u], bits, stream);
    o += step;
  });
}

// Lanes of the last channel register: the bits of its K % W lanes (0: none partial).
template <typename V>
inline uint32_t span_tail_bits(int64_t K) {
  return (uint32_t(1) << (K % V::kWidth)) - 1;
}

// Pixels [j, npix) of the span in blocks of B, then of B/2, ... 1; `block` is
// called as block(integral_constant<int, B>, j) for each. With B = 8, a last
// 9 pixels make one block (B + 1 = 9 sums and 11 columns still fit in 32
// registers) rather than 8 and a lone pixel, which loads its 3 columns per row
// for one output (e.g. a 17-pixel interior runs as 8 + 9).
template <typename V, int B, typename F>
__attribute__((always_inline)) inline void span_blocks(int64_t npix, int64_t j, F&& block) {
  for (; j + B <= npix; j += B) {
    if constexpr (B == 8) {
      if (npix - j == 9) {
        block(std::integral_constant<int, 9>{}, j);
        return;
      }
    }
    block(std::integral_constant<int, B>{}, j);
  }
  if constexpr (B > 1) span_blocks<V, B / 2>(npix, j, block);
}

// Runs body(b, masked, j, k, bits) over a span of npix pixels and K channels:
// the full channel registers k of each block of b pixels at pixel j (b an
// integral_constant, masked std::false_type), then the partial last register,
// if any, pixel by pixel under its lane mask (b = 1, masked std::true_type).
template <typename V, typename F>
__attribute__((always_inline)) inline void span_registers(int64_t npix, int64_t K, F&& body) {
  constexpr int W = V::kWidth;
  const int64_t full = K / W * W;
  span_blocks<V, span_block<V>()>(npix, 0, [&](auto b, int64_t j) __attribute__((always_inline)) {
    for (int64_t k = 0; k < full; k += W) body(b, std::false_type{}, j, k, uint32_t(0));
  });
  if (const uint32_t bits = span_tail_bits<V>(K))
    for (int64_t j = 0; j < npix; ++j)
      body(std::integral_constant<int, 1>{}, std::true_type{}, j, full, bits);
}

// The span's N rows at its pixel j (nullptr stays nullptr).
template <typename V, int N, typename T = typename V::T>
__attribute__((always_inline)) inline void span_rows_at(const T* const* rows, int64_t offset, const T** out) {
  for (int r = 0; r < N; ++r) out[r] = rows[r] != nullptr ? rows[r] + offset : nullptr;
}

// Channel register k (lanes `bits` if Masked) of output rows i, i+1 at NP
// (1 or 2) adjacent pixels, from input rows i-1 .. i+2 (in[0..3] at the first
// pixel; in[0] is read only with Top, in[3] only with Bottom, the others
// always): out[o][u] = init + sum over tap rows r, s of in[o + r][u + s - 1] * w[3r + s],
// each sum in tap order (r, then s), as span3x3_block. The 9 weights are
// loaded once and serve both rows; each input row's NP + 2 columns serve all
// the taps that reach them.
template <typename V, int NP, bool Top, bool Bottom, bool Masked>
__attribute__((always_inline)) inline void span3x3_pair_block(int64_t K, int64_t k, uint32_t bits,
                                                              const typename V::T* const* in, int64_t step,
                                                              const typename V::T* w,
                                                              const typename V::T* init,
                                                              typename V::T* const* out, bool stream) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  Reg wr[9], a[2][NP];
  unrolled<V, 9>([&](auto t)
                     __attribute__((always_inline)) { wr[t] = span_load<V, Masked>(w + t * K + k, bits); });
  {
    const Reg a0 = init != nullptr ? span_load<V, Masked>(init + k, bits) : V::zero();
    unrolled<V, 2 * NP>([&](auto i) __attribute__((always_inline)) { a[i / NP][i % NP] = a0; });
  }
  unrolled<V, 4>([&](auto r) __attribute__((always_inline)) {
    if constexpr ((r > 0 || Top) && (r < 3 || Bottom)) {
      const T* col = in[r] - step + k;  // column -1
      Reg c[NP + 2];
      unrolled<V, NP + 2>(
          [&](auto i) __attribute__((always_inline)) { c[i] = span_load<V, Masked>(col + i * step, bits); });
      unrolled<V, 2>([&](auto o) __attribute__((always_inline)) {
        constexpr int tr = decltype(r)::value - decltype(o)::value;  // the tap row
        if constexpr (tr >= 0 && tr < 3)
          unrolled<V, 3>([&](auto s) __attribute__((always_inline)) {
            unrolled<V, NP>([&](auto u) __attribute__((always_inline)) {
              a[o][u] = V::fma(c[u + s], wr[3 * tr + s], a[o][u]);
            });
          });
      });
    }
  });
  unrolled<V, 2 * NP>([&](auto i) __attribute__((always_inline)) {
    constexpr int o = decltype(i)::value / NP, u = decltype(i)::value % NP;
    span_out<V, Masked>(out[o] + u * step + k, a[o][u], bits, stream);
  });
}

// Pixel pairs for pixels of up to kPairPixelBytes, so that a pair's 4 x 4
// pixels stay in L1 for the next pair.
constexpr int64_t kPairPixelBytes = 2048;

// Walks a span of npix pixels two at a time (the last alone if npix is odd),
// all K channels of a pair before the next, so the rows are read in address
// order: pair(np, j, registers) for each pair of np pixels at pixel j, where
// registers(body) calls body(masked, k, bits) for the full channel registers
// k (masked std::false_type) and then the partial last one, if any, under its
// lane mask. The pair sets up its row pointers once for all its registers.
template <typename V, typename F>
__attribute__((always_inline)) inline void span_pairs(int64_t npix, int64_t K, F&& pair) {
  constexpr int W = V::kWidth;
  const int64_t full = K / W * W;
  const uint32_t tail = span_tail_bits<V>(K);
  auto registers = [&](auto&& body) __attribute__((always_inline)) {
    for (int64_t k = 0; k < full; k += W) body(std::false_type{}, k, uint32_t(0));
    if (tail) body(std::true_type{}, full, tail);
  };
  int64_t j = 0;
  for (; j + 2 <= npix; j += 2) pair(std::integral_constant<int, 2>{}, j, registers);
  if (j < npix) pair(std::integral_constant<int, 1>{}, j, registers);
}

// Output rows i, i+1 over npix pixels, pixel pair by pixel pair
// (span_pairs, span3x3_pair_block). Arguments as span3x3_fprop's.
template <typename V, bool Top, bool Bottom>
void span3x3_fprop_pairs(int64_t npix, int64_t K, const typename V::T* const* x, int64_t step,
                         const typename V::T* w, const typename V::T* init, typename V::T* const* out,
                         bool stream) {
  using T = typename V::T;
  span_pairs<V>(npix, K, [&](auto np, int64_t j, auto&& registers) __attribute__((always_inline)) {
    const T* in_j[4];
    T* out_j[2] = {out[0] + j * step, out[1] + j * step};
    span_rows_at<V, 4>(x, j * step, in_j);
    registers([&](auto masked, int64_t k, uint32_t bits) __attribute__((always_inline)) {
      span3x3_pair_block<V, decltype(np)::value, Top, Bottom, decltype(masked)::value>(
          K, k, bits, in_j, step, w, init, out_j, stream);
    });
  });
}

// Output rows i .. i+nout-1 (nout = 1 or 2) of the forward pass over npix
// pixels and K channels (tap t's weights at w + t*K): x[0 .. nout+1] are input
// rows i-1 .. i+nout at the span's pixel 0 (nullptr in the padding), out[o]
// pixel 0 of the span in y's row i+o; out[o][j] = init + sum over taps of x * w.
// Two rows share their two middle input rows' loads (span3x3_pair_block, or
// span3x3_block for wide pixels) where 32 vector registers hold both rows'
// sums (AVX-512); with 16 (AVX2, where sharing spills registers), the rows run
// one at a time. Either way, the same bits.
template <typename V>
void span3x3_fprop(int64_t npix, int64_t K, int64_t nout, const typename V::T* const* x, int64_t step,
                   const typename V::T* w, const typename V::T* init, typename V::T* const* out,
                   bool stream) {
  using T = typename V::T;
  auto rows = [&](auto nrows, const T* const* in, T* const* o) __attribute__((always_inline)) {
    constexpr int Rows = decltype(nrows)::value;
    span_registers<V>(npix, K,
                      [&](auto b, auto masked, int64_t j, int64_t k, uint32_t bits)
                          __attribute__((always_inline)) {
      const T* in_j[Rows + 2];
      T* out_j[Rows];
      span_rows_at<V, Rows + 2>(in, j * step, in_j);
      for (int r = 0; r < Rows; ++r) out_j[r] = o[r] + j * step;
      span3x3_block<V, Rows, decltype(b)::value, decltype(masked)::value>(K, k, bits, in_j, step, w, init,
                                                                          out_j, stream);
    });
  };
  if constexpr (span_block<V>() == 8) {
    if (nout == 2 && K * int64_t(sizeof(T)) <= kPairPixelBytes) {
      if (x[0] != nullptr && x[3] != nullptr)
        span3x3_fprop_pairs<V, true, true>(npix, K, x, step, w, init, out, stream);
      else if (x[0] != nullptr) span3x3_fprop_pairs<V, true, false>(npix, K, x, step, w, init, out, stream);
      else if (x[3] != nullptr) span3x3_fprop_pairs<V, false, true>(npix, K, x, step, w, init, out, stream);
      else span3x3_fprop_pairs<V, false, false>(npix, K, x, step, w, init, out, stream);
      return;
    }
    if (nout == 2) {
      rows(std::integral_constant<int, 2>{}, x, out);
      return;
    }
  }
  for (int64_t o = 0; o < nout; ++o) rows(std::integral_constant<int, 1>{}, x + o, out + o);
}

// Channel register k of both gradients at NP (1 or 2) adjacent pixels of
// rows i .. i+Rows-1 (Rows 1 or 2), with dx's 9 weights held in registers:
// dy[q] is dy row i+Rows-q (q = 0 .. Rows+1; nullptr in the padding), x[o]
// and dx[o] rows i+o, all at the first pixel; Dx and Dw say which gradients
// (dx, acc) are computed. Row i+o takes tap row r from dy row i+o+1-r (q =
// Rows-1-o+r):
//   dx[o][u] = sum over r, s of dy[q][u + 1 - s] * w[3r + s], in order r, s;
//   acc[3r + s] += dy[q][u] * x[o][u + s - 1] over o and u, in the order the
//   dy rows come (q), then o, then u.
// Each dy row's NP + 2 columns serve both gradients of every row they reach.
template <typename V, int Rows, int NP, bool Masked, bool Dx, bool Dw>
__attribute__((always_inline)) inline void span3x3_pair_grad_block(
    int64_t K, int64_t k, uint32_t bits, const typename V::T* const* dy, const typename V::T* const* x,
    int64_t step, const typename V::T* w, typename V::T* const* dx, typename V::T* acc, bool stream) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  Reg wr[9], sum[9], a[Rows][NP], xc[Rows][NP + 2];
  unrolled<V, 9>([&](auto t) __attribute__((always_inline)) {
    if constexpr (Dx) wr[t] = span_load<V, Masked>(w + t * K + k, bits);
    if constexpr (Dw) sum[t] = span_load<V, Masked>(acc + t * K + k, bits);
  });
  unrolled<V, Rows>([&](auto o) __attribute__((always_inline)) {
    if constexpr (Dx) unrolled<V, NP>([&](auto u) __attribute__((always_inline)) { a[o][u] = V::zero(); });
    if constexpr (Dw)
      unrolled<V, NP + 2>([&](auto i) __attribute__((always_inline)) {
        xc[o][i] = span_load<V, Masked>(x[o] - step + k + i * step, bits);  // columns -1 .. NP
      });
  });
  unrolled<V, Rows + 2>([&](auto q) __attribute__((always_inline)) {
    if (dy[q] == nullptr) return;
    const T* col = dy[q] - step + k;  // column -1
    Reg c[NP + 2];
    unrolled<V, NP + 2>(
        [&](auto i) __attribute__((always_inline)) { c[i] = span_load<V, Masked>(col + i * step, bits); });
    unrolled<V, Rows>([&](auto o) __attribute__((always_inline)) {
      constexpr int r = decltype(q)::value - (Rows - 1 - decltype(o)::value);  // the tap row
      if constexpr (r >= 0 && r < 3) {
        if constexpr (Dx)
          unrolled<V, 3>([&](auto s) __attribute__((always_inline)) {
            unrolled<V, NP>([&](auto u) __attribute__((always_inline)) {
              a[o][u] = V::fma(c[u + 2 - s], wr[3 * r + s], a[o][u]);
            });
          });
        if constexpr (Dw)
          unrolled<V, NP>([&](auto u) __attribute__((always_inline)) {
            unrolled<V, 3>([&](auto s) __attribute__((always_inline)) {
              sum[3 * r + s] = V::fma(c[u + 1], xc[o][u + s], sum[3 * r + s]);
            });
          });
      }
    });
  });
  if constexpr (Dw)
    unrolled<V, 9>(
        [&](auto t) __attribute__((always_inline)) { span_store<V, Masked>(acc + t * K + k, sum[t], bits); });
  if constexpr (Dx)
    unrolled<V, Rows * NP>([&](auto i) __attribute__((always_inline)) {
      constexpr int o = decltype(i)::value / NP, u = decltype(i)::value % NP;
      span_out<V, Masked>(dx[o] + u * step + k, a[o][u], bits, stream);
    });
}

// Rows i .. i+Rows-1 of both gradients pixel pair by pixel pair (span_pairs,
// span3x3_pair_grad_block). Arguments as span3x3_backward's.
template <typename V, int Rows, bool Dx, bool Dw>
void span3x3_backward_pairs(int64_t npix, int64_t K, const typename V::T* const* dy,
                            const typename V::T* const* x, int64_t step, const typename V::T* w,
                            typename V::T* const* dx, typename V::T* acc, bool stream) {
  using T = typename V::T;
  span_pairs<V>(npix, K, [&](auto np, int64_t j, auto&& registers) __attribute__((always_inline)) {
    const T* dys[Rows + 2];
    const T* x_j[Rows];
    T* dx_j[Rows];
    span_rows_at<V, Rows + 2>(dy, j * step, dys);
    for (int o = 0; o < Rows; ++o) {
      x_j[o] = Dw ? x[o] + j * step : nullptr;
      dx_j[o] = Dx ? dx[o] + j * step : nullptr;
    }
    registers([&](auto masked, int64_t k, uint32_t bits) __attribute__((always_inline)) {
      span3x3_pair_grad_block<V, Rows, decltype(np)::value, decltype(masked)::value, Dx, Dw>(
          K, k, bits, dys, x_j, step, w, dx_j, acc, stream);
    });
  });
}

// Rows i .. i+nout-1 (nout 1 or 2) of both gradients over npix pixels and K
// channels: dy[q] is dy row i+nout-q (q = 0 .. nout+1; nullptr in the
// padding), x[o] input row i+o and dx[o] dx's row i+o, each at the span's
// pixel 0 (x null without acc, dx null when dx is not computed). With dx:
// dx[o][j] = sum over taps of dy * w, the flipped stencil. With acc ((9, K)
// sums): acc[(3r + s)*K + k] += sum over o, j of dy row (i+o+1-r)[j] *
// x[o][j + s - 1], dw's sum taken by input row. Pixel pairs on AVX-512 for
// pixels of up to kPairPixelBytes (two rows at a time: both rows' dy loads
// are shared, and the weights and dw sums are loaded once for both); else one
// row at a time in pixel blocks (span3x3_grad_block). The order of dw's terms
// differs between the two, never between dx alone, dw alone and both.
template <typename V>
void span3x3_backward(int64_t npix, int64_t K, int64_t nout, const typename V::T* const* dy,
                      const typename V::T* const* x, int64_t step, const typename V::T* w,
                      typename V::T* const* dx, typename V::T* acc, bool stream) {
  using T = typename V::T;
  if constexpr (span_block<V>() == 8) {
    if (K * int64_t(sizeof(T)) <= kPairPixelBytes) {
      auto rows = [&](auto nrows) __attribute__((always_inline)) {
        constexpr int R = decltype(nrows)::value;
        if (dx != nullptr && acc != nullptr)
          span3x3_backward_pairs<V, R, true, true>(npix, K, dy, x, step, w, dx, acc, stream);
        else if (dx != nullptr)
          span3x3_backward_pairs<V, R, true, false>(npix, K, dy, x, step, w, dx, acc, stream);
        else span3x3_backward_pairs<V, R, false, true>(npix, K, dy, x, step, w, dx, acc, stream);
      };
      if (nout == 2) rows(std::integral_constant<int, 2>{});
      else rows(std::integral_constant<int, 1>{});
      return;
    }
  }
  for (int64_t o = 0; o < nout; ++o) {
    const T* const* dy_o = dy + (nout - 1 - o);  // dy rows i+o+1, i+o, i+o-1
    const T* x_o = acc != nullptr ? x[o] : nullptr;
    T* dx_o = dx != nullptr ? dx[o] : nullptr;
    span_registers<V>(npix, K,
                      [&](auto b, auto masked, int64_t j, int64_t k, uint32_t bits)
                          __attribute__((always_inline)) {
      const T* dys[3];
      span_rows_at<V, 3>(dy_o, j * step, dys);
      span3x3_grad_block<V, decltype(b)::value, decltype(masked)::value>(
          K, k, bits, dys, x_o != nullptr ? x_o + j * step : nullptr, step, w,
          dx_o != nullptr ? dx_o + j * step : nullptr, acc, stream);
    });
  }
}

}  // namespace simd
}  // namespace cpu
}  // namespace cnnops
