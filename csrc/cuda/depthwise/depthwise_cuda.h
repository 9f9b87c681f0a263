// Torch-free launchers for the CUDA max-pooling, depthwise and fused separable
// kernels (params structs in ../kernels/params.h). Each launches
// asynchronously on `stream` and returns cudaGetLastError() (or an argument
// error without launching). Tensors may have any strides; contiguous NCHW and
// channels_last are the fast paths. Dtypes: float32, float64, float16,
// bfloat16 (float accumulation; double for float64).
#pragma once

#include <cuda_runtime.h>

#include "../kernels/params.h"

namespace cnnops {
namespace cuda {

// y and indices (int64 h*W + w) with torch's rules: NaN wins (the last NaN),
// otherwise the first maximum; a window with no tap above -inf keeps its
// first valid position. Writes every element of y and indices.
cudaError_t max_pool2d_fwd(const MaxPool2dParams& p, cudaStream_t stream);

// grad_input (p.x) from grad_output (p.y) and indices: a deterministic gather
// (no atomics), summing in output order. The caller validates beforehand that
// every index of a window holding an input position lies in [0, H*W); other
// indices are never followed (they only fail to match). Writes every element.
cudaError_t max_pool2d_bwd(const MaxPool2dParams& p, cudaStream_t stream);

// Depthwise convolution, groups == C, weight (K = C*M, 1, R, S), output
// channel k reading input channel k / M.
cudaError_t depthwise_fprop(const Conv2dParams& p, cudaStream_t stream);  // y (+ bias[K])
cudaError_t depthwise_dgrad(const Conv2dParams& p, cudaStream_t stream);  // x from y, w
// w = sum over n, p, q of y * shifted x. Overwrites w; deterministic; no workspace.
cudaError_t depthwise_wgrad(const Conv2dParams& p, cudaStream_t stream);

// Fused separable forward: depthwise then 1x1 pointwise (+ bias), the
// intermediate never written to global memory.
cudaError_t separable_fused_fprop(const SeparableParams& p, cudaStream_t stream);

}  // namespace cuda
}  // namespace cnnops
