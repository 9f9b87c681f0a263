"""The hot ops called the short way: `direct.conv2d_fprop(...)` is
`torch.ops.cnnops.conv2d_fprop(...)` with the same arguments and the same result.

torch.ops parses a call's Python arguments against the op's schema before it reaches the
dispatcher: 6-8 us a call, more than the kernel of a small layer, so cnnops.conv2d on a
(1, 8, 8, 8) input cost more than F.conv2d and cnnops.max_pool2d twice F.max_pool2d. The
functions here hand the arguments, as typed C++ values, to the same operators through the
dispatcher's typed handles (csrc/torch/direct_calls.cpp), so everything the dispatcher does
still happens (autograd, dispatch modes, the profiler's record, fake and functional tensors,
inference mode). What torch.ops does before the dispatcher is __torch_function__ handling,
so a call takes the short way only when no argument has an override (plain tensors and
Parameters) and no torch function mode is on, and never while torch.compile traces (it then
sees torch.ops, which it knows).
"""
import torch
from torch.nn import Parameter

from .. import _C
from ._common import ops

_direct = _C.direct
_function_mode = torch._C._is_torch_function_mode_enabled
_is_compiling = torch.compiler.is_compiling
_PLAIN = (torch.Tensor, Parameter)


def usable(*tensors):
    """Whether a direct call of an op on these tensor arguments (None for an absent
    optional one) does what torch.ops' call would."""
    if _is_compiling() or _function_mode():
        return False
    for t in tensors:
        if t is not None and type(t) not in _PLAIN:
            return False
    return True


def conv2d_fprop(x, w, b, stride, padding, dilation, groups):
    if usable(x, w, b):
        return _direct.conv2d_fprop(x, w, b, stride, padding, dilation, groups)
    return ops.conv2d_fprop(x, w, b, stride, padding, dilation, groups)


def conv2d_dgrad(dy, w, b, input_size, stride, padding, dilation, groups):
    if usable(dy, w, b):
        return _direct.conv2d_dgrad(dy, w, b, input_size, stride, padding, dilation, groups)
    return ops.conv2d_dgrad(dy, w, b, input_size, stride, padding, dilation, groups)


def conv_transpose2d(x, w, b, stride, padding, output_padding, dilation, groups):
    """conv_transpose2d's forward, or None when a direct call does not apply or an
    argument needs checking (csrc/torch/direct_calls.cpp says which arguments pass)."""
    if usable(x, w, b):
        return _direct.conv_transpose2d(x, w, b, stride, padding, output_padding, dilation, groups)
    return None


def depthwise_fprop(x, w, b, stride, padding, dilation):
    if usable(x, w, b):
        return _direct.depthwise_fprop(x, w, b, stride, padding, dilation)
    return ops.depthwise_fprop(x, w, b, stride, padding, dilation)


def conv2d_fprop_fused(x, w, b, stride, padding, dilation, groups, act, residual, post):
    if usable(x, w, b, residual):
        return _direct.conv2d_fprop_fused(x, w, b, stride, padding, dilation, groups, act, residual,
                                          post)
    return ops.conv2d_fprop_fused(x, w, b, stride, padding, dilation, groups, act, residual, post)


def depthwise_fprop_fused(x, w, b, stride, padding, dilation, act, residual, post):
    if usable(x, w, b, residual):
        return _direct.depthwise_fprop_fused(x, w, b, stride, padding, dilation, act, residual, post)
    return ops.depthwise_fprop_fused(x, w, b, stride, padding, dilation, act, residual, post)


def max_pool2d_values(x, kernel_size, stride, padding, dilation, ceil_mode):
    if usable(x):
        return _direct.max_pool2d_values(x, kernel_size, stride, padding, dilation, ceil_mode)
    return ops.max_pool2d_values(x, kernel_size, stride, padding, dilation, ceil_mode)


max_pool2d_ints = _direct.max_pool2d_ints  # callers check usable() first


def max_pool2d_fwd(x, kernel_size, stride, padding, dilation, ceil_mode):
    if usable(x):
        return _direct.max_pool2d_fwd(x, kernel_size, stride, padding, dilation, ceil_mode)
    return ops.max_pool2d_fwd(x, kernel_size, stride, padding, dilation, ceil_mode)
