// The transforms of Winograd's F(2x2, RxS) for R, S of 1 to 3 taps
// (correlation_winograd.cpp; F(2x2, 3x3) for the filter gradient,
// conv2d_wgrad_winograd.cpp), written once over the vector traits V as
// microkernel_template.h is, and included by each ISA's micro-kernel unit.
// Vectors run along channels (channels-last pixels), so a transform is adds and
// subtracts of whole vectors, W channels at a time with a masked last step; no
// shuffles, no constants but 1.
//   input:  B_R^T d B_S for an (R+1) x (S+1) input patch d
//   output: Y = A_R^T M A_S for the tile's (R+1) x (S+1) sums M (or the sum
//           of such over the four stride phases of a stride-2 3x3)
//   output gradient (wgrad, 3x3): A g A^T for a tile's 2x2 gradient g
#pragma once
#include <algorithm>
#include <cstdint>

#include "../util/stream_stores.h"
#include "microkernel.h"

namespace cnnops {
namespace cpu {
namespace simd {

template <typename V>
constexpr uint32_t lane_mask(int64_t lanes) {
  return lanes >= V::kWidth ? uint32_t((uint64_t(1) << V::kWidth) - 1) : uint32_t((uint64_t(1) << lanes) - 1);
}

// Winograd's F(2, r) along one axis, for r = 1, 2 or 3 taps: alpha = r + 1 input
// and transformed positions; bt (alpha x alpha) the input transform B^T, at
// (2 x alpha) the output transform A^T, g (alpha x r) the filter's G. Entries of
// bt and at are 0 or +-1 (adds and subtracts), of g 0, +-1/2 or 1.
template <int R>
struct F2;
template <>
struct F2<3> {
  static constexpr int kAlpha = 4;
  static constexpr int bt(int a, int i) {
    constexpr int m[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
    return m[a][i];
  }
  static constexpr int at(int o, int a) {
    constexpr int m[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
    return m[o][a];
  }
  static constexpr double g(int a, int r) {
    constexpr double m[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    return m[a][r];
  }
};
template <>
struct F2<2> {
  static constexpr int kAlpha = 3;
  static constexpr int bt(int a, int i) {
    constexpr int m[3][3] = {{1, -1, 0}, {0, 1, 0}, {0, -1, 1}};
    return m[a][i];
  }
  static constexpr int at(int o, int a) {
    constexpr int m[2][3] = {{1, 1, 0}, {0, 1, 1}};
    return m[o][a];
  }
  static constexpr double g(int a, int r) {
    constexpr double m[3][2] = {{1, 0}, {1, 1}, {0, 1}};
    return m[a][r];
  }
};
template <>
struct F2<1> {  // no saving along this axis: the other one's
  static constexpr int kAlpha = 2;
  static constexpr int bt(int a, int i) { return a == i ? 1 : 0; }
  static constexpr int at(int o, int a) { return o == a ? 1 : 0; }
  static constexpr double g(int, int) { return 1; }
};

// sum_i coef(i) * x[i] for coefficients 0 or +-1, in order: the positive terms,
// then the negative ones (no add of a zero register; exact as written out).
template <typename V, int N, typename Coef>
__attribute__((always_inline)) inline typename V::Reg combine(const typename V::Reg* x, Coef coef) {
  typename V::Reg acc = V::zero();
  bool have = false;
#pragma GCC unroll 4
  for (int i = 0; i < N; ++i)
    if (coef(i) > 0) {
      acc = have ? V::add(acc, x[i]) : x[i];
      have = true;
    }
#pragma GCC unroll 4
  for (int i = 0; i < N; ++i)
    if (coef(i) < 0) {
      acc = V::sub(acc, x[i]);
      have = true;
    }
  return acc;
}

// WinogradInputFn of F(2x2, RHxRW): the AH x AW patch whose pixel (i, j) is at
// in + i*rs + j*ps (zero where bit AW*i + j of `valid` is clear: padding),
// transformed, channels [0, C): position AW*a + b of the result at
// dst + (AW*a + b)*ld.
template <typename V, int RH, int RW>
void winograd_input(const typename V::T* in, int64_t rs, int64_t ps, uint32_t valid, int64_t C,
                    typename V::T* dst, int64_t ld) {
  using Reg = typename V::Reg;
  constexpr int W = V::kWidth, AH = F2<RH>::kAlpha, AW = F2<RW>::kAlpha;
  for (int64_t c = 0; c < C; c += W) {
    const uint32_t bits = lane_mask<V>(C - c);
    const bool full = c + W <= C;
    Reg t[AH][AW];
#pragma GCC unroll 4
    for (int j = 0; j < AW; ++j) {
      Reg d[AH];
#pragma GCC unroll 4
      for (int i = 0; i < AH; ++i) {
        const typename V::T* p = in + i * rs + j * ps + c;
        d[i] = !(valid >> (AW * i + j) & 1) ? V::zero() : full ? V::load(p) : V::load_masked(p, bits);
      }
#pragma GCC unroll 4
      for (int a = 0; a < AH; ++a) t[a][j] = combine<V, AH>(d, [a](int i) { return F2<RH>::bt(a, i); });
    }
#pragma GCC unroll 4
    for (int a = 0; a < AH; ++a)
#pragma GCC unroll 4
      for (int b = 0; b < AW; ++b) {
        const Reg u = combine<V, AW>(t[a], [b](int j) { return F2<RW>::bt(b, j); });
        typename V::T* q = dst + (AW * a + b) * ld + c;
        if (full) V::store(q, u);
        else V::store_masked(q, u, bits);
      }
  }
}

// Adds to y[i][j] the 2x2 outputs A_RH^T M A_RW of one F(2x2, RHxRW)
// transform, its AH x AW sums M at m + p*ld (channels [k, k + W), the lanes of
// `bits` when not full).
template <typename V, int RH, int RW>
__attribute__((always_inline)) inline void add_tile_outputs(const typename V::T* m, int64_t ld, int64_t k,
                                                           bool full, uint32_t bits, bool first,
                                                           typename V::Reg y[2][2]) {
  using Reg = typename V::Reg;
  constexpr int AH = F2<RH>::kAlpha, AW = F2<RW>::kAlpha;
  Reg s[2][AW];
#pragma GCC unroll 4
  for (int b = 0; b < AW; ++b) {
    Reg col[AH];
#pragma GCC unroll 4
    for (int a = 0; a < AH; ++a) {
      const typename V::T* p = m + (AW * a + b) * ld + k;
      col[a] = full ? V::load(p) : V::load_masked(p, bits);
    }
#pragma GCC unroll 2
    for (int o = 0; o < 2; ++o) s[o][b] = combine<V, AH>(col, [o](int a) { return F2<RH>::at(o, a); });
  }
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i)
#pragma GCC unroll 2
    for (int j = 0; j < 2; ++j) {
      const Reg x = combine<V, AW>(s[i], [j](int b) { return F2<RW>::at(j, b); });
      y[i][j] = first ? x : V::add(y[i][j], x);
    }
}

// The WinogradOutputFn contract for a sum of transforms, each F(2x2, RH_t x RW_t)
// with its positions after the previous ones' (Phases: a list of Phase<RH, RW>):
// one transform for a unit-step correlation, the four stride phases of a
// stride-2 one. Each output pixel gets the sum, plus bias[k] (when not null),
// through the fused stage, stored where bit 2*i + j of `valid` is set.
template <int RH, int RW>
struct Phase {
  static constexpr int kPositions = F2<RH>::kAlpha * F2<RW>::kAlpha;
};
template <typename V, int RH, int RW, typename... Rest>
__attribute__((always_inline)) inline void add_phases(const typename V::T* m, int64_t ld, int64_t k, bool full,
                                                     uint32_t bits, bool first, typename V::Reg y[2][2],
                                                     Phase<RH, RW>, Rest... rest) {
  add_tile_outputs<V, RH, RW>(m, ld, k, full, bits, first, y);
  if constexpr (sizeof...(Rest) > 0)
    add_phases<V>(m + Phase<RH, RW>::kPositions * ld, ld, k, full, bits, false, y, rest...);
}

template <typename V, typename... Phases>
void winograd_output_sum(const typename V::T* m, int64_t ld, const typename V::T* bias, int64_t K, uint32_t valid,
                         typename V::T* out, int64_t rs, int64_t ps, const TileStage<typename V::T>* stage,
                         int64_t res_rs) {
  using Reg = typename V::Reg;
  constexpr int W = V::kWidth;
  const TileStage<typename V::T> none;
  const TileStage<typename V::T>& st = stage != nullptr ? *stage : none;
  const Reg alo = V::set1(st.act_lo), ahi = V::set1(st.act_hi), plo = V::set1(st.post_lo), phi = V::set1(st.post_hi);
  for (int64_t k = 0; k < K; k += W) {
    const uint32_t bits = lane_mask<V>(K - k);
    const bool full = k + W <= K;
    Reg y[2][2];
    add_phases<V>(m, ld, k, full, bits, true, y, Phases()...);
    const Reg bv = bias == nullptr ? V::zero() : full ? V::load(bias + k) : V::load_masked(bias + k, bits);
#pragma GCC unroll 2
    for (int i = 0; i < 2; ++i)
#pragma GCC unroll 2
      for (int j = 0; j < 2; ++j) {
        if (!(valid >> (2 * i + j) & 1)) continue;
        Reg x = V::add(y[i][j], bv);
        if (st.act) x = V::clamp(x, alo, ahi);
        if (st.residual != nullptr) {
          const typename V::T* r = st.residual + i * res_rs + j * st.ldr + k;
          x = V::add(x, full ? V::load(r) : V::load_masked(r, bits));
        }
        if (st.post) x = V::clamp(x, plo, phi);
        typename V::T* q = out + i * rs + j * ps + k;
        if (full) store_or_stream<V>(q, x, st.stream);
        else V::store_masked(q, x, bits);
      }
  }
}

template <typename V, int RH, int RW>
void set_winograd(MicroKernel<typename V::T>* k) {
  k->winograd_input[RH - 1][RW - 1] = &winograd_input<V, RH, RW>;
  k->winograd_output[RH - 1][RW - 1] = &winograd_output_sum<V, Phase<RH, RW>>;
}

// A stride-2 3x3 correlation as the sum of its four stride phases (input rows
// and columns at even or odd offsets from the first tap: 2x2, 2x1, 1x2 and 1x1
// taps on every other pixel), each a unit-step F(2x2, RxS): 9 + 6 + 6 + 4 = 25
// positions per 2x2 output tile instead of 36 products.
template <typename V>
void set_winograd_stride2(MicroKernel<typename V::T>* k) {
  k->winograd_input[0][0] = &winograd_input<V, 1, 1>;
  k->winograd_output_stride2 = &winograd_output_sum<V, Phase<2, 2>, Phase<2, 1>, Phase<1, 2>, Phase<1, 1>>;
}

// The filter gradient's transforms (WinogradPositionsFn), one row a of
// positions (4a + b for b in [b0, b1)) at a time, so that a thread owning some
// positions loads and combines only what they need. Input patch: B^T d B, row a
// from the two input rows of B^T's row a. Output gradient: A g A^T of F(2, 3),
// each axis mapping (g0, g1) to (g0, g0 + g1, g0 - g1, -g1).
template <typename V, int A>
__attribute__((always_inline)) inline void wgrad_input_row(const typename V::T* in, int64_t rs, int64_t ps,
                                                          uint32_t valid, int64_t c, bool full, uint32_t bits,
                                                          int b0, int b1, typename V::T* dst, int64_t ld) {
  using Reg = typename V::Reg;
  Reg t[4];
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    Reg d[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      const typename V::T* p = in + i * rs + j * ps + c;
      d[i] = F2<3>::bt(A, i) == 0 || !(valid >> (4 * i + j) & 1) ? V::zero()
             : full                                             ? V::load(p)
                                                                : V::load_masked(p, bits);
    }
    t[j] = combine<V, 4>(d, [](int i) { return F2<3>::bt(A, i); });
  }
#pragma GCC unroll 4
  for (int b = 0; b < 4; ++b)
    if (b >= b0 && b < b1) {
      const Reg u = combine<V, 4>(t, [b](int j) { return F2<3>::bt(b, j); });
      typename V::T* q = dst + (b - b0) * ld + c;
      if (full) V::store(q, u);
      else V::store_masked(q, u, bits);
    }
}

template <typename V, int A>
__attribute__((always_inline)) inline void wgrad_grad_row(const typename V::T* g, int64_t rs, int64_t ps,
                                                         uint32_t valid, int64_t k, bool full, uint32_t bits,
                                                         int b0, int b1, typename V::T* dst, int64_t ld) {
  using Reg = typename V::Reg;
  Reg t[2][4];
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i) {
    Reg d[2];
#pragma GCC unroll 2
    for (int j = 0; j < 2; ++j) {
      const typename V::T* p = g + i * rs + j * ps + k;
      d[j] = F2<3>::at(i, A) == 0 || !(valid >> (2 * i + j) & 1) ? V::zero()
             : full                                             ? V::load(p)
                                                                : V::load_masked(p, bits);
    }
#pragma GCC unroll 4
    for (int b = 0; b < 4; ++b) t[i][b] = combine<V, 2>(d, [b](int j) { return F2<3>::at(j, b); });
  }
#pragma GCC unroll 4
  for (int b = 0; b < 4; ++b)
    if (b >= b0 && b < b1) {
      const Reg col[2] = {t[0][b], t[1][b]};
      const Reg u = combine<V, 2>(col, [](int i) { return F2<3>::at(i, A); });
      typename V::T* q = dst + (b - b0) * ld + k;
      if (full) V::store(q, u);
      else V::store_masked(q, u, bits);
    }
}

template <typename V, bool Grad, int A>
__attribute__((always_inline)) inline void wgrad_row(const typename V::T* in, int64_t rs, int64_t ps, uint32_t valid,
                                                    int64_t c, bool full, uint32_t bits, int b0, int b1,
                                                    typename V::T* dst, int64_t ld) {
  if constexpr (Grad) wgrad_grad_row<V, A>(in, rs, ps, valid, c, full, bits, b0, b1, dst, ld);
  else wgrad_input_row<V, A>(in, rs, ps, valid, c, full, bits, b0, b1, dst, ld);
}

template <typename V, bool Grad>
void wgrad_positions(const typename V::T* in, int64_t rs, int64_t ps, uint32_t valid, int64_t C, int p0, int p1,
                     typename V::T* dst, int64_t ld) {
  constexpr int W = V::kWidth;
  for (int64_t c = 0; c < C; c += W) {
    const uint32_t bits = lane_mask<V>(C - c);
    const bool full = c + W <= C;
    for (int a = p0 / 4; 4 * a < p1; ++a) {
      const int b0 = std::max(p0 - 4 * a, 0), b1 = std::min(p1 - 4 * a, 4);
      typename V::T* row = dst + (4 * a + b0 - p0) * ld;
      if (a == 0) wgrad_row<V, Grad, 0>(in, rs, ps, valid, c, full, bits, b0, b1, row, ld);
      else if (a == 1) wgrad_row<V, Grad, 1>(in, rs, ps, valid, c, full, bits, b0, b1, row, ld);
      else if (a == 2) wgrad_row<V, Grad, 2>(in, rs, ps, valid, c, full, bits, b0, b1, row, ld);
      else wgrad_row<V, Grad, 3>(in, rs, ps, valid, c, full, bits, b0, b1, row, ld);
    }
  }
}

}  // namespace simd
}  // namespace cpu
}  // namespace cnnops
