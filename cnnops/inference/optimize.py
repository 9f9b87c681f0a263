"""optimize_for_inference(model): an eval copy of a model with BatchNorms folded into its
convolutions and their activations and residual adds fused into conv2d_fused calls.

The whole model is traced with torch.fx when it can be. Where tracing fails (control flow
that depends on the data, hooks), each child is optimised on its own: traced when it
traces, split further when it does not, and the conv runs of a plain nn.Sequential fused
module by module. A module nothing can be done for stays as it was.
"""
import copy

import torch
from torch import nn

from .graph_fusion import fuse_graph
from .layout import InferenceModel, layers_to_channels_last
from .module_fusion import fuse_sequential, is_plain_sequential
from .report import InferenceReport
from .tracing import is_leaf, trace


def _error_line(err):
    """The first line of an exception's message, short enough for a report row."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) <= 100 else text[:97] + "..."


def _optimise(module, prefix, report, channels_last):
    """The optimised form of `module` (a new GraphModule, or module itself modified)."""
    try:
        gm = trace(module)
    except Exception as err:  # any failure of fx tracing: fall back to the children
        sequential = is_plain_sequential(module)
        how = "used module patterns" if sequential else "optimised its children one by one"
        report.add_left(prefix.rstrip("."), f"not traceable: {_error_line(err)}; {how}")
        for name, child in list(module.named_children()):
            if is_leaf(child):
                continue
            new = _optimise(child, f"{prefix}{name}.", report, channels_last)
            if new is not child:
                setattr(module, name, new)
        if sequential:
            fuse_sequential(module, prefix, report, channels_last)
        return module
    return fuse_graph(gm, prefix, report, channels_last)


def optimize_for_inference(model, *, channels_last=True, example_inputs=None):
    """An optimised deep copy of `model` for inference (`model` itself is not modified).

    The copy is in eval mode (a model in train mode is switched; submodules that an eval
    model explicitly keeps in train mode stay so, and are not folded or fused). Every
    eval BatchNorm2d right after a convolution (torch.nn.Conv2d or cnnops' Conv2d,
    DepthwiseConv2d, SeparableConv2d) is folded into its filter, and the activation,
    residual add and activation after the add that follow are fused into the same
    cnnops.functional.conv2d_fused call.

    channels_last: keep the filters and the activations in channels_last (4-D inputs are
    converted at entry; 4-D outputs come back in the layout the original model gives).
    example_inputs: a tensor or a tuple of arguments to run the copy on once, so that
    everything prepared on first use (packed filters) is ready.

    Returns an InferenceModel: call it like the model; `.module` is the optimised network,
    `.inference_report` says what was fused and what was left and why.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"cnnops.optimize_for_inference: expected a torch.nn.Module, "
                        f"got {type(model).__name__}")
    if not isinstance(channels_last, bool):
        raise TypeError(f"cnnops.optimize_for_inference: expected channels_last to be a bool, "
                        f"got {type(channels_last).__name__}")
    net = copy.deepcopy(model)
    if model.training:
        net.eval()
    report = InferenceReport()
    net = _optimise(net, "", report, channels_last)
    if channels_last:
        layers_to_channels_last(net)
    result = InferenceModel(net, report, channels_last)
    result.training = False  # set alone: .eval() would reset submodules kept in train mode
    if example_inputs is not None:
        args = example_inputs if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
        with torch.no_grad():
            result(*args)
    return result
