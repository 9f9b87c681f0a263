// The autograd kernels of cnnops::max_pool2d_fwd and max_pool2d_values, in C++ for
// the per-call cost (see autograd_util.h): a call that records no graph runs the op
// below autograd. max_pool2d_fwd's backward is max_pool2d_bwd at the saved indices
// (an output, not differentiable); max_pool2d_bwd keeps its Python autograd
// (cnnops/_ops/max_pool2d.py), which double backward reaches through the dispatcher.
// cnnops.max_pool2d calls max_pool2d_values only when no gradient is needed; a call
// of it that needs one gets max_pool2d_fwd's values, with their gradient (without this
// kernel, torch's boxed fallback for ops without autograd also cost about a
// microsecond a call).
#include <torch/library.h>

#include "autograd_util.h"
#include "op_signatures.h"

#include <tuple>
#include <vector>

namespace cnnops {
namespace {

using autograd::AutogradContext;
using autograd::variable_list;

class MaxPool2dFwd : public torch::autograd::Function<MaxPool2dFwd> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& input, at::IntArrayRef kernel_size,
                               at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                               bool ceil_mode) {
    static const auto op = autograd::typed_op<sig::MaxPool2dFwd>("cnnops::max_pool2d_fwd");
    at::Tensor y, ind;
    {
      at::AutoDispatchBelowADInplaceOrView below;
      std::tie(y, ind) = op.call(input, kernel_size, stride, padding, dilation, ceil_mode);
    }
    ctx->save_for_backward({ind});
    ctx->mark_non_differentiable({ind});
    ctx->set_materialize_grads(false);  // no int64 zeros for the indices' (absent) gradient
    ctx->saved_data["input_size"] = input.sym_sizes().slice(2);
    ctx->saved_data["kernel_size"] = kernel_size.vec();
    ctx->saved_data["stride"] = stride.vec();
    // The op above has checked that padding is (top, bottom, left, right).
    ctx->saved_data["pad"] = std::vector<int64_t>{padding[0], padding[2]};
    ctx->saved_data["dilation"] = dilation.vec();
    return {y, ind};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op =
        autograd::typed_op<at::Tensor(const at::Tensor&, const at::Tensor&, c10::SymIntArrayRef,
                                      at::IntArrayRef, at::IntArrayRef, at::IntArrayRef, at::IntArrayRef)>(
            "cnnops::max_pool2d_bwd");
    const at::Tensor& dy = grads[0];
    at::Tensor dx;
    if (ctx->needs_input_grad(0) && dy.defined()) {
      const at::Tensor indices = ctx->get_saved_variables()[0];
      autograd::BelowAutogradUnlessGradMode below;
      dx = op.call(dy, indices, ctx->saved_data["input_size"].toSymIntVector(),
                   ctx->saved_data["kernel_size"].toIntVector(), ctx->saved_data["stride"].toIntVector(),
                   ctx->saved_data["pad"].toIntVector(), ctx->saved_data["dilation"].toIntVector());
    }
    return {dx, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

std::tuple<at::Tensor, at::Tensor> max_pool2d_fwd_autograd(const at::Tensor& input,
                                                           at::IntArrayRef kernel_size,
                                                           at::IntArrayRef stride, at::IntArrayRef padding,
                                                           at::IntArrayRef dilation, bool ceil_mode) {
  if (!autograd::needs_autograd({&input})) {
    static const auto op = autograd::typed_op<sig::MaxPool2dFwd>("cnnops::max_pool2d_fwd");
    at::AutoDispatchBelowADInplaceOrView below;
    return op.call(input, kernel_size, stride, padding, dilation, ceil_mode);
  }
  variable_list out = MaxPool2dFwd::apply(input, kernel_size, stride, padding, dilation, ceil_mode);
  return {out[0], out[1]};
}

at::Tensor max_pool2d_values_autograd(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                      at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
  if (autograd::needs_autograd({&input}))
    return MaxPool2dFwd::apply(input, kernel_size, stride, padding, dilation, ceil_mode)[0];
  static const auto op = autograd::typed_op<sig::MaxPool2dValues>("cnnops::max_pool2d_values");
  at::AutoDispatchBelowADInplaceOrView below;
  return op.call(input, kernel_size, stride, padding, dilation, ceil_mode);
}

}  // namespace

TORCH_LIBRARY_IMPL(cnnops, Autograd, m) {
  m.impl("max_pool2d_fwd", &max_pool2d_fwd_autograd);
  m.impl("max_pool2d_values", &max_pool2d_values_autograd);
}

}  // namespace cnnops
