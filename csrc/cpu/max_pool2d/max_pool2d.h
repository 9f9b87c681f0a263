// CPU entry points of max pooling (see MaxPool2dParams in csrc/kernels/params.h).
// float32 and float64; any strides.
#pragma once
#include "../kernels/params.h"

namespace cnnops {
namespace cpu {

void max_pool2d_fwd(const MaxPool2dParams& p);  // writes y, and indices unless null
// Writes grad_input (p.x) from grad_output (p.y) and indices. Returns false,
// writing nothing useful, when an index lies outside [0, H*W).
bool max_pool2d_bwd(const MaxPool2dParams& p);

}  // namespace cpu
}  // namespace cnnops
