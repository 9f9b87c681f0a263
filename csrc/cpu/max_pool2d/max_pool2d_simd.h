// max_pool2d's vector kernels (PoolKernels in max_pool2d_kernels.h), written
// once over the vector traits V (../isa/) and built per ISA by
// max_pool2d_{avx512,avx2,generic}.cpp. The compare-and-select loops are plain
// fixed-size blocks (or use V::max_update) that the compiler vectorises with
// the ISA of the including unit; every ISA keeps torch's rule and order, so the
// results are the same bits. Every helper is a template on V in namespace
// simd, so no ISA unit's copy is shared (see ../isa/isa.h). Include only after
// the unit's target pragma.
#pragma once
#include <cstdint>

#include "../util/phase_rows.h"
#include "../util/stream_stores.h"
#include "max_pool2d_kernels.h"

namespace cnnops {
namespace cpu {
namespace simd {

// The lanes of register j (W lanes each) of a block whose first nb lanes are
// real, as load_masked's bits. A partial block's taps are read by masked loads:
// the lanes past nb hold zeros, and their results are never stored. (A -inf
// padded copy of the whole block per tap was most of a small channels_last
// call: 8 channels, 4 taps, 16 pixels.)
template <int W>
inline uint32_t block_lanes(int64_t nb, int j) {
  const int64_t k = nb - int64_t(j) * W;
  return k >= W ? (uint32_t(1) << W) - 1 : k <= 0 ? 0u : (uint32_t(1) << k) - 1;
}

// The loops below are templates on V only so that each ISA's translation unit
// gets its own instantiation (V has internal linkage there): a shared inline
// definition could be merged across units and run AVX-512 code on any CPU.

// Blocks of two registers of lanes: the running max and the winning tap id
// (held as a value of T: exact for any tap count below 2^24) stay in registers
// across the taps; the id becomes the flat index once, at the end. A last
// partial block reads its taps by masked loads (block_lanes).
template <typename V, typename T = typename V::T>
void max_taps(int64_t n, int64_t ntaps, const T* const* x, const int64_t* base, int64_t step,
              const int64_t* init_idx, T* out, int64_t* idx) {
  constexpr int W = V::kWidth;
  constexpr int64_t B = 2 * W;
  if (ntaps >= (int64_t(1) << 24)) {  // tap ids past float's exact integers: one lane at a time
    for (int64_t i = 0; i < n; ++i) {
      T m = -__builtin_inf();
      int64_t id = init_idx[i];
      for (int64_t t = 0; t < ntaps; ++t) {
        if (x[t] == nullptr) continue;
        const T v = x[t][i];
        if (v > m || v != v) {
          m = v;
          id = base[t] + i * step;
        }
      }
      out[i] = m;
      idx[i] = id;
    }
    return;
  }
  for (int64_t i0 = 0; i0 < n; i0 += B) {
    const int64_t nb = n - i0 < B ? n - i0 : B;
    typename V::Reg m0 = V::set1(-__builtin_inf()), m1 = m0, tap0 = V::set1(T(-1)), tap1 = tap0;
    if (nb == B) {
      for (int64_t t = 0; t < ntaps; ++t) {
        if (x[t] == nullptr) continue;
        const T* xt = x[t] + i0;
        const typename V::Reg tv = V::set1(static_cast<T>(t));
        V::max_update(V::load(xt), tv, m0, tap0);
        V::max_update(V::load(xt + W), tv, m1, tap1);
      }
    } else {
      const uint32_t b0 = block_lanes<W>(nb, 0), b1 = block_lanes<W>(nb, 1);
      for (int64_t t = 0; t < ntaps; ++t) {
        if (x[t] == nullptr) continue;
        const T* xt = x[t] + i0;
        const typename V::Reg tv = V::set1(static_cast<T>(t));
        V::max_update(V::load_masked(xt, b0), tv, m0, tap0);
        if (b1 != 0) V::max_update(V::load_masked(xt + W, b1), tv, m1, tap1);
      }
    }
    T mv[B], tv[B];
    V::store(mv, m0);
    V::store(mv + W, m1);
    V::store(tv, tap0);
    V::store(tv + W, tap1);
    if (nb == B) {  // separate simple loops, which the compiler vectorises (a gather for base)
      V::store(out + i0, m0);
      V::store(out + i0 + W, m1);
      int32_t ti[B];
      for (int64_t j = 0; j < B; ++j) ti[j] = static_cast<int32_t>(tv[j]);
      int64_t* __restrict dst = idx + i0;
      const int64_t* __restrict first = init_idx + i0;
      const int64_t* __restrict tap_base = base;
      for (int64_t j = 0; j < B; ++j)
        dst[j] = ti[j] < 0 ? first[j] : tap_base[ti[j] < 0 ? 0 : ti[j]] + (i0 + j) * step;
    } else {
      for (int64_t j = 0; j < nb; ++j) {
        const int32_t t = static_cast<int32_t>(tv[j]);
        out[i0 + j] = mv[j];
        idx[i0 + j] = t < 0 ? init_idx[i0 + j] : base[t] + (i0 + j) * step;
      }
    }
  }
}

// max_taps without indices (inference): blocks of four registers of running
// maxima, the same update rule, so the values are the same bits.
template <typename V, typename T = typename V::T>
void max_values(int64_t n, int64_t ntaps, const T* const* x, T* out) {
  constexpr int W = V::kWidth;
  constexpr int64_t B = 4 * W;
  const typename V::Reg none = V::zero();
  for (int64_t i0 = 0; i0 < n; i0 += B) {
    const int64_t nb = n - i0 < B ? n - i0 : B;
    typename V::Reg m[4], unused = none;
    for (int j = 0; j < 4; ++j) m[j] = V::set1(-__builtin_inf());
    uint32_t bits[4];
    for (int j = 0; j < 4; ++j) bits[j] = block_lanes<W>(nb, j);
    for (int64_t t = 0; t < ntaps; ++t) {
      if (x[t] == nullptr) continue;
      const T* xt = x[t] + i0;
      if (nb == B) {
        for (int j = 0; j < 4; ++j) V::max_update(V::load(xt + j * W), none, m[j], unused);
      } else {
        for (int j = 0; j < 4; ++j)
          if (bits[j] != 0) V::max_update(V::load_masked(xt + j * W, bits[j]), none, m[j], unused);
      }
    }
    T tail[B];
    if (nb == B) {
      for (int j = 0; j < 4; ++j) V::store(out + i0 + j * W, m[j]);
    } else {
      for (int j = 0; j < 4; ++j) V::store(tail + j * W, m[j]);
      for (int64_t j = 0; j < nb; ++j) out[i0 + j] = tail[j];
    }
  }
}

// Row copies with constant steps 1 and 2 (the common strides) get their own
// loops so the compiler vectorises the (de)interleaving.
template <typename V, typename T = typename V::T>
void split_row(const T* row, int64_t W, int64_t stride, int64_t pad_left, int64_t step, int64_t len, T fill,
               T* out) {
  if (stride == 1 && step == 2) split_phases<T, V>(row, W, 1, pad_left, 2, len, fill, out);
  else if (stride == 1 && step == 1) split_phases<T, V>(row, W, 1, pad_left, 1, len, fill, out);
  else split_phases<T, V>(row, W, stride, pad_left, step, len, fill, out);
}

template <typename V, typename T = typename V::T>
void merge_row(const T* phases, int64_t W, int64_t step, int64_t len, T* out, int64_t stride) {
  if (stride == 1 && step == 2) {
    for (int64_t w = 0; w + 1 < W; w += 2) {
      out[w] = phases[w / 2];
      out[w + 1] = phases[len + w / 2];
    }
    if (W % 2 != 0) out[W - 1] = phases[(W - 1) / 2];
  } else if (stride == 1 && step == 1) {
    for (int64_t w = 0; w < W; ++w) out[w] = phases[w];
  } else {
    for (int64_t j = 0; j < step; ++j)
      for (int64_t w = j; w < W; w += step) out[w * stride] = phases[j * len + w / step];
  }
}

template <typename V, typename T = typename V::T>
void gather_grad(int64_t n, const int64_t* idx, int64_t target, int64_t step, const T* dy, T* acc) {
  for (int64_t i = 0; i < n; ++i) acc[i] += idx[i] == target + i * step ? dy[i] : T(0);
}

// limit >= 0. One unsigned compare per index (a negative one wraps past any
// limit), OR-reduced, so the loop vectorises.
template <typename V>
bool in_range(int64_t n, const int64_t* idx, int64_t limit) {
  uint64_t outside = 0;
  for (int64_t i = 0; i < n; ++i) outside |= uint64_t(idx[i]) >= uint64_t(limit);
  return outside == 0;
}

// dst[i] = src[i] for i < n; with `stream`, whole registers at aligned
// addresses go out with non-temporal stores (the caller fences).
template <typename V, typename T = typename V::T>
void store_row(int64_t n, const T* src, T* dst, bool stream) {
  constexpr int W = V::kWidth;
  int64_t i = 0;
  for (; i + W <= n; i += W) store_or_stream<V>(dst + i, V::load(src + i), stream);
  for (; i < n; ++i) dst[i] = src[i];
}

// Channels in blocks of four registers, summed in a buffer the compiler keeps
// in registers for a whole block (the windows' loops vectorise over lanes).
template <typename V, typename T = typename V::T>
void gather_pixel(int64_t n, int64_t nwin, const int64_t* const* idx, const T* const* dy, int64_t target,
                  T* out, bool stream) {
  constexpr int64_t B = 4 * V::kWidth;
  alignas(64) T acc[B];
  for (int64_t c0 = 0; c0 < n; c0 += B) {
    const int64_t nb = n - c0 < B ? n - c0 : B;
    for (int64_t i = 0; i < B; ++i) acc[i] = T(0);
    for (int64_t v = 0; v < nwin; ++v) {
      const int64_t* ix = idx[v] + c0;
      const T* d = dy[v] + c0;
      if (nb == B) {
        for (int64_t i = 0; i < B; ++i) acc[i] += ix[i] == target ? d[i] : T(0);
      } else {
        for (int64_t i = 0; i < nb; ++i) acc[i] += ix[i] == target ? d[i] : T(0);
      }
    }
    store_row<V>(nb, acc, out + c0, stream);
  }
}

}  // namespace simd

template <typename V>
PoolKernels<typename V::T> make_pool_kernels() {
  PoolKernels<typename V::T> v;
  v.max_taps = &simd::max_taps<V>;
  v.max_values = &simd::max_values<V>;
  v.gather_grad = &simd::gather_grad<V>;
  v.split_row = &simd::split_row<V>;
  v.merge_row = &simd::merge_row<V>;
  v.in_range = &simd::in_range<V>;
  v.gather_pixel = &simd::gather_pixel<V>;
  return v;
}

}  // namespace cpu
}  // namespace cnnops
