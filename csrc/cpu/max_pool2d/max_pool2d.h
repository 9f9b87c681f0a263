// The CPU max-pooling family (MaxPool2dParams in csrc/common/params.h); the
// glue (csrc/torch/max_pool2d_ops.cpp) includes only this header. float32 and
// float64; any strides; bit-for-bit torch's values and indices.
//
// Kernel variants (max_pool2d.cpp) and when each is chosen:
// - planes (any strides; NCHW the fast case), when x, y and indices are not
//   all channels-innermost: parallel over (n, c) planes; the vector lanes are
//   an output row, each tap reading a phase row (split_row, -inf padding).
// - channels_last (x, y and indices channels-innermost): parallel over output
//   pixels (forward) or input rows (backward); the lanes are the channels.
// - forward with indices runs max_taps; without indices (p.indices null:
//   inference) max_values, the same maxima by the same rule.
// - backward is a deterministic gather in output order (gather_grad on
//   planes, gather_pixel on channels_last, streamed stores for large dx).
// The vector kernels (max_pool2d_kernels.h) are built per ISA and follow the
// active one (../isa/isa.h).
#pragma once
#include "../../common/params.h"

namespace cnnops {
namespace cpu {

void max_pool2d_fwd(const MaxPool2dParams& p);  // writes y, and indices unless null
// Writes grad_input (p.x) from grad_output (p.y) and indices. Returns false,
// writing nothing useful, when an index lies outside [0, H*W).
bool max_pool2d_bwd(const MaxPool2dParams& p);

}  // namespace cpu
}  // namespace cnnops
