// Copying one strided row segment into a packed panel, zero-filling the taps
// that fall in the padding. Used by every im2col-style packing routine.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

namespace cnnops {
namespace cpu {

// dst[t * dst_stride] = row[(w0 + t*step) * stride] for t < count, or zero where
// the column w0 + t*step lies outside [0, W).
template <typename T>
inline void copy_row_segment(const T* row, int64_t W, int64_t w0, int64_t step, int64_t stride,
                             int64_t count, T* dst, int64_t dst_stride) {
  int64_t lo = w0 >= 0 ? 0 : (-w0 + step - 1) / step;
  int64_t hi = (W - 1 - w0) < 0 ? 0 : (W - 1 - w0) / step + 1;
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

}  // namespace cpu
}  // namespace cnnops
