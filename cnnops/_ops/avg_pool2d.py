"""The avg_pool2d family: avg_pool2d_fwd / avg_pool2d_bwd and adaptive_avg_pool2d_fwd /
adaptive_avg_pool2d_bwd, on one kernel family (csrc/cpu/avg_pool2d, csrc/cuda/avg_pool2d;
adaptive windows are a flag of its params).

Fake kernels, and the autograd formulas of the two backward ops (the ops are C++:
csrc/torch/avg_pool2d_ops.cpp). The forwards' autograd kernels are C++
(csrc/torch/avg_pool2d_autograd.cpp), for the per-call cost of small layers: they call
the backward op with the input's size and layout, nothing saved but the arguments. A
backward is linear in grad_output and its adjoint is the forward with the same
arguments, so its own backward (double backward) is the forward op, and so on.
"""
import torch
from torch._prims_common import suggest_memory_format

from .. import _checks as check
from .._shape import pool_out_size
from ._common import empty, ops


def _grad_input_format(channels_last):
    """grad_input's layout: the forward input's (torch's rule), which the op is told."""
    return torch.channels_last if channels_last else torch.contiguous_format


def _pooled_size(op, H, W, kernel_size, stride, padding, ceil_mode):
    """avg_pool2d's output size (P, Q); raises unless positive (mirrors pooled_size in
    csrc/torch/avg_pool2d_ops.cpp)."""
    P = pool_out_size(H, kernel_size[0], padding[0], padding[1], stride[0], 1, ceil_mode)
    Q = pool_out_size(W, kernel_size[1], padding[2], padding[3], stride[1], 1, ceil_mode)
    if P < 1 or Q < 1:
        raise ValueError(f"{op}: the output size would be {P} x {Q} for an input of {H} x {W}, "
                         f"kernel_size {list(kernel_size)}, stride {list(stride)}, padding "
                         f"{list(padding)}; expected a positive output size")
    return P, Q


def _input(t, op, arg, layout):
    check.rank(t, 4, op, arg, layout)
    check.float_tensor(t, op, arg)
    check.supported_device(t, op, arg)


# --------------------------------------------------------------------------- fake kernels

def _avg_pool2d_fwd_fake(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                         divisor_override):
    op = "cnnops::avg_pool2d_fwd"
    _input(input, op, "input", "N, C, H, W")
    check.avg_pool_window(op, kernel_size, stride, padding, divisor_override)
    check.nonempty_feature_dims(input, op, "input")
    N, C, H, W = input.shape
    P, Q = _pooled_size(op, H, W, kernel_size, stride, padding, ceil_mode)
    return empty((N, C, P, Q), input, suggest_memory_format(input))


def _avg_pool2d_bwd_fake(grad_output, input_size, kernel_size, stride, padding, ceil_mode,
                         count_include_pad, divisor_override, channels_last):
    op = "cnnops::avg_pool2d_bwd"
    _input(grad_output, op, "grad_output", "N, C, P, Q")
    check.int_list(input_size, 2, 1, op, "input_size", "positive (H, W)")
    check.avg_pool_window(op, kernel_size, stride, padding, divisor_override)
    P, Q = _pooled_size(op, input_size[0], input_size[1], kernel_size, stride, padding, ceil_mode)
    if grad_output.shape[2] != P or grad_output.shape[3] != Q:
        raise ValueError(f"{op}: expected grad_output of spatial size {P} x {Q} (the output size "
                         f"for input_size {list(input_size)}), got shape {list(grad_output.shape)}")
    N, C = grad_output.shape[:2]
    return empty((N, C, input_size[0], input_size[1]), grad_output,
                 _grad_input_format(channels_last))


def _adaptive_avg_pool2d_fwd_fake(input, output_size):
    op = "cnnops::adaptive_avg_pool2d_fwd"
    _input(input, op, "input", "N, C, H, W")
    check.int_list(output_size, 2, 0, op, "output_size", "non-negative")
    if input.shape[2] == 0 or input.shape[3] == 0:
        raise ValueError(f"{op}: expected input to have non-zero spatial sizes (H, W), got shape "
                         f"{list(input.shape)}")
    N, C = input.shape[:2]
    return empty((N, C, output_size[0], output_size[1]), input, suggest_memory_format(input))


def _adaptive_avg_pool2d_bwd_fake(grad_output, input_size, channels_last):
    op = "cnnops::adaptive_avg_pool2d_bwd"
    _input(grad_output, op, "grad_output", "N, C, P, Q")
    check.int_list(input_size, 2, 1, op, "input_size", "positive (H, W)")
    N, C = grad_output.shape[:2]
    return empty((N, C, input_size[0], input_size[1]), grad_output,
                 _grad_input_format(channels_last))


# --------------------------------------------------------------------------- autograd

def _avg_bwd_setup(ctx, inputs, output):
    ctx.window = inputs[2:8]  # kernel_size, stride, padding, ceil_mode, count_include_pad, divisor


def _avg_bwd_backward(ctx, grad):
    d_dy = ops.avg_pool2d_fwd(grad, *ctx.window) if ctx.needs_input_grad[0] else None
    return (d_dy,) + (None,) * 8


def _adaptive_bwd_setup(ctx, inputs, output):
    ctx.output_size = list(inputs[0].shape[2:])


def _adaptive_bwd_backward(ctx, grad):
    d_dy = ops.adaptive_avg_pool2d_fwd(grad, ctx.output_size) if ctx.needs_input_grad[0] else None
    return d_dy, None, None


# What cnnops._ops registers for this family (see cnnops/_ops/__init__.py).
FAKE_KERNELS = {
    "cnnops::avg_pool2d_fwd": _avg_pool2d_fwd_fake,
    "cnnops::avg_pool2d_bwd": _avg_pool2d_bwd_fake,
    "cnnops::adaptive_avg_pool2d_fwd": _adaptive_avg_pool2d_fwd_fake,
    "cnnops::adaptive_avg_pool2d_bwd": _adaptive_avg_pool2d_bwd_fake,
}
AUTOGRAD = {  # op: (backward, setup_context); the forwards' are C++ (see the top)
    "cnnops::avg_pool2d_bwd": (_avg_bwd_backward, _avg_bwd_setup),
    "cnnops::adaptive_avg_pool2d_bwd": (_adaptive_bwd_backward, _adaptive_bwd_setup),
}
