// What the C++ autograd kernels (csrc/torch/*_autograd.cpp) share. They exist because
// torch.library.register_autograd wraps every call in Python, a fixed cost per call
// that dominates small layers (batch-1 inference, small models).
//
// Each kernel is a torch::autograd::Function registered for the Autograd dispatch key.
// Its forward runs the op below autograd; its backward calls the other cnnops ops
// through the dispatcher, so that with create_graph their own autograd kernels
// (C++ here, or Python in cnnops/_ops/) record a double backward, while without grad
// mode they run below autograd (BelowAutogradUnlessGradMode).
#pragma once
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>

#include <optional>
#include <vector>

namespace cnnops::autograd {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The typed dispatcher handle of a registered op ("cnnops::conv2d_fprop"); call sites
// keep it in a function-local static, so the schema is looked up once.
template <class Signature>
c10::TypedOperatorHandle<Signature> typed_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

// Whether a call must go through its autograd::Function: grad mode is on and a
// tensor argument requires grad, or one carries a forward-mode tangent. When
// none does, the autograd kernels run the op below autograd directly: apply()
// builds a node, a context and its saved data (a few microseconds) even when
// nothing is recorded, which small layers (batch-1 inference) pay on every call.
inline bool needs_autograd(std::initializer_list<const at::Tensor*> args) {
  const bool grad_mode = at::GradMode::is_enabled();
  for (const at::Tensor* t : args) {
    if (t == nullptr || !t->defined()) continue;
    if ((grad_mode && t->requires_grad()) || t->_fw_grad(/*level=*/0).defined()) return true;
  }
  return false;
}

inline const at::Tensor* optional_arg(const std::optional<at::Tensor>& t) { return t ? &*t : nullptr; }

// In a backward: grad mode is on only under create_graph, where the ops called must
// record their own graph (double backward); otherwise they run below autograd.
class BelowAutogradUnlessGradMode {
 public:
  BelowAutogradUnlessGradMode() {
    if (!at::GradMode::is_enabled()) below_.emplace();
  }

 private:
  std::optional<at::AutoDispatchBelowAutograd> below_;
};

// The hyper-parameters a convolution's backward needs: stride, dilation and the begin
// padding (top, left) of the backward ops; groups where the op has them (else 1).
struct ConvConfig {
  std::vector<int64_t> stride, dilation;
  std::vector<c10::SymInt> pad;  // (top, left)
  int64_t groups = 1;
};

inline ConvConfig load_conv_config(AutogradContext* ctx) {
  return {ctx->saved_data["stride"].toIntVector(),
          ctx->saved_data["dilation"].toIntVector(),
          {ctx->saved_data["pad_top"].toSymInt(), ctx->saved_data["pad_left"].toSymInt()},
          ctx->saved_data["groups"].toInt()};
}

// The forward of a convolution's autograd kernel: `run` (the op) below autograd, then
// what any gradient could need: the op's two tensors a and b, the hyper-parameters and
// whether a bias was given. Of padding, the begin padding is kept: padding[0] (top) and
// padding[left] (left: 2 of (top, bottom, left, right), 1 of (top, left)), read only
// after the op has checked its length.
template <class Run>
at::Tensor conv_forward(AutogradContext* ctx, const Run& run, const at::Tensor& a, const at::Tensor& b,
                        const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                        c10::SymIntArrayRef padding, size_t left, at::IntArrayRef dilation,
                        int64_t groups = 1) {
  at::Tensor y;
  {
    at::AutoDispatchBelowADInplaceOrView below;
    y = run();
  }
  ctx->save_for_backward({a, b});
  ctx->saved_data["stride"] = stride.vec();
  ctx->saved_data["dilation"] = dilation.vec();
  ctx->saved_data["pad_top"] = padding[0];
  ctx->saved_data["pad_left"] = padding[left];
  ctx->saved_data["groups"] = groups;
  ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
  return y;
}

// needs_input_grad counts only the tensor arguments present: an optional bias has an
// index (`index`, after the tensors before it) only when given.
inline bool needs_bias_grad(AutogradContext* ctx, size_t index) {
  return ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(index);
}

// The end padding with which a convolution over `size` inputs (begin padding
// pad_begin) gives `out` outputs (cnnops/_shape.py conv_end_padding): what a backward
// needs to reproduce a grad_output's size with a forward convolution.
inline c10::SymInt conv_end_padding(const c10::SymInt& out, const c10::SymInt& size, int64_t kernel,
                                    const c10::SymInt& pad_begin, int64_t stride, int64_t dilation) {
  return (out - 1) * stride + (dilation * (kernel - 1) + 1) - size - pad_begin;
}

// The forward padding (top, bottom, left, right) that maps `input` onto `out`'s size
// with begin padding cfg.pad, for a kernel of `weight`'s size (cnnops/_ops/_common.py
// fprop_padding).
inline std::vector<c10::SymInt> fprop_padding(const at::Tensor& out, const at::Tensor& input,
                                              const at::Tensor& weight, const ConvConfig& cfg) {
  return {cfg.pad[0],
          conv_end_padding(out.sym_size(2), input.sym_size(2), weight.size(2), cfg.pad[0], cfg.stride[0],
                           cfg.dilation[0]),
          cfg.pad[1],
          conv_end_padding(out.sym_size(3), input.sym_size(3), weight.size(3), cfg.pad[1], cfg.stride[1],
                           cfg.dilation[1])};
}

// cnnops::conv2d_bias_grad, the bias gradient of every convolution family.
inline at::Tensor call_bias_grad(const at::Tensor& dy) {
  static const auto op = typed_op<at::Tensor(const at::Tensor&)>("cnnops::conv2d_bias_grad");
  return op.call(dy);
}

}  // namespace cnnops::autograd
