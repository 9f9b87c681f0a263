// The filter gradient of 3x3 layers by Winograd's F(2x2, 3x3)
// (conv2d_wgrad_winograd.cpp).
#pragma once

#include "../../common/params.h"

namespace cnnops {
namespace cpu {

// Computes p's filter gradient and returns true when the layer qualifies (3x3,
// unit stride and dilation, one group, at least 64 input and output channels,
// channels-last x and dy, at least 64 output tiles of 2x2); else returns false
// and leaves dw.
template <typename T>
bool conv2d_wgrad_winograd(const Conv2dParams& p);

}  // namespace cpu
}  // namespace cnnops
