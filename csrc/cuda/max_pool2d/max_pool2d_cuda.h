// Torch-free launchers for the CUDA max-pooling kernels (max_pool2d.cu;
// MaxPool2dParams in csrc/common/params.h). Each launches asynchronously on
// `stream` and returns cudaGetLastError() (or an argument error without
// launching). Tensors may have any strides; contiguous NCHW and channels_last
// are the fast paths. Dtypes: float32, float64, float16, bfloat16 (compared
// in float; double for float64).
#pragma once

#include <cuda_runtime.h>

#include "../../common/params.h"

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

}  // namespace cuda
}  // namespace cnnops
