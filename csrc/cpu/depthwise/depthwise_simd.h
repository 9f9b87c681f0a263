// depthwise's vector kernels (DepthwiseKernels in depthwise_kernels.h),
// written once over the vector traits V (../isa/) and built per ISA by
// depthwise_{avx512,avx2,generic}.cpp. The FMA cores use the traits'
// registers explicitly; each kernel's comment says in which order it sums.
// The 3x3 span stencils of channels_last images are in depthwise_span3x3.h.
// The kernels serve the plane (NCHW) and channels_last paths alike; which path
// calls which is in depthwise.h and the kernel files. Every helper is a
// template on V in namespace simd, so no ISA unit's copy is shared (see
// ../isa/isa.h). Include only after the unit's target pragma.
#pragma once
#include <cstdint>
#include <type_traits>

#include "depthwise_kernels.h"
#include "depthwise_span3x3.h"

namespace cnnops {
namespace cpu {
namespace simd {

template <typename V>
void taps_madd(int64_t K, int64_t ntaps, const typename V::T* const* x, const typename V::T* w,
               const typename V::T* init, typename V::T* out) {
  using T = typename V::T;
  constexpr int W = V::kWidth, U = 4;
  int64_t k = 0;
  for (; k + U * W <= K; k += U * W) {
    typename V::Reg acc[U];
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) acc[u] = init != nullptr ? V::load(init + k + u * W) : V::zero();
    for (int64_t t = 0; t < ntaps; ++t) {
      if (x[t] == nullptr) continue;
#pragma GCC unroll 4
      for (int u = 0; u < U; ++u)
        acc[u] = V::fma(V::load(x[t] + k + u * W), V::load(w + t * K + k + u * W), acc[u]);
    }
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) V::store(out + k + u * W, acc[u]);
  }
  // Single registers; a partial last one is redone as the register ending at K
  // (the overlapping lanes get the same values again).
  if (k < K && K >= W) {
    for (;; k += W) {
      if (k + W > K) k = K - W;
      typename V::Reg acc = init != nullptr ? V::load(init + k) : V::zero();
      for (int64_t t = 0; t < ntaps; ++t)
        if (x[t] != nullptr) acc = V::fma(V::load(x[t] + k), V::load(w + t * K + k), acc);
      V::store(out + k, acc);
      if (k + W == K) return;
    }
  }
  for (; k < K; ++k) {
    T acc = init != nullptr ? init[k] : T(0);
    for (int64_t t = 0; t < ntaps; ++t)
      if (x[t] != nullptr) acc += x[t][k] * w[t * K + k];
    out[k] = acc;
  }
}

// stencil_row's taps as rows of 3 adjacent columns: tap 3i+s of row i reads
// x[3i] + s*dir*x_step (dir = +1 forward, -1 for dgrad's flipped columns).
// Returns dir, or 0 when the taps are not laid out so. (A template on V, like
// every helper here, so no ISA unit's copy is shared: see the note below.)
template <typename V, typename T = typename V::T>
int three_tap_rows(int64_t ntaps, const T* const* x, int64_t x_step) {
  if (ntaps == 0 || ntaps % 3 != 0 || x_step == 0) return 0;
  for (int dir : {1, -1}) {
    bool all = true;
    for (int64_t i = 0; i < ntaps && all; i += 3)
      all = x[i + 1] == x[i] + dir * x_step && x[i + 2] == x[i] + 2 * dir * x_step;
    if (all) return dir;
  }
  return 0;
}

// stencil_row on 3-tap rows, blocks of 8 pixels: each input pixel register of
// a row is loaded once and used for the 3 outputs it reaches (rolling
// registers), so a block loads 10 registers per row where the generic loop
// loads 24, and 8 accumulator chains are in flight. Each output's sum runs in
// tap order (row by row, s = 0, 1, 2), the same bits as the generic loop.
// Returns the pixels done (a multiple of 8).
template <typename V, int Dir>
int64_t stencil_rows3(int64_t npix, int64_t K, int64_t nrows, const typename V::T* const* x, int64_t x_step,
                      const typename V::T* const* w, const typename V::T* init, typename V::T* out,
                      int64_t out_step) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  constexpr int W = V::kWidth, B = 8;
  const int64_t nreg = (K + W - 1) / W;
  int64_t j = 0;
  for (; j + B <= npix; j += B) {
    for (int64_t r = 0; r < nreg; ++r) {
      const int64_t k = r * W + W > K ? K - W : r * W;
      const Reg b = init != nullptr ? V::load(init + k) : V::zero();
      Reg a[B];
#pragma GCC unroll 8
      for (int u = 0; u < B; ++u) a[u] = b;
      __builtin_prefetch(x[3 * (nrows - 1)] + (j + 2 * B) * x_step + k);
      for (int64_t i = 0; i < nrows; ++i) {
        const T* col = x[3 * i] + j * x_step + k;  // column j of this row (tap s = 0)
        const Reg w0 = V::load(w[3 * i] + k), w1 = V::load(w[3 * i + 1] + k), w2 = V::load(w[3 * i + 2] + k);
        if constexpr (Dir > 0) {  // output u: columns u, u+1, u+2
          Reg c0 = V::load(col), c1 = V::load(col + x_step);
#pragma GCC unroll 8
          for (int u = 0; u < B; ++u) {
            const Reg c2 = V::load(col + (u + 2) * x_step);
            a[u] = V::fma(c0, w0, a[u]);
            a[u] = V::fma(c1, w1, a[u]);
            a[u] = V::fma(c2, w2, a[u]);
            c0 = c1;
            c1 = c2;
          }
        } else {  // output u: columns u, u-1, u-2
          Reg p2 = V::load(col - 2 * x_step), p1 = V::load(col - x_step);
#pragma GCC unroll 8
          for (int u = 0; u < B; ++u) {
            const Reg c = V::load(col + u * x_step);
            a[u] = V::fma(c, w0, a[u]);
            a[u] = V::fma(p1, w1, a[u]);
            a[u] = V::fma(p2, w2, a[u]);
            p2 = p1;
            p1 = c;
          }
        }
      }
      T* o = out + j * out_step + k;
#pragma GCC unroll 8
      for (int u = 0; u < B; ++u) V::store(o + u * out_step, a[u]);
    }
  }
  return j;
}

// Blocks of 4 pixels outer (independent accumulator chains), channel
// registers inner, so a block's input stays in L1 and each weight register
// loaded serves 4 pixels; with K < W channels the row runs in scalar code.
// 3-tap rows (3-wide filters, stride and dilation 1) go to stencil_rows3 first.
template <typename V>
void stencil_row(int64_t npix, int64_t K, int64_t ntaps, const typename V::T* const* x, int64_t x_step,
                 const typename V::T* const* w, const typename V::T* init, typename V::T* out,
                 int64_t out_step) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  constexpr int W = V::kWidth;
  // Channel registers at k = 0, W, 2W, ...; a partial last one is redone as the
  // register ending at K (same values again in the overlap).
  const int64_t nreg = K >= W ? (K + W - 1) / W : 0;
  auto reg_at = [&](int64_t r) { return r * W + W > K ? K - W : r * W; };
  const int64_t kv = nreg > 0 ? K : 0;  // channels done in registers
  int64_t j = 0;
  if (nreg > 0) {
    const int dir = three_tap_rows<V>(ntaps, x, x_step);
    if (dir > 0) j = stencil_rows3<V, 1>(npix, K, ntaps / 3, x, x_step, w, init, out, out_step);
    if (dir < 0) j = stencil_rows3<V, -1>(npix, K, ntaps / 3, x, x_step, w, init, out, out_step);
  }
  for (; j + 4 <= npix; j += 4) {
    for (int64_t r = 0; r < nreg; ++r) {
      const int64_t k = reg_at(r);
      const Reg b = init != nullptr ? V::load(init + k) : V::zero();
      Reg a0 = b, a1 = b, a2 = b, a3 = b;
      if (ntaps > 0) {  // the last tap's row is the one new to the cache
        const T* ahead = x[ntaps - 1] + (j + 8) * x_step + k;
        for (int u = 0; u < 4; ++u) __builtin_prefetch(ahead + u * x_step);
      }
      for (int64_t t = 0; t < ntaps; ++t) {
        const T* xt = x[t] + j * x_step + k;
        const Reg wv = V::load(w[t] + k);
        a0 = V::fma(V::load(xt), wv, a0);
        a1 = V::fma(V::load(xt + x_step), wv, a1);
        a2 = V::fma(V::load(xt + 2 * x_step), wv, a2);
        a3 = V::fma(V::load(xt + 3 * x_step), wv, a3);
      }
      T* o = out + j * out_step + k;
      V::store(o, a0);
      V::store(o + out_step, a1);
      V::store(o + 2 * out_step, a2);
      V::store(o + 3 * out_step, a3);
    }
  }
  for (; j < npix; ++j)
    for (int64_t r = 0; r < nreg; ++r) {
      const int64_t k = reg_at(r);
      Reg a0 = init != nullptr ? V::load(init + k) : V::zero();
      for (int64_t t = 0; t < ntaps; ++t) a0 = V::fma(V::load(x[t] + j * x_step + k), V::load(w[t] + k), a0);
      V::store(out + j * out_step + k, a0);
    }
  for (int64_t k = kv; k < K; ++k)
    for (j = 0; j < npix; ++j) {
      T a = init != nullptr ? init[k] : T(0);
      for (int64_t t = 0; t < ntaps; ++t) a += x[t][j * x_step + k] * w[t][k];
      out[j * out_step + k] = a;
    }
}

// Taps in compile-time chunks (tap_chunks), so the sums stay in registers. A
// partial last register of channels is summed from zero as the register ending
// at K, and only its lanes past the full registers are added.
template <typename V>
void stencil_row_dot(int64_t npix, int64_t K, int64_t ntaps, const typename V::T* const* x, int64_t x_step,
                     const typename V::T* dy, int64_t dy_step, typename V::T* const* acc) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  constexpr int W = V::kWidth;
  tap_chunks(ntaps, [&](auto nt, int64_t t0) {
    constexpr int NT = decltype(nt)::value;
    const T* const* xt = x + t0;
    T* const* at = acc + t0;
    // With the chunk's taps in 3-tap rows (3-wide filters, stride and
    // dilation 1), each x register of a row is loaded once and serves its 3
    // taps over 3 pixels (rolling registers): 4 loads per pixel instead of 10.
    // Every sum still runs over j in order: the same bits.
    const bool rows3 = NT % 3 == 0 && three_tap_rows<V>(NT, xt, x_step) > 0;
    auto sums = [&](int64_t k, Reg* av) {
      if constexpr (NT % 3 == 0) {
        if (rows3) {
          constexpr int NR = NT / 3;
          Reg c0[NR], c1[NR];
#pragma GCC unroll 3
          for (int i = 0; i < NR; ++i) {
            c0[i] = V::load(xt[3 * i] + k);
            c1[i] = V::load(xt[3 * i] + x_step + k);
          }
          for (int64_t j = 0; j < npix; ++j) {
            const Reg d = V::load(dy + j * dy_step + k);
#pragma GCC unroll 3
            for (int i = 0; i < NR; ++i) {
              const Reg c2 = V::load(xt[3 * i] + (j + 2) * x_step + k);
              av[3 * i] = V::fma(d, c0[i], av[3 * i]);
              av[3 * i + 1] = V::fma(d, c1[i], av[3 * i + 1]);
              av[3 * i + 2] = V::fma(d, c2, av[3 * i + 2]);
              c0[i] = c1[i];
              c1[i] = c2;
            }
          }
          return;
        }
      }
      for (int64_t j = 0; j < npix; ++j) {
        const Reg d = V::load(dy + j * dy_step + k);
#pragma GCC unroll 9
        for (int t = 0; t < NT; ++t) av[t] = V::fma(d, V::load(xt[t] + j * x_step + k), av[t]);
      }
    };
    Reg av[NT];
    int64_t k = 0;
    for (; k + W <= K; k += W) {
#pragma GCC unroll 9
      for (int t = 0; t < NT; ++t) av[t] = V::load(at[t] + k);
      sums(k, av);
#pragma GCC unroll 9
      for (int t = 0; t < NT; ++t) V::store(at[t] + k, av[t]);
    }
    if (k < K && K >= W) {
      for (int t = 0; t < NT; ++t) av[t] = V::zero();
      sums(K - W, av);
      for (int t = 0; t < NT; ++t) {
        T lanes[W];
        V::store(lanes, av[t]);
        for (int64_t l = k - (K - W); l < W; ++l) at[t][K - W + l] += lanes[l];
      }
      return;
    }
    for (; k < K; ++k)
      for (int64_t j = 0; j < npix; ++j)
        for (int t = 0; t < NT; ++t) at[t][k] += dy[j * dy_step + k] * xt[t][j * x_step + k];
  });
}

// U registers of lanes per pass, all taps accumulated in registers.
template <typename V>
void taps_scale(int64_t n, int64_t ntaps, const typename V::T* const* x, const typename V::T* w,
                typename V::T init, typename V::T* out) {
  using T = typename V::T;
  constexpr int W = V::kWidth, U = 4;
  int64_t i = 0;
  for (; i + U * W <= n; i += U * W) {
    typename V::Reg acc[U];
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) acc[u] = V::set1(init);
    for (int64_t t = 0; t < ntaps; ++t) {
      const typename V::Reg wt = V::set1(w[t]);
      const T* xt = x[t] + i;
#pragma GCC unroll 4
      for (int u = 0; u < U; ++u) acc[u] = V::fma(wt, V::load(xt + u * W), acc[u]);
    }
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) V::store(out + i + u * W, acc[u]);
  }
  if (i < n && n >= W) {  // single registers, a partial last one redone as the one ending at n
    for (;; i += W) {
      if (i + W > n) i = n - W;
      typename V::Reg acc = V::set1(init);
      for (int64_t t = 0; t < ntaps; ++t) acc = V::fma(V::set1(w[t]), V::load(x[t] + i), acc);
      V::store(out + i, acc);
      if (i + W == n) return;
    }
  }
  for (; i < n; ++i) {
    T acc = init;
    for (int64_t t = 0; t < ntaps; ++t) acc += w[t] * x[t][i];
    out[i] = acc;
  }
}

// The taps in chunks of 9, then 4, then 1 (a 3x3 filter is one chunk); a chunk's
// count is a compile-time constant, so its accumulators live in registers.
template <int NT, typename F>
inline int64_t for_tap_chunks(int64_t ntaps, int64_t t0, F&& body) {
  for (; t0 + NT <= ntaps; t0 += NT) body(std::integral_constant<int, NT>(), t0);
  return t0;
}

template <typename F>
inline void tap_chunks(int64_t ntaps, F&& body) {
  int64_t t0 = for_tap_chunks<9>(ntaps, 0, body);
  t0 = for_tap_chunks<4>(ntaps, t0, body);
  for_tap_chunks<1>(ntaps, t0, body);
}

template <typename V>
void taps_dot(int64_t n, int64_t ntaps, const typename V::T* a, const typename V::T* const* x,
              typename V::T* out) {
  using T = typename V::T;
  constexpr int W = V::kWidth;
  tap_chunks(ntaps, [&](auto nt, int64_t t0) {
    constexpr int NT = decltype(nt)::value;
    const T* const* xt = x + t0;
    typename V::Reg acc[NT];
#pragma GCC unroll 9
    for (int j = 0; j < NT; ++j) acc[j] = V::zero();
    int64_t i = 0;
    for (; i + W <= n; i += W) {
      const typename V::Reg ai = V::load(a + i);
#pragma GCC unroll 9
      for (int j = 0; j < NT; ++j) acc[j] = V::fma(ai, V::load(xt[j] + i), acc[j]);
    }
    for (int j = 0; j < NT; ++j) {
      T lanes[W];
      V::store(lanes, acc[j]);
      T sum = T(0);
      for (int l = 0; l < W; ++l) sum += lanes[l];
      for (int64_t k = i; k < n; ++k) sum += a[k] * xt[j][k];
      out[t0 + j] += sum;
    }
  });
}

// The mask of a register's first `count` lanes (count <= V::kWidth; a
// template on V like every helper here).
template <typename V>
uint32_t first_lanes(int64_t count) {
  return (uint32_t(1) << count) - 1;
}

// taps_scale with lane masks: registers in passes of 4 (independent chains),
// each tap's masked register added in tap order.
template <typename V>
void masked_taps_scale(int64_t n, int64_t ntaps, const typename V::T* const* x, const uint32_t* masks,
                       const typename V::T* w, typename V::T init, typename V::T* out) {
  using Reg = typename V::Reg;
  constexpr int W = V::kWidth, U = 4;
  const int64_t full = n / W, nreg = (n + W - 1) / W;
  int64_t g = 0;
  for (; g + U <= full; g += U) {
    Reg acc[U];
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) acc[u] = V::set1(init);
    for (int64_t t = 0; t < ntaps; ++t) {
      const Reg wt = V::set1(w[t]);
#pragma GCC unroll 4
      for (int u = 0; u < U; ++u)
        acc[u] = V::fma(wt, V::load_masked(x[t] + (g + u) * W, masks[(g + u) * ntaps + t]), acc[u]);
    }
#pragma GCC unroll 4
    for (int u = 0; u < U; ++u) V::store(out + (g + u) * W, acc[u]);
  }
  for (; g < nreg; ++g) {
    Reg acc = V::set1(init);
    for (int64_t t = 0; t < ntaps; ++t)
      acc = V::fma(V::set1(w[t]), V::load_masked(x[t] + g * W, masks[g * ntaps + t]), acc);
    if (g < full) V::store(out + g * W, acc);
    else V::store_masked(out + g * W, acc, first_lanes<V>(n - g * W));
  }
}

// taps_dot with lane masks: a tap chunk's sums in registers over all
// registers, then each summed over its lanes in order.
template <typename V>
void masked_taps_dot(int64_t n, int64_t ntaps, const typename V::T* a, const typename V::T* const* x,
                     const uint32_t* masks, typename V::T* out) {
  using T = typename V::T;
  using Reg = typename V::Reg;
  constexpr int W = V::kWidth;
  const int64_t nreg = (n + W - 1) / W;
  tap_chunks(ntaps, [&](auto nt, int64_t t0) {
    constexpr int NT = decltype(nt)::value;
    Reg acc[NT];
#pragma GCC unroll 9
    for (int j = 0; j < NT; ++j) acc[j] = V::zero();
    for (int64_t g = 0; g < nreg; ++g) {
      const int64_t i = g * W;
      const Reg ai = V::load_masked(a + i, first_lanes<V>(i + W <= n ? W : n - i));
      const uint32_t* m = masks + g * ntaps + t0;
#pragma GCC unroll 9
      for (int j = 0; j < NT; ++j) acc[j] = V::fma(ai, V::load_masked(x[t0 + j] + i, m[j]), acc[j]);
    }
    for (int j = 0; j < NT; ++j) {
      T lanes[W];
      V::store(lanes, acc[j]);
      T sum = T(0);
      for (int l = 0; l < W; ++l) sum += lanes[l];
      out[t0 + j] += sum;
    }
  });
}

// Margins up to one register wide are written as whole zero registers (the
// trailing one may reach W - 1 lanes past the row: dst needs that slack, and
// later rows overwrite it), avoiding a memset call per margin. A row of at
// least one register ends with the register ending at its last value.
template <typename V>
void copy_rows(int64_t rows, int64_t n, const typename V::T* src, int64_t src_rs, typename V::T* dst,
               int64_t dst_rs, int64_t lead, int64_t trail) {
  using T = typename V::T;
  constexpr int W = V::kWidth;
  const bool short_margins = lead <= W && trail <= W;
  for (int64_t i = 0; i < rows; ++i) {
    const T* s = src + i * src_rs;
    T* d = dst + i * dst_rs;
    if (short_margins) {
      if (lead > 0) V::store(d, V::zero());
      if (trail > 0) V::store(d + lead + n, V::zero());
    } else {
      for (int64_t j = 0; j < lead; ++j) d[j] = T(0);
      for (int64_t j = lead + n; j < lead + n + trail; ++j) d[j] = T(0);
    }
    d += lead;
    int64_t j = 0;
    for (; j + W <= n; j += W) V::store(d + j, V::load(s + j));
    if (j < n && n >= W) {  // the tail as the register ending at n (copying lanes twice is harmless)
      V::store(d + n - W, V::load(s + n - W));
      continue;
    }
    for (; j < n; ++j) d[j] = s[j];
  }
}

template <typename V>
void axpy(int64_t n, typename V::T a, const typename V::T* x, typename V::T* y) {
  constexpr int W = V::kWidth;
  const typename V::Reg av = V::set1(a);
  int64_t i = 0;
  for (; i + W <= n; i += W) V::store(y + i, V::fma(av, V::load(x + i), V::load(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

template <typename V>
void mul_add(int64_t n, const typename V::T* a, const typename V::T* b, typename V::T* acc) {
  constexpr int W = V::kWidth;
  int64_t i = 0;
  for (; i + W <= n; i += W) V::store(acc + i, V::fma(V::load(a + i), V::load(b + i), V::load(acc + i)));
  for (; i < n; ++i) acc[i] += a[i] * b[i];
}

// A plain loop: the compiler vectorises the widening with this unit's ISA.
template <typename V>
void add_widened(int64_t n, const typename V::T* src, double* acc) {
  for (int64_t i = 0; i < n; ++i) acc[i] += static_cast<double>(src[i]);
}

}  // namespace simd

template <typename V>
DepthwiseKernels<typename V::T> make_depthwise_kernels() {
  DepthwiseKernels<typename V::T> v;
  v.taps_madd = &simd::taps_madd<V>;
  v.stencil_row = &simd::stencil_row<V>;
  v.stencil_row_dot = &simd::stencil_row_dot<V>;
  v.span3x3_fprop = &simd::span3x3_fprop<V>;
  v.span3x3_backward = &simd::span3x3_backward<V>;
  v.taps_scale = &simd::taps_scale<V>;
  v.taps_dot = &simd::taps_dot<V>;
  v.masked_taps_scale = &simd::masked_taps_scale<V>;
  v.masked_taps_dot = &simd::masked_taps_dot<V>;
  v.lanes = V::kWidth;
  v.axpy = &simd::axpy<V>;
  v.copy_rows = &simd::copy_rows<V>;
  v.mul_add = &simd::mul_add<V>;
  v.add_widened = &simd::add_widened<V>;
  return v;
}

}  // namespace cpu
}  // namespace cnnops
