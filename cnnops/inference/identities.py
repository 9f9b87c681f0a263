"""Dropping graph nodes that are the identity in eval mode, so that the convolutions, adds
and activations on either side of them can be fused.

Each of these returns its input tensor itself (not a copy) in eval mode, so replacing the
node by its input changes neither values nor aliasing: nn.Identity, nn.Dropout and
nn.Dropout2d in eval mode, and torchvision's stochastic_depth called with training=False
(EfficientNet's residual branches; fx keeps it as one call).
"""
from torch import nn

_DROPOUTS = (nn.Dropout, nn.Dropout2d)
_STOCHASTIC_DEPTH_ARGS = ("input", "p", "mode", "training")


def _is_stochastic_depth(target):
    return (getattr(target, "__name__", None) == "stochastic_depth"
            and getattr(target, "__module__", "").startswith("torchvision."))


def _identity_input(node, modules):
    """The node's input when the node is an eval-mode identity, else None."""
    if node.op == "call_module" and len(node.args) == 1 and not node.kwargs:
        module = modules.get(node.target)
        if type(module) is nn.Identity or (type(module) in _DROPOUTS and not module.training):
            return node.args[0]
    if node.op == "call_function" and _is_stochastic_depth(node.target):
        bound = dict(zip(_STOCHASTIC_DEPTH_ARGS, node.args), **node.kwargs)
        if bound.get("training") is False:
            return bound.get("input")
    return None


def drop_identities(gm):
    """Removes the eval-mode identities from gm's graph (gm is recompiled by the caller)."""
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        source = _identity_input(node, modules)
        if source is not None:
            node.replace_all_uses_with(source)
            gm.graph.erase_node(node)
