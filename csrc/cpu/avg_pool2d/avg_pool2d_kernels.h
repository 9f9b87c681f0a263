// avg_pool2d's vector kernels: the inner loops of the CPU average-pooling
// kernels, written once (avg_pool2d_simd.h) and built per ISA
// (avg_pool2d_{avx512,avx2,generic}.cpp), so they run with AVX-512 / AVX2
// where the CPU has it; active_avg_pool_kernels<T>() returns the set of the
// active ISA (../isa/isa.h). All are loops over contiguous lanes i < n, summing
// in a fixed order (so the results do not depend on the thread that runs them).
#pragma once
#include <cstdint>

#include "../isa/isa.h"

namespace cnnops {
namespace cpu {

template <typename T>
struct AvgPoolKernels {
  // out[i] = f * sum over r < nrows, in order, of rows[r][i], where f is
  // scale[i], or alpha when scale is null (nrows == 0 writes zeros). With
  // `stream`, whole registers at aligned addresses go out with non-temporal
  // stores (the caller fences).
  void (*sum_rows)(int64_t n, int64_t nrows, const T* const* rows, const T* scale, T alpha, T* out,
                   bool stream) = nullptr;
  // out[i] = sum over r < nrows, in order, of weights[r] * rows[r][i].
  void (*weighted_rows)(int64_t n, int64_t nrows, const T* const* rows, const T* weights, T* out) = nullptr;
  // out[i] = alpha * sum over r < nrows, in order, of x[r * stride + i].
  void (*sum_strided)(int64_t n, int64_t nrows, const T* x, int64_t stride, T alpha, T* out) = nullptr;
  // out[k * out_stride] = alpha * the sum of x[k * x_stride + i] over i < len,
  // for k < count (contiguous planes; a fixed order: register lanes, then a tree).
  void (*sum_planes)(int64_t count, int64_t len, const T* x, int64_t x_stride, T alpha, T* out,
                     int64_t out_stride) = nullptr;
  // out[i] = value, streamed as sum_rows does.
  void (*fill)(int64_t n, T value, T* out, bool stream) = nullptr;
  // split_phases (../util/phase_rows.h) of a contiguous row, zeros as padding.
  void (*split_row)(const T* row, int64_t W, int64_t pad_left, int64_t step, int64_t len, T* out) = nullptr;
};

// The kernels of one ISA build.
using AvgPoolKernelSet = ByDtype<AvgPoolKernels>;

// One function per ISA build; returns false when that build is not compiled in.
bool avg_pool_kernels_avx512(AvgPoolKernelSet* out);
bool avg_pool_kernels_avx2(AvgPoolKernelSet* out);
bool avg_pool_kernels_generic(AvgPoolKernelSet* out);

// The set of the active ISA (avg_pool2d_kernels.cpp).
template <typename T>
const AvgPoolKernels<T>& active_avg_pool_kernels();

}  // namespace cpu
}  // namespace cnnops
