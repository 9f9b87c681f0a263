"""Modules with torch.nn's constructor arguments, parameter names, initialisation
and state_dict keys, running on cnnops kernels.

They subclass the torch.nn classes so that everything but the arithmetic
(construction, reset_parameters, padding modes, extra_repr, state_dict) is
torch's own.
"""
import torch
import torch.nn.functional as F

from . import functional as cf


class Conv2d(torch.nn.Conv2d):
    """torch.nn.Conv2d on cnnops kernels.

    Beyond torch, padding='same' is accepted with stride > 1 (TensorFlow/Keras
    semantics, padding_mode='zeros' only).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        strided_same = isinstance(padding, str) and padding == "same" and stride not in (1, (1, 1))
        if strided_same and padding_mode != "zeros":
            raise ValueError("cnnops.nn.Conv2d: padding='same' with stride > 1 needs "
                             f"padding_mode='zeros', got padding_mode={padding_mode!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         "valid" if strided_same else padding, dilation, groups, bias,
                         padding_mode, device, dtype)
        if strided_same:
            self.padding = "same"

    def _conv_forward(self, input, weight, bias):
        if self.padding_mode != "zeros":
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return cf.conv2d(input, weight, bias, self.stride, 0, self.dilation, self.groups)
        return cf.conv2d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)


class ConvTranspose2d(torch.nn.ConvTranspose2d):
    """torch.nn.ConvTranspose2d on cnnops kernels; forward(input, output_size=None)."""

    def forward(self, input, output_size=None):
        if self.padding_mode != "zeros":
            raise ValueError("Only 'zeros' padding mode is supported for ConvTranspose2d")
        output_padding = self._output_padding(input, output_size, self.stride, self.padding,
                                              self.kernel_size, 2, self.dilation)
        return cf.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                   output_padding, self.groups, self.dilation)


class MaxPool2d(torch.nn.MaxPool2d):
    """torch.nn.MaxPool2d on cnnops kernels; beyond torch, padding='same' (Keras semantics)."""

    def forward(self, input):
        return cf.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                             ceil_mode=self.ceil_mode, return_indices=self.return_indices)


class AvgPool2d(torch.nn.AvgPool2d):
    """torch.nn.AvgPool2d on cnnops kernels; beyond torch, padding='same' (Keras semantics:
    the padded cells are not counted in the divisor)."""

    def forward(self, input):
        return cf.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                             self.count_include_pad, self.divisor_override)


class AdaptiveAvgPool2d(torch.nn.AdaptiveAvgPool2d):
    """torch.nn.AdaptiveAvgPool2d on cnnops kernels (output_size 1: global average pooling)."""

    def forward(self, input):
        return cf.adaptive_avg_pool2d(input, self.output_size)


class DepthwiseConv2d(Conv2d):
    """Depthwise convolution (Keras DepthwiseConv2D): a Conv2d with groups = in_channels and
    out_channels = in_channels * depth_multiplier, so parameters (weight (C*M, 1, kH, kW),
    bias), initialisation and state_dict are torch.nn.Conv2d's."""

    def __init__(self, in_channels, kernel_size, stride=1, padding=0, dilation=1,
                 depth_multiplier=1, bias=True, device=None, dtype=None):
        super().__init__(in_channels, in_channels * depth_multiplier, kernel_size, stride, padding,
                         dilation, groups=in_channels, bias=bias, device=device, dtype=dtype)
        self.depth_multiplier = depth_multiplier

    def _conv_forward(self, input, weight, bias):
        return cf.depthwise_conv2d(input, weight, bias, self.stride, self.padding, self.dilation)


class SeparableConv2d(torch.nn.Module):
    """Keras SeparableConv2D: a depthwise conv (depthwise_weight (C*M, 1, kH, kW); stride,
    padding incl. 'same' for any stride, dilation apply here) then a 1x1 conv
    (pointwise_weight (out_channels, C*M, 1, 1)) with bias. Each weight is initialised as
    torch.nn.Conv2d initialises its weight, the bias from the pointwise fan-in."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 depth_multiplier=1, bias=True, device=None, dtype=None):
        super().__init__()
        factory = dict(device=device, dtype=dtype)
        pair = torch.nn.modules.utils._pair
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = pair(kernel_size), pair(stride)
        self.dilation = pair(dilation)
        self.padding = padding if isinstance(padding, str) else pair(padding)
        self.depth_multiplier = depth_multiplier
        mid = in_channels * depth_multiplier
        self.depthwise_weight = torch.nn.Parameter(
            torch.empty((mid, 1, *self.kernel_size), **factory))
        self.pointwise_weight = torch.nn.Parameter(
            torch.empty((out_channels, mid, 1, 1), **factory))
        if bias:
            self.bias = torch.nn.Parameter(torch.empty(out_channels, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        import math
        torch.nn.init.kaiming_uniform_(self.depthwise_weight, a=math.sqrt(5))
        torch.nn.init.kaiming_uniform_(self.pointwise_weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.pointwise_weight.shape[1])
            torch.nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return cf.separable_conv2d(input, self.depthwise_weight, self.pointwise_weight, self.bias,
                                   self.stride, self.padding, self.dilation)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"depth_multiplier={self.depth_multiplier}, bias={self.bias is not None}")
