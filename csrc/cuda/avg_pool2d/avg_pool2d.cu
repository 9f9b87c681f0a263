// Average pooling on CUDA (avg_pool2d and adaptive_avg_pool2d), forward and
// backward, with the windows and divisors of csrc/cpu/avg_pool2d
// (avg_pool_window / avg_pool_outputs in csrc/common/shape.h).
// Parallelisation: one thread per output element (forward) or per input
// element (backward), grid-stride over a flat 64-bit index. The flat order
// follows the layout so a warp walks the contiguous dimension: channels
// fastest when both tensors are channels-innermost (channels_last), else the
// width fastest (NCHW and any other strides).
// Global pool (one window over a contiguous NCHW plane: adaptive 1x1, or a
// kernel the size of the input): one warp per plane, its lanes striding
// through the plane, then a fixed shuffle tree; channels_last global pools
// take the per-output kernel, whose threads then read consecutive channels.
// Backward: a gather, no atomics: each input element sums grad_output /
// divisor over the windows that hold it, in output order; deterministic.
// Sums in the accumulator type (float; double for float64), divided once.
// Dtypes: float32, float64, float16, bfloat16.
#include "avg_pool2d_cuda.h"
#include "../../common/shape.h"
#include "../common.cuh"

namespace cnnops {
namespace cuda {
namespace detail {
namespace {

__device__ __forceinline__ void window_h(const AvgPool2dParams& p, int64_t o, int64_t* lo, int64_t* hi,
                                         int64_t* count) {
  avg_pool_window(o, p.H, p.P, p.R, p.stride_h, p.pad_top, p.pad_bottom, p.adaptive, p.count_include_pad, lo,
                  hi, count);
}

__device__ __forceinline__ void window_w(const AvgPool2dParams& p, int64_t o, int64_t* lo, int64_t* hi,
                                         int64_t* count) {
  avg_pool_window(o, p.W, p.Q, p.S, p.stride_w, p.pad_left, p.pad_right, p.adaptive, p.count_include_pad, lo,
                  hi, count);
}

template <typename Acc>
__device__ __forceinline__ Acc divisor(const AvgPool2dParams& p, int64_t ch, int64_t cw) {
  return p.divisor_override != 0 ? Acc(p.divisor_override) : Acc(ch) * Acc(cw);
}

template <typename T, bool CL>
__global__ void __launch_bounds__(256) avg_pool2d_fwd_kernel(const AvgPool2dParams p, int64_t total) {
  using Acc = acc_t<T>;
  const T* __restrict__ x = static_cast<const T*>(p.x);
  T* __restrict__ y = static_cast<T*>(p.y);
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
    int64_t hlo, hhi, ch, wlo, whi, cw;
    window_h(p, pp, &hlo, &hhi, &ch);
    window_w(p, q, &wlo, &whi, &cw);
    const T* xp = x + n * p.x_strides[0] + c * p.x_strides[1];
    Acc sum = Acc(0);
    for (int64_t h = hlo; h < hhi; ++h) {
      const T* xr = xp + h * p.x_strides[2];
      for (int64_t w = wlo; w < whi; ++w) sum += to_acc(xr[w * p.x_strides[3]]);
    }
    const bool empty = hhi <= hlo || whi <= wlo;
    y[n * p.y_strides[0] + c * p.y_strides[1] + pp * p.y_strides[2] + q * p.y_strides[3]] =
        from_acc<T>(empty ? Acc(0) : sum / divisor<Acc>(p, ch, cw));
  }
}

// One warp per contiguous H*W plane: lane l adds elements l, l + 32, ..., then
// the lanes' sums meet in a fixed shuffle tree.
template <typename T>
__global__ void __launch_bounds__(256) avg_pool2d_global_kernel(const AvgPool2dParams p, int64_t planes) {
  using Acc = acc_t<T>;
  const T* __restrict__ x = static_cast<const T*>(p.x);
  T* __restrict__ y = static_cast<T*>(p.y);
  const int lane = threadIdx.x % 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  const int64_t HW = p.H * p.W;
  int64_t hlo, hhi, ch, wlo, whi, cw;
  window_h(p, 0, &hlo, &hhi, &ch);
  window_w(p, 0, &wlo, &whi, &cw);
  const Acc div = divisor<Acc>(p, ch, cw);
  for (int64_t plane = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; plane < planes;
       plane += warps) {
    int64_t n, c;
    divmod(plane, p.C, n, c);
    const T* xp = x + n * p.x_strides[0] + c * p.x_strides[1];
    Acc sum = Acc(0);
    for (int64_t k = lane; k < HW; k += 32) sum += to_acc(xp[k]);
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
    if (lane == 0) y[n * p.y_strides[0] + c * p.y_strides[1]] = from_acc<T>(sum / div);
  }
}

template <typename T, bool CL>
__global__ void __launch_bounds__(256) avg_pool2d_bwd_kernel(const AvgPool2dParams p, int64_t total) {
  using Acc = acc_t<T>;
  T* __restrict__ dx = static_cast<T*>(p.x);
  const T* __restrict__ dy = static_cast<const T*>(p.y);
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
    int64_t plo, phi, qlo, qhi;
    avg_pool_outputs(h, p.H, p.P, p.R, p.stride_h, p.pad_top, p.adaptive, &plo, &phi);
    avg_pool_outputs(w, p.W, p.Q, p.S, p.stride_w, p.pad_left, p.adaptive, &qlo, &qhi);
    const T* dyp = dy + n * p.y_strides[0] + c * p.y_strides[1];
    Acc sum = Acc(0);
    for (int64_t pp = plo; pp <= phi; ++pp) {
      int64_t lo, hi, ch;
      window_h(p, pp, &lo, &hi, &ch);
      const T* dyr = dyp + pp * p.y_strides[2];
      for (int64_t q = qlo; q <= qhi; ++q) {
        int64_t wl, wh, cw;
        window_w(p, q, &wl, &wh, &cw);
        sum += to_acc(dyr[q * p.y_strides[3]]) / divisor<Acc>(p, ch, cw);
      }
    }
    dx[n * p.x_strides[0] + c * p.x_strides[1] + h * p.x_strides[2] + w * p.x_strides[3]] = from_acc<T>(sum);
  }
}

bool channels_inner(const int64_t s[4], int64_t C) { return C > 1 && s[1] == 1; }

template <typename T>
cudaError_t launch(const AvgPool2dParams& p, bool backward, cudaStream_t stream) {
  const bool cl = channels_inner(p.x_strides, p.C) && channels_inner(p.y_strides, p.C);
  const int64_t total = backward ? p.N * p.C * p.H * p.W : p.N * p.C * p.P * p.Q;
  if (total == 0) return cudaSuccess;
  constexpr int NT = 256;
  if (!backward && !cl && p.P == 1 && p.Q == 1 && p.x_strides[3] == 1 && p.x_strides[2] == p.W) {
    int64_t hlo, hhi, ch, wlo, whi, cw;
    avg_pool_window(0, p.H, 1, p.R, p.stride_h, p.pad_top, p.pad_bottom, p.adaptive, p.count_include_pad,
                    &hlo, &hhi, &ch);
    avg_pool_window(0, p.W, 1, p.S, p.stride_w, p.pad_left, p.pad_right, p.adaptive, p.count_include_pad,
                    &wlo, &whi, &cw);
    if (hlo == 0 && hhi == p.H && wlo == 0 && whi == p.W) {
      avg_pool2d_global_kernel<T><<<grid_stride_blocks(total, NT / 32), NT, 0, stream>>>(p, total);
      return cudaGetLastError();
    }
  }
  const unsigned blocks = grid_stride_blocks(total, NT);
  if (backward) {
    if (cl) avg_pool2d_bwd_kernel<T, true><<<blocks, NT, 0, stream>>>(p, total);
    else avg_pool2d_bwd_kernel<T, false><<<blocks, NT, 0, stream>>>(p, total);
  } else {
    if (cl) avg_pool2d_fwd_kernel<T, true><<<blocks, NT, 0, stream>>>(p, total);
    else avg_pool2d_fwd_kernel<T, false><<<blocks, NT, 0, stream>>>(p, total);
  }
  return cudaGetLastError();
}

cudaError_t dispatch(const AvgPool2dParams& p, bool backward, cudaStream_t stream) {
  if (p.N < 0 || p.C < 0 || p.H <= 0 || p.W <= 0 || p.P < 0 || p.Q < 0 || p.R <= 0 || p.S <= 0 ||
      p.stride_h <= 0 || p.stride_w <= 0 || p.pad_top < 0 || p.pad_bottom < 0 || p.pad_left < 0 ||
      p.pad_right < 0)
    return cudaErrorInvalidValue;
  return with_dtype(p.dtype, cudaErrorInvalidValue,
                    [&](auto tag) { return launch<typename decltype(tag)::type>(p, backward, stream); });
}

}  // namespace
}  // namespace detail

cudaError_t avg_pool2d_fwd(const AvgPool2dParams& p, cudaStream_t stream) {
  return detail::dispatch(p, false, stream);
}

cudaError_t avg_pool2d_bwd(const AvgPool2dParams& p, cudaStream_t stream) {
  return detail::dispatch(p, true, stream);
}

}  // namespace cuda
}  // namespace cnnops
