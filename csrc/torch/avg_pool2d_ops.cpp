// Average pooling ops: argument checks, allocation, AvgPool2dParams, dispatch to
// the CPU kernels or (when built with CUDA) the CUDA launchers. Registered as
// torch.ops.cnnops.*; the forwards' autograd is C++ (avg_pool2d_autograd.cpp), the
// backwards' autograd and every fake kernel are in cnnops/_ops/avg_pool2d.py.
//
//   avg_pool2d_fwd(input, kernel_size, stride, padding[4], ceil_mode,
//                  count_include_pad, divisor_override) -> output
//       padding = (top, bottom, left, right), each at most half the window;
//       asymmetric padding is how 'same' reaches the kernel (with
//       count_include_pad false: Keras counts only the input cells).
//   avg_pool2d_bwd(grad_output, input_size[2], the forward's arguments,
//                  channels_last) -> grad_input
//       grad_output must have the forward's output size; grad_input is
//       channels_last when the forward's input was (torch's rule).
//   adaptive_avg_pool2d_fwd(input, output_size[2]) -> output   (sizes >= 0)
//   adaptive_avg_pool2d_bwd(grad_output, input_size[2], channels_last) -> grad_input
// One kernel family serves all four (csrc/cpu/avg_pool2d, csrc/cuda/avg_pool2d):
// adaptive windows are a flag of the params. Each backward is linear in
// grad_output and its adjoint is the forward, so double backward reuses the ops.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "../common/shape.h"
#include "../cpu/avg_pool2d/avg_pool2d.h"
#include "checks.h"

#ifdef CNNOPS_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "../cuda/avg_pool2d/avg_pool2d_cuda.h"
#endif

namespace cnnops {
namespace {

// The window arguments both avg_pool2d ops share.
void check_window(const char* op, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                  at::IntArrayRef padding, std::optional<int64_t> divisor_override) {
  check_list(kernel_size, 2, 1, op, "kernel_size", "positive");
  check_list(stride, 2, 1, op, "stride", "positive");
  check_list(padding, 4, 0, op, "padding", "non-negative (top, bottom, left, right)");
  TORCH_CHECK_VALUE(padding[0] <= kernel_size[0] / 2 && padding[1] <= kernel_size[0] / 2 &&
                        padding[2] <= kernel_size[1] / 2 && padding[3] <= kernel_size[1] / 2,
                    op, ": expected padding to be at most half the kernel size (", kernel_size[0], " x ",
                    kernel_size[1], "), got ", to_string(padding));
  TORCH_CHECK_VALUE(!divisor_override.has_value() || *divisor_override != 0, op,
                    ": expected divisor_override to be a non-zero int or None, got 0");
}

// The output size of avg_pool2d over an H x W input; raises unless positive.
std::pair<int64_t, int64_t> pooled_size(const char* op, int64_t H, int64_t W, at::IntArrayRef kernel_size,
                                        at::IntArrayRef stride, at::IntArrayRef padding, bool ceil_mode) {
  const int64_t P = pool_out_size(H, kernel_size[0], padding[0], padding[1], stride[0], 1, ceil_mode);
  const int64_t Q = pool_out_size(W, kernel_size[1], padding[2], padding[3], stride[1], 1, ceil_mode);
  TORCH_CHECK_VALUE(P >= 1 && Q >= 1, op, ": the output size would be ", P, " x ", Q, " for an input of ", H,
                    " x ", W, ", kernel_size ", to_string(kernel_size), ", stride ", to_string(stride),
                    ", padding ", to_string(padding), "; expected a positive output size");
  return {P, Q};
}

void check_input(const at::Tensor& t, const char* op, const char* arg, const char* layout) {
  check_rank(t, 4, op, arg, layout);
  check_float_tensor(t, op, arg);
  check_device(t, op, arg);
}

// x (the pooled input, or grad_input) and y (the output, or grad_output) with
// their sizes and strides; the window fields are the caller's. The forward
// writes y, the backward x.
AvgPool2dParams tensor_params(const at::Tensor& x, const at::Tensor& y, bool backward) {
  AvgPool2dParams p{};
  p.x = backward ? x.mutable_data_ptr() : const_cast<void*>(x.const_data_ptr());
  p.y = backward ? const_cast<void*>(y.const_data_ptr()) : y.mutable_data_ptr();
  p.N = x.size(0);
  p.C = x.size(1);
  p.H = x.size(2);
  p.W = x.size(3);
  p.P = y.size(2);
  p.Q = y.size(3);
  copy_strides(p.x_strides, x);
  copy_strides(p.y_strides, y);
  p.dtype = dtype_of(x);
  return p;
}

void set_window(AvgPool2dParams& p, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                at::IntArrayRef padding, bool count_include_pad, std::optional<int64_t> divisor_override) {
  p.R = kernel_size[0];
  p.S = kernel_size[1];
  p.stride_h = stride[0];
  p.stride_w = stride[1];
  p.pad_top = padding[0];
  p.pad_bottom = padding[1];
  p.pad_left = padding[2];
  p.pad_right = padding[3];
  p.count_include_pad = count_include_pad;
  p.divisor_override = divisor_override.value_or(0);
}

void set_adaptive(AvgPool2dParams& p) {
  p.adaptive = true;
  p.R = p.S = p.stride_h = p.stride_w = 1;
}

// Runs the kernel: `device_tensor` tells the device.
void run(const AvgPool2dParams& p, const at::Tensor& device_tensor, bool backward) {
#ifdef CNNOPS_WITH_CUDA
  if (device_tensor.is_cuda()) {
    c10::cuda::CUDAGuard guard(device_tensor.device());
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
    check_cuda_launch(backward ? cuda::avg_pool2d_bwd(p, stream) : cuda::avg_pool2d_fwd(p, stream));
    return;
  }
#else
  (void)device_tensor;
#endif
  if (backward) cpu::avg_pool2d_bwd(p);
  else cpu::avg_pool2d_fwd(p);
}

at::Tensor grad_input_like(const at::Tensor& grad_output, int64_t H, int64_t W, bool channels_last,
                           const char* op) {
  const int64_t N = grad_output.size(0), C = grad_output.size(1);
  checked_numel({N, C, H, W}, op);
  return at::empty({N, C, H, W},
                   grad_output.options().memory_format(channels_last ? at::MemoryFormat::ChannelsLast
                                                                     : at::MemoryFormat::Contiguous));
}

at::Tensor avg_pool2d_fwd(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                          at::IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                          std::optional<int64_t> divisor_override) {
  const char* op = "cnnops::avg_pool2d_fwd";
  check_input(input, op, "input", "N, C, H, W");
  check_window(op, kernel_size, stride, padding, divisor_override);
  check_nonempty_feature_dims(input, op, "input");
  const auto [P, Q] = pooled_size(op, input.size(2), input.size(3), kernel_size, stride, padding, ceil_mode);
  checked_numel({input.size(0), input.size(1), P, Q}, op);
  at::Tensor y = at::empty({input.size(0), input.size(1), P, Q},
                           input.options().memory_format(input.suggest_memory_format()));
  if (input.size(0) == 0) return y;
  AvgPool2dParams p = tensor_params(input, y, false);
  set_window(p, kernel_size, stride, padding, count_include_pad, divisor_override);
  run(p, input, false);
  return y;
}

at::Tensor avg_pool2d_bwd(const at::Tensor& grad_output, c10::SymIntArrayRef input_size_sym,
                          at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                          bool ceil_mode, bool count_include_pad, std::optional<int64_t> divisor_override,
                          bool channels_last) {
  const char* op = "cnnops::avg_pool2d_bwd";
  check_input(grad_output, op, "grad_output", "N, C, P, Q");
  const std::vector<int64_t> size = concrete(input_size_sym, op, "input_size");
  check_list(size, 2, 1, op, "input_size", "positive (H, W)");
  check_window(op, kernel_size, stride, padding, divisor_override);
  const auto [P, Q] = pooled_size(op, size[0], size[1], kernel_size, stride, padding, ceil_mode);
  TORCH_CHECK_VALUE(grad_output.size(2) == P && grad_output.size(3) == Q, op,
                    ": expected grad_output of spatial size ", P, " x ", Q,
                    " (the output size for input_size ", to_string(size), "), got shape ",
                    to_string(grad_output.sizes()));
  at::Tensor dx = grad_input_like(grad_output, size[0], size[1], channels_last, op);
  if (grad_output.numel() == 0) return dx.zero_();
  AvgPool2dParams p = tensor_params(dx, grad_output, true);
  set_window(p, kernel_size, stride, padding, count_include_pad, divisor_override);
  run(p, grad_output, true);
  return dx;
}

at::Tensor adaptive_avg_pool2d_fwd(const at::Tensor& input, c10::SymIntArrayRef output_size_sym) {
  const char* op = "cnnops::adaptive_avg_pool2d_fwd";
  check_input(input, op, "input", "N, C, H, W");
  const std::vector<int64_t> size = concrete(output_size_sym, op, "output_size");
  check_list(size, 2, 0, op, "output_size", "non-negative");
  TORCH_CHECK_VALUE(input.size(2) > 0 && input.size(3) > 0, op,
                    ": expected input to have non-zero spatial sizes (H, W), got shape ",
                    to_string(input.sizes()));
  checked_numel({input.size(0), input.size(1), size[0], size[1]}, op);
  at::Tensor y = at::empty({input.size(0), input.size(1), size[0], size[1]},
                           input.options().memory_format(input.suggest_memory_format()));
  if (y.numel() == 0) return y;
  AvgPool2dParams p = tensor_params(input, y, false);
  set_adaptive(p);
  run(p, input, false);
  return y;
}

at::Tensor adaptive_avg_pool2d_bwd(const at::Tensor& grad_output, c10::SymIntArrayRef input_size_sym,
                                   bool channels_last) {
  const char* op = "cnnops::adaptive_avg_pool2d_bwd";
  check_input(grad_output, op, "grad_output", "N, C, P, Q");
  const std::vector<int64_t> size = concrete(input_size_sym, op, "input_size");
  check_list(size, 2, 1, op, "input_size", "positive (H, W)");
  at::Tensor dx = grad_input_like(grad_output, size[0], size[1], channels_last, op);
  if (dx.numel() == 0) return dx;
  if (grad_output.numel() == 0) return dx.zero_();
  AvgPool2dParams p = tensor_params(dx, grad_output, true);
  set_adaptive(p);
  run(p, grad_output, true);
  return dx;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(cnnops, m) {
  m.def(
      "avg_pool2d_fwd(Tensor input, int[2] kernel_size, int[2] stride, int[4] padding, bool ceil_mode, "
      "bool count_include_pad, int? divisor_override) -> Tensor");
  m.def(
      "avg_pool2d_bwd(Tensor grad_output, SymInt[2] input_size, int[2] kernel_size, int[2] stride, "
      "int[4] padding, bool ceil_mode, bool count_include_pad, int? divisor_override, bool channels_last) "
      "-> Tensor");
  m.def("adaptive_avg_pool2d_fwd(Tensor input, SymInt[2] output_size) -> Tensor");
  m.def("adaptive_avg_pool2d_bwd(Tensor grad_output, SymInt[2] input_size, bool channels_last) -> Tensor");
}

TORCH_LIBRARY_IMPL(cnnops, CPU, m) {
  m.impl("avg_pool2d_fwd", &avg_pool2d_fwd);
  m.impl("avg_pool2d_bwd", &avg_pool2d_bwd);
  m.impl("adaptive_avg_pool2d_fwd", &adaptive_avg_pool2d_fwd);
  m.impl("adaptive_avg_pool2d_bwd", &adaptive_avg_pool2d_bwd);
}

#ifdef CNNOPS_WITH_CUDA
TORCH_LIBRARY_IMPL(cnnops, CUDA, m) {
  m.impl("avg_pool2d_fwd", &avg_pool2d_fwd);
  m.impl("avg_pool2d_bwd", &avg_pool2d_bwd);
  m.impl("adaptive_avg_pool2d_fwd", &adaptive_avg_pool2d_fwd);
  m.impl("adaptive_avg_pool2d_bwd", &adaptive_avg_pool2d_bwd);
}
#endif

}  // namespace cnnops
