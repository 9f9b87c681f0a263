// CPU entry points of the convolution family (see csrc/kernels/params.h for
// the meaning of each field). float32 and float64; any strides.
#pragma once
#include "../kernels/params.h"

namespace cnnops {
namespace cpu {

void conv2d_fprop(const Conv2dParams& p);      // y = conv(x, w) (+ bias[K])
void conv2d_dgrad(const Conv2dParams& p);      // x = conv^T(y, w) (+ bias[C])
void conv2d_wgrad(const Conv2dParams& p);      // w = d conv / d w, contracted with y
void conv2d_bias_grad(const BiasGradParams& p);  // db[k] = sum_{n,p,q} dy[n,k,p,q]

}  // namespace cpu
}  // namespace cnnops
