// The autograd kernels of cnnops::conv2d_fprop and cnnops::conv2d_dgrad (the forward
// of conv_transpose2d), in C++ for the per-call cost (see autograd_util.h).
//
// The family is closed under differentiation: fprop, dgrad and wgrad are each bilinear
// and each one's derivatives are the other two. conv2d_fprop's backward is dgrad,
// wgrad and conv2d_bias_grad; conv2d_dgrad's is fprop, wgrad and conv2d_bias_grad.
// conv2d_wgrad and conv2d_bias_grad, called only in backward, keep their Python
// autograd (cnnops/_ops/conv2d.py), which double backward reaches through the
// dispatcher.
#include <torch/library.h>

#include "autograd_util.h"
#include "op_signatures.h"
#include "filter_cache.h"

#include <array>
#include <optional>
#include <vector>

namespace cnnops {
namespace {

using autograd::ConvConfig;
using autograd::variable_list;

at::Tensor call_fprop(const at::Tensor& input, const at::Tensor& weight,
                      const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                      c10::SymIntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  static const auto op = autograd::typed_op<sig::Conv2dFprop>("cnnops::conv2d_fprop");
  return op.call(input, weight, bias, stride, padding, dilation, groups);
}

at::Tensor call_dgrad(const at::Tensor& dy, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                      c10::SymIntArrayRef input_size, at::IntArrayRef stride, c10::SymIntArrayRef pad,
                      at::IntArrayRef dilation, int64_t groups) {
  static const auto op = autograd::typed_op<sig::Conv2dDgrad>("cnnops::conv2d_dgrad");
  return op.call(dy, weight, bias, input_size, stride, pad, dilation, groups);
}

at::Tensor call_wgrad(const at::Tensor& dy, const at::Tensor& input, at::IntArrayRef kernel_size,
                      const ConvConfig& cfg) {
  static const auto op =
      autograd::typed_op<at::Tensor(const at::Tensor&, const at::Tensor&, at::IntArrayRef, at::IntArrayRef,
                                    c10::SymIntArrayRef, at::IntArrayRef, int64_t)>("cnnops::conv2d_wgrad");
  return op.call(dy, input, kernel_size, cfg.stride, cfg.pad, cfg.dilation, cfg.groups);
}

// conv2d_fprop(input, weight, bias, ...): its derivatives are conv2d_dgrad (for
// input), conv2d_wgrad (for weight) and the bias gradient.
variable_list fprop_backward(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& dy,
                             const ConvConfig& cfg, const std::array<bool, 3>& needs) {
  at::Tensor dx, dw, db;
  autograd::BelowAutogradUnlessGradMode below;
  NoFilterCacheGuard no_cache(weight.requires_grad());
  if (needs[0])
    dx = call_dgrad(dy, weight, std::nullopt, input.sym_sizes().slice(2), cfg.stride, cfg.pad, cfg.dilation,
                    cfg.groups);
  if (needs[1]) dw = call_wgrad(dy, input, weight.sizes().slice(2), cfg);
  if (needs[2]) db = autograd::call_bias_grad(dy);
  return {dx, dw, db};
}

// conv2d_dgrad(grad_output, weight, bias, ...): its derivatives are conv2d_fprop of the
// incoming gradient (for grad_output), conv2d_wgrad (for weight) and the bias gradient.
variable_list dgrad_backward(const at::Tensor& dy, const at::Tensor& weight, const at::Tensor& grad,
                             const ConvConfig& cfg, const std::array<bool, 3>& needs) {
  at::Tensor d_dy, d_w, d_b;
  autograd::BelowAutogradUnlessGradMode below;
  NoFilterCacheGuard no_cache(weight.requires_grad());
  if (needs[0])
    d_dy = call_fprop(grad, weight, std::nullopt, cfg.stride, autograd::fprop_padding(dy, grad, weight, cfg),
                      cfg.dilation, cfg.groups);
  if (needs[1]) d_w = call_wgrad(dy, grad, weight.sizes().slice(2), cfg);
  if (needs[2]) d_b = autograd::call_bias_grad(grad);
  return {d_dy, d_w, d_b};
}

// Whether this call trains `w`: a graph is recorded and w will get a gradient
// (a frozen filter, one that requires no gradient, still uses the cache).
bool trains(const at::Tensor& w) { return at::GradMode::is_enabled() && w.requires_grad(); }

at::Tensor conv2d_fprop_autograd(const at::Tensor& input, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                 c10::SymIntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  if (!autograd::needs_autograd({&input, &weight, autograd::optional_arg(bias)})) {
    at::AutoDispatchBelowADInplaceOrView below;
    return call_fprop(input, weight, bias, stride, padding, dilation, groups);
  }
  autograd::check_no_forward_grad({&input, &weight, autograd::optional_arg(bias)}, "cnnops::conv2d_fprop");
  at::Tensor y;
  {
    NoFilterCacheGuard training(trains(weight));
    at::AutoDispatchBelowADInplaceOrView below;
    y = call_fprop(input, weight, bias, stride, padding, dilation, groups);
  }
  return autograd::record_conv(y, "Conv2dFpropBackward", &fprop_backward, input, weight, bias, stride, padding,
                               2, dilation, groups);
}

at::Tensor conv2d_dgrad_autograd(const at::Tensor& grad_output, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias, c10::SymIntArrayRef input_size,
                                 at::IntArrayRef stride, c10::SymIntArrayRef padding,
                                 at::IntArrayRef dilation, int64_t groups) {
  if (!autograd::needs_autograd({&grad_output, &weight, autograd::optional_arg(bias)})) {
    at::AutoDispatchBelowADInplaceOrView below;
    return call_dgrad(grad_output, weight, bias, input_size, stride, padding, dilation, groups);
  }
  autograd::check_no_forward_grad({&grad_output, &weight, autograd::optional_arg(bias)}, "cnnops::conv2d_dgrad");
  at::Tensor y;
  {
    NoFilterCacheGuard training(trains(weight));
    at::AutoDispatchBelowADInplaceOrView below;
    y = call_dgrad(grad_output, weight, bias, input_size, stride, padding, dilation, groups);
  }
  return autograd::record_conv(y, "Conv2dDgradBackward", &dgrad_backward, grad_output, weight, bias, stride,
                               padding, 1, dilation, groups);
}

}  // namespace

TORCH_LIBRARY_IMPL(cnnops, Autograd, m) {
  m.impl("conv2d_fprop", &conv2d_fprop_autograd);
  m.impl("conv2d_dgrad", &conv2d_dgrad_autograd);
}

}  // namespace cnnops
