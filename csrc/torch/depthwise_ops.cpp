// Depthwise convolution ops (groups == C, filter (K = C*M, 1, R, S)): argument
// checks, allocation, Conv2dParams, dispatch to the CPU kernels or (when built
// with CUDA) the CUDA launchers. Same argument
// conventions as the conv2d family (csrc/torch/conv2d_ops.cpp) without groups:
//
//   depthwise_fprop(input, weight, bias?, stride, padding[4], dilation)
//       padding = (top, bottom, left, right); bottom/right may be negative.
//   depthwise_dgrad(grad_output, weight, input_size[2], stride, padding[2], dilation)
//   depthwise_wgrad(grad_output, input, kernel_size[2], stride, padding[2], dilation)
//   depthwise_backward(grad_output, input, weight, stride, padding[2], dilation)
//       -> (grad_input, grad_weight): both, in one pass over grad_output on the CPU
//       where a fused kernel applies (the same values as the two ops above).
// The bias gradient is conv2d_bias_grad.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <optional>

#include "../common/shape.h"
#include "../cpu/depthwise/depthwise.h"
#include "checks.h"
#include "fused_stage.h"

#ifdef CNNOPS_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include "../cuda/depthwise/depthwise_cuda.h"
#include "../cuda/epilogue/epilogue_cuda.h"
#endif

namespace cnnops {
namespace {

enum class DwKernel { Fprop, Dgrad, Wgrad };

// Runs one depthwise kernel on `like`'s device (the CPU or, when built with
// CUDA, the current stream of its GPU).
void dw_launch(DwKernel kernel, const Conv2dParams& p, const at::Tensor& like) {
#ifdef CNNOPS_WITH_CUDA
  if (like.is_cuda()) {
    c10::cuda::CUDAGuard guard(like.device());
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
    cudaError_t err = cudaSuccess;
    if (kernel == DwKernel::Fprop) err = cuda::depthwise_fprop(p, stream);
    if (kernel == DwKernel::Fprop && err == cudaSuccess) err = cuda::apply_epilogue(p, stream);
    if (kernel == DwKernel::Dgrad) err = cuda::depthwise_dgrad(p, stream);
    if (kernel == DwKernel::Wgrad) err = cuda::depthwise_wgrad(p, stream);
    check_cuda_launch(err);
    return;
  }
#endif
  if (kernel == DwKernel::Fprop) cpu::depthwise_fprop(p);
  if (kernel == DwKernel::Dgrad) cpu::depthwise_dgrad(p);
  if (kernel == DwKernel::Wgrad) cpu::depthwise_wgrad(p);
}

void dw_check_hyper(const char* op, at::IntArrayRef stride, at::IntArrayRef dilation) {
  check_list(stride, 2, 1, op, "stride", "positive");
  check_list(dilation, 2, 1, op, "dilation", "positive");
}

// weight (K, 1, R, S) with K a multiple of C.
void dw_check_weight(const at::Tensor& weight, int64_t C, const char* op) {
  check_rank(weight, 4, op, "weight", "in_channels * depth_multiplier, 1, kH, kW");
  TORCH_CHECK_VALUE(weight.size(0) > 0 && weight.size(2) > 0 && weight.size(3) > 0, op,
                    ": expected weight to have non-zero sizes, got shape ", to_string(weight.sizes()));
  TORCH_CHECK_VALUE(weight.size(1) == 1 && weight.size(0) % C == 0, op, ": expected weight of shape (", C,
                    " * depth_multiplier, 1, kH, kW) for ", C, " channels, got shape ",
                    to_string(weight.sizes()));
}

}  // namespace

at::Tensor depthwise_fprop_staged(const at::Tensor& input, const at::Tensor& weight,
                                  const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                  c10::SymIntArrayRef padding_sym, at::IntArrayRef dilation,
                                  const FusedStage* stage) {
  const char* op = stage != nullptr ? stage->op : "cnnops::depthwise_fprop";
  check_rank(input, 4, op, "input", "N, C, H, W");
  check_float_tensor(input, op, "input");
  check_device(input, op, "input");
  check_nonempty_feature_dims(input, op, "input");
  dw_check_weight(weight, input.size(1), op);
  check_same_dtype_device(weight, input, op, "weight", "input");
  dw_check_hyper(op, stride, dilation);
  const std::vector<int64_t> pad = concrete(padding_sym, op, "padding");
  TORCH_CHECK_VALUE(pad.size() == 4, op,
                    ": expected padding to have 4 elements (top, bottom, left, right), got ", to_string(pad));
  TORCH_CHECK_VALUE(pad[0] >= 0 && pad[2] >= 0, op,
                    ": expected the top and left padding to be non-negative, got ", to_string(pad));
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t K = weight.size(0), R = weight.size(2), S = weight.size(3);
  if (bias.has_value()) {
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == K, op, ": expected bias to be 1-D with ", K,
                      " elements, got shape ", to_string(bias->sizes()));
    check_same_dtype_device(*bias, input, op, "bias", "input");
  }
  const int64_t eh = effective_kernel(R, dilation[0]), ew = effective_kernel(S, dilation[1]);
  TORCH_CHECK_VALUE(H + pad[0] + pad[1] >= eh && W + pad[2] + pad[3] >= ew, op, ": the dilated kernel (", eh,
                    " x ", ew, ") is larger than the padded input (", H + pad[0] + pad[1], " x ",
                    W + pad[2] + pad[3], "); expected the padded input to be at least the kernel size");
  const int64_t P = conv_out_size(H, R, pad[0], pad[1], stride[0], dilation[0]);
  const int64_t Q = conv_out_size(W, S, pad[2], pad[3], stride[1], dilation[1]);
  checked_numel({N, K, P, Q}, op);
  at::Tensor y = at::empty({N, K, P, Q},
                           input.options().memory_format(output_memory_format(input, weight, input.size(0))));
  if (N == 0) return y;
  at::Tensor bias_c = bias.has_value() ? bias->contiguous() : at::Tensor();
  Conv2dParams p = conv_params(stride, pad[0], pad[2], dilation, C, input);
  p.x = const_cast<void*>(input.const_data_ptr());
  p.w = const_cast<void*>(weight.const_data_ptr());
  p.y = y.mutable_data_ptr();
  p.bias = bias_c.defined() ? bias_c.const_data_ptr() : nullptr;
  p.N = N;
  p.C = C;
  p.H = H;
  p.W = W;
  p.K = K;
  p.R = R;
  p.S = S;
  p.P = P;
  p.Q = Q;
  copy_strides(p.x_strides, input);
  copy_strides(p.w_strides, weight);
  copy_strides(p.y_strides, y);
  if (stage != nullptr) set_epilogue(p, *stage, y);
  dw_launch(DwKernel::Fprop, p, input);
  return y;
}

namespace {

at::Tensor depthwise_fprop(const at::Tensor& input, const at::Tensor& weight,
                           const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                           c10::SymIntArrayRef padding_sym, at::IntArrayRef dilation) {
  return depthwise_fprop_staged(input, weight, bias, stride, padding_sym, dilation, nullptr);
}

// One gradient pass, checked and allocated: its output and its kernel's
// params; `empty` when there is nothing to compute (batch 0).
struct DwPass {
  at::Tensor out;
  Conv2dParams p;
  bool empty;
};

DwPass dgrad_pass(const char* op, const at::Tensor& grad_output, const at::Tensor& weight,
                  int64_t in_channels, c10::SymIntArrayRef input_size_sym, at::IntArrayRef stride,
                  c10::SymIntArrayRef padding_sym, at::IntArrayRef dilation) {
  check_rank(grad_output, 4, op, "grad_output", "N, K, P, Q");
  check_float_tensor(grad_output, op, "grad_output");
  check_device(grad_output, op, "grad_output");
  check_nonempty_feature_dims(grad_output, op, "grad_output");
  TORCH_CHECK_VALUE(in_channels > 0, op, ": expected in_channels to be positive, got ", in_channels);
  dw_check_weight(weight, in_channels, op);
  check_same_dtype_device(weight, grad_output, op, "weight", "grad_output");
  dw_check_hyper(op, stride, dilation);
  const std::vector<int64_t> size = concrete(input_size_sym, op, "input_size");
  const std::vector<int64_t> pad = concrete(padding_sym, op, "padding");
  check_list(size, 2, 1, op, "input_size", "positive (H, W)");
  check_list(pad, 2, 0, op, "padding", "non-negative (top, left)");
  const int64_t N = grad_output.size(0), K = grad_output.size(1), C = in_channels;
  TORCH_CHECK_VALUE(weight.size(0) == K, op,
                    ": expected grad_output to have weight.size(0) = ", weight.size(0), " channels, got ", K);
  checked_numel({N, C, size[0], size[1]}, op);
  at::Tensor dx = at::empty(
      {N, C, size[0], size[1]},
      grad_output.options().memory_format(output_memory_format(grad_output, weight, grad_output.size(0))));
  Conv2dParams p = conv_params(stride, pad[0], pad[1], dilation, C, grad_output);
  p.x = dx.mutable_data_ptr();
  p.w = const_cast<void*>(weight.const_data_ptr());
  p.y = const_cast<void*>(grad_output.const_data_ptr());
  p.N = N;
  p.C = C;
  p.H = size[0];
  p.W = size[1];
  p.K = K;
  p.R = weight.size(2);
  p.S = weight.size(3);
  p.P = grad_output.size(2);
  p.Q = grad_output.size(3);
  copy_strides(p.x_strides, dx);
  copy_strides(p.w_strides, weight);
  copy_strides(p.y_strides, grad_output);
  return {dx, p, N == 0};
}

DwPass wgrad_pass(const char* op, const at::Tensor& grad_output, const at::Tensor& input,
                  at::IntArrayRef kernel_size, at::IntArrayRef stride, c10::SymIntArrayRef padding_sym,
                  at::IntArrayRef dilation) {
  check_rank(grad_output, 4, op, "grad_output", "N, K, P, Q");
  check_rank(input, 4, op, "input", "N, C, H, W");
  check_float_tensor(input, op, "input");
  check_device(input, op, "input");
  check_same_dtype_device(grad_output, input, op, "grad_output", "input");
  dw_check_hyper(op, stride, dilation);
  check_list(kernel_size, 2, 1, op, "kernel_size", "positive");
  const std::vector<int64_t> pad = concrete(padding_sym, op, "padding");
  check_list(pad, 2, 0, op, "padding", "non-negative (top, left)");
  check_nonempty_feature_dims(input, op, "input");
  check_nonempty_feature_dims(grad_output, op, "grad_output");
  TORCH_CHECK_VALUE(grad_output.size(0) == input.size(0), op,
                    ": expected grad_output and input to have the same batch size, got ", grad_output.size(0),
                    " and ", input.size(0));
  const int64_t N = input.size(0), C = input.size(1), K = grad_output.size(1);
  TORCH_CHECK_VALUE(K % C == 0, op, ": expected grad_output channels (", K,
                    ") to be a multiple of the input channels (", C, ")");
  const int64_t R = kernel_size[0], S = kernel_size[1];
  at::Tensor dw = at::empty(
      {K, 1, R, S}, input.options().memory_format(output_memory_format(input, grad_output, input.size(0))));
  if (N == 0) dw.zero_();
  Conv2dParams p = conv_params(stride, pad[0], pad[1], dilation, C, input);
  p.x = const_cast<void*>(input.const_data_ptr());
  p.w = dw.mutable_data_ptr();
  p.y = const_cast<void*>(grad_output.const_data_ptr());
  p.N = N;
  p.C = C;
  p.H = input.size(2);
  p.W = input.size(3);
  p.K = K;
  p.R = R;
  p.S = S;
  p.P = grad_output.size(2);
  p.Q = grad_output.size(3);
  copy_strides(p.x_strides, input);
  copy_strides(p.w_strides, dw);
  copy_strides(p.y_strides, grad_output);
  return {dw, p, N == 0};
}

at::Tensor depthwise_dgrad(const at::Tensor& grad_output, const at::Tensor& weight, int64_t in_channels,
                           c10::SymIntArrayRef input_size_sym, at::IntArrayRef stride,
                           c10::SymIntArrayRef padding_sym, at::IntArrayRef dilation) {
  DwPass d = dgrad_pass("cnnops::depthwise_dgrad", grad_output, weight, in_channels, input_size_sym, stride,
                        padding_sym, dilation);
  if (!d.empty) dw_launch(DwKernel::Dgrad, d.p, grad_output);
  return d.out;
}

at::Tensor depthwise_wgrad(const at::Tensor& grad_output, const at::Tensor& input,
                           at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           c10::SymIntArrayRef padding_sym, at::IntArrayRef dilation) {
  DwPass w =
      wgrad_pass("cnnops::depthwise_wgrad", grad_output, input, kernel_size, stride, padding_sym, dilation);
  if (!w.empty) dw_launch(DwKernel::Wgrad, w.p, input);
  return w.out;
}

// Both gradients; on the CPU in one pass over grad_output where a fused kernel applies.
std::tuple<at::Tensor, at::Tensor> depthwise_backward(const at::Tensor& grad_output, const at::Tensor& input,
                                                      const at::Tensor& weight, at::IntArrayRef stride,
                                                      c10::SymIntArrayRef padding_sym,
                                                      at::IntArrayRef dilation) {
  const char* op = "cnnops::depthwise_backward";
  check_rank(input, 4, op, "input", "N, C, H, W");
  check_rank(weight, 4, op, "weight", "in_channels * depth_multiplier, 1, kH, kW");
  DwPass d = dgrad_pass(op, grad_output, weight, input.size(1), input.sym_sizes().slice(2), stride,
                        padding_sym, dilation);
  DwPass w =
      wgrad_pass(op, grad_output, input, {weight.size(2), weight.size(3)}, stride, padding_sym, dilation);
  if (d.empty) return {d.out, w.out};
  if (input.device().is_cpu()) {
    cpu::depthwise_backward(d.p, w.p);
  } else {
    dw_launch(DwKernel::Dgrad, d.p, grad_output);
    dw_launch(DwKernel::Wgrad, w.p, input);
  }
  return {d.out, w.out};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(cnnops, m) {
  m.def(
      "depthwise_fprop(Tensor input, Tensor weight, Tensor? bias, int[2] stride, "
      "SymInt[4] padding, int[2] dilation) -> Tensor");
  m.def(
      "depthwise_dgrad(Tensor grad_output, Tensor weight, int in_channels, "
      "SymInt[2] input_size, int[2] stride, SymInt[2] padding, int[2] dilation) -> Tensor");
  m.def(
      "depthwise_wgrad(Tensor grad_output, Tensor input, int[2] kernel_size, int[2] stride, "
      "SymInt[2] padding, int[2] dilation) -> Tensor");
  m.def(
      "depthwise_backward(Tensor grad_output, Tensor input, Tensor weight, int[2] stride, "
      "SymInt[2] padding, int[2] dilation) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(cnnops, CPU, m) {
  m.impl("depthwise_fprop", &depthwise_fprop);
  m.impl("depthwise_dgrad", &depthwise_dgrad);
  m.impl("depthwise_wgrad", &depthwise_wgrad);
  m.impl("depthwise_backward", &depthwise_backward);
}

#ifdef CNNOPS_WITH_CUDA
TORCH_LIBRARY_IMPL(cnnops, CUDA, m) {
  m.impl("depthwise_fprop", &depthwise_fprop);
  m.impl("depthwise_dgrad", &depthwise_dgrad);
  m.impl("depthwise_wgrad", &depthwise_wgrad);
  m.impl("depthwise_backward", &depthwise_backward);
}
#endif

}  // namespace cnnops
