"""The registered ops torch.ops.cnnops.*: fake kernels and autograd formulas.

The ops themselves are defined and implemented in C++ (csrc/torch). The
convolution family is closed under differentiation: fprop, dgrad and wgrad are
each bilinear and each one's derivatives are the other two, so every backward
below is written with cnnops ops and double backward comes for free.
"""
import torch
from torch._prims_common import suggest_memory_format

from . import _C  # noqa: F401  (loads the library: registers torch.ops.cnnops.*)
from . import _checks as check

ops = torch.ops.cnnops


def _out_format(a, b):
    cl = torch.channels_last
    if suggest_memory_format(a) == cl or suggest_memory_format(b) == cl:
        return cl
    return torch.contiguous_format


def _empty(shape, like, fmt):
    return torch.empty(shape, dtype=like.dtype, device=like.device, memory_format=fmt)


def _end_padding(out, size, kernel, begin, stride, dilation):
    """The end padding that makes fprop over `size` inputs produce `out` outputs."""
    return (out - 1) * stride + dilation * (kernel - 1) + 1 - size - begin


# --------------------------------------------------------------------------- fake kernels

@torch.library.register_fake("cnnops::conv2d_fprop")
def _conv2d_fprop_fake(input, weight, bias, stride, padding, dilation, groups):
    op = "cnnops::conv2d_fprop"
    check.rank(input, 4, op, "input", "N, C, H, W")
    check.weight(weight, op, "weight")
    check.float_tensor(input, op, "input")
    check.same_dtype_device(weight, input, op, "weight", "input")
    check.hyper(op, stride, dilation, groups)
    if len(padding) != 4:
        raise ValueError(f"{op}: expected padding to have 4 elements (top, bottom, left, right), "
                         f"got {list(padding)}")
    if padding[0] < 0 or padding[2] < 0:
        raise ValueError(f"{op}: expected the top and left padding to be non-negative, "
                         f"got {list(padding)}")
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
    eh, ew = dilation[0] * (R - 1) + 1, dilation[1] * (S - 1) + 1
    ph, pw = H + padding[0] + padding[1], W + padding[2] + padding[3]
    if ph < eh or pw < ew:
        raise ValueError(f"{op}: the dilated kernel ({eh} x {ew}) is larger than the padded input "
                         f"({ph} x {pw}); expected the padded input to be at least the kernel size")
    P = (ph - eh) // stride[0] + 1
    Q = (pw - ew) // stride[1] + 1
    return _empty((N, K, P, Q), input, _out_format(input, weight))


@torch.library.register_fake("cnnops::conv2d_dgrad")
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
        raise ValueError(f"{op}: expected weight.size(0) = {K} to be divisible by groups = {groups}")
    C = weight.shape[1] * groups
    check.bias(bias, C, grad_output, op)
    return _empty((N, C, input_size[0], input_size[1]), grad_output,
                  _out_format(grad_output, weight))


@torch.library.register_fake("cnnops::conv2d_wgrad")
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
    return _empty((K, C // groups, kernel_size[0], kernel_size[1]), input,
                  _out_format(input, grad_output))


@torch.library.register_fake("cnnops::conv2d_bias_grad")
def _conv2d_bias_grad_fake(grad_output):
    op = "cnnops::conv2d_bias_grad"
    check.rank(grad_output, 4, op, "grad_output", "N, K, P, Q")
    check.float_tensor(grad_output, op, "grad_output")
    return grad_output.new_empty((grad_output.shape[1],))


# --------------------------------------------------------------------------- autograd

def _fprop_setup(ctx, inputs, output):
    input, weight, bias, stride, padding, dilation, groups = inputs
    ctx.save_for_backward(input, weight)
    ctx.conf = (list(stride), [padding[0], padding[2]], list(dilation), groups)


def _fprop_backward(ctx, grad):
    input, weight = ctx.saved_tensors
    stride, pad, dilation, groups = ctx.conf
    need_x, need_w, need_b = ctx.needs_input_grad[:3]
    dx = dw = db = None
    if need_x:
        dx = ops.conv2d_dgrad(grad, weight, None, input.shape[2:], stride, pad, dilation, groups)
    if need_w:
        dw = ops.conv2d_wgrad(grad, input, weight.shape[2:], stride, pad, dilation, groups)
    if need_b:
        db = ops.conv2d_bias_grad(grad)
    return dx, dw, db, None, None, None, None


def _dgrad_setup(ctx, inputs, output):
    grad_output, weight, bias, input_size, stride, padding, dilation, groups = inputs
    ctx.save_for_backward(grad_output, weight)
    ctx.conf = (list(stride), list(padding), list(dilation), groups)


def _dgrad_backward(ctx, grad):
    dy, weight = ctx.saved_tensors
    stride, pad, dilation, groups = ctx.conf
    need_dy, need_w, need_b = ctx.needs_input_grad[:3]
    d_dy = d_w = d_b = None
    if need_dy:
        pad4 = [pad[0], _end_padding(dy.shape[2], grad.shape[2], weight.shape[2], pad[0], stride[0], dilation[0]),
                pad[1], _end_padding(dy.shape[3], grad.shape[3], weight.shape[3], pad[1], stride[1], dilation[1])]
        d_dy = ops.conv2d_fprop(grad, weight, None, stride, pad4, dilation, groups)
    if need_w:
        d_w = ops.conv2d_wgrad(dy, grad, weight.shape[2:], stride, pad, dilation, groups)
    if need_b:
        d_b = ops.conv2d_bias_grad(grad)
    return d_dy, d_w, d_b, None, None, None, None, None


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
        pad4 = [pad[0], _end_padding(dy.shape[2], input.shape[2], grad.shape[2], pad[0], stride[0], dilation[0]),
                pad[1], _end_padding(dy.shape[3], input.shape[3], grad.shape[3], pad[1], stride[1], dilation[1])]
        d_dy = ops.conv2d_fprop(input, grad, None, stride, pad4, dilation, groups)
    if need_x:
        d_x = ops.conv2d_dgrad(dy, grad, None, input.shape[2:], stride, pad, dilation, groups)
    return d_dy, d_x, None, None, None, None, None


def _bias_grad_setup(ctx, inputs, output):
    ctx.dy_shape = inputs[0].shape


def _bias_grad_backward(ctx, grad):
    return grad.reshape(1, -1, 1, 1).expand(ctx.dy_shape)


torch.library.register_autograd("cnnops::conv2d_fprop", _fprop_backward, setup_context=_fprop_setup)
torch.library.register_autograd("cnnops::conv2d_dgrad", _dgrad_backward, setup_context=_dgrad_setup)
torch.library.register_autograd("cnnops::conv2d_wgrad", _wgrad_backward, setup_context=_wgrad_setup)
torch.library.register_autograd("cnnops::conv2d_bias_grad", _bias_grad_backward,
                                setup_context=_bias_grad_setup)
