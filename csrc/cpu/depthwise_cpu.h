// CPU entry points of depthwise convolution: Conv2dParams with groups == C and
// a (K = C*M, 1, R, S) filter, output channel k reading input channel k / M.
// Memory-bound, so no GEMM: each kernel streams planes (NCHW, any strides) or
// pixels (channels_last) once. float32 and float64.
#pragma once
#include "../kernels/params.h"

namespace cnnops {
namespace cpu {

void depthwise_fprop(const Conv2dParams& p);  // y = dwconv(x, w) (+ bias[K])
void depthwise_dgrad(const Conv2dParams& p);  // x = dwconv^T(y, w)
void depthwise_wgrad(const Conv2dParams& p);  // w = sum over n, p, q of y * shifted x

// Whether x and y are both channels-innermost (the channels_last fast paths).
inline bool depthwise_channels_last(const Conv2dParams& p) {
  return p.C > 1 && p.x_strides[1] == 1 && p.y_strides[1] == 1;
}

}  // namespace cpu
}  // namespace cnnops
