// depthwise's vector kernels: the inner loops of the memory-bound depthwise
// kernels, written once (depthwise_simd.h, depthwise_span3x3.h) and built per
// ISA (depthwise_{avx512,avx2,generic}.cpp), so they run with AVX-512 / AVX2
// where the CPU has it; active_depthwise_kernels<T>() returns the set of the
// active ISA (../isa/isa.h). All are loops over contiguous lanes.
#pragma once
#include <cstdint>

#include "../isa/isa.h"

namespace cnnops {
namespace cpu {

// Elements of slack copy_rows needs past its destination's last row when it
// writes margins (see copy_rows).
constexpr int64_t kCopyRowsSlack = 64;

template <typename T>
struct DepthwiseKernels {
  // out[k] = init[k] (or 0 if init is null) + sum over taps t with x[t] != null
  // of x[t][k] * w[t*K + k], for k < K: a pixel's channels, accumulated in
  // registers over all taps.
  void (*taps_madd)(int64_t K, int64_t ntaps, const T* const* x, const T* w, const T* init, T* out) = nullptr;
  // A row of channels-innermost pixels with per-channel weights (depthwise
  // fprop/dgrad interiors): for j < npix, k < K,
  //   out[j*out_step + k] = init[k] (or 0) + sum over t of x[t][j*x_step + k] * w[t][k].
  void (*stencil_row)(int64_t npix, int64_t K, int64_t ntaps, const T* const* x, int64_t x_step,
                      const T* const* w, const T* init, T* out, int64_t out_step) = nullptr;
  // Its weight gradient: acc[t][k] += sum over j of dy[j*dy_step + k] * x[t][j*x_step + k].
  void (*stencil_row_dot)(int64_t npix, int64_t K, int64_t ntaps, const T* const* x, int64_t x_step,
                          const T* dy, int64_t dy_step, T* const* acc) = nullptr;
  // The 3x3 stencils of a channels_last depthwise convolution with stride 1,
  // padding 1 and multiplier 1 over a span of npix pixels of output row i and
  // K channels (depthwise_span3x3.h; pixels `step` elements apart, w and acc
  // taps-major (9, K)). Row pointers are at the
  // span's pixel 0, nullptr for a row in the padding; columns -1 .. npix are read.
  //   span3x3_fprop: output rows i .. i+nout-1 (nout 1 or 2), x = input rows
  //     i-1 .. i+nout, out[o] = output row i+o;
  //     out[o][j*step + k] = init[k] (or 0) + sum over r, s of x[o+r][(j+s-1)*step + k] * w[3r+s][k].
  //   span3x3_backward: rows i .. i+nout-1 (nout 1 or 2), dy = dy rows
  //     i+nout, ..., i-1, x[o] = input row i+o, dx[o] = dx's row i+o; for row i:
  //     with dx: dx[0][j*step + k] = sum over r, s of dy[nout-1+r][(j+1-s)*step + k] * w[3r+s][k];
  //     with acc: acc[3r+s][k] += sum over j of dy[nout-1+r][j*step + k] * x[0][(j+s-1)*step + k]
  //     (dw's sum taken by input row: over all rows i, the same terms).
  //   stream: out / dx with non-temporal stores where aligned (the caller fences).
  void (*span3x3_fprop)(int64_t npix, int64_t K, int64_t nout, const T* const* x, int64_t step, const T* w,
                        const T* init, T* const* out, bool stream) = nullptr;
  void (*span3x3_backward)(int64_t npix, int64_t K, int64_t nout, const T* const* dy, const T* const* x,
                           int64_t step, const T* w, T* const* dx, T* acc, bool stream) = nullptr;
  // out[i] = init + sum over taps t of w[t] * x[t][i]: one scalar weight per
  // tap (NCHW depthwise rows and flat planes).
  void (*taps_scale)(int64_t n, int64_t ntaps, const T* const* x, const T* w, T init, T* out) = nullptr;
  // out[t] += sum over i of a[i] * x[t][i], for t < ntaps (depthwise wgrad).
  void (*taps_dot)(int64_t n, int64_t ntaps, const T* a, const T* const* x, T* out) = nullptr;
  // taps_scale and taps_dot with lane masks, over registers of `lanes`
  // lanes: register g (lanes g*lanes + l, l < lanes) of tap t reads x[t] under
  // masks[g*ntaps + t] (bit l set: read; clear: 0, and memory not touched),
  // and of a (masked_taps_dot) the lanes below n. The depthwise flat planes
  // read their unpadded neighbours so (depthwise_flat.cpp).
  void (*masked_taps_scale)(int64_t n, int64_t ntaps, const T* const* x, const uint32_t* masks, const T* w,
                            T init, T* out) = nullptr;
  void (*masked_taps_dot)(int64_t n, int64_t ntaps, const T* a, const T* const* x, const uint32_t* masks,
                          T* out) = nullptr;
  int lanes = 0;  // the ISA's lanes per register of T
  // Row copies with zero margins: for i < rows, dst row i (dst + i*dst_rs) gets
  // `lead` zeros, src row i's n values (src + i*src_rs, unit stride), then
  // `trail` zeros. With margins, the last row's trailing zeros may be written as
  // a whole register: dst needs kCopyRowsSlack elements past its last row.
  void (*copy_rows)(int64_t rows, int64_t n, const T* src, int64_t src_rs, T* dst, int64_t dst_rs,
                    int64_t lead, int64_t trail) = nullptr;
  // y[i] += a * x[i].
  void (*axpy)(int64_t n, T a, const T* x, T* y) = nullptr;
  // acc[i] += a[i] * b[i].
  void (*mul_add)(int64_t n, const T* a, const T* b, T* acc) = nullptr;
  // acc[i] += double(src[i]) (partial sums carried on in double).
  void (*add_widened)(int64_t n, const T* src, double* acc) = nullptr;
};

// The kernels of one ISA build.
using DepthwiseKernelSet = ByDtype<DepthwiseKernels>;

// One function per ISA build; returns false when that build is not compiled in.
bool depthwise_kernels_avx512(DepthwiseKernelSet* out);
bool depthwise_kernels_avx2(DepthwiseKernelSet* out);
bool depthwise_kernels_generic(DepthwiseKernelSet* out);

// The set of the active ISA (depthwise_kernels.cpp).
template <typename T>
const DepthwiseKernels<T>& active_depthwise_kernels();

}  // namespace cpu
}  // namespace cnnops
