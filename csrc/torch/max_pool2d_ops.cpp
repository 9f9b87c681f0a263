// Max pooling ops: argument checks, allocation, MaxPool2dParams, dispatch to
// the CPU kernels or (when built with CUDA) the CUDA launchers. Registered as torch.ops.cnnops.*; autograd and fake kernels
// in cnnops/_ops/max_pool2d.py.
//
//   max_pool2d_fwd(input, kernel_size, stride, padding[4], dilation, ceil_mode)
//       -> (output, indices)    padding = (top, bottom, left, right), each at most
//       half the effective (dilated) window; asymmetric padding is how 'same'
//       reaches the kernel. indices are int64 flat positions h*W + w per plane.
//   max_pool2d_values(same arguments) -> output: the forward without indices,
//       for calls that need no gradient and no indices.
//   max_pool2d_bwd(grad_output, indices, input_size[2], kernel_size, stride,
//                  padding[2] (top, left), dilation) -> grad_input
//       a deterministic gather; indices outside [0, H*W) raise.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "../common/shape.h"
#include "../cpu/max_pool2d/max_pool2d.h"
#include "checks.h"

#ifdef CNNOPS_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>

#include "../cuda/max_pool2d/max_pool2d_cuda.h"
#endif

namespace cnnops {
namespace {

#ifdef CNNOPS_WITH_CUDA
// The CUDA twin of the CPU kernel's check: every index of a window that holds
// an input position lies in [0, H*W) (empty windows pass no gradient back).
bool indices_valid_cuda(const at::Tensor& ind, const MaxPool2dParams& p) {
  const int64_t HW = p.H * p.W;
  at::Tensor bad = ind.lt(0).logical_or_(ind.ge(HW));
  at::Tensor er = at::empty({p.P}, at::TensorOptions().dtype(at::kBool));
  at::Tensor ec = at::empty({p.Q}, at::TensorOptions().dtype(at::kBool));
  bool* erp = er.mutable_data_ptr<bool>();
  bool* ecp = ec.mutable_data_ptr<bool>();
  bool any_empty = false;
  for (int64_t i = 0; i < p.P; ++i) {
    erp[i] = pool_window_empty(i * p.stride_h - p.pad_h, p.R, p.dil_h, p.H);
    any_empty |= erp[i];
  }
  for (int64_t i = 0; i < p.Q; ++i) {
    ecp[i] = pool_window_empty(i * p.stride_w - p.pad_w, p.S, p.dil_w, p.W);
    any_empty |= ecp[i];
  }
  if (any_empty) {
    at::Tensor exempt =
        er.to(ind.device()).view({1, 1, p.P, 1}).logical_or(ec.to(ind.device()).view({1, 1, 1, p.Q}));
    bad.logical_and_(exempt.logical_not());
  }
  return !bad.any().item<bool>();
}

#endif

void check_window(const char* op, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                  at::IntArrayRef dilation) {
  check_list(kernel_size, 2, 1, op, "kernel_size", "positive");
  check_list(stride, 2, 1, op, "stride", "positive");
  check_list(dilation, 2, 1, op, "dilation", "positive");
}

// The forward of both ops: indices are computed when asked for (and always on
// CUDA, whose kernel writes them); otherwise the returned indices are undefined.
std::tuple<at::Tensor, at::Tensor> pool_forward(const char* op, const at::Tensor& input,
                                                at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                                at::IntArrayRef padding, at::IntArrayRef dilation,
                                                bool ceil_mode, bool with_indices) {
  check_rank(input, 4, op, "input", "N, C, H, W");
  check_float_tensor(input, op, "input");
  check_device(input, op, "input");
  check_window(op, kernel_size, stride, dilation);
  check_list(padding, 4, 0, op, "padding", "non-negative (top, bottom, left, right)");
  const int64_t eh = effective_kernel(kernel_size[0], dilation[0]);
  const int64_t ew = effective_kernel(kernel_size[1], dilation[1]);
  TORCH_CHECK_VALUE(
      padding[0] <= eh / 2 && padding[1] <= eh / 2 && padding[2] <= ew / 2 && padding[3] <= ew / 2, op,
      ": expected padding to be at most half the effective kernel size (", eh, " x ", ew, "), got ",
      to_string(padding));
  check_nonempty_feature_dims(input, op, "input");
  const int64_t N = input.size(0), C = input.size(1), H = input.size(2), W = input.size(3);
  const int64_t P =
      pool_out_size(H, kernel_size[0], padding[0], padding[1], stride[0], dilation[0], ceil_mode);
  const int64_t Q =
      pool_out_size(W, kernel_size[1], padding[2], padding[3], stride[1], dilation[1], ceil_mode);
  TORCH_CHECK_VALUE(P >= 1 && Q >= 1, op, ": the output size would be ", P, " x ", Q, " for input shape ",
                    to_string(input.sizes()), ", kernel_size ", to_string(kernel_size), ", stride ",
                    to_string(stride), ", padding ", to_string(padding), ", dilation ", to_string(dilation),
                    "; expected a positive output size");
  checked_numel({N, C, P, Q}, op);
  const auto fmt = input.suggest_memory_format();
  at::Tensor y = at::empty({N, C, P, Q}, input.options().memory_format(fmt));
  with_indices = with_indices || !input.device().is_cpu();
  at::Tensor ind;
  if (with_indices) ind = at::empty({N, C, P, Q}, input.options().dtype(at::kLong).memory_format(fmt));
  if (N == 0) return {y, ind};
  MaxPool2dParams p{};
  p.x = const_cast<void*>(input.const_data_ptr());
  p.y = y.mutable_data_ptr();
  p.indices = with_indices ? ind.mutable_data_ptr() : nullptr;
  p.N = N;
  p.C = C;
  p.H = H;
  p.W = W;
  p.R = kernel_size[0];
  p.S = kernel_size[1];
  p.P = P;
  p.Q = Q;
  p.pad_h = padding[0];
  p.pad_w = padding[2];
  p.stride_h = stride[0];
  p.stride_w = stride[1];
  p.dil_h = dilation[0];
  p.dil_w = dilation[1];
  copy_strides(p.x_strides, input);
  copy_strides(p.y_strides, y);
  if (with_indices) copy_strides(p.i_strides, ind);
  p.dtype = dtype_of(input);
#ifdef CNNOPS_WITH_CUDA
  if (input.is_cuda()) {
    c10::cuda::CUDAGuard guard(input.device());
    check_cuda_launch(cuda::max_pool2d_fwd(p, c10::cuda::getCurrentCUDAStream().stream()));
    return {y, ind};
  }
#endif
  cpu::max_pool2d_fwd(p);
  return {y, ind};
}

std::tuple<at::Tensor, at::Tensor> max_pool2d_fwd(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                  at::IntArrayRef stride, at::IntArrayRef padding,
                                                  at::IntArrayRef dilation, bool ceil_mode) {
  return pool_forward("cnnops::max_pool2d_fwd", input, kernel_size, stride, padding, dilation, ceil_mode,
                      true);
}

at::Tensor max_pool2d_values(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                             at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
  return std::get<0>(pool_forward("cnnops::max_pool2d_values", input, kernel_size, stride, padding, dilation,
                                  ceil_mode, false));
}

at::Tensor max_pool2d_bwd(const at::Tensor& grad_output, const at::Tensor& indices,
                          c10::SymIntArrayRef input_size_sym, at::IntArrayRef kernel_size,
                          at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation) {
  const char* op = "cnnops::max_pool2d_bwd";
  check_rank(grad_output, 4, op, "grad_output", "N, C, P, Q");
  check_float_tensor(grad_output, op, "grad_output");
  check_device(grad_output, op, "grad_output");
  TORCH_CHECK_TYPE(indices.scalar_type() == at::kLong, op, ": expected indices to be int64, got ",
                   indices.scalar_type());
  TORCH_CHECK_VALUE(indices.sizes() == grad_output.sizes(), op,
                    ": expected indices to have the shape of grad_output ", to_string(grad_output.sizes()),
                    ", got ", to_string(indices.sizes()));
  TORCH_CHECK_VALUE(indices.device() == grad_output.device(), op,
                    ": expected indices on the device of grad_output (", grad_output.device(), "), got ",
                    indices.device());
  const std::vector<int64_t> size = concrete(input_size_sym, op, "input_size");
  check_list(size, 2, 1, op, "input_size", "positive (H, W)");
  check_window(op, kernel_size, stride, dilation);
  check_list(padding, 2, 0, op, "padding", "non-negative (top, left)");
  const int64_t N = grad_output.size(0), C = grad_output.size(1);
  checked_numel({N, C, size[0], size[1]}, op);
  at::Tensor dx = at::empty(
      {N, C, size[0], size[1]},
      grad_output.options().memory_format(output_memory_format(grad_output, indices, grad_output.size(0))));
  if (grad_output.numel() == 0) return dx.zero_();
  MaxPool2dParams p{};
  p.x = dx.mutable_data_ptr();
  p.y = const_cast<void*>(grad_output.const_data_ptr());
  p.indices = const_cast<void*>(indices.const_data_ptr());
  p.N = N;
  p.C = C;
  p.H = size[0];
  p.W = size[1];
  p.R = kernel_size[0];
  p.S = kernel_size[1];
  p.P = grad_output.size(2);
  p.Q = grad_output.size(3);
  p.pad_h = padding[0];
  p.pad_w = padding[1];
  p.stride_h = stride[0];
  p.stride_w = stride[1];
  p.dil_h = dilation[0];
  p.dil_w = dilation[1];
  copy_strides(p.x_strides, dx);
  copy_strides(p.y_strides, grad_output);
  copy_strides(p.i_strides, indices);
  p.dtype = dtype_of(grad_output);
  bool ok = false;
#ifdef CNNOPS_WITH_CUDA
  if (grad_output.is_cuda()) {
    c10::cuda::CUDAGuard guard(grad_output.device());
    ok = indices_valid_cuda(indices, p);
    if (ok) check_cuda_launch(cuda::max_pool2d_bwd(p, c10::cuda::getCurrentCUDAStream().stream()));
  } else {
    ok = cpu::max_pool2d_bwd(p);
  }
#else
  ok = cpu::max_pool2d_bwd(p);
#endif
  TORCH_CHECK_VALUE(ok, op, ": expected every index to lie in [0, H*W) = [0, ", size[0] * size[1],
                    ") for input_size ", to_string(size), ", found one outside it (min ",
                    indices.min().item<int64_t>(), ", max ", indices.max().item<int64_t>(), ")");
  return dx;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(cnnops, m) {
  m.def(
      "max_pool2d_fwd(Tensor input, int[2] kernel_size, int[2] stride, int[4] padding, "
      "int[2] dilation, bool ceil_mode) -> (Tensor, Tensor)");
  m.def(
      "max_pool2d_values(Tensor input, int[2] kernel_size, int[2] stride, int[4] padding, "
      "int[2] dilation, bool ceil_mode) -> Tensor");
  m.def(
      "max_pool2d_bwd(Tensor grad_output, Tensor indices, SymInt[2] input_size, "
      "int[2] kernel_size, int[2] stride, int[2] padding, int[2] dilation) -> Tensor");
}

TORCH_LIBRARY_IMPL(cnnops, CPU, m) {
  m.impl("max_pool2d_fwd", &max_pool2d_fwd);
  m.impl("max_pool2d_values", &max_pool2d_values);
  m.impl("max_pool2d_bwd", &max_pool2d_bwd);
}

#ifdef CNNOPS_WITH_CUDA
TORCH_LIBRARY_IMPL(cnnops, CUDA, m) {
  m.impl("max_pool2d_fwd", &max_pool2d_fwd);
  m.impl("max_pool2d_values", &max_pool2d_values);
  m.impl("max_pool2d_bwd", &max_pool2d_bwd);
}
#endif

}  // namespace cnnops
