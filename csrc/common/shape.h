// Output-size arithmetic for convolution and pooling, torch-free and usable
// from host and device code. All math in int64_t; callers validate inputs
// (positive stride/dilation, non-negative begin padding) before calling.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define CNNOPS_HOST_DEVICE __host__ __device__
#else
#define CNNOPS_HOST_DEVICE
#endif

namespace cnnops {

// Extent of a dilated filter: taps at 0, dil, ..., dil*(k-1).
CNNOPS_HOST_DEVICE inline int64_t effective_kernel(int64_t k, int64_t dil) { return dil * (k - 1) + 1; }

// Floor division that rounds towards minus infinity (C++ '/' truncates).
CNNOPS_HOST_DEVICE inline int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// Convolution output size along one axis; pad_begin + pad_end is the total
// padding. Returns a value < 1 when the filter does not fit: callers report it.
CNNOPS_HOST_DEVICE inline int64_t conv_out_size(int64_t in, int64_t k, int64_t pad_begin, int64_t pad_end,
                                                int64_t stride, int64_t dil) {
  int64_t span = in + pad_begin + pad_end - effective_kernel(k, dil);
  return span < 0 ? 0 : span / stride + 1;
}

// Pooling output size along one axis, as torch's pooling_output_shape with
// (begin, end) padding: with ceil_mode a last window must start inside the
// input or its begin padding.
CNNOPS_HOST_DEVICE inline int64_t pool_out_size(int64_t in, int64_t k, int64_t pad_begin, int64_t pad_end,
                                                int64_t stride, int64_t dil, bool ceil_mode) {
  const int64_t span = in + pad_begin + pad_end - effective_kernel(k, dil);
  int64_t out = floor_div(span + (ceil_mode ? stride - 1 : 0), stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad_begin) --out;
  return out;
}

// Pooling windows: taps at start + t*dil for t < k. The first tap >= 0 (torch's
// initial winner, whose index a window keeps when all its values are -inf), and
// whether a window holds no position of [0, size) at all (only dilation can
// skip every position; such a window outputs -inf and passes no gradient).
CNNOPS_HOST_DEVICE inline int64_t pool_first_valid(int64_t start, int64_t dil) {
  return start >= 0 ? start : start + ((-start + dil - 1) / dil) * dil;
}

CNNOPS_HOST_DEVICE inline bool pool_window_empty(int64_t start, int64_t k, int64_t dil, int64_t size) {
  const int64_t f = pool_first_valid(start, dil);
  return f >= size || f > start + (k - 1) * dil;
}

}  // namespace cnnops
