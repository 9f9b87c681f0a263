// The inference ops: a convolution forward with its output stage fused
// (Epilogue in csrc/common/params.h), for cnnops.functional.conv2d_fused and
// cnnops.optimize_for_inference:
//
//   conv2d_fprop_fused(input, weight, bias?, stride, padding[4], dilation, groups,
//                      activation, residual?, post_activation)
//   depthwise_fprop_fused(input, weight, bias?, stride, padding[4], dilation,
//                         activation, residual?, post_activation)
//       = post_activation(activation(conv(input, weight) + bias) + residual)
//
// Arguments as conv2d_fprop / depthwise_fprop; activations are "none", "relu",
// "relu6", "silu", "hardswish", "hardsigmoid", "gelu" (erf) or "gelu_tanh";
// residual has the output's shape, dtype and device (any strides). No
// derivative: the Autograd kernel refuses inputs that need one, by name.
#include <torch/library.h>

#include <string>

#include "autograd_util.h"
#include "op_signatures.h"
#include "checks.h"
#include "fused_stage.h"

namespace cnnops {

void set_epilogue(Conv2dParams& p, const FusedStage& s, const at::Tensor& y) {
  p.epilogue = Epilogue{};
  p.epilogue.act = s.act;
  p.epilogue.post = s.post;
  if (s.residual == nullptr) return;
  const at::Tensor& r = *s.residual;
  TORCH_CHECK_VALUE(r.sizes() == y.sizes(), s.op, ": expected residual to have the output's shape ",
                    to_string(y.sizes()), ", got ", to_string(r.sizes()));
  check_same_dtype_device(r, y, s.op, "residual", "input");
  p.epilogue.residual = r.const_data_ptr();
  copy_strides(p.epilogue.residual_strides, r);
}

namespace {

Activation parse_activation(const std::string& name, const char* op, const char* arg) {
  static const std::pair<const char*, Activation> kNames[] = {
      {"none", Activation::None},           {"relu", Activation::ReLU},
      {"relu6", Activation::ReLU6},         {"silu", Activation::SiLU},
      {"hardswish", Activation::Hardswish}, {"hardsigmoid", Activation::Hardsigmoid},
      {"gelu", Activation::GELU},           {"gelu_tanh", Activation::GELUTanh}};
  for (const auto& [n, a] : kNames)
    if (name == n) return a;
  TORCH_CHECK_VALUE(false, op, ": expected ", arg,
                    " to be one of none, relu, relu6, silu, hardswish, hardsigmoid, gelu, gelu_tanh; got '",
                    name, "'");
}

FusedStage make_stage(const char* op, const std::string& activation,
                      const std::optional<at::Tensor>& residual, const std::string& post_activation) {
  FusedStage s;
  s.op = op;
  s.act = parse_activation(activation, op, "activation");
  s.post = parse_activation(post_activation, op, "post_activation");
  s.residual = residual.has_value() ? &*residual : nullptr;
  return s;
}

at::Tensor conv2d_fprop_fused(const at::Tensor& input, const at::Tensor& weight,
                              const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                              c10::SymIntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                              c10::string_view activation, const std::optional<at::Tensor>& residual,
                              c10::string_view post_activation) {
  const FusedStage s = make_stage("cnnops::conv2d_fprop_fused", std::string(activation), residual,
                                  std::string(post_activation));
  return conv2d_fprop_staged(input, weight, bias, stride, padding, dilation, groups, &s);
}

at::Tensor depthwise_fprop_fused(const at::Tensor& input, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                 c10::SymIntArrayRef padding, at::IntArrayRef dilation,
                                 c10::string_view activation, const std::optional<at::Tensor>& residual,
                                 c10::string_view post_activation) {
  const FusedStage s = make_stage("cnnops::depthwise_fprop_fused", std::string(activation), residual,
                                  std::string(post_activation));
  return depthwise_fprop_staged(input, weight, bias, stride, padding, dilation, &s);
}

// Refuses, naming the argument, a call that would have to record a graph.
void check_no_grad(const char* op, std::initializer_list<std::pair<const char*, const at::Tensor*>> args) {
  if (!at::GradMode::is_enabled()) return;
  for (const auto& [name, t] : args)
    TORCH_CHECK_VALUE(t == nullptr || !t->defined() || !t->requires_grad(), op,
                      ": is an inference op without a derivative, but ", name,
                      " requires grad; call it under torch.no_grad() (or use cnnops.conv2d)");
}

const at::Tensor* opt(const std::optional<at::Tensor>& t) { return t.has_value() ? &*t : nullptr; }

at::Tensor conv2d_fprop_fused_autograd(const at::Tensor& input, const at::Tensor& weight,
                                       const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                       c10::SymIntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                       c10::string_view activation, const std::optional<at::Tensor>& residual,
                                       c10::string_view post_activation) {
  check_no_grad("cnnops::conv2d_fprop_fused",
                {{"input", &input}, {"weight", &weight}, {"bias", opt(bias)}, {"residual", opt(residual)}});
  static const auto op = autograd::typed_op<sig::Conv2dFpropFused>("cnnops::conv2d_fprop_fused");
  at::AutoDispatchBelowADInplaceOrView below;
  return op.call(input, weight, bias, stride, padding, dilation, groups, activation, residual,
                 post_activation);
}

at::Tensor depthwise_fprop_fused_autograd(const at::Tensor& input, const at::Tensor& weight,
                                          const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                          c10::SymIntArrayRef padding, at::IntArrayRef dilation,
                                          c10::string_view activation,
                                          const std::optional<at::Tensor>& residual,
                                          c10::string_view post_activation) {
  check_no_grad("cnnops::depthwise_fprop_fused",
                {{"input", &input}, {"weight", &weight}, {"bias", opt(bias)}, {"residual", opt(residual)}});
  static const auto op = autograd::typed_op<sig::DepthwiseFpropFused>("cnnops::depthwise_fprop_fused");
  at::AutoDispatchBelowADInplaceOrView below;
  return op.call(input, weight, bias, stride, padding, dilation, activation, residual, post_activation);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(cnnops, m) {
  m.def(
      "conv2d_fprop_fused(Tensor input, Tensor weight, Tensor? bias, int[2] stride, SymInt[4] padding, "
      "int[2] dilation, int groups, str activation, Tensor? residual, str post_activation) -> Tensor");
  m.def(
      "depthwise_fprop_fused(Tensor input, Tensor weight, Tensor? bias, int[2] stride, SymInt[4] padding, "
      "int[2] dilation, str activation, Tensor? residual, str post_activation) -> Tensor");
}

TORCH_LIBRARY_IMPL(cnnops, CPU, m) {
  m.impl("conv2d_fprop_fused", &conv2d_fprop_fused);
  m.impl("depthwise_fprop_fused", &depthwise_fprop_fused);
}

#ifdef CNNOPS_WITH_CUDA
TORCH_LIBRARY_IMPL(cnnops, CUDA, m) {
  m.impl("conv2d_fprop_fused", &conv2d_fprop_fused);
  m.impl("depthwise_fprop_fused", &depthwise_fprop_fused);
}
#endif

TORCH_LIBRARY_IMPL(cnnops, Autograd, m) {
  m.impl("conv2d_fprop_fused", &conv2d_fprop_fused_autograd);
  m.impl("depthwise_fprop_fused", &depthwise_fprop_fused_autograd);
}

}  // namespace cnnops
