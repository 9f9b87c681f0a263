"""to_torch(model): the reverse of convert, on a copy.

Returns a model computing the same function on torch's kernels, with torch.nn layers (to
check cnnops against torch, or to run a model where cnnops has no kernels): cnnops Conv2d,
ConvTranspose2d, MaxPool2d, AvgPool2d and AdaptiveAvgPool2d become their torch.nn base
classes (same parameters and state_dict keys), DepthwiseConv2d a torch.nn.Conv2d with
groups = in_channels, and SeparableConv2d a Sequential of a depthwise and a pointwise
torch.nn.Conv2d. A Keras 'same' padding that torch lacks (stride > 1, or any max pool)
becomes Sequential(SamePad2d, layer padding nothing), which moves that layer's keys under
'.1'; an AvgPool2d with 'same' becomes SameAvgPool2d (the padded cells are not counted in
Keras' divisor, which torch's padding cannot express).
"""
import copy

import torch
import torch.nn.functional as F

from . import nn as cnn
from ._shape import same_padding


class SamePad2d(torch.nn.Module):
    """TensorFlow/Keras 'same' padding of a window (kernel_size, stride, dilation): output
    size ceil(H / stride), the odd pixel at the bottom/right, filled with `value`. It depends
    on the input size, so it cannot be a fixed torch.nn.ZeroPad2d."""

    def __init__(self, kernel_size, stride, dilation, value=0.0):
        super().__init__()
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.value = value

    def forward(self, x):
        pad = [same_padding(x.shape[-1 - i], self.kernel_size[1 - i], self.stride[1 - i],
                            self.dilation[1 - i]) for i in range(2)]
        return F.pad(x, pad[0] + pad[1], value=self.value)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"dilation={self.dilation}, value={self.value}")


class SameAvgPool2d(torch.nn.Module):
    """Keras AveragePooling2D with padding='same' from torch ops: the window sums of the
    zero-padded input (torch.nn.AvgPool2d `pool` with divisor 1) divided by the number of
    input cells in each window (or by pool.divisor_override when it is set)."""

    def __init__(self, pool):
        super().__init__()
        pair = torch.nn.modules.utils._pair
        self.pad = SamePad2d(pair(pool.kernel_size), pair(pool.stride), (1, 1))
        self.pool = pool

    def forward(self, x):
        p = self.pool
        sums = F.avg_pool2d(self.pad(x), p.kernel_size, p.stride, 0, p.ceil_mode, True,
                            p.divisor_override or 1)
        if p.divisor_override:
            return sums
        ones = torch.ones((1, 1) + tuple(x.shape[-2:]), dtype=x.dtype, device=x.device)
        return sums / F.avg_pool2d(self.pad(ones), p.kernel_size, p.stride, 0, p.ceil_mode, True, 1)


def _padded(pad, module):
    return torch.nn.Sequential(pad, module).train(module.training)


def _torch_conv(m):
    """cnnops Conv2d / DepthwiseConv2d -> torch.nn.Conv2d, behind a SamePad2d for a Keras
    'same' with stride > 1 (which torch refuses)."""
    m.__class__ = torch.nn.Conv2d
    m.__dict__.pop("depth_multiplier", None)
    if m.padding != "same" or m.stride == (1, 1):
        return m
    m.padding = (0, 0)
    return _padded(SamePad2d(m.kernel_size, m.stride, m.dilation), m)


def _torch_conv_transpose(m):
    m.__class__ = torch.nn.ConvTranspose2d
    return m


def _torch_max_pool(m):
    m.__class__ = torch.nn.MaxPool2d
    if m.padding != "same":
        return m
    if m.return_indices:
        raise ValueError("cnnops.to_torch: a MaxPool2d with padding='same' and "
                         "return_indices=True has no torch equivalent (indices would shift)")
    pair = torch.nn.modules.utils._pair
    m.padding = 0
    pad = SamePad2d(pair(m.kernel_size), pair(m.stride), pair(m.dilation), -float("inf"))
    return _padded(pad, m)


def _torch_avg_pool(m):
    m.__class__ = torch.nn.AvgPool2d
    if m.padding != "same":
        return m
    m.padding = 0
    return SameAvgPool2d(m).train(m.training)


def _torch_adaptive_avg_pool(m):
    m.__class__ = torch.nn.AdaptiveAvgPool2d
    return m


def _torch_separable(m):
    """SeparableConv2d -> Sequential([pad,] depthwise Conv2d (groups=C), pointwise Conv2d 1x1)."""
    factory = dict(device=m.depthwise_weight.device, dtype=m.depthwise_weight.dtype)
    strided_same = m.padding == "same" and m.stride != (1, 1)
    mid = m.depthwise_weight.shape[0]
    depthwise = torch.nn.Conv2d(m.in_channels, mid, m.kernel_size, m.stride,
                                0 if strided_same else m.padding, m.dilation,
                                groups=m.in_channels, bias=False, **factory)
    pointwise = torch.nn.Conv2d(mid, m.out_channels, 1, bias=m.bias is not None, **factory)
    with torch.no_grad():
        for dst, src in ((depthwise.weight, m.depthwise_weight),
                         (pointwise.weight, m.pointwise_weight), (pointwise.bias, m.bias)):
            if src is not None:
                dst.copy_(src)
                dst.requires_grad_(src.requires_grad)
    layers = [depthwise, pointwise]
    if strided_same:
        layers.insert(0, SamePad2d(m.kernel_size, m.stride, m.dilation))
    return torch.nn.Sequential(*layers).train(m.training)


_TO_TORCH = {
    cnn.Conv2d: _torch_conv,
    cnn.DepthwiseConv2d: _torch_conv,
    cnn.ConvTranspose2d: _torch_conv_transpose,
    cnn.MaxPool2d: _torch_max_pool,
    cnn.AvgPool2d: _torch_avg_pool,
    cnn.AdaptiveAvgPool2d: _torch_adaptive_avg_pool,
    cnn.SeparableConv2d: _torch_separable,
}


def to_torch(model):
    """A deep copy of `model` in which every cnnops.nn module (exactly those classes, not user
    subclasses) is replaced by torch.nn layers computing the same function, with the same
    parameter values, requires_grad flags and train/eval mode (see the module docstring)."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"cnnops.to_torch: expected a torch.nn.Module, got {type(model).__name__}")
    return _replace(copy.deepcopy(model), {})


def _replace(module, done):
    """module's torch twin, with its children replaced recursively (shared modules once)."""
    if id(module) not in done:
        swap = _TO_TORCH.get(type(module))
        if swap is not None:
            done[id(module)] = swap(module)
        else:
            done[id(module)] = module
            for name, child in list(module.named_children()):
                setattr(module, name, _replace(child, done))
    return done[id(module)]
