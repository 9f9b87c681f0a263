"""Tracing a module into a torch.fx graph whose layers stay whole.

The tracer treats every torch.nn and cnnops.nn layer (and the fused modules) as a leaf, so
convolutions, BatchNorms and activation modules appear as call_module nodes that the
fusion passes can match; containers (Sequential, ModuleList, ModuleDict) and every other
module (torchvision blocks, the model zoo's blocks) are traced through.
"""
from torch import fx, nn

from .fused import FusedConv2d, FusedSeparableConv2d

_LAYER_PACKAGES = ("torch.nn.", "torch.ao.nn.", "cnnops.nn")
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def is_leaf(module):
    """Whether the fusion passes see `module` as one opaque layer."""
    if isinstance(module, (FusedConv2d, FusedSeparableConv2d)):
        return True
    if isinstance(module, _CONTAINERS):
        return False
    return type(module).__module__.startswith(_LAYER_PACKAGES)


class InferenceTracer(fx.Tracer):
    """fx.Tracer with is_leaf as its leaf rule. A traced-through module with hooks is refused:
    fx would drop its hooks, so its caller falls back to optimising its children."""

    def is_leaf_module(self, m, module_qualified_name):
        return is_leaf(m)

    def call_module(self, m, forward, args, kwargs):
        if not is_leaf(m) and (m._forward_hooks or m._forward_pre_hooks):
            raise fx.proxy.TraceError(f"{type(m).__name__} has forward hooks, which tracing drops")
        return super().call_module(m, forward, args, kwargs)


def trace(module):
    """module as an fx.GraphModule (same submodules, same training flags); raises whatever
    tracing raises when its forward cannot be traced (data-dependent control flow...)."""
    if not is_leaf(module) and (module._forward_hooks or module._forward_pre_hooks):
        raise fx.proxy.TraceError(f"{type(module).__name__} has forward hooks, which tracing drops")
    root = nn.Sequential(module) if is_leaf(module) else module  # a bare layer: trace a call
    tracer = InferenceTracer()
    graph = tracer.trace(root)
    gm = fx.GraphModule(tracer.root, graph, type(module).__name__)
    # GraphModule and the containers it creates to hold the layers at their old paths start
    # in train mode: give each the flag of the module it stands for (not with .train() or
    # .eval(), which would also reset submodules explicitly left in train mode).
    gm.training = module.training
    originals = dict(root.named_modules())
    for name, sub in gm.named_modules():
        if name in originals and sub is not originals[name]:
            sub.training = originals[name].training
    return gm
