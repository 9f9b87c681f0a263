// The filter gradient of layers with few input channels (the 3-channel first
// layer), dy read in place (conv2d_wgrad_few_columns.cpp).
#pragma once

#include "../../common/params.h"

namespace cnnops {
namespace cpu {

// Computes p's filter gradient and returns true when the layer qualifies (one
// group, fewer than 8 input channels, dy's channels contiguous, output channels
// a multiple of the micro-kernel's width); else returns false and leaves dw.
bool conv2d_wgrad_few_columns(const Conv2dParams& p);

}  // namespace cpu
}  // namespace cnnops
