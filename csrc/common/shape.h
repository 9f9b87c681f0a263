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

// Average-pooling windows along one axis of `in` inputs and `out` outputs.
// Output o reads the inputs [*lo, *hi) (clipped to the input; empty when
// lo >= hi) and counts *count cells in its divisor. Regular windows start at
// o*stride - pad_begin and hold k taps, the padded input ending at
// in + pad_end; count_pad counts their padded cells up to that end (torch's
// count_include_pad). Adaptive windows (k, stride and padding unused) are
// torch's: [floor(o*in/out), ceil((o+1)*in/out)), counted as they are.
CNNOPS_HOST_DEVICE inline void avg_pool_window(int64_t o, int64_t in, int64_t out, int64_t k, int64_t stride,
                                               int64_t pad_begin, int64_t pad_end, bool adaptive,
                                               bool count_pad, int64_t* lo, int64_t* hi, int64_t* count) {
  if (adaptive) {
    *lo = o * in / out;
    *hi = ((o + 1) * in + out - 1) / out;
    *count = *hi - *lo;
    return;
  }
  const int64_t start = o * stride - pad_begin;
  const int64_t end = start + k < in + pad_end ? start + k : in + pad_end;
  *lo = start > 0 ? start : 0;
  *hi = end < in ? end : in;
  *count = count_pad ? end - start : (*hi > *lo ? *hi - *lo : 0);
}

// The outputs whose windows (avg_pool_window) hold input position i: [*first,
// *last], empty when first > last.
CNNOPS_HOST_DEVICE inline void avg_pool_outputs(int64_t i, int64_t in, int64_t out, int64_t k, int64_t stride,
                                                int64_t pad_begin, bool adaptive, int64_t* first,
                                                int64_t* last) {
  if (adaptive) {
    *first = i * out / in;
    *last = ((i + 1) * out + in - 1) / in - 1;
    return;
  }
  const int64_t a = i + pad_begin - k + 1;  // window start >= a
  *first = a <= 0 ? 0 : (a + stride - 1) / stride;
  const int64_t l = (i + pad_begin) / stride;  // i + pad_begin >= 0
  *last = l < out - 1 ? l : out - 1;
}

}  // namespace cnnops
