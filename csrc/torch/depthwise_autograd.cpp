// The autograd kernel of cnnops::depthwise_fprop, in C++ (the other ops'
// autograd is registered in Python, cnnops/_ops/). It is in C++ because
// torch.library.register_autograd wraps every call in Python, a fixed cost per
// call that dominates small depthwise layers (MobileNet / Xception blocks).
//
// The backward: depthwise_backward when both gradients are needed (one pass
// over grad_output), else depthwise_dgrad or depthwise_wgrad, and
// conv2d_bias_grad for the bias. They are called through the dispatcher, so
// with create_graph their own autograd kernels (cnnops/_ops/depthwise.py)
// record a double backward; without it (grad mode off) they run below autograd.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <optional>
#include <tuple>

namespace cnnops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

c10::TypedOperatorHandle<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                    at::IntArrayRef, c10::SymIntArrayRef, at::IntArrayRef)>
fprop_op() {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("cnnops::depthwise_fprop", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                            at::IntArrayRef, c10::SymIntArrayRef, at::IntArrayRef)>();
  return op;
}

std::tuple<at::Tensor, at::Tensor> call_backward(const at::Tensor& dy, const at::Tensor& x,
                                                 const at::Tensor& w, at::IntArrayRef stride,
                                                 c10::SymIntArrayRef pad, at::IntArrayRef dilation) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("cnnops::depthwise_backward", "")
          .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                    at::IntArrayRef, c10::SymIntArrayRef, at::IntArrayRef)>();
  return op.call(dy, x, w, stride, pad, dilation);
}

at::Tensor call_dgrad(const at::Tensor& dy, const at::Tensor& w, int64_t in_channels,
                      c10::SymIntArrayRef input_size, at::IntArrayRef stride, c10::SymIntArrayRef pad,
                      at::IntArrayRef dilation) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("cnnops::depthwise_dgrad", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, int64_t, c10::SymIntArrayRef,
                            at::IntArrayRef, c10::SymIntArrayRef, at::IntArrayRef)>();
  return op.call(dy, w, in_channels, input_size, stride, pad, dilation);
}

at::Tensor call_wgrad(const at::Tensor& dy, const at::Tensor& x, at::IntArrayRef kernel_size,
                      at::IntArrayRef stride, c10::SymIntArrayRef pad, at::IntArrayRef dilation) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("cnnops::depthwise_wgrad", "")
                             .typed<at::Tensor(const at::Tensor&, const at::Tensor&, at::IntArrayRef,
                                               at::IntArrayRef, c10::SymIntArrayRef, at::IntArrayRef)>();
  return op.call(dy, x, kernel_size, stride, pad, dilation);
}

at::Tensor call_bias_grad(const at::Tensor& dy) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("cnnops::conv2d_bias_grad", "")
                             .typed<at::Tensor(const at::Tensor&)>();
  return op.call(dy);
}

class DepthwiseFprop : public torch::autograd::Function<DepthwiseFprop> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                            c10::SymIntArrayRef padding, at::IntArrayRef dilation) {
    at::Tensor y;
    {
      at::AutoDispatchBelowADInplaceOrView below;
      y = fprop_op().call(input, weight, bias, stride, padding, dilation);
    }
    ctx->save_for_backward({input, weight});
    ctx->saved_data["stride"] = stride.vec();
    ctx->saved_data["dilation"] = dilation.vec();
    // The backward ops take the begin padding (top, left) of (top, bottom, left,
    // right); the forward above has checked there are 4.
    ctx->saved_data["pad_top"] = padding[0];
    ctx->saved_data["pad_left"] = padding[2];
    // needs_input_grad counts the tensor arguments present: the bias is the third if any.
    ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &input = saved[0], &weight = saved[1], &dy = grads[0];
    const std::vector<int64_t> stride = ctx->saved_data["stride"].toIntVector();
    const std::vector<int64_t> dilation = ctx->saved_data["dilation"].toIntVector();
    const std::vector<c10::SymInt> pad = {ctx->saved_data["pad_top"].toSymInt(),
                                          ctx->saved_data["pad_left"].toSymInt()};
    const bool need_x = ctx->needs_input_grad(0), need_w = ctx->needs_input_grad(1),
               need_b = ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2);
    at::Tensor dx, dw, db;
    if (dy.defined()) {
      std::optional<at::AutoDispatchBelowAutograd> below;
      if (!at::GradMode::is_enabled()) below.emplace();  // no double backward to record
      if (need_x && need_w) {
        std::tie(dx, dw) = call_backward(dy, input, weight, stride, pad, dilation);
      } else if (need_x) {
        dx = call_dgrad(dy, weight, input.size(1), input.sym_sizes().slice(2), stride, pad, dilation);
      } else if (need_w) {
        dw = call_wgrad(dy, input, weight.sizes().slice(2), stride, pad, dilation);
      }
      if (need_b) db = call_bias_grad(dy);
    }
    return {dx, dw, db, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor depthwise_fprop_autograd(const at::Tensor& input, const at::Tensor& weight,
                                    const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                    c10::SymIntArrayRef padding, at::IntArrayRef dilation) {
  return DepthwiseFprop::apply(input, weight, bias, stride, padding, dilation);
}

}  // namespace

TORCH_LIBRARY_IMPL(cnnops, Autograd, m) { m.impl("depthwise_fprop", &depthwise_fprop_autograd); }

}  // namespace cnnops
