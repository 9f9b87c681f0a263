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
