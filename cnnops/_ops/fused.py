"""The inference ops: conv2d_fprop_fused and depthwise_fprop_fused (C++:
csrc/torch/fused_ops.cpp), a convolution forward whose output stage applies an
activation, a residual add and a second activation in the kernel. Fake kernels only:
the ops have no derivative (their C++ Autograd kernel refuses inputs that need one).
"""
from .. import _checks as check
from .conv2d import _conv2d_fprop_fake
from .depthwise import _depthwise_fprop_fake

ACTIVATIONS = ("none", "relu", "relu6", "silu", "hardswish", "hardsigmoid", "gelu", "gelu_tanh")


def _check_stage(op, out, activation, residual, post_activation):
    for arg, name in (("activation", activation), ("post_activation", post_activation)):
        if name not in ACTIVATIONS:
            raise ValueError(f"{op}: expected {arg} to be one of {', '.join(ACTIVATIONS)}; "
                             f"got '{name}'")
    if residual is not None:
        if residual.shape != out.shape:
            raise ValueError(f"{op}: expected residual to have the output's shape "
                             f"{list(out.shape)}, got {list(residual.shape)}")
        check.same_dtype_device(residual, out, op, "residual", "input")
    return out


def _conv2d_fprop_fused_fake(input, weight, bias, stride, padding, dilation, groups, activation,
                             residual, post_activation):
    out = _conv2d_fprop_fake(input, weight, bias, stride, padding, dilation, groups)
    return _check_stage("cnnops::conv2d_fprop_fused", out, activation, residual, post_activation)


def _depthwise_fprop_fused_fake(input, weight, bias, stride, padding, dilation, activation,
                                residual, post_activation):
    out = _depthwise_fprop_fake(input, weight, bias, stride, padding, dilation)
    return _check_stage("cnnops::depthwise_fprop_fused", out, activation, residual,
                        post_activation)


FAKE_KERNELS = {
    "cnnops::conv2d_fprop_fused": _conv2d_fprop_fused_fake,
    "cnnops::depthwise_fprop_fused": _depthwise_fprop_fused_fake,
}
AUTOGRAD = {}
