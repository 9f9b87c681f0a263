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

#include <array>
#include <tuple>
#include <vector>

namespace cnnops {
namespace {

using autograd::variable_list;

// The graph node of a max_pool2d_fwd call that records one (see autograd_util.h).
struct MaxPool2dBackward final : torch::autograd::Node {
  torch::autograd::SavedVariable indices;
  // Fixed-size fields, not vectors: five allocations fewer per recorded call.
  std::array<c10::SymInt, 2> input_size;  // (H, W)
  std::array<int64_t, 2> kernel_size, stride, pad, dilation;  // pad: (top, left)

  std::string name() const override { return "MaxPool2dBackward"; }
  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    indices.reset_data();
  }
  variable_list apply(variable_list&& grads) override {
    static const auto op =
        autograd::typed_op<at::Tensor(const at::Tensor&, const at::Tensor&, c10::SymIntArrayRef,
                                      at::IntArrayRef, at::IntArrayRef, at::IntArrayRef, at::IntArrayRef)>(
            "cnnops::max_pool2d_bwd");
    if (!task_should_compute_output(0) || !grads[0].defined()) return {at::Tensor()};
    at::Tensor ind;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ind = indices.unpack(getptr());
    }
    autograd::BelowAutogradUnlessGradMode below;
    return {op.call(grads[0], ind, input_size, kernel_size, stride, pad, dilation)};
  }
};

// Runs the op below autograd and, when a graph is being recorded, makes y the
// output of a MaxPool2dBackward node (the indices are not differentiable).
std::tuple<at::Tensor, at::Tensor> max_pool2d_fwd_autograd(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                           at::IntArrayRef stride, at::IntArrayRef padding,
                                                           at::IntArrayRef dilation, bool ceil_mode) {
  static const auto op = autograd::typed_op<sig::MaxPool2dFwd>("cnnops::max_pool2d_fwd");
  at::Tensor y, ind;
  {
    at::AutoDispatchBelowADInplaceOrView below;
    std::tie(y, ind) = op.call(input, kernel_size, stride, padding, dilation, ceil_mode);
  }
  if (!autograd::needs_autograd({&input})) return {y, ind};
  autograd::check_no_forward_grad({&input}, "cnnops::max_pool2d_fwd");
  auto node = autograd::make_node<MaxPool2dBackward>();
  node->set_next_edges(torch::autograd::collect_next_edges(input));
  node->indices = torch::autograd::SavedVariable(ind, /*is_output=*/false);
  // The op has checked the lists' lengths; padding is (top, bottom, left, right).
  node->input_size = {input.sym_size(2), input.sym_size(3)};
  node->kernel_size = {kernel_size[0], kernel_size[1]};
  node->stride = {stride[0], stride[1]};
  node->pad = {padding[0], padding[2]};
  node->dilation = {dilation[0], dilation[1]};
  torch::autograd::create_gradient_edge(y, std::move(node));
  return {y, ind};
}

at::Tensor max_pool2d_values_autograd(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                      at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
  if (autograd::needs_autograd({&input}))
    return std::get<0>(max_pool2d_fwd_autograd(input, kernel_size, stride, padding, dilation, ceil_mode));
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
