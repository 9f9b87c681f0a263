// Forward convolution (fprop) as an implicit GEMM, one per group g:
//   M = N*P*Q output pixels, Ngemm = K/G output channels, Kred = C/G*R*S.
//   A[m, kk] = x[n, g*C/G + c, p*stride_h - pad_h + r*dil_h, q*stride_w - pad_w + s*dil_w]
//   B[kk, k] = w[g*K/G + k, c, r, s]
// Parallelisation: one thread block per BM x BN tile of y (grid x = pixel
// tiles, y = channel tiles, z = groups; y and z loop when above 65535); the
// reduction runs inside the block (see gemm_mainloop). Layouts: any strides;
// for channels_last x (channel stride < width stride) the reduction runs
// channel-fastest, (r, s, c), so gathers along k are contiguous, otherwise
// (c, r, s) with gathers along the pixel dimension. Dtypes: float32 and
// float64 by FMA, float16 / bfloat16 by mma.sync tensor cores (sm_80+),
// accumulating in float (double for float64).
#include "conv2d_cuda.h"
#include "conv2d_gemm.cuh"

namespace cnnops {
namespace cuda {
namespace detail {
namespace {

// Per-row (output pixel) and per-k (c, r, s) lookups of one tile.
template <int BM, int BK>
struct FpropTables {
  int64_t xb[BM];       // n*xs0 + g*Cg*xs1
  int64_t h0[BM];       // p*stride_h - pad_h
  int64_t w0[BM];       // q*stride_w - pad_w
  int64_t yb[BM];       // n*ys0 + p*ys2 + q*ys3
  int64_t xoff[2][BK];  // c*xs1
  int64_t rh[2][BK];    // r*dil_h
  int64_t sw[2][BK];    // s*dil_w
  int64_t woff[2][BK];  // c*ws1 + r*ws2 + s*ws3
  bool ok[2][BK];       // kk < Kred
};

template <typename T, typename Policy>
__global__ void __launch_bounds__(Policy::NT) conv2d_fprop_kernel(const ConvGemmArgs a) {
  constexpr int BM = Policy::BM, BN = Policy::BN, BK = Policy::BK, NT = Policy::NT;
  using Acc = typename Policy::Acc;
  __shared__ __align__(16) typename Policy::Smem sm;
  __shared__ FpropTables<BM, BK> tab;

  const Conv2dParams& p = a.p;
  const T* __restrict__ x = static_cast<const T*>(p.x);
  const T* __restrict__ w = static_cast<const T*>(p.w);
  const T* __restrict__ bias = static_cast<const T*>(p.bias);
  T* __restrict__ y = static_cast<T*>(p.y);
  const int tid = threadIdx.x;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM;

  for (int64_t g = blockIdx.z; g < a.zcount; g += gridDim.z) {
    for (int64_t nt = blockIdx.y; nt < a.ntiles; nt += gridDim.y) {
      const int64_t n0 = nt * BN;
      __syncthreads();  // previous tile's epilogue is done with the row table
      for (int i = tid; i < BM; i += NT) {
        const int64_t m = m0 + i;
        int64_t xb = 0, h0 = 0, w0 = 0, yb = 0;
        if (m < a.M) {
          const int64_t q = m % p.Q, t = m / p.Q;
          const int64_t pp = t % p.P, n = t / p.P;
          xb = n * p.x_strides[0] + g * a.Cg * p.x_strides[1];
          h0 = pp * p.stride_h - p.pad_h;
          w0 = q * p.stride_w - p.pad_w;
          yb = n * p.y_strides[0] + pp * p.y_strides[2] + q * p.y_strides[3];
        }
        tab.xb[i] = xb;
        tab.h0[i] = h0;
        tab.w0[i] = w0;
        tab.yb[i] = yb;
      }
      __syncthreads();

      auto build_k = [&](int buf, int64_t kbase) {
        if (tid < BK) {
          const int64_t kk = kbase + tid;
          const bool ok = kk < a.Kred;
          int64_t c = 0, r = 0, s = 0;
          if (ok) {
            if (a.chan_inner) {  // kk = (r*S + s)*Cg + c
              c = kk % a.Cg;
              const int64_t t = kk / a.Cg;
              s = t % p.S;
              r = t / p.S;
            } else {  // kk = (c*R + r)*S + s
              s = kk % p.S;
              const int64_t t = kk / p.S;
              r = t % p.R;
              c = t / p.R;
            }
          }
          tab.ok[buf][tid] = ok;
          tab.xoff[buf][tid] = c * p.x_strides[1];
          tab.rh[buf][tid] = r * p.dil_h;
          tab.sw[buf][tid] = s * p.dil_w;
          tab.woff[buf][tid] = c * p.w_strides[1] + r * p.w_strides[2] + s * p.w_strides[3];
        }
      };
      auto load_a = [&](int i, int j, int buf) -> T {
        if (m0 + i < a.M && tab.ok[buf][j]) {
          const int64_t ih = tab.h0[i] + tab.rh[buf][j];
          const int64_t iw = tab.w0[i] + tab.sw[buf][j];
          if (ih >= 0 && ih < p.H && iw >= 0 && iw < p.W)
            return x[tab.xb[i] + tab.xoff[buf][j] + ih * p.x_strides[2] + iw * p.x_strides[3]];
        }
        return zero_val<T>();
      };
      auto load_b = [&](int j, int nl, int buf) -> T {
        const int64_t k = n0 + nl;
        if (k < a.Ngemm && tab.ok[buf][j]) return w[(g * a.Kg + k) * p.w_strides[0] + tab.woff[buf][j]];
        return zero_val<T>();
      };

      Policy pol;
      pol.zero();
      gemm_mainloop(pol, sm, 0, a.Kred, a.a_kfast, a.b_kfast, build_k, load_a, load_b);

      pol.epilogue([&](int i, int nl, Acc v) {
        const int64_t k = n0 + nl;
        if (m0 + i < a.M && k < a.Ngemm) {
          const int64_t kg = g * a.Kg + k;
          if (bias != nullptr) v += to_acc(bias[kg]);
          y[tab.yb[i] + kg * p.y_strides[1]] = from_acc<T>(v);
        }
      });
    }
  }
}

template <typename T>
cudaError_t launch_fprop(const Conv2dParams& p, cudaStream_t stream) {
  using Policy = typename DefaultPolicy<T>::type;
  ConvGemmArgs a{};
  a.p = p;
  a.Cg = p.C / p.groups;
  a.Kg = p.K / p.groups;
  a.M = p.N * p.P * p.Q;
  a.Ngemm = a.Kg;
  a.Kred = a.Cg * p.R * p.S;
  a.ntiles = ceil_div(a.Ngemm, Policy::BN);
  a.zcount = p.groups;
  a.splits = 1;
  a.split_len = a.Kred;
  a.workspace = nullptr;
  a.chan_inner = channel_inner(p.x_strides);
  a.a_kfast = a.chan_inner;  // NCHW: pixels contiguous; channels_last: channels
  a.b_kfast = true;          // weights are small and L2-resident; walk (c, r, s)
  dim3 grid;
  cudaError_t err = gemm_grid(ceil_div(a.M, Policy::BM), a.ntiles, a.zcount, &grid);
  if (err != cudaSuccess) return err;
  conv2d_fprop_kernel<T, Policy><<<grid, Policy::NT, 0, stream>>>(a);
  return cudaGetLastError();
}

}  // namespace
}  // namespace detail

cudaError_t conv2d_fprop(const Conv2dParams& p, cudaStream_t stream) {
  if (p.N == 0 || p.K == 0 || p.P <= 0 || p.Q <= 0) return cudaSuccess;  // y is empty
  if (p.groups <= 0 || p.C % p.groups != 0 || p.K % p.groups != 0) return cudaErrorInvalidValue;
  return detail::with_dtype(p.dtype, cudaErrorInvalidValue, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const cudaError_t err = detail::check_mma_supported<T>();
    return err != cudaSuccess ? err : detail::launch_fprop<T>(p, stream);
  });
}

}  // namespace cuda
}  // namespace cnnops
