"""convert(model): run an existing torch model on cnnops kernels.

Every torch.nn.Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d and AdaptiveAvgPool2d in the
model (at any depth: Sequential, ModuleList, ModuleDict, custom containers) becomes the
cnnops.nn module of the same configuration. The swap is done in place by changing the module's class to the
cnnops subclass: the module object, its Parameter objects, buffers, hooks and state_dict
keys stay exactly what they were, so outputs, gradients, optimisers holding the
parameters and saved checkpoints are unaffected. Only modules of exactly those torch
classes are swapped; user subclasses (which may override forward) are left alone.
"""
import logging

import torch

from . import nn as cnn

log = logging.getLogger("cnnops")

_SWAPS = {
    torch.nn.Conv2d: cnn.Conv2d,
    torch.nn.ConvTranspose2d: cnn.ConvTranspose2d,
    torch.nn.MaxPool2d: cnn.MaxPool2d,
    torch.nn.AvgPool2d: cnn.AvgPool2d,
    torch.nn.AdaptiveAvgPool2d: cnn.AdaptiveAvgPool2d,
}


def convert(model, return_count=False):
    """Swaps the torch.nn conv / transposed-conv / pooling layers of `model` (in place) for
    cnnops.nn ones sharing their parameters. Returns the model, or (model, number of
    modules swapped) with return_count=True; the count is also logged (logger "cnnops")."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"cnnops.convert: expected a torch.nn.Module, got {type(model).__name__}")
    count = 0
    for name, module in model.named_modules():
        target = _SWAPS.get(type(module))
        if target is not None:
            module.__class__ = target
            count += 1
            log.debug("cnnops.convert: %s -> %s", name or "<root>", target.__name__)
    log.info("cnnops.convert: swapped %d module(s) of %s for cnnops ones", count,
             type(model).__name__)
    return (model, count) if return_count else model
