// Data gradient (dgrad; also conv_transpose2d forward) as an implicit GEMM in
// gather form, one per group g:
//   M = N*H*W input pixels, Ngemm = C/G input channels, Kred = K/G*R*S.
//   A[m, kk] = y[n, g*K/G + k, p, q]  where p*stride_h - pad_h + r*dil_h == h and
//              q*stride_w - pad_w + s*dil_w == w (zero when no such 0 <= p < P, 0 <= q < Q)
//   B[kk, c] = w[g*K/G + k, c, r, s]
// Each block owns a BM x BN tile of x and writes all of it (bias or zero where
// nothing contributes), so there are no atomics and no pre-zeroing.
// Parallelisation: grid x = pixel tiles, y = channel tiles, z = groups (y and
// z loop when above 65535); the reduction runs inside the block. Layouts: any
// strides; for channels_last y the reduction runs (r, s, k) so gathers along
// k are contiguous, otherwise (k, r, s) with gathers along pixels. Dtypes:
// float32 / float64 by FMA, float16 / bfloat16 by mma.sync (sm_80+).
#include "conv2d_cuda.h"
#include "conv2d_gemm.cuh"

namespace cnnops {
namespace cuda {
namespace detail {
namespace {

template <int BM, int BK>
struct DgradTables {
  int64_t yb[BM];       // n*ys0 + g*Kg*ys1
  int64_t th[BM];       // h + pad_h
  int64_t tw[BM];       // w + pad_w
  int64_t xb[BM];       // n*xs0 + h*xs2 + w*xs3
  int64_t yoff[2][BK];  // k*ys1
  int64_t rh[2][BK];    // r*dil_h
  int64_t sw[2][BK];    // s*dil_w
  int64_t woff[2][BK];  // (g*Kg + k)*ws0 + r*ws2 + s*ws3
  bool ok[2][BK];       // kk < Kred
};

// t = i*stride + 0 for some 0 <= i < limit? Returns i, or -1.
__device__ __forceinline__ int64_t exact_tap(int64_t t, int64_t stride, int64_t limit) {
  if (t < 0) return -1;
  int64_t i = t;
  if (stride != 1) {
    i = div_nonneg(t, stride);
    if (i * stride != t) return -1;
  }
  return i < limit ? i : -1;
}

template <typename T, typename Policy>
__global__ void __launch_bounds__(Policy::NT) conv2d_dgrad_kernel(const ConvGemmArgs a) {
  constexpr int BM = Policy::BM, BN = Policy::BN, BK = Policy::BK, NT = Policy::NT;
  using Acc = typename Policy::Acc;
  __shared__ __align__(16) typename Policy::Smem sm;
  __shared__ DgradTables<BM, BK> tab;

  const Conv2dParams& p = a.p;
  const T* __restrict__ dy = static_cast<const T*>(p.y);
  const T* __restrict__ w = static_cast<const T*>(p.w);
  const T* __restrict__ bias = static_cast<const T*>(p.bias);
  T* __restrict__ dx = static_cast<T*>(p.x);
  const int tid = threadIdx.x;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM;

  for (int64_t g = blockIdx.z; g < a.zcount; g += gridDim.z) {
    for (int64_t nt = blockIdx.y; nt < a.ntiles; nt += gridDim.y) {
      const int64_t n0 = nt * BN;
      __syncthreads();  // previous tile's epilogue is done with the row table
      for (int i = tid; i < BM; i += NT) {
        const int64_t m = m0 + i;
        int64_t yb = 0, th = 0, tw = 0, xb = 0;
        if (m < a.M) {
          const int64_t wi = m % p.W, t = m / p.W;
          const int64_t hi = t % p.H, n = t / p.H;
          yb = n * p.y_strides[0] + g * a.Kg * p.y_strides[1];
          th = hi + p.pad_h;
          tw = wi + p.pad_w;
          xb = n * p.x_strides[0] + hi * p.x_strides[2] + wi * p.x_strides[3];
        }
        tab.yb[i] = yb;
        tab.th[i] = th;
        tab.tw[i] = tw;
        tab.xb[i] = xb;
      }
      __syncthreads();

      auto build_k = [&](int buf, int64_t kbase) {
        if (tid < BK) {
          const int64_t kk = kbase + tid;
          const bool ok = kk < a.Kred;
          int64_t k = 0, r = 0, s = 0;
          if (ok) {
            if (a.chan_inner) {  // kk = (r*S + s)*Kg + k
              k = kk % a.Kg;
              const int64_t t = kk / a.Kg;
              s = t % p.S;
              r = t / p.S;
            } else {  // kk = (k*R + r)*S + s
              s = kk % p.S;
              const int64_t t = kk / p.S;
              r = t % p.R;
              k = t / p.R;
            }
          }
          tab.ok[buf][tid] = ok;
          tab.yoff[buf][tid] = k * p.y_strides[1];
          tab.rh[buf][tid] = r * p.dil_h;
          tab.sw[buf][tid] = s * p.dil_w;
          tab.woff[buf][tid] = (g * a.Kg + k) * p.w_strides[0] + r * p.w_strides[2] + s * p.w_strides[3];
        }
      };
      auto load_a = [&](int i, int j, int buf) -> T {
        if (m0 + i < a.M && tab.ok[buf][j]) {
          const int64_t pp = exact_tap(tab.th[i] - tab.rh[buf][j], p.stride_h, p.P);
          const int64_t qq = exact_tap(tab.tw[i] - tab.sw[buf][j], p.stride_w, p.Q);
          if (pp >= 0 && qq >= 0)
            return dy[tab.yb[i] + tab.yoff[buf][j] + pp * p.y_strides[2] + qq * p.y_strides[3]];
        }
        return zero_val<T>();
      };
      auto load_b = [&](int j, int nl, int buf) -> T {
        const int64_t c = n0 + nl;
        if (c < a.Ngemm && tab.ok[buf][j]) return w[tab.woff[buf][j] + c * p.w_strides[1]];
        return zero_val<T>();
      };

      Policy pol;
      pol.zero();
      gemm_mainloop(pol, sm, 0, a.Kred, a.a_kfast, a.b_kfast, build_k, load_a, load_b);

      pol.epilogue([&](int i, int nl, Acc v) {
        const int64_t c = n0 + nl;
        if (m0 + i < a.M && c < a.Ngemm) {
          const int64_t cg = g * a.Cg + c;
          if (bias != nullptr) v += to_acc(bias[cg]);
          dx[tab.xb[i] + cg * p.x_strides[1]] = from_acc<T>(v);
        }
      });
    }
  }
}

template <typename T>
cudaError_t launch_dgrad(const Conv2dParams& p, cudaStream_t stream) {
  using Policy = typename DefaultPolicy<T>::type;
  ConvGemmArgs a{};
  a.p = p;
  a.Cg = p.C / p.groups;
  a.Kg = p.K / p.groups;
  a.M = p.N * p.H * p.W;
  a.Ngemm = a.Cg;
  a.Kred = a.Kg * p.R * p.S;
  a.ntiles = ceil_div(a.Ngemm, Policy::BN);
  a.zcount = p.groups;
  a.splits = 1;
  a.split_len = a.Kred;
  a.workspace = nullptr;
  a.chan_inner = channel_inner(p.y_strides);
  a.a_kfast = a.chan_inner;
  a.b_kfast = true;
  dim3 grid;
  cudaError_t err = gemm_grid(ceil_div(a.M, Policy::BM), a.ntiles, a.zcount, &grid);
  if (err != cudaSuccess) return err;
  conv2d_dgrad_kernel<T, Policy><<<grid, Policy::NT, 0, stream>>>(a);
  return cudaGetLastError();
}

}  // namespace
}  // namespace detail

cudaError_t conv2d_dgrad(const Conv2dParams& p, cudaStream_t stream) {
  if (p.N == 0 || p.C == 0 || p.H <= 0 || p.W <= 0) return cudaSuccess;  // x is empty
  if (p.groups <= 0 || p.C % p.groups != 0 || p.K % p.groups != 0) return cudaErrorInvalidValue;
  if (p.stride_h <= 0 || p.stride_w <= 0) return cudaErrorInvalidValue;
  return detail::with_dtype(p.dtype, cudaErrorInvalidValue, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const cudaError_t err = detail::check_mma_supported<T>();
    return err != cudaSuccess ? err : detail::launch_dgrad<T>(p, stream);
  });
}

}  // namespace cuda
}  // namespace cnnops
