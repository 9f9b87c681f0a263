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

#include <optional>
#include <vector>

namespace cnnops {
namespace {

using autograd::AutogradContext;
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

class Conv2dFprop : public torch::autograd::Function<Conv2dFprop> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                            c10::SymIntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
    return autograd::conv_forward(ctx, [&] {
      return call_fprop(input, weight, bias, stride, padding, dilation, groups);
    }, input, weight, bias, stride, padding, 2, dilation, groups);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &input = saved[0], &weight = saved[1], &dy = grads[0];
    const ConvConfig cfg = autograd::load_conv_config(ctx);
    at::Tensor dx, dw, db;
    if (dy.defined()) {
      autograd::BelowAutogradUnlessGradMode below;
      NoFilterCacheGuard no_cache(weight.requires_grad());
      if (ctx->needs_input_grad(0))
        dx = call_dgrad(dy, weight, std::nullopt, input.sym_sizes().slice(2), cfg.stride, cfg.pad,
                        cfg.dilation, cfg.groups);
      if (ctx->needs_input_grad(1)) dw = call_wgrad(dy, input, weight.sizes().slice(2), cfg);
      if (autograd::needs_bias_grad(ctx, 2)) db = autograd::call_bias_grad(dy);
    }
    return {dx, dw, db, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// conv2d_dgrad(grad_output, weight, bias, ...): its derivatives are conv2d_fprop of the
// incoming gradient (for grad_output), conv2d_wgrad (for weight) and the bias gradient.
class Conv2dDgrad : public torch::autograd::Function<Conv2dDgrad> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& grad_output, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias, c10::SymIntArrayRef input_size,
                            at::IntArrayRef stride, c10::SymIntArrayRef padding, at::IntArrayRef dilation,
                            int64_t groups) {
    return autograd::conv_forward(ctx, [&] {
      return call_dgrad(grad_output, weight, bias, input_size, stride, padding, dilation, groups);
    }, grad_output, weight, bias, stride, padding, 1, dilation, groups);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &dy = saved[0], &weight = saved[1], &grad = grads[0];
    const ConvConfig cfg = autograd::load_conv_config(ctx);
    at::Tensor d_dy, d_w, d_b;
    if (grad.defined()) {
      autograd::BelowAutogradUnlessGradMode below;
      NoFilterCacheGuard no_cache(weight.requires_grad());
      if (ctx->needs_input_grad(0))
        d_dy = call_fprop(grad, weight, std::nullopt, cfg.stride,
                          autograd::fprop_padding(dy, grad, weight, cfg), cfg.dilation, cfg.groups);
      if (ctx->needs_input_grad(1)) d_w = call_wgrad(dy, grad, weight.sizes().slice(2), cfg);
      if (autograd::needs_bias_grad(ctx, 2)) d_b = autograd::call_bias_grad(grad);
    }
    return {d_dy, d_w, d_b, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

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
  NoFilterCacheGuard training(trains(weight));
  return Conv2dFprop::apply(input, weight, bias, stride, padding, dilation, groups);
}

at::Tensor conv2d_dgrad_autograd(const at::Tensor& grad_output, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias, c10::SymIntArrayRef input_size,
                                 at::IntArrayRef stride, c10::SymIntArrayRef padding,
                                 at::IntArrayRef dilation, int64_t groups) {
  if (!autograd::needs_autograd({&grad_output, &weight, autograd::optional_arg(bias)})) {
    at::AutoDispatchBelowADInplaceOrView below;
    return call_dgrad(grad_output, weight, bias, input_size, stride, padding, dilation, groups);
  }
  NoFilterCacheGuard training(trains(weight));
  return Conv2dDgrad::apply(grad_output, weight, bias, input_size, stride, padding, dilation, groups);
}

}  // namespace

TORCH_LIBRARY_IMPL(cnnops, Autograd, m) {
  m.impl("conv2d_fprop", &conv2d_fprop_autograd);
  m.impl("conv2d_dgrad", &conv2d_dgrad_autograd);
}

}  // namespace cnnops
