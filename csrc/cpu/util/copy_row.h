// Row-wise helpers for the im2col-style packing routines: walking flat pixel
// ranges one output row at a time, and copying one strided row segment into a
// packed panel, zero-filling the taps that fall in the padding.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

namespace cnnops {
namespace cpu {

// dst[t * dst_stride] = row[(w0 + t*step) * stride] for t < count, or zero where
// the column w0 + t*step lies outside [0, W).
template <typename T>
inline void copy_row_segment(const T* row, int64_t W, int64_t w0, int64_t step, int64_t stride, int64_t count,
                             T* dst, int64_t dst_stride) {
  int64_t lo, hi;
  if (step == 1) {  // the common case, without divisions
    lo = w0 >= 0 ? 0 : -w0;
    hi = W - w0;
  } else {
    lo = w0 >= 0 ? 0 : (-w0 + step - 1) / step;
    hi = (W - 1 - w0) < 0 ? 0 : (W - 1 - w0) / step + 1;
  }
  lo = std::min(lo, count);
  hi = std::max(std::min(hi, count), lo);
  for (int64_t t = 0; t < lo; ++t) dst[t * dst_stride] = T(0);
  if (step == 1 && stride == 1 && dst_stride == 1) {
    std::memcpy(dst + lo, row + w0 + lo, (hi - lo) * sizeof(T));
  } else {
    for (int64_t t = lo; t < hi; ++t) dst[t * dst_stride] = row[(w0 + t * step) * stride];
  }
  for (int64_t t = hi; t < count; ++t) dst[t * dst_stride] = T(0);
}

// The scatter twin of copy_row_segment: row[(w0 + t*step) * stride] += src[t]
// for t < count where the column lies in [0, W).
template <typename T>
inline void add_row_segment(T* row, int64_t W, int64_t w0, int64_t step, int64_t stride, int64_t count,
                            const T* src) {
  int64_t lo = w0 >= 0 ? 0 : (-w0 + step - 1) / step;
  int64_t hi = (W - 1 - w0) < 0 ? 0 : (W - 1 - w0) / step + 1;
  hi = std::min(hi, count);
  for (int64_t t = lo; t < hi; ++t) row[(w0 + t * step) * stride] += src[t];
}

// Calls fn(n, p, q0, len) for each run of pixels [begin, end) that stays in
// one output row (flat pixel index over n, p, q).
template <typename Fn>
void for_each_row_run(int64_t begin, int64_t end, int64_t P, int64_t Q, Fn fn) {
  int64_t m = begin;
  while (m < end) {
    const int64_t q0 = m % Q, len = std::min(Q - q0, end - m);
    fn(m / (P * Q), m / Q % P, q0, len);
    m += len;
  }
}

}  // namespace cpu
}  // namespace cnnops
