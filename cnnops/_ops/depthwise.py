"""The depthwise family: depthwise_fprop, depthwise_dgrad, depthwise_wgrad and
depthwise_backward (dgrad and wgrad in one pass).

Fake kernels and the autograd formulas of dgrad, wgrad and backward (the ops are C++:
csrc/torch/depthwise_ops.cpp). depthwise_fprop's autograd kernel is C++
(csrc/torch/depthwise_autograd.cpp): it calls depthwise_backward, or depthwise_dgrad /
depthwise_wgrad, and conv2d_bias_grad. As for conv2d, each pass's derivatives are the
other passes, so double backward comes for free.
"""
from .. import _checks as check
from .._shape import conv_output_size
from ._common import empty, fprop_padding, ops, out_format

# --------------------------------------------------------------------------- fake kernels

def _depthwise_fprop_fake(input, weight, bias, stride, padding, dilation):
    op = "cnnops::depthwise_fprop"
    check.rank(input, 4, op, "input", "N, C, H, W")
    check.float_tensor(input, op, "input")
    check.supported_device(input, op, "input")
    check.nonempty_feature_dims(input, op, "input")
    check.depthwise_weight(weight, input.shape[1], op)
    check.same_dtype_device(weight, input, op, "weight", "input")
    check.int_list(stride, 2, 1, op, "stride", "positive")
    check.int_list(dilation, 2, 1, op, "dilation", "positive")
    check.fprop_padding(padding, op)
    N, C, H, W = input.shape
    K, _, R, S = weight.shape
    check.bias(bias, K, input, op)
    P, Q = conv_output_size(H, W, R, S, padding, stride, dilation, op)
    return empty((N, K, P, Q), input, out_format(input, weight))


def _depthwise_dgrad_fake(grad_output, weight, in_channels, input_size, stride, padding, dilation):
    op = "cnnops::depthwise_dgrad"
    check.rank(grad_output, 4, op, "grad_output", "N, K, P, Q")
    check.float_tensor(grad_output, op, "grad_output")
    check.supported_device(grad_output, op, "grad_output")
    check.nonempty_feature_dims(grad_output, op, "grad_output")
    if in_channels <= 0:
        raise ValueError(f"{op}: expected in_channels to be positive, got {in_channels}")
    check.depthwise_weight(weight, in_channels, op)
    check.same_dtype_device(weight, grad_output, op, "weight", "grad_output")
    check.int_list(stride, 2, 1, op, "stride", "positive")
    check.int_list(dilation, 2, 1, op, "dilation", "positive")
    check.int_list(input_size, 2, 1, op, "input_size", "positive (H, W)")
    check.int_list(padding, 2, 0, op, "padding", "non-negative (top, left)")
    N, K = grad_output.shape[:2]
    if weight.shape[0] != K:
        raise ValueError(f"{op}: expected grad_output to have weight.size(0) = {weight.shape[0]} "
                         f"channels, got {K}")
    return empty((N, in_channels, input_size[0], input_size[1]), grad_output,
                 out_format(grad_output, weight))


def _depthwise_wgrad_fake(grad_output, input, kernel_size, stride, padding, dilation):
    op = "cnnops::depthwise_wgrad"
    check.rank(grad_output, 4, op, "grad_output", "N, K, P, Q")
    check.rank(input, 4, op, "input", "N, C, H, W")
    check.float_tensor(input, op, "input")
    check.supported_device(input, op, "input")
    check.same_dtype_device(grad_output, input, op, "grad_output", "input")
    check.int_list(stride, 2, 1, op, "stride", "positive")
    check.int_list(dilation, 2, 1, op, "dilation", "positive")
    check.int_list(kernel_size, 2, 1, op, "kernel_size", "positive")
    check.int_list(padding, 2, 0, op, "padding", "non-negative (top, left)")
    check.nonempty_feature_dims(input, op, "input")
    check.nonempty_feature_dims(grad_output, op, "grad_output")
    if grad_output.shape[0] != input.shape[0]:
        raise ValueError(f"{op}: expected grad_output and input to have the same batch size, "
                         f"got {grad_output.shape[0]} and {input.shape[0]}")
    C, K = input.shape[1], grad_output.shape[1]
    if K % C != 0:
        raise ValueError(f"{op}: expected grad_output channels ({K}) to be a multiple of the "
                         f"input channels ({C})")
    return empty((K, 1, kernel_size[0], kernel_size[1]), input, out_format(input, grad_output))


def _depthwise_backward_fake(grad_output, input, weight, stride, padding, dilation):
    op = "cnnops::depthwise_backward"
    check.rank(input, 4, op, "input", "N, C, H, W")
    check.rank(weight, 4, op, "weight", "in_channels * depth_multiplier, 1, kH, kW")
    dx = _depthwise_dgrad_fake(grad_output, weight, input.shape[1], input.shape[2:], stride,
                               padding, dilation)
    dw = _depthwise_wgrad_fake(grad_output, input, weight.shape[2:], stride, padding, dilation)
    return dx, dw


# --------------------------------------------------------------------------- autograd

def _dw_pass_setup(ctx, inputs, output):
    """depthwise_dgrad(grad_output, weight, ...) and depthwise_wgrad(grad_output, input,
    ...): both save their two tensors; both end with stride, padding, dilation."""
    ctx.save_for_backward(inputs[0], inputs[1])
    ctx.conf = tuple(list(v) for v in inputs[-3:])


def _dw_dgrad_grads(dy, weight, grad, conf, need_dy, need_w):
    """(d_dy, d_w) of depthwise_dgrad(dy, weight) for its output's gradient `grad`."""
    stride, pad, dilation = conf
    d_dy = d_w = None
    if need_dy:
        pad4 = fprop_padding(dy, grad, weight, pad, stride, dilation)
        d_dy = ops.depthwise_fprop(grad, weight, None, stride, pad4, dilation)
    if need_w:
        d_w = ops.depthwise_wgrad(dy, grad, weight.shape[2:], stride, pad, dilation)
    return d_dy, d_w


def _dw_wgrad_grads(dy, input, grad, conf, need_dy, need_x):
    """(d_dy, d_x) of depthwise_wgrad(dy, input) for its output's gradient `grad`."""
    stride, pad, dilation = conf
    d_dy = d_x = None
    if need_dy:
        pad4 = fprop_padding(dy, input, grad, pad, stride, dilation)
        d_dy = ops.depthwise_fprop(input, grad, None, stride, pad4, dilation)
    if need_x:
        d_x = ops.depthwise_dgrad(dy, grad, input.shape[1], input.shape[2:], stride, pad, dilation)
    return d_dy, d_x


def _dw_dgrad_backward(ctx, grad):
    dy, weight = ctx.saved_tensors
    d_dy, d_w = _dw_dgrad_grads(dy, weight, grad, ctx.conf, *ctx.needs_input_grad[:2])
    return d_dy, d_w, None, None, None, None, None


def _dw_wgrad_backward(ctx, grad):
    dy, input = ctx.saved_tensors
    d_dy, d_x = _dw_wgrad_grads(dy, input, grad, ctx.conf, *ctx.needs_input_grad[:2])
    return d_dy, d_x, None, None, None, None


def _dw_backward_setup(ctx, inputs, output):
    grad_output, input, weight, stride, padding, dilation = inputs
    ctx.save_for_backward(grad_output, input, weight)
    ctx.conf = (list(stride), list(padding), list(dilation))
    ctx.set_materialize_grads(False)  # an unused output's gradient stays None


def _dw_backward_backward(ctx, grad_dx, grad_dw):
    """depthwise_backward is depthwise_dgrad(grad_output, weight) and
    depthwise_wgrad(grad_output, input): the sum of their backward formulas."""
    dy, input, weight = ctx.saved_tensors
    need_dy, need_x, need_w = ctx.needs_input_grad[:3]
    d_dy = d_x = d_w = None
    if grad_dx is not None:
        d_dy, d_w = _dw_dgrad_grads(dy, weight, grad_dx, ctx.conf, need_dy, need_w)
    if grad_dw is not None:
        term, d_x = _dw_wgrad_grads(dy, input, grad_dw, ctx.conf, need_dy, need_x)
        d_dy = term if d_dy is None or term is None else d_dy + term
    return d_dy, d_x, d_w, None, None, None


# What cnnops._ops registers for this family, in this order (torch.library.register_fake
# must be called from the module that the C++ TORCH_LIBRARY names: cnnops._ops).
FAKE_KERNELS = {
    "cnnops::depthwise_fprop": _depthwise_fprop_fake,
    "cnnops::depthwise_dgrad": _depthwise_dgrad_fake,
    "cnnops::depthwise_wgrad": _depthwise_wgrad_fake,
    "cnnops::depthwise_backward": _depthwise_backward_fake,
}
AUTOGRAD = {  # op: (backward, setup_context); depthwise_fprop's is C++ (see the top)
    "cnnops::depthwise_backward": (_dw_backward_backward, _dw_backward_setup),
    "cnnops::depthwise_dgrad": (_dw_dgrad_backward, _dw_pass_setup),
    "cnnops::depthwise_wgrad": (_dw_wgrad_backward, _dw_pass_setup),
}
