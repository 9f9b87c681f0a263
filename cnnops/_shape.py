"""Output sizes and 'same' padding: the one Python copy of the formulas.

The kernels' source of truth is csrc/common/shape.h (effective_kernel,
conv_out_size, pool_out_size). This module mirrors it for the Python side:
the fake kernels (cnnops/_ops/), which must predict the shapes the C++ ops
return, and the argument handling of the public functions (cnnops/functional.py,
cnnops/_to_torch.py), which turns 'same' into explicit padding and computes
conv_transpose2d's output size (those two are argument handling, so they live here
only). Change a formula here and in shape.h together.

Sizes are along one axis unless a name says otherwise; padding is split into the
begin (top/left) and end (bottom/right) side.
"""

_INT64_MAX = 2**63 - 1


def effective_kernel(kernel, dilation):
    """Extent of a dilated filter: taps at 0, dilation, ..., dilation * (kernel - 1)."""
    return dilation * (kernel - 1) + 1


def conv_out_size(size, kernel, pad_begin, pad_end, stride, dilation):
    """Convolution output size; 0 when the dilated kernel does not fit the padded input."""
    span = size + pad_begin + pad_end - effective_kernel(kernel, dilation)
    return 0 if span < 0 else span // stride + 1


def conv_output_size(H, W, R, S, padding, stride, dilation, op):
    """(P, Q) of a convolution of an H x W input with an R x S kernel and
    padding (top, bottom, left, right); raises ValueError, with `op` in the message,
    where the kernel does not fit or the size overflows int64. Mirrors
    conv_output_size_checked in csrc/torch/checks.cpp."""
    ph, pw = H + padding[0] + padding[1], W + padding[2] + padding[3]
    eh, ew = effective_kernel(R, dilation[0]), effective_kernel(S, dilation[1])
    if ph < eh or pw < ew:
        raise ValueError(f"{op}: the dilated kernel ({eh} x {ew}) is larger than the padded input "
                         f"({ph} x {pw}); expected the padded input to be at least the kernel size")
    P = conv_out_size(H, R, padding[0], padding[1], stride[0], dilation[0])
    Q = conv_out_size(W, S, padding[2], padding[3], stride[1], dilation[1])
    if P > _INT64_MAX or Q > _INT64_MAX:
        raise ValueError(f"{op}: the output size ({P} x {Q}) does not fit in int64")
    return P, Q


def conv_end_padding(out, size, kernel, pad_begin, stride, dilation):
    """The end padding with which a convolution over `size` inputs (begin padding
    pad_begin) gives `out` outputs: conv_out_size solved for pad_end, taking the
    smallest such padding (negative: the input's end is cropped). The backward
    formulas use it to reproduce a grad_output's size with conv2d_fprop."""
    return (out - 1) * stride + effective_kernel(kernel, dilation) - size - pad_begin


def conv_transpose_out_size(size, kernel, padding, output_padding, stride, dilation):
    """Transposed-convolution output size (torch's formula); may be < 1, which callers
    refuse."""
    return ((size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1)


def pool_out_size(size, kernel, pad_begin, pad_end, stride, dilation, ceil_mode):
    """Pooling output size: torch's pooling_output_shape with (begin, end) padding; with
    ceil_mode a last window that would start in the end padding is dropped."""
    span = size + pad_begin + pad_end - effective_kernel(kernel, dilation)
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def same_padding(size, kernel, stride, dilation):
    """TensorFlow/Keras 'same' padding as [begin, end]: output ceil(size / stride), the
    odd pixel at the end (bottom/right). For stride 1 this is exactly torch's
    padding='same'."""
    out = -(-size // stride)
    total = max((out - 1) * stride + effective_kernel(kernel, dilation) - size, 0)
    return [total // 2, total - total // 2]


def same_padding2d(size_hw, kernel_hw, stride, dilation):
    """same_padding along H and W as [top, bottom, left, right]."""
    return (same_padding(size_hw[0], kernel_hw[0], stride[0], dilation[0])
            + same_padding(size_hw[1], kernel_hw[1], stride[1], dilation[1]))
