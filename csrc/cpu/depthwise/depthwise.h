// The CPU depthwise-convolution family: Conv2dParams with groups == C and a
// (K = C*M, 1, R, S) filter, output channel k reading input channel k / M. The
// glue (csrc/torch/depthwise_ops.cpp, depthwise_autograd.cpp) includes only
// this header. Memory-bound, so no GEMM: each kernel streams planes (NCHW, any
// strides) or pixels (channels_last) once. float32 and float64. The inner loops
// are the vector kernels of depthwise_kernels.h, built per ISA and following
// the active one (../isa/isa.h).
//
// Kernel variants and when each is chosen (the entry points below hand over
// in this order):
// - channels_last 3x3, stride 1, padding 1, multiplier 1: the span stencils
//   (depthwise_cl3x3.cpp) where depthwise_cl3x3_applies;
// - other channels_last (x and y channels-innermost): rows of pixels with the
//   filter taps-major (depthwise_fprop/dgrad/wgrad.cpp, depthwise_cl_rows.h);
// - stride 1 on planes: the flat-plane stencils (depthwise_flat.cpp), whose
//   same-size case on small contiguous planes reads in place under lane masks
//   (depthwise_masked.cpp);
// - otherwise planes (any strides) through phase rows (depthwise_fprop.cpp,
//   depthwise_dgrad.cpp, depthwise_wgrad.cpp).
// depthwise_backward computes dx and dw in one pass where a fused kernel
// applies (same bits as the separate kernels).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "../../common/params.h"
#include "../util/epilogue.h"

namespace cnnops {
namespace cpu {

void depthwise_fprop(const Conv2dParams& p);  // y = dwconv(x, w) (+ bias[K])
void depthwise_dgrad(const Conv2dParams& p);  // x = dwconv^T(y, w)
void depthwise_wgrad(const Conv2dParams& p);  // w = sum over n, p, q of y * shifted x

// Stride 1 on planes: the flat-plane stencils of depthwise_flat.cpp.
bool depthwise_flat_applies(const Conv2dParams& p);
void depthwise_fprop_flat(const Conv2dParams& p);
void depthwise_dgrad_flat(const Conv2dParams& p);
void depthwise_wgrad_flat(const Conv2dParams& p);

// Its same-size case on small contiguous planes, read in place under lane
// masks (depthwise_masked.cpp); the flat entry points above hand over to it.
bool depthwise_masked_applies(const Conv2dParams& p);
void depthwise_fprop_masked(const Conv2dParams& p);
void depthwise_dgrad_masked(const Conv2dParams& p);
void depthwise_wgrad_masked(const Conv2dParams& p);
void depthwise_backward_masked(const Conv2dParams& dgrad_p, const Conv2dParams& wgrad_p);

// Channels_last 3x3, stride 1, padding 1, multiplier 1 (depthwise_cl3x3.cpp):
// spans of rows walked down bands of rows; depthwise_fprop / _dgrad / _wgrad /
// _backward hand over to these where depthwise_cl3x3_applies.
bool depthwise_cl3x3_applies(const Conv2dParams& p);
void depthwise_fprop_cl3x3(const Conv2dParams& p);
void depthwise_dgrad_cl3x3(const Conv2dParams& p);
void depthwise_wgrad_cl3x3(const Conv2dParams& p);
void depthwise_backward_cl3x3(const Conv2dParams& dgrad_p, const Conv2dParams& wgrad_p);

// Both gradients at once (dx and dw; dgrad_p and wgrad_p describe the same
// convolution in dgrad and wgrad roles): one pass over dy where a fused kernel
// applies (NCHW stride 1 with 'same' sizes; channels_last stride 1, multiplier
// 1), else the two kernels in turn. The same bits as the separate kernels.
void depthwise_backward(const Conv2dParams& dgrad_p, const Conv2dParams& wgrad_p);
bool depthwise_backward_flat_applies(const Conv2dParams& dgrad_p, const Conv2dParams& wgrad_p);
void depthwise_backward_flat(const Conv2dParams& dgrad_p, const Conv2dParams& wgrad_p);

// The fused output stage of fprop (p.epilogue; the identity outside the
// inference ops) on y[n, k0:k1, r0:r1, q0:q1], which each fprop path calls
// right after its last write there.
template <typename T>
inline void depthwise_finish(const Conv2dParams& p, int64_t n, int64_t r0, int64_t r1, int64_t q0, int64_t q1,
                             int64_t k0, int64_t k1) {
  apply_epilogue(p.epilogue, static_cast<T*>(p.y), p.y_strides, n, r0, r1, q0, q1, k0, k1);
}

// Whether x and y are both channels-innermost (the channels_last fast paths).
inline bool depthwise_channels_last(const Conv2dParams& p) {
  return p.C > 1 && p.x_strides[1] == 1 && p.y_strides[1] == 1;
}

// Output columns [*qa, *qb) whose taps all lie inside the input: q with
// q*stride - pad + (0 .. extent-1) inside [0, in) (pad >= 0).
inline void interior_columns(int64_t out, int64_t in, int64_t stride, int64_t pad, int64_t extent,
                             int64_t* qa, int64_t* qb) {
  *qa = std::min(out, (pad + stride - 1) / stride);
  const int64_t last = in - extent + pad;  // q*stride <= last
  *qb = last < 0 ? *qa : std::max(*qa, std::min(out, last / stride + 1));
}

// Filter k's R*S taps (row-major) from the (K, 1, R, S) filter, any strides.
template <typename T>
void depthwise_filter(const Conv2dParams& p, int64_t k, T* taps) {
  const T* w = static_cast<const T*>(p.w) + k * p.w_strides[0];
  for (int64_t r = 0; r < p.R; ++r)
    for (int64_t s = 0; s < p.S; ++s) taps[r * p.S + s] = w[r * p.w_strides[2] + s * p.w_strides[3]];
}

// Writes the gradients of filters k0 .. k0+count-1 into p.w (any strides): tap t
// (row-major) of filter k0 + i is sums[i * k_step + t * t_step].
template <typename T, typename A>
void store_depthwise_filters(const Conv2dParams& p, int64_t k0, int64_t count, const A* sums, int64_t k_step,
                             int64_t t_step) {
  T* dw = static_cast<T*>(p.w);
  for (int64_t i = 0; i < count; ++i)
    for (int64_t r = 0; r < p.R; ++r)
      for (int64_t s = 0; s < p.S; ++s)
        dw[(k0 + i) * p.w_strides[0] + r * p.w_strides[2] + s * p.w_strides[3]] =
            static_cast<T>(sums[i * k_step + (r * p.S + s) * t_step]);
}

// The filter (K, 1, R, S) (any strides) transposed to taps-major (R*S, K), so the
// channels_last kernels read each tap's K weights contiguously.
template <typename T>
std::vector<T> depthwise_filter_taps_major(const Conv2dParams& p) {
  const T* w = static_cast<const T*>(p.w);
  std::vector<T> wt(p.R * p.S * p.K);
  for (int64_t k = 0; k < p.K; ++k)
    for (int64_t r = 0; r < p.R; ++r)
      for (int64_t s = 0; s < p.S; ++s)
        wt[(r * p.S + s) * p.K + k] = w[k * p.w_strides[0] + r * p.w_strides[2] + s * p.w_strides[3]];
  return wt;
}

}  // namespace cpu
}  // namespace cnnops
