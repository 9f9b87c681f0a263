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
    """torch's rule: channels_last if either suggests it; an empty batch gives contiguous."""
    cl = torch.channels_last
    if a.shape[0] == 0:
        return torch.contiguous_format
    if suggest_memory_format(a) == cl or suggest_memory_format(b) == cl:
        return cl
    return torch.contiguous_format


def _conv_out_format(a, b):
    """_out_format with torch's CUDA exception: float64 CUDA convolutions (outside
    cuDNN) always give contiguous outputs."""
    if a.device.type == "cuda" and a.dtype == torch.float64:
        return torch.contiguous_format
    return _out_format(a, b)


def _empty(shape, like, fmt):
    return torch.empty(shape, dtype=like.dtype, device=like.device, memory_format=fmt)


def _end_padding(out, size, kernel, begin, stride, dilation):
    """The end padding that makes fprop over `size` inputs produce `out` outputs."""
    return (out - 1) * stride + dilation * (kernel - 1) + 1 - size - begin


def _fprop_padding(out, input, weight, pad, stride, dilation):
    """fprop's (top, bottom, left, right) padding that maps `input` onto `out`'s size
    with begin padding `pad`: what a backward needs to reproduce a grad_output."""
    return [pad[0], _end_padding(out.shape[2], input.shape[2], weight.shape[2], pad[0], stride[0], dilation[0]),
            pad[1], _end_padding(out.shape[3], input.shape[3], weight.shape[3], pad[1], stride[1], dilation[1])]


# --------------------------------------------------------------------------- fake kernels

def _conv_output_size(H, W, R, S, padding, stride, dilation, op):
    """(P, Q); mirrors conv_output_size_checked in csrc/torch/checks.cpp."""
    ph, pw = H + padding[0] + padding[1], W + padding[2] + padding[3]
    eh, ew = dilation[0] * (R - 1) + 1, dilation[1] * (S - 1) + 1
    if ph < eh or pw < ew:
        raise ValueError(f"{op}: the dilated kernel ({eh} x {ew}) is larger than the padded input "
                         f"({ph} x {pw}); expected the padded input to be at least the kernel size")
    P, Q = (ph - eh) // stride[0] + 1, (pw - ew) // stride[1] + 1
    if P > 2**63 - 1 or Q > 2**63 - 1:
        raise ValueError(f"{op}: the output size ({P} x {Q}) does not fit in int64")
    return P, Q


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
    P, Q = _conv_output_size(H, W, R, S, padding, stride, dilation, op)
    return _empty((N, K, P, Q), input, _conv_out_format(input, weight))


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
                  _conv_out_format(grad_output, weight))


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
                  _conv_out_format(input, grad_output))


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
        pad4 = _fprop_padding(dy, grad, weight, pad, stride, dilation)
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
        pad4 = _fprop_padding(dy, input, grad, pad, stride, dilation)
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


# --------------------------------------------------------------------------- max pooling

def pool_out_size(size, kernel, pad_begin, pad_end, stride, dilation, ceil_mode):
    """torch's pooling_output_shape with (begin, end) padding."""
    span = size + pad_begin + pad_end - (dilation * (kernel - 1) + 1)
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


@torch.library.register_fake("cnnops::max_pool2d_fwd")
def _max_pool2d_fwd_fake(input, kernel_size, stride, padding, dilation, ceil_mode):
    y = _max_pool2d_values_fake(input, kernel_size, stride, padding, dilation, ceil_mode,
                                op="cnnops::max_pool2d_fwd")
    ind = torch.empty(y.shape, dtype=torch.int64, device=input.device,
                      memory_format=suggest_memory_format(input))
    return y, ind


@torch.library.register_fake("cnnops::max_pool2d_values")
def _max_pool2d_values_fake(input, kernel_size, stride, padding, dilation, ceil_mode,
                            op="cnnops::max_pool2d_values"):
    check.rank(input, 4, op, "input", "N, C, H, W")
    check.float_tensor(input, op, "input")
    check.supported_device(input, op, "input")
    check.max_pool_window(op, kernel_size, stride, dilation)
    check.int_list(padding, 4, 0, op, "padding", "non-negative (top, bottom, left, right)")
    eh = dilation[0] * (kernel_size[0] - 1) + 1
    ew = dilation[1] * (kernel_size[1] - 1) + 1
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
    return _empty((N, C, P, Q), input, suggest_memory_format(input))


@torch.library.register_fake("cnnops::max_pool2d_bwd")
def _max_pool2d_bwd_fake(grad_output, indices, input_size, kernel_size, stride, padding, dilation):
    op = "cnnops::max_pool2d_bwd"
    check.rank(grad_output, 4, op, "grad_output", "N, C, P, Q")
    check.float_tensor(grad_output, op, "grad_output")
    check.supported_device(grad_output, op, "grad_output")
    if indices.dtype != torch.int64:
        raise TypeError(f"{op}: expected indices to be int64, got {check.dtype_name(indices.dtype)}")
    if indices.shape != grad_output.shape:
        raise ValueError(f"{op}: expected indices to have the shape of grad_output "
                         f"{list(grad_output.shape)}, got {list(indices.shape)}")
    check.int_list(input_size, 2, 1, op, "input_size", "positive (H, W)")
    check.max_pool_window(op, kernel_size, stride, dilation)
    check.int_list(padding, 2, 0, op, "padding", "non-negative (top, left)")
    N, C = grad_output.shape[:2]
    return _empty((N, C, input_size[0], input_size[1]), grad_output,
                  _out_format(grad_output, indices))


def _max_pool_setup(ctx, inputs, output):
    input, kernel_size, stride, padding, dilation, ceil_mode = inputs
    ctx.save_for_backward(output[1])
    ctx.conf = (list(input.shape[2:]), list(kernel_size), list(stride),
                [padding[0], padding[2]], list(dilation))
    ctx.mark_non_differentiable(output[1])
    ctx.set_materialize_grads(False)  # no int64 zeros for the indices' (absent) gradient


def _max_pool_backward(ctx, grad, grad_indices):
    (indices,) = ctx.saved_tensors
    size, kernel_size, stride, pad, dilation = ctx.conf
    dx = None
    if ctx.needs_input_grad[0] and grad is not None:
        dx = ops.max_pool2d_bwd(grad, indices, size, kernel_size, stride, pad, dilation)
    return dx, None, None, None, None, None


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


torch.library.register_autograd("cnnops::max_pool2d_fwd", _max_pool_backward,
                                setup_context=_max_pool_setup)
torch.library.register_autograd("cnnops::max_pool2d_bwd", _max_pool_bwd_backward,
                                setup_context=_max_pool_bwd_setup)


# --------------------------------------------------------------------------- depthwise

@torch.library.register_fake("cnnops::depthwise_fprop")
def _depthwise_fprop_fake(input, weight, bias, stride, padding, dilation):
    op = "cnnops::depthwise_fprop"
    check.rank(input, 4, op, "input", "N, C, H, W")
    check.float_tensor(input, op, "input")
    check.supported_device(input, op, "input")
    check.nonempty_feature_dims(input, op, "input")
    check.depthwise_weight(weight, input.shape[1], op)
    check.same_dtype_device(weight, input, op, "weight", "input")
    check.int_list(stride, 2, 1, op, "stride", "positive")
    check.int_list(dilation, 2, 1, op, "dilation", "positive")
    if len(padding) != 4:
        raise ValueError(f"{op}: expected padding to have 4 elements (top, bottom, left, right), "
                         f"got {list(padding)}")
    if padding[0] < 0 or padding[2] < 0:
        raise ValueError(f"{op}: expected the top and left padding to be non-negative, "
                         f"got {list(padding)}")
    N, C, H, W = input.shape
    K, _, R, S = weight.shape
    check.bias(bias, K, input, op)
    P, Q = _conv_output_size(H, W, R, S, padding, stride, dilation, op)
    return _empty((N, K, P, Q), input, _out_format(input, weight))


@torch.library.register_fake("cnnops::depthwise_dgrad")
def _depthwise_dgrad_fake(grad_output, weight, in_channels, input_size, stride, padding, dilation):
    op = "cnnops::depthwise_dgrad"
    check.rank(grad_output, 4, op, "grad_output", "N, K, P, Q")
    check.float_tensor(grad_output, op, "grad_output")
    check.supported_device(grad_output, op, "grad_output")
    check.nonempty_feature_dims(grad_output, op, "grad_output")
    if in_channels <= 0:
        raise ValueError(f"{op}: expected in_channels to be positive, got {in_channels}")
    check.depthwise_weight(weight, in_channels, op)
    check.same_dtype_device(weight, grad_output, op, "weight", "grad_output")
    check.int_list(stride, 2, 1, op, "stride", "positive")
    check.int_list(dilation, 2, 1, op, "dilation", "positive")
    check.int_list(input_size, 2, 1, op, "input_size", "positive (H, W)")
    check.int_list(padding, 2, 0, op, "padding", "non-negative (top, left)")
    N, K = grad_output.shape[:2]
    if weight.shape[0] != K:
        raise ValueError(f"{op}: expected grad_output to have weight.size(0) = {weight.shape[0]} "
                         f"channels, got {K}")
    return _empty((N, in_channels, input_size[0], input_size[1]), grad_output,
                  _out_format(grad_output, weight))


@torch.library.register_fake("cnnops::depthwise_wgrad")
def _depthwise_wgrad_fake(grad_output, input, kernel_size, stride, padding, dilation):
    op = "cnnops::depthwise_wgrad"
    check.rank(grad_output, 4, op, "grad_output", "N, K, P, Q")
    check.rank(input, 4, op, "input", "N, C, H, W")
    check.float_tensor(input, op, "input")
    check.supported_device(input, op, "input")
    check.same_dtype_device(grad_output, input, op, "grad_output", "input")
    check.int_list(stride, 2, 1, op, "stride", "positive")
    check.int_list(dilation, 2, 1, op, "dilation", "positive")
    check.int_list(kernel_size, 2, 1, op, "kernel_size", "positive")
    check.int_list(padding, 2, 0, op, "padding", "non-negative (top, left)")
    check.nonempty_feature_dims(input, op, "input")
    check.nonempty_feature_dims(grad_output, op, "grad_output")
    if grad_output.shape[0] != input.shape[0]:
        raise ValueError(f"{op}: expected grad_output and input to have the same batch size, "
                         f"got {grad_output.shape[0]} and {input.shape[0]}")
    C, K = input.shape[1], grad_output.shape[1]
    if K % C != 0:
        raise ValueError(f"{op}: expected grad_output channels ({K}) to be a multiple of the "
                         f"input channels ({C})")
    return _empty((K, 1, kernel_size[0], kernel_size[1]), input, _out_format(input, grad_output))


@torch.library.register_fake("cnnops::depthwise_backward")
def _depthwise_backward_fake(grad_output, input, weight, stride, padding, dilation):
    op = "cnnops::depthwise_backward"
    check.rank(input, 4, op, "input", "N, C, H, W")
    check.rank(weight, 4, op, "weight", "in_channels * depth_multiplier, 1, kH, kW")
    dx = _depthwise_dgrad_fake(grad_output, weight, input.shape[1], input.shape[2:], stride,
                               padding, dilation)
    dw = _depthwise_wgrad_fake(grad_output, input, weight.shape[2:], stride, padding, dilation)
    return dx, dw


def _dw_pass_setup(ctx, inputs, output):
    """depthwise_dgrad(grad_output, weight, ...) and depthwise_wgrad(grad_output, input,
    ...): both save their two tensors; both end with stride, padding, dilation."""
    ctx.save_for_backward(inputs[0], inputs[1])
    ctx.conf = tuple(list(v) for v in inputs[-3:])


def _dw_dgrad_grads(dy, weight, grad, conf, need_dy, need_w):
    """(d_dy, d_w) of depthwise_dgrad(dy, weight) for its output's gradient `grad`."""
    stride, pad, dilation = conf
    d_dy = d_w = None
    if need_dy:
        pad4 = _fprop_padding(dy, grad, weight, pad, stride, dilation)
        d_dy = ops.depthwise_fprop(grad, weight, None, stride, pad4, dilation)
    if need_w:
        d_w = ops.depthwise_wgrad(dy, grad, weight.shape[2:], stride, pad, dilation)
    return d_dy, d_w


def _dw_wgrad_grads(dy, input, grad, conf, need_dy, need_x):
    """(d_dy, d_x) of depthwise_wgrad(dy, input) for its output's gradient `grad`."""
    stride, pad, dilation = conf
    d_dy = d_x = None
    if need_dy:
        pad4 = _fprop_padding(dy, input, grad, pad, stride, dilation)
        d_dy = ops.depthwise_fprop(input, grad, None, stride, pad4, dilation)
    if need_x:
        d_x = ops.depthwise_dgrad(dy, grad, input.shape[1], input.shape[2:], stride, pad, dilation)
    return d_dy, d_x


def _dw_dgrad_backward(ctx, grad):
    dy, weight = ctx.saved_tensors
    d_dy, d_w = _dw_dgrad_grads(dy, weight, grad, ctx.conf, *ctx.needs_input_grad[:2])
    return d_dy, d_w, None, None, None, None, None


def _dw_wgrad_backward(ctx, grad):
    dy, input = ctx.saved_tensors
    d_dy, d_x = _dw_wgrad_grads(dy, input, grad, ctx.conf, *ctx.needs_input_grad[:2])
    return d_dy, d_x, None, None, None, None


def _dw_backward_setup(ctx, inputs, output):
    grad_output, input, weight, stride, padding, dilation = inputs
    ctx.save_for_backward(grad_output, input, weight)
    ctx.conf = (list(stride), list(padding), list(dilation))
    ctx.set_materialize_grads(False)  # an unused output's gradient stays None


def _dw_backward_backward(ctx, grad_dx, grad_dw):
    """depthwise_backward is depthwise_dgrad(grad_output, weight) and
    depthwise_wgrad(grad_output, input): the sum of their backward formulas."""
    dy, input, weight = ctx.saved_tensors
    need_dy, need_x, need_w = ctx.needs_input_grad[:3]
    d_dy = d_x = d_w = None
    if grad_dx is not None:
        d_dy, d_w = _dw_dgrad_grads(dy, weight, grad_dx, ctx.conf, need_dy, need_w)
    if grad_dw is not None:
        term, d_x = _dw_wgrad_grads(dy, input, grad_dw, ctx.conf, need_dy, need_x)
        d_dy = term if d_dy is None or term is None else d_dy + term
    return d_dy, d_x, d_w, None, None, None


torch.library.register_autograd("cnnops::depthwise_backward", _dw_backward_backward,
                                setup_context=_dw_backward_setup)
# depthwise_fprop's autograd kernel is C++ (csrc/torch/depthwise_autograd.cpp): it
# calls depthwise_backward, or depthwise_dgrad / depthwise_wgrad, and conv2d_bias_grad.
torch.library.register_autograd("cnnops::depthwise_dgrad", _dw_dgrad_backward,
                                setup_context=_dw_pass_setup)
torch.library.register_autograd("cnnops::depthwise_wgrad", _dw_wgrad_backward,
                                setup_context=_dw_pass_setup)
