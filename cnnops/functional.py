"""Public functions with the arguments of their torch.nn.functional namesakes.

This module turns user arguments (ints or pairs, 'same'/'valid', unbatched
inputs) into the explicit form the registered ops take; the ops check the rest.
"""
import numbers

import torch

from ._ops import ops


def _is_int(v):
    return isinstance(v, (numbers.Integral, torch.SymInt)) and not isinstance(v, bool)


def _pair(value, name, fn):
    """An int or a sequence of one or two ints, as torch accepts, as a list of two."""
    if _is_int(value):
        return [value, value]
    if isinstance(value, (tuple, list, torch.Size)) and len(value) in (1, 2) and all(map(_is_int, value)):
        return [value[0], value[-1]]
    raise ValueError(f"cnnops.{fn}: expected {name} to be an int or a tuple of 2 ints, got {value!r}")


def _batched(input, fn):
    """(input as 4-D, whether it was unbatched)."""
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"cnnops.{fn}: expected input to be a torch.Tensor, got {type(input).__name__}")
    if input.dim() == 3:
        return input.unsqueeze(0), True
    if input.dim() == 4:
        return input, False
    raise ValueError(f"cnnops.{fn}: expected input to be 3-D (C, H, W, unbatched) or 4-D "
                     f"(N, C, H, W), got a {input.dim()}-D tensor of shape {list(input.shape)}")


def _same_padding(size, kernel, stride, dilation):
    """TensorFlow/Keras 'same': output = ceil(size / stride), the odd pixel at the end.

    For stride 1 this is exactly torch's padding='same'.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return [total // 2, total - total // 2]


def conv_padding(padding, input, weight, stride, dilation, fn):
    """Padding as [top, bottom, left, right] from an int, a pair, 'same' or 'valid'."""
    if isinstance(padding, str):
        if padding == "valid":
            return [0, 0, 0, 0]
        if padding == "same":
            if weight.dim() != 4:
                return [0, 0, 0, 0]  # the op reports the bad weight
            return (_same_padding(input.shape[2], weight.shape[2], stride[0], dilation[0])
                    + _same_padding(input.shape[3], weight.shape[3], stride[1], dilation[1]))
        raise ValueError(f"cnnops.{fn}: invalid padding string {padding!r}, expected 'valid', 'same', "
                         f"an int or a tuple of 2 ints")
    ph, pw = _pair(padding, "padding", fn)
    if ph < 0 or pw < 0:
        raise ValueError(f"cnnops.{fn}: expected padding to be non-negative, got {padding!r}")
    return [ph, ph, pw, pw]


def _check_groups(groups, fn):
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
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"cnnops.{fn}: expected weight to be a torch.Tensor, got {type(weight).__name__}")
    pad = conv_padding(padding, x, weight, stride, dilation, fn)
    y = ops.conv2d_fprop(x, weight, bias, stride, pad, dilation, groups)
    return y.squeeze(0) if unbatched else y


def conv_transpose_output_size(input, weight, stride, padding, output_padding, dilation, fn):
    """[H_out, W_out] of a transposed convolution, checking output_padding like torch."""
    size = []
    for axis in range(2):
        if output_padding[axis] < 0:
            raise ValueError(f"cnnops.{fn}: expected output_padding to be non-negative, "
                             f"got {output_padding}")
        if output_padding[axis] >= max(stride[axis], dilation[axis]):
            raise ValueError(f"cnnops.{fn}: output_padding {output_padding} must be smaller than "
                             f"either stride {stride} or dilation {dilation} in each dimension")
        out = ((input.shape[2 + axis] - 1) * stride[axis] - 2 * padding[axis]
               + dilation[axis] * (weight.shape[2 + axis] - 1) + output_padding[axis] + 1)
        if out < 1:
            raise ValueError(f"cnnops.{fn}: the computed output size would be {out} along "
                             f"{'HW'[axis]} (input {list(input.shape)}, weight {list(weight.shape)}, "
                             f"stride {stride}, padding {padding}, dilation {dilation}); "
                             f"expected a positive size")
        size.append(out)
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
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4:
        raise ValueError(f"cnnops.{fn}: expected weight to be a 4-D tensor (in_channels, "
                         f"out_channels/groups, kH, kW), got {getattr(weight, 'shape', weight)!r}")
    if x.shape[1] != weight.shape[0]:
        raise ValueError(f"cnnops.{fn}: expected input to have weight.size(0) = {weight.shape[0]} "
                         f"channels, got {x.shape[1]} (input shape {list(x.shape)})")
    if x.dtype != weight.dtype:
        raise TypeError(f"cnnops.{fn}: expected weight to have the same dtype as input "
                        f"({x.dtype}), got {weight.dtype}")
    size = conv_transpose_output_size(x, weight, stride, padding, output_padding, dilation, fn)
    y = ops.conv2d_dgrad(x, weight, bias, size, stride, padding, dilation, groups)
    return y.squeeze(0) if unbatched else y
