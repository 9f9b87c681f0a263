// Shared pieces of the CUDA convolution kernels (conv2d_fprop/dgrad/wgrad.cu):
// the two compute policies (register-blocked FMA for float/double, mma.sync tensor
// cores for half/bfloat16) and the implicit-GEMM main loop that drives them.
//
// Every conv kernel is one GEMM  C[M x Ngemm] = A[M x Kred] * B[Kred x Ngemm]
// per group, where A and B are never materialised: the op supplies
//   build_k(buf, kbase)  fill its per-k-tile lookup table (threads < BK),
//   load_a(m, k, buf)    element A[m0 + m, kbase + k] (zero when out of range),
//   load_b(k, n, buf)    element B[kbase + k, n0 + n] (zero when out of range),
// and the main loop stages BK-wide slices of A and B through registers into
// shared memory, one slice ahead of the compute. Index decomposition
// (pixel -> n, p, q; reduction index -> c, r, s) happens once per tile row or
// column in the op's shared-memory tables, never per element.
#pragma once

#include <cuda_runtime.h>
#include <cstdint>

#include "../../common/params.h"
#include "../common.cuh"

namespace cnnops {
namespace cuda {
namespace detail {

// ---------------------------------------------------------------------------
// Kernel arguments shared by fprop / dgrad / wgrad (passed by value)
// ---------------------------------------------------------------------------
struct ConvGemmArgs {
  Conv2dParams p;
  int64_t Cg, Kg;             // channels per group: input, output
  int64_t M, Ngemm, Kred;     // GEMM extents of one group
  int64_t ntiles;             // tiles along Ngemm (grid y, looped)
  int64_t zcount;             // groups * splits (grid z, looped)
  int64_t splits, split_len;  // wgrad split of the reduction; 1, Kred otherwise
  void* workspace;            // wgrad partials when splits > 1
  bool chan_inner;            // reduction/column order puts the channel fastest (r, s, c)
  bool a_kfast, b_kfast;      // consecutive threads walk k when loading A / B
};

// ---------------------------------------------------------------------------
// Compute policies
// ---------------------------------------------------------------------------

// Register-blocked FMA: NT = 256 threads as 16 x 16, each owning a
// (BM/16) x (BN/16) block of C split in two halves (rows tm*HM.. and
// BM/2 + tm*HM..) so that shared-memory reads of a warp are contiguous.
template <typename T, int BM_, int BN_, int BK_>
struct FmaPolicy {
  using Elem = T;
  using Acc = acc_t<T>;
  static constexpr int BM = BM_, BN = BN_, BK = BK_, NT = 256;
  static constexpr int TM = BM / 16, TN = BN / 16, HM = TM / 2, HN = TN / 2;
  static constexpr int PAD = 16 / sizeof(Acc);  // keeps rows 16-byte aligned
  static_assert(BM % 32 == 0 && BN % 32 == 0, "tile must split in two halves");

  struct Smem {
    Acc a[BK][BM + PAD];  // a[k][m]
    Acc b[BK][BN + PAD];  // b[k][n]
  };

  Acc acc[TM][TN];

  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) acc[i][j] = Acc(0);
  }
  __device__ __forceinline__ static void store_a(Smem& s, int m, int k, T v) { s.a[k][m] = to_acc(v); }
  __device__ __forceinline__ static void store_b(Smem& s, int k, int n, T v) { s.b[k][n] = to_acc(v); }
  __device__ __forceinline__ static int row(int i) {
    const int tm = threadIdx.x % 16;
    return i < HM ? tm * HM + i : BM / 2 + tm * HM + (i - HM);
  }
  __device__ __forceinline__ static int col(int j) {
    const int tn = threadIdx.x / 16;
    return j < HN ? tn * HN + j : BN / 2 + tn * HN + (j - HN);
  }
  __device__ __forceinline__ void compute(const Smem& s) {
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      Acc a[TM], b[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) a[i] = s.a[k][row(i)];
#pragma unroll
      for (int j = 0; j < TN; ++j) b[j] = s.b[k][col(j)];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fma(a[i], b[j], acc[i][j]);
    }
  }
  // f(row, col, value) for every accumulator of this thread.
  template <typename F>
  __device__ __forceinline__ void epilogue(F&& f) const {
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j) f(row(i), col(j), acc[i][j]);
  }
};

// mma.sync.m16n8k16 with f32 accumulate, for __half and __nv_bfloat16 (sm_80+).
template <typename T>
struct Mma16816;
template <>
struct Mma16816<__half> {
  __device__ __forceinline__ static void run(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();  // the launcher refuses half types below compute capability 8.0
#else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
  }
};
template <>
struct Mma16816<__nv_bfloat16> {
  __device__ __forceinline__ static void run(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();
#else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
  }
};

// Tensor cores: 128 x 128 x 16 block tile, 8 warps as 2 (M) x 4 (N), each warp
// 64 x 32 = 4 x 4 mma tiles of 16 x 8. Shared memory holds A as a[m][k] and B
// as b[n][k] (k contiguous) so every fragment register is one aligned 32-bit
// load of the pair (k, k+1); rows are padded to 24 elements (12 words), which
// makes the 8 rows x 4 pairs of one fragment load hit 32 distinct banks.
// (BK = 32 spills registers in wgrad; 16 does not.)
// Fragment layouts (PTX ISA, mma.m16n8k16, g = lane / 4, t = lane % 4):
//   A: a0 = (g, 2t..2t+1)  a1 = (g+8, 2t..)  a2 = (g, 2t+8..)  a3 = (g+8, 2t+8..)
//   B: b0 = (k 2t..2t+1, n g)  b1 = (k 2t+8..2t+9, n g)
//   C: c0, c1 = (g, 2t, 2t+1)  c2, c3 = (g+8, 2t, 2t+1)
template <typename T>
struct MmaPolicy {
  using Elem = T;
  using Acc = float;
  static constexpr int BM = 128, BN = 128, BK = 16, NT = 256;
  static constexpr int WM = 64, WN = 32, MI = WM / 16, NI = WN / 8, KPAD = 8;

  struct Smem {
    T a[BM][BK + KPAD];
    T b[BN][BK + KPAD];
  };

  float acc[MI][NI][4];

  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int i = 0; i < MI; ++i)
#pragma unroll
      for (int j = 0; j < NI; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;
  }
  __device__ __forceinline__ static void store_a(Smem& s, int m, int k, T v) { s.a[m][k] = v; }
  __device__ __forceinline__ static void store_b(Smem& s, int k, int n, T v) { s.b[n][k] = v; }
  __device__ __forceinline__ static uint32_t ld_pair(const T* ptr) {
    return *reinterpret_cast<const uint32_t*>(ptr);
  }
  __device__ __forceinline__ void compute(const Smem& s) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wm = (warp / 4) * WM, wn = (warp % 4) * WN;
    const int g = lane / 4, t = lane % 4;
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      uint32_t af[MI][4], bf[NI][2];
#pragma unroll
      for (int i = 0; i < MI; ++i) {
        const int r = wm + i * 16 + g;
        af[i][0] = ld_pair(&s.a[r][kk + 2 * t]);
        af[i][1] = ld_pair(&s.a[r + 8][kk + 2 * t]);
        af[i][2] = ld_pair(&s.a[r][kk + 2 * t + 8]);
        af[i][3] = ld_pair(&s.a[r + 8][kk + 2 * t + 8]);
      }
#pragma unroll
      for (int j = 0; j < NI; ++j) {
        const int c = wn + j * 8 + g;
        bf[j][0] = ld_pair(&s.b[c][kk + 2 * t]);
        bf[j][1] = ld_pair(&s.b[c][kk + 2 * t + 8]);
      }
#pragma unroll
      for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int j = 0; j < NI; ++j) Mma16816<T>::run(acc[i][j], af[i], bf[j]);
    }
  }
  template <typename F>
  __device__ __forceinline__ void epilogue(F&& f) const {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wm = (warp / 4) * WM, wn = (warp % 4) * WN;
    const int g = lane / 4, t = lane % 4;
#pragma unroll
    for (int i = 0; i < MI; ++i)
#pragma unroll
      for (int j = 0; j < NI; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          f(wm + i * 16 + g + (e >= 2 ? 8 : 0), wn + j * 8 + 2 * t + (e & 1), acc[i][j][e]);
  }
};

// Policy per element type. Float32 is true FP32 FMA (allow_tf32 is not used
// yet); Float64 FMA; the half types use tensor cores.
template <typename T>
struct DefaultPolicy;
template <>
struct DefaultPolicy<float> {
  using type = FmaPolicy<float, 128, 128, 16>;
};
template <>
struct DefaultPolicy<double> {
  using type = FmaPolicy<double, 64, 64, 16>;
};
template <>
struct DefaultPolicy<__half> {
  using type = MmaPolicy<__half>;
};
template <>
struct DefaultPolicy<__nv_bfloat16> {
  using type = MmaPolicy<__nv_bfloat16>;
};

// ---------------------------------------------------------------------------
// Implicit-GEMM main loop
// ---------------------------------------------------------------------------

// Accumulates A[:, kbeg:kend] * B[kbeg:kend, :] into pol. The next k-tile is
// read from global memory into registers while the current one is multiplied
// out of shared memory. The k-table is double-buffered: build_k for tile t+2
// rewrites the buffer that tile t was loaded with, which every thread has
// finished by the first barrier of iteration t. All threads of the block must
// call this (it contains barriers); the caller syncs before it when it has
// written tables that load_a / load_b read.
template <typename Policy, typename BuildK, typename LoadA, typename LoadB>
__device__ __forceinline__ void gemm_mainloop(Policy& pol, typename Policy::Smem& sm, int64_t kbeg,
                                              int64_t kend, bool a_kfast, bool b_kfast, const BuildK& build_k,
                                              const LoadA& load_a, const LoadB& load_b) {
  using T = typename Policy::Elem;
  constexpr int BM = Policy::BM, BN = Policy::BN, BK = Policy::BK, NT = Policy::NT;
  constexpr int EA = BM * BK / NT, EB = BK * BN / NT;
  static_assert(EA * NT == BM * BK && EB * NT == BK * BN, "tile not divisible by threads");
  static_assert(NT >= BK, "build_k uses one thread per k");
  const int tid = threadIdx.x;

  // Element e of a thread: walk k fastest (kfast) or m / n fastest, so that
  // consecutive threads read consecutive addresses for the operand's layout.
  auto coord_a = [&](int e, int& m, int& k) {
    const int idx = tid + e * NT;
    if (a_kfast) {
      k = idx % BK;
      m = idx / BK;
    } else {
      m = idx % BM;
      k = idx / BM;
    }
  };
  auto coord_b = [&](int e, int& k, int& n) {
    const int idx = tid + e * NT;
    if (b_kfast) {
      k = idx % BK;
      n = idx / BK;
    } else {
      n = idx % BN;
      k = idx / BN;
    }
  };

  T ra[EA], rb[EB];
  auto load_tile = [&](int buf) {
#pragma unroll
    for (int e = 0; e < EA; ++e) {
      int m, k;
      coord_a(e, m, k);
      ra[e] = load_a(m, k, buf);
    }
#pragma unroll
    for (int e = 0; e < EB; ++e) {
      int k, n;
      coord_b(e, k, n);
      rb[e] = load_b(k, n, buf);
    }
  };
  auto store_tile = [&]() {
#pragma unroll
    for (int e = 0; e < EA; ++e) {
      int m, k;
      coord_a(e, m, k);
      Policy::store_a(sm, m, k, ra[e]);
    }
#pragma unroll
    for (int e = 0; e < EB; ++e) {
      int k, n;
      coord_b(e, k, n);
      Policy::store_b(sm, k, n, rb[e]);
    }
  };

  const int64_t ntiles = kend > kbeg ? ceil_div(kend - kbeg, BK) : 0;
  if (ntiles == 0) return;
  build_k(0, kbeg);
  __syncthreads();
  load_tile(0);
  store_tile();
  if (ntiles > 1) build_k(1, kbeg + BK);
  __syncthreads();
  for (int64_t t = 0; t < ntiles; ++t) {
    const bool more = t + 1 < ntiles;
    if (more) load_tile(static_cast<int>((t + 1) & 1));
    pol.compute(sm);
    __syncthreads();  // shared tile and k-table buffer t&1 are free
    if (more) {
      store_tile();
      if (t + 2 < ntiles) build_k(static_cast<int>(t & 1), kbeg + (t + 2) * BK);
    }
    __syncthreads();
  }
}

// ---------------------------------------------------------------------------
// Host helpers
// ---------------------------------------------------------------------------

constexpr int64_t kMaxGridYZ = 65535;
constexpr int64_t kMaxGridX = 2147483647;

// Tensor-core kernels (the 16-bit types) need mma.sync (sm_80+); the FMA kernels of
// float and double run anywhere.
template <typename T>
cudaError_t check_mma_supported() {
  if constexpr (sizeof(T) != 2) return cudaSuccess;
  int dev = 0, major = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err != cudaSuccess) return err;
  err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  if (err != cudaSuccess) return err;
  return major >= 8 ? cudaSuccess : cudaErrorNotSupported;
}

// Grid for a tile kernel: x = M tiles (one block each), y / z looped in-kernel.
inline cudaError_t gemm_grid(int64_t mtiles, int64_t ntiles, int64_t zcount, dim3* grid) {
  if (mtiles <= 0 || ntiles <= 0 || zcount <= 0) return cudaErrorInvalidValue;
  if (mtiles > kMaxGridX) return cudaErrorInvalidConfiguration;
  *grid = dim3(static_cast<unsigned>(mtiles), static_cast<unsigned>(min64(ntiles, kMaxGridYZ)),
               static_cast<unsigned>(min64(zcount, kMaxGridYZ)));
  return cudaSuccess;
}

// A tensor's channel dimension is "inner" (channels_last-like) when it has a
// smaller stride than the width: then the reduction runs over (r, s, c).
inline bool channel_inner(const int64_t strides[4]) { return strides[1] < strides[3]; }

}  // namespace detail
}  // namespace cuda
}  // namespace cnnops
