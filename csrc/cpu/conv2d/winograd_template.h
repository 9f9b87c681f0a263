// The transforms of Winograd's F(2x2, 3x3) (correlation_winograd.cpp), written
// once over the vector traits V as microkernel_template.h is, and included by
// each ISA's micro-kernel unit. Vectors run along channels (channels-last
// pixels), so a transform is adds and subtracts of whole vectors, W channels
// at a time with a masked last step; no shuffles, no constants but 1.
//   input:  V = B^T d B for a 4x4 input patch d, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//   output: Y = A^T M A for the 4x4 sums M of a tile, A^T = [1 1 1 0; 0 1 -1 -1]
//   output gradient (wgrad): A g A^T for a tile's 2x2 gradient g
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

// WinogradInputFn: the 4x4 patch whose pixel (i, j) is at in + i*rs + j*ps
// (zero where bit 4*i + j of `valid` is clear: padding), transformed, channels
// [0, C): position 4*i + j of the result at dst + (4*i + j)*ld.
template <typename V>
void winograd_input(const typename V::T* in, int64_t rs, int64_t ps, uint32_t valid, int64_t C,
                    typename V::T* dst, int64_t ld) {
  using Reg = typename V::Reg;
  constexpr int W = V::kWidth;
  for (int64_t c = 0; c < C; c += W) {
    const uint32_t bits = lane_mask<V>(C - c);
    const bool full = c + W <= C;
    Reg t[4][4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      Reg d[4];
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        const typename V::T* p = in + i * rs + j * ps + c;
        d[i] = !(valid >> (4 * i + j) & 1) ? V::zero() : full ? V::load(p) : V::load_masked(p, bits);
      }
      t[0][j] = V::sub(d[0], d[2]);
      t[1][j] = V::add(d[1], d[2]);
      t[2][j] = V::sub(d[2], d[1]);
      t[3][j] = V::sub(d[1], d[3]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      const Reg u[4] = {V::sub(t[i][0], t[i][2]), V::add(t[i][1], t[i][2]), V::sub(t[i][2], t[i][1]),
                        V::sub(t[i][1], t[i][3])};
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        typename V::T* q = dst + (4 * i + j) * ld + c;
        if (full) V::store(q, u[j]);
        else V::store_masked(q, u[j], bits);
      }
    }
  }
}

// WinogradOutputFn: a tile's 16 sums (position p at m + p*ld, channels [0, K))
// transformed, plus bias[k] (when not null), stored to the output pixels (i, j)
// at out + i*rs + j*ps whose bit 2*i + j of `valid` is set; through the fused
// stage when `stage` is not null (its residual at pixel (0, 0), pixel step ldr,
// row step res_rs).
template <typename V>
void winograd_output(const typename V::T* m, int64_t ld, const typename V::T* bias, int64_t K, uint32_t valid,
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
    auto at = [&](int p) { return full ? V::load(m + p * ld + k) : V::load_masked(m + p * ld + k, bits); };
    Reg s[2][4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const Reg m0 = at(j), m1 = at(4 + j), m2 = at(8 + j), m3 = at(12 + j);
      s[0][j] = V::add(V::add(m0, m1), m2);
      s[1][j] = V::sub(V::sub(m1, m2), m3);
    }
    const Reg b = bias == nullptr ? V::zero() : full ? V::load(bias + k) : V::load_masked(bias + k, bits);
#pragma GCC unroll 2
    for (int i = 0; i < 2; ++i) {
      const Reg y[2] = {V::add(V::add(V::add(s[i][0], s[i][1]), s[i][2]), b),
                        V::add(V::sub(V::sub(s[i][1], s[i][2]), s[i][3]), b)};
#pragma GCC unroll 2
      for (int j = 0; j < 2; ++j) {
        if (!(valid >> (2 * i + j) & 1)) continue;
        Reg x = y[j];
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
}

// WinogradGradFn: a tile's 2x2 output gradient (pixel (i, j) at g + i*rs + j*ps,
// zero where bit 2*i + j of `valid` is clear: past the output's edge), channels
// [0, K), as A g A^T: position 4*a + b at dst + (4*a + b)*ld. Each axis maps
// (g0, g1) to (g0, g0 + g1, g0 - g1, -g1).
template <typename V>
void winograd_grad(const typename V::T* g, int64_t rs, int64_t ps, uint32_t valid, int64_t K,
                   typename V::T* dst, int64_t ld) {
  using Reg = typename V::Reg;
  constexpr int W = V::kWidth;
  for (int64_t k = 0; k < K; k += W) {
    const uint32_t bits = lane_mask<V>(K - k);
    const bool full = k + W <= K;
    Reg t[2][4];
#pragma GCC unroll 2
    for (int i = 0; i < 2; ++i) {
      Reg d[2];
#pragma GCC unroll 2
      for (int j = 0; j < 2; ++j) {
        const typename V::T* p = g + i * rs + j * ps + k;
        d[j] = !(valid >> (2 * i + j) & 1) ? V::zero() : full ? V::load(p) : V::load_masked(p, bits);
      }
      t[i][0] = d[0];
      t[i][1] = V::add(d[0], d[1]);
      t[i][2] = V::sub(d[0], d[1]);
      t[i][3] = V::sub(V::zero(), d[1]);
    }
#pragma GCC unroll 4
    for (int b = 0; b < 4; ++b) {
      const Reg u[4] = {t[0][b], V::add(t[0][b], t[1][b]), V::sub(t[0][b], t[1][b]), V::sub(V::zero(), t[1][b])};
#pragma GCC unroll 4
      for (int a = 0; a < 4; ++a) {
        typename V::T* q = dst + (4 * a + b) * ld + k;
        if (full) V::store(q, u[a]);
        else V::store_masked(q, u[a], bits);
      }
    }
  }
}

}  // namespace simd
}  // namespace cpu
}  // namespace cnnops
