// avg_pool2d's vector kernels (AvgPoolKernels in avg_pool2d_kernels.h),
// written once over the vector traits V (../isa/) and built per ISA by
// avg_pool2d_{avx512,avx2,generic}.cpp. The traits have no plain add or
// multiply: a + b is fma(a, 1, b) and a * b is fma(a, b, 0), both exact
// rewrites (one rounding each). Sums keep blocks of four registers of lanes
// in registers across their rows; a last partial register reads and writes
// under a lane mask. Every helper is a template on V in namespace simd, so no
// ISA unit's copy is shared (see ../isa/isa.h). Include only after the unit's
// target pragma.
#pragma once
#include <cstdint>

#include "../util/phase_rows.h"
#include "../util/stream_stores.h"
#include "avg_pool2d_kernels.h"

namespace cnnops {
namespace cpu {
namespace simd {

// The mask of the first m < V::kWidth lanes.
template <typename V>
inline uint32_t avg_lanes(int64_t m) {
  return (uint32_t(1) << m) - 1;
}

template <typename V, typename T = typename V::T>
void avg_sum_rows(int64_t n, int64_t nrows, const T* const* rows, const T* scale, T alpha, T* out,
                  bool stream) {
  using Reg = typename V::Reg;
  constexpr int W = V::kWidth;
  constexpr int64_t B = 4 * W;
  const Reg one = V::set1(T(1)), zero = V::zero(), a = V::set1(alpha);
  int64_t i = 0;
  for (; i + B <= n; i += B) {
    Reg s[4] = {zero, zero, zero, zero};
    for (int64_t r = 0; r < nrows; ++r) {
      const T* src = rows[r] + i;
      for (int j = 0; j < 4; ++j) s[j] = V::fma(V::load(src + j * W), one, s[j]);
    }
    for (int j = 0; j < 4; ++j) {
      const Reg f = scale ? V::load(scale + i + j * W) : a;
      store_or_stream<V>(out + i + j * W, V::fma(s[j], f, zero), stream);
    }
  }
  for (; i + W <= n; i += W) {
    Reg s = zero;
    for (int64_t r = 0; r < nrows; ++r) s = V::fma(V::load(rows[r] + i), one, s);
    store_or_stream<V>(out + i, V::fma(s, scale ? V::load(scale + i) : a, zero), stream);
  }
  if (i < n) {
    const uint32_t bits = avg_lanes<V>(n - i);
    Reg s = zero;
    for (int64_t r = 0; r < nrows; ++r) s = V::fma(V::load_masked(rows[r] + i, bits), one, s);
    V::store_masked(out + i, V::fma(s, scale ? V::load_masked(scale + i, bits) : a, zero), bits);
  }
}

template <typename V, typename T = typename V::T>
void avg_weighted_rows(int64_t n, int64_t nrows, const T* const* rows, const T* weights, T* out) {
  using Reg = typename V::Reg;
  constexpr int W = V::kWidth;
  constexpr int64_t B = 4 * W;
  const Reg zero = V::zero();
  int64_t i = 0;
  for (; i + B <= n; i += B) {
    Reg s[4] = {zero, zero, zero, zero};
    for (int64_t r = 0; r < nrows; ++r) {
      const T* src = rows[r] + i;
      const Reg w = V::set1(weights[r]);
      for (int j = 0; j < 4; ++j) s[j] = V::fma(V::load(src + j * W), w, s[j]);
    }
    for (int j = 0; j < 4; ++j) V::store(out + i + j * W, s[j]);
  }
  for (; i + W <= n; i += W) {
    Reg s = zero;
    for (int64_t r = 0; r < nrows; ++r) s = V::fma(V::load(rows[r] + i), V::set1(weights[r]), s);
    V::store(out + i, s);
  }
  if (i < n) {
    const uint32_t bits = avg_lanes<V>(n - i);
    Reg s = zero;
    for (int64_t r = 0; r < nrows; ++r) s = V::fma(V::load_masked(rows[r] + i, bits), V::set1(weights[r]), s);
    V::store_masked(out + i, s, bits);
  }
}

// Blocks of eight registers where the ISA has 32 of them (AVX-512), else four:
// a channels_last global pool walks every pixel once per block.
template <typename V, typename T = typename V::T>
void avg_sum_strided(int64_t n, int64_t nrows, const T* x, int64_t stride, T alpha, T* out) {
  using Reg = typename V::Reg;
  constexpr int W = V::kWidth;
  constexpr int K = W >= 8 && sizeof(Reg) == 64 ? 8 : 4;
  constexpr int64_t B = K * W;
  const Reg one = V::set1(T(1)), zero = V::zero(), a = V::set1(alpha);
  int64_t i = 0;
  for (; i + B <= n; i += B) {
    Reg s[K];
    for (int j = 0; j < K; ++j) s[j] = zero;
    const T* src = x + i;
    for (int64_t r = 0; r < nrows; ++r, src += stride)
      for (int j = 0; j < K; ++j) s[j] = V::fma(V::load(src + j * W), one, s[j]);
    for (int j = 0; j < K; ++j) V::store(out + i + j * W, V::fma(s[j], a, zero));
  }
  for (; i + W <= n; i += W) {
    Reg s = zero;
    for (int64_t r = 0; r < nrows; ++r) s = V::fma(V::load(x + r * stride + i), one, s);
    V::store(out + i, V::fma(s, a, zero));
  }
  if (i < n) {
    const uint32_t bits = avg_lanes<V>(n - i);
    Reg s = zero;
    for (int64_t r = 0; r < nrows; ++r) s = V::fma(V::load_masked(x + r * stride + i, bits), one, s);
    V::store_masked(out + i, V::fma(s, a, zero), bits);
  }
}

// The sum of l[0..n) (n a power of two) as a tree, halves onto halves;
// recursive so that every level is straight-line code.
template <typename V, int n, typename T>
inline T avg_tree_sum(const T* l) {
  if constexpr (n == 1) {
    return l[0];
  } else {
    T h[n / 2];
    for (int j = 0; j < n / 2; ++j) h[j] = l[j] + l[j + n / 2];
    return avg_tree_sum<V, n / 2>(h);
  }
}

// Per plane: four registers of partial sums over the run (a masked last
// register), added into one, whose lanes are then added as a tree (halves onto
// halves): a short chain of dependent adds, which matters for small planes.
template <typename V, typename T = typename V::T>
void avg_sum_planes(int64_t count, int64_t len, const T* x, int64_t x_stride, T alpha, T* out,
                    int64_t out_stride) {
  using Reg = typename V::Reg;
  constexpr int W = V::kWidth;
  const Reg one = V::set1(T(1));
  for (int64_t k = 0; k < count; ++k) {
    const T* xp = x + k * x_stride;
    Reg s0 = V::zero(), s1 = s0, s2 = s0, s3 = s0;  // named, not an array: they stay in registers
    int64_t i = 0;
    for (; i + 4 * W <= len; i += 4 * W) {
      s0 = V::fma(V::load(xp + i), one, s0);
      s1 = V::fma(V::load(xp + i + W), one, s1);
      s2 = V::fma(V::load(xp + i + 2 * W), one, s2);
      s3 = V::fma(V::load(xp + i + 3 * W), one, s3);
    }
    if (i + W <= len) s0 = V::fma(V::load(xp + i), one, s0), i += W;
    if (i + W <= len) s1 = V::fma(V::load(xp + i), one, s1), i += W;
    if (i + W <= len) s2 = V::fma(V::load(xp + i), one, s2), i += W;
    if (i < len) s3 = V::fma(V::load_masked(xp + i, avg_lanes<V>(len - i)), one, s3);
    T lanes[W];
    V::store(lanes, V::fma(V::fma(s0, one, s1), one, V::fma(s2, one, s3)));
    out[k * out_stride] = avg_tree_sum<V, W>(lanes) * alpha;
  }
}

template <typename V, typename T = typename V::T>
void avg_fill(int64_t n, T value, T* out, bool stream) {
  constexpr int W = V::kWidth;
  const typename V::Reg v = V::set1(value);
  int64_t i = 0;
  for (; i + W <= n; i += W) store_or_stream<V>(out + i, v, stream);
  for (; i < n; ++i) out[i] = value;
}

// Steps 1 and 2 (the common strides) get their own instances, so the
// compiler vectorises the (de)interleaving.
template <typename V, typename T = typename V::T>
void avg_split_row(const T* row, int64_t W, int64_t pad_left, int64_t step, int64_t len, T* out) {
  if (step == 2) split_phases<T, V>(row, W, 1, pad_left, 2, len, T(0), out);
  else if (step == 1) split_phases<T, V>(row, W, 1, pad_left, 1, len, T(0), out);
  else split_phases<T, V>(row, W, 1, pad_left, step, len, T(0), out);
}

}  // namespace simd

template <typename V>
AvgPoolKernels<typename V::T> make_avg_pool_kernels() {
  AvgPoolKernels<typename V::T> k;
  k.sum_rows = &simd::avg_sum_rows<V>;
  k.weighted_rows = &simd::avg_weighted_rows<V>;
  k.sum_strided = &simd::avg_sum_strided<V>;
  k.sum_planes = &simd::avg_sum_planes<V>;
  k.fill = &simd::avg_fill<V>;
  k.split_row = &simd::avg_split_row<V>;
  return k;
}

}  // namespace cpu
}  // namespace cnnops
