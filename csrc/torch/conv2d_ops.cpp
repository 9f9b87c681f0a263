// The convolution-family ops: argument checks, output allocation, filling
// Conv2dParams, and dispatch to the CPU kernels or (when built with CUDA) the
// CUDA launchers. Registered as torch.ops.cnnops.*; their autograd formulas and
// fake kernels live in cnnops/_ops/conv2d.py.
//
//   conv2d_fprop(input, weight, bias?, stride, padding[4], dilation, groups)
//       padding = (top, bottom, left, right); bottom/right may be negative
//       (trailing input rows are then unused), as gradients of transposed
//       convolutions need.
//   conv2d_dgrad(grad_output, weight, bias?, input_size[2], stride, padding[2], dilation, groups)
//       the adjoint of fprop w.r.t. its input; conv_transpose2d's forward.
//   conv2d_wgrad(grad_output, input, kernel_size[2], stride, padding[2], dilation, groups)
//   conv2d_bias_grad(grad_output)
#include <ATen/ATen.h>
#include <torch/library.h>

#include <optional>

#include "../common/shape.h"
#include "../cpu/conv2d/conv2d.h"
#include "checks.h"
#include "filter_cache.h"
#include "fused_stage.h"

#ifdef CNNOPS_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include "../cuda/conv2d/conv2d_cuda.h"
#include "../cuda/epilogue/epilogue_cuda.h"
#endif

namespace cnnops {
namespace {

void check_hyper(const char* op, at::IntArrayRef stride, at::IntArrayRef dilation, int64_t groups) {
  check_list(stride, 2, 1, op, "stride", "positive");
  check_list(dilation, 2, 1, op, "dilation", "positive");
  TORCH_CHECK_VALUE(groups > 0, op, ": expected groups to be positive, got ", groups);
}

void check_weight(const at::Tensor& weight, const char* op, const char* arg) {
  check_rank(weight, 4, op, arg, "out_channels, in_channels/groups, kH, kW");
  TORCH_CHECK_VALUE(weight.size(0) > 0 && weight.size(1) > 0 && weight.size(2) > 0 && weight.size(3) > 0, op,
                    ": expected ", arg, " to have non-zero sizes, got shape ", to_string(weight.sizes()));
}

void check_bias(const std::optional<at::Tensor>& bias, int64_t channels, const at::Tensor& ref,
                const char* op) {
  if (!bias.has_value()) return;
  TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == channels, op, ": expected bias to be 1-D with ",
                    channels, " elements, got shape ", to_string(bias->sizes()));
  check_same_dtype_device(*bias, ref, op, "bias", "input");
}

enum class Kernel { Fprop, Dgrad, Wgrad };

void launch(Kernel kernel, const Conv2dParams& p, const at::Tensor& like) {
#ifdef CNNOPS_WITH_CUDA
  if (like.is_cuda()) {
    c10::cuda::CUDAGuard guard(like.device());
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
    Conv2dParams q = p;
    q.allow_tf32 = at::globalContext().allowTF32CuDNN();
    cudaError_t err = cudaSuccess;
    if (kernel == Kernel::Fprop) err = cuda::conv2d_fprop(q, stream);
    if (kernel == Kernel::Fprop && err == cudaSuccess) err = cuda::apply_epilogue(q, stream);
    if (kernel == Kernel::Dgrad) err = cuda::conv2d_dgrad(q, stream);
    if (kernel == Kernel::Wgrad) {
      at::Tensor ws = at::empty({static_cast<int64_t>(cuda::conv2d_wgrad_workspace_bytes(q))},
                                like.options().dtype(at::kByte));
      err = cuda::conv2d_wgrad(q, ws.data_ptr(), stream);
    }
    check_cuda_launch(err);
    return;
  }
#endif
  if (kernel == Kernel::Fprop) cpu::conv2d_fprop(p);
  if (kernel == Kernel::Dgrad) cpu::conv2d_dgrad(p);
  if (kernel == Kernel::Wgrad) cpu::conv2d_wgrad(p);
}

}  // namespace

at::Tensor conv2d_fprop_staged(const at::Tensor& input, const at::Tensor& weight,
                               const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                               c10::SymIntArrayRef padding_sym, at::IntArrayRef dilation, int64_t groups,
                               const FusedStage* stage) {
  const char* op = stage != nullptr ? stage->op : "cnnops::conv2d_fprop";
  check_rank(input, 4, op, "input", "N, C, H, W");
  check_weight(weight, op, "weight");
  check_float_tensor(input, op, "input");
  check_same_dtype_device(weight, input, op, "weight", "input");
  check_hyper(op, stride, dilation, groups);
  const std::vector<int64_t> pad = concrete(padding_sym, op, "padding");
  TORCH_CHECK_VALUE(pad.size() == 4, op,
                    ": expected padding to have 4 elements (top, bottom, left, right), got ", to_string(pad));
  TORCH_CHECK_VALUE(pad[0] >= 0 && pad[2] >= 0, op,
                    ": expected the top and left padding to be non-negative, got ", to_string(pad));
  check_nonempty_feature_dims(input, op, "input");
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t K = weight.size(0), R = weight.size(2), S = weight.size(3);
  TORCH_CHECK_VALUE(weight.size(1) * groups == C, op,
                    ": expected input to have weight.size(1) * groups = ", weight.size(1), " * ", groups,
                    " = ", weight.size(1) * groups, " channels, got ", C, " channels (input shape ",
                    to_string(input.sizes()), ")");
  TORCH_CHECK_VALUE(K % groups == 0, op, ": expected out_channels (weight.size(0) = ", K,
                    ") to be divisible by groups = ", groups);
  check_bias(bias, K, input, op);
  const auto [P, Q] = conv_output_size_checked(H, W, R, S, pad, stride, dilation, op);
  checked_numel({N, K, P, Q}, op);
  at::Tensor y =
      at::empty({N, K, P, Q}, input.options().memory_format(conv_output_memory_format(input, weight, N)));
  if (N == 0) return y;
  const at::Tensor x = input, w = weight;
  Conv2dParams p = conv_params(stride, pad[0], pad[2], dilation, groups, input);
  p.x = const_cast<void*>(x.const_data_ptr());
  p.w = const_cast<void*>(w.const_data_ptr());
  p.y = y.mutable_data_ptr();
  at::Tensor bias_c = bias.has_value() ? bias->contiguous() : at::Tensor();
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
  copy_strides(p.x_strides, x);
  copy_strides(p.w_strides, w);
  copy_strides(p.y_strides, y);
  if (stage != nullptr) set_epilogue(p, *stage, y);
  const std::unique_ptr<cpu::FilterCache> cache = filter_cache_for(w);
  p.filter_cache = cache.get();
  launch(Kernel::Fprop, p, input);
  return y;
}

namespace {

at::Tensor conv2d_fprop(const at::Tensor& input, const at::Tensor& weight,
                        const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                        c10::SymIntArrayRef padding_sym, at::IntArrayRef dilation, int64_t groups) {
  return conv2d_fprop_staged(input, weight, bias, stride, padding_sym, dilation, groups, nullptr);
}

at::Tensor conv2d_dgrad(const at::Tensor& grad_output, const at::Tensor& weight,
                        const std::optional<at::Tensor>& bias, c10::SymIntArrayRef input_size_sym,
                        at::IntArrayRef stride, c10::SymIntArrayRef padding_sym, at::IntArrayRef dilation,
                        int64_t groups) {
  const char* op = "cnnops::conv2d_dgrad";
  check_rank(grad_output, 4, op, "grad_output", "N, K, P, Q");
  check_weight(weight, op, "weight");
  check_float_tensor(grad_output, op, "grad_output");
  check_same_dtype_device(weight, grad_output, op, "weight", "grad_output");
  check_hyper(op, stride, dilation, groups);
  const std::vector<int64_t> size = concrete(input_size_sym, op, "input_size");
  const std::vector<int64_t> pad = concrete(padding_sym, op, "padding");
  check_list(size, 2, 1, op, "input_size", "positive (H, W)");
  check_list(pad, 2, 0, op, "padding", "non-negative (top, left)");
  check_nonempty_feature_dims(grad_output, op, "grad_output");
  const int64_t N = grad_output.size(0), K = grad_output.size(1);
  const int64_t C = weight.size(1) * groups, R = weight.size(2), S = weight.size(3);
  TORCH_CHECK_VALUE(weight.size(0) == K, op,
                    ": expected grad_output to have weight.size(0) = ", weight.size(0), " channels, got ", K);
  TORCH_CHECK_VALUE(K % groups == 0, op, ": expected weight.size(0) = ", K,
                    " to be divisible by groups = ", groups);
  check_bias(bias, C, grad_output, op);
  checked_numel({N, C, size[0], size[1]}, op);
  at::Tensor dx =
      at::empty({N, C, size[0], size[1]},
                grad_output.options().memory_format(conv_output_memory_format(grad_output, weight, N)));
  if (N == 0) return dx;
  at::Tensor bias_c = bias.has_value() ? bias->contiguous() : at::Tensor();
  Conv2dParams p = conv_params(stride, pad[0], pad[1], dilation, groups, grad_output);
  p.x = dx.mutable_data_ptr();
  p.w = const_cast<void*>(weight.const_data_ptr());
  p.y = const_cast<void*>(grad_output.const_data_ptr());
  p.bias = bias_c.defined() ? bias_c.const_data_ptr() : nullptr;
  p.N = N;
  p.C = C;
  p.H = size[0];
  p.W = size[1];
  p.K = K;
  p.R = R;
  p.S = S;
  p.P = grad_output.size(2);
  p.Q = grad_output.size(3);
  copy_strides(p.x_strides, dx);
  copy_strides(p.w_strides, weight);
  copy_strides(p.y_strides, grad_output);
  const std::unique_ptr<cpu::FilterCache> cache = filter_cache_for(weight);
  p.filter_cache = cache.get();
  launch(Kernel::Dgrad, p, grad_output);
  return dx;
}

at::Tensor conv2d_wgrad(const at::Tensor& grad_output, const at::Tensor& input, at::IntArrayRef kernel_size,
                        at::IntArrayRef stride, c10::SymIntArrayRef padding_sym, at::IntArrayRef dilation,
                        int64_t groups) {
  const char* op = "cnnops::conv2d_wgrad";
  check_rank(grad_output, 4, op, "grad_output", "N, K, P, Q");
  check_rank(input, 4, op, "input", "N, C, H, W");
  check_float_tensor(input, op, "input");
  check_same_dtype_device(grad_output, input, op, "grad_output", "input");
  check_hyper(op, stride, dilation, groups);
  check_list(kernel_size, 2, 1, op, "kernel_size", "positive");
  const std::vector<int64_t> pad = concrete(padding_sym, op, "padding");
  check_list(pad, 2, 0, op, "padding", "non-negative (top, left)");
  check_nonempty_feature_dims(input, op, "input");
  check_nonempty_feature_dims(grad_output, op, "grad_output");
  TORCH_CHECK_VALUE(grad_output.size(0) == input.size(0), op,
                    ": expected grad_output and input to have the same batch size, got ", grad_output.size(0),
                    " and ", input.size(0));
  const int64_t N = input.size(0), C = input.size(1), K = grad_output.size(1);
  TORCH_CHECK_VALUE(C % groups == 0 && K % groups == 0, op, ": expected input channels (", C,
                    ") and grad_output channels (", K, ") to be divisible by groups = ", groups);
  const int64_t R = kernel_size[0], S = kernel_size[1];
  checked_numel({K, C / groups, R, S}, op);
  at::Tensor dw = at::empty({K, C / groups, R, S},
                            input.options().memory_format(conv_output_memory_format(input, grad_output, N)));
  if (N == 0) return dw.zero_();
  Conv2dParams p = conv_params(stride, pad[0], pad[1], dilation, groups, input);
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
  launch(Kernel::Wgrad, p, input);
  return dw;
}

at::Tensor conv2d_bias_grad(const at::Tensor& grad_output) {
  const char* op = "cnnops::conv2d_bias_grad";
  check_rank(grad_output, 4, op, "grad_output", "N, K, P, Q");
  check_float_tensor(grad_output, op, "grad_output");
  at::Tensor db = at::empty({grad_output.size(1)}, grad_output.options());
  if (grad_output.numel() == 0) return db.zero_();
  BiasGradParams p{};
  p.dy = grad_output.const_data_ptr();
  p.db = db.mutable_data_ptr();
  p.N = grad_output.size(0);
  p.K = grad_output.size(1);
  p.P = grad_output.size(2);
  p.Q = grad_output.size(3);
  copy_strides(p.dy_strides, grad_output);
  p.dtype = dtype_of(grad_output);
#ifdef CNNOPS_WITH_CUDA
  if (grad_output.is_cuda()) {
    c10::cuda::CUDAGuard guard(grad_output.device());
    check_cuda_launch(cuda::conv2d_bias_grad(p, c10::cuda::getCurrentCUDAStream().stream()));
    return db;
  }
#endif
  cpu::conv2d_bias_grad(p);
  return db;
}

}  // namespace

TORCH_LIBRARY(cnnops, m) {
  m.set_python_module("cnnops._ops");
  m.def(
      "conv2d_fprop(Tensor input, Tensor weight, Tensor? bias, int[2] stride, SymInt[4] padding, "
      "int[2] dilation, int groups) -> Tensor");
  m.def(
      "conv2d_dgrad(Tensor grad_output, Tensor weight, Tensor? bias, SymInt[2] input_size, "
      "int[2] stride, SymInt[2] padding, int[2] dilation, int groups) -> Tensor");
  m.def(
      "conv2d_wgrad(Tensor grad_output, Tensor input, int[2] kernel_size, int[2] stride, "
      "SymInt[2] padding, int[2] dilation, int groups) -> Tensor");
  m.def("conv2d_bias_grad(Tensor grad_output) -> Tensor");
}

TORCH_LIBRARY_IMPL(cnnops, CPU, m) {
  m.impl("conv2d_fprop", &conv2d_fprop);
  m.impl("conv2d_dgrad", &conv2d_dgrad);
  m.impl("conv2d_wgrad", &conv2d_wgrad);
  m.impl("conv2d_bias_grad", &conv2d_bias_grad);
}

#ifdef CNNOPS_WITH_CUDA
TORCH_LIBRARY_IMPL(cnnops, CUDA, m) {
  m.impl("conv2d_fprop", &conv2d_fprop);
  m.impl("conv2d_dgrad", &conv2d_dgrad);
  m.impl("conv2d_wgrad", &conv2d_wgrad);
  m.impl("conv2d_bias_grad", &conv2d_bias_grad);
}
#endif

}  // namespace cnnops
