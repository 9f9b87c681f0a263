// Typed calls of the hot ops through the dispatcher, for Python (cnnops/_ops/direct.py).
//
// `torch.ops.cnnops.conv2d_fprop(...)` parses its Python arguments against the schema
// into boxed IValues before it reaches the dispatcher: about 6-8 us a call, more than a
// small layer's kernel (torch's own F.conv2d takes about 10 us in all on a (1,8,8,8)
// input, F.max_pool2d 4 us). These functions take the arguments as typed C++ values
// (pybind11 converts them) and call the same operator through the dispatcher's typed
// handle, so every dispatch key still applies (autograd, dispatch modes, the profiler's
// record of the op, fake and functional tensors, inference mode); only Python-level
// __torch_function__ handling is skipped, which the Python side checks for (and torch.compile
// traces torch.ops instead).
#include <torch/extension.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "../common/shape.h"
#include "autograd_util.h"
#include "op_signatures.h"

namespace cnnops {
namespace {

using autograd::typed_op;
using Ints = std::vector<int64_t>;
using Opt = sig::OptTensor;

// SymInt[] arguments from plain ints, without a copy.
c10::SymIntArrayRef sym(const Ints& v) { return c10::fromIntArrayRefSlow(v); }

at::Tensor conv2d_fprop(const at::Tensor& x, const at::Tensor& w, const Opt& b, const Ints& stride,
                        const Ints& padding, const Ints& dilation, int64_t groups) {
  static const auto op = typed_op<sig::Conv2dFprop>("cnnops::conv2d_fprop");
  return op.call(x, w, b, stride, sym(padding), dilation, groups);
}

at::Tensor conv2d_dgrad(const at::Tensor& dy, const at::Tensor& w, const Opt& b, const Ints& size,
                        const Ints& stride, const Ints& padding, const Ints& dilation, int64_t groups) {
  static const auto op = typed_op<sig::Conv2dDgrad>("cnnops::conv2d_dgrad");
  return op.call(dy, w, b, sym(size), stride, sym(padding), dilation, groups);
}

at::Tensor depthwise_fprop(const at::Tensor& x, const at::Tensor& w, const Opt& b, const Ints& stride,
                           const Ints& padding, const Ints& dilation) {
  static const auto op = typed_op<sig::DepthwiseFprop>("cnnops::depthwise_fprop");
  return op.call(x, w, b, stride, sym(padding), dilation);
}

at::Tensor conv2d_fprop_fused(const at::Tensor& x, const at::Tensor& w, const Opt& b, const Ints& stride,
                              const Ints& padding, const Ints& dilation, int64_t groups, const std::string& act,
                              const Opt& residual, const std::string& post) {
  static const auto op = typed_op<sig::Conv2dFpropFused>("cnnops::conv2d_fprop_fused");
  return op.call(x, w, b, stride, sym(padding), dilation, groups, act, residual, post);
}

at::Tensor depthwise_fprop_fused(const at::Tensor& x, const at::Tensor& w, const Opt& b, const Ints& stride,
                                 const Ints& padding, const Ints& dilation, const std::string& act,
                                 const Opt& residual, const std::string& post) {
  static const auto op = typed_op<sig::DepthwiseFpropFused>("cnnops::depthwise_fprop_fused");
  return op.call(x, w, b, stride, sym(padding), dilation, act, residual, post);
}

// The max-pool handles, shared by the list calls and max_pool2d_ints below.
const c10::TypedOperatorHandle<sig::MaxPool2dValues>& max_pool2d_values_op() {
  static const auto op = typed_op<sig::MaxPool2dValues>("cnnops::max_pool2d_values");
  return op;
}
const c10::TypedOperatorHandle<sig::MaxPool2dFwd>& max_pool2d_fwd_op() {
  static const auto op = typed_op<sig::MaxPool2dFwd>("cnnops::max_pool2d_fwd");
  return op;
}

at::Tensor max_pool2d_values(const at::Tensor& x, const Ints& kernel, const Ints& stride, const Ints& padding,
                             const Ints& dilation, bool ceil_mode) {
  return max_pool2d_values_op().call(x, kernel, stride, padding, dilation, ceil_mode);
}

std::tuple<at::Tensor, at::Tensor> max_pool2d_fwd(const at::Tensor& x, const Ints& kernel, const Ints& stride,
                                                  const Ints& padding, const Ints& dilation, bool ceil_mode) {
  return max_pool2d_fwd_op().call(x, kernel, stride, padding, dilation, ceil_mode);
}

// cnnops.max_pool2d's common call: a 4-D input and int arguments (stride already
// defaulted to kernel_size), values only; the values op when no graph is recorded,
// else max_pool2d_fwd's output (the Python wrapper's work, without building the
// lists). Arguments out of the range the op takes without a message return None,
// and the Python side runs its checks, which name what is wrong.
std::optional<at::Tensor> max_pool2d_ints(const at::Tensor& x, int64_t kernel, int64_t stride, int64_t padding,
                                          int64_t dilation, bool ceil_mode) {
  if (x.dim() != 4 || kernel <= 0 || stride <= 0 || dilation <= 0 || padding < 0 || padding > kernel / 2)
    return std::nullopt;
  // Fixed-size lists: no allocation per call.
  const std::array<int64_t, 2> k{kernel, kernel}, s{stride, stride}, d{dilation, dilation};
  const std::array<int64_t, 4> pad{padding, padding, padding, padding};
  if (at::GradMode::is_enabled() && x.requires_grad())
    return std::get<0>(max_pool2d_fwd_op().call(x, k, s, pad, d, ceil_mode));
  return max_pool2d_values_op().call(x, k, s, pad, d, ceil_mode);
}

// conv_transpose2d's forward (conv2d_dgrad of the input) when its arguments need
// no message: 4-D float32/float64 input and weight of one dtype, non-empty feature
// dims, input channels = weight.size(0), output_padding below max(stride, dilation)
// on each axis and a positive output size (torch's rules); stride, padding,
// output_padding and dilation are pairs, padding non-negative (the Python side has
// normalised them). Anything else returns None, and cnnops.conv_transpose2d then
// runs its checks in Python, which name what is wrong.
std::optional<at::Tensor> conv_transpose2d(const at::Tensor& x, const at::Tensor& w, const Opt& b,
                                           const Ints& stride, const Ints& padding, const Ints& output_padding,
                                           const Ints& dilation, int64_t groups) {
  const auto dtype = x.scalar_type();
  if (x.dim() != 4 || w.dim() != 4 || w.scalar_type() != dtype ||
      (dtype != at::kFloat && dtype != at::kDouble) || x.size(1) == 0 || x.size(2) == 0 || x.size(3) == 0 ||
      x.size(1) != w.size(0))
    return std::nullopt;
  Ints size(2);
  for (int axis = 0; axis < 2; ++axis) {
    if (output_padding[axis] < 0 || output_padding[axis] >= std::max(stride[axis], dilation[axis]))
      return std::nullopt;
    size[axis] = (x.size(2 + axis) - 1) * stride[axis] - 2 * padding[axis] +
                 effective_kernel(w.size(2 + axis), dilation[axis]) + output_padding[axis];
    if (size[axis] < 1) return std::nullopt;
  }
  return conv2d_dgrad(x, w, b, size, stride, padding, dilation, groups);
}

}  // namespace

void bind_direct_calls(pybind11::module& m) {
  pybind11::module d = m.def_submodule("direct", "typed dispatcher calls of the hot ops (cnnops/_ops/direct.py)");
  d.def("conv2d_fprop", &conv2d_fprop);
  d.def("conv2d_dgrad", &conv2d_dgrad);
  d.def("conv_transpose2d", &conv_transpose2d);
  d.def("depthwise_fprop", &depthwise_fprop);
  d.def("conv2d_fprop_fused", &conv2d_fprop_fused);
  d.def("depthwise_fprop_fused", &depthwise_fprop_fused);
  d.def("max_pool2d_values", &max_pool2d_values);
  d.def("max_pool2d_fwd", &max_pool2d_fwd);
  d.def("max_pool2d_ints", &max_pool2d_ints);
}

}  // namespace cnnops
