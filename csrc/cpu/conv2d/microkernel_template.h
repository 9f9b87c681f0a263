// The one micro-kernel, written once over a small vector-traits type V:
//   V::T     element type            V::Reg   register type
//   V::kWidth elements per register  zero/set1/load/store/fma
// Each ISA translation unit defines its traits under its own target pragma and
// instantiates this template, so the same source becomes AVX-512, AVX2 or
// portable code (microkernel_{avx512,avx2,generic}.cpp). Include only after the
// ISA's target pragma and traits (../isa/). The kernels are templates on V in
// namespace simd, so no ISA unit's copy is shared (see ../isa/isa.h).
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "../util/stream_stores.h"
#include "microkernel.h"
#include "winograd_template.h"
#if defined(__x86_64__)
#include "../isa/x86_rows.h"
#endif

namespace cnnops {
namespace cpu {
namespace simd {

// Elements of T in a 64-byte cache line.
template <typename T>
constexpr int64_t kLineSteps = 64 / sizeof(T);

// MR rows x NV registers of accumulators; NR = NV * V::kWidth columns. The
// helpers below are always inlined into the kernels (forced: a helper left out
// of line takes the accumulators by reference, in memory, and a kernel then ran
// at a third of its speed), so the accumulators live in registers.
template <typename V, int MR, int NV>
__attribute__((always_inline)) inline void acc_init(typename V::Reg (&acc)[MR][NV], const typename V::T* c, int64_t ldc, AccInit init,
                     const typename V::T* bias) {
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      if (init == AccInit::Load) acc[i][v] = V::load(c + i * ldc + v * V::kWidth);
      else if (init == AccInit::RowBias) acc[i][v] = V::set1(bias[i]);
      else if (init == AccInit::ColBias) acc[i][v] = V::load(bias + v * V::kWidth);
      else acc[i][v] = V::zero();
    }
  }
}

// acc[i][:] += a_i * b[:] for the MR values a_i = a[i * lda].
template <typename V, int MR, int NV>
__attribute__((always_inline)) inline void acc_step(typename V::Reg (&acc)[MR][NV], const typename V::T* a, int64_t lda,
                     const typename V::T* b) {
  typename V::Reg bv[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) bv[v] = V::load(b + v * V::kWidth);
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    typename V::Reg ai = V::set1(a[i * lda]);
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[i][v] = V::fma(ai, bv[v], acc[i][v]);
  }
}

template <typename V, int MR, int NV>
__attribute__((always_inline)) inline void acc_store(typename V::Reg (&acc)[MR][NV], typename V::T* c, int64_t ldc) {
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) V::store(c + i * ldc + v * V::kWidth, acc[i][v]);
  }
}

// The tile's residual into L1 as its sums start (TileStage): the stage reads
// it a whole tile's reduction later, after the lines have arrived from L2 or
// memory. (A prefetch of the task's residual block into L2 spread over its
// tiles, ResidualPrefetch, cost more in instructions than it saved: 1x1 64 ->
// 256 at 56x56 with its residual and ReLU, batch 16, two threads on Zen 4,
// 11.3 -> 9.4 ms, against 8.2 without a residual.)
template <typename V, int MR, int NV>
__attribute__((always_inline)) inline void prefetch_residual(const TileStage<typename V::T>& s) {
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) __builtin_prefetch(s.residual + i * s.ldr + v * V::kWidth, 0, 3);
  }
}

// acc_store with the fused stage applied on the way (TileStage), its switches as
// template arguments. Tested per register (four tests, each reloading the stage,
// which a store may alias), they cost the tiles of short reductions most: a 1x1
// from 32 channels to 256 ran 9-12% slower, from 64 channels 4-7% (docs/design.md).
template <typename V, int MR, int NV, bool kAct, bool kResidual, bool kPost, bool kStream>
__attribute__((always_inline)) inline void acc_store_stage_as(typename V::Reg (&acc)[MR][NV], typename V::T* c,
                                                              int64_t ldc, const TileStage<typename V::T>& s) {
  using Reg = typename V::Reg;
  const Reg alo = V::set1(s.act_lo), ahi = V::set1(s.act_hi), plo = V::set1(s.post_lo), phi = V::set1(s.post_hi);
  const typename V::T* residual = s.residual;
  const int64_t ldr = s.ldr;
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      Reg x = acc[i][v];
      if constexpr (kAct) x = V::clamp(x, alo, ahi);
      if constexpr (kResidual) x = V::add(x, V::load(residual + i * ldr + v * V::kWidth));
      if constexpr (kPost) x = V::clamp(x, plo, phi);
      if constexpr (kStream) V::stream(c + i * ldc + v * V::kWidth, x);
      else V::store(c + i * ldc + v * V::kWidth, x);
    }
  }
}

template <typename V, int MR, int NV>
__attribute__((always_inline)) inline void acc_store_staged(typename V::Reg (&acc)[MR][NV], typename V::T* c, int64_t ldc,
                             const TileStage<typename V::T>& s) {
  // Streams only when every register's address is aligned for it (store_or_stream).
  constexpr int64_t kReg = sizeof(typename V::Reg);
  const bool stream = s.stream && reinterpret_cast<uintptr_t>(c) % kReg == 0 &&
                      (MR == 1 || ldc * int64_t(sizeof(typename V::T)) % kReg == 0);
  const int which = (s.act ? 1 : 0) | (s.residual != nullptr ? 2 : 0) | (s.post ? 4 : 0) | (stream ? 8 : 0);
  switch (which) {
#define CNNOPS_STAGE_CASE(n) \
  case n: return acc_store_stage_as<V, MR, NV, (n & 1) != 0, (n & 2) != 0, (n & 4) != 0, (n & 8) != 0>(acc, c, ldc, s);
    CNNOPS_STAGE_CASE(0) CNNOPS_STAGE_CASE(1) CNNOPS_STAGE_CASE(2) CNNOPS_STAGE_CASE(3)
    CNNOPS_STAGE_CASE(4) CNNOPS_STAGE_CASE(5) CNNOPS_STAGE_CASE(6) CNNOPS_STAGE_CASE(7)
    CNNOPS_STAGE_CASE(8) CNNOPS_STAGE_CASE(9) CNNOPS_STAGE_CASE(10) CNNOPS_STAGE_CASE(11)
    CNNOPS_STAGE_CASE(12) CNNOPS_STAGE_CASE(13) CNNOPS_STAGE_CASE(14) CNNOPS_STAGE_CASE(15)
#undef CNNOPS_STAGE_CASE
  }
}

// The packed kernel's B panels often come from L3 or memory (a frozen filter
// read once per call: few-pixel layers, the im2col path at batch 1), which
// needs a longer lead than kPrefetchSteps: each step also fetches, into L2, the
// line(s) of the step kFarBytes ahead (the hardware prefetchers stop at 4 KiB
// pages). resnet50 batch 1 under optimize_for_inference: 3% faster; its 3x3
// layers at 7x7, 204 -> 243 GFLOP/s. (In the strided-A kernel, whose panels
// are mostly reused from L2, it cost 1.4% at batch 16.)
constexpr int64_t kFarBytes = 4096;
template <typename V, int NR>
__attribute__((always_inline)) inline void prefetch_far(const typename V::T* b) {
  constexpr int64_t step_bytes = NR * int64_t(sizeof(typename V::T));
  const char* p = reinterpret_cast<const char*>(b) + kFarBytes;
  __builtin_prefetch(p, 0, 2);
  if constexpr (step_bytes > 64) __builtin_prefetch(p + 64, 0, 2);
}

// A panels hold AS >= MR values per step (AS > MR: a short tile over the first
// MR rows of a main-height panel, the last one of a GEMM whose rows MR divides
// badly).
template <typename V, int MR, int NV, int AS = MR>
void microkernel(int64_t kc, const typename V::T* a, const typename V::T* b, typename V::T* c, int64_t ldc,
                 AccInit init, const typename V::T* bias) {
  constexpr int NR = NV * V::kWidth;
  typename V::Reg acc[MR][NV];
  acc_init<V, MR, NV>(acc, c, ldc, init, bias);
  for (int64_t k = 0; k < kc; ++k) {
    // Panels stream from L2: fetch a few steps ahead (it pays when B does not
    // fit in L1).
    __builtin_prefetch(b + kPrefetchSteps * NR);
    prefetch_far<V, NR>(b);
    __builtin_prefetch(a + 2 * kPrefetchSteps * AS);
    acc_step<V, MR, NV>(acc, a, 1, b);
    a += AS;
    b += NR;
  }
  acc_store<V, MR, NV>(acc, c, ldc);
}

// B rows at per-step offsets; a row of more than one cache line has each of its
// lines prefetched (the second missed L1: channels-last wgrad 1-8% faster).
// kFar: also fetch the rows kFarSteps ahead into L2 (fn_boff_far).
template <typename V, int MR, int NV, int AS = MR, bool kFar = false>
void microkernel_boff(int64_t kc, const typename V::T* a, const typename V::T* b, const int64_t* boff,
                      typename V::T* c, int64_t ldc, AccInit init, const typename V::T* bias) {
  typename V::Reg acc[MR][NV];
  acc_init<V, MR, NV>(acc, c, ldc, init, bias);
  constexpr bool two_lines = NV * V::kWidth * sizeof(typename V::T) > 64;
  for (int64_t k = 0; k < kc; ++k) {
    const char* ahead = reinterpret_cast<const char*>(b + boff[k + kPrefetchSteps]);
    __builtin_prefetch(ahead);
    if constexpr (two_lines) __builtin_prefetch(ahead + 64);
    if constexpr (kFar) {
      const char* far = reinterpret_cast<const char*>(b + boff[k + kFarSteps]);
      __builtin_prefetch(far, 0, 2);
      if constexpr (two_lines) __builtin_prefetch(far + 64, 0, 2);
    }
    __builtin_prefetch(a + 2 * kPrefetchSteps * AS);
    acc_step<V, MR, NV>(acc, a, 1, b + boff[k]);
    a += AS;
  }
  acc_store<V, MR, NV>(acc, c, ldc);
}

// acc[i][:] += A[i][k] * b[:] for the MR rows of A at base[i / 5] + (i % 5) * lda
// (x86_rows.h: a few base pointers and two stride registers, not MR pointers).
#if defined(__x86_64__)
template <typename V, int MR, int NV, int... I>
__attribute__((always_inline)) inline void acc_step_rows(typename V::Reg (&acc)[MR][NV], const typename V::T* const* base, int64_t k, int64_t L,
                          int64_t L3, const typename V::T* b, std::integer_sequence<int, I...>) {
  using Reg = typename V::Reg;
  Reg bv[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) bv[v] = V::load(b + v * V::kWidth);
  auto row = [&](auto i, Reg ai) __attribute__((always_inline)) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[decltype(i)::value][v] = V::fma(ai, bv[v], acc[decltype(i)::value][v]);
  };
  (row(std::integral_constant<int, I>(), x86::broadcast_row<Reg, typename V::T, I % 5>(base[I / 5] + k, L, L3)),
   ...);
}

template <int... I>
__attribute__((always_inline)) inline void prefetch_rows(const void* const* base, int64_t L, int64_t L3, std::integer_sequence<int, I...>) {
  (x86::prefetch_row<I % 5>(base[I / 5], L, L3), ...);
}
#endif

template <typename V, int MR, int NV, bool kNext>
__attribute__((always_inline)) inline void arows_impl(int64_t ntaps, int64_t klen, const int64_t* toff,
                                                      const typename V::T* a, int64_t lda, const typename V::T* b,
                                                      typename V::T* c, int64_t ldc, AccInit init,
                                                      const typename V::T* bias,
                                                      const TileStage<typename V::T>* stage,
                                                      const typename V::T* next) {
  using T = typename V::T;
  constexpr int NR = NV * V::kWidth;
  constexpr int64_t kLine = kLineSteps<T>;
  typename V::Reg acc[MR][NV];
  acc_init<V, MR, NV>(acc, c, ldc, init, bias);
  if (stage != nullptr && stage->residual != nullptr) prefetch_residual<V, MR, NV>(*stage);
  // The next tile's lines: row pf_row, element pf_col; lines per step enough to
  // cover MR rows of klen within klen steps (one for float, two for double).
  int64_t pf_row = kNext && next != nullptr ? 0 : MR, pf_col = 0;
  constexpr int kPerStep = (MR * int64_t(sizeof(T)) + 63) / 64;
  auto prefetch_next = [&]() __attribute__((always_inline)) {
    if constexpr (kNext) {
#pragma GCC unroll 2
      for (int x = 0; x < kPerStep; ++x)
        if (pf_row < MR) {
          __builtin_prefetch(next + pf_row * lda + pf_col);
          pf_col += kLine;
          if (pf_col >= klen) {
            pf_col = 0;
            ++pf_row;
          }
        }
    }
  };
  for (int64_t t = 0; t < ntaps; ++t) {
    const T* at = a + toff[t];
#if defined(__x86_64__)
    if constexpr (V::kWidth > 1) {  // the vector builds
      constexpr int kGroups = (MR + 4) / 5;
      const int64_t L = lda * int64_t(sizeof(T)), L3 = 3 * L;
      const T* base[kGroups];
#pragma GCC unroll 4
      for (int g = 0; g < kGroups; ++g) base[g] = at + 5 * g * lda;
      int64_t k = 0;
      for (; k + kLine <= klen; k += kLine) {
        // The MR rows of A are MR streams, more than the hardware prefetchers
        // follow: fetch each row's line after next once per line of steps
        // (not for rows of at most 4 lines, which that would fetch past: 1x1
        // layers of 64 channels 2-4% faster without).
        const void* line[kGroups];
#pragma GCC unroll 4
        for (int g = 0; g < kGroups; ++g) line[g] = base[g] + k;
        if (klen > 4 * kLine) prefetch_rows(line, L, L3, std::make_integer_sequence<int, MR>());
#pragma GCC unroll 16
        for (int64_t u = 0; u < kLine; ++u) {
          // Panels stream from L2: fetch a few steps ahead, every line of the
          // step (only the first of a 128-byte step's two left every other line
          // to miss L1: 3x3 and 1x1 layers 0.5-2% faster).
          __builtin_prefetch(b + kPrefetchSteps * NR);
          if constexpr (NR * sizeof(T) > 64) __builtin_prefetch(b + kPrefetchSteps * NR + 64 / sizeof(T));
          prefetch_next();
          acc_step_rows<V, MR, NV>(acc, base, k + u, L, L3, b, std::make_integer_sequence<int, MR>());
          b += NR;
        }
      }
      for (; k < klen; ++k, b += NR)
        acc_step_rows<V, MR, NV>(acc, base, k, L, L3, b, std::make_integer_sequence<int, MR>());
      continue;
    }
#endif
    for (int64_t k = 0; k < klen; ++k) {
      __builtin_prefetch(b + kPrefetchSteps * NR);
      if ((k & (kLine - 1)) == 0) {
#pragma GCC unroll 32
        for (int i = 0; i < MR; ++i) __builtin_prefetch(at + i * lda + k + 2 * kLine);
      }
      acc_step<V, MR, NV>(acc, at + k, lda, b);
      b += NR;
    }
  }
  if (stage != nullptr) acc_store_staged<V, MR, NV>(acc, c, ldc, *stage);
  else acc_store<V, MR, NV>(acc, c, ldc);
}

template <typename V, int MR, int NV>
void microkernel_arows(int64_t ntaps, int64_t klen, const int64_t* toff, const typename V::T* a, int64_t lda,
                       const typename V::T* b, typename V::T* c, int64_t ldc, AccInit init,
                       const typename V::T* bias, const TileStage<typename V::T>* stage) {
  arows_impl<V, MR, NV, false>(ntaps, klen, toff, a, lda, b, c, ldc, init, bias, stage, nullptr);
}

template <typename V, int MR, int NV>
void microkernel_arows_next(int64_t klen, const typename V::T* a, int64_t lda, const typename V::T* b,
                            typename V::T* c, int64_t ldc, AccInit init, const typename V::T* bias,
                            const TileStage<typename V::T>* stage, const typename V::T* next) {
  const int64_t zero = 0;
  arows_impl<V, MR, NV, true>(1, klen, &zero, a, lda, b, c, ldc, init, bias, stage, next);
}

// MR x NR dot products of contiguous rows (MicroKernelDotFn): one register of
// lane sums per pair, a masked last step for the tail of the rows.
template <typename V, int MR, int NR>
void microkernel_dot(int64_t len, const typename V::T* a, int64_t lda, const typename V::T* b, int64_t ldb,
                     typename V::T* partial, bool accumulate) {
  using T = typename V::T;
  constexpr int W = V::kWidth;
  typename V::Reg acc[MR][NR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) acc[i][j] = accumulate ? V::load(partial + (i * NR + j) * W) : V::zero();
  auto step = [&](int64_t t, auto load) {
    typename V::Reg av[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) av[i] = load(a + i * lda + t);
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      const typename V::Reg bv = load(b + j * ldb + t);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) acc[i][j] = V::fma(av[i], bv, acc[i][j]);
    }
  };
  int64_t t = 0;
  for (; t + W <= len; t += W) step(t, [](const T* p) { return V::load(p); });
  if (t < len) {
    const uint32_t bits = (uint32_t(1) << (len - t)) - 1;
    step(t, [bits](const T* p) { return V::load_masked(p, bits); });
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) V::store(partial + (i * NR + j) * W, acc[i][j]);
}

// Whether the traits V have an in-register square transpose (V::transpose).
template <typename V, typename = void>
struct HasTranspose : std::false_type {};
template <typename V>
struct HasTranspose<V, std::void_t<decltype(V::kTranspose)>> : std::bool_constant<V::kTranspose> {};
template <typename V>
constexpr bool has_transpose() { return HasTranspose<V>::value; }

// dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols: W x W blocks
// through the registers where V has a transpose (whole aligned vectors streamed
// when asked), else each column of src gathered kWidth rows at a time.
template <typename V>
void transpose_copy(const typename V::T* src, int64_t lds, int64_t rows, int64_t cols, typename V::T* dst,
                    int64_t ldd, bool stream) {
  constexpr int W = V::kWidth;
  const uint32_t all = (uint32_t(1) << W) - 1, last = (uint32_t(1) << (rows % W)) - 1;
  if constexpr (has_transpose<V>()) {
    // W rows loaded (masked past the last column; zero past the last row),
    // transposed, stored as W pixel pieces (masked past the last row).
    using Reg = typename V::Reg;
    for (int64_t i0 = 0; i0 < rows; i0 += W) {
      const int64_t ni = std::min<int64_t>(W, rows - i0);
      const uint32_t imask = ni == W ? all : last;
      for (int64_t j0 = 0; j0 < cols; j0 += W) {
        const int64_t nj = std::min<int64_t>(W, cols - j0);
        const uint32_t jmask = nj == W ? all : (uint32_t(1) << nj) - 1;
        Reg r[W];
#pragma GCC unroll 16
        for (int i = 0; i < W; ++i) {
          const typename V::T* row = src + (i0 + i) * lds + j0;
          r[i] = i >= ni ? V::zero() : nj == W ? V::load(row) : V::load_masked(row, jmask);
        }
        V::transpose(r);
        for (int64_t j = 0; j < nj; ++j) {
          typename V::T* d = dst + (j0 + j) * ldd + i0;
          if (ni == W) store_or_stream<V>(d, r[j], stream);
          else V::store_masked(d, r[j], imask);
        }
      }
    }
    return;
  }
  for (int64_t j = 0; j < cols; ++j) {
    typename V::T* d = dst + j * ldd;
    int64_t i = 0;
    for (; i + W <= rows; i += W) V::store(d + i, V::gather(src + i * lds + j, int32_t(lds), all));
    if (i < rows) V::store_masked(d + i, V::gather(src + i * lds + j, int32_t(lds), last), last);
  }
}

// StoreColumnsFn: consecutive columns to equally spaced runs (the NCHW stores of
// the direct paths) by transpose_copy where V has a transpose (a vector gather
// per kWidth values was 11% of the strided NCHW stem's time on Zen 4, whose
// gathers are slow); else, and for `add`, each column run by kWidth-row gathers
// down the tile.
template <typename V>
void store_columns(const typename V::T* tile, int64_t ld, int64_t rows, int64_t n, const int64_t* col_src,
                   const int64_t* col_off, typename V::T* out, bool add, bool stream) {
  constexpr int W = V::kWidth;
  if constexpr (has_transpose<V>()) {
    bool spaced = !add && n > 1;
    for (int64_t t = 1; spaced && t < n; ++t)
      spaced = col_src[t] == col_src[0] + t && col_off[t] - col_off[t - 1] == col_off[1] - col_off[0];
    if (spaced) {
      transpose_copy<V>(tile + col_src[0], ld, rows, n, out + col_off[0], col_off[1] - col_off[0], stream);
      return;
    }
  }
  const uint32_t all = (uint32_t(1) << W) - 1, last = (uint32_t(1) << (rows % W)) - 1;
  for (int64_t t = 0; t < n; ++t) {
    const typename V::T* src = tile + col_src[t];
    typename V::T* dst = out + col_off[t];
    int64_t i = 0;
    for (; i + W <= rows; i += W) {
      const auto v = V::gather(src + i * ld, int32_t(ld), all);
      store_or_stream<V>(dst + i, add ? V::add(V::load(dst + i), v) : v, stream && !add);
    }
    if (i < rows) {
      const auto v = V::gather(src + i * ld, int32_t(ld), last);
      V::store_masked(dst + i, add ? V::add(V::load_masked(dst + i, last), v) : v, last);
    }
  }
}

// GatherColumnsFn (the channels-last copies).
template <typename V>
void gather_columns(const typename V::T* src, int64_t lds, int64_t rows, int64_t cols, typename V::T* dst,
                    int64_t ldd) {
  transpose_copy<V>(src, lds, rows, cols, dst, ldd, false);
}

}  // namespace simd

// MR x NV registers for the main tile, MR2 x NV2 for the narrow one, DMR x DNR
// for the dot-product tile.
template <typename V, int MR, int NV, int MR2, int NV2, int DMR, int DNR>
MicroKernel<typename V::T> make_microkernel() {
  MicroKernel<typename V::T> k;
  k.mr = MR;
  k.nr = NV * V::kWidth;
  k.fn = &simd::microkernel<V, MR, NV>;
  k.fn_boff = &simd::microkernel_boff<V, MR, NV>;
  k.fn_boff_far = &simd::microkernel_boff<V, MR, NV, MR, true>;
  k.fn_arows = &simd::microkernel_arows<V, MR, NV>;
  k.fn_arows_next = &simd::microkernel_arows_next<V, MR, NV>;
  k.narrow_mr = MR2;
  k.narrow_nr = NV2 * V::kWidth;
  k.narrow_arows = &simd::microkernel_arows<V, MR2, NV2>;
  k.dot_mr = DMR;
  k.dot_nr = DNR;
  k.dot_width = V::kWidth;
  k.dot = &simd::microkernel_dot<V, DMR, DNR>;
  k.store_columns = &simd::store_columns<V>;
  k.gather_columns = &simd::gather_columns<V>;
  simd::set_winograd<V, 1, 2>(&k);
  simd::set_winograd<V, 1, 3>(&k);
  simd::set_winograd<V, 2, 1>(&k);
  simd::set_winograd<V, 2, 2>(&k);
  simd::set_winograd<V, 2, 3>(&k);
  simd::set_winograd<V, 3, 1>(&k);
  simd::set_winograd<V, 3, 2>(&k);
  simd::set_winograd<V, 3, 3>(&k);
  simd::set_winograd_stride2<V>(&k);
  k.wgrad_input = &simd::wgrad_positions<V, false>;
  k.wgrad_grad = &simd::wgrad_positions<V, true>;
  return k;
}

// Adds the shorter tiles MRs... (NV registers wide, as the main tile of MR rows)
// to k: strided-A kernels, and packed ones over MR-wide panels.
template <typename V, int MR, int NV, int... MRs>
void add_short_tiles(MicroKernel<typename V::T>* k) {
  static_assert(sizeof...(MRs) <= MicroKernel<typename V::T>::kShortTiles, "too many short tiles");
  static_assert(((MRs < MR) && ...), "short tiles are shorter than the main one");
  int i = 0;
  ((k->short_mr[i] = MRs, k->short_arows[i] = &simd::microkernel_arows<V, MRs, NV>,
    k->short_fn[i] = &simd::microkernel<V, MRs, NV, MR>, k->short_boff[i++] = &simd::microkernel_boff<V, MRs, NV, MR>),
   ...);
}

}  // namespace cpu
}  // namespace cnnops
