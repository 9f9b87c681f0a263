// max_pool2d's vector kernels: the inner loops of the CPU max-pooling kernel,
// written once (max_pool2d_simd.h) and built per ISA
// (max_pool2d_{avx512,avx2,generic}.cpp), so they run with AVX-512 / AVX2
// where the CPU has it; active_pool_kernels<T>() returns the set of the active
// ISA (../isa/isa.h). All are loops over contiguous lanes i < n.
#pragma once
#include <cstdint>

#include "../isa/isa.h"

namespace cnnops {
namespace cpu {

template <typename T>
struct PoolKernels {
  // Max pooling, torch's rule: starting from (-inf, init_idx[i]), for each tap t
  // in order with x[t] != null, take v = x[t][i] when v > max or v is NaN, with
  // index base[t] + i*step. Writes out[i] and idx[i].
  void (*max_taps)(int64_t n, int64_t ntaps, const T* const* x, const int64_t* base, int64_t step,
                   const int64_t* init_idx, T* out, int64_t* idx) = nullptr;
  // The same maxima without indices: out[i] only.
  void (*max_values)(int64_t n, int64_t ntaps, const T* const* x, T* out) = nullptr;
  // Max-pool gradient gather: acc[i] += dy[i] where idx[i] == target + i*step.
  void (*gather_grad)(int64_t n, const int64_t* idx, int64_t target, int64_t step, const T* dy,
                      T* acc) = nullptr;
  // One channels_last input pixel's gradient: out[i] = sum over windows
  // v < nwin, in order, of dy[v][i] where idx[v][i] == target (i < n);
  // with `stream`, whole registers at aligned addresses go out with
  // non-temporal stores (the caller fences).
  void (*gather_pixel)(int64_t n, int64_t nwin, const int64_t* const* idx, const T* const* dy, int64_t target,
                       T* out, bool stream) = nullptr;
  // Whether every idx[i] (i < n) lies in [0, limit).
  bool (*in_range)(int64_t n, const int64_t* idx, int64_t limit) = nullptr;
  // split_phases (phase_rows.h) with the ISA's vector loads.
  void (*split_row)(const T* row, int64_t W, int64_t stride, int64_t pad_left, int64_t step, int64_t len,
                    T fill, T* out) = nullptr;
  // The inverse: out[w * stride] = phases[(w % step) * len + w / step], w < W.
  void (*merge_row)(const T* phases, int64_t W, int64_t step, int64_t len, T* out, int64_t stride) = nullptr;
};

// The kernels of one ISA build.
using PoolKernelSet = ByDtype<PoolKernels>;

// One function per ISA build; returns false when that build is not compiled in.
bool pool_kernels_avx512(PoolKernelSet* out);
bool pool_kernels_avx2(PoolKernelSet* out);
bool pool_kernels_generic(PoolKernelSet* out);

// The set of the active ISA (max_pool2d_kernels.cpp).
template <typename T>
const PoolKernels<T>& active_pool_kernels();

}  // namespace cpu
}  // namespace cnnops
