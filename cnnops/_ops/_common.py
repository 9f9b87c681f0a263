"""What the op families' fake kernels and backward formulas share: the ops namespace,
torch's rule for the output memory format, and the padding that makes a backward's
conv2d_fprop / depthwise_fprop reproduce a grad_output's size."""
import torch
from torch._prims_common import suggest_memory_format

from .. import _C  # noqa: F401  (loads the library: registers torch.ops.cnnops.*)
from .._shape import conv_end_padding

ops = torch.ops.cnnops


def out_format(a, b):
    """torch's rule: channels_last if either suggests it; an empty batch gives contiguous."""
    cl = torch.channels_last
    if a.shape[0] == 0:
        return torch.contiguous_format
    if suggest_memory_format(a) == cl or suggest_memory_format(b) == cl:
        return cl
    return torch.contiguous_format


def empty(shape, like, fmt):
    """An uninitialised tensor of `shape` with like's dtype and device, in format fmt."""
    return torch.empty(shape, dtype=like.dtype, device=like.device, memory_format=fmt)


def fprop_padding(out, input, weight, pad, stride, dilation):
    """fprop's (top, bottom, left, right) padding that maps `input` onto `out`'s size
    with begin padding `pad`: what a backward needs to reproduce a grad_output."""
    return [pad[0], conv_end_padding(out.shape[2], input.shape[2], weight.shape[2], pad[0],
                                     stride[0], dilation[0]),
            pad[1], conv_end_padding(out.shape[3], input.shape[3], weight.shape[3], pad[1],
                                     stride[1], dilation[1])]
