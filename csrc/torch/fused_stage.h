// The fused output stage of the inference ops (fused_ops.cpp) as the forward
// glue of conv2d_ops.cpp and depthwise_ops.cpp receives it: those files' fprop
// functions take an optional FusedStage, check its residual against the output
// they allocate and hand the kernels an Epilogue (csrc/common/params.h).
#pragma once
#include <ATen/ATen.h>

#include <optional>

#include "../common/params.h"

namespace cnnops {

struct FusedStage {
  const char* op;  // the inference op's name, for messages
  Activation act = Activation::None, post = Activation::None;
  const at::Tensor* residual = nullptr;  // null when absent
};

// Checks s.residual against y (shape, dtype, device) and sets p.epilogue.
void set_epilogue(Conv2dParams& p, const FusedStage& s, const at::Tensor& y);

// conv2d_fprop / depthwise_fprop with the stage applied (stage null: the plain op).
at::Tensor conv2d_fprop_staged(const at::Tensor& input, const at::Tensor& weight,
                               const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                               c10::SymIntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                               const FusedStage* stage);
at::Tensor depthwise_fprop_staged(const at::Tensor& input, const at::Tensor& weight,
                                  const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                  c10::SymIntArrayRef padding, at::IntArrayRef dilation,
                                  const FusedStage* stage);

}  // namespace cnnops
