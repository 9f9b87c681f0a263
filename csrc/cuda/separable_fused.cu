// Fused separable convolution forward on CUDA: depthwise (weight (C*M, 1, R, S),
// intermediate channel j reading input channel j / M) then 1x1 pointwise
// (weight (K, C*M, 1, 1)) (+ bias[K]), the intermediate z never written to
// global memory.
// Parallelisation: a block of 256 threads owns a tile of TPIX = 64 output
// pixels (flat over n, p, q; grid x) and TK = 128 output channels (grid y,
// looped). It walks the C*M intermediate channels in chunks of CC = 16: the
// threads compute the depthwise tile z[CC][TPIX] into shared memory (each
// element its R*S taps, zero padding) and stage pw[TK][CC] beside it, then
// every thread accumulates its 4 pixels x 8 channels of the pointwise GEMM in
// registers. The epilogue adds the bias and writes y once. z is recomputed per
// channel tile (ceil(K / 128) times), which is cheap next to the GEMM.
// z is kept in the accumulator type (not rounded to the element type), so
// half-precision results can differ from the unfused depthwise + conv2d by
// that one rounding.
// Layouts: any strides. When x is channels-innermost (channels_last) the
// depthwise loads walk channels fastest, else pixels fastest (NCHW rows).
// Dtypes: float32, float64, float16, bfloat16 (float accumulation; double
// for float64). Deterministic.
#include "pool_depthwise.h"
#include "conv2d_common.cuh"

namespace cnnops {
namespace cuda {
namespace detail {
namespace {

constexpr int kNT = 256, kTPIX = 64, kTK = 128, kCC = 16;
constexpr int kTM = kTPIX / 16, kTN = kTK / 16;  // per-thread pixels x channels
static_assert(kCC * kTPIX % kNT == 0 && kCC * kTK % kNT == 0, "tile not divisible by threads");

__device__ __forceinline__ void divmod(int64_t a, int64_t b, int64_t& q, int64_t& r) {
  q = div_nonneg(a, b);
  r = a - q * b;
}

template <typename T, bool XCL>
__global__ void __launch_bounds__(kNT) separable_fused_kernel(const SeparableParams p) {
  using Acc = acc_t<T>;
  __shared__ Acc zs[kCC][kTPIX + 1];  // +1: channel-fastest stores hit distinct banks
  __shared__ Acc ws_[kCC][kTK + 1];   // pointwise weights, [j][k]
  __shared__ int64_t xoff[kTPIX], yoff[kTPIX], hs[kTPIX], wsh[kTPIX];
  __shared__ bool pvalid[kTPIX];

  const T* __restrict__ x = static_cast<const T*>(p.x);
  const T* __restrict__ dw = static_cast<const T*>(p.dw);
  const T* __restrict__ pw = static_cast<const T*>(p.pw);
  const T* __restrict__ bias = static_cast<const T*>(p.bias);
  T* __restrict__ y = static_cast<T*>(p.y);
  const int tid = threadIdx.x, tp = tid % 16, tk = tid / 16;
  const int64_t Cm = p.C * p.M, npix = p.N * p.P * p.Q;
  const int64_t pix0 = static_cast<int64_t>(blockIdx.x) * kTPIX;

  if (tid < kTPIX) {
    const int64_t g = pix0 + tid;
    const bool v = g < npix;
    int64_t n = 0, pp = 0, q = 0;
    if (v) {
      int64_t t;
      divmod(g, p.Q, t, q);
      divmod(t, p.P, n, pp);
    }
    pvalid[tid] = v;
    xoff[tid] = n * p.x_strides[0];
    yoff[tid] = n * p.y_strides[0] + pp * p.y_strides[2] + q * p.y_strides[3];
    hs[tid] = pp * p.stride_h - p.pad_h;
    wsh[tid] = q * p.stride_w - p.pad_w;
  }
  __syncthreads();

  const int64_t ktiles = ceil_div(p.K, kTK);
  for (int64_t kt = blockIdx.y; kt < ktiles; kt += gridDim.y) {
    const int64_t k0 = kt * kTK;
    Acc acc[kTM][kTN];
#pragma unroll
    for (int i = 0; i < kTM; ++i)
#pragma unroll
      for (int j = 0; j < kTN; ++j) acc[i][j] = Acc(0);

    for (int64_t c0 = 0; c0 < Cm; c0 += kCC) {
      // Depthwise tile z[cc][pix] for intermediate channels c0 .. c0 + kCC.
#pragma unroll
      for (int e = 0; e < kCC * kTPIX / kNT; ++e) {
        const int idx = tid + e * kNT;
        const int cc = XCL ? idx % kCC : idx / kTPIX;
        const int pix = XCL ? idx / kCC : idx % kTPIX;
        const int64_t j = c0 + cc;
        Acc v = Acc(0);
        if (j < Cm && pvalid[pix]) {
          const int64_t c = div_nonneg(j, p.M);
          const T* xp = x + xoff[pix] + c * p.x_strides[1];
          const T* wj = dw + j * p.dw_strides[0];
          const int64_t h0 = hs[pix], w0 = wsh[pix];
          for (int64_t r = 0; r < p.R; ++r) {
            const int64_t h = h0 + r * p.dil_h;
            if (h < 0 || h >= p.H) continue;
            const T* xr = xp + h * p.x_strides[2];
            const T* wr = wj + r * p.dw_strides[2];
            for (int64_t s = 0; s < p.S; ++s) {
              const int64_t w = w0 + s * p.dil_w;
              if (w < 0 || w >= p.W) continue;
              v = fma(to_acc(xr[w * p.x_strides[3]]), to_acc(wr[s * p.dw_strides[3]]), v);
            }
          }
        }
        zs[cc][pix] = v;
      }
      // Pointwise weights pw[k0 + kk, c0 + cc] (j fastest: contiguous in (K, C*M, 1, 1)).
#pragma unroll
      for (int e = 0; e < kCC * kTK / kNT; ++e) {
        const int idx = tid + e * kNT;
        const int cc = idx % kCC, kk = idx / kCC;
        const int64_t k = k0 + kk, j = c0 + cc;
        ws_[cc][kk] = (k < p.K && j < Cm) ? to_acc(pw[k * p.pw_strides[0] + j * p.pw_strides[1]])
                                          : Acc(0);
      }
      __syncthreads();
#pragma unroll
      for (int cc = 0; cc < kCC; ++cc) {
        Acc a[kTM], b[kTN];
#pragma unroll
        for (int i = 0; i < kTM; ++i) a[i] = zs[cc][tp + 16 * i];
#pragma unroll
        for (int j = 0; j < kTN; ++j) b[j] = ws_[cc][tk + 16 * j];
#pragma unroll
        for (int i = 0; i < kTM; ++i)
#pragma unroll
          for (int j = 0; j < kTN; ++j) acc[i][j] = fma(a[i], b[j], acc[i][j]);
      }
      __syncthreads();  // zs / ws_ are rewritten by the next chunk
    }

#pragma unroll
    for (int i = 0; i < kTM; ++i) {
      const int pix = tp + 16 * i;
      if (!pvalid[pix]) continue;
#pragma unroll
      for (int j = 0; j < kTN; ++j) {
        const int64_t k = k0 + tk + 16 * j;
        if (k >= p.K) continue;
        const Acc v = bias ? acc[i][j] + to_acc(bias[k]) : acc[i][j];
        y[yoff[pix] + k * p.y_strides[1]] = from_acc<T>(v);
      }
    }
  }
}

template <typename T>
cudaError_t launch(const SeparableParams& p, cudaStream_t stream) {
  const int64_t npix = p.N * p.P * p.Q;
  if (npix == 0 || p.K == 0) return cudaSuccess;
  const int64_t ptiles = ceil_div(npix, kTPIX), ktiles = ceil_div(p.K, kTK);
  if (ptiles > kMaxGridX) return cudaErrorInvalidConfiguration;
  const dim3 grid(static_cast<unsigned>(ptiles), static_cast<unsigned>(min64(ktiles, kMaxGridYZ)));
  const bool xcl = p.C > 1 && p.x_strides[1] == 1;
  if (xcl) separable_fused_kernel<T, true><<<grid, kNT, 0, stream>>>(p);
  else separable_fused_kernel<T, false><<<grid, kNT, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace
}  // namespace detail

cudaError_t separable_fused_fprop(const SeparableParams& p, cudaStream_t stream) {
  if (p.N < 0 || p.C <= 0 || p.M <= 0 || p.K < 0 || p.H <= 0 || p.W <= 0 || p.R <= 0 ||
      p.S <= 0 || p.P < 0 || p.Q < 0 || p.stride_h <= 0 || p.stride_w <= 0 || p.dil_h <= 0 ||
      p.dil_w <= 0 || p.pad_h < 0 || p.pad_w < 0)
    return cudaErrorInvalidValue;
  switch (p.dtype) {
    case DType::Float32: return detail::launch<float>(p, stream);
    case DType::Float64: return detail::launch<double>(p, stream);
    case DType::Float16: return detail::launch<__half>(p, stream);
    case DType::BFloat16: return detail::launch<__nv_bfloat16>(p, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace cuda
}  // namespace cnnops
