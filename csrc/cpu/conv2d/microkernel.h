// The register-blocked GEMM micro-kernel interface used by every CPU conv kernel.
//
//   C[MR x NR] = init + sum_{k < kc} a[k*MR + i] * b[k*NR + j]
//
// a and b are packed panels (see packing in conv_correlation.cpp / conv2d_wgrad.cpp);
// C has row stride ldc and unit column stride. Three builds of one template exist
// (AVX-512, AVX2+FMA, portable); the one of the active ISA (isa/isa.h: the
// widest the CPU supports unless set_cpu_isa() chose another) runs.
#pragma once
#include <cstdint>

#include "../isa/isa.h"

namespace cnnops {
namespace cpu {

// How the accumulators start before the k loop.
enum class AccInit : int32_t {
  Zero,     // 0
  Load,     // the current contents of C (accumulate across k blocks)
  RowBias,  // bias[i] for row i (bias has MR entries)
  ColBias,  // bias[j] for column j (bias has NR entries)
};

template <typename T>
using MicroKernelFn = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, AccInit init,
                               const T* bias);

// Direct variant 1 (packing-free NCHW): the B row of step k is read in place at
// b + boff[k] (NR contiguous values); boff holds kc + kPrefetchSteps entries.
template <typename T>
using MicroKernelBoffFn = void (*)(int64_t kc, const T* a, const T* b, const int64_t* boff, T* c, int64_t ldc,
                                   AccInit init, const T* bias);

// The fused output stage (Epilogue in common/params.h) in the forms a tile can
// apply in registers as it is stored, on its last reduction block:
//   C[i][j] = post(act(sum) + residual[i*ldr + j])
// with act and post each a clamp to [lo, hi] (ReLU: [0, inf], ReLU6: [0, 6]) or
// nothing, and the residual optional. This saves the stage's pass over the
// output (and, with the residual prefetched, its wait on memory); other
// activations are applied by the caller after the block (util/epilogue.h). A
// stage that does nothing but stream serves plain outputs too.
template <typename T>
struct TileStage {
  bool act = false, post = false;
  T act_lo = 0, act_hi = 0, post_lo = 0, post_hi = 0;
  const T* residual = nullptr;  // the tile's element (0, 0); null: no residual
  int64_t ldr = 0;              // row step of the residual
  // Non-temporal stores (../util/stream_stores.h: outputs larger than the
  // threads' L2 caches); the caller fences after its last tile.
  bool stream = false;
};

// Direct variant 2 (packing-free channels_last): the reduction is ntaps runs of
// klen steps; in run t, A[i][k] = a[toff[t] + i*lda + k] is read in place; b is
// packed (ntaps*klen steps of NR values). stage, when not null, is applied as C
// is stored (full tiles only: C is written in place).
template <typename T>
using MicroKernelArowsFn = void (*)(int64_t ntaps, int64_t klen, const int64_t* toff, const T* a, int64_t lda,
                                    const T* b, T* c, int64_t ldc, AccInit init, const T* bias,
                                    const TileStage<T>* stage);

// fn_arows for a GEMM reading its A rows in place tile after tile (1x1 layers):
// with `next` (the next tile's A, same lda; null for none), also fetches the next
// tile's klen-long rows, a line per step, so they arrive from memory while this
// tile computes (the rows' own prefetch, two lines ahead, left most of each
// row's first lines to miss: 1x1 256 -> 64 at 56x56 on Zen 4 with two threads
// ran at 75-80% of peak, a standalone loop so at 92-98%).
template <typename T>
using MicroKernelArowsNextFn = void (*)(int64_t klen, const T* a, int64_t lda, const T* b, T* c, int64_t ldc,
                                        AccInit init, const T* bias, const TileStage<T>* stage, const T* next);

// Dot-product tile (wgrad of NCHW 1x1): for i < dot_mr, j < dot_nr,
//   sum_{t < len} a[i*lda + t] * b[j*ldb + t]
// along contiguous rows of both operands, kept as one register of lane sums per
// (i, j): partial[(i*dot_nr + j)*width + lane], loaded first when `accumulate`.
// The caller adds each register's lanes, in order, once the reduction is done.
template <typename T>
using MicroKernelDotFn = void (*)(int64_t len, const T* a, int64_t lda, const T* b, int64_t ldb, T* partial,
                                  bool accumulate);

// A tile's columns stored as contiguous runs (a channels-on-vector tile into an
// NCHW-like output): for t < n, i < rows, out[col_off[t] + i] = tile[i*ld + col_src[t]]
// (with `add`, +=: a reduction block after the first; with `stream`, whole aligned
// vectors are stored non-temporally: a large output no consumer reads from cache).
// Each run is read down the tile's column with vector gathers and written with
// (masked) vector stores: an element-wise copy (two loads of offsets, a load and
// a store per element) took a large share of the strided NCHW stem's time.
template <typename T>
using StoreColumnsFn = void (*)(const T* tile, int64_t ld, int64_t rows, int64_t n, const int64_t* col_src,
                                const int64_t* col_off, T* out, bool add, bool stream);

// The transpose of a block of rows (an NCHW-like input's channel rows into
// channels-last pixels): for i < rows, j < cols, dst[j*ldd + i] = src[i*lds + j].
// Where the ISA's traits have an in-register transpose (AVX-512), W x W blocks
// are loaded row by row, transposed and stored pixel by pixel; elsewhere each
// pixel's channels are read with vector gathers down src's column j (lds times
// the vector width must fit in int32; the caller checks). Both write (masked)
// vector stores: the element-wise copy was a fifth of the channels-last direct
// path's time on NCHW inputs.
template <typename T>
using GatherColumnsFn = void (*)(const T* src, int64_t lds, int64_t rows, int64_t cols, T* dst, int64_t ldd);
// The largest lds (and the copies' channel strides) whose gathers' int32
// offsets (16 lanes of 4-byte elements) cannot overflow.
constexpr int64_t kMaxGatherStride = (int64_t(1) << 31) / 64;

// Winograd F(2x2, RxS) transforms over channels-last pixels (winograd_template.h,
// correlation_winograd.cpp), A = R + 1 by B = S + 1 positions. Input: the A x B
// patch at in + i*rs + j*ps (zeros where bit B*i+j of valid is clear) -> A*B
// positions of C channels at dst + pos*ld. Output: A*B positions of K sums at
// m + pos*ld -> the 2x2 pixels (+ bias) at out + i*rs + j*ps whose bit 2i+j of
// valid is set, through the fused stage when not null (TileStage above; its
// residual's row step res_rs).
template <typename T>
using WinogradInputFn = void (*)(const T* in, int64_t rs, int64_t ps, uint32_t valid, int64_t C, T* dst,
                                 int64_t ld);
template <typename T>
using WinogradOutputFn = void (*)(const T* m, int64_t ld, const T* bias, int64_t K, uint32_t valid, T* out,
                                  int64_t rs, int64_t ps, const TileStage<T>* stage, int64_t res_rs);
// wgrad (conv2d_wgrad_winograd.cpp): F(2x2, 3x3)'s transforms of a 4x4 input
// patch (winograd_input's contract) or of a tile's 2x2 output gradient (pixel
// (i, j) at in + i*rs + j*ps when bit 2i+j of valid is set), channels [0, C),
// for positions [p0, p1) of the 16 only (position 4a + b at dst + (4a+b-p0)*ld).
template <typename T>
using WinogradPositionsFn = void (*)(const T* in, int64_t rs, int64_t ps, uint32_t valid, int64_t C, int p0,
                                     int p1, T* dst, int64_t ld);

constexpr int64_t kPrefetchSteps = 8;
// fn_boff_far's lead: the B rows of the step this far ahead are fetched into
// L2, which covers memory's latency where kPrefetchSteps covers L2's.
constexpr int64_t kFarSteps = 64;

template <typename T>
struct MicroKernel {
  int64_t mr = 0;  // rows of C per call (broadcast side)
  int64_t nr = 0;  // columns of C per call (vector side)
  MicroKernelFn<T> fn = nullptr;
  MicroKernelBoffFn<T> fn_boff = nullptr;
  // fn_boff that also fetches the B rows of step k + kFarSteps into L2 (boff
  // holds kc + kFarSteps entries): for the first pass over B rows that come
  // from memory at a large stride, which the hardware prefetchers do not
  // follow far enough (channels-last wgrad: x rows of C channels each).
  MicroKernelBoffFn<T> fn_boff_far = nullptr;
  MicroKernelArowsFn<T> fn_arows = nullptr;
  MicroKernelArowsNextFn<T> fn_arows_next = nullptr;  // fn_arows of one tap, prefetching the next tile
  // A taller, narrower tile with the fn_arows contract, for GEMMs with few
  // columns (deep layers at small batch, where a wide tile would be mostly empty).
  int64_t narrow_mr = 0, narrow_nr = 0;
  MicroKernelArowsFn<T> narrow_arows = nullptr;
  // Shorter tiles of the main width with the fn_arows contract, for rows of
  // output pixels that the main height divides badly (the direct path: rows of
  // 8, 12, 16, 24 or 48 pixels); heights in short_mr, 0 past the last.
  static constexpr int kShortTiles = 4;
  int64_t short_mr[kShortTiles] = {};
  MicroKernelArowsFn<T> short_arows[kShortTiles] = {};
  // The same heights as fn and fn_boff over A panels packed mr wide (their
  // first short_mr rows): the last row panel of a GEMM whose rows mr divides
  // badly (64 output channels: 4 x 14 + 8, not 5 x 14).
  MicroKernelFn<T> short_fn[kShortTiles] = {};
  MicroKernelBoffFn<T> short_boff[kShortTiles] = {};
  int64_t dot_mr = 0, dot_nr = 0, dot_width = 0;
  MicroKernelDotFn<T> dot = nullptr;
  StoreColumnsFn<T> store_columns = nullptr;
  GatherColumnsFn<T> gather_columns = nullptr;
  // [R - 1][S - 1]: F(2x2, RxS) for R, S of 1 to 3 taps (the 1x1 input
  // transform, a copy, serves the stride-2 phases only).
  WinogradInputFn<T> winograd_input[3][3] = {};
  WinogradOutputFn<T> winograd_output[3][3] = {};
  // A stride-2 3x3's output: the sum of its four phases' transforms, positions
  // 2x2 taps (9), 2x1 (6), 1x2 (6) and 1x1 (4) in that order.
  WinogradOutputFn<T> winograd_output_stride2 = nullptr;
  WinogradPositionsFn<T> wgrad_input = nullptr, wgrad_grad = nullptr;
};

// The packed kernels (fn, fn_boff) for a row panel with `rows` valid rows: the
// shortest tile that covers them (the main one when none does), and its height.
template <typename T>
struct RowPanelKernels {
  int64_t mr;
  MicroKernelFn<T> fn;
  MicroKernelBoffFn<T> fn_boff;
};
template <typename T>
RowPanelKernels<T> row_panel_kernels(const MicroKernel<T>& uk, int64_t rows) {
  RowPanelKernels<T> best{uk.mr, uk.fn, uk.fn_boff};
  for (int i = 0; i < MicroKernel<T>::kShortTiles && uk.short_mr[i] > 0; ++i)
    if (uk.short_fn[i] != nullptr && uk.short_mr[i] >= rows && uk.short_mr[i] < best.mr)
      best = {uk.short_mr[i], uk.short_fn[i], uk.short_boff[i]};
  return best;
}

// The micro-kernels of one ISA build (microkernel_{avx512,avx2,generic}.cpp).
using MicroKernelSet = ByDtype<MicroKernel>;

// One function per ISA build; returns false when that build is not compiled in.
bool microkernels_avx512(MicroKernelSet* out);
bool microkernels_avx2(MicroKernelSet* out);
bool microkernels_generic(MicroKernelSet* out);

// The micro-kernel of the active ISA (isa/isa.h).
template <typename T>
const MicroKernel<T>& active_microkernel();

}  // namespace cpu
}  // namespace cnnops
