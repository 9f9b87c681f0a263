"""The conv2d family: conv2d_fprop, conv2d_dgrad, conv2d_wgrad, conv2d_bias_grad.

Fake kernels, and the autograd formulas of wgrad and bias_grad (the ops are C++:
csrc/torch/conv2d_ops.cpp). conv2d_fprop's and conv2d_dgrad's autograd kernels are C++
(csrc/torch/conv2d_autograd.cpp), for the per-call cost of small layers; wgrad and
bias_grad run only in a backward, so their formulas here serve double backward. The family
is closed under differentiation: fprop, dgrad and wgrad are each bilinear and each one's
derivatives are the other two, so every backward is written with these ops and double
backward comes for free. conv_transpose2d is conv2d_dgrad.
"""
import torch

from .. import _checks as check
from .._shape import conv_output_size
from ._common import empty, fprop_padding, ops, out_format


def _conv_out_format(a, b):
    """out_format with torch's CUDA exception: float64 CUDA convolutions (outside
    cuDNN) always give contiguous outputs."""
    if a.device.type == "cuda" and a.dtype == torch.float64:
        return torch.contiguous_format
    return out_format(a, b)


# --------------------------------------------------------------------------- fake kernels

def _conv2d_fprop_fake(input, weight, bias, stride, padding, dilation, groups):
    op = "cnnops::conv2d_fprop"
    check.rank(input, 4, op, "input", "N, C, H, W")
    check.weight(weight, op, "weight")
    check.float_tensor(input, op, "input")
    check.same_dtype_device(weight, input, op, "weight", "input")
    check.hyper(op, stride, dilation, groups)
    check.fprop_padding(padding, op)
    check.nonempty_feature_dims(input, op, "input")
    N, C, H, W = input.shape
    K, Cg, R, S = weight.shape
    if Cg * groups != C:
        raise ValueError(f"{op}: expected input to have weight.size(1) * groups = {Cg} * {groups} "
                         f"= {Cg * groups} channels, got {C} channels "
                         f"(input shape {list(input.shape)})")
    if K % groups != 0:
        raise ValueError(f"{op}: expected out_channels (weight.size(0) = {K}) to be divisible "
                         f"by groups = {groups}")
    check.bias(bias, K, input, op)
    P, Q = conv_output_size(H, W, R, S, padding, stride, dilation, op)
    return empty((N, K, P, Q), input, _conv_out_format(input, weight))


def _conv2d_dgrad_fake(grad_output, weight, bias, input_size, stride, padding, dilation, groups):
    op = "cnnops::conv2d_dgrad"
    check.rank(grad_output, 4, op, "grad_output", "N, K, P, Q")
    check.weight(weight, op, "weight")
    check.float_tensor(grad_output, op, "grad_output")
    check.same_dtype_device(weight, grad_output, op, "weight", "grad_output")
    check.hyper(op, stride, dilation, groups)
    check.int_list(input_size, 2, 1, op, "input_size", "positive (H, W)")
    check.int_list(padding, 2, 0, op, "padding", "non-negative (top, left)")
    check.nonempty_feature_dims(grad_output, op, "grad_output")
    N, K = grad_output.shape[:2]
    if weight.shape[0] != K:
        raise ValueError(f"{op}: expected grad_output to have weight.size(0) = {weight.shape[0]} "
                         f"channels, got {K}")
    if K % groups != 0:
        raise ValueError(f"{op}: expected weight.size(0) = {K} to be divisible by "
                         f"groups = {groups}")
    C = weight.shape[1] * groups
    check.bias(bias, C, grad_output, op)
    return empty((N, C, input_size[0], input_size[1]), grad_output,
                 _conv_out_format(grad_output, weight))


def _conv2d_wgrad_fake(grad_output, input, kernel_size, stride, padding, dilation, groups):
    op = "cnnops::conv2d_wgrad"
    check.rank(grad_output, 4, op, "grad_output", "N, K, P, Q")
    check.rank(input, 4, op, "input", "N, C, H, W")
    check.float_tensor(input, op, "input")
    check.same_dtype_device(grad_output, input, op, "grad_output", "input")
    check.hyper(op, stride, dilation, groups)
    check.int_list(kernel_size, 2, 1, op, "kernel_size", "positive")
    check.int_list(padding, 2, 0, op, "padding", "non-negative (top, left)")
    check.nonempty_feature_dims(input, op, "input")
    check.nonempty_feature_dims(grad_output, op, "grad_output")
    if grad_output.shape[0] != input.shape[0]:
        raise ValueError(f"{op}: expected grad_output and input to have the same batch size, "
                         f"got {grad_output.shape[0]} and {input.shape[0]}")
    C, K = input.shape[1], grad_output.shape[1]
    if C % groups != 0 or K % groups != 0:
        raise ValueError(f"{op}: expected input channels ({C}) and grad_output channels ({K}) "
                         f"to be divisible by groups = {groups}")
    return empty((K, C // groups, kernel_size[0], kernel_size[1]), input,
                 _conv_out_format(input, grad_output))


def _conv2d_bias_grad_fake(grad_output):
    op = "cnnops::conv2d_bias_grad"
    check.rank(grad_output, 4, op, "grad_output", "N, K, P, Q")
    check.float_tensor(grad_output, op, "grad_output")
    return grad_output.new_empty((grad_output.shape[1],))


# --------------------------------------------------------------------------- autograd

def _wgrad_setup(ctx, inputs, output):
    grad_output, input, kernel_size, stride, padding, dilation, groups = inputs
    ctx.save_for_backward(grad_output, input)
    ctx.conf = (list(stride), list(padding), list(dilation), groups)


def _wgrad_backward(ctx, grad):
    dy, input = ctx.saved_tensors
    stride, pad, dilation, groups = ctx.conf
    need_dy, need_x = ctx.needs_input_grad[:2]
    d_dy = d_x = None
    if need_dy:
        pad4 = fprop_padding(dy, input, grad, pad, stride, dilation)
        d_dy = ops.conv2d_fprop(input, grad, None, stride, pad4, dilation, groups)
    if need_x:
        d_x = ops.conv2d_dgrad(dy, grad, None, input.shape[2:], stride, pad, dilation, groups)
    return d_dy, d_x, None, None, None, None, None


def _bias_grad_setup(ctx, inputs, output):
    ctx.dy_shape = inputs[0].shape


def _bias_grad_backward(ctx, grad):
    return grad.reshape(1, -1, 1, 1).expand(ctx.dy_shape)


# What cnnops._ops registers for this family, in this order (torch.library.register_fake
# must be called from the module that the C++ TORCH_LIBRARY names: cnnops._ops).
FAKE_KERNELS = {
    "cnnops::conv2d_fprop": _conv2d_fprop_fake,
    "cnnops::conv2d_dgrad": _conv2d_dgrad_fake,
    "cnnops::conv2d_wgrad": _conv2d_wgrad_fake,
    "cnnops::conv2d_bias_grad": _conv2d_bias_grad_fake,
}
AUTOGRAD = {  # op: (backward, setup_context); fprop's and dgrad's are C++ (see the top)
    "cnnops::conv2d_wgrad": (_wgrad_backward, _wgrad_setup),
    "cnnops::conv2d_bias_grad": (_bias_grad_backward, _bias_grad_setup),
}
