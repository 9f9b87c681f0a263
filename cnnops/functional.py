"""Public functions with the arguments of their torch.nn.functional namesakes.

This module turns user arguments (ints or pairs, 'same'/'valid', unbatched
inputs) into the explicit form the registered ops take; the ops check the rest.
"""
import numbers

import torch

from . import _checks as check
from ._ops import direct, ops
from ._shape import conv_transpose_out_size, same_padding2d


def _is_int(v):
    return isinstance(v, (numbers.Integral, torch.SymInt)) and not isinstance(v, bool)


def _pair(value, name, fn):
    """An int or a sequence of one or two ints, as torch accepts, as a list of two."""
    # The common cases first, with exact type tests (the checks below go through the
    # numbers.Integral ABC, a per-call cost that small layers notice).
    if type(value) is int:
        return [value, value]
    if type(value) is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int:
        return list(value)
    if _is_int(value):
        return [value, value]
    if (isinstance(value, (tuple, list, torch.Size)) and len(value) in (1, 2)
            and all(map(_is_int, value))):
        return [value[0], value[-1]]
    raise ValueError(f"cnnops.{fn}: expected {name} to be an int or a tuple of 2 ints, "
                     f"got {value!r}")


def _check_tensor(value, name, fn):
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"cnnops.{fn}: expected {name} to be a torch.Tensor, "
                        f"got {type(value).__name__}")


def _batched(input, fn):
    """(input as 4-D, whether it was unbatched)."""
    _check_tensor(input, "input", fn)
    dim = input.dim()
    if dim == 4:
        return input, False
    if dim == 3:
        return input.unsqueeze(0), True
    raise ValueError(f"cnnops.{fn}: expected input to be 3-D (C, H, W, unbatched) or 4-D "
                     f"(N, C, H, W), got a {input.dim()}-D tensor of shape {list(input.shape)}")


def _padding4(padding, input, kernel_hw, stride, dilation, fn):
    """Padding as [top, bottom, left, right] from an int, a pair, 'valid' or 'same'
    (TensorFlow/Keras: output ceil(size / stride), the odd pixel at the bottom/right; for
    stride 1 exactly torch's 'same'). kernel_hw is only read for 'same'."""
    if type(padding) is int and padding >= 0:  # the common case
        return [padding, padding, padding, padding]
    if isinstance(padding, str):
        if padding == "valid":
            return [0, 0, 0, 0]
        if padding == "same":
            return same_padding2d(input.shape[2:], kernel_hw, stride, dilation)
        raise ValueError(f"cnnops.{fn}: invalid padding string {padding!r}, expected 'valid', "
                         f"'same', an int or a tuple of 2 ints")
    ph, pw = _pair(padding, "padding", fn)
    if ph < 0 or pw < 0:
        raise ValueError(f"cnnops.{fn}: expected padding to be non-negative, got {padding!r}")
    return [ph, ph, pw, pw]


def conv_padding(padding, input, weight, stride, dilation, fn):
    """A convolution's padding as [top, bottom, left, right] from an int, a pair, 'same' or
    'valid'."""
    if isinstance(padding, str) and padding == "same" and weight.dim() != 4:
        return [0, 0, 0, 0]  # the op reports the bad weight
    return _padding4(padding, input, weight.shape[2:], stride, dilation, fn)


def _check_groups(groups, fn):
    if type(groups) is int and groups > 0:  # the common case, without the ABC check
        return
    if not _is_int(groups) or groups <= 0:
        raise ValueError(f"cnnops.{fn}: expected groups to be a positive int, got {groups!r}")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Drop-in for torch.nn.functional.conv2d.

    Beyond torch, padding='same' also works for stride > 1, with TensorFlow/Keras
    semantics (output size ceil(H / stride); the odd padding pixel at the bottom/right).
    """
    fn = "conv2d"
    x, unbatched = _batched(input, fn)
    stride = _pair(stride, "stride", fn)
    dilation = _pair(dilation, "dilation", fn)
    _check_groups(groups, fn)
    _check_tensor(weight, "weight", fn)
    pad = conv_padding(padding, x, weight, stride, dilation, fn)
    if _is_depthwise(x, weight, bias, groups):
        y = direct.depthwise_fprop(x, weight, bias, stride, pad, dilation)
    else:
        y = direct.conv2d_fprop(x, weight, bias, stride, pad, dilation, groups)
    return y.squeeze(0) if unbatched else y


def _is_depthwise(x, weight, bias, groups):
    """Whether conv2d(x, weight, bias, groups=groups) is a well-formed depthwise convolution
    for the dedicated kernels (anything malformed goes to conv2d_fprop, which reports it
    under conv2d's name)."""
    dtypes = (torch.float32, torch.float64) + ((torch.float16, torch.bfloat16) if x.is_cuda else ())
    return (groups > 1 and x.dim() == 4 and x.shape[1] == groups and x.dtype in dtypes
            and weight.dim() == 4 and weight.shape[1] == 1 and weight.shape[0] % groups == 0
            and weight.dtype == x.dtype and weight.device == x.device
            and (bias is None or (bias.dim() == 1 and bias.shape[0] == weight.shape[0]
                                  and bias.dtype == x.dtype and bias.device == x.device)))


def conv_transpose_output_size(input, weight, stride, padding, output_padding, dilation, fn):
    """[H_out, W_out] of a transposed convolution, checking output_padding like torch."""
    _, _, h, w = input.shape
    kh, kw = weight.shape[2], weight.shape[3]
    size = [conv_transpose_out_size(h, kh, padding[0], output_padding[0], stride[0], dilation[0]),
            conv_transpose_out_size(w, kw, padding[1], output_padding[1], stride[1], dilation[1])]
    if (size[0] >= 1 and size[1] >= 1 and 0 <= output_padding[0] < max(stride[0], dilation[0])
            and 0 <= output_padding[1] < max(stride[1], dilation[1])):
        return size  # the common case, in one test
    for axis in range(2):
        if output_padding[axis] < 0:
            raise ValueError(f"cnnops.{fn}: expected output_padding to be non-negative, "
                             f"got {output_padding}")
        if output_padding[axis] >= max(stride[axis], dilation[axis]):
            raise ValueError(f"cnnops.{fn}: output_padding {output_padding} must be smaller than "
                             f"either stride {stride} or dilation {dilation} in each dimension")
        if size[axis] < 1:
            raise ValueError(f"cnnops.{fn}: the computed output size would be {size[axis]} along "
                             f"{'HW'[axis]} (input {list(input.shape)}, weight "
                             f"{list(weight.shape)}, stride {stride}, padding {padding}, "
                             f"dilation {dilation}); expected a positive size")
    return size


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Drop-in for torch.nn.functional.conv_transpose2d (the adjoint of conv2d)."""
    fn = "conv_transpose2d"
    x, unbatched = _batched(input, fn)
    stride = _pair(stride, "stride", fn)
    dilation = _pair(dilation, "dilation", fn)
    output_padding = _pair(output_padding, "output_padding", fn)
    _check_groups(groups, fn)
    if isinstance(padding, str):
        raise ValueError(f"cnnops.{fn}: expected padding to be an int or a tuple of 2 ints, "
                         f"got {padding!r}")
    padding = _pair(padding, "padding", fn)
    if padding[0] < 0 or padding[1] < 0:
        raise ValueError(f"cnnops.{fn}: expected padding to be non-negative, got {padding}")
    _check_tensor(weight, "weight", fn)
    # Arguments that need no message go straight to the op (checked in C++); the
    # checks below name what is wrong with the others.
    y = direct.conv_transpose2d(x, weight, bias, stride, padding, output_padding, dilation, groups)
    if y is not None:
        return y.squeeze(0) if unbatched else y
    # The op is conv2d_dgrad, whose messages would call the input 'grad_output': check the
    # input here, under its own name.
    op = "cnnops.conv_transpose2d"
    check.float_tensor(x, op, "input")
    check.nonempty_feature_dims(x, op, "input")
    if weight.dim() != 4:
        raise ValueError(f"{op}: expected weight to be a 4-D tensor (in_channels, "
                         f"out_channels/groups, kH, kW), got {getattr(weight, 'shape', weight)!r}")
    channels, in_channels = x.shape[1], weight.shape[0]
    if channels != in_channels:
        raise ValueError(f"{op}: expected input to have weight.size(0) = {in_channels} "
                         f"channels, got {channels} (input shape {list(x.shape)})")
    if x.dtype != weight.dtype:
        raise TypeError(f"cnnops.{fn}: expected weight to have the same dtype as input "
                        f"({check.dtype_name(x.dtype)}), got {check.dtype_name(weight.dtype)}")
    size = conv_transpose_output_size(x, weight, stride, padding, output_padding, dilation, fn)
    y = direct.conv2d_dgrad(x, weight, bias, size, stride, padding, dilation, groups)
    return y.squeeze(0) if unbatched else y


# ----------------------------------------------------------------------------- max pooling

def _pool_padding(padding, input, kernel_size, stride, dilation, fn):
    """Padding as [top, bottom, left, right]: an int, a pair, 'valid' or 'same' (Keras)."""
    pad = _padding4(padding, input, kernel_size, stride, dilation, fn)
    # torch's rule, on the undilated kernel (for explicit padding; the op checks 'same'
    # against the effective kernel, which its padding never exceeds half of)
    if not isinstance(padding, str) and (pad[0] > kernel_size[0] // 2
                                         or pad[2] > kernel_size[1] // 2):
        raise ValueError(f"cnnops.{fn}: pad should be at most half of effective kernel size, "
                         f"but got padding={padding!r}, kernel_size={kernel_size} and "
                         f"dilation={dilation}")
    return pad


def _max_pool2d_args(input, kernel_size, stride, padding, dilation):
    """(input as 4-D, whether it was unbatched, kernel_size, stride, padding (top, bottom,
    left, right), dilation), checked."""
    if (type(kernel_size) is int and type(padding) is int and type(dilation) is int
            and (stride is None or type(stride) is int) and type(input) is torch.Tensor
            and input.dim() == 4):
        # The common call (ints and a batch) without the general normalisation: the
        # per-call cost of small layers. Any value out of range goes below.
        s = kernel_size if stride is None else stride
        if kernel_size > 0 and s > 0 and dilation > 0 and 0 <= padding <= kernel_size // 2:
            return input, False, [kernel_size] * 2, [s] * 2, [padding] * 4, [dilation] * 2
    fn = "max_pool2d"
    x, unbatched = _batched(input, fn)
    kernel_size = _pair(kernel_size, "kernel_size", fn)
    no_stride = stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0)
    stride = kernel_size if no_stride else _pair(stride, "stride", fn)
    dilation = _pair(dilation, "dilation", fn)
    for name, v in (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
        if v[0] <= 0 or v[1] <= 0:
            raise ValueError(f"cnnops.{fn}: expected {name} to be positive, got {v}")
    pad = _pool_padding(padding, x, kernel_size, stride, dilation, fn)
    return x, unbatched, kernel_size, stride, pad, dilation


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Drop-in for torch.nn.functional.max_pool2d (values and int64 indices as torch's).

    Beyond torch, padding='same' gives TensorFlow/Keras MaxPooling2D semantics for any
    stride: output size ceil(H / stride), the odd padding pixel at the bottom/right, padded
    cells never chosen. A call that needs no gradient and no indices skips computing them
    (max_pool2d_values).
    """
    if (not return_indices and type(kernel_size) is int and type(padding) is int
            and type(dilation) is int and (stride is None or type(stride) is int)
            and direct.usable(input)):
        # The common call, its checks and dispatch in one C++ call (the per-call cost
        # of small layers); None when an argument needs the checks below.
        y = direct.max_pool2d_ints(input, kernel_size, kernel_size if stride is None else stride,
                                   padding, dilation, bool(ceil_mode))
        if y is not None:
            return y
    x, unbatched, kernel_size, stride, pad, dilation = _max_pool2d_args(input, kernel_size, stride,
                                                                        padding, dilation)
    if not return_indices and not (torch.is_grad_enabled() and x.requires_grad):
        y = direct.max_pool2d_values(x, kernel_size, stride, pad, dilation, bool(ceil_mode))
        return y.squeeze(0) if unbatched else y
    y, ind = direct.max_pool2d_fwd(x, kernel_size, stride, pad, dilation, bool(ceil_mode))
    if unbatched:
        y, ind = y.squeeze(0), ind.squeeze(0)
    return (y, ind) if return_indices else y


# ----------------------------------------------------------------------------- average pooling

def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Drop-in for torch.nn.functional.avg_pool2d.

    Beyond torch, padding='same' gives TensorFlow/Keras AveragePooling2D semantics for any
    stride: output size ceil(H / stride), the odd padding pixel at the bottom/right, and the
    padded cells never counted in the divisor (count_include_pad does not apply to them).
    """
    fn = "avg_pool2d"
    x, unbatched = _batched(input, fn)
    kernel_size = _pair(kernel_size, "kernel_size", fn)
    no_stride = stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0)
    stride = kernel_size if no_stride else _pair(stride, "stride", fn)
    for name, v in (("kernel_size", kernel_size), ("stride", stride)):
        if v[0] <= 0 or v[1] <= 0:
            raise ValueError(f"cnnops.{fn}: expected {name} to be positive, got {v}")
    pad = _padding4(padding, x, kernel_size, stride, (1, 1), fn)
    if isinstance(padding, str):
        count_include_pad = False  # 'same' (Keras) counts the input cells only; 'valid' pads nothing
    elif pad[0] > kernel_size[0] // 2 or pad[2] > kernel_size[1] // 2:
        raise ValueError(f"cnnops.{fn}: expected padding to be at most half the kernel size, got "
                         f"padding={padding!r} and kernel_size={kernel_size}")
    if divisor_override is not None and (not _is_int(divisor_override) or divisor_override == 0):
        raise ValueError(f"cnnops.{fn}: expected divisor_override to be a non-zero int or None, "
                         f"got {divisor_override!r}")
    y = ops.avg_pool2d_fwd(x, kernel_size, stride, pad, bool(ceil_mode), bool(count_include_pad),
                           divisor_override)
    return y.squeeze(0) if unbatched else y


def _output_size(output_size, x, fn):
    """output_size as a list of two sizes: an int, or a pair of ints or None (None: the
    input's size along that axis), as torch accepts."""
    if type(output_size) is int:  # the common case first
        size = [output_size, output_size]
    elif _is_int(output_size):
        size = [output_size, output_size]
    elif (isinstance(output_size, (tuple, list, torch.Size)) and len(output_size) == 2
          and all(v is None or _is_int(v) for v in output_size)):
        size = [x.shape[2 + i] if v is None else v for i, v in enumerate(output_size)]
    else:
        raise ValueError(f"cnnops.{fn}: expected output_size to be an int or a tuple of 2 ints "
                         f"(or None), got {output_size!r}")
    if size[0] < 0 or size[1] < 0:
        raise ValueError(f"cnnops.{fn}: expected output_size to be non-negative, got {output_size!r}")
    return size


def adaptive_avg_pool2d(input, output_size):
    """Drop-in for torch.nn.functional.adaptive_avg_pool2d: output row o averages input rows
    floor(o * H / out) to ceil((o + 1) * H / out), likewise along W; output_size an int or a
    pair of ints, None keeping that axis's input size. An output of 1 x 1 is global average
    pooling, which has its own fast kernels."""
    fn = "adaptive_avg_pool2d"
    x, unbatched = _batched(input, fn)
    y = ops.adaptive_avg_pool2d_fwd(x, _output_size(output_size, x, fn))
    return y.squeeze(0) if unbatched else y


# ----------------------------------------------------------------------------- depthwise, separable

def depthwise_conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1):
    """Depthwise convolution: weight (C * M, 1, kH, kW), output channel k reads input channel
    k // M (conv2d with groups = C). padding: int, pair, 'valid' or 'same' (Keras, any stride).
    """
    fn = "depthwise_conv2d"
    x, unbatched = _batched(input, fn)
    stride = _pair(stride, "stride", fn)
    dilation = _pair(dilation, "dilation", fn)
    _check_tensor(weight, "weight", fn)
    pad = conv_padding(padding, x, weight, stride, dilation, fn)
    y = direct.depthwise_fprop(x, weight, bias, stride, pad, dilation)
    return y.squeeze(0) if unbatched else y


def separable_conv2d(input, depthwise_weight, pointwise_weight, bias=None, stride=1, padding=0,
                     dilation=1):
    """Keras SeparableConv2D: depthwise_conv2d(input, depthwise_weight (C*M, 1, kH, kW), stride,
    padding, dilation), then a 1x1 conv2d with pointwise_weight (K, C*M, 1, 1) and bias (K)."""
    fn = "separable_conv2d"
    _check_tensor(pointwise_weight, "pointwise_weight", fn)
    if pointwise_weight.dim() != 4 or pointwise_weight.shape[2:] != (1, 1):
        raise ValueError(f"cnnops.{fn}: expected pointwise_weight of shape (out_channels, "
                         f"in_channels * depth_multiplier, 1, 1), "
                         f"got {list(pointwise_weight.shape)}")
    y = depthwise_conv2d(input, depthwise_weight, None, stride, padding, dilation)
    return conv2d(y, pointwise_weight, bias)


# ----------------------------------------------------------------------------- fused (inference)

ACTIVATIONS = ("relu", "relu6", "silu", "hardswish", "hardsigmoid", "gelu", "gelu_tanh")


def _activation(name, fn, arg):
    if name is None or name == "none":
        return "none"
    if isinstance(name, str) and name in ACTIVATIONS:
        return name
    raise ValueError(f"cnnops.{fn}: expected {arg} to be None or one of {', '.join(ACTIVATIONS)}, "
                     f"got {name!r}")


def conv2d_fused(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                 activation=None, residual=None, post_activation=None):
    """Inference-only convolution with its output stage fused:

        post_activation(activation(conv2d(input, weight, bias, ...)) + residual)

    conv2d's arguments (depthwise weights go to the depthwise kernels); activation and
    post_activation are None or one of ACTIVATIONS ('gelu' is erf-based, 'gelu_tanh'
    torch's approximate='tanh'); residual, when given, has the output's shape. No
    autograd: for eval / no-grad use (cnnops.optimize_for_inference builds on it)."""
    fn = "conv2d_fused"
    act = _activation(activation, fn, "activation")
    post = _activation(post_activation, fn, "post_activation")
    x, unbatched = _batched(input, fn)
    stride = _pair(stride, "stride", fn)
    dilation = _pair(dilation, "dilation", fn)
    _check_groups(groups, fn)
    _check_tensor(weight, "weight", fn)
    if residual is not None:
        _check_tensor(residual, "residual", fn)
        if unbatched:
            residual = residual.unsqueeze(0)
    pad = conv_padding(padding, x, weight, stride, dilation, fn)
    if _is_depthwise(x, weight, bias, groups):
        y = direct.depthwise_fprop_fused(x, weight, bias, stride, pad, dilation, act, residual, post)
    else:
        y = direct.conv2d_fprop_fused(x, weight, bias, stride, pad, dilation, groups, act, residual,
                                      post)
    return y.squeeze(0) if unbatched else y
