// Torch-free launcher of the fused output stage on CUDA (Epilogue in
// csrc/common/params.h): y = post(act(y) + residual) over a convolution's
// output, run after the convolution kernel on the same stream. Any strides;
// float32, float64, float16, bfloat16 (computed in float, double for float64).
#pragma once

#include <cuda_runtime.h>

#include "../../common/params.h"

namespace cnnops {
namespace cuda {

// Applies p.epilogue to p.y (N x K x P x Q, strides p.y_strides); returns
// cudaGetLastError() (cudaSuccess without launching for the identity).
cudaError_t apply_epilogue(const Conv2dParams& p, cudaStream_t stream);

}  // namespace cuda
}  // namespace cnnops
