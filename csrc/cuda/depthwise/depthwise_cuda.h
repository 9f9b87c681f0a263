// Torch-free launchers for the CUDA depthwise convolution kernels
// (depthwise.cu; Conv2dParams in csrc/common/params.h). Each launches
// asynchronously on `stream` and returns cudaGetLastError() (or an argument
// error without launching). Tensors may have any strides; contiguous NCHW and
// channels_last are the fast paths. Dtypes: float32, float64, float16,
// bfloat16 (float accumulation; double for float64).
#pragma once

#include <cuda_runtime.h>

#include "../../common/params.h"

namespace cnnops {
namespace cuda {

// Depthwise convolution, groups == C, weight (K = C*M, 1, R, S), output
// channel k reading input channel k / M.
cudaError_t depthwise_fprop(const Conv2dParams& p, cudaStream_t stream);  // y (+ bias[K])
cudaError_t depthwise_dgrad(const Conv2dParams& p, cudaStream_t stream);  // x from y, w
// w = sum over n, p, q of y * shifted x. Overwrites w; deterministic; no workspace.
cudaError_t depthwise_wgrad(const Conv2dParams& p, cudaStream_t stream);

}  // namespace cuda
}  // namespace cnnops
