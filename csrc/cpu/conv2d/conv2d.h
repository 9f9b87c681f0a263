// The CPU convolution family: conv2d forward, its input gradient (which is
// also conv_transpose2d's forward), filter and bias gradients. The glue
// (csrc/torch/conv2d_ops.cpp) includes only this header; see
// csrc/common/params.h for the meaning of each field. float32 and float64;
// any strides (NCHW, channels_last, strided views). Parallel over tasks with
// at::parallel_for; every result is independent of the thread count.
//
// Kernel variants and when each is chosen:
// - conv2d_fprop (conv2d_fprop.cpp): one grouped correlation
//   (conv_correlation.cpp), an implicit GEMM on the register-blocked
//   micro-kernel (microkernel_template.h) of the active ISA
//   (../isa/isa.h). run_correlation picks, by layout:
//     channels_last output (or fewer pixels than a micro-kernel row): channels
//       on the vector side; direct variant (padded channels_last copy read in
//       place, no im2col) when direct paths are on and tiles stay well used,
//       else im2col packing;
//     NCHW output, unit steps: pixels on the vector side; direct variant
//       (padded planes read in place) under the same conditions, else im2col;
//     strided NCHW (the stem): the channels_last direct variant, else im2col.
//     A single tap at unit steps (1x1 conv) is a plain GEMM whose input is read
//     in place. At most 128 output pixels (deep layers at small batch): the
//     filter is read in place instead (correlation_direct.cpp), with a narrow
//     tile. Packed filters are kept across calls when the glue passes a
//     FilterCache (filter_cache.h).
// - conv2d_dgrad (conv2d_dgrad.cpp): stride phases, each one correlation
//   with the filter's channel axes swapped (no multiply on the zeros of a
//   dilated dy, no atomics); with fewer than 8 dx channels per group (the
//   3-channel stem), a GEMM into columns plus col2im instead.
// - conv2d_wgrad (conv2d_wgrad.cpp): an implicit GEMM per group over pixel
//   chunks summed in a fixed order; the x side read in place for
//   channels_last with channels per group a multiple of the micro-kernel's
//   width, else packed (NCHW x with enough pixels first copied to channels-last);
//   NCHW 1x1 over large images as a grid of dot products read in place; fewer
//   than 8 input channels (the first layer) as the transposed GEMM with dy read
//   in place (conv2d_wgrad_few_columns.cpp).
// - conv2d_bias_grad (conv2d_bias_grad.cpp): per-channel sums in double.
#pragma once
#include <cstdint>

#include "../../common/params.h"

namespace cnnops {
namespace cpu {

void conv2d_fprop(const Conv2dParams& p);        // y = conv(x, w) (+ bias[K])
void conv2d_dgrad(const Conv2dParams& p);        // x = conv^T(y, w) (+ bias[C])
void conv2d_wgrad(const Conv2dParams& p);        // w = d conv / d w, contracted with y
void conv2d_bias_grad(const BiasGradParams& p);  // db[k] = sum_{n,p,q} dy[n,k,p,q]

// Whether the direct (packing-free) paths may be used; on by default. Tests turn
// it off to cover the im2col paths, and benchmarks to compare the two.
void set_direct_paths(bool enabled);
bool direct_paths_enabled();
// Whether 3x3 unit-step layers may use Winograd's F(2x2, 3x3) (a direct path:
// off with them too); on by default. Tests compare it with the direct GEMMs.
void set_winograd(bool enabled);
bool winograd_enabled();

// The work partitions of the correlation paths, pure functions of the shape and
// thread count (correlation_pack.h), for tests: pixels per block of `items`
// cut into panels of `width` with `outer` tasks per block index; panel groups
// for `blocks` output blocks of `panels` output-channel panels on `threads`;
// row blocks per image of the channels-last direct path.
int64_t conv_balanced_block(int64_t items, int64_t width, int64_t outer);
int64_t conv_panel_splits(int64_t blocks, int64_t panels, int64_t threads);
int64_t conv_direct_row_blocks(int64_t P, int64_t qtiles, int64_t outer, int64_t threads);

// The active ISA's micro-kernel tile (rows x columns of C per call), for
// build_info.
void microkernel_tile(bool float64, int64_t* mr, int64_t* nr);

}  // namespace cpu
}  // namespace cnnops
