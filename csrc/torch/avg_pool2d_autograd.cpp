// The autograd kernels of cnnops::avg_pool2d_fwd and cnnops::adaptive_avg_pool2d_fwd,
// in C++ for the per-call cost (see autograd_util.h). Their backward is the matching
// *_bwd op, which needs only sizes (not the input: nothing is saved but the
// arguments); the *_bwd ops keep their Python autograd (cnnops/_ops/avg_pool2d.py):
// they are linear in grad_output with the forward as adjoint, which double backward
// reaches through the dispatcher.
#include <torch/library.h>

#include <optional>
#include <vector>

#include "autograd_util.h"

namespace cnnops {
namespace {

using autograd::AutogradContext;
using autograd::variable_list;

// grad_input takes the input's layout (torch's rule); the backward ops need to be told.
bool is_channels_last(const at::Tensor& t) {
  return t.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
}

class AvgPool2dFwd : public torch::autograd::Function<AvgPool2dFwd> {
 public:
  // The op below autograd.
  static at::Tensor run(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                        at::IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                        std::optional<int64_t> divisor_override) {
    static const auto op =
        autograd::typed_op<at::Tensor(const at::Tensor&, at::IntArrayRef, at::IntArrayRef, at::IntArrayRef,
                                      bool, bool, std::optional<int64_t>)>("cnnops::avg_pool2d_fwd");
    at::AutoDispatchBelowADInplaceOrView below;
    return op.call(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override);
  }

  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, at::IntArrayRef kernel_size,
                            at::IntArrayRef stride, at::IntArrayRef padding, bool ceil_mode,
                            bool count_include_pad, std::optional<int64_t> divisor_override) {
    const at::Tensor y =
        run(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override);
    ctx->saved_data["input_size"] = input.sym_sizes().slice(2);
    ctx->saved_data["kernel_size"] = kernel_size.vec();
    ctx->saved_data["stride"] = stride.vec();
    ctx->saved_data["padding"] = padding.vec();
    ctx->saved_data["ceil_mode"] = ceil_mode;
    ctx->saved_data["count_include_pad"] = count_include_pad;
    ctx->saved_data["divisor_override"] = divisor_override;
    ctx->saved_data["channels_last"] = is_channels_last(input);
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op = autograd::typed_op<at::Tensor(
        const at::Tensor&, c10::SymIntArrayRef, at::IntArrayRef, at::IntArrayRef, at::IntArrayRef, bool, bool,
        std::optional<int64_t>, bool)>("cnnops::avg_pool2d_bwd");
    at::Tensor dx;
    if (ctx->needs_input_grad(0)) {
      autograd::BelowAutogradUnlessGradMode below;
      auto& d = ctx->saved_data;
      dx = op.call(grads[0], d["input_size"].toSymIntVector(), d["kernel_size"].toIntVector(),
                   d["stride"].toIntVector(), d["padding"].toIntVector(), d["ceil_mode"].toBool(),
                   d["count_include_pad"].toBool(), d["divisor_override"].toOptional<int64_t>(),
                   d["channels_last"].toBool());
    }
    return {dx, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

class AdaptiveAvgPool2dFwd : public torch::autograd::Function<AdaptiveAvgPool2dFwd> {
 public:
  // The op below autograd.
  static at::Tensor run(const at::Tensor& input, c10::SymIntArrayRef output_size) {
    static const auto op = autograd::typed_op<at::Tensor(const at::Tensor&, c10::SymIntArrayRef)>(
        "cnnops::adaptive_avg_pool2d_fwd");
    at::AutoDispatchBelowADInplaceOrView below;
    return op.call(input, output_size);
  }

  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, c10::SymIntArrayRef output_size) {
    const at::Tensor y = run(input, output_size);
    ctx->saved_data["input_size"] = input.sym_sizes().slice(2);
    ctx->saved_data["channels_last"] = is_channels_last(input);
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op = autograd::typed_op<at::Tensor(const at::Tensor&, c10::SymIntArrayRef, bool)>(
        "cnnops::adaptive_avg_pool2d_bwd");
    at::Tensor dx;
    if (ctx->needs_input_grad(0)) {
      autograd::BelowAutogradUnlessGradMode below;
      dx = op.call(grads[0], ctx->saved_data["input_size"].toSymIntVector(),
                   ctx->saved_data["channels_last"].toBool());
    }
    return {dx, at::Tensor()};
  }
};

at::Tensor avg_pool2d_fwd_autograd(const at::Tensor& input, at::IntArrayRef kernel_size,
                                   at::IntArrayRef stride, at::IntArrayRef padding, bool ceil_mode,
                                   bool count_include_pad, std::optional<int64_t> divisor_override) {
  if (!autograd::needs_autograd({&input}))
    return AvgPool2dFwd::run(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                             divisor_override);
  return AvgPool2dFwd::apply(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                             divisor_override);
}

at::Tensor adaptive_avg_pool2d_fwd_autograd(const at::Tensor& input, c10::SymIntArrayRef output_size) {
  if (!autograd::needs_autograd({&input})) return AdaptiveAvgPool2dFwd::run(input, output_size);
  return AdaptiveAvgPool2dFwd::apply(input, output_size);
}

}  // namespace

TORCH_LIBRARY_IMPL(cnnops, Autograd, m) {
  m.impl("avg_pool2d_fwd", &avg_pool2d_fwd_autograd);
  m.impl("adaptive_avg_pool2d_fwd", &adaptive_avg_pool2d_fwd_autograd);
}

}  // namespace cnnops
