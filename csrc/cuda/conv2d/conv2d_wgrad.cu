// Weight gradient (wgrad) as an implicit GEMM, one per group g:
//   M = K/G output channels, Ngemm = C/G*R*S filter taps, Kred = N*P*Q pixels.
//   A[k, kk]  = y[n, g*K/G + k, p, q]
//   B[kk, j]  = x[n, g*C/G + c, p*stride_h - pad_h + r*dil_h, q*stride_w - pad_w + s*dil_w]
// Parallelisation: grid x = channel tiles, y = tap tiles, z = groups x splits
// (y and z loop when above 65535). The long pixel reduction is split into
// `splits` contiguous ranges of whole k-tiles; with one split the tile kernel
// writes w directly, otherwise each split writes float (double) partials to
// the workspace and a second kernel sums them in split order, so the result is
// deterministic (no atomics). Layouts: any strides; for channels_last x the
// taps are ordered (r, s, c) so gathers along the tap dimension are
// contiguous. Dtypes: float32 / float64 by FMA, float16 / bfloat16 by
// mma.sync (sm_80+); partials and the final sum in float (double).
#include "conv2d_cuda.h"
#include "conv2d_gemm.cuh"

namespace cnnops {
namespace cuda {
namespace detail {
namespace {

template <int BN, int BK>
struct WgradTables {
  int64_t xoff[BN];     // (g*Cg + c)*xs1
  int64_t rh[BN];       // r*dil_h
  int64_t sw[BN];       // s*dil_w
  int64_t woff[BN];     // c*ws1 + r*ws2 + s*ws3
  int64_t wlin[BN];     // (c*R + r)*S + s: index within one output channel's filter
  int64_t yoff[2][BK];  // n*ys0 + p*ys2 + q*ys3
  int64_t xb[2][BK];    // n*xs0
  int64_t h0[2][BK];    // p*stride_h - pad_h
  int64_t w0[2][BK];    // q*stride_w - pad_w
  bool ok[2][BK];       // kk < end of this split
};

template <typename T, typename Policy>
__global__ void __launch_bounds__(Policy::NT) conv2d_wgrad_kernel(const ConvGemmArgs a) {
  constexpr int BM = Policy::BM, BN = Policy::BN, BK = Policy::BK, NT = Policy::NT;
  using Acc = typename Policy::Acc;
  __shared__ __align__(16) typename Policy::Smem sm;
  __shared__ WgradTables<BN, BK> tab;

  const Conv2dParams& p = a.p;
  const T* __restrict__ x = static_cast<const T*>(p.x);
  const T* __restrict__ dy = static_cast<const T*>(p.y);
  T* __restrict__ dw = static_cast<T*>(p.w);
  Acc* __restrict__ partial = static_cast<Acc*>(a.workspace);
  const int tid = threadIdx.x;
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM;
  const int64_t filter = a.Ngemm;  // C/G*R*S

  for (int64_t z = blockIdx.z; z < a.zcount; z += gridDim.z) {
    const int64_t g = z % p.groups, split = z / p.groups;
    const int64_t kbeg = split * a.split_len;
    const int64_t kend = min64(kbeg + a.split_len, a.Kred);
    for (int64_t nt = blockIdx.y; nt < a.ntiles; nt += gridDim.y) {
      const int64_t n0 = nt * BN;
      __syncthreads();  // previous tile's epilogue is done with the column table
      for (int j = tid; j < BN; j += NT) {
        const int64_t col = n0 + j;
        int64_t c = 0, r = 0, s = 0;
        if (col < a.Ngemm) {
          if (a.chan_inner) {  // col = (r*S + s)*Cg + c
            c = col % a.Cg;
            const int64_t t = col / a.Cg;
            s = t % p.S;
            r = t / p.S;
          } else {  // col = (c*R + r)*S + s
            s = col % p.S;
            const int64_t t = col / p.S;
            r = t % p.R;
            c = t / p.R;
          }
        }
        tab.xoff[j] = (g * a.Cg + c) * p.x_strides[1];
        tab.rh[j] = r * p.dil_h;
        tab.sw[j] = s * p.dil_w;
        tab.woff[j] = c * p.w_strides[1] + r * p.w_strides[2] + s * p.w_strides[3];
        tab.wlin[j] = (c * p.R + r) * p.S + s;
      }
      __syncthreads();

      auto build_k = [&](int buf, int64_t kbase) {
        if (tid < BK) {
          const int64_t kk = kbase + tid;
          const bool ok = kk < kend;
          int64_t n = 0, pp = 0, q = 0;
          if (ok) {  // kk = (n*P + p)*Q + q
            q = kk % p.Q;
            const int64_t t = kk / p.Q;
            pp = t % p.P;
            n = t / p.P;
          }
          tab.ok[buf][tid] = ok;
          tab.yoff[buf][tid] = n * p.y_strides[0] + pp * p.y_strides[2] + q * p.y_strides[3];
          tab.xb[buf][tid] = n * p.x_strides[0];
          tab.h0[buf][tid] = pp * p.stride_h - p.pad_h;
          tab.w0[buf][tid] = q * p.stride_w - p.pad_w;
        }
      };
      auto load_a = [&](int i, int j, int buf) -> T {
        const int64_t k = m0 + i;
        if (k < a.M && tab.ok[buf][j]) return dy[(g * a.Kg + k) * p.y_strides[1] + tab.yoff[buf][j]];
        return zero_val<T>();
      };
      auto load_b = [&](int j, int nl, int buf) -> T {
        if (n0 + nl < a.Ngemm && tab.ok[buf][j]) {
          const int64_t ih = tab.h0[buf][j] + tab.rh[nl];
          const int64_t iw = tab.w0[buf][j] + tab.sw[nl];
          if (ih >= 0 && ih < p.H && iw >= 0 && iw < p.W)
            return x[tab.xb[buf][j] + tab.xoff[nl] + ih * p.x_strides[2] + iw * p.x_strides[3]];
        }
        return zero_val<T>();
      };

      Policy pol;
      pol.zero();
      gemm_mainloop(pol, sm, kbeg, kend, a.a_kfast, a.b_kfast, build_k, load_a, load_b);

      pol.epilogue([&](int i, int nl, Acc v) {
        const int64_t k = m0 + i;
        if (k < a.M && n0 + nl < a.Ngemm) {
          const int64_t kg = g * a.Kg + k;
          if (a.splits == 1) dw[kg * p.w_strides[0] + tab.woff[nl]] = from_acc<T>(v);
          else partial[(split * p.K + kg) * filter + tab.wlin[nl]] = v;
        }
      });
    }
  }
}

// w[e] = sum over splits, in split order, of partial[split][e]; e runs over
// K x (C/G*R*S) in (k, c, r, s) order.
template <typename T>
__global__ void conv2d_wgrad_reduce_kernel(const acc_t<T>* __restrict__ partial, int64_t splits,
                                           const Conv2dParams p, int64_t Cg) {
  T* __restrict__ dw = static_cast<T*>(p.w);
  const int64_t total = p.K * Cg * p.R * p.S;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
    acc_t<T> sum = 0;
    for (int64_t sp = 0; sp < splits; ++sp) sum += partial[sp * total + e];
    const int64_t s = e % p.S, t1 = e / p.S;
    const int64_t r = t1 % p.R, t2 = t1 / p.R;
    const int64_t c = t2 % Cg, k = t2 / Cg;
    dw[k * p.w_strides[0] + c * p.w_strides[1] + r * p.w_strides[2] + s * p.w_strides[3]] = from_acc<T>(sum);
  }
}

struct WgradPlan {
  int64_t splits;     // number of reduction ranges
  int64_t split_len;  // pixels per range, a multiple of the k-tile
  size_t workspace_bytes;
};

// Deterministic in p alone (no device query), so the workspace size the glue
// allocates always matches what the launch uses.
template <typename Policy>
WgradPlan plan_wgrad(const Conv2dParams& p) {
  constexpr int64_t kTargetBlocks = 264;               // ~2 waves of 132 SMs
  constexpr int64_t kMinTilesPerSplit = 8;             // keep each split's loop worthwhile
  constexpr int64_t kMaxWorkspace = int64_t(1) << 28;  // bytes
  const int64_t Kg = p.K / p.groups, filter = (p.C / p.groups) * p.R * p.S;
  const int64_t ktiles = ceil_div(p.N * p.P * p.Q, Policy::BK);
  const int64_t blocks = ceil_div(Kg, Policy::BM) * ceil_div(filter, Policy::BN) * p.groups;
  const int64_t out_bytes = p.K * filter * static_cast<int64_t>(sizeof(typename Policy::Acc));
  int64_t splits = ceil_div(kTargetBlocks, max64(blocks, 1));
  splits = min64(splits, max64(ktiles / kMinTilesPerSplit, 1));
  splits = min64(splits, max64(kMaxWorkspace / max64(out_bytes, 1), 1));
  splits = max64(splits, 1);
  const int64_t tiles_per_split = ceil_div(max64(ktiles, 1), splits);
  WgradPlan plan;
  plan.split_len = tiles_per_split * Policy::BK;
  plan.splits = max64(ceil_div(ktiles, tiles_per_split), 1);  // every split non-empty
  plan.workspace_bytes = plan.splits > 1 ? static_cast<size_t>(plan.splits * out_bytes) : 0;
  return plan;
}

template <typename T>
size_t wgrad_workspace_bytes(const Conv2dParams& p) {
  return plan_wgrad<typename DefaultPolicy<T>::type>(p).workspace_bytes;
}

template <typename T>
cudaError_t launch_wgrad(const Conv2dParams& p, void* workspace, cudaStream_t stream) {
  using Policy = typename DefaultPolicy<T>::type;
  const WgradPlan plan = plan_wgrad<Policy>(p);
  if (plan.splits > 1 && workspace == nullptr) return cudaErrorInvalidValue;
  ConvGemmArgs a{};
  a.p = p;
  a.Cg = p.C / p.groups;
  a.Kg = p.K / p.groups;
  a.M = a.Kg;
  a.Ngemm = a.Cg * p.R * p.S;
  a.Kred = p.N * p.P * p.Q;
  a.ntiles = ceil_div(a.Ngemm, Policy::BN);
  a.zcount = p.groups * plan.splits;
  a.splits = plan.splits;
  a.split_len = plan.split_len;
  a.workspace = workspace;
  a.chan_inner = channel_inner(p.x_strides);
  a.a_kfast = !channel_inner(p.y_strides);  // NCHW dy: pixels contiguous
  a.b_kfast = !a.chan_inner;                // NCHW x: pixels contiguous
  dim3 grid;
  cudaError_t err = gemm_grid(ceil_div(a.M, Policy::BM), a.ntiles, a.zcount, &grid);
  if (err != cudaSuccess) return err;
  conv2d_wgrad_kernel<T, Policy><<<grid, Policy::NT, 0, stream>>>(a);
  if (plan.splits > 1) {
    err = cudaGetLastError();
    if (err != cudaSuccess) return err;
    const int64_t total = p.K * a.Ngemm;
    const int threads = 256;
    const int64_t blocks = min64(ceil_div(total, threads), int64_t(1) << 20);
    conv2d_wgrad_reduce_kernel<T><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(
        static_cast<const acc_t<T>*>(workspace), plan.splits, p, a.Cg);
  }
  return cudaGetLastError();
}

}  // namespace
}  // namespace detail

static bool wgrad_empty(const Conv2dParams& p) {
  return p.K == 0 || p.C == 0 || p.R <= 0 || p.S <= 0;  // w has no elements
}

size_t conv2d_wgrad_workspace_bytes(const Conv2dParams& p) {
  if (wgrad_empty(p) || p.groups <= 0) return 0;
  return detail::with_dtype(p.dtype, size_t(0), [&](auto tag) {
    return detail::wgrad_workspace_bytes<typename decltype(tag)::type>(p);
  });
}

// N == 0 (or an empty output plane) still launches: dw must be written as zeros.
cudaError_t conv2d_wgrad(const Conv2dParams& p, void* workspace, cudaStream_t stream) {
  if (wgrad_empty(p)) return cudaSuccess;
  if (p.groups <= 0 || p.C % p.groups != 0 || p.K % p.groups != 0) return cudaErrorInvalidValue;
  if (p.N < 0 || p.P < 0 || p.Q < 0) return cudaErrorInvalidValue;
  return detail::with_dtype(p.dtype, cudaErrorInvalidValue, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const cudaError_t err = detail::check_mma_supported<T>();
    return err != cudaSuccess ? err : detail::launch_wgrad<T>(p, workspace, stream);
  });
}

}  // namespace cuda
}  // namespace cnnops
