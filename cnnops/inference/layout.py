"""InferenceModel: the optimised network behind a channels_last entry and exit.

The fused kernels are fastest with channels_last activations, so 4-D inputs are converted
once at entry and every layer then keeps that layout. 4-D outputs go back to the layout
the original model would have given: channels_last for a channels_last input, else
contiguous NCHW (a copy only where the layouts differ; the values never change).
"""
import torch
from torch import nn

from .fused import FusedConv2d, FusedSeparableConv2d


def layers_to_channels_last(net):
    """The 4-D parameters and buffers of net's unfused layers (transposed convs, convs left
    alone...) to channels_last, in place. The fused modules' filters are channels_last
    already and are skipped: they must stay the very tensors that were pre-packed."""
    cl = torch.channels_last
    for module in net.modules():
        if isinstance(module, (FusedConv2d, FusedSeparableConv2d)):
            continue
        for param in module.parameters(recurse=False):
            if param.dim() == 4:
                param.data = param.data.contiguous(memory_format=cl)
        for name, buf in module.named_buffers(recurse=False):
            if buf.dim() == 4:
                setattr(module, name, buf.contiguous(memory_format=cl))


def _is_channels_last(t):
    """A 4-D tensor laid out as channels_last and not also as NCHW (for an ambiguous layout,
    e.g. one channel, torch's layers give NCHW)."""
    return (t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)
            and not t.is_contiguous())


def _enter(value):
    if isinstance(value, torch.Tensor) and value.dim() == 4:
        return value.contiguous(memory_format=torch.channels_last)
    return value


def _leave(value, memory_format):
    """value with its 4-D tensors in memory_format, through tuples, lists and dicts."""
    if isinstance(value, torch.Tensor):
        return value.contiguous(memory_format=memory_format) if value.dim() == 4 else value
    if isinstance(value, dict):
        out = type(value)()
        for key, item in value.items():
            out[key] = _leave(item, memory_format)
        return out
    if isinstance(value, (tuple, list)):
        items = [_leave(item, memory_format) for item in value]
        if hasattr(value, "_fields"):  # a namedtuple
            return type(value)(*items)
        return type(value)(items)
    return value


class InferenceModel(nn.Module):
    """What optimize_for_inference returns: `module` (the optimised copy of the model) and
    its `inference_report`. With channels_last, 4-D tensor arguments enter as channels_last
    and 4-D outputs leave in the original model's layout for that input."""

    def __init__(self, module, report, channels_last=True):
        super().__init__()
        self.module = module
        self.inference_report = report
        self.channels_last = channels_last

    def forward(self, *args, **kwargs):
        if not self.channels_last:
            return self.module(*args, **kwargs)
        first = next((a for a in (*args, *kwargs.values())
                      if isinstance(a, torch.Tensor) and a.dim() == 4), None)
        if first is None:
            return self.module(*args, **kwargs)
        out_format = torch.channels_last if _is_channels_last(first) else torch.contiguous_format
        out = self.module(*[_enter(a) for a in args], **{k: _enter(v) for k, v in kwargs.items()})
        return _leave(out, out_format)

    def extra_repr(self):
        return f"channels_last={self.channels_last}"
