"""Which convolutions and BatchNorms can be fused, the BatchNorm folding arithmetic, and
building the fused module for a conv (+ BN) + output stage.

Folding an eval BatchNorm2d y = (z - mean) / sqrt(var + eps) * gamma + beta into the conv
z = w * x + b that feeds it gives w' = w * s and b' = (b - mean) * s + beta with
s = gamma / sqrt(var + eps) per output channel. It is computed in float64 and stored in
the filter's dtype, so a float32 model loses nothing to the reordering.
"""
import torch
from torch import nn

from .. import _C
from .. import nn as cnn
from .freeze import _freeze_weight
from .fused import FusedConv2d, FusedSeparableConv2d

# Exact types: a user subclass may override forward, so it is not ours to replace.
CONVS = (nn.Conv2d, cnn.Conv2d, cnn.DepthwiseConv2d)
SEPARABLE = cnn.SeparableConv2d


def is_conv(module):
    return type(module) in CONVS or type(module) is SEPARABLE


def _has_hooks(module):
    return bool(module._forward_hooks or module._forward_pre_hooks)


def conv_refusal(module):
    """Why this conv module cannot be replaced by a fused one (None: it can)."""
    name = type(module).__name__
    if module.training:
        return f"{name} in train mode"
    if getattr(module, "padding_mode", "zeros") != "zeros":
        return f"padding_mode={module.padding_mode!r}"
    if _has_hooks(module):
        return f"{name} has forward hooks"
    weight = module.pointwise_weight if type(module) is SEPARABLE else module.weight
    if not _kernels_take(weight):
        return (f"{weight.dtype} on {weight.device.type}: cnnops' kernels take float32 and "
                f"float64 on the CPU (also float16 and bfloat16 on CUDA)")
    return None


def _kernels_take(weight):
    """Whether cnnops' kernels run a weight of this dtype on its device."""
    if weight.device.type == "cpu":
        return weight.dtype in (torch.float32, torch.float64)
    if weight.device.type == "cuda":
        return (weight.dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16)
                and bool(dict(_C.build_info()).get("cuda", False)))
    return False


def conv_out_channels(module):
    return module.pointwise_weight.shape[0] if type(module) is SEPARABLE else module.weight.shape[0]


def bn_refusal(bn, conv):
    """Why this BatchNorm2d (whose input is conv's output) cannot be folded (None: it can)."""
    if bn.training:
        return "BatchNorm2d in train mode"
    if bn.running_mean is None or bn.running_var is None:
        return ("BatchNorm2d without running statistics (track_running_stats=False): "
                "it normalises with batch statistics")
    if bn.num_features != conv_out_channels(conv):
        return f"BatchNorm2d of {bn.num_features} features after {conv_out_channels(conv)} channels"
    if _has_hooks(bn):
        return "BatchNorm2d has forward hooks"
    return None


def fold_batchnorm(weight, bias, bn):
    """(weight, bias) of the conv followed by the eval-mode BatchNorm `bn`, in weight's dtype.
    weight's first axis is the output channel (conv, depthwise and pointwise filters alike)."""
    scale = torch.rsqrt(bn.running_var.double() + bn.eps)
    if bn.weight is not None:  # affine
        scale = scale * bn.weight.detach().double()
    b = 0.0 if bias is None else bias.detach().double()
    folded_bias = (b - bn.running_mean.double()) * scale
    if bn.bias is not None:
        folded_bias = folded_bias + bn.bias.detach().double()
    # A new float64 tensor (copy=True: a float64 filter would otherwise be the tensor itself),
    # scaled in place to spare large filters one more pass.
    folded = weight.detach().to(torch.float64, copy=True)
    folded.mul_(scale.reshape(-1, *([1] * (weight.dim() - 1))))
    return folded.to(weight.dtype), folded_bias.to(weight.dtype)


def build_fused(conv, bn=None, activation=None, post_activation=None, channels_last=True):
    """The fused module computing post_activation(activation(bn(conv(x))) + residual), its
    filters pre-packed."""
    if type(conv) is SEPARABLE:
        weight, bias = conv.pointwise_weight, conv.bias
    else:
        weight, bias = conv.weight, conv.bias
    if bn is not None:
        weight, bias = fold_batchnorm(weight, bias, bn)
    if type(conv) is SEPARABLE:
        fused = FusedSeparableConv2d(conv.depthwise_weight, weight, bias, conv.stride, conv.padding,
                                     conv.dilation, activation, post_activation, channels_last)
        _freeze_weight(fused.depthwise_weight)
        _freeze_weight(fused.pointwise_weight)
    else:
        fused = FusedConv2d(weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups,
                            activation, post_activation, channels_last)
        _freeze_weight(fused.weight)
    return fused.train(False)


def pattern_name(conv, bn, activation, add, post_activation):
    """The report's pattern of a chain, e.g. 'conv+bn+add+relu'."""
    steps = ["sepconv" if type(conv) is SEPARABLE else "conv"]
    steps += ["bn"] if bn is not None else []
    steps += [activation] if activation else []
    steps += ["add"] if add else []
    steps += [post_activation] if post_activation else []
    return "+".join(steps)
