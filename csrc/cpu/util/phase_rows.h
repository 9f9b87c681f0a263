// Splitting a strided, padded input row into `step` contiguous phase rows, so
// that the taps of a window sliding with stride `step` read contiguous memory:
// tap offset o (= s * dil) of output column q is phase[o % step][q + o / step].
// Used by the memory-bound kernels (max pooling, depthwise convolution), whose
// inner loops then vectorise along the output row.
#pragma once
#include <algorithm>
#include <cstdint>

namespace cnnops {
namespace cpu {

// Length of each phase row for Q outputs and a window of effective extent `extent`.
inline int64_t phase_len(int64_t Q, int64_t extent, int64_t step) { return Q + (extent - 1) / step + 1; }

// out[j * len + t] = row[w * stride] for w = t*step + j - pad_left inside [0, W),
// else fill; j < step, t < len. Always inlined, so constant strides and steps
// specialise it; `Isa` gives each ISA's translation unit its own instantiation
// (see ../isa/isa.h), so code built for one ISA is never shared.
template <typename T, typename Isa = void>
__attribute__((always_inline)) inline void split_phases(const T* row, int64_t W, int64_t stride,
                                                        int64_t pad_left, int64_t step, int64_t len, T fill,
                                                        T* out) {
  for (int64_t j = 0; j < step; ++j) {
    T* dst = out + j * len;
    // t such that 0 <= t*step + j - pad_left < W
    const int64_t first = j - pad_left;  // column of t = 0
    int64_t lo = first >= 0 ? 0 : (-first + step - 1) / step;
    int64_t hi = W - 1 - first < 0 ? 0 : (W - 1 - first) / step + 1;
    lo = std::min(lo, len);
    hi = std::max(std::min(hi, len), lo);
    for (int64_t t = 0; t < lo; ++t) dst[t] = fill;
    const T* src = row + (first + lo * step) * stride;
    const int64_t inc = step * stride;
    if (inc == 1) {
      std::copy(src, src + (hi - lo), dst + lo);
    } else {
      for (int64_t t = lo; t < hi; ++t) dst[t] = src[(t - lo) * inc];
    }
    for (int64_t t = hi; t < len; ++t) dst[t] = fill;
  }
}

}  // namespace cpu
}  // namespace cnnops
