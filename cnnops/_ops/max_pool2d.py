"""The max_pool2d family: max_pool2d_fwd (values and int64 indices), max_pool2d_values
(values only, for calls that need neither gradient nor indices) and max_pool2d_bwd.

Fake kernels, and the autograd formula of max_pool2d_bwd (the ops are C++:
csrc/torch/max_pool2d_ops.cpp). max_pool2d_fwd's autograd kernel is C++
(csrc/torch/max_pool2d_autograd.cpp), for the per-call cost of small layers: it calls
max_pool2d_bwd at the saved indices. max_pool2d_bwd is linear in grad_output, so its own
backward (double backward) is a gather at the indices.
"""
import torch
from torch._prims_common import suggest_memory_format

from .. import _checks as check
from .._shape import effective_kernel, pool_out_size
from ._common import empty, out_format

# --------------------------------------------------------------------------- fake kernels

def _max_pool2d_fwd_fake(input, kernel_size, stride, padding, dilation, ceil_mode):
    y = _max_pool2d_values_fake(input, kernel_size, stride, padding, dilation, ceil_mode,
                                op="cnnops::max_pool2d_fwd")
    ind = torch.empty(y.shape, dtype=torch.int64, device=input.device,
                      memory_format=suggest_memory_format(input))
    return y, ind


def _max_pool2d_values_fake(input, kernel_size, stride, padding, dilation, ceil_mode,
                            op="cnnops::max_pool2d_values"):
    check.rank(input, 4, op, "input", "N, C, H, W")
    check.float_tensor(input, op, "input")
    check.supported_device(input, op, "input")
    check.max_pool_window(op, kernel_size, stride, dilation)
    check.int_list(padding, 4, 0, op, "padding", "non-negative (top, bottom, left, right)")
    eh = effective_kernel(kernel_size[0], dilation[0])
    ew = effective_kernel(kernel_size[1], dilation[1])
    if not (padding[0] <= eh // 2 and padding[1] <= eh // 2 and padding[2] <= ew // 2
            and padding[3] <= ew // 2):
        raise ValueError(f"{op}: expected padding to be at most half the effective kernel size "
                         f"({eh} x {ew}), got {list(padding)}")
    check.nonempty_feature_dims(input, op, "input")
    N, C, H, W = input.shape
    P = pool_out_size(H, kernel_size[0], padding[0], padding[1], stride[0], dilation[0], ceil_mode)
    Q = pool_out_size(W, kernel_size[1], padding[2], padding[3], stride[1], dilation[1], ceil_mode)
    if P < 1 or Q < 1:
        raise ValueError(f"{op}: the output size would be {P} x {Q} for input shape "
                         f"{list(input.shape)}, kernel_size {list(kernel_size)}, stride "
                         f"{list(stride)}, padding {list(padding)}, dilation {list(dilation)}; "
                         f"expected a positive output size")
    return empty((N, C, P, Q), input, suggest_memory_format(input))


def _max_pool2d_bwd_fake(grad_output, indices, input_size, kernel_size, stride, padding, dilation):
    op = "cnnops::max_pool2d_bwd"
    check.rank(grad_output, 4, op, "grad_output", "N, C, P, Q")
    check.float_tensor(grad_output, op, "grad_output")
    check.supported_device(grad_output, op, "grad_output")
    if indices.dtype != torch.int64:
        raise TypeError(f"{op}: expected indices to be int64, "
                        f"got {check.dtype_name(indices.dtype)}")
    if indices.shape != grad_output.shape:
        raise ValueError(f"{op}: expected indices to have the shape of grad_output "
                         f"{list(grad_output.shape)}, got {list(indices.shape)}")
    check.int_list(input_size, 2, 1, op, "input_size", "positive (H, W)")
    check.max_pool_window(op, kernel_size, stride, dilation)
    check.int_list(padding, 2, 0, op, "padding", "non-negative (top, left)")
    N, C = grad_output.shape[:2]
    return empty((N, C, input_size[0], input_size[1]), grad_output,
                 out_format(grad_output, indices))


# --------------------------------------------------------------------------- autograd

def _max_pool_bwd_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[1])


def _max_pool_bwd_backward(ctx, grad):
    # grad_input is linear in grad_output: its adjoint reads grad at each window's index.
    (indices,) = ctx.saved_tensors
    d_dy = None
    if ctx.needs_input_grad[0]:
        N, C, P, Q = indices.shape
        d_dy = grad.reshape(N, C, -1).gather(2, indices.reshape(N, C, -1)).reshape(N, C, P, Q)
    return d_dy, None, None, None, None, None, None


# What cnnops._ops registers for this family, in this order (torch.library.register_fake
# must be called from the module that the C++ TORCH_LIBRARY names: cnnops._ops).
FAKE_KERNELS = {
    "cnnops::max_pool2d_fwd": _max_pool2d_fwd_fake,
    "cnnops::max_pool2d_values": _max_pool2d_values_fake,
    "cnnops::max_pool2d_bwd": _max_pool2d_bwd_fake,
}
AUTOGRAD = {  # op: (backward, setup_context); max_pool2d_fwd's is C++ (see the top)
    "cnnops::max_pool2d_bwd": (_max_pool_bwd_backward, _max_pool_bwd_setup),
}
