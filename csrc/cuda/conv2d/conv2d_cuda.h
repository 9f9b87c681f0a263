// Torch-free launchers for the CUDA convolution kernels (conv2d and
// conv_transpose2d: conv_transpose2d forward is conv2d_dgrad).
//
// The glue fills a Conv2dParams / BiasGradParams (see csrc/common/params.h)
// and calls one of these on the current stream. Every function launches
// asynchronously and returns cudaGetLastError() (or an argument / support
// error without launching). Tensors may have any strides.
#pragma once

#include <cstddef>
#include <cuda_runtime.h>

#include "../../common/params.h"

namespace cnnops {
namespace cuda {

// y = conv(x, w) (+ bias[K]). Writes every element of y.
cudaError_t conv2d_fprop(const Conv2dParams& p, cudaStream_t stream);

// x = conv^T(y, w) (+ bias[C]): the gradient of fprop w.r.t. x, and
// conv_transpose2d forward. Writes every element of x (zeros where nothing
// contributes).
cudaError_t conv2d_dgrad(const Conv2dParams& p, cudaStream_t stream);

// Bytes of scratch conv2d_wgrad needs for this problem (0 when none); the
// caller passes a buffer of at least this size, suitably aligned (8 bytes).
size_t conv2d_wgrad_workspace_bytes(const Conv2dParams& p);

// w = sum over n, p, q of y (x) x-patches. Overwrites w; deterministic.
cudaError_t conv2d_wgrad(const Conv2dParams& p, void* workspace, cudaStream_t stream);

// db[k] = sum over n, p, q of dy[n, k, p, q]. Overwrites db; deterministic.
cudaError_t conv2d_bias_grad(const BiasGradParams& p, cudaStream_t stream);

}  // namespace cuda
}  // namespace cnnops
