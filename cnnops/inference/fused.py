"""The fused inference modules: FusedConv2d and FusedSeparableConv2d.

Each holds private, contiguous copies of its (BatchNorm-folded) filters and bias as
buffers, not parameters: they are constants of an inference graph, and buffers are what
torch.export and torch.compile treat as such. forward(x, residual=None) is one call of
cnnops.functional.conv2d_fused, which applies
``post_activation(activation(conv(x)) + residual)`` in the kernel's output stage.
"""
import torch
from torch import nn

from .. import functional as cf
from .._ops import direct
from .._shape import conv_out_size, same_padding
from .activations import APPLY


def _private_copy(tensor, channels_last):
    """A detached copy of `tensor` that nothing else shares, in the layout the kernels read:
    channels_last for 4-D filters when asked for, else contiguous."""
    fmt = torch.channels_last if channels_last and tensor.dim() == 4 else torch.contiguous_format
    return tensor.detach().clone().contiguous(memory_format=fmt)


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _conv_out_hw(x, kernel_hw, stride, padding, dilation):
    """Output (height, width) of a convolution of x, with padding a pair, 'valid' or 'same'."""
    size = x.shape[-2:]
    out = []
    for axis in range(2):
        if padding == "same":
            begin, end = same_padding(size[axis], kernel_hw[axis], stride[axis], dilation[axis])
        elif padding == "valid":
            begin = end = 0
        else:
            begin = end = padding[axis]
        out.append(conv_out_size(size[axis], kernel_hw[axis], begin, end, stride[axis],
                                 dilation[axis]))
    return out


def _fits(y_shape, x, residual):
    """Whether residual can be added inside the kernel: the output's exact shape, dtype and
    device (a broadcast residual, or one that promotes the dtype, is added outside)."""
    return (residual.shape == y_shape and residual.dtype == x.dtype
            and residual.device == x.device)


def _unfused_tail(y, residual, post_activation):
    """activation(conv) done by the kernel, the rest with torch ops, as the model wrote it."""
    y = y + residual
    return y if post_activation is None else APPLY[post_activation](y)


def _activation_fn(name):
    """The activation `name` as a torch function (the identity for None)."""
    return (lambda t: t) if name is None else APPLY[name]


class _FusedBase(nn.Module):
    """The output stage shared by the fused modules."""

    def _needs_graph(self, x, residual):
        """A call that records a graph (an input that requires grad, under grad mode): the
        fused op has no derivative, so the same values come from differentiable ops."""
        return torch.is_grad_enabled() and (x.requires_grad or (
            residual is not None and residual.requires_grad))

    def _set_stage(self, bias, activation, post_activation, channels_last):
        self.register_buffer("bias", None if bias is None else _private_copy(bias, channels_last))
        self.activation = activation
        self.post_activation = post_activation

    def _stage_repr(self):
        return (f"activation={self.activation}, post_activation={self.post_activation}, "
                f"bias={self.bias is not None}")


class FusedConv2d(_FusedBase):
    """conv2d (+ folded BatchNorm) + activation + residual add + post-activation, in one
    conv2d_fused call. Grouped and depthwise filters included (conv2d_fused sends depthwise
    ones to the depthwise kernels)."""

    def __init__(self, weight, bias, stride=1, padding=0, dilation=1, groups=1, activation=None,
                 post_activation=None, channels_last=True):
        super().__init__()
        self.register_buffer("weight", _private_copy(weight, channels_last))
        self._set_stage(bias, activation, post_activation, channels_last)
        self.stride, self.dilation = _pair(stride), _pair(dilation)
        self.padding = padding if isinstance(padding, str) else _pair(padding)
        self.groups = groups
        self._fast = self._fast_call()

    def _fast_call(self):
        """(op, padding4, is depthwise) for a batched call of the op itself, skipping
        conv2d_fused's argument parsing (a per-call cost of tens of microseconds, on 53
        layers of a ResNet-50), when padding is a pair of ints; else None."""
        if isinstance(self.padding, str) or not all(isinstance(v, int) for v in self.padding):
            return None
        w = self.weight
        depthwise = self.groups > 1 and w.shape[1] == 1 and w.shape[0] % self.groups == 0
        ph, pw = self.padding
        return depthwise, [ph, ph, pw, pw]

    def forward(self, x, residual=None):
        if self._needs_graph(x, residual):
            y = _activation_fn(self.activation)(cf.conv2d(x, self.weight, self.bias, self.stride,
                                                       self.padding, self.dilation, self.groups))
            return y if residual is None else _activation_fn(self.post_activation)(y + residual)
        if self._fast is not None and x.dim() == 4 and x.shape[1] == self.weight.shape[1] * self.groups:
            if residual is None or _fits((x.shape[0], self.weight.shape[0], *_conv_out_hw(
                    x, self.weight.shape[2:], self.stride, self.padding, self.dilation)), x, residual):
                depthwise, pad = self._fast
                act = self.activation or "none"
                post = self.post_activation or "none"
                if depthwise:
                    return direct.depthwise_fprop_fused(x, self.weight, self.bias, self.stride, pad,
                                                        self.dilation, act, residual, post)
                return direct.conv2d_fprop_fused(x, self.weight, self.bias, self.stride, pad,
                                                 self.dilation, self.groups, act, residual, post)
        if residual is not None:
            y_shape = x.shape[:-3] + (self.weight.shape[0],) + tuple(
                _conv_out_hw(x, self.weight.shape[2:], self.stride, self.padding, self.dilation))
            if not _fits(y_shape, x, residual):
                y = cf.conv2d_fused(x, self.weight, self.bias, self.stride, self.padding,
                                    self.dilation, self.groups, self.activation)
                return _unfused_tail(y, residual, self.post_activation)
        return cf.conv2d_fused(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                               self.groups, self.activation, residual, self.post_activation)

    def extra_repr(self):
        k, c = self.weight.shape[0], self.weight.shape[1] * self.groups
        return (f"{c}, {k}, kernel_size={tuple(self.weight.shape[2:])}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                + self._stage_repr())


class FusedSeparableConv2d(_FusedBase):
    """cnnops SeparableConv2d with its BatchNorm folded into the pointwise filter: the
    depthwise part by depthwise_conv2d, the pointwise part and the output stage by one
    conv2d_fused."""

    def __init__(self, depthwise_weight, pointwise_weight, bias, stride=1, padding=0, dilation=1,
                 activation=None, post_activation=None, channels_last=True):
        super().__init__()
        self.register_buffer("depthwise_weight", _private_copy(depthwise_weight, channels_last))
        self.register_buffer("pointwise_weight", _private_copy(pointwise_weight, channels_last))
        self._set_stage(bias, activation, post_activation, channels_last)
        self.stride, self.dilation = _pair(stride), _pair(dilation)
        self.padding = padding if isinstance(padding, str) else _pair(padding)
        # int arguments: the ops can take them as they are (see _fast_forward)
        self._fast = all(isinstance(v, int) for v in (*self.stride, *self.dilation)) and (
            isinstance(self.padding, str) or all(isinstance(v, int) for v in self.padding))

    def _fast_forward(self, x, residual):
        """Both parts by the ops themselves, skipping the functional wrappers' argument parsing
        (two calls per layer, 34 layers in Xception); None where that path does not apply."""
        dw, pw = self.depthwise_weight, self.pointwise_weight
        if not self._fast or x.dim() != 4 or x.shape[1] == 0 or dw.shape[0] % x.shape[1] != 0:
            return None
        if residual is not None:
            y_shape = (x.shape[0], pw.shape[0], *_conv_out_hw(x, dw.shape[2:], self.stride, self.padding,
                                                             self.dilation))
            if (torch.is_grad_enabled() and residual.requires_grad) or not _fits(y_shape, x, residual):
                return None
        pad = cf.conv_padding(self.padding, x, dw, self.stride, self.dilation, "depthwise_conv2d")
        y = direct.depthwise_fprop_fused(x, dw, None, list(self.stride), pad, list(self.dilation), "none",
                                         None, "none")
        return direct.conv2d_fprop_fused(y, pw, self.bias, [1, 1], [0, 0, 0, 0], [1, 1], 1,
                                         self.activation or "none", residual,
                                         self.post_activation or "none")

    def forward(self, x, residual=None):
        if not torch.is_grad_enabled() or not x.requires_grad:
            out = self._fast_forward(x, residual)
            if out is not None:
                return out
        y = cf.depthwise_conv2d(x, self.depthwise_weight, None, self.stride, self.padding,
                                self.dilation)
        if self._needs_graph(y, residual):
            y = _activation_fn(self.activation)(cf.conv2d(y, self.pointwise_weight, self.bias))
            return y if residual is None else _activation_fn(self.post_activation)(y + residual)
        if residual is not None:
            y_shape = y.shape[:-3] + (self.pointwise_weight.shape[0],) + y.shape[-2:]
            if not _fits(y_shape, y, residual):
                y = cf.conv2d_fused(y, self.pointwise_weight, self.bias,
                                    activation=self.activation)
                return _unfused_tail(y, residual, self.post_activation)
        return cf.conv2d_fused(y, self.pointwise_weight, self.bias, activation=self.activation,
                               residual=residual, post_activation=self.post_activation)

    def extra_repr(self):
        return (f"{self.depthwise_weight.shape[0]} (depthwise) -> {self.pointwise_weight.shape[0]}, "
                f"kernel_size={tuple(self.depthwise_weight.shape[2:])}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, " + self._stage_repr())
