// Max pooling on CUDA, forward and backward, matching
// csrc/cpu/max_pool2d/max_pool2d.cpp.
// Parallelisation: one thread per output element (forward) or per input
// element (backward), grid-stride over a flat 64-bit index. The flat order
// follows the layout so a warp walks the contiguous dimension: channels
// fastest when x, y and indices are all channels-innermost (channels_last),
// else the width fastest (NCHW and any other strides).
// Forward: taps in row-major order, take v when v > max or v is NaN (compared
// in the accumulator type, which is exact for every dtype); the index starts
// at the window's first valid position, so an all -inf window keeps it.
// Backward: a gather, no atomics: each input element sums grad_output over the
// output windows that can contain it and whose index names it, in output
// order (torch's scatter order); deterministic.
// Dtypes: float32, float64, float16, bfloat16.
#include <math_constants.h>

#include "max_pool2d_cuda.h"
#include "../../common/shape.h"
#include "../common.cuh"

namespace cnnops {
namespace cuda {
namespace detail {
namespace {

template <typename Acc>
__device__ __forceinline__ Acc neg_inf();
template <>
__device__ __forceinline__ float neg_inf<float>() {
  return -CUDART_INF_F;
}
template <>
__device__ __forceinline__ double neg_inf<double>() {
  return -CUDART_INF;
}

template <typename T, bool CL>
__global__ void __launch_bounds__(256) max_pool2d_fwd_kernel(const MaxPool2dParams p, int64_t total) {
  using Acc = acc_t<T>;
  const T* __restrict__ x = static_cast<const T*>(p.x);
  T* __restrict__ y = static_cast<T*>(p.y);
  int64_t* __restrict__ ind = static_cast<int64_t*>(p.indices);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t n, c, pp, q, t;
    if (CL) {
      divmod(i, p.C, t, c);
      divmod(t, p.Q, t, q);
      divmod(t, p.P, n, pp);
    } else {
      divmod(i, p.Q, t, q);
      divmod(t, p.P, t, pp);
      divmod(t, p.C, n, c);
    }
    const int64_t hs = pp * p.stride_h - p.pad_h, ws = q * p.stride_w - p.pad_w;
    const T* xp = x + n * p.x_strides[0] + c * p.x_strides[1];
    Acc best = neg_inf<Acc>();
    T best_t = from_acc<T>(best);
    int64_t best_i = pool_first_valid(hs, p.dil_h) * p.W + pool_first_valid(ws, p.dil_w);
    for (int64_t r = 0; r < p.R; ++r) {
      const int64_t h = hs + r * p.dil_h;
      if (h < 0 || h >= p.H) continue;
      const T* xr = xp + h * p.x_strides[2];
      for (int64_t s = 0; s < p.S; ++s) {
        const int64_t w = ws + s * p.dil_w;
        if (w < 0 || w >= p.W) continue;
        const T vt = xr[w * p.x_strides[3]];
        const Acc v = to_acc(vt);
        if (v > best || v != v) {
          best = v;
          best_t = vt;
          best_i = h * p.W + w;
        }
      }
    }
    y[n * p.y_strides[0] + c * p.y_strides[1] + pp * p.y_strides[2] + q * p.y_strides[3]] = best_t;
    ind[n * p.i_strides[0] + c * p.i_strides[1] + pp * p.i_strides[2] + q * p.i_strides[3]] = best_i;
  }
}

// Output windows along one axis that can contain input position i: [lo, hi].
__device__ __forceinline__ void window_range(int64_t i, int64_t pad, int64_t stride, int64_t extent,
                                             int64_t out, int64_t* lo, int64_t* hi) {
  const int64_t a = i + pad - extent + 1;  // window start >= a
  *lo = a <= 0 ? 0 : div_nonneg(a + stride - 1, stride);
  *hi = min64(out - 1, div_nonneg(i + pad, stride));  // i + pad >= 0
}

template <typename T, bool CL>
__global__ void __launch_bounds__(256) max_pool2d_bwd_kernel(const MaxPool2dParams p, int64_t total) {
  using Acc = acc_t<T>;
  T* __restrict__ dx = static_cast<T*>(p.x);
  const T* __restrict__ dy = static_cast<const T*>(p.y);
  const int64_t* __restrict__ ind = static_cast<const int64_t*>(p.indices);
  const int64_t eh = effective_kernel(p.R, p.dil_h), ew = effective_kernel(p.S, p.dil_w);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t n, c, h, w, t;
    if (CL) {
      divmod(i, p.C, t, c);
      divmod(t, p.W, t, w);
      divmod(t, p.H, n, h);
    } else {
      divmod(i, p.W, t, w);
      divmod(t, p.H, t, h);
      divmod(t, p.C, n, c);
    }
    const int64_t target = h * p.W + w;
    int64_t plo, phi, qlo, qhi;
    window_range(h, p.pad_h, p.stride_h, eh, p.P, &plo, &phi);
    window_range(w, p.pad_w, p.stride_w, ew, p.Q, &qlo, &qhi);
    const T* dyp = dy + n * p.y_strides[0] + c * p.y_strides[1];
    const int64_t* ip = ind + n * p.i_strides[0] + c * p.i_strides[1];
    Acc sum = Acc(0);
    for (int64_t pp = plo; pp <= phi; ++pp) {
      const int64_t* ir = ip + pp * p.i_strides[2];
      const T* dyr = dyp + pp * p.y_strides[2];
      for (int64_t q = qlo; q <= qhi; ++q)
        if (ir[q * p.i_strides[3]] == target) sum += to_acc(dyr[q * p.y_strides[3]]);
    }
    dx[n * p.x_strides[0] + c * p.x_strides[1] + h * p.x_strides[2] + w * p.x_strides[3]] = from_acc<T>(sum);
  }
}

bool channels_inner(const int64_t s[4], int64_t C) { return C > 1 && s[1] == 1; }

template <typename T>
cudaError_t launch(const MaxPool2dParams& p, bool backward, cudaStream_t stream) {
  const bool cl = channels_inner(p.x_strides, p.C) && channels_inner(p.y_strides, p.C) &&
                  channels_inner(p.i_strides, p.C);
  const int64_t total = backward ? p.N * p.C * p.H * p.W : p.N * p.C * p.P * p.Q;
  if (total == 0) return cudaSuccess;
  constexpr int NT = 256;
  const unsigned blocks = grid_stride_blocks(total, NT);
  if (backward) {
    if (cl) max_pool2d_bwd_kernel<T, true><<<blocks, NT, 0, stream>>>(p, total);
    else max_pool2d_bwd_kernel<T, false><<<blocks, NT, 0, stream>>>(p, total);
  } else {
    if (cl) max_pool2d_fwd_kernel<T, true><<<blocks, NT, 0, stream>>>(p, total);
    else max_pool2d_fwd_kernel<T, false><<<blocks, NT, 0, stream>>>(p, total);
  }
  return cudaGetLastError();
}

cudaError_t dispatch(const MaxPool2dParams& p, bool backward, cudaStream_t stream) {
  if (p.N < 0 || p.C < 0 || p.H <= 0 || p.W <= 0 || p.P < 0 || p.Q < 0 || p.R <= 0 || p.S <= 0 ||
      p.stride_h <= 0 || p.stride_w <= 0 || p.dil_h <= 0 || p.dil_w <= 0 || p.pad_h < 0 || p.pad_w < 0)
    return cudaErrorInvalidValue;
  return with_dtype(p.dtype, cudaErrorInvalidValue,
                    [&](auto tag) { return launch<typename decltype(tag)::type>(p, backward, stream); });
}

}  // namespace
}  // namespace detail

cudaError_t max_pool2d_fwd(const MaxPool2dParams& p, cudaStream_t stream) {
  return detail::dispatch(p, false, stream);
}

cudaError_t max_pool2d_bwd(const MaxPool2dParams& p, cudaStream_t stream) {
  return detail::dispatch(p, true, stream);
}

}  // namespace cuda
}  // namespace cnnops
