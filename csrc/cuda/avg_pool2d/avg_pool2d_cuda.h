// Torch-free launchers for the CUDA average-pooling kernels (avg_pool2d.cu;
// AvgPool2dParams in csrc/common/params.h): avg_pool2d and adaptive_avg_pool2d
// (p.adaptive). Each launches asynchronously on `stream` and returns
// cudaGetLastError() (or an argument error without launching). Tensors may
// have any strides; contiguous NCHW and channels_last are the fast paths.
// Dtypes: float32, float64, float16, bfloat16 (summed in float; double for
// float64).
#pragma once

#include <cuda_runtime.h>

#include "../../common/params.h"

namespace cnnops {
namespace cuda {

// y = the window sums divided by the divisor; writes every element of y.
cudaError_t avg_pool2d_fwd(const AvgPool2dParams& p, cudaStream_t stream);

// grad_input (p.x) from grad_output (p.y): a deterministic gather (no
// atomics), each input element summing grad_output / divisor over the windows
// that hold it, in output order. Writes every element.
cudaError_t avg_pool2d_bwd(const AvgPool2dParams& p, cudaStream_t stream);

}  // namespace cuda
}  // namespace cnnops
