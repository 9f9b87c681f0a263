// What the C++ autograd kernels (csrc/torch/*_autograd.cpp) share. They exist because
// torch.library.register_autograd wraps every call in Python, a fixed cost per call
// that dominates small layers (batch-1 inference, small models).
//
// A kernel runs its op below autograd and, when a graph is being recorded, makes the
// output the output of a graph node: ConvBackward here for the convolution family, a
// node of its own for max_pool2d. These are plain torch::autograd::Node subclasses with
// typed fields, as torch's own generated nodes are; a torch::autograd::Function
// (avg_pool2d's) also works, but its context keeps hyper-parameters in a map of
// IValues, and its setup cost more than the whole forward of a small layer. A node's
// backward calls the other cnnops ops through the dispatcher, so that with
// create_graph their own autograd kernels (C++ here, or Python in cnnops/_ops/) record
// a double backward, while without grad mode they run below autograd
// (BelowAutogradUnlessGradMode). Forward-mode AD is refused, by name.
#pragma once
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/function.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
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

// Whether a call must record a graph: grad mode is on and a tensor argument
// requires grad, or one carries a forward-mode tangent (refused). When none does,
// the autograd kernels only run the op below autograd: an autograd::Function's
// apply() builds a node, a context and its saved data even when nothing is
// recorded, which small layers (batch-1 inference) would pay on every call.
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

// A new graph node of type T, held the way this torch holds nodes: torch 2.13 keeps
// them in c10::intrusive_ptr, earlier releases (2.11, the GPU machine's) in
// std::shared_ptr. Edge::function has the type of the release compiled against.
template <class T, class... Args>
auto make_node(Args&&... args) {
  using NodePtr = decltype(torch::autograd::Edge::function);
  if constexpr (std::is_same_v<NodePtr, std::shared_ptr<torch::autograd::Node>>)
    return std::make_shared<T>(std::forward<Args>(args)...);
  else
    return c10::make_intrusive<T>(std::forward<Args>(args)...);
}

// The hyper-parameters a convolution's backward needs: stride, dilation and the begin
// padding (top, left) of the backward ops; groups where the op has them (else 1).
struct ConvConfig {
  std::vector<int64_t> stride, dilation;
  std::vector<c10::SymInt> pad;  // (top, left)
  int64_t groups = 1;
};

// Refuses a forward-mode tangent on any of `args` (the kernels have no jvp).
inline void check_no_forward_grad(std::initializer_list<const at::Tensor*> args, const char* op) {
  for (const at::Tensor* t : args)
    TORCH_CHECK(t == nullptr || !t->defined() || !t->_fw_grad(/*level=*/0).defined(), op,
                ": forward-mode automatic differentiation is not supported");
}

// The graph node of a convolution-family call (conv2d_fprop, conv2d_dgrad,
// depthwise_fprop) over its two tensors a, b and an optional bias: it saves a, b
// and the hyper-parameters, and its backward is `fn`, given which of the three
// gradients the graph task needs.
struct ConvBackward final : torch::autograd::Node {
  using Fn = variable_list (*)(const at::Tensor& a, const at::Tensor& b, const at::Tensor& grad,
                               const ConvConfig& cfg, const std::array<bool, 3>& needs);
  ConvBackward(const char* name, Fn fn) : name_(name), fn_(fn) {}

  torch::autograd::SavedVariable a, b;
  ConvConfig cfg;

  std::string name() const override { return name_; }
  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    a.reset_data();
    b.reset_data();
  }
  variable_list apply(variable_list&& grads) override {
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor()};
    const std::array<bool, 3> needs{task_should_compute_output(0), task_should_compute_output(1),
                                    task_should_compute_output(2)};
    at::Tensor ta, tb;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ta = a.unpack(getptr());
      tb = b.unpack(getptr());
    }
    return fn_(ta, tb, grads[0], cfg, needs);
  }

 private:
  const char* name_;
  Fn fn_;
};

// Makes y (computed below autograd) the output of a ConvBackward node over a, b and
// bias. Of padding, the begin padding is kept: padding[0] (top) and padding[left]
// (left: 2 of (top, bottom, left, right), 1 of (top, left)), read only after the op
// has checked its length.
inline at::Tensor record_conv(at::Tensor y, const char* name, ConvBackward::Fn fn, const at::Tensor& a,
                              const at::Tensor& b, const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                              c10::SymIntArrayRef padding, size_t left, at::IntArrayRef dilation,
                              int64_t groups = 1) {
  auto node = make_node<ConvBackward>(name, fn);
  node->set_next_edges(torch::autograd::collect_next_edges(a, b, bias));
  node->a = torch::autograd::SavedVariable(a, /*is_output=*/false);
  node->b = torch::autograd::SavedVariable(b, /*is_output=*/false);
  node->cfg = {stride.vec(), dilation.vec(), {padding[0], padding[left]}, groups};
  torch::autograd::create_gradient_edge(y, std::move(node));
  return y;
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
