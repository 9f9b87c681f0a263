// The autograd kernel of cnnops::depthwise_fprop, in C++ for the per-call cost that
// dominates small depthwise layers (MobileNet / Xception blocks); see autograd_util.h.
//
// The backward: depthwise_backward when both gradients are needed (one pass
// over grad_output), else depthwise_dgrad or depthwise_wgrad, and
// conv2d_bias_grad for the bias. They are called through the dispatcher, so
// with create_graph their own autograd kernels (cnnops/_ops/depthwise.py)
// record a double backward; without it (grad mode off) they run below autograd.
#include <torch/library.h>

#include "autograd_util.h"
#include "op_signatures.h"

#include <array>
#include <optional>
#include <tuple>

namespace cnnops {
namespace {

using autograd::ConvConfig;
using autograd::variable_list;

at::Tensor call_fprop(const at::Tensor& input, const at::Tensor& weight,
                      const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                      c10::SymIntArrayRef padding, at::IntArrayRef dilation) {
  static const auto op = autograd::typed_op<sig::DepthwiseFprop>("cnnops::depthwise_fprop");
  return op.call(input, weight, bias, stride, padding, dilation);
}

std::tuple<at::Tensor, at::Tensor> call_backward(const at::Tensor& dy, const at::Tensor& x,
                                                 const at::Tensor& w, const ConvConfig& cfg) {
  static const auto op = autograd::typed_op<std::tuple<at::Tensor, at::Tensor>(
      const at::Tensor&, const at::Tensor&, const at::Tensor&, at::IntArrayRef, c10::SymIntArrayRef,
      at::IntArrayRef)>("cnnops::depthwise_backward");
  return op.call(dy, x, w, cfg.stride, cfg.pad, cfg.dilation);
}

at::Tensor call_dgrad(const at::Tensor& dy, const at::Tensor& w, int64_t in_channels,
                      c10::SymIntArrayRef input_size, const ConvConfig& cfg) {
  static const auto op =
      autograd::typed_op<at::Tensor(const at::Tensor&, const at::Tensor&, int64_t, c10::SymIntArrayRef,
                                    at::IntArrayRef, c10::SymIntArrayRef, at::IntArrayRef)>(
          "cnnops::depthwise_dgrad");
  return op.call(dy, w, in_channels, input_size, cfg.stride, cfg.pad, cfg.dilation);
}

at::Tensor call_wgrad(const at::Tensor& dy, const at::Tensor& x, at::IntArrayRef kernel_size,
                      const ConvConfig& cfg) {
  static const auto op =
      autograd::typed_op<at::Tensor(const at::Tensor&, const at::Tensor&, at::IntArrayRef, at::IntArrayRef,
                                    c10::SymIntArrayRef, at::IntArrayRef)>("cnnops::depthwise_wgrad");
  return op.call(dy, x, kernel_size, cfg.stride, cfg.pad, cfg.dilation);
}

variable_list fprop_backward(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& dy,
                             const ConvConfig& cfg, const std::array<bool, 3>& needs) {
  at::Tensor dx, dw, db;
  autograd::BelowAutogradUnlessGradMode below;
  if (needs[0] && needs[1]) {
    std::tie(dx, dw) = call_backward(dy, input, weight, cfg);
  } else if (needs[0]) {
    dx = call_dgrad(dy, weight, input.size(1), input.sym_sizes().slice(2), cfg);
  } else if (needs[1]) {
    dw = call_wgrad(dy, input, weight.sizes().slice(2), cfg);
  }
  if (needs[2]) db = autograd::call_bias_grad(dy);
  return {dx, dw, db};
}

at::Tensor depthwise_fprop_autograd(const at::Tensor& input, const at::Tensor& weight,
                                    const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                    c10::SymIntArrayRef padding, at::IntArrayRef dilation) {
  if (!autograd::needs_autograd({&input, &weight, autograd::optional_arg(bias)})) {
    at::AutoDispatchBelowADInplaceOrView below;
    return call_fprop(input, weight, bias, stride, padding, dilation);
  }
  autograd::check_no_forward_grad({&input, &weight, autograd::optional_arg(bias)}, "cnnops::depthwise_fprop");
  at::Tensor y;
  {
    at::AutoDispatchBelowADInplaceOrView below;
    y = call_fprop(input, weight, bias, stride, padding, dilation);
  }
  return autograd::record_conv(y, "DepthwiseFpropBackward", &fprop_backward, input, weight, bias, stride, padding,
                               2, dilation);
}

}  // namespace

TORCH_LIBRARY_IMPL(cnnops, Autograd, m) { m.impl("depthwise_fprop", &depthwise_fprop_autograd); }

}  // namespace cnnops
