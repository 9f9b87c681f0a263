// The CPU average-pooling family (AvgPool2dParams in csrc/common/params.h):
// avg_pool2d and adaptive_avg_pool2d, forward and backward. The glue
// (csrc/torch/avg_pool2d_ops.cpp) includes only this header. float32 and
// float64; any strides; sums in T in a fixed order, so results do not depend
// on the thread count.
//
// Kernel variants and when each is chosen (avg_pool2d.cpp,
// avg_pool2d_channels_last.cpp):
// - global (one window over the whole plane: adaptive 1x1, or a kernel the
//   size of the input), contiguous NCHW or channels_last tensors: a plane sum
//   per (n, c), or a sum of pixel rows vectorised over the channels; the
//   backward broadcasts.
// - channels_last (x and y channels-innermost): parallel over output rows
//   (forward) or input rows (backward); the lanes are the channels.
// - planes (anything else; NCHW the fast case): parallel over (n, c) planes;
//   a row's window rows are summed first, then its columns, as a stencil over
//   stride-phase rows where the windows are regular.
// The vector kernels (avg_pool2d_kernels.h) are built per ISA and follow the
// active one (../isa/isa.h).
#pragma once
#include "../../common/params.h"

namespace cnnops {
namespace cpu {

void avg_pool2d_fwd(const AvgPool2dParams& p);  // writes y
void avg_pool2d_bwd(const AvgPool2dParams& p);  // writes grad_input (p.x) from grad_output (p.y)

}  // namespace cpu
}  // namespace cnnops
