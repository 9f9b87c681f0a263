// Bias gradient: db[k] = sum over n, p, q of dy[n, k, p, q].
// Parallelisation: a block of KX x PY threads owns KX consecutive channels
// (grid-stride over channel groups); thread (kx, py) sums pixels py, py + PY,
// ... of its channel in a fixed order, then the PY partial sums are combined
// by a fixed shared-memory tree, so the result is deterministic (no atomics).
// Layouts: any strides; channels_last dy (channel stride smallest) uses
// KX = 32 so a warp reads 32 consecutive channels, otherwise KX = 1 and the
// whole block walks one channel's pixels. Dtypes: float32, float64, float16,
// bfloat16, accumulating in float (double for float64).
#include "conv2d_cuda.h"
#include "../common.cuh"

namespace cnnops {
namespace cuda {
namespace detail {
namespace {

template <typename T, int KX, int PY>
__global__ void __launch_bounds__(KX* PY) conv2d_bias_grad_kernel(const BiasGradParams p) {
  using Acc = acc_t<T>;
  __shared__ Acc red[PY][KX];
  const T* __restrict__ dy = static_cast<const T*>(p.dy);
  T* __restrict__ db = static_cast<T*>(p.db);
  const int kx = threadIdx.x % KX, py = threadIdx.x / KX;
  const int64_t plane = p.P * p.Q;
  // Pixel (p, q) sits at j * s3 when rows are packed (NCHW and channels_last).
  const bool flat = p.dy_strides[2] == p.Q * p.dy_strides[3];

  for (int64_t k0 = static_cast<int64_t>(blockIdx.x) * KX; k0 < p.K;
       k0 += static_cast<int64_t>(gridDim.x) * KX) {
    const int64_t k = k0 + kx;
    Acc sum = 0;
    if (k < p.K) {
      for (int64_t n = 0; n < p.N; ++n) {
        const T* base = dy + n * p.dy_strides[0] + k * p.dy_strides[1];
        for (int64_t j = py; j < plane; j += PY) {
          int64_t off;
          if (flat) {
            off = j * p.dy_strides[3];
          } else {
            const int64_t pp = div_nonneg(j, p.Q);
            off = pp * p.dy_strides[2] + (j - pp * p.Q) * p.dy_strides[3];
          }
          sum += to_acc(base[off]);
        }
      }
    }
    red[py][kx] = sum;
    __syncthreads();
    for (int half = PY / 2; half > 0; half /= 2) {
      if (py < half) red[py][kx] += red[py + half][kx];
      __syncthreads();
    }
    if (py == 0 && k < p.K) db[k] = from_acc<T>(red[0][kx]);
    __syncthreads();  // red is reused by the next channel group
  }
}

template <typename T>
cudaError_t launch_bias_grad(const BiasGradParams& p, cudaStream_t stream) {
  const bool channels_fast = p.dy_strides[1] < p.dy_strides[3] && p.K > 1;
  if (channels_fast) {
    constexpr int KX = 32, PY = 8;
    const unsigned blocks = grid_stride_blocks(p.K, KX, int64_t(1) << 20);
    conv2d_bias_grad_kernel<T, KX, PY><<<blocks, KX * PY, 0, stream>>>(p);
  } else {
    constexpr int KX = 1, PY = 256;
    const unsigned blocks = grid_stride_blocks(p.K, KX, int64_t(1) << 20);
    conv2d_bias_grad_kernel<T, KX, PY><<<blocks, KX * PY, 0, stream>>>(p);
  }
  return cudaGetLastError();
}

}  // namespace
}  // namespace detail

// N == 0 (or an empty plane) still launches: db must be written as zeros.
cudaError_t conv2d_bias_grad(const BiasGradParams& p, cudaStream_t stream) {
  if (p.K <= 0) return cudaSuccess;  // db is empty
  if (p.N < 0 || p.P < 0 || p.Q < 0) return cudaErrorInvalidValue;
  return detail::with_dtype(p.dtype, cudaErrorInvalidValue, [&](auto tag) {
    return detail::launch_bias_grad<typename decltype(tag)::type>(p, stream);
  });
}

}  // namespace cuda
}  // namespace cnnops
