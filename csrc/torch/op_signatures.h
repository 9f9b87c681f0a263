// The C++ signatures of the cnnops ops that C++ code calls through typed dispatcher
// handles (autograd::typed_op): the autograd kernels (*_autograd.cpp, fused_ops.cpp)
// and the direct calls (direct_calls.cpp) name an op's signature here, once, when more
// than one file calls it. Each must match the op's schema in its TORCH_LIBRARY block
// (*_ops.cpp): Tensor? is const std::optional<at::Tensor>&, int[] at::IntArrayRef,
// SymInt[] c10::SymIntArrayRef, str c10::string_view.
#pragma once
#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

namespace cnnops::sig {

using OptTensor = std::optional<at::Tensor>;

// conv2d_fprop(input, weight, bias?, stride, padding[4], dilation, groups)
using Conv2dFprop = at::Tensor(const at::Tensor&, const at::Tensor&, const OptTensor&, at::IntArrayRef,
                               c10::SymIntArrayRef, at::IntArrayRef, int64_t);
// conv2d_dgrad(grad_output, weight, bias?, input_size, stride, padding[2], dilation, groups)
using Conv2dDgrad = at::Tensor(const at::Tensor&, const at::Tensor&, const OptTensor&, c10::SymIntArrayRef,
                               at::IntArrayRef, c10::SymIntArrayRef, at::IntArrayRef, int64_t);
// depthwise_fprop(input, weight, bias?, stride, padding[4], dilation)
using DepthwiseFprop = at::Tensor(const at::Tensor&, const at::Tensor&, const OptTensor&, at::IntArrayRef,
                                  c10::SymIntArrayRef, at::IntArrayRef);
// conv2d_fprop_fused(conv2d_fprop's arguments, activation, residual?, post_activation)
using Conv2dFpropFused = at::Tensor(const at::Tensor&, const at::Tensor&, const OptTensor&, at::IntArrayRef,
                                    c10::SymIntArrayRef, at::IntArrayRef, int64_t, c10::string_view,
                                    const OptTensor&, c10::string_view);
// depthwise_fprop_fused(depthwise_fprop's arguments, activation, residual?, post_activation)
using DepthwiseFpropFused = at::Tensor(const at::Tensor&, const at::Tensor&, const OptTensor&, at::IntArrayRef,
                                       c10::SymIntArrayRef, at::IntArrayRef, c10::string_view, const OptTensor&,
                                       c10::string_view);
// max_pool2d_fwd / max_pool2d_values(input, kernel_size, stride, padding[4], dilation, ceil_mode)
using MaxPool2dFwd = std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, at::IntArrayRef, at::IntArrayRef,
                                                        at::IntArrayRef, at::IntArrayRef, bool);
using MaxPool2dValues = at::Tensor(const at::Tensor&, at::IntArrayRef, at::IntArrayRef, at::IntArrayRef,
                                   at::IntArrayRef, bool);

}  // namespace cnnops::sig
