// Depthwise convolution on CUDA (groups == C, weight (K = C*M, 1, R, S), output
// channel k reading input channel k / M), matching csrc/cpu/depthwise/.
// Memory-bound, so no GEMM and no tensor cores:
//   fprop: one thread per output element y[n, k, p, q], summing its R*S taps
//     (+ bias[k]); dgrad: one thread per input element dx[n, c, h, w], gathering
//     the M*R*S (m, r, s) taps that reach it. Grid-stride over a flat 64-bit
//     index whose order follows the layout: channels fastest when x and y are
//     both channels-innermost (channels_last: a warp reads and writes
//     consecutive channels, and consecutive weights' rows), else the width
//     fastest (NCHW: a warp walks a row and shares one filter, so weight loads
//     are broadcasts served by L1).
//   wgrad: deterministic, no atomics, no workspace: a block of KX x PY threads
//     owns KX consecutive output channels and one tap (r, s) (grid-stride over
//     channel groups x taps); thread (kx, py) sums pixels py, py + PY, ... of
//     every image in a fixed order, and a fixed shared-memory tree combines
//     the PY partial sums. channels_last uses KX = 32 (a warp reads 32
//     consecutive channels), otherwise KX = 1, PY = 256 (a block walks rows).
// Any strides work (the flat kernels index through all four strides). 3 x 3
// and 5 x 5 filters get fprop / dgrad instances with the tap loops unrolled.
// Dtypes: float32, float64, float16, bfloat16; float accumulation (double for
// float64).
#include "depthwise_cuda.h"
#include "../common.cuh"

namespace cnnops {
namespace cuda {
namespace detail {
namespace {

// FR x FS > 0: the filter size known at compile time (loops unrolled); 0: p.R x p.S.
template <typename T, bool CL, int FR, int FS>
__global__ void __launch_bounds__(256) dw_fprop_kernel(const Conv2dParams p, int64_t total) {
  using Acc = acc_t<T>;
  const T* __restrict__ x = static_cast<const T*>(p.x);
  const T* __restrict__ wt = static_cast<const T*>(p.w);
  const T* __restrict__ bias = static_cast<const T*>(p.bias);
  T* __restrict__ y = static_cast<T*>(p.y);
  const int64_t M = p.K / p.C;
  const int64_t R = FR > 0 ? FR : p.R, S = FS > 0 ? FS : p.S;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t n, k, pp, q, t;
    if (CL) {
      divmod(i, p.K, t, k);
      divmod(t, p.Q, t, q);
      divmod(t, p.P, n, pp);
    } else {
      divmod(i, p.Q, t, q);
      divmod(t, p.P, t, pp);
      divmod(t, p.K, n, k);
    }
    const int64_t c = div_nonneg(k, M);
    const int64_t hs = pp * p.stride_h - p.pad_h, ws = q * p.stride_w - p.pad_w;
    const T* xp = x + n * p.x_strides[0] + c * p.x_strides[1];
    const T* wk = wt + k * p.w_strides[0];
    Acc acc = bias ? to_acc(bias[k]) : Acc(0);
#pragma unroll(FR > 0 ? FR : 1)
    for (int64_t r = 0; r < R; ++r) {
      const int64_t h = hs + r * p.dil_h;
      if (h < 0 || h >= p.H) continue;
      const T* xr = xp + h * p.x_strides[2];
      const T* wr = wk + r * p.w_strides[2];
#pragma unroll(FS > 0 ? FS : 1)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t w = ws + s * p.dil_w;
        if (w < 0 || w >= p.W) continue;
        acc = fma(to_acc(xr[w * p.x_strides[3]]), to_acc(wr[s * p.w_strides[3]]), acc);
      }
    }
    y[n * p.y_strides[0] + k * p.y_strides[1] + pp * p.y_strides[2] + q * p.y_strides[3]] = from_acc<T>(acc);
  }
}

// Output position o along one axis whose tap `tap` reaches input position i:
// o = (i + pad - tap*dil) / stride when that divides exactly and 0 <= o < out.
__device__ __forceinline__ bool tap_source(int64_t i, int64_t pad, int64_t tap, int64_t dil, int64_t stride,
                                           int64_t out, int64_t& o) {
  const int64_t t = i + pad - tap * dil;
  if (t < 0) return false;
  int64_t rem;
  divmod(t, stride, o, rem);
  return rem == 0 && o < out;
}

template <typename T, bool CL, int FR, int FS>
__global__ void __launch_bounds__(256) dw_dgrad_kernel(const Conv2dParams p, int64_t total) {
  using Acc = acc_t<T>;
  T* __restrict__ dx = static_cast<T*>(p.x);
  const T* __restrict__ wt = static_cast<const T*>(p.w);
  const T* __restrict__ dy = static_cast<const T*>(p.y);
  const int64_t M = p.K / p.C;
  const int64_t R = FR > 0 ? FR : p.R, S = FS > 0 ? FS : p.S;
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
    Acc acc = Acc(0);
    for (int64_t m = 0; m < M; ++m) {
      const int64_t k = c * M + m;
      const T* dyp = dy + n * p.y_strides[0] + k * p.y_strides[1];
      const T* wk = wt + k * p.w_strides[0];
#pragma unroll(FR > 0 ? FR : 1)
      for (int64_t r = 0; r < R; ++r) {
        int64_t pp;
        if (!tap_source(h, p.pad_h, r, p.dil_h, p.stride_h, p.P, pp)) continue;
        const T* dyr = dyp + pp * p.y_strides[2];
        const T* wr = wk + r * p.w_strides[2];
#pragma unroll(FS > 0 ? FS : 1)
        for (int64_t s = 0; s < S; ++s) {
          int64_t q;
          if (!tap_source(w, p.pad_w, s, p.dil_w, p.stride_w, p.Q, q)) continue;
          acc = fma(to_acc(dyr[q * p.y_strides[3]]), to_acc(wr[s * p.w_strides[3]]), acc);
        }
      }
    }
    dx[n * p.x_strides[0] + c * p.x_strides[1] + h * p.x_strides[2] + w * p.x_strides[3]] = from_acc<T>(acc);
  }
}

template <typename T, int KX, int PY>
__global__ void __launch_bounds__(KX* PY) dw_wgrad_kernel(const Conv2dParams p, int64_t kgroups) {
  using Acc = acc_t<T>;
  __shared__ Acc red[PY][KX];
  const T* __restrict__ x = static_cast<const T*>(p.x);
  const T* __restrict__ dy = static_cast<const T*>(p.y);
  T* __restrict__ dw = static_cast<T*>(p.w);
  const int kx = threadIdx.x % KX, py = threadIdx.x / KX;
  const int64_t M = p.K / p.C, RS = p.R * p.S, plane = p.P * p.Q;
  const int64_t items = kgroups * RS;
  for (int64_t item = blockIdx.x; item < items; item += gridDim.x) {
    int64_t kg, tap, r, s;
    divmod(item, RS, kg, tap);
    divmod(tap, p.S, r, s);
    const int64_t k = kg * KX + kx;
    const int64_t oh = r * p.dil_h - p.pad_h, ow = s * p.dil_w - p.pad_w;
    Acc sum = Acc(0);
    if (k < p.K) {
      const int64_t c = div_nonneg(k, M);
      for (int64_t n = 0; n < p.N; ++n) {
        const T* dyp = dy + n * p.y_strides[0] + k * p.y_strides[1];
        const T* xp = x + n * p.x_strides[0] + c * p.x_strides[1];
        for (int64_t j = py; j < plane; j += PY) {
          int64_t pp, q;
          divmod(j, p.Q, pp, q);
          const int64_t h = pp * p.stride_h + oh, w = q * p.stride_w + ow;
          if (h < 0 || h >= p.H || w < 0 || w >= p.W) continue;
          sum = fma(to_acc(dyp[pp * p.y_strides[2] + q * p.y_strides[3]]),
                    to_acc(xp[h * p.x_strides[2] + w * p.x_strides[3]]), sum);
        }
      }
    }
    red[py][kx] = sum;
    __syncthreads();
    for (int half = PY / 2; half > 0; half /= 2) {
      if (py < half) red[py][kx] += red[py + half][kx];
      __syncthreads();
    }
    if (py == 0 && k < p.K)
      dw[k * p.w_strides[0] + r * p.w_strides[2] + s * p.w_strides[3]] = from_acc<T>(red[0][kx]);
    __syncthreads();  // red is reused by the next item
  }
}

bool depthwise_cl(const Conv2dParams& p) { return p.C > 1 && p.x_strides[1] == 1 && p.y_strides[1] == 1; }

constexpr int kThreads = 256;

// Launches KERNEL<T, CL, FR, FS> with FR x FS = 3 x 3, 5 x 5 or runtime (0, 0).
template <template <typename, bool, int, int> class Launch, typename T>
cudaError_t launch_flat(const Conv2dParams& p, int64_t total, cudaStream_t stream) {
  if (total == 0) return cudaSuccess;
  const bool cl = depthwise_cl(p);
  const unsigned blocks = grid_stride_blocks(total, kThreads);
  if (p.R == 3 && p.S == 3) {
    if (cl) Launch<T, true, 3, 3>::run(p, total, blocks, stream);
    else Launch<T, false, 3, 3>::run(p, total, blocks, stream);
  } else if (p.R == 5 && p.S == 5) {
    if (cl) Launch<T, true, 5, 5>::run(p, total, blocks, stream);
    else Launch<T, false, 5, 5>::run(p, total, blocks, stream);
  } else {
    if (cl) Launch<T, true, 0, 0>::run(p, total, blocks, stream);
    else Launch<T, false, 0, 0>::run(p, total, blocks, stream);
  }
  return cudaGetLastError();
}

template <typename T, bool CL, int FR, int FS>
struct FpropLaunch {
  static void run(const Conv2dParams& p, int64_t total, unsigned blocks, cudaStream_t stream) {
    dw_fprop_kernel<T, CL, FR, FS><<<blocks, kThreads, 0, stream>>>(p, total);
  }
};
template <typename T, bool CL, int FR, int FS>
struct DgradLaunch {
  static void run(const Conv2dParams& p, int64_t total, unsigned blocks, cudaStream_t stream) {
    dw_dgrad_kernel<T, CL, FR, FS><<<blocks, kThreads, 0, stream>>>(p, total);
  }
};

template <typename T>
cudaError_t launch_fprop(const Conv2dParams& p, cudaStream_t stream) {
  return launch_flat<FpropLaunch, T>(p, p.N * p.K * p.P * p.Q, stream);
}

template <typename T>
cudaError_t launch_dgrad(const Conv2dParams& p, cudaStream_t stream) {
  return launch_flat<DgradLaunch, T>(p, p.N * p.C * p.H * p.W, stream);
}

// N == 0 still launches: w must be written (as zeros).
template <typename T>
cudaError_t launch_wgrad(const Conv2dParams& p, cudaStream_t stream) {
  const int64_t RS = p.R * p.S;
  if (depthwise_cl(p)) {
    constexpr int KX = 32, PY = 8;
    const int64_t kgroups = ceil_div(p.K, KX);
    const unsigned blocks = grid_stride_blocks(kgroups * RS, 1);
    dw_wgrad_kernel<T, KX, PY><<<blocks, KX * PY, 0, stream>>>(p, kgroups);
  } else {
    constexpr int KX = 1, PY = 256;
    const int64_t kgroups = p.K;
    const unsigned blocks = grid_stride_blocks(kgroups * RS, 1);
    dw_wgrad_kernel<T, KX, PY><<<blocks, KX * PY, 0, stream>>>(p, kgroups);
  }
  return cudaGetLastError();
}

bool valid(const Conv2dParams& p) {
  return p.N >= 0 && p.C > 0 && p.K > 0 && p.K % p.C == 0 && p.H > 0 && p.W > 0 && p.R > 0 && p.S > 0 &&
         p.P >= 0 && p.Q >= 0 && p.stride_h > 0 && p.stride_w > 0 && p.dil_h > 0 && p.dil_w > 0 &&
         p.pad_h >= 0 && p.pad_w >= 0;
}

enum class Which { Fprop, Dgrad, Wgrad };

template <typename T>
cudaError_t run(const Conv2dParams& p, Which which, cudaStream_t stream) {
  if (which == Which::Fprop) return launch_fprop<T>(p, stream);
  if (which == Which::Dgrad) return launch_dgrad<T>(p, stream);
  return launch_wgrad<T>(p, stream);
}

cudaError_t dispatch(const Conv2dParams& p, Which which, cudaStream_t stream) {
  if (!valid(p)) return cudaErrorInvalidValue;
  return with_dtype(p.dtype, cudaErrorInvalidValue,
                    [&](auto tag) { return run<typename decltype(tag)::type>(p, which, stream); });
}

}  // namespace
}  // namespace detail

cudaError_t depthwise_fprop(const Conv2dParams& p, cudaStream_t stream) {
  return detail::dispatch(p, detail::Which::Fprop, stream);
}
cudaError_t depthwise_dgrad(const Conv2dParams& p, cudaStream_t stream) {
  return detail::dispatch(p, detail::Which::Dgrad, stream);
}
cudaError_t depthwise_wgrad(const Conv2dParams& p, cudaStream_t stream) {
  return detail::dispatch(p, detail::Which::Wgrad, stream);
}

}  // namespace cuda
}  // namespace cnnops
